/*
 * The object database (see db.h): tables, indexes, relations, transactions
 * with an undo log, generations and the commit path into the journal.
 *
 * Costs: every lookup is a hash probe; a change costs the change (plus the
 * size of the derived set it touches, e.g. host.resident_VMs); a commit
 * writes only the fields that changed. Nothing walks a whole table except
 * get_all-style calls.
 */
#include "db.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_FIELDS 256
#define MAX_TOMBSTONES 65536

enum { U_SET, U_CREATE, U_DESTROY, U_DADD, U_DDEL };

struct undo {
    uint8_t op;
    int field;
    size_t pos;
    xcp__obj *obj;
    xcp_value old;
};

struct namebucket {
    char *name;
    size_t n, cap;
    xcp__obj **objs;
};

struct table {
    xcp__obj **objs;
    size_t n, cap;
    xcp__hmap uuid;
    xcp__hmap names;
};

/* Per-object transaction state lives beside the object. */
struct objx {
    xcp__obj o;
    bool created_in_txn;
    bool destroyed_in_txn;
    struct objx *tombnext;
    uint64_t dirty[MAX_FIELDS / 64];
};

struct xcp__db {
    struct table t[XCP__NCLASSES];
    xcp__hmap refs;
    uint64_t gen;
    uint64_t horizon;
    xcp__obj *ghead, *gtail;
    struct objx *tombhead, *tombtail;
    size_t ntombs;
    struct undo *undo;
    size_t nundo, capundo;
    int depth;
    xcp__obj *touched, *touched_tail; /* in order of first touch */
    struct xcp__journal *j;
    int fsync_policy, group_ms;
    uint64_t mem_seq; /* transactions committed, without a journal */
    const xcp__db_repl *repl;
    void *repl_arg;
    void (*on_commit)(void *, uint64_t);
    void *on_commit_arg;
    /* Work waiting for the open transaction's outcome
     * (xcp__db_after_commit), in the order it was queued. */
    struct after {
        void (*fn)(void *, bool);
        void *arg;
    } *after;
    size_t nafter, capafter;
};

static struct objx *X(xcp__obj *o)
{
    return (struct objx *)o;
}

/* ---- generation list ---------------------------------------------- */

static void glist_unlink(xcp__db *db, xcp__obj *o)
{
    if (o->gprev)
        o->gprev->gnext = o->gnext;
    else if (db->ghead == o)
        db->ghead = o->gnext;
    if (o->gnext)
        o->gnext->gprev = o->gprev;
    else if (db->gtail == o)
        db->gtail = o->gprev;
    o->gprev = o->gnext = NULL;
}

static void glist_append(xcp__db *db, xcp__obj *o)
{
    o->gprev = db->gtail;
    o->gnext = NULL;
    if (db->gtail)
        db->gtail->gnext = o;
    else
        db->ghead = o;
    db->gtail = o;
}

/* ---- indexes -------------------------------------------------------- */

static int name_add(struct table *t, xcp__obj *o, const char *name)
{
    struct namebucket *b = xcp__hmap_get(&t->names, name);

    if (!b) {
        b = xcp__calloc(1, sizeof(*b));
        if (!b || !(b->name = xcp__strdup(name))) {
            free(b);
            return xcp__oom();
        }
        if (xcp__hmap_put(&t->names, b->name, b) < 0) {
            free(b->name);
            free(b);
            return xcp__oom();
        }
    }
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 2;
        xcp__obj **objs = realloc(b->objs, cap * sizeof(*objs));
        if (!objs)
            return xcp__oom();
        b->objs = objs;
        b->cap = cap;
    }
    b->objs[b->n++] = o;
    return 0;
}

static void name_del(struct table *t, xcp__obj *o, const char *name)
{
    struct namebucket *b = xcp__hmap_get(&t->names, name);
    size_t i;

    if (!b)
        return;
    for (i = 0; i < b->n; i++) {
        if (b->objs[i] == o) {
            memmove(&b->objs[i], &b->objs[i + 1],
                    (b->n - i - 1) * sizeof(*b->objs));
            b->n--;
            break;
        }
    }
    if (b->n == 0) {
        xcp__hmap_del(&t->names, name);
        free(b->objs);
        free(b->name);
        free(b);
    }
}

static const char *strfield(const xcp__obj *o, int f)
{
    const xcp_value *v;

    if (f < 0 || !o->f)
        return NULL;
    v = &o->f[f];
    return v->kind == XCP_VAL_STRING ? v->u.s : NULL;
}

/* Index maintenance around a change of field f of o. */
static void index_remove(xcp__db *db, xcp__obj *o, int f)
{
    const struct xcp__class *c = &xcp__classes[o->cls];
    struct table *t = &db->t[o->cls];
    const char *s = strfield(o, f);

    if (!s)
        return;
    if (f == c->uuid_field && xcp__hmap_get(&t->uuid, s) == o)
        xcp__hmap_del(&t->uuid, s);
    else if (f == c->name_label_field)
        name_del(t, o, s);
}

static int index_add(xcp__db *db, xcp__obj *o, int f)
{
    const struct xcp__class *c = &xcp__classes[o->cls];
    struct table *t = &db->t[o->cls];
    const char *s = strfield(o, f);

    if (!s)
        return 0;
    if (f == c->uuid_field && *s)
        return xcp__hmap_put(&t->uuid, s, o) < 0 ? xcp__oom() : 0;
    if (f == c->name_label_field)
        return name_add(t, o, s);
    return 0;
}

static int table_link(xcp__db *db, xcp__obj *o)
{
    struct table *t = &db->t[o->cls];
    const struct xcp__class *c = &xcp__classes[o->cls];

    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        xcp__obj **objs = realloc(t->objs, cap * sizeof(*objs));
        if (!objs)
            return xcp__oom();
        t->objs = objs;
        t->cap = cap;
    }
    if (xcp__hmap_put(&db->refs, o->ref, o) < 0)
        return xcp__oom();
    o->idx = (uint32_t)t->n;
    t->objs[t->n++] = o;
    if (c->uuid_field >= 0 && index_add(db, o, c->uuid_field) < 0)
        return XCP_ENOMEM;
    if (c->name_label_field >= 0 && index_add(db, o, c->name_label_field) < 0)
        return XCP_ENOMEM;
    return 0;
}

static void table_unlink(xcp__db *db, xcp__obj *o)
{
    struct table *t = &db->t[o->cls];
    const struct xcp__class *c = &xcp__classes[o->cls];
    xcp__obj *last;

    if (c->uuid_field >= 0)
        index_remove(db, o, c->uuid_field);
    if (c->name_label_field >= 0)
        index_remove(db, o, c->name_label_field);
    xcp__hmap_del(&db->refs, o->ref);
    last = t->objs[t->n - 1];
    t->objs[o->idx] = last;
    last->idx = o->idx;
    t->n--;
}

/* ---- objects -------------------------------------------------------- */

/* A new object; its fields get their defaults, or stay XCP_VAL_NONE for
 * the loader (which sets most of them and then fills the rest). */
static xcp__obj *obj_alloc(int cls, const char *ref, bool defaults)
{
    const struct xcp__class *c = &xcp__classes[cls];
    struct objx *x = xcp__calloc(1, sizeof(*x));
    size_t i;

    if (!x)
        return NULL;
    x->o.cls = cls;
    snprintf(x->o.ref, sizeof(x->o.ref), "%s", ref);
    x->o.f = xcp__calloc(c->nfields, sizeof(xcp_value));
    if (!x->o.f) {
        free(x);
        return NULL;
    }
    for (i = 0; defaults && i < c->nfields; i++) {
        if (xcp__value_default(c->fields[i].type, c->fields[i].def,
                               &x->o.f[i]) < 0) {
            while (i--)
                xcp_value_dispose(&x->o.f[i]);
            free(x->o.f);
            free(x);
            return NULL;
        }
    }
    return &x->o;
}

static void obj_free_fields(xcp__obj *o)
{
    size_t i, n = xcp__classes[o->cls].nfields;

    if (!o->f)
        return;
    for (i = 0; i < n; i++)
        xcp_value_dispose(&o->f[i]);
    free(o->f);
    o->f = NULL;
}

static void obj_free(xcp__obj *o)
{
    obj_free_fields(o);
    free(X(o));
}

/* ---- transactions --------------------------------------------------- */

static int undo_push(xcp__db *db, uint8_t op, xcp__obj *o, int field,
                     size_t pos, xcp_value *old)
{
    struct undo *u;

    if (db->nundo == db->capundo) {
        size_t cap = db->capundo ? db->capundo * 2 : 64;
        struct undo *n = realloc(db->undo, cap * sizeof(*n));
        if (!n)
            return xcp__oom();
        db->undo = n;
        db->capundo = cap;
    }
    u = &db->undo[db->nundo++];
    u->op = op;
    u->obj = o;
    u->field = field;
    u->pos = pos;
    if (old)
        xcp__value_move(&u->old, old);
    else
        u->old.kind = XCP_VAL_NONE;
    return 0;
}

static void touch(xcp__db *db, xcp__obj *o, int field)
{
    if (!o->in_txn) {
        /* Appended: a commit journals (and a reload recreates) objects in
         * the order they were made, so lists read the same before and
         * after a restart. */
        o->in_txn = true;
        o->tnext = NULL;
        if (db->touched_tail)
            db->touched_tail->tnext = o;
        else
            db->touched = o;
        db->touched_tail = o;
    }
    if (field >= 0 && field < MAX_FIELDS)
        X(o)->dirty[field / 64] |= 1ull << (field % 64);
}

void xcp__db_begin(xcp__db *db)
{
    db->depth++;
}

bool xcp__db_in_txn(const xcp__db *db)
{
    return db->depth > 0;
}

static bool cls_persistent(int cls)
{
    return !(xcp__classes[cls].flags & (XK_VOLATILE | XK_NODB));
}

static bool field_persistent(const struct xcp__field *f)
{
    return !(f->flags & XF_DERIVED);
}

static void enc_fields(xcp__buf *b, xcp__obj *o, bool all)
{
    const struct xcp__class *c = &xcp__classes[o->cls];
    size_t i, n = 0;

    for (i = 0; i < c->nfields; i++)
        if (field_persistent(&c->fields[i]) &&
            (all || (X(o)->dirty[i / 64] & (1ull << (i % 64)))))
            n++;
    xcp__buf_printf(b, " %zu", n);
    for (i = 0; i < c->nfields; i++) {
        if (!field_persistent(&c->fields[i]) ||
            !(all || (X(o)->dirty[i / 64] & (1ull << (i % 64)))))
            continue;
        xcp__buf_printf(b, " %s ", c->fields[i].name);
        xcp__enc_value(b, &o->f[i]);
    }
}

void xcp__db_enc_create(xcp__buf *b, xcp__obj *o)
{
    xcp__buf_printf(b, " C %s %s", xcp__classes[o->cls].name, o->ref);
    enc_fields(b, o, true);
}

static void prune_tombstones(xcp__db *db)
{
    while (db->ntombs > MAX_TOMBSTONES && db->tombhead) {
        struct objx *t = db->tombhead;
        db->tombhead = t->tombnext;
        if (!db->tombhead)
            db->tombtail = NULL;
        db->ntombs--;
        if (t->o.gen > db->horizon)
            db->horizon = t->o.gen;
        glist_unlink(db, &t->o);
        obj_free(&t->o);
    }
}

static void undo_clear(xcp__db *db)
{
    size_t i;

    for (i = 0; i < db->nundo; i++)
        xcp_value_dispose(&db->undo[i].old);
    db->nundo = 0;
}

static void run_list(struct after *a, size_t n, bool committed)
{
    size_t i;

    for (i = 0; i < n; i++)
        a[i].fn(a[i].arg, committed);
    free(a);
}

/* Run the work queued for this transaction, once, and forget it. */
static void run_after(xcp__db *db, bool committed)
{
    struct after *a = db->after;
    size_t n = db->nafter;

    db->after = NULL;
    db->nafter = db->capafter = 0;
    run_list(a, n, committed);
}

/* A member's transaction (docs/design-pool.md §7): rolled back here, its
 * line run by the coordinator, and back through this replica; the work
 * queued for it runs once that is known. */
static int forward_txn(xcp__db *db, xcp__buf *line)
{
    struct after *a = db->after;
    size_t n = db->nafter;
    int rc;

    db->after = NULL;
    db->nafter = db->capafter = 0;
    db->depth++;
    xcp__db_abort(db);
    rc = db->repl->forward(db->repl_arg, line->data, line->len - 1);
    xcp__buf_free(line);
    run_list(a, n, rc == 0);
    return rc;
}

int xcp__db_after_commit(xcp__db *db, void (*fn)(void *, bool), void *arg)
{
    struct after *a;
    size_t cap;

    if (db->depth == 0) {
        fn(arg, true);
        return 0;
    }
    if (db->nafter == db->capafter) {
        cap = db->capafter ? db->capafter * 2 : 8;
        a = realloc(db->after, cap * sizeof(*a));
        if (!a) {
            fn(arg, false);
            return xcp__oom();
        }
        db->after = a;
        db->capafter = cap;
    }
    db->after[db->nafter].fn = fn;
    db->after[db->nafter++].arg = arg;
    return 0;
}

/* Commit the open transaction (depth already back to 0). given: a
 * replicated body to journal as it is (xcp__db_apply), given_gen its
 * generation; NULL: build the line from the changes. */
static int commit_txn(xcp__db *db, const char *given, size_t glen,
                      uint64_t given_gen)
{
    xcp__buf line = {0};
    xcp__obj *o, *next;
    uint64_t gen;
    bool any = false, repl = false;
    int rc = 0, src = 0;

    if (!db->touched && !given) {
        undo_clear(db);
        run_after(db, true);
        return 0;
    }
    gen = db->gen + 1;
    if (given) {
        if (given_gen > gen)
            gen = given_gen;
        xcp__buf_add(&line, given, glen);
        any = true;
    } else {
        xcp__buf_printf(&line, "T %llu", (unsigned long long)gen);
    }
    for (o = given ? NULL : db->touched; o; o = o->tnext) {
        struct objx *x = X(o);
        if (!cls_persistent(o->cls))
            continue;
        if (x->created_in_txn && x->destroyed_in_txn)
            continue;
        any = true;
        if (x->destroyed_in_txn) {
            xcp__buf_printf(&line, " D %s", o->ref);
        } else if (x->created_in_txn) {
            xcp__db_enc_create(&line, o);
        } else {
            bool dirty = false;
            size_t i, n = xcp__classes[o->cls].nfields;
            for (i = 0; i < n && !dirty; i++)
                dirty = field_persistent(&xcp__classes[o->cls].fields[i]) &&
                        (x->dirty[i / 64] & (1ull << (i % 64)));
            if (!dirty)
                continue;
            xcp__buf_printf(&line, " S %s", o->ref);
            enc_fields(&line, o, false);
        }
    }
    xcp__buf_addc(&line, '\n');
    if (line.oom) {
        xcp__buf_free(&line);
        db->depth++;
        xcp__db_abort(db);
        return xcp__oom();
    }
    if (any && !given && db->repl) {
        /* A pooled host: the hook may refuse (a member, no quorum). */
        if ((rc = db->repl->prepare(db->repl_arg)) < 0 ||
            (rc == XCP__DB_REPL_FORWARD && !db->repl->forward)) {
            xcp__buf_free(&line);
            db->depth++;
            xcp__db_abort(db);
            return rc < 0 ? rc : xcp__internal("no forwarding of writes");
        }
        if (rc == XCP__DB_REPL_FORWARD)
            return forward_txn(db, &line);
        repl = true;
    }
    if (any && db->j) {
        /* Work waiting for this commit (say, deleting a file the
         * transaction stops referring to) must not outrun it, even on
         * power loss: this one line is synced whatever the policy. */
        int64_t t0 = xcp__now_ms();
        rc = xcp__journal_append(db->j, line.data, line.len,
                                 db->nafter ? XCP__FSYNC_ALWAYS
                                            : db->fsync_policy,
                                 db->group_ms);
        if (xcp__now_ms() - t0 >= 10 * XCP__TRACE_WAIT_MS)
            xcp__trace("journal: commit %llu written in %lld ms",
                       (unsigned long long)gen,
                       (long long)(xcp__now_ms() - t0));
        if (rc < 0) {
            /* Not durable: undo, so memory never runs ahead of disk. */
            if (repl)
                db->repl->cancel(db->repl_arg);
            xcp__buf_free(&line);
            db->depth++;
            xcp__db_abort(db);
            return rc;
        }
    }
    if (any && !db->j)
        db->mem_seq++;
    if (repl)
        src = db->repl->submit(db->repl_arg, xcp__db_seq(db), gen,
                               line.data, line.len - 1);
    xcp__buf_free(&line);
    db->gen = gen;
    for (o = db->touched; o; o = next) {
        struct objx *x = X(o);
        next = o->tnext;
        o->tnext = NULL;
        o->in_txn = false;
        memset(x->dirty, 0, sizeof(x->dirty));
        if (x->created_in_txn && x->destroyed_in_txn) {
            obj_free(o);
            continue;
        }
        glist_unlink(db, o);
        o->gen = gen;
        if (x->created_in_txn)
            o->created_gen = gen;
        glist_append(db, o);
        if (x->destroyed_in_txn) {
            obj_free_fields(o);
            o->deleted = true;
            x->tombnext = NULL;
            if (db->tombtail)
                db->tombtail->tombnext = x;
            else
                db->tombhead = x;
            db->tombtail = x;
            db->ntombs++;
        }
        x->created_in_txn = x->destroyed_in_txn = false;
    }
    db->touched = db->touched_tail = NULL;
    undo_clear(db);
    prune_tombstones(db);
    if (db->j && xcp__journal_size(db->j) > 4u * 1024 * 1024 &&
        xcp__journal_size(db->j) > 2 * xcp__journal_snapshot_size(db->j))
        xcp__db_snapshot(db); /* failure keeps the journal: still safe */
    if (db->on_commit)
        db->on_commit(db->on_commit_arg, gen);
    run_after(db, true);
    return src;
}

int xcp__db_commit(xcp__db *db)
{
    if (--db->depth > 0)
        return 0;
    return commit_txn(db, NULL, 0, 0);
}

uint64_t xcp__db_seq(const xcp__db *db)
{
    return db->j ? xcp__journal_seq(db->j) : db->mem_seq;
}

void xcp__db_set_repl(xcp__db *db, const xcp__db_repl *ops, void *arg)
{
    db->repl = ops;
    db->repl_arg = arg;
}

/* Every refusal below is INTERNAL_ERROR on purpose: damage on the wire is
 * caught before this by the record's CRC (cluster/record.c), so a record
 * that reaches here and does not fit the replica means the coordinator
 * and this replica disagree -- a bug, not a cause a client could mend.
 * The error never reaches a client: pool.c's dispatch thread logs it and
 * marks the replica broken, and the member stops applying until it is
 * caught up or replaced (docs/design-pool.md §5.1). */
int xcp__db_apply(xcp__db *db, uint64_t seq, const char *body, size_t len)
{
    uint64_t last = xcp__db_seq(db), gen;
    char why[160], *text, *end;
    int rc;

    if (db->depth > 0)
        return xcp__internal("replicated transaction %" PRIu64 " refused: "
                             "a transaction is open", seq);
    if (seq != last + 1)
        return xcp__internal("replicated transaction %" PRIu64 " refused: "
                             "this replica holds up to %" PRIu64
                             " (out of order)", seq, last);
    if (len > 0 && body[len - 1] == '\n')
        len--;
    if (memchr(body, '\n', len) || memchr(body, '\0', len))
        return xcp__internal("replicated transaction %" PRIu64 " refused: "
                             "a newline or NUL inside its body", seq);
    if (!(text = xcp__malloc(len + 1)))
        return xcp__oom();
    memcpy(text, body, len);
    text[len] = '\0';
    /* "T <gen>" then " <ops>" or nothing */
    if (len < 3 || text[0] != 'T' || text[1] != ' ' || text[2] < '1' ||
        text[2] > '9' || (errno = 0, gen = strtoull(text + 2, &end, 10),
                          errno) || (*end && *end != ' ') ||
        (*end == ' ' && !end[1])) {
        free(text);
        return xcp__internal("replicated transaction %" PRIu64 " refused: "
                             "its body does not start with \"T <gen>\"",
                             seq);
    }
    xcp__db_begin(db);
    if (xcp__journal_apply_ops(db, *end ? end + 1 : end, why,
                               sizeof(why)) < 0) {
        xcp__db_abort(db);
        free(text);
        return xcp__internal("replicated transaction %" PRIu64 " refused: "
                             "%s", seq, why);
    }
    db->depth--;
    rc = commit_txn(db, text, len, gen);
    free(text);
    return rc;
}

int xcp__db_snapshot_text(xcp__db *db, xcp__buf *out)
{
    if (!db->j)
        return xcp__internal("an in-memory database has no snapshot");
    return xcp__journal_snapshot_text(db->j, db, out);
}

int xcp__db_records_after(xcp__db *db, uint64_t after,
                          int (*fn)(void *, uint64_t, const char *, size_t),
                          void *arg)
{
    if (!db->j)
        return after >= db->mem_seq ? 0 : 1;
    return xcp__journal_read_after(db->j, after, fn, arg);
}

/* A snapshot's text is a database: load it in a directory of its own
 * first, so that a bad one replaces nothing. */
int xcp__db_snapshot_check(const char *dir, const char *snap, size_t len,
                           uint64_t *seq)
{
    char *tdir = xcp__printf("%s/xfer.tmp", dir), *spath = NULL,
         *jpath = NULL;
    xcp__db *t = NULL;
    FILE *f = NULL;
    int rc;

    if (!tdir || !(spath = xcp__printf("%s/db.snap", tdir)) ||
        !(jpath = xcp__printf("%s/db.journal", tdir))) {
        rc = xcp__oom();
        goto out;
    }
    unlink(spath);
    unlink(jpath);
    if ((rc = xcp__mkdir_p(tdir, 0700)) < 0) {
        rc = xcp__internal("cannot create %s: %s", tdir, strerror(-rc));
        goto out;
    }
    if (!(f = fopen(spath, "w")) || fwrite(snap, 1, len, f) != len ||
        fclose(f) != 0) {
        f = NULL;
        rc = xcp__internal("cannot write %s: %s", spath, strerror(errno));
        goto out;
    }
    f = NULL;
    if ((rc = xcp__db_open(&t, tdir)) < 0)
        goto out;
    if (*seq != UINT64_MAX && xcp__db_seq(t) != *seq)
        rc = xcp__internal("the snapshot is at transaction %" PRIu64
                           ", not %" PRIu64, xcp__db_seq(t), *seq);
    else
        *seq = xcp__db_seq(t);
out:
    if (f)
        fclose(f);
    xcp__db_close(t);
    if (spath)
        unlink(spath);
    if (jpath)
        unlink(jpath);
    if (tdir)
        rmdir(tdir);
    free(tdir);
    free(spath);
    free(jpath);
    return rc;
}

int xcp__db_install(xcp__db *db, const char *dir, const char *snap,
                    size_t len, uint64_t seq)
{
    xcp__db *n, tmp;
    int rc;

    if (!db->j)
        return xcp__internal("an in-memory database has no snapshot");
    if (db->depth > 0)
        return xcp__internal("a snapshot cannot replace the database "
                             "inside a transaction");
    if ((rc = xcp__db_snapshot_check(dir, snap, len, &seq)) < 0 ||
        (rc = xcp__journal_install(db->j, snap, len)) < 0 ||
        (rc = xcp__db_open(&n, dir)) < 0)
        return rc;
    /* The new contents under the old handle (the engine keeps it), with
     * the old settings and hooks. */
    n->fsync_policy = db->fsync_policy;
    n->group_ms = db->group_ms;
    n->repl = db->repl;
    n->repl_arg = db->repl_arg;
    n->on_commit = db->on_commit;
    n->on_commit_arg = db->on_commit_arg;
    tmp = *db;
    *db = *n;
    *n = tmp;
    xcp__db_close(n);
    if (db->on_commit)
        db->on_commit(db->on_commit_arg, db->gen);
    return 0;
}

/* Raw primitives shared by undo and loading. */
static void raw_set(xcp__db *db, xcp__obj *o, int f, xcp_value *v)
{
    index_remove(db, o, f);
    xcp_value_dispose(&o->f[f]);
    xcp__value_move(&o->f[f], v);
    index_add(db, o, f);
}

static int arr_insert(xcp_value *arr, size_t pos, xcp_value *v)
{
    xcp_value *items;

    if (arr->kind != XCP_VAL_ARRAY)
        return xcp__internal("set field is not an array");
    items = realloc(arr->u.arr.items, (arr->u.arr.n + 1) * sizeof(*items));
    if (!items)
        return xcp__oom();
    arr->u.arr.items = items;
    if (pos > arr->u.arr.n)
        pos = arr->u.arr.n;
    memmove(&items[pos + 1], &items[pos],
            (arr->u.arr.n - pos) * sizeof(*items));
    xcp__value_move(&items[pos], v);
    arr->u.arr.n++;
    return 0;
}

static void arr_remove(xcp_value *arr, size_t pos, xcp_value *out)
{
    xcp_value *items = arr->u.arr.items;

    if (out)
        xcp__value_move(out, &items[pos]);
    else
        xcp_value_dispose(&items[pos]);
    memmove(&items[pos], &items[pos + 1],
            (arr->u.arr.n - pos - 1) * sizeof(*items));
    arr->u.arr.n--;
}

static long arr_find_str(const xcp_value *arr, const char *s)
{
    size_t i;

    if (arr->kind != XCP_VAL_ARRAY)
        return -1;
    for (i = arr->u.arr.n; i-- > 0;)
        if (arr->u.arr.items[i].kind == XCP_VAL_STRING &&
            strcmp(arr->u.arr.items[i].u.s, s) == 0)
            return (long)i;
    return -1;
}

void xcp__db_abort(xcp__db *db)
{
    xcp__obj *o, *next;

    if (--db->depth > 0)
        return;
    while (db->nundo > 0) {
        struct undo *u = &db->undo[--db->nundo];
        o = u->obj;
        switch (u->op) {
        case U_SET:
            raw_set(db, o, u->field, &u->old);
            break;
        case U_DADD:
            arr_remove(&o->f[u->field], u->pos, NULL);
            break;
        case U_DDEL:
            arr_insert(&o->f[u->field], u->pos, &u->old);
            break;
        case U_CREATE:
            table_unlink(db, o);
            break;
        case U_DESTROY: {
            /* Back into its own slot (undos run newest first, so the one
             * that took the slot is the last again): lists keep the order
             * the journal gives them on reload. */
            uint32_t slot = o->idx;
            table_link(db, o);
            if (slot < o->idx) {
                struct table *t = &db->t[o->cls];
                xcp__obj *moved = t->objs[slot];
                t->objs[slot] = o;
                t->objs[o->idx] = moved;
                moved->idx = o->idx;
                o->idx = slot;
            }
            X(o)->destroyed_in_txn = false;
            break;
        }
        }
        xcp_value_dispose(&u->old);
    }
    for (o = db->touched; o; o = next) {
        struct objx *x = X(o);
        next = o->tnext;
        o->tnext = NULL;
        o->in_txn = false;
        memset(x->dirty, 0, sizeof(x->dirty));
        if (x->created_in_txn) {
            obj_free(o);
            continue;
        }
        x->destroyed_in_txn = false;
    }
    db->touched = db->touched_tail = NULL;
    run_after(db, false);
}

/* ---- relations -------------------------------------------------------- */

static int derived_add(xcp__db *db, const char *target, int cls, int field,
                       const char *ref)
{
    xcp__obj *t;
    xcp_value v;
    int rc;

    if (xcp_ref_is_null(target))
        return 0;
    t = xcp__db_get_cls(db, cls, target);
    if (!t)
        return 0; /* dangling ref: nothing to mirror */
    if ((rc = xcp_value_set_string(&v, ref)) < 0)
        return rc;
    if ((rc = arr_insert(&t->f[field], t->f[field].u.arr.n, &v)) < 0) {
        xcp_value_dispose(&v);
        return rc;
    }
    touch(db, t, -1);
    if (db->depth > 0 &&
        (rc = undo_push(db, U_DADD, t, field, t->f[field].u.arr.n - 1,
                        NULL)) < 0) {
        arr_remove(&t->f[field], t->f[field].u.arr.n - 1, NULL);
        return rc;
    }
    return 0;
}

static int derived_del(xcp__db *db, const char *target, int cls, int field,
                       const char *ref)
{
    xcp__obj *t;
    xcp_value old;
    long pos;
    int rc;

    if (xcp_ref_is_null(target))
        return 0;
    t = xcp__db_get_cls(db, cls, target);
    if (!t || (pos = arr_find_str(&t->f[field], ref)) < 0)
        return 0;
    arr_remove(&t->f[field], (size_t)pos, &old);
    touch(db, t, -1);
    if ((rc = undo_push(db, U_DDEL, t, field, (size_t)pos, &old)) < 0) {
        arr_insert(&t->f[field], (size_t)pos, &old);
        return rc;
    }
    return 0;
}

static bool forward_rel(const struct xcp__field *f)
{
    return f->rel_cls >= 0 && !(f->flags & XF_DERIVED) &&
           f->type->kind == XT_REF;
}

/* ---- changes ---------------------------------------------------------- */

int xcp__db_set(xcp__db *db, xcp__obj *o, int field, xcp_value *v)
{
    const struct xcp__field *f = &xcp__classes[o->cls].fields[field];
    xcp_value old;
    int rc;

    if (db->depth <= 0)
        return xcp__internal("database change outside a transaction");
    if (o->deleted || !o->f)
        return xcp__internal("change to a destroyed object");
    if (xcp__value_equal(&o->f[field], v)) {
        xcp_value_dispose(v);
        return 0;
    }
    if (forward_rel(f)) {
        const char *oldt = strfield(o, field);
        const char *newt = v->kind == XCP_VAL_STRING ? v->u.s : NULL;
        if ((rc = derived_del(db, oldt, f->rel_cls, f->rel_field, o->ref)) < 0)
            return rc;
        if ((rc = derived_add(db, newt, f->rel_cls, f->rel_field, o->ref)) < 0)
            return rc;
    }
    index_remove(db, o, field);
    xcp__value_move(&old, &o->f[field]);
    xcp__value_move(&o->f[field], v);
    rc = index_add(db, o, field);
    if (rc == 0)
        rc = undo_push(db, U_SET, o, field, 0, &old);
    if (rc < 0) {
        xcp_value cur;
        xcp__value_move(&cur, &o->f[field]);
        raw_set(db, o, field, &old);
        xcp__value_move(v, &cur);
        return rc;
    }
    touch(db, o, field);
    return 0;
}

int xcp__db_set_str(xcp__db *db, xcp__obj *o, int field, const char *s)
{
    xcp_value v;
    int rc = xcp_value_set_string(&v, s);

    if (rc < 0)
        return rc;
    rc = xcp__db_set(db, o, field, &v);
    xcp_value_dispose(&v);
    return rc;
}

int xcp__db_set_int(xcp__db *db, xcp__obj *o, int field, int64_t i)
{
    xcp_value v;

    xcp_value_set_int(&v, i);
    return xcp__db_set(db, o, field, &v);
}

int xcp__db_set_float(xcp__db *db, xcp__obj *o, int field, double d)
{
    xcp_value v;

    xcp_value_set_float(&v, d);
    return xcp__db_set(db, o, field, &v);
}

int xcp__db_set_bool(xcp__db *db, xcp__obj *o, int field, bool b)
{
    xcp_value v;

    xcp_value_set_bool(&v, b);
    return xcp__db_set(db, o, field, &v);
}

int xcp__db_set_time(xcp__db *db, xcp__obj *o, int field, xcp_datetime t)
{
    xcp_value v;

    xcp_value_set_datetime(&v, t);
    return xcp__db_set(db, o, field, &v);
}

/* Map and set edits copy the field, edit the copy and set it: the undo log
 * then restores whole values. Maps and sets that clients edit are small. */
int xcp__db_map_put(xcp__db *db, xcp__obj *o, int field, const char *key,
                    xcp_value *val)
{
    xcp_value m;
    size_t i;
    int rc;

    if ((rc = xcp_value_copy(&m, &o->f[field])) < 0)
        return rc;
    if (m.kind != XCP_VAL_STRUCT)
        xcp_value_set_struct(&m);
    for (i = 0; i < m.u.st.n; i++) {
        if (strcmp(m.u.st.keys[i], key) == 0) {
            xcp_value_dispose(&m.u.st.vals[i]);
            xcp__value_move(&m.u.st.vals[i], val);
            goto set;
        }
    }
    if ((rc = xcp_value_struct_add(&m, key, val)) < 0) {
        xcp_value_dispose(&m);
        return rc;
    }
set:
    rc = xcp__db_set(db, o, field, &m);
    xcp_value_dispose(&m);
    return rc;
}

int xcp__db_map_put_str(xcp__db *db, xcp__obj *o, int field, const char *key,
                        const char *val)
{
    xcp_value v;
    int rc = xcp_value_set_string(&v, val);

    if (rc < 0)
        return rc;
    rc = xcp__db_map_put(db, o, field, key, &v);
    xcp_value_dispose(&v);
    return rc;
}

int xcp__db_map_del(xcp__db *db, xcp__obj *o, int field, const char *key)
{
    xcp_value m;
    size_t i;
    int rc;

    if (!xcp__obj_map_get(o, field, key))
        return 0;
    if ((rc = xcp_value_copy(&m, &o->f[field])) < 0)
        return rc;
    for (i = 0; i < m.u.st.n; i++) {
        if (strcmp(m.u.st.keys[i], key) == 0) {
            free(m.u.st.keys[i]);
            xcp_value_dispose(&m.u.st.vals[i]);
            memmove(&m.u.st.keys[i], &m.u.st.keys[i + 1],
                    (m.u.st.n - i - 1) * sizeof(char *));
            memmove(&m.u.st.vals[i], &m.u.st.vals[i + 1],
                    (m.u.st.n - i - 1) * sizeof(xcp_value));
            m.u.st.n--;
            break;
        }
    }
    if (m.u.st.n == 0) {
        xcp_value_dispose(&m);
        xcp_value_set_struct(&m);
    }
    rc = xcp__db_set(db, o, field, &m);
    xcp_value_dispose(&m);
    return rc;
}

int xcp__db_set_add(xcp__db *db, xcp__obj *o, int field, xcp_value *v)
{
    xcp_value s;
    size_t i;
    int rc;

    for (i = 0; o->f[field].kind == XCP_VAL_ARRAY &&
                i < o->f[field].u.arr.n; i++) {
        if (xcp__value_equal(&o->f[field].u.arr.items[i], v)) {
            xcp_value_dispose(v);
            return 0;
        }
    }
    if ((rc = xcp_value_copy(&s, &o->f[field])) < 0)
        return rc;
    if (s.kind != XCP_VAL_ARRAY && (rc = xcp_value_set_array(&s, 0)) < 0)
        return rc;
    if ((rc = arr_insert(&s, s.u.arr.n, v)) < 0) {
        xcp_value_dispose(&s);
        return rc;
    }
    rc = xcp__db_set(db, o, field, &s);
    xcp_value_dispose(&s);
    return rc;
}

int xcp__db_set_add_str(xcp__db *db, xcp__obj *o, int field, const char *str)
{
    xcp_value v;
    int rc = xcp_value_set_string(&v, str);

    if (rc < 0)
        return rc;
    rc = xcp__db_set_add(db, o, field, &v);
    xcp_value_dispose(&v);
    return rc;
}

int xcp__db_set_del(xcp__db *db, xcp__obj *o, int field, const xcp_value *v)
{
    xcp_value s;
    size_t i;
    int rc;

    if (o->f[field].kind != XCP_VAL_ARRAY)
        return 0;
    for (i = 0; i < o->f[field].u.arr.n; i++)
        if (xcp__value_equal(&o->f[field].u.arr.items[i], v))
            break;
    if (i == o->f[field].u.arr.n)
        return 0;
    if ((rc = xcp_value_copy(&s, &o->f[field])) < 0)
        return rc;
    arr_remove(&s, i, NULL);
    rc = xcp__db_set(db, o, field, &s);
    xcp_value_dispose(&s);
    return rc;
}

int xcp__db_create(xcp__db *db, int cls, const char *ref, const char *uuid,
                   xcp__obj **out)
{
    const struct xcp__class *c = &xcp__classes[cls];
    char rbuf[XCP_REF_MAX], ubuf[37];
    xcp__obj *o;
    size_t i;
    int rc;

    if (db->depth <= 0)
        return xcp__internal("database change outside a transaction");
    if (!ref)
        xcp__ref_gen(rbuf);
    else
        snprintf(rbuf, sizeof(rbuf), "%s", ref);
    if (xcp__db_get(db, rbuf))
        return xcp__internal("duplicate ref %s", rbuf);
    if (!(o = obj_alloc(cls, rbuf, true)))
        return xcp__oom();
    if (c->uuid_field >= 0) {
        xcp_value v;
        if (!uuid) {
            xcp__uuid_gen(ubuf);
            uuid = ubuf;
        }
        if ((rc = xcp_value_set_string(&v, uuid)) < 0) {
            obj_free(o);
            return rc;
        }
        xcp_value_dispose(&o->f[c->uuid_field]);
        xcp__value_move(&o->f[c->uuid_field], &v);
    }
    if ((rc = table_link(db, o)) < 0 ||
        (rc = undo_push(db, U_CREATE, o, -1, 0, NULL)) < 0) {
        obj_free(o);
        return rc;
    }
    X(o)->created_in_txn = true;
    touch(db, o, -1);
    /* Defaults may name related objects (rare): mirror them. */
    for (i = 0; i < c->nfields; i++) {
        const struct xcp__field *f = &c->fields[i];
        if (forward_rel(f) && (rc = derived_add(db, strfield(o, (int)i),
                                                f->rel_cls, f->rel_field,
                                                o->ref)) < 0)
            return rc;
    }
    *out = o;
    return 0;
}

int xcp__db_destroy(xcp__db *db, xcp__obj *o)
{
    const struct xcp__class *c = &xcp__classes[o->cls];
    size_t i;
    int rc;

    if (db->depth <= 0)
        return xcp__internal("database change outside a transaction");
    for (i = 0; i < c->nfields; i++) {
        const struct xcp__field *f = &c->fields[i];
        if (forward_rel(f) && (rc = derived_del(db, strfield(o, (int)i),
                                                f->rel_cls, f->rel_field,
                                                o->ref)) < 0)
            return rc;
    }
    if ((rc = undo_push(db, U_DESTROY, o, -1, 0, NULL)) < 0)
        return rc;
    table_unlink(db, o);
    X(o)->destroyed_in_txn = true;
    if (o->in_txn && db->touched_tail != o) {
        /* The journal lists a deletion where it happened, after what the
         * transaction created before it: replaying creations and
         * deletions in that order rebuilds the lists in the same order
         * (a deletion moves the last object into the hole). */
        xcp__obj **pp = &db->touched;
        while (*pp != o)
            pp = &(*pp)->tnext;
        *pp = o->tnext;
        o->tnext = NULL;
        db->touched_tail->tnext = o;
        db->touched_tail = o;
    }
    touch(db, o, -1);
    return 0;
}

int xcp__db_touch(xcp__db *db, xcp__obj *o)
{
    if (db->depth <= 0)
        return xcp__internal("database change outside a transaction");
    touch(db, o, -1);
    return 0;
}

/* ---- lookups ---------------------------------------------------------- */

xcp__obj *xcp__db_get(xcp__db *db, const char *ref)
{
    return ref ? xcp__hmap_get(&db->refs, ref) : NULL;
}

int xcp__db_tomb_class(xcp__db *db, const char *ref)
{
    struct objx *t;

    for (t = db->tombhead; t && ref; t = t->tombnext)
        if (!strcmp(t->o.ref, ref))
            return t->o.cls;
    return -1;
}

xcp__obj *xcp__db_get_cls(xcp__db *db, int cls, const char *ref)
{
    xcp__obj *o = xcp__db_get(db, ref);

    return (o && o->cls == cls) ? o : NULL;
}

xcp__obj *xcp__db_by_uuid(xcp__db *db, int cls, const char *uuid)
{
    return uuid ? xcp__hmap_get(&db->t[cls].uuid, uuid) : NULL;
}

xcp__obj *const *xcp__db_all(xcp__db *db, int cls, size_t *n)
{
    *n = db->t[cls].n;
    return db->t[cls].objs;
}

xcp__obj *const *xcp__db_by_name(xcp__db *db, int cls, const char *name,
                                 size_t *n)
{
    struct namebucket *b = name ? xcp__hmap_get(&db->t[cls].names, name)
                                : NULL;

    *n = b ? b->n : 0;
    return b ? b->objs : NULL;
}

size_t xcp__db_count(xcp__db *db, int cls)
{
    return db->t[cls].n;
}

const char *xcp__obj_str(const xcp__obj *o, int field)
{
    const char *s = strfield(o, field);

    return s ? s : "";
}

int64_t xcp__obj_int(const xcp__obj *o, int field)
{
    const xcp_value *v = &o->f[field];

    if (v->kind == XCP_VAL_INT)
        return v->u.i;
    if (v->kind == XCP_VAL_DATETIME)
        return v->u.t;
    return 0;
}

double xcp__obj_float(const xcp__obj *o, int field)
{
    const xcp_value *v = &o->f[field];

    return v->kind == XCP_VAL_FLOAT ? v->u.f : 0.0;
}

bool xcp__obj_bool(const xcp__obj *o, int field)
{
    const xcp_value *v = &o->f[field];

    return v->kind == XCP_VAL_BOOL && v->u.b;
}

const xcp_value *xcp__obj_val(const xcp__obj *o, int field)
{
    return &o->f[field];
}

const xcp_value *xcp__obj_map_get(const xcp__obj *o, int field,
                                  const char *key)
{
    const xcp_value *m = &o->f[field];
    size_t i;

    if (m->kind != XCP_VAL_STRUCT)
        return NULL;
    for (i = 0; i < m->u.st.n; i++)
        if (strcmp(m->u.st.keys[i], key) == 0)
            return &m->u.st.vals[i];
    return NULL;
}

const char *xcp__obj_map_str(const xcp__obj *o, int field, const char *key)
{
    const xcp_value *v = xcp__obj_map_get(o, field, key);

    return (v && v->kind == XCP_VAL_STRING) ? v->u.s : NULL;
}

const char *xcp__obj_uuid(const xcp__obj *o)
{
    return xcp__obj_str(o, xcp__classes[o->cls].uuid_field);
}

int xcp__obj_record(const xcp__obj *o, xcp_value *out)
{
    const struct xcp__class *c = &xcp__classes[o->cls];
    size_t i;
    int rc;

    if ((rc = xcp__rec_alloc(out, o->cls)) < 0)
        return rc;
    for (i = 0; i < c->nfields; i++) {
        if ((rc = xcp_value_copy(&out->u.rec.fields[i], &o->f[i])) < 0) {
            xcp_value_dispose(out);
            return rc;
        }
    }
    return 0;
}

uint64_t xcp__db_generation(const xcp__db *db)
{
    return db->gen;
}

uint64_t xcp__db_horizon(const xcp__db *db)
{
    return db->horizon;
}

xcp__obj *xcp__db_changes_after(xcp__db *db, uint64_t g)
{
    xcp__obj *o = db->gtail;

    /* Walk back from the newest: cost proportional to the changes. */
    while (o && o->gprev && o->gprev->gen > g)
        o = o->gprev;
    return (o && o->gen > g) ? o : NULL;
}

xcp__obj *xcp__db_newest(xcp__db *db)
{
    return db->gtail;
}

void xcp__db_on_commit(xcp__db *db, void (*fn)(void *, uint64_t), void *arg)
{
    db->on_commit = fn;
    db->on_commit_arg = arg;
}

void xcp__db_set_fsync(xcp__db *db, int policy, int group_ms)
{
    db->fsync_policy = policy;
    db->group_ms = group_ms;
}

/* ---- loading ---------------------------------------------------------- */

xcp__obj *xcp__db_load_create(xcp__db *db, int cls, const char *ref)
{
    xcp__obj *o = xcp__db_get(db, ref);

    if (o)
        return o->cls == cls ? o : NULL;
    if (!(o = obj_alloc(cls, ref, false)))
        return NULL;
    if (table_link(db, o) < 0) {
        obj_free(o);
        return NULL;
    }
    glist_append(db, o);
    return o;
}

int xcp__db_load_defaults(xcp__db *db, xcp__obj *o)
{
    const struct xcp__class *c = &xcp__classes[o->cls];
    size_t i;

    for (i = 0; i < c->nfields; i++) {
        xcp_value v;
        if (o->f[i].kind != XCP_VAL_NONE)
            continue;
        if (xcp__value_default(c->fields[i].type, c->fields[i].def, &v) < 0)
            return XCP_ENOMEM;
        if (v.kind != XCP_VAL_NONE)
            raw_set(db, o, (int)i, &v);
    }
    return 0;
}

int xcp__db_load_set(xcp__db *db, xcp__obj *o, int field, xcp_value *v)
{
    raw_set(db, o, field, v);
    return 0;
}

void xcp__db_load_destroy(xcp__db *db, xcp__obj *o)
{
    table_unlink(db, o);
    glist_unlink(db, o);
    obj_free(o);
}

void xcp__db_load_done(xcp__db *db, uint64_t gen)
{
    int c;
    size_t i, k;

    /* Rebuild the derived side of every relation from the forward refs. */
    for (c = 0; c < xcp__nclasses; c++) {
        const struct xcp__class *cl = &xcp__classes[c];
        for (k = 0; k < cl->nfields; k++) {
            if (!(cl->fields[k].flags & XF_DERIVED))
                continue;
            for (i = 0; i < db->t[c].n; i++) {
                xcp_value *v = &db->t[c].objs[i]->f[k];
                xcp_value_dispose(v);
                xcp_value_set_array(v, 0);
            }
        }
    }
    for (c = 0; c < xcp__nclasses; c++) {
        const struct xcp__class *cl = &xcp__classes[c];
        for (k = 0; k < cl->nfields; k++) {
            const struct xcp__field *f = &cl->fields[k];
            if (!forward_rel(f))
                continue;
            for (i = 0; i < db->t[c].n; i++) {
                xcp__obj *o = db->t[c].objs[i];
                xcp__obj *t = xcp__db_get_cls(db, f->rel_cls,
                                              strfield(o, (int)k));
                xcp_value v;
                if (!t || xcp_value_set_string(&v, o->ref) < 0)
                    continue;
                if (arr_insert(&t->f[f->rel_field],
                               t->f[f->rel_field].u.arr.n, &v) < 0)
                    xcp_value_dispose(&v);
            }
        }
    }
    db->gen = gen;
    db->horizon = gen;
    for (c = 0; c < xcp__nclasses; c++)
        for (i = 0; i < db->t[c].n; i++)
            db->t[c].objs[i]->gen = db->t[c].objs[i]->created_gen = gen;
}

/* ---- open/close --------------------------------------------------------- */

int xcp__db_open(xcp__db **out, const char *dir)
{
    xcp__db *db;
    int c, rc;

    for (c = 0; c < xcp__nclasses; c++)
        if (xcp__classes[c].nfields > MAX_FIELDS)
            return xcp__internal("class %s has too many fields",
                                 xcp__classes[c].name);
    if (!(db = xcp__calloc(1, sizeof(*db))))
        return xcp__oom();
    db->fsync_policy = XCP__FSYNC_GROUP;
    db->group_ms = 200;
    if (dir) {
        if ((rc = xcp__journal_open(&db->j, dir)) < 0 ||
            (rc = xcp__journal_load(db->j, db)) < 0) {
            xcp__db_close(db);
            return rc;
        }
    }
    *out = db;
    return 0;
}

int xcp__db_snapshot(xcp__db *db)
{
    return db->j ? xcp__journal_snapshot(db->j, db) : 0;
}

void xcp__db_close(xcp__db *db)
{
    xcp__obj *o, *next;
    int c;

    if (!db)
        return;
    while (db->depth > 0)
        xcp__db_abort(db);
    if (db->j) {
        xcp__journal_sync(db->j);
        xcp__journal_close(db->j);
    }
    for (o = db->ghead; o; o = next) {
        next = o->gnext;
        obj_free(o);
    }
    for (c = 0; c < XCP__NCLASSES; c++) {
        struct table *t = &db->t[c];
        size_t i;
        for (i = 0; i < t->names.cap; i++) {
            struct namebucket *b = t->names.ents[i].val;
            if (t->names.ents[i].key && b) {
                free(b->objs);
                free(b->name);
                free(b);
            }
        }
        xcp__hmap_free(&t->names);
        xcp__hmap_free(&t->uuid);
        free(t->objs);
    }
    xcp__hmap_free(&db->refs);
    free(db->undo);
    free(db);
}
