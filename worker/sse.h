/* sse.h -- an incremental parser for text/event-stream (the WHATWG rules).
 *
 * Bytes are fed as they arrive, split anywhere; each complete event's data
 * (its data: lines joined by '\n') is handed to the callback. Lines may end
 * in "\n", "\r\n" or "\r"; comment lines (":...") and other fields are
 * skipped.
 *
 * Memory is bounded by max_event: an event whose data would grow past it,
 * or a line longer than it (plus room for a field name), stops the parse.
 * A stream that never sends the blank line ending an event is thus cut
 * off, not buffered for ever. */
#ifndef AIMSG_SSE_H
#define AIMSG_SSE_H

#include <stddef.h>
#include "buf.h"

#define SSE_LINE_SLACK 64   /* a line may be this much longer than max_event */

enum sse_status {
    SSE_OK = 0,
    SSE_STOPPED = -1,       /* the callback returned non-zero, or out of memory */
    SSE_TOO_BIG = -2,       /* an event or a line went over max_event */
};

/* Returns 0 to go on, non-zero to stop parsing. */
typedef int sse_event_fn(void *ctx, const char *data, size_t len);

struct sse {
    struct buf line;
    struct buf data;
    size_t max_event;       /* bytes of data one event may carry */
    int have_data;
    int after_cr;           /* last byte was '\r': a following '\n' is not a new line */
};

void sse_init(struct sse *s, size_t max_event);
/* Once it returned non-zero, the parser must not be fed again. */
enum sse_status sse_feed(struct sse *s, const char *p, size_t n, sse_event_fn *fn, void *ctx);
void sse_free(struct sse *s);

#endif
