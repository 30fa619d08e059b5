/* test_redis_readonly.c -- a connection of common/redis_async.c that gets
 * -READONLY (it talks to a replica: the master was demoted) ends as a lost
 * one, so the program's reconnect asks the Sentinels again; another error
 * reply leaves it alone. A fake Redis on a unix socket answers. */
#define _POSIX_C_SOURCE 200809L
#define TEST_NAME "redis_readonly"
#include "check.h"
#include "redis_async.h"

#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int replies, got_error_reply, disconnected;

static void on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)ac;
    (void)privdata;
    redisReply *reply = r;
    replies++;
    if (reply && reply->type == REDIS_REPLY_ERROR)
        got_error_reply++;
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)ac;
    (void)status;
    disconnected++;
}

/* The client sends one command; the fake server answers it with answer. */
static int exchange(struct redis_async *ra, int server, const char *answer)
{
    redisAsyncCommand(ra->ac, on_reply, NULL, "SET k v");
    redis_async_handle(ra, 0, 1); /* connect done, command written */
    char buf[256];
    if (read(server, buf, sizeof(buf)) <= 0)
        return -1;
    if (write(server, answer, strlen(answer)) != (ssize_t)strlen(answer))
        return -1;
    redis_async_handle(ra, 1, 0);
    return 0;
}

int main(void)
{
    char dir[] = "/tmp/aimsg-readonly.XXXXXX", path[64], url[160], err[256];
    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof(path), "%s/fake.sock", dir);
    snprintf(url, sizeof(url), "unix:%s", path);
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 4) != 0)
        return 1;
    struct redis_addr a;
    if (redis_addr_parse(&a, url, err, sizeof(err)) != 0)
        return 1;

    struct redis_async ra = {0};
    redisAsyncContext *ac = redis_async_connect(&ra, &a, 1000, err, sizeof(err));
    int server = ac ? accept(lfd, NULL, NULL) : -1;
    CHECK("connected to the fake Redis", ac && server >= 0);
    if (!ac || server < 0)
        return 1;
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    CHECK("another error reply reaches its callback",
          exchange(&ra, server, "-ERR wrong kind of value\r\n") == 0 && got_error_reply == 1);
    CHECK("and the connection stays", ra.ac != NULL && !disconnected);
    CHECK("-READONLY reaches its callback",
          exchange(&ra, server, "-READONLY You can't write against a read only replica.\r\n") == 0 &&
              got_error_reply == 2);
    CHECK("then the connection ends as a lost one", ra.ac == NULL && disconnected == 1);
    close(server);

    ac = redis_async_connect(&ra, &a, 1000, err, sizeof(err));
    server = ac ? accept(lfd, NULL, NULL) : -1;
    if (!ac || server < 0)
        return 1;
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    CHECK("a new connection starts afresh", exchange(&ra, server, "+OK\r\n") == 0 && ra.ac != NULL);
    const char *nested = "*2\r\n+OK\r\n-READONLY You can't write against a read only replica.\r\n";
    CHECK("-READONLY inside EXEC's reply ends it too",
          exchange(&ra, server, nested) == 0 && ra.ac == NULL && disconnected == 2);
    close(server);
    close(lfd);
    unlink(path);
    rmdir(dir);
    return check_failed ? 1 : 0;
}
