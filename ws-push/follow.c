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

struct follow *follow_find(const struct follow_table *t, const char *id)
{
    for (struct follow *f = t->buckets[bucket(t, id)]; f; f = f->hnext)
        if (strcmp(f->id, id) == 0)
            return f;
    return NULL;
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

struct follow *follow_get(struct follow_table *t, const char *id, uint64_t conn)
{
    struct follow *f = follow_find(t, id);
    if (f || strlen(id) >= sizeof(f->id))
        return f;
    if (t->count >= t->nbuckets)
        grow(t);
    f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    strcpy(f->id, id);
    f->conn = conn;
    f->heard_seq = -1;
    f->touched_ms = clock_ms();
    size_t h = bucket(t, id);
    f->hnext = t->buckets[h];
    t->buckets[h] = f;
    t->count++;
    return f;
}

void follow_sweep(struct follow_table *t, long long now_ms, long long keep_ms,
                  long long covered_ms, long long idle_ms,
                  int (*gone)(void *ctx, uint64_t conn), void *ctx)
{
    for (size_t i = 0; i < t->nbuckets; i++) {
        for (struct follow **pp = &t->buckets[i]; *pp;) {
            struct follow *f = *pp;
            long long quiet = now_ms - f->touched_ms;
            int done = f->ended ? quiet > keep_ms && f->touched_ms < covered_ms : quiet > idle_ms;
            if (!f->filling && (done || (f->conn && gone(ctx, f->conn)))) {
                *pp = f->hnext;
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
            fn(f, ctx);
}
