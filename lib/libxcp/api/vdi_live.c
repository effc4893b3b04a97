/*
 * vdi_live.c - the images of disks running VMs have attached: which
 * domain and device serve a VDI, and a change of its image made while
 * the hypervisor driver holds that device's back end paused (as XAPI
 * pauses tapdisk), or done by the back end itself (its writes moved onto
 * a snapshot's new leaf).
 */
#include "storage.h"
#include "devices.h"

#include <errno.h>
#include <stdio.h>

int xcp__vdi_live_find(xcp__ctx *c, xcp__obj *vdi, xcp__live_disk *out)
{
    const xcp_value *vbds = xcp__obj_val(vdi, F(VDI, VBDs));
    int64_t domid;
    size_t i;

    memset(out, 0, sizeof(*out));
    for (i = 0; vbds->kind == XCP_VAL_ARRAY && i < vbds->u.arr.n; i++) {
        xcp__obj *vbd = xcp__db_get_cls(c->db, C(VBD),
                                        vbds->u.arr.items[i].u.s);
        xcp__obj *vm = vbd ? xcp__db_get_cls(c->db, C(VM),
                                             xcp__obj_str(vbd, F(VBD, VM)))
                           : NULL;
        const char *ps = vm ? xcp__obj_str(vm, F(VM, power_state)) : "";
        /* a paused VM's domain is there too, its back ends running */
        if (!vm || !xcp__obj_bool(vbd, F(VBD, currently_attached)) ||
            (strcmp(ps, "Running") && strcmp(ps, "Paused")) ||
            (domid = xcp__obj_int(vm, F(VM, domid))) < 0)
            continue;
        out->domid = (uint32_t)domid;
        snprintf(out->vdev, sizeof(out->vdev), "%s",
                 xcp__obj_str(vbd, F(VBD, device)));
        return 1;
    }
    return 0;
}

bool xcp__live_can_pause(xcp_hv *hv)
{
    return xcp__hv_supports(hv, XCP_HV_OP_DISK_PAUSE) &&
           xcp__hv_supports(hv, XCP_HV_OP_DISK_REOPEN);
}

/* A failed driver call on a live disk: xcp__live_fail, logged. */
static int live_err(const xcp_hv_error *e)
{
    xcp__log(XCP__LOG_WARN, "live disk: %s", e->message);
    return xcp__live_fail(e);
}

int xcp__live_fail(const xcp_hv_error *e)
{
    const char *why = e->message[0] ? e->message : "disk back end failure";

    /* a back end that cannot (a format, a CD) and our own failures keep
     * the devices' mapping; what the back end refused or failed at (QEMU's
     * error class and reason in the message) is the storage's failure,
     * as XAPI relays tapdisk's and sm's */
    if (e->code == -ENOTSUP || e->code == -ENOMEM || e->code == 0)
        return xcp__dev_hv_err(e);
    return XCP__ERR_SR_BACKEND_FAILURE("", why, "");
}

int xcp__vdi_live_change(xcp__ctx *c, xcp__obj *vdi, const xcp__live_disk *d,
                         int (*change)(void *arg), void *arg)
{
    xcp_sr_vdi_path path;
    xcp_hv_error e;
    int rc, again;

    if ((rc = xcp__vdi_path(c, vdi, &path)) < 0)
        return rc;
    if (xcp__hv_disk_pause(c->e->hv, d->domid, d->vdev, &e) < 0) {
        /* No domain, no back end: a VM on its way down (suspended for
         * VM.checkpoint) writes nothing more, nothing is to reopen. */
        if (e.code == -ESRCH)
            return change(arg);
        return live_err(&e);
    }
    rc = change(arg);
    /* Reopened whatever the change did: the image is whole either way
     * (the SR's operations are atomic), and the guest must go on. */
    if (xcp__hv_disk_reopen(c->e->hv, d->domid, d->vdev, path.path,
                            path.format, &e) < 0) {
        again = live_err(&e);
        if (rc == 0)
            rc = again;
    }
    return rc;
}

int xcp__live_pause_path(xcp_hv *hv, const xcp__live_disk *d)
{
    xcp_hv_error e;

    if (!xcp__live_can_pause(hv))
        return -ENOTSUP;
    if (xcp__hv_disk_pause(hv, d->domid, d->vdev, &e) < 0) {
        xcp__log(XCP__LOG_INFO, "SR collector: domain %u disk %s: %s",
                 d->domid, d->vdev, e.message);
        return e.code;
    }
    return 0;
}

void xcp__live_reopen_path(xcp_hv *hv, const xcp__live_disk *d,
                           const xcp_sr_vdi_path *path)
{
    xcp_hv_error e;
    int i;

    /* A guest left paused would hang: retried, then loudly logged. */
    for (i = 0; i < 3; i++)
        if (xcp__hv_disk_reopen(hv, d->domid, d->vdev, path->path,
                                path->format, &e) == 0 || e.code == -ESRCH)
            return;
    xcp__log(XCP__LOG_ERR, "SR collector: domain %u disk %s stays "
             "paused: %s", d->domid, d->vdev, e.message);
}

int xcp__live_switch_to(void *ctx, const char *path, const char *format,
                        char *reason, size_t len)
{
    xcp__live_writer *w = ctx;

    /* (a domain gone already: nobody writes the image, nothing moves) */
    if (xcp__hv_disk_snapshot(w->hv, w->disk.domid, w->disk.vdev, path,
                              format, &w->e) == 0 || w->e.code == -ESRCH)
        return 0;
    w->failed = true;
    snprintf(reason, len, "%s", w->e.message);
    xcp__log(XCP__LOG_WARN, "live disk: %s", w->e.message);
    return w->e.code < 0 ? w->e.code : -EIO;
}

int xcp__live_hold(xcp__ctx *c, uint32_t domid)
{
    xcp_hv_error e;

    if (xcp__hv_domain_pause(c->e->hv, domid, &e) < 0) {
        xcp__log(XCP__LOG_WARN, "domain %u not paused for the snapshot of "
                 "its disks: %s", domid, e.message);
        return e.code == -ESRCH ? 0 : xcp__dev_hv_err(&e);
    }
    xcp__log(XCP__LOG_INFO, "domain %u paused for the snapshot of its "
             "disks", domid);
    return 1;
}

int xcp__live_release(xcp__ctx *c, uint32_t domid, int rc)
{
    xcp_hv_error e;
    int i;

    /* A guest left paused would hang: retried, then loudly logged. */
    for (i = 0; i < 3; i++)
        if (xcp__hv_domain_unpause(c->e->hv, domid, &e) == 0 ||
            e.code == -ESRCH)
            return rc;
    xcp__log(XCP__LOG_ERR, "domain %u stays paused after the snapshot of "
             "its disks: %s", domid, e.message);
    return rc < 0 ? rc : xcp__dev_hv_err(&e);
}
