/*
 * pull.c - `heimdal pull` and `heimdal push`: the dotfiles repository against
 * its remote, the shared state file included.  `push --force` replaces the
 * remote's state and nothing else: a new commit on top of the remote's tip.
 */
#include "builtin.h"
#include "remote.h"
#include "hm_error.h"
#include "hm_opt.h"
#include "guard.h"
#include "hm_json.h"
#include "hm_machine.h"
#include "hm_term.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* getopt for a command with at most one flag (force may be NULL). */
static void
parse(int argc, char **argv, const char *usage, const char *flag, int *force)
{
	static struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, no_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	opts[1].name = flag;
	while ((c = hm_opt_next(argc, argv, "h", opts, usage)) != -1) {
		switch (c) {
		case 'h':
			printf("usage: %s\n", usage);
			exit(0);
		case 'f':
			*force = 1;
			break;
		}
	}
	if (optind < argc)
		hm_opt_die(usage, "unexpected argument '%s'", argv[optind]);
}

void
remote_report_pull(const struct hm_git_merge_result *res, const char *before)
{
	if (res->kind == HM_GIT_MERGE_UP_TO_DATE) {
		printf("Already up to date.\n");
		return;
	}
	printf("%s Git pull completed successfully!\n", hm_mark(HM_MARK_OK));
	if (res->kind == HM_GIT_MERGE_FASTFORWARD)
		printf("  Fast-forward %.7s..%.7s\n", before[0] ? before : "0000000", res->head);
	else
		printf("  Merge commit %.7s\n", res->head);
}

int
cmd_pull(int argc, char **argv)
{
	GUARD guard = GUARD_INIT;
	struct hm_git_merge_result res;
	char before[41] = "";
	git_repository *repo;
	jv local, merged;
	int r, changed;

	parse(argc, argv, "heimdal pull", NULL, NULL);
	if (guard_acquire(&guard, "pull", GUARD_SETTLES) < 0)
		return hm_last_code();
	local = porcelain_state_load();
	repo = remote_open(local);
	remote_settle_unfinished(repo);
	if (remote_fetch(repo) == HM_GIT_UNREACHABLE) {
		printf("Working with the local copy; run 'heimdal sync' when the connection is "
		       "restored.\n");
		git_repository_free(repo);
		jv_free(local);
		return 0;
	}
	hm_git_head(repo, before);
	/* The state settles as sync settles it: merged once, above both sides. */
	merged = sync_merge(repo, local, "pull", 0, &changed, &res);
	r = jv_is_valid(merged) ? 0 : HM_EXIT_FOUND;
	if (r == 0) {
		/* pull deploys nothing: what it brought is for the next apply. */
		remote_pull_done();
		remote_report_pull(&res, before);
		if (!jv_equal(jv_copy(local), jv_copy(merged)))
			porcelain_state_save(jv_copy(merged));
	}
	jv_free(merged);
	hm_git_merge_result_free(&res);
	git_repository_free(repo);
	jv_free(local);
	return r;
}

/*
 * push --force (the specification's "use local, then force push"): the state
 * replaces the remote's, nothing else does.  What the remote holds is
 * fetched and taken first -- fast-forward, or a merge commit holding this
 * machine's state when both sides have commits -- and the state is committed
 * on top, so the push is a fast-forward: another machine's dotfile commits
 * are never dropped.  Returns the command's exit status.
 */
static int
push_state_over(git_repository *repo, jv local, const char *msg, struct guard *g, int force)
{
	struct hm_git_merge_result res;
	char head[41] = "";
	int r;

	if (remote_fetch(repo) == HM_GIT_UNREACHABLE) {
		if (remote_commit_state(repo, local, msg, head) == 0)
			printf("%s Committed the state locally (%.7s)\n", hm_mark(HM_MARK_OK),
			       head);
		printf("Run 'heimdal push --force' when the connection is restored.\n");
		return 0;
	}
	if (remote_pull_as(repo, &res, jv_copy(local)) != 0) {
		hm_git_merge_result_free(&res);
		return HM_EXIT_FOUND;
	}
	remote_pull_done();
	if (res.kind != HM_GIT_MERGE_UP_TO_DATE)
		printf("%s Took the remote's commits (%s %.7s)\n", hm_mark(HM_MARK_OK),
		       res.kind == HM_GIT_MERGE_FASTFORWARD ? "fast-forward to" : "merge commit",
		       res.head);
	hm_git_merge_result_free(&res);
	/* The merge commit may hold the state already: then nothing to commit. */
	if (remote_commit_state(repo, local, msg, head) == 0)
		printf("%s Committed the state on top of the remote's tip (%.7s)\n",
		       hm_mark(HM_MARK_OK), head);
	hm_git_head(repo, head);
	r = remote_push(repo, 0, 1, g);
	if (r == HM_GIT_REJECTED) {
		hm_error("push rejected: another machine pushed meanwhile");
		hm_msg("Run 'heimdal push --force' again to put this state on top of it.");
		return HM_EXIT_FOUND;
	}
	if (r == HM_GIT_UNREACHABLE)
		printf("The state is committed locally; run 'heimdal push --force' when the "
		       "connection is restored.\n");
	else if (r == HM_GIT_PUSHED_NOTHING)
		printf("Everything up-to-date\n");
	else if (r == 0 && force)
		printf("%s Pushed %.7s to %s: the remote's state replaced, its commits kept\n",
		       hm_mark(HM_MARK_OK), head, REMOTE_NAME);
	else if (r == 0)
		printf("%s Pushed %.7s to %s, on top of the remote's commits\n",
		       hm_mark(HM_MARK_OK), head, REMOTE_NAME);
	return 0;
}

/*
 * A plain push the remote refused: it has commits this machine has not
 * fetched.  When this machine's state is ahead of the remote's (it holds
 * everything the remote's does, and more: after 'state resolve --merge', or a
 * state settled by hand with --manual), the remote's commits are taken and
 * the state goes on top, as push --force does -- nothing is replaced.
 * Otherwise sync settles it.  Returns the command's exit status.
 */
static int
push_after_refusal(git_repository *repo, jv local, const char *msg, struct guard *g)
{
	char *argv[] = { "heimdal-conflicts", NULL }, *up, mb[41];
	const char *rel;
	jv remote, base = jv_null(), in, found;
	int ahead;

	if (remote_fetch(repo) == HM_GIT_UNREACHABLE)
		return 0;
	up = hm_git_tracking_ref(repo, REMOTE_NAME);
	remote = up ? remote_state_at(repo, up) : jv_null();
	if (up && hm_git_merge_base(repo, "HEAD", up, mb) == 0)
		base = remote_state_at(repo, mb);
	free(up);
	if (jv_get_kind(remote) != JV_KIND_OBJECT) {
		jv_free(remote);
		jv_free(base);
		return push_state_over(repo, local, msg, g, 0);
	}
	in = JV_OBJECT(jv_string("local"), jv_copy(local), jv_string("remote"), remote);
	if (jv_get_kind(base) == JV_KIND_OBJECT)
		in = jv_object_set(in, jv_string("base"), base);
	else
		jv_free(base);
	found = remote_tool("conflicts", argv, in, NULL);
	rel = hm_json_str(found, "relation");
	ahead = rel && !strcmp(rel, "ahead");
	hm_debug("push refused; the local state is %s the remote's", rel ? rel : "?");
	jv_free(found);
	if (ahead)
		return push_state_over(repo, local, msg, g, 0);
	remote_report_rejected("the remote has commits this machine has not fetched");
	return HM_EXIT_FOUND;
}

int
cmd_push(int argc, char **argv)
{
	GUARD guard = GUARD_INIT;
	char head[41], *msg;
	git_repository *repo;
	int force = 0, r;
	jv local, serial;

	parse(argc, argv, "heimdal push [--force]", "force", &force);
	/* The remote's part of the lock only if somebody holds it (remote_push). */
	if (guard_acquire(&guard, "push", GUARD_SETTLES | GUARD_REMOTE_LATER) < 0)
		return hm_last_code();
	local = porcelain_state_load();
	repo = remote_open(local);
	remote_settle_unfinished(repo);
	serial = jv_getpath(jv_copy(local), JV_ARRAY(jv_string("lineage"), jv_string("serial")));
	msg = hm_xasprintf("heimdal: state serial %lld from %s%s\n",
			   (long long)jv_number_value(serial), hm_machine_hostname(),
			   force ? " (replaces the remote's state)" : "");
	jv_free(serial);
	if (force) {
		r = push_state_over(repo, local, msg, &guard, 1);
		free(msg);
		git_repository_free(repo);
		jv_free(local);
		return r;
	}
	if (remote_commit_state(repo, local, msg, head) == 0)
		printf("%s Committed the state (%.7s)\n", hm_mark(HM_MARK_OK), head);
	r = remote_push(repo, 0, 1, &guard);
	if (r == HM_GIT_REJECTED) {
		r = push_after_refusal(repo, local, msg, &guard);
		free(msg);
		git_repository_free(repo);
		jv_free(local);
		return r;
	}
	free(msg);
	if (r == HM_GIT_UNREACHABLE)
		printf("The state is committed locally; run 'heimdal push' when the connection "
		       "is restored.\n");
	else if (r == HM_GIT_PUSHED_NOTHING)
		printf("Everything up-to-date\n");
	else if (r == 0)
		printf("%s Pushed %.7s to %s\n", hm_mark(HM_MARK_OK), head, REMOTE_NAME);
	git_repository_free(repo);
	jv_free(local);
	return 0;
}
