/* metrics.h -- the numbers an operator watches, for Prometheus.
 *
 * A process counts in its own memory (an add: no lock, no syscall, so hot
 * paths may count freely) and every metrics_interval_ms writes all its
 * series to Redis in one HSET:
 *
 *   P metrics:<program>:<instance>  hash, TTL 3 publish periods:
 *                                   "<sample>" -> value, e.g.
 *                                   aimsg_answers_total{outcome="done"} -> 17,
 *                                   and "#<metric>" -> "<type> <help>"
 *   P metrics                       set of those hashes' names
 *
 * fcgi-api's GET /metrics (metrics_render) reads every hash still alive and
 * writes the Prometheus text exposition, each sample labelled with its
 * program and instance: an instance that died drops out when its hash
 * expires. Names follow Prometheus' conventions (aimsg_..._total,
 * _seconds, _bytes). */
#ifndef AIMSG_METRICS_H
#define AIMSG_METRICS_H

#include <stddef.h>
#include <sys/queue.h>
#include <hiredis/hiredis.h>

#include "buf.h"
#include "keys.h"


/* A counter or gauge: one series (a metric name and fixed labels). */
struct metric {
    double value;
    SLIST_ENTRY(metric) link;   /* all series of the process */
    const struct metric_family *family;
    char labels[128];           /* `a="x",b="y"` or "" */
};

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

struct metric_family {
    const char *name;
    enum metric_type type;
    const char *help;
    const double *bounds;       /* histograms: upper bounds, ascending */
    size_t nbounds;
};

/* A histogram series: counts per bucket (not cumulative here), sum, count. */
#define METRICS_MAX_BOUNDS 16
struct histogram {
    struct metric base;         /* base.value unused */
    unsigned long long buckets[METRICS_MAX_BOUNDS + 1];
    double sum;
    unsigned long long count;
};

/* The series of family with these labels ("" for none), made on first
 * use; the same pointer on every later call. NULL only when out of memory
 * (counting into NULL is allowed and does nothing). */
struct metric *metric_get(const struct metric_family *f, const char *labels);
struct histogram *histogram_get(const struct metric_family *f, const char *labels);

static inline void metric_add(struct metric *m, double v)
{
    if (m)
        m->value += v;
}
static inline void metric_inc(struct metric *m) { metric_add(m, 1); }
static inline void metric_set(struct metric *m, double v)
{
    if (m)
        m->value = v;
}
void histogram_observe(struct histogram *h, double v);

/* Families counted by more than one program. */
extern const struct metric_family METRIC_REDIS_RECONNECTS; /* aimsg_redis_reconnects_total */
extern const struct metric_family METRIC_JOBS_QUEUED;      /* {kind,via} */
extern const struct metric_family METRIC_JOBS_REFUSED;     /* {reason}: a quota said no */
/* The labels of those two for a job of kind (text/image) asked over via
 * (http/websocket), or refused for a quota's message (common/enqueue.h). */
void metrics_count_queued(int image, const char *via);
void metrics_count_refused(const char *why);

/* Who we are in the exposition, and how often we say it; call once at
 * start. */
void metrics_init(const char *program, const char *instance, long interval_ms);
/* 1 when it is time to publish again (then not again for an interval). */
int metrics_due(void);

/* The HSET (and EXPIRE, SADD) publishing every series; sets the process
 * gauges (resident memory, open descriptors) first. Each command is in
 * out->cmd[i] (argv, argvlen); the strings live in out until the next call
 * or metrics_publish_free. */
struct metrics_publish {
    int ncmds;
    struct {
        int argc;
        const char **argv;
        size_t *argvlen;
    } cmd[6];
    const char *small[6][3];
    size_t small_len[6][3];
    struct buf text;            /* the fields and values, NUL-separated */
    const char **argv;
    size_t *argvlen;
    char key[256], ttl[24];
};
int metrics_publish_prepare(struct metrics_publish *p, const struct keys *k);
void metrics_publish_free(struct metrics_publish *p);

/* Lua returning [key, [field, value, ...], ...] for every live metrics hash
 * (and forgetting the dead ones). KEYS[1] = the P metrics set. */
extern const char metrics_read_lua[];
/* The exposition from that reply, plus extra (already formatted lines, may
 * be NULL): 0, or -1 for a reply of another shape. */
int metrics_render(struct buf *out, const redisReply *r, const struct keys *k, const char *extra);

#endif
