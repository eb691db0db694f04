#include "hm_lock.h"
#include "hm_error.h"
#include "hm_file.h"
#include "hm_state.h"
#include "hm_json.h"
#include "hm_machine.h"
#include "hm_sigchain.h"
#include "hm_term.h"
#include "hm_time.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#define DAY_SECONDS 86400

/* Read /proc/PID/stat; the fields after the command name (which may hold
 * spaces and parentheses) start after the last ')'. */
static int
proc_stat(pid_t pid, pid_t *ppid, unsigned long long *start)
{
	char path[64], buf[1024], *p;
	unsigned long long st = 0;
	int fd, ppid_i = 0;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	/* state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
	 * utime stime cutime cstime priority nice threads itrealvalue starttime */
	if (!p || sscanf(p + 1,
			 " %*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d "
			 "%*d %*d %*d %*d %llu",
			 &ppid_i, &st) != 2)
		return -1;
	if (ppid)
		*ppid = ppid_i;
	if (start)
		*start = st;
	return 0;
}

unsigned long long
hm_lock_proc_start(pid_t pid)
{
	unsigned long long st = 0;

	return proc_stat(pid, NULL, &st) == 0 ? st : 0;
}

const char *
hm_lock_boot_id(void)
{
	static char id[64];
	FILE *f;

	if (id[0])
		return id;
	f = fopen("/proc/sys/kernel/random/boot_id", "re");
	if (f) {
		if (fgets(id, sizeof(id), f))
			id[strcspn(id, "\n")] = '\0';
		else
			id[0] = '\0';
		fclose(f);
	}
	return id;
}

int
hm_lock_is_ancestor(pid_t pid)
{
	pid_t p = getpid();

	for (int depth = 0; p > 1 && depth < 64; depth++) {
		if (p == pid)
			return 1;
		if (proc_stat(p, &p, NULL) < 0)
			break;
	}
	return 0;
}

/* The lock files. */
static char *
lock_path(void)
{
	return hm_home_path("state.lock");
}

/* Take flock on the guard file; returns its fd, or -1 after an error. */
static int
guard_lock(void)
{
	char *path;
	int fd;

	if (hm_home_ensure() < 0)
		return -1;
	path = hm_home_path("state.lock.guard");
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		hm_error_errno("%s", path);
		free(path);
		return hm_fail(HM_EXIT_ENV);
	}
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			hm_error_errno("%s: flock", path);
			close(fd);
			free(path);
			return hm_fail(HM_EXIT_ENV);
		}
	}
	free(path);
	return fd;
}

static void
guard_unlock(int fd)
{
	/* close drops the flock */
	close(fd);
}

static void
corrupt_message(const char *path, const char *detail)
{
	fprintf(stderr,
		"Error: Failed to read lock file: %s\n"
		"  %s\n"
		"If no heimdal operation is running, remove it with "
		"'heimdal state unlock --force'.\n",
		detail, path);
	fflush(stderr);
}

/*
 * Read state.lock.  Returns 1 with *rec set, 0 when absent (*rec null), -1
 * after the corrupt-file message (HM_EXIT_USAGE) or an I/O error.  *text
 * (may be NULL) receives the raw bytes.
 */
static int
read_record(jv *rec, char **text, int quiet)
{
	char *path = lock_path(), *buf = NULL, why[256];
	size_t len;
	jv r;

	*rec = jv_null();
	if (text)
		*text = NULL;
	if (!hm_file_exists(path)) {
		free(path);
		return 0;
	}
	if (hm_file_read(path, &buf, &len) < 0) {
		free(path);
		return -1;
	}
	r = hm_json_parse(path, buf, len);
	if (!jv_is_valid(r)) {
		jv_free(r);
		if (!quiet)
			corrupt_message(path, "invalid JSON");
		goto corrupt;
	}
	/* Read as strictly as it is written: the one lock.schema.json check. */
	if (jv_get_kind(r) != JV_KIND_OBJECT || hm_lock_record_check(r, why, sizeof(why)) < 0) {
		char detail[300];

		snprintf(detail, sizeof(detail), "invalid lock record: %s",
			 jv_get_kind(r) != JV_KIND_OBJECT ? "not a JSON object" : why);
		jv_free(r);
		if (!quiet)
			corrupt_message(path, detail);
		goto corrupt;
	}
	free(path);
	if (text)
		*text = buf;
	else
		free(buf);
	*rec = r;
	return 1;
corrupt:
	free(path);
	if (text)
		*text = buf;
	else
		free(buf);
	return hm_fail(HM_EXIT_USAGE);
}

/*
 * Write state.lock: a temporary in the same directory, renamed over it, so a
 * reader never sees a partial record.  Unlike the state, it is not fsync'd
 * (git does not sync its .lock files either): after a system crash the
 * record is stale anyway, since the boot id it holds has changed, and the
 * fsync would cost more than the rest of taking the lock.  Called under the
 * guard, so the temporary's name cannot collide.
 */
static int
write_record(jv rec)
{
	char *path = lock_path(), *tmp = hm_xasprintf("%s.tmp", path);
	size_t len, off = 0;
	char *buf = hm_json_dump(rec, HM_JSON_PRETTY, &len);
	int fd, r = 0;

	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = hm_error_errno("%s", tmp);
		goto out;
	}
	while (off < len) {
		ssize_t n = write(fd, buf + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = hm_error_errno("%s", tmp);
			break;
		}
		off += (size_t)n;
	}
	if (close(fd) < 0 && r == 0)
		r = hm_error_errno("%s", tmp);
	if (r == 0 && rename(tmp, path) < 0)
		r = hm_error_errno("%s", path);
	if (r < 0)
		unlink(tmp);
out:
	free(buf);
	free(tmp);
	free(path);
	return r < 0 ? hm_fail(HM_EXIT_ENV) : 0;
}

static int
remove_record(void)
{
	char *path = lock_path();
	int r = 0;

	if (unlink(path) < 0 && errno != ENOENT)
		r = hm_error_errno("%s", path);
	free(path);
	return r < 0 ? hm_fail(HM_EXIT_ENV) : 0;
}

/* Seconds since the record was stamped: negative when stamped ahead of this clock. */
static long long
record_offset(jv rec)
{
	time_t t;

	if (hm_time_parse(hm_json_str(rec, "created_at"), &t) < 0)
		return 0;
	return (long long)(hm_time_now() - t);
}

static long long
record_age(jv rec)
{
	long long age = record_offset(rec);

	return age < 0 ? 0 : age;
}

void
hm_lock_tag_of(const char *id, char *buf)
{
	size_t n = id ? strlen(id) : 0;

	snprintf(buf, 13, "%s", n > 12 ? id + n - 12 : n ? id : "none");
	/* It goes into file names: lowercase hex only (a lock id's last group). */
	if (strspn(buf, "0123456789abcdef") != strlen(buf))
		snprintf(buf, 13, "none");
}

int
hm_lock_same_host(jv m)
{
	const char *mid = hm_json_str(m, "id"), *host = hm_json_str(m, "hostname");

	return mid && host && hm_machine_id() && strcmp(mid, hm_machine_id()) == 0 &&
	       strcmp(host, hm_machine_hostname()) == 0;
}

/* Text: a string without control characters (and non-empty when id). */
static int
text_ok(jv v, int id)
{
	const unsigned char *p;

	if (jv_get_kind(v) != JV_KIND_STRING)
		return 0;
	p = (const unsigned char *)jv_string_value(v);
	if (id && !*p)
		return 0;
	for (; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return 0;
	return (size_t)jv_string_length_bytes(jv_copy(v)) == strlen(jv_string_value(v));
}

static int
integer_ok(jv v, double min)
{
	double d;

	if (jv_get_kind(v) != JV_KIND_NUMBER)
		return 0;
	d = jv_number_value(v);
	return d >= min && d <= 9007199254740991.0 && d == (double)(long long)d;
}

static int
hex_ok(const char *s, size_t n)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (!strchr("0123456789abcdef", s[i]))
			return 0;
	return i == n;
}

static int
lock_id_ok(const char *s)
{
	/* lock-xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx */
	static const int len[] = { 8, 4, 4, 4, 12 };
	const char *p = s;

	if (strncmp(p, "lock-", 5) != 0)
		return 0;
	p += 5;
	for (int i = 0; i < 5; i++) {
		for (int j = 0; j < len[i]; j++, p++)
			if (!*p || !strchr("0123456789abcdef", *p))
				return 0;
		if (i < 4 && *p++ != '-')
			return 0;
	}
	return *p == '\0' && s[19] == '4' && strchr("89ab", s[24]);
}

/* -1 (why set) when obj has a member not in keys. */
static int
only_members(jv obj, const char *const *keys, const char *prefix, char *why, size_t why_len)
{
	char *unknown = hm_json_unknown_member(obj, keys), name[128];

	if (!unknown)
		return 0;
	hm_term_escape(unknown, 0, name, sizeof(name));
	snprintf(why, why_len, "%s%s: not a member of a lock record", prefix, name);
	free(unknown);
	return -1;
}

static const char *
machine_problem(jv m, char *why, size_t why_len)
{
	static const char *const keys[] = { "id",        "hostname", "pid", "user",
					    "pid_start", "boot_id",  NULL };
	const char *p = NULL;
	jv v;

	if (jv_get_kind(m) != JV_KIND_OBJECT)
		return ".machine: expected an object";
	if (only_members(m, keys, ".machine.", why, why_len) < 0)
		return why;
#define FIELD(key, test, msg)                                                                      \
	if (!p) {                                                                                  \
		v = jv_object_get(jv_copy(m), jv_string(key));                                     \
		if (!(test))                                                                       \
			p = msg;                                                                   \
		jv_free(v);                                                                        \
	}
	FIELD("id", text_ok(v, 1),
	      ".machine.id: expected a non-empty string without control characters")
	FIELD("hostname", text_ok(v, 1),
	      ".machine.hostname: expected a non-empty string without control characters")
	FIELD("pid", integer_ok(v, 1), ".machine.pid: expected a positive integer")
	FIELD("user", text_ok(v, 0), ".machine.user: expected a string without control characters")
	FIELD("pid_start", integer_ok(v, 0),
	      ".machine.pid_start: expected an integer of at least 0")
	FIELD("boot_id", text_ok(v, 0),
	      ".machine.boot_id: expected a string without control characters")
#undef FIELD
	return p;
}

/* What is wrong with a record's "remote" (borrowed, not null), or NULL. */
static const char *
remote_problem(jv v, char *buf, size_t len)
{
	static const char *const rkeys[] = { "repository", "url", "ref", "commit", NULL };
	const char *commit;

	if (jv_get_kind(v) != JV_KIND_OBJECT)
		return ".remote: expected an object or null";
	if (!hm_json_str(v, "repository") || !*hm_json_str(v, "repository") ||
	    !hm_json_str(v, "url") || !*hm_json_str(v, "url"))
		return ".remote.repository, .remote.url: expected non-empty strings";
	if (!hm_json_str(v, "ref") || strcmp(hm_json_str(v, "ref"), HM_LOCK_REMOTE_REF))
		return ".remote.ref: expected \"" HM_LOCK_REMOTE_REF "\"";
	commit = hm_json_str(v, "commit");
	if (!commit || (!hex_ok(commit, 40) && !hex_ok(commit, 64)))
		return ".remote.commit: expected a commit id (40 or 64 hex digits)";
	return only_members(v, rkeys, ".remote.", buf, len) < 0 ? buf : NULL;
}

int
hm_lock_record_check(jv r, char *why, size_t why_len)
{
	static const char *const keys[] = { "id",      "lock_type",    "operation",
					    "machine", "created_at",   "expected_duration_seconds",
					    "reason",  "state_serial", "remote",
					    NULL };
	char buf[256];
	const char *p = NULL, *s;
	time_t t;
	jv v, m;

	if (jv_get_kind(r) != JV_KIND_OBJECT) {
		snprintf(why, why_len, "expected a lock record (an object), got %s",
			 hm_json_kind_name(r));
		return -1;
	}
	if (only_members(r, keys, ".", why, why_len) < 0)
		return -1;
	v = jv_object_get(jv_copy(r), jv_string("id"));
	if (jv_get_kind(v) != JV_KIND_STRING || !lock_id_ok(jv_string_value(v)))
		p = ".id: expected a lock id (lock-<uuid v4>)";
	jv_free(v);
	s = hm_json_str(r, "lock_type");
	if (!p && (!s || (strcmp(s, "hybrid") && strcmp(s, "local") && strcmp(s, "disabled"))))
		p = ".lock_type: expected \"hybrid\", \"local\" or \"disabled\"";
	v = jv_object_get(jv_copy(r), jv_string("operation"));
	if (!p && !text_ok(v, 1))
		p = ".operation: expected a non-empty string without control characters";
	jv_free(v);
	if (!p) {
		m = jv_object_get(jv_copy(r), jv_string("machine"));
		p = machine_problem(m, buf, sizeof(buf));
		jv_free(m);
	}
	s = hm_json_str(r, "created_at");
	if (!p && (!s || hm_time_parse(s, &t) < 0))
		p = ".created_at: expected an RFC 3339 time";
	v = jv_object_get(jv_copy(r), jv_string("expected_duration_seconds"));
	if (!p && !integer_ok(v, 0))
		p = ".expected_duration_seconds: expected an integer of at least 0";
	jv_free(v);
	v = jv_object_get(jv_copy(r), jv_string("reason"));
	if (!p && !text_ok(v, 0))
		p = ".reason: expected a string without control characters";
	jv_free(v);
	v = jv_object_get(jv_copy(r), jv_string("state_serial"));
	if (!p && jv_get_kind(v) != JV_KIND_NULL && !integer_ok(v, 0))
		p = ".state_serial: expected an integer of at least 0, or null";
	jv_free(v);
	v = jv_object_get(jv_copy(r), jv_string("remote"));
	if (!p && jv_is_valid(v) && jv_get_kind(v) != JV_KIND_NULL)
		p = remote_problem(v, buf, sizeof(buf));
	jv_free(v);
	if (!p)
		return 0;
	if (p != why)
		snprintf(why, why_len, "%s", p);
	return -1;
}

/*
 * The window of the last dead local holder broken into (hm_lock_broken_window),
 * passed on to child processes in the environment.
 */
#define BROKEN_ENV "HEIMDAL_BROKEN_LOCK"
static time_t dead_since, dead_until;
static char dead_tag[13];

/* Seconds since the epoch at which this boot began (/proc/stat btime); 0 when unknown. */
static time_t
boot_time(void)
{
	FILE *f = fopen("/proc/stat", "re");
	char line[256];
	long long t = 0;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "btime %lld", &t) == 1)
			break;
	if (f)
		fclose(f);
	return (time_t)t;
}

static void
note_dead_holder(jv rec)
{
	jv m = jv_object_get(jv_copy(rec), jv_string("machine"));
	const char *boot = hm_json_str(m, "boot_id");
	long long start = hm_json_int(m, "pid_start", 0);
	time_t btime = boot_time();
	long hz = sysconf(_SC_CLK_TCK);

	dead_since = dead_until = 0;
	hm_lock_tag_of(hm_json_str(rec, "id"), dead_tag);
	if (btime && boot && *boot && *hm_lock_boot_id() && strcmp(boot, hm_lock_boot_id()) != 0) {
		/* A previous boot: everything older than this one. */
		dead_until = btime;
	} else if (btime && start > 0 && hz > 0) {
		/* Wall clock, not hm_time_now(): file times are compared with it. */
		dead_since = btime + (time_t)(start / hz) - 1;
		dead_until = time(NULL) + 1;
	}
	jv_free(m);
	if (dead_until) {
		/* For the commands this one runs under its lock (sync's apply). */
		char v[96];

		snprintf(v, sizeof(v), "%lld %lld %s", (long long)dead_since, (long long)dead_until,
			 dead_tag);
		setenv(BROKEN_ENV, v, 1);
	}
}

int
hm_lock_broken_window(time_t *since, time_t *until)
{
	const char *v = getenv(BROKEN_ENV);
	long long a, b;
	char tag[13];

	tag[0] = '\0';
	if (!dead_until && v && sscanf(v, "%lld %lld %12[0-9a-z]", &a, &b, tag) >= 2 && b > a &&
	    a >= 0) {
		dead_since = (time_t)a;
		dead_until = (time_t)b;
		snprintf(dead_tag, sizeof(dead_tag), "%s", tag);
	}
	*since = dead_since;
	*until = dead_until;
	return dead_until != 0;
}

const char *
hm_lock_broken_tag(void)
{
	time_t since, until;

	/* "none": temporaries made without a lock are nobody's to remove. */
	return hm_lock_broken_window(&since, &until) && dead_tag[0] && strcmp(dead_tag, "none")
		       ? dead_tag
		       : NULL;
}

/* The time rules, offset = now - stamp (negative: stamped ahead of this clock). */
static int
assess_offset(long long offset, long long limit, const char *who, char *why, size_t why_len)
{
	if (offset < -HM_LOCK_SKEW && -offset > limit) {
		snprintf(why, why_len,
			 "lock is stamped %lld seconds ahead of this clock, more than the timeout "
			 "(%lld seconds): the clock of %s is wrong",
			 -offset, limit, who);
		return 1;
	}
	if (offset > DAY_SECONDS) {
		snprintf(why, why_len, "machine %s has not been seen for 24 hours", who);
		return 1;
	}
	if (offset > limit) {
		snprintf(why, why_len, "lock is %lld seconds old (timeout %lld seconds)", offset,
			 limit);
		return 1;
	}
	return 0;
}

int
hm_lock_assess_time(time_t stamped, long long limit, const char *who, char *why, size_t why_len)
{
	why[0] = '\0';
	return assess_offset((long long)(hm_time_now() - stamped), limit, who, why, why_len);
}

int
hm_lock_assess(jv rec, const struct hm_lock_config *cfg, char *why, size_t why_len, int *alive)
{
	jv m = jv_object_get(jv_copy(rec), jv_string("machine"));
	const char *mid = hm_json_str(m, "id");
	const char *boot = hm_json_str(m, "boot_id");
	char who[128];
	pid_t pid = (pid_t)hm_json_int(m, "pid", 0);
	unsigned long long start = (unsigned long long)hm_json_int(m, "pid_start", 0), now_start;
	long long offset = record_offset(rec), limit = cfg->timeout;
	int stale = 0, live = -1;

	why[0] = '\0';
	if (hm_json_int(rec, "expected_duration_seconds", 0) > limit)
		limit = hm_json_int(rec, "expected_duration_seconds", 0);
	if (hm_lock_same_host(m)) {
		/*
		 * On this machine the holder can be checked: only death is stale.
		 * Not on another host that shares this machine id (an NFS home):
		 * its pids and boot id mean nothing here.
		 */
		if (boot && *boot && *hm_lock_boot_id() && strcmp(boot, hm_lock_boot_id()) != 0) {
			live = 0;
			snprintf(why, why_len,
				 "the machine has restarted since process %ld took it", (long)pid);
		} else if (kill(pid, 0) < 0 && errno == ESRCH) {
			live = 0;
			snprintf(why, why_len, "process %ld is not running", (long)pid);
		} else if (start && (now_start = hm_lock_proc_start(pid)) && now_start != start) {
			live = 0;
			snprintf(why, why_len, "process %ld is not running (its pid was reused)",
				 (long)pid);
		} else {
			live = 1;
		}
		stale = live == 0;
	} else {
		hm_term_escape(hm_json_str(m, "hostname") ? hm_json_str(m, "hostname")
			       : mid                      ? mid
							  : "(unknown)",
			       0, who, sizeof(who));
		stale = assess_offset(offset, limit, who, why, why_len);
	}
	jv_free(m);
	if (alive)
		*alive = live;
	return cfg->detect_stale ? stale : 0;
}

static void
short_id(const char *id, char *buf, size_t len)
{
	if (!id)
		id = "?";
	if (strlen(id) > 12)
		snprintf(buf, len, "%.9s...", id);
	else
		snprintf(buf, len, "%s", id);
}

void
hm_lock_print_held(FILE *f, jv holder)
{
	jv m = jv_object_get(jv_copy(holder), jv_string("machine"));
	char sid[32], ago[64], op[256], host[256], user[256];

	short_id(hm_json_str(m, "id"), sid, sizeof(sid));
	if (record_offset(holder) < -HM_LOCK_SKEW)
		snprintf(ago, sizeof(ago), "%lld seconds ahead of this clock",
			 -record_offset(holder));
	else
		hm_time_ago(record_age(holder), ago, sizeof(ago));
	/* The record may come from another machine, through the remote: data. */
	hm_term_escape(hm_json_str(holder, "operation"), 0, op, sizeof(op));
	hm_term_escape(hm_json_str(m, "hostname") ? hm_json_str(m, "hostname") : "?", 0, host,
		       sizeof(host));
	hm_term_escape(hm_json_str(m, "user") ? hm_json_str(m, "user") : "?", 0, user,
		       sizeof(user));
	fprintf(f,
		"Error: State is currently locked\n"
		"\n"
		"Operation: %s\n"
		"Machine: %s (%s)\n"
		"User: %s\n"
		"PID: %lld\n"
		"Acquired: %s\n"
		"\n"
		"This means another Heimdal operation is in progress.\n",
		op, host, sid, user, hm_json_int(m, "pid", 0), ago);
	fflush(f);
	jv_free(m);
}

static jv
new_record(const struct hm_lock_request *req, const struct hm_lock_config *cfg)
{
	char uuid[37], now[32];
	pid_t pid = req->pid ? req->pid : getpid();
	const char *mid = hm_machine_id();
	jv m;

	if (!mid || hm_uuid_v4(uuid) < 0)
		return jv_invalid();
	m = JV_OBJECT(jv_string("id"), jv_string(mid), jv_string("hostname"),
		      jv_string(hm_machine_hostname()), jv_string("pid"), jv_number(pid),
		      jv_string("user"), jv_string(hm_machine_user()));
	m = jv_object_set(m, jv_string("pid_start"), jv_number((double)hm_lock_proc_start(pid)));
	m = jv_object_set(m, jv_string("boot_id"), jv_string(hm_lock_boot_id()));
	return JV_OBJECT(jv_string("id"), jv_string_fmt("lock-%s", uuid), jv_string("lock_type"),
			 jv_string(hm_lock_type_name(cfg->lock_type)), jv_string("operation"),
			 jv_string(req->operation), jv_string("machine"), m,
			 jv_string("created_at"), jv_string(hm_time_now_rfc3339(now)),
			 jv_string("expected_duration_seconds"),
			 jv_number((double)(req->expected_duration > 0 ? req->expected_duration
								       : cfg->timeout)),
			 jv_string("reason"),
			 req->reason ? jv_string(req->reason)
				     : jv_string_fmt("%s by heimdal", req->operation),
			 jv_string("state_serial"),
			 req->serial >= 0 ? jv_number((double)req->serial) : jv_null(),
			 jv_string("remote"), jv_null());
}

enum { TRY_OK, TRY_HELD, TRY_NESTED };

static void set_tag(const char *id);

/*
 * A hybrid lock of this host whose holder died: what it may have left on the
 * remote (refs/heimdal/lock, taken or being taken when it died) is cleared
 * by remote_recover once the new lock is written.
 */
static int dead_hybrid;

/* One check-and-set under the guard.  *holder set on TRY_HELD. */
static int
try_local(jv rec, const struct hm_lock_request *req, const struct hm_lock_config *cfg, jv *holder)
{
	char why[256];
	int fd = guard_lock(), r, alive;
	jv cur;

	if (fd < 0)
		return -1;
	r = read_record(&cur, NULL, 0);
	if (r < 0) {
		guard_unlock(fd);
		return -1;
	}
	if (r == 1) {
		jv m = jv_object_get(jv_copy(cur), jv_string("machine")), remote;
		pid_t hpid = (pid_t)hm_json_int(m, "pid", 0);
		int same_machine = hm_lock_same_host(m);

		jv_free(m);
		if (!hm_lock_assess(cur, cfg, why, sizeof(why), &alive)) {
			guard_unlock(fd);
			if (req->nested && same_machine && alive == 1 &&
			    hm_lock_is_ancestor(hpid)) {
				hm_debug("the lock is held by process %ld, an ancestor: proceeding",
					 (long)hpid);
				/* What this process leaves belongs to that lock. */
				set_tag(hm_json_str(cur, "id"));
				jv_free(cur);
				return TRY_NESTED;
			}
			*holder = cur;
			return TRY_HELD;
		}
		hm_debug("breaking stale lock %s: %s", hm_json_str(cur, "id"), why);
		if (same_machine && alive == 0) {
			note_dead_holder(cur);
			remote = jv_object_get(jv_copy(cur), jv_string("remote"));
			dead_hybrid = jv_get_kind(remote) == JV_KIND_OBJECT ||
				      (hm_json_str(cur, "lock_type") &&
				       strcmp(hm_json_str(cur, "lock_type"), "hybrid") == 0);
			jv_free(remote);
		}
		jv_free(cur);
	}
	r = write_record(jv_copy(rec));
	guard_unlock(fd);
	if (r < 0)
		return -1;
	set_tag(hm_json_str(rec, "id"));
	return TRY_OK;
}

/*
 * Remove the local record if it is still id's.  Returns 0 removed, 1 absent,
 * 2 another id holds it, -1 error.
 */
static int
remove_if(const char *id)
{
	int fd = guard_lock(), r;
	jv cur;

	if (fd < 0)
		return -1;
	r = read_record(&cur, NULL, 0);
	if (r == 1)
		r = strcmp(hm_json_str(cur, "id"), id) == 0 ? (remove_record() < 0 ? -1 : 0) : 2;
	else if (r == 0)
		r = 1;
	jv_free(cur);
	guard_unlock(fd);
	return r;
}

/* Temporaries made from now on carry the tag of lock id (NULL: none). */
static void
set_tag(const char *id)
{
	char tag[13];

	if (!id) {
		hm_file_set_owner_tag(NULL);
		return;
	}
	hm_lock_tag_of(id, tag);
	hm_file_set_owner_tag(tag);
}

/* Rewrite the local record (with its remote part) if it is still ours. */
static int
update_if(jv rec)
{
	int fd = guard_lock(), r;
	jv cur;

	if (fd < 0) {
		jv_free(rec);
		return -1;
	}
	r = read_record(&cur, NULL, 0);
	if (r == 1 && strcmp(hm_json_str(cur, "id"), hm_json_str(rec, "id")) == 0)
		r = write_record(rec);
	else {
		jv_free(rec);
		r = r < 0 ? -1 : hm_error("the lock was removed while it was being taken");
	}
	jv_free(cur);
	guard_unlock(fd);
	return r < 0 ? -1 : 0;
}

static const struct hm_lock_remote *remote_half;

void
hm_lock_set_remote(const struct hm_lock_remote *r)
{
	remote_half = r;
}

/* Give back the remote ref a record holds (remote borrowed); warnings only. */
static void
remote_give(jv remote)
{
	if (jv_get_kind(remote) != JV_KIND_OBJECT)
		return;
	if (!remote_half)
		hm_warn("%s was not released on the remote: this program takes no remote lock",
			HM_LOCK_REMOTE_REF);
	else
		remote_half->give(remote, remote_half->arg);
}

static void
remote_recover(void)
{
	if (remote_half && remote_half->recover)
		remote_half->recover(remote_half->arg);
}

static volatile sig_atomic_t stopped;

/* A signal while the remote half is taken: noted, and the taker told. */
static void
stop_remote(int sig)
{
	if (!stopped)
		stopped = sig;
	if (remote_half && remote_half->interrupt)
		remote_half->interrupt(sig, remote_half->arg);
}

/*
 * The remote half taken and recorded in state.lock: a remote ref that cannot
 * be recorded is given back.  HM_LOCK_REMOTE_* or -1.
 *
 * One step no signal cuts in two: a remote ref taken is always recorded (or
 * given back) before a handler may look at the record to release it.  A
 * signal meanwhile is noted and the taker stops: before its push nothing is
 * taken, from its push on it finishes and answers (remote_timeout bounds
 * that).  The signal then goes on down the chain.
 */
static int
remote_take(jv *rec, char **held_msg)
{
	int r;

	if (!remote_half) {
		hm_debug("no remote half: the lock is local only");
		return HM_LOCK_REMOTE_LOCAL;
	}
	stopped = 0;
	hm_sigchain_push_common(stop_remote);
	r = remote_half->take(rec, held_msg, &stopped, remote_half->arg);
	if (r == HM_LOCK_REMOTE_TAKEN && update_if(jv_copy(*rec)) < 0) {
		jv remote = jv_object_get(jv_copy(*rec), jv_string("remote"));

		remote_give(remote);
		jv_free(remote);
		r = -1;
	}
	hm_sigchain_pop_common();
	if (stopped)
		raise(stopped);
	return r;
}

/* Waiting for a held lock: retry_attempts more tries, retry_delay apart (doubling with backoff). */
struct retry {
	const struct hm_lock_config *cfg;
	double delay;
	long attempt;
};

/* 1 after sleeping when another try is due, 0 when the caller should give up. */
static int
retry_again(struct retry *rt, int wait, const char *holder)
{
	double s = rt->delay;
	struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };

	if (!wait || rt->attempt++ >= rt->cfg->retry_attempts)
		return 0;
	hm_debug("the lock is held by %s; retrying in %.3g s", holder, s);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	if (rt->cfg->retry_backoff)
		rt->delay *= 2;
	return 1;
}

/* The record req asks for, checked: never write what the next reader (another machine) refuses. */
static jv
checked_record(const struct hm_lock_request *req, const struct hm_lock_config *cfg)
{
	jv rec = new_record(req, cfg);
	char why[256];

	if (!jv_is_valid(rec)) {
		jv_free(rec);
		hm_fail(HM_EXIT_ENV);
		return jv_invalid();
	}
	if (hm_lock_record_check(rec, why, sizeof(why)) < 0) {
		jv_free(rec);
		hm_error("the lock record would be invalid: %s", why);
		hm_fail(HM_EXIT_USAGE);
		return jv_invalid();
	}
	return rec;
}

/* One try of both halves: TRY_OK, TRY_NESTED, TRY_HELD (*holder or *held_msg set), or -1. */
static int
try_both(jv *rec, const struct hm_lock_request *req, const struct hm_lock_config *cfg, jv *holder,
	 char **held_msg)
{
	sigset_t old;
	int r;

	/* The record written and its holder told, as one step for the holder's
	 * signal handler. */
	hm_sigchain_hold(&old);
	r = try_local(*rec, req, cfg, holder);
	if (r == TRY_OK && req->taken)
		req->taken(*rec, req->arg);
	hm_sigchain_release(&old);
	if (r != TRY_OK)
		return r;
	/*
	 * A dead hybrid holder of this host may have left the remote's lock:
	 * cleared now, unless this lock takes the remote right away (taking the
	 * ref takes a dead holder's over).
	 */
	if (dead_hybrid && (cfg->lock_type != HM_LOCK_HYBRID || req->local_first)) {
		dead_hybrid = 0;
		remote_recover();
	}
	if (cfg->lock_type != HM_LOCK_HYBRID || req->local_first)
		return TRY_OK;
	r = remote_take(rec, held_msg);
	if (r == HM_LOCK_REMOTE_TAKEN || r == HM_LOCK_REMOTE_LOCAL)
		return TRY_OK;
	/* The remote refused: give the local lock back. */
	remove_if(hm_json_str(*rec, "id"));
	if (r == HM_LOCK_REMOTE_HELD)
		return TRY_HELD;
	return r == HM_LOCK_REMOTE_CONFLICTS ? hm_fail(HM_EXIT_FOUND) : -1;
}

int
hm_lock_acquire(const struct hm_lock_request *req, jv *record)
{
	struct hm_lock_config cfg;
	struct retry rt = { &cfg, 0, 0 };
	jv rec, holder = jv_null();
	char *held_msg = NULL, now[32];
	int r;

	*record = jv_null();
	if (hm_config_load(&cfg) < 0)
		return -1;
	rec = checked_record(req, &cfg);
	if (!jv_is_valid(rec))
		return -1;
	if (cfg.lock_type == HM_LOCK_DISABLED) {
		if (!req->quiet_disabled) {
			fprintf(stderr, "%s Warning: State locking is disabled!\n",
				hm_mark(HM_MARK_WARN));
			fflush(stderr);
		}
		*record = rec;
		return 0;
	}
	rt.delay = cfg.retry_delay;
	for (;;) {
		jv_free(holder);
		holder = jv_null();
		free(held_msg);
		held_msg = NULL;
		r = try_both(&rec, req, &cfg, &holder, &held_msg);
		if (r != TRY_HELD)
			break;
		if (!retry_again(&rt, req->wait,
				 held_msg ? "another machine" : hm_json_str(holder, "operation")))
			break;
		/* The lock's time is when it is finally taken. */
		rec = jv_object_set(rec, jv_string("created_at"),
				    jv_string(hm_time_now_rfc3339(now)));
	}
	if (r == TRY_HELD) {
		if (held_msg)
			hm_pass_stderr(held_msg);
		else
			hm_lock_print_held(stderr, holder);
	}
	free(held_msg);
	jv_free(holder);
	if (r == TRY_OK) {
		*record = rec;
		return 0;
	}
	jv_free(rec);
	return r == TRY_NESTED ? 0 : r == TRY_HELD ? hm_fail(HM_EXIT_LOCKED) : -1;
}

int
hm_lock_acquire_remote(const char *id, int wait, int *taken)
{
	struct hm_lock_config cfg;
	struct retry rt = { &cfg, 0, 0 };
	char *held_msg = NULL;
	jv rec;
	int r, fd;

	*taken = 0;
	if (hm_config_load(&cfg) < 0)
		return -1;
	if (cfg.lock_type != HM_LOCK_HYBRID)
		return 0;
	if ((fd = guard_lock()) < 0)
		return -1;
	r = read_record(&rec, NULL, 0);
	guard_unlock(fd);
	if (r < 0)
		return -1;
	if (r == 0 || strcmp(hm_json_str(rec, "id"), id) != 0) {
		jv_free(rec);
		return hm_error("the lock %s is no longer held", id);
	}
	rt.delay = cfg.retry_delay;
	do {
		free(held_msg);
		held_msg = NULL;
		r = remote_take(&rec, &held_msg);
		if (r == HM_LOCK_REMOTE_TAKEN || r == HM_LOCK_REMOTE_LOCAL) {
			*taken = r == HM_LOCK_REMOTE_TAKEN;
			jv_free(rec);
			return 0;
		}
		if (r != HM_LOCK_REMOTE_HELD) {
			jv_free(rec);
			return r == HM_LOCK_REMOTE_CONFLICTS ? hm_fail(HM_EXIT_FOUND) : -1;
		}
	} while (retry_again(&rt, wait, "another machine"));
	hm_pass_stderr(held_msg);
	free(held_msg);
	jv_free(rec);
	return hm_fail(HM_EXIT_LOCKED);
}

int
hm_lock_release(const char *id)
{
	struct hm_lock_config cfg;
	jv cur, remote;
	int r, fd;

	if (hm_config_load(&cfg) < 0)
		return -1;
	fd = guard_lock();
	if (fd < 0)
		return -1;
	r = read_record(&cur, NULL, 0);
	if (r <= 0) {
		guard_unlock(fd);
		return r < 0 ? -1 : 1;
	}
	if (strcmp(hm_json_str(cur, "id"), id) != 0) {
		guard_unlock(fd);
		hm_error("the lock is held by another operation (%s, id %s); not released",
			 hm_json_str(cur, "operation"), hm_json_str(cur, "id"));
		jv_free(cur);
		return hm_fail(HM_EXIT_LOCKED);
	}
	remote = jv_object_get(jv_copy(cur), jv_string("remote"));
	jv_free(cur);
	set_tag(NULL);
	if (jv_get_kind(remote) != JV_KIND_OBJECT) {
		jv_free(remote);
		r = remove_record();
		guard_unlock(fd);
		return r;
	}
	/* The network part runs without the guard: only the holder changes its record. */
	guard_unlock(fd);
	remote_give(remote);
	jv_free(remote);
	r = remove_if(id);
	if (r == 2) {
		hm_error("the lock was taken over by another operation; not released");
		return hm_fail(HM_EXIT_LOCKED);
	}
	return r;
}

jv
hm_lock_info(void)
{
	struct hm_lock_config cfg;
	char why[256];
	int fd, r, alive;
	jv cur, m;
	long long age;

	if (hm_config_load(&cfg) < 0)
		return jv_invalid();
	fd = guard_lock();
	if (fd < 0)
		return jv_invalid();
	r = read_record(&cur, NULL, 0);
	guard_unlock(fd);
	if (r < 0)
		return jv_invalid();
	if (r == 0)
		return JV_OBJECT(jv_string("locked"), jv_false());
	int stale = hm_lock_assess(cur, &cfg, why, sizeof(why), &alive);

	age = record_age(cur);
	m = jv_object_get(jv_copy(cur), jv_string("machine"));
	cur = jv_object_set(cur, jv_string("locked"), jv_true());
	cur = jv_object_set(cur, jv_string("stale"), jv_bool(stale));
	cur = jv_object_set(cur, jv_string("stale_reason"), why[0] ? jv_string(why) : jv_null());
	cur = jv_object_set(cur, jv_string("age_seconds"), jv_number((double)age));
	cur = jv_object_set(cur, jv_string("holder_alive"), alive < 0 ? jv_null() : jv_bool(alive));
	cur = jv_object_set(
		cur, jv_string("mine"),
		jv_bool(alive == 1 && hm_lock_is_ancestor((pid_t)hm_json_int(m, "pid", 0))));
	jv_free(m);
	return cur;
}

int
hm_lock_unlock_force(const char *id, jv *removed)
{
	struct hm_lock_config cfg;
	char *text = NULL;
	int fd, r;
	jv cur, remote;

	*removed = jv_null();
	if (hm_config_load(&cfg) < 0)
		return -1;
	fd = guard_lock();
	if (fd < 0)
		return -1;
	r = read_record(&cur, &text, 1);
	if (r == 0) {
		guard_unlock(fd);
		return 0;
	}
	if (r < 0 && hm_last_code() != HM_EXIT_USAGE) {
		guard_unlock(fd);
		free(text);
		return -1;
	}
	if (id && (r < 0 || strcmp(hm_json_str(cur, "id"), id) != 0)) {
		hm_error("the lock is %s, not %s; not removed",
			 r < 0 ? "corrupt" : hm_json_str(cur, "id"), id);
		jv_free(cur);
		free(text);
		guard_unlock(fd);
		return hm_fail(HM_EXIT_LOCKED);
	}
	if (remove_record() < 0) {
		jv_free(cur);
		free(text);
		guard_unlock(fd);
		return -1;
	}
	guard_unlock(fd);
	if (r < 0) {
		*removed = JV_OBJECT(jv_string("corrupt"), jv_true(), jv_string("text"),
				     jv_string(text ? text : ""));
		free(text);
		return 0;
	}
	free(text);
	remote = jv_object_get(jv_copy(cur), jv_string("remote"));
	if (jv_get_kind(remote) == JV_KIND_OBJECT)
		remote_give(remote);
	else if (hm_json_str(cur, "lock_type") &&
		 strcmp(hm_json_str(cur, "lock_type"), "hybrid") == 0)
		remote_recover(); /* it may have died while taking the remote's */
	jv_free(remote);
	*removed = cur;
	return 0;
}
