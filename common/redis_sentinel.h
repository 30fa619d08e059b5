/* redis_sentinel.h -- Redis behind Sentinel: the sentinel:// form of
 * redis_url, and asking the Sentinels where the master is.
 *
 *   sentinel://[:password@]host[:port][,host[:port]...]/master-name[/db]
 *              [?sentinel_password=SECRET]
 *
 * password is the Redis master's (AUTH), sentinel_password the Sentinels'
 * (their requirepass); a port defaults to 26379. Nothing is resolved when
 * the URL is read: redis_conn.c asks the Sentinels each time it opens a
 * connection, so every reconnect of every program follows a failover. */
#ifndef AIMSG_REDIS_SENTINEL_H
#define AIMSG_REDIS_SENTINEL_H

#include <stddef.h>
#include <hiredis/hiredis.h>

#include "redis_conn.h"

#define REDIS_SENTINEL_SCHEME "sentinel://"
#define REDIS_SENTINEL_PORT 26379
/* How long one Sentinel may take to accept the connection, and then each
 * reply, before the next is asked: what a Sentinel that is down costs a
 * connect, which blocks the program's loop meanwhile (a refused connection
 * fails at once). */
#define REDIS_SENTINEL_TIMEOUT_MS 500

/* Parses url (which starts with REDIS_SENTINEL_SCHEME) into a. */
int redis_sentinel_parse(struct redis_addr *a, const char *url, char *err, size_t errlen);

/* Asks the Sentinels of a, in order, for the address of a's master
 * (SENTINEL get-master-addr-by-name); the first that names it wins. -1 with
 * err saying what each Sentinel said (down, refused our password, knows
 * no master of that name). */
int redis_sentinel_master(const struct redis_addr *a, char *host, size_t hostlen, int *port,
                          char *err, size_t errlen);

/* ROLE's reply says "master". A Sentinel may name a master that has just
 * been demoted: whoever connects checks. */
int redis_role_is_master(const redisReply *r);

/* An error reply "-READONLY ...": we are talking to a replica (the master
 * we connected to was demoted), so the connection is as good as lost. */
int redis_error_is_readonly(const char *str, size_t len);

#endif
