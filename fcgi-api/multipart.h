/* multipart.h -- a multipart/form-data body (RFC 7578) split into its parts.
 *
 * Parts point into the body; nothing is copied, so the body must outlive them.
 * Data may hold any bytes, CRLF and NUL included. */
#ifndef AIMSG_MULTIPART_H
#define AIMSG_MULTIPART_H

#include <stddef.h>

struct multipart_part {
    char name[128];
    char filename[256];
    char content_type[128];
    const char *data;
    size_t len;
};

/* Extracts the boundary parameter of a Content-Type header value
 * (quoted or not). Returns -1 if the type is not multipart/form-data or the
 * boundary is missing or invalid. */
int multipart_boundary(const char *content_type, char *out, size_t outlen);

/* Splits body into at most max parts. Returns the number of parts, or -1
 * with *err set to a human-readable reason. */
int multipart_parse(const char *body, size_t len, const char *boundary,
                    struct multipart_part *parts, size_t max, const char **err);

/* The first part called name, or NULL. */
const struct multipart_part *multipart_find(const struct multipart_part *parts, int n,
                                            const char *name);

#endif
