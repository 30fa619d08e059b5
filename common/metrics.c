/* metrics.c -- see metrics.h. */
#define _POSIX_C_SOURCE 200809L
#include "metrics.h"

#include "clock.h"
#include "enqueue.h"
#include "message.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct {
    SLIST_HEAD(, metric) all;
    char program[32];
    char instance[128];
    long interval_ms;
    long long next_ms;
} reg = {.interval_ms = 5000};

static struct metric *find(const struct metric_family *f, const char *labels)
{
    struct metric *m;
    SLIST_FOREACH(m, &reg.all, link)
        if (m->family == f && strcmp(m->labels, labels) == 0)
            return m;
    return NULL;
}

static struct metric *add(struct metric *m, const struct metric_family *f, const char *labels)
{
    m->family = f;
    snprintf(m->labels, sizeof(m->labels), "%s", labels);
    SLIST_INSERT_HEAD(&reg.all, m, link);
    return m;
}

struct metric *metric_get(const struct metric_family *f, const char *labels)
{
    struct metric *m = find(f, labels);
    if (m || !(m = calloc(1, sizeof(*m))))
        return m;
    return add(m, f, labels);
}

struct histogram *histogram_get(const struct metric_family *f, const char *labels)
{
    struct metric *m = find(f, labels);
    if (m)
        return (struct histogram *)m;
    if (f->nbounds > METRICS_MAX_BOUNDS)
        return NULL;
    struct histogram *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    add(&h->base, f, labels);
    return h;
}

void histogram_observe(struct histogram *h, double v)
{
    if (!h)
        return;
    size_t i = 0;
    const struct metric_family *f = h->base.family;
    while (i < f->nbounds && v > f->bounds[i])
        i++;
    h->buckets[i]++;
    h->sum += v;
    h->count++;
}

const struct metric_family METRIC_REDIS_RECONNECTS = {
    "aimsg_redis_reconnects_total", METRIC_COUNTER,
    "Connections to Redis made again after one was lost.", NULL, 0};
const struct metric_family METRIC_JOBS_QUEUED = {
    "aimsg_jobs_queued_total", METRIC_COUNTER, "Jobs queued, by kind and by where they came from.",
    NULL, 0};
const struct metric_family METRIC_JOBS_REFUSED = {
    "aimsg_jobs_refused_total", METRIC_COUNTER,
    "Messages refused by a quota (rate, answers in flight); nothing was queued.", NULL, 0};

void metrics_count_queued(int image, const char *via)
{
    static struct metric *m[2][2];
    int w = strcmp(via, "http") == 0;
    if (!m[image][w]) {
        char labels[64];
        snprintf(labels, sizeof(labels), "kind=\"%s\",via=\"%s\"", image ? "image" : "text", via);
        m[image][w] = metric_get(&METRIC_JOBS_QUEUED, labels);
    }
    metric_inc(m[image][w]);
}

void metrics_count_refused(const char *why)
{
    static struct metric *rate, *inflight, *conversation;
    int is_rate = why == MSG_RATE_LIMITED, is_conversation = why == MSG_CONVERSATION_BUSY;
    struct metric **m = is_rate ? &rate : is_conversation ? &conversation : &inflight;
    if (!*m)
        *m = metric_get(&METRIC_JOBS_REFUSED, is_rate           ? "reason=\"rate\""
                                              : is_conversation ? "reason=\"conversation\""
                                                                : "reason=\"in_flight\"");
    metric_inc(*m);
}

void metrics_init(const char *program, const char *instance, long interval_ms)
{
    snprintf(reg.program, sizeof(reg.program), "%s", program);
    snprintf(reg.instance, sizeof(reg.instance), "%s", instance);
    reg.interval_ms = interval_ms;
}

int metrics_due(void)
{
    long long now = clock_ms();
    if (now < reg.next_ms)
        return 0;
    reg.next_ms = now + reg.interval_ms;
    return 1;
}

/* ---- the process gauges ------------------------------------------------- */

static const struct metric_family resident = {
    "process_resident_memory_bytes", METRIC_GAUGE, "Resident memory size in bytes.", NULL, 0};
static const struct metric_family open_fds = {
    "process_open_fds", METRIC_GAUGE, "Number of open file descriptors.", NULL, 0};

static double resident_bytes(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = 0;
    fclose(f);
    return (double)rss * (double)sysconf(_SC_PAGESIZE);
}

static double descriptors(void)
{
    DIR *d = opendir("/proc/self/fd");
    double n = 0;
    if (!d)
        return 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own */
}

/* ---- publishing ------------------------------------------------------------ */

/* Each field and value is appended NUL-terminated to p->text; their offsets
 * become argv once the text stops moving. */
static int put(struct metrics_publish *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int put(struct metrics_publish *p, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return -1;
    return buf_append(&p->text, tmp, (size_t)n + 1);
}

static int labels_with(char *out, size_t len, const char *labels, const char *extra)
{
    int n = snprintf(out, len, "%s%s%s", labels, labels[0] && extra[0] ? "," : "", extra);
    return n >= 0 && (size_t)n < len ? 0 : -1;
}

static int put_sample(struct metrics_publish *p, const char *name, const char *suffix,
                      const char *labels, double v)
{
    if (labels[0])
        return put(p, "%s%s{%s}", name, suffix, labels) | put(p, "%.15g", v);
    return put(p, "%s%s", name, suffix) | put(p, "%.15g", v);
}

static int put_histogram(struct metrics_publish *p, const struct histogram *h)
{
    const struct metric_family *f = h->base.family;
    unsigned long long cumulative = 0;
    char labels[192], le[32];
    int rc = 0;
    for (size_t i = 0; i <= f->nbounds; i++) {
        cumulative += h->buckets[i];
        if (i < f->nbounds)
            snprintf(le, sizeof(le), "le=\"%g\"", f->bounds[i]);
        else
            snprintf(le, sizeof(le), "le=\"+Inf\"");
        rc |= labels_with(labels, sizeof(labels), h->base.labels, le);
        rc |= put_sample(p, f->name, "_bucket", labels, (double)cumulative);
    }
    rc |= put_sample(p, f->name, "_sum", h->base.labels, h->sum);
    rc |= put_sample(p, f->name, "_count", h->base.labels, (double)h->count);
    return rc;
}

static const char *type_name(enum metric_type t)
{
    return t == METRIC_COUNTER ? "counter" : t == METRIC_GAUGE ? "gauge" : "histogram";
}

int metrics_publish_prepare(struct metrics_publish *p, const struct keys *k)
{
    metric_set(metric_get(&resident, ""), resident_bytes());
    metric_set(metric_get(&open_fds, ""), descriptors());
    buf_reset(&p->text);
    int rc = 0, fields = 0;
    struct metric *m;
    SLIST_FOREACH(m, &reg.all, link) {
        const struct metric_family *f = m->family;
        struct metric *first = m;
        for (struct metric *o = SLIST_NEXT(m, link); o; o = SLIST_NEXT(o, link))
            if (o->family == f)
                first = o; /* the oldest series of the family says its type */
        if (first == m) {
            rc |= put(p, "#%s", f->name) | put(p, "%s %s", type_name(f->type), f->help);
            fields++;
        }
        if (f->type == METRIC_HISTOGRAM) {
            rc |= put_histogram(p, (const struct histogram *)m);
            fields += (int)f->nbounds + 3;
        } else {
            rc |= put_sample(p, f->name, "", m->labels, m->value);
            fields++;
        }
    }
    if (rc != 0)
        return -1;
    size_t n = 2 + 2 * (size_t)fields;
    const char **argv = realloc(p->argv, n * sizeof(*argv));
    if (argv)
        p->argv = argv;
    size_t *argvlen = realloc(p->argvlen, n * sizeof(*argvlen));
    if (argvlen)
        p->argvlen = argvlen;
    if (!argv || !argvlen)
        return -1;
    snprintf(p->key, sizeof(p->key), "%smetrics:%s:%s", k->prefix, reg.program, reg.instance);
    /* three periods, in ms (PEXPIRE) */
    snprintf(p->ttl, sizeof(p->ttl), "%ld", 3 * reg.interval_ms);
    size_t argc = 0;
    argv[argc++] = "HSET";
    argv[argc++] = p->key;
    for (size_t off = 0; off < p->text.len && argc < n; argc++) {
        argv[argc] = p->text.data + off;
        off += strlen(argv[argc]) + 1;
    }
    for (size_t i = 0; i < argc; i++)
        argvlen[i] = strlen(argv[i]);
    /* the hash replaced whole (MULTI), so no field of an earlier process
     * of the same name stays */
    const char *small[][3] = {{"MULTI"}, {"DEL", p->key}, {NULL}, {"PEXPIRE", p->key, p->ttl},
                              {"EXEC"}, {"SADD", k->metrics, p->key}};
    p->ncmds = 6;
    for (int i = 0; i < 6; i++) {
        if (i == 2) {
            p->cmd[i].argc = (int)argc, p->cmd[i].argv = argv, p->cmd[i].argvlen = argvlen;
            continue;
        }
        int c = 0;
        for (; c < 3 && small[i][c]; c++) {
            p->small[i][c] = small[i][c];
            p->small_len[i][c] = strlen(small[i][c]);
        }
        p->cmd[i].argc = c, p->cmd[i].argv = p->small[i], p->cmd[i].argvlen = p->small_len[i];
    }
    return 0;
}

void metrics_publish_free(struct metrics_publish *p)
{
    buf_free(&p->text);
    free(p->argv);
    free(p->argvlen);
    p->argv = NULL;
    p->argvlen = NULL;
}

/* ---- reading and rendering ----------------------------------------------- */

const char metrics_read_lua[] =
    "local out = {}\n"
    "for _, key in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"
    "  local h = redis.call('HGETALL', key)\n"
    "  if #h == 0 then redis.call('SREM', KEYS[1], key)\n"
    "  else out[#out + 1] = key; out[#out + 1] = h end\n"
    "end\n"
    "return out\n";

/* P metrics:<program>:<instance> -> program, instance */
static int key_names(const char *key, const char *hash_prefix, char *program, size_t plen,
                     char *instance, size_t ilen)
{
    size_t n = strlen(hash_prefix);
    if (strncmp(key, hash_prefix, n) != 0)
        return -1;
    const char *p = key + n;
    const char *colon = strchr(p, ':');
    if (!colon || (size_t)(colon - p) >= plen || strlen(colon + 1) >= ilen)
        return -1;
    memcpy(program, p, (size_t)(colon - p));
    program[colon - p] = '\0';
    strcpy(instance, colon + 1);
    return 0;
}

/* A label value as the exposition format wants it: \, " and newline escaped. */
static int put_label_value(struct buf *b, const char *v)
{
    int rc = 0;
    for (; *v && rc == 0; v++) {
        if (*v == '\\' || *v == '"')
            rc = buf_printf(b, "\\%c", *v);
        else if (*v == '\n')
            rc = buf_puts(b, "\\n");
        else
            rc = buf_append(b, v, 1);
    }
    return rc;
}

/* One sample line: the name, the labels with program and instance added. */
static int render_sample(struct buf *out, const char *field, const char *value,
                         const char *program, const char *instance)
{
    const char *brace = strchr(field, '{');
    size_t name_len = brace ? (size_t)(brace - field) : strlen(field);
    int rc = buf_append(out, field, name_len) | buf_puts(out, "{program=\"") |
             put_label_value(out, program) | buf_puts(out, "\",instance=\"") |
             put_label_value(out, instance) | buf_puts(out, "\"");
    if (brace) {
        size_t rest = strlen(brace + 1); /* `a="x"}` */
        rc |= buf_puts(out, ",") | buf_append(out, brace + 1, rest);
    } else {
        rc |= buf_puts(out, "}");
    }
    return rc | buf_printf(out, " %s\n", value);
}

/* The family a sample belongs to: its name, or for a histogram's
 * _bucket/_sum/_count the name without the suffix. */
static int family_of(const char *field, const char *family)
{
    size_t n = strlen(family), len = strcspn(field, "{");
    if (strncmp(field, family, n) != 0)
        return 0;
    if (len == n)
        return 1;
    const char *suffix = field + n;
    size_t sl = len - n;
    return (sl == 7 && !strncmp(suffix, "_bucket", 7)) || (sl == 4 && !strncmp(suffix, "_sum", 4)) ||
           (sl == 6 && !strncmp(suffix, "_count", 6));
}

struct family_seen {
    const char *name;
    const char *type_help;
};

int metrics_render(struct buf *out, const redisReply *r, const struct keys *k, const char *extra)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements % 2)
        return -1;
    size_t nfam = 0, cap = 0;
    struct family_seen *fams = NULL;
    int rc = 0;
    char hash_prefix[128];
    snprintf(hash_prefix, sizeof(hash_prefix), "%s:", k->metrics);
    /* the families, in the order first seen */
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *h = r->element[i + 1];
        for (size_t j = 0; h->type == REDIS_REPLY_ARRAY && j + 1 < h->elements; j += 2) {
            const char *f = h->element[j]->str;
            if (!f || f[0] != '#')
                continue;
            size_t fi = 0;
            while (fi < nfam && strcmp(fams[fi].name, f + 1) != 0)
                fi++;
            if (fi < nfam)
                continue;
            if (nfam == cap) {
                cap = cap ? cap * 2 : 32;
                struct family_seen *nf = realloc(fams, cap * sizeof(*nf));
                if (!nf) {
                    free(fams);
                    return -1;
                }
                fams = nf;
            }
            fams[nfam++] = (struct family_seen){f + 1, h->element[j + 1]->str};
        }
    }
    /* each family's samples together, as the format asks */
    for (size_t fi = 0; fi < nfam && rc == 0; fi++) {
        const char *th = fams[fi].type_help ? fams[fi].type_help : "untyped ";
        const char *sp = strchr(th, ' ');
        size_t tl = sp ? (size_t)(sp - th) : strlen(th);
        rc |= buf_printf(out, "# HELP %s %s\n# TYPE %s %.*s\n", fams[fi].name, sp ? sp + 1 : "",
                         fams[fi].name, (int)tl, th);
        for (size_t i = 0; i + 1 < r->elements; i += 2) {
            char program[64], instance[256];
            const redisReply *key = r->element[i], *h = r->element[i + 1];
            if (key->type != REDIS_REPLY_STRING || h->type != REDIS_REPLY_ARRAY ||
                key_names(key->str, hash_prefix, program, sizeof(program), instance,
                          sizeof(instance)) != 0)
                continue;
            for (size_t j = 0; j + 1 < h->elements; j += 2) {
                const char *f = h->element[j]->str, *v = h->element[j + 1]->str;
                if (f && v && f[0] != '#' && family_of(f, fams[fi].name))
                    rc |= render_sample(out, f, v, program, instance);
            }
        }
    }
    free(fams);
    if (extra)
        rc |= buf_puts(out, extra);
    return rc ? -1 : 0;
}
