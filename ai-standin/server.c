/* server.c -- the stand-in's HTTP requests on libwebsockets. lws parses
 * the requests, reads the bodies and sends the bytes; here each request is
 * routed, checked (API key, Content-Length) and answered. An answer is
 * paced like a model's: one token per delay on a due timer (due.h) for a
 * stream, the whole JSON after delay x tokens (an lws_sul) otherwise. See server.h. */
#define _POSIX_C_SOURCE 200809L
#include "server.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "buf.h"
#include "due.h"
#include "log.h"
#include "script.h"
#include "sse.h"

#define MAX_BODY (64 * 1024 * 1024)
#define TURN_BYTES (64 * 1024)  /* sent per turn; then the other clients */

enum route { ROUTE_NONE, ROUTE_CHAT, ROUTE_MODELS, ROUTE_HEALTH };

enum phase {
    PH_IDLE,    /* nothing to answer (yet), or answered */
    PH_BODY,    /* reading the body of a chat request */
    PH_HELD,    /* a non-streamed answer waits until due, then is sent */
    PH_STREAM,  /* sending tokens */
    PH_HANG,    /* @@hang: never answering */
};

/* One request (lws's per-session data: zeroed for each request). */
struct conn {
    struct lws *wsi;
    enum phase phase;
    int keep_alive;             /* the client allows another request after this */
    int http11;
    struct buf body;
    struct answer ans;          /* the chat request being answered */
    unsigned long long id;
    long long created;
    long delay_ms;
    struct stream st;
    struct buf held;            /* PH_HELD: the JSON body */
    size_t held_off, held_end;  /* sent so far; where to stop (@@cut: half) */
    int held_status;
    struct due_timer timer;     /* the next token is due */
    lws_sorted_usec_list_t sul; /* the held answer is due */
    int due;
};

static struct {
    long delay_ms;
    const char *require_key;    /* STANDIN_REQUIRE_KEY, NULL = any key */
    const char *model;          /* listed by GET /v1/models */
    unsigned long long next_id;
    struct fail_table fails;
    struct buf tx;              /* the bytes of one lws_write, after LWS_PRE */
    struct buf scratch;
} srv;

void server_init(const struct config *cfg)
{
    const char *key = getenv("STANDIN_REQUIRE_KEY");
    srv.require_key = key && key[0] ? key : NULL;
    log_add_secret(srv.require_key);
    srv.model = cfg->ai_model[0] ? cfg->ai_model : "ai-standin";
    srv.delay_ms = cfg->standin_delay_ms;
}

void server_free(void)
{
    fail_table_free(&srv.fails);
    buf_free(&srv.tx);
    buf_free(&srv.scratch);
}

int server_requires_key(void)
{
    return srv.require_key != NULL;
}

long server_delay_ms(void)
{
    return srv.delay_ms;
}

static void conn_clear(struct conn *c)
{
    due_cancel(&c->timer);
    lws_sul_cancel(&c->sul);
    answer_free(&c->ans);
    stream_free(&c->st);
    buf_free(&c->body);
    buf_free(&c->held);
    c->phase = PH_IDLE;
}

/* ========================================================================
 * Sending
 * ===================================================================== */

static int tx_begin(void)
{
    static const char pre[LWS_PRE];
    buf_reset(&srv.tx);
    return buf_append(&srv.tx, pre, sizeof(pre));
}

/* Status line and headers; content_length < 0: none (a stream). */
static int tx_headers(struct conn *c, int status, const char *type, long long content_length,
                      const char *retry_after, int close)
{
    if (buf_reserve(&srv.tx, 1024) != 0)
        return -1;
    unsigned char *start = (unsigned char *)srv.tx.data + srv.tx.len, *p = start;
    unsigned char *end = start + 1023;
    struct lws *w = c->wsi;
    if (lws_add_http_header_status(w, (unsigned)status | LWSAHH_FLAG_NO_SERVER_NAME, &p, end) ||
        lws_add_http_header_by_token(w, WSI_TOKEN_HTTP_CONTENT_TYPE, (const unsigned char *)type,
                                     (int)strlen(type), &p, end) ||
        (content_length >= 0 &&
         lws_add_http_header_content_length(w, (lws_filepos_t)content_length, &p, end)) ||
        (content_length < 0 &&
         lws_add_http_header_by_token(w, WSI_TOKEN_HTTP_CACHE_CONTROL,
                                      (const unsigned char *)"no-cache", 8, &p, end)) ||
        (content_length < 0 && !close &&
         lws_add_http_header_by_token(w, WSI_TOKEN_HTTP_TRANSFER_ENCODING,
                                      (const unsigned char *)"chunked", 7, &p, end)) ||
        (retry_after && lws_add_http_header_by_name(w, (const unsigned char *)"retry-after:",
                                                    (const unsigned char *)retry_after,
                                                    (int)strlen(retry_after), &p, end)) ||
        (close && lws_add_http_header_by_token(w, WSI_TOKEN_CONNECTION,
                                               (const unsigned char *)"close", 5, &p, end)) ||
        lws_finalize_http_header(w, &p, end))
        return -1;
    srv.tx.len += (size_t)(p - start);
    srv.tx.data[srv.tx.len] = '\0';
    return 0;
}

/* Hands what is in tx to lws, which keeps what the socket does not take. */
static int tx_send(struct conn *c, enum lws_write_protocol how)
{
    size_t n = srv.tx.len - LWS_PRE;
    int rc = n ? lws_write(c->wsi, (unsigned char *)srv.tx.data + LWS_PRE, n, how) : 0;
    if (srv.tx.cap > 4 * TURN_BYTES)
        buf_free(&srv.tx);
    return rc < 0 ? -1 : 0;
}

/* The response is out: ready for the next request, or close (-1). c may
 * be freed: use it no more. */
static int finish(struct conn *c, int close)
{
    c->phase = PH_IDLE;
    if (close)
        return -1;
    return lws_http_transaction_completed(c->wsi) ? -1 : 0;
}

/* A complete JSON response, then the connection stays or closes. */
static int reply_json(struct conn *c, int status, const char *retry_after, const char *body,
                      size_t len, int close)
{
    close |= !c->keep_alive;
    if (tx_begin() != 0 || tx_headers(c, status, "application/json", (long long)len,
                                      retry_after, close) != 0 ||
        buf_append(&srv.tx, body, len) != 0 || tx_send(c, LWS_WRITE_HTTP_HEADERS) != 0)
        return -1;
    return finish(c, close);
}

static int reply_error_param(struct conn *c, int status, const char *type, const char *param,
                             const char *code, const char *retry_after, const char *message,
                             int close)
{
    log_debug("-> %d %s", status, message);
    buf_reset(&srv.scratch);
    if (error_json(&srv.scratch, message, type, param, code) != 0)
        return -1;
    return reply_json(c, status, retry_after, srv.scratch.data, srv.scratch.len, close);
}

static int reply_error(struct conn *c, int status, const char *type, const char *code,
                       const char *retry_after, const char *message, int close)
{
    return reply_error_param(c, status, type, NULL, code, retry_after, message, close);
}

/* An error about the request itself. */
static int reject(struct conn *c, int status, const char *code, const char *message, int close)
{
    return reply_error(c, status, "invalid_request_error", code, NULL, message, close);
}

/* @@fail=CODE: the error a real endpoint would send with that status. */
static int reply_fail(struct conn *c, int status)
{
    if (status == 429)
        return reply_error(c, 429, "requests", "rate_limit_exceeded", "1",
                           "Rate limit reached (stand-in @@fail).", 0);
    if (status >= 500)
        return reply_error(c, status, "server_error", NULL, NULL,
                           "The server had an error while processing your request "
                           "(stand-in @@fail).", 0);
    return reply_error(c, status, "invalid_request_error", NULL, NULL,
                       "Request rejected (stand-in @@fail).", 0);
}

static int reply_models(struct conn *c)
{
    struct buf *b = &srv.scratch;
    buf_reset(b);
    if (buf_puts(b, "{\"object\":\"list\",\"data\":[{\"id\":") != 0 ||
        buf_json_string(b, srv.model, strlen(srv.model)) != 0 ||
        buf_puts(b, ",\"object\":\"model\",\"created\":1700000000,"
                    "\"owned_by\":\"ai-standin\"}]}") != 0)
        return -1;
    return reply_json(c, 200, NULL, b->data, b->len, 0);
}

static int reply_health(struct conn *c)
{
    static const char body[] = "{\"status\":\"ok\"}";
    return reply_json(c, 200, NULL, body, sizeof(body) - 1, 0);
}

/* ========================================================================
 * Answers
 * ===================================================================== */

static int on_writeable(struct conn *c);

/* Sends what is due right away when the socket has taken everything so far
 * (as it usually has): waiting for POLLOUT would cost two more passes of
 * the service loop per token. */
static void on_due(struct conn *c)
{
    struct lws *wsi = c->wsi;
    c->due = 1;
    if (lws_partial_buffered(wsi))
        lws_callback_on_writable(wsi);
    else if (on_writeable(c) < 0)
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

static void on_token_due(struct due_timer *t)
{
    on_due(lws_container_of(t, struct conn, timer));
}

static void on_held_due(lws_sorted_usec_list_t *sul)
{
    on_due(lws_container_of(sul, struct conn, sul));
}

/* Token timers share a few delays: see due.h. */
static int wait_ms(struct conn *c, long ms)
{
    c->due = 0;
    return due_arm(&c->timer, ms, on_token_due);
}

/* One turn of a stream: the due token (with a delay) or up to TURN_BYTES. */
static int stream_turn(struct conn *c)
{
    int step = STREAM_MORE;
    if (tx_begin() != 0)
        return -1;
    do {
        step = stream_step(&c->st, &srv.tx);
    } while (step == STREAM_MORE && c->delay_ms == 0 && srv.tx.len < TURN_BYTES);
    if (step < 0 || tx_send(c, LWS_WRITE_HTTP) != 0)
        return -1;
    switch (step) {
    case STREAM_MORE:
        if (c->delay_ms > 0)
            return wait_ms(c, c->delay_ms);
        lws_callback_on_writable(c->wsi);
        return 0;
    case STREAM_DONE:
        return finish(c, 0);
    default: /* @@error, @@cut, or the end of an unchunked stream */
        return finish(c, 1);
    }
}

static int stream_begin(struct conn *c)
{
    int chunked = c->http11;
    int close = !c->keep_alive || !chunked;
    if (tx_begin() != 0 || tx_headers(c, 200, "text/event-stream", -1, NULL, close) != 0 ||
        stream_start(&c->st, &c->ans, c->id, c->created, chunked, &srv.tx) != 0 ||
        tx_send(c, LWS_WRITE_HTTP_HEADERS) != 0)
        return -1;
    c->keep_alive = !close;
    c->phase = PH_STREAM;
    if (c->delay_ms > 0) {
        return wait_ms(c, c->delay_ms);
    } else {
        c->due = 1;
        lws_callback_on_writable(c->wsi);
    }
    return 0;
}

/* One turn of a held answer once due: the headers, then the body by
 * pieces; @@cut stops halfway through the body and closes. */
static int held_turn(struct conn *c)
{
    if (tx_begin() != 0)
        return -1;
    if (c->held_off == 0 &&
        tx_headers(c, c->held_status, "application/json", (long long)c->held.len, NULL,
                   !c->keep_alive) != 0)
        return -1;
    size_t n = c->held_end - c->held_off;
    if (n > TURN_BYTES)
        n = TURN_BYTES;
    if (buf_append(&srv.tx, c->held.data + c->held_off, n) != 0 ||
        tx_send(c, c->held_off ? LWS_WRITE_HTTP : LWS_WRITE_HTTP_HEADERS) != 0)
        return -1;
    c->held_off += n;
    if (c->held_off < c->held_end) {
        lws_callback_on_writable(c->wsi);
        return 0;
    }
    return finish(c, !c->keep_alive);
}

/* A non-streamed answer, held back as long as streaming it would take. */
static int held_begin(struct conn *c)
{
    const struct answer *a = &c->ans;
    int rc;
    c->held_status = 200;
    if (a->dir.error >= 0) {
        c->held_status = 500;
        rc = error_json(&c->held, "stand-in error", "server_error", NULL, NULL);
    } else if (a->dir.malformed >= 0) {
        rc = buf_puts(&c->held, "{not json");
    } else {
        rc = completion_json(&c->held, a, c->id, c->created);
    }
    if (rc != 0)
        return -1;
    c->held_end = c->held.len;
    if (a->dir.cut >= 0) { /* the headers and half the body, then close */
        c->held_end -= (c->held.len + 1) / 2;
        c->keep_alive = 0;
    }
    c->phase = PH_HELD;
    lws_usec_t us = (lws_usec_t)c->delay_ms * (lws_usec_t)a->ntokens * LWS_US_PER_MS;
    lws_sul_schedule(lws_get_context(c->wsi), 0, &c->sul, on_held_due, us);
    return 0;
}

static int handle_chat(struct conn *c)
{
    struct answer *a = &c->ans;
    struct buf err = BUF_INIT;
    int rc = answer_parse(a, c->body.data ? c->body.data : "", c->body.len, &err);
    buf_free(&c->body);
    if (rc != 0) {
        rc = reply_error(c, 400, "invalid_request_error", NULL, NULL,
                         err.len ? err.data : "Invalid request.", 0);
        buf_free(&err);
        return rc;
    }
    c->id = ++srv.next_id;
    c->created = (long long)time(NULL);
    c->delay_ms = a->dir.delay_ms >= 0 ? a->dir.delay_ms : srv.delay_ms;
    log_debug("POST /v1/chat/completions #%llu model=%s stream=%d stream_options=%d "
              "include_usage=%d tokens=%zu delay=%ld question=\"%.200s\"", c->id, a->model,
              a->stream, a->has_stream_options, a->include_usage, a->ntokens, c->delay_ms,
              a->question);
    if (a->dir.no_stream_options == 422 && a->has_stream_options) {
        static const char body[] =
            "{\"detail\":[{\"type\":\"extra_forbidden\",\"loc\":[\"body\",\"stream_options\"],"
            "\"msg\":\"Extra inputs are not permitted\"}]}";
        log_debug("-> 422 (stand-in @@nostreamoptions=422)");
        return reply_json(c, 422, NULL, body, sizeof(body) - 1, 0);
    }
    if (a->dir.no_stream_options && a->has_stream_options) /* as OpenAI's older API did */
        return reply_error_param(c, 400, "invalid_request_error", "stream_options", NULL, NULL,
                                 "Unrecognized request argument supplied: stream_options "
                                 "(stand-in @@nostreamoptions).", 0);
    if (answer_should_fail(&srv.fails, a))
        return reply_fail(c, a->dir.fail_code);
    if (a->dir.hang) {
        c->phase = PH_HANG;
        return 0;
    }
    return a->stream ? stream_begin(c) : held_begin(c);
}

/* ========================================================================
 * Requests
 * ===================================================================== */

static enum route route_of(int method, const char *path)
{
    if (method == LWSHUMETH_POST && strcmp(path, "/v1/chat/completions") == 0)
        return ROUTE_CHAT;
    if (method == LWSHUMETH_GET && strcmp(path, "/v1/models") == 0)
        return ROUTE_MODELS;
    if (method == LWSHUMETH_GET && strcmp(path, "/health") == 0)
        return ROUTE_HEALTH;
    return ROUTE_NONE;
}

static const char *method_name(int method)
{
    static const char *const names[] = {"GET", "POST", "OPTIONS", "PUT", "PATCH",
                                        "DELETE", "CONNECT", "HEAD"};
    return method >= 0 && method < (int)(sizeof(names) / sizeof(names[0])) ? names[method]
                                                                            : "-";
}

/* Header h as a string in out (truncated to n - 1); "" when absent. */
static void header(struct lws *wsi, enum lws_token_indexes h, char *out, int n)
{
    out[0] = '\0';
    if (lws_hdr_total_length(wsi, h) > 0 && lws_hdr_copy(wsi, out, n, h) < 0)
        out[0] = '\0';
}

/* HTTP/1.1 keeps the connection unless told to close; 1.0 the reverse. */
static void read_connection(struct conn *c)
{
    char v[16], conn[32];
    header(c->wsi, WSI_TOKEN_HTTP, v, sizeof(v));
    header(c->wsi, WSI_TOKEN_CONNECTION, conn, sizeof(conn));
    c->http11 = strcmp(v, "HTTP/1.1") == 0;
    c->keep_alive = strcasecmp(conn, "close") != 0 &&
                    (c->http11 || strcasecmp(conn, "keep-alive") == 0);
}

/* Authorization, if present, must be "Bearer <key>" (and the expected key,
 * when one is configured). Returns 0 if fine, else answers the request and
 * returns what the lws callback should. */
static int check_auth(struct conn *c, int *answered)
{
    int len = lws_hdr_total_length(c->wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    char *auth = len > 0 ? malloc((size_t)len + 1) : NULL;
    if (len > 0 && (!auth || lws_hdr_copy(c->wsi, auth, len + 1,
                                          WSI_TOKEN_HTTP_AUTHORIZATION) < 0)) {
        free(auth);
        return -1;
    }
    const char *key = "";
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0)
        for (key = auth + 7; *key == ' '; key++)
            ;
    size_t klen = strlen(key);
    int rc = 0;
    *answered = 1;
    if ((auth || srv.require_key) && klen == 0) {
        rc = reject(c, 401, NULL, "You didn't provide an API key. You need to provide your "
                    "API key in an Authorization header using Bearer auth (i.e. "
                    "Authorization: Bearer YOUR_KEY).", 0);
    } else if (srv.require_key && strcmp(srv.require_key, key) != 0) {
        /* like OpenAI, quote the key back: the worker must mask it in its logs */
        char msg[320];
        snprintf(msg, sizeof(msg), "Incorrect API key provided: %.256s.", key);
        rc = reject(c, 401, "invalid_api_key", msg, 0);
    } else {
        *answered = 0;
    }
    free(auth);
    return rc;
}

/* A chat request's head: read its body, or refuse it now. */
static int accept_chat(struct conn *c)
{
    char len[24], expect[32];
    header(c->wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, len, sizeof(len));
    header(c->wsi, WSI_TOKEN_HTTP_EXPECT, expect, sizeof(expect));
    if (!len[0] || lws_hdr_total_length(c->wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0)
        return reject(c, 411, NULL, "A Content-Length header is required.", 1);
    if (strlen(len) > 9 || atol(len) > MAX_BODY)
        return reject(c, 413, NULL, "Request body too large.", 1);
    if (strcasecmp(expect, "100-continue") == 0 && c->http11) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        if (tx_begin() != 0 || buf_append(&srv.tx, cont, sizeof(cont) - 1) != 0 ||
            tx_send(c, LWS_WRITE_HTTP) != 0)
            return -1;
    }
    c->phase = PH_BODY;
    return 0;
}

static int on_request(struct conn *c, struct lws *wsi, const char *path)
{
    memset(c, 0, sizeof(*c));
    c->wsi = wsi;
    read_connection(c);
    char *uri;
    int ulen;
    int method = lws_http_get_uri_and_method(wsi, &uri, &ulen);
    enum route route = route_of(method, path);
    if (route == ROUTE_NONE) {
        char msg[320];
        snprintf(msg, sizeof(msg), "Invalid URL (%s %.256s)", method_name(method), path);
        return reject(c, 404, NULL, msg, 0);
    }
    if (route != ROUTE_HEALTH) {
        int answered, rc = check_auth(c, &answered);
        if (rc != 0 || answered)
            return rc;
    }
    if (route == ROUTE_CHAT)
        return accept_chat(c);
    log_debug("GET %s -> 200", path);
    return route == ROUTE_MODELS ? reply_models(c) : reply_health(c);
}

static int on_body(struct conn *c, const void *in, size_t len)
{
    if (c->phase != PH_BODY)
        return 0;
    if (c->body.len + len > MAX_BODY)
        return -1;
    return buf_append(&c->body, in, len);
}

static int on_writeable(struct conn *c)
{
    if (!c->due)
        return 0; /* not ours: a token comes when its timer says */
    if (c->phase == PH_STREAM)
        return stream_turn(c);
    if (c->phase == PH_HELD)
        return held_turn(c);
    return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct conn *c = user;
    int rc;
    switch (reason) {
    case LWS_CALLBACK_HTTP:
        if (!c)
            return -1;
        rc = on_request(c, wsi, in ? (const char *)in : "");
        break;
    case LWS_CALLBACK_HTTP_BODY:
        rc = c ? on_body(c, in, len) : 0;
        break;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        rc = c && c->phase == PH_BODY ? handle_chat(c) : 0;
        break;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        rc = c ? on_writeable(c) : 0;
        break;
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_CLOSED_HTTP:
        if (c)
            conn_clear(c);
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
    return rc;
}

const struct lws_protocols server_protocol = {"http", callback, sizeof(struct conn), 0, 0,
                                              NULL, 0};
