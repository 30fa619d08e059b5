/* frame.h -- the JSON frames a WebSocket client receives (docs/PROTOCOL.md).
 *
 * They are built once by the worker (or ws-push for its own errors) and
 * forwarded byte for byte, so each is encoded here and nowhere else. */
#ifndef AIMSG_FRAME_H
#define AIMSG_FRAME_H

#include <stddef.h>
#include "buf.h"

/* {"type":"text","content":…,"id":…,"seq":n,"ts":µs} */
int frame_chunk(struct buf *out, const char *id, long seq, const char *text, size_t len);
/* {"type":"done","id":…,"seq":n,"ts":µs} */
int frame_done(struct buf *out, const char *id, long seq);
/* {"type":"error","content":…[,"id":…]} (id may be NULL) */
int frame_error(struct buf *out, const char *id, const char *message);
/* {"type":"queued","id":…}: a client's message became job id */
int frame_queued(struct buf *out, const char *id);

long long frame_now_us(void);

#endif
