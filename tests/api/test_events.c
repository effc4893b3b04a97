/*
 * tests/api/test_events.c - event.from and tasks through the public API
 * (xenapi-wire.md §6 and §8): the initial dump with token "", mods with
 * the current snapshot, adds and dels, tokens and their parse errors,
 * subscriptions, event.inject, and the task records of Async calls
 * (status, result as an XML-RPC <value> fragment, error_info) and
 * task.cancel's refusal on a finished task.
 */
#include "helpers.h"

#include <time.h>

TestSuite(events, .init = api_setup, .fini = api_teardown);
TestSuite(tasks, .init = api_setup, .fini = api_teardown);

/* event.from(classes, token, timeout); classes separated by spaces. */
static int ev_from(xcp_value *out, const char *classes, const char *token,
                   double timeout)
{
    xcp_string_set cls = {0};
    char buf[256], *save = NULL, *item;
    int rc;

    snprintf(buf, sizeof(buf), "%s", classes);
    for (item = strtok_r(buf, " ", &save); item;
         item = strtok_r(NULL, " ", &save))
        xcp_string_set_add(&cls, item);
    memset(out, 0, sizeof(*out));
    rc = xcp_event_from(S, out, &cls, token, timeout);
    xcp_string_set_dispose(&cls);
    return rc;
}

static const xcp_value *member(const xcp_value *v, const char *key)
{
    const xcp_value *m = xcp_value_struct_get(v, key);

    cr_assert_not_null(m, "no member %s", key);
    return m;
}

static const char *str_member(const xcp_value *v, const char *key)
{
    const xcp_value *m = member(v, key);

    cr_assert_eq(m->kind, XCP_VAL_STRING, "%s is not a string", key);
    return m->u.s;
}

static const xcp_value *events_of(const xcp_value *res)
{
    const xcp_value *e = member(res, "events");

    cr_assert_eq(e->kind, XCP_VAL_ARRAY);
    return e;
}

/* The event about ref in a batch, or NULL. */
static const xcp_value *find_event(const xcp_value *res, const char *ref)
{
    const xcp_value *e = events_of(res);
    size_t i;

    for (i = 0; i < e->u.arr.n; i++)
        if (!strcmp(str_member(&e->u.arr.items[i], "ref"), ref))
            return &e->u.arr.items[i];
    return NULL;
}

static char *token_of(const xcp_value *res)
{
    char *t = strdup(str_member(res, "token"));

    cr_assert_not_null(t);
    return t;
}

static bool token_well_formed(const char *t)
{
    size_t i;

    if (strlen(t) != 41 || t[20] != ',')
        return false;
    for (i = 0; i < 41; i++)
        if (i != 20 && (t[i] < '0' || t[i] > '9'))
            return false;
    return true;
}

/* ---- the legacy event.register / event.next ---------------------------- */

static int ev_edit(int (*fn)(xcp_session *, const xcp_string_set *),
                   const char *cls)
{
    xcp_string_set set = {0};
    int rc;

    xcp_string_set_add(&set, cls);
    rc = fn(S, &set);
    xcp_string_set_dispose(&set);
    return rc;
}

/* The classes of an event.next batch: has it one of cls? */
static bool next_has_class(const xcp_value *batch, const char *cls)
{
    size_t i;

    cr_assert_eq(batch->kind, XCP_VAL_ARRAY);
    for (i = 0; i < batch->u.arr.n; i++)
        if (!strcmp(str_member(&batch->u.arr.items[i], "class"), cls))
            return true;
    return false;
}

Test(events, unregister_drops_classes_register_keeps_the_others)
{
    xcp_vm vm = api_install("vm");
    xcp_vbd_set vbds = {0};
    xcp_vdi vdi;
    xcp_value res;

    OK(ev_edit(xcp_event_unregister, "vm")); /* never registered: fine */
    memset(&res, 0, sizeof(res));
    assert_error(xcp_event_next(S, &res), "SESSION_NOT_REGISTERED",
                 xcp_session_ref(S));
    assert_error(ev_edit(xcp_event_register, ""),
                 "EVENT_SUBSCRIPTION_PARSE_FAILURE", "");
    assert_error(xcp_event_next(S, &res), "SESSION_NOT_REGISTERED",
                 xcp_session_ref(S));
    OK(xcp_vm_get_VBDs(S, &vbds, vm));
    OK(xcp_vbd_get_VDI(S, &vdi, vbds.items[0]));
    OK(ev_edit(xcp_event_register, "vm"));
    OK(ev_edit(xcp_event_register, "vdi"));
    OK(ev_edit(xcp_event_unregister, "VM"));
    OK(xcp_vm_set_name_label(S, vm, "renamed"));
    OK(xcp_vdi_set_name_label(S, vdi, "renamed"));
    OK(xcp_event_next(S, &res));
    cr_expect(next_has_class(&res, "vdi"));
    cr_expect(!next_has_class(&res, "vm"));
    xcp_value_dispose(&res);
    /* "*" takes everything, and unregistering "*" everything away */
    OK(ev_edit(xcp_event_register, "*"));
    OK(xcp_vm_set_name_label(S, vm, "again"));
    OK(xcp_event_next(S, &res));
    cr_expect(next_has_class(&res, "vm"));
    xcp_value_dispose(&res);
    OK(ev_edit(xcp_event_unregister, "*"));
    OK(ev_edit(xcp_event_register, "vdi"));
    OK(xcp_vm_set_name_label(S, vm, "once more"));
    OK(xcp_vdi_set_name_label(S, vdi, "once more"));
    OK(xcp_event_next(S, &res));
    cr_expect(next_has_class(&res, "vdi"));
    cr_expect(!next_has_class(&res, "vm"));
    xcp_value_dispose(&res);
    xcp_vbd_set_dispose(&vbds);
}

/* ---- event.from --------------------------------------------------------- */

Test(events, empty_token_dumps_existing_objects_as_adds)
{
    xcp_vm vm = api_install("vm");
    xcp_value res;
    const xcp_value *ev, *snap, *counts;
    xcp_vm_set all = {0};
    size_t i;

    OK(ev_from(&res, "vm", "", 0));
    OK(xcp_vm_get_all(S, &all));
    cr_assert_eq(events_of(&res)->u.arr.n, all.n);
    for (i = 0; i < all.n; i++) {
        ev = find_event(&res, all.items[i].ref);
        cr_assert_not_null(ev, "no event for %s", all.items[i].ref);
        cr_assert_str_eq(str_member(ev, "operation"), "add");
        cr_assert_str_eq(str_member(ev, "class"), "vm");
    }
    ev = find_event(&res, vm.ref);
    snap = member(ev, "snapshot");
    cr_assert_str_eq(str_member(snap, "name_label"), "vm");
    cr_assert_str_eq(str_member(snap, "power_state"), "Halted");
    str_member(ev, "id");
    str_member(ev, "timestamp");
    cr_assert(token_well_formed(str_member(&res, "token")), "token \"%s\"",
              str_member(&res, "token"));
    counts = member(&res, "valid_ref_counts");
    cr_assert_not_null(xcp_value_struct_get(counts, "vm"));
    cr_assert_eq(xcp_value_struct_get(counts, "vm")->u.i, (int64_t)all.n);
    xcp_vm_set_dispose(&all);
    xcp_value_dispose(&res);
}

Test(events, change_after_token_is_a_mod_with_new_snapshot)
{
    xcp_vm vm = api_install("vm");
    xcp_value res;
    const xcp_value *ev;
    char *tok;

    OK(ev_from(&res, "vm", "", 0));
    tok = token_of(&res);
    xcp_value_dispose(&res);
    OK(xcp_vm_set_name_label(S, vm, "renamed"));
    OK(ev_from(&res, "vm", tok, 5.0));
    cr_assert_eq(events_of(&res)->u.arr.n, 1);
    ev = find_event(&res, vm.ref);
    cr_assert_not_null(ev);
    cr_assert_str_eq(str_member(ev, "operation"), "mod");
    cr_assert_str_eq(str_member(ev, "class"), "vm");
    cr_assert_str_eq(str_member(member(ev, "snapshot"), "name_label"),
                     "renamed");
    cr_assert_str_neq(str_member(&res, "token"), tok);
    cr_assert_gt(strcmp(str_member(&res, "token"), tok), 0,
                 "token went backwards");
    free(tok);
    xcp_value_dispose(&res);
}

Test(events, several_changes_coalesce_into_current_snapshot)
{
    xcp_vm vm = api_install("vm");
    xcp_value res;
    const xcp_value *ev;
    char *tok;

    OK(ev_from(&res, "vm", "", 0));
    tok = token_of(&res);
    xcp_value_dispose(&res);
    OK(xcp_vm_set_name_label(S, vm, "one"));
    OK(xcp_vm_set_name_label(S, vm, "two"));
    OK(xcp_vm_add_tags(S, vm, "t"));
    OK(ev_from(&res, "vm", tok, 5.0));
    cr_assert_eq(events_of(&res)->u.arr.n, 1);
    ev = find_event(&res, vm.ref);
    cr_assert_str_eq(str_member(member(ev, "snapshot"), "name_label"), "two");
    free(tok);
    xcp_value_dispose(&res);
}

Test(events, start_shows_power_state_in_snapshot)
{
    xcp_vm vm = api_install("vm");
    xcp_value res;
    const xcp_value *ev;
    char *tok;

    OK(ev_from(&res, "vm", "", 0));
    tok = token_of(&res);
    xcp_value_dispose(&res);
    OK(xcp_vm_start(S, vm, false, false));
    OK(ev_from(&res, "vm", tok, 5.0));
    ev = find_event(&res, vm.ref);
    cr_assert_not_null(ev);
    cr_assert_str_eq(str_member(member(ev, "snapshot"), "power_state"),
                     "Running");
    free(tok);
    xcp_value_dispose(&res);
}

Test(events, created_object_is_add_destroyed_is_del_without_snapshot)
{
    xcp_value res;
    const xcp_value *ev;
    xcp_vm vm;
    char *tok;

    OK(ev_from(&res, "vm", "", 0));
    tok = token_of(&res);
    xcp_value_dispose(&res);
    vm = api_install("new");
    OK(ev_from(&res, "vm", tok, 5.0));
    ev = find_event(&res, vm.ref);
    cr_assert_not_null(ev);
    cr_assert_str_eq(str_member(ev, "operation"), "add");
    cr_assert_str_eq(str_member(member(ev, "snapshot"), "name_label"), "new");
    free(tok);
    tok = token_of(&res);
    xcp_value_dispose(&res);

    OK(xcp_vm_destroy(S, vm));
    OK(ev_from(&res, "vm", tok, 5.0));
    ev = find_event(&res, vm.ref);
    cr_assert_not_null(ev);
    cr_assert_str_eq(str_member(ev, "operation"), "del");
    cr_assert_null(xcp_value_struct_get(ev, "snapshot"));
    free(tok);
    xcp_value_dispose(&res);
}

Test(events, valid_ref_counts_cover_all_classes)
{
    xcp_value res;
    const xcp_value *counts;
    xcp_sr_set srs = {0};

    OK(ev_from(&res, "vm", "", 0));
    counts = member(&res, "valid_ref_counts");
    cr_assert_not_null(xcp_value_struct_get(counts, "sr"),
                       "valid_ref_counts lacks unsubscribed class sr");
    cr_assert_not_null(xcp_value_struct_get(counts, "host"));
    cr_assert_not_null(xcp_value_struct_get(counts, "task"));
    OK(xcp_sr_get_all(S, &srs));
    cr_assert_eq(xcp_value_struct_get(counts, "sr")->u.i, (int64_t)srs.n);
    xcp_sr_set_dispose(&srs);
    xcp_value_dispose(&res);
}

Test(events, batch_orders_adds_then_mods_then_dels)
{
    xcp_vm a = api_install("a"), b = api_install("b"), c;
    xcp_value res;
    const xcp_value *e;
    char *tok;
    int last = 0;
    size_t i;

    OK(ev_from(&res, "vm", "", 0));
    tok = token_of(&res);
    xcp_value_dispose(&res);
    OK(xcp_vm_destroy(S, a));
    OK(xcp_vm_set_name_label(S, b, "b2"));
    c = api_install("c");
    OK(ev_from(&res, "vm", tok, 5.0));
    e = events_of(&res);
    /* At least our three (the template cloned from shows a mod too). */
    cr_assert_geq(e->u.arr.n, 3);
    for (i = 0; i < e->u.arr.n; i++) {
        const char *op = str_member(&e->u.arr.items[i], "operation");
        int rank = !strcmp(op, "add") ? 1 : !strcmp(op, "mod") ? 2 : 3;
        cr_assert_geq(rank, last, "%s after a later kind", op);
        last = rank;
    }
    cr_assert_str_eq(str_member(find_event(&res, a.ref), "operation"), "del");
    cr_assert_str_eq(str_member(find_event(&res, b.ref), "operation"), "mod");
    cr_assert_str_eq(str_member(find_event(&res, c.ref), "operation"), "add");
    free(tok);
    xcp_value_dispose(&res);
}

Test(events, event_fields_have_wire_shapes)
{
    xcp_value res;
    const xcp_value *e;
    const char *id;
    size_t i;

    api_install("vm");
    OK(ev_from(&res, "vm", "", 0));
    e = events_of(&res);
    cr_assert_gt(e->u.arr.n, 0);
    for (i = 0; i < e->u.arr.n; i++) {
        id = str_member(&e->u.arr.items[i], "id");
        cr_assert(*id && strspn(id, "0123456789") == strlen(id), "id %s",
                  id);
        cr_assert_str_eq(str_member(&e->u.arr.items[i], "timestamp"), "0.0");
        cr_assert(!strncmp(str_member(&e->u.arr.items[i], "ref"),
                           "OpaqueRef:", 10));
    }
    xcp_value_dispose(&res);
}

Test(events, created_and_deleted_between_calls_is_not_reported)
{
    xcp_value res;
    xcp_vdi_record r;
    xcp_vdi vdi;
    char *tok;

    OK(ev_from(&res, "vdi", "", 0));
    tok = token_of(&res);
    xcp_value_dispose(&res);
    xcp_vdi_record_init(&r);
    r.name_label = (char *)"ephemeral";
    r.SR = api_default_sr();
    r.virtual_size = MiB;
    r.type = XCP_VDI_TYPE_USER;
    OK(xcp_vdi_create(S, &vdi, &r));
    OK(xcp_vdi_destroy(S, vdi));
    OK(ev_from(&res, "vdi", tok, 0.2));
    cr_assert_null(find_event(&res, vdi.ref));
    free(tok);
    xcp_value_dispose(&res);
}

Test(events, only_subscribed_classes_reported)
{
    xcp_vm vm = api_install("vm");
    xcp_value res;
    const xcp_value *e;
    size_t i;
    char *tok;

    OK(ev_from(&res, "sr", "", 0));
    tok = token_of(&res);
    e = events_of(&res);
    for (i = 0; i < e->u.arr.n; i++)
        cr_assert_str_eq(str_member(&e->u.arr.items[i], "class"), "sr");
    xcp_value_dispose(&res);
    OK(xcp_vm_set_name_label(S, vm, "x"));
    OK(ev_from(&res, "sr", tok, 0.2));
    cr_assert_null(find_event(&res, vm.ref));
    free(tok);
    xcp_value_dispose(&res);
}

Test(events, class_names_are_case_insensitive)
{
    xcp_value a, b;

    api_install("vm");
    OK(ev_from(&a, "VM", "", 0));
    OK(ev_from(&b, "vm", "", 0));
    cr_assert_eq(events_of(&a)->u.arr.n, events_of(&b)->u.arr.n);
    cr_assert_gt(events_of(&a)->u.arr.n, 0);
    xcp_value_dispose(&a);
    xcp_value_dispose(&b);
}

Test(events, single_object_subscription)
{
    xcp_vm a = api_install("a"), b = api_install("b");
    xcp_value res;
    char sub[96], *tok;

    snprintf(sub, sizeof(sub), "vm/%s", a.ref);
    OK(ev_from(&res, sub, "", 0));
    cr_assert_eq(events_of(&res)->u.arr.n, 1);
    cr_assert_not_null(find_event(&res, a.ref));
    tok = token_of(&res);
    xcp_value_dispose(&res);
    OK(xcp_vm_set_name_label(S, b, "b2"));
    OK(xcp_vm_set_name_label(S, a, "a2"));
    OK(ev_from(&res, sub, tok, 5.0));
    cr_assert_eq(events_of(&res)->u.arr.n, 1);
    cr_assert_not_null(find_event(&res, a.ref));
    free(tok);
    xcp_value_dispose(&res);
}

Test(events, star_subscribes_to_everything)
{
    xcp_value res;
    const xcp_value *e;
    size_t i;
    bool vm = false, sr = false, host = false, session = false;

    OK(ev_from(&res, "*", "", 0));
    e = events_of(&res);
    for (i = 0; i < e->u.arr.n; i++) {
        const char *c = str_member(&e->u.arr.items[i], "class");
        vm |= !strcmp(c, "vm");
        sr |= !strcmp(c, "sr");
        host |= !strcmp(c, "host");
        session |= !strcmp(c, "session");
    }
    cr_assert(vm && sr && host);
    cr_assert(!session, "sessions produce no events");
    xcp_value_dispose(&res);
}

Test(events, timeout_returns_no_events_and_a_token)
{
    xcp_value res;
    char *tok;
    struct timespec t0, t1;
    double dt;

    OK(ev_from(&res, "vm", "", 0));
    tok = token_of(&res);
    xcp_value_dispose(&res);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    OK(ev_from(&res, "vm", tok, 0.3));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    dt = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    cr_assert_eq(events_of(&res)->u.arr.n, 0);
    cr_assert(token_well_formed(str_member(&res, "token")));
    cr_assert_geq(dt, 0.25, "returned after %.3fs", dt);
    cr_assert_lt(dt, 3.0, "returned after %.3fs", dt);
    free(tok);
    xcp_value_dispose(&res);
}

/* Generations carry on across a restart: a token from before still sees
 * the changes made after. */
Test(events, token_survives_reopen)
{
    xcp_vm vm = api_install("vm");
    xcp_value res;
    const xcp_value *ev;
    char *tok;

    OK(ev_from(&res, "vm", "", 0));
    tok = token_of(&res);
    xcp_value_dispose(&res);
    api_reopen();
    OK(xcp_vm_set_name_label(S, vm, "after restart"));
    OK(ev_from(&res, "vm", tok, 5.0));
    ev = find_event(&res, vm.ref);
    cr_assert_not_null(ev, "change after the restart not reported");
    cr_assert_str_eq(str_member(member(ev, "snapshot"), "name_label"),
                     "after restart");
    cr_assert_gt(strcmp(str_member(&res, "token"), tok), 0);
    free(tok);
    xcp_value_dispose(&res);
}

Test(events, bad_token_fails_parse_failure)
{
    xcp_value res;

    assert_error(ev_from(&res, "vm", "not-a-token", 0),
                 "EVENT_FROM_TOKEN_PARSE_FAILURE", "not-a-token");
    assert_error(ev_from(&res, "vm", "12,abc", 0),
                 "EVENT_FROM_TOKEN_PARSE_FAILURE", "12,abc");
}

Test(events, bad_subscription_fails_parse_failure)
{
    xcp_value res;

    assert_error(ev_from(&res, "vm/", "", 0),
                 "EVENT_SUBSCRIPTION_PARSE_FAILURE", "vm/");
}

Test(events, inject_makes_a_mod)
{
    xcp_pool pool = api_pool();
    xcp_value res;
    const xcp_value *ev;
    char *tok = NULL;

    OK(xcp_event_inject(S, &tok, "pool", pool.ref));
    cr_assert(token_well_formed(tok), "token \"%s\"", tok);
    OK(ev_from(&res, "pool", tok, 5.0));
    ev = find_event(&res, pool.ref);
    cr_assert_not_null(ev);
    cr_assert_str_eq(str_member(ev, "operation"), "mod");
    xcp_free(tok);
    xcp_value_dispose(&res);
}

Test(events, inject_with_bad_ref_fails_handle_invalid)
{
    char *tok = NULL;

    assert_error(xcp_event_inject(S, &tok, "VM", "OpaqueRef:nope"),
                 "HANDLE_INVALID", "VM", "OpaqueRef:nope");
}

Test(events, barrier_key_shows_in_pool_mod)
{
    xcp_pool pool = api_pool();
    xcp_value res;
    const xcp_value *ev, *oc;
    char *tok = NULL;

    OK(xcp_event_inject(S, &tok, "pool", pool.ref));
    OK(xcp_pool_add_to_other_config(S, pool, "xo:barrier:1", "123"));
    OK(ev_from(&res, "pool", tok, 5.0));
    ev = find_event(&res, pool.ref);
    cr_assert_not_null(ev);
    oc = member(member(ev, "snapshot"), "other_config");
    cr_assert_not_null(xcp_value_struct_get(oc, "xo:barrier:1"));
    xcp_free(tok);
    xcp_value_dispose(&res);
}

/* ---- tasks -------------------------------------------------------------- */

/* Poll a task until it is no longer pending or cancelling (<= ~5 s). */
static void wait_done(xcp_task t, xcp_task_record *r)
{
    int i;

    for (i = 0; i < 500; i++) {
        xcp_task_record_init(r);
        OK(xcp_task_get_record(S, r, t));
        if (r->status != XCP_TASK_STATUS_TYPE_PENDING &&
            r->status != XCP_TASK_STATUS_TYPE_CANCELLING)
            return;
        xcp_task_record_dispose(r);
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    cr_assert_fail("task %s still pending", t.ref);
}

Test(tasks, async_start_task_succeeds_with_void_result)
{
    xcp_vm vm = api_install("vm");
    xcp_task t;
    xcp_task_record r;

    OK(xcp_vm_start_async(S, &t, vm, false, false));
    wait_done(t, &r);
    cr_assert_eq(r.status, XCP_TASK_STATUS_TYPE_SUCCESS);
    cr_assert_str_eq(r.name_label, "Async.VM.start");
    cr_assert_str_eq(r.result, "<value></value>");
    cr_assert_eq(r.error_info.n, 0);
    cr_assert_float_eq(r.progress, 1.0, 1e-9);
    cr_assert_gt(r.finished, 0);
    cr_assert_geq(r.finished, r.created);
    cr_assert_str_eq(r.resident_on.ref, api_host().ref);
    xcp_task_record_dispose(&r);
    cr_assert_eq(api_power(vm), XCP_VM_POWER_STATE_RUNNING);
    OK(xcp_task_destroy(S, t));
}

Test(tasks, async_clone_result_is_value_fragment_with_ref)
{
    xcp_vm vm = api_install("vm");
    xcp_task t;
    xcp_task_record r;
    char want[XCP_REF_MAX + 32];
    xcp_vm_set s = {0};

    OK(xcp_vm_clone_async(S, &t, vm, "async clone"));
    wait_done(t, &r);
    cr_assert_eq(r.status, XCP_TASK_STATUS_TYPE_SUCCESS);
    OK(xcp_vm_get_by_name_label(S, &s, "async clone"));
    cr_assert_eq(s.n, 1);
    snprintf(want, sizeof(want), "<value>%s</value>", s.items[0].ref);
    cr_assert_str_eq(r.result, want);
    xcp_vm_set_dispose(&s);
    xcp_task_record_dispose(&r);
}

Test(tasks, failed_async_call_records_error_info)
{
    xcp_vm vm = api_install("vm");
    xcp_task t;
    xcp_task_record r;

    OK(xcp_vm_pause_async(S, &t, vm));
    wait_done(t, &r);
    cr_assert_eq(r.status, XCP_TASK_STATUS_TYPE_FAILURE);
    cr_assert_eq(r.error_info.n, 4);
    cr_assert_str_eq(r.error_info.items[0], "VM_BAD_POWER_STATE");
    cr_assert_str_eq(r.error_info.items[1], vm.ref);
    cr_assert_str_eq(r.error_info.items[2], "running");
    cr_assert_str_eq(r.error_info.items[3], "halted");
    xcp_task_record_dispose(&r);
}

Test(tasks, task_wait_returns_the_tasks_error)
{
    xcp_vm vm = api_install("vm");
    xcp_task t;

    OK(xcp_vm_pause_async(S, &t, vm));
    assert_error(xcp_task_wait(S, NULL, t.ref), "VM_BAD_POWER_STATE", vm.ref,
                 "running", "halted");
}

Test(tasks, cancel_finished_task_fails_operation_not_allowed)
{
    xcp_vm vm = api_install("vm");
    xcp_task t;
    xcp_task_record r;

    OK(xcp_vm_start_async(S, &t, vm, false, false));
    wait_done(t, &r);
    xcp_task_record_dispose(&r);
    assert_error(xcp_task_cancel(S, t), "OPERATION_NOT_ALLOWED",
                 "task is not cancellable");
}

Test(tasks, finished_task_allows_no_cancel)
{
    xcp_vm vm = api_install("vm");
    xcp_task t;
    xcp_task_record r;
    size_t i;

    OK(xcp_vm_start_async(S, &t, vm, false, false));
    wait_done(t, &r);
    for (i = 0; i < r.allowed_operations.n; i++)
        cr_assert_neq(r.allowed_operations.items[i],
                      XCP_TASK_ALLOWED_OPERATIONS_CANCEL);
    xcp_task_record_dispose(&r);
}

/* Wait until the VM shows an operation in progress (at most ~1 s). */
static void wait_busy(xcp_vm vm)
{
    xcp_string_map cur = {0};
    int i;

    for (i = 0; i < 200; i++) {
        OK(xcp_vm_get_current_operations(S, &cur, vm));
        if (cur.n) {
            xcp_string_map_dispose(&cur);
            return;
        }
        xcp_string_map_dispose(&cur);
        nanosleep(&(struct timespec){0, 5 * 1000 * 1000}, NULL);
    }
    cr_assert_fail("VM never busy");
}

/*
 * A pending Async task whose cancel was accepted must not end as a
 * plain success or failure: either the operation stops with
 * TASK_CANCELLED [task] (status cancelled), or cancel is refused up
 * front because the task is not cancellable.
 */
Test(tasks, cancel_pending_async_task_is_honoured_or_refused)
{
    xcp_vm vm = api_install("vm");
    xcp_task t;
    xcp_task_record r;
    int rc;

    OK(xcp_vm_start(S, vm, false, false));
    api_hang_guests(600);
    OK(xcp_vm_clean_shutdown_async(S, &t, vm));
    wait_busy(vm);
    rc = xcp_task_cancel(S, t);
    if (rc < 0) {
        assert_error_name(rc, "OPERATION_NOT_ALLOWED");
        return;
    }
    wait_done(t, &r);
    cr_assert_eq(r.status, XCP_TASK_STATUS_TYPE_CANCELLED,
                 "cancel accepted, task ended %s (%s)",
                 xcp_task_status_type_to_string(r.status),
                 r.error_info.n ? r.error_info.items[0] : "");
    cr_assert_eq(r.error_info.n, 2);
    cr_assert_str_eq(r.error_info.items[0], "TASK_CANCELLED");
    cr_assert_str_eq(r.error_info.items[1], t.ref);
    xcp_task_record_dispose(&r);
}

/* task.destroy on a pending task marks it; it goes when it completes. */
Test(tasks, destroy_pending_task_removes_it_when_done)
{
    xcp_vm vm = api_install("vm");
    xcp_task t;
    xcp_task_record r;
    xcp_task_set all = {0};
    size_t i;
    int k;

    OK(xcp_vm_start(S, vm, false, false));
    api_hang_guests(300);
    OK(xcp_vm_clean_shutdown_async(S, &t, vm));
    wait_busy(vm);
    OK(xcp_task_destroy(S, t));
    /* Wait for the operation itself to end. */
    for (k = 0; k < 400; k++) {
        xcp_string_map cur = {0};
        OK(xcp_vm_get_current_operations(S, &cur, vm));
        i = cur.n;
        xcp_string_map_dispose(&cur);
        if (!i)
            break;
        nanosleep(&(struct timespec){0, 5 * 1000 * 1000}, NULL);
    }
    nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
    xcp_task_record_init(&r);
    assert_error(xcp_task_get_record(S, &r, t), "HANDLE_INVALID", "task",
                 t.ref);
    OK(xcp_task_get_all(S, &all));
    for (i = 0; i < all.n; i++)
        cr_assert_str_neq(all.items[i].ref, t.ref);
    xcp_task_set_dispose(&all);
}

Test(tasks, manual_task_lifecycle)
{
    xcp_task t;
    xcp_task_record r;

    OK(xcp_task_create(S, &t, "upload", "an upload"));
    xcp_task_record_init(&r);
    OK(xcp_task_get_record(S, &r, t));
    cr_assert_eq(r.status, XCP_TASK_STATUS_TYPE_PENDING);
    cr_assert_str_eq(r.name_label, "upload");
    cr_assert_str_eq(r.name_description, "an upload");
    cr_assert_eq(r.finished, 0);
    xcp_task_record_dispose(&r);
    OK(xcp_task_set_status(S, t, XCP_TASK_STATUS_TYPE_SUCCESS));
    OK(xcp_task_get_record(S, &r, t));
    cr_assert_eq(r.status, XCP_TASK_STATUS_TYPE_SUCCESS);
    cr_assert_gt(r.finished, 0);
    xcp_task_record_dispose(&r);
    OK(xcp_task_destroy(S, t));
    xcp_task_record_init(&r);
    assert_error(xcp_task_get_record(S, &r, t), "HANDLE_INVALID", "task",
                 t.ref);
}

Test(tasks, cancel_pending_manual_task)
{
    xcp_task t;
    enum xcp_task_status_type st = XCP_TASK_STATUS_TYPE_PENDING;

    OK(xcp_task_create(S, &t, "upload", ""));
    OK(xcp_task_cancel(S, t));
    OK(xcp_task_get_status(S, &st, t));
    cr_assert(st == XCP_TASK_STATUS_TYPE_CANCELLING ||
                  st == XCP_TASK_STATUS_TYPE_CANCELLED,
              "status %s", xcp_task_status_type_to_string(st));
}

Test(tasks, tasks_show_up_in_events)
{
    xcp_vm vm = api_install("vm");
    xcp_value res;
    xcp_task t;
    xcp_task_record r;
    const xcp_value *ev;
    char *tok;

    OK(ev_from(&res, "task", "", 0));
    tok = token_of(&res);
    xcp_value_dispose(&res);
    OK(xcp_vm_start_async(S, &t, vm, false, false));
    wait_done(t, &r);
    xcp_task_record_dispose(&r);
    OK(ev_from(&res, "task", tok, 5.0));
    ev = find_event(&res, t.ref);
    cr_assert_not_null(ev, "no event for the task");
    cr_assert_str_eq(str_member(ev, "class"), "task");
    cr_assert_str_eq(str_member(member(ev, "snapshot"), "status"),
                     "success");
    free(tok);
    xcp_value_dispose(&res);
}

Test(tasks, task_get_all_lists_async_tasks)
{
    xcp_vm vm = api_install("vm");
    xcp_task t;
    xcp_task_record r;
    xcp_task_set all = {0};
    size_t i;
    bool found = false;

    OK(xcp_vm_start_async(S, &t, vm, false, false));
    wait_done(t, &r);
    xcp_task_record_dispose(&r);
    OK(xcp_task_get_all(S, &all));
    for (i = 0; i < all.n; i++)
        found |= !strcmp(all.items[i].ref, t.ref);
    cr_assert(found);
    xcp_task_set_dispose(&all);
}
