/*
 * heimdal-merge - resolve a local and a remote state into one.
 *
 * Reads {"local": S, "remote": S, "base": S?} on stdin (or --local/--remote
 * [--base] FILE) and prints the resolved state.  Strategies:
 *
 *   merge       the shared facts merged: without a base, the specification's
 *               merge logic (higher serial, union of machines, history union
 *               de-duplicated, newest 50); with a base, the lineage's git
 *               commit three-way (a side that did not change yields).
 *   use-local   the local state as it is.
 *   use-remote  the remote's shared facts.
 *   manual      nothing is printed; exit 1 (the report still lists the
 *               conflicts).
 *
 * In every strategy this machine's own facts stay local (DESIGN, "Per-machine
 * and shared"): machine, active_profile, dotfiles_path, repo_url, last_apply,
 * last_sync and checksums, the record of what this machine deployed.  Another
 * machine's checksums say nothing about this machine's files.  The merged
 * serial is the higher one: the write that records the resolution
 * (heimdal-lineage bump) makes it new.
 */
#include "hm_error.h"
#include "hm_opt.h"
#include "hm_file.h"
#include "hm_json.h"
#include "hm_lineage.h"
#include "hm_state.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum strategy { S_MERGE, S_LOCAL, S_REMOTE, S_MANUAL };
static const char *const strategy_names[] = { "merge", "use-local", "use-remote", "manual" };

/* The usage line under an option error. */
#define USAGE_LINE                                                                                 \
	"heimdal-merge --strategy S [--local FILE --remote FILE [--base FILE]] [--report FILE] [-c]"

static _Noreturn void
usage(FILE *f, int code)
{
	fprintf(f,
		"usage: heimdal-merge --strategy merge|use-local|use-remote|manual\n"
		"                     [--local FILE --remote FILE [--base FILE]] [--report FILE] [-c]\n"
		"\n"
		"Resolve two heimdal states ({\"local\": S, \"remote\": S, \"base\": S} on stdin,\n"
		"base optional, or the files given) into one, printed on stdout.\n"
		"\n"
		"  --strategy S      merge, use-local, use-remote or manual (prints nothing, exit 1)\n"
		"  --local FILE      the local state\n"
		"  --remote FILE     the remote state\n"
		"  --base FILE       the state both descend from: merge three-way\n"
		"  --report FILE     write the merge report (JSON) to FILE\n"
		"  -c, --compact     print compact JSON (one line), the report too\n"
		"  -h, --help        show this help\n");
	exit(code);
}

static jv
or_null(jv v)
{
	if (jv_is_valid(v))
		return v;
	jv_free(v);
	return jv_null();
}

/* Take obj[key] out of obj, leaving the value with one owner (both consumed/returned). */
static jv
take(jv *obj, const char *key)
{
	jv v = jv_object_get(jv_copy(*obj), jv_string(key));

	*obj = jv_object_delete(*obj, jv_string(key));
	return v;
}

/* This machine's own facts: never taken from another machine's state. */
static const char *const local_keys[] = {
	"machine",    "active_profile", "dotfiles_path", "repo_url",
	"last_apply", "last_sync",      "checksums",     NULL,
};

/* out (consumed) with every member of local_keys as local (borrowed) has it. */
static jv
keep_local(jv out, jv local)
{
	for (int i = 0; local_keys[i]; i++) {
		jv v = jv_object_get(jv_copy(local), jv_string(local_keys[i]));

		if (jv_is_valid(v)) {
			out = jv_object_set(out, jv_string(local_keys[i]), v);
		} else {
			jv_free(v);
			out = jv_object_delete(out, jv_string(local_keys[i]));
		}
	}
	return out;
}

/* 1 when key is one of keys (NULL-terminated). */
static int
listed(const char *key, const char *const *keys)
{
	for (; *keys; keys++)
		if (strcmp(key, *keys) == 0)
			return 1;
	return 0;
}

/*
 * out (consumed) with every member of other (borrowed) that out lacks,
 * except the names in skip: a member one side has and the other does not
 * is kept (heimdal.7, "a tool given other keys keeps them"); on a conflict
 * out's value stays.
 */
static jv
keep_members(jv out, jv other, const char *const *skip)
{
	if (jv_get_kind(out) != JV_KIND_OBJECT || jv_get_kind(other) != JV_KIND_OBJECT)
		return out;
	jv_object_foreach(other, k, v)
	{
		if (!listed(jv_string_value(k), skip) && !jv_object_has(jv_copy(out), jv_copy(k)))
			out = jv_object_set(out, k, v);
		else {
			jv_free(k);
			jv_free(v);
		}
	}
	return out;
}

/* git_commit: three-way with a base, else (and on conflict) the higher serial's. */
static jv
pick_commit(jv ll, jv rl, jv bl, int remote_newer)
{
	jv l = jv_object_get(jv_copy(ll), jv_string("git_commit"));
	jv r = jv_object_get(jv_copy(rl), jv_string("git_commit"));
	jv b = jv_get_kind(bl) == JV_KIND_OBJECT
		       ? jv_object_get(jv_copy(bl), jv_string("git_commit"))
		       : jv_invalid();
	jv out;

	if (jv_is_valid(b) && hm_json_same(r, b) && !hm_json_same(l, b))
		out = jv_copy(l);
	else if (jv_is_valid(b) && hm_json_same(l, b) && !hm_json_same(r, b))
		out = jv_copy(r);
	else
		out = remote_newer ? jv_copy(r) : jv_copy(l);
	jv_free(l);
	jv_free(r);
	jv_free(b);
	return or_null(out);
}

static const char *const no_keys[] = { NULL };

/* The shared facts of local and remote merged; the rest is local's. */
static jv
merge(struct hm_pair *p, const struct hm_lineage_cmp *cmp)
{
	jv s = jv_copy(p->local), remote = p->remote;
	jv ll, rl, bl, h;
	long long ls = cmp->local_serial, rs = cmp->remote_serial;
	int remote_newer = rs >= ls;

	ll = take(&s, "lineage");
	rl = jv_object_get(jv_copy(remote), jv_string("lineage"));
	bl = jv_get_kind(p->base) == JV_KIND_OBJECT
		     ? jv_object_get(jv_copy(p->base), jv_string("lineage"))
		     : jv_null();
	/* A day-one lineage joining the remote's (hm_lineage: nothing but its
	 * init) takes the remote's id: the two are one lineage from now on. */
	{
		jv lid = jv_object_get(jv_copy(ll), jv_string("id"));
		jv rid = jv_object_get(jv_copy(rl), jv_string("id"));

		if (!hm_json_same(lid, rid) && jv_is_valid(rid))
			ll = jv_object_set(ll, jv_string("id"), jv_copy(rid));
		jv_free(lid);
		jv_free(rid);
	}
	ll = jv_object_set(ll, jv_string("git_commit"), pick_commit(ll, rl, bl, remote_newer));
	if (rs > ls ||
	    (rs == ls && hm_json_int(rl, "parent_serial", 0) > hm_json_int(ll, "parent_serial", 0)))
		ll = jv_object_set(ll, jv_string("parent_serial"),
				   jv_object_get(jv_copy(rl), jv_string("parent_serial")));
	ll = jv_object_set(ll, jv_string("serial"), jv_number(rs > ls ? rs : ls));
	ll = jv_object_set(ll, jv_string("machines"),
			   hm_machines_union(jv_object_get(jv_copy(ll), jv_string("machines")),
					     jv_object_get(jv_copy(rl), jv_string("machines"))));
	ll = keep_members(ll, rl, no_keys);
	jv_free(rl);
	jv_free(bl);
	h = take(&s, "history");
	h = hm_history_union(h, jv_object_get(jv_copy(remote), jv_string("history")));
	s = jv_object_set(s, jv_string("history"), h);
	s = jv_object_set(s, jv_string("lineage"), ll);
	/* Members no rule names: the remote's too, the local value on a conflict. */
	return keep_members(s, remote, local_keys);
}

/* The remote's shared facts with this machine's own. */
static jv
use_remote(struct hm_pair *p)
{
	return keep_local(jv_copy(p->remote), p->local);
}

struct merge_opts {
	const char *lpath, *rpath, *bpath, *report_path;
	enum strategy strategy;
	int compact;
};

/* The strategy named by --strategy; exits on a missing or unknown one. */
static enum strategy
strategy_of(const char *arg)
{
	int i;

	if (!arg)
		hm_die(HM_EXIT_USAGE,
		       "--strategy is required (merge, use-local, use-remote, manual)");
	for (i = 0; i < 4 && strcmp(arg, strategy_names[i]); i++)
		;
	if (i == 4)
		hm_die(HM_EXIT_USAGE,
		       "--strategy: unknown strategy '%s' "
		       "(merge, use-local, use-remote, manual)",
		       arg);
	return i;
}

/* The options into o; exits on bad usage and after --help. */
static void
merge_options(int argc, char **argv, struct merge_opts *o)
{
	static const struct option opts[] = {
		{ "strategy", required_argument, NULL, 's' },
		{ "local", required_argument, NULL, 'l' },
		{ "remote", required_argument, NULL, 'r' },
		{ "base", required_argument, NULL, 'b' },
		{ "report", required_argument, NULL, 'R' },
		{ "compact", no_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *strategy_arg = NULL;
	int c;

	while ((c = hm_opt_next(argc, argv, "ch", opts, USAGE_LINE)) != -1) {
		switch (c) {
		case 's':
			strategy_arg = optarg;
			break;
		case 'l':
			o->lpath = optarg;
			break;
		case 'r':
			o->rpath = optarg;
			break;
		case 'b':
			o->bpath = optarg;
			break;
		case 'R':
			o->report_path = optarg;
			break;
		case 'c':
			o->compact = 1;
			break;
		case 'h':
			usage(stdout, 0);
		}
	}
	if (optind < argc)
		usage(stderr, HM_EXIT_USAGE);
	o->strategy = strategy_of(strategy_arg);
	if (o->report_path && !*o->report_path)
		hm_die(HM_EXIT_USAGE, "--report: must not be empty");
}

/* The resolved state by the strategy (invalid for manual); the pair is borrowed. */
static jv
resolve(struct hm_pair *p, const struct hm_lineage_cmp *cmp, enum strategy strategy)
{
	switch (strategy) {
	case S_MERGE:
		return merge(p, cmp);
	case S_LOCAL:
		return jv_copy(p->local);
	case S_REMOTE:
		return use_remote(p);
	default:
		return jv_invalid();
	}
}

/* out.lineage[key] (out borrowed; null when out is invalid). */
static jv
out_lineage(jv out, const char *key)
{
	if (!jv_is_valid(out))
		return jv_null();
	return jv_getpath(jv_copy(out), JV_ARRAY(jv_string("lineage"), jv_string(key)));
}

/* The merge report (heimdal.7) written to o->report_path; conflicts consumed, out borrowed. */
static void
write_report(const struct merge_opts *o, const struct hm_lineage_cmp *cmp, jv out, jv conflicts)
{
	jv ms = out_lineage(out, "machines");
	jv report = hm_lineage_cmp_json(cmp);
	size_t len;
	char *buf;

	report = jv_object_set(report, jv_string("strategy"),
			       jv_string(strategy_names[o->strategy]));
	report = jv_object_set(report, jv_string("serial"), out_lineage(out, "serial"));
	report = jv_object_set(report, jv_string("machines_combined"),
			       jv_get_kind(ms) == JV_KIND_ARRAY
				       ? jv_number(jv_array_length(jv_copy(ms)))
				       : jv_null());
	jv_free(ms);
	report = jv_object_set(report, jv_string("conflicts_resolved"),
			       jv_number(o->strategy == S_MANUAL
						 ? 0
						 : (double)jv_array_length(jv_copy(conflicts))));
	report = jv_object_set(report, jv_string("conflicts"), conflicts);
	buf = hm_json_dump(report, o->compact ? HM_JSON_COMPACT : HM_JSON_PRETTY, &len);
	if (hm_file_write_output(o->report_path, buf, len, 0644) < 0)
		exit(HM_EXIT_ENV);
	free(buf);
}

int
main(int argc, char **argv)
{
	struct merge_opts o = { .strategy = S_MERGE };
	struct hm_lineage_cmp cmp;
	struct hm_pair p;
	jv conflicts, out;

	hm_error_init(argv[0]);
	merge_options(argc, argv, &o);
	if (hm_pair_read(o.lpath, o.rpath, o.bpath, 0, &p) < 0)
		exit(hm_last_code());

	hm_lineage_compare(p.local, p.remote, p.base, &cmp);
	if (o.strategy == S_MERGE && cmp.relation == HM_REL_UNRELATED)
		hm_die(HM_EXIT_FOUND, "cannot merge states of different lineages "
				      "(use --strategy use-local or use-remote)");
	/* Checksums are per machine: no file conflict is ever settled here. */
	conflicts = hm_conflicts_detect(&p, &cmp, HM_CONFLICTS_NO_DRIFT);
	out = resolve(&p, &cmp, o.strategy);
	hm_pair_free(&p);
	if (jv_is_valid(out) && hm_state_check_output(out, "merge") < 0)
		exit(hm_last_code());
	if (o.report_path)
		write_report(&o, &cmp, out, conflicts);
	else
		jv_free(conflicts);
	if (o.strategy == S_MANUAL)
		return HM_EXIT_FOUND;
	if (hm_json_write(stdout, hm_state_canonical(out),
			  o.compact ? HM_JSON_COMPACT : HM_JSON_PRETTY) < 0 ||
	    fflush(stdout) != 0)
		hm_die_errno(HM_EXIT_ENV, "stdout");
	return 0;
}
