/*
 * drift.c - `heimdal state check-drift [--all] [--json]`: heimdal-drift's
 * report over $HOME, rendered as the specification shows it.
 */
#include "builtin.h"
#include "hm_error.h"
#include "hm_opt.h"
#include "hm_json.h"
#include "hm_term.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DRIFT_USAGE "heimdal state check-drift [--all] [--json | -c]"

static _Noreturn void
usage(FILE *f, int code)
{
	fprintf(f, "usage: " DRIFT_USAGE "\n"
		   "\n"
		   "      --all       also list the files that match their checksums\n"
		   "      --json      print heimdal-drift's report as JSON\n"
		   "  -c, --compact   the same, compact\n");
	exit(code);
}

/* "  • path" lines for an array of paths. */
static void
list_paths(const char *title, jv paths)
{
	int n = jv_array_length(jv_copy(paths));

	if (n > 0) {
		printf("\n%s (%d):\n", title, n);
		jv_array_foreach(paths, i, p)
		{
			printf("  %s %s\n", hm_mark(HM_MARK_BULLET), jv_string_value(p));
			jv_free(p);
		}
	}
	jv_free(paths);
}

int
cmd_state_check_drift(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "all", no_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },
		{ "compact", no_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, all = 0, json = 0, compact = 0, n, drifted;
	jv report, mod, errs;

	while ((c = hm_opt_next(argc, argv, "ch", opts, DRIFT_USAGE)) != -1) {
		switch (c) {
		case 'a':
			all = 1;
			break;
		case 'j':
			json = 1;
			break;
		case 'c':
			json = compact = 1;
			break;
		case 'h':
			usage(stdout, 0);
		}
	}
	if (optind < argc)
		hm_opt_die(DRIFT_USAGE, "unexpected argument '%s'", argv[optind]);
	report = porcelain_drift(porcelain_state_load(), all);
	mod = jv_object_get(jv_copy(report), jv_string("modified"));
	errs = jv_object_get(jv_copy(report), jv_string("errors"));
	drifted = jv_array_length(jv_copy(mod)) > 0 || jv_array_length(jv_copy(errs)) > 0 ||
		  jv_array_length(jv_object_get(jv_copy(report), jv_string("missing"))) > 0;
	if (json) {
		jv_free(mod);
		jv_free(errs);
		porcelain_print_json(report, compact);
		return drifted ? HM_EXIT_FOUND : HM_EXIT_OK;
	}
	printf("Checking for file drift...\n");
	n = jv_array_length(jv_copy(mod));
	if (n > 0) {
		printf("\nModified Files (%d):\n", n);
		jv_array_foreach(mod, i, e)
		{
			if (i > 0)
				printf("\n");
			printf("  %s %s\n", hm_mark(HM_MARK_BULLET), hm_json_str(e, "path"));
			printf("    Expected: %s\n", hm_json_str(e, "expected"));
			printf("    Actual:   %s\n", hm_json_str(e, "actual"));
			jv_free(e);
		}
	}
	jv_free(mod);
	list_paths("Missing Files", jv_object_get(jv_copy(report), jv_string("missing")));
	n = jv_array_length(jv_copy(errs));
	if (n > 0) {
		printf("\nUnsafe or Unreadable Paths (%d):\n", n);
		jv_array_foreach(errs, i, e)
		{
			printf("  %s %s: %s\n", hm_mark(HM_MARK_BULLET), hm_json_str(e, "path"),
			       hm_json_str(e, "error"));
			jv_free(e);
		}
	}
	jv_free(errs);
	if (all)
		list_paths("Clean Files", jv_object_get(jv_copy(report), jv_string("clean")));
	if (drifted)
		printf("\nTip: Run 'heimdal apply --force' to restore tracked files (a backup is kept)\n"
		       "     or 'heimdal commit' to accept the changes\n");
	else
		printf("\n%s No drift: all %d tracked files match their checksums\n",
		       hm_mark(HM_MARK_OK),
		       (int)jv_number_value(jv_object_get(jv_copy(report), jv_string("checked"))));
	jv_free(report);
	return drifted ? HM_EXIT_FOUND : HM_EXIT_OK;
}
