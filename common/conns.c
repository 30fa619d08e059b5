/* conns.c -- see conns.h. */
#include "conns.h"

#define NOW "local t = redis.call('TIME')\n" \
            "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"

const char conns_admit_lua[] =
    NOW
    "local limit, stale = tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - stale)\n"
    "if limit > 0 and redis.call('ZCARD', KEYS[1]) >= limit then return 0 end\n"
    "redis.call('ZADD', KEYS[1], now, ARGV[1])\n"
    "redis.call('PEXPIRE', KEYS[1], stale * 2)\n"
    "return 1\n";

const char conns_refresh_lua[] =
    NOW
    "local args = {'ZADD', KEYS[1]}\n"
    "for i = 2, #ARGV do args[#args + 1] = now; args[#args + 1] = ARGV[i] end\n"
    "if #ARGV > 1 then redis.call(unpack(args)) end\n"
    "redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) * 2)\n"
    "return 1\n";

const char conns_count_lua[] =
    NOW
    "return redis.call('ZCOUNT', KEYS[1], now - tonumber(ARGV[1]), '+inf')\n";
