/* auth.h -- who is asking: JSON Web Tokens, verified with libjwt.
 *
 * Authentication is on when auth_jwt_secret (HS256) or auth_jwt_public_key
 * (a PEM file: RS256 or ES256, by its key type) is set. The algorithm is
 * pinned to the configured key: "none", an HS256 token when only a public
 * key is configured (signed with the public key as HMAC secret), or any
 * other alg is refused. Checked: signature, exp and nbf (auth_jwt_leeway
 * seconds of clock skew), a non-empty sub of at most AUTH_MAX_SUB bytes,
 * and aud / iss when auth_jwt_audience / auth_jwt_issuer are set.
 * A token with "admin": true may broadcast (docs/PROTOCOL.md). */
#ifndef AIMSG_AUTH_H
#define AIMSG_AUTH_H

#include <stddef.h>

#include "config.h"

#define AUTH_MAX_SUB 128
#define AUTH_MAX_TOKEN 8192         /* longer tokens are refused unread */
#define AUTH_ADMIN_CLAIM "admin"

struct auth_identity {
    char sub[AUTH_MAX_SUB + 1];
    int admin;                  /* "admin": true */
    long long exp;              /* seconds since the epoch; 0: none */
};

struct auth;

/* NULL with the reason in err when the key cannot be used (a missing or
 * unreadable PEM file, both keys of a kind the service cannot pin). Also
 * returns an object when authentication is off. */
struct auth *auth_new(const struct config *cfg, char *err, size_t errlen);
void auth_free(struct auth *a);
int auth_enabled(const struct auth *a);

/* NULL when the token is valid (id filled in), else the reason to give the
 * client: Chinese with an English gloss, never the token itself. */
const char *auth_verify(const struct auth *a, const char *token, size_t len,
                        struct auth_identity *id);

/* The token of an "Authorization: Bearer <token>" header value (scheme
 * case-insensitive), or NULL. */
const char *auth_bearer(const char *authorization, size_t *len);

extern const char AUTH_MSG_MISSING[];   /* no token given */

#endif
