/*
 * hm_rlock.c - the remote half of the hybrid lock: refs/heimdal/lock on the
 * dotfiles repository's "origin" (hm_rlock.h).
 *
 * The ref points at a root commit whose tree holds lock.json, the record.
 * Taking it is a compare-and-swap:
 *
 *  - smart transports (git://, ssh, http): connect, read the ref's current
 *    value (git_remote_ls), judge it, then push on the same connection.  The
 *    server applies the update only if the ref still holds the advertised
 *    value, so of two machines racing exactly one wins.  A stale holder is
 *    taken over with a forced push that still carries the old value (a
 *    lease): two machines cannot both take it over.  A rejection shows up
 *    either as GIT_ENONFASTFORWARD or as a status in push_update_reference.
 *  - a remote that is a local path or file:// URL: libgit2's local transport
 *    does not compare-and-swap, so the check-and-set is done directly in
 *    that repository under flock(2) on its "heimdal-lock.guard" file.
 *
 * Every network step runs in a child bounded by lock_config.json's
 * remote_timeout (hm_git_deadline): a server that accepts and never answers
 * would hang libgit2 forever.
 */
#include "hm_rlock.h"
#include "hm_config.h"
#include "hm_error.h"
#include "hm_state.h"
#include "hm_file.h"
#include "hm_git.h"
#include "hm_json.h"
#include "hm_lineage.h"
#include "hm_lock.h"
#include "hm_machine.h"
#include "hm_sigchain.h"
#include "hm_term.h"
#include "hm_time.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define LOCK_REF HM_LOCK_REMOTE_REF
#define FETCHED_REF "refs/heimdal/remote-lock"
#define ROUNDS 5

struct ctx {
	git_repository *repo; /* the dotfiles repository */
	char *repo_path;
	char *url; /* origin's URL */
	char *dir; /* the remote's directory when it is a local path */
	const struct hm_lock_config *cfg;
	char *json;     /* the record to publish (acquire) */
	const char *id; /* its id */
	git_oid commit; /* the commit to remove (release) */
};

static void
unreachable(const char *reason)
{
	hm_git_warn_unreachable(reason, "Proceeding with local-only lock.\n"
					"Remember to sync when connection is restored.\n");
}

/* libgit2 says "failed to connect to 127.0.0.1: Connection refused"; the
 * specification says "connection refused". */
static void
warn_unreachable(const char *reason)
{
	unreachable(strcasestr(reason, "connection refused") ? "connection refused" : reason);
}

/* The remote's directory when url names a local path or file:// URL, else NULL. */
static char *
local_dir(const char *url, const char *workdir)
{
	const char *colon = strchr(url, ':'), *slash = strchr(url, '/');

	if (strncmp(url, "file://", 7) == 0)
		return hm_xstrdup(url + 7);
	if (strstr(url, "://") || (colon && (!slash || colon < slash)))
		return NULL;
	if (url[0] == '/')
		return hm_xstrdup(url);
	return hm_path_join(workdir, url);
}

/* Fill c from the repository at repo_path and its origin; -1 when there is none. */
static int
ctx_open(struct ctx *c, const char *repo_path)
{
	git_remote *remote = NULL;

	hm_git_init();
	if (git_repository_open_ext(&c->repo, repo_path, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0) {
		hm_debug("%s: not a git repository (%s): the lock is local only", repo_path,
			 hm_git_last_error());
		return -1;
	}
	if (git_remote_lookup(&remote, c->repo, "origin") < 0 || !git_remote_url(remote)) {
		hm_debug("%s: no remote 'origin': the lock is local only", repo_path);
		git_remote_free(remote);
		return -1;
	}
	c->repo_path = hm_xstrdup(repo_path);
	c->url = hm_xstrdup(git_remote_url(remote));
	c->dir = local_dir(c->url, git_repository_workdir(c->repo) ? git_repository_workdir(c->repo)
								   : git_repository_path(c->repo));
	git_remote_free(remote);
	return 0;
}

static void
ctx_free(struct ctx *c)
{
	git_repository_free(c->repo);
	free(c->repo_path);
	free(c->url);
	free(c->dir);
	free(c->json);
}

/* A failure in a child: carried to the parent as the "unreachable" reason. */
static int
child_fail(const char *what)
{
	git_error_set_str(GIT_ERROR_INVALID, what);
	return HM_GIT_UNREACHABLE;
}

static int
child_git_fail(const char *what)
{
	char msg[512];

	snprintf(msg, sizeof(msg), "%s: %s", what, hm_git_last_error());
	return child_fail(msg);
}

/*
 * A libgit2 network failure in a child: "unreachable" only when no connection
 * could be made.  A server that answered with an error (the repository gone,
 * access denied, a host key refused) is never taken for being offline: its
 * words are printed, the lock stays local, and the command's own use of the
 * remote fails with them.
 */
static int
net_fail(const struct ctx *c)
{
	if (hm_git_url_missing_path(c->url))
		hm_warn("%s: no such repository: the path does not exist; the remote lock is not "
			"taken",
			c->url);
	else if (hm_git_is_unreachable(-1))
		return HM_GIT_UNREACHABLE;
	else
		hm_warn("%s: %s; the remote lock is not taken", c->url, hm_git_last_error());
	return -1;
}

static int
fetch_child(void *arg, int out_fd)
{
	struct ctx *c = arg;
	git_fetch_options opts = GIT_FETCH_OPTIONS_INIT;
	git_remote *remote = NULL;
	int attempt = 0, err;

	(void)out_fd;
	if (git_remote_lookup(&remote, c->repo, "origin") < 0)
		return child_git_fail("origin");
	opts.callbacks.credentials = hm_git_credentials;
	opts.callbacks.payload = &attempt;
	err = hm_git_fetch_whole(remote, &opts);
	git_remote_free(remote);
	return err < 0 ? net_fail(c) : 0;
}

/* What is known of a lock commit whose record cannot be read. */
struct unreadable {
	char why[256];  /* what is wrong with it */
	char who[300];  /* the commit's author, escaped */
	time_t stamped; /* the commit's time (0: unknown) */
};

/*
 * The record in a lock commit of repo: valid only when it is a lock record
 * (hm_lock_record_check).  Otherwise invalid, and u says why, who made the
 * commit and when.
 */
static jv
commit_record(git_repository *repo, const git_oid *oid, struct unreadable *u)
{
	git_commit *commit = NULL;
	git_tree *tree = NULL;
	const git_tree_entry *e = NULL;
	git_blob *blob = NULL;
	jv r = jv_invalid();

	u->why[0] = '\0';
	snprintf(u->who, sizeof(u->who), "unknown");
	u->stamped = 0;
	if (git_commit_lookup(&commit, repo, oid) < 0) {
		snprintf(u->why, sizeof(u->why), "not a commit");
		goto out;
	}
	u->stamped = (time_t)git_commit_time(commit);
	if (git_commit_author(commit)) {
		char name[128], email[128];

		hm_term_escape(git_commit_author(commit)->name, 0, name, sizeof(name));
		hm_term_escape(git_commit_author(commit)->email, 0, email, sizeof(email));
		snprintf(u->who, sizeof(u->who), "%s <%s>", name, email);
	}
	if (git_commit_tree(&tree, commit) < 0 || !(e = git_tree_entry_byname(tree, "lock.json")) ||
	    git_blob_lookup(&blob, repo, git_tree_entry_id(e)) < 0) {
		snprintf(u->why, sizeof(u->why), "no lock.json in its tree");
		goto out;
	}
	r = hm_json_parse(LOCK_REF, git_blob_rawcontent(blob), (size_t)git_blob_rawsize(blob));
	if (!jv_is_valid(r)) {
		jv msg = jv_invalid_get_msg(r);

		hm_term_escape(jv_get_kind(msg) == JV_KIND_STRING ? jv_string_value(msg)
								  : "invalid JSON",
			       0, u->why, sizeof(u->why));
		jv_free(msg);
		r = jv_invalid();
	} else if (hm_lock_record_check(r, u->why, sizeof(u->why)) < 0) {
		jv_free(r);
		r = jv_invalid();
	}
out:
	git_blob_free(blob);
	git_tree_free(tree);
	git_commit_free(commit);
	return r;
}

/* A root commit whose tree holds lock.json = json. */
static int
make_commit(git_repository *repo, const char *json, const char *id, git_oid *out)
{
	git_oid blob, tree_id;
	git_treebuilder *tb = NULL;
	git_tree *tree = NULL;
	git_signature *sig = NULL;
	char *msg = hm_xasprintf("heimdal lock %s\n", id);
	int err;

	err = git_blob_create_from_buffer(&blob, repo, json, strlen(json));
	if (!err)
		err = git_treebuilder_new(&tb, repo, NULL);
	if (!err)
		err = git_treebuilder_insert(NULL, tb, "lock.json", &blob, GIT_FILEMODE_BLOB);
	if (!err)
		err = git_treebuilder_write(&tree_id, tb);
	if (!err)
		err = git_tree_lookup(&tree, repo, &tree_id);
	if (!err)
		err = git_signature_new(&sig, "heimdal", "heimdal@localhost", hm_time_now(), 0);
	if (!err)
		err = git_commit_create(out, repo, NULL, sig, sig, NULL, msg, tree, 0, NULL);
	git_signature_free(sig);
	git_tree_free(tree);
	git_treebuilder_free(tb);
	free(msg);
	return err;
}

/* A worker's answer to its parent (a short write is seen there as no answer). */
static void
emit(int fd, jv v)
{
	size_t len;
	char *s = hm_json_dump(v, HM_JSON_COMPACT, &len);

	(void)hm_write_all(fd, s, len);
	free(s);
}

static void
emit_acquired(int fd, const git_oid *oid)
{
	char hex[GIT_OID_HEXSZ + 1];

	git_oid_tostr(hex, sizeof(hex), oid);
	emit(fd, JV_OBJECT(jv_string("result"), jv_string("acquired"), jv_string("commit"),
			   jv_string(hex)));
}

/*
 * Judge the remote's holder (the record in commit oid of repo); 1 when it
 * blocks us (result written to fd), 0 when it may be replaced (stale, or our
 * own record).  A commit whose record cannot be read is no holder anyone can
 * check: it is judged by its commit time alone, as another machine's lock,
 * and reported as what it is.
 */
static int
holder_blocks(struct ctx *c, git_repository *repo, const git_oid *oid, int fd)
{
	struct unreadable u;
	jv holder = commit_record(repo, oid, &u);
	char why[256], hex[GIT_OID_HEXSZ + 1];

	if (!jv_is_valid(holder)) {
		jv_free(holder);
		git_oid_tostr(hex, sizeof(hex), oid);
		if (u.stamped &&
		    hm_lock_assess_time(u.stamped, c->cfg->timeout, u.who, why, sizeof(why)) &&
		    c->cfg->detect_stale) {
			hm_warn("%s holds an unreadable lock record (commit %.12s by %s: %s); "
				"taken over: %s",
				LOCK_REF, hex, u.who, u.why, why);
			return 0;
		}
		emit(fd,
		     JV_OBJECT(jv_string("result"), jv_string("unreadable"), jv_string("commit"),
			       jv_string(hex), jv_string("author"), jv_string(u.who),
			       jv_string("stamped"), jv_number((double)u.stamped),
			       jv_string("problem"), jv_string(u.why)));
		return 1;
	}
	if (hm_json_str(holder, "id") && strcmp(hm_json_str(holder, "id"), c->id) == 0) {
		jv_free(holder);
		return 0;
	}
	if (hm_lock_assess(holder, c->cfg, why, sizeof(why), NULL)) {
		hm_debug("taking over the stale remote lock %s: %s", hm_json_str(holder, "id"),
			 why);
		jv_free(holder);
		return 0;
	}
	emit(fd, JV_OBJECT(jv_string("result"), jv_string("held"), jv_string("holder"), holder));
	return 1;
}

/* Take flock on the remote repository's guard file. */
static int
remote_guard(git_repository *r)
{
	char *path = hm_path_join(git_repository_path(r), "heimdal-lock.guard");
	/* Writable by its owner only (0644 under the umask), never a link followed. */
	int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);

	free(path);
	if (fd < 0)
		return -1;
	while (flock(fd, LOCK_EX) < 0)
		if (errno != EINTR) {
			close(fd);
			return -1;
		}
	return fd;
}

/*
 * A remote that is a directory, opened with its guard file locked (the
 * compare-and-swap there): *r and *g for the caller to free and close, *have
 * whether the lock ref is there and *cur its commit.  0, or a child's
 * failure (child_fail).
 */
static int
open_guarded(const struct ctx *c, git_repository **r, int *g, git_oid *cur, int *have)
{
	if (git_repository_open(r, c->dir) < 0)
		return child_git_fail(c->dir);
	if ((*g = remote_guard(*r)) < 0) {
		git_repository_free(*r);
		return child_fail("cannot lock the remote repository's guard file");
	}
	*have = git_reference_name_to_id(cur, *r, LOCK_REF) == 0;
	return 0;
}

/* Check-and-set directly in a remote that is a directory, under its guard. */
static int
cas_local_child(void *arg, int fd)
{
	struct ctx *c = arg;
	git_repository *r = NULL;
	git_reference *ref = NULL;
	git_oid cur, oid;
	sigset_t held;
	int g, err, have;

	if ((err = open_guarded(c, &r, &g, &cur, &have)) != 0)
		return err;
	if (have && holder_blocks(c, r, &cur, fd)) {
		close(g);
		git_repository_free(r);
		return 0;
	}
	err = make_commit(r, c->json, c->id, &oid);
	/* From here to the answer, no signal: a ref set is always reported. */
	hm_sigchain_hold(&held);
	if (!err)
		err = git_reference_create(&ref, r, LOCK_REF, &oid, 1, "heimdal: lock");
	git_reference_free(ref);
	close(g);
	git_repository_free(r);
	if (err)
		return child_git_fail(LOCK_REF);
	emit_acquired(fd, &oid);
	return 0;
}

struct push_status {
	int rejected;
	int attempt;
};

static int
on_update(const char *refname, const char *status, void *data)
{
	struct push_status *ps = data;

	(void)refname;
	if (status)
		ps->rejected = 1;
	return 0;
}

/* Connect to push and read the remote's current lock ref into *cur. */
static int
connect_push(struct ctx *c, git_remote **remote, git_remote_callbacks *cb, git_oid *cur, int *have)
{
	const git_remote_head **heads;
	size_t n;

	*have = 0;
	if (git_remote_create_anonymous(remote, c->repo, c->url) < 0 ||
	    git_remote_connect(*remote, GIT_DIRECTION_PUSH, cb, NULL, NULL) < 0)
		return -1;
	hm_git_tcp_nodelay();
	if (git_remote_ls(&heads, &n, *remote) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (strcmp(heads[i]->name, LOCK_REF) == 0) {
			git_oid_cpy(cur, &heads[i]->oid);
			*have = 1;
		}
	return 0;
}

static int
push(git_remote *remote, const char *spec, git_remote_callbacks *cb, struct push_status *ps)
{
	git_push_options opts = GIT_PUSH_OPTIONS_INIT;
	char *specs[] = { (char *)spec };
	git_strarray refspecs = { specs, 1 };
	int err;

	opts.callbacks = *cb;
	opts.callbacks.push_update_reference = on_update;
	opts.callbacks.payload = ps;
	ps->rejected = 0;
	err = git_remote_upload(remote, &refspecs, &opts);
	if (err == GIT_ENONFASTFORWARD) {
		ps->rejected = 1;
		err = 0;
	}
	return err;
}

/* The remote's lock ref, fetched afresh into FETCHED_REF (to read its record).  0 or -1. */
static int
fetch_lock_ref(struct ctx *c, const git_fetch_options *fo)
{
	char *fspec[] = { "+" LOCK_REF ":" FETCHED_REF };
	git_strarray fspecs = { fspec, 1 };
	git_reference *ref = NULL;
	git_remote *remote = NULL;
	sigset_t held;
	int err;

	/* No signal halfway: libgit2 leaves the lock files of a killed fetch. */
	hm_sigchain_hold(&held);
	if (git_reference_lookup(&ref, c->repo, FETCHED_REF) == 0)
		git_reference_delete(ref);
	git_reference_free(ref);
	err = git_remote_create_anonymous(&remote, c->repo, c->url) < 0 ||
			      git_remote_fetch(remote, &fspecs, fo, NULL) < 0
		      ? -1
		      : 0;
	git_remote_free(remote);
	hm_sigchain_release(&held);
	return err;
}

/*
 * Compare-and-swap over a smart transport: on one push connection, read the
 * ref's advertised value, judge the holder's record it points to (fetched
 * first when it is not here yet), and push with that value as the old one.
 */
static int
cas_net_child(void *arg, int fd)
{
	struct ctx *c = arg;
	char tmpref[64], spec[128];
	struct push_status ps = { 0, 0 };
	sigset_t held;
	int fetch = 0;

	snprintf(tmpref, sizeof(tmpref), "refs/heimdal/push-%ld", (long)getpid());
	for (int round = 0; round < ROUNDS; round++) {
		git_remote_callbacks cb = GIT_REMOTE_CALLBACKS_INIT;
		git_fetch_options fo = GIT_FETCH_OPTIONS_INIT;
		git_remote *remote = NULL;
		git_reference *ref = NULL;
		git_oid fetched, cur, oid;
		int have_fetched, have, err;

		cb.credentials = hm_git_credentials;
		cb.payload = &ps.attempt;
		fo.callbacks = cb;
		fo.update_fetchhead = 0;
		/*
		 * The push connection first: when nobody holds the lock (the
		 * common case) its advertisement is all there is to know, and
		 * the push follows on it.  A holder's record is fetched only
		 * when there is one to judge.
		 */
		if (fetch && fetch_lock_ref(c, &fo) < 0)
			return net_fail(c);
		have_fetched = git_reference_name_to_id(&fetched, c->repo, FETCHED_REF) == 0;
		if (connect_push(c, &remote, &cb, &cur, &have) < 0) {
			git_remote_free(remote);
			return net_fail(c);
		}
		if (have && (!have_fetched || !git_oid_equal(&cur, &fetched))) {
			git_remote_free(remote); /* held, or moved since the fetch: look (again) */
			fetch = 1;
			continue;
		}
		if (have && holder_blocks(c, c->repo, &cur, fd)) {
			git_remote_free(remote);
			return 0;
		}
		err = make_commit(c->repo, c->json, c->id, &oid);
		if (!err)
			err = git_reference_create(&ref, c->repo, tmpref, &oid, 1, NULL);
		git_reference_free(ref);
		ref = NULL;
		if (err) {
			git_remote_free(remote);
			return child_git_fail(c->repo_path);
		}
		/* Over a present ref, force (the holder is stale; a new root commit is
		 * never a fast-forward): the advertised old value still guards it. */
		snprintf(spec, sizeof(spec), "%s%s:%s", have ? "+" : "", tmpref, LOCK_REF);
		/* From the push to the answer, no signal: a ref taken is always
		 * reported.  A rejected push took nothing: let them in again. */
		hm_sigchain_hold(&held);
		err = push(remote, spec, &cb, &ps);
		git_remote_free(remote);
		if (git_reference_lookup(&ref, c->repo, tmpref) == 0)
			git_reference_delete(ref);
		git_reference_free(ref);
		if (err < 0)
			return net_fail(c);
		if (!ps.rejected) {
			emit_acquired(fd, &oid);
			return 0;
		}
		hm_sigchain_release(&held);
		hm_debug("another machine took %s first: looking again", LOCK_REF);
	}
	return child_fail("refs/heimdal/lock kept changing; giving up");
}

/* The lock record the remote is asked to hold: the local one, compact. */
static char *
record_json(jv record)
{
	char *s = hm_json_dump(jv_object_delete(jv_copy(record), jv_string("remote")),
			       HM_JSON_PRETTY, NULL);

	return s;
}

/* The conflicts (list consumed) that refuse the lock, on stderr. */
static void
print_conflicts(jv list)
{
	hm_conflicts_print(stderr, "Error: State conflicts detected", list);
	fprintf(stderr,
		"\nThe lock was released; nothing was changed.  Run 'heimdal sync' to merge the\n"
		"states, then repeat the command (or settle them by hand first:\n"
		"  heimdal state resolve --merge   (or --use-local, --use-remote, --manual))\n");
	fflush(stderr);
	jv_free(list);
}

/*
 * Only conflicts that another write would make worse refuse the lock: a
 * divergence (one more serial on each side), a foreign lineage, a state from a
 * newer heimdal.  Profile and path differences are per machine (a merge keeps
 * them local) and file drift is settled by apply or commit, so those pass.
 */
static int
blocking(const char *type)
{
	return type && (!strcmp(type, "serial_divergence") || !strcmp(type, "lineage_mismatch") ||
			!strcmp(type, "version_mismatch"));
}

/* The remote's state at rev (and its name), or jv_null() when it has none. */
static jv
state_at(struct ctx *c, const char *rev)
{
	char *buf = NULL;
	size_t len;
	jv s;

	if (hm_git_read_file(c->repo, rev, HM_REPO_STATE, &buf, &len) != 0)
		return jv_null();
	s = hm_json_parse(rev, buf, len);
	free(buf);
	if (!jv_is_valid(s)) {
		hm_debug("%s:%s is not valid JSON: not compared", rev, HM_REPO_STATE);
		jv_free(s);
		return jv_null();
	}
	return s;
}

/*
 * The conflicts a write would make worse, between local (borrowed) and the
 * state of the upstream branch just fetched: a new array, empty when there is
 * nothing to compare.  -1 (invalid) when the remote's state is not a state.
 */
static jv
blocking_conflicts(struct ctx *c, jv local, const char *local_src)
{
	char *upstream = hm_git_upstream(c->repo), base[41], src[600], bsrc[80];
	struct hm_lineage_cmp cmp;
	struct hm_pair p;
	jv list, keep = jv_array();

	if (!upstream) {
		hm_debug("%s: no upstream branch: conflict check skipped", c->repo_path);
		return keep;
	}
	p.remote = state_at(c, upstream);
	p.base = jv_null();
	if (jv_get_kind(p.remote) == JV_KIND_NULL) {
		hm_debug("%s has no %s: conflict check skipped", upstream, HM_REPO_STATE);
		free(upstream);
		return keep;
	}
	if (hm_git_merge_base(c->repo, "HEAD", upstream, base) == 0)
		p.base = state_at(c, base);
	snprintf(src, sizeof(src), "%s:%s", upstream, HM_REPO_STATE);
	snprintf(bsrc, sizeof(bsrc), "%.12s:%s", base, HM_REPO_STATE);
	free(upstream);
	p.local = jv_copy(local);
	if (hm_pair_check(&p, local_src, src, bsrc) < 0) {
		hm_pair_free(&p);
		jv_free(keep);
		return jv_invalid();
	}
	hm_lineage_compare(p.local, p.remote, p.base, &cmp);
	list = hm_conflicts_detect(&p, &cmp, HM_CONFLICTS_NO_DRIFT);
	hm_pair_free(&p);
	jv_array_foreach(list, i, e)
	{
		if (blocking(hm_json_str(e, "type")))
			keep = jv_array_append(keep, e);
		else
			jv_free(e);
	}
	jv_free(list);
	return keep;
}

/*
 * Compare the local state (borrowed; V2) with the remote's.  Returns 0 (no
 * conflicts that refuse the lock, or nothing to compare), HM_LOCK_REMOTE_CONFLICTS
 * (listed on stderr), -1 (the remote's state is invalid: printed, code set).
 */
static int
check_conflicts(struct ctx *c, jv local, const char *local_src)
{
	jv list;

	if (hm_json_int(local, "version", 0) != 2) {
		hm_debug("the local state is not V2: conflict check skipped");
		return 0;
	}
	list = blocking_conflicts(c, local, local_src);
	if (!jv_is_valid(list))
		return -1;
	if (jv_array_length(jv_copy(list)) == 0) {
		jv_free(list);
		return 0;
	}
	print_conflicts(list);
	return HM_LOCK_REMOTE_CONFLICTS;
}

void
hm_rlock_print_held(FILE *f, jv holder, const struct hm_lock_config *cfg)
{
	char u[512], ago[64];
	long long age;

	if (!hm_json_str(holder, "problem")) {
		hm_lock_print_held(f, holder);
		return;
	}
	age = (long long)hm_time_now() - hm_json_int(holder, "stamped", 0);
	hm_term_escape(hm_json_str(holder, "url"), 0, u, sizeof(u));
	if (age < 0)
		snprintf(ago, sizeof(ago), "stamped %lld seconds ahead of this clock", -age);
	else
		hm_time_ago(age, ago, sizeof(ago));
	/* author and problem were escaped by the child */
	fprintf(f,
		"Error: State is currently locked\n"
		"\n"
		"%s on %s holds an unreadable lock record:\n"
		"  commit %.12s by %s, %s\n"
		"  %s\n"
		"\n"
		"It counts as held until it is older than the timeout (%ld seconds).  If no\n"
		"heimdal operation holds it, remove it: git push origin :%s\n",
		LOCK_REF, u, hm_json_str(holder, "commit"), hm_json_str(holder, "author"), ago,
		hm_json_str(holder, "problem"), cfg->timeout, LOCK_REF);
	fflush(f);
}

/* The objects arrived through another process: let this one see them. */
static void
odb_refresh(git_repository *repo)
{
	git_odb *odb = NULL;

	if (git_repository_odb(&odb, repo) == 0) {
		git_odb_refresh(odb);
		git_odb_free(odb);
	}
}

/*
 * Run the worker for c's remote (local: a remote that is a directory, net: a
 * smart transport) and read its answer, an object with a "result".  Invalid
 * when the remote could not be asked (*r: hm_git_deadline's status, reason
 * set) or gave no answer (*r 0).
 */
static jv
ask(struct ctx *c, int (*local)(void *, int), int (*net)(void *, int), int *r, char *reason,
    size_t reason_len)
{
	char *text = NULL;
	jv res;

	*r = hm_git_deadline(c->dir ? local : net, c, c->cfg->remote_timeout, &text, NULL, reason,
			     reason_len);
	if (*r != 0) {
		free(text);
		return jv_invalid();
	}
	res = hm_json_parse("remote lock", text ? text : "", text ? strlen(text) : 0);
	free(text);
	if (!hm_json_str(res, "result")) {
		jv_free(res);
		return jv_invalid();
	}
	return res;
}

/* A worker that did not answer: the lock stays local. */
static int
gave_up(int r, const char *reason, volatile sig_atomic_t *stopped)
{
	/* A signal stopped it: nothing to say, the caller passes the signal on. */
	if (r == HM_GIT_UNREACHABLE && !(stopped && *stopped))
		warn_unreachable(reason);
	return HM_LOCK_REMOTE_LOCAL;
}

/* The worker's answer, when the compare-and-swap ran: HM_LOCK_REMOTE_* and *holder. */
static int
acquire_answer(struct ctx *c, jv *record, jv res, jv *holder)
{
	const char *result = hm_json_str(res, "result");

	if (result && strcmp(result, "unreadable") == 0) {
		*holder = jv_object_set(res, jv_string("url"), jv_string(c->url));
		return HM_LOCK_REMOTE_HELD;
	}
	if (result && strcmp(result, "held") == 0) {
		*holder = jv_object_get(res, jv_string("holder"));
		return HM_LOCK_REMOTE_HELD;
	}
	if (!hm_json_str(res, "commit")) {
		jv_free(res);
		unreachable("the remote lock could not be taken");
		return HM_LOCK_REMOTE_LOCAL;
	}
	*record = jv_object_set(*record, jv_string("remote"),
				JV_OBJECT(jv_string("repository"), jv_string(c->repo_path),
					  jv_string("url"), jv_string(c->url), jv_string("ref"),
					  jv_string(LOCK_REF), jv_string("commit"),
					  jv_object_get(res, jv_string("commit"))));
	hm_debug("took %s on %s", LOCK_REF, c->url);
	return HM_LOCK_REMOTE_TAKEN;
}

int
hm_rlock_acquire(const char *repository, jv *record, jv local, const char *local_src,
		 const struct hm_lock_config *cfg, jv *holder, volatile sig_atomic_t *stopped)
{
	struct ctx c = { .cfg = cfg };
	char reason[512];
	int r;
	jv res;

	*holder = jv_null();
	if (ctx_open(&c, repository) < 0) {
		ctx_free(&c);
		return HM_LOCK_REMOTE_LOCAL;
	}
	/*
	 * The fetch is for the conflict check only; an operation that skips the
	 * check must not move the remote-tracking branch either (push --force
	 * leases on the value last fetched by the user).
	 */
	if (jv_get_kind(local) != JV_KIND_NULL) {
		r = hm_git_deadline(fetch_child, &c, cfg->remote_timeout, NULL, NULL, reason,
				    sizeof(reason));
		if (r != 0) {
			r = gave_up(r, reason, stopped);
			goto out;
		}
		odb_refresh(c.repo);
		if ((r = check_conflicts(&c, local, local_src ? local_src : "the local state")) !=
		    0)
			goto out;
	}
	if (stopped && *stopped) { /* nothing taken yet: the caller passes it on */
		r = HM_LOCK_REMOTE_LOCAL;
		goto out;
	}
	c.json = record_json(*record);
	c.id = hm_json_str(*record, "id");
	/*
	 * A signal meanwhile stops the worker: before its push it dies of it,
	 * from its push on it finishes (cas_*_child).  A ref taken is always
	 * reported, so the caller records it and can give it back.
	 */
	res = ask(&c, cas_local_child, cas_net_child, &r, reason, sizeof(reason));
	r = r == 0 ? acquire_answer(&c, record, res, holder) : gave_up(r, reason, stopped);
out:
	ctx_free(&c);
	return r;
}

/* The ref holds another commit than ours: who holds it, when that can be read. */
static void
emit_other(int fd, git_repository *repo, const git_oid *cur)
{
	struct unreadable u;
	char hex[GIT_OID_HEXSZ + 1];
	jv holder = commit_record(repo, cur, &u);

	git_oid_tostr(hex, sizeof(hex), cur);
	emit(fd, JV_OBJECT(jv_string("result"), jv_string("held_by_other"), jv_string("commit"),
			   jv_string(hex), jv_string("holder"),
			   jv_is_valid(holder) ? holder : (jv_free(holder), jv_null())));
}

/*
 * In a remote that is a directory, under its guard: remove refs/heimdal/lock
 * when judge says so (1; otherwise judge has answered on fd), then answer
 * with removed(fd); absent is the answer when there is no ref.
 */
static int
remove_guarded(struct ctx *c, int fd, const char *absent,
	       int (*judge)(struct ctx *, git_repository *, const git_oid *, int),
	       void (*removed)(int))
{
	git_repository *r = NULL;
	git_oid cur;
	int g, err, have;

	if ((err = open_guarded(c, &r, &g, &cur, &have)) != 0)
		return err;
	if (!have) {
		emit(fd, JV_OBJECT(jv_string("result"), jv_string(absent)));
	} else if (judge(c, r, &cur, fd)) {
		err = git_reference_remove(r, LOCK_REF);
		if (!err)
			removed(fd);
	}
	close(g);
	git_repository_free(r);
	return err ? child_git_fail(LOCK_REF) : 0;
}

/* 1 when the ref holds our commit; otherwise who holds it is answered. */
static int
ours(struct ctx *c, git_repository *repo, const git_oid *cur, int fd)
{
	if (git_oid_equal(cur, &c->commit))
		return 1;
	emit_other(fd, repo, cur);
	return 0;
}

static void
emit_released(int fd)
{
	emit(fd, JV_OBJECT(jv_string("result"), jv_string("released")));
}

static int
release_local_child(void *arg, int fd)
{
	return remove_guarded(arg, fd, "not_held", ours, emit_released);
}

static int
release_net_child(void *arg, int fd)
{
	struct ctx *c = arg;
	git_remote_callbacks cb = GIT_REMOTE_CALLBACKS_INIT;
	struct push_status ps = { 0, 0 };
	git_remote *remote = NULL;
	git_oid cur;
	int have, err;

	cb.credentials = hm_git_credentials;
	cb.payload = &ps.attempt;
	if (connect_push(c, &remote, &cb, &cur, &have) < 0) {
		git_remote_free(remote);
		return net_fail(c);
	}
	/* Delete only our own commit: the delete carries the advertised value. */
	if (!have) {
		git_remote_free(remote);
		emit(fd, JV_OBJECT(jv_string("result"), jv_string("not_held")));
		return 0;
	}
	if (!git_oid_equal(&cur, &c->commit)) {
		git_remote_free(remote);
		emit_other(fd, c->repo, &cur);
		return 0;
	}
	err = push(remote, ":" LOCK_REF, &cb, &ps);
	git_remote_free(remote);
	if (err < 0)
		return net_fail(c);
	if (ps.rejected)
		return child_fail("the remote refused to delete refs/heimdal/lock");
	emit(fd, JV_OBJECT(jv_string("result"), jv_string("released")));
	return 0;
}

/*
 * Release: *out gets {"released", "result", ...}; returns the exit status
 * (0 released, 1 not held, 4 held by another lock), or -1 (message printed,
 * code set) when the remote could not be asked.
 */
int
hm_rlock_release(jv remote, const struct hm_lock_config *cfg, jv *out)
{
	struct ctx c = { .cfg = cfg };
	const char *repo = hm_json_str(remote, "repository"),
		   *commit = hm_json_str(remote, "commit");
	char reason[512];
	const char *result;
	int r;
	jv res;

	*out = jv_invalid();
	hm_git_init();
	if (!repo || !commit || strlen(commit) != GIT_OID_HEXSZ ||
	    strspn(commit, "0123456789abcdef") != GIT_OID_HEXSZ ||
	    git_oid_fromstr(&c.commit, commit) < 0) {
		hm_error("%s", !repo ? ".repository: expected the repository path"
				     : ".commit: expected a commit id (40 hex digits)");
		return hm_fail(HM_EXIT_USAGE);
	}
	if (ctx_open(&c, repo) < 0) {
		ctx_free(&c);
		hm_error("%s: cannot release %s: no repository with a remote 'origin' there", repo,
			 LOCK_REF);
		return hm_fail(HM_EXIT_ENV);
	}
	res = ask(&c, release_local_child, release_net_child, &r, reason, sizeof(reason));
	ctx_free(&c);
	if (r != 0) {
		hm_warn("could not release %s on the remote: %s (it goes stale after %ld seconds)",
			LOCK_REF, r == HM_GIT_UNREACHABLE ? reason : "error", cfg->timeout);
		return hm_fail(HM_EXIT_ENV);
	}
	if (!jv_is_valid(res)) {
		hm_error("%s: no answer from the release", LOCK_REF);
		return hm_fail(HM_EXIT_ENV);
	}
	result = hm_json_str(res, "result");
	r = !strcmp(result, "released") ? 0 : !strcmp(result, "not_held") ? 1 : HM_EXIT_LOCKED;
	*out = jv_object_set(jv_object_delete(jv_copy(res), jv_string("result")),
			     jv_string("released"), jv_bool(r == 0));
	*out = jv_object_set(*out, jv_string("result"), jv_string(result));
	jv_free(res);
	return r;
}

static jv recovered_holder;

static void
emit_recovered(int fd)
{
	emit(fd, JV_OBJECT(jv_string("result"), jv_string("recovered"), jv_string("holder"),
			   recovered_holder));
	recovered_holder = jv_null();
}

/*
 * 1 when the lock in commit oid is this host's and its holder is verifiably
 * dead (recovered_holder set); 0 otherwise, the answer written to fd.
 */
static int
dead_here(struct ctx *c, git_repository *repo, const git_oid *oid, int fd)
{
	struct unreadable u;
	jv rec = commit_record(repo, oid, &u), m;
	char why[256];
	int alive = -1, stale = 0, mine;

	if (!jv_is_valid(rec)) {
		jv_free(rec);
		emit(fd, JV_OBJECT(jv_string("result"), jv_string("kept"), jv_string("holder"),
				   jv_null()));
		return 0;
	}
	m = jv_object_get(jv_copy(rec), jv_string("machine"));
	mine = hm_lock_same_host(m);
	jv_free(m);
	if (mine)
		stale = hm_lock_assess(rec, c->cfg, why, sizeof(why), &alive);
	if (!mine || !stale || alive != 0) {
		emit(fd,
		     JV_OBJECT(jv_string("result"), jv_string("kept"), jv_string("holder"), rec));
		return 0;
	}
	hm_debug("%s holds lock %s of this machine: %s", LOCK_REF, hm_json_str(rec, "id"), why);
	recovered_holder = rec;
	return 1;
}

/* Remove refs/heimdal/lock when it is this host's and its holder is dead; under the guard. */
static int
recover_local_child(void *arg, int fd)
{
	return remove_guarded(arg, fd, "free", dead_here, emit_recovered);
}

/* The same over a smart transport: the delete carries the value it judged. */
static int
recover_net_child(void *arg, int fd)
{
	struct ctx *c = arg;
	struct push_status ps = { 0, 0 };

	for (int round = 0; round < ROUNDS; round++) {
		git_remote_callbacks cb = GIT_REMOTE_CALLBACKS_INIT;
		git_fetch_options fo = GIT_FETCH_OPTIONS_INIT;
		git_remote *remote = NULL;
		git_oid fetched, cur;
		int have, err;

		cb.credentials = hm_git_credentials;
		cb.payload = &ps.attempt;
		fo.callbacks = cb;
		fo.update_fetchhead = 0;
		if (connect_push(c, &remote, &cb, &cur, &have) < 0) {
			git_remote_free(remote);
			return net_fail(c);
		}
		if (!have) {
			git_remote_free(remote);
			emit(fd, JV_OBJECT(jv_string("result"), jv_string("free")));
			return 0;
		}
		if (git_reference_name_to_id(&fetched, c->repo, FETCHED_REF) < 0 ||
		    !git_oid_equal(&cur, &fetched)) {
			git_remote_free(remote);
			if (fetch_lock_ref(c, &fo) < 0)
				return net_fail(c);
			continue;
		}
		if (!dead_here(c, c->repo, &cur, fd)) {
			git_remote_free(remote);
			return 0;
		}
		err = push(remote, ":" LOCK_REF, &cb, &ps);
		git_remote_free(remote);
		if (err < 0)
			return net_fail(c);
		if (!ps.rejected) {
			emit_recovered(fd);
			return 0;
		}
	}
	return child_fail("refs/heimdal/lock kept changing; giving up");
}

int
hm_rlock_recover(const char *repository, const struct hm_lock_config *cfg, jv *out)
{
	struct ctx c = { .cfg = cfg };
	char reason[512];
	const char *result;
	jv res;
	int r;

	*out = jv_invalid();
	if (ctx_open(&c, repository) < 0) {
		ctx_free(&c);
		*out = JV_OBJECT(jv_string("recovered"), jv_false(), jv_string("holder"),
				 jv_null());
		return 0;
	}
	res = ask(&c, recover_local_child, recover_net_child, &r, reason, sizeof(reason));
	if (!jv_is_valid(res)) {
		if (r != 0)
			hm_warn("%s: %s was not checked: %s", c.url, LOCK_REF,
				r == HM_GIT_UNREACHABLE ? reason : "error");
		else
			hm_error("%s: no answer from the check", LOCK_REF);
		ctx_free(&c);
		return hm_fail(HM_EXIT_ENV);
	}
	result = hm_json_str(res, "result");
	if (!strcmp(result, "recovered")) {
		jv h = jv_object_get(jv_copy(res), jv_string("holder")),
		   m = jv_object_get(jv_copy(h), jv_string("machine"));
		char u[512];

		hm_term_escape(c.url, 0, u, sizeof(u));
		hm_warn("removed %s from %s: lock %s of this machine, whose process %lld died "
			"while holding it",
			LOCK_REF, u, hm_json_str(h, "id"), hm_json_int(m, "pid", 0));
		jv_free(m);
		jv_free(h);
	}
	{
		jv h = jv_object_get(jv_copy(res), jv_string("holder"));

		if (!jv_is_valid(h)) {
			jv_free(h);
			h = jv_null();
		}
		*out = JV_OBJECT(jv_string("recovered"), jv_bool(!strcmp(result, "recovered")),
				 jv_string("holder"), h);
	}
	jv_free(res);
	ctx_free(&c);
	return 0;
}
