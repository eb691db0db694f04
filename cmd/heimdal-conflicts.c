/*
 * heimdal-conflicts - the conflicts between a local and a remote state.
 *
 * Reads {"local": S, "remote": S, "base": S?} on stdin (or --local/--remote
 * [--base] FILE) and prints {"relation", ..., "conflicts": [...]}; exit 1
 * when there is any.  With --diff it prints every field that differs instead,
 * the document behind `heimdal state diff`.
 */
#include "hm_error.h"
#include "hm_opt.h"
#include "hm_json.h"
#include "hm_lineage.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The usage line under an option error. */
#define USAGE_LINE "heimdal-conflicts [--local FILE --remote FILE [--base FILE]] [--diff] [-c]"

static _Noreturn void
usage(FILE *f, int code)
{
	fprintf(f,
		"usage: heimdal-conflicts [--local FILE --remote FILE [--base FILE]] [--diff] [-c]\n"
		"\n"
		"Detect conflicts between two heimdal states: {\"local\": S, \"remote\": S,\n"
		"\"base\": S} on stdin (base optional), or the files given.  Prints the\n"
		"relation and the conflicts; exit 1 when there are any.\n"
		"\n"
		"  --local FILE   the local state\n"
		"  --remote FILE  the remote state\n"
		"  --base FILE    the state both descend from (three-way file drift)\n"
		"  --diff         list every field that differs instead of the conflicts\n"
		"  -c, --compact  print compact JSON (one line)\n"
		"  -h, --help     show this help\n");
	exit(code);
}

/* 1 when key can follow a dot in a jq path (.name), else it needs ["key"]. */
static int
simple_key(const char *k)
{
	if (!*k || (*k >= '0' && *k <= '9'))
		return 0;
	for (; *k; k++)
		if (!(*k == '_' || (*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') ||
		      (*k >= '0' && *k <= '9')))
			return 0;
	return 1;
}

static jv
child_path(jv path, jv key)
{
	const char *k = jv_string_value(key);
	jv out;

	if (simple_key(k)) {
		out = jv_string_fmt("%s.%s", jv_string_value(path), k);
	} else {
		jv quoted = jv_dump_string(jv_copy(key), 0);

		out = jv_string_fmt("%s[%s]", jv_string_value(path), jv_string_value(quoted));
		jv_free(quoted);
	}
	jv_free(key);
	jv_free(path);
	return out;
}

/* Elements of a not in b (both borrowed). */
static jv
only_in(jv a, jv b)
{
	jv out = jv_array();

	jv_array_foreach(a, i, x)
	{
		int found = 0;

		jv_array_foreach(b, j, y)
		{
			if (!found && jv_equal(jv_copy(x), jv_copy(y)))
				found = 1;
			jv_free(y);
		}
		out = found ? (jv_free(x), out) : jv_array_append(out, x);
	}
	return out;
}

/*
 * Append to out the differences between l and r (both consumed, either may be
 * invalid = absent) at path (consumed).  Objects are walked key by key;
 * arrays are compared as sets (machines, history).
 */
static jv
diff(jv out, jv path, jv l, jv r)
{
	jv_kind lk = jv_get_kind(l), rk = jv_get_kind(r);
	jv d;

	if (lk == JV_KIND_OBJECT && rk == JV_KIND_OBJECT) {
		jv_object_foreach(l, k, lv)
		{
			jv rv = jv_object_get(jv_copy(r), jv_copy(k));

			out = diff(out, child_path(jv_copy(path), k), lv, rv);
		}
		jv_object_foreach(r, k, rv)
		{
			if (jv_object_has(jv_copy(l), jv_copy(k))) {
				jv_free(k);
				jv_free(rv);
				continue;
			}
			out = diff(out, child_path(jv_copy(path), k), jv_invalid(), rv);
		}
		jv_free(path);
		jv_free(l);
		jv_free(r);
		return out;
	}
	if (lk == rk && lk != JV_KIND_INVALID && jv_equal(jv_copy(l), jv_copy(r))) {
		jv_free(path);
		jv_free(l);
		jv_free(r);
		return out;
	}
	d = JV_OBJECT(jv_string("field"), path);
	if (lk == JV_KIND_ARRAY && rk == JV_KIND_ARRAY) {
		d = jv_object_set(d, jv_string("only_local"), only_in(l, r));
		d = jv_object_set(d, jv_string("only_remote"), only_in(r, l));
		jv_free(l);
		jv_free(r);
		return jv_array_append(out, d);
	}
	if (lk != JV_KIND_INVALID)
		d = jv_object_set(d, jv_string("local"), l);
	else
		jv_free(l);
	if (rk != JV_KIND_INVALID)
		d = jv_object_set(d, jv_string("remote"), r);
	else
		jv_free(r);
	return jv_array_append(out, d);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "local", required_argument, NULL, 'l' },
		{ "remote", required_argument, NULL, 'r' },
		{ "base", required_argument, NULL, 'b' },
		{ "diff", no_argument, NULL, 'd' },
		{ "compact", no_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *lpath = NULL, *rpath = NULL, *bpath = NULL;
	int c, compact = 0, want_diff = 0, found;
	struct hm_lineage_cmp cmp;
	struct hm_pair p;
	jv out, list;

	hm_error_init(argv[0]);
	while ((c = hm_opt_next(argc, argv, "ch", opts, USAGE_LINE)) != -1) {
		switch (c) {
		case 'l':
			lpath = optarg;
			break;
		case 'r':
			rpath = optarg;
			break;
		case 'b':
			bpath = optarg;
			break;
		case 'd':
			want_diff = 1;
			break;
		case 'c':
			compact = 1;
			break;
		case 'h':
			usage(stdout, 0);
		}
	}
	if (optind < argc)
		hm_opt_die(USAGE_LINE, "unexpected argument '%s'", argv[optind]);
	if (hm_pair_read(lpath, rpath, bpath, 1, &p) < 0)
		exit(hm_last_code());
	hm_lineage_compare(p.local, p.remote, p.base, &cmp);
	out = hm_lineage_cmp_json(&cmp);
	if (want_diff) {
		list = diff(jv_array(), jv_string(""), jv_copy(p.local), jv_copy(p.remote));
		found = jv_array_length(jv_copy(list)) > 0;
		out = jv_object_set(out, jv_string("differences"), list);
	} else {
		list = hm_conflicts_detect(&p, &cmp, 0);
		found = jv_array_length(jv_copy(list)) > 0;
		out = jv_object_set(out, jv_string("conflicts"), list);
	}
	hm_pair_free(&p);
	if (hm_json_write(stdout, out, compact ? HM_JSON_COMPACT : HM_JSON_PRETTY) < 0 ||
	    fflush(stdout) != 0)
		hm_die_errno(HM_EXIT_ENV, "stdout");
	return found ? HM_EXIT_FOUND : HM_EXIT_OK;
}
