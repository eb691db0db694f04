#include "hm_tempfile.h"
#include "hm_error.h"
#include "hm_sigchain.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * The list is walked by the signal handler, so it only ever grows at its head
 * and a node is in a consistent state at every instruction: a node is filled
 * while inactive, then marked active; forgetting marks it inactive first.
 * Forgotten nodes are reused (free list), never freed.
 */
struct hm_tempfile {
	struct hm_tempfile *next;      /* every node, for the handler */
	struct hm_tempfile *next_free; /* the inactive ones */
	volatile sig_atomic_t active;
	pid_t owner;
	char *path;
	size_t cap;
};

static struct hm_tempfile *volatile head;
static struct hm_tempfile *free_nodes;
static int armed;

#define FENCE() __atomic_signal_fence(__ATOMIC_SEQ_CST)

void
hm_tempfile_remove_all(void)
{
	pid_t me = getpid();

	for (struct hm_tempfile *t = head; t; t = t->next)
		if (t->active && t->owner == me) {
			t->active = 0;
			unlink(t->path);
		}
}

static void
on_signal(int sig)
{
	int e = errno;

	hm_tempfile_remove_all();
	errno = e;
	hm_sigchain_pop(sig);
	raise(sig);
}

static void
at_exit(void)
{
	hm_tempfile_remove_all();
}

/* A node holding path, not yet active. */
static struct hm_tempfile *
node_for(const char *path)
{
	size_t len = strlen(path) + 1;
	struct hm_tempfile *t = free_nodes;

	if (!armed) {
		/* Once per process, for its whole life: later handlers go above. */
		hm_sigchain_push_common(on_signal);
		atexit(at_exit);
		armed = 1;
	}
	if (t) {
		free_nodes = t->next_free;
	} else {
		t = hm_xmalloc(sizeof(*t));
		memset(t, 0, sizeof(*t));
		t->next = head;
		FENCE();
		head = t;
	}
	if (t->cap < len) {
		free(t->path);
		t->path = hm_xmalloc(len);
		t->cap = len;
	}
	memcpy(t->path, path, len);
	t->owner = getpid();
	return t;
}

static void
activate(struct hm_tempfile *t)
{
	FENCE();
	t->active = 1;
	FENCE();
}

struct hm_tempfile *
hm_tempfile_register(const char *path)
{
	struct hm_tempfile *t = node_for(path);

	activate(t);
	return t;
}

/* The node of a file about to be made: ready before, active right after. */
static int
made(int fd, struct hm_tempfile *t, struct hm_tempfile **out, const sigset_t *old)
{
	int e = errno;

	if (fd >= 0) {
		activate(t);
		*out = t;
	} else {
		t->next_free = free_nodes;
		free_nodes = t;
		*out = NULL;
	}
	hm_sigchain_release(old);
	errno = e;
	return fd;
}

int
hm_tempfile_mkstemp(char *tmpl, mode_t mode, struct hm_tempfile **out)
{
	struct hm_tempfile *t = node_for(tmpl);
	sigset_t old;
	int fd;

	hm_sigchain_hold(&old);
	fd = mkostemp(tmpl, O_CLOEXEC);
	memcpy(t->path, tmpl, strlen(tmpl) + 1);
	if (fd >= 0 && fchmod(fd, mode) < 0) {
		int e = errno;

		close(fd);
		unlink(tmpl);
		errno = e;
		fd = -1;
	}
	return made(fd, t, out, &old);
}

int
hm_tempfile_openat(int dfd, const char *name, const char *path, mode_t mode,
		   struct hm_tempfile **out)
{
	struct hm_tempfile *t = node_for(path);
	sigset_t old;
	int fd;

	hm_sigchain_hold(&old);
	fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	return made(fd, t, out, &old);
}

int
hm_tempfile_mkstempat(int dfd, char *name, const char *dir, mode_t mode, struct hm_tempfile **out)
{
	static const char chars[] =
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	size_t n = strlen(name);
	char *x = name + (n >= 6 ? n - 6 : 0), path[PATH_MAX];
	unsigned char rnd[6];
	int fd = -1;

	*out = NULL;
	for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
		if (getentropy(rnd, sizeof(rnd)) < 0)
			return -1;
		for (int i = 0; i < 6; i++)
			x[i] = chars[rnd[i] % (sizeof(chars) - 1)];
		if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path)) {
			errno = ENAMETOOLONG;
			return -1;
		}
		fd = hm_tempfile_openat(dfd, name, path, mode, out);
		if (fd < 0 && errno != EEXIST)
			return -1;
	}
	return fd;
}

void
hm_tempfile_forget(struct hm_tempfile *t)
{
	if (!t || !t->active)
		return;
	t->active = 0;
	FENCE();
	t->next_free = free_nodes;
	free_nodes = t;
}

int
hm_tempfile_remove(struct hm_tempfile *t)
{
	int r = 0;

	if (!t)
		return 0;
	if (t->active && t->owner == getpid() && unlink(t->path) < 0 && errno != ENOENT)
		r = -1;
	hm_tempfile_forget(t);
	return r;
}
