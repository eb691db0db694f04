/*
 * query.c - `heimdal state query`: jq filters over the state through libjq.
 *
 * A plain path filter (`.lineage.serial`) is answered by hm_jpath without
 * starting libjq at all; everything else, and every path that would be a jq
 * error, goes through libjq so output and errors are jq's own.
 */
#include "builtin.h"
#include "hm_error.h"
#include "hm_file.h"
#include "hm_jpath.h"
#include "hm_json.h"
#include "hm_state.h"
#include "hm_term.h"

#include <getopt.h>
#include <jq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUERY_USAGE "heimdal state query [-c] [-r] [--arg NAME VALUE] FILTER [FILE|-]"

struct query {
	int compact, raw, color;
	jv args; /* {NAME: VALUE} for --arg */
	const char *source;
};

static void
emit(struct query *q, jv v)
{
	if (q->raw && jv_get_kind(v) == JV_KIND_STRING) {
		fwrite(jv_string_value(v), 1, jv_string_length_bytes(jv_copy(v)), stdout);
		putchar('\n');
		jv_free(v);
		return;
	}
	jv_dumpf(v, stdout,
		 (q->compact ? 0 : JV_PRINT_INDENT_FLAGS(2)) | (q->color ? JV_PRINT_COLOR : 0));
	putchar('\n');
}

static void
jq_error_cb(void *data, jv msg)
{
	(void)data;
	/* libjq's compile messages already read "jq: error: ..." */
	if (jv_get_kind(msg) == JV_KIND_STRING)
		hm_msg("%s", jv_string_value(msg));
	jv_free(msg);
}

static int
run_jq(struct query *q, const char *filter, jv doc)
{
	jq_state *jq = jq_init();
	int ret = 0;
	jv r;

	if (!jq)
		hm_die(HM_EXIT_ENV, "cannot start libjq");
	jq_set_error_cb(jq, jq_error_cb, NULL);
	if (!jq_compile_args(jq, filter, jv_copy(q->args))) {
		jv_free(doc);
		jq_teardown(&jq);
		return HM_EXIT_USAGE;
	}
	jq_start(jq, doc, 0);
	while (jv_is_valid(r = jq_next(jq)))
		emit(q, r);
	if (jv_invalid_has_msg(jv_copy(r))) {
		jv msg = jv_invalid_get_msg(r);

		if (jv_get_kind(msg) == JV_KIND_STRING) {
			hm_msg("jq: error (at %s): %s", q->source, jv_string_value(msg));
		} else {
			jv s = jv_dump_string(msg, 0);

			hm_msg("jq: error (at %s) (not a string): %s", q->source, jv_string_value(s));
			msg = s;
		}
		jv_free(msg);
		ret = HM_EXIT_USAGE;
	} else {
		jv_free(r);
	}
	jq_teardown(&jq);
	return ret;
}

/*
 * The fast path over raw bytes: 1 when answered, 0 when the caller must parse
 * and ask libjq.  For the local state (local=1) a missing or too new
 * "version" also sends it to the full path, which migrates or refuses.
 */
static int
fast(struct query *q, jv path, const char *buf, size_t len, int local)
{
	const char *vs, *ve;
	int r;
	jv v;

	if (local) {
		jv vp = JV_ARRAY(jv_string("version"));

		r = hm_jpath_scan(buf, len, vp, &vs, &ve);
		jv_free(vp);
		if (r != 1 || ve - vs != 1 || *vs != '0' + HM_STATE_VERSION)
			return 0;
	}
	r = hm_jpath_scan(buf, len, path, &vs, &ve);
	if (r < 0)
		return 0;
	if (r == 0) {
		emit(q, jv_null());
		return 1;
	}
	v = hm_json_parse(q->source, vs, (size_t)(ve - vs));
	if (!jv_is_valid(v)) {
		jv_free(v);
		return 0;
	}
	emit(q, v);
	return 1;
}

int
cmd_state_query(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "compact-output", no_argument, NULL, 'c' },
		{ "raw-output", no_argument, NULL, 'r' },
		{ "arg", required_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct query q = { .args = jv_object() };
	const char *filter, *file = NULL;
	char *path = NULL, *buf = NULL;
	size_t len = 0;
	int c, ret, local, ok;
	jv jpath, doc;

	while ((c = getopt_long(argc, argv, "+crh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			q.compact = 1;
			break;
		case 'r':
			q.raw = 1;
			break;
		case 'a':
			if (optind >= argc)
				hm_die(HM_EXIT_USAGE, "--arg: takes NAME and VALUE\nusage: %s",
				       QUERY_USAGE);
			q.args = jv_object_set(q.args, jv_string(optarg), jv_string(argv[optind]));
			optind++;
			break;
		case 'h':
			printf("usage: %s\n", QUERY_USAGE);
			jv_free(q.args);
			return 0;
		default:
			hm_die(HM_EXIT_USAGE, "usage: %s", QUERY_USAGE);
		}
	}
	if (argc - optind < 1 || argc - optind > 2)
		hm_die(HM_EXIT_USAGE, "usage: %s", QUERY_USAGE);
	filter = argv[optind];
	if (argc - optind == 2)
		file = argv[optind + 1];
	local = file == NULL;
	q.color = hm_term_color(stdout);
	if (local) {
		path = hm_state_path();
		q.source = path;
		if (!hm_file_exists(path))
			hm_die(HM_EXIT_ENV, "no state at %s (run 'heimdal init' first)", path);
	} else {
		q.source = hm_json_source_name(file);
	}

	if (local)
		ok = hm_file_read(path, &buf, &len) == 0;
	else if (strcmp(file, "-") == 0)
		ok = hm_read_fd(0, &buf, &len) == 0 || hm_error_errno("<stdin>") == 0;
	else
		ok = hm_file_read(file, &buf, &len) == 0;
	if (!ok) {
		jv_free(q.args);
		free(path);
		return HM_EXIT_ENV;
	}

	if (hm_jpath_parse(filter, &jpath)) {
		ok = fast(&q, jpath, buf, len, local);
		jv_free(jpath);
		if (ok) {
			jv_free(q.args);
			free(buf);
			free(path);
			return fflush(stdout) == 0 ? 0 : HM_EXIT_ENV;
		}
		hm_debug("query: '%s' needs libjq", filter);
	}

	doc = hm_json_parse(q.source, buf, len);
	free(buf);
	if (!jv_is_valid(doc)) {
		jv msg = jv_invalid_get_msg(doc);

		hm_error("%s", jv_string_value(msg));
		jv_free(msg);
		jv_free(q.args);
		free(path);
		return HM_EXIT_USAGE;
	}
	if (local) {
		/*
		 * Queries only read: a V1 state is migrated (as every command does)
		 * and a newer one refused, but the document is not validated first,
		 * so a query can still inspect a state that fails validation.
		 */
		char *err = NULL;
		int version = hm_state_version_of(doc, &err);

		if (version != HM_STATE_VERSION) {
			jv_free(doc);
			free(err);
			doc = porcelain_state_load();
		}
	}
	ret = run_jq(&q, filter, doc);
	jv_free(q.args);
	free(path);
	if (fflush(stdout) != 0)
		hm_die_errno(HM_EXIT_ENV, "stdout");
	return ret;
}
