/* store.h -- fcgi-api's one Redis connection and the few things it asks of it.
 *
 * The connection is opened lazily and dropped on any I/O error, so the next
 * request reconnects: a Redis restart costs the requests made while it was
 * down (answered 503), nothing more. */
#ifndef AIMSG_STORE_H
#define AIMSG_STORE_H

#include <stddef.h>

#include "keys.h"
#include "redis_conn.h"

struct store {
    struct redis_addr addr;
    struct keys keys;
    redisContext *c;
    long image_ttl;
    char err[256];          /* why the last call failed */
};

int store_init(struct store *s, const char *redis_url, const char *prefix, long image_ttl);
void store_close(struct store *s);

int store_ping(struct store *s);
int store_connection_count(struct store *s, long long *count);
/* Queue a job answered to every client; id receives the job id. */
int store_queue_text(struct store *s, const char *text, size_t len, char id[48]);
int store_queue_image(struct store *s, const void *bytes, size_t len, const char *mime,
                      const char *question, size_t qlen, char id[48]);

#endif
