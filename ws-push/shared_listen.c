/* shared_listen.c -- several ws-push processes on one port (ws_processes > 1).
 *
 * One ws-push runs on one thread; to use more cores, several processes
 * share ws_port with SO_REUSEPORT and the kernel spreads new connections
 * over them. Each is an instance of its own (presence, reply channels), as
 * on separate machines. libwebsockets 4.1 sets SO_REUSEPORT only for a
 * context of several service threads, which Debian's build (LWS_MAX_SMP 1)
 * cannot have; so here the listening socket is ours, watched by the lws
 * loop, and every connection accepted on it is handed to lws as if lws had
 * accepted it: the same check as its FILTER_NETWORK_CONNECTION (mask_guard),
 * Nagle off as lws sets it, then lws_adopt_socket_vhost (HTTP, upgraded to
 * WebSocket by the usual path). */
#define _GNU_SOURCE /* accept4, SO_REUSEPORT */
#include "wspush.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

#define ACCEPTS_PER_WAKE 64     /* then the other sockets get their turn */
#define FULL_PAUSE_US (100 * LWS_US_PER_MS)

static struct lws *listener;
static lws_sorted_usec_list_t resume_sul;

/* Out of descriptors (or lws out of room): the connections wait in the
 * backlog rather than being accepted and closed, and the loop does not
 * spin on a socket that stays readable. */
static void resume_accepting(lws_sorted_usec_list_t *sul)
{
    (void)sul;
    if (listener)
        lws_rx_flow_control(listener, 1);
}

static void pause_accepting(struct wspush *wp)
{
    lws_rx_flow_control(listener, 0);
    lws_sul_schedule(wp->ctx, 0, &resume_sul, resume_accepting, FULL_PAUSE_US);
}

/* 0, or -1 when lws could not take it (it closed fd) */
static int hand_to_lws(struct wspush *wp, int fd)
{
    int one = 1;
    if (mask_guard_accepted(fd) != 0) {
        close(fd);
        return -1;
    }
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
        log_warn("TCP_NODELAY: %s", strerror(errno));
    if (!lws_adopt_socket_vhost(wp->vhost, fd)) {
        mask_guard_unbind(fd);
        return -1;
    }
    return 0;
}

static int listen_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                           void *in, size_t len)
{
    (void)user;
    (void)in;
    (void)len;
    struct wspush *wp = lws_context_user(lws_get_context(wsi));
    static struct log_limit lim = LOG_LIMIT_INIT(10000);
    if (reason == LWS_CALLBACK_RAW_CLOSE_FILE && wsi == listener) {
        listener = NULL;
        lws_sul_cancel(&resume_sul);
    }
    if (reason != LWS_CALLBACK_RAW_RX_FILE)
        return 0;
    if (wp->stopping)
        return -1; /* (shared_listen_stop closes it first) */
    int lfd = lws_get_socket_fd(wsi);
    for (int i = 0; i < ACCEPTS_PER_WAKE; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
                       errno == ECONNABORTED))
            break;
        if (fd < 0 || hand_to_lws(wp, fd) != 0) {
            log_limited(&lim, LOG_WARN, "cannot take a connection%s%s; pausing accepts",
                        fd < 0 ? ": " : " (libwebsockets refused it)",
                        fd < 0 ? strerror(errno) : "");
            pause_accepting(wp);
            break;
        }
    }
    return 0;
}

const struct lws_protocols shared_listen_protocol = {"aimsg-listen", listen_callback, 0, 0, 0,
                                                     NULL, 0};

/* la's address (every interface when none) on port, in *ss. */
static socklen_t address_of(const struct listen_addr *la, int port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (la->iface[0] && inet_pton(AF_INET, la->iface, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        return sizeof(*a4);
    }
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)port);
    if (la->iface[0] && inet_pton(AF_INET6, la->iface, &a6->sin6_addr) != 1)
        return 0;
    if (!la->iface[0])
        a6->sin6_addr = in6addr_any;
    return sizeof(*a6);
}

/* Every interface on a host without IPv6: 0.0.0.0, as bind.c tried it. */
static socklen_t ipv4_any(int port, struct sockaddr_storage *ss)
{
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    memset(ss, 0, sizeof(*ss));
    a4->sin_family = AF_INET;
    a4->sin_addr.s_addr = htonl(INADDR_ANY);
    a4->sin_port = htons((uint16_t)port);
    return sizeof(*a4);
}

int shared_listen_start(struct wspush *wp, const struct listen_addr *la, int port)
{
    struct sockaddr_storage ss;
    socklen_t len = address_of(la, port, &ss);
    if (!len) {
        log_error("cannot listen on %s:%d: not an address", la->shown, port);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 && errno == EAFNOSUPPORT && !la->iface[0]) {
        len = ipv4_any(port, &ss);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    }
    int one = 1, zero = 0;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        (ss.ss_family == AF_INET6 && !la->iface[0] &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) != 0) ||
        bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, SOMAXCONN) != 0) {
        log_error("cannot listen on %s:%d (shared by %ld processes): %s", la->shown, port,
                  wp->cfg->ws_processes, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    lws_sock_file_fd_type u;
    u.filefd = fd;
    listener = lws_adopt_descriptor_vhost(wp->vhost, LWS_ADOPT_RAW_FILE_DESC, u,
                                          shared_listen_protocol.name, NULL);
    if (!listener) {
        log_error("cannot watch the listening socket");
        close(fd);
        return -1;
    }
    return 0;
}

void shared_listen_stop(void)
{
    if (listener)
        lws_set_timeout(listener, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
    listener = NULL;
}
