/*
 * heimdal-lock - take, release, inspect and break the state lock.
 *
 *   heimdal-lock acquire --op OP [--reason R] [--expected-duration S] [--pid PID] [--wait]
 *   heimdal-lock release [--id ID]          (or the record on stdin)
 *   heimdal-lock info
 *   heimdal-lock unlock --force [--id ID]
 *   heimdal-lock run --op OP [--wait] -- CMD [ARGS...]
 *
 * The lock logic lives in libcommon (hm_lock); the remote half of a Hybrid
 * lock is heimdal-rlock's, run here on the dotfiles repository of the state
 * --state names (without --state the lock is local only), so that taking a
 * local lock never loads libgit2.  This tool is the command line.  Records
 * go to stdout as JSON; people's text to stderr.
 */
#include "hm_error.h"
#include "hm_opt.h"
#include "hm_json.h"
#include "hm_lock.h"
#include "hm_machine.h"
#include "hm_sigchain.h"
#include "hm_spawn.h"
#include "hm_state.h"

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
		"                            [--pid PID] [--wait] [--state FILE]\n"
		"                            [--no-conflict-check] [-c]\n"
		"       heimdal-lock release [--id ID]      (without --id: the record on stdin)\n"
		"       heimdal-lock info [-c]\n"
		"       heimdal-lock unlock --force [--id ID] [--state FILE] [-c]\n"
		"       heimdal-lock run --op OP [--reason R] [--expected-duration S] [--wait]\n"
		"                        [--state FILE] [--no-conflict-check] -- CMD [ARGS...]\n"
		"\n"
		"Take, release, inspect or break the heimdal state lock ($HEIMDAL_HOME/state.lock,\n"
		"and refs/heimdal/lock on the dotfiles remote when lock_type is Hybrid).\n"
		"\n"
		"  -o, --op OP                 the operation recorded in the lock\n"
		"      --reason R              why (default: \"OP by heimdal\")\n"
		"  -d, --expected-duration S   seconds the operation should take (default: timeout)\n"
		"      --pid PID               the holder (acquire; default: the calling process)\n"
		"  -w, --wait                  retry while locked, as lock_config.json's retry says\n"
		"  -i, --id ID                 the lock id (release, unlock)\n"
		"      --state FILE            the state: its serial is recorded, its dotfiles\n"
		"                              repository's origin holds the Hybrid remote half,\n"
		"                              and it is compared with the remote's state first\n"
		"      --no-conflict-check     take the remote half without that comparison\n"
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

/*
 * The remote half, through heimdal-rlock on the repository of the state
 * named by --state (the state itself passed on for the conflict check unless
 * --no-conflict-check).  Its stderr is held back so that a "locked" message
 * is shown only if we finally give up (*held_msg).
 */
static struct {
	char *repository;
	const char *state; /* NULL: no conflict check */
} half;

/* heimdal-rlock acquire's answer (p), HM_LOCK_REMOTE_* or -1. */
static int
take_answer(struct hm_proc *p, jv *rec, char **held_msg)
{
	jv out, remote;

	switch (p->status) {
	case HM_EXIT_OK:
		hm_pass_stderr(p->err);
		out = hm_json_parse("output of heimdal-rlock", p->out, p->out_len);
		if (!jv_is_valid(out)) {
			jv msg = jv_invalid_get_msg(out);
			int r = hm_error("%s", jv_string_value(msg));

			jv_free(msg);
			return r;
		}
		remote = jv_object_get(out, jv_string("remote"));
		if (jv_get_kind(remote) != JV_KIND_OBJECT) {
			jv_free(remote);
			return HM_LOCK_REMOTE_LOCAL;
		}
		*rec = jv_object_set(*rec, jv_string("remote"), remote);
		return HM_LOCK_REMOTE_TAKEN;
	case HM_EXIT_LOCKED:
		*held_msg = p->err;
		p->err = NULL;
		return HM_LOCK_REMOTE_HELD;
	case HM_EXIT_FOUND:
		hm_pass_stderr(p->err);
		return HM_LOCK_REMOTE_CONFLICTS;
	default:
		hm_pass_stderr(p->err);
		return hm_fail(p->status == HM_EXIT_USAGE ? HM_EXIT_USAGE : HM_EXIT_ENV);
	}
}

static int
remote_take(jv *rec, char **held_msg, volatile sig_atomic_t *stopped, void *arg)
{
	char *argv[] = { "heimdal-rlock",
			 "acquire",
			 "-c",
			 "--repository",
			 half.repository,
			 half.state ? "--state" : NULL,
			 (char *)half.state,
			 NULL };
	struct hm_proc p;
	size_t len;
	char *in;
	int r;

	(void)stopped;
	(void)arg;
	if (!half.repository) {
		hm_debug("no --state names a dotfiles repository: the lock is local only");
		return HM_LOCK_REMOTE_LOCAL;
	}
	in = hm_json_dump(jv_copy(*rec), HM_JSON_COMPACT, &len);
	r = hm_spawn("rlock", argv, in, len, HM_SPAWN_CAPTURE_ERR, &p);
	free(in);
	if (r < 0) {
		hm_warn("the lock is local only");
		return HM_LOCK_REMOTE_LOCAL;
	}
	r = take_answer(&p, rec, held_msg);
	hm_proc_free(&p);
	return r;
}

/* A signal while heimdal-rlock runs: it is told to stop, and answers first. */
static void
remote_interrupt(int sig, void *arg)
{
	pid_t rlock = hm_spawn_running();

	(void)sig;
	(void)arg;
	if (rlock > 0)
		kill(rlock, SIGTERM);
}

/*
 * heimdal-rlock release says what happened: released (0), not held (1),
 * held by another lock (4: ours went stale and was taken over), or the
 * remote could not be reached (3, its warning printed).  It holds the
 * signals off from its first instruction; one that came before (a Ctrl-C as
 * it started) is met by running it again.
 */
static void
remote_give(jv remote, void *arg)
{
	char *argv[] = { "heimdal-rlock", "release", "-c", NULL };
	struct hm_proc p;
	size_t len;
	char *in = hm_json_dump(jv_copy(remote), HM_JSON_COMPACT, &len);
	int killed = 1;

	(void)arg;
	for (int attempt = 0; killed && attempt < 3; attempt++) {
		if (hm_spawn("rlock", argv, in, len, 0, &p) < 0)
			break;
		killed = p.status > 128;
		if (p.status == HM_EXIT_FOUND || p.status == HM_EXIT_LOCKED)
			hm_debug("%s no longer held our lock: %s", HM_LOCK_REMOTE_REF,
				 p.out ? p.out : "");
		hm_proc_free(&p);
	}
	if (killed)
		hm_warn("refs/heimdal/lock was not released on the remote");
	free(in);
}

/* heimdal-rlock recover: a dead holder's ref of this host removed (warned). */
static void
remote_recover(void *arg)
{
	char *argv[] = { "heimdal-rlock", "recover", "-c", "--repository", half.repository, NULL };
	struct hm_proc p;

	(void)arg;
	if (!half.repository || hm_spawn("rlock", argv, NULL, 0, HM_SPAWN_CAPTURE_ERR, &p) < 0)
		return;
	if (p.status == 0)
		hm_pass_stderr(p.err);
	else
		hm_debug("the remote lock was not checked (heimdal-rlock recover: status %d)",
			 p.status);
	hm_proc_free(&p);
}

static const struct hm_lock_remote remote_half = {
	.take = remote_take,
	.give = remote_give,
	.recover = remote_recover,
	.interrupt = remote_interrupt,
};

/* --state FILE: the serial recorded and the repository of the remote half. */
static void
read_state(const char *path, int check, struct opts *o)
{
	jv s = hm_json_read_object(path, "a state (--state)");

	o->req.serial = hm_state_serial(s);
	half.repository = hm_state_dotfiles_dir(s);
	half.state = check ? path : NULL;
	jv_free(s);
}

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

/*
 * The record is what every later reader (info, release, the remote lock)
 * must read back: nothing in it may hold a control character.
 */
static void
check_record_text(const struct opts *o)
{
	if (hm_text_check("--op", o->req.operation) < 0 ||
	    (o->req.reason && hm_text_check("--reason", o->req.reason) < 0) ||
	    hm_machine_check() < 0)
		exit(hm_last_code());
}

static int
cmd_acquire(struct opts *o)
{
	jv rec;

	if (!o->req.operation)
		hm_die(HM_EXIT_USAGE, "acquire: --op is required");
	check_record_text(o);
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
	char why[256];
	jv rec = jv_null();
	int r;

	if (!id) {
		if (isatty(0))
			hm_die(HM_EXIT_USAGE, "release: pass --id ID or the lock record on stdin");
		rec = hm_json_read_object("-", "a lock record");
		id = hm_json_str(rec, "id");
		/* Only a lock record heimdal wrote (lock.schema.json) names a lock. */
		if (!id)
			snprintf(why, sizeof(why), ".id: expected the lock record's id");
		if (!id || hm_lock_record_check(rec, why, sizeof(why)) < 0) {
			jv_free(rec);
			hm_die(HM_EXIT_USAGE, "<stdin>: %s", why);
		}
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
	check_record_text(o);
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

/* Each command, its usage line, and the options it takes (their vals). */
static const struct verb {
	const char *name, *usage, *takes;
} verbs[] = {
	{ "acquire",
	  "heimdal-lock acquire --op OP [--reason R] [--expected-duration S] [--pid PID] "
	  "[--wait] [-c]",
	  "oRdPwcSN" },
	{ "release", "heimdal-lock release [--id ID]", "i" },
	{ "info", "heimdal-lock info [-c]", "c" },
	{ "unlock", "heimdal-lock unlock --force [--id ID] [--state FILE] [-c]", "ficS" },
	{ "run",
	  "heimdal-lock run --op OP [--reason R] [--expected-duration S] [--wait] "
	  "[--state FILE] -- CMD [ARGS...]",
	  "oRdwSN" },
};

/* The command argv[1] names (after any -v), or exit 2 with the usage. */
static const struct verb *
verb_of(int *argc, char ***argv)
{
	while (*argc > 1 && (!strcmp((*argv)[1], "-v") || !strcmp((*argv)[1], "--verbose"))) {
		hm_set_verbose();
		(*argc)--;
		(*argv)++;
	}
	if (*argc < 2)
		usage(stderr, HM_EXIT_USAGE);
	if (!strcmp((*argv)[1], "-h") || !strcmp((*argv)[1], "--help"))
		usage(stdout, 0);
	for (size_t k = 0; k < sizeof(verbs) / sizeof(verbs[0]); k++)
		if (!strcmp((*argv)[1], verbs[k].name)) {
			(*argc)--;
			(*argv)++;
			return &verbs[k];
		}
	hm_error("unknown command '%s'", (*argv)[1]);
	usage(stderr, HM_EXIT_USAGE);
}

/* verb's options into o; --state read.  optind is the first operand. */
static void
parse(int argc, char **argv, const struct verb *verb, struct opts *o)
{
	static const struct option longopts[] = {
		{ "op", required_argument, NULL, 'o' },
		{ "reason", required_argument, NULL, 'R' },
		{ "expected-duration", required_argument, NULL, 'd' },
		{ "pid", required_argument, NULL, 'P' },
		{ "wait", no_argument, NULL, 'w' },
		{ "id", required_argument, NULL, 'i' },
		{ "force", no_argument, NULL, 'f' },
		{ "state", required_argument, NULL, 'S' },
		{ "no-conflict-check", no_argument, NULL, 'N' },
		{ "compact", no_argument, NULL, 'c' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *state = NULL;
	int c, check = 1;

	/* "+": run's command starts at the first non-option (or after --). */
	while ((c = hm_opt_next(argc, argv, "+o:d:wi:fcvh", longopts, verb->usage)) != -1) {
		if (c != 'v' && c != 'h' && !strchr(verb->takes, c))
			hm_opt_die(verb->usage, "%s does not take %s", verb->name,
				   hm_opt_name(longopts, c));
		switch (c) {
		case 'o':
			if (!hm_opt_is_word(optarg, 64))
				hm_opt_die(verb->usage, "--op: not an operation name: '%s'",
					   optarg);
			o->req.operation = optarg;
			break;
		case 'R':
			o->req.reason = optarg;
			break;
		case 'd':
			o->req.expected_duration = number("--expected-duration", optarg, 1);
			break;
		case 'P':
			o->req.pid = (pid_t)number("--pid", optarg, 1);
			break;
		case 'w':
			o->req.wait = 1;
			break;
		case 'i':
			o->id = optarg;
			break;
		case 'f':
			o->force = 1;
			break;
		case 'S':
			state = optarg;
			break;
		case 'N':
			check = 0;
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
	if (state)
		read_state(state, check, o);
	else if (!check)
		hm_opt_die(verb->usage, "--no-conflict-check: no --state to compare");
}

int
main(int argc, char **argv)
{
	struct opts o = { .req = { .serial = -1 } };
	const struct verb *verb;
	sigset_t held;
	int i;

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
	verb = verb_of(&argc, &argv);
	parse(argc, argv, verb, &o);
	hm_lock_set_remote(&remote_half);
	if (!strcmp(verb->name, "run"))
		return cmd_run(&o, argv + optind);
	if (optind < argc)
		hm_opt_die(verb->usage, "unexpected argument '%s'", argv[optind]);
	if (!strcmp(verb->name, "acquire"))
		return cmd_acquire(&o);
	if (!strcmp(verb->name, "release"))
		return cmd_release(&o);
	if (!strcmp(verb->name, "info"))
		return cmd_info(&o);
	return cmd_unlock(&o);
}
