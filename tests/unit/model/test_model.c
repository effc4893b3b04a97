/*
 * The model against the code bound to it: every implementation row names
 * a message of the model and every explicit message is implemented or
 * listed as unimplemented (issue 8 item 5); the field-name index agrees
 * with the tables (item 7).
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include "engine/engine.h"

static void log_problem(void *arg, const char *problem)
{
    (void)arg;
    cr_log_error("%s", problem);
}

Test(model_registry, every_message_is_implemented_or_listed_exactly_once)
{
    cr_assert_eq(xcp__impl_check(log_problem, NULL), 0,
                 "the implementation tables disagree with the model");
}

Test(model_registry, listed_messages_answer_not_implemented)
{
    int mid = xcp__message_lookup("pool.enable_ha");

    cr_assert_geq(mid, 0);
    cr_assert_eq(xcp__messages[mid].kind, XM_EXPLICIT);
    cr_assert_null(xcp__impl_find(mid));
    mid = xcp__message_lookup("VM.start");
    cr_assert_not_null(xcp__impl_find(mid));
}

Test(model_index, field_index_finds_every_field_and_nothing_else)
{
    int cls;

    for (cls = 0; cls < xcp_class_count(); cls++) {
        size_t i, n = xcp_class_field_count(cls);
        for (i = 0; i < n; i++) {
            const xcp_field_info *f = xcp_class_field(cls, i);
            cr_assert_eq(xcp_class_field_index(cls, f->name), (int)i,
                         "%s.%s", xcp_class_name(cls), f->name);
        }
        cr_assert_eq(xcp_class_field_index(cls, "no_such_field"), -1);
        cr_assert_eq(xcp_class_field_index(cls, ""), -1);
        cr_assert_eq(xcp_class_by_name(xcp_class_name(cls)), cls);
    }
    cr_assert_eq(xcp_class_field_index(-1, "uuid"), -1);
    cr_assert_eq(xcp_class_field_index(xcp_class_count(), "uuid"), -1);
    /* a field name is case-sensitive, a class name falls back */
    cr_assert_eq(xcp_class_field_index(xcp_class_by_name("VM"), "UUID"), -1);
    cr_assert_eq(xcp_class_by_name("vm"), xcp_class_by_name("VM"));
    cr_assert_eq(xcp_class_by_name("no_such_class"), -1);
}

/* ---- records from structs (convert.c), as a caller's argument ---------- */

static void put_s(xcp_value *st, const char *k, const char *s)
{
    xcp_value v;

    xcp_value_set_string(&v, s);
    cr_assert_eq(xcp_value_struct_add(st, k, &v), 0);
}

static const xcp_value *field(const xcp_value *rec, const char *name)
{
    int i = xcp_class_field_index(rec->u.rec.cls, name);

    cr_assert_geq(i, 0, "no field %s", name);
    return &rec->u.rec.fields[i];
}

static void assert_internal_error(const char *msg)
{
    const xcp_error *e = xcp_error_last();

    cr_assert_not_null(e);
    cr_assert_str_eq(e->name, "INTERNAL_ERROR");
    cr_assert_eq(e->nparams, 1);
    cr_assert_str_eq(e->params[0], msg);
}

Test(model_record_check, struct_becomes_record_checked_field_by_field)
{
    xcp_value st;
    const xcp_value *f;

    xcp_value_set_struct(&st);
    put_s(&st, "name_label", "first");
    put_s(&st, "memory_static_max", "4294967296"); /* int as text */
    put_s(&st, "power_state", "HALTED");          /* other case */
    put_s(&st, "not_a_field", "dropped");
    put_s(&st, "name_label", "second");           /* the first counts */
    cr_assert_eq(xcp__value_check(&xcp__T_record_VM, &st, "args"), 0);
    cr_assert_eq(st.kind, XCP_VAL_RECORD);
    cr_assert_eq(st.u.rec.cls, XCP__C_VM);
    cr_assert_str_eq(field(&st, "name_label")->u.s, "first");
    f = field(&st, "memory_static_max");
    cr_assert_eq(f->kind, XCP_VAL_INT);
    cr_assert_eq(f->u.i, 4294967296LL);
    cr_assert_str_eq(field(&st, "power_state")->u.s, "Halted");
    /* absent: left so, for the constructor to default */
    cr_assert_eq(field(&st, "user_version")->kind, XCP_VAL_NONE);
    /* a record of the class passes as it is */
    cr_assert_eq(xcp__value_check(&xcp__T_record_VM, &st, "args"), 0);
    cr_assert_str_eq(field(&st, "name_label")->u.s, "first");
    xcp_value_dispose(&st);
}

Test(model_record_check, null_member_is_refused_unlike_an_absent_one)
{
    xcp_value st, none = {0};

    xcp_value_set_struct(&st);
    none.kind = XCP_VAL_NONE;
    cr_assert_eq(xcp_value_struct_add(&st, "name_label", &none), 0);
    cr_assert_lt(xcp__value_check(&xcp__T_record_VM, &st, "args"), 0);
    assert_internal_error("Expected string, got nothing for name_label");
    cr_assert_eq(st.kind, XCP_VAL_STRUCT);
    xcp_value_dispose(&st);
}

Test(model_record_check, first_bad_field_in_model_order_is_reported)
{
    xcp_value st, v;

    cr_assert_lt(xcp_class_field_index(XCP__C_VM, "name_label"),
                 xcp_class_field_index(XCP__C_VM, "memory_static_max"));
    xcp_value_set_struct(&st);
    put_s(&st, "memory_static_max", "lots");
    xcp_value_set_int(&v, 7);
    cr_assert_eq(xcp_value_struct_add(&st, "name_label", &v), 0);
    cr_assert_lt(xcp__value_check(&xcp__T_record_VM, &st, "args"), 0);
    assert_internal_error("Expected string, got int for name_label");
    xcp_value_dispose(&st);
}

Test(model_record_check, non_struct_is_refused)
{
    xcp_value v;

    xcp_value_set_string(&v, "OpaqueRef:x");
    cr_assert_lt(xcp__value_check(&xcp__T_record_VM, &v, "args"), 0);
    assert_internal_error("Expected struct, got string for args");
    xcp_value_dispose(&v);
}

/* What the fix callback is told: sent for a member, null or not. */
static int note_sent(const struct xcp__field *f, xcp_value *fv, bool sent,
                     void *arg)
{
    int *seen = arg;

    if (!strcmp(f->name, "name_label"))
        seen[0] = sent * 2 + (fv->kind == XCP_VAL_NONE);
    else if (!strcmp(f->name, "name_description"))
        seen[1] = sent * 2 + (fv->kind == XCP_VAL_NONE);
    return 0;
}

static int fail_on_uuid(const struct xcp__field *f, xcp_value *fv, bool sent,
                        void *arg)
{
    (void)fv;
    (void)sent;
    (void)arg;
    return strcmp(f->name, "uuid") ? 0 : XCP__ERR_INTERNAL_ERROR("uuid");
}

Test(model_record_check, rec_from_struct_tells_sent_from_absent)
{
    xcp_value st, none;
    int seen[2] = {-1, -1};

    xcp_value_set_struct(&st);
    none.kind = XCP_VAL_NONE;
    cr_assert_eq(xcp_value_struct_add(&st, "name_label", &none), 0);
    cr_assert_eq(xcp__rec_from_struct(&st, XCP__C_VM, note_sent, seen), 0);
    cr_assert_eq(seen[0], 3); /* sent, null */
    cr_assert_eq(seen[1], 1); /* absent */
    xcp_value_dispose(&st);
    /* a failure leaves a struct, the caller's to dispose */
    xcp_value_set_struct(&st);
    put_s(&st, "uuid", "u");
    cr_assert_lt(xcp__rec_from_struct(&st, XCP__C_VM, fail_on_uuid, NULL), 0);
    cr_assert_eq(st.kind, XCP_VAL_STRUCT);
    xcp_value_dispose(&st);
}

Test(model_record_check, int_stands_for_a_float_string_does_not_for_a_bool)
{
    xcp_value v;

    xcp_value_set_int(&v, 3);
    cr_assert_eq(xcp__value_check(&xcp__T_float, &v, "x"), 0);
    cr_assert_eq(v.kind, XCP_VAL_FLOAT);
    cr_assert_float_eq(v.u.f, 3.0, 1e-12);
    xcp_value_set_bool(&v, true);
    cr_assert_lt(xcp__value_check(&xcp__T_float, &v, "x"), 0);
    assert_internal_error("Expected float, got bool for x");
}
