/* query.h -- the parameters of a request's query string: name=value pairs
 * joined by '&', each value percent-encoded ('+' a space), as a browser's
 * URLSearchParams writes them. */
#ifndef AIMSG_QUERY_H
#define AIMSG_QUERY_H

#include <stddef.h>

/* The decoded value of the first parameter called name (a name without
 * '=' has the value ""): 1 with it in out, 0 when there is none, -1 when
 * it has a bad %-escape or %00, or does not fit in size bytes. */
int query_param(const char *query, const char *name, char *out, size_t size);

#endif
