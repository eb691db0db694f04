/*
 * heimdal-drift - compare the files a state has checksums for with the disk.
 *
 * Reads a state (stdin or FILE) and prints
 *   {"root", "checked", "modified": [{"path", "expected", "actual"}],
 *    "missing": [path...], "errors": [{"path", "error"}], "clean": [path...]}
 * sorted by path ("clean" only with --all).  Exit 1 when anything drifted.
 *
 * Files are hashed in parallel with large reads.  A stat cache
 * ($HEIMDAL_HOME/drift.cache) skips files whose size, mtime, ctime and inode
 * are unchanged, the way git's index does; it is keyed by a digest of the
 * state's bytes, so a state it has already seen is not parsed again.
 */
#include "hm_beneath.h"
#include "hm_error.h"
#include "hm_opt.h"
#include "hm_file.h"
#include "hm_hash.h"
#include "hm_jpath.h"
#include "hm_json.h"
#include "hm_machine.h"
#include "hm_tempfile.h"
#include "hm_work.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CACHE_MAGIC "heimdal-drift-cache 2"
#define STAT_KEY_MAX 128
#define READ_BUF (1024 * 1024)
#define CHUNK 32 /* entries a thread takes at a time: small, so that all end together */

enum status { S_CLEAN, S_MODIFIED, S_MISSING, S_ERROR };

/*
 * One checksum key.  path and expected point into the text they were read
 * from (the state's or the cache's), counted, not NUL-terminated: 10k keys
 * cost no allocation and no copy of their own.
 */
struct entry {
	const char *path;
	const char *expected;            /* algo hex digits */
	const char *error;               /* static text when status is S_ERROR */
	int64_t size, mtime, ctime, ino; /* stat of what was hashed (ns) */
	uint32_t plen;
	uint32_t order;     /* position among the state's keys */
	unsigned char algo; /* hex length: 32 or 64 */
	unsigned char status;
	unsigned char cached; /* stat fields came from the cache */
	unsigned char hashed;
	unsigned char hostile; /* the key itself is unsafe: never cached */
	char actual[HM_HASH_HEX_MAX];
};

/* Memory faulted in one go: the big buffers are all touched anyway. */
struct big {
	char *p;
	size_t len, cap;
};

struct run {
	struct entry *e;
	size_t n; /* entries read so far */
	size_t cap;
	struct big entries, text; /* the entry array; the state's text */
	char *strings;            /* keys and checksums copied out of libjq's values */
	const char *root;         /* as given */
	char *root_real;          /* realpath of root */
	int root_fd;
	int64_t stamp;       /* this run's start, recorded as the new cache's time */
	int64_t cache_stamp; /* the loaded cache's time: files not older are re-hashed */
	struct hm_work w;    /* the threads: entries are checked as they are published */
	long jobs;
	int disorder; /* the keys did not come sorted */
	atomic_size_t hits, racy;
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

static int64_t
ns(struct timespec t)
{
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void
big_free(struct big *b)
{
	if (b->p)
		munmap(b->p, b->cap);
	memset(b, 0, sizeof(*b));
}

/* Grow b to hold n bytes, the old contents kept; populate: fault it all in now. */
static void
big_reserve(struct big *b, size_t n, int populate)
{
	void *p;

	if (n <= b->cap)
		return;
	n = (n + 4095) & ~(size_t)4095;
	p = b->p ? mremap(b->p, b->cap, n, MREMAP_MAYMOVE)
		 : mmap(NULL, n, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | (populate ? MAP_POPULATE : 0), -1, 0);
	if (p == MAP_FAILED)
		hm_die(HM_EXIT_ENV, "out of memory");
	b->p = p;
	b->cap = n;
}

/*
 * Read all of fd into a NUL-terminated buffer sized from fstat when it is a
 * regular file (no doubling: the state and the cache are the big buffers).
 */
static int
read_whole(int fd, const struct stat *st, struct big *b)
{
	big_reserve(b, st && S_ISREG(st->st_mode) ? (size_t)st->st_size + 1 : 65536, 1);
	for (;;) {
		ssize_t got;

		if (b->len + 1 >= b->cap)
			big_reserve(b, 2 * b->cap, 0);
		got = read(fd, b->p + b->len, b->cap - b->len - 1);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -1;
		if (got == 0)
			break;
		b->len += got;
	}
	b->p[b->len] = '\0';
	return 0;
}

/* strcmp of two counted strings. */
static int
cmp_counted(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	return c ? c : (alen > blen) - (alen < blen);
}

static int
by_path(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	return cmp_counted(x->path, x->plen, y->path, y->plen);
}

/*
 * Room for n entries, allocated once: the threads read the array as it
 * fills.  populate when n is exact, not a bound.
 */
static void
entries_alloc(struct run *r, size_t n, int populate)
{
	big_reserve(&r->entries, (n ? n : 1) * sizeof(struct entry), populate);
	r->e = (struct entry *)r->entries.p;
	r->cap = n;
}

/* A key and its checksum; -1 when the checksum is not one. */
static int
entry_set(struct entry *e, const char *path, size_t plen, const char *hex, size_t hlen, int *unsafe)
{
	char key[PATH_MAX + 1], digest[HM_HASH_HEX_MAX];
	const char *why = "path too long";
	int nul = plen <= PATH_MAX && memchr(path, '\0', plen);

	memset(e, 0, sizeof(*e));
	e->path = path;
	e->plen = plen;
	e->expected = hex;
	if (hlen != HM_HASH_MD5 && hlen != HM_HASH_SHA256)
		return -1;
	memcpy(digest, hex, hlen);
	digest[hlen] = '\0';
	if ((e->algo = hm_hash_algo_of(digest)) == HM_HASH_NONE)
		return -1;
	if (plen <= PATH_MAX) {
		memcpy(key, path, plen);
		key[plen] = '\0';
	}
	if (nul)
		why = "control character in path";
	if (plen > PATH_MAX || nul || !hm_path_safe_relative(key, &why)) {
		e->status = S_ERROR;
		e->error = why;
		e->hostile = 1;
		*unsafe = 1;
	}
	return 0;
}

/* The entries of state's "checksums", through libjq; exits 2 on a value that is not a checksum. */
static void
entries_from_state(struct run *r, const char *src, const char *buf, size_t len, int *unsafe)
{
	jv s = hm_json_parse(src, buf, len), sums;
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
	to = r->strings = malloc(bytes ? bytes : 1);
	if (!to)
		hm_die(HM_EXIT_ENV, "out of memory");
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
		if (entry_set(&r->e[i++], path, plen, hex, hlen, unsafe) < 0)
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
 * The cache: a header line, "<state-digest|-> <state-stat|-> <stamp-ns>
 * <count> <root>", then one line per entry "<size> <mtime> <ctime> <ino>
 * <expected> <actual|=|-> <path>", sorted by path, and "end".  Anything
 * unexpected discards it whole.
 */
struct cache {
	struct big text;
	char state[HM_HASH_HEX_MAX];
	char state_stat[STAT_KEY_MAX]; /* the state file's stat_key, or "-" */
	int64_t stamp;
	size_t count;
	const char *lines; /* the first entry line */
	struct entry *e;   /* the lines, once parsed for attach_one */
	struct big entries;
	size_t n;
};

/* A decimal field ending in a space; -1 when there is none. */
static int
field(const char **pp, const char *end, int64_t *v)
{
	const char *p = *pp;
	int neg = p < end && *p == '-';
	uint64_t x = 0;

	p += neg;
	if (p >= end || *p < '0' || *p > '9')
		return -1;
	while (p < end && *p >= '0' && *p <= '9')
		x = x * 10 + (uint64_t)(*p++ - '0');
	if (p >= end || *p != ' ')
		return -1;
	*v = neg ? -(int64_t)x : (int64_t)x;
	*pp = p + 1;
	return 0;
}

/* What identifies a file's version without reading it: device, inode, size, times. */
static void
stat_key_of(const struct stat *st, char key[STAT_KEY_MAX])
{
	snprintf(key, STAT_KEY_MAX, "%llx:%llx:%lld:%lld:%lld", (unsigned long long)st->st_dev,
		 (unsigned long long)st->st_ino, (long long)st->st_size, (long long)ns(st->st_mtim),
		 (long long)ns(st->st_ctim));
}

static void
cache_drop(struct cache *k)
{
	big_free(&k->text);
	big_free(&k->entries);
	memset(k, 0, sizeof(*k));
}

/*
 * Map the cache and read its header.  It is mapped, not read: the lines are
 * parsed in place (nothing is written into them), so its pages come straight
 * from the page cache.  The file is only ever replaced, never truncated.
 */
static int
cache_open(const char *path, const char *root, struct cache *k)
{
	const char *p, *end, *nl;
	char head[HM_HASH_HEX_MAX + STAT_KEY_MAX + 64];
	size_t rl = strlen(root);
	long long stamp;
	struct stat st;
	int off = 0, fd;
	void *map;

	memset(k, 0, sizeof(*k));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	if (fstat(fd, &st) < 0 || st.st_size < (off_t)sizeof(CACHE_MAGIC)) {
		close(fd);
		goto bad;
	}
	map = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED)
		goto bad;
	k->text.p = map;
	k->text.len = k->text.cap = st.st_size;
	p = k->text.p, end = p + k->text.len;
	if (memcmp(p, CACHE_MAGIC "\n", sizeof(CACHE_MAGIC)) != 0)
		goto bad;
	p += sizeof(CACHE_MAGIC);
	if (!(nl = memchr(p, '\n', end - p)) || (size_t)(nl - p) < rl + 1 ||
	    memcmp(nl - rl, root, rl) != 0 || nl[-rl - 1] != ' ' ||
	    (size_t)(nl - p - rl) >= sizeof(head))
		goto bad;
	memcpy(head, p, nl - p - rl);
	head[nl - p - rl] = '\0';
	if (sscanf(head, "%64s %127s %lld %zu %n", k->state, k->state_stat, &stamp, &k->count,
		   &off) != 4 ||
	    (size_t)off != (size_t)(nl - p - rl) || k->count > k->text.len / 8)
		goto bad;
	k->stamp = stamp;
	k->lines = nl + 1;
	return 0;
bad:
	hm_debug("%s: unreadable cache, ignored", path);
	cache_drop(k);
	return -1;
}

/*
 * Parse the cache's lines into e (room for k->count).  With r, each CHUNK
 * is published to the threads as soon as it is read.  -1 on anything
 * unexpected.
 */
static int
cache_parse(struct cache *k, struct entry *e, struct run *r)
{
	const char *p = k->lines, *end = k->text.p + k->text.len, *nl, *sp;
	size_t i;

	for (i = 0; i < k->count; i++) {
		struct entry *c = &e[i];

		memset(c, 0, sizeof(*c));
		if (!(nl = memchr(p, '\n', end - p)) || field(&p, nl, &c->size) < 0 ||
		    field(&p, nl, &c->mtime) < 0 || field(&p, nl, &c->ctime) < 0 ||
		    field(&p, nl, &c->ino) < 0)
			return -1;
		c->expected = p;
		if (!(sp = memchr(p, ' ', nl - p)) ||
		    ((c->algo = sp - p) != HM_HASH_MD5 && c->algo != HM_HASH_SHA256))
			return -1;
		p = sp + 1;
		if (!(sp = memchr(p, ' ', nl - p)))
			return -1;
		/* "=": the same digest as expected; "-": none (missing, error). */
		if (sp - p == 1 && *p == '=')
			memcpy(c->actual, c->expected, c->algo), c->cached = 1;
		else if (sp - p == c->algo)
			memcpy(c->actual, p, c->algo), c->cached = 1;
		else if (!(sp - p == 1 && *p == '-'))
			return -1;
		p = sp + 1;
		c->path = p;
		c->plen = nl - p;
		if (c->plen == 0 || c->plen > PATH_MAX || (i && by_path(&e[i - 1], c) >= 0))
			return -1; /* sorted, no duplicates */
		p = nl + 1;
		if (r && (i + 1) % CHUNK == 0)
			hm_work_publish(&r->w, i + 1, 0);
	}
	if (end - p != 4 || memcmp(p, "end\n", 4) != 0)
		return -1;
	if (r)
		hm_work_publish(&r->w, i, 1);
	return 0;
}

/*
 * Give e the stat its path had in the cache (sorted by path).  *j is a
 * cursor: keys that come sorted are matched by walking forward; one that
 * comes before the cursor is looked up.
 */
static void
attach_one(struct cache *k, size_t *j, struct entry *e)
{
	const struct entry *c;
	int o = 1;

	if (e->status == S_ERROR)
		return;
	if (*j > 0 && by_path(&k->e[*j - 1], e) >= 0) {
		size_t lo = 0, hi = *j;

		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (by_path(&k->e[mid], e) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		*j = lo;
	}
	while (*j < k->n && (o = by_path(&k->e[*j], e)) < 0)
		(*j)++;
	if (*j == k->n || o != 0)
		return;
	c = &k->e[*j];
	if (c->cached && c->algo == e->algo) {
		e->size = c->size, e->mtime = c->mtime;
		e->ctime = c->ctime, e->ino = c->ino;
		memcpy(e->actual, c->actual, e->algo + 1);
		e->cached = 1;
	}
}

/*
 * Read the state (FILE or stdin) into r->text.  A state file the cache k was
 * made from, unchanged since (and not changed in the cache's own tick: git's
 * racy rule again), is not read: its digest is the cache's.
 */
static void
state_read(struct run *r, const char *input, const struct cache *k, char stat_key[STAT_KEY_MAX])
{
	/* stdin redirected from a regular file at its start (heimdal-drift <
	 * state.json, the pipeline form) is that file: the same shortcut, and a
	 * second read starts over from the top. */
	static int stdin_file = -1;
	int is_stdin = strcmp(input, "-") == 0, fd = 0;
	struct stat st;

	if (is_stdin && stdin_file < 0)
		stdin_file =
			fstat(0, &st) == 0 && S_ISREG(st.st_mode) && lseek(0, 0, SEEK_CUR) == 0;
	if (is_stdin && !stdin_file) {
		if (read_whole(0, NULL, &r->text) < 0)
			hm_die_errno(HM_EXIT_ENV, "<stdin>");
		return;
	}
	if (is_stdin ? lseek(0, 0, SEEK_SET) != 0 || fstat(0, &st) < 0
		     : (fd = open(input, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) < 0)
		hm_die_errno(HM_EXIT_ENV, "%s", is_stdin ? "<stdin>" : input);
	stat_key_of(&st, stat_key);
	if (!(k && strcmp(k->state_stat, stat_key) == 0 && ns(st.st_mtim) < k->stamp &&
	      ns(st.st_ctim) < k->stamp) &&
	    read_whole(fd, &st, &r->text) < 0)
		hm_die_errno(HM_EXIT_ENV, "%s", is_stdin ? "<stdin>" : input);
	if (!is_stdin)
		close(fd);
}

/*
 * The directory part of the keys a thread is working on, opened once: keys
 * come sorted, so runs of files share it, and every file is then looked up
 * by its last component alone.
 */
struct dir {
	char path[PATH_MAX];
	size_t len;        /* SIZE_MAX before the first */
	int fd;            /* O_PATH descriptor, or -1 */
	int state;         /* 1 inside the root, 0 escapes, -1 missing, 2 error */
	const char *error; /* when state is 2 */
};

#define ESCAPES "resolves outside the root through a symlink"

static void
dir_open(struct run *r, struct dir *m, const char *key, size_t n)
{
	if (m->fd >= 0 && m->fd != r->root_fd)
		close(m->fd);
	memcpy(m->path, key, n);
	m->path[n] = '\0';
	m->len = n;
	m->fd = -1;
	m->state = 1;
	if (n == 0) {
		m->fd = r->root_fd;
		return;
	}
	/* The kernel keeps the walk below the root, whatever the symlinks say. */
	m->fd = hm_beneath_openat(r->root_fd, r->root_real, m->path, O_PATH | O_DIRECTORY);
	if (m->fd >= 0)
		return;
	if (errno == ENOENT || errno == ENOTDIR)
		m->state = -1;
	else if (errno == EXDEV || errno == ELOOP)
		m->state = 0;
	else
		m->state = 2, m->error = strerror(errno);
}

/* Open a file without following a final symlink, without blocking on a FIFO. */
static int
open_file(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOATIME);

	if (fd < 0 && errno == EPERM) /* O_NOATIME on a file we do not own */
		fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	return fd;
}

/* The cached digest stands when the stat data is unchanged and not racy. */
static int
cache_hit(struct run *r, struct entry *e, const struct stat *st)
{
	if (!e->cached || e->size != st->st_size || e->mtime != ns(st->st_mtim) ||
	    e->ctime != ns(st->st_ctim) || e->ino != (int64_t)st->st_ino)
		return 0;
	/* git's racy rule: a file changed in the cache's own tick looks unchanged. */
	if (e->mtime >= r->cache_stamp) {
		atomic_fetch_add(&r->racy, 1);
		return 0;
	}
	atomic_fetch_add(&r->hits, 1);
	return 1;
}

/* A key whose last component is a symlink: followed only when it stays inside. */
static int
open_link(struct run *r, struct entry *e)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%.*s", (int)e->plen, e->path);
	fd = hm_beneath_openat(r->root_fd, r->root_real, path, O_RDONLY | O_NONBLOCK);
	if (fd < 0 && (errno == ENOENT || errno == ENOTDIR))
		e->status = S_MISSING; /* a dangling link has no content */
	else if (fd < 0)
		e->status = S_ERROR, e->error = errno == EXDEV ? ESCAPES : strerror(errno);
	return fd;
}

static void
check_one(struct run *r, struct entry *e, char *buf, struct dir *m)
{
	const char *slash = memrchr(e->path, '/', e->plen);
	const char *leaf = slash ? slash + 1 : e->path;
	size_t n = slash ? (size_t)(slash - e->path) : 0;
	size_t leaf_len = e->path + e->plen - leaf;
	char name[NAME_MAX + 1];
	struct stat st;
	int fd = -1, tried = 0;

	if (leaf_len > NAME_MAX) {
		e->status = S_ERROR, e->error = strerror(ENAMETOOLONG);
		return;
	}
	memcpy(name, leaf, leaf_len);
	name[leaf_len] = '\0';

	if (n != m->len || memcmp(m->path, e->path, n) != 0)
		dir_open(r, m, e->path, n);
	switch (m->state) {
	case -1:
		e->status = S_MISSING;
		return;
	case 0:
		e->status = S_ERROR, e->error = ESCAPES;
		return;
	case 2:
		e->status = S_ERROR, e->error = m->error;
		return;
	}
	/* With a cache entry, one fstatat usually settles it; without, open at once. */
	if (e->cached) {
		if (fstatat(m->fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT || errno == ENOTDIR)
				e->status = S_MISSING;
			else
				e->status = S_ERROR, e->error = strerror(errno);
			return;
		}
		if (S_ISREG(st.st_mode) && (tried = 1) && cache_hit(r, e, &st))
			goto compare;
	}
	fd = open_file(m->fd, name);
	if (fd < 0 && errno == ELOOP && (fd = open_link(r, e)) < 0)
		return;
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			e->status = S_MISSING;
		else
			e->status = S_ERROR, e->error = strerror(errno);
		return;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		e->status = S_ERROR, e->error = "not a regular file";
		close(fd);
		return;
	}
	if (!tried && cache_hit(r, e, &st)) { /* a symlink's target, unchanged */
		close(fd);
		goto compare;
	}
	if (hm_hash_fd(e->algo, fd, buf, READ_BUF, st.st_size, e->actual) < 0) {
		e->status = S_ERROR, e->error = strerror(errno);
		close(fd);
		return;
	}
	close(fd);
	e->size = st.st_size, e->mtime = ns(st.st_mtim);
	e->ctime = ns(st.st_ctim), e->ino = st.st_ino;
	e->hashed = 1;
compare:
	e->status = memcmp(e->expected, e->actual, e->algo) == 0 ? S_CLEAN : S_MODIFIED;
}

static void
worker(void *arg)
{
	struct run *r = arg;
	char *buf = malloc(READ_BUF);
	struct dir m = { .len = SIZE_MAX, .fd = -1 };
	size_t i, end;

	if (!buf)
		hm_die(HM_EXIT_ENV, "out of memory");
	while (hm_work_take(&r->w, &i, &end))
		for (; i < end; i++)
			if (r->e[i].status != S_ERROR)
				check_one(r, &r->e[i], buf, &m);
	if (m.fd >= 0 && m.fd != r->root_fd)
		close(m.fd);
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
	const struct entry *x = a, *y = b;
	int c = by_path(x, y);

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
		if (i + 1 < r->n && by_path(&r->e[i], &r->e[i + 1]) == 0)
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
	struct cache *k; /* the stat cache to attach, or NULL */
	size_t j;        /* attach_one's cursor */
	size_t streamed; /* entries published while the keys came sorted */
	int *unsafe;
};

static int
scan_member(void *arg, const char *key, size_t klen, const char *val, size_t vlen)
{
	struct scan *s = arg;
	struct run *r = s->r;
	size_t n = r->n;
	struct entry *e = &r->e[n];

	if (n == r->cap || entry_set(e, key, klen, val, vlen, s->unsafe) < 0)
		return -1;
	e->order = n;
	if (n && !r->disorder && by_path(e - 1, e) >= 0)
		r->disorder = 1;
	if (s->k)
		attach_one(s->k, &s->j, e);
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
entries_scan(struct run *r, struct cache *k, int *unsafe)
{
	struct scan s = { r, k, 0, 0, unsafe };
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
		big_free(&r->entries);
		r->e = NULL;
		r->n = 0;
		r->disorder = 0;
		*unsafe = 0;
		return 0;
	}
	/* What came unsorted is checked in order of path, after the rest. */
	qsort(r->e + s.streamed, r->n - s.streamed, sizeof(*r->e), by_path_order);
	hm_work_publish(&r->w, r->n, 1);
	return 1;
}

/* Write the cache beside itself and rename it in: it is only a cache, so no fsync. */
static void
cache_save(const char *path, struct run *r, const char *state_key, const char *stat_key)
{
	char *tmp = hm_xasprintf("%s.tmp.XXXXXX", path);
	struct hm_tempfile *t;
	int fd = hm_tempfile_mkstemp(tmp, 0600, &t);
	FILE *f = fd < 0 ? NULL : fdopen(fd, "w");
	size_t count = 0;

	if (!f) {
		if (fd >= 0)
			close(fd);
		hm_debug("%s: %s", tmp, strerror(errno));
		hm_tempfile_remove(t);
		free(tmp);
		return;
	}
	for (size_t i = 0; i < r->n; i++)
		count += !r->e[i].hostile;
	fprintf(f, CACHE_MAGIC "\n%s %s %lld %zu %s\n", state_key, stat_key, (long long)r->stamp,
		count, r->root);
	for (size_t i = 0; i < r->n; i++) {
		struct entry *e = &r->e[i];

		if (e->hostile)
			continue;
		if (e->status == S_MISSING || e->status == S_ERROR)
			fprintf(f, "0 0 0 0 %.*s - %.*s\n", e->algo, e->expected, (int)e->plen,
				e->path);
		else
			fprintf(f, "%lld %lld %lld %lld %.*s %s %.*s\n", (long long)e->size,
				(long long)e->mtime, (long long)e->ctime, (long long)e->ino,
				e->algo, e->expected, e->status == S_CLEAN ? "=" : e->actual,
				(int)e->plen, e->path);
	}
	fputs("end\n", f);
	if (fclose(f) != 0 || rename(tmp, path) < 0) {
		hm_debug("%s: %s", path, strerror(errno));
		hm_tempfile_remove(t);
	} else {
		hm_tempfile_forget(t);
	}
	free(tmp);
}

static jv
report(struct run *r, int all, int *drifted)
{
	jv mod = jv_array(), miss = jv_array(), err = jv_array(), clean = jv_array();
	jv out = JV_OBJECT(jv_string("root"), jv_string(r->root), jv_string("checked"),
			   jv_number(r->n));

	*drifted = 0;
	for (size_t i = 0; i < r->n; i++) {
		struct entry *e = &r->e[i];

		if (e->status == S_CLEAN) {
			if (all)
				clean = jv_array_append(clean, jv_string_sized(e->path, e->plen));
			continue;
		}
		*drifted = 1;
		if (e->status == S_MISSING)
			miss = jv_array_append(miss, jv_string_sized(e->path, e->plen));
		else if (e->status == S_ERROR)
			err = jv_array_append(
				err, JV_OBJECT(jv_string("path"), jv_string_sized(e->path, e->plen),
					       jv_string("error"), jv_string(e->error)));
		else
			mod = jv_array_append(
				mod, JV_OBJECT(jv_string("path"), jv_string_sized(e->path, e->plen),
					       jv_string("expected"),
					       jv_string_sized(e->expected, e->algo),
					       jv_string("actual"), jv_string(e->actual)));
	}
	out = jv_object_set(out, jv_string("modified"), mod);
	out = jv_object_set(out, jv_string("missing"), miss);
	out = jv_object_set(out, jv_string("errors"), err);
	if (all)
		out = jv_object_set(out, jv_string("clean"), clean);
	else
		jv_free(clean);
	return out;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "root", required_argument, NULL, 'r' }, { "all", no_argument, NULL, 'a' },
		{ "no-cache", no_argument, NULL, 'N' },   { "jobs", required_argument, NULL, 'j' },
		{ "compact", no_argument, NULL, 'c' },    { "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },       { NULL, 0, NULL, 0 },
	};
	struct run r = { .root_fd = -1 };
	struct cache k = { 0 };
	const char *input = "-";
	char *cache_path = NULL, state_key[HM_HASH_HEX_MAX] = "-", stat_key[STAT_KEY_MAX] = "-";
	long jobs = sysconf(_SC_NPROCESSORS_ONLN);
	int c, all = 0, use_cache = 1, compact = 0, unsafe = 0, drifted, changed = 1, seen = 0;
	int have_cache = 0;
	struct timespec now;
	jv out;

	hm_error_init(argv[0]);
	/* openssl.cnf costs a millisecond to read and configures nothing a digest uses. */
	OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
	while ((c = hm_opt_next(argc, argv, "cvh", opts, USAGE_LINE)) != -1) {
		switch (c) {
		case 'r':
			r.root = optarg;
			break;
		case 'a':
			all = 1;
			break;
		case 'N':
			use_cache = 0;
			break;
		case 'j': {
			char *end;

			jobs = strtol(optarg, &end, 10);
			if (*end || end == optarg || jobs < 1 || jobs > 64)
				hm_die(HM_EXIT_USAGE, "--jobs: expected 1 to 64, got '%s'", optarg);
			break;
		}
		case 'c':
			compact = 1;
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
		input = argv[optind];
	r.jobs = jobs;
	if (!r.root && !(r.root = getenv("HOME")))
		hm_die(HM_EXIT_ENV, "HOME is not set; pass --root");
	if (!(r.root_real = realpath(r.root, NULL)))
		hm_die_errno(HM_EXIT_ENV, "--root %s", r.root);
	if ((r.root_fd = open(r.root_real, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		hm_die_errno(HM_EXIT_ENV, "%s", r.root);
	/* The fs clock (coarse, as file timestamps are) before anything is looked at. */
	clock_gettime(CLOCK_REALTIME_COARSE, &now);
	r.stamp = ns(now);
	if (use_cache && (getenv("HEIMDAL_HOME") || getenv("HOME"))) {
		cache_path = hm_home_path("drift.cache");
		have_cache = cache_open(cache_path, r.root, &k) == 0;
		r.cache_stamp = k.stamp;
	}
	state_read(&r, input, have_cache ? &k : NULL, stat_key);
	if (!r.text.p)
		memcpy(state_key, k.state, sizeof(state_key));
	else if (cache_path && hm_hash_buf(HM_HASH_SHA256, r.text.p, r.text.len, state_key) < 0)
		exit(HM_EXIT_ENV);
	if (have_cache && strcmp(k.state, state_key) == 0) {
		hm_debug("cache: state already seen, not %s", r.text.p ? "parsed" : "read");
		/* Rewritten with the same content: the new stat key is news.  From
		 * stdin there is none: the file's stays. */
		if (strcmp(stat_key, "-") == 0)
			memcpy(stat_key, k.state_stat, sizeof(stat_key));
		changed = strcmp(k.state_stat, stat_key) != 0;
		/* The entries are the cache's lines: checked while the rest are read. */
		entries_alloc(&r, k.count, 1);
		workers_start(&r, k.count);
		seen = cache_parse(&k, r.e, &r) == 0;
		if (!seen) {
			/* A damaged line: what the threads did is dropped, the state read. */
			hm_debug("%s: unreadable cache, ignored", cache_path);
			hm_work_stop(&r.w);
			big_free(&r.entries);
			cache_drop(&k);
			have_cache = 0, changed = 1;
			atomic_store(&r.hits, 0);
			atomic_store(&r.racy, 0);
			if (!r.text.p)
				state_read(&r, input, NULL, stat_key);
		} else {
			r.n = k.count;
			big_free(&r.text);
		}
	}
	if (!seen) {
		/* A state not seen before: its entries get the stat of their cached lines. */
		if (have_cache) {
			big_reserve(&k.entries, (k.count ? k.count : 1) * sizeof(struct entry), 1);
			k.e = (struct entry *)k.entries.p;
			if (cache_parse(&k, k.e, NULL) == 0) {
				k.n = k.count;
			} else {
				hm_debug("%s: unreadable cache, ignored", cache_path);
				cache_drop(&k);
				have_cache = 0;
			}
		}
		if (!entries_scan(&r, have_cache ? &k : NULL, &unsafe)) {
			atomic_store(&r.hits, 0);
			atomic_store(&r.racy, 0);
			entries_from_state(&r, hm_json_source_name(input), r.text.p, r.text.len,
					   &unsafe);
			for (size_t i = 0, j = 0; have_cache && i < r.n; i++)
				attach_one(&k, &j, &r.e[i]);
			workers_start(&r, r.n);
			hm_work_publish(&r.w, r.n, 1);
		}
	}
	hm_work_finish(&r.w);
	if (!seen) {
		entries_settle(&r);
		cache_drop(&k); /* the entries point into the state's text */
	}
	for (size_t i = 0; i < r.n && !changed; i++)
		changed = r.e[i].hashed || (r.e[i].status != S_CLEAN &&
					    r.e[i].status != S_MODIFIED && r.e[i].cached);
	hm_debug("cache: %zu hits, %zu racy re-hashed, %zu entries", (size_t)r.hits, (size_t)r.racy,
		 r.n);
	if (cache_path && changed && hm_home_ensure() == 0)
		cache_save(cache_path, &r, unsafe ? "-" : state_key, unsafe ? "-" : stat_key);
	out = report(&r, all, &drifted);
	if (hm_json_write(stdout, out, compact ? HM_JSON_COMPACT : HM_JSON_PRETTY) < 0 ||
	    fflush(stdout) != 0)
		hm_die_errno(HM_EXIT_ENV, "stdout");
	big_free(&r.entries);
	big_free(&r.text);
	free(r.strings);
	cache_drop(&k);
	free(cache_path);
	free(r.root_real);
	close(r.root_fd);
	return drifted ? HM_EXIT_FOUND : HM_EXIT_OK;
}
