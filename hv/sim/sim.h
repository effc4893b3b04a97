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
};

int xcp__sim_options_default(struct xcp__sim_options *opt, xcp_hv_error *err);

/* Opens the sim with explicit options (the driver's open uses the above). */
int xcp__sim_open(void **self, const char *state_dir,
                  const struct xcp__sim_options *opt, xcp_hv_error *err);

/* Per-domain overhead in 4 KiB pages: the formula documented in sim.c. */
uint64_t xcp__sim_overhead_pages(xcp_hv_domain_type type, uint64_t max_pages,
                                 uint32_t vcpus_max);

/* Parses "512MiB", "2G", "1073741824" into bytes; -EINVAL if malformed. */
int xcp__sim_parse_size(const char *s, uint64_t *bytes);

#endif /* XCP_HV_SIM_H */
