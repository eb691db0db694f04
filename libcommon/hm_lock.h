/*
 * hm_lock.h - the state lock: $HEIMDAL_HOME/state.lock, and (hybrid) the
 * remote's refs/heimdal/lock through the remote half the program supplies
 * (hm_lock_set_remote): the porcelain takes it in process (hm_rlock),
 * heimdal-lock through heimdal-rlock, so that a local lock never loads
 * libgit2.  Nothing here runs a program or reads the state: what the record
 * says of the state (its serial) comes with the request.
 *
 * The lock is a JSON record (the specification's lock file structure):
 *
 *   {"id": "lock-<uuid>", "lock_type": "local"|"hybrid", "operation": "apply",
 *    "machine": {"id", "hostname", "pid", "user", "pid_start", "boot_id"},
 *    "created_at": "2024-01-15T10:30:00Z", "expected_duration_seconds": 300,
 *    "reason": "...", "state_serial": 42|null, "remote": {...}|null}
 *
 * machine.pid is the holder: the process the lock lives for.  pid_start (the
 * holder's start time in clock ticks since boot, /proc/PID/stat) and boot_id
 * let a later reader tell a dead or reused pid from a live holder.  "remote"
 * is set once the hybrid lock holds the remote ref: {"repository", "url",
 * "ref", "commit"}.
 *
 * state.lock is read and written only while holding flock(2) on
 * $HEIMDAL_HOME/state.lock.guard, so check-and-set is atomic between
 * processes, and the kernel drops the guard when a process dies.
 *
 * Stale rules (hm_lock_assess): a holder on this machine is stale only when
 * verifiably dead (pid gone, pid reused, machine rebooted) and is never broken
 * into while alive, whatever its age; a holder on another machine is stale
 * when the record is older than max(timeout, expected duration), or older
 * than 24 hours (that machine has not been seen since).  detect_stale: false
 * turns all of this off.
 *
 * "This machine" is the same machine id *and* the same hostname: two hosts
 * sharing one $HEIMDAL_HOME (an NFS home) share the machine id, and a pid or
 * boot id of the other host says nothing here, so such a record is judged by
 * its age like any other machine's.  A record stamped more than
 * HM_LOCK_SKEW seconds ahead of this clock is suspect (the stamping machine's
 * clock is wrong): it is stale at once when it is ahead by more than the
 * limit, otherwise once the limit has passed after its stamp, so a wrong
 * clock can hold the lock for at most twice the limit.
 *
 * Functions that fail return -1 after printing their message, with
 * hm_last_code() set: HM_EXIT_LOCKED when held by another operation,
 * HM_EXIT_USAGE for an invalid lock_config.json or a corrupt state.lock,
 * HM_EXIT_FOUND when the hybrid lock found state conflicts, HM_EXIT_ENV for
 * I/O errors.
 */
#ifndef HM_LOCK_H
#define HM_LOCK_H

#include "hm_config.h"

#include <jv.h>
#include <signal.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>

/* The remote's lock: a root commit holding lock.json (hm_rlock). */
#define HM_LOCK_REMOTE_REF "refs/heimdal/lock"

struct hm_lock_request {
	const char *operation;  /* required: "apply", "migrate", ... */
	const char *reason;     /* NULL: "<operation> by heimdal" */
	long expected_duration; /* seconds; 0: the configured timeout */
	pid_t pid;              /* the holder recorded; 0: the calling process */
	int wait;               /* while held, retry as lock_config.json's "retry" says */
	int nested;             /* a lock held by an ancestor process is ours: proceed */
	int quiet_disabled;     /* do not print the "locking is disabled" warning */
	int local_first;        /* Hybrid: the local record only, the remote part
				   later by hm_lock_acquire_remote */
	long long serial;       /* the state's lineage serial, recorded; -1: none */
	/* Called (when set) as soon as the local record is written, before the
	 * remote part: a caller that must release on signals arms itself here. */
	void (*taken)(jv record, void *arg); /* record borrowed */
	void *arg;
};

/* What a remote half's take answers. */
enum hm_lock_remote_result {
	HM_LOCK_REMOTE_TAKEN = 0,     /* the ref holds the record now; its "remote" is set */
	HM_LOCK_REMOTE_HELD = 1,      /* held by a live operation elsewhere */
	HM_LOCK_REMOTE_LOCAL = 2,     /* no repository or origin, unreachable: local only */
	HM_LOCK_REMOTE_CONFLICTS = 3, /* the states conflict (listed on stderr) */
};

/*
 * The remote half of a Hybrid lock, as the program taking locks reaches it.
 * Without one (or before hm_lock_set_remote), a Hybrid lock is local only.
 *
 *  take       take the remote ref for *rec (its "remote" set when taken):
 *             HM_LOCK_REMOTE_*, or -1 (printed, code set).  On HELD,
 *             *held_msg (malloc'd) is what to print if the caller gives up.
 *             A signal meanwhile is noted in *stopped by hm_lock, which
 *             passes it on once what was taken is recorded.
 *  give       give back the ref a record's "remote" (borrowed) names;
 *             warnings only.
 *  recover    a hybrid holder of this host died: clear what it may have
 *             left on the remote (may be NULL).
 *  interrupt  called from the signal handler while take runs (may be NULL):
 *             async-signal-safe only, e.g. kill(2) a child.
 */
struct hm_lock_remote {
	int (*take)(jv *rec, char **held_msg, volatile sig_atomic_t *stopped, void *arg);
	void (*give)(jv remote, void *arg);
	void (*recover)(void *arg);
	void (*interrupt)(int sig, void *arg);
	void *arg;
};

/* Use r (kept, not copied) for every remote half from now on; NULL: none. */
void hm_lock_set_remote(const struct hm_lock_remote *r);

/*
 * Take the lock: the local record, then (lock_type Hybrid) the remote.
 * Returns 0 and sets *record (owned by the caller) to the record written;
 * with lock_type Disabled, to a record with "lock_type": "disabled" that was
 * not written anywhere (the warning is printed); with req->nested and the lock
 * held by an ancestor, to jv_null().  Held by a live operation: prints the
 * "State is currently locked" block on stderr and fails with HM_EXIT_LOCKED.
 */
int hm_lock_acquire(const struct hm_lock_request *req, jv *record);

/*
 * The remote part of a Hybrid lock taken with req->local_first, for an
 * operation that finds it has something to write: take refs/heimdal/lock for
 * the local lock id (held by the caller), retrying while held elsewhere when
 * wait is set, and record it in state.lock.  Returns 0, *taken set when the
 * remote ref is now held (0: not Hybrid, no remote, unreachable: local only);
 * -1 as hm_lock_acquire fails, the local lock still held.
 */
int hm_lock_acquire_remote(const char *id, int wait, int *taken);

/*
 * Release the lock whose id is id: the remote ref first (when the record says
 * the remote is held), then the local record.  Returns 0 when released, 1
 * when nothing is locked, -1 on error (another id holds it: HM_EXIT_LOCKED,
 * nothing removed).  An unreachable remote is a warning, not an error.
 */
int hm_lock_release(const char *id);

/*
 * What is known about the lock: {"locked": false}, or the record plus
 * "locked": true, "stale", "stale_reason" (null when not stale),
 * "age_seconds", "holder_alive" (null when it cannot be checked from here)
 * and "mine" (held by the calling process or one of its ancestors).
 * Invalid (message printed, code set) when the lock file is corrupt.
 */
jv hm_lock_info(void);

/*
 * Remove the local lock, whatever its holder (with id non-NULL, only when the
 * lock has that id), a corrupt file included.  *removed receives the record
 * removed, {"corrupt": true, "text": ...} for a corrupt file, or jv_null()
 * when nothing was locked.  A remote ref the record holds is released too.
 * Returns 0, or -1 (id mismatch: HM_EXIT_LOCKED).
 */
int hm_lock_unlock_force(const char *id, jv *removed);

/*
 * Judge a record (borrowed) under cfg.  Returns 1 when stale, 0 when not;
 * why receives the reason ("process 12345 is not running"); *alive (may be
 * NULL) is 1 or 0 when the holder could be checked, -1 when it is on another
 * machine.
 */
int hm_lock_assess(jv record, const struct hm_lock_config *cfg, char *why, size_t why_len,
		   int *alive);

/*
 * After hm_lock_acquire broke into a lock whose holder died on this machine:
 * the time in which that holder may have run, [*since, *until) in seconds
 * since the epoch (all before this boot when the machine has restarted since),
 * so that what it left half done (git's lock files) can be told from a live
 * process's.  Returns 1, or 0 when no such lock was broken.  The window is
 * passed to the commands run under the same lock (HEIMDAL_BROKEN_LOCK in the
 * environment), so sync's apply clears what a killed apply left.
 */
int hm_lock_broken_window(time_t *since, time_t *until);

/* Seconds a lock may be stamped ahead of this clock before it is suspect. */
#define HM_LOCK_SKEW 60

/*
 * Check a lock record (borrowed) against lock.schema.json: the members and
 * their types, the id's form, no control characters in any text, no member
 * the schema does not name.  Returns 0, or -1 with why naming the field
 * (".machine.pid: expected a positive integer").
 */
int hm_lock_record_check(jv rec, char *why, size_t why_len);

/* 1 when machine (a record's "machine", borrowed) is this host: same id and hostname. */
int hm_lock_same_host(jv machine);

/*
 * The time rules alone, for a lock whose record cannot be read (only the
 * time it was stamped is known): 1 when stale, why set; 0 when not.
 */
int hm_lock_assess_time(time_t stamped, long long limit, const char *who, char *why,
			size_t why_len);

/*
 * After hm_lock_broken_window: the tag of the dead holder's lock (the last
 * 12 hex digits of its id), which the temporaries it made carry in their
 * names (hm_file_temp_template; a lock taken sets hm_file_set_owner_tag),
 * or NULL.
 */
const char *hm_lock_broken_tag(void);

/* The tag of lock id (the last 12 characters of its id) into buf[13]. */
void hm_lock_tag_of(const char *id, char *buf);

/* Print the "Error: State is currently locked" block for holder (borrowed). */
void hm_lock_print_held(FILE *f, jv holder);

/* 1 when pid is the calling process or one of its ancestors. */
int hm_lock_is_ancestor(pid_t pid);

/* Start time of pid in clock ticks since boot (/proc); 0 when unknown. */
unsigned long long hm_lock_proc_start(pid_t pid);

/* This boot's id (/proc/sys/kernel/random/boot_id); "" when unknown. */
const char *hm_lock_boot_id(void);

#endif
