/*
 * fuzz_json - the reader's fast path and the writer, differential against
 * libjq: hm_json_parse must accept exactly what jv_parser accepts (one
 * document, no raw NUL, valid UTF-8 -- invalid UTF-8 is always refused)
 * with the same value, and hm_json_dump must print
 * byte for byte what jv_dump_string prints, pretty and compact.
 */
#include "hm_json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static jv
jq_parse(const char *text, size_t len)
{
	jv_parser *p = jv_parser_new(0);
	jv v, extra;

	jv_parser_set_buf(p, text, (int)len, 0);
	v = jv_parser_next(p);
	extra = jv_parser_next(p);
	if (jv_is_valid(v) && (jv_is_valid(extra) || jv_invalid_has_msg(jv_copy(extra)))) {
		jv_free(v);
		v = jv_invalid();
	}
	jv_free(extra);
	jv_parser_free(p);
	return v;
}

static void
same_dump(jv v, int flags)
{
	size_t len;
	char *ours = hm_json_dump(jv_copy(v), flags, &len);
	jv s = jv_dump_string(jv_copy(v), flags == HM_JSON_COMPACT ? 0 : JV_PRINT_INDENT_FLAGS(2));
	size_t n = (size_t)jv_string_length_bytes(jv_copy(s));

	if (len != n + 1 || memcmp(ours, jv_string_value(s), n) != 0 || ours[n] != '\n')
		abort();
	free(ours);
	jv_free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	jv ours, theirs;

	if (size > 1 << 20 || memchr(data, '\0', size))
		return 0;
	ours = hm_json_parse("<fuzz>", text, size);
	/* Invalid UTF-8: libjq rewrites it to U+FFFD, heimdal refuses it. */
	if (hm_utf8_invalid(text, size) < size) {
		if (jv_is_valid(ours))
			abort();
		jv_free(ours);
		return 0;
	}
	theirs = jq_parse(text, size);
	if (jv_is_valid(ours) != jv_is_valid(theirs))
		abort();
	if (jv_is_valid(ours)) {
		/* Compared as jq prints them: NaN equals nothing, not even itself. */
		jv a = jv_dump_string(jv_copy(ours), 0), b = jv_dump_string(jv_copy(theirs), 0);

		if (strcmp(jv_string_value(a), jv_string_value(b)) != 0)
			abort();
		jv_free(a);
		jv_free(b);
		same_dump(ours, HM_JSON_PRETTY);
		same_dump(ours, HM_JSON_COMPACT);
	}
	jv_free(ours);
	jv_free(theirs);
	return 0;
}
