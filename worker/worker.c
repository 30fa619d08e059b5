/* worker.c -- see worker.h. A job's life: taken (XREADGROUP or XCLAIM) ->
 * image fetched (image jobs) -> model called, retried with backoff while no
 * token was sent -> each delta written to the answer's history and
 * published -> done/error written the same way, which acknowledges the job
 * (common/answer.h: one script does all three, atomically).
 *
 * Frames wait in their task's queue until Redis confirms them; while one
 * is unconfirmed, the answer's new text waits and then goes as one frame
 * (publish_ready), so a loaded Redis gets fewer, longer frames. When the
 * control connection is lost the model calls go on; the unconfirmed frames
 * are sent again once it is back (the script skips the ones it already
 * has), so a Redis restart costs an answer nothing. A job claimed from a
 * worker that died is first looked up in the history: an answer that ended
 * is only acknowledged, one cut short is ended with an error.
 *
 * A job in a conversation waits for its turn before anything else: until
 * no earlier job of the conversation is left in the jobs stream (whichever
 * worker has it), checked every TURN_POLL_MS. It then gets the
 * conversation's turns in the same step, sends them to the model before
 * the question, and its done frame stores the new turn (question and the
 * whole answer) in the script that writes it (common/conversation.h). A
 * waiting job takes no model slot (worker_concurrency); at most
 * worker_concurrency jobs wait at once per worker.
 *
 * The model is the job's (the client's "model", common/models.h) or the
 * default. When ai_fallback_base_url is set and the primary endpoint still
 * fails before the first token after its retries (connect errors, 408, 5xx,
 * 429), the fallback endpoint is asked (with ai_retries of its own); once a
 * token was sent the endpoint never changes. The done frame says which
 * answered.
 *
 * With redis_wait_replicas the last frame (which acknowledges the job)
 * counts as confirmed only once a WAIT sent after it answers (one at a time,
 * common/replica_wait.h), so a master that dies (Sentinel failover) before
 * then cannot take an answer's end with it: unconfirmed, it is sent again
 * to the new master.
 *
 * Each call asks for the token usage (stream_options.include_usage); an
 * endpoint that refuses the option (a 400 naming it) is asked again at once
 * without it, and never again with it by this process. The done frame
 * carries the usage the model reported, and its script counts the answer
 * and its tokens for the asker and the day (common/usage.h). */
#define _POSIX_C_SOURCE 200809L
#include "worker.h"

#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/queue.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "answer.h"
#include "base64.h"
#include "clock.h"
#include "conversation.h"
#include "frame.h"
#include "history.h"
#include "job.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "model.h"
#include "models.h"
#include "program.h"
#include "redis_async.h"
#include "redis_conn.h"
#include "replica_wait.h"
#include "sentinel_watch.h"
#include "usage.h"
#include "worker_metrics.h"

#define READ_BLOCK_MS 2000
#define STOP_GRACE_MS 10000
#define RETRY_BASE_MS 500
#define RETRY_MAX_MS 8000
#define TURN_POLL_MS 100

#define MSG_BUSY "AI 服务繁忙，请稍后再试 (the AI service is busy, please try again later)"
#define MSG_UNAVAILABLE "AI 服务暂时不可用 (the AI service is unavailable, please try again later)"
#define MSG_CONFIG "AI 服务配置错误，请联系管理员 (the AI service rejected our credentials)"
#define MSG_INTERRUPTED "回答中断 (the answer was interrupted)"
#define MSG_INVALID "AI 服务返回了无法识别的数据 (the AI service sent an invalid response)"
#define MSG_TOO_LONG "回答过长，已停止 (the answer was too long and was stopped)"
#define MSG_IMAGE_GONE "图片已过期 (the image is no longer available)"
#define MSG_DEAD "消息多次处理失败，已放弃 (this message failed repeatedly and was set aside)"

enum task_state {
    TASK_PROBING,       /* claimed: reading what its answer already holds */
    TASK_TURN,          /* in a conversation: waiting for the earlier questions' answers */
    TASK_FETCHING,      /* image job: reading the image */
    TASK_WAITING,       /* waiting to retry the model */
    TASK_STREAMING,     /* the model call runs */
    TASK_ENDING,        /* last frame queued: waiting for Redis to confirm */
};

/* A frame waiting for Redis to confirm it was stored and published. */
struct out_frame {
    STAILQ_ENTRY(out_frame) link;
    int append;         /* put it after whatever the answer holds */
    char *turn;         /* the conversation turn a done frame stores; NULL: none */
    size_t turn_len;
    int counts;         /* a done frame: the answer is counted (usage.h) */
    struct usage usage; /* ... with these tokens */
    char usage_day[USAGE_DAY_LEN + 1];
    size_t len;
    char data[];
};

struct task {
    LIST_ENTRY(task) link;      /* the worker's tasks */
    struct worker *w;
    enum task_state state;
    char id[48];
    char *reply;
    char *content;
    size_t content_len;
    enum job_kind kind;
    char *image_key;
    char mime[32];
    char *image_url;
    int attempt;
    long long retry_at;
    long long started_ms;
    long long call_ms;          /* when the model call began */
    struct model_call *call;
    long seq;
    int dirty;                  /* on the worker's dirty list */
    SLIST_ENTRY(task) dirty_link;
    STAILQ_HEAD(, out_frame) out; /* unconfirmed frames, oldest first */
    struct out_frame *unsent;   /* the first not yet sent on this connection */
    int inflight;               /* commands whose callback still has t */
    int dropped;                /* over: freed once inflight is 0 */
    int claimed;                /* it was another worker's */
    char *model;                /* what the client asked for (or the default) */
    int fallback;               /* the fallback endpoint is asked */
    char *conversation;         /* NULL: none */
    long long turn_at;          /* TASK_TURN: when to ask again */
    int turn_asking;            /* TASK_TURN: the question is on its way */
    struct history history;     /* the conversation's earlier turns */
    struct buf answer;          /* the text sent so far (conversations) */
    long end_mark;              /* its last frame is w->ends_sent's end_mark-th (waits) */
    int end_stored;             /* ... and the script stored it: end_result */
    long end_result;
    const char *usage_member;   /* whom it counts for (usage.h); in user or static */
    char *user;                 /* the job's user field (NULL: none) */
    struct usage usage;         /* what the model reported */
};

struct worker {
    const struct config *cfg;
    struct keys keys;
    struct redis_addr addr;
    char consumer[160];
    char base_url[512];
    CURLM *multi;
    int epfd;                   /* curl's sockets (curl_multi_socket_action) */
    long long curl_timer_at;    /* -1: curl wants no timeout call */
    SLIST_HEAD(, task) dirty;   /* tasks with delta text waiting to be published */
    int nwaiting;               /* tasks in TASK_WAITING */
    int nturn;                  /* tasks in TASK_TURN */
    int nturn_conversations;    /* the conversations of those */
    long long next_turn_at;     /* the earliest turn_at of those not being asked */
    struct redis_async intake, ctl;
    struct redis_async cancels;     /* subscribed to P cancels */
    char writer[33];            /* this process, in the answers it writes */
    struct script answer;       /* answer_write_lua, loaded first on each ctl connection */
    int script_loading;         /* its first SCRIPT LOAD is unanswered */
    int closing;                /* callbacks must not touch tasks any more */
    int script_error_reported;
    struct redis_backoff backoff;
    int group_ready, creating_group, reading, claiming;
    long long next_claim, next_heartbeat;
    LIST_HEAD(, task) tasks;
    int ntasks;
    volatile sig_atomic_t stop_requested;
    long long stop_deadline;
    int auth_reported[2];       /* the primary endpoint's rejection logged; the fallback's */
    int redis_lost;             /* say so when it comes back */
    long long wait_paused_until; /* too few replicas: answers end without WAIT until then */
    long ends_sent;             /* last frames sent that wait for replicas (end_mark) */
    int wait_inflight;          /* a WAIT is on its way on ctl (replica_wait.h) ... */
    long wait_covers;           /* ... covering the last frames marked up to this */
    int watching;               /* sentinel://: subscribed to +switch-master on watch */
    struct sentinel_watch sentinels;
    struct redis_async watch;
    struct redis_backoff watch_backoff;
    int no_stream_options[2];   /* the primary [0], the fallback [1] refused it */
    struct metrics_publish metrics;
    struct buf frame;
};

/* ---- Redis connections ------------------------------------------------ */

static void send_frames(struct task *t);
static void release_unstarted_tasks(struct worker *w);
static void turn_over(struct task *t);

static void on_script(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)privdata;
    struct worker *w = ac->data;
    redisReply *reply = r;
    if (!reply || w->closing)
        return;
    w->script_loading = 0;
    if (script_loaded(&w->answer, reply) != 0)
        log_warn("SCRIPT LOAD: %s; answer frames send the script as EVAL",
                 reply->type == REDIS_REPLY_ERROR ? reply->str : "bad reply");
    for (struct task *t = LIST_FIRST(&w->tasks); t; t = LIST_NEXT(t, link))
        send_frames(t); /* what waited for Redis goes out now */
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct worker *w = ac->data;
    if (status != REDIS_OK) {
        log_warn("redis connect failed: %s", ac->errstr);
        return;
    }
    if (w->redis_lost) {
        char peer[300];
        log_info("redis connection back (%s)", redis_peer(&ac->c, peer, sizeof(peer)));
        metric_inc(metric_get(&METRIC_REDIS_RECONNECTS, ""));
    }
    w->redis_lost = 0;
    redis_backoff_reset(&w->backoff);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct worker *w = ac->data;
    if (status != REDIS_OK) {
        log_warn("redis connection lost: %s", ac->errstr);
        w->redis_lost = 1;
    }
    /* hiredis has already run the adapter's cleanup, which cleared ra->ac:
     * tell the connections apart by their adapter. Every callback
     * waiting on this connection has been called (without a reply). */
    if (ac->ev.data == &w->cancels) {
        w->cancels.ac = NULL;
    } else if (ac->ev.data == &w->ctl) {
        w->ctl.ac = NULL;
        w->group_ready = w->creating_group = w->claiming = 0;
        for (struct task *t = LIST_FIRST(&w->tasks); t; t = LIST_NEXT(t, link)) {
            t->unsent = STAILQ_FIRST(&t->out); /* unconfirmed: sent again on the next connection */
            t->end_stored = 0;
        }
        w->wait_inflight = 0;
        release_unstarted_tasks(w);
    } else {
        w->intake.ac = NULL;
        w->reading = 0;
    }
}

static void on_cancel(redisAsyncContext *ac, void *r, void *privdata);

static int connect_one(struct worker *w, struct redis_async *ra)
{
    char err[256];
    long long timeout = w->cfg->redis_timeout_ms;
    if (ra == &w->intake)
        timeout += READ_BLOCK_MS; /* XREADGROUP BLOCK waits that long by design */
    if (ra == &w->ctl && w->cfg->redis_wait_replicas > 0)
        timeout += w->cfg->redis_wait_timeout_ms; /* so may WAIT (on_replicated) */
    redisAsyncContext *ac = redis_async_connect(ra, &w->addr, timeout, err, sizeof(err));
    if (!ac) {
        log_warn("%s", err);
        return -1;
    }
    ac->data = w;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    if (ra == &w->ctl)
        /* first: what follows may use it; without its SHA1 yet, frames wait for it */
        w->script_loading = script_load_async(&w->answer, ac, on_script, NULL) == 0 &&
                            !w->answer.cached;
    if (ra == &w->cancels)
        redisAsyncCommand(ac, on_cancel, NULL, "SUBSCRIBE %s", w->keys.cancels);
    return 0;
}

static void ensure_connected(struct worker *w)
{
    if ((w->ctl.ac && w->intake.ac && w->cancels.ac) ||
        !redis_backoff_due(&w->backoff, clock_ms()))
        return;
    if (!w->cancels.ac)
        connect_one(w, &w->cancels);
    if (!w->ctl.ac)
        connect_one(w, &w->ctl);
    if (!w->intake.ac)
        connect_one(w, &w->intake);
}

/* ---- the Sentinels announcing a failover (common/sentinel_watch.h) ---- */

static void on_watch_connect(const redisAsyncContext *ac, int status)
{
    struct worker *w = ac->data;
    if (status == REDIS_OK)
        redis_backoff_reset(&w->watch_backoff);
    else
        log_warn("Sentinel subscription: %s", ac->errstr);
}

static void on_watch_disconnect(const redisAsyncContext *ac, int status)
{
    struct worker *w = ac->data;
    if (status != REDIS_OK && !w->closing)
        log_warn("Sentinel subscription lost: %s", ac->errstr);
    w->watch.ac = NULL;
}

/* Keeps the subscription; on a +switch-master drops the connections to
 * the old master and reconnects now. */
static void watch_sentinels(struct worker *w)
{
    if (!w->watching)
        return;
    if (!w->watch.ac && redis_backoff_due(&w->watch_backoff, clock_ms())) {
        char err[256];
        redisAsyncContext *ac = sentinel_watch_connect(&w->sentinels, &w->watch, err, sizeof(err));
        if (!ac) {
            log_warn("%s", err);
        } else {
            ac->data = w;
            redisAsyncSetConnectCallback(ac, on_watch_connect);
            redisAsyncSetDisconnectCallback(ac, on_watch_disconnect);
        }
    }
    if (!sentinel_watch_switched(&w->sentinels))
        return;
    struct redis_async *links[3] = {&w->ctl, &w->intake, &w->cancels};
    for (int i = 0; i < 3; i++)
        if (sentinel_watch_stale(&w->sentinels, links[i]->ac))
            redis_async_abort(links[i]);
    redis_backoff_reset(&w->backoff);
}

/* Redis takes commands that need the answer script. */
static int ready(const struct worker *w)
{
    return w->ctl.ac && !w->script_loading;
}

static void acknowledge(struct worker *w, const char *id)
{
    redisAsyncCommand(w->ctl.ac, NULL, NULL, "XACK %s %s %s", w->keys.jobs, KEYS_GROUP, id);
    redisAsyncCommand(w->ctl.ac, NULL, NULL, "XDEL %s %s", w->keys.jobs, id);
}

/* ---- tasks ------------------------------------------------------------ */

static void free_frame(struct out_frame *f)
{
    free(f->turn);
    free(f);
}

static void task_free(struct task *t)
{
    struct worker *w = t->w;
    if (t->dirty)
        SLIST_REMOVE(&w->dirty, t, task, dirty_link);
    if (t->state == TASK_WAITING)
        w->nwaiting--;
    if (t->state == TASK_TURN)
        turn_over(t);
    if (t->call) {
        curl_multi_remove_handle(w->multi, model_call_easy(t->call));
        model_call_free(t->call);
    }
    LIST_REMOVE(t, link);
    w->ntasks--;
    struct out_frame *f;
    while ((f = STAILQ_FIRST(&t->out))) {
        STAILQ_REMOVE_HEAD(&t->out, link);
        free_frame(f);
    }
    free(t->conversation);
    free(t->model);
    free(t->user);
    history_free(&t->history);
    buf_free(&t->answer);
    free(t->reply);
    free(t->content);
    free(t->image_key);
    free(t->image_url);
    free(t);
}

/* The task is over; it goes once no callback can reach it any more. */
static void task_drop(struct task *t)
{
    if (t->call) {
        curl_multi_remove_handle(t->w->multi, model_call_easy(t->call));
        model_call_free(t->call);
        t->call = NULL;
    }
    t->dropped = 1;
    if (!t->inflight)
        task_free(t);
}

/* Tasks that had not called the model yet are cheap to start again: they
 * are left pending for whoever claims them next (their Redis replies were
 * lost with the connection). */
static void release_unstarted_tasks(struct worker *w)
{
    for (struct task *t = LIST_FIRST(&w->tasks), *next; t; t = next) {
        next = LIST_NEXT(t, link);
        if (t->state == TASK_PROBING || t->state == TASK_TURN || t->state == TASK_FETCHING)
            task_free(t);
    }
}

/* Leaves the jobs pending: whoever claims them next answers them. */
static void release_all_tasks(struct worker *w)
{
    if (!LIST_EMPTY(&w->tasks))
        log_warn("releasing %d unfinished job(s); they stay pending for another try",
                 w->ntasks);
    while (!LIST_EMPTY(&w->tasks))
        task_free(LIST_FIRST(&w->tasks));
}

static void on_written(redisAsyncContext *ac, void *r, void *privdata);

/* The start of every callback holding a task: NULL when it must stop here
 * (the worker is closing, the task is over, or the reply was lost with the
 * connection). */
static struct task *task_of_reply(redisAsyncContext *ac, void *privdata, const redisReply *reply)
{
    struct worker *w = ac->data;
    struct task *t = privdata;
    if (w->closing)
        return NULL;
    t->inflight--;
    if (t->dropped) {
        if (!t->inflight)
            task_free(t);
        return NULL;
    }
    return reply ? t : NULL;
}

static void on_end_stored(redisAsyncContext *ac, void *r, void *privdata);
static void on_replicated(redisAsyncContext *ac, void *r, void *privdata);

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

static void send_frames(struct task *t)
{
    struct worker *w = t->w;
    while (t->unsent && !t->dropped && ready(w)) {
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
static int emit_storing(struct task *t, int append, struct buf *turn, int counts)
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
    send_frames(t);
    return 0;
}

static int emit(struct task *t, int append)
{
    return emit_storing(t, append, NULL, 0);
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
    free_frame(f);
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

/* The model name sent to the endpoint asked now. */
static const char *asked_model(const struct task *t)
{
    const struct config *cfg = t->w->cfg;
    return t->fallback && cfg->ai_fallback_model[0] ? cfg->ai_fallback_model : t->model;
}

/* The turn a done answer adds to its conversation: NULL when none. */
static struct buf *completed_turn(struct task *t, struct buf *turn)
{
    if (!t->conversation)
        return NULL;
    if (conversation_turn_json(turn, t->id, t->kind == JOB_IMAGE, t->content, t->content_len,
                               t->answer.data ? t->answer.data : "", t->answer.len,
                               clock_wall_ms()) != 0) {
        log_error("job %s: out of memory storing its turn in conversation %s", t->id,
                  t->conversation);
        buf_free(turn);
        return NULL;
    }
    return turn;
}

/* Ends the answer: done (which stores the conversation's new turn), or an
 * error frame when message is set (nothing stored). */
static void task_finish(struct task *t, const char *message)
{
    struct worker *w = t->w;
    if (t->state == TASK_WAITING)
        w->nwaiting--;
    if (t->state == TASK_TURN)
        turn_over(t);
    t->state = TASK_ENDING;
    struct buf turn = BUF_INIT;
    int rc = message ? frame_error(&w->frame, t->id, t->seq, message)
                     : frame_done_by(&w->frame, t->id, t->seq, asked_model(t), t->fallback,
                                     &t->usage);
    if (!message)
        log_info("job %s: answered by %s at %s", t->id, asked_model(t),
                 t->fallback ? "the fallback endpoint (ai_fallback_base_url)" : "the primary endpoint");
    if (!message && usage_known(&t->usage))
        log_info("job %s: usage: %ld prompt token(s), %ld completion token(s), for %s", t->id,
                 t->usage.prompt_tokens, t->usage.completion_tokens, t->usage_member);
    if (rc != 0 || emit_storing(t, 0, message ? NULL : completed_turn(t, &turn), !message) != 0) {
        log_error("job %s: out of memory ending its answer; left pending", t->id);
        task_drop(t);
    }
    buf_free(&turn);
}

static void on_delta(void *ctx, const char *text, size_t len)
{
    struct task *t = ctx;
    if (t->seq == 0) {
        long long ms = clock_ms() - t->call_ms;
        worker_metrics_first_token((double)ms / 1000);
        log_info("job %s: first token after %lld ms", t->id, ms);
    }
    if (t->conversation && buf_append(&t->answer, text, len) != 0) {
        log_error("job %s: out of memory keeping its answer for conversation %s; not stored",
                  t->id, t->conversation);
        free(t->conversation); /* the turn would be cut: none is stored */
        t->conversation = NULL;
    }
    if (frame_chunk(&t->w->frame, t->id, t->seq, text, len) == 0 && emit(t, 0) == 0) {
        t->seq++;
        worker_metrics_chunk();
    }
}

static void on_ready(void *ctx)
{
    struct task *t = ctx;
    if (!t->dirty) {
        t->dirty = 1;
        SLIST_INSERT_HEAD(&t->w->dirty, t, dirty_link);
    }
}

static void task_call_model(struct task *t);

static void on_image(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply *reply = r;
    struct task *t = task_of_reply(ac, privdata, reply);
    if (!t)
        return;
    if (reply->type != REDIS_REPLY_STRING) {
        log_warn("job %s: image %s is gone", t->id, t->image_key);
        task_finish(t, MSG_IMAGE_GONE);
        return;
    }
    struct buf url = BUF_INIT;
    if (buf_printf(&url, "data:%s;base64,", t->mime) != 0 ||
        base64_encode(&url, (const unsigned char *)reply->str, reply->len) != 0) {
        buf_free(&url);
        task_finish(t, MSG_UNAVAILABLE);
        return;
    }
    t->image_url = url.data;
    task_call_model(t);
}

static void task_fetch_image(struct task *t)
{
    t->state = TASK_FETCHING;
    if (redisAsyncCommand(t->w->ctl.ac, on_image, t, "GET %s", t->image_key) != REDIS_OK) {
        task_free(t);
        return;
    }
    t->inflight++;
}

/* Its turn came (or it is in no conversation). */
static void task_go(struct task *t)
{
    if (t->kind == JOB_IMAGE)
        task_fetch_image(t);
    else
        task_call_model(t);
}

static void ask_turn(struct task *t);

/* Another task of t's conversation waits for its turn too. */
static int conversation_waits(const struct task *t)
{
    for (const struct task *o = LIST_FIRST(&t->w->tasks); o; o = LIST_NEXT(o, link))
        if (o != t && o->state == TASK_TURN && strcmp(o->conversation, t->conversation) == 0)
            return 1;
    return 0;
}

/* The jobs of one conversation all wait for the same earlier answer, so the
 * conversation, not each of its jobs, counts against the jobs a worker lets
 * wait (read_jobs): one conversation's backlog takes one of them, not all,
 * and what waits stays bounded (worker_concurrency conversations, each with
 * at most conversation_max_queued jobs, which enqueue refuses beyond). */
static void turn_enter(struct task *t)
{
    if (!conversation_waits(t))
        t->w->nturn_conversations++;
    t->state = TASK_TURN;
    t->w->nturn++;
}

/* It no longer waits (its turn came, it ended or it is freed). */
static void turn_over(struct task *t)
{
    t->state = TASK_PROBING;
    t->w->nturn--;
    if (!conversation_waits(t))
        t->w->nturn_conversations--;
}

/* When t asks again; ask_due_turns looks no earlier than the first. */
static void ask_turn_at(struct task *t, long long at)
{
    t->turn_at = at;
    if (at < t->w->next_turn_at)
        t->w->next_turn_at = at;
}

/* Its turn came: it goes on (the state task_go sets it to). */
static void leave_turn(struct task *t)
{
    turn_over(t);
    task_go(t);
}

/* The answer to ask_turn: 0 (not yet) or the conversation's turns. */
static void on_turn(redisAsyncContext *ac, void *r, void *privdata)
{
    struct worker *w = ac->data;
    redisReply *reply = r;
    struct task *t = task_of_reply(ac, privdata, reply);
    if (!t)
        return;
    t->turn_asking = 0;
    if (reply->type == REDIS_REPLY_INTEGER) {
        ask_turn_at(t, clock_ms() + TURN_POLL_MS);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) { /* (LOADING, BUSY, OOM...): ask again later */
        log_warn("job %s: conversation %s: %s", t->id, t->conversation, reply->str);
        ask_turn_at(t, clock_ms() + 10 * TURN_POLL_MS);
        return;
    }
    if (history_from_reply(&t->history, reply, w->cfg->conversation_max_turns,
                           w->cfg->conversation_max_bytes) != 0) {
        log_error("job %s: conversation %s: unreadable turns", t->id, t->conversation);
        task_finish(t, MSG_UNAVAILABLE);
        return;
    }
    log_info("job %s: its turn in conversation %s: %zu earlier turn(s) sent%s", t->id,
             t->conversation, t->history.n, t->history.dropped ? ", older ones left out" : "");
    leave_turn(t);
}

static void ask_turn(struct task *t)
{
    struct worker *w = t->w;
    struct conversation_keys ck;
    if (conversation_keys(&w->keys, t->conversation, &ck) != 0) {
        log_warn("job %s: bad conversation id; answered without its history", t->id);
        turn_over(t);
        free(t->conversation);
        t->conversation = NULL;
        task_go(t);
        return;
    }
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%lld", (long long)w->cfg->conversation_ttl * 1000);
    const char *argv[] = {"EVAL", conversation_turn_lua, "4", ck.queue, w->keys.jobs, ck.turns,
                          ck.owner, t->id, ttl};
    if (!w->ctl.ac ||
        redisAsyncCommandArgv(w->ctl.ac, on_turn, t, 9, argv, NULL) != REDIS_OK) {
        ask_turn_at(t, clock_ms() + TURN_POLL_MS);
        return;
    }
    t->turn_asking = 1;
    t->inflight++;
}

static void task_begin(struct task *t)
{
    if (!t->conversation) {
        task_go(t);
        return;
    }
    if (t->w->stop_requested) { /* as release_waiting_turns: pending for another worker */
        task_drop(t);
        return;
    }
    turn_enter(t);
    ask_turn(t);
}

/* Asks again for the tasks waiting for their turn, once the first is due. */
static void ask_due_turns(struct worker *w)
{
    long long now = clock_ms();
    if (!w->nturn || now < w->next_turn_at)
        return;
    w->next_turn_at = LLONG_MAX;
    for (struct task *t = LIST_FIRST(&w->tasks); t; t = LIST_NEXT(t, link)) {
        if (t->state != TASK_TURN || t->dropped || t->turn_asking)
            continue;
        if (t->turn_at <= now)
            ask_turn(t); /* it sets its next turn_at when answered */
        else if (t->turn_at < w->next_turn_at)
            w->next_turn_at = t->turn_at;
    }
}

/* When the worker stops: the jobs waiting for their turn would not get it
 * before the grace period ends (and must not start a model call in it);
 * they stay pending in the stream for another worker. */
static void release_waiting_turns(struct worker *w)
{
    int n = 0;
    for (struct task *t = LIST_FIRST(&w->tasks), *next; t; t = next) {
        next = LIST_NEXT(t, link);
        if (t->state == TASK_TURN && !t->dropped) {
            n++;
            task_drop(t);
        }
    }
    if (n)
        log_info("stopping: %d job(s) waiting for their turn left pending for another worker", n);
}

/* XREVRANGE of a job's answer before the model is called: nothing yet,
 * ended (cancelled, or finished by a worker that died) or begun (by one that
 * died). */
static void on_probe(redisAsyncContext *ac, void *r, void *privdata)
{
    struct worker *w = ac->data;
    redisReply *reply = r;
    struct task *t = task_of_reply(ac, privdata, reply);
    if (!t)
        return;
    long seq;
    const char *frame;
    size_t len;
    struct frame_head h;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0 ||
        answer_entry(reply->element[0], &seq, &frame, &len) != 0 ||
        frame_peek(frame, len, &h) != 0) {
        task_begin(t); /* nothing written yet: answer it from the start */
        return;
    }
    if (frame_is_final(&h)) {
        log_info("job %s: its answer had already ended (%s); acknowledged", t->id, h.type);
        acknowledge(w, t->id);
        if (t->image_key)
            redisAsyncCommand(w->ctl.ac, NULL, NULL, "UNLINK %s", t->image_key);
        task_free(t);
        return;
    }
    /* a model call cannot be resumed mid-answer: end what was sent */
    log_warn("job %s: %s after %ld chunk(s); ending the answer", t->id,
             t->claimed ? "its worker died" : "it was begun already", seq + 1);
    t->state = TASK_ENDING;
    if (frame_error(&w->frame, t->id, seq + 1, MSG_INTERRUPTED) != 0 || emit(t, 1) != 0)
        task_drop(t);
}

static char *dup_n(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static int is_running(const struct worker *w, const char *id)
{
    for (const struct task *t = LIST_FIRST(&w->tasks); t; t = LIST_NEXT(t, link))
        if (strcmp(t->id, id) == 0)
            return 1;
    return 0;
}

static void dead_letter(struct worker *w, const redisReply *entry, const char *reason);

/* claimed: the job was another worker's, which may have begun its answer */
static void task_start(struct worker *w, const redisReply *entry, int claimed)
{
    struct job j;
    if (job_from_entry(&j, entry) != 0) {
        dead_letter(w, entry, "malformed job");
        return;
    }
    if (is_running(w, j.id))
        return; /* already ours */
    struct task *t = calloc(1, sizeof(*t));
    if (!t)
        return; /* stays pending */
    t->w = w;
    t->kind = j.kind;
    t->started_ms = clock_ms();
    if (claimed)
        worker_metrics_claimed();
    else
        worker_metrics_taken();
    if (j.ts > 0 && !claimed)
        worker_metrics_job_wait((double)(clock_wall_ms() - j.ts) / 1000);
    memcpy(t->id, j.id, sizeof(t->id));
    t->reply = strdup(j.reply);
    t->content = dup_n(j.content ? j.content : "", j.content ? j.content_len : 0);
    t->content_len = j.content ? j.content_len : 0;
    STAILQ_INIT(&t->out);
    LIST_INSERT_HEAD(&w->tasks, t, link);
    w->ntasks++;
    if (j.kind == JOB_IMAGE) {
        snprintf(t->mime, sizeof(t->mime), "%s", j.mime);
        t->image_key = strdup(j.image_key);
    }
    if (j.conversation)
        t->conversation = strdup(j.conversation);
    t->model = strdup(j.model ? j.model : models_default(w->cfg));
    t->usage = USAGE_UNKNOWN;
    if (j.user)
        t->user = strdup(j.user);
    t->usage_member = usage_member(t->user);
    if (!t->reply || !t->content || (j.kind == JOB_IMAGE && !t->image_key) || !t->model ||
        (j.conversation && !t->conversation) || (j.user && !t->user)) {
        task_free(t);
        return;
    }
    log_info("job %s: taken by %s%s (%s, %zu byte(s) of text)", t->id, w->consumer,
             claimed ? " from a silent worker" : "", j.kind == JOB_IMAGE ? "image" : "text",
             t->content_len);
    /* every job: it may have been cancelled while it waited, or (claimed)
     * begun by a worker that died */
    t->claimed = claimed;
    char key[160];
    t->state = TASK_PROBING;
    if (keys_answer(&w->keys, t->id, key, sizeof(key)) != 0 ||
        redisAsyncCommand(w->ctl.ac, on_probe, t, "XREVRANGE %s + - COUNT 1", key) != REDIS_OK) {
        task_free(t);
        return;
    }
    t->inflight++;
}

static void task_call_model(struct task *t)
{
    struct worker *w = t->w;
    struct model_request req = {
        .base_url = t->fallback ? w->cfg->ai_fallback_base_url : w->base_url,
        .api_key = t->fallback ? w->cfg->ai_fallback_api_key : w->cfg->ai_api_key,
        .model = asked_model(t),
        .system_prompt = w->cfg->ai_system_prompt,
        .history = t->history.items,
        .history_len = t->history.n,
        .text = t->content,
        .text_len = t->content_len,
        .image_url = t->image_url,
        .connect_timeout = w->cfg->ai_connect_timeout,
        .idle_timeout = w->cfg->ai_timeout,
        .max_event_bytes = (size_t)w->cfg->ai_max_event_bytes,
        .max_answer_bytes = (size_t)w->cfg->ai_max_answer_bytes,
        .max_answer_seconds = w->cfg->ai_max_answer_seconds,
        .include_usage = !w->no_stream_options[t->fallback],
    };
    if (t->state == TASK_WAITING)
        w->nwaiting--;
    t->state = TASK_STREAMING;
    t->call_ms = clock_ms();
    t->call = model_call_new(&req, on_delta, on_ready, t);
    if (!t->call || curl_multi_add_handle(w->multi, model_call_easy(t->call)) != CURLM_OK) {
        log_error("job %s: cannot start the model call", t->id);
        if (t->call)
            model_call_free(t->call);
        t->call = NULL;
        task_finish(t, MSG_UNAVAILABLE);
        return;
    }
}

static long retry_delay_ms(int attempt, long retry_after)
{
    long d = RETRY_BASE_MS << (attempt > 5 ? 5 : attempt);
    if (d > RETRY_MAX_MS)
        d = RETRY_MAX_MS;
    return retry_after > d ? retry_after : d;
}

static void task_model_done(struct task *t, CURLcode code)
{
    struct worker *w = t->w;
    char why[300];
    enum model_outcome r = model_call_finish(t->call, code, why, sizeof(why));
    long tokens = model_call_tokens(t->call), retry_after = model_call_retry_after_ms(t->call);
    t->usage = model_call_usage(t->call);
    if (r != MODEL_OK) {
        long status;
        const char *class = model_call_failure_class(t->call, code, &status);
        worker_metrics_model_error(class, status);
    }
    curl_multi_remove_handle(w->multi, model_call_easy(t->call));
    model_call_free(t->call);
    t->call = NULL;

    switch (r) {
    case MODEL_OK:
        task_finish(t, NULL);
        return;
    case MODEL_CONFIG:
        if (!w->auth_reported[t->fallback]++)
            log_error("the model endpoint %s rejected us (%s): check %s",
                      t->fallback ? w->cfg->ai_fallback_base_url : w->base_url, why,
                      t->fallback ? "ai_fallback_api_key and ai_fallback_base_url"
                                  : "ai_api_key and ai_base_url");
        task_finish(t, MSG_CONFIG);
        return;
    case MODEL_RETRYABLE:
    case MODEL_RATE_LIMITED:
        if (t->attempt < w->cfg->ai_retries && !w->stop_requested) {
            long d = retry_delay_ms(t->attempt, retry_after);
            t->attempt++;
            worker_metrics_retried();
            log_warn("job %s: %s; retry %d/%ld in %ld ms", t->id, why, t->attempt,
                     w->cfg->ai_retries, d);
            t->state = TASK_WAITING;
            w->nwaiting++;
            t->retry_at = clock_ms() + d;
            return;
        }
        if (!t->fallback && w->cfg->ai_fallback_base_url[0] && !w->stop_requested) {
            log_warn("job %s: %s; the primary endpoint failed %d time(s) before the first "
                     "token: asking the fallback %s", t->id, why, t->attempt + 1,
                     w->cfg->ai_fallback_base_url);
            t->fallback = 1;
            t->attempt = 0;
            task_call_model(t);
            return;
        }
        log_warn("job %s: %s; giving up after %d retries", t->id, why, t->attempt);
        task_finish(t, r == MODEL_RATE_LIMITED ? MSG_BUSY : MSG_UNAVAILABLE);
        return;
    case MODEL_BAD_RESPONSE:
    case MODEL_INTERRUPTED:
        log_warn("job %s: %s (after %ld token(s))", t->id, why, tokens);
        task_finish(t, tokens ? MSG_INTERRUPTED : MSG_INVALID);
        return;
    case MODEL_NO_STREAM_OPTIONS:
        log_warn("job %s: %s; the %s endpoint does not take stream_options: asking again "
                 "without it, and from now on (no token usage from it)", t->id, why,
                 t->fallback ? "fallback" : "primary");
        w->no_stream_options[t->fallback] = 1;
        if (w->stop_requested)
            task_finish(t, MSG_UNAVAILABLE);
        else
            task_call_model(t);
        return;
    case MODEL_TOO_BIG: /* the same request would go over again: not retried */
        log_warn("job %s: %s (after %ld token(s)); ended, not retried", t->id, why, tokens);
        task_finish(t, MSG_TOO_LONG);
        return;
    }
}

/* ---- cancels ------------------------------------------------------------ */

/* Someone cancelled answer id: its "cancelled" frame is written already (so
 * nothing this worker writes for it would be taken); stop paying for it. */
static void task_cancel(struct worker *w, const char *id)
{
    for (struct task *t = LIST_FIRST(&w->tasks); t; t = LIST_NEXT(t, link)) {
        if (strcmp(t->id, id) != 0 || t->dropped || t->state == TASK_ENDING)
            continue;
        log_info("job %s: cancelled; %s", t->id,
                 t->call ? "model call stopped" : "the model was not called");
        worker_metrics_answer("cancelled");
        if (t->image_key && w->ctl.ac)
            redisAsyncCommand(w->ctl.ac, NULL, NULL, "UNLINK %s", t->image_key);
        if (t->state == TASK_WAITING) {
            w->nwaiting--;
            t->state = TASK_ENDING; /* no retry; and task_free must not count it again */
        }
        task_drop(t);
        return;
    }
}

/* ["message", channel, id], and the subscription's confirmation */
static void on_cancel(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)privdata;
    struct worker *w = ac->data;
    redisReply *reply = r;
    if (!reply || w->closing || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        strcmp(reply->element[0]->str, "message") != 0 ||
        reply->element[2]->type != REDIS_REPLY_STRING)
        return;
    task_cancel(w, reply->element[2]->str);
}

/* ---- intake, claims, dead letters ------------------------------------ */

static void on_group(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)ac;
    (void)privdata;
    struct worker *w = ac->data;
    redisReply *reply = r;
    w->creating_group = 0;
    if (!reply)
        return;
    if (reply->type == REDIS_REPLY_ERROR && !strstr(reply->str, "BUSYGROUP")) {
        log_error("cannot create consumer group: %s", reply->str);
        return;
    }
    w->group_ready = 1;
}

static void ensure_group(struct worker *w)
{
    if (w->group_ready || w->creating_group || !w->ctl.ac)
        return;
    w->creating_group = 1;
    redisAsyncCommand(w->ctl.ac, on_group, NULL, "XGROUP CREATE %s %s 0 MKSTREAM",
                      w->keys.jobs, KEYS_GROUP);
}

static void start_entries(struct worker *w, const redisReply *entries)
{
    for (size_t i = 0; entries && entries->type == REDIS_REPLY_ARRAY && i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2)
            continue;
        if (e->element[1]->type == REDIS_REPLY_NIL && e->element[0]->type == REDIS_REPLY_STRING)
            acknowledge(w, e->element[0]->str); /* pending, but deleted: nothing to answer */
        else
            task_start(w, e, 0);
    }
}

static void on_read(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)privdata;
    struct worker *w = ac->data;
    redisReply *reply = r;
    w->reading = 0;
    if (!reply || w->stop_requested)
        return; /* entries read now stay pending and are claimed later */
    if (reply->type == REDIS_REPLY_ERROR) {
        if (strstr(reply->str, "NOGROUP"))
            w->group_ready = 0; /* Redis lost it (restart without persistence) */
        else
            log_error("XREADGROUP: %s", reply->str);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || !ready(w))
        return;
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *stream = reply->element[i];
        if (stream->type == REDIS_REPLY_ARRAY && stream->elements == 2)
            start_entries(w, stream->element[1]);
    }
}

/* Model slots: a task waiting for its turn in a conversation takes none. */
static int free_slots(const struct worker *w)
{
    return (int)w->cfg->worker_concurrency - (w->ntasks - w->nturn);
}

static void read_jobs(struct worker *w)
{
    int free = free_slots(w), may_wait = (int)w->cfg->worker_concurrency - w->nturn_conversations;
    if (free > may_wait)
        free = may_wait; /* each job read may have to wait for its turn (turn_enter) */
    if (w->reading || !w->intake.ac || !ready(w) || !w->group_ready || w->stop_requested ||
        free <= 0)
        return;
    if (redisAsyncCommand(w->intake.ac, on_read, NULL,
                          "XREADGROUP GROUP %s %s COUNT %d BLOCK %d STREAMS %s >", KEYS_GROUP,
                          w->consumer, free, READ_BLOCK_MS, w->keys.jobs) == REDIS_OK)
        w->reading = 1;
}

/* The script's verdict on a dead letter's error frame (privdata: the job
 * id, ours to free). Refused (out of memory, a replica, LOADING: then the
 * dead letter's XADD most likely was too), the job stays pending and is
 * dead-lettered again by whoever claims it next: twice rather than never. */
static void on_dead_ended(redisAsyncContext *ac, void *r, void *privdata)
{
    struct worker *w = ac->data;
    redisReply *reply = r;
    char *id = privdata;
    if (reply && !w->closing &&
        (reply->type == REDIS_REPLY_ERROR ||
         (reply->type == REDIS_REPLY_INTEGER && reply->integer < 0 && reply->integer != ANSWER_ENDED)))
        log_error("job %s: Redis refused its error frame: %s; it stays pending", id,
                  reply->type == REDIS_REPLY_ERROR ? reply->str : "not stored");
    free(id);
}

/* Ends a job's answer (after whatever it holds) with an error frame: the
 * script acknowledges the job; without a reply channel it is just acked.
 * Rare, so it goes as EVAL (answer.h): a SCRIPT FLUSH just before cannot
 * refuse it, as it refuses an EVALSHA. */
static void end_answer_elsewhere(struct worker *w, const char *id, const char *reply_to,
                                 const char *message)
{
    struct answer_write a;
    char *id_copy;
    if (!reply_to || frame_error(&w->frame, id, 0, message) != 0 ||
        answer_write_argv(&a, NULL, &w->keys, reply_to, w->frame.data, w->frame.len, 1,
                          w->writer, w->cfg->answer_ttl, w->cfg->answer_max_frames) != 0 ||
        !(id_copy = strdup(id))) {
        acknowledge(w, id);
        return;
    }
    if (redisAsyncCommandArgv(w->ctl.ac, on_dead_ended, id_copy, a.argc, a.argv, a.argvlen) !=
        REDIS_OK)
        free(id_copy); /* the connection is closing: the job stays pending */
}

static void dead_letter(struct worker *w, const redisReply *entry, const char *reason)
{
    if (!ready(w) || entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 ||
        entry->element[0]->type != REDIS_REPLY_STRING)
        return;
    const char *id = entry->element[0]->str;
    const redisReply *f = entry->element[1];
    size_t n = 7 + (f->type == REDIS_REPLY_ARRAY ? f->elements : 0);
    const char **argv = calloc(n, sizeof(*argv));
    size_t *lens = calloc(n, sizeof(*lens));
    if (!argv || !lens) {
        free(argv);
        free(lens);
        return;
    }
    int c = 0;
    const char *fixed[] = {"XADD", w->keys.dead, "*", "job", id, "reason", reason};
    for (; c < 7; c++) {
        argv[c] = fixed[c];
        lens[c] = strlen(fixed[c]);
    }
    const char *reply_to = NULL;
    for (size_t i = 0; f->type == REDIS_REPLY_ARRAY && i < f->elements; i++, c++) {
        argv[c] = f->element[i]->str ? f->element[i]->str : "";
        lens[c] = f->element[i]->str ? f->element[i]->len : 0;
        if (i % 2 == 1 && strcmp(argv[c - 1], "reply") == 0)
            reply_to = argv[c];
    }
    if (f->type == REDIS_REPLY_ARRAY && f->elements % 2)
        c--; /* keep field/value pairs whole */
    redisAsyncCommandArgv(w->ctl.ac, NULL, NULL, c, argv, lens);
    log_warn("job %s: moved to %s: %s", id, w->keys.dead, reason);
    worker_metrics_dead();
    end_answer_elsewhere(w, id, reply_to, MSG_DEAD);
    free(argv);
    free(lens);
}

static void on_claim(redisAsyncContext *ac, void *r, void *privdata)
{
    struct worker *w = ac->data;
    redisReply *reply = r;
    int to_dead = privdata != NULL;
    w->claiming--;
    if (!reply || reply->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *e = reply->element[i];
        if (e->type != REDIS_REPLY_ARRAY)
            continue; /* deleted meanwhile */
        if (to_dead) {
            char reason[64];
            snprintf(reason, sizeof(reason), "delivered %ld times", w->cfg->worker_max_deliveries);
            dead_letter(w, e, reason);
        } else {
            log_info("job %s: claimed from a silent worker", e->element[0]->str);
            task_start(w, e, 1);
        }
    }
}

static void claim(struct worker *w, const char **ids, size_t n, int to_dead, long min_idle_ms)
{
    if (n == 0)
        return;
    const char **argv = calloc(n + 6, sizeof(*argv));
    if (!argv)
        return;
    char idle[24];
    snprintf(idle, sizeof(idle), "%ld", min_idle_ms);
    argv[0] = "XCLAIM";
    argv[1] = w->keys.jobs;
    argv[2] = KEYS_GROUP;
    argv[3] = w->consumer;
    argv[4] = idle;
    memcpy(argv + 5, ids, n * sizeof(*ids));
    if (redisAsyncCommandArgv(w->ctl.ac, on_claim, to_dead ? (void *)1 : NULL, (int)n + 5, argv,
                              NULL) == REDIS_OK)
        w->claiming++;
    free(argv);
}

/* A job of ours (delivered to this consumer) that we do not run, pending
 * this long, was lost to us: a read the worker gave up on (its deadline)
 * was served later, into the closed connection; or it was released when
 * the connection went. Nobody else knows it is free for worker_claim_idle_ms. */
static long own_idle_ms(const struct worker *w)
{
    return w->cfg->redis_timeout_ms + READ_BLOCK_MS;
}

/* XPENDING reply: [[id, consumer, idle, deliveries], ...]; privdata set:
 * our own jobs only */
static void on_pending(redisAsyncContext *ac, void *r, void *privdata)
{
    struct worker *w = ac->data;
    redisReply *reply = r;
    w->claiming--;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || !w->ctl.ac)
        return;
    const char **retry = calloc(reply->elements + 1, sizeof(*retry));
    const char **dead = calloc(reply->elements + 1, sizeof(*dead));
    size_t nr = 0, nd = 0;
    for (size_t i = 0; retry && dead && i < reply->elements; i++) {
        const redisReply *p = reply->element[i];
        if (p->type != REDIS_REPLY_ARRAY || p->elements < 4 || is_running(w, p->element[0]->str))
            continue;
        if (p->element[3]->integer >= w->cfg->worker_max_deliveries)
            dead[nd++] = p->element[0]->str;
        else
            retry[nr++] = p->element[0]->str;
    }
    long min_idle = privdata ? own_idle_ms(w) : w->cfg->worker_claim_idle_ms;
    claim(w, retry, nr, 0, min_idle);
    claim(w, dead, nd, 1, min_idle);
    free(retry);
    free(dead);
}

static void claim_stale_jobs(struct worker *w)
{
    long long now = clock_ms();
    if (now < w->next_claim || w->claiming || !ready(w) || !w->group_ready || w->stop_requested)
        return;
    long period = w->cfg->worker_claim_idle_ms / 2;
    w->next_claim = now + (period < 1000 ? period : 1000);
    int free = free_slots(w);
    if (free <= 0)
        return;
    if (redisAsyncCommand(w->ctl.ac, on_pending, NULL, "XPENDING %s %s IDLE %ld - + %d",
                          w->keys.jobs, KEYS_GROUP, w->cfg->worker_claim_idle_ms, free) == REDIS_OK)
        w->claiming++;
    if (redisAsyncCommand(w->ctl.ac, on_pending, (void *)1, "XPENDING %s %s IDLE %ld - + %d %s",
                          w->keys.jobs, KEYS_GROUP, own_idle_ms(w), free + w->ntasks,
                          w->consumer) == REDIS_OK)
        w->claiming++;
}

/* Running jobs are re-claimed to ourselves now and then (JUSTID: the
 * delivery count stays) so that no other worker thinks they were abandoned. */
static void heartbeat(struct worker *w)
{
    long long now = clock_ms();
    if (now < w->next_heartbeat || !w->ctl.ac || LIST_EMPTY(&w->tasks))
        return;
    w->next_heartbeat = now + w->cfg->worker_claim_idle_ms / 3;
    const char **argv = calloc((size_t)w->ntasks + 7, sizeof(*argv));
    if (!argv)
        return;
    int c = 0;
    argv[c++] = "XCLAIM";
    argv[c++] = w->keys.jobs;
    argv[c++] = KEYS_GROUP;
    argv[c++] = w->consumer;
    argv[c++] = "0";
    for (struct task *t = LIST_FIRST(&w->tasks); t; t = LIST_NEXT(t, link))
        argv[c++] = t->id;
    argv[c++] = "JUSTID";
    redisAsyncCommandArgv(w->ctl.ac, NULL, NULL, c, argv, NULL);
    free(argv);
}

/* ---- the loop --------------------------------------------------------- */

static void start_due_retries(struct worker *w)
{
    if (!w->nwaiting)
        return;
    long long now = clock_ms();
    for (struct task *t = LIST_FIRST(&w->tasks), *next; t; t = next) {
        next = LIST_NEXT(t, link);
        if (t->state == TASK_WAITING && t->retry_at <= now)
            task_call_model(t);
    }
}

static void drain_curl_messages(struct worker *w)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(w->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct model_call *mc = model_call_of(m->easy_handle);
        if (mc)
            task_model_done(model_call_context(mc), m->data.result);
    }
}

/* What arrived in this turn of the loop goes out now, one frame per
 * answer; an answer with a frame still unconfirmed keeps its text until
 * Redis confirms it (frame_confirmed): a Redis that keeps up (a round trip
 * well under a token's interval) sees one frame per read as before, a
 * loaded one fewer, longer frames instead of a growing queue of small ones. */
static void publish_ready(struct worker *w)
{
    while (!SLIST_EMPTY(&w->dirty)) {
        struct task *t = SLIST_FIRST(&w->dirty);
        SLIST_REMOVE_HEAD(&w->dirty, dirty_link);
        t->dirty = 0;
        if (t->call && STAILQ_EMPTY(&t->out))
            model_call_flush(t->call);
    }
}

/* curl says which of its sockets to watch for what... */
static int on_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy;
    (void)socketp;
    struct worker *w = userp;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(w->epfd, EPOLL_CTL_DEL, s, NULL);
        return 0;
    }
    struct epoll_event ev = {.events = (what & CURL_POLL_IN ? EPOLLIN : 0u) |
                                       (what & CURL_POLL_OUT ? EPOLLOUT : 0u),
                             .data.fd = s};
    if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, s, &ev) != 0 &&
        (errno != ENOENT || epoll_ctl(w->epfd, EPOLL_CTL_ADD, s, &ev) != 0)) {
        log_error("epoll_ctl: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* ...and when it wants to be called back regardless. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct worker *w = userp;
    w->curl_timer_at = timeout_ms < 0 ? -1 : clock_ms() + timeout_ms;
    return 0;
}

static int poll_timeout(const struct worker *w)
{
    long long now = clock_ms(), next = now + 100;
    if (w->curl_timer_at >= 0 && w->curl_timer_at < next)
        next = w->curl_timer_at;
    for (const struct task *t = w->nwaiting ? LIST_FIRST(&w->tasks) : NULL; t; t = LIST_NEXT(t, link))
        if (t->state == TASK_WAITING && t->retry_at < next)
            next = t->retry_at;
    return next > now ? (int)(next - now) : 0;
}

static void curl_sockets_ready(struct worker *w)
{
    struct epoll_event evs[256];
    int running, n = epoll_wait(w->epfd, evs, 256, 0);
    for (int i = 0; i < n; i++) {
        int flags = (evs[i].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
                    (evs[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                    (evs[i].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
        curl_multi_socket_action(w->multi, evs[i].data.fd, flags, &running);
    }
}

/* One turn: wait on curl's epoll set and its Redis sockets, then serve
 * whatever is ready. The cost of a turn does not grow with the number of
 * answers streaming, only with the number that have something to say. */
static void publish_metrics(struct worker *w);

static void poll_once(struct worker *w)
{
    struct pollfd fds[5] = {{.fd = w->epfd, .events = POLLIN}};
    struct redis_async *ras[4] = {&w->ctl, &w->intake, &w->cancels, &w->watch}, *polled[5] = {NULL};
    nfds_t n = 1;
    for (int i = 0; i < 4; i++) {
        short ev = redis_async_events(ras[i]);
        if (!ev)
            continue;
        fds[n].fd = redis_async_fd(ras[i]);
        fds[n].events = ev;
        polled[n++] = ras[i];
    }
    if (poll(fds, n, poll_timeout(w)) < 0 && errno != EINTR)
        log_error("poll: %s", strerror(errno));
    for (nfds_t i = 1; i < n; i++)
        if (fds[i].revents && polled[i]->ac && polled[i]->ac->c.fd == fds[i].fd)
            redis_async_handle(polled[i], fds[i].revents & (POLLIN | POLLERR | POLLHUP),
                               fds[i].revents & (POLLOUT | POLLERR));
    for (int i = 0; i < 4; i++)
        if (redis_async_expire(ras[i], clock_ms()))
            log_warn("redis did not answer within %lld ms; reconnecting", ras[i]->timeout_ms);
    if (fds[0].revents)
        curl_sockets_ready(w);
    if (w->curl_timer_at >= 0 && clock_ms() >= w->curl_timer_at) {
        int running;
        w->curl_timer_at = -1;
        curl_multi_socket_action(w->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
    publish_ready(w);
    drain_curl_messages(w);
    publish_metrics(w);
}

/* This process' series to Redis, every metrics_interval_ms (common/metrics.h). */
static void publish_metrics(struct worker *w)
{
    if (!w->ctl.ac || !metrics_due())
        return;
    worker_metrics_in_flight(w->ntasks);
    if (metrics_publish_prepare(&w->metrics, &w->keys) != 0)
        return;
    for (int i = 0; i < w->metrics.ncmds; i++)
        redisAsyncCommandArgv(w->ctl.ac, NULL, NULL, w->metrics.cmd[i].argc,
                              w->metrics.cmd[i].argv, w->metrics.cmd[i].argvlen);
}

/* The last frames and acks may still sit in hiredis' output buffer. */
static void flush_and_disconnect(struct worker *w)
{
    if (w->intake.ac)
        redisAsyncFree(w->intake.ac); /* a blocked XREADGROUP need not finish */
    if (w->cancels.ac)
        redisAsyncFree(w->cancels.ac);
    if (w->watch.ac)
        redisAsyncFree(w->watch.ac);
    if (w->ctl.ac)
        redisAsyncDisconnect(w->ctl.ac);
    long long deadline = clock_ms() + 2000;
    while (w->ctl.ac && clock_ms() < deadline)
        poll_once(w);
}

int worker_run(struct worker *w)
{
    log_info("worker %s: model %s at %s, concurrency %ld", w->consumer, models_default(w->cfg),
             w->base_url, w->cfg->worker_concurrency);
    if (w->cfg->ai_fallback_base_url[0])
        log_info("fallback: %s at %s", w->cfg->ai_fallback_model[0] ? w->cfg->ai_fallback_model
                                                                   : "the model asked for",
                 w->cfg->ai_fallback_base_url);
    for (;;) {
        if (w->stop_requested) {
            if (!w->stop_deadline) {
                release_waiting_turns(w);
                log_info("stopping: finishing %d running answer(s)", w->ntasks);
                w->stop_deadline = clock_ms() + STOP_GRACE_MS;
            }
            if (LIST_EMPTY(&w->tasks) || clock_ms() >= w->stop_deadline)
                break;
        }
        ensure_connected(w);
        watch_sentinels(w);
        ensure_group(w);
        read_jobs(w);
        claim_stale_jobs(w);
        heartbeat(w);
        start_due_retries(w);
        ask_due_turns(w);
        poll_once(w);
    }
    w->closing = 1;
    release_all_tasks(w);
    flush_and_disconnect(w);
    return 0;
}

void worker_stop(struct worker *w)
{
    w->stop_requested = 1;
}

struct worker *worker_new(const struct config *cfg)
{
    struct worker *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->cfg = cfg;
    char err[256];
    if (redis_addr_parse(&w->addr, cfg->redis_url, err, sizeof(err)) != 0 ||
        (keys_init(&w->keys, cfg->redis_prefix) != 0 &&
         snprintf(err, sizeof(err), "redis_prefix is too long") > 0)) {
        log_error("%s", err);
        free(w);
        return NULL;
    }
    w->watching = sentinel_watch_init(&w->sentinels, &w->addr);
    script_init(&w->answer, answer_write_lua);
    program_instance_name(NULL, w->consumer, sizeof(w->consumer));
    worker_metrics_init(w->consumer, cfg->metrics_interval_ms);
    if (job_new_token(w->writer) != 0) {
        log_error("cannot draw a random writer id");
        free(w);
        return NULL;
    }
    config_ai_base_url(cfg, w->base_url, sizeof(w->base_url));
    w->curl_timer_at = -1;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->multi = curl_multi_init();
    if (w->epfd < 0 || !w->multi ||
        curl_multi_setopt(w->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket) != CURLM_OK ||
        curl_multi_setopt(w->multi, CURLMOPT_SOCKETDATA, w) != CURLM_OK ||
        curl_multi_setopt(w->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK ||
        curl_multi_setopt(w->multi, CURLMOPT_TIMERDATA, w) != CURLM_OK) {
        log_error("cannot set up the event loop");
        if (w->multi)
            curl_multi_cleanup(w->multi);
        if (w->epfd >= 0)
            close(w->epfd);
        free(w);
        return NULL;
    }
    return w;
}

void worker_free(struct worker *w)
{
    if (!w)
        return;
    w->closing = 1;
    release_all_tasks(w);
    if (w->ctl.ac)
        redisAsyncFree(w->ctl.ac);
    if (w->intake.ac)
        redisAsyncFree(w->intake.ac);
    if (w->cancels.ac)
        redisAsyncFree(w->cancels.ac);
    if (w->watch.ac)
        redisAsyncFree(w->watch.ac);
    curl_multi_cleanup(w->multi);
    close(w->epfd);
    buf_free(&w->frame);
    metrics_publish_free(&w->metrics);
    free(w);
}
