/*
 * doctor.c - `heimdal doctor [--json]`: is this machine fit to run heimdal?
 * One line per check, each ok, warn or fail:
 *
 *   tools        the plumbing on the exec path
 *   libraries    libgit2 (and what it was built with), OpenSSL, libjq
 *   heimdal_home $HEIMDAL_HOME 0700, state.json and deployed.json 0600
 *   state        the state is valid, and its version
 *   lock_config  lock_config.json valid (or absent: defaults)
 *   lock         the state lock free, held, or stale (and why)
 *   repository   the dotfiles repository present, no unfinished merge, clean
 *   remote       origin answers within a few seconds (ls-remote, no fetch)
 *   remote_lock  whether refs/heimdal/lock is held there
 *   clock        skew against the remote's last commit
 *   drift        files changed or missing here since deployed
 *
 * A warning is something to know (an unreachable remote, a lock held, drift)
 * and passes; a failure is something heimdal cannot work with.  Exit 0 when
 * nothing failed, 1 when a check failed.  No state, record or dotfile is
 * written, no lock is taken, and doctor never exits half way: every error
 * becomes a check's detail.
 */
#include "builtin.h"
#include "hm_config.h"
#include "hm_error.h"
#include "hm_opt.h"
#include "hm_git.h"
#include "hm_gitmerge.h"
#include "hm_json.h"
#include "hm_lock.h"
#include "hm_lsremote.h"
#include "hm_machine.h"
#include "hm_spawn.h"
#include "hm_state.h"
#include "hm_term.h"
#include "hm_time.h"

#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* What the remote's last commit may be ahead of this clock before it is skew. */
#define SKEW_MAX 300
/* The remote check's bound, at most: doctor answers quickly even offline. */
#define REMOTE_TIMEOUT_MAX 5

#define DOCTOR_USAGE "heimdal doctor [--json | -c]"

static _Noreturn void
usage(FILE *f, int code)
{
	fprintf(f, "usage: " DOCTOR_USAGE "\n"
		   "\n"
		   "      --json      print the checks as JSON\n"
		   "  -c, --compact   the same, compact\n"
		   "\n"
		   "Exit status: 0 when no check failed (warnings pass), 1 when one failed.\n");
	exit(code);
}

enum status { OK, WARN, FAIL };

struct doctor {
	int json, failed;
	jv checks;
	char captured[1024]; /* the first error line a library printed (capture_end) */
	int saved_fd;
	FILE *tmp;
};

static void check(struct doctor *d, const char *name, enum status st, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
check(struct doctor *d, const char *name, enum status st, const char *fmt, ...)
{
	static const char *const names[] = { "ok", "warn", "fail" };
	static const enum hm_mark marks[] = { HM_MARK_OK, HM_MARK_WARN, HM_MARK_ERR };
	char detail[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	if (st == FAIL)
		d->failed = 1;
	if (d->json) {
		d->checks = jv_array_append(d->checks,
					    JV_OBJECT(jv_string("name"), jv_string(name),
						      jv_string("status"), jv_string(names[st]),
						      jv_string("detail"), jv_string(detail)));
	} else {
		printf("%s %s: %s\n", hm_mark(marks[st]), name, detail);
		fflush(stdout);
	}
}

/*
 * The library calls below report their errors on stderr; a check takes the
 * message as its detail instead.  Between capture_begin and capture_end,
 * stderr (the tools spawned meanwhile included) goes to a temporary file.
 */
static void
capture_begin(struct doctor *d)
{
	d->captured[0] = '\0';
	fflush(stderr);
	d->saved_fd = -1;
	if (!(d->tmp = tmpfile()))
		return;
	d->saved_fd = dup(STDERR_FILENO);
	if (d->saved_fd < 0 || dup2(fileno(d->tmp), STDERR_FILENO) < 0) {
		fclose(d->tmp);
		d->tmp = NULL;
	}
}

static const char *
capture_end(struct doctor *d)
{
	static const char prefix[] = "heimdal: error: ";
	char line[sizeof(d->captured)];

	if (!d->tmp)
		return d->captured;
	fflush(stderr);
	dup2(d->saved_fd, STDERR_FILENO);
	close(d->saved_fd);
	rewind(d->tmp);
	while (fgets(line, sizeof(line), d->tmp)) {
		char *s = line;

		line[strcspn(line, "\n")] = '\0';
		if (strncmp(s, prefix, sizeof(prefix) - 1) == 0)
			s += sizeof(prefix) - 1;
		else if (strncmp(s, "heimdal-", 8) == 0 && strstr(s, ": error: "))
			s = strstr(s, ": error: ") + 9;
		if (*s && !d->captured[0])
			snprintf(d->captured, sizeof(d->captured), "%s", s);
	}
	fclose(d->tmp);
	d->tmp = NULL;
	return d->captured[0] ? d->captured : "unknown error";
}

static void
check_tools(struct doctor *d)
{
	static const char *const tools[] = { "migrate", "lineage", "conflicts", "merge",
					     "drift",   "lock",    "rlock",     NULL };
	char missing[256] = "";
	int n = 0;

	for (int i = 0; tools[i]; i++) {
		char *t = hm_find_tool(tools[i]);

		if (t)
			n++;
		else
			snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing),
				 "%sheimdal-%s", missing[0] ? ", " : "", tools[i]);
		free(t);
	}
	if (missing[0])
		check(d, "tools", FAIL, "not on the exec path (%s): %s", hm_exec_path(), missing);
	else
		check(d, "tools", OK, "%d plumbing tools found; exec path %s", n, hm_exec_path());
}

static void
check_libraries(struct doctor *d)
{
	int major, minor, rev, features = git_libgit2_features();
	const char *jq = "libjq";
	char real[PATH_MAX];
	Dl_info info;

	git_libgit2_version(&major, &minor, &rev);
	if (dladdr((void *)jv_parse, &info) && info.dli_fname && realpath(info.dli_fname, real))
		jq = strrchr(real, '/') ? strrchr(real, '/') + 1 : real;
	if (major != LIBGIT2_VER_MAJOR || minor != LIBGIT2_VER_MINOR)
		check(d, "libraries", FAIL, "libgit2 %d.%d.%d at run time, built against %s", major,
		      minor, rev, LIBGIT2_VERSION);
	else
		check(d, "libraries", features & GIT_FEATURE_SSH ? OK : WARN,
		      "libgit2 %d.%d.%d (%s%s%s), %s, %s%s", major, minor, rev,
		      features & GIT_FEATURE_HTTPS ? "https" : "no https",
		      features & GIT_FEATURE_SSH ? ", ssh" : ", no ssh",
		      features & GIT_FEATURE_THREADS ? ", threads" : "",
		      OpenSSL_version(OPENSSL_VERSION), jq,
		      features & GIT_FEATURE_SSH ? "" : "; ssh:// remotes cannot be used");
}

/* Returns 1 when $HEIMDAL_HOME exists. */
static int
check_home(struct doctor *d)
{
	static const char *const files[] = { "state.json", "deployed.json", NULL };
	const char *home = hm_home();
	char loose[512] = "";
	struct stat st;

	if (stat(home, &st) < 0 || !S_ISDIR(st.st_mode)) {
		check(d, "heimdal_home", FAIL, "%s: %s; run 'heimdal init'", home,
		      errno == ENOENT ? "does not exist" : "not a directory");
		return 0;
	}
	if (st.st_mode & 077)
		snprintf(loose, sizeof(loose), "%s is mode %04o (chmod 700 %s)", home,
			 st.st_mode & 07777, home);
	for (int i = 0; files[i]; i++) {
		char *p = hm_home_path(files[i]);

		if (stat(p, &st) == 0 && (st.st_mode & 077))
			snprintf(loose + strlen(loose), sizeof(loose) - strlen(loose),
				 "%s%s is mode %04o (chmod 600 %s)", loose[0] ? "; " : "", files[i],
				 st.st_mode & 07777, p);
		free(p);
	}
	if (loose[0])
		check(d, "heimdal_home", WARN, "readable by others: %s", loose);
	else
		check(d, "heimdal_home", OK, "%s 0700, its files 0600", home);
	return 1;
}

/* The state, or jv_invalid() when there is none to work with. */
static jv
check_state(struct doctor *d)
{
	char *path = hm_state_path(), *err = NULL;
	int code, missing = 0, version;
	jv state = hm_state_read(path, &code, &missing);

	if (!jv_is_valid(state)) {
		jv msg = jv_invalid_get_msg(state);

		if (missing)
			check(d, "state", FAIL, "%s does not exist; run 'heimdal init'", path);
		else
			check(d, "state", FAIL, "%s",
			      jv_get_kind(msg) == JV_KIND_STRING ? jv_string_value(msg) : path);
		jv_free(msg);
		free(path);
		return jv_invalid();
	}
	version = hm_state_version_of(state, &err);
	free(err);
	if (version > HM_STATE_VERSION) {
		check(d, "state", FAIL, HM_STATE_NEWER_FMT, version, HM_STATE_VERSION);
		jv_free(state);
		state = jv_invalid();
	} else if (version < HM_STATE_VERSION) {
		check(d, "state", WARN,
		      "version %d (legacy): the next heimdal command migrates it, "
		      "keeping a backup",
		      version);
	} else {
		jv serial = jv_getpath(jv_copy(state),
				       JV_ARRAY(jv_string("lineage"), jv_string("serial")));

		check(d, "state", OK, "version %d, serial %lld, profile %s", version,
		      jv_get_kind(serial) == JV_KIND_NUMBER ? (long long)jv_number_value(serial)
							    : 0LL,
		      hm_json_str(state, "active_profile") ?: "none");
		jv_free(serial);
	}
	free(path);
	return state;
}

/* Returns 0 and fills cfg, or -1. */
static int
check_config(struct doctor *d, struct hm_lock_config *cfg)
{
	char *path = hm_home_path("lock_config.json");
	int r, present = access(path, F_OK) == 0;

	capture_begin(d);
	r = hm_config_load(cfg);
	capture_end(d);
	if (r < 0)
		check(d, "lock_config", FAIL, "%s", d->captured[0] ? d->captured : path);
	else
		check(d, "lock_config", OK,
		      "%s%s, timeout %lds, remote_timeout %lds, stale "
		      "detection %s",
		      present ? "" : "absent, defaults: ", hm_lock_type_name(cfg->lock_type),
		      cfg->timeout, cfg->remote_timeout, cfg->detect_stale ? "on" : "off");
	free(path);
	return r;
}

static void
check_lock(struct doctor *d)
{
	jv info, m;
	char ago[64];

	capture_begin(d);
	info = hm_lock_info();
	capture_end(d);
	if (!jv_is_valid(info)) {
		jv_free(info);
		check(d, "lock", FAIL, "%s", d->captured);
		return;
	}
	if (jv_get_kind(jv_object_get(jv_copy(info), jv_string("locked"))) != JV_KIND_TRUE) {
		check(d, "lock", OK, "free");
		jv_free(info);
		return;
	}
	m = jv_object_get(jv_copy(info), jv_string("machine"));
	hm_time_ago(hm_json_int(info, "age_seconds", 0), ago, sizeof(ago));
	if (jv_get_kind(jv_object_get(jv_copy(info), jv_string("stale"))) == JV_KIND_TRUE)
		check(d, "lock", WARN,
		      "stale: %s (%s by pid %lld on %s, %s); the next command breaks it, or "
		      "'heimdal state unlock --force'",
		      hm_json_str(info, "stale_reason") ?: "its holder is gone",
		      hm_json_str(info, "operation") ?: "?", hm_json_int(m, "pid", 0),
		      hm_json_str(m, "hostname") ?: "?", ago);
	else
		check(d, "lock", WARN, "held by a running %s (pid %lld on %s, %s)",
		      hm_json_str(info, "operation") ?: "operation", hm_json_int(m, "pid", 0),
		      hm_json_str(m, "hostname") ?: "?", ago);
	jv_free(m);
	jv_free(info);
}

static git_repository *
check_repository(struct doctor *d, jv state)
{
	git_status_options so = GIT_STATUS_OPTIONS_INIT;
	git_status_list *list = NULL;
	git_repository *repo;
	char *dir, **conflicts, head[41] = "", *branch;
	size_t n = 0, changed = 0;

	if (!jv_is_valid(state)) {
		check(d, "repository", FAIL, "not checked: no valid state names it");
		return NULL;
	}
	dir = porcelain_dotfiles_dir(state);
	capture_begin(d);
	repo = hm_git_open(dir);
	capture_end(d);
	if (!repo) {
		check(d, "repository", FAIL,
		      "%s; 'heimdal init --force --profile NAME --repo URL' "
		      "clones it again",
		      d->captured);
		free(dir);
		return NULL;
	}
	if (git_repository_is_bare(repo)) {
		check(d, "repository", FAIL, "%s: a bare repository has no working tree", dir);
		git_repository_free(repo);
		free(dir);
		return NULL;
	}
	if ((conflicts = hm_git_conflicted_paths(repo, &n))) {
		check(d, "repository", FAIL,
		      "%s: a merge is unfinished, %zu path(s) conflicted "
		      "(%s%s); settle them and run 'heimdal sync'",
		      dir, n, conflicts[0], n > 1 ? ", ..." : "");
		hm_git_paths_free(conflicts);
		free(dir);
		return repo;
	}
	so.show = GIT_STATUS_SHOW_INDEX_AND_WORKDIR;
	so.flags = GIT_STATUS_OPT_EXCLUDE_SUBMODULES;
	if (git_status_list_new(&list, repo, &so) < 0) {
		check(d, "repository", FAIL, "%s: %s", dir, hm_git_last_error());
		free(dir);
		return repo;
	}
	for (size_t i = 0; i < git_status_list_entrycount(list); i++) {
		const git_status_entry *e = git_status_byindex(list, i);

		if (e->status != GIT_STATUS_CURRENT && !(e->status & GIT_STATUS_IGNORED))
			changed++;
	}
	git_status_list_free(list);
	hm_git_head(repo, head);
	branch = hm_git_branch(repo);
	if (changed)
		check(d, "repository", WARN,
		      "%s: %zu uncommitted change(s) in the work tree "
		      "('heimdal commit', or git there)",
		      dir, changed);
	else
		check(d, "repository", OK, "%s on %s at %.7s, clean", dir,
		      branch ? branch : "a detached HEAD", head[0] ? head : "(no commit yet)");
	free(branch);
	free(dir);
	return repo;
}

/* The remote check; *refs gets the remote's refs (jv_null() when unknown). */
static void
check_remote(struct doctor *d, git_repository *repo, const struct hm_lock_config *cfg, jv *refs)
{
	char *url, reason[512];
	long timeout = cfg && cfg->remote_timeout < REMOTE_TIMEOUT_MAX ? cfg->remote_timeout
								       : REMOTE_TIMEOUT_MAX;
	int r;

	*refs = jv_null();
	if (!repo) {
		check(d, "remote", FAIL, "not checked: no repository");
		return;
	}
	if (!(url = hm_git_remote_url(repo, "origin"))) {
		check(d, "remote", WARN,
		      "the repository has no remote 'origin': nothing is shared");
		return;
	}
	r = hm_lsremote_list(repo, "origin", timeout, refs, reason, sizeof(reason));
	if (r == 0) {
		char *branch = hm_git_branch(repo),
		     *ref = hm_xasprintf("refs/heads/%s", branch ? branch : "main");
		const char *tip = hm_json_str(*refs, ref);

		if (tip)
			check(d, "remote", OK, "%s answered; %s at %.7s", url, ref + 11, tip);
		else
			check(d, "remote", OK, "%s answered; it has no branch %s yet", url,
			      ref + 11);
		free(ref);
		free(branch);
	} else if (r == HM_GIT_UNREACHABLE) {
		check(d, "remote", WARN, "%s unreachable: %s", url, reason);
	} else {
		check(d, "remote", FAIL, "%s: %s", url, reason);
	}
	free(url);
}

static void
check_remote_lock(struct doctor *d, jv refs)
{
	const char *held;

	if (jv_get_kind(refs) != JV_KIND_OBJECT) {
		check(d, "remote_lock", WARN, "unknown: the remote did not answer");
		return;
	}
	held = hm_json_str(refs, HM_LOCK_REMOTE_REF);
	if (held)
		check(d, "remote_lock", WARN,
		      "%s is held on the remote (commit %.7s): an "
		      "operation is running on another machine, or one "
		      "that died left it ('heimdal state unlock --force' "
		      "there)",
		      HM_LOCK_REMOTE_REF, held);
	else
		check(d, "remote_lock", OK, "%s is free", HM_LOCK_REMOTE_REF);
}

/*
 * The remote's last commit: the tip it answered with when this repository
 * has that commit, else the remote-tracking branch as last fetched.
 */
static void
check_clock(struct doctor *d, git_repository *repo, jv refs)
{
	char *branch, *ref, *tracking, ago[64], when[32];
	git_commit *commit = NULL;
	const char *tip, *how = "as last fetched";
	git_oid id;
	time_t now = hm_time_now(), t;

	if (!repo) {
		check(d, "clock", WARN, "not checked: no repository");
		return;
	}
	branch = hm_git_branch(repo);
	ref = hm_xasprintf("refs/heads/%s", branch ? branch : "main");
	tip = jv_get_kind(refs) == JV_KIND_OBJECT ? hm_json_str(refs, ref) : NULL;
	if (tip && git_oid_fromstr(&id, tip) == 0 && git_commit_lookup(&commit, repo, &id) == 0)
		how = "as the remote answered";
	tracking = commit ? NULL : hm_git_tracking_ref(repo, "origin");
	if (!commit && tracking && git_reference_name_to_id(&id, repo, tracking) == 0)
		git_commit_lookup(&commit, repo, &id);
	free(tracking);
	free(ref);
	free(branch);
	if (!commit) {
		check(d, "clock", OK, "no remote commit to compare with");
		return;
	}
	t = (time_t)git_commit_time(commit);
	git_commit_free(commit);
	hm_time_format(t, when);
	if (t - now > SKEW_MAX) {
		hm_time_ago((long long)(t - now), ago, sizeof(ago));
		check(d, "clock", WARN,
		      "the remote's last commit (%s, %s) is %s ahead of this "
		      "clock: lock ages and timestamps need the right time",
		      when, how, strstr(ago, " ago") ? (*strstr(ago, " ago") = '\0', ago) : ago);
	} else {
		hm_time_ago(now > t ? (long long)(now - t) : 0, ago, sizeof(ago));
		check(d, "clock", OK, "the remote's last commit was made %s (%s, %s)", ago, when,
		      how);
	}
}

/* The length of the array obj[key] (borrowed), 0 when there is none. */
static long long
count(jv obj, const char *key)
{
	jv a = jv_object_get(jv_copy(obj), jv_string(key));
	long long n = jv_get_kind(a) == JV_KIND_ARRAY ? jv_array_length(jv_copy(a)) : 0;

	jv_free(a);
	return n;
}

static void
check_drift(struct doctor *d, jv state)
{
	char *argv[] = { "heimdal-drift", "--compact", NULL }, *tool = hm_find_tool("drift");
	long long bad;
	int status;
	jv out = jv_null();

	char *err = NULL;
	int version = jv_is_valid(state) ? hm_state_version_of(state, &err) : -1;

	free(err);
	if (version != HM_STATE_VERSION || !tool) {
		check(d, "drift", WARN, "not checked: %s",
		      !tool ? "heimdal-drift is not on the exec path" : "no valid V2 state");
		free(tool);
		return;
	}
	free(tool);
	capture_begin(d);
	status = hm_spawn_json("drift", argv, jv_copy(state), &out);
	capture_end(d);
	if (status < 0 || status > 1 || jv_get_kind(out) != JV_KIND_OBJECT) {
		check(d, "drift", FAIL, "heimdal-drift failed: %s",
		      d->captured[0] ? d->captured : "no report");
		jv_free(out);
		return;
	}
	bad = count(out, "modified") + count(out, "missing") + count(out, "errors");
	if (bad)
		check(d, "drift", WARN,
		      "%lld of %lld file(s) changed or missing here since "
		      "deployed ('heimdal diff' shows them, 'heimdal commit' "
		      "shares them)",
		      bad, hm_json_int(out, "checked", 0));
	else
		check(d, "drift", OK, "%lld file(s) checked, none changed",
		      hm_json_int(out, "checked", 0));
	jv_free(out);
}

int
cmd_doctor(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "compact", no_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct doctor d = { .checks = jv_array() };
	struct hm_lock_config cfg;
	git_repository *repo;
	int c, have_cfg, have_home, compact = 0;
	jv state, refs;

	while ((c = hm_opt_next(argc, argv, "ch", opts, DOCTOR_USAGE)) != -1) {
		switch (c) {
		case 'j':
			d.json = 1;
			break;
		case 'c':
			d.json = compact = 1;
			break;
		case 'h':
			jv_free(d.checks);
			usage(stdout, 0);
		}
	}
	if (optind < argc) {
		jv_free(d.checks);
		hm_opt_die(DOCTOR_USAGE, "unexpected argument '%s'", argv[optind]);
	}
	hm_git_init();
	check_tools(&d);
	check_libraries(&d);
	have_home = check_home(&d);
	state = check_state(&d);
	have_cfg = check_config(&d, &cfg) == 0;
	if (!have_home)
		check(&d, "lock", OK, "free (there is no %s to hold a lock)", hm_home());
	else if (have_cfg)
		check_lock(&d);
	else
		check(&d, "lock", FAIL, "not checked: lock_config.json is invalid");
	repo = check_repository(&d, state);
	check_remote(&d, repo, have_cfg ? &cfg : NULL, &refs);
	check_remote_lock(&d, refs);
	check_clock(&d, repo, refs);
	check_drift(&d, state);
	if (d.json)
		porcelain_print_json(JV_OBJECT(jv_string("checks"), d.checks, jv_string("ok"),
					       jv_bool(!d.failed)),
				     compact);
	else
		jv_free(d.checks);
	jv_free(refs);
	jv_free(state);
	git_repository_free(repo);
	return d.failed ? HM_EXIT_FOUND : 0;
}
