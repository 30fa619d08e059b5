/* fcgi-api -- the HTTP API as a FastCGI responder.
 *
 * Runs behind any web server: spawned by it (the listening socket is fd 0) or
 * standalone with --fcgi-listen host:port|path. Each turn of a process takes
 * the requests waiting (up to TURN_MAX) and answers them together; run as
 * many processes as needed, they share nothing but Redis. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <fcgiapp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "config.h"
#include "log.h"
#include "metrics_api.h"
#include "program.h"
#include "redis_conn.h"

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
    FCGX_ShutdownPending();
}

static int open_listener(const struct config *cfg)
{
    if (!cfg->fcgi_listen[0])
        return 0; /* FCGI_LISTENSOCK_FILENO, handed over by the web server */
    int fd = FCGX_OpenSocket(cfg->fcgi_listen, 1024);
    if (fd < 0)
        log_error("cannot listen on %s", cfg->fcgi_listen);
    else
        log_info("listening on %s", cfg->fcgi_listen);
    return fd;
}

/* How many waiting requests one turn takes: their Redis commands go out
 * together and their replies come back in one round trip, so a busy process
 * sleeps once per turn instead of once per request. */
#define TURN_MAX 32
/* A larger body may be slow to come (Apache streams it as the client sends
 * it): such a request gets a turn to itself, so no other request waits for
 * it, and the memory a turn holds stays small. */
#define TURN_BODY_MAX (16 * 1024)

struct slot {
    FCGX_Request fcgi;
    struct request req;
};

/* Accepts a waiting connection into slot and reads its request's head;
 * 0 when there is none (the listening socket does not block). */
static int accept_one(struct slot *slot, int first)
{
    int rc = FCGX_Accept_r(&slot->fcgi);
    if (rc < 0) {
        int err = rc > -4096 ? -rc : 0; /* -errno, or libfcgi's -9999: "no errno" */
        if (err && err != EAGAIN && err != EWOULDBLOCK && err != EINTR && !stopping) {
            log_warn("accept: %s", strerror(err));
            if (first) /* e.g. out of descriptors: do not spin on it */
                nanosleep(&(struct timespec){.tv_nsec = 100 * 1000 * 1000}, NULL);
        }
        return 0;
    }
    request_init(&slot->req, &slot->fcgi);
    return 1;
}

static int has_large_body(const struct request *r)
{
    return r->content_length > TURN_BODY_MAX;
}

static void end_turn(struct api *api, struct slot *slots, int n)
{
    if (n > 1)
        log_debug("turn of %d requests", n);
    for (int i = 0; i < n; i++) {
        struct request *r = &slots[i].req;
        api_end(api, r);
        log_debug("%s %s", r->method, r->path);
        request_finish(r);
        request_free(r);
    }
}

static void serve_alone(struct api *api, struct slot *slot)
{
    store_begin(&api->store);
    api_begin(api, &slot->req);
    end_turn(api, slot, 1);
}

/* One turn: begins the requests waiting, up to TURN_MAX, then ends them. */
static void serve_turn(struct api *api, struct slot *slots)
{
    int n = 0;
    store_begin(&api->store);
    while (n < TURN_MAX && !stopping && accept_one(&slots[n], n == 0)) {
        if (has_large_body(&slots[n].req)) {
            end_turn(api, slots, n); /* the others do not wait for its body */
            serve_alone(api, &slots[n]);
            return;
        }
        api_begin(api, &slots[n].req);
        n++;
    }
    end_turn(api, slots, n);
}

static int serve(const struct config *cfg)
{
    static struct slot slots[TURN_MAX];
    struct api api = {.cfg = cfg};
    char err[512];
    if (store_init(&api.store, cfg->redis_url, cfg->redis_prefix, cfg->image_ttl,
                   cfg->redis_wait_replicas > 0 ? cfg->redis_wait_timeout_ms : 0) != 0) {
        log_error("%s", api.store.err);
        return 2;
    }
    if (!(api.auth = auth_new(cfg, err, sizeof(err))) ||
        proxy_nets_init(&api.proxies, &cfg->trusted_proxies, err, sizeof(err)) != 0) {
        log_error("%s", err);
        auth_free(api.auth);
        return 2;
    }
    if (program_on_stop_signals(on_signal) != 0) /* epoll_wait() must return on a signal */
        return 1;

    if (FCGX_Init() != 0) {
        log_error("FCGX_Init failed");
        return 1;
    }
    int fd = open_listener(cfg);
    if (fd < 0)
        return 1;
    /* (the other processes on this socket share the flag, and set it too) */
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        log_error("listening socket: %s", strerror(errno));
        return 1;
    }
    for (int i = 0; i < TURN_MAX; i++) {
        if (FCGX_InitRequest(&slots[i].fcgi, fd, 0) != 0) {
            log_error("FCGX_InitRequest failed");
            return 1;
        }
    }
    /* EPOLLEXCLUSIVE: a connection wakes one of the processes waiting on
     * the socket, not all of them */
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        log_error("epoll: %s", strerror(errno));
        return 1;
    }
    char redis_shown[1024];
    log_info("started (redis %s, prefix %s, authentication %s)",
             redis_url_redacted(cfg->redis_url, redis_shown, sizeof(redis_shown)),
             cfg->redis_prefix, auth_enabled(api.auth) ? "on" : "off");
    metrics_api_init(cfg);
    while (!stopping) {
        int n = epoll_wait(ep, &ev, 1, (int)metrics_api_tick(&api));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            log_error("epoll_wait: %s", strerror(errno));
            break;
        }
        if (n > 0)
            serve_turn(&api, slots);
    }
    log_info("stopping");
    close(ep);
    for (int i = 0; i < TURN_MAX; i++)
        FCGX_Free(&slots[i].fcgi, 1);
    store_close(&api.store);
    auth_free(api.auth);
    proxy_nets_free(&api.proxies);
    return 0;
}

int main(int argc, char **argv)
{
    struct config cfg;
    const struct config_usage usage = {"fcgi-api", "The HTTP API (FastCGI) of the AI message service."};
    int rc;
    if (program_start(&cfg, argc, argv, &usage, &rc))
        return rc;
    /* the model's API key is the worker's: the process that faces the
     * internet does not keep it (a settings.yaml shared by all may have it) */
    memset(cfg.ai_api_key, 0, strlen(cfg.ai_api_key));
    log_clear_secrets();
    log_add_secret(cfg.auth_jwt_secret);
    rc = serve(&cfg);
    program_end(&cfg);
    return rc;
}
