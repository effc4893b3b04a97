/*
 * host.*: what the one host of a single-host pool answers (pool.c: the
 * pool).
 */
#include "../engine/engine.h"
#include "../pool/pool.h"

#include <stdio.h>
#include <time.h>

static int host_arg(xcp__ctx *c, xcp__obj **h)
{
    return xcp__arg_obj(c, 0, C(host), h);
}

static int host_enable(xcp__ctx *c, bool en)
{
    xcp__obj *h;
    int rc;

    if ((rc = host_arg(c, &h)) < 0 ||
        (rc = xcp__db_set_bool(c->db, h, F(host, enabled), en)) < 0)
        return rc;
    if (!en && !xcp__arg_bool(c, 1) &&
        (rc = xcp__db_set_str(c->db, h, F(host, display), "disabled")) < 0)
        return rc;
    return xcp__update_allowed(c, h);
}

static int host_disable(xcp__ctx *c) { return host_enable(c, false); }
static int host_enable_(xcp__ctx *c) { return host_enable(c, true); }

static int servertime(xcp__ctx *c)
{
    xcp__obj *h;
    int rc = host_arg(c, &h);

    if (rc < 0)
        return rc;
    xcp_value_set_datetime(c->result, xcp__now());
    return 0;
}

static int free_memory(xcp__ctx *c)
{
    xcp__obj *h;
    xcp_hv_host_info hi;
    xcp_hv_error e;
    int rc = host_arg(c, &h);

    if (rc < 0)
        return rc;
    if (xcp__hv_host_info(c->e->hv, &hi, &e) < 0)
        return XCP__ERR_INTERNAL_ERROR(e.message);
    xcp__ret_int(c, (int64_t)hi.memory_free);
    return 0;
}

static int memory_overhead(xcp__ctx *c)
{
    xcp__obj *h;
    int rc = host_arg(c, &h);

    if (rc < 0)
        return rc;
    xcp__ret_int(c, xcp__obj_int(h, F(host, memory_overhead)));
    return 0;
}

static int management_interface(xcp__ctx *c)
{
    xcp__obj *h, *p;
    int rc = host_arg(c, &h);

    if (rc < 0)
        return rc;
    p = xcp__set_member_with(c, h, F(host, PIFs), C(PIF), F(PIF, management));
    if (!p)
        return XCP__ERR_PIF_IS_NOT_MANAGEMENT_INTERFACE(XCP_NULL_REF);
    return xcp__ret_ref(c, p);
}

/* Running guests block evacuation: there is no other host to go to. */
static int prevent_evacuation(xcp__ctx *c)
{
    xcp__obj *h;
    const xcp_value *vms;
    size_t i;
    int rc = host_arg(c, &h);

    if (rc < 0)
        return rc;
    xcp_value_set_struct(c->result);
    vms = xcp__obj_val(h, F(host, resident_VMs));
    for (i = 0; vms->kind == XCP_VAL_ARRAY && i < vms->u.arr.n; i++) {
        xcp__obj *vm = xcp__db_get_cls(c->db, C(VM), vms->u.arr.items[i].u.s);
        xcp_value why;
        if (!vm || xcp__obj_bool(vm, F(VM, is_control_domain)))
            continue;
        if ((rc = xcp_value_set_array(&why, 1)) < 0 ||
            (rc = xcp_value_set_string(&why.u.arr.items[0],
                                       "NO_HOSTS_AVAILABLE")) < 0 ||
            (rc = xcp_value_struct_add(c->result, vm->ref, &why)) < 0) {
            xcp_value_dispose(&why);
            return rc;
        }
    }
    return 0;
}

static int assert_can_evacuate(xcp__ctx *c)
{
    xcp_value m;
    int rc;

    c->result = &m;
    rc = prevent_evacuation(c);
    if (rc == 0 && m.u.st.n > 0)
        rc = XCP__ERR_CANNOT_EVACUATE_HOST("NO_HOSTS_AVAILABLE");
    xcp_value_dispose(&m);
    return rc;
}

static int set_hostname_live(xcp__ctx *c)
{
    xcp__obj *h;
    const char *name = xcp__arg_str(c, 1);
    size_t i;
    int rc = host_arg(c, &h);

    if (rc < 0)
        return rc;
    for (i = 0; name[i]; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '-' || ch == '.'))
            break;
    }
    if (!*name || name[i] || i > 253)
        return XCP__ERR_HOST_NAME_INVALID("hostname contains invalid "
                                          "characters");
    return xcp__db_set_str(c->db, h, F(host, hostname), name);
}

static int host_destroy(xcp__ctx *c)
{
    xcp__obj *h;
    int rc = host_arg(c, &h);

    if (rc < 0)
        return rc;
    if (!strcmp(h->ref, c->e->host))
        return XCP__ERR_HOST_CANNOT_DESTROY_SELF(h->ref);
    /* A dead member of the pool (not in the pool's corosync group) goes,
     * with its node id; a live one is pool.eject's. */
    if (!c->e->pool_repl ||
        xcp__pool_host_live(c->e->pool_repl, xcp__pool_host_nodeid(h)))
        return XCP__ERR_HOST_IS_LIVE(h->ref);
    return xcp__pool_remove_host(c, h);
}

const struct xcp__impl xcp__impl_host[] = {
    {"host.disable", host_disable},
    {"host.enable", host_enable_},
    {"host.get_servertime", servertime},
    {"host.get_server_localtime", servertime},
    {"host.compute_free_memory", free_memory},
    {"host.compute_memory_overhead", memory_overhead},
    {"host.get_management_interface", management_interface},
    {"host.get_vms_which_prevent_evacuation", prevent_evacuation},
    {"host.assert_can_evacuate", assert_can_evacuate},
    {"host.set_hostname_live", set_hostname_live},
    {"host.destroy", host_destroy},
    {NULL, NULL},
};

