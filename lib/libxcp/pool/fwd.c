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
#include <time.h>

#include "../engine/engine.h"
#include "../client/client.h"
#include <xcp/session.h>

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

int xcp__pool_member_ops(xcp__db *db, const char *body, char *why,
                         size_t whylen, char *missing)
{
    const char *ops = body;

    missing[0] = '\0';
    if (ops[0] != 'T' || ops[1] != ' ' || ops[2] < '0' || ops[2] > '9') {
        snprintf(why, whylen, "not a transaction (T <gen> ...)");
        return -1;
    }
    ops += 2;
    while (*ops >= '0' && *ops <= '9')
        ops++;
    if (*ops && *ops != ' ') {
        snprintf(why, whylen, "not a transaction (T <gen> ...)");
        return -1;
    }
    if (*ops == ' ')
        ops++;
    if (xcp__journal_apply_ops_missing(db, ops, why, whylen, missing) < 0)
        return missing[0] ? -2 : -1;
    return 0;
}

/* pool.member_commit(body): "T <gen> <ops>" as the member journaled it
 * for itself; the generation is the member's and is not used. */
static int member_commit(xcp__ctx *c)
{
    char why[200], missing[XCP_REF_MAX], coord[256];
    int rc, cls;

    if ((rc = need_pool_session(c)) < 0)
        return rc;
    if (xcp__pool_member_of(c->e->pool_repl, coord, sizeof(coord)))
        return XCP__ERR_HOST_IS_SLAVE(coord);
    rc = xcp__pool_member_ops(c->db, xcp__arg_str(c, 0), why, sizeof(why),
                              missing);
    /* A row the member changed is gone here (destroyed meanwhile): what
     * XAPI answers for a ref that is no more. */
    if (rc == -2) {
        cls = xcp__db_tomb_class(c->db, missing);
        return XCP__ERR_HANDLE_INVALID(cls >= 0 ? xcp__classes[cls].name
                                                : "",
                                       missing);
    }
    if (rc < 0)
        return XCP__ERR_INVALID_VALUE_WHY("body", "", why);
    /* Commit now, to answer with its seq (the call waits for a quorum
     * after the engine lock, as every call does). */
    if ((rc = xcp__ctx_commit(c)) < 0)
        return rc;
    xcp_value_set_int(c->result, (int64_t)xcp__db_seq(c->db));
    return 0;
}

/* pool.member_sync(seq), on a member: wait until its replica holds seq. */
static int member_sync(xcp__ctx *c)
{
    int64_t seq = xcp__arg_int(c, 0);
    int rc;

    if ((rc = need_pool_session(c)) < 0)
        return rc;
    if (!c->e->pool_repl || seq <= 0 ||
        !xcp__pool_member_of(c->e->pool_repl, NULL, 0))
        return 0; /* the coordinator has everything */
    xcp__db_commit(c->db);
    pthread_mutex_unlock(&c->e->lock);
    rc = xcp__pool_wait_applied(c->e->pool_repl, (uint64_t)seq);
    pthread_mutex_lock(&c->e->lock);
    xcp__db_begin(c->db);
    return rc;
}

const struct xcp__impl xcp__impl_pool_fwd[] = {
    {"pool.member_commit", member_commit},
    {"pool.member_sync", member_sync},
    {NULL, NULL},
};

/* ---- forwarding (XAPI's message_forwarding.ml) ------------------------- */

/* The messages that touch a domain, and where their host comes from:
 * the VM's resident_on (or, to start, its host argument, else the host
 * placement chooses; to resume, its affinity), or that of the VM of a
 * VBD/VIF; and the host messages that run on the host itself. */
enum where { ON_RESIDENT, ON_ARG1, ON_AFFINITY, ON_DEVICE_VM, ON_PLACEMENT,
             ON_HOST };
static const struct {
    const char *wire;
    enum where where;
} routes[] = {
    {"VM.start", ON_PLACEMENT},        {"VM.start_on", ON_ARG1},
    {"VM.resume", ON_AFFINITY},        {"VM.resume_on", ON_ARG1},
    {"VM.shutdown", ON_RESIDENT},      {"VM.clean_shutdown", ON_RESIDENT},
    {"VM.hard_shutdown", ON_RESIDENT}, {"VM.clean_reboot", ON_RESIDENT},
    {"VM.hard_reboot", ON_RESIDENT},   {"VM.suspend", ON_RESIDENT},
    {"VM.pause", ON_RESIDENT},         {"VM.unpause", ON_RESIDENT},
    {"VBD.plug", ON_DEVICE_VM},        {"VBD.unplug", ON_DEVICE_VM},
    {"VBD.unplug_force", ON_DEVICE_VM}, {"VIF.plug", ON_DEVICE_VM},
    {"VIF.unplug", ON_DEVICE_VM},      {"VIF.unplug_force", ON_DEVICE_VM},
    {"VM.pool_migrate", ON_RESIDENT},
    {"host.shutdown", ON_HOST},        {"host.reboot", ON_HOST},
    {"host.disable", ON_HOST},         {"host.enable", ON_HOST},
};

/* host_metrics.live of h (the coordinator keeps it from the group). */
static bool live(xcp__ctx *c, const xcp__obj *h)
{
    xcp__obj *m = xcp__db_get_cls(c->db, C(host_metrics),
                                  xcp__obj_str(h, F(host, metrics)));

    return m && xcp__obj_bool(m, F(host_metrics, live));
}

int xcp__pool_fwd_target(xcp__ctx *c, const char *placed, char *addr,
                         size_t n)
{
    const char *wire = c->msg ? c->msg->wire : NULL, *host = "";
    const xcp_value *a0 = xcp__arg(c, 0), *a1 = xcp__arg(c, 1);
    xcp__obj *vm = NULL, *dev, *h;
    size_t i;

    if (!wire || !c->e->pool_repl ||
        xcp__pool_member_of(c->e->pool_repl, NULL, 0))
        return 0;
    for (i = 0; i < XCP__ARRAY_LEN(routes); i++)
        if (!strcmp(routes[i].wire, wire))
            break;
    if (i == XCP__ARRAY_LEN(routes) || !a0 || a0->kind != XCP_VAL_STRING)
        return 0;
    switch (routes[i].where) {
    case ON_ARG1:
        host = a1 && a1->kind == XCP_VAL_STRING ? a1->u.s : "";
        break;
    case ON_HOST:
        host = a0->u.s;
        break;
    case ON_PLACEMENT:
        host = placed ? placed : "";
        break;
    case ON_DEVICE_VM:
        dev = xcp__db_get(c->db, a0->u.s);
        if (dev && (dev->cls == C(VBD) || dev->cls == C(VIF)))
            vm = xcp__db_get_cls(c->db, C(VM),
                                 xcp__obj_str(dev, dev->cls == C(VBD)
                                                       ? F(VBD, VM)
                                                       : F(VIF, VM)));
        host = vm ? xcp__obj_str(vm, F(VM, resident_on)) : "";
        break;
    case ON_AFFINITY:
    case ON_RESIDENT:
        vm = xcp__db_get_cls(c->db, C(VM), a0->u.s);
        host = !vm ? ""
               : routes[i].where == ON_AFFINITY
                   ? xcp__obj_str(vm, F(VM, affinity))
                   : xcp__obj_str(vm, F(VM, resident_on));
        break;
    }
    /* Unknown refs and this host's own work run here, where the checks
     * answer as on a single host. */
    h = xcp__db_get_cls(c->db, C(host), host);
    if (!h || !strcmp(h->ref, c->e->host) ||
        !*xcp__obj_str(h, F(host, address)))
        return 0;
    /* A host the pool knows is down cannot be reached (XAPI's
     * HOST_OFFLINE when the call to it fails). */
    if (!live(c, h))
        return XCP__ERR_HOST_OFFLINE(h->ref);
    snprintf(addr, n, "%s", xcp__obj_str(h, F(host, address)));
    return 1;
}

int xcp__pool_peer_login(xcp__engine *e, const char *addr, const char *self,
                         xcp_session **out)
{
    xcp_remote_options o;
    xcp_value la[2];
    char secret[65], uri[300];
    int rc;

    *out = NULL;
    if ((rc = xcp__pool_secret_read(e->state_dir, secret)) < 0)
        return rc;
    snprintf(uri, sizeof(uri), "http://%s", addr);
    memset(&o, 0, sizeof(o));
    o.version = XCP_REMOTE_OPTIONS_VERSION;
    o.uri = uri;
    o.connect_timeout_ms = 5000;
    memset(la, 0, sizeof(la));
    if (xcp_value_set_string(&la[0], self) < 0 ||
        xcp_value_set_string(&la[1], secret) < 0)
        rc = xcp__oom();
    else
        rc = xcp__session_open_remote_login(out, &o, "session.slave_login",
                                            2, la);
    xcp_value_dispose(&la[0]);
    xcp_value_dispose(&la[1]);
    memset(secret, 0, sizeof(secret));
    return rc;
}

/* Whether the task here is being cancelled (task.cancel). */
static bool task_cancelling(xcp__engine *e, const char *task)
{
    xcp__obj *t;
    bool yes;

    pthread_mutex_lock(&e->lock);
    t = xcp__db_get_cls(e->db, C(task), task);
    yes = t && !strcmp(xcp__obj_str(t, F(task, status)), "cancelling");
    pthread_mutex_unlock(&e->lock);
    return yes;
}

/* wire as an async task on s, followed until it ends; a cancel of task
 * (here) becomes a task.cancel there. */
static int fwd_async(xcp__engine *e, xcp_session *s, const char *task,
                     const char *wire, size_t nargs, const xcp_value *args,
                     xcp_value *result)
{
    xcp_value t, st, tv;
    char aw[160];
    bool asked = false;
    int rc;

    snprintf(aw, sizeof(aw), "Async.%s", wire);
    if ((rc = xcp_call(s, &t, aw, nargs, args)) < 0)
        return rc;
    if (t.kind != XCP_VAL_STRING) {
        xcp_value_dispose(&t);
        return xcp__internal("%s gave no task", aw);
    }
    for (;;) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        bool pending;

        if (xcp_value_set_string(&tv, t.u.s) < 0) {
            rc = xcp__oom();
            break;
        }
        rc = xcp_call(s, &st, "task.get_status", 1, &tv);
        xcp_value_dispose(&tv);
        if (rc < 0)
            break;
        pending = st.kind == XCP_VAL_STRING &&
                  (!strcmp(st.u.s, "pending") || !strcmp(st.u.s, "cancelling"));
        xcp_value_dispose(&st);
        if (!pending) {
            rc = xcp_task_wait(s, result, t.u.s);
            break;
        }
        if (!asked && task_cancelling(e, task)) {
            asked = true;
            if (xcp_value_set_string(&tv, t.u.s) == 0) {
                /* a task past cancelling answers OPERATION_NOT_ALLOWED:
                 * its end comes anyway */
                if (xcp_call(s, NULL, "task.cancel", 1, &tv) < 0)
                    xcp_error_clear();
                xcp_value_dispose(&tv);
            }
        }
        nanosleep(&ts, NULL);
    }
    xcp_value_dispose(&t);
    return rc;
}

int xcp__pool_fwd_call(xcp__engine *e, const char *addr, const char *self,
                       uint64_t seq, const char *task, const char *wire,
                       size_t nargs, const xcp_value *args, xcp_value *result)
{
    xcp_session *s = NULL;
    xcp_value sv;
    int rc;

    if ((rc = xcp__pool_peer_login(e, addr, self, &s)) < 0)
        return rc;
    xcp_value_set_int(&sv, (int64_t)seq);
    rc = xcp_call(s, NULL, "pool.member_sync", 1, &sv);
    if (rc == 0)
        rc = task && task[0]
                 ? fwd_async(e, s, task, wire, nargs, args, result)
                 : xcp_call(s, result, wire, nargs, args);
    {
        xcp__saved_error saved;
        xcp__error_save(&saved);
        xcp_session_close(s);
        xcp__error_restore(&saved);
    }
    return rc;
}
