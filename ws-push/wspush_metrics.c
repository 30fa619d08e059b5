/* wspush_metrics.c -- what ws-push counts (common/metrics.h). The hot
 * paths count into plain fields of the connection table (conn.h); they
 * become series here, when the instance publishes them to Redis every
 * metrics_interval_ms on its command link. */
#include "wspush.h"

#include "metrics.h"

static const struct metric_family connections = {
    "aimsg_ws_connections", METRIC_GAUGE, "WebSocket connections open on this instance.", NULL, 0};
static const struct metric_family opened = {
    "aimsg_ws_connections_opened_total", METRIC_COUNTER, "WebSocket connections established.",
    NULL, 0};
static const struct metric_family closed = {
    "aimsg_ws_connections_closed_total", METRIC_COUNTER,
    "WebSocket connections closed, by who or what closed them (client, too_slow, over_budget, "
    "protocol_error, refused, shutdown).",
    NULL, 0};
static const struct metric_family messages_in = {
    "aimsg_ws_messages_received_total", METRIC_COUNTER, "Messages received from WebSocket clients.",
    NULL, 0};
static const struct metric_family frames_out = {
    "aimsg_ws_frames_sent_total", METRIC_COUNTER, "Frames queued to WebSocket clients.", NULL, 0};
static const struct metric_family frames_dropped = {
    "aimsg_ws_frames_dropped_total", METRIC_COUNTER,
    "Frames never sent because their client was closed as too slow.", NULL, 0};
static const struct metric_family refused = {
    "aimsg_ws_handshakes_refused_total", METRIC_COUNTER,
    "WebSocket upgrades refused, by HTTP status (401 token, 403 Origin, 429 too many).", NULL, 0};

static const char *const close_names[CONN_REFUSED + 1] = {
    [CONN_OPEN] = "client",          [CONN_TOO_SLOW] = "too_slow",
    [CONN_GOING_AWAY] = "shutdown",  [CONN_OVER_BUDGET] = "over_budget",
    [CONN_PROTOCOL_ERROR] = "protocol_error", [CONN_IDLE] = "idle",
    [CONN_REFUSED] = "refused"};

static struct metric *m_closed[CONN_REFUSED + 1];

void wspush_metrics_init(struct wspush *wp)
{
    metrics_init("ws-push", wp->instance, wp->cfg->metrics_interval_ms);
    for (int i = 0; i <= CONN_REFUSED; i++) {
        char labels[48];
        snprintf(labels, sizeof(labels), "reason=\"%s\"", close_names[i]);
        m_closed[i] = metric_get(&closed, labels);
    }
    metric_get(&METRIC_REDIS_RECONNECTS, "");
}

void wspush_metrics_refused(int status)
{
    char labels[32];
    snprintf(labels, sizeof(labels), "code=\"%d\"", status);
    metric_inc(metric_get(&refused, labels));
}

void wspush_metrics_publish(struct wspush *wp)
{
    const struct conn_table *t = &wp->conns;
    if (!wp->cmd.ra.ac || !metrics_due())
        return;
    metric_set(metric_get(&connections, ""), (double)t->count);
    metric_set(metric_get(&opened, ""), (double)t->opened);
    metric_set(metric_get(&messages_in, ""), (double)t->messages_in);
    metric_set(metric_get(&frames_out, ""), (double)t->frames_sent);
    metric_set(metric_get(&frames_dropped, ""), (double)t->frames_dropped);
    for (int i = 0; i <= CONN_REFUSED; i++)
        metric_set(m_closed[i], (double)t->closed[i]);
    if (metrics_publish_prepare(&wp->metrics, &wp->keys) != 0)
        return;
    for (int i = 0; i < wp->metrics.ncmds; i++)
        redisAsyncCommandArgv(wp->cmd.ra.ac, NULL, NULL, wp->metrics.cmd[i].argc,
                              wp->metrics.cmd[i].argv, wp->metrics.cmd[i].argvlen);
}
