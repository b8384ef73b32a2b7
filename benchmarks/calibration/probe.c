/*
 * probe: a short calibration probe, run pinned on the server's CPU before and
 * after each benchmark run, to tell whether the CPU was as fast as usual.
 *
 * Why: on the benchmark VM the server's CPU per request is bimodal (a slow mode
 * adds 50-65% and flips within seconds); an ALU loop does not see it, so the
 * probe can time the kernel's loopback TCP path itself, which is what an echo server
 * spends >97% of its CPU on. Other signals are kept for comparison.
 *
 *   probe SIGNAL [-n ITERATIONS] [-r REPETITIONS] [-b CHASE_BYTES] [-s CPU]
 *   SIGNAL: tcp | chase | alu | syscall
 *   -s CPU: while timing, a companion thread pinned to CPU loops on a cheap
 *   syscall (as a load generator would), to expose contention between CPUs.
 *
 * Prints one JSON line: the best (lowest wall-clock) of the repetitions as
 * ns_per_op / cpu_ns_per_op / wall_ms, plus every repetition's wall ns/op.
 * Setup (sockets, the chase buffer) is not timed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <pthread.h>
#include <sched.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_REPS 64

static void die(const char *what) {
    fprintf(stderr, "probe: %s: %s\n", what, strerror(errno));
    exit(1);
}

static uint64_t now_ns(clockid_t clock) {
    struct timespec t;
    clock_gettime(clock, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* ---- companion: a getppid loop on another CPU until told to stop. ---- */
static volatile int companion_stop;

static void *companion(void *arg) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET((int)(intptr_t)arg, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    while (!companion_stop) syscall(SYS_getppid);
    return NULL;
}

/* ---- tcp: one loopback connection to ourselves, ping-pong 128 B. ---- */
static int tcp_a = -1, tcp_b = -1;

static void tcp_setup(void) {
    int one = 1;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0) die("socket");
    if (bind(l, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
    if (listen(l, 1) < 0) die("listen");
    if (getsockname(l, (struct sockaddr *)&addr, &len) < 0) die("getsockname");
    tcp_a = socket(AF_INET, SOCK_STREAM, 0);
    if (tcp_a < 0) die("socket");
    if (connect(tcp_a, (struct sockaddr *)&addr, sizeof addr) < 0) die("connect");
    tcp_b = accept(l, NULL, NULL);
    if (tcp_b < 0) die("accept");
    close(l);
    setsockopt(tcp_a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(tcp_b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void recv_all(int fd, char *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = recv(fd, buf + got, n - got, 0);
        if (r <= 0) die("recv");
        got += (size_t)r;
    }
}

static void send_all(int fd, const char *buf, size_t n) {
    size_t put = 0;
    while (put < n) {
        ssize_t r = send(fd, buf + put, n - put, 0);
        if (r <= 0) die("send");
        put += (size_t)r;
    }
}

static uint64_t tcp_run(uint64_t n) {
    char out[128], in[128];
    memset(out, 'x', sizeof out);
    for (uint64_t i = 0; i < n; i++) {
        send_all(tcp_a, out, sizeof out);
        recv_all(tcp_b, in, sizeof in);
        send_all(tcp_b, in, sizeof in);
        recv_all(tcp_a, out, sizeof out);
    }
    return (uint64_t)(unsigned char)out[0];
}

/* ---- chase: random cyclic permutation over cache lines of a big buffer. ---- */
static void **chase_buf;

static void chase_setup(size_t bytes) {
    size_t stride = 64 / sizeof(void *), lines = bytes / 64;
    chase_buf = malloc(bytes);
    if (!chase_buf) die("malloc");
    size_t *order = malloc(lines * sizeof *order);
    if (!order) die("malloc");
    for (size_t i = 0; i < lines; i++) order[i] = i;
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (size_t i = lines - 1; i > 0; i--) { /* Sattolo: one single cycle */
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        size_t j = (size_t)(x % i);
        size_t t = order[i]; order[i] = order[j]; order[j] = t;
    }
    for (size_t i = 0; i < lines; i++)
        chase_buf[order[i] * stride] = &chase_buf[order[(i + 1) % lines] * stride];
    free(order);
}

static uint64_t chase_run(uint64_t n) {
    void **p = chase_buf;
    for (uint64_t i = 0; i < n; i++) p = (void **)*p;
    return (uint64_t)(uintptr_t)p;
}

/* ---- alu: a dependent integer chain the compiler cannot fold. ---- */
static uint64_t alu_run(uint64_t n) {
    uint64_t x = 1;
    for (uint64_t i = 0; i < n; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        __asm__ volatile("" : "+r"(x));
    }
    return x;
}

/* ---- syscall: the cheapest round trip into the kernel and back. ---- */
static uint64_t syscall_run(uint64_t n) {
    uint64_t s = 0;
    for (uint64_t i = 0; i < n; i++) s += (uint64_t)syscall(SYS_getppid);
    return s;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: probe tcp|chase|alu|syscall [-n ITER] [-r REPS] [-b CHASE_BYTES]\n");
        return 64;
    }
    const char *signal = argv[1];
    uint64_t n = 0;
    int reps = 1;
    size_t bytes = 64u << 20;
    int companion_cpu = -1;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-n")) n = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "-r")) reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-b")) bytes = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "-s")) companion_cpu = atoi(argv[i + 1]);
        else { fprintf(stderr, "probe: unknown option %s\n", argv[i]); return 64; }
    }
    if (reps < 1 || reps > MAX_REPS) { fprintf(stderr, "probe: -r must be 1..%d\n", MAX_REPS); return 64; }
    if (bytes < 4096) bytes = 4096;

    uint64_t (*run)(uint64_t);
    /* Defaults: ~50-100 ms per repetition on the benchmark VM. */
    if (!strcmp(signal, "tcp")) { tcp_setup(); run = tcp_run; if (!n) n = 20000; }
    else if (!strcmp(signal, "chase")) { chase_setup(bytes); run = chase_run; if (!n) n = 500000; }
    else if (!strcmp(signal, "alu")) { run = alu_run; if (!n) n = 50000000; }
    else if (!strcmp(signal, "syscall")) { run = syscall_run; if (!n) n = 1000000; }
    else { fprintf(stderr, "probe: unknown signal %s\n", signal); return 64; }

    pthread_t helper;
    if (companion_cpu >= 0) {
        if (pthread_create(&helper, NULL, companion, (void *)(intptr_t)companion_cpu) != 0) die("pthread_create");
        usleep(2000);
    }
    volatile uint64_t sink = 0;
    double walls[MAX_REPS];
    double best_wall = 0, best_cpu = 0;
    for (int r = 0; r < reps; r++) {
        uint64_t w0 = now_ns(CLOCK_MONOTONIC), c0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
        sink += run(n);
        uint64_t c1 = now_ns(CLOCK_THREAD_CPUTIME_ID), w1 = now_ns(CLOCK_MONOTONIC);
        walls[r] = (double)(w1 - w0);
        if (r == 0 || walls[r] < best_wall) { best_wall = walls[r]; best_cpu = (double)(c1 - c0); }
    }
    (void)sink;
    if (companion_cpu >= 0) { companion_stop = 1; pthread_join(helper, NULL); }
    printf("{\"signal\": \"%s\", \"companion_cpu\": %d, \"iterations\": %llu, \"repetitions\": %d, \"ns_per_op\": %.3f, "
           "\"cpu_ns_per_op\": %.3f, \"wall_ms\": %.3f, \"reps_ns_per_op\": [",
           signal, companion_cpu, (unsigned long long)n, reps, best_wall / (double)n, best_cpu / (double)n, best_wall / 1e6);
    for (int r = 0; r < reps; r++) printf("%s%.3f", r ? ", " : "", walls[r] / (double)n);
    printf("]}\n");
    return 0;
}
