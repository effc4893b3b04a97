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
    int mid = xcp__message_lookup("pool.join");

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
