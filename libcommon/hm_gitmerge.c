/*
 * hm_gitmerge.c - the merge of hm_gitmerge.h: libgit2's merge, with the
 * paths heimdal merges itself (the state) and every other conflict offered
 * to a resolver before the merge commit is written.
 */
#include "hm_gitmerge.h"
#include "hm_git.h"
#include "hm_error.h"
#include "hm_file.h"
#include "hm_sigchain.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* The blob at path in commit's tree: 0 with *oid set, 1 when absent, -1. */
static int
blob_at(git_repository *repo, const git_oid *commit, const char *path, git_oid *oid)
{
	git_commit *c = NULL;
	git_tree *t = NULL;
	git_tree_entry *e = NULL;
	int r = 1;

	if (git_commit_lookup(&c, repo, commit) < 0 || git_commit_tree(&t, c) < 0)
		r = -1;
	else if (git_tree_entry_bypath(&e, t, path) == 0 &&
		 git_tree_entry_type(e) == GIT_OBJECT_BLOB) {
		git_oid_cpy(oid, git_tree_entry_id(e));
		r = 0;
	}
	git_tree_entry_free(e);
	git_tree_free(t);
	git_commit_free(c);
	return r;
}

static char *
blob_bytes(git_repository *repo, const git_oid *oid, size_t *len)
{
	git_blob *b = NULL;
	char *buf;

	if (git_blob_lookup(&b, repo, oid) < 0)
		return NULL;
	*len = (size_t)git_blob_rawsize(b);
	buf = hm_xmalloc(*len + 1);
	memcpy(buf, git_blob_rawcontent(b), *len);
	buf[*len] = '\0';
	git_blob_free(b);
	return buf;
}

/* Write a settled version of path to the working tree and the index (stage 0). */
static int
settle(git_repository *repo, git_index *index, const char *path, const char *buf, size_t len)
{
	char *full = hm_path_join(git_repository_workdir(repo), path);
	int r = hm_file_write_atomic(full, buf, len, 0644);

	free(full);
	if (r < 0)
		return -1;
	git_index_conflict_remove(index, path);
	if (git_index_add_bypath(index, path) < 0)
		return hm_error("%s: cannot stage: %s", path, hm_git_last_error());
	return 0;
}

/* Hand path to the resolver; 0 settled, 1 left alone, -1 error. */
static int
resolve_path(git_repository *repo, git_index *index, const char *path, const git_oid *base,
	     const git_oid *ours, const git_oid *theirs, hm_git_resolve_fn fn, void *arg)
{
	size_t bl = 0, ol = 0, tl = 0, rl = 0;
	char *b = base ? blob_bytes(repo, base, &bl) : NULL;
	char *o = ours ? blob_bytes(repo, ours, &ol) : NULL;
	char *t = theirs ? blob_bytes(repo, theirs, &tl) : NULL;
	char *res = NULL;
	int r = 1;

	/* A side that deleted the path is a conflict only people can settle. */
	if (o && t)
		r = fn(arg, path, b, bl, o, ol, t, tl, &res, &rl);
	if (r == 0 && settle(repo, index, path, res, rl) < 0)
		r = -1;
	free(res);
	free(b);
	free(o);
	free(t);
	return r;
}

static int
commit_merge(git_repository *repo, git_index *index, const git_oid *head, const git_oid *theirs,
	     const char *message, git_oid *out)
{
	git_signature *sig = hm_git_signature(repo);
	git_commit *parents[2] = { NULL, NULL };
	git_tree *tree = NULL;
	git_oid tree_oid;
	int r = -1;

	if (!sig)
		return hm_error("no commit signature: %s", hm_git_last_error());
	if (git_index_write_tree(&tree_oid, index) == 0 &&
	    git_tree_lookup(&tree, repo, &tree_oid) == 0 &&
	    git_commit_lookup(&parents[0], repo, head) == 0 &&
	    git_commit_lookup(&parents[1], repo, theirs) == 0 &&
	    git_commit_create(out, repo, "HEAD", sig, sig, NULL, message, tree, 2,
			      (const git_commit **)parents) == 0 &&
	    git_repository_state_cleanup(repo) == 0)
		r = 0;
	else
		hm_error("cannot write the merge commit: %s", hm_git_last_error());
	git_commit_free(parents[0]);
	git_commit_free(parents[1]);
	git_tree_free(tree);
	git_signature_free(sig);
	return r;
}

static int
in_list(const char *const *list, const char *s)
{
	for (; list && *list; list++)
		if (strcmp(*list, s) == 0)
			return 1;
	return 0;
}

/* rev as people name it: a remote-tracking ref without "refs/remotes/". */
static const char *
short_rev(const char *rev)
{
	return strncmp(rev, "refs/remotes/", 13) == 0 ? rev + 13 : rev;
}

/*
 * Paths with their own merge (the state) go to it whenever both sides have
 * them: the merge commit carries what it answers, even where git alone
 * would have taken one side.  0, or -1 when one could not be settled.
 */
static int
resolve_special(git_repository *repo, git_index *index, const git_oid *base, const git_oid *head,
		const git_oid *theirs, const char *const *special, hm_git_resolve_fn fn, void *arg)
{
	for (const char *const *p = special; p && *p; p++) {
		git_oid b, o, t;
		int hb = blob_at(repo, base, *p, &b), ho = blob_at(repo, head, *p, &o);
		int ht = blob_at(repo, theirs, *p, &t);

		if (ho != 0 || ht != 0)
			continue;
		if (resolve_path(repo, index, *p, hb == 0 ? &b : NULL, &o, &t, fn, arg) < 0)
			return -1;
	}
	return 0;
}

/* The conflicted paths both sides have, special ones aside (new list in *todo); 0 or -1. */
static int
conflicts_todo(git_index *index, const char *const *special, char ***todo, size_t *ntodo)
{
	git_index_conflict_iterator *it = NULL;
	const git_index_entry *anc, *our, *thr;

	*todo = NULL;
	*ntodo = 0;
	if (git_index_conflict_iterator_new(&it, index) < 0)
		return -1;
	while (git_index_conflict_next(&anc, &our, &thr, it) == 0) {
		const char *path = our ? our->path : thr ? thr->path : anc->path;

		if (in_list(special, path) || !our || !thr)
			continue;
		*todo = hm_xrealloc(*todo, (*ntodo + 1) * sizeof(**todo));
		(*todo)[(*ntodo)++] = hm_xstrdup(path);
	}
	git_index_conflict_iterator_free(it);
	return 0;
}

/* Every other conflict: the resolver may settle it, or leave it to the user.  0 or -1. */
static int
resolve_others(git_repository *repo, git_index *index, const char *const *special,
	       hm_git_resolve_fn fn, void *arg)
{
	char **todo;
	size_t ntodo;
	int r = 0;

	if (!git_index_has_conflicts(index))
		return 0;
	if (conflicts_todo(index, special, &todo, &ntodo) < 0)
		return -1;
	for (size_t i = 0; i < ntodo; i++) {
		const git_index_entry *a, *o, *t;

		if (r == 0 && git_index_conflict_get(&a, &o, &t, index, todo[i]) == 0 &&
		    resolve_path(repo, index, todo[i], a ? &a->id : NULL, &o->id, &t->id, fn, arg) <
			    0)
			r = -1;
		free(todo[i]);
	}
	free(todo);
	return r;
}

/*
 * The merged index written, then the outcome in res: the conflicts left to
 * the user, or the merge commit.  0, or -1 (error printed).
 */
static int
three_way_finish(git_repository *repo, git_index *index, const git_oid *head, const git_oid *theirs,
		 const char *rev, struct hm_git_merge_result *res)
{
	git_oid out;
	char *msg, **paths;
	size_t n;
	int r;

	if (git_index_write(index) < 0)
		return hm_error("index: %s", hm_git_last_error());
	if ((paths = hm_git_conflicted_paths(repo, &n))) {
		res->kind = HM_GIT_MERGE_CONFLICT;
		res->conflicts = paths;
		res->nconflicts = n;
		git_oid_tostr(res->head, sizeof(res->head), head);
		return 0;
	}
	msg = hm_xasprintf("Merge %s\n", short_rev(rev));
	r = commit_merge(repo, index, head, theirs, msg, &out);
	free(msg);
	if (r < 0)
		return -1;
	res->kind = HM_GIT_MERGE_COMMIT;
	git_oid_tostr(res->head, sizeof(res->head), &out);
	return 0;
}

static int
three_way(git_repository *repo, git_annotated_commit *their, const char *rev,
	  const char *const *special, hm_git_resolve_fn fn, void *arg,
	  struct hm_git_merge_result *res)
{
	git_merge_options mopts = GIT_MERGE_OPTIONS_INIT;
	git_checkout_options copts = GIT_CHECKOUT_OPTIONS_INIT;
	const git_annotated_commit *heads[1] = { their };
	const git_oid *theirs = git_annotated_commit_id(their);
	git_index *index = NULL;
	git_oid head, base;
	int r = -1;

	copts.checkout_strategy = GIT_CHECKOUT_SAFE | GIT_CHECKOUT_ALLOW_CONFLICTS;
	/* Conflict markers name the sides as git's do, not by commit id. */
	copts.our_label = "HEAD";
	copts.their_label = short_rev(rev);
	if (git_reference_name_to_id(&head, repo, "HEAD") < 0 ||
	    git_merge_base(&base, repo, &head, theirs) < 0)
		return hm_error("%s: no merge base with %s: %s", git_repository_workdir(repo), rev,
				hm_git_last_error());
	if (git_merge(repo, heads, 1, &mopts, &copts) < 0)
		return hm_error("%s: cannot merge %s: %s (commit or stash local changes first)",
				git_repository_workdir(repo), rev, hm_git_last_error());
	if (git_repository_index(&index, repo) < 0)
		return hm_error("index: %s", hm_git_last_error());
	if (resolve_special(repo, index, &base, &head, theirs, special, fn, arg) == 0 &&
	    resolve_others(repo, index, special, fn, arg) == 0)
		r = three_way_finish(repo, index, &head, theirs, rev, res);
	git_index_free(index);
	return r < 0 ? hm_fail(HM_EXIT_ENV) : r;
}

static int
merge_now(git_repository *repo, const char *rev, const char *const *special, hm_git_resolve_fn fn,
	  void *arg, struct hm_git_merge_result *res)
{
	git_annotated_commit *their = NULL;
	git_merge_analysis_t an;
	git_merge_preference_t pref;
	git_checkout_options copts = GIT_CHECKOUT_OPTIONS_INIT;
	git_reference *head = NULL, *moved = NULL;
	git_object *target = NULL;
	const git_oid *oid;
	int r = -1;

	memset(res, 0, sizeof(*res));
	if (git_annotated_commit_from_revspec(&their, repo, rev) < 0 ||
	    git_merge_analysis(&an, &pref, repo, (const git_annotated_commit **)&their, 1) < 0) {
		hm_error("%s: cannot merge %s: %s", git_repository_workdir(repo), rev,
			 hm_git_last_error());
		goto out;
	}
	oid = git_annotated_commit_id(their);
	if (an & GIT_MERGE_ANALYSIS_UP_TO_DATE) {
		res->kind = HM_GIT_MERGE_UP_TO_DATE;
		hm_git_head(repo, res->head);
		r = 0;
		goto out;
	}
	if (!(an & (GIT_MERGE_ANALYSIS_FASTFORWARD | GIT_MERGE_ANALYSIS_UNBORN))) {
		r = three_way(repo, their, rev, special, fn, arg, res);
		goto out;
	}
	/* Fast-forward: check out their tree (refusing to lose local edits), move the branch. */
	copts.checkout_strategy = GIT_CHECKOUT_SAFE;
	if (git_object_lookup(&target, repo, oid, GIT_OBJECT_COMMIT) < 0 ||
	    git_checkout_tree(repo, target, &copts) < 0) {
		hm_error("%s: cannot fast-forward to %s: %s (commit or stash local changes first)",
			 git_repository_workdir(repo), rev, hm_git_last_error());
		goto out;
	}
	if (an & GIT_MERGE_ANALYSIS_UNBORN) {
		git_reference *sym = NULL;
		const char *name;

		if (git_reference_lookup(&sym, repo, "HEAD") < 0 ||
		    !(name = git_reference_symbolic_target(sym)) ||
		    git_reference_create(&moved, repo, name, oid, 0, "heimdal: pull") < 0) {
			git_reference_free(sym);
			hm_error("cannot create the branch: %s", hm_git_last_error());
			goto out;
		}
		git_reference_free(sym);
	} else if (git_repository_head(&head, repo) < 0 ||
		   git_reference_set_target(&moved, head, oid, "heimdal: pull: fast-forward") < 0) {
		hm_error("cannot move the branch: %s", hm_git_last_error());
		goto out;
	}
	res->kind = HM_GIT_MERGE_FASTFORWARD;
	git_oid_tostr(res->head, sizeof(res->head), oid);
	r = 0;
out:
	git_object_free(target);
	git_reference_free(moved);
	git_reference_free(head);
	git_annotated_commit_free(their);
	return r < 0 ? hm_fail(HM_EXIT_ENV) : r;
}

int
hm_git_merge(git_repository *repo, const char *rev, const char *const *special,
	     hm_git_resolve_fn fn, void *arg, struct hm_git_merge_result *res)
{
	sigset_t held;
	int r;

	hm_sigchain_hold(&held);
	r = merge_now(repo, rev, special, fn, arg, res);
	hm_sigchain_release(&held);
	return r;
}

void
hm_git_merge_result_free(struct hm_git_merge_result *res)
{
	hm_git_paths_free(res->conflicts);
	res->conflicts = NULL;
	res->nconflicts = 0;
}

char **
hm_git_conflicted_paths(git_repository *repo, size_t *n)
{
	git_index *index = NULL;
	git_index_conflict_iterator *it = NULL;
	const git_index_entry *a, *o, *t;
	char **paths = NULL;

	*n = 0;
	if (git_repository_index(&index, repo) < 0)
		return NULL;
	git_index_read(index, 0);
	if (git_index_has_conflicts(index) && git_index_conflict_iterator_new(&it, index) == 0) {
		while (git_index_conflict_next(&a, &o, &t, it) == 0) {
			paths = hm_xrealloc(paths, (*n + 2) * sizeof(*paths));
			paths[(*n)++] = hm_xstrdup(o ? o->path : t ? t->path : a->path);
			paths[*n] = NULL;
		}
		git_index_conflict_iterator_free(it);
	}
	git_index_free(index);
	return paths;
}

void
hm_git_paths_free(char **paths)
{
	for (char **p = paths; p && *p; p++)
		free(*p);
	free(paths);
}

static int
first_mergehead(const git_oid *oid, void *payload)
{
	git_oid_cpy(payload, oid);
	return 1; /* one is enough: heimdal never makes octopus merges */
}

static int
merge_finish_now(git_repository *repo, const char *message)
{
	git_index *index = NULL;
	git_oid head, theirs, out;
	int r;

	if (git_reference_name_to_id(&head, repo, "HEAD") < 0 ||
	    git_repository_mergehead_foreach(repo, first_mergehead, &theirs) != 1) {
		hm_error("%s: no merge to finish: %s", git_repository_workdir(repo),
			 hm_git_last_error());
		return hm_fail(HM_EXIT_ENV);
	}
	if (git_repository_index(&index, repo) < 0) {
		hm_error("index: %s", hm_git_last_error());
		return hm_fail(HM_EXIT_ENV);
	}
	r = commit_merge(repo, index, &head, &theirs, message, &out);
	git_index_free(index);
	return r < 0 ? hm_fail(HM_EXIT_ENV) : 0;
}

int
hm_git_merge_finish(git_repository *repo, const char *message)
{
	sigset_t held;
	int r;

	hm_sigchain_hold(&held);
	r = merge_finish_now(repo, message);
	hm_sigchain_release(&held);
	return r;
}
