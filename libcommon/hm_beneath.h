/*
 * hm_beneath.h - directories resolved beneath a root, never outside it.
 *
 * A write into $HOME that checks "inside $HOME" first and then walks the path
 * again can be sent elsewhere by a directory swapped for a symlink in
 * between.  Here every directory is resolved by the kernel beneath the root's
 * descriptor (openat2 RESOLVE_BENEATH): a symlink that stays inside is
 * followed, one that leaves is refused, at the moment of use.  The caller
 * then creates, renames and removes with the *at calls on the descriptor.
 */
#ifndef HM_BENEATH_H
#define HM_BENEATH_H

#include <sys/types.h>

/*
 * The directory dir (relative, "" for the root itself) beneath root_fd: a new
 * O_DIRECTORY descriptor, or -1 with errno (ENOENT: missing; EXDEV: it leads
 * outside the root; ENOTDIR).  With mode non-zero, missing directories are
 * made (mkdirat, each beneath the last) with it.  An absolute symlink that
 * stays inside the root (root_real is the root's realpath) is followed.
 */
int hm_beneath_dir(int root_fd, const char *root_real, const char *dir, mode_t mode);

#endif
