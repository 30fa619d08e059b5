/* auth_cache.h -- tokens this process verified lately.
 *
 * A client sends the same token with every request and every reconnect;
 * verifying it (two JSON parses, libjwt's own two, the HMAC or the PEM read
 * and RSA/ECDSA) cost fcgi-api more than the rest of a POST. A token whose
 * exact bytes passed auth_verify() is remembered with the identity they
 * gave: everything but expiry is decided by those bytes alone (the keys,
 * aud and iss do not change while the process runs; nbf, once passed,
 * stays passed). exp is checked on every use. Refused tokens are not kept.
 * Direct-mapped, AUTH_CACHE_SLOTS entries, tokens up to
 * AUTH_CACHE_MAX_TOKEN bytes; one per process, used by one thread. */
#ifndef AIMSG_AUTH_CACHE_H
#define AIMSG_AUTH_CACHE_H

#include <stddef.h>

#include "auth.h"

#define AUTH_CACHE_SLOTS 256
#define AUTH_CACHE_MAX_TOKEN 2048

struct auth_cache;

struct auth_cache *auth_cache_new(void);     /* NULL: no memory */
void auth_cache_free(struct auth_cache *c);
/* The identity token's bytes gave when they were verified, or NULL. */
const struct auth_identity *auth_cache_find(const struct auth_cache *c, const char *token,
                                            size_t len);
/* Remembers a verified token (too long ones, or with no memory: not). */
void auth_cache_put(struct auth_cache *c, const char *token, size_t len,
                    const struct auth_identity *id);

#endif
