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
 * Run fn(arg, out_fd) in a child process bounded by timeout_s seconds: libgit2
 * (1.5) has no network timeouts, and a server that accepts the connection but
 * never answers would hang it forever.  fn does the network work, may write a
 * result to out_fd (returned in *out, malloc'd and NUL-terminated, when out is
 * not NULL), and returns 0, HM_GIT_UNREACHABLE or -1 (after printing its
 * error).  On HM_GIT_UNREACHABLE, reason holds libgit2's message or "timed
 * out after N seconds".  The child never runs the parent's atexit handlers.
 */
int hm_git_deadline(int (*fn)(void *arg, int out_fd), void *arg, long timeout_s, char **out,
		    size_t *out_len, char *reason, size_t reason_len);

/* 1 when the last libgit2 error (after a failed call returning err) means the
 * remote could not be reached rather than that it refused. */
int hm_git_is_unreachable(int err);

/*
 * Fetch remote_name ("origin") with its configured refspecs, bounded by
 * timeout_s.  Returns 0, HM_GIT_UNREACHABLE (reason set), or -1.
 */
int hm_git_fetch(git_repository *repo, const char *remote_name, long timeout_s, char *reason,
		 size_t reason_len);

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
