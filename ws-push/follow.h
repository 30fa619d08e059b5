/* follow.h -- the answers one ws-push instance is delivering.
 *
 * For each answer it remembers the next seq its clients should get, so that
 * every frame goes out once and in order whether it arrives live (pub/sub)
 * or is read from the answer's history after a gap (a lost subscription, a
 * Redis restart). An entry is forgotten a while after the answer ended, or
 * when nothing was heard of it for answer_ttl. */
#ifndef AIMSG_FOLLOW_H
#define AIMSG_FOLLOW_H

#include <stddef.h>
#include <stdint.h>

struct follow {
    struct follow *hnext;
    char id[48];
    uint64_t conn;          /* the connection it is for; 0: every client */
    long next_seq;          /* first seq not delivered yet */
    long heard_seq;         /* highest seq heard of live, -1: none */
    int ended;
    int filling;            /* a history read is on its way */
    long long touched_ms;   /* last heard of (monotonic) */
};

struct follow_table {
    struct follow **buckets;
    size_t nbuckets, count;
};

int follow_table_init(struct follow_table *t);
void follow_table_free(struct follow_table *t);

struct follow *follow_find(const struct follow_table *t, const char *id);
/* The entry for id, added (for conn) if there was none; NULL: no memory. */
struct follow *follow_get(struct follow_table *t, const char *id, uint64_t conn);

/* Forgets entries that ended more than keep_ms ago (and before
 * covered_ms: a catch-up never reads them again), were not heard of for
 * idle_ms, or whose connection is gone (gone(ctx, conn) says). Entries with
 * a history read on its way stay. */
void follow_sweep(struct follow_table *t, long long now_ms, long long keep_ms,
                  long long covered_ms, long long idle_ms,
                  int (*gone)(void *ctx, uint64_t conn), void *ctx);

/* Calls fn for every entry; fn must not add or remove entries. */
void follow_each(struct follow_table *t, void (*fn)(struct follow *f, void *ctx), void *ctx);

#endif
