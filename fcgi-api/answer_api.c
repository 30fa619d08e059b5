/* answer_api.c -- see answer_api.h. Both read or write the answer's history
 * in Redis with the scripts of common/answer.c, as ws-push does for resume
 * and cancel over the WebSocket. */
#define _POSIX_C_SOURCE 200809L
#include "answer_api.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "frame.h"
#include "log.h"
#include "message.h"

#define ANSWER_PATH "/api/answer/"

static void respond_refusal(struct request *r, long result)
{
    char json[256];
    int status = result == ANSWER_ENDED ? 409 : result == ANSWER_UNKNOWN ? 404 : 500;
    snprintf(json, sizeof(json), "{\"code\":%d,\"message\":\"%s\"}", status,
             answer_refusal_message(result));
    respond(r, status, "", json);
}

/* ---- GET /api/answer/<id> ------------------------------------------------ */

/* {"id","status","content","seq"} from the answer's frames */
static int describe(json_t *out, const redisReply *entries)
{
    struct buf text = BUF_INIT;
    const char *status = "queued", *error = NULL;
    long last = -1;
    json_t *frame_json = NULL;
    for (size_t i = 0; i < entries->elements; i++) {
        long seq;
        const char *frame;
        size_t len;
        struct frame_head h;
        if (answer_entry(entries->element[i], &seq, &frame, &len) != 0 ||
            frame_peek(frame, len, &h) != 0)
            continue;
        last = h.seq;
        json_decref(frame_json);
        frame_json = json_loadb(frame, len, 0, NULL);
        const char *content = json_string_value(json_object_get(frame_json, "content"));
        if (strcmp(h.type, "text") == 0) {
            status = "streaming";
            if (content)
                buf_append(&text, content, json_string_length(json_object_get(frame_json, "content")));
        } else {
            status = strcmp(h.type, "done") == 0 ? "done" : strcmp(h.type, "cancelled") == 0 ? "cancelled" : "error";
            error = strcmp(status, "error") == 0 ? content : NULL;
        }
    }
    int rc = json_object_set_new(out, "status", json_string(status)) |
             json_object_set_new(out, "content", json_stringn(text.data ? text.data : "", text.len)) |
             json_object_set_new(out, "seq", json_integer(last));
    if (error)
        rc |= json_object_set_new(out, "error", json_string(error));
    json_decref(frame_json);
    buf_free(&text);
    return rc;
}

static void answer_replied(struct api *api, struct request *r)
{
    const char *id = r->path + strlen(ANSWER_PATH), *channel;
    const redisReply *entries;
    redisReply *reply = api_recv_reply(api, r);
    if (!reply)
        return;
    int rc = answer_read_reply(reply, &channel, &entries);
    json_t *out = json_object();
    char *body = NULL;
    if (rc == 0 && !answer_may_read(channel, &api->store.keys, r->owner))
        rc = ANSWER_UNKNOWN; /* another user's: it does not exist for this one */
    if (rc != 0) {
        respond_refusal(r, rc == ANSWER_UNKNOWN ? ANSWER_UNKNOWN : 0);
    } else if (!out || json_object_set_new(out, "id", json_string(id)) != 0 ||
               describe(out, entries) != 0 || !(body = json_dumps(out, JSON_COMPACT))) {
        respond_error(r, 500, MSG_INTERNAL);
    } else {
        respond(r, 200, "", body);
    }
    free(body);
    json_decref(out);
    freeReplyObject(reply);
}

void answer_api_get(struct api *api, struct request *r)
{
    struct answer_read a;
    const char *id = r->path + strlen(ANSWER_PATH);
    if (answer_read_argv(&a, &api->store.keys, id, -1, api->cfg->answer_max_frames) != 0)
        respond_error(r, 400, "id 不是任务编号 (not a job id)");
    else if (store_send_command(&api->store, a.argc, a.argv, a.argvlen) != 0)
        api_respond_redis_down(api, r);
    else
        r->then = answer_replied;
}

/* ---- POST /api/cancel -------------------------------------------------- */

static void cancel_replied(struct api *api, struct request *r)
{
    redisReply *reply = api_recv_reply(api, r);
    if (!reply)
        return;
    if (reply->type != REDIS_REPLY_INTEGER || reply->integer < 0) {
        respond_refusal(r, reply->type == REDIS_REPLY_INTEGER ? (long)reply->integer : 0);
    } else {
        char json[160];
        snprintf(json, sizeof(json), "{\"code\":200,\"message\":\"已取消 (cancelled)\",\"id\":\"%s\"}",
                 r->cancel_id);
        respond(r, 200, "", json);
    }
    freeReplyObject(reply);
}

/* {"id":"<job id>"} */
static int read_id(struct request *r, char id[48])
{
    json_t *root = json_loadb(r->body.data, r->body.len, 0, NULL);
    const char *s = json_string_value(json_object_get(root, "id"));
    int ok = s && strlen(s) < 48 && answer_id_valid(s);
    if (ok)
        strcpy(id, s);
    json_decref(root);
    return ok ? 0 : -1;
}

void answer_api_cancel(struct api *api, struct request *r)
{
    int status;
    const char *reason;
    if (request_read_body(r, 1024, &status, &reason) != 0) {
        respond_error(r, status == 413 ? 400 : status, reason);
        return;
    }
    if (read_id(r, r->cancel_id) != 0) {
        respond_error(r, 400, "需要 {\"id\":\"<任务编号>\"} (expected {\"id\":\"<job id>\"})");
        return;
    }
    struct answer_write a;
    struct buf frame = BUF_INIT;
    /* (the script tells the worker, when the cancel is written) */
    if (answer_cancel_argv(&a, &api->store.keys, r->cancel_id, r->owner, &frame, api->cfg->answer_ttl,
                           api->cfg->answer_max_frames) != 0)
        respond_error(r, 500, MSG_INTERNAL);
    else if (store_send_command(&api->store, a.argc, a.argv, a.argvlen) != 0)
        api_respond_redis_down(api, r);
    else
        r->then = cancel_replied;
    buf_free(&frame);
}
