/* store.h -- fcgi-api's one Redis connection and the few things it asks of it.
 *
 * Commands are pipelined: a turn of requests (see main.c) queues its
 * commands with store_send_*, and then reads the replies, in the same order,
 * with store_recv_* (the first read sends the whole turn in one write). Each
 * send that returned 0 is followed by its receive; a failed send has none.
 *
 * The connection is opened lazily and dropped on any I/O error, so the next
 * turn reconnects: a Redis restart costs the requests made while it was
 * down (answered 503), nothing more. A connection kept from an earlier turn
 * may have been closed by Redis meanwhile (its `timeout`, CLIENT KILL, a
 * restart): when the first reply of a turn finds it closed, the turn's
 * commands are sent once more on a new connection. In those cases Redis had
 * closed the connection before the commands came, so nothing runs twice
 * (only a Redis dying between running a turn's first command and replying
 * could, as with any client's retry). A Redis that is really down still
 * fails fast: the new connection is refused. */
#ifndef AIMSG_STORE_H
#define AIMSG_STORE_H

#include <stddef.h>

#include "buf.h"
#include "config.h"
#include "job.h"
#include "keys.h"
#include "enqueue.h"
#include "redis_conn.h"
#include "redis_script.h"

struct store {
    struct redis_addr addr;
    struct keys keys;
    redisContext *c;
    long image_ttl;
    int timeout_ms;         /* connect, and wait for one reply */
    int down;               /* the connection failed in this turn: no send reconnects */
    int reused;             /* the connection was opened in an earlier turn */
    int retried;            /* the turn was sent again once already */
    int replies;            /* replies read in this turn */
    struct buf turn;        /* the turn's commands as sent (while reused) */
    struct script enqueue, count; /* loaded on each new connection */
    char err[256];          /* why the last call failed */
};

/* wait_ms: how long a WAIT may take (redis_wait_timeout_ms, 0 without
 * redis_wait_replicas): every reply may take that much longer. */
int store_init(struct store *s, const char *redis_url, const char *prefix, long image_ttl,
               long wait_ms);
void store_close(struct store *s);

/* Starts a turn: the next send may connect again. */
void store_begin(struct store *s);

/* Each returns 0, or -1 with s->err set. */
/* Whether Redis accepts writes: a write command that changes nothing
 * (SET P health "" XX, the key never exists), refused as any write is when
 * Redis is out of memory (maxmemory + noeviction), a read-only replica, or
 * stops writes after a failed save. s->err then says "redis refuses writes". */
int store_send_write_probe(struct store *s);
int store_recv_write_probe(struct store *s);

int store_send_connection_count(struct store *s);
int store_recv_connection_count(struct store *s, long long *count);

/* Queues job j (common/enqueue.h): *sent says which replies
 * store_recv_enqueue reads. It returns 0
 * with the job id (and its conversation's, "" for none), ENQUEUE_LIMITED or
 * ENQUEUE_NO_CONVERSATION with *refused set (the reason; *retry_after
 * seconds for a quota), or -1 (also when too few replicas have the job:
 * s->err is MSG_NOT_REPLICATED, and when Redis had lost the script: a
 * SCRIPT FLUSH, see common/redis_script.h). */
int store_send_enqueue(struct store *s, const struct config *cfg, const struct job *j,
                       const void *image, size_t image_len, struct enqueue_shape *sent);
int store_recv_enqueue(struct store *s, const struct config *cfg,
                       const struct enqueue_shape *sent, char id[48], char conversation[48],
                       const char **refused, long *retry_after);

/* The number of open WebSockets of subject over all instances (its reply
 * is an integer: read it with store_recv_reply). */
int store_send_subject_connections(struct store *s, const char *subject, long presence_ttl);

/* Any other command, and its reply (an error reply counts as a failure);
 * the caller frees the reply. */
int store_send_command(struct store *s, int argc, const char **argv, const size_t *argvlen);
redisReply *store_recv_reply(struct store *s);

#endif
