/*
 * hm_git.h - git through libgit2: open, fetch, read files at a ref, merge base.
 *
 * Functions return 0 on success and -1 after printing an error that names the
 * repository and libgit2's message (hm_fail(HM_EXIT_ENV)), unless noted.
 * Network operations return HM_GIT_UNREACHABLE (without printing) when the
 * remote cannot be reached; hm_git_last_error() then says why.
 */
#ifndef HM_GIT_H
#define HM_GIT_H

#include <git2.h>
#include <jv.h>

#define HM_GIT_UNREACHABLE 1

/* Initialise libgit2 once (shut down at exit). */
void hm_git_init(void);

/* libgit2's last error message, or "unknown error". */
const char *hm_git_last_error(void);

/* Open the repository at path (no discovery upward).  NULL after an error. */
git_repository *hm_git_open(const char *path);

/*
 * The credential callback heimdal uses for every remote: ssh-agent, then
 * ~/.ssh/id_ed25519 and ~/.ssh/id_rsa; the user name from the URL.
 */
int hm_git_credentials(git_credential **out, const char *url, const char *username,
		       unsigned int allowed, void *payload);

/*
 * Fetch remote_name ("origin") with its configured refspecs.  Returns 0,
 * HM_GIT_UNREACHABLE, or -1.
 */
int hm_git_fetch(git_repository *repo, const char *remote_name);

/*
 * The file path at rev (any revparse spec: "HEAD", "refs/remotes/origin/main",
 * an oid), read without checkout.  Returns the bytes in a malloc'd buffer
 * (NUL-terminated, *len set) and 0; 1 when rev or path does not exist; -1 on
 * other errors.
 */
int hm_git_read_file(git_repository *repo, const char *rev, const char *path, char **buf,
		     size_t *len);

/* The merge base of revs a and b as hex into out[41]; 1 when none; -1 on error. */
int hm_git_merge_base(git_repository *repo, const char *a, const char *b, char out[41]);

/*
 * The upstream (remote-tracking) ref of the current branch, e.g.
 * "refs/remotes/origin/main", in a new buffer; NULL when there is none
 * (detached HEAD, unborn branch, no upstream), without printing.
 */
char *hm_git_upstream(git_repository *repo);

/* HEAD's commit id as hex into out[41]; -1 when HEAD is unborn or missing. */
int hm_git_head(git_repository *repo, char out[41]);

#endif
