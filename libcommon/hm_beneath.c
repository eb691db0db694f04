/*
 * hm_beneath.c - directories resolved beneath a root (hm_beneath.h).
 */
#include "hm_beneath.h"
#include "hm_error.h"

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

/* path (relative) beneath root_fd as a directory; -1 with errno. */
static int
open_dir(int root_fd, const char *root_real, const char *path)
{
	struct open_how how = { .flags = O_DIRECTORY | O_CLOEXEC,
				.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS };
	char full[PATH_MAX], real[PATH_MAX];
	size_t n = strlen(root_real);
	int fd = (int)syscall(SYS_openat2, root_fd, *path ? path : ".", &how, sizeof(how));

	if (fd >= 0 || errno != EXDEV)
		return fd;
	/*
	 * RESOLVE_BENEATH refuses every absolute symlink, even one that stays
	 * inside the root (~/.config -> /home/me/dotfiles/config): resolve it by
	 * hand and open what it names when that is inside.
	 */
	if (snprintf(full, sizeof(full), "%s/%s", root_real, path) >= (int)sizeof(full) ||
	    !realpath(full, real))
		return -1;
	if (strncmp(real, root_real, n) != 0 || (real[n] != '/' && real[n] != '\0')) {
		errno = EXDEV;
		return -1;
	}
	/* real holds no link: one that appears since (a swap) fails the open. */
	how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
	return (int)syscall(SYS_openat2, AT_FDCWD, real, &how, sizeof(how));
}

int
hm_beneath_dir(int root_fd, const char *root_real, const char *dir, mode_t mode)
{
	char *path, *slash;
	int fd = open_dir(root_fd, root_real, dir), parent;

	if (fd >= 0 || errno != ENOENT || !mode)
		return fd;
	/* Make what is missing, one component at a time, each beneath its parent. */
	path = strdup(dir);
	if (!path)
		return -1;
	parent = open_dir(root_fd, root_real, "");
	for (char *c = path; parent >= 0 && c; c = slash ? slash + 1 : NULL) {
		if ((slash = strchr(c, '/')))
			*slash = '\0';
		if (mkdirat(parent, c, mode) < 0 && errno != EEXIST) {
			close(parent);
			parent = -1;
			break;
		}
		fd = open_dir(root_fd, root_real, path);
		close(parent);
		parent = fd;
		if (slash)
			*slash = '/';
	}
	free(path);
	return parent;
}
