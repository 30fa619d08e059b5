/* answer.h -- an answer's history in Redis, the contract between the worker
 * (the only writer) and whoever reads it (ws-push catching up, fcgi-api).
 *
 *   P answer:<id>  stream, one entry per frame: id 0-<seq+1>,
 *                  fields f <frame JSON>, w <writer>, and e 1 on the last
 *   P answers      stream, one entry per answer begun: id <job id>,
 *                  reply <channel>; trimmed to the last answer_ttl seconds
 *
 * A frame is stored, published and (for the last one) its job acknowledged
 * by one Lua script, so the history never misses a frame that was published
 * and a subscriber that was not listening can read what it missed. The
 * script also refuses frames after the last one and frames of a second
 * writer (a worker that was thought dead), so an answer is never mixed from
 * two model calls. See docs/PROTOCOL.md. */
#ifndef AIMSG_ANSWER_H
#define AIMSG_ANSWER_H

#include <stddef.h>
#include <hiredis/hiredis.h>

#include "frame.h"
#include "keys.h"

extern const char answer_write_lua[];

/* What the script returns besides the seq it wrote (>= 0). */
enum answer_refusal {
    ANSWER_ENDED = -1,      /* the answer already has its last frame */
    ANSWER_FOREIGN = -2,    /* another writer owns it */
    ANSWER_DUPLICATE = -3,  /* that seq is stored already: a resend */
};

/* EVALSHA arguments storing one frame. */
struct answer_write {
    int argc;
    const char *argv[17];
    size_t argvlen[17];
    char key[160], seq[24], final[2], ttl[24], minid[32], maxlen[24];
};

/* frame is an answer frame (it must frame_peek); with append, the script
 * puts it after whatever the answer holds (taking over an answer whose
 * writer died) instead of at its own seq. The strings must outlive the
 * call that sends the arguments. */
int answer_write_argv(struct answer_write *a, const char *sha, const struct keys *k,
                      const char *reply, const char *frame, size_t len, int append,
                      const char *writer, long ttl_seconds, long max_frames);

/* An entry of XRANGE P answer:<id>: its seq and frame (pointing into e). */
int answer_entry(const redisReply *e, long *seq, const char **frame, size_t *len);

/* The entry id of XRANGE's start for the frames after seq. */
void answer_range_start(long after_seq, char *buf, size_t len);

#endif
