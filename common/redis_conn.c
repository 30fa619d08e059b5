/* redis_conn.c -- see redis_conn.h. */
#define _POSIX_C_SOURCE 200809L
#include "redis_conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decimal.h"
#include "redis_sentinel.h"

/* A database number: decimal digits only, 0..1000. */
static int parse_db(const char *s, int *db)
{
    long v;
    if (decimal_parse(s, strlen(s), 1000, &v) != 0)
        return -1;
    *db = (int)v;
    return 0;
}

#define SENTINEL_PASSWORD_KEY "sentinel_password="

const char *redis_url_redacted(const char *url, char *out, size_t outlen)
{
    const char *key = strstr(url, SENTINEL_PASSWORD_KEY);
    size_t shown = key ? (size_t)(key - url) + strlen(SENTINEL_PASSWORD_KEY) : strlen(url);
    const char *at = NULL;
    for (const char *p = url; p < url + shown; p++)
        if (*p == '@')
            at = p;
    size_t userinfo = shown; /* where the userinfo starts, if there is one */
    if (at) {
        const char *scheme_end = strstr(url, "://");
        const char *colon = memchr(url, ':', (size_t)(at - url));
        userinfo = scheme_end && scheme_end < at ? (size_t)(scheme_end + 3 - url)
                   : colon                       ? (size_t)(colon + 1 - url)
                                                 : 0;
    }
    if (at)
        snprintf(out, outlen, "%.*s%s%.*s%s", (int)userinfo, url, REDIS_URL_MASK,
                 (int)(shown - (size_t)(at - url)), at, key ? REDIS_URL_MASK : "");
    else
        snprintf(out, outlen, "%.*s%s", (int)shown, url, key ? REDIS_URL_MASK : "");
    return out;
}

/* The message of a redis_url that cannot be used. */
static int bad_url(char *err, size_t errlen, const char *url, const char *why)
{
    char shown[1024];
    snprintf(err, errlen, "redis_url '%s': %s", redis_url_redacted(url, shown, sizeof(shown)),
             why);
    return -1;
}

int redis_addr_parse(struct redis_addr *a, const char *url, char *err, size_t errlen)
{
    memset(a, 0, sizeof(*a));
    a->port = 6379;
    if (strncmp(url, REDIS_SENTINEL_SCHEME, strlen(REDIS_SENTINEL_SCHEME)) == 0)
        return redis_sentinel_parse(a, url, err, errlen);
    if (strncmp(url, "unix:", 5) == 0) {
        const char *path = url + 5;
        while (path[0] == '/' && path[1] == '/')
            path++;
        a->is_unix = 1;
        const char *q = strstr(path, "?db=");
        size_t n = q ? (size_t)(q - path) : strlen(path);
        if (n == 0 || n >= sizeof(a->host))
            return bad_url(err, errlen, url, "bad socket path");
        memcpy(a->host, path, n);
        if (q && parse_db(q + 4, &a->db) != 0)
            return bad_url(err, errlen, url, "bad database number");
        return 0;
    }
    if (strncmp(url, "redis://", 8) != 0)
        return bad_url(err, errlen, url, "expected redis://host:port/db, unix:/path or "
                       "sentinel://host:port,.../master-name");
    const char *p = url + 8;
    const char *at = strchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *pw = colon ? colon + 1 : p;
        size_t n = (size_t)(at - pw);
        if (n >= sizeof(a->password)) {
            snprintf(err, errlen, "redis_url: password too long");
            return -1;
        }
        memcpy(a->password, pw, n);
        p = at + 1;
    }
    size_t hn = strcspn(p, ":/");
    if (hn == 0 || hn >= sizeof(a->host))
        return bad_url(err, errlen, url, "missing host");
    memcpy(a->host, p, hn);
    p += hn;
    if (*p == ':') {
        char *end;
        long port = strtol(p + 1, &end, 10);
        if (end == p + 1 || port < 1 || port > 65535 || (*end && *end != '/'))
            return bad_url(err, errlen, url, "bad port");
        a->port = (int)port;
        p = end;
    }
    if (*p == '/' && p[1] && parse_db(p + 1, &a->db) != 0)
        return bad_url(err, errlen, url, "bad database number");
    return 0;
}

static int run_setup(redisContext *c, const struct redis_addr *a, char *err, size_t errlen)
{
    redisReply *r;
    if (a->password[0]) {
        r = redisCommand(c, "AUTH %s", a->password);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            snprintf(err, errlen, "redis AUTH failed: %s", r ? r->str : c->errstr);
            if (r)
                freeReplyObject(r);
            return -1;
        }
        freeReplyObject(r);
    }
    if (a->db) {
        r = redisCommand(c, "SELECT %d", a->db);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            snprintf(err, errlen, "redis SELECT failed: %s", r ? r->str : c->errstr);
            if (r)
                freeReplyObject(r);
            return -1;
        }
        freeReplyObject(r);
    }
    return 0;
}

int redis_addr_locate(const struct redis_addr *a, struct redis_addr *at, char *err,
                      size_t errlen)
{
    *at = *a;
    if (!a->nsentinels)
        return 0;
    return redis_sentinel_master(a, at->host, sizeof(at->host), &at->port, err, errlen);
}

/* With Sentinels: what they named must be the master still, and not the
 * one a +switch-master has replaced. */
static int check_role(redisContext *c, const struct redis_addr *a, char *err, size_t errlen)
{
    if (!a->nsentinels)
        return 0;
    if (redis_sentinel_superseded(a, a->host, a->port)) {
        snprintf(err, errlen, "redis at %s:%d is the master '%s' before the last "
                 "+switch-master", a->host, a->port, a->master_name);
        return -1;
    }
    redisReply *r = redisCommand(c, "ROLE");
    int ok = r && redis_role_is_master(r);
    if (!ok)
        snprintf(err, errlen, "redis at %s:%d (named by Sentinel as master '%s') is not the "
                 "master: %s", a->host, a->port, a->master_name,
                 !r ? c->errstr : r->type == REDIS_REPLY_ERROR ? r->str : "its ROLE says replica");
    if (r)
        freeReplyObject(r);
    return ok ? 0 : -1;
}

/* A connection to the master located for a failed: look it up again next
 * time. */
static void located_failed(const struct redis_addr *a)
{
    if (a->nsentinels)
        redis_sentinel_failed(a, a->host, a->port);
}

redisContext *redis_connect(const struct redis_addr *where, int timeout_ms, char *err,
                            size_t errlen)
{
    struct redis_addr located;
    if (redis_addr_locate(where, &located, err, errlen) != 0)
        return NULL;
    const struct redis_addr *a = &located;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    redisContext *c = a->is_unix ? redisConnectUnixWithTimeout(a->host, tv)
                                 : redisConnectWithTimeout(a->host, a->port, tv);
    if (!c || c->err) {
        snprintf(err, errlen, "cannot connect to redis at %s:%d: %s", a->host, a->port,
                 c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        located_failed(a);
        return NULL;
    }
    err[0] = '\0';
    if (redisSetTimeout(c, tv) != REDIS_OK || run_setup(c, a, err, errlen) != 0 ||
        check_role(c, a, err, errlen) != 0) {
        if (!err[0])
            snprintf(err, errlen, "redis: cannot set timeout");
        redisFree(c);
        located_failed(a);
        return NULL;
    }
    return c;
}

redisAsyncContext *redis_connect_async(const struct redis_addr *where, char *err, size_t errlen)
{
    struct redis_addr located;
    if (redis_addr_locate(where, &located, err, errlen) != 0)
        return NULL;
    const struct redis_addr *a = &located;
    redisAsyncContext *ac = a->is_unix ? redisAsyncConnectUnix(a->host)
                                       : redisAsyncConnect(a->host, a->port);
    if (!ac || ac->err) {
        snprintf(err, errlen, "cannot connect to redis at %s:%d: %s", a->host, a->port,
                 ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        located_failed(a);
        return NULL;
    }
    if (a->password[0])
        redisAsyncCommand(ac, NULL, NULL, "AUTH %s", a->password);
    if (a->db)
        redisAsyncCommand(ac, NULL, NULL, "SELECT %d", a->db);
    return ac;
}

const char *redis_peer(const redisContext *c, char *buf, size_t len)
{
    if (c->connection_type == REDIS_CONN_UNIX)
        snprintf(buf, len, "%s", c->unix_sock.path ? c->unix_sock.path : "?");
    else
        snprintf(buf, len, "%s:%d", c->tcp.host ? c->tcp.host : "?", c->tcp.port);
    return buf;
}
