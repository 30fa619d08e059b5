/* access.c -- see access.h. */
#define _POSIX_C_SOURCE 200809L
#include "access.h"

#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "log.h"

static void respond_unauthorized(struct request *r, const char *why, int token_given)
{
    respond_error_with(r, 401,
                       token_given ? "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n"
                                   : "WWW-Authenticate: Bearer\r\n",
                       why);
}

static int identify_user(struct api *api, struct request *r)
{
    size_t len;
    const char *token = auth_bearer(r->authorization, &len);
    struct auth_identity id;
    if (!token) {
        respond_unauthorized(r, AUTH_MSG_MISSING, 0);
        return -1;
    }
    const char *why = auth_verify(api->auth, token, len, &id);
    if (why) {
        /* the reason, never the token */
        log_info("401 %s %s from %s: %s", r->method, r->path, r->peer, why);
        respond_unauthorized(r, why, 1);
        return -1;
    }
    if (keys_subject_user(id.sub, r->subject, sizeof(r->subject)) != 0 ||
        keys_user_channel(&api->store.keys, id.sub, r->inbox, sizeof(r->inbox)) != 0) {
        respond_unauthorized(r, AUTH_MSG_MISSING, 1); /* (sub is bounded: cannot happen) */
        return -1;
    }
    r->admin = id.admin;
    r->owner = id.admin ? NULL : r->inbox;
    return 0;
}

int access_identify(struct api *api, struct request *r)
{
    if (auth_enabled(api->auth))
        return identify_user(api, r);
    char addr[64];
    if (proxy_client_address(&api->proxies, r->peer, r->forwarded_for, addr, sizeof(addr)) != 0)
        snprintf(addr, sizeof(addr), "%s", r->peer[0] ? r->peer : "unknown");
    keys_subject_addr(addr, r->subject, sizeof(r->subject));
    snprintf(r->inbox, sizeof(r->inbox), "%s", api->store.keys.broadcast);
    r->owner = NULL;
    r->admin = 1; /* without authentication anyone may do anything */
    return 0;
}
