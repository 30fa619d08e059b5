/* redis_sentinel.h -- Redis behind Sentinel: the sentinel:// form of
 * redis_url, and asking the Sentinels where the master is.
 *
 *   sentinel://[:password@]host[:port][,host[:port]...]/master-name[/db]
 *              [?sentinel_password=SECRET]
 *
 * password is the Redis master's (AUTH), sentinel_password the Sentinels'
 * (their requirepass); a port defaults to 26379. Nothing is resolved when
 * the URL is read: redis_conn.c asks where the master is each time it opens
 * a connection, so every reconnect of every program follows a failover. */
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

/* How long a lookup's answer (or failure) serves the connects that follow:
 * the links one reconnect round opens share one lookup. */
#define REDIS_SENTINEL_CACHE_MS 1000

/* Where a's master is: the address a +switch-master announced (until a
 * connect to it fails), or what a lookup found at most
 * REDIS_SENTINEL_CACHE_MS ago (idem), or else what the Sentinels say now
 * (SENTINEL get-master-addr-by-name), asked in turn from the last one that
 * answered; a Sentinel naming another master than the last +switch-master
 * did is behind, and believed only when no Sentinel names that one. -1
 * with err saying what each Sentinel said (down, refused our password,
 * knows no master of that name). Blocks while Sentinels are asked. */
int redis_sentinel_master(const struct redis_addr *a, char *host, size_t hostlen, int *port,
                          char *err, size_t errlen);

/* A connection to host:port, found by redis_sentinel_master, failed or
 * is not to the master: the next lookup asks the Sentinels again, the one
 * after the Sentinel that named it first. */
void redis_sentinel_failed(const struct redis_addr *a, const char *host, int port);

/* The Sentinels announced (+switch-master, common/sentinel_watch.h) that
 * a's master is host:port now: connect there, without asking. */
void redis_sentinel_announced(const struct redis_addr *a, const char *host, int port);

/* 1 when a +switch-master announced a master other than host:port: a
 * connection there is to the old master (which in a split may still say
 * ROLE master). */
int redis_sentinel_superseded(const struct redis_addr *a, const char *host, int port);

/* ROLE's reply says "master". A Sentinel may name a master that has just
 * been demoted: whoever connects checks. */
int redis_role_is_master(const redisReply *r);

/* An error reply "-READONLY ...": we are talking to a replica (the master
 * we connected to was demoted), so the connection is as good as lost. */
int redis_error_is_readonly(const char *str, size_t len);

#endif
