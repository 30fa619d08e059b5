/* due.h -- the stand-in's token timers: thousands of them, each re-armed
 * every few milliseconds with one of a few delays. lws_sul keeps one sorted
 * list, so arming costs a walk over every timer; here the timers of one
 * delay fall due in the order they were armed, so each delay keeps a FIFO
 * and arming and cancelling are O(1). One lws_sul, for the earliest of all,
 * wakes the loop and runs every timer that is due. */
#ifndef AIMSG_STANDIN_DUE_H
#define AIMSG_STANDIN_DUE_H

#include <libwebsockets.h>
#include <sys/queue.h>

struct due_queue;

struct due_timer {
    TAILQ_ENTRY(due_timer) link;
    struct due_queue *q;        /* NULL when not armed */
    lws_usec_t at;
    void (*cb)(struct due_timer *t);
};

/* After the context is made: the wake-up runs in it. */
void due_start(struct lws_context *ctx);

/* Calls cb(t) in ms milliseconds (re-arms t if armed). -1: out of memory.
 * From lws's callbacks only (so that lws arms its timer after them). */
int due_arm(struct due_timer *t, long ms, void (*cb)(struct due_timer *t));
void due_cancel(struct due_timer *t);

/* Before the context is destroyed: the wake-up is cancelled. After it
 * (its connections closed, so no timer is armed): the queues freed. */
void due_stop(void);
void due_free_all(void);

#endif
