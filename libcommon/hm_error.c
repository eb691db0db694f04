#include "hm_error.h"
#include "hm_term.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *hm_progname = "heimdal";
static int verbose;
static int last_code = HM_EXIT_ENV;
static int dying, atexit_set;

/*
 * At exit, what is still buffered for stdout is written, and a failure to
 * write it (a full disk, a closed pipe's EIO) turns the exit into
 * HM_EXIT_ENV with a message: "heimdal-x --help >/dev/full" must not look
 * like success.  A process already dying of an error stays quiet about it.
 * A reader that went away (EPIPE) is no error of ours, as git's pager says.
 */
static void
check_stdout(void)
{
	int r = fflush(stdout), e = errno;

	if (r == 0 && !ferror(stdout))
		return;
	if (dying || (r != 0 && e == EPIPE))
		return;
	if (r != 0)
		errno = e;
	else
		errno = EIO;
	dying = 1;
	hm_error_errno("stdout");
	_exit(HM_EXIT_ENV);
}

void
hm_error_init(const char *argv0)
{
	const char *v = getenv("HEIMDAL_VERBOSE");

	if (argv0 && *argv0) {
		const char *slash = strrchr(argv0, '/');
		hm_progname = slash ? slash + 1 : argv0;
	}
	verbose = v && *v && strcmp(v, "0") != 0;
	if (!atexit_set) {
		atexit(check_stdout);
		atexit_set = 1;
	}
}

void
hm_exit_error(int code)
{
	dying = code != 0;
	exit(code);
}

void
hm_set_verbose(void)
{
	verbose = 1;
	setenv("HEIMDAL_VERBOSE", "1", 1);
}

int
hm_verbose(void)
{
	return verbose;
}

static void
vmsg(const char *kind, const char *fmt, va_list ap, int errnum)
{
	/* One write per message so concurrent tools do not interleave lines. */
	char buf[4096], safe[4096 * 4 + 2];
	int n = kind ? snprintf(buf, sizeof(buf), "%s: %s: ", hm_progname, kind)
		     : snprintf(buf, sizeof(buf), "%s: ", hm_progname);

	if (n < 0 || (size_t)n >= sizeof(buf))
		n = 0;
	n += vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	if (errnum)
		n += snprintf(buf + n, sizeof(buf) - n, ": %s", strerror(errnum));
	if ((size_t)n >= sizeof(buf) - 1)
		n = sizeof(buf) - 2;
	buf[n] = '\0';
	/* The message's own lines stay; a control character from data does not
	 * reach the terminal. */
	hm_term_escape(buf, 1, safe, sizeof(safe) - 1);
	n = (int)strlen(safe);
	safe[n++] = '\n';
	fwrite(safe, 1, (size_t)n, stderr);
	fflush(stderr);
}

void
hm_die(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg("error", fmt, ap, 0);
	va_end(ap);
	hm_exit_error(code);
}

void
hm_die_errno(int code, const char *fmt, ...)
{
	int e = errno;
	va_list ap;

	va_start(ap, fmt);
	vmsg("error", fmt, ap, e);
	va_end(ap);
	hm_exit_error(code);
}

int
hm_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg("error", fmt, ap, 0);
	va_end(ap);
	return -1;
}

int
hm_error_errno(const char *fmt, ...)
{
	int e = errno;
	va_list ap;

	va_start(ap, fmt);
	vmsg("error", fmt, ap, e);
	va_end(ap);
	return -1;
}

void
hm_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg("warning", fmt, ap, 0);
	va_end(ap);
}

void
hm_msg(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(NULL, fmt, ap, 0);
	va_end(ap);
}

void
hm_debug(const char *fmt, ...)
{
	va_list ap;

	if (!verbose)
		return;
	va_start(ap, fmt);
	vmsg("debug", fmt, ap, 0);
	va_end(ap);
}

int
hm_fail(int code)
{
	last_code = code;
	return -1;
}

int
hm_last_code(void)
{
	return last_code;
}

void *
hm_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		hm_die(HM_EXIT_ENV, "out of memory (%zu bytes)", n);
	return p;
}

void *
hm_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q)
		hm_die(HM_EXIT_ENV, "out of memory (%zu bytes)", n);
	return q;
}

char *
hm_xstrdup(const char *s)
{
	char *p = strdup(s);

	if (!p)
		hm_die(HM_EXIT_ENV, "out of memory");
	return p;
}

char *
hm_xasprintf(const char *fmt, ...)
{
	char *s;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		hm_die(HM_EXIT_ENV, "out of memory");
	return s;
}
