/* redis_sentinel.c -- see redis_sentinel.h. */
#define _POSIX_C_SOURCE 200809L
#include "redis_sentinel.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "decimal.h"
#include "log.h"

#define PASSWORD_PARAM "?sentinel_password="

static int fail(char *err, size_t errlen, const char *url, const char *why)
{
    char shown[1024];
    snprintf(err, errlen, "redis_url '%s': %s", redis_url_redacted(url, shown, sizeof(shown)),
             why);
    return -1;
}

/* A port: 1..65535, digits only. */
static int parse_port(const char *s, size_t n, int *port)
{
    long v;
    if (decimal_parse(s, n, 65535, &v) != 0 || v < 1)
        return -1;
    *port = (int)v;
    return 0;
}

/* host[:port] of length n */
static int parse_endpoint(struct redis_endpoint *e, const char *s, size_t n)
{
    const char *colon = memchr(s, ':', n);
    size_t hn = colon ? (size_t)(colon - s) : n;
    if (hn == 0 || hn >= sizeof(e->host))
        return -1;
    memcpy(e->host, s, hn);
    e->host[hn] = '\0';
    e->port = REDIS_SENTINEL_PORT;
    return colon ? parse_port(colon + 1, n - hn - 1, &e->port) : 0;
}

/* Sentinel names its masters with printable words: no space, no '/', '?'. */
static int name_char(char c)
{
    return c > ' ' && c < 127 && c != '/' && c != '?' && c != '@' && c != ',';
}

int redis_sentinel_parse(struct redis_addr *a, const char *url, char *err, size_t errlen)
{
    const char *p = url + strlen(REDIS_SENTINEL_SCHEME);
    const char *q = strstr(p, PASSWORD_PARAM);
    const char *end = q ? q : p + strlen(p);
    if (q) {
        const char *pw = q + strlen(PASSWORD_PARAM);
        if (strlen(pw) >= sizeof(a->sentinel_password))
            return fail(err, errlen, url, "sentinel_password too long");
        strcpy(a->sentinel_password, pw);
    } else if (strchr(p, '?')) {
        return fail(err, errlen, url, "the only parameter is ?sentinel_password=");
    }
    const char *at = memchr(p, '@', (size_t)(end - p));
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *pw = colon ? colon + 1 : p;
        if ((size_t)(at - pw) >= sizeof(a->password))
            return fail(err, errlen, url, "password too long");
        memcpy(a->password, pw, (size_t)(at - pw));
        p = at + 1;
    }
    const char *slash = memchr(p, '/', (size_t)(end - p));
    if (!slash)
        return fail(err, errlen, url, "expected sentinel://host:port,.../master-name");
    while (p < slash) {
        const char *comma = memchr(p, ',', (size_t)(slash - p));
        const char *item_end = comma ? comma : slash;
        if (a->nsentinels == REDIS_MAX_SENTINELS)
            return fail(err, errlen, url, "more than 8 Sentinels");
        if (parse_endpoint(&a->sentinels[a->nsentinels], p, (size_t)(item_end - p)) != 0)
            return fail(err, errlen, url, "bad Sentinel host:port");
        a->nsentinels++;
        p = comma ? comma + 1 : slash;
        if (comma && p == slash)
            return fail(err, errlen, url, "bad Sentinel host:port");
    }
    if (!a->nsentinels)
        return fail(err, errlen, url, "no Sentinel host:port");
    p = slash + 1;
    size_t nn = 0;
    while (p + nn < end && name_char(p[nn]))
        nn++;
    if (nn == 0 || nn >= sizeof(a->master_name))
        return fail(err, errlen, url, "missing or bad master name");
    memcpy(a->master_name, p, nn);
    p += nn;
    if (p == end)
        return 0;
    if (*p != '/')
        return fail(err, errlen, url, "bad master name");
    p++;
    if (p == end)
        return 0;
    char *num_end;
    if (*p < '0' || *p > '9')
        return fail(err, errlen, url, "bad database number");
    long db = strtol(p, &num_end, 10);
    if (num_end != end || db > 1000)
        return fail(err, errlen, url, "bad database number");
    a->db = (int)db;
    return 0;
}

/* Appends to a bounded message. */
__attribute__((format(printf, 3, 4)))
static void append(char *buf, size_t len, const char *fmt, ...)
{
    size_t used = strlen(buf);
    if (used + 1 >= len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + used, len - used, fmt, ap);
    va_end(ap);
}

/* One Sentinel's answer: 1 and host/port filled, 0 with why filled. */
static int ask_one(const struct redis_addr *a, const struct redis_endpoint *s, char *host,
                   size_t hostlen, int *port, char *why, size_t whylen)
{
    struct timeval tv = {REDIS_SENTINEL_TIMEOUT_MS / 1000, (REDIS_SENTINEL_TIMEOUT_MS % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(s->host, s->port, tv);
    if (!c || c->err || redisSetTimeout(c, tv) != REDIS_OK) {
        snprintf(why, whylen, "%s", c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return 0;
    }
    int found = 0;
    redisReply *r = NULL;
    if (a->sentinel_password[0]) {
        r = redisCommand(c, "AUTH %s", a->sentinel_password);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            snprintf(why, whylen, "AUTH: %s", r ? r->str : c->errstr);
            goto out;
        }
        freeReplyObject(r);
    }
    r = redisCommand(c, "SENTINEL get-master-addr-by-name %s", a->master_name);
    if (!r) {
        snprintf(why, whylen, "%s", c->errstr);
    } else if (r->type == REDIS_REPLY_NIL) {
        snprintf(why, whylen, "knows no master named '%s' (see `sentinel monitor` in its "
                 "sentinel.conf)", a->master_name);
    } else if (r->type == REDIS_REPLY_ERROR) {
        snprintf(why, whylen, "%s", r->str);
    } else if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
               r->element[0]->type != REDIS_REPLY_STRING ||
               r->element[1]->type != REDIS_REPLY_STRING || r->element[0]->len >= hostlen ||
               parse_port(r->element[1]->str, r->element[1]->len, port) != 0) {
        snprintf(why, whylen, "unexpected reply (not a Sentinel?)");
    } else {
        memcpy(host, r->element[0]->str, r->element[0]->len + 1);
        found = 1;
    }
out:
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return found;
}

/* What this process's lookups remember between connects. A process uses
 * one sentinel:// redis_url; asked about another, it starts afresh. */
static struct {
    char master_name[128];
    int nsentinels;
    struct redis_endpoint sentinels[REDIS_MAX_SENTINELS];
    int first;                /* the Sentinel asked first: the last that answered */
    long long until_ms;       /* what follows holds until then (0: nothing known) */
    char host[256];           /* the master last named or announced ... */
    int port;
    char err[512];            /* ... or, host "", why no Sentinel named one */
    char announced_host[256]; /* the last +switch-master's new master: a */
    int announced_port;       /* Sentinel naming another one is behind */
} known;

static void know_about(const struct redis_addr *a)
{
    int same = known.nsentinels == a->nsentinels && strcmp(known.master_name, a->master_name) == 0;
    for (int i = 0; same && i < a->nsentinels; i++)
        same = known.sentinels[i].port == a->sentinels[i].port &&
               strcmp(known.sentinels[i].host, a->sentinels[i].host) == 0;
    if (same)
        return;
    memset(&known, 0, sizeof(known));
    memcpy(known.master_name, a->master_name, sizeof(known.master_name));
    known.nsentinels = a->nsentinels;
    memcpy(known.sentinels, a->sentinels, sizeof(known.sentinels));
}

static int is_announced(const char *host, int port)
{
    return known.announced_host[0] && port == known.announced_port &&
           strcmp(host, known.announced_host) == 0;
}

static void know_master(const char *host, int port, long long until_ms)
{
    snprintf(known.host, sizeof(known.host), "%s", host);
    known.port = port;
    known.until_ms = until_ms;
}

/* Asks the Sentinels, the last that answered first. An answer other than
 * the announced master is taken only when no Sentinel names that one. */
static int ask_all(const struct redis_addr *a, char *err, size_t errlen)
{
    snprintf(err, errlen, "no Sentinel named the master '%s':", a->master_name);
    int other = -1;
    char other_host[256] = "";
    int other_port = 0;
    for (int k = 0; k < a->nsentinels; k++) {
        int i = (known.first + k) % a->nsentinels;
        const struct redis_endpoint *s = &a->sentinels[i];
        char why[200], host[256];
        int port;
        if (!ask_one(a, s, host, sizeof(host), &port, why, sizeof(why))) {
            append(err, errlen, "%s Sentinel %s:%d: %s", k ? ";" : "", s->host, s->port, why);
            continue;
        }
        if (!known.announced_host[0] || is_announced(host, port)) {
            known.first = i;
            know_master(host, port, clock_ms() + REDIS_SENTINEL_CACHE_MS);
            return 0;
        }
        append(err, errlen, "%s Sentinel %s:%d: names %s:%d, not %s:%d as +switch-master did",
               k ? ";" : "", s->host, s->port, host, port, known.announced_host,
               known.announced_port);
        if (other < 0) {
            other = i;
            memcpy(other_host, host, sizeof(other_host));
            other_port = port;
        }
    }
    if (other < 0)
        return -1;
    log_warn("no Sentinel names %s:%d (the last +switch-master) any more; %s:%d it is",
             known.announced_host, known.announced_port, other_host, other_port);
    known.announced_host[0] = '\0';
    known.first = other;
    know_master(other_host, other_port, clock_ms() + REDIS_SENTINEL_CACHE_MS);
    return 0;
}

int redis_sentinel_master(const struct redis_addr *a, char *host, size_t hostlen, int *port,
                          char *err, size_t errlen)
{
    know_about(a);
    if (clock_ms() >= known.until_ms && ask_all(a, known.err, sizeof(known.err)) != 0) {
        known.host[0] = '\0';
        known.until_ms = clock_ms() + REDIS_SENTINEL_CACHE_MS;
    }
    if (!known.host[0]) {
        snprintf(err, errlen, "%s", known.err);
        return -1;
    }
    if (strlen(known.host) >= hostlen) {
        snprintf(err, errlen, "master host name too long");
        return -1;
    }
    memcpy(host, known.host, strlen(known.host) + 1);
    *port = known.port;
    return 0;
}

void redis_sentinel_failed(const struct redis_addr *a, const char *host, int port)
{
    know_about(a);
    if (!known.host[0] || known.port != port || strcmp(known.host, host) != 0)
        return; /* (already forgotten: the links of one round all fail) */
    known.host[0] = '\0';
    known.until_ms = 0;
    /* the Sentinel that named it may be the one behind */
    if (!is_announced(host, port))
        known.first = (known.first + 1) % a->nsentinels;
}

void redis_sentinel_announced(const struct redis_addr *a, const char *host, int port)
{
    know_about(a);
    snprintf(known.announced_host, sizeof(known.announced_host), "%s", host);
    known.announced_port = port;
    know_master(host, port, LLONG_MAX);
}

int redis_sentinel_superseded(const struct redis_addr *a, const char *host, int port)
{
    know_about(a);
    return known.announced_host[0] && !is_announced(host, port);
}

int redis_role_is_master(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
           r->element[0]->type == REDIS_REPLY_STRING && strcmp(r->element[0]->str, "master") == 0;
}

int redis_error_is_readonly(const char *str, size_t len)
{
    return len >= 8 && memcmp(str, "READONLY", 8) == 0;
}
