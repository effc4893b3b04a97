/*
 * The engine: one per state directory per process. It owns the database,
 * the hypervisor driver, the SR drivers, tasks and event waiters, and runs
 * every XenAPI call under its lock. lib/libxcp/api/ files hold the policy
 * of each class.
 */
#ifndef XCP_ENGINE_H
#define XCP_ENGINE_H

#include <pthread.h>

#include "../internal.h"
#include "../db/db.h"
#include "hv_internal.h"

#include <xcp/server.h>

typedef struct xcp__engine xcp__engine;

/*
 * A parked long poll: an event.from or event.next of a server request
 * that found nothing. Instead of holding a thread in xcp__ctx_wait, the
 * call returns XCP__PARKED and the waiter sits on e->waiters until a
 * commit changes an object it subscribes to, or its session ends; then
 * wake() runs (engine lock held; it must only queue the request) and the
 * server runs the call again. The server owns the memory.
 */
typedef struct xcp__waiter {
    struct xcp__waiter *prev, *next;
    bool parked;                /* linked on e->waiters */
    char session[XCP_REF_MAX];
    struct xcp__subs *subs;     /* owned (event.c) */
    void (*wake)(struct xcp__waiter *w);
} xcp__waiter;

/* engine_call's return when the call parked (see xcp__waiter). */
#define XCP__PARKED 1

struct xcp__engine {
    pthread_mutex_t lock;
    pthread_cond_t changed;  /* broadcast after every commit */
    char *state_dir;
    int lockfd;
    int refs;                /* open local sessions */
    xcp__db *db;
    xcp_hv *hv;
    char pool[XCP_REF_MAX];  /* the pool object */
    char host[XCP_REF_MAX];  /* this host */
    char dom0[XCP_REF_MAX];  /* this host's control domain VM */
    int workers;             /* running async workers */
    pthread_cond_t workers_done;
    bool stopping;
    /* host.shutdown/reboot accepted: host.enable answers
     * HOST_DISABLED_UNTIL_REBOOT until the daemon starts again (XAPI's
     * localdb flag of the same name). */
    bool disabled_until_reboot;
    struct xcp__engine *next;
    /* event.next queues, per session (engine/event.c) */
    struct xcp__evq *evqs;
    uint64_t evq_next_id;
    /* domain monitor */
    pthread_t monitor;
    bool monitor_running;
    int monitor_pipe[2];
    /* domains whose news came while their VM was busy (under lock): the
     * monitor tries them again (xcp__engine_defer) */
    xcp__hv_dirty deferred;
    /* parked long polls (engine/event.c) */
    xcp__waiter *waiters;
    size_t nwaiters;
    /* Completed tasks in the order they finished, for the task collector
     * (engine/task.c): a ring of (ref, finished). Entries may be stale (the
     * task was destroyed, or the transaction that finished it rolled
     * back); the collector checks each one it takes. */
    struct xcp__done_task {
        char ref[XCP_REF_MAX];
        int64_t finished;
    } *done;
    size_t done_head, done_n, done_cap;
    size_t task_max;         /* XCP_TASK_MAX: tasks kept (XAPI: 200) */
    int64_t task_timeout_s;  /* XCP_TASK_TIMEOUT: completed tasks' life */
    int64_t task_grace_s;    /* XCP_TASK_GRACE: kept at least this long */
    /* SR driver calls: held (recursively) from xcp__srt_get to
     * xcp__srt_free, and by the SR collector around its driver work;
     * taken after the engine lock, never before it (api/storage.c). */
    pthread_mutex_t sr_lock;
    /* The SR collector's thread: runs a pass when gc_wanted is set (see
     * xcp__sr_gc_request), one last one at close if it is pending. */
    pthread_t gc_thread;
    bool gc_running, gc_wanted, gc_stop;
    unsigned gc_passes;         /* passes the thread began (tests read it) */
    pthread_cond_t gc_cond;
    /* A collector run under way (gc_in_run), and calls waiting for it to
     * hand the SR's merges over (gc_yield: a snapshot at the chain
     * limit): under gc_run_lock, taken after sr_lock (api/storage.c). */
    pthread_mutex_t gc_run_lock;
    pthread_cond_t gc_run_cond;
    bool gc_in_run;
    unsigned gc_yield;
    /* The running disk whose leaf coalesce by its back end (disk_stream)
     * the run under way may start or follow: domid, vdev ("" none);
     * under gc_run_lock (api/storage.c, xcp__live_stream_stop). */
    uint32_t gc_stream_domid;
    char gc_stream_vdev[16];
    /* VDI images handed out (xcp__vdi_path, VDI streams; counted under
     * sr_lock) and VDI streams open now: the collector replaces a leaf's
     * image only when neither moved since it looked (api/storage.c). */
    uint64_t sr_open_gen;
    unsigned sr_streams;
    /* VDI streams open for writing (a VDI has one writer at a time),
     * under sr_lock (api/storage.c). */
    struct xcp__vdi_stream *sr_writers;
    /* The embedder's NBD server (xcp_server_set_nbd; nbd.export_vdi NULL:
     * none), under the engine lock (api/vdi_nbd.c). */
    xcp_server_nbd nbd;
    /* <state dir>/sr-intents: images being made or deleted outside the
     * commit of their record, and how many are in flight (storage.c). */
    int intent_fd;
    size_t intents;
    /* Images whose record went, for the collector's thread to delete
     * (xcp__vdi_delete_later, api/storage.c). */
    struct pending_image *doomed;
    /* The performance monitor (api/metrics.c), started by the first
     * server or data-source call (xcp__engine_metrics); under lock. */
    struct xcp__metrics *metrics;
    /* A pooled host's replication (pool/pool.h; NULL: a single host). */
    struct xcp__pool *pool_repl;
};

/* The engine's performance monitor, started at the first call (engine
 * lock held): NULL when the driver has no stats (or out of memory). */
struct xcp__metrics *xcp__engine_metrics(xcp__engine *e);
/* The same, taking the engine lock (servers, HTTP handlers). */
struct xcp__metrics *xcp__engine_metrics_locked(xcp__engine *e);
/* The metrics documents for the server's handlers (api/metrics.h): kind
 * 0 rrd_updates (start, interval, cf name or NULL, host, vm_uuids),
 * 1 the host's RRD, 2 the RRD of VM uuid, 3 Prometheus text, for
 * session (NULL: local root; else -EACCES, SESSION_INVALID, when it is
 * not a live session). 0, -ENODEV
 * (no monitor: the driver has no stats), -ENOENT (no such RRD), -ERANGE
 * (no archive fits), -ENOMEM. */
int xcp__engine_metrics_doc(xcp__engine *e, const char *session, int kind,
                            int64_t start,
                            int64_t interval, const char *cf, bool host,
                            const char *const *vm_uuids, size_t n, bool json,
                            const char *uuid, xcp__buf *out);
/* The destination's side of VM.pool_migrate (api/vm_migrate.c): fd, a
 * stream the source opened with CONNECT /migrate_receive on a pool
 * session, carries the handshake lines and the driver's migration stream
 * of VM vm (ref or uuid); seq: the source's database position, waited for
 * here first. Blocks until the guest runs here (0) or the migration
 * failed (negative, the error set, no domain left here). The caller
 * closes fd. */
int xcp__vm_migrate_receive(xcp__engine *e, const char *session,
                            const char *vm, uint64_t seq, int fd);
/* The same, for the server (which calls into the engine, not the API
 * files). */
int xcp__engine_migrate_receive(xcp__engine *e, const char *session,
                                const char *vm, uint64_t seq, int fd);
/* PUT /rrd (XAPI's put_rrd): body, XAPI's RRD XML, becomes the RRD of
 * uuid -- a VM (in memory when it runs here, else written for its next
 * start here) or, not to archive, this host -- for session (as above).
 * 0; -EACCES (SESSION_INVALID), -ENOENT (UUID_INVALID: no such VM or
 * host), -EINVAL (INVALID_VALUE: a host's RRD to archive, another host's,
 * or a body that is not an RRD, with the reason), -ENODEV (no monitor),
 * -EIO (the write failed: OUT_OF_SPACE or the path and errno). */
int xcp__engine_metrics_put(xcp__engine *e, const char *session,
                            const char *uuid, bool archive, const char *body,
                            size_t len);

/* The context of one call. */
typedef struct xcp__ctx {
    xcp__engine *e;
    xcp__db *db;
    int mid;
    const struct xcp__message *msg;
    char session[XCP_REF_MAX];
    char task[XCP_REF_MAX];   /* the call's task ("" for sync calls) */
    bool own_task;            /* task made for a sync call: destroyed after */
    size_t nargs;
    xcp_value *args;
    xcp_value *result;
    /* Server calls: where a long poll parks instead of blocking (NULL:
     * block), its absolute deadline (monotonic ms; 0: from the call's
     * timeout argument), and no_block: never wait (shutdown). */
    xcp__waiter *park;
    int64_t deadline_ms;
    bool no_block;
    /* The calling session's interrupt flag (xcp_session_interrupt), or
     * NULL: long polls stop waiting when it is set. */
    const int *interrupt;
} xcp__ctx;

typedef int (*xcp__impl_fn)(xcp__ctx *c);

/* A hand-written message implementation, registered by wire name. */
struct xcp__impl {
    const char *wire;
    xcp__impl_fn fn;
};

/* ---- hv_image.c ---- */
/* The image layer as the hypervisor drivers see it (xcp_hv_image_ops):
 * what the engine hands its driver at open. */
extern const xcp_hv_image_ops xcp__hv_image_ops;

/* ---- engine.c ---- */
/* Open (or share) the engine of a state directory; NULL = default dir. */
int xcp__engine_get(xcp__engine **out, const xcp_open_options *opts);
void xcp__engine_put(xcp__engine *e);
/* Resolve the default state directory (malloc()ed). */
char *xcp__default_state_dir(void);
/* Run one call: session check, arity already done by the caller. */
int xcp__engine_call(xcp__engine *e, const char *session, int mid,
                     bool async, size_t nargs, xcp_value *args,
                     xcp_value *result);
/* Options of a server call (see xcp__ctx.park). */
typedef struct xcp__call_opts {
    xcp__waiter *park;
    int64_t deadline_ms;
    bool no_block;
    const int *interrupt; /* see xcp__ctx.interrupt */
} xcp__call_opts;
/* Run fn(c, arg) as an internal call in one transaction under the
 * engine lock (committed when it returns >= 0, else rolled back). */
/* Domain domid changed while its VM was busy (an operation under way):
 * the monitor tries it again later, until the VM is not busy. Called by
 * the monitor's own reconciliation, under the engine lock. */
void xcp__engine_defer(xcp__engine *e, uint32_t domid);
/* The writes of an engine's start-up (first boot, reconciliation of the
 * domains, leftovers of interrupted calls), each its own transaction;
 * engine lock held. engine_open makes them, except on a pooled host,
 * whose pool code makes them once the pool confirms it is the
 * coordinator (so that they reach the members like any commit). */
int xcp__engine_startup_writes(xcp__engine *e);
int xcp__engine_txn(xcp__engine *e, int (*fn)(xcp__ctx *, void *),
                    void *arg);
/* The same when the engine lock is free now; 1 (nothing done) when it
 * is held: for best-effort updates that must never wait for it. */
int xcp__engine_try_txn(xcp__engine *e, int (*fn)(xcp__ctx *, void *),
                        void *arg);
/* A slice of a streamed get_all_records (engine/slice.c): under one hold
 * of the lock, the records of cls named by refs[0..n) into out[0..n),
 * whole (fields NULL) or as STRUCTs of the named fields; NONE for a ref
 * that is gone. SESSION_INVALID when session has ended. */
int xcp__engine_read_slice(xcp__engine *e, const char *session, int cls,
                           const xcp_value *refs, size_t n,
                           const int *fields, size_t nfields,
                           xcp_value *out);
/* xcp__engine_call with options; may return XCP__PARKED. */
int xcp__engine_call_opts(xcp__engine *e, const char *session, int mid,
                          bool async, size_t nargs, xcp_value *args,
                          xcp_value *result, const xcp__call_opts *o);
/* Take a parked waiter off the engine (deadline reached, shutdown).
 * False when it was already woken (its wake() ran or is running). */
bool xcp__engine_unpark(xcp__engine *e, xcp__waiter *w);
/* Free what a waiter owns (after it is unparked or woken). */
void xcp__waiter_dispose(xcp__waiter *w);
/* Whether session names a live session (no error set). */
bool xcp__engine_session_valid(xcp__engine *e, const char *session);
/* Whether this host is a pool member (docs/design-pool.md §7): then its
 * coordinator's address goes into coord (size n), for HOST_IS_SLAVE. */
bool xcp__engine_pool_member(xcp__engine *e, char *coord, size_t n);
/* Whether psecret is this host's pool secret (<state dir>/pool-secret;
 * false when it has none). */
bool xcp__engine_pool_secret_ok(xcp__engine *e, const char *psecret);
/* Run the periodic collectors (completed tasks) under the engine lock. */
void xcp__engine_gc(xcp__engine *e);
/* Prepare a call's arguments for message m: arity (MESSAGE_PARAMETER_
 * COUNT_MISMATCH), UTF-8, defaults, types. args has room for
 * m->nparams values; *n is the count given, updated. */
int xcp__prepare_args(const struct xcp__message *m, xcp_value *args,
                      size_t *n);
/* Commit what the call did so far and start a new transaction. */
int xcp__ctx_commit(xcp__ctx *c);
/* Drop the engine lock for slow work (what is pending is committed
 * first; returns that commit's result), and take it back (a new
 * transaction starts). */
int xcp__ctx_unlock(xcp__ctx *c);
void xcp__ctx_lock(xcp__ctx *c);
/* Commit, wait for a change (or until deadline_ms, monotonic; <0 =
 * forever), start a new transaction. Returns false on timeout. */
bool xcp__ctx_wait(xcp__ctx *c, int64_t deadline_ms);
/* Whether the calling session was interrupted (xcp_session_interrupt):
 * a waiting call checks it under the engine lock before each wait and
 * returns xcp__interrupted() (the interrupt broadcasts e->changed). */
bool xcp__ctx_interrupted(const xcp__ctx *c);
/* Create a task object (pending) in the current transaction. */
int xcp__task_new(xcp__ctx *c, const char *label, const char *descr,
                  xcp__obj **out);

/* Arguments, typed (already checked by dispatch). */
const char *xcp__arg_str(xcp__ctx *c, size_t i);
int64_t xcp__arg_int(xcp__ctx *c, size_t i);
double xcp__arg_float(xcp__ctx *c, size_t i);
bool xcp__arg_bool(xcp__ctx *c, size_t i);
const xcp_value *xcp__arg(xcp__ctx *c, size_t i);
/* Argument i as an object of class cls, or HANDLE_INVALID. */
int xcp__arg_obj(xcp__ctx *c, size_t i, int cls, xcp__obj **out);
/* A ref string as an object of class cls, or HANDLE_INVALID. */
int xcp__ref_obj(xcp__ctx *c, const char *ref, int cls, xcp__obj **out);
/* HANDLE_INVALID for class cls. */
int xcp__handle_invalid(int cls, const char *ref);

/* Results. */
int xcp__ret_str(xcp__ctx *c, const char *s);
int xcp__ret_ref(xcp__ctx *c, const xcp__obj *o);
void xcp__ret_int(xcp__ctx *c, int64_t i);

/* ---- implementation registry (dispatch.c) ---- */
/* The hand-written implementation of message mid, or NULL. */
xcp__impl_fn xcp__impl_find(int mid);
/* Check the implementation tables against the model: every row names a
 * message of the model, once; every explicit message (XM_EXPLICIT) is
 * either implemented or on the list of unimplemented ones (which answer
 * NOT_IMPLEMENTED), never both. Calls report (may be NULL) with each
 * problem, a string valid during the call; returns the number of problems
 * (make check fails on any: tests/unit/model). */
size_t xcp__impl_check(void (*report)(void *arg, const char *problem),
                       void *arg);
/* Tables from each api file. */
extern const struct xcp__impl xcp__impl_session[], xcp__impl_task[],
    xcp__impl_event[], xcp__impl_vm[], xcp__impl_vm_copy[], xcp__impl_host[],
    xcp__impl_pool[], xcp__impl_sr[], xcp__impl_pbd[], xcp__impl_vdi[],
    xcp__impl_vbd[], xcp__impl_vif[], xcp__impl_network[],
    xcp__impl_console[], xcp__impl_blob[], xcp__impl_secret[],
    xcp__impl_message[], xcp__impl_vdi_nbd[], xcp__impl_metrics[];
/* lib/libxcp/pool/fwd.c: intra-pool calls (pool.member_commit). */
extern const struct xcp__impl xcp__impl_pool_fwd[];

/* ---- generic.c: generated messages ---- */
int xcp__generic_call(xcp__ctx *c);
/* Set o's fields from a constructor record: the n fields listed in which
 * that the record carries (absent = XCP_VAL_NONE ones are skipped). */
int xcp__set_fields_from(xcp__ctx *c, xcp__obj *o, const xcp_value *rec,
                         const int *which, size_t n);
/* A constructor's record has every field the model marks req, else
 * XAPI's answer: INTERNAL_ERROR "Field <name> not present in rpc". */
int xcp__ctor_required(int cls, const xcp_value *rec);
/* Set every field a constructor may set from rec, except those in skip. */
int xcp__set_ctor_fields(xcp__ctx *c, xcp__obj *o, const xcp_value *rec,
                         const int *skip, size_t nskip);
/* Build the XCP_VAL_STRUCT ref -> record for a set of objects. */
int xcp__records_of(xcp__obj *const *objs, size_t n, xcp_value *out);

/* ---- event.c ---- */
void xcp__events_session_gone(xcp__engine *e, const char *session);
/* After the commit of generation gen: wake the waiters it concerns. */
void xcp__events_committed(xcp__engine *e, uint64_t gen);

/* ---- session.c ---- */
/* Record activity on a session (its last_active field). */
int xcp__session_touch(xcp__engine *e, const char *session);

/* ---- api/pool.c ---- */
/* Remove a member host and what was its alone (control domain, CPUs,
 * metrics, PIFs, PBDs, local SRs) from the pool's database: pool.eject,
 * host.destroy of a dead member. HOST_IN_USE for a VM of its. */
int xcp__pool_remove_host(xcp__ctx *c, xcp__obj *host);

/* ---- firstboot.c ---- */
int xcp__firstboot(xcp__ctx *c);
/* A pool member's start-up (docs/design-pool.md §7): its own host row is
 * the one whose other_config:corosync-nodeid is nodeid; refresh it, or
 * make it (host, metrics, CPUs, dom0) when the pool has none yet. Sets
 * e->host and e->dom0. The writes go through the coordinator. */
int xcp__firstboot_member(xcp__ctx *c, unsigned nodeid);
int xcp__templates_sync(xcp__ctx *c);

/* ---- reconcile (vm.c) ---- */
int xcp__vm_reconcile_all(xcp__ctx *c);
int xcp__vm_reconcile_domain(xcp__ctx *c, uint32_t domid);
/* The domain monitor's news for the n domains of ids: each domain (and its
 * guest agent's data) read from the driver without the engine lock, then
 * reconciled under it, in a transaction of its own (as
 * xcp__vm_reconcile_domain, which serves a VM changed since the reads).
 * Takes and releases e's lock itself: the caller must not hold it. */
void xcp__vm_monitor_news(xcp__engine *e, const uint32_t *ids, size_t n);
/* allowed_operations for any object with the field, per class rules. */
int xcp__update_allowed(xcp__ctx *c, xcp__obj *o);

/* ---- VM helpers (vm.c), shared with devices.c and firstboot.c ---- */
/* Whether vm boots as HVM (domain_type, or unspecified with a boot
 * policy). */
bool xcp__vm_is_hvm(const xcp__obj *vm);
/* Guest device name of a VBD slot: hda..hdd for HVM's first four, else
 * xvda.., xvdaa.. */
void xcp__vbd_device_name(bool is_hvm, int slot, char out[16]);
/* New VM records: metrics object, domid, allowed operations. */
int xcp__vm_init_record(xcp__ctx *c, xcp__obj *vm);
/* Destroy a VM record with its devices, consoles, metrics, suspend image. */
int xcp__vm_destroy_record(xcp__ctx *c, xcp__obj *vm);
/* The error op would get on vm now (0 if none). */
int xcp__vm_check_op(xcp__obj *vm, const char *op);

/* XAPI's changed-block-tracking checks of VDI operation op (enable_cbt,
 * data_destroy, what a cbt_metadata or tracked VDI refuses ...): 0, or
 * the XenAPI error raised.  Attachment is not looked at. */
int xcp__vdi_check_cbt(xcp__ctx *c, xcp__obj *vdi, const char *op);
/*
 * Whether a snapshot or clone of vdi can be taken while a running VM's
 * domain has it attached (api/storage.c takes it so, and refuses it
 * otherwise): the hypervisor driver pauses the disk's back end, or that
 * back end moves its writes onto the new leaf (disk_snapshot, through the
 * SR type's vdi_cow_live), which it cannot for a VDI with changed block
 * tracking (the back end keeps the bitmap) nor, with format (its domain
 * still there to write it), for any image but qcow2 (QEMU's vpc has no
 * backing files).  From tables alone: no driver call.
 */
bool xcp__vdi_live_cow_ok(xcp__ctx *c, xcp__obj *vdi, bool format);
/* VM_BAD_POWER_STATE [vm, expected, actual state in lower case]. */
int xcp__vm_bad_power_state(const char *vmref, const char *power_state,
                            const char *expected);

/* ---- devices.c ---- */
/* A random locally administered unicast MAC, "aa:bb:cc:dd:ee:ff". */
int xcp__mac_gen(char out[18]);
/* Parse "aa:bb:cc:dd:ee:ff"; -1 when malformed. */
int xcp__mac_parse(const char *s, uint8_t mac[6]);

/* ---- console.c ---- */
/* What a console is opened by; strings are borrowed for the call. */
typedef struct xcp__console_req {
    const char *session; /* NULL: a trusted caller (local root) */
    const char *id;      /* the console's ref or uuid */
    bool vm_too;         /* id may name a VM instead (its rfb console if it
                            has one, else its first), as /console allows */
} xcp__console_req;
/* Open a console's stream into *fd (the caller's): SESSION_INVALID (HTTP
 * 401), no id (INVALID_VALUE, 400), the console unknown (HANDLE_INVALID
 * or UUID_INVALID, 404), its VM not running or paused
 * (VM_BAD_POWER_STATE, 404), the driver's failure (INTERNAL_ERROR with
 * its message, 500). *http: the status to answer with (200 on success). */
int xcp__console_open(xcp__engine *e, const xcp__console_req *r, int *fd,
                      int *http);

/* ---- api/console.c ---- */
/* Set console con's location from the host's address, as XAPI does:
 * https://<host.address>/console?ref=<con's ref> ("" with no address). */
int xcp__console_set_location(xcp__ctx *c, xcp__obj *con);
/* The same for a console served by host (a VM migrated there). */
int xcp__console_set_location_at(xcp__ctx *c, xcp__obj *con, xcp__obj *host);
/* xcp__console_set_location on every console (the host's address moved). */
int xcp__consoles_relocate(xcp__ctx *c);

/* ---- task.c ---- */
/* Destroy task ref in a transaction of its own, keeping the thread's error:
 * the end of a task an HTTP handler made because its client named none
 * (XAPI's with_context destroys it with the request's context). */
void xcp__task_drop(xcp__engine *e, const char *ref);
/* True when the call's task was asked to cancel. */
bool xcp__task_cancelling(xcp__ctx *c);
/* Stamp task t finished (now) and queue it for the task collector. Call
 * it wherever a task leaves pending; t's status is set by the caller. */
int xcp__task_finished(xcp__ctx *c, xcp__obj *t);
/* The end of task t, for every kind of task (Async. calls, transfers):
 * error NULL: success, with result (NULL: none) encoded as XML-RPC;
 * else failure (cancelled for TASK_CANCELLED) with error, a XenAPI error
 * array, as error_info (moved from: the caller still disposes of it). Progress 1, no allowed operations, finished now
 * (xcp__task_finished). A task marked by task.destroy while pending is
 * destroyed instead. In the caller's transaction. */
int xcp__task_complete(xcp__ctx *c, xcp__obj *t, const xcp_value *result,
                       xcp_value *error);
/* The task collector, as XAPI's: completed tasks older than
 * e->task_timeout_s go, and while there are more than e->task_max tasks
 * the oldest completed ones that finished over e->task_grace_s ago go;
 * pending tasks stay. Engine lock held, no transaction open. Costs O(1)
 * when nothing is due, else O(collected + stale queue entries), never
 * O(tasks). */
void xcp__tasks_gc(xcp__engine *e);
/* Read XCP_TASK_MAX, XCP_TASK_TIMEOUT, XCP_TASK_GRACE (engine open). */
int xcp__tasks_gc_init(xcp__engine *e);

/* ---- sr.c ---- */
/* Create an SR with its PBD on host, format it and plug it. */
int xcp__sr_create(xcp__ctx *c, xcp__obj *host, const xcp_value *dconf,
                   const char *name, const char *descr, const char *type,
                   const char *content_type, bool shared, xcp__obj **out);

/* ---- operations bookkeeping (ops.c) ---- */
/* The first member of o's set field (refs of class cls) whose bool field
 * flag is true, e.g. an attached VBD of a VDI (VDI.VBDs, VBD,
 * currently_attached) or an attached PBD of an SR; NULL when none is. */
xcp__obj *xcp__set_member_with(xcp__ctx *c, const xcp__obj *o, int set,
                               int cls, int flag);
/* Destroy every object of class cls that o's set field lists (a VM's
 * VBDs, an SR's PBDs ...), first to last; a dangling ref ends the walk. */
int xcp__destroy_set(xcp__ctx *c, const xcp__obj *o, int set, int cls);
/* Add {task: op} to o.current_operations after checking it is allowed
 * (class rules), and refresh allowed_operations. */
int xcp__op_start(xcp__ctx *c, xcp__obj *o, const char *op);
/* Remove this call's entry, refresh allowed_operations. */
int xcp__op_end(xcp__ctx *c, xcp__obj *o);
/* For a hard_shutdown or hard_reboot (op) already in *vm's
 * current_operations: cancel the operations XAPI's hard op cancels
 * (clean_shutdown, clean_reboot, suspend, ...; hard_shutdown also
 * hard_reboot and shutdown) and wait until every other operation on the
 * VM has ended. *vm is re-resolved; TASK_CANCELLED when this call is
 * cancelled meanwhile, HANDLE_INVALID if the VM went. */
int xcp__vm_preempt(xcp__ctx *c, xcp__obj **vm, const char *op);
/* The task ref identifying this call's operations (creates one for a
 * synchronous call on first use). */
const char *xcp__ctx_opref(xcp__ctx *c);

/* Field index shorthand: F(VM, power_state). */
#define F(cls, field) XCP__F_##cls##_##field
#define C(cls) XCP__C_##cls

#endif
