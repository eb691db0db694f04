#include "hm_json.h"
#include "hm_error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
hm_read_fd(int fd, char **bufp, size_t *lenp)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = hm_xmalloc(cap);

	for (;;) {
		ssize_t n;

		if (cap - len < 2) {
			if (cap > ((size_t)1 << 40)) {
				free(buf);
				errno = EFBIG;
				return -1;
			}
			cap *= 2;
			buf = hm_xrealloc(buf, cap);
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			free(buf);
			return -1;
		}
		if (n == 0)
			break;
		len += n;
	}
	buf[len] = '\0';
	*bufp = buf;
	*lenp = len;
	return 0;
}

void
hm_die_jv(int code, jv invalid)
{
	jv msg = jv_invalid_get_msg(invalid);

	hm_error("%s", jv_get_kind(msg) == JV_KIND_STRING ? jv_string_value(msg) : "invalid input");
	jv_free(msg);
	exit(code);
}

const char *
hm_json_source_name(const char *path)
{
	return strcmp(path, "-") == 0 ? "<stdin>" : path;
}

jv
hm_json_parse(const char *source, const char *buf, size_t len)
{
	jv_parser *p;
	jv v, extra;

	const char *nul;

	if (len > 0x7fffffff)
		return jv_invalid_with_msg(jv_string_fmt("%s: input too large", source));
	/*
	 * JSON text never holds a raw NUL; libjq 1.6's parser mishandles one
	 * (and leaks), so refuse it first, saying where.
	 */
	if ((nul = memchr(buf, '\0', len))) {
		int line = 1, col = 0;

		for (const char *c = buf; c < nul; c++, col++)
			if (*c == '\n')
				line++, col = -1;
		return jv_invalid_with_msg(jv_string_fmt(
			"%s: invalid JSON: NUL byte at line %d, column %d", source, line, col));
	}
	p = jv_parser_new(0);
	jv_parser_set_buf(p, buf, (int)len, 0);
	v = jv_parser_next(p);
	if (!jv_is_valid(v)) {
		jv msg = jv_invalid_get_msg(v);

		jv_parser_free(p);
		if (jv_get_kind(msg) == JV_KIND_NULL) {
			jv_free(msg);
			return jv_invalid_with_msg(
				jv_string_fmt("%s: invalid JSON: empty input", source));
		}
		v = jv_invalid_with_msg(jv_string_fmt("%s: invalid JSON: %s", source,
			jv_string_value(msg)));
		jv_free(msg);
		return v;
	}
	extra = jv_parser_next(p);
	if (jv_is_valid(extra) || jv_invalid_has_msg(jv_copy(extra))) {
		jv msg = jv_is_valid(extra) ? jv_null() : jv_invalid_get_msg(jv_copy(extra));

		jv_free(v);
		v = jv_invalid_with_msg(jv_string_fmt("%s: invalid JSON: %s", source,
			jv_get_kind(msg) == JV_KIND_STRING ? jv_string_value(msg)
			: "more than one document"));
		jv_free(msg);
	}
	jv_free(extra);
	jv_parser_free(p);
	return v;
}

jv
hm_json_read_file(const char *path, int *io_error)
{
	const char *src = hm_json_source_name(path);
	char *buf;
	size_t len;
	int fd, r, e;
	jv v;

	if (io_error)
		*io_error = 0;
	if (strcmp(path, "-") == 0) {
		fd = 0;
	} else if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		e = errno;
		if (io_error)
			*io_error = 1;
		v = jv_invalid_with_msg(jv_string_fmt("%s: %s", src, strerror(e)));
		errno = e;
		return v;
	}
	r = hm_read_fd(fd, &buf, &len);
	e = errno;
	if (fd != 0)
		close(fd);
	if (r < 0) {
		if (io_error)
			*io_error = 1;
		v = jv_invalid_with_msg(jv_string_fmt("%s: %s", src, strerror(e)));
		errno = e;
		return v;
	}
	v = hm_json_parse(src, buf, len);
	free(buf);
	return v;
}

static int
dump_flags(int flags)
{
	return (flags & HM_JSON_COMPACT) ? 0 : JV_PRINT_INDENT_FLAGS(2);
}

int
hm_json_write(FILE *f, jv v, int flags)
{
	jv_dumpf(v, f, dump_flags(flags));
	putc('\n', f);
	return ferror(f) ? -1 : 0;
}

char *
hm_json_dump(jv v, int flags, size_t *lenp)
{
	jv s = jv_dump_string(v, dump_flags(flags));
	int n = jv_string_length_bytes(jv_copy(s));
	char *out = hm_xmalloc((size_t)n + 2);

	memcpy(out, jv_string_value(s), n);
	out[n] = '\n';
	out[n + 1] = '\0';
	jv_free(s);
	if (lenp)
		*lenp = (size_t)n + 1;
	return out;
}

const char *
hm_json_str(jv obj, const char *key)
{
	jv v;
	const char *s = NULL;

	if (jv_get_kind(obj) != JV_KIND_OBJECT)
		return NULL;
	v = jv_object_get(jv_copy(obj), jv_string(key));
	/* The object still holds a reference, so the pointer outlives v. */
	if (jv_get_kind(v) == JV_KIND_STRING)
		s = jv_string_value(v);
	jv_free(v);
	return s;
}

long long
hm_json_int(jv obj, const char *key, long long dflt)
{
	jv v;
	long long n = dflt;

	if (jv_get_kind(obj) != JV_KIND_OBJECT)
		return dflt;
	v = jv_object_get(jv_copy(obj), jv_string(key));
	if (jv_get_kind(v) == JV_KIND_NUMBER)
		n = (long long)jv_number_value(v);
	jv_free(v);
	return n;
}

const char *
hm_json_kind_name(jv v)
{
	return jv_kind_name(jv_get_kind(v));
}
