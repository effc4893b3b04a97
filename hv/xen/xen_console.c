/*
 * hv/xen/xen_console.c - the consoles of Xen domains (console_open).
 *
 * vt100: the pty xenconsoled gives the domain's console, as `xl console`
 * uses it: /local/domain/<domid>/console/tty for a PV or PVH guest (hvc0),
 * serial/0/tty for an HVM guest's first serial line (QEMU's "pty" serial,
 * which xcp__xen_console_config asks for). A pty is no socket, so a
 * detached thread copies bytes both ways between it and one end of a
 * socketpair; the caller gets the other end. The thread ends when the
 * caller closes its end, or when the pty's master side goes (the domain is
 * gone: xenconsoled closes it), and then the caller reads EOF. Two
 * consoles open on one domain at once share the pty: what the guest
 * prints goes to whichever reads first (as with two `xl console`).
 *
 * rfb: QEMU's VNC server, which libxl starts on 127.0.0.1 (a free port,
 * found by QEMU) and whose port it writes at console/vnc-port. The caller
 * gets the connected TCP socket itself: QEMU speaks RFB 3.8 on it at once.
 */
#ifdef XCP_HAVE_XEN

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "xen_int.h"

#define VNC_LISTEN "127.0.0.1"

struct relay {
    int tty;
    int sock;
};

/* Writes all of buf to fd (a socket: no SIGPIPE); false if fd is gone. */
static bool put_all(int fd, const char *buf, size_t len, bool is_sock)
{
    ssize_t w;

    while (len > 0) {
        w = is_sock ? send(fd, buf, len, MSG_NOSIGNAL) : write(fd, buf, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        buf += w;
        len -= (size_t)w;
    }
    return true;
}

/* pty <-> socket until either side ends. */
static void *relay_main(void *arg)
{
    struct relay *r = arg;
    struct pollfd p[2] = {{r->tty, POLLIN, 0}, {r->sock, POLLIN, 0}};
    char buf[4096];
    ssize_t n;

    for (;;) {
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[0].revents) { /* POLLHUP/POLLERR: read says EIO */
            n = read(r->tty, buf, sizeof(buf));
            if (n <= 0 || !put_all(r->sock, buf, (size_t)n, true))
                break;
        }
        if (p[1].revents) {
            n = read(r->sock, buf, sizeof(buf));
            if (n <= 0 || !put_all(r->tty, buf, (size_t)n, false))
                break;
        }
    }
    close(r->tty);
    close(r->sock);
    free(r);
    return NULL;
}

/* Reads /local/domain/<domid>/<rel>; NULL if absent. Caller frees. */
static char *dom_read(struct xs_handle *xs, uint32_t domid, const char *rel)
{
    char path[128];
    unsigned int len;

    snprintf(path, sizeof(path), "/local/domain/%" PRIu32 "/%s", domid, rel);
    return xs_read(xs, XBT_NULL, path, &len);
}

static int no_console(xcp_hv_error *err, const xcp_hv_domain_info *d,
                      const char *what, const char *key)
{
    return xcp__hv_error_set(err, -ENOTSUP,
                             "xen: domain %" PRIu32 " has no %s (no %s in "
                             "its xenstore home)", d->domid, what, key);
}

static int open_text(struct xs_handle *xs, const xcp_hv_domain_info *d,
                     int *fd, xcp_hv_error *err)
{
    const char *key = d->type == XCP_HV_DOMAIN_HVM ? "serial/0/tty"
                                                   : "console/tty";
    char *tty = dom_read(xs, d->domid, key);
    struct relay *r = NULL;
    struct termios t;
    pthread_attr_t attr;
    pthread_t th;
    int sv[2] = {-1, -1}, t_fd = -1, rc;

    if (!tty || !*tty) {
        free(tty);
        return no_console(err, d, "text console", key);
    }
    t_fd = open(tty, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (t_fd < 0) {
        rc = xcp__hv_error_set(err, -errno,
                               "xen: domain %" PRIu32 ": cannot open its "
                               "console %s: %s", d->domid, tty,
                               strerror(errno));
        goto fail;
    }
    /* bytes as they are, as xl console has them */
    if (tcgetattr(t_fd, &t) == 0) {
        cfmakeraw(&t);
        tcsetattr(t_fd, TCSANOW, &t);
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ||
        !(r = malloc(sizeof(*r)))) {
        rc = errno ? errno : ENOMEM;
        rc = xcp__hv_error_set(err, -rc, "xen: domain %" PRIu32 ": cannot "
                               "open a console stream: %s", d->domid,
                               strerror(rc));
        goto fail;
    }
    r->tty = t_fd;
    r->sock = sv[0];
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&th, &attr, relay_main, r);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        rc = xcp__hv_error_set(err, -rc, "xen: domain %" PRIu32 ": cannot "
                               "start its console thread: %s", d->domid,
                               strerror(rc));
        goto fail;
    }
    free(tty);
    *fd = sv[1];
    return 0;
fail:
    free(r);
    if (t_fd >= 0)
        close(t_fd);
    if (sv[0] >= 0) {
        close(sv[0]);
        close(sv[1]);
    }
    free(tty);
    return rc;
}

static int open_rfb(struct xs_handle *xs, const xcp_hv_domain_info *d,
                    int *fd, xcp_hv_error *err)
{
    char *port = dom_read(xs, d->domid, "console/vnc-port");
    char *host = dom_read(xs, d->domid, "console/vnc-listen");
    struct addrinfo hints, *ai = NULL, *a;
    int s = -1, rc, e = ECONNREFUSED;

    if (!port || !*port) {
        rc = no_console(err, d, "graphical console", "console/vnc-port");
        goto out;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    rc = getaddrinfo(host && *host ? host : VNC_LISTEN, port, &hints, &ai);
    if (rc != 0) {
        rc = xcp__hv_error_set(err, -EINVAL, "xen: domain %" PRIu32 ": VNC "
                               "address %s:%s: %s", d->domid,
                               host ? host : VNC_LISTEN, port,
                               gai_strerror(rc));
        goto out;
    }
    for (a = ai; a && s < 0; a = a->ai_next) {
        s = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC,
                   a->ai_protocol);
        if (s >= 0 && connect(s, a->ai_addr, a->ai_addrlen) < 0) {
            e = errno;
            close(s);
            s = -1;
        }
    }
    if (s < 0) {
        rc = xcp__hv_error_set(err, -e, "xen: domain %" PRIu32 ": cannot "
                               "reach its VNC server at %s:%s: %s",
                               d->domid, host ? host : VNC_LISTEN, port,
                               strerror(e));
        goto out;
    }
    *fd = s;
    rc = 0;
out:
    if (ai)
        freeaddrinfo(ai);
    free(port);
    free(host);
    return rc;
}

int xcp__xen_console_open(struct xs_handle *xs, const xcp_hv_domain_info *d,
                          xcp_hv_console_protocol proto, int *fd,
                          xcp_hv_error *err)
{
    *fd = -1;
    if (d->domid == 0)
        return xcp__hv_error_set(err, -ENOTSUP,
                                 "xen: domain 0's console is the host's, "
                                 "not one xenconsoled serves");
    switch (proto) {
    case XCP_HV_CONSOLE_VT100: return open_text(xs, d, fd, err);
    case XCP_HV_CONSOLE_RFB: return open_rfb(xs, d, fd, err);
    default:
        return xcp__hv_error_set(err, -ENOTSUP,
                                 "xen: domain %" PRIu32 ": no console of "
                                 "protocol %d", d->domid, (int)proto);
    }
}

bool xcp__xen_console_config(libxl_domain_build_info *b)
{
    if (b->type != LIBXL_DOMAIN_TYPE_HVM)
        return true; /* PV and PVH: hvc0, which xenconsoled always serves */
    libxl_defbool_set(&b->u.hvm.vnc.enable, true);
    libxl_defbool_set(&b->u.hvm.vnc.findunused, true);
    free(b->u.hvm.vnc.listen);
    free(b->u.hvm.serial);
    b->u.hvm.vnc.listen = strdup(VNC_LISTEN);
    b->u.hvm.serial = strdup("pty");
    return b->u.hvm.vnc.listen && b->u.hvm.serial;
}

#else
typedef int xcp__hv_xen_console_not_built;
#endif /* XCP_HAVE_XEN */
