/*
 * hm_beneath.c - directories resolved beneath a root (hm_beneath.h).
 */
#include "hm_beneath.h"
#include "hm_error.h"
#include "hm_json.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int
inside(const char *real, const char *root_real)
{
	size_t n = strlen(root_real);

	return strncmp(real, root_real, n) == 0 && (real[n] == '/' || real[n] == '\0' || n == 1);
}

/*
 * full does not exist: EXDEV when its deepest existing directory is outside
 * the root (a link out, then a missing part), else ENOENT.  Always -1.
 */
static int
missing(char *full, const char *root_real)
{
	char real[PATH_MAX], *slash;

	while ((slash = strrchr(full, '/')) && slash > full) {
		*slash = '\0';
		if (realpath(full, real)) {
			errno = inside(real, root_real) ? ENOENT : EXDEV;
			return -1;
		}
	}
	errno = ENOENT;
	return -1;
}

/*
 * Without openat2 (a kernel before 5.6, or HEIMDAL_NO_OPENAT2 set, which
 * tests use to take this path): rel opened from dfd one component at a time,
 * none followed (O_NOFOLLOW): a link anywhere on the way, one swapped in
 * since the caller resolved it included, fails (ELOOP or ENOTDIR).
 */
static int
walk(int dfd, const char *rel, int flags)
{
	char *copy, *c, *next;
	struct stat st;
	int fd, e;

	if (!*rel)
		return openat(dfd, ".", flags | O_CLOEXEC);
	if (!(copy = strdup(rel)))
		return -1;
	fd = openat(dfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	for (c = copy; fd >= 0 && c; c = next) {
		int nfd;

		if ((next = strchr(c, '/')))
			*next++ = '\0';
		if (!*c)
			continue;
		nfd = openat(fd, c,
			     (next && *next ? O_PATH | O_DIRECTORY : flags) | O_NOFOLLOW |
				     O_CLOEXEC);
		e = errno;
		if (nfd < 0 && e == ENOTDIR && fstatat(fd, c, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISLNK(st.st_mode))
			e = ELOOP; /* a link where a directory was: openat2 says so too */
		close(fd);
		errno = e;
		fd = nfd;
	}
	free(copy);
	return fd;
}

static int none = -1; /* 1: openat2 is missing (ENOSYS seen) or not to be used */

static int
no_openat2(void)
{
	if (none < 0)
		none = getenv("HEIMDAL_NO_OPENAT2") != NULL;
	return none;
}

int
hm_beneath_openat(int root_fd, const char *root_real, const char *path, int flags)
{
	struct open_how how = { .flags = (unsigned)flags | O_CLOEXEC,
				.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS };
	char full[PATH_MAX], real[PATH_MAX];
	int fd = -1;

	if (!root_real)
		how.resolve |= RESOLVE_NO_SYMLINKS;
	if (!no_openat2()) {
		fd = (int)syscall(SYS_openat2, root_fd, *path ? path : ".", &how, sizeof(how));
		if (fd < 0 && errno == ENOSYS)
			none = 1;
	}
	if (no_openat2()) {
		if (!root_real)
			return walk(root_fd, path, O_NOFOLLOW | flags);
	} else if (fd >= 0 || errno != EXDEV || !root_real) {
		return fd;
	}
	/*
	 * RESOLVE_BENEATH refuses every absolute symlink, even one that stays
	 * inside the root (~/.config -> /home/me/dotfiles/config): resolve it by
	 * hand and open what it names when that is inside.
	 */
	if (snprintf(full, sizeof(full), "%s/%s", root_real, path) >= (int)sizeof(full))
		return -1;
	if (!realpath(full, real))
		return errno == ENOENT ? missing(full, root_real) : -1;
	if (!inside(real, root_real)) {
		errno = EXDEV;
		return -1;
	}
	/* real holds no link: one that appears since (a swap) fails the open. */
	if (no_openat2()) {
		const char *rest = real + strlen(root_real);

		return walk(root_fd, rest + (*rest == '/'), flags);
	}
	how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
	return (int)syscall(SYS_openat2, AT_FDCWD, real, &how, sizeof(how));
}

int
hm_beneath_dir(int root_fd, const char *root_real, const char *dir, mode_t mode)
{
	char *path, *slash;
	int fd = hm_beneath_openat(root_fd, root_real, dir, O_DIRECTORY), parent;

	if (fd >= 0 || errno != ENOENT || !mode)
		return fd;
	/* Make what is missing, one component at a time, each beneath its parent. */
	path = strdup(dir);
	if (!path)
		return -1;
	parent = hm_beneath_openat(root_fd, root_real, "", O_DIRECTORY);
	for (char *c = path; parent >= 0 && c; c = slash ? slash + 1 : NULL) {
		if ((slash = strchr(c, '/')))
			*slash = '\0';
		if (mkdirat(parent, c, mode) < 0 && errno != EEXIST) {
			close(parent);
			parent = -1;
			break;
		}
		fd = hm_beneath_openat(root_fd, root_real, path, O_DIRECTORY);
		close(parent);
		parent = fd;
		if (slash)
			*slash = '/';
	}
	free(path);
	return parent;
}

int
hm_beneath_parent(int root_fd, const char *root_real, const char *path, mode_t mode,
		  const char **base)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int fd, e;

	*base = slash ? slash + 1 : path;
	if (!slash)
		return hm_beneath_dir(root_fd, root_real, "", mode);
	if (!(dir = strndup(path, (size_t)(slash - path))))
		return -1;
	fd = hm_beneath_dir(root_fd, root_real, dir, mode);
	e = errno;
	free(dir);
	errno = e;
	return fd;
}

int
hm_open_regular_at(int dfd, const char *base, struct stat *st)
{
	struct stat now;
	int fd, fl;

	if (fstatat(dfd, base, st, AT_SYMLINK_NOFOLLOW) < 0)
		return -1;
	if (!S_ISREG(st->st_mode)) {
		errno = S_ISLNK(st->st_mode) ? ELOOP : EINVAL;
		return -1;
	}
	fd = openat(dfd, base, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -1;
	if (fstat(fd, &now) < 0 || now.st_dev != st->st_dev || now.st_ino != st->st_ino ||
	    !S_ISREG(now.st_mode) || (fl = fcntl(fd, F_GETFL)) < 0 ||
	    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		close(fd);
		errno = EAGAIN;
		return -1;
	}
	*st = now;
	return fd;
}

int
hm_beneath_open(int root_fd, const char *root_real, const char *path, struct stat *st)
{
	const char *base;
	int dfd = hm_beneath_parent(root_fd, root_real, path, 0, &base), fd, e;

	if (dfd < 0)
		return -1;
	fd = hm_open_regular_at(dfd, base, st);
	e = errno;
	close(dfd);
	errno = e;
	return fd;
}

int
hm_beneath_read(int root_fd, const char *root_real, const char *path, char **buf, size_t *len,
		struct stat *st)
{
	int fd = hm_beneath_open(root_fd, root_real, path, st), r, e;

	if (fd < 0)
		return -1;
	r = hm_read_fd(fd, buf, len);
	e = errno;
	close(fd);
	errno = e;
	return r;
}
