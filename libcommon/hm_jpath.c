#include "hm_jpath.h"
#include "hm_json.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* A jq string literal without interpolation; *p at the opening quote. */
static int
parse_string(const char **p, jv *out)
{
	const char *s = *p + 1;
	jv str = jv_string("");

	for (;;) {
		size_t n = strcspn(s, "\"\\");

		if (n)
			str = jv_string_append_buf(str, s, (int)n);
		s += n;
		if (*s == '"')
			break;
		if (*s != '\\')
			goto fail; /* unterminated */
		switch (s[1]) {
		case '"':
			str = jv_string_append_buf(str, "\"", 1);
			break;
		case '\\':
			str = jv_string_append_buf(str, "\\", 1);
			break;
		case '/':
			str = jv_string_append_buf(str, "/", 1);
			break;
		case 'n':
			str = jv_string_append_buf(str, "\n", 1);
			break;
		case 't':
			str = jv_string_append_buf(str, "\t", 1);
			break;
		case 'r':
			str = jv_string_append_buf(str, "\r", 1);
			break;
		case 'b':
			str = jv_string_append_buf(str, "\b", 1);
			break;
		case 'f':
			str = jv_string_append_buf(str, "\f", 1);
			break;
		default:
			goto fail; /* \( interpolation, \u...: leave to jq */
		}
		s += 2;
	}
	*p = s + 1;
	*out = str;
	return 1;
fail:
	jv_free(str);
	return 0;
}

static int
parse_index(const char **p, jv *out)
{
	const char *s = *p;
	char *end;
	long n;

	if (*s == '"')
		return parse_string(p, out);
	if (!(isdigit((unsigned char)*s) || (*s == '-' && isdigit((unsigned char)s[1]))))
		return 0;
	errno = 0;
	n = strtol(s, &end, 10);
	if (errno || n > INT_MAX || n < -INT_MAX)
		return 0;
	*p = end;
	*out = jv_number((double)n);
	return 1;
}

int
hm_jpath_parse(const char *filter, jv *path)
{
	const char *p = filter, *start;
	jv out = jv_array();

	while (isspace((unsigned char)*p))
		p++;
	if (*p != '.')
		goto no;
	start = p;
	if (p[1] == '\0' || isspace((unsigned char)p[1])) {
		p++;
		goto end;
	}
	while (*p == '.' || *p == '[') {
		int first = p == start;
		jv k;

		if (*p == '.') {
			p++;
			/* jq 1.6 takes ".[" only at the start: ".a.[0]" is its syntax error. */
			if (*p == '[' && first)
				continue;
			if (*p == '"') {
				if (!parse_string(&p, &k))
					goto no;
			} else if (isalpha((unsigned char)*p) || *p == '_') {
				const char *s = p;

				while (isalnum((unsigned char)*p) || *p == '_')
					p++;
				k = jv_string_sized(s, (int)(p - s));
			} else {
				goto no;
			}
		} else {
			p++;
			if (!parse_index(&p, &k))
				goto no;
			if (*p != ']') {
				jv_free(k);
				goto no;
			}
			p++;
		}
		out = jv_array_append(out, k);
	}
end:
	while (isspace((unsigned char)*p))
		p++;
	if (*p != '\0')
		goto no;
	*path = out;
	return 1;
no:
	jv_free(out);
	return 0;
}

int
hm_jpath_eval(jv doc, jv path, jv *out)
{
	jv cur = doc;
	int ok = 1;

	jv_array_foreach(path, i, k)
	{
		jv_kind ck = jv_get_kind(cur);

		if (!ok) {
			jv_free(k);
			continue;
		}
		if (ck == JV_KIND_NULL) {
			jv_free(k);
			continue;
		}
		if (jv_get_kind(k) == JV_KIND_STRING && ck == JV_KIND_OBJECT) {
			cur = jv_object_get(cur, k);
			if (!jv_is_valid(cur))
				cur = jv_null();
		} else if (jv_get_kind(k) == JV_KIND_NUMBER && ck == JV_KIND_ARRAY) {
			int idx = (int)jv_number_value(k);
			int len = jv_array_length(jv_copy(cur));

			jv_free(k);
			if (idx < 0)
				idx += len;
			if (idx < 0 || idx >= len) {
				jv_free(cur);
				cur = jv_null();
			} else {
				cur = jv_array_get(cur, idx);
			}
		} else {
			jv_free(k);
			ok = 0;
		}
	}
	jv_free(path);
	if (!ok) {
		jv_free(cur);
		return 0;
	}
	*out = cur;
	return 1;
}

/*
 * The scanner walks the text once.  A value "on the path" at level m is one
 * the first m path steps lead to; entering such a value resets the answer,
 * so a later duplicate key wins, as in jq.
 */
struct scan {
	const char *p, *end;
	jv path;
	int len;
	int state; /* 0 null/absent, 1 found, -1 give up */
	const char *vs, *ve;
};

enum { MAX_DEPTH = 256 };

static void
ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
		s->p++;
}

/* 1 for the bytes a string holds as they are: printable ASCII but '"' and '\\'. */
static const unsigned char plain_byte[256] = {
	[0x20 ... 0x21] = 1, /* '"' is 0x22 */
	[0x23 ... 0x5b] = 1, /* '\\' is 0x5c */
	[0x5d ... 0x7f] = 1,
};

/* Skip a string at s->p (the opening quote); *plain = no escapes, ASCII only. */
static int
skip_string(struct scan *s, const char **body, size_t *blen, int *plain)
{
	const char *p = s->p + 1;

	*plain = 1;
	*body = p;
	for (;;) {
		while (p < s->end && plain_byte[(unsigned char)*p])
			p++;
		if (p >= s->end)
			return -1;
		if (*p == '"')
			break;
		if ((unsigned char)*p < 0x20)
			return -1;
		*plain = 0;
		if (*p == '\\') {
			if (p + 1 >= s->end || !strchr("\"\\/bfnrtu", p[1]) || p[1] == '\0')
				return -1;
			if (p[1] == 'u') {
				if (s->end - p < 6)
					return -1;
				for (int i = 2; i < 6; i++)
					if (!isxdigit((unsigned char)p[i]))
						return -1;
				/* A surrogate (paired or not) is libjq's to judge. */
				if ((p[2] == 'd' || p[2] == 'D') && strchr("89abcdefABCDEF", p[3]))
					return -1;
				p += 6;
				continue;
			}
			p += 2;
		} else {
			p++;
		}
	}
	*blen = (size_t)(p - *body);
	s->p = p + 1;
	return 0;
}

static int
skip_number(struct scan *s)
{
	const char *p = s->p;

	if (p < s->end && *p == '-')
		p++;
	if (p >= s->end || !isdigit((unsigned char)*p))
		return -1;
	if (*p == '0')
		p++;
	else
		while (p < s->end && isdigit((unsigned char)*p))
			p++;
	if (p < s->end && *p == '.') {
		p++;
		if (p >= s->end || !isdigit((unsigned char)*p))
			return -1;
		while (p < s->end && isdigit((unsigned char)*p))
			p++;
	}
	if (p < s->end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < s->end && (*p == '+' || *p == '-'))
			p++;
		if (p >= s->end || !isdigit((unsigned char)*p))
			return -1;
		while (p < s->end && isdigit((unsigned char)*p))
			p++;
	}
	s->p = p;
	return 0;
}

static int
literal(struct scan *s, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
		return -1;
	s->p += n;
	return 0;
}

/* Does the raw key equal the path step k (a string)? -1: cannot tell cheaply. */
static int
key_matches(jv k, const char *body, size_t blen, int plain)
{
	if (!plain)
		return -1;
	return (size_t)jv_string_length_bytes(jv_copy(k)) == blen &&
	       memcmp(jv_string_value(k), body, blen) == 0;
}

static int value(struct scan *s, int depth, int level);

/* After a member or element: 1 at ',' (more follow), 0 at close (consumed), -1 else. */
static int
list_next(struct scan *s, char close)
{
	ws(s);
	if (s->p < s->end && *s->p == ',') {
		s->p++;
		return 1;
	}
	if (s->p < s->end && *s->p == close) {
		s->p++;
		return 0;
	}
	return -1;
}

/* An empty object or array at s->p (just past its opening): 1 when consumed. */
static int
list_empty(struct scan *s, char close)
{
	ws(s);
	if (s->p < s->end && *s->p == close) {
		s->p++;
		return 1;
	}
	return 0;
}

/*
 * The object at s->p; want: it is on the path at level, whose step (borrowed)
 * must then be a key for the path to go on.
 */
static int
object(struct scan *s, int depth, int level, int want, jv step)
{
	int keyed = want && jv_get_kind(step) == JV_KIND_STRING, more;

	if (want && !keyed)
		s->state = -1;
	s->p++;
	if (list_empty(s, '}'))
		return 0;
	do {
		const char *body;
		size_t blen;
		int plain, child = -1;

		ws(s);
		if (s->p >= s->end || *s->p != '"' || skip_string(s, &body, &blen, &plain) < 0)
			return -1;
		if (keyed) {
			int m = key_matches(step, body, blen, plain);

			if (m < 0)
				s->state = -1;
			child = m == 1 ? level + 1 : -1;
		}
		ws(s);
		if (s->p >= s->end || *s->p != ':')
			return -1;
		s->p++;
		if (value(s, depth + 1, s->state < 0 ? -1 : child) < 0)
			return -1;
	} while ((more = list_next(s, '}')) == 1);
	return more;
}

/* The array at s->p; want and step as for object, the step an index here. */
static int
array(struct scan *s, int depth, int level, int want, jv step)
{
	int idx = 0, target = -1, more;

	if (want) {
		if (jv_get_kind(step) != JV_KIND_NUMBER || jv_number_value(step) < 0)
			s->state = -1;
		else
			target = (int)jv_number_value(step);
	}
	s->p++;
	if (list_empty(s, ']'))
		return 0;
	do {
		int child = target >= 0 && idx == target && s->state >= 0 ? level + 1 : -1;

		if (value(s, depth + 1, child) < 0)
			return -1;
		idx++;
	} while ((more = list_next(s, ']')) == 1);
	return more;
}

/* A string, number, true, false or null at s->p; want: on the path, to go deeper. */
static int
scalar(struct scan *s, int want)
{
	const char *body;
	size_t blen;
	int plain;

	switch (*s->p) {
	case '"':
		if (want)
			s->state = -1; /* indexing a string is a jq error */
		return skip_string(s, &body, &blen, &plain);
	case 't':
	case 'f':
		if (want)
			s->state = -1;
		return literal(s, *s->p == 't' ? "true" : "false");
	case 'n':
		return literal(s, "null"); /* null[...] is null: state stays 0 */
	default:
		if (want)
			s->state = -1;
		return skip_number(s);
	}
}

static int
value(struct scan *s, int depth, int level)
{
	jv step = jv_invalid();
	int want = level >= 0 && level < s->len, r;
	const char *start;

	if (depth > MAX_DEPTH)
		return -1;
	ws(s);
	if (s->p >= s->end)
		return -1;
	start = s->p;
	if (level >= 0)
		s->state = 0; /* this value overrides any earlier one at this place */
	if (want)
		step = jv_array_get(jv_copy(s->path), level);
	if (*s->p == '{')
		r = object(s, depth, level, want, step);
	else if (*s->p == '[')
		r = array(s, depth, level, want, step);
	else
		r = scalar(s, want);
	jv_free(step);
	if (r < 0)
		return -1;
	if (level == s->len && s->state >= 0) {
		s->state = 1;
		s->vs = start;
		s->ve = s->p;
	}
	return 0;
}

int
hm_jpath_scan(const char *buf, size_t len, jv path, const char **start, const char **end)
{
	struct scan s = { .p = buf, .end = buf + len, .path = path, .state = 0 };

	s.len = jv_array_length(jv_copy(path));
	/* Invalid UTF-8 anywhere is refused by the parser: let it say so. */
	if (hm_utf8_invalid(buf, len) < len)
		return -1;
	if (value(&s, 0, 0) < 0)
		return -1;
	ws(&s);
	if (s.p != s.end || s.state < 0)
		return -1;
	if (s.state == 1) {
		*start = s.vs;
		*end = s.ve;
	}
	return s.state;
}

/* A plain string at *pp (its opening quote); 0 with [*s, *s + *n) its body. */
static int
plain_string(const char **pp, const char *end, const char **s, size_t *n)
{
	const char *p = *pp;

	if (p >= end || *p++ != '"')
		return -1;
	for (*s = p; p < end && plain_byte[(unsigned char)*p]; p++)
		;
	if (p >= end || *p != '"')
		return -1;
	*n = (size_t)(p - *s);
	*pp = p + 1;
	return 0;
}

static const char *
skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r'))
		p++;
	return p;
}

int
hm_jpath_plain_members(const char *start, const char *end, hm_jpath_member_fn fn, void *arg)
{
	const char *p = skip_ws(start, end);

	if (p >= end || *p++ != '{')
		return 0;
	p = skip_ws(p, end);
	if (p < end && *p == '}')
		return skip_ws(p + 1, end) == end;
	for (;;) {
		const char *k, *v;
		size_t kl, vl;

		p = skip_ws(p, end);
		if (plain_string(&p, end, &k, &kl) < 0)
			return 0;
		p = skip_ws(p, end);
		if (p >= end || *p++ != ':')
			return 0;
		p = skip_ws(p, end);
		if (plain_string(&p, end, &v, &vl) < 0 || fn(arg, k, kl, v, vl) != 0)
			return 0;
		p = skip_ws(p, end);
		if (p < end && *p == ',') {
			p++;
			continue;
		}
		if (p < end && *p == '}')
			return skip_ws(p + 1, end) == end;
		return 0;
	}
}
