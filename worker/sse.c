/* sse.c -- see sse.h. */
#include "sse.h"

#include <string.h>

void sse_init(struct sse *s)
{
    memset(s, 0, sizeof(*s));
}

void sse_free(struct sse *s)
{
    buf_free(&s->line);
    buf_free(&s->data);
}

static int dispatch(struct sse *s, sse_event_fn *fn, void *ctx)
{
    if (!s->have_data)
        return 0;
    s->have_data = 0;
    int rc = fn(ctx, s->data.data, s->data.len);
    buf_reset(&s->data);
    return rc;
}

static int process_line(struct sse *s, sse_event_fn *fn, void *ctx)
{
    const char *line = s->line.data ? s->line.data : "";
    size_t len = s->line.len;
    if (len == 0)
        return dispatch(s, fn, ctx);
    if (line[0] == ':')
        return 0;
    const char *colon = memchr(line, ':', len);
    size_t name_len = colon ? (size_t)(colon - line) : len;
    if (name_len != 4 || memcmp(line, "data", 4) != 0)
        return 0; /* event:, id:, retry: and unknown fields carry nothing we use */
    const char *value = colon ? colon + 1 : line + len;
    if (value < line + len && *value == ' ')
        value++;
    if (s->have_data && buf_append(&s->data, "\n", 1) != 0)
        return -1;
    s->have_data = 1;
    return buf_append(&s->data, value, (size_t)(line + len - value));
}

int sse_feed(struct sse *s, const char *p, size_t n, sse_event_fn *fn, void *ctx)
{
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '\n' && s->after_cr) {
            s->after_cr = 0;
            continue;
        }
        s->after_cr = c == '\r';
        if (c == '\r' || c == '\n') {
            int rc = process_line(s, fn, ctx);
            buf_reset(&s->line);
            if (rc != 0)
                return -1;
            continue;
        }
        /* copy the run up to the next line end in one go */
        size_t j = i;
        while (j < n && p[j] != '\r' && p[j] != '\n')
            j++;
        if (s->line.len + (j - i) > SSE_MAX_LINE || buf_append(&s->line, p + i, j - i) != 0)
            return -1;
        i = j - 1;
    }
    return 0;
}
