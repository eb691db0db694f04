/*
 * commit.c - `heimdal commit -m MSG`: accept what changed in $HOME.
 *
 * Every drifted file is copied back into the repository (into the profile
 * overlay when that is where it came from), its checksum updated, the lineage
 * bumped, the state written locally and into the repository's
 * .heimdal/state.json, and all tracked changes committed with libgit2.
 */
#include "builtin.h"
#include "hm_error.h"
#include "hm_file.h"
#include "hm_git.h"
#include "hm_guard.h"
#include "hm_hash.h"
#include "hm_json.h"
#include "hm_machine.h"
#include "hm_state.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct accepted {
	char *key, *dst; /* dst: the repository's file */
	char *data;
	size_t len;
	mode_t mode;
};

static _Noreturn void
usage(FILE *f, int code)
{
	fprintf(f, "usage: heimdal commit -m MESSAGE\n"
		   "\n"
		   "  -m, --message MESSAGE  the commit message (required)\n");
	exit(code);
}

static _Noreturn void
git_die(const char *what, const char *dir)
{
	hm_die(HM_EXIT_ENV, "%s: %s: %s", dir, what, hm_git_last_error());
}

/* Tracked files changed in the work tree or the index, untracked ones aside. */
static size_t
tracked_changes(git_repository *repo, const char *dir)
{
	git_status_options o = GIT_STATUS_OPTIONS_INIT;
	git_status_list *list;
	size_t n;

	o.show = GIT_STATUS_SHOW_INDEX_AND_WORKDIR;
	o.flags = GIT_STATUS_OPT_EXCLUDE_SUBMODULES;
	if (git_status_list_new(&list, repo, &o) < 0)
		git_die("cannot read the status", dir);
	n = git_status_list_entrycount(list);
	git_status_list_free(list);
	return n;
}

static void
commit_all(git_repository *repo, const char *dir, const struct accepted *a, size_t n,
	   const char *msg)
{
	git_index *index;
	git_oid tree_id, parent_id, id;
	git_tree *tree;
	git_commit *parent = NULL;
	git_signature *sig;
	git_reference *head;
	const char *branch = "HEAD";

	if (git_repository_index(&index, repo) < 0 ||
	    git_index_update_all(index, NULL, NULL, NULL) < 0)
		git_die("cannot update the index", dir);
	for (size_t i = 0; i < n; i++)
		if (git_index_add_bypath(index, a[i].dst + strlen(dir)) < 0)
			git_die("cannot add to the index", dir);
	if (git_index_add_bypath(index, ".heimdal/state.json") < 0 || git_index_write(index) < 0 ||
	    git_index_write_tree(&tree_id, index) < 0 || git_tree_lookup(&tree, repo, &tree_id) < 0)
		git_die("cannot write the index", dir);
	if (git_signature_default(&sig, repo) < 0) {
		char *email = hm_xasprintf("%s@%s", hm_machine_user(), hm_machine_hostname());

		if (git_signature_now(&sig, hm_machine_user(), email) < 0)
			git_die("cannot make a signature", dir);
		free(email);
	}
	if (git_reference_name_to_id(&parent_id, repo, "HEAD") == 0 &&
	    git_commit_lookup(&parent, repo, &parent_id) < 0)
		git_die("cannot read HEAD", dir);
	if (git_commit_create(&id, repo, "HEAD", sig, sig, NULL, msg, tree, parent ? 1 : 0,
			      (const git_commit **)&parent) < 0)
		git_die("cannot commit", dir);
	if (git_repository_head(&head, repo) == 0) {
		branch = git_reference_shorthand(head);
		printf("[%s %.7s] %s\n", branch, git_oid_tostr_s(&id), msg);
		git_reference_free(head);
	} else {
		printf("[%s %.7s] %s\n", branch, git_oid_tostr_s(&id), msg);
	}
	git_signature_free(sig);
	git_commit_free(parent);
	git_tree_free(tree);
	git_index_free(index);
}

int
cmd_commit(int argc, char **argv)
{
	HM_GUARD guard = HM_GUARD_INIT;
	static const struct option opts[] = {
		{ "message", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *msg = NULL, *home = getenv("HOME");
	struct accepted *a;
	struct dotfiles d;
	size_t na = 0;
	char *dir, *path;
	int c;
	git_repository *repo;
	jv state, report, sums;

	while ((c = getopt_long(argc, argv, "m:h", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			msg = optarg;
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
	if (!msg || !*msg) {
		hm_error("a commit message is required: -m MESSAGE");
		usage(stderr, HM_EXIT_USAGE);
	}
	if (!home)
		hm_die(HM_EXIT_ENV, "HOME is not set");
	if (hm_guard_acquire(&guard, "commit", 0) < 0)
		return hm_last_code();
	state = porcelain_state_load();
	porcelain_need_tool("lineage", "record the commit in the state's lineage");
	dir = porcelain_dotfiles_dir(state);
	if (!(repo = hm_git_open(dir)) || porcelain_repo_recover(repo, dir) < 0 ||
	    porcelain_dotfiles_list(repo, hm_json_str(state, "active_profile"), &d) < 0)
		exit(hm_last_code());
	report = porcelain_drift(jv_copy(state), 0);
	sums = jv_object_get(jv_copy(state), jv_string("checksums"));
	{
		jv mod = jv_object_get(jv_copy(report), jv_string("modified"));

		a = calloc(jv_array_length(jv_copy(mod)) + 1, sizeof(*a));
		if (!a)
			hm_die(HM_EXIT_ENV, "out of memory");
		/* Read everything first: nothing is written until the bump succeeded. */
		jv_array_foreach(mod, i, e) {
			const char *key = hm_json_str(e, "path");
			const struct dotfile *f = porcelain_dotfiles_find(&d, key);
			char sum[HM_HASH_HEX_MAX], *src = hm_path_join(home, key);
			struct stat st;

			if (stat(src, &st) < 0 || hm_file_read(src, &a[na].data, &a[na].len) < 0 ||
			    hm_hash_buf(HM_HASH_SHA256, a[na].data, a[na].len, sum) < 0)
				exit(HM_EXIT_ENV);
			a[na].key = hm_xstrdup(key);
			a[na].dst = hm_path_join(d.workdir, f ? f->src : key);
			a[na].mode = st.st_mode & 0111 ? 0755 : 0644;
			sums = jv_object_set(sums, jv_string(key), jv_string(sum));
			na++;
			free(src);
			jv_free(e);
		}
		jv_free(mod);
	}
	{
		jv miss = jv_object_get(jv_copy(report), jv_string("missing"));

		jv_array_foreach(miss, i, m) {
			hm_warn("%s: missing from $HOME; not committed ('heimdal apply' restores it)",
				jv_string_value(m));
			jv_free(m);
		}
		jv_free(miss);
		miss = jv_object_get(jv_copy(report), jv_string("errors"));
		jv_array_foreach(miss, i, m) {
			hm_warn("%s: %s; not committed", hm_json_str(m, "path"), hm_json_str(m, "error"));
			jv_free(m);
		}
		jv_free(miss);
	}
	jv_free(report);
	if (na == 0 && tracked_changes(repo, dir) == 0) {
		printf("Nothing to commit: no drifted files and no changes in %s\n", dir);
		jv_free(sums);
		jv_free(state);
		free(a);
		free(dir);
		porcelain_dotfiles_free(&d);
		git_repository_free(repo);
		return 0;
	}
	state = jv_object_set(state, jv_string("checksums"), sums);
	state = porcelain_bump(state, "commit", NULL);
	for (size_t i = 0; i < na; i++) {
		char *parent = hm_xstrdup(a[i].dst);

		*strrchr(parent, '/') = '\0';
		if (hm_mkdir_p(parent, 0755) < 0 ||
		    hm_file_write_atomic(a[i].dst, a[i].data, a[i].len, a[i].mode) < 0)
			exit(HM_EXIT_ENV);
		printf("  accepted  %s -> %s\n", a[i].key, a[i].dst + strlen(d.workdir));
		free(parent);
	}
	porcelain_state_save(jv_copy(state));
	path = hm_path_join(d.workdir, ".heimdal");
	if (hm_mkdir_p(path, 0755) < 0)
		exit(HM_EXIT_ENV);
	free(path);
	path = hm_path_join(d.workdir, ".heimdal/state.json");
	if (hm_state_write(path, state) < 0)
		exit(HM_EXIT_ENV);
	commit_all(repo, d.workdir, a, na, msg);
	for (size_t i = 0; i < na; i++) {
		free(a[i].key);
		free(a[i].dst);
		free(a[i].data);
	}
	free(a);
	free(path);
	free(dir);
	porcelain_dotfiles_free(&d);
	git_repository_free(repo);
	return 0;
}
