#include "hm_lineage.h"
#include "hm_term.h"
#include "hm_error.h"
#include "hm_json.h"
#include "hm_state.h"
#include "hm_time.h"

#include <stdlib.h>
#include <string.h>

const char *
hm_relation_name(enum hm_relation r)
{
	static const char *const names[] = { "equal", "ahead", "behind", "diverged", "unrelated" };

	return names[r];
}

/* obj[key] (obj borrowed), or jv_invalid() when obj is not an object. */
static jv
field(jv obj, const char *key)
{
	if (jv_get_kind(obj) != JV_KIND_OBJECT)
		return jv_invalid();
	return jv_object_get(jv_copy(obj), jv_string(key));
}

static int
array_len(jv a)
{
	return jv_get_kind(a) == JV_KIND_ARRAY ? jv_array_length(jv_copy(a)) : 0;
}

int
hm_history_entry_same(jv a, jv b)
{
	return jv_equal(jv_copy(a), jv_copy(b));
}

jv
hm_machines_union(jv lm, jv rm)
{
	if (jv_get_kind(lm) != JV_KIND_ARRAY) {
		jv_free(lm);
		lm = jv_array();
	}
	if (jv_get_kind(rm) != JV_KIND_ARRAY) {
		jv_free(rm);
		return lm;
	}
	jv_array_foreach(rm, i, m)
	{
		int have = 0;

		jv_array_foreach(lm, j, x)
		{
			have = have || jv_equal(jv_copy(x), jv_copy(m));
			jv_free(x);
		}
		lm = have ? (jv_free(m), lm) : jv_array_append(lm, m);
	}
	jv_free(rm);
	return lm;
}

/* A history entry of either side, with what orders it. */
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
	/* The instant, fractions of a second included: .5Z is after 00Z. */
	c = hm_time_cmp(x->ts ? x->ts : "", y->ts ? y->ts : "");
	if (c)
		return c;
	return x->order - y->order;
}

jv
hm_history_union(jv lh, jv rh)
{
	int ln = jv_get_kind(lh) == JV_KIND_ARRAY ? jv_array_length(jv_copy(lh)) : 0;
	int rn = jv_get_kind(rh) == JV_KIND_ARRAY ? jv_array_length(jv_copy(rh)) : 0;
	struct entry *all = hm_xmalloc(((size_t)ln + (size_t)rn + 1) * sizeof(*all));
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
	qsort(all, (size_t)n, sizeof(*all), entry_cmp);
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

/* Index of entry e in history h (borrowed), or -1. */
static int
history_find(jv h, jv e)
{
	for (int i = array_len(h) - 1; i >= 0; i--) {
		jv x = jv_array_get(jv_copy(h), i);
		int same = hm_history_entry_same(x, e);

		jv_free(x);
		if (same)
			return i;
	}
	return -1;
}

/* The highest serial of an entry present in both histories, or -1. */
static long long
history_common(jv lh, jv rh)
{
	long long best = -1;

	jv_array_foreach(lh, i, e)
	{
		long long s = hm_json_int(e, "serial", -1);

		if (s > best && history_find(rh, e) >= 0)
			best = s;
		jv_free(e);
	}
	return best;
}

static void
compare_without_history(jv local, jv remote, jv ll, jv rl, struct hm_lineage_cmp *c)
{
	long long ls = c->local_serial, rs = c->remote_serial;
	long long lp = hm_json_int(ll, "parent_serial", 0);
	long long rp = hm_json_int(rl, "parent_serial", 0);
	int same = 0;

	if (ls == rs && lp == rp) {
		jv lc = field(local, "checksums"), rc = field(remote, "checksums");

		same = hm_json_same(lc, rc);
		jv_free(lc);
		jv_free(rc);
	}
	if (same) {
		c->relation = HM_REL_EQUAL;
		c->common_parent = ls;
	} else if (ls > rs && lp >= rs) {
		c->relation = HM_REL_AHEAD;
		c->common_parent = rs;
	} else if (rs > ls && rp >= ls) {
		c->relation = HM_REL_BEHIND;
		c->common_parent = ls;
	} else {
		/* Both moved on from somewhere at or below the lower parent. */
		c->relation = HM_REL_DIVERGED;
		c->common_parent = lp < rp ? lp : rp;
	}
}

/* The relation by lineage id and history alone. */
static void
compare_histories(jv local, jv remote, struct hm_lineage_cmp *c)
{
	jv ll = field(local, "lineage"), rl = field(remote, "lineage");
	jv lh = field(local, "history"), rh = field(remote, "history");
	const char *lid = jv_is_valid(ll) ? hm_json_str(ll, "id") : NULL;
	const char *rid = jv_is_valid(rl) ? hm_json_str(rl, "id") : NULL;
	int ln = array_len(lh), rn = array_len(rh);

	c->local_serial = jv_is_valid(ll) ? hm_json_int(ll, "serial", 0) : 0;
	c->remote_serial = jv_is_valid(rl) ? hm_json_int(rl, "serial", 0) : 0;
	c->common_parent = -1;
	if (!lid || !rid || strcmp(lid, rid) != 0) {
		c->relation = HM_REL_UNRELATED;
	} else if (ln == 0 || rn == 0) {
		compare_without_history(local, remote, ll, rl, c);
	} else {
		jv lnew = jv_array_get(jv_copy(lh), ln - 1);
		jv rnew = jv_array_get(jv_copy(rh), rn - 1);
		long long ls = c->local_serial, rs = c->remote_serial;

		if (hm_history_entry_same(lnew, rnew)) {
			/* Same newest entry: equal unless one side bumped without history. */
			c->relation = ls == rs  ? HM_REL_EQUAL
				      : ls > rs ? HM_REL_AHEAD
						: HM_REL_BEHIND;
			c->common_parent = ls < rs ? ls : rs;
		} else if (history_find(lh, rnew) >= 0) {
			c->relation = HM_REL_AHEAD;
			c->common_parent = rs;
		} else if (history_find(rh, lnew) >= 0) {
			c->relation = HM_REL_BEHIND;
			c->common_parent = ls;
		} else {
			c->relation = HM_REL_DIVERGED;
			c->common_parent = history_common(lh, rh);
		}
		jv_free(lnew);
		jv_free(rnew);
	}
	jv_free(ll);
	jv_free(rl);
	jv_free(lh);
	jv_free(rh);
}

/*
 * 1 when s holds nothing but its own init in an empty repository: a single
 * history entry, the init of the machine s belongs to, no git commit and no
 * checksums.  Such a lineage has nothing to lose by joining another.
 */
static int
solo_init(jv s)
{
	jv h = field(s, "history"), l = field(s, "lineage"), m = field(s, "machine");
	jv sums = field(s, "checksums"), commit = field(l, "git_commit"), e;
	const char *op, *by, *me = jv_is_valid(m) ? hm_json_str(m, "id") : NULL;
	int solo = 0;

	if (array_len(h) == 1 && me &&
	    (!jv_is_valid(commit) || jv_get_kind(commit) == JV_KIND_NULL) &&
	    (!jv_is_valid(sums) ||
	     (jv_get_kind(sums) == JV_KIND_OBJECT && jv_object_length(jv_copy(sums)) == 0))) {
		e = jv_array_get(jv_copy(h), 0);
		op = hm_json_str(e, "operation");
		by = hm_json_str(e, "machine_id");
		solo = op && by && strcmp(op, "init") == 0 && strcmp(by, me) == 0;
		jv_free(e);
	}
	jv_free(h);
	jv_free(l);
	jv_free(m);
	jv_free(sums);
	jv_free(commit);
	return solo;
}

/*
 * 1 when the history of s (borrowed) begins after serial: its window of 50
 * entries moved past it, so it cannot say whether s descends from that
 * serial's state.  Where it still reaches back that far, it can: a state
 * that descends from the base holds the base's newest entry.
 */
static int
window_past(jv s, long long serial)
{
	jv h = field(s, "history"), e;
	int past = 0;

	if (array_len(h) > 0) {
		e = jv_array_get(jv_copy(h), 0);
		past = hm_json_int(e, "serial", -1) > serial;
		jv_free(e);
	}
	jv_free(h);
	return past;
}

/*
 * Diverged by history: the base (the state at the git merge base) decides
 * what the histories can no longer tell.  A local state equal to the base did
 * not move, and the remote's commit descends from the base's in git: behind,
 * however many operations the remote ran (or whatever a resolution there
 * dropped from its history).  A remote equal to the base leaves the local
 * state ahead only where the local history has moved past the base: the
 * local state is this machine's file, not a commit, and a pull alone brings
 * the base without merging it.  When both moved on, the base is their
 * common parent if the histories share none.
 */
static void
decide_by_base(jv local, jv remote, jv base, struct hm_lineage_cmp *c)
{
	struct hm_lineage_cmp lb, rb;
	long long bs;

	compare_histories(local, base, &lb);
	compare_histories(remote, base, &rb);
	if (lb.relation == HM_REL_UNRELATED || rb.relation == HM_REL_UNRELATED)
		return;
	bs = lb.remote_serial;
	if (lb.relation == HM_REL_EQUAL && rb.relation != HM_REL_EQUAL && c->remote_serial > bs) {
		c->relation = HM_REL_BEHIND;
		c->common_parent = c->local_serial;
	} else if (rb.relation == HM_REL_EQUAL && lb.relation != HM_REL_EQUAL &&
		   c->local_serial > bs && window_past(local, bs)) {
		c->relation = HM_REL_AHEAD;
		c->common_parent = c->remote_serial;
	} else if (c->common_parent < 0 && lb.relation != HM_REL_EQUAL &&
		   rb.relation != HM_REL_EQUAL && bs < c->local_serial && bs < c->remote_serial) {
		c->common_parent = bs;
	}
}

void
hm_lineage_compare(jv local, jv remote, jv base, struct hm_lineage_cmp *c)
{
	compare_histories(local, remote, c);
	if (c->relation == HM_REL_UNRELATED) {
		/* Two lineages started apart in an empty repository: join, not refuse. */
		if (solo_init(local))
			c->relation = HM_REL_BEHIND;
		else if (solo_init(remote))
			c->relation = HM_REL_AHEAD;
	} else if (c->relation == HM_REL_DIVERGED && jv_get_kind(base) == JV_KIND_OBJECT) {
		decide_by_base(local, remote, base, c);
	}
}

jv
hm_lineage_cmp_json(const struct hm_lineage_cmp *c)
{
	return JV_OBJECT(jv_string("relation"), jv_string(hm_relation_name(c->relation)),
			 jv_string("local_serial"), jv_number((double)c->local_serial),
			 jv_string("remote_serial"), jv_number((double)c->remote_serial),
			 jv_string("common_parent"),
			 c->common_parent < 0 ? jv_null() : jv_number((double)c->common_parent));
}

static jv
read_one(const char *path, const char *what)
{
	int ioerr = 0;
	jv v = hm_json_read_file(path, &ioerr);

	if (!jv_is_valid(v)) {
		jv msg = jv_invalid_get_msg(v);

		hm_error("%s%s%s", what ? what : "", what ? ": " : "", jv_string_value(msg));
		jv_free(msg);
		hm_fail(ioerr ? HM_EXIT_ENV : HM_EXIT_USAGE);
		return jv_invalid();
	}
	return v;
}

/*
 * Validate one state.  src names the input, key the member of the stdin
 * document it came from ("local"), or NULL for a whole file.
 */
static int
check_named(jv s, const char *src, const char *key, int allow_newer, int *version)
{
	char *err = NULL;
	int v = hm_state_version_of(s, &err);
	const char *rest;

	if (v > HM_STATE_VERSION && allow_newer) {
		/*
		 * Compared leniently, but never with a serial made up: a newer
		 * state whose serial cannot be read says so, not "serial 0".
		 */
		jv l = jv_object_get(jv_copy(s), jv_string("lineage"));
		jv n = jv_get_kind(l) == JV_KIND_OBJECT
			       ? jv_object_get(jv_copy(l), jv_string("serial"))
			       : jv_invalid();
		int ok = jv_get_kind(n) == JV_KIND_NUMBER && jv_number_value(n) >= 0 &&
			 jv_number_value(n) == (double)(long long)jv_number_value(n);

		jv_free(n);
		jv_free(l);
		if (ok) {
			*version = v;
			return 0;
		}
		hm_error("%s: %s%s.lineage.serial: not a serial, in a state of version %d (this "
			 "heimdal reads up to %d): cannot compare",
			 src, key ? "." : "", key ? key : "", v, HM_STATE_VERSION);
		return hm_fail(HM_EXIT_USAGE);
	}
	if (v >= 0 && hm_state_validate(s, &err) == 0) {
		*version = v;
		return 0;
	}
	rest = err[0] == '.' && err[1] == ':' ? err + 1 : err;
	if (key)
		hm_error("%s: .%s%s", src, key, rest);
	else
		hm_error("%s: %s", src, err);
	free(err);
	return hm_fail(HM_EXIT_USAGE);
}

/* stdin holds one document: two of the files may not both be "-". */
static int
stdin_twice(const char *local_path, const char *remote_path, const char *base_path)
{
	const char *names[] = { "--local", "--remote", "--base" };
	const char *paths[] = { local_path, remote_path, base_path };
	const char *first = NULL;

	for (int i = 0; i < 3; i++) {
		if (!paths[i] || strcmp(paths[i], "-") != 0)
			continue;
		if (first)
			return hm_error("%s and %s both read stdin; give one of them a file", first,
					names[i]);
		first = names[i];
	}
	return 0;
}

/*
 * A base is the state both sides descend from, so it is of the lineage of
 * one of them (of both, or of the remote's a day-one state joins).  One of
 * another lineage says nothing about how these two diverged: it is set
 * aside, with a warning, and the pair is compared as without a base.
 */
static void
check_base(struct hm_pair *p, const char *src)
{
	const char *b, *l, *r;
	jv bl, ll, rl;

	if (jv_get_kind(p->base) != JV_KIND_OBJECT)
		return;
	bl = jv_object_get(jv_copy(p->base), jv_string("lineage"));
	ll = jv_object_get(jv_copy(p->local), jv_string("lineage"));
	rl = jv_object_get(jv_copy(p->remote), jv_string("lineage"));
	b = hm_json_str(bl, "id"), l = hm_json_str(ll, "id"), r = hm_json_str(rl, "id");
	if (b && l && r && strcmp(b, l) != 0 && strcmp(b, r) != 0) {
		hm_warn("%s: the base is of lineage '%s', neither the local ('%s') nor the "
			"remote's ('%s'): compared without a base",
			src, b, l, r);
		jv_free(p->base);
		p->base = jv_null();
	}
	jv_free(bl);
	jv_free(ll);
	jv_free(rl);
}

/* *s read from path and validated (version in *version); 0, or -1 (error printed). */
static int
read_named(const char *path, int allow_newer, jv *s, int *version)
{
	*s = read_one(path, NULL);
	if (!jv_is_valid(*s))
		return -1;
	return check_named(*s, hm_json_source_name(path), NULL, allow_newer, version);
}

/* hm_pair_read from the files named (base_path may be NULL). */
static int
pair_read_files(const char *local_path, const char *remote_path, const char *base_path,
		int allow_newer, struct hm_pair *p)
{
	int bv = 0;

	if (!local_path || !remote_path) {
		hm_error("%s: needs --local and --remote as well", local_path    ? "--local"
								   : remote_path ? "--remote"
										 : "--base");
		return hm_fail(HM_EXIT_USAGE);
	}
	if (stdin_twice(local_path, remote_path, base_path) < 0)
		return hm_fail(HM_EXIT_USAGE);
	if (read_named(local_path, allow_newer, &p->local, &p->local_version) < 0 ||
	    read_named(remote_path, allow_newer, &p->remote, &p->remote_version) < 0)
		return -1;
	if (base_path) {
		jv_free(p->base);
		if (read_named(base_path, allow_newer, &p->base, &bv) < 0)
			return -1;
		check_base(p, hm_json_source_name(base_path));
	}
	return 0;
}

/* doc (borrowed) is an object of no members but local, remote and base (pair.schema.json). */
static int
pair_members_known(jv doc)
{
	if (jv_get_kind(doc) != JV_KIND_OBJECT) {
		hm_error("<stdin>: expected an object {\"local\", \"remote\", \"base\"}, got %s",
			 hm_json_kind_name(doc));
		return -1;
	}
	jv_object_foreach(doc, k, v)
	{
		const char *name = jv_string_value(k);
		int known =
			!strcmp(name, "local") || !strcmp(name, "remote") || !strcmp(name, "base");

		jv_free(v);
		if (!known) {
			struct hm_json_out o = HM_JSON_OUT_INIT(HM_JSON_COMPACT);

			hm_json_out_string(&o, name, (size_t)jv_string_length_bytes(jv_copy(k)));
			hm_error("<stdin>: .[%s]: not a member of a pair (local, remote, base)",
				 o.p);
			free(o.p);
			jv_free(k);
			return -1;
		}
		jv_free(k);
	}
	return 0;
}

/* hm_pair_read from one document {"local": S, "remote": S, "base": S|null} on stdin. */
static int
pair_read_stdin(int allow_newer, struct hm_pair *p)
{
	jv doc = read_one("-", NULL);
	int bv = 0;

	if (!jv_is_valid(doc))
		return -1;
	if (pair_members_known(doc) < 0) {
		jv_free(doc);
		return hm_fail(HM_EXIT_USAGE);
	}
	p->local = jv_object_get(jv_copy(doc), jv_string("local"));
	p->remote = jv_object_get(jv_copy(doc), jv_string("remote"));
	jv_free(p->base);
	p->base = jv_object_get(jv_copy(doc), jv_string("base"));
	/* Dropping the wrapper leaves each state with a single owner. */
	jv_free(doc);
	if (!jv_is_valid(p->local) || !jv_is_valid(p->remote)) {
		hm_error("<stdin>: .%s: missing", jv_is_valid(p->local) ? "remote" : "local");
		return hm_fail(HM_EXIT_USAGE);
	}
	if (!jv_is_valid(p->base)) {
		jv_free(p->base);
		p->base = jv_null();
	}
	if (check_named(p->local, "<stdin>", "local", allow_newer, &p->local_version) < 0 ||
	    check_named(p->remote, "<stdin>", "remote", allow_newer, &p->remote_version) < 0)
		return -1;
	if (jv_get_kind(p->base) != JV_KIND_NULL &&
	    check_named(p->base, "<stdin>", "base", allow_newer, &bv) < 0)
		return -1;
	check_base(p, "<stdin>");
	return 0;
}

int
hm_pair_read(const char *local_path, const char *remote_path, const char *base_path,
	     int allow_newer, struct hm_pair *p)
{
	p->local = p->remote = jv_invalid();
	p->base = jv_null();
	if (local_path || remote_path || base_path)
		return pair_read_files(local_path, remote_path, base_path, allow_newer, p);
	return pair_read_stdin(allow_newer, p);
}

int
hm_pair_check(struct hm_pair *p, const char *local_src, const char *remote_src,
	      const char *base_src)
{
	int bv = 0;

	if (check_named(p->local, local_src, NULL, 0, &p->local_version) < 0 ||
	    check_named(p->remote, remote_src, NULL, 0, &p->remote_version) < 0)
		return -1;
	if (jv_get_kind(p->base) != JV_KIND_NULL) {
		if (check_named(p->base, base_src, NULL, 0, &bv) < 0)
			return -1;
		check_base(p, base_src);
	}
	return 0;
}

void
hm_pair_free(struct hm_pair *p)
{
	jv_free(p->local);
	jv_free(p->remote);
	jv_free(p->base);
	p->local = p->remote = p->base = jv_invalid();
}

static jv
conflict(const char *type, const char *severity, jv description)
{
	return JV_OBJECT(jv_string("type"), jv_string(type), jv_string("severity"),
			 jv_string(severity), jv_string("description"), description);
}

static jv
strpair(jv c, const char *l, const char *r)
{
	jv v = jv_object();

	v = jv_object_set(v, jv_string("local"), l ? jv_string(l) : jv_null());
	v = jv_object_set(v, jv_string("remote"), r ? jv_string(r) : jv_null());
	return jv_object_merge(c, v);
}

jv
hm_conflict_file_drift(jv key, jv l, jv r, jv b, int with_base, const char *winner)
{
	/*
	 * A large merge reports tens of thousands of these: the names and the
	 * fixed values are made once and shared (jv strings are refcounted, and
	 * keep their hash).
	 */
	enum {
		TYPE,
		SEVERITY,
		DESCRIPTION,
		PATH,
		LOCAL,
		REMOTE,
		BASE,
		WINNER,
		FILE_DRIFT,
		LOW,
		NSTR
	};
	static const char *const text[NSTR] = { "type",       "severity", "description", "path",
						"local",      "remote",   "base",        "winner",
						"file_drift", "low" };
	static jv str[NSTR];
	static int made;
	jv c;

	if (!made) {
		for (int i = 0; i < NSTR; i++)
			str[i] = jv_string(text[i]);
		made = 1;
	}
	c = jv_object();
	c = jv_object_set(c, jv_copy(str[TYPE]), jv_copy(str[FILE_DRIFT]));
	c = jv_object_set(c, jv_copy(str[SEVERITY]), jv_copy(str[LOW]));
	c = jv_object_set(c, jv_copy(str[DESCRIPTION]),
			  jv_string_fmt("File '%s' has been modified", jv_string_value(key)));
	c = jv_object_set(c, jv_copy(str[PATH]), key);
	c = jv_object_set(c, jv_copy(str[LOCAL]), jv_is_valid(l) ? l : (jv_free(l), jv_null()));
	c = jv_object_set(c, jv_copy(str[REMOTE]), jv_is_valid(r) ? r : (jv_free(r), jv_null()));
	if (with_base)
		c = jv_object_set(c, jv_copy(str[BASE]),
				  jv_is_valid(b) ? b : (jv_free(b), jv_null()));
	else
		jv_free(b);
	if (winner)
		c = jv_object_set(c, jv_copy(str[WINNER]),
				  jv_copy(str[strcmp(winner, "local") == 0 ? LOCAL : REMOTE]));
	return c;
}

/* A member "key": v (borrowed; an invalid prints as null) of an object at depth. */
static void
out_member(struct hm_json_out *o, int depth, int first, const char *key, jv v)
{
	hm_json_out_key(o, depth, first, key, strlen(key));
	if (jv_is_valid(v))
		hm_json_out_value(o, jv_copy(v), depth + 1);
	else
		hm_json_out_raw(o, "null", 4);
}

void
hm_conflict_file_drift_write(struct hm_json_out *o, int depth, jv path, jv l, jv r, jv b,
			     int with_base, const char *winner)
{
	const char *p = jv_string_value(path);
	char small[512], *desc = small;
	int n = snprintf(small, sizeof(small), "File '%s' has been modified", p);

	if (n >= (int)sizeof(small))
		desc = hm_xasprintf("File '%s' has been modified", p);
	hm_json_out_raw(o, "{", 1);
	hm_json_out_key(o, depth, 1, "type", 4);
	hm_json_out_string(o, "file_drift", 10);
	hm_json_out_key(o, depth, 0, "severity", 8);
	hm_json_out_string(o, "low", 3);
	hm_json_out_key(o, depth, 0, "description", 11);
	hm_json_out_string(o, desc, (size_t)n);
	hm_json_out_key(o, depth, 0, "path", 4);
	hm_json_out_string(o, p, (size_t)jv_string_length_bytes(jv_copy(path)));
	out_member(o, depth, 0, "local", l);
	out_member(o, depth, 0, "remote", r);
	if (with_base)
		out_member(o, depth, 0, "base", b);
	if (winner) {
		hm_json_out_key(o, depth, 0, "winner", 6);
		hm_json_out_string(o, winner, strlen(winner));
	}
	hm_json_out_close(o, '}', depth, 0);
	if (desc != small)
		free(desc);
}

/* The file_drift conflicts, unsorted, appended to out. */
static jv
detect_drift(jv out, jv lc, jv rc, jv bc)
{
	int with_base = jv_get_kind(bc) == JV_KIND_OBJECT;

	jv_object_foreach(lc, k, l)
	{
		jv r = jv_object_get(jv_copy(rc), jv_copy(k));
		jv b = with_base ? jv_object_get(jv_copy(bc), jv_copy(k)) : jv_invalid();
		int hit = with_base ? !hm_json_same(l, b) && !hm_json_same(r, b) &&
					      !hm_json_same(l, r)
				    : jv_is_valid(r) && !hm_json_same(l, r);

		if (hit) {
			out = jv_array_append(out,
					      hm_conflict_file_drift(k, l, r, b, with_base, NULL));
		} else {
			jv_free(k);
			jv_free(l);
			jv_free(r);
			jv_free(b);
		}
	}
	if (!with_base)
		return out;
	/* Deleted locally, changed remotely. */
	jv_object_foreach(rc, k, r)
	{
		jv l = jv_object_get(jv_copy(lc), jv_copy(k));
		jv b = jv_object_get(jv_copy(bc), jv_copy(k));

		if (!jv_is_valid(l) && jv_is_valid(b) && !hm_json_same(r, b)) {
			out = jv_array_append(out, hm_conflict_file_drift(k, l, r, b, 1, NULL));
		} else {
			jv_free(k);
			jv_free(l);
			jv_free(r);
			jv_free(b);
		}
	}
	return out;
}

jv
hm_conflicts_sort(jv list)
{
	static jv path_key;
	jv keys = jv_array();
	const char *prev = NULL;
	int sorted = 1;

	/* One key, made once: it keeps its hash across tens of thousands of lookups. */
	if (jv_get_kind(path_key) != JV_KIND_STRING)
		path_key = jv_string("path");
	/* A merge finds them in path order already: check before sorting. */
	jv_array_foreach(list, i, d)
	{
		jv p = jv_object_get(jv_copy(d), jv_copy(path_key));
		const char *s = jv_get_kind(p) == JV_KIND_STRING ? jv_string_value(p) : NULL;

		if (!s || (prev && strcmp(prev, s) > 0))
			sorted = 0;
		prev = s;
		/* The array keeps the string alive after p is dropped. */
		jv_free(p);
		jv_free(d);
		if (!sorted)
			break;
	}
	if (sorted) {
		jv_free(keys);
		return list;
	}
	jv_array_foreach(list, i, d)
	{
		keys = jv_array_append(keys, jv_object_get(d, jv_copy(path_key)));
	}
	return jv_sort(list, keys);
}

/* out (consumed) with the lineage_mismatch conflict of the pair appended. */
static jv
lineage_conflict(jv out, const struct hm_pair *p)
{
	jv ll = field(p->local, "lineage"), rl = field(p->remote, "lineage");
	const char *lid = jv_is_valid(ll) ? hm_json_str(ll, "id") : NULL;
	const char *rid = jv_is_valid(rl) ? hm_json_str(rl, "id") : NULL;
	jv x = conflict("lineage_mismatch", "high",
			jv_string_fmt("State lineage differs: local '%s' vs remote '%s'",
				      lid ? lid : "none", rid ? rid : "none"));

	out = jv_array_append(out, strpair(x, lid, rid));
	jv_free(ll);
	jv_free(rl);
	return out;
}

/* out (consumed) with the version_mismatch conflict appended: newer is the newer version. */
static jv
version_conflict(jv out, const struct hm_pair *p, int newer)
{
	jv x = conflict("version_mismatch", "high",
			jv_string_fmt("%s state version %d is newer than this heimdal "
				      "supports (%d)",
				      p->local_version == newer ? "Local" : "Remote", newer,
				      HM_STATE_VERSION));

	x = jv_object_set(x, jv_string("local"), jv_number(p->local_version));
	x = jv_object_set(x, jv_string("remote"), jv_number(p->remote_version));
	x = jv_object_set(x, jv_string("supported"), jv_number(HM_STATE_VERSION));
	return jv_array_append(out, x);
}

/* out (consumed) with the serial_divergence conflict of c appended. */
static jv
divergence_conflict(jv out, const struct hm_lineage_cmp *c)
{
	jv x = conflict(
		"serial_divergence", "high",
		c->common_parent < 0
			? jv_string_fmt("State diverged: local serial %lld vs remote serial "
					"%lld (no common parent)",
					c->local_serial, c->remote_serial)
			: jv_string_fmt("State diverged: local serial %lld vs remote serial "
					"%lld (common parent: %lld)",
					c->local_serial, c->remote_serial, c->common_parent));

	x = jv_object_set(x, jv_string("local_serial"), jv_number((double)c->local_serial));
	x = jv_object_set(x, jv_string("remote_serial"), jv_number((double)c->remote_serial));
	x = jv_object_set(x, jv_string("common_parent"),
			  c->common_parent < 0 ? jv_null() : jv_number((double)c->common_parent));
	return jv_array_append(out, x);
}

/*
 * out (consumed) with profile_mismatch and path_mismatch appended where the
 * two differ.  Profile and path are each machine's own: they differ between
 * machines in step and are no conflict on their own.  Beside a divergence
 * they are listed, as the specification's listing shows them.
 */
static jv
machine_conflicts(jv out, const struct hm_pair *p)
{
	const char *lprof = hm_json_str(p->local, "active_profile");
	const char *rprof = hm_json_str(p->remote, "active_profile");
	const char *lpath = hm_json_str(p->local, "dotfiles_path");
	const char *rpath = hm_json_str(p->remote, "dotfiles_path");

	if (lprof && rprof && strcmp(lprof, rprof) != 0) {
		jv x = conflict("profile_mismatch", "medium",
				jv_string_fmt("Active profile differs: local '%s' vs remote '%s'",
					      lprof, rprof));

		out = jv_array_append(out, strpair(x, lprof, rprof));
	}
	if (lpath && rpath && strcmp(lpath, rpath) != 0) {
		jv x = conflict("path_mismatch", "high",
				jv_string_fmt("Dotfiles path differs: local '%s' vs remote '%s'",
					      lpath, rpath));

		out = jv_array_append(out, strpair(x, lpath, rpath));
	}
	return out;
}

/* The pair's file_drift conflicts, sorted by path (a new array). */
static jv
drift_conflicts(const struct hm_pair *p)
{
	jv lc = field(p->local, "checksums"), rc = field(p->remote, "checksums");
	jv bc = field(p->base, "checksums");
	jv drifts = detect_drift(jv_array(), lc, rc, bc);

	jv_free(lc);
	jv_free(rc);
	jv_free(bc);
	return hm_conflicts_sort(drifts);
}

jv
hm_conflicts_detect(const struct hm_pair *p, const struct hm_lineage_cmp *c, int flags)
{
	jv out = jv_array();
	int diverged = c->relation == HM_REL_DIVERGED;
	int newer = p->local_version > HM_STATE_VERSION    ? p->local_version
		    : p->remote_version > HM_STATE_VERSION ? p->remote_version
							   : 0;

	/* A lineage that holds nothing but its own init joins the other: no conflict. */
	if (c->relation == HM_REL_UNRELATED)
		out = lineage_conflict(out, p);
	if (newer)
		out = version_conflict(out, p, newer);
	if (diverged) {
		out = divergence_conflict(out, c);
		out = machine_conflicts(out, p);
	}
	/* A file both sides changed only conflicts where the states diverged. */
	if (!newer && diverged && !(flags & HM_CONFLICTS_NO_DRIFT))
		out = jv_array_concat(out, drift_conflicts(p));
	return out;
}

void
hm_conflicts_print(FILE *f, const char *heading, jv list)
{
	char safe[1024];

	fprintf(f, "%s\n\n", heading);
	if (jv_get_kind(list) != JV_KIND_ARRAY)
		return;
	jv_array_foreach(list, i, e)
	{
		const char *d = hm_json_str(e, "description");

		hm_term_escape(d ? d : "?", 0, safe, sizeof(safe));
		fprintf(f, "%d. %s %s\n", i + 1, hm_mark_severity(hm_json_str(e, "severity")),
			safe);
		jv_free(e);
	}
}
