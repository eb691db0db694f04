#include "hm_jq.h"
#include "hm_error.h"
#include "hm_file.h"
#include "hm_json.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* The directory of the running binary, for "$ORIGIN" in the search path. */
static jv
origin_dir(void)
{
	char buf[PATH_MAX];
	char *slash;

	/* "." when unknown, as jq's dirname() of a bare "jq". */
	if (realpath("/proc/self/exe", buf) == NULL || (slash = strrchr(buf, '/')) == NULL)
		return jv_string(".");
	return jv_string_sized(buf, slash == buf ? 1 : (int)(slash - buf));
}

void
hm_jq_set_paths(jq_state *jq, jv libdirs)
{
	char cwd[PATH_MAX];

	if (jv_get_kind(libdirs) == JV_KIND_NULL) {
		jv_free(libdirs);
		libdirs = JV_ARRAY(jv_string("~/.jq"), jv_string("$ORIGIN/../lib/jq"),
				   jv_string("$ORIGIN/lib"));
	}
	jq_set_attr(jq, jv_string("JQ_LIBRARY_PATH"), libdirs);
	jq_set_attr(jq, jv_string("JQ_ORIGIN"), origin_dir());
	jq_set_attr(jq, jv_string("PROGRAM_ORIGIN"),
		    jv_string(getcwd(cwd, sizeof(cwd)) ? cwd : "."));
}

void
hm_jq_debug_cb(void *data, jv input)
{
	int dumpopts = *(int *)data;

	jv_dumpf(JV_ARRAY(jv_string("DEBUG:"), input), stderr, dumpopts & ~JV_PRINT_PRETTY);
	fputc('\n', stderr);
}

void
hm_jq_report_error(jv pos, jv msg)
{
	if (jv_get_kind(msg) == JV_KIND_STRING) {
		fprintf(stderr, "jq: error (at %s): %s\n", jv_string_value(pos),
			jv_string_value(msg));
	} else {
		msg = jv_dump_string(msg, 0);
		fprintf(stderr, "jq: error (at %s) (not a string): %s\n", jv_string_value(pos),
			jv_string_value(msg));
	}
	jv_free(pos);
	jv_free(msg);
}

int
hm_jq_halt_status(jq_state *jq)
{
	jv code = jq_get_exit_code(jq);
	jv msg = jq_get_error_message(jq);
	int ret;

	if (!jv_is_valid(code))
		ret = 0;
	else if (jv_get_kind(code) == JV_KIND_NUMBER)
		ret = (int)jv_number_value(code);
	else
		ret = 5;
	jv_free(code);
	if (jv_get_kind(msg) == JV_KIND_STRING) {
		fputs(jv_string_value(msg), stderr);
	} else if (jv_is_valid(msg) && jv_get_kind(msg) != JV_KIND_NULL) {
		msg = jv_dump_string(msg, 0);
		fprintf(stderr, "%s\n", jv_string_value(msg));
	}
	fflush(stderr);
	jv_free(msg);
	return ret;
}

int
hm_jq_check_file(const char *path)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	struct stat st;
	int ret = 0;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0)
		ret = -1;
	else if (S_ISDIR(st.st_mode))
		ret = -1, errno = EISDIR;
	close(fd);
	return ret;
}

/* jv_load_file's own texts for a file it could not open or read. */
static int
is_read_error(const char *path, jv msg)
{
	jv e = jv_string_fmt("Error reading from %s", path);
	int r = jv_equal(jv_copy(msg), e);
	const char *s = jv_string_value(msg);

	return r || strncmp(s, "Could not open ", 15) == 0;
}

jv
hm_jq_load_file(const char *path, int raw)
{
	jv v = jv_load_file(path, raw);
	jv msg;

	if (jv_is_valid(v))
		return v;
	msg = jv_invalid_get_msg(v);
	if (jv_get_kind(msg) != JV_KIND_STRING || is_read_error(path, msg)) {
		jv_free(msg);
		errno = errno ? errno : EIO;
		return jv_invalid();
	}
	return jv_invalid_with_msg(msg);
}

void
hm_jq_report_ignored(jv msg)
{
	fprintf(stderr, "ignoring parse error: %s\n", jv_string_value(msg));
	jv_free(msg);
}

void
hm_jq_set_colors(void)
{
	const char *colors = getenv("JQ_COLORS");

	if (colors != NULL && !jq_set_colors(colors))
		fputs("Failed to set $JQ_COLORS\n", stderr);
}

/* The first error of jq's parser (flags 0) in buf, or jv_true(). */
static jv
check_json(const char *buf, size_t len)
{
	jv_parser *p = jv_parser_new(0);
	jv v;

	jv_parser_set_buf(p, buf, (int)len, 0);
	while (jv_is_valid(v = jv_parser_next(p)))
		jv_free(v);
	jv_parser_free(p);
	return jv_invalid_has_msg(jv_copy(v)) ? v : (jv_free(v), jv_true());
}

/* 1 when [buf, end) holds only JSON white space. */
static int
blank(const char *buf, const char *end)
{
	while (buf < end && strchr(" \t\r\n", *buf) && *buf != '\0')
		buf++;
	return buf == end;
}

jv
hm_jq_check_text(const char *buf, size_t len, int flags)
{
	const char *end = buf + len, *rs;
	int n = 0;

	if (len > INT_MAX)
		return jv_invalid_with_msg(jv_string("text too large"));
	/* libjq's parser starts over at an RS even outside --seq, so the check
	 * would pass text the streaming parser asserts on: none is JSON. */
	if (!(flags & JV_PARSE_SEQ) && memchr(buf, '\036', len))
		return jv_invalid_with_msg(jv_string("a record separator (RS) outside --seq"));
	if (!(flags & JV_PARSE_SEQ))
		return check_json(buf, len);
	/* RFC 7464: each text after an RS is JSON, and nothing but space before the first */
	for (; buf <= end; buf = rs + 1, n++) {
		jv ok, msg;

		rs = memchr(buf, '\036', (size_t)(end - buf));
		if (rs == NULL)
			rs = end;
		ok = check_json(buf, (size_t)(rs - buf));
		if (jv_is_valid(ok) && (n > 0 || blank(buf, rs))) {
			jv_free(ok);
			continue;
		}
		if (jv_is_valid(ok)) {
			jv_free(ok);
			msg = jv_string("text before the first RS");
		} else {
			msg = jv_invalid_get_msg(ok);
		}
		ok = jv_invalid_with_msg(jv_string_fmt("%s (record %d)", jv_string_value(msg), n));
		jv_free(msg);
		return ok;
	}
	return jv_true();
}

/* The descriptor a path such as /dev/fd/63 or /dev/stdin names, or -1. */
static int
named_fd(const char *path)
{
	int fd, end = 0;

	if (strcmp(path, "/dev/stdin") == 0)
		return 0;
	if ((sscanf(path, "/dev/fd/%d%n", &fd, &end) == 1 ||
	     sscanf(path, "/proc/self/fd/%d%n", &fd, &end) == 1) &&
	    path[end] == '\0')
		return fd;
	return -1;
}

/*
 * Put buf back where libjq's reader will read input: on descriptor target
 * (stdin, or the one a /dev/fd/N path names, never stdout or stderr) through
 * a memfd, or else as a /proc/self/fd path in name.  Returns the input to read, NULL on failure.
 */
static const char *
put_back(const char *input, int target, const char *buf, size_t len, char *name, size_t size)
{
	int fd = memfd_create("heimdal-query", MFD_CLOEXEC);

	if (fd < 0 || hm_write_all(fd, buf, len) < 0) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	if (target < 0 || target == STDOUT_FILENO || target == STDERR_FILENO) {
		snprintf(name, size, "/proc/self/fd/%d", fd);
		return name;
	}
	if (dup2(fd, target) < 0 || lseek(target, 0, SEEK_SET) < 0) {
		close(fd);
		return NULL;
	}
	close(fd);
	return input;
}

/* libjq 1.6 asserts in its streaming parser (stream_token) on {"a":1,"b",2}. */
const char *
hm_jq_stream_input(const char *input, const char *source, int flags, char *name, size_t size,
		   int *status)
{
	int fd = strcmp(input, "-") == 0 ? 0 : open(input, O_RDONLY | O_CLOEXEC);
	int regular = 0;
	struct stat st;
	char *buf = NULL;
	size_t len;
	jv ok;

	*status = HM_EXIT_ENV;
	if (fd < 0 || fstat(fd, &st) < 0 || hm_read_fd(fd, &buf, &len) < 0) {
		hm_error_errno("%s", source);
		if (fd > 0)
			close(fd);
		return NULL;
	}
	regular = fd > 0 && S_ISREG(st.st_mode);
	if (fd > 0)
		close(fd);
	ok = hm_jq_check_text(buf, len, flags);
	if (!jv_is_valid(ok)) {
		jv msg = jv_invalid_get_msg(ok);

		hm_error("%s: invalid JSON: %s", source, jv_string_value(msg));
		jv_free(msg);
		free(buf);
		*status = HM_EXIT_USAGE;
		return NULL;
	}
	if (!regular) {
		input = put_back(input, fd == 0 ? 0 : named_fd(input), buf, len, name, size);
		if (input == NULL)
			hm_error_errno("%s", source);
	}
	free(buf);
	return input;
}

jv
hm_jq_realpath(const char *path)
{
	char *real = realpath(path, NULL);
	jv v = jv_string(real ? real : path);

	free(real);
	return v;
}

jv
hm_jq_program_origin(const char *program)
{
	char *copy = strdup(program);
	jv v;

	if (copy == NULL)
		return jv_string(".");
	v = hm_jq_realpath(dirname(copy));
	free(copy);
	return v;
}

/* jq 1.6's skip_shebang, line for line. */
const char *
hm_jq_skip_shebang(const char *p)
{
	const char *n;

	if (strncmp(p, "#!", 2) != 0)
		return p;
	n = strchr(p, '\n');
	if (n == NULL || n[1] != '#')
		return p;
	n = strchr(n + 1, '\n');
	if (n == NULL || n[1] == '#' || n[1] == '\0' || n[-1] != '\\' || n[-2] == '\\')
		return p;
	n = strchr(n + 1, '\n');
	if (n == NULL)
		return p;
	return n + 1;
}
