/* wspush.h -- the state of one ws-push instance, shared by its parts:
 * client.c (the WebSocket protocol), redis_link.c (Redis on the same loop),
 * answers.c (answer frames once and in order, caught up from the history),
 * follow.c (the answers being delivered), conn.c (connections and their
 * queues), partial.c (the budget of unfinished messages), mask_guard.c
 * (unmasked client frames), bind.c (the listening address), main.c (start
 * and stop). */
#ifndef AIMSG_WSPUSH_H
#define AIMSG_WSPUSH_H

#include <libwebsockets.h>
#include <sys/queue.h>

#include "auth.h"
#include "config.h"
#include "conn.h"
#include "follow.h"
#include "job.h"
#include "keys.h"
#include "metrics.h"
#include "proxy.h"
#include "redis_async.h"
#include "redis_script.h"
#include "redis_conn.h"
#include "sentinel_watch.h"

struct wspush;
struct queuing;

/* subjects.c: connections grouped by who is on them */
struct subject_table {
    struct subject **buckets;
    size_t nbuckets, count;
};

/* One hiredis async connection whose socket lives in the lws loop. */
struct redis_link {
    struct wspush *wp;
    struct redis_async ra;  /* ra.ac is NULL while disconnected */
    struct lws *wsi;        /* the adopted (dup'ed) socket */
    int is_subscriber;
    int is_watch;               /* to a Sentinel, for +switch-master */
    int was_lost;               /* a connection was lost: the next is a reconnect */
    /* cmd, redis_wait_replicas: one WAIT at a time (replica_wait.h) */
    long jobs_sent;             /* jobs sent on it (struct queuing's mark) */
    int wait_inflight;          /* a WAIT is on its way ... */
    long wait_covers;           /* ... covering the jobs marked up to this */
    STAILQ_HEAD(, queuing) replicating; /* queued, told when it answers */
    long long wait_paused_until; /* too few replicas: jobs are refused until then */
    struct script enqueue;      /* cmd: the jobs' script (common/redis_script.h) */
};

struct wspush {
    const struct config *cfg;
    struct keys keys;
    struct redis_addr addr;
    char instance[128];
    char run[13];               /* random, new at every start */
    char connections[256];      /* common part of our connections' channels */
    char ping_channel[272];     /* ours, to prove the subscription alive */
    struct lws_context *ctx;
    struct lws_vhost *vhost;
    struct conn_table conns;
    struct subject_table subjects;
    struct auth *auth;
    struct proxy_nets proxies;
    long long next_access_check_ms, next_vouch_ms;
    struct metrics_publish metrics;
    struct redis_link sub, cmd;
    struct redis_link watch;    /* sentinel:// only (watching) */
    int watching;
    struct sentinel_watch sentinels;
    struct redis_backoff watch_backoff;
    int confirmations, subscribed;  /* of the two subscriptions */
    struct follow_table follows;
    char mark[48];              /* P answers entry all of whose elders were heard */
    char mark_candidate[48];
    unsigned long mark_nonce, pong_nonce;
    long long ping_sent_ms;     /* oldest ping not heard back; 0: none */
    long long mark_ms, mark_round_ms; /* when the mark's read was sent */
    long long next_mark_ms, next_sweep_ms;
    lws_sorted_usec_list_t tick;
    struct redis_backoff backoff;
    long long next_presence;
    long long published_count;
    size_t max_client_message;
    int stopping;
};

/* bind.c: what to hand lws for `bind` ("" = every interface), the port
 * shared with other processes when share; -1 with the reason in err when
 * the address cannot be bound on port */
struct listen_addr {
    char iface[64];             /* numeric address for info.iface; "" = none */
    char shown[68];             /* for the log: 127.0.0.1, [::1] or * */
    unsigned long long options; /* lws_context_creation_info.options to add */
};
int listen_addr_resolve(struct listen_addr *la, const char *bind, int port, int share,
                        char *err, size_t errlen);

/* shared_listen.c: ws_processes > 1: listens on la:port with SO_REUSEPORT
 * and hands lws every connection accepted; -1 (logged) when it cannot */
extern const struct lws_protocols shared_listen_protocol;
int shared_listen_start(struct wspush *wp, const struct listen_addr *la, int port);
/* Stopping: no more connections come to this process (the kernel sends
 * them to the others). */
void shared_listen_stop(void);

/* mask_guard.c: follows a client socket from accept (returns -1 when out
 * of memory: refuse it), knows its connection once established, forgets it
 * when closed */
int mask_guard_accepted(int fd);
void mask_guard_bind(int fd, struct conn *c);
void mask_guard_unbind(int fd);

/* subjects.c */
int subjects_init(struct subject_table *t);
void subjects_free(struct subject_table *t);
struct subject *subjects_find(const struct subject_table *t, const char *name);
size_t subjects_count(const struct subject_table *t, const char *name);
/* c joins the group of c->who.subject (a user's first socket here
 * subscribes to its inbox), or leaves it (its last unsubscribes). */
int subjects_join(struct wspush *wp, struct conn *c);
void subjects_leave(struct wspush *wp, struct conn *c);
/* fn(name, channel: the inbox, "" for an address) for every group */
void subjects_each(struct wspush *wp, void (*fn)(struct wspush *, const char *name,
                                                 const char *channel, void *ctx),
                   void *ctx);
/* m to every member of group name for which skip (may be NULL) says 0 */
void subjects_send(struct wspush *wp, const char *name, struct msg *m,
                   int (*skip)(struct wspush *, const struct conn *, void *), void *ctx);
struct conn *subjects_first_conn(struct subject *s);   /* s may be NULL */
struct conn *subjects_next_conn(struct conn *c);

/* access.c: who may connect, and who a connection is */
/* At the handshake: 0 to accept, else the upgrade was refused (an HTTP
 * status was written) and lws should drop it. c is the connection-to-be. */
int access_handshake(struct wspush *wp, struct lws *wsi, struct conn *c);
/* The connection is established: it becomes a member now (token in the
 * URL, or none needed) or waits for its auth frame. */
void access_established(struct wspush *wp, struct conn *c);
/* {"type":"auth","token":…} */
void access_auth_frame(struct wspush *wp, struct conn *c, const char *token, size_t len);
/* A message before the token: an error frame (401), then close 1008. */
void access_refuse_unauthenticated(struct wspush *wp, struct conn *c, const char *why);
void access_closed(struct wspush *wp, struct conn *c);
/* Every second: sockets without a token in time, or whose token expired,
 * are closed (1008); the instance vouches for its sockets in P conns:*. */
void access_tick(struct wspush *wp);

/* keepalive.c: pings and the idle timeout, from the tick */
void keepalive_heard(struct conn *c);      /* something came from c */
void keepalive_tick(struct wspush *wp);
/* What c may resume and cancel: its user's inbox; NULL: anything. */
const char *access_owner(struct wspush *wp, const struct conn *c, char *buf, size_t len);
/* Where answers to c's messages go. */
int access_reply_channel(struct wspush *wp, const struct conn *c, char *buf, size_t len);

/* wspush_metrics.c */
void wspush_metrics_init(struct wspush *wp);
void wspush_metrics_refused(int status);      /* a handshake refused */
void wspush_metrics_publish(struct wspush *wp); /* when it is time */

/* client.c */
extern const struct lws_protocols client_protocol;

/* answers.c */
#define ANSWERS_FOREIGN UINT64_MAX  /* "conn" of a channel subscribed for a resume */
#define ANSWERS_USER (UINT64_MAX - 1) /* "conn" of an answer to a user's sockets */
#define ANSWERS_FILL_COUNT 1000     /* frames per history read */
/* A frame from the answer channel naming conn (0: every client;
 * ANSWERS_USER: the sockets of user, the subject "user:<sub>"). */
void answers_deliver(struct wspush *wp, uint64_t conn, const char *user, const char *data,
                     size_t len);
void answers_queued(struct wspush *wp, uint64_t conn, const char *user, const char *id);
void answers_catch_up(struct wspush *wp);   /* subscriptions (re)confirmed, or the command link back */
void answers_pong(struct wspush *wp, const char *payload);
void answers_tick(struct wspush *wp);
/* Takes the frames of an XRANGE of f's history, and reads on if needed. */
void answers_absorb(struct wspush *wp, struct follow *f, const redisReply *entries);
void answers_fill(struct wspush *wp, struct follow *f);   /* read what f lacks */

/* control.c: what a client asks about an answer */
void control_resume(struct wspush *wp, struct conn *c, const char *id, long after);
void control_cancel(struct wspush *wp, struct conn *c, const char *id);

/* redis_link.c */
extern const struct lws_protocols redis_link_protocol;
void redis_link_tick(struct wspush *wp);           /* reconnect, presence */
void redis_link_close(struct wspush *wp);          /* shutdown: presence gone */
/* Another instance's connection channel, heard for an answer resumed here. */
void redis_link_subscribe(struct wspush *wp, const char *channel);
void redis_link_unsubscribe(struct wspush *wp, const char *channel);
/* Queues a job asked on connection conn_id; the client gets a "queued"
 * frame (or an error: 429 when a quota says no) when Redis has it. image
 * may be NULL. */
void redis_link_submit(struct wspush *wp, uint64_t conn_id, const struct job *j,
                       const void *image, size_t image_len);

#endif
