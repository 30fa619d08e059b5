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
#include "enqueue.h"
#include "frame.h"
#include "log.h"
#include "message.h"
#include "replica_wait.h"

/* ---- hiredis adapter -------------------------------------------------- */

/* lws watches the socket (a dup of hiredis' own) and says when it can be
 * read or written; common/redis_async.c does the rest. When the connection
 * ends, the wsi is closed by returning -1 from its callback. */
static void want_write(void *p)
{
    struct redis_link *l = p;
    if (l->wsi)
        lws_callback_on_writable(l->wsi);
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
        if (!l || !l->ra.ac)
            return -1;
        redis_async_handle(&l->ra, 1, 0);
        return l->ra.ac ? 0 : -1;
    case LWS_CALLBACK_RAW_WRITEABLE_FILE:
        if (!l || !l->ra.ac)
            return -1;
        redis_async_handle(&l->ra, 0, 1);
        return l->ra.ac ? 0 : -1;
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
    char peer[300];
    log_info("redis %s link connected (%s)", l->is_subscriber ? "subscriber" : "command",
             redis_peer(&ac->c, peer, sizeof(peer)));
    if (l->was_lost)
        metric_inc(metric_get(&METRIC_REDIS_RECONNECTS, ""));
    redis_backoff_reset(&l->wp->backoff);
    /* History reads go on this link: those lost with it, or not sent while
     * it was down (a subscription confirmed first, a live frame past a gap,
     * an answer's end), are made now. */
    if (!l->is_subscriber && l->wp->subscribed)
        answers_catch_up(l->wp);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct redis_link *l = ac->data;
    if (status != REDIS_OK && !l->wp->stopping)
        log_warn("redis %s link lost: %s", l->is_subscriber ? "subscriber" : "command",
                 ac->errstr);
    l->ra.ac = NULL;
    l->was_lost = 1;
    if (l->is_subscriber)
        l->wp->subscribed = l->wp->confirmations = 0;
}

/* Puts ac's socket into the lws loop as l's. -1 (ac freed) when it cannot. */
static int adopt(struct redis_link *l, redisAsyncContext *ac)
{
    struct wspush *wp = l->wp;
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
    l->ra.ac = ac;
    l->wsi = wsi;
    l->ra.wake = want_write;
    l->ra.wake_arg = l;
    ac->data = l;
    lws_callback_on_writable(wsi); /* completes the non-blocking connect */
    return 0;
}

static void on_script(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)privdata;
    struct redis_link *l = ac->data;
    if (r && script_loaded(&l->enqueue, r) != 0)
        log_warn("SCRIPT LOAD: %s; jobs send the script as EVAL",
                 ((redisReply *)r)->type == REDIS_REPLY_ERROR ? ((redisReply *)r)->str : "bad reply");
}

static int link_connect(struct redis_link *l)
{
    struct wspush *wp = l->wp;
    char err[256];
    long long timeout = wp->cfg->redis_timeout_ms;
    if (!l->is_subscriber && wp->cfg->redis_wait_replicas > 0)
        timeout += wp->cfg->redis_wait_timeout_ms; /* a job's WAIT may take that long */
    redisAsyncContext *ac = redis_async_connect(&l->ra, &wp->addr, timeout, err, sizeof(err));
    if (!ac) {
        log_warn("%s", err);
        return -1;
    }
    if (adopt(l, ac) != 0)
        return -1;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    if (l->is_subscriber)
        subscribe(l);
    else
        script_load_async(&l->enqueue, ac, on_script, NULL); /* first: what follows may use it */
    return 0;
}

/* ---- the Sentinels announcing a failover (common/sentinel_watch.h) ---- */

static void on_watch_connect(const redisAsyncContext *ac, int status)
{
    struct redis_link *l = ac->data;
    if (status == REDIS_OK)
        redis_backoff_reset(&l->wp->watch_backoff);
    else
        log_warn("Sentinel subscription: %s", ac->errstr);
}

static void on_watch_disconnect(const redisAsyncContext *ac, int status)
{
    struct redis_link *l = ac->data;
    if (status != REDIS_OK && !l->wp->stopping)
        log_warn("Sentinel subscription lost: %s", ac->errstr);
    l->ra.ac = NULL;
}

/* Keeps the subscription; on a +switch-master drops the links to the old
 * master, and the next tick reconnects them. */
static void watch_sentinels(struct wspush *wp, long long now)
{
    struct redis_link *l = &wp->watch;
    if (!l->ra.ac && !l->wsi && redis_backoff_due(&wp->watch_backoff, now)) {
        char err[256];
        redisAsyncContext *ac = sentinel_watch_connect(&wp->sentinels, &l->ra, err, sizeof(err));
        if (!ac) {
            log_warn("%s", err);
        } else if (adopt(l, ac) == 0) {
            redisAsyncSetConnectCallback(ac, on_watch_connect);
            redisAsyncSetDisconnectCallback(ac, on_watch_disconnect);
        }
    }
    redis_async_expire(&l->ra, now);
    if (!sentinel_watch_switched(&wp->sentinels))
        return;
    if (sentinel_watch_stale(&wp->sentinels, wp->sub.ra.ac))
        redis_async_abort(&wp->sub.ra);
    if (sentinel_watch_stale(&wp->sentinels, wp->cmd.ra.ac))
        redis_async_abort(&wp->cmd.ra);
    redis_backoff_reset(&wp->backoff);
}

/* ---- answers from Redis ----------------------------------------------- */

static void deliver(struct wspush *wp, const redisReply *channel, const redisReply *payload,
                    int via_pattern)
{
    if (channel->type != REDIS_REPLY_STRING || payload->type != REDIS_REPLY_STRING)
        return;
    uint64_t conn = 0;
    const char *sub = via_pattern ? NULL : keys_user_of_channel(&wp->keys, channel->str);
    if (sub) {
        char user[KEYS_MAX_SUBJECT];
        if (keys_subject_user(sub, user, sizeof(user)) == 0)
            answers_deliver(wp, ANSWERS_USER, user, payload->str, payload->len);
        return;
    }
    if (!via_pattern) {
        /* ours is the broadcast channel; any other we hear is another
         * instance's connection channel, subscribed for a resumed answer */
        conn = strcmp(channel->str, wp->keys.broadcast) == 0 ? 0 : ANSWERS_FOREIGN;
    } else if (strcmp(channel->str, wp->ping_channel) == 0) {
        answers_pong(wp, payload->str);
        return;
    } else if (!(conn = keys_connection_of(wp->connections, channel->str))) {
        return; /* not a channel of ours */
    }
    answers_deliver(wp, conn, NULL, payload->str, payload->len);
}

struct heard_on {
    struct wspush *wp;
    const char *channel;
};

static void fill_if_heard_on(struct follow *f, void *ctx)
{
    struct heard_on *on = ctx;
    if (f->channel && strcmp(f->channel, on->channel) == 0)
        answers_fill(on->wp, f);
}

/* The broadcast channel and our connections' pattern confirmed: what was
 * missed before can be read now. A foreign channel confirmed: what its
 * answer published before is read now. */
static void confirmed(struct wspush *wp, const char *channel)
{
    if (strcmp(channel, wp->keys.broadcast) != 0 && strncmp(channel, wp->connections,
                                                            strlen(wp->connections)) != 0) {
        struct heard_on on = {wp, channel};
        follow_each(&wp->follows, fill_if_heard_on, &on);
        return;
    }
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
        deliver(l->wp, reply->element[1], reply->element[2], 0);
    else if (strcmp(kind, "pmessage") == 0 && reply->elements == 4)
        deliver(l->wp, reply->element[2], reply->element[3], 1);
    else if ((strcmp(kind, "subscribe") == 0 || strcmp(kind, "psubscribe") == 0) &&
             reply->element[1]->type == REDIS_REPLY_STRING)
        confirmed(l->wp, reply->element[1]->str);
}

static void subscribe_foreign(struct follow *f, void *ctx)
{
    struct wspush *wp = ctx;
    if (f->channel)
        redisAsyncCommand(wp->sub.ra.ac, on_pubsub, NULL, "SUBSCRIBE %s", f->channel);
}

static void subscribe_inbox(struct wspush *wp, const char *name, const char *channel, void *ctx)
{
    (void)name;
    (void)ctx;
    if (channel[0])
        redisAsyncCommand(wp->sub.ra.ac, on_pubsub, NULL, "SUBSCRIBE %s", channel);
}

/* The users' inboxes first: confirmations come in order, so when the last
 * two (broadcast, our pattern) are in and the catch-up starts, every
 * channel of ours is heard. */
static void subscribe(struct redis_link *l)
{
    struct wspush *wp = l->wp;
    wp->subscribed = wp->confirmations = 0;
    subjects_each(wp, subscribe_inbox, NULL);
    redisAsyncCommand(l->ra.ac, on_pubsub, NULL, "SUBSCRIBE %s", wp->keys.broadcast);
    redisAsyncCommand(l->ra.ac, on_pubsub, NULL, "PSUBSCRIBE %s*", wp->connections);
    follow_each(&wp->follows, subscribe_foreign, wp);
}

void redis_link_subscribe(struct wspush *wp, const char *channel)
{
    if (wp->sub.ra.ac)
        redisAsyncCommand(wp->sub.ra.ac, on_pubsub, NULL, "SUBSCRIBE %s", channel);
}

void redis_link_unsubscribe(struct wspush *wp, const char *channel)
{
    if (wp->sub.ra.ac && !wp->stopping)
        redisAsyncCommand(wp->sub.ra.ac, NULL, NULL, "UNSUBSCRIBE %s", channel);
}

/* ---- presence and housekeeping ---------------------------------------- */

static void publish_presence(struct wspush *wp)
{
    char key[256], ttl[24], count[24];
    keys_presence(&wp->keys, wp->instance, key, sizeof(key));
    snprintf(ttl, sizeof(ttl), "%ld", wp->cfg->presence_ttl);
    snprintf(count, sizeof(count), "%zu", wp->conns.count);
    redisAsyncCommand(wp->cmd.ra.ac, NULL, NULL, "SET %s %s EX %s", key, count, ttl);
    /* Redis out of memory (maxmemory, noeviction) refuses SET and SADD but
     * not EXPIRE, which needs no memory: the last count stays, and so does
     * this instance, until SET works again (at the latest in a third of
     * the TTL). After a SET that worked it changes nothing. */
    redisAsyncCommand(wp->cmd.ra.ac, NULL, NULL, "EXPIRE %s %s", key, ttl);
    redisAsyncCommand(wp->cmd.ra.ac, NULL, NULL, "SADD %s %s", wp->keys.instances, wp->instance);
    wp->published_count = (long long)wp->conns.count;
    wp->next_presence = clock_ms() + wp->cfg->presence_ttl * 1000 / 3;
}

void redis_link_tick(struct wspush *wp)
{
    long long now = clock_ms();
    if (wp->watching && !wp->stopping)
        watch_sentinels(wp, now);
    if ((!wp->sub.ra.ac || !wp->cmd.ra.ac) && !wp->stopping &&
        redis_backoff_due(&wp->backoff, now)) {
        if (!wp->sub.ra.ac && !wp->sub.wsi)
            link_connect(&wp->sub);
        if (!wp->cmd.ra.ac && !wp->cmd.wsi)
            link_connect(&wp->cmd);
    }
    struct redis_link *links[2] = {&wp->sub, &wp->cmd};
    for (int i = 0; i < 2; i++)
        if (redis_async_expire(&links[i]->ra, now))
            log_warn("redis did not answer within %ld ms; reconnecting", wp->cfg->redis_timeout_ms);
    if (wp->cmd.ra.ac && !wp->stopping &&
        (now >= wp->next_presence || wp->published_count != (long long)wp->conns.count))
        publish_presence(wp);
    if (!wp->stopping)
        wspush_metrics_publish(wp);
}

void redis_link_close(struct wspush *wp)
{
    if (!wp->cmd.ra.ac)
        return;
    char key[256];
    keys_presence(&wp->keys, wp->instance, key, sizeof(key));
    redisAsyncCommand(wp->cmd.ra.ac, NULL, NULL, "DEL %s", key);
    redisAsyncCommand(wp->cmd.ra.ac, NULL, NULL, "SREM %s %s", wp->keys.instances, wp->instance);
}

/* ---- jobs from clients ------------------------------------------------ */

/* A job on its way: what its callbacks need. on_queued has the job's
 * reply; with redis_wait_replicas the client is told (and the struct freed)
 * only when the WAIT covering it answers (on_replicated). */
struct queuing {
    uint64_t conn_id;
    int image;
    int wanted;             /* redis_wait_replicas asks for WAIT */
    int scripted;           /* its reply is the enqueue script's */
    long mark;              /* the link's jobs_sent when it was sent */
    STAILQ_ENTRY(queuing) link; /* on the link's replicating list */
    char id[48], conversation[48];
};

/* The client is told: queued, 429, 404, or an error frame. */
static void tell(struct wspush *wp, struct queuing *q, int rc, const char *why)
{
    if (rc == 0)
        metrics_count_queued(q->image, "websocket");
    else if (rc == ENQUEUE_LIMITED)
        metrics_count_refused(why);
    struct conn *c = conn_find(&wp->conns, q->conn_id);
    if (!c)
        return;
    struct buf b = BUF_INIT;
    if (rc == ENQUEUE_LIMITED || rc == ENQUEUE_NO_CONVERSATION) {
        if (frame_reject_code(&b, rc == ENQUEUE_LIMITED ? 429 : 404, why) == 0)
            conn_send_copy(&wp->conns, c, b.data, b.len);
    } else if (rc != 0) {
        if (why)
            log_error("queueing a job: %s", why);
        conn_reject(&wp->conns, c, why == MSG_NOT_REPLICATED ? why
                                   : "服务暂时不可用 (could not queue the message, try again)");
    } else {
        log_info("job %s: queued by %s on client %llu (%s)", q->id, c->who.subject,
                 (unsigned long long)c->id, wp->instance);
        int to_user = keys_subject_is_user(c->who.subject);
        answers_queued(wp, to_user ? ANSWERS_USER : c->id, c->who.subject, q->id);
        if (frame_queued(&b, q->id, q->conversation) == 0)
            conn_send_copy(&wp->conns, c, b.data, b.len);
    }
    buf_free(&b);
}

static void on_replicated(redisAsyncContext *ac, void *r, void *privdata);

/* One WAIT at a time on the cmd link (replica_wait.h): it covers every job
 * sent before it. */
static void wait_for_replicas(struct redis_link *l)
{
    const struct config *cfg = l->wp->cfg;
    if (l->wait_inflight || l->wait_covers == l->jobs_sent || !l->ra.ac ||
        clock_ms() < l->wait_paused_until ||
        redisAsyncCommand(l->ra.ac, on_replicated, NULL, "WAIT %ld %ld",
                          cfg->redis_wait_replicas, cfg->redis_wait_timeout_ms) != REDIS_OK)
        return; /* (the jobs no WAIT covers are refused: on_queued) */
    l->wait_inflight = 1;
    l->wait_covers = l->jobs_sent;
}

/* The job's reply. With redis_wait_replicas the WAIT covering it, if one
 * does, was sent before this reply came (replies come in order). */
static void on_queued(redisAsyncContext *ac, void *r, void *privdata)
{
    struct redis_link *l = ac->data;
    struct queuing *q = privdata;
    const char *why;
    long retry_after;
    static struct log_limit lost_script = LOG_LIMIT_INIT(10000);
    if (q->scripted && script_heard(&l->enqueue, r))
        log_limited(&lost_script, LOG_WARN, "redis had lost the enqueue script (SCRIPT FLUSH?): "
                    "the jobs sent meanwhile are refused, the next ones send it again");
    int rc = enqueue_result(r, q->id, q->conversation, &why, &retry_after);
    if (rc == 0 && q->wanted && l->wait_inflight && q->mark <= l->wait_covers) {
        STAILQ_INSERT_TAIL(&l->replicating, q, link);
        return;
    }
    if (rc != 0 || !q->wanted)
        tell(l->wp, q, rc, why); /* (a refusal needs no replica) */
    else
        tell(l->wp, q, -1, MSG_NOT_REPLICATED);
    free(q);
}

/* WAIT answered: every job it covers is told together. Too few replicas
 * pause WAIT for REPLICA_WAIT_PAUSE_MS (jobs are refused meanwhile): each
 * WAIT holds the whole link, history reads and presence included, for
 * redis_wait_timeout_ms. */
static void on_replicated(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)privdata;
    struct redis_link *l = ac->data;
    struct wspush *wp = l->wp;
    l->wait_inflight = 0;
    int replicated = enqueue_replicated(r, wp->cfg) == 0;
    if (!replicated && r) {
        log_warn("WAIT %ld: too few replicas had the jobs in time; refusing jobs for %d s",
                 wp->cfg->redis_wait_replicas, REPLICA_WAIT_PAUSE_MS / 1000);
        l->wait_paused_until = clock_ms() + REPLICA_WAIT_PAUSE_MS;
    }
    struct queuing *q;
    while ((q = STAILQ_FIRST(&l->replicating))) {
        STAILQ_REMOVE_HEAD(&l->replicating, link);
        if (replicated) {
            tell(wp, q, 0, NULL);
        } else {
            log_warn("job %s: WAIT %ld: %s", q->id, wp->cfg->redis_wait_replicas,
                     r ? "too few replicas have it in time" : "connection lost");
            tell(wp, q, -1, MSG_NOT_REPLICATED);
        }
        free(q);
    }
    if (r)
        wait_for_replicas(l); /* for the jobs sent while this one waited */
}

void redis_link_submit(struct wspush *wp, uint64_t conn_id, const struct job *j,
                       const void *image, size_t image_len)
{
    struct conn *c = conn_find(&wp->conns, conn_id);
    struct enqueue e;
    if (!wp->cmd.ra.ac) {
        if (c)
            conn_reject(&wp->conns, c, MSG_SERVICE_UNAVAILABLE);
        return;
    }
    struct queuing *q = calloc(1, sizeof(*q));
    if (!q ||
        enqueue_prepare(&e, &wp->keys, wp->cfg, j, image, image_len, &wp->cmd.enqueue) != 0) {
        free(q);
        if (c)
            conn_reject(&wp->conns, c, MSG_INTERNAL);
        return;
    }
    if (e.waits && clock_ms() < wp->cmd.wait_paused_until) {
        free(q);
        if (c)
            conn_reject(&wp->conns, c, MSG_NOT_REPLICATED);
        return;
    }
    q->conn_id = conn_id;
    q->image = image != NULL;
    q->wanted = e.waits;
    q->scripted = e.scripted;
    q->mark = ++wp->cmd.jobs_sent;
    redisAsyncContext *ac = wp->cmd.ra.ac;
    int last = e.ncmds - 1 - e.waits; /* the job's reply */
    for (int i = 0; i < last; i++)
        redisAsyncCommandArgv(ac, NULL, NULL, e.cmd[i].argc, e.cmd[i].argv, e.cmd[i].argvlen);
    /* (a command refused here was never sent: the connection is closing) */
    if (redisAsyncCommandArgv(ac, on_queued, q, e.cmd[last].argc, e.cmd[last].argv,
                              e.cmd[last].argvlen) != REDIS_OK) {
        free(q);
        if (c)
            conn_reject(&wp->conns, c, MSG_SERVICE_UNAVAILABLE);
        return;
    }
    if (e.waits)
        wait_for_replicas(&wp->cmd);
}
