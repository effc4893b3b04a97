/*
 * hv/hv.c - the hypervisor driver registry: which drivers are compiled in,
 * how one is chosen (XCP_HV, or "auto": xen if it opens, else sim), and the
 * xcp__hv_* wrappers through which the library calls a driver, so that an
 * empty slot or a driver that forgot to fill its error is handled in one
 * place.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* getline */
#endif
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv_internal.h"

struct xcp_hv {
    pthread_mutex_t lock; /* a driver instance is used by one thread at a
                             time: every wrapper holds this */
    const xcp_hv_driver *drv;
    void *self;
    bool fell_back;
    char fallback_reason[XCP_HV_ERROR_MSG_MAX + 32];
};

static const xcp_hv_driver *const drivers[] = {
#ifdef XCP_HAVE_XEN
    &xcp__hv_xen_driver,
#endif
    &xcp__hv_sim_driver,
};

#define N_DRIVERS (sizeof(drivers) / sizeof(drivers[0]))

/* ---- errors -------------------------------------------------------------- */

int xcp__hv_error_set(xcp_hv_error *err, int code, const char *fmt, ...)
{
    va_list ap;

    if (err) {
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
    }
    return code;
}

void xcp__hv_error_clear(xcp_hv_error *err)
{
    if (err) {
        err->code = 0;
        err->message[0] = '\0';
    }
}

/* ---- host CPU identity --------------------------------------------------- */

/* Copies the value of "key<spaces>: value" from a cpuinfo line. */
static bool cpuinfo_field(const char *line, const char *key, char *out,
                          size_t size)
{
    size_t klen = strlen(key), len;
    const char *colon;

    if (strncmp(line, key, klen) != 0 || (line[klen] != ' ' &&
                                          line[klen] != '\t' &&
                                          line[klen] != ':'))
        return false;
    colon = strchr(line + klen, ':');
    if (!colon)
        return false;
    colon++;
    while (*colon == ' ')
        colon++;
    snprintf(out, size, "%s", colon);
    len = strlen(out);
    while (len && (out[len - 1] == '\n' || out[len - 1] == ' '))
        out[--len] = '\0';
    return true;
}

/*
 * CPU identity and topology from this machine's /proc/cpuinfo (first CPU).
 * The topology is used only if it adds up to host_cpus, else 1 socket of
 * host_cpus cores.
 */
void xcp__hv_host_cpuinfo(xcp_hv_host_info *h, uint32_t host_cpus)
{
    char *line = NULL, val[64], ids[64] = "";
    size_t cap = 0;
    unsigned cores = 0, siblings = 0, sockets = 0, id;
    bool first = true;
    FILE *f = fopen("/proc/cpuinfo", "re");

    while (f && getline(&line, &cap, f) > 0) {
        if (line[0] == '\n') {
            first = false;
            continue;
        }
        if (cpuinfo_field(line, "physical id", val, sizeof(val)) &&
            sscanf(val, "%u", &id) == 1 && id < sizeof(ids) && !ids[id]) {
            ids[id] = 1;
            sockets++;
        }
        if (!first)
            continue;
        cpuinfo_field(line, "vendor_id", h->cpu_vendor,
                      sizeof(h->cpu_vendor));
        cpuinfo_field(line, "model name", h->cpu_model_name,
                      sizeof(h->cpu_model_name));
        cpuinfo_field(line, "flags", h->cpu_flags, sizeof(h->cpu_flags));
        if (cpuinfo_field(line, "cpu family", val, sizeof(val)))
            sscanf(val, "%" SCNu32, &h->cpu_family);
        if (cpuinfo_field(line, "model", val, sizeof(val)))
            sscanf(val, "%" SCNu32, &h->cpu_model);
        if (cpuinfo_field(line, "stepping", val, sizeof(val)))
            sscanf(val, "%" SCNu32, &h->cpu_stepping);
        if (cpuinfo_field(line, "cpu MHz", val, sizeof(val)))
            h->cpu_mhz = (uint32_t)strtod(val, NULL);
        if (cpuinfo_field(line, "cpu cores", val, sizeof(val)))
            sscanf(val, "%u", &cores);
        if (cpuinfo_field(line, "siblings", val, sizeof(val)))
            sscanf(val, "%u", &siblings);
    }
    free(line);
    if (f)
        fclose(f);
    /* the machine's topology if it adds up to the simulated CPU count */
    if (sockets && cores && siblings >= cores && siblings % cores == 0 &&
        sockets * siblings == host_cpus) {
        h->sockets = sockets;
        h->cores_per_socket = cores;
        h->threads_per_core = siblings / cores;
    } else {
        h->sockets = 1;
        h->cores_per_socket = host_cpus;
        h->threads_per_core = 1;
    }
}

/* ---- the changed-domain queue ------------------------------------------- */

void xcp__hv_dirty_mark(xcp__hv_dirty *q, uint32_t domid)
{
    uint32_t *v;
    size_t i;

    for (i = 0; i < q->n; i++)
        if (q->ids[i] == domid)
            return;
    v = realloc(q->ids, (q->n + 1) * sizeof(*v));
    if (!v)
        return;
    q->ids = v;
    q->ids[q->n++] = domid;
}

size_t xcp__hv_dirty_take(xcp__hv_dirty *q, uint32_t *out, size_t cap)
{
    size_t take = q->n < cap ? q->n : cap;

    if (take == 0)
        return 0;
    memcpy(out, q->ids, take * sizeof(*out));
    memmove(q->ids, q->ids + take, (q->n - take) * sizeof(*q->ids));
    q->n -= take;
    return take;
}

void xcp__hv_dirty_clear(xcp__hv_dirty *q)
{
    q->n = 0;
}

void xcp__hv_dirty_free(xcp__hv_dirty *q)
{
    free(q->ids);
    q->ids = NULL;
    q->n = 0;
}

/* ---- names --------------------------------------------------------------- */

static const char *const op_names[XCP_HV_OP__COUNT] = {
    [XCP_HV_OP_HOST_INFO] = "host_info",
    [XCP_HV_OP_HOST_CPU_USAGE] = "host_cpu_usage",
    [XCP_HV_OP_MEMORY_OVERHEAD] = "memory_overhead",
    [XCP_HV_OP_DOMAIN_CREATE] = "domain_create",
    [XCP_HV_OP_DOMAIN_DESTROY] = "domain_destroy",
    [XCP_HV_OP_DOMAIN_PAUSE] = "domain_pause",
    [XCP_HV_OP_DOMAIN_UNPAUSE] = "domain_unpause",
    [XCP_HV_OP_DOMAIN_SHUTDOWN] = "domain_shutdown",
    [XCP_HV_OP_DOMAIN_WAIT] = "domain_wait",
    [XCP_HV_OP_DOMAIN_SUSPEND] = "domain_suspend",
    [XCP_HV_OP_DOMAIN_RESTORE] = "domain_restore",
    [XCP_HV_OP_DOMAIN_SET_MEMORY_TARGET] = "domain_set_memory_target",
    [XCP_HV_OP_DOMAIN_SET_VCPUS] = "domain_set_vcpus",
    [XCP_HV_OP_DOMAIN_LIST] = "domain_list",
    [XCP_HV_OP_DOMAIN_INFO] = "domain_info",
    [XCP_HV_OP_DOMAIN_VCPU_INFO] = "domain_vcpu_info",
    [XCP_HV_OP_DISK_PLUG] = "disk_plug",
    [XCP_HV_OP_DISK_UNPLUG] = "disk_unplug",
    [XCP_HV_OP_CDROM_INSERT] = "cdrom_insert",
    [XCP_HV_OP_NIC_PLUG] = "nic_plug",
    [XCP_HV_OP_NIC_UNPLUG] = "nic_unplug",
    [XCP_HV_OP_EVENT_FD] = "event_fd",
    [XCP_HV_OP_EVENT_READ] = "event_read",
    [XCP_HV_OP_FAULT] = "fault",
    [XCP_HV_OP_CONSOLE_OPEN] = "console_open",
    [XCP_HV_OP_DOMAIN_GUEST_DATA] = "domain_guest_data",
    [XCP_HV_OP_DOMAIN_MIGRATE_LOCAL] = "domain_migrate_local",
    [XCP_HV_OP_BRIDGE_REMOVE] = "bridge_remove",
    [XCP_HV_OP_BRIDGE_ENSURE] = "bridge_ensure",
    [XCP_HV_OP_DISK_PAUSE] = "disk_pause",
    [XCP_HV_OP_DISK_REOPEN] = "disk_reopen",
    [XCP_HV_OP_DISK_RESIZE] = "disk_resize",
    [XCP_HV_OP_DISK_CBT] = "disk_cbt",
    [XCP_HV_OP_DISK_SIZE] = "disk_size",
};

static const char *const type_names[] = {"pv", "hvm", "pvh"};
static const char *const state_names[] = {"running", "paused", "shutdown",
                                          "dying"};
static const char *const reason_names[] = {
    "none", "poweroff", "reboot", "suspend", "crash", "watchdog",
    "soft_reset"};

static const char *name_of(const char *const *names, size_t n, int v)
{
    return v >= 0 && (size_t)v < n && names[v] ? names[v] : "unknown";
}

static int value_of(const char *const *names, size_t n, const char *name)
{
    size_t i;

    for (i = 0; name && i < n; i++)
        if (names[i] && strcmp(names[i], name) == 0)
            return (int)i;
    return -1;
}

#define NAMES(a) a, sizeof(a) / sizeof(a[0])

const char *xcp__hv_op_name(xcp_hv_op op)
{
    return name_of(NAMES(op_names), op);
}

int xcp__hv_op_from_name(const char *name)
{
    return value_of(NAMES(op_names), name);
}

const char *xcp__hv_domain_type_name(xcp_hv_domain_type t)
{
    return name_of(NAMES(type_names), t);
}

int xcp__hv_domain_type_from_name(const char *name)
{
    return value_of(NAMES(type_names), name);
}

const char *xcp__hv_state_name(xcp_hv_domain_state s)
{
    return name_of(NAMES(state_names), s);
}

int xcp__hv_state_from_name(const char *name)
{
    return value_of(NAMES(state_names), name);
}

const char *xcp__hv_shutdown_reason_name(xcp_hv_shutdown_reason r)
{
    return name_of(NAMES(reason_names), r);
}

int xcp__hv_shutdown_reason_from_name(const char *name)
{
    return value_of(NAMES(reason_names), name);
}

const char *xcp__hv_console_protocol_name(xcp_hv_console_protocol p)
{
    static const char *const names[] = {"vt100", "rfb"};

    return name_of(NAMES(names), p);
}

/* ---- registry ------------------------------------------------------------ */

size_t xcp__hv_driver_count(void)
{
    return N_DRIVERS;
}

const xcp_hv_driver *xcp__hv_driver_at(size_t i)
{
    return i < N_DRIVERS ? drivers[i] : NULL;
}

const xcp_hv_driver *xcp__hv_driver_find(const char *name)
{
    size_t i;

    for (i = 0; name && i < N_DRIVERS; i++)
        if (strcmp(drivers[i]->name, name) == 0)
            return drivers[i];
    return NULL;
}

static void known_drivers(char *buf, size_t size)
{
    size_t i, len = 0;

    buf[0] = '\0';
    for (i = 0; i < N_DRIVERS && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%s",
                                i ? ", " : "", drivers[i]->name);
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
    char known[128], reason[sizeof((*out)->fallback_reason)];
    int rc;

    *out = NULL;
    if (!name || !*name)
        name = getenv("XCP_HV");
    if (!name || !*name)
        name = "auto";
    if (strcmp(name, "auto") != 0) {
        drv = xcp__hv_driver_find(name);
        if (!drv) {
            known_drivers(known, sizeof(known));
            rc = xcp__hv_error_set(err, -ENOENT,
                                   "no hypervisor driver named '%s' "
                                   "(compiled in: %s)", name, known);
            goto out;
        }
        rc = open_driver(drv, state_dir, out, err);
        goto out;
    }

    drv = xcp__hv_driver_find("xen");
    if (drv) {
        rc = open_driver(drv, state_dir, out, &xen_err);
        if (rc == 0)
            goto out;
        snprintf(reason, sizeof(reason), "xen driver did not open: %s",
                 xen_err.message);
    } else {
        snprintf(reason, sizeof(reason), "xen driver not compiled in");
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

/* One wrapper per slot: check the slot, clear err, call (serialised:
 * the engine calls from several threads), normalise. */
#define HV_CALL(hv, op, slot, err, ...)                                    \
    do {                                                                   \
        int rc_;                                                           \
        if (!(hv)->drv->slot)                                              \
            return unsupported(hv, op, err);                               \
        xcp__hv_error_clear(err);                                          \
        pthread_mutex_lock(&(hv)->lock);                                   \
        rc_ = (hv)->drv->slot((hv)->self, __VA_ARGS__);                    \
        pthread_mutex_unlock(&(hv)->lock);                                 \
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

bool xcp__hv_bridge_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;

    if (n == 0 || n >= 16 || !strcmp(name, ".") || !strcmp(name, ".."))
        return false;
    return strcspn(name, "/: \t\n\v\f\r") == n;
}
