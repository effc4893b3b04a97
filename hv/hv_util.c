/*
 * hv/hv_util.c - what the hypervisor drivers share beside the registry:
 * their error reports, the host's CPU identity, the changed-domain queue,
 * the names of the interface's enums, bridge names, the backing file of a
 * disk_snapshot overlay. Plain C on libc only,
 * so that a driver built as a module (hv/xen, dlopened by hv/hv.c)
 * carries its own copy of these and needs nothing else from the library.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* getline */
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hv_internal.h"

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
    [XCP_HV_OP_DISK_SNAPSHOT] = "disk_snapshot",
    [XCP_HV_OP_DISK_STREAM] = "disk_stream",
    [XCP_HV_OP_DISK_STREAM_CANCEL] = "disk_stream_cancel",
    [XCP_HV_OP_STATS] = "stats",
    [XCP_HV_OP_DOMAIN_MIGRATE_SEND] = "domain_migrate_send",
    [XCP_HV_OP_DOMAIN_MIGRATE_RECEIVE] = "domain_migrate_receive",
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

/* ---- bridges ------------------------------------------------------------- */

bool xcp__hv_bridge_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;

    if (n == 0 || n >= 16 || !strcmp(name, ".") || !strcmp(name, ".."))
        return false;
    return strcspn(name, "/: \t\n\v\f\r") == n;
}

/* ---- images ------------------------------------------------------------- */

static uint64_t be_at(const unsigned char *p, int n)
{
    uint64_t v = 0;

    while (n--)
        v = v << 8 | *p++;
    return v;
}

int xcp__hv_overlay_check(const char *overlay, const char *image,
                          xcp_hv_error *err)
{
    unsigned char h[20];
    char name[1024], path[2048];
    const char *slash = strrchr(overlay, '/');
    struct stat a, b;
    uint64_t off, len;
    int fd = open(overlay, O_RDONLY | O_CLOEXEC), rc = 0;

    if (fd < 0)
        return xcp__hv_error_set(err, -errno, "overlay %s: %s", overlay,
                                 strerror(errno));
    /* qcow2 header: magic, version, backing file offset (8), size (4) */
    if (pread(fd, h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
        memcmp(h, "QFI\xfb", 4) != 0) {
        rc = xcp__hv_error_set(err, -ENOTSUP, "overlay %s is no qcow2 "
                               "image", overlay);
        goto out;
    }
    off = be_at(h + 8, 8);
    len = be_at(h + 16, 4);
    if (!off || !len || len >= sizeof(name) ||
        pread(fd, name, len, (off_t)off) != (ssize_t)len) {
        rc = xcp__hv_error_set(err, -EINVAL, "overlay %s has no backing "
                               "file", overlay);
        goto out;
    }
    name[len] = '\0';
    /* a relative backing file name is relative to the overlay's folder */
    if (name[0] == '/' || !slash)
        snprintf(path, sizeof(path), "%s", name);
    else
        snprintf(path, sizeof(path), "%.*s/%s", (int)(slash - overlay),
                 overlay, name);
    if (stat(path, &a) < 0 || stat(image, &b) < 0 || a.st_dev != b.st_dev ||
        a.st_ino != b.st_ino)
        rc = xcp__hv_error_set(err, -EINVAL, "overlay %s: its backing file "
                               "%s is not the disk's image %s", overlay,
                               path, image);
out:
    close(fd);
    return rc;
}
