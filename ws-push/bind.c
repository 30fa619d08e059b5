/* bind.c -- listen on exactly the address configured in `bind`.
 *
 * libwebsockets 4.1 takes info.iface as an interface name or a numeric
 * address. Built with IPv6 (as Debian's is) it opens an IPv6 socket and
 * parses an IPv4 address into the wrong part of it, so "127.0.0.1" is bound
 * as "::", every interface. So an IPv4 address gets an IPv4-only vhost, an
 * IPv6 address the IPv6 socket, and a host name is resolved to its first
 * address beforehand: lws is only ever given a numeric address it parses
 * right. lws is also told to fail rather than wait for an address that is
 * not there yet, and the address is tried first with a socket of our own:
 * the reason it cannot be bound (in use, not on this host) is then logged
 * plainly, and lws 4.1 never takes its failure path (which leaks).
 * When several ws-push share the port (shared_listen.c) the trial socket
 * has SO_REUSEPORT too, as theirs have. */
#define _DEFAULT_SOURCE /* SO_REUSEPORT */
#define _POSIX_C_SOURCE 200809L
#include "wspush.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

static int share_port;

/* Binds and closes a socket on addr:port; returns 0 or an errno. */
static int try_bind(int family, const struct sockaddr *addr, socklen_t len)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno;
    int one = 1, rc = 0;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        (share_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) ||
        bind(fd, addr, len) != 0)
        rc = errno;
    close(fd);
    return rc;
}

/* "" binds lws' dual-stack socket on :: (or 0.0.0.0 without IPv6) */
static int try_bind_any(int port)
{
    struct sockaddr_in6 a6;
    memset(&a6, 0, sizeof(a6));
    a6.sin6_family = AF_INET6;
    a6.sin6_addr = in6addr_any;
    a6.sin6_port = htons((uint16_t)port);
    int rc = try_bind(AF_INET6, (struct sockaddr *)&a6, sizeof(a6));
    if (rc != EAFNOSUPPORT)
        return rc;
    struct sockaddr_in a4;
    memset(&a4, 0, sizeof(a4));
    a4.sin_family = AF_INET;
    a4.sin_addr.s_addr = htonl(INADDR_ANY);
    a4.sin_port = htons((uint16_t)port);
    return try_bind(AF_INET, (struct sockaddr *)&a4, sizeof(a4));
}

int listen_addr_resolve(struct listen_addr *la, const char *bind, int port, int share,
                        char *err, size_t errlen)
{
    memset(la, 0, sizeof(*la));
    share_port = share;
    la->options = LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND;
    if (!bind[0]) {
        snprintf(la->shown, sizeof(la->shown), "*");
        int e = try_bind_any(port);
        if (e)
            snprintf(err, errlen, "cannot listen on *:%d: %s", port, strerror(e));
        return e ? -1 : 0; /* every interface */
    }
    struct addrinfo hints, *res;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(bind, NULL, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "bind '%s': not an address of this host: %s", bind,
                 gai_strerror(rc));
        return -1;
    }
    const void *addr = res->ai_family == AF_INET
                           ? (const void *)&((struct sockaddr_in *)res->ai_addr)->sin_addr
                           : (const void *)&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr;
    if ((res->ai_family != AF_INET && res->ai_family != AF_INET6) ||
        !inet_ntop(res->ai_family, addr, la->iface, sizeof(la->iface))) {
        snprintf(err, errlen, "bind '%s': not an IPv4 or IPv6 address", bind);
        freeaddrinfo(res);
        return -1;
    }
    if (res->ai_family == AF_INET) {
        la->options |= LWS_SERVER_OPTION_DISABLE_IPV6;
        snprintf(la->shown, sizeof(la->shown), "%s", la->iface);
    } else {
        snprintf(la->shown, sizeof(la->shown), "[%s]", la->iface);
    }
    if (res->ai_family == AF_INET)
        ((struct sockaddr_in *)res->ai_addr)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)res->ai_addr)->sin6_port = htons((uint16_t)port);
    int e = try_bind(res->ai_family, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    if (e) {
        snprintf(err, errlen, "cannot listen on %s:%d (bind '%s'): %s", la->shown, port, bind,
                 strerror(e));
        return -1;
    }
    return 0;
}
