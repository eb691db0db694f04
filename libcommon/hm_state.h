/*
 * hm_state.h - the state model: versions, validation, canonical form, files.
 *
 * A V2 state is the specification's "Complete V2 Schema".  A V1 state is the
 * legacy document without "version": {active_profile, dotfiles_path,
 * repo_url, last_sync?, last_apply?}.  Migration itself is heimdal-migrate's
 * job; this module only tells the versions apart and validates them.
 */
#ifndef HM_STATE_H
#define HM_STATE_H

#include <jv.h>

#define HM_STATE_VERSION 2 /* the newest version this build reads and writes */
#define HM_HISTORY_MAX 50  /* history entries kept */
/*
 * The largest serial a state may hold: 2^52, half of what a JSON number holds
 * exactly.  A state above it is refused on read, so one bad push cannot leave
 * a lineage that no write can ever bump again ('heimdal push --force'
 * replaces such a remote state with this machine's).
 */
#define HM_SERIAL_MAX 4503599627370496LL

/*
 * The schema version of doc (borrowed): 1 for a V1 document (an object without
 * "version"), else the value of "version".  Returns -1 and sets *err (malloc'd,
 * "field: problem") when doc is not an object or "version" is not a positive
 * integer.  A value above HM_STATE_VERSION is returned as is; callers refuse it
 * with hm_state_newer_msg.
 */
int hm_state_version_of(jv doc, char **err);

/* The message for a state written by a newer heimdal. */
#define HM_STATE_NEWER_FMT                                                                         \
	"state version %d was written by a newer heimdal (this one reads up to %d)"

/*
 * Validate a V1 (hm_state_validate_v1) or V2 (hm_state_validate) document,
 * borrowed.  0 when valid; else -1 with *err set to a malloc'd message that
 * starts with the field path: ".lineage.serial: expected a non-negative
 * integer, got string".
 */
int hm_state_validate_v1(jv doc, char **err);
int hm_state_validate(jv doc, char **err);

/*
 * Check a state (borrowed) a tool is about to write, so that no tool writes
 * what the next one refuses (a hostname holding a newline, say).  0, or -1
 * after printing "what: the state to write is invalid: .field: problem"
 * with hm_fail(HM_EXIT_USAGE).
 */
int hm_state_check_output(jv state, const char *what);

/* Validate one checksum value: 32 or 64 lowercase hex digits.  1 if valid. */
int hm_state_checksum_valid(const char *hex);

/*
 * The canonical form of a V2 state (consumed): keys in schema order, known
 * nested objects in their order, checksums sorted by path, unknown keys kept
 * after the known ones.
 */
jv hm_state_canonical(jv state);

/*
 * Read and validate the state at path.  Returns the document (V1 or V2, see
 * hm_state_version_of) or an invalid whose message is the whole error
 * ("PATH: .field: problem"); *code is set to the exit code that error calls
 * for (HM_EXIT_USAGE for bad content, HM_EXIT_ENV for I/O; a missing file is
 * HM_EXIT_ENV with errno ENOENT preserved in *missing when non-NULL).
 */
jv hm_state_read(const char *path, int *code, int *missing);

/* Write state (consumed) to path: canonical, pretty, mode 0600, atomic.  0 or -1. */
int hm_state_write(const char *path, jv state);

/* The local state path: $HEIMDAL_HOME/state.json (new buffer). */
char *hm_state_path(void);

/* The state file in the dotfiles repository, relative to its work tree. */
#define HM_REPO_STATE ".heimdal/state.json"

/*
 * The state's dotfiles_path (~/.dotfiles when it has none) with a leading
 * "~" expanded from $HOME: a new buffer, or NULL when it needs $HOME and
 * $HOME is not set.  The one reading of dotfiles_path.
 */
char *hm_state_dotfiles_dir(jv state);

/* The state's lineage serial (borrowed state, any version), or -1 when it has none. */
long long hm_state_serial(jv state);

/* Warn when the state file can be read by group or others. */
void hm_state_check_mode(const char *path);

#endif
