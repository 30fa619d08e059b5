/* worker.c -- see worker.h. A job's life: taken (XREADGROUP or XCLAIM:
 * intake.c) -> in a conversation, its turn awaited (turns.c) -> image
 * fetched (image jobs) -> model called, retried with backoff while no token
 * was sent (asking.c) -> each delta written to the answer's history and
 * published -> done/error written the same way, which acknowledges the job
 * (frames.c; common/answer.h: one script does all three, atomically).
 *
 * This file holds the Redis connections and the loop. When the control
 * connection is lost the model calls go on; the unconfirmed frames are sent
 * again once it is back (the script skips the ones it already has), so a
 * Redis restart costs an answer nothing. */
#define _POSIX_C_SOURCE 200809L
#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "worker.h"
#include "state.h"
#include "answer.h"
#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "models.h"
#include "program.h"
#include "worker_metrics.h"

#define STOP_GRACE_MS 10000

/* ---- Redis connections ------------------------------------------------ */

static void on_script(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)privdata;
    struct worker *w = ac->data;
    redisReply *reply = r;
    if (!reply || w->closing)
        return;
    w->script_loading = 0;
    if (script_loaded(&w->answer, reply) != 0)
        log_warn("SCRIPT LOAD: %s; answer frames send the script as EVAL",
                 reply->type == REDIS_REPLY_ERROR ? reply->str : "bad reply");
    for (struct task *t = LIST_FIRST(&w->tasks); t; t = LIST_NEXT(t, link))
        task_send_frames(t); /* what waited for Redis goes out now */
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct worker *w = ac->data;
    if (status != REDIS_OK) {
        log_warn("redis connect failed: %s", ac->errstr);
        return;
    }
    if (w->redis_lost) {
        char peer[300];
        log_info("redis connection back (%s)", redis_peer(&ac->c, peer, sizeof(peer)));
        metric_inc(metric_get(&METRIC_REDIS_RECONNECTS, ""));
    }
    w->redis_lost = 0;
    redis_backoff_reset(&w->backoff);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct worker *w = ac->data;
    if (status != REDIS_OK) {
        log_warn("redis connection lost: %s", ac->errstr);
        w->redis_lost = 1;
    }
    /* hiredis has already run the adapter's cleanup, which cleared ra->ac:
     * tell the connections apart by their adapter. Every callback
     * waiting on this connection has been called (without a reply). */
    if (ac->ev.data == &w->cancels) {
        w->cancels.ac = NULL;
    } else if (ac->ev.data == &w->ctl) {
        w->ctl.ac = NULL;
        w->group_ready = w->creating_group = w->claiming = 0;
        for (struct task *t = LIST_FIRST(&w->tasks); t; t = LIST_NEXT(t, link)) {
            t->unsent = STAILQ_FIRST(&t->out); /* unconfirmed: sent again on the next connection */
            t->end_stored = 0;
        }
        w->wait_inflight = 0;
        release_unstarted_tasks(w);
    } else {
        w->intake.ac = NULL;
        w->reading = 0;
    }
}

/* ["message", channel, id], and the subscription's confirmation */
static void on_cancel(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)privdata;
    struct worker *w = ac->data;
    redisReply *reply = r;
    if (!reply || w->closing || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        strcmp(reply->element[0]->str, "message") != 0 ||
        reply->element[2]->type != REDIS_REPLY_STRING)
        return;
    task_cancel(w, reply->element[2]->str);
}

static int connect_one(struct worker *w, struct redis_async *ra)
{
    char err[256];
    long long timeout = w->cfg->redis_timeout_ms;
    if (ra == &w->intake)
        timeout += READ_BLOCK_MS; /* XREADGROUP BLOCK waits that long by design */
    if (ra == &w->ctl && w->cfg->redis_wait_replicas > 0)
        timeout += w->cfg->redis_wait_timeout_ms; /* so may WAIT (on_replicated) */
    redisAsyncContext *ac = redis_async_connect(ra, &w->addr, timeout, err, sizeof(err));
    if (!ac) {
        log_warn("%s", err);
        return -1;
    }
    ac->data = w;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    if (ra == &w->ctl)
        /* first: what follows may use it; without its SHA1 yet, frames wait for it */
        w->script_loading = script_load_async(&w->answer, ac, on_script, NULL) == 0 &&
                            !w->answer.cached;
    if (ra == &w->cancels)
        redisAsyncCommand(ac, on_cancel, NULL, "SUBSCRIBE %s", w->keys.cancels);
    return 0;
}

static void ensure_connected(struct worker *w)
{
    if ((w->ctl.ac && w->intake.ac && w->cancels.ac) ||
        !redis_backoff_due(&w->backoff, clock_ms()))
        return;
    if (!w->cancels.ac)
        connect_one(w, &w->cancels);
    if (!w->ctl.ac)
        connect_one(w, &w->ctl);
    if (!w->intake.ac)
        connect_one(w, &w->intake);
}

/* Redis takes commands that need the answer script. */
int ctl_ready(const struct worker *w)
{
    return w->ctl.ac && !w->script_loading;
}

void acknowledge(struct worker *w, const char *id)
{
    redisAsyncCommand(w->ctl.ac, NULL, NULL, "XACK %s %s %s", w->keys.jobs, KEYS_GROUP, id);
    redisAsyncCommand(w->ctl.ac, NULL, NULL, "XDEL %s %s", w->keys.jobs, id);
}

/* ---- the Sentinels announcing a failover (common/sentinel_watch.h) ---- */

static void on_watch_connect(const redisAsyncContext *ac, int status)
{
    struct worker *w = ac->data;
    if (status == REDIS_OK)
        redis_backoff_reset(&w->watch_backoff);
    else
        log_warn("Sentinel subscription: %s", ac->errstr);
}

static void on_watch_disconnect(const redisAsyncContext *ac, int status)
{
    struct worker *w = ac->data;
    if (status != REDIS_OK && !w->closing)
        log_warn("Sentinel subscription lost: %s", ac->errstr);
    w->watch.ac = NULL;
}

/* Keeps the subscription; on a +switch-master drops the connections to
 * the old master and reconnects now. */
static void watch_sentinels(struct worker *w)
{
    if (!w->watching)
        return;
    if (!w->watch.ac && redis_backoff_due(&w->watch_backoff, clock_ms())) {
        char err[256];
        redisAsyncContext *ac = sentinel_watch_connect(&w->sentinels, &w->watch, err, sizeof(err));
        if (!ac) {
            log_warn("%s", err);
        } else {
            ac->data = w;
            redisAsyncSetConnectCallback(ac, on_watch_connect);
            redisAsyncSetDisconnectCallback(ac, on_watch_disconnect);
        }
    }
    if (!sentinel_watch_switched(&w->sentinels))
        return;
    struct redis_async *links[3] = {&w->ctl, &w->intake, &w->cancels};
    for (int i = 0; i < 3; i++)
        if (sentinel_watch_stale(&w->sentinels, links[i]->ac))
            redis_async_abort(links[i]);
    redis_backoff_reset(&w->backoff);
}

/* ---- the loop --------------------------------------------------------- */

static void start_due_retries(struct worker *w)
{
    if (!w->nwaiting)
        return;
    long long now = clock_ms();
    for (struct task *t = LIST_FIRST(&w->tasks), *next; t; t = next) {
        next = LIST_NEXT(t, link);
        if (t->state == TASK_WAITING && t->retry_at <= now)
            task_call_model(t);
    }
}

static void drain_curl_messages(struct worker *w)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(w->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct model_call *mc = model_call_of(m->easy_handle);
        if (mc)
            task_model_done(model_call_context(mc), m->data.result);
    }
}

/* curl says which of its sockets to watch for what... */
static int on_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy;
    (void)socketp;
    struct worker *w = userp;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(w->epfd, EPOLL_CTL_DEL, s, NULL);
        return 0;
    }
    struct epoll_event ev = {.events = (what & CURL_POLL_IN ? EPOLLIN : 0u) |
                                       (what & CURL_POLL_OUT ? EPOLLOUT : 0u),
                             .data.fd = s};
    if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, s, &ev) != 0 &&
        (errno != ENOENT || epoll_ctl(w->epfd, EPOLL_CTL_ADD, s, &ev) != 0)) {
        log_error("epoll_ctl: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* ...and when it wants to be called back regardless. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct worker *w = userp;
    w->curl_timer_at = timeout_ms < 0 ? -1 : clock_ms() + timeout_ms;
    return 0;
}

static int poll_timeout(const struct worker *w)
{
    long long now = clock_ms(), next = now + 100;
    if (w->curl_timer_at >= 0 && w->curl_timer_at < next)
        next = w->curl_timer_at;
    for (const struct task *t = w->nwaiting ? LIST_FIRST(&w->tasks) : NULL; t; t = LIST_NEXT(t, link))
        if (t->state == TASK_WAITING && t->retry_at < next)
            next = t->retry_at;
    return next > now ? (int)(next - now) : 0;
}

static void curl_sockets_ready(struct worker *w)
{
    struct epoll_event evs[256];
    int running, n = epoll_wait(w->epfd, evs, 256, 0);
    for (int i = 0; i < n; i++) {
        int flags = (evs[i].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
                    (evs[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                    (evs[i].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
        curl_multi_socket_action(w->multi, evs[i].data.fd, flags, &running);
    }
}

/* This process' series to Redis, every metrics_interval_ms (common/metrics.h). */
static void publish_metrics(struct worker *w)
{
    if (!w->ctl.ac || !metrics_due())
        return;
    worker_metrics_in_flight(w->ntasks);
    if (metrics_publish_prepare(&w->metrics, &w->keys) != 0)
        return;
    for (int i = 0; i < w->metrics.ncmds; i++)
        redisAsyncCommandArgv(w->ctl.ac, NULL, NULL, w->metrics.cmd[i].argc,
                              w->metrics.cmd[i].argv, w->metrics.cmd[i].argvlen);
}

/* One turn: wait on curl's epoll set and its Redis sockets, then serve
 * whatever is ready. The cost of a turn does not grow with the number of
 * answers streaming, only with the number that have something to say. */
static void poll_once(struct worker *w)
{
    struct pollfd fds[5] = {{.fd = w->epfd, .events = POLLIN}};
    struct redis_async *ras[4] = {&w->ctl, &w->intake, &w->cancels, &w->watch}, *polled[5] = {NULL};
    nfds_t n = 1;
    for (int i = 0; i < 4; i++) {
        short ev = redis_async_events(ras[i]);
        if (!ev)
            continue;
        fds[n].fd = redis_async_fd(ras[i]);
        fds[n].events = ev;
        polled[n++] = ras[i];
    }
    if (poll(fds, n, poll_timeout(w)) < 0 && errno != EINTR)
        log_error("poll: %s", strerror(errno));
    for (nfds_t i = 1; i < n; i++)
        if (fds[i].revents && polled[i]->ac && polled[i]->ac->c.fd == fds[i].fd)
            redis_async_handle(polled[i], fds[i].revents & (POLLIN | POLLERR | POLLHUP),
                               fds[i].revents & (POLLOUT | POLLERR));
    for (int i = 0; i < 4; i++)
        if (redis_async_expire(ras[i], clock_ms()))
            log_warn("redis did not answer within %lld ms; reconnecting", ras[i]->timeout_ms);
    if (fds[0].revents)
        curl_sockets_ready(w);
    if (w->curl_timer_at >= 0 && clock_ms() >= w->curl_timer_at) {
        int running;
        w->curl_timer_at = -1;
        curl_multi_socket_action(w->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
    publish_ready(w);
    drain_curl_messages(w);
    publish_metrics(w);
}

/* The last frames and acks may still sit in hiredis' output buffer. */
static void flush_and_disconnect(struct worker *w)
{
    if (w->intake.ac)
        redisAsyncFree(w->intake.ac); /* a blocked XREADGROUP need not finish */
    if (w->cancels.ac)
        redisAsyncFree(w->cancels.ac);
    if (w->watch.ac)
        redisAsyncFree(w->watch.ac);
    if (w->ctl.ac)
        redisAsyncDisconnect(w->ctl.ac);
    long long deadline = clock_ms() + 2000;
    while (w->ctl.ac && clock_ms() < deadline)
        poll_once(w);
}

int worker_run(struct worker *w)
{
    log_info("worker %s: model %s at %s, concurrency %ld", w->consumer, models_default(w->cfg),
             w->base_url, w->cfg->worker_concurrency);
    if (w->cfg->ai_fallback_base_url[0])
        log_info("fallback: %s at %s", w->cfg->ai_fallback_model[0] ? w->cfg->ai_fallback_model
                                                                   : "the model asked for",
                 w->cfg->ai_fallback_base_url);
    for (;;) {
        if (w->stop_requested) {
            if (!w->stop_deadline) {
                release_waiting_turns(w);
                log_info("stopping: finishing %d running answer(s)", w->ntasks);
                w->stop_deadline = clock_ms() + STOP_GRACE_MS;
            }
            if (LIST_EMPTY(&w->tasks) || clock_ms() >= w->stop_deadline)
                break;
        }
        ensure_connected(w);
        watch_sentinels(w);
        ensure_group(w);
        read_jobs(w);
        claim_stale_jobs(w);
        heartbeat(w);
        start_due_retries(w);
        ask_due_turns(w);
        poll_once(w);
    }
    w->closing = 1;
    release_all_tasks(w);
    flush_and_disconnect(w);
    return 0;
}

void worker_stop(struct worker *w)
{
    w->stop_requested = 1;
}

struct worker *worker_new(const struct config *cfg)
{
    struct worker *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->cfg = cfg;
    char err[256];
    if (redis_addr_parse(&w->addr, cfg->redis_url, err, sizeof(err)) != 0 ||
        (keys_init(&w->keys, cfg->redis_prefix) != 0 &&
         snprintf(err, sizeof(err), "redis_prefix is too long") > 0)) {
        log_error("%s", err);
        free(w);
        return NULL;
    }
    w->watching = sentinel_watch_init(&w->sentinels, &w->addr);
    script_init(&w->answer, answer_write_lua);
    program_instance_name(NULL, w->consumer, sizeof(w->consumer));
    worker_metrics_init(w->consumer, cfg->metrics_interval_ms);
    if (job_new_token(w->writer) != 0) {
        log_error("cannot draw a random writer id");
        free(w);
        return NULL;
    }
    config_ai_base_url(cfg, w->base_url, sizeof(w->base_url));
    w->curl_timer_at = -1;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->multi = curl_multi_init();
    if (w->epfd < 0 || !w->multi ||
        curl_multi_setopt(w->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket) != CURLM_OK ||
        curl_multi_setopt(w->multi, CURLMOPT_SOCKETDATA, w) != CURLM_OK ||
        curl_multi_setopt(w->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK ||
        curl_multi_setopt(w->multi, CURLMOPT_TIMERDATA, w) != CURLM_OK) {
        log_error("cannot set up the event loop");
        if (w->multi)
            curl_multi_cleanup(w->multi);
        if (w->epfd >= 0)
            close(w->epfd);
        free(w);
        return NULL;
    }
    return w;
}

void worker_free(struct worker *w)
{
    if (!w)
        return;
    w->closing = 1;
    release_all_tasks(w);
    if (w->ctl.ac)
        redisAsyncFree(w->ctl.ac);
    if (w->intake.ac)
        redisAsyncFree(w->intake.ac);
    if (w->cancels.ac)
        redisAsyncFree(w->cancels.ac);
    if (w->watch.ac)
        redisAsyncFree(w->watch.ac);
    curl_multi_cleanup(w->multi);
    close(w->epfd);
    buf_free(&w->frame);
    metrics_publish_free(&w->metrics);
    free(w);
}
