/* test_sentinel_lookup.c -- what redis_sentinel_master (common/redis_sentinel.c)
 * remembers between connects: the Sentinel that answered last is asked
 * first, an answer serves the connects of the next second, a failure at the
 * address drops it, and after a +switch-master a Sentinel naming another
 * master is believed only when none names the announced one. The Sentinels
 * are stand-ins forked here on loopback ports, each answering every
 * SENTINEL get-master-addr-by-name with a fixed address or, "counting",
 * with port 7000 + the number of connections it had before. */
#define _POSIX_C_SOURCE 200809L
#define TEST_NAME "sentinel_lookup"
#include "check.h"
#include "redis_conn.h"
#include "redis_sentinel.h"
#include "sentinel_master.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_FAKES 4
static pid_t fakes[MAX_FAKES];
static int nfakes;

/* The stand-in's loop: one reply per connection (AUTH is not used here). */
static void serve(int lfd, const char *host, int port)
{
    alarm(60); /* never outlives a test that lost track of it */
    for (int n = 0;; n++) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            _exit(1);
        char buf[512], port_s[16], reply[600];
        if (read(fd, buf, sizeof(buf)) > 0) {
            snprintf(port_s, sizeof(port_s), "%d", port ? port : 7000 + n);
            int len = snprintf(reply, sizeof(reply), "*2\r\n$%zu\r\n%s\r\n$%zu\r\n%s\r\n",
                               strlen(host), host, strlen(port_s), port_s);
            if (write(fd, reply, (size_t)len) != len)
                _exit(1);
        }
        close(fd);
    }
}

/* A stand-in Sentinel naming host:port (port 0: counting); its port, or -1. */
static int fake_sentinel(const char *host, int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0 || nfakes == MAX_FAKES || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(lfd, 16) != 0 || getsockname(lfd, (struct sockaddr *)&sa, &len) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0)
        serve(lfd, host, port);
    close(lfd);
    fakes[nfakes++] = pid;
    return ntohs(sa.sin_port);
}

static int addr(struct redis_addr *a, const char *name, int p1, int p2)
{
    char url[256], err[256];
    if (p2)
        snprintf(url, sizeof(url), "sentinel://127.0.0.1:%d,127.0.0.1:%d/%s", p1, p2, name);
    else
        snprintf(url, sizeof(url), "sentinel://127.0.0.1:%d/%s", p1, name);
    return redis_addr_parse(a, url, err, sizeof(err));
}

static void past_the_memory(void)
{
    long ms = REDIS_SENTINEL_CACHE_MS + 100;
    struct timespec ts = {ms / 1000, ms % 1000 * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int main(void)
{
    int counting = fake_sentinel("127.0.0.1", 0);
    int one = fake_sentinel("10.0.0.1", 1);
    int two = fake_sentinel("10.0.0.2", 2);
    struct redis_addr a;
    CHECK("the stand-in Sentinels start", counting > 0 && one > 0 && two > 0);

    CHECK("counting: parse", addr(&a, "c", counting, 0) == 0);
    CHECK_STR("the first lookup asks", "127.0.0.1:7000", master(&a));
    CHECK_STR("the next connect uses its answer", "127.0.0.1:7000", master(&a));
    redis_sentinel_failed(&a, "127.0.0.1", 7000);
    CHECK_STR("after a failure there the Sentinels are asked again", "127.0.0.1:7001",
              master(&a));
    past_the_memory();
    CHECK_STR("a second later too", "127.0.0.1:7002", master(&a));

    CHECK("two Sentinels: parse", addr(&a, "two", one, two) == 0);
    CHECK_STR("the first in the list is asked first", "10.0.0.1:1", master(&a));
    redis_sentinel_failed(&a, "10.0.0.1", 1);
    CHECK_STR("after a failure at what it named, the next one", "10.0.0.2:2", master(&a));
    past_the_memory();
    CHECK_STR("then the one that answered last is asked first", "10.0.0.2:2", master(&a));

    redis_sentinel_announced(&a, "10.0.0.1", 1);
    CHECK_STR("+switch-master: the announced master, without asking", "10.0.0.1:1", master(&a));
    CHECK("... and the other one superseded", redis_sentinel_superseded(&a, "10.0.0.2", 2));
    redis_sentinel_failed(&a, "10.0.0.1", 1);
    CHECK_STR("after it fails, a Sentinel naming another is passed over for one naming it",
              "10.0.0.1:1", master(&a));
    redis_sentinel_announced(&a, "10.0.0.3", 3);
    redis_sentinel_failed(&a, "10.0.0.3", 3);
    const char *m = master(&a);
    CHECK("when none names the announced master, a Sentinel is believed",
          !strcmp(m, "10.0.0.1:1") || !strcmp(m, "10.0.0.2:2"));
    CHECK("... and nothing is superseded any more",
          !redis_sentinel_superseded(&a, "10.0.0.1", 1) &&
              !redis_sentinel_superseded(&a, "10.0.0.2", 2));

    for (int i = 0; i < nfakes; i++) {
        kill(fakes[i], SIGKILL);
        waitpid(fakes[i], NULL, 0);
    }
    return check_failed ? 1 : 0;
}
