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
#include <stddef.h>

int cmd_state(int argc, char **argv);
int cmd_help(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_apply(int argc, char **argv);
int cmd_commit(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_pull(int argc, char **argv);
int cmd_push(int argc, char **argv);
int cmd_sync(int argc, char **argv);
int cmd_resolve(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_doctor(int argc, char **argv);
int cmd_add(int argc, char **argv);
int cmd_forget(int argc, char **argv);

/* heimdal state <sub> */
int cmd_state_version(int argc, char **argv);
int cmd_state_history(int argc, char **argv);
int cmd_state_migrate(int argc, char **argv);
int cmd_state_query(int argc, char **argv);
int cmd_state_check_drift(int argc, char **argv);
int cmd_state_check_conflicts(int argc, char **argv);
int cmd_state_resolve(int argc, char **argv);
int cmd_state_diff(int argc, char **argv);
int cmd_state_lock_info(int argc, char **argv);
int cmd_state_unlock(int argc, char **argv);

/* Print the top-level usage to f. */
void heimdal_usage(FILE *f);

/*
 * List the state subcommands from state.c's table: name and summary, or with
 * synopsis set, each with its arguments as `heimdal state --help` shows them.
 */
void state_commands_usage(FILE *f, int synopsis);

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

/*
 * The one naming of backups: a path in $HEIMDAL_HOME/<dir> (created, 0700)
 * that does not exist yet, <dir>/<prefix>YYYYMMDD_HHMMSS[_N]<suffix>; new
 * buffer; exits on failure.
 */
char *porcelain_backup_name(const char *dir, const char *prefix, const char *suffix);

/* backups/<prefix>_YYYYMMDD_HHMMSS[_N].json (porcelain_backup_name). */
char *porcelain_backup_path(const char *prefix);

/* Save a V2 state (consumed) to the local state path; exits on failure. */
void porcelain_state_save(jv state);

/* Write v (consumed) to stdout as JSON (pretty unless compact); exits on failure. */
void porcelain_print_json(jv v, int compact);

/* Parse a positive integer option value or exit 2 naming flag. */
long porcelain_parse_count(const char *flag, const char *value);

/* The dotfiles repository and the files it deploys (dotfiles.c). */
struct dotfile {
	char *key;        /* the target, relative to $HOME */
	char *src;        /* the source, relative to the repository's work tree */
	unsigned mode;    /* 0644, or 0755 for an executable */
	int from_profile; /* src is in profiles/<active>/ */
};

/* The files `heimdal forget` stopped tracking, in the repository. */
#define FORGOTTEN ".heimdal/forgotten"

struct dotfiles {
	struct dotfile *f; /* sorted by key */
	size_t n;
	char *workdir;  /* the repository's work tree, with a trailing slash */
	char **ignored; /* keys the index has but .heimdalignore leaves out, and
			   the keys .heimdal/forgotten lists (FORGOTTEN) */
	size_t nignored;
};

/* The state's dotfiles_path (default ~/.dotfiles) with "~" expanded; new buffer. */
char *porcelain_dotfiles_dir(jv state);

/*
 * The files repo deploys: git's index (stage 0, regular files) less .heimdal/,
 * profiles/, .heimdalignore and the paths it matches (gitignore syntax), with
 * profiles/<profile>/ overlaid on the root.  0, or -1 (error printed).
 */
struct git_repository;
int porcelain_dotfiles_list(struct git_repository *repo, const char *profile, struct dotfiles *d);

/*
 * The same, refusing anything but a regular file (EINVAL: a FIFO, a device)
 * and one larger than max (EFBIG), without blocking on open.
 */
int porcelain_read_regular(const char *path, size_t max, char **buf, size_t *len);

/*
 * 1 when key (a target under $HOME) maps into what heimdal or git own: a
 * .git or leading .heimdal component, $HEIMDAL_HOME, or the repository whose
 * work tree is workdir.  Such a path is never deployed, added or committed.
 */
int porcelain_reserved(const char *key, const char *workdir);

/*
 * Paths given on the command line (relative to $HOME, "~/..." or absolute
 * under $HOME) as keys: a NULL-terminated array (NULL for none); exits 2
 * naming a path that is not under $HOME.  Free with porcelain_keys_free.
 */
char **porcelain_path_keys(int argc, char **argv);

/* 1 when the repository at workdir's .heimdalignore leaves key out. */
int porcelain_ignored(const char *workdir, const char *key);
void porcelain_keys_free(char **keys);

const struct dotfile *porcelain_dotfiles_find(const struct dotfiles *d, const char *key);
void porcelain_dotfiles_free(struct dotfiles *d);

/*
 * Call after opening the dotfiles repository at dir.  When this command broke
 * into the state lock of a holder that died, the git lock files that holder
 * left (a killed checkout's index.lock, a ref's .lock) and its temporaries in
 * the work tree are removed, so the next command recovers by itself.  0, or
 * -1 (error printed).
 */
int porcelain_repo_recover(struct git_repository *repo, const char *dir);
/* What apply_run does (apply.c): `heimdal apply`, `heimdal resolve`, sync's apply. */
enum apply_take { TAKE_NONE, TAKE_MERGED, TAKE_OURS, TAKE_THEIRS };
struct apply_opts {
	int force, dry_run;
	const char *profile;  /* NULL: the state's active profile */
	char *const *only;    /* NULL-terminated keys, or NULL for every file */
	enum apply_take take; /* resolve: the side to take for the files in only */
	const char *op;       /* the lineage operation recorded (default "apply") */
	jv *preview;          /* set: plan only, into *preview as [{"path", "action",
				 "reason"?}] (action: new update mode merge conflict
				 changed_here replace skip remove untrack) */
};

/*
 * Deploy repo's files into $HOME, three-way against this machine's record
 * (record.h), and record it: *state (consumed) is replaced by the state saved
 * (unchanged on a dry run).  Returns 0, or 1 when files were skipped or left
 * in conflict; exits on errors.  The caller holds the state lock.
 */
struct git_repository;
int apply_run(struct git_repository *repo, jv *state, const struct apply_opts *o);

/*
 * sync.c: after a fetch, settle the local state (borrowed) with the remote's
 * and pull: the relation (heimdal-conflicts, base: the state at the merge
 * base), heimdal-merge's answer, recorded as op (heimdal-lineage) when it is
 * news (*changed) or when the pull writes a merge commit, which then carries
 * it.  The spec's lines for a divergence are printed (and "Git pull completed
 * successfully!" with show_pull).  Returns the settled state, not saved, with
 * res filled (free it); invalid after printing why, the repository unmoved or
 * left mid-merge for the user (exit 1).
 */
struct hm_git_merge_result;
jv sync_merge(struct git_repository *repo, jv local, const char *op, int show_pull, int *changed,
	      struct hm_git_merge_result *res);

/* heimdal-drift's report over $HOME for state (consumed); exits on failure. */
jv porcelain_drift(jv state, int all);

/* Exit 3 naming heimdal-<name> when it is not on the exec path. */
void porcelain_need_tool(const char *name, const char *why);

/*
 * state (consumed) bumped by `heimdal-lineage bump --op op [--git-commit
 * git_commit]`; exits when the bump fails.
 */
jv porcelain_bump(jv state, const char *op, const char *git_commit);

#endif
