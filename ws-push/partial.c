/* partial.c -- one budget for the half-received messages of all clients.
 *
 * A client may send a message in as many fragments as it likes and take its
 * time; each may be as large as an image (max_client_message, ~14 MB by
 * default). Without a bound on the sum, a few hundred clients that never
 * finish their messages hold gigabytes. The memory counted is each buffer's
 * capacity while it holds part of a message; when the sum goes over
 * ws_partial_budget_bytes, the connections holding the most are closed with
 * 1009 (their buffer freed at once) until it is under: one large sender is
 * closed rather than many small ones. */
#include "conn.h"

#include "log.h"

static void count(struct conn_table *t, struct conn *c, size_t now)
{
    t->partial_bytes = t->partial_bytes - c->rx_counted + now;
    c->rx_counted = now;
}

void partial_release(struct conn_table *t, struct conn *c)
{
    count(t, c, 0);
    buf_free(&c->rx);
}

static struct conn *largest(struct conn_table *t)
{
    struct conn *big = NULL;
    for (struct conn *c = LIST_FIRST(&t->all); c; c = LIST_NEXT(c, link))
        if (!c->closing && c->rx_counted && (!big || c->rx_counted > big->rx_counted))
            big = c;
    return big;
}

static void close_over_budget(struct conn_table *t, struct conn *c)
{
    static const char why[] = "message too big: the server holds too much of unfinished messages";
    log_warn("client %llu closed: %zu bytes of an unfinished message, all together %zu over "
             "ws_partial_budget_bytes %zu",
             (unsigned long long)c->id, c->rx_counted, t->partial_bytes, t->partial_budget);
    partial_release(t, c);
    c->rx_discard = 1;
    conn_close_with(c, CONN_OVER_BUDGET, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, why);
}

int partial_account(struct conn_table *t, struct conn *c)
{
    count(t, c, c->rx.len ? c->rx.cap : 0);
    struct conn *big;
    while (t->partial_bytes > t->partial_budget && (big = largest(t)))
        close_over_budget(t, big);
    return c->closing == CONN_OVER_BUDGET ? -1 : 0;
}
