/*
 * state.c - `heimdal state <sub>`: the table of state subcommands, and
 * version, history and migrate.
 */
#include "builtin.h"
#include "hm_error.h"
#include "hm_guard.h"
#include "hm_json.h"
#include "hm_machine.h"
#include "hm_state.h"
#include "hm_term.h"
#include "hm_time.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct sub {
	const char *name;
	int (*fn)(int, char **);
	const char *args; /* after the name, in `heimdal state --help` */
	const char *help;
} subs[] = {
	{ "version", cmd_state_version, "[--json]",
	  "validate the state; show version, machine, serial" },
	{ "history", cmd_state_history, "[--limit N] [--json]",
	  "recent operations, newest first (default 10)" },
	{ "migrate", cmd_state_migrate, "[--no-backup] [--json]",
	  "migrate a V1 state to V2, keeping a backup" },
	{ "query", cmd_state_query, "[jq options] FILTER [FILE|-]",
	  "run a jq filter over the state" },
	{ "check-drift", cmd_state_check_drift, "[--all] [--json]",
	  "files changed or missing since the last apply" },
	{ "check-conflicts", cmd_state_check_conflicts, "[--remote FILE] [--json]",
	  "conflicts between local and remote state" },
	{ "resolve", cmd_state_resolve, "--use-local|--use-remote|--merge|--manual [--remote FILE]",
	  "resolve state conflicts, keeping a backup" },
	{ "diff", cmd_state_diff, "[--remote FILE] [--json]",
	  "field-by-field differences from the remote" },
	{ "lock-info", cmd_state_lock_info, "[--json]", "show who holds the state lock" },
	{ "unlock", cmd_state_unlock, "--force [--id ID]", "remove a stale lock" },
};

void
state_commands_usage(FILE *f, int synopsis)
{
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		const struct sub *s = &subs[i];
		int w;

		if (!synopsis) {
			fprintf(f, "  %-16s %s\n", s->name, s->help);
			continue;
		}
		w = fprintf(f, "  %s %s", s->name, s->args);
		if (w > 35)
			fprintf(f, "\n%*s%s\n", 35, "", s->help);
		else
			fprintf(f, "%*s%s\n", 35 - w, "", s->help);
	}
}

static void
state_usage(FILE *f)
{
	fprintf(f, "usage: heimdal state <command> [<args>]\n\n");
	state_commands_usage(f, 1);
}

int
cmd_state(int argc, char **argv)
{
	if (argc < 2) {
		state_usage(stderr);
		return HM_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		state_usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		if (strcmp(argv[1], subs[i].name) == 0) {
			optind = 0;
			hm_progname = "heimdal";
			return subs[i].fn(argc - 1, argv + 1);
		}
	hm_msg("'state %s' is not a heimdal command. See 'heimdal state --help'.", argv[1]);
	return HM_EXIT_USAGE;
}

/* Options shared by the simple subcommands: --json, --help, and one with a value. */
struct simple_opts {
	int json;
	int no_backup;
	const char *limit;
};

static void
parse_simple(int argc, char **argv, const char *usage, struct simple_opts *o, int allow)
{
	enum { O_JSON = 1, O_NOBACKUP = 2, O_LIMIT = 4 };
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "no-backup", no_argument, NULL, 'n' },
		{ "limit", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof(*o));
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			o->json = 1;
			continue;
		case 'n':
			if (allow & O_NOBACKUP) {
				o->no_backup = 1;
				continue;
			}
			break;
		case 'l':
			if (allow & O_LIMIT) {
				o->limit = optarg;
				continue;
			}
			break;
		case 'h':
			printf("usage: %s\n", usage);
			exit(0);
		case ':':
			hm_die(HM_EXIT_USAGE, "%s: requires a value\nusage: %s", argv[optind - 1],
			       usage);
		default:
			break;
		}
		hm_die(HM_EXIT_USAGE, "unknown option '%s'\nusage: %s", argv[optind - 1], usage);
	}
	if (optind < argc)
		hm_die(HM_EXIT_USAGE, "unexpected argument '%s'\nusage: %s", argv[optind], usage);
}

int
cmd_state_version(int argc, char **argv)
{
	struct simple_opts o;
	jv s, out;

	parse_simple(argc, argv, "heimdal state version [--json]", &o, 0);
	s = porcelain_state_load();
	if (o.json) {
		out = jv_object();
		out = jv_object_set(out, jv_string("version"),
				    jv_object_get(jv_copy(s), jv_string("version")));
		out = jv_object_set(
			out, jv_string("machine_id"),
			jv_getpath(jv_copy(s), JV_ARRAY(jv_string("machine"), jv_string("id"))));
		out = jv_object_set(out, jv_string("serial"),
				    jv_getpath(jv_copy(s), JV_ARRAY(jv_string("lineage"),
								    jv_string("serial"))));
		out = jv_object_set(
			out, jv_string("lineage_id"),
			jv_getpath(jv_copy(s), JV_ARRAY(jv_string("lineage"), jv_string("id"))));
		out = jv_object_set(out, jv_string("heimdal_version"),
				    jv_object_get(jv_copy(s), jv_string("heimdal_version")));
		out = jv_object_set(out, jv_string("valid"), jv_true());
		porcelain_print_json(out, 0);
	} else {
		jv m = jv_object_get(jv_copy(s), jv_string("machine"));
		jv l = jv_object_get(jv_copy(s), jv_string("lineage"));

		printf("State Version: %lld\n", hm_json_int(s, "version", 0));
		printf("Machine ID: %s\n", hm_json_str(m, "id"));
		printf("Serial: %lld\n", hm_json_int(l, "serial", 0));
		jv_free(m);
		jv_free(l);
	}
	jv_free(s);
	return 0;
}

/* "2024-01-15T10:35:00Z" -> "2024-01-15 10:35:00" (UTC). */
static void
display_time(const char *ts, char *buf, size_t len)
{
	time_t t;
	struct tm tm;

	if (!ts || hm_time_parse(ts, &t) < 0) {
		snprintf(buf, len, "%s", ts ? ts : "-");
		return;
	}
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
}

int
cmd_state_history(int argc, char **argv)
{
	struct simple_opts o;
	jv s, h, m, shown = jv_array();
	long limit = 10;
	int n, opw = 0, hostw = 0;

	parse_simple(argc, argv, "heimdal state history [--limit N] [--json]", &o, 4);
	if (o.limit)
		limit = porcelain_parse_count("--limit", o.limit);
	s = porcelain_state_load();
	h = jv_object_get(jv_copy(s), jv_string("history"));
	m = jv_object_get(jv_copy(s), jv_string("machine"));
	n = jv_array_length(jv_copy(h));
	/* Newest first: history is appended in order, so walk it backwards. */
	for (int i = n - 1; i >= 0 && jv_array_length(jv_copy(shown)) < limit; i--) {
		jv e = jv_array_get(jv_copy(h), i);
		const char *host = hm_json_str(e, "hostname");

		if (!host) {
			const char *mid = hm_json_str(e, "machine_id");

			host = mid && hm_json_str(m, "id") && !strcmp(mid, hm_json_str(m, "id"))
				       ? hm_json_str(m, "hostname")
				       : mid;
			e = jv_object_set(e, jv_string("hostname"), jv_string(host));
		}
		shown = jv_array_append(shown, e);
	}
	jv_free(h);
	jv_free(m);
	jv_free(s);
	if (o.json) {
		porcelain_print_json(shown, 0);
		return 0;
	}
	jv_array_foreach(shown, i, e)
	{
		int ow = (int)strlen(hm_json_str(e, "operation"));
		int hw = (int)strlen(hm_json_str(e, "hostname"));

		opw = ow > opw ? ow : opw;
		hostw = hw > hostw ? hw : hostw;
		jv_free(e);
	}
	printf("Recent State Operations (last %ld):\n\n", limit);
	if (jv_array_length(jv_copy(shown)) == 0)
		printf("No operations recorded yet.\n");
	jv_array_foreach(shown, i, e)
	{
		char when[32];

		display_time(hm_json_str(e, "timestamp"), when, sizeof(when));
		printf("%lld. %-*s  %s  %-*s  %s\n", hm_json_int(e, "serial", 0), opw,
		       hm_json_str(e, "operation"), when, hostw, hm_json_str(e, "hostname"),
		       hm_json_str(e, "user"));
		jv_free(e);
	}
	jv_free(shown);
	return 0;
}

int
cmd_state_migrate(int argc, char **argv)
{
	struct simple_opts o;
	char *path, *backup = NULL, *err = NULL;
	int code, missing, version, locked = 0;
	jv s;
	HM_GUARD g = HM_GUARD_INIT;

	parse_simple(argc, argv, "heimdal state migrate [--no-backup] [--json]", &o, 2);
	path = hm_state_path();
	for (;;) {
		s = hm_state_read(path, &code, &missing);
		if (!jv_is_valid(s))
			porcelain_state_fail(path, s, code, missing);
		version = hm_state_version_of(s, &err);
		jv_free(s);
		if (version == HM_STATE_VERSION || locked)
			break;
		/* There is something to write: lock, then look again under the lock. */
		if (hm_guard_acquire(&g, "migrate", 0) < 0) {
			free(path);
			return hm_last_code();
		}
		locked = 1;
	}
	if (version == HM_STATE_VERSION) {
		if (o.json)
			porcelain_print_json(JV_OBJECT(jv_string("migrated"), jv_false(),
						       jv_string("version"), jv_number(version)),
					     0);
		else
			printf("State is already at version %d; nothing to migrate.\n", version);
		free(path);
		return 0;
	}
	if (!o.json)
		printf("Migrating state from V1 to V2...\n");
	fflush(stdout);
	s = porcelain_migrate_file(path, o.no_backup, &backup);
	if (o.json) {
		jv out = JV_OBJECT(jv_string("migrated"), jv_true(), jv_string("from"),
				   jv_number(1), jv_string("to"), jv_number(HM_STATE_VERSION),
				   jv_string("backup"), backup ? jv_string(backup) : jv_null(),
				   jv_string("state"), jv_string(path));

		porcelain_print_json(out, 0);
	} else {
		const char *ok = hm_mark(HM_MARK_OK);

		if (backup)
			printf("%s Backup created: %s\n", ok, backup);
		printf("%s State migrated successfully\n", ok);
		printf("%s New state saved\n", ok);
		printf("\nMigration Summary:\n");
		printf("  - Added machine metadata\n");
		printf("  - Initialized state lineage (serial: %lld)\n",
		       (long long)jv_number_value(jv_getpath(
			       jv_copy(s), JV_ARRAY(jv_string("lineage"), jv_string("serial")))));
		printf("  - Created empty operation history\n");
		printf("  - Initialized file checksums\n");
	}
	jv_free(s);
	free(backup);
	free(path);
	return 0;
}
