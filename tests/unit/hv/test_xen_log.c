/*
 * tests/unit/hv/test_xen_log.c - the xen driver's logger (hv/xen/xen_log.c)
 * keeps what libxl and libxenctrl log as errors, per thread, so a failed
 * call can name libxl's reason. Runs on the host: no Xen needed.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "xen_log.h"

static xentoollog_logger *lg;
static FILE *sink;

static void setup(void)
{
    sink = fopen("/dev/null", "w");
    cr_assert_not_null(sink);
    lg = xcp__xen_log_new(sink);
    cr_assert_not_null(lg);
    xcp__xen_log_reset();
}

static void teardown(void)
{
    xtl_logger_destroy(lg);
    fclose(sink);
}

TestSuite(xen_log, .init = setup, .fini = teardown);

Test(xen_log, keeps_error_with_file_and_errno)
{
    xtl_log(lg, XTL_ERROR, 2, "libxl",
            "libxl_dom.c:581:libxl__build_dom: xc_dom_find_loader failed");
    cr_assert_str_eq(xcp__xen_log_errors(),
                     "libxl_dom.c:581:libxl__build_dom: xc_dom_find_loader "
                     "failed: No such file or directory");
}

Test(xen_log, keeps_several_errors_in_order)
{
    xtl_log(lg, XTL_ERROR, -1, "libxl", "first: %d", 1);
    xtl_log(lg, XTL_CRITICAL, -1, "libxl", "second");
    cr_assert_str_eq(xcp__xen_log_errors(), "first: 1; second");
}

Test(xen_log, ignores_warnings_and_debug)
{
    xtl_log(lg, XTL_WARN, -1, "libxl", "just a warning");
    xtl_log(lg, XTL_DEBUG, -1, "libxl", "chatter");
    cr_assert_str_eq(xcp__xen_log_errors(), "");
}

Test(xen_log, reset_forgets)
{
    xtl_log(lg, XTL_ERROR, -1, "libxl", "old failure");
    xcp__xen_log_reset();
    cr_assert_str_eq(xcp__xen_log_errors(), "");
}

Test(xen_log, bounded_when_flooded)
{
    int i;

    for (i = 0; i < 1000; i++)
        xtl_log(lg, XTL_ERROR, -1, "libxl", "failure number %d", i);
    cr_assert_lt(strlen(xcp__xen_log_errors()), 1024);
    cr_assert(strncmp(xcp__xen_log_errors(), "failure number 0;", 17) == 0,
              "the first (root) cause is kept: %s", xcp__xen_log_errors());
}

static void *other_thread(void *arg)
{
    xtl_log(arg, XTL_ERROR, -1, "libxl", "another thread's failure");
    return (void *)(strcmp(xcp__xen_log_errors(),
                           "another thread's failure") == 0 ? arg : NULL);
}

Test(xen_log, threads_keep_their_own)
{
    pthread_t t;
    void *ok;

    xtl_log(lg, XTL_ERROR, -1, "libxl", "mine");
    cr_assert_eq(pthread_create(&t, NULL, other_thread, lg), 0);
    cr_assert_eq(pthread_join(t, &ok), 0);
    cr_assert_not_null(ok, "the other thread saw its own message only");
    cr_assert_str_eq(xcp__xen_log_errors(), "mine");
}

/* XCP_XEN_LOG_LEVEL: libxl's messages from that level on reach the stream
 * (the daemon's log), dated; errors alone by default. */
static char *logged_with(const char *level)
{
    static char text[4096];
    xentoollog_logger *l;
    FILE *f = tmpfile();
    size_t n;

    cr_assert_not_null(f);
    if (level)
        setenv("XCP_XEN_LOG_LEVEL", level, 1);
    else
        unsetenv("XCP_XEN_LOG_LEVEL");
    l = xcp__xen_log_new(f);
    cr_assert_not_null(l);
    xtl_log(l, XTL_DEBUG, -1, "libxl", "spawning the device model");
    xtl_log(l, XTL_ERROR, -1, "libxl", "device model did not start");
    xtl_logger_destroy(l);
    rewind(f);
    n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    fclose(f);
    unsetenv("XCP_XEN_LOG_LEVEL");
    return text;
}

Test(xen_log, stream_has_errors_only_by_default)
{
    char *t = logged_with(NULL);

    cr_assert(strstr(t, "device model did not start"), "%s", t);
    cr_assert_null(strstr(t, "spawning"), "%s", t);
}

Test(xen_log, level_setting_lets_debug_through_dated)
{
    char *t = logged_with("debug");

    cr_assert(strstr(t, "spawning the device model"), "%s", t);
    cr_assert(strstr(t, "device model did not start"), "%s", t);
    /* xentoollog's date: "YYYY-MM-DD hh:mm:ss ZONE " first */
    cr_assert(t[0] >= '1' && t[0] <= '9' && t[4] == '-' && t[7] == '-' &&
                  t[13] == ':',
              "dated: %s", t);
    cr_assert_null(strstr(logged_with("WARNING"), "spawning"));
    cr_assert_null(strstr(logged_with("chatty"), "spawning"),
                   "an unknown level is error");
}
