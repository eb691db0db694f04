/*
 * hm_drift.c - the drift verdict of one file, and the stat cache.
 */
#include "hm_drift.h"
#include "hm_beneath.h"
#include "hm_error.h"
#include "hm_file.h"
#include "hm_tempfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define CACHE_MAGIC "heimdal-drift-cache 2"

/* Where a cursor stands (struct hm_drift_dir's state). */
enum { DIR_NONE, DIR_INSIDE, DIR_MISSING, DIR_ESCAPES, DIR_ERROR };

const char hm_drift_escapes[] = "resolves outside the root through a symlink";
const char hm_drift_not_regular[] = "not a regular file";
const char hm_drift_blocked[] = "a component of its directory is not a directory";

int
hm_drift_cmp(const struct hm_drift *a, const struct hm_drift *b)
{
	int c = memcmp(a->path, b->path, a->plen < b->plen ? a->plen : b->plen);

	return c ? c : (a->plen > b->plen) - (a->plen < b->plen);
}

int
hm_drift_set(struct hm_drift *e, const char *path, size_t plen, const char *hex, size_t hlen,
	     int *unsafe)
{
	char key[PATH_MAX + 1], digest[HM_HASH_HEX_MAX];
	const char *why = "path too long";
	int nul = plen <= PATH_MAX && memchr(path, '\0', plen);
	enum hm_hash_algo algo;

	memset(e, 0, sizeof(*e));
	e->path = path;
	e->plen = (uint32_t)plen;
	e->expected = hex;
	if (plen <= PATH_MAX) {
		memcpy(key, path, plen);
		key[plen] = '\0';
	}
	if (nul)
		why = "control character in path";
	if (plen > PATH_MAX || nul || !hm_path_safe_relative(key, &why)) {
		e->status = HM_DRIFT_ERROR;
		e->error = why;
		e->hostile = 1;
		if (unsafe)
			*unsafe = 1;
	}
	if (!hex)
		return 0;
	if (hlen != HM_HASH_MD5 && hlen != HM_HASH_SHA256)
		return -1;
	memcpy(digest, hex, hlen);
	digest[hlen] = '\0';
	if ((algo = hm_hash_algo_of(digest)) == HM_HASH_NONE)
		return -1;
	e->algo = (unsigned char)algo;
	return 0;
}

void
hm_drift_dir_close(const struct hm_drift_root *root, struct hm_drift_dir *dir)
{
	if (dir->state == DIR_INSIDE && dir->fd != root->fd)
		close(dir->fd);
	dir->state = DIR_NONE;
}

/* The cursor moved to the directory key[0..n). */
static void
dir_open(const struct hm_drift_root *root, struct hm_drift_dir *m, const char *key, size_t n)
{
	hm_drift_dir_close(root, m);
	memcpy(m->path, key, n);
	m->path[n] = '\0';
	m->len = n;
	m->error = NULL;
	m->state = DIR_INSIDE;
	if (n == 0) {
		m->fd = root->fd;
		return;
	}
	/* The kernel keeps the walk below the root, whatever the symlinks say. */
	m->fd = hm_beneath_openat(root->fd, root->real, m->path, O_PATH | O_DIRECTORY);
	if (m->fd >= 0)
		return;
	if (errno == ENOENT)
		m->state = DIR_MISSING;
	else if (errno == ENOTDIR)
		m->state = DIR_MISSING, m->error = hm_drift_blocked;
	else if (errno == EXDEV || errno == ELOOP)
		m->state = DIR_ESCAPES;
	else
		m->state = DIR_ERROR, m->error = strerror(errno);
}

/* The verdict of a lookup that failed with errno. */
static void
failed(struct hm_drift *e, int err)
{
	e->error = NULL;
	if (err == ENOENT) {
		e->status = HM_DRIFT_MISSING;
	} else if (err == ENOTDIR) {
		e->status = HM_DRIFT_MISSING;
		e->error = hm_drift_blocked;
	} else {
		e->status = HM_DRIFT_ERROR;
		e->error = err == EXDEV ? hm_drift_escapes : strerror(err);
	}
}

/*
 * The directory of e's key under the cursor, and its last component in
 * name: 0, or -1 with e's verdict.
 */
static int
locate(const struct hm_drift_root *root, struct hm_drift_dir *m, struct hm_drift *e,
       char name[NAME_MAX + 1])
{
	const char *slash = memrchr(e->path, '/', e->plen);
	const char *leaf = slash ? slash + 1 : e->path;
	size_t n = slash ? (size_t)(slash - e->path) : 0;
	size_t leaf_len = (size_t)(e->path + e->plen - leaf);

	if (leaf_len > NAME_MAX) {
		failed(e, ENAMETOOLONG);
		return -1;
	}
	memcpy(name, leaf, leaf_len);
	name[leaf_len] = '\0';
	if (m->state == DIR_NONE || n != m->len || memcmp(m->path, e->path, n) != 0)
		dir_open(root, m, e->path, n);
	switch (m->state) {
	case DIR_MISSING:
		e->status = HM_DRIFT_MISSING, e->error = m->error;
		return -1;
	case DIR_ESCAPES:
		e->status = HM_DRIFT_ERROR, e->error = hm_drift_escapes;
		return -1;
	case DIR_ERROR:
		e->status = HM_DRIFT_ERROR, e->error = m->error;
		return -1;
	}
	return 0;
}

/*
 * name in the cursor's directory opened for reading, without blocking on a
 * FIFO and without following it; a symlink is followed only while it stays
 * inside the root (e->link set).  A descriptor with st (any type), or -1
 * with e's verdict.
 */
static int
open_leaf(const struct hm_drift_root *root, struct hm_drift_dir *m, struct hm_drift *e,
	  const char *name, struct stat *st)
{
	const int fl = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
	int fd = openat(m->fd, name, fl | O_NOATIME);

	if (fd < 0 && errno == EPERM) /* O_NOATIME on a file we do not own */
		fd = openat(m->fd, name, fl);
	if (fd < 0 && errno == ELOOP) {
		char path[PATH_MAX];

		e->link = 1;
		snprintf(path, sizeof(path), "%.*s", (int)e->plen, e->path);
		fd = hm_beneath_openat(root->fd, root->real, path, O_RDONLY | O_NONBLOCK);
	}
	if (fd < 0) {
		failed(e, errno);
		return -1;
	}
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		e->status = HM_DRIFT_ERROR, e->error = hm_drift_not_regular;
		close(fd);
		return -1;
	}
	return fd;
}

static void
stat_of(struct hm_drift *e, const struct stat *st)
{
	e->size = st->st_size, e->mtime = hm_drift_ns(st->st_mtim);
	e->ctime = hm_drift_ns(st->st_ctim), e->ino = (int64_t)st->st_ino;
}

/* The cached digest stands when the stat data is unchanged and not racy. */
static enum hm_drift_how
cache_hit(const struct hm_drift_root *root, const struct hm_drift *e, const struct stat *st)
{
	if (!e->cached || e->size != st->st_size || e->mtime != hm_drift_ns(st->st_mtim) ||
	    e->ctime != hm_drift_ns(st->st_ctim) || e->ino != (int64_t)st->st_ino)
		return HM_DRIFT_LOOKED;
	/* git's racy rule: a file changed in the cache's own tick looks unchanged. */
	return e->mtime >= root->stamp ? HM_DRIFT_RACY : HM_DRIFT_HIT;
}

static void
compare(struct hm_drift *e)
{
	e->status =
		memcmp(e->expected, e->actual, e->algo) == 0 ? HM_DRIFT_CLEAN : HM_DRIFT_MODIFIED;
	e->error = NULL;
}

enum hm_drift_how
hm_drift_check(const struct hm_drift_root *root, struct hm_drift_dir *dir, struct hm_drift *e,
	       char *buf, size_t buflen)
{
	enum hm_drift_how how = HM_DRIFT_LOOKED;
	char name[NAME_MAX + 1];
	struct stat st;
	int fd;

	e->link = 0;
	if (locate(root, dir, e, name) < 0)
		return HM_DRIFT_LOOKED;
	/* With a cache entry, one fstatat usually settles it; without, open at once. */
	if (e->cached) {
		if (fstatat(dir->fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			failed(e, errno);
			return HM_DRIFT_LOOKED;
		}
		if (S_ISREG(st.st_mode) && (how = cache_hit(root, e, &st)) == HM_DRIFT_HIT)
			goto done;
	}
	if ((fd = open_leaf(root, dir, e, name, &st)) < 0)
		return HM_DRIFT_LOOKED;
	if (e->link && (how = cache_hit(root, e, &st)) == HM_DRIFT_HIT) {
		close(fd); /* a symlink's target, unchanged */
		goto done;
	}
	if (hm_hash_fd((enum hm_hash_algo)e->algo, fd, buf, buflen, (size_t)st.st_size, e->actual) <
	    0) {
		failed(e, errno);
		close(fd);
		return HM_DRIFT_LOOKED;
	}
	close(fd);
	stat_of(e, &st);
	e->hashed = 1;
	how = how == HM_DRIFT_RACY ? HM_DRIFT_RACY : HM_DRIFT_HASHED;
done:
	compare(e);
	return how;
}

int
hm_drift_open(const struct hm_drift_root *root, struct hm_drift_dir *dir, struct hm_drift *e,
	      struct stat *st, char *sha256)
{
	char name[NAME_MAX + 1];
	int fd;

	e->link = 0;
	e->cached = 0;
	if (e->hostile || locate(root, dir, e, name) < 0 ||
	    (fd = open_leaf(root, dir, e, name, st)) < 0)
		return -1;
	if (hm_hash_fd(HM_HASH_SHA256, fd, NULL, 0, (size_t)st->st_size, sha256) < 0 ||
	    (e->algo == HM_HASH_MD5 &&
	     (lseek(fd, 0, SEEK_SET) != 0 ||
	      hm_hash_fd(HM_HASH_MD5, fd, NULL, 0, (size_t)st->st_size, e->actual) < 0))) {
		failed(e, errno);
		close(fd);
		return -1;
	}
	stat_of(e, st);
	e->hashed = 1;
	if (e->algo == HM_HASH_SHA256)
		memcpy(e->actual, sha256, HM_HASH_SHA256 + 1);
	if (e->expected && e->algo)
		compare(e);
	else if (e->expected)
		e->status = HM_DRIFT_MODIFIED, e->error = NULL; /* not a checksum: never matches */
	else
		e->status = HM_DRIFT_PRESENT, e->error = NULL;
	return fd;
}

void
hm_drift_buf_free(struct hm_drift_buf *b)
{
	if (b->p)
		munmap(b->p, b->cap);
	memset(b, 0, sizeof(*b));
}

void
hm_drift_buf_reserve(struct hm_drift_buf *b, size_t n, int populate)
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

/* No doubling when st gives the size: the state and the cache are the big buffers. */
int
hm_drift_buf_read(int fd, const struct stat *st, struct hm_drift_buf *b)
{
	hm_drift_buf_reserve(b, st && S_ISREG(st->st_mode) ? (size_t)st->st_size + 1 : 65536, 1);
	for (;;) {
		ssize_t got;

		if (b->len + 1 >= b->cap)
			hm_drift_buf_reserve(b, 2 * b->cap, 0);
		got = read(fd, b->p + b->len, b->cap - b->len - 1);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -1;
		if (got == 0)
			break;
		b->len += (size_t)got;
	}
	b->p[b->len] = '\0';
	return 0;
}

void
hm_drift_stat_key(const struct stat *st, char key[HM_DRIFT_STAT_KEY_MAX])
{
	snprintf(key, HM_DRIFT_STAT_KEY_MAX, "%llx:%llx:%lld:%lld:%lld",
		 (unsigned long long)st->st_dev, (unsigned long long)st->st_ino,
		 (long long)st->st_size, (long long)hm_drift_ns(st->st_mtim),
		 (long long)hm_drift_ns(st->st_ctim));
}

void
hm_drift_cache_drop(struct hm_drift_cache *k)
{
	hm_drift_buf_free(&k->text);
	hm_drift_buf_free(&k->entries);
	memset(k, 0, sizeof(*k));
}

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

/*
 * The header after the magic: "<state> <state-stat> <stamp> <count> <root>"
 * up to nl.  0, or -1.
 */
static int
cache_header(struct hm_drift_cache *k, const char *p, const char *nl, const char *root)
{
	char head[HM_HASH_HEX_MAX + HM_DRIFT_STAT_KEY_MAX + 64];
	size_t rl = strlen(root), hl;
	long long stamp;
	int off = 0;

	if ((size_t)(nl - p) < rl + 1 || memcmp(nl - rl, root, rl) != 0 || nl[-(long)rl - 1] != ' ')
		return -1;
	hl = (size_t)(nl - p) - rl;
	if (hl >= sizeof(head))
		return -1;
	memcpy(head, p, hl);
	head[hl] = '\0';
	if (sscanf(head, "%64s %127s %lld %zu %n", k->state, k->state_stat, &stamp, &k->count,
		   &off) != 4 ||
	    (size_t)off != hl || k->count > k->text.len / 8)
		return -1;
	k->stamp = stamp;
	return 0;
}

/*
 * Mapped, not read: the lines are parsed in place (nothing is written into
 * them), so its pages come straight from the page cache.  The file is only
 * ever replaced, never truncated.
 */
int
hm_drift_cache_open(const char *path, const char *root, struct hm_drift_cache *k)
{
	const char *p, *end, *nl;
	struct stat st;
	void *map;
	int fd;

	memset(k, 0, sizeof(*k));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	if (fstat(fd, &st) < 0 || st.st_size < (off_t)sizeof(CACHE_MAGIC)) {
		close(fd);
		goto bad;
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED)
		goto bad;
	k->text.p = map;
	k->text.len = k->text.cap = (size_t)st.st_size;
	p = k->text.p, end = p + k->text.len;
	if (memcmp(p, CACHE_MAGIC "\n", sizeof(CACHE_MAGIC)) != 0)
		goto bad;
	p += sizeof(CACHE_MAGIC);
	if (!(nl = memchr(p, '\n', (size_t)(end - p))) || cache_header(k, p, nl, root) < 0)
		goto bad;
	k->lines = nl + 1;
	return 0;
bad:
	hm_debug("%s: unreadable cache, ignored", path);
	hm_drift_cache_drop(k);
	return -1;
}

/* One line, "<size> <mtime> <ctime> <ino> <expected> <actual|=|-> <path>", up to nl. */
static int
cache_line(const char *p, const char *nl, struct hm_drift *c)
{
	const char *sp;
	size_t alen;

	memset(c, 0, sizeof(*c));
	if (field(&p, nl, &c->size) < 0 || field(&p, nl, &c->mtime) < 0 ||
	    field(&p, nl, &c->ctime) < 0 || field(&p, nl, &c->ino) < 0)
		return -1;
	c->expected = p;
	if (!(sp = memchr(p, ' ', (size_t)(nl - p))) ||
	    ((size_t)(sp - p) != HM_HASH_MD5 && (size_t)(sp - p) != HM_HASH_SHA256))
		return -1;
	c->algo = (unsigned char)(sp - p);
	p = sp + 1;
	if (!(sp = memchr(p, ' ', (size_t)(nl - p))))
		return -1;
	alen = (size_t)(sp - p);
	/* "=": the same digest as expected; "-": none (missing, error). */
	if (alen == 1 && *p == '=')
		memcpy(c->actual, c->expected, c->algo), c->cached = 1;
	else if (alen == c->algo)
		memcpy(c->actual, p, c->algo), c->cached = 1;
	else if (!(alen == 1 && *p == '-'))
		return -1;
	p = sp + 1;
	c->path = p;
	if (nl - p <= 0 || nl - p > PATH_MAX)
		return -1;
	c->plen = (uint32_t)(nl - p);
	return 0;
}

int
hm_drift_cache_parse(struct hm_drift_cache *k, struct hm_drift *e, struct hm_work *w)
{
	const char *p = k->lines, *end = k->text.p + k->text.len, *nl;
	size_t i;

	for (i = 0; i < k->count; i++) {
		if (!(nl = memchr(p, '\n', (size_t)(end - p))) || cache_line(p, nl, &e[i]) < 0 ||
		    (i && hm_drift_cmp(&e[i - 1], &e[i]) >= 0))
			return -1; /* sorted, no duplicates */
		p = nl + 1;
		if (w && (i + 1) % w->chunk == 0)
			hm_work_publish(w, i + 1, 0);
	}
	if (end - p != 4 || memcmp(p, "end\n", 4) != 0)
		return -1;
	if (w)
		hm_work_publish(w, i, 1);
	return 0;
}

int
hm_drift_cache_index(struct hm_drift_cache *k)
{
	hm_drift_buf_reserve(&k->entries, (k->count ? k->count : 1) * sizeof(struct hm_drift), 1);
	k->e = (struct hm_drift *)(void *)k->entries.p;
	if (hm_drift_cache_parse(k, k->e, NULL) < 0) {
		hm_drift_cache_drop(k);
		return -1;
	}
	k->n = k->count;
	return 0;
}

void
hm_drift_cache_attach(const struct hm_drift_cache *k, size_t *j, struct hm_drift *e)
{
	const struct hm_drift *c;
	int o = 1;

	if (e->status == HM_DRIFT_ERROR)
		return;
	if (*j > 0 && hm_drift_cmp(&k->e[*j - 1], e) >= 0) {
		size_t lo = 0, hi = *j;

		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (hm_drift_cmp(&k->e[mid], e) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		*j = lo;
	}
	while (*j < k->n && (o = hm_drift_cmp(&k->e[*j], e)) < 0)
		(*j)++;
	if (*j == k->n || o != 0)
		return;
	c = &k->e[*j];
	if (c->cached && c->algo == e->algo) {
		e->size = c->size, e->mtime = c->mtime;
		e->ctime = c->ctime, e->ino = c->ino;
		memcpy(e->actual, c->actual, (size_t)e->algo + 1);
		e->cached = 1;
	}
}

static void
cache_write(FILE *f, const struct hm_drift *e, size_t n, const char *root, int64_t stamp,
	    const char *state_key, const char *stat_key)
{
	size_t count = 0;

	for (size_t i = 0; i < n; i++)
		count += !e[i].hostile;
	fprintf(f, CACHE_MAGIC "\n%s %s %lld %zu %s\n", state_key, stat_key, (long long)stamp,
		count, root);
	for (; n--; e++) {
		if (e->hostile)
			continue;
		if (e->status == HM_DRIFT_MISSING || e->status == HM_DRIFT_ERROR)
			fprintf(f, "0 0 0 0 %.*s - %.*s\n", e->algo, e->expected, (int)e->plen,
				e->path);
		else
			fprintf(f, "%lld %lld %lld %lld %.*s %s %.*s\n", (long long)e->size,
				(long long)e->mtime, (long long)e->ctime, (long long)e->ino,
				e->algo, e->expected, e->status == HM_DRIFT_CLEAN ? "=" : e->actual,
				(int)e->plen, e->path);
	}
	fputs("end\n", f);
}

void
hm_drift_cache_save(const char *path, const struct hm_drift *e, size_t n, const char *root,
		    int64_t stamp, const char *state_key, const char *stat_key)
{
	char *tmp = hm_xasprintf("%s.tmp.XXXXXX", path);
	struct hm_tempfile *t;
	int fd = hm_tempfile_mkstemp(tmp, 0600, &t);
	FILE *f = fd < 0 ? NULL : fdopen(fd, "w");

	if (!f) {
		if (fd >= 0)
			close(fd);
		hm_debug("%s: %s", tmp, strerror(errno));
		hm_tempfile_remove(t);
		free(tmp);
		return;
	}
	cache_write(f, e, n, root, stamp, state_key, stat_key);
	if (fclose(f) != 0 || rename(tmp, path) < 0) {
		hm_debug("%s: %s", path, strerror(errno));
		hm_tempfile_remove(t);
	} else {
		hm_tempfile_forget(t);
	}
	free(tmp);
}
