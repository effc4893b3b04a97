/*
 * The coordinator's side of a member's writes and of forwarding
 * (docs/design-pool.md §7): pool.member_commit, libxcp's intra-pool call
 * that runs a member's transaction (the journal body it built locally and
 * rolled back, pool.c's hook_forward) as one transaction here, replicated
 * like any commit; and the forwarding of VM operations to the host that
 * runs the VM (forward.c of XAPI's message_forwarding.ml).
 */
#include "pool.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/engine.h"

/* The calling session is a pool one (slave_login), as XAPI's intra-pool
 * only calls demand (session_check.ml): else INTERNAL_ERROR, as XAPI. */
static int need_pool_session(xcp__ctx *c)
{
    xcp__obj *s = xcp__db_get_cls(c->db, C(session), c->session);
    char msg[160];

    if (s && xcp__obj_bool(s, F(session, pool)))
        return 0;
    snprintf(msg, sizeof(msg), "Internal API \"%s\" call attempted with "
             "non-pool (external) session", c->msg->wire);
    return XCP__ERR_INTERNAL_ERROR(msg);
}

/* pool.member_commit(body): "T <gen> <ops>" as the member journaled it
 * for itself; the generation is the member's and is not used. */
static int member_commit(xcp__ctx *c)
{
    const char *body = xcp__arg_str(c, 0), *ops;
    char why[200], missing[XCP_REF_MAX] = "", coord[256];
    int rc, cls;

    if ((rc = need_pool_session(c)) < 0)
        return rc;
    if (xcp__pool_member_of(c->e->pool_repl, coord, sizeof(coord)))
        return XCP__ERR_HOST_IS_SLAVE(coord);
    if (body[0] != 'T' || body[1] != ' ' || body[2] < '0' || body[2] > '9')
        return XCP__ERR_INVALID_VALUE_WHY("body", "",
                                          "not a transaction (T <gen> ...)");
    ops = body + 2;
    while (*ops >= '0' && *ops <= '9')
        ops++;
    if (*ops == ' ')
        ops++;
    else if (*ops)
        return XCP__ERR_INVALID_VALUE_WHY("body", "",
                                          "not a transaction (T <gen> ...)");
    if (xcp__journal_apply_ops_missing(c->db, ops, why, sizeof(why),
                                       missing) < 0) {
        /* A row the member changed is gone here (destroyed meanwhile):
         * what XAPI answers for a ref that is no more. */
        if (missing[0]) {
            cls = xcp__db_tomb_class(c->db, missing);
            return XCP__ERR_HANDLE_INVALID(
                cls >= 0 ? xcp__classes[cls].name : "", missing);
        }
        return XCP__ERR_INVALID_VALUE_WHY("body", "", why);
    }
    /* Commit now, to answer with its seq (the call waits for a quorum
     * after the engine lock, as every call does). */
    if ((rc = xcp__ctx_commit(c)) < 0)
        return rc;
    xcp_value_set_int(c->result, (int64_t)xcp__db_seq(c->db));
    return 0;
}

const struct xcp__impl xcp__impl_pool_fwd[] = {
    {"pool.member_commit", member_commit},
    {NULL, NULL},
};
