// Umbrella header for liburing. The order matters:
// <sys/types.h> first (liburing defines _XOPEN_SOURCE, which would otherwise hide fd_set from
// Glibc's module), then the kernel's <linux/io_uring.h> (so that swift-system or Glibc importing
// it too does not see a second definition of io_uring_sqe), then liburing itself.
#pragma once
#include <sys/types.h>
#include <sys/socket.h>
#include <linux/io_uring.h>
#include <liburing.h>
