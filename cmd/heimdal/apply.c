/*
 * apply.c - `heimdal apply [--force] [--dry-run] [--profile NAME]`: deploy
 * the dotfiles repository into $HOME.
 *
 * A plan is made first, touching nothing: each tracked file is new, an
 * update of a target unchanged since the last apply, already identical, or
 * skipped (the target drifted, is a symlink, or lies outside $HOME).  Only
 * then apply_write() writes: every new content to a temporary beside its
 * target, one syncfs for the lot (git's batched fsync), then the renames, so
 * a crash leaves each target old or new.  The user's edits are never
 * overwritten without --force, and --force keeps a backup first.
 */
#include "builtin.h"
#include "hm_error.h"
#include "hm_file.h"
#include "hm_git.h"
#include "hm_guard.h"
#include "hm_hash.h"
#include "hm_json.h"
#include "hm_lock.h"
#include "hm_machine.h"
#include "hm_state.h"
#include "hm_time.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum act {
	A_NEW,          /* target missing */
	A_UPDATE,       /* target unchanged since the last apply */
	A_SAME,         /* already identical */
	A_MODE,         /* identical but for the executable bit */
	A_FORCE,        /* drifted, --force: backup then write */
	A_FORCE_LINK,   /* a symlink, --force: backup the link then replace it */
	A_SKIP_DRIFT,   /* drifted: kept */
	A_SKIP_LINK,    /* a symlink: never written through */
	A_SKIP_OUTSIDE, /* its directory resolves outside $HOME */
	A_SKIP_OTHER,   /* a directory or other non-file */
	A_SKIP_SOURCE,  /* the repository's file cannot be read */
	A_REMOVE,       /* gone from the repository, unchanged here: removed */
	A_KEEP,         /* gone from the repository, changed here: kept */
	A_GONE,         /* gone from both */
};

struct item {
	char *key, *target;
	enum act act;
	unsigned mode;
	char *data;     /* the new content */
	size_t len;
	char *old;      /* the target's content (or a link's target), for the backup */
	size_t old_len;
	char sum[HM_HASH_HEX_MAX]; /* SHA-256 of data */
	char *tmp;      /* the temporary while it is in flight */
	char *backup;
};

struct plan {
	struct item *it;
	size_t n;
	const char *home;
	char *home_real;
	int force, dry_run;
	size_t skipped;
};

static _Noreturn void
usage(FILE *f, int code)
{
	fprintf(f, "usage: heimdal apply [--force] [--dry-run] [--profile NAME]\n"
		   "\n"
		   "  -f, --force         overwrite drifted files and symlinks (a backup is kept)\n"
		   "  -n, --dry-run       print what would happen; write nothing\n"
		   "  -p, --profile NAME  deploy profile NAME (and make it the active profile)\n");
	exit(code);
}

/* Temporaries in flight, removed if the process is interrupted or fails. */
static char **temps;
static volatile size_t ntemps;

static void
remove_temps(void)
{
	for (size_t i = 0; i < ntemps; i++)
		if (temps[i])
			unlink(temps[i]);
	ntemps = 0;
}

static void
on_signal(int sig)
{
	remove_temps();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* 1 when the deepest existing directory above target resolves inside $HOME. */
static int
parent_inside(struct plan *p, const char *target)
{
	char dir[PATH_MAX], real[PATH_MAX];
	size_t hl = strlen(p->home_real);

	snprintf(dir, sizeof(dir), "%s", target);
	for (;;) {
		char *slash = strrchr(dir, '/');

		if (!slash || slash == dir)
			return 0;
		*slash = '\0';
		if (realpath(dir, real))
			break;
		if (errno != ENOENT)
			return 0;
	}
	return strncmp(real, p->home_real, hl) == 0 && (real[hl] == '\0' || real[hl] == '/');
}

/* Does content match checksum hex (SHA-256, or a legacy MD5)? */
static int
matches(const char *hex, const char *buf, size_t len, const char *sha)
{
	char md5[HM_HASH_HEX_MAX];

	switch (hm_hash_algo_of(hex)) {
	case HM_HASH_SHA256:
		return strcmp(hex, sha) == 0;
	case HM_HASH_MD5:
		return hm_hash_buf(HM_HASH_MD5, buf, len, md5) == 0 && strcmp(hex, md5) == 0;
	default:
		return 0;
	}
}

/* Read a regular file without following a final symlink. */
static int
read_nofollow(const char *path, char **buf, size_t *len)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	int r;

	if (fd < 0)
		return -1;
	r = hm_read_fd(fd, buf, len);
	close(fd);
	return r;
}

static void
plan_file(struct plan *p, struct item *it, const struct dotfile *f, const char *workdir,
	  const char *old)
{
	char *src = hm_path_join(workdir, f->src), cur_sum[HM_HASH_HEX_MAX];
	struct stat st;

	it->mode = f->mode;
	if (hm_file_read(src, &it->data, &it->len) < 0 ||
	    hm_hash_buf(HM_HASH_SHA256, it->data, it->len, it->sum) < 0) {
		it->act = A_SKIP_SOURCE;
		free(src);
		return;
	}
	free(src);
	if (!parent_inside(p, it->target)) {
		it->act = A_SKIP_OUTSIDE;
		return;
	}
	if (lstat(it->target, &st) < 0) {
		it->act = errno == ENOENT ? A_NEW : A_SKIP_OTHER;
		return;
	}
	if (S_ISLNK(st.st_mode)) {
		char link[PATH_MAX];
		ssize_t n = readlink(it->target, link, sizeof(link) - 1);

		it->act = p->force && n >= 0 ? A_FORCE_LINK : A_SKIP_LINK;
		if (n >= 0) {
			it->old = hm_xmalloc(n + 1);
			memcpy(it->old, link, n);
			it->old[n] = '\0';
			it->old_len = n;
		}
		return;
	}
	if (!S_ISREG(st.st_mode) || read_nofollow(it->target, &it->old, &it->old_len) < 0 ||
	    hm_hash_buf(HM_HASH_SHA256, it->old, it->old_len, cur_sum) < 0) {
		it->act = A_SKIP_OTHER;
		return;
	}
	if (strcmp(cur_sum, it->sum) == 0)
		it->act = (st.st_mode & 0111) == (f->mode & 0111) ? A_SAME : A_MODE;
	else if (old && matches(old, it->old, it->old_len, cur_sum))
		it->act = A_UPDATE;
	else
		it->act = p->force ? A_FORCE : A_SKIP_DRIFT;
	if (it->act != A_FORCE) {
		free(it->old);
		it->old = NULL;
	}
}

/* A file the last apply deployed that the repository no longer has. */
static void
plan_removed(struct plan *p, struct item *it, const char *old)
{
	struct stat st;
	char *buf, sum[HM_HASH_HEX_MAX];
	size_t len;

	if (!parent_inside(p, it->target)) {
		it->act = A_KEEP;
		return;
	}
	if (lstat(it->target, &st) < 0) {
		it->act = A_GONE;
		return;
	}
	if (!S_ISREG(st.st_mode) || read_nofollow(it->target, &buf, &len) < 0) {
		it->act = A_KEEP;
		return;
	}
	it->act = hm_hash_buf(HM_HASH_SHA256, buf, len, sum) == 0 && matches(old, buf, len, sum)
			  ? A_REMOVE
			  : A_KEEP;
	free(buf);
}

static void
make_plan(struct plan *p, const struct dotfiles *d, jv sums)
{
	size_t cap = d->n + jv_object_length(jv_copy(sums)) + 1;

	p->it = calloc(cap, sizeof(*p->it));
	if (!p->it)
		hm_die(HM_EXIT_ENV, "out of memory");
	for (size_t i = 0; i < d->n; i++) {
		struct item *it = &p->it[p->n++];

		it->key = hm_xstrdup(d->f[i].key);
		it->target = hm_path_join(p->home, it->key);
		plan_file(p, it, &d->f[i], d->workdir, hm_json_str(sums, it->key));
	}
	jv_object_foreach(sums, k, v) {
		const char *key = jv_string_value(k);

		if (!porcelain_dotfiles_find(d, key) && hm_path_safe_relative(key, NULL)) {
			struct item *it = &p->it[p->n++];

			it->key = hm_xstrdup(key);
			it->target = hm_path_join(p->home, key);
			plan_removed(p, it, jv_string_value(v));
		}
		jv_free(k);
		jv_free(v);
	}
}

/* backups/files/<YYYYMMDD_HHMMSS>[_N] under $HEIMDAL_HOME, created. */
static char *
backup_dir(void)
{
	char stamp[32], *base = hm_home_path("backups/files"), *dir;
	time_t now = hm_time_now();
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%d_%H%M%S", &tm);
	dir = hm_xasprintf("%s/%s", base, stamp);
	for (int i = 1; hm_file_exists(dir); i++) {
		free(dir);
		dir = hm_xasprintf("%s/%s_%d", base, stamp, i);
	}
	free(base);
	if (hm_mkdir_p(dir, 0700) < 0)
		exit(HM_EXIT_ENV);
	return dir;
}

static int
write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		buf += n;
		len -= n;
	}
	return 0;
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

/* A new file at path (which must not exist) with buf; no fsync, the batch syncs. */
static int
write_exact(const char *path, const char *buf, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);

	if (fd < 0)
		return -1;
	if (write_all(fd, buf, len) < 0) {
		close(fd);
		return -1;
	}
	return close(fd);
}

/* Create path's file with buf, mode, no fsync (the batch syncs).  0 or -1. */
static int
write_new(char *path_template, const char *buf, size_t len, mode_t mode)
{
	int fd = mkostemp(path_template, O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (fchmod(fd, mode) < 0 || write_all(fd, buf, len) < 0) {
		close(fd);
		unlink(path_template);
		return -1;
	}
	return close(fd);
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
 * The write phase, the only part that changes $HOME: backups, temporaries,
 * one sync, renames, one sync.  Returns 0, or -1 with every temporary removed
 * and no target touched when it fails before the renames.
 */
static int
apply_write(struct plan *p)
{
	struct sigaction sa = { .sa_handler = on_signal };
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	struct timespec t0;
	char *bdir = NULL;
	int shown = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	temps = calloc(p->n + 1, sizeof(*temps));
	if (!temps)
		return hm_error("out of memory");
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
	atexit(remove_temps);
	for (size_t i = 0; i < p->n; i++) {
		struct item *it = &p->it[i];

		if (it->act != A_FORCE && it->act != A_FORCE_LINK)
			continue;
		if (!bdir)
			bdir = backup_dir();
		it->backup = hm_path_join(bdir, it->key);
		if (mkdir_parent(it->backup, 0700) < 0)
			goto fail;
		if (it->act == A_FORCE_LINK ? symlink(it->old, it->backup)
					    : write_exact(it->backup, it->old, it->old_len, 0600)) {
			hm_error_errno("%s: cannot back up to %s", it->target, it->backup);
			goto fail;
		}
	}
	for (size_t i = 0; i < p->n; i++) {
		struct item *it = &p->it[i];
		char *slash;

		progress(i, p->n, &t0, &shown);
		if (it->act != A_NEW && it->act != A_UPDATE && it->act != A_FORCE &&
		    it->act != A_FORCE_LINK)
			continue;
		if (mkdir_parent(it->target, 0755) < 0)
			goto fail;
		slash = strrchr(it->target, '/');
		it->tmp = hm_xasprintf("%.*s/.%s.heimdal-XXXXXX", (int)(slash - it->target),
				       it->target, slash + 1);
		temps[ntemps++] = it->tmp;
		if (write_new(it->tmp, it->data, it->len, it->mode) < 0) {
			hm_error_errno("%s: cannot write", it->target);
			goto fail;
		}
	}
	/* Every new content durable before any target changes. */
	if (sync_all(p) < 0)
		goto fail;
	for (size_t i = 0; i < p->n; i++) {
		struct item *it = &p->it[i];

		progress(i, p->n, &t0, &shown);
		if (it->tmp && rename(it->tmp, it->target) < 0) {
			hm_error_errno("%s: cannot rename into place", it->target);
			goto fail;
		}
		if (it->act == A_MODE && chmod(it->target, it->mode) < 0) {
			hm_error_errno("%s: cannot set its mode", it->target);
			goto fail;
		}
		if (it->act == A_REMOVE && unlink(it->target) < 0 && errno != ENOENT) {
			hm_error_errno("%s: cannot remove", it->target);
			goto fail;
		}
	}
	ntemps = 0;
	if (shown)
		fprintf(stderr, "\rApplying dotfiles: %zu/%zu\n", p->n, p->n);
	free(bdir);
	/* The renames themselves, durable before the state says they happened. */
	return sync_all(p);
fail:
	remove_temps();
	free(bdir);
	return hm_fail(HM_EXIT_ENV);
}

static const char *
skip_reason(enum act a)
{
	switch (a) {
	case A_SKIP_DRIFT:
		return "modified since the last apply; skipped (--force overwrites it, keeping a "
		       "backup)";
	case A_SKIP_LINK:
		return "is a symlink; not written through, skipped (--force replaces the link, "
		       "keeping a backup)";
	case A_SKIP_OUTSIDE:
		return "its directory resolves outside $HOME; skipped";
	case A_SKIP_OTHER:
		return "is not a regular file; skipped";
	case A_SKIP_SOURCE:
		return "cannot be read from the repository; skipped";
	default:
		return NULL;
	}
}

/* What happened (or would), one line per change, and the counts. */
static void
report(struct plan *p, const char *repo, const char *profile)
{
	size_t c_new = 0, c_upd = 0, c_same = 0, c_rm = 0;

	printf("%s dotfiles from %s (profile: %s)...\n", p->dry_run ? "Dry run: applying" : "Applying",
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
		case A_FORCE:
		case A_FORCE_LINK:
			if (it->backup)
				printf("  replaced  %s (backup: %s)\n", it->key, it->backup);
			else
				printf("  replaced  %s (a backup would be kept)\n", it->key);
			c_upd++;
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
		case A_GONE:
			break;
		default:
			hm_warn("%s: %s", it->key, why);
			p->skipped++;
			break;
		}
	}
	printf("%zu new, %zu updated, %zu unchanged, %zu removed, %zu skipped%s\n", c_new, c_upd,
	       c_same, c_rm, p->skipped, p->dry_run ? " (dry run: nothing was written)" : "");
}

/* The checksums after the apply: what was deployed; a skipped file keeps its old one. */
static jv
new_checksums(struct plan *p, jv old)
{
	jv sums = jv_object();

	for (size_t i = 0; i < p->n; i++) {
		struct item *it = &p->it[i];
		const char *prev = hm_json_str(old, it->key);

		switch (it->act) {
		case A_NEW:
		case A_UPDATE:
		case A_SAME:
		case A_MODE:
		case A_FORCE:
		case A_FORCE_LINK:
			sums = jv_object_set(sums, jv_string(it->key), jv_string(it->sum));
			break;
		case A_REMOVE:
		case A_KEEP:
		case A_GONE:
			break;
		default:
			if (prev)
				sums = jv_object_set(sums, jv_string(it->key), jv_string(prev));
			break;
		}
	}
	jv_free(old);
	return sums;
}

/*
 * An apply killed midway leaves its temporaries (.NAME.heimdal-XXXXXX)
 * beside the targets: the apply that broke into its lock removes them.
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
		if (hm_file_remove_stale(dir, ".*.heimdal-??????", 0, NULL, since, until) < 0)
			exit(hm_last_code());
		free(last);
		last = dir;
	}
	free(last);
}

int
cmd_apply(int argc, char **argv)
{
	HM_GUARD guard = HM_GUARD_INIT;
	static const struct option opts[] = {
		{ "force", no_argument, NULL, 'f' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "profile", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct plan p = { 0 };
	struct dotfiles d;
	const char *profile = NULL;
	char *dir, head[41], now[32];
	int c, have_head;
	git_repository *repo;
	jv state, sums;

	while ((c = getopt_long(argc, argv, "fnp:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			p.force = 1;
			break;
		case 'n':
			p.dry_run = 1;
			break;
		case 'p':
			profile = optarg;
			if (!*profile || strchr(profile, '/') || !strcmp(profile, "..") ||
			    !strcmp(profile, "."))
				hm_die(HM_EXIT_USAGE, "--profile: not a profile name: '%s'", profile);
			break;
		case 'h':
			usage(stdout, 0);
		default:
			usage(stderr, HM_EXIT_USAGE);
		}
	}
	if (optind < argc) {
		hm_error("unexpected argument '%s'", argv[optind]);
		usage(stderr, HM_EXIT_USAGE);
	}
	/* The spec's flow: a dry run skips the lock; anything else holds it throughout. */
	if (hm_guard_acquire(&guard, "apply", p.dry_run ? HM_GUARD_DRY_RUN : 0) < 0)
		return hm_last_code();
	state = porcelain_state_load();
	if (!p.dry_run)
		porcelain_need_tool("lineage", "record the apply in the state's lineage");
	/* A copy: the state is replaced below. */
	profile = hm_xstrdup(profile ? profile : hm_json_str(state, "active_profile") ? hm_json_str(state, "active_profile") : "");
	if (!(p.home = getenv("HOME")) || !(p.home_real = realpath(p.home, NULL)))
		hm_die(HM_EXIT_ENV, "HOME is not set or does not exist");
	dir = porcelain_dotfiles_dir(state);
	if (!(repo = hm_git_open(dir)) || porcelain_repo_recover(repo, dir) < 0 ||
	    porcelain_dotfiles_list(repo, profile, &d) < 0)
		exit(hm_last_code());
	have_head = hm_git_head(repo, head) == 0;
	sums = jv_object_get(jv_copy(state), jv_string("checksums"));
	if (jv_get_kind(sums) != JV_KIND_OBJECT) {
		jv_free(sums);
		sums = jv_object();
	}
	make_plan(&p, &d, sums);
	if (p.dry_run) {
		report(&p, dir, profile);
		jv_free(state);
	} else {
		clear_dead_temps(&p);
		/* The new state first, so a failed bump leaves everything as it was. */
		state = jv_object_set(state, jv_string("checksums"), new_checksums(&p, jv_copy(sums)));
		state = jv_object_set(state, jv_string("last_apply"),
				      jv_string(hm_time_now_rfc3339(now)));
		if (*profile)
			state = jv_object_set(state, jv_string("active_profile"), jv_string(profile));
		state = porcelain_bump(state, "apply", have_head ? head : NULL);
		if (apply_write(&p) < 0)
			exit(hm_last_code());
		porcelain_state_save(state);
		report(&p, dir, profile);
	}
	jv_free(sums);
	for (size_t i = 0; i < p.n; i++) {
		free(p.it[i].key);
		free(p.it[i].target);
		free(p.it[i].data);
		free(p.it[i].old);
		free(p.it[i].tmp);
		free(p.it[i].backup);
	}
	free(p.it);
	free(temps);
	temps = NULL;
	free(p.home_real);
	free((char *)profile);
	free(dir);
	porcelain_dotfiles_free(&d);
	git_repository_free(repo);
	return p.skipped ? HM_EXIT_FOUND : HM_EXIT_OK;
}
