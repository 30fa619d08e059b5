/* test_redis_async.c -- the reconnect pacing and the command deadline of
 * common/redis_async.c. The deadline is tried against a "server" that
 * takes connections and bytes but never answers (a listening socket nobody
 * reads, as a stopped Redis looks), while the program goes on sending a
 * command now and then; tests/integration/faults.sh stops a real Redis. */
#define _POSIX_C_SOURCE 200809L
#define TEST_NAME "redis_async"
#include "check.h"
#include "clock.h"
#include "redis_async.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

/* A loopback listener that is never accepted from; its port in *port. */
static int silent_server(int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 8) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static int lost;
static void on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)ac;
    (void)status;
    lost = 1;
}

/* Drives the connection like a program's loop for up to ms, sending PING
 * every 50 ms; returns when a deadline ended it: how long that took, -1 if
 * it never did. */
static long long time_to_expiry(struct redis_async *ra, long long ms)
{
    long long start = clock_ms(), next_ping = start;
    while (ra->ac && clock_ms() - start < ms) {
        if (clock_ms() >= next_ping) {
            redisAsyncCommand(ra->ac, NULL, NULL, "PING");
            next_ping += 50;
        }
        struct pollfd p = {.fd = redis_async_fd(ra), .events = redis_async_events(ra)};
        if (poll(&p, 1, 10) > 0)
            redis_async_handle(ra, p.revents & (POLLIN | POLLERR | POLLHUP),
                               p.revents & (POLLOUT | POLLERR));
        if (ra->ac && redis_async_expire(ra, clock_ms()))
            return clock_ms() - start;
    }
    return -1;
}

int main(void)
{
    struct redis_backoff b = {0};
    CHECK("the first attempt is at once", redis_backoff_due(&b, 1000) == 1);
    CHECK("the next waits 100 ms", redis_backoff_due(&b, 1099) == 0 && redis_backoff_due(&b, 1100) == 1);
    CHECK("then 200 ms", redis_backoff_due(&b, 1299) == 0 && redis_backoff_due(&b, 1300) == 1);
    long long now = 1300;
    for (int i = 0; i < 20; i++) {
        now += 10000;
        redis_backoff_due(&b, now);
    }
    CHECK("the wait stops growing at 5 s", b.delay_ms == 5000);
    redis_backoff_reset(&b);
    CHECK("after a success the next attempt is at once", redis_backoff_due(&b, now) == 1);

    struct redis_async ra = {0};
    CHECK("disconnected: nothing to wait for", redis_async_events(&ra) == 0 && redis_async_fd(&ra) == -1);
    CHECK("disconnected: nothing expires", redis_async_expire(&ra, now) == 0);

    int port, server = silent_server(&port);
    CHECK("a silent server listens", server >= 0);
    if (server < 0)
        return 1;
    struct redis_addr addr;
    char url[64], err[256];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", port);
    CHECK("its address parses", redis_addr_parse(&addr, url, err, sizeof(err)) == 0);
    CHECK("connecting to it starts", redis_async_connect(&ra, &addr, 300, err, sizeof(err)) != NULL);
    if (ra.ac) {
        redisAsyncSetDisconnectCallback(ra.ac, on_disconnect);
        long long took = time_to_expiry(&ra, 3000);
        /* (a bound, not a timing: without the deadline it runs the full 3 s) */
        CHECK("commands sent every 50 ms to a server that never answers end it by the deadline",
              took >= 300 && took < 2000);
        CHECK("... as a lost connection", lost && ra.ac == NULL && ra.timed_out);
        if (ra.ac)
            redisAsyncFree(ra.ac);
    }
    close(server);
    return check_failed ? 1 : 0;
}
