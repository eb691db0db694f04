/*
 * fuzz_pair - the reader of {"local", "remote", "base"} (heimdal-lineage
 * compare, heimdal-conflicts, heimdal-merge on stdin), then the comparison
 * and the conflicts.  Invariants: a pair it accepts holds two states that
 * each validate as V2 (allow_newer off), a base that is null or a valid V2
 * state of one side's lineage; the relation is one of the five; the
 * conflicts are an array.
 */
#include "hm_error.h"
#include "hm_lineage.h"
#include "hm_state.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void
valid_or_abort(jv s)
{
	char *err = NULL;

	if (hm_state_validate(s, &err) < 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hm_lineage_cmp cmp;
	struct hm_pair p;
	jv list;
	int fd;

	if (size > 1 << 20)
		return 0;
	fd = memfd_create("pair", 0);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size || lseek(fd, 0, SEEK_SET) < 0 ||
	    dup2(fd, 0) < 0)
		abort();
	close(fd);
	if (hm_pair_read(NULL, NULL, NULL, 0, &p) < 0) {
		if (hm_last_code() != HM_EXIT_USAGE)
			abort();
		hm_pair_free(&p);
		return 0;
	}
	valid_or_abort(p.local);
	valid_or_abort(p.remote);
	if (jv_get_kind(p.base) != JV_KIND_NULL)
		valid_or_abort(p.base);
	hm_lineage_compare(p.local, p.remote, p.base, &cmp);
	if (cmp.relation < HM_REL_EQUAL || cmp.relation > HM_REL_UNRELATED)
		abort();
	list = hm_conflicts_detect(&p, &cmp, 0);
	if (jv_get_kind(list) != JV_KIND_ARRAY)
		abort();
	jv_free(list);
	hm_pair_free(&p);
	return 0;
}
