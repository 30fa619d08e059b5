/* follow.h -- the answers one ws-push instance is delivering.
 *
 * For each answer it remembers the next seq its clients should get, so that
 * every frame goes out once and in order whether it arrives live (pub/sub)
 * or is read from the answer's history after a gap (a lost subscription, a
 * Redis restart). Two kinds of entry:
 *  - FOLLOW_CHANNEL, one per answer: the answer as its reply channel brings
 *    it, for one connection (conn) or for every client (conn 0);
 *  - FOLLOW_RESUME, one per connection resuming an answer meant for every
 *    client: that connection gets the answer from its own position until it
 *    has caught up with the others (then the entry goes and the connection
 *    takes the answer with everyone again). While it is there, the answer's
 *    frames for everyone skip that connection.
 * An entry is forgotten a while after the answer ended, or when nothing was
 * heard of it for answer_ttl. */
#ifndef AIMSG_FOLLOW_H
#define AIMSG_FOLLOW_H

#include <stddef.h>
#include <stdint.h>

enum follow_kind { FOLLOW_CHANNEL, FOLLOW_RESUME };

struct follow {
    struct follow *hnext;
    char id[48];
    enum follow_kind kind;
    uint64_t conn;          /* the connection it is for; 0: every client */
    long next_seq;          /* first seq not delivered yet */
    long heard_seq;         /* highest seq heard of live, -1: none */
    long heard_at_read;     /* heard_seq when the last history read was sent */
    int ended;
    int filling;            /* a history read is on its way */
    int resolving;          /* RESUME: its first read has not come back */
    int gone;               /* removed: freed once no read is on its way */
    int resumers;           /* CHANNEL for every client: RESUME entries of it */
    int stays;              /* RESUME: to the answer's end; its connection is not in the
                             * answer's group (an admin following a user's answer) */
    char *channel;          /* CHANNEL: a foreign channel subscribed for it */
    char *user;             /* CHANNEL for a user's sockets: the subject */
    long skip_from, skip_to;  /* RESUME: the connection has these seqs live */
    struct follow_join *joins; /* CHANNEL for every client: who got which seq */
    unsigned njoins;
    long long touched_ms;   /* last heard of (monotonic) */
};

/* From frame seq on, every member up to max_conn (conn.member_no, which
 * only grows) was sent the answer. A few of these, newest last, tell a
 * connection that resumes which frames it got live before it asked. */
#define FOLLOW_JOINS 32
struct follow_join {
    long seq;
    uint64_t max_conn;
};

struct follow_table {
    struct follow **buckets;
    size_t nbuckets, count;
};

int follow_table_init(struct follow_table *t);
void follow_table_free(struct follow_table *t);

/* The CHANNEL entry of answer id, or conn's RESUME entry of it. */
struct follow *follow_find(const struct follow_table *t, const char *id, enum follow_kind kind,
                           uint64_t conn);
/* Whether a connection resumes answer id (cheap: one hash chain). */
int follow_has_resume(const struct follow_table *t, const char *id);
/* follow_find, adding the entry if there was none; NULL: no memory. */
struct follow *follow_get(struct follow_table *t, const char *id, enum follow_kind kind,
                          uint64_t conn);
/* A CHANNEL entry for every client is about to send frame seq to every
 * connection up to max_conn. */
void follow_note_join(struct follow *f, long seq, uint64_t max_conn);
/* The first seq conn was sent live, -1 if none (it joined after the last
 * frame); *exact 0 when older records are gone and it may have had more. */
long follow_first_seq_of(const struct follow *f, uint64_t conn, int *exact);

/* Marks it gone: it is skipped from now on and freed by the next sweep
 * that finds no read on its way. */
void follow_remove(struct follow_table *t, struct follow *f);

/* Forgets entries that are gone, ended more than keep_ms ago (and before
 * covered_ms: a catch-up never reads them again; a RESUME entry at once),
 * were not heard of for idle_ms, or whose connection is gone (gone(ctx,
 * conn) says). Entries with a history read on its way stay. on_free(ctx, f)
 * is called before each is freed. */
void follow_sweep(struct follow_table *t, long long now_ms, long long keep_ms,
                  long long covered_ms, long long idle_ms,
                  int (*gone)(void *ctx, uint64_t conn),
                  void (*on_free)(void *ctx, struct follow *f), void *ctx);

/* Calls fn for every entry not gone; fn must not add or free entries. */
void follow_each(struct follow_table *t, void (*fn)(struct follow *f, void *ctx), void *ctx);
/* Calls fn for the RESUME entries of answer id. */
void follow_each_resume(struct follow_table *t, const char *id,
                        void (*fn)(struct follow *f, void *ctx), void *ctx);

#endif
