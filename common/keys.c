/* keys.c -- see keys.h. */
#include "keys.h"

#include <stdio.h>
#include <string.h>

static int fits(int n, size_t len)
{
    return n >= 0 && (size_t)n < len ? 0 : -1;
}

int keys_init(struct keys *k, const char *prefix)
{
    memset(k, 0, sizeof(*k));
    if (strlen(prefix) > KEYS_MAX_PREFIX)
        return -1;
    snprintf(k->prefix, sizeof(k->prefix), "%s", prefix);
    snprintf(k->jobs, sizeof(k->jobs), "%sjobs", prefix);
    snprintf(k->dead, sizeof(k->dead), "%sdead", prefix);
    snprintf(k->answers, sizeof(k->answers), "%sanswers", prefix);
    snprintf(k->broadcast, sizeof(k->broadcast), "%sout:all", prefix);
    snprintf(k->instances, sizeof(k->instances), "%swspush", prefix);
    snprintf(k->cancels, sizeof(k->cancels), "%scancels", prefix);
    snprintf(k->presence_prefix, sizeof(k->presence_prefix), "%swspush:", prefix);
    snprintf(k->health, sizeof(k->health), "%shealth", prefix);
    snprintf(k->inbox_prefix, sizeof(k->inbox_prefix), "%sinbox:", prefix);
    snprintf(k->rate_prefix, sizeof(k->rate_prefix), "%srate:", prefix);
    snprintf(k->inflight_prefix, sizeof(k->inflight_prefix), "%sinflight:", prefix);
    snprintf(k->conns_prefix, sizeof(k->conns_prefix), "%sconns:", prefix);
    snprintf(k->metrics, sizeof(k->metrics), "%smetrics", prefix);
    snprintf(k->conv_prefix, sizeof(k->conv_prefix), "%sconv:", prefix);
    snprintf(k->usage_prefix, sizeof(k->usage_prefix), "%susage:", prefix);
    return 0;
}

#define SUBJECT_USER "user:"
#define SUBJECT_ADDR "addr:"

int keys_subject_user(const char *sub, char *buf, size_t len)
{
    return fits(snprintf(buf, len, SUBJECT_USER "%s", sub), len);
}

int keys_subject_addr(const char *addr, char *buf, size_t len)
{
    return fits(snprintf(buf, len, SUBJECT_ADDR "%s", addr), len);
}

int keys_subject_is_user(const char *subject)
{
    return strncmp(subject, SUBJECT_USER, strlen(SUBJECT_USER)) == 0;
}

const char *keys_subject_sub(const char *subject)
{
    return keys_subject_is_user(subject) ? subject + strlen(SUBJECT_USER) : NULL;
}

int keys_user_channel(const struct keys *k, const char *sub, char *buf, size_t len)
{
    return fits(snprintf(buf, len, "%s%s", k->inbox_prefix, sub), len);
}

const char *keys_user_of_channel(const struct keys *k, const char *channel)
{
    size_t n = strlen(k->inbox_prefix);
    return strncmp(channel, k->inbox_prefix, n) == 0 && channel[n] ? channel + n : NULL;
}

int keys_of_subject(const char *prefix, const char *subject, char *buf, size_t len)
{
    return fits(snprintf(buf, len, "%s%s", prefix, subject), len);
}

int keys_image(const struct keys *k, const char *token, char *buf, size_t len)
{
    return fits(snprintf(buf, len, "%simage:%s", k->prefix, token), len);
}

int keys_presence(const struct keys *k, const char *instance, char *buf, size_t len)
{
    return fits(snprintf(buf, len, "%s%s", k->presence_prefix, instance), len);
}

int keys_answer(const struct keys *k, const char *id, char *buf, size_t len)
{
    return fits(snprintf(buf, len, "%sanswer:%s", k->prefix, id), len);
}

int keys_connections(const struct keys *k, const char *instance, const char *run, char *buf,
                     size_t len)
{
    return fits(snprintf(buf, len, "%sout:%s:%s:", k->prefix, instance, run), len);
}

int keys_connection(const char *connections, uint64_t conn, char *buf, size_t len)
{
    return fits(snprintf(buf, len, "%s%llu", connections, (unsigned long long)conn), len);
}

uint64_t keys_connection_of(const char *connections, const char *channel)
{
    size_t n = strlen(connections);
    if (strncmp(channel, connections, n) != 0)
        return 0;
    const char *p = channel + n;
    uint64_t id = 0;
    if (!*p)
        return 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9' || id > (UINT64_MAX - 9) / 10)
            return 0;
        id = id * 10 + (uint64_t)(*p - '0');
    }
    return id;
}

const char keys_count_connections_lua[] =
    "local sum = 0\n"
    "for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"
    "  local n = redis.call('GET', ARGV[1] .. id)\n"
    "  if n then sum = sum + tonumber(n) else redis.call('SREM', KEYS[1], id) end\n"
    "end\n"
    "return sum\n";
