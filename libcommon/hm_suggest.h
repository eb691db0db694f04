/*
 * hm_suggest.h - "did you mean" for a mistyped command, by git's rule.
 *
 * The distance is the optimal-string-alignment (restricted Damerau)
 * Levenshtein distance with git's weights: a transposition costs 0, a
 * substitution 2, an insertion 1, a deletion 3.  A candidate the typed word
 * is a prefix of is a match in itself; the others compete on distance + 1,
 * and the nearest (with ties) are suggested when below git's floor of 7.
 */
#ifndef HM_SUGGEST_H
#define HM_SUGGEST_H

#include <stddef.h>

/* The weighted distance from typed to candidate (git's levenshtein(0, 2, 1, 3)). */
int hm_suggest_distance(const char *typed, const char *candidate);

/*
 * Print to stderr, after the caller's "not a command" line, the candidates
 * most similar to typed ("\nThe most similar command is\n\tNAME\n"), each as
 * prefix + name ("state " for state subcommands).  names[n] are the
 * candidates, in any order, without duplicates.  Nothing when none is close.
 */
void hm_suggest_print(const char *typed, const char *const *names, size_t n, const char *prefix);

#endif
