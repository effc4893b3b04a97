/*
 * client/http_unix.c - HTTP/1.1 over a unix socket for the remote driver
 * (http_unix.h): what xe needs to talk to the local xcpd without libcurl.
 * A request is written whole, then the reply is read with poll() against
 * the call's deadline: the head, then the body by Content-Length, in
 * chunks, or up to the close.
 */
#include "http_unix.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#define HEAD_MAX (64u << 10) /* a reply head, or a chunk's size line */
#define READ_MIN 16384       /* room made for each read */

int xcp__uhttp_init(xcp__uhttp *c, const char *path)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    if (!(c->path = xcp__strdup(path)))
        return xcp__oom();
    return 0;
}

static void drop(xcp__uhttp *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->in.len = 0;
    c->pos = 0;
}

void xcp__uhttp_dispose(xcp__uhttp *c)
{
    drop(c);
    xcp__buf_free(&c->in);
    free(c->path);
    c->path = NULL;
}

int xcp__uhttp_connect(const char *path, int *fd)
{
    struct sockaddr_un sa;
    int s, e;

    *fd = -1;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa.sun_path))
        return ENAMETOOLONG;
    memcpy(sa.sun_path, path, strlen(path));
    if ((s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return errno;
    while (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        if (errno == EINTR)
            continue;
        e = errno;
        close(s);
        return e;
    }
    *fd = s;
    return 0;
}

/* Milliseconds left before deadline (-1: none), at least 0. */
static int left_ms(int64_t deadline)
{
    int64_t n;

    if (deadline == 0)
        return -1;
    n = deadline - xcp__now_ms();
    return n <= 0 ? 0 : n > INT_MAX ? INT_MAX : (int)n;
}

/* Waits for events on c's socket; XCP__UH_OK, _TIMEOUT or _IO. */
static xcp__uh_status wait_fd(xcp__uhttp *c, short events, int64_t deadline)
{
    struct pollfd pf = {c->fd, events, 0};
    int n;

    while ((n = poll(&pf, 1, left_ms(deadline))) < 0 && errno == EINTR)
        ;
    if (n < 0) {
        c->err = errno;
        return XCP__UH_IO;
    }
    return n == 0 ? XCP__UH_TIMEOUT : XCP__UH_OK;
}

/* Writes iov[0, n) whole (iov is consumed). */
static xcp__uh_status send_all(xcp__uhttp *c, struct iovec *iov, int n,
                               int64_t deadline)
{
    struct msghdr m;
    xcp__uh_status st;
    ssize_t k;

    while (n > 0) {
        memset(&m, 0, sizeof(m));
        m.msg_iov = iov;
        m.msg_iovlen = (size_t)n;
        k = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN) {
                c->err = errno;
                return XCP__UH_IO;
            }
            if ((st = wait_fd(c, POLLOUT, deadline)) != XCP__UH_OK)
                return st;
            continue;
        }
        while (n > 0 && (size_t)k >= iov->iov_len) {
            k -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + k;
            iov->iov_len -= (size_t)k;
        }
    }
    return XCP__UH_OK;
}

/* Reads more of the reply into c->in; XCP__UH_CLOSED at the end. */
static xcp__uh_status fill(xcp__uhttp *c, int64_t deadline)
{
    xcp__uh_status st;
    ssize_t k;

    if (c->pos > 0) { /* taken bytes go first */
        memmove(c->in.data, c->in.data + c->pos, c->in.len - c->pos);
        c->in.len -= c->pos;
        c->pos = 0;
    }
    if (c->in.cap - c->in.len < READ_MIN) {
        size_t cap = c->in.len + 4 * READ_MIN;
        char *p = xcp__realloc(c->in.data, cap);
        if (!p)
            return XCP__UH_NOMEM;
        c->in.data = p;
        c->in.cap = cap;
    }
    for (;;) {
        k = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len,
                 MSG_DONTWAIT);
        if (k > 0) {
            c->in.len += (size_t)k;
            return XCP__UH_OK;
        }
        if (k == 0)
            return XCP__UH_CLOSED;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN) {
            c->err = errno;
            return XCP__UH_IO;
        }
        if ((st = wait_fd(c, POLLIN, deadline)) != XCP__UH_OK)
            return st;
    }
}

/* The next line ("\r\n" or "\n" ended, at most HEAD_MAX): *line points
 * into c->in (valid until the next fill), NUL-terminated, ending cut. */
static xcp__uh_status next_line(xcp__uhttp *c, char **line, int64_t deadline)
{
    xcp__uh_status st;
    char *s, *nl;

    for (;;) {
        s = c->in.data + c->pos;
        if (c->in.len > c->pos &&
            (nl = memchr(s, '\n', c->in.len - c->pos)) != NULL) {
            c->pos += (size_t)(nl + 1 - s);
            if (nl > s && nl[-1] == '\r')
                nl--;
            *nl = '\0';
            *line = s;
            return XCP__UH_OK;
        }
        if (c->in.len - c->pos > HEAD_MAX)
            return XCP__UH_BAD;
        if ((st = fill(c, deadline)) != XCP__UH_OK)
            return st;
    }
}

/* Moves n bytes of body (or, n == SIZE_MAX, all up to the close) from
 * the stream to reply. */
static xcp__uh_status take(xcp__uhttp *c, size_t n, xcp__buf *reply,
                           size_t max, int64_t deadline)
{
    xcp__uh_status st;
    size_t k;

    for (;;) {
        k = c->in.len - c->pos;
        if (k > n)
            k = n;
        if (reply->len + k > max)
            return XCP__UH_TOO_BIG;
        xcp__buf_add(reply, c->in.data + c->pos, k);
        if (reply->oom)
            return XCP__UH_NOMEM;
        c->pos += k;
        if (n != SIZE_MAX)
            n -= k;
        if (n == 0)
            return XCP__UH_OK;
        st = fill(c, deadline);
        if (st == XCP__UH_CLOSED && n == SIZE_MAX)
            return XCP__UH_OK;
        if (st != XCP__UH_OK)
            return st;
    }
}

/* A chunked body (RFC 9112 7.1), its trailer lines skipped. */
static xcp__uh_status take_chunked(xcp__uhttp *c, xcp__buf *reply,
                                   size_t max, int64_t deadline)
{
    xcp__uh_status st;
    unsigned long long size;
    char *line, *end;

    for (;;) {
        if ((st = next_line(c, &line, deadline)) != XCP__UH_OK)
            return st;
        errno = 0;
        size = strtoull(line, &end, 16);
        if (end == line || errno || (*end && *end != ';' && *end != ' ' &&
                                     *end != '\t'))
            return XCP__UH_BAD;
        if (size > max)
            return XCP__UH_TOO_BIG;
        if (size == 0)
            break;
        if ((st = take(c, (size_t)size, reply, max, deadline)) !=
                XCP__UH_OK ||
            (st = next_line(c, &line, deadline)) != XCP__UH_OK)
            return st;
        if (*line)
            return XCP__UH_BAD;
    }
    do { /* trailers, up to the empty line */
        if ((st = next_line(c, &line, deadline)) != XCP__UH_OK)
            return st;
    } while (*line);
    return XCP__UH_OK;
}

/* Does the header line's value (after "name:") hold token, any case? */
static bool header_has(const char *line, const char *name, const char *token)
{
    size_t n = strlen(name);

    return strncasecmp(line, name, n) == 0 && line[n] == ':' &&
           strcasestr(line + n + 1, token) != NULL;
}

/* The reply to the request just sent: head, then body into reply. */
static xcp__uh_status read_reply(xcp__uhttp *c, int *status,
                                 xcp__buf *reply, size_t max,
                                 int64_t deadline)
{
    xcp__uh_status st;
    char *line, *end;
    int minor;
    bool chunked, close_after, has_len;
    unsigned long long clen;

    do { /* 1xx heads come before the real one */
        if ((st = next_line(c, &line, deadline)) != XCP__UH_OK)
            return st;
        if (sscanf(line, "HTTP/1.%d %3d", &minor, status) != 2 ||
            *status < 100)
            return XCP__UH_BAD;
        chunked = has_len = false;
        close_after = minor == 0;
        clen = 0;
        while ((st = next_line(c, &line, deadline)) == XCP__UH_OK && *line) {
            if (header_has(line, "Transfer-Encoding", "chunked")) {
                chunked = true;
            } else if (header_has(line, "Connection", "close")) {
                close_after = true;
            } else if (header_has(line, "Connection", "keep-alive")) {
                close_after = false;
            } else if (strncasecmp(line, "Content-Length:", 15) == 0) {
                errno = 0;
                clen = strtoull(line + 15, &end, 10);
                if (errno || end == line + 15)
                    return XCP__UH_BAD;
                has_len = true;
            }
        }
        if (st != XCP__UH_OK)
            return st;
    } while (*status < 200);

    if (*status == 204 || *status == 304)
        st = XCP__UH_OK;
    else if (chunked)
        st = take_chunked(c, reply, max, deadline);
    else if (has_len)
        st = clen > max ? XCP__UH_TOO_BIG
                        : take(c, (size_t)clen, reply, max, deadline);
    else {
        close_after = true;
        st = take(c, SIZE_MAX, reply, max, deadline);
    }
    if (st == XCP__UH_OK && close_after)
        drop(c);
    return st;
}

/* One try of the request on c's connection (opened if need be). */
static xcp__uh_status post_once(xcp__uhttp *c, const char *target,
                                const char *headers, const void *body,
                                size_t len, int64_t deadline, int *status,
                                xcp__buf *reply, size_t max)
{
    struct iovec iov[2];
    xcp__uh_status st;
    char *head;

    c->sent = false;
    if (c->fd < 0) {
        int fl;
        if ((c->err = xcp__uhttp_connect(c->path, &c->fd)) != 0)
            return XCP__UH_CONNECT;
        fl = fcntl(c->fd, F_GETFL);
        if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) < 0) {
            c->err = errno;
            return XCP__UH_IO;
        }
    }
    head = xcp__printf("POST %s HTTP/1.1\r\nHost: localhost\r\n%s"
                       "Content-Length: %zu\r\n\r\n",
                       target, headers ? headers : "", len);
    if (!head)
        return XCP__UH_NOMEM;
    iov[0].iov_base = head;
    iov[0].iov_len = strlen(head);
    iov[1].iov_base = (void *)body;
    iov[1].iov_len = len;
    st = send_all(c, iov, len ? 2 : 1, deadline);
    free(head);
    if (st != XCP__UH_OK)
        return st;
    c->sent = true;
    return read_reply(c, status, reply, max, deadline);
}

xcp__uh_status xcp__uhttp_post(xcp__uhttp *c, const char *target,
                               const char *headers, const void *body,
                               size_t len, long timeout_ms, int *status,
                               xcp__buf *reply, size_t max)
{
    int64_t deadline = timeout_ms > 0 ? xcp__now_ms() + timeout_ms : 0;
    size_t start = reply->len;
    bool kept = c->fd >= 0;
    xcp__uh_status st;

    *status = 0;
    c->err = 0;
    /* A reply left half-read (a timeout) makes the stream useless. */
    if (c->in.len > c->pos)
        drop(c);
    st = post_once(c, target, headers, body, len, deadline, status, reply,
                   max);
    /* A kept connection the server closed while it was idle fails before
     * any answer: the request is sent again on a new one, once. */
    if (kept && reply->len == start && *status == 0 &&
        (st == XCP__UH_CLOSED ||
         (st == XCP__UH_IO && (c->err == EPIPE || c->err == ECONNRESET)))) {
        drop(c);
        st = post_once(c, target, headers, body, len, deadline, status,
                       reply, max);
    }
    if (st != XCP__UH_OK)
        drop(c);
    return st;
}
