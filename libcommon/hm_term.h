/*
 * hm_term.h - rendering for people: markers that degrade to ASCII, colour
 * only on a terminal and never with NO_COLOR.
 *
 * In a UTF-8 locale the specification's emoji are used; otherwise (LC_ALL=C)
 * the ASCII markers in parentheses:
 *   HM_MARK_OK "✓" ("OK")        HM_MARK_WARN "⚠️ " ("!")
 *   HM_MARK_HIGH "🔴" ("[HIGH]")  HM_MARK_MEDIUM "🟡" ("[MEDIUM]")
 *   HM_MARK_LOW "🟢" ("[LOW]")    HM_MARK_BULLET "•" ("*")
 */
#ifndef HM_TERM_H
#define HM_TERM_H

#include <stdio.h>

enum hm_mark {
	HM_MARK_OK,
	HM_MARK_WARN,
	HM_MARK_HIGH,
	HM_MARK_MEDIUM,
	HM_MARK_LOW,
	HM_MARK_BULLET,
	HM_MARK_ERR,
};

/* 1 when the locale's character set is UTF-8. */
int hm_term_utf8(void);

/* The marker for m in the current locale. */
const char *hm_mark(enum hm_mark m);

/* 1 when colour may be written to f: a terminal, NO_COLOR unset, TERM not dumb. */
int hm_term_color(FILE *f);

/* Severity name ("high", "medium", "low") to its marker; unknown -> HM_MARK_LOW. */
const char *hm_mark_severity(const char *severity);

/*
 * Text that came from data (a path, a hostname, an operation, a server's
 * words), made safe to print: every control character and DEL is written
 * as \xNN (a newline too, unless keep_newlines), so data can neither drive
 * the terminal (ESC sequences) nor forge a line of its own.  Writes at most
 * n - 1 bytes and a NUL into out; returns out.
 */
char *hm_term_escape(const char *s, int keep_newlines, char *out, size_t n);

/* 1 when s holds a control character or DEL (what hm_term_escape escapes). */
int hm_term_has_control(const char *s);

#endif
