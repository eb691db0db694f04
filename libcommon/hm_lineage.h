/*
 * hm_lineage.h - how two states relate, and what conflicts between them.
 *
 * Used by heimdal-lineage (compare), heimdal-conflicts and heimdal-merge, so
 * that all three agree on one answer.  The rules (DESIGN.md, "Lineage and
 * relations"), comparing local L with remote R:
 *
 *   unrelated  different lineage.id;
 *   equal      same serial and same newest history entry (without history:
 *              same serial, parent_serial and checksums);
 *   ahead      R's newest history entry appears in L's history (without
 *              history: L.parent_serial >= R.serial, so L descends from R);
 *   behind     the same the other way round;
 *   diverged   neither contains the other.  common_parent is the highest
 *              serial whose entry is identical in both histories, or null
 *              when the histories no longer overlap; without history, the
 *              lower of the two parent serials.
 *
 * With a base (the state at the git merge base), the base decides what the
 * histories (50 entries each) cannot.  A local state equal to the base is
 * behind a remote of a higher serial, however far the remote went: its
 * commit descends from the base's.  A remote equal to the base is behind
 * the local state when the local history begins after the base's serial
 * (where it still reaches back that far and lacks the base's newest entry,
 * the local state does not descend from the base: diverged).  When both
 * moved, the base's serial is the common parent if the histories share
 * none.  Two lineages
 * started apart in an empty repository are joined: a side that holds nothing
 * but its own init (one history entry, the init of its own machine, no git
 * commit, no checksums) is behind the other (ahead of it when only the other
 * side is such a state), with common_parent null.
 *
 * Every function borrows the jv states it is given unless its comment says
 * it consumes them.
 */
#ifndef HM_LINEAGE_H
#define HM_LINEAGE_H

#include <jv.h>
#include <stdio.h>

enum hm_relation {
	HM_REL_EQUAL,
	HM_REL_AHEAD,
	HM_REL_BEHIND,
	HM_REL_DIVERGED,
	HM_REL_UNRELATED,
};

struct hm_lineage_cmp {
	enum hm_relation relation;
	long long local_serial, remote_serial;
	long long common_parent; /* -1 when there is none (JSON null) */
};

/* "equal", "ahead", "behind", "diverged", "unrelated". */
const char *hm_relation_name(enum hm_relation r);

/*
 * Compare local with remote, knowing base (all borrowed; base is jv_null()
 * when there is none).  Reads only machine, lineage, history and checksums,
 * leniently (a missing field counts as empty), so it also answers for states
 * of a newer version.
 */
void hm_lineage_compare(jv local, jv remote, jv base, struct hm_lineage_cmp *out);

/*
 * The relation document: {"relation", "local_serial", "remote_serial",
 * "common_parent"} (new jv).
 */
jv hm_lineage_cmp_json(const struct hm_lineage_cmp *c);

/*
 * The two states (and an optional base) a comparison or merge works on.
 * base is jv_null() when there is none.  version is each side's schema
 * version (a newer one is only let through with allow_newer).
 */
struct hm_pair {
	jv local, remote, base;
	int local_version, remote_version;
};

/*
 * Read the pair: from the files named when local_path or remote_path is
 * given (then both must be, "-" meaning stdin; base_path may be NULL), else
 * from one document {"local": S, "remote": S, "base": S|null} on stdin.
 * Every state is validated as V2 and errors name the source and the field
 * ("<stdin>: .remote.lineage.serial: expected a non-negative integer, got
 * string").  A state of a newer version is accepted unvalidated when
 * allow_newer (it must still be an object).  A base of a lineage that is
 * neither side's is set aside (base becomes null) with a warning: it cannot
 * be what both descend from.  Returns 0, or -1 after printing
 * the error with hm_fail() set (HM_EXIT_USAGE for bad input, HM_EXIT_ENV for
 * I/O).  Release with hm_pair_free.
 */
int hm_pair_read(const char *local_path, const char *remote_path, const char *base_path,
		 int allow_newer, struct hm_pair *p);
void hm_pair_free(struct hm_pair *p);

/*
 * The same checks for a pair already in memory (local and remote set, base
 * jv_null() or a state): each state validated as V2, errors naming its
 * source; a base of neither side's lineage set aside.  0, or -1 (printed,
 * HM_EXIT_USAGE).
 */
int hm_pair_check(struct hm_pair *p, const char *local_src, const char *remote_src,
		  const char *base_src);

/*
 * The conflicts between the pair's states, given their relation: a new jv
 * array of {"type", "severity", "description", ...details}, in the order
 * lineage_mismatch, version_mismatch, serial_divergence, profile_mismatch,
 * path_mismatch, then file_drift by path.  lineage_mismatch only for the
 * relation unrelated (a joined lineage is none).  Profile, path and file
 * differences are only listed beside a divergence: each machine has its own,
 * and between states in step they are no conflict.  file_drift needs both
 * sides to have changed the file -- with a base, both differently from it;
 * without one, the two checksums differ.
 */
jv hm_conflicts_detect(const struct hm_pair *p, const struct hm_lineage_cmp *c, int flags);

/* hm_conflicts_detect flags: leave file_drift out (a merge finds it itself). */
#define HM_CONFLICTS_NO_DRIFT 1

/*
 * One file_drift conflict: path, local, remote and base are consumed (an
 * invalid or null value means the side does not have the file; base is
 * only recorded when with_base); winner ("local"/"remote", or NULL for none)
 * is the side a merge kept.
 */
jv hm_conflict_file_drift(jv path, jv local, jv remote, jv base, int with_base, const char *winner);

/*
 * The same conflict written straight to o as a value at depth, byte for byte
 * what hm_json_out_value would print of hm_conflict_file_drift's object --
 * without building it: a large merge reports tens of thousands.  path,
 * local, remote and base are borrowed.
 */
struct hm_json_out;
void hm_conflict_file_drift_write(struct hm_json_out *o, int depth, jv path, jv local, jv remote,
				  jv base, int with_base, const char *winner);

/* An array of objects (consumed) sorted by their "path" member. */
jv hm_conflicts_sort(jv list);

/*
 * The one listing of conflicts for people: a heading line, a blank line,
 * then "N. <severity mark> <description>" per conflict of list (borrowed),
 * descriptions escaped (they carry data).  To f.
 */
void hm_conflicts_print(FILE *f, const char *heading, jv list);

/* 1 when history entries a and b (borrowed) are the same entry. */
int hm_history_entry_same(jv a, jv b);

/*
 * The specification's merge of two lineages' lists, both arguments consumed,
 * a new array returned; a side that is not an array counts as empty.
 *
 * hm_history_union: every entry of either history once (the same entry by
 * hm_history_entry_same, the first seen kept), ordered by serial, then by
 * timestamp (fractions of a second included), then lh's entries before
 * rh's in their own order; the newest HM_HISTORY_MAX are kept.
 *
 * hm_machines_union: the machine ids of lm, then those of rm that lm lacks.
 */
jv hm_history_union(jv lh, jv rh);
jv hm_machines_union(jv lm, jv rm);

#endif
