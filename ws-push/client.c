/* client.c -- the WebSocket protocol clients speak to ws-push.
 *
 * Upgrades are accepted on "/" and "/ws". Client messages (reassembled from
 * fragments) are {"type":"text"|"image","content":...}; each becomes a job
 * answered to this connection only. Bad messages get an error frame and the
 * connection stays open. */
#define _POSIX_C_SOURCE 200809L
#include "wspush.h"

#include <ctype.h>
#include <jansson.h>
#include <string.h>

#include "base64.h"
#include "image.h"
#include "log.h"

static void client_send_error(struct wspush *wp, struct conn *c, const char *message)
{
    conn_reject(&wp->conns, c, message);
}

static int accepted_path(struct lws *wsi)
{
    char uri[256];
    if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) < 0)
        return 0;
    uri[strcspn(uri, "?")] = '\0';
    return strcmp(uri, "/") == 0 || strcmp(uri, "/ws") == 0 || strcmp(uri, "/ws/") == 0;
}

static int is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)s[i]))
            return 0;
    return 1;
}

static void submit_text(struct wspush *wp, struct conn *c, const char *text, size_t len)
{
    char reply[256];
    if ((long)len > wp->cfg->max_message_bytes) {
        client_send_error(wp, c, "消息内容过长 (message too long)");
        return;
    }
    keys_connection(wp->connections, c->id, reply, sizeof(reply));
    struct job j = {.kind = JOB_TEXT, .content = text, .content_len = len, .reply = reply};
    redis_link_submit(wp, c->id, &j, NULL, 0);
}

static void submit_image(struct wspush *wp, struct conn *c, const char *b64, size_t len,
                         const char *question)
{
    /* accept a data: URL as well as bare base64 */
    if (len > 5 && strncmp(b64, "data:", 5) == 0) {
        const char *comma = memchr(b64, ',', len);
        if (!comma) {
            client_send_error(wp, c, "图片数据格式错误 (bad data URL)");
            return;
        }
        len -= (size_t)(comma + 1 - b64);
        b64 = comma + 1;
    }
    struct buf img = BUF_INIT;
    if (base64_decode(&img, b64, len) != 0) {
        client_send_error(wp, c, "图片不是有效的 base64 (image is not valid base64)");
    } else if (img.len == 0) {
        client_send_error(wp, c, "图片为空 (image is empty)");
    } else if ((long)img.len > wp->cfg->max_image_bytes) {
        client_send_error(wp, c, "图片过大 (image too large)");
    } else if (!image_mime((const unsigned char *)img.data, img.len)) {
        client_send_error(wp, c, "不支持的图片格式，仅支持 JPEG、PNG、GIF、WebP");
    } else if (question && (long)strlen(question) > wp->cfg->max_message_bytes) {
        client_send_error(wp, c, "问题过长 (question too long)");
    } else {
        char reply[256], token[33], key[256];
        keys_connection(wp->connections, c->id, reply, sizeof(reply));
        if (job_new_token(token) != 0 || keys_image(&wp->keys, token, key, sizeof(key)) != 0) {
            client_send_error(wp, c, "服务内部错误 (internal error)");
        } else {
            struct job j = {.kind = JOB_IMAGE, .content = question ? question : "",
                            .content_len = question ? strlen(question) : 0, .reply = reply,
                            .image_key = key,
                            .mime = image_mime((const unsigned char *)img.data, img.len)};
            redis_link_submit(wp, c->id, &j, img.data, img.len);
        }
    }
    buf_free(&img);
}

static void handle_message(struct wspush *wp, struct conn *c, const char *data, size_t len)
{
    json_error_t jerr;
    json_t *root = json_loadb(data, len, 0, &jerr);
    if (!root || !json_is_object(root)) {
        client_send_error(wp, c, "消息不是有效的 JSON 对象 (message is not a JSON object)");
        json_decref(root);
        return;
    }
    const char *type = json_string_value(json_object_get(root, "type"));
    json_t *content = json_object_get(root, "content");
    const char *id = json_string_value(json_object_get(root, "id"));
    json_t *after = json_object_get(root, "after");
    if (type && strcmp(type, "cancel") == 0) {
        control_cancel(wp, c, id ? id : "");
    } else if (type && strcmp(type, "resume") == 0) {
        control_resume(wp, c, id ? id : "", json_is_integer(after) ? (long)json_integer_value(after) : -2);
    } else if (!type || (strcmp(type, "text") != 0 && strcmp(type, "image") != 0)) {
        client_send_error(wp, c, "未知的消息类型，应为 text、image、cancel 或 resume (unknown \"type\")");
    } else if (!json_is_string(content)) {
        client_send_error(wp, c, "content 必须是字符串 (\"content\" must be a string)");
    } else if (is_blank(json_string_value(content), json_string_length(content))) {
        client_send_error(wp, c, "消息内容不能为空 (\"content\" is empty)");
    } else if (type[0] == 't') {
        submit_text(wp, c, json_string_value(content), json_string_length(content));
    } else {
        const char *q = json_string_value(json_object_get(root, "question"));
        submit_image(wp, c, json_string_value(content), json_string_length(content), q);
    }
    json_decref(root);
}

static void receive(struct wspush *wp, struct conn *c, struct lws *wsi, const char *in,
                    size_t len)
{
    if (c->closing)
        return; /* what comes after the decision to close is not read */
    if (lws_frame_is_binary(wsi))
        c->rx_discard = 2;
    if (!c->rx_discard) {
        if (c->rx.len + len > wp->max_client_message || buf_append(&c->rx, in, len) != 0) {
            c->rx_discard = 1;
            partial_release(&wp->conns, c);
        } else if (partial_account(&wp->conns, c) != 0) {
            return; /* over the budget for unfinished messages: closed */
        }
    }
    if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi))
        return;
    if (c->rx_discard == 1)
        client_send_error(wp, c, "消息过大 (message too large)");
    else if (c->rx_discard == 2)
        client_send_error(wp, c, "不支持二进制消息，请发送 JSON 文本 (binary frames are not supported)");
    else
        handle_message(wp, c, c->rx.data ? c->rx.data : "", c->rx.len);
    c->rx_discard = 0;
    if (c->rx.cap > 65536)
        buf_free(&c->rx); /* do not keep an image-sized buffer per idle client */
    else
        buf_reset(&c->rx);
    partial_account(&wp->conns, c); /* no message in it now: counts nothing */
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct wspush *wp = lws_context_user(lws_get_context(wsi));
    struct conn *c = user;
    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        if (wp->stopping || !accepted_path(wsi))
            return 1;
        return 0;
    case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
        return mask_guard_accepted((int)(intptr_t)in) != 0;
    case LWS_CALLBACK_CLOSED_HTTP:
        mask_guard_unbind(lws_get_socket_fd(wsi)); /* never upgraded */
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    case LWS_CALLBACK_ESTABLISHED:
        conn_add(&wp->conns, c, wsi);
        c->fd = lws_get_socket_fd(wsi);
        mask_guard_bind(c->fd, c);
        log_debug("client %llu connected (%zu open)", (unsigned long long)c->id, wp->conns.count);
        return 0;
    case LWS_CALLBACK_CLOSED:
        log_debug("client %llu closed", (unsigned long long)c->id);
        if (c->closing == CONN_TOO_SLOW)
            log_warn("client %llu closed: too slow (send queue over %u frames)",
                     (unsigned long long)c->id, wp->conns.queue_limit);
        if (c->id)
            mask_guard_unbind(c->fd);
        conn_remove(&wp->conns, c);
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return conn_write_queued(c);
    case LWS_CALLBACK_RECEIVE:
        receive(wp, c, wsi, in, len);
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

const struct lws_protocols client_protocol = {"aimsg", callback, sizeof(struct conn), 65536, 0,
                                              NULL, 0};
