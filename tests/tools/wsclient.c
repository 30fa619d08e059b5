/* wsclient -- a small WebSocket client for tests and for people.
 *
 *   wsclient --url ws://127.0.0.1:8081/ws [--send JSON]... [--send-image FILE]
 *            [--question TEXT] [--fragment BYTES] [--wait N] [--timeout SECONDS]
 *            [--no-read] [--binary TEXT] [--clients N] [--unfinished]
 *            [--origin ORIGIN] [--header 'Name: value']... [--start-at UNIXTIME]
 *
 * Prints "# connected" once the upgrade is done, then every frame it
 * receives on its own line. Exits 0 after N answers ended (done, error or
 * cancelled frames carrying an id), 1 on timeout, 2 when the connection could not be
 * made or was closed first ("# closed CODE" is printed). The answer a sent
 * resume frame names has ended only when every seq after its "after" up to
 * its last frame has come: the last frame may come live before the rest.
 *
 * With --clients N it opens N connections: frames are sent on and printed
 * from the first only, "# connected" comes when all are up, and it exits 0
 * when every connection has seen N answers end.
 *
 * With --unfinished the last fragment of the last message is never sent:
 * the server holds the rest as a half-received message ("# unfinished" is
 * printed when everything else was written).
 *
 * --origin sends that Origin header as given ("" sends none; without it:
 * http://<host of the url>). --header adds a handshake header (for
 * X-Forwarded-For and the like). --start-at holds the frames to send back
 * until that time (seconds since the epoch, with a fraction): to send them
 * together with other clients. */
#define _POSIX_C_SOURCE 200809L
#include <libwebsockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include "base64.h"
#include "buf.h"

#define MAX_SENDS 64
#define MAX_HEADERS 8

struct session {
    int index;
    int ended;
    struct buf rx;
};

static struct {
    const char *sends[MAX_SENDS];
    const char *headers[MAX_HEADERS];
    int nheaders;
    int binary[MAX_SENDS];
    int nsends, next_send;
    size_t offset;          /* within the frame being sent in fragments */
    size_t fragment;
    double start_at;
    int wait, no_read, unfinished;
    int clients, connected, satisfied, next_index;
    int exit_code, finished;
    volatile sig_atomic_t timed_out;
} st = {.exit_code = 1, .clients = 1};

static int ends_answer(const char *frame)
{
    return (strstr(frame, "\"type\":\"done\"") || strstr(frame, "\"type\":\"error\"") ||
            strstr(frame, "\"type\":\"cancelled\"")) &&
           strstr(frame, "\"id\":");
}

/* The answer the first resume frame among --send names, and which of its seqs came. */
static struct {
    char id[64];            /* "" when no resume was sent */
    long after, last;       /* last: the final frame's seq, -1 until it came */
    int counted;            /* its end was counted */
    unsigned char *seen;    /* seen[seq - after - 1] */
    size_t nseen;
} resumed = {.last = -1};

static void note_resume(const char *frame)
{
    const char *id = strstr(frame, "\"id\":\""), *after = strstr(frame, "\"after\":");
    if (resumed.id[0] || !strstr(frame, "\"type\":\"resume\"") || !id || !after)
        return;
    sscanf(id + 6, "%63[^\"]", resumed.id);
    resumed.after = strtol(after + 8, NULL, 10);
}

/* 1: the frame is of the resumed answer (and then *ended says whether with
 * it all of the answer has come), 0: of another. */
static int resumed_frame(const char *frame, int *ended)
{
    char key[80];
    const char *seq = strstr(frame, "\"seq\":");
    snprintf(key, sizeof(key), "\"id\":\"%s\"", resumed.id);
    if (!resumed.id[0] || !strstr(frame, key) || !seq)
        return 0;
    long n = strtol(seq + 6, NULL, 10) - resumed.after - 1;
    if (n >= 0) {
        if ((size_t)n >= resumed.nseen) {
            size_t size = (size_t)n * 2 + 64;
            unsigned char *p = realloc(resumed.seen, size);
            if (!p)
                return 0;
            memset(p + resumed.nseen, 0, size - resumed.nseen);
            resumed.seen = p;
            resumed.nseen = size;
        }
        resumed.seen[n] = 1;
    }
    if (ends_answer(frame))
        resumed.last = n + resumed.after + 1;
    *ended = resumed.last >= 0 && !resumed.counted;
    for (long i = 0; *ended && i < resumed.last - resumed.after; i++)
        *ended = resumed.seen[i];
    if (*ended)
        resumed.counted = 1;
    return 1;
}

/* Whether the frame ends an answer for --wait. */
static int counts_as_end(const char *frame)
{
    int ended;
    if (resumed_frame(frame, &ended))
        return ended;
    return ends_answer(frame);
}

static int send_next(struct lws *wsi)
{
    if (st.next_send >= st.nsends)
        return 0;
    const char *msg = st.sends[st.next_send];
    size_t len = strlen(msg), chunk = len - st.offset;
    if (st.fragment && chunk > st.fragment)
        chunk = st.fragment;
    int first = st.offset == 0, last = st.offset + chunk == len;
    if (last && st.unfinished && st.next_send == st.nsends - 1) {
        st.next_send = st.nsends; /* hold the final fragment back */
        printf("# unfinished\n");
        fflush(stdout);
        return 0;
    }
    unsigned char *b = malloc(LWS_PRE + chunk);
    if (!b)
        return -1;
    memcpy(b + LWS_PRE, msg + st.offset, chunk);
    enum lws_write_protocol proto = st.binary[st.next_send] ? LWS_WRITE_BINARY : LWS_WRITE_TEXT;
    int flags = (int)lws_write_ws_flags((int)proto, first, last);
    int n = lws_write(wsi, b + LWS_PRE, chunk, (enum lws_write_protocol)flags);
    free(b);
    if (n < (int)chunk)
        return -1;
    st.offset += chunk;
    if (last) {
        st.offset = 0;
        st.next_send++;
    }
    if (st.next_send < st.nsends)
        lws_callback_on_writable(wsi);
    return 0;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* --header lines at *p, within len bytes */
static int append_headers(void *in, size_t len)
{
    char **p = in;
    for (int i = 0; i < st.nheaders; i++) {
        size_t n = strlen(st.headers[i]);
        if (n + 2 >= len)
            return -1;
        memcpy(*p, st.headers[i], n);
        memcpy(*p + n, "\r\n", 2);
        *p += n + 2;
        len -= n + 2;
    }
    return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct session *ss = user;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        fprintf(stderr, "# connection failed: %s\n", in ? (const char *)in : "?");
        st.exit_code = 2;
        st.finished = 1;
        break;
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
        if (append_headers(in, len) != 0)
            return -1;
        if (st.no_read) {
            /* a small, fixed receive buffer: the kernel must not swallow
             * megabytes on behalf of a client that does not read */
            int size = 4096;
            setsockopt(lws_get_socket_fd(wsi), SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
        }
        break;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        ss->index = st.next_index++;
        if (++st.connected == st.clients) {
            printf("# connected\n");
            fflush(stdout);
        }
        if (st.no_read)
            lws_rx_flow_control(wsi, 0);
        if (st.nsends && ss->index == 0) {
            double wait = st.start_at - now();
            if (wait > 0)
                lws_set_timer_usecs(wsi, (lws_usec_t)(wait * 1e6));
            else
                lws_callback_on_writable(wsi);
        }
        break;
    case LWS_CALLBACK_TIMER:
        lws_callback_on_writable(wsi);
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        return send_next(wsi);
    case LWS_CALLBACK_CLIENT_RECEIVE:
        buf_append(&ss->rx, in, len);
        if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi))
            break;
        if (ss->index == 0) {
            printf("%s\n", ss->rx.data ? ss->rx.data : "");
            fflush(stdout);
        }
        if (ss->rx.data && (ss->index == 0 ? counts_as_end(ss->rx.data) : ends_answer(ss->rx.data)) &&
            ++ss->ended == st.wait &&
            ++st.satisfied == st.clients) {
            st.exit_code = 0;
            st.finished = 1;
        }
        buf_reset(&ss->rx);
        break;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (len >= 2) {
            const unsigned char *p = in;
            printf("# closed %d %.*s\n", p[0] << 8 | p[1], (int)len - 2, (const char *)in + 2);
            fflush(stdout);
        }
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        buf_free(&ss->rx);
        printf("# disconnected\n");
        fflush(stdout);
        if (!st.finished && st.clients == 1) {
            st.exit_code = 2;
            st.finished = 1;
        }
        break;
    default:
        break;
    }
    return 0;
}

static struct lws_context *context;

static void on_alarm(int sig)
{
    (void)sig;
    st.timed_out = 1;
    lws_cancel_service(context); /* wakes its poll */
}

static const char *image_frame(const char *path, const char *question)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(2);
    }
    struct buf raw = BUF_INIT, out = BUF_INIT;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_append(&raw, chunk, n);
    fclose(f);
    buf_puts(&out, "{\"type\":\"image\",\"content\":\"");
    base64_encode(&out, (const unsigned char *)raw.data, raw.len);
    buf_puts(&out, "\"");
    if (question) {
        buf_puts(&out, ",\"question\":");
        buf_json_string(&out, question, strlen(question));
    }
    buf_puts(&out, "}");
    buf_free(&raw);
    return out.data; /* lives until exit */
}

int main(int argc, char **argv)
{
    const char *url = "ws://127.0.0.1:8081/ws", *image = NULL, *question = NULL, *origin = NULL;
    double timeout = 10;
    int image_slot = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--no-read") == 0) {
            st.no_read = 1;
            continue;
        }
        if (strcmp(a, "--unfinished") == 0) {
            st.unfinished = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "%s: missing value\n", a);
            return 2;
        }
        i++;
        if (strcmp(a, "--url") == 0) url = v;
        else if (strcmp(a, "--send") == 0 && st.nsends < MAX_SENDS) st.sends[st.nsends++] = v;
        else if (strcmp(a, "--binary") == 0 && st.nsends < MAX_SENDS) {
            st.binary[st.nsends] = 1;
            st.sends[st.nsends++] = v;
        }
        else if (strcmp(a, "--send-image") == 0 && st.nsends < MAX_SENDS) {
            image = v; /* encoded below, once --question is known; keeps its place */
            image_slot = st.nsends++;
        }
        else if (strcmp(a, "--question") == 0) question = v;
        else if (strcmp(a, "--origin") == 0) origin = v;
        else if (strcmp(a, "--header") == 0 && st.nheaders < MAX_HEADERS) st.headers[st.nheaders++] = v;
        else if (strcmp(a, "--fragment") == 0) st.fragment = strtoul(v, NULL, 10);
        else if (strcmp(a, "--wait") == 0) st.wait = atoi(v);
        else if (strcmp(a, "--timeout") == 0) timeout = atof(v);
        else if (strcmp(a, "--start-at") == 0) st.start_at = atof(v);
        else if (strcmp(a, "--clients") == 0) st.clients = atoi(v) > 0 ? atoi(v) : 1;
        else {
            fprintf(stderr, "unknown option %s\n", a);
            return 2;
        }
    }
    if (image)
        st.sends[image_slot] = image_frame(image, question);
    /* known before it is sent: frames of that answer may come first, with
     * the handshake's reply, its last one too */
    for (int i = 0; i < st.nsends; i++)
        if (!st.binary[i] && st.sends[i])
            note_resume(st.sends[i]);

    char urlbuf[512];
    const char *proto, *address, *path;
    int port;
    snprintf(urlbuf, sizeof(urlbuf), "%s", url);
    if (lws_parse_uri(urlbuf, &proto, &address, &port, &path)) {
        fprintf(stderr, "bad url %s\n", url);
        return 2;
    }
    char fullpath[512];
    snprintf(fullpath, sizeof(fullpath), "/%s", path);

    lws_set_log_level(LLL_ERR, NULL);
    signal(SIGPIPE, SIG_IGN);
    static const struct lws_protocols protocols[] = {{"wsclient", callback, sizeof(struct session), 65536, 0, NULL, 0},
                                                     {NULL, NULL, 0, 0, 0, NULL, 0}};
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    if (origin)
        info.options |= LWS_SERVER_OPTION_JUST_USE_RAW_ORIGIN;
    struct lws_context *ctx = lws_create_context(&info);
    if (!ctx)
        return 2;
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof(ci));
    ci.context = ctx;
    ci.address = address;
    ci.port = port;
    ci.path = fullpath;
    ci.host = address;
    ci.origin = !origin ? address : origin[0] ? origin : NULL; /* lws: http:// + address */
    ci.protocol = NULL;
    ci.local_protocol_name = "wsclient";
    for (int i = 0; i < st.clients; i++) {
        if (!lws_client_connect_via_info(&ci)) {
            fprintf(stderr, "# connect failed\n");
            lws_context_destroy(ctx);
            return 2;
        }
    }
    /* lws 4.1 may sleep in poll() far longer than lws_service is told: the
     * deadline wakes it */
    context = ctx;
    struct itimerval deadline = {.it_value = {.tv_sec = (time_t)timeout,
                                              .tv_usec = (suseconds_t)((timeout - (double)(time_t)timeout) * 1e6) + 1}};
    signal(SIGALRM, on_alarm);
    setitimer(ITIMER_REAL, &deadline, NULL);
    while (!st.finished && !st.timed_out)
        lws_service(ctx, 1000);
    if (st.timed_out && !st.finished) {
        if (st.wait)
            fprintf(stderr, "# timeout after %.1f s (%d of %d clients saw %d answers end)\n", timeout,
                    st.satisfied, st.clients, st.wait);
        else
            st.exit_code = 0; /* nothing to wait for: a timed listen */
    }
    lws_context_destroy(ctx);
    free(resumed.seen);
    return st.exit_code;
}
