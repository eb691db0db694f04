/*
 * heimdal-rlock - the remote half of the hybrid lock: refs/heimdal/lock on
 * the origin of the dotfiles repository named by --repository.
 *
 *   heimdal-rlock acquire --repository DIR [--state FILE] [RECORD]
 *                                  the lock record (RECORD or stdin) -> {"remote": ...}
 *   heimdal-rlock release [REMOTE] the record's "remote" object -> {"released": bool,
 *                                  "result": "released"|"not_held"|"held_by_other"}
 *   heimdal-rlock recover --repository DIR
 *                                  remove the ref when it holds a lock of this host
 *                                  whose holder died -> {"recovered": bool, "holder"}
 *
 * The work is libcommon's hm_rlock; this is its command line, which
 * heimdal-lock runs after taking the local lock so that a local lock never
 * loads libgit2.  With --state, origin is fetched first and the state FILE is
 * compared with the remote's: conflicts refuse the lock (exit 1, listed on
 * stderr).  Everything it works on is named on its command line or stdin.
 */
#include "hm_config.h"
#include "hm_error.h"
#include "hm_opt.h"
#include "hm_json.h"
#include "hm_lock.h"
#include "hm_rlock.h"
#include "hm_sigchain.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The usage line under an option error. */
#define USAGE_LINE "heimdal-rlock (acquire | release | recover) [--repository DIR] [-c] [FILE]"

static _Noreturn void
usage(FILE *f, int code)
{
	fprintf(f,
		"usage: heimdal-rlock acquire --repository DIR [--state FILE] [-c] [RECORD]\n"
		"       heimdal-rlock release [-c] [REMOTE]\n"
		"       heimdal-rlock recover --repository DIR [-c]\n"
		"\n"
		"Take or release refs/heimdal/lock on the origin of the dotfiles repository\n"
		"DIR.  acquire reads a lock record and prints {\"remote\": ...} (null when the\n"
		"lock stays local); with --state, the state FILE is compared with the remote's\n"
		"first and conflicts refuse the lock (exit 1).  release reads the record's\n"
		"\"remote\" object and prints {\"released\": bool, \"result\": \"released\"|\n"
		"\"not_held\"|\"held_by_other\"} (exit 0, 1, 4); recover removes the ref when it\n"
		"holds a lock of this machine whose process died.  Usually run by heimdal-lock.\n"
		"\n"
		"      --repository DIR   the dotfiles repository (acquire, recover)\n"
		"      --state FILE       the local state to compare with the remote's (acquire)\n"
		"  -c, --compact          compact JSON\n"
		"  -v, --verbose          debug messages on stderr\n"
		"  -h, --help             show this help\n");
	exit(code);
}

struct opts {
	const char *verb, *input, *repository, *state;
	int compact;
};

static void
parse(int argc, char **argv, struct opts *o)
{
	static const struct option opts[] = {
		{ "repository", required_argument, NULL, 'R' },
		{ "state", required_argument, NULL, 'S' },
		{ "compact", no_argument, NULL, 'c' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while (argc > 1 && (!strcmp(argv[1], "-v") || !strcmp(argv[1], "--verbose"))) {
		hm_set_verbose();
		argc--;
		argv++;
	}
	if (argc < 2)
		usage(stderr, HM_EXIT_USAGE);
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))
		usage(stdout, 0);
	o->verb = argv[1];
	if (strcmp(o->verb, "acquire") != 0 && strcmp(o->verb, "release") != 0 &&
	    strcmp(o->verb, "recover") != 0) {
		hm_error("unknown command '%s'", o->verb);
		usage(stderr, HM_EXIT_USAGE);
	}
	argc--;
	argv++;
	while ((c = hm_opt_next(argc, argv, "cvh", opts, USAGE_LINE)) != -1) {
		switch (c) {
		case 'R':
			o->repository = optarg;
			break;
		case 'S':
			o->state = optarg;
			break;
		case 'c':
			o->compact = 1;
			break;
		case 'v':
			hm_set_verbose();
			break;
		case 'h':
			usage(stdout, 0);
		}
	}
	if (argc - optind > (strcmp(o->verb, "recover") ? 1 : 0))
		hm_opt_die(USAGE_LINE, "%s: unexpected argument '%s'", o->verb, argv[argc - 1]);
	o->input = argc - optind == 1 ? argv[optind] : "-";
	if (strcmp(o->verb, "release") == 0 ? o->repository != NULL : o->repository == NULL)
		hm_opt_die(USAGE_LINE, "%s: --repository %s", o->verb,
			   o->repository ? "is not taken (the remote object names it)"
					 : "DIR is required");
	if (o->state && strcmp(o->verb, "acquire") != 0)
		hm_opt_die(USAGE_LINE, "%s: --state is taken by acquire only", o->verb);
}

static volatile sig_atomic_t stopped;

/* A signal while the remote lock is taken: noted (the worker is stopped). */
static void
note_signal(int sig)
{
	if (!stopped)
		stopped = sig;
}

/* acquire: the exit status; *out the answer. */
static int
acquire(const struct opts *o, const struct hm_lock_config *cfg, jv *out)
{
	jv rec = hm_json_read_object(o->input, "a lock record"), local = jv_null(), holder;
	sigset_t held;
	char why[256];
	int r;

	/* Never publish what another machine cannot read: one bad record would
	 * lock every machine out, or (read as garbage) none. */
	if (hm_lock_record_check(rec, why, sizeof(why)) < 0) {
		jv_free(rec);
		hm_die(HM_EXIT_USAGE, "%s: %s", hm_json_source_name(o->input), why);
	}
	if (o->state)
		local = hm_json_read_object(o->state, "a state");
	hm_sigchain_push_common(note_signal);
	r = hm_rlock_acquire(o->repository, &rec, local, o->state, cfg, &holder, &stopped);
	/* A ref taken is answered whatever comes: held off until exit. */
	hm_sigchain_hold(&held);
	hm_sigchain_pop_common();
	jv_free(local);
	if (stopped && r != HM_LOCK_REMOTE_TAKEN) {
		hm_sigchain_release(&held);
		raise(stopped);
	}
	if (r == HM_LOCK_REMOTE_HELD)
		hm_rlock_print_held(stderr, holder, cfg);
	jv_free(holder);
	if (r == HM_LOCK_REMOTE_HELD || r == HM_LOCK_REMOTE_CONFLICTS || r < 0) {
		jv_free(rec);
		return r < 0                      ? hm_last_code()
		       : r == HM_LOCK_REMOTE_HELD ? HM_EXIT_LOCKED
						  : HM_EXIT_FOUND;
	}
	*out = JV_OBJECT(jv_string("remote"), r == HM_LOCK_REMOTE_TAKEN
						      ? jv_object_get(rec, jv_string("remote"))
						      : (jv_free(rec), jv_null()));
	return 0;
}

int
main(int argc, char **argv)
{
	struct opts o = { 0 };
	struct hm_lock_config cfg;
	sigset_t held;
	int status = 0;
	jv out = jv_invalid();

	/*
	 * A release, once begun, runs to its end (its worker inherits this,
	 * remote_timeout bounds it): the signals that end a process wait from
	 * the first instruction, and the process exits with them pending.
	 */
	if (argc > 1 && strcmp(argv[1], "release") == 0)
		hm_sigchain_hold(&held);
	hm_error_init(argv[0]);
	parse(argc, argv, &o);
	if (hm_config_load(&cfg) < 0)
		return hm_last_code();
	if (strcmp(o.verb, "recover") == 0) {
		if (hm_rlock_recover(o.repository, &cfg, &out) < 0)
			return hm_last_code();
	} else if (strcmp(o.verb, "release") == 0) {
		jv in = hm_json_read_object(o.input, "the lock record's \"remote\" object");

		if (!hm_json_str(in, "repository") || !hm_json_str(in, "commit")) {
			jv_free(in);
			hm_die(HM_EXIT_USAGE,
			       "%s: .repository, .commit: expected the lock record's "
			       "\"remote\" object",
			       hm_json_source_name(o.input));
		}
		status = hm_rlock_release(in, &cfg, &out);
		jv_free(in);
		if (status < 0)
			return hm_last_code();
	} else if ((status = acquire(&o, &cfg, &out)) != 0) {
		return status;
	}
	if (hm_json_write(stdout, out, o.compact ? HM_JSON_COMPACT : HM_JSON_PRETTY) < 0 ||
	    fflush(stdout) != 0)
		hm_die_errno(HM_EXIT_ENV, "stdout");
	return status;
}
