/*
 * tests/unit/server/test_task_ring.c - the task collector's queue
 * (engine/task.c) seen from inside the engine: tasks that clients destroy
 * themselves leave stale entries, and the ring must stay bounded however
 * many there are (4 x XCP_TASK_MAX + 64 entries before it compacts, so
 * at most twice that allocated).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "../common/engine_fixture.h"

static char dir[256];
static xcp__engine *E;

static void setup(void)
{
    setenv("XCP_TASK_MAX", "5", 1);
    setenv("XCP_TASK_GRACE", "0", 1);
    E = fixture_engine_open(dir, sizeof(dir), "ring");
}

static void teardown(void)
{
    fixture_engine_close(E, dir);
}

TestSuite(task_ring, .init = setup, .fini = teardown);

static char last[XCP_REF_MAX];

/* A task made and finished in one transaction (as a transfer does). */
static int finish_one(xcp__ctx *c, void *arg)
{
    xcp__obj *t;
    int rc;

    (void)arg;
    if ((rc = xcp__task_new(c, "t", "", &t)) < 0 ||
        (rc = xcp__db_set_str(c->db, t, F(task, status), "success")) < 0 ||
        (rc = xcp__task_finished(c, t)) < 0)
        return rc;
    snprintf(last, sizeof(last), "%s", t->ref);
    return 0;
}

static int destroy_last(xcp__ctx *c, void *arg)
{
    xcp__obj *t = xcp__db_get_cls(c->db, C(task), last);

    (void)arg;
    return t ? xcp__db_destroy(c->db, t) : 0;
}

Test(task_ring, stale_entries_do_not_grow_the_ring)
{
    size_t i, bound = 2 * (4 * 5 + 64);

    for (i = 0; i < 20000; i++) {
        cr_assert_eq(xcp__engine_txn(E, finish_one, NULL), 0);
        cr_assert_eq(xcp__engine_txn(E, destroy_last, NULL), 0);
        cr_assert_leq(E->done_cap, bound, "after %zu tasks: %zu entries "
                      "allocated", i + 1, E->done_cap);
    }
    cr_assert_eq(xcp__db_count(E->db, C(task)), 0);
}

Test(task_ring, collected_entries_leave_the_ring)
{
    size_t i;

    for (i = 0; i < 1000; i++)
        cr_assert_eq(xcp__engine_txn(E, finish_one, NULL), 0);
    cr_assert_eq(xcp__db_count(E->db, C(task)), 5);
    cr_assert_eq(E->done_n, 5, "%zu entries for 5 tasks", E->done_n);
}
