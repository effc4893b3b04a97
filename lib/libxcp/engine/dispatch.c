/*
 * From a call to the engine: message lookup by wire name, arity and
 * defaults, argument checking, the typed API's conversions, and the local
 * session driver. The remote driver (client/) plugs in below the same
 * xcp_call() entry, so every message works both ways.
 */
#include "engine.h"
#include "../rpc/rpc.h"
#include "../client/client.h"
#include "transfer.h"
#include "xva.h"
#include "../api/http_handlers.h"

#include <xcp/transfer.h>

#include <stdio.h>

/* ---- implementations, indexed by message id ---- */

static const struct xcp__impl *const impl_tables[] = {
    xcp__impl_session, xcp__impl_task, xcp__impl_event, xcp__impl_vm,
    xcp__impl_vm_copy, xcp__impl_host, xcp__impl_pool,  xcp__impl_sr,
    xcp__impl_pbd,     xcp__impl_vdi,  xcp__impl_vbd,   xcp__impl_vif,
    xcp__impl_network, xcp__impl_console, xcp__impl_blob, xcp__impl_secret,
    xcp__impl_message, xcp__impl_vdi_nbd, xcp__impl_metrics,
    xcp__impl_pool_fwd};

/* The model's explicit messages (those the generic code cannot serve) that
 * have no implementation yet: they answer NOT_IMPLEMENTED. Every explicit
 * message is in exactly one of this list and the tables above. */
static const char *const unimplemented[] = {
    "Bond.create", "Bond.destroy", "Bond.set_mode", "Bond.set_property",
    "PIF.forget", "PIF.introduce", "PIF.plug", "PIF.reconfigure_ip",
    "PIF.reconfigure_ipv6", "PIF.scan", "PIF.set_disallow_unplug",
    "PIF.set_primary_address_type", "PIF.set_property", "PIF.unplug",
    "SR.create_new_blob", "VDI.pool_migrate",
    "VLAN.create", "VLAN.destroy", "VM.call_plugin", "VM.create_new_blob",
    "VM.import", "VM.maximise_memory",
    "VM.send_sysrq",
    "VM.send_trigger", "VM.set_shadow_multiplier_live", "host.call_plugin",
    "host.create_new_blob", "host.declare_dead", "host.dmesg",
    "host.get_log", "host.management_reconfigure",
    "host.power_on",
    "host.restart_agent", "host.syslog_reconfigure",
    "network.create_new_blob", "pool.apply_edition",
    "pool.create_VLAN_from_PIF", "pool.create_new_blob",
    "pool.disable_ha", "pool.enable_ha", "pool.management_reconfigure",
    "pool.set_ha_host_failures_to_tolerate", "pool.sync_database",
    "pool_update.apply", "pool_update.destroy", "pool_update.introduce",
    "pool_update.pool_apply", "pool_update.pool_clean", "pool_update.precheck",
    "session.logout_subject_identifier",
    NULL};

static xcp__impl_fn impls[XCP__NMESSAGES];
static pthread_once_t impls_once = PTHREAD_ONCE_INIT;

/* Report one problem of the registry, formatted. */
static void problem(void (*report)(void *, const char *), void *arg,
                    size_t *n, const char *fmt, const char *wire)
{
    char buf[160];

    snprintf(buf, sizeof(buf), fmt, wire);
    (*n)++;
    if (report)
        report(arg, buf);
}

size_t xcp__impl_check(void (*report)(void *arg, const char *problem),
                       void *arg)
{
    /* per message: 1 = implemented, 2 = listed unimplemented */
    unsigned char seen[XCP__NMESSAGES] = {0};
    size_t t, n = 0;
    const char *const *u;
    int id;

    for (t = 0; t < XCP__ARRAY_LEN(impl_tables); t++) {
        const struct xcp__impl *i;
        for (i = impl_tables[t]; i->wire; i++) {
            if ((id = xcp__message_lookup(i->wire)) < 0)
                problem(report, arg, &n,
                        "implementation of unknown message %s", i->wire);
            else if (seen[id]++)
                problem(report, arg, &n, "message %s implemented twice",
                        i->wire);
        }
    }
    for (u = unimplemented; *u; u++) {
        if ((id = xcp__message_lookup(*u)) < 0)
            problem(report, arg, &n, "unimplemented list: unknown message %s",
                    *u);
        else if (xcp__messages[id].kind != XM_EXPLICIT)
            problem(report, arg, &n,
                    "unimplemented list: %s is served generically", *u);
        else if (seen[id])
            problem(report, arg, &n,
                    "unimplemented list: %s has an implementation", *u);
        else
            seen[id] = 2;
    }
    for (id = 0; id < XCP__NMESSAGES; id++)
        if (xcp__messages[id].kind == XM_EXPLICIT && !seen[id])
            problem(report, arg, &n,
                    "explicit message %s is neither implemented nor listed "
                    "as unimplemented", xcp__messages[id].wire);
    return n;
}

static void log_problem(void *arg, const char *msg)
{
    xcp__log(XCP__LOG_ERR, "message registry: %s", msg);
}

static void impls_init(void)
{
    size_t t;

    xcp__impl_check(log_problem, NULL);
    for (t = 0; t < XCP__ARRAY_LEN(impl_tables); t++) {
        const struct xcp__impl *i;
        for (i = impl_tables[t]; i->wire; i++) {
            int id = xcp__message_lookup(i->wire);
            if (id >= 0)
                impls[id] = i->fn;
        }
    }
}

xcp__impl_fn xcp__impl_find(int mid)
{
    pthread_once(&impls_once, impls_init);
    return (mid >= 0 && mid < XCP__NMESSAGES) ? impls[mid] : NULL;
}

/* ---- argument preparation ---- */

static bool utf8_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    while (*p) {
        unsigned c = *p++;
        int n;
        unsigned cp;
        if (c < 0x80)
            continue;
        if ((c & 0xe0) == 0xc0) {
            n = 1;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        while (n-- > 0) {
            if ((*p & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (*p++ & 0x3f);
        }
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
            (c == 0xc0 || c == 0xc1) || (c == 0xe0 && cp < 0x800) ||
            (c == 0xf0 && cp < 0x10000))
            return false;
    }
    return true;
}

/* Every string inside v is valid UTF-8; else the offending string. */
static const char *bad_utf8(const xcp_value *v)
{
    size_t i;
    const char *b;

    switch (v->kind) {
    case XCP_VAL_STRING:
        return utf8_ok(v->u.s) ? NULL : v->u.s;
    case XCP_VAL_ARRAY:
        for (i = 0; i < v->u.arr.n; i++)
            if ((b = bad_utf8(&v->u.arr.items[i])))
                return b;
        return NULL;
    case XCP_VAL_STRUCT:
        for (i = 0; i < v->u.st.n; i++) {
            if (!utf8_ok(v->u.st.keys[i]))
                return v->u.st.keys[i];
            if ((b = bad_utf8(&v->u.st.vals[i])))
                return b;
        }
        return NULL;
    case XCP_VAL_RECORD:
        for (i = 0; i < xcp__classes[v->u.rec.cls].nfields; i++)
            if ((b = bad_utf8(&v->u.rec.fields[i])))
                return b;
        return NULL;
    default:
        return NULL;
    }
}

/* Check arity, fill defaults, check types. args has room for
 * msg->nparams values; *n is the count given, updated. */
int xcp__prepare_args(const struct xcp__message *m, xcp_value *args,
                      size_t *n)
{
    size_t i;
    int rc;

    if (*n < m->nrequired || (*n > m->nparams && m->nrequired == m->nparams)) {
        char exp[16], got[16];
        snprintf(exp, sizeof(exp), "%u", (unsigned)m->nrequired);
        snprintf(got, sizeof(got), "%zu", *n);
        return XCP__ERR_MESSAGE_PARAMETER_COUNT_MISMATCH(m->wire, exp,
                                                         got);
    }
    for (i = 0; i < *n; i++) {
        const char *b = bad_utf8(&args[i]);
        if (b)
            return XCP__ERR_INVALID_VALUE(
                "Invalid UTF-8 string in parameter", b);
    }
    /* Surplus trailing arguments of messages with defaults: ignored. */
    for (i = m->nparams; i < *n; i++)
        xcp_value_dispose(&args[i]);
    if (*n > m->nparams)
        *n = m->nparams;
    for (i = *n; i < m->nparams; i++) {
        if ((rc = xcp__value_default(m->params[i].type, m->params[i].def,
                                     &args[i])) < 0)
            return rc;
    }
    *n = m->nparams;
    for (i = 0; i < m->nparams; i++)
        if ((rc = xcp__value_check(m->params[i].type, &args[i],
                                   m->params[i].name)) < 0)
            return rc;
    return 0;
}

static int invoke(xcp_session *s, int mid, bool async, size_t nargs,
                  xcp_value *args, xcp_value *result)
{
    const struct xcp__message *m = &xcp__messages[mid];
    int rc;

    if (xcp__session_interrupted(s))
        return xcp__interrupted();
    if ((rc = xcp__prepare_args(m, args, &nargs)) < 0)
        return rc;
    xcp__trace("call %s%s", async ? "Async." : "", m->wire);
    rc = s->ops->invoke(s, mid, async, nargs, args, result);
    xcp__trace("returned %s%s", async ? "Async." : "", m->wire);
    return rc;
}

static int parse_wire(const char *method, bool *async)
{
    *async = false;
    if (strncmp(method, "Async.", 6) == 0) {
        *async = true;
        method += 6;
    }
    return xcp__message_lookup(method);
}

int xcp_call(xcp_session *s, xcp_value *result, const char *method,
             size_t nargs, const xcp_value *args)
{
    xcp_value local, *argv;
    size_t i, cap;
    bool async;
    int mid, rc;

    xcp_error_clear();
    if (!result)
        result = &local;
    result->kind = XCP_VAL_NONE;
    if (!s || !method)
        return XCP__ERR_INVALID_VALUE("method", method ? method : "");
    mid = parse_wire(method, &async);
    if (mid < 0)
        return XCP__ERR_MESSAGE_METHOD_UNKNOWN(
            strncmp(method, "Async.", 6) ? method : method + 6);
    cap = nargs > xcp__messages[mid].nparams ? nargs
                                             : xcp__messages[mid].nparams;
    if (!(argv = xcp__calloc(cap, sizeof(xcp_value))))
        return xcp__oom();
    for (i = 0; i < nargs; i++) {
        if ((rc = xcp_value_copy(&argv[i], &args[i])) < 0)
            goto out;
    }
    rc = invoke(s, mid, async, nargs, argv, result);
out:
    for (i = 0; i < cap; i++)
        xcp_value_dispose(&argv[i]);
    free(argv);
    if (result == &local)
        xcp_value_dispose(&local);
    return rc;
}

int xcp__typed_call(xcp_session *s, int mid, bool async, void *out,
                    const void *const *args)
{
    const struct xcp__message *m = &xcp__messages[mid];
    xcp_value argv[32], result;
    size_t i, n = m->nparams;
    int rc = 0;

    xcp_error_clear();
    if (!s)
        return XCP__ERR_SESSION_INVALID("");
    if (n > XCP__ARRAY_LEN(argv))
        return xcp__internal("too many parameters for %s", m->wire);
    memset(argv, 0, sizeof(argv));
    for (i = 0; i < n; i++) {
        /* Constructors send only the fields settable at creation. */
        rc = xcp__c_to_value(m->params[i].type, args[i], &argv[i],
                             m->kind == XM_CREATE);
        if (rc < 0)
            goto out;
    }
    rc = invoke(s, mid, async, n, argv, &result);
    if (rc == 0 && out) {
        if (async) {
            rc = xcp__value_to_c(&xcp__T_ref_task, &result, out);
        } else if (m->ret->kind != XT_VOID) {
            rc = xcp__value_check(m->ret, &result, "result");
            if (rc == 0)
                rc = xcp__value_to_c(m->ret, &result, out);
        }
    }
    xcp_value_dispose(&result);
out:
    for (i = 0; i < n; i++)
        xcp_value_dispose(&argv[i]);
    return rc;
}

/* ---- the local session driver ---- */

struct local {
    xcp__engine *e;
};

static int local_invoke(xcp_session *s, int mid, bool async, size_t nargs,
                        xcp_value *args, xcp_value *result)
{
    struct local *l = s->priv;
    xcp__call_opts o = {.interrupt = &s->interrupted};

    return xcp__engine_call_opts(l->e, s->ref, mid, async, nargs, args,
                                 result, &o);
}

/* An interrupt wakes the engine's waiters: the session's own sees its
 * flag (xcp__ctx_interrupted), the others wait again. */
static void local_interrupt(xcp_session *s, bool on)
{
    struct local *l = s->priv;

    if (!on)
        return;
    pthread_mutex_lock(&l->e->lock);
    pthread_cond_broadcast(&l->e->changed);
    pthread_mutex_unlock(&l->e->lock);
}

static void local_close(xcp_session *s)
{
    struct local *l = s->priv;
    xcp_value arg, res;
    int mid = xcp__message_lookup("session.logout");

    xcp_value_set_string(&arg, s->ref);
    xcp__engine_call(l->e, s->ref, mid, false, 0, &arg, &res);
    xcp_value_dispose(&arg);
    xcp_value_dispose(&res);
    xcp__engine_put(l->e);
    free(l);
}

/* xcp_get_records_fields on the engine: the refs, then the fields of a
 * batch of records at a time under one hold of the lock, never every
 * record whole. */
static int local_records_fields(xcp_session *s, int cls, const char *where,
                                const int *fields, size_t n,
                                const xcp_value *names, xcp_value *result)
{
    struct local *l = s->priv;
    xcp_value arg, refs, batch[256];
    char wire[128];
    size_t i, j, k;
    int mid, rc;

    XCP__UNUSED(names);
    snprintf(wire, sizeof(wire), "%s.get_all%s", xcp__classes[cls].name,
             where ? "_where" : "");
    if ((mid = xcp__message_lookup(wire)) < 0)
        return xcp__internal("no message %s", wire);
    arg.kind = XCP_VAL_NONE;
    if (where && (rc = xcp_value_set_string(&arg, where)) < 0)
        return rc;
    rc = xcp__engine_call(l->e, s->ref, mid, false, where ? 1 : 0, &arg,
                          &refs);
    xcp_value_dispose(&arg);
    if (rc < 0)
        return rc;
    xcp_value_set_struct(result);
    for (i = 0; rc == 0 && i < refs.u.arr.n; i += k) {
        k = refs.u.arr.n - i;
        if (k > XCP__ARRAY_LEN(batch))
            k = XCP__ARRAY_LEN(batch);
        if ((rc = xcp__engine_read_slice(l->e, s->ref, cls,
                                         &refs.u.arr.items[i], k, fields, n,
                                         batch)) < 0)
            break;
        for (j = 0; j < k; j++) {
            if (rc == 0 && batch[j].kind != XCP_VAL_NONE)
                rc = xcp_value_struct_add(result,
                                          refs.u.arr.items[i + j].u.s,
                                          &batch[j]);
            xcp_value_dispose(&batch[j]);
        }
    }
    xcp_value_dispose(&refs);
    if (rc < 0)
        xcp_value_dispose(result);
    return rc;
}

static int local_console_open(xcp_session *s, const char *ref, int *fd)
{
    struct local *l = s->priv;
    xcp__console_req r = {s->ref, ref, false};
    int http;

    return xcp__console_open(l->e, &r, fd, &http);
}

static int local_vdi_transfer(xcp_session *s, const char *vdi, bool import,
                              int fd, const xcp_vdi_transfer_options *o)
{
    struct local *l = s->priv;

    return xcp__transfer_fd(l->e, s->ref, vdi, import, fd, o->format,
                            o->version >= 2 ? o->base : NULL, o->progress,
                            o->progress_ctx);
}

static int local_vm_export(xcp_session *s, const char *vm, int fd,
                           const xcp_vm_export_options *o)
{
    struct local *l = s->priv;
    xcp__xva_export_req r = {s->ref, NULL, vm, o->compression,
                             o->metadata_only, !o->no_snapshots,
                             o->preserve_power_state};

    return xcp__xva_export_fd(l->e, &r, fd, o->progress, o->progress_ctx);
}

static int local_vm_import(xcp_session *s, int fd,
                           const xcp_vm_import_options *o, xcp_value *vms)
{
    struct local *l = s->priv;
    xcp__xva_import_req r = {s->ref, NULL, o->sr.ref, o->force, o->restore,
                             o->metadata};

    return xcp__xva_import_fd(l->e, &r, fd, o->progress, o->progress_ctx,
                              vms);
}

static int local_handler(xcp_session *s, const char *path,
                         const char *const *kv, size_t n, bool put, int fd)
{
    struct local *l = s->priv;

    return xcp__http_handler(l->e, s->ref, path, kv, n, put, fd);
}

static const struct xcp__session_ops local_ops = {
    local_invoke, local_close, local_records_fields, local_console_open,
    local_vdi_transfer, local_vm_export, local_vm_import, local_interrupt,
    local_handler};

int xcp_session_open_local(xcp_session **out, const xcp_open_options *opts)
{
    xcp_session *s;
    struct local *l;
    xcp_value args[4], res;
    int mid = xcp__message_lookup("session.login_with_password");
    int rc;

    xcp_error_clear();
    if (opts && opts->version != XCP_OPEN_OPTIONS_VERSION)
        return XCP__ERR_INVALID_VALUE("xcp_open_options.version", "");
    s = xcp__calloc(1, sizeof(*s));
    l = xcp__calloc(1, sizeof(*l));
    if (!s || !l) {
        free(s);
        free(l);
        return xcp__oom();
    }
    if ((rc = xcp__engine_get(&l->e, opts)) < 0) {
        free(s);
        free(l);
        return rc;
    }
    s->ops = &local_ops;
    s->priv = l;
    xcp_value_set_string(&args[0], "root");
    xcp_value_set_string(&args[1], "");
    xcp_value_set_string(&args[2], "1.1");
    xcp_value_set_string(&args[3], (opts && opts->originator)
                                       ? opts->originator : "libxcp");
    rc = xcp__engine_call(l->e, NULL, mid, false, 4, args, &res);
    for (size_t i = 0; i < 4; i++)
        xcp_value_dispose(&args[i]);
    if (rc < 0) {
        xcp__engine_put(l->e);
        free(l);
        free(s);
        return rc;
    }
    snprintf(s->ref, sizeof(s->ref), "%s", res.u.s);
    xcp_value_dispose(&res);
    *out = s;
    return 0;
}

int xcp_session_open(xcp_session **out, const char *uri, const char *user,
                     const char *password)
{
    xcp_error_clear();
    if (!out)
        return XCP__ERR_INVALID_VALUE("out", "");
    if (!uri)
        return xcp_session_open_local(out, NULL);
    return xcp__session_open_remote(out, uri, user, password);
}

void xcp_session_close(xcp_session *s)
{
    if (!s)
        return;
    s->ops->close(s);
    free(s);
}

bool xcp__session_interrupted(const xcp_session *s)
{
    return s && __atomic_load_n(&s->interrupted, __ATOMIC_SEQ_CST);
}

int xcp__interrupted(void)
{
    return xcp__fail_code(XCP_EINTR, "INTERRUPTED", 0, NULL);
}

void xcp_session_interrupt(xcp_session *s)
{
    if (!s)
        return;
    __atomic_store_n(&s->interrupted, 1, __ATOMIC_SEQ_CST);
    if (s->ops->interrupt)
        s->ops->interrupt(s, true);
}

void xcp_session_resume(xcp_session *s)
{
    if (!s || !__atomic_exchange_n(&s->interrupted, 0, __ATOMIC_SEQ_CST))
        return;
    if (s->ops->interrupt)
        s->ops->interrupt(s, false);
}

bool xcp_session_interrupted(const xcp_session *s)
{
    return xcp__session_interrupted(s);
}

const char *xcp_session_ref(const xcp_session *s)
{
    return s ? s->ref : NULL;
}

const char *xcp_session_state_dir(const xcp_session *s)
{
    if (!s || s->ops != &local_ops)
        return NULL;
    return ((struct local *)s->priv)->e->state_dir;
}

/* ---- waiting for tasks ---- */

static int task_field(xcp_session *s, const char *task, const char *field,
                      xcp_value *out)
{
    xcp_value arg;
    char wire[64];
    int rc;

    snprintf(wire, sizeof(wire), "task.get_%s", field);
    if ((rc = xcp_value_set_string(&arg, task)) < 0)
        return rc;
    rc = xcp_call(s, out, wire, 1, &arg);
    xcp_value_dispose(&arg);
    return rc;
}

/* task.result is an XML-RPC <value> fragment (whatever the transport):
 * decode it with the XML-RPC codec, as the value of a response. */
static int decode_result(const char *xml, xcp_value *out)
{
    xcp__buf b = {0};
    xcp_value error;
    char err[256];
    int rc;

    out->kind = XCP_VAL_NONE;
    error.kind = XCP_VAL_NONE;
    if (!xml || !*xml)
        return 0;
    xcp__buf_adds(&b, "<?xml version=\"1.0\"?><methodResponse><params><param>");
    xcp__buf_adds(&b, xml);
    xcp__buf_adds(&b, "</param></params></methodResponse>");
    if (b.oom) {
        xcp__buf_free(&b);
        return xcp__oom();
    }
    rc = xcp__xmlrpc_decode_response(b.data, b.len, out, &error, err,
                                     sizeof(err));
    xcp__buf_free(&b);
    xcp_value_dispose(&error);
    if (rc != 0) { /* a fragment never decodes as a Failure envelope */
        xcp_value_dispose(out);
        return XCP__ERR_INTERNAL_ERROR_DETAIL(
            "cannot decode the task result", err);
    }
    /* A void result decodes as an empty string: report no value. */
    if (out->kind == XCP_VAL_STRING && !*out->u.s)
        xcp_value_dispose(out);
    return 0;
}

/* Whether a task status (task.status) is final. */
static bool task_done(const char *status)
{
    return strcmp(status, "pending") && strcmp(status, "cancelling");
}

/*
 * The task's record in an event.from answer: the snapshot of its last
 * event there, NULL when none has one (no event for it since the token,
 * its deletion, or a server that sends no snapshots).
 */
static const xcp_value *task_snapshot(const xcp_value *ev, const char *task)
{
    const xcp_value *evs = xcp_value_struct_get(ev, "events");
    const xcp_value *snap = NULL, *ref;
    size_t i;

    if (!evs || evs->kind != XCP_VAL_ARRAY)
        return NULL;
    for (i = 0; i < evs->u.arr.n; i++) {
        ref = xcp_value_struct_get(&evs->u.arr.items[i], "ref");
        if (ref && ref->kind == XCP_VAL_STRING && !strcmp(ref->u.s, task))
            snap = xcp_value_struct_get(&evs->u.arr.items[i], "snapshot");
    }
    return snap;
}

/* A field of the task: from its snapshot when that has it as a value of
 * the kind wanted, else asked for (task.get_<field>). *out is a copy. */
static int task_get(xcp_session *s, const char *task, const xcp_value *snap,
                    const char *field, xcp_value_kind kind, xcp_value *out)
{
    const xcp_value *v = snap ? xcp_value_struct_get(snap, field) : NULL;

    if (v && v->kind == kind)
        return xcp_value_copy(out, v);
    return task_field(s, task, field, out);
}

/* The outcome of a finished task: its decoded result (success), else its
 * error made the thread's last error. */
static int task_outcome(xcp_session *s, const char *task,
                        const xcp_value *snap, bool ok, xcp_value *result)
{
    xcp_value v;
    int rc;

    if ((rc = task_get(s, task, snap, ok ? "result" : "error_info",
                       ok ? XCP_VAL_STRING : XCP_VAL_ARRAY, &v)) < 0)
        return rc;
    if (ok)
        rc = result && v.kind == XCP_VAL_STRING ? decode_result(v.u.s, result)
                                                : 0;
    else
        rc = xcp__error_from_value(&v);
    xcp_value_dispose(&v);
    return rc;
}

/*
 * Blocks in event.from on the task alone; each answer carries the task's
 * record when it changed (the first, from the empty token, always), so
 * its status, result and error come from there: two event.from and the
 * task.destroy in the common case. What an answer lacks (a server that
 * sends no snapshot, a timeout with no change, a task gone) is asked for
 * with task.get_*, which also reports a task that does not exist.
 */
int xcp_task_wait(xcp_session *s, xcp_value *result, const char *task)
{
    xcp_value st, args[3], ev, token;
    const xcp_value *snap, *t;
    char *sub;
    bool ok;
    int rc;

    if (result)
        result->kind = XCP_VAL_NONE;
    xcp_value_set_string(&token, "");
    for (;;) {
        if ((rc = xcp_value_set_array(&args[0], 1)) < 0)
            goto out;
        sub = xcp__printf("task/%s", task);
        rc = sub ? xcp_value_set_string(&args[0].u.arr.items[0], sub)
                 : xcp__oom();
        free(sub);
        if (rc < 0 || (rc = xcp_value_copy(&args[1], &token)) < 0) {
            xcp_value_dispose(&args[0]);
            goto out;
        }
        xcp_value_set_float(&args[2], 30.0);
        rc = xcp_call(s, &ev, "event.from", 3, args);
        xcp_value_dispose(&args[0]);
        xcp_value_dispose(&args[1]);
        if (rc < 0)
            goto out;
        t = xcp_value_struct_get(&ev, "token");
        if (t && t->kind == XCP_VAL_STRING) {
            xcp_value_dispose(&token);
            xcp_value_copy(&token, t);
        }
        snap = task_snapshot(&ev, task);
        if ((rc = task_get(s, task, snap, "status", XCP_VAL_STRING,
                           &st)) < 0) {
            xcp_value_dispose(&ev);
            goto out;
        }
        ok = st.kind == XCP_VAL_STRING && !strcmp(st.u.s, "success");
        if (st.kind != XCP_VAL_STRING || task_done(st.u.s)) {
            xcp_value_dispose(&st);
            rc = task_outcome(s, task, snap, ok, result);
            xcp_value_dispose(&ev);
            break;
        }
        xcp_value_dispose(&st);
        xcp_value_dispose(&ev);
    }
    {
        /* Keep the error across the cleanup call. */
        xcp__saved_error saved;
        xcp_value arg, dummy;
        xcp__error_save(&saved);
        xcp_value_set_string(&arg, task);
        xcp_call(s, &dummy, "task.destroy", 1, &arg);
        xcp_value_dispose(&arg);
        xcp_value_dispose(&dummy);
        xcp__error_restore(&saved);
    }
out:
    xcp_value_dispose(&token);
    return rc;
}
