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

/*
 * fmt with its own newlines as \x01: formatted with the same arguments, it
 * shows which newlines of a message are the message's lines (those the
 * format wrote) and which came from data.
 */
static char *
mark_lines(const char *fmt)
{
	char *m = strdup(fmt);

	for (char *c = m; c && *c; c++)
		if (*c == '\n')
			*c = '\x01';
	return m;
}

static void
vmsg(const char *kind, const char *fmt, va_list ap, int errnum)
{
	/* One write per message so concurrent tools do not interleave lines. */
	char buf[4096], marks[4096], safe[4096 * 4 + 2], *mfmt = mark_lines(fmt);
	size_t at = 0, n;
	int head = kind ? snprintf(buf, sizeof(buf), "%s: %s: ", hm_progname, kind)
			: snprintf(buf, sizeof(buf), "%s: ", hm_progname);
	va_list aq;

	if (head < 0 || (size_t)head >= sizeof(buf))
		head = 0;
	va_copy(aq, ap);
	vsnprintf(buf + head, sizeof(buf) - (size_t)head, fmt, ap);
	memset(marks, 0, sizeof(marks));
	if (mfmt)
		vsnprintf(marks + head, sizeof(marks) - (size_t)head, mfmt, aq);
	va_end(aq);
	free(mfmt);
	n = strlen(buf);
	if (errnum)
		snprintf(buf + n, sizeof(buf) - n, ": %s", strerror(errnum));
	/*
	 * The message's own lines stay; a control character from data, a newline
	 * included, does not reach the terminal: each line is escaped apart.
	 */
	safe[0] = '\0';
	for (size_t i = 0, start = 0;; i++) {
		int line_end = buf[i] == '\n' && marks[i] == '\x01';

		if (buf[i] != '\0' && !line_end)
			continue;
		buf[i] = '\0';
		hm_term_escape(buf + start, 0, safe + at, sizeof(safe) - 1 - at);
		at += strlen(safe + at);
		if (!line_end || at >= sizeof(safe) - 2)
			break;
		safe[at++] = '\n';
		start = i + 1;
	}
	safe[at++] = '\n';
	fwrite(safe, 1, at, stderr);
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
hm_pass_stderr(const char *text)
{
	if (text && *text) {
		fputs(text, stderr);
		fflush(stderr);
	}
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
