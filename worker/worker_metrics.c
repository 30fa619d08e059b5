/* worker_metrics.c -- see worker_metrics.h. */
#include "worker_metrics.h"

#include <stdio.h>
#include <string.h>

#include "metrics.h"

static const double latency_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                        1,     2.5,  5,     10,   30,  60,   120};
static const double duration_bounds[] = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600};

static const struct metric_family answers = {
    "aimsg_answers_total", METRIC_COUNTER, "Answers ended, by outcome (done, error, cancelled).",
    NULL, 0};
static const struct metric_family model_errors = {
    "aimsg_model_errors_total", METRIC_COUNTER,
    "Failed model calls (retries included), by class: connect, timeout, cut (the transfer or "
    "the stream broke), http (code: the HTTP status), bad_response (malformed, an error event), "
    "too_big (an event, the answer or its time over its cap).",
    NULL, 0};
static const struct metric_family first_token = {
    "aimsg_model_first_token_seconds", METRIC_HISTOGRAM,
    "From the start of an answer's model call to its first token.", latency_bounds,
    sizeof(latency_bounds) / sizeof(latency_bounds[0])};
static const struct metric_family answer_time = {
    "aimsg_answer_duration_seconds", METRIC_HISTOGRAM,
    "From taking a job to its answer's last frame.", duration_bounds,
    sizeof(duration_bounds) / sizeof(duration_bounds[0])};
static const struct metric_family job_wait = {
    "aimsg_job_wait_seconds", METRIC_HISTOGRAM, "From queueing a job to a worker taking it.",
    latency_bounds, sizeof(latency_bounds) / sizeof(latency_bounds[0])};
static const struct metric_family chunks = {
    "aimsg_chunks_published_total", METRIC_COUNTER, "Text frames of answers published.", NULL, 0};
static const struct metric_family taken = {
    "aimsg_jobs_taken_total", METRIC_COUNTER, "Jobs read from the jobs stream.", NULL, 0};
static const struct metric_family claimed = {
    "aimsg_jobs_claimed_total", METRIC_COUNTER, "Jobs claimed from a worker that went silent.",
    NULL, 0};
static const struct metric_family retried = {
    "aimsg_jobs_retried_total", METRIC_COUNTER,
    "Model calls tried again after a failure before the first token.", NULL, 0};
static const struct metric_family dead = {
    "aimsg_jobs_dead_lettered_total", METRIC_COUNTER,
    "Jobs moved to the dead-letter stream.", NULL, 0};
static const struct metric_family in_flight = {
    "aimsg_jobs_in_flight", METRIC_GAUGE, "Answers this worker is streaming or retrying.", NULL,
    0};

static struct metric *m_done, *m_error, *m_cancelled, *m_chunks, *m_taken, *m_claimed,
    *m_retried, *m_dead, *m_in_flight;
static struct histogram *h_first, *h_answer, *h_wait;

void worker_metrics_init(const char *consumer, long interval_ms)
{
    metrics_init("worker", consumer, interval_ms);
    m_done = metric_get(&answers, "outcome=\"done\"");
    m_error = metric_get(&answers, "outcome=\"error\"");
    m_cancelled = metric_get(&answers, "outcome=\"cancelled\"");
    m_chunks = metric_get(&chunks, "");
    m_taken = metric_get(&taken, "");
    m_claimed = metric_get(&claimed, "");
    m_retried = metric_get(&retried, "");
    m_dead = metric_get(&dead, "");
    m_in_flight = metric_get(&in_flight, "");
    h_first = histogram_get(&first_token, "");
    h_answer = histogram_get(&answer_time, "");
    h_wait = histogram_get(&job_wait, "");
    metric_get(&METRIC_REDIS_RECONNECTS, "");
}

void worker_metrics_answer(const char *outcome)
{
    metric_inc(strcmp(outcome, "done") == 0    ? m_done
               : strcmp(outcome, "error") == 0 ? m_error
                                               : m_cancelled);
}

void worker_metrics_model_error(const char *class, long status)
{
    /* the classes and statuses met are few: a short list, searched */
    static struct {
        const char *class;
        long status;
        struct metric *m;
    } seen[64];
    static int nseen;
    for (int i = 0; i < nseen; i++) {
        if (seen[i].class == class && seen[i].status == status) {
            metric_inc(seen[i].m);
            return;
        }
    }
    char labels[64];
    if (status)
        snprintf(labels, sizeof(labels), "class=\"%s\",code=\"%ld\"", class, status);
    else
        snprintf(labels, sizeof(labels), "class=\"%s\"", class);
    struct metric *m = metric_get(&model_errors, labels);
    metric_inc(m);
    if (nseen < 64) {
        seen[nseen].class = class;
        seen[nseen].status = status;
        seen[nseen++].m = m;
    }
}

void worker_metrics_first_token(double s) { histogram_observe(h_first, s); }
void worker_metrics_answer_time(double s) { histogram_observe(h_answer, s); }
void worker_metrics_job_wait(double s) { histogram_observe(h_wait, s); }
void worker_metrics_chunk(void) { metric_inc(m_chunks); }
void worker_metrics_taken(void) { metric_inc(m_taken); }
void worker_metrics_claimed(void) { metric_inc(m_claimed); }
void worker_metrics_retried(void) { metric_inc(m_retried); }
void worker_metrics_dead(void) { metric_inc(m_dead); }
void worker_metrics_in_flight(int n) { metric_set(m_in_flight, n); }
