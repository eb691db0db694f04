/*
 * hm_gitprobe.h - what a server's ref advertisement looked like.
 *
 * libgit2 takes an advertisement with no line at all (a bare flush-pkt) for
 * an empty repository.  No git server answers so: for an empty repository
 * it still sends its capabilities, on a "capabilities^{}" line.  A clone
 * that starts a lineage from an "empty" remote must know the difference:
 * a broken or hostile server would otherwise split the lineage.
 */
#ifndef HM_GITPROBE_H
#define HM_GITPROBE_H

/*
 * From now on, watch the first answer of every git://, http(s):// and
 * ssh:// connection this process makes (it wraps libgit2's own transports).
 * Meant for a short-lived child (hm_git_deadline).  0, or -1.
 */
int hm_gitprobe_install(void);

/* 1 when an answer watched so far advertised no ref and no capabilities. */
int hm_gitprobe_bare(void);

#endif
