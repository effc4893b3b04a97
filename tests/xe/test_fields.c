/*
 * tests/xe/test_fields.c - xe's field tables (cmd/xe/fields.c) against
 * the model: every path names a model field, the flags the model can say
 * (writability, set/map and add/remove, deprecation) come from it, and
 * an entry that gives them by hand (XE_F_OWN) differs from what the model
 * says, so the tables stay minimal; likewise a CLI name given by hand is
 * not the one derived from the path.  The goldens (tests/xe/NAME.out) show
 * that the derived flags are XAPI's.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "fields.h"

/* Every table entry with its class, as the tables give it. */
#define EACH_FIELD(cc, f, cls)                                                \
    for (size_t i_ = 0; i_ < xe_nclasses; i_++)                               \
        for (size_t j_ = 0;                                                   \
             (cc = &xe_classes[i_], cls = xcp_class_by_name(cc->api),         \
             f = &cc->fields[j_], j_ < cc->nfields);                          \
             j_++)

static const char *label(const xe_field *f)
{
    return f->name != NULL ? f->name : f->path;
}

/* A plain path: a field of the object itself, its entry computed by no
 * getter (getters own their path: FH names a host field). */
static bool model_path(const xe_field *f)
{
    return f->path != NULL && f->get == NULL;
}

Test(xe_fields, every_path_names_a_model_field)
{
    const xe_class *cc;
    const xe_field *f;
    int cls, n = 0;

    EACH_FIELD(cc, f, cls) {
        cr_assert_geq(cls, 0, "class %s", cc->api);
        if (!model_path(f))
            continue;
        n++;
        cr_expect_geq(xe_field_model_flags(cls, f->path, f->given), 0,
                      "%s %s: path %s is no field of the model", cc->name,
                      label(f), f->path);
    }
    cr_assert_gt(n, 300);
}

Test(xe_fields, explicit_flags_differ_from_the_model)
{
    const xe_class *cc;
    const xe_field *f;
    int cls, mf;

    EACH_FIELD(cc, f, cls) {
        if (!model_path(f))
            continue;
        mf = xe_field_model_flags(cls, f->path, f->given);
        if (f->given & XE_F_OWN)
            cr_expect_neq(f->given & XE_F_MODEL, (unsigned)mf,
                          "%s %s: its flags (0x%x) only restate the "
                          "model's: drop them", cc->name, label(f),
                          f->given & XE_F_MODEL);
        else
            cr_expect_eq(f->given & XE_F_MODEL, 0,
                         "%s %s: gives model flags 0x%x without XE_F_OWN",
                         cc->name, label(f), f->given & XE_F_MODEL);
    }
}

Test(xe_fields, plain_marks_only_sets_and_maps)
{
    const xe_class *cc;
    const xe_field *f;
    int cls, mf;

    EACH_FIELD(cc, f, cls) {
        if (!model_path(f) || !(f->given & XE_F_PLAIN))
            continue;
        mf = xe_field_model_flags(cls, f->path, f->given & ~XE_F_PLAIN);
        cr_expect(mf >= 0 && (mf & (XE_F_SET | XE_F_MAP)),
                  "%s %s: XE_F_PLAIN on a field that is no set or map",
                  cc->name, label(f));
    }
}

/* Before xe_fields_init: the names the tables give. */
Test(xe_fields, names_given_differ_from_the_derived_ones)
{
    const xe_class *cc;
    const xe_field *f;
    char derived[128];
    int cls;
    size_t k;

    EACH_FIELD(cc, f, cls) {
        (void)cls;
        if (f->name == NULL || f->path == NULL || f->get != NULL
            || strchr(f->path, '>') != NULL)
            continue;
        snprintf(derived, sizeof(derived), "%s", f->path);
        for (k = 0; derived[k] != '\0'; k++)
            if (derived[k] == '_')
                derived[k] = '-';
        cr_expect_str_neq(f->name, derived,
                          "%s %s: the name is the path's, drop it",
                          cc->name, f->name);
    }
}

static const xe_field *field(const char *cls, const char *name)
{
    const xe_field *f = xe_field_find(xe_class_find(cls), name);

    cr_assert_not_null(f, "%s %s", cls, name);
    return f;
}

Test(xe_fields, init_completes_names_and_flags_from_the_model)
{
    const xe_class *cc;
    const xe_field *f;
    int cls;

    cr_assert_eq(xe_fields_init(), 0);
    EACH_FIELD(cc, f, cls) {
        (void)cls;
        cr_expect_not_null(f->name, "%s %s", cc->name, f->path);
    }
    /* Generated setters, an explicit one, maps and sets with their
     * add/remove, deprecation, a set XAPI shows as text. */
    cr_expect_eq(field("vm", "name-label")->flags, XE_F_RW);
    cr_expect_eq(field("vm", "memory-static-max")->flags & XE_F_MODEL,
                 XE_F_RW);
    cr_expect_eq(field("vm", "other-config")->flags,
                 XE_F_MAP | XE_F_MAPRW);
    cr_expect_eq(field("vm", "tags")->flags & XE_F_MODEL,
                 XE_F_SET | XE_F_SETRW);
    cr_expect_eq(field("vm", "ha-always-run")->flags & XE_F_MODEL,
                 XE_F_RW | XE_F_DEPRECATED);
    cr_expect_eq(field("vm", "snapshots")->flags & XE_F_MODEL, 0);
    cr_expect_eq(field("vm", "power-state")->flags, 0);
    /* Through a ref: never writable here. */
    cr_expect_eq(field("vbd", "vm-name-label")->flags, 0);
    /* By hand: is-default-template is RW in XAPI's CLI. */
    cr_expect_eq(field("vm", "is-default-template")->flags & XE_F_MODEL,
                 XE_F_RW);
}
