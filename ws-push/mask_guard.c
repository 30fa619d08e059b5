/* mask_guard.c -- a client frame that is not masked closes its connection
 * with 1002 (RFC 6455 §5.1).
 *
 * libwebsockets 4.1 accepts unmasked client frames as if they were masked
 * and tells its callbacks nothing about masking, so the check is made on
 * the bytes it reads: ws-push defines recv(), which lws (and hiredis) call
 * instead of libc's; for the sockets of accepted clients it follows the
 * frame headers in what was read (payloads are skipped, not looked at). A
 * frame header without the mask bit marks the connection to be closed: lws
 * gets the bytes before that frame and none after (so it does not answer an
 * unmasked ping either), and the close frame goes out when the socket is
 * writable (conn.c).
 *
 * A socket is followed from accept: first the HTTP request, whose end
 * ("\r\n\r\n") starts the frames if the request named "websocket"; a plain
 * request (404) lets the next one be looked at the same way. */
#define _GNU_SOURCE
#include "wspush.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "log.h"

enum phase { OFF, REQUEST, FRAME_HEAD, FRAME_LEN, FRAME_MASK, FRAME_PAYLOAD, UNMASKED };

struct guard {
    enum phase phase;
    unsigned char crlf, websocket; /* matched so far of "\r\n\r\n" and of "websocket" */
    unsigned char upgrade;         /* this request named websocket */
    unsigned char need;            /* bytes of length or key still to come */
    unsigned long long payload;    /* payload bytes still to skip */
    struct conn *conn;             /* once established */
};

static struct guard *guards;
static size_t nguards;

static struct guard *guard_of(int fd, int grow)
{
    if (fd < 0)
        return NULL;
    if ((size_t)fd >= nguards) {
        if (!grow)
            return NULL;
        size_t n = nguards ? nguards : 1024;
        while (n <= (size_t)fd)
            n *= 2;
        struct guard *g = realloc(guards, n * sizeof(*g));
        if (!g)
            return NULL;
        memset(g + nguards, 0, (n - nguards) * sizeof(*g));
        guards = g;
        nguards = n;
    }
    return &guards[fd];
}

static void close_unmasked(struct conn *c)
{
    if (c->closing)
        return;
    log_warn("client %llu closed: it sent an unmasked frame", (unsigned long long)c->id);
    conn_close_with(c, CONN_PROTOCOL_ERROR, LWS_CLOSE_STATUS_PROTOCOL_ERR,
                    "protocol error: client frames must be masked");
}

int mask_guard_accepted(int fd)
{
    struct guard *g = guard_of(fd, 1);
    if (!g)
        return -1; /* out of memory: refuse the connection rather than not check it */
    memset(g, 0, sizeof(*g));
    g->phase = REQUEST;
    return 0;
}

void mask_guard_bind(int fd, struct conn *c)
{
    struct guard *g = guard_of(fd, 0);
    if (!g || g->phase == OFF)
        return;
    g->conn = c;
    if (g->phase == UNMASKED)
        close_unmasked(c);
}

void mask_guard_unbind(int fd)
{
    struct guard *g = guard_of(fd, 0);
    if (g)
        memset(g, 0, sizeof(*g));
}

static void request_byte(struct guard *g, unsigned char b)
{
    static const char crlf[] = "\r\n\r\n", ws[] = "websocket";
    unsigned char lower = (unsigned char)(b >= 'A' && b <= 'Z' ? b + 32 : b);
    g->websocket = lower == (unsigned char)ws[g->websocket] ? g->websocket + 1 : lower == 'w';
    if (g->websocket == sizeof(ws) - 1)
        g->upgrade = 1;
    g->crlf = b == (unsigned char)crlf[g->crlf] ? g->crlf + 1 : b == '\r';
    if (g->crlf == sizeof(crlf) - 1) {
        g->crlf = 0;
        if (g->upgrade)
            g->phase = FRAME_HEAD;
        g->upgrade = 0;
    }
}

/* Follows the frame headers in the n bytes read; returns how many of them
 * lws may see: all, or those before the first unmasked frame. */
static size_t follow(struct guard *g, const unsigned char *p, size_t n)
{
    size_t i = 0, head = 0; /* where the frame being looked at starts */
    while (i < n) {
        switch (g->phase) {
        case OFF:
            return n;
        case UNMASKED:
            return 0;
        case REQUEST:
            request_byte(g, p[i]);
            break;
        case FRAME_HEAD:        /* FIN, RSV, opcode: checked by lws */
            head = i;
            g->phase = FRAME_LEN;
            g->need = 0;
            break;
        case FRAME_LEN:
            if (!g->need) {     /* the byte with the mask bit */
                if (!(p[i] & 0x80)) {
                    g->phase = UNMASKED;
                    return head;
                }
                unsigned len7 = p[i] & 0x7f;
                g->payload = len7 < 126 ? len7 : 0;
                g->need = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
                if (!g->need) {
                    g->phase = FRAME_MASK;
                    g->need = 4;
                }
            } else {
                g->payload = g->payload << 8 | p[i];
                if (--g->need == 0) {
                    g->phase = FRAME_MASK;
                    g->need = 4;
                }
            }
            break;
        case FRAME_MASK:
            if (--g->need == 0)
                g->phase = g->payload ? FRAME_PAYLOAD : FRAME_HEAD;
            break;
        case FRAME_PAYLOAD: {
            size_t skip = g->payload < n - i ? (size_t)g->payload : n - i;
            g->payload -= skip;
            if (!g->payload)
                g->phase = FRAME_HEAD;
            i += skip;
            continue;
        }
        }
        i++;
    }
    return n;
}

/* What lws reads of a client that sent an unmasked frame ends before that
 * frame: the rest is read and dropped ("nothing yet" to lws) until the
 * connection is closed. */
ssize_t recv(int fd, void *buf, size_t len, int flags)
{
    static ssize_t (*real_recv)(int, void *, size_t, int);
    if (!real_recv) {
        real_recv = (ssize_t(*)(int, void *, size_t, int))dlsym(RTLD_NEXT, "recv");
        if (!real_recv)
            abort(); /* no libc recv: nothing could work */
    }
    ssize_t n = real_recv(fd, buf, len, flags);
    struct guard *g = guard_of(fd, 0);
    if (n <= 0 || (flags & MSG_PEEK) || !g || g->phase == OFF)
        return n;
    size_t good = follow(g, buf, (size_t)n);
    if (good == (size_t)n)
        return n;
    if (g->conn)
        close_unmasked(g->conn);
    if (good)
        return (ssize_t)good;
    errno = EAGAIN;
    return -1;
}
