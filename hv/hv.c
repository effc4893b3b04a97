/*
 * hv/hv.c - the hypervisor driver registry: which drivers there are (sim
 * built in; xen a module of its own, loaded at its first use), how one is
 * chosen (XCP_HV, or "auto": xen if it opens, else sim), and the xcp__hv_*
 * wrappers through which the library calls a driver, so that an empty slot
 * or a driver that forgot to fill its error is handled in one place.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dladdr */
#endif
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "hv_internal.h"

struct xcp_hv {
    pthread_mutex_t lock; /* a driver instance is used by one thread at a
                             time: every wrapper holds this */
    const xcp_hv_driver *drv;
    void *self;
    bool fell_back;
    char fallback_reason[XCP_HV_ERROR_MSG_MAX + 32];
};

/*
 * The drivers: built in, or a module (a shared object linked with the
 * libraries the driver needs, dlopened when the driver is first asked
 * for). The xen driver is one, so that a process that never opens it
 * (xe talking to a daemon, a client of a remote host) never loads the
 * Xen libraries and what they pull in.
 */
struct entry {
    const char *name;
    const xcp_hv_driver *builtin;
    const char *module;          /* file name, see module_load */
    bool tried;                  /* under load_lock: */
    const xcp_hv_driver *loaded;
    char why[XCP_HV_ERROR_MSG_MAX]; /* why it did not load */
};

static struct entry drivers[] = {
#ifdef XCP_HAVE_XEN
    {"xen", NULL, "xcp-hv-xen.so", false, NULL, ""},
#endif
    {"sim", &xcp__hv_sim_driver, NULL, false, NULL, ""},
    {"sim-qemu", &xcp__hv_sim_qemu_driver, NULL, false, NULL, ""},
};

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;

#define N_DRIVERS (sizeof(drivers) / sizeof(drivers[0]))

/* ---- registry ------------------------------------------------------------ */

static void known_drivers(char *buf, size_t size)
{
    size_t i, len = 0;

    buf[0] = '\0';
    for (i = 0; i < N_DRIVERS && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%s",
                                i ? ", " : "", drivers[i].name);
}

/* The directory of the object this code is in (libxcp.so, or a program
 * linked with the library's objects) into dir; false if unknown. */
static bool own_dir(char *dir, size_t size)
{
    Dl_info info;
    char *slash;

    if (!dladdr((void *)own_dir, &info) || !info.dli_fname ||
        (size_t)snprintf(dir, size, "%s", info.dli_fname) >= size ||
        !(slash = strrchr(dir, '/')))
        return false;
    *slash = '\0';
    return true;
}

/*
 * Loads module file and returns its table, or NULL with the reason in
 * why. It is looked for in $XCP_HV_MODULE_DIR alone when that is set;
 * else beside the library (a build tree: libtool builds both into
 * lib/libxcp/.libs), then where `make install` puts it (XCP_MODULEDIR).
 */
static const xcp_hv_driver *module_load(const char *file, char *why,
                                        size_t size)
{
    const char *env = getenv("XCP_HV_MODULE_DIR");
    char dirs[2][PATH_MAX], path[PATH_MAX + 64];
    const xcp_hv_driver *(*entry)(void);
    const xcp_hv_driver *drv;
    size_t n = 0, i;
    void *h;

    if (env && *env) {
        snprintf(dirs[n++], PATH_MAX, "%s", env);
    } else {
        if (own_dir(dirs[n], PATH_MAX))
            n++;
        snprintf(dirs[n++], PATH_MAX, "%s", XCP_MODULEDIR);
    }
    snprintf(why, size, "%s is in none of", file);
    for (i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "%s/%s", dirs[i], file);
        if (access(path, F_OK) == 0)
            break;
        snprintf(why + strlen(why), size - strlen(why), " %s", dirs[i]);
    }
    if (i == n)
        return NULL;
    if (!(h = dlopen(path, RTLD_NOW | RTLD_LOCAL))) {
        snprintf(why, size, "%s", dlerror());
        return NULL;
    }
    *(void **)&entry = dlsym(h, XCP__HV_MODULE_ENTRY);
    drv = entry ? entry() : NULL;
    if (!drv) {
        snprintf(why, size, "%.300s: no %s()", path, XCP__HV_MODULE_ENTRY);
        dlclose(h);
        return NULL;
    }
    return drv; /* the module stays loaded: its table is in use */
}

/* Entry d's driver, loading its module the first time; NULL with the
 * reason in err if it cannot be had. */
static const xcp_hv_driver *entry_driver(struct entry *d, xcp_hv_error *err)
{
    const xcp_hv_driver *drv;

    if (d->builtin)
        return d->builtin;
    pthread_mutex_lock(&load_lock);
    if (!d->tried) {
        d->tried = true;
        d->loaded = module_load(d->module, d->why, sizeof(d->why));
    }
    drv = d->loaded;
    if (!drv)
        xcp__hv_error_set(err, -ENOENT, "hypervisor driver %s did not "
                          "load: %s", d->name, d->why);
    pthread_mutex_unlock(&load_lock);
    return drv;
}

static struct entry *entry_find(const char *name)
{
    size_t i;

    for (i = 0; name && i < N_DRIVERS; i++)
        if (strcmp(drivers[i].name, name) == 0)
            return &drivers[i];
    return NULL;
}

const xcp_hv_driver *xcp__hv_driver_find(const char *name,
                                         xcp_hv_error *err)
{
    struct entry *d = entry_find(name);
    char known[128];

    if (d)
        return entry_driver(d, err);
    known_drivers(known, sizeof(known));
    xcp__hv_error_set(err, -ENOENT, "no hypervisor driver named '%s' "
                      "(there are: %s)", name ? name : "", known);
    return NULL;
}

static int open_driver(const xcp_hv_driver *drv, const char *state_dir,
                       xcp_hv **out, xcp_hv_error *err)
{
    xcp_hv *hv = NULL;
    int rc;

    if (drv->version < 1 || !drv->open || !drv->close) {
        rc = xcp__hv_error_set(err, -EINVAL,
                               "hypervisor driver %s: unusable table "
                               "(version %u)", drv->name, drv->version);
        goto out;
    }
    hv = calloc(1, sizeof(*hv));
    if (!hv) {
        rc = xcp__hv_error_set(err, -ENOMEM, "hypervisor driver %s: %s",
                               drv->name, strerror(ENOMEM));
        goto out;
    }
    hv->drv = drv;
    pthread_mutex_init(&hv->lock, NULL);
    xcp__hv_error_clear(err);
    rc = drv->open(&hv->self, state_dir, err);
    if (rc < 0) {
        if (err && err->code >= 0)
            xcp__hv_error_set(err, rc, "hypervisor driver %s: open: %s",
                              drv->name, strerror(-rc));
        goto out;
    }
    *out = hv;
    hv = NULL;
    rc = 0;
out:
    if (hv)
        pthread_mutex_destroy(&hv->lock);
    free(hv);
    return rc;
}

int xcp__hv_open(xcp_hv **out, const char *state_dir, const char *name,
                 xcp_hv_error *err)
{
    const xcp_hv_driver *drv, *sim = &xcp__hv_sim_driver;
    xcp_hv_error xen_err;
    char reason[sizeof((*out)->fallback_reason)];
    int rc;

    *out = NULL;
    if (!name || !*name)
        name = getenv("XCP_HV");
    if (!name || !*name)
        name = "auto";
    if (strcmp(name, "auto") != 0) {
        drv = xcp__hv_driver_find(name, err);
        rc = drv ? open_driver(drv, state_dir, out, err) : -ENOENT;
        goto out;
    }

    if (!entry_find("xen")) {
        snprintf(reason, sizeof(reason), "xen driver not compiled in");
    } else if (!(drv = xcp__hv_driver_find("xen", &xen_err))) {
        snprintf(reason, sizeof(reason), "%s", xen_err.message);
    } else {
        rc = open_driver(drv, state_dir, out, &xen_err);
        if (rc == 0)
            goto out;
        snprintf(reason, sizeof(reason), "xen driver did not open: %s",
                 xen_err.message);
    }
    rc = open_driver(sim, state_dir, out, err);
    if (rc == 0) {
        (*out)->fell_back = true;
        memcpy((*out)->fallback_reason, reason, sizeof(reason));
    }
out:
    return rc;
}

int xcp__hv_open_driver(xcp_hv **out, const xcp_hv_driver *drv,
                        const char *state_dir, xcp_hv_error *err)
{
    *out = NULL;
    return open_driver(drv, state_dir, out, err);
}

void xcp__hv_close(xcp_hv *hv)
{
    if (!hv)
        return;
    hv->drv->close(hv->self);
    pthread_mutex_destroy(&hv->lock);
    free(hv);
}

const char *xcp__hv_name(const xcp_hv *hv)
{
    return hv->drv->name;
}

const xcp_hv_driver *xcp__hv_driver(const xcp_hv *hv)
{
    return hv->drv;
}

void xcp__hv_set_image_ops(xcp_hv *hv, const xcp_hv_image_ops *ops)
{
    if (hv->drv->version < 5 || !hv->drv->image_ops)
        return;
    pthread_mutex_lock(&hv->lock);
    hv->drv->image_ops(hv->self, ops);
    pthread_mutex_unlock(&hv->lock);
}

const char *xcp__hv_fallback_reason(const xcp_hv *hv)
{
    return hv->fell_back ? hv->fallback_reason : NULL;
}

/* ---- wrappers ------------------------------------------------------------ */

bool xcp__hv_supports(const xcp_hv *hv, xcp_hv_op op)
{
    const xcp_hv_driver *d = hv->drv;

    switch (op) {
    case XCP_HV_OP_HOST_INFO: return d->host_info;
    case XCP_HV_OP_HOST_CPU_USAGE: return d->host_cpu_usage;
    case XCP_HV_OP_MEMORY_OVERHEAD: return d->memory_overhead;
    case XCP_HV_OP_DOMAIN_CREATE: return d->domain_create;
    case XCP_HV_OP_DOMAIN_DESTROY: return d->domain_destroy;
    case XCP_HV_OP_DOMAIN_PAUSE: return d->domain_pause;
    case XCP_HV_OP_DOMAIN_UNPAUSE: return d->domain_unpause;
    case XCP_HV_OP_DOMAIN_SHUTDOWN: return d->domain_shutdown;
    case XCP_HV_OP_DOMAIN_WAIT: return d->domain_wait;
    case XCP_HV_OP_DOMAIN_SUSPEND: return d->domain_suspend;
    case XCP_HV_OP_DOMAIN_RESTORE: return d->domain_restore;
    case XCP_HV_OP_DOMAIN_SET_MEMORY_TARGET:
        return d->domain_set_memory_target;
    case XCP_HV_OP_DOMAIN_SET_VCPUS: return d->domain_set_vcpus;
    case XCP_HV_OP_DOMAIN_LIST: return d->domain_list;
    case XCP_HV_OP_DOMAIN_INFO: return d->domain_info;
    case XCP_HV_OP_DOMAIN_VCPU_INFO: return d->domain_vcpu_info;
    case XCP_HV_OP_DISK_PLUG: return d->disk_plug;
    case XCP_HV_OP_DISK_UNPLUG: return d->disk_unplug;
    case XCP_HV_OP_CDROM_INSERT: return d->cdrom_insert;
    case XCP_HV_OP_NIC_PLUG: return d->nic_plug;
    case XCP_HV_OP_NIC_UNPLUG: return d->nic_unplug;
    case XCP_HV_OP_EVENT_FD: return d->event_fd;
    case XCP_HV_OP_EVENT_READ: return d->event_read;
    case XCP_HV_OP_FAULT: return d->fault;
    case XCP_HV_OP_CONSOLE_OPEN: return d->version >= 2 && d->console_open;
    case XCP_HV_OP_DOMAIN_GUEST_DATA: return d->version >= 2 && d->domain_guest_data;
    case XCP_HV_OP_DOMAIN_MIGRATE_LOCAL: return d->version >= 2 && d->domain_migrate_local;
    case XCP_HV_OP_BRIDGE_REMOVE: return d->version >= 2 && d->bridge_remove;
    case XCP_HV_OP_BRIDGE_ENSURE: return d->version >= 3 && d->bridge_ensure;
    case XCP_HV_OP_DISK_PAUSE: return d->version >= 4 && d->disk_pause;
    case XCP_HV_OP_DISK_REOPEN: return d->version >= 4 && d->disk_reopen;
    case XCP_HV_OP_DISK_RESIZE: return d->version >= 4 && d->disk_resize;
    case XCP_HV_OP_DISK_CBT: return d->version >= 4 && d->disk_cbt;
    case XCP_HV_OP_DISK_SIZE: return d->version >= 4 && d->disk_size;
    case XCP_HV_OP_DISK_SNAPSHOT: return d->version >= 5 && d->disk_snapshot;
    case XCP_HV_OP_DISK_STREAM: return d->version >= 6 && d->disk_stream;
    case XCP_HV_OP_DISK_STREAM_CANCEL:
        return d->version >= 7 && d->disk_stream_cancel;
    case XCP_HV_OP_STATS: return d->version >= 8 && d->stats;
    case XCP_HV_OP_DOMAIN_MIGRATE_SEND:
        return d->version >= 9 && d->domain_migrate_send;
    case XCP_HV_OP_DOMAIN_MIGRATE_RECEIVE:
        return d->version >= 9 && d->domain_migrate_receive;
    case XCP_HV_OP__COUNT: break;
    }
    return false;
}

/* Makes sure a failure always carries a negative code and some message. */
static int finish(const xcp_hv *hv, xcp_hv_op op, int rc, xcp_hv_error *err)
{
    if (rc >= 0)
        return rc;
    if (err && (err->code >= 0 || !err->message[0]))
        xcp__hv_error_set(err, rc, "%s driver: %s failed: %s",
                          hv->drv->name, xcp__hv_op_name(op), strerror(-rc));
    return rc;
}

static int unsupported(const xcp_hv *hv, xcp_hv_op op, xcp_hv_error *err)
{
    return xcp__hv_error_set(err, -ENOTSUP,
                             "%s driver does not support %s", hv->drv->name,
                             xcp__hv_op_name(op));
}

/* The driver's lock, and where the time went (t[0]: asked, t[1]: got,
 * t[2]: only set by hv_unlock): with $XCP_TRACE, a call that waited for
 * the instance or took long is traced, as the engine's lock is. */
static void hv_lock(xcp_hv *hv, int64_t t[3])
{
    t[0] = t[1] = xcp__now_ms();
    if (pthread_mutex_trylock(&hv->lock) == 0)
        return;
    pthread_mutex_lock(&hv->lock);
    t[1] = xcp__now_ms();
}

static void hv_unlock(xcp_hv *hv, xcp_hv_op op, int64_t t[3])
{
    pthread_mutex_unlock(&hv->lock);
    t[2] = xcp__now_ms();
    if (t[1] - t[0] >= XCP__TRACE_WAIT_MS ||
        t[2] - t[1] >= 10 * XCP__TRACE_WAIT_MS)
        xcp__trace("hv %s: %" PRId64 " ms (after %" PRId64 " ms waiting for "
                   "the driver)", xcp__hv_op_name(op), t[2] - t[1],
                   t[1] - t[0]);
}

/* One wrapper per slot: check the slot, clear err, call (serialised:
 * the engine calls from several threads), normalise. */
#define HV_CALL(hv, op, slot, err, ...)                                    \
    do {                                                                   \
        int rc_;                                                           \
        if (!(hv)->drv->slot)                                              \
            return unsupported(hv, op, err);                               \
        int64_t t_[3];                                                     \
        xcp__hv_error_clear(err);                                          \
        hv_lock(hv, t_);                                                   \
        rc_ = (hv)->drv->slot((hv)->self, __VA_ARGS__);                    \
        hv_unlock(hv, op, t_);                                             \
        return finish(hv, op, rc_, err);                                   \
    } while (0)

int xcp__hv_host_info(xcp_hv *hv, xcp_hv_host_info *out, xcp_hv_error *err)
{
    HV_CALL(hv, XCP_HV_OP_HOST_INFO, host_info, err, out, err);
}

int xcp__hv_host_cpu_usage(xcp_hv *hv, double **util, size_t *n,
                           xcp_hv_error *err)
{
    HV_CALL(hv, XCP_HV_OP_HOST_CPU_USAGE, host_cpu_usage, err, util, n, err);
}

int xcp__hv_memory_overhead(xcp_hv *hv, const xcp_hv_domain_config *cfg,
                            uint64_t *bytes, xcp_hv_error *err)
{
    HV_CALL(hv, XCP_HV_OP_MEMORY_OVERHEAD, memory_overhead, err, cfg, bytes,
            err);
}

int xcp__hv_domain_create(xcp_hv *hv, const xcp_hv_domain_config *cfg,
                          bool paused, uint32_t *domid, xcp_hv_error *err)
{
    HV_CALL(hv, XCP_HV_OP_DOMAIN_CREATE, domain_create, err, cfg, paused,
            domid, err);
}

int xcp__hv_domain_destroy(xcp_hv *hv, uint32_t domid, xcp_hv_error *err)
{
    HV_CALL(hv, XCP_HV_OP_DOMAIN_DESTROY, domain_destroy, err, domid, err);
}

int xcp__hv_domain_pause(xcp_hv *hv, uint32_t domid, xcp_hv_error *err)
{
    HV_CALL(hv, XCP_HV_OP_DOMAIN_PAUSE, domain_pause, err, domid, err);
}

int xcp__hv_domain_unpause(xcp_hv *hv, uint32_t domid, xcp_hv_error *err)
{
    HV_CALL(hv, XCP_HV_OP_DOMAIN_UNPAUSE, domain_unpause, err, domid, err);
}

int xcp__hv_domain_shutdown(xcp_hv *hv, uint32_t domid,
                            xcp_hv_shutdown_reason request, xcp_hv_error *err)
{
    HV_CALL(hv, XCP_HV_OP_DOMAIN_SHUTDOWN, domain_shutdown, err, domid,
            request, err);
}

int xcp__hv_domain_wait(xcp_hv *hv, uint32_t domid, int timeout_ms,
                        xcp_hv_domain_info *out, xcp_hv_error *err)
{
    HV_CALL(hv, XCP_HV_OP_DOMAIN_WAIT, domain_wait, err, domid, timeout_ms,
            out, err);
}

int xcp__hv_domain_suspend(xcp_hv *hv, uint32_t domid, const char *image_path,
                           xcp_hv_error *err)
{
    HV_CALL(hv, XCP_HV_OP_DOMAIN_SUSPEND, domain_suspend, err, domid,
            image_path, err);
}

int xcp__hv_domain_restore(xcp_hv *hv, const xcp_hv_domain_config *cfg,
                           const char *image_path, bool paused,
                           uint32_t *domid, xcp_hv_error *err)
{
    HV_CALL(hv, XCP_HV_OP_DOMAIN_RESTORE, domain_restore, err, cfg,
            image_path, paused, domid, err);
}

int xcp__hv_domain_set_memory_target(xcp_hv *hv, uint32_t domid,
                                     uint64_t bytes, xcp_hv_error *err)
{
    HV_CALL(hv, XCP_HV_OP_DOMAIN_SET_MEMORY_TARGET, domain_set_memory_target,
            err, domid, bytes, err);
}

int xcp__hv_domain_set_vcpus(xcp_hv *hv, uint32_t domid, uint32_t online,
                             xcp_hv_error *err)
{
    HV_CALL(hv, XCP_HV_OP_DOMAIN_SET_VCPUS, domain_set_vcpus, err, domid,
            online, err);
}

int xcp__hv_domain_list(xcp_hv *hv, xcp_hv_domain_info **out, size_t *n,
                        xcp_hv_error *err)
{
    HV_CALL(hv, XCP_HV_OP_DOMAIN_LIST, domain_list, err, out, n, err);
}

int xcp__hv_domain_info(xcp_hv *hv, uint32_t domid, xcp_hv_domain_info *out,
                        xcp_hv_error *err)
{
    HV_CALL(hv, XCP_HV_OP_DOMAIN_INFO, domain_info, err, domid, out, err);
}

int xcp__hv_domain_vcpu_info(xcp_hv *hv, uint32_t domid,
                             xcp_hv_vcpu_info **out, size_t *n,
                             xcp_hv_error *err)
{
    HV_CALL(hv, XCP_HV_OP_DOMAIN_VCPU_INFO, domain_vcpu_info, err, domid, out,
            n, err);
}

int xcp__hv_disk_plug(xcp_hv *hv, uint32_t domid, const xcp_hv_disk *disk,
                      xcp_hv_error *err)
{
    HV_CALL(hv, XCP_HV_OP_DISK_PLUG, disk_plug, err, domid, disk, err);
}

int xcp__hv_disk_unplug(xcp_hv *hv, uint32_t domid, const char *vdev,
                        bool force, xcp_hv_error *err)
{
    HV_CALL(hv, XCP_HV_OP_DISK_UNPLUG, disk_unplug, err, domid, vdev, force,
            err);
}

int xcp__hv_cdrom_insert(xcp_hv *hv, uint32_t domid, const char *vdev,
                         const char *path, const char *format,
                         xcp_hv_error *err)
{
    HV_CALL(hv, XCP_HV_OP_CDROM_INSERT, cdrom_insert, err, domid, vdev, path,
            format, err);
}

int xcp__hv_nic_plug(xcp_hv *hv, uint32_t domid, const xcp_hv_nic *nic,
                     xcp_hv_error *err)
{
    HV_CALL(hv, XCP_HV_OP_NIC_PLUG, nic_plug, err, domid, nic, err);
}

int xcp__hv_nic_unplug(xcp_hv *hv, uint32_t domid, uint32_t devid, bool force,
                       xcp_hv_error *err)
{
    HV_CALL(hv, XCP_HV_OP_NIC_UNPLUG, nic_unplug, err, domid, devid, force,
            err);
}

int xcp__hv_event_fd(xcp_hv *hv, int *fd, xcp_hv_error *err)
{
    HV_CALL(hv, XCP_HV_OP_EVENT_FD, event_fd, err, fd, err);
}

int xcp__hv_event_read(xcp_hv *hv, uint32_t *domids, size_t cap, size_t *n,
                       xcp_hv_error *err)
{
    HV_CALL(hv, XCP_HV_OP_EVENT_READ, event_read, err, domids, cap, n, err);
}

int xcp__hv_fault(xcp_hv *hv, const xcp_hv_fault *fault, xcp_hv_error *err)
{
    HV_CALL(hv, XCP_HV_OP_FAULT, fault, err, fault, err);
}

int xcp__hv_console_open(xcp_hv *hv, uint32_t domid,
                         xcp_hv_console_protocol proto, int *fd,
                         xcp_hv_error *err)
{
    /* slots past the end of an older table are not there to read */
    if (hv->drv->version < 2)
        return unsupported(hv, XCP_HV_OP_CONSOLE_OPEN, err);
    HV_CALL(hv, XCP_HV_OP_CONSOLE_OPEN, console_open, err, domid, proto, fd,
            err);
}

int xcp__hv_domain_guest_data(xcp_hv *hv, uint32_t domid,
                              xcp_hv_guest_datum **out, size_t *n,
                              xcp_hv_error *err)
{
    if (hv->drv->version < 2)
        return unsupported(hv, XCP_HV_OP_DOMAIN_GUEST_DATA, err);
    HV_CALL(hv, XCP_HV_OP_DOMAIN_GUEST_DATA, domain_guest_data, err, domid,
            out, n, err);
}

int xcp__hv_domain_migrate_local(xcp_hv *hv, uint32_t domid,
                                 uint32_t *new_domid, xcp_hv_error *err)
{
    if (hv->drv->version < 2)
        return unsupported(hv, XCP_HV_OP_DOMAIN_MIGRATE_LOCAL, err);
    HV_CALL(hv, XCP_HV_OP_DOMAIN_MIGRATE_LOCAL, domain_migrate_local, err,
            domid, new_domid, err);
}

int xcp__hv_domain_migrate_send(xcp_hv *hv, uint32_t domid, int fd,
                                xcp_hv_migrate_stats *st, xcp_hv_error *err)
{
    if (hv->drv->version < 9)
        return unsupported(hv, XCP_HV_OP_DOMAIN_MIGRATE_SEND, err);
    memset(st, 0, sizeof(*st));
    HV_CALL(hv, XCP_HV_OP_DOMAIN_MIGRATE_SEND, domain_migrate_send, err,
            domid, fd, st, err);
}

int xcp__hv_domain_migrate_receive(xcp_hv *hv,
                                   const xcp_hv_domain_config *cfg, int fd,
                                   uint32_t *domid, bool *was_running,
                                   xcp_hv_error *err)
{
    if (hv->drv->version < 9)
        return unsupported(hv, XCP_HV_OP_DOMAIN_MIGRATE_RECEIVE, err);
    *was_running = false;
    HV_CALL(hv, XCP_HV_OP_DOMAIN_MIGRATE_RECEIVE, domain_migrate_receive,
            err, cfg, fd, domid, was_running, err);
}

int xcp__hv_bridge_remove(xcp_hv *hv, const char *bridge, xcp_hv_error *err)
{
    if (hv->drv->version < 2)
        return unsupported(hv, XCP_HV_OP_BRIDGE_REMOVE, err);
    HV_CALL(hv, XCP_HV_OP_BRIDGE_REMOVE, bridge_remove, err, bridge, err);
}

int xcp__hv_bridge_ensure(xcp_hv *hv, const char *bridge, xcp_hv_error *err)
{
    if (hv->drv->version < 3)
        return unsupported(hv, XCP_HV_OP_BRIDGE_ENSURE, err);
    HV_CALL(hv, XCP_HV_OP_BRIDGE_ENSURE, bridge_ensure, err, bridge, err);
}

/* The version-4 slots: an older table has none of them. */
#define HV_CALL4(hv, op, slot, err, ...)                                   \
    do {                                                                   \
        if ((hv)->drv->version < 4)                                        \
            return unsupported(hv, op, err);                               \
        HV_CALL(hv, op, slot, err, __VA_ARGS__);                           \
    } while (0)

int xcp__hv_disk_pause(xcp_hv *hv, uint32_t domid, const char *vdev,
                       xcp_hv_error *err)
{
    HV_CALL4(hv, XCP_HV_OP_DISK_PAUSE, disk_pause, err, domid, vdev, err);
}

int xcp__hv_disk_reopen(xcp_hv *hv, uint32_t domid, const char *vdev,
                        const char *path, const char *format,
                        xcp_hv_error *err)
{
    HV_CALL4(hv, XCP_HV_OP_DISK_REOPEN, disk_reopen, err, domid, vdev, path,
             format, err);
}

int xcp__hv_disk_resize(xcp_hv *hv, uint32_t domid, const char *vdev,
                        uint64_t bytes, xcp_hv_error *err)
{
    HV_CALL4(hv, XCP_HV_OP_DISK_RESIZE, disk_resize, err, domid, vdev, bytes,
             err);
}

int xcp__hv_disk_cbt(xcp_hv *hv, uint32_t domid, const char *vdev,
                     const char *bitmap, bool on, xcp_hv_error *err)
{
    HV_CALL4(hv, XCP_HV_OP_DISK_CBT, disk_cbt, err, domid, vdev, bitmap, on,
             err);
}

int xcp__hv_disk_size(xcp_hv *hv, uint32_t domid, const char *vdev,
                      uint64_t *bytes, xcp_hv_error *err)
{
    HV_CALL4(hv, XCP_HV_OP_DISK_SIZE, disk_size, err, domid, vdev, bytes, err);
}

int xcp__hv_disk_snapshot(xcp_hv *hv, uint32_t domid, const char *vdev,
                          const char *overlay, const char *format,
                          xcp_hv_error *err)
{
    if (hv->drv->version < 5)
        return unsupported(hv, XCP_HV_OP_DISK_SNAPSHOT, err);
    HV_CALL(hv, XCP_HV_OP_DISK_SNAPSHOT, disk_snapshot, err, domid, vdev,
            overlay, format, err);
}

int xcp__hv_disk_stream(xcp_hv *hv, uint32_t domid, const char *vdev,
                        unsigned keep, const char *backing, uint64_t *done,
                        uint64_t *total, xcp_hv_error *err)
{
    if (hv->drv->version < 6)
        return unsupported(hv, XCP_HV_OP_DISK_STREAM, err);
    HV_CALL(hv, XCP_HV_OP_DISK_STREAM, disk_stream, err, domid, vdev, keep,
            backing, done, total, err);
}

int xcp__hv_disk_stream_cancel(xcp_hv *hv, uint32_t domid, const char *vdev,
                               xcp_hv_error *err)
{
    if (hv->drv->version < 7)
        return unsupported(hv, XCP_HV_OP_DISK_STREAM_CANCEL, err);
    HV_CALL(hv, XCP_HV_OP_DISK_STREAM_CANCEL, disk_stream_cancel, err, domid,
            vdev, err);
}

int xcp__hv_stats(xcp_hv *hv, xcp_hv_stats *out, xcp_hv_error *err)
{
    memset(out, 0, sizeof(*out));
    if (!xcp__hv_supports(hv, XCP_HV_OP_STATS))
        return unsupported(hv, XCP_HV_OP_STATS, err);
    HV_CALL(hv, XCP_HV_OP_STATS, stats, err, out, err);
}

void xcp__hv_stats_free(xcp_hv_stats *st)
{
    free(st->pcpu_busy_ns);
    free(st->doms);
    free(st->vcpu_ns);
    free(st->devs);
    free(st->guest_free_kib);
    memset(st, 0, sizeof(*st));
}
