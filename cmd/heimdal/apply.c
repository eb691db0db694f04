/*
 * apply.c - `heimdal apply [--force] [--dry-run] [--profile NAME] [PATH...]`:
 * deploy the dotfiles repository into $HOME, and `heimdal resolve`, which
 * settles a file apply could not merge.
 *
 * Every decision is three-way (DESIGN, "Per-machine and shared"): the file
 * here, the repository's file (upstream) and what this machine last deployed
 * (its deployment record, record.h), which is the base:
 *
 *   unchanged here, changed upstream   updated, recorded;
 *   changed here, unchanged upstream   kept (drift: 'heimdal commit' shares it);
 *   changed on both sides              merged (git_merge_file, base = the
 *                                      deployed blob): clean, the merged text
 *                                      is deployed; not clean, the file is left
 *                                      alone, the text with conflict markers is
 *                                      written beside it (PATH.heimdal-merge)
 *                                      and 'heimdal resolve' settles it.
 *
 * A file never deployed here that already exists with other content is
 * skipped (--force overwrites it, keeping a backup).  A plan is made first,
 * touching nothing; only then apply_write() writes: every new content to a
 * temporary beside its target, one syncfs for the lot (git's batched fsync),
 * then the renames, so a crash leaves each target old or new.
 *
 * Every file is reached through its directory resolved beneath its root at
 * the moment of use (hm_beneath): $HOME's files, and the repository's, which
 * are read through no symlink at all.  Whether the file here is what the
 * record says is hm_drift's verdict, the one heimdal-drift reports.
 * Contents are streamed: the plan keeps checksums, not files, and the write
 * copies each file from the repository again, checking it is what the plan
 * saw; only the files a merge needs are held in memory.  The state is
 * written before the record: a crash between the two leaves record entries
 * that no longer match the state, which record_load drops (the file then
 * falls back to its checksum, without a base to merge against).
 */
#include "builtin.h"
#include "record.h"
#include "hm_beneath.h"
#include "hm_drift.h"
#include "hm_error.h"
#include "hm_opt.h"
#include "hm_file.h"
#include "hm_git.h"
#include "guard.h"
#include "hm_hash.h"
#include "hm_json.h"
#include "hm_lock.h"
#include "hm_machine.h"
#include "hm_state.h"
#include "hm_tempfile.h"
#include "hm_term.h"
#include "hm_time.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MERGE_SUFFIX ".heimdal-merge"

enum act {
	A_NEW,          /* target missing */
	A_UPDATE,       /* target unchanged since deployed, upstream changed */
	A_SAME,         /* already identical */
	A_MODE,         /* identical but for the executable bit, changed upstream */
	A_FORCE,        /* drifted, --force or resolve: backup then write */
	A_FORCE_LINK,   /* a symlink, --force: backup the link then replace it */
	A_MERGED,       /* changed on both sides, merged cleanly: backup then write */
	A_LOCAL,        /* changed here only: kept */
	A_ACCEPT,       /* resolve --ours: kept, upstream recorded as seen */
	A_CONFLICT,     /* changed on both sides, not merged: PATH.heimdal-merge */
	A_SKIP_DRIFT,   /* never deployed here, exists with other content: kept */
	A_SKIP_LINK,    /* a symlink: never written through */
	A_SKIP_OUTSIDE, /* its directory resolves outside $HOME */
	A_SKIP_OTHER,   /* a directory or other non-file */
	A_SKIP_BLOCKED, /* missing, but a file stands where its directory would be */
	A_SKIP_SOURCE,  /* the repository's file cannot be read */
	A_REMOVE,       /* gone from the repository, unchanged here: removed */
	A_KEEP,         /* gone from the repository, changed here: kept */
	A_GONE,         /* gone from both */
	A_UNTRACK,      /* now ignored by .heimdalignore: forgotten, left in $HOME */
	A_OTHER,        /* not among the paths asked for: untouched */
};

struct item {
	char *key, *target;
	const char *src; /* the repository's file, in its work tree (borrowed) */
	enum act act;
	unsigned mode;                /* the mode the write gives */
	unsigned repo_mode;           /* the repository's: 0644 or 0755 */
	size_t size;                  /* the repository's file: its size, */
	char sum[HM_HASH_HEX_MAX];    /* SHA-256 */
	char blob[GIT_OID_HEXSZ + 1]; /* and git blob id */
	char *link;                   /* a symlink's text, for its backup */
	char *merged;                 /* a merge's text (clean, or with conflict markers) */
	size_t merged_len;
	const char *wpath; /* where the write goes: target, or the .heimdal-merge beside it */
	int wsrc;          /* what it puts: the repository's file, */
	const char *wdata; /* or wdata[0..wlen) */
	size_t wlen;
	char *side;               /* target + MERGE_SUFFIX */
	char *side_done;          /* a .heimdal-merge the write settles: removed after */
	jv base;                  /* the record's entry (invalid when none) */
	char *tmp;                /* the temporary while it is in flight */
	struct hm_tempfile *temp; /* ...registered until it is renamed */
	char *backup;
};

struct plan {
	struct item *it;
	size_t n;
	const char *home;
	char *home_real, *work_real;
	int home_fd, work_fd;      /* the two roots everything is resolved beneath */
	struct hm_drift_root here; /* $HOME, as the drift verdict looks at it */
	struct hm_drift_dir here_dir;
	mode_t umask;
	git_repository *repo;
	const struct apply_opts *o;
	size_t skipped, conflicts;
};

#define APPLY_USAGE "heimdal apply [--force] [--dry-run] [--profile NAME] [PATH...]"

static _Noreturn void
usage(FILE *f, int code)
{
	fprintf(f,
		"usage: %s\n"
		"\n"
		"  -f, --force         overwrite drifted files and symlinks (a backup is kept)\n"
		"      --dry-run       print what would happen; write nothing\n"
		"  -p, --profile NAME  deploy profile NAME (and make it the active profile)\n"
		"  PATH...             only these files (relative to $HOME)\n",
		APPLY_USAGE);
	exit(code);
}

/* The actions that write a file (the target, or the merge beside it). */
static int
writes(enum act a)
{
	return a == A_NEW || a == A_UPDATE || a == A_FORCE || a == A_FORCE_LINK || a == A_MERGED ||
	       a == A_CONFLICT;
}

/* The actions that keep a backup of the target first. */
static int
backs_up(enum act a)
{
	return a == A_FORCE || a == A_FORCE_LINK || a == A_MERGED;
}

/*
 * Does the content of fd (the repository's file), whose SHA-256 is sha,
 * match checksum hex (SHA-256, or a legacy MD5)?  The file here is judged
 * by hm_drift_open instead.
 */
static int
matches(const char *hex, int fd, const char *sha)
{
	char md5[HM_HASH_HEX_MAX];

	switch (hm_hash_algo_of(hex)) {
	case HM_HASH_SHA256:
		return strcmp(hex, sha) == 0;
	case HM_HASH_MD5:
		return lseek(fd, 0, SEEK_SET) == 0 &&
		       hm_hash_fd(HM_HASH_MD5, fd, NULL, 0, 0, md5) == 0 && strcmp(hex, md5) == 0;
	default:
		return 0;
	}
}

/* The mode an update gives a file that has cur: its permissions, never looser,
 * with the executable bits following the repository's. */
static unsigned
update_mode(mode_t cur, unsigned repo_mode)
{
	unsigned m = cur & 0777;

	return repo_mode & 0111 ? m | ((m & 0444) >> 2) : m & ~0111u;
}

static int
is_binary(const char *buf, size_t len)
{
	return memchr(buf, '\0', len < 8000 ? len : 8000) != NULL;
}

/* All of fd, from its start: 0, or -1. */
static int
read_all(int fd, char **buf, size_t *len)
{
	return lseek(fd, 0, SEEK_SET) == 0 ? hm_read_fd(fd, buf, len) : -1;
}

/*
 * Changed on both sides: merge here (it->old) and upstream (it->data) on the
 * deployed content.  A_MERGED with the text, or A_CONFLICT (with the text and
 * its markers for a text file; nothing for a binary one or an unknown base).
 */
static void
merge_file(struct plan *p, struct item *it, int here, int up)
{
	git_merge_file_input anc = GIT_MERGE_FILE_INPUT_INIT, ours = GIT_MERGE_FILE_INPUT_INIT;
	git_merge_file_input theirs = GIT_MERGE_FILE_INPUT_INIT;
	git_merge_file_options opts = GIT_MERGE_FILE_OPTIONS_INIT;
	git_merge_file_result res = { 0 };
	char *base = NULL, *hbuf = NULL, *ubuf = NULL;
	size_t blen = 0, hlen = 0, ulen = 0;

	it->act = A_CONFLICT;
	it->wsrc = 0;
	if (record_blob(p->repo, it->base, &base, &blen) < 0 || is_binary(base, blen) ||
	    read_all(here, &hbuf, &hlen) < 0 || is_binary(hbuf, hlen) ||
	    read_all(up, &ubuf, &ulen) < 0 || is_binary(ubuf, ulen))
		goto out;
	anc.ptr = base, anc.size = blen, anc.path = it->key;
	ours.ptr = hbuf, ours.size = hlen, ours.path = it->key;
	theirs.ptr = ubuf, theirs.size = ulen, theirs.path = it->key;
	opts.ancestor_label = "deployed";
	opts.our_label = "here";
	opts.their_label = "upstream";
	if (git_merge_file(&res, &anc, &ours, &theirs, &opts) == 0) {
		it->merged = hm_xmalloc(res.len + 1);
		memcpy(it->merged, res.ptr, res.len);
		it->merged_len = res.len;
		if (res.automergeable)
			it->act = A_MERGED;
	}
	git_merge_file_result_free(&res);
out:
	free(base);
	free(hbuf);
	free(ubuf);
}

/* 1 when buf holds a line a merge marks conflicts with. */
static int
has_markers(const char *buf, size_t len)
{
	static const char *const marks[] = { "<<<<<<< ", "=======", ">>>>>>> " };

	for (size_t i = 0; i < len; i++) {
		if (i > 0 && buf[i - 1] != '\n')
			continue;
		for (int m = 0; m < 3; m++) {
			size_t ml = strlen(marks[m]);

			if (len - i >= ml && memcmp(buf + i, marks[m], ml) == 0 &&
			    (m != 1 || i + ml == len || buf[i + ml] == '\n'))
				return 1;
		}
	}
	return 0;
}

/* path (under $HOME) relative to it. */
static const char *
rel_of(const struct plan *p, const char *path)
{
	return path + strlen(p->home) + 1;
}

static int
exists_beneath(struct plan *p, const char *path)
{
	const char *base;
	struct stat st;
	int dfd = hm_beneath_parent(p->home_fd, p->home_real, rel_of(p, path), 0, &base), r;

	if (dfd < 0)
		return 0;
	r = fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0;
	close(dfd);
	return r;
}

/* resolve: the user's choice for a file in conflict (or any tracked file). */
static void
plan_take(struct plan *p, struct item *it)
{
	struct stat st;

	/* Only a file here can be settled; the others go as apply decided. */
	if (it->act != A_UPDATE && it->act != A_LOCAL && it->act != A_MERGED &&
	    it->act != A_CONFLICT && it->act != A_SKIP_DRIFT && it->act != A_MODE)
		return;
	it->wpath = it->target;
	switch (p->o->take) {
	case TAKE_THEIRS:
		it->act = A_FORCE;
		it->wsrc = 1;
		break;
	case TAKE_OURS:
		it->act = A_ACCEPT;
		break;
	case TAKE_MERGED:
		free(it->merged);
		it->merged = NULL;
		if (hm_beneath_read(p->home_fd, p->home_real, rel_of(p, it->side), &it->merged,
				    &it->merged_len, &st) < 0)
			hm_die(HM_EXIT_USAGE,
			       "%s: no merge to take (it is written when apply "
			       "cannot merge the file)",
			       it->side);
		if (has_markers(it->merged, it->merged_len))
			hm_die(HM_EXIT_FOUND,
			       "%s: still has conflict markers; edit it first, "
			       "or take a side with --ours or --theirs",
			       it->side);
		it->act = A_FORCE;
		it->wsrc = 0;
		it->wdata = it->merged, it->wlen = it->merged_len;
		break;
	default:
		return;
	}
	if (exists_beneath(p, it->side))
		it->side_done = hm_xstrdup(it->side);
}

/* A symlink's text (new buffer), or NULL. */
static char *
read_link(int dfd, const char *base)
{
	char link[PATH_MAX];
	ssize_t n = readlinkat(dfd, base, link, sizeof(link) - 1);

	return n < 0 ? NULL : hm_xasprintf("%.*s", (int)n, link);
}

/*
 * The file here at key, judged by the drift verdict against sum (the
 * record's checksum, NULL when none): heimdal-drift's rule, beneath $HOME.
 * A descriptor with st and cur (its SHA-256), *clean set when it has sum;
 * or -1 with it->act set to what applies to a file that is missing, a
 * link (never written through, whatever its content), outside $HOME, or
 * not a regular file.
 */
static int
open_here(struct plan *p, struct item *it, const char *sum, struct stat *st, char *cur, int *clean)
{
	struct hm_drift e;
	int fd;

	hm_drift_set(&e, it->key, strlen(it->key), sum, sum ? strlen(sum) : 0, NULL);
	fd = hm_drift_open(&p->here, &p->here_dir, &e, st, cur);
	if (e.link) {
		const char *slash = strrchr(it->key, '/');

		if (fd >= 0)
			close(fd);
		it->link = read_link(p->here_dir.fd, slash ? slash + 1 : it->key);
		it->act = p->o->force && it->link ? A_FORCE_LINK : A_SKIP_LINK;
		return -1;
	}
	if (fd < 0 && e.status == HM_DRIFT_MISSING)
		it->act = e.error == hm_drift_blocked ? A_SKIP_BLOCKED : A_NEW;
	else if (fd < 0)
		it->act = e.hostile || e.error == hm_drift_escapes ? A_SKIP_OUTSIDE : A_SKIP_OTHER;
	*clean = e.status == HM_DRIFT_CLEAN;
	return fd;
}

static void
plan_file(struct plan *p, struct item *it, const struct dotfile *f)
{
	const char *bsum = jv_is_valid(it->base) ? hm_json_str(it->base, "sha256") : NULL;
	const char *bmode = jv_is_valid(it->base) ? hm_json_str(it->base, "mode") : NULL;
	char cur_sum[HM_HASH_HEX_MAX];
	struct stat st;
	int up, here = -1, here_clean = 0;

	/* A new file gets the repository's mode under the umask, as git's checkout. */
	it->mode = f->mode & ~p->umask;
	it->repo_mode = f->mode;
	it->src = f->src;
	it->side = hm_xasprintf("%s%s", it->target, MERGE_SUFFIX);
	/* The repository's file itself: beneath its work tree, through no symlink. */
	up = hm_beneath_open(p->work_fd, NULL, f->src, &st);
	if (up < 0 || hm_hash_fd_blob(up, (size_t)st.st_size, it->sum, it->blob) < 0) {
		it->act = A_SKIP_SOURCE;
		goto out;
	}
	it->size = (size_t)st.st_size;
	it->wsrc = 1;
	if ((here = open_here(p, it, bsum, &st, cur_sum, &here_clean)) < 0)
		goto out;
	it->mode = update_mode(st.st_mode, f->mode);
	if (strcmp(cur_sum, it->sum) == 0) {
		int here_x = !!(st.st_mode & 0100), repo_x = !!(f->mode & 0100);
		int base_x = bmode && !strcmp(bmode, "100755");

		/* The same bytes: only the executable bit may differ, and it too is
		 * three-way when the mode deployed is known. */
		if (here_x == repo_x)
			it->act = A_SAME;
		else if (bmode && bsum && matches(bsum, up, it->sum) && here_x != base_x &&
			 repo_x == base_x)
			it->act = A_LOCAL;
		else
			it->act = A_MODE;
	} else if (!bsum) {
		it->act = p->o->force ? A_FORCE : A_SKIP_DRIFT;
	} else if (here_clean) {
		it->act = A_UPDATE;
	} else if (matches(bsum, up, it->sum)) {
		it->act = A_LOCAL;
	} else if (p->o->force) {
		it->act = A_FORCE;
	} else {
		merge_file(p, it, here, up);
		if (it->act == A_MERGED)
			it->wdata = it->merged, it->wlen = it->merged_len;
		else if (it->merged)
			it->wpath = it->side, it->wdata = it->merged, it->wlen = it->merged_len,
			it->mode = 0600;
	}
	if (p->o->take != TAKE_NONE)
		plan_take(p, it);
out:
	if (up >= 0)
		close(up);
	if (here >= 0)
		close(here);
}

/*
 * A file the last apply deployed that the repository no longer has: removed
 * when the drift verdict finds it clean, dropped from the record when it is
 * missing, kept otherwise (a link included).
 */
static void
plan_removed(struct plan *p, struct item *it)
{
	const char *old = hm_json_str(it->base, "sha256");
	struct stat st;
	char sum[HM_HASH_HEX_MAX];
	struct hm_drift e;
	int fd;

	if (!old) {
		it->act = A_KEEP;
		return;
	}
	hm_drift_set(&e, it->key, strlen(it->key), old, strlen(old), NULL);
	if ((fd = hm_drift_open(&p->here, &p->here_dir, &e, &st, sum)) >= 0)
		close(fd);
	it->act = e.link                         ? A_KEEP
		  : e.status == HM_DRIFT_MISSING ? A_GONE
		  : e.status == HM_DRIFT_CLEAN   ? A_REMOVE
						 : A_KEEP;
}

/* 1 when key is among the paths asked for (all when there are none). */
static int
wanted(const struct apply_opts *o, const char *key)
{
	if (!o->only)
		return 1;
	for (char *const *k = o->only; *k; k++)
		if (strcmp(*k, key) == 0)
			return 1;
	return 0;
}

static int
is_ignored(const struct dotfiles *d, const char *key)
{
	for (size_t i = 0; i < d->nignored; i++)
		if (strcmp(d->ignored[i], key) == 0)
			return 1;
	return 0;
}

static struct item *
new_item(struct plan *p, const char *key, jv files)
{
	struct item *it = &p->it[p->n++];

	it->key = hm_xstrdup(key);
	it->target = hm_path_join(p->home, key);
	it->wpath = it->target;
	it->base = jv_object_get(jv_copy(files), jv_string(key));
	return it;
}

static void
make_plan(struct plan *p, const struct dotfiles *d, jv files)
{
	size_t cap = d->n + jv_object_length(jv_copy(files)) + 1;

	p->it = calloc(cap, sizeof(*p->it));
	if (!p->it)
		hm_die(HM_EXIT_ENV, "out of memory");
	p->here = (struct hm_drift_root){ .fd = p->home_fd, .real = p->home_real };
	memset(&p->here_dir, 0, sizeof(p->here_dir));
	for (size_t i = 0; i < d->n; i++) {
		struct item *it = new_item(p, d->f[i].key, files);

		if (wanted(p->o, it->key))
			plan_file(p, it, &d->f[i]);
		else
			it->act = A_OTHER;
	}
	jv_object_foreach(files, k, v)
	{
		const char *key = jv_string_value(k);

		if (!porcelain_dotfiles_find(d, key) && hm_path_safe_relative(key, NULL)) {
			struct item *it = new_item(p, key, files);

			if (!wanted(p->o, key))
				it->act = A_OTHER;
			else if (is_ignored(d, key))
				it->act = A_UNTRACK;
			else
				plan_removed(p, it);
		}
		jv_free(k);
		jv_free(v);
	}
	hm_drift_dir_close(&p->here, &p->here_dir);
}

/* backups/files/<YYYYMMDD_HHMMSS>[_N] under $HEIMDAL_HOME, created. */
static char *
backup_dir(void)
{
	char *dir = porcelain_backup_name("backups/files", "", "");

	if (hm_mkdir_p(dir, 0700) < 0)
		exit(HM_EXIT_ENV);
	return dir;
}

static int
mkdir_parent(const char *path, mode_t mode)
{
	char *dir = hm_xstrdup(path);
	int r;

	*strrchr(dir, '/') = '\0';
	r = hm_mkdir_p(dir, mode);
	free(dir);
	return r;
}

/*
 * A batch of at most FEW files is made durable file by file (fsync each, then
 * each directory a rename changed), as git does; a larger one with one
 * syncfs(2) per filesystem before the renames and one after.  Either way a
 * crash leaves each target old or new.
 */
#define FEW 16

/*
 * The backup of it's target: a copy of the file here as it is now (read
 * beneath $HOME) at it->backup (which must not exist), mode 0600, fsync'd
 * when durable.  0, or -1 (errno set).
 */
static int
back_up(struct plan *p, struct item *it, int durable)
{
	char sum[HM_HASH_HEX_MAX];
	struct stat st;
	int from, to, r;

	if (it->act == A_FORCE_LINK)
		return symlink(it->link, it->backup);
	if ((from = hm_beneath_open(p->home_fd, p->home_real, it->key, &st)) < 0)
		return -1;
	to = open(it->backup, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	r = to < 0 || hm_hash_copy_fd(from, to, sum) < 0 || (durable && fsync(to) < 0) ? -1 : 0;
	close(from);
	if (to >= 0 && close(to) < 0)
		r = -1;
	return r;
}

/*
 * What the write puts into fd: the merged text, or the repository's file
 * copied from its work tree, which must still be what the plan saw.
 */
static int
put_content(struct plan *p, const struct item *it, int fd)
{
	char sum[HM_HASH_HEX_MAX];
	struct stat st;
	int from, r;

	if (!it->wsrc)
		return hm_write_all(fd, it->wdata, it->wlen);
	if ((from = hm_beneath_open(p->work_fd, NULL, it->src, &st)) < 0)
		return -1;
	r = hm_hash_copy_fd(from, fd, sum);
	close(from);
	if (r == 0 && strcmp(sum, it->sum) != 0) {
		errno = EAGAIN;
		r = -1;
	}
	return r;
}

/*
 * A new temporary ".NAME.heimdal-PID-TAG.XXXXXX" for it in the directory dfd
 * (its path's directory), with its content (put_content) and mode; fsync'd
 * when durable.  Its name goes to tmp (the template), its path to it->tmp,
 * and it is registered (hm_tempfile) from the moment it exists.  0, or -1
 * (errno set, nothing left).
 */
static int
write_new(struct plan *p, struct item *it, int dfd, char *tmp, int durable)
{
	const char *slash = strrchr(it->wpath, '/');
	char *dir = hm_xasprintf("%.*s", (int)(slash - it->wpath), it->wpath);
	int fd = hm_tempfile_mkstempat(dfd, tmp, dir, 0600, &it->temp);

	free(dir);
	if (fd < 0)
		return -1;
	it->tmp = hm_xasprintf("%.*s/%s", (int)(slash - it->wpath), it->wpath, tmp);
	if (fchmod(fd, it->mode) < 0 || put_content(p, it, fd) < 0 || (durable && fsync(fd) < 0)) {
		int e = errno;

		close(fd);
		unlinkat(dfd, tmp, 0);
		hm_tempfile_forget(it->temp);
		it->temp = NULL;
		free(it->tmp);
		it->tmp = NULL;
		errno = e;
		return -1;
	}
	return close(fd);
}

/*
 * The directory of path (under $HOME) resolved beneath $HOME at this moment
 * (hm_beneath), made when missing with make; *base gets the last component.
 * A descriptor, or -1 after printing why (a directory swapped for a link that
 * leaves $HOME since the plan is refused here).
 */
static int
dir_of(struct plan *p, const char *path, int make, const char **base)
{
	int fd =
		hm_beneath_parent(p->home_fd, p->home_real, rel_of(p, path), make ? 0755 : 0, base);

	if (fd < 0)
		hm_error("%s: %s", path,
			 errno == EXDEV ? "its directory now leads outside $HOME; not written"
					: strerror(errno));
	return fd;
}

/* fsync the directory of every path the write phase created, renamed or removed. */
static int
sync_dirs(struct plan *p)
{
	char *last = NULL;
	int r = 0;

	for (size_t i = 0; i < p->n && r == 0; i++) {
		const struct item *it = &p->it[i];
		const char *paths[] = { it->tmp ? it->wpath : NULL, it->backup,
					it->act == A_REMOVE ? it->target : NULL, it->side_done };

		for (size_t j = 0; j < 4 && r == 0; j++) {
			const char *slash = paths[j] ? strrchr(paths[j], '/') : NULL;

			if (!slash || (last && strlen(last) == (size_t)(slash - paths[j]) &&
				       strncmp(last, paths[j], (size_t)(slash - paths[j])) == 0))
				continue;
			r = hm_fsync_dir_of(paths[j]);
			free(last);
			last = hm_xasprintf("%.*s", (int)(slash - paths[j]), paths[j]);
		}
	}
	free(last);
	return r;
}

/* The number of files the write phase writes, renames, removes or chmods. */
static size_t
changes(const struct plan *p)
{
	size_t n = 0;

	for (size_t i = 0; i < p->n; i++) {
		enum act a = p->it[i].act;

		n += (writes(a) && (p->it[i].wsrc || p->it[i].wdata)) || a == A_MODE ||
		     a == A_REMOVE || p->it[i].side_done;
	}
	return n;
}

static int
sync_fs_of(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r;

	if (fd < 0)
		return hm_error_errno("%s", dir);
	r = syncfs(fd);
	close(fd);
	return r < 0 ? hm_error_errno("%s: syncfs", dir) : 0;
}

/* One syncfs per filesystem: $HOME, and $HEIMDAL_HOME when it lives elsewhere. */
static int
sync_all(struct plan *p)
{
	struct stat a, b;

	if (sync_fs_of(p->home) < 0)
		return -1;
	if (stat(p->home, &a) == 0 && stat(hm_home(), &b) == 0 && a.st_dev != b.st_dev)
		return sync_fs_of(hm_home());
	return 0;
}

static void
progress(size_t i, size_t n, const struct timespec *t0, int *shown)
{
	struct timespec now;

	if ((i & 63) != 0 || !isatty(2))
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec - t0->tv_sec < 1 && !*shown)
		return;
	fprintf(stderr, "\rApplying dotfiles: %zu/%zu", i, n);
	*shown = 1;
}

/*
 * An item's change made visible, through its directory resolved beneath
 * $HOME again (never a path walked twice): the temporary renamed over the
 * target, the mode set, the file removed, a settled merge file removed.
 */
static int
finish(struct plan *p, struct item *it)
{
	const char *base, *tbase;
	int dfd, fd, r = 0;

	if (!it->tmp && it->act != A_MODE && it->act != A_REMOVE && !it->side_done)
		return 0;
	if ((dfd = dir_of(p, it->tmp ? it->wpath : it->target, 0, &base)) < 0)
		return -1;
	if (it->tmp) {
		tbase = strrchr(it->tmp, '/') + 1;
		if (renameat(dfd, tbase, dfd, base) < 0)
			r = hm_error_errno("%s: cannot rename into place", it->wpath);
		else
			hm_tempfile_forget(it->temp);
		if (r == 0)
			it->temp = NULL;
	}
	if (r == 0 && it->act == A_MODE) {
		fd = openat(dfd, base, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0 || fchmod(fd, it->mode) < 0)
			r = hm_error_errno("%s: cannot set its mode", it->target);
		if (fd >= 0)
			close(fd);
	}
	if (r == 0 && it->act == A_REMOVE && unlinkat(dfd, base, 0) < 0 && errno != ENOENT)
		r = hm_error_errno("%s: cannot remove", it->target);
	if (r == 0 && it->side_done) {
		const char *sbase = strrchr(it->side_done, '/') + 1;

		if (unlinkat(dfd, sbase, 0) < 0 && errno != ENOENT)
			hm_warn("%s: cannot remove: %s", it->side_done, strerror(errno));
	}
	close(dfd);
	return r;
}

/*
 * The write phase, the only part that changes $HOME: backups, temporaries,
 * one sync, renames, one sync.  Returns 0, or -1 with every temporary removed
 * and no target touched when it fails before the renames.
 */
static int
apply_write(struct plan *p)
{
	struct timespec t0;
	char *bdir = NULL;
	size_t n = changes(p);
	int shown = 0, few = n <= FEW;

	if (n == 0)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (size_t i = 0; i < p->n; i++) {
		struct item *it = &p->it[i];

		if (!backs_up(it->act))
			continue;
		if (!bdir)
			bdir = backup_dir();
		it->backup = hm_path_join(bdir, it->key);
		if (mkdir_parent(it->backup, 0700) < 0)
			goto fail;
		if (back_up(p, it, few) < 0) {
			hm_error_errno("%s: cannot back up to %s", it->target, it->backup);
			goto fail;
		}
	}
	for (size_t i = 0; i < p->n; i++) {
		struct item *it = &p->it[i];
		const char *base;
		char *name;
		int dfd;

		progress(i, p->n, &t0, &shown);
		if (!writes(it->act) || (!it->wsrc && !it->wdata))
			continue;
		if ((dfd = dir_of(p, it->wpath, 1, &base)) < 0)
			goto fail;
		{
			char *dotted = hm_xasprintf(".%s", base);

			name = hm_file_temp_template(dotted);
			free(dotted);
		}
		if (write_new(p, it, dfd, name, few) < 0) {
			if (errno == EAGAIN)
				hm_error("%s: the repository's file changed while it was applied; "
					 "nothing written, run the command again",
					 it->src);
			else
				hm_error_errno("%s: cannot write", it->wpath);
			free(name);
			close(dfd);
			goto fail;
		}
		close(dfd);
		free(name);
	}
	/* Every new content durable before any target changes. */
	if (few ? sync_dirs(p) < 0 : sync_all(p) < 0)
		goto fail;
	for (size_t i = 0; i < p->n; i++) {
		struct item *it = &p->it[i];

		progress(i, p->n, &t0, &shown);
		if (finish(p, it) < 0)
			goto fail;
	}
	if (shown)
		fprintf(stderr, "\rApplying dotfiles: %zu/%zu\n", p->n, p->n);
	free(bdir);
	/* The renames themselves, durable before the state says they happened. */
	return few ? sync_dirs(p) : sync_all(p);
fail:
	for (size_t i = 0; i < p->n; i++) {
		hm_tempfile_remove(p->it[i].temp);
		p->it[i].temp = NULL;
	}
	free(bdir);
	return hm_fail(HM_EXIT_ENV);
}

static const char *
skip_reason(enum act a)
{
	switch (a) {
	case A_SKIP_DRIFT:
		return "exists here and was never deployed by heimdal; skipped (--force "
		       "overwrites it, keeping a backup)";
	case A_SKIP_LINK:
		return "is a symlink; not written through, skipped (--force replaces the link, "
		       "keeping a backup)";
	case A_SKIP_OUTSIDE:
		return "its directory resolves outside $HOME; skipped";
	case A_SKIP_OTHER:
		return "is not a regular file; skipped";
	case A_SKIP_BLOCKED:
		return "is missing, and a file stands where its directory would be; skipped";
	case A_SKIP_SOURCE:
		return "cannot be read from the repository; skipped";
	default:
		return NULL;
	}
}

/* The files that could not be merged, and the commands that settle them. */
static void
report_conflicts(struct plan *p)
{
	printf("\n%s %zu file(s) changed both here and upstream could not be merged:\n",
	       hm_mark(HM_MARK_ERR), p->conflicts);
	for (size_t i = 0; i < p->n; i++) {
		struct item *it = &p->it[i];

		if (it->act != A_CONFLICT)
			continue;
		if (it->merged)
			printf("  %s %s: both sides in %s\n", hm_mark(HM_MARK_BULLET), it->key,
			       it->side);
		else
			printf("  %s %s: cannot be merged line by line; take a side\n",
			       hm_mark(HM_MARK_BULLET), it->key);
	}
	printf("Settle each file with one of (a backup of this machine's file is kept):\n"
	       "  heimdal resolve --merged PATH   take PATH%s once its markers are edited out\n"
	       "  heimdal resolve --ours PATH     keep this machine's file ('heimdal commit' "
	       "shares it)\n"
	       "  heimdal resolve --theirs PATH   take the upstream file\n",
	       MERGE_SUFFIX);
}

/* What happened (or would), one line per change, and the counts. */
static void
report(struct plan *p, const char *repo, const char *profile)
{
	size_t c_new = 0, c_upd = 0, c_same = 0, c_rm = 0;
	int dry = p->o->dry_run;

	printf("%s dotfiles from %s (profile: %s)...\n", dry ? "Dry run: applying" : "Applying",
	       repo, profile && *profile ? profile : "none");
	for (size_t i = 0; i < p->n; i++) {
		struct item *it = &p->it[i];
		const char *why = skip_reason(it->act);

		switch (it->act) {
		case A_NEW:
			printf("  new       %s\n", it->key);
			c_new++;
			break;
		case A_UPDATE:
			printf("  updated   %s\n", it->key);
			c_upd++;
			break;
		case A_MODE:
			printf("  mode      %s\n", it->key);
			c_upd++;
			break;
		case A_MERGED:
			printf("  merged    %s (your edit and the upstream one; 'heimdal commit' "
			       "shares it)\n",
			       it->key);
			c_upd++;
			break;
		case A_FORCE:
		case A_FORCE_LINK:
			if (it->backup)
				printf("  replaced  %s (backup: %s)\n", it->key, it->backup);
			else
				printf("  replaced  %s (a backup would be kept)\n", it->key);
			c_upd++;
			break;
		case A_ACCEPT:
			printf("  kept      %s (this machine's version; 'heimdal commit' shares "
			       "it)\n",
			       it->key);
			break;
		case A_LOCAL:
			printf("  kept      %s (changed here; 'heimdal commit' shares it)\n",
			       it->key);
			break;
		case A_CONFLICT:
			printf("  conflict  %s (changed here and upstream)\n", it->key);
			break;
		case A_SAME:
			c_same++;
			break;
		case A_REMOVE:
			printf("  removed   %s\n", it->key);
			c_rm++;
			break;
		case A_KEEP:
			printf("  kept      %s (no longer in the repository, but changed here)\n",
			       it->key);
			break;
		case A_UNTRACK:
			printf("  untracked %s (no longer tracked; left in $HOME)\n", it->key);
			break;
		case A_GONE:
		case A_OTHER:
			break;
		default:
			hm_warn("%s: %s", it->key, why);
			p->skipped++;
			break;
		}
	}
	printf("%zu new, %zu updated, %zu unchanged, %zu removed, %zu skipped%s\n", c_new, c_upd,
	       c_same, c_rm, p->skipped, dry ? " (dry run: nothing was written)" : "");
	if (p->conflicts)
		report_conflicts(p);
}

/* The plan as data: [{"path", "action"}] for every file apply would act on. */
static jv
preview(struct plan *p)
{
	static const char *const names[] = {
		[A_NEW] = "new",
		[A_UPDATE] = "update",
		[A_MODE] = "mode",
		[A_FORCE] = "replace",
		[A_FORCE_LINK] = "replace",
		[A_MERGED] = "merge",
		[A_LOCAL] = "changed_here",
		[A_ACCEPT] = "changed_here",
		[A_CONFLICT] = "conflict",
		[A_SKIP_DRIFT] = "skip",
		[A_SKIP_LINK] = "skip",
		[A_SKIP_OUTSIDE] = "skip",
		[A_SKIP_OTHER] = "skip",
		[A_SKIP_BLOCKED] = "skip",
		[A_SKIP_SOURCE] = "skip",
		[A_REMOVE] = "remove",
		[A_KEEP] = "changed_here",
		[A_UNTRACK] = "untrack",
	};
	jv out = jv_array();

	for (size_t i = 0; i < p->n; i++) {
		struct item *it = &p->it[i];
		const char *why = skip_reason(it->act);
		jv e;

		if (it->act == A_SAME || it->act == A_GONE || it->act == A_OTHER)
			continue;
		e = JV_OBJECT(jv_string("path"), jv_string(it->key), jv_string("action"),
			      jv_string(names[it->act]));
		if (why)
			e = jv_object_set(e, jv_string("reason"), jv_string(why));
		out = jv_array_append(out, e);
	}
	return out;
}

/* Does the record keep the repository's content for it (new_record)? */
static int
records_upstream(enum act a)
{
	return a == A_NEW || a == A_UPDATE || a == A_SAME || a == A_MODE || a == A_FORCE ||
	       a == A_FORCE_LINK || a == A_MERGED || a == A_ACCEPT;
}

/*
 * Every blob the new record names kept in the repository's object database
 * (the base of the next three-way decision): a file edited in the work tree
 * and not committed has none yet; it is streamed in.  0, or -1 (printed).
 */
static int
keep_blobs(struct plan *p)
{
	char buf[65536];
	git_odb *odb;
	int r = 0;

	if (git_repository_odb(&odb, p->repo) < 0)
		return hm_error("%s: %s", git_repository_path(p->repo), git_error_last()->message);
	for (size_t i = 0; i < p->n && r == 0; i++) {
		struct item *it = &p->it[i];
		git_odb_stream *ws = NULL;
		git_oid id, got;
		struct stat st;
		ssize_t n = 0;
		int fd;

		if (!records_upstream(it->act) || git_oid_fromstr(&id, it->blob) < 0 ||
		    git_odb_exists(odb, &id))
			continue;
		if ((fd = hm_beneath_open(p->work_fd, NULL, it->src, &st)) < 0)
			r = hm_error_errno("%s", it->src);
		else if (git_odb_open_wstream(&ws, odb, it->size, GIT_OBJECT_BLOB) < 0)
			r = -1;
		while (r == 0 && (n = read(fd, buf, sizeof(buf))) != 0)
			if ((n < 0 && errno != EINTR) ||
			    (n > 0 && git_odb_stream_write(ws, buf, (size_t)n) < 0))
				r = -1;
		if (r == 0 &&
		    (git_odb_stream_finalize_write(&got, ws) < 0 || !git_oid_equal(&id, &got)))
			r = -1;
		if (r < 0 && fd >= 0)
			hm_error("%s: cannot keep a deployed file's content: %s", it->src,
				 git_error_last() ? git_error_last()->message
						  : "it changed while it was read");
		git_odb_stream_free(ws);
		if (fd >= 0)
			close(fd);
	}
	git_odb_free(odb);
	return r;
}

/*
 * The record after the apply: what was deployed, with the repository's
 * content as the base (after a merge too: the merged text holds this
 * machine's edit on top of it, which commit then carries up).
 */
static jv
new_record(struct plan *p, jv old, const char *head)
{
	jv files = jv_object();

	for (size_t i = 0; i < p->n; i++) {
		struct item *it = &p->it[i];

		if (records_upstream(it->act))
			files = jv_object_set(files, jv_string(it->key),
					      record_entry_of(it->blob, it->sum, it->repo_mode));
		else if (it->act != A_REMOVE && it->act != A_KEEP && it->act != A_GONE &&
			 it->act != A_UNTRACK && jv_is_valid(it->base))
			files = jv_object_set(files, jv_string(it->key), jv_copy(it->base));
	}
	jv_free(old);
	return JV_OBJECT(jv_string("version"), jv_number(1), jv_string("commit"),
			 head ? jv_string(head) : jv_null(), jv_string("files"), files);
}

/* What a plan holds: its items, the directories it opened. */
static void
plan_free(struct plan *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->it[i].key);
		free(p->it[i].target);
		free(p->it[i].link);
		free(p->it[i].merged);
		free(p->it[i].side);
		free(p->it[i].side_done);
		free(p->it[i].tmp);
		free(p->it[i].backup);
		jv_free(p->it[i].base);
	}
	free(p->it);
	close(p->home_fd);
	close(p->work_fd);
	free(p->home_real);
	free(p->work_real);
}

/*
 * An apply killed midway leaves its temporaries (.NAME.heimdal-PID-TAG.XXXXXX,
 * hm_file_temp_template) beside the targets: the apply that broke into its
 * lock removes those of that lock whose maker is dead.
 */
static void
clear_dead_temps(const struct plan *p)
{
	time_t since, until;
	char *last = NULL;

	if (!hm_lock_broken_window(&since, &until))
		return;
	for (size_t i = 0; i < p->n; i++) {
		const char *t = p->it[i].target, *slash = strrchr(t, '/');
		char *dir = hm_xasprintf("%.*s", (int)(slash - t), t);

		if (last && strcmp(dir, last) == 0) {
			free(dir);
			continue;
		}
		if (hm_file_remove_dead_temps(dir, 0, NULL, hm_lock_broken_tag()) < 0)
			exit(hm_last_code());
		free(last);
		last = dir;
	}
	free(last);
}

int
apply_run(git_repository *repo, jv *statep, const struct apply_opts *o)
{
	struct plan p = { 0 };
	struct dotfiles d;
	const char *profile = o->profile;
	char *dir, head[41], now[32];
	int have_head;
	jv state = *statep, record, files;

	p.o = o;
	p.repo = repo;
	p.umask = umask(0);
	umask(p.umask);
	/* A copy: the state is replaced below. */
	profile = hm_xstrdup(profile ? profile
			     : hm_json_str(state, "active_profile")
				     ? hm_json_str(state, "active_profile")
				     : "");
	if (!(p.home = getenv("HOME")) || !(p.home_real = realpath(p.home, NULL)))
		hm_die(HM_EXIT_ENV, "HOME is not set or does not exist");
	dir = porcelain_dotfiles_dir(state);
	if (porcelain_dotfiles_list(repo, profile, &d) < 0)
		exit(hm_last_code());
	if (!(p.work_real = realpath(d.workdir, NULL)))
		hm_die_errno(HM_EXIT_ENV, "%s", d.workdir);
	if ((p.home_fd = open(p.home_real, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		hm_die_errno(HM_EXIT_ENV, "%s", p.home_real);
	if ((p.work_fd = open(p.work_real, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		hm_die_errno(HM_EXIT_ENV, "%s", p.work_real);
	for (char *const *k = o->only; k && *k; k++)
		if (!porcelain_dotfiles_find(&d, *k))
			hm_die(HM_EXIT_USAGE, "%s: not a file the repository deploys", *k);
	have_head = hm_git_head(repo, head) == 0;
	record = record_load(state);
	files = jv_object_get(jv_copy(record), jv_string("files"));
	make_plan(&p, &d, files);
	for (size_t i = 0; i < p.n; i++)
		p.conflicts += p.it[i].act == A_CONFLICT;
	if (o->preview) {
		*o->preview = preview(&p);
		jv_free(record);
	} else if (o->dry_run) {
		report(&p, dir, profile);
		jv_free(record);
	} else {
		clear_dead_temps(&p);
		if (keep_blobs(&p) < 0)
			exit(HM_EXIT_ENV);
		record = new_record(&p, record, have_head ? head : NULL);
		/* The new state first, so a failed bump leaves everything as it was. */
		state = jv_object_set(state, jv_string("checksums"), record_checksums(record));
		state = jv_object_set(state, jv_string("last_apply"),
				      jv_string(hm_time_now_rfc3339(now)));
		if (*profile)
			state = jv_object_set(state, jv_string("active_profile"),
					      jv_string(profile));
		state = porcelain_bump(state, o->op ? o->op : "apply", have_head ? head : NULL);
		if (apply_write(&p) < 0)
			exit(hm_last_code());
		porcelain_state_save(jv_copy(state));
		record_save(record);
		report(&p, dir, profile);
	}
	jv_free(files);
	*statep = state;
	plan_free(&p);
	free((char *)profile);
	free(dir);
	porcelain_dotfiles_free(&d);
	return p.skipped || p.conflicts ? HM_EXIT_FOUND : HM_EXIT_OK;
}

/* The profile name of --profile, or exit 2. */
static const char *
profile_arg(const char *s)
{
	if (!*s || strchr(s, '/') || !strcmp(s, "..") || !strcmp(s, "."))
		hm_die(HM_EXIT_USAGE, "--profile: not a profile name: '%s'", s);
	return s;
}

/* Open the repository of state (borrowed) for apply or resolve; exits. */
static git_repository *
open_repo(jv state)
{
	char *dir = porcelain_dotfiles_dir(state);
	git_repository *repo;

	if (!(repo = hm_git_open(dir)) || porcelain_repo_recover(repo, dir) < 0)
		exit(hm_last_code());
	free(dir);
	return repo;
}

/*
 * apply_run as command op (apply or resolve), under the state lock taken
 * with lock_flags (none for a dry run, as the spec's flow says); keys
 * (consumed) are o's paths.
 */
static int
apply_command(const char *op, int lock_flags, struct apply_opts *o, char **keys)
{
	GUARD guard = GUARD_INIT;
	git_repository *repo;
	jv state;
	int r;

	if (guard_acquire(&guard, op, lock_flags | (o->dry_run ? GUARD_DRY_RUN : 0)) < 0)
		return hm_last_code();
	state = porcelain_state_load();
	if (!o->dry_run)
		porcelain_need_tool("lineage", "record it in the state's lineage");
	repo = open_repo(state);
	r = apply_run(repo, &state, o);
	jv_free(state);
	porcelain_keys_free(keys);
	git_repository_free(repo);
	return r;
}

int
cmd_apply(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "force", no_argument, NULL, 'f' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "profile", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct apply_opts o = { 0 };
	char **keys;
	int c;

	while ((c = hm_opt_next(argc, argv, "fp:h", opts, APPLY_USAGE)) != -1) {
		switch (c) {
		case 'f':
			o.force = 1;
			break;
		case 'n':
			o.dry_run = 1;
			break;
		case 'p':
			o.profile = profile_arg(optarg);
			break;
		case 'h':
			usage(stdout, 0);
		}
	}
	o.only = keys = porcelain_path_keys(argc - optind, argv + optind);
	return apply_command("apply", 0, &o, keys);
}

#define RESOLVE_USAGE "heimdal resolve (--merged | --ours | --theirs) PATH..."

static _Noreturn void
resolve_usage(FILE *f, int code)
{
	fprintf(f,
		"usage: " RESOLVE_USAGE "\n"
		"\n"
		"Settle a file that changed both here and upstream and could not be merged.\n"
		"A backup of this machine's file is kept.\n"
		"\n"
		"  --merged   take PATH" MERGE_SUFFIX " once its conflict markers are edited out\n"
		"  --ours     keep this machine's file ('heimdal commit' then shares it)\n"
		"  --theirs   take the upstream file\n");
	exit(code);
}

int
cmd_resolve(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "merged", no_argument, NULL, 'm' },
		{ "ours", no_argument, NULL, 'o' },
		{ "theirs", no_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct apply_opts o = { .op = "resolve" };
	char **keys;
	int c;

	while ((c = hm_opt_next(argc, argv, "h", opts, RESOLVE_USAGE)) != -1) {
		enum apply_take t = c == 'm' ? TAKE_MERGED : c == 'o' ? TAKE_OURS : TAKE_THEIRS;

		switch (c) {
		case 'm':
		case 'o':
		case 't':
			if (o.take != TAKE_NONE && o.take != t)
				hm_opt_die(RESOLVE_USAGE,
					   "--merged, --ours and --theirs exclude each other");
			o.take = t;
			break;
		case 'h':
			resolve_usage(stdout, 0);
		}
	}
	if (o.take == TAKE_NONE)
		hm_opt_die(RESOLVE_USAGE, "say which side to take: --merged, --ours or --theirs");
	if (!(o.only = keys = porcelain_path_keys(argc - optind, argv + optind)))
		hm_opt_die(RESOLVE_USAGE, "name the file(s) to settle");
	return apply_command("resolve", GUARD_SETTLES, &o, keys);
}
