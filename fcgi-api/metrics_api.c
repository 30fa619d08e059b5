/* metrics_api.c -- see metrics_api.h. */
#define _POSIX_C_SOURCE 200809L
#include "metrics_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "program.h"

static const struct metric_family requests = {
    "aimsg_http_requests_total", METRIC_COUNTER, "HTTP requests answered, by route and status.",
    NULL, 0};

/* One series per route and status, found by a short search (the routes
 * and statuses seen are few) and kept. */
#define SEEN_MAX 128
struct seen {
    int route, status;
    struct metric *m;
};
static struct seen seen[SEEN_MAX];
static int nseen;

static struct metrics_publish publish;

void metrics_api_init(const struct config *cfg)
{
    char instance[128];
    program_instance_name("", instance, sizeof(instance));
    metrics_init("fcgi-api", instance, cfg->metrics_interval_ms);
}

void metrics_api_count(int route, const char *route_path, int status)
{
    for (int i = 0; i < nseen; i++) {
        if (seen[i].route == route && seen[i].status == status) {
            metric_inc(seen[i].m);
            return;
        }
    }
    char labels[128];
    snprintf(labels, sizeof(labels), "route=\"%s\",code=\"%d\"", route_path, status);
    struct metric *m = metric_get(&requests, labels);
    metric_inc(m);
    if (nseen < SEEN_MAX)
        seen[nseen++] = (struct seen){route, status, m};
}

/* ---- publishing ------------------------------------------------------------ */

long metrics_api_tick(struct api *api)
{
    long wait = api->cfg->metrics_interval_ms / 4 + 1; /* a due check is cheap */
    if (!metrics_due() || metrics_publish_prepare(&publish, &api->store.keys) != 0)
        return wait;
    store_begin(&api->store);
    int sent = 0;
    for (int i = 0; i < publish.ncmds; i++, sent++)
        if (store_send_command(&api->store, publish.cmd[i].argc, publish.cmd[i].argv,
                               publish.cmd[i].argvlen) != 0)
            break;
    for (int i = 0; i < sent; i++) {
        redisReply *r = store_recv_reply(&api->store);
        if (r)
            freeReplyObject(r);
    }
    return wait;
}

/* ---- GET /metrics ---------------------------------------------------------- */

static long long integer_of(redisReply *r)
{
    return r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
}

static void metrics_replied(struct api *api, struct request *r)
{
    redisReply *all = store_recv_reply(&api->store);
    redisReply *jobs = store_recv_reply(&api->store);
    redisReply *dead = store_recv_reply(&api->store);
    struct buf out = BUF_INIT, extra = BUF_INIT;
    if (!all || !jobs || !dead) {
        api_respond_redis_down(api, r);
    } else {
        int rc = buf_printf(&extra,
                            "# HELP aimsg_jobs_stream_length Jobs in the jobs stream: waiting "
                            "and being answered.\n# TYPE aimsg_jobs_stream_length gauge\n"
                            "aimsg_jobs_stream_length %lld\n"
                            "# HELP aimsg_dead_jobs_stream_length Jobs in the dead-letter "
                            "stream.\n# TYPE aimsg_dead_jobs_stream_length gauge\n"
                            "aimsg_dead_jobs_stream_length %lld\n",
                            integer_of(jobs), integer_of(dead));
        if (rc != 0 || metrics_render(&out, all, &api->store.keys, extra.data) != 0)
            respond_error(r, 500, "服务内部错误 (cannot render the metrics)");
        else
            respond_typed(r, 200, "text/plain; version=0.0.4; charset=utf-8", "",
                          out.data ? out.data : "");
    }
    if (all)
        freeReplyObject(all);
    if (jobs)
        freeReplyObject(jobs);
    if (dead)
        freeReplyObject(dead);
    buf_free(&out);
    buf_free(&extra);
}

void metrics_api_get(struct api *api, struct request *r)
{
    const char *read[] = {"EVAL", metrics_read_lua, "1", api->store.keys.metrics};
    const char *xlen_jobs[] = {"XLEN", api->store.keys.jobs};
    const char *xlen_dead[] = {"XLEN", api->store.keys.dead};
    /* a failed send drops the connection: no receive follows any of them */
    if (store_send_command(&api->store, 4, read, NULL) != 0 ||
        store_send_command(&api->store, 2, xlen_jobs, NULL) != 0 ||
        store_send_command(&api->store, 2, xlen_dead, NULL) != 0)
        api_respond_redis_down(api, r);
    else
        r->then = metrics_replied;
}
