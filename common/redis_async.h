/* redis_async.h -- the one hiredis event adapter: a non-blocking connection
 * driven by whatever loop the program runs (poll, curl_multi_poll, lws), with
 * a deadline on the connect and on every command.
 *
 * The loop asks redis_async_events()/redis_async_fd() what to wait for and
 * reports what happened with redis_async_handle(); a loop that waits on the
 * socket by itself (lws) sets `wake`, called whenever hiredis has something
 * to write. Every so often the loop calls redis_async_expire(): a connect or
 * a command unanswered for timeout_ms (only a reply, or a long write moving
 * on, resets the clock; sending more commands does not) shuts the socket
 * down, so hiredis fails it like a lost connection (callbacks get NULL,
 * the disconnect callback an error) and the program's reconnect takes
 * over. hiredis 0.14 has no timers of its own (no scheduleTimer), hence
 * this.
 *
 * A connection that finds itself talking to a replica ends the same way,
 * as lost, so the reconnect asks the Sentinels again (sentinel:// in
 * redis_conn.h): an error reply -READONLY to any command, or, behind
 * Sentinels, a ROLE (queued after AUTH and SELECT) that is not master. */
#ifndef AIMSG_REDIS_ASYNC_H
#define AIMSG_REDIS_ASYNC_H

#include <stddef.h>
#include <hiredis/async.h>

#include "redis_conn.h"

struct redis_async {
    redisAsyncContext *ac;      /* NULL while disconnected */
    int want_read, want_write;
    void (*wake)(void *arg);    /* optional: hiredis wants to write */
    void *wake_arg;
    long long timeout_ms;
    long long waiting_since;    /* monotonic ms; 0: nothing awaited */
    int timed_out;              /* the last connection ended by a deadline */
    int not_master;             /* a reply said so: end the connection */
    const struct redis_addr *where; /* what was asked for (for the log) */
};

/* Opens a connection (AUTH and SELECT queued first) and attaches it. The
 * caller sets ac->data and the connect/disconnect callbacks. NULL and err
 * filled on failure. */
redisAsyncContext *redis_async_connect(struct redis_async *ra, const struct redis_addr *a,
                                       long long timeout_ms, char *err, size_t errlen);

short redis_async_events(const struct redis_async *ra);  /* POLLIN/POLLOUT, 0 if none */
int redis_async_fd(const struct redis_async *ra);        /* -1 when disconnected */
/* May free the context (ra->ac is NULL after). */
void redis_async_handle(struct redis_async *ra, int readable, int writable);
/* Ends the connection if its connect or a command is overdue; 1 if it did. */
int redis_async_expire(struct redis_async *ra, long long now_ms);
/* Ends it now, as a lost connection (e.g. a subscriber that went silent). */
void redis_async_abort(struct redis_async *ra);

/* Reconnect pacing: 100 ms after a failure, doubling up to 5 s. */
struct redis_backoff {
    long long next_ms;
    int delay_ms;
};
/* 1 when an attempt may be made now; then the next one waits longer. */
int redis_backoff_due(struct redis_backoff *b, long long now_ms);
void redis_backoff_reset(struct redis_backoff *b);  /* after a success */

#endif
