/* model.c -- see model.h. */
#define _GNU_SOURCE /* memmem */
#define _POSIX_C_SOURCE 200809L
#include "model.h"

#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "clock.h"
#include "sse.h"

#define MAX_ERROR_BODY (64 * 1024)
/* A non-streamed answer's JSON: escapes (\uXXXX) make it up to 6 bytes per
 * byte of text, plus the envelope. */
#define PLAIN_BODY_FACTOR 6
#define PLAIN_BODY_SLACK (64 * 1024)

struct model_call {
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    model_delta_fn *on_delta;
    model_ready_fn *on_ready;
    void *ctx;

    struct sse sse;
    struct buf pending;         /* delta text read in the current write */
    struct buf plain;           /* non-SSE body: an error, or a non-streamed answer */
    long status;
    int is_sse;
    int started;                /* headers seen, status known */
    int saw_done;               /* [DONE] or finish_reason */
    long tokens;
    int include_usage;          /* the request asked for it */
    struct usage usage;         /* reported by the model; USAGE_UNKNOWN */
    size_t answer_bytes;        /* delta text read so far */
    size_t max_answer_bytes;
    long max_answer_seconds;
    long long started_ms;
    enum model_outcome failure; /* found while reading; MODEL_OK = none */
    char failure_why[256];
};

static char *encode_request(const struct model_request *req)
{
    json_t *messages = json_array();
    if (req->system_prompt && req->system_prompt[0])
        json_array_append_new(messages, json_pack("{s:s, s:s}", "role", "system", "content",
                                                  req->system_prompt));
    for (size_t i = 0; i < req->history_len; i++) {
        const struct model_turn *t = &req->history[i];
        json_array_append_new(messages, json_pack("{s:s, s:s#}", "role", "user", "content",
                                                  t->question, t->question_len));
        json_array_append_new(messages, json_pack("{s:s, s:s#}", "role", "assistant", "content",
                                                  t->answer, t->answer_len));
    }
    json_t *content;
    if (req->image_url) {
        content = json_array();
        if (req->text_len)
            json_array_append_new(content, json_pack("{s:s, s:s#}", "type", "text", "text",
                                                     req->text, req->text_len));
        json_array_append_new(content, json_pack("{s:s, s:{s:s}}", "type", "image_url",
                                                 "image_url", "url", req->image_url));
    } else {
        content = json_stringn(req->text, req->text_len);
    }
    json_array_append_new(messages, json_pack("{s:s, s:o}", "role", "user", "content", content));
    json_t *root = json_pack("{s:s, s:b, s:o}", "model", req->model, "stream", 1,
                             "messages", messages);
    if (root && req->include_usage &&
        json_object_set_new(root, "stream_options", json_pack("{s:b}", "include_usage", 1)) != 0) {
        json_decref(root);
        return NULL;
    }
    char *s = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    return s;
}

/* The first failure found while reading is the one reported. */
static void set_failure(struct model_call *mc, enum model_outcome kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_failure(struct model_call *mc, enum model_outcome kind, const char *fmt, ...)
{
    if (mc->failure != MODEL_OK)
        return;
    mc->failure = kind;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(mc->failure_why, sizeof(mc->failure_why), fmt, ap);
    va_end(ap);
}

/* A "usage" object with both counts (OpenAI's final chunk with
 * stream_options.include_usage, or a completion's); others are ignored (some
 * endpoints send "usage":null on every chunk). */
static void read_usage(struct model_call *mc, json_t *root)
{
    json_t *u = json_object_get(root, "usage");
    json_t *p = json_object_get(u, "prompt_tokens"), *c = json_object_get(u, "completion_tokens");
    if (json_is_integer(p) && json_is_integer(c) && json_integer_value(p) >= 0 &&
        json_integer_value(c) >= 0 && json_integer_value(p) <= LONG_MAX &&
        json_integer_value(c) <= LONG_MAX)
        mc->usage = (struct usage){(long)json_integer_value(p), (long)json_integer_value(c)};
}

/* One SSE event: a chunk, [DONE], or an error object. */
static int on_event(void *ctx, const char *data, size_t len)
{
    struct model_call *mc = ctx;
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        mc->saw_done = 1;
        return 0;
    }
    json_error_t jerr;
    json_t *root = json_loadb(data, len, 0, &jerr);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        set_failure(mc, MODEL_BAD_RESPONSE, "malformed JSON in the answer stream");
        return -1;
    }
    json_t *err = json_object_get(root, "error");
    if (err) {
        const char *m = json_string_value(json_object_get(err, "message"));
        set_failure(mc, MODEL_BAD_RESPONSE, "error in the answer stream: %.200s",
                    m ? m : "unknown");
        json_decref(root);
        return -1;
    }
    read_usage(mc, root);
    json_t *choice = json_array_get(json_object_get(root, "choices"), 0);
    json_t *content = json_object_get(json_object_get(choice, "delta"), "content");
    int rc = 0;
    size_t n = json_is_string(content) ? json_string_length(content) : 0;
    if (n > mc->max_answer_bytes - mc->answer_bytes) {
        set_failure(mc, MODEL_TOO_BIG, "the answer went over ai_max_answer_bytes (%zu)",
                    mc->max_answer_bytes);
        json_decref(root);
        return -1;
    }
    if (n > 0) {
        mc->answer_bytes += n;
        if (mc->pending.len == 0)
            mc->on_ready(mc->ctx);
        rc = buf_append(&mc->pending, json_string_value(content), n);
        mc->tokens++;
    }
    if (json_is_string(json_object_get(choice, "finish_reason")))
        mc->saw_done = 1;
    json_decref(root);
    return rc;
}

static void on_headers_done(struct model_call *mc)
{
    char *ctype = NULL;
    curl_easy_getinfo(mc->easy, CURLINFO_RESPONSE_CODE, &mc->status);
    curl_easy_getinfo(mc->easy, CURLINFO_CONTENT_TYPE, &ctype);
    mc->is_sse = mc->status == 200 && ctype && strstr(ctype, "event-stream");
    mc->started = 1;
}

static size_t on_write(char *p, size_t size, size_t n, void *ctx)
{
    struct model_call *mc = ctx;
    size_t len = size * n;
    if (!mc->started)
        on_headers_done(mc);
    if (!mc->is_sse && mc->status != 200) {
        /* an error body is only read for the log: the rest is dropped */
        size_t keep = MAX_ERROR_BODY - mc->plain.len;
        return buf_append(&mc->plain, p, len < keep ? len : keep) == 0 ? len : 0;
    }
    if (!mc->is_sse) {
        size_t cap = mc->max_answer_bytes * PLAIN_BODY_FACTOR + PLAIN_BODY_SLACK;
        if (len > cap - mc->plain.len) {
            set_failure(mc, MODEL_TOO_BIG, "a non-streamed answer went over %zu bytes", cap);
            return 0; /* aborts the transfer */
        }
        return buf_append(&mc->plain, p, len) == 0 ? len : 0;
    }
    switch (sse_feed(&mc->sse, p, len, on_event, mc)) {
    case SSE_OK:
        return len;
    case SSE_TOO_BIG:
        set_failure(mc, MODEL_TOO_BIG, "an event of the answer stream went over "
                    "ai_max_event_bytes (%zu)", mc->sse.max_event);
        return 0;
    case SSE_STOPPED:
        break;
    }
    set_failure(mc, MODEL_BAD_RESPONSE, "answer stream could not be read (out of memory)");
    return 0; /* aborts the transfer */
}

struct model_call *model_call_new(const struct model_request *req, model_delta_fn *on_delta,
                                  model_ready_fn *on_ready, void *ctx)
{
    struct model_call *mc = calloc(1, sizeof(*mc));
    if (!mc)
        return NULL;
    mc->on_delta = on_delta;
    mc->on_ready = on_ready;
    mc->ctx = ctx;
    mc->max_answer_bytes = req->max_answer_bytes;
    mc->max_answer_seconds = req->max_answer_seconds;
    mc->include_usage = req->include_usage;
    mc->usage = USAGE_UNKNOWN;
    mc->started_ms = clock_ms();
    sse_init(&mc->sse, req->max_event_bytes);
    mc->body = encode_request(req);
    mc->easy = curl_easy_init();
    if (!mc->body || !mc->easy)
        goto fail;

    char url[1024];
    size_t blen = strlen(req->base_url);
    while (blen > 0 && req->base_url[blen - 1] == '/')
        blen--;
    snprintf(url, sizeof(url), "%.*s/chat/completions", (int)blen, req->base_url);

    struct curl_slist *h = NULL;
    h = curl_slist_append(h, "Content-Type: application/json");
    if (h)
        h = curl_slist_append(h, "Accept: text/event-stream");
    if (h)
        h = curl_slist_append(h, "Expect:");
    if (h && req->api_key && req->api_key[0]) {
        struct buf auth = BUF_INIT;
        if (buf_printf(&auth, "Authorization: Bearer %s", req->api_key) == 0)
            h = curl_slist_append(h, auth.data);
        buf_free(&auth);
    }
    if (!h)
        goto fail;
    mc->headers = h;

    CURL *e = mc->easy;
    if (curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, mc->headers) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, mc->body) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_WRITEDATA, mc) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PRIVATE, mc) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, req->connect_timeout) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, req->idle_timeout) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_TIMEOUT, req->max_answer_seconds) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "") != CURLE_OK)
        goto fail;
    return mc;
fail:
    model_call_free(mc);
    return NULL;
}

void model_call_flush(struct model_call *mc)
{
    if (mc->pending.len) {
        mc->on_delta(mc->ctx, mc->pending.data, mc->pending.len);
        buf_reset(&mc->pending);
    }
}

struct model_call *model_call_of(CURL *easy)
{
    struct model_call *mc = NULL;
    return curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&mc) == CURLE_OK ? mc : NULL;
}

void *model_call_context(const struct model_call *mc)
{
    return mc->ctx;
}

CURL *model_call_easy(struct model_call *mc)
{
    return mc->easy;
}

long model_call_tokens(const struct model_call *mc)
{
    return mc->tokens;
}

struct usage model_call_usage(const struct model_call *mc)
{
    return mc->usage;
}

long model_call_retry_after_ms(const struct model_call *mc)
{
    curl_off_t secs = 0;
    if (curl_easy_getinfo(mc->easy, CURLINFO_RETRY_AFTER, &secs) != CURLE_OK || secs <= 0)
        return 0;
    return secs > 60 ? 60000 : (long)secs * 1000;
}

/* The "message" of an OpenAI-style error body, for the log. */
static void error_body_message(struct model_call *mc, char *out, size_t len)
{
    json_t *root = json_loadb(mc->plain.data ? mc->plain.data : "", mc->plain.len, 0, NULL);
    const char *m = json_string_value(json_object_get(json_object_get(root, "error"), "message"));
    snprintf(out, len, "%s", m ? m : "");
    json_decref(root);
}

/* The error body names stream_options: the endpoint does not take the
 * option. Its shape varies (OpenAI: error.message / error.param, e.g.
 * "Unrecognized request argument supplied: stream_options"; pydantic
 * servers: detail[].loc ["body","stream_options"], "Extra inputs are not
 * permitted"), so the name is looked for anywhere in the body. At worst an
 * unrelated 400 that quotes the request is asked once more without it. */
static int rejects_stream_options(struct model_call *mc)
{
    static const char name[] = "stream_options";
    return mc->include_usage && (mc->status == 400 || mc->status == 422) && mc->plain.data &&
           memmem(mc->plain.data, mc->plain.len, name, sizeof(name) - 1) != NULL;
}

/* A 200 that was not an event stream: a non-streamed completion. */
static enum model_outcome finish_plain_answer(struct model_call *mc, char *why, size_t whylen)
{
    json_t *root = json_loadb(mc->plain.data ? mc->plain.data : "", mc->plain.len, 0, NULL);
    json_t *choice = json_array_get(json_object_get(root, "choices"), 0);
    json_t *content = json_object_get(json_object_get(choice, "message"), "content");
    enum model_outcome r = MODEL_BAD_RESPONSE;
    if (json_is_string(content) && json_string_length(content) > mc->max_answer_bytes) {
        snprintf(why, whylen, "the answer went over ai_max_answer_bytes (%zu)",
                 mc->max_answer_bytes);
        r = MODEL_TOO_BIG;
    } else if (json_is_string(content)) {
        read_usage(mc, root);
        if (json_string_length(content))
            mc->on_delta(mc->ctx, json_string_value(content), json_string_length(content));
        mc->tokens++;
        r = MODEL_OK;
    } else {
        snprintf(why, whylen, "the model answered 200 with neither a stream nor a completion");
    }
    json_decref(root);
    return r;
}

/* curl's total timeout (ai_max_answer_seconds), not its idle one, fired. */
static int out_of_time(const struct model_call *mc, CURLcode code)
{
    return code == CURLE_OPERATION_TIMEDOUT &&
           clock_ms() - mc->started_ms >= (long long)mc->max_answer_seconds * 1000;
}

static enum model_outcome http_error_outcome(long status)
{
    if (status == 401 || status == 403)
        return MODEL_CONFIG;
    if (status == 429)
        return MODEL_RATE_LIMITED;
    if (status == 408 || status >= 500)
        return MODEL_RETRYABLE;
    return MODEL_BAD_RESPONSE;
}

enum model_outcome model_call_finish(struct model_call *mc, CURLcode code, char *why,
                                     size_t whylen)
{
    if (!mc->started && code == CURLE_OK)
        on_headers_done(mc);
    model_call_flush(mc);
    why[0] = '\0';
    if (mc->failure != MODEL_OK) {
        snprintf(why, whylen, "%s", mc->failure_why);
        return mc->failure;
    }
    if (out_of_time(mc, code)) {
        snprintf(why, whylen, "the answer went over ai_max_answer_seconds (%ld)",
                 mc->max_answer_seconds);
        return MODEL_TOO_BIG;
    }
    if (code != CURLE_OK) {
        snprintf(why, whylen, "%s", curl_easy_strerror(code));
        return mc->tokens == 0 ? MODEL_RETRYABLE : MODEL_INTERRUPTED;
    }
    if (mc->status != 200) {
        char m[200];
        error_body_message(mc, m, sizeof(m));
        snprintf(why, whylen, "HTTP %ld%s%s", mc->status, m[0] ? ": " : "", m);
        return rejects_stream_options(mc) ? MODEL_NO_STREAM_OPTIONS
                                          : http_error_outcome(mc->status);
    }
    if (!mc->is_sse)
        return finish_plain_answer(mc, why, whylen);
    if (!mc->saw_done) {
        snprintf(why, whylen, "the answer stream ended before [DONE]");
        return mc->tokens == 0 ? MODEL_RETRYABLE : MODEL_INTERRUPTED;
    }
    return MODEL_OK;
}

void model_call_free(struct model_call *mc)
{
    if (!mc)
        return;
    if (mc->easy)
        curl_easy_cleanup(mc->easy);
    curl_slist_free_all(mc->headers);
    free(mc->body);
    sse_free(&mc->sse);
    buf_free(&mc->pending);
    buf_free(&mc->plain);
    free(mc);
}

const char *model_call_failure_class(const struct model_call *mc, CURLcode code, long *status)
{
    *status = 0;
    if (mc->failure == MODEL_TOO_BIG || out_of_time(mc, code))
        return "too_big";
    if (mc->failure != MODEL_OK)
        return "bad_response"; /* malformed stream, an error event */
    switch (code) {
    case CURLE_OK:
        break;
    case CURLE_OPERATION_TIMEDOUT:
        return "timeout";
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_SSL_CONNECT_ERROR:
        return "connect";
    default:
        return "cut";
    }
    if (mc->status != 200) {
        *status = mc->status;
        return "http";
    }
    return mc->is_sse && !mc->saw_done ? "cut" : "bad_response";
}
