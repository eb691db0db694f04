/*
 * guard.c - the porcelain's state lock (guard.h): hm_lock for the local
 * record, hm_rlock in process for the remote half (the porcelain loads
 * libgit2 anyway), `heimdal-lock release` from a signal handler.
 */
#include "guard.h"
#include "hm_config.h"
#include "hm_error.h"
#include "hm_file.h"
#include "hm_git.h"
#include "hm_json.h"
#include "hm_lock.h"
#include "hm_machine.h"
#include "hm_rlock.h"
#include "hm_sigchain.h"
#include "hm_spawn.h"
#include "hm_state.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/*
 * What the signal handler needs, prepared while it is safe to allocate: the
 * handler may only use async-signal-safe calls.  The lock id is the guard's
 * own (g->id), kept in memory from the moment the record is written.
 */
static struct guard *active;
static char tool[PATH_MAX]; /* heimdal-lock, which releases for the handler */
static int armed;

/*
 * Release g's lock from a signal handler: `heimdal-lock release --id ID`
 * reads the record, checks the id under the guard file, releases the remote
 * ref the record holds and removes it.  Run as a child with the signal
 * dispositions and mask the process started with; waited for.  Without the
 * tool, the record is left: its holder is dead and verifiably so, which is
 * what the next taker's stale check looks for.
 */
static void
release_from_handler(struct guard *g)
{
	int st = 0;

	if (!tool[0])
		return;
	/* It holds the signals off from its first instruction; one that came
	 * before (another Ctrl-C as it started) is met by running it again. */
	for (int attempt = 0; attempt < 3; attempt++) {
		pid_t pid = _Fork();

		if (pid == 0) {
			hm_sigchain_child();
			execl(tool, tool, "release", "--id", g->id, (char *)NULL);
			_exit(127);
		}
		while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		if (pid < 0 || !WIFSIGNALED(st))
			break;
	}
}

static void
on_signal(int sig)
{
	struct guard *g = active;
	int e = errno;

	if (g && g->id[0] && g->owner == getpid()) {
		release_from_handler(g);
		g->id[0] = '\0';
	}
	errno = e;
	hm_sigchain_pop(sig);
	raise(sig);
}

static void
release_at_exit(void)
{
	if (active)
		guard_release(active);
}

/* Once per process: the handler stays on the chain, idle while nothing is held. */
static void
arm(void)
{
	char *p;

	if (armed)
		return;
	p = hm_find_tool("lock");
	snprintf(tool, sizeof(tool), "%s", p ? p : "");
	free(p);
	/* libgit2 first: its shutdown, registered first, runs after the release
	 * at exit, which gives the remote half back through it. */
	hm_git_init();
	atexit(release_at_exit);
	hm_sigchain_push_common(on_signal);
	armed = 1;
}

static void
disarm(struct guard *g)
{
	g->id[0] = '\0';
	if (active == g)
		active = NULL;
}

/*
 * Held as soon as the local record exists (hm_lock_acquire calls this with
 * the signals held off, so no handler sees the lock written and not yet
 * known here): the remote part may take a while.
 */
static void
taken(jv rec, void *arg)
{
	struct guard *g = arg;

	g->owner = getpid();
	g->remote = 0;
	snprintf(g->id, sizeof(g->id), "%s", hm_json_str(rec, "id"));
}

/*
 * The lock was broken from a holder that died: the temporaries it left in
 * $HEIMDAL_HOME (a state, a cache, a backup in flight) go, those whose names
 * carry its lock's tag and a pid no longer running (hm_file_temp_is_dead).
 * Never the state: a temporary is only ever renamed over it whole.
 */
static void
clear_dead_temps(void)
{
	if (hm_file_remove_dead_temps(hm_home(), 0, NULL, hm_lock_broken_tag()) < 0)
		hm_warn("the temporaries of the process that died are left in %s", hm_home());
}

/*
 * What the lock needs of the local state, read once as the guard is taken:
 * the serial it records, the dotfiles repository whose origin holds the
 * remote half, and the state compared with the remote's before it is taken
 * (jv_null() for an operation that settles conflicts itself).
 */
static struct {
	char *path; /* $HEIMDAL_HOME/state.json */
	char *repository;
	jv state; /* kind JV_KIND_INVALID (zero) until read */
} facts;

static long long
read_facts(int settles)
{
	long long serial = -1;
	int ioerr;
	jv s;

	free(facts.path);
	facts.path = hm_state_path();
	s = hm_json_read_file(facts.path, &ioerr);
	free(facts.repository);
	jv_free(facts.state);
	facts.repository = NULL;
	facts.state = jv_null();
	if (jv_get_kind(s) != JV_KIND_OBJECT) {
		jv_free(s);
		return -1;
	}
	serial = hm_state_serial(s);
	facts.repository = hm_state_dotfiles_dir(s);
	if (settles)
		jv_free(s);
	else
		facts.state = s;
	return serial;
}

static int
remote_take(jv *rec, char **held_msg, volatile sig_atomic_t *stopped, void *arg)
{
	struct hm_lock_config cfg;
	size_t len;
	FILE *m;
	jv holder;
	int r;

	(void)arg;
	if (!facts.repository) {
		hm_debug("no state with a dotfiles_path: the lock is local only");
		return HM_LOCK_REMOTE_LOCAL;
	}
	if (hm_config_load(&cfg) < 0)
		return -1;
	r = hm_rlock_acquire(facts.repository, rec, facts.state, facts.path, &cfg, &holder,
			     stopped);
	if (r == HM_LOCK_REMOTE_HELD && (m = open_memstream(held_msg, &len))) {
		hm_rlock_print_held(m, holder, &cfg);
		fclose(m);
	}
	jv_free(holder);
	return r;
}

static void
remote_give(jv remote, void *arg)
{
	struct hm_lock_config cfg;
	jv out;
	int r;

	(void)arg;
	if (hm_config_load(&cfg) < 0)
		return;
	r = hm_rlock_release(remote, &cfg, &out);
	if (r == 1 || r == HM_EXIT_LOCKED)
		hm_debug("%s no longer held our lock (%s)", HM_LOCK_REMOTE_REF,
			 hm_json_str(out, "result"));
	jv_free(out);
}

static void
remote_recover(void *arg)
{
	struct hm_lock_config cfg;
	jv out;

	(void)arg;
	if (facts.repository && hm_config_load(&cfg) == 0 &&
	    hm_rlock_recover(facts.repository, &cfg, &out) == 0)
		jv_free(out);
}

static const struct hm_lock_remote remote_half = {
	.take = remote_take,
	.give = remote_give,
	.recover = remote_recover,
};

int
guard_acquire(struct guard *g, const char *operation, int flags)
{
	struct hm_lock_request req = { .operation = operation,
				       .pid = getpid(),
				       .wait = !!(flags & GUARD_WAIT),
				       .nested = 1,
				       .taken = taken,
				       .arg = g,
				       .local_first = !!(flags & GUARD_REMOTE_LATER),
				       .serial = -1 };
	jv rec, remote;

	*g = (struct guard)GUARD_INIT;
	g->flags = flags;
	if (flags & GUARD_DRY_RUN) {
		hm_debug("dry run: the state is not locked");
		return 0;
	}
	if (active)
		hm_die(HM_EXIT_ENV, "internal error: a second guard in one process");
	arm();
	active = g;
	req.serial = read_facts(!!(flags & GUARD_SETTLES));
	hm_lock_set_remote(&remote_half);
	if (hm_lock_acquire(&req, &rec) < 0) {
		/* hm_lock_acquire gave back anything it had taken. */
		disarm(g);
		return -1;
	}
	if (jv_get_kind(rec) != JV_KIND_OBJECT ||
	    strcmp(hm_json_str(rec, "lock_type"), "disabled") == 0) {
		jv_free(rec);
		disarm(g);
		return 0;
	}
	/* Only a hybrid lock has a remote part to take later. */
	if (strcmp(hm_json_str(rec, "lock_type"), "hybrid") != 0)
		g->flags &= ~GUARD_REMOTE_LATER;
	remote = jv_object_get(jv_copy(rec), jv_string("remote"));
	g->remote = jv_get_kind(remote) == JV_KIND_OBJECT;
	jv_free(remote);
	jv_free(rec);
	hm_debug("locked the state for %s (%s)", operation, g->id);
	clear_dead_temps();
	return 0;
}

int
guard_held(void)
{
	return active && active->id[0] && active->owner == getpid();
}

int
guard_remote_pending(const struct guard *g)
{
	return g->id[0] && !g->remote && g->owner == getpid() && (g->flags & GUARD_REMOTE_LATER);
}

int
guard_need_remote(struct guard *g)
{
	int taken;

	if (!guard_remote_pending(g))
		return 0;
	if (hm_lock_acquire_remote(g->id, !!(g->flags & GUARD_WAIT), &taken) < 0)
		return -1;
	g->remote = taken;
	if (taken)
		hm_debug("took the remote part of the lock (%s)", g->id);
	return 0;
}

void
guard_release(struct guard *g)
{
	sigset_t old;

	if (!g->id[0] || g->owner != getpid()) {
		if (active == g && !g->id[0])
			active = NULL;
		return;
	}
	/* No signal handler may race the release of the same lock: a signal
	 * that comes meanwhile is delivered once it is released. */
	hm_sigchain_hold(&old);
	if (hm_lock_release(g->id) == 0)
		hm_debug("released the state lock %s", g->id);
	disarm(g);
	hm_sigchain_release(&old);
}
