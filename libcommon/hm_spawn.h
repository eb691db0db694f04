/*
 * hm_spawn.h - finding heimdal tools and running them with JSON in and out.
 *
 * Tools are found git-style, in order: $HEIMDAL_EXEC_PATH, the directory of
 * the running binary, the compiled-in libexec directory, then PATH.
 */
#ifndef HM_SPAWN_H
#define HM_SPAWN_H

#include <jv.h>
#include <stddef.h>
#include <sys/types.h>

/* The first directory of the search order (what `heimdal --exec-path` prints). */
const char *hm_exec_path(void);

/* Full path of "heimdal-<name>" (new buffer), or NULL when not found anywhere. */
char *hm_find_tool(const char *name);

struct hm_proc {
	int status; /* exit status, or 128+signal */
	char *out;  /* stdout, NUL-terminated (malloc'd) */
	size_t out_len;
	char *err; /* stderr when captured (malloc'd), else NULL */
	size_t err_len;
};

enum hm_spawn_flags {
	HM_SPAWN_CAPTURE_ERR = 1, /* collect stderr instead of passing it through */
};

/*
 * Run tool "heimdal-<name>" with argv (argv[0] ignored; NULL-terminated),
 * writing in[0..in_len) to its stdin and collecting its stdout.  Returns 0
 * when the tool ran (whatever its status), -1 when it could not be started
 * (error printed).  Free the result with hm_proc_free.
 */
int hm_spawn(const char *name, char *const argv[], const char *in, size_t in_len, int flags,
	     struct hm_proc *p);

/*
 * hm_spawn with a JSON document (consumed) on stdin, compact.  On status 0 or
 * 1 *out is the parsed stdout (or jv_null() when stdout was empty); on other
 * statuses *out is invalid.  Returns the tool's status, or -1 when it could not
 * run or printed something that is not JSON (error printed).
 */
int hm_spawn_json(const char *name, char *const argv[], jv in, jv *out);

void hm_proc_free(struct hm_proc *p);

/* The tool hm_spawn is running, or 0.  Async-signal-safe. */
pid_t hm_spawn_running(void);

#endif
