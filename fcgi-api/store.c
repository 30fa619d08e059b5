/* store.c -- see store.h. */
#define _POSIX_C_SOURCE 200809L
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conns.h"
#include "enqueue.h"
#include "job.h"
#include "log.h"
#include "redis_sentinel.h"

#define REDIS_TIMEOUT_MS 1000

int store_init(struct store *s, const char *redis_url, const char *prefix, long image_ttl,
               long wait_ms)
{
    memset(s, 0, sizeof(*s));
    s->image_ttl = image_ttl;
    s->timeout_ms = REDIS_TIMEOUT_MS + (int)wait_ms;
    if (redis_addr_parse(&s->addr, redis_url, s->err, sizeof(s->err)) != 0)
        return -1;
    if (keys_init(&s->keys, prefix) != 0) {
        snprintf(s->err, sizeof(s->err), "redis_prefix too long");
        return -1;
    }
    script_init(&s->enqueue, enqueue_lua);
    script_init(&s->count, keys_count_connections_lua);
    return 0;
}

void store_close(struct store *s)
{
    if (s->c)
        redisFree(s->c);
    s->c = NULL;
    buf_free(&s->turn);
}

/* While Redis is down (or refuses writes) every request would say so: the
 * log says it once per interval. */
#define LOG_EVERY_MS 10000
static struct log_limit connect_limit = LOG_LIMIT_INIT(LOG_EVERY_MS);
static struct log_limit broken_limit = LOG_LIMIT_INIT(LOG_EVERY_MS);
static struct log_limit reply_limit = LOG_LIMIT_INIT(LOG_EVERY_MS);

void store_begin(struct store *s)
{
    s->down = 0;
    s->reused = s->c != NULL;
    s->retried = 0;
    s->replies = 0;
    if (s->turn.cap > 64 * 1024)
        buf_free(&s->turn); /* an image's turn: do not keep its memory */
    buf_reset(&s->turn);
}

/* On a new connection, before any command of the turn, both in one round
 * trip. A script Redis refuses to load goes as EVAL; no reply at all is a
 * connection that failed (-1). */
static int load_scripts(struct store *s)
{
    struct script *scripts[] = {&s->enqueue, &s->count};
    const char *argv[3];
    size_t argvlen[3];
    for (int i = 0; i < 2; i++) {
        script_connected(scripts[i]);
        if (redisAppendCommandArgv(s->c, script_load_argv(scripts[i], argv, argvlen), argv,
                                   argvlen) != REDIS_OK)
            return -1;
    }
    for (int i = 0; i < 2; i++) {
        void *r = NULL;
        if (redisGetReply(s->c, &r) != REDIS_OK || !r)
            return -1;
        if (script_loaded(scripts[i], r) != 0)
            log_limited(&reply_limit, LOG_WARN, "SCRIPT LOAD: %s; sending the script as EVAL",
                        ((redisReply *)r)->type == REDIS_REPLY_ERROR ? ((redisReply *)r)->str
                                                                     : "bad reply");
        freeReplyObject(r);
    }
    return 0;
}

static int ensure_connected(struct store *s)
{
    if (s->c)
        return 0;
    if (s->down)
        return -1; /* s->err still says why */
    s->c = redis_connect(&s->addr, s->timeout_ms, s->err, sizeof(s->err));
    if (!s->c) {
        s->down = 1;
        log_limited(&connect_limit, LOG_WARN, "%s", s->err);
        return -1;
    }
    char peer[300];
    log_info("connected to redis %s%s%s", redis_peer(s->c, peer, sizeof(peer)),
             s->addr.nsentinels ? ", master " : "", s->addr.master_name);
    if (load_scripts(s) != 0) {
        snprintf(s->err, sizeof(s->err), "redis: SCRIPT LOAD: %s",
                 s->c->errstr[0] ? s->c->errstr : "no reply");
        log_limited(&connect_limit, LOG_WARN, "%s", s->err);
        redisFree(s->c);
        s->c = NULL;
        s->down = 1;
        return -1;
    }
    return 0;
}

/* Drops the connection: the replies still owed are lost with it, so every
 * later receive of the turn fails, and no later send may connect again
 * (its receive would read a reply meant for an earlier send). */
static void broken(struct store *s)
{
    log_limited(&broken_limit, LOG_WARN, "%s; will reconnect", s->err);
    if (s->c)
        redisFree(s->c);
    s->c = NULL;
    s->down = 1;
}

static int send_argv(struct store *s, int argc, const char **argv, const size_t *argvlen)
{
    if (ensure_connected(s) != 0)
        return -1;
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, argv, argvlen);
    if (len < 0) {
        snprintf(s->err, sizeof(s->err), "out of memory");
        broken(s);
        return -1;
    }
    /* kept while the turn may be sent again: only on a connection that
     * Redis may have closed since an earlier turn */
    int rc = s->reused && buf_append(&s->turn, cmd, (size_t)len) != 0 ? REDIS_ERR
             : redisAppendFormattedCommand(s->c, cmd, (size_t)len);
    free(cmd);
    if (rc != REDIS_OK) {
        snprintf(s->err, sizeof(s->err), "redis: %s", s->c->errstr[0] ? s->c->errstr : "out of memory");
        broken(s);
        return -1;
    }
    return 0;
}

static int send_job(struct store *s, struct job_argv *a)
{
    return send_argv(s, a->argc, a->argv, a->argvlen);
}

/* Redis closed a connection kept from an earlier turn before the turn's
 * first reply: it had closed it before the turn's commands came (see
 * store.h). */
static int closed_before_turn(const struct store *s, int err)
{
    int closed = s->c->err == REDIS_ERR_EOF ||
                 (s->c->err == REDIS_ERR_IO && (err == ECONNRESET || err == EPIPE));
    return closed && s->reused && !s->retried && s->replies == 0;
}

/* Sends the turn's commands again on a new connection. */
static int send_turn_again(struct store *s)
{
    log_info("redis had closed the connection (%s); sending again on a new one",
             s->c->errstr[0] ? s->c->errstr : "reset");
    s->retried = 1;
    redisFree(s->c);
    s->c = NULL;
    if (ensure_connected(s) != 0)
        return -1;
    if (redisAppendFormattedCommand(s->c, s->turn.data, s->turn.len) != REDIS_OK) {
        snprintf(s->err, sizeof(s->err), "redis: %s", s->c->errstr[0] ? s->c->errstr : "out of memory");
        broken(s);
        return -1;
    }
    return 0;
}

/* -READONLY: the master we connected to was demoted. The connection goes
 * (the turn's later replies fail), and the next turn connects to the
 * master the Sentinels name then. */
static void lost_if_replica(struct store *s, const redisReply *r)
{
    if (r->type == REDIS_REPLY_ERROR && redis_error_is_readonly(r->str, r->len)) {
        snprintf(s->err, sizeof(s->err), "redis is a replica now: %s", r->str);
        broken(s);
    }
}

/* The next reply, errors included; NULL when the connection broke. */
static redisReply *recv_any(struct store *s)
{
    for (;;) {
        if (!s->c)
            return NULL;
        void *r = NULL;
        errno = 0;
        if (redisGetReply(s->c, &r) == REDIS_OK && r) {
            s->replies++;
            lost_if_replica(s, r);
            return r;
        }
        int err = errno;
        if (closed_before_turn(s, err)) {
            if (send_turn_again(s) == 0)
                continue;
            return NULL;
        }
        if (err == EAGAIN || err == EWOULDBLOCK)
            snprintf(s->err, sizeof(s->err), "redis: no reply within %d ms", s->timeout_ms);
        else
            snprintf(s->err, sizeof(s->err), "redis: %s", s->c->errstr[0] ? s->c->errstr : "no reply");
        broken(s);
        return NULL;
    }
}

/* r when it is not an error (which is logged and freed). */
static redisReply *ok_only(struct store *s, redisReply *r)
{
    if (r && r->type == REDIS_REPLY_ERROR) {
        snprintf(s->err, sizeof(s->err), "redis: %s", r->str);
        log_limited(&reply_limit, LOG_ERROR, "%s", s->err);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

static redisReply *recv_ok(struct store *s)
{
    return ok_only(s, recv_any(s));
}

int store_send_write_probe(struct store *s)
{
    const char *argv[] = {"SET", s->keys.health, "", "XX"};
    return send_argv(s, 4, argv, NULL);
}

int store_recv_write_probe(struct store *s)
{
    redisReply *r = recv_any(s);
    if (!r)
        return -1;
    int rc = 0;
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(s->err, sizeof(s->err), "redis refuses writes: %s", r->str);
        log_limited(&reply_limit, LOG_ERROR, "%s", s->err);
        rc = -1;
    }
    freeReplyObject(r);
    return rc;
}

int store_send_connection_count(struct store *s)
{
    const char *argv[] = {NULL, NULL, "1", s->keys.instances, s->keys.presence_prefix};
    size_t argvlen[] = {0, 0, 1, strlen(argv[3]), strlen(argv[4])};
    script_call_head(&s->count, argv, argvlen);
    return send_argv(s, 5, argv, argvlen);
}

int store_recv_connection_count(struct store *s, long long *count)
{
    redisReply *r = recv_any(s);
    if (r && script_heard(&s->count, r)) {
        freeReplyObject(r);
        snprintf(s->err, sizeof(s->err), "redis had lost the script (SCRIPT FLUSH?); sent again next time");
        log_limited(&reply_limit, LOG_WARN, "%s", s->err);
        return -1;
    }
    if (!(r = ok_only(s, r)))
        return -1;
    *count = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
    freeReplyObject(r);
    return 0;
}

int store_send_enqueue(struct store *s, const struct config *cfg, const struct job *j,
                       const void *image, size_t image_len, struct enqueue_shape *sent)
{
    struct enqueue e;
    if (enqueue_prepare(&e, &s->keys, cfg, j, image, image_len, &s->enqueue) != 0) {
        snprintf(s->err, sizeof(s->err), "cannot build the job's keys");
        return -1;
    }
    /* (a failed append drops the connection: no half transaction is sent) */
    for (int i = 0; i < e.ncmds; i++)
        if (send_job(s, &e.cmd[i]) != 0)
            return -1;
    *sent = enqueue_shape(&e);
    return 0;
}

int store_recv_enqueue(struct store *s, const struct config *cfg,
                       const struct enqueue_shape *sent, char id[48], char conversation[48],
                       const char **refused, long *retry_after)
{
    int waits = sent->waits;
    /* a transaction's +OK and +QUEUED (or the error that aborts its EXEC) */
    for (int i = 0; i < sent->ncmds - 1 - waits; i++) {
        redisReply *r = recv_any(s);
        if (!r)
            return -1;
        freeReplyObject(r);
    }
    redisReply *r = recv_any(s);
    if (!r)
        return -1;
    const char *why;
    if (sent->scripted && script_heard(&s->enqueue, r))
        log_limited(&reply_limit, LOG_WARN, "redis had lost the enqueue script (SCRIPT FLUSH?): "
                    "this job is refused, the next one sends it again");
    int rc = enqueue_result(r, id, conversation, &why, retry_after);
    *refused = rc > 0 ? why : NULL;
    if (rc < 0) {
        snprintf(s->err, sizeof(s->err), "redis: %s", why ? why : "the job was not queued");
        log_limited(&reply_limit, LOG_ERROR, "%s", s->err);
    }
    freeReplyObject(r);
    if (waits) {
        redisReply *w = recv_any(s); /* read even when the job failed: it is owed */
        if (rc == 0 && enqueue_replicated(w, cfg) != 0) {
            snprintf(s->err, sizeof(s->err), "%s", MSG_NOT_REPLICATED);
            log_limited(&reply_limit, LOG_ERROR, "job %s: %s (WAIT said %lld)", id, s->err,
                        w && w->type == REDIS_REPLY_INTEGER ? w->integer : -1LL);
            rc = -1;
        }
        if (w)
            freeReplyObject(w);
    }
    return rc;
}

int store_send_subject_connections(struct store *s, const char *subject, long presence_ttl)
{
    char key[KEYS_MAX_SUBJECT + 100], stale[24];
    if (keys_of_subject(s->keys.conns_prefix, subject, key, sizeof(key)) != 0)
        return -1;
    snprintf(stale, sizeof(stale), "%ld", presence_ttl * 1000);
    const char *argv[] = {"EVAL", conns_count_lua, "1", key, stale};
    return send_argv(s, 5, argv, NULL);
}

int store_send_command(struct store *s, int argc, const char **argv, const size_t *argvlen)
{
    return send_argv(s, argc, argv, argvlen);
}

redisReply *store_recv_reply(struct store *s)
{
    return recv_ok(s);
}
