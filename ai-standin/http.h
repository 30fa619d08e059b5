/* http.h -- parses the head (request line and headers) of an HTTP/1.x
 * request for the stand-in. No I/O: the caller finds the blank line. */
#ifndef AIMSG_STANDIN_HTTP_H
#define AIMSG_STANDIN_HTTP_H

#include <stddef.h>

#define HTTP_MAX_HEAD (64 * 1024)
#define HTTP_MAX_BODY (64 * 1024 * 1024)

struct http_request {
    char method[16];
    char path[256];             /* without the query; truncated if longer */
    int minor;                  /* HTTP/1.<minor> */
    int keep_alive;
    int expect_continue;
    int has_length;
    size_t content_length;      /* > HTTP_MAX_BODY is reported as 413 */
    int has_transfer_encoding;
    const char *auth;           /* Authorization value, points into the head */
    size_t auth_len;
};

/* Parses head[0..len), which ends with "\r\n\r\n". Returns 0, or the status
 * to answer a bad head with (400, 413, 417, 505). */
int http_parse_head(struct http_request *r, const char *head, size_t len);

/* "OK", "Not Found", ... */
const char *http_reason(int status);

#endif
