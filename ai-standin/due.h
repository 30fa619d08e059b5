/* due.h -- the stand-in's token timers: thousands of them, each re-armed
 * every few milliseconds with one of a few delays. lws_sul keeps one sorted
 * list, so arming costs a walk over every timer; here the timers of one
 * delay fall due in the order they were armed, so each delay keeps a FIFO
 * and arming and cancelling are O(1).
 *
 * The timers are run by the service loop itself (due_service before each
 * lws_service), not from an lws_sul callback: lws computes its poll timeout
 * from the time it read before running its ripe suls, so the thousands of
 * writes a sul callback makes would lengthen every delay by their own
 * duration (measured: 2,000 streams got a token every ~200 ms, not 50). */
#ifndef AIMSG_STANDIN_DUE_H
#define AIMSG_STANDIN_DUE_H

#include <libwebsockets.h>

struct due_queue;

struct due_timer {
    struct due_timer *prev, *next;
    struct due_queue *q;        /* NULL when not armed */
    lws_usec_t at;
    void (*cb)(struct due_timer *t);
};

/* Calls cb(t) in ms milliseconds (re-arms t if armed). -1: out of memory. */
int due_arm(struct due_timer *t, long ms, void (*cb)(struct due_timer *t));
void due_cancel(struct due_timer *t);

/* Runs the timers that are due, then arms one lws_sul for the next, so
 * that lws's poll wakes up in time. Call before each lws_service. */
void due_service(struct lws_context *ctx);

/* Before the context is destroyed: the wake-up sul is cancelled. After it
 * (its connections closed, so no timer is armed): the queues freed. */
void due_stop(void);
void due_free_all(void);

#endif
