/*
 * client/http_unix.c - HTTP/1.1 over a unix socket for the remote driver
 * (http_unix.h): what xe needs to talk to the local xcpd without libcurl.
 * A request is written whole, then the reply is read with poll() against
 * the call's deadline and parsed by http-parser: the head, then the body
 * by Content-Length, in chunks, or up to the close.
 */
#include "http_unix.h"

#include <http_parser.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#define READ_MIN 16384       /* room made for each read */

int xcp__uhttp_init(xcp__uhttp *c, const char *path)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->wake_fd = -1;
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

/* Waits for events on c's socket; XCP__UH_OK, _TIMEOUT, _IO or
 * _INTERRUPTED (c->wake_fd readable). */
static xcp__uh_status wait_fd(xcp__uhttp *c, short events, int64_t deadline)
{
    struct pollfd pf[2] = {{c->fd, events, 0}, {c->wake_fd, POLLIN, 0}};
    int n;

    while ((n = poll(pf, c->wake_fd >= 0 ? 2 : 1, left_ms(deadline))) < 0 &&
           errno == EINTR)
        ;
    if (n < 0) {
        c->err = errno;
        return XCP__UH_IO;
    }
    if (c->wake_fd >= 0 && pf[1].revents)
        return XCP__UH_INTERRUPTED;
    return n == 0 ? XCP__UH_TIMEOUT : XCP__UH_OK;
}

/* Whether c->wake_fd is readable now. */
static bool woken(const xcp__uhttp *c)
{
    struct pollfd pf = {c->wake_fd, POLLIN, 0};

    return c->wake_fd >= 0 && poll(&pf, 1, 0) > 0;
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

/* What the parser's callbacks fill in for one reply (read_reply). */
typedef struct reply_state {
    xcp__buf *reply;   /* the body goes here */
    size_t max;        /* at most this much of it */
    int status;        /* the final (non-1xx) status, once its head is in */
    bool done;         /* the final reply is whole */
    bool too_big;      /* the body went over max */
    bool oom;
} reply_state;

static int on_headers(http_parser *p)
{
    reply_state *r = p->data;

    if (p->status_code < 200) /* 1xx: no body, another head follows */
        return 0;
    r->status = p->status_code;
    /* a declared length over the limit is refused before its body */
    if ((p->flags & F_CHUNKED) == 0 && p->content_length != ULLONG_MAX &&
        p->content_length > r->max) {
        r->too_big = true;
        return -1;
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    reply_state *r = p->data;

    if (r->reply->len + len > r->max) {
        r->too_big = true;
        return -1;
    }
    xcp__buf_add(r->reply, at, len);
    if (r->reply->oom) {
        r->oom = true;
        return -1;
    }
    return 0;
}

static int on_complete(http_parser *p)
{
    reply_state *r = p->data;

    if (p->status_code < 200)
        return 0;
    r->done = true;
    http_parser_pause(p, 1); /* what follows is not this reply's */
    return 0;
}

static const http_parser_settings reply_settings = {
    .on_headers_complete = on_headers,
    .on_body = on_body,
    .on_message_complete = on_complete,
};

/* Feeds what c->in holds (from pos) to the parser; XCP__UH_OK while the
 * reply is not whole or once it is (r->done). */
static xcp__uh_status parse_some(xcp__uhttp *c, http_parser *p,
                                 reply_state *r, bool eof)
{
    size_t n = eof ? 0 : c->in.len - c->pos;
    size_t k = http_parser_execute(p, &reply_settings,
                                   eof ? NULL : c->in.data + c->pos, n);
    enum http_errno e = HTTP_PARSER_ERRNO(p);

    c->pos += k;
    if (e == HPE_OK || (e == HPE_PAUSED && r->done))
        return XCP__UH_OK;
    return r->oom ? XCP__UH_NOMEM : r->too_big ? XCP__UH_TOO_BIG
                                               : XCP__UH_BAD;
}

/* The reply to the request just sent, parsed by http-parser (Debian's
 * libhttp-parser, the parser Node.js used for a decade): the status, and
 * the body (by Content-Length, chunked, or up to the close) into reply. */
static xcp__uh_status read_reply(xcp__uhttp *c, int *status,
                                 xcp__buf *reply, size_t max,
                                 int64_t deadline)
{
    reply_state r = {reply, max, 0, false, false, false};
    xcp__uh_status st;
    http_parser p;

    http_parser_init(&p, HTTP_RESPONSE);
    p.data = &r;
    for (;;) {
        if (c->in.len > c->pos &&
            (st = parse_some(c, &p, &r, false)) != XCP__UH_OK)
            return st;
        if (r.done)
            break;
        st = fill(c, deadline);
        if (st == XCP__UH_CLOSED) {
            /* the end of a body that runs to the close, or a cut reply */
            if (parse_some(c, &p, &r, true) == XCP__UH_OK && r.done)
                break;
            return XCP__UH_CLOSED;
        }
        if (st != XCP__UH_OK)
            return st;
    }
    *status = r.status;
    if (!http_should_keep_alive(&p))
        drop(c);
    return XCP__UH_OK;
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
    if (woken(c))
        return XCP__UH_INTERRUPTED;
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
