/*
 * remote.c - the dotfiles repository and its remote, shared by init, pull,
 * push and sync.  All git work goes through hm_git (libgit2); the state is
 * merged by heimdal-merge, never here.
 */
#include "remote.h"
#include "builtin.h"
#include "record.h"
#include "hm_config.h"
#include "hm_error.h"
#include "hm_file.h"
#include "guard.h"
#include "hm_gitrecover.h"
#include "hm_json.h"
#include "hm_lock.h"
#include "hm_machine.h"
#include "hm_spawn.h"
#include "hm_state.h"
#include "hm_term.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- a pull cut short ---------------------------------------------------- */

/*
 * While a pull moves HEAD to TARGET, $HEIMDAL_HOME/pull.pending holds
 * "FROM HEAD TARGET\n" (hex ids; FROM and HEAD "-" on an unborn branch):
 * HEAD before the pull, where it goes, and FROM, the commit whose files
 * $HOME last had deployed by a sync (HEAD, or the FROM of an earlier pull
 * that was never applied).  pull and sync remove it when they are done, so
 * finding it means a pull was cut short.
 */
struct pending {
	char from[41], head[41], target[41];
};

static int
pending_read(struct pending *p)
{
	char *path = hm_home_path("pull.pending"), *buf = NULL;
	size_t len;
	int found = 0;

	memset(p, 0, sizeof(*p));
	if (hm_file_exists(path) && hm_file_read(path, &buf, &len) == 0)
		found = sscanf(buf, "%40s %40s %40s", p->from, p->head, p->target) == 3;
	if (found) {
		if (!strcmp(p->from, "-"))
			p->from[0] = '\0';
		if (!strcmp(p->head, "-"))
			p->head[0] = '\0';
	} else if (buf) {
		hm_warn("%s: not a pending pull; ignored", path);
	}
	free(buf);
	free(path);
	return found;
}

static void
pending_write(const struct pending *p)
{
	char *path = hm_home_path("pull.pending");
	char *buf = hm_xasprintf("%s %s %s\n", p->from[0] ? p->from : "-",
				 p->head[0] ? p->head : "-", p->target);

	if (hm_file_write_atomic(path, buf, strlen(buf), 0600) < 0)
		exit(hm_last_code());
	free(buf);
	free(path);
}

void
remote_pull_done(void)
{
	char *path = hm_home_path("pull.pending");

	if (unlink(path) < 0 && errno != ENOENT)
		hm_warn("%s: %s", path, strerror(errno));
	free(path);
}

/*
 * A pull cut short before it moved HEAD leaves the working tree and the
 * index between HEAD and the target (and a merge's MERGE_HEAD): put the paths
 * it was changing back as HEAD has them, so this command's pull starts clean.
 */
static void
recover_pull(git_repository *repo)
{
	struct pending p;
	char head[41] = "";

	if (!pending_read(&p) || hm_git_head(repo, head) < 0 || strcmp(head, p.head) != 0 ||
	    !p.head[0])
		return;
	if (hm_git_undo_checkout(repo, p.head, p.target) < 0)
		exit(hm_last_code());
	hm_warn("undid a pull of %.7s that was cut short", p.target);
}

git_repository *
remote_open(jv state)
{
	char *path = porcelain_dotfiles_dir(state);
	git_repository *repo;

	hm_git_init();
	if (!(repo = hm_git_open(path)))
		hm_die(HM_EXIT_ENV, "the dotfiles repository is missing: run 'heimdal init "
				    "--force --profile NAME --repo URL' to clone it again");
	if (porcelain_repo_recover(repo, path) < 0)
		exit(hm_last_code());
	if (git_repository_is_bare(repo))
		hm_die(HM_EXIT_ENV, "%s: a bare repository has no working tree", path);
	free(path);
	recover_pull(repo);
	return repo;
}

long
remote_timeout(void)
{
	struct hm_lock_config cfg;

	if (hm_config_load(&cfg) < 0)
		exit(hm_last_code());
	return cfg.remote_timeout;
}

void
remote_print_conflicts(char *const *paths)
{
	printf("Merge conflicts detected in:\n");
	for (; paths && *paths; paths++)
		printf("  - %s\n", *paths);
	printf("\nPlease resolve conflicts manually and run 'heimdal sync' again\n");
	fflush(stdout);
}

void
remote_settle_unfinished(git_repository *repo)
{
	size_t n;
	char **paths = hm_git_conflicted_paths(repo, &n);

	if (paths) {
		remote_print_conflicts(paths);
		hm_git_paths_free(paths);
		exit(HM_EXIT_FOUND);
	}
	if (git_repository_state(repo) == GIT_REPOSITORY_STATE_MERGE) {
		if (hm_git_merge_finish(repo, "Merge (conflicts resolved by hand)\n") < 0)
			exit(hm_last_code());
		hm_debug("committed the merge resolved by hand");
	} else if (git_repository_state(repo) != GIT_REPOSITORY_STATE_NONE) {
		hm_die(HM_EXIT_ENV,
		       "%s: a git operation is in progress (see 'git status'); "
		       "finish or abort it first",
		       git_repository_workdir(repo));
	}
}

int
remote_fetch(git_repository *repo)
{
	char reason[512];
	int r = hm_git_fetch(repo, REMOTE_NAME, remote_timeout(), reason, sizeof(reason));

	if (r < 0)
		exit(hm_last_code());
	if (r == HM_GIT_UNREACHABLE)
		hm_git_warn_unreachable(reason, NULL);
	return r;
}

/* A valid V2 state from bytes, or invalid (V1 and broken files are left to people). */
static jv
parse_state(const char *what, const char *buf, size_t len)
{
	jv s = hm_json_parse(what, buf, len);
	char *err = NULL;

	if (jv_is_valid(s) && hm_state_validate(s, &err) < 0) {
		jv bad = jv_invalid_with_msg(jv_string_fmt("%s: %s", what, err));

		free(err);
		jv_free(s);
		return bad;
	}
	return s;
}

/* remote_pull_as's resolver: the state file is the text the caller made. */
static int
state_given(void *arg, const char *path, const char *base, size_t base_len, const char *ours,
	    size_t ours_len, const char *theirs, size_t theirs_len, char **out, size_t *out_len)
{
	const char *text = arg;

	(void)base, (void)base_len, (void)ours, (void)ours_len, (void)theirs, (void)theirs_len;
	if (!text || strcmp(path, HM_REPO_STATE) != 0)
		return 1;
	*out_len = strlen(text);
	*out = hm_xstrdup(text);
	return 0;
}

int
remote_pull_as(git_repository *repo, struct hm_git_merge_result *res, jv state)
{
	static const char *const special[] = { HM_REPO_STATE, NULL };
	char *up = hm_git_tracking_ref(repo, REMOTE_NAME), *text = NULL;
	int r;

	memset(res, 0, sizeof(*res));
	if (!up) {
		jv_free(state);
		res->kind = HM_GIT_MERGE_UP_TO_DATE;
		hm_git_head(repo, res->head);
		return 0;
	}
	if (!remote_in_step(repo)) {
		struct pending p;
		git_oid target;
		int again = pending_read(&p);

		if (git_reference_name_to_id(&target, repo, up) < 0)
			hm_die(HM_EXIT_ENV, "%s: %s", up, hm_git_last_error());
		if (hm_git_head(repo, p.head) < 0)
			p.head[0] = '\0';
		if (!again)
			memcpy(p.from, p.head, sizeof(p.from));
		git_oid_tostr(p.target, sizeof(p.target), &target);
		pending_write(&p);
	}
	if (jv_get_kind(state) == JV_KIND_OBJECT)
		text = hm_json_dump(hm_state_canonical(jv_copy(state)), HM_JSON_PRETTY, NULL);
	jv_free(state);
	r = hm_git_merge(repo, up, special, state_given, text, res);
	free(text);
	if (r < 0)
		exit(hm_last_code());
	free(up);
	if (res->kind == HM_GIT_MERGE_CONFLICT) {
		/* The merge is the user's now (git's ordinary conflicted state). */
		remote_pull_done();
		remote_print_conflicts(res->conflicts);
		return 1;
	}
	return 0;
}

jv
remote_state_at(git_repository *repo, const char *rev)
{
	char *buf, *what;
	size_t len;
	int r = hm_git_read_file(repo, rev, HM_REPO_STATE, &buf, &len);
	jv s;

	if (r < 0)
		exit(hm_last_code());
	if (r == 1)
		return jv_null();
	what = hm_xasprintf("%s:%s", rev, HM_REPO_STATE);
	s = parse_state(what, buf, len);
	free(buf);
	free(what);
	if (!jv_is_valid(s)) {
		jv msg = jv_invalid_get_msg(s);

		hm_die(HM_EXIT_USAGE,
		       "%s\n(the state the repository carries is not valid: "
		       "'heimdal push --force' replaces it with this machine's)",
		       jv_string_value(msg));
	}
	return s;
}

int
remote_commit_state(git_repository *repo, jv state, const char *message, char out[41])
{
	return remote_commit_with(repo, state, NULL, 0, message, out);
}

int
remote_commit_with(git_repository *repo, jv state, const struct hm_git_file *extra, size_t n,
		   const char *message, char out[41])
{
	jv record = record_load(state);
	char *mine = record_machine_path();
	struct hm_git_file *f = hm_xmalloc((n + 2) * sizeof(*f));
	char *sbuf, *mbuf;
	int r;

	f[0] = (struct hm_git_file){ HM_REPO_STATE, NULL, 0, 0 };
	f[1] = (struct hm_git_file){ mine, NULL, 0, 0 };
	sbuf = hm_json_dump(hm_state_canonical(jv_copy(state)), HM_JSON_PRETTY, &f[0].len);
	mbuf = record_published(state, record, &f[1].len);
	f[0].buf = sbuf, f[1].buf = mbuf;
	for (size_t i = 0; i < n; i++)
		f[i + 2] = extra[i];
	r = hm_git_commit_files(repo, f, n + 2, message, out);
	free(sbuf);
	free(mbuf);
	free(mine);
	free(f);
	jv_free(record);
	if (r < 0)
		exit(hm_last_code());
	return r;
}

int
remote_in_step(git_repository *repo)
{
	char *up = hm_git_tracking_ref(repo, REMOTE_NAME);
	git_oid a, b;
	int same;

	if (!up)
		return 0;
	same = git_reference_name_to_id(&a, repo, "HEAD") == 0 &&
	       git_reference_name_to_id(&b, repo, up) == 0 && git_oid_equal(&a, &b);
	free(up);
	return same;
}

void
remote_report_rejected(const char *reason)
{
	hm_error("push rejected: %s", reason);
	hm_msg("The remote has changes this machine has not seen: run 'heimdal sync' to "
	       "merge them, then push again.");
}

int
remote_push(git_repository *repo, int force, int quiet, struct guard *g)
{
	char lease[41], reason[512], *up = NULL;
	git_oid oid;
	int r;

	if (force) {
		/* The lease: the remote may hold only what this machine last fetched. */
		up = hm_git_tracking_ref(repo, REMOTE_NAME);
		if (up && git_reference_name_to_id(&oid, repo, up) == 0)
			git_oid_tostr(lease, sizeof(lease), &oid);
		else
			memset(lease, '0', 40), lease[40] = '\0';
		free(up);
	}
	/*
	 * A push is one compare-and-swap of the branch on the remote: a guard
	 * that has not taken the remote's lock lets it through only when nobody
	 * holds refs/heimdal/lock, as the push connection itself shows.  When
	 * somebody does, the lock is taken the full way (waiting for, or taking
	 * over, its holder, or refusing), then the push goes on.
	 */
	r = hm_git_push(repo, REMOTE_NAME, force ? lease : NULL,
			g && guard_remote_pending(g) ? HM_LOCK_REMOTE_REF : NULL, remote_timeout(),
			reason, sizeof(reason));
	if (r == HM_GIT_HELD) {
		hm_debug("%s is held on the remote: taking the lock first", HM_LOCK_REMOTE_REF);
		if (guard_need_remote(g) < 0)
			exit(hm_last_code());
		r = hm_git_push(repo, REMOTE_NAME, force ? lease : NULL, NULL, remote_timeout(),
				reason, sizeof(reason));
	}
	if (r < 0)
		exit(hm_last_code());
	if (r == HM_GIT_UNREACHABLE)
		hm_git_warn_unreachable(reason, NULL);
	if (r == HM_GIT_REJECTED && quiet) {
		hm_debug("push rejected: %s", reason);
	} else if (r == HM_GIT_REJECTED) {
		remote_report_rejected(reason);
	}
	return r;
}

jv
remote_localize(jv state, jv local)
{
	static const char *const keep[] = { "active_profile", "dotfiles_path", "repo_url", NULL };
	jv m = hm_machine_info();

	if (!jv_is_valid(m)) {
		jv msg = jv_invalid_get_msg(m);

		hm_die(HM_EXIT_ENV, "%s", jv_string_value(msg));
	}
	state = jv_object_set(state, jv_string("machine"), m);
	for (int i = 0; keep[i] && jv_get_kind(local) == JV_KIND_OBJECT; i++) {
		jv v = jv_object_get(jv_copy(local), jv_string(keep[i]));

		if (jv_is_valid(v))
			state = jv_object_set(state, jv_string(keep[i]), v);
		else
			jv_free(v);
	}
	return state;
}

jv
remote_tool(const char *tool, char *const argv[], jv in, int *status)
{
	jv out;
	int st = hm_spawn_json(tool, argv, in, &out);

	if (st < 0)
		exit(hm_last_code());
	if (st > 1)
		hm_die(st, "heimdal-%s failed (exit %d)", tool, st);
	if (status)
		*status = st;
	return out;
}
