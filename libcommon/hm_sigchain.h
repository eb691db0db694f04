/*
 * hm_sigchain.h - signal handlers pushed and popped, never replaced (the
 * design of git's sigchain).
 *
 * Every part of a process that must clean up when it is killed (the
 * temporaries of hm_tempfile, the lock a command holds, a child being waited
 * for) pushes its handler on the signals it cares about and pops it when it
 * has nothing left to clean.  A handler does its work with async-signal-safe
 * calls only, then passes the signal down the chain:
 *
 *	static void
 *	on_signal(int sig)
 *	{
 *		...clean up (async-signal-safe calls only)...
 *		hm_sigchain_pop(sig);
 *		raise(sig);
 *	}
 *
 * raise() inside the handler leaves the signal pending until the handler
 * returns; it is then delivered to the handler pushed before, and finally to
 * the disposition the process started with, so every part cleans up and the
 * exit status still says which signal ended the process.
 *
 * A signal the process started with ignored (nohup) stays ignored: handlers
 * pushed on it are recorded, so pushes and pops balance, but never run.
 *
 * Pops are last-in first-out.  hm_tempfile and the porcelain's lock guard push once, at their
 * first use, and stay for the process's life; a handler pushed for a step
 * (hm_spawn's SIGPIPE, the remote lock being taken) is popped by that step,
 * which must not be the first use of either.
 */
#ifndef HM_SIGCHAIN_H
#define HM_SIGCHAIN_H

#include <signal.h>

typedef void (*hm_sigchain_fn)(int);

/* Push f (a handler, SIG_IGN or SIG_DFL) on sig.  0, or -1 when the chain is full. */
int hm_sigchain_push(int sig, hm_sigchain_fn f);

/* Pop sig's top handler, restoring the one below.  0, or -1 when none was pushed.
 * Async-signal-safe. */
int hm_sigchain_pop(int sig);

/*
 * The signals that end a process which then must clean up: SIGINT, SIGTERM,
 * SIGHUP, SIGQUIT and SIGPIPE.  push_common pushes f on each; pop_common
 * pops each (async-signal-safe).
 */
void hm_sigchain_push_common(hm_sigchain_fn f);
void hm_sigchain_pop_common(void);

/*
 * Hold the common signals off (a section that must not be cut in two, as
 * "create a temporary and register it"), saving the mask in *old; release
 * restores it, and a signal that came meanwhile is delivered then.
 */
void hm_sigchain_hold(sigset_t *old);
void hm_sigchain_release(const sigset_t *old);

/*
 * In a child between fork and exec: the dispositions the process started
 * with for every signal pushed on, and an empty signal mask, so the program
 * run starts as if heimdal had not been there.  Async-signal-safe.
 */
void hm_sigchain_child(void);

/*
 * In a forked child that goes on without exec (a worker): the dispositions
 * the process started with (the cleanup is the parent's), the mask kept, so
 * a worker forked while the signals are held holds them from its first
 * instruction.  Async-signal-safe.
 */
void hm_sigchain_forget(void);

#endif
