/*
 * tests/api/test_interrupt.c - xcp_session_interrupt() on a local session:
 * a long poll (event.from, xcp_task_wait) blocked in one thread returns
 * at once with XCP_EINTR / INTERRUPTED when another thread interrupts its
 * session; the session stays interrupted until xcp_session_resume(); other
 * sessions' waits are not disturbed. (Remote sessions: bindings/go's
 * tests, against xcpd.)
 */
#include "helpers.h"

#include <pthread.h>
#include <time.h>
#include <unistd.h>

TestSuite(interrupt, .init = api_setup, .fini = api_teardown);

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct waiter {
    xcp_session *s;
    const char *task; /* NULL: event.from on VM */
    double timeout;
    int rc;
    char name[64];
    double took;
};

static void *wait_run(void *arg)
{
    struct waiter *w = arg;
    xcp_string_set cls = {0};
    xcp_value res = {0}, tok = {0};
    double t0;

    xcp_string_set_add(&cls, "VM");
    /* Start from now: the first answer would otherwise be every VM. */
    xcp_event_from(w->s, &tok, &cls, "", 0);
    t0 = now_s();
    if (w->task)
        w->rc = xcp_task_wait(w->s, &res, w->task);
    else
        w->rc = xcp_event_from(w->s, &res, &cls,
                               xcp_value_struct_get(&tok, "token")->u.s,
                               w->timeout);
    w->took = now_s() - t0;
    if (w->rc < 0)
        snprintf(w->name, sizeof(w->name), "%s", xcp_error_last()->name);
    xcp_value_dispose(&res);
    xcp_value_dispose(&tok);
    xcp_string_set_dispose(&cls);
    return NULL;
}

static void assert_interrupted(int rc)
{
    cr_assert_eq(rc, XCP_EINTR, "rc %d", rc);
    cr_assert_str_eq(xcp_error_last()->name, "INTERRUPTED");
    cr_assert_eq(xcp_error_last()->nparams, 0);
}

Test(interrupt, event_from_returns_at_once_and_session_stays_interrupted)
{
    struct waiter w = {S, NULL, 60.0, 0, "", 0};
    xcp_vm_set vms = {0};
    pthread_t th;

    cr_assert_eq(pthread_create(&th, NULL, wait_run, &w), 0);
    usleep(300 * 1000);
    xcp_session_interrupt(S);
    pthread_join(th, NULL);
    cr_assert_eq(w.rc, XCP_EINTR, "rc %d (%s)", w.rc, w.name);
    cr_assert_str_eq(w.name, "INTERRUPTED");
    cr_assert_lt(w.took, 5.0, "took %.1f s", w.took);
    cr_assert(xcp_session_interrupted(S));
    /* Until resumed, every call fails at once. */
    assert_interrupted(xcp_vm_get_all(S, &vms));
    xcp_session_resume(S);
    cr_assert_not(xcp_session_interrupted(S));
    cr_assert_eq(xcp_vm_get_all(S, &vms), 0, "%s", xcp_error_last()->name);
    xcp_vm_set_dispose(&vms);
}

Test(interrupt, before_the_call_fails_it_without_waiting)
{
    xcp_string_set cls = {0};
    xcp_value res = {0};
    double t0 = now_s();

    xcp_session_interrupt(S);
    xcp_session_interrupt(S); /* twice is once */
    xcp_string_set_add(&cls, "VM");
    assert_interrupted(xcp_event_from(S, &res, &cls, "", 30.0));
    cr_assert_lt(now_s() - t0, 1.0);
    xcp_session_resume(S);
    cr_assert_eq(xcp_event_from(S, &res, &cls, "", 0), 0);
    xcp_value_dispose(&res);
    xcp_string_set_dispose(&cls);
    xcp_session_resume(S); /* not interrupted: nothing happens */
    cr_assert_not(xcp_session_interrupted(S));
}

Test(interrupt, task_wait_returns_and_leaves_the_task)
{
    xcp_task task;
    struct waiter w = {S, NULL, 0, 0, "", 0};
    enum xcp_task_status_type st;
    pthread_t th;

    cr_assert_eq(xcp_task_create(S, &task, "pending", "never finishes"), 0);
    w.task = task.ref;
    cr_assert_eq(pthread_create(&th, NULL, wait_run, &w), 0);
    usleep(300 * 1000);
    xcp_session_interrupt(S);
    pthread_join(th, NULL);
    cr_assert_eq(w.rc, XCP_EINTR, "rc %d (%s)", w.rc, w.name);
    cr_assert_lt(w.took, 5.0);
    xcp_session_resume(S);
    cr_assert_eq(xcp_task_get_status(S, &st, task), 0, "%s",
                 xcp_error_last()->name);
    cr_assert_eq(st, XCP_TASK_STATUS_TYPE_PENDING);
}

Test(interrupt, other_sessions_keep_waiting)
{
    xcp_session *other = api_session("other");
    struct waiter w = {other, NULL, 1.5, 0, "", 0};
    pthread_t th;

    cr_assert_eq(pthread_create(&th, NULL, wait_run, &w), 0);
    usleep(200 * 1000);
    xcp_session_interrupt(S);
    pthread_join(th, NULL);
    cr_assert_eq(w.rc, 0, "rc %d (%s)", w.rc, w.name);
    cr_assert_gt(w.took, 1.2, "woke after %.2f s", w.took);
    cr_assert_not(xcp_session_interrupted(other));
    xcp_session_resume(S);
    xcp_session_close(other);
}
