#include "hm_time.h"
#include "hm_error.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* n digits at s as a number, or -1. */
static int
digits(const char *s, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

static int
days_in_month(int y, int m)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return days[m - 1];
}

/*
 * The schema's pattern, read strictly ("YYYY-MM-DDTHH:MM:SS[.F+](Z|+hh:mm)"),
 * and a real calendar date: strptime(3) takes February 30th.  A leap second
 * (:60) is let through as RFC 3339 allows; it counts as the next second.
 */
int
hm_time_parse_frac(const char *s, time_t *t, const char **frac, size_t *frac_len)
{
	int y, mo, d, h, mi, sec, off = 0;
	const char *p = s + 19, *f = NULL;
	size_t flen = 0;
	struct tm tm;

	if (strnlen(s, 20) < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
	    s[16] != ':')
		return -1;
	y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
	h = digits(s + 11, 2), mi = digits(s + 14, 2), sec = digits(s + 17, 2);
	if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h < 0 || h > 23 ||
	    mi < 0 || mi > 59 || sec < 0 || sec > 60)
		return -1;
	if (*p == '.') {
		f = ++p;
		while (*p >= '0' && *p <= '9')
			p++;
		flen = (size_t)(p - f);
		if (flen == 0)
			return -1;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if ((*p == '+' || *p == '-') && p[3] == ':') {
		int hh = digits(p + 1, 2), mm = digits(p + 4, 2);

		if (hh < 0 || mm < 0 || hh > 23 || mm > 59)
			return -1;
		off = (*p == '-' ? -1 : 1) * (hh * 3600 + mm * 60);
		p += 6;
	} else {
		return -1;
	}
	if (*p != '\0')
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900, tm.tm_mon = mo - 1, tm.tm_mday = d;
	tm.tm_hour = h, tm.tm_min = mi, tm.tm_sec = sec;
	*t = timegm(&tm) - off;
	if (frac) {
		/* Trailing zeros say nothing: .50 is .5. */
		while (flen > 0 && f[flen - 1] == '0')
			flen--;
		*frac = f;
		*frac_len = flen;
	}
	return 0;
}

int
hm_time_parse(const char *s, time_t *t)
{
	return hm_time_parse_frac(s, t, NULL, NULL);
}

int
hm_time_cmp(const char *a, const char *b)
{
	const char *fa, *fb;
	size_t na, nb;
	time_t ta, tb;

	if (hm_time_parse_frac(a, &ta, &fa, &na) < 0 || hm_time_parse_frac(b, &tb, &fb, &nb) < 0)
		return strcmp(a, b) < 0 ? -1 : strcmp(a, b) > 0;
	if (ta != tb)
		return ta < tb ? -1 : 1;
	/* Equal seconds: the fractions digit by digit, the shorter padded with 0. */
	for (size_t i = 0; i < na || i < nb; i++) {
		char ca = i < na ? fa[i] : '0', cb = i < nb ? fb[i] : '0';

		if (ca != cb)
			return ca < cb ? -1 : 1;
	}
	return 0;
}

time_t
hm_time_now(void)
{
	const char *env = getenv("HEIMDAL_NOW");
	time_t t;
	char *end;

	if (env && *env) {
		long long n = strtoll(env, &end, 10);

		if (*end == '\0')
			return (time_t)n;
		if (hm_time_parse(env, &t) == 0)
			return t;
		hm_warn("HEIMDAL_NOW: not an RFC 3339 time or epoch seconds: '%s'", env);
	}
	return time(NULL);
}

char *
hm_time_format(time_t t, char *buf)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

char *
hm_time_now_rfc3339(char *buf)
{
	return hm_time_format(hm_time_now(), buf);
}

char *
hm_time_ago(long long s, char *buf, size_t len)
{
	static const struct {
		long long secs;
		const char *unit;
	} units[] = {
		{ 86400, "day" },
		{ 3600, "hour" },
		{ 60, "minute" },
		{ 1, "second" },
	};

	if (s < 1) {
		snprintf(buf, len, "just now");
		return buf;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		long long n = s / units[i].secs;

		if (n >= 1) {
			snprintf(buf, len, "%lld %s%s ago", n, units[i].unit, n == 1 ? "" : "s");
			return buf;
		}
	}
	return buf;
}
