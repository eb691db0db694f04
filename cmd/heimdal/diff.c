/*
 * diff.c - `heimdal diff [--upstream] [--stat] [PATH...]`: unified diffs,
 * git-style, from this machine's deployment record (record.h).
 *
 * By default, what changed here since deployed: for each file, the content
 * the record keeps (the git blob) against the file in $HOME; a file the
 * record has no blob for is compared with the repository's file.  With
 * --upstream, what the next apply or sync would bring: the deployed blob
 * against the repository's file in the work tree, for files whose
 * repository content is not what was deployed.
 *
 * The text comes from libgit2's patch API (git_patch_from_buffers); no git
 * process runs.  Files in $HOME are opened beneath $HOME (openat2
 * RESOLVE_BENEATH) and never through a final symlink: a link is reported
 * with its target, not followed.  Nothing is written, no lock is taken.
 */
#include "builtin.h"
#include "record.h"
#include "remote.h"
#include "hm_beneath.h"
#include "hm_error.h"
#include "hm_opt.h"
#include "hm_file.h"
#include "hm_hash.h"
#include "hm_json.h"
#include "hm_sigchain.h"
#include "hm_term.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define DIFF_USAGE "heimdal diff [--upstream] [--stat] [--color[=WHEN] | --no-color] [PATH...]"

static _Noreturn void
usage(FILE *f, int code)
{
	fprintf(f,
		"usage: " DIFF_USAGE "\n"
		"\n"
		"      --upstream   what the next apply or sync would bring (deployed -> repository)\n"
		"      --stat       a diffstat instead of the patch\n"
		"      --color[=WHEN]  always (the default), never, or auto (on a terminal)\n"
		"      --no-color   never colour\n"
		"\n"
		"Without --upstream: what changed here since deployed (deployed -> $HOME).\n"
		"Exit status: 0 no difference, 1 differences, 2 usage, 3 environment.\n");
	exit(code);
}

/* One side of a diff. */
enum kind { S_NONE, S_FILE, S_LINK, S_OTHER, S_OUTSIDE };

struct side {
	enum kind kind;
	char *buf; /* S_FILE: the content; S_LINK: the link's target */
	size_t len;
	unsigned mode; /* S_FILE: 0644 or 0755 */
};

struct ctx {
	git_repository *repo;
	struct dotfiles d;
	jv files;    /* the record's files */
	int home_fd; /* $HOME, O_PATH */
	int work_fd; /* the work tree, O_PATH: read through no symlink */
	char *home_real;
	int upstream, stat, color, errors;
	char **only; /* keys asked for, or NULL */
	size_t ndiff;
	/* --stat */
	struct stat_row {
		char *key, *note;
		size_t adds, dels;
	} * rows;
	size_t nrows;
};

#define C_META "\033[1m"
#define C_FRAG "\033[36m"
#define C_OLD "\033[31m"
#define C_NEW "\033[32m"
#define C_RESET "\033[m"

static void
side_free(struct side *s)
{
	free(s->buf);
	memset(s, 0, sizeof(*s));
}

static void
side_copy(struct side *to, const struct side *from)
{
	*to = *from;
	if (from->buf) {
		to->buf = hm_xmalloc(from->len + 1);
		memcpy(to->buf, from->buf, from->len);
		to->buf[from->len] = '\0';
	}
}

/* The directory of key under $HOME, opened beneath it: fd, -1 missing, -2 outside. */
static int
home_dir(struct ctx *c, const char *dir)
{
	int fd = hm_beneath_dir(c->home_fd, c->home_real, dir, 0);

	if (fd >= 0)
		return fd;
	return errno == EXDEV ? -2 : -1;
}

/* The file key in $HOME, never read through a symlink nor outside $HOME. */
static int
read_home(struct ctx *c, const char *key, struct side *s)
{
	const char *slash = strrchr(key, '/'), *base = slash ? slash + 1 : key;
	int dfd = c->home_fd, fd;
	struct stat st;

	memset(s, 0, sizeof(*s));
	if (slash) {
		char *dir = hm_xasprintf("%.*s", (int)(slash - key), key);

		dfd = home_dir(c, dir);
		free(dir);
		if (dfd == -1)
			return 0;
		if (dfd == -2) {
			s->kind = S_OUTSIDE;
			return 0;
		}
	}
	if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		int e = errno;

		if (dfd != c->home_fd)
			close(dfd);
		if (e == ENOENT || e == ENOTDIR)
			return 0;
		errno = e;
		return hm_error_errno("%s/%s", c->home_real, key);
	}
	if (S_ISLNK(st.st_mode)) {
		char target[PATH_MAX];
		ssize_t n = readlinkat(dfd, base, target, sizeof(target) - 1);

		s->kind = S_LINK;
		s->buf = hm_xstrdup(n < 0 ? "?" : (target[n] = '\0', target));
	} else if (!S_ISREG(st.st_mode)) {
		s->kind = S_OTHER;
	} else if ((fd = openat(dfd, base, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) < 0 ||
		   fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
		   hm_read_fd(fd, &s->buf, &s->len) < 0) {
		int e = errno;

		if (fd >= 0)
			close(fd);
		if (dfd != c->home_fd)
			close(dfd);
		errno = e;
		return hm_error_errno("%s/%s", c->home_real, key);
	} else {
		close(fd);
		s->kind = S_FILE;
		s->mode = st.st_mode & 0100 ? 0755 : 0644;
	}
	if (dfd != c->home_fd)
		close(dfd);
	return 0;
}

/* The repository's file for df, from the work tree, never through a link. */
static int
read_repo(struct ctx *c, const struct dotfile *df, struct side *s)
{
	char *path = hm_path_join(c->d.workdir, df->src);
	struct stat st;
	int r = 0;

	memset(s, 0, sizeof(*s));
	if (hm_beneath_read(c->work_fd, NULL, df->src, &s->buf, &s->len, &st) == 0) {
		s->kind = S_FILE;
		s->mode = df->mode;
	} else if (errno != ENOENT) {
		r = hm_error_errno("%s", path);
	}
	free(path);
	return r;
}

/* 1 when s is a file whose checksum is sum (SHA-256, or a legacy MD5). */
static int
matches(const struct side *s, const char *sum)
{
	char hex[HM_HASH_HEX_MAX];
	enum hm_hash_algo algo = sum ? hm_hash_algo_of(sum) : HM_HASH_NONE;

	return s->kind == S_FILE && algo != HM_HASH_NONE &&
	       hm_hash_buf(algo, s->buf, s->len, hex) == 0 && strcmp(hex, sum) == 0;
}

static void
paint(struct ctx *c, const char *color, const char *s, size_t n)
{
	if (c->color)
		fputs(color, stdout);
	fwrite(s, 1, n, stdout);
	if (c->color)
		fputs(C_RESET, stdout);
}

/* A line of meta data: the header, modes, ---/+++ lines, notes. */
static void
meta(struct ctx *c, const char *fmt, const char *a, const char *b)
{
	char *line = hm_xasprintf(fmt, a, b);

	paint(c, C_META, line, strlen(line));
	putchar('\n');
	free(line);
}

static void
print_hunks(struct ctx *c, git_patch *p)
{
	for (size_t h = 0; h < git_patch_num_hunks(p); h++) {
		const git_diff_hunk *hunk;
		size_t nlines, n;
		const char *end;

		if (git_patch_get_hunk(&hunk, &nlines, p, h) < 0)
			continue;
		/* "@@ -1,3 +1,4 @@" in colour, the function context after it plain. */
		end = strstr(hunk->header + 2, "@@");
		n = end ? (size_t)(end + 2 - hunk->header) : hunk->header_len;
		paint(c, C_FRAG, hunk->header, n);
		fwrite(hunk->header + n, 1, hunk->header_len - n, stdout);
		if (hunk->header_len == 0 || hunk->header[hunk->header_len - 1] != '\n')
			putchar('\n');
		for (size_t l = 0; l < nlines; l++) {
			const git_diff_line *line;
			size_t len;

			if (git_patch_get_line_in_hunk(&line, p, h, l) < 0)
				continue;
			len = line->content_len;
			if (line->origin == GIT_DIFF_LINE_ADDITION ||
			    line->origin == GIT_DIFF_LINE_DELETION ||
			    line->origin == GIT_DIFF_LINE_CONTEXT) {
				char o = line->origin;
				int nl = len > 0 && line->content[len - 1] == '\n';

				if (c->color && o != ' ') {
					fputs(o == '+' ? C_NEW : C_OLD, stdout);
					putchar(o);
					fwrite(line->content, 1, len - nl, stdout);
					fputs(C_RESET, stdout);
				} else {
					putchar(o);
					fwrite(line->content, 1, len - nl, stdout);
				}
				if (nl)
					putchar('\n');
			} else {
				/* "\ No newline at end of file", with the newline the line lacked.
				 */
				fwrite(line->content, 1, len, stdout);
			}
		}
	}
}

static void
stat_add(struct ctx *c, const char *key, size_t adds, size_t dels, char *note)
{
	c->rows = hm_xrealloc(c->rows, (c->nrows + 1) * sizeof(*c->rows));
	c->rows[c->nrows++] = (struct stat_row){ hm_xstrdup(key), note, adds, dels };
}

static const char *
mode_str(unsigned mode)
{
	return mode & 0111 ? "100755" : "100644";
}

/* b is not a file diff reads (a link, a non-file, outside $HOME): say what it is. */
static void
show_unread(struct ctx *c, const char *key, const struct side *b, const char *aname,
	    const char *bname)
{
	char *what = b->kind == S_LINK ? hm_xasprintf("a symbolic link to %s, not followed", b->buf)
		     : b->kind == S_OTHER ? hm_xstrdup("not a regular file, not read")
					  : hm_xstrdup("its directory resolves outside $HOME, "
						       "not read");

	if (c->stat) {
		stat_add(c, key, 0, 0, hm_xasprintf("(%s)", what));
	} else {
		meta(c, "diff --heimdal %s %s", aname, bname);
		meta(c, "%s: %s", bname, what);
	}
	free(what);
}

/* The lines before the patch: the diff header, the note, new, deleted or changed modes. */
static void
show_header(struct ctx *c, const struct side *a, const struct side *b, const char *note,
	    const char *aname, const char *bname)
{
	meta(c, "diff --heimdal %s %s", aname, bname);
	if (note)
		meta(c, "%s%s", note, "");
	if (a->kind == S_NONE)
		meta(c, "new file mode %s%s", mode_str(b->mode), "");
	else if (b->kind == S_NONE)
		meta(c, "deleted file mode %s%s", mode_str(a->mode), "");
	else if (a->mode != b->mode) {
		meta(c, "old mode %s%s", mode_str(a->mode), "");
		meta(c, "new mode %s%s", mode_str(b->mode), "");
	}
}

/* The patch a -> b of texts that differ (an and bn name the sides), or its stat row. */
static void
show_patch(struct ctx *c, const char *key, const struct side *a, const struct side *b,
	   const char *an, const char *bn)
{
	git_diff_options opts = GIT_DIFF_OPTIONS_INIT;
	git_patch *p = NULL;

	opts.context_lines = 3;
	if (git_patch_from_buffers(&p, a->buf, a->len, key, b->buf, b->len, key, &opts) < 0) {
		hm_error("%s: cannot diff: %s", key, hm_git_last_error());
		c->errors++;
	} else if (git_patch_get_delta(p)->flags & GIT_DIFF_FLAG_BINARY) {
		if (c->stat)
			stat_add(c, key, 0, 0,
				 hm_xasprintf("Bin %zu -> %zu bytes", a->len, b->len));
		else
			meta(c, "Binary files %s and %s differ", an, bn);
	} else if (c->stat) {
		size_t adds = 0, dels = 0;

		git_patch_line_stats(NULL, &adds, &dels, p);
		stat_add(c, key, adds, dels, NULL);
	} else {
		meta(c, "--- %s%s", an, "");
		meta(c, "+++ %s%s", bn, "");
		print_hunks(c, p);
	}
	git_patch_free(p);
}

/*
 * Print the difference a -> b for key (b may be a link or other non-file).
 * Returns 1 when there is one, 0 when the two are the same.
 */
static int
show(struct ctx *c, const char *key, const struct side *a, const struct side *b, const char *note)
{
	char *aname, *bname;
	int same_text;

	if (a->kind == S_NONE && b->kind == S_NONE)
		return 0;
	same_text = a->kind == S_FILE && b->kind == S_FILE && a->len == b->len &&
		    memcmp(a->buf, b->buf, a->len) == 0;
	if (same_text && a->mode == b->mode)
		return 0;
	c->ndiff++;
	aname = hm_xasprintf("a/%s", key);
	bname = hm_xasprintf("b/%s", key);
	if (b->kind == S_LINK || b->kind == S_OTHER || b->kind == S_OUTSIDE) {
		show_unread(c, key, b, aname, bname);
	} else {
		if (!c->stat)
			show_header(c, a, b, note, aname, bname);
		if (!same_text)
			show_patch(c, key, a, b, a->kind == S_NONE ? "/dev/null" : aname,
				   b->kind == S_NONE ? "/dev/null" : bname);
		else if (c->stat)
			stat_add(c, key, 0, 0, NULL);
	}
	free(aname);
	free(bname);
	return 1;
}

/* 1 when key is one the repository no longer deploys by .heimdalignore or forget. */
static int
left_out(const struct dotfiles *d, const char *key)
{
	for (size_t i = 0; i < d->nignored; i++)
		if (strcmp(d->ignored[i], key) == 0)
			return 1;
	return 0;
}

/* One file: what changed here (or upstream) since deployed. */
static void
diff_key(struct ctx *c, const char *key)
{
	const struct dotfile *df = porcelain_dotfiles_find(&c->d, key);
	jv e = jv_object_get(jv_copy(c->files), jv_string(key));
	int recorded = jv_get_kind(e) == JV_KIND_OBJECT;
	const char *sum = recorded ? hm_json_str(e, "sha256") : NULL;
	const char *note = NULL;
	struct side base = { 0 }, repo = { 0 }, home = { 0 }, *a = &base, *b;

	if (recorded && record_blob(c->repo, e, &base.buf, &base.len) == 0) {
		const char *m = hm_json_str(e, "mode");

		base.kind = S_FILE;
		base.mode = m && strcmp(m, "100755") == 0 ? 0755 : 0644;
	}
	if ((df && read_repo(c, df, &repo) < 0) ||
	    ((!c->upstream || (recorded && base.kind == S_NONE)) && read_home(c, key, &home) < 0)) {
		c->errors++;
		goto out;
	}
	if (!c->upstream) {
		b = &home;
		if (!recorded) {
			/* Never deployed here: the repository's file is what apply would write. */
			if (home.kind == S_NONE)
				goto out;
			a = &repo;
		} else if (base.kind == S_NONE) {
			/* A checksum without content: unchanged when it still matches. */
			if (matches(&home, sum))
				goto out;
			a = &repo;
			note = "(no deployed content recorded: compared with the repository's file)";
		}
	} else {
		b = &repo;
		if (!df && left_out(&c->d, key))
			goto out; /* ignored or forgotten: apply leaves the file */
		if (recorded && base.kind == S_NONE) {
			if (matches(&repo, sum))
				goto out;
			/* The file here is the deployed content when it still matches. */
			if (matches(&home, sum))
				side_copy(&base, &home);
			else
				note = "(no deployed content recorded: shown as new)";
		}
	}
	show(c, key, a, b, note);
out:
	side_free(&base);
	side_free(&repo);
	side_free(&home);
	jv_free(e);
}

static int
wanted(struct ctx *c, const char *key)
{
	if (!c->only)
		return 1;
	for (char **k = c->only; *k; k++) {
		size_t n = strlen(*k);

		if (strcmp(key, *k) == 0 || (strncmp(key, *k, n) == 0 && key[n] == '/'))
			return 1;
	}
	return 0;
}

/* Every key heimdal knows here (tracked or recorded), sorted, unique. */
static jv
all_keys(struct ctx *c)
{
	jv keys = jv_keys(jv_copy(c->files)), out = jv_array();
	const char *last = NULL;

	for (size_t i = 0; i < c->d.n; i++)
		keys = jv_array_append(keys, jv_string(c->d.f[i].key));
	keys = jv_sort(keys, jv_copy(keys));
	jv_array_foreach(keys, i, k)
	{
		if (!last || strcmp(last, jv_string_value(k)) != 0) {
			out = jv_array_append(out, jv_copy(k));
			last = jv_string_value(k);
		}
		jv_free(k);
	}
	jv_free(keys);
	return out;
}

static void
print_stat(struct ctx *c)
{
	size_t width = 0, most = 0, adds = 0, dels = 0;
	int cw;

	for (size_t i = 0; i < c->nrows; i++) {
		size_t n = strlen(c->rows[i].key), t = c->rows[i].adds + c->rows[i].dels;

		width = n > width ? n : width;
		most = t > most ? t : most;
	}
	cw = snprintf(NULL, 0, "%zu", most);
	for (size_t i = 0; i < c->nrows; i++) {
		struct stat_row *r = &c->rows[i];
		size_t pa = r->adds, pd = r->dels;

		adds += r->adds, dels += r->dels;
		printf(" %-*s |", (int)width, r->key);
		if (r->note) {
			printf(" %s\n", r->note);
			continue;
		}
		printf(" %*zu%s", cw, r->adds + r->dels, r->adds + r->dels ? " " : "");
		if (most > 50) { /* scale the graph as git does, each side at least one mark */
			pa = r->adds ? (r->adds * 50 + most - 1) / most : 0;
			pd = r->dels ? (r->dels * 50 + most - 1) / most : 0;
		}
		if (c->color && pa)
			fputs(C_NEW, stdout);
		for (size_t j = 0; j < pa; j++)
			putchar('+');
		if (c->color && pa)
			fputs(C_RESET, stdout);
		if (c->color && pd)
			fputs(C_OLD, stdout);
		for (size_t j = 0; j < pd; j++)
			putchar('-');
		if (c->color && pd)
			fputs(C_RESET, stdout);
		putchar('\n');
	}
	if (c->nrows == 0)
		return;
	printf(" %zu file%s changed", c->nrows, c->nrows == 1 ? "" : "s");
	if (adds || !dels)
		printf(", %zu insertion%s(+)", adds, adds == 1 ? "" : "s");
	if (dels || !adds)
		printf(", %zu deletion%s(-)", dels, dels == 1 ? "" : "s");
	putchar('\n');
}

/* The pager on a terminal: $HEIMDAL_PAGER, $PAGER, else less -FRX; "" or "cat" for none. */
static pid_t pager_pid;

static void
pager_wait(void)
{
	if (pager_pid <= 0)
		return;
	fflush(stdout);
	close(STDOUT_FILENO);
	while (waitpid(pager_pid, NULL, 0) < 0 && errno == EINTR)
		;
	pager_pid = 0;
}

static void
pager_start(void)
{
	const char *pager = getenv("HEIMDAL_PAGER");
	int fds[2];

	if (!pager)
		pager = getenv("PAGER");
	if (!pager)
		pager = "less -FRX";
	if (!*pager || strcmp(pager, "cat") == 0 || !isatty(STDOUT_FILENO))
		return;
	if (pipe(fds) < 0)
		return;
	setenv("LESS", "FRX", 0);
	fflush(stdout);
	pager_pid = fork();
	if (pager_pid < 0) {
		close(fds[0]), close(fds[1]);
		pager_pid = 0;
		return;
	}
	if (pager_pid == 0) {
		dup2(fds[0], STDIN_FILENO);
		close(fds[0]), close(fds[1]);
		hm_sigchain_child();
		execl("/bin/sh", "sh", "-c", pager, (char *)NULL);
		_exit(127);
	}
	dup2(fds[1], STDOUT_FILENO);
	close(fds[0]), close(fds[1]);
	atexit(pager_wait);
}

/* The options into c; the colour asked for (-1: auto).  Exits on bad usage and after --help. */
static int
diff_options(int argc, char **argv, struct ctx *c)
{
	static const struct option opts[] = {
		{ "upstream", no_argument, NULL, 'u' },    { "stat", no_argument, NULL, 's' },
		{ "color", optional_argument, NULL, 'c' }, { "no-color", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },        { NULL, 0, NULL, 0 },
	};
	int ch, color = -1;

	while ((ch = hm_opt_next(argc, argv, "h", opts, DIFF_USAGE)) != -1) {
		switch (ch) {
		case 'u':
			c->upstream = 1;
			break;
		case 's':
			c->stat = 1;
			break;
		case 'c':
			if (!optarg || !strcmp(optarg, "always"))
				color = 1;
			else if (!strcmp(optarg, "never"))
				color = 0;
			else if (!strcmp(optarg, "auto"))
				color = -1;
			else
				hm_die(HM_EXIT_USAGE, "--color: '%s' is not always, never or auto",
				       optarg);
			break;
		case 'C':
			color = 0;
			break;
		case 'h':
			usage(stdout, 0);
		}
	}
	return color;
}

/* The paths asked for as keys in c->only, a directory as completion gives it ("dir/") too. */
static void
diff_paths(struct ctx *c, int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		size_t n = strlen(argv[i]);

		while (n > 1 && argv[i][n - 1] == '/')
			argv[i][--n] = '\0';
	}
	c->only = porcelain_path_keys(argc, argv);
}

/*
 * What diff reads: $HOME, the state and its record, the repository and the
 * files it deploys here; the state is returned (the caller frees it).
 * Exits when one cannot be had.
 */
static jv
diff_open(struct ctx *c, const char *home)
{
	char real[PATH_MAX];
	jv state, record;

	if (!realpath(home, real) ||
	    (c->home_fd = open(real, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
		porcelain_keys_free(c->only);
		hm_die_errno(HM_EXIT_ENV, "%s", home);
	}
	c->home_real = hm_xstrdup(real);
	state = porcelain_state_load();
	c->repo = remote_open(state);
	record = record_load(state);
	c->files = jv_object_get(record, jv_string("files"));
	if (porcelain_dotfiles_list(c->repo, hm_json_str(state, "active_profile"), &c->d) < 0)
		exit(hm_last_code());
	if ((c->work_fd = open(c->d.workdir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		hm_die_errno(HM_EXIT_ENV, "%s", c->d.workdir);
	return state;
}

/* Every path asked for is one heimdal knows (in keys, borrowed): 0, or -1 naming the first not. */
static int
diff_paths_known(const struct ctx *c, jv keys)
{
	for (char **k = c->only; k && *k; k++) {
		int hit = 0;

		jv_array_foreach(keys, i, key)
		{
			size_t n = strlen(*k);
			const char *s = jv_string_value(key);

			hit |= strcmp(s, *k) == 0 || (strncmp(s, *k, n) == 0 && s[n] == '/');
			jv_free(key);
		}
		if (!hit)
			return hm_error("%s: not a file heimdal tracks or deployed", *k);
	}
	return 0;
}

/* The diff (or its stat) of every key wanted; the exit code. */
static int
diff_all(struct ctx *c, jv keys)
{
	jv_array_foreach(keys, i, key)
	{
		if (wanted(c, jv_string_value(key)))
			diff_key(c, jv_string_value(key));
		jv_free(key);
	}
	if (c->stat)
		print_stat(c);
	if (fflush(stdout) != 0 && !c->errors) {
		hm_error_errno("stdout");
		c->errors++;
	}
	return c->errors ? HM_EXIT_ENV : c->ndiff ? HM_EXIT_FOUND : 0;
}

static void
ctx_free(struct ctx *c)
{
	for (size_t i = 0; i < c->nrows; i++)
		free(c->rows[i].key), free(c->rows[i].note);
	free(c->rows);
	jv_free(c->files);
	porcelain_keys_free(c->only);
	porcelain_dotfiles_free(&c->d);
	git_repository_free(c->repo);
	close(c->home_fd);
	close(c->work_fd);
	free(c->home_real);
}

int
cmd_diff(int argc, char **argv)
{
	struct ctx c = { .home_fd = -1, .work_fd = -1 };
	const char *home = getenv("HOME");
	int color = diff_options(argc, argv, &c), code;
	jv state, keys;

	if (!home || !*home)
		hm_die(HM_EXIT_ENV, "HOME is not set");
	diff_paths(&c, argc - optind, argv + optind);
	state = diff_open(&c, home);
	keys = all_keys(&c);
	/* Every path asked for must be one heimdal knows, before anything is printed. */
	if (diff_paths_known(&c, keys) < 0) {
		code = HM_EXIT_USAGE;
	} else {
		c.color = color >= 0 ? color : hm_term_color(stdout);
		pager_start();
		code = diff_all(&c, keys);
	}
	jv_free(keys);
	jv_free(state);
	ctx_free(&c);
	pager_wait();
	return code;
}
