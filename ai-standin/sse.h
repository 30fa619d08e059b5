/* sse.h -- what the stand-in sends for a chat-completions request, as bytes:
 * the Server-Sent Events of a streamed answer (with the effects of the
 * stream directives: @@malformed, @@error, @@cut), the chat.completion
 * object of a non-streamed one, and OpenAI-style error bodies. No I/O: every
 * function appends to a buffer the caller sends. */
#ifndef AIMSG_STANDIN_SSE_H
#define AIMSG_STANDIN_SSE_H

#include <stddef.h>

#include "buf.h"
#include "script.h"

/* One streamed answer. */
struct stream {
    const struct answer *ans;
    struct buf head;            /* {"id":...,"model":..., shared by all events */
    int chunked;                /* frame events as HTTP/1.1 chunks */
    size_t next_token;
    int malformed_sent;
};

enum stream_step {
    STREAM_MORE,                /* more to come */
    STREAM_DONE,                /* the whole answer and [DONE] are out */
    STREAM_DONE_CLOSE,          /* ended by @@error: close after sending */
    STREAM_CUT,                 /* @@cut: close now, mid-answer */
};

/* The opening comment and the role delta into out. Returns 0 or -1. */
int stream_start(struct stream *s, const struct answer *a, unsigned long long id,
                 long long created, int chunked, struct buf *out);

/* The next piece into out: a token, a directive's effect or the end.
 * Returns an enum stream_step, or -1 (memory). */
int stream_step(struct stream *s, struct buf *out);

void stream_free(struct stream *s);

/* The chat.completion object of a non-streamed answer into out. */
int completion_json(struct buf *out, const struct answer *a, unsigned long long id,
                    long long created);

/* {"error":{"message":...,"type":...,"param":...,"code":...}} into out;
 * param and code may be NULL (null). */
int error_json(struct buf *out, const char *message, const char *type, const char *param,
               const char *code);

#endif
