/*
 * tests/unit/pool/test_snapshot.c - state transfer (lib/libxcp/pool/
 * snapshot.c, docs/design-pool.md §5.1, §6): engine A's database encoded
 * at its seq, staged in another state directory B and put in place before
 * B's database is opened, replaces B's own database (rows, seq), whatever
 * B held; text that is not a snapshot is refused and stages nothing; an
 * ejected host's reset removes its replica and pool files but keeps its
 * host-uuid.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../api/helpers.h"
#include "engine/engine.h"
#include "pool/pool.h"

static char bdir[300];

static void setup(void)
{
    api_setup();
    snprintf(bdir, sizeof(bdir), "%s.other", api_dir);
    cr_assert(mkdir(bdir, 0700) == 0 || errno == EEXIST);
}

static void teardown(void)
{
    static const char *const names[] = {"db.snap", "db.journal",
                                        "pool-db.snap", "pool-reset",
                                        "pool-role", "pool-secret",
                                        "host-uuid"};
    char p[400];
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", bdir, names[i]);
        unlink(p);
    }
    rmdir(bdir);
    api_teardown();
}

TestSuite(pool_snapshot, .init = setup, .fini = teardown);

static bool exists_in(const char *dir, const char *name)
{
    char p[400];

    snprintf(p, sizeof(p), "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

static void put_file(const char *dir, const char *name, const char *text)
{
    char p[400];
    FILE *f;

    snprintf(p, sizeof(p), "%s/%s", dir, name);
    cr_assert_not_null(f = fopen(p, "w"));
    fputs(text, f);
    fclose(f);
}

/* A's database as snapshot text, and its seq. */
static char *encode_a(uint64_t *seq)
{
    xcp_open_options o = {XCP_OPEN_OPTIONS_VERSION};
    xcp__engine *e;
    xcp__buf b = {0};
    char *text;

    o.state_dir = api_dir;
    cr_assert(xcp__engine_get(&e, &o) == 0);
    pthread_mutex_lock(&e->lock);
    *seq = xcp__db_seq(e->db);
    cr_assert(xcp__pool_snapshot_encode(e->db, &b) == 0);
    pthread_mutex_unlock(&e->lock);
    xcp__engine_put(e);
    cr_assert(!b.oom);
    cr_assert_not_null(text = xcp__buf_steal(&b));
    return text;
}

/* B as a database of its own: one VM (named name), committed three times
 * so that its journal runs past A's seq. */
static void own_database(const char *name)
{
    xcp__db *db;
    xcp__obj *vm;
    int i;

    cr_assert(xcp__db_open(&db, bdir) == 0);
    xcp__db_begin(db);
    cr_assert(xcp__db_create(db, C(VM), NULL, NULL, &vm) == 0);
    cr_assert(xcp__db_set_str(db, vm, F(VM, name_label), name) == 0);
    cr_assert(xcp__db_commit(db) == 0);
    for (i = 0; i < 40; i++) {
        xcp__db_begin(db);
        cr_assert(xcp__db_set_str(db, vm, F(VM, name_description),
                                  i % 2 ? "a" : "b") == 0);
        cr_assert(xcp__db_commit(db) == 0);
    }
    xcp__db_close(db);
}

Test(pool_snapshot, staged_database_replaces_the_hosts_own_at_its_seq)
{
    xcp_vm web, tpl = api_template(T_DEBIAN);
    uint64_t seq, staged = 0;
    char *text, uuid[64];
    xcp__db *db;
    size_t n;

    cr_assert(xcp_vm_clone(S, &web, tpl, "web1") == 0);
    {
        char *u = NULL;
        cr_assert(xcp_vm_get_uuid(S, &u, web) == 0);
        snprintf(uuid, sizeof(uuid), "%s", u);
        xcp_free(u);
    }
    own_database("b-only");
    text = encode_a(&seq);
    cr_assert(xcp__pool_snapshot_stage(bdir, text, strlen(text), &staged)
              == 0);
    cr_assert_eq(staged, seq);
    /* Nothing changes before the next opening. */
    cr_assert(exists_in(bdir, "db.journal"));
    cr_assert(xcp__pool_snapshot_apply(bdir) == 0);
    cr_assert(!exists_in(bdir, "pool-db.snap"));
    cr_assert(!exists_in(bdir, "db.journal"));
    cr_assert(xcp__db_open(&db, bdir) == 0);
    cr_assert_eq(xcp__db_seq(db), seq);
    cr_assert_not_null(xcp__db_by_uuid(db, C(VM), uuid));
    xcp__db_by_name(db, C(VM), "b-only", &n);
    cr_assert_eq(n, 0, "B's own row survived the transfer");
    xcp__db_close(db);
    /* Applying again is a no-op. */
    cr_assert(xcp__pool_snapshot_apply(bdir) == 0);
    cr_assert(exists_in(bdir, "db.snap"));
    free(text);
}

Test(pool_snapshot, text_that_is_not_a_snapshot_is_refused)
{
    static const char *const bad[] = {"", "garbage\n",
                                      "00000000 XCPDB 9 1 2\nEND 0\n",
                                      "00000000 XCPDB 2 1 2"};
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert(xcp__pool_snapshot_stage(bdir, bad[i], strlen(bad[i]),
                                           NULL) < 0, "%zu accepted", i);
        cr_assert_str_eq(xcp_error_last()->name, "INTERNAL_ERROR");
        cr_assert(!exists_in(bdir, "pool-db.snap"));
    }
}

/* A snapshot whose header is right but whose body was damaged is refused
 * when it is staged (loaded apart), not at the next open, which would
 * have dropped the host's journal before it failed. */
Test(pool_snapshot, damaged_snapshot_is_refused_before_it_is_staged)
{
    uint64_t seq;
    char *text, *mid;
    size_t len;

    own_database("b-only");
    text = encode_a(&seq);
    len = strlen(text);
    mid = text + len / 2;
    *mid = *mid == 'x' ? 'y' : 'x';
    cr_assert(xcp__pool_snapshot_stage(bdir, text, len, NULL) < 0);
    cr_assert(!exists_in(bdir, "pool-db.snap"));
    cr_assert(xcp__pool_snapshot_apply(bdir) == 0);
    cr_assert(exists_in(bdir, "db.journal"), "the host's own kept");
    free(text);
}

Test(pool_snapshot, reset_drops_the_replica_and_pool_files_keeps_the_uuid)
{
    own_database("member");
    put_file(bdir, "pool-role", "member 10.0.0.1 1\n");
    put_file(bdir, "pool-secret", "00");
    put_file(bdir, "host-uuid", "2d5c1ae3-7a62-4c9c-9d1e-4d0f6c1b2e3f");
    cr_assert(xcp__pool_reset_stage(bdir) == 0);
    cr_assert(exists_in(bdir, "pool-role"), "reset before the next open");
    cr_assert(xcp__pool_snapshot_apply(bdir) == 0);
    cr_assert(!exists_in(bdir, "db.journal"));
    cr_assert(!exists_in(bdir, "db.snap"));
    cr_assert(!exists_in(bdir, "pool-role"));
    cr_assert(!exists_in(bdir, "pool-secret"));
    cr_assert(!exists_in(bdir, "pool-reset"));
    cr_assert(exists_in(bdir, "host-uuid"));
}

Test(pool_snapshot, role_is_written_whole)
{
    char p[400], buf[64] = "";
    FILE *f;

    cr_assert(xcp__pool_role_write(bdir, "coordinator 3") == 0);
    snprintf(p, sizeof(p), "%s/pool-role", bdir);
    cr_assert_not_null(f = fopen(p, "r"));
    cr_assert_not_null(fgets(buf, sizeof(buf), f));
    fclose(f);
    cr_assert_str_eq(buf, "coordinator 3\n");
    cr_assert(!exists_in(bdir, "pool-role.tmp"));
    cr_assert(xcp__pool_role_member(bdir) == false);
    cr_assert(xcp__pool_role_write(bdir, "member 10.0.0.1 3") == 0);
    cr_assert(xcp__pool_role_member(bdir));
}
