/* keys.h -- the names of everything the system keeps in Redis.
 *
 * All names start with the configured prefix (default "aimsg:"); see
 * docs/PROTOCOL.md for what each holds. */
#ifndef AIMSG_KEYS_H
#define AIMSG_KEYS_H

#include <stddef.h>

#define KEYS_GROUP "workers"    /* the consumer group on the jobs stream */

struct keys {
    char prefix[64];
    char jobs[96];          /* stream: jobs waiting or being answered */
    char dead[96];          /* stream: jobs that failed too often */
    char broadcast[96];     /* channel: answers for every client */
    char instances[96];     /* set: ids of ws-push instances that registered */
    char presence_prefix[96]; /* + instance id: connection count, with TTL */
};

int keys_init(struct keys *k, const char *prefix);  /* -1 if prefix too long */
int keys_image(const struct keys *k, const char *token, char *buf, size_t len);
int keys_presence(const struct keys *k, const char *instance, char *buf, size_t len);
/* Channel of one connection, and the pattern of all of an instance's. */
int keys_connection(const struct keys *k, const char *instance, unsigned long long conn,
                    char *buf, size_t len);
int keys_instance_pattern(const struct keys *k, const char *instance, char *buf, size_t len);

/* Lua: sums the live presence keys listed in the instances set and forgets
 * the dead ones. KEYS[1] = instances set, ARGV[1] = presence prefix. */
extern const char keys_count_connections_lua[];

#endif
