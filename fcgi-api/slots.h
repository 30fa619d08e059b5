/* slots.h -- the FastCGI connections one fcgi-api process holds.
 *
 * A slot is a connection and its request. A web server that asks to keep
 * the connection (FCGI_KEEP_CONN: nginx's fastcgi_keep_conn, Apache's
 * enablereuse) sends its next request on it: the connection stays open
 * after its request and waits, with the listening socket, in one epoll set,
 * so a process serves every connection it holds, whichever speaks next.
 * Otherwise each connection ends with its request (lighttpd). While all
 * slots are held (SLOTS_MAX, fewer when RLIMIT_NOFILE is low) the process
 * takes no new connection (the other processes on the socket do). */
#ifndef AIMSG_SLOTS_H
#define AIMSG_SLOTS_H

#include <fcgiapp.h>
#include <stddef.h>

#include "request.h"

#define SLOTS_MAX 1024
#define SLOTS_SPARE_FDS 64  /* descriptors left for the rest when RLIMIT_NOFILE is low */

struct slot {
    FCGX_Request fcgi;
    struct request req;
    int watched;            /* its connection is in the epoll set */
};

struct slots {
    struct slot *all;       /* max of them */
    int max, ninit;         /* SLOTS_MAX, or fewer under a low RLIMIT_NOFILE */
    int *free;              /* indexes of the slots without a connection */
    int nfree;
    int listen_fd;
    int listening;          /* listen_fd is in the epoll set */
    int ep;
};

/* listen_fd must not block. -1 with err on failure. */
int slots_init(struct slots *s, int listen_fd, char *err, size_t errlen);
/* Closes every connection held. */
void slots_free(struct slots *s);

/* Waits up to timeout_ms, then reads the head of up to max requests, from
 * new connections and from kept ones (request_init done on each). Returns
 * how many are in ready, -1 on an error of epoll (errno). */
int slots_wait(struct slots *s, struct slot **ready, int max, int timeout_ms);

/* After request_finish: a connection the web server keeps waits for its
 * next request; a closed one frees its slot. */
void slots_release(struct slots *s, struct slot *slot);

#endif
