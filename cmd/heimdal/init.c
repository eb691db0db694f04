/*
 * init.c - `heimdal init`: clone the dotfiles repository and join its state
 * lineage (or start one), writing this machine's state.
 */
#include "builtin.h"
#include "guard.h"
#include "remote.h"
#include "hm_error.h"
#include "hm_opt.h"
#include "hm_file.h"
#include "hm_json.h"
#include "hm_machine.h"
#include "hm_state.h"
#include "hm_term.h"
#include "hm_time.h"

#include <dirent.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define INIT_USAGE "heimdal init --profile NAME --repo URL [--path DIR] [--force] [--empty]"

/* Two URLs name the same repository when they differ only by a trailing "/" or ".git". */
static int
same_url(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	while (la > 1 && a[la - 1] == '/')
		la--;
	while (lb > 1 && b[lb - 1] == '/')
		lb--;
	if (la > 4 && strncmp(a + la - 4, ".git", 4) == 0)
		la -= 4;
	if (lb > 4 && strncmp(b + lb - 4, ".git", 4) == 0)
		lb -= 4;
	return la == lb && strncmp(a, b, la) == 0;
}

static int
empty_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int empty = 1;

	if (!d)
		return 0;
	while (empty && (e = readdir(d)))
		empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
	closedir(d);
	return empty;
}

/* The tools init composes, checked before anything is cloned or written. */
static void
need_tools(void)
{
	porcelain_need_tool("lineage", "record this machine in the state's lineage");
	porcelain_need_tool("migrate", "start a new state");
}

/* The clone at path: reused when its origin is url, made otherwise; exits on failure. */
static git_repository *
ensure_clone(const char *url, const char *path, int empty_ok)
{
	char reason[512], *have;
	git_repository *repo = NULL;
	int r;

	hm_git_init();
	if (hm_file_exists(path) && !empty_dir(path)) {
		if (git_repository_open_ext(&repo, path, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0)
			hm_die(HM_EXIT_USAGE,
			       "%s: exists and is not a git repository "
			       "(choose another --path)",
			       path);
		have = hm_git_remote_url(repo, REMOTE_NAME);
		if (!have || !same_url(have, url))
			hm_die(HM_EXIT_USAGE, "%s: its remote '%s' is %s, not %s (--repo)", path,
			       REMOTE_NAME, have ? have : "not set", url);
		free(have);
		need_tools();
		printf("Using the existing clone at %s\n", path);
		return repo;
	}
	need_tools();
	r = hm_git_clone(url, path, empty_ok, remote_timeout(), reason, sizeof(reason));
	if (r == HM_GIT_UNREACHABLE) {
		hm_git_warn_unreachable(reason, NULL);
		hm_die(HM_EXIT_ENV,
		       "cannot clone %s: run 'heimdal init' again when the "
		       "repository can be reached",
		       url);
	}
	if (r < 0)
		exit(hm_last_code());
	printf("%s Cloned %s into %s\n", hm_mark(HM_MARK_OK), url, path);
	if (!(repo = hm_git_open(path)))
		exit(hm_last_code());
	return repo;
}

/* Keep a copy of the state init is about to replace: backups/state_init_<stamp>.json. */
static void
backup_state(const char *path)
{
	char *dst = porcelain_backup_path("state_init");

	if (hm_file_copy(path, dst) < 0)
		hm_die(HM_EXIT_ENV, "no backup of %s: nothing changed", path);
	printf("%s Backup created: %s\n", hm_mark(HM_MARK_OK), dst);
	free(dst);
}

/* A new lineage: a V1 document through heimdal-migrate, as every V2 state starts. */
static jv
new_state(const char *profile, const char *path, const char *url)
{
	char *argv[] = { "heimdal-migrate", NULL };
	jv v1 = JV_OBJECT(jv_string("active_profile"), jv_string(profile),
			  jv_string("dotfiles_path"), jv_string(path), jv_string("repo_url"),
			  jv_string(url));

	return remote_tool("migrate", argv, v1, NULL);
}

struct init_opts {
	const char *profile, *url, *dir;
	int force, empty_ok;
};

/* The options of cmd_init into o; 1 when --help was printed, exits on bad usage. */
static int
init_options(int argc, char **argv, struct init_opts *o)
{
	static const struct option opts[] = {
		{ "profile", required_argument, NULL, 'p' },
		{ "repo", required_argument, NULL, 'r' },
		{ "path", required_argument, NULL, 'd' },
		{ "force", no_argument, NULL, 'f' },
		{ "empty", no_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = hm_opt_next(argc, argv, "p:fh", opts, INIT_USAGE)) != -1) {
		switch (c) {
		case 'p':
			o->profile = optarg;
			break;
		case 'r':
			o->url = optarg;
			break;
		case 'd':
			o->dir = optarg;
			break;
		case 'f':
			o->force = 1;
			break;
		case 'e':
			o->empty_ok = 1;
			break;
		case 'h':
			printf("usage: %s\n", INIT_USAGE);
			return 1;
		}
	}
	if (optind < argc)
		hm_die(HM_EXIT_USAGE, "unexpected argument '%s'\nusage: %s", argv[optind],
		       INIT_USAGE);
	if (!o->profile || !*o->profile || !o->url || !*o->url)
		hm_die(HM_EXIT_USAGE, "%s is required\nusage: %s",
		       !o->profile || !*o->profile ? "--profile" : "--repo", INIT_USAGE);
	if (!*o->dir)
		hm_die(HM_EXIT_USAGE, "--path: must not be empty");
	return 0;
}

/*
 * This machine's state before init: invalid when there is none.  Refuses
 * (exits) before anything is touched when it cannot be read, or when it
 * exists and force is not set; a V1 state comes back migrated.
 */
static jv
init_local_state(const char *state_path, int force)
{
	int missing, code;
	jv local = hm_state_read(state_path, &code, &missing);

	if (!jv_is_valid(local) && !missing) {
		jv msg = jv_invalid_get_msg(local);

		hm_die(code, "%s (fix it or move it away before 'heimdal init')",
		       jv_string_value(msg));
	}
	if (jv_is_valid(local) && !force)
		hm_die(HM_EXIT_USAGE,
		       "this machine is already initialized (%s, profile '%s'); "
		       "use --force to initialize it again (the current state is "
		       "kept as a backup)",
		       state_path, hm_json_str(local, "active_profile") ?: "?");
	if (jv_is_valid(local) && !jv_object_has(jv_copy(local), jv_string("version"))) {
		jv_free(local);
		local = porcelain_state_load(); /* V1: migrated, with its backup */
	}
	return local;
}

/* --path made absolute (the caller frees it), as the spec's states store it. */
static char *
init_dotfiles_path(const char *dir)
{
	jv d = JV_OBJECT(jv_string("dotfiles_path"), jv_string(dir));
	char *path = porcelain_dotfiles_dir(d);

	jv_free(d);
	if (path[0] != '/') {
		char *cwd = getcwd(NULL, 0);
		char *abs = hm_xasprintf("%s/%s", cwd ? cwd : ".", path);

		free(cwd);
		free(path);
		path = abs;
	}
	return path;
}

/*
 * The lineage to join: the repository's; else the one this machine had
 * (--force never discards history); else a new one.  When the machine's
 * own state shares the repository's lineage, the two are merged.  Borrows
 * local; *how names which it was ("Joined", "Kept" or "Started").
 */
static jv
init_lineage(git_repository *repo, jv local, const struct init_opts *o, const char *path,
	     const char **how)
{
	jv shared = remote_state_at(repo, "HEAD"), s;

	if (jv_get_kind(shared) == JV_KIND_OBJECT) {
		jv lpath = JV_ARRAY(jv_string("lineage"), jv_string("id"));
		jv ll = jv_getpath(jv_copy(local), jv_copy(lpath));
		jv sl = jv_getpath(jv_copy(shared), lpath);
		int same = jv_equal(ll, sl);

		if (jv_is_valid(local) && same) {
			char *margv[] = { "heimdal-merge", "--strategy", "merge", NULL };

			s = remote_tool("merge", margv,
					JV_OBJECT(jv_string("local"), jv_copy(local),
						  jv_string("remote"), shared),
					NULL);
		} else {
			s = shared;
		}
		*how = "Joined";
	} else if (jv_is_valid(local)) {
		jv_free(shared);
		s = jv_copy(local);
		*how = "Kept";
	} else {
		jv_free(shared);
		s = new_state(o->profile, path, o->url);
		*how = "Started";
	}
	return s;
}

/* What init did, on stdout; borrows s. */
static void
init_report(jv s, const char *how, const char *state_path, const char *url)
{
	jv l = jv_object_get(jv_copy(s), jv_string("lineage"));

	printf("%s %s lineage %s as %s (serial %lld)\n", hm_mark(HM_MARK_OK), how,
	       hm_json_str(l, "id"), hm_machine_hostname(), hm_json_int(l, "serial", 0));
	jv_free(l);
	printf("%s State saved to %s\n", hm_mark(HM_MARK_OK), state_path);
	if (strcmp(how, "Joined") != 0)
		printf("Run 'heimdal sync' to share it through %s\n", url);
}

int
cmd_init(int argc, char **argv)
{
	struct init_opts o = { .dir = "~/.dotfiles" };
	GUARD guard = GUARD_INIT;
	const char *how;
	char *path, *stored, *state_path, head[41] = "";
	git_repository *repo;
	jv local, s;

	if (init_options(argc, argv, &o))
		return 0;
	path = init_dotfiles_path(o.dir);
	/* Stored absolute, as the spec's states are: another home is another path. */
	stored = hm_xstrdup(path);
	if (hm_home_ensure() < 0)
		exit(HM_EXIT_ENV);
	/* init writes the state: under the lock, this machine's only (nothing is
	 * pushed), taken before the state is read. */
	if (guard_acquire(&guard, "init", GUARD_SETTLES | GUARD_REMOTE_LATER) < 0) {
		free(stored);
		free(path);
		return hm_last_code();
	}
	/* Refuse before changing anything: an initialized machine needs --force. */
	state_path = hm_state_path();
	local = init_local_state(state_path, o.force);
	repo = ensure_clone(o.url, path, o.empty_ok);
	hm_git_head(repo, head); /* stays "" in an empty repository: no commit to record */

	s = init_lineage(repo, local, &o, stored, &how);
	s = jv_object_set(s, jv_string("active_profile"), jv_string(o.profile));
	s = jv_object_set(s, jv_string("dotfiles_path"), jv_string(stored));
	s = jv_object_set(s, jv_string("repo_url"), jv_string(o.url));
	s = remote_localize(s, jv_null());
	s = porcelain_bump(s, "init", head[0] ? head : NULL);
	if (jv_is_valid(local))
		backup_state(state_path);
	porcelain_state_save(jv_copy(s));
	init_report(s, how, state_path, o.url);
	jv_free(s);
	jv_free(local);
	git_repository_free(repo);
	free(stored);
	free(path);
	free(state_path);
	return 0;
}
