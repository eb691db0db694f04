/*
 * conflicts.c - `heimdal state check-conflicts`, `resolve` and `diff`.
 *
 * The remote state is .heimdal/state.json at the upstream branch of the
 * dotfiles repository after a fetch, and the base is the same file at the
 * merge base of HEAD and the upstream; `--remote FILE` compares with a file
 * instead.  The work itself is heimdal-conflicts, heimdal-merge and
 * heimdal-lineage: these commands only fetch, render and write.
 */
#include "builtin.h"
#include "hm_config.h"
#include "hm_error.h"
#include "hm_file.h"
#include "hm_git.h"
#include "guard.h"
#include "hm_json.h"
#include "hm_lineage.h"
#include "hm_opt.h"
#include "hm_machine.h"
#include "hm_spawn.h"
#include "hm_state.h"
#include "hm_term.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK_USAGE "heimdal state check-conflicts [--remote FILE] [--json | -c]"
#define RESOLVE_USAGE                                                                              \
	"heimdal state resolve --use-local|--use-remote|--merge|--manual [--remote FILE]"
#define DIFF_USAGE "heimdal state diff [--remote FILE] [--json | -c]"

/* The other side of a comparison. */
struct remote {
	jv state;     /* jv_null() when the remote has no state yet */
	jv base;      /* jv_null() when there is none */
	char *source; /* where it came from, for messages */
};

static jv
parse_or_die(const char *source, char *buf, size_t len)
{
	jv v = hm_json_parse(source, buf, len);

	free(buf);
	if (!jv_is_valid(v)) {
		jv msg = jv_invalid_get_msg(v);

		hm_die(HM_EXIT_USAGE, "%s", jv_string_value(msg));
	}
	return v;
}

/* The base: the state file at the merge base of HEAD and upstream, if any. */
static jv
read_base(git_repository *repo, const char *upstream)
{
	char head[41], base[41], *buf, *source;
	size_t len;
	int r;
	jv v;

	if (hm_git_head(repo, head) < 0 || hm_git_merge_base(repo, "HEAD", upstream, base) != 0)
		return jv_null();
	r = hm_git_read_file(repo, base, HM_REPO_STATE, &buf, &len);
	if (r < 0)
		exit(hm_last_code());
	if (r == 1)
		return jv_null();
	source = hm_xasprintf("%.12s:%s", base, HM_REPO_STATE);
	hm_debug("base state: %s", source);
	v = parse_or_die(source, buf, len);
	free(source);
	return v;
}

/*
 * Fetch the upstream of the dotfiles repository and read the remote and base
 * states from it.  Unreachable: warn (the specification's words) and use what
 * was fetched last.
 */
static void
remote_from_git(jv local, struct remote *rs)
{
	char *dir = porcelain_dotfiles_dir(local);
	struct hm_lock_config cfg;
	git_buf name = { 0 };
	git_reference *head = NULL;
	git_repository *repo;
	char reason[512], *up, *buf, *shortname, *remote, *branch = NULL, *url = NULL;
	size_t len;
	int r;

	repo = hm_git_open(dir);
	if (!repo || porcelain_repo_recover(repo, dir) < 0)
		exit(hm_last_code());
	up = hm_git_upstream(repo);
	if (up) {
		/* branch.<name>.remote, read directly: the remote whose fetch fills up. */
		if (git_repository_head(&head, repo) < 0 ||
		    git_branch_upstream_remote(&name, repo, git_reference_name(head)) < 0)
			hm_die(HM_EXIT_ENV, "%s: no remote for %s: %s", dir, up,
			       hm_git_last_error());
		git_reference_free(head);
		remote = hm_xstrdup(name.ptr);
		git_buf_dispose(&name);
		shortname = hm_xstrdup(up + (strncmp(up, "refs/remotes/", 13) == 0 ? 13 : 0));
	} else {
		/*
		 * A clone of a repository that was empty has no upstream until its
		 * first push: the branch of the same name on origin is the remote's.
		 */
		if (!(branch = hm_git_branch(repo)) || !(url = hm_git_remote_url(repo, "origin")))
			hm_die(HM_EXIT_ENV,
			       "%s: the current branch has no upstream branch "
			       "(set one with 'git branch -u', or pass --remote FILE)",
			       dir);
		remote = hm_xstrdup("origin");
		shortname = hm_xasprintf("origin/%s", branch);
		free(branch);
		free(url);
	}
	if (hm_config_load(&cfg) < 0)
		exit(hm_last_code());
	r = hm_git_fetch(repo, remote, cfg.remote_timeout, reason, sizeof(reason));
	if (r < 0)
		exit(hm_last_code());
	if (r == HM_GIT_UNREACHABLE) {
		char *then = hm_xasprintf("Comparing with the last fetched remote state (%s).\n",
					  shortname);

		hm_git_warn_unreachable(reason, then);
		free(then);
	}
	if (!up)
		up = hm_git_tracking_ref(repo, remote);
	rs->source = hm_xasprintf("%s:%s", shortname, HM_REPO_STATE);
	r = up ? hm_git_read_file(repo, up, HM_REPO_STATE, &buf, &len) : 1;
	if (r < 0)
		exit(hm_last_code());
	if (r == 1) {
		rs->state = jv_null();
		rs->base = jv_null();
	} else {
		rs->state = parse_or_die(rs->source, buf, len);
		rs->base = read_base(repo, up);
	}
	free(remote);
	free(shortname);
	free(up);
	free(dir);
	git_repository_free(repo);
}

/*
 * The plumbing reads the pair on its stdin and would name "<stdin>": the
 * states are checked here first, so a message names where they came from
 * (the user's --remote FILE, the remote branch, the merge base).  A newer
 * version is left to the plumbing, which reports it as such.
 */
static void
check_source(jv s, const char *what, const char *source)
{
	char *err = NULL;
	int v;

	if (jv_get_kind(s) == JV_KIND_NULL)
		return;
	v = hm_state_version_of(s, &err);
	if (v < 0 || (v <= HM_STATE_VERSION && hm_state_validate(s, &err) < 0))
		hm_die(HM_EXIT_USAGE, "%s%s%s: %s", what ? what : "", what ? ": " : "", source,
		       err);
}

static void
remote_load(jv local, const char *file, struct remote *rs)
{
	int ioerr;

	if (!file) {
		remote_from_git(local, rs);
		check_source(rs->state, NULL, rs->source);
		check_source(rs->base, NULL, "the state at the merge base");
		return;
	}
	rs->source = hm_xstrdup(file);
	rs->base = jv_null();
	rs->state = hm_json_read_file(file, &ioerr);
	if (!jv_is_valid(rs->state)) {
		jv msg = jv_invalid_get_msg(rs->state);

		hm_die(ioerr ? HM_EXIT_ENV : HM_EXIT_USAGE, "--remote: %s", jv_string_value(msg));
	}
	check_source(rs->state, "--remote", file);
}

/* {"local", "remote", "base"?} for the plumbing (all consumed). */
static jv
pair(jv local, jv remote, jv base)
{
	jv in = JV_OBJECT(jv_string("local"), local, jv_string("remote"), remote);

	if (jv_get_kind(base) != JV_KIND_NULL)
		return jv_object_set(in, jv_string("base"), base);
	jv_free(base);
	return in;
}

/* Run a plumbing tool; exits unless it answered 0 or 1. */
static int
run_tool(const char *name, char **argv, jv in, jv *out)
{
	int status = hm_spawn_json(name, argv, in, out);

	if (status < 0)
		exit(hm_last_code());
	if (status > 1)
		exit(status);
	return status;
}

struct opts {
	const char *remote;
	int json, compact;
	const char *strategy;
};

static void
parse(int argc, char **argv, const char *usage, int resolve, struct opts *o)
{
	static const struct option longopts[] = {
		{ "remote", required_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'j' },
		{ "compact", no_argument, NULL, 'c' },
		{ "use-local", no_argument, NULL, 'L' },
		{ "use-remote", no_argument, NULL, 'R' },
		{ "merge", no_argument, NULL, 'M' },
		{ "manual", no_argument, NULL, 'A' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *s;
	int c;

	memset(o, 0, sizeof(*o));
	while ((c = hm_opt_next(argc, argv, resolve ? "h" : "ch", longopts, usage)) != -1) {
		switch (c) {
		case 'r':
			o->remote = optarg;
			continue;
		case 'j':
		case 'c':
			if (resolve)
				break;
			o->json = 1;
			o->compact |= c == 'c';
			continue;
		case 'L':
		case 'R':
		case 'M':
		case 'A':
			if (!resolve)
				break;
			s = c == 'L'   ? "use-local"
			    : c == 'R' ? "use-remote"
			    : c == 'M' ? "merge"
				       : "manual";
			if (o->strategy && strcmp(o->strategy, s) != 0)
				hm_opt_die(usage, "--%s and --%s: choose one", o->strategy, s);
			o->strategy = s;
			continue;
		case 'h':
			printf("usage: %s\n", usage);
			exit(0);
		}
		hm_opt_die(usage, "unknown option '%s'", hm_opt_name(longopts, c));
	}
	if (optind < argc)
		hm_opt_die(usage, "unexpected argument '%s'", argv[optind]);
	if (resolve && !o->strategy)
		hm_opt_die(usage,
			   "choose a resolution: --use-local, --use-remote, --merge or --manual");
	if (o->remote && !*o->remote)
		hm_opt_die(usage, "--remote: must not be empty");
}

static void
print_conflicts(jv list)
{
	char *heading = hm_xasprintf("%s State Conflicts Detected", hm_mark(HM_MARK_WARN));

	hm_conflicts_print(stdout, heading, list);
	free(heading);
	jv_free(list);
}

int
cmd_state_check_conflicts(int argc, char **argv)
{
	char *av[] = { "heimdal-conflicts", NULL };
	struct remote rs;
	struct opts o;
	jv local, out, list;
	int status;

	parse(argc, argv, CHECK_USAGE, 0, &o);
	local = porcelain_state_load();
	remote_load(local, o.remote, &rs);
	if (jv_get_kind(rs.state) == JV_KIND_NULL) {
		hm_warn("no remote state at %s yet; nothing to compare", rs.source);
		if (o.json)
			porcelain_print_json(JV_OBJECT(jv_string("relation"), jv_null(),
						       jv_string("conflicts"), jv_array()),
					     o.compact);
		else
			printf("%s No conflicts detected\n", hm_mark(HM_MARK_OK));
		jv_free(local);
		free(rs.source);
		return 0;
	}
	status = run_tool("conflicts", av, pair(local, rs.state, rs.base), &out);
	free(rs.source);
	if (o.json) {
		porcelain_print_json(out, o.compact);
		return status;
	}
	list = jv_object_get(out, jv_string("conflicts"));
	if (jv_array_length(jv_copy(list)) == 0) {
		printf("%s No conflicts detected\n", hm_mark(HM_MARK_OK));
		jv_free(list);
		return 0;
	}
	print_conflicts(list);
	printf("\nResolution options:\n"
	       "  1. Use local state:  heimdal state resolve --use-local\n"
	       "  2. Use remote state: heimdal state resolve --use-remote\n"
	       "  3. Merge states:     heimdal state resolve --merge\n"
	       "  4. Manual edit:      heimdal state resolve --manual\n");
	return HM_EXIT_FOUND;
}

static int
resolve_manual(jv remote)
{
	char *path = hm_home_path("state.remote.json"), *state = hm_state_path();
	const char *ok = hm_mark(HM_MARK_OK);

	if (hm_home_ensure() < 0 || hm_state_write(path, remote) < 0)
		exit(HM_EXIT_ENV);
	printf("%s Remote state written to %s\n", ok, path);
	printf("\nSteps:\n");
	printf("1. Edit: `vim %s`\n", state);
	printf("2. Validate: `heimdal state version`\n");
	printf("3. Commit: `heimdal commit -m \"Fix state conflicts\"`\n");
	printf("4. Push: `heimdal push`\n");
	free(path);
	free(state);
	return 0;
}

/*
 * The resolved state (consumed) recorded as a write by this machine: its
 * serial new to both sides, above the higher of the two (above), so that no
 * serial the remote or this machine has ever published names other content.
 */
static jv
record_resolution(jv state, long long above)
{
	char n[32], *argv[] = { "heimdal-lineage", "bump", "--op", "resolve", "--above", n, NULL };
	jv out;
	int status;

	snprintf(n, sizeof(n), "%lld", above);
	status = hm_spawn_json("lineage", argv, state, &out);
	if (status < 0)
		exit(hm_last_code());
	if (status != 0 || jv_get_kind(out) != JV_KIND_OBJECT)
		hm_die(status > 0 ? status : HM_EXIT_ENV,
		       "heimdal-lineage bump --op resolve failed; nothing was changed");
	return out;
}

/* Keep what a resolution is about to discard; returns the backup's path. */
static char *
backup(const char *strategy, const char *relation, jv remote)
{
	char *path = NULL, *state;

	if (strcmp(strategy, "use-local") == 0) {
		/* The remote side is discarded only when it has something we lack. */
		if (!strcmp(relation, "equal") || !strcmp(relation, "ahead")) {
			jv_free(remote);
			return NULL;
		}
		path = porcelain_backup_path("state_remote");
		if (hm_state_write(path, remote) < 0)
			exit(HM_EXIT_ENV);
		return path;
	}
	jv_free(remote);
	state = hm_state_path();
	path = porcelain_backup_path("state");
	if (hm_file_copy(state, path) < 0)
		hm_die(HM_EXIT_ENV, "no backup could be made; state left unchanged");
	free(state);
	return path;
}

int
cmd_state_resolve(int argc, char **argv)
{
	GUARD guard = GUARD_INIT;
	char *cav[] = { "heimdal-conflicts", NULL };
	char *mav[] = { "heimdal-merge", "--strategy", NULL, "-c", NULL };
	const char *ok = hm_mark(HM_MARK_OK), *relation;
	char *saved;
	struct remote rs;
	struct opts o;
	jv local, in, found, merged, bumped, rel;
	int nconflicts, nmachines, status;
	long long serial, above;

	parse(argc, argv, RESOLVE_USAGE, 1, &o);
	if (guard_acquire(&guard, "resolve", GUARD_SETTLES) < 0)
		return hm_last_code();
	local = porcelain_state_load();
	remote_load(local, o.remote, &rs);
	if (jv_get_kind(rs.state) == JV_KIND_NULL)
		hm_die(HM_EXIT_ENV, "no remote state at %s to resolve against", rs.source);
	free(rs.source);
	if (strcmp(o.strategy, "manual") == 0) {
		jv_free(local);
		jv_free(rs.base);
		return resolve_manual(rs.state);
	}
	in = pair(local, rs.state, rs.base);
	run_tool("conflicts", cav, jv_copy(in), &found);
	rel = jv_object_get(jv_copy(found), jv_string("relation"));
	relation = jv_string_value(rel);
	nconflicts = jv_array_length(jv_object_get(jv_copy(found), jv_string("conflicts")));
	above = hm_json_int(found, "local_serial", 0);
	if (hm_json_int(found, "remote_serial", 0) > above)
		above = hm_json_int(found, "remote_serial", 0);
	jv_free(found);
	if (nconflicts == 0 && strcmp(relation, "equal") == 0) {
		printf("%s No conflicts detected; nothing to resolve\n", ok);
		jv_free(rel);
		jv_free(in);
		return 0;
	}
	mav[2] = (char *)o.strategy;
	status = run_tool("merge", mav, jv_copy(in), &merged);
	if (status != 0) {
		jv_free(in);
		jv_free(rel);
		hm_msg("automatic resolution impossible; use --use-local, --use-remote or --manual");
		return HM_EXIT_FOUND;
	}
	nmachines = jv_array_length(
		jv_getpath(jv_copy(merged), JV_ARRAY(jv_string("lineage"), jv_string("machines"))));
	/* The bump first: when it fails, nothing is written, not even a backup. */
	bumped = record_resolution(merged, above);
	saved = backup(o.strategy, relation, jv_object_get(in, jv_string("remote")));
	jv_free(rel); /* relation pointed into it */
	rel = jv_getpath(jv_copy(bumped), JV_ARRAY(jv_string("lineage"), jv_string("serial")));
	serial = jv_get_kind(rel) == JV_KIND_NUMBER ? (long long)jv_number_value(rel) : 0;
	jv_free(rel);
	porcelain_state_save(bumped);
	if (saved)
		printf("%s Backup created: %s\n", ok, saved);
	if (strcmp(o.strategy, "merge") == 0) {
		printf("%s States merged successfully\n", ok);
		printf("  - Combined %d machine(s)\n", nmachines);
		printf("  - Resolved %d conflict(s)\n", nconflicts);
	} else if (strcmp(o.strategy, "use-local") == 0) {
		printf("%s Local state kept\n", ok);
		printf("  - Remote state will be overwritten on next push\n");
	} else {
		printf("%s Remote state applied\n", ok);
		printf("  - Local changes replaced (the backup keeps them)\n");
	}
	printf("%s New state saved (serial %lld)\n", ok, serial);
	free(saved);
	return 0;
}

/* A value for the diff listing: compact JSON, "(absent)" when missing. */
static void
print_value(const char *label, jv d, const char *key)
{
	jv v = jv_object_get(jv_copy(d), jv_string(key));

	if (jv_is_valid(v)) {
		jv s = jv_dump_string(v, 0);

		printf("    %s %s\n", label, jv_string_value(s));
		jv_free(s);
	} else {
		jv_free(v);
		printf("    %s (absent)\n", label);
	}
}

/* The elements one side alone has, one a line. */
static void
print_only(const char *label, jv d, const char *key)
{
	jv list = jv_object_get(jv_copy(d), jv_string(key));

	jv_array_foreach(list, i, x)
	{
		jv s = jv_dump_string(x, 0);

		printf("    %s %s\n", label, jv_string_value(s));
		jv_free(s);
	}
	jv_free(list);
}

int
cmd_state_diff(int argc, char **argv)
{
	char *av[] = { "heimdal-conflicts", "--diff", NULL };
	struct remote rs;
	struct opts o;
	jv local, out, list;
	int status, n;

	parse(argc, argv, DIFF_USAGE, 0, &o);
	local = porcelain_state_load();
	remote_load(local, o.remote, &rs);
	if (jv_get_kind(rs.state) == JV_KIND_NULL)
		hm_die(HM_EXIT_ENV, "no remote state at %s to compare with", rs.source);
	free(rs.source);
	status = run_tool("conflicts", av, pair(local, rs.state, rs.base), &out);
	if (o.json) {
		porcelain_print_json(out, o.compact);
		return status;
	}
	list = jv_object_get(jv_copy(out), jv_string("differences"));
	n = jv_array_length(jv_copy(list));
	if (n == 0) {
		printf("%s No differences between local and remote state\n", hm_mark(HM_MARK_OK));
		jv_free(list);
		jv_free(out);
		return 0;
	}
	printf("State differences: local serial %lld vs remote serial %lld (%s)\n\n",
	       hm_json_int(out, "local_serial", 0), hm_json_int(out, "remote_serial", 0),
	       hm_json_str(out, "relation"));
	jv_array_foreach(list, i, d)
	{
		printf("  %s\n", hm_json_str(d, "field"));
		if (jv_object_has(jv_copy(d), jv_string("only_local"))) {
			print_only("only local: ", d, "only_local");
			print_only("only remote:", d, "only_remote");
		} else {
			print_value("local: ", d, "local");
			print_value("remote:", d, "remote");
		}
		jv_free(d);
	}
	printf("\n%d field(s) differ.\n", n);
	jv_free(list);
	jv_free(out);
	return HM_EXIT_FOUND;
}
