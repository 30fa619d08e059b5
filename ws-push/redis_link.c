/* redis_link.c -- Redis on the lws event loop: a hiredis async context whose
 * socket is adopted into libwebsockets as a raw descriptor, so reading
 * answers and serving sockets share one loop and nothing polls.
 *
 * Two links: "sub" (SUBSCRIBE to the broadcast channel, PSUBSCRIBE to this
 * instance's connection channels) and "cmd" (jobs, presence, history
 * reads). Either one reconnects with backoff when Redis goes away; clients
 * stay connected, and answers.c catches up on what was missed meanwhile. */
#define _GNU_SOURCE
#include "wspush.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "frame.h"
#include "log.h"

#define RECONNECT_MAX_MS 5000

/* ---- hiredis adapter -------------------------------------------------- */

static void want_write(void *p)
{
    struct redis_link *l = p;
    if (l->wsi)
        lws_callback_on_writable(l->wsi);
}

static void nothing(void *p) { (void)p; }

static void on_cleanup(void *p)
{
    struct redis_link *l = p;
    l->ac = NULL; /* the wsi is closed by returning -1 from its callback */
}

static int raw_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                        void *in, size_t len)
{
    (void)user;
    (void)in;
    (void)len;
    struct redis_link *l = lws_get_opaque_user_data(wsi);
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
        if (!l || !l->ac)
            return -1;
        redisAsyncHandleRead(l->ac);
        return l->ac ? 0 : -1;
    case LWS_CALLBACK_RAW_WRITEABLE_FILE:
        if (!l || !l->ac)
            return -1;
        redisAsyncHandleWrite(l->ac);
        return l->ac ? 0 : -1;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        if (l && l->wsi == wsi)
            l->wsi = NULL;
        return 0;
    default:
        return 0;
    }
}

const struct lws_protocols redis_link_protocol = {"aimsg-redis", raw_callback, 0, 0, 0, NULL, 0};

/* ---- connecting ------------------------------------------------------- */

static void subscribe(struct redis_link *l);

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct redis_link *l = ac->data;
    if (status != REDIS_OK) {
        log_warn("redis connect failed: %s", ac->errstr);
        return;
    }
    log_info("redis %s link connected", l->is_subscriber ? "subscriber" : "command");
    l->wp->backoff_ms = 0;
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct redis_link *l = ac->data;
    if (status != REDIS_OK && !l->wp->stopping)
        log_warn("redis %s link lost: %s", l->is_subscriber ? "subscriber" : "command",
                 ac->errstr);
    l->ac = NULL;
    if (l->is_subscriber)
        l->wp->subscribed = l->wp->confirmations = 0;
}

static int link_connect(struct redis_link *l)
{
    struct wspush *wp = l->wp;
    char err[256];
    redisAsyncContext *ac = redis_connect_async(&wp->addr, err, sizeof(err));
    if (!ac) {
        log_warn("%s", err);
        return -1;
    }
    int fd = dup(ac->c.fd); /* lws owns its copy; hiredis closes its own */
    lws_sock_file_fd_type u;
    u.filefd = fd;
    struct lws *wsi = fd < 0 ? NULL
                             : lws_adopt_descriptor_vhost(wp->vhost, LWS_ADOPT_RAW_FILE_DESC, u,
                                                          redis_link_protocol.name, NULL);
    if (!wsi) {
        log_error("cannot adopt the redis socket into the event loop: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        redisAsyncFree(ac);
        return -1;
    }
    lws_set_opaque_user_data(wsi, l);
    l->ac = ac;
    l->wsi = wsi;
    ac->data = l;
    ac->ev.data = l;
    ac->ev.addRead = nothing;
    ac->ev.delRead = nothing;
    ac->ev.addWrite = want_write;
    ac->ev.delWrite = nothing;
    ac->ev.cleanup = on_cleanup;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    lws_callback_on_writable(wsi); /* completes the non-blocking connect */
    if (l->is_subscriber)
        subscribe(l);
    return 0;
}

/* ---- answers from Redis ----------------------------------------------- */

static void deliver(struct wspush *wp, const redisReply *channel, const redisReply *payload)
{
    if (channel->type != REDIS_REPLY_STRING || payload->type != REDIS_REPLY_STRING)
        return;
    uint64_t conn = 0;
    if (strcmp(channel->str, wp->ping_channel) == 0) {
        answers_pong(wp, payload->str);
        return;
    }
    if (strcmp(channel->str, wp->keys.broadcast) != 0 &&
        !(conn = keys_connection_of(wp->connections, channel->str)))
        return; /* not a channel of ours */
    answers_deliver(wp, conn, payload->str, payload->len);
}

/* Both subscriptions confirmed: what was missed before can be read now. */
static void confirmed(struct wspush *wp)
{
    if (++wp->confirmations < 2)
        return;
    wp->subscribed = 1;
    answers_catch_up(wp);
}

/* ["message", channel, payload] or ["pmessage", pattern, channel, payload],
 * and ["subscribe"|"psubscribe", channel, count] confirmations */
static void on_pubsub(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)privdata;
    struct redis_link *l = ac->data;
    redisReply *reply = r;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING)
        return;
    const char *kind = reply->element[0]->str;
    if (strcmp(kind, "message") == 0)
        deliver(l->wp, reply->element[1], reply->element[2]);
    else if (strcmp(kind, "pmessage") == 0 && reply->elements == 4)
        deliver(l->wp, reply->element[2], reply->element[3]);
    else if (strcmp(kind, "subscribe") == 0 || strcmp(kind, "psubscribe") == 0)
        confirmed(l->wp);
}

static void subscribe(struct redis_link *l)
{
    struct wspush *wp = l->wp;
    wp->subscribed = wp->confirmations = 0;
    redisAsyncCommand(l->ac, on_pubsub, NULL, "SUBSCRIBE %s", wp->keys.broadcast);
    redisAsyncCommand(l->ac, on_pubsub, NULL, "PSUBSCRIBE %s*", wp->connections);
}

/* ---- presence and housekeeping ---------------------------------------- */

static void publish_presence(struct wspush *wp)
{
    char key[256], ttl[24], count[24];
    keys_presence(&wp->keys, wp->instance, key, sizeof(key));
    snprintf(ttl, sizeof(ttl), "%ld", wp->cfg->presence_ttl);
    snprintf(count, sizeof(count), "%zu", wp->conns.count);
    redisAsyncCommand(wp->cmd.ac, NULL, NULL, "SET %s %s EX %s", key, count, ttl);
    /* Redis out of memory (maxmemory, noeviction) refuses SET and SADD but
     * not EXPIRE, which needs no memory: the last count stays, and so does
     * this instance, until SET works again (at the latest in a third of
     * the TTL). After a SET that worked it changes nothing. */
    redisAsyncCommand(wp->cmd.ac, NULL, NULL, "EXPIRE %s %s", key, ttl);
    redisAsyncCommand(wp->cmd.ac, NULL, NULL, "SADD %s %s", wp->keys.instances, wp->instance);
    wp->published_count = (long long)wp->conns.count;
    wp->next_presence = clock_ms() + wp->cfg->presence_ttl * 1000 / 3;
}

void redis_link_tick(struct wspush *wp)
{
    long long now = clock_ms();
    if ((!wp->sub.ac || !wp->cmd.ac) && now >= wp->reconnect_at && !wp->stopping) {
        if (!wp->sub.ac && !wp->sub.wsi)
            link_connect(&wp->sub);
        if (!wp->cmd.ac && !wp->cmd.wsi)
            link_connect(&wp->cmd);
        wp->backoff_ms = wp->backoff_ms ? wp->backoff_ms * 2 : 100;
        if (wp->backoff_ms > RECONNECT_MAX_MS)
            wp->backoff_ms = RECONNECT_MAX_MS;
        wp->reconnect_at = now + wp->backoff_ms;
    }
    if (wp->cmd.ac && !wp->stopping &&
        (now >= wp->next_presence || wp->published_count != (long long)wp->conns.count))
        publish_presence(wp);
}

void redis_link_close(struct wspush *wp)
{
    if (!wp->cmd.ac)
        return;
    char key[256];
    keys_presence(&wp->keys, wp->instance, key, sizeof(key));
    redisAsyncCommand(wp->cmd.ac, NULL, NULL, "DEL %s", key);
    redisAsyncCommand(wp->cmd.ac, NULL, NULL, "SREM %s %s", wp->keys.instances, wp->instance);
}

/* ---- jobs from clients ------------------------------------------------ */

/* The XADD's reply; an image job's comes inside EXEC's [SET, XADD] */
static const redisReply *xadd_reply(const redisReply *r)
{
    if (!r || r->type != REDIS_REPLY_ARRAY)
        return r;
    if (r->elements != 2 || r->element[0]->type == REDIS_REPLY_ERROR)
        return NULL;
    return r->element[1];
}

static void on_queued(redisAsyncContext *ac, void *r, void *privdata)
{
    struct redis_link *l = ac->data;
    struct wspush *wp = l->wp;
    const redisReply *reply = xadd_reply(r);
    struct conn *c = conn_find(&wp->conns, (uint64_t)(uintptr_t)privdata);
    if (!c)
        return;
    if (!reply || reply->type != REDIS_REPLY_STRING) {
        if (reply && reply->type == REDIS_REPLY_ERROR)
            log_error("XADD: %s", reply->str);
        conn_reject(&wp->conns, c, "服务暂时不可用 (could not queue the message, try again)");
        return;
    }
    answers_queued(wp, c->id, reply->str);
    struct buf b = BUF_INIT;
    if (frame_queued(&b, reply->str) == 0)
        conn_send_copy(&wp->conns, c, b.data, b.len);
    buf_free(&b);
}

void redis_link_submit(struct wspush *wp, uint64_t conn_id, const struct job *j,
                       const void *image, size_t image_len)
{
    struct conn *c = conn_find(&wp->conns, conn_id);
    if (!wp->cmd.ac) {
        if (c)
            conn_reject(&wp->conns, c, "服务暂时不可用 (service unavailable, try again)");
        return;
    }
    void *id = (void *)(uintptr_t)conn_id;
    struct job_argv a;
    if (!image) {
        job_xadd_argv(&a, &wp->keys, j);
        redisAsyncCommandArgv(wp->cmd.ac, on_queued, id, a.argc, a.argv, a.argvlen);
        return;
    }
    /* the image and its job in one transaction: a job never points at an
     * image that was not stored */
    redisAsyncCommand(wp->cmd.ac, NULL, NULL, "MULTI");
    job_image_argv(&a, j->image_key, image, image_len, wp->cfg->image_ttl);
    redisAsyncCommandArgv(wp->cmd.ac, NULL, NULL, a.argc, a.argv, a.argvlen);
    job_xadd_argv(&a, &wp->keys, j);
    redisAsyncCommandArgv(wp->cmd.ac, NULL, NULL, a.argc, a.argv, a.argvlen);
    redisAsyncCommand(wp->cmd.ac, on_queued, id, "EXEC");
}
