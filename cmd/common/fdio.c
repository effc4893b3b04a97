/*
 * fdio: the one write-everything loop of the front ends (fdio.h).
 */
#include "fdio.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

int xcmd_write_with(xcmd_put put, void *arg, int fd, const void *buf,
                    size_t n, int timeout_ms)
{
    const char *p = buf;
    struct pollfd pf;
    ssize_t w;

    while (n > 0) {
        w = put(arg, p, n);
        if (w == XCMD_AGAIN) {
            pf.fd = fd;
            pf.events = POLLOUT;
            pf.revents = 0;
            if (poll(&pf, 1, timeout_ms) > 0
                || (timeout_ms < 0 && errno == EINTR))
                continue;
            return -1;
        }
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* xcmd_put on a descriptor (arg points at it): send(2) without SIGPIPE
 * on a socket, write(2) on anything else. */
static ssize_t fd_put(void *arg, const void *buf, size_t n)
{
    int fd = *(int *)arg;
    ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);

    if (w < 0 && errno == ENOTSOCK)
        w = write(fd, buf, n);

    if (w < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
        return XCMD_AGAIN;
    return w;
}

int xcmd_write_all(int fd, const void *buf, size_t n, int timeout_ms)
{
    return xcmd_write_with(fd_put, &fd, fd, buf, n, timeout_ms);
}
