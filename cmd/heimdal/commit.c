/*
 * commit.c - `heimdal commit -m MSG`: accept what changed in $HOME.
 *
 * Only files the repository tracks for this machine's profile are looked at,
 * and each is decided three-way against this machine's deployment record
 * (record.h): a file changed here whose repository copy is what this machine
 * deployed is copied back into the repository (into the profile overlay when
 * that is where it came from), mode included; a file unchanged here whose
 * repository copy moved on is left alone (never reverted: 'heimdal apply'
 * deploys it); a file changed on both sides refuses the commit (exit 1),
 * naming the file and the command that settles it.  Then the lineage is
 * bumped, the state written locally and into the repository with this
 * machine's published facts, and all tracked changes committed with libgit2.
 */
#include "builtin.h"
#include "record.h"
#include "hm_beneath.h"
#include "hm_error.h"
#include "hm_opt.h"
#include "hm_file.h"
#include "hm_git.h"
#include "guard.h"
#include "hm_hash.h"
#include "hm_json.h"
#include "hm_machine.h"
#include "hm_sigchain.h"
#include "hm_state.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct accepted {
	char *key, *dst; /* dst: the repository's file */
	char *data;
	size_t len;
	mode_t mode;
};

struct review {
	struct accepted *a;
	size_t na;
	size_t both;   /* files changed here and upstream */
	size_t behind; /* files changed upstream only: not deployed here yet */
	jv files;      /* the new record's files */
	git_repository *repo;
	const char *home_real;
	int home_fd, work_fd; /* $HOME and the work tree, everything read beneath them */
};
#define COMMIT_USAGE "heimdal commit -m MESSAGE"

static _Noreturn void
usage(FILE *f, int code)
{
	fprintf(f, "usage: " COMMIT_USAGE "\n"
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
	   const char *mine, const char *msg, char out[41])
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
	if (git_index_add_bypath(index, HM_REPO_STATE) < 0 ||
	    git_index_add_bypath(index, mine) < 0 || git_index_write(index) < 0 ||
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
	git_oid_tostr(out, 41, &id);
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

/* The file here, its bytes and mode; 0, or -1 (warned) when not a file. */
static int
read_here(struct review *rv, const char *key, char **buf, size_t *len, mode_t *mode, int deployed)
{
	struct stat st;

	if (hm_beneath_read(rv->home_fd, rv->home_real, key, buf, len, &st) == 0) {
		*mode = st.st_mode & 0100 ? 0755 : 0644;
		return 0;
	}
	if (errno == ENOENT && deployed)
		hm_warn("%s: missing from $HOME; not committed ('heimdal apply' restores it)", key);
	else if (errno != ENOENT)
		hm_warn("%s: %s; not committed", key,
			errno == ELOOP    ? "a symlink in $HOME"
			: errno == EXDEV  ? "its directory resolves outside $HOME"
			: errno == EINVAL ? "not a regular file"
					  : strerror(errno));
	return -1;
}

/* Decide one tracked file three-way: accept it, leave it, or count it as both changed. */
static void
review_file(struct review *rv, const struct dotfile *f, const char *workdir)
{
	jv base = jv_object_get(jv_copy(rv->files), jv_string(f->key));
	const char *bsum = jv_is_valid(base) ? hm_json_str(base, "sha256") : NULL;
	const char *bmode = jv_is_valid(base) ? hm_json_str(base, "mode") : NULL;
	char *dst = hm_path_join(workdir, f->src);
	char *here = NULL, *repo = NULL, hs[HM_HASH_HEX_MAX], rs[HM_HASH_HEX_MAX];
	size_t hl, rl;
	struct stat st;
	mode_t hmode;
	int same, upstream_moved;

	if (read_here(rv, f->key, &here, &hl, &hmode, bsum != NULL) < 0)
		goto out;
	/* The repository's file itself, through no symlink: never written through one. */
	if (hm_beneath_read(rv->work_fd, NULL, f->src, &repo, &rl, &st) < 0) {
		hm_warn("%s: %s is not a regular file inside the repository; not committed", f->key,
			f->src);
		goto out;
	}
	hm_hash_buf(HM_HASH_SHA256, here, hl, hs);
	hm_hash_buf(HM_HASH_SHA256, repo, rl, rs);
	same = strcmp(hs, rs) == 0;
	if (same && (hmode & 0100) == (f->mode & 0100)) {
		/* Nothing to carry; a file tracked since the last apply is recorded. */
		if (!bsum || strcmp(bsum, rs) != 0 ||
		    (bmode && strcmp(bmode, f->mode & 0100 ? "100755" : "100644")))
			rv->files = jv_object_set(rv->files, jv_string(f->key),
						  record_entry(rv->repo, repo, rl, f->mode));
		goto out;
	}
	if (!bsum) {
		hm_warn("%s: never deployed on this machine, and not the repository's; not "
			"committed ('heimdal apply --force %s' deploys the repository's, keeping a "
			"backup of this one)",
			f->key, f->key);
		goto out;
	}
	/* Upstream moved since this machine deployed it: content, or mode alone. */
	upstream_moved = strcmp(bsum, rs) != 0 ||
			 (bmode && strcmp(bmode, f->mode & 0100 ? "100755" : "100644") != 0);
	if (upstream_moved && strcmp(bsum, hs) == 0) {
		printf("  behind    %s (changed upstream; 'heimdal apply' deploys it)\n", f->key);
		rv->behind++;
		goto out;
	}
	if (upstream_moved) {
		hm_error("%s: changed here and upstream since this machine deployed it; run "
			 "'heimdal apply' to merge the two, then commit again",
			 f->key);
		rv->both++;
		goto out;
	}
	rv->a[rv->na] = (struct accepted){ hm_xstrdup(f->key), dst, here, hl, hmode };
	rv->na++;
	rv->files = jv_object_set(rv->files, jv_string(f->key),
				  record_entry(rv->repo, here, hl, hmode));
	dst = here = NULL;
out:
	jv_free(base);
	free(dst);
	free(here);
	free(repo);
}

/* The commit message (-m), checked; exits on bad usage and after --help. */
static const char *
commit_message(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "message", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *msg = NULL;
	int c;

	while ((c = hm_opt_next(argc, argv, "m:h", opts, COMMIT_USAGE)) != -1) {
		switch (c) {
		case 'm':
			msg = optarg;
			break;
		case 'h':
			usage(stdout, 0);
		}
	}
	if (optind < argc)
		hm_opt_die(COMMIT_USAGE, "unexpected argument '%s'", argv[optind]);
	if (!msg || !*msg)
		hm_opt_die(COMMIT_USAGE, "a commit message is required: -m MESSAGE");
	return msg;
}

/* The work tree and $HOME, everything is read beneath; exits when one cannot be opened. */
static void
review_open(struct review *rv, const char *workdir, const char *home_real)
{
	if ((rv->work_fd = open(workdir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    (rv->home_fd = open(home_real, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		hm_die_errno(HM_EXIT_ENV, "%s", rv->work_fd < 0 ? workdir : home_real);
}

/* The review of d's files against record (borrowed): every file decided, nothing written. */
static void
review_all(struct review *rv, const struct dotfiles *d, const char *home_real, git_repository *repo,
	   jv record)
{
	rv->files = jv_object_get(jv_copy(record), jv_string("files"));
	rv->repo = repo;
	rv->home_real = home_real;
	rv->a = calloc(d->n + 1, sizeof(*rv->a));
	if (!rv->a)
		hm_die(HM_EXIT_ENV, "out of memory");
	/* Read everything first: nothing is written until every file is decided. */
	for (size_t i = 0; i < d->n; i++)
		review_file(rv, &d->f[i], d->workdir);
}

/* The accepted files into the work tree beneath it, through no symlink the repository carries. */
static void
write_accepted(const struct review *rv, const char *workdir)
{
	for (size_t i = 0; i < rv->na; i++) {
		const struct accepted *a = &rv->a[i];
		const char *rel = a->dst + strlen(workdir);

		if (hm_file_write_beneath(rv->work_fd, NULL, rel, a->dst, a->data, a->len,
					  a->mode) < 0)
			exit(HM_EXIT_ENV);
		printf("  accepted  %s -> %s\n", a->key, rel);
	}
}

/* buf[0..len) (freed) as the work tree's file rel, beneath it; exits on failure. */
static void
write_repo_file(int work_fd, const char *workdir, const char *rel, char *buf, size_t len)
{
	char *path = hm_path_join(workdir, rel);

	if (hm_file_write_beneath(work_fd, NULL, rel, path, buf, len, 0644) < 0)
		exit(HM_EXIT_ENV);
	free(buf);
	free(path);
}

/*
 * The state (borrowed) and this machine's published facts into the
 * repository, everything committed, and record (consumed) saved: it follows
 * HEAD when this machine had deployed all of it (and still has: no file is
 * behind what the repository holds).
 */
static void
publish(const struct review *rv, const char *workdir, jv state, jv record, const char *msg,
	const char *before)
{
	char *mine, *buf, after[41];
	sigset_t held;
	size_t len;

	buf = hm_json_dump(hm_state_canonical(jv_copy(state)), HM_JSON_PRETTY, &len);
	write_repo_file(rv->work_fd, workdir, HM_REPO_STATE, buf, len);
	mine = record_machine_path();
	buf = record_published(state, record, &len);
	write_repo_file(rv->work_fd, workdir, mine, buf, len);
	/* libgit2 leaves its lock files to a process killed while it
	 * writes: the signals wait for the commit (hm_git.h). */
	hm_sigchain_hold(&held);
	commit_all(rv->repo, workdir, rv->a, rv->na, mine, msg, after);
	hm_sigchain_release(&held);
	free(mine);
	if (!rv->behind)
		record = record_follow(rv->repo, record, before, after);
	record_save(record);
}

static void
review_free(struct review *rv)
{
	for (size_t i = 0; i < rv->na; i++) {
		free(rv->a[i].key);
		free(rv->a[i].dst);
		free(rv->a[i].data);
	}
	free(rv->a);
	close(rv->home_fd);
	close(rv->work_fd);
}

int
cmd_commit(int argc, char **argv)
{
	GUARD guard = GUARD_INIT;
	const char *msg = commit_message(argc, argv), *home = getenv("HOME");
	struct review rv = { 0 };
	struct dotfiles d;
	char *dir, *home_real, before[41] = "";
	git_repository *repo;
	jv state, record;

	if (!home || !(home_real = realpath(home, NULL)))
		hm_die(HM_EXIT_ENV, "HOME is not set or does not exist");
	if (guard_acquire(&guard, "commit", 0) < 0)
		return hm_last_code();
	state = porcelain_state_load();
	porcelain_need_tool("lineage", "record the commit in the state's lineage");
	dir = porcelain_dotfiles_dir(state);
	if (!(repo = hm_git_open(dir)) || porcelain_repo_recover(repo, dir) < 0 ||
	    porcelain_dotfiles_list(repo, hm_json_str(state, "active_profile"), &d) < 0)
		exit(hm_last_code());
	hm_git_head(repo, before);
	review_open(&rv, d.workdir, home_real);
	record = record_load(state);
	review_all(&rv, &d, home_real, repo, record);
	if (rv.both)
		exit(HM_EXIT_FOUND);
	if (rv.na == 0 && tracked_changes(repo, dir) == 0) {
		printf("Nothing to commit: no changed files and no changes in %s\n", dir);
		exit(0);
	}
	record = jv_object_set(record, jv_string("files"), jv_copy(rv.files));
	state = jv_object_set(state, jv_string("checksums"), record_checksums(record));
	state = porcelain_bump(state, "commit", NULL);
	write_accepted(&rv, d.workdir);
	porcelain_state_save(jv_copy(state));
	record = jv_object_set(record, jv_string("files"), rv.files);
	publish(&rv, d.workdir, state, record, msg, before);
	review_free(&rv);
	free(dir);
	free(home_real);
	jv_free(state);
	porcelain_dotfiles_free(&d);
	git_repository_free(repo);
	return 0;
}
