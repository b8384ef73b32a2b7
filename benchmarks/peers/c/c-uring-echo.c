/*
 * c-uring-echo: a reference TCP echo server in plain C on io_uring (liburing 2.3), single-threaded,
 * with the modern features that matter for echo on this kernel:
 *
 *   - IORING_SETUP_SINGLE_ISSUER + DEFER_TASKRUN: completions are produced only when we wait for
 *     them, in our own thread (the largest single io_uring gain measured here);
 *   - a large CQ (IORING_SETUP_CQSIZE, 65536) so multishot requests are not ended by CQ overflow;
 *   - multishot accept on the listener;
 *   - multishot recv on every connection, taking buffers from a provided-buffer ring that we
 *     allocate (mmap) and register by hand (liburing 2.3 has io_uring_register_buf_ring but no
 *     io_uring_setup_buf_ring);
 *   - the echo is sent straight from the received buffer; the buffer goes back into the ring when
 *     its send has completed. One send in flight per socket: buffers received meanwhile wait in a
 *     per-connection FIFO (linked through the buffer ids, so no allocation). A short send is
 *     resubmitted for the remainder;
 *   - a multishot request whose CQE lacks IORING_CQE_F_MORE has ended: it is armed again.
 *     -ENOBUFS (the ring ran dry) is back-pressure: the connection waits and its recv is armed
 *     again once buffers have come back;
 *   - one io_uring_submit_and_wait() per loop turn, after all ready CQEs were handled;
 *   - no allocation per request; SIGTERM/SIGINT come through a signalfd polled on the ring:
 *     clean exit, status 0.
 *
 * Build: cc -O2 -o c-uring-echo c-uring-echo.c $(pkg-config --cflags --libs liburing)
 * Run:   c-uring-echo --port 7100      (or: c-uring-echo 7100; listens on 0.0.0.0)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <poll.h>
#include <unistd.h>

#define SQ_ENTRIES 4096
#define CQ_ENTRIES 65536
#ifndef NBUFS
#define NBUFS      4096    /* buffers in the ring (a power of two, at most 32768; -DNBUFS=...) */
#endif
#ifndef BUF_SIZE
#define BUF_SIZE   16384   /* bytes per buffer: a longer message arrives in several (-DBUF_SIZE=...) */
#endif
#define BGID       1       /* our buffer group id */
#define BACKLOG    4096

/* user_data: the operation in the high 32 bits, the descriptor in the low 32 bits. */
enum { OP_ACCEPT = 1, OP_RECV, OP_SEND, OP_SIGNAL };
#define USER_DATA(op, fd) (((uint64_t)(op) << 32) | (uint32_t)(fd))

struct conn {              /* indexed by fd */
    int32_t head, tail;    /* FIFO of received buffers (ids) to echo; -1 when empty */
    uint32_t sent;         /* bytes of the head buffer already sent */
    uint8_t open, closing; /* closing: EOF or an error seen; close once nothing is in flight */
    uint8_t recv_armed;    /* a multishot recv is active */
    uint8_t sending;       /* a send (of the head buffer) is in flight */
    uint8_t waiting;       /* recv ended with -ENOBUFS: re-arm when buffers come back */
};

static struct io_uring ring;
static struct io_uring_buf_ring *br;
static char *buffers;                 /* NBUFS * BUF_SIZE bytes */
static uint32_t buf_len[NBUFS];       /* bytes received into each buffer */
static int32_t buf_next[NBUFS];       /* next buffer in its connection's FIFO */
static unsigned recycled;             /* buffers put back since the last ring advance */
static struct conn *conns;
static int max_fds, *waiting_list, nwaiting;
static int lfd, running = 1;

static void die(const char *what, int err) {
    fprintf(stderr, "c-uring-echo: %s: %s\n", what, strerror(err));
    exit(1);
}

static int raise_nofile(void) {       /* RLIMIT_NOFILE to the hard limit; our table's size */
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) != 0) die("getrlimit", errno);
    r.rlim_cur = r.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &r) != 0) die("setrlimit", errno);
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
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0) die("socket", errno);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) die("SO_REUSEADDR", errno);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(port),
                                .sin_addr.s_addr = htonl(INADDR_ANY) };
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) die("bind", errno);
    if (listen(fd, BACKLOG) != 0) die("listen", errno);
    return fd;
}

/* An SQE; when the SQ is full, submit what is queued to make room (rare: the SQ is large). */
static struct io_uring_sqe *get_sqe(void) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
    if (!sqe) {
        io_uring_submit(&ring);
        if (!(sqe = io_uring_get_sqe(&ring))) die("io_uring_get_sqe", EBUSY);
    }
    return sqe;
}

static void arm_accept(void) {
    struct io_uring_sqe *sqe = get_sqe();
    io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, USER_DATA(OP_ACCEPT, lfd));
}

static void arm_recv(int fd) {
    struct io_uring_sqe *sqe = get_sqe();
    io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);   /* no buffer: the kernel picks one */
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BGID;
    io_uring_sqe_set_data64(sqe, USER_DATA(OP_RECV, fd));
    conns[fd].recv_armed = 1;
}

static void send_head(int fd) {       /* send (the rest of) the connection's first buffer */
    struct conn *c = &conns[fd];
    int bid = c->head;
    struct io_uring_sqe *sqe = get_sqe();
    io_uring_prep_send(sqe, fd, buffers + (size_t)bid * BUF_SIZE + c->sent, buf_len[bid] - c->sent,
                       MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, USER_DATA(OP_SEND, fd));
    c->sending = 1;
}

/* Put a buffer back into the ring; the kernel sees it at the next advance (end of the loop turn). */
static void recycle(int bid) {
    io_uring_buf_ring_add(br, buffers + (size_t)bid * BUF_SIZE, BUF_SIZE, (unsigned short)bid,
                          io_uring_buf_ring_mask(NBUFS), (int)recycled++);
}

static void drop_queue(struct conn *c) {
    while (c->head >= 0) { int bid = c->head; c->head = buf_next[bid]; recycle(bid); }
    c->tail = -1;
    c->sent = 0;
}

/* Close once the connection is done and nothing of it is in flight (so no stale CQE can reach a
 * new connection that reuses the descriptor number). */
static void maybe_close(int fd) {
    struct conn *c = &conns[fd];
    if (!c->open || !c->closing || c->recv_armed || c->sending) return;
    drop_queue(c);
    if (c->waiting)
        for (int i = 0; i < nwaiting; i++)
            if (waiting_list[i] == fd) { waiting_list[i] = waiting_list[--nwaiting]; break; }
    c->open = c->waiting = 0;
    close(fd);
}

static void on_accept(struct io_uring_cqe *cqe) {
    int fd = cqe->res, one = 1;
    if (fd >= 0 && fd < max_fds) {
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conns[fd] = (struct conn){ .head = -1, .tail = -1, .open = 1 };
        arm_recv(fd);
    } else if (fd >= 0) {
        close(fd);
    } else if (fd != -ECONNABORTED && fd != -EINTR) {
        fprintf(stderr, "c-uring-echo: accept: %s\n", strerror(-fd));
    }
    if (!(cqe->flags & IORING_CQE_F_MORE) && running) arm_accept();
}

static void on_recv(int fd, struct io_uring_cqe *cqe) {
    struct conn *c = &conns[fd];
    if (!(cqe->flags & IORING_CQE_F_MORE)) c->recv_armed = 0;
    if (cqe->res > 0) {
        int bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        buf_len[bid] = (uint32_t)cqe->res;
        buf_next[bid] = -1;
        if (c->closing) {
            recycle(bid);                        /* after a send error: nowhere to send it */
        } else {
            if (c->tail >= 0) buf_next[c->tail] = bid; else c->head = bid;
            c->tail = bid;
            if (!c->sending) send_head(fd);
            if (!c->recv_armed) arm_recv(fd);    /* multishot ended (e.g. CQ overflow): re-arm */
        }
    } else if (cqe->res == -ENOBUFS) {
        if (!c->closing && !c->waiting) { c->waiting = 1; waiting_list[nwaiting++] = fd; }
    } else {
        c->closing = 1;                          /* 0: EOF (echo what is queued, then close); <0: error */
    }
    maybe_close(fd);
}

static void on_send(int fd, struct io_uring_cqe *cqe) {
    struct conn *c = &conns[fd];
    c->sending = 0;
    if (cqe->res <= 0) {                         /* the peer is gone: drop its data, end its recv */
        c->closing = 1;
        drop_queue(c);
        if (c->recv_armed) shutdown(fd, SHUT_RDWR);
    } else {
        int bid = c->head;
        c->sent += (uint32_t)cqe->res;
        if (c->sent < buf_len[bid]) { send_head(fd); return; }   /* short send: send the rest */
        c->head = buf_next[bid];
        if (c->head < 0) c->tail = -1;
        c->sent = 0;
        recycle(bid);
        if (c->head >= 0) send_head(fd);
    }
    maybe_close(fd);
}

int main(int argc, char **argv) {
    int port = parse_port(argc, argv);
    max_fds = raise_nofile();
    conns = calloc(max_fds, sizeof *conns);
    waiting_list = calloc(max_fds, sizeof *waiting_list);
    if (!conns || !waiting_list) die("calloc", ENOMEM);

    /* SIGTERM and SIGINT are blocked and read from a signalfd, polled on the ring. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    if (sigprocmask(SIG_BLOCK, &stop_signals, NULL) != 0) die("sigprocmask", errno);
    int sfd = signalfd(-1, &stop_signals, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0) die("signalfd", errno);

    struct io_uring_params params = { .cq_entries = CQ_ENTRIES,
        .flags = IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN };
    int ret = io_uring_queue_init_params(SQ_ENTRIES, &ring, &params);
    if (ret < 0) die("io_uring_queue_init_params (SINGLE_ISSUER + DEFER_TASKRUN need kernel 6.1)", -ret);

    /* The provided-buffer ring, by hand: page-aligned memory for NBUFS ring entries, registered as
     * buffer group BGID, then filled with every buffer. */
    size_t ring_bytes = NBUFS * sizeof(struct io_uring_buf);
    br = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (br == MAP_FAILED) die("mmap", errno);
    struct io_uring_buf_reg reg = { .ring_addr = (uint64_t)(uintptr_t)br, .ring_entries = NBUFS,
                                    .bgid = BGID };
    if ((ret = io_uring_register_buf_ring(&ring, &reg, 0)) != 0)
        die("io_uring_register_buf_ring (kernel 5.19)", -ret);
    io_uring_buf_ring_init(br);
    if (posix_memalign((void **)&buffers, 4096, (size_t)NBUFS * BUF_SIZE) != 0) die("posix_memalign", ENOMEM);
    for (int bid = 0; bid < NBUFS; bid++) recycle(bid);
    io_uring_buf_ring_advance(br, recycled);
    recycled = 0;

    lfd = listen_on(port);
    arm_accept();
    struct io_uring_sqe *sqe = get_sqe();
    io_uring_prep_poll_add(sqe, sfd, POLLIN);
    io_uring_sqe_set_data64(sqe, USER_DATA(OP_SIGNAL, sfd));
    fprintf(stderr, "c-uring-echo: listening on 0.0.0.0:%d\n", port);

    while (running) {
        ret = io_uring_submit_and_wait(&ring, 1);   /* submit this turn's SQEs, wait for a CQE */
        if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) die("io_uring_submit_and_wait", -ret);
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&ring, head, cqe) {   /* handle every CQE that is ready */
            uint64_t data = io_uring_cqe_get_data64(cqe);
            int fd = (int)(uint32_t)data;
            switch (data >> 32) {
            case OP_ACCEPT: on_accept(cqe); break;
            case OP_RECV:   on_recv(fd, cqe); break;
            case OP_SEND:   on_send(fd, cqe); break;
            case OP_SIGNAL: running = 0; break;
            }
            seen++;
        }
        io_uring_cq_advance(&ring, seen);
        if (recycled) {                              /* publish returned buffers in one step */
            io_uring_buf_ring_advance(br, recycled);
            recycled = 0;
            int n = nwaiting;                        /* and give recvs that ran dry another go */
            nwaiting = 0;
            for (int i = 0; i < n; i++) {
                struct conn *c = &conns[waiting_list[i]];
                c->waiting = 0;
                if (c->open && !c->closing && !c->recv_armed) arm_recv(waiting_list[i]);
            }
        }
    }

    /* Clean stop: tearing the ring down cancels what is in flight; then close the sockets. */
    io_uring_queue_exit(&ring);
    for (int fd = 0; fd < max_fds; fd++)
        if (conns[fd].open) close(fd);
    close(lfd);
    close(sfd);
    munmap(br, ring_bytes);
    free(buffers);
    free(conns);
    free(waiting_list);
    fprintf(stderr, "c-uring-echo: stopped\n");
    return 0;
}
