/*
 * hm_opt.h - the one option parser of every heimdal binary, on getopt_long.
 *
 * A loop over hm_opt_next() replaces a loop over getopt_long() and gives
 * every binary the same behaviour on bad input:
 *
 *	prog: error: unknown option '--bogus'
 *	usage: <the command's usage line>
 *
 * with exit 2, and likewise "--limit: requires a value", "--json: takes no
 * value" and "ambiguous option '--co' (--compact, --color)".  -v/--verbose
 * is taken by every binary (hm_set_verbose()) without being listed.
 *
 *	while ((c = hm_opt_next(argc, argv, "cf", longopts, USAGE)) != -1)
 *		switch (c) { ... }
 *
 * shortopts and longopts are getopt_long's ("+" first stops at the first
 * non-option; a leading ":" is added, so '?' and ':' never come back).  The
 * usage line is printed after "usage: "; the caller handles -h/--help.
 */
#ifndef HM_OPT_H
#define HM_OPT_H

#include <getopt.h>
#include <stddef.h>

/*
 * The next option as getopt_long returns it (optarg, optind set), or -1 at
 * the first non-option argument (with "+") or the end.  Errors exit 2.
 */
int hm_opt_next(int argc, char **argv, const char *shortopts, const struct option *longopts,
		const char *usage);

/*
 * Start over: the next hm_opt_next() parses a new argv from its argv[1]
 * (a dispatcher calls it before handing argv to a command).
 */
void hm_opt_reset(void);

/*
 * "prog: error: <fmt...>" and the usage line on stderr, exit 2.  For the
 * refusals a command makes after parsing ("info does not take --op").
 */
_Noreturn void hm_opt_die(const char *usage, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * The long name of the option whose val is c in longopts ("--op"), or "-c"
 * when it has none; a static buffer, for hm_opt_die messages.
 */
const char *hm_opt_name(const struct option *longopts, int c);

/*
 * 1 when s is a word as an option value must be where one is recorded
 * (--op's operation name): 1 to max bytes, no space, no control character.
 */
int hm_opt_is_word(const char *s, size_t max);

#endif
