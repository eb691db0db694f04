/*
 * fuzz_lock - lock records as another machine may push them onto the
 * remote's refs/heimdal/lock: hm_lock_record_check never crashes, and a
 * record it accepts is one every lock function can judge and print, whose
 * text members hold no control character, and that it accepts again once
 * written out and read back.
 */
#include "hm_config.h"
#include "hm_json.h"
#include "hm_lock.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The judge reads this machine's id: a scratch $HEIMDAL_HOME, never the user's. */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static char dir[] = "/tmp/heimdal-fuzz-lock.XXXXXX";

	(void)argc;
	(void)argv;
	if (!mkdtemp(dir))
		abort();
	setenv("HEIMDAL_HOME", dir, 1);
	setenv("HEIMDAL_HOSTNAME", "fuzz-host", 1);
	return 0;
}

static void
no_control(jv v)
{
	if (jv_get_kind(v) == JV_KIND_STRING) {
		for (const unsigned char *p = (const unsigned char *)jv_string_value(v); *p; p++)
			if (*p < 0x20 || *p == 0x7f)
				abort(); /* accepted a control character */
	} else if (jv_get_kind(v) == JV_KIND_OBJECT) {
		jv_object_foreach(v, k, e)
		{
			no_control(e);
			jv_free(k);
			jv_free(e);
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hm_lock_config cfg = { .lock_type = HM_LOCK_HYBRID,
				      .timeout = 300,
				      .detect_stale = 1,
				      .retry_attempts = 3,
				      .retry_delay = 1,
				      .retry_backoff = 1,
				      .remote_timeout = 30 };
	char why[256], *text;
	int alive;
	jv rec = hm_json_parse("<fuzz>", (const char *)data, size), again;

	if (!jv_is_valid(rec)) {
		jv_free(rec);
		return 0;
	}
	if (hm_lock_record_check(rec, why, sizeof(why)) < 0) {
		if (why[0] != '.' && strncmp(why, "expected", 8) != 0)
			abort(); /* a refusal must name the field */
		jv_free(rec);
		return 0;
	}
	no_control(rec);
	hm_lock_assess(rec, &cfg, why, sizeof(why), &alive);
	text = hm_json_dump(jv_copy(rec), HM_JSON_COMPACT, NULL);
	again = hm_json_parse("<again>", text, strlen(text));
	if (!jv_is_valid(again) || hm_lock_record_check(again, why, sizeof(why)) < 0)
		abort(); /* written out, it no longer reads */
	free(text);
	jv_free(again);
	jv_free(rec);
	return 0;
}
