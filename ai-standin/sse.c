/* sse.c -- the bytes of the stand-in's answers: SSE events of a stream,
 * the chat.completion object, error bodies. See sse.h. */
#define _POSIX_C_SOURCE 200809L
#include "sse.h"

#include <string.h>

/* Scratch for one event's JSON, reused by every stream (one thread). */
static struct buf event, delta;

/* Frames p[0..n) as one chunk of the body (or as is, without chunking). */
static int put_chunk(const struct stream *s, struct buf *out, const char *p, size_t n)
{
    if (!s->chunked)
        return buf_append(out, p, n);
    if (buf_printf(out, "%zx\r\n", n) != 0 || buf_append(out, p, n) != 0)
        return -1;
    return buf_append(out, "\r\n", 2);
}

/* "data: <event>\n\n" as one chunk. */
static int put_event(const struct stream *s, struct buf *out)
{
    if (s->chunked && buf_printf(out, "%zx\r\n", event.len + 8) != 0)
        return -1;
    if (buf_puts(out, "data: ") != 0 || buf_append(out, event.data, event.len) != 0)
        return -1;
    return buf_puts(out, s->chunked ? "\n\n\r\n" : "\n\n");
}

static int put_raw_event(const struct stream *s, struct buf *out, const char *data)
{
    buf_reset(&event);
    return buf_puts(&event, data) != 0 ? -1 : put_event(s, out);
}

/* A chat.completion.chunk with the given delta (raw JSON) and finish_reason. */
static int put_delta(const struct stream *s, struct buf *out, const char *d, size_t len,
                     const char *finish)
{
    buf_reset(&event);
    if (buf_append(&event, s->head.data, s->head.len) != 0 ||
        buf_puts(&event, "\"choices\":[{\"index\":0,\"delta\":") != 0 ||
        buf_append(&event, d, len) != 0 ||
        buf_printf(&event, ",\"finish_reason\":%s}]}", finish) != 0)
        return -1;
    return put_event(s, out);
}

static int put_token(const struct stream *s, struct buf *out, size_t i)
{
    char scratch[32];
    size_t n;
    const char *tok = answer_token(s->ans, i, scratch, &n);
    buf_reset(&delta);
    if (buf_puts(&delta, "{\"content\":") != 0 || buf_json_string(&delta, tok, n) != 0 ||
        buf_puts(&delta, "}") != 0)
        return -1;
    return put_delta(s, out, delta.data, delta.len, "null");
}

static int put_usage(const struct stream *s, struct buf *out)
{
    const struct answer *a = s->ans;
    buf_reset(&event);
    if (buf_append(&event, s->head.data, s->head.len) != 0 ||
        buf_printf(&event, "\"choices\":[],\"usage\":{\"prompt_tokens\":%zu,"
                           "\"completion_tokens\":%zu,\"total_tokens\":%zu}}",
                   a->prompt_tokens, a->ntokens, a->prompt_tokens + a->ntokens) != 0)
        return -1;
    return put_event(s, out);
}

static int put_end_of_body(const struct stream *s, struct buf *out)
{
    return s->chunked ? buf_puts(out, "0\r\n\r\n") : 0;
}

int stream_start(struct stream *s, const struct answer *a, unsigned long long id,
                 long long created, int chunked, struct buf *out)
{
    memset(s, 0, sizeof(*s));
    s->ans = a;
    s->chunked = chunked;
    if (buf_printf(&s->head, "{\"id\":\"chatcmpl-standin-%llu\",\"object\":"
                             "\"chat.completion.chunk\",\"created\":%lld,\"model\":",
                   id, created) != 0 ||
        buf_json_string(&s->head, a->model, strlen(a->model)) != 0 ||
        buf_puts(&s->head, ",") != 0)
        return -1;
    static const char role[] = "{\"role\":\"assistant\",\"content\":\"\"}";
    if (put_chunk(s, out, ": stand-in\n\n", 12) != 0 ||
        put_delta(s, out, role, sizeof(role) - 1, "null") != 0)
        return -1;
    return 0;
}

/* Where a directive "after N tokens" triggers: -1 never, else N capped. */
static long trigger_at(long n, size_t ntokens)
{
    if (n < 0)
        return -1;
    return (size_t)n > ntokens ? (long)ntokens : n;
}

int stream_step(struct stream *s, struct buf *out)
{
    const struct answer *a = s->ans;
    long i = (long)s->next_token;

    if (i == trigger_at(a->dir.malformed, a->ntokens) && !s->malformed_sent) {
        s->malformed_sent = 1;
        return put_raw_event(s, out, "{not json") != 0 ? -1 : STREAM_MORE;
    }
    if (i == trigger_at(a->dir.error, a->ntokens)) {
        if (put_raw_event(s, out, "{\"error\":{\"message\":\"stand-in error\","
                                  "\"type\":\"server_error\"}}") != 0 ||
            put_end_of_body(s, out) != 0)
            return -1;
        return STREAM_DONE_CLOSE;
    }
    if (i == trigger_at(a->dir.cut, a->ntokens))
        return STREAM_CUT; /* no [DONE], no last chunk: the client sees a cut */
    if (s->next_token < a->ntokens) {
        s->next_token++;
        return put_token(s, out, (size_t)i) != 0 ? -1 : STREAM_MORE;
    }
    if (put_delta(s, out, "{}", 2, "\"stop\"") != 0 ||
        (a->include_usage && put_usage(s, out) != 0) ||
        put_raw_event(s, out, "[DONE]") != 0 || put_end_of_body(s, out) != 0)
        return -1;
    return s->chunked ? STREAM_DONE : STREAM_DONE_CLOSE;
}

void stream_free(struct stream *s)
{
    buf_free(&s->head);
    if (event.cap > 64 * 1024)
        buf_free(&event);
}

int completion_json(struct buf *out, const struct answer *a, unsigned long long id,
                    long long created)
{
    struct buf text = BUF_INIT;
    int rc = -1;
    if (answer_text(a, &text) == 0 &&
        buf_printf(out, "{\"id\":\"chatcmpl-standin-%llu\",\"object\":\"chat.completion\","
                        "\"created\":%lld,\"model\":", id, created) == 0 &&
        buf_json_string(out, a->model, strlen(a->model)) == 0 &&
        buf_puts(out, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
                      "\"content\":") == 0 &&
        buf_json_string(out, text.data ? text.data : "", text.len) == 0 &&
        buf_printf(out, "},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":%zu,"
                        "\"completion_tokens\":%zu,\"total_tokens\":%zu}}",
                   a->prompt_tokens, a->ntokens, a->prompt_tokens + a->ntokens) == 0)
        rc = 0;
    buf_free(&text);
    return rc;
}

int error_json(struct buf *out, const char *message, const char *type, const char *param,
               const char *code)
{
    if (buf_puts(out, "{\"error\":{\"message\":") != 0 ||
        buf_json_string(out, message, strlen(message)) != 0 ||
        buf_printf(out, ",\"type\":\"%s\",\"param\":", type) != 0 ||
        (param ? buf_printf(out, "\"%s\"", param) : buf_puts(out, "null")) != 0 ||
        buf_puts(out, ",\"code\":") != 0 ||
        (code ? buf_printf(out, "\"%s\"", code) : buf_puts(out, "null")) != 0 ||
        buf_puts(out, "}}") != 0)
        return -1;
    return 0;
}
