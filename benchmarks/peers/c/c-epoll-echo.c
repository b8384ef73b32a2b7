/*
 * c-epoll-echo: a reference TCP echo server in plain C, single-threaded, level-triggered epoll.
 *
 * It exists to show what a good epoll server costs on this machine (the floor our Swift epoll
 * backend is judged against), so it does the few things that matter and nothing else:
 *
 *   - one thread, non-blocking sockets, level-triggered epoll;
 *   - accept4() until EAGAIN on each readiness of the listener;
 *   - one read() per readiness event. A read that returns less than the buffer means the socket
 *     is drained for now: we do NOT read again just to see EAGAIN (that third syscall per request
 *     costs 20-30 % here). If more data is left, level-triggered epoll simply reports it again;
 *   - the data goes straight back with send(MSG_NOSIGNAL). On a partial write the remainder is
 *     kept in a per-connection buffer and the socket switches to EPOLLOUT (we stop reading it)
 *     until the remainder is sent; then it switches back to EPOLLIN;
 *   - TCP_NODELAY on every connection, SO_REUSEADDR on the listener, backlog 4096;
 *   - no allocation per request: one shared read buffer, and a remainder buffer per descriptor
 *     slot allocated the first time that slot needs one and reused afterwards;
 *   - SIGTERM/SIGINT arrive through a signalfd watched by the same epoll: clean exit, status 0.
 *
 * Build: cc -O2 -o c-epoll-echo c-epoll-echo.c
 * Run:   c-epoll-echo --port 7100      (or: c-epoll-echo 7100; listens on 0.0.0.0)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE   65536   /* one read's worth; also the size of a remainder buffer */
#define MAX_EVENTS 1024    /* readiness events taken per epoll_wait */
#define BACKLOG    4096

/* Per-descriptor state, indexed by fd. Only a connection with unsent data uses it. */
struct conn {
    char *pending;         /* remainder buffer (BUF_SIZE), allocated once per slot, kept */
    uint32_t off, len;     /* unsent bytes are pending[off..len) */
    int writing;           /* 1 while waiting for EPOLLOUT (not reading) */
};

static struct conn *conns;
static int max_fds;
static char buf[BUF_SIZE];

static void die(const char *what) { perror(what); exit(1); }

/* Raise the descriptor limit to the hard limit; return it (our table's size). */
static int raise_nofile(void) {
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) != 0) die("getrlimit");
    r.rlim_cur = r.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &r) != 0) die("setrlimit");
    return r.rlim_cur > (1 << 20) ? (1 << 20) : (int)r.rlim_cur;
}

static int parse_port(int argc, char **argv) {
    const char *text = "6666";
    if (argc >= 3 && strcmp(argv[1], "--port") == 0) text = argv[2];
    else if (argc >= 2 && strncmp(argv[1], "--port=", 7) == 0) text = argv[1] + 7;
    else if (argc >= 2 && argv[1][0] != '-') text = argv[1];
    else if (argc >= 2) { fprintf(stderr, "usage: %s [--port N | N]\n", argv[0]); exit(64); }
    char *end;
    long port = strtol(text, &end, 10);
    if (*end || port < 1 || port > 65535) { fprintf(stderr, "bad port: %s\n", text); exit(64); }
    return (int)port;
}

static int listen_on(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) die("SO_REUSEADDR");
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(port),
                                .sin_addr.s_addr = htonl(INADDR_ANY) };
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) die("bind");
    if (listen(fd, BACKLOG) != 0) die("listen");
    return fd;
}

static void set_events(int ep, int fd, uint32_t events) {
    struct epoll_event ev = { .events = events, .data.fd = fd };
    if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) != 0) die("epoll_ctl MOD");
}

/* close() also removes the descriptor from the epoll set. The remainder buffer stays with the slot. */
static void close_conn(int fd) {
    conns[fd].off = conns[fd].len = 0;
    conns[fd].writing = 0;
    close(fd);
}

static void accept_all(int ep, int lfd) {
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno != EAGAIN) perror("accept4");   /* EMFILE etc.: try again on the next event */
            return;
        }
        if (fd >= max_fds) { close(fd); continue; }   /* cannot happen below RLIMIT_NOFILE */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) { close(fd); continue; }
    }
}

/* Send buf[0..n) to fd; keep what the socket did not take and wait for EPOLLOUT. 0, or -1 to close. */
static int echo_back(int ep, int fd, const char *data, size_t n) {
    ssize_t w = send(fd, data, n, MSG_NOSIGNAL);
    if (w < 0) {
        if (errno != EAGAIN && errno != EINTR) return -1;
        w = 0;
    }
    if ((size_t)w == n) return 0;
    struct conn *c = &conns[fd];
    if (!c->pending && !(c->pending = malloc(BUF_SIZE))) die("malloc");
    memcpy(c->pending, data + w, n - w);
    c->off = 0;
    c->len = (uint32_t)(n - w);
    c->writing = 1;
    set_events(ep, fd, EPOLLOUT);               /* stop reading until the remainder is out */
    return 0;
}

/* EPOLLOUT on a connection with a remainder: send more of it; back to EPOLLIN when it is all out. */
static int flush_pending(int ep, int fd) {
    struct conn *c = &conns[fd];
    ssize_t w = send(fd, c->pending + c->off, c->len - c->off, MSG_NOSIGNAL);
    if (w < 0) return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
    c->off += (uint32_t)w;
    if (c->off == c->len) {
        c->off = c->len = 0;
        c->writing = 0;
        set_events(ep, fd, EPOLLIN);
    }
    return 0;
}

int main(int argc, char **argv) {
    int port = parse_port(argc, argv);
    max_fds = raise_nofile();
    if (!(conns = calloc(max_fds, sizeof *conns))) die("calloc");

    /* SIGTERM and SIGINT are blocked and read from a signalfd instead: no races with epoll_wait. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    if (sigprocmask(SIG_BLOCK, &stop_signals, NULL) != 0) die("sigprocmask");
    int sfd = signalfd(-1, &stop_signals, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0) die("signalfd");

    int lfd = listen_on(port);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = lfd };
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) != 0) die("epoll_ctl listener");
    ev.data.fd = sfd;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev) != 0) die("epoll_ctl signalfd");
    fprintf(stderr, "c-epoll-echo: listening on 0.0.0.0:%d\n", port);

    struct epoll_event events[MAX_EVENTS];
    int running = 1;
    while (running) {
        int n = epoll_wait(ep, events, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == lfd) { accept_all(ep, lfd); continue; }
            if (fd == sfd) { running = 0; continue; }  /* finish this batch, then stop */
            if (conns[fd].writing) {
                if (flush_pending(ep, fd) < 0) close_conn(fd);
                continue;
            }
            /* One read per readiness event; a short read means drained (level-triggered epoll
             * reports the socket again if anything is left). */
            ssize_t r = read(fd, buf, BUF_SIZE);
            if (r > 0) {
                if (echo_back(ep, fd, buf, (size_t)r) < 0) close_conn(fd);
            } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                close_conn(fd);                          /* EOF or a socket error */
            }
        }
    }

    /* Clean stop: free what we allocated; exit closes the connections still open. */
    for (int fd = 0; fd < max_fds; fd++) free(conns[fd].pending);
    free(conns);
    close(ep);
    close(lfd);
    close(sfd);
    fprintf(stderr, "c-epoll-echo: stopped\n");
    return 0;
}
