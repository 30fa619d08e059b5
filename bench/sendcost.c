/* sendcost -- what one small TCP send costs on this machine, for `make bench`.
 *
 *   sendcost [--sockets N] [--rounds R] [--bytes B]
 *
 * Opens N loopback TCP connections (Nagle off, as ws-push's), forks a
 * reader that drains them all on epoll, and sends B bytes on each of them,
 * R times over. Prints one JSON object: the wall time per send() in the
 * send loops. On loopback the sender's send() also runs the receiving
 * side's TCP (softirq), as ws-push's sends to the load client do in the
 * fan-out scenarios: the figure is the floor of a delivery there, one frame
 * to one client, before WebSocket framing or anything of ws-push. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double mono_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void drain(const int *fds, int n, long long want)
{
    int ep = epoll_create1(0);
    if (ep < 0)
        _exit(1);
    for (int i = 0; i < n; i++) {
        struct epoll_event e = {.events = EPOLLIN, .data.fd = fds[i]};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &e) != 0)
            _exit(1);
    }
    static char buf[65536];
    struct epoll_event ev[256];
    for (long long got = 0; got < want;) {
        int k = epoll_wait(ep, ev, 256, 5000);
        if (k <= 0)
            _exit(1);
        for (int j = 0; j < k; j++) {
            ssize_t r = recv(ev[j].data.fd, buf, sizeof(buf), 0);
            if (r > 0)
                got += r;
        }
    }
    _exit(0);
}

int main(int argc, char **argv)
{
    int n = 5000, rounds = 20, bytes = 100;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--sockets") == 0) n = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--rounds") == 0) rounds = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--bytes") == 0) bytes = atoi(argv[i + 1]);
        else n = 0; /* unknown: the usage */
    }
    if (argc % 2 == 0 || n < 1 || rounds < 1 || bytes < 1 || bytes > 65536) {
        fprintf(stderr, "usage: sendcost [--sockets N] [--rounds R] [--bytes B]\n");
        return 2;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        if ((rlim_t)n * 2 + 16 > rl.rlim_cur)
            n = (int)(rl.rlim_cur - 16) / 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(l, 4096) != 0 ||
        getsockname(l, (struct sockaddr *)&a, &al) != 0) {
        perror("sendcost: listen");
        return 2;
    }
    int *cl = malloc((size_t)n * sizeof(int)), *sv = malloc((size_t)n * sizeof(int));
    char *msg = malloc((size_t)bytes);
    if (!cl || !sv || !msg)
        return 2;
    memset(msg, 'x', (size_t)bytes);
    for (int i = 0; i < n; i++) {
        int one = 1;
        cl[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (cl[i] < 0 || connect(cl[i], (struct sockaddr *)&a, sizeof(a)) != 0 ||
            (sv[i] = accept(l, NULL, NULL)) < 0 ||
            setsockopt(sv[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
            perror("sendcost: connect");
            return 2;
        }
    }
    pid_t reader = fork();
    if (reader < 0)
        return 2;
    if (reader == 0)
        drain(cl, n, (long long)n * rounds * bytes);
    double busy = 0;
    long long sent = 0;
    for (int r = 0; r < rounds; r++) {
        double t0 = mono_s();
        for (int i = 0; i < n; i++)
            if (send(sv[i], msg, (size_t)bytes, 0) == bytes)
                sent++;
        busy += mono_s() - t0;
        usleep(20 * 1000); /* the reader catches up: the next round finds it asleep */
    }
    int status = 0;
    if (waitpid(reader, &status, 0) != reader || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "sendcost: the reader did not get everything\n");
        return 1;
    }
    printf("{\"sockets\":%d,\"rounds\":%d,\"bytes\":%d,\"sends\":%lld,\"us_per_send\":%.2f}\n", n,
           rounds, bytes, sent, busy / (double)sent * 1e6);
    return sent == (long long)n * rounds ? 0 : 1;
}
