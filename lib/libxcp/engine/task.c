/*
 * task.*: manual tasks (task.create, for HTTP transfers), cancel and
 * destroy, and the owner's setters. Tasks of Async. calls are made and
 * finished by the engine (engine.c).
 */
#include "engine.h"
#include "../rpc/rpc.h"

#include <stdio.h>
#include <stdlib.h>

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

static int drop_txn(xcp__ctx *c, void *arg)
{
    xcp__obj *t = xcp__db_get_cls(c->db, C(task), arg);

    return t ? xcp__db_destroy(c->db, t) : 0;
}

void xcp__task_drop(xcp__engine *e, const char *ref)
{
    xcp__saved_error saved;

    if (!ref || !*ref)
        return;
    xcp__error_save(&saved);
    xcp__engine_txn(e, drop_txn, (void *)ref);
    xcp__error_restore(&saved);
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
        return XCP__ERR_OPERATION_NOT_ALLOWED(
            "task is not cancellable");
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
    rc = 0;
    if (field == F(task, status) && v.kind == XCP_VAL_STRING &&
        strcmp(v.u.s, "pending") && strcmp(v.u.s, "cancelling"))
        rc = xcp__task_finished(c, t);
    if (rc == 0)
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

/* ---- the task collector ----------------------------------------------- */

#define TASK_MAX_DEFAULT 200            /* XAPI's Xapi_globs.max_tasks */
#define TASK_TIMEOUT_DEFAULT 3900       /* XAPI: completed tasks, 65 min */
/* A completed task is not collected for being over the limit until this
 * long after it finished, so its client can always read its result (with
 * 300 Async calls in flight, every task would otherwise go the moment it
 * completes). XAPI gets the same slack from running its GC every 30 s. */
#define TASK_GRACE_DEFAULT 30

int xcp__tasks_gc_init(xcp__engine *e)
{
    int64_t max, timeout, grace;
    int rc;

    if ((rc = xcp__env_int("XCP_TASK_MAX", TASK_MAX_DEFAULT, &max)) < 0 ||
        (rc = xcp__env_int("XCP_TASK_TIMEOUT", TASK_TIMEOUT_DEFAULT,
                           &timeout)) < 0 ||
        (rc = xcp__env_int("XCP_TASK_GRACE", TASK_GRACE_DEFAULT,
                           &grace)) < 0)
        return rc;
    e->task_max = (size_t)max;
    e->task_timeout_s = timeout;
    e->task_grace_s = grace;
    return 0;
}

static struct xcp__done_task *done_at(xcp__engine *e, size_t i)
{
    return &e->done[(e->done_head + i) % e->done_cap];
}

/* The completed task an entry names, or NULL when the entry is stale. */
static xcp__obj *done_task(xcp__engine *e, const struct xcp__done_task *d)
{
    xcp__obj *t = xcp__db_get_cls(e->db, C(task), d->ref);

    return t && !pending(t) ? t : NULL;
}

/* Drop the stale entries (the queue is full: they may be most of it). */
static void done_compact(xcp__engine *e)
{
    size_t i, n = 0;

    for (i = 0; i < e->done_n; i++) {
        struct xcp__done_task d = *done_at(e, i);
        if (done_task(e, &d))
            *done_at(e, n++) = d;   /* n <= i: nothing unread is lost */
    }
    e->done_n = n;
}

static int done_push(xcp__engine *e, const char *ref, int64_t finished)
{
    struct xcp__done_task *d;

    if (e->done_n == e->done_cap && e->done_cap >= 4 * e->task_max + 64)
        done_compact(e);
    if (e->done_n == e->done_cap) {
        size_t cap = e->done_cap ? 2 * e->done_cap : 64, i;
        struct xcp__done_task *nd = xcp__calloc(cap, sizeof(*nd));
        if (!nd)
            return xcp__oom();
        for (i = 0; i < e->done_n; i++)
            nd[i] = *done_at(e, i);
        free(e->done);
        e->done = nd;
        e->done_cap = cap;
        e->done_head = 0;
    }
    d = done_at(e, e->done_n++);
    snprintf(d->ref, sizeof(d->ref), "%s", ref);
    d->finished = finished;
    return 0;
}

int xcp__task_finished(xcp__ctx *c, xcp__obj *t)
{
    int64_t now = xcp__now();
    int rc = xcp__db_set_time(c->db, t, F(task, finished), now);

    return rc < 0 ? rc : done_push(c->e, t->ref, now);
}

/* Whether error (a XenAPI error array) says the task was cancelled. */
static bool is_cancel(const xcp_value *error)
{
    return error->kind == XCP_VAL_ARRAY && error->u.arr.n > 0 &&
           error->u.arr.items[0].kind == XCP_VAL_STRING &&
           !strcmp(error->u.arr.items[0].u.s, "TASK_CANCELLED");
}

int xcp__task_complete(xcp__ctx *c, xcp__obj *t, const xcp_value *result,
                       xcp_value *error)
{
    /* Before error is moved into the record. */
    const char *status = !error ? "success"
                         : is_cancel(error) ? "cancelled" : "failure";
    xcp_value v;
    xcp__buf b = {0};
    int rc;

    if (xcp__obj_map_str(t, F(task, other_config), "destroy_when_done"))
        return xcp__db_destroy(c->db, t);   /* task.destroy came meanwhile */
    if ((rc = xcp__task_finished(c, t)) < 0)
        return rc;
    xcp_value_set_array(&v, 0);
    rc = xcp__db_set(c->db, t, F(task, allowed_operations), &v);
    xcp_value_dispose(&v);
    if (rc == 0 && error) {
        rc = xcp__db_set(c->db, t, F(task, error_info), error);
    } else if (rc == 0) {
        v.kind = XCP_VAL_NONE;
        xcp__xmlrpc_encode_value(&b, result ? result : &v, 0);
        rc = b.oom ? xcp__oom()
                   : xcp__db_set_str(c->db, t, F(task, result),
                                     b.data ? b.data : "");
        xcp__buf_free(&b);
    }
    if (rc == 0)
        rc = xcp__db_set_float(c->db, t, F(task, progress), 1.0);
    if (rc == 0)
        rc = xcp__db_set_str(c->db, t, F(task, status), status);
    return rc;
}

/* Whether the completed task of entry d must stay for now. */
static bool done_keep(xcp__engine *e, const struct xcp__done_task *d,
                      int64_t now)
{
    if (d->finished <= now - e->task_timeout_s)
        return false;                   /* timed out */
    return d->finished > now - e->task_grace_s ||
           xcp__db_count(e->db, C(task)) <= e->task_max;
}

void xcp__tasks_gc(xcp__engine *e)
{
    int64_t now;
    size_t gone = 0;

    if (e->done_n == 0 || xcp__db_in_txn(e->db))
        return;
    /* Entries are in finishing order: when the oldest must stay, so do
     * the others (O(1) when nothing is due). */
    now = xcp__now();
    if (done_keep(e, done_at(e, 0), now))
        return;
    xcp__db_begin(e->db);
    while (e->done_n > 0) {
        struct xcp__done_task *d = done_at(e, 0);
        xcp__obj *t = done_task(e, d);
        if (t && done_keep(e, d, now))
            break;
        if (t && xcp__db_destroy(e->db, t) == 0)
            gone++;
        e->done_head = (e->done_head + 1) % e->done_cap;
        e->done_n--;
    }
    if (gone == 0) {
        xcp__db_abort(e->db);
    } else if (xcp__db_commit(e->db) < 0) {
        xcp__log(XCP__LOG_ERR, "cannot destroy %zu completed tasks", gone);
    }
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
