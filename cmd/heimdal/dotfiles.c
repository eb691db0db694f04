/*
 * dotfiles.c - what apply, commit and check-drift share: the dotfiles
 * repository, the files it tracks (git's index less .heimdal/, profiles/ and
 * .heimdalignore, with the active profile overlaid), and drift reports from
 * heimdal-drift.
 */
#include "builtin.h"
#include "hm_error.h"
#include "hm_state.h"
#include "hm_file.h"
#include "hm_git.h"
#include "hm_gitrecover.h"
#include "hm_json.h"
#include "hm_lock.h"
#include "hm_machine.h"
#include "hm_spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

int
porcelain_repo_recover(git_repository *repo, const char *dir)
{
	time_t since, until;
	int n;

	if (!hm_lock_broken_window(&since, &until))
		return 0;
	if ((n = hm_git_clear_stale_locks(repo, since, until)) < 0)
		return -1;
	if (n > 0)
		hm_warn("%s: removed %d git lock file(s) left by a heimdal process that died", dir,
			n);
	/* commit's temporaries (hm_file_write_atomic) beside the files it accepts:
	 * only those named for the dead lock, by a process no longer running */
	if (!git_repository_is_bare(repo) &&
	    hm_file_remove_dead_temps(git_repository_workdir(repo), 1, ".git",
				      hm_lock_broken_tag()) < 0)
		return -1;
	return 0;
}

char *
porcelain_dotfiles_dir(jv state)
{
	char *dir = hm_state_dotfiles_dir(state);

	if (!dir)
		hm_die(HM_EXIT_ENV, "HOME is not set");
	return dir;
}

/*
 * .heimdalignore, in gitignore syntax: "#" comments, "!" re-includes, a
 * trailing "/" matches directories only, a pattern with a "/" is anchored at
 * the root, one without matches a name at any depth.  A matched directory
 * takes everything below it.  The last matching rule wins.
 */
struct rule {
	char *pat;
	int neg, dir_only, anchored;
};

#define IGNORE_MAX (1 << 20)

struct ignore {
	struct rule *r;
	size_t n;
};

static void
ignore_load(const char *workdir, struct ignore *ig)
{
	char *path = hm_path_join(workdir, ".heimdalignore"), *buf, *line, *save = NULL;
	size_t len;

	memset(ig, 0, sizeof(*ig));
	/* The repository's file, not whatever it points to: a symlink, a FIFO or
	 * a device (/dev/zero) is refused, and so is one too large to be rules. */
	if (porcelain_read_regular(path, IGNORE_MAX, &buf, &len) < 0) {
		if (errno != ENOENT)
			hm_warn("%s: %s; ignored", path,
				errno == EFBIG ? "too large for a list of rules" : strerror(errno));
		free(path);
		return;
	}
	free(path);
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		size_t n = strlen(line);
		struct rule r = { 0 };

		while (n > 0 && (line[n - 1] == '\r' ||
				 (line[n - 1] == ' ' && (n < 2 || line[n - 2] != '\\'))))
			line[--n] = '\0';
		if (n == 0 || line[0] == '#')
			continue;
		if (line[0] == '!')
			r.neg = 1, line++, n--;
		else if (line[0] == '\\')
			line++, n--;
		if (n > 0 && line[n - 1] == '/')
			r.dir_only = 1, line[--n] = '\0';
		if (strncmp(line, "**/", 3) == 0)
			line += 3; /* a leading double star matches at any depth, as no slash does
				    */
		else if (strchr(line, '/'))
			r.anchored = 1;
		if (*line == '/')
			line++;
		if (!*line)
			continue;
		r.pat = hm_xstrdup(line);
		ig->r = hm_xrealloc(ig->r, (ig->n + 1) * sizeof(*ig->r));
		ig->r[ig->n++] = r;
	}
	free(buf);
}

/* Does rule r match path p, which is a directory when is_dir? */
static int
rule_matches_one(const struct rule *r, const char *p, int is_dir)
{
	/* "**" crosses directories: match without FNM_PATHNAME then. */
	int flags = strstr(r->pat, "**") ? 0 : FNM_PATHNAME;
	const char *base = strrchr(p, '/');

	if (r->dir_only && !is_dir)
		return 0;
	if (r->anchored)
		return fnmatch(r->pat, p, flags) == 0;
	return fnmatch(r->pat, base ? base + 1 : p, flags) == 0;
}

static int
ignored(const struct ignore *ig, const char *path)
{
	int verdict = 0;

	for (size_t i = 0; i < ig->n; i++) {
		const struct rule *r = &ig->r[i];
		char *p = hm_xstrdup(path);
		int hit = rule_matches_one(r, p, 0);

		/* A rule that matches any parent directory takes the file too. */
		for (char *s = strrchr(p, '/'); !hit && s; s = strrchr(p, '/')) {
			*s = '\0';
			hit = rule_matches_one(r, p, 1);
		}
		free(p);
		if (hit)
			verdict = !r->neg;
	}
	return verdict;
}

static void
ignore_free(struct ignore *ig)
{
	for (size_t i = 0; i < ig->n; i++)
		free(ig->r[i].pat);
	free(ig->r);
}

/* 1 when path lies in dir or is dir (both absolute, no trailing slash on dir). */
static int
under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	while (n > 1 && dir[n - 1] == '/')
		n--;
	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/*
 * 1 when key, a target under $HOME, maps into what heimdal or git own: a .git
 * or a leading .heimdal component, $HEIMDAL_HOME, or the dotfiles repository
 * itself.  No repository, profile or remote decides those (DESIGN, "Trust").
 */
int
porcelain_reserved(const char *key, const char *workdir)
{
	const char *home = getenv("HOME"), *c = key;
	char *target;
	int r = 0;

	if (strncmp(key, ".heimdal/", 9) == 0)
		return 1;
	for (; c; c = strchr(c, '/') ? strchr(c, '/') + 1 : NULL)
		if (strncmp(c, ".git", 4) == 0 && (c[4] == '/' || c[4] == '\0'))
			return 1;
	if (!home)
		return 0;
	target = hm_path_join(home, key);
	r = under(target, hm_home()) || under(target, workdir);
	free(target);
	return r;
}

/*
 * .heimdal/forgotten, one path per line: files `heimdal forget` stopped
 * tracking.  A machine that deployed one forgets it too (it leaves its copy
 * in $HOME), where a file removed from the repository otherwise goes.
 */
static void
forgotten_load(const char *workdir, struct dotfiles *d)
{
	char *path = hm_path_join(workdir, FORGOTTEN), *buf, *line, *save = NULL;
	size_t len;

	if (porcelain_read_regular(path, IGNORE_MAX, &buf, &len) < 0) {
		free(path);
		return;
	}
	free(path);
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!hm_path_safe_relative(line, NULL))
			continue;
		d->ignored = hm_xrealloc(d->ignored, (d->nignored + 1) * sizeof(*d->ignored));
		d->ignored[d->nignored++] = hm_xstrdup(line);
	}
	free(buf);
}

int
porcelain_ignored(const char *workdir, const char *key)
{
	struct ignore ig;
	int r;

	ignore_load(workdir, &ig);
	r = ignored(&ig, key);
	ignore_free(&ig);
	return r;
}

static int
by_key(const void *a, const void *b)
{
	const struct dotfile *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	/* Equal keys: the profile's file sorts last and wins. */
	return c ? c : x->from_profile - y->from_profile;
}

int
porcelain_dotfiles_list(git_repository *repo, const char *profile, struct dotfiles *d)
{
	git_index *index;
	const char *workdir = git_repository_workdir(repo);
	char *prefix = profile && *profile ? hm_xasprintf("profiles/%s/", profile) : NULL;
	size_t plen = prefix ? strlen(prefix) : 0, n, out = 0;
	struct ignore ig;

	memset(d, 0, sizeof(*d));
	if (!workdir) {
		free(prefix);
		hm_error("%s: a bare repository has no files to deploy", git_repository_path(repo));
		return hm_fail(HM_EXIT_ENV);
	}
	if (git_repository_index(&index, repo) < 0) {
		free(prefix);
		hm_error("%s: cannot read the index: %s", workdir, hm_git_last_error());
		return hm_fail(HM_EXIT_ENV);
	}
	d->workdir = hm_xstrdup(workdir);
	ignore_load(workdir, &ig);
	forgotten_load(workdir, d);
	n = git_index_entrycount(index);
	d->f = hm_xmalloc((n ? n : 1) * sizeof(*d->f));
	for (size_t i = 0; i < n; i++) {
		const git_index_entry *e = git_index_get_byindex(index, i);
		const char *key = e->path;
		int from_profile = 0;

		if (GIT_INDEX_ENTRY_STAGE(e) != 0)
			continue;
		if (e->mode != GIT_FILEMODE_BLOB && e->mode != GIT_FILEMODE_BLOB_EXECUTABLE) {
			hm_debug("%s: not a regular file in the repository, not deployed", e->path);
			continue;
		}
		if (prefix && strncmp(key, prefix, plen) == 0) {
			key += plen;
			from_profile = 1;
		} else if (strncmp(key, ".heimdal/", 9) == 0 || strncmp(key, "profiles/", 9) == 0 ||
			   strcmp(key, ".heimdalignore") == 0) {
			continue;
		}
		if (!hm_path_safe_relative(key, NULL))
			continue;
		if (porcelain_reserved(key, workdir)) {
			hm_debug("%s: maps into heimdal's or git's own files; never deployed",
				 e->path);
			continue;
		}
		if (ignored(&ig, key)) {
			d->ignored =
				hm_xrealloc(d->ignored, (d->nignored + 1) * sizeof(*d->ignored));
			d->ignored[d->nignored++] = hm_xstrdup(key);
			continue;
		}
		d->f[out].key = hm_xstrdup(key);
		d->f[out].src = hm_xstrdup(e->path);
		d->f[out].mode = e->mode == GIT_FILEMODE_BLOB_EXECUTABLE ? 0755 : 0644;
		d->f[out].from_profile = from_profile;
		out++;
	}
	git_index_free(index);
	ignore_free(&ig);
	free(prefix);
	qsort(d->f, out, sizeof(*d->f), by_key);
	/* Keep the last of each run of equal keys: the profile's overlay. */
	d->n = 0;
	for (size_t i = 0; i < out; i++) {
		if (i + 1 < out && strcmp(d->f[i].key, d->f[i + 1].key) == 0) {
			free(d->f[i].key);
			free(d->f[i].src);
			continue;
		}
		d->f[d->n++] = d->f[i];
	}
	return 0;
}

const struct dotfile *
porcelain_dotfiles_find(const struct dotfiles *d, const char *key)
{
	size_t lo = 0, hi = d->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(d->f[mid].key, key);

		if (c == 0)
			return &d->f[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

void
porcelain_dotfiles_free(struct dotfiles *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->f[i].key);
		free(d->f[i].src);
	}
	for (size_t i = 0; i < d->nignored; i++)
		free(d->ignored[i]);
	free(d->ignored);
	free(d->f);
	free(d->workdir);
	memset(d, 0, sizeof(*d));
}

jv
porcelain_drift(jv state, int all)
{
	char *argv[] = { "heimdal-drift", "--compact", all ? "--all" : NULL, NULL };
	jv out;
	int status = hm_spawn_json("drift", argv, state, &out);

	if (status < 0)
		exit(hm_last_code());
	if (status > 1)
		hm_die(status, "heimdal-drift failed (exit %d)", status);
	return out;
}

void
porcelain_need_tool(const char *name, const char *why)
{
	char *tool = hm_find_tool(name);

	if (!tool)
		hm_die(HM_EXIT_ENV,
		       "heimdal-%s was not found on the exec path (see 'heimdal "
		       "--exec-path'); it is needed to %s",
		       name, why);
	free(tool);
}

jv
porcelain_bump(jv state, const char *op, const char *git_commit)
{
	char *argv[] = {
		"heimdal-lineage",  "bump", "--op", (char *)op, git_commit ? "--git-commit" : NULL,
		(char *)git_commit, NULL
	};
	jv out;
	int status = hm_spawn_json("lineage", argv, state, &out);

	if (status < 0)
		exit(hm_last_code());
	if (status != 0 || jv_get_kind(out) != JV_KIND_OBJECT)
		hm_die(status > 0 ? status : HM_EXIT_ENV,
		       "heimdal-lineage bump --op %s failed; nothing was changed", op);
	return out;
}

int
porcelain_read_regular(const char *path, size_t max, char **buf, size_t *len)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	struct stat st;
	int r;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
		int e = errno;

		if (!S_ISREG(st.st_mode))
			e = EINVAL;
		else if ((size_t)st.st_size > max)
			e = EFBIG;
		close(fd);
		errno = e;
		return -1;
	}
	r = hm_read_fd(fd, buf, len);
	close(fd);
	return r;
}

/* Paths as given (relative to $HOME, or absolute under it) as keys; new array. */
char **
porcelain_path_keys(int argc, char **argv)
{
	const char *home = getenv("HOME");
	size_t hl = home ? strlen(home) : 0;
	char **keys = hm_xmalloc((size_t)(argc + 1) * sizeof(*keys));
	int n = 0;

	for (int i = 0; i < argc; i++) {
		const char *k = argv[i], *why;

		if (home && strncmp(k, home, hl) == 0 && k[hl] == '/')
			k += hl + 1;
		else if (k[0] == '~' && k[1] == '/')
			k += 2;
		if (!hm_path_safe_relative(k, &why))
			hm_die(HM_EXIT_USAGE, "%s: not a path under $HOME (%s)", argv[i], why);
		keys[n++] = hm_xstrdup(k);
	}
	keys[n] = NULL;
	return n ? keys : (free(keys), NULL);
}

void
porcelain_keys_free(char **keys)
{
	for (char **k = keys; k && *k; k++)
		free(*k);
	free(keys);
}
