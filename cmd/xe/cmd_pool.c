/*
 * xe's pool membership commands (docs/design-pool.md §6), as XAPI's xe:
 * pool-join master-address= master-username= master-password= [force=]
 * (pool.join, or pool.join_force with force=true) and pool-eject
 * host-uuid= (pool.eject, after XAPI's warning and confirmation unless
 * --force); pool-designate-new-master host-uuid= (pool.designate_new_master,
 * which prints nothing, as XAPI's).
 */
#include "cmds.h"

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
