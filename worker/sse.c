/* sse.c -- see sse.h. */
#include "sse.h"

#include <string.h>

void sse_init(struct sse *s, size_t max_event)
{
    memset(s, 0, sizeof(*s));
    s->max_event = max_event;
}

void sse_free(struct sse *s)
{
    buf_free(&s->line);
    buf_free(&s->data);
}

static enum sse_status dispatch(struct sse *s, sse_event_fn *fn, void *ctx)
{
    if (!s->have_data)
        return SSE_OK;
    s->have_data = 0;
    int rc = fn(ctx, s->data.data, s->data.len);
    buf_reset(&s->data);
    return rc ? SSE_STOPPED : SSE_OK;
}

static enum sse_status process_line(struct sse *s, sse_event_fn *fn, void *ctx)
{
    const char *line = s->line.data ? s->line.data : "";
    size_t len = s->line.len;
    if (len == 0)
        return dispatch(s, fn, ctx);
    if (line[0] == ':')
        return SSE_OK;
    const char *colon = memchr(line, ':', len);
    size_t name_len = colon ? (size_t)(colon - line) : len;
    if (name_len != 4 || memcmp(line, "data", 4) != 0)
        return SSE_OK; /* event:, id:, retry: and unknown fields carry nothing we use */
    const char *value = colon ? colon + 1 : line + len;
    if (value < line + len && *value == ' ')
        value++;
    size_t value_len = (size_t)(line + len - value);
    if (s->data.len + (s->have_data ? 1 : 0) + value_len > s->max_event)
        return SSE_TOO_BIG;
    if (s->have_data && buf_append(&s->data, "\n", 1) != 0)
        return SSE_STOPPED;
    s->have_data = 1;
    return buf_append(&s->data, value, value_len) == 0 ? SSE_OK : SSE_STOPPED;
}

enum sse_status sse_feed(struct sse *s, const char *p, size_t n, sse_event_fn *fn, void *ctx)
{
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '\n' && s->after_cr) {
            s->after_cr = 0;
            continue;
        }
        s->after_cr = c == '\r';
        if (c == '\r' || c == '\n') {
            enum sse_status rc = process_line(s, fn, ctx);
            buf_reset(&s->line);
            if (rc != SSE_OK)
                return rc;
            continue;
        }
        /* copy the run up to the next line end in one go */
        size_t j = i;
        while (j < n && p[j] != '\r' && p[j] != '\n')
            j++;
        if (s->line.len + (j - i) > s->max_event + SSE_LINE_SLACK)
            return SSE_TOO_BIG;
        if (buf_append(&s->line, p + i, j - i) != 0)
            return SSE_STOPPED;
        i = j - 1;
    }
    return SSE_OK;
}
