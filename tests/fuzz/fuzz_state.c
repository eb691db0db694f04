/*
 * fuzz_state - state parse + version + validation + canonical form.
 * Invariant: a document that validates still validates after canonicalising
 * and a round trip through the writer's output.
 */
#include "hm_json.h"
#include "hm_state.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	jv doc = hm_json_parse("<fuzz>", (const char *)data, size);
	char *err = NULL, *out;
	size_t len;
	int version;

	if (!jv_is_valid(doc)) {
		jv_free(doc);
		return 0;
	}
	version = hm_state_version_of(doc, &err);
	free(err);
	err = NULL;
	if (version == 1) {
		if (hm_state_validate_v1(doc, &err) < 0)
			free(err);
		jv_free(doc);
		return 0;
	}
	if (hm_state_validate(doc, &err) < 0) {
		free(err);
		jv_free(doc);
		return 0;
	}
	out = hm_json_dump(hm_state_canonical(doc), HM_JSON_PRETTY, &len);
	doc = hm_json_parse("<canonical>", out, len);
	if (!jv_is_valid(doc) || hm_state_validate(doc, &err) < 0)
		abort(); /* canonical output of a valid state must stay valid */
	jv_free(doc);
	free(out);
	return 0;
}
