/* access.c -- who may open a WebSocket, and who is on each.
 *
 * At the handshake: the Origin must be allowed (ws_allowed_origins: a page
 * of another site must not open sockets with the user's cookies or network
 * position, "cross-site WebSocket hijacking"), and the client address is
 * the peer or, behind a trusted proxy, what its X-Forwarded-For says. With
 * authentication on, a token in the URL (?token=) is checked there (a bad
 * one: 401); without one, the socket must send {"type":"auth","token":…}
 * as its first message within ws_auth_timeout seconds. Until then it is
 * sent nothing and may ask nothing; whatever else it sends closes it
 * (1008). A socket whose token expires gets an error frame and is closed
 * (1008); sending a new token for the same user in time keeps it open.
 *
 * ws_max_connections_per_user counts the sockets of a user (an address
 * without authentication) over every instance in Redis (common/conns.h):
 * the script that adds a socket refuses it when the user has that many (an
 * error frame with code 429, then 1008). A handshake over the limit on this
 * instance alone is refused at once (HTTP 429) without asking Redis: ws-push
 * never holds its event loop for Redis during a handshake. */
#define _GNU_SOURCE
#include "wspush.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "clock.h"
#include "conns.h"
#include "frame.h"
#include "log.h"
#include "message.h"
#include "origin.h"

#define CHECK_EVERY_MS 1000

static const char MSG_ORIGIN[] = "不允许的来源 (Origin not allowed: see ws_allowed_origins)";
static const char MSG_TOO_MANY_SOCKETS[] = "连接太多 (too many WebSockets: "
                                           "ws_max_connections_per_user reached)";
static const char MSG_EXPIRED[] = "令牌已过期 (token expired: reconnect with a new one)";
static const char MSG_AUTH_OFF[] = "未开启认证 (authentication is off: the token was ignored)";

static int counts_sockets(const struct wspush *wp)
{
    return auth_enabled(wp->auth) || wp->cfg->ws_max_connections_per_user > 0;
}

/* ---- the handshake ------------------------------------------------------ */

static const char *status_text(int status)
{
    return status == 401 ? "Unauthorized" : status == 403 ? "Forbidden" : "Too Many Requests";
}

/* lws has switched the connection to WebSocket before it asks us, so the
 * refusal is written to the socket here; lws closes it when we return. */
static int refuse(struct lws *wsi, int status, const char *why)
{
    struct buf body = BUF_INIT, head = BUF_INIT;
    if (buf_printf(&body, "{\"code\":%d,\"message\":", status) == 0 &&
        buf_json_string(&body, why, strlen(why)) == 0 && buf_puts(&body, "}") == 0 &&
        buf_printf(&head,
                   "HTTP/1.1 %d %s\r\nContent-Type: application/json; charset=utf-8\r\n"
                   "Content-Length: %zu\r\nConnection: close\r\n%s\r\n",
                   status, status_text(status), body.len,
                   status == 401 ? "WWW-Authenticate: Bearer\r\n" : "") == 0 &&
        buf_append(&head, body.data, body.len) == 0) {
        /* a fresh socket's send buffer takes this small reply whole */
        if (send(lws_get_socket_fd(wsi), head.data, head.len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
            log_debug("refusing a handshake: %s", strerror(errno));
    }
    buf_free(&body);
    buf_free(&head);
    log_info("handshake refused (%d): %s", status, why);
    wspush_metrics_refused(status);
    return 1;
}

static void client_address(struct wspush *wp, struct lws *wsi, char *addr, size_t len)
{
    char peer[64] = "", xff[1024] = "";
    lws_get_peer_simple(wsi, peer, sizeof(peer));
    if (lws_hdr_copy(wsi, xff, sizeof(xff), WSI_TOKEN_X_FORWARDED_FOR) < 0)
        xff[0] = '\0';
    if (proxy_client_address(&wp->proxies, peer, xff, addr, len) != 0)
        snprintf(addr, len, "%s", peer[0] ? peer : "unknown");
}

static void set_user(struct conn_who *who, const struct auth_identity *id)
{
    keys_subject_user(id->sub, who->subject, sizeof(who->subject));
    who->admin = id->admin;
    who->exp = id->exp;
}

static int over_local_limit(struct wspush *wp, const char *subject)
{
    long limit = wp->cfg->ws_max_connections_per_user;
    return limit > 0 && subjects_count(&wp->subjects, subject) >= (size_t)limit;
}

int access_handshake(struct wspush *wp, struct lws *wsi, struct conn *c)
{
    char origin[512] = "", token[AUTH_MAX_TOKEN + 8];
    memset(&c->who, 0, sizeof(c->who));
    if (lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN) < 0)
        origin[0] = '\0';
    if (!origin_allowed(&wp->cfg->ws_allowed_origins, origin))
        return refuse(wsi, 403, MSG_ORIGIN);
    if (!auth_enabled(wp->auth)) {
        char addr[64];
        client_address(wp, wsi, addr, sizeof(addr));
        keys_subject_addr(addr, c->who.subject, sizeof(c->who.subject));
    } else {
        const char *t = lws_get_urlarg_by_name(wsi, "token=", token, sizeof(token));
        struct auth_identity id;
        if (t && t[0]) {
            const char *why = auth_verify(wp->auth, t, strlen(t), &id);
            if (why)
                return refuse(wsi, 401, why);
            set_user(&c->who, &id);
        } else {
            c->who.auth_deadline_ms = clock_ms() + wp->cfg->ws_auth_timeout * 1000;
        }
    }
    if (c->who.subject[0] && over_local_limit(wp, c->who.subject))
        return refuse(wsi, 429, MSG_TOO_MANY_SOCKETS);
    return 0;
}

/* ---- becoming a member -------------------------------------------------- */

static int member_name(struct wspush *wp, const struct conn *c, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s:%s:%llu", wp->instance, wp->run, (unsigned long long)c->id);
    return n >= 0 && (size_t)n < len ? 0 : -1;
}

static void send_frame(struct wspush *wp, struct conn *c, int rc, struct buf *b)
{
    if (rc == 0)
        conn_send_copy(&wp->conns, c, b->data, b->len);
    buf_free(b);
}

/* An error frame with code, then close 1008 once it is sent. */
static void refuse_socket(struct wspush *wp, struct conn *c, int code, const char *why)
{
    struct buf b = BUF_INIT;
    send_frame(wp, c, frame_reject_code(&b, code, why), &b);
    conn_close_after_queue(c, CONN_REFUSED, LWS_CLOSE_STATUS_POLICY_VIOLATION,
                           code == 401 ? "authentication required" : code == 429 ? "over quota"
                                                                                 : "refused");
    log_info("client %llu (%s) closed: %s", (unsigned long long)c->id, c->who.subject, why);
}

static void admit(struct wspush *wp, struct conn *c)
{
    conn_admit(&wp->conns, c);
    if (auth_enabled(wp->auth)) {
        struct buf b = BUF_INIT;
        send_frame(wp, c, frame_authenticated(&b, keys_subject_sub(c->who.subject), c->who.exp),
                   &b);
    }
}

/* With ws_max_connections_per_user the socket is a member (and told it is
 * authenticated) only once Redis has counted it; otherwise it is at once,
 * and counted for userConnectionCount alone. */
static int waits_for_count(const struct wspush *wp)
{
    return wp->cfg->ws_max_connections_per_user > 0 && wp->cmd.ra.ac;
}

static void on_counted(redisAsyncContext *ac, void *r, void *privdata)
{
    struct redis_link *l = ac->data;
    struct wspush *wp = l->wp;
    redisReply *reply = r;
    struct conn *c = conn_find(&wp->conns, (uint64_t)(uintptr_t)privdata);
    if (!c || c->closing)
        return;
    int waited = !c->who.authed;
    if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1) {
        c->counted = 1;
    } else if (reply && reply->type == REDIS_REPLY_INTEGER) {
        refuse_socket(wp, c, 429, MSG_TOO_MANY_SOCKETS);
        return;
    } else if (reply && reply->type == REDIS_REPLY_ERROR) {
        log_warn("counting client %llu: %s", (unsigned long long)c->id, reply->str);
    }
    if (waited)
        admit(wp, c); /* (Redis away or failing: the local limit held) */
}

/* 0 when the count was asked for (on_counted follows), else -1 */
static int count_socket(struct wspush *wp, struct conn *c)
{
    char key[KEYS_MAX_SUBJECT + 100], member[256], limit[24], stale[24];
    if (!wp->cmd.ra.ac || keys_of_subject(wp->keys.conns_prefix, c->who.subject, key,
                                          sizeof(key)) != 0 ||
        member_name(wp, c, member, sizeof(member)) != 0)
        return -1; /* (Redis away: it is not counted; the limit holds for the others) */
    snprintf(limit, sizeof(limit), "%ld", wp->cfg->ws_max_connections_per_user);
    snprintf(stale, sizeof(stale), "%ld", wp->cfg->presence_ttl * 1000);
    return redisAsyncCommand(wp->cmd.ra.ac, on_counted, (void *)(uintptr_t)c->id,
                             "EVAL %s 1 %s %s %s %s", conns_admit_lua, key, member, limit,
                             stale) == REDIS_OK
               ? 0
               : -1;
}

static void become_member(struct wspush *wp, struct conn *c)
{
    if (subjects_join(wp, c) != 0) {
        refuse_socket(wp, c, 500, MSG_INTERNAL);
        return;
    }
    int wait = waits_for_count(wp);
    if (!wait)
        admit(wp, c);
    if (counts_sockets(wp) && count_socket(wp, c) != 0 && wait)
        admit(wp, c); /* could not ask: the local limit held */
}

void access_established(struct wspush *wp, struct conn *c)
{
    if (c->who.subject[0])
        become_member(wp, c);
}

void access_auth_frame(struct wspush *wp, struct conn *c, const char *token, size_t len)
{
    struct auth_identity id;
    struct conn_who who = {0};
    int identified = c->who.subject[0] != 0;
    if (!auth_enabled(wp->auth)) {
        conn_reject(&wp->conns, c, MSG_AUTH_OFF);
        return;
    }
    const char *why = auth_verify(wp->auth, token, len, &id);
    if (why && !identified) {
        refuse_socket(wp, c, 401, why);
        return;
    }
    if (why) {
        struct buf b = BUF_INIT;
        send_frame(wp, c, frame_reject_code(&b, 401, why), &b); /* the old token holds */
        return;
    }
    set_user(&who, &id);
    if (identified && strcmp(who.subject, c->who.subject) != 0) {
        conn_reject(&wp->conns, c, MSG_AUTH_OTHER_USER);
        return;
    }
    if (identified) { /* a fresh token for the same user: it lives on */
        c->who.exp = id.exp;
        c->who.admin = id.admin;
        if (c->who.authed) {
            struct buf b = BUF_INIT;
            send_frame(wp, c, frame_authenticated(&b, id.sub, id.exp), &b);
        }
        return;
    }
    if (over_local_limit(wp, who.subject)) {
        refuse_socket(wp, c, 429, MSG_TOO_MANY_SOCKETS);
        return;
    }
    c->who = who;
    become_member(wp, c);
}

void access_refuse_unauthenticated(struct wspush *wp, struct conn *c, const char *why)
{
    refuse_socket(wp, c, 401, why);
}

void access_closed(struct wspush *wp, struct conn *c)
{
    char key[KEYS_MAX_SUBJECT + 100], member[256];
    if (c->counted && wp->cmd.ra.ac && !wp->stopping &&
        keys_of_subject(wp->keys.conns_prefix, c->who.subject, key, sizeof(key)) == 0 &&
        member_name(wp, c, member, sizeof(member)) == 0)
        redisAsyncCommand(wp->cmd.ra.ac, NULL, NULL, "ZREM %s %s", key, member);
    subjects_leave(wp, c);
}

/* ---- every second ------------------------------------------------------- */

static void check_tokens(struct wspush *wp, long long now_ms)
{
    long long now_s = (long long)time(NULL);
    for (struct conn *c = LIST_FIRST(&wp->conns.all); c; c = LIST_NEXT(c, link)) {
        if (c->closing)
            continue;
        if (!c->who.subject[0] && c->who.auth_deadline_ms && now_ms > c->who.auth_deadline_ms)
            refuse_socket(wp, c, 401, MSG_AUTH_TIMEOUT);
        else if (c->who.subject[0] && c->who.exp &&
                 now_s >= c->who.exp + wp->cfg->auth_jwt_leeway)
            refuse_socket(wp, c, 401, MSG_EXPIRED);
    }
}

/* One EVAL per group vouches for its counted sockets (at most BATCH at a
 * time: Lua's unpack has a limit). */
#define BATCH 500
static void vouch_group(struct wspush *wp, const char *name, const char *channel, void *ctx)
{
    (void)channel;
    (void)ctx;
    static char members[BATCH][256];
    static const char *argv[BATCH + 5];
    static size_t argvlen[BATCH + 5];
    char key[KEYS_MAX_SUBJECT + 100], stale[24];
    if (keys_of_subject(wp->keys.conns_prefix, name, key, sizeof(key)) != 0)
        return;
    snprintf(stale, sizeof(stale), "%ld", wp->cfg->presence_ttl * 1000);
    struct subject *s = subjects_find(&wp->subjects, name);
    struct conn *c = subjects_first_conn(s);
    while (c) {
        int n = 0;
        for (; c && n < BATCH; c = subjects_next_conn(c))
            if (c->counted && member_name(wp, c, members[n], sizeof(members[n])) == 0)
                n++;
        if (n == 0)
            break;
        const char *head[] = {"EVAL", conns_refresh_lua, "1", key, stale};
        int argc = 0;
        for (int i = 0; i < 5; i++)
            argv[argc++] = head[i];
        for (int i = 0; i < n; i++)
            argv[argc++] = members[i];
        for (int i = 0; i < argc; i++)
            argvlen[i] = strlen(argv[i]);
        redisAsyncCommandArgv(wp->cmd.ra.ac, NULL, NULL, argc, argv, argvlen);
    }
}

void access_tick(struct wspush *wp)
{
    long long now = clock_ms();
    if (now < wp->next_access_check_ms)
        return;
    wp->next_access_check_ms = now + CHECK_EVERY_MS;
    check_tokens(wp, now);
    if (counts_sockets(wp) && wp->cmd.ra.ac && now >= wp->next_vouch_ms) {
        wp->next_vouch_ms = now + wp->cfg->presence_ttl * 1000 / 3;
        subjects_each(wp, vouch_group, NULL);
    }
}

/* ---- what a member may do ----------------------------------------------- */

const char *access_owner(struct wspush *wp, const struct conn *c, char *buf, size_t len)
{
    const char *sub = keys_subject_sub(c->who.subject);
    if (!auth_enabled(wp->auth) || c->who.admin || !sub ||
        keys_user_channel(&wp->keys, sub, buf, len) != 0)
        return NULL;
    return buf;
}

int access_reply_channel(struct wspush *wp, const struct conn *c, char *buf, size_t len)
{
    const char *sub = keys_subject_sub(c->who.subject);
    if (auth_enabled(wp->auth) && sub)
        return keys_user_channel(&wp->keys, sub, buf, len);
    return keys_connection(wp->connections, c->id, buf, len);
}
