/*
 * builtin.h - the porcelain's commands and the helpers they share.
 *
 * Each command family lives in its own file and is registered in main.c's
 * table (top-level commands) or state.c's table (`heimdal state ...`).
 * A command gets argv with argv[0] = its own name and returns the exit code.
 */
#ifndef HM_BUILTIN_H
#define HM_BUILTIN_H

#include <jv.h>

int cmd_state(int argc, char **argv);
int cmd_help(int argc, char **argv);
int cmd_version(int argc, char **argv);

/* heimdal state <sub> */
int cmd_state_version(int argc, char **argv);
int cmd_state_history(int argc, char **argv);
int cmd_state_migrate(int argc, char **argv);
int cmd_state_query(int argc, char **argv);

/* Print the top-level usage to f. */
void heimdal_usage(FILE *f);

/*
 * The local state, loaded and validated.  A V1 state is migrated first through
 * heimdal-migrate, with a backup (porcelain.c); a missing, unreadable or
 * invalid state exits with the right code and message.  Returns a V2 state.
 */
jv porcelain_state_load(void);

/*
 * Migrate the V1 state at path (its bytes in buf) with heimdal-migrate: back
 * up the original to backups/state_v1_YYYYMMDD_HHMMSS.json unless no_backup,
 * then write the V2 state atomically.  *backup_path (may be NULL) receives the
 * backup's path (malloc'd) or NULL.  Returns the V2 state or exits.
 */
jv porcelain_migrate_file(const char *path, int no_backup, char **backup_path);

/*
 * Report the failure hm_state_read returned (invalid consumed, path freed)
 * and exit with its code; a missing state points at `heimdal init`.
 */
_Noreturn void porcelain_state_fail(char *path, jv invalid, int code, int missing);

/* Save a V2 state (consumed) to the local state path; exits on failure. */
void porcelain_state_save(jv state);

/* Write v (consumed) to stdout as JSON (pretty unless compact); exits on failure. */
void porcelain_print_json(jv v, int compact);

/* Parse a positive integer option value or exit 2 naming flag. */
long porcelain_parse_count(const char *flag, const char *value);

#endif
