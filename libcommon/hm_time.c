#include "hm_time.h"
#include "hm_error.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
hm_time_parse(const char *s, time_t *t)
{
	struct tm tm;
	int off = 0;
	const char *p;
	char *end;

	memset(&tm, 0, sizeof(tm));
	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p || strlen(s) < 19 || !isdigit((unsigned char)s[0]))
		return -1;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -1;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1;
		long hh, mm;

		hh = strtol(p + 1, &end, 10);
		if (end != p + 3 || *end != ':')
			return -1;
		mm = strtol(end + 1, &end, 10);
		if (end != p + 6 || hh > 23 || mm > 59)
			return -1;
		off = sign * (int)(hh * 3600 + mm * 60);
		p = end;
	} else {
		return -1;
	}
	if (*p != '\0')
		return -1;
	*t = timegm(&tm) - off;
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
