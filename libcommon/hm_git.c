#include "hm_git.h"
#include "hm_gitprobe.h"
#include "hm_term.h"
#include "hm_error.h"
#include "hm_file.h"
#include "hm_json.h"
#include "hm_knownhosts.h"
#include "hm_sigchain.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <string.h>
#include <unistd.h>

static void
shutdown_git(void)
{
	git_libgit2_shutdown();
}

void
hm_git_init(void)
{
	static int done;

	if (done)
		return;
	done = 1;
	git_libgit2_init();
	atexit(shutdown_git);
}

const char *
hm_git_last_error(void)
{
	const git_error *e = git_error_last();

	return e && e->message ? e->message : "unknown error";
}

git_repository *
hm_git_open(const char *path)
{
	git_repository *repo = NULL;

	hm_git_init();
	if (git_repository_open_ext(&repo, path, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0) {
		hm_error("%s: not a git repository: %s", path, hm_git_last_error());
		hm_fail(HM_EXIT_ENV);
		return NULL;
	}
	return repo;
}

int
hm_git_credentials(git_credential **out, const char *url, const char *username,
		   unsigned int allowed, void *payload)
{
	int *attempt = payload;
	const char *home = getenv("HOME");
	const char *user = username && *username ? username : getenv("USER");

	(void)url;
	if (!(allowed & GIT_CREDENTIAL_SSH_KEY) || !user)
		return GIT_PASSTHROUGH;
	/* libgit2 calls again after a rejected key: try each source once. */
	for (int n = attempt ? (*attempt)++ : 0; n < 3; n = attempt ? (*attempt)++ : 3) {
		char key[4096], pub[4200];

		if (n == 0) {
			if (getenv("SSH_AUTH_SOCK") &&
			    git_credential_ssh_key_from_agent(out, user) == 0)
				return 0;
			continue;
		}
		if (!home)
			break;
		snprintf(key, sizeof(key), "%s/.ssh/%s", home, n == 1 ? "id_ed25519" : "id_rsa");
		snprintf(pub, sizeof(pub), "%s.pub", key);
		if (access(key, R_OK) == 0 &&
		    git_credential_ssh_key_new(out, user, access(pub, R_OK) == 0 ? pub : NULL, key,
					       NULL) == 0)
			return 0;
	}
	return GIT_PASSTHROUGH;
}

int
hm_git_is_unreachable(int err)
{
	/*
	 * What a connection that could not be made says (libgit2's socket and
	 * resolver messages, with strerror's or gai_strerror's words).  Anything
	 * else came from a server that answered: a repository gone, access
	 * denied, a protocol error, an early EOF.
	 */
	static const char *const no_connection[] = {
		"failed to connect to",      "failed to resolve address",
		"connection refused",        "no route to host",
		"network is unreachable",    "host is unreachable",
		"connection timed out",      "temporary failure in name resolution",
		"name or service not known", NULL,
	};
	const git_error *e = git_error_last();

	(void)err;
	if (!e || !e->message ||
	    (e->klass != GIT_ERROR_NET && e->klass != GIT_ERROR_SSH && e->klass != GIT_ERROR_OS &&
	     e->klass != GIT_ERROR_HTTP))
		return 0;
	for (int i = 0; no_connection[i]; i++)
		if (strcasestr(e->message, no_connection[i]))
			return 1;
	return 0;
}

void
hm_git_warn_unreachable(const char *reason, const char *then)
{
	char safe[1024];

	hm_term_escape(reason, 0, safe, sizeof(safe));
	fprintf(stderr, "%s Warning: Cannot reach remote repository: %s\n%s", hm_mark(HM_MARK_WARN),
		safe, then ? then : "");
	fflush(stderr);
}

int
hm_git_url_missing_path(const char *url)
{
	const char *colon = strchr(url, ':'), *slash = strchr(url, '/');
	struct stat st;

	if (strstr(url, "://") || (colon && (!slash || colon < slash)))
		return 0;
	return stat(url, &st) < 0 && errno == ENOENT;
}

/* hm_git_url_missing_path, with the error printed. */
static int
local_path_missing(const char *url)
{
	if (!hm_git_url_missing_path(url))
		return 0;
	hm_error("%s: no such repository: the path does not exist", url);
	return 1;
}

static volatile pid_t worker;
static volatile sig_atomic_t stopped;

/*
 * A signal while a worker runs: the worker is told to stop (it dies of it,
 * unless it holds the signals off to finish what the remote or the
 * repository must see whole), hm_git_deadline waits for it as usual, and
 * passes the signal on down the chain once it is gone.
 */
static void
stop_worker(int sig)
{
	pid_t w = worker;

	if (!stopped)
		stopped = sig;
	if (w > 0)
		kill(w, SIGTERM);
}

/*
 * The worker's side of deadline_run, after fork: tied to the parent's life,
 * rid of the parent's cleanup and of buf, then fn on the output pipe; why
 * an unreachable remote was is written to the reason pipe.  Exits 0 for
 * success, 10 for unreachable, 11 for any other failure.
 */
static _Noreturn void
worker_child(int (*fn)(void *, int), void *arg, pid_t parent, char *buf, const int outp[2],
	     const int whyp[2])
{
	int r;

	/* A parent killed by a signal must not leave network work behind. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(11);
	/* Not the parent's cleanup: a signal ends the worker (see hm_git.h). */
	hm_sigchain_forget();
	/* The parent's read buffer is of no use here (and a leak to memcheck). */
	free(buf);
	close(outp[0]);
	close(whyp[0]);
	r = fn(arg, outp[1]);
	if (r == HM_GIT_UNREACHABLE) {
		const char *m = hm_git_last_error();

		if (write(whyp[1], m, strlen(m)) < 0)
			_exit(11);
	}
	_exit(r == 0 ? 0 : r == HM_GIT_UNREACHABLE ? 10 : 11);
}

/* What the parent reads from a worker: its output and, when unreachable, why. */
struct worker_io {
	int out, why; /* the read ends, -1 once closed */
	char *buf;    /* the output, buf[0..len) of cap */
	size_t len, cap;
	char reason[512];
	size_t rlen;
};

/* One read of the worker's output; its pipe closed (-1) at the end or on an error. */
static void
read_output(struct worker_io *io)
{
	ssize_t n;

	if (io->cap - io->len < 4096)
		io->buf = hm_xrealloc(io->buf, io->cap *= 2);
	n = read(io->out, io->buf + io->len, io->cap - io->len - 1);
	if (n > 0) {
		io->len += (size_t)n;
	} else if (n == 0 || errno != EINTR) {
		close(io->out);
		io->out = -1;
	}
}

/* One read of the worker's reason; its pipe closed (-1) at the end or on an error. */
static void
read_reason(struct worker_io *io)
{
	ssize_t n = read(io->why, io->reason + io->rlen, sizeof(io->reason) - 1 - io->rlen);

	if (n > 0) {
		io->rlen += (size_t)n;
	} else if (n == 0 || errno != EINTR) {
		close(io->why);
		io->why = -1;
	}
}

/* Milliseconds left of timeout_s seconds counted from start (<= 0: none). */
static long
ms_left(const struct timespec *start, long timeout_s)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return timeout_s * 1000 -
	       ((now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000);
}

/* Read both pipes until they close (or poll fails): 0, or -1 when timeout_s passed first. */
static int
worker_collect(struct worker_io *io, long timeout_s)
{
	struct timespec start;
	int r;

	clock_gettime(CLOCK_MONOTONIC, &start);
	while (io->out >= 0 || io->why >= 0) {
		struct pollfd fds[2] = { { .fd = io->out, .events = POLLIN },
					 { .fd = io->why, .events = POLLIN } };
		long left = ms_left(&start, timeout_s);

		if (left <= 0 || (r = poll(fds, 2, (int)left)) == 0)
			return -1;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (fds[0].fd >= 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR)))
			read_output(io);
		if (io->why >= 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR)))
			read_reason(io);
	}
	return 0;
}

/* A worker past its deadline: killed, reaped, its pipes closed, the reason said. */
static int
worker_timeout(pid_t pid, struct worker_io *io, long timeout_s, char *reason, size_t reason_len)
{
	int st;

	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	worker = 0;
	close(io->out);
	close(io->why);
	free(io->buf);
	snprintf(reason, reason_len, "timed out after %ld seconds", timeout_s);
	return HM_GIT_UNREACHABLE;
}

/* Wait for the worker that closed its pipes: 0, HM_GIT_UNREACHABLE, or -1 by its status. */
static int
worker_reap(pid_t pid, struct worker_io *io)
{
	int st;

	if (io->out >= 0)
		close(io->out);
	if (io->why >= 0)
		close(io->why);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	worker = 0;
	io->reason[io->rlen] = '\0';
	io->buf[io->len] = '\0';
	return WIFEXITED(st) && WEXITSTATUS(st) == 0    ? 0
	       : WIFEXITED(st) && WEXITSTATUS(st) == 10 ? HM_GIT_UNREACHABLE
							: -1;
}

static int
deadline_run(int (*fn)(void *, int), void *arg, long timeout_s, char **out, size_t *out_len,
	     char *reason, size_t reason_len)
{
	struct worker_io io = { .cap = 4096 };
	int outp[2], whyp[2], r;
	pid_t pid, parent;

	io.buf = hm_xmalloc(io.cap);
	if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(whyp, O_CLOEXEC) < 0) {
		free(io.buf);
		hm_error_errno("pipe");
		return hm_fail(HM_EXIT_ENV);
	}
	fflush(NULL);
	parent = getpid();
	pid = fork();
	if (pid < 0) {
		free(io.buf);
		hm_error_errno("fork");
		return hm_fail(HM_EXIT_ENV);
	}
	if (pid == 0)
		worker_child(fn, arg, parent, io.buf, outp, whyp);
	worker = pid;
	close(outp[1]);
	close(whyp[1]);
	io.out = outp[0];
	io.why = whyp[0];
	if (worker_collect(&io, timeout_s) < 0)
		return worker_timeout(pid, &io, timeout_s, reason, reason_len);
	r = worker_reap(pid, &io);
	if (r == HM_GIT_UNREACHABLE)
		snprintf(reason, reason_len, "%s", io.reason[0] ? io.reason : "unreachable");
	if (r == 0 && out) {
		*out = io.buf;
		if (out_len)
			*out_len = io.len;
	} else {
		free(io.buf);
	}
	return r < 0 ? hm_fail(HM_EXIT_ENV) : r;
}

int
hm_git_deadline(int (*fn)(void *, int), void *arg, long timeout_s, char **out, size_t *out_len,
		char *reason, size_t reason_len)
{
	int r;

	stopped = 0;
	hm_sigchain_push_common(stop_worker);
	r = deadline_run(fn, arg, timeout_s, out, out_len, reason, reason_len);
	hm_sigchain_pop_common();
	if (stopped)
		raise(stopped);
	return r;
}

static int net_failure(int err, struct hm_git_netdata *d, const char *what);

struct fetch_args {
	git_repository *repo;
	const char *remote;
};

static int
fetch_child(void *arg, int out_fd)
{
	struct fetch_args *a = arg;
	git_fetch_options opts = GIT_FETCH_OPTIONS_INIT;
	git_remote *remote = NULL;
	struct hm_git_netdata d;
	int err;

	(void)out_fd;
	if (git_remote_lookup(&remote, a->repo, a->remote) < 0) {
		hm_error("%s: no remote '%s': %s", git_repository_workdir(a->repo), a->remote,
			 hm_git_last_error());
		return -1;
	}
	if (local_path_missing(git_remote_url(remote))) {
		git_remote_free(remote);
		return -1;
	}
	hm_git_callbacks(&opts.callbacks, &d, git_remote_url(remote));
	err = hm_git_fetch_whole(remote, &opts);
	if (err < 0) {
		char *what = hm_xasprintf("fetch from '%s' failed", a->remote);

		err = net_failure(err, &d, what);
		free(what);
	}
	git_remote_free(remote);
	return err;
}

int
hm_git_fetch_whole(git_remote *remote, const git_fetch_options *opts)
{
	int err = git_remote_connect(remote, GIT_DIRECTION_FETCH, &opts->callbacks,
				     &opts->proxy_opts, &opts->custom_headers);
	sigset_t held;

	/*
	 * From the download on, no signal: libgit2 writes the pack and its
	 * index through temporaries and lock files it leaves to a process
	 * killed meanwhile.  The fetch ends (remote_timeout bounds it), then
	 * the signal ends the worker.
	 */
	if (err == 0) {
		hm_sigchain_hold(&held);
		err = git_remote_download(remote, NULL, opts);
	}
	if (err == 0) {
		err = git_remote_update_tips(remote, &opts->callbacks, opts->update_fetchhead,
					     opts->download_tags, NULL);
		if (err == 0 &&
		    (opts->prune == GIT_FETCH_PRUNE ||
		     (opts->prune == GIT_FETCH_PRUNE_UNSPECIFIED && git_remote_prune_refs(remote))))
			err = git_remote_prune(remote, &opts->callbacks);
	}
	git_remote_disconnect(remote);
	return err;
}

int
hm_git_fetch(git_repository *repo, const char *remote_name, long timeout_s, char *reason,
	     size_t reason_len)
{
	struct fetch_args a = { repo, remote_name };
	git_odb *odb = NULL;
	int r = hm_git_deadline(fetch_child, &a, timeout_s, NULL, NULL, reason, reason_len);

	/* The objects arrived through another process: let this one see them. */
	if (r == 0 && git_repository_odb(&odb, repo) == 0) {
		git_odb_refresh(odb);
		git_odb_free(odb);
	}
	return r;
}

int
hm_git_read_file(git_repository *repo, const char *rev, const char *path, char **buf, size_t *len)
{
	git_object *obj = NULL;
	git_commit *commit = NULL;
	git_tree *tree = NULL;
	git_tree_entry *entry = NULL;
	git_blob *blob = NULL;
	int r = 1;

	if (git_revparse_single(&obj, repo, rev) < 0)
		goto out;
	if (git_object_peel((git_object **)&commit, obj, GIT_OBJECT_COMMIT) < 0 ||
	    git_commit_tree(&tree, commit) < 0) {
		r = hm_error("%s: %s", rev, hm_git_last_error());
		goto out;
	}
	if (git_tree_entry_bypath(&entry, tree, path) < 0)
		goto out;
	if (git_tree_entry_type(entry) != GIT_OBJECT_BLOB) {
		r = hm_error("%s:%s: not a file", rev, path);
		goto out;
	}
	if (git_blob_lookup(&blob, repo, git_tree_entry_id(entry)) < 0) {
		r = hm_error("%s:%s: %s", rev, path, hm_git_last_error());
		goto out;
	}
	*len = (size_t)git_blob_rawsize(blob);
	*buf = hm_xmalloc(*len + 1);
	memcpy(*buf, git_blob_rawcontent(blob), *len);
	(*buf)[*len] = '\0';
	r = 0;
out:
	git_blob_free(blob);
	git_tree_entry_free(entry);
	git_tree_free(tree);
	git_commit_free(commit);
	git_object_free(obj);
	return r < 0 ? hm_fail(HM_EXIT_ENV) : r;
}

static int
resolve(git_repository *repo, const char *rev, git_oid *oid)
{
	git_object *obj = NULL, *c = NULL;
	int r = -1;

	if (git_revparse_single(&obj, repo, rev) == 0 &&
	    git_object_peel(&c, obj, GIT_OBJECT_COMMIT) == 0) {
		git_oid_cpy(oid, git_object_id(c));
		r = 0;
	}
	git_object_free(c);
	git_object_free(obj);
	return r;
}

int
hm_git_merge_base(git_repository *repo, const char *a, const char *b, char out[41])
{
	git_oid oa, ob, base;
	int err;

	if (resolve(repo, a, &oa) < 0 || resolve(repo, b, &ob) < 0) {
		hm_error("cannot resolve '%s' or '%s': %s", a, b, hm_git_last_error());
		return hm_fail(HM_EXIT_ENV);
	}
	err = git_merge_base(&base, repo, &oa, &ob);
	if (err == GIT_ENOTFOUND)
		return 1;
	if (err < 0) {
		hm_error("merge base of '%s' and '%s': %s", a, b, hm_git_last_error());
		return hm_fail(HM_EXIT_ENV);
	}
	git_oid_tostr(out, 41, &base);
	return 0;
}

char *
hm_git_upstream(git_repository *repo)
{
	git_reference *head = NULL, *up = NULL;
	char *name = NULL;

	if (git_repository_head(&head, repo) == 0 && git_reference_is_branch(head) &&
	    git_branch_upstream(&up, head) == 0)
		name = hm_xstrdup(git_reference_name(up));
	git_reference_free(up);
	git_reference_free(head);
	return name;
}

int
hm_git_head(git_repository *repo, char out[41])
{
	git_oid oid;

	if (git_reference_name_to_id(&oid, repo, "HEAD") < 0)
		return -1;
	git_oid_tostr(out, 41, &oid);
	return 0;
}

/* ---- transports: callbacks, known_hosts -------------------------------- */

/* host and port of an ssh URL; port 22 for scp-like "user@host:path". */
static void
ssh_host_port(const char *url, char *host, size_t hlen, int *port)
{
	const char *p = url, *end;
	size_t n;

	*port = 22;
	host[0] = '\0';
	if (!url)
		return;
	if ((end = strstr(p, "://")))
		p = end + 3;
	if ((end = strchr(p, '@')) && end < p + strcspn(p, "/"))
		p = end + 1;
	if (*p == '[') { /* [host]:port or [::1] */
		end = strchr(p, ']');
		if (!end)
			return;
		n = (size_t)(end - p - 1);
		snprintf(host, hlen, "%.*s", (int)n, p + 1);
		p = end + 1;
	} else {
		n = strcspn(p, ":/");
		snprintf(host, hlen, "%.*s", (int)n, p);
		p += n;
	}
	/* Only the ssh:// form has a port; in "host:path" the colon starts the path. */
	if (strstr(url, "://") && *p == ':')
		*port = atoi(p + 1) > 0 ? atoi(p + 1) : 22;
}

int
hm_git_certificate_check(git_cert *cert, int valid, const char *host, void *payload)
{
	struct hm_git_netdata *d = payload;
	git_cert_hostkey *hk = (git_cert_hostkey *)cert;
	char h[256], name[300], *user_file;
	const char *home = getenv("HOME");
	int port, r = 1;

	/* TLS: libgit2's own verification.  ssh: this lookup decides, whatever
	 * libgit2's own check said (valid): libssh2's ignores @revoked and "!". */
	if (cert->cert_type != GIT_CERT_HOSTKEY_LIBSSH2)
		return valid ? 0 : GIT_PASSTHROUGH;
	ssh_host_port(d ? d->url : NULL, h, sizeof(h), &port);
	if (!h[0])
		snprintf(h, sizeof(h), "%s", host);
	if (port == 22)
		snprintf(name, sizeof(name), "%s", h);
	else
		snprintf(name, sizeof(name), "[%s]:%d", h, port);
	if (!(hk->type & GIT_CERT_SSH_RAW)) {
		if (d)
			snprintf(d->rejected, sizeof(d->rejected),
				 "%s: the server's host key cannot be checked", name);
		return GIT_ECERTIFICATE;
	}
	user_file = home ? hm_xasprintf("%s/.ssh/known_hosts", home) : NULL;
	if (user_file)
		r = hm_knownhosts_lookup(user_file, name, hk->hostkey, hk->hostkey_len);
	if (r == 1)
		r = hm_knownhosts_lookup("/etc/ssh/ssh_known_hosts", name, hk->hostkey,
					 hk->hostkey_len);
	free(user_file);
	if (r == 0)
		return 0;
	if (d)
		snprintf(d->rejected, sizeof(d->rejected),
			 r == 1 ? "%s: host key not in ~/.ssh/known_hosts (connect once with ssh "
				  "to check and record it)"
				: "%s: HOST KEY DOES NOT MATCH ~/.ssh/known_hosts, or is "
				  "revoked (refusing to connect)",
			 name);
	return GIT_ECERTIFICATE;
}

/* The server's per-ref answer to a push: NULL status means accepted. */
static int
push_status(const char *refname, const char *status, void *payload)
{
	struct hm_git_netdata *d = payload;

	if (status && !d->rejected[0])
		snprintf(d->rejected, sizeof(d->rejected), "%s: %s", refname, status);
	return 0;
}

/* The lease: the remote's current value, as this push saw it, must be the expected one. */
static int
push_negotiation(const git_push_update **updates, size_t len, void *payload)
{
	struct hm_git_netdata *d = payload;

	if (!d->lease)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char src[41];

		git_oid_tostr(src, sizeof(src), &updates[i]->src);
		if (strcmp(src, d->lease) != 0) {
			snprintf(d->rejected, sizeof(d->rejected),
				 "stale info: %s on the remote is at %.7s, but this machine last "
				 "saw %.7s (fetch first)",
				 updates[i]->dst_refname,
				 git_oid_is_zero(&updates[i]->src) ? "nothing" : src,
				 strspn(d->lease, "0") == 40 ? "nothing" : d->lease);
			return GIT_EUSER;
		}
	}
	return 0;
}

void
hm_git_callbacks(git_remote_callbacks *cb, struct hm_git_netdata *data, const char *url)
{
	memset(data, 0, sizeof(*data));
	data->url = url;
	cb->credentials = hm_git_credentials;
	cb->certificate_check = hm_git_certificate_check;
	cb->push_update_reference = push_status;
	cb->push_negotiation = push_negotiation;
	cb->payload = data;
}

/* An error from a network call: unreachable, refused by our checks, or plain. */
static int
net_failure(int err, struct hm_git_netdata *d, const char *what)
{
	const char *msg = hm_git_last_error();

	if (d->rejected[0]) {
		hm_error("%s: %s", what, d->rejected);
		return -1;
	}
	/* The server answered and said no: that is not being offline. */
	if (err == GIT_EAUTH || err == GIT_ECERTIFICATE || strstr(msg, "authentication") ||
	    strstr(msg, "hostkey") || strstr(msg, "host key")) {
		hm_error("%s: %s (keys are taken from ssh-agent, ~/.ssh/id_ed25519 and "
			 "~/.ssh/id_rsa; hosts from ~/.ssh/known_hosts)",
			 what, msg);
		return -1;
	}
	if (hm_git_is_unreachable(err))
		return HM_GIT_UNREACHABLE;
	hm_error("%s: %s", what, hm_git_last_error());
	return -1;
}

/* ---- clone ------------------------------------------------------------- */

struct clone_args {
	const char *url;
	const char *path;
	int empty_ok;
};

/* The remote branch a clone without a branch takes: main, master, or the only one. */
static git_reference *
branch_to_adopt(git_repository *repo, int *several)
{
	git_branch_iterator *it;
	git_reference *ref, *pick = NULL;
	git_branch_t type;
	int n = 0, rank = 0;

	if (git_branch_iterator_new(&it, repo, GIT_BRANCH_REMOTE) < 0)
		return NULL;
	while (git_branch_next(&ref, &type, it) == 0) {
		const char *name = git_reference_shorthand(ref);
		int r = !strcmp(name, "origin/main") ? 3 : !strcmp(name, "origin/master") ? 2 : 1;

		if (!strcmp(name, "origin/HEAD")) {
			git_reference_free(ref);
			continue;
		}
		n++;
		if (r > rank) {
			git_reference_free(pick);
			pick = ref, rank = r;
		} else {
			git_reference_free(ref);
		}
	}
	git_branch_iterator_free(it);
	*several = n > 1 && rank == 1;
	return pick;
}

/*
 * A remote whose HEAD names a branch it does not have (a bare repository
 * made with one default branch, pushed another) leaves the clone on an
 * unborn branch beside origin's: heimdal would take that for an empty
 * repository and start a lineage of its own.  The clone takes origin's
 * branch instead.  0, or -1 (printed).
 */
static int
adopt_branch(git_repository *repo, const char *url)
{
	git_checkout_options co = GIT_CHECKOUT_OPTIONS_INIT;
	git_reference *pick, *local = NULL;
	git_commit *commit = NULL;
	int several = 0, r = -1;
	const char *name;

	if (git_repository_head_unborn(repo) != 1 || !(pick = branch_to_adopt(repo, &several)))
		return 0;
	name = git_reference_shorthand(pick) + strlen("origin/");
	if (several) {
		hm_error("%s: its HEAD names no branch it has, and it has several besides %s; "
			 "set the remote's HEAD (git symbolic-ref HEAD refs/heads/BRANCH in it)",
			 url, name);
		goto out;
	}
	co.checkout_strategy = GIT_CHECKOUT_SAFE;
	if (git_commit_lookup(&commit, repo, git_reference_target(pick)) < 0 ||
	    git_branch_create(&local, repo, name, commit, 0) < 0 ||
	    git_branch_set_upstream(local, git_reference_shorthand(pick)) < 0 ||
	    git_repository_set_head(repo, git_reference_name(local)) < 0 ||
	    git_checkout_head(repo, &co) < 0)
		hm_error("%s: cannot check out %s: %s", url, name, hm_git_last_error());
	else
		r = 0;
out:
	git_commit_free(commit);
	git_reference_free(local);
	git_reference_free(pick);
	return r;
}

static int
clone_child(void *arg, int out_fd)
{
	struct clone_args *a = arg;
	git_clone_options opts = GIT_CLONE_OPTIONS_INIT;
	struct hm_git_netdata d;
	git_repository *repo = NULL;
	int err;

	(void)out_fd;
	if (local_path_missing(a->url))
		return -1;
	hm_git_callbacks(&opts.fetch_opts.callbacks, &d, a->url);
	if (hm_gitprobe_install() < 0)
		return hm_error("%s: %s", a->url, hm_git_last_error());
	err = git_clone(&repo, a->url, a->path, &opts);
	if (err < 0)
		return net_failure(err, &d, a->url);
	if (adopt_branch(repo, a->url) < 0) {
		git_repository_free(repo);
		return -1;
	}
	/* "Empty" must be verifiably empty, not a silent or broken answer. */
	err = git_repository_is_empty(repo) == 1 && hm_gitprobe_bare() && !a->empty_ok;
	git_repository_free(repo);
	if (err)
		return hm_error("%s: the server lists no branch and sends no capabilities, so "
				"the repository cannot be told empty; nothing cloned (when it is "
				"new and empty, run 'heimdal init' again with --empty)",
				a->url);
	return 0;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

int
hm_git_clone(const char *url, const char *path, int empty_ok, long timeout_s, char *reason,
	     size_t reason_len)
{
	char *tmp = hm_xasprintf("%s.clone-XXXXXX", path);
	struct clone_args a = { url, tmp, empty_ok };
	int r;

	hm_git_init();
	{
		char *parent = hm_xstrdup(path), *slash = strrchr(parent, '/');

		if (slash && slash != parent) {
			*slash = '\0';
			if (hm_mkdir_p(parent, 0755) < 0) {
				free(parent);
				free(tmp);
				return -1;
			}
		}
		free(parent);
	}
	if (!mkdtemp(tmp)) {
		hm_error_errno("%s", tmp);
		free(tmp);
		return hm_fail(HM_EXIT_ENV);
	}
	r = hm_git_deadline(clone_child, &a, timeout_s, NULL, NULL, reason, reason_len);
	if (r == 0 && rename(tmp, path) < 0) {
		hm_error_errno("cannot move the clone to %s", path);
		r = hm_fail(HM_EXIT_ENV);
	}
	if (r != 0)
		nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(tmp);
	return r;
}

char *
hm_git_remote_url(git_repository *repo, const char *name)
{
	git_remote *remote = NULL;
	char *url = NULL;

	if (git_remote_lookup(&remote, repo, name) == 0 && git_remote_url(remote))
		url = hm_xstrdup(git_remote_url(remote));
	git_remote_free(remote);
	return url;
}

char *
hm_git_branch(git_repository *repo)
{
	git_reference *head = NULL;
	char *name = NULL;
	const char *target;

	/* An unborn branch still has a name: HEAD's symbolic target. */
	if (git_reference_lookup(&head, repo, "HEAD") < 0)
		return NULL;
	target = git_reference_symbolic_target(head);
	if (target && strncmp(target, "refs/heads/", 11) == 0)
		name = hm_xstrdup(target + 11);
	git_reference_free(head);
	return name;
}

char *
hm_git_tracking_ref(git_repository *repo, const char *remote)
{
	char *up = hm_git_upstream(repo), *branch, *ref;
	git_reference *r = NULL;

	if (up)
		return up;
	if (!(branch = hm_git_branch(repo)))
		return NULL;
	ref = hm_xasprintf("refs/remotes/%s/%s", remote, branch);
	free(branch);
	if (git_reference_lookup(&r, repo, ref) < 0) {
		free(ref);
		return NULL;
	}
	git_reference_free(r);
	return ref;
}

/* ---- push -------------------------------------------------------------- */

struct push_args {
	git_repository *repo;
	const char *remote;
	const char *branch;
	const char *lease;
	const char *unless; /* a ref whose presence on the remote stops the push */
};

/* Point the remote-tracking ref of dst ("refs/heads/x") at oid, as a fetch would. */
static void
track(git_remote *remote, git_repository *repo, const char *dst, const git_oid *oid)
{
	size_t n = git_remote_refspec_count(remote);

	for (size_t i = 0; i < n; i++) {
		const git_refspec *rs = git_remote_get_refspec(remote, i);
		git_buf name = GIT_BUF_INIT;
		git_reference *ref = NULL;

		if (git_refspec_direction(rs) != GIT_DIRECTION_FETCH ||
		    !git_refspec_src_matches(rs, dst) || git_refspec_transform(&name, rs, dst) < 0)
			continue;
		git_reference_create(&ref, repo, name.ptr, oid, 1, "heimdal: push");
		git_reference_free(ref);
		git_buf_dispose(&name);
	}
}

void
hm_git_tcp_nodelay(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int on = 1;

	while (d && (de = readdir(d))) {
		int fd = atoi(de->d_name), proto;
		socklen_t len = sizeof(proto);
		struct stat st;

		if (de->d_name[0] < '0' || de->d_name[0] > '9' || fd == dirfd(d) ||
		    fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode) ||
		    getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) < 0 ||
		    proto != IPPROTO_TCP)
			continue;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	}
	if (d)
		closedir(d);
}

/*
 * The push itself, in the deadline child.  It tells the parent through out_fd:
 * nothing when pushed, "U" when the remote already had the commit (nothing
 * sent: libgit2 would otherwise make the server process an empty pack), "H"
 * when the remote has a->unless (nothing sent), or "R<why>" when refused.
 * Refusals are answers, not failures: the lease (GIT_EUSER from
 * push_negotiation), libgit2's own fast-forward check, or the server's
 * per-ref status.
 */
static int
push_child(void *arg, int out_fd)
{
	struct push_args *a = arg;
	git_push_options opts = GIT_PUSH_OPTIONS_INIT;
	struct hm_git_netdata d;
	git_remote *remote = NULL;
	const git_remote_head **heads;
	char *dst = hm_xasprintf("refs/heads/%s", a->branch);
	char *spec = hm_xasprintf("%s%s:%s", a->lease ? "+" : "", dst, dst);
	git_strarray specs = { &spec, 1 };
	size_t nheads;
	git_oid local;
	int err, same = 0, held = 0;
	const char *say = "";
	char *msg = NULL;

	if (git_remote_lookup(&remote, a->repo, a->remote) < 0 ||
	    git_reference_name_to_id(&local, a->repo, "HEAD") < 0) {
		hm_error("cannot push to '%s': %s", a->remote, hm_git_last_error());
		err = -1;
		goto out;
	}
	if (local_path_missing(git_remote_url(remote))) {
		err = -1;
		goto out;
	}
	hm_git_callbacks(&opts.callbacks, &d, git_remote_url(remote));
	d.lease = a->lease;
	err = git_remote_connect(remote, GIT_DIRECTION_PUSH, &opts.callbacks, &opts.proxy_opts,
				 &opts.custom_headers);
	if (err == 0) {
		hm_git_tcp_nodelay();
		err = git_remote_ls(&heads, &nheads, remote);
	}
	for (size_t i = 0; err == 0 && i < nheads; i++) {
		same |= strcmp(heads[i]->name, dst) == 0 && git_oid_equal(&heads[i]->oid, &local);
		held |= a->unless && strcmp(heads[i]->name, a->unless) == 0;
	}
	if (err == 0 && held) {
		git_remote_disconnect(remote);
		err = write(out_fd, "H", 1) < 0 ? -1 : 0;
		goto out;
	}
	/* From the push sent to the tracking ref written, the signals wait: the
	 * remote and this clone agree on what was pushed (hm_git_deadline). */
	if (err == 0 && !same) {
		sigset_t sent;

		hm_sigchain_hold(&sent);
		err = git_remote_upload(remote, &specs, &opts);
	}
	git_remote_disconnect(remote);
	if (err == GIT_EUSER || err == GIT_ENONFASTFORWARD || (err == 0 && d.rejected[0])) {
		say = msg = hm_xasprintf(
			"R%s", d.rejected[0]
				       ? d.rejected
				       : "the remote has commits this machine has not fetched");
		err = 0;
	} else if (err < 0) {
		err = net_failure(err, &d, git_remote_url(remote));
		goto out;
	} else {
		track(remote, a->repo, dst, &local);
		say = same ? "U" : "";
	}
	if (*say && write(out_fd, say, strlen(say)) < 0)
		err = -1;
out:
	free(msg);
	free(spec);
	free(dst);
	git_remote_free(remote);
	return err;
}

int
hm_git_push(git_repository *repo, const char *remote, const char *lease, const char *unless,
	    long timeout_s, char *reason, size_t reason_len)
{
	struct push_args a = { repo, remote, NULL, lease, unless };
	char *branch = hm_git_branch(repo), *out = NULL, *key;
	git_config *cfg = NULL;
	git_buf val = GIT_BUF_INIT;
	int r;

	if (!branch) {
		hm_error("%s: HEAD is detached: check out a branch to push",
			 git_repository_workdir(repo));
		return hm_fail(HM_EXIT_ENV);
	}
	a.branch = branch;
	r = hm_git_deadline(push_child, &a, timeout_s, &out, NULL, reason, reason_len);
	if (r == 0 && out && out[0] == 'R') {
		snprintf(reason, reason_len, "%s", out + 1);
		r = HM_GIT_REJECTED;
	} else if (r == 0 && out && out[0] == 'U') {
		r = HM_GIT_PUSHED_NOTHING;
	} else if (r == 0 && out && out[0] == 'H') {
		r = HM_GIT_HELD;
	}
	free(out);
	/* The first push of a branch makes it track the remote, as `git push -u`. */
	key = hm_xasprintf("branch.%s.remote", branch);
	if ((r == 0 || r == HM_GIT_PUSHED_NOTHING) && git_repository_config(&cfg, repo) == 0 &&
	    git_config_get_string_buf(&val, cfg, key) == GIT_ENOTFOUND) {
		char *merge = hm_xasprintf("branch.%s.merge", branch);
		char *ref = hm_xasprintf("refs/heads/%s", branch);
		sigset_t held;

		hm_sigchain_hold(&held); /* config.lock, as in hm_git.h */
		if (git_config_set_string(cfg, key, remote) < 0 ||
		    git_config_set_string(cfg, merge, ref) < 0)
			hm_warn("cannot record the upstream of %s: %s", branch,
				hm_git_last_error());
		hm_sigchain_release(&held);
		free(merge);
		free(ref);
	}
	git_buf_dispose(&val);
	git_config_free(cfg);
	free(key);
	free(branch);
	return r;
}

/* ---- diff -------------------------------------------------------------- */

int
hm_git_commit_tree(git_repository *repo, const char *hex, git_tree **tree)
{
	git_oid oid;
	git_commit *c = NULL;
	int r;

	*tree = NULL;
	if (!hex || !*hex)
		return 0;
	if (git_oid_fromstr(&oid, hex) < 0 || git_commit_lookup(&c, repo, &oid) < 0)
		return -1;
	r = git_commit_tree(tree, c);
	git_commit_free(c);
	return r;
}

int
hm_git_changed_outside(git_repository *repo, const char *a, const char *b, const char *prefix)
{
	git_tree *ta = NULL, *tb = NULL;
	git_diff *diff = NULL;
	size_t n, plen = strlen(prefix);
	int r = 0;

	if (hm_git_commit_tree(repo, a, &ta) < 0 || hm_git_commit_tree(repo, b, &tb) < 0 ||
	    git_diff_tree_to_tree(&diff, repo, ta, tb, NULL) < 0) {
		hm_error("cannot compare %.7s and %.7s: %s", a, b, hm_git_last_error());
		r = hm_fail(HM_EXIT_ENV);
		goto out;
	}
	n = git_diff_num_deltas(diff);
	for (size_t i = 0; i < n && !r; i++) {
		const git_diff_delta *d = git_diff_get_delta(diff, i);

		r = strncmp(d->new_file.path, prefix, plen) != 0 ||
		    strncmp(d->old_file.path, prefix, plen) != 0;
	}
out:
	git_diff_free(diff);
	git_tree_free(ta);
	git_tree_free(tb);
	return r;
}

/* ---- commit ------------------------------------------------------------ */

git_signature *
hm_git_signature(git_repository *repo)
{
	git_signature *sig = NULL;
	char host[256], *email;

	if (git_signature_default(&sig, repo) == 0)
		return sig;
	if (gethostname(host, sizeof(host)) < 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	email = hm_xasprintf("%s@%s", getenv("USER") ? getenv("USER") : "heimdal", host);
	if (git_signature_now(&sig, "heimdal", email) < 0)
		sig = NULL;
	free(email);
	return sig;
}

/*
 * Write one file of a commit into the work tree (or remove it), beneath the
 * work tree through no symlink (a repository whose .heimdal is a link is
 * never written through); its blob id into up.
 */
static int
commit_put(git_repository *repo, const struct hm_git_file *f, git_tree_update *up)
{
	char *full = hm_path_join(git_repository_workdir(repo), f->path);
	int exec = f->mode == GIT_FILEMODE_BLOB_EXECUTABLE, r = -1;
	int wfd = open(git_repository_workdir(repo), O_PATH | O_DIRECTORY | O_CLOEXEC);

	up->action = f->buf ? GIT_TREE_UPDATE_UPSERT : GIT_TREE_UPDATE_REMOVE;
	up->filemode = exec ? GIT_FILEMODE_BLOB_EXECUTABLE : GIT_FILEMODE_BLOB;
	up->path = f->path;
	if (wfd < 0)
		r = hm_error_errno("%s", git_repository_workdir(repo));
	else if (!f->buf)
		r = hm_file_remove_beneath(wfd, NULL, f->path, full);
	else if (hm_file_write_beneath(wfd, NULL, f->path, full, f->buf, f->len,
				       exec ? 0755 : 0644) == 0)
		r = git_blob_create_from_buffer(&up->id, repo, f->buf, f->len) < 0 ? -2 : 0;
	if (wfd >= 0)
		close(wfd);
	free(full);
	return r;
}

static int
commit_files_now(git_repository *repo, const struct hm_git_file *files, size_t n,
		 const char *message, char out[41])
{
	git_commit *parent = NULL;
	git_tree *base = NULL, *tree = NULL;
	git_index *index = NULL;
	git_signature *sig = NULL;
	git_tree_update *up = hm_xmalloc((n ? n : 1) * sizeof(*up));
	git_oid head, tree_oid, commit;
	int r = -1, unborn;

	memset(up, 0, (n ? n : 1) * sizeof(*up));
	for (size_t i = 0; i < n; i++) {
		int w = commit_put(repo, &files[i], &up[i]);

		if (w == -1)
			goto out;
		if (w < 0)
			goto git_error;
	}
	unborn = git_reference_name_to_id(&head, repo, "HEAD") < 0;
	/* The tree is HEAD's with these files replaced: whatever else the user has
	 * staged stays staged, out of heimdal's commit. */
	if (unborn) {
		git_treebuilder *tb = NULL;
		git_oid empty;

		if (git_treebuilder_new(&tb, repo, NULL) < 0 ||
		    git_treebuilder_write(&empty, tb) < 0 ||
		    git_tree_lookup(&base, repo, &empty) < 0) {
			git_treebuilder_free(tb);
			goto git_error;
		}
		git_treebuilder_free(tb);
	} else if (git_commit_lookup(&parent, repo, &head) < 0 ||
		   git_commit_tree(&base, parent) < 0) {
		goto git_error;
	}
	if (git_tree_create_updated(&tree_oid, repo, base, n, up) < 0 ||
	    git_repository_index(&index, repo) < 0)
		goto git_error;
	for (size_t i = 0; i < n; i++)
		if ((files[i].buf ? git_index_add_bypath(index, files[i].path)
				  : git_index_remove_bypath(index, files[i].path)) < 0)
			goto git_error;
	if (git_index_write(index) < 0)
		goto git_error;
	if (!unborn && git_oid_equal(&tree_oid, git_tree_id(base))) {
		git_oid_tostr(out, 41, &head);
		r = 1;
		goto out;
	}
	if (!(sig = hm_git_signature(repo)) || git_tree_lookup(&tree, repo, &tree_oid) < 0 ||
	    git_commit_create(&commit, repo, "HEAD", sig, sig, NULL, message, tree, unborn ? 0 : 1,
			      (const git_commit **)&parent) < 0)
		goto git_error;
	git_oid_tostr(out, 41, &commit);
	r = 0;
	goto out;
git_error:
	hm_error("%s: cannot commit %s: %s", git_repository_workdir(repo), n ? files[0].path : "",
		 hm_git_last_error());
out:
	git_signature_free(sig);
	git_index_free(index);
	git_tree_free(tree);
	git_tree_free(base);
	git_commit_free(parent);
	free(up);
	return r < 0 ? hm_fail(HM_EXIT_ENV) : r;
}

int
hm_git_commit_files(git_repository *repo, const struct hm_git_file *files, size_t n,
		    const char *message, char out[41])
{
	sigset_t held;
	int r;

	hm_sigchain_hold(&held);
	r = commit_files_now(repo, files, n, message, out);
	hm_sigchain_release(&held);
	return r;
}

int
hm_git_commit_file(git_repository *repo, const char *path, const char *buf, size_t len,
		   const char *message, char out[41])
{
	struct hm_git_file f = { path, buf, len, 0 };

	return hm_git_commit_files(repo, &f, 1, message, out);
}
