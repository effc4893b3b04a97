/*
 * fdio: the front ends' (xe, xcpd) one loop that writes a whole buffer,
 * on a file descriptor or through a caller's own writer (a TLS session).
 * Compiled into each front end by its Makefile fragment; uses libc only.
 */
#ifndef XCP_CMD_FDIO_H
#define XCP_CMD_FDIO_H

#include <stddef.h>
#include <sys/types.h>

/* What an xcmd_put returns when the descriptor cannot take bytes now:
 * xcmd_write_with() then waits for it to be writable and calls again. */
#define XCMD_AGAIN (-2)

/*
 * One write of at most n bytes of buf for arg: the count written (> 0),
 * XCMD_AGAIN when it would block or was interrupted, anything else <= 0
 * when the other end is gone.
 */
typedef ssize_t (*xcmd_put)(void *arg, const void *buf, size_t n);

/*
 * Writes all n bytes of buf with put(arg, ...), waiting up to timeout_ms
 * (-1: without end) for fd to be writable each time put answers
 * XCMD_AGAIN. Returns 0, or -1 when put fails or the wait times out.
 */
int xcmd_write_with(xcmd_put put, void *arg, int fd, const void *buf,
                    size_t n, int timeout_ms);

/*
 * Writes all n bytes of buf to fd, blocking or not (EINTR retried; EAGAIN
 * waits up to timeout_ms, -1: without end): a socket with send(2) and
 * MSG_NOSIGNAL (a closed peer is an error, not SIGPIPE), anything else
 * with write(2). Returns 0, or -1 when fd fails (errno says why) or the
 * wait times out.
 */
int xcmd_write_all(int fd, const void *buf, size_t n, int timeout_ms);

#endif
