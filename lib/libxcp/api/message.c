/*
 * message.*: alerts about objects, by time and by object.
 */
#include "../engine/engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int message_create(xcp__ctx *c)
{
    xcp__obj *m;
    int64_t prio = xcp__arg_int(c, 1);
    int rc;

    if (prio < 1 || prio > 5) {
        char n[32];
        snprintf(n, sizeof(n), "%lld", (long long)prio);
        return XCP__ERR_INVALID_VALUE("priority", n);
    }
    if ((rc = xcp__db_create(c->db, C(message), NULL, NULL, &m)) < 0 ||
        (rc = xcp__db_set_str(c->db, m, F(message, name),
                              xcp__arg_str(c, 0))) < 0 ||
        (rc = xcp__db_set_int(c->db, m, F(message, priority), prio)) < 0 ||
        (rc = xcp__db_set_str(c->db, m, F(message, cls), xcp__arg_str(c, 2))) < 0 ||
        (rc = xcp__db_set_str(c->db, m, F(message, obj_uuid),
                              xcp__arg_str(c, 3))) < 0 ||
        (rc = xcp__db_set_time(c->db, m, F(message, timestamp),
                               xcp__now())) < 0 ||
        (rc = xcp__db_set_str(c->db, m, F(message, body),
                              xcp__arg_str(c, 4))) < 0)
        return rc;
    return xcp__ret_ref(c, m);
}

static int message_destroy(xcp__ctx *c)
{
    xcp__obj *m;
    int rc = xcp__arg_obj(c, 0, C(message), &m);

    return rc < 0 ? rc : xcp__db_destroy(c->db, m);
}

static int message_destroy_many(xcp__ctx *c)
{
    const xcp_value *set = xcp__arg(c, 0);
    size_t i;
    int rc;

    for (i = 0; i < set->u.arr.n; i++) {
        xcp__obj *m;
        if ((rc = xcp__ref_obj(c, set->u.arr.items[i].u.s, C(message),
                               &m)) < 0 ||
            (rc = xcp__db_destroy(c->db, m)) < 0)
            return rc;
    }
    return 0;
}

/* Messages since a time, optionally about one object. */
static int messages_since(xcp__ctx *c, const char *cls, const char *uuid,
                          xcp_datetime since)
{
    size_t n, i, k = 0;
    xcp__obj *const *all = xcp__db_all(c->db, C(message), &n);
    xcp__obj **hits = xcp__calloc(n, sizeof(*hits));
    int rc;

    if (!hits)
        return xcp__oom();
    for (i = 0; i < n; i++) {
        xcp__obj *m = all[i];
        if (xcp__obj_int(m, F(message, timestamp)) < since)
            continue;
        if (cls && (strcmp(xcp__obj_str(m, F(message, cls)), cls) ||
                    strcmp(xcp__obj_str(m, F(message, obj_uuid)), uuid)))
            continue;
        hits[k++] = m;
    }
    rc = xcp__records_of(hits, k, c->result);
    free(hits);
    return rc;
}

static int message_get(xcp__ctx *c)
{
    const xcp_value *t = xcp__arg(c, 2);

    return messages_since(c, xcp__arg_str(c, 0), xcp__arg_str(c, 1),
                          t->kind == XCP_VAL_DATETIME ? t->u.t : 0);
}

static int message_get_since(xcp__ctx *c)
{
    const xcp_value *t = xcp__arg(c, 0);

    return messages_since(c, NULL, NULL,
                          t->kind == XCP_VAL_DATETIME ? t->u.t : 0);
}

const struct xcp__impl xcp__impl_message[] = {
    {"message.create", message_create},
    {"message.destroy", message_destroy},
    {"message.destroy_many", message_destroy_many},
    {"message.get", message_get},
    {"message.get_since", message_get_since},
    {NULL, NULL},
};
