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
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* Socket reads under TLS take this much at a time. */
#define READ_AHEAD ((size_t)256 * 1024)

/* The io whose socket this thread reads ahead on, while in a read. */
static __thread xcpd_io *reading;

/* GnuTLS's pull for a taken session: on the thread reading it through
   xcpd_io_read, one recv of up to READ_AHEAD bytes serves many records
   (GnuTLS asks for a record's header, then its body: two recv calls per
   16 KiB otherwise); elsewhere (MHD's thread once the connection is
   handed back, which only closes it) a plain recv. Bytes read ahead are
   always handed out before the socket is read again, so a poll for more
   happens only when none are left. */
static ssize_t io_pull(gnutls_transport_ptr_t ptr, void *data, size_t len)
{
    int fd = (int)(intptr_t)ptr;
    xcpd_io *x = reading;
    ssize_t r;

    if (x == NULL || x->fd != fd)
        return recv(fd, data, len, 0);
    if (x->rpos == x->rlen) {
        r = recv(fd, x->rbuf, READ_AHEAD, 0);
        if (r <= 0)
            return r;
        x->rpos = 0;
        x->rlen = (size_t)r;
    }
    if (len > x->rlen - x->rpos)
        len = x->rlen - x->rpos;
    memcpy(data, x->rbuf + x->rpos, len);
    x->rpos += len;
    return (ssize_t)len;
}

/* Read ahead on x's socket from now on: once its session's transport is
   known to be that socket, and the buffer is there. */
static void read_ahead_start(xcpd_io *x)
{
    if (x->rbuf != NULL || x->no_read_ahead)
        return;
    if (gnutls_transport_get_int(x->tls) != x->fd ||
        (x->rbuf = malloc(READ_AHEAD)) == NULL) {
        x->no_read_ahead = 1;
        return;
    }
    x->rpos = x->rlen = 0;
    gnutls_transport_set_pull_function(x->tls, io_pull);
}

ssize_t xcpd_io_read(xcpd_io *x, void *buf, size_t n)
{
    ssize_t r;

    if (x->tls != NULL) {
        read_ahead_start(x);
        reading = x;
        r = gnutls_record_recv(x->tls, buf, n);
        reading = NULL;
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
    return x->tls != NULL && (gnutls_record_check_pending(x->tls) > 0 ||
                              x->rpos < x->rlen);
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

#define WRITE_TIMEOUT_MS 30000
/* Writes from this size on go through the write-combining push. */
#define COMBINE_MIN ((size_t)64 * 1024)
/* The combining buffer: the largest block a writer hands over in one
   piece (http.c's 1 MiB), with room for each record's framing. */
#define COMBINE_CAP ((size_t)1024 * 1024 + 128 * 1024)

/* Wait until fd can take more: 0, or -1 (errno set; ETIMEDOUT). */
static int wait_out(int fd)
{
    struct pollfd pf;
    int r;

    pf.fd = fd;
    pf.events = POLLOUT;
    pf.revents = 0;
    do
        r = poll(&pf, 1, WRITE_TIMEOUT_MS);
    while (r < 0 && errno == EINTR);
    if (r == 0)
        errno = ETIMEDOUT;
    return r > 0 ? 0 : -1;
}

/* All of [p, p + n) on non-blocking socket fd: 0, or -1 (errno set). */
static int send_all(int fd, const char *p, size_t n)
{
    ssize_t w;

    while (n > 0) {
        w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return -1;
        if (wait_out(fd) < 0)
            return -1;
    }
    return 0;
}

/* The io whose TLS records this thread gathers, while it has one. */
static __thread xcpd_io *combining;

/* GnuTLS's push for a taken session: while this thread writes a large
   block (xcpd_io_write), the records gather in the io's buffer and go
   out in a few sends when the block is done, instead of one send per
   16 KiB record; otherwise (MHD's own thread, which closes the session
   once handed back) one sendmsg, as GnuTLS's own push. */
static ssize_t io_vec_push(gnutls_transport_ptr_t ptr, const giovec_t *iov,
                           int iovcnt)
{
    int fd = (int)(intptr_t)ptr;
    xcpd_io *x = combining;
    struct msghdr m;
    size_t total = 0;
    int i;

    if (x == NULL || x->fd != fd) {
        memset(&m, 0, sizeof(m));
        m.msg_iov = (struct iovec *)iov;
        m.msg_iovlen = (size_t)(iovcnt < 1024 ? iovcnt : 1024); /* Linux IOV_MAX */
        return sendmsg(fd, &m, MSG_NOSIGNAL);
    }
    for (i = 0; i < iovcnt; i++) {
        if (x->wlen + iov[i].iov_len > COMBINE_CAP) {
            if (send_all(fd, x->wbuf, x->wlen) < 0)
                return -1;
            x->wlen = 0;
        }
        if (iov[i].iov_len > COMBINE_CAP) {
            if (send_all(fd, iov[i].iov_base, iov[i].iov_len) < 0)
                return -1;
        } else {
            memcpy(x->wbuf + x->wlen, iov[i].iov_base, iov[i].iov_len);
            x->wlen += iov[i].iov_len;
        }
        total += iov[i].iov_len;
    }
    return (ssize_t)total;
}

/* A large block over TLS, its records gathered; -1 to fall back to one
   send per record (the session's transport is not the io's socket, or
   no memory). */
static int tls_write_combined(xcpd_io *x, const char *p, size_t n)
{
    ssize_t w;
    int ok = 1;

    if (gnutls_transport_get_int(x->tls) != x->fd)
        return -1;
    if (x->wbuf == NULL && (x->wbuf = malloc(COMBINE_CAP)) == NULL)
        return -1;
    gnutls_transport_set_vec_push_function(x->tls, io_vec_push);
    x->wlen = 0;
    combining = x;
    while (ok && n > 0) {
        w = gnutls_record_send(x->tls, p, n);
        if (w == GNUTLS_E_INTERRUPTED || w == GNUTLS_E_AGAIN)
            continue;
        if (w <= 0)
            ok = 0;
        else {
            p += w;
            n -= (size_t)w;
        }
    }
    combining = NULL;
    if (ok && send_all(x->fd, x->wbuf, x->wlen) < 0)
        ok = 0;
    x->wlen = 0;
    return ok ? 0 : -2;
}

int xcpd_io_write(xcpd_io *x, const void *buf, size_t n)
{
    int r;

    if (x->tls != NULL && n >= COMBINE_MIN &&
        (r = tls_write_combined(x, buf, n)) != -1)
        return r == 0 ? 0 : -1;
    return xcmd_write_with(io_put, x, x->fd, buf, n, WRITE_TIMEOUT_MS);
}

/* The file's bytes read and written: 0, or -1. */
static int send_file_copy(xcpd_io *x, int fd, uint64_t pos, size_t len,
                          char *buf, size_t cap)
{
    ssize_t r;

    while (len > 0) {
        r = pread(fd, buf, len < cap ? len : cap, (off_t)pos);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r == 0)
                errno = EIO;    /* the file is shorter than said */
            return -1;
        }
        if (xcpd_io_write(x, buf, (size_t)r) < 0)
            return -1;
        pos += (uint64_t)r;
        len -= (size_t)r;
    }
    return 0;
}

int xcpd_io_send_file(xcpd_io *x, int fd, uint64_t pos, size_t len,
                      char *buf, size_t cap)
{
    off_t at = (off_t)pos;
    ssize_t w;

    while (len > 0 && x->tls == NULL && !x->no_sendfile) {
        w = sendfile(x->fd, fd, &at, len);
        if (w > 0) {
            len -= (size_t)w;
            continue;
        }
        if (w == 0) {
            errno = EIO;        /* the file is shorter than said */
            return -1;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (wait_out(x->fd) < 0)
                return -1;
            continue;
        }
        if (errno != EINVAL && errno != ENOSYS)
            return -1;
        x->no_sendfile = 1;     /* this pair cannot: bytes from now on */
    }
    return len > 0 ? send_file_copy(x, fd, (uint64_t)at, len, buf, cap) : 0;
}

void xcpd_io_release(xcpd_io *x)
{
    free(x->wbuf);
    x->wbuf = NULL;
    x->wlen = 0;
    free(x->rbuf);
    x->rbuf = NULL;
    x->rpos = x->rlen = 0;
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
    x->wbuf = x->rbuf = NULL;
    x->wlen = x->rpos = x->rlen = 0;
    x->no_read_ahead = 0;
    x->no_sendfile = getenv("XCP_NO_SENDFILE") != NULL;
    MHD_suspend_connection(c);
    return 0;
}
