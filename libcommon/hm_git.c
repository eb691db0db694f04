#include "hm_git.h"
#include "hm_error.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
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
		    git_credential_ssh_key_new(out, user, access(pub, R_OK) == 0 ? pub : NULL,
					       key, NULL) == 0)
			return 0;
	}
	return GIT_PASSTHROUGH;
}

int
hm_git_is_unreachable(int err)
{
	const git_error *e = git_error_last();

	if (err == GIT_EEOF)
		return 1;
	return e && (e->klass == GIT_ERROR_NET || e->klass == GIT_ERROR_SSH ||
		     e->klass == GIT_ERROR_OS || e->klass == GIT_ERROR_HTTP);
}

int
hm_git_deadline(int (*fn)(void *, int), void *arg, long timeout_s, char **out, size_t *out_len,
		char *reason, size_t reason_len)
{
	int outp[2], whyp[2], st, r;
	size_t len = 0, cap = 4096, wlen = 0;
	char *buf = hm_xmalloc(cap), why[512];
	struct timespec start, now;
	pid_t pid;

	if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(whyp, O_CLOEXEC) < 0) {
		free(buf);
		hm_error_errno("pipe");
		return hm_fail(HM_EXIT_ENV);
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		free(buf);
		hm_error_errno("fork");
		return hm_fail(HM_EXIT_ENV);
	}
	if (pid == 0) {
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
	close(outp[1]);
	close(whyp[1]);
	clock_gettime(CLOCK_MONOTONIC, &start);
	why[0] = '\0';
	for (int open_fds = 2; open_fds > 0;) {
		struct pollfd fds[2] = { { .fd = outp[0], .events = POLLIN },
					 { .fd = whyp[0], .events = POLLIN } };
		long left;
		ssize_t n;

		clock_gettime(CLOCK_MONOTONIC, &now);
		left = timeout_s * 1000 - ((now.tv_sec - start.tv_sec) * 1000 +
					  (now.tv_nsec - start.tv_nsec) / 1000000);
		if (left <= 0 || (r = poll(fds, 2, (int)left)) == 0) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			close(outp[0]);
			close(whyp[0]);
			free(buf);
			snprintf(reason, reason_len, "timed out after %ld seconds", timeout_s);
			return HM_GIT_UNREACHABLE;
		}
		if (r < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (fds[0].fd >= 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) {
			if (cap - len < 4096)
				buf = hm_xrealloc(buf, cap *= 2);
			n = read(outp[0], buf + len, cap - len - 1);
			if (n > 0) {
				len += n;
			} else if (n == 0 || errno != EINTR) {
				close(outp[0]);
				outp[0] = -1;
				open_fds--;
			}
		}
		if (whyp[0] >= 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
			n = read(whyp[0], why + wlen, sizeof(why) - 1 - wlen);
			if (n > 0) {
				wlen += n;
			} else if (n == 0 || errno != EINTR) {
				close(whyp[0]);
				whyp[0] = -1;
				open_fds--;
			}
		}
		if (outp[0] < 0 && whyp[0] < 0)
			break;
	}
	if (outp[0] >= 0)
		close(outp[0]);
	if (whyp[0] >= 0)
		close(whyp[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	why[wlen] = '\0';
	buf[len] = '\0';
	r = WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0
	    : WIFEXITED(st) && WEXITSTATUS(st) == 10 ? HM_GIT_UNREACHABLE : -1;
	if (r == HM_GIT_UNREACHABLE)
		snprintf(reason, reason_len, "%s", why[0] ? why : "unreachable");
	if (r == 0 && out) {
		*out = buf;
		if (out_len)
			*out_len = len;
	} else {
		free(buf);
	}
	return r < 0 ? hm_fail(HM_EXIT_ENV) : r;
}

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
	int attempt = 0, err;

	(void)out_fd;
	if (git_remote_lookup(&remote, a->repo, a->remote) < 0) {
		hm_error("%s: no remote '%s': %s", git_repository_workdir(a->repo), a->remote,
			 hm_git_last_error());
		return -1;
	}
	opts.callbacks.credentials = hm_git_credentials;
	opts.callbacks.payload = &attempt;
	err = git_remote_fetch(remote, NULL, &opts, NULL);
	git_remote_free(remote);
	if (err < 0) {
		if (hm_git_is_unreachable(err))
			return HM_GIT_UNREACHABLE;
		hm_error("fetch from '%s' failed: %s", a->remote, hm_git_last_error());
		return -1;
	}
	return 0;
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
hm_git_read_file(git_repository *repo, const char *rev, const char *path, char **buf,
		 size_t *len)
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
