/* store.c -- see store.h. */
#define _POSIX_C_SOURCE 200809L
#include "store.h"

#include <stdio.h>
#include <string.h>

#include "job.h"
#include "log.h"

#define REDIS_TIMEOUT_MS 1000

int store_init(struct store *s, const char *redis_url, const char *prefix, long image_ttl)
{
    memset(s, 0, sizeof(*s));
    s->image_ttl = image_ttl;
    if (redis_addr_parse(&s->addr, redis_url, s->err, sizeof(s->err)) != 0)
        return -1;
    if (keys_init(&s->keys, prefix) != 0) {
        snprintf(s->err, sizeof(s->err), "redis_prefix too long");
        return -1;
    }
    return 0;
}

void store_close(struct store *s)
{
    if (s->c)
        redisFree(s->c);
    s->c = NULL;
}

static int ensure_connected(struct store *s)
{
    if (s->c)
        return 0;
    s->c = redis_connect(&s->addr, REDIS_TIMEOUT_MS, s->err, sizeof(s->err));
    if (!s->c) {
        log_warn("%s", s->err);
        return -1;
    }
    log_info("connected to redis %s:%d", s->addr.host, s->addr.port);
    return 0;
}

/* Takes a reply; NULL means the connection broke and is dropped. */
static redisReply *checked(struct store *s, redisReply *r)
{
    if (!r) {
        snprintf(s->err, sizeof(s->err), "redis: %s", s->c->errstr);
        log_warn("%s; will reconnect", s->err);
        store_close(s);
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(s->err, sizeof(s->err), "redis: %s", r->str);
        log_error("%s", s->err);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

static redisReply *command_argv(struct store *s, struct job_argv *a)
{
    if (ensure_connected(s) != 0)
        return NULL;
    return checked(s, redisCommandArgv(s->c, a->argc, a->argv, a->argvlen));
}

int store_ping(struct store *s)
{
    if (ensure_connected(s) != 0)
        return -1;
    redisReply *r = checked(s, redisCommand(s->c, "PING"));
    if (!r)
        return -1;
    freeReplyObject(r);
    return 0;
}

int store_connection_count(struct store *s, long long *count)
{
    if (ensure_connected(s) != 0)
        return -1;
    redisReply *r = checked(s, redisCommand(s->c, "EVAL %s 1 %s %s", keys_count_connections_lua,
                                            s->keys.instances, s->keys.presence_prefix));
    if (!r)
        return -1;
    *count = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
    freeReplyObject(r);
    return 0;
}

static int copy_id(struct store *s, redisReply *r, char id[48])
{
    if (r->type != REDIS_REPLY_STRING || r->len >= 48) {
        snprintf(s->err, sizeof(s->err), "redis: XADD returned no id");
        freeReplyObject(r);
        return -1;
    }
    memcpy(id, r->str, r->len + 1);
    freeReplyObject(r);
    return 0;
}

int store_queue_text(struct store *s, const char *text, size_t len, char id[48])
{
    struct job j = {.kind = JOB_TEXT, .content = text, .content_len = len,
                    .reply = s->keys.broadcast};
    struct job_argv a;
    job_xadd_argv(&a, &s->keys, &j);
    redisReply *r = command_argv(s, &a);
    return r ? copy_id(s, r, id) : -1;
}

int store_queue_image(struct store *s, const void *bytes, size_t len, const char *mime,
                      const char *question, size_t qlen, char id[48])
{
    char token[33], key[160];
    if (job_new_token(token) != 0 || keys_image(&s->keys, token, key, sizeof(key)) != 0) {
        snprintf(s->err, sizeof(s->err), "cannot make an image key");
        return -1;
    }
    struct job_argv a;
    job_image_argv(&a, key, bytes, len, s->image_ttl);
    redisReply *r = command_argv(s, &a);
    if (!r)
        return -1;
    freeReplyObject(r);
    struct job j = {.kind = JOB_IMAGE, .content = question, .content_len = qlen,
                    .reply = s->keys.broadcast, .image_key = key, .mime = mime};
    job_xadd_argv(&a, &s->keys, &j);
    r = command_argv(s, &a);
    return r ? copy_id(s, r, id) : -1;
}
