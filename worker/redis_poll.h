/* redis_poll.h -- drives a hiredis async connection from a poll()-style loop.
 *
 * hiredis tells the adapter which events it wants; the loop turns that into
 * poll flags (the worker passes them to curl_multi_poll as extra fds) and
 * calls redis_poll_handle() with what poll reported. */
#ifndef AIMSG_REDIS_POLL_H
#define AIMSG_REDIS_POLL_H

#include <hiredis/async.h>

struct redis_poll {
    redisAsyncContext *ac;  /* NULL while disconnected */
    int want_read, want_write;
};

void redis_poll_attach(struct redis_poll *rp, redisAsyncContext *ac);
/* POLLIN/POLLOUT wanted now, 0 when disconnected. */
short redis_poll_events(const struct redis_poll *rp);
int redis_poll_fd(const struct redis_poll *rp);
void redis_poll_handle(struct redis_poll *rp, short revents);

#endif
