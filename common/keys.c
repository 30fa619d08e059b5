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
    if (strlen(prefix) >= sizeof(k->prefix) - 1)
        return -1;
    snprintf(k->prefix, sizeof(k->prefix), "%s", prefix);
    snprintf(k->jobs, sizeof(k->jobs), "%sjobs", prefix);
    snprintf(k->dead, sizeof(k->dead), "%sdead", prefix);
    snprintf(k->broadcast, sizeof(k->broadcast), "%sout:all", prefix);
    snprintf(k->instances, sizeof(k->instances), "%swspush", prefix);
    snprintf(k->presence_prefix, sizeof(k->presence_prefix), "%swspush:", prefix);
    return 0;
}

int keys_image(const struct keys *k, const char *token, char *buf, size_t len)
{
    return fits(snprintf(buf, len, "%simage:%s", k->prefix, token), len);
}

int keys_presence(const struct keys *k, const char *instance, char *buf, size_t len)
{
    return fits(snprintf(buf, len, "%s%s", k->presence_prefix, instance), len);
}

int keys_connection(const struct keys *k, const char *instance, unsigned long long conn,
                    char *buf, size_t len)
{
    return fits(snprintf(buf, len, "%sout:%s:%llu", k->prefix, instance, conn), len);
}

int keys_instance_pattern(const struct keys *k, const char *instance, char *buf, size_t len)
{
    return fits(snprintf(buf, len, "%sout:%s:*", k->prefix, instance), len);
}

const char keys_count_connections_lua[] =
    "local sum = 0\n"
    "for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"
    "  local n = redis.call('GET', ARGV[1] .. id)\n"
    "  if n then sum = sum + tonumber(n) else redis.call('SREM', KEYS[1], id) end\n"
    "end\n"
    "return sum\n";
