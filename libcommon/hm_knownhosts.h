/*
 * hm_knownhosts.h - ssh host keys checked against OpenSSH known_hosts files.
 *
 * Lines are "[@revoked] names keytype base64-key [comment]"; names are
 * comma-separated patterns ("*" and "?" wildcards, "!" negation,
 * "[host]:port" for a port other than 22) or a hashed name "|1|salt|hash"
 * (HMAC-SHA1 of the name keyed with the salt).  @cert-authority lines are not
 * used.
 */
#ifndef HM_KNOWNHOSTS_H
#define HM_KNOWNHOSTS_H

#include <stddef.h>

enum hm_known {
	HM_KNOWN_OK = 0,      /* file lists key for name */
	HM_KNOWN_UNKNOWN = 1, /* no line for name (or no such file) */
	HM_KNOWN_CHANGED = 2, /* name is listed with other keys only, or key is @revoked */
};

/*
 * Look up name ("host" or "[host]:port") with the raw host key key[0..keylen)
 * (the blob ssh's base64 encodes) in file.  Returns enum hm_known.
 */
int hm_knownhosts_lookup(const char *file, const char *name, const char *key, size_t keylen);

#endif
