#include "hm_term.h"

#include <langinfo.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

int
hm_term_utf8(void)
{
	static int utf8 = -1;

	if (utf8 < 0) {
		const char *cs;

		setlocale(LC_CTYPE, "");
		cs = nl_langinfo(CODESET);
		utf8 = cs && (strcasecmp(cs, "UTF-8") == 0 || strcasecmp(cs, "utf8") == 0);
		/* Numbers and everything else stay in the C locale. */
	}
	return utf8;
}

const char *
hm_mark(enum hm_mark m)
{
	static const char *const utf[] = { "✓", "⚠️ ", "🔴", "🟡", "🟢", "•", "✗" };
	static const char *const ascii[] = { "OK", "!", "[HIGH]", "[MEDIUM]", "[LOW]", "*", "X" };

	return hm_term_utf8() ? utf[m] : ascii[m];
}

int
hm_term_color(FILE *f)
{
	const char *nc = getenv("NO_COLOR"), *term = getenv("TERM");

	if (nc && *nc)
		return 0;
	if (term && strcmp(term, "dumb") == 0)
		return 0;
	return isatty(fileno(f));
}

const char *
hm_mark_severity(const char *severity)
{
	if (severity && strcmp(severity, "high") == 0)
		return hm_mark(HM_MARK_HIGH);
	if (severity && strcmp(severity, "medium") == 0)
		return hm_mark(HM_MARK_MEDIUM);
	return hm_mark(HM_MARK_LOW);
}

char *
hm_term_escape(const char *s, int keep_newlines, char *out, size_t n)
{
	size_t o = 0;

	for (; s && *s && o + 1 < n; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c < 0x20 && c != '\t' && !(c == '\n' && keep_newlines)) || c == 0x7f) {
			if (o + 5 > n)
				break;
			o += (size_t)snprintf(out + o, n - o, "\\x%02x", c);
		} else {
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
	return out;
}

int
hm_term_has_control(const char *s)
{
	for (const unsigned char *u = (const unsigned char *)s; *u; u++)
		if (*u < 0x20 || *u == 0x7f)
			return 1;
	return 0;
}
