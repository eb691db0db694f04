/*
 * record.c - this machine's deployment record: what it deployed, with the
 * content, so that apply, commit and sync can decide three-way (record.h).
 */
#include "record.h"
#include "builtin.h"
#include "hm_error.h"
#include "hm_file.h"
#include "hm_git.h"
#include "hm_hash.h"
#include "hm_json.h"
#include "hm_machine.h"
#include "hm_state.h"

#include <stdlib.h>
#include <string.h>

#define RECORD_FILE "deployed.json"
#define RECORD_VERSION 1

char *
record_machine_path(void)
{
	return hm_xasprintf(".heimdal/machines/%s.json", hm_machine_id());
}

/* 1 when s is n lowercase hex digits. */
static int
is_hex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; s && s[i] && i <= n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s && i == n;
}

/* An entry of the file (borrowed) that can be trusted for sum, or invalid. */
static jv
entry_for(jv files, const char *key, const char *sum)
{
	jv e = jv_object_get(jv_copy(files), jv_string(key));
	const char *blob = jv_get_kind(e) == JV_KIND_OBJECT ? hm_json_str(e, "blob") : NULL;
	const char *esum = blob ? hm_json_str(e, "sha256") : NULL;
	const char *mode = blob ? hm_json_str(e, "mode") : NULL;

	jv out = jv_invalid();

	if (blob && esum && mode && is_hex(blob, 40) && strcmp(esum, sum) == 0 &&
	    (!strcmp(mode, "100644") || !strcmp(mode, "100755")))
		out = JV_OBJECT(jv_string("blob"), jv_string(blob), jv_string("sha256"),
				jv_string(sum), jv_string("mode"), jv_string(mode));
	jv_free(e);
	return out;
}

jv
record_load(jv state)
{
	char *path = hm_home_path(RECORD_FILE), *buf = NULL;
	jv doc = jv_object(), files, sums, out = jv_object();
	const char *commit;
	size_t len;

	if (hm_file_exists(path)) {
		if (hm_file_read(path, &buf, &len) < 0)
			exit(HM_EXIT_ENV);
		jv_free(doc);
		doc = hm_json_parse(path, buf, len);
		free(buf);
		if (!jv_is_valid(doc)) {
			jv msg = jv_invalid_get_msg(doc);

			hm_die(HM_EXIT_USAGE, "%s (move it away: the next apply records afresh)",
			       jv_string_value(msg));
		}
		if (jv_get_kind(doc) != JV_KIND_OBJECT ||
		    hm_json_int(doc, "version", 0) != RECORD_VERSION)
			hm_die(HM_EXIT_USAGE, "%s: not a deployment record of version %d", path,
			       RECORD_VERSION);
	}
	free(path);
	files = jv_object_get(jv_copy(doc), jv_string("files"));
	sums = jv_object_get(jv_copy(state), jv_string("checksums"));
	if (jv_get_kind(sums) == JV_KIND_OBJECT) {
		jv_object_foreach(sums, k, v)
		{
			jv e = jv_get_kind(files) == JV_KIND_OBJECT
				       ? entry_for(files, jv_string_value(k), jv_string_value(v))
				       : jv_invalid();

			if (!jv_is_valid(e)) {
				jv_free(e);
				e = JV_OBJECT(jv_string("sha256"), jv_copy(v));
			}
			out = jv_object_set(out, k, e);
			jv_free(v);
		}
	}
	commit = hm_json_str(doc, "commit");
	out = JV_OBJECT(jv_string("version"), jv_number(RECORD_VERSION), jv_string("commit"),
			commit && is_hex(commit, 40) ? jv_string(commit) : jv_null(),
			jv_string("files"), out);
	jv_free(sums);
	jv_free(files);
	jv_free(doc);
	return out;
}

void
record_save(jv record)
{
	char *path = hm_home_path(RECORD_FILE), *buf;
	size_t len;

	buf = hm_json_dump(record, HM_JSON_PRETTY, &len);
	if (hm_file_write_atomic(path, buf, len, 0600) < 0)
		exit(HM_EXIT_ENV);
	free(buf);
	free(path);
}

jv
record_checksums(jv record)
{
	jv files = jv_object_get(jv_copy(record), jv_string("files")), out = jv_object();

	jv_object_foreach(files, k, e)
	{
		out = jv_object_set(out, k, jv_object_get(e, jv_string("sha256")));
	}
	jv_free(files);
	return out;
}

jv
record_entry(git_repository *repo, const char *buf, size_t len, unsigned mode)
{
	char sum[HM_HASH_HEX_MAX], hex[41];
	git_oid id;
	git_odb *odb;

	if (hm_hash_buf(HM_HASH_SHA256, buf, len, sum) < 0)
		exit(HM_EXIT_ENV);
	if (git_repository_odb(&odb, repo) < 0 ||
	    git_odb_hash(&id, buf, len, GIT_OBJECT_BLOB) < 0 ||
	    (!git_odb_exists(odb, &id) && git_odb_write(&id, odb, buf, len, GIT_OBJECT_BLOB) < 0))
		hm_die(HM_EXIT_ENV, "%s: cannot keep a deployed file's content: %s",
		       git_repository_path(repo),
		       git_error_last() ? git_error_last()->message : "?");
	git_odb_free(odb);
	git_oid_tostr(hex, sizeof(hex), &id);
	return record_entry_of(hex, sum, mode);
}

jv
record_entry_of(const char *blob, const char *sha256, unsigned mode)
{
	return JV_OBJECT(jv_string("blob"), jv_string(blob), jv_string("sha256"), jv_string(sha256),
			 jv_string("mode"), jv_string(mode & 0111 ? "100755" : "100644"));
}

int
record_blob(git_repository *repo, jv entry, char **buf, size_t *len)
{
	const char *hex = hm_json_str(entry, "blob");
	git_oid id;
	git_blob *blob;

	if (!hex || git_oid_fromstr(&id, hex) < 0 || git_blob_lookup(&blob, repo, &id) < 0)
		return -1;
	*len = (size_t)git_blob_rawsize(blob);
	*buf = hm_xmalloc(*len + 1);
	memcpy(*buf, git_blob_rawcontent(blob), *len);
	(*buf)[*len] = '\0';
	git_blob_free(blob);
	return 0;
}

char *
record_published(jv state, jv record, size_t *len)
{
	static const char *const keys[] = { "machine",    "active_profile", "dotfiles_path",
					    "last_apply", "last_sync",      NULL };
	jv doc = jv_object();

	for (int i = 0; keys[i]; i++) {
		jv v = jv_object_get(jv_copy(state), jv_string(keys[i]));

		doc = jv_object_set(doc, jv_string(keys[i]), jv_is_valid(v) ? v : jv_null());
	}
	doc = jv_object_set(
		doc, jv_string("serial"),
		jv_getpath(jv_copy(state), JV_ARRAY(jv_string("lineage"), jv_string("serial"))));
	doc = jv_object_set(doc, jv_string("commit"),
			    jv_object_get(jv_copy(record), jv_string("commit")));
	doc = jv_object_set(doc, jv_string("files"),
			    jv_object_get(jv_copy(record), jv_string("files")));
	return hm_json_dump(doc, HM_JSON_PRETTY, len);
}

jv
record_follow(git_repository *repo, jv record, const char *before, const char *after)
{
	const char *was = hm_json_str(record, "commit");

	if (was && before && before[0] &&
	    (strcmp(was, before) == 0 ||
	     hm_git_changed_outside(repo, was, before, ".heimdal/") == 0))
		record = jv_object_set(record, jv_string("commit"), jv_string(after));
	return record;
}
