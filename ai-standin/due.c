/* due.c -- FIFO timer queues per delay, woken by one lws_sul. See due.h. */
#include "due.h"

#include <stdlib.h>

static void on_wake(lws_sorted_usec_list_t *sul);

struct due_queue {
    long ms;
    TAILQ_HEAD(, due_timer) timers; /* in the order armed: the order due */
    SLIST_ENTRY(due_queue) link;
};

static SLIST_HEAD(, due_queue) queues;

/* The timers of q that are due at now, in order. A timer re-armed by its
 * callback goes to the tail with a later time, so this ends. */
static void queue_run(struct due_queue *q, lws_usec_t now)
{
    struct due_timer *t;
    while ((t = TAILQ_FIRST(&q->timers)) && t->at <= now) {
        due_cancel(t);
        t->cb(t);
    }
}

static struct lws_context *context;
static lws_sorted_usec_list_t wake;
static lws_usec_t wake_at;          /* when wake is due; 0: not armed */

/* In whole milliseconds, rounded up: lws's timer on libuv counts
 * milliseconds and would otherwise fire early and find nothing due. */
static void wake_at_or_before(lws_usec_t at)
{
    if (wake_at && wake_at <= at)
        return;
    lws_usec_t wait = at - lws_now_usecs();
    wait = wait > 0 ? (wait + LWS_US_PER_MS - 1) / LWS_US_PER_MS * LWS_US_PER_MS : 0;
    wake_at = at;
    lws_sul_schedule(context, 0, &wake, on_wake, wait);
}

static void on_wake(lws_sorted_usec_list_t *sul)
{
    (void)sul;
    lws_usec_t now = lws_now_usecs(), next = 0;
    wake_at = 0;
    struct due_queue *q;
    SLIST_FOREACH(q, &queues, link) {
        queue_run(q, now);
        struct due_timer *first = TAILQ_FIRST(&q->timers);
        if (first && (!next || first->at < next))
            next = first->at;
    }
    if (next)
        wake_at_or_before(next);
}

void due_start(struct lws_context *ctx)
{
    context = ctx;
}

static struct due_queue *queue_for(long ms)
{
    struct due_queue *q;
    SLIST_FOREACH(q, &queues, link)
        if (q->ms == ms)
            return q;
    if (!(q = calloc(1, sizeof(*q))))
        return NULL;
    q->ms = ms;
    TAILQ_INIT(&q->timers);
    SLIST_INSERT_HEAD(&queues, q, link);
    return q;
}

int due_arm(struct due_timer *t, long ms, void (*cb)(struct due_timer *t))
{
    due_cancel(t);
    struct due_queue *q = queue_for(ms);
    if (!q)
        return -1;
    t->cb = cb;
    t->q = q;
    t->at = lws_now_usecs() + (lws_usec_t)ms * LWS_US_PER_MS;
    TAILQ_INSERT_TAIL(&q->timers, t, link);
    wake_at_or_before(t->at);
    return 0;
}

void due_cancel(struct due_timer *t)
{
    struct due_queue *q = t->q;
    if (!q)
        return;
    TAILQ_REMOVE(&q->timers, t, link);
    t->q = NULL;
}

void due_stop(void)
{
    lws_sul_cancel(&wake);
    wake_at = 0;
}

void due_free_all(void)
{
    struct due_queue *q;
    while ((q = SLIST_FIRST(&queues))) {
        SLIST_REMOVE_HEAD(&queues, link);
        free(q);
    }
}
