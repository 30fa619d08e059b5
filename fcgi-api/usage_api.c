/* usage_api.c -- see usage_api.h. One script reads every day's counts in
 * one step. Without authentication everyone is the admin (as for every
 * route), so the reply holds every member counted: "anonymous", and the
 * users of days when authentication was on. */
#define _POSIX_C_SOURCE 200809L
#include "usage_api.h"

#include "clock.h"
#include "message.h"
#include "usage.h"

static void usage_replied(struct api *api, struct request *r)
{
    redisReply *reply = api_recv_reply(api, r);
    if (!reply)
        return;
    struct buf b = BUF_INIT;
    if (usage_json(&b, reply) != 0)
        respond_error(r, 500, MSG_INTERNAL);
    else
        respond(r, 200, "", b.data);
    buf_free(&b);
    freeReplyObject(reply);
}

void usage_api_get(struct api *api, struct request *r)
{
    static struct usage_read u; /* (large; one request at a time) */
    const char *member = r->admin ? NULL : usage_member(r->subject);
    if (usage_read_argv(&u, &api->store.keys, member, api->cfg->usage_days,
                        clock_wall_ms()) != 0) {
        respond_error(r, 500, MSG_INTERNAL);
        return;
    }
    if (store_send_command(&api->store, u.argc, u.argv, NULL) != 0) {
        api_respond_redis_down(api, r);
        return;
    }
    r->then = usage_replied;
}
