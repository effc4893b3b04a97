/*
 * tests/api/test_task_gc.c - the task collector (engine/task.c), as XAPI's
 * db_gc: completed tasks go after XCP_TASK_TIMEOUT seconds, and while
 * there are more than XCP_TASK_MAX tasks the oldest completed ones go;
 * pending tasks are never collected; nor, for being over the limit, tasks
 * that finished less than XCP_TASK_GRACE seconds ago. Runs with
 * XCP_TASK_MAX=5 and (but for the grace test) XCP_TASK_GRACE=0.
 */
#include "helpers.h"

#include <time.h>

static void small_limits(void)
{
    setenv("XCP_TASK_MAX", "5", 1);
    setenv("XCP_TASK_TIMEOUT", "3900", 1);
    setenv("XCP_TASK_GRACE", "0", 1);
    api_setup();
}

TestSuite(task_gc, .init = small_limits, .fini = api_teardown);

static size_t ntasks(void)
{
    xcp_task_set all = {0};
    size_t n;

    OK(xcp_task_get_all(S, &all));
    n = all.n;
    xcp_task_set_dispose(&all);
    return n;
}

static bool exists(xcp_task t)
{
    enum xcp_task_status_type st;
    int rc = xcp_task_get_status(S, &st, t);

    if (rc < 0)
        assert_error(rc, "HANDLE_INVALID", "task", t.ref);
    return rc == 0;
}

/* A manual task (task.create) completed by its owner. */
static xcp_task done_task(const char *label)
{
    xcp_task t;

    OK(xcp_task_create(S, &t, label, ""));
    OK(xcp_task_set_status(S, t, XCP_TASK_STATUS_TYPE_SUCCESS));
    return t;
}

static void wait_done(xcp_task t)
{
    enum xcp_task_status_type st = XCP_TASK_STATUS_TYPE_PENDING;
    int i;

    for (i = 0; i < 1000; i++) {
        OK(xcp_task_get_status(S, &st, t));
        if (st != XCP_TASK_STATUS_TYPE_PENDING &&
            st != XCP_TASK_STATUS_TYPE_CANCELLING)
            return;
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    cr_assert_fail("task %s still pending", t.ref);
}

Test(task_gc, oldest_completed_go_beyond_the_limit)
{
    xcp_task t[12];
    char label[32];
    int i;

    for (i = 0; i < 12; i++) {
        snprintf(label, sizeof(label), "t%d", i);
        t[i] = done_task(label);
        cr_assert_leq(ntasks(), 5, "after task %d: %zu tasks", i, ntasks());
    }
    cr_assert_eq(ntasks(), 5);
    for (i = 0; i < 12; i++)
        cr_assert_eq(exists(t[i]), i >= 7, "task %d %s", i,
                     i >= 7 ? "was collected" : "was kept");
}

Test(task_gc, pending_tasks_are_never_collected)
{
    xcp_task p[8], d;
    int i;

    for (i = 0; i < 8; i++)
        OK(xcp_task_create(S, &p[i], "pending", ""));
    cr_assert_eq(ntasks(), 8, "pending tasks were collected");
    /* Over the limit: a task that completes now goes at once, the
     * pending ones stay. */
    d = done_task("done");
    cr_assert_not(exists(d));
    for (i = 0; i < 8; i++)
        cr_assert(exists(p[i]));
    /* Completing pending ones brings the count back to the limit. */
    for (i = 0; i < 8; i++)
        OK(xcp_task_set_status(S, p[i], XCP_TASK_STATUS_TYPE_FAILURE));
    cr_assert_eq(ntasks(), 5);
    for (i = 0; i < 8; i++)
        cr_assert_eq(exists(p[i]), i >= 3);
}

Test(task_gc, cancelling_is_not_completed)
{
    xcp_task p[6], extra;
    int i;

    for (i = 0; i < 6; i++)
        OK(xcp_task_create(S, &p[i], "p", ""));
    OK(xcp_task_set_status(S, p[0], XCP_TASK_STATUS_TYPE_CANCELLING));
    OK(xcp_task_create(S, &extra, "p", "")); /* one more call */
    cr_assert(exists(p[0]), "a cancelling task was collected");
    OK(xcp_task_set_status(S, p[0], XCP_TASK_STATUS_TYPE_CANCELLED));
    cr_assert_not(exists(p[0]), "a cancelled task over the limit stayed");
}

Test(task_gc, async_tasks_are_collected)
{
    xcp_vm vm = api_install("vm");
    xcp_task t[8];
    char name[32];
    int i;

    for (i = 0; i < 8; i++) {
        snprintf(name, sizeof(name), "clone %d", i);
        OK(xcp_vm_clone_async(S, &t[i], vm, name));
        wait_done(t[i]);
    }
    /* install made none that survive; the last five clones' tasks stay. */
    cr_assert_leq(ntasks(), 5);
    for (i = 0; i < 8; i++)
        cr_assert_eq(exists(t[i]), i >= 3, "task %d", i);
}

Test(task_gc, client_destroyed_tasks_leave_nothing_behind)
{
    xcp_task keep, t;
    int i;

    OK(xcp_task_create(S, &keep, "pending", ""));
    /* Every completed task is destroyed by its client at once, as Xen
     * Orchestra and xcp_task_wait do: the collector's queue must not
     * hold on to them, nor lose the pending task. */
    for (i = 0; i < 3000; i++) {
        t = done_task("x");
        OK(xcp_task_destroy(S, t));
    }
    cr_assert_eq(ntasks(), 1);
    cr_assert(exists(keep));
    /* The collector still works after all that. */
    for (i = 0; i < 7; i++)
        done_task("y");
    cr_assert_eq(ntasks(), 5);
    cr_assert(exists(keep));
}

Test(task_gc, completed_tasks_time_out)
{
    xcp_task old, young, pend;

    setenv("XCP_TASK_TIMEOUT", "1", 1);
    api_reopen();
    OK(xcp_task_create(S, &pend, "pending", ""));
    old = done_task("old");
    /* The clock has whole seconds: finished at T, gone once now > T+1. */
    nanosleep(&(struct timespec){2, 200 * 1000 * 1000}, NULL);
    young = done_task("young");
    cr_assert_not(exists(old), "a completed task outlived its timeout");
    cr_assert(exists(young));
    cr_assert(exists(pend), "a pending task timed out");
}

Test(task_gc, bad_limits_are_refused_at_open)
{
    xcp_session *s = NULL;
    xcp_open_options o;

    memset(&o, 0, sizeof(o));
    o.version = XCP_OPEN_OPTIONS_VERSION;
    o.state_dir = api_dir;
    xcp_session_close(S);
    S = NULL;
    setenv("XCP_TASK_MAX", "lots", 1);
    assert_error(xcp_session_open_local(&s, &o), "INVALID_VALUE",
                 "XCP_TASK_MAX", "lots");
    setenv("XCP_TASK_MAX", "5", 1);
    setenv("XCP_TASK_TIMEOUT", "-1", 1);
    assert_error(xcp_session_open_local(&s, &o), "INVALID_VALUE",
                 "XCP_TASK_TIMEOUT", "-1");
    setenv("XCP_TASK_TIMEOUT", "3900", 1);
    setenv("XCP_TASK_GRACE", "30s", 1);
    assert_error(xcp_session_open_local(&s, &o), "INVALID_VALUE",
                 "XCP_TASK_GRACE", "30s");
    setenv("XCP_TASK_GRACE", "0", 1);
    api_open();
}

/* Over the limit, tasks that have just finished stay for the grace period
 * (default 30 s): with many calls in flight, a client must still be able
 * to read the result of the task it waits for. */
Test(task_gc, just_finished_tasks_stay_for_the_grace_period)
{
    xcp_task t[9];
    int i;

    unsetenv("XCP_TASK_GRACE");
    api_reopen();
    for (i = 0; i < 9; i++)
        t[i] = done_task("burst");
    cr_assert_eq(ntasks(), 9);
    for (i = 0; i < 9; i++)
        cr_assert(exists(t[i]), "task %d went within its grace period", i);
}
