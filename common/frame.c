/* frame.c -- see frame.h. */
#include "frame.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"

static int head(struct buf *out, const char *type, const char *id, long seq)
{
    buf_reset(out);
    return buf_puts(out, "{\"type\":\"") | buf_puts(out, type) | buf_puts(out, "\",\"id\":") |
           buf_json_string(out, id, strlen(id)) | buf_printf(out, ",\"seq\":%ld", seq);
}

int frame_chunk(struct buf *out, const char *id, long seq, const char *text, size_t len)
{
    return head(out, "text", id, seq) | buf_puts(out, ",\"content\":") |
           buf_json_string(out, text, len) | buf_printf(out, ",\"ts\":%lld}", clock_wall_us());
}

int frame_done(struct buf *out, const char *id, long seq)
{
    return head(out, "done", id, seq) | buf_printf(out, ",\"ts\":%lld}", clock_wall_us());
}

int frame_done_by(struct buf *out, const char *id, long seq, const char *model, int fallback,
                  const struct usage *u)
{
    int rc = head(out, "done", id, seq) | buf_printf(out, ",\"ts\":%lld", clock_wall_us()) |
             buf_puts(out, ",\"model\":") | buf_json_string(out, model, strlen(model)) |
             buf_printf(out, ",\"fallback\":%s", fallback ? "true" : "false");
    if (u && usage_known(u))
        rc |= buf_printf(out, ",\"usage\":{\"prompt_tokens\":%ld,\"completion_tokens\":%ld}",
                         u->prompt_tokens, u->completion_tokens);
    return rc | buf_puts(out, "}");
}

int frame_cancelled(struct buf *out, const char *id, long seq)
{
    return head(out, "cancelled", id, seq) | buf_printf(out, ",\"ts\":%lld}", clock_wall_us());
}

int frame_error(struct buf *out, const char *id, long seq, const char *message)
{
    return head(out, "error", id, seq) | buf_puts(out, ",\"content\":") |
           buf_json_string(out, message, strlen(message)) | buf_puts(out, "}");
}

int frame_reject(struct buf *out, const char *message)
{
    buf_reset(out);
    return buf_puts(out, "{\"type\":\"error\",\"content\":") |
           buf_json_string(out, message, strlen(message)) | buf_puts(out, "}");
}

int frame_reject_code(struct buf *out, int code, const char *message)
{
    buf_reset(out);
    return buf_printf(out, "{\"type\":\"error\",\"code\":%d,\"content\":", code) |
           buf_json_string(out, message, strlen(message)) | buf_puts(out, "}");
}

int frame_authenticated(struct buf *out, const char *user, long long exp)
{
    buf_reset(out);
    return buf_puts(out, "{\"type\":\"authenticated\",\"user\":") |
           buf_json_string(out, user, strlen(user)) |
           buf_printf(out, ",\"exp\":%lld}", exp);
}

int frame_queued(struct buf *out, const char *id, const char *conversation)
{
    buf_reset(out);
    int rc = buf_puts(out, "{\"type\":\"queued\",\"id\":") | buf_json_string(out, id, strlen(id));
    if (conversation && conversation[0])
        rc |= buf_puts(out, ",\"conversation\":") |
              buf_json_string(out, conversation, strlen(conversation));
    return rc | buf_puts(out, "}");
}

/* Copies the plain (escape-free) JSON string at *p into dst; -1 otherwise. */
static int plain_string(const char **p, const char *end, char *dst, size_t cap)
{
    const char *s = *p;
    if (s >= end || *s++ != '"')
        return -1;
    size_t n = 0;
    while (s < end && *s != '"') {
        if (*s == '\\' || n + 1 >= cap)
            return -1;
        dst[n++] = *s++;
    }
    if (s >= end || n == 0)
        return -1;
    dst[n] = '\0';
    *p = s + 1;
    return 0;
}

static int literal(const char **p, const char *end, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(end - *p) < n || memcmp(*p, lit, n) != 0)
        return -1;
    *p += n;
    return 0;
}

int frame_peek(const char *data, size_t len, struct frame_head *h)
{
    const char *p = data, *end = data + len;
    if (literal(&p, end, "{\"type\":") || plain_string(&p, end, h->type, sizeof(h->type)) ||
        literal(&p, end, ",\"id\":") || plain_string(&p, end, h->id, sizeof(h->id)) ||
        literal(&p, end, ",\"seq\":"))
        return -1;
    h->seq_at = (size_t)(p - data);
    long seq = 0;
    while (p < end && *p >= '0' && *p <= '9' && seq < 1000000000L)
        seq = seq * 10 + (*p++ - '0');
    h->seq_end = (size_t)(p - data);
    if (h->seq_end == h->seq_at || p >= end || (*p != ',' && *p != '}'))
        return -1;
    h->seq = seq;
    return 0;
}

int frame_is_final(const struct frame_head *h)
{
    return strcmp(h->type, "done") == 0 || strcmp(h->type, "error") == 0 ||
           strcmp(h->type, "cancelled") == 0;
}
