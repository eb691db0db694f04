/*
 * hm_error.h - exit codes, error and debug messages.
 *
 * Every heimdal binary exits with one of the codes below, and every message it
 * writes to stderr is prefixed with the program's name, set once from argv[0]
 * by hm_error_init().  Errors name the file, field path or flag at fault.
 */
#ifndef HM_ERROR_H
#define HM_ERROR_H

#include <stdarg.h>
#include <stddef.h>

enum hm_exit {
	HM_EXIT_OK = 0,     /* success; nothing found */
	HM_EXIT_FOUND = 1,  /* the answer is "found": conflicts, drift, divergence */
	HM_EXIT_USAGE = 2,  /* usage error or invalid input */
	HM_EXIT_ENV = 3,    /* environment failure: I/O, permissions, git, network */
	HM_EXIT_LOCKED = 4, /* the state is locked by another operation */
};

/* The program name used as message prefix ("heimdal-migrate"). */
extern const char *hm_progname;

/*
 * Set hm_progname from argv0 (its basename) and turn on debug messages when
 * HEIMDAL_VERBOSE is set to a non-empty value other than "0".  Also arranges
 * that stdout is flushed at exit and a write error there (ENOSPC, EIO) is
 * reported and makes the exit status HM_EXIT_ENV, whatever it was going to
 * be -- help text included.
 */
void hm_error_init(const char *argv0);

/* exit(code) after an error was reported: the stdout check stays quiet. */
_Noreturn void hm_exit_error(int code);

/* Turn debug messages on; exports HEIMDAL_VERBOSE=1 so spawned tools inherit it. */
void hm_set_verbose(void);
int hm_verbose(void);

/* "prog: error: ...\n" and exit(code).  Never returns. */
_Noreturn void hm_die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same, with ": strerror(errno)" appended. */
_Noreturn void hm_die_errno(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "prog: error: ...\n"; returns -1 so callers can `return hm_error(...)`. */
int hm_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Same, with ": strerror(errno)" appended; returns -1. */
int hm_error_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "prog: warning: ...\n". */
void hm_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "prog: ...\n", a message without a kind (the dispatcher's "not a command"). */
void hm_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "prog: debug: ...\n", only when verbose. */
void hm_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* text (may be NULL) on stderr as it is: a child's captured stderr, a message held back. */
void hm_pass_stderr(const char *text);

/*
 * The error code of the last hm_error()/hm_error_errno() call that set one;
 * functions that fail with -1 set it with hm_fail() so a caller far up can
 * exit with the right code.  Defaults to HM_EXIT_ENV.
 */
int hm_fail(int code);
int hm_last_code(void);

/* Allocation that dies with HM_EXIT_ENV on failure. */
void *hm_xmalloc(size_t n);
void *hm_xrealloc(void *p, size_t n);
char *hm_xstrdup(const char *s);
char *hm_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
