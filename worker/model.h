/* model.h -- one streaming call to an OpenAI-compatible /chat/completions.
 *
 * A call is a libcurl easy handle the caller adds to its multi handle. As
 * the answer streams in, delta text accumulates; model_call_flush() hands
 * what arrived to the delta callback. The caller flushes once per turn of its
 * event loop, so deltas read together travel together and none waits longer
 * than one turn. When curl reports the transfer done, model_call_finish()
 * (which flushes first) says how it ended. */
#ifndef AIMSG_MODEL_H
#define AIMSG_MODEL_H

#include <curl/curl.h>
#include <stddef.h>

struct model_request {
    const char *base_url;       /* ".../v1" */
    const char *api_key;        /* "" = no Authorization header */
    const char *model;
    const char *system_prompt;  /* "" = none */
    const char *text;           /* the question (may be empty for an image) */
    size_t text_len;
    const char *image_url;      /* data: URL, or NULL */
    long connect_timeout;       /* seconds */
    long idle_timeout;          /* seconds without a byte */
};

enum model_result {
    MODEL_OK,           /* answer complete */
    MODEL_RETRY,        /* failed before any token; worth another try */
    MODEL_AUTH,         /* 401/403: the key or the endpoint is misconfigured */
    MODEL_FAILED,       /* failed for good (4xx, bad stream, cut after tokens) */
};

typedef void model_delta_fn(void *ctx, const char *text, size_t len);
/* Called when text starts to wait for model_call_flush(). */
typedef void model_ready_fn(void *ctx);

struct model_call;

/* NULL when out of memory or the request cannot be encoded. */
struct model_call *model_call_new(const struct model_request *req, model_delta_fn *on_delta,
                                  model_ready_fn *on_ready, void *ctx);
CURL *model_call_easy(struct model_call *mc);
/* The call behind an easy handle curl reports on, and the ctx it was made for. */
struct model_call *model_call_of(CURL *easy);
void *model_call_context(const struct model_call *mc);
void model_call_flush(struct model_call *mc);
/* Classifies the finished transfer; why gets a line for the log. */
enum model_result model_call_finish(struct model_call *mc, CURLcode code, char *why,
                                    size_t whylen);
long model_call_tokens(const struct model_call *mc);     /* deltas delivered */
long model_call_retry_after_ms(const struct model_call *mc); /* 0 = not said */
void model_call_free(struct model_call *mc);

#endif
