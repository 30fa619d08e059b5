/* usage.c -- see usage.h. */
#define _POSIX_C_SOURCE 200809L
#include "usage.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base64.h"

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

#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

const char MSG_USAGE_LIMIT_BAD[] = "limit 必须是 1 到 " STRINGIFY(USAGE_LIMIT_MAX) " 之间的整数 "
                                   "(\"limit\" must be an integer from 1 to "
                                   STRINGIFY(USAGE_LIMIT_MAX) ")";
const char MSG_USAGE_CURSOR_BAD[] = "cursor 无效，请原样传回上一页的 next "
                                    "(\"cursor\" must be a \"next\" of a previous page, as given)";
const char MSG_USAGE_DAY_BAD[] = "day 必须是 YYYY-MM-DD 格式的日期 (\"day\" must be a date: YYYY-MM-DD)";

void usage_page_init(struct usage_page *p)
{
    memset(p, 0, sizeof(*p));
    p->limit = USAGE_LIMIT_DEFAULT;
}

const char *usage_page_limit(struct usage_page *p, const char *value)
{
    char *end;
    errno = 0;
    long n = strtol(value, &end, 10);
    if (!isdigit((unsigned char)value[0]) || *end || errno || n < 1 || n > USAGE_LIMIT_MAX)
        return MSG_USAGE_LIMIT_BAD;
    p->limit = n;
    return NULL;
}

/* YYYY-MM-DD with a month 01-12 and a day 01-31 */
static int day_valid(const char *s, size_t len)
{
    static const char shape[] = "dddd-dd-dd";
    if (len != USAGE_DAY_LEN)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (shape[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != shape[i])
            return 0;
    int month = (s[5] - '0') * 10 + s[6] - '0', mday = (s[8] - '0') * 10 + s[9] - '0';
    return month >= 1 && month <= 12 && mday >= 1 && mday <= 31;
}

const char *usage_page_day(struct usage_page *p, const char *value)
{
    if (!day_valid(value, strlen(value)))
        return MSG_USAGE_DAY_BAD;
    memcpy(p->day, value, USAGE_DAY_LEN + 1);
    return NULL;
}

/* A member as the worker counts them (usage_member): anonymous or a user. */
static int member_valid(const char *s, size_t len)
{
    if (len >= KEYS_MAX_SUBJECT || memchr(s, '\0', len))
        return 0;
    if (len == strlen(USAGE_ANONYMOUS) && memcmp(s, USAGE_ANONYMOUS, len) == 0)
        return 1;
    char member[KEYS_MAX_SUBJECT];
    memcpy(member, s, len);
    member[len] = '\0';
    const char *sub = keys_subject_sub(member);
    return sub && sub[0];
}

/* A cursor is the day and member of the last member its page read, base64url
 * (RFC 4648 section 5) without padding: opaque to clients, safe in a URL. */
#define CURSOR_RAW_MAX (USAGE_DAY_LEN + KEYS_MAX_SUBJECT)
#define CURSOR_MAX ((CURSOR_RAW_MAX + 2) / 3 * 4)

static int cursor_json(struct buf *out, const char *day, size_t day_len, const char *member,
                       size_t member_len)
{
    unsigned char raw[CURSOR_RAW_MAX];
    if (day_len != USAGE_DAY_LEN || member_len > CURSOR_RAW_MAX - USAGE_DAY_LEN)
        return -1;
    memcpy(raw, day, day_len);
    memcpy(raw + day_len, member, member_len);
    struct buf b = BUF_INIT;
    int rc = base64_encode(&b, raw, day_len + member_len);
    for (size_t i = 0; rc == 0 && i < b.len; i++)
        b.data[i] = b.data[i] == '+' ? '-' : b.data[i] == '/' ? '_' : b.data[i];
    while (rc == 0 && b.len > 0 && b.data[b.len - 1] == '=')
        b.len--;
    if (rc == 0)
        rc = buf_puts(out, "\"") | buf_append(out, b.data, b.len) | buf_puts(out, "\"");
    buf_free(&b);
    return rc;
}

static int base64url_only(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
            return 0;
    return 1;
}

const char *usage_page_cursor(struct usage_page *p, const char *value)
{
    size_t len = strlen(value);
    struct buf raw = BUF_INIT;
    int ok = len > 0 && len <= CURSOR_MAX && base64url_only(value, len) &&
             base64_decode(&raw, value, len) == 0 && raw.len > USAGE_DAY_LEN &&
             day_valid(raw.data, USAGE_DAY_LEN) &&
             member_valid(raw.data + USAGE_DAY_LEN, raw.len - USAGE_DAY_LEN);
    if (ok) {
        memcpy(p->after_day, raw.data, USAGE_DAY_LEN);
        p->after_day[USAGE_DAY_LEN] = '\0';
        memcpy(p->after_member, raw.data + USAGE_DAY_LEN, raw.len - USAGE_DAY_LEN + 1);
    }
    buf_free(&raw);
    return ok ? NULL : MSG_USAGE_CURSOR_BAD;
}

/* ARGV: usage prefix, member ('' = every member), limit, the member the
 * first day's page begins after ('' = its first), days (newest first).
 * Returns {rows, resume}: rows [[day, member, prompt, completion, answers],
 * ...] of at most limit members read, resume {day, member} of the last one
 * read when more remain, else {}. Every member: each day's members by
 * ZRANGEBYLEX, at most limit + 1 in all (a member whose counts expired
 * before the day's set counts as read, without a row); one member: a row
 * per day it has counts. */
const char usage_read_lua[] =
    USAGE_SORTED_LUA
    "local prefix, only, limit, after = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]\n"
    "local rows, read, last = {}, 0, {}\n"
    "local function members(day, from, want)\n"
    "  if only ~= '' then\n"
    "    return redis.call('EXISTS', day .. ':' .. only) == 1 and {only} or {}\n"
    "  end\n"
    "  usage_sorted(day)\n"
    "  if from == '' then from = '-' else from = '(' .. from end\n"
    "  return redis.call('ZRANGEBYLEX', day, from, '+', 'LIMIT', 0, want)\n"
    "end\n"
    "for i = 5, #ARGV do\n"
    "  local day = prefix .. ARGV[i]\n"
    "  for _, m in ipairs(members(day, i == 5 and after or '', limit - read + 1)) do\n"
    "    if read == limit then return {rows, last} end\n"
    "    read = read + 1\n"
    "    last = {ARGV[i], m}\n"
    "    local h = redis.call('HMGET', day .. ':' .. m, 'prompt_tokens', 'completion_tokens', 'answers')\n"
    "    if h[3] then\n"
    "      rows[#rows + 1] = {ARGV[i], m, tonumber(h[1]) or 0, tonumber(h[2]) or 0, tonumber(h[3])}\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return {rows, {}}\n";

/* Whether the page reads member's (NULL: every member's) rows of day: the
 * day asked for, not after the cursor's day; of the cursor's day one
 * member's row only when it sorts after the cursor's member. */
static int page_reads_day(const struct usage_page *p, const char *member, const char *day)
{
    if (p->day[0] && strcmp(day, p->day) != 0)
        return 0;
    if (!p->after_day[0])
        return 1;
    int c = strcmp(day, p->after_day);
    return c < 0 || (c == 0 && (!member || strcmp(member, p->after_member) > 0));
}

int usage_read_argv(struct usage_read *u, const struct keys *k, const char *member, long days,
                    long long now_ms, const struct usage_page *page)
{
    if (days < 1 || days > USAGE_MAX_DAYS || page->limit < 1 || page->limit > USAGE_LIMIT_MAX)
        return -1;
    snprintf(u->limit, sizeof(u->limit), "%ld", page->limit);
    u->argc = 0;
    u->argv[u->argc++] = "EVAL";
    u->argv[u->argc++] = usage_read_lua;
    u->argv[u->argc++] = "0";
    u->argv[u->argc++] = k->usage_prefix;
    u->argv[u->argc++] = member ? member : "";
    u->argv[u->argc++] = u->limit;
    u->argv[u->argc++] = "";
    int first = u->argc, n = 0;
    for (long i = 0; i < days; i++) {
        usage_day(now_ms - i * 86400000LL, u->day[n]);
        if (page_reads_day(page, member, u->day[n]))
            u->argv[u->argc++] = u->day[n++];
    }
    if (!member && n > 0 && strcmp(u->argv[first], page->after_day) == 0)
        u->argv[first - 1] = page->after_member;
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

/* {} or {day, member} */
static int resume_valid(const redisReply *r)
{
    return r->type == REDIS_REPLY_ARRAY &&
           (r->elements == 0 || (r->elements == 2 && r->element[0]->type == REDIS_REPLY_STRING &&
                                 r->element[1]->type == REDIS_REPLY_STRING));
}

int usage_json(struct buf *out, const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_ARRAY || !resume_valid(r->element[1]))
        return -1;
    const redisReply *rows = r->element[0], *resume = r->element[1];
    int rc = buf_puts(out, "{\"usage\":[");
    for (size_t i = 0; rc == 0 && i < rows->elements; i++)
        rc = (i ? buf_puts(out, ",") : 0) | row_json(out, rows->element[i]);
    rc |= buf_puts(out, "]");
    if (rc == 0 && resume->elements == 2)
        rc = buf_puts(out, ",\"next\":") |
             cursor_json(out, resume->element[0]->str, resume->element[0]->len,
                         resume->element[1]->str, resume->element[1]->len);
    return rc | buf_puts(out, "}");
}
