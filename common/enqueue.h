/* enqueue.h -- how a question becomes a job: the commands that queue it and
 * what their last reply means. One definition for fcgi-api and ws-push.
 *
 * A text job is one XADD; an image job stores the image and XADDs its job
 * in one MULTI/EXEC. When a quota is set (rate_messages_per_minute,
 * max_answers_in_flight_per_user) a Lua script checks the asker's counts,
 * and only then stores the image and queues the job, all in one step, so
 * the limits are exact however many fcgi-api and ws-push processes ask at
 * once:
 *   P rate:<subject>      sorted set: job ids of the last 60 s, score = ms
 *   P inflight:<subject>  sorted set: job ids whose answer has not ended
 * (the script that writes an answer's last frame removes it; see answer.h).
 * A job in a conversation (j->conversation) always goes through the script:
 * it starts the conversation, or continues it when it exists and (with
 * authentication) belongs to the asker and has fewer than
 * conversation_max_queued unanswered questions, and puts the job on the
 * conversation's queue (conversation.h).
 * Times are Redis' own clock (TIME), the one clock every instance shares.
 *
 * With redis_wait_replicas > 0 the last command is WAIT n timeout: the job
 * is confirmed only when that many replicas have it, so a failover
 * (Sentinel promoting a replica) cannot lose a job its asker was told was
 * queued. When WAIT says fewer, the asker is told it failed
 * (MSG_NOT_REPLICATED); the job may still be answered. */
#ifndef AIMSG_ENQUEUE_H
#define AIMSG_ENQUEUE_H

#include <stddef.h>
#include <hiredis/hiredis.h>

#include "config.h"
#include "conversation.h"
#include "job.h"
#include "keys.h"
#include "redis_script.h"

extern const char MSG_RATE_LIMITED[];
extern const char MSG_TOO_MANY_IN_FLIGHT[];
extern const char MSG_NOT_REPLICATED[];
extern const char enqueue_lua[];   /* the script (struct script, redis_script.h) */

#define ENQUEUE_MAX_CMDS 5
struct enqueue {
    int ncmds;                  /* commands, WAIT included */
    int waits;                  /* 1: the last command is WAIT */
    int scripted;               /* 1: the job's reply is the script's (script_heard) */
    struct job_argv cmd[ENQUEUE_MAX_CMDS];
    struct job_argv xadd;       /* the job's fields, for the script */
    /* the quota script's arguments besides the job's own */
    char rate[24], inflight[24], stale[24], image_ttl[24];
    char rate_key[KEYS_MAX_SUBJECT + 100], inflight_key[KEYS_MAX_SUBJECT + 100];
    char wait_replicas[24], wait_ms[24];
    char conv_ttl[24], conv_max[24];
    struct conversation_keys conv;
};

/* What a sent job's replies are, kept until they are read: ncmds replies,
 * the last WAIT's (waits), the job's one the script's (scripted). */
struct enqueue_shape {
    int ncmds, waits, scripted;
};

static inline struct enqueue_shape enqueue_shape(const struct enqueue *e)
{
    return (struct enqueue_shape){e->ncmds, e->waits, e->scripted};
}

/* The commands queueing j (with its image bytes when j->kind is JOB_IMAGE;
 * j->image_key names where they go). j->user is the subject the quotas
 * count; the script goes as sc says (EVALSHA or EVAL, redis_script.h). Every
 * string must outlive the sending of the commands. -1 when a key would be
 * too long. */
int enqueue_prepare(struct enqueue *e, const struct keys *k, const struct config *cfg,
                    const struct job *j, const void *image, size_t image_len,
                    const struct script *sc);

/* What the job's last command's reply (before WAIT) says: 0 with the job
 * id (and the conversation id, "" for none); ENQUEUE_LIMITED with *why (one
 * of the MSG_ above, or MSG_CONVERSATION_BUSY, for a 429) and *retry_after
 * in seconds; ENQUEUE_NO_CONVERSATION (*why MSG_CONVERSATION_UNKNOWN, a
 * 404); -1 when it failed (*why: Redis' error text, or NULL). Earlier
 * replies (MULTI's +OK, +QUEUED) say nothing. */
#define ENQUEUE_LIMITED 1
#define ENQUEUE_NO_CONVERSATION 2
int enqueue_result(const redisReply *last, char id[48], char conversation[48], const char **why,
                   long *retry_after);

/* WAIT's reply (NULL: none came): 0 when redis_wait_replicas replicas have
 * the job, else -1. */
int enqueue_replicated(const redisReply *wait, const struct config *cfg);

#endif
