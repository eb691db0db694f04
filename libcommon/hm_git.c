#include "hm_git.h"
#include "hm_error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
shutdown_git(void)
{
	git_libgit2_shutdown();
}

void
hm_git_init(void)
{
	static int done;

	if (done)
		return;
	done = 1;
	git_libgit2_init();
	atexit(shutdown_git);
}

const char *
hm_git_last_error(void)
{
	const git_error *e = git_error_last();

	return e && e->message ? e->message : "unknown error";
}

git_repository *
hm_git_open(const char *path)
{
	git_repository *repo = NULL;

	hm_git_init();
	if (git_repository_open_ext(&repo, path, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0) {
		hm_error("%s: not a git repository: %s", path, hm_git_last_error());
		hm_fail(HM_EXIT_ENV);
		return NULL;
	}
	return repo;
}

int
hm_git_credentials(git_credential **out, const char *url, const char *username,
		   unsigned int allowed, void *payload)
{
	int *attempt = payload;
	const char *home = getenv("HOME");
	const char *user = username && *username ? username : getenv("USER");

	(void)url;
	if (!(allowed & GIT_CREDENTIAL_SSH_KEY) || !user)
		return GIT_PASSTHROUGH;
	/* libgit2 calls again after a rejected key: try each source once. */
	for (int n = attempt ? (*attempt)++ : 0; n < 3; n = attempt ? (*attempt)++ : 3) {
		char key[4096], pub[4200];

		if (n == 0) {
			if (getenv("SSH_AUTH_SOCK") &&
			    git_credential_ssh_key_from_agent(out, user) == 0)
				return 0;
			continue;
		}
		if (!home)
			break;
		snprintf(key, sizeof(key), "%s/.ssh/%s", home, n == 1 ? "id_ed25519" : "id_rsa");
		snprintf(pub, sizeof(pub), "%s.pub", key);
		if (access(key, R_OK) == 0 &&
		    git_credential_ssh_key_new(out, user, access(pub, R_OK) == 0 ? pub : NULL,
					       key, NULL) == 0)
			return 0;
	}
	return GIT_PASSTHROUGH;
}

/* Errors that mean "cannot reach the remote" rather than "the remote said no". */
static int
unreachable(int err)
{
	const git_error *e = git_error_last();

	if (err == GIT_EEOF)
		return 1;
	return e && (e->klass == GIT_ERROR_NET || e->klass == GIT_ERROR_SSH ||
		     e->klass == GIT_ERROR_OS || e->klass == GIT_ERROR_HTTP);
}

int
hm_git_fetch(git_repository *repo, const char *remote_name)
{
	git_fetch_options opts = GIT_FETCH_OPTIONS_INIT;
	git_remote *remote = NULL;
	int attempt = 0, err;

	if (git_remote_lookup(&remote, repo, remote_name) < 0) {
		hm_error("%s: no remote '%s': %s", git_repository_workdir(repo), remote_name,
			 hm_git_last_error());
		return hm_fail(HM_EXIT_ENV);
	}
	opts.callbacks.credentials = hm_git_credentials;
	opts.callbacks.payload = &attempt;
	err = git_remote_fetch(remote, NULL, &opts, NULL);
	git_remote_free(remote);
	if (err < 0) {
		if (unreachable(err))
			return HM_GIT_UNREACHABLE;
		hm_error("fetch from '%s' failed: %s", remote_name, hm_git_last_error());
		return hm_fail(HM_EXIT_ENV);
	}
	return 0;
}

int
hm_git_read_file(git_repository *repo, const char *rev, const char *path, char **buf,
		 size_t *len)
{
	git_object *obj = NULL;
	git_commit *commit = NULL;
	git_tree *tree = NULL;
	git_tree_entry *entry = NULL;
	git_blob *blob = NULL;
	int r = 1;

	if (git_revparse_single(&obj, repo, rev) < 0)
		goto out;
	if (git_object_peel((git_object **)&commit, obj, GIT_OBJECT_COMMIT) < 0 ||
	    git_commit_tree(&tree, commit) < 0) {
		r = hm_error("%s: %s", rev, hm_git_last_error());
		goto out;
	}
	if (git_tree_entry_bypath(&entry, tree, path) < 0)
		goto out;
	if (git_tree_entry_type(entry) != GIT_OBJECT_BLOB) {
		r = hm_error("%s:%s: not a file", rev, path);
		goto out;
	}
	if (git_blob_lookup(&blob, repo, git_tree_entry_id(entry)) < 0) {
		r = hm_error("%s:%s: %s", rev, path, hm_git_last_error());
		goto out;
	}
	*len = (size_t)git_blob_rawsize(blob);
	*buf = hm_xmalloc(*len + 1);
	memcpy(*buf, git_blob_rawcontent(blob), *len);
	(*buf)[*len] = '\0';
	r = 0;
out:
	git_blob_free(blob);
	git_tree_entry_free(entry);
	git_tree_free(tree);
	git_commit_free(commit);
	git_object_free(obj);
	return r < 0 ? hm_fail(HM_EXIT_ENV) : r;
}

static int
resolve(git_repository *repo, const char *rev, git_oid *oid)
{
	git_object *obj = NULL, *c = NULL;
	int r = -1;

	if (git_revparse_single(&obj, repo, rev) == 0 &&
	    git_object_peel(&c, obj, GIT_OBJECT_COMMIT) == 0) {
		git_oid_cpy(oid, git_object_id(c));
		r = 0;
	}
	git_object_free(c);
	git_object_free(obj);
	return r;
}

int
hm_git_merge_base(git_repository *repo, const char *a, const char *b, char out[41])
{
	git_oid oa, ob, base;
	int err;

	if (resolve(repo, a, &oa) < 0 || resolve(repo, b, &ob) < 0) {
		hm_error("cannot resolve '%s' or '%s': %s", a, b, hm_git_last_error());
		return hm_fail(HM_EXIT_ENV);
	}
	err = git_merge_base(&base, repo, &oa, &ob);
	if (err == GIT_ENOTFOUND)
		return 1;
	if (err < 0) {
		hm_error("merge base of '%s' and '%s': %s", a, b, hm_git_last_error());
		return hm_fail(HM_EXIT_ENV);
	}
	git_oid_tostr(out, 41, &base);
	return 0;
}

char *
hm_git_upstream(git_repository *repo)
{
	git_reference *head = NULL, *up = NULL;
	char *name = NULL;

	if (git_repository_head(&head, repo) == 0 && git_reference_is_branch(head) &&
	    git_branch_upstream(&up, head) == 0)
		name = hm_xstrdup(git_reference_name(up));
	git_reference_free(up);
	git_reference_free(head);
	return name;
}

int
hm_git_head(git_repository *repo, char out[41])
{
	git_oid oid;

	if (git_reference_name_to_id(&oid, repo, "HEAD") < 0)
		return -1;
	git_oid_tostr(out, 41, &oid);
	return 0;
}
