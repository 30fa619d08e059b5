/* answers.c -- answer frames to clients, each once and in order.
 *
 * Frames come live over pub/sub. Pub/sub forgets what nobody heard: while
 * the subscriber link is down (Redis restarted, the link was killed) the
 * worker goes on publishing. So every answer frame is also in the answer's
 * history (common/answer.h), and this file reads it when
 *  - a live frame skips a seq (some were missed): from the next seq;
 *  - the subscription is back, or the command link that reads histories
 *    (reads lost with it, or not sent while it was down, are made again):
 *    every answer still open, and every answer begun since a moment the
 *    subscription was known to be alive (found in the P answers index).
 * That moment, the "mark", is the newest index entry read on the command
 * link and then proven by our own ping coming back on the subscriber link:
 * every answer begun up to the mark was heard while subscribed. */
#define _POSIX_C_SOURCE 200809L
#include "wspush.h"

#include <stdio.h>
#include <string.h>

#include "answer.h"
#include "clock.h"
#include "frame.h"
#include "log.h"

#define MARK_EVERY_MS 1000
#define SWEEP_EVERY_MS 1000
#define KEEP_ENDED_MS 30000     /* late duplicates of an ended answer are dropped */
#define INDEX_COUNT 500

static int resumed_by(struct wspush *wp, const char *id, uint64_t conn)
{
    return follow_find(&wp->follows, id, FOLLOW_RESUME, conn) != NULL;
}

/* An answer sent to a group (everyone, or a user's sockets) rather than to
 * one connection: a member may resume it on its own for a while. */
static int to_group(const struct follow *f)
{
    return f->conn == 0 || f->conn == ANSWERS_USER;
}

static int resuming(struct wspush *wp, const struct conn *c, void *ctx)
{
    return resumed_by(wp, ctx, c->id);
}

/* To the entry's connection, or to its group but those resuming the answer
 * on their own. */
static void forward(struct wspush *wp, const struct follow *f, const char *data, size_t len)
{
    struct conn *c = to_group(f) ? NULL : conn_find(&wp->conns, f->conn);
    if (!to_group(f) && !c)
        return; /* that client has gone */
    if (f->conn == ANSWERS_USER && (!f->user || !subjects_find(&wp->subjects, f->user)))
        return; /* none of the user's sockets is here */
    struct msg *m = msg_new(data, len);
    if (!m) {
        log_error("out of memory delivering a frame");
        return;
    }
    int some_resume = to_group(f) && follow_has_resume(&wp->follows, f->id);
    if (c)
        conn_send(&wp->conns, c, m);
    else if (f->conn == ANSWERS_USER)
        subjects_send(wp, f->user, m, some_resume ? resuming : NULL, (void *)f->id);
    else if (!some_resume)
        conn_broadcast(&wp->conns, m);
    else
        for (c = LIST_FIRST(&wp->conns.all); c; c = LIST_NEXT(c, link))
            if (c->who.authed && !resumed_by(wp, f->id, c->id))
                conn_send(&wp->conns, c, m);
    msg_unref(m);
}

static void forward_raw(struct wspush *wp, uint64_t conn, const char *user, const char *data,
                        size_t len)
{
    struct follow f = {.conn = conn, .user = (char *)user};
    forward(wp, &f, data, len);
}

/* The CHANNEL entry of answer id for its target (a new one knows it). */
static struct follow *channel_entry(struct wspush *wp, const char *id, uint64_t conn,
                                    const char *user)
{
    struct follow *f = follow_get(&wp->follows, id, FOLLOW_CHANNEL, conn);
    if (f && conn == ANSWERS_USER && !f->user && !(f->user = strdup(user)))
        return NULL;
    return f;
}

static void fill(struct wspush *wp, struct follow *f);

/* Delivers the frame if it is the next of its answer. */
static void take(struct wspush *wp, struct follow *f, const struct frame_head *h,
                 const char *data, size_t len, int live)
{
    f->touched_ms = clock_ms();
    if (live && h->seq > f->heard_seq)
        f->heard_seq = h->seq;
    if (f->resolving || h->seq < f->next_seq)
        return; /* its first read brings it; or had it */
    if (h->seq > f->next_seq) {
        if (live) {
            fill(wp, f);
            return;
        }
        log_warn("job %s: frames %ld to %ld are no longer in its history", f->id,
                 f->next_seq, h->seq - 1);
    }
    if (f->kind == FOLLOW_CHANNEL && to_group(f))
        follow_note_join(f, h->seq, wp->conns.next_member - 1);
    forward(wp, f, data, len);
    f->next_seq = h->seq + 1;
    if (f->next_seq == f->skip_from && f->skip_to > f->skip_from)
        f->next_seq = f->skip_to; /* the connection had these live */
    if (frame_is_final(h))
        f->ended = 1;
}

/* A resuming connection that has what everyone has takes the answer with
 * everyone again. */
static void rejoin(struct wspush *wp, struct follow *r)
{
    struct follow *f = follow_find(&wp->follows, r->id, FOLLOW_CHANNEL, 0);
    if (!r->stays && !r->resolving && !r->filling && f && to_group(f) &&
        r->next_seq == f->next_seq)
        follow_remove(&wp->follows, r);
}

struct live_frame {
    struct wspush *wp;
    const struct frame_head *h;
    const char *data;
    size_t len;
};

static void take_resume(struct follow *r, void *ctx)
{
    struct live_frame *lf = ctx;
    take(lf->wp, r, lf->h, lf->data, lf->len, 1);
    rejoin(lf->wp, r);
}

void answers_deliver(struct wspush *wp, uint64_t conn, const char *user, const char *data,
                     size_t len)
{
    struct frame_head h;
    if (frame_peek(data, len, &h) != 0) {
        if (conn != ANSWERS_FOREIGN)
            forward_raw(wp, conn, user, data, len); /* not an answer frame of ours: as it is */
        return;
    }
    struct follow *f = conn == ANSWERS_FOREIGN
                           ? follow_find(&wp->follows, h.id, FOLLOW_CHANNEL, 0)
                           : channel_entry(wp, h.id, conn, user);
    if (f)
        take(wp, f, &h, data, len, 1);
    else if (conn != ANSWERS_FOREIGN)
        forward_raw(wp, conn, user, data, len); /* no memory to follow it */
    struct live_frame lf = {wp, &h, data, len};
    follow_each_resume(&wp->follows, h.id, take_resume, &lf);
}

void answers_queued(struct wspush *wp, uint64_t conn, const char *user, const char *id)
{
    if (!channel_entry(wp, id, conn, user))
        log_warn("job %s: out of memory; it will not be caught up", id);
}

/* ---- reading the history ---------------------------------------------- */

void answers_absorb(struct wspush *wp, struct follow *f, const redisReply *entries)
{
    for (size_t i = 0; i < entries->elements; i++) {
        long seq;
        const char *frame;
        size_t len;
        struct frame_head h;
        if (answer_entry(entries->element[i], &seq, &frame, &len) == 0 &&
            frame_peek(frame, len, &h) == 0)
            take(wp, f, &h, frame, len, 0);
    }
    if (f->kind == FOLLOW_RESUME)
        rejoin(wp, f);
    if (f->ended || f->gone)
        return;
    /* a frame heard live is in the history: heard after the read was sent,
     * it may have been stored after the read too */
    if (entries->elements == ANSWERS_FILL_COUNT || f->heard_seq > f->heard_at_read)
        fill(wp, f);
    else if (f->heard_seq >= f->next_seq) {
        log_warn("job %s: frames %ld to %ld are no longer in its history", f->id,
                 f->next_seq, f->heard_seq);
        f->next_seq = f->heard_seq + 1; /* those are lost: go on live */
    }
}

static void on_fill(redisAsyncContext *ac, void *r, void *privdata)
{
    struct redis_link *l = ac->data;
    struct wspush *wp = l->wp;
    struct follow *f = privdata;
    redisReply *reply = r;
    f->filling = 0;
    if (!reply || wp->stopping || f->gone)
        return; /* the catch-up after the reconnect reads it again */
    if (reply->type != REDIS_REPLY_ARRAY) {
        log_warn("job %s: cannot read its history: %s", f->id,
                 reply->type == REDIS_REPLY_ERROR ? reply->str : "bad reply");
        return;
    }
    answers_absorb(wp, f, reply);
}

static void fill(struct wspush *wp, struct follow *f)
{
    if (f->filling || f->resolving || f->ended || f->gone || !wp->cmd.ra.ac)
        return;
    char key[160], start[32];
    if (keys_answer(&wp->keys, f->id, key, sizeof(key)) != 0)
        return;
    answer_range_start(f->next_seq - 1, start, sizeof(start));
    if (redisAsyncCommand(wp->cmd.ra.ac, on_fill, f, "XRANGE %s %s + COUNT %d", key, start,
                          ANSWERS_FILL_COUNT) == REDIS_OK) {
        f->filling = 1;
        f->heard_at_read = f->heard_seq;
    }
}

void answers_fill(struct wspush *wp, struct follow *f)
{
    fill(wp, f);
}

static void fill_open(struct follow *f, void *ctx)
{
    fill(ctx, f);
}

static void read_index(struct wspush *wp, const char *after);

/* P answers entries: [id, [id, <job id>, reply, <channel>]] */
static void on_index(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)privdata;
    struct redis_link *l = ac->data;
    struct wspush *wp = l->wp;
    redisReply *reply = r;
    if (!reply || wp->stopping || reply->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *e = reply->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[1]->type != REDIS_REPLY_ARRAY || e->element[1]->elements != 4)
            continue;
        const redisReply *id = e->element[1]->element[1], *ch = e->element[1]->element[3];
        if (id->type != REDIS_REPLY_STRING || ch->type != REDIS_REPLY_STRING)
            continue;
        uint64_t conn = 0;
        char user[KEYS_MAX_SUBJECT];
        const char *sub = keys_user_of_channel(&wp->keys, ch->str);
        if (sub) {
            if (keys_subject_user(sub, user, sizeof(user)) != 0 ||
                !subjects_find(&wp->subjects, user))
                continue; /* a user with no socket here */
            conn = ANSWERS_USER;
        } else if (strcmp(ch->str, wp->keys.broadcast) != 0 &&
                   (!(conn = keys_connection_of(wp->connections, ch->str)) ||
                    !conn_find(&wp->conns, conn))) {
            continue; /* another instance's client, or one that left */
        }
        struct follow *f = channel_entry(wp, id->str, conn, user);
        if (f)
            fill(wp, f);
    }
    const redisReply *last = reply->elements ? reply->element[reply->elements - 1] : NULL;
    if (reply->elements == INDEX_COUNT && last->type == REDIS_REPLY_ARRAY && last->elements &&
        last->element[0]->type == REDIS_REPLY_STRING)
        read_index(wp, last->element[0]->str); /* there may be more */
}

static void read_index(struct wspush *wp, const char *after)
{
    if (wp->cmd.ra.ac)
        redisAsyncCommand(wp->cmd.ra.ac, on_index, NULL, "XRANGE %s (%s + COUNT %d",
                          wp->keys.answers, after, INDEX_COUNT);
}

void answers_catch_up(struct wspush *wp)
{
    wp->ping_sent_ms = 0;
    wp->mark_nonce++; /* a ping sent before this subscription proves nothing */
    follow_each(&wp->follows, fill_open, wp);
    if (wp->mark[0]) {
        log_info("catching up on answers begun since %s", wp->mark);
        read_index(wp, wp->mark);
    }
}

/* ---- the mark ---------------------------------------------------------- */

/* The read and the ping travel on two sockets: either may be handled
 * first. The mark moves when both of the same round are in. */
static void commit_mark(struct wspush *wp)
{
    if (wp->mark_candidate[0] && wp->pong_nonce == wp->mark_nonce) {
        memcpy(wp->mark, wp->mark_candidate, sizeof(wp->mark));
        wp->mark_candidate[0] = '\0';
        wp->mark_ms = wp->mark_round_ms;
    }
}

static void on_mark(redisAsyncContext *ac, void *r, void *privdata)
{
    struct redis_link *l = ac->data;
    struct wspush *wp = l->wp;
    redisReply *reply = r;
    if (!reply || (unsigned long)(uintptr_t)privdata != wp->mark_nonce)
        return;
    const char *id = "0-0";
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
        reply->element[0]->type == REDIS_REPLY_ARRAY && reply->element[0]->elements > 0 &&
        reply->element[0]->element[0]->type == REDIS_REPLY_STRING)
        id = reply->element[0]->element[0]->str;
    snprintf(wp->mark_candidate, sizeof(wp->mark_candidate), "%s", id);
    commit_mark(wp);
}

void answers_pong(struct wspush *wp, const char *payload)
{
    wp->ping_sent_ms = 0;
    char expect[24];
    snprintf(expect, sizeof(expect), "%lu", wp->mark_nonce);
    if (strcmp(payload, expect) == 0) {
        wp->pong_nonce = wp->mark_nonce;
        commit_mark(wp);
    }
}

/* (an answer to a user is kept while none of its sockets is here: one
 * may come back and resume it) */
static int conn_gone(void *ctx, uint64_t conn)
{
    struct wspush *wp = ctx;
    return conn != ANSWERS_USER && !conn_find(&wp->conns, conn);
}

struct channel_use {
    const char *channel;
    int used;
};

static void uses_channel(struct follow *f, void *ctx)
{
    struct channel_use *u = ctx;
    if (f->channel && strcmp(f->channel, u->channel) == 0)
        u->used = 1;
}

/* An entry goes: so does the foreign subscription no other entry needs. */
static void forget(void *ctx, struct follow *f)
{
    struct wspush *wp = ctx;
    struct channel_use u = {f->channel, 0};
    if (!f->channel)
        return;
    follow_each(&wp->follows, uses_channel, &u);
    if (!u.used)
        redis_link_unsubscribe(wp, f->channel);
}

void answers_tick(struct wspush *wp)
{
    long long now = clock_ms();
    if (!wp->cmd.ra.ac)
        wp->ping_sent_ms = 0; /* a ping it carried may never have been sent */
    if (wp->subscribed && wp->ping_sent_ms &&
        now - wp->ping_sent_ms > wp->cfg->redis_timeout_ms) {
        /* our ping did not come back: a subscription that looks open but
         * hears nothing (a half-open connection) */
        log_warn("redis subscriber link silent for %lld ms; reconnecting", now - wp->ping_sent_ms);
        wp->ping_sent_ms = 0;
        redis_async_abort(&wp->sub.ra);
        return;
    }
    if (wp->subscribed && wp->cmd.ra.ac && now >= wp->next_mark_ms) {
        /* the newest index entry, then (on the same link, so after it) a
         * ping published to our own subscription: its coming back proves
         * the subscription was alive after the read */
        char nonce[24];
        wp->next_mark_ms = now + MARK_EVERY_MS;
        wp->mark_round_ms = now;
        wp->mark_nonce++;
        wp->mark_candidate[0] = '\0';
        snprintf(nonce, sizeof(nonce), "%lu", wp->mark_nonce);
        redisAsyncCommand(wp->cmd.ra.ac, on_mark, (void *)(uintptr_t)wp->mark_nonce,
                          "XREVRANGE %s + - COUNT 1", wp->keys.answers);
        redisAsyncCommand(wp->cmd.ra.ac, NULL, NULL, "PUBLISH %s %s", wp->ping_channel, nonce);
        if (!wp->ping_sent_ms)
            wp->ping_sent_ms = now;
    }
    if (now >= wp->next_sweep_ms) {
        wp->next_sweep_ms = now + SWEEP_EVERY_MS;
        /* an ended answer is forgotten only once a mark is past it, so that
         * a catch-up cannot deliver it a second time */
        follow_sweep(&wp->follows, now, KEEP_ENDED_MS, wp->mark_ms, wp->cfg->answer_ttl * 1000LL,
                     conn_gone, forget, wp);
    }
}
