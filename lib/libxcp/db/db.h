/*
 * The object database: tables of objects keyed by ref, indexes on uuid and
 * name_label, relations kept both ways, transactions with undo, one
 * generation per commit (event.from reads them), and persistence through
 * the journal (journal.c). Not thread-safe: the engine lock guards it.
 */
#ifndef XCP_DB_H
#define XCP_DB_H

#include "../model/model.h"

typedef struct xcp__db xcp__db;

typedef struct xcp__obj {
    int cls;
    bool deleted;          /* tombstone: kept in the generation list only */
    bool in_txn;           /* touched by the open transaction */
    uint32_t idx;          /* position in its class table */
    uint64_t gen;          /* generation of the last committed change */
    uint64_t created_gen;  /* generation that created it */
    struct xcp__obj *gprev, *gnext; /* generation order, oldest first */
    struct xcp__obj *tnext;         /* touched list of the open txn */
    char ref[XCP_REF_MAX];
    xcp_value *f;          /* nfields values (NULL once deleted) */
} xcp__obj;

/* fsync policies */
enum { XCP__FSYNC_NEVER, XCP__FSYNC_GROUP, XCP__FSYNC_ALWAYS };

/* Open (create) the database in dir and load it. Returns 0 or a negative
 * code with the thread error set (which file, what is wrong). */
int xcp__db_open(xcp__db **out, const char *dir);
void xcp__db_close(xcp__db *db);
/* Write a snapshot now and truncate the journal. */
int xcp__db_snapshot(xcp__db *db);
void xcp__db_set_fsync(xcp__db *db, int policy, int group_ms);

/* Lookups. Objects stay valid until destroyed and committed. */
xcp__obj *xcp__db_get(xcp__db *db, const char *ref);
xcp__obj *xcp__db_get_cls(xcp__db *db, int cls, const char *ref);
xcp__obj *xcp__db_by_uuid(xcp__db *db, int cls, const char *uuid);
/* Objects of a class: an array valid until the next create/destroy. */
xcp__obj *const *xcp__db_all(xcp__db *db, int cls, size_t *n);
/* Objects of a class with this name_label (array valid as above). */
xcp__obj *const *xcp__db_by_name(xcp__db *db, int cls, const char *name,
                                 size_t *n);
size_t xcp__db_count(xcp__db *db, int cls);

/* Transactions: every change happens between begin and commit/abort.
 * Commit writes the journal before returning; abort undoes in reverse. */
void xcp__db_begin(xcp__db *db);
int xcp__db_commit(xcp__db *db);
void xcp__db_abort(xcp__db *db);
bool xcp__db_in_txn(const xcp__db *db);
/* Queue fn(arg, true) to run once the open transaction is committed (its
 * journal line written and synced, whatever the fsync policy), or
 * fn(arg, false) if it is aborted instead: for side effects that must not
 * outrun the commit, such as deleting a file the transaction stops
 * referring to.  fn runs once, with the engine's lock held, and owns arg.
 * Outside a transaction fn(arg, true) runs at once.  On failure (out of
 * memory) fn(arg, false) has run. */
int xcp__db_after_commit(xcp__db *db, void (*fn)(void *, bool), void *arg);

/* Changes (inside a transaction). Values passed by pointer are moved in. */
int xcp__db_create(xcp__db *db, int cls, const char *ref, const char *uuid,
                   xcp__obj **out);
int xcp__db_set(xcp__db *db, xcp__obj *o, int field, xcp_value *v);
int xcp__db_set_str(xcp__db *db, xcp__obj *o, int field, const char *s);
int xcp__db_set_int(xcp__db *db, xcp__obj *o, int field, int64_t i);
int xcp__db_set_float(xcp__db *db, xcp__obj *o, int field, double d);
int xcp__db_set_bool(xcp__db *db, xcp__obj *o, int field, bool b);
int xcp__db_set_time(xcp__db *db, xcp__obj *o, int field, xcp_datetime t);
/* Map field: put key (replacing), delete key (no-op when absent). */
int xcp__db_map_put(xcp__db *db, xcp__obj *o, int field, const char *key,
                    xcp_value *v);
int xcp__db_map_put_str(xcp__db *db, xcp__obj *o, int field, const char *key,
                        const char *val);
int xcp__db_map_del(xcp__db *db, xcp__obj *o, int field, const char *key);
/* Set field: add (idempotent), remove (no-op when absent). */
int xcp__db_set_add(xcp__db *db, xcp__obj *o, int field, xcp_value *v);
int xcp__db_set_add_str(xcp__db *db, xcp__obj *o, int field, const char *s);
int xcp__db_set_del(xcp__db *db, xcp__obj *o, int field, const xcp_value *v);
int xcp__db_destroy(xcp__db *db, xcp__obj *o);
/* Mark an object changed (event.inject). */
int xcp__db_touch(xcp__db *db, xcp__obj *o);

/* Field readers (no copies; valid while the object is unchanged). */
const char *xcp__obj_str(const xcp__obj *o, int field);
int64_t xcp__obj_int(const xcp__obj *o, int field);
double xcp__obj_float(const xcp__obj *o, int field);
bool xcp__obj_bool(const xcp__obj *o, int field);
const xcp_value *xcp__obj_val(const xcp__obj *o, int field);
/* Map lookup on a map field, or NULL. */
const xcp_value *xcp__obj_map_get(const xcp__obj *o, int field,
                                  const char *key);
const char *xcp__obj_map_str(const xcp__obj *o, int field, const char *key);
const char *xcp__obj_uuid(const xcp__obj *o);

/* The object's record as a value (deep copy). */
int xcp__obj_record(const xcp__obj *o, xcp_value *out);

/* Generations. */
uint64_t xcp__db_generation(const xcp__db *db);
/* Oldest generation whose deletions are still known (older tokens may
 * have missed deletions). */
uint64_t xcp__db_horizon(const xcp__db *db);
/* First object/tombstone in generation order with gen > g, or NULL;
 * follow ->gnext. */
xcp__obj *xcp__db_changes_after(xcp__db *db, uint64_t g);
/* Newest first: last object in generation order. */
xcp__obj *xcp__db_newest(xcp__db *db);

/* Called after each commit with the new generation (engine wakes waiters). */
void xcp__db_on_commit(xcp__db *db, void (*fn)(void *, uint64_t), void *arg);

/* ---- replication (docs/design-pool.md §2, §3) ---- */

/* Apply one replicated transaction to a replica: body is the journal body
 * the coordinator wrote, "T <gen> <ops...>" (without its sequence number;
 * a final newline is allowed), and seq its pool-wide sequence number,
 * which must be the one after the last this database holds. The ops run
 * as one transaction of their own (relations, indexes, generations and
 * tombstones kept as a local commit keeps them, no generation of the
 * replica's own: the rows get gen, or the next one when the replica's
 * volatile rows have already gone past it), the same body goes to the
 * journal under seq (one write(), per the fsync policy), and event.from
 * waiters wake as after any commit. Refused (INTERNAL_ERROR naming the
 * cause, nothing changed) inside a transaction, for a seq out of order,
 * a body that does not parse, or one that creates a row that exists or
 * changes or destroys one that does not. Engine lock held. */
int xcp__db_apply(xcp__db *db, uint64_t seq, const char *body, size_t len);
/* The sequence number of the last transaction in the journal (the pool's
 * seq on a replica). */
uint64_t xcp__db_seq(const xcp__db *db);

/* Catch-up of a replica (docs/design-pool.md §5.1). fn(arg, seq, body,
 * len) for every transaction of the journal after seq after, in order,
 * body being the record's ("T <gen> <ops...>", no newline; valid during
 * the call); 0 when all were given (none when after is the last), 1 when
 * the journal no longer holds after + 1 (compacted into the snapshot: a
 * snapshot is needed), < 0 (error set) on a damaged journal or when fn
 * fails. Engine lock held. */
int xcp__db_records_after(xcp__db *db, uint64_t after,
                          int (*fn)(void *, uint64_t, const char *, size_t),
                          void *arg);
/* The database's snapshot text (db.snap's format) at its current seq,
 * appended to out. Not inside a transaction. */
int xcp__db_snapshot_text(xcp__db *db, xcp__buf *out);
/* Check that snap (len bytes of db.snap's format) is a whole database by
 * loading it apart, in a scratch directory under dir; *seq is the
 * transaction it must be at (UINT64_MAX: any), and is set to it. Nothing
 * of dir's database is touched. */
int xcp__db_snapshot_check(const char *dir, const char *snap, size_t len,
                           uint64_t *seq);
/* Replace the database by the snapshot text snap (another replica's, at
 * transaction seq): checked by loading it apart first (nothing changes
 * when it is not a snapshot at seq), then the journal emptied, the
 * snapshot installed atomically in dir (the database's directory) and
 * loaded in place of the current contents (volatile rows, sessions and
 * tasks, are lost; hooks and settings kept); event waiters wake. */
int xcp__db_install(xcp__db *db, const char *dir, const char *snap,
                    size_t len, uint64_t seq);

/* The replication hook of a pooled host. Without one (a single host) the
 * commit path is unchanged. */
typedef struct xcp__db_repl {
    /* Before a commit with persistent changes writes its journal line:
     * 0 to go on, or < 0 with the thread error set to refuse it (the
     * transaction is rolled back: a member, an inquorate coordinator). */
    int (*prepare)(void *arg);
    /* After the line is written: hand body ("T <gen> <ops...>", no
     * newline) with its journal seq and gen to the pool. < 0 (error set)
     * is the commit's result, but the change stays applied and journaled
     * (it may or may not reach the others: design §3). */
    int (*submit)(void *arg, uint64_t seq, uint64_t gen, const char *body,
                  size_t len);
    /* The journal write failed after prepare said yes. */
    void (*cancel)(void *arg);
    /* A member (prepare returned XCP__DB_REPL_FORWARD): the transaction
     * is rolled back here and its body ("T <gen> <ops...>", no newline)
     * handed to this, which runs it on the coordinator and returns once
     * this replica has applied it (0), or < 0 with the error set. Called
     * with the engine lock held; it may drop and retake it. NULL: such a
     * prepare refuses. */
    int (*forward)(void *arg, const char *body, size_t len);
} xcp__db_repl;
/* What prepare returns to have the transaction forwarded. */
#define XCP__DB_REPL_FORWARD 1
/* Attach (ops NULL: detach) the hook; ops must outlive the attachment. */
void xcp__db_set_repl(xcp__db *db, const xcp__db_repl *ops, void *arg);

/* ---- journal.c (persistence), used by db.c ---- */
struct xcp__journal;
int xcp__journal_open(struct xcp__journal **out, const char *dir);
void xcp__journal_close(struct xcp__journal *j);
/* Load the snapshot and replay the journal into db via the raw loaders. */
int xcp__journal_load(struct xcp__journal *j, xcp__db *db);
/* Append one committed transaction line (already encoded). */
int xcp__journal_append(struct xcp__journal *j, const char *line, size_t len,
                        int fsync_policy, int group_ms);
int xcp__journal_snapshot(struct xcp__journal *j, xcp__db *db);
/* db as the text of a db.snap at journal seq seq (header, one line per
 * persistent object, trailer), appended to out: what a snapshot writes,
 * and what a joining member gets (pool/snapshot.c). */
int xcp__journal_snapshot_encode(xcp__db *db, uint64_t seq, xcp__buf *out);
/* The snapshot's text at the journal's seq, appended to out. */
int xcp__journal_snapshot_text(struct xcp__journal *j, xcp__db *db,
                               xcp__buf *out);
/* Empty the journal and install snap as the snapshot (atomically). */
int xcp__journal_install(struct xcp__journal *j, const char *snap,
                         size_t len);
/* See xcp__db_records_after. */
int xcp__journal_read_after(struct xcp__journal *j, uint64_t after,
                            int (*fn)(void *, uint64_t, const char *, size_t),
                            void *arg);
size_t xcp__journal_size(const struct xcp__journal *j);
size_t xcp__journal_snapshot_size(const struct xcp__journal *j);
int xcp__journal_sync(struct xcp__journal *j);
/* The sequence number of the last line written. */
uint64_t xcp__journal_seq(struct xcp__journal *j);
/* Run a body's ops (after "T <gen> ") inside the open transaction
 * through the ordinary changes (xcp__db_create/set/destroy); strict: a
 * creation of a row that exists, a change to one that does not, or
 * anything unparsable fails (-1, why says what) and the caller aborts. */
int xcp__journal_apply_ops(xcp__db *db, const char *ops, char *why,
                           size_t whylen);
/* The same; when it fails on a row that is not there (a set or destroy),
 * that row's ref goes into missing (XCP_REF_MAX bytes, may be NULL). */
int xcp__journal_apply_ops_missing(xcp__db *db, const char *ops, char *why,
                                   size_t whylen, char *missing);
/* The class of a row destroyed recently (a tombstone), or -1. Costs the
 * number of tombstones kept: for error paths. */
int xcp__db_tomb_class(xcp__db *db, const char *ref);

/* An object as a create op (" C <class> <ref> <fields>"), for commits and
 * snapshots. */
void xcp__db_enc_create(xcp__buf *b, xcp__obj *o);

/* Value text encoding shared by journal and snapshot. */
void xcp__enc_value(xcp__buf *b, const xcp_value *v);
int xcp__dec_value(const char **p, xcp_value *out);

/* Raw loaders used while loading (no undo, no journal, no gen bump). */
xcp__obj *xcp__db_load_create(xcp__db *db, int cls, const char *ref);
int xcp__db_load_set(xcp__db *db, xcp__obj *o, int field, xcp_value *v);
/* Give the fields a create line did not carry their defaults. */
int xcp__db_load_defaults(xcp__db *db, xcp__obj *o);
void xcp__db_load_destroy(xcp__db *db, xcp__obj *o);
void xcp__db_load_done(xcp__db *db, uint64_t gen);

#endif
