/* model.c -- see model.h. */
#define _POSIX_C_SOURCE 200809L
#include "model.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "sse.h"

#define MAX_ERROR_BODY (64 * 1024)
#define MAX_PLAIN_BODY (16 * 1024 * 1024)

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
    char stream_error[256];     /* error found inside a 200 stream */
};

static char *encode_request(const struct model_request *req)
{
    json_t *messages = json_array();
    if (req->system_prompt && req->system_prompt[0])
        json_array_append_new(messages, json_pack("{s:s, s:s}", "role", "system", "content",
                                                  req->system_prompt));
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
    char *s = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    return s;
}

static void set_stream_error(struct model_call *mc, const char *msg)
{
    if (!mc->stream_error[0])
        snprintf(mc->stream_error, sizeof(mc->stream_error), "%s", msg);
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
        set_stream_error(mc, "malformed JSON in the answer stream");
        return -1;
    }
    json_t *err = json_object_get(root, "error");
    if (err) {
        const char *m = json_string_value(json_object_get(err, "message"));
        char msg[200];
        snprintf(msg, sizeof(msg), "error in the answer stream: %s", m ? m : "unknown");
        set_stream_error(mc, msg);
        json_decref(root);
        return -1;
    }
    json_t *choice = json_array_get(json_object_get(root, "choices"), 0);
    json_t *content = json_object_get(json_object_get(choice, "delta"), "content");
    int rc = 0;
    if (json_is_string(content) && json_string_length(content) > 0) {
        if (mc->pending.len == 0)
            mc->on_ready(mc->ctx);
        rc = buf_append(&mc->pending, json_string_value(content), json_string_length(content));
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
    if (!mc->is_sse) {
        size_t cap = mc->status == 200 ? MAX_PLAIN_BODY : MAX_ERROR_BODY;
        if (mc->plain.len + len > cap)
            len = cap > mc->plain.len ? cap - mc->plain.len : 0;
        return buf_append(&mc->plain, p, len) == 0 ? size * n : 0;
    }
    if (sse_feed(&mc->sse, p, len, on_event, mc) != 0) {
        set_stream_error(mc, "answer stream could not be read");
        return 0; /* aborts the transfer */
    }
    return len;
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
    sse_init(&mc->sse);
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

/* A 200 that was not an event stream: a non-streamed completion. */
static enum model_result finish_plain_answer(struct model_call *mc, char *why, size_t whylen)
{
    json_t *root = json_loadb(mc->plain.data ? mc->plain.data : "", mc->plain.len, 0, NULL);
    json_t *choice = json_array_get(json_object_get(root, "choices"), 0);
    json_t *content = json_object_get(json_object_get(choice, "message"), "content");
    enum model_result r = MODEL_FAILED;
    if (json_is_string(content)) {
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

enum model_result model_call_finish(struct model_call *mc, CURLcode code, char *why, size_t whylen)
{
    if (!mc->started && code == CURLE_OK)
        on_headers_done(mc);
    model_call_flush(mc);
    why[0] = '\0';
    if (mc->stream_error[0]) {
        snprintf(why, whylen, "%s", mc->stream_error);
        return MODEL_FAILED;
    }
    if (code != CURLE_OK) {
        snprintf(why, whylen, "%s", curl_easy_strerror(code));
        return mc->tokens == 0 ? MODEL_RETRY : MODEL_FAILED;
    }
    if (mc->status != 200) {
        char m[200];
        error_body_message(mc, m, sizeof(m));
        snprintf(why, whylen, "HTTP %ld%s%s", mc->status, m[0] ? ": " : "", m);
        if (mc->status == 401 || mc->status == 403)
            return MODEL_AUTH;
        if (mc->status == 429 || mc->status == 408 || mc->status >= 500)
            return MODEL_RETRY;
        return MODEL_FAILED;
    }
    if (!mc->is_sse)
        return finish_plain_answer(mc, why, whylen);
    if (!mc->saw_done) {
        snprintf(why, whylen, "the answer stream ended before [DONE]");
        return mc->tokens == 0 ? MODEL_RETRY : MODEL_FAILED;
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
