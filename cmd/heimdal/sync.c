/*
 * sync.c - `heimdal sync`: pull, reconcile this machine's state with the one
 * the remote carries, apply what came in, commit and push.  The state work
 * is the plumbing's: heimdal-conflicts finds the relation and the conflicts,
 * heimdal-merge merges, heimdal-lineage records the operation.
 */
#include "builtin.h"
#include "remote.h"
#include "record.h"
#include "hm_error.h"
#include "hm_opt.h"
#include "hm_file.h"
#include "guard.h"
#include "hm_json.h"
#include "hm_machine.h"
#include "hm_spawn.h"
#include "hm_state.h"
#include "hm_tempfile.h"
#include "hm_term.h"
#include "hm_time.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SYNC_USAGE "heimdal sync [--no-apply]"
#define SYNC_ATTEMPTS 3 /* pushes raced by another machine before giving up */
#define SYNC_AGAIN (-2) /* another machine pushed first: go round again */

/* state's lineage.serial (state borrowed). */
static long long
serial_of(jv state)
{
	jv v = jv_getpath(jv_copy(state), JV_ARRAY(jv_string("lineage"), jv_string("serial")));
	long long n = jv_get_kind(v) == JV_KIND_NUMBER ? (long long)jv_number_value(v) : 0;

	jv_free(v);
	return n;
}

/* The spec's list of conflicts (borrowed): "1. 🔴 State diverged: ...". */
static void
print_conflicts(jv conflicts)
{
	printf("%s State Conflicts Detected\n\n", hm_mark(HM_MARK_WARN));
	jv_array_foreach(conflicts, i, c)
	{
		printf("%d. %s %s\n", i + 1, hm_mark_severity(hm_json_str(c, "severity")),
		       hm_json_str(c, "description") ?: hm_json_str(c, "type") ?: "conflict");
		jv_free(c);
	}
	printf("\n");
}

static void
print_manual(void)
{
	printf("\nResolve the state by hand, then sync again:\n"
	       "  1. Use local state:  heimdal state resolve --use-local\n"
	       "  2. Use remote state: heimdal state resolve --use-remote\n"
	       "  3. Manual edit:      heimdal state resolve --manual\n");
}

/* A count from heimdal-merge's report (borrowed); 0 when absent. */
static long long
report_count(jv report, const char *key)
{
	jv v = jv_object_get(jv_copy(report), jv_string(key));
	long long n = jv_get_kind(v) == JV_KIND_NUMBER ? (long long)jv_number_value(v) : 0;

	jv_free(v);
	return n;
}

/*
 * Merge local and remote (base may be null) with heimdal-merge.  Returns the
 * merged state and its report in *report, or invalid after printing why.
 */
static jv
merge_states(const char *strategy, jv local, jv remote, jv base, jv *report)
{
	/* The report goes to a private file in $HEIMDAL_HOME (mode 0700). */
	char *tmpl = hm_home_path("merge-report.tmp.XXXXXX");
	char *argv[] = { "heimdal-merge", "--strategy", (char *)strategy, "--report", tmpl, NULL };
	jv in = JV_OBJECT(jv_string("local"), local, jv_string("remote"), remote), merged;
	struct hm_tempfile *t;
	int fd = hm_tempfile_mkstemp(tmpl, 0600, &t), st;
	char *buf = NULL;
	size_t len = 0;

	*report = jv_object();
	if (fd < 0)
		hm_die_errno(HM_EXIT_ENV, "%s", tmpl);
	close(fd);
	if (jv_get_kind(base) == JV_KIND_OBJECT)
		in = jv_object_set(in, jv_string("base"), base);
	else
		jv_free(base);
	st = hm_spawn_json("merge", argv, in, &merged);
	if (st != 0) {
		hm_tempfile_remove(t);
		free(tmpl);
		/* Only "found" (the states cannot be merged) is the user's to settle;
		 * a tool that failed says why, and its status is ours. */
		if (st < 0)
			exit(hm_last_code());
		jv_free(merged);
		if (st > 1)
			hm_die(st, "heimdal-merge failed (exit %d)", st);
		printf("%s Automatic merge failed\n", hm_mark(HM_MARK_ERR));
		return jv_invalid();
	}
	if (hm_file_read(tmpl, &buf, &len) == 0) {
		jv_free(*report);
		*report = hm_json_parse(tmpl, buf, len);
	}
	hm_tempfile_remove(t);
	free(tmpl);
	free(buf);
	return merged;
}

/* The spec's lines for a divergence settled by merge: conflicts, then the merge. */
static void
print_settled(jv conflicts, jv report)
{
	print_conflicts(conflicts);
	printf("Attempting automatic merge...\n");
	printf("%s States merged successfully\n", hm_mark(HM_MARK_OK));
	printf("  - Combined %lld machine(s)\n", report_count(report, "machines_combined"));
	printf("  - Resolved %lld conflict(s)\n", report_count(report, "conflicts_resolved"));
	printf("%s State conflicts resolved automatically\n", hm_mark(HM_MARK_OK));
}

/* The relation and conflicts of local against remote, from heimdal-conflicts. */
static jv
detect(jv local, jv remote, jv base)
{
	char *argv[] = { "heimdal-conflicts", NULL };
	jv in = JV_OBJECT(jv_string("local"), local, jv_string("remote"), remote);

	if (jv_get_kind(base) == JV_KIND_OBJECT)
		in = jv_object_set(in, jv_string("base"), base);
	else
		jv_free(base);
	return remote_tool("conflicts", argv, in, NULL);
}

/* The state bumped by heimdal-lineage for op (sync or pull) against commit head. */
static jv
record_op(jv state, const char *op, const char *head)
{
	char now[32];

	if (strcmp(op, "sync") == 0)
		state = jv_object_set(state, jv_string("last_sync"),
				      jv_string(hm_time_now_rfc3339(now)));
	return porcelain_bump(state, op, head[0] ? head : NULL);
}

struct sync_run {
	struct guard *guard;
	int no_apply;
	int offline;
	int applied; /* apply's exit: 1 when files were left in conflict or skipped */
};

/*
 * 1 when HEAD holds dotfiles this machine has not deployed: its record's
 * commit (none on a machine that never applied) differs from HEAD outside
 * .heimdal/.  The record, not what this command pulled, decides: a pull
 * earlier, a merge resolved by hand, a commit made with plain git all count.
 */
static int
undeployed(git_repository *repo, jv state)
{
	jv record = record_load(state);
	const char *deployed = hm_json_str(record, "commit");
	char head[41];
	int r;

	if (hm_git_head(repo, head) < 0) {
		jv_free(record);
		return 0;
	}
	r = hm_git_changed_outside(repo, deployed ? deployed : "", head, ".heimdal/");
	jv_free(record);
	if (r < 0)
		exit(hm_last_code());
	return r;
}

/* Offline: keep the state in the clone, so nothing waits only in $HEIMDAL_HOME;
 * the next sync reconciles it with the remote. */
static void
sync_offline(git_repository *repo, struct sync_run *run, jv local)
{
	char head[41];
	char *msg = hm_xasprintf("heimdal: state serial %lld from %s (offline)\n", serial_of(local),
				 hm_machine_hostname());

	run->offline = 1;
	if (remote_commit_state(repo, local, msg, head) == 0)
		printf("%s Committed the state locally (%.7s)\n", hm_mark(HM_MARK_OK), head);
	free(msg);
	jv_free(local);
}

/* 1 when a and b (borrowed) have the same lineage.id. */
static int
same_lineage(jv a, jv b)
{
	jv x = jv_getpath(jv_copy(a), JV_ARRAY(jv_string("lineage"), jv_string("id")));
	jv y = jv_getpath(jv_copy(b), JV_ARRAY(jv_string("lineage"), jv_string("id")));
	return jv_equal(x, y);
}

/*
 * The state this sync settles on, before the pull moves anything: the
 * relation of local to the remote (base: the state at the merge base) and
 * heimdal-merge's answer for it.  *changed: the result is news to share.
 * *shown: for a divergence, {"conflicts", "report"} to print once the pull
 * is done, as the spec orders the lines.  Invalid after printing why (the
 * sync then stops with exit 1).
 */
static jv
settle_state(jv local, jv remote, jv base, int merging, int *changed, jv *shown)
{
	jv found, conflicts, merged, report;
	const char *relation;
	int n;

	*changed = 0;
	*shown = jv_null();
	if (jv_get_kind(remote) != JV_KIND_OBJECT) {
		/* An empty remote, or one without a state yet: ours is the news. */
		jv_free(remote);
		jv_free(base);
		*changed = 1;
		return jv_copy(local);
	}
	found = detect(jv_copy(local), jv_copy(remote), jv_copy(base));
	relation = hm_json_str(found, "relation") ?: "diverged";
	conflicts = jv_object_get(jv_copy(found), jv_string("conflicts"));
	n = jv_get_kind(conflicts) == JV_KIND_ARRAY ? jv_array_length(jv_copy(conflicts)) : 0;
	hm_debug("state relation: %s, %d conflict(s)", relation, n);
	if (strcmp(relation, "unrelated") == 0) {
		/* Two lineages are two histories, never merged. */
		print_conflicts(conflicts);
		printf("The remote state belongs to another lineage: it cannot be merged.\n");
		print_manual();
		merged = jv_invalid();
	} else if (!merging && (strcmp(relation, "equal") == 0 || strcmp(relation, "ahead") == 0)) {
		*changed = strcmp(relation, "ahead") == 0;
		merged = jv_copy(local);
	} else {
		/* Behind: the remote already holds everything this machine shares --
		 * unless this machine joins the remote's lineage now (a day-one
		 * lineage of its own, nothing but its init): that join is news.  A
		 * git merge of both sides' commits merges the states too, whatever
		 * their relation: the merge commit carries one state for both. */
		*changed = strcmp(relation, "behind") != 0 || !same_lineage(local, remote);
		merged = merge_states(*changed ? "merge" : "use-remote", jv_copy(local),
				      jv_copy(remote), jv_copy(base), &report);
		if (!jv_is_valid(merged)) {
			if (n > 0)
				print_conflicts(conflicts);
			print_manual();
		} else if (n > 0 && strcmp(relation, "diverged") == 0) {
			*shown = JV_OBJECT(jv_string("conflicts"), jv_copy(conflicts),
					   jv_string("report"), jv_copy(report));
		}
		jv_free(report);
	}
	jv_free(conflicts);
	jv_free(found);
	jv_free(remote);
	jv_free(base);
	return merged;
}

jv
sync_merge(git_repository *repo, jv local, const char *op, int show_pull, int *changed,
	   struct hm_git_merge_result *res)
{
	char before[41] = "", tip[41] = "", mb[41] = "", *up;
	jv remote, base, merged, shown;
	int merging, r;

	/*
	 * The remote state is the file at the remote-tracking branch; the base,
	 * the file at the merge base of HEAD and that branch: the last state both
	 * sides had (DESIGN: "Files").  Read before the pull moves HEAD.
	 */
	memset(res, 0, sizeof(*res));
	hm_git_head(repo, before);
	up = hm_git_tracking_ref(repo, REMOTE_NAME);
	remote = up ? remote_state_at(repo, up) : jv_null();
	base = jv_null();
	if (up && before[0] && hm_git_merge_base(repo, "HEAD", up, mb) == 0) {
		jv_free(base);
		base = remote_state_at(repo, mb);
	}
	if (up) {
		git_oid id;

		if (git_reference_name_to_id(&id, repo, up) == 0)
			git_oid_tostr(tip, sizeof(tip), &id);
	}
	free(up);
	/* Both sides moved: the merge commit is a new state on the branch, above both. */
	merging = before[0] && tip[0] && strcmp(mb, before) != 0 && strcmp(mb, tip) != 0;
	merged = settle_state(local, remote, base, merging, changed, &shown);
	if (!jv_is_valid(merged))
		return merged;
	if (*changed || merging) {
		merged = record_op(merged, op, tip);
		*changed = 1;
	}
	r = remote_pull_as(repo, res, merging ? jv_copy(merged) : jv_null());
	if (r == 0 && show_pull && res->kind != HM_GIT_MERGE_UP_TO_DATE)
		printf("%s Git pull completed successfully!\n", hm_mark(HM_MARK_OK));
	if (r != 0) {
		jv_free(shown);
		jv_free(merged);
		return jv_invalid();
	}
	if (jv_get_kind(shown) == JV_KIND_OBJECT) {
		jv c = jv_object_get(jv_copy(shown), jv_string("conflicts"));
		jv rep = jv_object_get(jv_copy(shown), jv_string("report"));

		print_settled(c, rep);
		jv_free(c);
		jv_free(rep);
	}
	jv_free(shown);
	return merged;
}

/*
 * One round: fetch, settle the state, pull (a merge commit carries the
 * settled state), apply what this machine has not deployed, commit, push.
 * Returns 0 when done (run->offline set when the remote could not be
 * reached), SYNC_AGAIN when another machine pushed first, or an exit code.
 */
static int
sync_once(git_repository *repo, struct sync_run *run)
{
	struct hm_git_merge_result res;
	char head[41] = "", *msg;
	jv local = porcelain_state_load(), merged;
	int changed, r, deploy;

	if (remote_fetch(repo) == HM_GIT_UNREACHABLE) {
		sync_offline(repo, run, local);
		return 0;
	}
	merged = sync_merge(repo, local, "sync", 1, &changed, &res);
	hm_git_merge_result_free(&res);
	if (!jv_is_valid(merged)) {
		jv_free(local);
		return HM_EXIT_FOUND;
	}
	hm_git_head(repo, head);
	deploy = !run->no_apply && undeployed(repo, merged);
	if (!changed && !deploy && remote_in_step(repo) &&
	    jv_equal(jv_copy(local), jv_copy(merged))) {
		jv_free(merged);
		jv_free(local);
		remote_pull_done();
		printf("Already up to date.\n");
		return 0;
	}
	if (!changed) {
		char now[32];

		/* Taking the remote's state as it is writes nothing new to share. */
		merged = jv_object_set(merged, jv_string("last_sync"),
				       jv_string(hm_time_now_rfc3339(now)));
	}
	porcelain_state_save(jv_copy(merged));
	if (!changed && !deploy)
		printf("%s State updated from the remote (serial %lld)\n", hm_mark(HM_MARK_OK),
		       serial_of(merged));
	jv_free(local);
	if (deploy) {
		struct apply_opts o = { 0 };

		run->applied = apply_run(repo, &merged, &o);
		changed = 1;
	}
	/* What the pull brought is deployed (or, with --no-apply, left to the user). */
	remote_pull_done();
	if (changed) {
		msg = hm_xasprintf("heimdal: sync from %s (serial %lld)\n", hm_machine_hostname(),
				   serial_of(merged));
		remote_commit_state(repo, merged, msg, head);
		free(msg);
	}
	jv_free(merged);
	if (remote_in_step(repo))
		return 0;
	/*
	 * The push is the one write to the remote, a compare-and-swap of the
	 * branch: it goes through while nobody holds refs/heimdal/lock (seen on
	 * the push's own connection) and takes the remote lock the full way first
	 * when somebody does (remote_push).  Everything before it was this
	 * machine's own files, under the local lock.
	 */
	r = remote_push(repo, 0, 1, run->guard);
	if (r == HM_GIT_REJECTED)
		return SYNC_AGAIN;
	if (r == HM_GIT_UNREACHABLE) {
		run->offline = 1;
		return 0;
	}
	if (r == 0)
		printf("%s Pushed to %s\n", hm_mark(HM_MARK_OK), REMOTE_NAME);
	return 0;
}

int
cmd_sync(int argc, char **argv)
{
	GUARD guard = GUARD_INIT;
	static const struct option opts[] = {
		{ "no-apply", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sync_run run = { 0 };
	git_repository *repo;
	jv local;
	int c, r = 0;

	while ((c = hm_opt_next(argc, argv, "h", opts, SYNC_USAGE)) != -1) {
		switch (c) {
		case 'n':
			run.no_apply = 1;
			break;
		case 'h':
			printf("usage: %s\n", SYNC_USAGE);
			return 0;
		}
	}
	if (optind < argc)
		hm_opt_die(SYNC_USAGE, "unexpected argument '%s'", argv[optind]);
	/*
	 * One local lock for the whole sync, the apply it runs included.  The
	 * remote's part is taken only by the push, and only when another machine
	 * holds it (sync_once), so a sync with nothing to do reads the remote and
	 * leaves it alone.  Another machine's sync holding the remote lock is
	 * waited for, as lock_config.json's retry says: syncs are meant to meet.
	 */
	if (guard_acquire(&guard, "sync", GUARD_SETTLES | GUARD_WAIT | GUARD_REMOTE_LATER) < 0)
		return hm_last_code();
	run.guard = &guard;
	local = porcelain_state_load();
	porcelain_need_tool("conflicts", "compare the local and remote states");
	porcelain_need_tool("merge", "merge the local and remote states");
	porcelain_need_tool("lineage", "record the sync in the state's lineage");
	repo = remote_open(local);
	jv_free(local);
	remote_settle_unfinished(repo);
	for (int i = 0; i < SYNC_ATTEMPTS; i++) {
		r = sync_once(repo, &run);
		if (r != SYNC_AGAIN)
			break;
		printf("Another machine pushed meanwhile; syncing again...\n");
	}
	if (r == SYNC_AGAIN)
		hm_die(HM_EXIT_ENV, "other machines kept pushing; run 'heimdal sync' again");
	if (run.offline) {
		printf("Remember to sync when connection is restored.\n");
		r = 0;
	}
	if (r == 0 && run.applied)
		r = run.applied;
	git_repository_free(repo);
	return r;
}
