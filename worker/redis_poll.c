/* redis_poll.c -- see redis_poll.h. */
#include "redis_poll.h"

#include <poll.h>

static void add_read(void *p) { ((struct redis_poll *)p)->want_read = 1; }
static void del_read(void *p) { ((struct redis_poll *)p)->want_read = 0; }
static void add_write(void *p) { ((struct redis_poll *)p)->want_write = 1; }
static void del_write(void *p) { ((struct redis_poll *)p)->want_write = 0; }

static void cleanup(void *p)
{
    struct redis_poll *rp = p;
    rp->want_read = rp->want_write = 0;
    rp->ac = NULL;
}

void redis_poll_attach(struct redis_poll *rp, redisAsyncContext *ac)
{
    rp->ac = ac;
    rp->want_read = 0;
    rp->want_write = 1; /* the connect completes when the socket turns writable */
    ac->ev.data = rp;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->ev.cleanup = cleanup;
}

short redis_poll_events(const struct redis_poll *rp)
{
    if (!rp->ac)
        return 0;
    return (short)((rp->want_read ? POLLIN : 0) | (rp->want_write ? POLLOUT : 0));
}

int redis_poll_fd(const struct redis_poll *rp)
{
    return rp->ac ? rp->ac->c.fd : -1;
}

void redis_poll_handle(struct redis_poll *rp, short revents)
{
    /* each call may free the context (disconnect), so look again after it */
    if (rp->ac && (revents & (POLLIN | POLLERR | POLLHUP)))
        redisAsyncHandleRead(rp->ac);
    if (rp->ac && (revents & (POLLOUT | POLLERR)))
        redisAsyncHandleWrite(rp->ac);
}
