/*
 * Support shared by the rpc codec tests: fixture loading, value builders
 * and comparisons. Not a program of its own: each test_*.c #includes it
 * (Makefile.inc lists it under EXTRA_DIST), which keeps the helpers static
 * and the tests' directory free of headers.
 */
#include <criterion/criterion.h>

#include "rpc/rpc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef RPC_FIXTURES
#define RPC_FIXTURES "tests/unit/rpc/fixtures"
#endif

#define H_UNUSED __attribute__((unused))

/* The bytes of fixture `name` (NUL-terminated, free()); *len its size. */
static H_UNUSED char *fixture(const char *name, size_t *len)
{
    const char *dir = getenv("RPC_FIXTURES");
    char path[512];
    char *data;
    FILE *f;
    long n;

    snprintf(path, sizeof(path), "%s/%s", dir ? dir : RPC_FIXTURES, name);
    f = fopen(path, "rb");
    cr_assert_not_null(f, "fixture %s", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    data = malloc((size_t)n + 1);
    cr_assert_not_null(data);
    cr_assert_eq(fread(data, 1, (size_t)n, f), (size_t)n);
    data[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return data;
}

static H_UNUSED xcp_value v_none(void)
{
    xcp_value v = {.kind = XCP_VAL_NONE};
    return v;
}

static H_UNUSED xcp_value v_str(const char *s)
{
    xcp_value v;
    cr_assert_eq(xcp_value_set_string(&v, s), 0);
    return v;
}

static H_UNUSED xcp_value v_int(int64_t i)
{
    xcp_value v;
    xcp_value_set_int(&v, i);
    return v;
}

static H_UNUSED xcp_value v_float(double f)
{
    xcp_value v;
    xcp_value_set_float(&v, f);
    return v;
}

static H_UNUSED xcp_value v_bool(bool b)
{
    xcp_value v;
    xcp_value_set_bool(&v, b);
    return v;
}

static H_UNUSED xcp_value v_time(xcp_datetime t)
{
    xcp_value v;
    xcp_value_set_datetime(&v, t);
    return v;
}

/* An array of n values given by value (moved in). */
static H_UNUSED xcp_value v_arr(size_t n, ...)
{
    xcp_value v;
    va_list ap;
    size_t i;

    cr_assert_eq(xcp_value_set_array(&v, n), 0);
    va_start(ap, n);
    for (i = 0; i < n; i++)
        v.u.arr.items[i] = va_arg(ap, xcp_value);
    va_end(ap);
    return v;
}

/* A struct of n (const char *key, xcp_value value) pairs. */
static H_UNUSED xcp_value v_struct(size_t n, ...)
{
    xcp_value v, m;
    const char *k;
    va_list ap;
    size_t i;

    xcp_value_set_struct(&v);
    va_start(ap, n);
    for (i = 0; i < n; i++) {
        k = va_arg(ap, const char *);
        m = va_arg(ap, xcp_value);
        cr_assert_eq(xcp_value_struct_add(&v, k, &m), 0);
    }
    va_end(ap);
    return v;
}

/* A VM record with a few fields set and the rest NONE. */
static H_UNUSED xcp_value v_vm_record(void)
{
    int cls = xcp_class_by_name("VM");
    xcp_value v;

    cr_assert_geq(cls, 0);
    cr_assert_eq(xcp__rec_alloc(&v, cls), 0);
    v.u.rec.fields[xcp_class_field_index(cls, "uuid")] =
        v_str("5f0a6b2e-1c3d-4e5f-8a9b-0c1d2e3f4a5b");
    v.u.rec.fields[xcp_class_field_index(cls, "name_label")] =
        v_str("vm <1>");
    v.u.rec.fields[xcp_class_field_index(cls, "memory_static_max")] =
        v_int(INT64_C(1) << 40);
    v.u.rec.fields[xcp_class_field_index(cls, "is_a_template")] =
        v_bool(false);
    return v;
}

/* A value holding every kind (records aside) at some depth. */
static H_UNUSED xcp_value v_everything(void)
{
    return v_struct(
        10, "s", v_str("a <b> & \"c\" \t\n é ☃ 😀"), "empty", v_str(""),
        "big", v_int(INT64_C(1) << 40), "min", v_int(INT64_MIN), "f",
        v_float(0.1), "t", v_bool(true), "when", v_time(1742357784),
        "list", v_arr(3, v_str("x"), v_arr(0), v_struct(0)), "map",
        v_struct(2, "k&<>", v_str("v"), "n", v_float(-2.5)), "neg",
        v_int(-7));
}

static H_UNUSED void assert_value_eq(const xcp_value *a, const xcp_value *b)
{
    char *ta = xcp_value_to_text(a), *tb = xcp_value_to_text(b);

    cr_assert(xcp__value_equal(a, b), "values differ: [%s] vs [%s]",
              ta ? ta : "?", tb ? tb : "?");
    free(ta);
    free(tb);
}

/* Finish a buffer into a string (free()). */
static H_UNUSED char *buf_str(xcp__buf *b)
{
    char *s = xcp__buf_steal(b);

    cr_assert_not_null(s);
    return s;
}

/* Assert that the encoder output s equals fixture `name` byte for byte. */
static H_UNUSED void assert_fixture(const char *s, const char *name)
{
    size_t n;
    char *want = fixture(name, &n);

    cr_assert_str_eq(s, want, "output differs from %s", name);
    free(want);
}
