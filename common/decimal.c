/* decimal.c -- see decimal.h. */
#include "decimal.h"

int decimal_parse(const char *s, size_t n, long max, long *out)
{
    if (n == 0)
        return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        long d = s[i] - '0';
        if (v > (max - d) / 10)
            return -1; /* over max (and never past LONG_MAX) */
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}
