/*
 * heimdal-lineage - record a write of the state, or say how two states relate.
 *
 *   heimdal-lineage bump --op OP [--git-commit SHA] [--above N]   state on stdin
 *   heimdal-lineage compare [--local FILE --remote FILE [--base FILE]]
 *
 * bump is what every writer of the state calls, so that serials only grow and
 * every write leaves a history entry.  --above is for a write that settles
 * two states: its serial must be new to both sides.  compare prints the relation document
 * and exits 1 when the states diverged or are unrelated.
 */
#include "hm_error.h"
#include "hm_opt.h"
#include "hm_json.h"
#include "hm_lineage.h"
#include "hm_machine.h"
#include "hm_state.h"
#include "hm_time.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The usage line under an option error. */
#define USAGE_LINE                                                                                 \
	"heimdal-lineage (bump --op OP [--git-commit SHA] [--above N] [FILE] | compare [--local FILE --remote FILE [--base FILE]]) [-c]"

static _Noreturn void
usage(FILE *f, int code)
{
	fprintf(f,
		"usage: heimdal-lineage bump --op OP [--git-commit SHA] [--above N] [-c] [FILE]\n"
		"       heimdal-lineage compare [--local FILE --remote FILE [--base FILE]] [-c]\n"
		"\n"
		"bump:    record a write of the state (FILE or stdin): parent_serial = serial,\n"
		"         serial + 1, this machine joins lineage.machines, a history entry is\n"
		"         appended (newest %d kept); prints the new state.\n"
		"compare: how local relates to remote ({\"local\": S, \"remote\": S, \"base\": S}\n"
		"         on stdin, base optional, or the files): equal, ahead, behind\n"
		"         (exit 0), diverged or unrelated (exit 1).\n"
		"\n"
		"  -o, --op OP       the operation to record (apply, sync, resolve, ...)\n"
		"  --git-commit SHA  record SHA as lineage.git_commit\n"
		"  --above N         the new serial is above N as well (a resolution)\n"
		"  --local FILE      the local state (compare)\n"
		"  --remote FILE     the remote state (compare)\n"
		"  --base FILE       the state at the git merge base (compare)\n"
		"  -c, --compact     print compact JSON (one line)\n"
		"  -h, --help        show this help\n",
		HM_HISTORY_MAX);
	exit(code);
}

static int
valid_sha(const char *s)
{
	size_t n = strlen(s);

	return n >= 4 && n <= 64 && strspn(s, "0123456789abcdef") == n;
}

/* lineage.machines with id appended when it is not there yet (consumes ms). */
static jv
join_machine(jv ms, const char *id)
{
	jv_array_foreach(ms, i, m)
	{
		int have = strcmp(jv_string_value(m), id) == 0;

		jv_free(m);
		if (have)
			return ms;
	}
	return jv_array_append(ms, jv_string(id));
}

/* The newest HM_HISTORY_MAX entries of h (consumed). */
static jv
cap_history(jv h)
{
	int n = jv_array_length(jv_copy(h));

	if (n <= HM_HISTORY_MAX)
		return h;
	return jv_array_slice(h, n - HM_HISTORY_MAX, n);
}

static jv
bump(jv s, const char *op, const char *sha, long long above)
{
	jv l = jv_object_get(jv_copy(s), jv_string("lineage"));
	long long parent = hm_json_int(l, "serial", 0);
	long long serial = (parent > above ? parent : above) + 1;
	const char *id = hm_machine_id();
	char now[32];
	jv h, entry;

	if (!id || hm_machine_check() < 0) {
		jv_free(l);
		jv_free(s);
		exit(id ? hm_last_code() : HM_EXIT_ENV);
	}
	/* Serials are JSON numbers, exact up to 2^53; a state holds at most HM_SERIAL_MAX. */
	if (serial > HM_SERIAL_MAX) {
		jv_free(l);
		jv_free(s);
		hm_die(HM_EXIT_USAGE, ".lineage.serial: cannot grow past %lld", HM_SERIAL_MAX);
	}
	hm_time_now_rfc3339(now);
	l = jv_object_set(l, jv_string("parent_serial"), jv_number(parent));
	l = jv_object_set(l, jv_string("serial"), jv_number(serial));
	if (sha)
		l = jv_object_set(l, jv_string("git_commit"), jv_string(sha));
	l = jv_object_set(l, jv_string("machines"),
			  join_machine(jv_object_get(jv_copy(l), jv_string("machines")), id));
	entry = JV_OBJECT(jv_string("operation"), jv_string(op), jv_string("timestamp"),
			  jv_string(now), jv_string("machine_id"), jv_string(id), jv_string("user"),
			  jv_string(hm_machine_user()), jv_string("hostname"),
			  jv_string(hm_machine_hostname()));
	entry = jv_object_set(entry, jv_string("serial"), jv_number(serial));
	h = jv_object_get(jv_copy(s), jv_string("history"));
	/* Drop our references inside s first so the arrays are changed in place. */
	s = jv_object_delete(s, jv_string("history"));
	s = jv_object_delete(s, jv_string("lineage"));
	s = jv_object_set(s, jv_string("lineage"), l);
	s = jv_object_set(s, jv_string("history"), cap_history(jv_array_append(h, entry)));
	s = jv_object_set(s, jv_string("heimdal_version"), jv_string(HM_VERSION));
	return hm_state_canonical(s);
}

static jv
read_state(const char *path)
{
	char *err = NULL;
	int ioerr, version;
	jv s = hm_json_read_file(path, &ioerr);

	if (!jv_is_valid(s)) {
		jv msg = jv_invalid_get_msg(s);

		hm_die(ioerr ? HM_EXIT_ENV : HM_EXIT_USAGE, "%s", jv_string_value(msg));
	}
	version = hm_state_version_of(s, &err);
	if (version < 0 || hm_state_validate(s, &err) < 0)
		hm_die(HM_EXIT_USAGE, "%s: %s", hm_json_source_name(path), err);
	return s;
}

struct lineage_opts {
	const char *op, *sha, *above_arg;
	const char *lpath, *rpath, *bpath;
	int flags; /* HM_JSON_COMPACT or HM_JSON_PRETTY */
};

/* The options into o; exits on bad usage and after --help. */
static void
lineage_options(int argc, char **argv, struct lineage_opts *o)
{
	static const struct option opts[] = {
		{ "op", required_argument, NULL, 'o' },
		{ "git-commit", required_argument, NULL, 'g' },
		{ "above", required_argument, NULL, 'a' },
		{ "local", required_argument, NULL, 'l' },
		{ "remote", required_argument, NULL, 'r' },
		{ "base", required_argument, NULL, 'b' },
		{ "compact", no_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	o->flags = HM_JSON_PRETTY;
	while ((c = hm_opt_next(argc, argv, "o:ch", opts, USAGE_LINE)) != -1) {
		switch (c) {
		case 'o':
			o->op = optarg;
			break;
		case 'g':
			o->sha = optarg;
			break;
		case 'a':
			o->above_arg = optarg;
			break;
		case 'l':
			o->lpath = optarg;
			break;
		case 'r':
			o->rpath = optarg;
			break;
		case 'b':
			o->bpath = optarg;
			break;
		case 'c':
			o->flags = HM_JSON_COMPACT;
			break;
		case 'h':
			usage(stdout, 0);
		}
	}
}

/* --above's serial, or -1 when not given; exits when it is not a serial. */
static long long
above_of(const char *arg)
{
	long long above;
	char *end;

	if (!arg)
		return -1;
	errno = 0;
	above = strtoll(arg, &end, 10);
	if (errno || end == arg || *end || above < 0 || above > HM_SERIAL_MAX ||
	    !isdigit((unsigned char)*arg))
		hm_die(HM_EXIT_USAGE, "--above: not a serial: '%s'", arg);
	return above;
}

/* out (consumed) on stdout; exits when it cannot be written. */
static void
write_out(jv out, int flags)
{
	if (hm_json_write(stdout, out, flags) < 0 || fflush(stdout) != 0)
		hm_die_errno(HM_EXIT_ENV, "stdout");
}

/* heimdal-lineage bump [FILE]: args are the operands after the verb. */
static int
verb_bump(const struct lineage_opts *o, int argc, char **argv)
{
	long long above;
	jv out;

	if (o->lpath || o->rpath || o->bpath)
		hm_die(HM_EXIT_USAGE, "%s: only for compare",
		       o->lpath   ? "--local"
		       : o->rpath ? "--remote"
				  : "--base");
	if (!o->op)
		hm_die(HM_EXIT_USAGE, "bump: --op is required");
	if (!hm_opt_is_word(o->op, 64))
		hm_die(HM_EXIT_USAGE, "--op: not an operation name: '%s'", o->op);
	if (o->sha && !valid_sha(o->sha))
		hm_die(HM_EXIT_USAGE, "--git-commit: not a commit id (lowercase hex): '%s'",
		       o->sha);
	if (argc > 1)
		usage(stderr, HM_EXIT_USAGE);
	above = above_of(o->above_arg);
	out = bump(read_state(argc > 0 ? argv[0] : "-"), o->op, o->sha, above);
	if (hm_state_check_output(out, "bump") < 0)
		exit(hm_last_code());
	write_out(out, o->flags);
	return 0;
}

/* heimdal-lineage compare: no operand. */
static int
verb_compare(const struct lineage_opts *o, int argc)
{
	struct hm_pair p;
	struct hm_lineage_cmp cmp;

	if (o->op || o->sha || o->above_arg)
		hm_die(HM_EXIT_USAGE, "%s: only for bump",
		       o->op    ? "--op"
		       : o->sha ? "--git-commit"
				: "--above");
	if (argc > 0)
		usage(stderr, HM_EXIT_USAGE);
	if (hm_pair_read(o->lpath, o->rpath, o->bpath, 0, &p) < 0)
		exit(hm_last_code());
	hm_lineage_compare(p.local, p.remote, p.base, &cmp);
	hm_pair_free(&p);
	write_out(hm_lineage_cmp_json(&cmp), o->flags);
	return cmp.relation >= HM_REL_DIVERGED ? HM_EXIT_FOUND : HM_EXIT_OK;
}

int
main(int argc, char **argv)
{
	struct lineage_opts o = { 0 };
	const char *verb;

	hm_error_init(argv[0]);
	lineage_options(argc, argv, &o);
	if (optind >= argc)
		usage(stderr, HM_EXIT_USAGE);
	verb = argv[optind++];
	if (strcmp(verb, "bump") == 0)
		return verb_bump(&o, argc - optind, argv + optind);
	if (strcmp(verb, "compare") == 0)
		return verb_compare(&o, argc - optind);
	hm_error("unknown command '%s' (bump or compare)", verb);
	usage(stderr, HM_EXIT_USAGE);
}
