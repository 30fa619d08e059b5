/* frames.c -- an answer's frames on their way to Redis. Frames wait in
 * their task's queue until Redis confirms them; while one is unconfirmed,
 * the answer's new text waits and then goes as one frame (publish_ready),
 * so a loaded Redis gets fewer, longer frames. After a lost connection the
 * unconfirmed ones are sent again (the script skips what it has).
 *
 * With redis_wait_replicas the last frame (which acknowledges the job)
 * counts as confirmed only once a WAIT sent after it answers (one at a time,
 * common/replica_wait.h), so a master that dies (Sentinel failover) before
 * then cannot take an answer's end with it: unconfirmed, it is sent again
 * to the new master. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "state.h"
#include "answer.h"
#include "clock.h"
#include "log.h"
#include "replica_wait.h"
#include "usage.h"
#include "worker_metrics.h"

static void on_written(redisAsyncContext *ac, void *r, void *privdata);
static void on_end_stored(redisAsyncContext *ac, void *r, void *privdata);
static void on_replicated(redisAsyncContext *ac, void *r, void *privdata);

void out_frame_free(struct out_frame *f)
{
    free(f->turn);
    free(f);
}

/* One WAIT at a time on ctl (replica_wait.h): it covers every last frame
 * sent before it that waits for replicas. */
static void wait_for_replicas(struct worker *w)
{
    if (w->wait_inflight || w->wait_covers == w->ends_sent || !w->ctl.ac ||
        redisAsyncCommand(w->ctl.ac, on_replicated, NULL, "WAIT %ld %ld",
                          w->cfg->redis_wait_replicas, w->cfg->redis_wait_timeout_ms) != REDIS_OK)
        return; /* (refused: the connection is closing; the frames are sent again) */
    w->wait_inflight = 1;
    w->wait_covers = w->ends_sent;
}

/* f ends its answer, and its confirmation waits for the replicas. */
static int waits_for_replicas(const struct worker *w, const struct out_frame *f)
{
    struct frame_head h;
    return w->cfg->redis_wait_replicas > 0 && clock_ms() >= w->wait_paused_until &&
           frame_peek(f->data, f->len, &h) == 0 && frame_is_final(&h);
}

void task_send_frames(struct task *t)
{
    struct worker *w = t->w;
    while (t->unsent && !t->dropped && ctl_ready(w)) {
        struct out_frame *f = t->unsent;
        struct answer_write a;
        int waits = waits_for_replicas(w, f);
        if (answer_write_argv(&a, &w->answer, &w->keys, t->reply, f->data, f->len, f->append,
                              w->writer, w->cfg->answer_ttl, w->cfg->answer_max_frames) != 0 ||
            (f->turn && answer_write_turn(&a, f->turn, f->turn_len,
                                          w->cfg->conversation_max_turns,
                                          w->cfg->conversation_ttl) != 0) ||
            (f->counts && answer_write_usage(&a, &w->keys, f->usage_day, t->usage_member,
                                             &f->usage, w->cfg->usage_days * 86400) != 0) ||
            redisAsyncCommandArgv(w->ctl.ac, waits ? on_end_stored : on_written, t, a.argc,
                                  a.argv, a.argvlen) != REDIS_OK)
            return;
        t->inflight++;
        t->unsent = STAILQ_NEXT(f, link);
        t->end_stored = 0; /* a verdict from an earlier connection says nothing of this one */
        if (waits) {
            t->end_mark = ++w->ends_sent;
            wait_for_replicas(w);
        }
    }
}

/* Queues the frame in w->frame and sends it when Redis can take it; with
 * turn (taken over), the conversation turn it stores; with counts (a done
 * frame), the answer and its usage are counted. */
int task_emit_storing(struct task *t, int append, struct buf *turn, int counts)
{
    struct buf *b = &t->w->frame;
    struct out_frame *f = malloc(sizeof(*f) + b->len + 1);
    if (!f)
        return -1;
    f->counts = counts;
    f->usage = t->usage;
    if (f->counts) /* the day it ended, even when Redis takes it after midnight */
        usage_day(clock_wall_ms(), f->usage_day);
    f->turn = turn ? turn->data : NULL;
    f->turn_len = turn ? turn->len : 0;
    if (turn)
        *turn = (struct buf)BUF_INIT;
    f->append = append;
    f->len = b->len;
    memcpy(f->data, b->data, b->len + 1);
    STAILQ_INSERT_TAIL(&t->out, f, link);
    if (!t->unsent)
        t->unsent = f;
    task_send_frames(t);
    return 0;
}

int task_emit(struct task *t, int append)
{
    return task_emit_storing(t, append, NULL, 0);
}

static void task_ended(struct task *t, const struct frame_head *last, long result)
{
    struct worker *w = t->w;
    if (t->image_key)
        redisAsyncCommand(w->ctl.ac, NULL, NULL, "UNLINK %s", t->image_key);
    if (result == ANSWER_ENDED) {
        log_info("job %s: its answer had already ended; acknowledged", t->id);
    } else {
        worker_metrics_answer(last->type);
        worker_metrics_answer_time((double)(clock_ms() - t->started_ms) / 1000);
    }
    if (result != ANSWER_ENDED)
        log_info("job %s: %s after %ld chunk(s) in %lld ms; acknowledged", t->id, last->type,
                 last->seq, clock_ms() - t->started_ms);
    task_drop(t);
}

/* The script did not store the frame (no script after a SCRIPT FLUSH, out
 * of memory, a replica): start over on a new connection, which sends it
 * again. */
static void frame_refused(struct worker *w, struct task *t, redisAsyncContext *ac,
                          const redisReply *reply)
{
    t->end_stored = 0; /* WAIT's reply, still to come, must not confirm it */
    if (!w->script_error_reported++)
        log_error("job %s: Redis refused a frame: %s; reconnecting", t->id,
                  reply->type == REDIS_REPLY_ERROR ? reply->str : "bad reply");
    redisAsyncDisconnect(ac);
}

/* The script's verdict on the oldest frame in flight. */
static void frame_confirmed(struct worker *w, struct task *t, long result)
{
    w->script_error_reported = 0;
    struct out_frame *f = STAILQ_FIRST(&t->out);
    STAILQ_REMOVE_HEAD(&t->out, link);
    struct frame_head h;
    int final = frame_peek(f->data, f->len, &h) == 0 && frame_is_final(&h);
    if (final && (result >= 0 || result == ANSWER_ENDED)) {
        task_ended(t, &h, result);
    } else if (result == ANSWER_ENDED) {
        /* a cancel wrote the last frame (its notice may still be on its way) */
        log_info("job %s: its answer was ended elsewhere (cancelled); model call stopped", t->id);
        worker_metrics_answer("cancelled");
        task_drop(t);
    } else if (result == ANSWER_FOREIGN) {
        log_warn("job %s: another worker answers it; this copy stops", t->id);
        task_drop(t);
    } else if (t->call && STAILQ_EMPTY(&t->out)) {
        model_call_flush(t->call); /* the text that waited for it (publish_ready) */
    }
    out_frame_free(f);
}

static void on_written(redisAsyncContext *ac, void *r, void *privdata)
{
    struct worker *w = ac->data;
    redisReply *reply = r;
    struct task *t = task_of_reply(ac, privdata, reply);
    if (!t)
        return; /* no reply: unsent again on the next connection, see on_disconnect */
    if (reply->type != REDIS_REPLY_INTEGER)
        frame_refused(w, t, ac, reply);
    else
        frame_confirmed(w, t, (long)reply->integer);
}

/* With redis_wait_replicas, an answer's last frame (which acknowledges
 * the job) counts as written only once a WAIT sent after it answers: a
 * master that dies before then leaves it unconfirmed, and it is sent again
 * to the master promoted after it. The WAIT covering it was sent before
 * this reply came (replies come in order); when none was (WAIT is paused),
 * it is confirmed now. */
static void on_end_stored(redisAsyncContext *ac, void *r, void *privdata)
{
    struct worker *w = ac->data;
    redisReply *reply = r;
    struct task *t = task_of_reply(ac, privdata, reply);
    if (!t)
        return;
    if (reply->type != REDIS_REPLY_INTEGER) {
        frame_refused(w, t, ac, reply);
    } else if (!w->wait_inflight || t->end_mark > w->wait_covers) {
        frame_confirmed(w, t, (long)reply->integer);
    } else {
        t->end_result = (long)reply->integer;
        t->end_stored = 1;
    }
}

/* WAIT answered: the last frames it covers are confirmed together. One
 * that reached fewer replicas than asked is confirmed too (docs/PROTOCOL.md,
 * "Redis behind Sentinel": only a master dying before WAIT answers is
 * covered), and for
 * REPLICA_WAIT_PAUSE_MS answers end without WAIT, which would hold every
 * frame on this connection for redis_wait_timeout_ms. */
static void on_replicated(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)privdata;
    struct worker *w = ac->data;
    redisReply *reply = r;
    if (w->closing)
        return;
    w->wait_inflight = 0;
    if (!reply)
        return; /* unconfirmed: sent again on the next connection */
    if (reply->type != REDIS_REPLY_INTEGER || reply->integer < w->cfg->redis_wait_replicas) {
        log_warn("%lld of %ld replica(s) had the answers' ends in time; answers end without "
                 "waiting for replicas for %d s",
                 reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1LL,
                 w->cfg->redis_wait_replicas, REPLICA_WAIT_PAUSE_MS / 1000);
        w->wait_paused_until = clock_ms() + REPLICA_WAIT_PAUSE_MS;
    }
    for (struct task *t = LIST_FIRST(&w->tasks), *next; t; t = next) {
        next = LIST_NEXT(t, link);
        if (t->end_stored && !t->dropped && t->end_mark <= w->wait_covers) {
            t->end_stored = 0;
            frame_confirmed(w, t, t->end_result);
        }
    }
    if (clock_ms() >= w->wait_paused_until)
        wait_for_replicas(w); /* for the last frames sent while this one waited */
}

/* What arrived in this turn of the loop goes out now, one frame per
 * answer; an answer with a frame still unconfirmed keeps its text until
 * Redis confirms it (frame_confirmed): a Redis that keeps up (a round trip
 * well under a token's interval) sees one frame per read as before, a
 * loaded one fewer, longer frames instead of a growing queue of small ones. */
void publish_ready(struct worker *w)
{
    while (!SLIST_EMPTY(&w->dirty)) {
        struct task *t = SLIST_FIRST(&w->dirty);
        SLIST_REMOVE_HEAD(&w->dirty, dirty_link);
        t->dirty = 0;
        if (t->call && STAILQ_EMPTY(&t->out))
            model_call_flush(t->call);
    }
}
