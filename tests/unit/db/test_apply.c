/*
 * tests/unit/db/test_apply.c - a member's apply path (xcp__db_apply,
 * docs/design-pool.md §2): the journal bodies engine A wrote for API
 * changes, applied in order to a replica B (a second state directory),
 * leave B's rows equal to A's, in memory and after B is loaded again from
 * its own files; a body out of order, damaged or at odds with the replica
 * is refused and changes nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../api/helpers.h"
#include "engine/engine.h"

static char bdir[300];
/* An engine whose lock the test holds: released at teardown when an
 * assertion ends the test early (the session's close needs it). */
static xcp__engine *held;

static void lock_a(xcp__engine *e)
{
    pthread_mutex_lock(&e->lock);
    held = e;
}

static void unlock_a(xcp__engine *e)
{
    held = NULL;
    pthread_mutex_unlock(&e->lock);
}

static void setup(void)
{
    api_setup();
    snprintf(bdir, sizeof(bdir), "%s.replica", api_dir);
    cr_assert(mkdir(bdir, 0700) == 0 || errno == EEXIST);
}

static void teardown(void)
{
    char cmd[700];

    if (held)
        unlock_a(held);
    api_teardown();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", bdir);
    cr_assert(system(cmd) == 0);
}

TestSuite(db_apply, .init = setup, .fini = teardown);

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (!f) {
        *len = 0;
        return strdup("");
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    cr_assert(buf);
    cr_assert(fread(buf, 1, (size_t)n, f) == (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void copy(const char *from, const char *to)
{
    size_t len;
    char *buf = slurp(from, &len);
    FILE *f = fopen(to, "wb");

    cr_assert(f);
    cr_assert(fwrite(buf, 1, len, f) == len);
    fclose(f);
    free(buf);
}

/* The journal lines of dir with seq > after, as (seq, body without seq). */
struct rec {
    uint64_t seq;
    char *body;
};

static size_t journal_records(const char *dir, uint64_t after,
                              struct rec *out, size_t max)
{
    char path[400], *buf, *line, *nl;
    size_t len, n = 0;

    snprintf(path, sizeof(path), "%s/db.journal", dir);
    buf = slurp(path, &len);
    for (line = buf; (nl = strchr(line, '\n')); line = nl + 1) {
        uint64_t gen, seq;
        int at = 0, end = 0;
        *nl = '\0';
        /* "<crc> T <gen> <seq> ops" */
        cr_assert(sscanf(line + 9, "T %" SCNu64 "%n %" SCNu64 "%n", &gen,
                         &at, &seq, &end) == 2,
                  "journal line: %s", line);
        if (seq <= after)
            continue;
        cr_assert(n < max);
        out[n].seq = seq;
        out[n].body = malloc(strlen(line) + 1);
        memcpy(out[n].body, line + 9, (size_t)at);
        strcpy(out[n].body + at, line + 9 + end);
        n++;
    }
    free(buf);
    return n;
}

/* Every persistent row of a is in b with the same fields (derived ones
 * included), and b has no other. */
static void assert_same(xcp__db *a, xcp__db *b)
{
    int c;

    for (c = 0; c < xcp__nclasses; c++) {
        const struct xcp__class *k = &xcp__classes[c];
        xcp__obj *const *objs;
        size_t i, n, f;
        if (k->flags & (XK_VOLATILE | XK_NODB))
            continue;
        objs = xcp__db_all(a, c, &n);
        cr_assert_eq(xcp__db_count(b, c), n, "%s: %zu rows here, %zu there",
                     k->name, xcp__db_count(b, c), n);
        for (i = 0; i < n; i++) {
            xcp__obj *o = xcp__db_get_cls(b, c, objs[i]->ref);
            cr_assert(o, "%s %s missing from the replica", k->name,
                      objs[i]->ref);
            for (f = 0; f < k->nfields; f++)
                cr_assert(xcp__value_equal(&objs[i]->f[f], &o->f[f]),
                          "%s %s: field %s differs", k->name, o->ref,
                          k->fields[f].name);
        }
    }
}

static unsigned commits;
static uint64_t last_gen;

static void counted(void *arg, uint64_t gen)
{
    (void)arg;
    commits++;
    last_gen = gen;
}

static xcp__engine *engine_a(void)
{
    xcp_open_options o = {XCP_OPEN_OPTIONS_VERSION};
    xcp__engine *e;

    o.state_dir = api_dir;
    cr_assert(xcp__engine_get(&e, &o) == 0);
    return e;
}

/* Baseline: B starts as a copy of A's files; then A changes things
 * through the API. Returns A's journal seq at the copy. */
static uint64_t baseline(void)
{
    char from[400], to[400];
    xcp__engine *e = engine_a();
    uint64_t seq;

    lock_a(e);
    seq = xcp__db_seq(e->db);
    snprintf(from, sizeof(from), "%s/db.snap", api_dir);
    snprintf(to, sizeof(to), "%s/db.snap", bdir);
    if (access(from, F_OK) == 0)
        copy(from, to);
    snprintf(from, sizeof(from), "%s/db.journal", api_dir);
    snprintf(to, sizeof(to), "%s/db.journal", bdir);
    copy(from, to);
    unlock_a(e);
    xcp__engine_put(e);
    return seq;
}

static void api_changes(void)
{
    xcp_vm web, tmp, tpl = api_template(T_DEBIAN);

    cr_assert(xcp_vm_clone(S, &web, tpl, "web1") == 0);
    cr_assert(xcp_vm_provision(S, web) == 0); /* VDIs, VBDs: relations */
    cr_assert(xcp_vm_set_name_label(S, web, "web one") == 0);
    cr_assert(xcp_vm_set_memory_static_max(S, web, 2 * GiB) == 0);
    cr_assert(xcp_vm_clone(S, &tmp, tpl, "scratch") == 0);
    cr_assert(xcp_vm_destroy(S, tmp) == 0);
}

static xcp__db *replica_apply(uint64_t after, size_t *napplied)
{
    struct rec r[256];
    xcp__db *b;
    size_t n, i;

    n = journal_records(api_dir, after, r, 256);
    cr_assert(n >= 6, "only %zu journal lines for the changes", n);
    cr_assert(xcp__db_open(&b, bdir) == 0);
    cr_assert_eq(xcp__db_seq(b), after);
    commits = 0;
    xcp__db_on_commit(b, counted, NULL);
    for (i = 0; i < n; i++) {
        uint64_t g;
        cr_assert(xcp__db_apply(b, r[i].seq, r[i].body,
                                strlen(r[i].body)) == 0,
                  "seq %" PRIu64 " refused: %s", r[i].seq,
                  xcp_error_last() ? xcp_error_last()->name : "?");
        sscanf(r[i].body, "T %" SCNu64, &g);
        cr_assert_eq(xcp__db_generation(b), g);
        cr_assert_eq(last_gen, g, "event waiters not woken for %" PRIu64,
                     g);
        free(r[i].body);
    }
    cr_assert_eq(commits, n);
    cr_assert_eq(xcp__db_seq(b), after + n);
    *napplied = n;
    return b;
}

Test(db_apply, api_changes_applied_to_a_replica_give_the_same_rows)
{
    uint64_t after = baseline();
    xcp__engine *e;
    xcp__db *b, *b2;
    size_t n;
    char ja[400], jb[400], *x, *y;
    size_t lx, ly;

    api_changes();
    b = replica_apply(after, &n);
    e = engine_a();
    lock_a(e);
    assert_same(e->db, b);
    unlock_a(e);

    /* The replica's journal is line for line A's. */
    snprintf(ja, sizeof(ja), "%s/db.journal", api_dir);
    snprintf(jb, sizeof(jb), "%s/db.journal", bdir);
    x = slurp(ja, &lx);
    y = slurp(jb, &ly);
    cr_assert(lx == ly && memcmp(x, y, lx) == 0,
              "the replica's journal differs from the coordinator's");
    free(x);
    free(y);

    /* Crash-reload: B's files loaded again while B is still open (no
     * clean close, no snapshot) give the same rows. */
    cr_assert(xcp__db_open(&b2, bdir) == 0);
    lock_a(e);
    assert_same(e->db, b2);
    unlock_a(e);
    cr_assert_eq(xcp__db_seq(b2), after + n);
    xcp__db_close(b2);
    xcp__db_close(b);
    xcp__engine_put(e);
}

/* Apply must refuse body as seq and leave b as it was. */
static void refused(xcp__db *b, xcp__db *ref, uint64_t seq, const char *body,
                    const char *why)
{
    uint64_t gen = xcp__db_generation(b), s = xcp__db_seq(b);
    unsigned c = commits;

    xcp_error_clear();
    cr_assert(xcp__db_apply(b, seq, body, strlen(body)) < 0,
              "accepted (%s): %s", why, body);
    cr_assert(xcp_error_last() &&
              !strcmp(xcp_error_last()->name, "INTERNAL_ERROR"));
    cr_assert(xcp_error_last()->nparams == 1 &&
              strstr(xcp_error_last()->params[0], why),
              "error '%s' does not say '%s'",
              xcp_error_last()->nparams ? xcp_error_last()->params[0] : "",
              why);
    cr_assert_eq(xcp__db_generation(b), gen);
    cr_assert_eq(xcp__db_seq(b), s);
    cr_assert_eq(commits, c);
    assert_same(ref, b);
}

Test(db_apply, out_of_order_or_damaged_bodies_are_refused_and_change_nothing)
{
    uint64_t after = baseline(), s, g;
    xcp__engine *e;
    xcp__db *b, *b2;
    xcp__obj *o;
    size_t n;
    char body[600];
    struct stat st1, st2;
    char jb[400];

    api_changes();
    b = replica_apply(after, &n);
    e = engine_a();
    s = xcp__db_seq(b);
    g = xcp__db_generation(b);
    lock_a(e);
    o = xcp__db_by_name(e->db, C(VM), "web one", &n)[0];
    snprintf(jb, sizeof(jb), "%s/db.journal", bdir);
    cr_assert(stat(jb, &st1) == 0);

    snprintf(body, sizeof(body), "T %" PRIu64 " S %s 1 name_label 'x",
             g + 1, o->ref);
    refused(b, e->db, s + 2, body, "out of order");
    refused(b, e->db, s, body, "out of order");
    refused(b, e->db, s - 1, body, "out of order");
    refused(b, e->db, s + 1, "X 5 S a 0", "does not start with");
    refused(b, e->db, s + 1, "T", "does not start with");
    refused(b, e->db, s + 1, "T 0", "does not start with");
    refused(b, e->db, s + 1, "T 12x", "does not start with");
    snprintf(body, sizeof(body), "T %" PRIu64 " S %s 1 name_label 'x\nT 9",
             g + 1, o->ref);
    refused(b, e->db, s + 1, body, "newline");
    /* The first op is good, the second damaged: the first is undone. */
    snprintf(body, sizeof(body),
             "T %" PRIu64 " S %s 1 name_label 'changed S %s 1 "
             "name_description ?bad",
             g + 1, o->ref, o->ref);
    refused(b, e->db, s + 1, body, "bad fields");
    snprintf(body, sizeof(body),
             "T %" PRIu64 " S %s 2 name_label 'changed", g + 1, o->ref);
    refused(b, e->db, s + 1, body, "bad fields");
    snprintf(body, sizeof(body), "T %" PRIu64 " S %s 1 name_label 'a Q x",
             g + 1, o->ref);
    refused(b, e->db, s + 1, body, "is not C, S or D");
    refused(b, e->db, s + 1, "T 99999 S OpaqueRef:nosuch 1 name_label 'x",
            "no such object");
    refused(b, e->db, s + 1, "T 99999 D OpaqueRef:nosuch", "no such object");
    snprintf(body, sizeof(body), "T %" PRIu64 " C VM %s 0", g + 1, o->ref);
    refused(b, e->db, s + 1, body, "exists already");
    snprintf(body, sizeof(body), "T %" PRIu64 " S %s 1 name_label 'x  D %s",
             g + 1, o->ref, o->ref);
    refused(b, e->db, s + 1, body, "stray text");

    /* Nothing reached the replica's journal either. */
    cr_assert(stat(jb, &st2) == 0);
    cr_assert_eq(st1.st_size, st2.st_size);
    cr_assert(xcp__db_open(&b2, bdir) == 0);
    assert_same(e->db, b2);
    xcp__db_close(b2);

    /* And the next good one still goes in. */
    snprintf(body, sizeof(body), "T %" PRIu64 " S %s 1 name_label 'renamed",
             g + 5, o->ref);
    cr_assert(xcp__db_apply(b, s + 1, body, strlen(body)) == 0);
    cr_assert_str_eq(
        xcp__obj_str(xcp__db_get(b, o->ref), F(VM, name_label)), "renamed");
    cr_assert_eq(xcp__db_generation(b), g + 5);
    cr_assert_eq(xcp__db_by_name(b, C(VM), "renamed", &n)[0],
                 xcp__db_get(b, o->ref)); /* the name index follows */
    unlock_a(e);
    xcp__db_close(b);
    xcp__engine_put(e);
}

/* ---- catch-up (docs/design-pool.md §5.1): the coordinator's side -------- */

struct got {
    size_t n;
    uint64_t seq[256];
    char *body[256];
};

static int collect(void *arg, uint64_t seq, const char *body, size_t len)
{
    struct got *g = arg;

    cr_assert(g->n < 256);
    g->seq[g->n] = seq;
    g->body[g->n] = strndup(body, len);
    g->n++;
    return 0;
}

Test(db_apply, records_after_are_the_journal_bodies_and_a_replica_applies_them)
{
    uint64_t after = baseline(), last;
    struct got g = {0};
    struct rec r[256];
    xcp__engine *e;
    xcp__db *b;
    size_t n, i;

    api_changes();
    n = journal_records(api_dir, after, r, 256);
    e = engine_a();
    lock_a(e);
    last = xcp__db_seq(e->db);
    cr_assert_eq(xcp__db_records_after(e->db, after, collect, &g), 0);
    cr_assert_eq(g.n, n);
    cr_assert_eq(last, after + n);
    for (i = 0; i < n; i++) {
        cr_assert_eq(g.seq[i], r[i].seq);
        cr_assert_str_eq(g.body[i], r[i].body);
    }
    /* Nothing after the last: no call, 0. */
    g.n = 0;
    cr_assert_eq(xcp__db_records_after(e->db, last, collect, &g), 0);
    cr_assert_eq(g.n, 0);
    unlock_a(e);
    cr_assert(xcp__db_open(&b, bdir) == 0);
    for (i = 0; i < n; i++) {
        cr_assert(xcp__db_apply(b, g.seq[i], g.body[i], strlen(g.body[i])) ==
                  0);
        free(g.body[i]);
        free(r[i].body);
    }
    lock_a(e);
    assert_same(e->db, b);
    unlock_a(e);
    xcp__db_close(b);
    xcp__engine_put(e);
}

Test(db_apply, records_after_a_compaction_ask_for_a_snapshot)
{
    uint64_t after = baseline();
    struct got g = {0};
    xcp__engine *e;

    api_changes();
    e = engine_a();
    lock_a(e);
    cr_assert_eq(xcp__db_snapshot(e->db), 0);
    cr_assert_eq(xcp__db_records_after(e->db, after, collect, &g), 1);
    cr_assert_eq(g.n, 0);
    unlock_a(e);
    xcp__engine_put(e);
}

Test(db_apply, a_snapshot_installed_replaces_the_replica_in_place)
{
    uint64_t after = baseline();
    xcp__buf snap = {0};
    xcp__engine *e;
    xcp__db *b, *b2;
    xcp__obj *stale;
    uint64_t seq;

    cr_assert(xcp__db_open(&b, bdir) == 0);
    /* A tail of the replica's own that the coordinator never had (a
     * deposed coordinator's): the snapshot must replace it. */
    xcp__db_begin(b);
    cr_assert(xcp__db_create(b, C(VM), NULL, NULL, &stale) == 0);
    cr_assert(xcp__db_set_str(b, stale, F(VM, name_label), "tail") == 0);
    cr_assert(xcp__db_commit(b) == 0);
    cr_assert_eq(xcp__db_seq(b), after + 1);
    api_changes();
    e = engine_a();
    lock_a(e);
    seq = xcp__db_seq(e->db);
    cr_assert(xcp__db_snapshot_text(e->db, &snap) == 0);
    commits = 0;
    xcp__db_on_commit(b, counted, NULL);
    cr_assert(xcp__db_install(b, bdir, snap.data, snap.len, seq) == 0,
              "%s", xcp_error_last() ? xcp_error_last()->params[0] : "?");
    cr_assert_eq(commits, 1, "event waiters not woken");
    cr_assert_eq(last_gen, xcp__db_generation(e->db));
    cr_assert_eq(xcp__db_seq(b), seq);
    assert_same(e->db, b);
    unlock_a(e);
    /* on disk too */
    cr_assert(xcp__db_open(&b2, bdir) == 0);
    lock_a(e);
    assert_same(e->db, b2);
    unlock_a(e);
    cr_assert_eq(xcp__db_seq(b2), seq);
    xcp__db_close(b2);
    /* and it goes on from there: a commit gets seq + 1 */
    xcp__db_begin(b);
    cr_assert(xcp__db_create(b, C(VM), NULL, NULL, &stale) == 0);
    cr_assert(xcp__db_commit(b) == 0);
    cr_assert_eq(xcp__db_seq(b), seq + 1);
    xcp__db_close(b);
    xcp__buf_free(&snap);
    xcp__engine_put(e);
}

Test(db_apply, a_damaged_or_misplaced_snapshot_changes_nothing)
{
    uint64_t after = baseline();
    xcp__buf snap = {0};
    xcp__engine *e;
    xcp__db *b;
    uint64_t seq;
    char *bad;

    cr_assert(xcp__db_open(&b, bdir) == 0);
    api_changes();
    e = engine_a();
    lock_a(e);
    seq = xcp__db_seq(e->db);
    cr_assert(xcp__db_snapshot_text(e->db, &snap) == 0);
    unlock_a(e);
    bad = malloc(snap.len);
    memcpy(bad, snap.data, snap.len);
    bad[snap.len / 2] ^= 0x20;
    xcp_error_clear();
    cr_assert(xcp__db_install(b, bdir, bad, snap.len, seq) < 0);
    cr_assert_str_eq(xcp_error_last()->name, "INTERNAL_ERROR");
    cr_assert_eq(xcp__db_seq(b), after);
    /* a good snapshot, but not at the seq it is said to be */
    cr_assert(xcp__db_install(b, bdir, snap.data, snap.len, seq + 1) < 0);
    cr_assert(strstr(xcp_error_last()->params[0], "not"));
    cr_assert_eq(xcp__db_seq(b), after);
    xcp__db_close(b);
    /* and the files are the old ones */
    cr_assert(xcp__db_open(&b, bdir) == 0);
    cr_assert_eq(xcp__db_seq(b), after);
    xcp__db_close(b);
    free(bad);
    xcp__buf_free(&snap);
    xcp__engine_put(e);
}
