/* redis_conn.h -- where Redis is (redis_url) and how to open a connection to it.
 *
 * redis://[:password@]host[:port][/db]   or   unix:/path/to/socket[?db=N]
 * or a master behind Sentinel (common/redis_sentinel.h):
 * sentinel://[:password@]host[:port][,host[:port]...]/master-name[/db][?sentinel_password=S]
 *
 * With sentinel:// every connection opened first finds out where the master
 * is (redis_sentinel_master: the Sentinels, or what they said a moment ago)
 * and checks that what it reached is the master: any reconnect follows a
 * failover. */
#ifndef AIMSG_REDIS_CONN_H
#define AIMSG_REDIS_CONN_H

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#define REDIS_MAX_SENTINELS 8

struct redis_endpoint {
    char host[256];
    int port;
};

struct redis_addr {
    char host[256];     /* or socket path when is_unix; "" with Sentinels */
    int port;
    int is_unix;
    int db;
    char password[256];
    /* sentinel://: nsentinels > 0, and host/port are the master's only in
     * the copy redis_addr_locate fills */
    int nsentinels;
    struct redis_endpoint sentinels[REDIS_MAX_SENTINELS];
    char master_name[128];
    char sentinel_password[256];
};

/* Fills a from url. err (on failure) shows url only as redis_url_redacted
 * does. */
int redis_addr_parse(struct redis_addr *a, const char *url, char *err, size_t errlen);

/* url as it may be logged or shown: its userinfo (user:password) and the
 * value of sentinel_password= replaced by REDIS_URL_MASK, e.g.
 * sentinel://MASK@s1,s2/mm?sentinel_password=MASK. Anything before the
 * last '@' counts as userinfo, so a password that is not well formed is
 * hidden too. Returns out. */
#define REDIS_URL_MASK "***"
const char *redis_url_redacted(const char *url, char *out, size_t outlen);

/* Where to connect now: a itself, or for sentinel:// a copy with the host
 * and port of the master the Sentinels name. -1 and err filled when no
 * Sentinel names it. */
int redis_addr_locate(const struct redis_addr *a, struct redis_addr *at, char *err,
                      size_t errlen);

/* Blocking connection with connect/command timeouts; runs AUTH and SELECT
 * (and with Sentinels, checks ROLE is master). Returns NULL and fills err on
 * failure. */
redisContext *redis_connect(const struct redis_addr *a, int timeout_ms, char *err,
                            size_t errlen);

/* Non-blocking connection; AUTH and SELECT are queued as its first commands.
 * The caller attaches an event adapter. With Sentinels the Sentinels may be
 * asked first (blocking, REDIS_SENTINEL_TIMEOUT_MS each at most) and the
 * caller checks ROLE (common/redis_async.c does). */
redisAsyncContext *redis_connect_async(const struct redis_addr *a, char *err, size_t errlen);

/* "host:port" or the socket path of a connection, for the log. */
const char *redis_peer(const redisContext *c, char *buf, size_t len);

#endif
