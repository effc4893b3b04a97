/*
 * hv/xen/xen_watch.c - the xen driver's event source and its guest agent
 * channel.
 *
 * Event fd: Xen signals a domain's creation, shutdown and death (VIRQ_DOM_EXC,
 * or xenstored's @introduceDomain/@releaseDomain), but nothing at all for a
 * pause or an unpause: `xl pause` behind the toolstack's back would go
 * unnoticed. So the event fd is an epoll set that also holds a timer of
 * XCP_XEN_TICK_MS (1 s). Each tick makes the caller run event_read, which
 * does what every notification does: one xc_domain_getinfolist hypercall
 * for all domains, compared with the previous answer (xen.c's rescan).
 * The cost is one hypercall a second whose work is proportional to the
 * domains running, never to the VMs in the database, and a change
 * (paused flag included) is reported within a second. We chose this over
 * a per-domain poll (cost per VM) and over a thread of our own (the
 * instance is single-threaded: it would need a lock around every call).
 * A domain that vanished between two ticks is simply reported as gone.
 *
 * Guest agent: XCP-ng's guest tools write below the domain's xenstore
 * home (data/os_name, attr/PVAddons/..., attr/vif/0/ipv4/0, data/meminfo_
 * free...). The driver watches each live domain's data/ and attr/ (token
 * "xcp-guest/<domid>") on the same xenstore connection, so a write by the
 * guest makes the epoll set readable and event_read reports the domain;
 * nothing polls xenstore.
 */
#ifdef XCP_HAVE_XEN

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "xen_int.h"

#define TOKEN "xcp-guest/"
#define GUEST_MAX 256   /* entries a guest may report; the rest is ignored */
#define GUEST_DEPTH 5   /* attr/vif/0/ipv4/0 */

static const char *const subtrees[] = {"data", "attr"};

/* ---- the event fd -------------------------------------------------------- */

static int epoll_add(int epfd, int fd)
{
    struct epoll_event e;

    memset(&e, 0, sizeof(e));
    e.events = EPOLLIN;
    e.data.fd = fd;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e) == 0 || errno == EEXIST)
        return 0;
    return -errno;
}

int xcp__xen_events_open(xcp__xen_events *ev, int src_fd, int xs_fd,
                         xcp_hv_error *err)
{
    struct itimerspec tick;
    int rc;

    ev->epfd = epoll_create1(EPOLL_CLOEXEC);
    ev->timerfd = timerfd_create(CLOCK_MONOTONIC,
                                 TFD_NONBLOCK | TFD_CLOEXEC);
    if (ev->epfd < 0 || ev->timerfd < 0) {
        rc = -errno;
        goto fail;
    }
    memset(&tick, 0, sizeof(tick));
    tick.it_interval.tv_sec = XCP_XEN_TICK_MS / 1000;
    tick.it_interval.tv_nsec = (XCP_XEN_TICK_MS % 1000) * 1000000L;
    tick.it_value = tick.it_interval;
    if (timerfd_settime(ev->timerfd, 0, &tick, NULL) < 0) {
        rc = -errno;
        goto fail;
    }
    if ((rc = epoll_add(ev->epfd, src_fd)) < 0 ||
        (rc = epoll_add(ev->epfd, xs_fd)) < 0 ||
        (rc = epoll_add(ev->epfd, ev->timerfd)) < 0)
        goto fail;
    return 0;
fail:
    xcp__xen_events_close(ev);
    return xcp__hv_error_set(err, rc,
                             "xen: cannot set up the event fd (epoll, "
                             "timerfd): %s", strerror(-rc));
}

void xcp__xen_events_close(xcp__xen_events *ev)
{
    if (ev->epfd >= 0)
        close(ev->epfd);
    if (ev->timerfd >= 0)
        close(ev->timerfd);
    ev->epfd = ev->timerfd = -1;
}

void xcp__xen_events_drain(xcp__xen_events *ev, struct xs_handle *xs,
                           xcp__hv_dirty *dirty)
{
    uint64_t ticks;
    char **w, *end;
    unsigned long id;

    if (ev->timerfd >= 0 && read(ev->timerfd, &ticks, sizeof(ticks)) < 0)
        ticks = 0; /* EAGAIN: the timer had not fired */
    while ((w = xs_check_watch(xs)) != NULL) {
        if (!strncmp(w[XS_WATCH_TOKEN], TOKEN, strlen(TOKEN))) {
            errno = 0;
            id = strtoul(w[XS_WATCH_TOKEN] + strlen(TOKEN), &end, 10);
            if (!errno && !*end && id <= UINT32_MAX)
                xcp__hv_dirty_mark(dirty, (uint32_t)id);
        }
        free(w);
    }
}

/* ---- the guest agent ----------------------------------------------------- */

void xcp__xen_guest_watch(struct xs_handle *xs, uint32_t domid, bool on)
{
    char path[64], token[32];
    size_t i;

    if (domid == 0)
        return; /* the control domain runs no guest agent */
    snprintf(token, sizeof(token), TOKEN "%" PRIu32, domid);
    for (i = 0; i < sizeof(subtrees) / sizeof(subtrees[0]); i++) {
        snprintf(path, sizeof(path), "/local/domain/%" PRIu32 "/%s", domid,
                 subtrees[i]);
        /* a failure leaves the keys unwatched, not the domain */
        if (on)
            (void)xs_watch(xs, path, token);
        else
            (void)xs_unwatch(xs, path, token);
    }
}

struct walk {
    struct xs_handle *xs;
    size_t home_len; /* of "/local/domain/<domid>/" */
    xcp_hv_guest_datum *v;
    size_t n;
};

/* Adds path's value (if any) and walks its children, depth levels down. */
static int walk(struct walk *w, const char *path, int depth)
{
    xcp_hv_guest_datum *d;
    unsigned int len, nkids, i;
    char **kids, *val, child[256];
    const char *rel = path + w->home_len;
    int rc = 0;

    if (w->n >= GUEST_MAX)
        return 0;
    val = xs_read(w->xs, XBT_NULL, path, &len);
    if (val && *val && strlen(rel) < XCP_HV_GUEST_PATH_MAX) {
        d = &w->v[w->n++];
        snprintf(d->path, sizeof(d->path), "%s", rel);
        snprintf(d->value, sizeof(d->value), "%s", val);
    }
    free(val);
    if (depth == 0)
        return 0;
    kids = xs_directory(w->xs, XBT_NULL, path, &nkids);
    for (i = 0; kids && i < nkids && rc == 0; i++) {
        if ((size_t)snprintf(child, sizeof(child), "%s/%s", path, kids[i]) <
            sizeof(child))
            rc = walk(w, child, depth - 1);
    }
    free(kids);
    return rc;
}

int xcp__xen_guest_data(struct xs_handle *xs, uint32_t domid,
                        xcp_hv_guest_datum **out, size_t *n,
                        xcp_hv_error *err)
{
    struct walk w;
    char path[64];
    size_t i;

    *out = NULL;
    *n = 0;
    w.xs = xs;
    w.n = 0;
    w.home_len = (size_t)snprintf(path, sizeof(path),
                                  "/local/domain/%" PRIu32 "/", domid);
    w.v = calloc(GUEST_MAX, sizeof(*w.v));
    if (!w.v)
        return xcp__hv_error_set(err, -ENOMEM, "xen: out of memory");
    for (i = 0; i < sizeof(subtrees) / sizeof(subtrees[0]); i++) {
        snprintf(path + w.home_len, sizeof(path) - w.home_len, "%s",
                 subtrees[i]);
        walk(&w, path, GUEST_DEPTH);
    }
    if (w.n == 0) {
        free(w.v);
        return 0;
    }
    *out = w.v;
    *n = w.n;
    return 0;
}

#else
typedef int xcp__hv_xen_watch_not_built;
#endif /* XCP_HAVE_XEN */
