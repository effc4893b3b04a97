/*
 * Opening a console, the XenAPI side: session, console (or VM) and power
 * state checks, then the hypervisor driver's stream, in one transaction so
 * the checks hold for the domain that is asked. What xcp_console_open
 * (local sessions) and the server's /console (server/console.c) share.
 */
#include "engine.h"

#include <errno.h>
#include <stdio.h>

struct opener {
    const xcp__console_req *r;
    int fd;
    int http;
};

/* The console a VM is reached by: its rfb one when it has one (what a
 * graphical client wants), else its first. */
static xcp__obj *vm_console(xcp__ctx *c, const xcp__obj *vm)
{
    const xcp_value *cs = xcp__obj_val(vm, F(VM, consoles));
    xcp__obj *con, *first = NULL;
    size_t i;

    for (i = 0; i < cs->u.arr.n; i++) {
        con = xcp__db_get_cls(c->db, C(console), cs->u.arr.items[i].u.s);
        if (!con)
            continue;
        if (!strcmp(xcp__obj_str(con, F(console, protocol)), "rfb"))
            return con;
        if (!first)
            first = con;
    }
    return first;
}

/* The console named by id: a console's ref or uuid, or (vm_too) a VM's. */
static int find_console(xcp__ctx *c, const char *id, bool vm_too,
                        xcp__obj **out, int *http)
{
    xcp__obj *o = xcp__db_get_cls(c->db, C(console), id);
    xcp__obj *vm = NULL;

    if (!o)
        o = xcp__db_by_uuid(c->db, C(console), id);
    if (!o && vm_too && !(vm = xcp__db_get_cls(c->db, C(VM), id)))
        vm = xcp__db_by_uuid(c->db, C(VM), id);
    if (vm) {
        const char *ps = xcp__obj_str(vm, F(VM, power_state));

        if (strcmp(ps, "Running") && strcmp(ps, "Paused")) {
            *http = 404;
            return xcp__vm_bad_power_state(vm->ref, ps, "running");
        }
        o = vm_console(c, vm);
    }
    if (!o) {
        *http = 404;
        return xcp__uuid_valid(id) ? XCP__ERR_UUID_INVALID("console", id)
                                   : xcp__handle_invalid(C(console), id);
    }
    *out = o;
    return 0;
}

static int open_txn(xcp__ctx *c, void *arg)
{
    struct opener *o = arg;
    const xcp__console_req *r = o->r;
    xcp__obj *con = NULL, *vm;
    const char *ps, *proto;
    int64_t domid;
    xcp_hv_error e;
    int rc;

    if (r->session && !xcp__db_get_cls(c->db, C(session), r->session)) {
        o->http = 401;
        return XCP__ERR_SESSION_INVALID(r->session);
    }
    if (!r->id || !*r->id) {
        o->http = 400;
        return XCP__ERR_INVALID_VALUE("ref", "");
    }
    if ((rc = find_console(c, r->id, r->vm_too, &con, &o->http)) < 0)
        return rc;
    vm = xcp__db_get_cls(c->db, C(VM), xcp__obj_str(con, F(console, VM)));
    if (!vm) {
        o->http = 404;
        return xcp__handle_invalid(C(VM), xcp__obj_str(con, F(console, VM)));
    }
    ps = xcp__obj_str(vm, F(VM, power_state));
    domid = xcp__obj_int(vm, F(VM, domid));
    if ((strcmp(ps, "Running") && strcmp(ps, "Paused")) || domid < 0) {
        o->http = 404;
        return xcp__vm_bad_power_state(vm->ref, ps, "running");
    }
    proto = xcp__obj_str(con, F(console, protocol));
    if (xcp__hv_console_open(c->e->hv, (uint32_t)domid,
                             !strcmp(proto, "rfb") ? XCP_HV_CONSOLE_RFB
                                                   : XCP_HV_CONSOLE_VT100,
                             &o->fd, &e) < 0) {
        /* causes with a name: the domain went meanwhile, or it serves no
           console of that protocol (the driver says which) */
        o->http = e.code == -ESRCH || e.code == -ENOTSUP ? 404 : 500;
        if (e.code == -ESRCH)
            return xcp__vm_bad_power_state(vm->ref, "halted", "running");
        if (e.code == -ENOTSUP)
            return XCP__ERR_OPERATION_NOT_ALLOWED(e.message);
        return XCP__ERR_INTERNAL_ERROR(e.message);
    }
    return 0;
}

int xcp__console_open(xcp__engine *e, const xcp__console_req *r, int *fd,
                      int *http)
{
    struct opener o;

    o.r = r;
    o.fd = -1;
    o.http = 500;
    *fd = -1;
    if (xcp__engine_txn(e, open_txn, &o) < 0) {
        *http = o.http;
        return -1;
    }
    *http = 200;
    *fd = o.fd;
    return 0;
}

