/* conn.c -- see conn.h. */
#include "conn.h"

#include <stdlib.h>
#include <string.h>

#include "frame.h"

#define INITIAL_QUEUE 4
#define WRITES_PER_CALLBACK 32
#define BATCH_BYTES 65536

struct msg *msg_new(const void *payload, size_t len)
{
    struct msg *m = malloc(sizeof(*m) + LWS_PRE + len);
    if (!m)
        return NULL;
    m->refs = 1;
    m->len = len;
    memcpy(m->data + LWS_PRE, payload, len);
    return m;
}

void msg_unref(struct msg *m)
{
    if (m && --m->refs == 0)
        free(m);
}

static void queue_pop(struct conn *c)
{
    msg_unref(c->queue[c->qhead]);
    c->qhead = (c->qhead + 1) % c->qcap;
    c->qlen--;
}

int conn_table_init(struct conn_table *t, unsigned queue_limit)
{
    memset(t, 0, sizeof(*t));
    t->nbuckets = 1024;
    t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
    t->next_id = 1;
    t->next_member = 1;
    t->queue_limit = queue_limit;
    return t->buckets ? 0 : -1;
}

void conn_table_free(struct conn_table *t)
{
    free(t->buckets);
    t->buckets = NULL;
}

static size_t bucket(const struct conn_table *t, uint64_t id)
{
    return (size_t)(id * 0x9E3779B97F4A7C15ull >> 20) & (t->nbuckets - 1);
}

static void grow(struct conn_table *t)
{
    size_t n = t->nbuckets * 2;
    struct conn **b = calloc(n, sizeof(*b));
    if (!b)
        return; /* chains just get longer */
    struct conn **old = t->buckets;
    size_t oldn = t->nbuckets;
    t->buckets = b;
    t->nbuckets = n;
    for (size_t i = 0; i < oldn; i++) {
        for (struct conn *c = old[i], *next; c; c = next) {
            next = c->hnext;
            size_t h = bucket(t, c->id);
            c->hnext = b[h];
            b[h] = c;
        }
    }
    free(old);
}

int conn_add(struct conn_table *t, struct conn *c, struct lws *wsi)
{
    struct conn_who who = c->who;
    memset(c, 0, sizeof(*c));
    c->who = who;
    c->id = t->next_id++;
    c->wsi = wsi;
    if (t->count >= t->nbuckets)
        grow(t);
    size_t h = bucket(t, c->id);
    c->hnext = t->buckets[h];
    t->buckets[h] = c;
    LIST_INSERT_HEAD(&t->all, c, link);
    t->count++;
    t->opened++;
    return 0;
}

void conn_remove(struct conn_table *t, struct conn *c)
{
    if (!c->id)
        return; /* never added */
    struct conn **pp = &t->buckets[bucket(t, c->id)];
    while (*pp && *pp != c)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = c->hnext;
    LIST_REMOVE(c, link);
    t->count--;
    t->closed[c->closing]++;
    while (c->qlen)
        queue_pop(c);
    free(c->queue);
    partial_release(t, c);
    c->id = 0;
}

struct conn *conn_find(const struct conn_table *t, uint64_t id)
{
    for (struct conn *c = t->buckets[bucket(t, id)]; c; c = c->hnext)
        if (c->id == id)
            return c;
    return NULL;
}

static int queue_grow(struct conn *c, unsigned limit)
{
    unsigned cap = c->qcap ? c->qcap * 2 : INITIAL_QUEUE;
    if (cap > limit)
        cap = limit;
    struct msg **q = malloc(cap * sizeof(*q));
    if (!q)
        return -1;
    for (unsigned i = 0; i < c->qlen; i++)
        q[i] = c->queue[(c->qhead + i) % c->qcap];
    free(c->queue);
    c->queue = q;
    c->qcap = cap;
    c->qhead = 0;
    return 0;
}

int conn_send(struct conn_table *t, struct conn *c, struct msg *m)
{
    if (c->closing)
        return -1; /* (a refusal queues its error frame before it closes) */
    if (c->qlen == c->qcap && (c->qcap >= t->queue_limit || queue_grow(c, t->queue_limit) != 0)) {
        /* Close now: a client that reads nothing never makes the socket
         * writable again, so waiting for that would keep it forever. */
        static const char why[] = "too slow: send queue overflow";
        c->closing = CONN_TOO_SLOW;
        t->frames_dropped += c->qlen + 1;
        lws_close_reason(c->wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, (unsigned char *)why,
                         sizeof(why) - 1);
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
        return -1;
    }
    c->queue[(c->qhead + c->qlen) % c->qcap] = m;
    c->qlen++;
    m->refs++;
    t->frames_sent++;
    if (c->qlen == 1)
        lws_callback_on_writable(c->wsi);
    return 0;
}

int conn_send_copy(struct conn_table *t, struct conn *c, const void *data, size_t len)
{
    struct msg *m = msg_new(data, len);
    if (!m)
        return -1;
    int rc = conn_send(t, c, m);
    msg_unref(m);
    return rc;
}

void conn_reject(struct conn_table *t, struct conn *c, const char *message)
{
    struct buf b = BUF_INIT;
    if (frame_reject(&b, message) == 0)
        conn_send_copy(t, c, b.data, b.len);
    buf_free(&b);
}

void conn_close_with(struct conn *c, enum conn_close why, int code, const char *reason)
{
    if (c->closing)
        return;
    c->closing = why;
    lws_close_reason(c->wsi, (enum lws_close_status)code, (unsigned char *)reason,
                     strlen(reason));
    lws_callback_on_writable(c->wsi);
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, 5);
}

void conn_close_after_queue(struct conn *c, enum conn_close why, int code, const char *reason)
{
    if (c->closing)
        return;
    c->closing = why;
    c->close_code = code;
    c->close_reason = reason;
    lws_callback_on_writable(c->wsi);
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, 5);
}

void conn_admit(struct conn_table *t, struct conn *c)
{
    c->who.authed = 1;
    c->member_no = t->next_member++;
}

void conn_broadcast(struct conn_table *t, struct msg *m)
{
    for (struct conn *c = LIST_FIRST(&t->all); c; c = LIST_NEXT(c, link))
        if (c->who.authed)
            conn_send(t, c, m);
}

/* RFC 6455 header of an unmasked final text frame of len bytes. */
static size_t frame_header(unsigned char *h, size_t len)
{
    h[0] = 0x81;
    if (len < 126) {
        h[1] = (unsigned char)len;
        return 2;
    }
    if (len < 65536) {
        h[1] = 126;
        h[2] = (unsigned char)(len >> 8);
        h[3] = (unsigned char)len;
        return 4;
    }
    h[1] = 127;
    for (int i = 0; i < 8; i++)
        h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    return 10;
}

/* Several small queued frames go out in one write (one syscall instead of
 * one each): framed here, written raw. A lone or large frame takes the
 * ordinary path. Returns the bytes written, or -1. */
static int write_batch(struct conn *c)
{
    static unsigned char batch[LWS_PRE + BATCH_BYTES];
    unsigned char *p = batch + LWS_PRE;
    size_t len = 0;
    while (c->qlen) {
        struct msg *m = c->queue[c->qhead];
        if (len + 10 + m->len > BATCH_BYTES)
            break;
        len += frame_header(p + len, m->len);
        memcpy(p + len, msg_payload(m), m->len);
        len += m->len;
        queue_pop(c);
    }
    return lws_write(c->wsi, p, len, LWS_WRITE_RAW) < (int)len ? -1 : (int)len;
}

static int flushes_first(const struct conn *c)
{
    return c->closing == CONN_GOING_AWAY || c->closing == CONN_REFUSED;
}

int conn_write_queued(struct conn *c)
{
    if (c->closing && !flushes_first(c))
        return -1; /* being closed: lws sends the close frame prepared */
    if (c->ping_due && !lws_partial_buffered(c->wsi)) {
        /* (lws 4.1 tells the callback of a pong only if it carries bytes) */
        unsigned char ping[LWS_PRE + 1] = {[LWS_PRE] = 'k'};
        c->ping_due = 0;
        if (lws_write(c->wsi, ping + LWS_PRE, 1, LWS_WRITE_PING) < 1)
            return -1;
    }
    for (int i = 0; c->qlen && i < WRITES_PER_CALLBACK; i++) {
        struct msg *m = c->queue[c->qhead];
        if (c->qlen > 1 && m->len + 10 <= BATCH_BYTES / 2) {
            if (write_batch(c) < 0)
                return -1;
        } else {
            if (lws_write(c->wsi, msg_payload(m), m->len, LWS_WRITE_TEXT) < (int)m->len)
                return -1;
            queue_pop(c);
        }
        if (lws_partial_buffered(c->wsi))
            break; /* the socket is full: lws holds the rest until writable */
    }
    if (c->qlen) {
        lws_callback_on_writable(c->wsi);
    } else if (flushes_first(c)) {
        lws_close_reason(c->wsi, (enum lws_close_status)c->close_code,
                         (unsigned char *)c->close_reason, strlen(c->close_reason));
        return -1;
    }
    return 0;
}
