/* answer.c -- see answer.h. */
#define _POSIX_C_SOURCE 200809L
#include "answer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

/* KEYS: answer stream, reply channel, answers index, jobs stream
 * ARGV: seq ('' = after the last), frame before seq, frame after seq,
 *       writer, final (1/0), ttl ms, job id, index min id, group, max frames */
const char answer_write_lua[] =
    "local final = ARGV[5] == '1'\n"
    "local function ack()\n"
    "  redis.pcall('XACK', KEYS[4], ARGV[9], ARGV[7])\n"
    "  redis.pcall('XDEL', KEYS[4], ARGV[7])\n"
    "end\n"
    "local seq = tonumber(ARGV[1])\n"
    "local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]\n"
    "if last then\n"
    "  local f, writer, ended = last[2], nil, false\n"
    "  for i = 1, #f, 2 do\n"
    "    if f[i] == 'w' then writer = f[i + 1] elseif f[i] == 'e' then ended = true end\n"
    "  end\n"
    "  if ended then\n"
    "    if final then ack() end\n"
    "    return -1\n"
    "  end\n"
    "  if seq == nil then\n"
    "    seq = tonumber(string.match(last[1], '%-(%d+)$'))\n"
    "  elseif writer ~= ARGV[4] then\n"
    "    return -2\n"
    "  end\n"
    "elseif seq == nil then\n"
    "  seq = 0\n"
    "end\n"
    "local frame = ARGV[2] .. string.format('%d', seq) .. ARGV[3]\n"
    "local add = {'XADD', KEYS[1], 'MAXLEN', '~', ARGV[10], '0-' .. string.format('%d', seq + 1),\n"
    "             'f', frame, 'w', ARGV[4]}\n"
    "if final then add[#add + 1] = 'e'; add[#add + 1] = '1' end\n"
    "local ok = redis.pcall(unpack(add))\n"
    "if type(ok) == 'table' and ok.err then return -3 end\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[6])\n"
    "if seq == 0 then\n"
    "  redis.call('XADD', KEYS[3], 'MINID', '~', ARGV[8], '*', 'id', ARGV[7], 'reply', KEYS[2])\n"
    "end\n"
    "redis.call('PUBLISH', KEYS[2], frame)\n"
    "if final then ack() end\n"
    "return seq\n";

static void arg(struct answer_write *a, const char *s, size_t n)
{
    a->argv[a->argc] = s;
    a->argvlen[a->argc++] = n;
}

#define ARG(a, s) arg(a, s, strlen(s))

int answer_write_argv(struct answer_write *a, const char *sha, const struct keys *k,
                      const char *reply, const char *frame, size_t len, int append,
                      const char *writer, long ttl_seconds, long max_frames)
{
    struct frame_head h;
    if (frame_peek(frame, len, &h) != 0 || keys_answer(k, h.id, a->key, sizeof(a->key)) != 0)
        return -1;
    a->argc = 0;
    ARG(a, "EVALSHA");
    ARG(a, sha);
    ARG(a, "4");
    ARG(a, a->key);
    ARG(a, reply);
    ARG(a, k->answers);
    ARG(a, k->jobs);
    snprintf(a->seq, sizeof(a->seq), "%ld", h.seq);
    ARG(a, append ? "" : a->seq);
    arg(a, frame, h.seq_at);
    arg(a, frame + h.seq_end, len - h.seq_end);
    ARG(a, writer);
    snprintf(a->final, sizeof(a->final), "%d", frame_is_final(&h));
    ARG(a, a->final);
    snprintf(a->ttl, sizeof(a->ttl), "%lld", (long long)ttl_seconds * 1000);
    ARG(a, a->ttl);
    /* the job id as it stands in the frame: {"type":"T","id":"<here>" */
    arg(a, frame + strlen("{\"type\":\"\",\"id\":\"") + strlen(h.type), strlen(h.id));
    snprintf(a->minid, sizeof(a->minid), "%lld-0", clock_wall_ms() - (long long)ttl_seconds * 1000);
    ARG(a, a->minid);
    ARG(a, KEYS_GROUP);
    snprintf(a->maxlen, sizeof(a->maxlen), "%ld", max_frames);
    ARG(a, a->maxlen);
    return 0;
}

int answer_entry(const redisReply *e, long *seq, const char **frame, size_t *len)
{
    if (!e || e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_ARRAY)
        return -1;
    const char *dash = strchr(e->element[0]->str, '-');
    if (!dash)
        return -1;
    *seq = strtol(dash + 1, NULL, 10) - 1;
    const redisReply *f = e->element[1];
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        if (f->element[i]->type == REDIS_REPLY_STRING && strcmp(f->element[i]->str, "f") == 0 &&
            f->element[i + 1]->type == REDIS_REPLY_STRING) {
            *frame = f->element[i + 1]->str;
            *len = f->element[i + 1]->len;
            return *seq >= 0 ? 0 : -1;
        }
    }
    return -1;
}

void answer_range_start(long after_seq, char *buf, size_t len)
{
    snprintf(buf, len, "0-%ld", after_seq + 2);
}
