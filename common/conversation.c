/* conversation.c -- see conversation.h. */
#define _POSIX_C_SOURCE 200809L
#include "conversation.h"

#include <stdio.h>
#include <string.h>

#include "job.h"

const char MSG_CONVERSATION_BAD[] =
    "conversation 必须是会话编号 (\"conversation\" must be a conversation id: 32 hex digits)";
const char MSG_CONVERSATION_UNKNOWN[] = "没有这个会话 (no such conversation, or it has expired)";

const char *conversation_check(const char *s, size_t len)
{
    if (len != CONVERSATION_ID_LEN)
        return MSG_CONVERSATION_BAD;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return MSG_CONVERSATION_BAD;
    return NULL;
}

int conversation_new_id(char out[CONVERSATION_ID_LEN + 1])
{
    return job_new_token(out);
}

static int fits(int n, size_t len)
{
    return n >= 0 && (size_t)n < len ? 0 : -1;
}

int conversation_keys(const struct keys *k, const char *id, struct conversation_keys *ck)
{
    if (conversation_check(id, strlen(id)))
        return -1;
    return fits(snprintf(ck->owner, sizeof(ck->owner), "%s%s:owner", k->conv_prefix, id),
                sizeof(ck->owner)) |
           fits(snprintf(ck->turns, sizeof(ck->turns), "%s%s:turns", k->conv_prefix, id),
                sizeof(ck->turns)) |
           fits(snprintf(ck->queue, sizeof(ck->queue), "%s%s:queue", k->conv_prefix, id),
                sizeof(ck->queue));
}

int conversation_turn_json(struct buf *out, const char *job_id, int image, const char *question,
                           size_t question_len, const char *answer, size_t answer_len,
                           long long ts_ms)
{
    buf_reset(out);
    return buf_puts(out, "{\"id\":") | buf_json_string(out, job_id, strlen(job_id)) |
           buf_printf(out, ",\"kind\":\"%s\",\"question\":", image ? "image" : "text") |
           buf_json_string(out, question, question_len) | buf_puts(out, ",\"answer\":") |
           buf_json_string(out, answer, answer_len) | buf_printf(out, ",\"ts\":%lld}", ts_ms);
}

const char conversation_turn_lua[] =
    "local function id_less(a, b)\n"
    "  local am, as = string.match(a, '^(%d+)%-(%d+)$')\n"
    "  local bm, bs = string.match(b, '^(%d+)%-(%d+)$')\n"
    "  if not am or not bm then return false end\n"
    "  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)\n"
    "  return am < bm or (am == bm and as < bs)\n"
    "end\n"
    "while true do\n"
    "  local h = redis.call('LINDEX', KEYS[1], 0)\n"
    "  if not h or h == ARGV[1] then break end\n"
    "  if #redis.call('XRANGE', KEYS[2], h, h) == 1 then\n"
    "    if id_less(h, ARGV[1]) then return 0 end\n"
    "    break\n"
    "  end\n"
    "  redis.call('LPOP', KEYS[1])\n"
    "end\n"
    "for _, i in ipairs({1, 3, 4}) do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end\n"
    "return {redis.call('LRANGE', KEYS[3], 0, -1)}\n";

#define OWNED_BY_CALLER                                                   \
    "local owner = redis.call('GET', KEYS[1])\n"                          \
    "if not owner or (ARGV[1] ~= '' and owner ~= ARGV[1]) then return 0 end\n"

const char conversation_read_lua[] = OWNED_BY_CALLER
    "return {redis.call('LRANGE', KEYS[2], 0, -1)}\n";

const char conversation_forget_lua[] = OWNED_BY_CALLER
    "redis.call('DEL', KEYS[1], KEYS[2])\n"
    "return 1\n";
