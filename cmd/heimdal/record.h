/*
 * record.h - this machine's deployment record (DESIGN, "Per-machine and
 * shared").
 *
 * For every path this machine deployed into $HOME or accepted from it, the
 * record keeps the exact content: the git blob id (the blob is kept in the
 * dotfiles repository's object database), its SHA-256 (what the state's
 * "checksums" shows) and its mode.  That content is the base of every
 * three-way decision apply, commit and sync make about the file.
 *
 * The record lives in $HEIMDAL_HOME/deployed.json, mode 0600, written
 * atomically:
 *
 *   {"version": 1, "commit": "<hex>"|null,
 *    "files": {".bashrc": {"blob": "<40 hex>", "sha256": "<64 hex>",
 *                          "mode": "100644"|"100755"}}}
 *
 * "commit" is the repository commit whose files were last deployed.  The
 * state's checksums and the record are written by the same locked command,
 * one after the other: an entry whose sha256 is not the state's checksum for
 * its path (a crash between the two writes, or a hand edit) is not trusted,
 * and the path falls back to the checksum alone (no three-way merge for it).
 *
 * The same facts are published in the repository for the other machines, in
 * .heimdal/machines/<machine-id>.json, written only by this machine (see
 * record_published).  They are data for people and fleet views; no machine
 * ever reads its own record from there.
 */
#ifndef HM_PORCELAIN_RECORD_H
#define HM_PORCELAIN_RECORD_H

#include <git2.h>
#include <jv.h>

/* The published file of this machine, relative to the work tree (new buffer). */
char *record_machine_path(void);

/*
 * The record, checked against state's checksums (borrowed): a new object
 * {"commit", "files"} where every checksum of the state has an entry ({"sha256"}
 * alone when the record has none to match it) and no entry lacks one.  A
 * missing deployed.json is an empty record; a broken one is reported and
 * exits 2.
 */
jv record_load(jv state);

/* Write record (consumed) to $HEIMDAL_HOME/deployed.json; exits on failure. */
void record_save(jv record);

/* {path: sha256} of record's files (record borrowed): the state's checksums. */
jv record_checksums(jv record);

/*
 * The entry for content buf[0..len) with mode (0644/0755), its blob written
 * to repo's object database when missing.  New object {"blob", "sha256",
 * "mode"}; exits on failure.
 */
jv record_entry(git_repository *repo, const char *buf, size_t len, unsigned mode);

/* The entry for a blob already kept, by its id (hex), SHA-256 and mode. */
jv record_entry_of(const char *blob, const char *sha256, unsigned mode);

/* The entry's blob content (entry borrowed): 0 and *buf (malloc'd), or -1 when unknown. */
int record_blob(git_repository *repo, jv entry, char **buf, size_t *len);

/*
 * This machine's published facts (state and record borrowed), the text of
 * record_machine_path(): machine, active_profile, dotfiles_path, last_apply,
 * last_sync, serial, commit and files.  malloc'd, *len set.
 */
char *record_published(jv state, jv record, size_t *len);

/*
 * record (consumed) with its commit moved to after, a commit this machine
 * just made on top of before with files it holds deployed, when the record
 * was up to date with before (its commit is before, or differs from it only
 * in .heimdal/).  Otherwise unchanged: what lies between is not deployed.
 */
jv record_follow(git_repository *repo, jv record, const char *before, const char *after);

#endif
