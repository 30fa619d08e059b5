/* wspush.h -- the state of one ws-push instance, shared by its parts:
 * client.c (the WebSocket protocol), redis_link.c (Redis on the same loop),
 * conn.c (connections and their queues), main.c (start and stop). */
#ifndef AIMSG_WSPUSH_H
#define AIMSG_WSPUSH_H

#include <libwebsockets.h>

#include "config.h"
#include "conn.h"
#include "job.h"
#include "keys.h"
#include "redis_conn.h"

struct wspush;

/* One hiredis async connection whose socket lives in the lws loop. */
struct redis_link {
    struct wspush *wp;
    redisAsyncContext *ac;  /* NULL while disconnected */
    struct lws *wsi;        /* the adopted (dup'ed) socket */
    int is_subscriber;
};

struct wspush {
    const struct config *cfg;
    struct keys keys;
    struct redis_addr addr;
    char instance[128];
    struct lws_context *ctx;
    struct lws_vhost *vhost;
    struct conn_table conns;
    struct redis_link sub, cmd;
    lws_sorted_usec_list_t tick;
    long long reconnect_at, next_presence;
    int backoff_ms;
    long long published_count;
    size_t max_client_message;
    int stopping;
};

/* client.c */
extern const struct lws_protocols client_protocol;
void client_send_error(struct wspush *wp, struct conn *c, const char *message);

/* redis_link.c */
extern const struct lws_protocols redis_link_protocol;
void redis_link_tick(struct wspush *wp);           /* reconnect, presence */
void redis_link_close(struct wspush *wp);          /* shutdown: presence gone */
/* Queues a job whose answer goes to connection conn_id only; the client gets
 * a "queued" frame (or an error) when Redis has it. image may be NULL. */
void redis_link_submit(struct wspush *wp, uint64_t conn_id, const struct job *j,
                       const void *image, size_t image_len);

#endif
