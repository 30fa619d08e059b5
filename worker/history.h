/* history.h -- the earlier turns of a conversation as the model is sent
 * them: read from the reply of the worker's turn check
 * (common/conversation.h), trimmed to conversation_max_turns and
 * conversation_max_bytes (questions and answers together) by dropping the
 * oldest whole turns. An image turn is sent as its question text only (the
 * image went with the turn that asked it), HISTORY_IMAGE_TEXT when it had
 * none. */
#ifndef AIMSG_HISTORY_H
#define AIMSG_HISTORY_H

#include <jansson.h>
#include <hiredis/hiredis.h>
#include <stddef.h>

#include "model.h"

#define HISTORY_IMAGE_TEXT "[图片 (image)]"

struct history {
    json_t *kept;               /* the turn objects the items point into */
    struct model_turn *items;   /* oldest first */
    size_t n;
    size_t dropped;             /* stored turns left out by the limits */
};

/* r: [[turn JSON, ...]]. 0, or -1 for a reply of another shape or out of
 * memory. A stored turn that is not a turn object is skipped. */
int history_from_reply(struct history *h, const redisReply *r, long max_turns, long max_bytes);
void history_free(struct history *h);

#endif
