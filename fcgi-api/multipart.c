/* multipart.c -- see multipart.h. */
#define _GNU_SOURCE /* memmem */
#include "multipart.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

/* Reads a header parameter value: token or quoted-string (with \-escapes). */
static const char *param_value(const char *p, const char *end, char *out, size_t outlen)
{
    size_t n = 0;
    if (p < end && *p == '"') {
        for (p++; p < end && *p != '"'; p++) {
            if (*p == '\\' && p + 1 < end)
                p++;
            if (n + 1 < outlen)
                out[n++] = *p;
        }
        if (p < end)
            p++; /* closing quote */
    } else {
        for (; p < end && *p != ';' && !isspace((unsigned char)*p); p++)
            if (n + 1 < outlen)
                out[n++] = *p;
    }
    out[n] = '\0';
    return p;
}

/* Finds parameter `name` in "type; a=1; b="x"" (case-insensitive name). */
static int find_param(const char *value, const char *end, const char *name, char *out,
                      size_t outlen)
{
    size_t nlen = strlen(name);
    const char *p = value;
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        if (!semi)
            return -1;
        p = semi + 1;
        while (p < end && isspace((unsigned char)*p))
            p++;
        if ((size_t)(end - p) > nlen && strncasecmp(p, name, nlen) == 0) {
            const char *q = p + nlen;
            while (q < end && isspace((unsigned char)*q))
                q++;
            if (q < end && *q == '=') {
                q++;
                while (q < end && isspace((unsigned char)*q))
                    q++;
                param_value(q, end, out, outlen);
                return 0;
            }
        }
        /* skip a quoted value so a ';' inside quotes does not split */
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (eq && eq + 1 < end && eq[1] == '"') {
            char skip[2];
            p = param_value(eq + 1, end, skip, sizeof(skip));
        }
    }
    return -1;
}

int multipart_boundary(const char *content_type, char *out, size_t outlen)
{
    const char *type = "multipart/form-data";
    if (!content_type || strncasecmp(content_type, type, strlen(type)) != 0)
        return -1;
    const char *end = content_type + strlen(content_type);
    if (find_param(content_type, end, "boundary", out, outlen) != 0)
        return -1;
    size_t n = strlen(out);
    return n >= 1 && n <= 70 ? 0 : -1; /* RFC 2046 */
}

static void parse_part_header(struct multipart_part *part, const char *line, const char *end)
{
    const char *colon = memchr(line, ':', (size_t)(end - line));
    if (!colon)
        return;
    size_t nlen = (size_t)(colon - line);
    const char *v = colon + 1;
    while (v < end && isspace((unsigned char)*v))
        v++;
    if (nlen == 19 && strncasecmp(line, "Content-Disposition", 19) == 0) {
        find_param(v, end, "name", part->name, sizeof(part->name));
        find_param(v, end, "filename", part->filename, sizeof(part->filename));
    } else if (nlen == 12 && strncasecmp(line, "Content-Type", 12) == 0) {
        size_t n = (size_t)(end - v);
        if (n >= sizeof(part->content_type))
            n = sizeof(part->content_type) - 1;
        memcpy(part->content_type, v, n);
        part->content_type[n] = '\0';
    }
}

/* The next "\r\n--boundary" that really is a delimiter line: followed by
 * "--", or by optional blanks and CRLF. Data may contain the same bytes
 * followed by anything else. */
static const char *find_delimiter(const char *p, const char *end, const char *delim, size_t dlen)
{
    char needle[84] = "\r\n";
    memcpy(needle + 2, delim, dlen);
    while (p < end) {
        const char *hit = memmem(p, (size_t)(end - p), needle, dlen + 2);
        if (!hit)
            return NULL;
        const char *q = hit + dlen + 2;
        if (end - q >= 2 && q[0] == '-' && q[1] == '-')
            return hit;
        while (q < end && (*q == ' ' || *q == '\t'))
            q++;
        if (end - q >= 2 && q[0] == '\r' && q[1] == '\n')
            return hit;
        p = hit + 1;
    }
    return NULL;
}

int multipart_parse(const char *body, size_t len, const char *boundary,
                    struct multipart_part *parts, size_t max, const char **err)
{
    char delim[80];
    size_t dlen = strlen(boundary) + 2;
    if (dlen + 1 > sizeof(delim)) {
        *err = "multipart 分隔符过长 (multipart boundary too long)";
        return -1;
    }
    delim[0] = delim[1] = '-';
    memcpy(delim + 2, boundary, dlen - 2);

    const char *end = body + len;
    /* The first delimiter is at the start or after a preamble line. */
    const char *p = body;
    if (!(len >= dlen && memcmp(body, delim, dlen) == 0)) {
        char first[84] = "\r\n";
        memcpy(first + 2, delim, dlen);
        p = memmem(body, len, first, dlen + 2);
        if (!p) {
            *err = "multipart 请求体中没有分隔符 (multipart body has no boundary)";
            return -1;
        }
        p += 2;
    }
    int n = 0;
    for (;;) {
        p += dlen;
        if (end - p >= 2 && p[0] == '-' && p[1] == '-')
            return n; /* closing delimiter */
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n') {
            *err = "multipart 请求体不完整或格式错误 (multipart body is truncated or malformed)";
            return -1;
        }
        p += 2;
        if ((size_t)n >= max) {
            *err = "multipart 字段过多 (too many multipart parts)";
            return -1;
        }
        struct multipart_part *part = &parts[n];
        memset(part, 0, sizeof(*part));
        for (;;) { /* headers */
            const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
            if (!eol) {
                *err = "multipart 字段头不完整 (multipart part headers are truncated)";
                return -1;
            }
            if (eol == p) {
                p += 2;
                break;
            }
            parse_part_header(part, p, eol);
            p = eol + 2;
        }
        const char *stop = find_delimiter(p, end, delim, dlen);
        if (!stop) {
            *err = "multipart 请求体缺少结束分隔符 (multipart body has no closing boundary)";
            return -1;
        }
        part->data = p;
        part->len = (size_t)(stop - p);
        n++;
        p = stop + 2;
    }
}

const struct multipart_part *multipart_find(const struct multipart_part *parts, int n,
                                            const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(parts[i].name, name) == 0)
            return &parts[i];
    return NULL;
}
