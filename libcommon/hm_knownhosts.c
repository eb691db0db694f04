#include "hm_knownhosts.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t
base64_decode(const char *in, size_t inlen, unsigned char *out, size_t outcap)
{
	int n;
	size_t pad = 0;

	if (inlen == 0 || inlen % 4 || inlen / 4 * 3 > outcap)
		return 0;
	n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)inlen);
	if (n < 0)
		return 0;
	while (pad < 2 && in[inlen - 1 - pad] == '=')
		pad++;
	return (size_t)n - pad;
}

/* known_hosts patterns: only "*" and "?" are special ("[host]:port" is literal). */
static int
wildmatch(const char *pat, const char *s)
{
	if (*pat == '\0')
		return *s == '\0';
	if (*pat == '*')
		return wildmatch(pat + 1, s) || (*s && wildmatch(pat, s + 1));
	if (*s && (*pat == '?' || tolower((unsigned char)*pat) == tolower((unsigned char)*s)))
		return wildmatch(pat + 1, s + 1);
	return 0;
}

/* 1 when one name of a known_hosts host field matches name ("host" or "[host]:port"). */
static int
known_host_matches(char *field, const char *name)
{
	int match = 0;

	if (strncmp(field, "|1|", 3) == 0) {
		char *salt = field + 3, *hash = strchr(salt, '|');
		unsigned char s[64], h[64], mac[EVP_MAX_MD_SIZE];
		unsigned int maclen = 0;
		size_t sl, hl;

		if (!hash)
			return 0;
		sl = base64_decode(salt, (size_t)(hash - salt), s, sizeof(s));
		hl = base64_decode(hash + 1, strlen(hash + 1), h, sizeof(h));
		if (!sl || hl != 20 ||
		    !HMAC(EVP_sha1(), s, (int)sl, (const unsigned char *)name, strlen(name), mac,
			  &maclen))
			return 0;
		return maclen == 20 && memcmp(mac, h, 20) == 0;
	}
	for (char *save = NULL, *pat = strtok_r(field, ",", &save); pat;
	     pat = strtok_r(NULL, ",", &save)) {
		if (*pat == '!') {
			if (wildmatch(pat + 1, name))
				return 0;
		} else if (wildmatch(pat, name)) {
			match = 1;
		}
	}
	return match;
}

int
hm_knownhosts_lookup(const char *file, const char *name, const char *key, size_t keylen)
{
	FILE *f = fopen(file, "r");
	char *line = NULL;
	size_t cap = 0;
	int known = 0, other = 0, revoked = 0;

	if (!f)
		return HM_KNOWN_UNKNOWN;
	/* The whole file is read: a @revoked line anywhere outweighs the others. */
	while (!revoked && getline(&line, &cap, f) > 0) {
		char *save = NULL, *hosts, *type, *b64;
		unsigned char blob[8192];
		size_t bl;
		int marked = 0, same;

		hosts = strtok_r(line, " \t\r\n", &save);
		if (!hosts || *hosts == '#')
			continue;
		if (*hosts == '@') {
			if (strcmp(hosts, "@revoked") != 0)
				continue; /* @cert-authority: certificates are not used here */
			marked = 1;
			hosts = strtok_r(NULL, " \t\r\n", &save);
		}
		type = strtok_r(NULL, " \t\r\n", &save);
		b64 = strtok_r(NULL, " \t\r\n", &save);
		if (!hosts || !type || !b64)
			continue;
		bl = base64_decode(b64, strlen(b64), blob, sizeof(blob));
		same = bl == keylen && memcmp(blob, key, keylen) == 0;
		if (marked) {
			revoked = same; /* a revoked key is refused for every host */
			continue;
		}
		if (!known_host_matches(hosts, name))
			continue;
		if (same)
			known = 1;
		else
			other = 1;
	}
	free(line);
	fclose(f);
	if (revoked)
		return HM_KNOWN_CHANGED;
	return known ? HM_KNOWN_OK : other ? HM_KNOWN_CHANGED : HM_KNOWN_UNKNOWN;
}
