/* answer.c -- see answer.h. */
#define _POSIX_C_SOURCE 200809L
#include "answer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "redis_argv.h"

/* KEYS: answer stream, reply channel ('' = the job's own), answers index,
 *       jobs stream
 * ARGV: seq ('' = after the last), frame before seq, frame after seq,
 *       writer, final (1/0), ttl ms, job id, index min id, group, max frames,
 *       in-flight set prefix, owner (the reply channel a canceller must
 *       be the owner of; '' = anyone), cancels channel (a canceller's: told
 *       the id once the cancel is written; '' = none), conversation key
 *       prefix, the turn to store with a final frame ('' = none), max
 *       turns kept, conversation ttl ms, the usage day key to count a final
 *       frame under ('' = none: usage.h), member, prompt tokens,
 *       completion tokens, usage ttl ms */
const char answer_write_lua[] =
    USAGE_COUNT_LUA
    "local final = ARGV[5] == '1'\n"
    "local reply = KEYS[2]\n"
    "local jobf\n"
    "local function job()\n"
    "  if jobf == nil then\n"
    "    local e = redis.call('XRANGE', KEYS[4], ARGV[7], ARGV[7])[1]\n"
    "    jobf = e and e[2] or false\n"
    "  end\n"
    "  return jobf or {}\n"
    "end\n"
    "local function field(f, name)\n"
    "  for i = 1, #f, 2 do if f[i] == name then return f[i + 1] end end\n"
    "end\n"
    "local function ack()\n"
    "  local user, conv = field(job(), 'user'), field(job(), 'conv')\n"
    "  if user then redis.call('ZREM', ARGV[11] .. user, ARGV[7]) end\n"
    "  if conv then redis.call('LREM', ARGV[14] .. conv .. ':queue', 0, ARGV[7]) end\n"
    "  redis.pcall('XACK', KEYS[4], ARGV[9], ARGV[7])\n"
    "  redis.pcall('XDEL', KEYS[4], ARGV[7])\n"
    "end\n"
    "local function store_turn()\n"
    "  local conv = field(job(), 'conv')\n"
    "  if not conv then return end\n"
    "  local base = ARGV[14] .. conv\n"
    "  if redis.call('EXISTS', base .. ':owner') == 0 then return end\n"
    "  redis.call('RPUSH', base .. ':turns', ARGV[15])\n"
    "  redis.call('LTRIM', base .. ':turns', -tonumber(ARGV[16]), -1)\n"
    "  for _, s in ipairs({':owner', ':turns', ':queue'}) do\n"
    "    redis.call('PEXPIRE', base .. s, ARGV[17])\n"
    "  end\n"
    "end\n"
    "if ARGV[12] ~= '' then\n"
    "  local owner = field(job(), 'reply')\n"
    "  if not owner then\n"
    "    local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]\n"
    "    owner = first and field(first[2], 'r')\n"
    "  end\n"
    "  if owner ~= ARGV[12] then return -4 end\n"
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
    "if reply == '' then\n"
    "  reply = field(job(), 'reply')\n"
    "  if not reply or reply == '' then return -4 end\n"
    "  local image = field(job(), 'image')\n"
    "  if image and final then redis.call('UNLINK', image) end\n"
    "end\n"
    "local frame = ARGV[2] .. string.format('%d', seq) .. ARGV[3]\n"
    "local add = {'XADD', KEYS[1], 'MAXLEN', '~', ARGV[10], '0-' .. string.format('%d', seq + 1),\n"
    "             'f', frame, 'w', ARGV[4]}\n"
    "if final then add[#add + 1] = 'e'; add[#add + 1] = '1' end\n"
    "if seq == 0 then add[#add + 1] = 'r'; add[#add + 1] = reply end\n"
    "local ok = redis.pcall(unpack(add))\n"
    "if type(ok) == 'table' and ok.err then return -3 end\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[6])\n"
    "if seq == 0 then\n"
    "  redis.call('XADD', KEYS[3], 'MINID', '~', ARGV[8], '*', 'id', ARGV[7], 'reply', reply)\n"
    "end\n"
    "redis.call('PUBLISH', reply, frame)\n"
    "if final and ARGV[15] ~= '' then store_turn() end\n"
    "if final and ARGV[18] ~= '' then\n"
    "  count_usage(ARGV[18], ARGV[19], ARGV[20], ARGV[21], ARGV[22])\n"
    "end\n"
    "if final then ack() end\n"
    "if ARGV[13] ~= '' then redis.call('PUBLISH', ARGV[13], ARGV[7]) end\n"
    "return seq\n";

/* KEYS: answer stream, jobs stream
 * ARGV: job id, first entry id to read, count */
const char answer_read_lua[] =
    "local reply = false\n"
    "local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]\n"
    "if first then\n"
    "  local f = first[2]\n"
    "  for i = 1, #f, 2 do if f[i] == 'r' then reply = f[i + 1] end end\n"
    "end\n"
    "if not reply then\n"
    "  local job = redis.call('XRANGE', KEYS[2], ARGV[1], ARGV[1])[1]\n"
    "  if job then\n"
    "    local f = job[2]\n"
    "    for i = 1, #f, 2 do if f[i] == 'reply' then reply = f[i + 1] end end\n"
    "  end\n"
    "end\n"
    "if not reply then return 0 end\n"
    "return {reply, redis.call('XRANGE', KEYS[1], ARGV[2], '+', 'COUNT', ARGV[3])}\n";

static int write_argv(struct answer_write *a, const struct script *sc, const struct keys *k,
                      const char *reply, const char *frame, size_t len, int append,
                      const char *writer, long ttl_seconds, long max_frames, const char *owner,
                      const char *cancels)
{
    struct frame_head h;
    if (frame_peek(frame, len, &h) != 0 || keys_answer(k, h.id, a->key, sizeof(a->key)) != 0)
        return -1;
    a->argc = 2;
    if (sc) {
        script_call_head(sc, a->argv, a->argvlen);
    } else {
        a->argc = 0;
        ARGV_STR(a, "EVAL");
        ARGV_ADD(a, answer_write_lua, sizeof(answer_write_lua) - 1);
    }
    ARGV_STR(a, "4");
    ARGV_STR(a, a->key);
    ARGV_STR(a, reply);
    ARGV_STR(a, k->answers);
    ARGV_STR(a, k->jobs);
    snprintf(a->seq, sizeof(a->seq), "%ld", h.seq);
    ARGV_STR(a, append ? "" : a->seq);
    ARGV_ADD(a, frame, h.seq_at);
    ARGV_ADD(a, frame + h.seq_end, len - h.seq_end);
    ARGV_STR(a, writer);
    snprintf(a->final, sizeof(a->final), "%d", frame_is_final(&h));
    ARGV_STR(a, a->final);
    snprintf(a->ttl, sizeof(a->ttl), "%lld", (long long)ttl_seconds * 1000);
    ARGV_STR(a, a->ttl);
    /* the job id as it stands in the frame: {"type":"T","id":"<here>" */
    ARGV_ADD(a, frame + strlen("{\"type\":\"\",\"id\":\"") + strlen(h.type), strlen(h.id));
    snprintf(a->minid, sizeof(a->minid), "%lld-0", clock_wall_ms() - (long long)ttl_seconds * 1000);
    ARGV_STR(a, a->minid);
    ARGV_STR(a, KEYS_GROUP);
    snprintf(a->maxlen, sizeof(a->maxlen), "%ld", max_frames);
    ARGV_STR(a, a->maxlen);
    ARGV_STR(a, k->inflight_prefix);
    ARGV_STR(a, owner);
    ARGV_STR(a, cancels);
    ARGV_STR(a, k->conv_prefix);
    a->turn_at = a->argc;
    ARGV_STR(a, "");     /* the turn: answer_write_turn */
    ARGV_STR(a, "0");
    ARGV_STR(a, "0");
    a->usage_at = a->argc;
    ARGV_STR(a, "");     /* the usage: answer_write_usage */
    ARGV_STR(a, "");
    ARGV_STR(a, "0");
    ARGV_STR(a, "0");
    ARGV_STR(a, "0");
    return 0;
}

static void set_arg(struct answer_write *a, int at, const char *s)
{
    a->argv[at] = s;
    a->argvlen[at] = strlen(s);
}

int answer_write_usage(struct answer_write *a, const struct keys *k, const char *day,
                       const char *member, const struct usage *u, long ttl_seconds)
{
    if (a->argc < 5 || usage_day_key(k, day, a->usage_day, sizeof(a->usage_day)) != 0)
        return -1;
    int known = u && usage_known(u);
    snprintf(a->prompt, sizeof(a->prompt), "%ld", known ? u->prompt_tokens : 0L);
    snprintf(a->completion, sizeof(a->completion), "%ld", known ? u->completion_tokens : 0L);
    snprintf(a->usage_ttl, sizeof(a->usage_ttl), "%lld", (long long)ttl_seconds * 1000);
    set_arg(a, a->usage_at, a->usage_day);
    set_arg(a, a->usage_at + 1, member);
    set_arg(a, a->usage_at + 2, a->prompt);
    set_arg(a, a->usage_at + 3, a->completion);
    set_arg(a, a->usage_at + 4, a->usage_ttl);
    return 0;
}

int answer_write_turn(struct answer_write *a, const char *turn, size_t len, long max_turns,
                      long ttl_seconds)
{
    if (a->argc < 4 || !len)
        return -1;
    a->argv[a->turn_at] = turn;
    a->argvlen[a->turn_at] = len;
    snprintf(a->max_turns, sizeof(a->max_turns), "%ld", max_turns);
    set_arg(a, a->turn_at + 1, a->max_turns);
    snprintf(a->conv_ttl, sizeof(a->conv_ttl), "%lld", (long long)ttl_seconds * 1000);
    set_arg(a, a->turn_at + 2, a->conv_ttl);
    return 0;
}

int answer_write_argv(struct answer_write *a, const struct script *sc, const struct keys *k,
                      const char *reply, const char *frame, size_t len, int append,
                      const char *writer, long ttl_seconds, long max_frames)
{
    return write_argv(a, sc, k, reply, frame, len, append, writer, ttl_seconds, max_frames, "",
                      "");
}

int answer_cancel_argv(struct answer_write *a, const struct keys *k, const char *id,
                       const char *owner, struct buf *frame, long ttl_seconds, long max_frames)
{
    if (!answer_id_valid(id) || frame_cancelled(frame, id, 0) != 0)
        return -1;
    return write_argv(a, NULL, k, "", frame->data, frame->len, 1, "cancel", ttl_seconds,
                      max_frames, owner ? owner : "", k->cancels);
}

int answer_may_read(const char *channel, const struct keys *k, const char *owner)
{
    return !owner || strcmp(channel, owner) == 0 || strcmp(channel, k->broadcast) == 0;
}

const char *answer_refusal_message(long result)
{
    switch (result) {
    case ANSWER_ENDED:
        return "回答已结束 (that answer has already ended)";
    case ANSWER_UNKNOWN:
        return "没有这个回答 (no such answer, or it has expired)";
    default:
        return "操作失败，请重试 (that did not work, try again)";
    }
}

int answer_id_valid(const char *id)
{
    size_t i = 0, digits = 0;
    while (id[i] >= '0' && id[i] <= '9')
        i++, digits++;
    if (!digits || digits > 20 || id[i++] != '-')
        return 0;
    for (digits = 0; id[i] >= '0' && id[i] <= '9'; i++)
        digits++;
    return digits && digits <= 20 && id[i] == '\0';
}

int answer_read_argv(struct answer_read *a, const struct keys *k, const char *id,
                     long after_seq, long count)
{
    if (!answer_id_valid(id) || keys_answer(k, id, a->key, sizeof(a->key)) != 0)
        return -1;
    snprintf(a->id, sizeof(a->id), "%s", id);
    answer_range_start(after_seq, a->start, sizeof(a->start));
    snprintf(a->count, sizeof(a->count), "%ld", count);
    const char *argv[] = {"EVAL", answer_read_lua, "2", a->key, k->jobs, a->id, a->start, a->count};
    a->argc = 0;
    for (size_t i = 0; i < sizeof(argv) / sizeof(argv[0]); i++)
        ARGV_STR(a, argv[i]);
    return 0;
}

int answer_read_reply(const redisReply *r, const char **channel, const redisReply **entries)
{
    if (r->type == REDIS_REPLY_INTEGER && r->integer == 0)
        return ANSWER_UNKNOWN;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY)
        return -1;
    *channel = r->element[0]->str;
    *entries = r->element[1];
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
