/*
 * tests/unit/sr/test_sr_layer.c - the SR layer from inside the engine:
 * work queued on a transaction (xcp__db_after_commit) runs only once its
 * commit is in the journal and is dropped by an abort, so an image is
 * deleted only after the commit that drops its record (a rolled back or
 * killed call never leaves a record without its image).  The open-time
 * collector pass asks for a background pass only when it left a leaf
 * coalesce (issue 10, review item 4a: every open walked every chain
 * twice).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/storage.h"
#include "../common/engine_fixture.h"

static char dir[256];
static xcp__engine *E;

static void setup(void)
{
    E = fixture_engine_open(dir, sizeof(dir), "srl");
}

static void teardown(void)
{
    fixture_engine_close(E, dir);
}

TestSuite(after_commit, .init = setup, .fini = teardown);
TestSuite(vdi_delete, .init = setup, .fini = teardown);
TestSuite(open_gc, .init = setup, .fini = teardown);

/* ---- the hook ---- */

struct seen {
    int calls;
    bool committed;
    uint64_t gen;               /* the database's generation then */
};

static void note_outcome(void *arg, bool committed)
{
    struct seen *s = arg;

    s->calls++;
    s->committed = committed;
    s->gen = xcp__db_generation(E->db);
}

/* A persistent change: a task's name. */
static int change(xcp__ctx *c, const char *label)
{
    xcp__obj *t;
    int rc = xcp__task_new(c, label, "", &t);

    return rc;
}

struct hook_case {
    struct seen seen;
    bool fail;
    bool nested;
};

static int hook_txn(xcp__ctx *c, void *arg)
{
    struct hook_case *h = arg;
    int rc;

    if ((rc = change(c, "hook")) < 0)
        return rc;
    if (h->nested)
        xcp__db_begin(c->db);
    cr_assert_eq(xcp__db_after_commit(c->db, note_outcome, &h->seen), 0);
    if (h->nested) {
        cr_assert_eq(xcp__db_commit(c->db), 0);
        cr_expect_eq(h->seen.calls, 0, "ran at an inner commit");
    }
    cr_expect_eq(h->seen.calls, 0, "ran before the commit");
    return h->fail ? XCP__ERR_INTERNAL_ERROR("test") : 0;
}

Test(after_commit, runs_once_after_the_commit)
{
    struct hook_case h = {{0, false, 0}, false, false};
    uint64_t before = xcp__db_generation(E->db);

    cr_assert_eq(xcp__engine_txn(E, hook_txn, &h), 0);
    cr_expect_eq(h.seen.calls, 1);
    cr_expect(h.seen.committed);
    cr_expect_gt(h.seen.gen, before, "ran before the new generation");
}

Test(after_commit, is_told_of_an_abort)
{
    struct hook_case h = {{0, false, 0}, true, false};

    cr_assert_lt(xcp__engine_txn(E, hook_txn, &h), 0);
    cr_expect_eq(h.seen.calls, 1);
    cr_expect_not(h.seen.committed);
}

Test(after_commit, waits_for_the_outermost_commit)
{
    struct hook_case h = {{0, false, 0}, false, true};

    cr_assert_eq(xcp__engine_txn(E, hook_txn, &h), 0);
    cr_expect_eq(h.seen.calls, 1);
    cr_expect(h.seen.committed);
}

/* ---- VDI deletion ---- */

struct vdi_case {
    char ref[XCP_REF_MAX];
    char path[XCP_SR_PATH_MAX];
    bool fail;
};

static int make_vdi(xcp__ctx *c, void *arg)
{
    struct vdi_case *v = arg;
    xcp_sr_vdi_path p;
    xcp__obj *vdi;
    int rc;

    if ((rc = xcp__vdi_new(c, xcp__default_sr(c), "doomed", "", 1 << 20,
                           "user", NULL, &vdi)) < 0 ||
        (rc = xcp__vdi_path(c, vdi, &p)) < 0)
        return rc;
    snprintf(v->ref, sizeof(v->ref), "%s", vdi->ref);
    snprintf(v->path, sizeof(v->path), "%s", p.path);
    return 0;
}

/* Delete the VDI, then fail (the call is rolled back) or not. */
static int delete_vdi(xcp__ctx *c, void *arg)
{
    struct vdi_case *v = arg;
    xcp__obj *vdi = xcp__db_get(c->db, v->ref);
    struct stat st;
    int rc;

    cr_assert_not_null(vdi);
    if ((rc = xcp__vdi_delete(c, vdi)) < 0)
        return rc;
    /* A kill here must find the image with its record. */
    cr_expect_eq(stat(v->path, &st), 0, "%s deleted before the commit",
                 v->path);
    return v->fail ? XCP__ERR_INTERNAL_ERROR("test") : 0;
}

Test(vdi_delete, a_rolled_back_delete_keeps_the_image)
{
    struct vdi_case v = {"", "", true};
    struct stat st;

    cr_assert_eq(xcp__engine_txn(E, make_vdi, &v), 0);
    cr_assert_lt(xcp__engine_txn(E, delete_vdi, &v), 0);
    pthread_mutex_lock(&E->lock);
    cr_expect_not_null(xcp__db_get(E->db, v.ref), "the record went");
    pthread_mutex_unlock(&E->lock);
    cr_expect_eq(stat(v.path, &st), 0, "the record's image %s went",
                 v.path);
}

Test(vdi_delete, the_image_goes_with_the_commit)
{
    struct vdi_case v = {"", "", false};
    struct stat st;

    cr_assert_eq(xcp__engine_txn(E, make_vdi, &v), 0);
    cr_assert_eq(xcp__engine_txn(E, delete_vdi, &v), 0);
    cr_expect_lt(stat(v.path, &st), 0, "%s outlived its record", v.path);
}

/* ---- the collector at open ---- */

static unsigned passes(void)
{
    unsigned n;

    pthread_mutex_lock(&E->lock);
    n = E->gc_passes;
    pthread_mutex_unlock(&E->lock);
    return n;
}

/* Before: every open requested a background pass after its own, which
 * walked every SR's chains again (the thread starts it at once: the
 * request precedes the thread).  With nothing left, none runs (waited
 * for a second; a request would be taken in milliseconds). */
Test(open_gc, no_background_pass_when_the_open_pass_left_nothing)
{
    int i;

    for (i = 0; i < 10 && passes() == 0; i++)
        usleep(100 * 1000);
    cr_assert_eq(passes(), 0, "the collector ran %u pass(es) after an open "
                 "that left no leaf to coalesce", passes());
}
