/* redis_async.c -- see redis_async.h. */
#define _POSIX_C_SOURCE 200809L
#include "redis_async.h"

#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <hiredis/sds.h>

#include "clock.h"
#include "log.h"
#include "redis_sentinel.h"

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 5000

static void add_read(void *p) { ((struct redis_async *)p)->want_read = 1; }
static void del_read(void *p) { ((struct redis_async *)p)->want_read = 0; }
static void del_write(void *p) { ((struct redis_async *)p)->want_write = 0; }

static void add_write(void *p)
{
    struct redis_async *ra = p;
    ra->want_write = 1;
    if (ra->wake)
        ra->wake(ra->wake_arg);
}

/* The connection ends (lost, refused, timed out, not the master, or
 * dropped): with Sentinels, where it was is looked up again next time. */
static void cleanup(void *p)
{
    struct redis_async *ra = p;
    const redisContext *c = ra->ac ? &ra->ac->c : NULL;
    if (c && ra->where && ra->where->nsentinels && c->connection_type == REDIS_CONN_TCP &&
        c->tcp.host)
        redis_sentinel_failed(ra->where, c->tcp.host, c->tcp.port);
    ra->want_read = ra->want_write = 0;
    ra->waiting_since = 0;
    ra->ac = NULL;
}

/* ---- not the master any more ------------------------------------------ */

/* hiredis' own reply builders, and ours: the same, but an error reply
 * -READONLY marks the connection (the reader's privdata) as not_master.
 * Every reply of every command passes here, nested ones (EXEC) included. */
#define NOT_MASTER_READONLY 1
#define NOT_MASTER_ROLE 2   /* (on_role said so in the log) */
static const redisReplyObjectFunctions *hiredis_replies;
static redisReplyObjectFunctions watched_replies;

static void *create_string(const redisReadTask *task, char *str, size_t len)
{
    if (task->type == REDIS_REPLY_ERROR && task->privdata && redis_error_is_readonly(str, len))
        ((struct redis_async *)task->privdata)->not_master = NOT_MASTER_READONLY;
    return hiredis_replies->createString(task, str, len);
}

static void watch_readonly(struct redis_async *ra, redisReader *reader)
{
    if (!hiredis_replies) {
        hiredis_replies = reader->fn;
        watched_replies = *reader->fn;
        watched_replies.createString = create_string;
    }
    if (reader->fn != hiredis_replies)
        return; /* not hiredis' default builders: leave them alone */
    reader->fn = &watched_replies;
    reader->privdata = ra;
}

static void on_role(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)ac;
    struct redis_async *ra = privdata;
    char peer[300];
    if (r && ra->where && ac->c.connection_type == REDIS_CONN_TCP && ac->c.tcp.host &&
        redis_sentinel_superseded(ra->where, ac->c.tcp.host, ac->c.tcp.port)) {
        log_warn("redis at %s is the master '%s' before the last +switch-master; reconnecting",
                 redis_peer(&ac->c, peer, sizeof(peer)), ra->where->master_name);
        ra->not_master = NOT_MASTER_ROLE;
        return;
    }
    if (!r || redis_role_is_master(r))
        return; /* (NULL: the connection is gone already) */
    const redisReply *reply = r;
    log_warn("redis at %s is not the master '%s' (%s); asking the Sentinels again",
             redis_peer(&ac->c, peer, sizeof(peer)), ra->where ? ra->where->master_name : "?",
             reply->type == REDIS_REPLY_ERROR ? reply->str : "a replica");
    ra->not_master = NOT_MASTER_ROLE;
}

/* ---- connecting ---------------------------------------------------------- */

redisAsyncContext *redis_async_connect(struct redis_async *ra, const struct redis_addr *a,
                                       long long timeout_ms, char *err, size_t errlen)
{
    redisAsyncContext *ac = redis_connect_async(a, err, errlen);
    if (!ac)
        return NULL;
    ra->ac = ac;
    ra->want_read = 0;
    ra->want_write = 1; /* the connect completes when the socket turns writable */
    ra->timeout_ms = timeout_ms;
    ra->waiting_since = clock_ms();
    ra->timed_out = 0;
    ra->not_master = 0;
    ra->where = a;
    watch_readonly(ra, ac->c.reader);
    if (a->nsentinels)
        redisAsyncCommand(ac, on_role, ra, "ROLE");
    ac->ev.data = ra;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->ev.cleanup = cleanup;
    return ac;
}

short redis_async_events(const struct redis_async *ra)
{
    if (!ra->ac)
        return 0;
    return (short)((ra->want_read ? POLLIN : 0) | (ra->want_write ? POLLOUT : 0));
}

int redis_async_fd(const struct redis_async *ra)
{
    return ra->ac ? ra->ac->c.fd : -1;
}

/* Something is owed to us: the connect, a reply, or bytes still to send. */
static int awaiting(const struct redis_async *ra)
{
    const redisAsyncContext *ac = ra->ac;
    return !(ac->c.flags & REDIS_CONNECTED) || ac->replies.head || ra->want_write;
}

void redis_async_handle(struct redis_async *ra, int readable, int writable)
{
    int moving = 0;
    /* each call may free the context (disconnect), so look again after it */
    if (ra->ac && readable)
        redisAsyncHandleRead(ra->ac);
    if (ra->ac && writable) {
        int connecting = !(ra->ac->c.flags & REDIS_CONNECTED);
        redisAsyncHandleWrite(ra->ac);
        /* the connect done, or a long write that moves on, is progress; a
         * command written whole is not: a stopped server's kernel takes
         * that too, and a program that writes now and then would keep a
         * dead link alive */
        moving = ra->ac && (ra->ac->c.flags & REDIS_CONNECTED) &&
                 (connecting || sdslen(ra->ac->c.obuf) > 0);
    }
    if (ra->ac && (readable || moving))
        ra->waiting_since = awaiting(ra) ? clock_ms() : 0; /* progress */
    if (ra->ac && ra->not_master) {
        /* (after the read that brought the news, never inside it) */
        if (ra->not_master == NOT_MASTER_READONLY)
            log_warn("redis answered -READONLY (a replica now); reconnecting");
        ra->not_master = 0;
        redis_async_abort(ra);
    }
}

int redis_async_expire(struct redis_async *ra, long long now_ms)
{
    if (!ra->ac || ra->timeout_ms <= 0)
        return 0;
    if (!awaiting(ra)) {
        ra->waiting_since = 0;
        return 0;
    }
    if (!ra->waiting_since) {
        ra->waiting_since = now_ms;
        return 0;
    }
    if (now_ms - ra->waiting_since < ra->timeout_ms)
        return 0;
    redis_async_abort(ra);
    return 1;
}

void redis_async_abort(struct redis_async *ra)
{
    if (!ra->ac)
        return;
    /* hiredis reads end of file and fails everything pending, as for a
     * connection the server closed */
    ra->timed_out = 1;
    ra->waiting_since = 0;
    shutdown(ra->ac->c.fd, SHUT_RDWR);
    redis_async_handle(ra, 1, 0);
}

int redis_backoff_due(struct redis_backoff *b, long long now_ms)
{
    if (now_ms < b->next_ms)
        return 0;
    b->delay_ms = b->delay_ms ? b->delay_ms * 2 : BACKOFF_FIRST_MS;
    if (b->delay_ms > BACKOFF_MAX_MS)
        b->delay_ms = BACKOFF_MAX_MS;
    b->next_ms = now_ms + b->delay_ms;
    return 1;
}

void redis_backoff_reset(struct redis_backoff *b)
{
    b->delay_ms = 0;
    b->next_ms = 0;
}
