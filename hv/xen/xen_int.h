/*
 * hv/xen/xen_int.h - what the xen driver's files share besides xen.c's own
 * instance: the event source (xen_watch.c: Xen's notifications, the
 * guest agents' xenstore watches and the once-a-second check for changes
 * Xen signals to no one) and the consoles (xen_console.c).
 */
#ifndef XCP_XEN_INT_H
#define XCP_XEN_INT_H

#include <libxl.h>
#include <xenstore.h>

#include "hv_internal.h"

/* How often the driver looks for changes no notification reports: a
 * pause or unpause behind the toolstack's back (xl pause). */
#define XCP_XEN_TICK_MS 1000

/* ---- xen_watch.c ------------------------------------------------------- */

/*
 * The driver's event fd: an epoll set of the notification fd (Xen's
 * VIRQ_DOM_EXC channel or xenstore's watch fd), xenstore's watch fd (for
 * the guest agents' keys) and a timer of XCP_XEN_TICK_MS. All fields -1
 * when closed.
 */
typedef struct xcp__xen_events {
    int epfd;
    int timerfd;
} xcp__xen_events;

/*
 * Opens ev over the notification fd src_fd and xenstore's fd xs_fd (the
 * same fd or another); the timer starts at once.
 */
int xcp__xen_events_open(xcp__xen_events *ev, int src_fd, int xs_fd,
                         xcp_hv_error *err);
void xcp__xen_events_close(xcp__xen_events *ev);

/*
 * Consumes what made ev readable on the xenstore and timer side (never
 * blocks): the domain of each guest agent watch that fired is marked in
 * dirty; other watches (@releaseDomain...) only say "rescan".
 */
void xcp__xen_events_drain(xcp__xen_events *ev, struct xs_handle *xs,
                           xcp__hv_dirty *dirty);

/*
 * Starts (on) or stops watching the guest agent's subtrees of domain
 * domid (data/ and attr/). Stopping a vanished domain's watches is fine.
 */
void xcp__xen_guest_watch(struct xs_handle *xs, uint32_t domid, bool on);

/*
 * domain_guest_data for domain domid, known to exist: the entries below
 * its data/ and attr/ (leaves with a value, a bounded number of them).
 */
int xcp__xen_guest_data(struct xs_handle *xs, uint32_t domid,
                        xcp_hv_guest_datum **out, size_t *n,
                        xcp_hv_error *err);

/* ---- xen_console.c ----------------------------------------------------- */

/*
 * console_open for the live domain d: vt100 is the pty xenconsoled
 * exposes (console/tty; an HVM guest's serial/0/tty), served by a thread
 * over a socketpair; rfb is a connection to QEMU's VNC server (the port
 * libxl writes at console/vnc-port). -ENOTSUP when the domain has no such
 * console.
 */
int xcp__xen_console_open(struct xs_handle *xs, const xcp_hv_domain_info *d,
                          xcp_hv_console_protocol proto, int *fd,
                          xcp_hv_error *err);

/*
 * The console settings of an HVM build: the serial line on a pty and
 * QEMU's VNC server on 127.0.0.1 (a free port, published in xenstore),
 * as xenopsd asks for. Returns false when out of memory.
 */
bool xcp__xen_console_config(libxl_domain_build_info *b);

#endif /* XCP_XEN_INT_H */
