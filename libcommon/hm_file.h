/*
 * hm_file.h - files written the git way, directories, and path safety.
 *
 * All functions return 0 on success and -1 after printing an error naming
 * the path (hm_error), with hm_fail() set to HM_EXIT_ENV, unless noted.
 */
#ifndef HM_FILE_H
#define HM_FILE_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

/*
 * Replace path with buf[0..len) atomically: write "<path>.tmp.XXXXXX" in the
 * same directory (O_EXCL, given mode regardless of umask), fsync it, rename it
 * over path, fsync the directory.  A crash leaves path old or new, never
 * partial.  The temporary is removed on failure, and (hm_tempfile) on exit
 * and on the signals that end the process, if they come before the rename.
 */
int hm_file_write_atomic(const char *path, const void *buf, size_t len, mode_t mode);

/* Copy src to dst (atomically, mode 0600). */
int hm_file_copy(const char *src, const char *dst);

/* Read a whole file into a malloc'd NUL-terminated buffer. */
int hm_file_read(const char *path, char **buf, size_t *len);

/* mkdir -p with mode for every directory it creates. */
int hm_mkdir_p(const char *path, mode_t mode);

/* 1 if path exists (lstat), 0 if not. */
int hm_file_exists(const char *path);

/* fsync the directory that holds path. */
int hm_fsync_dir_of(const char *path);

/*
 * 1 when key is a safe relative path for a file under a root: not empty, not
 * absolute, no "." or ".." component, no empty component, no control
 * characters, no NUL.  0 otherwise; *why (may be NULL) says which rule failed.
 */
int hm_path_safe_relative(const char *key, const char **why);

/* "dir/name" in a new buffer. */
char *hm_path_join(const char *dir, const char *name);

/*
 * Remove what a killed writer left behind: the regular files under dir whose
 * name matches the fnmatch(3) pattern and that were last modified in [since,
 * until) (seconds since the epoch).  recurse: the whole tree below dir, less
 * the subdirectories named skip (may be NULL); otherwise dir alone.  Returns
 * how many were removed, or -1 (error printed).
 */
int hm_file_remove_stale(const char *dir, const char *pattern, int recurse, const char *skip,
			 time_t since, time_t until);

#endif
