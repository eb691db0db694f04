/*
 * hm_time.h - RFC 3339 UTC timestamps.
 *
 * The clock can be pinned for reproducible runs: HEIMDAL_NOW holds either an
 * RFC 3339 UTC time ("2024-01-15T10:30:00Z") or seconds since the epoch.
 */
#ifndef HM_TIME_H
#define HM_TIME_H

#include <time.h>

/* Now, honouring HEIMDAL_NOW (an unparsable value is ignored with a warning). */
time_t hm_time_now(void);

/* t as "2024-01-15T10:30:00Z" into buf (at least 21 bytes); returns buf. */
char *hm_time_format(time_t t, char *buf);

/* Format hm_time_now() into buf; returns buf. */
char *hm_time_now_rfc3339(char *buf);

/*
 * Parse an RFC 3339 time: "YYYY-MM-DDTHH:MM:SS" with optional fraction and a
 * "Z" or "+hh:mm"/"-hh:mm" offset, a real calendar date.  Returns 0 and sets
 * *t, or -1.
 */
int hm_time_parse(const char *s, time_t *t);

/*
 * The same, strictly as the schemas' pattern (four-digit year, two-digit
 * fields) and a real calendar date (no February 30th).  *frac and *frac_len
 * (may be NULL) receive the fraction's digits, trailing zeros dropped.
 */
int hm_time_parse_frac(const char *s, time_t *t, const char **frac, size_t *frac_len);

/*
 * Order two timestamps by the instant they name, fractions of a second
 * compared exactly (offsets applied): <0, 0, >0.  A string that is not a
 * timestamp compares by its bytes.
 */
int hm_time_cmp(const char *a, const char *b);

/* "2 minutes ago", "just now", "3 days ago" for an age in seconds. */
char *hm_time_ago(long long seconds, char *buf, size_t len);

#endif
