/* sentinel_watch.h -- hearing a failover as the Sentinels announce it.
 *
 * With a sentinel:// redis_url a program keeps one more connection, to one
 * of the Sentinels (the next one in the list after each failure),
 * subscribed to +switch-master. When that names our master, the program
 * drops its connections to the old master and reconnects at once, to the
 * master announced (redis_sentinel_announced: no Sentinel is asked, so one
 * that has not heard yet cannot send it back to the old one), instead of
 * at its next reconnect attempt, which its backoff may have put seconds
 * away; and a program that could still reach a master the Sentinels gave
 * up on (a network split) leaves it, and refuses it when it reconnects
 * (redis_sentinel_superseded). The subscription only hastens what
 * the reconnect does anyway: a Sentinel that is down or silent costs
 * nothing but this. The caller drives the connection like its others
 * (common/redis_async.h) and reconnects it with a backoff of its own. */
#ifndef AIMSG_SENTINEL_WATCH_H
#define AIMSG_SENTINEL_WATCH_H

#include "redis_async.h"
#include "redis_conn.h"

struct sentinel_watch {
    const struct redis_addr *addr;  /* the sentinel:// redis_url */
    struct redis_addr at;           /* the Sentinel asked now */
    int next;                       /* the Sentinel to ask next */
    int switched;                   /* a +switch-master of our master was heard */
    char new_host[256];             /* ... naming this master */
    int new_port;
};

/* 1 when redis_url is sentinel:// (there is something to watch). */
int sentinel_watch_init(struct sentinel_watch *sw, const struct redis_addr *addr);

/* Opens ra to the next Sentinel, subscribed to +switch-master (the caller
 * sets the connect/disconnect callbacks and ac->data). NULL and err
 * filled on failure. */
redisAsyncContext *sentinel_watch_connect(struct sentinel_watch *sw, struct redis_async *ra,
                                          char *err, size_t errlen);

/* 1 once after a +switch-master of our master was heard. */
int sentinel_watch_switched(struct sentinel_watch *sw);

/* 1 when ac is not connected to the master the last +switch-master named
 * (it should be dropped). */
int sentinel_watch_stale(const struct sentinel_watch *sw, const redisAsyncContext *ac);

#endif
