/* control.c -- what a client asks about an answer: resume it, cancel it.
 *
 * Resume {"type":"resume","id":I,"after":N}: the connection gets every frame
 * of answer I after seq N, in order, then the answer live. A RESUME entry
 * (follow.h) is made at once, so that live frames of I skip this connection
 * from now on and only its own entry sends them; one EVAL then reads where
 * the answer goes and what it holds. An answer meant for one connection
 * (its reply channel names one) moves to this one; an answer meant for
 * every client is sent from N on until this connection has caught up with
 * the others.
 *
 * Cancel {"type":"cancel","id":I}: the answer's last frame, "cancelled", is
 * written like any other (common/answer.h), so it wins over whatever the
 * worker still writes; the same script tells the worker to stop the model. */
#define _POSIX_C_SOURCE 200809L
#include "wspush.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "log.h"
#include "message.h"

static void reject_about(struct wspush *wp, uint64_t conn, long result, const char *id)
{
    struct conn *c = conn_find(&wp->conns, conn);
    char message[256];
    snprintf(message, sizeof(message), "%s: %s", answer_refusal_message(result), id);
    if (c)
        conn_reject(&wp->conns, c, message);
}

/* ---- resume ------------------------------------------------------------ */

static int is_ours(const struct wspush *wp, const char *channel)
{
    return strncmp(channel, wp->connections, strlen(wp->connections)) == 0;
}

/* The answer goes to one connection: it is this one's now. */
static void take_over(struct wspush *wp, struct follow *r, const char *channel)
{
    struct follow *old = follow_find(&wp->follows, r->id, FOLLOW_CHANNEL, 0);
    if (old)
        follow_remove(&wp->follows, old);
    r->kind = FOLLOW_CHANNEL;
    if (!is_ours(wp, channel)) {
        r->channel = strdup(channel);
        if (!r->channel)
            log_warn("job %s: out of memory; only its history is sent", r->id);
        else
            redis_link_subscribe(wp, channel); /* its confirmation reads on */
    }
}

static void on_resume(redisAsyncContext *ac, void *reply_, void *privdata)
{
    struct redis_link *l = ac->data;
    struct wspush *wp = l->wp;
    struct follow *r = privdata;
    redisReply *reply = reply_;
    const char *channel;
    const redisReply *entries;
    r->filling = r->resolving = 0;
    if (r->gone || wp->stopping) {
        log_debug("job %s: resume by client %llu: its entry went meanwhile", r->id,
                  (unsigned long long)r->conn);
        return;
    }
    int rc = reply ? answer_read_reply(reply, &channel, &entries) : -1;
    if (rc != 0) {
        if (rc == -1)
            log_warn("job %s: cannot read it for a resume: %s", r->id,
                     reply && reply->type == REDIS_REPLY_ERROR ? reply->str : "connection lost");
        reject_about(wp, r->conn, rc == ANSWER_UNKNOWN ? ANSWER_UNKNOWN : 0, r->id);
        follow_remove(&wp->follows, r);
        return;
    }
    struct conn *c = conn_find(&wp->conns, r->conn);
    char owner[KEYS_MAX_SUBJECT + 100];
    if (!c || !answer_may_read(channel, &wp->keys, access_owner(wp, c, owner, sizeof(owner)))) {
        /* another user's answer does not exist for this one */
        reject_about(wp, r->conn, ANSWER_UNKNOWN, r->id);
        follow_remove(&wp->follows, r);
        return;
    }
    /* an answer to this socket's user goes to the user's sockets here; one
     * to another user (an admin resumes it) is followed by this socket on its
     * own while that user's sockets here keep it, or moves here as one to a
     * socket when there are none */
    const char *sub = keys_user_of_channel(&wp->keys, channel);
    char user[KEYS_MAX_SUBJECT] = "";
    if (sub && keys_subject_user(sub, user, sizeof(user)) != 0)
        sub = NULL;
    int to_user = sub && strcmp(user, c->who.subject) == 0;
    if (sub && !to_user && subjects_find(&wp->subjects, user)) {
        r->stays = 1;
    } else if (strcmp(channel, wp->keys.broadcast) != 0 && !to_user) {
        take_over(wp, r, channel);
    } else if (!follow_find(&wp->follows, r->id, FOLLOW_CHANNEL, 0)) {
        /* never heard here: its group (everyone, or the user's sockets
         * here) gets it from here on */
        struct follow *f = follow_get(&wp->follows, r->id, FOLLOW_CHANNEL,
                                      to_user ? ANSWERS_USER : 0);
        if (f && to_user && !(f->user = strdup(c->who.subject)))
            f = NULL; /* (the RESUME entry alone brings it) */
        if (f) {
            f->next_seq = r->next_seq;
            f->heard_seq = r->heard_seq;
            f->heard_at_read = r->heard_at_read;
            follow_remove(&wp->follows, r);
            r = f;
        }
    }
    log_debug("job %s: resume by client %llu from %ld: %zu entries (skip %ld-%ld)", r->id,
              (unsigned long long)r->conn, r->next_seq, entries->elements, r->skip_from,
              r->skip_to);
    answers_absorb(wp, r, entries);
}

/* Frames of an answer for everyone may have reached the connection since
 * it opened, before it asked: those it is not sent again. */
static void skip_what_it_had(struct wspush *wp, struct follow *r)
{
    const struct follow *f = follow_find(&wp->follows, r->id, FOLLOW_CHANNEL, 0);
    int exact;
    const struct conn *c = conn_find(&wp->conns, r->conn);
    int group = f && (f->conn == 0 || f->conn == ANSWERS_USER);
    long first = group && c ? follow_first_seq_of(f, c->member_no, &exact) : -1;
    if (first < 0 || first >= f->next_seq)
        return;
    if (!exact)
        log_warn("job %s: resumed by client %llu, which may get a frame twice", r->id,
                 (unsigned long long)r->conn);
    r->skip_from = first;
    r->skip_to = f->next_seq;
    if (r->next_seq >= r->skip_from && r->next_seq < r->skip_to)
        r->next_seq = r->skip_to;
}

void control_resume(struct wspush *wp, struct conn *c, const char *id, long after)
{
    struct answer_read a;
    if (answer_read_argv(&a, &wp->keys, id, after, ANSWERS_FILL_COUNT) != 0) {
        conn_reject(&wp->conns, c, MSG_RESUME_BAD);
        return;
    }
    if (!wp->cmd.ra.ac) {
        conn_reject(&wp->conns, c, MSG_RESUME_LATER);
        return;
    }
    if (follow_find(&wp->follows, id, FOLLOW_RESUME, c->id)) {
        conn_reject(&wp->conns, c, MSG_RESUME_TWICE);
        return;
    }
    struct follow *r = follow_get(&wp->follows, id, FOLLOW_RESUME, c->id);
    if (!r) {
        conn_reject(&wp->conns, c, MSG_INTERNAL);
        return;
    }
    r->next_seq = after + 1;
    skip_what_it_had(wp, r);
    log_debug("job %s: client %llu (member %llu) resumes after %ld: from %ld", id,
              (unsigned long long)c->id, (unsigned long long)c->member_no, after, r->next_seq);
    if (redisAsyncCommandArgv(wp->cmd.ra.ac, on_resume, r, a.argc, a.argv, a.argvlen) != REDIS_OK) {
        follow_remove(&wp->follows, r);
        conn_reject(&wp->conns, c, MSG_RESUME_LATER);
        return;
    }
    r->filling = r->resolving = 1;
    r->heard_at_read = r->heard_seq;
}

/* ---- cancel ------------------------------------------------------------ */

struct cancel {
    struct answer_write a;
    char owner[KEYS_MAX_SUBJECT + 100];
    struct buf frame;
    uint64_t conn;
    char id[48];
};

static void on_cancelled(redisAsyncContext *ac, void *reply_, void *privdata)
{
    struct redis_link *l = ac->data;
    struct wspush *wp = l->wp;
    struct cancel *x = privdata;
    redisReply *reply = reply_;
    if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer >= 0) {
        log_info("job %s: cancelled by client %llu", x->id, (unsigned long long)x->conn);
    } else if (!wp->stopping) {
        if (reply && reply->type == REDIS_REPLY_ERROR)
            log_warn("job %s: cancel failed: %s", x->id, reply->str);
        reject_about(wp, x->conn, reply && reply->type == REDIS_REPLY_INTEGER ? (long)reply->integer : 0,
                     x->id);
    }
    buf_free(&x->frame);
    free(x);
}

void control_cancel(struct wspush *wp, struct conn *c, const char *id)
{
    struct cancel *x = calloc(1, sizeof(*x));
    if (!x) {
        conn_reject(&wp->conns, c, MSG_INTERNAL);
        return;
    }
    x->conn = c->id;
    if (answer_cancel_argv(&x->a, &wp->keys, id, access_owner(wp, c, x->owner, sizeof(x->owner)),
                           &x->frame, wp->cfg->answer_ttl,
                           wp->cfg->answer_max_frames) != 0) { /* checks the id too */
        conn_reject(&wp->conns, c, MSG_CANCEL_BAD);
    } else if (!wp->cmd.ra.ac ||
               redisAsyncCommandArgv(wp->cmd.ra.ac, on_cancelled, x, x->a.argc, x->a.argv,
                                     x->a.argvlen) != REDIS_OK) {
        conn_reject(&wp->conns, c, MSG_CANCEL_LATER);
    } else {
        snprintf(x->id, sizeof(x->id), "%s", id);
        return;
    }
    buf_free(&x->frame);
    free(x);
}
