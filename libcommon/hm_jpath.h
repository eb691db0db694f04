/*
 * hm_jpath.h - the plain-path subset of jq filters, answered without libjq.
 *
 * libjq 1.6 compiles its whole builtin library (~20 ms) on every jq_init, so a
 * query like `.lineage.serial` would cost more in set-up than in work.  A
 * filter that is only a path -- `.`, `.a.b`, `."k"`, `.["k"]`, `.[0]`, `.[-1]`,
 * and chains of them -- is parsed here and evaluated directly on the jv.
 * Anything else (and any path that would raise a jq error) falls back to libjq,
 * so results and error messages are always jq's.
 */
#ifndef HM_JPATH_H
#define HM_JPATH_H

#include <jv.h>

/*
 * Parse filter as a plain path.  Returns 1 and sets *path to an array of
 * strings (object keys) and numbers (array indexes); 0 when filter is not a
 * plain path (then *path is untouched).
 */
int hm_jpath_parse(const char *filter, jv *path);

/*
 * Follow path (consumed) into doc (consumed) with jq's semantics for the
 * cases that cannot fail: null yields null, a missing key or index yields
 * null, negative indexes count from the end.  Returns 1 and sets *out, or 0
 * when a step would be a jq error (wrong kind) -- the caller then asks libjq.
 */
int hm_jpath_eval(jv doc, jv path, jv *out);

/*
 * Find path (borrowed, from hm_jpath_parse) in the JSON text buf[0..len)
 * without building the document: the whole text is checked for JSON syntax,
 * and only the value at the path is located.  Returns 1 with [*start, *end)
 * the value's bytes; 0 when the path leads to nothing (a missing key or index,
 * or a null on the way: jq's answer is null); -1 when the text or the path is
 * outside what the scanner decides (syntax error, a negative index, a step
 * into the wrong kind, nesting deeper than 256, escapes it does not decode):
 * the caller then parses the text and asks libjq, so every answer is jq's.
 */
int hm_jpath_scan(const char *buf, size_t len, jv path, const char **start, const char **end);

/*
 * The members of the object in [start, end) (a value hm_jpath_scan located),
 * read straight from the bytes for as long as every key and value is a
 * string of printable ASCII without escapes -- then the bytes are the
 * string.  fn gets each key and value, counted (not NUL-terminated), in the
 * text's order, duplicates included; it returns 0 to go on.  Returns 1 when
 * every member was read; 0 when one is outside that subset, [start, end) is
 * not one object, or fn returned nonzero: the caller then asks libjq.
 */
typedef int (*hm_jpath_member_fn)(void *arg, const char *key, size_t klen, const char *val,
				  size_t vlen);
int hm_jpath_plain_members(const char *start, const char *end, hm_jpath_member_fn fn, void *arg);
#endif
