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
#include "hm_error.h"
#include "hm_file.h"
#include "hm_hash.h"
#include "hm_jpath.h"
#include "hm_json.h"
#include "hm_machine.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <linux/openat2.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define CACHE_MAGIC "heimdal-drift-cache 2"
#define STAT_KEY_MAX 128
#define READ_BUF (1024 * 1024)
#define CHUNK 256 /* entries a thread takes at a time: runs of one directory */

enum status { S_CLEAN, S_MODIFIED, S_MISSING, S_ERROR };

struct entry {
	char *path;
	const char *error;     /* static text when status is S_ERROR */
	int64_t size, mtime, ctime, ino; /* stat of what was hashed (ns) */
	unsigned char algo;    /* hex length: 32 or 64 */
	unsigned char status;
	unsigned char cached;  /* stat fields came from the cache */
	unsigned char hashed;
	unsigned char hostile;  /* the key itself is unsafe: never cached */
	char expected[HM_HASH_HEX_MAX];
	char actual[HM_HASH_HEX_MAX];
};

struct run {
	struct entry *e;
	size_t n;
	const char *root;   /* as given */
	char *root_real;    /* realpath of root */
	size_t root_len;
	int root_fd;
	int64_t stamp;      /* this run's start, recorded as the new cache's time */
	int64_t cache_stamp; /* the loaded cache's time: files not older are re-hashed */
	atomic_size_t next;
	atomic_size_t hits, racy;
};

static _Noreturn void
usage(FILE *f, int code)
{
	fprintf(f,
		"usage: heimdal-drift [--root DIR] [--all] [--no-cache] [--jobs N] [-c] [FILE]\n"
		"\n"
		"Compare the files a heimdal state (FILE or stdin) has checksums for with\n"
		"the files under DIR, and print the drift report as JSON.\n"
		"\n"
		"  -r, --root DIR   directory the checksum keys are relative to (default $HOME)\n"
		"  -a, --all        also list the clean files\n"
		"      --no-cache   hash every file; neither read nor write the stat cache\n"
		"  -j, --jobs N     hash with N threads (default: the number of cores)\n"
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

/*
 * Read all of fd into a NUL-terminated buffer sized from fstat when it is a
 * regular file (no doubling: the state and the cache are the big buffers).
 */
static int
read_whole(int fd, char **buf, size_t *len)
{
	struct stat st;
	size_t cap, n = 0;
	char *b;

	cap = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 65536;
	if (!(b = malloc(cap + 1)))
		return -1;
	for (;;) {
		ssize_t got;

		if (n == cap) {
			char *grown = realloc(b, 2 * cap + 1);

			if (!grown) {
				free(b);
				return -1;
			}
			b = grown, cap *= 2;
		}
		got = read(fd, b + n, cap - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			free(b);
			return -1;
		}
		if (got == 0)
			break;
		n += got;
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	return 0;
}

static int
by_path(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->path, ((const struct entry *)b)->path);
}

/* The entries of state's "checksums"; exits 2 on a value that is not a checksum. */
static void
entries_from_state(struct run *r, const char *src, const char *buf, size_t len, int *unsafe)
{
	jv s = hm_json_parse(src, buf, len), sums;
	size_t i = 0;

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
	r->n = jv_object_length(jv_copy(sums));
	r->e = calloc(r->n ? r->n : 1, sizeof(*r->e));
	if (!r->e)
		hm_die(HM_EXIT_ENV, "out of memory");
	jv_object_foreach(sums, k, v) {
		struct entry *e = &r->e[i++];
		const char *why, *hex = jv_get_kind(v) == JV_KIND_STRING ? jv_string_value(v) : NULL;

		e->algo = hm_hash_algo_of(hex);
		if (e->algo == HM_HASH_NONE)
			hm_die(HM_EXIT_USAGE,
			       "%s: .checksums[\"%s\"]: expected a SHA-256 (64 hex digits) or MD5 "
			       "(32 hex digits) checksum",
			       src, jv_string_value(k));
		e->path = hm_xstrdup(jv_string_value(k));
		memcpy(e->expected, hex, e->algo + 1);
		if (!hm_path_safe_relative(e->path, &why)) {
			e->status = S_ERROR;
			e->error = why;
			e->hostile = 1;
			*unsafe = 1;
		}
		jv_free(k);
		jv_free(v);
	}
	jv_free(sums);
	qsort(r->e, r->n, sizeof(*r->e), by_path);
}

/*
 * The fast road to the same entries: the scanner locates .checksums in the
 * text (checking the whole text's syntax), and a flat object of plain
 * strings is read straight from the bytes; 10k checksums cost libjq ~15 ms.
 * Anything unusual -- an escape, a value that is not a checksum, a duplicate
 * key -- returns 0 and the caller parses with libjq, so every error message
 * is the usual one.
 */
static int
entries_scan(struct run *r, const char *buf, size_t len, int *unsafe)
{
	const char *p, *end, *k, *v;
	size_t cap = 64, n = 0;
	struct entry *e;
	jv path = JV_ARRAY(jv_string("checksums"));
	int found = hm_jpath_scan(buf, len, path, &p, &end);

	jv_free(path);
	if (found != 1)
		return 0;
#define WS() while (p < end && (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')) p++
	if (*p++ != '{')
		return 0;
	e = calloc(cap, sizeof(*e));
	if (!e)
		hm_die(HM_EXIT_ENV, "out of memory");
	WS();
	if (p < end && *p == '}')
		goto done;
	for (;;) {
		size_t kl, vl;
		const char *why;

		WS();
		if (p >= end || *p++ != '"')
			goto slow;
		for (k = p; p < end && *p != '"' && *p != '\\'; p++)
			;
		if (p >= end || *p != '"')
			goto slow;
		kl = p++ - k;
		WS();
		if (p >= end || *p++ != ':')
			goto slow;
		WS();
		if (p >= end || *p++ != '"')
			goto slow;
		for (v = p; p < end && *p != '"' && *p != '\\'; p++)
			;
		if (p >= end || *p != '"')
			goto slow;
		vl = p++ - v;
		if (n == cap) {
			struct entry *grown = realloc(e, 2 * cap * sizeof(*e));

			if (!grown)
				hm_die(HM_EXIT_ENV, "out of memory");
			memset(grown + cap, 0, cap * sizeof(*e));
			e = grown, cap *= 2;
		}
		if (vl != HM_HASH_MD5 && vl != HM_HASH_SHA256)
			goto slow;
		memcpy(e[n].expected, v, vl);
		e[n].expected[vl] = '\0';
		e[n].algo = hm_hash_algo_of(e[n].expected);
		e[n].path = strndup(k, kl);
		if (e[n].algo == HM_HASH_NONE || !e[n].path || strlen(e[n].path) != kl) {
			free(e[n].path);
			goto slow;
		}
		if (!hm_path_safe_relative(e[n].path, &why)) {
			e[n].status = S_ERROR, e[n].error = why, e[n].hostile = 1;
			*unsafe = 1;
		}
		n++;
		WS();
		if (p < end && *p == ',') {
			p++;
			continue;
		}
		if (p < end && *p == '}')
			break;
		goto slow;
	}
#undef WS
done:
	qsort(e, n, sizeof(*e), by_path);
	for (size_t i = 1; i < n; i++)
		if (strcmp(e[i - 1].path, e[i].path) == 0)
			goto slow; /* a duplicate key: libjq's rule (the last wins) decides */
	r->e = e;
	r->n = n;
	return 1;
slow:
	for (size_t i = 0; i < n; i++)
		free(e[i].path);
	free(e);
	*unsafe = 0;
	return 0;
}

/*
 * The cache: a header line, "<state-digest|-> <stamp-ns> <count> <root>", then
 * one line per entry "<size> <mtime> <ctime> <ino> <expected> <actual|-> <path>",
 * sorted by path, and "end".  Anything unexpected discards it whole.
 */
struct cached {
	int64_t size, mtime, ctime, ino;
	const char *expected, *actual, *path; /* not NUL-terminated: lengths below */
	unsigned char elen, alen;             /* alen 0: no digest (missing, error) */
	unsigned short plen;
};

struct cache {
	char *map; /* the file, mapped read-only */
	size_t len;
	char state[HM_HASH_HEX_MAX];
	char state_stat[STAT_KEY_MAX]; /* the state file's stat_key, or "-" */
	int64_t stamp;
	size_t n;
	struct cached *c;
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
		 (unsigned long long)st->st_ino, (long long)st->st_size,
		 (long long)ns(st->st_mtim), (long long)ns(st->st_ctim));
}

/* strcmp of a counted string with a C string. */
static int
cmp_counted(const char *a, size_t alen, const char *b)
{
	size_t blen = strlen(b);
	int c = memcmp(a, b, alen < blen ? alen : blen);

	return c ? c : (alen > blen) - (alen < blen);
}

static void
cache_drop(struct cache *k)
{
	if (k->map)
		munmap(k->map, k->len);
	free(k->c);
	memset(k, 0, sizeof(*k));
}

/*
 * The cache is mapped, not read: the lines are parsed in place (nothing is
 * written into them), so its pages come straight from the page cache.
 */
static int
cache_load(const char *path, const char *root, struct cache *k)
{
	const char *p, *end, *nl;
	size_t count, rl = strlen(root);
	long long stamp;
	struct stat st;
	int off = 0, fd;
	char head[HM_HASH_HEX_MAX + STAT_KEY_MAX + 64];

	memset(k, 0, sizeof(*k));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	if (fstat(fd, &st) < 0 || st.st_size < (off_t)sizeof(CACHE_MAGIC)) {
		close(fd);
		return -1;
	}
	k->len = st.st_size;
	k->map = mmap(NULL, k->len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
	close(fd);
	if (k->map == MAP_FAILED) {
		k->map = NULL;
		return -1;
	}
	p = k->map, end = p + k->len;
	if (memcmp(p, CACHE_MAGIC "\n", sizeof(CACHE_MAGIC)) != 0)
		goto bad;
	p += sizeof(CACHE_MAGIC);
	if (!(nl = memchr(p, '\n', end - p)) || (size_t)(nl - p) >= sizeof(head) + rl)
		goto bad;
	if ((size_t)(nl - p) < rl + 1 || memcmp(nl - rl, root, rl) != 0 || nl[-rl - 1] != ' ')
		goto bad;
	if ((size_t)(nl - p - rl) >= sizeof(head))
		goto bad;
	memcpy(head, p, nl - p - rl);
	head[nl - p - rl] = '\0';
	if (sscanf(head, "%64s %127s %lld %zu %n", k->state, k->state_stat, &stamp, &count,
		   &off) != 4 ||
	    (size_t)off != (size_t)(nl - p - rl) || count > k->len / 8)
		goto bad;
	k->stamp = stamp;
	k->c = calloc(count ? count : 1, sizeof(*k->c));
	if (!k->c)
		goto bad;
	p = nl + 1;
	for (k->n = 0; k->n < count; k->n++) {
		struct cached *c = &k->c[k->n];
		const char *sp;

		if (!(nl = memchr(p, '\n', end - p)) || field(&p, nl, &c->size) < 0 ||
		    field(&p, nl, &c->mtime) < 0 || field(&p, nl, &c->ctime) < 0 ||
		    field(&p, nl, &c->ino) < 0)
			goto bad;
		c->expected = p;
		if (!(sp = memchr(p, ' ', nl - p)) ||
		    ((c->elen = sp - p) != HM_HASH_MD5 && c->elen != HM_HASH_SHA256))
			goto bad;
		p = sp + 1;
		c->actual = p;
		if (!(sp = memchr(p, ' ', nl - p)))
			goto bad;
		/* "=": the same digest as expected; "-": none. */
		if (sp - p == 1 && *p == '=')
			c->actual = c->expected, c->alen = c->elen;
		else if (sp - p == c->elen)
			c->alen = c->elen;
		else if (!(sp - p == 1 && *p == '-'))
			goto bad;
		p = sp + 1;
		c->path = p;
		c->plen = nl - p;
		if (nl - p == 0 || nl - p >= PATH_MAX)
			goto bad;
		if (k->n) {
			const struct cached *prev = &k->c[k->n - 1];
			size_t m = prev->plen < c->plen ? prev->plen : c->plen;
			int o = memcmp(prev->path, c->path, m);

			if (o > 0 || (o == 0 && prev->plen >= c->plen))
				goto bad; /* sorted, no duplicates */
		}
		p = nl + 1;
	}
	if (end - p != 4 || memcmp(p, "end\n", 4) != 0)
		goto bad;
	return 0;
bad:
	hm_debug("%s: unreadable cache, ignored", path);
	cache_drop(k);
	return -1;
}

static void
hex_copy(char *dst, const char *src, size_t n)
{
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Entries straight from a cache whose state digest matches: no JSON parsed. */
static void
entries_from_cache(struct run *r, struct cache *k)
{
	r->n = k->n;
	r->e = calloc(r->n ? r->n : 1, sizeof(*r->e));
	if (!r->e)
		hm_die(HM_EXIT_ENV, "out of memory");
	for (size_t i = 0; i < k->n; i++) {
		struct entry *e = &r->e[i];

		if (!(e->path = strndup(k->c[i].path, k->c[i].plen)))
			hm_die(HM_EXIT_ENV, "out of memory");
		e->algo = k->c[i].elen;
		hex_copy(e->expected, k->c[i].expected, e->algo);
	}
}

/* Give entries the stat their path had in the cache (both sorted by path). */
static void
attach_cache(struct run *r, struct cache *k)
{
	size_t j = 0;

	for (size_t i = 0; i < r->n && j < k->n; i++) {
		struct entry *e = &r->e[i];
		int c = 1;

		while (j < k->n && (c = cmp_counted(k->c[j].path, k->c[j].plen, e->path)) < 0)
			j++;
		if (j == k->n || c != 0 || e->status == S_ERROR)
			continue;
		if (k->c[j].alen == e->algo) {
			e->size = k->c[j].size, e->mtime = k->c[j].mtime;
			e->ctime = k->c[j].ctime, e->ino = k->c[j].ino;
			hex_copy(e->actual, k->c[j].actual, e->algo);
			e->cached = 1;
		}
	}
}

/* 1 when the real path p is the root or below it. */
static int
inside(struct run *r, const char *p)
{
	return strncmp(p, r->root_real, r->root_len) == 0 &&
	       (p[r->root_len] == '\0' || p[r->root_len] == '/' || r->root_len == 1);
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
	struct open_how how = { .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
				.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS };
	char full[2 * PATH_MAX + 2], real[PATH_MAX];

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
	m->fd = syscall(SYS_openat2, r->root_fd, m->path, &how, sizeof(how));
	if (m->fd >= 0)
		return;
	if (errno == ENOENT || errno == ENOTDIR) {
		m->state = -1;
		return;
	}
	if (errno != EXDEV && errno != ELOOP && errno != ENOSYS) {
		m->state = 2, m->error = strerror(errno);
		return;
	}
	/*
	 * RESOLVE_BENEATH refuses every absolute symlink, even one that stays
	 * inside (a stow-style ~/.config -> ~/.dotfiles/config): resolve it
	 * and open what it resolves to, when that is inside.
	 */
	snprintf(full, sizeof(full), "%s/%s", r->root_real, m->path);
	if (!realpath(full, real)) {
		m->state = errno == ENOENT || errno == ENOTDIR ? -1 : 0;
		return;
	}
	if (!inside(r, real)) {
		m->state = 0;
		return;
	}
	m->fd = open(real, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (m->fd < 0)
		m->state = -1;
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
	char full[2 * PATH_MAX + 2], real[PATH_MAX];
	int fd;

	snprintf(full, sizeof(full), "%s/%s", r->root_real, e->path);
	if (!realpath(full, real)) {
		e->status = S_MISSING; /* a dangling link has no content */
		return -1;
	}
	if (!inside(r, real)) {
		e->status = S_ERROR, e->error = ESCAPES;
		return -1;
	}
	if ((fd = open_file(AT_FDCWD, real)) < 0)
		e->status = S_ERROR, e->error = strerror(errno);
	return fd;
}

static void
check_one(struct run *r, struct entry *e, char *buf, struct dir *m)
{
	const char *slash = strrchr(e->path, '/');
	const char *name = slash ? slash + 1 : e->path;
	size_t n = slash ? (size_t)(slash - e->path) : 0;
	struct stat st;
	int fd = -1, tried = 0;

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
	e->status = strcmp(e->expected, e->actual) == 0 ? S_CLEAN : S_MODIFIED;
}

static void *
worker(void *arg)
{
	struct run *r = arg;
	char *buf = malloc(READ_BUF);
	struct dir m = { .len = SIZE_MAX, .fd = -1 };

	if (!buf)
		hm_die(HM_EXIT_ENV, "out of memory");
	for (;;) {
		size_t i = atomic_fetch_add(&r->next, CHUNK);

		if (i >= r->n)
			break;
		for (size_t end = i + CHUNK < r->n ? i + CHUNK : r->n; i < end; i++)
			if (r->e[i].status != S_ERROR)
				check_one(r, &r->e[i], buf, &m);
	}
	if (m.fd >= 0 && m.fd != r->root_fd)
		close(m.fd);
	free(buf);
	return NULL;
}

static void
check_all(struct run *r, long jobs)
{
	pthread_t t[64];
	long started = 0;

	if ((size_t)jobs > r->n / 64 + 1)
		jobs = r->n / 64 + 1; /* small states: threads cost more than they save */
	for (long i = 1; i < jobs && i < 64; i++)
		if (pthread_create(&t[started], NULL, worker, r) == 0)
			started++;
	worker(r);
	for (long i = 0; i < started; i++)
		pthread_join(t[i], NULL);
}

/* Write the cache beside itself and rename it in: it is only a cache, so no fsync. */
static void
cache_save(const char *path, struct run *r, const char *state_key, const char *stat_key)
{
	char *tmp = hm_xasprintf("%s.tmp.%ld", path, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FILE *f = fd < 0 ? NULL : fdopen(fd, "w");
	size_t count = 0;

	if (!f) {
		if (fd >= 0)
			close(fd);
		hm_debug("%s: %s", tmp, strerror(errno));
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
			fprintf(f, "0 0 0 0 %s - %s\n", e->expected, e->path);
		else
			fprintf(f, "%lld %lld %lld %lld %s %s %s\n", (long long)e->size,
				(long long)e->mtime, (long long)e->ctime, (long long)e->ino,
				e->expected, e->status == S_CLEAN ? "=" : e->actual, e->path);
	}
	fputs("end\n", f);
	if (fclose(f) != 0 || rename(tmp, path) < 0) {
		hm_debug("%s: %s", path, strerror(errno));
		unlink(tmp);
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

		switch (e->status) {
		case S_MODIFIED:
			mod = jv_array_append(mod, JV_OBJECT(jv_string("path"), jv_string(e->path),
							     jv_string("expected"), jv_string(e->expected),
							     jv_string("actual"), jv_string(e->actual)));
			break;
		case S_MISSING:
			miss = jv_array_append(miss, jv_string(e->path));
			break;
		case S_ERROR:
			err = jv_array_append(err, JV_OBJECT(jv_string("path"), jv_string(e->path),
							     jv_string("error"), jv_string(e->error)));
			break;
		default:
			if (all)
				clean = jv_array_append(clean, jv_string(e->path));
			continue;
		}
		*drifted = 1;
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
		{ "root", required_argument, NULL, 'r' },
		{ "all", no_argument, NULL, 'a' },
		{ "no-cache", no_argument, NULL, 'N' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "compact", no_argument, NULL, 'c' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct run r = { .root_fd = -1 };
	struct cache k = { 0 };
	const char *input = "-";
	char *buf = NULL, *cache_path = NULL, state_key[HM_HASH_HEX_MAX], stat_key[STAT_KEY_MAX] = "-";
	size_t len;
	long jobs = sysconf(_SC_NPROCESSORS_ONLN);
	int c, all = 0, use_cache = 1, compact = 0, unsafe = 0, drifted, changed = 0;
	struct timespec now;
	jv out;

	hm_error_init(argv[0]);
	/* openssl.cnf costs a millisecond to read and configures nothing a digest uses. */
	OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
	while ((c = getopt_long(argc, argv, "r:aj:cvh", opts, NULL)) != -1) {
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
		default:
			usage(stderr, HM_EXIT_USAGE);
		}
	}
	if (argc - optind > 1)
		usage(stderr, HM_EXIT_USAGE);
	if (optind < argc)
		input = argv[optind];
	if (!r.root && !(r.root = getenv("HOME")))
		hm_die(HM_EXIT_ENV, "HOME is not set; pass --root");
	if (!(r.root_real = realpath(r.root, NULL)))
		hm_die_errno(HM_EXIT_ENV, "--root %s", r.root);
	r.root_len = strlen(r.root_real);
	if ((r.root_fd = open(r.root_real, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		hm_die_errno(HM_EXIT_ENV, "%s", r.root);
	/* The fs clock (coarse, as file timestamps are) before anything is looked at. */
	clock_gettime(CLOCK_REALTIME_COARSE, &now);
	r.stamp = ns(now);
	if (use_cache && (getenv("HEIMDAL_HOME") || getenv("HOME"))) {
		cache_path = hm_home_path("drift.cache");
		cache_load(cache_path, r.root, &k);
	}
	if (strcmp(input, "-") == 0) {
		if (read_whole(0, &buf, &len) < 0)
			hm_die_errno(HM_EXIT_ENV, "<stdin>");
	} else {
		int fd = open(input, O_RDONLY | O_CLOEXEC);
		struct stat st;

		if (fd < 0 || fstat(fd, &st) < 0)
			hm_die_errno(HM_EXIT_ENV, "%s", input);
		/*
		 * The state file the cache was made from, unchanged since (and not
		 * changed in the cache's own tick: git's racy rule again), need not
		 * be read: its digest is the cache's.
		 */
		stat_key_of(&st, stat_key);
		if (k.map && strcmp(k.state_stat, stat_key) == 0 && ns(st.st_mtim) < k.stamp &&
		    ns(st.st_ctim) < k.stamp) {
			memcpy(state_key, k.state, sizeof(state_key));
		} else if (read_whole(fd, &buf, &len) < 0) {
			hm_die_errno(HM_EXIT_ENV, "%s", input);
		}
		close(fd);
	}
	if (buf && hm_hash_buf(HM_HASH_SHA256, buf, len, state_key) < 0)
		exit(HM_EXIT_ENV);
	/* Each buffer is freed as soon as it is done with: 100k files fit in 64 MiB. */
	if (k.map && strcmp(k.state, state_key) == 0) {
		hm_debug("cache: state already seen, not %s", buf ? "parsed" : "read");
		/* Rewritten with the same content: the new stat key is news.  From
		 * stdin there is none: the file's stays. */
		if (strcmp(stat_key, "-") == 0)
			memcpy(stat_key, k.state_stat, sizeof(stat_key));
		changed = strcmp(k.state_stat, stat_key) != 0;
		free(buf);
		entries_from_cache(&r, &k);
	} else {
		if (!entries_scan(&r, buf, len, &unsafe))
			entries_from_state(&r, hm_json_source_name(input), buf, len, &unsafe);
		free(buf);
		changed = 1;
	}
	if (k.map) {
		r.cache_stamp = k.stamp;
		attach_cache(&r, &k);
		cache_drop(&k);
	}
	r.next = 0;
	check_all(&r, jobs);
	for (size_t i = 0; i < r.n && !changed; i++)
		changed = r.e[i].hashed || (r.e[i].status != S_CLEAN && r.e[i].status != S_MODIFIED &&
					    r.e[i].cached);
	hm_debug("cache: %zu hits, %zu racy re-hashed, %zu entries", (size_t)r.hits,
		 (size_t)r.racy, r.n);
	if (cache_path && changed && hm_home_ensure() == 0)
		cache_save(cache_path, &r, unsafe ? "-" : state_key, unsafe ? "-" : stat_key);
	out = report(&r, all, &drifted);
	if (hm_json_write(stdout, out, compact ? HM_JSON_COMPACT : HM_JSON_PRETTY) < 0 ||
	    fflush(stdout) != 0)
		hm_die_errno(HM_EXIT_ENV, "stdout");
	for (size_t i = 0; i < r.n; i++)
		free(r.e[i].path);
	free(r.e);
	cache_drop(&k);
	free(cache_path);
	free(r.root_real);
	close(r.root_fd);
	return drifted ? HM_EXIT_FOUND : HM_EXIT_OK;
}
