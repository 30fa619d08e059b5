/* query.c -- see query.h. */
#include "query.h"

#include <string.h>

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* s[0..len) percent-decoded into out: 1, or -1 (bad escape, NUL, too long) */
static int decode(const char *s, size_t len, char *out, size_t size)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++, n++) {
        if (n + 1 >= size)
            return -1;
        char c = s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi = i + 2 < len ? hex_value(s[i + 1]) : -1;
            int lo = hi >= 0 ? hex_value(s[i + 2]) : -1;
            if (lo < 0 || (hi == 0 && lo == 0))
                return -1;
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        out[n] = c;
    }
    if (size == 0)
        return -1;
    out[n] = '\0';
    return 1;
}

int query_param(const char *query, const char *name, char *out, size_t size)
{
    size_t name_len = strlen(name);
    for (const char *p = query; *p;) {
        size_t len = strcspn(p, "&");
        if (len >= name_len && strncmp(p, name, name_len) == 0 &&
            (len == name_len || p[name_len] == '='))
            return decode(p + name_len + (len > name_len), len - name_len - (len > name_len),
                          out, size);
        p += len;
        if (*p == '&')
            p++;
    }
    return 0;
}
