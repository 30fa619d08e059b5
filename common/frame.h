/* frame.h -- the JSON frames a WebSocket client receives (docs/PROTOCOL.md).
 *
 * They are built once by the worker (or ws-push for its own replies) and
 * forwarded byte for byte, so each is encoded here and nowhere else. Every
 * frame of an answer starts with the same head, {"type":T,"id":I,"seq":N,
 * so that ws-push can route and de-duplicate it without parsing the JSON. */
#ifndef AIMSG_FRAME_H
#define AIMSG_FRAME_H

#include <stddef.h>
#include "buf.h"
#include "usage.h"

/* {"type":"text","id":…,"seq":n,"content":…,"ts":µs} */
int frame_chunk(struct buf *out, const char *id, long seq, const char *text, size_t len);
/* {"type":"done","id":…,"seq":n,"ts":µs} */
int frame_done(struct buf *out, const char *id, long seq);
/* The same, saying which model answered, whether it was the fallback
 * endpoint (ai_fallback_base_url) and, when the model reported it (u not
 * NULL and known), what the answer cost:
 * ...,"ts":…,"model":…,"fallback":false,"usage":{"prompt_tokens":n,"completion_tokens":n}} */
int frame_done_by(struct buf *out, const char *id, long seq, const char *model, int fallback,
                  const struct usage *u);
/* {"type":"cancelled","id":…,"seq":n,"ts":µs}: its asker stopped it. */
int frame_cancelled(struct buf *out, const char *id, long seq);
/* {"type":"error","id":…,"seq":n,"content":…}: answer id failed. */
int frame_error(struct buf *out, const char *id, long seq, const char *message);
/* {"type":"error","content":…}: about a message the client sent. */
int frame_reject(struct buf *out, const char *message);
/* {"type":"error","code":n,"content":…}: refused for a reason an HTTP
 * client would get status n for (401 token, 429 a quota). */
int frame_reject_code(struct buf *out, int code, const char *message);
/* {"type":"authenticated","user":…,"exp":s}: the socket's token was
 * accepted (exp 0: it does not expire). */
int frame_authenticated(struct buf *out, const char *user, long long exp);
/* {"type":"queued","id":…,"conversation":…}: a client's message became job
 * id, in that conversation (NULL or "": none, and no field) */
int frame_queued(struct buf *out, const char *id, const char *conversation);

/* The head of an answer frame. seq_at..seq_end is where the digits of seq
 * stand in the frame, so a writer can put another number there. */
struct frame_head {
    char type[16];
    char id[48];
    long seq;
    size_t seq_at, seq_end;
};

/* Reads the head of an answer frame; -1 when data does not start with one
 * (a frame built elsewhere, or not an answer's). */
int frame_peek(const char *data, size_t len, struct frame_head *h);
/* done, error and cancelled end an answer: nothing follows them. */
int frame_is_final(const struct frame_head *h);

#endif
