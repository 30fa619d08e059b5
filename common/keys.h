/* keys.h -- the names of everything the system keeps in Redis.
 *
 * All names start with the configured prefix (default "aimsg:"); see
 * docs/PROTOCOL.md for what each holds. */
#ifndef AIMSG_KEYS_H
#define AIMSG_KEYS_H

#include <stddef.h>
#include <stdint.h>

#define KEYS_GROUP "workers"    /* the consumer group on the jobs stream */
#define KEYS_MAX_PREFIX 62      /* bytes of the prefix (config bounds redis_prefix by it) */

struct keys {
    char prefix[KEYS_MAX_PREFIX + 2];
    char jobs[96];          /* stream: jobs waiting or being answered */
    char dead[96];          /* stream: jobs that failed too often */
    char answers[96];       /* stream: answers begun lately (id, reply) */
    char broadcast[96];     /* channel: answers for every client */
    char cancels[96];       /* channel: ids of answers cancelled (workers stop them) */
    char instances[96];     /* set: ids of ws-push instances that registered */
    char presence_prefix[96]; /* + instance id: connection count, with TTL */
    char health[96];        /* never exists: fcgi-api's write probe (SET .. XX) */
    char inbox_prefix[96];  /* + sub: channel of one user's answers */
    char rate_prefix[96];   /* + subject: sorted set, its messages of the last minute */
    char inflight_prefix[96]; /* + subject: sorted set, its answers not ended */
    char conns_prefix[96];  /* + subject: sorted set, its open WebSockets */
    char metrics[96];       /* set: the live processes' metrics hashes */
    char conv_prefix[96];   /* + id + ":owner", ":turns", ":queue": a conversation (conversation.h) */
    char usage_prefix[96];  /* + day [+ ":" member]: token counts (usage.h) */
};

int keys_init(struct keys *k, const char *prefix);  /* -1 if prefix too long */

/* Who asks, as quotas and delivery know them: "user:<sub>" when
 * authentication is on, else "addr:<client address>". */
#define KEYS_MAX_SUBJECT 160
int keys_subject_user(const char *sub, char *buf, size_t len);
int keys_subject_addr(const char *addr, char *buf, size_t len);
int keys_subject_is_user(const char *subject);
/* The sub of a "user:<sub>" subject, else NULL. */
const char *keys_subject_sub(const char *subject);
/* P inbox:<sub>: the answers of one user, to each of its sockets on every
 * ws-push instance. */
int keys_user_channel(const struct keys *k, const char *sub, char *buf, size_t len);
/* The sub of a user channel, or NULL. */
const char *keys_user_of_channel(const struct keys *k, const char *channel);
/* <prefix><subject>, prefix one of rate_prefix, inflight_prefix, conns_prefix */
int keys_of_subject(const char *prefix, const char *subject, char *buf, size_t len);
int keys_image(const struct keys *k, const char *token, char *buf, size_t len);
int keys_presence(const struct keys *k, const char *instance, char *buf, size_t len);
/* Stream of the frames of answer id. */
int keys_answer(const struct keys *k, const char *id, char *buf, size_t len);

/* A connection's reply channel is P out:<instance>:<run>:<conn>. run is
 * drawn at random when a ws-push process starts, so a restarted instance
 * (same name, connection ids from 1 again) never reuses a channel that an
 * answer to one of its former clients may still be published on.
 * keys_connections is the common part of all of one run's channels. */
int keys_connections(const struct keys *k, const char *instance, const char *run, char *buf,
                     size_t len);
int keys_connection(const char *connections, uint64_t conn, char *buf, size_t len);
/* The connection a channel names, if it is one of `connections`'; else 0. */
uint64_t keys_connection_of(const char *connections, const char *channel);

/* Lua: sums the live presence keys listed in the instances set and forgets
 * the dead ones. KEYS[1] = instances set, ARGV[1] = presence prefix. */
extern const char keys_count_connections_lua[];

#endif
