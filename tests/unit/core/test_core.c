/*
 * test_core.c - core on its own: this program links core's sources and no
 * other part of the library (tests/unit/core/Makefile.inc), so it builds
 * only while core depends on nothing else of ours. It checks the helpers
 * the other layers and the drivers take from core.
 */
#include <criterion/criterion.h>

#include "core.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void assert_error(const char *name, size_t n, const char *const *p)
{
    const xcp_error *e = xcp_error_last();
    size_t i;

    cr_assert_not_null(e);
    cr_assert_str_eq(e->name, name);
    cr_assert_eq(e->nparams, n);
    for (i = 0; i < n; i++)
        cr_assert_str_eq(e->params[i], p[i]);
}

Test(core_uuid, generated_uuids_are_valid_and_lower_case)
{
    char u[37];
    int i;

    for (i = 0; i < 100; i++) {
        xcp__uuid_gen(u);
        cr_assert(xcp__uuid_valid(u), "%s", u);
        cr_assert(xcp__uuid_lower_prefix(u), "%s", u);
        cr_assert_eq(u[14], '4'); /* version 4 */
    }
}

Test(core_uuid, lower_prefix_wants_lower_case_and_stops_at_nul)
{
    const char *lower = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0";
    const char *upper = "0F1E2D3C-4B5A-4968-8776-A5B4C3D2E1F0";

    cr_assert(xcp__uuid_valid(upper));
    cr_assert_not(xcp__uuid_lower_prefix(upper));
    cr_assert(xcp__uuid_lower_prefix("0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
                                     ".qcow2"));
    cr_assert_not(xcp__uuid_valid("0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0x"));
    cr_assert_not(xcp__uuid_lower_prefix("0f1e2d3c-4b5a"));
    cr_assert_not(xcp__uuid_lower_prefix(""));
    cr_assert_not(xcp__uuid_lower_prefix("0f1e2d3c4b5a-4968-8776-a5b4c3d2e1f0"
                                         "0"));
    cr_assert_not(xcp__uuid_valid(NULL));
    cr_assert(xcp__uuid_valid(lower));
}

Test(core_path, mkdir_p_makes_parents_and_accepts_existing)
{
    char base[] = "/tmp/xcp-core-XXXXXX", path[256], file[256];
    struct stat st;
    FILE *f;

    cr_assert_not_null(mkdtemp(base));
    snprintf(path, sizeof(path), "%s/a/b/c", base);
    cr_assert_eq(xcp__mkdir_p(path, 0700), 0);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert(S_ISDIR(st.st_mode));
    cr_assert_eq(st.st_mode & 0777, 0700);
    cr_assert_eq(xcp__mkdir_p(path, 0700), 0);

    snprintf(file, sizeof(file), "%s/file", base);
    f = fopen(file, "w");
    cr_assert_not_null(f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/file/d", base);
    cr_assert_eq(xcp__mkdir_p(path, 0755), -ENOTDIR);

    unlink(file);
    snprintf(path, sizeof(path), "%s/a/b/c", base);
    rmdir(path);
    snprintf(path, sizeof(path), "%s/a/b", base);
    rmdir(path);
    snprintf(path, sizeof(path), "%s/a", base);
    rmdir(path);
    cr_assert_eq(rmdir(base), 0);
}

Test(core_path, mkdir_p_refuses_a_path_beyond_path_max)
{
    static char path[PATH_MAX + 16];

    memset(path, 'a', sizeof(path) - 1);
    path[0] = '/';
    cr_assert_eq(xcp__mkdir_p(path, 0700), -ENAMETOOLONG);
}

Test(core_num, doubles_round_trip_with_a_dot)
{
    char buf[64];
    double d = 0;

    xcp__format_double(buf, sizeof(buf), 16, 2.25);
    cr_assert_str_eq(buf, "2.25");
    cr_assert_eq(xcp__parse_double("2.25", &d), 0);
    cr_assert_eq(d, 2.25);
    cr_assert_eq(xcp__parse_double("", &d), XCP_EINVAL);
    cr_assert_eq(xcp__parse_double("1.5x", &d), XCP_EINVAL);
}

Test(core_env, env_int_takes_a_default_a_count_or_fails_invalid_value)
{
    int64_t v = -1;
    const char *p[] = {"XCP_CORE_TEST_INT", "-3"};

    unsetenv("XCP_CORE_TEST_INT");
    cr_assert_eq(xcp__env_int("XCP_CORE_TEST_INT", 7, &v), 0);
    cr_assert_eq(v, 7);
    setenv("XCP_CORE_TEST_INT", "", 1);
    cr_assert_eq(xcp__env_int("XCP_CORE_TEST_INT", 7, &v), 0);
    cr_assert_eq(v, 7);
    setenv("XCP_CORE_TEST_INT", "42", 1);
    cr_assert_eq(xcp__env_int("XCP_CORE_TEST_INT", 7, &v), 0);
    cr_assert_eq(v, 42);
    setenv("XCP_CORE_TEST_INT", "-3", 1);
    cr_assert_eq(xcp__env_int("XCP_CORE_TEST_INT", 7, &v), XCP_EAPI);
    assert_error("INVALID_VALUE", 2, p);
    unsetenv("XCP_CORE_TEST_INT");
}

Test(core_error, fail_sets_the_thread_error_with_its_parameters)
{
    const char *p[] = {"VM", "OpaqueRef:x"};

    cr_assert_eq(XCP__ERR_HANDLE_INVALID("VM", "OpaqueRef:x"), XCP_EAPI);
    assert_error("HANDLE_INVALID", 2, p);
    xcp_error_clear();
    cr_assert_null(xcp_error_last());
}

Test(core_env, env_str_falls_back_on_the_default_when_unset_or_empty)
{
    unsetenv("XCP_CORE_TEST_STR");
    cr_assert_str_eq(xcp__env_str("XCP_CORE_TEST_STR", "dflt"), "dflt");
    setenv("XCP_CORE_TEST_STR", "", 1);
    cr_assert_str_eq(xcp__env_str("XCP_CORE_TEST_STR", "dflt"), "dflt");
    setenv("XCP_CORE_TEST_STR", "a:b", 1);
    cr_assert_str_eq(xcp__env_str("XCP_CORE_TEST_STR", "dflt"), "a:b");
    unsetenv("XCP_CORE_TEST_STR");
}

/* Every negative return of the public API sets the thread's error (issue 8
 * item 8): a datetime that does not parse names the text. */
Test(core_value, datetime_parse_failure_sets_the_thread_error)
{
    static const char *const bad[] = {"garbage", "20240611T25:05:59Z",
                                      "2024-13-11T08:05:59Z",
                                      "20240611T08:05:59Z+1"};
    xcp_datetime t = 42;
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *p[] = {"datetime", bad[i]};
        xcp_error_clear();
        cr_assert_lt(xcp_datetime_parse(&t, bad[i]), 0, "%s", bad[i]);
        assert_error("INVALID_VALUE", 2, p);
        cr_assert_eq(t, 42, "*out untouched on failure");
    }
    {
        const char *p[] = {"datetime", ""};
        xcp_error_clear();
        cr_assert_lt(xcp_datetime_parse(&t, NULL), 0);
        assert_error("INVALID_VALUE", 2, p);
    }
    xcp_error_clear();
    cr_assert_eq(xcp_datetime_parse(&t, "2024-06-11T08:05:59+02:00"), 0);
    cr_assert_eq(t, 1718093159 - 7200); /* 2024-06-11T06:05:59Z */
}

/* A library loaded at first use: every function found, or none set and
 * the reason given (no such library; a missing function). */
Test(core_dl, loads_resolves_and_says_why_not)
{
    unsigned long (*crc)(unsigned long, const unsigned char *, unsigned) =
        NULL;
    void *other = NULL;
    xcp__dl_sym ok[] = {{(void **)&crc, "crc32"}};
    xcp__dl_sym missing[] = {{(void **)&crc, "crc32"},
                             {&other, "no_such_function_in_zlib"}};
    char why[256] = "";

    cr_assert_eq(xcp__dl_load("libz.so.1", ok, 1, why, sizeof(why)), 0,
                 "%s", why);
    cr_assert_not_null(crc);
    cr_assert_eq(crc(0, (const unsigned char *)"abc", 3), 0x352441c2UL);

    cr_assert_lt(xcp__dl_load("libz.so.1", missing, 2, why, sizeof(why)),
                 0);
    cr_assert_null(crc, "a failed load leaves no function half-set");
    cr_assert_null(other);
    cr_assert_not_null(strstr(why, "no_such_function_in_zlib"), "%s", why);

    cr_assert_lt(xcp__dl_load("libxcp-no-such-library.so.9", ok, 1, why,
                              sizeof(why)), 0);
    cr_assert_not_null(strstr(why, "libxcp-no-such-library"), "%s", why);
}
