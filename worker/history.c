/* history.c -- see history.h. */
#define _POSIX_C_SOURCE 200809L
#include "history.h"

#include <stdlib.h>
#include <string.h>

/* A stored turn as the model gets it; -1 when it is not a turn object. */
static int read_turn(json_t *turn, struct model_turn *out)
{
    json_t *q = json_object_get(turn, "question"), *a = json_object_get(turn, "answer");
    const char *kind = json_string_value(json_object_get(turn, "kind"));
    if (!json_is_string(q) || !json_is_string(a) || !kind)
        return -1;
    out->question = json_string_value(q);
    out->question_len = json_string_length(q);
    if (out->question_len == 0 && strcmp(kind, "image") == 0) {
        out->question = HISTORY_IMAGE_TEXT;
        out->question_len = strlen(HISTORY_IMAGE_TEXT);
    }
    out->answer = json_string_value(a);
    out->answer_len = json_string_length(a);
    return 0;
}

int history_from_reply(struct history *h, const redisReply *r, long max_turns, long max_bytes)
{
    memset(h, 0, sizeof(*h));
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 1 ||
        r->element[0]->type != REDIS_REPLY_ARRAY)
        return -1;
    const redisReply *turns = r->element[0];
    h->kept = json_array();
    h->items = calloc(turns->elements + 1, sizeof(*h->items));
    if (!h->kept || !h->items) {
        history_free(h);
        return -1;
    }
    /* newest first, while they fit; then put back in order */
    size_t bytes = 0;
    for (size_t i = turns->elements; i-- > 0;) {
        const redisReply *e = turns->element[i];
        struct model_turn t;
        json_t *turn = e->type == REDIS_REPLY_STRING ? json_loadb(e->str, e->len, 0, NULL) : NULL;
        if (!turn || read_turn(turn, &t) != 0) {
            json_decref(turn);
            continue;
        }
        if ((long)h->n >= max_turns || t.question_len + t.answer_len > (size_t)max_bytes - bytes) {
            json_decref(turn);
            h->dropped = i + 1;
            break;
        }
        if (json_array_append_new(h->kept, turn) != 0) { /* it keeps t's strings alive */
            history_free(h);
            return -1;
        }
        bytes += t.question_len + t.answer_len;
        h->items[h->n++] = t;
    }
    for (size_t i = 0; i < h->n / 2; i++) {
        struct model_turn tmp = h->items[i];
        h->items[i] = h->items[h->n - 1 - i];
        h->items[h->n - 1 - i] = tmp;
    }
    return 0;
}

void history_free(struct history *h)
{
    json_decref(h->kept);
    free(h->items);
    memset(h, 0, sizeof(*h));
}
