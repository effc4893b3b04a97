/*
 * task.*: manual tasks (task.create, for HTTP transfers), cancel and
 * destroy, and the owner's setters. Tasks of Async. calls are made and
 * finished by the engine (engine.c).
 */
#include "engine.h"

static int create(xcp__ctx *c)
{
    xcp__obj *t;
    int rc = xcp__task_new(c, xcp__arg_str(c, 0), xcp__arg_str(c, 1), &t);

    return rc < 0 ? rc : xcp__ret_ref(c, t);
}

static bool pending(const xcp__obj *t)
{
    const char *st = xcp__obj_str(t, F(task, status));

    return !strcmp(st, "pending") || !strcmp(st, "cancelling");
}

static int destroy(xcp__ctx *c)
{
    xcp__obj *t;
    int rc;

    if ((rc = xcp__arg_obj(c, 0, C(task), &t)) < 0)
        return rc;
    if (pending(t)) {
        /* Still running: marked, and destroyed when its call ends
         * (engine.c task_finish). */
        return xcp__db_map_put_str(c->db, t, F(task, other_config),
                                   "destroy_when_done", "true");
    }
    return xcp__db_destroy(c->db, t);
}

static int cancel(xcp__ctx *c)
{
    xcp__obj *t;
    int rc;
    bool can = false;
    const xcp_value *ops;
    size_t i;

    if ((rc = xcp__arg_obj(c, 0, C(task), &t)) < 0)
        return rc;
    ops = xcp__obj_val(t, F(task, allowed_operations));
    for (i = 0; ops->kind == XCP_VAL_ARRAY && i < ops->u.arr.n; i++)
        if (!strcmp(ops->u.arr.items[i].u.s, "cancel"))
            can = true;
    if (!can || !pending(t))
        return xcp__fail("OPERATION_NOT_ALLOWED",
                         "task is not cancellable", NULL);
    return xcp__db_set_str(c->db, t, F(task, status), "cancelling");
}

static int setter(xcp__ctx *c, int field)
{
    xcp__obj *t;
    xcp_value v;
    int rc;

    if ((rc = xcp__arg_obj(c, 0, C(task), &t)) < 0)
        return rc;
    if ((rc = xcp_value_copy(&v, xcp__arg(c, 1))) < 0)
        return rc;
    if (field == F(task, status) && v.kind == XCP_VAL_STRING &&
        strcmp(v.u.s, "pending"))
        xcp__db_set_time(c->db, t, F(task, finished), xcp__now());
    rc = xcp__db_set(c->db, t, field, &v);
    xcp_value_dispose(&v);
    return rc;
}

static int set_status(xcp__ctx *c) { return setter(c, F(task, status)); }
static int set_progress(xcp__ctx *c) { return setter(c, F(task, progress)); }
static int set_result(xcp__ctx *c) { return setter(c, F(task, result)); }
static int set_error_info(xcp__ctx *c)
{
    return setter(c, F(task, error_info));
}
static int set_resident_on(xcp__ctx *c)
{
    return setter(c, F(task, resident_on));
}

bool xcp__task_cancelling(xcp__ctx *c)
{
    xcp__obj *t = c->task[0] ? xcp__db_get_cls(c->db, C(task), c->task)
                             : NULL;

    return t && !strcmp(xcp__obj_str(t, F(task, status)), "cancelling");
}

const struct xcp__impl xcp__impl_task[] = {
    {"task.create", create},
    {"task.destroy", destroy},
    {"task.cancel", cancel},
    {"task.set_status", set_status},
    {"task.set_progress", set_progress},
    {"task.set_result", set_result},
    {"task.set_error_info", set_error_info},
    {"task.set_resident_on", set_resident_on},
    {NULL, NULL},
};
