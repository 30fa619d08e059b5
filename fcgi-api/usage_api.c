/* usage_api.c -- see usage_api.h. One script reads a page of the days'
 * counts in one step: at most limit rows (?limit=), from where the previous
 * page ended (?cursor=, its "next"), of every day or one (?day=). Without
 * authentication everyone is the admin (as for every route), so the reply
 * holds every member counted: "anonymous", and the users of days when
 * authentication was on. */
#define _POSIX_C_SOURCE 200809L
#include "usage_api.h"

#include "clock.h"
#include "message.h"
#include "query.h"
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

/* The page the query string asks for: NULL, or why it is not acceptable. */
static const char *page_asked(const char *query, struct usage_page *p)
{
    static const struct {
        const char *name;
        const char *(*set)(struct usage_page *, const char *);
        const char *bad;
    } params[] = {
        {"limit", usage_page_limit, MSG_USAGE_LIMIT_BAD},
        {"cursor", usage_page_cursor, MSG_USAGE_CURSOR_BAD},
        {"day", usage_page_day, MSG_USAGE_DAY_BAD},
    };
    usage_page_init(p);
    for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
        char value[512];
        int found = query_param(query, params[i].name, value, sizeof(value));
        const char *why = found < 0 ? params[i].bad : found ? params[i].set(p, value) : NULL;
        if (why)
            return why;
    }
    return NULL;
}

void usage_api_get(struct api *api, struct request *r)
{
    static struct usage_read u; /* (large; one request at a time) */
    struct usage_page page;
    const char *member = r->admin ? NULL : usage_member(r->subject);
    const char *why = page_asked(r->query, &page);
    if (why) {
        respond_error(r, 400, why);
        return;
    }
    if (usage_read_argv(&u, &api->store.keys, member, api->cfg->usage_days, clock_wall_ms(),
                        &page) != 0) {
        respond_error(r, 500, MSG_INTERNAL);
        return;
    }
    if (store_send_command(&api->store, u.argc, u.argv, NULL) != 0) {
        api_respond_redis_down(api, r);
        return;
    }
    r->then = usage_replied;
}
