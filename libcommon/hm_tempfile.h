/*
 * hm_tempfile.h - the process's one list of temporaries (the design of git's
 * tempfile.c).
 *
 * A temporary (a file written beside its target before it is renamed over
 * it, a report a tool writes for its caller) is created through this module,
 * which registers it at the moment it is created: creation and registration
 * are one step that no signal cuts in two.  Until it is renamed into place
 * (hm_tempfile_forget) or removed (hm_tempfile_remove), it is removed if the
 * process exits (exit, hm_die) or is killed by SIGINT, SIGTERM, SIGHUP,
 * SIGQUIT or SIGPIPE; the signal then goes on down the chain (hm_sigchain).
 * Only the process that created a temporary removes it: a forked child that
 * exits leaves its parent's alone.
 *
 *	struct hm_tempfile *t;
 *	char tmp[] = "/x/state.json.tmp.XXXXXX";
 *	int fd = hm_tempfile_mkstemp(tmp, 0600, &t);
 *	...write, fsync, close...
 *	if (rename(tmp, "/x/state.json") == 0)
 *		hm_tempfile_forget(t);	// it is the target now
 *	else
 *		hm_tempfile_remove(t);
 *
 * The handles stay valid until forgotten or removed; the module keeps their
 * memory for the next temporaries.  Not thread-safe: temporaries are made by
 * the main thread.
 */
#ifndef HM_TEMPFILE_H
#define HM_TEMPFILE_H

#include <sys/types.h>

struct hm_tempfile;

/*
 * mkstemp(3) on tmpl (ending in XXXXXX, replaced in place), the file made
 * with mode (umask aside) and O_CLOEXEC, and registered.  The descriptor, or
 * -1 with errno set (nothing created, *t NULL).
 */
int hm_tempfile_mkstemp(char *tmpl, mode_t mode, struct hm_tempfile **t);

/*
 * openat(dfd, name, O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, mode) and
 * the file registered as path (the same file named from the root, which is
 * what the exit path removes).  The descriptor, or -1 with errno set (EEXIST:
 * the name is taken; nothing created, *t NULL).
 */
int hm_tempfile_openat(int dfd, const char *name, const char *path, mode_t mode,
		       struct hm_tempfile **t);

/*
 * hm_tempfile_openat under a name not taken yet: name ends in XXXXXX,
 * replaced in place by random characters; the file registered as
 * "<dir>/<name>".  The descriptor, or -1 with errno set (*t NULL).
 */
int hm_tempfile_mkstempat(int dfd, char *name, const char *dir, mode_t mode,
			  struct hm_tempfile **t);

/* Register a temporary made some other way (path copied).  Never NULL. */
struct hm_tempfile *hm_tempfile_register(const char *path);

/* It was renamed into place or handed on: no longer removed.  NULL is ignored. */
void hm_tempfile_forget(struct hm_tempfile *t);

/* Remove it now and forget it.  0, or -1 with errno (ENOENT is success).  NULL: 0. */
int hm_tempfile_remove(struct hm_tempfile *t);

/* Remove every registered temporary of this process.  Async-signal-safe. */
void hm_tempfile_remove_all(void);

#endif
