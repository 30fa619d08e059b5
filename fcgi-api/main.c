/* fcgi-api -- the HTTP API as a FastCGI responder.
 *
 * Runs behind any web server: spawned by it (the listening socket is fd 0) or
 * standalone with --fcgi-listen host:port|path. One request at a time per
 * process; run as many processes as needed, they share nothing but Redis. */
#define _POSIX_C_SOURCE 200809L
#include <fcgiapp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "config.h"
#include "log.h"
#include "program.h"

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

static int serve(const struct config *cfg)
{
    struct api api = {.cfg = cfg};
    if (store_init(&api.store, cfg->redis_url, cfg->redis_prefix, cfg->image_ttl) != 0) {
        log_error("%s", api.store.err);
        return 2;
    }
    if (program_on_stop_signals(on_signal) != 0) /* accept() must return on a signal */
        return 1;

    if (FCGX_Init() != 0) {
        log_error("FCGX_Init failed");
        return 1;
    }
    int fd = open_listener(cfg);
    if (fd < 0)
        return 1;
    FCGX_Request fcgi;
    if (FCGX_InitRequest(&fcgi, fd, 0) != 0) {
        log_error("FCGX_InitRequest failed");
        return 1;
    }
    log_info("started (redis %s, prefix %s)", cfg->redis_url, cfg->redis_prefix);
    while (!stopping && FCGX_Accept_r(&fcgi) >= 0) {
        struct request r;
        request_init(&r, &fcgi);
        api_handle(&api, &r);
        log_debug("%s %s", r.method, r.path);
        request_finish(&r);
        request_free(&r);
    }
    log_info("stopping");
    FCGX_Free(&fcgi, 1);
    store_close(&api.store);
    return 0;
}

int main(int argc, char **argv)
{
    struct config cfg;
    const struct config_usage usage = {"fcgi-api", "The HTTP API (FastCGI) of the AI message service."};
    int rc;
    if (program_start(&cfg, argc, argv, &usage, &rc))
        return rc;
    rc = serve(&cfg);
    program_end(&cfg);
    return rc;
}
