/*
 * heimdal - the porcelain: built-in commands, and git-style dispatch of
 * `heimdal X` to `heimdal-X` found on the exec path.
 */
#include "builtin.h"
#include "hm_error.h"
#include "hm_opt.h"
#include "hm_spawn.h"
#include "hm_suggest.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct builtin {
	const char *name;
	int (*fn)(int, char **);
	const char *help;
} builtins[] = {
	{ "state", cmd_state, "inspect, migrate, query and repair the state" },
	{ "apply", cmd_apply, "deploy the dotfiles repository into $HOME" },
	{ "commit", cmd_commit, "accept changed files into the repository and commit" },
	{ "init", cmd_init, "clone the dotfiles repository and join its state lineage" },
	{ "pull", cmd_pull, "fetch and merge the remote (the state file by the state merge)" },
	{ "push", cmd_push, "commit the state to the repository and push it [--force]" },
	{ "sync", cmd_sync, "pull, reconcile the state, apply, commit and push" },
	{ "resolve", cmd_resolve, "settle a file changed both here and upstream" },
	{ "status", cmd_status, "what sync and apply would do here, and the other machines" },
	{ "diff", cmd_diff, "what changed here since deployed, or upstream (--upstream)" },
	{ "doctor", cmd_doctor, "check the tools, libraries, files, lock, repository and remote" },
	{ "add", cmd_add, "track files of $HOME: copy them into the repository and commit" },
	{ "forget", cmd_forget, "stop tracking files (they stay in $HOME everywhere)" },
	{ "help", cmd_help, "show help for heimdal or a command" },
	{ "version", cmd_version, "print heimdal's version" },
};

static const char main_usage[] =
	"heimdal [-v | --verbose] [--exec-path] [--version] [--help] <command> [<args>]";

void
heimdal_usage(FILE *f)
{
	fprintf(f, "usage: %s\n\nCommands:\n", main_usage);
	for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++)
		fprintf(f, "  %-16s %s\n", builtins[i].name, builtins[i].help);
	fprintf(f, "\n"
		   "State commands (heimdal state <command>):\n");
	state_commands_usage(f, 0);
	fprintf(f,
		"\n"
		"Any other <command> runs heimdal-<command> from the exec path, e.g. the\n"
		"plumbing: heimdal-migrate, heimdal-drift, heimdal-lock.  See heimdal(1) and heimdal(7).\n");
}

int
cmd_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("heimdal %s\n", HM_VERSION);
	return 0;
}

/* The plumbing heimdal ships: `heimdal help` and the suggestions know them. */
static const char *const plumbing[] = {
	"migrate", "lineage", "conflicts", "merge", "drift", "lock", "rlock",
};

#define NBUILTINS (sizeof(builtins) / sizeof(builtins[0]))
#define NPLUMBING (sizeof(plumbing) / sizeof(plumbing[0]))

/* "'X' is not a heimdal command", and the commands X is closest to; exit 2. */
static int
unknown_command(const char *cmd)
{
	const char *names[NBUILTINS + NPLUMBING];
	size_t n = 0;

	hm_msg("'%s' is not a heimdal command. See 'heimdal --help'.", cmd);
	for (size_t i = 0; i < NBUILTINS; i++)
		names[n++] = builtins[i].name;
	for (size_t i = 0; i < NPLUMBING; i++)
		names[n++] = plumbing[i];
	hm_suggest_print(cmd, names, n, "");
	return HM_EXIT_USAGE;
}

/*
 * execv, and as execvp does, a file the kernel will not run (no "#!") is
 * run by /bin/sh.  Returns only on failure.
 */
static void
exec_tool(char *tool, char **argv)
{
	fflush(NULL);
	execv(tool, argv);
	if (errno == ENOEXEC) {
		size_t n = 0;
		char **sh;

		while (argv[n])
			n++;
		sh = hm_xmalloc((n + 2) * sizeof(*sh));
		sh[0] = "/bin/sh";
		sh[1] = tool;
		memcpy(sh + 2, argv + 1, n * sizeof(*sh)); /* argv[1..n], with its NULL */
		execv("/bin/sh", sh);
		errno = ENOEXEC;
	}
}

static const char help_usage[] = "heimdal help [<command> [<subcommand>]]";

int
cmd_help(int argc, char **argv)
{
	char *args[] = { NULL, NULL, "--help", NULL };

	if (argc < 2) {
		heimdal_usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		printf("usage: %s\n\n"
		       "Show the usage of heimdal, of a command (heimdal help sync), of a state\n"
		       "command (heimdal help state version) or of a tool (heimdal help lock).\n",
		       help_usage);
		return 0;
	}
	if (argv[1][0] == '-')
		hm_opt_die(help_usage, "unknown option '%s'", argv[1]);
	for (size_t i = 0; i < NBUILTINS; i++) {
		if (strcmp(argv[1], builtins[i].name) != 0)
			continue;
		args[0] = argv[1];
		hm_opt_reset();
		if (argc > 2 && builtins[i].fn == cmd_state) {
			/* heimdal help state version: the state command's own help. */
			args[1] = argv[2];
			return cmd_state(3, args);
		}
		args[1] = "--help";
		args[2] = NULL;
		return builtins[i].fn(2, args);
	}
	{
		char *tool = hm_find_tool(argv[1]);

		if (!tool)
			return unknown_command(argv[1]);
		exec_tool(tool, (char *[]){ tool, "--help", NULL });
		hm_die_errno(HM_EXIT_ENV, "cannot run %s", tool);
	}
}

static int
run_external(int argc, char **argv)
{
	char *tool = hm_find_tool(argv[0]);

	(void)argc;
	if (!tool)
		return unknown_command(argv[0]);
	hm_debug("exec %s", tool);
	/* exec, not spawn: the child's exit status is ours, unchanged. */
	argv[0] = tool;
	exec_tool(tool, argv);
	hm_die_errno(HM_EXIT_ENV, "cannot run %s", tool);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "exec-path", no_argument, NULL, 'E' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	hm_error_init(argv[0]);
	hm_progname = "heimdal";
	while ((c = hm_opt_next(argc, argv, "+hv", opts, main_usage)) != -1) {
		switch (c) {
		case 'h':
			heimdal_usage(stdout);
			return 0;
		case 'v':
			hm_set_verbose();
			break;
		case 'V':
			return cmd_version(0, NULL);
		case 'E':
			printf("%s\n", hm_exec_path());
			return 0;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0) {
		heimdal_usage(stderr);
		return HM_EXIT_USAGE;
	}
	for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++)
		if (strcmp(argv[0], builtins[i].name) == 0) {
			hm_opt_reset(); /* the command parses its argv from scratch */
			return builtins[i].fn(argc, argv);
		}
	return run_external(argc, argv);
}
