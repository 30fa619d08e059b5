/* main.c -- ai-standin: a small OpenAI-compatible HTTP server that the
 * tests and `make run` use instead of a real model.
 *
 * One thread, one libwebsockets context serving HTTP/1.1 on a libuv loop
 * (lws_uv.h: epoll, not lws's poll()). What an answer
 * says is decided in script.c, how it is written in sse.c, and when each
 * piece goes out in server.c. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <libwebsockets.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "config.h"
#include "due.h"
#include "log.h"
#include "lws_uv.h"
#include "program.h"
#include "server.h"

static volatile sig_atomic_t interrupted;
static struct lws_context *context;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
    if (context)
        lws_cancel_service(context);
}

static void lws_to_log(int level, const char *line)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == ' '))
        n--;
    log_msg(level == LLL_ERR ? LOG_ERROR : LOG_WARN, "lws: %.*s", (int)n, line);
}

/* Thousands of streaming clients need more than the usual 1024 descriptors. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
        return;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        log_warn("cannot raise the descriptor limit: %s", strerror(errno));
}

/* The numeric form of the address to listen on into addr, and whether it
 * is IPv4. lws takes a numeric address as its "interface", but an IPv4 one
 * only with IPv6 off: otherwise it listens on every address. */
static int listen_address(const char *host, char *addr, size_t n, int *ipv4)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE};
    struct addrinfo *res;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0) {
        log_error("cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    rc = getnameinfo(res->ai_addr, res->ai_addrlen, addr, (socklen_t)n, NULL, 0,
                     NI_NUMERICHOST);
    *ipv4 = res->ai_family == AF_INET;
    freeaddrinfo(res);
    if (rc != 0) {
        log_error("cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    return 0;
}

static int serve(const struct config *cfg)
{
    const struct lws_protocols list[] = {server_protocol, {NULL, NULL, 0, 0, 0, NULL, 0}};
    char addr[INET6_ADDRSTRLEN + 16];
    int ipv4 = 0;
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    if (cfg->bind[0]) {
        if (listen_address(cfg->bind, addr, sizeof(addr), &ipv4) != 0)
            return -1;
        info.iface = addr;
    }
    info.port = (int)cfg->standin_port;
    info.protocols = list;
    info.options = ipv4 ? LWS_SERVER_OPTION_DISABLE_IPV6 : 0;
    info.keepalive_timeout = 120; /* longer than libcurl keeps an idle connection */
    info.pt_serv_buf_size = 64 * 1024; /* fewer reads for a large body */

    if (program_on_stop_signals(on_signal) != 0)
        return -1;
    raise_fd_limit();
    server_init(cfg);
    if (lws_uv_prepare(&info) != 0)
        return -1;
    context = lws_create_context(&info);
    if (!context) {
        log_error("cannot listen on %s:%ld (or libwebsockets cannot run on libuv: its plugin is"
                  " the package libwebsockets-evlib-uv)", cfg->bind, cfg->standin_port);
        lws_uv_close();
        return -1;
    }
    due_start(context);
    log_info("listening on %s:%ld (delay %ld ms between tokens%s)", cfg->bind,
             cfg->standin_port, server_delay_ms(), server_requires_key() ? ", API key required" : "");
    while (!interrupted) {
        lws_uv_turn();
    }
    log_info("signal: stopping");
    due_stop();
    lws_context_destroy(context);
    lws_uv_close();
    due_free_all();
    return 0;
}

int main(int argc, char **argv)
{
    struct config cfg;
    const struct config_usage usage = {
        "ai-standin", "an OpenAI-compatible stand-in model for tests and `make run`; "
        "directives in the question: @@delay=MS @@fail=CODE[*N] @@failfor=MODEL @@cut=N @@malformed=N "
        "@@error=N @@tokens=N @@hang @@nostreamoptions[=422] (a request with stream_options is a 400, or a 422 as FastAPI servers send); "
        "with stream_options.include_usage a stream ends with a usage chunk "
        "(prompt_tokens: the question's words + 1; completion_tokens: the answer's)"};
    int rc;
    if (program_start(&cfg, argc, argv, &usage, &rc))
        return rc;
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_to_log);
    rc = serve(&cfg) == 0 ? 0 : 1;
    server_free();
    log_info("stopped");
    program_end(&cfg);
    return rc;
}
