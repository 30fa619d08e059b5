/* conversation_api.c -- see conversation_api.h. Both run one script of
 * common/conversation.c, which checks the owner and reads or deletes in
 * one step. With authentication a conversation is its user's (an admin's
 * token may read and forget any): to anyone else it does not exist (404). */
#define _POSIX_C_SOURCE 200809L
#include "conversation_api.h"

#include <stdio.h>
#include <string.h>

#include "conversation.h"
#include "log.h"
#include "message.h"

#define CONVERSATION_PATH "/api/conversation/"

static const char *id_of(const struct request *r)
{
    return r->path + strlen(CONVERSATION_PATH);
}

/* The script on the conversation the path names, as the caller may see it:
 * 0, or -1 when the request was answered. */
static int send_script(struct api *api, struct request *r, const char *script)
{
    struct conversation_keys ck;
    if (conversation_keys(&api->store.keys, id_of(r), &ck) != 0) {
        respond_error(r, 400, MSG_CONVERSATION_BAD);
        return -1;
    }
    /* r->owner is NULL when anyone may (no authentication, an admin) */
    const char *argv[] = {"EVAL", script, "3", ck.owner, ck.turns, ck.queue,
                          r->owner ? r->subject : ""};
    if (store_send_command(&api->store, 7, argv, NULL) != 0) {
        api_respond_redis_down(api, r);
        return -1;
    }
    return 0;
}

static void respond_unknown(struct request *r)
{
    respond_error(r, 404, MSG_CONVERSATION_UNKNOWN);
}

/* {"id":…,"turns":[…]}: the stored turns are JSON objects already */
static void turns_replied(struct api *api, struct request *r)
{
    redisReply *reply = api_recv_reply(api, r);
    if (!reply)
        return;
    struct buf b = BUF_INIT;
    const redisReply *turns = reply->type == REDIS_REPLY_ARRAY && reply->elements == 1
                                  ? reply->element[0] : NULL;
    if (!turns || turns->type != REDIS_REPLY_ARRAY) {
        respond_unknown(r);
        freeReplyObject(reply);
        return;
    }
    int rc = buf_printf(&b, "{\"id\":\"%s\",\"turns\":[", id_of(r));
    for (size_t i = 0; i < turns->elements; i++)
        if (turns->element[i]->type == REDIS_REPLY_STRING)
            rc |= buf_puts(&b, i ? "," : "") |
                  buf_append(&b, turns->element[i]->str, turns->element[i]->len);
    rc |= buf_puts(&b, "]}");
    if (rc != 0)
        respond_error(r, 500, MSG_INTERNAL);
    else
        respond(r, 200, "", b.data);
    buf_free(&b);
    freeReplyObject(reply);
}

void conversation_api_get(struct api *api, struct request *r)
{
    if (send_script(api, r, conversation_read_lua) == 0)
        r->then = turns_replied;
}

static void forgotten(struct api *api, struct request *r)
{
    redisReply *reply = api_recv_reply(api, r);
    if (!reply)
        return;
    if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 1) {
        char json[160];
        log_info("conversation %s: forgotten by %s", id_of(r), r->subject);
        snprintf(json, sizeof(json),
                 "{\"code\":200,\"message\":\"会话已删除 (conversation forgotten)\",\"id\":\"%s\"}",
                 id_of(r));
        respond(r, 200, "", json);
    } else {
        respond_unknown(r);
    }
    freeReplyObject(reply);
}

void conversation_api_delete(struct api *api, struct request *r)
{
    if (send_script(api, r, conversation_forget_lua) == 0)
        r->then = forgotten;
}
