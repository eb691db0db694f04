/*
 * porcelain.c - what every porcelain command needs: the local state, loaded
 * (and migrated from V1 through heimdal-migrate) or saved, and JSON output.
 */
#include "builtin.h"
#include "guard.h"
#include "hm_error.h"
#include "hm_file.h"
#include "hm_json.h"
#include "hm_machine.h"
#include "hm_spawn.h"
#include "hm_state.h"
#include "hm_time.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void
porcelain_print_json(jv v, int compact)
{
	if (hm_json_write(stdout, v, compact ? HM_JSON_COMPACT : HM_JSON_PRETTY) < 0 ||
	    fflush(stdout) != 0)
		hm_die_errno(HM_EXIT_ENV, "stdout");
}

long
porcelain_parse_count(const char *flag, const char *value)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(value, &end, 10);
	if (errno || end == value || *end || n < 1)
		hm_die(HM_EXIT_USAGE, "%s: expected a positive integer, got '%s'", flag, value);
	return n;
}

char *
porcelain_backup_name(const char *dir_rel, const char *prefix, const char *suffix)
{
	char stamp[32], *dir = hm_home_path(dir_rel), *path;
	time_t now = hm_time_now();
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%d_%H%M%S", &tm);
	if (hm_mkdir_p(dir, 0700) < 0)
		exit(HM_EXIT_ENV);
	path = hm_xasprintf("%s/%s%s%s", dir, prefix, stamp, suffix);
	for (int i = 1; hm_file_exists(path); i++) {
		free(path);
		path = hm_xasprintf("%s/%s%s_%d%s", dir, prefix, stamp, i, suffix);
	}
	free(dir);
	return path;
}

char *
porcelain_backup_path(const char *prefix)
{
	char *p = hm_xasprintf("%s_", prefix), *path = porcelain_backup_name("backups", p, ".json");

	free(p);
	return path;
}

/* A backup path that does not exist yet: backups/state_v1_YYYYMMDD_HHMMSS[_N].json */
static char *
backup_name(void)
{
	return porcelain_backup_path("state_v1");
}

jv
porcelain_migrate_file(const char *path, int no_backup, char **backup_path)
{
	char *buf, *backup = NULL;
	size_t len;
	jv v2;
	int status;
	char *argv[] = { "heimdal-migrate", NULL };

	if (backup_path)
		*backup_path = NULL;
	if (hm_file_read(path, &buf, &len) < 0)
		exit(HM_EXIT_ENV);
	status = hm_spawn_json("migrate", argv, hm_json_parse(path, buf, len), &v2);
	if (status != 0) {
		free(buf);
		jv_free(v2);
		hm_die(status > 0 ? status : hm_last_code(),
		       "Failed to migrate state from V1 to V2: %s (unchanged)", path);
	}
	if (!no_backup) {
		backup = backup_name();
		if (hm_file_write_atomic(backup, buf, len, 0600) < 0)
			hm_die(HM_EXIT_ENV, "Failed to migrate state from V1 to V2: no backup, "
					    "state left unchanged");
		hm_debug("backup of the V1 state: %s", backup);
	}
	free(buf);
	if (hm_state_write(path, jv_copy(v2)) < 0)
		exit(HM_EXIT_ENV);
	if (backup_path)
		*backup_path = backup;
	else
		free(backup);
	return v2;
}

void
porcelain_state_fail(char *path, jv invalid, int code, int missing)
{
	jv msg = jv_invalid_get_msg(invalid);

	if (missing)
		hm_error("no state at %s (run 'heimdal init' first)", path);
	else
		hm_error("%s", jv_string_value(msg));
	jv_free(msg);
	free(path);
	exit(missing ? HM_EXIT_ENV : code);
}

/*
 * A V1 state found by a command: migrated and saved, a write like any other,
 * so under the lock (this machine's only: nothing is shared), unless the
 * command holds it already.  Read again once locked: another process may
 * have migrated it meanwhile.
 */
static jv
migrate_locked(const char *path)
{
	GUARD g = GUARD_INIT;
	int code, missing;
	jv s;

	if (!guard_held() && guard_acquire(&g, "migrate", GUARD_SETTLES | GUARD_REMOTE_LATER) < 0)
		exit(hm_last_code());
	s = hm_state_read(path, &code, &missing);
	if (!jv_is_valid(s))
		porcelain_state_fail(hm_xstrdup(path), s, code, missing);
	if (jv_object_has(jv_copy(s), jv_string("version")))
		return s;
	jv_free(s);
	hm_warn("%s is a V1 state; migrating it to V2 (a backup is kept in %s/backups)", path,
		hm_home());
	return porcelain_migrate_file(path, 0, NULL);
}

jv
porcelain_state_load(void)
{
	char *path = hm_state_path();
	int code, missing;
	jv s = hm_state_read(path, &code, &missing);

	if (!jv_is_valid(s))
		porcelain_state_fail(path, s, code, missing);
	hm_state_check_mode(path);
	if (!jv_object_has(jv_copy(s), jv_string("version"))) {
		jv_free(s);
		s = migrate_locked(path);
	}
	free(path);
	return s;
}

void
porcelain_state_save(jv state)
{
	char *path = hm_state_path();
	char *err = NULL;

	if (hm_state_validate(state, &err) < 0)
		hm_die(HM_EXIT_USAGE, "refusing to write an invalid state: %s", err);
	if (hm_home_ensure() < 0 || hm_state_write(path, state) < 0)
		exit(HM_EXIT_ENV);
	free(path);
}
