/* test_metrics.c -- a process' series published and rendered back: the
 * HSET that metrics_publish_prepare builds is turned into the reply the
 * read script gives (through hiredis' own reader), and metrics_render must
 * make a valid exposition of it. */
#define TEST_NAME "metrics"
#include "check.h"

#include <hiredis/hiredis.h>
#include <stdlib.h>

#include "buf.h"
#include "keys.h"
#include "metrics.h"

static const struct metric_family hits = {"t_hits_total", METRIC_COUNTER, "Hits.", NULL, 0};
static const double bounds[] = {0.1, 1};
static const struct metric_family lat = {"t_latency_seconds", METRIC_HISTOGRAM, "Latency.",
                                         bounds, 2};

/* [key, [field, value, ...]] in RESP, from HSET's argv */
static redisReply *as_read_reply(const struct metrics_publish *p, const char *key)
{
    struct buf b = BUF_INIT;
    int argc = p->cmd[2].argc;
    buf_printf(&b, "*2\r\n$%zu\r\n%s\r\n*%d\r\n", strlen(key), key, argc - 2);
    for (int i = 2; i < argc; i++)
        buf_printf(&b, "$%zu\r\n%s\r\n", p->cmd[2].argvlen[i], p->cmd[2].argv[i]);
    redisReader *r = redisReaderCreate();
    void *reply = NULL;
    redisReaderFeed(r, b.data, b.len);
    redisReaderGetReply(r, &reply);
    redisReaderFree(r);
    buf_free(&b);
    return reply;
}

int main(void)
{
    struct keys k;
    keys_init(&k, "metrics:");
    metrics_init("worker", "w\"1", 1000);
    struct metric *a = metric_get(&hits, "route=\"/x\"");
    CHECK("the same series twice is one", a == metric_get(&hits, "route=\"/x\""));
    metric_add(a, 3);
    metric_inc(metric_get(&hits, "route=\"/y\""));
    struct histogram *h = histogram_get(&lat, "");
    histogram_observe(h, 0.05);
    histogram_observe(h, 0.5);
    histogram_observe(h, 7);
    metric_inc(NULL); /* out of memory: counting into nothing is allowed */

    struct metrics_publish p = {0};
    CHECK("publish prepared", metrics_publish_prepare(&p, &k) == 0);
    CHECK("MULTI, DEL, HSET, PEXPIRE, EXEC, SADD", p.ncmds == 6 &&
          !strcmp(p.cmd[0].argv[0], "MULTI") && !strcmp(p.cmd[2].argv[0], "HSET") &&
          !strcmp(p.cmd[3].argv[0], "PEXPIRE") && !strcmp(p.cmd[3].argv[2], "3000") &&
          !strcmp(p.cmd[5].argv[1], "metrics:metrics"));
    CHECK_STR("the hash is the process' (a prefix that says metrics too)",
              "metrics:metrics:worker:w\"1", p.cmd[2].argv[1]);

    redisReply *r = as_read_reply(&p, p.cmd[2].argv[1]);
    struct buf out = BUF_INIT;
    CHECK("rendered", r && metrics_render(&out, r, &k, "extra 1\n") == 0);
    const char *t = out.data ? out.data : "";
    CHECK("HELP and TYPE of a counter", strstr(t, "# HELP t_hits_total Hits.\n# TYPE t_hits_total counter\n"));
    CHECK("a sample with program, escaped instance and its own labels",
          strstr(t, "t_hits_total{program=\"worker\",instance=\"w\\\"1\",route=\"/x\"} 3\n"));
    CHECK("cumulative buckets", strstr(t, "t_latency_seconds_bucket{program=\"worker\",instance=\"w\\\"1\",le=\"0.1\"} 1\n") &&
                                    strstr(t, "le=\"1\"} 2\n") && strstr(t, "le=\"+Inf\"} 3\n"));
    CHECK("sum and count", strstr(t, "t_latency_seconds_sum{program=\"worker\",instance=\"w\\\"1\"} 7.55\n") &&
                               strstr(t, "t_latency_seconds_count{program=\"worker\",instance=\"w\\\"1\"} 3\n"));
    CHECK("one TYPE for the histogram's three kinds of line",
          strstr(t, "# TYPE t_latency_seconds histogram\n") && !strstr(t, "# TYPE t_latency_seconds_bucket"));
    CHECK("the process gauges", strstr(t, "# TYPE process_resident_memory_bytes gauge") &&
                                    strstr(t, "# TYPE process_open_fds gauge"));
    CHECK("extra lines at the end", out.len > 8 && !strcmp(t + out.len - 8, "extra 1\n"));
    /* a family's samples come together: its TYPE line, then only its own */
    const char *hist = strstr(t, "# TYPE t_latency_seconds histogram\n");
    const char *next = hist ? strstr(hist + 1, "# HELP") : NULL;
    const char *stray = hist ? strstr(hist, "t_hits_total{") : NULL;
    CHECK("samples grouped by family", hist && (!stray || (next && stray > next)));
    CHECK("a reply of another shape is refused",
          metrics_render(&out, r->element[0], &k, NULL) == -1);
    freeReplyObject(r);
    buf_free(&out);
    metrics_publish_free(&p);
    return check_failed ? 1 : 0;
}
