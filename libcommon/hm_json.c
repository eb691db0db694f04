#include "hm_json.h"
#include "hm_error.h"

#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <unistd.h>

int
hm_read_fd(int fd, char **bufp, size_t *lenp)
{
	size_t cap = 1 << 16, len = 0;
	struct stat st;
	char *buf;

	/* A regular file is read into one buffer of its size, not grown by doubling. */
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size + 2 > cap)
		cap = (size_t)st.st_size + 2;
	buf = hm_xmalloc(cap);

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
		len += (size_t)n;
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
	hm_exit_error(code);
}

int
hm_json_same(jv a, jv b)
{
	int va = jv_is_valid(a), vb = jv_is_valid(b);

	if (!va || !vb)
		return va == vb;
	if (jv_get_kind(a) == JV_KIND_STRING && jv_get_kind(b) == JV_KIND_STRING)
		return strcmp(jv_string_value(a), jv_string_value(b)) == 0;
	return jv_equal(jv_copy(a), jv_copy(b));
}

jv
hm_json_read_object(const char *path, const char *what)
{
	int ioerr;
	jv v = hm_json_read_file(path, &ioerr);

	if (!jv_is_valid(v))
		hm_die_jv(ioerr ? HM_EXIT_ENV : HM_EXIT_USAGE, v);
	if (jv_get_kind(v) != JV_KIND_OBJECT) {
		hm_error("%s: expected %s, got %s", hm_json_source_name(path), what,
			 hm_json_kind_name(v));
		jv_free(v);
		hm_exit_error(HM_EXIT_USAGE);
	}
	return v;
}

const char *
hm_json_source_name(const char *path)
{
	return strcmp(path, "-") == 0 ? "<stdin>" : path;
}

/*
 * The reader's fast path: strict JSON straight into jv, about twice as fast
 * as libjq 1.6's token-at-a-time parser on a state with 100k checksums.  It
 * declines (returns 0) on anything beyond plain strict JSON -- control
 * characters in strings, lone surrogates, lenient numbers, deep nesting,
 * any error -- and jv_parser then decides, so results and error messages
 * are always jq's own.
 */
struct fparse {
	const char *p, *end;
	int depth;
	char *tmp; /* unescaped string buffer */
	size_t cap;
};

static int fp_value(struct fparse *f, jv *out);

static void
fp_ws(struct fparse *f)
{
	while (f->p < f->end && (*f->p == ' ' || *f->p == '\n' || *f->p == '\t' || *f->p == '\r'))
		f->p++;
}

static int
fp_hex4(const char *p, unsigned *cp)
{
	*cp = 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];

		*cp <<= 4;
		if (c >= '0' && c <= '9')
			*cp |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			*cp |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			*cp |= (unsigned)(c - 'A' + 10);
		else
			return 0;
	}
	return 1;
}

/* cp as UTF-8 into out (room for 4 bytes); the number of bytes. */
static size_t
fp_utf8(char *out, unsigned cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xE0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	out[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/*
 * The \u escape whose 'u' is at *pp, a surrogate pair joined into one code
 * point *cp; *pp is left at its last digit.  0 (decline) for a lone
 * surrogate or anything but four hex digits.
 */
static int
fp_uescape(struct fparse *f, const char **pp, unsigned *cp)
{
	const char *p = *pp;
	unsigned lo;

	if (f->end - p < 5 || !fp_hex4(p + 1, cp))
		return 0;
	p += 4;
	if (*cp >= 0xDC00 && *cp <= 0xDFFF)
		return 0;
	if (*cp >= 0xD800 && *cp <= 0xDBFF) {
		if (f->end - p < 7 || p[1] != '\\' || p[2] != 'u' || !fp_hex4(p + 3, &lo) ||
		    lo < 0xDC00 || lo > 0xDFFF)
			return 0;
		p += 6;
		*cp = 0x10000 + (((*cp - 0xD800) << 10) | (lo - 0xDC00));
	}
	*pp = p;
	return 1;
}

/* The byte a one-character escape \c stands for; 'u' for \u, 0 for no escape. */
static char
fp_escape_byte(char c)
{
	switch (c) {
	case '"':
	case '\\':
	case '/':
	case 'u':
		return c;
	case 'b':
		return '\b';
	case 'f':
		return '\f';
	case 'n':
		return '\n';
	case 'r':
		return '\r';
	case 't':
		return '\t';
	default:
		return 0;
	}
}

/*
 * A string with escapes, s just past its opening quote, p where the plain
 * scan stopped: unescaped into tmp, never longer than the escaped string.
 */
static int
fp_escaped(struct fparse *f, const char *s, const char *p, jv *out)
{
	size_t n = 0;

	while (p < f->end && *p != '"')
		p += *p == '\\' ? 2 : 1;
	if ((size_t)(p - s) + 4 > f->cap) {
		f->cap = (size_t)(p - s) + 4;
		f->tmp = hm_xrealloc(f->tmp, f->cap);
	}
	for (p = s; p < f->end && *p != '"'; p++) {
		unsigned cp;
		char c;

		if ((unsigned char)*p < 0x20)
			return 0;
		if (*p != '\\') {
			f->tmp[n++] = *p;
			continue;
		}
		if (++p >= f->end || !(c = fp_escape_byte(*p)))
			return 0;
		if (c != 'u')
			f->tmp[n++] = c;
		else if (fp_uescape(f, &p, &cp))
			n += fp_utf8(f->tmp + n, cp);
		else
			return 0;
	}
	if (p >= f->end || n > 0x7fffffff)
		return 0;
	*out = jv_string_sized(f->tmp, (int)n);
	f->p = p + 1;
	return 1;
}

static int
fp_string(struct fparse *f, jv *out)
{
	const char *s = ++f->p, *p = s;

	while (p < f->end && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
		p++;
	if (p < f->end && *p == '"') {
		if (p - s > 0x7fffffff)
			return 0;
		*out = jv_string_sized(s, (int)(p - s));
		f->p = p + 1;
		return 1;
	}
	return fp_escaped(f, s, p, out);
}

static int
fp_delim(struct fparse *f)
{
	char c;

	if (f->p >= f->end)
		return 1;
	c = *f->p;
	return c == ',' || c == ']' || c == '}' || c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

static int
fp_number(struct fparse *f, jv *out)
{
	const char *s = f->p, *p = s;
	char num[64];
	int simple = 1;

	if (p < f->end && *p == '-')
		p++;
	if (p >= f->end || *p < '0' || *p > '9')
		return 0;
	if (*p == '0')
		p++;
	else
		while (p < f->end && *p >= '0' && *p <= '9')
			p++;
	if (p < f->end && *p == '.') {
		simple = 0;
		if (++p >= f->end || *p < '0' || *p > '9')
			return 0;
		while (p < f->end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < f->end && (*p == 'e' || *p == 'E')) {
		simple = 0;
		if (++p < f->end && (*p == '+' || *p == '-'))
			p++;
		if (p >= f->end || *p < '0' || *p > '9')
			return 0;
		while (p < f->end && *p >= '0' && *p <= '9')
			p++;
	}
	f->p = p;
	if (!fp_delim(f) || p - s >= (long)sizeof(num))
		return 0;
	if (simple && p - s <= 15 && !(s[0] == '-' && s[1] == '0')) {
		long long v = 0;

		for (const char *d = s[0] == '-' ? s + 1 : s; d < p; d++)
			v = v * 10 + (*d - '0');
		*out = jv_number((double)(s[0] == '-' ? -v : v));
		return 1;
	}
	memcpy(num, s, (size_t)(p - s));
	num[p - s] = '\0';
	*out = jv_number(strtod(num, NULL));
	return 1;
}

static int
fp_literal(struct fparse *f, const char *word, jv v, jv *out)
{
	size_t n = strlen(word);

	if ((size_t)(f->end - f->p) < n || memcmp(f->p, word, n) != 0)
		return 0;
	f->p += n;
	if (!fp_delim(f))
		return 0;
	*out = v;
	return 1;
}

static int
fp_container(struct fparse *f, jv *out)
{
	int object = *f->p == '{';
	char close = object ? '}' : ']';
	jv c = object ? jv_object() : jv_array();

	if (++f->depth > 200) {
		jv_free(c);
		return 0;
	}
	f->p++;
	fp_ws(f);
	if (f->p < f->end && *f->p == close) {
		f->p++;
		f->depth--;
		*out = c;
		return 1;
	}
	for (;;) {
		jv k = jv_invalid(), v;

		if (object) {
			if (f->p >= f->end || *f->p != '"' || !fp_string(f, &k))
				break;
			fp_ws(f);
			if (f->p >= f->end || *f->p != ':') {
				jv_free(k);
				break;
			}
			f->p++;
			fp_ws(f);
		}
		if (!fp_value(f, &v)) {
			jv_free(k);
			break;
		}
		c = object ? jv_object_set(c, k, v) : jv_array_append(c, v);
		fp_ws(f);
		if (f->p < f->end && *f->p == ',') {
			f->p++;
			fp_ws(f);
			continue;
		}
		if (f->p < f->end && *f->p == close) {
			f->p++;
			f->depth--;
			*out = c;
			return 1;
		}
		break;
	}
	jv_free(c);
	return 0;
}

static int
fp_value(struct fparse *f, jv *out)
{
	if (f->p >= f->end)
		return 0;
	switch (*f->p) {
	case '{':
	case '[':
		return fp_container(f, out);
	case '"':
		return fp_string(f, out);
	case 't':
		return fp_literal(f, "true", jv_true(), out);
	case 'f':
		return fp_literal(f, "false", jv_false(), out);
	case 'n':
		return fp_literal(f, "null", jv_null(), out);
	default:
		return fp_number(f, out);
	}
}

/* 1 and *out when buf is plain strict JSON, else 0 (nothing allocated). */
static int
fast_parse(const char *buf, size_t len, jv *out)
{
	struct fparse f = { buf, buf + len, 0, NULL, 0 };
	int ok;

	fp_ws(&f);
	ok = fp_value(&f, out);
	if (ok) {
		fp_ws(&f);
		if (f.p != f.end) {
			jv_free(*out);
			ok = 0;
		}
	}
	free(f.tmp);
	return ok;
}

size_t
hm_utf8_invalid(const char *buf, size_t len)
{
	const unsigned char *s = (const unsigned char *)buf;
	size_t i = 0;

	while (i < len) {
		unsigned c = s[i];
		size_t n;
		unsigned lo = 0x80, hi = 0xBF;

		/* ASCII runs, eight bytes at a time. */
		while (i + 8 <= len) {
			uint64_t w;

			memcpy(&w, s + i, 8);
			if (w & 0x8080808080808080ULL)
				break;
			i += 8;
		}
		if (i >= len)
			break;
		c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		/* RFC 3629's table: no overlong forms, no surrogates, nothing past U+10FFFF. */
		if (c >= 0xC2 && c <= 0xDF)
			n = 1;
		else if (c >= 0xE0 && c <= 0xEF)
			n = 2, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
		else if (c >= 0xF0 && c <= 0xF4)
			n = 3, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
		else
			return i;
		if (len - i <= n || s[i + 1] < lo || s[i + 1] > hi)
			return i;
		for (size_t k = 2; k <= n; k++)
			if (s[i + k] < 0x80 || s[i + k] > 0xBF)
				return i;
		i += n + 1;
	}
	return len;
}

/* "line L, column C" of buf + off, as jq counts them. */
static void
position(const char *buf, size_t off, int *line, int *col)
{
	*line = 1;
	*col = 0;
	for (const char *c = buf; c < buf + off; c++, (*col)++)
		if (*c == '\n')
			(*line)++, *col = -1;
}

jv
hm_json_parse(const char *source, const char *buf, size_t len)
{
	jv_parser *p;
	jv v, extra;
	const char *nul;
	size_t bad;
	int line, col;

	if (len > 0x7fffffff)
		return jv_invalid_with_msg(jv_string_fmt("%s: input too large", source));
	/*
	 * JSON text never holds a raw NUL; libjq 1.6's parser mishandles one
	 * (and leaks), so refuse it first, saying where.
	 */
	if ((nul = memchr(buf, '\0', len))) {
		position(buf, (size_t)(nul - buf), &line, &col);
		return jv_invalid_with_msg(jv_string_fmt(
			"%s: invalid JSON: NUL byte at line %d, column %d", source, line, col));
	}
	/*
	 * JSON text is UTF-8 (RFC 8259); libjq quietly rewrites a bad sequence
	 * to U+FFFD, so a document would not say what its bytes say.
	 */
	if ((bad = hm_utf8_invalid(buf, len)) < len) {
		position(buf, bad, &line, &col);
		return jv_invalid_with_msg(
			jv_string_fmt("%s: invalid JSON: invalid UTF-8 (byte 0x%02x) at line %d, "
				      "column %d",
				      source, (unsigned char)buf[bad], line, col));
	}
	if (fast_parse(buf, len, &v))
		return v;
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
		v = jv_invalid_with_msg(
			jv_string_fmt("%s: invalid JSON: %s", source, jv_string_value(msg)));
		jv_free(msg);
		return v;
	}
	extra = jv_parser_next(p);
	if (jv_is_valid(extra) || jv_invalid_has_msg(jv_copy(extra))) {
		jv msg = jv_is_valid(extra) ? jv_null() : jv_invalid_get_msg(jv_copy(extra));

		jv_free(v);
		v = jv_invalid_with_msg(jv_string_fmt("%s: invalid JSON: %s", source,
						      jv_get_kind(msg) == JV_KIND_STRING
							      ? jv_string_value(msg)
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

/*
 * The writer.  libjq 1.6 prints a string one code point at a time through
 * stdio; states hold 100k checksums, so heimdal serialises into one buffer
 * itself, byte for byte as jq does (tests/12-query.bats compares the two).
 */
#define OB_FLUSH_AT (1 << 20)

static void
ob_reserve(struct hm_json_out *b, size_t n)
{
	if (b->len + n + 1 <= b->cap)
		return;
	if (b->f && b->len > 0) {
		fwrite(b->p, 1, b->len, b->f);
		b->len = 0;
		if (n + 1 <= b->cap)
			return;
	}
	while (b->len + n + 1 > b->cap)
		b->cap = b->cap ? b->cap * 2 : 65536;
	b->p = hm_xrealloc(b->p, b->cap);
}

void
hm_json_out_raw(struct hm_json_out *b, const char *s, size_t n)
{
	ob_reserve(b, n);
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
ob_indent(struct hm_json_out *b, int depth)
{
	ob_reserve(b, 1 + 2 * (size_t)depth);
	b->p[b->len++] = '\n';
	memset(b->p + b->len, ' ', 2 * (size_t)depth);
	b->len += 2 * (size_t)depth;
}

/* 1 for the bytes jq prints as they are. */
static const unsigned char as_is[256] = {
	[0x20 ... 0x21] = 1, /* '"' is 0x22 */
	[0x23 ... 0x5b] = 1, /* '\\' is 0x5c */
	[0x5d ... 0x7e] = 1, /* DEL is 0x7f */
	[0x80 ... 0xff] = 1,
};

/* jq's escapes: \" \\ \b \f \n \r \t, \u00XX for other controls and DEL. */
void
hm_json_out_string(struct hm_json_out *b, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;

	ob_reserve(b, n + 2);
	b->p[b->len++] = '"';
	for (size_t i = 0; i < n; i++) {
		size_t start = i;
		unsigned char c;
		char esc[8];

		while (i < n && as_is[p[i]])
			i++;
		hm_json_out_raw(b, s + start, i - start);
		if (i == n)
			break;
		switch (c = p[i]) {
		case '"':
			hm_json_out_raw(b, "\\\"", 2);
			break;
		case '\\':
			hm_json_out_raw(b, "\\\\", 2);
			break;
		case '\b':
			hm_json_out_raw(b, "\\b", 2);
			break;
		case '\f':
			hm_json_out_raw(b, "\\f", 2);
			break;
		case '\n':
			hm_json_out_raw(b, "\\n", 2);
			break;
		case '\r':
			hm_json_out_raw(b, "\\r", 2);
			break;
		case '\t':
			hm_json_out_raw(b, "\\t", 2);
			break;
		default:
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			hm_json_out_raw(b, esc, 6);
		}
	}
	hm_json_out_raw(b, "\"", 1);
}

static void
ob_string(struct hm_json_out *b, jv s)
{
	hm_json_out_string(b, jv_string_value(s), (size_t)jv_string_length_bytes(jv_copy(s)));
}

void
hm_json_out_next(struct hm_json_out *b, int depth, int first)
{
	if (!first)
		hm_json_out_raw(b, ",", 1);
	if (b->pretty)
		ob_indent(b, depth + 1);
}

void
hm_json_out_key(struct hm_json_out *b, int depth, int first, const char *key, size_t n)
{
	hm_json_out_next(b, depth, first);
	hm_json_out_string(b, key, n);
	hm_json_out_raw(b, b->pretty ? ": " : ":", b->pretty ? 2 : 1);
}

void
hm_json_out_close(struct hm_json_out *b, char bracket, int depth, int empty)
{
	if (!empty && b->pretty)
		ob_indent(b, depth);
	hm_json_out_raw(b, &bracket, 1);
}

static void
ob_value(struct hm_json_out *b, jv v, int depth)
{
	char num[32];
	double d;
	int first = 1;

	switch (jv_get_kind(v)) {
	case JV_KIND_NULL:
		hm_json_out_raw(b, "null", 4);
		break;
	case JV_KIND_TRUE:
		hm_json_out_raw(b, "true", 4);
		break;
	case JV_KIND_FALSE:
		hm_json_out_raw(b, "false", 5);
		break;
	case JV_KIND_NUMBER:
		d = jv_number_value(v);
		/* Plain integers here; anything else the way jq formats it. */
		if (d > -1e15 && d < 1e15 && d == (double)(long long)d && !(d == 0 && signbit(d))) {
			hm_json_out_raw(b, num,
					(size_t)snprintf(num, sizeof(num), "%lld", (long long)d));
		} else {
			jv s = jv_dump_string(jv_copy(v), 0);

			hm_json_out_raw(b, jv_string_value(s),
					(size_t)jv_string_length_bytes(jv_copy(s)));
			jv_free(s);
		}
		break;
	case JV_KIND_STRING:
		ob_string(b, v);
		break;
	case JV_KIND_ARRAY:
		hm_json_out_raw(b, "[", 1);
		jv_array_foreach(v, i, x)
		{
			hm_json_out_next(b, depth, first);
			first = 0;
			ob_value(b, x, depth + 1);
			jv_free(x);
		}
		hm_json_out_close(b, ']', depth, first);
		break;
	case JV_KIND_OBJECT:
		hm_json_out_raw(b, "{", 1);
		jv_object_foreach(v, k, x)
		{
			hm_json_out_next(b, depth, first);
			first = 0;
			ob_string(b, k);
			hm_json_out_raw(b, b->pretty ? ": " : ":", b->pretty ? 2 : 1);
			ob_value(b, x, depth + 1);
			jv_free(k);
			jv_free(x);
		}
		hm_json_out_close(b, '}', depth, first);
		break;
	default: {
		/* An invalid: print what jq prints for it. */
		jv s = jv_dump_string(jv_copy(v), dump_flags(b->pretty ? 0 : HM_JSON_COMPACT));

		hm_json_out_raw(b, jv_string_value(s), (size_t)jv_string_length_bytes(jv_copy(s)));
		jv_free(s);
	}
	}
}

void
hm_json_out_value(struct hm_json_out *o, jv v, int depth)
{
	ob_value(o, v, depth);
	jv_free(v);
}

int
hm_json_write(FILE *f, jv v, int flags)
{
	struct hm_json_out b = HM_JSON_OUT_INIT(flags);

	b.p = hm_xmalloc(OB_FLUSH_AT);
	b.cap = OB_FLUSH_AT;
	b.f = f;
	ob_value(&b, v, 0);
	jv_free(v);
	hm_json_out_raw(&b, "\n", 1);
	fwrite(b.p, 1, b.len, f);
	free(b.p);
	return ferror(f) ? -1 : 0;
}

char *
hm_json_dump(jv v, int flags, size_t *lenp)
{
	struct hm_json_out b = HM_JSON_OUT_INIT(flags);

	ob_value(&b, v, 0);
	jv_free(v);
	hm_json_out_raw(&b, "\n", 1);
	if (lenp)
		*lenp = b.len;
	return b.p;
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

char *
hm_json_unknown_member(jv obj, const char *const *keys)
{
	char *unknown = NULL;

	jv_object_foreach(obj, k, v)
	{
		int known = 0;

		for (const char *const *p = keys; *p; p++)
			known |= strcmp(*p, jv_string_value(k)) == 0;
		if (!known && !unknown)
			unknown = hm_xstrdup(jv_string_value(k));
		jv_free(k);
		jv_free(v);
	}
	return unknown;
}
