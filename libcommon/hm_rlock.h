/*
 * hm_rlock.h - the remote half of the hybrid lock: refs/heimdal/lock on the
 * dotfiles repository's "origin".
 *
 * The ref points at a root commit whose tree holds lock.json, the lock
 * record.  Taking it is a compare-and-swap:
 *
 *  - smart transports (git://, ssh, http): connect, read the ref's current
 *    value (git_remote_ls), judge it, then push on the same connection.  The
 *    server applies the update only if the ref still holds the advertised
 *    value, so of two machines racing exactly one wins.  A stale holder is
 *    taken over with a forced push that still carries the old value (a
 *    lease): two machines cannot both take it over.
 *  - a remote that is a local path or file:// URL: libgit2's local transport
 *    does not compare-and-swap, so the check-and-set is done directly in
 *    that repository under flock(2) on its "heimdal-lock.guard" file.
 *
 * Every network step runs in a child bounded by the configured
 * remote_timeout (hm_git_deadline).  An unreachable remote is not an error:
 * the specification's three-line warning is printed and the lock stays local.
 * Before taking the ref, the local state is compared with the remote's (the
 * state file on the upstream branch) through heimdal-conflicts when that tool
 * is installed; conflicts refuse the lock.
 */
#ifndef HM_RLOCK_H
#define HM_RLOCK_H

#include "hm_config.h"

#include <jv.h>

enum hm_rlock_result {
	HM_RLOCK_HELD = 1,      /* held by a live operation elsewhere; *holder set */
	HM_RLOCK_LOCAL = 2,     /* no repository or remote, or unreachable: local only */
	HM_RLOCK_CONFLICTS = 3, /* local and remote states conflict (listed on stderr) */
};

/*
 * Take the remote lock for *record (the local record, already written).
 * Returns 0 with "remote" set in *record, one of enum hm_rlock_result, or -1
 * after an error.  *holder (HM_RLOCK_HELD only) is the remote's record.
 */
int hm_rlock_acquire(jv *record, const struct hm_lock_config *cfg, jv *holder);

/*
 * Release the remote lock described by remote (borrowed: the record's
 * "remote" object), only if the ref still holds that commit.  Returns 0, or 1
 * when the remote could not be reached or no longer holds it (warning
 * printed).
 */
int hm_rlock_release(jv remote, const struct hm_lock_config *cfg);

/* Print the specification's "Cannot reach remote repository" warning. */
void hm_rlock_warn_unreachable(const char *reason);

#endif
