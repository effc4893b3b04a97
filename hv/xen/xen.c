/*
 * hv/xen/xen.c - the hypervisor driver for real Xen (4.17 and later):
 * libxenctrl for host and domain facts, libxenlight for building, devices,
 * shutdown, save and restore, xenstore for what libxl keeps there (names,
 * memory targets, start times), and VIRQ_DOM_EXC or, when xenstored already
 * owns that VIRQ (the usual case in dom0), the @releaseDomain and
 * @introduceDomain xenstore watches as the event source, plus a 1 s tick
 * and the guest agents' watches (xen_watch.c); consoles in xen_console.c.
 *
 * A domain's VM uuid is its Xen handle, which libxl sets from c_info.uuid:
 * it survives toolstack restarts with the domain, as the library needs.
 *
 * Built only with XCP_HAVE_XEN (libxen-dev present):
 *   pkg-config --cflags --libs xencontrol xenlight xenevtchn xenstore \
 *              xentoollog
 */
#ifdef XCP_HAVE_XEN

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf */
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libxl.h>
#include <libxl_utils.h>
#include <xenctrl.h>
#include <xenevtchn.h>
#include <xenstore.h>
#include <xentoollog.h>

#include "hv_internal.h"
#include "xen_bridge.h"
#include "xen_dev.h"
#include "xen_dm.h"
#include "xen_int.h"
#include "xen_log.h"
#include "xen_blk.h"
#include "xen_migrate.h"
#include "xen_qdisk.h"

#define KiB 1024ull
#define PAGE ((uint64_t)XCP_HV_PAGE_SIZE)
#define NS_PER_MS 1000000ull
#define NS_PER_S 1000000000ull
#define MAX_DOMAINS 1024
#define RESCAN_MS 1000 /* waits re-check even without an event */
#define GONE_MS 10000  /* how long destroy waits for Xen to finish */
#define IMAGE_MAGIC "xcp-xen-image 1\n"

/* What we remember of a domain to tell which ones changed. */
struct snap {
    uint32_t domid;
    uint32_t flags;
    uint64_t tot_pages;
    uint32_t online;
};

struct xen {
    xc_interface *xch;
    libxl_ctx *ctx;
    xentoollog_logger *log; /* keeps libxl's errors: xen_log.h */
    struct xs_handle *xs;
    xenevtchn_handle *xce;
    int virq_port;  /* VIRQ_DOM_EXC port, or -1: using xenstore watches */
    xcp__xen_events ev; /* the event fd: xen_watch.c */
    struct snap *snap;
    size_t n_snap;
    xcp__hv_dirty dirty;
    uint64_t *idle_prev; /* per physical CPU, ns, for host_cpu_usage */
    uint64_t usage_prev;
    int n_idle;
};

/* ---- helpers ------------------------------------------------------------- */

static uint64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static int oom(xcp_hv_error *err)
{
    return xcp__hv_error_set(err, -ENOMEM, "xen: out of memory");
}

/* libxl's error codes as errno, for callers that speak errno. */
static int libxl_errno(int rc)
{
    switch (rc) {
    case ERROR_NOMEM: return -ENOMEM;
    case ERROR_INVAL: return -EINVAL;
    case ERROR_DOMAIN_NOTFOUND: return -ESRCH;
    case ERROR_NOPARAVIRT: return -ENOTSUP;
    case ERROR_TIMEDOUT: return -ETIMEDOUT;
    case ERROR_NOT_READY: return -EAGAIN;
    case ERROR_NOTFOUND: return -ENOENT;
    case ERROR_DEVICE_EXISTS: return -EEXIST;
    case ERROR_FEATURE_REMOVED: return -ENOTSUP;
    default: return -EIO;
    }
}

/* ": <what libxl/libxc logged>" since the last xcp__xen_log_reset(), or "" */
static const char *logged(const char **sep)
{
    const char *s = xcp__xen_log_errors();

    *sep = *s ? ": " : "";
    return s;
}

/* A libxl failure, with libxl's own messages (its log has them too). */
static int libxl_fail(xcp_hv_error *err, int rc, const char *call,
                      uint32_t domid)
{
    const char *sep, *msg = logged(&sep);

    return xcp__hv_error_set(err, libxl_errno(rc),
                             "xen: %s (domain %" PRIu32 ") failed: libxl "
                             "error %d (%s)%s%s", call, domid, rc,
                             libxl_error_to_string((libxl_error)rc), sep,
                             msg);
}

static int xc_fail(xcp_hv_error *err, const char *call, uint32_t domid)
{
    int e = errno ? errno : EIO;
    const char *sep, *msg = logged(&sep);

    return xcp__hv_error_set(err, -e,
                             "xen: %s (domain %" PRIu32 ") failed: %s%s%s",
                             call, domid, strerror(e), sep, msg);
}

/* Reads /local/domain/<domid>/<rel> (or an absolute path); caller frees. */
static char *xs_get(struct xen *x, uint32_t domid, const char *rel)
{
    char path[256];
    unsigned int len;

    if (rel[0] == '/')
        snprintf(path, sizeof(path), "%s", rel);
    else
        snprintf(path, sizeof(path), "/local/domain/%" PRIu32 "/%s", domid,
                 rel);
    return xs_read(x->xs, XBT_NULL, path, &len);
}

/*
 * The vCPUs a domain is to have online: the cpu/<n>/availability keys libxl
 * writes at build and on libxl_set_vcpuonline, as xenopsd counts them (so
 * VM_metrics.VCPUs_number follows VM.set_VCPUs_number_live at once, while
 * the guest brings the vCPU up on its own time, with no event Xen would
 * raise). A domain without them (HVM's vCPUs go through QEMU): what Xen
 * has online.
 */
static uint32_t vcpus_wanted(struct xen *x, const xc_domaininfo_t *di)
{
    uint32_t n, online = 0, max = di->max_vcpu_id == XEN_INVALID_MAX_VCPU_ID
                                      ? 0 : di->max_vcpu_id + 1;
    char rel[64], *v;

    for (n = 0; n < max; n++) {
        snprintf(rel, sizeof(rel), "cpu/%" PRIu32 "/availability", n);
        if (!(v = xs_get(x, di->domain, rel)))
            return di->nr_online_vcpus;
        online += strcmp(v, "online") == 0;
        free(v);
    }
    return max ? online : di->nr_online_vcpus;
}

/* Fetches the Xen facts about one domain; -ESRCH if there is none. */
static int get_info(struct xen *x, uint32_t domid, xc_domaininfo_t *di,
                    xcp_hv_error *err)
{
    int n = xc_domain_getinfolist(x->xch, domid, 1, di);

    if (n < 0)
        return xc_fail(err, "xc_domain_getinfolist", domid);
    if (n == 0 || di->domain != domid)
        return xcp__hv_error_set(err, -ESRCH,
                                 "xen: no domain %" PRIu32, domid);
    return 0;
}

static xcp_hv_domain_state state_of(uint32_t flags)
{
    if (flags & XEN_DOMINF_dying)
        return XCP_HV_STATE_DYING;
    if (flags & XEN_DOMINF_shutdown)
        return XCP_HV_STATE_SHUTDOWN;
    if (flags & XEN_DOMINF_paused)
        return XCP_HV_STATE_PAUSED;
    return XCP_HV_STATE_RUNNING;
}

static xcp_hv_shutdown_reason reason_of(uint32_t flags)
{
    if (!(flags & XEN_DOMINF_shutdown))
        return XCP_HV_SHUTDOWN_NONE;
    switch ((flags >> XEN_DOMINF_shutdownshift) & XEN_DOMINF_shutdownmask) {
    case SHUTDOWN_poweroff: return XCP_HV_SHUTDOWN_POWEROFF;
    case SHUTDOWN_reboot: return XCP_HV_SHUTDOWN_REBOOT;
    case SHUTDOWN_suspend: return XCP_HV_SHUTDOWN_SUSPEND;
    case SHUTDOWN_crash: return XCP_HV_SHUTDOWN_CRASH;
    case SHUTDOWN_watchdog: return XCP_HV_SHUTDOWN_WATCHDOG;
    case SHUTDOWN_soft_reset: return XCP_HV_SHUTDOWN_SOFT_RESET;
    default: return XCP_HV_SHUTDOWN_CRASH;
    }
}

/* The VM uuid of a domain: its Xen handle (no xenstore read). */
static void uuid_of(const xc_domaininfo_t *di, char out[XCP_HV_UUID_LEN])
{
    libxl_uuid u;

    memcpy(libxl_uuid_bytearray(&u), di->handle, 16);
    snprintf(out, XCP_HV_UUID_LEN, LIBXL_UUID_FMT, LIBXL_UUID_BYTES(u));
}

static void fill_info(struct xen *x, const xc_domaininfo_t *di,
                      xcp_hv_domain_info *out)
{
    char *s, path[128];

    memset(out, 0, sizeof(*out));
    out->domid = di->domain;
    uuid_of(di, out->vm_uuid);
    s = xs_get(x, di->domain, "name");
    snprintf(out->name, sizeof(out->name), "%s", s ? s : "");
    free(s);
    if (!(di->flags & XEN_DOMINF_hvm_guest))
        out->type = XCP_HV_DOMAIN_PV;
    else if (di->arch_config.emulation_flags == 0)
        out->type = XCP_HV_DOMAIN_PVH;
    else
        out->type = XCP_HV_DOMAIN_HVM;
    out->state = state_of(di->flags);
    out->shutdown_reason = reason_of(di->flags);
    out->memory_actual = di->tot_pages * PAGE;
    out->memory_max = di->max_pages * PAGE;
    s = xs_get(x, di->domain, "memory/target");
    out->memory_target = s ? strtoull(s, NULL, 10) * KiB : out->memory_actual;
    free(s);
    s = xs_get(x, di->domain, "memory/static-max");
    if (s)
        out->memory_max = strtoull(s, NULL, 10) * KiB;
    free(s);
    out->vcpus_max = di->max_vcpu_id == XEN_INVALID_MAX_VCPU_ID
                         ? 0
                         : di->max_vcpu_id + 1;
    out->vcpus_online = vcpus_wanted(x, di);
    out->cpu_time_ns = di->cpu_time;
    /* libxl writes "<seconds>.<hundredths>" under the VM path */
    snprintf(path, sizeof(path), "/vm/%s/start_time", out->vm_uuid);
    s = xs_get(x, di->domain, path);
    if (s)
        out->start_time_ns = (int64_t)(strtod(s, NULL) * 1e9);
    free(s);
}

/* ---- events: which domains changed --------------------------------------- */

/*
 * Compares the hypervisor's domain list with the previous one: Xen's
 * notifications say that something changed, not what.
 */
static int rescan(struct xen *x, xcp_hv_error *err)
{
    xc_domaininfo_t *di = calloc(MAX_DOMAINS, sizeof(*di));
    struct snap *now = NULL;
    size_t i, j;
    int n, rc = 0;

    if (!di)
        return oom(err);
    n = xc_domain_getinfolist(x->xch, 0, MAX_DOMAINS, di);
    if (n < 0) {
        rc = xc_fail(err, "xc_domain_getinfolist", 0);
        goto out;
    }
    now = calloc((size_t)n + 1, sizeof(*now));
    if (!now) {
        rc = oom(err);
        goto out;
    }
    for (i = 0; i < (size_t)n; i++) {
        now[i].domid = di[i].domain;
        now[i].flags = di[i].flags &
                       ~(XEN_DOMINF_running | XEN_DOMINF_blocked);
        now[i].tot_pages = di[i].tot_pages;
        now[i].online = di[i].nr_online_vcpus;
    }
    /* both lists are sorted by domid */
    for (i = j = 0; i < (size_t)n || j < x->n_snap;) {
        if (j == x->n_snap ||
            (i < (size_t)n && now[i].domid < x->snap[j].domid)) {
            xcp__xen_guest_watch(x->xs, now[i].domid, true);
            xcp__hv_dirty_mark(&x->dirty, now[i++].domid);
        } else if (i == (size_t)n || x->snap[j].domid < now[i].domid) {
            xcp__xen_guest_watch(x->xs, x->snap[j].domid, false);
            xcp__hv_dirty_mark(&x->dirty, x->snap[j++].domid);
        } else {
            if ((now[i].flags & ~x->snap[j].flags) & XEN_DOMINF_shutdown)
                xcp__xen_timing("shut down, seen", now[i].domid, 0);
            if (memcmp(&now[i], &x->snap[j], sizeof(now[i])) != 0)
                xcp__hv_dirty_mark(&x->dirty, now[i].domid);
            i++;
            j++;
        }
    }
    free(x->snap);
    x->snap = now;
    x->n_snap = (size_t)n;
    now = NULL;
out:
    free(now);
    free(di);
    return rc;
}

/*
 * Consumes pending notifications, watches and ticks (never blocks), then
 * rescans: a tick finds what Xen signals to no one (a pause behind our
 * back) within XCP_XEN_TICK_MS; see xen_watch.c for why.
 */
static int drain(struct xen *x, xcp_hv_error *err)
{
    xenevtchn_port_or_error_t port;

    if (x->virq_port >= 0) {
        while ((port = xenevtchn_pending(x->xce)) >= 0)
            xenevtchn_unmask(x->xce, (evtchn_port_t)port);
    }
    xcp__xen_events_drain(&x->ev, x->xs, &x->dirty);
    return rescan(x, err);
}

static int event_fd_of(struct xen *x)
{
    return x->ev.epfd;
}

static int setup_events(struct xen *x, xcp_hv_error *err)
{
    x->virq_port = -1;
    x->xce = xenevtchn_open(NULL, 0);
    if (x->xce) {
        x->virq_port = xenevtchn_bind_virq(x->xce, VIRQ_DOM_EXC);
        if (x->virq_port >= 0)
            return xcp__xen_events_open(&x->ev, xenevtchn_fd(x->xce),
                                        xs_fileno(x->xs), err);
        /* xenstored normally holds it: listen to what it makes of it */
        xenevtchn_close(x->xce);
        x->xce = NULL;
    }
    if (!xs_watch(x->xs, "@releaseDomain", "xcp-release") ||
        !xs_watch(x->xs, "@introduceDomain", "xcp-introduce"))
        return xcp__hv_error_set(err, -errno,
                                 "xen: cannot watch @releaseDomain in "
                                 "xenstore: %s", strerror(errno));
    return xcp__xen_events_open(&x->ev, xs_fileno(x->xs), xs_fileno(x->xs),
                                err);
}

/* ---- open / close -------------------------------------------------------- */

static void xen_close(void *self)
{
    struct xen *x = self;

    if (!x)
        return;
    xcp__xen_events_close(&x->ev);
    if (x->xce) {
        if (x->virq_port >= 0)
            xenevtchn_unbind(x->xce, (evtchn_port_t)x->virq_port);
        xenevtchn_close(x->xce);
    }
    if (x->xs)
        xs_close(x->xs);
    libxl_ctx_free(x->ctx);
    if (x->xch)
        xc_interface_close(x->xch);
    if (x->log) /* last: the handles above log through it */
        xtl_logger_destroy(x->log);
    free(x->snap);
    xcp__hv_dirty_free(&x->dirty);
    free(x->idle_prev);
    free(x);
}

/*
 * libxl's children (device models, hotplug scripts) are forked from the
 * calling thread and keep its signal mask across exec. The program that
 * embeds the library may block signals in every thread (xcpd blocks
 * SIGTERM, SIGINT and SIGHUP for its signalfd): a QEMU started so would
 * not die of the SIGHUP with which libxl stops it when its domain is
 * destroyed, and would outlive the domain. So the child starts with no
 * signal blocked, as a process started from a shell would.
 */
static pid_t fork_unmasked(void *user)
{
    pid_t pid;

    (void)user;
    pid = fork();
    if (pid == 0) {
        sigset_t none;

        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
    }
    return pid;
}

/* libxl's default SIGCHLD ownership, with the fork above (must outlive
 * every libxl_ctx). */
static const libxl_childproc_hooks child_hooks = {
    .chldowner = libxl_sigchld_owner_libxl,
    .fork_replacement = fork_unmasked,
};

static int xen_open(void **self, const char *state_dir, xcp_hv_error *err)
{
    struct xen *x = NULL;
    int rc;

    (void)state_dir; /* Xen keeps the state itself */
    *self = NULL;
    if (access("/dev/xen/privcmd", F_OK) < 0 &&
        access("/proc/xen/privcmd", F_OK) < 0)
        return xcp__hv_error_set(err, -ENODEV,
                                 "xen: not running on Xen (neither "
                                 "/dev/xen/privcmd nor /proc/xen/privcmd "
                                 "exists)");
    x = calloc(1, sizeof(*x));
    if (!x)
        return oom(err);
    x->virq_port = -1;
    x->ev.epfd = x->ev.timerfd = -1;
    x->log = xcp__xen_log_new(stderr);
    if (!x->log) {
        rc = oom(err);
        goto fail;
    }
    x->xch = xc_interface_open(x->log, x->log, 0);
    if (!x->xch) {
        rc = xcp__hv_error_set(err, errno ? -errno : -EACCES,
                               "xen: xc_interface_open failed: %s (are we "
                               "root in dom0?)", strerror(errno));
        goto fail;
    }
    if (libxl_ctx_alloc(&x->ctx, LIBXL_VERSION, 0, x->log) != 0) {
        rc = xcp__hv_error_set(err, -EIO, "xen: libxl_ctx_alloc failed");
        goto fail;
    }
    libxl_childproc_setmode(x->ctx, &child_hooks, NULL);
    x->xs = xs_open(0);
    if (!x->xs) {
        rc = xcp__hv_error_set(err, errno ? -errno : -EIO,
                               "xen: cannot connect to xenstored: %s",
                               strerror(errno));
        goto fail;
    }
    rc = setup_events(x, err);
    if (rc == 0)
        rc = rescan(x, err);
    if (rc < 0)
        goto fail;
    /* what exists at open is not a change */
    xcp__hv_dirty_clear(&x->dirty);
    x->usage_prev = mono_ns();
    *self = x;
    return 0;
fail:
    xen_close(x);
    return rc;
}

/* ---- host ---------------------------------------------------------------- */

static int xen_host_info(void *self, xcp_hv_host_info *out, xcp_hv_error *err)
{
    struct xen *x = self;
    xen_capabilities_info_t caps;
    xen_extraversion_t extra;
    xc_physinfo_t pi;
    uint64_t used = 0;
    size_t i;
    int ver;

    memset(out, 0, sizeof(*out));
    memset(&pi, 0, sizeof(pi));
    if (xc_physinfo(x->xch, &pi) < 0)
        return xc_fail(err, "xc_physinfo", 0);
    if (gethostname(out->hostname, sizeof(out->hostname) - 1) < 0)
        snprintf(out->hostname, sizeof(out->hostname), "localhost");
    out->memory_total = pi.total_pages * PAGE;
    out->memory_free = pi.free_pages * PAGE;
    /* Xen's own share: what neither the domains nor the free pool hold */
    for (i = 0; i < x->n_snap; i++)
        used += x->snap[i].tot_pages * PAGE;
    if (out->memory_total > out->memory_free + used)
        out->memory_hypervisor = out->memory_total - out->memory_free - used;
    out->nr_cpus = pi.nr_cpus;
    xcp__hv_host_cpuinfo(out, pi.nr_cpus);
    if (pi.threads_per_core && pi.cores_per_socket) {
        out->threads_per_core = pi.threads_per_core;
        out->cores_per_socket = pi.cores_per_socket;
        out->sockets = pi.nr_cpus / (pi.threads_per_core *
                                     pi.cores_per_socket);
        if (out->sockets == 0)
            out->sockets = 1;
    }
    if (pi.cpu_khz)
        out->cpu_mhz = pi.cpu_khz / 1000;
    ver = xc_version(x->xch, XENVER_version, NULL);
    memset(extra, 0, sizeof(extra));
    xc_version(x->xch, XENVER_extraversion, &extra);
    snprintf(out->hv_version, sizeof(out->hv_version), "%d.%d%.*s",
             ver >> 16, ver & 0xffff, (int)sizeof(extra), extra);
    memset(caps, 0, sizeof(caps));
    xc_version(x->xch, XENVER_capabilities, &caps);
    snprintf(out->capabilities, sizeof(out->capabilities), "%.*s",
             (int)sizeof(caps), caps);
    return 0;
}

static int xen_host_cpu_usage(void *self, double **util, size_t *n,
                              xcp_hv_error *err)
{
    struct xen *x = self;
    xc_physinfo_t pi;
    xc_cpuinfo_t *ci = NULL;
    uint64_t now = mono_ns(), dt = now - x->usage_prev, *idle = NULL;
    double *u = NULL, busy;
    int nr = 0, i, rc;

    memset(&pi, 0, sizeof(pi));
    if (xc_physinfo(x->xch, &pi) < 0)
        return xc_fail(err, "xc_physinfo", 0);
    ci = calloc(pi.max_cpu_id + 1, sizeof(*ci));
    idle = calloc(pi.max_cpu_id + 1, sizeof(*idle));
    u = calloc(pi.max_cpu_id + 1, sizeof(*u));
    if (!ci || !idle || !u) {
        rc = oom(err);
        goto out;
    }
    if (xc_getcpuinfo(x->xch, (int)pi.max_cpu_id + 1, ci, &nr) < 0) {
        rc = xc_fail(err, "xc_getcpuinfo", 0);
        goto out;
    }
    for (i = 0; i < nr; i++) {
        idle[i] = ci[i].idletime;
        busy = 0;
        if (x->idle_prev && i < x->n_idle && dt) {
            busy = 1.0 - (double)(idle[i] - x->idle_prev[i]) / (double)dt;
            busy = busy < 0 ? 0 : busy > 1 ? 1 : busy;
        }
        u[i] = busy;
    }
    free(x->idle_prev);
    x->idle_prev = idle;
    idle = NULL;
    x->n_idle = nr;
    x->usage_prev = now;
    *util = u;
    *n = (size_t)nr;
    u = NULL;
    rc = 0;
out:
    free(ci);
    free(idle);
    free(u);
    return rc;
}

/* ---- building configs ---------------------------------------------------- */

static libxl_disk_format disk_format(const char *f, bool empty)
{
    if (empty)
        return LIBXL_DISK_FORMAT_EMPTY;
    if (f && strcmp(f, "qcow2") == 0)
        return LIBXL_DISK_FORMAT_QCOW2;
    if (f && strcmp(f, "vhd") == 0)
        return LIBXL_DISK_FORMAT_VHD;
    return LIBXL_DISK_FORMAT_RAW;
}

static bool disk_to_libxl(const xcp_hv_disk *k, libxl_device_disk *d)
{
    bool empty = !k->path || !*k->path;

    libxl_device_disk_init(d);
    d->pdev_path = empty ? NULL : strdup(k->path);
    d->vdev = strdup(k->vdev ? k->vdev : "");
    d->format = disk_format(k->format, empty);
    /* libxl picks qdisk for qcow2 and VHD, blkback for a raw file; but a
     * CD's ISO through blkback needs the "block" hot-plug script's loop
     * device (util-linux in dom0: the lab's busybox one fails it), while
     * QEMU opens a read-only raw image as it is (xen_qdisk.c starts one) */
    d->backend = k->cdrom ? LIBXL_DISK_BACKEND_QDISK
                          : LIBXL_DISK_BACKEND_UNKNOWN;
    d->readwrite = !(k->readonly || k->cdrom);
    d->is_cdrom = k->cdrom;
    d->removable = k->cdrom;
    return d->vdev && (empty || d->pdev_path);
}

static bool nic_to_libxl(const xcp_hv_nic *n, libxl_device_nic *d)
{
    libxl_device_nic_init(d);
    memcpy(d->mac, n->mac, 6);
    d->devid = (libxl_devid)n->devid;
    d->mtu = n->mtu ? (int)n->mtu : 1500;
    d->bridge = n->bridge ? strdup(n->bridge) : NULL;
    return d->bridge || !n->bridge;
}

/* The VM.platform keys libxl has a direct setting for; others are ignored. */
static void apply_platform(libxl_domain_build_info *b, const xcp_hv_kv *kv,
                           size_t n)
{
    size_t i;
    bool on;

    for (i = 0; i < n; i++) {
        on = strcmp(kv[i].value, "true") == 0 || strcmp(kv[i].value, "1") == 0;
        if (strcmp(kv[i].key, "acpi") == 0)
            libxl_defbool_set(&b->acpi, on);
        else if (strcmp(kv[i].key, "apic") == 0)
            libxl_defbool_set(&b->apic, on);
        else if (b->type == LIBXL_DOMAIN_TYPE_HVM &&
                 strcmp(kv[i].key, "viridian") == 0)
            libxl_defbool_set(&b->u.hvm.viridian, on);
        else if (b->type == LIBXL_DOMAIN_TYPE_HVM &&
                 strcmp(kv[i].key, "nx") == 0)
            libxl_defbool_set(&b->u.hvm.nx, on);
        else if (b->type == LIBXL_DOMAIN_TYPE_HVM &&
                 strcmp(kv[i].key, "pae") == 0)
            libxl_defbool_set(&b->u.hvm.pae, on);
        else if (strcmp(kv[i].key, "videoram") == 0)
            b->video_memkb = strtoull(kv[i].value, NULL, 10) * 1024;
    }
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int build_config(struct xen *x, const xcp_hv_domain_config *c,
                        libxl_domain_config *dc, xcp_hv_error *err)
{
    libxl_domain_type type;
    libxl_domain_build_info *b = &dc->b_info;
    uint32_t online, v;
    size_t i;
    int rc;

    libxl_domain_config_init(dc);
    if (!c || c->version < 1 || !c->vm_uuid || !c->name || !c->vcpus_max)
        return xcp__hv_error_set(err, -EINVAL,
                                 "xen: incomplete domain config");
    switch (c->type) {
    case XCP_HV_DOMAIN_PV: type = LIBXL_DOMAIN_TYPE_PV; break;
    case XCP_HV_DOMAIN_HVM: type = LIBXL_DOMAIN_TYPE_HVM; break;
    case XCP_HV_DOMAIN_PVH: type = LIBXL_DOMAIN_TYPE_PVH; break;
    default:
        return xcp__hv_error_set(err, -EINVAL,
                                 "xen: VM %s: unknown domain type %d",
                                 c->vm_uuid, (int)c->type);
    }
    dc->c_info.type = type;
    dc->c_info.name = strdup(c->name);
    if (libxl_uuid_from_string(&dc->c_info.uuid, c->vm_uuid) != 0)
        return xcp__hv_error_set(err, -EINVAL, "xen: '%s' is not a uuid",
                                 c->vm_uuid);
    libxl_domain_build_info_init_type(b, type);
    online = c->vcpus_online ? c->vcpus_online : c->vcpus_max;
    if (online > c->vcpus_max)
        return xcp__hv_error_set(err, -EINVAL,
                                 "xen: VM %s: %" PRIu32 " vCPUs online of %"
                                 PRIu32, c->vm_uuid, online, c->vcpus_max);
    b->max_vcpus = (int)c->vcpus_max;
    if (libxl_cpu_bitmap_alloc(x->ctx, &b->avail_vcpus, (int)c->vcpus_max))
        return oom(err);
    for (v = 0; v < online; v++)
        libxl_bitmap_set(&b->avail_vcpus, (int)v);
    b->max_memkb = c->memory_static_max / KiB;
    b->target_memkb = c->memory_target / KiB;
    b->kernel = dup_or_null(c->kernel);
    b->ramdisk = dup_or_null(c->ramdisk);
    b->cmdline = dup_or_null(c->cmdline);
    if (type == LIBXL_DOMAIN_TYPE_PV && c->bootloader)
        b->u.pv.bootloader = strdup(c->bootloader);
    if (type == LIBXL_DOMAIN_TYPE_HVM && c->boot_order)
        b->u.hvm.boot = strdup(c->boot_order);
    apply_platform(b, c->platform, c->n_platform);
    if (!xcp__xen_console_config(b))
        return oom(err);
    /* the library decides what a shutdown leads to: leave domains be */
    dc->on_poweroff = LIBXL_ACTION_ON_SHUTDOWN_PRESERVE;
    dc->on_reboot = LIBXL_ACTION_ON_SHUTDOWN_PRESERVE;
    dc->on_watchdog = LIBXL_ACTION_ON_SHUTDOWN_PRESERVE;
    dc->on_crash = LIBXL_ACTION_ON_SHUTDOWN_PRESERVE;
    if (c->n_disks) {
        dc->disks = calloc(c->n_disks, sizeof(*dc->disks));
        if (!dc->disks)
            return oom(err);
        for (i = 0; i < c->n_disks; i++) {
            const xcp_hv_disk *k = &c->disks[i];
            /* a PV or PVH guest's empty CD drive is no device until a
             * medium comes (xcp__xen_pv_cd_change) */
            if (type != LIBXL_DOMAIN_TYPE_HVM && k->cdrom &&
                (!k->path || !*k->path))
                continue;
            if (!disk_to_libxl(k, &dc->disks[dc->num_disks++]))
                return oom(err);
            if ((rc = xcp__xen_qdisk_can_serve(
                     &dc->disks[dc->num_disks - 1], err)) < 0)
                return rc;
        }
    }
    if (c->n_nics) {
        dc->nics = calloc(c->n_nics, sizeof(*dc->nics));
        if (!dc->nics)
            return oom(err);
        for (i = 0; i < c->n_nics; i++, dc->num_nics++)
            if (!nic_to_libxl(&c->nics[i], &dc->nics[i]))
                return oom(err);
    }
    return 0;
}

/* Bytes libxl says cfg needs in all (memory + overhead). */
static int need_bytes(struct xen *x, const xcp_hv_domain_config *c,
                      uint64_t *bytes, xcp_hv_error *err)
{
    libxl_domain_config dc;
    uint64_t kb = 0;
    int rc;

    xcp__xen_log_reset(); /* the first step of every build */
    rc = build_config(x, c, &dc, err);

    if (rc == 0) {
        rc = libxl_domain_need_memory(x->ctx, &dc, INVALID_DOMID, &kb);
        rc = rc ? libxl_fail(err, rc, "libxl_domain_need_memory", 0) : 0;
    }
    libxl_domain_config_dispose(&dc);
    *bytes = kb * KiB;
    return rc;
}

static int xen_memory_overhead(void *self, const xcp_hv_domain_config *cfg,
                               uint64_t *bytes, xcp_hv_error *err)
{
    uint64_t need;
    int rc = need_bytes(self, cfg, &need, err);

    if (rc < 0)
        return rc;
    *bytes = need > cfg->memory_target ? need - cfg->memory_target : 0;
    return 0;
}

/* -ENOMEM, with the figures, if a domain needing `need` bytes won't fit. */
static int check_fit(struct xen *x, const char *uuid, uint64_t need,
                     xcp_hv_error *err)
{
    xc_physinfo_t pi;

    memset(&pi, 0, sizeof(pi));
    if (xc_physinfo(x->xch, &pi) < 0)
        return xc_fail(err, "xc_physinfo", 0);
    if (need <= pi.free_pages * PAGE)
        return 0;
    return xcp__hv_error_set(err, -ENOMEM,
                             "xen: VM %s: not enough free memory: needs %"
                             PRIu64 " bytes, %" PRIu64 " bytes available",
                             uuid, need, (uint64_t)pi.free_pages * PAGE);
}

/*
 * One libxl build of dc (a restore when restore_fd >= 0), its domain in
 * *id (INVALID_DOMID if none was made); libxl's error code.
 */
static int create_once(struct xen *x, libxl_domain_config *dc,
                       int restore_fd, uint32_t *id)
{
    libxl_domain_restore_params params;
    uint64_t t0 = mono_ns();
    int rc;

    *id = (uint32_t)INVALID_DOMID;
    if (restore_fd >= 0) {
        libxl_domain_restore_params_init(&params);
        /* what libxl_domain_suspend writes; the default (1) would send
         * the stream through the convert-legacy-stream helper */
        params.stream_version = 2;
        rc = libxl_domain_create_restore(x->ctx, dc, id, restore_fd, -1,
                                         &params, NULL, NULL);
        libxl_domain_restore_params_dispose(&params);
    } else {
        rc = libxl_domain_create_new(x->ctx, dc, id, NULL, NULL);
    }
    xcp__xen_timing(restore_fd >= 0 ? "libxl_domain_create_restore"
                                    : "libxl_domain_create_new", *id, t0);
    return rc;
}

/*
 * Whether a build that failed (err says how) is worth another one: libxl
 * gave up on the device model's start-up time (xen_dm.h), this was not
 * the last of the tries allowed, and a restore's stream can be read
 * again from stream_at.
 */
static bool build_again(const xcp_hv_domain_config *c, int restore_fd,
                        off_t stream_at, unsigned n, xcp_hv_error *err)
{
    unsigned tries = xcp__xen_dm_start_tries();
    size_t len;

    if (!xcp__xen_dm_timed_out(xcp__xen_log_errors()))
        return false;
    if (n < tries && (restore_fd < 0 ||
                      (stream_at >= 0 &&
                       lseek(restore_fd, stream_at, SEEK_SET) == stream_at))) {
        fprintf(stderr, "xen: VM %s: libxl gave up waiting for its device "
                "model (try %u of %u, XCP_XEN_DM_START_TRIES): building "
                "the domain again\n", c->vm_uuid, n, tries);
        xcp__xen_log_reset();
        return true;
    }
    if (err && (len = strlen(err->message)) < sizeof(err->message))
        snprintf(err->message + len, sizeof(err->message) - len,
                 " (libxl gave up on the device model's start-up %u "
                 "time(s): XCP_XEN_DM_START_TRIES allows more)", n);
    return false;
}

/*
 * Builds (or restores, restore_fd >= 0) a domain and unpauses it unless
 * asked not to. libxl leaves new domains paused.
 */
static int build(struct xen *x, const xcp_hv_domain_config *c, int restore_fd,
                 bool paused, uint32_t *domid, xcp_hv_error *err)
{
    libxl_domain_config dc;
    xc_domaininfo_t di;
    uint32_t id = (uint32_t)INVALID_DOMID;
    uint64_t need = 0;
    off_t stream_at = restore_fd >= 0 ? lseek(restore_fd, 0, SEEK_CUR) : 0;
    unsigned n;
    size_t i;
    int rc;

    xcp__xen_timing("build begins", 0, 0);
    rc = need_bytes(x, c, &need, err);
    if (rc == 0)
        rc = check_fit(x, c->vm_uuid, need, err);
    if (rc < 0)
        return rc;
    rc = build_config(x, c, &dc, err);
    for (i = 0; rc == 0 && i < c->n_nics; i++)
        rc = xcp__xen_bridge_ensure(c->nics[i].bridge, err);
    if (rc < 0)
        goto out;
    for (n = 1;; n++) {
        if ((rc = create_once(x, &dc, restore_fd, &id)) == 0)
            break;
        rc = libxl_fail(err, rc, restore_fd >= 0
                                     ? "libxl_domain_create_restore"
                                     : "libxl_domain_create_new", id);
        /* a half-built domain is of no use to anyone (libxl often has
         * destroyed it already: don't fill the log with its complaints) */
        if (id != (uint32_t)INVALID_DOMID &&
            xc_domain_getinfolist(x->xch, id, 1, &di) == 1 && di.domain == id)
            libxl_domain_destroy(x->ctx, id, NULL);
        if (!build_again(c, restore_fd, stream_at, n, err))
            goto out;
    }
    if (!paused && (rc = libxl_domain_unpause(x->ctx, id, NULL)) != 0) {
        rc = libxl_fail(err, rc, "libxl_domain_unpause", id);
        libxl_domain_destroy(x->ctx, id, NULL);
        goto out;
    }
    *domid = id;
    xcp__hv_dirty_mark(&x->dirty, id);
    xcp__xen_timing("built and unpaused", id, 0);
out:
    libxl_domain_config_dispose(&dc);
    return rc;
}

static int xen_domain_create(void *self, const xcp_hv_domain_config *cfg,
                             bool paused, uint32_t *domid, xcp_hv_error *err)
{
    return build(self, cfg, -1, paused, domid, err);
}

/* ---- lifecycle ----------------------------------------------------------- */

/*
 * Checks that domid names a guest we may act on; the first step of every
 * operation on one, so it starts a new collection of libxl's messages.
 */
static int guest(struct xen *x, uint32_t domid, const char *what,
                 xc_domaininfo_t *di, xcp_hv_error *err)
{
    xcp__xen_log_reset();
    if (domid == 0)
        return xcp__hv_error_set(err, -EPERM,
                                 "xen: refusing to %s domain 0, the control "
                                 "domain", what);
    return get_info(x, domid, di, err);
}

/*
 * Waits until deadline for domain domid to be gone from Xen, woken by Xen's
 * own word that a domain ended (VIRQ_DOM_EXC or xenstored's @releaseDomain
 * on the event fd) rather than by a poll interval; what the notifications
 * say stays queued for event_read (drain). Returns whether it is gone.
 */
static bool wait_gone(struct xen *x, uint32_t domid, uint64_t deadline)
{
    xcp_hv_error ignored;
    xc_domaininfo_t di;
    struct pollfd p;
    uint64_t now;
    int ms;

    while (xc_domain_getinfolist(x->xch, domid, 1, &di) == 1 &&
           di.domain == domid) {
        now = mono_ns();
        if (now >= deadline)
            return false;
        ms = (int)((deadline - now) / NS_PER_MS) + 1;
        p.fd = event_fd_of(x);
        p.events = POLLIN;
        p.revents = 0;
        if (poll(&p, 1, ms < RESCAN_MS ? ms : RESCAN_MS) > 0)
            drain(x, &ignored);
    }
    return true;
}

/*
 * Destroys a domain and waits (up to GONE_MS) until Xen has finished
 * tearing it down: libxl returns while it is still dying and holding
 * memory, and callers expect the id and the memory to be free.
 */
static int destroy(struct xen *x, uint32_t domid, xcp_hv_error *err)
{
    uint64_t t0 = mono_ns();
    int rc = libxl_domain_destroy(x->ctx, domid, NULL);

    xcp__xen_timing("libxl_domain_destroy", domid, t0);
    xcp__hv_dirty_mark(&x->dirty, domid);
    if (rc)
        return libxl_fail(err, rc, "libxl_domain_destroy", domid);
    wait_gone(x, domid, t0 + GONE_MS * NS_PER_MS);
    xcp__xen_timing("destroy until gone", domid, t0);
    return 0;
}

static int xen_domain_destroy(void *self, uint32_t domid, xcp_hv_error *err)
{
    struct xen *x = self;
    xc_domaininfo_t di;
    int rc = guest(x, domid, "destroy", &di, err);

    return rc < 0 ? rc : destroy(x, domid, err);
}

static int set_paused(struct xen *x, uint32_t domid, bool pause,
                      xcp_hv_error *err)
{
    const char *what = pause ? "pause" : "unpause";
    xc_domaininfo_t di;
    int rc = guest(x, domid, what, &di, err);

    if (rc < 0)
        return rc;
    if (di.flags & XEN_DOMINF_shutdown)
        return xcp__hv_error_set(err, -EINVAL,
                                 "xen: cannot %s domain %" PRIu32 ": it has "
                                 "shut down", what, domid);
    /* Xen counts pauses; the interface promises an idempotent flag */
    if (!!(di.flags & XEN_DOMINF_paused) == pause)
        return 0;
    rc = pause ? libxl_domain_pause(x->ctx, domid, NULL)
               : libxl_domain_unpause(x->ctx, domid, NULL);
    if (rc)
        return libxl_fail(err, rc, pause ? "libxl_domain_pause"
                                         : "libxl_domain_unpause", domid);
    xcp__hv_dirty_mark(&x->dirty, domid);
    return 0;
}

static int xen_domain_pause(void *self, uint32_t domid, xcp_hv_error *err)
{
    return set_paused(self, domid, true, err);
}

static int xen_domain_unpause(void *self, uint32_t domid, xcp_hv_error *err)
{
    return set_paused(self, domid, false, err);
}

static int xen_domain_shutdown(void *self, uint32_t domid,
                               xcp_hv_shutdown_reason request,
                               xcp_hv_error *err)
{
    struct xen *x = self;
    xc_domaininfo_t di;
    int rc;

    if (request != XCP_HV_SHUTDOWN_POWEROFF &&
        request != XCP_HV_SHUTDOWN_REBOOT)
        return xcp__hv_error_set(err, -EINVAL,
                                 "xen: domain %" PRIu32 ": can only request "
                                 "poweroff or reboot", domid);
    rc = guest(x, domid, "shut down", &di, err);
    if (rc < 0)
        return rc;
    rc = request == XCP_HV_SHUTDOWN_REBOOT
             ? libxl_domain_reboot(x->ctx, domid, NULL)
             : libxl_domain_shutdown(x->ctx, domid, NULL);
    xcp__xen_timing("shutdown asked", domid, 0);
    if (rc == ERROR_NOPARAVIRT)
        return xcp__hv_error_set(err, -ENOTSUP,
                                 "xen: domain %" PRIu32 " has no PV drivers "
                                 "to receive a clean %s request", domid,
                                 xcp__hv_shutdown_reason_name(request));
    if (rc)
        return libxl_fail(err, rc,
                          request == XCP_HV_SHUTDOWN_REBOOT
                              ? "libxl_domain_reboot"
                              : "libxl_domain_shutdown",
                          domid);
    return 0;
}

static int xen_domain_wait(void *self, uint32_t domid, int timeout_ms,
                           xcp_hv_domain_info *out, xcp_hv_error *err)
{
    struct xen *x = self;
    uint64_t start = mono_ns(), deadline, now;
    xc_domaininfo_t di;
    struct pollfd p;
    int rc, slice;

    deadline = timeout_ms < 0 ? UINT64_MAX
                              : start + (uint64_t)timeout_ms * NS_PER_MS;
    for (;;) {
        rc = get_info(x, domid, &di, err);
        if (rc < 0)
            return rc;
        if (di.flags & XEN_DOMINF_shutdown) {
            fill_info(x, &di, out);
            return 0;
        }
        now = mono_ns();
        if (now >= deadline)
            return xcp__hv_error_set(err, -ETIMEDOUT,
                                     "xen: domain %" PRIu32 " did not shut "
                                     "down within %d ms", domid, timeout_ms);
        slice = (int)((deadline - now) / NS_PER_MS) + 1;
        p.fd = event_fd_of(x);
        p.events = POLLIN;
        p.revents = 0;
        /* rescan anyway now and then: a notification may be coalesced */
        if (poll(&p, 1, slice < RESCAN_MS ? slice : RESCAN_MS) > 0) {
            rc = drain(x, err); /* keeps the changes for event_read */
            if (rc < 0)
                return rc;
        }
    }
}

/* ---- suspend / restore --------------------------------------------------- */

/*
 * Images are our header (so restore can refuse another VM's image) followed
 * by libxl's own stream, which libxl verifies.
 */
static int xen_domain_suspend(void *self, uint32_t domid,
                              const char *image_path, xcp_hv_error *err)
{
    struct xen *x = self;
    xc_domaininfo_t di;
    char *tmp = NULL, header[128], uuid[XCP_HV_UUID_LEN];
    uint64_t t0;
    int fd = -1, rc, n;

    rc = guest(x, domid, "suspend", &di, err);
    if (rc < 0)
        return rc;
    /* Only the uuid is needed: not fill_info's xenstore reads (5 round
     * trips to xenstored, which xl save does not make either). */
    uuid_of(&di, uuid);
    if (asprintf(&tmp, "%s.tmp", image_path) < 0) {
        tmp = NULL;
        return oom(err);
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = xcp__hv_error_set(err, -errno, "xen: cannot create %s: %s", tmp,
                               strerror(errno));
        goto out;
    }
    n = snprintf(header, sizeof(header), "%suuid %s\n", IMAGE_MAGIC, uuid);
    if (write(fd, header, (size_t)n) != n) {
        rc = xcp__hv_error_set(err, -EIO, "xen: cannot write %s: %s", tmp,
                               strerror(errno));
        goto out;
    }
    t0 = mono_ns();
    rc = libxl_domain_suspend(x->ctx, domid, fd, 0, NULL);
    xcp__xen_timing("libxl_domain_suspend", domid, t0);
    if (rc) {
        rc = libxl_fail(err, rc, "libxl_domain_suspend", domid);
        goto out;
    }
    t0 = mono_ns();
    if (fsync(fd) < 0 || close(fd) < 0) {
        fd = -1;
        rc = xcp__hv_error_set(err, -errno, "xen: cannot sync %s: %s", tmp,
                               strerror(errno));
        goto out;
    }
    fd = -1;
    xcp__xen_timing("suspend image synced", domid, t0);
    if (rename(tmp, image_path) < 0) {
        rc = xcp__hv_error_set(err, -errno, "xen: cannot rename %s: %s", tmp,
                               strerror(errno));
        goto out;
    }
    /* saved: the domain is shut down (suspend) and now goes away */
    rc = destroy(x, domid, err);
out:
    if (fd >= 0)
        close(fd);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    return rc;
}

/* Reads our header; leaves fd at the start of libxl's stream. */
static int read_header(int fd, const char *path, const char *want_uuid,
                       xcp_hv_error *err)
{
    char buf[128], uuid[XCP_HV_UUID_LEN];
    size_t len = strlen(IMAGE_MAGIC) + strlen("uuid \n") + 36, i = 0;

    while (i < len && read(fd, buf + i, 1) == 1)
        i++;
    buf[i] = '\0';
    if (i != len || strncmp(buf, IMAGE_MAGIC, strlen(IMAGE_MAGIC)) != 0 ||
        sscanf(buf + strlen(IMAGE_MAGIC), "uuid %36s", uuid) != 1)
        return xcp__hv_error_set(err, -EBADMSG,
                                 "xen: %s is not a suspend image of ours",
                                 path);
    if (strcmp(uuid, want_uuid) != 0)
        return xcp__hv_error_set(err, -EINVAL,
                                 "xen: suspend image %s is of VM %s, not %s",
                                 path, uuid, want_uuid);
    return 0;
}

static int xen_domain_restore(void *self, const xcp_hv_domain_config *cfg,
                              const char *image_path, bool paused,
                              uint32_t *domid, xcp_hv_error *err)
{
    int fd = open(image_path, O_RDONLY | O_CLOEXEC), rc;

    if (fd < 0)
        return xcp__hv_error_set(err, -errno, "xen: cannot open %s: %s",
                                 image_path, strerror(errno));
    rc = read_header(fd, image_path, cfg && cfg->vm_uuid ? cfg->vm_uuid : "",
                     err);
    if (rc == 0)
        rc = build(self, cfg, fd, paused, domid, err);
    close(fd);
    return rc;
}

/* ---- memory, vCPUs, queries ---------------------------------------------- */

static int xen_domain_set_memory_target(void *self, uint32_t domid,
                                        uint64_t bytes, xcp_hv_error *err)
{
    struct xen *x = self;
    xc_domaininfo_t di;
    int rc = guest(x, domid, "set the memory target of", &di, err);

    if (rc < 0)
        return rc;
    rc = libxl_set_memory_target(x->ctx, domid, (int64_t)(bytes / KiB), 0, 1);
    if (rc)
        return libxl_fail(err, rc, "libxl_set_memory_target", domid);
    xcp__hv_dirty_mark(&x->dirty, domid);
    return 0;
}

static int xen_domain_set_vcpus(void *self, uint32_t domid, uint32_t online,
                                xcp_hv_error *err)
{
    struct xen *x = self;
    xc_domaininfo_t di;
    libxl_bitmap map;
    uint32_t v, max;
    int rc = guest(x, domid, "set the vCPUs of", &di, err);

    if (rc < 0)
        return rc;
    max = di.max_vcpu_id + 1;
    if (online < 1 || online > max)
        return xcp__hv_error_set(err, -EINVAL,
                                 "xen: domain %" PRIu32 ": %" PRIu32
                                 " vCPUs online is out of range 1..%" PRIu32,
                                 domid, online, max);
    libxl_bitmap_init(&map);
    if (libxl_cpu_bitmap_alloc(x->ctx, &map, (int)max))
        return oom(err);
    for (v = 0; v < online; v++)
        libxl_bitmap_set(&map, (int)v);
    rc = libxl_set_vcpuonline(x->ctx, domid, &map, NULL);
    libxl_bitmap_dispose(&map);
    if (rc)
        return libxl_fail(err, rc, "libxl_set_vcpuonline", domid);
    xcp__hv_dirty_mark(&x->dirty, domid);
    return 0;
}

static int xen_domain_list(void *self, xcp_hv_domain_info **out, size_t *n,
                           xcp_hv_error *err)
{
    struct xen *x = self;
    xc_domaininfo_t *di = calloc(MAX_DOMAINS, sizeof(*di));
    xcp_hv_domain_info *v = NULL;
    int count, i, rc = 0;

    if (!di)
        return oom(err);
    count = xc_domain_getinfolist(x->xch, 0, MAX_DOMAINS, di);
    if (count < 0) {
        rc = xc_fail(err, "xc_domain_getinfolist", 0);
        goto out;
    }
    v = calloc((size_t)count + 1, sizeof(*v));
    if (!v) {
        rc = oom(err);
        goto out;
    }
    for (i = 0; i < count; i++)
        fill_info(x, &di[i], &v[i]);
    *out = v;
    *n = (size_t)count;
out:
    free(di);
    return rc;
}

static int xen_domain_info(void *self, uint32_t domid,
                           xcp_hv_domain_info *out, xcp_hv_error *err)
{
    struct xen *x = self;
    xc_domaininfo_t di;
    int rc = get_info(x, domid, &di, err);

    if (rc == 0)
        fill_info(x, &di, out);
    return rc;
}

static int xen_domain_vcpu_info(void *self, uint32_t domid,
                                xcp_hv_vcpu_info **out, size_t *n,
                                xcp_hv_error *err)
{
    struct xen *x = self;
    xc_domaininfo_t di;
    xc_vcpuinfo_t vi;
    xcp_hv_vcpu_info *v;
    uint32_t i, count;
    int rc = get_info(x, domid, &di, err);

    if (rc < 0)
        return rc;
    count = di.max_vcpu_id == XEN_INVALID_MAX_VCPU_ID ? 0
                                                      : di.max_vcpu_id + 1;
    v = calloc(count + 1, sizeof(*v));
    if (!v)
        return oom(err);
    for (i = 0; i < count; i++) {
        if (xc_vcpu_getinfo(x->xch, domid, i, &vi) < 0) {
            free(v);
            return xc_fail(err, "xc_vcpu_getinfo", domid);
        }
        v[i].id = i;
        v[i].online = vi.online;
        v[i].running = vi.running;
        v[i].pcpu = vi.cpu;
        v[i].cpu_time_ns = vi.cpu_time;
    }
    *out = v;
    *n = count;
    return 0;
}


/* ---- stats (driver version 8) -------------------------------------------- */

/* A decimal counter from sysfs, 0 when absent. */
static uint64_t sysfs_u64(const char *fmt, const char *a, const char *b)
{
    char path[512], buf[32];
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), fmt, a, b);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return 0;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return strtoull(buf, NULL, 10);
}

static int dev_cmp(const void *a, const void *b)
{
    const xcp_hv_dev_stats *x = a, *y = b;

    if (x->kind == XCP_HV_DEV_HOST_NIC || y->kind == XCP_HV_DEV_HOST_NIC)
        return (x->kind == XCP_HV_DEV_HOST_NIC) - (y->kind == XCP_HV_DEV_HOST_NIC);
    return x->domid < y->domid ? -1 : x->domid > y->domid;
}

static xcp_hv_dev_stats *dev_add(xcp_hv_stats *out, size_t *cap)
{
    xcp_hv_dev_stats *d;

    if (out->n_devs == *cap) {
        size_t c = *cap ? 2 * *cap : 64;

        if (!(d = realloc(out->devs, c * sizeof(*d))))
            return NULL;
        out->devs = d;
        *cap = c;
    }
    d = &out->devs[out->n_devs++];
    memset(d, 0, sizeof(*d));
    return d;
}

/*
 * The backends' counters: each vif<domid>.<devid> netdev (the guest's
 * traffic, seen backwards from dom0), each blkback vbd-<domid>-<devid>'s
 * statistics (sectors of 512 bytes; its guest device name from xenstore),
 * and the physical NICs (those with a device link). Disks served by QEMU
 * (qdisk) have no such counters and are not reported.
 */
static int scan_devs(struct xen *x, xcp_hv_stats *out)
{
    size_t cap = 0;
    struct dirent *e;
    DIR *d;

    if ((d = opendir("/sys/class/net"))) {
        while ((e = readdir(d))) {
            unsigned dom, dev;
            char tail[8] = "";
            xcp_hv_dev_stats *s;
            char link[512];
            struct stat st;

            if (e->d_name[0] == '.')
                continue;
            if (sscanf(e->d_name, "vif%u.%u%7s", &dom, &dev, tail) >= 2) {
                if (tail[0]) /* vifN.M-emu: QEMU's tap */
                    continue;
                if (!(s = dev_add(out, &cap)))
                    break;
                s->domid = dom;
                s->kind = XCP_HV_DEV_NIC;
                snprintf(s->name, sizeof(s->name), "%u", dev);
                s->rd_bytes = sysfs_u64("/sys/class/net/%s/statistics/%s",
                                        e->d_name, "tx_bytes");
                s->wr_bytes = sysfs_u64("/sys/class/net/%s/statistics/%s",
                                        e->d_name, "rx_bytes");
                s->rd_reqs = sysfs_u64("/sys/class/net/%s/statistics/%s",
                                       e->d_name, "tx_packets");
                s->wr_reqs = sysfs_u64("/sys/class/net/%s/statistics/%s",
                                       e->d_name, "rx_packets");
                continue;
            }
            snprintf(link, sizeof(link), "/sys/class/net/%s/device",
                     e->d_name);
            if (stat(link, &st) < 0 || !(s = dev_add(out, &cap)))
                continue;
            s->kind = XCP_HV_DEV_HOST_NIC;
            snprintf(s->name, sizeof(s->name), "%.15s", e->d_name);
            s->rd_bytes = sysfs_u64("/sys/class/net/%s/statistics/%s",
                                    e->d_name, "rx_bytes");
            s->wr_bytes = sysfs_u64("/sys/class/net/%s/statistics/%s",
                                    e->d_name, "tx_bytes");
            s->rd_reqs = sysfs_u64("/sys/class/net/%s/statistics/%s",
                                   e->d_name, "rx_packets");
            s->wr_reqs = sysfs_u64("/sys/class/net/%s/statistics/%s",
                                   e->d_name, "tx_packets");
        }
        closedir(d);
    }
    if ((d = opendir("/sys/bus/xen-backend/devices"))) {
        while ((e = readdir(d))) {
            unsigned dom, dev;
            char path[128], *vdev;
            xcp_hv_dev_stats *s;

            if (sscanf(e->d_name, "vbd-%u-%u", &dom, &dev) != 2)
                continue;
            snprintf(path, sizeof(path),
                     "/local/domain/0/backend/vbd/%u/%u/dev", dom, dev);
            if (!(vdev = xs_get(x, 0, path)))
                continue;
            if (!(s = dev_add(out, &cap))) {
                free(vdev);
                break;
            }
            s->domid = dom;
            s->kind = XCP_HV_DEV_DISK;
            snprintf(s->name, sizeof(s->name), "%.15s", vdev);
            free(vdev);
            s->rd_bytes = 512 * sysfs_u64("/sys/bus/xen-backend/devices/%s/"
                                          "statistics/%s", e->d_name,
                                          "rd_sect");
            s->wr_bytes = 512 * sysfs_u64("/sys/bus/xen-backend/devices/%s/"
                                          "statistics/%s", e->d_name,
                                          "wr_sect");
            s->rd_reqs = sysfs_u64("/sys/bus/xen-backend/devices/%s/"
                                   "statistics/%s", e->d_name, "rd_req");
            s->wr_reqs = sysfs_u64("/sys/bus/xen-backend/devices/%s/"
                                   "statistics/%s", e->d_name, "wr_req");
        }
        closedir(d);
    }
    if (out->n_devs)
        qsort(out->devs, out->n_devs, sizeof(*out->devs), dev_cmp);
    return 0;
}

static int xen_stats(void *self, xcp_hv_stats *out, xcp_hv_error *err)
{
    struct xen *x = self;
    xc_physinfo_t pi;
    xc_cpuinfo_t *ci = NULL;
    xc_vcpuinfo_t vi;
    struct timespec ts;
    uint64_t boot_ns;
    size_t i, nv = 0, at = 0;
    uint32_t v;
    int nr = 0, rc;
    double la[1];

    memset(out, 0, sizeof(*out));
    memset(&pi, 0, sizeof(pi));
    if (xc_physinfo(x->xch, &pi) < 0)
        return xc_fail(err, "xc_physinfo", 0);
    out->memory_total = pi.total_pages * PAGE;
    out->memory_free = pi.free_pages * PAGE;
    if (getloadavg(la, 1) == 1)
        out->loadavg = la[0];
    /* busy = uptime - idle; dom0's boot clock stands for Xen's uptime
     * (only the differences matter: the library records rates) */
    clock_gettime(CLOCK_BOOTTIME, &ts);
    boot_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec +
              86400ull * 1000000000ull;
    if (!(ci = calloc(pi.max_cpu_id + 1, sizeof(*ci))) ||
        !(out->pcpu_busy_ns = calloc(pi.max_cpu_id + 1, sizeof(uint64_t)))) {
        rc = oom(err);
        goto fail;
    }
    if (xc_getcpuinfo(x->xch, (int)pi.max_cpu_id + 1, ci, &nr) < 0) {
        rc = xc_fail(err, "xc_getcpuinfo", 0);
        goto fail;
    }
    for (i = 0; i < (size_t)nr; i++)
        out->pcpu_busy_ns[i] =
            boot_ns > ci[i].idletime ? boot_ns - ci[i].idletime : 0;
    out->n_pcpus = (size_t)nr;
    if ((rc = xen_domain_list(self, &out->doms, &out->n_doms, err)) < 0)
        goto fail;
    for (i = 0; i < out->n_doms; i++)
        nv += out->doms[i].vcpus_max;
    if (!(out->vcpu_ns = calloc(nv + 1, sizeof(uint64_t))) ||
        !(out->guest_free_kib = calloc(out->n_doms + 1, sizeof(int64_t)))) {
        rc = oom(err);
        goto fail;
    }
    for (i = 0; i < out->n_doms; i++) {
        const xcp_hv_domain_info *d = &out->doms[i];
        char *f = xs_get(x, d->domid, "data/meminfo_free");

        out->guest_free_kib[i] = f ? strtoll(f, NULL, 10) : -1;
        free(f);
        for (v = 0; v < d->vcpus_max; v++, at++)
            if (xc_vcpu_getinfo(x->xch, d->domid, v, &vi) == 0)
                out->vcpu_ns[at] = vi.cpu_time;
    }
    if ((rc = scan_devs(x, out)) < 0)
        goto fail;
    free(ci);
    return 0;
fail:
    free(ci);
    free(out->pcpu_busy_ns);
    free(out->doms);
    free(out->vcpu_ns);
    free(out->guest_free_kib);
    free(out->devs);
    memset(out, 0, sizeof(*out));
    return rc;
}

/* ---- devices ------------------------------------------------------------- */

/*
 * A disk just added to domain domid gets the back end it needs: the qdisk
 * QEMU of a domain built without one (xen_qdisk.h). If none can be had,
 * the disk goes again: a plug fails whole.
 */
static int qdisk_served(struct xen *x, uint32_t domid, libxl_device_disk *d,
                        xcp_hv_error *err)
{
    int rc = xcp__xen_qdisk_ensure(x->ctx, x->xs, domid, d->vdev, err);

    if (rc < 0)
        libxl_device_disk_destroy(x->ctx, domid, d, NULL);
    return rc;
}

/* A disk that asks for qdisk by name has its QEMU before libxl adds it. */
static int qdisk_first(struct xen *x, uint32_t domid,
                       const libxl_device_disk *d, xcp_hv_error *err)
{
    if (d->backend != LIBXL_DISK_BACKEND_QDISK || !d->pdev_path)
        return 0;
    return xcp__xen_qdisk_ensure(x->ctx, x->xs, domid, NULL, err);
}

static int xen_disk_plug(void *self, uint32_t domid, const xcp_hv_disk *disk,
                         xcp_hv_error *err)
{
    struct xen *x = self;
    libxl_device_disk d;
    xc_domaininfo_t di;
    int rc = guest(x, domid, "plug a disk into", &di, err);

    if (rc < 0)
        return rc;
    if (!disk_to_libxl(disk, &d)) {
        rc = oom(err);
    } else if ((rc = xcp__xen_qdisk_can_serve(&d, err)) == 0 &&
               (rc = qdisk_first(x, domid, &d, err)) == 0) {
        rc = libxl_device_disk_add(x->ctx, domid, &d, NULL);
        if (rc) {
            rc = libxl_fail(err, rc, "libxl_device_disk_add", domid);
            /* libxl leaves the front end's entries of a failed hot-plug
             * script behind (a later resume found them) */
            libxl_device_disk_destroy(x->ctx, domid, &d, NULL);
        } else {
            rc = qdisk_served(x, domid, &d, err);
        }
    }
    libxl_device_disk_dispose(&d);
    return rc;
}

static int xen_disk_unplug(void *self, uint32_t domid, const char *vdev,
                           bool force, xcp_hv_error *err)
{
    struct xen *x = self;
    libxl_device_disk d;
    xc_domaininfo_t di;
    int rc = guest(x, domid, "unplug a disk from", &di, err);

    if (rc < 0)
        return rc;
    libxl_device_disk_init(&d);
    if (libxl_vdev_to_device_disk(x->ctx, domid, vdev, &d) != 0) {
        rc = xcp__hv_error_set(err, -ENOENT,
                               "xen: domain %" PRIu32 " has no disk %s",
                               domid, vdev);
    } else {
        rc = force ? libxl_device_disk_destroy(x->ctx, domid, &d, NULL)
                   : libxl_device_disk_remove(x->ctx, domid, &d, NULL);
        rc = rc ? libxl_fail(err, rc, "libxl_device_disk_remove", domid) : 0;
    }
    libxl_device_disk_dispose(&d);
    return rc;
}

static int xen_cdrom_insert(void *self, uint32_t domid, const char *vdev,
                            const char *path, const char *format,
                            xcp_hv_error *err)
{
    struct xen *x = self;
    xcp_hv_disk want = {path, format, vdev, true, true};
    libxl_device_disk d;
    libxl_dominfo info;
    const char *call = "";
    xc_domaininfo_t di;
    int rc = guest(x, domid, "change the CD of", &di, err);

    if (rc < 0)
        return rc;
    libxl_dominfo_init(&info);
    if (!disk_to_libxl(&want, &d)) {
        rc = oom(err);
    } else if (di.flags & XEN_DOMINF_hvm_guest &&
               libxl_domain_info(x->ctx, &info, domid) == 0 &&
               info.domain_type == LIBXL_DOMAIN_TYPE_HVM) {
        xcp__xen_hvm_cd_quiesce(x->xs, domid, vdev);
        rc = libxl_cdrom_insert(x->ctx, domid, &d, NULL);
        rc = rc ? libxl_fail(err, rc, "libxl_cdrom_insert", domid) : 0;
    } else if ((rc = qdisk_first(x, domid, &d, err)) == 0) {
        /* PV or PVH: libxl_cdrom_insert is for HVM only */
        rc = xcp__xen_pv_cd_change(x->ctx, domid, &d, &call);
        if (rc)
            rc = libxl_fail(err, rc, call, domid);
        else if (d.pdev_path)
            rc = qdisk_served(x, domid, &d, err);
    }
    libxl_device_disk_dispose(&d);
    libxl_dominfo_dispose(&info);
    return rc;
}

static int xen_nic_plug(void *self, uint32_t domid, const xcp_hv_nic *nic,
                        xcp_hv_error *err)
{
    struct xen *x = self;
    libxl_device_nic d;
    xc_domaininfo_t di;
    int rc = guest(x, domid, "plug a NIC into", &di, err);

    if (rc < 0 || (rc = xcp__xen_bridge_ensure(nic->bridge, err)) < 0)
        return rc;
    if (!nic_to_libxl(nic, &d)) {
        rc = oom(err);
    } else {
        rc = libxl_device_nic_add(x->ctx, domid, &d, NULL);
        rc = rc ? libxl_fail(err, rc, "libxl_device_nic_add", domid) : 0;
    }
    libxl_device_nic_dispose(&d);
    return rc;
}

static int xen_nic_unplug(void *self, uint32_t domid, uint32_t devid,
                          bool force, xcp_hv_error *err)
{
    struct xen *x = self;
    libxl_device_nic d;
    xc_domaininfo_t di;
    int rc = guest(x, domid, "unplug a NIC from", &di, err);

    if (rc < 0)
        return rc;
    libxl_device_nic_init(&d);
    if (libxl_devid_to_device_nic(x->ctx, domid, (int)devid, &d) != 0) {
        rc = xcp__hv_error_set(err, -ENOENT,
                               "xen: domain %" PRIu32 " has no NIC %" PRIu32,
                               domid, devid);
    } else {
        rc = force ? libxl_device_nic_destroy(x->ctx, domid, &d, NULL)
                   : libxl_device_nic_remove(x->ctx, domid, &d, NULL);
        rc = rc ? libxl_fail(err, rc, "libxl_device_nic_remove", domid) : 0;
    }
    libxl_device_nic_dispose(&d);
    return rc;
}

/* ---- consoles, guest agent ----------------------------------------------- */

static int xen_console_open(void *self, uint32_t domid,
                            xcp_hv_console_protocol proto, int *fd,
                            xcp_hv_error *err)
{
    struct xen *x = self;
    xcp_hv_domain_info d;
    xc_domaininfo_t di;
    int rc = get_info(x, domid, &di, err);

    if (rc < 0)
        return rc;
    fill_info(x, &di, &d);
    return xcp__xen_console_open(x->xs, &d, proto, fd, err);
}

static int xen_domain_guest_data(void *self, uint32_t domid,
                                 xcp_hv_guest_datum **out, size_t *n,
                                 xcp_hv_error *err)
{
    struct xen *x = self;
    xc_domaininfo_t di;
    int rc = get_info(x, domid, &di, err);

    *out = NULL;
    *n = 0;
    if (rc < 0)
        return rc;
    /* as the sim's: a guest that has shut down reports nothing any more */
    if (di.flags & XEN_DOMINF_shutdown)
        return 0;
    return xcp__xen_guest_data(x->xs, domid, out, n, err);
}

/* ---- lent to xen_migrate.c (xen_migrate.h) ------------------------------ */

libxl_ctx *xcp__xen_ctx(void *self)
{
    return ((struct xen *)self)->ctx;
}

int xcp__xen_guest(void *self, uint32_t domid, const char *what,
                   xcp_hv_error *err)
{
    xc_domaininfo_t di;

    return guest(self, domid, what, &di, err);
}

int xcp__xen_libxl_fail(xcp_hv_error *err, int rc, const char *call,
                        uint32_t domid)
{
    return libxl_fail(err, rc, call, domid);
}

int xcp__xen_check_fit(void *self, const char *uuid, uint64_t need,
                       xcp_hv_error *err)
{
    return check_fit(self, uuid, need, err);
}

int xcp__xen_destroy(void *self, uint32_t domid, xcp_hv_error *err)
{
    return destroy(self, domid, err);
}

void xcp__xen_mark(void *self, uint32_t domid)
{
    xcp__hv_dirty_mark(&((struct xen *)self)->dirty, domid);
}

uint64_t xcp__xen_now_ns(void)
{
    return mono_ns();
}

void xcp__xen_timing(const char *what, uint32_t domid, uint64_t t0_ns)
{
    const char *trace = getenv("XCP_TRACE");
    double s = t0_ns ? (double)(mono_ns() - t0_ns) / NS_PER_S : 0;
    struct timespec now;

    if (t0_ns && getenv("XCP_XEN_TIMING"))
        fprintf(stderr, "xen: timing: %s domain %" PRIu32 " %.3f s\n", what,
                domid, s);
    if (!trace || !*trace)
        return;
    /* the library's trace format (core/log.c), stamped with the wall
     * clock: bench/bench_xen.sh places it within the call it timed */
    clock_gettime(CLOCK_REALTIME, &now);
    fprintf(stderr, "libxcp trace: %lld.%06ld xen: %s domain %" PRIu32,
            (long long)now.tv_sec, now.tv_nsec / 1000, what, domid);
    if (t0_ns)
        fprintf(stderr, " (%.3f s)", s);
    fputc('\n', stderr);
}

/* ---- events -------------------------------------------------------------- */

static int xen_event_fd(void *self, int *fd, xcp_hv_error *err)
{
    (void)err;
    *fd = event_fd_of(self);
    return 0;
}

static int xen_event_read(void *self, uint32_t *domids, size_t cap,
                          size_t *n, xcp_hv_error *err)
{
    struct xen *x = self;
    int rc = drain(x, err);

    if (rc < 0)
        return rc;
    *n = xcp__hv_dirty_take(&x->dirty, domids, cap);
    return 0;
}

static int xen_bridge_remove(void *self, const char *bridge, xcp_hv_error *err)
{
    (void)self;
    return xcp__xen_bridge_remove(bridge, err);
}

static int xen_bridge_ensure(void *self, const char *bridge, xcp_hv_error *err)
{
    (void)self;
    return xcp__xen_bridge_ensure(bridge, err);
}

const xcp_hv_driver xcp__hv_xen_driver = {
    .version = XCP_HV_DRIVER_VERSION,
    .name = "xen",
    .description = "Xen through libxenlight and libxenctrl",
    .open = xen_open,
    .close = xen_close,
    .host_info = xen_host_info,
    .host_cpu_usage = xen_host_cpu_usage,
    .memory_overhead = xen_memory_overhead,
    .domain_create = xen_domain_create,
    .domain_destroy = xen_domain_destroy,
    .domain_pause = xen_domain_pause,
    .domain_unpause = xen_domain_unpause,
    .domain_shutdown = xen_domain_shutdown,
    .domain_wait = xen_domain_wait,
    .domain_suspend = xen_domain_suspend,
    .domain_restore = xen_domain_restore,
    .domain_set_memory_target = xen_domain_set_memory_target,
    .domain_set_vcpus = xen_domain_set_vcpus,
    .domain_list = xen_domain_list,
    .domain_info = xen_domain_info,
    .domain_vcpu_info = xen_domain_vcpu_info,
    .disk_plug = xen_disk_plug,
    .disk_unplug = xen_disk_unplug,
    .cdrom_insert = xen_cdrom_insert,
    .nic_plug = xen_nic_plug,
    .nic_unplug = xen_nic_unplug,
    .event_fd = xen_event_fd,
    .event_read = xen_event_read,
    .fault = NULL, /* real guests fail on their own */
    .console_open = xen_console_open,
    .domain_guest_data = xen_domain_guest_data,
    .domain_migrate_local = xcp__xen_domain_migrate_local,
    .bridge_remove = xen_bridge_remove,
    .bridge_ensure = xen_bridge_ensure,
    /* QEMU keeps its images open: no disk_pause/reopen (xen_blk.c) */
    .disk_resize = xcp__xen_disk_resize,
    .disk_cbt = xcp__xen_disk_cbt,
    .disk_size = xcp__xen_disk_size,
    .disk_snapshot = xcp__xen_disk_snapshot,
    .disk_stream = xcp__xen_disk_stream,
    .disk_stream_cancel = xcp__xen_disk_stream_cancel,
    .stats = xen_stats,
};

#else
/* ISO C wants something in every translation unit. */
typedef int xcp__hv_xen_not_built;
#endif /* XCP_HAVE_XEN */
