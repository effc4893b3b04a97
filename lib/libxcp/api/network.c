/*
 * network.*: the networks a VM's NICs attach to.
 */
#include "storage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void xcp__network_free_bridge(xcp__ctx *c, char *out, size_t len)
{
    size_t n, j;
    int k;
    xcp__obj *const *all = xcp__db_all(c->db, C(network), &n);

    for (k = 0;; k++) {
        snprintf(out, len, "xapi%d", k);
        for (j = 0; j < n; j++)
            if (!strcmp(xcp__obj_str(all[j], F(network, bridge)), out))
                break;
        if (j == n)
            return;
    }
}

static int net_create(xcp__ctx *c)
{
    const xcp_value *f = xcp__arg(c, 0)->u.rec.fields;
    xcp__obj *net;
    char bridge[32];
    const char *br;
    static const int copy[] = {F(network, name_label),
                               F(network, name_description),
                               F(network, other_config), F(network, managed),
                               F(network, tags)};
    int rc;

    br = f[F(network, bridge)].kind == XCP_VAL_STRING
             ? f[F(network, bridge)].u.s : "";
    if (!*br) {
        xcp__network_free_bridge(c, bridge, sizeof(bridge));
        br = bridge;
    }
    if ((rc = xcp__db_create(c->db, C(network), NULL, NULL, &net)) < 0 ||
        (rc = xcp__db_set_str(c->db, net, F(network, bridge), br)) < 0 ||
        (rc = xcp__db_set_int(c->db, net, F(network, MTU),
                              f[F(network, MTU)].kind == XCP_VAL_INT &&
                                      f[F(network, MTU)].u.i > 0
                                  ? f[F(network, MTU)].u.i : 1500)) < 0)
        return rc;
    if ((rc = xcp__set_fields_from(c, net, xcp__arg(c, 0), copy,
                                   XCP__ARRAY_LEN(copy))) < 0)
        return rc;
    return xcp__ret_ref(c, net);
}

static int refs_param(const xcp_value *set, char **out)
{
    xcp__buf b = {0};
    size_t i;

    for (i = 0; i < set->u.arr.n; i++) {
        if (i)
            xcp__buf_adds(&b, "; ");
        xcp__buf_adds(&b, set->u.arr.items[i].u.s);
    }
    *out = xcp__buf_steal(&b);
    if (!*out)
        *out = xcp__strdup("");
    return *out ? 0 : xcp__oom();
}

/*
 * The network is gone: its bridge goes too if the driver made it (the xen
 * driver makes one per network for its VIFs; the host's own bridges stay).
 * The record is gone either way: a bridge that cannot go is logged.
 */
static void remove_bridge(xcp__ctx *c, const char *bridge)
{
    xcp_hv_error e;

    if (!bridge || !xcp__hv_supports(c->e->hv, XCP_HV_OP_BRIDGE_REMOVE))
        return;
    if (xcp__hv_bridge_remove(c->e->hv, bridge, &e) < 0)
        xcp__log(XCP__LOG_WARN, "network destroyed, its bridge %s stays: %s",
                 bridge, e.message);
}

static int net_destroy(xcp__ctx *c)
{
    xcp__obj *net;
    const xcp_value *vifs, *pifs;
    char *p, *br;
    const char *sys;
    int rc;

    if ((rc = xcp__arg_obj(c, 0, C(network), &net)) < 0)
        return rc;
    sys = xcp__obj_map_str(net, F(network, other_config),
                           "is_host_internal_management_network");
    if (sys && !strcmp(sys, "true"))
        return XCP__ERR_CANNOT_DESTROY_SYSTEM_NETWORK(net->ref);
    vifs = xcp__obj_val(net, F(network, VIFs));
    pifs = xcp__obj_val(net, F(network, PIFs));
    if (vifs->u.arr.n > 0 || pifs->u.arr.n > 0) {
        bool v = vifs->u.arr.n > 0;
        if ((rc = refs_param(v ? vifs : pifs, &p)) < 0)
            return rc;
        rc = v ? XCP__ERR_NETWORK_CONTAINS_VIF(p)
               : XCP__ERR_NETWORK_CONTAINS_PIF(p);
        free(p);
        return rc;
    }
    if (!(br = xcp__strdup(xcp__obj_str(net, F(network, bridge)))))
        return xcp__oom();
    if ((rc = xcp__db_destroy(c->db, net)) < 0) {
        free(br);
        return rc;
    }
    remove_bridge(c, br);
    free(br);
    return 0;
}

bool xcp__net_has_purpose(const xcp__obj *net, const char *purpose)
{
    const xcp_value *v = xcp__obj_val(net, F(network, purpose));
    size_t i;

    for (i = 0; v && v->kind == XCP_VAL_ARRAY && i < v->u.arr.n; i++)
        if (v->u.arr.items[i].kind == XCP_VAL_STRING &&
            !strcmp(v->u.arr.items[i].u.s, purpose))
            return true;
    return false;
}

/* nbd (TLS) and insecure_nbd (plain) exclude each other across the pool,
 * as in XAPI: the host runs one NBD server, with TLS or without. */
static int net_purpose(xcp__ctx *c, bool add)
{
    const char *want = xcp__arg_str(c, 1), *other;
    xcp__obj *net, *const *all;
    size_t i, n;
    int rc;

    if ((rc = xcp__arg_obj(c, 0, C(network), &net)) < 0)
        return rc;
    if (!add)
        return xcp__db_set_del(c->db, net, F(network, purpose),
                               xcp__arg(c, 1));
    other = !strcmp(want, "nbd")            ? "insecure_nbd"
            : !strcmp(want, "insecure_nbd") ? "nbd"
                                            : NULL;
    all = xcp__db_all(c->db, C(network), &n);
    for (i = 0; other && i < n; i++)
        if (xcp__net_has_purpose(all[i], other))
            return XCP__ERR_NETWORK_INCOMPATIBLE_PURPOSES(want, other);
    return xcp__db_set_add_str(c->db, net, F(network, purpose), want);
}

static int net_add_purpose(xcp__ctx *c) { return net_purpose(c, true); }

static int net_remove_purpose(xcp__ctx *c) { return net_purpose(c, false); }

static int net_set_default_locking_mode(xcp__ctx *c)
{
    xcp__obj *net;
    int rc;

    if ((rc = xcp__arg_obj(c, 0, C(network), &net)) < 0)
        return rc;
    return xcp__db_set_str(c->db, net, F(network, default_locking_mode),
                           xcp__arg_str(c, 1));
}

const struct xcp__impl xcp__impl_network[] = {
    {"network.create", net_create},
    {"network.destroy", net_destroy},
    {"network.add_purpose", net_add_purpose},
    {"network.remove_purpose", net_remove_purpose},
    {"network.set_default_locking_mode", net_set_default_locking_mode},
    {NULL, NULL},
};
