/*
 * hm_drift.h - is the file deployed beneath a root what its checksum says?
 * The one answer heimdal-drift reports and apply plans by, and the stat
 * cache that lets heimdal-drift skip the files it has seen unchanged.
 *
 * The file at a key (a path relative to the root) is looked up beneath the
 * root (hm_beneath): its directory is resolved by the kernel beneath the
 * root's descriptor, the file itself is opened without following it and
 * without blocking (a FIFO never hangs a check).  The verdict is one of
 *
 *   HM_DRIFT_CLEAN     a regular file whose content has the checksum;
 *   HM_DRIFT_MODIFIED  a regular file with other content (actual: its digest);
 *   HM_DRIFT_MISSING   nothing there: the file, a directory on its way, or
 *                      the target of a symlink (a dangling link has no content);
 *                      error is hm_drift_blocked when something other than a
 *                      directory stands on its way (a file cannot be put there);
 *   HM_DRIFT_ERROR     error names why: the key is unsafe (hm_path_safe_relative:
 *                      never opened), the directory or a symlink leads outside
 *                      the root (hm_drift_escapes), it is not a regular file
 *                      (hm_drift_not_regular: a directory, FIFO, device,
 *                      socket), or it cannot be read (strerror's text).
 *
 * A symlink as the key's last component is content when it stays inside the
 * root: its target is what is compared, and link says it was one.  What a
 * caller does with a link is its own rule: heimdal-drift reports the content,
 * apply never writes through a link (it skips it, or replaces it with
 * --force), whatever the content.
 */
#ifndef HM_DRIFT_H
#define HM_DRIFT_H

#include "hm_hash.h"
#include "hm_work.h"

#include <limits.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

enum hm_drift_status {
	HM_DRIFT_CLEAN,
	HM_DRIFT_MODIFIED,
	HM_DRIFT_MISSING,
	HM_DRIFT_ERROR,
	HM_DRIFT_PRESENT, /* a regular file, no checksum to compare with (hm_drift_open) */
};

/* The verdict's own errors: e->error is one of these (compare pointers) or strerror's. */
extern const char hm_drift_escapes[];     /* "resolves outside the root through a symlink" */
extern const char hm_drift_not_regular[]; /* "not a regular file" */
extern const char hm_drift_blocked[];     /* "a component of its directory is not a directory" */

/*
 * One key and its verdict.  path and expected are counted, not
 * NUL-terminated: they point into the text they were read from (a state's,
 * the cache's), so that 10k keys cost no allocation of their own.
 */
struct hm_drift {
	const char *path;
	const char *expected;            /* algo hex digits */
	const char *error;               /* static text: why (HM_DRIFT_ERROR, MISSING) */
	int64_t size, mtime, ctime, ino; /* stat of what was hashed (ns) */
	uint32_t plen;
	uint32_t order;     /* for the caller: the key's position in its input */
	unsigned char algo; /* expected's hex length: HM_HASH_MD5 or HM_HASH_SHA256 */
	unsigned char status;
	unsigned char cached;  /* size..ino and actual came from the stat cache */
	unsigned char hashed;  /* the file was read (the cache is stale) */
	unsigned char hostile; /* the key itself is unsafe: never opened, never cached */
	unsigned char link;    /* the last component is a symlink */
	char actual[HM_HASH_HEX_MAX];
};

/* Where keys are looked up. */
struct hm_drift_root {
	int fd;           /* the root directory */
	const char *real; /* its realpath: an absolute symlink staying inside is followed */
	int64_t stamp;    /* the stat cache's time (ns): a cached file not older is re-hashed */
};

/*
 * A thread's cursor on the directory of the keys it checks: keys come
 * sorted, so runs of them share one lookup.  Start from one zeroed
 * ({ 0 }); hm_drift_dir_close when done.  Its fields are the module's.
 */
struct hm_drift_dir {
	char path[PATH_MAX];
	size_t len;
	int fd;            /* O_PATH descriptor while inside the root */
	int state;         /* 0: none yet */
	const char *error; /* why it is missing or unreadable */
};

void hm_drift_dir_close(const struct hm_drift_root *root, struct hm_drift_dir *dir);

/* Nanoseconds since the epoch. */
static inline int64_t
hm_drift_ns(struct timespec t)
{
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/*
 * e set from key path[0..plen) and checksum hex[0..hlen) (both borrowed;
 * hex NULL: no checksum, algo 0).  An unsafe key (absolute, "..", a NUL,
 * too long) gives e the status HM_DRIFT_ERROR, hostile set, and *unsafe
 * (when not NULL) 1: it is never opened.  -1 when hex is not a SHA-256 or
 * MD5 checksum (e->algo 0: it matches no content), else 0.
 */
int hm_drift_set(struct hm_drift *e, const char *path, size_t plen, const char *hex, size_t hlen,
		 int *unsafe);

/* What settled a check (hm_drift_check's value). */
enum hm_drift_how {
	HM_DRIFT_LOOKED, /* no content to compare: missing, error */
	HM_DRIFT_HASHED, /* the file was read */
	HM_DRIFT_HIT,    /* the stat cache's digest stood */
	HM_DRIFT_RACY,   /* the cache matched but was too recent: read */
};

/*
 * The verdict for e (set by hm_drift_set; its stat fields from the cache
 * when cached): e->status, e->error, e->actual (CLEAN, MODIFIED), e->link,
 * and the stat of what was read.  dir is the calling thread's cursor;
 * buf[0..buflen) the read buffer (NULL: hm_hash's own).  Nothing printed.
 */
enum hm_drift_how hm_drift_check(const struct hm_drift_root *root, struct hm_drift_dir *dir,
				 struct hm_drift *e, char *buf, size_t buflen);

/*
 * hm_drift_check for a caller that goes on to use the file (apply), e set
 * by hm_drift_set (a hostile key is not looked up): no stat cache
 * (e->cached is ignored), and the content read once gives both the verdict
 * and sha256, its SHA-256 whatever e's algorithm (an MD5 checksum costs a
 * second read).  No checksum (e->expected NULL): a regular file is
 * HM_DRIFT_PRESENT.  Returns the file open for reading with st filled
 * (CLEAN, MODIFIED, PRESENT), or -1 with the verdict in e.  When e->link is
 * set the descriptor is returned all the same: a caller that must not use a
 * link's content closes it.  The link itself is then in dir's directory.
 */
int hm_drift_open(const struct hm_drift_root *root, struct hm_drift_dir *dir, struct hm_drift *e,
		  struct stat *st, char *sha256);

/* strcmp of two keys (counted): the order of the cache and of reports. */
int hm_drift_cmp(const struct hm_drift *a, const struct hm_drift *b);

/*
 * Memory mapped in one go, for the big buffers (a state's text, 10k
 * entries): hm_drift_buf_reserve grows b to n bytes keeping its contents
 * (populate: fault it all in now) and exits 3 when out of memory;
 * hm_drift_buf_read reads all of fd into b, NUL-terminated, sized from st
 * when it is a regular file's (0, or -1 with errno).
 */
struct hm_drift_buf {
	char *p;
	size_t len, cap;
};
void hm_drift_buf_reserve(struct hm_drift_buf *b, size_t n, int populate);
int hm_drift_buf_read(int fd, const struct stat *st, struct hm_drift_buf *b);
void hm_drift_buf_free(struct hm_drift_buf *b);

/*
 * The stat cache ($HEIMDAL_HOME/drift.cache, machine-local).  Its text:
 *
 *   heimdal-drift-cache 2
 *   <state-digest|-> <state-stat|-> <stamp-ns> <count> <root>
 *   <size> <mtime> <ctime> <ino> <expected> <actual|=|-> <path>   (count lines, sorted)
 *   end
 *
 * state-digest is the SHA-256 of the state's text the cache was made from,
 * state-stat its file's hm_drift_stat_key; "=" is an actual equal to
 * expected, "-" none (missing, error).  Anything unexpected discards it
 * whole.  A cached digest stands only while the file's size, mtime, ctime
 * and inode are unchanged and its mtime is older than stamp (git's racy
 * rule).
 */
#define HM_DRIFT_STAT_KEY_MAX 128

struct hm_drift_cache {
	struct hm_drift_buf text; /* the file, mapped */
	char state[HM_HASH_HEX_MAX];
	char state_stat[HM_DRIFT_STAT_KEY_MAX];
	int64_t stamp;
	size_t count;
	const char *lines;  /* the first entry line */
	struct hm_drift *e; /* the lines, parsed for hm_drift_cache_attach */
	struct hm_drift_buf entries;
	size_t n;
};

/* What identifies a file's version without reading it: device, inode, size, times. */
void hm_drift_stat_key(const struct stat *st, char key[HM_DRIFT_STAT_KEY_MAX]);

/* Map the cache at path and read its header, which must name root: 0, or -1 (k empty). */
int hm_drift_cache_open(const char *path, const char *root, struct hm_drift_cache *k);

/*
 * Parse k's lines into e (room for k->count), pointing into k's text.  With
 * w, each of its chunks is published to its threads as soon as it is read,
 * and the lot at the end.  0, or -1 on anything unexpected.
 */
int hm_drift_cache_parse(struct hm_drift_cache *k, struct hm_drift *e, struct hm_work *w);

/* Parse k's lines into k->e for hm_drift_cache_attach: 0, or -1 (k dropped). */
int hm_drift_cache_index(struct hm_drift_cache *k);

/*
 * Give e the stat and digest its key had in k (indexed).  *j is a cursor
 * from 0: keys that come sorted are matched walking forward; one that comes
 * before the cursor is looked up.
 */
void hm_drift_cache_attach(const struct hm_drift_cache *k, size_t *j, struct hm_drift *e);

void hm_drift_cache_drop(struct hm_drift_cache *k);

/*
 * Write e[0..n) (sorted, hostile keys left out) as the cache at path for
 * root, made at stamp from the state with digest state_key and stat key
 * stat_key ("-" for none).  Written beside and renamed in, without fsync:
 * it is only a cache; a failure is a debug line.
 */
void hm_drift_cache_save(const char *path, const struct hm_drift *e, size_t n, const char *root,
			 int64_t stamp, const char *state_key, const char *stat_key);

#endif
