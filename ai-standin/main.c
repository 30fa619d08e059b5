/* main.c -- ai-standin: a small OpenAI-compatible HTTP/1.1 server that the
 * tests and `make run` use instead of a real model.
 *
 * One thread, one epoll loop, non-blocking sockets. Every connection is a
 * small state machine (struct conn); a connection that waits for its next
 * token keeps a due time, and the loop sleeps until the nearest one.
 * Streamed answers are Server-Sent Events in a chunked body. What the answer
 * says is decided in script.c; the request head is parsed in http.c. */
#define _GNU_SOURCE
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "script.h"
#include "buf.h"
#include "clock.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "program.h"

#define READ_CHUNK 4096
#define OUT_HIGH (64 * 1024)     /* stop generating tokens above this much unsent */
#define RUN_BUDGET (256 * 1024)  /* bytes one connection may queue per turn */
#define LINGER_MS 2000           /* read and drop after our last byte, then close */
#define MAX_EVENTS 256

enum conn_state {
    ST_HEAD,    /* reading the request head */
    ST_BODY,    /* reading the request body */
    ST_HELD,    /* a non-streamed answer waits in held until due */
    ST_STREAM,  /* sending tokens */
    ST_HANG,    /* @@hang: never answering */
    ST_DONE,    /* response queued; flushing */
    ST_LINGER,  /* we shut down our side; waiting for the client's EOF */
};

struct conn {
    int fd;
    enum conn_state state;
    unsigned events;            /* epoll mask currently registered */
    struct buf in, out, held;
    size_t out_off;             /* bytes of out already sent */
    long long due_ms;           /* timer; 0 = none */
    int peer_eof;               /* the client will send nothing more */
    int discard;                /* input is read and dropped */
    int close_after;            /* close once the response is out */

    struct http_request req;
    size_t head_len;            /* of the request being read or answered */

    struct answer ans;          /* the chat request being answered */
    unsigned long long id;
    long long created;
    long delay_ms;
    int chunked;
    size_t next_token;
    int malformed_sent;
    struct buf event_head;      /* {"id":...,"model":..., shared by all events */

    struct conn *prev, *next;
};

static struct {
    int epfd, lfd, sigfd, spare_fd;
    struct conn *conns;
    size_t nconns;
    long delay_ms;
    const char *require_key;    /* STANDIN_REQUIRE_KEY, NULL = any key */
    const char *model;          /* listed by GET /v1/models */
    unsigned long long next_id;
    struct fail_table fails;
    struct buf scratch, event;
} srv = {.epfd = -1, .lfd = -1, .sigfd = -1, .spare_fd = -1};

/* Tags telling the non-connection descriptors apart in epoll data. */
static char listener_tag, signal_tag;

static int conn_run(struct conn *c);

/* ========================================================================
 * Connections
 * ===================================================================== */

static struct conn *conn_new(int fd)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->fd = fd;
    c->events = EPOLLIN;
    struct epoll_event ev = {.events = c->events, .data.ptr = c};
    if (epoll_ctl(srv.epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        log_warn("epoll_ctl add: %s", strerror(errno));
        free(c);
        return NULL;
    }
    c->next = srv.conns;
    if (srv.conns)
        srv.conns->prev = c;
    srv.conns = c;
    srv.nconns++;
    return c;
}

static void conn_free(struct conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        srv.conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv.nconns--;
    close(c->fd); /* also leaves the epoll set */
    buf_free(&c->in);
    buf_free(&c->out);
    buf_free(&c->held);
    buf_free(&c->event_head);
    answer_free(&c->ans);
    free(c);
}

/* Registers interest in what c waits for. Returns -1 when c was freed. */
static int conn_watch(struct conn *c)
{
    unsigned want = (c->peer_eof ? 0 : EPOLLIN) | (c->out_off < c->out.len ? EPOLLOUT : 0);
    if (want == c->events)
        return 0;
    struct epoll_event ev = {.events = want, .data.ptr = c};
    if (epoll_ctl(srv.epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
        log_warn("epoll_ctl mod: %s", strerror(errno));
        conn_free(c);
        return -1;
    }
    c->events = want;
    return 0;
}

/* Sends what it can of out. Returns -1 when the client is gone. */
static int conn_flush(struct conn *c)
{
    while (c->out_off < c->out.len) {
        ssize_t n = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (c->out_off >= c->out.len / 2) {
                buf_consume(&c->out, c->out_off);
                c->out_off = 0;
            }
            return 0;
        } else {
            return -1;
        }
    }
    c->out_off = 0;
    if (c->out.cap > 2 * OUT_HIGH)
        buf_free(&c->out);
    else
        buf_reset(&c->out);
    return 0;
}

/* Ready for the next request on a kept-alive connection. */
static void conn_reset(struct conn *c)
{
    answer_free(&c->ans);
    buf_free(&c->held);
    buf_reset(&c->event_head);
    memset(&c->req, 0, sizeof(c->req));
    c->head_len = 0;
    c->state = ST_HEAD;
    c->due_ms = 0;
    c->next_token = 0;
    c->malformed_sent = 0;
    if (c->in.len == 0)
        buf_free(&c->in);
}

/* Half-closes and drops input for a while, so the client reads our last
 * bytes instead of a reset. Returns -1 when c was freed. */
static int conn_linger(struct conn *c)
{
    if (c->peer_eof || shutdown(c->fd, SHUT_WR) != 0) {
        conn_free(c);
        return -1;
    }
    c->state = ST_LINGER;
    c->discard = 1;
    buf_free(&c->in);
    c->due_ms = clock_ms() + LINGER_MS;
    return 0;
}

/* ========================================================================
 * Responses
 * ===================================================================== */

/* A complete JSON response into dst. */
static int append_json_response(struct buf *dst, int status, const char *extra_headers,
                                const char *body, size_t len, int keep_alive)
{
    if (buf_printf(dst,
                   "HTTP/1.1 %d %s\r\n"
                   "Content-Type: application/json\r\n"
                   "Content-Length: %zu\r\n"
                   "%s"
                   "Connection: %s\r\n\r\n",
                   status, http_reason(status), len, extra_headers ? extra_headers : "",
                   keep_alive ? "keep-alive" : "close") != 0)
        return -1;
    return buf_append(dst, body, len);
}

/* {"error":{"message":...,"type":...[,"code":...]}} into the scratch buffer. */
static int error_body(const char *message, const char *type, const char *code)
{
    struct buf *b = &srv.scratch;
    buf_reset(b);
    if (buf_puts(b, "{\"error\":{\"message\":") != 0 ||
        buf_json_string(b, message, strlen(message)) != 0 ||
        buf_printf(b, ",\"type\":\"%s\",\"param\":null,\"code\":", type) != 0 ||
        (code ? buf_printf(b, "\"%s\"", code) : buf_puts(b, "null")) != 0 ||
        buf_puts(b, "}}") != 0)
        return -1;
    return 0;
}

/* Queues a JSON response; the connection stays usable if keep_alive. */
static int reply_json(struct conn *c, int status, const char *extra_headers, const char *body,
                      size_t len)
{
    int keep = c->req.keep_alive && !c->close_after;
    if (append_json_response(&c->out, status, extra_headers, body, len, keep) != 0)
        return -1;
    c->close_after = !keep;
    c->state = ST_DONE;
    return 0;
}

static int reply_error(struct conn *c, int status, const char *type, const char *code,
                       const char *extra_headers, const char *message)
{
    log_debug("%s %s -> %d %s", c->req.method[0] ? c->req.method : "-",
              c->req.path[0] ? c->req.path : "-", status, message);
    if (error_body(message, type, code) != 0)
        return -1;
    return reply_json(c, status, extra_headers, srv.scratch.data, srv.scratch.len);
}

/* An error about the request itself: answer it and close, ignoring the rest
 * of what the client sends. */
static int reject_request(struct conn *c, int status, const char *code, const char *message)
{
    c->close_after = 1;
    c->discard = 1;
    buf_reset(&c->in);
    return reply_error(c, status, "invalid_request_error", code, NULL, message);
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
    log_debug("GET %s -> 200", c->req.path);
    return reply_json(c, 200, NULL, b->data, b->len);
}

static int reply_health(struct conn *c)
{
    static const char body[] = "{\"status\":\"ok\"}";
    log_debug("GET %s -> 200", c->req.path);
    return reply_json(c, 200, NULL, body, sizeof(body) - 1);
}

/* @@fail=CODE: the error a real endpoint would send with that status. */
static int reply_fail(struct conn *c, int status)
{
    if (status == 429)
        return reply_error(c, 429, "requests", "rate_limit_exceeded", "Retry-After: 1\r\n",
                           "Rate limit reached (stand-in @@fail).");
    if (status >= 500)
        return reply_error(c, status, "server_error", NULL, NULL,
                           "The server had an error while processing your request "
                           "(stand-in @@fail).");
    return reply_error(c, status, "invalid_request_error", NULL, NULL,
                       "Request rejected (stand-in @@fail).");
}

/* ========================================================================
 * Answers
 * ===================================================================== */

/* The part of every chunk before "choices": {"id":...,"model":..., */
static int build_event_head(struct conn *c)
{
    struct buf *b = &c->event_head;
    buf_reset(b);
    if (buf_printf(b, "{\"id\":\"chatcmpl-standin-%llu\",\"object\":\"chat.completion.chunk\","
                      "\"created\":%lld,\"model\":", c->id, c->created) != 0 ||
        buf_json_string(b, c->ans.model, strlen(c->ans.model)) != 0 ||
        buf_puts(b, ",") != 0)
        return -1;
    return 0;
}

/* Frames p[0..n) as one chunk of the body (or as is, without chunking). */
static int queue_chunk(struct conn *c, const char *p, size_t n)
{
    if (!c->chunked)
        return buf_append(&c->out, p, n);
    if (buf_printf(&c->out, "%zx\r\n", n) != 0 || buf_append(&c->out, p, n) != 0)
        return -1;
    return buf_append(&c->out, "\r\n", 2);
}

/* "data: <srv.event>\n\n" as one chunk. */
static int queue_event(struct conn *c)
{
    struct buf *e = &srv.event;
    if (c->chunked && buf_printf(&c->out, "%zx\r\n", e->len + 8) != 0)
        return -1;
    if (buf_puts(&c->out, "data: ") != 0 || buf_append(&c->out, e->data, e->len) != 0)
        return -1;
    return buf_puts(&c->out, c->chunked ? "\n\n\r\n" : "\n\n");
}

/* A chat.completion.chunk with the given delta (raw JSON) and finish_reason. */
static int queue_delta(struct conn *c, const char *delta, size_t len, const char *finish)
{
    struct buf *e = &srv.event;
    buf_reset(e);
    if (buf_append(e, c->event_head.data, c->event_head.len) != 0 ||
        buf_puts(e, "\"choices\":[{\"index\":0,\"delta\":") != 0 ||
        buf_append(e, delta, len) != 0 ||
        buf_printf(e, ",\"finish_reason\":%s}]}", finish) != 0)
        return -1;
    return queue_event(c);
}

static int queue_token(struct conn *c, size_t i)
{
    char scratch[32];
    size_t n;
    const char *tok = answer_token(&c->ans, i, scratch, &n);
    struct buf *d = &srv.scratch;
    buf_reset(d);
    if (buf_puts(d, "{\"content\":") != 0 || buf_json_string(d, tok, n) != 0 ||
        buf_puts(d, "}") != 0)
        return -1;
    return queue_delta(c, d->data, d->len, "null");
}

static int queue_usage(struct conn *c)
{
    const struct answer *a = &c->ans;
    struct buf *e = &srv.event;
    buf_reset(e);
    if (buf_append(e, c->event_head.data, c->event_head.len) != 0 ||
        buf_printf(e, "\"choices\":[],\"usage\":{\"prompt_tokens\":%zu,\"completion_tokens\":%zu,"
                      "\"total_tokens\":%zu}}", a->prompt_tokens, a->ntokens,
                   a->prompt_tokens + a->ntokens) != 0)
        return -1;
    return queue_event(c);
}

static int queue_raw_event(struct conn *c, const char *data)
{
    buf_reset(&srv.event);
    return buf_puts(&srv.event, data) != 0 ? -1 : queue_event(c);
}

static int queue_end_of_body(struct conn *c)
{
    return c->chunked ? buf_puts(&c->out, "0\r\n\r\n") : 0;
}

/* Where a directive "after N tokens" triggers: -1 never, else N capped. */
static long trigger_at(long n, size_t ntokens)
{
    if (n < 0)
        return -1;
    return (size_t)n > ntokens ? (long)ntokens : n;
}

/* Queues the next piece of the stream: a token, a directive's effect, or
 * the end. */
static int stream_step(struct conn *c)
{
    const struct answer *a = &c->ans;
    long i = (long)c->next_token;

    if (i == trigger_at(a->dir.malformed, a->ntokens) && !c->malformed_sent) {
        c->malformed_sent = 1;
        return queue_raw_event(c, "{not json");
    }
    if (i == trigger_at(a->dir.error, a->ntokens)) {
        c->state = ST_DONE;
        c->close_after = 1;
        if (queue_raw_event(c, "{\"error\":{\"message\":\"stand-in error\","
                               "\"type\":\"server_error\"}}") != 0)
            return -1;
        return queue_end_of_body(c);
    }
    if (i == trigger_at(a->dir.cut, a->ntokens)) {
        c->state = ST_DONE; /* no [DONE], no last chunk: the client sees a cut */
        c->close_after = 1;
        return 0;
    }
    if (c->next_token < a->ntokens) {
        c->next_token++;
        return queue_token(c, (size_t)i);
    }
    c->state = ST_DONE;
    c->close_after |= !c->chunked;
    if (queue_delta(c, "{}", 2, "\"stop\"") != 0 || (a->include_usage && queue_usage(c) != 0) ||
        queue_raw_event(c, "[DONE]") != 0)
        return -1;
    return queue_end_of_body(c);
}

/* Queues tokens while they are due and the client keeps up. */
static int stream_pump(struct conn *c)
{
    size_t budget = c->out.len + RUN_BUDGET;
    while (c->state == ST_STREAM && c->due_ms == 0 && c->out.len - c->out_off < OUT_HIGH) {
        if (stream_step(c) != 0)
            return -1;
        if (c->state == ST_STREAM && c->delay_ms > 0)
            c->due_ms = clock_ms() + c->delay_ms;
        else if (c->state == ST_STREAM && c->out.len > budget)
            c->due_ms = clock_ms(); /* let the other connections have a turn */
    }
    return 0;
}

static int stream_start(struct conn *c)
{
    c->chunked = c->req.minor >= 1;
    c->close_after = !c->req.keep_alive || !c->chunked;
    if (build_event_head(c) != 0 ||
        buf_printf(&c->out,
                   "HTTP/1.1 200 OK\r\n"
                   "Content-Type: text/event-stream\r\n"
                   "Cache-Control: no-cache\r\n"
                   "%s"
                   "%s\r\n",
                   c->chunked ? "Transfer-Encoding: chunked\r\n" : "",
                   c->close_after ? "Connection: close\r\n" : "") != 0 ||
        queue_chunk(c, ": stand-in\n\n", 12) != 0 ||
        queue_delta(c, "{\"role\":\"assistant\",\"content\":\"\"}", 33, "null") != 0)
        return -1;
    c->state = ST_STREAM;
    c->due_ms = c->delay_ms > 0 ? clock_ms() + c->delay_ms : 0;
    return 0;
}

/* The chat.completion object into srv.scratch. */
static int completion_body(struct conn *c)
{
    const struct answer *a = &c->ans;
    struct buf *b = &srv.scratch, *text = &srv.event;
    buf_reset(b);
    buf_reset(text);
    if (answer_text(a, text) != 0 ||
        buf_printf(b, "{\"id\":\"chatcmpl-standin-%llu\",\"object\":\"chat.completion\","
                      "\"created\":%lld,\"model\":", c->id, c->created) != 0 ||
        buf_json_string(b, a->model, strlen(a->model)) != 0 ||
        buf_puts(b, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
                    "\"content\":") != 0 ||
        buf_json_string(b, text->data ? text->data : "", text->len) != 0 ||
        buf_printf(b, "},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":%zu,"
                      "\"completion_tokens\":%zu,\"total_tokens\":%zu}}",
                   a->prompt_tokens, a->ntokens, a->prompt_tokens + a->ntokens) != 0)
        return -1;
    if (text->cap > 2 * OUT_HIGH)
        buf_free(text);
    return 0;
}

/* A non-streamed answer, held back as long as streaming it would take. */
static int answer_whole(struct conn *c)
{
    const struct answer *a = &c->ans;
    int keep = c->req.keep_alive && a->dir.cut < 0;
    int status = 200;
    const char *body = srv.scratch.data;
    size_t len = srv.scratch.len;
    if (a->dir.error >= 0) {
        status = 500;
        if (error_body("stand-in error", "server_error", NULL) != 0)
            return -1;
        body = srv.scratch.data;
        len = srv.scratch.len;
    } else if (a->dir.malformed >= 0) {
        body = "{not json";
        len = 9;
    } else if (completion_body(c) != 0) {
        return -1;
    } else {
        body = srv.scratch.data;
        len = srv.scratch.len;
    }
    if (append_json_response(&c->held, status, NULL, body, len, keep) != 0)
        return -1;
    if (srv.scratch.cap > 2 * OUT_HIGH)
        buf_free(&srv.scratch); /* a huge answer: do not keep its memory */
    if (a->dir.cut >= 0) { /* the headers and half the body, then close */
        c->held.len -= (len + 1) / 2;
        c->held.data[c->held.len] = '\0';
    }
    c->close_after = !keep;
    c->state = ST_HELD;
    c->due_ms = clock_ms() + (long long)c->delay_ms * (long long)a->ntokens;
    return 0;
}

static int handle_chat(struct conn *c, const char *body, size_t len)
{
    struct answer *a = &c->ans;
    struct buf err = BUF_INIT;
    int rc = answer_parse(a, body, len, &err);
    if (rc != 0) {
        rc = reply_error(c, 400, "invalid_request_error", NULL, NULL,
                         err.len ? err.data : "Invalid request.");
        buf_free(&err);
        return rc;
    }
    c->id = ++srv.next_id;
    c->created = (long long)time(NULL);
    c->delay_ms = a->dir.delay_ms >= 0 ? a->dir.delay_ms : srv.delay_ms;
    log_debug("POST %s #%llu model=%s stream=%d tokens=%zu delay=%ld question=\"%.200s\"",
              c->req.path, c->id, a->model, a->stream, a->ntokens, c->delay_ms, a->question);
    if (answer_should_fail(&srv.fails, a))
        return reply_fail(c, a->dir.fail_code);
    if (a->dir.hang) {
        c->state = ST_HANG;
        return 0;
    }
    return a->stream ? stream_start(c) : answer_whole(c);
}

/* ========================================================================
 * Requests
 * ===================================================================== */

enum route { ROUTE_NONE, ROUTE_CHAT, ROUTE_MODELS, ROUTE_HEALTH };

static enum route route_of(const struct http_request *r)
{
    int post = strcmp(r->method, "POST") == 0, get = strcmp(r->method, "GET") == 0;
    if (post && strcmp(r->path, "/v1/chat/completions") == 0)
        return ROUTE_CHAT;
    if (get && strcmp(r->path, "/v1/models") == 0)
        return ROUTE_MODELS;
    if (get && strcmp(r->path, "/health") == 0)
        return ROUTE_HEALTH;
    return ROUTE_NONE;
}

/* Authorization, if present, must be "Bearer <key>" (and the expected key,
 * when one is configured). Returns 0 if fine, 1 when a 401 was queued, -1
 * on a memory failure. */
static int check_auth(struct conn *c)
{
    const struct http_request *r = &c->req;
    const char *key = NULL;
    size_t klen = 0;
    if (r->auth && r->auth_len > 7 && strncasecmp(r->auth, "Bearer ", 7) == 0) {
        key = r->auth + 7;
        klen = r->auth_len - 7;
        while (klen > 0 && *key == ' ')
            key++, klen--;
    }
    if ((r->auth || srv.require_key) && klen == 0)
        return reject_request(c, 401, NULL, "You didn't provide an API key. You need to "
                              "provide your API key in an Authorization header using Bearer "
                              "auth (i.e. Authorization: Bearer YOUR_KEY).") ? -1 : 1;
    if (srv.require_key &&
        (strlen(srv.require_key) != klen || memcmp(srv.require_key, key, klen) != 0))
    {
        /* like OpenAI, quote the key back: the worker must mask it in its logs */
        char msg[320];
        snprintf(msg, sizeof(msg), "Incorrect API key provided: %.*s.", klen > 256 ? 256 : (int)klen,
                 key);
        return reject_request(c, 401, "invalid_api_key", msg) ? -1 : 1;
    }
    return 0;
}

static const char *head_error_message(int status)
{
    switch (status) {
    case 413: return "Request body too large.";
    case 417: return "Unsupported Expect header.";
    case 505: return "HTTP version not supported.";
    }
    return "Malformed HTTP request.";
}

/* Decides from the head alone whether to read the body: either moves c to
 * ST_BODY or queues a rejection. Returns -1 on a memory failure. */
static int on_head(struct conn *c)
{
    struct http_request *r = &c->req;
    int status = http_parse_head(r, c->in.data, c->head_len);
    if (status != 0)
        return reject_request(c, status, NULL, head_error_message(status));
    enum route route = route_of(r);
    if (route == ROUTE_NONE) {
        char msg[320];
        snprintf(msg, sizeof(msg), "Invalid URL (%s %s)", r->method, r->path);
        return reject_request(c, 404, NULL, msg);
    }
    if (route != ROUTE_HEALTH) {
        int rc = check_auth(c);
        if (rc != 0)
            return rc < 0 ? -1 : 0;
    }
    if (r->has_transfer_encoding || (route == ROUTE_CHAT && !r->has_length))
        return reject_request(c, 411, NULL, "A Content-Length header is required.");
    if (r->expect_continue && r->minor >= 1 && c->in.len < c->head_len + r->content_length &&
        buf_puts(&c->out, "HTTP/1.1 100 Continue\r\n\r\n") != 0)
        return -1;
    c->state = ST_BODY;
    return 0;
}

/* The whole request is in c->in: answer it. */
static int on_request(struct conn *c)
{
    const char *body = c->in.data + c->head_len;
    size_t len = c->req.content_length;
    int rc;
    switch (route_of(&c->req)) {
    case ROUTE_CHAT: rc = handle_chat(c, body, len); break;
    case ROUTE_MODELS: rc = reply_models(c); break;
    default: rc = reply_health(c); break;
    }
    buf_consume(&c->in, c->head_len + len);
    return rc;
}

/* Sets c->head_len once the head is complete. Returns 0, or 1 when it is
 * too large. Skips empty lines before a request (RFC 9112 2.2). */
static int find_head(struct conn *c)
{
    size_t skip = 0;
    while (skip + 1 < c->in.len && c->in.data[skip] == '\r' && c->in.data[skip + 1] == '\n')
        skip += 2;
    if (skip)
        buf_consume(&c->in, skip);
    char *end = c->in.len ? memmem(c->in.data, c->in.len, "\r\n\r\n", 4) : NULL;
    if (end)
        c->head_len = (size_t)(end - c->in.data) + 4;
    return c->head_len > HTTP_MAX_HEAD || (!end && c->in.len > HTTP_MAX_HEAD);
}

/* Advances the request parser as far as the input allows. Returns -1 on a
 * memory failure. */
static int conn_parse(struct conn *c)
{
    if (c->state == ST_HEAD) {
        if (find_head(c))
            return reject_request(c, 431, NULL, "Request header fields too large.");
        if (c->head_len == 0)
            return 0;
        if (on_head(c) != 0)
            return -1;
    }
    if (c->state == ST_BODY && c->in.len >= c->head_len + c->req.content_length)
        return on_request(c);
    return 0;
}

/* ========================================================================
 * The event loop
 * ===================================================================== */

/* Moves c forward as far as it can without blocking. Returns -1 when c was
 * freed. */
static int conn_run(struct conn *c)
{
    for (;;) {
        if (conn_parse(c) != 0 || (c->state == ST_STREAM && stream_pump(c) != 0)) {
            log_warn("out of memory answering a request; closing the connection");
            conn_free(c);
            return -1;
        }
        if (conn_flush(c) != 0) {
            conn_free(c);
            return -1;
        }
        if (c->out_off < c->out.len)
            break; /* the client is slow: wait for EPOLLOUT */
        if (c->state == ST_STREAM && c->due_ms == 0)
            continue;
        if (c->state != ST_DONE)
            break;
        if (c->close_after)
            return conn_linger(c) != 0 ? -1 : conn_watch(c);
        conn_reset(c); /* keep-alive: maybe a pipelined request is waiting */
    }
    return conn_watch(c);
}

/* How much input c may hold in its state; more is an abuse. */
static size_t input_limit(const struct conn *c)
{
    if (c->state == ST_HEAD)
        return HTTP_MAX_HEAD + 1;
    if (c->state == ST_BODY)
        return c->head_len + c->req.content_length;
    return HTTP_MAX_HEAD; /* pipelined behind the current answer */
}

/* Reads what the socket has, up to the limit. Returns -1 on a socket error. */
static int conn_read(struct conn *c)
{
    for (;;) {
        if (c->discard)
            buf_reset(&c->in);
        else if (c->in.len >= input_limit(c))
            return 0;
        if (buf_reserve(&c->in, READ_CHUNK) != 0)
            return -1;
        ssize_t n = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len - 1, 0);
        if (n > 0) {
            c->in.len += (size_t)n;
            c->in.data[c->in.len] = '\0';
        } else if (n == 0) {
            c->peer_eof = 1;
            return 0;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return 0;
        } else if (errno != EINTR) {
            return -1;
        }
    }
}

static void on_readable(struct conn *c)
{
    if (conn_read(c) != 0) {
        conn_free(c);
        return;
    }
    if (conn_run(c) != 0)
        return;
    if (c->peer_eof) {
        /* A whole request was sent before the EOF: finish answering it.
         * Anything else (mid-request, mid-stream, hanging) ends here. */
        if (c->state != ST_HELD && c->state != ST_DONE) {
            conn_free(c);
            return;
        }
        c->close_after = 1;
        (void)conn_watch(c);
        return;
    }
    if (c->state != ST_HEAD && c->state != ST_BODY && c->in.len >= input_limit(c)) {
        log_debug("client sent too much while being answered; closing");
        conn_free(c);
    }
}

static void on_timer(struct conn *c)
{
    c->due_ms = 0;
    switch (c->state) {
    case ST_LINGER:
        conn_free(c);
        return;
    case ST_HELD:
        if (c->out.len == 0) { /* the usual case: no copy */
            struct buf tmp = c->out;
            c->out = c->held;
            c->held = tmp;
            c->out_off = 0;
        } else if (buf_append(&c->out, c->held.data, c->held.len) != 0) {
            conn_free(c);
            return;
        }
        buf_free(&c->held);
        c->state = ST_DONE;
        break;
    default:
        break;
    }
    (void)conn_run(c);
}

static void run_timers(void)
{
    long long now = clock_ms();
    struct conn *next;
    for (struct conn *c = srv.conns; c; c = next) {
        next = c->next;
        if (c->due_ms && c->due_ms <= now)
            on_timer(c);
    }
}

/* Milliseconds until the nearest timer, -1 for none. */
static int next_timeout(void)
{
    long long nearest = 0;
    for (struct conn *c = srv.conns; c; c = c->next)
        if (c->due_ms && (!nearest || c->due_ms < nearest))
            nearest = c->due_ms;
    if (!nearest)
        return -1;
    long long wait = nearest - clock_ms();
    return wait < 0 ? 0 : wait > 60000 ? 60000 : (int)wait;
}

/* Out of descriptors: accept and drop one client, so the listener does not
 * stay readable forever. */
static void shed_client(void)
{
    log_warn("accept: %s; refusing a connection", strerror(errno));
    if (srv.spare_fd < 0)
        return;
    close(srv.spare_fd);
    int fd = accept(srv.lfd, NULL, NULL);
    if (fd >= 0)
        close(fd);
    srv.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void accept_clients(void)
{
    for (;;) {
        int fd = accept4(srv.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE) {
                if (srv.spare_fd < 0)
                    return;
                shed_client();
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                log_warn("accept: %s", strerror(errno));
            return;
        }
        int one = 1;
        if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 && errno != EOPNOTSUPP)
            log_debug("TCP_NODELAY: %s", strerror(errno));
        if (!conn_new(fd))
            close(fd);
    }
}

static void on_event(struct epoll_event *ev)
{
    if (ev->data.ptr == &listener_tag) {
        accept_clients();
        return;
    }
    struct conn *c = ev->data.ptr;
    if (ev->events & (EPOLLHUP | EPOLLERR)) {
        conn_free(c); /* reset, or both directions closed */
        return;
    }
    if (ev->events & EPOLLIN)
        on_readable(c);
    else if (ev->events & EPOLLOUT)
        (void)conn_run(c);
}

/* Returns 1 when a stop signal was read. */
static int stop_requested(void)
{
    struct signalfd_siginfo si;
    ssize_t n = read(srv.sigfd, &si, sizeof(si));
    if (n != (ssize_t)sizeof(si))
        return 0;
    log_info("signal %u: stopping (%zu connections open)", si.ssi_signo, srv.nconns);
    return 1;
}

static int event_loop(void)
{
    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(srv.epfd, events, MAX_EVENTS, next_timeout());
        if (n < 0 && errno != EINTR) {
            log_error("epoll_wait: %s", strerror(errno));
            return -1;
        }
        for (int i = 0; i < n; i++) {
            if (events[i].data.ptr == &signal_tag) {
                if (stop_requested())
                    return 0;
                continue;
            }
            on_event(&events[i]);
        }
        run_timers();
    }
}

/* ========================================================================
 * Setup
 * ===================================================================== */

static int open_listener(const char *host, long port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE};
    struct addrinfo *res;
    char service[16];
    snprintf(service, sizeof(service), "%ld", port);
    int rc = getaddrinfo(host && host[0] ? host : NULL, service, &hints, &res);
    if (rc != 0) {
        log_error("cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        int one = 1;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
            bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 4096) != 0) {
            log_error("cannot listen on %s:%ld: %s", host, port, strerror(errno));
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

static int watch_fd(int fd, void *tag)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = tag};
    if (epoll_ctl(srv.epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        log_error("epoll_ctl: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* SIGTERM/SIGINT arrive through a signalfd; SIGPIPE is ignored. */
static int setup_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigset_t set;
    if (sigaction(SIGPIPE, &sa, NULL) != 0 || sigemptyset(&set) != 0 ||
        sigaddset(&set, SIGTERM) != 0 || sigaddset(&set, SIGINT) != 0 ||
        sigprocmask(SIG_BLOCK, &set, NULL) != 0) {
        log_error("signals: %s", strerror(errno));
        return -1;
    }
    srv.sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (srv.sigfd < 0) {
        log_error("signalfd: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* Thousands of streaming clients need more than the usual 1024 descriptors. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
        return;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        log_warn("cannot raise the descriptor limit: %s", strerror(errno));
}

static int server_start(const struct config *cfg)
{
    const char *key = getenv("STANDIN_REQUIRE_KEY");
    srv.require_key = key && key[0] ? key : NULL;
    log_set_secret(srv.require_key ? srv.require_key : cfg->ai_api_key);
    srv.model = cfg->ai_model[0] ? cfg->ai_model : "ai-standin";
    srv.delay_ms = cfg->standin_delay_ms;
    raise_fd_limit();
    srv.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    srv.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (srv.epfd < 0) {
        log_error("epoll_create1: %s", strerror(errno));
        return -1;
    }
    if (setup_signals() != 0 || watch_fd(srv.sigfd, &signal_tag) != 0)
        return -1;
    srv.lfd = open_listener(cfg->bind, cfg->standin_port);
    if (srv.lfd < 0 || watch_fd(srv.lfd, &listener_tag) != 0)
        return -1;
    log_info("listening on %s:%ld (delay %ld ms between tokens%s)", cfg->bind,
             cfg->standin_port, srv.delay_ms, srv.require_key ? ", API key required" : "");
    return 0;
}

static void server_stop(void)
{
    while (srv.conns)
        conn_free(srv.conns);
    if (srv.lfd >= 0)
        close(srv.lfd);
    if (srv.sigfd >= 0)
        close(srv.sigfd);
    if (srv.epfd >= 0)
        close(srv.epfd);
    if (srv.spare_fd >= 0)
        close(srv.spare_fd);
    fail_table_free(&srv.fails);
    buf_free(&srv.scratch);
    buf_free(&srv.event);
}

int main(int argc, char **argv)
{
    struct config cfg;
    const struct config_usage usage = {
        "ai-standin", "an OpenAI-compatible stand-in model for tests and `make run`; "
        "directives in the question: @@delay=MS @@fail=CODE[*N] @@cut=N @@malformed=N "
        "@@error=N @@tokens=N @@hang"};
    int rc;
    if (program_start(&cfg, argc, argv, &usage, &rc))
        return rc;
    rc = server_start(&cfg) == 0 && event_loop() == 0 ? 0 : 1;
    server_stop();
    log_info("stopped");
    program_end(&cfg);
    return rc;
}
