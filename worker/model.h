/* model.h -- one streaming call to an OpenAI-compatible /chat/completions.
 *
 * A call is a libcurl easy handle the caller adds to its multi handle. As
 * the answer streams in, delta text accumulates; model_call_flush() hands
 * what arrived to the delta callback. The caller flushes once per turn of its
 * event loop, so deltas read together travel together and none waits longer
 * than one turn. When curl reports the transfer done, model_call_finish()
 * (which flushes first) says how it ended: one class per way of failing, so
 * the caller decides what to do (retry, which message) from the class alone.
 *
 * Every call is bounded: one SSE event, the answer's text (or its body, when
 * not streamed) and its time each have a cap; going over one ends the call
 * as MODEL_TOO_BIG. */
#ifndef AIMSG_MODEL_H
#define AIMSG_MODEL_H

#include <curl/curl.h>
#include <stddef.h>

#include "usage.h"

/* An earlier turn of the conversation, sent before the question. */
struct model_turn {
    const char *question;
    size_t question_len;
    const char *answer;
    size_t answer_len;
};

struct model_request {
    const char *base_url;       /* ".../v1" */
    const char *api_key;        /* "" = no Authorization header */
    const char *model;
    const char *system_prompt;  /* "" = none */
    const struct model_turn *history; /* the conversation so far, oldest first */
    size_t history_len;
    const char *text;           /* the question (may be empty for an image) */
    size_t text_len;
    const char *image_url;      /* data: URL, or NULL */
    long connect_timeout;       /* seconds */
    long idle_timeout;          /* seconds without a byte */
    size_t max_event_bytes;     /* data of one SSE event */
    size_t max_answer_bytes;    /* the answer's text; a plain body 6x that + 64 KiB */
    long max_answer_seconds;    /* the whole call */
    int include_usage;          /* ask for usage in the stream (stream_options) */
};

enum model_outcome {
    MODEL_OK,           /* answer complete */
    MODEL_RETRYABLE,    /* failed before any token (connect, 408, 5xx, cut): try again,
                         * not sooner than model_call_retry_after_ms() */
    MODEL_RATE_LIMITED, /* 429: the same, and the model is busy */
    MODEL_CONFIG,       /* 401/403: the key or the endpoint is misconfigured */
    MODEL_BAD_RESPONSE, /* other 4xx, malformed stream, error event, no completion */
    MODEL_INTERRUPTED,  /* the transfer broke after tokens were delivered */
    MODEL_TOO_BIG,      /* an event, the answer or its time went over its cap */
    MODEL_NO_STREAM_OPTIONS, /* 400/422 naming stream_options (include_usage was
                         * asked): the endpoint does not take it; ask without */
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
enum model_outcome model_call_finish(struct model_call *mc, CURLcode code, char *why,
                                    size_t whylen);
long model_call_tokens(const struct model_call *mc);     /* deltas delivered */
/* The usage the model reported (the last "usage" object of the stream, or
 * of a non-streamed completion); USAGE_UNKNOWN when none. */
struct usage model_call_usage(const struct model_call *mc);
/* Why a call that did not end MODEL_OK failed, for the metrics: connect,
 * timeout, cut (the transfer broke), http (then *status is the HTTP
 * status), bad_response or too_big. Before model_call_free. */
const char *model_call_failure_class(const struct model_call *mc, CURLcode code, long *status);
long model_call_retry_after_ms(const struct model_call *mc); /* 0 = not said */
void model_call_free(struct model_call *mc);

#endif
