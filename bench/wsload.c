/* wsload -- the WebSocket load client of `make bench`.
 *
 *   wsload --url ws://127.0.0.1:PORT/ws [--connections N] [--duration S]
 *          [--expect-frames N] [--expect-done N] [--hold S]
 *          [--sources K] [--connect-window W]
 *          [--publish REDIS_URL --channel CH --frames N [--frame-bytes B] [--rate R]]
 *          [--post http://HOST:PORT/PATH --requests N [--content TEXT]]
 *          [--ask TEXT]
 *          [--watch-pid PID[,PID...]] [--raw 1]
 *
 * Opens N connections (at most W handshakes in flight), spread over the
 * source addresses 127.0.0.1 .. 127.0.0.K, and keeps them open. Every frame
 * received that carries "ts" (µs since the epoch, set by whoever published
 * it) gives one latency sample: receive time - ts.
 *
 * It stops when the duration has passed, or, once every connection is up
 * (or has failed):
 *   --expect-frames N / --expect-done N: every open connection got N frames
 *                       (N "done" frames);
 *   --hold S:           S seconds later;
 *   --post:             when the requests are done;
 *   otherwise:          at once (a connect test).
 *
 * --publish: once every connection is up, a thread PUBLISHes N text frames
 * of B bytes (each with a fresh "ts") and one "done" frame on CH, in
 * pipelined batches, as fast as possible or at R frames/s.
 *
 * --post: a thread sends N requests one after the other,
 * POST {"content":TEXT} (Connection: close); for each it waits for the
 * answer's "done" frame on the first connection. End-to-end latency = from
 * just before connect() of the POST to the receipt of the first text frame.
 *
 * --ask: once every connection is up, each sends {"type":"text","content":
 * TEXT}: its own question, whose answer only it gets. With --expect-done 1
 * it stops when every connection has its answer; "disorder" counts answer
 * frames whose seq is not the one after the connection's previous frame.
 *
 * --watch-pid: also reports the CPU those processes used (from /proc/PID/stat), summed
 * over the measuring window: from the first publish, or from the end of the
 * connect phase, to the end; as cores (CPU seconds per second), like the
 * client's own CPU.
 *
 * --raw 1: the connections are plain sockets on epoll with a receive-only
 * RFC 6455 client of its own (it answers pings, no --ask) instead of lws'
 * client, which reads frames a byte at a time and poll()s every connection
 * at each wake-up: at 500k frames/s lws' client took as much CPU as the
 * ws-push it measured, on the same 2 cores.
 *
 * Prints "# established E of N (F failed) in S s" on stderr when the
 * connect phase is over, and one JSON object on stdout at the end.
 * Exit status 0, or 2 when it could not run at all. */
#define _GNU_SOURCE
#include <errno.h>
#include <libwebsockets.h>
#include <netdb.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "redis_conn.h"

/* ---- clocks ------------------------------------------------------------ */

static long long real_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static long long mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- latency histogram: exact below 512 µs, then 256 buckets per octave -- */

#define SUB_BITS 8
#define SUB (1 << SUB_BITS)
#define NBUCKETS (64 * SUB)

struct hist {
    uint64_t count[NBUCKETS];
    uint64_t n;
    long long max;
};

static int bucket_of(uint64_t v)
{
    if (v < 2 * SUB)
        return (int)v;
    int e = 63 - __builtin_clzll(v);
    return (e - SUB_BITS) * SUB + (int)((v >> (e - SUB_BITS)) & (SUB - 1)) + SUB;
}

static uint64_t bucket_value(int b)
{
    if (b < 2 * SUB)
        return (uint64_t)b;
    int k = b - SUB, e = k / SUB + SUB_BITS;
    return (uint64_t)(SUB + k % SUB) << (e - SUB_BITS);
}

static void hist_add(struct hist *h, long long v)
{
    if (v < 0)
        v = 0;
    h->count[bucket_of((uint64_t)v)]++;
    h->n++;
    if (v > h->max)
        h->max = v;
}

static long long hist_pct(const struct hist *h, double pct)
{
    if (!h->n)
        return -1;
    uint64_t want = (uint64_t)((double)h->n * pct / 100.0 + 0.5), seen = 0;
    if (want < 1)
        want = 1;
    for (int b = 0; b < NBUCKETS; b++) {
        seen += h->count[b];
        if (seen >= want)
            return (long long)bucket_value(b);
    }
    return h->max;
}

/* ---- state ------------------------------------------------------------- */

enum ftype { F_OTHER, F_TEXT, F_DONE };

struct session {
    int index;
    int up, closed, satisfied;
    enum ftype type;     /* of the frame being received */
    long seq;            /* of the frame being received, -1: none */
    long last_seq;       /* of the last answer frame, -1: none yet */
    int asked;
    long frames, done;
    unsigned char tail[48]; /* the last bytes of the frame being received */
    size_t tail_len;
};

static struct {
    /* options */
    const char *url;
    int connections, sources, window;
    double duration, hold;
    long expect_frames, expect_done;
    const char *publish_url, *channel;
    long pub_frames, frame_bytes;
    double rate;
    const char *post_url, *content;
    long requests;
    const char *ask;
    int raw;

    /* connect phase */
    struct lws_context *ctx;
    struct lws_client_connect_info ci;
    char ifaces[256][24];
    int started, established, failed, closed, satisfied, closed_unsatisfied;
    int failed_in_call;         /* the error callback ran inside connect_via_info */
    int connect_done;
    long long t_start, t_connected;

    /* frames */
    long long frames, text, done, asked, disorder;
    long long first_rx, last_rx;
    struct hist lat;

    /* threads */
    sem_t go;                   /* connect phase over: start publishing/posting */
    atomic_int stop;            /* main loop is ending */
    atomic_int pub_finished, post_finished;
    long long pub_start, pub_end;
    long long published, pub_receivers, pub_bytes;
    char pub_error[256];

    /* --post */
    atomic_int req_state;       /* 0 idle, 1 waiting first chunk, 2 waiting done */
    atomic_llong req_t0, req_t0_real;
    sem_t req_done;
    long long *e2e, *http, *publ; /* first chunk; HTTP answer; worker's ts of the chunk */
    long e2e_n, http_n, post_ok, post_failed, post_timeouts;
    char post_error[256];

    /* the measuring window, and CPU used in it */
    int watch_pid[8], nwatch;
    long long win_t0;
    double win_watch0, win_self0;

    int finished;
} st = {.connections = 1, .sources = 1, .window = 256, .duration = 60};

/* The tick only bounds how long a turn of the loop may sleep (the stop
 * checks run after each): each turn poll()s every connection, so a short
 * tick costs an idle client with 15k connections most of a core. */
#define TICK_US (100 * LWS_US_PER_MS)
static lws_sorted_usec_list_t tick_sul;

/* ---- CPU ---------------------------------------------------------------- */

/* CPU seconds process pid has used (utime + stime), -1 if unknown */
static double proc_cpu_s(int pid)
{
    char path[64], line[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(line, 1, sizeof(line) - 1, f);
    fclose(f);
    line[n] = '\0';
    const char *p = strrchr(line, ')');
    unsigned long long ut, stt;
    /* after ") ": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &stt) != 2)
        return -1;
    return (double)(ut + stt) / (double)sysconf(_SC_CLK_TCK);
}

/* CPU seconds of every watched process, -1 if one is unknown */
static double watched_cpu_s(void)
{
    double sum = 0;
    for (int i = 0; i < st.nwatch; i++) {
        double c = proc_cpu_s(st.watch_pid[i]);
        if (c < 0)
            return -1;
        sum += c;
    }
    return sum;
}

static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void window_start(void)
{
    st.win_t0 = mono_us();
    st.win_self0 = self_cpu_s();
    st.win_watch0 = st.nwatch ? watched_cpu_s() : -1;
}

/* ---- frames -------------------------------------------------------------- */

static enum ftype frame_type(const char *p, size_t len)
{
    size_t n = len < 32 ? len : 32;
    if (memmem(p, n, "\"type\":\"text\"", 13))
        return F_TEXT;
    if (memmem(p, n, "\"type\":\"done\"", 13))
        return F_DONE;
    return F_OTHER;
}

static void keep_tail(struct session *ss, const unsigned char *p, size_t len)
{
    size_t cap = sizeof(ss->tail);
    if (len >= cap) {
        memcpy(ss->tail, p + len - cap, cap);
        ss->tail_len = cap;
        return;
    }
    if (ss->tail_len + len > cap) {
        size_t drop = ss->tail_len + len - cap;
        memmove(ss->tail, ss->tail + drop, ss->tail_len - drop);
        ss->tail_len -= drop;
    }
    memcpy(ss->tail + ss->tail_len, p, len);
    ss->tail_len += len;
}

/* the "ts" of a frame whose last bytes are in tail, or -1 */
static long long tail_ts(const struct session *ss)
{
    char t[sizeof(ss->tail) + 1];
    memcpy(t, ss->tail, ss->tail_len);
    t[ss->tail_len] = '\0';
    char *p = NULL;
    for (char *q = t; (q = strstr(q, "\"ts\":")); q++)
        p = q;
    return p ? strtoll(p + 5, NULL, 10) : -1;
}

static int wanted(void)
{
    return st.expect_frames > 0 || st.expect_done > 0;
}

/* the "seq" near the start of a frame, -1 if none */
static long head_seq(const char *p, size_t len)
{
    size_t n = len < 128 ? len : 128;
    const char *q = memmem(p, n, "\"seq\":", 6);
    return q ? strtol(q + 6, NULL, 10) : -1;
}

static void note_order(struct session *ss)
{
    if (ss->seq < 0 || (ss->type != F_TEXT && ss->type != F_DONE))
        return;
    if (ss->last_seq >= 0 && ss->seq != ss->last_seq + 1)
        st.disorder++;
    ss->last_seq = ss->seq;
}

static void on_frame(struct session *ss)
{
    long long now = real_us(), mono = mono_us();
    ss->frames++;
    st.frames++;
    if (!st.first_rx)
        st.first_rx = mono;
    st.last_rx = mono;
    long long ts = tail_ts(ss);
    if (ts > 0)
        hist_add(&st.lat, now - ts);
    if (st.ask)
        note_order(ss);
    if (ss->type == F_TEXT) {
        st.text++;
        int expect = 1;
        if (ss->index == 0 &&
            atomic_compare_exchange_strong(&st.req_state, &expect, 2) &&
            st.e2e_n < st.requests) {
            if (ts > 0)
                st.publ[st.e2e_n] = ts - atomic_load(&st.req_t0_real);
            st.e2e[st.e2e_n++] = mono - atomic_load(&st.req_t0);
        }
    } else if (ss->type == F_DONE) {
        st.done++;
        ss->done++;
        if (ss->index == 0 && atomic_load(&st.req_state) != 0) {
            atomic_store(&st.req_state, 0);
            sem_post(&st.req_done);
        }
    }
    if (!ss->satisfied && wanted() &&
        (st.expect_frames <= 0 || ss->frames >= st.expect_frames) &&
        (st.expect_done <= 0 || ss->done >= st.expect_done)) {
        ss->satisfied = 1;
        st.satisfied++;
    }
}

/* ---- the connections ----------------------------------------------------- */

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len);
static const struct lws_protocols protocols[] = {
    {"wsload", callback, sizeof(struct session), 4096, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0}};

static int inflight(void)
{
    return st.started - st.established - st.failed;
}

/* Every connection up or failed: the measuring starts. */
static void connect_phase_over(void)
{
    if (!st.connect_done && st.started == st.connections && inflight() == 0) {
        st.connect_done = 1;
        st.t_connected = mono_us();
        window_start();
        fprintf(stderr, "# established %d of %d (%d failed) in %.2f s\n", st.established,
                st.connections, st.failed, (double)(st.t_connected - st.t_start) / 1e6);
        if (st.publish_url || st.post_url)
            sem_post(&st.go);
        if (st.ask)
            lws_callback_on_writable_all_protocol(st.ctx, &protocols[0]);
    }
}

static void open_more(void)
{
    while (!st.stop && st.started < st.connections && inflight() < st.window) {
        int i = st.started++;
        st.ci.iface = st.sources > 1 ? st.ifaces[i % st.sources] : NULL;
        st.failed_in_call = 0;
        if (!lws_client_connect_via_info(&st.ci) && !st.failed_in_call)
            st.failed++; /* unless the error callback has counted it already */
    }
    connect_phase_over();
}

/* The connection's question (--ask). */
static int ask(struct lws *wsi, struct session *ss)
{
    struct buf b = BUF_INIT;
    ss->asked = 1;
    if (buf_append(&b, (const char[LWS_PRE]){0}, LWS_PRE) != 0 ||
        buf_printf(&b, "{\"type\":\"text\",\"content\":") != 0 ||
        buf_json_string(&b, st.ask, strlen(st.ask)) != 0 || buf_printf(&b, "}") != 0) {
        buf_free(&b);
        return -1;
    }
    size_t n = b.len - LWS_PRE;
    int w = lws_write(wsi, (unsigned char *)b.data + LWS_PRE, n, LWS_WRITE_TEXT);
    buf_free(&b);
    if (w < (int)n)
        return -1;
    st.asked++;
    return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct session *ss = user;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        st.failed++;
        st.failed_in_call = 1;
        if (st.failed <= 3)
            fprintf(stderr, "# connection failed: %s\n", in ? (const char *)in : "?");
        break;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        ss->index = st.established++;
        ss->up = 1;
        ss->last_seq = -1;
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (st.ask && !ss->asked)
            return ask(wsi, ss);
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (lws_is_first_fragment(wsi)) {
            ss->type = frame_type(in, len);
            ss->seq = head_seq(in, len);
            ss->tail_len = 0;
        }
        keep_tail(ss, in, len);
        if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi))
            on_frame(ss);
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (ss && ss->up && !ss->closed) {
            ss->closed = 1;
            st.closed++;
            if (!ss->satisfied)
                st.closed_unsatisfied++;
        }
        break;
    default:
        break;
    }
    return 0;
}

static double since(long long t0)
{
    return (double)(mono_us() - t0) / 1e6;
}

static void check_stop(void)
{
    if (st.finished)
        return;
    if (since(st.t_start) >= st.duration) {
        st.finished = 1;
        return;
    }
    if (!st.connect_done)
        return;
    if (st.established == 0) {
        st.finished = 1;
        return;
    }
    if (st.post_url) {
        if (atomic_load(&st.post_finished))
            st.finished = 1;
        return;
    }
    if (wanted()) {
        if (st.satisfied + st.closed_unsatisfied >= st.established)
            st.finished = 1;
        return;
    }
    if (st.publish_url) {
        /* nothing to wait for but the publisher, then a second of stragglers */
        if (atomic_load(&st.pub_finished) && mono_us() - st.pub_end > 1000000)
            st.finished = 1;
        return;
    }
    if (since(st.t_connected) >= st.hold)
        st.finished = 1;
}

static void on_tick(lws_sorted_usec_list_t *sul)
{
    (void)sul;
    lws_sul_schedule(st.ctx, 0, &tick_sul, on_tick, TICK_US);
}

/* ---- --raw: receive-only connections on epoll ---------------------------- */

enum raw_state { RAW_CONNECTING, RAW_HANDSHAKE, RAW_OPEN, RAW_DONE };

struct raw_conn {
    int fd;
    enum raw_state state;
    struct session ss;
    char hs[1024];               /* the handshake's answer, up to its blank line */
    size_t hs_len;
    unsigned char hdr[14];       /* the frame header being read */
    size_t hdr_len, hdr_need;
    uint64_t left;               /* payload bytes of the current frame still to come */
    int opcode, fin;
    unsigned char head[129];     /* the message's first bytes (its type and seq), NUL */
    size_t head_len;
    int in_message;
    unsigned char ctl[125];      /* a control frame's payload */
    size_t ctl_len;
    long long opened_us;         /* connecting and handshaking: given up after RAW_UPGRADE_US */
};

#define RAW_UPGRADE_US (30 * 1000000LL) /* as lws' timeout_secs */

static struct {
    int ep;
    struct raw_conn *conns;
    struct sockaddr_in to;
    char request[768];
    size_t request_len;
} raw;

static int raw_prepare(const char *address, int port, const char *path)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    if (getaddrinfo(address, NULL, &hints, &ai) != 0 || !ai) {
        fprintf(stderr, "cannot resolve %s\n", address);
        return -1;
    }
    memcpy(&raw.to, ai->ai_addr, sizeof(raw.to));
    raw.to.sin_port = htons((uint16_t)port);
    freeaddrinfo(ai);
    int n = snprintf(raw.request, sizeof(raw.request),
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: d3Nsb2FkLXJhdy1rZXkhIQ==\r\nSec-WebSocket-Version: 13\r\n"
                     "Origin: http://%s\r\n\r\n", path, address, port, address);
    raw.request_len = (size_t)n;
    raw.conns = calloc((size_t)st.connections, sizeof(*raw.conns));
    raw.ep = epoll_create1(0);
    return raw.conns && raw.ep >= 0 && n < (int)sizeof(raw.request) ? 0 : -1;
}

static void raw_close(struct raw_conn *rc)
{
    if (rc->state == RAW_DONE)
        return;
    if (rc->state == RAW_OPEN) {
        st.closed++;
        if (!rc->ss.satisfied)
            st.closed_unsatisfied++;
    } else {
        st.failed++; /* connecting or upgrading */
    }
    rc->state = RAW_DONE;
    close(rc->fd);
}

static int raw_open(struct raw_conn *rc, int i)
{
    rc->state = RAW_DONE;
    rc->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (rc->fd < 0)
        return -1;
    struct sockaddr_in from = {.sin_family = AF_INET};
    from.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(i % st.sources));
    if (st.sources > 1 && bind(rc->fd, (struct sockaddr *)&from, sizeof(from)) != 0)
        goto fail;
    if (connect(rc->fd, (struct sockaddr *)&raw.to, sizeof(raw.to)) != 0 && errno != EINPROGRESS)
        goto fail;
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = rc};
    if (epoll_ctl(raw.ep, EPOLL_CTL_ADD, rc->fd, &ev) != 0)
        goto fail;
    rc->state = RAW_CONNECTING;
    rc->opened_us = mono_us();
    return 0;
fail:
    close(rc->fd);
    return -1;
}

static void raw_open_more(void)
{
    while (!st.stop && st.started < st.connections && inflight() < st.window) {
        int i = st.started++;
        if (raw_open(&raw.conns[i], i) != 0) {
            st.failed++;
            if (st.failed <= 3)
                fprintf(stderr, "# connection failed: %s\n", strerror(errno));
        }
    }
    connect_phase_over();
}

/* A pong, masked (RFC 6455 5.3: a client masks what it sends). */
static void raw_pong(struct raw_conn *rc)
{
    unsigned char f[6 + sizeof(rc->ctl)];
    static const unsigned char key[4] = {0x5a, 0x17, 0xc3, 0x2e};
    f[0] = 0x8a;
    f[1] = (unsigned char)(0x80 | rc->ctl_len);
    memcpy(f + 2, key, 4);
    for (size_t k = 0; k < rc->ctl_len; k++)
        f[6 + k] = rc->ctl[k] ^ key[k % 4];
    if (send(rc->fd, f, 6 + rc->ctl_len, MSG_NOSIGNAL) != (ssize_t)(6 + rc->ctl_len))
        raw_close(rc);
}

static void raw_header_done(struct raw_conn *rc)
{
    const unsigned char *h = rc->hdr;
    uint64_t len = h[1] & 0x7f;
    if (len == 126)
        len = (uint64_t)h[2] << 8 | h[3];
    else if (len == 127) {
        len = 0;
        for (int k = 0; k < 8; k++)
            len = len << 8 | h[2 + k];
    }
    rc->opcode = h[0] & 0x0f;
    rc->fin = h[0] >> 7;
    rc->left = len;
    rc->ctl_len = 0;
    if (rc->opcode < 8 && rc->opcode != 0) { /* a message's first frame */
        rc->in_message = 1;
        rc->head_len = 0;
        rc->head[0] = '\0';
        rc->ss.tail_len = 0;
    }
}

static void raw_frame_done(struct raw_conn *rc)
{
    if (rc->opcode == 9) {
        raw_pong(rc);
    } else if (rc->opcode == 8) {
        raw_close(rc);
    } else if (rc->opcode < 8 && rc->fin && rc->in_message) {
        rc->in_message = 0;
        rc->ss.type = frame_type((const char *)rc->head, rc->head_len);
        rc->ss.seq = head_seq((const char *)rc->head, rc->head_len);
        on_frame(&rc->ss);
    }
}

static void raw_payload(struct raw_conn *rc, const unsigned char *p, size_t n)
{
    if (rc->opcode >= 8) {
        memcpy(rc->ctl + rc->ctl_len, p, n);
        rc->ctl_len += n;
        return;
    }
    size_t h = sizeof(rc->head) - 1 - rc->head_len;
    if (h > n)
        h = n;
    memcpy(rc->head + rc->head_len, p, h);
    rc->head_len += h;
    rc->head[rc->head_len] = '\0';
    keep_tail(&rc->ss, p, n);
}

/* RFC 6455 frames from the server (unmasked), however the reads cut them. */
static void raw_frames(struct raw_conn *rc, const unsigned char *p, size_t n)
{
    while (n && rc->state == RAW_OPEN) {
        if (rc->left == 0 && rc->hdr_need == 0) {
            rc->hdr_len = 0;
            rc->hdr_need = 2;
        }
        if (rc->hdr_need) {
            while (n && rc->hdr_len < rc->hdr_need) {
                rc->hdr[rc->hdr_len++] = *p++;
                n--;
                if (rc->hdr_len == 2) {
                    unsigned l7 = rc->hdr[1] & 0x7f;
                    if ((rc->hdr[1] & 0x80) || ((rc->hdr[0] & 0x0f) >= 8 && l7 > 125)) {
                        raw_close(rc); /* a server never masks; control frames are short */
                        return;
                    }
                    rc->hdr_need = 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0);
                }
            }
            if (rc->hdr_len < rc->hdr_need)
                return;
            rc->hdr_need = 0;
            raw_header_done(rc);
            if (rc->left == 0) {
                raw_frame_done(rc);
                continue;
            }
        }
        size_t take = rc->left < n ? (size_t)rc->left : n;
        raw_payload(rc, p, take);
        p += take;
        n -= take;
        rc->left -= take;
        if (rc->left == 0)
            raw_frame_done(rc);
    }
}

/* The server's answer to the upgrade: 101, then (maybe in the same read)
 * the first frames. */
static void raw_handshake(struct raw_conn *rc, const unsigned char *p, size_t n)
{
    size_t room = sizeof(rc->hs) - 1 - rc->hs_len, take = n < room ? n : room;
    memcpy(rc->hs + rc->hs_len, p, take);
    rc->hs_len += take;
    rc->hs[rc->hs_len] = '\0';
    char *end = strstr(rc->hs, "\r\n\r\n");
    if (!end) {
        if (rc->hs_len == sizeof(rc->hs) - 1)
            raw_close(rc);
        return;
    }
    if (strncmp(rc->hs, "HTTP/1.1 101", 12) != 0) {
        if (st.failed < 3)
            fprintf(stderr, "# connection refused: %.*s\n", (int)strcspn(rc->hs, "\r"), rc->hs);
        raw_close(rc);
        return;
    }
    size_t used = (size_t)(end + 4 - rc->hs) - (rc->hs_len - take);
    rc->state = RAW_OPEN;
    rc->ss.index = st.established++;
    rc->ss.up = 1;
    rc->ss.last_seq = -1;
    raw_frames(rc, p + used, n - used);
}

static void raw_event(struct raw_conn *rc, uint32_t events)
{
    static unsigned char in[65536];
    if (rc->state == RAW_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof(err);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = rc};
        if ((events & (EPOLLERR | EPOLLHUP)) || getsockopt(rc->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 ||
            err || send(rc->fd, raw.request, raw.request_len, MSG_NOSIGNAL) != (ssize_t)raw.request_len ||
            epoll_ctl(raw.ep, EPOLL_CTL_MOD, rc->fd, &ev) != 0) {
            raw_close(rc);
            return;
        }
        rc->state = RAW_HANDSHAKE;
        return;
    }
    for (;;) {
        ssize_t n = recv(rc->fd, in, sizeof(in), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            raw_close(rc);
            return;
        }
        if (rc->state == RAW_HANDSHAKE)
            raw_handshake(rc, in, (size_t)n);
        else
            raw_frames(rc, in, (size_t)n);
        if (rc->state == RAW_DONE || (size_t)n < sizeof(in))
            return;
    }
}

/* Connections that got no 101 in time fail, as lws' would: the connect
 * phase ends. */
static void raw_give_up_slow_upgrades(void)
{
    static long long checked;
    long long now = mono_us();
    if (st.connect_done || now - checked < 1000000)
        return;
    checked = now;
    for (int i = 0; i < st.started; i++) {
        struct raw_conn *rc = &raw.conns[i];
        if ((rc->state == RAW_CONNECTING || rc->state == RAW_HANDSHAKE) &&
            now - rc->opened_us > RAW_UPGRADE_US)
            raw_close(rc);
    }
}

static void raw_run(void)
{
    struct epoll_event evs[256];
    raw_open_more();
    while (!st.finished) {
        int n = epoll_wait(raw.ep, evs, 256, 100);
        for (int k = 0; k < n; k++)
            raw_event(evs[k].data.ptr, evs[k].events);
        raw_give_up_slow_upgrades();
        raw_open_more();
        check_stop();
    }
}

/* After the figures are taken: closing 10k sockets is not part of them. */
static void raw_cleanup(void)
{
    for (int i = 0; i < st.started; i++)
        if (raw.conns[i].state != RAW_DONE)
            close(raw.conns[i].fd);
    free(raw.conns);
    close(raw.ep);
}

/* ---- the publisher thread ---------------------------------------------- */

static void *publisher(void *arg)
{
    (void)arg;
    sem_wait(&st.go);
    if (atomic_load(&st.stop))
        return NULL;
    struct redis_addr addr;
    char err[256];
    redisContext *rc = NULL;
    if (redis_addr_parse(&addr, st.publish_url, err, sizeof(err)) != 0 ||
        !(rc = redis_connect(&addr, 10000, err, sizeof(err)))) {
        snprintf(st.pub_error, sizeof(st.pub_error), "%s", err);
        atomic_store(&st.pub_finished, 1);
        lws_cancel_service(st.ctx);
        return NULL;
    }
    usleep(200 * 1000); /* let the last upgrades settle in ws-push */
    /* the content that makes a frame frame_bytes long, near enough */
    /* each run its own answer id: ws-push drops frames of an answer it has
     * seen end (common/frame.h) */
    char id[32];
    snprintf(id, sizeof(id), "bench-%d", (int)getpid());
    long overhead = (long)strlen("{\"type\":\"text\",\"id\":\"\",\"seq\":,\"content\":\"\",\"ts\":}") +
                    (long)strlen(id) + 3 + 16;
    long pad = st.frame_bytes - overhead;
    if (pad < 1)
        pad = 1;
    char *content = malloc((size_t)pad + 1);
    memset(content, 'x', (size_t)pad);
    content[pad] = '\0';
    struct buf f = BUF_INIT;
    /* a burst goes in pipelined batches; paced frames one by one, on time */
    long batch = st.rate > 0 ? (long)(st.rate / 1000) : 32;
    if (batch < 1)
        batch = 1;
    if (batch > 32)
        batch = 32;
    window_start();
    st.pub_start = mono_us();
    for (long i = 0; i <= st.pub_frames && !atomic_load(&st.stop);) {
        long n = 0;
        for (; n < batch && i <= st.pub_frames; n++, i++) {
            buf_reset(&f);
            if (i < st.pub_frames)
                buf_printf(&f, "{\"type\":\"text\",\"id\":\"%s\",\"seq\":%ld,\"content\":\"%s\",\"ts\":%lld}",
                           id, i, content, real_us());
            else
                buf_printf(&f, "{\"type\":\"done\",\"id\":\"%s\",\"seq\":%ld,\"ts\":%lld}", id, i,
                           real_us());
            st.pub_bytes += (long long)f.len;
            redisAppendCommand(rc, "PUBLISH %s %b", st.channel, f.data, f.len);
        }
        for (long k = 0; k < n; k++) {
            redisReply *r = NULL;
            if (redisGetReply(rc, (void **)&r) != REDIS_OK) {
                snprintf(st.pub_error, sizeof(st.pub_error), "PUBLISH: %s", rc->errstr);
                i = st.pub_frames + 1;
                break;
            }
            if (r->type == REDIS_REPLY_INTEGER)
                st.pub_receivers += r->integer;
            st.published++;
            freeReplyObject(r);
        }
        if (st.rate > 0) {
            long long due = st.pub_start + (long long)((double)i * 1e6 / st.rate);
            long long now = mono_us();
            if (due > now)
                usleep((useconds_t)(due - now));
        }
    }
    st.pub_end = mono_us();
    buf_free(&f);
    free(content);
    redisFree(rc);
    atomic_store(&st.pub_finished, 1);
    lws_cancel_service(st.ctx);
    return NULL;
}

/* ---- the poster thread ------------------------------------------------- */

static int http_post(const char *host, const char *port, const char *path, const char *body,
                     int *status)
{
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_family = AF_INET;
    if (getaddrinfo(host, port, &hints, &ai) != 0 || !ai)
        return -1;
    int fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        freeaddrinfo(ai);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    freeaddrinfo(ai);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char req[2048];
    int n = snprintf(req, sizeof(req),
                     "POST %s HTTP/1.1\r\nHost: %s:%s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     path, host, port, strlen(body), body);
    if (n <= 0 || n >= (int)sizeof(req) || write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    char resp[4096];
    size_t got = 0;
    ssize_t r;
    while (got < sizeof(resp) - 1 && (r = read(fd, resp + got, sizeof(resp) - 1 - got)) > 0)
        got += (size_t)r;
    resp[got] = '\0';
    close(fd);
    *status = 0;
    if (sscanf(resp, "HTTP/1.%*d %d", status) != 1)
        return -1;
    return 0;
}

static void *poster(void *arg)
{
    (void)arg;
    sem_wait(&st.go);
    char host[256], port[16] = "80", path[512] = "/";
    const char *p = st.post_url;
    if (strncmp(p, "http://", 7) == 0)
        p += 7;
    size_t hl = strcspn(p, ":/");
    snprintf(host, sizeof(host), "%.*s", (int)hl, p);
    p += hl;
    if (*p == ':') {
        size_t pl = strcspn(p + 1, "/");
        snprintf(port, sizeof(port), "%.*s", (int)pl, p + 1);
        p += 1 + pl;
    }
    if (*p)
        snprintf(path, sizeof(path), "%s", p);
    struct buf body = BUF_INIT;
    buf_puts(&body, "{\"content\":");
    buf_json_string(&body, st.content, strlen(st.content));
    buf_puts(&body, "}");
    usleep(200 * 1000);
    for (long i = 0; i < st.requests && !atomic_load(&st.stop); i++) {
        int status = 0;
        long long t0 = mono_us();
        atomic_store(&st.req_t0, t0);
        atomic_store(&st.req_t0_real, real_us());
        atomic_store(&st.req_state, 1);
        int rc = http_post(host, port, path, body.data, &status);
        if (st.http_n < st.requests)
            st.http[st.http_n++] = mono_us() - t0;
        if (rc != 0 || status != 200) {
            atomic_store(&st.req_state, 0);
            st.post_failed++;
            if (!st.post_error[0])
                snprintf(st.post_error, sizeof(st.post_error), "POST %s: %s", st.post_url,
                         status ? "status not 200" : strerror(errno));
            usleep(10 * 1000);
            continue;
        }
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += 10;
        while (sem_timedwait(&st.req_done, &deadline) != 0 && errno == EINTR)
            ;
        if (atomic_load(&st.req_state) != 0) {
            atomic_store(&st.req_state, 0);
            st.post_timeouts++;
        } else {
            st.post_ok++;
        }
    }
    buf_free(&body);
    atomic_store(&st.post_finished, 1);
    lws_cancel_service(st.ctx);
    return NULL;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

/* ,"NAME_p50_us":…,"NAME_p99_us":…,"NAME_max_us":… of n samples (sorts them) */
static void print_pcts(const char *name, long long *v, long n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_ll);
    long long p50 = n ? v[(n - 1) / 2] : -1;
    long long p99 = n ? v[(long)((double)(n - 1) * 0.99 + 0.5)] : -1;
    long long mx = n ? v[n - 1] : -1;
    printf(",\"%s_p50_us\":%lld,\"%s_p99_us\":%lld,\"%s_max_us\":%lld", name, p50, name, p99,
           name, mx);
}

/* ---- main ---------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr,
            "usage: wsload --url ws://HOST:PORT/PATH [--connections N] [--duration S]\n"
            "              [--expect-frames N] [--expect-done N] [--hold S] [--sources K]\n"
            "              [--connect-window W] [--publish REDIS_URL --channel CH --frames N\n"
            "              [--frame-bytes B] [--rate R]] [--post URL --requests N [--content T]]\n"
            "              [--ask TEXT] [--watch-pid PID[,PID...]] [--raw 1]\n");
}

int main(int argc, char **argv)
{
    st.frame_bytes = 100;
    st.content = "bench";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0) {
            usage();
            return 0;
        }
        if (!v) {
            fprintf(stderr, "%s: missing value\n", a);
            return 2;
        }
        i++;
        if (strcmp(a, "--url") == 0) st.url = v;
        else if (strcmp(a, "--connections") == 0) st.connections = atoi(v);
        else if (strcmp(a, "--duration") == 0) st.duration = atof(v);
        else if (strcmp(a, "--expect-frames") == 0) st.expect_frames = atol(v);
        else if (strcmp(a, "--expect-done") == 0) st.expect_done = atol(v);
        else if (strcmp(a, "--hold") == 0) st.hold = atof(v);
        else if (strcmp(a, "--sources") == 0) st.sources = atoi(v);
        else if (strcmp(a, "--connect-window") == 0) st.window = atoi(v);
        else if (strcmp(a, "--publish") == 0) st.publish_url = v;
        else if (strcmp(a, "--channel") == 0) st.channel = v;
        else if (strcmp(a, "--frames") == 0) st.pub_frames = atol(v);
        else if (strcmp(a, "--frame-bytes") == 0) st.frame_bytes = atol(v);
        else if (strcmp(a, "--rate") == 0) st.rate = atof(v);
        else if (strcmp(a, "--post") == 0) st.post_url = v;
        else if (strcmp(a, "--requests") == 0) st.requests = atol(v);
        else if (strcmp(a, "--content") == 0) st.content = v;
        else if (strcmp(a, "--ask") == 0) st.ask = v;
        else if (strcmp(a, "--raw") == 0) st.raw = atoi(v);
        else if (strcmp(a, "--watch-pid") == 0)
            for (const char *p = v; *p && st.nwatch < 8; p += strcspn(p, ","), p += *p == ',')
                st.watch_pid[st.nwatch++] = atoi(p);
        else {
            fprintf(stderr, "unknown option %s\n", a);
            usage();
            return 2;
        }
    }
    if (!st.url || st.connections < 1 || st.window < 1 || (st.publish_url && !st.channel) ||
        (st.raw && st.ask)) {
        usage();
        return 2;
    }
    if (st.sources < 1)
        st.sources = 1;
    if (st.sources > 254)
        st.sources = 254;
    for (int k = 0; k < st.sources; k++)
        snprintf(st.ifaces[k], sizeof(st.ifaces[k]), "127.0.0.%d", k + 1);

    /* as many descriptors as we are allowed */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    if ((rlim_t)st.connections + 32 > rl.rlim_cur)
        fprintf(stderr, "# warning: %d connections but only %llu descriptors\n", st.connections,
                (unsigned long long)rl.rlim_cur);

    char urlbuf[512];
    const char *proto, *address, *path;
    int port;
    snprintf(urlbuf, sizeof(urlbuf), "%s", st.url);
    if (lws_parse_uri(urlbuf, &proto, &address, &port, &path)) {
        fprintf(stderr, "bad url %s\n", st.url);
        return 2;
    }
    if (st.raw && strcmp(proto, "ws") != 0) {
        fprintf(stderr, "--raw speaks plain ws://, not %s://\n", proto);
        return 2;
    }
    char fullpath[512];
    snprintf(fullpath, sizeof(fullpath), "/%s", path);

    lws_set_log_level(LLL_ERR, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.timeout_secs = 30;
    st.ctx = lws_create_context(&info);
    if (!st.ctx)
        return 2;
    st.ci.context = st.ctx;
    st.ci.address = address;
    st.ci.port = port;
    st.ci.path = fullpath;
    st.ci.host = address;
    st.ci.origin = address;
    st.ci.local_protocol_name = "wsload";
    if (st.raw && raw_prepare(address, port, fullpath) != 0)
        return 2;

    sem_init(&st.go, 0, 0);
    sem_init(&st.req_done, 0, 0);
    pthread_t thr;
    int have_thread = 0;
    if (st.publish_url) {
        have_thread = pthread_create(&thr, NULL, publisher, NULL) == 0;
    } else if (st.post_url) {
        size_t n = (size_t)(st.requests > 0 ? st.requests : 1);
        st.e2e = calloc(n, sizeof(*st.e2e));
        st.http = calloc(n, sizeof(*st.http));
        st.publ = calloc(n, sizeof(*st.publ));
        if (!st.e2e || !st.http || !st.publ)
            return 2;
        have_thread = pthread_create(&thr, NULL, poster, NULL) == 0;
    }
    if ((st.publish_url || st.post_url) && !have_thread) {
        fprintf(stderr, "cannot start a thread\n");
        return 2;
    }

    st.t_start = mono_us();
    if (st.raw) {
        raw_run();
    } else {
        lws_sul_schedule(st.ctx, 0, &tick_sul, on_tick, TICK_US);
        open_more();
        while (!st.finished) {
            if (lws_service(st.ctx, 0) < 0)
                break;
            open_more();
            check_stop();
        }
    }
    long long t_end = mono_us();
    atomic_store(&st.stop, 1);
    double cpu_s = self_cpu_s();
    double win_s = st.win_t0 ? (double)(t_end - st.win_t0) / 1e6 : 0;
    double self_cores = win_s > 0 ? (cpu_s - st.win_self0) / win_s : -1;
    double watch_cores = -1;
    if (st.nwatch && win_s > 0 && st.win_watch0 >= 0) {
        double c = watched_cpu_s();
        if (c >= 0)
            watch_cores = (c - st.win_watch0) / win_s;
    }
    if (have_thread) {
        sem_post(&st.go); /* in case it still waits to start */
        sem_post(&st.req_done);
        pthread_join(thr, NULL);
    }

    /* the delivery window: from the first publish (or first frame) to the last frame */
    long long w0 = st.publish_url && st.pub_start ? st.pub_start : st.first_rx;
    double window = st.last_rx > w0 ? (double)(st.last_rx - w0) / 1e6 : 0;
    printf("{\"url\":\"%s\",\"connections\":%d,\"sources\":%d,\"established\":%d,\"failed\":%d,"
           "\"closed_early\":%d,\"connect_s\":%.3f,\"elapsed_s\":%.3f,\"cpu_s\":%.2f,\"frames\":%lld,\"text\":%lld,"
           "\"done\":%lld,\"satisfied\":%d,\"window_s\":%.3f,\"frames_per_s\":%.0f,"
           "\"lat_samples\":%llu,\"lat_p50_us\":%lld,\"lat_p99_us\":%lld,\"lat_max_us\":%lld",
           st.url, st.connections, st.sources, st.established, st.failed, st.closed,
           st.t_connected ? (double)(st.t_connected - st.t_start) / 1e6 : -1,
           (double)(t_end - st.t_start) / 1e6, cpu_s, st.frames, st.text, st.done, st.satisfied, window,
           window > 0 ? (double)st.frames / window : 0, (unsigned long long)st.lat.n,
           hist_pct(&st.lat, 50), hist_pct(&st.lat, 99), st.lat.n ? st.lat.max : -1);
    if (st.ask)
        printf(",\"asked\":%lld,\"disorder\":%lld", st.asked, st.disorder);
    if (st.publish_url)
        printf(",\"published\":%lld,\"publish_s\":%.3f,\"pub_receivers\":%lld,\"frame_bytes\":%lld,"
               "\"pub_error\":\"%s\"",
               st.published, st.pub_end > st.pub_start ? (double)(st.pub_end - st.pub_start) / 1e6 : 0,
               st.pub_receivers, st.published ? st.pub_bytes / st.published : 0, st.pub_error);
    if (st.post_url) {
        printf(",\"requests\":%ld,\"post_ok\":%ld,\"post_failed\":%ld,\"post_timeouts\":%ld,"
               "\"e2e_samples\":%ld",
               st.requests, st.post_ok, st.post_failed, st.post_timeouts, st.e2e_n);
        print_pcts("e2e", st.e2e, st.e2e_n);
        print_pcts("http", st.http, st.http_n);
        print_pcts("publish", st.publ, st.e2e_n);
        printf(",\"post_error\":\"%s\"", st.post_error);
    }
    printf(",\"win_s\":%.3f,\"self_cores\":%.2f", win_s, self_cores);
    if (st.nwatch)
        printf(",\"watch_pids\":%d,\"watch_cores\":%.2f", st.nwatch, watch_cores);
    printf("}\n");
    fflush(stdout);
    if (st.raw)
        raw_cleanup();
    lws_context_destroy(st.ctx);
    free(st.e2e);
    free(st.http);
    free(st.publ);
    return 0;
}
