/* api.h -- the HTTP API: routes and their handlers (docs/PROTOCOL.md). */
#ifndef AIMSG_API_H
#define AIMSG_API_H

#include "auth.h"
#include "config.h"
#include "proxy.h"
#include "request.h"
#include "store.h"

struct api {
    const struct config *cfg;
    struct store store;
    struct auth *auth;
    struct proxy_nets proxies;  /* whose X-Forwarded-For is believed */
};

/* Routes the request: answers it, or sends its Redis commands and leaves
 * r->then set. */
void api_begin(struct api *api, struct request *r);
/* Reads the request's Redis replies, if it waits for any, and answers it.
 * Requests end in the order they began (the order of their replies). */
void api_end(struct api *api, struct request *r);

/* 503 naming why Redis could not be used. */
void api_respond_redis_down(struct api *api, struct request *r);
/* The next reply to the request's commands; NULL when Redis failed it, and
 * the 503 is sent. The caller frees it. */
redisReply *api_recv_reply(struct api *api, struct request *r);

#endif
