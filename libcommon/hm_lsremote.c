/*
 * hm_lsremote.c - a remote's refs, read on a connection made in a child
 * process bounded by a deadline (hm_lsremote.h).
 */
#include "hm_lsremote.h"
#include "hm_error.h"
#include "hm_file.h"
#include "hm_git.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct ls_args {
	git_repository *repo;
	const char *remote;
};

/* Everything goes to out_fd: "E<message>" for an error, else "<hex> <ref>" lines. */
static int
fail_with(int fd, const char *what, const char *msg)
{
	char buf[1024];
	int n = snprintf(buf, sizeof(buf), "E%s%s%s", what, *what ? ": " : "", msg);

	if (n < 0)
		return -1;
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	return hm_write_all(fd, buf, (size_t)n);
}

static int
ls_child(void *arg, int out_fd)
{
	struct ls_args *a = arg;
	git_remote_callbacks cb = GIT_REMOTE_CALLBACKS_INIT;
	struct hm_git_netdata d;
	git_remote *remote = NULL;
	const git_remote_head **heads;
	size_t n;
	int err, r = 0;

	if (git_remote_lookup(&remote, a->repo, a->remote) < 0)
		return fail_with(out_fd, "no such remote", a->remote);
	if (hm_git_url_missing_path(git_remote_url(remote))) {
		r = fail_with(out_fd, "", "no such repository: the path does not exist");
		git_remote_free(remote);
		return r;
	}
	hm_git_callbacks(&cb, &d, git_remote_url(remote));
	err = git_remote_connect(remote, GIT_DIRECTION_FETCH, &cb, NULL, NULL);
	if (err == 0)
		err = git_remote_ls(&heads, &n, remote);
	if (err < 0) {
		if (!d.rejected[0] && err != GIT_EAUTH && err != GIT_ECERTIFICATE &&
		    hm_git_is_unreachable(err))
			r = HM_GIT_UNREACHABLE;
		else
			r = fail_with(out_fd, "", d.rejected[0] ? d.rejected : hm_git_last_error());
		git_remote_free(remote);
		return r;
	}
	for (size_t i = 0; i < n && r == 0; i++) {
		char hex[GIT_OID_HEXSZ + 1], *line;

		git_oid_tostr(hex, sizeof(hex), &heads[i]->oid);
		line = hm_xasprintf("%s %s\n", hex, heads[i]->name);
		r = hm_write_all(out_fd, line, strlen(line));
		free(line);
	}
	git_remote_disconnect(remote);
	git_remote_free(remote);
	return r;
}

int
hm_lsremote_list(git_repository *repo, const char *remote_name, long timeout_s, jv *refs,
		 char *reason, size_t reason_len)
{
	struct ls_args a = { repo, remote_name };
	char *out = NULL, *line, *save = NULL;
	size_t len = 0;
	int r;

	*refs = jv_null();
	r = hm_git_deadline(ls_child, &a, timeout_s, &out, &len, reason, reason_len);
	if (r == HM_GIT_UNREACHABLE)
		return r;
	if (r < 0) {
		snprintf(reason, reason_len, "the remote could not be listed");
		return -1;
	}
	if (out[0] == 'E') {
		snprintf(reason, reason_len, "%s", out + 1);
		free(out);
		return -1;
	}
	*refs = jv_object();
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *sp = strchr(line, ' ');

		if (sp && sp - line == GIT_OID_HEXSZ) {
			*sp = '\0';
			*refs = jv_object_set(*refs, jv_string(sp + 1), jv_string(line));
		}
	}
	free(out);
	return 0;
}
