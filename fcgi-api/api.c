/* api.c -- the routes; GET /api/health, GET /api/status, POST /api/message,
 * POST /api/image (the answer routes are in answer_api.c, the conversation
 * routes in conversation_api.c, GET /api/usage in usage_api.c).
 *
 * A handler answers at once (a bad request, Redis unreachable) or sends its
 * Redis commands and leaves in r->then what answers when the replies are in:
 * the replies of a whole turn of requests come back in one round trip. */
#define _POSIX_C_SOURCE 200809L
#include "api.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "access.h"
#include "answer_api.h"
#include "conversation.h"
#include "conversation_api.h"
#include "usage_api.h"
#include "models.h"
#include "enqueue.h"
#include "log.h"
#include "message.h"
#include "metrics.h"
#include "metrics_api.h"
#include "multipart.h"

#define MULTIPART_MAX_PARTS 16

static void respond_queued(struct request *r, const char *message, const char *id,
                           const char *conversation)
{
    char json[256], conv[96] = "";
    if (conversation[0])
        snprintf(conv, sizeof(conv), ",\"conversation\":\"%s\"", conversation);
    snprintf(json, sizeof(json), "{\"code\":200,\"message\":\"%s\",\"id\":\"%s\"%s}", message,
             id, conv);
    respond(r, 200, "", json);
}

/* The client learns only that Redis failed it (or that the job did not reach
 * its replicas, which it may act on); the log says why. */
void api_respond_redis_down(struct api *api, struct request *r)
{
    static struct log_limit down_limit = LOG_LIMIT_INIT(10000);
    struct buf b = BUF_INIT;
    const char *why = strcmp(api->store.err, MSG_NOT_REPLICATED) == 0 ? MSG_NOT_REPLICATED
                                                                    : MSG_SERVICE_UNAVAILABLE;
    log_limited(&down_limit, LOG_WARN, "503 %s %s: %s", r->method, r->path,
                api->store.err[0] ? api->store.err : "redis unavailable");
    if (buf_puts(&b, "{\"code\":503,\"status\":\"error\",\"message\":") == 0 &&
        buf_json_string(&b, why, strlen(why)) == 0 && buf_puts(&b, "}") == 0)
        respond(r, 503, "Retry-After: 1\r\n", b.data);
    else
        respond(r, 503, "", "{\"code\":503,\"status\":\"error\"}");
    buf_free(&b);
}

redisReply *api_recv_reply(struct api *api, struct request *r)
{
    redisReply *reply = store_recv_reply(&api->store);
    if (!reply)
        api_respond_redis_down(api, r);
    return reply;
}

static int media_type_is(const char *content_type, const char *type)
{
    size_t n = strlen(type);
    return strncasecmp(content_type, type, n) == 0 &&
           (content_type[n] == '\0' || content_type[n] == ';' || content_type[n] == ' ');
}

static void respond_health_error(struct api *api, struct request *r)
{
    struct buf b = BUF_INIT;
    if (buf_puts(&b, "{\"status\":\"error\",\"message\":") == 0 &&
        buf_json_string(&b, api->store.err, strlen(api->store.err)) == 0 &&
        buf_puts(&b, "}") == 0)
        respond(r, 503, "", b.data);
    else
        respond(r, 503, "", "{\"status\":\"error\"}");
    buf_free(&b);
}

static void health_replied(struct api *api, struct request *r)
{
    if (store_recv_write_probe(&api->store) != 0)
        respond_health_error(api, r);
    else
        respond(r, 200, "", "{\"status\":\"ok\",\"message\":\"服务运行正常\"}");
}

static void handle_health(struct api *api, struct request *r)
{
    if (store_send_write_probe(&api->store) != 0)
        respond_health_error(api, r);
    else
        r->then = health_replied;
}

/* The caller's own sockets are counted when ws-push keeps them in Redis
 * (common/conns.h): with authentication, or a per-user connection limit. */
static int counts_own_connections(const struct api *api)
{
    return auth_enabled(api->auth) || api->cfg->ws_max_connections_per_user > 0;
}

static void status_replied(struct api *api, struct request *r)
{
    long long count, own = -1;
    int failed = store_recv_connection_count(&api->store, &count) != 0;
    if (counts_own_connections(api)) {
        redisReply *reply = store_recv_reply(&api->store);
        if (reply && reply->type == REDIS_REPLY_INTEGER)
            own = reply->integer;
        else
            failed = 1;
        if (reply)
            freeReplyObject(reply);
    }
    if (failed) {
        api_respond_redis_down(api, r);
        return;
    }
    char json[192], mine[48] = "";
    if (own >= 0)
        snprintf(mine, sizeof(mine), ",\"userConnectionCount\":%lld", own);
    snprintf(json, sizeof(json),
             "{\"status\":\"ok\",\"connectionCount\":%lld%s,\"message\":\"服务运行正常\"}",
             count, mine);
    respond(r, 200, "", json);
}

static void handle_status(struct api *api, struct request *r)
{
    if (store_send_connection_count(&api->store) != 0 ||
        (counts_own_connections(api) &&
         store_send_subject_connections(&api->store, r->subject, api->cfg->presence_ttl) != 0))
        api_respond_redis_down(api, r);
    else
        r->then = status_replied;
}

/* 200 with the job id, 429 when a quota said no, 404 for an unknown
 * conversation, or 503 */
static void enqueue_replied(struct api *api, struct request *r, const char *message)
{
    char id[48], conversation[48], retry[48];
    const char *limited;
    long retry_after;
    int rc = store_recv_enqueue(&api->store, api->cfg, &r->enqueued, id, conversation,
                                &limited, &retry_after);
    if (rc < 0) {
        api_respond_redis_down(api, r);
    } else if (rc == ENQUEUE_NO_CONVERSATION) {
        log_info("404 %s %s for %s: %s", r->method, r->path, r->subject, limited);
        respond_error(r, 404, limited);
    } else if (limited) {
        metrics_count_refused(limited);
        snprintf(retry, sizeof(retry), "Retry-After: %ld\r\n", retry_after);
        log_info("429 %s %s for %s: %s", r->method, r->path, r->subject, limited);
        respond_error_with(r, 429, retry, limited);
    } else {
        metrics_count_queued(strcmp(r->path, "/api/image") == 0, "http");
        log_info("job %s: queued by %s (%s)", id, r->subject, r->path);
        respond_queued(r, message, id, conversation);
    }
}

static void message_replied(struct api *api, struct request *r)
{
    enqueue_replied(api, r, "消息发送成功");
}

/* Sends the commands queueing j; 0, or -1 when the request was answered. */
static int queue(struct api *api, struct request *r, const struct job *j, const void *image,
                 size_t image_len)
{
    if (store_send_enqueue(&api->store, api->cfg, j, image, image_len, &r->enqueued) != 0) {
        api_respond_redis_down(api, r);
        return -1;
    }
    return 0;
}

/* Sets j's conversation: the one named (checked), or a new one drawn into
 * fresh. NULL, or why the name is not acceptable. */
static const char *pick_conversation(struct job *j, const char *named, size_t len,
                                     char fresh[CONVERSATION_ID_LEN + 1])
{
    if (named) {
        const char *why = conversation_check(named, len);
        j->conversation = named;
        return why;
    }
    if (conversation_new_id(fresh) != 0)
        return MSG_INTERNAL;
    j->conversation = fresh;
    j->conversation_new = 1;
    return NULL;
}

/* Sets j's model: the one named (a string; checked; NULL: the default).
 * NULL, or why it is not acceptable. */
static const char *pick_model(struct api *api, struct job *j, const char *named, size_t len)
{
    if (!named)
        return NULL;
    j->model = named;
    return strlen(named) != len ? MSG_MODEL_UNKNOWN : models_check(api->cfg, named, len);
}

/* NULL when the "content" of POST /api/message is acceptable, else why not. */
static const char *content_problem(json_t *content, long max_message_bytes)
{
    if (!content)
        return MSG_CONTENT_MISSING;
    if (!json_is_string(content))
        return MSG_CONTENT_NOT_STRING;
    return message_check_text(json_string_value(content), json_string_length(content),
                              max_message_bytes);
}

/* POST /api/message: the answer goes to the asker (with authentication:
 * each of the user's sockets; without: everyone), in a conversation;
 * POST /api/broadcast: to everyone (an admin's token), in none. */
static void queue_text(struct api *api, struct request *r, const char *reply, int conversation)
{
    int status;
    const char *reason;
    if (!media_type_is(r->content_type, "application/json")) {
        respond_error(r, 400, "Content-Type 必须是 application/json "
                              "(Content-Type must be application/json)");
        return;
    }
    /* the JSON envelope may add a little to the content */
    if (request_read_body(r, (size_t)api->cfg->max_message_bytes + 1024, &status, &reason)) {
        respond_error(r, status == 413 ? 400 : status, reason);
        return;
    }
    json_error_t jerr;
    /* NUL is allowed by the parser so that the rules name it */
    json_t *root = json_loadb(r->body.data, r->body.len, JSON_ALLOW_NUL, &jerr);
    if (!root) {
        char msg[256];
        snprintf(msg, sizeof(msg), "JSON 格式错误 (invalid JSON: %s)", jerr.text);
        respond_error(r, 400, msg);
        return;
    }
    json_t *content = json_is_object(root) ? json_object_get(root, "content") : NULL;
    json_t *named = json_is_object(root) ? json_object_get(root, "conversation") : NULL;
    json_t *model = json_is_object(root) ? json_object_get(root, "model") : NULL;
    struct job j = {.kind = JOB_TEXT, .content = json_string_value(content),
                    .content_len = json_string_length(content), .reply = reply,
                    .user = r->subject};
    char fresh[CONVERSATION_ID_LEN + 1];
    const char *why = content_problem(content, api->cfg->max_message_bytes);
    if (!why && named && !json_is_null(named) && (!conversation || !json_is_string(named)))
        why = MSG_CONVERSATION_BAD;
    if (!why && conversation)
        why = pick_conversation(&j, json_string_value(named), json_string_length(named), fresh);
    if (!why && model && !json_is_null(model) && !json_is_string(model))
        why = MSG_MODEL_NOT_STRING;
    if (!why)
        why = pick_model(api, &j, json_string_value(model), json_string_length(model));
    if (why)
        respond_error(r, 400, why);
    else if (queue(api, r, &j, NULL, 0) == 0)
        r->then = message_replied;
    json_decref(root);
}

static void handle_message(struct api *api, struct request *r)
{
    queue_text(api, r, r->inbox, 1);
}

static void handle_broadcast(struct api *api, struct request *r)
{
    if (!r->admin)
        respond_error(r, 403, "需要管理员令牌 (broadcasting needs a token with \"admin\": true)");
    else
        queue_text(api, r, api->store.keys.broadcast, 0);
}

static void image_replied(struct api *api, struct request *r)
{
    enqueue_replied(api, r, "图片发送成功");
}

static void handle_image(struct api *api, struct request *r)
{
    char boundary[128];
    int status;
    const char *reason;
    if (multipart_boundary(r->content_type, boundary, sizeof(boundary)) != 0) {
        respond_error(r, 400, "Content-Type 必须是带 boundary 的 multipart/form-data "
                              "(Content-Type must be multipart/form-data with a boundary)");
        return;
    }
    size_t limit = (size_t)config_http_body_max(api->cfg);
    if (request_read_body(r, limit, &status, &reason) != 0) {
        respond_error(r, status, status == 413 ? MSG_IMAGE_TOO_LARGE : reason);
        return;
    }
    struct multipart_part parts[MULTIPART_MAX_PARTS];
    int n = multipart_parse(r->body.data, r->body.len, boundary, parts, MULTIPART_MAX_PARTS,
                            &reason);
    if (n < 0) {
        respond_error(r, 400, reason);
        return;
    }
    const struct multipart_part *img = multipart_find(parts, n, "image");
    const struct multipart_part *q = multipart_find(parts, n, "content");
    const struct multipart_part *conv = multipart_find(parts, n, "conversation");
    const struct multipart_part *model = multipart_find(parts, n, "model");
    if (!q)
        q = multipart_find(parts, n, "prompt");
    const char *mime = NULL;
    const char *why = !img ? MSG_IMAGE_MISSING
                           : message_check_image(img->data, img->len, api->cfg->max_image_bytes,
                                                 &mime);
    if (!why && q)
        why = message_check_question(q->data, q->len, api->cfg->max_message_bytes);
    if (why) {
        respond_error(r, why == MSG_IMAGE_TOO_LARGE ? 413 : 400, why);
        return;
    }
    char token[33], key[160];
    if (job_new_token(token) != 0 || keys_image(&api->store.keys, token, key, sizeof(key)) != 0) {
        respond_error(r, 500, MSG_INTERNAL);
        return;
    }
    struct job j = {.kind = JOB_IMAGE, .content = q ? q->data : "", .content_len = q ? q->len : 0,
                    .reply = r->inbox, .image_key = key, .mime = mime, .user = r->subject};
    char named[CONVERSATION_ID_LEN + 1] = "", fresh[CONVERSATION_ID_LEN + 1];
    if (conv && conv->len == CONVERSATION_ID_LEN) {
        memcpy(named, conv->data, CONVERSATION_ID_LEN);
        named[CONVERSATION_ID_LEN] = '\0';
    }
    char model_name[257];
    if (model)
        snprintf(model_name, sizeof(model_name), "%.*s", (int)(model->len < 256 ? model->len : 256),
                 model->data);
    why = pick_conversation(&j, conv ? named : NULL, conv ? conv->len : 0, fresh);
    if (!why)
        why = pick_model(api, &j, model ? model_name : NULL, model ? model->len : 0);
    if (why)
        respond_error(r, 400, why);
    else if (queue(api, r, &j, img->data, img->len) == 0)
        r->then = image_replied;
}

struct route {
    const char *path;
    const char *method;
    void (*handler)(struct api *, struct request *);
    int open;                   /* needs no token (load balancers probe it) */
};

static const struct route routes[] = {
    {"/api/health", "GET", handle_health, 1},
    {"/api/status", "GET", handle_status, 0},
    {"/api/message", "POST", handle_message, 0},
    {"/api/broadcast", "POST", handle_broadcast, 0},
    {"/api/image", "POST", handle_image, 0},
    {"/api/cancel", "POST", answer_api_cancel, 0},
    {"/api/answer/", "GET", answer_api_get, 0}, /* + <id> */
    {"/api/conversation/", "GET", conversation_api_get, 0}, /* + <id> */
    {"/api/conversation/", "DELETE", conversation_api_delete, 0},
    {"/api/usage", "GET", usage_api_get, 0},
    {"/api/metrics", "GET", metrics_api_get, 1},
    {"/metrics", "GET", metrics_api_get, 1},    /* where a web server maps it */
};

static int path_is(const struct route *route, const char *path)
{
    size_t n = strlen(route->path);
    return route->path[n - 1] == '/' ? strncmp(route->path, path, n) == 0 && path[n]
                                     : strcmp(route->path, path) == 0;
}

/* HEAD is GET without the body (HTTP: the same status and headers) */
static int method_allowed(const struct route *route, struct request *r)
{
    if (strcmp(route->method, r->method) == 0)
        return 1;
    if (strcmp(route->method, "GET") == 0 && strcmp(r->method, "HEAD") == 0) {
        r->head = 1;
        return 1;
    }
    return 0;
}

/* "Allow: …" naming every method of the routes on path */
static void respond_not_allowed(struct request *r)
{
    char allow[64] = "Allow: ";
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (!path_is(&routes[i], r->path))
            continue;
        if (allow[strlen(allow) - 1] != ' ')
            strcat(allow, ", ");
        strcat(allow, routes[i].method);
        if (strcmp(routes[i].method, "GET") == 0)
            strcat(allow, ", HEAD");
    }
    strcat(allow, "\r\n");
    respond(r, 405, allow, "{\"code\":405,\"message\":\"方法不允许 (method not allowed)\"}");
}

void api_begin(struct api *api, struct request *r)
{
    r->then = NULL;
    r->route = -1;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (!path_is(&routes[i], r->path))
            continue;
        r->route = (int)i;
        if (!method_allowed(&routes[i], r))
            continue;
        if (!routes[i].open && access_identify(api, r) != 0)
            return; /* 401 */
        routes[i].handler(api, r);
        return;
    }
    if (r->route >= 0)
        respond_not_allowed(r);
    else
        respond(r, 404, "", "{\"code\":404,\"message\":\"接口不存在 (not found)\"}");
}

void api_end(struct api *api, struct request *r)
{
    if (r->then)
        r->then(api, r);
    metrics_api_count(r->route, r->route >= 0 ? routes[r->route].path : "other", r->status);
}
