/*
 * fuzz_query_files - the files `state query` reads besides its input:
 * --rawfile and --slurpfile (hm_jq_check_file, hm_jq_load_file), and the
 * input reader under -R, -R -s, --stream and --seq, as query sets it up.  The
 * data is a memfd read back through /proc/self/fd/N, as a file or a FIFO
 * named on the command line is.  Checks:
 *  - --rawfile always yields a string, the data itself when it is UTF-8;
 *  - --slurpfile yields an array, or an error with a message (the file is
 *    readable); every element survives dump and parse unchanged;
 *  - each reader ends, and -R -s yields one string;
 *  - the --stream reader never aborts on text hm_jq_check_text lets through
 *    (query's guard: libjq 1.6's streaming parser asserts on some text that
 *    is not JSON).
 */
#include "hm_jq.h"

#include <jq.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void
check_raw(const char *path, const uint8_t *data, size_t size)
{
	jv v = hm_jq_load_file(path, 1);
	jv same = jv_string_sized((const char *)data, (int)size);

	if (jv_get_kind(v) != JV_KIND_STRING)
		abort();
	/* UTF-8 data is kept byte for byte */
	if ((size_t)jv_string_length_bytes(jv_copy(same)) == size &&
	    memcmp(jv_string_value(same), data, size) == 0 && !jv_equal(jv_copy(v), jv_copy(same)))
		abort();
	jv_free(same);
	jv_free(v);
}

static void
check_slurp(const char *path)
{
	jv v = hm_jq_load_file(path, 0);

	if (!jv_is_valid(v)) {
		jv msg = jv_invalid_get_msg(v);

		if (jv_get_kind(msg) != JV_KIND_STRING)
			abort(); /* a readable file fails only as JSON */
		jv_free(msg);
		return;
	}
	if (jv_get_kind(v) != JV_KIND_ARRAY)
		abort();
	jv_array_foreach(v, i, elem)
	{
		jv text = jv_dump_string(jv_copy(elem), 0);
		jv back = jv_parse(jv_string_value(text));

		if (!jv_equal(back, elem))
			abort();
		jv_free(text);
	}
	jv_free(v);
}

/* Read every input as query does with parser (NULL: -R) and slurp. */
static void
check_reader(const char *path, jv_parser *parser, int slurp)
{
	jq_util_input_state *in = jq_util_input_init(NULL, NULL);
	int n = 0;
	jv v;

	jq_util_input_set_parser(in, parser, slurp);
	jq_util_input_add_input(in, path);
	while (jq_util_input_errors(in) == 0) {
		v = jq_util_input_next_input(in);
		if (!jv_is_valid(v) && !jv_invalid_has_msg(jv_copy(v))) {
			jv_free(v);
			break;
		}
		if (slurp && !parser && jv_get_kind(v) != JV_KIND_STRING)
			abort(); /* -R -s: the whole text, one string */
		jv_free(v);
		if (++n > 1 << 20)
			abort(); /* the reader never ends */
	}
	/* libjq closes the last file on the call after its end, never in jq_util_input_free */
	jv_free(jq_util_input_next_input(in));
	jq_util_input_free(&in);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz", MFD_CLOEXEC);
	char path[64];

	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (hm_jq_check_file(path) < 0)
		abort();
	check_raw(path, data, size);
	check_slurp(path);
	check_reader(path, NULL, 0);
	check_reader(path, NULL, 1);
	check_reader(path, jv_parser_new(JV_PARSE_SEQ), 0);
	for (int seq = 0; seq <= JV_PARSE_SEQ; seq += JV_PARSE_SEQ) {
		jv ok = hm_jq_check_text((const char *)data, size, seq);

		if (jv_is_valid(ok))
			check_reader(path, jv_parser_new(JV_PARSE_STREAMING | seq), 0);
		jv_free(ok);
	}
	close(fd);
	return 0;
}
