/* decimal.h -- a number from outside input (a URL, a stand-in directive, a
 * reply field): decimal digits only, no sign, no spaces, at most a bound.
 * strtol takes signs, spaces and overflow, which such input must not have. */
#ifndef AIMSG_DECIMAL_H
#define AIMSG_DECIMAL_H

#include <stddef.h>

/* The n bytes at s as a number 0..max (max >= 0) into *out: 0, or -1 when
 * they are empty, not all digits, or over max. */
int decimal_parse(const char *s, size_t n, long max, long *out);

#endif
