/*
 * status.c - `heimdal status [--json]`: one screen answering "what would
 * sync and apply do here".  Files changed here, changed upstream, merging
 * or in conflict come from apply's own plan (apply_run, preview only);
 * the branch against the remote-tracking one as last fetched (no network,
 * as `git status`); the other machines from the facts each publishes in
 * .heimdal/machines/ (record.h).  Nothing is written, no lock is taken.
 */
#include "builtin.h"
#include "record.h"
#include "remote.h"
#include "hm_error.h"
#include "hm_opt.h"
#include "hm_git.h"
#include "hm_json.h"
#include "hm_machine.h"
#include "hm_term.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATUS_USAGE "heimdal status [--json | -c]"

static _Noreturn void
usage(FILE *f, int code)
{
	fprintf(f, "usage: " STATUS_USAGE "\n"
		   "\n"
		   "      --json      print the status as JSON\n"
		   "  -c, --compact   the same, compact\n");
	exit(code);
}

/* Commits in a not in b (hex; -1 when unknown). */
static long
count_ahead(git_repository *repo, const char *a, const char *b)
{
	git_oid x, y;
	size_t ahead, behind;

	if (!a || !b || git_oid_fromstr(&x, a) < 0 || git_oid_fromstr(&y, b) < 0 ||
	    git_graph_ahead_behind(&ahead, &behind, repo, &x, &y) < 0)
		return -1;
	return (long)ahead;
}

/* 1 when hex names a commit this repository has. */
static int
known(git_repository *repo, const char *hex)
{
	git_oid id;
	git_commit *c;

	if (!hex || git_oid_fromstr(&id, hex) < 0 || git_commit_lookup(&c, repo, &id) < 0)
		return 0;
	git_commit_free(c);
	return 1;
}

/* The other machines' published facts at rev (the tip), each with how far behind it is. */
static jv
machines_at(git_repository *repo, const char *tip)
{
	git_object *obj = NULL;
	git_tree *tree = NULL;
	jv out = jv_array();
	const char *me = hm_machine_id();

	if (tip && git_revparse_single(&obj, repo, tip) == 0 &&
	    git_object_peel((git_object **)&tree, obj, GIT_OBJECT_TREE) == 0) {
		git_tree_entry *dir = NULL;
		git_tree *sub = NULL;

		if (git_tree_entry_bypath(&dir, tree, ".heimdal/machines") == 0 &&
		    git_tree_lookup(&sub, repo, git_tree_entry_id(dir)) == 0) {
			for (size_t i = 0; i < git_tree_entrycount(sub); i++) {
				const git_tree_entry *e = git_tree_entry_byindex(sub, i);
				const char *name = git_tree_entry_name(e);
				size_t n = strlen(name);
				git_blob *blob;
				jv m;

				if (n < 6 || strcmp(name + n - 5, ".json") != 0 ||
				    (strncmp(name, me, n - 5) == 0 && strlen(me) == n - 5) ||
				    git_blob_lookup(&blob, repo, git_tree_entry_id(e)) < 0)
					continue;
				m = hm_json_parse(name, git_blob_rawcontent(blob),
						  (size_t)git_blob_rawsize(blob));
				git_blob_free(blob);
				if (jv_get_kind(m) != JV_KIND_OBJECT) {
					jv_free(m);
					continue;
				}
				m = jv_object_delete(m, jv_string("files"));
				{
					const char *at = hm_json_str(m, "commit");
					/* Commits that carry only states are nothing to deploy. */
					long behind = !known(repo, at) ? -1
						      : hm_git_changed_outside(repo, at, tip,
									       ".heimdal/") == 0
							      ? 0
							      : count_ahead(repo, tip, at);

					m = jv_object_set(m, jv_string("behind"),
							  behind < 0 ? jv_null()
								     : jv_number(behind));
				}
				out = jv_array_append(out, m);
			}
		}
		git_tree_free(sub);
		git_tree_entry_free(dir);
	}
	git_tree_free(tree);
	git_object_free(obj);
	return out;
}

/* The paths of plan entries (borrowed) with one of the actions (space-separated). */
static jv
paths_with(jv plan, const char *actions)
{
	jv out = jv_array();

	jv_array_foreach(plan, i, e)
	{
		const char *a = hm_json_str(e, "action");
		size_t n = a ? strlen(a) : 0;
		const char *hit = a ? strstr(actions, a) : NULL;

		if (hit && (hit == actions || hit[-1] == ' ') && (hit[n] == ' ' || !hit[n]))
			out = jv_array_append(out, jv_object_get(jv_copy(e), jv_string("path")));
		jv_free(e);
	}
	return out;
}

static void
print_list(const char *title, jv paths)
{
	if (jv_array_length(jv_copy(paths)) > 0) {
		printf("\n%s\n", title);
		jv_array_foreach(paths, i, p)
		{
			printf("  %s\n", jv_string_value(p));
			jv_free(p);
		}
	}
	jv_free(paths);
}

static void
print_status(jv st)
{
	jv files = jv_object_get(jv_copy(st), jv_string("files"));
	jv ms = jv_object_get(jv_copy(st), jv_string("machines"));
	long long ahead = hm_json_int(st, "ahead", 0), behind = hm_json_int(st, "behind", 0);
	const char *up = hm_json_str(st, "upstream");

	printf("On %s (profile %s), serial %lld\n", hm_machine_hostname(),
	       hm_json_str(st, "profile") ?: "none", hm_json_int(st, "serial", 0));
	if (!up)
		printf("No remote-tracking branch yet: 'heimdal sync' shares this machine's state\n");
	else if (ahead || behind)
		printf("%lld commit(s) to push, %lld to pull from %s (as last fetched)\n", ahead,
		       behind, up);
	else
		printf("In step with %s (as last fetched)\n", up);
	print_list("Changed here ('heimdal commit' shares them):",
		   jv_object_get(jv_copy(files), jv_string("changed_here")));
	print_list("Changed upstream ('heimdal apply' or 'heimdal sync' deploys them):",
		   jv_object_get(jv_copy(files), jv_string("changed_upstream")));
	print_list("Changed on both sides, merging cleanly:",
		   jv_object_get(jv_copy(files), jv_string("merging")));
	print_list("Conflicts ('heimdal apply' writes PATH.heimdal-merge; 'heimdal resolve' "
		   "settles them):",
		   jv_object_get(jv_copy(files), jv_string("conflicts")));
	print_list("Skipped ('heimdal apply' says why):",
		   jv_object_get(jv_copy(files), jv_string("skipped")));
	if (jv_array_length(jv_copy(ms)) > 0) {
		printf("\nOther machines:\n");
		jv_array_foreach(ms, i, m)
		{
			jv host = jv_getpath(jv_copy(m),
					     JV_ARRAY(jv_string("machine"), jv_string("hostname")));
			jv b = jv_object_get(jv_copy(m), jv_string("behind"));
			const char *commit = hm_json_str(m, "commit");

			printf("  %-16s profile %-10s applied %-20s at %.7s%s",
			       jv_get_kind(host) == JV_KIND_STRING ? jv_string_value(host) : "?",
			       hm_json_str(m, "active_profile") ?: "-",
			       hm_json_str(m, "last_apply") ?: "never", commit ? commit : "-",
			       commit ? "" : "      ");
			if (jv_get_kind(b) == JV_KIND_NUMBER && jv_number_value(b) > 0)
				printf(" (%d commit(s) behind)", (int)jv_number_value(b));
			printf("\n");
			jv_free(host);
			jv_free(b);
			jv_free(m);
		}
	}
	jv_free(ms);
	jv_free(files);
}

int
cmd_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "compact", no_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct apply_opts o = { .dry_run = 1 };
	git_repository *repo;
	char head[41] = "", tipbuf[41] = "", *up;
	const char *tip = NULL;
	int c, json = 0, compact = 0;
	jv state, plan = jv_null(), st, files;
	git_oid id;

	while ((c = hm_opt_next(argc, argv, "ch", opts, STATUS_USAGE)) != -1) {
		switch (c) {
		case 'j':
			json = 1;
			break;
		case 'c':
			json = compact = 1;
			break;
		case 'h':
			usage(stdout, 0);
		}
	}
	if (optind < argc)
		hm_opt_die(STATUS_USAGE, "unexpected argument '%s'", argv[optind]);
	state = porcelain_state_load();
	repo = remote_open(state);
	o.preview = &plan;
	apply_run(repo, &state, &o);
	hm_git_head(repo, head);
	up = hm_git_tracking_ref(repo, REMOTE_NAME);
	if (up && git_reference_name_to_id(&id, repo, up) == 0) {
		git_oid_tostr(tipbuf, sizeof(tipbuf), &id);
		tip = tipbuf;
	}
	files = JV_OBJECT(
		jv_string("changed_here"), paths_with(plan, "changed_here"),
		jv_string("changed_upstream"), paths_with(plan, "new update mode remove untrack"),
		jv_string("merging"), paths_with(plan, "merge"), jv_string("conflicts"),
		paths_with(plan, "conflict"), jv_string("skipped"), paths_with(plan, "skip"));
	st = JV_OBJECT(
		jv_string("machine_id"), jv_string(hm_machine_id()), jv_string("profile"),
		hm_json_str(state, "active_profile")
			? jv_string(hm_json_str(state, "active_profile"))
			: jv_null(),
		jv_string("serial"),
		jv_getpath(jv_copy(state), JV_ARRAY(jv_string("lineage"), jv_string("serial"))),
		jv_string("head"), head[0] ? jv_string(head) : jv_null(), jv_string("upstream"),
		up ? jv_string(up + (strncmp(up, "refs/remotes/", 13) ? 0 : 13)) : jv_null());
	st = jv_object_set(st, jv_string("ahead"),
			   jv_number(tip ? (double)count_ahead(repo, head, tip) : 0));
	st = jv_object_set(st, jv_string("behind"),
			   jv_number(tip ? (double)count_ahead(repo, tip, head) : 0));
	st = jv_object_set(st, jv_string("files"), files);
	st = jv_object_set(st, jv_string("plan"), plan);
	st = jv_object_set(st, jv_string("machines"),
			   machines_at(repo, tip       ? tip
					     : head[0] ? head
						       : NULL));
	if (json)
		porcelain_print_json(st, compact);
	else {
		print_status(st);
		jv_free(st);
	}
	free(up);
	jv_free(state);
	git_repository_free(repo);
	return 0;
}
