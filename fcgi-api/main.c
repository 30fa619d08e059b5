/* fcgi-api -- the HTTP API as a FastCGI responder.
 *
 * Runs behind any web server: spawned by it (the listening socket is fd 0) or
 * standalone with --fcgi-listen host:port|path. Each turn of a process takes
 * the requests waiting (up to TURN_MAX), on new connections and on those the
 * web server keeps (slots.h), and answers them together; run as many
 * processes as needed, they share nothing but Redis. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <fcgiapp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "config.h"
#include "log.h"
#include "metrics_api.h"
#include "program.h"
#include "redis_conn.h"
#include "slots.h"

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

static int has_large_body(const struct request *r)
{
    return r->content_length > TURN_BODY_MAX;
}

static void end_turn(struct api *api, struct slots *slots, struct slot **turn, int n)
{
    if (n > 1)
        log_debug("turn of %d requests", n);
    for (int i = 0; i < n; i++) {
        struct request *r = &turn[i]->req;
        api_end(api, r);
        log_debug("%s %s", r->method, r->path);
        request_finish(r);
        request_free(r);
        slots_release(slots, turn[i]);
    }
}

/* One turn: begins the requests read, then ends them; those with a large
 * body come after, each on its own, so the others do not wait for them. */
static void serve_turn(struct api *api, struct slots *slots, struct slot **ready, int n)
{
    struct slot *small[TURN_MAX], *large[TURN_MAX];
    int nsmall = 0, nlarge = 0;
    store_begin(&api->store);
    for (int i = 0; i < n; i++) {
        if (has_large_body(&ready[i]->req)) {
            large[nlarge++] = ready[i];
        } else {
            api_begin(api, &ready[i]->req);
            small[nsmall++] = ready[i];
        }
    }
    end_turn(api, slots, small, nsmall);
    for (int i = 0; i < nlarge; i++) {
        store_begin(&api->store);
        api_begin(api, &large[i]->req);
        end_turn(api, slots, large + i, 1);
    }
}

static int serve(const struct config *cfg)
{
    static struct slots slots;
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
    if (slots_init(&slots, fd, err, sizeof(err)) != 0) {
        log_error("%s", err);
        return 1;
    }
    char redis_shown[1024];
    log_info("started (redis %s, prefix %s, authentication %s)",
             redis_url_redacted(cfg->redis_url, redis_shown, sizeof(redis_shown)),
             cfg->redis_prefix, auth_enabled(api.auth) ? "on" : "off");
    metrics_api_init(cfg);
    while (!stopping) {
        struct slot *ready[TURN_MAX];
        int n = slots_wait(&slots, ready, TURN_MAX, (int)metrics_api_tick(&api));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            log_error("epoll_wait: %s", strerror(errno));
            break;
        }
        serve_turn(&api, &slots, ready, n);
    }
    log_info("stopping");
    slots_free(&slots);
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
