/* slowloris -- a bounded slow-request load for tests: many connections that
 * send a request head a byte at a time and never end it.
 *
 *   slowloris --port N [--host 127.0.0.1] [--conns N] [--trickle SECONDS]
 *             [--wait SECONDS]
 *
 * Opens --conns connections (loopback addresses only), sends a request line
 * and a header on each, then one more byte a second on each for --trickle
 * seconds, then nothing; it watches for the server to close them until all
 * are closed or --wait more seconds have passed. Prints "# trickling" once
 * the connections are open, then one line
 *   connected=N closed=N open=N
 * (closed: by the server, before the end). Exit 0, or 2 on bad arguments. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 20000
#define CONNECT_SECONDS 10

static const char head[] = "GET / HTTP/1.1\r\nHost: slow\r\n";
static const char trickle_bytes[] = "X-a: b\r\n"; /* header lines, never the blank one */

static struct pollfd pfd[MAX_CONNS];
static int nconns;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void drop(int i, int *closed)
{
    close(pfd[i].fd);
    pfd[i].fd = -1;
    (*closed)++;
}

/* Opens the connections; returns how many connected. */
static int open_all(const struct sockaddr_in *sa, int want)
{
    for (nconns = 0; nconns < want; nconns++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            perror("slowloris: socket");
            break;
        }
        pfd[nconns].fd = fd;
        pfd[nconns].events = POLLOUT;
        if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) != 0 && errno != EINPROGRESS) {
            close(fd);
            pfd[nconns].fd = -1;
        }
    }
    double deadline = now_s() + CONNECT_SECONDS;
    int pending = 1;
    while (pending && now_s() < deadline) {
        if (poll(pfd, (nfds_t)nconns, 200) < 0 && errno != EINTR)
            break;
        pending = 0;
        for (int i = 0; i < nconns; i++) {
            if (pfd[i].fd < 0 || pfd[i].events != POLLOUT)
                continue;
            if (!pfd[i].revents) {
                pending = 1;
                continue;
            }
            int err = 0;
            socklen_t len = sizeof(err);
            if (getsockopt(pfd[i].fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err ||
                send(pfd[i].fd, head, sizeof(head) - 1, MSG_NOSIGNAL) != (ssize_t)sizeof(head) - 1) {
                close(pfd[i].fd);
                pfd[i].fd = -1;
                continue;
            }
            pfd[i].events = POLLIN;
        }
    }
    int connected = 0;
    for (int i = 0; i < nconns; i++) {
        if (pfd[i].fd >= 0 && pfd[i].events == POLLOUT) { /* never connected */
            close(pfd[i].fd);
            pfd[i].fd = -1;
        }
        if (pfd[i].fd >= 0)
            connected++;
    }
    return connected;
}

/* Reads what the server sent (an error response, say); counts a connection
 * it closed. */
static void reap(int *closed)
{
    char buf[4096];
    for (int i = 0; i < nconns; i++) {
        if (pfd[i].fd < 0 || !pfd[i].revents)
            continue;
        ssize_t n = recv(pfd[i].fd, buf, sizeof(buf), 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            drop(i, closed);
    }
}

/* Watches the connections until `until`, sending each a byte a second
 * while trickle is set; returns early when all are closed. */
static void watch(double until, int trickle, int connected, int *closed, size_t *sent)
{
    double next_byte = now_s() + 1;
    while (*closed < connected && now_s() < until) {
        double wait = (trickle ? next_byte : until) - now_s();
        int ms = wait > 0 ? (int)(wait * 1000) + 1 : 0;
        if (poll(pfd, (nfds_t)nconns, ms > 1000 ? 1000 : ms) < 0 && errno != EINTR)
            return;
        reap(closed);
        if (trickle && now_s() >= next_byte) {
            char c = trickle_bytes[*sent % (sizeof(trickle_bytes) - 1)];
            for (int i = 0; i < nconns; i++)
                if (pfd[i].fd >= 0 && send(pfd[i].fd, &c, 1, MSG_NOSIGNAL) < 0 &&
                    errno != EAGAIN)
                    drop(i, closed);
            (*sent)++;
            next_byte += 1;
        }
    }
}

static int loopback(const char *host, struct sockaddr_in *sa)
{
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    return inet_pton(AF_INET, host, &sa->sin_addr) == 1 &&
           (ntohl(sa->sin_addr.s_addr) >> 24) == 127;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    long port = 0, conns = 100, trickle = 5, wait = 30;
    for (int i = 1; i + 1 < argc; i += 2) {
        long *v = strcmp(argv[i], "--port") == 0      ? &port
                  : strcmp(argv[i], "--conns") == 0   ? &conns
                  : strcmp(argv[i], "--trickle") == 0 ? &trickle
                  : strcmp(argv[i], "--wait") == 0    ? &wait
                                                      : NULL;
        if (strcmp(argv[i], "--host") == 0)
            host = argv[i + 1];
        else if (v)
            *v = atol(argv[i + 1]);
        else
            argc = 0; /* unknown option: usage */
    }
    struct sockaddr_in sa;
    if (argc % 2 == 0 || port < 1 || port > 65535 || conns < 1 || conns > MAX_CONNS ||
        trickle < 0 || trickle > 600 || wait < 0 || wait > 600 || !loopback(host, &sa)) {
        fprintf(stderr, "usage: slowloris --port N [--host 127.x.x.x] [--conns 1..%d] "
                        "[--trickle SECONDS] [--wait SECONDS]\n", MAX_CONNS);
        return 2;
    }
    sa.sin_port = htons((unsigned short)port);

    int connected = open_all(&sa, (int)conns), closed = 0;
    printf("# trickling on %d connections\n", connected);
    fflush(stdout);
    size_t sent = 0;
    double start = now_s();
    watch(start + (double)trickle, 1, connected, &closed, &sent);
    watch(start + (double)trickle + (double)wait, 0, connected, &closed, &sent);
    printf("connected=%d closed=%d open=%d\n", connected, closed, connected - closed);
    for (int i = 0; i < nconns; i++)
        if (pfd[i].fd >= 0)
            close(pfd[i].fd);
    return 0;
}
