/* task.c -- a job's life in this worker, from taken to over. Every job is
 * first looked up in its answer's history (on_probe): it may have been
 * cancelled while it waited, or begun by a worker that died; an answer that
 * ended is only acknowledged, one cut short is ended with an error. A task
 * is freed once no Redis callback holds it any more (task_drop). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state.h"
#include "answer.h"
#include "base64.h"
#include "clock.h"
#include "conversation.h"
#include "log.h"
#include "messages.h"
#include "models.h"
#include "worker_metrics.h"

static void task_free(struct task *t);

static char *dup_n(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

int worker_runs(const struct worker *w, const char *id)
{
    for (const struct task *t = LIST_FIRST(&w->tasks); t; t = LIST_NEXT(t, link))
        if (strcmp(t->id, id) == 0)
            return 1;
    return 0;
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
    if (frame_error(&w->frame, t->id, seq + 1, MSG_INTERRUPTED) != 0 || task_emit(t, 1) != 0)
        task_drop(t);
}

/* claimed: the job was another worker's, which may have begun its answer */
void task_start(struct worker *w, const redisReply *entry, int claimed)
{
    struct job j;
    if (job_from_entry(&j, entry) != 0) {
        dead_letter(w, entry, "malformed job");
        return;
    }
    if (worker_runs(w, j.id))
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
void task_go(struct task *t)
{
    if (t->kind == JOB_IMAGE)
        task_fetch_image(t);
    else
        task_call_model(t);
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
void task_finish(struct task *t, const char *message)
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
    if (rc != 0 || task_emit_storing(t, 0, message ? NULL : completed_turn(t, &turn), !message) != 0) {
        log_error("job %s: out of memory ending its answer; left pending", t->id);
        task_drop(t);
    }
    buf_free(&turn);
}

/* Someone cancelled answer id: its "cancelled" frame is written already (so
 * nothing this worker writes for it would be taken); stop paying for it. */
void task_cancel(struct worker *w, const char *id)
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

/* The start of every callback holding a task: NULL when it must stop here
 * (the worker is closing, the task is over, or the reply was lost with the
 * connection). */
struct task *task_of_reply(redisAsyncContext *ac, void *privdata, const redisReply *reply)
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

/* The task is over; it goes once no callback can reach it any more. */
void task_drop(struct task *t)
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
        out_frame_free(f);
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

/* Tasks that had not called the model yet are cheap to start again: they
 * are left pending for whoever claims them next (their Redis replies were
 * lost with the connection). */
void release_unstarted_tasks(struct worker *w)
{
    for (struct task *t = LIST_FIRST(&w->tasks), *next; t; t = next) {
        next = LIST_NEXT(t, link);
        if (t->state == TASK_PROBING || t->state == TASK_TURN || t->state == TASK_FETCHING)
            task_free(t);
    }
}

/* Leaves the jobs pending: whoever claims them next answers them. */
void release_all_tasks(struct worker *w)
{
    if (!LIST_EMPTY(&w->tasks))
        log_warn("releasing %d unfinished job(s); they stay pending for another try",
                 w->ntasks);
    while (!LIST_EMPTY(&w->tasks))
        task_free(LIST_FIRST(&w->tasks));
}
