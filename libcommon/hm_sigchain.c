#include "hm_sigchain.h"

#include <errno.h>
#include <string.h>

/*
 * Fixed arrays, not allocated ones: hm_sigchain_pop runs in signal handlers.
 * A process pushes a handful at a time; 16 deep per signal is plenty.
 */
#define DEPTH 16

static const int common[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE };
#define NCOMMON (sizeof(common) / sizeof(common[0]))

struct chain {
	struct sigaction original; /* the disposition the process started with */
	int known;                 /* original is read */
	int ignored;               /* ...and it was SIG_IGN */
	int n;                     /* handlers pushed */
	hm_sigchain_fn below[DEPTH];
	hm_sigchain_fn top; /* NULL: the original */
};

static struct chain chains[NSIG];

static void
common_set(sigset_t *set)
{
	sigemptyset(set);
	for (size_t i = 0; i < NCOMMON; i++)
		sigaddset(set, common[i]);
}

/* Make top the disposition of sig. */
static void
install(int sig, struct chain *c)
{
	struct sigaction sa;

	if (!c->top || c->ignored) {
		sigaction(sig, &c->original, NULL);
		return;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = c->top;
	/* One cleanup at a time: the other common signals wait for the chain. */
	common_set(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(sig, &sa, NULL);
}

int
hm_sigchain_push(int sig, hm_sigchain_fn f)
{
	struct chain *c;

	if (sig <= 0 || sig >= NSIG) {
		errno = EINVAL;
		return -1;
	}
	c = &chains[sig];
	if (!c->known) {
		if (sigaction(sig, NULL, &c->original) < 0)
			return -1;
		c->ignored = c->original.sa_handler == SIG_IGN;
		c->known = 1;
	}
	if (c->n == DEPTH) {
		errno = ENOSPC;
		return -1;
	}
	c->below[c->n++] = c->top;
	c->top = f;
	install(sig, c);
	return 0;
}

int
hm_sigchain_pop(int sig)
{
	struct chain *c;

	if (sig <= 0 || sig >= NSIG || chains[sig].n == 0)
		return -1;
	c = &chains[sig];
	c->top = c->below[--c->n];
	install(sig, c);
	return 0;
}

void
hm_sigchain_push_common(hm_sigchain_fn f)
{
	for (size_t i = 0; i < NCOMMON; i++)
		hm_sigchain_push(common[i], f);
}

void
hm_sigchain_pop_common(void)
{
	for (size_t i = 0; i < NCOMMON; i++)
		hm_sigchain_pop(common[i]);
}

void
hm_sigchain_hold(sigset_t *old)
{
	sigset_t set;

	common_set(&set);
	sigprocmask(SIG_BLOCK, &set, old);
}

void
hm_sigchain_release(const sigset_t *old)
{
	sigprocmask(SIG_SETMASK, old, NULL);
}

void
hm_sigchain_forget(void)
{
	for (int sig = 1; sig < NSIG; sig++)
		if (chains[sig].known)
			sigaction(sig, &chains[sig].original, NULL);
}

void
hm_sigchain_child(void)
{
	sigset_t none;

	hm_sigchain_forget();
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}
