/* usage.h -- token usage: what the model reported an answer cost, and the
 * counts per user and day kept in Redis. The contract between the worker
 * (which counts, in the script that writes an answer's done frame:
 * answer.h) and fcgi-api (GET /api/usage).
 *
 *   P usage:<day>           set: the members counted that day
 *   P usage:<day>:<member>  hash: prompt_tokens, completion_tokens, answers
 *
 * <day> is YYYY-MM-DD, UTC, the day the answer ended. <member> is the
 * asker's subject, "user:<sub>", with authentication; without it every
 * asker is the one member "anonymous" (a subject is never that: it starts
 * with user: or addr:). Both keys expire usage_days days after their last
 * increment. Every answer that ends with done counts once in answers; its
 * tokens when the model reported them (zero otherwise). See
 * docs/PROTOCOL.md. */
#ifndef AIMSG_USAGE_H
#define AIMSG_USAGE_H

#include <stddef.h>
#include <hiredis/hiredis.h>

#include "buf.h"
#include "keys.h"

#define USAGE_ANONYMOUS "anonymous"
#define USAGE_DAY_LEN 10        /* YYYY-MM-DD */
#define USAGE_MAX_DAYS 366      /* bound of usage_days */

/* What one answer cost, as the model reported it; -1: not reported. */
struct usage {
    long prompt_tokens;
    long completion_tokens;
};
#define USAGE_UNKNOWN ((struct usage){-1, -1})
int usage_known(const struct usage *u);

/* The member a job's user field (NULL: none) counts under. */
const char *usage_member(const char *subject);
/* The UTC day of wall-clock ms. */
void usage_day(long long wall_ms, char out[USAGE_DAY_LEN + 1]);
/* P usage:<day> */
int usage_day_key(const struct keys *k, const char *day, char *buf, size_t len);

/* Lua: a function count_usage(day key, member, prompt tokens, completion
 * tokens, ttl ms) adding one answer to the member's counts of that day.
 * Part of answer_write_lua. */
#define USAGE_COUNT_LUA                                                          \
    "local function count_usage(day, member, prompt, completion, ttl)\n"         \
    "  local h = day .. ':' .. member\n"                                          \
    "  redis.call('HINCRBY', h, 'prompt_tokens', prompt)\n"                       \
    "  redis.call('HINCRBY', h, 'completion_tokens', completion)\n"               \
    "  redis.call('HINCRBY', h, 'answers', 1)\n"                                  \
    "  redis.call('SADD', day, member)\n"                                         \
    "  redis.call('PEXPIRE', h, ttl)\n"                                           \
    "  redis.call('PEXPIRE', day, ttl)\n"                                         \
    "end\n"

/* Reading the counts of the last days (newest first) of one member, or of
 * every member: one EVAL. */
extern const char usage_read_lua[];
struct usage_read {
    int argc;
    const char *argv[USAGE_MAX_DAYS + 8];
    char day[USAGE_MAX_DAYS][USAGE_DAY_LEN + 1];
};
/* member NULL: every member. days: how many days back from now_ms's day. */
int usage_read_argv(struct usage_read *u, const struct keys *k, const char *member, long days,
                    long long now_ms);
/* The reply as {"usage":[{"day":…,"user":<sub> or null for anonymous,
 * "prompt_tokens":n,"completion_tokens":n,"answers":n},…]}; -1 when the
 * reply has another shape or out of memory. */
int usage_json(struct buf *out, const redisReply *r);

#endif
