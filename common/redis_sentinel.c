/* redis_sentinel.c -- see redis_sentinel.h. */
#define _POSIX_C_SOURCE 200809L
#include "redis_sentinel.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    if (n == 0 || n > 5)
        return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < 1 || v > 65535)
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

int redis_sentinel_master(const struct redis_addr *a, char *host, size_t hostlen, int *port,
                          char *err, size_t errlen)
{
    snprintf(err, errlen, "no Sentinel named the master '%s':", a->master_name);
    for (int i = 0; i < a->nsentinels; i++) {
        char why[200];
        const struct redis_endpoint *s = &a->sentinels[i];
        if (ask_one(a, s, host, hostlen, port, why, sizeof(why)))
            return 0;
        append(err, errlen, "%s Sentinel %s:%d: %s", i ? ";" : "", s->host, s->port, why);
    }
    return -1;
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
