/* http.c -- parses an HTTP/1.x request head for the stand-in. Strict where
 * sloppiness could desynchronise the connection (framing headers, control
 * bytes), lenient elsewhere. See http.h. */
#define _GNU_SOURCE
#define _POSIX_C_SOURCE 200809L
#include "http.h"

#include <string.h>
#include <strings.h>

/* Flags collected while reading the headers. */
struct head_state {
    int conn_close, conn_keep_alive;
    int too_large;
};

static int is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static int name_is(const char *p, size_t n, const char *want)
{
    return strlen(want) == n && strncasecmp(p, want, n) == 0;
}

/* "1.0" -> minor 0. Returns 0, or 400 / 505. */
static int parse_version(struct http_request *r, const char *v, size_t n)
{
    if (n < 5 || memcmp(v, "HTTP/", 5) != 0)
        return 400;
    if (n != 8 || v[5] != '1' || v[6] != '.')
        return 505;
    if (v[7] < '0' || v[7] > '9')
        return 400;
    r->minor = v[7] - '0';
    return 0;
}

static int parse_request_line(struct http_request *r, const char *p, size_t n)
{
    const char *sp1 = memchr(p, ' ', n);
    size_t mlen = sp1 ? (size_t)(sp1 - p) : 0;
    if (mlen == 0 || mlen >= sizeof(r->method))
        return 400;
    for (size_t i = 0; i < mlen; i++)
        if (!is_tchar((unsigned char)p[i]))
            return 400;
    memcpy(r->method, p, mlen);

    const char *target = sp1 + 1;
    size_t rest = n - mlen - 1;
    const char *sp2 = memchr(target, ' ', rest);
    size_t tlen = sp2 ? (size_t)(sp2 - target) : 0;
    if (tlen == 0)
        return 400;
    for (size_t i = 0; i < tlen; i++)
        if ((unsigned char)target[i] <= 0x20 || target[i] == 0x7f)
            return 400;
    size_t plen = strcspn(target, "?# ");
    if (plen > tlen)
        plen = tlen;
    if (plen >= sizeof(r->path))
        plen = sizeof(r->path) - 1;
    memcpy(r->path, target, plen);
    return parse_version(r, sp2 + 1, rest - tlen - 1);
}

static int parse_content_length(struct http_request *r, const char *v, size_t n,
                                struct head_state *st)
{
    size_t len = 0;
    if (n == 0)
        return 400;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return 400;
        if (len <= HTTP_MAX_BODY)
            len = len * 10 + (size_t)(v[i] - '0');
    }
    if (r->has_length && r->content_length != len)
        return 400; /* conflicting lengths: a smuggling attempt */
    r->has_length = 1;
    r->content_length = len;
    st->too_large = len > HTTP_MAX_BODY;
    return 0;
}

static void parse_connection(const char *v, size_t n, struct head_state *st)
{
    while (n > 0) {
        size_t tok = 0;
        while (tok < n && v[tok] != ',')
            tok++;
        size_t a = 0, b = tok;
        while (a < b && is_ows(v[a]))
            a++;
        while (b > a && is_ows(v[b - 1]))
            b--;
        if (name_is(v + a, b - a, "close"))
            st->conn_close = 1;
        else if (name_is(v + a, b - a, "keep-alive"))
            st->conn_keep_alive = 1;
        v += tok < n ? tok + 1 : tok;
        n -= tok < n ? tok + 1 : tok;
    }
}

/* One "Name: value" line (without CRLF). */
static int parse_header(struct http_request *r, const char *p, size_t n, struct head_state *st)
{
    const char *colon = memchr(p, ':', n);
    size_t nlen = colon ? (size_t)(colon - p) : 0;
    if (nlen == 0)
        return 400;
    for (size_t i = 0; i < nlen; i++)
        if (!is_tchar((unsigned char)p[i]))
            return 400; /* also rejects obsolete line folding */
    const char *v = colon + 1;
    size_t vlen = n - nlen - 1;
    for (size_t i = 0; i < vlen; i++) {
        unsigned char c = (unsigned char)v[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 400;
    }
    while (vlen > 0 && is_ows(v[0]))
        v++, vlen--;
    while (vlen > 0 && is_ows(v[vlen - 1]))
        vlen--;

    if (name_is(p, nlen, "content-length"))
        return parse_content_length(r, v, vlen, st);
    if (name_is(p, nlen, "transfer-encoding"))
        r->has_transfer_encoding = 1;
    else if (name_is(p, nlen, "connection"))
        parse_connection(v, vlen, st);
    else if (name_is(p, nlen, "expect")) {
        if (!name_is(v, vlen, "100-continue"))
            return 417;
        r->expect_continue = 1;
    } else if (name_is(p, nlen, "authorization")) {
        r->auth = v;
        r->auth_len = vlen;
    }
    return 0;
}

int http_parse_head(struct http_request *r, const char *head, size_t len)
{
    memset(r, 0, sizeof(*r));
    const char *end = head + len;
    const char *eol = memmem(head, len, "\r\n", 2);
    if (!eol)
        return 400;
    int status = parse_request_line(r, head, (size_t)(eol - head));
    if (status != 0)
        return status;

    struct head_state st = {0, 0, 0};
    for (const char *p = eol + 2; p < end; p = eol + 2) {
        eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!eol || eol == p)
            break; /* the blank line */
        status = parse_header(r, p, (size_t)(eol - p), &st);
        if (status != 0)
            return status;
    }
    r->keep_alive = r->minor >= 1 ? !st.conn_close : st.conn_keep_alive && !st.conn_close;
    return st.too_large ? 413 : 0;
}

const char *http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    }
    return status >= 500 ? "Server Error" : "Client Error";
}
