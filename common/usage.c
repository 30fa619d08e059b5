/* usage.c -- see usage.h. */
#define _POSIX_C_SOURCE 200809L
#include "usage.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int usage_known(const struct usage *u)
{
    return u->prompt_tokens >= 0 && u->completion_tokens >= 0;
}

const char *usage_member(const char *subject)
{
    return subject && keys_subject_is_user(subject) ? subject : USAGE_ANONYMOUS;
}

void usage_day(long long wall_ms, char out[USAGE_DAY_LEN + 1])
{
    time_t secs = (time_t)(wall_ms / 1000);
    struct tm tm;
    if (!gmtime_r(&secs, &tm) || strftime(out, USAGE_DAY_LEN + 1, "%Y-%m-%d", &tm) == 0)
        snprintf(out, USAGE_DAY_LEN + 1, "1970-01-01");
}

int usage_day_key(const struct keys *k, const char *day, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s%s", k->usage_prefix, day);
    return n >= 0 && (size_t)n < len ? 0 : -1;
}

/* ARGV: usage prefix, member ('' = every member), days (newest first).
 * Returns [[day, member, prompt, completion, answers], ...]. */
const char usage_read_lua[] =
    "local out = {}\n"
    "for i = 3, #ARGV do\n"
    "  local day = ARGV[1] .. ARGV[i]\n"
    "  local members = {ARGV[2]}\n"
    "  if ARGV[2] == '' then\n"
    "    members = redis.call('SMEMBERS', day)\n"
    "    table.sort(members)\n"
    "  end\n"
    "  for _, m in ipairs(members) do\n"
    "    local h = redis.call('HMGET', day .. ':' .. m, 'prompt_tokens', 'completion_tokens', 'answers')\n"
    "    if h[3] then\n"
    "      out[#out + 1] = {ARGV[i], m, tonumber(h[1]) or 0, tonumber(h[2]) or 0, tonumber(h[3])}\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return out\n";

int usage_read_argv(struct usage_read *u, const struct keys *k, const char *member, long days,
                    long long now_ms)
{
    if (days < 1 || days > USAGE_MAX_DAYS)
        return -1;
    u->argc = 0;
    u->argv[u->argc++] = "EVAL";
    u->argv[u->argc++] = usage_read_lua;
    u->argv[u->argc++] = "0";
    u->argv[u->argc++] = k->usage_prefix;
    u->argv[u->argc++] = member ? member : "";
    for (long i = 0; i < days; i++) {
        usage_day(now_ms - i * 86400000LL, u->day[i]);
        u->argv[u->argc++] = u->day[i];
    }
    return 0;
}

static int row_json(struct buf *out, const redisReply *row)
{
    if (row->type != REDIS_REPLY_ARRAY || row->elements != 5 ||
        row->element[0]->type != REDIS_REPLY_STRING || row->element[1]->type != REDIS_REPLY_STRING)
        return -1;
    for (size_t i = 2; i < 5; i++)
        if (row->element[i]->type != REDIS_REPLY_INTEGER)
            return -1;
    const char *member = row->element[1]->str, *sub = keys_subject_sub(member);
    int rc = buf_puts(out, "{\"day\":") |
             buf_json_string(out, row->element[0]->str, row->element[0]->len) |
             buf_puts(out, ",\"user\":");
    rc |= sub ? buf_json_string(out, sub, strlen(sub)) : buf_puts(out, "null");
    return rc | buf_printf(out, ",\"prompt_tokens\":%lld,\"completion_tokens\":%lld,"
                                "\"answers\":%lld}", row->element[2]->integer,
                           row->element[3]->integer, row->element[4]->integer);
}

int usage_json(struct buf *out, const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY)
        return -1;
    int rc = buf_puts(out, "{\"usage\":[");
    for (size_t i = 0; rc == 0 && i < r->elements; i++)
        rc = (i ? buf_puts(out, ",") : 0) | row_json(out, r->element[i]);
    return rc | buf_puts(out, "]}");
}
