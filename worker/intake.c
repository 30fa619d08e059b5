/* intake.c -- jobs into the worker: read from the consumer group as model
 * slots free up (worker_concurrency), claimed from workers that went
 * silent (worker_claim_idle_ms), claimed back when a read was lost, kept
 * ours by a heartbeat, and set aside in the dead-letter stream when
 * malformed or delivered worker_max_deliveries times. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state.h"
#include "answer.h"
#include "clock.h"
#include "log.h"
#include "messages.h"
#include "worker_metrics.h"

static void on_group(redisAsyncContext *ac, void *r, void *privdata)
{
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

void ensure_group(struct worker *w)
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
    if (reply->type != REDIS_REPLY_ARRAY || !ctl_ready(w))
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

void read_jobs(struct worker *w)
{
    int free = free_slots(w), may_wait = (int)w->cfg->worker_concurrency - w->nturn_conversations;
    if (free > may_wait)
        free = may_wait; /* each job read may have to wait for its turn (turn_enter) */
    if (w->reading || !w->intake.ac || !ctl_ready(w) || !w->group_ready || w->stop_requested ||
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
    if (!reply_to || !reply_to[0] || frame_error(&w->frame, id, 0, message) != 0 ||
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

void dead_letter(struct worker *w, const redisReply *entry, const char *reason)
{
    if (!ctl_ready(w) || entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 ||
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
        if (p->type != REDIS_REPLY_ARRAY || p->elements < 4 || worker_runs(w, p->element[0]->str))
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

void claim_stale_jobs(struct worker *w)
{
    long long now = clock_ms();
    if (now < w->next_claim || w->claiming || !ctl_ready(w) || !w->group_ready || w->stop_requested)
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
void heartbeat(struct worker *w)
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
