/*
 * VM.pool_migrate to another host of the pool (XAPI's xapi_vm_migrate.ml
 * pool_migrate, with the checks of xapi_vm_helpers.ml assert_can_boot_here).
 *
 * The coordinator forwards the call to the VM's host (pool/fwd.c), which
 * runs it here: the checks, then a stream to the destination's daemon
 * (CONNECT /migrate_receive on a pool session, which the destination turns
 * into a raw stream and hands to xcp__vm_migrate_receive), the driver's
 * domain_migrate_send on this side and domain_migrate_receive on the other.
 * Around the driver's stream, one line at a time:
 *
 *   destination: "accept\n" (its checks passed) or "error <why>\n"
 *   ... the driver's own stream (the sim's, or libxl's) ...
 *   destination: "domid <n>\n" (its domain is built, paused)
 *   source:      "go\n" once the database says the VM resides there
 *   destination: "done\n" (unpaused, if it ran here) or "error <why>\n"
 *
 * The guest runs on one host at a time: the driver's sender keeps its
 * domain until the receiver holds the guest, and the receiver unpauses
 * only after "go". Any failure before the sender returns leaves the VM
 * running here (VM_MIGRATE_FAILED [vm, source, destination, reason], as
 * XAPI); the receiver destroys its paused domain when no "go" comes.
 */
#include "vm_int.h"

#include "../pool/pool.h"
#include "../client/client.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <xcp/session.h>

#define LINE_TIMEOUT_MS 60000  /* a handshake line's wait      */
#define CONNECT_TIMEOUT_MS 5000
#define STREAM_USER_TIMEOUT_MS 30000 /* unacknowledged data: peer gone */

/* ---- lines on the stream -------------------------------------------- */

static int put_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : -EPIPE;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* One line (without its newline), waiting at most timeout_ms for each
 * byte: 0, -ETIMEDOUT, -ECONNRESET (closed), -EPROTO (too long), -errno. */
static int get_line(int fd, char *buf, size_t cap, int timeout_ms)
{
    size_t n = 0;

    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t r;
        int pr;

        if (n + 1 >= cap)
            return -EPROTO;
        pr = poll(&p, 1, timeout_ms);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0)
            return -errno;
        if (pr == 0)
            return -ETIMEDOUT;
        r = read(fd, buf + n, 1);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r <= 0)
            return r < 0 ? -errno : -ECONNRESET;
        if (buf[n] == '\n')
            break;
        n++;
    }
    buf[n] = '\0';
    if (n > 0 && buf[n - 1] == '\r')
        buf[n - 1] = '\0';
    return 0;
}

static const char *line_why(int rc)
{
    switch (rc) {
    case -ETIMEDOUT:
        return "the destination did not answer in time";
    case -ECONNRESET:
    case -EPIPE:
        return "the destination closed the stream";
    case -EPROTO:
        return "the destination's answer is not a line";
    default:
        return strerror(-rc);
    }
}

/* The thread's last error as "CODE: p1, p2" into out. */
static void error_text(char *out, size_t cap)
{
    const xcp_error *e = xcp_error_last();
    size_t i, n;

    if (!e || !e->name) {
        snprintf(out, cap, "unknown failure");
        return;
    }
    n = (size_t)snprintf(out, cap, "%s", e->name);
    for (i = 0; i < e->nparams && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s%s", i ? ", " : ": ",
                              e->params[i]);
}

/* Keepalive and a bound on unacknowledged data: a peer that vanishes
 * (killed host, cut link) fails the stream rather than hanging it. */
static void stream_opts(int fd)
{
    int one = 1, idle = 5, intvl = 2, cnt = 3;
    unsigned ut = STREAM_USER_TIMEOUT_MS;

    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ut, sizeof(ut));
}

/* ---- the destination's side ------------------------------------------ */

struct rx {
    const char *session, *vm;
    struct domcfg d;
    bool have_cfg;
    char ref[XCP_REF_MAX];
    uint32_t domid;
};

static int rx_prepare(xcp__ctx *c, void *arg)
{
    struct rx *x = arg;
    xcp__obj *s = xcp__db_get_cls(c->db, C(session), x->session), *vm;
    int rc;

    if (!s)
        return XCP__ERR_SESSION_INVALID(x->session);
    if (!xcp__obj_bool(s, F(session, pool)))
        return XCP__ERR_INTERNAL_ERROR("Internal API \"migrate_receive\" "
                                       "call attempted with non-pool "
                                       "(external) session");
    vm = xcp__db_get_cls(c->db, C(VM), x->vm);
    if (!vm)
        vm = xcp__db_by_uuid(c->db, C(VM), x->vm);
    if (!vm)
        return xcp__handle_invalid(C(VM), x->vm);
    snprintf(x->ref, sizeof(x->ref), "%s", vm->ref);
    if (!xcp__vm_is(vm, "Running") && !xcp__vm_is(vm, "Paused"))
        return xcp__vm_bad_power_state(
            vm->ref, xcp__obj_str(vm, F(VM, power_state)), "running");
    if ((rc = xcp__vm_build_cfg(c, vm, &x->d, true)) < 0)
        return rc;
    x->have_cfg = true;
    if ((rc = xcp__vm_check_host_fits(c, vm, &x->d)) < 0 ||
        (rc = xcp__vm_bridges_ready(c, &x->d.cfg)) < 0)
        return rc;
    return 0;
}

static int rx_memory(xcp__ctx *c, void *arg)
{
    (void)arg;
    return xcp__vm_refresh_host_memory(c);
}

int xcp__vm_migrate_receive(xcp__engine *e, const char *session,
                            const char *vm, uint64_t seq, int fd)
{
    struct rx x;
    xcp_hv_error err;
    bool was_running = false;
    char line[300], why[256];
    int rc, fl;

    memset(&x, 0, sizeof(x));
    x.session = session;
    x.vm = vm;
    /* The driver reads and writes this stream blocking. */
    if ((fl = fcntl(fd, F_GETFL)) >= 0 && (fl & O_NONBLOCK))
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    stream_opts(fd);
    /* The source's start of the operation must be here before our own
     * monitor sees the new domain (a busy VM's news waits). */
    if (e->pool_repl && seq > 0 &&
        xcp__pool_member_of(e->pool_repl, NULL, 0) &&
        (rc = xcp__pool_wait_applied(e->pool_repl, seq)) < 0)
        goto refuse;
    if ((rc = xcp__engine_txn(e, rx_prepare, &x)) < 0)
        goto refuse;
    if ((rc = put_all(fd, "accept\n", 7)) < 0) {
        xcp__vm_domcfg_free(&x.d);
        return xcp__internal("migration of VM %s: the source went: %s", vm,
                             strerror(-rc));
    }
    rc = xcp__hv_domain_migrate_receive(e->hv, &x.d.cfg, fd, &x.domid,
                                        &was_running, &err);
    xcp__vm_domcfg_free(&x.d);
    if (rc < 0) /* the driver told the source, and left no domain */
        return xcp__internal("migration of VM %s not received: %s", vm,
                             err.message);
    snprintf(line, sizeof(line), "domid %" PRIu32 "\n", x.domid);
    rc = put_all(fd, line, strlen(line));
    if (rc == 0)
        rc = get_line(fd, line, sizeof(line), LINE_TIMEOUT_MS);
    if (rc < 0 || strcmp(line, "go") != 0) {
        /* No word that the database moved the VM here: the guest must not
         * run on two hosts, so this paused copy goes. */
        xcp__hv_domain_destroy(e->hv, x.domid, &err);
        return xcp__internal("migration of VM %s: no go from the source "
                             "(%s): domain %" PRIu32 " destroyed", vm,
                             rc < 0 ? line_why(rc) : line, x.domid);
    }
    if (was_running && xcp__hv_domain_unpause(e->hv, x.domid, &err) < 0) {
        snprintf(line, sizeof(line), "error unpause: %.200s\n", err.message);
        put_all(fd, line, strlen(line));
        return xcp__internal("migration of VM %s: unpause failed: %s", vm,
                             err.message);
    }
    put_all(fd, "done\n", 5);
    if (xcp__engine_txn(e, rx_memory, NULL) < 0)
        xcp_error_clear();
    return 0;

refuse:
    error_text(why, sizeof(why));
    if (x.have_cfg)
        xcp__vm_domcfg_free(&x.d);
    snprintf(line, sizeof(line), "error %s\n", why);
    put_all(fd, line, strlen(line));
    return rc;
}

/* ---- the source's side ----------------------------------------------- */

/* XAPI's checks of the destination, in assert_can_boot_here's order: live
 * (HOST_OFFLINE), enabled (HOST_DISABLED), the VM's SRs attached there
 * (VM_REQUIRES_SR), memory (HOST_NOT_ENOUGH_FREE_MEMORY). */
static int check_destination(xcp__ctx *c, xcp__obj *vm, xcp__obj *h)
{
    xcp__obj *m = xcp__db_get_cls(c->db, C(host_metrics),
                                  xcp__obj_str(h, F(host, metrics)));
    xcp__obj *vmm = xcp__db_get_cls(c->db, C(VM_metrics),
                                    xcp__obj_str(vm, F(VM, metrics)));
    const xcp_value *vbds = xcp__obj_val(vm, F(VM, VBDs));
    int64_t need, have;
    char a[32], b[32];
    size_t i, j;

    if ((m && !xcp__obj_bool(m, F(host_metrics, live))) ||
        (c->e->pool_repl &&
         !xcp__pool_host_live(c->e->pool_repl, xcp__pool_host_nodeid(h))))
        return XCP__ERR_HOST_OFFLINE(h->ref);
    if (!xcp__obj_bool(h, F(host, enabled)))
        return XCP__ERR_HOST_DISABLED(h->ref);
    for (i = 0; vbds->kind == XCP_VAL_ARRAY && i < vbds->u.arr.n; i++) {
        xcp__obj *vbd = xcp__db_get_cls(c->db, C(VBD), vbds->u.arr.items[i].u.s);
        xcp__obj *vdi, *sr;
        const xcp_value *pbds;
        bool seen = false;

        if (!vbd || xcp__obj_bool(vbd, F(VBD, empty)) ||
            !(vdi = xcp__db_get_cls(c->db, C(VDI),
                                    xcp__obj_str(vbd, F(VBD, VDI)))) ||
            !(sr = xcp__db_get_cls(c->db, C(SR), xcp__obj_str(vdi, F(VDI, SR)))))
            continue;
        pbds = xcp__obj_val(sr, F(SR, PBDs));
        for (j = 0; pbds->kind == XCP_VAL_ARRAY && j < pbds->u.arr.n; j++) {
            xcp__obj *pbd = xcp__db_get_cls(c->db, C(PBD),
                                            pbds->u.arr.items[j].u.s);
            if (pbd && !strcmp(xcp__obj_str(pbd, F(PBD, host)), h->ref) &&
                xcp__obj_bool(pbd, F(PBD, currently_attached)))
                seen = true;
        }
        if (!seen)
            return XCP__ERR_VM_REQUIRES_SR(vm->ref, sr->ref);
    }
    /* What the domain holds now (else its dynamic_max) and its overhead,
     * against what the destination last reported free. */
    need = vmm ? xcp__obj_int(vmm, F(VM_metrics, memory_actual)) : 0;
    if (need <= 0)
        need = xcp__obj_int(vm, F(VM, memory_dynamic_max));
    need += xcp__obj_int(vm, F(VM, memory_overhead));
    have = m ? xcp__obj_int(m, F(host_metrics, memory_free)) : 0;
    if (m && need > have) {
        snprintf(a, sizeof(a), "%" PRId64, need);
        snprintf(b, sizeof(b), "%" PRId64, have);
        return XCP__ERR_HOST_NOT_ENOUGH_FREE_MEMORY(a, b);
    }
    return 0;
}

/* A TCP connection to addr ("host" or "host:port", port 80 by default). */
static int dial(const char *addr, int *out, char *why, size_t cap)
{
    char host[256], port[16] = "80", *colon;
    struct addrinfo hints, *res = NULL, *ai;
    int fd = -1, rc;

    snprintf(host, sizeof(host), "%s", addr);
    if (host[0] == '[') { /* [v6]:port */
        char *end = strchr(host, ']');
        if (end) {
            if (end[1] == ':')
                snprintf(port, sizeof(port), "%s", end + 2);
            *end = '\0';
            memmove(host, host + 1, strlen(host));
        }
    } else if ((colon = strchr(host, ':')) && !strchr(colon + 1, ':')) {
        snprintf(port, sizeof(port), "%s", colon + 1);
        *colon = '\0';
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
        snprintf(why, cap, "cannot resolve %s: %s", addr, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        struct pollfd p;
        int err = 0;
        socklen_t el = sizeof(err);

        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC |
                                       SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 &&
            errno != EINPROGRESS) {
            err = errno;
        } else {
            p.fd = fd;
            p.events = POLLOUT;
            if (poll(&p, 1, CONNECT_TIMEOUT_MS) <= 0)
                err = ETIMEDOUT;
            else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
                err = errno;
        }
        if (err == 0)
            break;
        snprintf(why, cap, "cannot connect to %s: %s", addr, strerror(err));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return -1;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    stream_opts(fd);
    *out = fd;
    return 0;
}

/* The destination's reply to CONNECT: 0 on 200, else why says it. */
static int read_reply(int fd, char *why, size_t cap)
{
    char line[512], status[512] = "";
    long len = 0;
    int rc, code = 0;

    for (;;) {
        if ((rc = get_line(fd, line, sizeof(line), LINE_TIMEOUT_MS)) < 0) {
            snprintf(why, cap, "%s", line_why(rc));
            return -1;
        }
        if (!status[0]) {
            snprintf(status, sizeof(status), "%s", line);
            if (sscanf(line, "HTTP/%*s %d", &code) != 1) {
                snprintf(why, cap, "not an HTTP answer: %.200s", line);
                return -1;
            }
            continue;
        }
        if (!line[0])
            break;
        if (!strncasecmp(line, "Content-Length:", 15))
            len = strtol(line + 15, NULL, 10);
    }
    if (code == 200)
        return 0;
    /* the refusal's text (xcpd_refuse: one line) */
    if (len > 0 && get_line(fd, line, sizeof(line), 2000) == 0)
        snprintf(why, cap, "%.250s", line);
    else
        snprintf(why, cap, "%.250s", status);
    return -1;
}

/* Hand the VM's RRD to the destination before the switch, as XAPI
 * (PUT /rrd?uuid=, which the destination keeps for the VM's start there:
 * its domain's arrival). Best effort: a VM without an RRD here, or a
 * destination that refuses it, loses its history, not its migration. */
/* The VM's RRD here (XAPI's RRD XML) into doc, taken while the guest
 * still runs here (its RRD leaves memory with its domain); false when
 * there is none (no monitor, or no RRD of it yet). */
static bool take_rrd(xcp__engine *e, const char *uuid, xcp__buf *doc)
{
    if (xcp__engine_metrics_doc(e, NULL, 2, 0, 0, NULL, false, NULL, 0,
                                false, uuid, doc) < 0) {
        xcp_error_clear();
        xcp__buf_free(doc);
        return false;
    }
    return true;
}

static void push_rrd(const char *addr, const char *session,
                     const char *uuid, xcp__buf *doc_in)
{
    xcp__buf doc = *doc_in;
    char head[1024], why[300];
    int fd = -1, rc = 0;

    memset(doc_in, 0, sizeof(*doc_in));
    snprintf(head, sizeof(head),
             "PUT /rrd?session_id=%s&uuid=%s HTTP/1.1\r\nHost: %s\r\n"
             "Content-Type: text/xml\r\nContent-Length: %zu\r\n"
             "Connection: close\r\n\r\n",
             session, uuid, addr, doc.len);
    if (dial(addr, &fd, why, sizeof(why)) < 0 ||
        (rc = put_all(fd, head, strlen(head))) < 0 ||
        (rc = put_all(fd, doc.data, doc.len)) < 0)
        snprintf(why, sizeof(why), "%s", rc < 0 ? line_why(rc) : why);
    else if (read_reply(fd, why, sizeof(why)) == 0)
        why[0] = '\0';
    if (why[0])
        xcp__log(XCP__LOG_WARN, "VM %s: its RRD was not handed to %s: %s",
                 uuid, addr, why);
    else
        xcp__trace("VM %s: RRD (%zu bytes) handed to %s", uuid, doc.len,
                   addr);
    if (fd >= 0)
        close(fd);
    xcp__buf_free(&doc);
}

/* A pool session at the destination (*sp, closed by the caller), the
 * stream opened and its answer read: 0 with *fd, else why. Nothing else
 * is asked of the destination until the driver's stream is through:
 * its receiver holds the destination's driver, and a call there that
 * needs its engine could wait behind an engine call waiting for that
 * driver (two migrations into one host: a deadlock). */
static int open_stream(xcp__engine *e, const char *addr, const char *self,
                       const char *vm, uint64_t seq, xcp_session **sp,
                       int *fd, char *why, size_t cap)
{
    xcp_session *s = NULL;
    char req[1024], line[300];
    int rc;

    if (xcp__pool_peer_login(e, addr, self, &s) < 0) {
        error_text(why, cap);
        return -1;
    }
    if (dial(addr, fd, why, cap) < 0) {
        xcp_session_close(s);
        return -1;
    }
    snprintf(req, sizeof(req),
             "CONNECT /migrate_receive?session_id=%s&ref=%s&seq=%" PRIu64
             " HTTP/1.1\r\nHost: %s\r\n\r\n",
             xcp_session_ref(s), vm, seq, addr);
    if ((rc = put_all(*fd, req, strlen(req))) < 0) {
        snprintf(why, cap, "%s", line_why(rc));
        goto fail;
    }
    if (read_reply(*fd, why, cap) < 0)
        goto fail;
    if ((rc = get_line(*fd, line, sizeof(line), LINE_TIMEOUT_MS)) < 0) {
        snprintf(why, cap, "%s", line_why(rc));
        goto fail;
    }
    if (strcmp(line, "accept") != 0) {
        snprintf(why, cap, "%.250s",
                 !strncmp(line, "error ", 6) ? line + 6 : line);
        goto fail;
    }
    *sp = s;
    return 0;
fail:
    close(*fd);
    *fd = -1;
    xcp_session_close(s);
    return -1;
}

/* A watcher that shuts the stream down when the call's task is
 * cancelled: the driver's sender then fails, and the VM stays here. */
struct watch {
    xcp__ctx *c;
    int fd;
    bool stop, cancelled;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static void *watch_main(void *arg)
{
    struct watch *w = arg;
    struct timespec ts;
    bool stop = false;

    while (!stop) {
        pthread_mutex_lock(&w->c->e->lock);
        if (xcp__task_cancelling(w->c)) {
            w->cancelled = true;
            shutdown(w->fd, SHUT_RDWR);
            stop = true;
        }
        pthread_mutex_unlock(&w->c->e->lock);
        pthread_mutex_lock(&w->mu);
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        if (!w->stop)
            pthread_cond_timedwait(&w->cv, &w->mu, &ts);
        stop = stop || w->stop;
        pthread_mutex_unlock(&w->mu);
    }
    return NULL;
}

/* The database after the switch: the VM resides on host h as domid. */
static int set_moved(xcp__ctx *c, xcp__obj *vm, xcp__obj *h, uint32_t domid)
{
    const xcp_value *cs = xcp__obj_val(vm, F(VM, consoles));
    size_t i;
    int rc;

    if ((rc = xcp__db_set_str(c->db, vm, F(VM, resident_on), h->ref)) < 0 ||
        (rc = xcp__db_set_int(c->db, vm, F(VM, domid), domid)) < 0 ||
        (rc = xcp__db_set_str(c->db, vm, F(VM, scheduled_to_be_resident_on),
                              XCP_NULL_REF)) < 0)
        return rc;
    /* its consoles are the destination's to serve now */
    for (i = 0; cs->kind == XCP_VAL_ARRAY && i < cs->u.arr.n; i++) {
        xcp__obj *con = xcp__db_get_cls(c->db, C(console),
                                        cs->u.arr.items[i].u.s);
        if (con && (rc = xcp__console_set_location_at(c, con, h)) < 0)
            return rc;
    }
    return xcp__update_allowed(c, vm);
}

int xcp__vm_pool_migrate_remote(xcp__ctx *c, xcp__obj *vm, xcp__obj *h)
{
    char ref[XCP_REF_MAX], dst[XCP_REF_MAX], src[XCP_REF_MAX];
    char addr[256], why[300] = "", line[300], uuid[64];
    struct watch w;
    pthread_t th;
    xcp_hv_migrate_stats st;
    xcp_hv_error e;
    xcp_session *s = NULL;
    xcp__buf rrd = {0};
    bool have_rrd;
    uint32_t domid, nd = 0;
    uint64_t seq;
    bool watching = false;
    int fd = -1, rc, send_rc = -1;

    snprintf(ref, sizeof(ref), "%s", vm->ref);
    snprintf(dst, sizeof(dst), "%s", h->ref);
    snprintf(src, sizeof(src), "%s", c->e->host);
    snprintf(addr, sizeof(addr), "%s", xcp__obj_str(h, F(host, address)));
    snprintf(uuid, sizeof(uuid), "%s", xcp__obj_uuid(vm));
    if ((rc = check_destination(c, vm, h)) < 0)
        return rc;
    if ((rc = xcp__vm_begin(c, vm, "pool_migrate")) < 0)
        return rc;
    if (!addr[0])
        return xcp__vm_fail_op(c, ref, XCP__ERR_VM_MIGRATE_FAILED(
                                           ref, src, dst,
                                           "the destination has no address"));
    domid = (uint32_t)xcp__obj_int(vm, F(VM, domid));
    seq = xcp__db_seq(c->db);
    if ((rc = xcp__ctx_unlock(c)) < 0) {
        xcp__ctx_lock(c);
        return xcp__vm_fail_op(c, ref, rc);
    }
    xcp__trace("VM %s: migrating to %s (%s)", ref, dst, addr);
    have_rrd = take_rrd(c->e, uuid, &rrd);
    rc = open_stream(c->e, addr, src, ref, seq, &s, &fd, why, sizeof(why));
    if (rc == 0) {
        memset(&w, 0, sizeof(w));
        w.c = c;
        w.fd = fd;
        pthread_mutex_init(&w.mu, NULL);
        pthread_cond_init(&w.cv, NULL);
        watching = pthread_create(&th, NULL, watch_main, &w) == 0;
        memset(&st, 0, sizeof(st));
        rc = send_rc = xcp__hv_domain_migrate_send(c->e->hv, domid, fd,
                                                   &st, &e);
        if (watching) {
            pthread_mutex_lock(&w.mu);
            w.stop = true;
            pthread_cond_signal(&w.cv);
            pthread_mutex_unlock(&w.mu);
            pthread_join(th, NULL);
        }
        pthread_mutex_destroy(&w.mu);
        pthread_cond_destroy(&w.cv);
        if (rc < 0) {
            snprintf(why, sizeof(why), "%.250s",
                     e.message[0] ? e.message : "the stream failed");
        } else if ((rc = get_line(fd, line, sizeof(line),
                                  LINE_TIMEOUT_MS)) < 0 ||
                   sscanf(line, "domid %" SCNu32, &nd) != 1) {
            /* The sender's domain is gone and the receiver's is not
             * confirmed: nothing runs. The VM is lost here as with xl. */
            snprintf(why, sizeof(why), "after the switch: %.250s",
                     rc < 0 ? line_why(rc) : line);
            rc = -1;
        }
        /* The receiver has let go of its driver: the RRD goes now, before
         * the database moves the VM (XAPI pushes it before the switch). */
        if (rc == 0 && have_rrd)
            push_rrd(addr, xcp_session_ref(s), uuid, &rrd);
    }
    xcp__buf_free(&rrd);
    xcp_session_close(s);
    xcp__ctx_lock(c);
    /* A cancel that stopped the sender: the guest runs here. (One that
     * came as the sender finished is too late: the stream is shut, the
     * path below.) */
    if (rc < 0 && send_rc < 0 && watching && w.cancelled) {
        if (fd >= 0)
            close(fd);
        return xcp__vm_fail_op(c, ref, XCP__ERR_TASK_CANCELLED(c->task));
    }
    if (rc < 0) {
        if (fd >= 0)
            close(fd);
        if (nd == 0 && strncmp(why, "after the switch", 16) == 0 &&
            (vm = xcp__db_get_cls(c->db, C(VM), ref)) != NULL)
            xcp__vm_set_stopped(c, vm, "Halted", NULL);
        return xcp__vm_fail_op(c, ref, XCP__ERR_VM_MIGRATE_FAILED(
                                           ref, src, dst, why));
    }
    xcp__log(XCP__LOG_INFO, "VM %s migrated to %s as domain %" PRIu32
             ": %" PRIu32 " rounds, %" PRIu64 " bytes, downtime %" PRIu64
             " us, total %" PRIu64 " ms", ref, dst, nd, st.rounds, st.bytes,
             st.downtime_ns / 1000, st.total_ns / 1000000);
    vm = xcp__db_get_cls(c->db, C(VM), ref);
    h = xcp__db_get_cls(c->db, C(host), dst);
    if (vm && h && (rc = set_moved(c, vm, h, nd)) == 0)
        rc = xcp__ctx_commit(c);
    if (!vm || !h || rc < 0) {
        /* The guest is over there whatever the database says; tell it to
         * run rather than lose it. */
        xcp__log(XCP__LOG_ERR, "VM %s: migrated to %s but not recorded", ref,
                 dst);
        xcp_error_clear();
    }
    rc = put_all(fd, "go\n", 3);
    if (rc == 0) {
        xcp__ctx_unlock(c);
        rc = get_line(fd, line, sizeof(line), LINE_TIMEOUT_MS);
        xcp__ctx_lock(c);
    }
    close(fd);
    if (rc < 0 || strcmp(line, "done") != 0)
        xcp__log(XCP__LOG_WARN, "VM %s: the destination did not confirm "
                 "its unpause: %s", ref, rc < 0 ? line_why(rc) : line);
    if (!(vm = xcp__db_get_cls(c->db, C(VM), ref)))
        return xcp__handle_invalid(C(VM), ref);
    return xcp__vm_end(c, vm);
}
