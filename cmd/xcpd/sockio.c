/*
 * xcpd: I/O on a client connection taken from libmicrohttpd (suspended,
 * so MHD neither reads, writes nor times it out): its socket for plain
 * listeners, the connection's own GnuTLS session for TLS ones. Used by
 * the CONNECT console (console.c) and by imports whose body runs until
 * the client closes (http.c).
 */
#include "xcpd.h"
#include "../common/fdio.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>

ssize_t xcpd_io_read(xcpd_io *x, void *buf, size_t n)
{
    ssize_t r;

    if (x->tls != NULL) {
        r = gnutls_record_recv(x->tls, buf, n);
        if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
            return -2;
        /* A peer that closes without close_notify has still closed (a
           body read until close ends so, as behind XAPI's stunnel). */
        if (r == GNUTLS_E_PREMATURE_TERMINATION)
            return 0;
        return r < 0 ? -1 : r;
    }
    r = recv(x->fd, buf, n, MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return -2;
    return r;
}

int xcpd_io_pending(xcpd_io *x)
{
    return x->tls != NULL && gnutls_record_check_pending(x->tls) > 0;
}

/* xcmd_put on an io: its TLS session, or its socket without blocking. */
static ssize_t io_put(void *arg, const void *buf, size_t n)
{
    xcpd_io *x = arg;
    ssize_t w;

    if (x->tls != NULL) {
        w = gnutls_record_send(x->tls, buf, n);
        if (w == GNUTLS_E_AGAIN || w == GNUTLS_E_INTERRUPTED)
            return XCMD_AGAIN;
        return w;
    }
    w = send(x->fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return XCMD_AGAIN;
    return w;
}

int xcpd_io_write(xcpd_io *x, const void *buf, size_t n)
{
    return xcmd_write_with(io_put, x, x->fd, buf, n, 30000);
}

ssize_t xcpd_io_read_wait(xcpd_io *x, void *buf, size_t n, int timeout_ms)
{
    struct pollfd pf;
    ssize_t r;

    /* Read first and poll only when nothing is there: a busy upload then
       costs one syscall per buffer, not two. */
    while ((r = xcpd_io_read(x, buf, n)) == -2) {
        pf.fd = x->fd;
        pf.events = POLLIN;
        r = poll(&pf, 1, timeout_ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r == 0 ? -3 : -1;
    }
    return r;
}

ssize_t xcpd_io_read_fill(xcpd_io *x, void *buf, size_t n, int timeout_ms,
                          ssize_t *end)
{
    size_t have;
    ssize_t r;

    if (*end <= 0)
        return *end;
    r = xcpd_io_read_wait(x, buf, n, timeout_ms);
    /* Then what is there already, without waiting: over TLS each read
       gives one record (16 KiB), which would otherwise be one write of
       the disk each. An end or error after some bytes is kept for the
       next call (GnuTLS does not say it twice). */
    for (have = r > 0 ? (size_t)r : n; have < n; have += (size_t)r)
        if ((r = xcpd_io_read(x, (char *)buf + have, n - have)) <= 0) {
            if (r != -2)
                *end = r;
            return (ssize_t)have;
        }
    return r > 0 ? (ssize_t)have : r;
}

int xcpd_io_take(struct MHD_Connection *c, xcpd_io *x)
{
    const union MHD_ConnectionInfo *fd, *tls;

    fd = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    tls = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (fd == NULL)
        return -1;
    x->fd = fd->connect_fd;
    x->tls = tls != NULL ? (gnutls_session_t)tls->tls_session : NULL;
    MHD_suspend_connection(c);
    return 0;
}
