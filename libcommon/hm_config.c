#include "hm_config.h"
#include "hm_error.h"
#include "hm_json.h"
#include "hm_machine.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *
hm_lock_type_name(enum hm_lock_type t)
{
	return t == HM_LOCK_LOCAL ? "local" : t == HM_LOCK_DISABLED ? "disabled" : "hybrid";
}

static int
bad(const char *path, const char *field, const char *what)
{
	hm_error("%s: %s: %s", path, field, what);
	return hm_fail(HM_EXIT_USAGE);
}

/* obj[key] as a number in [min, max]; absent leaves *out alone. */
static int
number(const char *path, jv obj, const char *key, const char *field, double min, double max,
       int integer, double *out)
{
	jv v = jv_object_get(jv_copy(obj), jv_string(key));
	double d;

	if (!jv_is_valid(v)) {
		jv_free(v);
		return 0;
	}
	if (jv_get_kind(v) != JV_KIND_NUMBER) {
		char msg[96];

		snprintf(msg, sizeof(msg), "expected a number, got %s", hm_json_kind_name(v));
		jv_free(v);
		return bad(path, field, msg);
	}
	d = jv_number_value(v);
	jv_free(v);
	if (!isfinite(d) || d < min || d > max || (integer && d != floor(d))) {
		char msg[128];

		snprintf(msg, sizeof(msg), "expected %s between %g and %g, got %g",
			 integer ? "an integer" : "a number", min, max, d);
		return bad(path, field, msg);
	}
	*out = d;
	return 0;
}

static int
boolean(const char *path, jv obj, const char *key, const char *field, int *out)
{
	jv v = jv_object_get(jv_copy(obj), jv_string(key));
	jv_kind k = jv_get_kind(v);

	jv_free(v);
	if (k == JV_KIND_INVALID)
		return 0;
	if (k != JV_KIND_TRUE && k != JV_KIND_FALSE) {
		char msg[96];

		snprintf(msg, sizeof(msg), "expected true or false, got %s", jv_kind_name(k));
		return bad(path, field, msg);
	}
	*out = k == JV_KIND_TRUE;
	return 0;
}

static int
only_keys(const char *path, jv obj, const char *prefix, const char *const *keys)
{
	char *unknown = hm_json_unknown_member(obj, keys), *field;
	int r;

	if (!unknown)
		return 0;
	field = hm_xasprintf("%s%s", prefix, unknown);
	r = bad(path, field, "unknown setting");
	free(field);
	free(unknown);
	return r;
}

/*
 * --wait must end: the retries may sleep HM_CONFIG_WAIT_MAX seconds in all
 * (attempts x delay, or delay x (2^attempts - 1) with exponential backoff).
 */
static int
wait_bound(const char *path, const struct hm_lock_config *c)
{
	double total = 0, d = c->retry_delay;
	char msg[256];

	for (long i = 0; i < c->retry_attempts && total <= HM_CONFIG_WAIT_MAX; i++) {
		total += d;
		if (c->retry_backoff)
			d *= 2;
	}
	if (total <= HM_CONFIG_WAIT_MAX)
		return 0;
	snprintf(msg, sizeof(msg),
		 "%ld attempts %s%g seconds apart wait more than %d seconds in all; at most "
		 "%d seconds (%d minutes) are allowed: lower .retry.attempts or "
		 ".retry.delay_seconds",
		 c->retry_attempts, c->retry_backoff ? "starting " : "", c->retry_delay,
		 HM_CONFIG_WAIT_MAX, HM_CONFIG_WAIT_MAX, HM_CONFIG_WAIT_MAX / 60);
	return bad(path, ".retry", msg);
}

static int
parse(const char *path, jv doc, struct hm_lock_config *c)
{
	static const char *const top[] = { "lock_type", "timeout",        "detect_stale",
					   "retry",     "remote_timeout", NULL };
	static const char *const retry_keys[] = { "attempts", "delay_seconds",
						  "exponential_backoff", NULL };
	double d;
	jv v;

	if (jv_get_kind(doc) != JV_KIND_OBJECT)
		return bad(path, ".", "expected an object");
	if (only_keys(path, doc, ".", top) < 0)
		return -1;
	v = jv_object_get(jv_copy(doc), jv_string("lock_type"));
	if (jv_is_valid(v)) {
		const char *s = jv_get_kind(v) == JV_KIND_STRING ? jv_string_value(v) : NULL;

		if (s && !strcasecmp(s, "hybrid"))
			c->lock_type = HM_LOCK_HYBRID;
		else if (s && !strcasecmp(s, "local"))
			c->lock_type = HM_LOCK_LOCAL;
		else if (s && !strcasecmp(s, "disabled"))
			c->lock_type = HM_LOCK_DISABLED;
		else {
			jv_free(v);
			return bad(path, ".lock_type",
				   "expected \"Hybrid\", \"Local\" or \"Disabled\"");
		}
	}
	jv_free(v);
	d = (double)c->timeout;
	if (number(path, doc, "timeout", ".timeout", 1, 31536000, 1, &d) < 0)
		return -1;
	c->timeout = (long)d;
	d = (double)c->remote_timeout;
	if (number(path, doc, "remote_timeout", ".remote_timeout", 1, 3600, 1, &d) < 0)
		return -1;
	c->remote_timeout = (long)d;
	if (boolean(path, doc, "detect_stale", ".detect_stale", &c->detect_stale) < 0)
		return -1;
	v = jv_object_get(jv_copy(doc), jv_string("retry"));
	if (jv_is_valid(v)) {
		if (jv_get_kind(v) != JV_KIND_OBJECT) {
			jv_free(v);
			return bad(path, ".retry", "expected an object");
		}
		if (only_keys(path, v, ".retry.", retry_keys) < 0)
			goto fail;
		d = (double)c->retry_attempts;
		if (number(path, v, "attempts", ".retry.attempts", 0, 1000, 1, &d) < 0)
			goto fail;
		c->retry_attempts = (long)d;
		if (number(path, v, "delay_seconds", ".retry.delay_seconds", 0, 3600, 0,
			   &c->retry_delay) < 0 ||
		    boolean(path, v, "exponential_backoff", ".retry.exponential_backoff",
			    &c->retry_backoff) < 0)
			goto fail;
	}
	jv_free(v);
	return wait_bound(path, c);
fail:
	jv_free(v);
	return -1;
}

int
hm_config_load(struct hm_lock_config *cfg)
{
	static struct hm_lock_config cached;
	static int loaded;
	char *path;
	int ioerr, r;
	jv doc;

	if (loaded) {
		*cfg = cached;
		return 0;
	}
	cached = (struct hm_lock_config){ .lock_type = HM_LOCK_HYBRID,
					  .timeout = 300,
					  .detect_stale = 1,
					  .retry_attempts = 3,
					  .retry_delay = 1,
					  .retry_backoff = 1,
					  .remote_timeout = 30 };
	path = hm_home_path("lock_config.json");
	doc = hm_json_read_file(path, &ioerr);
	if (!jv_is_valid(doc)) {
		jv msg = jv_invalid_get_msg(doc);

		if (ioerr && errno == ENOENT) {
			jv_free(msg);
			free(path);
			loaded = 1;
			*cfg = cached;
			return 0;
		}
		hm_error("%s", jv_string_value(msg));
		jv_free(msg);
		free(path);
		return hm_fail(ioerr ? HM_EXIT_ENV : HM_EXIT_USAGE);
	}
	r = parse(path, doc, &cached);
	jv_free(doc);
	free(path);
	if (r < 0)
		return -1;
	loaded = 1;
	*cfg = cached;
	return 0;
}
