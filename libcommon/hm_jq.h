/*
 * hm_jq.h - running libjq the way the jq 1.6 program does.
 *
 * libjq leaves to its caller what the jq binary does around it: the module
 * search path (without one, `import` trips an assertion), the `debug`
 * callback, and the texts of uncaught errors and `halt_error`.  These helpers
 * do those parts byte for byte as jq 1.6's main.c, so a command built on
 * libjq answers as `jq` would.  jq's diagnostics are written to stderr as jq
 * writes them, without the program-name prefix of hm_error.h: they are jq's
 * interface, which scripts compare against the jq binary.
 */
#ifndef HM_JQ_H
#define HM_JQ_H

#include <jq.h>

/*
 * Set the module search path: libdirs (consumed) is an array of directories
 * (from -L), or null for jq's default list ("~/.jq", "$ORIGIN/../lib/jq",
 * "$ORIGIN/lib", $ORIGIN being the running binary's directory).  Relative
 * imports resolve against the current directory, as in jq.  Call before
 * jq_compile_args.
 */
void hm_jq_set_paths(jq_state *jq, jv libdirs);

/*
 * The `debug` callback: writes ["DEBUG:",input] to stderr on one line.  data
 * points at the int jv_dump flags of the output (colour and sorting are
 * kept, indentation dropped).  Consumes input.
 */
void hm_jq_debug_cb(void *data, jv input);

/*
 * An uncaught jq error: "jq: error (at POS): MSG" (or "(not a string): JSON"
 * when the message is not a string) on stderr.  Consumes pos and msg.
 */
void hm_jq_report_error(jv pos, jv msg);

/*
 * After the program called `halt` or `halt_error`: write its message to
 * stderr as jq does (a string raw, other values as one JSON line) and return
 * the exit status jq takes from it (the number given, 5 for a non-number, 0
 * when there is none).
 */
int hm_jq_halt_status(jq_state *jq);

/*
 * Check that path can be opened for reading and is not a directory, before
 * hm_jq_load_file reads it: 0, or -1 with errno set (EISDIR for a directory).
 * A FIFO is opened without waiting for a writer.
 */
int hm_jq_check_file(const char *path);

/*
 * The value jq 1.6 binds for --rawfile (raw 1: the file's text as one
 * string, invalid UTF-8 replaced by U+FFFD) or --slurpfile (raw 0: an array
 * of the JSON texts in the file), read by libjq's own reader so the value is
 * byte for byte jq's.  On failure returns an invalid value: with the
 * parser's message for text that is not JSON, without one (errno set) when
 * the file could not be read.
 */
jv hm_jq_load_file(const char *path, int raw);

/*
 * Take the output colours from $JQ_COLORS when it is set, as jq does; a value
 * jq refuses leaves the default colours and writes "Failed to set
 * $JQ_COLORS" to stderr.
 */
void hm_jq_set_colors(void);

/*
 * Parse buf whole with jq's parser before libjq 1.6's streaming parser reads
 * it, which aborts on some text that is not JSON ({"a":1,"b",2}).  flags 0:
 * buf must hold nothing but JSON texts; JV_PARSE_SEQ: RFC 7464 records,
 * each one JSON text after an RS, nothing but white space before the first.
 * Returns jv_true(), or an invalid value with the first error's message.
 */
jv hm_jq_check_text(const char *buf, size_t len, int flags);

/*
 * --stream: libjq 1.6's streaming parser aborts on some objects that are not
 * JSON, so the input (a path, or "-" for stdin) is read whole and checked
 * by hm_jq_check_text with flags first; text that is not JSON is reported
 * ("SOURCE: invalid JSON: ...") before the program sees any of it.  A
 * regular file is then read again by libjq's reader; what came from stdin, a
 * FIFO or a device is put back through a memfd on the same descriptor
 * (stdin, or N for /dev/fd/N), else named as /proc/self/fd/M in name (size
 * bytes), so input_filename and the positions of errors stay jq's.  Returns
 * the input for jq_util_input_add_input, or NULL with *status set (2 for
 * text that is not JSON, 3 for a read error, both reported).
 */
const char *hm_jq_stream_input(const char *input, const char *source, int flags, char *name,
			       size_t size, int *status);

/* realpath(path) as a string, or path itself when it cannot be resolved (jq's -L). */
jv hm_jq_realpath(const char *path);

/* jq's PROGRAM_ORIGIN for a -f program: the real path of its directory. */
jv hm_jq_program_origin(const char *program);

/*
 * A -f program's text past its "#!" lines, as jq skips them: a first line
 * "#!..." followed by "#" lines, the last of them ending in one backslash,
 * and one more line (the `exec jq` of a sh-then-jq script).  Else text.
 */
const char *hm_jq_skip_shebang(const char *text);

/* Under --seq, input that is not JSON: "ignoring parse error: MSG" on stderr.  Consumes msg. */
void hm_jq_report_ignored(jv msg);

#endif
