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
 * in error messages ("<stdin>", a path).  Empty input, trailing documents, a
 * NUL byte and invalid UTF-8 are errors (libjq would turn a bad sequence
 * into U+FFFD: a document is refused, never rewritten).
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

/* Both values (borrowed) equal; an absent (invalid) one only equals another absent one. */
int hm_json_same(jv a, jv b);

/*
 * The JSON object in path ("-": stdin), or exit: 3 when it cannot be read, 2
 * when it is not JSON or not an object ("PATH: expected WHAT, got array").
 */
jv hm_json_read_object(const char *path, const char *what);

/*
 * The offset of the first byte of buf[0..len) that does not begin a valid
 * UTF-8 sequence (RFC 3629: no overlong forms, no surrogates, nothing above
 * U+10FFFF), or len when all of it is valid.
 */
size_t hm_utf8_invalid(const char *buf, size_t len);

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
 * A document written piece by piece into one growing buffer, byte for byte
 * as hm_json_dump prints the same value: for output too large to build as a
 * jv first (a merge report's tens of thousands of conflicts).  Start from
 * HM_JSON_OUT_INIT(flags); o.p holds the text (malloc'd, NUL-terminated),
 * o.len its length.
 *
 *   hm_json_out_raw(o, "{", 1);   then, per member or element,
 *   hm_json_out_key(o, depth, first, key, n) or hm_json_out_next(o, depth, first)
 *   and the value (hm_json_out_value at depth + 1, or nested pieces); then
 *   hm_json_out_close(o, '}', depth, empty);
 *
 * depth is the depth of the container being filled (0 for the top value).
 */
struct hm_json_out {
	char *p;
	size_t len, cap;
	FILE *f; /* internal: hm_json_write's stream */
	int pretty;
};
#define HM_JSON_OUT_INIT(flags)                                                                    \
	{                                                                                          \
		NULL, 0, 0, NULL, !((flags)&HM_JSON_COMPACT)                                       \
	}

void hm_json_out_raw(struct hm_json_out *o, const char *s, size_t n);
/* A JSON string of the bytes s[0..n), escaped as jq does. */
void hm_json_out_string(struct hm_json_out *o, const char *s, size_t n);
/* v (consumed) as a value at depth: an element or member of a container at depth - 1. */
void hm_json_out_value(struct hm_json_out *o, jv v, int depth);
/* Before an element of a container at depth: the comma and the indentation. */
void hm_json_out_next(struct hm_json_out *o, int depth, int first);
/* Before a member of an object at depth: hm_json_out_next, the key and the colon. */
void hm_json_out_key(struct hm_json_out *o, int depth, int first, const char *key, size_t n);
/* The closing bracket of a container at depth; empty: it had no element. */
void hm_json_out_close(struct hm_json_out *o, char bracket, int depth, int empty);

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

/*
 * The name of the first member of obj (borrowed) that keys (NULL-terminated)
 * does not list, in a new buffer; NULL when every member is known.
 */
char *hm_json_unknown_member(jv obj, const char *const *keys);

#endif
