/* proxy.c -- trusted proxies and X-Forwarded-For; see proxy.h. */
#define _POSIX_C_SOURCE 200809L
#include "proxy.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest text an address (or address:port) can take; longer is garbage. */
#define TEXT_MAX 64

static const unsigned char v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* An IPv4 or IPv6 address of len bytes, into the 128-bit space. */
static int parse_ip(const char *s, size_t len, unsigned char out[16], int *is_v4)
{
    char buf[TEXT_MAX];
    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (inet_pton(AF_INET, buf, out + 12) == 1) {
        memcpy(out, v4_mapped_prefix, 12);
        if (is_v4)
            *is_v4 = 1;
        return 0;
    }
    if (inet_pton(AF_INET6, buf, out) == 1) {
        if (is_v4)
            *is_v4 = 0;
        return 0;
    }
    return -1;
}

/* Decimal digits only, at most max_digits of them, value at most max. */
static int parse_number(const char *s, size_t len, size_t max_digits, unsigned max,
                        unsigned *out)
{
    if (len == 0 || len > max_digits)
        return -1;
    unsigned v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

static int in_net(const struct proxy_net *net, const unsigned char a[16])
{
    unsigned full = net->prefix / 8, rest = net->prefix % 8;
    if (memcmp(net->addr, a, full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (net->addr[full] & mask) == (a[full] & mask);
}

const char *proxy_net_parse(const char *text, struct proxy_net *out)
{
    const char *slash = strchr(text, '/');
    size_t addr_len = slash ? (size_t)(slash - text) : strlen(text);
    int is_v4;
    memset(out, 0, sizeof(*out));
    if (parse_ip(text, addr_len, out->addr, &is_v4) != 0)
        return "not an IP address or CIDR network (10.0.0.0/8, ::1, fd00::/8)";
    unsigned bits = is_v4 ? 32 : 128;
    if (slash && parse_number(slash + 1, strlen(slash + 1), 3, bits, &bits) != 0)
        return is_v4 ? "the prefix length after / must be 0..32"
                     : "the prefix length after / must be 0..128";
    out->prefix = is_v4 ? bits + 96 : bits;
    struct proxy_net masked = *out;
    unsigned full = out->prefix / 8, rest = out->prefix % 8;
    if (full < 16) {
        masked.addr[full] &= (unsigned char)(0xff << (8 - rest));
        memset(masked.addr + full + 1, 0, 16 - full - 1);
    }
    if (memcmp(masked.addr, out->addr, 16) != 0)
        return "bits are set after the prefix length (a typo? 10.1.0.0/8 is written 10.0.0.0/8)";
    return NULL;
}

int proxy_nets_init(struct proxy_nets *n, const struct config_list *l, char *err,
                    size_t errlen)
{
    n->n = 0;
    n->nets = NULL;
    if (l->n == 0)
        return 0;
    n->nets = calloc(l->n, sizeof(*n->nets));
    if (!n->nets) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < l->n; i++) {
        const char *why = proxy_net_parse(l->items[i], &n->nets[i]);
        if (why) {
            snprintf(err, errlen, "trusted_proxies: '%.64s': %s", l->items[i], why);
            proxy_nets_free(n);
            return -1;
        }
    }
    n->n = l->n;
    return 0;
}

void proxy_nets_free(struct proxy_nets *n)
{
    free(n->nets);
    n->nets = NULL;
    n->n = 0;
}

static int trusted(const struct proxy_nets *n, const unsigned char a[16])
{
    for (size_t i = 0; i < n->n; i++)
        if (in_net(&n->nets[i], a))
            return 1;
    return 0;
}

int proxy_trusted(const struct proxy_nets *n, const char *addr)
{
    unsigned char a[16];
    if (!addr || parse_ip(addr, strlen(addr), a, NULL) != 0)
        return 0;
    return trusted(n, a);
}

/* One X-Forwarded-For entry, already trimmed: an address, "a.b.c.d:port"
 * or "[v6]" / "[v6]:port". */
static int parse_entry(const char *s, size_t len, unsigned char out[16])
{
    unsigned port;
    if (len > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (!close)
            return -1;
        size_t inner = (size_t)(close - s) - 1, after = len - inner - 2;
        int is_v4;
        if (parse_ip(s + 1, inner, out, &is_v4) != 0 || is_v4)
            return -1;
        if (after == 0)
            return 0;
        return close[1] == ':' && parse_number(close + 2, after - 1, 5, 65535, &port) == 0 ? 0
                                                                                          : -1;
    }
    if (parse_ip(s, len, out, NULL) == 0)
        return 0;
    /* not an address as a whole: maybe IPv4 with a port (one colon only,
     * so that no IPv6 text is cut in two) */
    const char *colon = memchr(s, ':', len);
    if (!colon || memchr(colon + 1, ':', len - (size_t)(colon - s) - 1))
        return -1;
    int is_v4;
    if (parse_ip(s, (size_t)(colon - s), out, &is_v4) != 0 || !is_v4)
        return -1;
    return parse_number(colon + 1, len - (size_t)(colon - s) - 1, 5, 65535, &port);
}

static int format_ip(const unsigned char a[16], char *out, size_t outlen)
{
    char buf[PROXY_ADDR_MAX];
    const char *p = memcmp(a, v4_mapped_prefix, 12) == 0
                        ? inet_ntop(AF_INET, a + 12, buf, sizeof(buf))
                        : inet_ntop(AF_INET6, a, buf, sizeof(buf));
    if (!p || strlen(buf) >= outlen)
        return -1;
    memcpy(out, buf, strlen(buf) + 1);
    return 0;
}

static int is_ows(char c) /* RFC 7230 optional whitespace */
{
    return c == ' ' || c == '\t';
}

int proxy_client_address(const struct proxy_nets *n, const char *peer,
                         const char *x_forwarded_for, char *out, size_t outlen)
{
    unsigned char cur[16];
    if (outlen == 0)
        return -1;
    out[0] = '\0';
    if (!peer)
        peer = "";
    if (parse_ip(peer, strlen(peer), cur, NULL) != 0) {
        /* not an IP address: nothing to look up, nor to believe XFF for */
        if (strlen(peer) >= outlen)
            return -1;
        memcpy(out, peer, strlen(peer) + 1);
        return 0;
    }
    const char *xff = x_forwarded_for ? x_forwarded_for : "";
    size_t end = strlen(xff);          /* the entries left are xff[0..end) */
    int any = 0;                       /* one or more non-blank bytes */
    for (size_t i = 0; i < end && !any; i++)
        any = !is_ows(xff[i]);
    while (any && trusted(n, cur)) {
        size_t start = end;
        while (start > 0 && xff[start - 1] != ',')
            start--;
        size_t a = start, b = end;
        while (a < b && is_ows(xff[a]))
            a++;
        while (b > a && is_ows(xff[b - 1]))
            b--;
        unsigned char next[16];
        if (parse_entry(xff + a, b - a, next) != 0)
            break;
        memcpy(cur, next, sizeof(cur));
        if (start == 0)
            break;                     /* the leftmost entry was taken */
        end = start - 1;               /* before the comma */
    }
    if (format_ip(cur, out, outlen) != 0) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}
