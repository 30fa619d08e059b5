/* conversation.h -- a conversation: the earlier questions and answers a new
 * question is asked after. The contract between fcgi-api and ws-push (which
 * start and continue conversations when they queue a job), the worker (which
 * sends the earlier turns to the model and appends the new one) and whoever
 * reads or forgets one (GET/DELETE /api/conversation/<id>).
 *
 *   P conv:<id>:owner  string: the subject that started it (user:<sub> or
 *                      addr:<ip>); the conversation exists while it does
 *   P conv:<id>:turns  list: its completed turns, oldest first, one JSON
 *                      object each (conversation_turn_json), at most
 *                      conversation_max_turns
 *   P conv:<id>:queue  list: ids of its jobs whose answer has not ended, in
 *                      the order they were queued (at most
 *                      conversation_max_queued)
 * All three expire conversation_ttl seconds after the conversation was last
 * used (a question queued, a question's turn come, a turn stored).
 *
 * Order: a worker answers a conversation's job only when no earlier job of
 * it is still in the jobs stream (an answer's last frame removes its job
 * from the stream, in the same script that stores the turn), so a second
 * question sees the first one's answer, whichever worker takes it. See
 * docs/PROTOCOL.md. */
#ifndef AIMSG_CONVERSATION_H
#define AIMSG_CONVERSATION_H

#include <stddef.h>
#include <hiredis/hiredis.h>

#include "buf.h"
#include "keys.h"

#define CONVERSATION_ID_LEN 32  /* lowercase hex digits */

extern const char MSG_CONVERSATION_BAD[];
extern const char MSG_CONVERSATION_UNKNOWN[];

/* NULL when s[0..len) is a conversation id, else the reason. */
const char *conversation_check(const char *s, size_t len);
/* A fresh random id. */
int conversation_new_id(char out[CONVERSATION_ID_LEN + 1]);

struct conversation_keys {
    char owner[KEYS_MAX_PREFIX + 64], turns[KEYS_MAX_PREFIX + 64], queue[KEYS_MAX_PREFIX + 64];
};
/* -1 when id is not a conversation id. */
int conversation_keys(const struct keys *k, const char *id, struct conversation_keys *ck);

/* A stored turn: {"id":<job id>,"kind":"text"|"image","question":…,
 * "answer":…,"ts":<ms>}. An image turn keeps its question text only. */
int conversation_turn_json(struct buf *out, const char *job_id, int image, const char *question,
                           size_t question_len, const char *answer, size_t answer_len,
                           long long ts_ms);

/* The worker's question before it answers job id of a conversation: is it
 * its turn? KEYS: queue, jobs stream, turns, owner; ARGV: job id,
 * conversation ttl ms. Looks at the queue's head only: while the head is no
 * longer in the jobs stream (its answer ended: the script writing an
 * answer's last frame XDELs its job) it is popped. Returns 0 (not yet: the
 * head is an earlier job still in the stream) or, renewing the TTL of the
 * three keys so they outlast the answer, [[turn JSON, ...]]. The queue is
 * in the order the jobs were queued, which is their stream ids' order; a
 * job missing from it (the queue expired while it waited) goes when no
 * earlier job is at the head. */
extern const char conversation_turn_lua[];

/* GET and DELETE /api/conversation/<id>. KEYS: owner, turns, queue; ARGV:
 * the subject that must own it ('' = anyone may). Read returns 0 (no such
 * conversation, or another's) or [[turn JSON, ...]]; forget returns 0 or 1
 * (deleted). Forget deletes owner and turns only: the queue drains by
 * itself as its answers end, so the jobs still waiting go in order. */
extern const char conversation_read_lua[];
extern const char conversation_forget_lua[];

#endif
