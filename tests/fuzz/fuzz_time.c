/*
 * fuzz_time - the RFC 3339 reader.  Invariants: what it accepts has the
 * schemas' shape and a real calendar date (the day exists in its month);
 * hm_time_cmp is a consistent order (antisymmetric, reflexive); a plain
 * "...Z" time without fraction formats back to itself.
 */
#include "hm_time.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int
check_one(const char *s)
{
	const char *frac = NULL;
	size_t flen = 0;
	time_t t;
	struct tm tm;
	char buf[32];

	if (hm_time_parse_frac(s, &t, &frac, &flen) < 0)
		return 0;
	if (strlen(s) < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
	    s[16] != ':')
		abort();
	if (hm_time_cmp(s, s) != 0)
		abort();
	if (strlen(s) == 20 && s[19] == 'Z' && s[0] != '0' && memcmp(s + 17, "60", 2) != 0) {
		/* No fraction, no offset, a four-digit year: the instant prints as the text. */
		if (strcmp(hm_time_format(t, buf), s) != 0)
			abort();
		gmtime_r(&t, &tm);
		if (tm.tm_mday != (s[8] - '0') * 10 + (s[9] - '0'))
			abort(); /* February 30th would have become March 1st */
	}
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char a[128], b[128];
	const uint8_t *nl;
	size_t na, nb;

	if (size > 250)
		return 0;
	/* Two timestamps, separated by a newline. */
	nl = memchr(data, '\n', size);
	na = nl ? (size_t)(nl - data) : size;
	nb = nl ? size - na - 1 : 0;
	if (na >= sizeof(a) || nb >= sizeof(b))
		return 0;
	memcpy(a, data, na);
	a[na] = '\0';
	memcpy(b, nl ? nl + 1 : data, nb);
	b[nb] = '\0';
	if (strlen(a) != na || strlen(b) != nb)
		return 0;
	if (check_one(a) && check_one(b)) {
		int ab = hm_time_cmp(a, b), ba = hm_time_cmp(b, a);

		if ((ab < 0) != (ba > 0) || (ab == 0) != (ba == 0))
			abort();
	}
	return 0;
}
