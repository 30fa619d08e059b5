/* keepalive.c -- WebSocket pings and the idle timeout, from ws-push's tick.
 *
 * lws 4.1 can ping by itself (its retry policy), but then every connection
 * has its own timer in one sorted list, and every ping and every pong is a
 * turn of the loop of its own, which poll()s every descriptor of the
 * process: with 15k idle connections and pings every 30 s that cost ws-push
 * about 0.25 core (0.14 from here), and 100k connections over 8 processes
 * did not fit on 2 cores (bench (10) in the README). Here one walk per tick finds the connections that are due, and
 * their pings go out together in the next turn (conn_write_queued).
 *
 * A connection is heard of when anything comes from it (a frame, a pong).
 * Quiet for ws_ping_interval: it is pinged (again each interval); quiet for
 * ws_idle_timeout: it is dropped, without a close frame (a client that
 * answers no ping reads none). */
#include "wspush.h"

#include "clock.h"
#include "log.h"

void keepalive_heard(struct conn *c)
{
    c->heard_ms = clock_ms();
}

void keepalive_tick(struct wspush *wp)
{
    long long now = clock_ms(), ping_ms = wp->cfg->ws_ping_interval * 1000LL,
              idle_ms = wp->cfg->ws_idle_timeout * 1000LL;
    for (struct conn *c = LIST_FIRST(&wp->conns.all); c; c = LIST_NEXT(c, link)) {
        long long quiet = now - c->heard_ms;
        if (c->closing)
            continue;
        if (quiet >= idle_ms) {
            log_debug("client %llu closed: silent for %lld ms", (unsigned long long)c->id, quiet);
            c->closing = CONN_IDLE;
            lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        } else if (quiet >= ping_ms && now - c->pinged_ms >= ping_ms) {
            c->pinged_ms = now;
            c->ping_due = 1;
            lws_callback_on_writable(c->wsi);
        }
    }
}
