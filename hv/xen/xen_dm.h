/*
 * hv/xen/xen_dm.h - when the xen driver builds a domain again because
 * libxl gave up waiting for its device model (QEMU) to start.
 *
 * libxl 4.17 gives QEMU fixed times, compile-time constants with no
 * setting (libxl_internal.h): 60 s to come up
 * (LIBXL_DEVICE_MODEL_START_TIMEOUT) and then 10 s for its QMP set-up,
 * the queries of its serial pty and VNC port (LIBXL_QMP_CMD_TIMEOUT).
 * A slow dom0 (a host under heavy load, Xen itself under emulation)
 * misses the second one; libxl then destroys the domain and fails with
 * "device model did not start: -9" (ERROR_TIMEDOUT). A domain that
 * failed so is built again, up to XCP_XEN_DM_START_TRIES times in all.
 */
#ifndef XCP_XEN_DM_H
#define XCP_XEN_DM_H

#include <stdbool.h>

/* The default of XCP_XEN_DM_START_TRIES. */
#define XCP_XEN_DM_START_TRIES_DEFAULT 3u

/*
 * How many times a domain is built when libxl keeps giving up on its
 * device model's start: XCP_XEN_DM_START_TRIES from the environment, a
 * count from 1 (no second try) to 100; the default when unset or not
 * such a count.
 */
unsigned xcp__xen_dm_start_tries(void);

/*
 * Whether the libxl errors a failed domain build logged (as
 * xcp__xen_log_errors() keeps them) say that libxl gave up waiting for
 * the device model's start, as opposed to any other failure (QEMU
 * exited, a bad disk, no memory), which another try would not mend.
 */
bool xcp__xen_dm_timed_out(const char *libxl_errors);

#endif /* XCP_XEN_DM_H */
