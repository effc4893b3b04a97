/*
 * A closed process group: every member delivers the group's messages in
 * the same (agreed) order, membership changes at the same point of that
 * order. The replication stream of docs/design-pool.md §3 travels here;
 * this file only numbers what it delivers (seq) and hands it over.
 */
#include "cluster.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <corosync/corotypes.h>
#include <corosync/cpg.h>

struct xcp__cpg {
    cpg_handle_t h;
    struct cpg_name name;
    xcp__cpg_callbacks cb;
    void *arg;
    uint64_t seq;
    uint32_t nodeid;
    int fd;
};

static int fail(xcp__cluster_err *err, int rc, const char *what, cs_error_t e)
{
    return xcp__cluster_fail(err, rc, "%s: corosync error %d", what, (int)e);
}

static int cs_errno(cs_error_t e)
{
    switch (e) {
    case CS_OK:
        return 0;
    case CS_ERR_LIBRARY:
    case CS_ERR_BAD_HANDLE:
        return -ENOTCONN;
    case CS_ERR_NO_MEMORY:
        return -ENOMEM;
    case CS_ERR_TRY_AGAIN:
        return -EAGAIN;
    case CS_ERR_INVALID_PARAM:
    case CS_ERR_NAME_TOO_LONG:
        return -EINVAL;
    case CS_ERR_TOO_BIG:
        return -EMSGSIZE;
    case CS_ERR_EXIST:
        return -EEXIST;
    default:
        return -EIO;
    }
}

static void on_deliver(cpg_handle_t h, const struct cpg_name *group,
                       uint32_t nodeid, uint32_t pid, void *msg, size_t len)
{
    xcp__cpg *g = NULL;

    (void)group;
    if (cpg_context_get(h, (void **)&g) != CS_OK || g == NULL)
        return;
    g->seq++;
    if (g->cb.deliver)
        g->cb.deliver(g->arg, g->seq, nodeid, pid, msg, len);
}

/* Copy n addresses into m; corosync reports at most CPG_MEMBERS_MAX. */
static size_t members(xcp__cpg_member *m, const struct cpg_address *a,
                      size_t n)
{
    size_t i;

    if (n > CPG_MEMBERS_MAX)
        n = CPG_MEMBERS_MAX;
    for (i = 0; i < n; i++) {
        m[i].nodeid = a[i].nodeid;
        m[i].pid = a[i].pid;
    }
    return n;
}

static void on_confchg(cpg_handle_t h, const struct cpg_name *group,
                       const struct cpg_address *all, size_t nall,
                       const struct cpg_address *left, size_t nleft,
                       const struct cpg_address *joined, size_t njoined)
{
    /* On the stack: a change of membership is never dropped for want of
     * memory (3 kB). */
    xcp__cpg_member a[CPG_MEMBERS_MAX], l[CPG_MEMBERS_MAX],
        j[CPG_MEMBERS_MAX];
    xcp__cpg *g = NULL;

    (void)group;
    if (cpg_context_get(h, (void **)&g) != CS_OK || g == NULL ||
        g->cb.members == NULL)
        return;
    nall = members(a, all, nall);
    nleft = members(l, left, nleft);
    njoined = members(j, joined, njoined);
    g->cb.members(g->arg, a, nall, l, nleft, j, njoined);
}

int xcp__cpg_open(xcp__cpg **out, const char *group,
                  const xcp__cpg_callbacks *cb, void *arg,
                  xcp__cluster_err *err)
{
    cpg_callbacks_t callbacks = {on_deliver, on_confchg};
    xcp__cpg *g;
    cs_error_t e;
    size_t n = strlen(group);
    int tries;

    *out = NULL;
    if (n == 0 || n >= CPG_MAX_NAME_LENGTH)
        return xcp__cluster_fail(err, -EINVAL,
                                 "group name of %zu bytes (1 to %d)", n,
                                 CPG_MAX_NAME_LENGTH - 1);
    g = calloc(1, sizeof(*g));
    if (g == NULL)
        return xcp__cluster_fail(err, -ENOMEM, "out of memory");
    g->cb = *cb;
    g->arg = arg;
    g->name.length = (uint32_t)n;
    memcpy(g->name.value, group, n);
    e = cpg_initialize(&g->h, &callbacks);
    if (e != CS_OK) {
        free(g);
        return fail(err, -ENOTCONN, "cpg_initialize (is corosync running?)",
                    e);
    }
    if ((e = cpg_context_set(g->h, g)) != CS_OK ||
        (e = cpg_local_get(g->h, &g->nodeid)) != CS_OK ||
        (e = cpg_fd_get(g->h, &g->fd)) != CS_OK) {
        cpg_finalize(g->h);
        free(g);
        return fail(err, cs_errno(e), "cpg setup", e);
    }
    /* CS_ERR_TRY_AGAIN while corosync is still forming its membership. */
    for (tries = 0; (e = cpg_join(g->h, &g->name)) == CS_ERR_TRY_AGAIN &&
                    tries < 100;
         tries++) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (e != CS_OK) {
        cpg_finalize(g->h);
        free(g);
        return fail(err, cs_errno(e), "cpg_join", e);
    }
    *out = g;
    return 0;
}

int xcp__cpg_fd(xcp__cpg *g)
{
    return g->fd;
}

uint32_t xcp__cpg_nodeid(xcp__cpg *g)
{
    return g->nodeid;
}

int xcp__cpg_dispatch(xcp__cpg *g, int timeout_ms, xcp__cluster_err *err)
{
    struct pollfd p = {g->fd, POLLIN, 0};
    cs_error_t e;
    int r;

    r = poll(&p, 1, timeout_ms);
    if (r < 0)
        return errno == EINTR ? 0 : -errno;
    if (r == 0)
        return 0;
    if (p.revents & (POLLHUP | POLLERR) && !(p.revents & POLLIN))
        return xcp__cluster_fail(err, -ENOTCONN, "cpg: corosync went away");
    e = cpg_dispatch(g->h, CS_DISPATCH_ALL);
    if (e != CS_OK && e != CS_ERR_TRY_AGAIN)
        return fail(err, cs_errno(e), "cpg_dispatch", e);
    return 1;
}

int xcp__cpg_send(xcp__cpg *g, const void *msg, size_t len,
                  xcp__cluster_err *err)
{
    struct iovec iov = {(void *)msg, len};
    cs_error_t e;

    /* A full queue (flow control) empties as corosync sends: let the
     * callbacks run meanwhile, they may be what the group waits for. */
    while ((e = cpg_mcast_joined(g->h, CPG_TYPE_AGREED, &iov, 1)) ==
           CS_ERR_TRY_AGAIN) {
        int r = xcp__cpg_dispatch(g, 10, err);
        if (r < 0)
            return r;
    }
    if (e != CS_OK)
        return fail(err, cs_errno(e), "cpg_mcast_joined", e);
    return 0;
}

void xcp__cpg_close(xcp__cpg *g)
{
    if (g == NULL)
        return;
    cpg_leave(g->h, &g->name);
    cpg_finalize(g->h);
    free(g);
}
