/*
 * hm_git.h - git through libgit2: open, fetch, read files at a ref, merge base.
 *
 * Functions return 0 on success and -1 after printing an error that names the
 * repository and libgit2's message (hm_fail(HM_EXIT_ENV)), unless noted.
 * Network operations return HM_GIT_UNREACHABLE (without printing) when no
 * connection to the remote can be made; hm_git_last_error() then says why.
 * A remote that answers with an error (the repository gone, access denied),
 * or a local path that does not exist, is an error (-1, printed).
 *
 * libgit2 writes through lock files (index.lock, a ref's .lock) that it
 * leaves to a process killed meanwhile.  So what writes to a repository here
 * holds the signals that end a process off until it is done (hm_sigchain):
 * hm_git_merge, hm_git_merge_finish (hm_gitmerge.h), hm_git_undo_checkout
 * (hm_gitrecover.h), hm_git_commit_files, and in the workers, a fetch from
 * its download (the pack and its index are written through lock files) to
 * its ref updates, and a push from its upload to its tracking ref.  A signal then ends the process
 * once the repository is whole.
 */
#ifndef HM_GIT_H
#define HM_GIT_H

#include <git2.h>
#include <jv.h>
#include <time.h>

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
 *
 * The child starts with the signal dispositions the process started with and
 * the caller's mask (hm_sigchain_forget): a signal ends it, unless the caller
 * holds the signals off, or fn does (hm_sigchain_hold) from the point where
 * the remote or the repository has to see the end of what it began, as a
 * push, or a fetch's download and ref updates.  A signal that comes to the caller
 * meanwhile stops the child (SIGTERM) and waits: it is passed on down the
 * chain (hm_sigchain) once the child is gone, as hm_git_deadline returns,
 * so nothing is given back (a lock) while the child still works under it.
 */
int hm_git_deadline(int (*fn)(void *arg, int out_fd), void *arg, long timeout_s, char **out,
		    size_t *out_len, char *reason, size_t reason_len);

/*
 * 1 when the last libgit2 error (after a failed call returning err) means no
 * connection could be made: refused, no route, the name not resolved, timed
 * out.  A server that answered with an error (a repository gone, access
 * denied, an early EOF) is 0: an error, never "offline".
 */
int hm_git_is_unreachable(int err);

/*
 * 1 when url names a local path (no scheme, and no scp-like "host:" before
 * the first slash) that does not exist: libgit2 would only say "unsupported
 * URL protocol".  Prints nothing.
 */
int hm_git_url_missing_path(const char *url);

/*
 * git_remote_fetch in two steps, for a hm_git_deadline worker: the download
 * may be cut short by a signal; the refs it updates (and prunes, as
 * configured) are written whole, the signals held off from then on (the
 * worker exits with them pending), so no lock file of git's is left behind.
 * libgit2's error code.
 */
int hm_git_fetch_whole(git_remote *remote, const git_fetch_options *opts);

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

/*
 * Transports.  Every URL libgit2 knows works: a local path, file://, git://,
 * ssh://[user@]host[:port]/path and scp-like [user@]host:path.  Over ssh the
 * credentials come from hm_git_credentials, and the server's host key must
 * match an entry of ~/.ssh/known_hosts or /etc/ssh/ssh_known_hosts (see
 * hm_knownhosts.h): an unknown, changed or revoked key is refused, as ssh's
 * StrictHostKeyChecking=yes does, and reported as an error, never as
 * "unreachable" (so is a failed authentication).
 */
#define HM_GIT_REJECTED 2

/*
 * The callbacks heimdal sets on every remote operation: credentials and the
 * known_hosts check.  data lives as long as the operation; url is borrowed.
 */
struct hm_git_netdata {
	int attempt; /* first: hm_git_credentials reads the payload as an int */
	const char *url;
	char rejected[512]; /* a refusal from the server or the lease, for the caller */
	const char *lease;  /* push: expected remote value (hex, 40 zeros = absent) */
};
void hm_git_callbacks(git_remote_callbacks *cb, struct hm_git_netdata *data, const char *url);

/*
 * libgit2 writes a pack to the socket object by object, a few bytes at a
 * time; under Nagle's algorithm every small write after the first waits for
 * the peer's delayed ACK (40 ms on Linux).  Called in a network child once
 * connected: its TCP sockets are the remote's, and send each write at once.
 */
void hm_git_tcp_nodelay(void);

/*
 * The one warning for a remote that could not be reached (reason: libgit2's
 * words or a timeout), on stderr, then the lines of what happens instead
 * (then, ending in a newline, or NULL).
 */
void hm_git_warn_unreachable(const char *reason, const char *then);

/* The known_hosts check libgit2 calls for ssh (certificate_check). */
int hm_git_certificate_check(git_cert *cert, int valid, const char *host, void *payload);

/*
 * Clone url into path (which must not exist or be an empty directory),
 * bounded by timeout_s.  The clone is made beside path and renamed into place,
 * so an interrupted clone leaves nothing behind.  A server that lists no
 * branch must be verifiably empty (a local repository, or a server that
 * sends its capabilities: hm_gitprobe.h) unless empty_ok: otherwise the
 * clone fails, saying so.  Returns 0, HM_GIT_UNREACHABLE (reason set) or -1.
 */
int hm_git_clone(const char *url, const char *path, int empty_ok, long timeout_s, char *reason,
		 size_t reason_len);

/* The URL of remote name, in a new buffer; NULL when there is no such remote. */
char *hm_git_remote_url(git_repository *repo, const char *name);

/* The current branch's short name ("main"), new buffer; NULL when detached. */
char *hm_git_branch(git_repository *repo);

/*
 * The remote-tracking ref the current branch merges from: its configured
 * upstream, else "refs/remotes/<remote>/<branch>" when that exists.  New
 * buffer, NULL when there is none (an empty remote).
 */
char *hm_git_tracking_ref(git_repository *repo, const char *remote);

/*
 * Push the current branch to the same name on remote, bounded by timeout_s,
 * and record the upstream when the branch had none.  Without lease the push
 * must fast-forward the remote branch.  With lease (hex id; 40 zeros when the
 * branch is expected not to exist) the push is forced, but only if the remote
 * branch still holds lease: a change nobody here has fetched is never
 * overwritten.  The remote-tracking ref follows.  Returns 0,
 * HM_GIT_PUSHED_NOTHING when the remote branch already was HEAD (nothing is
 * sent), HM_GIT_REJECTED (reason says why: not a fast-forward, stale lease,
 * refused by the server), HM_GIT_UNREACHABLE (reason set) or -1.  With unless
 * (a ref name, or NULL), a remote that has that ref gets nothing: the answer
 * is HM_GIT_HELD, read from the same connection the push would use.
 */
#define HM_GIT_PUSHED_NOTHING 3
#define HM_GIT_HELD 4
int hm_git_push(git_repository *repo, const char *remote, const char *lease, const char *unless,
		long timeout_s, char *reason, size_t reason_len);

/*
 * The tree of commit hex into *tree (free with git_tree_free); *tree NULL
 * and 0 for hex NULL or "" (no commit).  -1 without printing, libgit2's
 * error then says why.
 */
int hm_git_commit_tree(git_repository *repo, const char *hex, git_tree **tree);

/*
 * The signature heimdal commits with: the repository's configured user,
 * else "heimdal <$USER@hostname>".  Free with git_signature_free; NULL when
 * none can be made (libgit2's error says why).
 */
git_signature *hm_git_signature(git_repository *repo);

/*
 * 1 when the trees of commits a and b (hex; a may be "" for none) differ in
 * a path outside the directory prefix ("name/"), 0 when they do not, -1 on
 * error (printed).
 */
int hm_git_changed_outside(git_repository *repo, const char *a, const char *b, const char *prefix);

/*
 * Write buf[0..len) to path (relative to the working tree) atomically, stage
 * it, and commit it on the current branch with message when the tree changed
 * (the first commit of an unborn branch included).  The commit id goes to
 * out[41].  Returns 0 when committed, 1 when there was nothing to commit, -1.
 */
int hm_git_commit_file(git_repository *repo, const char *path, const char *buf, size_t len,
		       const char *message, char out[41]);

/*
 * The same for n files at once, in one commit (paths distinct): buf NULL
 * removes the path (from the tree, the index and the work tree); mode is
 * GIT_FILEMODE_BLOB_EXECUTABLE for an executable, else 0 or GIT_FILEMODE_BLOB.
 */
struct hm_git_file {
	const char *path;
	const char *buf;
	size_t len;
	unsigned mode;
};
int hm_git_commit_files(git_repository *repo, const struct hm_git_file *files, size_t n,
			const char *message, char out[41]);

#endif
