/* answer.h -- an answer's history in Redis, the contract between the worker
 * (the only writer) and whoever reads it (ws-push catching up, fcgi-api).
 *
 *   P answer:<id>  stream, one entry per frame: id 0-<seq+1>,
 *                  fields f <frame JSON>, w <writer>, e 1 on the last,
 *                  r <reply channel> on the first
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
#include "redis_script.h"
#include "usage.h"

extern const char answer_write_lua[];

/* What the script returns besides the seq it wrote (>= 0). */
enum answer_refusal {
    ANSWER_ENDED = -1,      /* the answer already has its last frame */
    ANSWER_FOREIGN = -2,    /* another writer owns it */
    ANSWER_DUPLICATE = -3,  /* that seq is stored already: a resend */
    ANSWER_UNKNOWN = -4,    /* (a canceller's write) no such job, or gone */
};

/* EVALSHA arguments storing one frame. */
struct answer_write {
    int argc;
    const char *argv[32];
    size_t argvlen[32];
    char key[160], seq[24], final[2], ttl[24], minid[32], maxlen[24], max_turns[24],
        conv_ttl[24], usage_day[160], prompt[24], completion[24], usage_ttl[24];
    int turn_at, usage_at;      /* where their arguments stand in argv */
};

/* frame is an answer frame (it must frame_peek); with append, the script
 * puts it after whatever the answer holds (taking over an answer whose
 * writer died, or cancelling it) instead of at its own seq. reply "" means
 * the channel the job names (a canceller does not know it). The script goes
 * as sc says (redis_script.h; sc->lua is answer_write_lua), or as EVAL with its
 * text when sc is NULL. The strings must outlive the call that sends the
 * arguments. */
int answer_write_argv(struct answer_write *a, const struct script *sc, const struct keys *k,
                      const char *reply, const char *frame, size_t len, int append,
                      const char *writer, long ttl_seconds, long max_frames);

/* The done frame of a job in a conversation also stores its turn
 * (conversation_turn_json): the same script appends it to the
 * conversation's turns (keeping the last max_turns; unless the
 * conversation was forgotten meanwhile) and renews the conversation's TTL.
 * Call after answer_write_argv; turn must outlive the call that sends the
 * arguments. Every final frame (done, error, cancelled) removes its job
 * from the conversation's queue. */
int answer_write_turn(struct answer_write *a, const char *turn, size_t len, long max_turns,
                      long ttl_seconds);

/* The done frame also counts the answer (and the tokens in u, when known)
 * for member on that day (usage.h), in the same script, so an answer counts
 * exactly once. Call after answer_write_argv; member must outlive the call
 * that sends the arguments. */
int answer_write_usage(struct answer_write *a, const struct keys *k, const char *day,
                       const char *member, const struct usage *u, long ttl_seconds);

/* Reading an answer (resume, GET /api/answer): the channel its frames go
 * to and its frames after after_seq, at most count; for a job not begun
 * yet, its channel and no frames. One EVAL, so the two agree. */
extern const char answer_read_lua[];
struct answer_read {
    int argc;
    const char *argv[8];
    size_t argvlen[8];
    char key[160], id[48], start[32], count[24];
};
int answer_read_argv(struct answer_read *a, const struct keys *k, const char *id,
                     long after_seq, long count);
/* 0 with channel and entries pointing into r; ANSWER_UNKNOWN (no such
 * job, or expired); -1 for a reply of another shape. */
int answer_read_reply(const redisReply *r, const char **channel, const redisReply **entries);

/* The final "cancelled" frame of answer id (built in frame, which must
 * outlive the call), as an EVAL appending it; when it is written, the same
 * script PUBLISHes the id on k->cancels, which tells the worker running it
 * to stop (a refused cancel stops nothing). owner, when not NULL, is the
 * reply channel the answer must have (the asking user's inbox): another
 * user's answer is refused as unknown (ANSWER_UNKNOWN), so its existence
 * is not revealed either. */
int answer_cancel_argv(struct answer_write *a, const struct keys *k, const char *id,
                       const char *owner, struct buf *frame, long ttl_seconds, long max_frames);

/* Whether a reader whose answers go to owner (NULL: anyone may, no
 * authentication or an admin) may read (resume, GET) an answer whose frames
 * go to channel: its own, and answers to everyone. */
int answer_may_read(const char *channel, const struct keys *k, const char *owner);

/* What a client is told when its cancel or resume is refused (the script's
 * result, or ANSWER_UNKNOWN for an id that is not a job id). */
const char *answer_refusal_message(long result);

/* A job id: a stream entry id, <ms>-<n>. */
int answer_id_valid(const char *id);

/* An entry of XRANGE P answer:<id>: its seq and frame (pointing into e). */
int answer_entry(const redisReply *e, long *seq, const char **frame, size_t *len);

/* The entry id of XRANGE's start for the frames after seq. */
void answer_range_start(long after_seq, char *buf, size_t len);

#endif
