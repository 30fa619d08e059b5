/* origin.c -- the Origin allowlist; see origin.h for the rules. */
#define _POSIX_C_SOURCE 200809L
#include "origin.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>

#define HOST_MAX 253            /* a DNS name, without the trailing dot */
#define ORIGIN_MAX 512          /* a longer Origin is nothing a browser sends */

enum scheme { SCHEME_ANY, SCHEME_HTTP, SCHEME_HTTPS };

/* An origin, or an item of the list when wild (host is then the domain
 * under which any subdomain matches; scheme may be ANY and port 0 = any). */
struct site {
    enum scheme scheme;
    int wild;
    int is_v6;
    unsigned char v6[16];
    char host[HOST_MAX + 1];    /* lower case, no trailing dot ("" for IPv6) */
    unsigned port;
};

static const char WHAT_ORIGIN[] =
    "not an origin: write scheme://host[:port] (https://chat.example.com), *.domain, null or *";

static const char *parse_scheme(const char *s, struct site *o, const char **rest)
{
    if (strncasecmp(s, "https://", 8) == 0) {
        o->scheme = SCHEME_HTTPS;
        *rest = s + 8;
    } else if (strncasecmp(s, "http://", 7) == 0) {
        o->scheme = SCHEME_HTTP;
        *rest = s + 7;
    } else {
        return strstr(s, "://") ? "the scheme must be http or https" : WHAT_ORIGIN;
    }
    return NULL;
}

/* A DNS name of len bytes into out (lower case, one trailing dot dropped):
 * labels of 1..63 letters, digits, '-' or '_'. Returns its number of
 * labels, or -1. */
static int parse_dns(const char *s, size_t len, char out[HOST_MAX + 1])
{
    if (len > 0 && s[len - 1] == '.')
        len--;
    if (len == 0 || len > HOST_MAX)
        return -1;
    int labels = 1;
    size_t label_len = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (label_len == 0)
                return -1;
            labels++;
            label_len = 0;
        } else if (isalnum(c) || c == '-' || c == '_') {
            if (++label_len > 63)
                return -1;
        } else {
            return -1;
        }
        out[i] = (char)tolower(c);
    }
    if (label_len == 0)
        return -1;
    out[len] = '\0';
    return labels;
}

/* ":port" or nothing (the scheme's default). */
static const char *parse_port(const char *s, struct site *o)
{
    if (*s == '\0') {
        o->port = o->scheme == SCHEME_HTTPS ? 443 : o->scheme == SCHEME_HTTP ? 80 : 0;
        return NULL;
    }
    if (*s == '/')
        return "an origin has no path (https://a.example, not https://a.example/)";
    if (*s != ':')
        return WHAT_ORIGIN;
    s++;
    size_t n = strlen(s);
    unsigned v = 0;
    if (n == 0 || n > 5 || strspn(s, "0123456789") != n)
        return "the port must be 1..65535";
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (unsigned)(s[i] - '0');
    if (v == 0 || v > 65535)
        return "the port must be 1..65535";
    o->port = v;
    return NULL;
}

/* A domain under which subdomains match: two labels or more, and not the
 * tail of an IPv4 address. */
static const char *parse_wild_domain(const char *s, size_t len, struct site *o)
{
    int labels = parse_dns(s, len, o->host);
    if (labels < 0)
        return "the domain after *. is not a DNS name";
    if (labels < 2)
        return "*.domain needs a domain of two labels or more (*.com would allow a whole TLD)";
    const char *last = strrchr(o->host, '.') + 1;
    if (strspn(last, "0123456789") == strlen(last))
        return "the domain after *. is not a DNS name";
    o->wild = 1;
    return NULL;
}

/* "scheme://host[:port]", and when wild_ok also a wildcard host:
 * scheme, "://", "*.domain", [":port"]. */
static const char *parse_site(const char *s, struct site *o, int wild_ok)
{
    const char *p, *why;
    memset(o, 0, sizeof(*o));
    if ((why = parse_scheme(s, o, &p)) != NULL)
        return why;
    if (*p == '[') {
        const char *close = strchr(p, ']');
        char buf[64];
        size_t len = close ? (size_t)(close - p - 1) : 0;
        if (!close || len == 0 || len >= sizeof(buf))
            return "bad IPv6 address in []";
        memcpy(buf, p + 1, len);
        buf[len] = '\0';
        if (inet_pton(AF_INET6, buf, o->v6) != 1)
            return "bad IPv6 address in []";
        o->is_v6 = 1;
        return parse_port(close + 1, o);
    }
    if (strchr(p, '@'))
        return "an origin has no user name (no @)";
    size_t len = strcspn(p, ":/");
    if (wild_ok && strncmp(p, "*.", 2) == 0)
        why = parse_wild_domain(p + 2, len - 2, o);
    else if (parse_dns(p, len, o->host) < 0)
        why = "bad host name";
    return why ? why : parse_port(p + len, o);
}

const char *origin_pattern_check(const char *item)
{
    struct site o;
    if (strcmp(item, "*") == 0 || strcmp(item, "null") == 0)
        return NULL;
    if (strncmp(item, "*.", 2) == 0) {
        memset(&o, 0, sizeof(o));
        size_t len = strlen(item + 2);
        if (strcspn(item + 2, ":/") != len)
            return "*.domain takes no port nor path (write https://*.domain:port for one port)";
        return parse_wild_domain(item + 2, len, &o);
    }
    return parse_site(item, &o, 1);
}

static int host_matches(const struct site *pat, const struct site *o)
{
    if (pat->is_v6 || o->is_v6)
        return pat->is_v6 && o->is_v6 && !pat->wild && memcmp(pat->v6, o->v6, 16) == 0;
    if (!pat->wild)
        return strcmp(pat->host, o->host) == 0;
    /* a subdomain: ".domain" at the end, with a label before it */
    size_t hl = strlen(o->host), dl = strlen(pat->host);
    return hl > dl + 1 && o->host[hl - dl - 1] == '.' && strcmp(o->host + hl - dl, pat->host) == 0;
}

static int item_matches(const char *item, const struct site *o)
{
    struct site pat;
    if (strncmp(item, "*.", 2) == 0) {
        memset(&pat, 0, sizeof(pat));
        if (parse_wild_domain(item + 2, strlen(item + 2), &pat) != NULL)
            return 0;
    } else if (parse_site(item, &pat, 1) != NULL) {
        return 0;               /* "null", or an item config would have refused */
    }
    if (pat.scheme != SCHEME_ANY && (pat.scheme != o->scheme || pat.port != o->port))
        return 0;
    return host_matches(&pat, o);
}

int origin_allowed(const struct config_list *allowed, const char *origin)
{
    if (!allowed || allowed->n == 0 || !origin || !origin[0])
        return 1;
    for (size_t i = 0; i < allowed->n; i++)
        if (strcmp(allowed->items[i], "*") == 0)
            return 1;
    if (strcmp(origin, "null") == 0) {
        for (size_t i = 0; i < allowed->n; i++)
            if (strcmp(allowed->items[i], "null") == 0)
                return 1;
        return 0;
    }
    struct site o;
    if (strlen(origin) > ORIGIN_MAX || parse_site(origin, &o, 0) != NULL)
        return 0;
    for (size_t i = 0; i < allowed->n; i++)
        if (item_matches(allowed->items[i], &o))
            return 1;
    return 0;
}
