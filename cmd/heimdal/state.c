/*
 * state.c - `heimdal state <sub>`: the table of state subcommands, and
 * version, history and migrate.
 */
#include "builtin.h"
#include "hm_error.h"
#include "guard.h"
#include "hm_json.h"
#include "hm_machine.h"
#include "hm_opt.h"
#include "hm_state.h"
#include "hm_suggest.h"
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
	{ "history", cmd_state_history, "[--limit N] [--long] [--json]",
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

static const struct sub *
find_sub(const char *name)
{
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		if (strcmp(name, subs[i].name) == 0)
			return &subs[i];
	return NULL;
}

static int
unknown_sub(const char *name)
{
	const char *names[sizeof(subs) / sizeof(subs[0])];

	hm_msg("'state %s' is not a heimdal command. See 'heimdal state --help'.", name);
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		names[i] = subs[i].name;
	hm_suggest_print(name, names, sizeof(subs) / sizeof(subs[0]), "state ");
	return HM_EXIT_USAGE;
}

int
cmd_state(int argc, char **argv)
{
	const struct sub *sub;

	/* -v before the subcommand, as after it or before `state`. */
	while (argc > 1 && (!strcmp(argv[1], "-v") || !strcmp(argv[1], "--verbose"))) {
		hm_set_verbose();
		argc--;
		argv++;
	}
	if (argc < 2) {
		state_usage(stderr);
		return HM_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
	    (!strcmp(argv[1], "help") && argc == 2)) {
		state_usage(stdout);
		return 0;
	}
	hm_progname = "heimdal";
	if (!strcmp(argv[1], "help")) {
		/* heimdal state help version == heimdal state version --help */
		char *args[] = { argv[2], "--help", NULL };

		if (!(sub = find_sub(argv[2])))
			return unknown_sub(argv[2]);
		hm_opt_reset();
		return sub->fn(2, args);
	}
	if (argv[1][0] == '-')
		hm_opt_die("heimdal state <command> [<args>]", "unknown option '%s'", argv[1]);
	if (!(sub = find_sub(argv[1])))
		return unknown_sub(argv[1]);
	hm_opt_reset();
	return sub->fn(argc - 1, argv + 1);
}

/* Options shared by the simple subcommands: --json/-c, --help, and what allow lets in. */
struct simple_opts {
	int json, compact;
	int no_backup;
	int full; /* history --long */
	const char *limit;
};

enum { O_NOBACKUP = 2, O_LIMIT = 4, O_LONG = 8 };

static void
parse_simple(int argc, char **argv, const char *usage, struct simple_opts *o, int allow)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "compact", no_argument, NULL, 'c' },
		{ "no-backup", no_argument, NULL, 'n' },
		{ "limit", required_argument, NULL, 'l' },
		{ "long", no_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof(*o));
	while ((c = hm_opt_next(argc, argv, "ch", opts, usage)) != -1) {
		switch (c) {
		case 'j':
			o->json = 1;
			continue;
		case 'c':
			o->json = o->compact = 1;
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
		case 'L':
			if (allow & O_LONG) {
				o->full = 1;
				continue;
			}
			break;
		case 'h':
			printf("usage: %s\n", usage);
			exit(0);
		}
		hm_opt_die(usage, "unknown option '%s'", hm_opt_name(opts, c));
	}
	if (optind < argc)
		hm_opt_die(usage, "unexpected argument '%s'", argv[optind]);
}

int
cmd_state_version(int argc, char **argv)
{
	struct simple_opts o;
	jv s, out;

	parse_simple(argc, argv, "heimdal state version [--json | -c]", &o, 0);
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
		porcelain_print_json(out, o.compact);
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

/* The entries of history to show, newest first, each with a hostname. */
static jv
history_shown(jv s, long limit)
{
	jv h = jv_object_get(jv_copy(s), jv_string("history"));
	jv m = jv_object_get(jv_copy(s), jv_string("machine"));
	jv shown = jv_array();
	int n = jv_array_length(jv_copy(h));

	/* Newest first: history is appended in order, so walk it backwards. */
	for (int i = n - 1; i >= 0 && jv_array_length(jv_copy(shown)) < limit; i--) {
		jv e = jv_array_get(jv_copy(h), i);
		const char *host = hm_json_str(e, "hostname");

		if (!host) {
			const char *mid = hm_json_str(e, "machine_id");

			host = mid && hm_json_str(m, "id") && !strcmp(mid, hm_json_str(m, "id"))
				       ? hm_json_str(m, "hostname")
				       : mid;
			e = jv_object_set(e, jv_string("hostname"), jv_string(host ? host : "-"));
		}
		shown = jv_array_append(shown, e);
	}
	jv_free(h);
	jv_free(m);
	return shown;
}

/* 1 when two different machine ids of shown share their first n bytes. */
static int
ids_collide(jv shown, int n)
{
	int len = jv_array_length(jv_copy(shown)), hit = 0;

	for (int i = 0; i < len && !hit; i++) {
		jv a = jv_array_get(jv_copy(shown), i);
		const char *x = hm_json_str(a, "machine_id");

		for (int j = i + 1; x && j < len && !hit; j++) {
			jv b = jv_array_get(jv_copy(shown), j);
			const char *y = hm_json_str(b, "machine_id");

			hit = y && strcmp(x, y) != 0 && strncmp(x, y, (size_t)n) == 0;
			jv_free(b);
		}
		jv_free(a);
	}
	return hit;
}

/* Column widths of the listing. */
struct history_cols {
	int serial, op, host, user, id;
};

static int
max_width(int w, const char *s)
{
	int n = s ? (int)strlen(s) : 1;

	return n > w ? n : w;
}

static void
history_widths(jv shown, int full, struct history_cols *w)
{
	memset(w, 0, sizeof(*w));
	/* Short ids as git abbreviates: 8 bytes, more while two would look alike. */
	w->id = 8;
	while (!full && w->id < 64 && ids_collide(shown, w->id))
		w->id++;
	jv_array_foreach(shown, i, e)
	{
		char num[24];

		snprintf(num, sizeof(num), "%lld", hm_json_int(e, "serial", 0));
		w->serial = max_width(w->serial, num);
		w->op = max_width(w->op, hm_json_str(e, "operation"));
		w->host = max_width(w->host, hm_json_str(e, "hostname"));
		w->user = max_width(w->user, hm_json_str(e, "user"));
		jv_free(e);
	}
}

static const char *
or_dash(const char *s)
{
	return s ? s : "-";
}

int
cmd_state_history(int argc, char **argv)
{
	static const char usage[] = "heimdal state history [--limit N] [--long] [--json | -c]";
	struct simple_opts o;
	struct history_cols w;
	long limit = 10;
	jv s, shown;

	parse_simple(argc, argv, usage, &o, O_LIMIT | O_LONG);
	if (o.limit)
		limit = porcelain_parse_count("--limit", o.limit);
	s = porcelain_state_load();
	shown = history_shown(s, limit);
	jv_free(s);
	if (o.json) {
		porcelain_print_json(shown, o.compact);
		return 0;
	}
	history_widths(shown, o.full, &w);
	printf("Recent State Operations (last %ld):\n\n", limit);
	if (jv_array_length(jv_copy(shown)) == 0)
		printf("No operations recorded yet.\n");
	jv_array_foreach(shown, i, e)
	{
		const char *id = or_dash(hm_json_str(e, "machine_id"));
		char when[32];

		display_time(hm_json_str(e, "timestamp"), when, sizeof(when));
		printf("%*lld. %-*s  %s  %-*s  %-*s  %.*s\n", w.serial, hm_json_int(e, "serial", 0),
		       w.op, or_dash(hm_json_str(e, "operation")), when, w.host,
		       or_dash(hm_json_str(e, "hostname")), w.user, or_dash(hm_json_str(e, "user")),
		       o.full ? (int)strlen(id) : w.id, id);
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
	GUARD g = GUARD_INIT;

	parse_simple(argc, argv, "heimdal state migrate [--no-backup] [--json | -c]", &o,
		     O_NOBACKUP);
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
		if (guard_acquire(&g, "migrate", 0) < 0) {
			free(path);
			return hm_last_code();
		}
		locked = 1;
	}
	if (version == HM_STATE_VERSION) {
		if (o.json)
			porcelain_print_json(JV_OBJECT(jv_string("migrated"), jv_false(),
						       jv_string("version"), jv_number(version)),
					     o.compact);
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

		porcelain_print_json(out, o.compact);
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
