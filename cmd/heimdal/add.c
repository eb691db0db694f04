/*
 * add.c - `heimdal add` and `heimdal forget`: start and stop tracking files.
 *
 * add copies files from $HOME into the repository (the root, or a profile's
 * overlay), records them in this machine's deployment record (record.h) and
 * commits them with the state, in one locked write: the file here is what
 * this machine deployed, so its later edits are drift for 'heimdal commit'.
 * forget removes files from the repository and from the record, leaves them
 * in $HOME, and lists them in .heimdal/forgotten so that the other machines
 * forget them too, keeping their copies.
 */
#include "builtin.h"
#include "record.h"
#include "remote.h"
#include "hm_beneath.h"
#include "hm_error.h"
#include "hm_opt.h"
#include "hm_file.h"
#include "hm_git.h"
#include "guard.h"
#include "hm_json.h"
#include "hm_machine.h"
#include "hm_state.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct file {
	char *key; /* under $HOME */
	char *src; /* in the repository: key, or profiles/NAME/key */
	char *data;
	size_t len;
	unsigned mode;
};

struct adding {
	struct file *f;
	size_t n;
	const char *home, *workdir, *profile;
	int home_fd; /* files are read beneath it */
	git_index *index;
	int force, here; /* here: the files are deployed on this machine (its profile) */
	size_t refused;
};

#define ADD_USAGE "heimdal add [--profile NAME | --shared] [--force] [--dry-run] PATH..."

static _Noreturn void
add_usage(FILE *f, int code)
{
	fprintf(f,
		"usage: %s\n"
		"\n"
		"Track files of $HOME (every regular file under a directory): copy them into\n"
		"the dotfiles repository, record them as deployed here, and commit.\n"
		"\n"
		"  -p, --profile NAME  into profiles/NAME/ (deployed only with that profile)\n"
		"      --shared        into the repository's root, for every profile (default)\n"
		"  -f, --force         add what looks secret or .heimdalignore leaves out\n"
		"      --dry-run       print what would be added; change nothing\n",
		ADD_USAGE);
	exit(code);
}

/* The reason key (full: its path) looks like a secret, or NULL. */
static const char *
secret(const char *key, const char *data, size_t len, mode_t mode)
{
	static const char *const names[] = { "id_rsa",     "id_dsa",  "id_ecdsa",
					     "id_ed25519", "*token*", "*secret*",
					     "*.pem",      "*.key",   NULL };
	const char *base = strrchr(key, '/') ? strrchr(key, '/') + 1 : key;

	for (int i = 0; names[i]; i++)
		if (fnmatch(names[i], base, FNM_CASEFOLD) == 0)
			return "its name looks like a key or a token";
	if (memmem(data, len, "PRIVATE KEY-----", 16))
		return "it holds a private key";
	if (!(mode & 077))
		return "only you may read it (mode 0600)";
	return NULL;
}

/* 1 when the index's blob at src is data[0..len). */
static int
same_as_index(struct adding *a, const char *src, const char *data, size_t len)
{
	const git_index_entry *e = git_index_get_bypath(a->index, src, 0);
	git_oid id;

	return e && git_odb_hash(&id, data, len, GIT_OBJECT_BLOB) == 0 &&
	       git_oid_equal(&id, &e->id);
}

/* Refuse key with why (exit 2 after all are seen), printing the reason. */
static void
refuse(struct adding *a, const char *key, const char *why)
{
	hm_error("%s: %s", key, why);
	a->refused++;
}

static void
add_file(struct adding *a, const char *key)
{
	struct file *f;
	struct stat st;
	const char *why;
	char *data;
	size_t len;
	int fd = -1;

	if (!hm_path_safe_relative(key, &why) || porcelain_reserved(key, a->workdir)) {
		refuse(a, key, why ? why : "heimdal's or git's own files are never tracked");
		goto out;
	}
	/* Read beneath $HOME, never through the file's own link or out of $HOME. */
	if ((fd = hm_beneath_open(a->home_fd, a->home, key, &st)) < 0) {
		refuse(a, key,
		       errno == ENOENT   ? "no such file in $HOME"
		       : errno == ELOOP  ? "a symlink; only regular files are tracked"
		       : errno == EXDEV  ? "its directory leaves $HOME"
		       : errno == EINVAL ? "not a regular file"
					 : strerror(errno));
		goto out;
	}
	if (!a->force && porcelain_ignored(a->workdir, key)) {
		refuse(a, key, ".heimdalignore leaves it out (--force adds it anyway)");
		goto out;
	}
	if (hm_read_fd(fd, &data, &len) < 0) {
		refuse(a, key, strerror(errno));
		goto out;
	}
	if (!a->force && (why = secret(key, data, len, st.st_mode))) {
		hm_error("%s: looks secret: %s; a repository is no place for it (--force adds "
			 "it anyway)",
			 key, why);
		a->refused++;
		free(data);
		goto out;
	}
	a->f = hm_xrealloc(a->f, (a->n + 1) * sizeof(*a->f));
	f = &a->f[a->n++];
	f->key = hm_xstrdup(key);
	f->src = a->profile ? hm_xasprintf("profiles/%s/%s", a->profile, key) : hm_xstrdup(key);
	if (git_index_get_bypath(a->index, f->src, 0) && !same_as_index(a, f->src, data, len)) {
		/* Tracked already: its edits are commit's, three-way (never a revert). */
		refuse(a, key,
		       "tracked already, with other content; 'heimdal commit' carries "
		       "the edits made here");
	}
	f->data = data;
	f->len = len;
	f->mode = st.st_mode & 0100 ? 0755 : 0644;
out:
	if (fd >= 0)
		close(fd);
}

static int
by_key(const void *x, const void *y)
{
	return strcmp(((const struct file *)x)->key, ((const struct file *)y)->key);
}

static struct adding *walking;

static int
walk_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	size_t hl = strlen(walking->home);

	(void)ftw;
	if (type == FTW_D || type == FTW_DP)
		return 0;
	if (type == FTW_DNR) {
		refuse(walking, path + hl + 1, "cannot read the directory");
		return 0;
	}
	/* Under a directory, what is not a regular file is passed over, said. */
	if (type == FTW_SL || type == FTW_SLN || !S_ISREG(st->st_mode)) {
		hm_warn("%s: %s; not added", path + hl + 1,
			type == FTW_SL || type == FTW_SLN ? "a symlink" : "not a regular file");
		return 0;
	}
	add_file(walking, path + hl + 1);
	return 0;
}

/* key: a file, or every file under a directory ($HOME/key, never through a link). */
static void
add_path(struct adding *a, const char *key)
{
	char *full = hm_path_join(a->home, key);
	struct stat st;

	if (lstat(full, &st) == 0 && S_ISDIR(st.st_mode)) {
		walking = a;
		if (porcelain_reserved(key, a->workdir))
			refuse(a, key, "heimdal's or git's own files are never tracked");
		else if (nftw(full, walk_one, 16, FTW_PHYS) < 0)
			refuse(a, key, strerror(errno));
	} else {
		add_file(a, key);
	}
	free(full);
}

/* The forgotten list (workdir's) without keys; a new buffer, or NULL when unchanged. */
static char *
unforget(const char *workdir, char *const *keys, size_t n, size_t *len)
{
	char *path = hm_path_join(workdir, FORGOTTEN), *buf, *out, *line, *save = NULL;
	size_t l, o = 0;
	int changed = 0;

	if (porcelain_read_regular(path, 1 << 20, &buf, &l) < 0) {
		free(path);
		return NULL;
	}
	free(path);
	out = hm_xmalloc(l + 1);
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		int drop = 0;

		for (size_t i = 0; i < n && !drop; i++)
			drop = strcmp(keys[i], line) == 0;
		if (drop) {
			changed = 1;
			continue;
		}
		o += (size_t)sprintf(out + o, "%s\n", line);
	}
	free(buf);
	if (!changed) {
		free(out);
		return NULL;
	}
	*len = o;
	return out;
}

/* Record, commit and report the files of a (state consumed). */
static void
add_commit(git_repository *repo, struct adding *a, jv state, const char *msg)
{
	struct hm_git_file *gf = hm_xmalloc((a->n + 1) * sizeof(*gf));
	char before[41] = "", after[41], **keys = hm_xmalloc((a->n + 1) * sizeof(*keys));
	jv record = record_load(state), files = jv_object_get(jv_copy(record), jv_string("files"));
	size_t ng = a->n, flen = 0;
	char *forgotten;

	for (size_t i = 0; i < a->n; i++) {
		struct file *f = &a->f[i];

		gf[i] = (struct hm_git_file){ f->src, f->data, f->len,
					      f->mode & 0100 ? GIT_FILEMODE_BLOB_EXECUTABLE : 0 };
		if (a->here)
			files = jv_object_set(files, jv_string(f->key),
					      record_entry(repo, f->data, f->len, f->mode));
		keys[i] = f->key;
	}
	if ((forgotten = unforget(a->workdir, keys, a->n, &flen)))
		gf[ng++] = (struct hm_git_file){ FORGOTTEN, forgotten, flen, 0 };
	hm_git_head(repo, before);
	record = jv_object_set(record, jv_string("files"), files);
	state = jv_object_set(state, jv_string("checksums"), record_checksums(record));
	state = porcelain_bump(state, "add", NULL);
	porcelain_state_save(jv_copy(state));
	remote_commit_with(repo, state, gf, ng, msg, after);
	record_save(record_follow(repo, record, before, after));
	for (size_t i = 0; i < a->n; i++)
		printf("  added     %s -> %s\n", a->f[i].key, a->f[i].src);
	printf("[%.7s] %s", after, msg);
	printf("'heimdal sync' shares %s with your other machines\n", a->n == 1 ? "it" : "them");
	jv_free(state);
	free(forgotten);
	free(keys);
	free(gf);
}

/* The options into a; 1 for --dry-run.  Exits on bad usage and after --help. */
static int
add_options(int argc, char **argv, struct adding *a)
{
	static const struct option opts[] = {
		{ "profile", required_argument, NULL, 'p' }, { "shared", no_argument, NULL, 's' },
		{ "force", no_argument, NULL, 'f' },         { "dry-run", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },          { NULL, 0, NULL, 0 },
	};
	int c, dry = 0, shared = 0;

	while ((c = hm_opt_next(argc, argv, "p:fh", opts, ADD_USAGE)) != -1) {
		switch (c) {
		case 'p':
			a->profile = optarg;
			if (!*optarg || strchr(optarg, '/') || !strcmp(optarg, ".") ||
			    !strcmp(optarg, ".."))
				hm_die(HM_EXIT_USAGE, "--profile: not a profile name: '%s'",
				       optarg);
			break;
		case 's':
			shared = 1;
			break;
		case 'f':
			a->force = 1;
			break;
		case 'n':
			dry = 1;
			break;
		case 'h':
			add_usage(stdout, 0);
		}
	}
	if (shared && a->profile)
		hm_die(HM_EXIT_USAGE, "--profile and --shared exclude each other");
	return dry;
}

/* $HOME, the work tree and its index for a; exits when one cannot be had. */
static void
add_open(struct adding *a, git_repository *repo, jv state, const char *home_real)
{
	const char *active = hm_json_str(state, "active_profile");

	a->home = home_real;
	if ((a->home_fd = open(home_real, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		hm_die_errno(HM_EXIT_ENV, "%s", home_real);
	a->workdir = git_repository_workdir(repo);
	a->here = !a->profile || (active && strcmp(a->profile, active) == 0);
	if (git_repository_index(&a->index, repo) < 0)
		hm_die(HM_EXIT_ENV, "%s: cannot read the index: %s", a->workdir,
		       hm_git_last_error());
}

/* The files under keys into a, sorted; exits when one is refused or there is none. */
static void
add_collect(struct adding *a, char **keys)
{
	for (char **k = keys; *k; k++)
		add_path(a, *k);
	if (a->refused)
		exit(HM_EXIT_USAGE);
	if (a->n == 0)
		hm_die(HM_EXIT_USAGE, "no regular file to add under the paths given");
	qsort(a->f, a->n, sizeof(*a->f), by_key);
}

static void
adding_free(struct adding *a)
{
	for (size_t i = 0; i < a->n; i++) {
		free(a->f[i].key);
		free(a->f[i].src);
		free(a->f[i].data);
	}
	free(a->f);
	close(a->home_fd);
	git_index_free(a->index);
}

int
cmd_add(int argc, char **argv)
{
	GUARD guard = GUARD_INIT;
	struct adding a = { 0 };
	int dry = add_options(argc, argv, &a);
	git_repository *repo;
	char **keys, *home_real, *msg;
	jv state;

	if (!(keys = porcelain_path_keys(argc - optind, argv + optind)))
		hm_opt_die(ADD_USAGE, "name the file(s) to add");
	if (!getenv("HOME") || !(home_real = realpath(getenv("HOME"), NULL)))
		hm_die(HM_EXIT_ENV, "HOME is not set or does not exist");
	if (guard_acquire(&guard, "add", dry ? GUARD_DRY_RUN : 0) < 0)
		return hm_last_code();
	state = porcelain_state_load();
	porcelain_need_tool("lineage", "record the files in the state's lineage");
	repo = remote_open(state);
	add_open(&a, repo, state, home_real);
	add_collect(&a, keys);
	if (dry) {
		for (size_t i = 0; i < a.n; i++)
			printf("  would add %s -> %s\n", a.f[i].key, a.f[i].src);
		jv_free(state);
	} else {
		msg = a.n == 1 ? hm_xasprintf("heimdal: add %s\n", a.f[0].key)
			       : hm_xasprintf("heimdal: add %zu files\n", a.n);
		add_commit(repo, &a, state, msg);
		free(msg);
	}
	adding_free(&a);
	free(home_real);
	porcelain_keys_free(keys);
	git_repository_free(repo);
	return 0;
}

#define FORGET_USAGE "heimdal forget [--yes] PATH..."

static _Noreturn void
forget_usage(FILE *f, int code)
{
	fprintf(f,
		"usage: %s\n"
		"\n"
		"Stop tracking files: remove them from the dotfiles repository and commit.\n"
		"The files stay in $HOME here, and on the other machines.\n"
		"\n"
		"  -y, --yes   do not ask (needed when stdin is not a terminal)\n",
		FORGET_USAGE);
	exit(code);
}

/* Ask on the terminal whether to forget the n files of fs. */
static int
confirm(const struct dotfile *const *fs, size_t n)
{
	char answer[16] = "";

	printf("heimdal forget will stop tracking (the files stay in $HOME):\n");
	for (size_t i = 0; i < n; i++)
		printf("  %s\n", fs[i]->key);
	printf("Forget %s? [y/N] ", n == 1 ? "it" : "them");
	fflush(stdout);
	return fgets(answer, sizeof(answer), stdin) && (answer[0] == 'y' || answer[0] == 'Y');
}

/* The forgotten list with keys appended (each once); a new buffer. */
static char *
forgotten_with(const char *workdir, const struct dotfile *const *fs, size_t n, size_t *len)
{
	char *path = hm_path_join(workdir, FORGOTTEN), *buf = NULL, *out;
	size_t l = 0, o;

	if (porcelain_read_regular(path, 1 << 20, &buf, &l) < 0)
		buf = NULL, l = 0;
	free(path);
	out = hm_xmalloc(l + 2);
	memcpy(out, buf ? buf : "", l);
	o = l;
	if (o && out[o - 1] != '\n')
		out[o++] = '\n';
	for (size_t i = 0; i < n; i++) {
		char *line = hm_xasprintf("\n%s\n", fs[i]->key);
		char *prefixed = hm_xasprintf("\n%.*s", (int)o, out);

		if (!strstr(prefixed, line)) {
			out = hm_xrealloc(out, o + strlen(fs[i]->key) + 2);
			o += (size_t)sprintf(out + o, "%s\n", fs[i]->key);
		}
		free(line);
		free(prefixed);
	}
	free(buf);
	*len = o;
	return out;
}

int
cmd_forget(int argc, char **argv)
{
	GUARD guard = GUARD_INIT;
	static const struct option opts[] = {
		{ "yes", no_argument, NULL, 'y' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct dotfile **fs;
	struct hm_git_file *gf;
	struct dotfiles d;
	int c, yes = 0;
	git_repository *repo;
	char **keys, *list, *msg, before[41] = "", after[41];
	size_t n = 0, llen;
	jv state, record, files;

	while ((c = hm_opt_next(argc, argv, "yh", opts, FORGET_USAGE)) != -1) {
		switch (c) {
		case 'y':
			yes = 1;
			break;
		case 'h':
			forget_usage(stdout, 0);
		}
	}
	if (!(keys = porcelain_path_keys(argc - optind, argv + optind)))
		hm_opt_die(FORGET_USAGE, "name the file(s) to forget");
	if (!yes && !isatty(0))
		hm_die(HM_EXIT_USAGE,
		       "stdin is not a terminal: pass --yes to forget without asking");
	if (guard_acquire(&guard, "forget", 0) < 0)
		return hm_last_code();
	state = porcelain_state_load();
	porcelain_need_tool("lineage", "record the change in the state's lineage");
	repo = remote_open(state);
	if (porcelain_dotfiles_list(repo, hm_json_str(state, "active_profile"), &d) < 0)
		exit(hm_last_code());
	fs = hm_xmalloc(((size_t)(argc - optind) + 1) * sizeof(*fs));
	for (char **k = keys; *k; k++)
		if (!(fs[n++] = porcelain_dotfiles_find(&d, *k)))
			hm_die(HM_EXIT_USAGE, "%s: not a file the repository tracks", *k);
	if (!yes && !confirm(fs, n)) {
		printf("Nothing forgotten.\n");
		exit(HM_EXIT_FOUND);
	}
	gf = hm_xmalloc((n + 1) * sizeof(*gf));
	record = record_load(state);
	files = jv_object_get(jv_copy(record), jv_string("files"));
	for (size_t i = 0; i < n; i++) {
		gf[i] = (struct hm_git_file){ fs[i]->src, NULL, 0, 0 };
		files = jv_object_delete(files, jv_string(fs[i]->key));
	}
	list = forgotten_with(d.workdir, fs, n, &llen);
	gf[n] = (struct hm_git_file){ FORGOTTEN, list, llen, 0 };
	hm_git_head(repo, before);
	record = jv_object_set(record, jv_string("files"), files);
	state = jv_object_set(state, jv_string("checksums"), record_checksums(record));
	state = porcelain_bump(state, "forget", NULL);
	porcelain_state_save(jv_copy(state));
	msg = n == 1 ? hm_xasprintf("heimdal: forget %s\n", fs[0]->key)
		     : hm_xasprintf("heimdal: forget %zu files\n", n);
	remote_commit_with(repo, state, gf, n + 1, msg, after);
	record_save(record_follow(repo, record, before, after));
	for (size_t i = 0; i < n; i++)
		printf("  forgotten %s (left in $HOME)\n", fs[i]->key);
	printf("[%.7s] %s'heimdal sync' shares it: the other machines stop tracking %s and "
	       "keep their copies\n",
	       after, msg, n == 1 ? "it" : "them");
	jv_free(state);
	free(msg);
	free(list);
	free(gf);
	free(fs);
	porcelain_dotfiles_free(&d);
	porcelain_keys_free(keys);
	git_repository_free(repo);
	return 0;
}
