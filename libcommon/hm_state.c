#include "hm_state.h"
#include "hm_error.h"
#include "hm_file.h"
#include "hm_json.h"
#include "hm_machine.h"
#include "hm_term.h"
#include "hm_time.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/*
 * Validation walks the document with a path buffer and stops at the first
 * problem, so the message always names the exact field.
 */
struct vctx {
	char path[512];
	char *err;
};

static size_t
push_sized(struct vctx *c, const char *key, size_t len)
{
	size_t n = strlen(c->path);
	int simple = len > 0;

	for (size_t i = 0; i < len; i++)
		if (!(key[i] == '_' || (key[i] >= 'a' && key[i] <= 'z') ||
		      (key[i] >= 'A' && key[i] <= 'Z') ||
		      (i > 0 && key[i] >= '0' && key[i] <= '9')))
			simple = 0;
	if (simple) {
		snprintf(c->path + n, sizeof(c->path) - n, ".%.*s", (int)len, key);
	} else {
		struct hm_json_out o = HM_JSON_OUT_INIT(HM_JSON_COMPACT);

		hm_json_out_string(&o, key, len > 200 ? 200 : len);
		snprintf(c->path + n, sizeof(c->path) - n, "[%s]", o.p);
		free(o.p);
	}
	return n;
}

static int
fail(struct vctx *c, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->err = hm_xasprintf("%s: %s", c->path[0] ? c->path : ".", msg);
	return -1;
}

/*
 * Append a field name to the path; returns the old length for restoring.  A
 * key that is not a plain name is written as jq writes it, ["..."], its
 * control characters escaped, so the message is one line of plain text.
 */
static size_t
push(struct vctx *c, const char *key)
{
	return push_sized(c, key, strlen(key));
}

static size_t
push_index(struct vctx *c, int i)
{
	size_t n = strlen(c->path);

	snprintf(c->path + n, sizeof(c->path) - n, "[%d]", i);
	return n;
}

static void
pop(struct vctx *c, size_t n)
{
	c->path[n] = '\0';
}

enum { OPTIONAL = 1, NULLABLE = 2, NONEMPTY = 4, TIMESTAMP = 8, HEX = 16, NAME = 32 };

static int
check_string(struct vctx *c, jv obj, const char *key, int flags)
{
	jv v = jv_object_get(jv_copy(obj), jv_string(key));
	size_t n = push(c, key);
	int r = 0;
	jv_kind k = jv_get_kind(v);

	if (k == JV_KIND_INVALID) {
		if (!(flags & OPTIONAL))
			r = fail(c, "missing");
	} else if (k == JV_KIND_NULL) {
		if (!(flags & NULLABLE))
			r = fail(c, "expected a string, got null");
	} else if (k != JV_KIND_STRING) {
		r = fail(c, "expected a string, got %s", jv_kind_name(k));
	} else {
		const char *s = jv_string_value(v);
		time_t t;

		if ((size_t)jv_string_length_bytes(jv_copy(v)) != strlen(s))
			r = fail(c, "NUL character in string");
		else if ((flags & NONEMPTY) && !*s)
			r = fail(c, "must not be empty");
		else if (hm_term_has_control(s))
			r = fail(c, "control character in string");
		else if ((flags & TIMESTAMP) && hm_time_parse(s, &t) < 0)
			r = fail(c, "not an RFC 3339 timestamp: '%.64s'", s);
		else if ((flags & HEX) && (strlen(s) < 4 || strlen(s) > 64 ||
					   strspn(s, "0123456789abcdef") != strlen(s)))
			r = fail(c, "not a git commit id (lowercase hex): '%.64s'", s);
		else if ((flags & NAME) && (strchr(s, '/') || !strcmp(s, ".") || !strcmp(s, "..")))
			r = fail(c, "not a valid name: '%.64s'", s);
	}
	jv_free(v);
	if (r == 0)
		pop(c, n);
	return r;
}

static int
check_int(struct vctx *c, jv obj, const char *key, int flags)
{
	jv v = jv_object_get(jv_copy(obj), jv_string(key));
	size_t n = push(c, key);
	jv_kind k = jv_get_kind(v);
	int r = 0;

	if (k == JV_KIND_INVALID) {
		if (!(flags & OPTIONAL))
			r = fail(c, "missing");
	} else if (k != JV_KIND_NUMBER) {
		r = fail(c, "expected a non-negative integer, got %s", jv_kind_name(k));
	} else {
		double d = jv_number_value(v);

		if (!isfinite(d) || d < 0 || d != floor(d))
			r = fail(c, "expected a non-negative integer, got %g", d);
		else if (d > (double)HM_SERIAL_MAX)
			r = fail(c,
				 "%.0f is past the largest serial, %lld: no write could follow it",
				 d, HM_SERIAL_MAX);
	}
	jv_free(v);
	if (r == 0)
		pop(c, n);
	return r;
}

/* Borrow obj[key] when it has kind want; on mismatch fail and return invalid. */
static jv
get_kind(struct vctx *c, jv obj, const char *key, jv_kind want, int optional)
{
	jv v = jv_object_get(jv_copy(obj), jv_string(key));
	jv_kind k = jv_get_kind(v);
	size_t n;

	if (k == want)
		return v;
	jv_free(v);
	if (k == JV_KIND_INVALID && optional)
		return jv_invalid();
	n = push(c, key);
	if (k == JV_KIND_INVALID)
		fail(c, "missing");
	else
		fail(c, "expected %s %s, got %s", want == JV_KIND_OBJECT ? "an" : "an",
		     jv_kind_name(want), jv_kind_name(k));
	pop(c, n);
	return jv_invalid_with_msg(jv_null());
}

/*
 * "No string holds a control character": every key and string of v
 * (borrowed), members no rule names included, at any depth.
 */
static int
check_text(struct vctx *c, jv v, int depth)
{
	int r = 0;

	if (depth > 64)
		return fail(c, "nested too deeply");
	switch (jv_get_kind(v)) {
	case JV_KIND_STRING:
		if ((size_t)jv_string_length_bytes(jv_copy(v)) != strlen(jv_string_value(v)))
			return fail(c, "NUL character in string");
		if (hm_term_has_control(jv_string_value(v)))
			return fail(c, "control character in string");
		return 0;
	case JV_KIND_ARRAY:
		jv_array_foreach(v, i, e)
		{
			if (r == 0) {
				size_t n = push_index(c, i);

				if ((r = check_text(c, e, depth + 1)) == 0)
					pop(c, n);
			}
			jv_free(e);
		}
		return r;
	case JV_KIND_OBJECT:
		jv_object_foreach(v, k, e)
		{
			if (r == 0) {
				size_t len = (size_t)jv_string_length_bytes(jv_copy(k));
				const char *key = jv_string_value(k);
				size_t n = push_sized(c, key, len);

				if (len != strlen(key))
					r = fail(c, "NUL character in key");
				else if (hm_term_has_control(key))
					r = fail(c, "control character in key");
				else if ((r = check_text(c, e, depth + 1)) == 0)
					pop(c, n);
			}
			jv_free(k);
			jv_free(e);
		}
		return r;
	default:
		return 0;
	}
}

/* check_text over every member of doc but skip (whose rules are stricter). */
static int
check_text_members(struct vctx *c, jv doc, const char *skip)
{
	int r = 0;

	jv_object_foreach(doc, k, e)
	{
		if (r == 0 && !(skip && strcmp(jv_string_value(k), skip) == 0)) {
			size_t len = (size_t)jv_string_length_bytes(jv_copy(k));
			size_t n = push_sized(c, jv_string_value(k), len);

			if (len != strlen(jv_string_value(k)))
				r = fail(c, "NUL character in key");
			else if (hm_term_has_control(jv_string_value(k)))
				r = fail(c, "control character in key");
			else if ((r = check_text(c, e, 1)) == 0)
				pop(c, n);
		}
		jv_free(k);
		jv_free(e);
	}
	return r;
}

int
hm_state_checksum_valid(const char *hex)
{
	size_t n = strlen(hex);

	return (n == 32 || n == 64) && strspn(hex, "0123456789abcdef") == n;
}

int
hm_state_version_of(jv doc, char **err)
{
	jv v;
	double d;

	if (jv_get_kind(doc) != JV_KIND_OBJECT) {
		*err = hm_xasprintf(".: expected an object, got %s", hm_json_kind_name(doc));
		return -1;
	}
	v = jv_object_get(jv_copy(doc), jv_string("version"));
	if (jv_get_kind(v) == JV_KIND_INVALID) {
		/*
		 * V1 never had these: a document holding one is a V2 state that
		 * lost its version, not a V1 state to migrate (which would
		 * replace its lineage, history, checksums and machine).
		 */
		static const char *const v2_only[] = { "machine", "heimdal_version", "lineage",
						       "history", "checksums",       NULL };

		jv_free(v);
		for (const char *const *k = v2_only; *k; k++)
			if (jv_object_has(jv_copy(doc), jv_string(*k))) {
				*err = hm_xasprintf(".version: missing, but the document has .%s: "
						    "a V2 state without its version, not a V1 "
						    "state",
						    *k);
				return -1;
			}
		return 1;
	}
	if (jv_get_kind(v) != JV_KIND_NUMBER) {
		*err = hm_xasprintf(".version: expected an integer, got %s", hm_json_kind_name(v));
		jv_free(v);
		return -1;
	}
	d = jv_number_value(v);
	jv_free(v);
	if (!isfinite(d) || d < 1 || d != floor(d) || d > 1e9) {
		*err = hm_xasprintf(".version: expected a positive integer, got %g", d);
		return -1;
	}
	return (int)d;
}

int
hm_state_validate_v1(jv doc, char **err)
{
	struct vctx c = { .path = "", .err = NULL };

	if (jv_get_kind(doc) != JV_KIND_OBJECT) {
		*err = hm_xasprintf(".: expected an object, got %s", hm_json_kind_name(doc));
		return -1;
	}
	if (check_string(&c, doc, "active_profile", NONEMPTY | NAME) < 0 ||
	    check_string(&c, doc, "dotfiles_path", NONEMPTY) < 0 ||
	    check_string(&c, doc, "repo_url", 0) < 0 ||
	    check_string(&c, doc, "last_sync", OPTIONAL | NULLABLE | TIMESTAMP) < 0 ||
	    check_string(&c, doc, "last_apply", OPTIONAL | NULLABLE | TIMESTAMP) < 0 ||
	    check_text_members(&c, doc, NULL) < 0) {
		*err = c.err;
		return -1;
	}
	return 0;
}

static int
validate_machine(struct vctx *c, jv doc)
{
	jv m = get_kind(c, doc, "machine", JV_KIND_OBJECT, 0);
	size_t n;
	int r;

	if (!jv_is_valid(m)) {
		jv_free(m);
		return -1;
	}
	n = push(c, "machine");
	r = check_string(c, m, "id", NONEMPTY) < 0 ||
			    check_string(c, m, "hostname", NONEMPTY) < 0 ||
			    check_string(c, m, "os", 0) < 0 || check_string(c, m, "arch", 0) < 0 ||
			    check_string(c, m, "user", 0) < 0
		    ? -1
		    : 0;
	if (r == 0)
		pop(c, n);
	jv_free(m);
	return r;
}

static int
validate_lineage(struct vctx *c, jv doc)
{
	jv l = get_kind(c, doc, "lineage", JV_KIND_OBJECT, 0), ms;
	size_t n, n2;
	int r = 0, i = 0;

	if (!jv_is_valid(l)) {
		jv_free(l);
		return -1;
	}
	n = push(c, "lineage");
	if (check_string(c, l, "id", NONEMPTY) < 0 || check_int(c, l, "serial", 0) < 0 ||
	    check_int(c, l, "parent_serial", 0) < 0 ||
	    check_string(c, l, "git_commit", OPTIONAL | NULLABLE | HEX) < 0) {
		jv_free(l);
		return -1;
	}
	ms = get_kind(c, l, "machines", JV_KIND_ARRAY, 0);
	if (!jv_is_valid(ms)) {
		jv_free(ms);
		jv_free(l);
		return -1;
	}
	n2 = push(c, "machines");
	jv_array_foreach(ms, j, m)
	{
		if (r == 0 && (jv_get_kind(m) != JV_KIND_STRING || !*jv_string_value(m) ||
			       hm_term_has_control(jv_string_value(m)))) {
			size_t n3 = push_index(c, j);

			r = fail(c, "expected a machine id (non-empty string), got %s",
				 jv_get_kind(m) == JV_KIND_STRING ? "an invalid string"
								  : jv_kind_name(jv_get_kind(m)));
			(void)n3;
		}
		jv_free(m);
		i++;
	}
	if (r == 0) {
		pop(c, n2);
		pop(c, n);
	}
	jv_free(ms);
	jv_free(l);
	return r;
}

static int
validate_history(struct vctx *c, jv doc)
{
	jv h = get_kind(c, doc, "history", JV_KIND_ARRAY, 0);
	size_t n;
	int r = 0;

	if (!jv_is_valid(h)) {
		jv_free(h);
		return -1;
	}
	n = push(c, "history");
	if (jv_array_length(jv_copy(h)) > HM_HISTORY_MAX) {
		r = fail(c, "%d entries, at most %d (the newest) are kept",
			 jv_array_length(jv_copy(h)), HM_HISTORY_MAX);
		jv_free(h);
		return r;
	}
	jv_array_foreach(h, i, e)
	{
		if (r == 0) {
			size_t n2 = push_index(c, i);

			if (jv_get_kind(e) != JV_KIND_OBJECT)
				r = fail(c, "expected an object, got %s", hm_json_kind_name(e));
			else if (check_string(c, e, "operation", NONEMPTY) < 0 ||
				 check_string(c, e, "timestamp", TIMESTAMP) < 0 ||
				 check_string(c, e, "machine_id", NONEMPTY) < 0 ||
				 check_string(c, e, "user", 0) < 0 ||
				 check_string(c, e, "hostname", OPTIONAL) < 0 ||
				 check_int(c, e, "serial", 0) < 0)
				r = -1;
			if (r == 0)
				pop(c, n2);
		}
		jv_free(e);
	}
	if (r == 0)
		pop(c, n);
	jv_free(h);
	return r;
}

static int
validate_checksums(struct vctx *c, jv doc)
{
	jv cs = get_kind(c, doc, "checksums", JV_KIND_OBJECT, 0);
	size_t n;
	int r = 0;

	if (!jv_is_valid(cs)) {
		jv_free(cs);
		return -1;
	}
	n = push(c, "checksums");
	jv_object_foreach(cs, k, v)
	{
		const char *key = jv_string_value(k), *why = NULL;
		int nul = (size_t)jv_string_length_bytes(jv_copy(k)) != strlen(key);
		int safe = !nul && hm_path_safe_relative(key, &why);
		int str = jv_get_kind(v) == JV_KIND_STRING;

		/* The path is only built for the message: states hold 100k keys. */
		if (r == 0 && !(safe && str && hm_state_checksum_valid(jv_string_value(v)))) {
			push_sized(c, key, (size_t)jv_string_length_bytes(jv_copy(k)));
			if (nul)
				r = fail(c, "NUL character in path");
			else if (!safe)
				r = fail(c, "unsafe path: %s", why);
			else if (!str)
				r = fail(c, "expected a checksum string, got %s",
					 hm_json_kind_name(v));
			else {
				char shown[400];

				r = fail(c,
					 "not a checksum (32 or 64 lowercase hex digits): '%.80s'",
					 hm_term_escape(jv_string_value(v), 0, shown,
							sizeof(shown)));
			}
		}
		jv_free(k);
		jv_free(v);
	}
	if (r == 0)
		pop(c, n);
	jv_free(cs);
	return r;
}

int
hm_state_validate(jv doc, char **err)
{
	struct vctx c = { .path = "", .err = NULL };
	int version = hm_state_version_of(doc, err);

	if (version < 0)
		return -1;
	if (version == 1) {
		*err = hm_xstrdup(
			".version: missing (a V1 state; migrate it with 'heimdal state migrate')");
		return -1;
	}
	if (version > HM_STATE_VERSION) {
		*err = hm_xasprintf(".version: " HM_STATE_NEWER_FMT, version, HM_STATE_VERSION);
		return -1;
	}
	if (check_string(&c, doc, "active_profile", NONEMPTY | NAME) < 0 ||
	    check_string(&c, doc, "dotfiles_path", NONEMPTY) < 0 ||
	    check_string(&c, doc, "repo_url", 0) < 0 ||
	    check_string(&c, doc, "last_sync", OPTIONAL | NULLABLE | TIMESTAMP) < 0 ||
	    check_string(&c, doc, "last_apply", OPTIONAL | NULLABLE | TIMESTAMP) < 0 ||
	    validate_machine(&c, doc) < 0 || check_string(&c, doc, "heimdal_version", 0) < 0 ||
	    validate_lineage(&c, doc) < 0 || validate_history(&c, doc) < 0 ||
	    validate_checksums(&c, doc) < 0 || check_text_members(&c, doc, "checksums") < 0) {
		*err = c.err;
		return -1;
	}
	return 0;
}

int
hm_state_check_output(jv state, const char *what)
{
	char *err = NULL;

	if (hm_state_validate(state, &err) == 0)
		return 0;
	hm_error("%s: the state to write is invalid: %s", what, err);
	free(err);
	return hm_fail(HM_EXIT_USAGE);
}

/* Copy obj's keys in the given order, then any others in their own order. */
static jv
ordered(jv obj, const char *const *keys)
{
	jv out = jv_object();

	if (jv_get_kind(obj) != JV_KIND_OBJECT)
		return obj;
	for (const char *const *k = keys; *k; k++) {
		jv v = jv_object_get(jv_copy(obj), jv_string(*k));

		if (jv_is_valid(v))
			out = jv_object_set(out, jv_string(*k), v);
		else
			jv_free(v);
	}
	jv_object_foreach(obj, k, v)
	{
		jv have = jv_object_get(jv_copy(out), jv_copy(k));

		if (jv_is_valid(have)) {
			jv_free(k);
			jv_free(v);
		} else {
			out = jv_object_set(out, k, v);
		}
		jv_free(have);
	}
	jv_free(obj);
	return out;
}

struct skey {
	jv key;
	const char *s;
	int len;
};

/* Byte order, as jq sorts strings. */
static int
skey_cmp(const void *a, const void *b)
{
	const struct skey *x = a, *y = b;
	int c = memcmp(x->s, y->s, (size_t)(x->len < y->len ? x->len : y->len));

	return c ? c : x->len - y->len;
}

/*
 * obj with its keys sorted.  A state read from disk is already sorted, and
 * checksums run to 100k keys: check first, rebuild only when needed.
 */
static jv
sorted_object(jv obj)
{
	struct skey *keys;
	int n, i = 0, sorted = 1;
	jv out;

	if (jv_get_kind(obj) != JV_KIND_OBJECT)
		return obj;
	n = jv_object_length(jv_copy(obj));
	keys = hm_xmalloc(((size_t)n + 1) * sizeof(*keys));
	jv_object_foreach(obj, k, v)
	{
		keys[i].key = k;
		keys[i].s = jv_string_value(k);
		keys[i].len = jv_string_length_bytes(jv_copy(k));
		if (i > 0 && sorted && skey_cmp(&keys[i - 1], &keys[i]) > 0)
			sorted = 0;
		i++;
		jv_free(v);
	}
	if (sorted) {
		for (i = 0; i < n; i++)
			jv_free(keys[i].key);
		free(keys);
		return obj;
	}
	qsort(keys, (size_t)n, sizeof(*keys), skey_cmp);
	out = jv_object();
	for (i = 0; i < n; i++)
		out = jv_object_set(out, keys[i].key,
				    jv_object_get(jv_copy(obj), jv_copy(keys[i].key)));
	free(keys);
	jv_free(obj);
	return out;
}

jv
hm_state_canonical(jv s)
{
	static const char *const top[] = { "version",  "active_profile",  "dotfiles_path",
					   "repo_url", "last_sync",       "last_apply",
					   "machine",  "heimdal_version", "lineage",
					   "history",  "checksums",       NULL };
	static const char *const machine[] = { "id", "hostname", "os", "arch", "user", NULL };
	static const char *const lineage[] = { "id",         "serial",   "parent_serial",
					       "git_commit", "machines", NULL };
	static const char *const entry[] = { "operation", "timestamp", "machine_id", "user",
					     "hostname",  "serial",    NULL };
	jv v;

	if (jv_get_kind(s) != JV_KIND_OBJECT)
		return s;
	v = jv_object_get(jv_copy(s), jv_string("machine"));
	if (jv_is_valid(v))
		s = jv_object_set(s, jv_string("machine"), ordered(v, machine));
	else
		jv_free(v);
	v = jv_object_get(jv_copy(s), jv_string("lineage"));
	if (jv_is_valid(v))
		s = jv_object_set(s, jv_string("lineage"), ordered(v, lineage));
	else
		jv_free(v);
	v = jv_object_get(jv_copy(s), jv_string("history"));
	if (jv_get_kind(v) == JV_KIND_ARRAY) {
		jv h = jv_array();

		jv_array_foreach(v, i, e) h = jv_array_append(h, ordered(e, entry));
		s = jv_object_set(s, jv_string("history"), h);
	}
	jv_free(v);
	v = jv_object_get(jv_copy(s), jv_string("checksums"));
	if (jv_is_valid(v))
		s = jv_object_set(s, jv_string("checksums"), sorted_object(v));
	else
		jv_free(v);
	return ordered(s, top);
}

jv
hm_state_read(const char *path, int *code, int *missing)
{
	int ioerr = 0, version;
	char *err = NULL;
	jv doc;

	if (missing)
		*missing = 0;
	doc = hm_json_read_file(path, &ioerr);
	if (!jv_is_valid(doc)) {
		if (ioerr && missing && errno == ENOENT)
			*missing = 1;
		*code = ioerr ? HM_EXIT_ENV : HM_EXIT_USAGE;
		return doc;
	}
	version = hm_state_version_of(doc, &err);
	if (version > HM_STATE_VERSION) {
		jv_free(doc);
		*code = HM_EXIT_USAGE;
		return jv_invalid_with_msg(
			jv_string_fmt("%s: " HM_STATE_NEWER_FMT, path, version, HM_STATE_VERSION));
	}
	if (version == 1 ? hm_state_validate_v1(doc, &err) < 0
			 : version < 0 || hm_state_validate(doc, &err) < 0) {
		jv msg = jv_string_fmt("%s: %s", path, err);

		free(err);
		jv_free(doc);
		*code = HM_EXIT_USAGE;
		return jv_invalid_with_msg(msg);
	}
	*code = 0;
	return doc;
}

int
hm_state_write(const char *path, jv state)
{
	size_t len;
	char *buf = hm_json_dump(hm_state_canonical(state), HM_JSON_PRETTY, &len);
	int r = hm_file_write_atomic(path, buf, len, 0600);

	free(buf);
	return r;
}

char *
hm_state_path(void)
{
	return hm_home_path("state.json");
}

void
hm_state_check_mode(const char *path)
{
	struct stat st;

	if (stat(path, &st) == 0 && (st.st_mode & 077))
		hm_warn("%s is accessible by other users (mode %03o); run 'chmod 600 %s'", path,
			(unsigned)(st.st_mode & 0777), path);
}

char *
hm_state_dotfiles_dir(jv state)
{
	const char *p = hm_json_str(state, "dotfiles_path");
	const char *home = getenv("HOME");

	if (!p || !*p)
		p = "~/.dotfiles";
	if (p[0] == '~' && (p[1] == '/' || p[1] == '\0'))
		return home ? hm_xasprintf("%s%s", home, p + 1) : NULL;
	return hm_xstrdup(p);
}

long long
hm_state_serial(jv state)
{
	jv serial = jv_getpath(jv_copy(state), JV_ARRAY(jv_string("lineage"), jv_string("serial")));
	long long n = -1;

	if (jv_get_kind(serial) == JV_KIND_NUMBER && jv_number_value(serial) >= 0)
		n = (long long)jv_number_value(serial);
	jv_free(serial);
	return n;
}
