/* client.c -- the WebSocket protocol clients speak to ws-push.
 *
 * Upgrades are accepted on "/" and "/ws" (access.c decides who may open
 * one). Client messages (reassembled from fragments, read and checked by
 * common/message.c) each become a job, answered to this connection only
 * (with authentication: to each socket of its user), in the conversation the
 * message names or a new one. Bad messages get an
 * error frame and the connection stays open. */
#define _POSIX_C_SOURCE 200809L
#include "wspush.h"

#include <string.h>

#include "log.h"
#include "message.h"
#include "models.h"

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

static void submit(struct wspush *wp, struct conn *c, const struct client_message *m)
{
    char reply[KEYS_MAX_SUBJECT + 256], token[33], key[256];
    char conversation[CONVERSATION_ID_LEN + 1];
    int new_conversation = !m->conversation[0];
    const char *bad_model = m->model[0] ? models_check(wp->cfg, m->model, strlen(m->model)) : NULL;
    if (bad_model) {
        client_send_error(wp, c, bad_model);
        return;
    }
    if (access_reply_channel(wp, c, reply, sizeof(reply)) != 0 ||
        (new_conversation && conversation_new_id(conversation) != 0)) {
        client_send_error(wp, c, MSG_INTERNAL);
        return;
    }
    struct job j = {.kind = m->kind, .content = m->text.data ? m->text.data : "",
                    .content_len = m->text.len, .reply = reply, .user = c->who.subject,
                    .conversation = new_conversation ? conversation : m->conversation,
                    .conversation_new = new_conversation,
                    .model = m->model[0] ? m->model : NULL};
    if (m->kind == JOB_TEXT) {
        redis_link_submit(wp, c->id, &j, NULL, 0);
        return;
    }
    if (job_new_token(token) != 0 || keys_image(&wp->keys, token, key, sizeof(key)) != 0) {
        client_send_error(wp, c, MSG_INTERNAL);
        return;
    }
    j.image_key = key;
    j.mime = m->mime;
    redis_link_submit(wp, c->id, &j, m->image.data, m->image.len);
}

static void handle_message(struct wspush *wp, struct conn *c, const char *data, size_t len)
{
    struct client_message m;
    wp->conns.messages_in++;
    const char *why = client_message_parse(&m, data, len, wp->cfg->max_message_bytes,
                                           wp->cfg->max_image_bytes);
    if (m.request == CLIENT_AUTH && !why)
        access_auth_frame(wp, c, m.text.data, m.text.len);
    else if (!c->who.subject[0]) /* no token yet */
        access_refuse_unauthenticated(wp, c, why ? why : MSG_AUTH_FIRST);
    else if (why)
        client_send_error(wp, c, why);
    else if (m.request == CLIENT_RESUME)
        control_resume(wp, c, m.id, m.after);
    else if (m.request == CLIENT_CANCEL)
        control_cancel(wp, c, m.id);
    else
        submit(wp, c, &m);
    client_message_free(&m);
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
        client_send_error(wp, c, MSG_FRAME_TOO_LARGE);
    else if (c->rx_discard == 2)
        client_send_error(wp, c, MSG_BINARY_FRAME);
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
        return access_handshake(wp, wsi, c);
    case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
        return mask_guard_accepted((int)(intptr_t)in) != 0;
    case LWS_CALLBACK_CLOSED_HTTP:
        mask_guard_unbind(lws_get_socket_fd(wsi)); /* never upgraded */
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    case LWS_CALLBACK_ESTABLISHED:
        conn_add(&wp->conns, c, wsi);
        c->fd = lws_get_socket_fd(wsi);
        mask_guard_bind(c->fd, c);
        keepalive_heard(c);
        log_debug("client %llu connected (%zu open)", (unsigned long long)c->id, wp->conns.count);
        access_established(wp, c);
        return 0;
    case LWS_CALLBACK_CLOSED:
        log_debug("client %llu closed", (unsigned long long)c->id);
        if (c->closing == CONN_TOO_SLOW)
            log_warn("client %llu closed: too slow (send queue over %u frames)",
                     (unsigned long long)c->id, wp->conns.queue_limit);
        if (c->id)
            mask_guard_unbind(c->fd);
        access_closed(wp, c);
        conn_remove(&wp->conns, c);
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return conn_write_queued(c);
    case LWS_CALLBACK_RECEIVE:
        keepalive_heard(c);
        receive(wp, c, wsi, in, len);
        return 0;
    case LWS_CALLBACK_RECEIVE_PONG:
        keepalive_heard(c);
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

const struct lws_protocols client_protocol = {"aimsg", callback, sizeof(struct conn), 65536, 0,
                                              NULL, 0};
