/*
 * tests/client/test_remote.c - remote sessions of the public API against
 * the real daemon (cmd/xcpd/xcpd) on loopback: login over http, https and
 * the unix socket in XML-RPC and JSON-RPC, typed calls whose records equal
 * field by field what the embedded engine reports for the same state dir,
 * Async calls with xcp_task_wait, XenAPI errors with their parameters,
 * long polls, and transport errors. Skips (77) when xcpd was not built.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <xcp/xcp.h>

#include "daemon.h"

static struct daemon D;

static void setup(void)
{
    /* The sim's guest agent reports at boot, not a moment later: records
     * compared across a daemon restart must not change in between. */
    setenv("XCP_SIM_AGENT_DELAY_MS", "0", 1);
    daemon_prepare(&D);
    daemon_start(&D);
}

static void teardown(void)
{
    daemon_cleanup(&D);
}

TestSuite(remote, .init = setup, .fini = teardown, .timeout = 120);

/* ---- helpers -------------------------------------------------------- */

static const char *errname(void)
{
    const xcp_error *e = xcp_error_last();
    return e ? e->name : "(no error)";
}

#define OK(call)                                                        \
    do {                                                                \
        int rc_ = (call);                                               \
        cr_assert_eq(rc_, 0, "%s -> %d %s", #call, rc_, errname());     \
    } while (0)

/* The thread's error is name with exactly these parameters. */
static void assert_error(const char *name, size_t n, const char *const *p)
{
    const xcp_error *e = xcp_error_last();
    size_t i;

    cr_assert_not_null(e, "no error, wanted %s", name);
    cr_assert_str_eq(e->name, name);
    cr_assert_eq(e->nparams, n, "%s: %zu params, wanted %zu", name,
                 e->nparams, n);
    for (i = 0; i < n; i++)
        if (p[i])
            cr_assert_str_eq(e->params[i], p[i], "%s param %zu", name, i);
}

static xcp_session *open_remote(const char *uri, xcp_remote_protocol proto,
                                const char *user, const char *pw)
{
    xcp_remote_options o;
    xcp_session *s = NULL;

    memset(&o, 0, sizeof(o));
    o.version = XCP_REMOTE_OPTIONS_VERSION;
    o.uri = uri;
    o.user = user;
    o.password = pw;
    o.protocol = proto;
    o.insecure = true;
    o.originator = "test_remote";
    OK(xcp_session_open_remote(&s, &o));
    cr_assert_not_null(s);
    return s;
}

static xcp_session *open_local(const char *dir)
{
    xcp_open_options o;
    xcp_session *s = NULL;

    memset(&o, 0, sizeof(o));
    o.version = XCP_OPEN_OPTIONS_VERSION;
    o.state_dir = dir;
    o.lock_timeout_ms = 30000;
    OK(xcp_session_open_local(&s, &o));
    return s;
}

static xcp_vm find_vm(xcp_session *s, const char *name)
{
    xcp_vm_set vms = {0};
    xcp_vm vm;

    OK(xcp_vm_get_by_name_label(s, &vms, name));
    cr_assert_geq(vms.n, 1, "no VM %s", name);
    vm = vms.items[0];
    xcp_vm_set_dispose(&vms);
    return vm;
}

/* Until the started vm's guest agent has reported (bounded): its
 * VM_guest_metrics arrive after VM.start returns, as with XAPI, and
 * records compared across a daemon restart must not change in between. */
static void wait_guest_agent(xcp_session *s, xcp_vm vm)
{
    xcp_vm_guest_metrics gm;
    int i;

    for (i = 0; i < 3000; i++) {
        OK(xcp_vm_get_guest_metrics(s, &gm, vm));
        if (!xcp_ref_is_null(gm.ref))
            return;
        usleep(10000);
    }
    cr_assert_fail("the guest agent of %s never reported", vm.ref);
}

/* Install and start a VM over s: records with sets, maps, datetimes and
 * refs to other objects. */
static xcp_vm install_started(xcp_session *s, const char *name)
{
    xcp_vm vm, tmpl = find_vm(s, "Debian Bookworm 12");

    OK(xcp_vm_clone(s, &vm, tmpl, name));
    OK(xcp_vm_provision(s, vm));
    OK(xcp_vm_start(s, vm, false, false));
    wait_guest_agent(s, vm);
    return vm;
}

/* Deep equality of generic values (public API only). */
static bool val_eq(const xcp_value *a, const xcp_value *b)
{
    size_t i;

    if (a->kind != b->kind)
        return false;
    switch (a->kind) {
    case XCP_VAL_NONE:
        return true;
    case XCP_VAL_STRING:
        return strcmp(a->u.s, b->u.s) == 0;
    case XCP_VAL_INT:
        return a->u.i == b->u.i;
    case XCP_VAL_FLOAT:
        return a->u.f == b->u.f;
    case XCP_VAL_BOOL:
        return a->u.b == b->u.b;
    case XCP_VAL_DATETIME:
        return a->u.t == b->u.t;
    case XCP_VAL_ARRAY:
        /* XenAPI sets are unordered, and the engine may list the many
         * side of a relation in another order after a restart: compare
         * as multisets (sizes here are small). */
        if (a->u.arr.n != b->u.arr.n)
            return false;
        for (i = 0; i < a->u.arr.n; i++) {
            size_t j, na = 0, nb = 0;
            for (j = 0; j < a->u.arr.n; j++) {
                na += val_eq(&a->u.arr.items[i], &a->u.arr.items[j]);
                nb += val_eq(&a->u.arr.items[i], &b->u.arr.items[j]);
            }
            if (na != nb)
                return false;
        }
        return true;
    case XCP_VAL_STRUCT:
        if (a->u.st.n != b->u.st.n)
            return false;
        for (i = 0; i < a->u.st.n; i++) {
            const xcp_value *o = xcp_value_struct_get(b, a->u.st.keys[i]);
            if (!o || !val_eq(&a->u.st.vals[i], o))
                return false;
        }
        return true;
    case XCP_VAL_RECORD:
        if (a->u.rec.cls != b->u.rec.cls)
            return false;
        for (i = 0; i < xcp_class_field_count(a->u.rec.cls); i++)
            if (!val_eq(&a->u.rec.fields[i], &b->u.rec.fields[i]))
                return false;
        return true;
    }
    return false;
}

/* Every record of every class that has get_all_records, as the session
 * sees it: one STRUCT per class id (NONE for classes skipped). */
struct snapshot {
    xcp_value cls[64];
};

/* Classes whose records cannot survive a daemon restart: tasks and
 * sessions live in memory; metrics are sampled when read. */
static bool skip_class(int c)
{
    const char *n = xcp_class_name(c);
    return (xcp_class_flags(c) & (XCP_CLASS_NOGETALL | XCP_CLASS_VOLATILE |
                                  XCP_CLASS_NODB)) ||
           strstr(n, "metrics") != NULL;
}

static void take_snapshot(xcp_session *s, struct snapshot *snap)
{
    int c;

    memset(snap, 0, sizeof(*snap));
    cr_assert_leq(xcp_class_count(), 64);
    for (c = 0; c < xcp_class_count(); c++) {
        char wire[96];
        if (skip_class(c))
            continue;
        snprintf(wire, sizeof(wire), "%s.get_all_records", xcp_class_name(c));
        OK(xcp_call(s, &snap->cls[c], wire, 0, NULL));
        cr_assert_eq(snap->cls[c].kind, XCP_VAL_STRUCT, "%s", wire);
    }
}

static void free_snapshot(struct snapshot *snap)
{
    for (int c = 0; c < 64; c++)
        xcp_value_dispose(&snap->cls[c]);
}

/* Compare field by field, naming the first difference; returns the number
 * of records compared. */
static int compare_snapshots(const struct snapshot *local,
                             const struct snapshot *remote, const char *how)
{
    int c, n = 0;

    for (c = 0; c < xcp_class_count(); c++) {
        const xcp_value *l = &local->cls[c], *r = &remote->cls[c];
        size_t i, f;
        if (l->kind == XCP_VAL_NONE)
            continue;
        cr_assert_eq(l->u.st.n, r->u.st.n, "%s %s: %zu records vs %zu", how,
                     xcp_class_name(c), l->u.st.n, r->u.st.n);
        for (i = 0; i < l->u.st.n; i++) {
            const xcp_value *lr = &l->u.st.vals[i];
            const xcp_value *rr = xcp_value_struct_get(r, l->u.st.keys[i]);
            cr_assert_not_null(rr, "%s: %s %s missing remotely", how,
                               xcp_class_name(c), l->u.st.keys[i]);
            cr_assert_eq(lr->kind, XCP_VAL_RECORD);
            cr_assert_eq(rr->kind, XCP_VAL_RECORD, "%s %s: not a record",
                         how, xcp_class_name(c));
            for (f = 0; f < xcp_class_field_count(c); f++) {
                const xcp_value *lf = &lr->u.rec.fields[f];
                const xcp_value *rf = &rr->u.rec.fields[f];
                if (!val_eq(lf, rf)) {
                    char *lt = xcp_value_to_text(lf);
                    char *rt = xcp_value_to_text(rf);
                    cr_assert_fail("%s: %s.%s differs: local kind %d '%s',"
                                   " remote kind %d '%s'",
                                   how, xcp_class_name(c),
                                   xcp_class_field(c, f)->name, lf->kind, lt,
                                   rf->kind, rt);
                }
            }
            n++;
        }
    }
    return n;
}

/* ---- login ---------------------------------------------------------- */

Test(remote, login_every_transport_and_protocol)
{
    const char *uris[] = {D.http, D.https, D.unix_uri};

    for (size_t u = 0; u < 3; u++)
        for (int p = 0; p < 2; p++) {
            xcp_session *s = open_remote(uris[u], (xcp_remote_protocol)p,
                                         "root", ROOT_PW);
            xcp_host_set hosts = {0};
            cr_assert(strncmp(xcp_session_ref(s), "OpaqueRef:", 10) == 0);
            cr_assert_null(xcp_session_state_dir(s));
            OK(xcp_host_get_all(s, &hosts));
            cr_assert_eq(hosts.n, 1, "%s proto %d", uris[u], p);
            xcp_host_set_dispose(&hosts);
            xcp_session_close(s);
        }
}

Test(remote, session_open_uri_entry)
{
    xcp_session *s = NULL;
    xcp_pool_set pools = {0};

    /* xcp_session_open verifies certificates: use plain http here. */
    OK(xcp_session_open(&s, D.http, "alice", ALICE_PW));
    OK(xcp_pool_get_all(s, &pools));
    cr_assert_eq(pools.n, 1);
    xcp_pool_set_dispose(&pools);
    xcp_session_close(s);
}

Test(remote, login_failures)
{
    xcp_remote_options o;
    xcp_session *s = NULL;
    const char *uris[] = {D.http, D.https};

    memset(&o, 0, sizeof(o));
    o.version = XCP_REMOTE_OPTIONS_VERSION;
    o.insecure = true;
    for (size_t u = 0; u < 2; u++)
        for (int p = 0; p < 2; p++) {
            o.uri = uris[u];
            o.protocol = (xcp_remote_protocol)p;
            o.user = "root";
            o.password = "wrong";
            cr_assert_eq(xcp_session_open_remote(&s, &o), XCP_EAPI);
            cr_assert_null(s);
            cr_assert_str_eq(errname(), "SESSION_AUTHENTICATION_FAILED");
            o.user = "nobody";
            o.password = ROOT_PW;
            cr_assert_eq(xcp_session_open_remote(&s, &o), XCP_EAPI);
            cr_assert_str_eq(errname(), "SESSION_AUTHENTICATION_FAILED");
        }
    o.version = 99;
    cr_assert_lt(xcp_session_open_remote(&s, &o), 0);
    cr_assert_str_eq(errname(), "INVALID_VALUE");
}

Test(remote, tls_verification)
{
    xcp_remote_options o;
    xcp_session *s = NULL;
    char ca[400];

    memset(&o, 0, sizeof(o));
    o.version = XCP_REMOTE_OPTIONS_VERSION;
    o.uri = D.https;
    o.user = "root";
    o.password = ROOT_PW;
    /* Verified by default: the daemon's self-signed certificate is not
     * trusted by the system. */
    cr_assert_eq(xcp_session_open_remote(&s, &o), XCP_EIO);
    cr_assert_str_eq(errname(), "SSL_VERIFY_ERROR");
    cr_assert_eq(xcp_session_open(&s, D.https, "root", ROOT_PW), XCP_EIO);
    cr_assert_str_eq(errname(), "SSL_VERIFY_ERROR");
    /* Trusting that certificate makes it verify (it names 127.0.0.1). The
     * daemon runs without --tls-cert, so it made one in its state dir. */
    snprintf(ca, sizeof(ca), "%s/xcpd-cert.pem", D.state);
    cr_assert_eq(access(ca, R_OK), 0, "no %s", ca);
    o.ca_file = ca;
    OK(xcp_session_open_remote(&s, &o));
    xcp_session_close(s);
    /* Plain HTTP to the TLS port is not a XenAPI reply. */
    o.ca_file = NULL;
    {
        char uri[80];
        snprintf(uri, sizeof(uri), "http://127.0.0.1:%d", D.https_port);
        o.uri = uri;
        cr_assert_eq(xcp_session_open_remote(&s, &o), XCP_EIO);
        cr_assert_str_eq(errname(), "TRANSPORT_ERROR");
    }
}

Test(remote, connection_refused)
{
    xcp_remote_options o;
    xcp_session *s = NULL;
    char missing[400];
    const char *p[2] = {NULL, NULL};

    memset(&o, 0, sizeof(o));
    o.version = XCP_REMOTE_OPTIONS_VERSION;
    o.user = "root";
    o.password = ROOT_PW;
    o.insecure = true;
    daemon_stop(&D); /* its ports are now closed */
    o.uri = D.http;
    cr_assert_eq(xcp_session_open_remote(&s, &o), XCP_EIO);
    p[0] = D.http;
    assert_error("CONNECTION_FAILED", 2, p);
    cr_assert_eq(xcp_error_last()->code, XCP_EIO);
    o.uri = D.https;
    cr_assert_eq(xcp_session_open_remote(&s, &o), XCP_EIO);
    cr_assert_str_eq(errname(), "CONNECTION_FAILED");
    snprintf(missing, sizeof(missing), "unix:%s/nothing-here", D.base);
    o.uri = missing;
    cr_assert_eq(xcp_session_open_remote(&s, &o), XCP_EIO);
    p[0] = missing;
    p[1] = "No such file or directory";
    assert_error("CONNECTION_FAILED", 2, p);
    o.uri = "ftp://127.0.0.1/";
    cr_assert_eq(xcp_session_open_remote(&s, &o), XCP_EAPI);
    cr_assert_str_eq(errname(), "INVALID_VALUE");
    o.uri = "http://127.0.0.1:99999999";
    cr_assert_lt(xcp_session_open_remote(&s, &o), 0);
}

/* A session whose server goes away reports a transport error, and close
 * still frees it. */
Test(remote, server_gone_mid_session)
{
    xcp_session *s = open_remote(D.http, XCP_REMOTE_XMLRPC, "root", ROOT_PW);
    xcp_host_set hosts = {0};

    OK(xcp_host_get_all(s, &hosts));
    xcp_host_set_dispose(&hosts);
    daemon_stop(&D);
    cr_assert_eq(xcp_host_get_all(s, &hosts), XCP_EIO);
    cr_assert_str_eq(errname(), "CONNECTION_FAILED");
    xcp_session_close(s);
}

/* ---- typed calls equal the embedded engine ---------------------------- */

static void records_match_local(xcp_remote_protocol proto, const char *uri)
{
    xcp_session *s = open_remote(uri, proto, "root", ROOT_PW);
    xcp_vm vm = install_started(s, "remote-vm");
    xcp_vm_record rr, lr;
    struct snapshot rs, ls;
    int n;
    char how[128];

    xcp_vm_record_init(&rr);
    OK(xcp_vm_get_record(s, &rr, vm));
    take_snapshot(s, &rs);
    xcp_session_close(s);
    daemon_stop(&D);

    s = open_local(D.state);
    xcp_vm_record_init(&lr);
    OK(xcp_vm_get_record(s, &lr, vm));
    take_snapshot(s, &ls);
    xcp_session_close(s);

    snprintf(how, sizeof(how), "%s over %s",
             proto == XCP_REMOTE_JSONRPC ? "JSON-RPC" : "XML-RPC", uri);
    n = compare_snapshots(&ls, &rs, how);
    cr_assert_geq(n, 15, "only %d records compared", n);
    free_snapshot(&rs);
    free_snapshot(&ls);

    /* The typed record: C fields of every kind. */
    cr_assert_str_eq(rr.uuid, lr.uuid);
    cr_assert_str_eq(rr.name_label, "remote-vm");
    cr_assert_str_eq(rr.name_label, lr.name_label);
    cr_assert_eq(rr.power_state, XCP_VM_POWER_STATE_RUNNING);
    cr_assert_eq(rr.power_state, lr.power_state);
    cr_assert_eq(rr.memory_static_max, lr.memory_static_max);
    cr_assert_gt(rr.memory_static_max, 0);
    cr_assert_eq(rr.VCPUs_max, lr.VCPUs_max);
    cr_assert_eq(rr.domid, lr.domid);
    cr_assert_eq(rr.is_a_template, false);
    cr_assert_eq(rr.HVM_shadow_multiplier, lr.HVM_shadow_multiplier);
    cr_assert_eq(rr.snapshot_time, lr.snapshot_time);
    cr_assert_str_eq(rr.resident_on.ref, lr.resident_on.ref);
    cr_assert_eq(rr.VBDs.n, lr.VBDs.n);
    cr_assert_geq(rr.VBDs.n, 1);
    for (size_t i = 0; i < rr.VBDs.n; i++)
        cr_assert_str_eq(rr.VBDs.items[i].ref, lr.VBDs.items[i].ref);
    cr_assert_eq(rr.allowed_operations.n, lr.allowed_operations.n);
    for (size_t i = 0; i < rr.allowed_operations.n; i++)
        cr_assert_eq(rr.allowed_operations.items[i],
                     lr.allowed_operations.items[i]);
    cr_assert_eq(rr.other_config.n, lr.other_config.n);
    for (size_t i = 0; i < rr.other_config.n; i++)
        cr_assert_str_eq(xcp_string_map_get(&lr.other_config,
                                            rr.other_config.items[i].key),
                         rr.other_config.items[i].value);
    xcp_vm_record_dispose(&rr);
    xcp_vm_record_dispose(&lr);
}

Test(remote, records_match_local_xmlrpc_http)
{
    records_match_local(XCP_REMOTE_XMLRPC, D.http);
}

Test(remote, records_match_local_jsonrpc_https)
{
    records_match_local(XCP_REMOTE_JSONRPC, D.https);
}

Test(remote, records_match_local_xmlrpc_unix)
{
    records_match_local(XCP_REMOTE_XMLRPC, D.unix_uri);
}

/* xcp_get_records_fields on s: the chosen fields of every record, as
 * get_all_records has them; a condition; bad names. */
static void check_records_fields(xcp_session *s, const char *how)
{
    static const char *const f[] = {"uuid", "name_label", "power_state",
                                    "VBDs", "uuid"};
    static const char *const bogus[] = {"bogus"};
    const char *const bad_field[] = {"fields", "bogus"};
    const char *const bad_class[] = {"class", "Nope"};
    xcp_value all, part;
    size_t i, j, nwhere = 0;

    OK(xcp_call(s, &all, "VM.get_all_records", 0, NULL));
    OK(xcp_get_records_fields(s, &part, "VM", NULL, 5, f));
    cr_assert_eq(part.kind, XCP_VAL_STRUCT, "%s", how);
    cr_assert_eq(part.u.st.n, all.u.st.n, "%s", how);
    cr_assert_geq(part.u.st.n, 2, "%s", how);
    for (i = 0; i < part.u.st.n; i++) {
        const xcp_value *p = &part.u.st.vals[i];
        const xcp_value *rec = xcp_value_struct_get(&all,
                                                    part.u.st.keys[i]);
        cr_assert_not_null(rec, "%s: %s", how, part.u.st.keys[i]);
        cr_assert_eq(p->kind, XCP_VAL_STRUCT, "%s", how);
        /* A name given twice comes once. */
        cr_assert_eq(p->u.st.n, 4, "%s: %zu fields", how, p->u.st.n);
        for (j = 0; j < 4; j++)
            cr_assert(val_eq(xcp_value_struct_get(p, f[j]),
                             xcp_value_struct_get(rec, f[j])),
                      "%s: %s of %s", how, f[j], part.u.st.keys[i]);
    }
    xcp_value_dispose(&part);
    OK(xcp_get_records_fields(s, &part, "VM",
                              "field \"is_a_template\" = \"false\"", 1,
                              f + 1));
    for (i = 0; i < all.u.st.n; i++) {
        const xcp_value *t = xcp_value_struct_get(&all.u.st.vals[i],
                                                  "is_a_template");
        nwhere += t->kind == XCP_VAL_BOOL && !t->u.b;
    }
    cr_assert_eq(part.u.st.n, nwhere, "%s", how);
    cr_assert_lt(nwhere, all.u.st.n, "%s", how);
    xcp_value_dispose(&part);
    cr_assert_lt(xcp_get_records_fields(s, &part, "VM", NULL, 1, bogus), 0);
    assert_error("INVALID_VALUE", 2, bad_field);
    cr_assert_lt(xcp_get_records_fields(s, &part, "Nope", NULL, 1, f), 0);
    assert_error("INVALID_VALUE", 2, bad_class);
    xcp_value_dispose(&all);
}

/* Listings (xe vm-list) get only the fields they read, remotely (one
 * get_all_records_where with a field list, over both encodings) as
 * locally, and the same values as whole records. */
Test(remote, records_fields)
{
    xcp_session *s = open_remote(D.http, XCP_REMOTE_XMLRPC, "root", ROOT_PW);

    install_started(s, "fields-vm");
    check_records_fields(s, "XML-RPC");
    xcp_session_close(s);
    s = open_remote(D.https, XCP_REMOTE_JSONRPC, "root", ROOT_PW);
    check_records_fields(s, "JSON-RPC");
    xcp_session_close(s);
    daemon_stop(&D);
    s = open_local(D.state);
    check_records_fields(s, "local");
    xcp_session_close(s);
}

/* Scalar getters of each type, compared with the record. */
Test(remote, typed_getters)
{
    for (int p = 0; p < 2; p++) {
        xcp_session *s = open_remote(D.http, (xcp_remote_protocol)p, "root",
                                     ROOT_PW);
        xcp_vm vm = install_started(s, p ? "json-vm" : "xml-vm");
        xcp_vm_record r;
        int64_t mem = 0;
        enum xcp_vm_power_state ps = XCP_VM_POWER_STATE__UNKNOWN;
        xcp_string_map oc = {0};
        char *label = NULL;
        double mult = 0;
        xcp_datetime t = -1;

        xcp_vm_record_init(&r);
        OK(xcp_vm_get_record(s, &r, vm));
        OK(xcp_vm_get_memory_static_max(s, &mem, vm));
        cr_assert_eq(mem, r.memory_static_max);
        OK(xcp_vm_get_power_state(s, &ps, vm));
        cr_assert_eq(ps, XCP_VM_POWER_STATE_RUNNING);
        OK(xcp_vm_set_name_label(s, vm, "renamed \xc3\xa9 <&>"));
        OK(xcp_vm_get_name_label(s, &label, vm));
        cr_assert_str_eq(label, "renamed \xc3\xa9 <&>");
        OK(xcp_vm_add_to_other_config(s, vm, "k", "v=1"));
        OK(xcp_vm_get_other_config(s, &oc, vm));
        cr_assert_str_eq(xcp_string_map_get(&oc, "k"), "v=1");
        OK(xcp_vm_get_HVM_shadow_multiplier(s, &mult, vm));
        cr_assert_eq(mult, r.HVM_shadow_multiplier);
        OK(xcp_vm_get_snapshot_time(s, &t, vm));
        cr_assert_eq(t, r.snapshot_time);
        xcp_free(label);
        xcp_string_map_dispose(&oc);
        xcp_vm_record_dispose(&r);
        xcp_session_close(s);
    }
}

/* ---- errors ---------------------------------------------------------- */

Test(remote, errors_with_params)
{
    for (int p = 0; p < 2; p++) {
        xcp_session *s = open_remote(p ? D.https : D.unix_uri,
                                     (xcp_remote_protocol)p, "root",
                                     ROOT_PW);
        xcp_vm bad, vm;
        xcp_vm_record r;
        xcp_value arg, res;
        const char *hp[] = {"VM", "OpaqueRef:no-such-vm"};

        snprintf(bad.ref, sizeof(bad.ref), "OpaqueRef:no-such-vm");
        xcp_vm_record_init(&r);
        cr_assert_eq(xcp_vm_get_record(s, &r, bad), XCP_EAPI);
        assert_error("HANDLE_INVALID", 2, hp);
        cr_assert_eq(xcp_error_last()->code, XCP_EAPI);

        vm = install_started(s, "err-vm");
        cr_assert_eq(xcp_vm_start(s, vm, false, false), XCP_EAPI);
        {
            const char *bp[] = {vm.ref, "halted", "running"};
            assert_error("VM_BAD_POWER_STATE", 3, bp);
        }
        /* The same through the generic entry, and an unknown message. */
        xcp_value_set_string(&arg, "OpaqueRef:no-such-vm");
        cr_assert_eq(xcp_call(s, &res, "VM.get_name_label", 1, &arg),
                     XCP_EAPI);
        assert_error("HANDLE_INVALID", 2, hp);
        cr_assert_lt(xcp_call(s, &res, "VM.no_such_message", 1, &arg), 0);
        cr_assert_str_eq(errname(), "MESSAGE_METHOD_UNKNOWN");
        xcp_value_dispose(&arg);
        xcp_session_close(s);
    }
}

/* A session the server no longer knows (logged out): SESSION_INVALID,
 * while other sessions go on; closing it still frees it quietly. */
Test(remote, session_invalid_after_logout)
{
    xcp_session *s = open_remote(D.http, XCP_REMOTE_XMLRPC, "root", ROOT_PW);
    xcp_session *s2 = open_remote(D.http, XCP_REMOTE_XMLRPC, "root",
                                  ROOT_PW);
    xcp_value res;
    xcp_host_set hosts = {0};
    const char *p[] = {NULL};

    p[0] = xcp_session_ref(s);
    OK(xcp_call(s, &res, "session.logout", 0, NULL));
    cr_assert_eq(xcp_host_get_all(s, &hosts), XCP_EAPI);
    assert_error("SESSION_INVALID", 1, p);
    OK(xcp_host_get_all(s2, &hosts));
    xcp_host_set_dispose(&hosts);
    xcp_session_close(s);
    xcp_session_close(s2);
}

/* ---- Async and tasks ------------------------------------------------- */

Test(remote, async_and_task_wait)
{
    for (int p = 0; p < 2; p++) {
        xcp_session *s = open_remote(p ? D.unix_uri : D.http,
                                     (xcp_remote_protocol)p, "root",
                                     ROOT_PW);
        xcp_vm tmpl = find_vm(s, "Debian Bookworm 12"), vm;
        xcp_task task;
        xcp_value res;
        char *label = NULL;

        OK(xcp_vm_clone_async(s, &task, tmpl, "async-clone"));
        cr_assert(strncmp(task.ref, "OpaqueRef:", 10) == 0);
        OK(xcp_task_wait(s, &res, task.ref));
        cr_assert_eq(res.kind, XCP_VAL_STRING);
        snprintf(vm.ref, sizeof(vm.ref), "%s", res.u.s);
        xcp_value_dispose(&res);
        OK(xcp_vm_get_name_label(s, &label, vm));
        cr_assert_str_eq(label, "async-clone");
        xcp_free(label);

        /* A failing task: its error, with parameters, comes back. */
        OK(xcp_vm_provision(s, vm));
        OK(xcp_vm_start(s, vm, false, false));
        OK(xcp_vm_start_async(s, &task, vm, false, false));
        cr_assert_eq(xcp_task_wait(s, &res, task.ref), XCP_EAPI);
        {
            const char *bp[] = {vm.ref, "halted", "running"};
            assert_error("VM_BAD_POWER_STATE", 3, bp);
        }
        /* A void task and the generic Async entry. */
        {
            xcp_value args[2];
            xcp_value_set_string(&args[0], vm.ref);
            OK(xcp_call(s, &res, "Async.VM.hard_shutdown", 1, args));
            cr_assert_eq(res.kind, XCP_VAL_STRING);
            snprintf(task.ref, sizeof(task.ref), "%s", res.u.s);
            xcp_value_dispose(&res);
            OK(xcp_task_wait(s, &res, task.ref));
            cr_assert_eq(res.kind, XCP_VAL_NONE);
            xcp_value_dispose(&args[0]);
        }
        xcp_session_close(s);
    }
}

/* ---- long polls ------------------------------------------------------ */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct renamer {
    const char *uri;
    xcp_vm vm;
};

static void *rename_later(void *arg)
{
    struct renamer *r = arg;
    xcp_remote_options o;
    xcp_session *s = NULL;

    usleep(500000);
    memset(&o, 0, sizeof(o));
    o.version = XCP_REMOTE_OPTIONS_VERSION;
    o.uri = r->uri;
    o.user = "root";
    o.password = ROOT_PW;
    if (xcp_session_open_remote(&s, &o) == 0) {
        xcp_vm_set_name_label(s, r->vm, "woken");
        xcp_session_close(s);
    }
    return NULL;
}

Test(remote, event_from_long_poll)
{
    xcp_remote_options o;
    xcp_session *s = NULL;
    xcp_value args[3], ev;
    const xcp_value *tok, *evs;
    double t0;
    pthread_t th;
    struct renamer rn;
    bool seen = false;

    memset(&o, 0, sizeof(o));
    o.version = XCP_REMOTE_OPTIONS_VERSION;
    o.uri = D.http;
    o.user = "root";
    o.password = ROOT_PW;
    o.timeout_ms = 300; /* shorter than the poll: must not cut it */
    OK(xcp_session_open_remote(&s, &o));
    rn.uri = D.http;
    rn.vm = find_vm(s, "Debian Bookworm 12");

    xcp_value_set_array(&args[0], 1);
    xcp_value_set_string(&args[0].u.arr.items[0], "vm");
    xcp_value_set_string(&args[1], "");
    xcp_value_set_float(&args[2], 0);
    OK(xcp_call(s, &ev, "event.from", 3, args));
    tok = xcp_value_struct_get(&ev, "token");
    cr_assert_not_null(tok);
    evs = xcp_value_struct_get(&ev, "events");
    cr_assert_not_null(evs);
    cr_assert_geq(evs->u.arr.n, 1);
    /* Snapshots are records of their class, as locally. */
    {
        const xcp_value *snap =
            xcp_value_struct_get(&evs->u.arr.items[0], "snapshot");
        cr_assert_not_null(snap);
        cr_assert_eq(snap->kind, XCP_VAL_RECORD);
        cr_assert_eq(snap->u.rec.cls, xcp_class_by_name("VM"));
    }
    xcp_value_dispose(&args[1]);
    xcp_value_copy(&args[1], tok);
    xcp_value_dispose(&ev);

    /* Nothing happens: the call waits its timeout, then answers. */
    xcp_value_set_float(&args[2], 1.5);
    t0 = now_s();
    OK(xcp_call(s, &ev, "event.from", 3, args));
    cr_assert_geq(now_s() - t0, 1.2);
    cr_assert_eq(xcp_value_struct_get(&ev, "events")->u.arr.n, 0);
    xcp_value_dispose(&ev);

    /* A change wakes it before the timeout. */
    xcp_value_set_float(&args[2], 20.0);
    pthread_create(&th, NULL, rename_later, &rn);
    t0 = now_s();
    OK(xcp_call(s, &ev, "event.from", 3, args));
    pthread_join(th, NULL);
    cr_assert_lt(now_s() - t0, 15.0);
    evs = xcp_value_struct_get(&ev, "events");
    for (size_t i = 0; i < evs->u.arr.n; i++) {
        const xcp_value *snap =
            xcp_value_struct_get(&evs->u.arr.items[i], "snapshot");
        const xcp_value *nl = snap ? xcp_value_struct_get(snap, "name_label")
                                   : NULL;
        if (nl && nl->kind == XCP_VAL_STRING && !strcmp(nl->u.s, "woken"))
            seen = true;
    }
    cr_assert(seen, "the rename was not in the events");
    xcp_value_dispose(&ev);
    for (int i = 0; i < 3; i++)
        xcp_value_dispose(&args[i]);
    xcp_session_close(s);
}

/* ---- main: skip when the daemon is not built ---------------------------- */

int main(int argc, char *argv[])
{
    struct criterion_test_set *tests;
    int result = 0;

    if (!daemon_binary()) {
        fprintf(stderr, "test_remote: cmd/xcpd/xcpd not built: skipped\n");
        return 77;
    }
    tests = criterion_initialize();
    if (criterion_handle_args(argc, argv, true))
        result = !criterion_run_all_tests(tests);
    criterion_finalize(tests);
    return result;
}

/* Reads fd until want shows up (or EOF, or 20 s); true when it did. */
static bool console_reads(int fd, const char *want)
{
    char buf[8192];
    size_t len = 0;
    ssize_t n;
    struct timespec ts = {0, 10 * 1000 * 1000};
    int tries = 0;

    buf[0] = '\0';
    while (!strstr(buf, want) && len + 1 < sizeof(buf) && tries++ < 2000) {
        n = recv(fd, buf + len, sizeof(buf) - 1 - len, MSG_DONTWAIT);
        if (n == 0)
            break;
        if (n < 0) {
            nanosleep(&ts, NULL);
            continue;
        }
        len += (size_t)n;
        buf[len] = '\0';
    }
    return strstr(buf, want) != NULL;
}

Test(remote, console_open_every_transport)
{
    const char *uris[] = {D.http, D.https, D.unix_uri};
    xcp_session *s = open_remote(D.http, XCP_REMOTE_XMLRPC, "root", ROOT_PW);
    xcp_vm vm = install_started(s, "con1");
    xcp_console_set cs = {0};
    xcp_console con = {{0}}, bad;
    enum xcp_console_protocol p;
    int fd;

    OK(xcp_vm_get_consoles(s, &cs, vm));
    for (size_t i = 0; i < cs.n; i++) {
        OK(xcp_console_get_protocol(s, &p, cs.items[i]));
        if (p == XCP_CONSOLE_PROTOCOL_VT100)
            con = cs.items[i];
    }
    xcp_console_set_dispose(&cs);
    xcp_session_close(s);
    for (size_t u = 0; u < 3; u++) {
        s = open_remote(uris[u], XCP_REMOTE_XMLRPC, "root", ROOT_PW);
        fd = -1;
        OK(xcp_console_open(s, &fd, con));
        cr_assert(console_reads(fd, "login: "), "%s", uris[u]);
        cr_assert_eq(send(fd, "x\r", 2, MSG_NOSIGNAL), 2);
        cr_assert(console_reads(fd, "x\r\n"), "no echo over %s", uris[u]);
        close(fd);
        /* the server's refusal, with its parameters */
        snprintf(bad.ref, sizeof(bad.ref), "OpaqueRef:nonesuch");
        cr_assert_lt(xcp_console_open(s, &fd, bad), 0);
        assert_error("HANDLE_INVALID", 2,
                     (const char *const[]){"console", "OpaqueRef:nonesuch"});
        cr_assert_eq(fd, -1);
        xcp_session_close(s);
    }
}
