/* enqueue.c -- see enqueue.h. */
#define _POSIX_C_SOURCE 200809L
#include "enqueue.h"

#include "conversation.h"
#include "message.h"
#include "redis_argv.h"

#include <stdio.h>
#include <string.h>

const char MSG_RATE_LIMITED[] = "发送太频繁 (too many messages: rate_messages_per_minute reached, "
                                "try again later)";
const char MSG_TOO_MANY_IN_FLIGHT[] = "回答太多 (too many answers in progress: "
                                      "max_answers_in_flight_per_user reached)";
const char MSG_NOT_REPLICATED[] = "消息未能安全保存，请重试 (the message did not reach "
                                  "redis_wait_replicas replicas in time; try again)";

/* An answer still "in flight" after this long is taken for lost (a job
 * that never got a final frame: deleted by hand, dead-lettered elsewhere). */
#define INFLIGHT_STALE_MS (3600 * 1000LL)

/* KEYS: jobs stream, rate set, in-flight set, image key ('' = none),
 *       conversation owner, queue and turns keys ('' = no conversation)
 * ARGV: rate limit (0 = none), in-flight limit (0 = none), in-flight stale
 *       ms, image ttl s, image bytes, conversation: 'new', 'continue' or
 *       '', conversation ttl ms, the asker's subject, the conversation id,
 *       the conversation's most unanswered questions, then the job's
 *       field/value pairs
 * Returns the job id (no conversation), {job id, conversation id}, or
 * {1, retry-after s} (rate), {2, retry-after s} (answers in flight),
 * {3, 0} (no such conversation, or another user's), {4, retry-after s}
 * (the conversation has its most unanswered questions). Its queue is
 * counted without the jobs no longer in the stream (whose worker left them
 * there), looked at only when the count is reached. */
const char enqueue_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local rate, inflight = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
    "local conv, subject = ARGV[6], ARGV[8]\n"
    "if conv == 'continue' then\n"
    "  local owner = redis.call('GET', KEYS[5])\n"
    "  if not owner then return {3, 0} end\n"
    "  if string.sub(subject, 1, 5) == 'user:' and owner ~= subject then return {3, 0} end\n"
    "  local most = tonumber(ARGV[10])\n"
    "  if redis.call('LLEN', KEYS[6]) >= most then\n"
    "    for _, e in ipairs(redis.call('LRANGE', KEYS[6], 0, -1)) do\n"
    "      if #redis.call('XRANGE', KEYS[1], e, e) == 0 then redis.call('LREM', KEYS[6], 0, e) end\n"
    "    end\n"
    "    if redis.call('LLEN', KEYS[6]) >= most then return {4, 1} end\n"
    "  end\n"
    "end\n"
    "if rate > 0 then\n"
    "  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 60000)\n"
    "  if redis.call('ZCARD', KEYS[2]) >= rate then\n"
    "    local oldest = tonumber(redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')[2])\n"
    "    return {1, math.max(1, math.ceil((oldest + 60000 - now) / 1000))}\n"
    "  end\n"
    "end\n"
    "if inflight > 0 then\n"
    "  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[3]))\n"
    "  if redis.call('ZCARD', KEYS[3]) >= inflight then return {2, 1} end\n"
    "end\n"
    "if KEYS[4] ~= '' then redis.call('SET', KEYS[4], ARGV[5], 'EX', ARGV[4]) end\n"
    "local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 11))\n"
    "if rate > 0 then\n"
    "  redis.call('ZADD', KEYS[2], now, id)\n"
    "  redis.call('PEXPIRE', KEYS[2], 60000)\n"
    "end\n"
    "if inflight > 0 then\n"
    "  redis.call('ZADD', KEYS[3], now, id)\n"
    "  redis.call('PEXPIRE', KEYS[3], ARGV[3])\n"
    "end\n"
    "if conv == '' then return id end\n"
    "if conv == 'new' then redis.call('SET', KEYS[5], subject) end\n"
    "redis.call('RPUSH', KEYS[6], id)\n"
    "for i = 5, 7 do redis.call('PEXPIRE', KEYS[i], ARGV[7]) end\n"
    "return {id, ARGV[9]}\n";

/* The script with the job's XADD fields (its argv after XADD <key> *) */
static int scripted(struct enqueue *e, const struct keys *k, const struct config *cfg,
                    const struct job *j, const void *image, size_t image_len,
                    const struct script *sc)
{
    job_xadd_argv(&e->xadd, k, j);
    if (!j->user || keys_of_subject(k->rate_prefix, j->user, e->rate_key,
                                    sizeof(e->rate_key)) != 0 ||
        keys_of_subject(k->inflight_prefix, j->user, e->inflight_key,
                        sizeof(e->inflight_key)) != 0)
        return -1;
    if (j->conversation && conversation_keys(k, j->conversation, &e->conv) != 0)
        return -1;
    struct job_argv *a = &e->cmd[0];
    e->ncmds = 1;
    a->argc = 2;
    e->scripted = 1;
    script_call_head(sc, a->argv, a->argvlen);
    ARGV_STR(a, "7");
    ARGV_STR(a, k->jobs);
    ARGV_STR(a, e->rate_key);
    ARGV_STR(a, e->inflight_key);
    ARGV_STR(a, j->kind == JOB_IMAGE ? j->image_key : "");
    ARGV_STR(a, j->conversation ? e->conv.owner : "");
    ARGV_STR(a, j->conversation ? e->conv.queue : "");
    ARGV_STR(a, j->conversation ? e->conv.turns : "");
    snprintf(e->rate, sizeof(e->rate), "%ld", cfg->rate_messages_per_minute);
    ARGV_STR(a, e->rate);
    snprintf(e->inflight, sizeof(e->inflight), "%ld", cfg->max_answers_in_flight_per_user);
    ARGV_STR(a, e->inflight);
    snprintf(e->stale, sizeof(e->stale), "%lld", INFLIGHT_STALE_MS);
    ARGV_STR(a, e->stale);
    snprintf(e->image_ttl, sizeof(e->image_ttl), "%ld", cfg->image_ttl);
    ARGV_STR(a, e->image_ttl);
    ARGV_ADD(a, j->kind == JOB_IMAGE ? image : "", j->kind == JOB_IMAGE ? image_len : 0);
    ARGV_STR(a, !j->conversation ? "" : j->conversation_new ? "new" : "continue");
    snprintf(e->conv_ttl, sizeof(e->conv_ttl), "%lld", (long long)cfg->conversation_ttl * 1000);
    ARGV_STR(a, e->conv_ttl);
    ARGV_STR(a, j->user);
    ARGV_STR(a, j->conversation ? j->conversation : "");
    snprintf(e->conv_max, sizeof(e->conv_max), "%ld", cfg->conversation_max_queued);
    ARGV_STR(a, e->conv_max);
    for (int i = 3; i < e->xadd.argc; i++)
        ARGV_ADD(a, e->xadd.argv[i], e->xadd.argvlen[i]);
    return 0;
}

static int commands(struct enqueue *e, const struct keys *k, const struct config *cfg,
                    const struct job *j, const void *image, size_t image_len,
                    const struct script *sc)
{
    if (cfg->rate_messages_per_minute > 0 || cfg->max_answers_in_flight_per_user > 0 ||
        j->conversation)
        return scripted(e, k, cfg, j, image, image_len, sc);
    if (j->kind != JOB_IMAGE) {
        e->ncmds = 1;
        job_xadd_argv(&e->cmd[0], k, j);
        return 0;
    }
    /* the image and its job in one transaction: a job never points at an
     * image that was not stored */
    e->ncmds = 4;
    e->cmd[0].argc = 0;
    ARGV_STR(&e->cmd[0], "MULTI");
    job_image_argv(&e->cmd[1], j->image_key, image, image_len, cfg->image_ttl);
    job_xadd_argv(&e->cmd[2], k, j);
    e->cmd[3].argc = 0;
    ARGV_STR(&e->cmd[3], "EXEC");
    return 0;
}

int enqueue_prepare(struct enqueue *e, const struct keys *k, const struct config *cfg,
                    const struct job *j, const void *image, size_t image_len,
                    const struct script *sc)
{
    e->waits = 0;
    e->scripted = 0;
    if (commands(e, k, cfg, j, image, image_len, sc) != 0)
        return -1;
    if (cfg->redis_wait_replicas <= 0)
        return 0;
    struct job_argv *a = &e->cmd[e->ncmds++];
    e->waits = 1;
    a->argc = 0;
    ARGV_STR(a, "WAIT");
    snprintf(e->wait_replicas, sizeof(e->wait_replicas), "%ld", cfg->redis_wait_replicas);
    ARGV_STR(a, e->wait_replicas);
    snprintf(e->wait_ms, sizeof(e->wait_ms), "%ld", cfg->redis_wait_timeout_ms);
    ARGV_STR(a, e->wait_ms);
    return 0;
}

int enqueue_replicated(const redisReply *wait, const struct config *cfg)
{
    return wait && wait->type == REDIS_REPLY_INTEGER &&
                   wait->integer >= cfg->redis_wait_replicas ? 0 : -1;
}

static int copy_id(const redisReply *r, char id[48])
{
    if (!r || r->type != REDIS_REPLY_STRING || r->len >= 48)
        return -1;
    memcpy(id, r->str, r->len + 1);
    return 0;
}

int enqueue_result(const redisReply *last, char id[48], char conversation[48], const char **why,
                   long *retry_after)
{
    *why = NULL;
    *retry_after = 0;
    conversation[0] = '\0';
    if (!last)
        return -1;
    if (last->type == REDIS_REPLY_ERROR) {
        *why = last->str;
        return -1;
    }
    if (last->type == REDIS_REPLY_STRING)
        return copy_id(last, id);
    if (last->type != REDIS_REPLY_ARRAY || last->elements != 2)
        return -1;
    const redisReply *a = last->element[0], *b = last->element[1];
    if (a->type == REDIS_REPLY_INTEGER && b->type == REDIS_REPLY_INTEGER && a->integer == 3) {
        *why = MSG_CONVERSATION_UNKNOWN;
        return ENQUEUE_NO_CONVERSATION;
    }
    if (a->type == REDIS_REPLY_INTEGER && b->type == REDIS_REPLY_INTEGER &&
        (a->integer == 1 || a->integer == 2 || a->integer == 4)) {
        *why = a->integer == 1   ? MSG_RATE_LIMITED
               : a->integer == 2 ? MSG_TOO_MANY_IN_FLIGHT
                                 : MSG_CONVERSATION_BUSY;
        *retry_after = (long)b->integer;
        return ENQUEUE_LIMITED;
    }
    /* the script, for a job in a conversation: [job id, conversation id] */
    if (a->type == REDIS_REPLY_STRING && b->type == REDIS_REPLY_STRING) {
        if (copy_id(b, conversation) != 0)
            return -1;
        return copy_id(a, id);
    }
    /* EXEC of an image job: [SET's reply, XADD's] */
    if (a->type == REDIS_REPLY_ERROR) {
        *why = a->str;
        return -1;
    }
    if (b->type == REDIS_REPLY_ERROR)
        *why = b->str;
    return copy_id(b, id);
}
