/*
 * hm_gitrecover.h - putting a repository right after a heimdal process was
 * killed while it worked in it: a checkout cut short, lock files left.
 *
 * Part of the git family (hm_git.h): its conventions hold here, and the
 * names keep the hm_git_ prefix.  Only what can be shown to be the dead
 * process's doing is undone or removed; anything else is left as it is.
 */
#ifndef HM_GITRECOVER_H
#define HM_GITRECOVER_H

#include <git2.h>
#include <time.h>

/*
 * Undo a checkout from commit a towards commit b (hex) that was cut short: an
 * unfinished merge's files (MERGE_HEAD, ...) are removed, and every path that
 * differs between a and b is put back as HEAD has it in the index and the
 * working tree (forced), a path HEAD lacks removed.  Only those paths are
 * touched, and only those that hold what the checkout can have left there
 * (the old bytes, part or all of the new, nothing): a checkout refuses to
 * start over local changes, so anything else is an edit made since, and is
 * left for the next checkout to refuse.  0, or -1.
 */
int hm_git_undo_checkout(git_repository *repo, const char *a, const char *b);

/*
 * Remove the lock files (index.lock, HEAD.lock, refs/.../x.lock, ...) that a
 * killed heimdal process left in repo's git directory, and only those it can
 * show are that process's: last modified in [since, until) (seconds since
 * the epoch: the dead process's lifetime), open in no live process
 * (/proc/PID/fd), and no git process running in the repository (its
 * current directory in the work tree or the git directory: git closes
 * index.lock while `git commit` waits for its editor).  Any other lock file
 * is left to git, with a warning naming it.  Returns how many were removed,
 * or -1.
 */
int hm_git_clear_stale_locks(git_repository *repo, time_t since, time_t until);

#endif
