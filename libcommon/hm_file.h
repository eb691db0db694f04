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
 * Replace path with buf[0..len) atomically: write a temporary named by
 * hm_file_temp_template in the same directory (O_EXCL, given mode regardless
 * of umask), fsync it, rename it over path, fsync the directory.  A crash
 * leaves path old or new, never partial.  The temporary is removed on
 * failure, and (hm_tempfile) on exit and on the signals that end the
 * process, if they come before the rename.
 */
int hm_file_write_atomic(const char *path, const void *buf, size_t len, mode_t mode);

/* write(2) all of buf[0..len) to fd, again after EINTR: 0, or -1 (errno set). */
int hm_write_all(int fd, const void *buf, size_t len);

/*
 * The same for rel beneath the directory root_fd, resolved as hm_beneath_dir
 * does at the moment of use (root_real NULL: through no symlink at all, for
 * a git work tree): missing directories made 0755, the temporary made and
 * renamed in rel's own directory (a symlink at rel is replaced, never
 * followed).  shown is rel's full path, for messages and the exit path.
 */
int hm_file_write_beneath(int root_fd, const char *root_real, const char *rel, const char *shown,
			  const void *buf, size_t len, mode_t mode);

/* unlink rel beneath root_fd (as hm_file_write_beneath); a missing file is 0. */
int hm_file_remove_beneath(int root_fd, const char *root_real, const char *rel, const char *shown);

/*
 * Write an output the user named (--report FILE, -o FILE): a file that is
 * not a regular file (/dev/null, a FIFO, /dev/fd/N from a shell's >(...)) is
 * opened and written as it is, never replaced; symbolic links are followed;
 * a regular file at the end of them is replaced atomically (as
 * hm_file_write_atomic, keeping its mode), and a missing one is created with
 * mode.
 */
int hm_file_write_output(const char *path, const void *buf, size_t len, mode_t mode);

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
 * Temporaries are named "NAME.heimdal-PID-TAG.XXXXXX": the pid of the process
 * that makes it and the tag of the lock it holds (hm_file_set_owner_tag;
 * "none" without a lock), so that recovery after a crash can prove a file is
 * the dead run's before it removes it (hm_file_remove_dead_temps).
 */
#define HM_FILE_TEMP_MARK ".heimdal-"

/* The tag temporaries carry from now on (NULL: "none"). */
void hm_file_set_owner_tag(const char *tag);

/* The template (for mkstemp) of a temporary for name, in a new buffer. */
char *hm_file_temp_template(const char *name);

/*
 * 1 when name is a temporary made under the lock tagged tag by a process that
 * is no longer running, 0 otherwise (another name, another lock, a live maker).
 */
int hm_file_temp_is_dead(const char *name, const char *tag);

/*
 * Remove the temporaries that hm_file_temp_is_dead says are the dead run's
 * (tag) in dir (recurse: the tree below dir, less the directories named
 * skip, which may be NULL).  Nothing else is touched, whatever its name or
 * time.  Returns how many were removed, or -1 (error printed).
 */
int hm_file_remove_dead_temps(const char *dir, int recurse, const char *skip, const char *tag);

#endif
