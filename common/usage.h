/* usage.h -- token usage: what the model reported an answer cost, and the
 * counts per user and day kept in Redis. The contract between the worker
 * (which counts, in the script that writes an answer's done frame:
 * answer.h) and fcgi-api (GET /api/usage).
 *
 *   P usage:<day>           sorted set: the members counted that day, every
 *                           score 0, so in byte order (ZRANGEBYLEX pages it)
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

/* Lua: a function usage_sorted(day key) making a day's members a sorted
 * set when they are still the plain set an older version counted into
 * (SMEMBERS, then ZADD with score 0, keeping the key's expiry): once per
 * such key, by the first script to touch it. */
#define USAGE_SORTED_LUA                                                         \
    "local function usage_sorted(day)\n"                                          \
    "  if redis.call('TYPE', day).ok ~= 'set' then return end\n"                  \
    "  local ttl = redis.call('PTTL', day)\n"                                     \
    "  local members = redis.call('SMEMBERS', day)\n"                             \
    "  redis.call('DEL', day)\n"                                                  \
    "  for i = 1, #members, 1000 do\n"                                            \
    "    local add = {'ZADD', day}\n"                                             \
    "    for j = i, math.min(i + 999, #members) do\n"                             \
    "      add[#add + 1] = 0\n"                                                   \
    "      add[#add + 1] = members[j]\n"                                          \
    "    end\n"                                                                   \
    "    redis.call(unpack(add))\n"                                               \
    "  end\n"                                                                     \
    "  if ttl > 0 then redis.call('PEXPIRE', day, ttl) end\n"                     \
    "end\n"

/* Lua: a function count_usage(day key, member, prompt tokens, completion
 * tokens, ttl ms) adding one answer to the member's counts of that day.
 * Part of answer_write_lua. */
#define USAGE_COUNT_LUA                                                          \
    USAGE_SORTED_LUA                                                             \
    "local function count_usage(day, member, prompt, completion, ttl)\n"         \
    "  local h = day .. ':' .. member\n"                                          \
    "  redis.call('HINCRBY', h, 'prompt_tokens', prompt)\n"                       \
    "  redis.call('HINCRBY', h, 'completion_tokens', completion)\n"               \
    "  redis.call('HINCRBY', h, 'answers', 1)\n"                                  \
    "  usage_sorted(day)\n"                                                       \
    "  redis.call('ZADD', day, 0, member)\n"                                      \
    "  redis.call('PEXPIRE', h, ttl)\n"                                           \
    "  redis.call('PEXPIRE', day, ttl)\n"                                         \
    "end\n"

/* GET /api/usage reads its rows a page at a time: at most limit members'
 * counts (USAGE_LIMIT_DEFAULT when not asked for), newest day first and a
 * day's members in byte order; when more remain, the reply names the next
 * page's cursor, which the client sends back as it got it. */
#define USAGE_LIMIT_DEFAULT 100
#define USAGE_LIMIT_MAX 1000
extern const char MSG_USAGE_LIMIT_BAD[];
extern const char MSG_USAGE_CURSOR_BAD[];
extern const char MSG_USAGE_DAY_BAD[];
struct usage_page {
    long limit;
    char day[USAGE_DAY_LEN + 1];            /* only that day; "" = every day */
    /* the cursor: the page begins after this member of this day ("": at
     * the newest day's first) */
    char after_day[USAGE_DAY_LEN + 1];
    char after_member[KEYS_MAX_SUBJECT];
};
/* The first page of every day, USAGE_LIMIT_DEFAULT rows. */
void usage_page_init(struct usage_page *p);
/* Each sets one field from a query parameter's value: NULL, or why the
 * value is not acceptable (limit: 1 to USAGE_LIMIT_MAX; cursor: a "next" of
 * a reply; day: YYYY-MM-DD). */
const char *usage_page_limit(struct usage_page *p, const char *value);
const char *usage_page_cursor(struct usage_page *p, const char *value);
const char *usage_page_day(struct usage_page *p, const char *value);

/* Reading a page of the counts of the last days of one member, or of every
 * member: one EVAL, whose work is bounded by the days and the limit. */
extern const char usage_read_lua[];
struct usage_read {
    int argc;
    const char *argv[USAGE_MAX_DAYS + 8];
    char day[USAGE_MAX_DAYS][USAGE_DAY_LEN + 1];
    char limit[24];
};
/* member NULL: every member. days: how many days back from now_ms's day.
 * -1 when days or the page's limit is out of bounds. */
int usage_read_argv(struct usage_read *u, const struct keys *k, const char *member, long days,
                    long long now_ms, const struct usage_page *page);
/* The reply as {"usage":[{"day":…,"user":<sub> or null for anonymous,
 * "prompt_tokens":n,"completion_tokens":n,"answers":n},…]}, with
 * ,"next":"<cursor>" before the } when more rows may remain; -1 when the
 * reply has another shape or out of memory. */
int usage_json(struct buf *out, const redisReply *r);

#endif
