/* auth_cache.c -- see auth_cache.h. */
#include "auth_cache.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct entry {
    char *token;                /* NULL: empty */
    size_t len;
    struct auth_identity id;
};

struct auth_cache {
    struct entry slot[AUTH_CACHE_SLOTS];
};

/* FNV-1a. Tokens are the client's: a collision only evicts, bytes are compared. */
static size_t slot_of(const char *token, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)token[i]) * 1099511628211ull;
    return (size_t)(h % AUTH_CACHE_SLOTS);
}

struct auth_cache *auth_cache_new(void)
{
    return calloc(1, sizeof(struct auth_cache));
}

void auth_cache_free(struct auth_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < AUTH_CACHE_SLOTS; i++)
        free(c->slot[i].token);
    free(c);
}

const struct auth_identity *auth_cache_find(const struct auth_cache *c, const char *token,
                                            size_t len)
{
    if (!c || len > AUTH_CACHE_MAX_TOKEN)
        return NULL;
    const struct entry *e = &c->slot[slot_of(token, len)];
    if (!e->token || e->len != len || memcmp(e->token, token, len) != 0)
        return NULL;
    return &e->id;
}

void auth_cache_put(struct auth_cache *c, const char *token, size_t len,
                    const struct auth_identity *id)
{
    if (!c || len > AUTH_CACHE_MAX_TOKEN)
        return;
    struct entry *e = &c->slot[slot_of(token, len)];
    char *copy = malloc(len);
    if (!copy)
        return;
    memcpy(copy, token, len);
    free(e->token);
    e->token = copy;
    e->len = len;
    e->id = *id;
}
