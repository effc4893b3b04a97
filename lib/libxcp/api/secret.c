/*
 * secret.*: stored secrets (passwords of SRs and the like).
 */
#include "../engine/engine.h"

static int secret_introduce(xcp__ctx *c)
{
    xcp__obj *s;
    xcp_value v;
    const char *uuid = xcp__arg_str(c, 0);
    int rc;

    if (*uuid && xcp__db_by_uuid(c->db, C(secret), uuid))
        return XCP__ERR_UUID_INVALID("secret", uuid);
    if ((rc = xcp__db_create(c->db, C(secret), NULL, *uuid ? uuid : NULL,
                             &s)) < 0 ||
        (rc = xcp__db_set_str(c->db, s, F(secret, value),
                              xcp__arg_str(c, 1))) < 0 ||
        (rc = xcp_value_copy(&v, xcp__arg(c, 2))) < 0)
        return rc;
    rc = xcp__db_set(c->db, s, F(secret, other_config), &v);
    xcp_value_dispose(&v);
    return rc < 0 ? rc : xcp__ret_ref(c, s);
}

const struct xcp__impl xcp__impl_secret[] = {
    {"secret.introduce", secret_introduce},
    {NULL, NULL},
};
