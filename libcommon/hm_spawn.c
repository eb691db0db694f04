#include "hm_spawn.h"
#include "hm_error.h"
#include "hm_file.h"
#include "hm_json.h"
#include "hm_sigchain.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef HM_LIBEXECDIR
#define HM_LIBEXECDIR "/usr/local/libexec/heimdal"
#endif

static char *
self_dir(void)
{
	static char dir[PATH_MAX];
	ssize_t n;
	char *slash;

	if (dir[0])
		return dir;
	n = readlink("/proc/self/exe", dir, sizeof(dir) - 1);
	if (n <= 0) {
		dir[0] = '\0';
		return NULL;
	}
	dir[n] = '\0';
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	return dir;
}

const char *
hm_exec_path(void)
{
	const char *env = getenv("HEIMDAL_EXEC_PATH");
	const char *self;

	if (env && *env)
		return env;
	self = self_dir();
	return self ? self : HM_LIBEXECDIR;
}

static char *
try_dir(const char *dir, size_t len, const char *name)
{
	char *p;

	if (len == 0)
		return NULL;
	p = hm_xasprintf("%.*s/heimdal-%s", (int)len, dir, name);
	if (access(p, X_OK) == 0) {
		struct stat st;

		if (stat(p, &st) == 0 && S_ISREG(st.st_mode))
			return p;
	}
	free(p);
	return NULL;
}

char *
hm_find_tool(const char *name)
{
	const char *env = getenv("HEIMDAL_EXEC_PATH");
	const char *path = getenv("PATH");
	const char *self = self_dir();
	char *p;

	if (!*name || strchr(name, '/'))
		return NULL;
	if (env && *env && (p = try_dir(env, strlen(env), name)))
		return p;
	if (self && (p = try_dir(self, strlen(self), name)))
		return p;
	if ((p = try_dir(HM_LIBEXECDIR, strlen(HM_LIBEXECDIR), name)))
		return p;
	while (path && *path) {
		size_t n = strcspn(path, ":");

		if ((p = try_dir(path, n, name)))
			return p;
		path += n;
		if (*path == ':')
			path++;
	}
	return NULL;
}

static void
append(char **buf, size_t *len, size_t *cap, const char *data, size_t n)
{
	if (*len + n + 1 > *cap) {
		while (*len + n + 1 > *cap)
			*cap = *cap ? *cap * 2 : 8192;
		*buf = hm_xrealloc(*buf, *cap);
	}
	memcpy(*buf + *len, data, n);
	*len += n;
	(*buf)[*len] = '\0';
}

static volatile pid_t running;

pid_t
hm_spawn_running(void)
{
	return running;
}

/*
 * The child's side of hm_spawn, after fork: argv with the tool's path as
 * argv[0], the pipe ends on 0, 1 (and 2 when err >= 0), the signal state
 * we started with, then the tool.  Never returns; 127 when exec fails.
 */
static _Noreturn void
spawn_child(char *tool, char *const argv[], int in, int out, int err)
{
	size_t argc = 0;
	char **av;

	while (argv && argv[argc])
		argc++;
	av = hm_xmalloc((argc + 2) * sizeof(*av));
	av[0] = tool;
	for (size_t i = 1; i < argc; i++)
		av[i] = argv[i];
	av[argc ? argc : 1] = NULL;
	dup2(in, 0);
	dup2(out, 1);
	if (err >= 0)
		dup2(err, 2);
	/* The tool starts with the dispositions and mask we started with. */
	hm_sigchain_child();
	execv(tool, av);
	_exit(127);
}

/* One write of what is left of in[*off..len) to *fd, closed (-1) when done or failed. */
static void
feed_once(int *fd, const char *in, size_t len, size_t *off)
{
	ssize_t n = write(*fd, in + *off, len - *off);

	if (n > 0)
		*off += (size_t)n;
	if ((n < 0 && errno != EAGAIN && errno != EINTR) || *off == len) {
		close(*fd);
		*fd = -1;
	}
}

/* One read from *fd appended to *buf, *fd closed (-1) at its end or on an error. */
static void
drain_once(int *fd, char **buf, size_t *len, size_t *cap)
{
	char chunk[65536];
	ssize_t n = read(*fd, chunk, sizeof(chunk));

	if (n > 0) {
		append(buf, len, cap, chunk, (size_t)n);
	} else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
		close(*fd);
		*fd = -1;
	}
}

/*
 * Feed in[0..in_len) to *in (unless already closed: -1) while collecting *out
 * into p->out and *err (when >= 0) into p->err, until all three are closed.
 */
static void
exchange(int *in, int *out, int *err, const char *data, size_t in_len, struct hm_proc *p)
{
	size_t ocap = 0, ecap = 0, off = 0;

	append(&p->out, &p->out_len, &ocap, "", 0);
	while (*in >= 0 || *out >= 0 || *err >= 0) {
		struct pollfd fds[3] = {
			{ .fd = *in, .events = POLLOUT },
			{ .fd = *out, .events = POLLIN },
			{ .fd = *err, .events = POLLIN },
		};

		if (poll(fds, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (*in >= 0 && (fds[0].revents & (POLLOUT | POLLERR | POLLHUP)))
			feed_once(in, data, in_len, &off);
		if (*out >= 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR)))
			drain_once(out, &p->out, &p->out_len, &ocap);
		if (*err >= 0 && (fds[2].revents & (POLLIN | POLLHUP | POLLERR)))
			drain_once(err, &p->err, &p->err_len, &ecap);
	}
}

/* Reap the tool: p->status; -1 (error printed) when it cannot be waited for or run. */
static int
spawn_wait(pid_t pid, const char *name, struct hm_proc *p)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			running = 0;
			hm_error_errno("waitpid");
			return hm_fail(HM_EXIT_ENV);
		}
	running = 0;
	p->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	if (p->status == 127) {
		hm_error("heimdal-%s: could not be executed", name);
		return hm_fail(HM_EXIT_ENV);
	}
	return 0;
}

int
hm_spawn(const char *name, char *const argv[], const char *in, size_t in_len, int flags,
	 struct hm_proc *p)
{
	char *tool = hm_find_tool(name);
	int inp[2], outp[2], errp[2] = { -1, -1 };
	size_t ecap = 0;
	pid_t pid;

	memset(p, 0, sizeof(*p));
	if (!tool) {
		hm_error("heimdal-%s: tool not found (searched %s, libexec and PATH)", name,
			 hm_exec_path());
		return hm_fail(HM_EXIT_ENV);
	}
	if (pipe2(inp, O_CLOEXEC) < 0 || pipe2(outp, O_CLOEXEC) < 0 ||
	    ((flags & HM_SPAWN_CAPTURE_ERR) && pipe2(errp, O_CLOEXEC) < 0)) {
		free(tool);
		hm_error_errno("pipe");
		return hm_fail(HM_EXIT_ENV);
	}
	hm_debug("running %s", tool);
	pid = fork();
	if (pid < 0) {
		free(tool);
		hm_error_errno("fork");
		return hm_fail(HM_EXIT_ENV);
	}
	if (pid == 0)
		spawn_child(tool, argv, inp[0], outp[1], errp[1]);
	running = pid;
	free(tool);
	close(inp[0]);
	close(outp[1]);
	if (errp[1] >= 0)
		close(errp[1]);
	fcntl(inp[1], F_SETFL, O_NONBLOCK);
	/* A tool that stops reading its stdin is an EPIPE here, not our death. */
	hm_sigchain_push(SIGPIPE, SIG_IGN);
	if (in_len == 0) {
		close(inp[1]);
		inp[1] = -1;
	}
	exchange(&inp[1], &outp[0], &errp[0], in, in_len, p);
	hm_sigchain_pop(SIGPIPE);
	if ((flags & HM_SPAWN_CAPTURE_ERR) && !p->err)
		append(&p->err, &p->err_len, &ecap, "", 0);
	return spawn_wait(pid, name, p);
}

int
hm_spawn_json(const char *name, char *const argv[], jv in, jv *out)
{
	struct hm_proc p;
	size_t len = 0;
	char *buf = NULL;
	int status;

	*out = jv_invalid();
	if (jv_is_valid(in))
		buf = hm_json_dump(in, HM_JSON_COMPACT, &len);
	else
		jv_free(in);
	if (hm_spawn(name, argv, buf, len, 0, &p) < 0) {
		free(buf);
		return -1;
	}
	free(buf);
	status = p.status;
	if (status == 0 || status == 1) {
		size_t i = strspn(p.out, " \t\r\n");

		if (p.out[i] == '\0') {
			*out = jv_null();
		} else {
			char *src = hm_xasprintf("output of heimdal-%s", name);

			*out = hm_json_parse(src, p.out, p.out_len);
			free(src);
			if (!jv_is_valid(*out)) {
				jv msg = jv_invalid_get_msg(*out);

				hm_error("%s", jv_string_value(msg));
				jv_free(msg);
				*out = jv_invalid();
				status = hm_fail(HM_EXIT_ENV);
			}
		}
	}
	hm_proc_free(&p);
	return status;
}

void
hm_proc_free(struct hm_proc *p)
{
	free(p->out);
	free(p->err);
	p->out = p->err = NULL;
}
