/* subjects.c -- the connections of one instance grouped by who is on them
 * (a user with authentication on, else an address).
 *
 * A user's group is what its answers are sent to: the instance subscribes
 * to the user's inbox channel (P inbox:<sub>) while the user has a socket
 * here, so an answer to user U reaches U's sockets on every instance and
 * nobody else's. A group also gives the local count that refuses a handshake
 * over ws_max_connections_per_user without asking Redis. */
#define _POSIX_C_SOURCE 200809L
#include "wspush.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

struct subject {
    struct subject *hnext;
    LIST_HEAD(, conn) conns;
    size_t count;
    char channel[KEYS_MAX_SUBJECT + 100]; /* users: the inbox; else "" */
    char name[];                /* the subject */
};

static size_t bucket(const struct subject_table *t, const char *name)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return (size_t)h & (t->nbuckets - 1);
}

int subjects_init(struct subject_table *t)
{
    memset(t, 0, sizeof(*t));
    t->nbuckets = 1024;
    t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
    return t->buckets ? 0 : -1;
}

void subjects_free(struct subject_table *t)
{
    for (size_t i = 0; t->buckets && i < t->nbuckets; i++) {
        for (struct subject *s = t->buckets[i], *next; s; s = next) {
            next = s->hnext;
            free(s);
        }
    }
    free(t->buckets);
    memset(t, 0, sizeof(*t));
}

struct subject *subjects_find(const struct subject_table *t, const char *name)
{
    for (struct subject *s = t->buckets[bucket(t, name)]; s; s = s->hnext)
        if (strcmp(s->name, name) == 0)
            return s;
    return NULL;
}

size_t subjects_count(const struct subject_table *t, const char *name)
{
    const struct subject *s = subjects_find(t, name);
    return s ? s->count : 0;
}

static void grow(struct subject_table *t)
{
    size_t n = t->nbuckets * 2, oldn = t->nbuckets;
    struct subject **b = calloc(n, sizeof(*b)), **old = t->buckets;
    if (!b)
        return; /* chains just get longer */
    t->buckets = b;
    t->nbuckets = n;
    for (size_t i = 0; i < oldn; i++) {
        for (struct subject *s = old[i], *next; s; s = next) {
            next = s->hnext;
            size_t h = bucket(t, s->name);
            s->hnext = b[h];
            b[h] = s;
        }
    }
    free(old);
}

static struct subject *create(struct wspush *wp, const char *name)
{
    struct subject_table *t = &wp->subjects;
    if (t->count >= t->nbuckets)
        grow(t);
    size_t len = strlen(name);
    struct subject *s = calloc(1, sizeof(*s) + len + 1);
    if (!s)
        return NULL;
    memcpy(s->name, name, len + 1);
    LIST_INIT(&s->conns);
    const char *sub = keys_subject_sub(name);
    if (sub && keys_user_channel(&wp->keys, sub, s->channel, sizeof(s->channel)) != 0) {
        free(s);
        return NULL;
    }
    size_t h = bucket(t, name);
    s->hnext = t->buckets[h];
    t->buckets[h] = s;
    t->count++;
    if (s->channel[0])
        redis_link_subscribe(wp, s->channel);
    return s;
}

static void destroy(struct wspush *wp, struct subject *s)
{
    struct subject_table *t = &wp->subjects;
    struct subject **pp = &t->buckets[bucket(t, s->name)];
    while (*pp && *pp != s)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = s->hnext;
    t->count--;
    if (s->channel[0])
        redis_link_unsubscribe(wp, s->channel);
    free(s);
}

int subjects_join(struct wspush *wp, struct conn *c)
{
    struct subject *s = subjects_find(&wp->subjects, c->who.subject);
    if (!s && !(s = create(wp, c->who.subject)))
        return -1;
    LIST_INSERT_HEAD(&s->conns, c, subject_link);
    s->count++;
    c->subject = s;
    return 0;
}

void subjects_leave(struct wspush *wp, struct conn *c)
{
    struct subject *s = c->subject;
    if (!s)
        return;
    LIST_REMOVE(c, subject_link);
    c->subject = NULL;
    if (--s->count == 0)
        destroy(wp, s);
}

void subjects_each(struct wspush *wp, void (*fn)(struct wspush *, const char *name,
                                                 const char *channel, void *ctx),
                   void *ctx)
{
    struct subject_table *t = &wp->subjects;
    for (size_t i = 0; i < t->nbuckets; i++)
        for (struct subject *s = t->buckets[i]; s; s = s->hnext)
            fn(wp, s->name, s->channel, ctx);
}

void subjects_send(struct wspush *wp, const char *name, struct msg *m,
                   int (*skip)(struct wspush *, const struct conn *, void *), void *ctx)
{
    struct subject *s = subjects_find(&wp->subjects, name);
    if (!s)
        return;
    for (struct conn *c = LIST_FIRST(&s->conns); c; c = LIST_NEXT(c, subject_link))
        if (c->who.authed && !(skip && skip(wp, c, ctx)))
            conn_send(&wp->conns, c, m);
}

struct conn *subjects_first_conn(struct subject *s)
{
    return s ? LIST_FIRST(&s->conns) : NULL;
}

struct conn *subjects_next_conn(struct conn *c)
{
    return LIST_NEXT(c, subject_link);
}
