/*
 * hm_gitmerge.h - merging a remote-tracking ref into the current branch,
 * git's way, and finishing a merge the user resolved.
 *
 * Part of the git family (hm_git.h): its conventions hold here, and the
 * names keep the hm_git_ prefix.  Functions return 0 on success and -1
 * after printing an error (hm_fail(HM_EXIT_ENV)), unless noted.  What
 * writes to the repository (hm_git_merge, hm_git_merge_finish) holds the
 * signals that end a process off until it is done (hm_sigchain), so that
 * libgit2 leaves no lock file behind.
 */
#ifndef HM_GITMERGE_H
#define HM_GITMERGE_H

#include <git2.h>
#include <stddef.h>

/*
 * Resolving a path both sides changed during hm_git_merge: base, ours and
 * theirs hold the three versions (base NULL when absent from the merge base).
 * Return 0 with *out (malloc'd) and *out_len set to settle the path, 1 to
 * leave it conflicted, -1 on error (printed; the merge is abandoned).
 */
typedef int (*hm_git_resolve_fn)(void *arg, const char *path, const char *base, size_t base_len,
				 const char *ours, size_t ours_len, const char *theirs,
				 size_t theirs_len, char **out, size_t *out_len);

enum hm_git_merge_kind {
	HM_GIT_MERGE_UP_TO_DATE, /* nothing to take */
	HM_GIT_MERGE_FASTFORWARD,
	HM_GIT_MERGE_COMMIT,   /* both sides moved: a merge commit was written */
	HM_GIT_MERGE_CONFLICT, /* paths left conflicted, the repository mid-merge */
};

struct hm_git_merge_result {
	enum hm_git_merge_kind kind;
	char head[41];    /* HEAD afterwards */
	char **conflicts; /* kind CONFLICT: the paths, NULL-terminated (malloc'd) */
	size_t nconflicts;
};

/*
 * Merge rev (a remote-tracking ref) into the current branch: fast-forward
 * when possible, else a three-way merge and a merge commit.  Paths listed in
 * special (NULL-terminated) that both sides have go to resolve whether or
 * not git could merge them (changed on one side, or on none, too), and the
 * merge commit holds what it answers; other conflicted paths go to resolve and
 * stay conflicted when it declines.  With conflicts left, the working tree
 * gets git's conflict markers, the index the three stages and MERGE_HEAD is
 * written: `git status` shows the ordinary conflicted state.  A working tree
 * with uncommitted changes to a path the merge touches is refused (-1).
 * Returns 0 (result filled; free with hm_git_merge_result_free) or -1.
 */
int hm_git_merge(git_repository *repo, const char *rev, const char *const *special,
		 hm_git_resolve_fn resolve, void *arg, struct hm_git_merge_result *res);
void hm_git_merge_result_free(struct hm_git_merge_result *res);

/*
 * The paths still conflicted in the index (NULL-terminated, malloc'd; free
 * with hm_git_paths_free), or NULL when the index has no conflicts.
 */
char **hm_git_conflicted_paths(git_repository *repo, size_t *n);
void hm_git_paths_free(char **paths);

/*
 * Finish a merge the user resolved (MERGE_HEAD present, no conflicts left):
 * commit the index with HEAD and MERGE_HEAD as parents.  0, or -1.
 */
int hm_git_merge_finish(git_repository *repo, const char *message);

#endif
