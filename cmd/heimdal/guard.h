/*
 * guard.h - the state lock held by a porcelain command, released on every
 * exit path: the specification's RAII guard.
 *
 * Every command that writes the state takes the guard before it reads what it
 * will write, and holds it until it is done:
 *
 *	int
 *	cmd_apply(int argc, char **argv)
 *	{
 *		GUARD g = GUARD_INIT;
 *		...parse options...
 *		if (guard_acquire(&g, "apply", dry_run ? GUARD_DRY_RUN : 0) < 0)
 *			return hm_last_code();
 *		...load, change and save the state...
 *		return 0;	// released here by the cleanup attribute
 *	}
 *
 * The lock is released when g goes out of scope (__attribute__((cleanup))),
 * at exit() (hm_die and friends included), and on SIGINT, SIGTERM, SIGHUP,
 * SIGQUIT and SIGPIPE at any moment: the guard's handler is on the process's
 * signal chain (hm_sigchain) from the first acquire on, and passes the signal
 * down the chain once the lock is given back, so the temporaries go too and
 * the exit status still says which signal it was.  The record written and
 * its id known here are one step, as are the remote ref taken and recorded
 * (hm_lock), so no signal finds a lock the handler does not know of.  The
 * handler releases through `heimdal-lock release --id ID` (no network work
 * belongs in a signal handler), a child started with the process's original
 * signal dispositions and mask, which holds the signals off until it is done.
 * Only the process that took the lock releases it: a forked child that exits
 * leaves it alone.  One guard is held at a time per process.
 *
 * What guard_acquire does is hm_lock_acquire() for the calling process:
 * the local record, then the remote ref (hm_rlock, in this process) when
 * lock_config.json says Hybrid (an unreachable remote prints the warning and
 * proceeds).  The local state is read once for it: the serial the record
 * holds, the dotfiles repository whose origin has the remote ref, and the
 * state compared with the remote's first (not with GUARD_SETTLES).  When the lock is
 * already held by an ancestor process (the command runs under `heimdal-lock
 * run`), the guard proceeds without taking or releasing anything.
 *
 * On failure it returns -1 after printing the message, with hm_last_code():
 * HM_EXIT_LOCKED (the "State is currently locked" block), HM_EXIT_FOUND
 * (state conflicts with the remote, listed), HM_EXIT_USAGE (invalid
 * lock_config.json, corrupt state.lock), HM_EXIT_ENV.
 */
#ifndef GUARD_H
#define GUARD_H

#include <sys/types.h>

struct guard {
	char id[64]; /* the lock id held; "" when nothing is held */
	int remote;  /* the remote ref is held too */
	pid_t owner; /* the process that took it */
	int flags;   /* guard_acquire's */
};

#define GUARD_INIT                                                                                 \
	{                                                                                          \
		"", 0, 0, 0                                                                        \
	}

/* A guard released when it goes out of scope. */
#define GUARD __attribute__((cleanup(guard_release))) struct guard

enum guard_flags {
	GUARD_DRY_RUN = 1,      /* take nothing (the specification's dry-run skip) */
	GUARD_WAIT = 2,         /* while held, retry as lock_config.json says */
	GUARD_REMOTE_LATER = 4, /* Hybrid: the remote part by guard_need_remote */
	GUARD_SETTLES = 8,      /* the operation settles state conflicts itself (sync,
				      pull, resolve) or sends the state as it is (push):
				      the remote's state is not compared before the
				      remote half is taken */
};

/* Take the lock for operation ("apply", "migrate", ...).  0 or -1. */
int guard_acquire(struct guard *g, const char *operation, int flags);

/*
 * With GUARD_REMOTE_LATER, an operation holds only the local lock until it
 * finds it has something to write (a sync with nothing to do never touches
 * the remote's lock); then it calls this, which takes the remote part as
 * guard_acquire would have.  Does nothing when there is nothing to take.
 * 0, or -1 with hm_last_code() (the local lock is still held, released as
 * usual).
 */
int guard_need_remote(struct guard *g);

/* 1 when this process holds the lock through a guard. */
int guard_held(void);

/* 1 when g holds the local lock and its remote part is still to be taken. */
int guard_remote_pending(const struct guard *g);

/* Release what g holds (nothing when it holds nothing); safe to call twice. */
void guard_release(struct guard *g);

#endif
