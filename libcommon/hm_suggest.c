/*
 * hm_suggest.c - the nearest command names to a mistyped one.
 */
#include "hm_suggest.h"
#include "hm_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { W_SWAP = 0, W_SUBST = 2, W_ADD = 1, W_DEL = 3, SIMILARITY_FLOOR = 7 };

static int
min2(int a, int b)
{
	return a < b ? a : b;
}

int
hm_suggest_distance(const char *typed, const char *candidate)
{
	size_t n = strlen(typed), m = strlen(candidate);
	/* Three rows of the matrix: i - 2, i - 1 and i (for the transposition). */
	int *prev2 = hm_xmalloc((m + 1) * sizeof(int));
	int *prev = hm_xmalloc((m + 1) * sizeof(int));
	int *cur = hm_xmalloc((m + 1) * sizeof(int)), *t, d;

	for (size_t j = 0; j <= m; j++)
		prev[j] = (int)j * W_ADD;
	for (size_t i = 0; i < n; i++) {
		cur[0] = (int)(i + 1) * W_DEL;
		for (size_t j = 0; j < m; j++) {
			int v = prev[j] + (typed[i] != candidate[j] ? W_SUBST : 0);

			if (i > 0 && j > 0 && typed[i - 1] == candidate[j] &&
			    typed[i] == candidate[j - 1])
				v = min2(v, prev2[j - 1] + W_SWAP);
			v = min2(v, prev[j + 1] + W_DEL);
			v = min2(v, cur[j] + W_ADD);
			cur[j + 1] = v;
		}
		t = prev2;
		prev2 = prev;
		prev = cur;
		cur = t;
	}
	d = prev[m];
	free(prev2);
	free(prev);
	free(cur);
	return d;
}

struct scored {
	const char *name;
	int score; /* 0: typed is its prefix; else distance + 1 */
};

static int
by_score(const void *a, const void *b)
{
	const struct scored *x = a, *y = b;

	return x->score != y->score ? x->score - y->score : strcmp(x->name, y->name);
}

void
hm_suggest_print(const char *typed, const char *const *names, size_t n, const char *prefix)
{
	struct scored *s;
	size_t prefixed = 0, shown;
	int best;

	if (!n || !*typed)
		return;
	s = hm_xmalloc(n * sizeof(*s));
	for (size_t i = 0; i < n; i++) {
		s[i].name = names[i];
		s[i].score = strncmp(names[i], typed, strlen(typed)) == 0
				     ? 0
				     : hm_suggest_distance(typed, names[i]) + 1;
		prefixed += s[i].score == 0;
	}
	qsort(s, n, sizeof(*s), by_score);
	/* A word every candidate starts with says nothing. */
	if (prefixed == n) {
		free(s);
		return;
	}
	best = s[prefixed].score;
	shown = prefixed;
	if (best < SIMILARITY_FLOOR)
		while (shown < n && s[shown].score == best)
			shown++;
	if (shown) {
		fprintf(stderr, "\nThe most similar %s\n",
			shown == 1 ? "command is" : "commands are");
		for (size_t i = 0; i < shown; i++)
			fprintf(stderr, "\t%s%s\n", prefix, s[i].name);
	}
	free(s);
}
