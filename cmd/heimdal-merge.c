/*
 * heimdal-merge - resolve a local and a remote state into one.
 *
 * Reads {"local": S, "remote": S, "base": S?} on stdin (or --local/--remote
 * [--base] FILE) and prints the resolved state.  Strategies:
 *
 *   merge       without a base, the specification's merge logic: higher
 *               serial, union of machines, most recent timestamps, history
 *               union (de-duplicated, newest 50), remote checksums win.  With
 *               a base, three-way per field and per checksum path: a side
 *               that did not change yields to the side that did; different
 *               changes on both sides are conflicts, settled for the remote.
 *   use-local   the local state as it is.
 *   use-remote  the remote state (this machine's "machine" block kept).
 *   manual      nothing is printed; exit 1 (the report still lists the
 *               conflicts).
 *
 * active_profile, dotfiles_path, repo_url and machine always stay local.
 * The merged serial is the higher one: the write that records the
 * resolution (heimdal-lineage bump) makes it new.
 */
#include "hm_error.h"
#include "hm_file.h"
#include "hm_json.h"
#include "hm_lineage.h"
#include "hm_state.h"
#include "hm_time.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum strategy { S_MERGE, S_LOCAL, S_REMOTE, S_MANUAL };
static const char *const strategy_names[] = { "merge", "use-local", "use-remote", "manual" };

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
		"  -s, --strategy S  merge, use-local, use-remote or manual (prints nothing, exit 1)\n"
		"  --local FILE      the local state\n"
		"  --remote FILE     the remote state\n"
		"  --base FILE       the state both descend from: merge three-way\n"
		"  --report FILE     write the merge report (JSON) to FILE\n"
		"  -c, --compact     print compact JSON (one line), the report too\n"
		"  -h, --help        show this help\n");
	exit(code);
}

/* Both values equal; an absent (invalid) value only equals another absent one. */
static int
same(jv a, jv b)
{
	int va = jv_is_valid(a), vb = jv_is_valid(b);

	if (!va || !vb)
		return va == vb;
	if (jv_get_kind(a) == JV_KIND_STRING && jv_get_kind(b) == JV_KIND_STRING)
		return strcmp(jv_string_value(a), jv_string_value(b)) == 0;
	return jv_equal(jv_copy(a), jv_copy(b));
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

/*
 * The per-file conflicts a merge settles, for the report: file_drift
 * conflicts the remote won.  Kept as their values, not as objects: a large
 * merge has tens of thousands, and the report writes them straight out
 * (hm_conflict_file_drift_write).
 */
struct file_conflict {
	jv key, l, r, b;
	int with_base;
	size_t order;
};

struct files {
	struct file_conflict *v;
	size_t n, cap;
};

/* Record a per-file conflict (all consumed); files is NULL when nobody asked for a report. */
static void
record(struct files *files, jv key, jv l, jv r, jv b, int with_base)
{
	if (!files) {
		jv_free(key);
		jv_free(l);
		jv_free(r);
		jv_free(b);
		return;
	}
	if (files->n == files->cap) {
		files->cap = files->cap ? 2 * files->cap : 256;
		files->v = hm_xrealloc(files->v, files->cap * sizeof(*files->v));
	}
	files->v[files->n] = (struct file_conflict){ key, l, r, b, with_base, files->n };
	files->n++;
}

static int
by_path(const void *a, const void *b)
{
	const struct file_conflict *x = a, *y = b;
	int c = strcmp(jv_string_value(x->key), jv_string_value(y->key));

	return c ? c : (x->order > y->order) - (x->order < y->order);
}

/* In path order (a merge mostly finds them so: checked before sorting). */
static void
files_sort(struct files *files)
{
	for (size_t i = 1; i < files->n; i++)
		if (by_path(&files->v[i - 1], &files->v[i]) > 0) {
			qsort(files->v, files->n, sizeof(*files->v), by_path);
			return;
		}
}

static void
files_free(struct files *files)
{
	for (size_t i = 0; i < files->n; i++) {
		jv_free(files->v[i].key);
		jv_free(files->v[i].l);
		jv_free(files->v[i].r);
		jv_free(files->v[i].b);
	}
	free(files->v);
}

/*
 * The report (consumed) with its "conflicts": the array conflicts (consumed)
 * followed by the file conflicts, as one JSON text.
 */
static char *
report_text(jv report, jv conflicts, const struct files *files, int flags, size_t *len)
{
	struct hm_json_out o = HM_JSON_OUT_INIT(flags);
	int first = 1;

	hm_json_out_raw(&o, "{", 1);
	jv_object_foreach(report, k, v) {
		hm_json_out_key(&o, 0, first, jv_string_value(k),
				(size_t)jv_string_length_bytes(jv_copy(k)));
		hm_json_out_value(&o, v, 1);
		jv_free(k);
		first = 0;
	}
	jv_free(report);
	hm_json_out_key(&o, 0, first, "conflicts", 9);
	hm_json_out_raw(&o, "[", 1);
	first = 1;
	jv_array_foreach(conflicts, i, c) {
		hm_json_out_next(&o, 1, first);
		hm_json_out_value(&o, c, 2);
		first = 0;
	}
	jv_free(conflicts);
	for (size_t i = 0; i < files->n; i++) {
		const struct file_conflict *f = &files->v[i];

		hm_json_out_next(&o, 1, first);
		hm_conflict_file_drift_write(&o, 2, f->key, f->l, f->r, f->b, f->with_base, "remote");
		first = 0;
	}
	hm_json_out_close(&o, ']', 1, first);
	hm_json_out_close(&o, '}', 0, 0);
	hm_json_out_raw(&o, "\n", 1);
	*len = o.len;
	return o.p;
}

/*
 * Merge remote checksums rc (borrowed) into local lc (consumed, changed in
 * place when it has one owner), three-way against bc when it is an object.
 * Per-file conflicts are appended to *files (unless it is NULL).
 */
static jv
merge_checksums(jv lc, jv rc, jv bc, int local_ahead, int diverged, struct files *files)
{
	int with_base = jv_get_kind(bc) == JV_KIND_OBJECT;
	jv gone = jv_array();

	if (jv_get_kind(lc) != JV_KIND_OBJECT || jv_get_kind(rc) != JV_KIND_OBJECT) {
		jv_free(gone);
		return lc;
	}
	/* Paths the remote no longer has: kept, unless the remote deleted them. */
	if (with_base) {
		jv_object_foreach(lc, k, l) {
			jv b;

			if (jv_object_has(jv_copy(rc), jv_copy(k))) {
				jv_free(k);
				jv_free(l);
				continue;
			}
			b = jv_object_get(jv_copy(bc), jv_copy(k));
			if (!jv_is_valid(b)) {
				jv_free(k);
				jv_free(l);
			} else if (same(l, b)) {
				gone = jv_array_append(gone, k);
				jv_free(l);
			} else {
				/* Changed here, deleted there: the remote wins, on record. */
				gone = jv_array_append(gone, jv_copy(k));
				record(files, k, l, jv_invalid(), jv_copy(b), 1);
			}
			jv_free(b);
		}
	}
	jv_array_foreach(gone, i, k) {
		lc = jv_object_delete(lc, k);
	}
	jv_free(gone);
	jv_object_foreach(rc, k, r) {
		jv l = jv_object_get(jv_copy(lc), jv_copy(k));

		if (same(l, r)) {
			jv_free(k);
			jv_free(l);
			jv_free(r);
			continue;
		}
		if (with_base) {
			jv b = jv_object_get(jv_copy(bc), jv_copy(k));

			if (same(r, b)) {
				/* Only the local side changed (or deleted) it. */
				jv_free(k);
				jv_free(r);
			} else if (same(l, b)) {
				lc = jv_object_set(lc, k, r);
			} else {
				record(files, jv_copy(k), jv_copy(l), jv_copy(r), jv_copy(b), 1);
				lc = jv_object_set(lc, k, r);
			}
			jv_free(b);
		} else if (!jv_is_valid(l)) {
			lc = jv_object_set(lc, k, r);
		} else if (local_ahead) {
			/* The remote's value is the older one: an update, kept local. */
			jv_free(k);
			jv_free(r);
		} else {
			if (diverged)
				record(files, jv_copy(k), jv_copy(l), jv_copy(r), jv_invalid(), 0);
			lc = jv_object_set(lc, k, r);
		}
		jv_free(l);
	}
	return lc;
}

/* Union of two arrays of machine ids (both consumed), local order first. */
static jv
union_machines(jv lm, jv rm)
{
	if (jv_get_kind(lm) != JV_KIND_ARRAY) {
		jv_free(lm);
		lm = jv_array();
	}
	if (jv_get_kind(rm) != JV_KIND_ARRAY) {
		jv_free(rm);
		return lm;
	}
	jv_array_foreach(rm, i, m) {
		int have = 0;

		jv_array_foreach(lm, j, x) {
			have = have || jv_equal(jv_copy(x), jv_copy(m));
			jv_free(x);
		}
		lm = have ? (jv_free(m), lm) : jv_array_append(lm, m);
	}
	jv_free(rm);
	return lm;
}

struct entry {
	jv e;
	long long serial;
	const char *ts;
	int order;
};

static int
entry_cmp(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	int c;

	if (x->serial != y->serial)
		return x->serial < y->serial ? -1 : 1;
	c = strcmp(x->ts ? x->ts : "", y->ts ? y->ts : "");
	if (c)
		return c;
	return x->order - y->order;
}

/*
 * History union (both consumed): every entry of either side once, ordered by
 * serial then timestamp, the newest HM_HISTORY_MAX kept.
 */
static jv
union_history(jv lh, jv rh)
{
	int ln = jv_get_kind(lh) == JV_KIND_ARRAY ? jv_array_length(jv_copy(lh)) : 0;
	int rn = jv_get_kind(rh) == JV_KIND_ARRAY ? jv_array_length(jv_copy(rh)) : 0;
	struct entry *all = hm_xmalloc(((size_t)ln + rn + 1) * sizeof(*all));
	int n = 0, start;
	jv out = jv_array();

	for (int side = 0; side < 2; side++) {
		jv h = side ? rh : lh;
		int len = side ? rn : ln;

		for (int i = 0; i < len; i++) {
			jv e = jv_array_get(jv_copy(h), i);
			int dup = 0;

			for (int j = 0; j < n && !dup; j++)
				dup = hm_history_entry_same(all[j].e, e);
			if (dup) {
				jv_free(e);
				continue;
			}
			all[n].serial = hm_json_int(e, "serial", 0);
			all[n].ts = hm_json_str(e, "timestamp");
			all[n].order = n;
			all[n++].e = e;
		}
	}
	qsort(all, n, sizeof(*all), entry_cmp);
	start = n > HM_HISTORY_MAX ? n - HM_HISTORY_MAX : 0;
	for (int i = 0; i < n; i++) {
		if (i >= start)
			out = jv_array_append(out, all[i].e);
		else
			jv_free(all[i].e);
	}
	free(all);
	jv_free(lh);
	jv_free(rh);
	return out;
}

/* The later of two optional timestamps (both consumed). */
static jv
latest(jv a, jv b)
{
	time_t ta, tb;
	int ha = jv_get_kind(a) == JV_KIND_STRING && hm_time_parse(jv_string_value(a), &ta) == 0;
	int hb = jv_get_kind(b) == JV_KIND_STRING && hm_time_parse(jv_string_value(b), &tb) == 0;

	if (hb && (!ha || tb > ta)) {
		jv_free(a);
		return b;
	}
	jv_free(b);
	return a;
}

static jv
set_latest(jv s, jv remote, const char *key)
{
	jv v = latest(jv_object_get(jv_copy(s), jv_string(key)),
		      jv_object_get(jv_copy(remote), jv_string(key)));

	if (jv_is_valid(v))
		return jv_object_set(s, jv_string(key), v);
	jv_free(v);
	return s;
}

/* git_commit: three-way with a base, else (and on conflict) the higher serial's. */
static jv
pick_commit(jv ll, jv rl, jv bl, int remote_newer)
{
	jv l = jv_object_get(jv_copy(ll), jv_string("git_commit"));
	jv r = jv_object_get(jv_copy(rl), jv_string("git_commit"));
	jv b = jv_get_kind(bl) == JV_KIND_OBJECT ? jv_object_get(jv_copy(bl), jv_string("git_commit"))
						 : jv_invalid();
	jv out;

	if (jv_is_valid(b) && same(r, b) && !same(l, b))
		out = jv_copy(l);
	else if (jv_is_valid(b) && same(l, b) && !same(r, b))
		out = jv_copy(r);
	else
		out = remote_newer ? jv_copy(r) : jv_copy(l);
	jv_free(l);
	jv_free(r);
	jv_free(b);
	return or_null(out);
}

static jv
merge(struct hm_pair *p, const struct hm_lineage_cmp *cmp, struct files *files)
{
	jv s = p->local, remote = p->remote;
	jv lc, rc, bc, ll, rl, bl, h;
	long long ls = cmp->local_serial, rs = cmp->remote_serial;
	int remote_newer = rs >= ls;

	p->local = jv_invalid();
	lc = take(&s, "checksums");
	ll = take(&s, "lineage");
	rc = jv_object_get(jv_copy(remote), jv_string("checksums"));
	rl = jv_object_get(jv_copy(remote), jv_string("lineage"));
	bc = jv_get_kind(p->base) == JV_KIND_OBJECT
	     ? jv_object_get(jv_copy(p->base), jv_string("checksums")) : jv_null();
	bl = jv_get_kind(p->base) == JV_KIND_OBJECT
	     ? jv_object_get(jv_copy(p->base), jv_string("lineage")) : jv_null();

	lc = merge_checksums(lc, rc, bc, cmp->relation == HM_REL_AHEAD,
			     cmp->relation == HM_REL_DIVERGED, files);
	jv_free(rc);
	jv_free(bc);

	ll = jv_object_set(ll, jv_string("git_commit"), pick_commit(ll, rl, bl, remote_newer));
	if (rs > ls || (rs == ls && hm_json_int(rl, "parent_serial", 0) >
				    hm_json_int(ll, "parent_serial", 0)))
		ll = jv_object_set(ll, jv_string("parent_serial"),
				   jv_object_get(jv_copy(rl), jv_string("parent_serial")));
	ll = jv_object_set(ll, jv_string("serial"), jv_number(rs > ls ? rs : ls));
	ll = jv_object_set(ll, jv_string("machines"),
			   union_machines(jv_object_get(jv_copy(ll), jv_string("machines")),
					  jv_object_get(jv_copy(rl), jv_string("machines"))));
	jv_free(rl);
	jv_free(bl);

	s = set_latest(s, remote, "last_sync");
	s = set_latest(s, remote, "last_apply");
	h = take(&s, "history");
	h = union_history(h, jv_object_get(jv_copy(remote), jv_string("history")));
	s = jv_object_set(s, jv_string("history"), h);
	s = jv_object_set(s, jv_string("lineage"), ll);
	s = jv_object_set(s, jv_string("checksums"), lc);
	return s;
}

/* The conflicts (consumed) with the winner of each file conflict marked. */
static jv
mark_winner(jv conflicts, const char *winner)
{
	jv out = jv_array();

	jv_array_foreach(conflicts, i, c) {
		const char *type = hm_json_str(c, "type");

		if (type && strcmp(type, "file_drift") == 0)
			c = jv_object_set(c, jv_string("winner"), jv_string(winner));
		out = jv_array_append(out, c);
	}
	jv_free(conflicts);
	return out;
}

int
main(int argc, char **argv)
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
	const char *lpath = NULL, *rpath = NULL, *bpath = NULL, *report_path = NULL;
	const char *strategy_arg = NULL;
	enum strategy strategy = S_MERGE;
	struct hm_lineage_cmp cmp;
	struct hm_pair p;
	struct files files = { NULL, 0, 0 };
	jv conflicts, out, report;
	int c, compact = 0, found = 0;

	hm_error_init(argv[0]);
	while ((c = getopt_long(argc, argv, "s:ch", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			strategy_arg = optarg;
			break;
		case 'l':
			lpath = optarg;
			break;
		case 'r':
			rpath = optarg;
			break;
		case 'b':
			bpath = optarg;
			break;
		case 'R':
			report_path = optarg;
			break;
		case 'c':
			compact = 1;
			break;
		case 'h':
			usage(stdout, 0);
		default:
			usage(stderr, HM_EXIT_USAGE);
		}
	}
	if (optind < argc)
		usage(stderr, HM_EXIT_USAGE);
	if (!strategy_arg)
		hm_die(HM_EXIT_USAGE, "--strategy is required (merge, use-local, use-remote, manual)");
	for (found = 0; found < 4 && strcmp(strategy_arg, strategy_names[found]); found++)
		;
	if (found == 4)
		hm_die(HM_EXIT_USAGE, "--strategy: unknown strategy '%s' "
		       "(merge, use-local, use-remote, manual)", strategy_arg);
	strategy = found;
	if (report_path && !*report_path)
		hm_die(HM_EXIT_USAGE, "--report: must not be empty");
	if (hm_pair_read(lpath, rpath, bpath, 0, &p) < 0)
		exit(hm_last_code());

	hm_lineage_compare(p.local, p.remote, &cmp);
	if (strategy == S_MERGE && cmp.relation == HM_REL_UNRELATED)
		hm_die(HM_EXIT_FOUND, "cannot merge states of different lineages "
		       "(use --strategy use-local or use-remote)");
	/* The merge meets every file conflict on its way: no second pass for them. */
	conflicts = hm_conflicts_detect(&p, &cmp, strategy == S_MERGE ? HM_CONFLICTS_NO_DRIFT : 0);
	switch (strategy) {
	case S_MERGE:
		out = merge(&p, &cmp, report_path ? &files : NULL);
		files_sort(&files);
		break;
	case S_LOCAL:
		out = jv_copy(p.local);
		conflicts = mark_winner(conflicts, "local");
		break;
	case S_REMOTE:
		out = jv_object_set(jv_copy(p.remote), jv_string("machine"),
				    jv_object_get(jv_copy(p.local), jv_string("machine")));
		conflicts = mark_winner(conflicts, "remote");
		break;
	default:
		out = jv_invalid();
		break;
	}
	hm_pair_free(&p);
	if (report_path) {
		jv ms = jv_is_valid(out) ? jv_getpath(jv_copy(out), JV_ARRAY(jv_string("lineage"),
								jv_string("machines")))
					 : jv_null();
		size_t len;
		char *buf;

		report = hm_lineage_cmp_json(&cmp);
		report = jv_object_set(report, jv_string("strategy"),
				       jv_string(strategy_names[strategy]));
		report = jv_object_set(report, jv_string("serial"),
				       jv_is_valid(out)
				       ? jv_getpath(jv_copy(out), JV_ARRAY(jv_string("lineage"),
									   jv_string("serial")))
				       : jv_null());
		report = jv_object_set(report, jv_string("machines_combined"),
				       jv_get_kind(ms) == JV_KIND_ARRAY
				       ? jv_number(jv_array_length(jv_copy(ms))) : jv_null());
		jv_free(ms);
		report = jv_object_set(report, jv_string("conflicts_resolved"),
				       jv_number(strategy == S_MANUAL
						 ? 0
						 : (double)jv_array_length(jv_copy(conflicts)) +
						   (double)files.n));
		buf = report_text(report, conflicts, &files,
				  compact ? HM_JSON_COMPACT : HM_JSON_PRETTY, &len);
		if (hm_file_write_atomic(report_path, buf, len, 0644) < 0)
			exit(HM_EXIT_ENV);
		free(buf);
	} else {
		jv_free(conflicts);
	}
	files_free(&files);
	if (strategy == S_MANUAL)
		return HM_EXIT_FOUND;
	if (hm_json_write(stdout, hm_state_canonical(out),
			  compact ? HM_JSON_COMPACT : HM_JSON_PRETTY) < 0 ||
	    fflush(stdout) != 0)
		hm_die_errno(HM_EXIT_ENV, "stdout");
	return 0;
}
