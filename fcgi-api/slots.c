/* slots.c -- see slots.h. */
#define _POSIX_C_SOURCE 200809L
#include "slots.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* EPOLLEXCLUSIVE: a connection wakes one of the processes waiting on the
 * socket, not all of them. The listening socket's data.ptr is NULL. */
static int listen_on(struct slots *s, int on)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE};
    if (on == s->listening)
        return 0;
    if (epoll_ctl(s->ep, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, s->listen_fd, &ev) != 0)
        return -1;
    s->listening = on;
    return 0;
}

/* SLOTS_MAX, or fewer when the descriptors allowed would not hold them
 * with the few the process needs besides (Redis, the log, epoll) */
static int slots_allowed(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
        rl.rlim_cur >= SLOTS_MAX + SLOTS_SPARE_FDS)
        return SLOTS_MAX;
    return rl.rlim_cur > 2 * SLOTS_SPARE_FDS ? (int)rl.rlim_cur - SLOTS_SPARE_FDS
                                             : SLOTS_SPARE_FDS;
}

int slots_init(struct slots *s, int listen_fd, char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    s->listen_fd = listen_fd;
    s->max = slots_allowed();
    s->ep = epoll_create1(EPOLL_CLOEXEC);
    s->all = calloc((size_t)s->max, sizeof(*s->all));
    s->free = calloc((size_t)s->max, sizeof(*s->free));
    if (s->ep < 0 || !s->all || !s->free || listen_on(s, 1) != 0) {
        snprintf(err, errlen, "cannot wait for connections: %s", strerror(errno ? errno : ENOMEM));
        slots_free(s);
        return -1;
    }
    for (; s->ninit < s->max; s->ninit++) {
        if (FCGX_InitRequest(&s->all[s->ninit].fcgi, listen_fd, 0) != 0) {
            snprintf(err, errlen, "FCGX_InitRequest failed");
            slots_free(s);
            return -1;
        }
        s->free[s->nfree++] = s->max - 1 - s->ninit;
    }
    return 0;
}

void slots_free(struct slots *s)
{
    if (s->ep >= 0)
        close(s->ep);
    for (int i = 0; s->all && i < s->ninit; i++)
        if (s->all[i].fcgi.ipcFd >= 0)
            FCGX_Free(&s->all[i].fcgi, 1);
    free(s->all);
    free(s->free);
    memset(s, 0, sizeof(*s));
    s->ep = -1;
}

static void give_back(struct slots *s, struct slot *slot)
{
    slot->watched = 0;
    s->free[s->nfree++] = (int)(slot - s->all);
}

/* Reads the next request on slot: a new connection's (the slot has none:
 * libfcgi accepts), or its kept connection's (libfcgi may find it closed:
 * see next_on_kept). 0 when there is none: the listening socket does not
 * block. */
static int next_request(struct slot *slot, int first)
{
    errno = 0; /* (libfcgi returns -errno, and -9999 when errno is 0) */
    int rc = FCGX_Accept_r(&slot->fcgi);
    if (rc < 0) {
        int err = rc > -4096 ? -rc : 0; /* -errno, or libfcgi's -9999: "no errno" */
        int kept_closed = err == EBADF && slot->fcgi.listen_sock < 0; /* next_on_kept */
        if (err && err != EAGAIN && err != EWOULDBLOCK && err != EINTR && !kept_closed) {
            log_warn("accept: %s", strerror(err));
            if (first) /* e.g. out of descriptors: do not spin on it */
                nanosleep(&(struct timespec){.tv_nsec = 100 * 1000 * 1000}, NULL);
        }
        return 0;
    }
    request_init(&slot->req, &slot->fcgi);
    return 1;
}

/* A kept connection that turns out closed is closed by libfcgi, which then
 * accepts a new one in the slot, maybe under the same descriptor number:
 * one the epoll set no longer holds although the slot says "watched". With
 * no listening socket to accept on (the accept fails: EBADF) the slot is
 * freed instead, so a slot's descriptor changes only while it is free. */
static int next_on_kept(struct slot *slot, int first)
{
    int listen_fd = slot->fcgi.listen_sock;
    slot->fcgi.listen_sock = -1;
    int got = next_request(slot, first);
    slot->fcgi.listen_sock = listen_fd;
    return got;
}

int slots_wait(struct slots *s, struct slot **ready, int max, int timeout_ms)
{
    struct epoll_event evs[64];
    if (!s->listening && s->nfree > 0 && listen_on(s, 1) != 0)
        log_error("epoll: %s", strerror(errno)); /* tried again next time */
    int n = epoll_wait(s->ep, evs, max < 64 ? max : 64, timeout_ms), got = 0;
    for (int i = 0; i < n && got < max; i++) {
        struct slot *slot = evs[i].data.ptr;
        if (slot) { /* a kept connection speaks: its next request, or its end */
            if (next_on_kept(slot, got == 0))
                ready[got++] = slot;
            else if (slot->fcgi.ipcFd < 0)
                give_back(s, slot);
            continue;
        }
        while (got < max && s->nfree > 0) {
            slot = &s->all[s->free[s->nfree - 1]];
            if (!next_request(slot, got == 0))
                break;
            s->nfree--;
            ready[got++] = slot;
        }
        if (s->nfree == 0 && listen_on(s, 0) != 0)
            log_error("epoll: %s", strerror(errno));
    }
    return n < 0 ? -1 : got;
}

void slots_release(struct slots *s, struct slot *slot)
{
    if (slot->fcgi.ipcFd < 0) {
        give_back(s, slot);
        return;
    }
    if (slot->watched)
        return; /* the same connection as for its last request */
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = slot};
    if (epoll_ctl(s->ep, EPOLL_CTL_ADD, slot->fcgi.ipcFd, &ev) != 0) {
        log_warn("a kept connection cannot be waited for (%s): closed", strerror(errno));
        FCGX_Free(&slot->fcgi, 1);
        give_back(s, slot);
        return;
    }
    slot->watched = 1;
}
