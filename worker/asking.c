/* asking.c -- a task's model call. The model is the job's (the client's
 * "model", common/models.h) or the default. When ai_fallback_base_url is
 * set and the primary endpoint still fails before the first token after
 * its retries (connect errors, 408, 5xx, 429), the fallback endpoint is
 * asked (with ai_retries of its own); once a token was sent the endpoint
 * never changes. The done frame says which answered.
 *
 * Each call asks for the token usage (stream_options.include_usage); an
 * endpoint that refuses the option (a 400 naming it) is asked again at once
 * without it, and never again with it by this process. The done frame
 * carries the usage the model reported, and its script counts the answer
 * and its tokens for the asker and the day (common/usage.h). */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>

#include "state.h"
#include "clock.h"
#include "frame.h"
#include "log.h"
#include "messages.h"
#include "worker_metrics.h"

#define RETRY_BASE_MS 500
#define RETRY_MAX_MS 8000

/* The model name sent to the endpoint asked now. */
const char *asked_model(const struct task *t)
{
    const struct config *cfg = t->w->cfg;
    return t->fallback && cfg->ai_fallback_model[0] ? cfg->ai_fallback_model : t->model;
}

static void on_delta(void *ctx, const char *text, size_t len)
{
    struct task *t = ctx;
    if (t->seq == 0) {
        long long ms = clock_ms() - t->call_ms;
        worker_metrics_first_token((double)ms / 1000);
        log_info("job %s: first token after %lld ms", t->id, ms);
    }
    if (t->conversation && buf_append(&t->answer, text, len) != 0) {
        log_error("job %s: out of memory keeping its answer for conversation %s; not stored",
                  t->id, t->conversation);
        free(t->conversation); /* the turn would be cut: none is stored */
        t->conversation = NULL;
    }
    if (frame_chunk(&t->w->frame, t->id, t->seq, text, len) == 0 && task_emit(t, 0) == 0) {
        t->seq++;
        worker_metrics_chunk();
    }
}

static void on_ready(void *ctx)
{
    struct task *t = ctx;
    if (!t->dirty) {
        t->dirty = 1;
        SLIST_INSERT_HEAD(&t->w->dirty, t, dirty_link);
    }
}

void task_call_model(struct task *t)
{
    struct worker *w = t->w;
    struct model_request req = {
        .base_url = t->fallback ? w->cfg->ai_fallback_base_url : w->base_url,
        .api_key = t->fallback ? w->cfg->ai_fallback_api_key : w->cfg->ai_api_key,
        .model = asked_model(t),
        .system_prompt = w->cfg->ai_system_prompt,
        .history = t->history.items,
        .history_len = t->history.n,
        .text = t->content,
        .text_len = t->content_len,
        .image_url = t->image_url,
        .connect_timeout = w->cfg->ai_connect_timeout,
        .idle_timeout = w->cfg->ai_timeout,
        .max_event_bytes = (size_t)w->cfg->ai_max_event_bytes,
        .max_answer_bytes = (size_t)w->cfg->ai_max_answer_bytes,
        .max_answer_seconds = w->cfg->ai_max_answer_seconds,
        .include_usage = !w->no_stream_options[t->fallback],
    };
    if (t->state == TASK_WAITING)
        w->nwaiting--;
    t->state = TASK_STREAMING;
    t->call_ms = clock_ms();
    t->call = model_call_new(&req, on_delta, on_ready, t);
    if (!t->call || curl_multi_add_handle(w->multi, model_call_easy(t->call)) != CURLM_OK) {
        log_error("job %s: cannot start the model call", t->id);
        if (t->call)
            model_call_free(t->call);
        t->call = NULL;
        task_finish(t, MSG_UNAVAILABLE);
        return;
    }
}

static long retry_delay_ms(int attempt, long retry_after)
{
    long d = RETRY_BASE_MS << (attempt > 5 ? 5 : attempt);
    if (d > RETRY_MAX_MS)
        d = RETRY_MAX_MS;
    return retry_after > d ? retry_after : d;
}

void task_model_done(struct task *t, CURLcode code)
{
    struct worker *w = t->w;
    char why[300];
    enum model_outcome r = model_call_finish(t->call, code, why, sizeof(why));
    long tokens = model_call_tokens(t->call), retry_after = model_call_retry_after_ms(t->call);
    t->usage = model_call_usage(t->call);
    if (r != MODEL_OK && r != MODEL_NO_STREAM_OPTIONS) { /* (that one is asked again at once) */
        long status;
        const char *class = model_call_failure_class(t->call, code, &status);
        worker_metrics_model_error(class, status);
    }
    curl_multi_remove_handle(w->multi, model_call_easy(t->call));
    model_call_free(t->call);
    t->call = NULL;

    switch (r) {
    case MODEL_OK:
        task_finish(t, NULL);
        return;
    case MODEL_CONFIG:
        if (!w->auth_reported[t->fallback]++)
            log_error("the model endpoint %s rejected us (%s): check %s",
                      t->fallback ? w->cfg->ai_fallback_base_url : w->base_url, why,
                      t->fallback ? "ai_fallback_api_key and ai_fallback_base_url"
                                  : "ai_api_key and ai_base_url");
        task_finish(t, MSG_CONFIG);
        return;
    case MODEL_RETRYABLE:
    case MODEL_RATE_LIMITED:
        if (t->attempt < w->cfg->ai_retries && !w->stop_requested) {
            long d = retry_delay_ms(t->attempt, retry_after);
            t->attempt++;
            worker_metrics_retried();
            log_warn("job %s: %s; retry %d/%ld in %ld ms", t->id, why, t->attempt,
                     w->cfg->ai_retries, d);
            t->state = TASK_WAITING;
            w->nwaiting++;
            t->retry_at = clock_ms() + d;
            return;
        }
        if (!t->fallback && w->cfg->ai_fallback_base_url[0] && !w->stop_requested) {
            log_warn("job %s: %s; the primary endpoint failed %d time(s) before the first "
                     "token: asking the fallback %s", t->id, why, t->attempt + 1,
                     w->cfg->ai_fallback_base_url);
            t->fallback = 1;
            t->attempt = 0;
            task_call_model(t);
            return;
        }
        log_warn("job %s: %s; giving up after %d retries", t->id, why, t->attempt);
        task_finish(t, r == MODEL_RATE_LIMITED ? MSG_BUSY : MSG_UNAVAILABLE);
        return;
    case MODEL_BAD_RESPONSE:
    case MODEL_INTERRUPTED:
        log_warn("job %s: %s (after %ld token(s))", t->id, why, tokens);
        task_finish(t, tokens ? MSG_INTERRUPTED : MSG_INVALID);
        return;
    case MODEL_NO_STREAM_OPTIONS:
        log_warn("job %s: %s; the %s endpoint does not take stream_options: asking again "
                 "without it, and from now on (no token usage from it)", t->id, why,
                 t->fallback ? "fallback" : "primary");
        w->no_stream_options[t->fallback] = 1;
        if (w->stop_requested)
            task_finish(t, MSG_UNAVAILABLE);
        else
            task_call_model(t);
        return;
    case MODEL_TOO_BIG: /* the same request would go over again: not retried */
        log_warn("job %s: %s (after %ld token(s)); ended, not retried", t->id, why, tokens);
        task_finish(t, MSG_TOO_LONG);
        return;
    }
}
