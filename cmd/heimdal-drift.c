/*
 * heimdal-drift - compare the files a state has checksums for with the disk.
 *
 * Reads a state (stdin or FILE) and prints
 *   {"root", "checked", "modified": [{"path", "expected", "actual"}],
 *    "missing": [path...], "errors": [{"path", "error"}], "clean": [path...]}
 * sorted by path ("clean" only with --all).  Exit 1 when anything drifted.
 *
 * Each file's verdict is hm_drift's (the one apply plans by).  Files are
 * hashed in parallel with large reads.  A stat cache ($HEIMDAL_HOME/drift.cache)
 * skips files whose size, mtime, ctime and inode are unchanged, the way git's
 * index does; it is keyed by a digest of the state's bytes, so a state it has
 * already seen is not parsed again.
 */
#include "hm_drift.h"
#include "hm_error.h"
#include "hm_opt.h"
#include "hm_hash.h"
#include "hm_jpath.h"
#include "hm_json.h"
#include "hm_machine.h"
#include "hm_work.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <openssl/crypto.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define READ_BUF (1024 * 1024)
#define CHUNK 32 /* entries a thread takes at a time: small, so that all end together */

struct run {
	struct hm_drift *e;
	size_t n; /* entries read so far */
	size_t cap;
	struct hm_drift_buf entries, text; /* the entry array; the state's text */
	char *strings;                     /* keys and checksums copied out of libjq's values */
	const char *root;                  /* as given */
	const char *input;                 /* FILE, or "-" */
	char *root_real;                   /* realpath of root */
	struct hm_drift_root at;
	int64_t stamp;    /* this run's start, recorded as the new cache's time */
	struct hm_work w; /* the threads: entries are checked as they are published */
	long jobs;
	int all, compact, use_cache;
	int disorder; /* the keys did not come sorted */
	int unsafe;   /* a key is hostile: the cache is not keyed by this state */
	atomic_size_t hits, racy;
};

/* What the stat cache gives this run. */
struct cached {
	struct hm_drift_cache k;
	char *path;
	int have;
	char state_key[HM_HASH_HEX_MAX], stat_key[HM_DRIFT_STAT_KEY_MAX];
};

/* The usage line under an option error. */
#define USAGE_LINE "heimdal-drift [--root DIR] [--all] [--no-cache] [--jobs N] [-c] [FILE]"

static _Noreturn void
usage(FILE *f, int code)
{
	fprintf(f,
		"usage: heimdal-drift [--root DIR] [--all] [--no-cache] [--jobs N] [-c] [FILE]\n"
		"\n"
		"Compare the files a heimdal state (FILE or stdin) has checksums for with\n"
		"the files under DIR, and print the drift report as JSON.\n"
		"\n"
		"      --root DIR   directory the checksum keys are relative to (default $HOME)\n"
		"      --all        also list the clean files\n"
		"      --no-cache   hash every file; neither read nor write the stat cache\n"
		"      --jobs N     hash with N threads (default: the number of cores)\n"
		"  -c, --compact    print compact JSON (one line)\n"
		"  -v, --verbose    say how the cache was used, on stderr\n"
		"  -h, --help       show this help\n");
	exit(code);
}

static void
options(int argc, char **argv, struct run *r)
{
	static const struct option opts[] = {
		{ "root", required_argument, NULL, 'r' }, { "all", no_argument, NULL, 'a' },
		{ "no-cache", no_argument, NULL, 'N' },   { "jobs", required_argument, NULL, 'j' },
		{ "compact", no_argument, NULL, 'c' },    { "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },       { NULL, 0, NULL, 0 },
	};
	char *end;
	int c;

	r->input = "-";
	r->use_cache = 1;
	r->jobs = sysconf(_SC_NPROCESSORS_ONLN);
	while ((c = hm_opt_next(argc, argv, "cvh", opts, USAGE_LINE)) != -1) {
		switch (c) {
		case 'r':
			r->root = optarg;
			break;
		case 'a':
			r->all = 1;
			break;
		case 'N':
			r->use_cache = 0;
			break;
		case 'j':
			r->jobs = strtol(optarg, &end, 10);
			if (*end || end == optarg || r->jobs < 1 || r->jobs > 64)
				hm_die(HM_EXIT_USAGE, "--jobs: expected 1 to 64, got '%s'", optarg);
			break;
		case 'c':
			r->compact = 1;
			break;
		case 'v':
			hm_set_verbose();
			break;
		case 'h':
			usage(stdout, 0);
		}
	}
	if (argc - optind > 1)
		hm_opt_die(USAGE_LINE, "unexpected argument '%s'", argv[optind + 1]);
	if (optind < argc)
		r->input = argv[optind];
}

/* The root, opened; the clock read before anything is looked at. */
static void
root_open(struct run *r)
{
	struct timespec now;

	if (!r->root && !(r->root = getenv("HOME")))
		hm_die(HM_EXIT_ENV, "HOME is not set; pass --root");
	if (!(r->root_real = realpath(r->root, NULL)))
		hm_die_errno(HM_EXIT_ENV, "--root %s", r->root);
	if ((r->at.fd = open(r->root_real, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		hm_die_errno(HM_EXIT_ENV, "%s", r->root);
	r->at.real = r->root_real;
	/* The fs clock (coarse, as file timestamps are). */
	clock_gettime(CLOCK_REALTIME_COARSE, &now);
	r->stamp = hm_drift_ns(now);
}

/*
 * Room for n entries, allocated once: the threads read the array as it
 * fills.  populate when n is exact, not a bound.
 */
static void
entries_alloc(struct run *r, size_t n, int populate)
{
	hm_drift_buf_reserve(&r->entries, (n ? n : 1) * sizeof(struct hm_drift), populate);
	r->e = (struct hm_drift *)(void *)r->entries.p;
	r->cap = n;
}

static void
entries_drop(struct run *r)
{
	hm_drift_buf_free(&r->entries);
	r->e = NULL;
	r->n = 0;
	r->disorder = 0;
	r->unsafe = 0;
	atomic_store(&r->hits, 0);
	atomic_store(&r->racy, 0);
}

static int
by_path(const void *a, const void *b)
{
	return hm_drift_cmp(a, b);
}

/* The entries of state's "checksums", through libjq; exits 2 on a value that is not a checksum. */
static void
entries_from_state(struct run *r, const char *src)
{
	jv s = hm_json_parse(src, r->text.p, r->text.len), sums;
	size_t i = 0, bytes = 0;
	char *to;

	if (!jv_is_valid(s))
		hm_die(HM_EXIT_USAGE, "%s", jv_string_value(jv_invalid_get_msg(s)));
	if (jv_get_kind(s) != JV_KIND_OBJECT)
		hm_die(HM_EXIT_USAGE, "%s: expected a state object, got %s", src,
		       hm_json_kind_name(s));
	sums = jv_object_get(s, jv_string("checksums"));
	if (!jv_is_valid(sums) || jv_get_kind(sums) == JV_KIND_NULL) {
		jv_free(sums);
		return; /* a V1 state: nothing recorded yet */
	}
	if (jv_get_kind(sums) != JV_KIND_OBJECT)
		hm_die(HM_EXIT_USAGE, "%s: .checksums: expected an object, got %s", src,
		       hm_json_kind_name(sums));
	/* Keys and checksums are copied into one block: the values go with libjq. */
	jv_object_foreach(sums, k, v)
	{
		bytes += jv_string_length_bytes(k) + 1;
		if (jv_get_kind(v) == JV_KIND_STRING)
			bytes += jv_string_length_bytes(jv_copy(v)) + 1;
		jv_free(v);
	}
	to = r->strings = hm_xmalloc(bytes ? bytes : 1);
	entries_alloc(r, jv_object_length(jv_copy(sums)), 1);
	jv_object_foreach(sums, k, v)
	{
		int is_string = jv_get_kind(v) == JV_KIND_STRING;
		size_t plen = jv_string_length_bytes(jv_copy(k));
		size_t hlen = is_string ? (size_t)jv_string_length_bytes(jv_copy(v)) : 0;
		const char *path = to, *hex = to + plen + 1;

		memcpy(to, jv_string_value(k), plen + 1);
		if (is_string)
			memcpy(to + plen + 1, jv_string_value(v), hlen + 1);
		if (hm_drift_set(&r->e[i++], path, plen, hex, hlen, &r->unsafe) < 0)
			hm_die(HM_EXIT_USAGE,
			       "%s: .checksums[\"%s\"]: expected a SHA-256 (64 hex digits) or MD5 "
			       "(32 hex digits) checksum",
			       src, path);
		to += plen + 1 + (is_string ? hlen + 1 : 0);
		jv_free(k);
		jv_free(v);
	}
	jv_free(sums);
	qsort(r->e, i, sizeof(*r->e), by_path);
	r->n = i;
}

/*
 * Read the state (FILE or stdin) into r->text.  A state file the cache k was
 * made from, unchanged since (and not changed in the cache's own tick: git's
 * racy rule again), is not read: its digest is the cache's.
 */
static void
state_read(struct run *r, const struct hm_drift_cache *k, char stat_key[HM_DRIFT_STAT_KEY_MAX])
{
	/* stdin redirected from a regular file at its start (heimdal-drift <
	 * state.json, the pipeline form) is that file: the same shortcut, and a
	 * second read starts over from the top. */
	static int stdin_file = -1;
	int is_stdin = strcmp(r->input, "-") == 0, fd = 0;
	const char *name = is_stdin ? "<stdin>" : r->input;
	struct stat st;

	if (is_stdin && stdin_file < 0)
		stdin_file =
			fstat(0, &st) == 0 && S_ISREG(st.st_mode) && lseek(0, 0, SEEK_CUR) == 0;
	if (is_stdin && !stdin_file) {
		if (hm_drift_buf_read(0, NULL, &r->text) < 0)
			hm_die_errno(HM_EXIT_ENV, "<stdin>");
		return;
	}
	if (is_stdin ? lseek(0, 0, SEEK_SET) != 0 || fstat(0, &st) < 0
		     : (fd = open(r->input, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) < 0)
		hm_die_errno(HM_EXIT_ENV, "%s", name);
	hm_drift_stat_key(&st, stat_key);
	if (!(k && strcmp(k->state_stat, stat_key) == 0 && hm_drift_ns(st.st_mtim) < k->stamp &&
	      hm_drift_ns(st.st_ctim) < k->stamp) &&
	    hm_drift_buf_read(fd, &st, &r->text) < 0)
		hm_die_errno(HM_EXIT_ENV, "%s", name);
	if (!is_stdin)
		close(fd);
}

static void
worker(void *arg)
{
	struct run *r = arg;
	char *buf = hm_xmalloc(READ_BUF);
	struct hm_drift_dir m = { 0 };
	size_t i, end;

	while (hm_work_take(&r->w, &i, &end))
		for (; i < end; i++) {
			if (r->e[i].status == HM_DRIFT_ERROR)
				continue;
			switch (hm_drift_check(&r->at, &m, &r->e[i], buf, READ_BUF)) {
			case HM_DRIFT_HIT:
				atomic_fetch_add(&r->hits, 1);
				break;
			case HM_DRIFT_RACY:
				atomic_fetch_add(&r->racy, 1);
				break;
			default:
				break;
			}
		}
	hm_drift_dir_close(&r->at, &m);
	free(buf);
}

/* Threads for about n entries: small states cost more in threads than they save. */
static void
workers_start(struct run *r, size_t n)
{
	long jobs = (size_t)r->jobs > n / 64 + 1 ? (long)(n / 64 + 1) : r->jobs;

	hm_work_start(&r->w, jobs, CHUNK, worker, r);
}

static int
by_path_order(const void *a, const void *b)
{
	const struct hm_drift *x = a, *y = b;
	int c = hm_drift_cmp(x, y);

	return c ? c : (x->order > y->order) - (x->order < y->order);
}

/*
 * Keys that did not come sorted: sort what was checked, and of a key given
 * twice keep the last, as libjq does.
 */
static void
entries_settle(struct run *r)
{
	size_t w = 0;

	if (!r->disorder)
		return;
	qsort(r->e, r->n, sizeof(*r->e), by_path_order);
	for (size_t i = 0; i < r->n; i++) {
		if (i + 1 < r->n && hm_drift_cmp(&r->e[i], &r->e[i + 1]) == 0)
			continue;
		if (w != i)
			r->e[w] = r->e[i];
		w++;
	}
	r->n = w;
}

/* Reading the state's checksums the fast road. */
struct scan {
	struct run *r;
	struct hm_drift_cache *k; /* the stat cache to attach, or NULL */
	size_t j;                 /* hm_drift_cache_attach's cursor */
	size_t streamed;          /* entries published while the keys came sorted */
};

static int
scan_member(void *arg, const char *key, size_t klen, const char *val, size_t vlen)
{
	struct scan *s = arg;
	struct run *r = s->r;
	size_t n = r->n;
	struct hm_drift *e = &r->e[n];

	if (n == r->cap || hm_drift_set(e, key, klen, val, vlen, &r->unsafe) < 0)
		return -1;
	e->order = (uint32_t)n;
	if (n && !r->disorder && hm_drift_cmp(e - 1, e) >= 0)
		r->disorder = 1;
	if (s->k)
		hm_drift_cache_attach(s->k, &s->j, e);
	r->n = ++n;
	if (!r->disorder && n % CHUNK == 0)
		hm_work_publish(&r->w, s->streamed = n, 0);
	return 0;
}

/*
 * The fast road to the entries: the scanner locates .checksums in the text
 * (checking the whole text's syntax), and a flat object of plain strings is
 * read straight from the bytes; 10k checksums cost libjq ~15 ms.  The
 * threads start at once and check each CHUNK as soon as it is read, for as
 * long as the keys come sorted (the rest is sorted and published at the
 * end).  Anything unusual -- an escape, a value that is not a checksum --
 * stops the threads and returns 0, and the caller parses with libjq, so
 * every error message is the usual one.
 */
static int
entries_scan(struct run *r, struct hm_drift_cache *k)
{
	struct scan s = { r, k, 0, 0 };
	const char *start, *end;
	jv path = JV_ARRAY(jv_string("checksums"));
	int found = hm_jpath_scan(r->text.p, r->text.len, path, &start, &end);

	jv_free(path);
	if (found != 1 || *start != '{')
		return 0;
	/* The smallest member, "":"<32 hex>", takes 37 bytes. */
	entries_alloc(r, (size_t)(end - start) / 37 + 1, 0);
	r->n = 0;
	r->disorder = 0;
	workers_start(r, r->cap);
	if (!hm_jpath_plain_members(start, end, scan_member, &s)) {
		hm_work_stop(&r->w);
		entries_drop(r);
		return 0;
	}
	/* What came unsorted is checked in order of path, after the rest. */
	qsort(r->e + s.streamed, r->n - s.streamed, sizeof(*r->e), by_path_order);
	hm_work_publish(&r->w, r->n, 1);
	return 1;
}

/*
 * A state the cache was made from: its entries are the cache's lines,
 * checked while the rest are read.  1 when so; 0 when a line is damaged
 * (what the threads did is dropped, the state read after all).
 */
static int
from_cache(struct run *r, struct cached *c, int *changed)
{
	/* Rewritten with the same content: the new stat key is news.  From
	 * stdin there is none: the file's stays. */
	if (strcmp(c->stat_key, "-") == 0)
		memcpy(c->stat_key, c->k.state_stat, sizeof(c->stat_key));
	*changed = strcmp(c->k.state_stat, c->stat_key) != 0;
	hm_debug("cache: state already seen, not %s", r->text.p ? "parsed" : "read");
	entries_alloc(r, c->k.count, 1);
	workers_start(r, c->k.count);
	if (hm_drift_cache_parse(&c->k, r->e, &r->w) == 0) {
		r->n = c->k.count;
		hm_drift_buf_free(&r->text);
		return 1;
	}
	hm_debug("%s: unreadable cache, ignored", c->path);
	hm_work_stop(&r->w);
	entries_drop(r);
	hm_drift_cache_drop(&c->k);
	c->have = 0, *changed = 1;
	if (!r->text.p)
		state_read(r, NULL, c->stat_key);
	return 0;
}

/* A state not seen before: its entries get the stat of their cached lines. */
static void
from_state(struct run *r, struct cached *c)
{
	if (c->have && hm_drift_cache_index(&c->k) < 0) {
		hm_debug("%s: unreadable cache, ignored", c->path);
		c->have = 0;
	}
	if (entries_scan(r, c->have ? &c->k : NULL))
		return;
	entries_drop(r);
	entries_from_state(r, hm_json_source_name(r->input));
	for (size_t i = 0, j = 0; c->have && i < r->n; i++)
		hm_drift_cache_attach(&c->k, &j, &r->e[i]);
	workers_start(r, r->n);
	hm_work_publish(&r->w, r->n, 1);
}

/* Check every entry, from the cache's lines or the state's; 1 when the cache needs writing. */
static int
check_all(struct run *r, struct cached *c)
{
	int changed = 1, seen = 0;

	if (r->use_cache && (getenv("HEIMDAL_HOME") || getenv("HOME"))) {
		c->path = hm_home_path("drift.cache");
		c->have = hm_drift_cache_open(c->path, r->root, &c->k) == 0;
		r->at.stamp = c->k.stamp;
	}
	state_read(r, c->have ? &c->k : NULL, c->stat_key);
	if (!r->text.p)
		memcpy(c->state_key, c->k.state, sizeof(c->state_key));
	else if (c->path && hm_hash_buf(HM_HASH_SHA256, r->text.p, r->text.len, c->state_key) < 0)
		exit(HM_EXIT_ENV);
	if (c->have && strcmp(c->k.state, c->state_key) == 0)
		seen = from_cache(r, c, &changed);
	if (!seen)
		from_state(r, c);
	hm_work_finish(&r->w);
	if (!seen) {
		entries_settle(r);
		hm_drift_cache_drop(&c->k); /* the entries point into the state's text */
	}
	for (size_t i = 0; i < r->n && !changed; i++)
		changed = r->e[i].hashed || (r->e[i].status != HM_DRIFT_CLEAN &&
					     r->e[i].status != HM_DRIFT_MODIFIED && r->e[i].cached);
	hm_debug("cache: %zu hits, %zu racy re-hashed, %zu entries", (size_t)r->hits,
		 (size_t)r->racy, r->n);
	return changed;
}

static jv
report(struct run *r, int *drifted)
{
	jv mod = jv_array(), miss = jv_array(), err = jv_array(), clean = jv_array();
	jv out = JV_OBJECT(jv_string("root"), jv_string(r->root), jv_string("checked"),
			   jv_number(r->n));

	*drifted = 0;
	for (size_t i = 0; i < r->n; i++) {
		struct hm_drift *e = &r->e[i];
		jv path;

		if (e->status == HM_DRIFT_CLEAN && !r->all)
			continue;
		path = jv_string_sized(e->path, (int)e->plen);
		if (e->status == HM_DRIFT_CLEAN)
			clean = jv_array_append(clean, path);
		else if (e->status == HM_DRIFT_MISSING)
			miss = jv_array_append(miss, path);
		else if (e->status == HM_DRIFT_ERROR)
			err = jv_array_append(err,
					      JV_OBJECT(jv_string("path"), path, jv_string("error"),
							jv_string(e->error)));
		else
			mod = jv_array_append(
				mod, JV_OBJECT(jv_string("path"), path, jv_string("expected"),
					       jv_string_sized(e->expected, e->algo),
					       jv_string("actual"), jv_string(e->actual)));
		*drifted |= e->status != HM_DRIFT_CLEAN;
	}
	out = jv_object_set(out, jv_string("modified"), mod);
	out = jv_object_set(out, jv_string("missing"), miss);
	out = jv_object_set(out, jv_string("errors"), err);
	if (r->all)
		out = jv_object_set(out, jv_string("clean"), clean);
	else
		jv_free(clean);
	return out;
}

int
main(int argc, char **argv)
{
	struct run r = { .at.fd = -1 };
	struct cached c = { .state_key = "-", .stat_key = "-" };
	int drifted;
	jv out;

	hm_error_init(argv[0]);
	/* openssl.cnf costs a millisecond to read and configures nothing a digest uses. */
	OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
	options(argc, argv, &r);
	root_open(&r);
	if (check_all(&r, &c) && c.path && hm_home_ensure() == 0)
		hm_drift_cache_save(c.path, r.e, r.n, r.root, r.stamp, r.unsafe ? "-" : c.state_key,
				    r.unsafe ? "-" : c.stat_key);
	out = report(&r, &drifted);
	if (hm_json_write(stdout, out, r.compact ? HM_JSON_COMPACT : HM_JSON_PRETTY) < 0 ||
	    fflush(stdout) != 0)
		hm_die_errno(HM_EXIT_ENV, "stdout");
	hm_drift_buf_free(&r.entries);
	hm_drift_buf_free(&r.text);
	free(r.strings);
	hm_drift_cache_drop(&c.k);
	free(c.path);
	free(r.root_real);
	close(r.at.fd);
	return drifted ? HM_EXIT_FOUND : HM_EXIT_OK;
}
