/*
 * hm_opt.c - getopt_long with one error format and -v/--verbose everywhere.
 */
#include "hm_opt.h"
#include "hm_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LONG 64
#define MAX_SHORT 128

/* The caller's tables with --verbose/-v added, rebuilt when they change. */
static const struct option *merged_from;
static const char *merged_short_from;
static struct option merged[MAX_LONG + 2];
static char merged_short[MAX_SHORT + 4];

static void
merge_tables(const char *shortopts, const struct option *longopts)
{
	const char *from = shortopts;
	size_t n = 0, k = 0;
	int has_verbose = 0;

	if (longopts == merged_from && shortopts == merged_short_from)
		return;
	for (; longopts && longopts[n].name; n++) {
		if (n >= MAX_LONG)
			hm_die(HM_EXIT_ENV, "hm_opt: too many options");
		merged[n] = longopts[n];
		has_verbose |= strcmp(longopts[n].name, "verbose") == 0;
	}
	if (!has_verbose)
		merged[n++] = (struct option){ "verbose", no_argument, NULL, 'v' };
	merged[n] = (struct option){ NULL, 0, NULL, 0 };

	if (strlen(shortopts) > MAX_SHORT)
		hm_die(HM_EXIT_ENV, "hm_opt: too many short options");
	/* "+" or "-" first, then ":" so getopt reports instead of printing. */
	if (*shortopts == '+' || *shortopts == '-')
		merged_short[k++] = *shortopts++;
	merged_short[k++] = ':';
	if (*shortopts == ':')
		shortopts++;
	strcpy(merged_short + k, shortopts);
	if (!strchr(shortopts, 'v'))
		strcat(merged_short, "v");
	merged_from = longopts;
	merged_short_from = from;
}

void
hm_opt_reset(void)
{
	optind = 0;
}

_Noreturn void
hm_opt_die(const char *usage, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	hm_error("%s", msg);
	fprintf(stderr, "usage: %s\n", usage);
	exit(HM_EXIT_USAGE);
}

const char *
hm_opt_name(const struct option *longopts, int c)
{
	static char buf[80];

	for (const struct option *o = longopts; o && o->name; o++)
		if (o->val == c && !o->flag) {
			snprintf(buf, sizeof(buf), "--%s", o->name);
			return buf;
		}
	snprintf(buf, sizeof(buf), "-%c", c);
	return buf;
}

/* The long option arg ("--name" or "--name=value") names, or NULL. */
static const struct option *
long_named(const char *arg, size_t *len)
{
	const struct option *hit = NULL;

	if (strncmp(arg, "--", 2) != 0 || !arg[2])
		return NULL;
	arg += 2;
	*len = strcspn(arg, "=");
	for (const struct option *o = merged; o->name; o++) {
		if (strncmp(o->name, arg, *len) != 0)
			continue;
		if (strlen(o->name) == *len)
			return o;
		hit = hit ? hit : o;
	}
	return hit;
}

/* '?' from getopt_long: what was wrong with the option at hand. */
static _Noreturn void
refuse(char **argv, const char *usage)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "";
	size_t len = 0;
	const struct option *o = long_named(arg, &len);

	if (optopt && !(o && o->val == optopt && arg[2 + len] == '='))
		hm_opt_die(usage, "unknown option '-%c'", optopt);
	if (optopt)
		hm_opt_die(usage, "--%s: takes no value", o->name);
	if (strncmp(arg, "--", 2) == 0 && arg[2]) {
		char names[512] = "";
		int hits = 0;

		for (const struct option *p = merged; p->name; p++)
			if (strncmp(p->name, arg + 2, len) == 0 && hits++ < 8) {
				size_t used = strlen(names);

				snprintf(names + used, sizeof(names) - used, "%s--%s",
					 used ? ", " : "", p->name);
			}
		if (hits > 1)
			hm_opt_die(usage, "ambiguous option '%.*s' (%s)", (int)len + 2, arg, names);
		hm_opt_die(usage, "unknown option '%.*s'", (int)len + 2, arg);
	}
	hm_opt_die(usage, "unknown option '%s'", arg);
}

int
hm_opt_next(int argc, char **argv, const char *shortopts, const struct option *longopts,
	    const char *usage)
{
	int c;

	merge_tables(shortopts, longopts);
	opterr = 0;
	for (;;) {
		c = getopt_long(argc, argv, merged_short, merged, NULL);
		if (c == 'v' && !strchr(shortopts, 'v')) {
			hm_set_verbose();
			continue;
		}
		if (c == '?')
			refuse(argv, usage);
		if (c == ':') {
			const char *arg = argv[optind - 1];
			size_t len;
			const struct option *o = long_named(arg, &len);

			if (o && o->val == optopt)
				hm_opt_die(usage, "--%s: requires a value", o->name);
			hm_opt_die(usage, "-%c: requires a value", optopt);
		}
		return c;
	}
}

int
hm_opt_is_word(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (!n || n > max)
		return 0;
	for (const unsigned char *u = (const unsigned char *)s; *u; u++)
		if (*u <= 0x20 || *u == 0x7f)
			return 0;
	return 1;
}
