/*
 * hm_beneath.h - directories resolved beneath a root, never outside it.
 *
 * A write into $HOME that checks "inside $HOME" first and then walks the path
 * again can be sent elsewhere by a directory swapped for a symlink in
 * between.  Here every directory is resolved by the kernel beneath the root's
 * descriptor (openat2 RESOLVE_BENEATH): a symlink that stays inside is
 * followed, one that leaves is refused, at the moment of use.  The caller
 * then creates, renames and removes with the *at calls on the descriptor.
 *
 * Where openat2 is missing (before Linux 5.6) or HEIMDAL_NO_OPENAT2 is set,
 * a path is opened one component at a time with O_NOFOLLOW from the root
 * (after realpath for an absolute link that stays inside): a link swapped in
 * is refused the same way.
 */
#ifndef HM_BENEATH_H
#define HM_BENEATH_H

#include <sys/stat.h>
#include <sys/types.h>

/*
 * path (relative, "" for the root itself) opened with flags (open(2)'s:
 * O_DIRECTORY, O_PATH, O_RDONLY | O_NONBLOCK...) beneath root_fd: every
 * symlink on the way, the last one included, is followed only while it stays
 * inside the root (an absolute one through root_real, the root's realpath;
 * root_real NULL follows none: ELOOP).  A descriptor, or -1 with errno
 * (ENOENT: missing; EXDEV: it leads outside the root; ENOTDIR).
 */
int hm_beneath_openat(int root_fd, const char *root_real, const char *path, int flags);

/*
 * The directory dir (relative, "" for the root itself) beneath root_fd: a new
 * O_DIRECTORY descriptor, or -1 with errno (ENOENT: missing; EXDEV: it leads
 * outside the root; ENOTDIR).  With mode non-zero, missing directories are
 * made (mkdirat, each beneath the last) with it.  An absolute symlink that
 * stays inside the root (root_real is the root's realpath) is followed.
 * With root_real NULL no symlink is followed at all (RESOLVE_NO_SYMLINKS:
 * ELOOP), for a tree where a link is never legitimate (a git work tree).
 */
int hm_beneath_dir(int root_fd, const char *root_real, const char *dir, mode_t mode);

/*
 * The directory holding path (relative to the root, not empty) as
 * hm_beneath_dir resolves it; *base points into path at its last component.
 */
int hm_beneath_parent(int root_fd, const char *root_real, const char *path, mode_t mode,
		      const char **base);

/*
 * base in the directory dfd opened for reading without following it and
 * without blocking on the open: a descriptor, with st filled as by lstat; or
 * -1 with errno: ENOENT, ELOOP (a symlink), EINVAL (not a regular file: a
 * FIFO, a device, a socket, a directory), st filled whenever it exists.  The
 * file opened is the one st describes (a swap in between is EAGAIN).
 */
int hm_open_regular_at(int dfd, const char *base, struct stat *st);

/* hm_beneath_parent then hm_open_regular_at: path read beneath the root. */
int hm_beneath_open(int root_fd, const char *root_real, const char *path, struct stat *st);

/*
 * hm_beneath_open, the whole file read into *buf (malloc'd, NUL-terminated),
 * st filled: 0, or -1 with errno as hm_beneath_open sets it.
 */
int hm_beneath_read(int root_fd, const char *root_real, const char *path, char **buf, size_t *len,
		    struct stat *st);

#endif
