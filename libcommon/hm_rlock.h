/*
 * hm_rlock.h - the remote half of the hybrid lock: refs/heimdal/lock on the
 * origin of a dotfiles repository, taken by compare-and-swap.
 *
 * Used in process by the porcelain (which loads libgit2 anyway) and by
 * heimdal-rlock, the tool heimdal-lock runs so that a local lock never loads
 * libgit2.  Everything is named by the caller: the repository, the record to
 * publish, the local state to compare with the remote's.  Nothing here reads
 * $HEIMDAL_HOME's state.
 *
 * A record published must be valid (hm_lock_record_check): one bad record
 * would lock every machine out, or be skipped by all.  A ref whose commit
 * holds no readable record is reported as such and judged by its commit time
 * alone (hm_lock_assess_time), never taken for an unreachable remote.  An
 * unreachable remote is no error: the specification's warning goes to stderr
 * and the lock stays local.
 */
#ifndef HM_LOCK_REMOTE_H
#define HM_LOCK_REMOTE_H

#include "hm_config.h"
#include "hm_lock.h"

#include <jv.h>
#include <signal.h>
#include <stdio.h>

/*
 * Take refs/heimdal/lock on repository's origin for *record (valid, borrowed
 * and updated: its "remote" is set to {"repository", "url", "ref", "commit"}
 * when taken).  With local a state (borrowed), origin is fetched first and
 * local compared with the state of the upstream branch (the merge base's as
 * the base): a divergence, another lineage or a newer version refuse the
 * lock (HM_LOCK_REMOTE_CONFLICTS); with local jv_null(), nothing is fetched or
 * compared (an operation whose job is to settle conflicts).  On HM_LOCK_REMOTE_HELD
 * *holder is the holder's record, or for an unreadable one {"url", "commit",
 * "author", "stamped", "problem"} (hm_rlock_print_held prints either).
 * Returns HM_LOCK_REMOTE_*, or -1 (the remote's state is invalid; printed, code
 * set).
 *
 * The caller keeps a handler on the signal chain that notes a signal in
 * *stopped (may be NULL) without ending the process: a signal stops the
 * worker before its push, and from its push on lets it finish, so a ref taken
 * is always returned, for the caller to record (and give back) before it
 * passes the signal on.
 */
int hm_rlock_acquire(const char *repository, jv *record, jv local, const char *local_src,
		     const struct hm_lock_config *cfg, jv *holder, volatile sig_atomic_t *stopped);

/* The "State is currently locked" block for an HM_LOCK_REMOTE_HELD holder (borrowed). */
void hm_rlock_print_held(FILE *f, jv holder, const struct hm_lock_config *cfg);

/*
 * Give back the ref a record's "remote" object (borrowed) names, only when it
 * still holds that commit.  *out gets {"released": bool, "result":
 * "released"|"not_held"|"held_by_other", ...}.  Returns 0 released, 1 not
 * held, HM_EXIT_LOCKED held by another lock, or -1 (the remote could not be
 * asked, or remote is not a "remote" object: printed, code set).
 */
int hm_rlock_release(jv remote, const struct hm_lock_config *cfg, jv *out);

/*
 * Remove the ref of repository's origin when it holds a lock of this host
 * whose holder is verifiably dead (it died between taking and giving it
 * back).  A live holder, another host's lock, no repository: left alone.
 * *out gets {"recovered": bool, "holder": record|null}.  0, or -1 (printed,
 * code set).
 */
int hm_rlock_recover(const char *repository, const struct hm_lock_config *cfg, jv *out);

#endif
