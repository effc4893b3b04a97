/*
 * tests/client/test_coerce.c - the remote driver's reply coercion, in
 * process: what the engine answers, sent through the server's encoders and
 * the client's decoders (XML-RPC and JSON-RPC), must come back from
 * xcp__remote_coerce_result() equal to what the engine gave, for the
 * records of every class; and replies shaped the way XAPI writes them
 * (ints as strings, datetimes as strings, enums in another case, fields
 * missing or unknown) get the local shape. No server: these run always.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"
#include "rpc/rpc.h"
#include "client/client.h"

static xcp_session *S;
static char dir[256];

static void setup(void)
{
    xcp_open_options o;
    const char *tmp = getenv("TMPDIR");

    if (!getenv("XCP_HV"))
        setenv("XCP_HV", "sim", 1);
    snprintf(dir, sizeof(dir), "%s/xcp-coerce.XXXXXX", tmp ? tmp : "/tmp");
    cr_assert_not_null(mkdtemp(dir));
    memset(&o, 0, sizeof(o));
    o.version = XCP_OPEN_OPTIONS_VERSION;
    o.state_dir = dir;
    cr_assert_eq(xcp_session_open_local(&S, &o), 0, "open: %s",
                 xcp_error_last() ? xcp_error_last()->name : "?");
}

static void teardown(void)
{
    char cmd[300];

    xcp_session_close(S);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(coerce, .init = setup, .fini = teardown);

static const char *errname(void)
{
    const xcp_error *e = xcp_error_last();
    return e ? e->name : "(no error)";
}

static xcp_value call1(const char *method, const char *arg)
{
    xcp_value a, r;

    xcp_value_set_string(&a, arg);
    cr_assert_eq(xcp_call(S, &r, method, arg ? 1 : 0, &a), 0, "%s: %s",
                 method, errname());
    xcp_value_dispose(&a);
    return r;
}

/* A running VM with disks, a halted clone and a finished task: records
 * with refs, sets, maps, datetimes, floats and enums filled in. */
static void populate(void)
{
    xcp_value t, tmpl, vm, args[2], r;

    t = call1("VM.get_by_name_label", "Debian Bookworm 12");
    cr_assert_eq(t.kind, XCP_VAL_ARRAY);
    cr_assert_geq(t.u.arr.n, 1);
    xcp_value_copy(&tmpl, &t.u.arr.items[0]);
    xcp_value_dispose(&t);
    xcp_value_copy(&args[0], &tmpl);
    xcp_value_set_string(&args[1], "coerced");
    cr_assert_eq(xcp_call(S, &vm, "VM.clone", 2, args), 0, "%s", errname());
    xcp_value_dispose(&args[0]);
    xcp_value_dispose(&args[1]);
    r = call1("VM.provision", vm.u.s);
    xcp_value_dispose(&r);
    {
        xcp_value sa[3];
        xcp_value_copy(&sa[0], &vm);
        xcp_value_set_bool(&sa[1], false);
        xcp_value_set_bool(&sa[2], false);
        cr_assert_eq(xcp_call(S, &r, "VM.start", 3, sa), 0, "%s",
                     errname());
        xcp_value_dispose(&sa[0]);
    }
    /* An Async call leaves a task record behind (not destroyed). */
    xcp_value_copy(&args[0], &vm);
    xcp_value_set_string(&args[1], "clone2");
    cr_assert_eq(xcp_call(S, &r, "Async.VM.clone", 2, args), 0, "%s",
                 errname());
    xcp_value_dispose(&args[0]);
    xcp_value_dispose(&args[1]);
    for (int i = 0; i < 500; i++) {
        xcp_value st = call1("task.get_status", r.u.s);
        bool done = strcmp(st.u.s, "pending") != 0;
        xcp_value_dispose(&st);
        if (done)
            break;
        usleep(10000);
    }
    xcp_value_dispose(&r);
    xcp_value_dispose(&vm);
    xcp_value_dispose(&tmpl);
}

/* The wire trip: encode as the server does, decode as the client does.
 * quirks: as the server passes them (XCP__RPC_I4_REFCOUNTS for
 * event.from). */
static int wire_q(bool json, const xcp_value *v, xcp_value *out,
                  unsigned quirks)
{
    xcp__buf b = {0};
    xcp_value err;
    char why[200] = "";
    int rc;

    if (json)
        rc = xcp__jsonrpc_encode_success(&b, 2, NULL, v, 0);
    else
        rc = xcp__xmlrpc_encode_success(&b, v, quirks);
    cr_assert_eq(rc, 0);
    if (json)
        rc = xcp__jsonrpc_decode_response(b.data, b.len, out, &err, NULL,
                                          why, sizeof(why));
    else
        rc = xcp__xmlrpc_decode_response(b.data, b.len, out, &err, why,
                                         sizeof(why));
    cr_assert_eq(rc, 0, "decode: %s", why);
    xcp__buf_free(&b);
    return 0;
}

static int wire(bool json, const xcp_value *v, xcp_value *out)
{
    return wire_q(json, v, out, 0);
}

/* Name the first field of two records that differs (for the message). */
static const char *first_diff(const xcp_value *a, const xcp_value *b)
{
    size_t i;

    if (a->kind != XCP_VAL_RECORD || b->kind != XCP_VAL_RECORD ||
        a->u.rec.cls != b->u.rec.cls)
        return "(not records of one class)";
    for (i = 0; i < xcp__classes[a->u.rec.cls].nfields; i++)
        if (!xcp__value_equal(&a->u.rec.fields[i], &b->u.rec.fields[i]))
            return xcp__classes[a->u.rec.cls].fields[i].name;
    return "(none)";
}

static void roundtrip_all(bool json)
{
    int c, nrec = 0, nclasses = 0;

    populate();
    for (c = 0; c < xcp__nclasses; c++) {
        char wirename[96];
        int mid;
        xcp_value orig, back;
        size_t i;

        snprintf(wirename, sizeof(wirename), "%s.get_all_records",
                 xcp__classes[c].name);
        if ((mid = xcp__message_lookup(wirename)) < 0)
            continue;
        if (xcp_call(S, &orig, wirename, 0, NULL) < 0)
            continue; /* classes the engine does not serve */
        cr_assert_eq(orig.kind, XCP_VAL_STRUCT);
        wire(json, &orig, &back);
        cr_assert_eq(xcp__remote_coerce_result(mid, &back), 0, "%s: %s",
                     wirename, errname());
        cr_assert_eq(back.kind, XCP_VAL_STRUCT);
        cr_assert_eq(back.u.st.n, orig.u.st.n);
        for (i = 0; i < orig.u.st.n; i++) {
            const xcp_value *o = &orig.u.st.vals[i];
            const xcp_value *r =
                xcp_value_struct_get(&back, orig.u.st.keys[i]);
            cr_assert_not_null(r, "%s: %s missing", wirename,
                               orig.u.st.keys[i]);
            cr_assert(xcp__value_equal(o, r), "%s %s: field %s differs",
                      json ? "JSON" : "XML", xcp__classes[c].name,
                      first_diff(o, r));
            nrec++;
        }
        nclasses++;
        xcp_value_dispose(&orig);
        xcp_value_dispose(&back);
    }
    /* host, pool, VMs, VDIs, SR, PBD, VBDs, VIFs, networks, task... */
    cr_assert_geq(nclasses, 10, "only %d classes", nclasses);
    cr_assert_geq(nrec, 20, "only %d records", nrec);
}

Test(coerce, every_record_through_xmlrpc) { roundtrip_all(false); }
Test(coerce, every_record_through_jsonrpc) { roundtrip_all(true); }

/* Scalar results of getters come back with their declared types. */
Test(coerce, getter_results_both_codecs)
{
    static const char *const getters[] = {
        "VM.get_memory_static_max", "VM.get_power_state",
        "VM.get_is_a_template", "VM.get_HVM_shadow_multiplier",
        "VM.get_other_config", "VM.get_allowed_operations",
        "VM.get_VBDs", "VM.get_resident_on", "VM.get_name_label"};
    xcp_value vms = call1("VM.get_all", NULL);

    cr_assert_geq(vms.u.arr.n, 1);
    for (int json = 0; json < 2; json++)
        for (size_t i = 0; i < XCP__ARRAY_LEN(getters); i++) {
            int mid = xcp__message_lookup(getters[i]);
            xcp_value orig = call1(getters[i], vms.u.arr.items[0].u.s);
            xcp_value back;
            wire(json, &orig, &back);
            cr_assert_eq(xcp__remote_coerce_result(mid, &back), 0);
            cr_assert(xcp__value_equal(&orig, &back), "%s (%s)",
                      getters[i], json ? "JSON" : "XML");
            xcp_value_dispose(&orig);
            xcp_value_dispose(&back);
        }
    xcp_value_dispose(&vms);
}

/* Helpers to build replies by hand. */
static void put_s(xcp_value *st, const char *k, const char *s)
{
    xcp_value v;
    xcp_value_set_string(&v, s);
    xcp_value_struct_add(st, k, &v);
}

static const xcp_value *field(const xcp_value *rec, const char *name)
{
    int i = xcp_class_field_index(rec->u.rec.cls, name);
    cr_assert_geq(i, 0, "no field %s", name);
    return &rec->u.rec.fields[i];
}

/* A VM record as XAPI's XML-RPC sends it: everything a string but bools,
 * floats and dateTimes; plus a field from the future, and most fields
 * absent (an older server). */
Test(coerce, xapi_shaped_vm_record)
{
    int mid = xcp__message_lookup("VM.get_record");
    xcp_value st, v, ops;
    const xcp_value *f;

    xcp_value_set_struct(&st);
    put_s(&st, "uuid", "5f0d3c8e-1111-2222-3333-444455556666");
    put_s(&st, "power_state", "RUNNING");        /* other case */
    put_s(&st, "memory_static_max", "4294967296"); /* int as text */
    put_s(&st, "VCPUs_max", "");                  /* empty: zero */
    put_s(&st, "snapshot_time", "2024-06-11T08:05:59Z"); /* JSON style */
    put_s(&st, "domain_type", "pv_in_quantum");   /* enum from the future */
    put_s(&st, "not_a_field_yet", "x");           /* dropped */
    put_s(&st, "is_a_template", "1");             /* bool as 1/0 */
    xcp_value_set_float(&v, 2.5);
    xcp_value_struct_add(&st, "HVM_shadow_multiplier", &v);
    xcp_value_set_int(&v, 7); /* JSON number where a string is wanted */
    xcp_value_struct_add(&st, "name_label", &v);
    xcp_value_set_array(&ops, 2);
    xcp_value_set_string(&ops.u.arr.items[0], "START");
    xcp_value_set_string(&ops.u.arr.items[1], "teleport");
    xcp_value_struct_add(&st, "allowed_operations", &ops);
    xcp_value_set_struct(&v);
    put_s(&v, "START", "because"); /* enum key in another case */
    xcp_value_struct_add(&st, "blocked_operations", &v);

    cr_assert_eq(xcp__remote_coerce_result(mid, &st), 0, "%s", errname());
    cr_assert_eq(st.kind, XCP_VAL_RECORD);
    cr_assert_eq(st.u.rec.cls, XCP__C_VM);
    cr_assert_str_eq(field(&st, "power_state")->u.s, "Running");
    f = field(&st, "memory_static_max");
    cr_assert_eq(f->kind, XCP_VAL_INT);
    cr_assert_eq(f->u.i, 4294967296LL);
    f = field(&st, "VCPUs_max");
    cr_assert_eq(f->kind, XCP_VAL_INT);
    cr_assert_eq(f->u.i, 0);
    f = field(&st, "snapshot_time");
    cr_assert_eq(f->kind, XCP_VAL_DATETIME);
    cr_assert_eq(f->u.t, 1718093159);
    cr_assert_str_eq(field(&st, "domain_type")->u.s, "pv_in_quantum");
    f = field(&st, "HVM_shadow_multiplier");
    cr_assert_eq(f->kind, XCP_VAL_FLOAT);
    cr_assert_float_eq(f->u.f, 2.5, 1e-12);
    cr_assert_str_eq(field(&st, "name_label")->u.s, "7");
    f = field(&st, "is_a_template");
    cr_assert_eq(f->kind, XCP_VAL_BOOL);
    cr_assert(f->u.b);
    f = field(&st, "allowed_operations");
    cr_assert_eq(f->u.arr.n, 2);
    cr_assert_str_eq(f->u.arr.items[0].u.s, "start");
    cr_assert_str_eq(f->u.arr.items[1].u.s, "teleport");
    cr_assert_str_eq(field(&st, "blocked_operations")->u.st.keys[0],
                     "start");
    /* Absent fields: the model's defaults, never NONE. */
    for (size_t i = 0; i < xcp__classes[XCP__C_VM].nfields; i++) {
        const struct xcp__field *fd = &xcp__classes[XCP__C_VM].fields[i];
        if (fd->type->kind != XT_ANY)
            cr_assert_neq(st.u.rec.fields[i].kind, XCP_VAL_NONE,
                          "field %s left empty", fd->name);
    }
    f = field(&st, "resident_on");
    cr_assert_str_eq(f->u.s, "OpaqueRef:NULL");
    f = field(&st, "other_config");
    cr_assert_eq(f->kind, XCP_VAL_STRUCT);
    xcp_value_dispose(&st);
}

/* A null member (JSON) is as if absent: the field's default from the
 * model, not the type's zero; of two members with one name, the first. */
Test(coerce, null_member_takes_the_field_default_first_member_counts)
{
    struct xcp__type rt = {XT_RECORD, XC_RECORD, XCP__C_VM, NULL, NULL,
                           "record", 0};
    xcp_value st, none;
    const xcp_value *f;

    xcp_value_set_struct(&st);
    none.kind = XCP_VAL_NONE;
    xcp_value_struct_add(&st, "HVM_shadow_multiplier", &none);
    none.kind = XCP_VAL_NONE;
    xcp_value_struct_add(&st, "user_version", &none);
    put_s(&st, "name_label", "first");
    put_s(&st, "name_label", "second");
    cr_assert_eq(xcp__remote_coerce(&rt, &st), 0, "%s", errname());
    f = field(&st, "HVM_shadow_multiplier");
    cr_assert_eq(f->kind, XCP_VAL_FLOAT);
    cr_assert_float_eq(f->u.f, 1.0, 1e-12);
    f = field(&st, "user_version");
    cr_assert_eq(f->kind, XCP_VAL_INT);
    cr_assert_eq(f->u.i, 1);
    cr_assert_str_eq(field(&st, "name_label")->u.s, "first");
    xcp_value_dispose(&st);
}

/* JSON has one number type: an int stands for a float. */
Test(coerce, int_for_a_float_is_that_float)
{
    xcp_value v;

    xcp_value_set_int(&v, 3);
    cr_assert_eq(xcp__remote_coerce(&xcp__T_float, &v), 0, "%s", errname());
    cr_assert_eq(v.kind, XCP_VAL_FLOAT);
    cr_assert_float_eq(v.u.f, 3.0, 1e-12);
    xcp_value_set_bool(&v, true);
    cr_assert_lt(xcp__remote_coerce(&xcp__T_float, &v), 0);
    cr_assert_str_eq(errname(), "INTERNAL_ERROR");
}

/* Map values typed int arrive as text in XML-RPC. */
Test(coerce, map_of_ints_from_text)
{
    xcp_value st, m;
    const xcp_value *f;
    struct xcp__type rt = {XT_RECORD, XC_RECORD, XCP__C_VM_metrics, NULL,
                           NULL, "record", 0};

    xcp_value_set_struct(&st);
    xcp_value_set_struct(&m);
    put_s(&m, "0", "3");
    put_s(&m, "1", "-1");
    xcp_value_struct_add(&st, "VCPUs_CPU", &m);
    put_s(&st, "memory_actual", "1073741824");
    put_s(&st, "start_time", "20240611T08:05:59Z");
    cr_assert_eq(xcp__remote_coerce(&rt, &st), 0, "%s", errname());
    f = field(&st, "VCPUs_CPU");
    cr_assert_eq(f->u.st.n, 2);
    cr_assert_eq(f->u.st.vals[0].kind, XCP_VAL_INT);
    cr_assert_eq(f->u.st.vals[1].u.i, -1);
    cr_assert_eq(field(&st, "memory_actual")->u.i, 1073741824LL);
    cr_assert_eq(field(&st, "start_time")->kind, XCP_VAL_DATETIME);
    xcp_value_dispose(&st);
}

/* event.from: snapshots become records of the event's class, ids text. */
Test(coerce, event_from_snapshots)
{
    int mid = xcp__message_lookup("event.from");
    xcp_value res, evs, ev, snap, v;
    const xcp_value *e;

    xcp_value_set_struct(&snap);
    put_s(&snap, "name_label", "x");
    put_s(&snap, "memory_target", "42");
    xcp_value_set_struct(&ev);
    xcp_value_set_int(&v, 17);
    xcp_value_struct_add(&ev, "id", &v);
    put_s(&ev, "class", "vm");
    put_s(&ev, "operation", "mod");
    put_s(&ev, "ref", "OpaqueRef:abc");
    xcp_value_struct_add(&ev, "snapshot", &snap);
    xcp_value_set_array(&evs, 1);
    evs.u.arr.items[0] = ev;
    xcp_value_set_struct(&res);
    xcp_value_struct_add(&res, "events", &evs);
    put_s(&res, "token", "18");

    cr_assert_eq(xcp__remote_coerce_result(mid, &res), 0, "%s", errname());
    e = &xcp_value_struct_get(&res, "events")->u.arr.items[0];
    cr_assert_str_eq(xcp_value_struct_get(e, "id")->u.s, "17");
    e = xcp_value_struct_get(e, "snapshot");
    cr_assert_eq(e->kind, XCP_VAL_RECORD);
    cr_assert_eq(e->u.rec.cls, XCP__C_VM);
    cr_assert_eq(field(e, "memory_target")->u.i, 42);
    xcp_value_dispose(&res);
}

/* A local event.from, sent over the wire, comes back as it was. */
Test(coerce, event_from_roundtrip)
{
    int mid = xcp__message_lookup("event.from");
    xcp_value args[3], orig, back;

    populate();
    xcp_value_set_array(&args[0], 1);
    xcp_value_set_string(&args[0].u.arr.items[0], "*");
    xcp_value_set_string(&args[1], "");
    xcp_value_set_float(&args[2], 0);
    cr_assert_eq(xcp_call(S, &orig, "event.from", 3, args), 0, "%s",
                 errname());
    /* Both as the server sends it (<i4> counts) and with plain XML-RPC
     * strings for the counts. */
    for (int mode = 0; mode < 3; mode++) {
        wire_q(mode == 2, &orig, &back, mode == 0 ? XCP__RPC_I4_REFCOUNTS
                                                  : 0);
        cr_assert_eq(xcp__remote_coerce_result(mid, &back), 0);
        if (!xcp__value_equal(&orig, &back)) {
            char *a = xcp_value_to_text(&orig), *b = xcp_value_to_text(&back);
            cr_assert_fail("mode %d:\n%s\n%s", mode, a, b);
        }
        xcp_value_dispose(&back);
    }
    xcp_value_dispose(&orig);
    for (int i = 0; i < 3; i++)
        xcp_value_dispose(&args[i]);
}

Test(coerce, bad_values_fail)
{
    xcp_value v;
    int mid = xcp__message_lookup("VM.get_memory_static_max");

    xcp_value_set_string(&v, "lots");
    cr_assert_lt(xcp__remote_coerce_result(mid, &v), 0);
    cr_assert_str_eq(errname(), "INTERNAL_ERROR");
    xcp_value_dispose(&v);
    mid = xcp__message_lookup("VM.get_all");
    xcp_value_set_string(&v, "not a set");
    cr_assert_lt(xcp__remote_coerce_result(mid, &v), 0);
    xcp_value_dispose(&v);
    mid = xcp__message_lookup("VM.get_snapshot_time");
    xcp_value_set_string(&v, "yesterday");
    cr_assert_lt(xcp__remote_coerce_result(mid, &v), 0);
    xcp_value_dispose(&v);
}

Test(coerce, void_is_none)
{
    xcp_value v;
    int mid = xcp__message_lookup("VM.set_name_label");

    xcp_value_set_string(&v, "");
    cr_assert_eq(xcp__remote_coerce_result(mid, &v), 0);
    cr_assert_eq(v.kind, XCP_VAL_NONE);
}
