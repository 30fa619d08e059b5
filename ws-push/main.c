/* ws-push -- holds the WebSocket clients and fans answers out to them.
 *
 * One process, one event loop (libwebsockets), Redis on the same loop. Run
 * as many instances as needed: each subscribes to the broadcast channel and
 * to its own connections' channels. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "enqueue.h"
#include "log.h"
#include "program.h"
#include "wspush.h"

#define TICK_US (250 * 1000)
#define SHUTDOWN_GRACE_MS 2000

static volatile sig_atomic_t interrupted; /* the signal that stops us */
static struct lws_context *context;

static void on_signal(int sig)
{
    interrupted = sig;
    if (context)
        lws_cancel_service(context);
}

static void on_tick(lws_sorted_usec_list_t *sul)
{
    struct wspush *wp = lws_container_of(sul, struct wspush, tick);
    redis_link_tick(wp);
    answers_tick(wp);
    access_tick(wp);
    keepalive_tick(wp);
    lws_sul_schedule(wp->ctx, 0, &wp->tick, on_tick, TICK_US);
}

static void lws_to_log(int level, const char *line)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == ' '))
        n--;
    log_msg(level == LLL_ERR ? LOG_ERROR : LOG_WARN, "lws: %.*s", (int)n, line);
}

static int setup(struct wspush *wp, const struct config *cfg)
{
    memset(wp, 0, sizeof(*wp));
    wp->cfg = cfg;
    char err[512];
    if (redis_addr_parse(&wp->addr, cfg->redis_url, err, sizeof(err)) != 0) {
        log_error("%s", err);
        return -1;
    }
    if (keys_init(&wp->keys, cfg->redis_prefix) != 0) {
        log_error("redis_prefix is too long");
        return -1;
    }
    if (strlen(cfg->instance_id) >= sizeof(wp->instance)) {
        log_error("instance_id is too long (at most %zu bytes)", sizeof(wp->instance) - 1);
        return -1;
    }
    program_instance_name(cfg->instance_id, wp->instance, sizeof(wp->instance));
    char token[33];
    if (job_new_token(token) != 0) {
        log_error("cannot draw a random run id");
        return -1;
    }
    memcpy(wp->run, token, sizeof(wp->run) - 1);
    if (keys_connections(&wp->keys, wp->instance, wp->run, wp->connections,
                         sizeof(wp->connections)) != 0) {
        log_error("redis_prefix and instance_id are too long together");
        return -1;
    }
    snprintf(wp->ping_channel, sizeof(wp->ping_channel), "%sping", wp->connections);
    wspush_metrics_init(wp);
    if (!(wp->auth = auth_new(cfg, err, sizeof(err))) ||
        proxy_nets_init(&wp->proxies, &cfg->trusted_proxies, err, sizeof(err)) != 0) {
        log_error("%s", err);
        auth_free(wp->auth);
        return -1;
    }
    if (conn_table_init(&wp->conns, (unsigned)cfg->ws_queue_frames) != 0 ||
        follow_table_init(&wp->follows) != 0 || subjects_init(&wp->subjects) != 0) {
        log_error("out of memory");
        conn_table_free(&wp->conns);
        follow_table_free(&wp->follows);
        return -1;
    }
    /* a base64 image, its JSON envelope and a question */
    wp->max_client_message = (size_t)cfg->max_image_bytes / 3 * 4 + 4 +
                             (size_t)cfg->max_message_bytes + 1024;
    wp->conns.partial_budget = (size_t)cfg->ws_partial_budget_bytes;
    if (wp->conns.partial_budget < wp->max_client_message)
        log_warn("ws_partial_budget_bytes %ld is less than the largest message a client may "
                 "send (%zu bytes): a client sending one is closed",
                 cfg->ws_partial_budget_bytes, wp->max_client_message);
    wp->sub.wp = wp->cmd.wp = wp->watch.wp = wp;
    script_init(&wp->cmd.enqueue, enqueue_lua);
    STAILQ_INIT(&wp->sub.replicating);
    STAILQ_INIT(&wp->cmd.replicating);
    STAILQ_INIT(&wp->watch.replicating);
    wp->sub.is_subscriber = 1;
    wp->watch.is_watch = 1;
    wp->watching = sentinel_watch_init(&wp->sentinels, &wp->addr);
    return 0;
}

static int serve(const struct config *cfg)
{
    static struct wspush wp;
    struct listen_addr la;
    char err[256];
    if (listen_addr_resolve(&la, cfg->bind, (int)cfg->ws_port, cfg->ws_processes > 1, err,
                            sizeof(err)) != 0) {
        log_error("%s", err);
        return 1;
    }
    if (program_on_stop_signals(on_signal) != 0) {
        log_error("cannot install the signal handlers: %s", strerror(errno));
        return 1;
    }
    if (setup(&wp, cfg) != 0)
        return 1;

    const struct lws_protocols protocols[] = {client_protocol, redis_link_protocol,
                                              shared_listen_protocol,
                                              {NULL, NULL, 0, 0, 0, NULL, 0}};
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    int shared = cfg->ws_processes > 1;
    info.port = shared ? CONTEXT_PORT_NO_LISTEN_SERVER : (int)cfg->ws_port;
    info.iface = la.iface[0] ? la.iface : NULL;
    info.protocols = protocols;
    info.user = &wp;
    /* no lws pings (its default: every 300 s): keepalive.c pings */
    static const struct lws_retry_bo no_pings = {.secs_since_valid_ping = 0};
    info.retry_and_idle_policy = &no_pings;
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8 | la.options;
    info.timeout_secs = 10;

    context = wp.ctx = lws_create_context(&info);
    if (!context) {
        log_error("cannot start the WebSocket server on %s:%ld (bind '%s'; lws said why above)",
                  la.shown, cfg->ws_port, cfg->bind);
        conn_table_free(&wp.conns);
        follow_table_free(&wp.follows);
        subjects_free(&wp.subjects);
        auth_free(wp.auth);
        proxy_nets_free(&wp.proxies);
        return 1;
    }
    wp.vhost = lws_get_vhost_by_name(context, "default");
    if (shared && shared_listen_start(&wp, &la, (int)cfg->ws_port) != 0) {
        lws_context_destroy(context);
        return 1;
    }
    char redis_shown[1024];
    log_info("instance %s (run %s) listening on ws://%s:%ld/ws (redis %s)", wp.instance, wp.run,
             la.shown, cfg->ws_port,
             redis_url_redacted(cfg->redis_url, redis_shown, sizeof(redis_shown)));
    redis_link_tick(&wp);
    lws_sul_schedule(context, 0, &wp.tick, on_tick, TICK_US);

    int failed = 0;
    while (!interrupted && !failed)
        failed = lws_service(context, 0) < 0;

    /* close frames to every client, then go */
    if (failed)
        log_error("stopping: the event loop failed (lws_service); closing %zu client(s)",
                  wp.conns.count);
    else
        log_info("stopping on %s: closing %zu client(s)",
                 interrupted == SIGINT ? "SIGINT" : "SIGTERM", wp.conns.count);
    wp.stopping = 1;
    shared_listen_stop();
    redis_link_close(&wp);
    for (struct conn *c = LIST_FIRST(&wp.conns.all); c; c = LIST_NEXT(c, link)) {
        conn_close_after_queue(c, CONN_GOING_AWAY, LWS_CLOSE_STATUS_GOINGAWAY,
                               "server shutting down");
    }
    /* the tick (every TICK_US) keeps lws_service from sleeping longer */
    long long deadline = clock_ms() + SHUTDOWN_GRACE_MS;
    do {
        if (!wp.conns.count && (!wp.cmd.ra.ac || !wp.cmd.ra.ac->replies.head))
            break;
        lws_service(context, 0);
    } while (clock_ms() < deadline);
    lws_sul_cancel(&wp.tick);
    if (wp.sub.ra.ac)
        redisAsyncFree(wp.sub.ra.ac);
    if (wp.cmd.ra.ac)
        redisAsyncFree(wp.cmd.ra.ac);
    if (wp.watch.ra.ac)
        redisAsyncFree(wp.watch.ra.ac);
    lws_context_destroy(context);
    conn_table_free(&wp.conns);
    follow_table_free(&wp.follows); /* after the links: their callbacks may hold entries */
    subjects_free(&wp.subjects);
    auth_free(wp.auth);
    proxy_nets_free(&wp.proxies);
    metrics_publish_free(&wp.metrics);
    log_info("stopped");
    return failed;
}

int main(int argc, char **argv)
{
    struct config cfg;
    const struct config_usage usage = {"ws-push", "WebSocket fan-out daemon of the AI message service."};
    int rc;
    if (program_start(&cfg, argc, argv, &usage, &rc))
        return rc;
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_to_log);
    rc = serve(&cfg);
    program_end(&cfg);
    return rc;
}
