/*
 * hv/sim/sim.h - private interface of the sim driver, for its unit tests
 * and for code that wants a sim with explicit settings rather than ones
 * read from the environment. The library itself only needs the driver
 * table, xcp__hv_sim_driver (xcp/sys/hv.h).
 */
#ifndef XCP_HV_SIM_H
#define XCP_HV_SIM_H

#include "xcp/sys/hv.h"

/*
 * The simulated host. xcp__sim_options_default() fills it from this
 * machine and the environment:
 *   XCP_SIM_HOST_MEMORY        bytes, or with a suffix K/KiB, M/MiB, G/GiB,
 *                              T/TiB (binary units); default MemTotal
 *   XCP_SIM_HOST_CPUS          default: online CPUs of this machine
 *   XCP_SIM_DOM0_MEMORY        default: 1 GiB + 5% of the host, at most
 *                              8 GiB and at most a quarter of the host
 *   XCP_SIM_SHUTDOWN_DELAY_MS  guest's delay to acknowledge a shutdown or
 *                              suspend request, in running time; default 20
 *   XCP_SIM_BALLOON_RATE       bytes per second (suffixes as above) at which
 *                              memory_actual moves to the target while the
 *                              guest runs; 0 (the default) = at once
 *   XCP_SIM_FAULTS             faults to inject, see sim.c "Faults"
 *   XCP_SIM_HOST_HVM           0: the host has no HVM support (its
 *                              capabilities list no hvm-*), default 1
 *   XCP_SIM_AGENT_DELAY_MS     vCPU time a guest runs before its agent
 *                              reports (OS, addresses, memory); default 50
 *   XCP_SIM_GUEST_WRITE_MS     a running guest writes one record to each
 *                              of its disks per this much vCPU time
 *                              (sim_guest.c); 0 (the default): it writes
 *                              only when asked (xcp__sim_guest_write)
 *   XCP_SIM_STREAM_MS          how long a disk back end's leaf coalesce
 *                              (disk_stream, as QEMU's block-stream job)
 *                              runs; 0 (the default): done at once
 */
struct xcp__sim_options {
    uint64_t host_memory;       /* bytes */
    uint32_t host_cpus;
    uint64_t dom0_memory;       /* bytes */
    uint64_t shutdown_delay_ns;
    uint64_t balloon_rate;      /* bytes per second, 0 = instantaneous */
    const char *faults;         /* XCP_SIM_FAULTS syntax; borrowed; NULL */
    uint64_t agent_delay_ns;    /* vCPU time before the guest agent runs */
    bool no_hvm;                /* a host without HVM support (no VT-x or
                                   AMD-V): only PV guests run */
    uint64_t guest_write_ns;    /* vCPU time per guest disk record, 0 =
                                   none (XCP_SIM_GUEST_WRITE_MS) */
    uint64_t stream_ns;         /* how long a back end's disk_stream copy
                                   runs (one started by any instance), 0 =
                                   done at the first call
                                   (XCP_SIM_STREAM_MS) */
    uint64_t migrate_bandwidth; /* bytes per second a live migration's
                                   memory rounds move
                                   (XCP_SIM_MIGRATE_BANDWIDTH, default
                                   4 GiB: a 1 GiB guest's first round takes
                                   0.25 s) */
    uint64_t migrate_dirty;     /* bytes per second each online vCPU of a
                                   running guest dirties while it migrates
                                   (XCP_SIM_MIGRATE_DIRTY, default 64 MiB) */
};

int xcp__sim_options_default(struct xcp__sim_options *opt, xcp_hv_error *err);

/* Opens the sim with explicit options (the driver's open uses the above). */
int xcp__sim_open(void **self, const char *state_dir,
                  const struct xcp__sim_options *opt, xcp_hv_error *err);

/* Per-domain overhead in 4 KiB pages: the formula documented in sim.c. */
uint64_t xcp__sim_overhead_pages(xcp_hv_domain_type type, uint64_t max_pages,
                                 uint32_t vcpus_max);

/* ---- the guests' disk I/O (sim_guest.c), for tests ---- */

/* A guest record's size, and the slots (64 KiB apart from offset 0) that
 * the records of one disk go round. */
#define XCP__SIM_RECORD_SIZE 512
#define XCP__SIM_RECORD_SLOTS 64

/*
 * Record seq (1, 2, ...) that the guest of VM uuid writes to its disk
 * vdev: its bytes into out, and the offset it is written at (returned).
 */
uint64_t xcp__sim_guest_record(uint64_t seq, const char *uuid,
                               const char *vdev,
                               unsigned char out[XCP__SIM_RECORD_SIZE]);

/*
 * The guest of live domain domid writes len bytes at offset of its disk
 * vdev, through its back end (the library's image operations, handed by
 * the image_ops slot: -ENOTSUP without them), flushed: 0 is the guest's
 * acknowledgement. While the disk is paused the write waits (the host
 * let go meanwhile), up to timeout_ms (< 0: forever; then -ETIMEDOUT),
 * and goes to the chain disk_reopen opened. self is an instance (any of
 * those that share the host).
 */
int xcp__sim_guest_write(void *self, uint32_t domid, const char *vdev,
                         uint64_t offset, const void *buf, size_t len,
                         int timeout_ms, xcp_hv_error *err);
/* The same for a read of what the guest sees. */
int xcp__sim_guest_read(void *self, uint32_t domid, const char *vdev,
                        uint64_t offset, void *buf, size_t len,
                        int timeout_ms, xcp_hv_error *err);
/* How many records (XCP_SIM_GUEST_WRITE_MS) the guest has acknowledged on
 * disk vdev: records 1 .. *n. */
int xcp__sim_guest_written(void *self, uint32_t domid, const char *vdev,
                           uint64_t *n, xcp_hv_error *err);

/*
 * When the back end of disk vdev of live domain domid last moved its
 * writes onto a snapshot's overlay (disk_snapshot), in the guest's time:
 * its vCPU 0's running time then, which stands still while the domain is
 * paused (0: never). Disks moved at one instant of the guest share it.
 */
int xcp__sim_disk_switched(void *self, uint32_t domid, const char *vdev,
                           uint64_t *vcpu_ns, xcp_hv_error *err);

/* Parses "512MiB", "2G", "1073741824" into bytes; -EINVAL if malformed. */
int xcp__sim_parse_size(const char *s, uint64_t *bytes);

#endif /* XCP_HV_SIM_H */
