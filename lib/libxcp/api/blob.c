/*
 * blob.*: named binary objects attached to other objects.
 */
#include "../engine/engine.h"

static int blob_create(xcp__ctx *c)
{
    xcp__obj *b;
    int rc;

    if ((rc = xcp__db_create(c->db, C(blob), NULL, NULL, &b)) < 0 ||
        (rc = xcp__db_set_str(c->db, b, F(blob, mime_type),
                              *xcp__arg_str(c, 0) ? xcp__arg_str(c, 0)
                                                  : "application/"
                                                    "octet-stream")) < 0 ||
        (rc = xcp__db_set_bool(c->db, b, F(blob, public), xcp__arg_bool(c, 1))) <
            0 ||
        (rc = xcp__db_set_time(c->db, b, F(blob, last_updated), xcp__now())) < 0)
        return rc;
    return xcp__ret_ref(c, b);
}

static int blob_destroy(xcp__ctx *c)
{
    xcp__obj *b;
    int rc = xcp__arg_obj(c, 0, C(blob), &b);

    return rc < 0 ? rc : xcp__db_destroy(c->db, b);
}

const struct xcp__impl xcp__impl_blob[] = {
    {"blob.create", blob_create},
    {"blob.destroy", blob_destroy},
    {NULL, NULL},
};
