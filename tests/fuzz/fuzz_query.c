/*
 * fuzz_query - the query fast path, differential: the first line is a filter,
 * the rest a document.  Whenever hm_jpath answers (parse + scan), the answer
 * must equal evaluating the same path on the fully parsed document.
 */
#include "hm_jpath.h"
#include "hm_json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *nl = memchr(data, '\n', size);
	const char *text, *vs, *ve;
	size_t flen, tlen;
	char *filter;
	jv path, doc, want, got;
	int r;

	if (!nl)
		return 0;
	flen = (size_t)(nl - (const char *)data);
	filter = malloc(flen + 1);
	memcpy(filter, data, flen);
	filter[flen] = '\0';
	text = nl + 1;
	tlen = size - flen - 1;
	if (strlen(filter) != flen || !hm_jpath_parse(filter, &path)) {
		free(filter);
		return 0;
	}
	free(filter);
	r = hm_jpath_scan(text, tlen, path, &vs, &ve);
	if (r < 0) {
		jv_free(path);
		return 0;
	}
	doc = hm_json_parse("<fuzz>", text, tlen);
	if (!jv_is_valid(doc))
		abort(); /* the scanner accepted text the parser rejects */
	if (!hm_jpath_eval(doc, jv_copy(path), &want))
		abort(); /* the scanner answered where jq would fail */
	got = r == 0 ? jv_null() : hm_json_parse("<value>", vs, (size_t)(ve - vs));
	if (!jv_is_valid(got) || !jv_equal(jv_copy(got), jv_copy(want)))
		abort();
	jv_free(got);
	jv_free(want);
	jv_free(path);
	return 0;
}
