/* sse.h -- an incremental parser for text/event-stream (the WHATWG rules).
 *
 * Bytes are fed as they arrive, split anywhere; each complete event's data
 * (its data: lines joined by '\n') is handed to the callback. Lines may end
 * in "\n", "\r\n" or "\r"; comment lines (":...") and other fields are
 * skipped. */
#ifndef AIMSG_SSE_H
#define AIMSG_SSE_H

#include <stddef.h>
#include "buf.h"

#define SSE_MAX_LINE (4 * 1024 * 1024)

/* Returns 0 to go on, -1 to stop parsing. */
typedef int sse_event_fn(void *ctx, const char *data, size_t len);

struct sse {
    struct buf line;
    struct buf data;
    int have_data;
    int after_cr;           /* last byte was '\r': a following '\n' is not a new line */
};

void sse_init(struct sse *s);
/* Returns 0, or -1 when the callback stopped or a line exceeded SSE_MAX_LINE. */
int sse_feed(struct sse *s, const char *p, size_t n, sse_event_fn *fn, void *ctx);
void sse_free(struct sse *s);

#endif
