/* conn.h -- the WebSocket connections of one ws-push instance.
 *
 * Each connection has an id (unique within the instance, part of its Redis
 * reply channel), a bounded queue of frames waiting to be written, and the
 * buffer of a client message being received in fragments. Frames are
 * reference-counted so one broadcast is stored once, whatever the number of
 * connections it is queued on. The buffers of half-received messages of all
 * connections together stay within a budget (partial.c). */
#ifndef AIMSG_CONN_H
#define AIMSG_CONN_H

#include <libwebsockets.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "buf.h"
#include "keys.h"

struct msg {
    unsigned refs;
    size_t len;
    unsigned char data[]; /* LWS_PRE bytes of room, then len bytes of payload */
};

struct msg *msg_new(const void *payload, size_t len);
void msg_unref(struct msg *m);
static inline unsigned char *msg_payload(struct msg *m) { return m->data + LWS_PRE; }

enum conn_close {
    CONN_OPEN,
    CONN_TOO_SLOW,          /* send queue overflowed: close 1008 */
    CONN_GOING_AWAY,        /* shutdown: close 1001 */
    CONN_OVER_BUDGET,       /* largest half-received message over budget: close 1009 */
    CONN_PROTOCOL_ERROR,    /* broke RFC 6455 (an unmasked frame): close 1002 */
    CONN_IDLE,              /* silent past ws_idle_timeout: dropped (keepalive.c) */
    CONN_REFUSED,           /* token, quota: close (1008) once its queue is sent */
};

/* Who is on a connection (access.c). Filled in at the handshake, before
 * the connection joins the table (conn_add keeps it). */
struct conn_who {
    char subject[KEYS_MAX_SUBJECT]; /* user:<sub> or addr:<ip>; quotas' key; "" until
                                     * the token came: then it may ask */
    int authed;                 /* a member: it is sent answers (conn_admit) */
    int admin;
    long long exp;              /* the token's exp (s since the epoch); 0: none */
    long long auth_deadline_ms; /* unauthenticated: closed after (monotonic) */
};

struct subject;

struct conn {
    uint64_t id;
    struct lws *wsi;
    int fd;                     /* wsi's socket */
    LIST_ENTRY(conn) link;      /* all connections */
    struct conn *hnext;         /* hash chain */
    struct msg **queue;         /* ring of queued frames */
    unsigned qhead, qlen, qcap;
    struct buf rx;              /* client message being reassembled */
    int rx_discard;             /* the current message is being dropped */
    size_t rx_counted;          /* of the partial budget, held by rx */
    enum conn_close closing;
    int close_code;             /* CONN_REFUSED, CONN_GOING_AWAY: the close frame */
    const char *close_reason;
    struct conn_who who;
    uint64_t member_no;         /* order of becoming a member (authed); 0: not yet */
    struct subject *subject;    /* its group (subjects.c) */
    LIST_ENTRY(conn) subject_link;
    int counted;                /* in P conns:<subject> (common/conns.h) */
    long long heard_ms, pinged_ms; /* keepalive.c */
    int ping_due;               /* the next writable callback sends a ping */
};

struct conn_table {
    LIST_HEAD(, conn) all;
    struct conn **buckets;
    size_t nbuckets, count;
    uint64_t next_id;
    uint64_t next_member;
    unsigned queue_limit;
    size_t partial_bytes, partial_budget; /* see partial.c */
    /* counted for the metrics (wspush_metrics.c) */
    unsigned long long frames_sent, frames_dropped, opened, messages_in;
    unsigned long long closed[CONN_REFUSED + 1]; /* by why they were closed */
};

int conn_table_init(struct conn_table *t, unsigned queue_limit);
void conn_table_free(struct conn_table *t);

/* c is lws' per-session storage; it gets an id and joins the table. */
int conn_add(struct conn_table *t, struct conn *c, struct lws *wsi);
void conn_remove(struct conn_table *t, struct conn *c);
struct conn *conn_find(const struct conn_table *t, uint64_t id);

/* Queues m on c and asks for a writable callback. When the queue is full the
 * connection is marked too slow and will be closed. Returns 0 or -1. */
int conn_send(struct conn_table *t, struct conn *c, struct msg *m);
/* conn_send of a copy of data; conn_reject sends an error frame about a
 * message the client sent. */
int conn_send_copy(struct conn_table *t, struct conn *c, const void *data, size_t len);
void conn_reject(struct conn_table *t, struct conn *c, const char *message);
/* To every member (authenticated connection). */
void conn_broadcast(struct conn_table *t, struct msg *m);
/* c becomes a member: it is sent answers from now on. */
void conn_admit(struct conn_table *t, struct conn *c);
/* Marks c to be closed with why (unless it is already closing): nothing it
 * sends is read any more and the close frame (code, reason) is sent when the
 * socket is writable, or the socket closed after 5 s. */
void conn_close_with(struct conn *c, enum conn_close why, int code, const char *reason);
/* Closes c with code and reason (a static string) once what is queued for
 * it (an error frame saying why) has been sent; nothing more is queued. */
void conn_close_after_queue(struct conn *c, enum conn_close why, int code, const char *reason);

/* Writes queued frames while the socket takes them. Returns -1 to close. */
int conn_write_queued(struct conn *c);

/* partial.c: call after c->rx changed. Counts c->rx against the budget (a
 * buffer counts while it holds part of a message) and, when all of them
 * together are over it, closes the connections with the largest until they
 * are not. Returns -1 when c itself was closed. */
int partial_account(struct conn_table *t, struct conn *c);
/* Drops c's buffer from the count and frees it. */
void partial_release(struct conn_table *t, struct conn *c);

#endif
