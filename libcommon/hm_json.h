/*
 * hm_json.h - JSON input and output on libjq's jv.
 *
 * jv ownership follows libjq: every function here consumes the jv arguments
 * it takes unless its comment says it borrows.  Parse errors come back as
 * jv_invalid_with_msg() whose message names the source and position:
 *   "<stdin>: invalid JSON: Unfinished JSON term at EOF at line 2, column 0"
 */
#ifndef HM_JSON_H
#define HM_JSON_H

#include <stdio.h>
#include <jv.h>

enum hm_json_flags {
	HM_JSON_PRETTY = 0,  /* 2-space indent, jq's default */
	HM_JSON_COMPACT = 1, /* one line, like jq -c */
};

/*
 * Parse exactly one JSON document from buf[0..len).  source names the input
 * in error messages ("<stdin>", a path).  Empty input and trailing documents
 * are errors.
 */
jv hm_json_parse(const char *source, const char *buf, size_t len);

/*
 * Read and parse path ("-" = stdin).  A read error is an invalid with a message
 * naming path; *io_error (may be NULL) is set to 1 for read errors, 0 for parse
 * errors, so callers can tell exit 3 from exit 2.
 */
jv hm_json_read_file(const char *path, int *io_error);

/*
 * Print the message of invalid (consumed) as an error and exit with code.
 * Frees what it was given first, so leak checkers see a clean exit.
 */
_Noreturn void hm_die_jv(int code, jv invalid);

/* The display name of path for messages: "<stdin>" for "-". */
const char *hm_json_source_name(const char *path);

/*
 * Write v (consumed) to f followed by a newline.  Returns 0, or -1 when the
 * stream reports an error.
 */
int hm_json_write(FILE *f, jv v, int flags);

/* v (consumed) as a malloc'd string with a trailing newline; *len set if non-NULL. */
char *hm_json_dump(jv v, int flags, size_t *len);

/*
 * Borrowing accessors for validated documents.  hm_json_str returns the
 * string value of obj[key] or NULL when it is absent or not a string;
 * hm_json_int returns obj[key] as an integer or dflt.
 */
const char *hm_json_str(jv obj, const char *key);
long long hm_json_int(jv obj, const char *key, long long dflt);

/* Kind name as jq says it ("object", "string", ...); borrows v. */
const char *hm_json_kind_name(jv v);

/*
 * Read all of fd into a malloc'd, NUL-terminated buffer.  Returns 0 or -1 with
 * errno set.
 */
int hm_read_fd(int fd, char **buf, size_t *len);

#endif
