/* TEMPORARY: HS256 only, minimal, until h-auth lands */
#define _POSIX_C_SOURCE 200809L
#include "auth.h"
#include <jwt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
const char AUTH_MSG_MISSING[] = "需要令牌 (a token is required)";
struct auth { const char *secret; };
struct auth *auth_new(const struct config *cfg, char *err, size_t errlen) { (void)err; (void)errlen; struct auth *a = calloc(1, sizeof(*a)); if (a) a->secret = cfg->auth_jwt_secret; return a; }
void auth_free(struct auth *a) { free(a); }
int auth_enabled(const struct auth *a) { return a->secret[0] != 0; }
const char *auth_verify(const struct auth *a, const char *token, size_t len, struct auth_identity *id)
{
    char *t = strndup(token, len); jwt_t *j = NULL;
    int rc = jwt_decode(&j, t, (const unsigned char *)a->secret, (int)strlen(a->secret));
    free(t);
    if (rc) return "令牌无效 (invalid token)";
    if (jwt_get_alg(j) != JWT_ALG_HS256) { jwt_free(j); return "bad alg"; }
    const char *sub = jwt_get_grant(j, "sub");
    long exp = jwt_get_grant_int(j, "exp");
    if (!sub || !sub[0] || strlen(sub) > AUTH_MAX_SUB) { jwt_free(j); return "no sub"; }
    if (exp && exp < time(NULL)) { jwt_free(j); return "令牌已过期 (token expired)"; }
    strcpy(id->sub, sub); id->exp = exp; id->admin = jwt_get_grant_bool(j, "admin") == 1;
    jwt_free(j); return NULL;
}
const char *auth_bearer(const char *h, size_t *len) { if (strncasecmp(h, "Bearer ", 7)) return NULL; h += 7; while (*h == ' ') h++; *len = strlen(h); return *len ? h : NULL; }
