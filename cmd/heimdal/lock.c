/*
 * lock.c - `heimdal state lock-info` and `heimdal state unlock --force`:
 * heimdal-lock's info and unlock, rendered for people.
 */
#include "builtin.h"
#include "hm_error.h"
#include "hm_json.h"
#include "hm_opt.h"
#include "hm_spawn.h"
#include "hm_state.h"
#include "hm_term.h"
#include "hm_time.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* *json: 1 for --json, 2 for -c (compact); force and id NULL when not taken. */
static void
lock_opts(int argc, char **argv, const char *usage, int *json, int *force, const char **id)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },  { "compact", no_argument, NULL, 'c' },
		{ "force", no_argument, NULL, 'f' }, { "id", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },  { NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = hm_opt_next(argc, argv, "cfi:h", opts, usage)) != -1) {
		switch (c) {
		case 'j':
			*json = *json ? *json : 1;
			continue;
		case 'c':
			*json = 2;
			continue;
		case 'f':
			if (force) {
				*force = 1;
				continue;
			}
			break;
		case 'i':
			if (id) {
				*id = optarg;
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

/* "550e8400-e29b-..." -> "550e8400-..." as the specification shows it. */
static void
short_id(const char *id, char *buf, size_t len)
{
	if (id && strlen(id) > 12)
		snprintf(buf, len, "%.9s...", id);
	else
		snprintf(buf, len, "%s", id ? id : "?");
}

int
cmd_state_lock_info(int argc, char **argv)
{
	char *args[] = { "heimdal-lock", "info", "-c", NULL };
	int json = 0, status;
	char sid[32], ago[64];
	jv info, m;

	lock_opts(argc, argv, "heimdal state lock-info [--json | -c]", &json, NULL, NULL);
	status = hm_spawn_json("lock", args, jv_invalid(), &info);
	if (status != 0) {
		jv_free(info);
		return status < 0 ? hm_last_code() : status;
	}
	if (json) {
		porcelain_print_json(info, json == 2);
		return 0;
	}
	if (jv_get_kind(info) != JV_KIND_OBJECT ||
	    jv_get_kind(jv_object_get(jv_copy(info), jv_string("locked"))) != JV_KIND_TRUE) {
		printf("State is not locked\n");
		jv_free(info);
		return 0;
	}
	m = jv_object_get(jv_copy(info), jv_string("machine"));
	short_id(hm_json_str(m, "id"), sid, sizeof(sid));
	hm_time_ago(hm_json_int(info, "age_seconds", 0), ago, sizeof(ago));
	printf("State Lock Information:\n"
	       "  Operation: %s\n"
	       "  Machine: %s (%s)\n"
	       "  User: %s\n"
	       "  PID: %lld\n"
	       "  Acquired: %s\n"
	       "  Lock ID: %s\n",
	       hm_json_str(info, "operation"), hm_json_str(m, "hostname"), sid,
	       hm_json_str(m, "user"), hm_json_int(m, "pid", 0), ago, hm_json_str(info, "id"));
	if (jv_get_kind(jv_object_get(jv_copy(info), jv_string("stale"))) == JV_KIND_TRUE)
		printf("  Stale: yes, %s\n"
		       "  Remove it with: heimdal state unlock --force\n",
		       hm_json_str(info, "stale_reason"));
	if (jv_get_kind(jv_object_get(jv_copy(info), jv_string("mine"))) == JV_KIND_TRUE)
		printf("  Held by: this process\n");
	jv_free(m);
	jv_free(info);
	return 0;
}

int
cmd_state_unlock(int argc, char **argv)
{
	char *args[] = { "heimdal-lock", "unlock", "--force", "-c", NULL, NULL, NULL, NULL, NULL };
	char *state = hm_state_path();
	const char *id = NULL;
	int json = 0, force = 0, status, n = 4, ioerr;
	jv removed, s;

	lock_opts(argc, argv, "heimdal state unlock --force [--id ID] [--json | -c]", &json, &force,
		  &id);
	if (!force)
		hm_die(HM_EXIT_USAGE, "refusing to remove the lock without --force\n"
				      "Only use it if you're sure the lock is stale "
				      "(see 'heimdal state lock-info').");
	if (id) {
		args[n++] = "--id";
		args[n++] = (char *)id;
	}
	/* The remote half a dead holder left is found through the state's
	 * repository: named when the state can be read (a broken one is no
	 * reason not to unlock). */
	s = hm_json_read_file(state, &ioerr);
	if (jv_get_kind(s) == JV_KIND_OBJECT) {
		args[n++] = "--state";
		args[n++] = state;
	}
	jv_free(s);
	status = hm_spawn_json("lock", args, jv_invalid(), &removed);
	free(state);
	if (status != 0) {
		jv_free(removed);
		return status < 0 ? hm_last_code() : status;
	}
	if (json) {
		porcelain_print_json(removed, json == 2);
		return 0;
	}
	if (jv_get_kind(removed) != JV_KIND_OBJECT)
		printf("State is not locked\n");
	else if (jv_get_kind(jv_object_get(jv_copy(removed), jv_string("corrupt"))) == JV_KIND_TRUE)
		printf("%s Removed a corrupt lock file\n", hm_mark(HM_MARK_OK));
	else {
		jv m = jv_object_get(jv_copy(removed), jv_string("machine"));

		printf("%s Lock removed: %s (%s, pid %lld)\n", hm_mark(HM_MARK_OK),
		       hm_json_str(removed, "id"), hm_json_str(removed, "operation"),
		       hm_json_int(m, "pid", 0));
		jv_free(m);
	}
	jv_free(removed);
	return 0;
}
