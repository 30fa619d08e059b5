/* due.c -- FIFO timer queues per delay on top of lws_sul. See due.h. */
#include "due.h"

#include <stdlib.h>

struct due_queue {
    long ms;
    struct lws_context *ctx;
    lws_sorted_usec_list_t sul; /* for the head */
    struct due_timer *head, *tail;
    struct due_queue *next;
};

static struct due_queue *queues;

static void queue_schedule(struct due_queue *q)
{
    lws_usec_t wait = q->head->at - lws_now_usecs();
    lws_sul_schedule(q->ctx, 0, &q->sul, q->sul.cb, wait > 0 ? wait : 0);
}

static void queue_fire(lws_sorted_usec_list_t *sul)
{
    struct due_queue *q = lws_container_of(sul, struct due_queue, sul);
    lws_usec_t now = lws_now_usecs();
    /* a timer re-armed by its callback goes to the tail with a later time */
    while (q->head && q->head->at <= now) {
        struct due_timer *t = q->head;
        due_cancel(t);
        t->cb(t);
    }
    if (q->head)
        queue_schedule(q);
}

static struct due_queue *queue_for(struct lws_context *ctx, long ms)
{
    for (struct due_queue *q = queues; q; q = q->next)
        if (q->ms == ms && q->ctx == ctx)
            return q;
    struct due_queue *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    q->ms = ms;
    q->ctx = ctx;
    q->sul.cb = queue_fire;
    q->next = queues;
    queues = q;
    return q;
}

int due_arm(struct lws_context *ctx, struct due_timer *t, long ms,
            void (*cb)(struct due_timer *t))
{
    due_cancel(t);
    struct due_queue *q = queue_for(ctx, ms);
    if (!q)
        return -1;
    t->cb = cb;
    t->q = q;
    t->at = lws_now_usecs() + (lws_usec_t)ms * LWS_US_PER_MS;
    t->next = NULL;
    t->prev = q->tail;
    if (q->tail)
        q->tail->next = t;
    else
        q->head = t;
    q->tail = t;
    if (q->head == t)
        queue_schedule(q);
    return 0;
}

void due_cancel(struct due_timer *t)
{
    struct due_queue *q = t->q;
    if (!q)
        return;
    if (t->prev)
        t->prev->next = t->next;
    else
        q->head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    else
        q->tail = t->prev;
    t->prev = t->next = NULL;
    t->q = NULL;
    /* a cancelled head leaves the sul armed: it fires, finds the new head
     * not yet due, and waits for it */
}

void due_stop(void)
{
    for (struct due_queue *q = queues; q; q = q->next)
        lws_sul_cancel(&q->sul);
}

void due_free_all(void)
{
    while (queues) {
        struct due_queue *q = queues;
        queues = q->next;
        free(q);
    }
}
