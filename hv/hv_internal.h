/*
 * hv/hv_internal.h - the library's side of the hypervisor driver table:
 * helpers the drivers share, the registry and its wrappers. Not installed:
 * drivers are compiled into libxcp (or into a module of their own that
 * carries its copy of hv_util.c), and these names are not exported.
 */
#ifndef XCP_HV_INTERNAL_H
#define XCP_HV_INTERNAL_H

#include <xcp/sys/hv.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- helpers for drivers (defined in hv/hv.c) ---------------------------- */

/*
 * Fills err (if not NULL) with code and a printf-style message; returns
 * code, so a driver can write `return xcp__hv_error_set(err, -EIO, ...)`.
 */
int xcp__hv_error_set(xcp_hv_error *err, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
void xcp__hv_error_clear(xcp_hv_error *err);

/*
 * Fills the CPU identity fields of h (vendor, model, family/model/stepping,
 * MHz, flags) and the topology from /proc/cpuinfo; the topology is kept
 * only if it adds up to nr_cpus, else it is 1 socket of nr_cpus cores.
 */
void xcp__hv_host_cpuinfo(xcp_hv_host_info *h, uint32_t nr_cpus);

/*
 * The domains that changed since the last event_read, each once, in the
 * order they first changed: what a driver's event_read slot hands out.
 * Zero-initialised is empty; one thread at a time, as the driver.
 */
typedef struct xcp__hv_dirty {
    uint32_t *ids;
    size_t n;
} xcp__hv_dirty;

/* Queues domid unless it is queued already. Out of memory, it is dropped:
 * the domain's next change queues it again. */
void xcp__hv_dirty_mark(xcp__hv_dirty *q, uint32_t domid);
/* Moves the (up to) cap oldest domids of q to out; returns how many. */
size_t xcp__hv_dirty_take(xcp__hv_dirty *q, uint32_t *out, size_t cap);
/* Forgets what q holds (what exists at open is not a change). */
void xcp__hv_dirty_clear(xcp__hv_dirty *q);
/* Frees q's storage; q is empty after. */
void xcp__hv_dirty_free(xcp__hv_dirty *q);

/* Names <-> values; the _from_name functions return -1 if unknown. */
const char *xcp__hv_op_name(xcp_hv_op op);
int xcp__hv_op_from_name(const char *name);
const char *xcp__hv_domain_type_name(xcp_hv_domain_type t); /* pv hvm pvh */
int xcp__hv_domain_type_from_name(const char *name);
const char *xcp__hv_state_name(xcp_hv_domain_state s); /* running paused
                                                          shutdown dying */
int xcp__hv_state_from_name(const char *name);
const char *xcp__hv_shutdown_reason_name(xcp_hv_shutdown_reason r);
int xcp__hv_shutdown_reason_from_name(const char *name); /* none poweroff
                                   reboot suspend crash watchdog soft_reset */

/* ---- the registry, as the library sees it (defined in hv/hv.c) ----------- */

/* An open driver instance. */
typedef struct xcp_hv xcp_hv;

/* The driver named name, loading its module the first time (see hv/hv.c);
 * NULL with err filled (-ENOENT) if there is none or it did not load. */
const xcp_hv_driver *xcp__hv_driver_find(const char *name,
                                         xcp_hv_error *err);

/*
 * Opens a driver. name: "sim", "xen", "auto" or NULL; NULL means the
 * environment variable XCP_HV, and if that is unset or empty, "auto".
 * "auto" picks xen when it is built, its module loads and its open
 * succeeds, else sim
 * (xcp__hv_fallback_reason then says why xen was not used). An explicit
 * name that fails to open is an error, never a silent fallback.
 */
int xcp__hv_open(xcp_hv **out, const char *state_dir, const char *name,
                 xcp_hv_error *err);
/* Opens a given table, registered or not (tests, test doubles). */
int xcp__hv_open_driver(xcp_hv **out, const xcp_hv_driver *drv,
                        const char *state_dir, xcp_hv_error *err);
void xcp__hv_close(xcp_hv *hv);
const char *xcp__hv_name(const xcp_hv *hv);
const xcp_hv_driver *xcp__hv_driver(const xcp_hv *hv);
/* Hands the instance the library's image operations (slot image_ops);
 * nothing for a driver without the slot. ops outlives hv. */
void xcp__hv_set_image_ops(xcp_hv *hv, const xcp_hv_image_ops *ops);
/* Why "auto" did not pick xen, or NULL. Lives as long as hv. */
const char *xcp__hv_fallback_reason(const xcp_hv *hv);
/* Whether the driver fills the slot of op. */
bool xcp__hv_supports(const xcp_hv *hv, xcp_hv_op op);

/*
 * One wrapper per slot, same arguments as the slot with hv in place of
 * self: -ENOTSUP (and a message naming the driver and the operation) for
 * an empty slot; on failure err->code is always set and negative.
 */
int xcp__hv_host_info(xcp_hv *hv, xcp_hv_host_info *out, xcp_hv_error *err);
int xcp__hv_host_cpu_usage(xcp_hv *hv, double **util, size_t *n,
                           xcp_hv_error *err);
int xcp__hv_memory_overhead(xcp_hv *hv, const xcp_hv_domain_config *cfg,
                            uint64_t *bytes, xcp_hv_error *err);
int xcp__hv_domain_create(xcp_hv *hv, const xcp_hv_domain_config *cfg,
                          bool paused, uint32_t *domid, xcp_hv_error *err);
int xcp__hv_domain_destroy(xcp_hv *hv, uint32_t domid, xcp_hv_error *err);
int xcp__hv_domain_pause(xcp_hv *hv, uint32_t domid, xcp_hv_error *err);
int xcp__hv_domain_unpause(xcp_hv *hv, uint32_t domid, xcp_hv_error *err);
int xcp__hv_domain_shutdown(xcp_hv *hv, uint32_t domid,
                            xcp_hv_shutdown_reason request,
                            xcp_hv_error *err);
int xcp__hv_domain_wait(xcp_hv *hv, uint32_t domid, int timeout_ms,
                        xcp_hv_domain_info *out, xcp_hv_error *err);
int xcp__hv_domain_suspend(xcp_hv *hv, uint32_t domid, const char *image_path,
                           xcp_hv_error *err);
int xcp__hv_domain_restore(xcp_hv *hv, const xcp_hv_domain_config *cfg,
                           const char *image_path, bool paused,
                           uint32_t *domid, xcp_hv_error *err);
int xcp__hv_domain_set_memory_target(xcp_hv *hv, uint32_t domid,
                                     uint64_t bytes, xcp_hv_error *err);
int xcp__hv_domain_set_vcpus(xcp_hv *hv, uint32_t domid, uint32_t online,
                             xcp_hv_error *err);
int xcp__hv_domain_list(xcp_hv *hv, xcp_hv_domain_info **out, size_t *n,
                        xcp_hv_error *err);
int xcp__hv_domain_info(xcp_hv *hv, uint32_t domid, xcp_hv_domain_info *out,
                        xcp_hv_error *err);
int xcp__hv_domain_vcpu_info(xcp_hv *hv, uint32_t domid,
                             xcp_hv_vcpu_info **out, size_t *n,
                             xcp_hv_error *err);
int xcp__hv_disk_plug(xcp_hv *hv, uint32_t domid, const xcp_hv_disk *disk,
                      xcp_hv_error *err);
int xcp__hv_disk_unplug(xcp_hv *hv, uint32_t domid, const char *vdev,
                        bool force, xcp_hv_error *err);
int xcp__hv_cdrom_insert(xcp_hv *hv, uint32_t domid, const char *vdev,
                         const char *path, const char *format,
                         xcp_hv_error *err);
int xcp__hv_nic_plug(xcp_hv *hv, uint32_t domid, const xcp_hv_nic *nic,
                     xcp_hv_error *err);
int xcp__hv_nic_unplug(xcp_hv *hv, uint32_t domid, uint32_t devid, bool force,
                       xcp_hv_error *err);
int xcp__hv_event_fd(xcp_hv *hv, int *fd, xcp_hv_error *err);
int xcp__hv_event_read(xcp_hv *hv, uint32_t *domids, size_t cap, size_t *n,
                       xcp_hv_error *err);
int xcp__hv_fault(xcp_hv *hv, const xcp_hv_fault *fault, xcp_hv_error *err);
int xcp__hv_console_open(xcp_hv *hv, uint32_t domid,
                         xcp_hv_console_protocol proto, int *fd,
                         xcp_hv_error *err);
/* The name of a console protocol: "vt100", "rfb". */
const char *xcp__hv_console_protocol_name(xcp_hv_console_protocol p);
int xcp__hv_domain_guest_data(xcp_hv *hv, uint32_t domid,
                              xcp_hv_guest_datum **out, size_t *n,
                              xcp_hv_error *err);
int xcp__hv_domain_migrate_local(xcp_hv *hv, uint32_t domid,
                                 uint32_t *new_domid, xcp_hv_error *err);
int xcp__hv_domain_migrate_send(xcp_hv *hv, uint32_t domid, int fd,
                                xcp_hv_migrate_stats *st, xcp_hv_error *err);
int xcp__hv_domain_migrate_receive(xcp_hv *hv,
                                   const xcp_hv_domain_config *cfg, int fd,
                                   uint32_t *domid, bool *was_running,
                                   xcp_hv_error *err);
/* Removes host bridge `bridge` if the driver made it and it has no port
 * left (driver slot bridge_remove); -ENOTSUP when the driver has none. */
int xcp__hv_bridge_remove(xcp_hv *hv, const char *bridge, xcp_hv_error *err);
/* Whether Linux takes `name` for an interface (a bridge): 1 to 15
 * characters, none of them '/', ':' or blank, and not "." or "..". */
bool xcp__hv_bridge_name_valid(const char *name);
/*
 * For disk_snapshot: 0 when overlay is a qcow2 image whose backing file
 * (a relative name is taken from overlay's folder) is the file image
 * names (the same inode); -ENOTSUP for no qcow2 image, -EINVAL for
 * another or no backing file, -errno when a file cannot be read.
 */
int xcp__hv_overlay_check(const char *overlay, const char *image,
                          xcp_hv_error *err);
/* Makes host bridge `bridge` ready for NICs (driver slot bridge_ensure):
 * -ENODEV when it cannot be had; -ENOTSUP when the driver has none. */
int xcp__hv_bridge_ensure(xcp_hv *hv, const char *bridge, xcp_hv_error *err);
/* The disks of running domains (driver version 4; -ENOTSUP below it). */
int xcp__hv_disk_pause(xcp_hv *hv, uint32_t domid, const char *vdev,
                       xcp_hv_error *err);
int xcp__hv_disk_reopen(xcp_hv *hv, uint32_t domid, const char *vdev,
                        const char *path, const char *format,
                        xcp_hv_error *err);
int xcp__hv_disk_resize(xcp_hv *hv, uint32_t domid, const char *vdev,
                        uint64_t bytes, xcp_hv_error *err);
int xcp__hv_disk_cbt(xcp_hv *hv, uint32_t domid, const char *vdev,
                     const char *bitmap, bool on, xcp_hv_error *err);
int xcp__hv_disk_size(xcp_hv *hv, uint32_t domid, const char *vdev,
                      uint64_t *bytes, xcp_hv_error *err);
/* Moves disk vdev's writes onto overlay (driver slot disk_snapshot,
 * version 5; -ENOTSUP below it). */
int xcp__hv_disk_snapshot(xcp_hv *hv, uint32_t domid, const char *vdev,
                          const char *overlay, const char *format,
                          xcp_hv_error *err);
/* Starts or follows the copy of disk vdev's chain into its leaf, down to
 * the last keep images (driver slot disk_stream, version 6; -ENOTSUP
 * below it): 1 while it runs, 0 once over. */
int xcp__hv_disk_stream(xcp_hv *hv, uint32_t domid, const char *vdev,
                        unsigned keep, const char *backing, uint64_t *done,
                        uint64_t *total, xcp_hv_error *err);
/* Stops that copy, waiting until the back end let go of it (driver slot
 * disk_stream_cancel, version 7; -ENOTSUP below it): 1 when one was
 * stopped, 0 when none ran. */
int xcp__hv_disk_stream_cancel(xcp_hv *hv, uint32_t domid, const char *vdev,
                               xcp_hv_error *err);

/* The drivers' tables (sim always; xen when built with XCP_HAVE_XEN,
 * in its module). */
extern const xcp_hv_driver xcp__hv_sim_driver;
/* The sim whose disks' back ends cannot pause, as Xen's QEMU ("sim-qemu"). */
extern const xcp_hv_driver xcp__hv_sim_qemu_driver;
#ifdef XCP_HAVE_XEN
extern const xcp_hv_driver xcp__hv_xen_driver;
#endif

/* A driver built as a module exports one function, by this name, that
 * returns its table (XCP__HV_MODULE_EXPORT marks it): hv/hv.c dlopens the
 * module when the driver is first asked for. */
#define XCP__HV_MODULE_ENTRY "xcp__hv_module"
#define XCP__HV_MODULE_EXPORT __attribute__((visibility("default")))

/* One reading of the host's and domains' counters (the stats slot,
 * version 8; -ENOTSUP below it). Free it with xcp__hv_stats_free. */
int xcp__hv_stats(xcp_hv *hv, xcp_hv_stats *out, xcp_hv_error *err);
void xcp__hv_stats_free(xcp_hv_stats *st);

#ifdef __cplusplus
}
#endif

#endif
