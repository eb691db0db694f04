/*
 * query.c - `heimdal state query`: jq filters over the state through libjq.
 *
 * The command is jq 1.6 over one input (the local state unless FILE or "-"
 * is given): jq's options, wherever they stand, jq's output bytes, jq's
 * messages for what jq reports (compile and runtime errors, halt_error,
 * debug), and jq's exit statuses (3 compile error, 5 runtime error, 1 and 4
 * under -e, halt_error's own).  Inputs are read by libjq's own reader, so
 * input, inputs, input_filename, input_line_number and the "(at FILE:LINE)"
 * of errors are jq's.  heimdal keeps its own messages and codes for its own
 * side: usage errors (2), an input, a --slurpfile/--rawfile or a -f program
 * it cannot open or read (3), and invalid JSON input (2, naming the file).
 * Under --stream the input is read whole and checked first: libjq 1.6's
 * streaming parser aborts on some objects that are not JSON.
 *
 * A plain path filter (`.lineage.serial`) over a regular file is answered by
 * hm_jpath without starting libjq at all; everything else, and every path
 * that would be a jq error, goes through libjq so the answer is jq's own.
 */
#include "builtin.h"
#include "hm_error.h"
#include "hm_file.h"
#include "hm_jpath.h"
#include "hm_jq.h"
#include "hm_json.h"
#include "hm_state.h"
#include "hm_term.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <jq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define QUERY_USAGE "heimdal state query [OPTION]... FILTER [FILE|-]"

static const char query_help[] =
	"usage: " QUERY_USAGE "\n"
	"   or: heimdal state query [OPTION]... --args FILTER [FILE|-] [STRING...]\n"
	"   or: heimdal state query [OPTION]... --jsonargs FILTER [FILE|-] [JSON...]\n"
	"\n"
	"Run the jq FILTER over the local state (or FILE, or stdin), as jq 1.6.\n"
	"\n"
	"  -c, --compact-output        one line per result\n"
	"  -r, --raw-output            strings without quotes\n"
	"  -j, --join-output           as -r, without newlines\n"
	"  -a, --ascii-output          \\uXXXX for every non-ASCII character\n"
	"  -S, --sort-keys             objects with sorted keys\n"
	"      --tab                   indent with tabs\n"
	"      --indent N              indent with N spaces (-1 to 7)\n"
	"  -C, --color-output          colour on\n"
	"  -M, --monochrome-output     colour off\n"
	"      --seq                   results as RFC 7464 records; bad input is skipped\n"
	"      --unbuffered            flush after each result\n"
	"  -n, --null-input            run once over null\n"
	"  -R, --raw-input             each line of input is a string\n"
	"  -s, --slurp                 the inputs as one array (one string with -R)\n"
	"      --stream                the inputs as [path, leaf] events\n"
	"  -f, --from-file             FILTER names a file that holds the program\n"
	"  -e, --exit-status           1 if the last result is false or null, 4 if none\n"
	"      --arg NAME VALUE        $NAME is the string VALUE\n"
	"      --argjson NAME JSON     $NAME is the JSON text\n"
	"      --slurpfile NAME FILE   $NAME is the array of the JSON texts in FILE\n"
	"      --rawfile NAME FILE     $NAME is the text of FILE\n"
	"      --argfile NAME FILE     as --slurpfile; a single text is bound alone\n"
	"      --args                  later arguments are strings in $ARGS.positional\n"
	"      --jsonargs              later arguments are JSON texts in $ARGS.positional\n"
	"  -L DIR                      search DIR for modules instead of ~/.jq\n"
	"  --                          every later argument is the filter, FILE or an argument\n";

/* jq's option bits (main.c's enum), for what is not a jv_dump flag. */
enum {
	Q_RAW = 1 << 0,
	Q_JOIN = 1 << 1,
	Q_NULL_INPUT = 1 << 2,
	Q_SLURP = 1 << 3,
	Q_EXIT_STATUS = 1 << 4,
	Q_EXIT_EXACT = 1 << 5, /* set by halt: its code stands even without -e */
	Q_ASCII = 1 << 6,
	Q_SORT = 1 << 7,
	Q_COLOR = 1 << 8,
	Q_NO_COLOR = 1 << 9,
	Q_RAW_INPUT = 1 << 10,
	Q_SEQ = 1 << 11,
	Q_UNBUFFERED = 1 << 12,
	Q_FROM_FILE = 1 << 13,
};

enum {
	OPT_TAB = 256,
	OPT_INDENT,
	OPT_ARG,
	OPT_ARGJSON,
	OPT_SLURPFILE,
	OPT_RAWFILE,
	OPT_ARGFILE,
	OPT_ARGS,
	OPT_JSONARGS,
	OPT_SEQ,
	OPT_STREAM,
	OPT_UNBUFFERED,
};

/* What a non-option argument after the filter is: jq's --args and --jsonargs switch it. */
enum { POS_FILE, POS_STRING, POS_JSON };

static const struct option opts[] = {
	{ "compact-output", no_argument, NULL, 'c' },
	{ "raw-output", no_argument, NULL, 'r' },
	{ "join-output", no_argument, NULL, 'j' },
	{ "ascii-output", no_argument, NULL, 'a' },
	{ "slurp", no_argument, NULL, 's' },
	{ "null-input", no_argument, NULL, 'n' },
	{ "exit-status", no_argument, NULL, 'e' },
	{ "sort-keys", no_argument, NULL, 'S' },
	{ "color-output", no_argument, NULL, 'C' },
	{ "monochrome-output", no_argument, NULL, 'M' },
	{ "from-file", no_argument, NULL, 'f' },
	{ "tab", no_argument, NULL, OPT_TAB },
	{ "indent", required_argument, NULL, OPT_INDENT },
	{ "arg", required_argument, NULL, OPT_ARG },
	{ "argjson", required_argument, NULL, OPT_ARGJSON },
	{ "slurpfile", required_argument, NULL, OPT_SLURPFILE },
	{ "rawfile", required_argument, NULL, OPT_RAWFILE },
	{ "argfile", required_argument, NULL, OPT_ARGFILE },
	{ "args", no_argument, NULL, OPT_ARGS },
	{ "jsonargs", no_argument, NULL, OPT_JSONARGS },
	{ "raw-input", no_argument, NULL, 'R' },
	{ "seq", no_argument, NULL, OPT_SEQ },
	{ "stream", no_argument, NULL, OPT_STREAM },
	{ "unbuffered", no_argument, NULL, OPT_UNBUFFERED },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

struct query {
	int options;
	int dumpopts;   /* jv_dump flags, changed by each option in turn as jq does */
	int parseflags; /* jv_parser flags: --stream, --seq */
	jv args;        /* --arg, --argjson and file bindings: the first one of a name wins */
	jv positional;  /* $ARGS.positional: --args strings and --jsonargs values */
	jv libdirs;     /* -L directories, or null for jq's default search path */
	const char *filter;
	const char *file; /* FILE or "-"; NULL for the local state */
};

/* How many arguments after its own the option with value val takes. */
static int
nargs(int val)
{
	switch (val) {
	case OPT_ARG:
	case OPT_ARGJSON:
	case OPT_SLURPFILE:
	case OPT_RAWFILE:
	case OPT_ARGFILE:
		return 2;
	case OPT_INDENT:
	case 'L':
		return 1;
	default:
		return 0;
	}
}

/* The arguments option a takes after itself; an unknown long option is refused. */
static int
arity(const char *a)
{
	const char *eq = strchr(a, '=');
	size_t len;

	if (a[1] != '-') {
		const char *l = strchr(a, 'L'); /* -L DIR, but -LDIR and -LcDIR hold theirs */

		return l && l[1] == '\0';
	}
	len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
	for (const struct option *o = opts; o->name; o++)
		if (strlen(o->name) == len && strncmp(o->name, a + 2, len) == 0)
			return nargs(o->val) - (eq != NULL) > 0 ? nargs(o->val) - (eq != NULL) : 0;
	hm_die(HM_EXIT_USAGE, "unknown option '%s'\nusage: %s", a, QUERY_USAGE);
}

/* jq's rule: "-x..." and "--..." are options; "-", "-1" and "-.a" are not. */
static int
optish(const char *a)
{
	return a[0] == '-' && (a[1] == '-' || isalpha((unsigned char)a[1]));
}

/*
 * Split argv as jq does: options, each with the arguments it takes, go to
 * optv for getopt_long; the rest (the filter, then files or positional
 * arguments) to pos, in order, each with what it is in mode: a file, or a
 * string or JSON text once --args or --jsonargs stood before it.  After "--"
 * every argument is a positional one.
 */
static void
split_args(int argc, char **argv, char **optv, int *optc, char **pos, int *mode, int *npos)
{
	int done = 0, as = POS_FILE;

	*optc = *npos = 0;
	optv[(*optc)++] = argv[0];
	for (int i = 1; i < argc; i++) {
		int n;

		if (!done && strcmp(argv[i], "--") == 0) {
			done = 1;
		} else if (done || !optish(argv[i])) {
			mode[*npos] = as;
			pos[(*npos)++] = argv[i];
		} else {
			if (strcmp(argv[i], "--args") == 0 || strcmp(argv[i], "--jsonargs") == 0)
				as = argv[i][2] == 'a' ? POS_STRING : POS_JSON;
			if (i + (n = arity(argv[i])) >= argc)
				hm_die(HM_EXIT_USAGE, "%s takes %s\nusage: %s", argv[i],
				       n == 2 ? "NAME and VALUE" : "an argument", QUERY_USAGE);
			while (n-- >= 0)
				optv[(*optc)++] = argv[i++];
			i--;
		}
	}
	optv[*optc] = NULL;
}

/* A positional argument after the filter: the input file, or one of $ARGS.positional. */
static void
positional(struct query *q, const char *arg, int as)
{
	jv v;

	if (as == POS_FILE) {
		if (q->file != NULL)
			hm_die(HM_EXIT_USAGE, "usage: %s", QUERY_USAGE);
		q->file = arg;
		return;
	}
	v = as == POS_JSON ? jv_parse(arg) : jv_string(arg);
	if (!jv_is_valid(v)) /* jq 1.6 aborts on it */
		hm_die(HM_EXIT_USAGE, "--jsonargs: invalid JSON text '%s'\nusage: %s", arg,
		       QUERY_USAGE);
	q->positional = jv_array_append(q->positional, v);
}

/* --arg NAME VALUE and --argjson NAME TEXT: the first binding of NAME wins, as in jq. */
static void
bind_arg(struct query *q, const char *name, const char *value, int json)
{
	jv v;

	if (jv_object_has(jv_copy(q->args), jv_string(name)))
		return;
	v = json ? jv_parse(value) : jv_string(value);
	if (!jv_is_valid(v))
		hm_die(HM_EXIT_USAGE, "--argjson %s: invalid JSON text\nusage: %s", name,
		       QUERY_USAGE);
	q->args = jv_object_set(q->args, jv_string(name), v);
}

/*
 * --slurpfile NAME FILE (the JSON texts in FILE, as an array), --rawfile
 * NAME FILE (its text, as a string) and --argfile NAME FILE (as --slurpfile,
 * but one text alone is bound as itself): read as jq reads them, and only
 * when NAME is not bound yet.  A file that cannot be read is exit 3, one that
 * is not JSON exit 2.
 */
static void
bind_file(struct query *q, int c, const char *name, const char *path)
{
	const char *flag = c == OPT_SLURPFILE ? "--slurpfile"
			   : c == OPT_RAWFILE ? "--rawfile"
					      : "--argfile";
	jv v;

	if (jv_object_has(jv_copy(q->args), jv_string(name)))
		return;
	if (hm_jq_check_file(path) < 0)
		hm_die_errno(HM_EXIT_ENV, "%s %s: %s", flag, name, path);
	v = hm_jq_load_file(path, c == OPT_RAWFILE);
	if (!jv_is_valid(v)) {
		jv msg = jv_invalid_get_msg(v);

		if (jv_get_kind(msg) == JV_KIND_NULL) /* a read error: errno is set */
			hm_die_errno(HM_EXIT_ENV, "%s %s: %s", flag, name, path);
		hm_die(HM_EXIT_USAGE, "%s %s: %s: invalid JSON: %s", flag, name, path,
		       jv_string_value(msg));
	}
	if (c == OPT_ARGFILE && jv_array_length(jv_copy(v)) == 1)
		v = jv_array_get(v, 0);
	q->args = jv_object_set(q->args, jv_string(name), v);
}

/* --indent N: jq takes atoi(N), between -1 (a tab) and 7. */
static void
set_indent(struct query *q, const char *arg)
{
	int n = atoi(arg);

	if (n < -1 || n > 7)
		hm_die(HM_EXIT_USAGE, "--indent takes a number between -1 and 7\nusage: %s",
		       QUERY_USAGE);
	q->dumpopts &= ~(JV_PRINT_TAB | JV_PRINT_INDENT_FLAGS(7));
	q->dumpopts |= JV_PRINT_INDENT_FLAGS(n);
}

/* One option from getopt_long; optv and *optind for the second argument of --arg. */
static void
option(struct query *q, int c, char **optv)
{
	static const int bits[] = {
		['r'] = Q_RAW,        ['j'] = Q_RAW | Q_JOIN, ['a'] = Q_ASCII,    ['s'] = Q_SLURP,
		['n'] = Q_NULL_INPUT, ['e'] = Q_EXIT_STATUS,  ['S'] = Q_SORT,     ['C'] = Q_COLOR,
		['M'] = Q_NO_COLOR,   ['R'] = Q_RAW_INPUT,    ['f'] = Q_FROM_FILE
	};

	switch (c) {
	case 'c':
		q->dumpopts &= ~(JV_PRINT_TAB | JV_PRINT_INDENT_FLAGS(7));
		break;
	case OPT_TAB:
		q->dumpopts &= ~JV_PRINT_INDENT_FLAGS(7);
		q->dumpopts |= JV_PRINT_TAB | JV_PRINT_PRETTY;
		break;
	case OPT_INDENT:
		set_indent(q, optarg);
		break;
	case OPT_ARG:
	case OPT_ARGJSON:
		bind_arg(q, optarg, optv[optind++], c == OPT_ARGJSON);
		break;
	case OPT_SLURPFILE:
	case OPT_RAWFILE:
	case OPT_ARGFILE:
		bind_file(q, c, optarg, optv[optind++]);
		break;
	case OPT_ARGS:
	case OPT_JSONARGS: /* split_args has read them */
		break;
	case OPT_SEQ:
		q->options |= Q_SEQ;
		q->parseflags |= JV_PARSE_SEQ;
		break;
	case OPT_STREAM:
		q->parseflags |= JV_PARSE_STREAMING;
		break;
	case OPT_UNBUFFERED:
		q->options |= Q_UNBUFFERED;
		break;
	case 'L':
		if (jv_get_kind(q->libdirs) == JV_KIND_NULL)
			q->libdirs = jv_array();
		q->libdirs = jv_array_append(q->libdirs, hm_jq_realpath(optarg));
		break;
	default:
		if (c > 0 && (size_t)c < sizeof(bits) / sizeof(bits[0]) && bits[c]) {
			q->options |= bits[c];
			break;
		}
		hm_die(HM_EXIT_USAGE, "usage: %s", QUERY_USAGE);
	}
}

/* Parse the command line into q.  Returns 1 for --help (printed), 0 otherwise. */
static int
parse_args(struct query *q, int argc, char **argv)
{
	char **optv = hm_xmalloc(sizeof(*optv) * ((size_t)argc + 1));
	char **pos = hm_xmalloc(sizeof(*pos) * ((size_t)argc + 1));
	int *mode = hm_xmalloc(sizeof(*mode) * ((size_t)argc + 1));
	int optc, npos, c, help = 0;

	split_args(argc, argv, optv, &optc, pos, mode, &npos);
	optind = 0; /* glibc: start afresh; "+": optv holds nothing else to permute */
	while ((c = getopt_long(optc, optv, "+crjasneSCMRfhL:", opts, NULL)) != -1) {
		if (c == 'h')
			help = 1;
		else
			option(q, c, optv);
	}
	if (help) {
		fputs(query_help, stdout);
	} else if (npos < 1) {
		hm_die(HM_EXIT_USAGE, "usage: %s", QUERY_USAGE);
	} else {
		q->filter = pos[0];
		for (int i = 1; i < npos; i++)
			positional(q, pos[i], mode[i]);
	}
	free(optv);
	free(pos);
	free(mode);
	return help;
}

/* Print one result as jq does; returns what -e makes of it: 0, or 11 for false and null. */
static int
emit(const struct query *q, jv v)
{
	int ret = 0;

	if ((q->options & Q_RAW) && jv_get_kind(v) == JV_KIND_STRING) {
		if (q->options & Q_ASCII) {
			jv_dumpf(v, stdout, JV_PRINT_ASCII);
		} else {
			fwrite(jv_string_value(v), 1, jv_string_length_bytes(jv_copy(v)), stdout);
			jv_free(v);
		}
	} else {
		if (jv_get_kind(v) == JV_KIND_FALSE || jv_get_kind(v) == JV_KIND_NULL)
			ret = 11;
		if (q->options & Q_SEQ)
			putchar('\036');
		jv_dumpf(v, stdout, q->dumpopts);
	}
	if (!(q->options & Q_JOIN))
		putchar('\n');
	if (q->options & Q_UNBUFFERED)
		fflush(stdout);
	return ret;
}

/* Run the program over one input (consumed); returns jq's status for it. */
static int
process(struct query *q, jq_state *jq, jv value)
{
	int ret = 14; /* no output: -e exits 4 */
	jv r;

	jq_start(jq, value, 0);
	while (jv_is_valid(r = jq_next(jq)))
		ret = emit(q, r);
	if (jq_halted(jq)) {
		q->options |= Q_EXIT_EXACT;
		ret = hm_jq_halt_status(jq);
	} else if (jv_invalid_has_msg(jv_copy(r))) {
		hm_jq_report_error(jq_util_input_get_position(jq), jv_invalid_get_msg(jv_copy(r)));
		ret = 5;
	}
	jv_free(r);
	return ret;
}

/*
 * Each input in turn, as jq's main loop; invalid JSON stops it (exit 2),
 * except under --seq, where jq reports it and reads on.
 */
static int
run_inputs(struct query *q, jq_state *jq, jq_util_input_state *in, const char *source)
{
	int ret = 0;

	if (q->options & Q_NULL_INPUT)
		return process(q, jq, jv_null());
	while (jq_util_input_errors(in) == 0) {
		jv v = jq_util_input_next_input(in);

		if (jv_is_valid(v)) {
			ret = process(q, jq, v);
		} else if (q->options & Q_SEQ && jv_invalid_has_msg(jv_copy(v))) {
			hm_jq_report_ignored(jv_invalid_get_msg(v));
		} else if (jv_invalid_has_msg(jv_copy(v))) {
			jv msg = jv_invalid_get_msg(v);

			hm_error("%s: invalid JSON: %s", source, jv_string_value(msg));
			jv_free(msg);
			return HM_EXIT_USAGE;
		} else {
			jv_free(v);
			break;
		}
	}
	return jq_util_input_errors(in) ? HM_EXIT_ENV : ret;
}

/* libjq's reader could not open the input. */
static void
input_error(void *data, const char *fname)
{
	(void)data;
	hm_error_errno("%s", fname);
}

/*
 * Compile the filter, or under -f the program in the file it names (its
 * "#!" lines skipped, its directory jq's PROGRAM_ORIGIN), as jq does.
 * Consumes args.  Returns 0 when it does not compile (jq has said why); a
 * program file that cannot be read is exit 3.
 */
static int
compile(const struct query *q, jq_state *jq, jv args)
{
	jv text;
	int ok;

	if (!(q->options & Q_FROM_FILE))
		return jq_compile_args(jq, q->filter, args);
	if (hm_jq_check_file(q->filter) < 0 || !jv_is_valid(text = hm_jq_load_file(q->filter, 1)))
		hm_die_errno(HM_EXIT_ENV, "%s", q->filter);
	jq_set_attr(jq, jv_string("PROGRAM_ORIGIN"), hm_jq_program_origin(q->filter));
	ok = jq_compile_args(jq, hm_jq_skip_shebang(jv_string_value(text)), args);
	jv_free(text);
	return ok;
}

/* Compile the filter and run it over input (a path or "-"), as jq does. */
static int
run_jq(struct query *q, const char *input, const char *source)
{
	jq_state *jq = jq_init();
	jq_util_input_state *in;
	jv named = jv_copy(q->args);
	char name[64];
	int ret;

	if (!jq)
		hm_die(HM_EXIT_ENV, "cannot start libjq");
	hm_jq_set_paths(jq, q->libdirs);
	q->libdirs = jv_null();
	named = jv_object_set(named, jv_string("ARGS"),
			      JV_OBJECT(jv_string("positional"), jv_copy(q->positional),
					jv_string("named"), jv_copy(q->args)));
	if (!compile(q, jq, named)) {
		jq_teardown(&jq);
		return 3; /* jq's status for a compile error */
	}
	if (q->parseflags & JV_PARSE_STREAMING &&
	    !(input = hm_jq_stream_input(input, source, q->parseflags, name, sizeof(name), &ret))) {
		jq_teardown(&jq);
		return ret;
	}
	in = jq_util_input_init(input_error, NULL);
	jq_util_input_set_parser(in, q->options & Q_RAW_INPUT ? NULL : jv_parser_new(q->parseflags),
				 (q->options & Q_SLURP) != 0);
	jq_util_input_add_input(in, input);
	jq_set_input_cb(jq, jq_util_input_next_input_cb, in);
	jq_set_debug_cb(jq, hm_jq_debug_cb, &q->dumpopts);
	ret = run_inputs(q, jq, in, source);
	jq_util_input_free(&in);
	jq_teardown(&jq);
	return ret;
}

/* 1 when the text holds "version": the current state version, as raw bytes. */
static int
current_version(const char *buf, size_t len)
{
	jv vp = JV_ARRAY(jv_string("version"));
	const char *vs, *ve;
	int r = hm_jpath_scan(buf, len, vp, &vs, &ve);

	jv_free(vp);
	return r == 1 && ve - vs == 1 && *vs == '0' + HM_STATE_VERSION;
}

/*
 * The fast path over raw bytes: the exit status when answered, -1 when the
 * caller must ask libjq.
 */
static int
fast(struct query *q, jv path, const char *buf, size_t len, const char *source)
{
	const char *vs, *ve;
	int r = hm_jpath_scan(buf, len, path, &vs, &ve);
	jv v;

	if (r < 0)
		return -1;
	if (r == 0)
		return emit(q, jv_null());
	v = hm_json_parse(source, vs, (size_t)(ve - vs));
	if (!jv_is_valid(v)) {
		jv_free(v);
		return -1;
	}
	return emit(q, v);
}

/*
 * The local state must be of the current version before jq reads it: a V1
 * state is migrated (as every command does) and a newer one refused, but the
 * document is not validated, so a query can still inspect a state that fails
 * validation.  Returns 0, or the exit status.
 */
static int
check_local(const char *buf, size_t len, const char *source)
{
	char *err = NULL;
	jv doc;
	int version;

	if (current_version(buf, len))
		return 0;
	doc = hm_json_parse(source, buf, len);
	if (!jv_is_valid(doc)) {
		jv msg = jv_invalid_get_msg(doc);

		hm_error("%s", jv_string_value(msg));
		jv_free(msg);
		return HM_EXIT_USAGE;
	}
	version = hm_state_version_of(doc, &err);
	jv_free(doc);
	free(err);
	if (version != HM_STATE_VERSION)
		jv_free(porcelain_state_load());
	return 0;
}

/*
 * What is done before libjq reads the input: check it exists, bring the local
 * state to the current version, answer a plain path from a regular file's
 * bytes.  Returns the exit status when done, -1 to go on to libjq.  stdin, a
 * FIFO or a device is left whole for libjq, which reads it once.
 */
static int
prepare(struct query *q, const char *input, const char *source)
{
	int local = q->file == NULL, fastable, ret = -1;
	jv jpath = jv_null();
	struct stat st;
	char *buf;
	size_t len;

	if (strcmp(input, "-") == 0)
		return -1;
	if (stat(input, &st) < 0 || (S_ISDIR(st.st_mode) && (errno = EISDIR)))
		return hm_error_errno("%s", input), HM_EXIT_ENV;
	if (!S_ISREG(st.st_mode))
		return -1;
	fastable = !(q->options & (Q_NULL_INPUT | Q_SLURP | Q_RAW_INPUT | Q_FROM_FILE)) &&
		   q->parseflags == 0 && hm_jpath_parse(q->filter, &jpath);
	if (!local && !fastable)
		return -1;
	if (hm_file_read(input, &buf, &len) < 0) {
		jv_free(jpath);
		return HM_EXIT_ENV;
	}
	if (fastable && (!local || current_version(buf, len)))
		ret = fast(q, jpath, buf, len, source);
	if (ret < 0 && local && check_local(buf, len, source) != 0)
		ret = HM_EXIT_USAGE;
	if (ret < 0 && fastable)
		hm_debug("query: '%s' needs libjq", q->filter);
	free(buf);
	jv_free(jpath);
	return ret;
}

/* jq's final status: -e maps 11 to 1 and 14 to 4; without it they are 0. */
static int
exit_status(const struct query *q, int ret)
{
	if (ret >= 10 && (q->options & Q_EXIT_STATUS))
		return ret - 10;
	if (ret >= 10 && !(q->options & Q_EXIT_EXACT))
		return 0;
	return ret;
}

int
cmd_state_query(int argc, char **argv)
{
	struct query q = { .dumpopts = JV_PRINT_INDENT_FLAGS(2),
			   .args = jv_object(),
			   .positional = jv_array(),
			   .libdirs = jv_null() };
	const char *input, *source;
	char *path = NULL;
	int ret;

	if (parse_args(&q, argc, argv)) {
		jv_free(q.args);
		jv_free(q.positional);
		jv_free(q.libdirs);
		return 0;
	}
	if (hm_term_color(stdout))
		q.dumpopts |= JV_PRINT_ISATTY | JV_PRINT_COLOR;
	q.dumpopts |= (q.options & Q_SORT ? JV_PRINT_SORTED : 0) |
		      (q.options & Q_ASCII ? JV_PRINT_ASCII : 0) |
		      (q.options & Q_COLOR ? JV_PRINT_COLOR : 0);
	if (q.options & Q_NO_COLOR)
		q.dumpopts &= ~JV_PRINT_COLOR;
	hm_jq_set_colors();
	if (q.file == NULL) {
		input = source = path = hm_state_path();
		/* -n reads nothing unless the filter asks (input): with no state
		 * there is nothing to read, as jq -n's empty stdin. */
		if (!hm_file_exists(path) && (q.options & Q_NULL_INPUT))
			input = source = "/dev/null";
		else if (!hm_file_exists(path))
			hm_die(HM_EXIT_ENV, "no state at %s (run 'heimdal init' first)", path);
	} else {
		input = q.file;
		source = hm_json_source_name(q.file);
	}
	ret = prepare(&q, input, source);
	if (ret < 0)
		ret = run_jq(&q, input, source);
	jv_free(q.args);
	jv_free(q.positional);
	jv_free(q.libdirs);
	free(path);
	if (fflush(stdout) != 0)
		hm_die_errno(HM_EXIT_ENV, "stdout");
	return exit_status(&q, ret);
}
