/* auth.h -- who is asking: JSON Web Tokens, verified with libjwt.
 *
 * Authentication is on when auth_jwt_secret (HS256) or auth_jwt_public_key
 * (a PEM file: RS256 or ES256, by its key type) is set. The algorithm is
 * pinned to the configured key: "none", an HS256 token when only a public
 * key is configured (signed with the public key as HMAC secret), or any
 * other alg is refused. Checked: signature, exp and nbf (auth_jwt_leeway
 * seconds of clock skew), a non-empty sub of at most AUTH_MAX_SUB bytes,
 * and aud / iss when auth_jwt_audience / auth_jwt_issuer are set.
 * exp is optional (a token without it does not expire); iat is not checked.
 * A token with "admin": true may broadcast (docs/PROTOCOL.md); any other
 * value of admin (the string "true" too) is not admin. */
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
 * client: Chinese with an English gloss, never the token itself; one of the
 * AUTH_MSG_* below (AUTH_MSG_DISABLED when authentication is off). */
const char *auth_verify(const struct auth *a, const char *token, size_t len,
                        struct auth_identity *id);

/* The token of an "Authorization: Bearer <token>" header value (scheme
 * case-insensitive), or NULL. */
const char *auth_bearer(const char *authorization, size_t *len);

/* "RS256" or "ES256": the algorithm a PEM key is used with (a public key
 * read as libjwt reads it, or with is_private a private key, for
 * aimsg-token), or NULL with the reason in why: no such key (an encrypted
 * private key included), an RSA key under 2048 bits, an EC key not on
 * P-256, another type. */
const char *auth_pem_alg(const char *pem, size_t len, int is_private, char *why, size_t whylen);

/* 1 when s (n bytes, UTF-8) may be a sub: 1..AUTH_MAX_SUB bytes, no C0 or
 * C1 control character nor DEL. */
int auth_valid_sub(const char *s, size_t n);

/* The reasons auth_verify gives, one per refusal. */
extern const char AUTH_MSG_MISSING[];   /* no token given */
extern const char AUTH_MSG_DISABLED[];  /* auth_verify called with authentication off */
extern const char AUTH_MSG_TOO_LONG[];  /* longer than AUTH_MAX_TOKEN */
extern const char AUTH_MSG_MALFORMED[]; /* not three non-empty base64url parts */
extern const char AUTH_MSG_HEADER[];    /* header not a JSON object, a typ other than JWT, crit */
extern const char AUTH_MSG_ALG_NONE[];  /* "alg": "none" */
extern const char AUTH_MSG_ALG[];       /* an alg the configured keys do not allow */
extern const char AUTH_MSG_PAYLOAD[];   /* payload not a JSON object */
extern const char AUTH_MSG_SIGNATURE[]; /* the signature does not verify */
extern const char AUTH_MSG_TIME[];      /* exp or nbf not a number */
extern const char AUTH_MSG_EXPIRED[];   /* exp + leeway passed */
extern const char AUTH_MSG_NOT_YET[];   /* nbf - leeway not reached */
extern const char AUTH_MSG_SUB[];       /* sub missing, empty, too long, not a string, control characters */
extern const char AUTH_MSG_AUDIENCE[];  /* aud does not name auth_jwt_audience */
extern const char AUTH_MSG_ISSUER[];    /* iss is not auth_jwt_issuer */
extern const char AUTH_MSG_INTERNAL[];  /* out of memory */

#endif
