/*
 * pool.*: what a single-host pool answers. Pool membership (join, eject,
 * HA) is a later piece of work and answers NOT_IMPLEMENTED until then.
 */
#include "../engine/engine.h"

/* The master's edition; libxcp has no licences, so none expires. */
static int license_state(xcp__ctx *c)
{
    xcp__obj *pool, *host;
    xcp_value v;
    int rc;

    if ((rc = xcp__arg_obj(c, 0, C(pool), &pool)) < 0 ||
        (rc = xcp__ref_obj(c, xcp__obj_str(pool, F(pool, master)), C(host),
                           &host)) < 0)
        return rc;
    xcp_value_set_struct(c->result);
    if ((rc = xcp_value_set_string(&v, xcp__obj_str(host, F(host,
                                                           edition)))) < 0 ||
        (rc = xcp_value_struct_add(c->result, "edition", &v)) < 0 ||
        (rc = xcp_value_set_string(&v, "never")) < 0 ||
        (rc = xcp_value_struct_add(c->result, "expiry", &v)) < 0)
        xcp_value_dispose(&v);
    return rc;
}

const struct xcp__impl xcp__impl_pool[] = {
    {"pool.get_license_state", license_state},
    {NULL, NULL},
};
