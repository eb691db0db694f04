/*
 * remote.h - what init, pull, push and sync share: the dotfiles repository of
 * the state, the remote reached within remote_timeout, the state file carried
 * in the repository, and the spec's messages for the remote.
 */
#ifndef HM_PORCELAIN_REMOTE_H
#define HM_PORCELAIN_REMOTE_H

#include <git2.h>
#include <jv.h>

#include "hm_git.h"
#include "hm_gitmerge.h"

/* Where the shared state lives inside the dotfiles repository. */
#define REMOTE_NAME "origin"

/* Open the dotfiles repository of state (borrowed; porcelain_dotfiles_dir); exits. */
git_repository *remote_open(jv state);

/* remote_timeout from lock_config.json (seconds); exits on a bad config. */
long remote_timeout(void);

/*
 * The spec's "Merge conflicts detected in:" message for paths, with the
 * advice to resolve and run 'heimdal sync' again.
 */
void remote_print_conflicts(char *const *paths);

/*
 * Refuse to go on over an unfinished merge: conflicted paths -> the message
 * above and exit 1; a merge the user has resolved but not committed is
 * committed.
 */
void remote_settle_unfinished(git_repository *repo);

/* Fetch origin.  0, or HM_GIT_UNREACHABLE after printing the warning; exits on errors. */
int remote_fetch(git_repository *repo);

/*
 * Merge the remote-tracking branch into the current one.  A merge commit
 * holds state (consumed; an object, or jv_null() when the caller knows the
 * pull cannot make one) as the state file: the state the caller already
 * merged (sync_merge), never merged a second time.  Fills res; returns 0, 1
 * after printing the conflicts message (repository left mid-merge), and exits
 * on errors.  With no remote-tracking branch (an empty remote) res->kind is
 * UP_TO_DATE.
 */
int remote_pull_as(git_repository *repo, struct hm_git_merge_result *res, jv state);

/*
 * A pull records what it is doing in $HEIMDAL_HOME/pull.pending until its
 * command is done with it (remote.c), so that the next command recovers from
 * a crash: remote_open undoes a checkout cut short.  remote_pull_done forgets
 * it once the command is done (what the pull brought is then deployed, or
 * left to the deployment record: sync deploys whatever this machine has not).
 */
void remote_pull_done(void);

/*
 * The state at rev's HM_REPO_STATE: a V2 state, jv_null() when the file is
 * absent there, or exits when it is not a valid state.
 */
jv remote_state_at(git_repository *repo, const char *rev);

/*
 * Write state (borrowed) to HM_REPO_STATE and this machine's published facts
 * (record.h) beside it, and commit both with message.  0, 1 unchanged.
 */
int remote_commit_state(git_repository *repo, jv state, const char *message, char out[41]);

/* The same with the n files of extra (hm_git_commit_files) in the same commit. */
int remote_commit_with(git_repository *repo, jv state, const struct hm_git_file *extra, size_t n,
		       const char *message, char out[41]);

/*
 * Push the current branch.  force: lease on the remote-tracking ref.  g (may
 * be NULL): the command's guard, when it took the lock with
 * GUARD_REMOTE_LATER; the push then goes through only while nobody holds
 * the remote's lock, taking it first when somebody does.  Returns 0,
 * HM_GIT_PUSHED_NOTHING (the remote had it already), HM_GIT_REJECTED after
 * printing why and what to run (unless quiet), HM_GIT_UNREACHABLE after the
 * warning; exits on errors (the lock held elsewhere included).
 */
struct guard;
int remote_push(git_repository *repo, int force, int quiet, struct guard *g);

/* "push rejected: <reason>" and what to run: 'heimdal sync', then push again. */
void remote_report_rejected(const char *reason);

/* 1 when HEAD and the remote-tracking ref are the same commit. */
int remote_in_step(git_repository *repo);

/*
 * The state (consumed) with this machine's identity and the local-only fields
 * (active_profile, dotfiles_path, repo_url) taken from local (borrowed; may be
 * jv_null(), then only the machine is set).
 */
jv remote_localize(jv state, jv local);

/* What a pull did, for people: "Already up to date." or the spec's success line. */
void remote_report_pull(const struct hm_git_merge_result *res, const char *before);

/* Run a heimdal-<tool> on a JSON input (consumed); exits unless it answers 0 or 1. */
jv remote_tool(const char *tool, char *const argv[], jv in, int *status);

#endif
