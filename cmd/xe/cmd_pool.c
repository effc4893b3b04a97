/*
 * xe's pool membership commands (docs/design-pool.md §6), as XAPI's xe:
 * pool-join master-address= master-username= master-password= [force=]
 * (pool.join, or pool.join_force with force=true) and pool-eject
 * host-uuid= (pool.eject, after XAPI's warning and confirmation unless
 * --force); pool-designate-new-master host-uuid= (pool.designate_new_master,
 * which prints nothing, as XAPI's); the emergency commands
 * pool-emergency-transition-to-master [force=], pool-emergency-reset-master
 * master-address= and pool-recover-slaves (the recovered hosts' uuids, one
 * a line, as XAPI's). XAPI's first two print that the host agent "will
 * restart ... in 10. seconds": libxcp's daemon does not restart (the pool
 * decides in a round of states, docs/design-pool.md §5.3), so they say
 * what happened instead. A coordinator's emergency transition is a no-op
 * in the API itself, so force= changes nothing.
 */
#include "cmds.h"

#include <stdio.h>
#include <stdlib.h>

int xe_pool_join(xe_ctx *ctx)
{
    xe_args a;
    bool force;

    if (xe_param_bool(ctx, "force", false, &force) < 0)
        return -1;
    xe_args_init(&a);
    xe_args_str(&a, xe_param(ctx, "master-address"));
    xe_args_str(&a, xe_param(ctx, "master-username"));
    xe_args_str(&a, xe_param(ctx, "master-password"));
    return xe_call(ctx, NULL, force ? "pool.join_force" : "pool.join", &a);
}

int xe_pool_eject(xe_ctx *ctx)
{
    static const char *const warn =
        "WARNING: Ejecting a host from the pool will reinitialise that "
        "host's local SRs.\n"
        "WARNING: Any data contained with the local SRs will be lost.";
    const char *host;
    bool force;
    int yes;

    if (xe_get_by_uuid(ctx, "host", xe_param(ctx, "host-uuid"), &host) < 0 ||
        xe_param_bool(ctx, "force", false, &force) < 0)
        return -1;
    if (!force) {
        xe_print_direct(ctx, warn);
        if ((yes = xe_user_says_yes(ctx)) <= 0)
            return yes;
    }
    return xe_call1(ctx, "pool.eject", host);
}

int xe_pool_designate_new_master(xe_ctx *ctx)
{
    const char *host;

    if (xe_get_by_uuid(ctx, "host", xe_param(ctx, "host-uuid"), &host) < 0)
        return -1;
    return xe_call1(ctx, "pool.designate_new_master", host);
}

int xe_pool_emergency_transition_to_master(xe_ctx *ctx)
{
    xe_args a;
    bool force;

    if (xe_param_bool(ctx, "force", false, &force) < 0)
        return -1;
    xe_args_init(&a);
    if (xe_call(ctx, NULL, "pool.emergency_transition_to_master", &a) < 0)
        return -1;
    xe_print_line(ctx, "Host agent is now the master.");
    return 0;
}

int xe_pool_emergency_reset_master(xe_ctx *ctx)
{
    const char *addr = xe_param(ctx, "master-address");
    char msg[512];
    xe_args a;

    xe_args_init(&a);
    xe_args_str(&a, addr);
    if (xe_call(ctx, NULL, "pool.emergency_reset_master", &a) < 0)
        return -1;
    snprintf(msg, sizeof(msg), "Host agent is now a slave of %s.", addr);
    xe_print_line(ctx, msg);
    return 0;
}

int xe_pool_recover_slaves(xe_ctx *ctx)
{
    xcp_value hosts;
    const char **uuids;
    size_t i, n;
    xe_args a;

    xe_args_init(&a);
    if (xe_call(ctx, &hosts, "pool.recover_slaves", &a) < 0)
        return -1;
    n = hosts.kind == XCP_VAL_ARRAY ? hosts.u.arr.n : 0;
    uuids = calloc(n ? n : 1, sizeof(*uuids));
    if (!uuids) {
        xcp_value_dispose(&hosts);
        return xe_fail(ctx, "out of memory");
    }
    for (i = 0; i < n; i++)
        if (hosts.u.arr.items[i].kind != XCP_VAL_STRING ||
            xe_get_str(ctx, "host.get_uuid", hosts.u.arr.items[i].u.s,
                       &uuids[i]) < 0) {
            free(uuids);
            xcp_value_dispose(&hosts);
            return -1;
        }
    xe_print_list(ctx, uuids, n);
    free(uuids);
    xcp_value_dispose(&hosts);
    return 0;
}
