/*
 * heimdal-lock - take, release, inspect and break the state lock.
 *
 *   heimdal-lock acquire --op OP [--reason R] [--expected-duration S] [--pid PID] [--wait]
 *   heimdal-lock release [--id ID]          (or the record on stdin)
 *   heimdal-lock info
 *   heimdal-lock unlock --force [--id ID]
 *   heimdal-lock run --op OP [--wait] -- CMD [ARGS...]
 *
 * The lock logic lives in libcommon (hm_lock); the remote half runs in
 * heimdal-rlock.  This tool is the command line.  Records go to stdout as JSON; people's text to
 * stderr.
 */
#include "hm_error.h"
#include "hm_json.h"
#include "hm_lock.h"
#include "hm_sigchain.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static _Noreturn void
usage(FILE *f, int code)
{
	fprintf(f,
		"usage: heimdal-lock acquire --op OP [--reason R] [--expected-duration S]\n"
		"                            [--pid PID] [--wait] [-c]\n"
		"       heimdal-lock release [--id ID]      (without --id: the record on stdin)\n"
		"       heimdal-lock info [-c]\n"
		"       heimdal-lock unlock --force [--id ID] [-c]\n"
		"       heimdal-lock run --op OP [--reason R] [--expected-duration S] [--wait]\n"
		"                        -- CMD [ARGS...]\n"
		"\n"
		"Take, release, inspect or break the heimdal state lock ($HEIMDAL_HOME/state.lock,\n"
		"and refs/heimdal/lock on the dotfiles remote when lock_type is Hybrid).\n"
		"\n"
		"  -o, --op OP                 the operation recorded in the lock\n"
		"  -r, --reason R              why (default: \"OP by heimdal\")\n"
		"  -d, --expected-duration S   seconds the operation should take (default: timeout)\n"
		"  -p, --pid PID               the holder (acquire; default: the calling process)\n"
		"  -w, --wait                  retry while locked, as lock_config.json's retry says\n"
		"  -i, --id ID                 the lock id (release, unlock)\n"
		"  -f, --force                 required by unlock\n"
		"  -c, --compact               compact JSON\n"
		"  -v, --verbose               debug messages on stderr\n"
		"  -h, --help                  show this help\n");
	exit(code);
}

struct opts {
	struct hm_lock_request req;
	const char *id;
	int force, compact;
};

static long
number(const char *flag, const char *s, long min)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(s, &end, 10);
	if (errno || end == s || *end || n < min)
		hm_die(HM_EXIT_USAGE, "%s: expected an integer of at least %ld, got '%s'", flag,
		       min, s);
	return n;
}

static void
print(jv v, const struct opts *o)
{
	if (hm_json_write(stdout, v, o->compact ? HM_JSON_COMPACT : HM_JSON_PRETTY) < 0 ||
	    fflush(stdout) != 0)
		hm_die_errno(HM_EXIT_ENV, "stdout");
}

static int
cmd_acquire(struct opts *o)
{
	jv rec;

	if (!o->req.operation)
		hm_die(HM_EXIT_USAGE, "acquire: --op is required");
	/* The lock lives for the caller (a script), not for this short process. */
	if (!o->req.pid)
		o->req.pid = getppid();
	else if (kill(o->req.pid, 0) < 0 && errno == ESRCH)
		hm_die(HM_EXIT_USAGE, "--pid: no process %ld", (long)o->req.pid);
	if (hm_lock_acquire(&o->req, &rec) < 0)
		return hm_last_code();
	print(rec, o);
	return 0;
}

static int
cmd_release(struct opts *o)
{
	const char *id = o->id;
	jv rec = jv_null();
	int r;

	if (!id) {
		int ioerr;

		if (isatty(0))
			hm_die(HM_EXIT_USAGE, "release: pass --id ID or the lock record on stdin");
		rec = hm_json_read_file("-", &ioerr);
		if (!jv_is_valid(rec)) {
			jv msg = jv_invalid_get_msg(rec);

			hm_die(ioerr ? HM_EXIT_ENV : HM_EXIT_USAGE, "%s", jv_string_value(msg));
		}
		id = hm_json_str(rec, "id");
		if (!id)
			hm_die(HM_EXIT_USAGE, "<stdin>: .id: expected the lock record's id");
	}
	r = hm_lock_release(id);
	if (r == 1)
		hm_warn("the state is not locked; nothing to release");
	jv_free(rec);
	return r < 0 ? hm_last_code() : 0;
}

static int
cmd_unlock(struct opts *o)
{
	jv removed;

	if (!o->force)
		hm_die(HM_EXIT_USAGE, "unlock: refusing without --force (only use it when the "
				      "lock is stale; see 'heimdal-lock info')");
	if (hm_lock_unlock_force(o->id, &removed) < 0)
		return hm_last_code();
	print(removed, o);
	return 0;
}

static int
cmd_info(struct opts *o)
{
	jv info = hm_lock_info();

	if (!jv_is_valid(info)) {
		jv_free(info);
		return hm_last_code();
	}
	print(info, o);
	return 0;
}

static pid_t child;

static void
forward(int sig)
{
	if (child > 0)
		kill(child, sig);
}

/* Hold the lock exactly while CMD runs; exit with its status. */
static int
cmd_run(struct opts *o, char **cmd)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };
	sigset_t block, old;
	pid_t parent = getpid();
	const char *id;
	int st;
	jv rec;

	if (!o->req.operation)
		hm_die(HM_EXIT_USAGE, "run: --op is required");
	if (!cmd[0])
		hm_die(HM_EXIT_USAGE, "run: no command given (heimdal-lock run --op OP -- CMD)");
	o->req.pid = parent;
	if (hm_lock_acquire(&o->req, &rec) < 0)
		return hm_last_code();
	id = hm_json_str(rec, "id");
	/* Signals wait until the child exists, then go to it. */
	sigemptyset(&block);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&block, sigs[i]);
	sigprocmask(SIG_BLOCK, &block, &old);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		hm_sigchain_push(sigs[i], forward);
	fflush(NULL);
	child = fork();
	if (child < 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		hm_error_errno("fork");
		if (strcmp(hm_json_str(rec, "lock_type"), "disabled") != 0)
			hm_lock_release(id);
		return HM_EXIT_ENV;
	}
	if (child == 0) {
		/* If run is killed, CMD must not go on unguarded. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(HM_EXIT_LOCKED);
		/* CMD starts with the dispositions and mask run started with. */
		hm_sigchain_child();
		execvp(cmd[0], cmd);
		hm_error_errno("%s", cmd[0]);
		_exit(errno == ENOENT ? 127 : 126);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	while (waitpid(child, &st, 0) < 0)
		if (errno != EINTR) {
			st = 0;
			break;
		}
	child = 0; /* reaped: its pid may be another's now */
	if (strcmp(hm_json_str(rec, "lock_type"), "disabled") != 0)
		hm_lock_release(id);
	jv_free(rec);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "op", required_argument, NULL, 'o' },
		{ "reason", required_argument, NULL, 'r' },
		{ "expected-duration", required_argument, NULL, 'd' },
		{ "pid", required_argument, NULL, 'p' },
		{ "wait", no_argument, NULL, 'w' },
		{ "id", required_argument, NULL, 'i' },
		{ "force", no_argument, NULL, 'f' },
		{ "compact", no_argument, NULL, 'c' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .req = { 0 } };
	const char *verb;
	sigset_t held;
	int c, i;

	/*
	 * A release, once begun, runs to its end (the remote part is bounded by
	 * remote_timeout): the signals that end a process wait from the first
	 * instruction, and the process exits with them pending.  A holder
	 * killed mid-way runs this too.
	 */
	for (i = 1; i < argc && argv[i][0] == '-'; i++)
		;
	if (i < argc && strcmp(argv[i], "release") == 0)
		hm_sigchain_hold(&held);
	hm_error_init(argv[0]);
	while (argc > 1 && (!strcmp(argv[1], "-v") || !strcmp(argv[1], "--verbose"))) {
		hm_set_verbose();
		argc--;
		argv++;
	}
	if (argc < 2)
		usage(stderr, HM_EXIT_USAGE);
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))
		usage(stdout, 0);
	verb = argv[1];
	argc--;
	argv++;
	/* "+": run's command starts at the first non-option (or after --). */
	while ((c = getopt_long(argc, argv, "+o:r:d:p:wi:fcvh", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			if (!*optarg)
				hm_die(HM_EXIT_USAGE, "--op: must not be empty");
			o.req.operation = optarg;
			break;
		case 'r':
			o.req.reason = optarg;
			break;
		case 'd':
			o.req.expected_duration = number("--expected-duration", optarg, 1);
			break;
		case 'p':
			o.req.pid = (pid_t)number("--pid", optarg, 1);
			break;
		case 'w':
			o.req.wait = 1;
			break;
		case 'i':
			o.id = optarg;
			break;
		case 'f':
			o.force = 1;
			break;
		case 'c':
			o.compact = 1;
			break;
		case 'v':
			hm_set_verbose();
			break;
		case 'h':
			usage(stdout, 0);
		default:
			usage(stderr, HM_EXIT_USAGE);
		}
	}
	if (strcmp(verb, "run") == 0)
		return cmd_run(&o, argv + optind);
	if (optind < argc)
		hm_die(HM_EXIT_USAGE, "unexpected argument '%s'", argv[optind]);
	if (strcmp(verb, "acquire") == 0)
		return cmd_acquire(&o);
	if (strcmp(verb, "release") == 0)
		return cmd_release(&o);
	if (strcmp(verb, "info") == 0)
		return cmd_info(&o);
	if (strcmp(verb, "unlock") == 0)
		return cmd_unlock(&o);
	hm_error("unknown command '%s'", verb);
	usage(stderr, HM_EXIT_USAGE);
}
