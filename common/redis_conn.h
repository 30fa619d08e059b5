/* redis_conn.h -- where Redis is (redis_url) and how to open a connection to it.
 *
 * redis://[:password@]host[:port][/db]   or   unix:/path/to/socket[?db=N] */
#ifndef AIMSG_REDIS_CONN_H
#define AIMSG_REDIS_CONN_H

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

struct redis_addr {
    char host[256];     /* or socket path when is_unix */
    int port;
    int is_unix;
    int db;
    char password[256];
};

int redis_addr_parse(struct redis_addr *a, const char *url, char *err, size_t errlen);

/* Blocking connection with connect/command timeouts; runs AUTH and SELECT.
 * Returns NULL and fills err on failure. */
redisContext *redis_connect(const struct redis_addr *a, int timeout_ms, char *err,
                            size_t errlen);

/* Non-blocking connection; AUTH and SELECT are queued as its first commands.
 * The caller attaches an event adapter. */
redisAsyncContext *redis_connect_async(const struct redis_addr *a, char *err, size_t errlen);

#endif
