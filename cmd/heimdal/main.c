/*
 * heimdal - the porcelain: built-in commands, and git-style dispatch of
 * `heimdal X` to `heimdal-X` found on the exec path.
 */
#include "builtin.h"
#include "hm_error.h"
#include "hm_spawn.h"

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

void
heimdal_usage(FILE *f)
{
	fprintf(f,
		"usage: heimdal [--verbose] [--exec-path] [--version] [--help] <command> [<args>]\n"
		"\n"
		"Commands:\n");
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

int
cmd_help(int argc, char **argv)
{
	char *args[] = { NULL, "--help", NULL };

	if (argc < 2) {
		heimdal_usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++) {
		if (strcmp(argv[1], builtins[i].name) == 0) {
			args[0] = argv[1];
			return builtins[i].fn(2, args);
		}
	}
	{
		char *tool = hm_find_tool(argv[1]);

		if (!tool) {
			hm_msg("'%s' is not a heimdal command. See 'heimdal --help'.", argv[1]);
			return HM_EXIT_USAGE;
		}
		execv(tool, (char *[]){ tool, "--help", NULL });
		hm_die_errno(HM_EXIT_ENV, "cannot run %s", tool);
	}
}

static int
run_external(int argc, char **argv)
{
	char *tool = hm_find_tool(argv[0]);

	(void)argc;
	if (!tool) {
		hm_msg("'%s' is not a heimdal command. See 'heimdal --help'.", argv[0]);
		return HM_EXIT_USAGE;
	}
	hm_debug("exec %s", tool);
	fflush(NULL);
	/* exec, not spawn: the child's exit status is ours, unchanged. */
	argv[0] = tool;
	execv(tool, argv);
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
	while ((c = getopt_long(argc, argv, "+hv", opts, NULL)) != -1) {
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
		default:
			heimdal_usage(stderr);
			return HM_EXIT_USAGE;
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
			optind = 0; /* let the command run getopt from scratch */
			return builtins[i].fn(argc, argv);
		}
	return run_external(argc, argv);
}
