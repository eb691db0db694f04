/*
 * hm_lsremote.h - what a remote's refs are, as `git ls-remote` says, within
 * a bounded time (hm_git_deadline), without fetching anything.
 */
#ifndef HM_LSREMOTE_H
#define HM_LSREMOTE_H

#include <git2.h>
#include <jv.h>

/*
 * List the refs of repo's remote remote_name ("origin"), bounded by
 * timeout_s.  Returns 0 and sets *refs (owned by the caller) to
 * {"refs/heads/main": "<40 hex>", ...}; HM_GIT_UNREACHABLE (hm_git.h) when
 * no connection could be made, or none answered in time; -1 when the remote
 * answered with an error or cannot be used (no such remote, a local path that
 * does not exist).  On failure *refs is jv_null() and reason holds why;
 * nothing is printed, so a caller can judge the answer as it sees fit.
 */
int hm_lsremote_list(git_repository *repo, const char *remote_name, long timeout_s, jv *refs,
		     char *reason, size_t reason_len);

#endif
