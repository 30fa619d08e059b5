/* follow.c -- see follow.h. */
#include "follow.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"

int follow_table_init(struct follow_table *t)
{
    memset(t, 0, sizeof(*t));
    t->nbuckets = 1024;
    t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
    return t->buckets ? 0 : -1;
}

void follow_table_free(struct follow_table *t)
{
    for (size_t i = 0; t->buckets && i < t->nbuckets; i++) {
        for (struct follow *f = t->buckets[i], *next; f; f = next) {
            next = f->hnext;
            free(f->channel);
            free(f->user);
            free(f->joins);
            free(f);
        }
    }
    free(t->buckets);
    memset(t, 0, sizeof(*t));
}

static size_t bucket(const struct follow_table *t, const char *id)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return (size_t)h & (t->nbuckets - 1);
}

static int matches(const struct follow *f, const char *id, enum follow_kind kind, uint64_t conn)
{
    return !f->gone && f->kind == kind && (kind == FOLLOW_CHANNEL || f->conn == conn) &&
           strcmp(f->id, id) == 0;
}

struct follow *follow_find(const struct follow_table *t, const char *id, enum follow_kind kind,
                           uint64_t conn)
{
    for (struct follow *f = t->buckets[bucket(t, id)]; f; f = f->hnext)
        if (matches(f, id, kind, conn))
            return f;
    return NULL;
}

int follow_has_resume(const struct follow_table *t, const char *id)
{
    for (struct follow *f = t->buckets[bucket(t, id)]; f; f = f->hnext)
        if (!f->gone && f->kind == FOLLOW_RESUME && strcmp(f->id, id) == 0)
            return 1;
    return 0;
}

static void grow(struct follow_table *t)
{
    size_t n = t->nbuckets * 2, oldn = t->nbuckets;
    struct follow **b = calloc(n, sizeof(*b)), **old = t->buckets;
    if (!b)
        return; /* chains just get longer */
    t->buckets = b;
    t->nbuckets = n;
    for (size_t i = 0; i < oldn; i++) {
        for (struct follow *f = old[i], *next; f; f = next) {
            next = f->hnext;
            size_t h = bucket(t, f->id);
            f->hnext = b[h];
            b[h] = f;
        }
    }
    free(old);
}

struct follow *follow_get(struct follow_table *t, const char *id, enum follow_kind kind,
                          uint64_t conn)
{
    struct follow *f = follow_find(t, id, kind, conn);
    if (f || strlen(id) >= sizeof(f->id))
        return f;
    if (t->count >= t->nbuckets)
        grow(t);
    f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    strcpy(f->id, id);
    f->kind = kind;
    f->conn = conn;
    f->heard_seq = -1;
    f->touched_ms = clock_ms();
    size_t h = bucket(t, id);
    f->hnext = t->buckets[h];
    t->buckets[h] = f;
    t->count++;
    return f;
}

void follow_note_join(struct follow *f, long seq, uint64_t max_conn)
{
    if (f->njoins && f->joins[(f->njoins - 1) % FOLLOW_JOINS].max_conn == max_conn)
        return;
    if (!f->joins && !(f->joins = calloc(FOLLOW_JOINS, sizeof(*f->joins))))
        return; /* a resume may then repeat a frame or two */
    f->joins[f->njoins % FOLLOW_JOINS] = (struct follow_join){seq, max_conn};
    f->njoins++;
}

long follow_first_seq_of(const struct follow *f, uint64_t conn, int *exact)
{
    unsigned kept = f->njoins < FOLLOW_JOINS ? f->njoins : FOLLOW_JOINS;
    *exact = 1;
    for (unsigned i = f->njoins - kept; i < f->njoins; i++) {
        const struct follow_join *j = &f->joins[i % FOLLOW_JOINS];
        if (j->max_conn >= conn) {
            *exact = i == 0 || i > f->njoins - kept;
            return j->seq;
        }
    }
    return -1;
}

void follow_remove(struct follow_table *t, struct follow *f)
{
    (void)t;
    f->gone = 1;
}

static int expired(const struct follow *f, long long now_ms, long long keep_ms,
                   long long covered_ms, long long idle_ms)
{
    long long quiet = now_ms - f->touched_ms;
    if (f->gone || (f->kind == FOLLOW_RESUME && f->ended))
        return 1;
    if (f->ended)
        return quiet > keep_ms && f->touched_ms < covered_ms;
    return quiet > idle_ms;
}

void follow_sweep(struct follow_table *t, long long now_ms, long long keep_ms,
                  long long covered_ms, long long idle_ms,
                  int (*gone)(void *ctx, uint64_t conn),
                  void (*on_free)(void *ctx, struct follow *f), void *ctx)
{
    for (size_t i = 0; i < t->nbuckets; i++) {
        for (struct follow **pp = &t->buckets[i]; *pp;) {
            struct follow *f = *pp;
            if (!f->filling && (expired(f, now_ms, keep_ms, covered_ms, idle_ms) ||
                                (f->conn && gone(ctx, f->conn)))) {
                *pp = f->hnext;
                on_free(ctx, f);
                free(f->channel);
                free(f->user);
                free(f->joins);
                free(f);
                t->count--;
            } else {
                pp = &f->hnext;
            }
        }
    }
}

void follow_each(struct follow_table *t, void (*fn)(struct follow *f, void *ctx), void *ctx)
{
    for (size_t i = 0; i < t->nbuckets; i++)
        for (struct follow *f = t->buckets[i]; f; f = f->hnext)
            if (!f->gone)
                fn(f, ctx);
}

void follow_each_resume(struct follow_table *t, const char *id,
                        void (*fn)(struct follow *f, void *ctx), void *ctx)
{
    for (struct follow *f = t->buckets[bucket(t, id)]; f; f = f->hnext)
        if (!f->gone && f->kind == FOLLOW_RESUME && strcmp(f->id, id) == 0)
            fn(f, ctx);
}
