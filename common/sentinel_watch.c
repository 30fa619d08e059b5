/* sentinel_watch.c -- see sentinel_watch.h. */
#define _POSIX_C_SOURCE 200809L
#include "sentinel_watch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "redis_sentinel.h"

#define SWITCH_CHANNEL "+switch-master"
/* Connecting and subscribing may take this long (a Sentinel host that is
 * gone); once subscribed nothing is awaited, so nothing expires. */
#define WATCH_TIMEOUT_MS 1000

int sentinel_watch_init(struct sentinel_watch *sw, const struct redis_addr *addr)
{
    memset(sw, 0, sizeof(*sw));
    sw->addr = addr;
    return addr->nsentinels > 0;
}

/* "<master name> <old ip> <old port> <new ip> <new port>" */
static int parse_switch(struct sentinel_watch *sw, const char *payload)
{
    char name[128], old_host[256], new_host[256];
    int old_port, new_port;
    if (sscanf(payload, "%127s %255s %d %255s %d", name, old_host, &old_port, new_host,
               &new_port) != 5 ||
        strcmp(name, sw->addr->master_name) != 0)
        return 0;
    memcpy(sw->new_host, new_host, sizeof(sw->new_host));
    sw->new_port = new_port;
    return 1;
}

/* ["message", "+switch-master", payload] (and the subscription's
 * confirmation, which says nothing) */
static void on_message(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)ac;
    struct sentinel_watch *sw = privdata;
    const redisReply *reply = r;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        strcmp(reply->element[0]->str, "message") != 0 ||
        reply->element[2]->type != REDIS_REPLY_STRING)
        return;
    if (parse_switch(sw, reply->element[2]->str)) {
        log_info("Sentinel %s:%d: +switch-master %s; reconnecting to the new master",
                 sw->at.host, sw->at.port, reply->element[2]->str);
        sw->switched = 1;
        redis_sentinel_announced(sw->addr, sw->new_host, sw->new_port);
    }
}

redisAsyncContext *sentinel_watch_connect(struct sentinel_watch *sw, struct redis_async *ra,
                                          char *err, size_t errlen)
{
    const struct redis_endpoint *s = &sw->addr->sentinels[sw->next];
    sw->next = (sw->next + 1) % sw->addr->nsentinels;
    memset(&sw->at, 0, sizeof(sw->at));
    memcpy(sw->at.host, s->host, sizeof(sw->at.host));
    sw->at.port = s->port;
    memcpy(sw->at.password, sw->addr->sentinel_password, sizeof(sw->at.password));
    redisAsyncContext *ac = redis_async_connect(ra, &sw->at, WATCH_TIMEOUT_MS, err, errlen);
    if (ac && redisAsyncCommand(ac, on_message, sw, "SUBSCRIBE %s", SWITCH_CHANNEL) != REDIS_OK) {
        snprintf(err, errlen, "Sentinel %s:%d: cannot subscribe", s->host, s->port);
        redisAsyncFree(ac);
        ra->ac = NULL;
        return NULL;
    }
    return ac;
}

int sentinel_watch_switched(struct sentinel_watch *sw)
{
    int switched = sw->switched;
    sw->switched = 0;
    return switched;
}

int sentinel_watch_stale(const struct sentinel_watch *sw, const redisAsyncContext *ac)
{
    return ac && sw->new_host[0] &&
           (ac->c.connection_type != REDIS_CONN_TCP || !ac->c.tcp.host ||
            strcmp(ac->c.tcp.host, sw->new_host) != 0 || ac->c.tcp.port != sw->new_port);
}
