// Linux interfaces that Swift's Glibc module does not export: epoll, eventfd, accept4,
// pthread_setname_np, splice and pipe2 (GNU extensions behind _GNU_SOURCE) and the TCP socket options.
#pragma once
// No _GNU_SOURCE here: it would change how Glibc's own module sees fd_set. The GNU-only
// calls are wrapped in CLinux.c instead.
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>

/// Names the calling thread (at most 15 bytes are kept).
int clinux_set_thread_name(const char *name);

/// accept4(2): accepts a connection and sets `flags` (SOCK_NONBLOCK, SOCK_CLOEXEC) on it.
int clinux_accept4(int fd, struct sockaddr *address, socklen_t *length, int flags);

/// Pins `thread` to CPU `cpu` (pthread_setaffinity_np); returns 0 or an error number (EINVAL for
/// a CPU the thread may not run on, or one past CPU_SETSIZE).
int clinux_pin_thread(pthread_t thread, int cpu);

/// prctl(PR_SET_TIMERSLACK): how late the calling thread's timers may fire, in nanoseconds
/// (prctl is variadic, which Swift cannot call). Returns 0 or -1 with errno set.
int clinux_set_timer_slack(unsigned long nanoseconds);

/// splice(2) between `from` and `to` (one of them a pipe), no offsets, with SPLICE_F_MOVE and
/// SPLICE_F_NONBLOCK: moves page references rather than copying bytes. Returns bytes moved, 0 at
/// the end of stream, or -1 with errno set.
ssize_t clinux_splice(int from, int to, size_t length);

/// pipe2(2) with O_NONBLOCK | O_CLOEXEC; `fds[0]` reads, `fds[1]` writes. Returns 0 or -1 with errno set.
int clinux_pipe(int fds[2]);

/// fcntl(F_SETPIPE_SZ): sets a pipe's capacity; returns the capacity set (the kernel rounds up to
/// pages) or -1 with errno set.
int clinux_set_pipe_size(int fd, int bytes);

/// SPLICE_F_MOVE | SPLICE_F_NONBLOCK, the flags clinux_splice passes (<fcntl.h> declares them
/// only under _GNU_SOURCE): for io_uring's IORING_OP_SPLICE.
#define CLINUX_SPLICE_MOVE_NONBLOCK 3u

/// POLLRDHUP (<poll.h>, _GNU_SOURCE only): the peer shut its writing half down.
#define CLINUX_POLLRDHUP 0x2000u
