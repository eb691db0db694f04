/*
 * hm_gitrecover.c - hm_gitrecover.h: undoing a cut-short checkout, and
 * clearing the lock files a killed process left (found through /proc).
 */
#include "hm_gitrecover.h"
#include "hm_git.h"
#include "hm_error.h"
#include "hm_file.h"
#include "hm_json.h"
#include "hm_sigchain.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * 1 when the working file at path holds what a cut-short checkout from blob
 * old to blob new can leave: old's bytes, a prefix of new's (new's included),
 * or nothing; 0 when it holds anything else (someone's edit since).
 */
static int
undo_safe(git_repository *repo, const char *path, const git_oid *old, const git_oid *new)
{
	char *full = hm_path_join(git_repository_workdir(repo), path), *buf = NULL;
	git_blob *b = NULL;
	size_t len = 0;
	int ok = 0;
	git_oid id;
	int fd = open(full, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;

	if (fd < 0) {
		/* Absent, or the symbolic link a checkout writes for a link blob. */
		ok = errno == ENOENT || errno == ELOOP;
		goto out;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || hm_read_fd(fd, &buf, &len) < 0) {
		close(fd);
		goto out;
	}
	close(fd);
	if (git_odb_hash(&id, buf, len, GIT_OBJECT_BLOB) == 0 &&
	    ((!git_oid_is_zero(old) && git_oid_equal(&id, old)) ||
	     (!git_oid_is_zero(new) && git_oid_equal(&id, new)))) {
		ok = 1;
		goto out;
	}
	if (!git_oid_is_zero(new) && git_blob_lookup(&b, repo, new) == 0)
		ok = len <= (size_t)git_blob_rawsize(b) &&
		     memcmp(git_blob_rawcontent(b), buf, len) == 0;
out:
	git_blob_free(b);
	free(buf);
	free(full);
	return ok;
}

static int
undo_checkout_now(git_repository *repo, const char *a, const char *b)
{
	git_checkout_options copts = GIT_CHECKOUT_OPTIONS_INIT;
	git_tree *ta = NULL, *tb = NULL;
	git_diff *diff = NULL;
	char **paths = NULL;
	size_t n = 0, nd;
	int r = -1;

	if (git_repository_state_cleanup(repo) < 0 || hm_git_commit_tree(repo, a, &ta) < 0 ||
	    hm_git_commit_tree(repo, b, &tb) < 0 ||
	    git_diff_tree_to_tree(&diff, repo, ta, tb, NULL) < 0) {
		hm_error("%s: cannot undo the checkout of %.7s: %s", git_repository_workdir(repo),
			 b, hm_git_last_error());
		goto out;
	}
	nd = git_diff_num_deltas(diff);
	paths = hm_xmalloc((2 * nd + 1) * sizeof(*paths));
	for (size_t i = 0; i < nd; i++) {
		const git_diff_delta *d = git_diff_get_delta(diff, i);

		if (!undo_safe(repo, d->new_file.path, &d->old_file.id, &d->new_file.id)) {
			/* Somebody's edit: left alone for the next checkout to refuse. */
			hm_debug("%s: not the checkout's bytes; left as it is", d->new_file.path);
			continue;
		}
		paths[n++] = (char *)d->new_file.path;
		if (strcmp(d->old_file.path, d->new_file.path) != 0)
			paths[n++] = (char *)d->old_file.path;
	}
	r = 0;
	if (n == 0)
		goto out;
	copts.checkout_strategy = GIT_CHECKOUT_FORCE | GIT_CHECKOUT_REMOVE_UNTRACKED |
				  GIT_CHECKOUT_DISABLE_PATHSPEC_MATCH;
	copts.paths.strings = paths;
	copts.paths.count = n;
	if (git_checkout_head(repo, &copts) < 0) {
		hm_error("%s: cannot undo the checkout of %.7s: %s", git_repository_workdir(repo),
			 b, hm_git_last_error());
		r = -1;
	}
out:
	free(paths);
	git_diff_free(diff);
	git_tree_free(ta);
	git_tree_free(tb);
	return r < 0 ? hm_fail(HM_EXIT_ENV) : 0;
}

/* 1 when path (canonical) is dir or below it (dir canonical, no trailing '/'). */
static int
path_within(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return n && strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* The canonical form of dir without a trailing '/' into buf; 0 or -1. */
static int
canonical_dir(const char *dir, char *buf)
{
	size_t n;

	if (!dir || !realpath(dir, buf))
		return -1;
	n = strlen(buf);
	while (n > 1 && buf[n - 1] == '/')
		buf[--n] = '\0';
	return 0;
}

/*
 * What live processes other than this one do in a repository: *git_pid set
 * to a git process working in it (cwd in gitdir or workdir), and for each
 * of the n lock files whether some process holds it open (open[i]).
 */
static void
scan_processes(const char *gitdir, const char *workdir, char **locks, int *open, size_t n,
	       long *git_pid)
{
	DIR *proc = opendir("/proc");
	struct dirent *e;
	pid_t self = getpid();

	*git_pid = 0;
	while (proc && (e = readdir(proc)) != NULL) {
		char path[PATH_MAX], link[PATH_MAX], comm[64] = "";
		long pid = strtol(e->d_name, NULL, 10);
		ssize_t len;
		DIR *fds;
		struct dirent *f;
		FILE *cf;

		if (pid <= 0 || pid == (long)self)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
		if ((cf = fopen(path, "re")) != NULL) {
			if (fgets(comm, sizeof(comm), cf))
				comm[strcspn(comm, "\n")] = '\0';
			fclose(cf);
		}
		snprintf(path, sizeof(path), "/proc/%ld/cwd", pid);
		len = readlink(path, link, sizeof(link) - 1);
		if (len > 0 && !*git_pid &&
		    (strcmp(comm, "git") == 0 || strncmp(comm, "git-", 4) == 0)) {
			link[len] = '\0';
			if (path_within(link, gitdir) || (workdir && path_within(link, workdir)))
				*git_pid = pid;
		}
		snprintf(path, sizeof(path), "/proc/%ld/fd", pid);
		if (!(fds = opendir(path)))
			continue;
		while ((f = readdir(fds)) != NULL) {
			char fd[PATH_MAX + 300];

			if (f->d_name[0] == '.')
				continue;
			snprintf(fd, sizeof(fd), "%s/%s", path, f->d_name);
			len = readlink(fd, link, sizeof(link) - 1);
			if (len <= 0)
				continue;
			link[len] = '\0';
			for (size_t i = 0; i < n; i++)
				if (strcmp(link, locks[i]) == 0)
					open[i] = 1;
		}
		closedir(fds);
	}
	if (proc)
		closedir(proc);
}

static struct {
	time_t since, until;
	char **paths;
	size_t n, cap;
} lockscan;

static int
collect_lock(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	size_t len = strlen(path);

	(void)ftw;
	if (type != FTW_F || len < 5 || strcmp(path + len - 5, ".lock") != 0 ||
	    st->st_mtime < lockscan.since || st->st_mtime >= lockscan.until)
		return FTW_CONTINUE;
	if (lockscan.n == lockscan.cap) {
		lockscan.cap = lockscan.cap ? 2 * lockscan.cap : 8;
		lockscan.paths = realloc(lockscan.paths, lockscan.cap * sizeof(*lockscan.paths));
		if (!lockscan.paths)
			hm_die(HM_EXIT_ENV, "out of memory");
	}
	lockscan.paths[lockscan.n++] = hm_xstrdup(path);
	return FTW_CONTINUE;
}

int
hm_git_undo_checkout(git_repository *repo, const char *a, const char *b)
{
	sigset_t held;
	int r;

	hm_sigchain_hold(&held);
	r = undo_checkout_now(repo, a, b);
	hm_sigchain_release(&held);
	return r;
}

int
hm_git_clear_stale_locks(git_repository *repo, time_t since, time_t until)
{
	char gitdir[PATH_MAX], workdir[PATH_MAX];
	int have_work, removed = 0, failed = 0, *open;
	long git_pid;

	if (canonical_dir(git_repository_path(repo), gitdir) < 0)
		return 0;
	have_work = canonical_dir(git_repository_workdir(repo), workdir) == 0;
	lockscan.since = since;
	lockscan.until = until;
	lockscan.n = 0;
	if (nftw(gitdir, collect_lock, 16, FTW_PHYS) < 0 && errno != ENOENT) {
		hm_error_errno("%s", gitdir);
		return hm_fail(HM_EXIT_ENV);
	}
	if (lockscan.n == 0)
		return 0;
	open = calloc(lockscan.n, sizeof(*open));
	if (!open)
		hm_die(HM_EXIT_ENV, "out of memory");
	scan_processes(gitdir, have_work ? workdir : NULL, lockscan.paths, open, lockscan.n,
		       &git_pid);
	for (size_t i = 0; i < lockscan.n; i++) {
		const char *p = lockscan.paths[i];

		if (git_pid)
			hm_warn("%s: left alone: git (process %ld) is running in this repository",
				p, git_pid);
		else if (open[i])
			hm_warn("%s: left alone: a running process has it open", p);
		else if (unlink(p) == 0)
			removed++, hm_debug("removed %s, left by a killed process", p);
		else if (errno != ENOENT)
			failed = hm_error_errno("%s", p);
		free(lockscan.paths[i]);
	}
	free(open);
	return failed ? hm_fail(HM_EXIT_ENV) : removed;
}
