/*
 * fuzz_members - the flat-object fast path, differential: whenever
 * hm_jpath_plain_members reads every member of the document's top-level
 * object, those members (the last of a duplicated key winning) must be
 * exactly the object libjq parses from the same text.
 */
#include "hm_jpath.h"
#include "hm_json.h"

#include <stdint.h>
#include <stdlib.h>

static int
add(void *arg, const char *key, size_t klen, const char *val, size_t vlen)
{
	jv *obj = arg;

	*obj = jv_object_set(*obj, jv_string_sized(key, (int)klen),
			     jv_string_sized(val, (int)vlen));
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data, *vs, *ve;
	jv path = jv_array(), got = jv_object(), want;

	if (hm_jpath_scan(text, size, path, &vs, &ve) != 1 ||
	    !hm_jpath_plain_members(vs, ve, add, &got)) {
		jv_free(path);
		jv_free(got);
		return 0;
	}
	jv_free(path);
	want = hm_json_parse("<fuzz>", text, size);
	if (!jv_is_valid(want) || !jv_equal(want, got))
		abort(); /* the fast path read something libjq reads otherwise */
	return 0;
}
