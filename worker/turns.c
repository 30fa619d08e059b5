/* turns.c -- a job in a conversation waits for its turn before anything
 * else: until no earlier job of the conversation is left in the jobs stream
 * (whichever worker has it), checked every TURN_POLL_MS. It then gets the
 * conversation's turns in the same step, sends them to the model before
 * the question, and its done frame stores the new turn (question and the
 * whole answer) in the script that writes it (common/conversation.h). A
 * waiting job takes no model slot (worker_concurrency); at most
 * worker_concurrency conversations wait at once per worker. */
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state.h"
#include "clock.h"
#include "conversation.h"
#include "log.h"
#include "messages.h"

#define TURN_POLL_MS 100

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
void turn_over(struct task *t)
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

void task_begin(struct task *t)
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
void ask_due_turns(struct worker *w)
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
void release_waiting_turns(struct worker *w)
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
