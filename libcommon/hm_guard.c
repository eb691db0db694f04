#include "hm_guard.h"
#include "hm_error.h"
#include "hm_file.h"
#include "hm_json.h"
#include "hm_lock.h"
#include "hm_machine.h"
#include "hm_spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

static const int guarded_signals[] = { SIGINT, SIGTERM, SIGHUP };

/*
 * What the signal handler needs, prepared while it is safe to allocate: the
 * handler may only use async-signal-safe calls.
 */
static struct hm_guard *active;
static char lock_file[PATH_MAX], guard_file[PATH_MAX], tool[PATH_MAX], id_needle[96];
static struct sigaction saved[sizeof(guarded_signals) / sizeof(guarded_signals[0])];
static int atexit_set;

/* Remove state.lock if it still holds our id, under the guard (signal-safe). */
static void
release_local_raw(void)
{
	char buf[8192];
	ssize_t n;
	int g, fd;

	g = open(guard_file, O_RDWR | O_CLOEXEC);
	if (g < 0)
		return;
	while (flock(g, LOCK_EX) < 0 && errno == EINTR)
		;
	fd = open(lock_file, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n > 0) {
			buf[n] = '\0';
			if (strstr(buf, id_needle))
				unlink(lock_file);
		}
	}
	close(g);
}

static void
on_signal(int sig)
{
	struct hm_guard *g = active;

	if (g && g->id[0] && g->owner == getpid()) {
		if (tool[0] && (g->remote || (g->flags & HM_GUARD_REMOTE_LATER))) {
			/* The remote ref needs libgit2: let heimdal-lock release both. */
			pid_t pid = fork();
			int st;

			if (pid == 0) {
				execl(tool, tool, "release", "--id", g->id, (char *)NULL);
				_exit(127);
			}
			while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
				;
		}
		release_local_raw();
		g->id[0] = '\0';
	}
	hm_file_cleanup_temps();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void
release_at_exit(void)
{
	if (active)
		hm_guard_release(active);
}

static void
install(struct hm_guard *g)
{
	struct sigaction sa;
	char *p;

	p = hm_home_path("state.lock");
	snprintf(lock_file, sizeof(lock_file), "%s", p);
	free(p);
	p = hm_home_path("state.lock.guard");
	snprintf(guard_file, sizeof(guard_file), "%s", p);
	free(p);
	snprintf(id_needle, sizeof(id_needle), "\"id\": \"%s\"", g->id);
	tool[0] = '\0';
	active = g;
	if (!atexit_set) {
		atexit(release_at_exit);
		atexit_set = 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(guarded_signals) / sizeof(guarded_signals[0]); i++)
		sigaddset(&sa.sa_mask, guarded_signals[i]);
	for (size_t i = 0; i < sizeof(guarded_signals) / sizeof(guarded_signals[0]); i++) {
		sigaction(guarded_signals[i], NULL, &saved[i]);
		/* An ignored signal (nohup) stays ignored. */
		if (saved[i].sa_handler != SIG_IGN)
			sigaction(guarded_signals[i], &sa, NULL);
	}
}

static void
disarm(struct hm_guard *g)
{
	g->id[0] = '\0';
	if (active == g) {
		active = NULL;
		for (size_t i = 0; i < sizeof(guarded_signals) / sizeof(guarded_signals[0]); i++)
			sigaction(guarded_signals[i], &saved[i], NULL);
	}
}

/* heimdal-lock, which a signal handler runs to release a remote ref. */
static void
find_release_tool(void)
{
	char *p;

	if (tool[0])
		return;
	p = hm_find_tool("lock");
	snprintf(tool, sizeof(tool), "%s", p ? p : "");
	free(p);
}

/* Armed as soon as the local record exists: the remote part may take a while. */
static void
taken(jv rec, void *arg)
{
	struct hm_guard *g = arg;

	snprintf(g->id, sizeof(g->id), "%s", hm_json_str(rec, "id"));
	g->owner = getpid();
	g->remote = 0;
	if (!active)
		install(g);
	else
		snprintf(id_needle, sizeof(id_needle), "\"id\": \"%s\"", g->id);
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

int
hm_guard_acquire(struct hm_guard *g, const char *operation, int flags)
{
	struct hm_lock_request req = { .operation = operation,
				       .pid = getpid(),
				       .wait = !!(flags & HM_GUARD_WAIT),
				       .nested = 1,
				       .taken = taken,
				       .arg = g,
				       .local_first = !!(flags & HM_GUARD_REMOTE_LATER) };
	jv rec, remote;

	*g = (struct hm_guard)HM_GUARD_INIT;
	g->flags = flags;
	if (flags & HM_GUARD_DRY_RUN) {
		hm_debug("dry run: the state is not locked");
		return 0;
	}
	if (active)
		hm_die(HM_EXIT_ENV, "internal error: a second guard in one process");
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
		g->flags &= ~HM_GUARD_REMOTE_LATER;
	remote = jv_object_get(jv_copy(rec), jv_string("remote"));
	g->remote = jv_get_kind(remote) == JV_KIND_OBJECT;
	jv_free(remote);
	jv_free(rec);
	if (g->remote)
		find_release_tool();
	hm_debug("locked the state for %s (%s)", operation, g->id);
	clear_dead_temps();
	return 0;
}

int
hm_guard_remote_pending(const struct hm_guard *g)
{
	return g->id[0] && !g->remote && g->owner == getpid() && (g->flags & HM_GUARD_REMOTE_LATER);
}

int
hm_guard_need_remote(struct hm_guard *g)
{
	int taken;

	if (!hm_guard_remote_pending(g))
		return 0;
	/* The tool first: a signal from here on may need it to release. */
	find_release_tool();
	if (hm_lock_acquire_remote(g->id, !!(g->flags & HM_GUARD_WAIT), &taken) < 0)
		return -1;
	g->remote = taken;
	if (taken)
		hm_debug("took the remote part of the lock (%s)", g->id);
	return 0;
}

void
hm_guard_release(struct hm_guard *g)
{
	sigset_t all, old;

	if (!g->id[0] || g->owner != getpid())
		return;
	/* No signal handler may race the release of the same lock. */
	sigemptyset(&all);
	for (size_t i = 0; i < sizeof(guarded_signals) / sizeof(guarded_signals[0]); i++)
		sigaddset(&all, guarded_signals[i]);
	sigprocmask(SIG_BLOCK, &all, &old);
	if (hm_lock_release(g->id) == 0)
		hm_debug("released the state lock %s", g->id);
	disarm(g);
	sigprocmask(SIG_SETMASK, &old, NULL);
}
