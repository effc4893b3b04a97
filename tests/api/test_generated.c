/*
 * tests/api/test_generated.c - the generated ("implicit") messages of
 * xenapi-wire.md §7 and the dynamic call path: get_record/get_by_uuid on
 * every class with bad refs (HANDLE_INVALID, UUID_INVALID), get_all,
 * get_all_records, get_by_name_label, field getters and setters, map and
 * set editors (MAP_DUPLICATE_KEY), get_all_records_where and its
 * expression language (INVALID_VALUE), and xcp_call's dispatch errors
 * (MESSAGE_PARAMETER_COUNT_MISMATCH, MESSAGE_METHOD_UNKNOWN, Fault).
 */
#include "helpers.h"

#include <stdarg.h>

TestSuite(bad_refs, .init = api_setup, .fini = api_teardown);
TestSuite(generated, .init = api_setup, .fini = api_teardown);
TestSuite(where, .init = api_setup, .fini = api_teardown);
TestSuite(dispatch, .init = api_setup, .fini = api_teardown);

#define BOGUS "OpaqueRef:00000000-dead-beef-0000-000000000000"
#define NO_UUID "00000000-dead-beef-0000-000000000000"

/* xcp_call with string arguments. */
static int call_s(xcp_value *res, const char *method, size_t n, ...)
{
    xcp_value args[8];
    va_list ap;
    size_t i;
    int rc;

    cr_assert_leq(n, 8);
    memset(args, 0, sizeof(args));
    va_start(ap, n);
    for (i = 0; i < n; i++)
        xcp_value_set_string(&args[i], va_arg(ap, const char *));
    va_end(ap);
    rc = xcp_call(S, res, method, n, args);
    for (i = 0; i < n; i++)
        xcp_value_dispose(&args[i]);
    return rc;
}

static char *vm_uuid(xcp_vm vm)
{
    char *u = NULL;

    OK(xcp_vm_get_uuid(S, &u, vm));
    return u;
}

/* ---- bad refs ----------------------------------------------------------- */

Test(bad_refs, every_class_get_record_with_bogus_ref_fails_handle_invalid)
{
    int cls, n = 0;

    for (cls = 0; cls < xcp_class_count(); cls++) {
        const char *name = xcp_class_name(cls);
        char method[96];
        xcp_value res = {0};
        snprintf(method, sizeof(method), "%s.get_record", name);
        if (!xcp_model_message_by_name(method))
            continue;
        cr_log_info("%s", method);
        assert_error(call_s(&res, method, 1, BOGUS), "HANDLE_INVALID", name,
                     BOGUS);
        n++;
    }
    cr_assert_geq(n, 20, "only %d classes have get_record", n);
}

Test(bad_refs, every_class_get_record_with_null_ref_fails_handle_invalid)
{
    int cls;

    for (cls = 0; cls < xcp_class_count(); cls++) {
        const char *name = xcp_class_name(cls);
        char method[96];
        xcp_value res = {0};
        snprintf(method, sizeof(method), "%s.get_record", name);
        if (!xcp_model_message_by_name(method))
            continue;
        assert_error(call_s(&res, method, 1, XCP_NULL_REF), "HANDLE_INVALID",
                     name, XCP_NULL_REF);
    }
}

Test(bad_refs, every_class_get_by_uuid_unknown_fails_uuid_invalid)
{
    int cls;

    for (cls = 0; cls < xcp_class_count(); cls++) {
        const char *name = xcp_class_name(cls);
        char method[96];
        xcp_value res = {0};
        snprintf(method, sizeof(method), "%s.get_by_uuid", name);
        if (!xcp_model_message_by_name(method))
            continue;
        assert_error(call_s(&res, method, 1, NO_UUID), "UUID_INVALID", name,
                     NO_UUID);
    }
}

Test(bad_refs, typed_get_record_with_bogus_ref_fails)
{
    xcp_vm vm;
    xcp_vm_record r;
    xcp_vdi vdi;
    xcp_vdi_record vr;
    xcp_sr sr;
    xcp_sr_record sr_r;

    SET_REF(vm, BOGUS);
    SET_REF(vdi, BOGUS);
    SET_REF(sr, BOGUS);
    xcp_vm_record_init(&r);
    xcp_vdi_record_init(&vr);
    xcp_sr_record_init(&sr_r);
    assert_error(xcp_vm_get_record(S, &r, vm), "HANDLE_INVALID", "VM", BOGUS);
    assert_error(xcp_vdi_get_record(S, &vr, vdi), "HANDLE_INVALID", "VDI",
                 BOGUS);
    assert_error(xcp_sr_get_record(S, &sr_r, sr), "HANDLE_INVALID", "SR",
                 BOGUS);
}

Test(bad_refs, typed_get_by_uuid_unknown_fails)
{
    xcp_vm vm;
    xcp_network net;

    assert_error(xcp_vm_get_by_uuid(S, &vm, NO_UUID), "UUID_INVALID", "VM",
                 NO_UUID);
    assert_error(xcp_network_get_by_uuid(S, &net, NO_UUID), "UUID_INVALID",
                 "network", NO_UUID);
}

Test(bad_refs, vm_ref_where_vdi_wanted_fails_handle_invalid)
{
    xcp_vm vm = api_install("vm");
    xcp_value res = {0};

    assert_error(call_s(&res, "VDI.get_record", 1, vm.ref), "HANDLE_INVALID",
                 "VDI", vm.ref);
    assert_error(call_s(&res, "VDI.get_virtual_size", 1, vm.ref),
                 "HANDLE_INVALID", "VDI", vm.ref);
    assert_error(call_s(&res, "VDI.destroy", 1, vm.ref), "HANDLE_INVALID",
                 "VDI", vm.ref);
    /* The VM is untouched. */
    cr_assert_eq(api_power(vm), XCP_VM_POWER_STATE_HALTED);
}

Test(bad_refs, getter_and_setter_with_bogus_ref_fail)
{
    xcp_vm vm;
    char *name = NULL;

    SET_REF(vm, BOGUS);
    assert_error(xcp_vm_get_name_label(S, &name, vm), "HANDLE_INVALID", "VM",
                 BOGUS);
    assert_error(xcp_vm_set_name_label(S, vm, "x"), "HANDLE_INVALID", "VM",
                 BOGUS);
    assert_error(xcp_vm_add_to_other_config(S, vm, "k", "v"),
                 "HANDLE_INVALID", "VM", BOGUS);
    assert_error(xcp_vm_start(S, vm, false, false), "HANDLE_INVALID", "VM",
                 BOGUS);
}

Test(bad_refs, destroyed_object_ref_fails_handle_invalid)
{
    xcp_vm vm = api_install("vm");
    char *name = NULL;

    OK(xcp_vm_destroy(S, vm));
    assert_error(xcp_vm_get_name_label(S, &name, vm), "HANDLE_INVALID", "VM",
                 vm.ref);
    assert_error(xcp_vm_destroy(S, vm), "HANDLE_INVALID", "VM", vm.ref);
}

Test(bad_refs, garbage_ref_string_fails_handle_invalid)
{
    xcp_value res = {0};

    assert_error(call_s(&res, "VM.get_record", 1, "not a ref"),
                 "HANDLE_INVALID", "VM", "not a ref");
    assert_error(call_s(&res, "VM.get_record", 1, ""), "HANDLE_INVALID",
                 "VM", "");
}

/* ---- getters, setters, sets, maps --------------------------------------- */

Test(generated, get_all_and_get_all_records_agree)
{
    xcp_vm_set all = {0};
    xcp_vm_record_map recs = {0};
    size_t i;

    api_install("vm");
    OK(xcp_vm_get_all(S, &all));
    OK(xcp_vm_get_all_records(S, &recs));
    cr_assert_eq(all.n, recs.n);
    /* 5 templates + dom0 + the new VM (dom0 may be absent in a sim). */
    cr_assert_geq(all.n, 6);
    for (i = 0; i < recs.n; i++)
        cr_assert(api_vm_set_has(&all, recs.refs[i]), "%s not in get_all",
                  recs.refs[i].ref);
    xcp_vm_set_dispose(&all);
    xcp_vm_record_map_dispose(&recs);
}

Test(generated, get_all_records_records_match_get_record)
{
    xcp_vm vm = api_install("vm");
    xcp_vm_record_map recs = {0};
    xcp_vm_record r;
    size_t i;
    bool found = false;

    xcp_vm_record_init(&r);
    OK(xcp_vm_get_record(S, &r, vm));
    OK(xcp_vm_get_all_records(S, &recs));
    for (i = 0; i < recs.n; i++) {
        if (strcmp(recs.refs[i].ref, vm.ref))
            continue;
        found = true;
        cr_assert_str_eq(recs.records[i].uuid, r.uuid);
        cr_assert_str_eq(recs.records[i].name_label, "vm");
        cr_assert_eq(recs.records[i].memory_static_max, r.memory_static_max);
    }
    cr_assert(found);
    xcp_vm_record_dispose(&r);
    xcp_vm_record_map_dispose(&recs);
}

Test(generated, get_by_name_label_finds_all_with_that_name)
{
    xcp_vm a = api_install("twin"), b = api_install("twin");
    xcp_vm_set s = {0};

    OK(xcp_vm_get_by_name_label(S, &s, "twin"));
    cr_assert_eq(s.n, 2);
    cr_assert(api_vm_set_has(&s, a) && api_vm_set_has(&s, b));
    xcp_vm_set_dispose(&s);
    OK(xcp_vm_get_by_name_label(S, &s, "nobody"));
    cr_assert_eq(s.n, 0);
    xcp_vm_set_dispose(&s);
}

Test(generated, get_by_uuid_round_trips)
{
    xcp_vm vm = api_install("vm");
    xcp_vm back;
    char *u = vm_uuid(vm);

    OK(xcp_vm_get_by_uuid(S, &back, u));
    cr_assert_str_eq(back.ref, vm.ref);
    xcp_free(u);
}

Test(generated, set_name_label_persists_and_is_readable)
{
    xcp_vm vm = api_install("vm");
    char *name = NULL, *descr = NULL;
    xcp_vm_record r;

    OK(xcp_vm_set_name_label(S, vm, "renamed"));
    OK(xcp_vm_set_name_description(S, vm, "a description"));
    OK(xcp_vm_get_name_label(S, &name, vm));
    OK(xcp_vm_get_name_description(S, &descr, vm));
    cr_assert_str_eq(name, "renamed");
    cr_assert_str_eq(descr, "a description");
    xcp_vm_record_init(&r);
    OK(xcp_vm_get_record(S, &r, vm));
    cr_assert_str_eq(r.name_label, "renamed");
    xcp_vm_record_dispose(&r);
    xcp_free(name);
    xcp_free(descr);
}

Test(generated, set_field_through_xcp_call)
{
    xcp_vm vm = api_install("vm");
    xcp_value res = {0};

    OK(call_s(&res, "VM.set_name_label", 2, vm.ref, "dyn"));
    cr_assert_eq(res.kind, XCP_VAL_NONE);
    OK(call_s(&res, "VM.get_name_label", 1, vm.ref));
    cr_assert_eq(res.kind, XCP_VAL_STRING);
    cr_assert_str_eq(res.u.s, "dyn");
    xcp_value_dispose(&res);
}

Test(generated, underscore_spelling_is_accepted)
{
    xcp_vm vm = api_install("vm");
    xcp_value res = {0};

    OK(call_s(&res, "VM_get_name_label", 1, vm.ref));
    cr_assert_str_eq(res.u.s, "vm");
    xcp_value_dispose(&res);
}

Test(generated, get_record_through_xcp_call_is_a_record)
{
    xcp_vm vm = api_install("vm");
    xcp_value res = {0};
    const xcp_value *f;

    OK(call_s(&res, "VM.get_record", 1, vm.ref));
    cr_assert(res.kind == XCP_VAL_RECORD || res.kind == XCP_VAL_STRUCT);
    f = xcp_value_struct_get(&res, "name_label");
    cr_assert_not_null(f);
    cr_assert_str_eq(f->u.s, "vm");
    f = xcp_value_struct_get(&res, "power_state");
    cr_assert_not_null(f);
    cr_assert_str_eq(f->u.s, "Halted");
    xcp_value_dispose(&res);
}

Test(generated, setter_of_read_only_field_does_not_exist)
{
    xcp_vm vm = api_install("vm");
    xcp_value res = {0};

    assert_error(call_s(&res, "VM.set_power_state", 2, vm.ref, "Running"),
                 "MESSAGE_METHOD_UNKNOWN", "VM.set_power_state");
    assert_error(call_s(&res, "VM.set_uuid", 2, vm.ref, NO_UUID),
                 "MESSAGE_METHOD_UNKNOWN", "VM.set_uuid");
    cr_assert_eq(api_power(vm), XCP_VM_POWER_STATE_HALTED);
}

Test(generated, map_add_remove_and_duplicate_key)
{
    xcp_vm vm = api_install("vm");
    xcp_string_map oc = {0};
    char *u = vm_uuid(vm);

    OK(xcp_vm_add_to_other_config(S, vm, "color", "blue"));
    OK(xcp_vm_get_other_config(S, &oc, vm));
    cr_assert_str_eq(xcp_string_map_get(&oc, "color"), "blue");
    xcp_string_map_dispose(&oc);

    assert_error(xcp_vm_add_to_other_config(S, vm, "color", "red"),
                 "MAP_DUPLICATE_KEY", "VM", "other_config", u, "color");
    OK(xcp_vm_get_other_config(S, &oc, vm));
    cr_assert_str_eq(xcp_string_map_get(&oc, "color"), "blue");
    xcp_string_map_dispose(&oc);

    OK(xcp_vm_remove_from_other_config(S, vm, "color"));
    OK(xcp_vm_get_other_config(S, &oc, vm));
    cr_assert_null(xcp_string_map_get(&oc, "color"));
    xcp_string_map_dispose(&oc);
    /* Removing a missing key is a no-op. */
    OK(xcp_vm_remove_from_other_config(S, vm, "color"));
    OK(xcp_vm_add_to_other_config(S, vm, "color", "red"));
    xcp_free(u);
}

Test(generated, map_duplicate_key_on_other_classes)
{
    xcp_network net = api_network();
    char *u = NULL;

    OK(xcp_network_get_uuid(S, &u, net));
    OK(xcp_network_add_to_other_config(S, net, "k", "1"));
    assert_error(xcp_network_add_to_other_config(S, net, "k", "2"),
                 "MAP_DUPLICATE_KEY", "network", "other_config", u, "k");
    xcp_free(u);
}

Test(generated, set_whole_map_replaces_it)
{
    xcp_vm vm = api_install("vm");
    xcp_string_map m = {0}, got = {0};

    OK(xcp_vm_add_to_xenstore_data(S, vm, "old", "1"));
    xcp_string_map_set(&m, "a", "1");
    xcp_string_map_set(&m, "b", "2");
    OK(xcp_vm_set_xenstore_data(S, vm, &m));
    OK(xcp_vm_get_xenstore_data(S, &got, vm));
    cr_assert_eq(got.n, 2);
    cr_assert_str_eq(xcp_string_map_get(&got, "b"), "2");
    cr_assert_null(xcp_string_map_get(&got, "old"));
    xcp_string_map_dispose(&m);
    xcp_string_map_dispose(&got);
}

Test(generated, tags_add_remove_idempotent)
{
    xcp_vm vm = api_install("vm");
    xcp_string_set tags = {0};

    OK(xcp_vm_add_tags(S, vm, "web"));
    OK(xcp_vm_add_tags(S, vm, "prod"));
    OK(xcp_vm_add_tags(S, vm, "web"));
    OK(xcp_vm_get_tags(S, &tags, vm));
    cr_assert_eq(tags.n, 2);
    cr_assert(api_str_set_has(&tags, "web") && api_str_set_has(&tags, "prod"));
    xcp_string_set_dispose(&tags);
    OK(xcp_vm_remove_tags(S, vm, "web"));
    OK(xcp_vm_remove_tags(S, vm, "web"));
    OK(xcp_vm_get_tags(S, &tags, vm));
    cr_assert_eq(tags.n, 1);
    cr_assert_str_eq(tags.items[0], "prod");
    xcp_string_set_dispose(&tags);
}

Test(generated, set_tags_replaces_set)
{
    xcp_vm vm = api_install("vm");
    xcp_string_set in = {0}, tags = {0};

    OK(xcp_vm_add_tags(S, vm, "old"));
    xcp_string_set_add(&in, "x");
    xcp_string_set_add(&in, "y");
    OK(xcp_vm_set_tags(S, vm, &in));
    OK(xcp_vm_get_tags(S, &tags, vm));
    cr_assert_eq(tags.n, 2);
    cr_assert(!api_str_set_has(&tags, "old"));
    xcp_string_set_dispose(&in);
    xcp_string_set_dispose(&tags);
}

Test(generated, rw_fields_of_other_classes)
{
    xcp_pool pool = api_pool();
    xcp_network net = api_network();
    char *s = NULL;
    int64_t mtu = 0;

    OK(xcp_pool_set_name_label(S, pool, "my pool"));
    OK(xcp_pool_get_name_label(S, &s, pool));
    cr_assert_str_eq(s, "my pool");
    xcp_free(s);
    OK(xcp_network_set_MTU(S, net, 9000));
    OK(xcp_network_get_MTU(S, &mtu, net));
    cr_assert_eq(mtu, 9000);
}

Test(generated, vm_explicit_setter_of_static_field)
{
    xcp_vm vm = api_install("vm");
    xcp_string_map p = {0}, got = {0};

    xcp_string_map_set(&p, "acpi", "0");
    OK(xcp_vm_set_platform(S, vm, &p));
    OK(xcp_vm_get_platform(S, &got, vm));
    cr_assert_eq(got.n, 1);
    cr_assert_str_eq(xcp_string_map_get(&got, "acpi"), "0");
    xcp_string_map_dispose(&p);
    xcp_string_map_dispose(&got);
}

Test(generated, enum_setter_rejects_unknown_value)
{
    xcp_vm vm = api_install("vm");
    xcp_value res = {0};

    OK(call_s(&res, "VM.set_actions_after_reboot", 2, vm.ref, "destroy"));
    assert_error(call_s(&res, "VM.set_actions_after_reboot", 2, vm.ref,
                        "explode"),
                 "INVALID_VALUE", "value", "explode");
}

/* Enum map keys are canonicalised like enum values, and two spellings of
 * one key are refused. */
Test(generated, enum_map_keys_are_canonicalised)
{
    xcp_vm vm = api_install("vm");
    xcp_value args[2], v, res = {0};
    const xcp_value *m;

    memset(args, 0, sizeof(args));
    xcp_value_set_string(&args[0], vm.ref);
    xcp_value_set_struct(&args[1]);
    xcp_value_set_string(&v, "maintenance");
    xcp_value_struct_add(&args[1], "START", &v);
    xcp_value_set_string(&v, "no");
    xcp_value_struct_add(&args[1], "Clean_Shutdown", &v);
    OK(xcp_call(S, &res, "VM.set_blocked_operations", 2, args));
    OK(xcp_call(S, &res, "VM.get_blocked_operations", 1, args));
    cr_assert_eq(res.kind, XCP_VAL_STRUCT);
    cr_assert_eq(res.u.st.n, 2);
    m = xcp_value_struct_get(&res, "start");
    cr_assert(m && !strcmp(m->u.s, "maintenance"), "key not canonical");
    cr_assert_not_null(xcp_value_struct_get(&res, "clean_shutdown"));
    cr_assert_null(xcp_value_struct_get(&res, "START"));
    xcp_value_dispose(&res);
    /* "start" and "Start" name one key. */
    xcp_value_set_string(&v, "again");
    xcp_value_struct_add(&args[1], "Start", &v);
    assert_error(xcp_call(S, &res, "VM.set_blocked_operations", 2, args),
                 "INVALID_VALUE", "value", "start");
    xcp_value_dispose(&args[0]);
    xcp_value_dispose(&args[1]);
    OK(xcp_call(S, &res, "VM.get_blocked_operations", 1,
                &(xcp_value){.kind = XCP_VAL_STRING, .u.s = vm.ref}));
    cr_assert_eq(res.u.st.n, 2, "the refused call changed the map");
    xcp_value_dispose(&res);
}

Test(generated, derived_sets_follow_relations)
{
    xcp_vm vm = api_install("vm");
    xcp_vbd_set vbds = {0};
    xcp_vdi_set srv = {0};
    xcp_vdi vdi;
    xcp_vm owner;
    xcp_sr sr;

    OK(xcp_vm_get_VBDs(S, &vbds, vm));
    cr_assert_eq(vbds.n, 1);
    OK(xcp_vbd_get_VM(S, &owner, vbds.items[0]));
    cr_assert_str_eq(owner.ref, vm.ref);
    OK(xcp_vbd_get_VDI(S, &vdi, vbds.items[0]));
    OK(xcp_vdi_get_SR(S, &sr, vdi));
    OK(xcp_sr_get_VDIs(S, &srv, sr));
    {
        size_t i;
        bool found = false;
        for (i = 0; i < srv.n; i++)
            found |= !strcmp(srv.items[i].ref, vdi.ref);
        cr_assert(found, "SR.VDIs lacks the VM's disk");
    }
    xcp_vbd_set_dispose(&vbds);
    xcp_vdi_set_dispose(&srv);
}

Test(generated, session_record_describes_this_session)
{
    xcp_session_id me;
    xcp_session_record r;
    xcp_value res = {0};

    SET_REF(me, xcp_session_ref(S));
    xcp_session_record_init(&r);
    OK(xcp_session_get_record(S, &r, me));
    cr_assert_str_eq(r.this_host.ref, api_host().ref);
    cr_assert(r.is_local_superuser);
    cr_assert_str_eq(r.originator, "tests/api");
    xcp_session_record_dispose(&r);
    /* Sessions have no get_all. */
    assert_error(call_s(&res, "session.get_all", 0), "MESSAGE_METHOD_UNKNOWN",
                 "session.get_all");
}

Test(generated, get_by_name_label_only_for_classes_with_names)
{
    xcp_value res = {0};

    assert_error(call_s(&res, "VBD.get_by_name_label", 1, "x"),
                 "MESSAGE_METHOD_UNKNOWN", "VBD.get_by_name_label");
}

Test(generated, invalid_utf8_argument_fails_invalid_value)
{
    xcp_vm vm = api_install("vm");
    xcp_value res = {0};
    char *name = NULL;

    assert_error(call_s(&res, "VM.set_name_label", 2, vm.ref, "bad\xff\xfe"),
                 "INVALID_VALUE", "Invalid UTF-8 string in parameter",
                 "bad\xff\xfe");
    OK(xcp_vm_get_name_label(S, &name, vm));
    cr_assert_str_eq(name, "vm");
    xcp_free(name);
}

Test(generated, utf8_names_round_trip)
{
    xcp_vm vm = api_install("vm");
    char *name = NULL;

    OK(xcp_vm_set_name_label(S, vm, "v\xc3\xa9rifi\xc3\xa9 \xe2\x9c\x93"));
    OK(xcp_vm_get_name_label(S, &name, vm));
    cr_assert_str_eq(name, "v\xc3\xa9rifi\xc3\xa9 \xe2\x9c\x93");
    xcp_free(name);
}

Test(generated, vm_create_from_record)
{
    xcp_vm_record r;
    xcp_vm vm;
    xcp_vm_operations_set ops = {0};

    xcp_vm_record_init(&r);
    r.name_label = (char *)"from scratch";
    r.name_description = (char *)"";
    r.memory_static_min = 128 * MiB;
    r.memory_dynamic_min = 128 * MiB;
    r.memory_dynamic_max = 128 * MiB;
    r.memory_static_max = 128 * MiB;
    r.VCPUs_max = 1;
    r.VCPUs_at_startup = 1;
    r.domain_type = XCP_DOMAIN_TYPE_HVM;
    r.HVM_boot_policy = (char *)"BIOS order";
    OK(xcp_vm_create(S, &vm, &r));
    xcp_vm_record_init(&r);
    OK(xcp_vm_get_record(S, &r, vm));
    cr_assert_str_eq(r.name_label, "from scratch");
    cr_assert_eq(r.power_state, XCP_VM_POWER_STATE_HALTED);
    cr_assert_eq(r.domid, -1);
    cr_assert(!api_is_null(r.metrics.ref));
    cr_assert(!r.is_a_template);
    xcp_vm_record_dispose(&r);
    OK(xcp_vm_get_allowed_operations(S, &ops, vm));
    cr_assert(api_ops_has(&ops, XCP_VM_OPERATIONS_START));
    xcp_vm_operations_set_dispose(&ops);
    OK(xcp_vm_start(S, vm, false, false));
}

Test(generated, vm_create_with_too_many_startup_vcpus_fails)
{
    xcp_vm_record r;
    xcp_vm vm;

    xcp_vm_record_init(&r);
    r.name_label = (char *)"bad";
    r.memory_static_min = 128 * MiB;
    r.memory_dynamic_min = 128 * MiB;
    r.memory_dynamic_max = 128 * MiB;
    r.memory_static_max = 128 * MiB;
    r.VCPUs_max = 1;
    r.VCPUs_at_startup = 2;
    assert_error(xcp_vm_create(S, &vm, &r), "INVALID_VALUE",
                 "VCPUs_at_startup", "2");
}

Test(generated, allowed_vbd_devices_exclude_used_slots)
{
    xcp_vm vm = api_install("vm");
    xcp_string_set devs = {0};

    OK(xcp_vm_get_allowed_VBD_devices(S, &devs, vm));
    cr_assert(!api_str_set_has(&devs, "0"));
    cr_assert(api_str_set_has(&devs, "1"));
    xcp_string_set_dispose(&devs);
}

/* ---- get_all_records_where ---------------------------------------------- */

Test(where, name_label_equality)
{
    xcp_vm vm = api_install("findme");
    xcp_vm_record_map m = {0};

    api_install("other");
    OK(xcp_vm_get_all_records_where(S, &m, "field \"name__label\"=\"findme\""));
    cr_assert_eq(m.n, 1);
    cr_assert_str_eq(m.refs[0].ref, vm.ref);
    cr_assert_str_eq(m.records[0].name_label, "findme");
    xcp_vm_record_map_dispose(&m);
}

Test(where, uuid_or_name_like_xe)
{
    xcp_vm vm = api_install("findme");
    xcp_vm_set s = {0};
    char expr[256], *u = vm_uuid(vm);

    snprintf(expr, sizeof(expr),
             "(field \"uuid\"=\"%s\") or (field \"name__label\"=\"%s\")", u,
             u);
    OK(xcp_vm_get_all_where(S, &s, expr));
    cr_assert_eq(s.n, 1);
    cr_assert_str_eq(s.items[0].ref, vm.ref);
    xcp_vm_set_dispose(&s);
    xcp_free(u);
}

Test(where, power_state_and_template_flags)
{
    xcp_vm a = api_install("a");
    xcp_vm_set s = {0};

    api_install("b");
    OK(xcp_vm_start(S, a, false, false));
    OK(xcp_vm_get_all_where(S, &s, "field \"power_state\"=\"Running\" and "
                                   "field \"is_control_domain\"=\"false\""));
    cr_assert_eq(s.n, 1);
    cr_assert_str_eq(s.items[0].ref, a.ref);
    xcp_vm_set_dispose(&s);
    OK(xcp_vm_get_all_where(S, &s, "field \"is_a_template\"=\"true\""));
    cr_assert_eq(s.n, 5);
    xcp_vm_set_dispose(&s);
    OK(xcp_vm_get_all_where(S, &s,
                            "not (field \"is_a_template\"=\"true\") and "
                            "field \"is_control_domain\"=\"false\""));
    cr_assert_eq(s.n, 2);
    xcp_vm_set_dispose(&s);
}

Test(where, true_and_false)
{
    xcp_vm_set s = {0}, all = {0};

    OK(xcp_vm_get_all(S, &all));
    OK(xcp_vm_get_all_where(S, &s, "true"));
    cr_assert_eq(s.n, all.n);
    xcp_vm_set_dispose(&s);
    OK(xcp_vm_get_all_where(S, &s, "false"));
    cr_assert_eq(s.n, 0);
    xcp_vm_set_dispose(&s);
    xcp_vm_set_dispose(&all);
}

Test(where, bad_expression_fails_invalid_value)
{
    xcp_vm_record_map m = {0};
    const char *expr = "field \"name__label\"=";

    assert_error(xcp_vm_get_all_records_where(S, &m, expr), "INVALID_VALUE",
                 expr, NULL);
    assert_error(xcp_vm_get_all_records_where(S, &m, "(true"),
                 "INVALID_VALUE", "(true", NULL);
    assert_error(xcp_vm_get_all_records_where(S, &m, "name__label=x"),
                 "INVALID_VALUE", "name__label=x", NULL);
}

Test(where, other_class_where)
{
    xcp_vdi_set s = {0};

    api_install("vm");
    OK(xcp_vdi_get_all_where(S, &s, "field \"type\"=\"system\""));
    cr_assert_eq(s.n, 1);
    xcp_vdi_set_dispose(&s);
}

/* ---- dispatch errors ---------------------------------------------------- */

Test(dispatch, too_few_arguments_fails_count_mismatch)
{
    xcp_value res = {0};

    assert_error(call_s(&res, "VM.get_record", 0),
                 "MESSAGE_PARAMETER_COUNT_MISMATCH", "VM.get_record", "1",
                 "0");
    assert_error(call_s(&res, "VM.clone", 1, BOGUS),
                 "MESSAGE_PARAMETER_COUNT_MISMATCH", "VM.clone", "2", "1");
}

Test(dispatch, too_many_arguments_fails_count_mismatch)
{
    xcp_vm vm = api_install("vm");
    xcp_value res = {0};

    assert_error(call_s(&res, "VM.get_record", 2, vm.ref, "extra"),
                 "MESSAGE_PARAMETER_COUNT_MISMATCH", "VM.get_record", "1",
                 "2");
}

Test(dispatch, async_count_mismatch_names_method_without_prefix)
{
    xcp_value res = {0};

    assert_error(call_s(&res, "Async.VM.clone", 1, BOGUS),
                 "MESSAGE_PARAMETER_COUNT_MISMATCH", "VM.clone", "2", "1");
}

Test(dispatch, defaulted_arguments_may_be_omitted_or_surplus)
{
    xcp_vm vm = api_install("vm");
    xcp_value res = {0};

    OK(call_s(&res, "VM.snapshot", 2, vm.ref, "s1"));
    cr_assert_eq(res.kind, XCP_VAL_STRING);
    cr_assert(!strncmp(res.u.s, "OpaqueRef:", 10));
    xcp_value_dispose(&res);
}

Test(dispatch, unknown_method_fails_method_unknown)
{
    xcp_value res = {0};

    assert_error(call_s(&res, "VM.frobnicate", 0), "MESSAGE_METHOD_UNKNOWN",
                 "VM.frobnicate");
    assert_error(call_s(&res, "VM.frobnicate", 1, "x"),
                 "MESSAGE_METHOD_UNKNOWN", "VM.frobnicate");
    assert_error(call_s(&res, "Nope.get_all", 0), "MESSAGE_METHOD_UNKNOWN",
                 "Nope.get_all");
}

Test(dispatch, async_unknown_method_names_it_without_prefix)
{
    xcp_value res = {0};

    assert_error(call_s(&res, "Async.VM.frobnicate", 1, "x"),
                 "MESSAGE_METHOD_UNKNOWN", "VM.frobnicate");
}

Test(dispatch, async_on_sync_only_message_fails_fault)
{
    xcp_vm vm = api_install("vm");
    xcp_value res = {0};

    assert_error(call_s(&res, "Async.VM.get_record", 1, vm.ref), "Fault",
                 "No async mode for this operation (rpc: VM.get_record)");
    assert_error(call_s(&res, "Async.task.cancel", 1, BOGUS), "Fault",
                 "No async mode for this operation (rpc: task.cancel)");
}

Test(dispatch, async_call_returns_task_with_result)
{
    xcp_vm vm = api_install("vm");
    xcp_value res = {0}, out = {0};

    OK(call_s(&res, "Async.VM.clone", 2, vm.ref, "async clone"));
    cr_assert_eq(res.kind, XCP_VAL_STRING);
    cr_assert(!strncmp(res.u.s, "OpaqueRef:", 10));
    OK(xcp_task_wait(S, &out, res.u.s));
    cr_assert_eq(out.kind, XCP_VAL_STRING);
    cr_assert(!strncmp(out.u.s, "OpaqueRef:", 10));
    {
        xcp_vm c;
        char *name = NULL;
        SET_REF(c, out.u.s);
        OK(xcp_vm_get_name_label(S, &name, c));
        cr_assert_str_eq(name, "async clone");
        xcp_free(name);
    }
    xcp_value_dispose(&res);
    xcp_value_dispose(&out);
}

Test(dispatch, wrong_argument_type_fails_internal_error)
{
    xcp_vm vm = api_install("vm");
    xcp_value args[3];

    memset(args, 0, sizeof(args));
    xcp_value_set_string(&args[0], vm.ref);
    xcp_value_set_string(&args[1], "yes please");
    xcp_value_set_bool(&args[2], false);
    assert_error_name(xcp_call(S, NULL, "VM.start", 3, args),
                      "INTERNAL_ERROR");
    xcp_value_dispose(&args[0]);
    xcp_value_dispose(&args[1]);
    cr_assert_eq(api_power(vm), XCP_VM_POWER_STATE_HALTED);
}

Test(dispatch, bool_arguments_start_vm)
{
    xcp_vm vm = api_install("vm");
    xcp_value args[3];

    memset(args, 0, sizeof(args));
    xcp_value_set_string(&args[0], vm.ref);
    xcp_value_set_bool(&args[1], true);
    xcp_value_set_bool(&args[2], false);
    OK(xcp_call(S, NULL, "VM.start", 3, args));
    xcp_value_dispose(&args[0]);
    cr_assert_eq(api_power(vm), XCP_VM_POWER_STATE_PAUSED);
}

/* A constructor record without a field the model requires fails as XAPI's
 * unmarshaller does, naming the field; nothing is created. */
Test(generated, create_without_required_field_names_it)
{
    xcp_value rec, name, res, args[1];
    xcp_vm_set before, after;

    OK(xcp_vm_get_all(S, &before));
    xcp_value_set_struct(&rec);
    OK(xcp_value_set_string(&name, "no memory fields"));
    OK(xcp_value_struct_add(&rec, "name_label", &name));
    args[0] = rec;
    assert_error(xcp_call(S, &res, "VM.create", 1, args), "INTERNAL_ERROR",
                 "Field user_version not present in rpc");
    OK(xcp_vm_get_all(S, &after));
    cr_assert_eq(after.n, before.n);
    xcp_vm_set_dispose(&before);
    xcp_vm_set_dispose(&after);
    xcp_value_dispose(&rec);
}
