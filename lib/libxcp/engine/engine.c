/*
 * The engine's life: finding and locking the state directory, opening the
 * database and the hypervisor driver, first boot, the domain monitor, and
 * running calls (synchronously, or on a worker thread for Async.) under
 * the engine lock with one database transaction per call.
 *
 * A process keeps one engine per state directory, shared by its local
 * sessions: that list (and its mutex) is the library's only global state.
 * Between processes, a lock file serialises owners: xe commands run one
 * after another, and a daemon holds it for its lifetime.
 */
#include "engine.h"
#include "../pool/pool.h"
#include "../api/metrics.h"
#include "../api/http_handlers.h"
#include "../api/storage.h"
#include "../api/vm_int.h"
#include "../rpc/rpc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t engines_lock = PTHREAD_MUTEX_INITIALIZER;
static xcp__engine *engines;

char *xcp__default_state_dir(void)
{
    const char *env = getenv("XCP_STATE_DIR");
    const char *home;

    if (env && *env)
        return xcp__strdup(env);
    if (geteuid() == 0)
        return xcp__strdup("/var/lib/xcp");
    env = getenv("XDG_DATA_HOME");
    if (env && *env)
        return xcp__printf("%s/xcp", env);
    home = getenv("HOME");
    if (!home || !*home) {
        struct passwd *pw = getpwuid(geteuid());
        home = pw ? pw->pw_dir : "/tmp";
    }
    return xcp__printf("%s/.local/share/xcp", home);
}

static int lock_dir(xcp__engine *e, unsigned timeout_ms)
{
    char *path = xcp__printf("%s/lock", e->state_dir);
    int64_t deadline = xcp__now_ms() + timeout_ms;
    int fd;

    if (!path)
        return xcp__oom();
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    free(path);
    if (fd < 0)
        return xcp__internal("cannot open the lock file in %s: %s",
                             e->state_dir, strerror(errno));
    for (;;) {
        if (flock(fd, timeout_ms ? LOCK_EX | LOCK_NB : LOCK_EX) == 0)
            break;
        if (errno == EINTR)
            continue;
        if (errno != EWOULDBLOCK || xcp__now_ms() >= deadline) {
            close(fd);
            return XCP__ERR_INTERNAL_ERROR(
                "the state directory is locked by another "
                "process");
        }
        usleep(2000);
    }
    e->lockfd = fd;
    return 0;
}

static void on_commit(void *arg, uint64_t gen)
{
    xcp__engine *e = arg;

    if (e->waiters)
        xcp__events_committed(e, gen);
    pthread_cond_broadcast(&e->changed);
}

/* Run fn(c, arg) in a transaction as an internal call; lock held. */
static int txn_locked(xcp__engine *e, int (*fn)(xcp__ctx *, void *),
                      void *arg)
{
    xcp__ctx c;
    int rc;

    memset(&c, 0, sizeof(c));
    c.e = e;
    c.db = e->db;
    c.mid = -1;
    xcp__db_begin(e->db);
    rc = fn(&c, arg);
    if (rc < 0)
        xcp__db_abort(e->db);
    else
        rc = xcp__db_commit(e->db);
    return rc;
}

int xcp__engine_txn(xcp__engine *e, int (*fn)(xcp__ctx *, void *),
                    void *arg)
{
    int rc;

    pthread_mutex_lock(&e->lock);
    rc = txn_locked(e, fn, arg);
    xcp__tasks_gc(e);
    pthread_mutex_unlock(&e->lock);
    return rc;
}

int xcp__engine_try_txn(xcp__engine *e, int (*fn)(xcp__ctx *, void *),
                        void *arg)
{
    int rc;

    if (pthread_mutex_trylock(&e->lock) != 0)
        return 1;
    rc = txn_locked(e, fn, arg);
    xcp__tasks_gc(e);
    pthread_mutex_unlock(&e->lock);
    return rc;
}

static int firstboot_txn(xcp__ctx *c, void *arg)
{
    XCP__UNUSED(arg);
    return xcp__firstboot(c);
}

static int reconcile_txn(xcp__ctx *c, void *arg)
{
    XCP__UNUSED(arg);
    return xcp__vm_reconcile_all(c);
}

static int member_boot_txn(xcp__ctx *c, void *arg)
{
    XCP__UNUSED(arg);
    return xcp__firstboot_member(c, xcp__pool_nodeid(c->e->pool_repl));
}

/* A pool member's start-up writes (its host row, dom0, metrics, its
 * domains' states) go through the coordinator (docs/design-pool.md §7);
 * when it cannot be reached they are lost, the host starts anyway. */
static void member_boot(xcp__engine *e)
{
    char host[XCP_REF_MAX], dom0[XCP_REF_MAX];
    int rc;

    if (!xcp__pool_wait_joined(e->pool_repl, 10000))
        xcp__log(XCP__LOG_WARN, "pool member start-up: not in the pool's "
                 "group after 10 s; writing anyway");
    pthread_mutex_lock(&e->lock);
    snprintf(host, sizeof(host), "%s", e->host);
    snprintf(dom0, sizeof(dom0), "%s", e->dom0);
    rc = txn_locked(e, member_boot_txn, NULL);
    if (rc < 0 && !xcp__db_get_cls(e->db, C(host), e->host)) {
        /* Its row was not made: keep the rows start-up learnt. */
        snprintf(e->host, sizeof(e->host), "%s", host);
        snprintf(e->dom0, sizeof(e->dom0), "%s", dom0);
    }
    if (rc == 0)
        rc = txn_locked(e, reconcile_txn, NULL);
    pthread_mutex_unlock(&e->lock);
    if (rc < 0) {
        const xcp_error *x = xcp_error_last();
        xcp__log(XCP__LOG_WARN, "pool member start-up: its writes did not "
                 "reach the coordinator: %s %s", x ? x->name : "?",
                 x && x->nparams ? x->params[0] : "");
        xcp_error_clear();
    } else {
        xcp__log(XCP__LOG_INFO, "pool member start-up: host %s written "
                 "through the coordinator", e->host);
    }
}

static int leftovers_txn(xcp__ctx *c, void *arg)
{
    XCP__UNUSED(arg);
    return xcp__sr_collect_leftovers(c);
}

int xcp__engine_startup_writes(xcp__engine *e)
{
    int rc = txn_locked(e, firstboot_txn, NULL);

    if (rc == 0)
        rc = txn_locked(e, reconcile_txn, NULL);
    /* Leftovers of calls a crash interrupted; failing to collect them
     * must not keep the engine closed. */
    if (rc == 0 && txn_locked(e, leftovers_txn, NULL) < 0) {
        xcp__log(XCP__LOG_WARN, "leftovers of interrupted calls not "
                 "collected: %s", xcp_error_last() ? xcp_error_last()->name
                                                   : "?");
        xcp_error_clear();
    }
    return rc;
}

/* The SR collector's thread (see xcp__sr_collect). */
static void *collector_main(void *arg)
{
    xcp__engine *e = arg;

    pthread_mutex_lock(&e->lock);
    for (;;) {
        while (!e->gc_wanted && !e->gc_stop)
            pthread_cond_wait(&e->gc_cond, &e->lock);
        if (!e->gc_wanted)
            break;
        e->gc_wanted = false;
        e->gc_passes++;
        pthread_mutex_unlock(&e->lock);
        xcp__sr_drop_doomed(e);
        xcp__sr_collect(e);
        pthread_mutex_lock(&e->lock);
    }
    pthread_mutex_unlock(&e->lock);
    return NULL;
}

void xcp__engine_defer(xcp__engine *e, uint32_t domid)
{
    xcp__hv_dirty_mark(&e->deferred, domid);
}

/* Reconciles the n domains of ids (the driver read without the lock,
 * xcp__vm_monitor_news); returns whether news is left deferred. */
static bool reconcile_ids(xcp__engine *e, const uint32_t *ids, size_t n)
{
    bool left;

    xcp__vm_monitor_news(e, ids, n);
    pthread_mutex_lock(&e->lock);
    /* Calls waiting on a domain (clean shutdown) re-check it. */
    pthread_cond_broadcast(&e->changed);
    left = e->deferred.n > 0;
    pthread_mutex_unlock(&e->lock);
    return left;
}

/* The deferred domains (news that came while their VM was busy), tried
 * again; those whose VM is still busy are deferred anew. Returns whether
 * any remain. */
static bool reconcile_deferred(xcp__engine *e)
{
    uint32_t ids[64];
    size_t n;

    pthread_mutex_lock(&e->lock);
    n = xcp__hv_dirty_take(&e->deferred, ids, XCP__ARRAY_LEN(ids));
    pthread_mutex_unlock(&e->lock);
    return reconcile_ids(e, ids, n);
}

/*
 * The domain monitor: reconciles the domains the driver says changed. News
 * for a VM whose operation is under way waits (the operation owns the VM)
 * and is tried again every DEFER_MS, off the way of the operation's own
 * end: not at the moment it ends, when the monitor's driver calls would
 * hold the engine lock just as the call finishes its task.
 */
#define DEFER_MS 1000

static void *monitor_main(void *arg)
{
    xcp__engine *e = arg;
    xcp_hv_error herr;
    int64_t due = -1; /* when the deferred domains are tried again */
    int hvfd = -1, timeout;
    bool left;

    if (xcp__hv_event_fd(e->hv, &hvfd, &herr) < 0)
        hvfd = -1;
    for (;;) {
        struct pollfd p[2] = {{e->monitor_pipe[0], POLLIN, 0},
                              {hvfd, POLLIN, 0}};
        uint32_t ids[64];
        size_t n = 0;

        timeout = due < 0 ? -1
                          : (int)(due > xcp__now_ms() ? due - xcp__now_ms()
                                                      : 0);
        if (poll(p, hvfd >= 0 ? 2 : 1, timeout) < 0 && errno != EINTR)
            break;
        if (p[0].revents)
            break;
        if (due >= 0 && xcp__now_ms() >= due)
            due = reconcile_deferred(e) ? xcp__now_ms() + DEFER_MS : -1;
        if (hvfd < 0 || !(p[1].revents & POLLIN))
            continue;
        /* Which domains changed is the driver's business alone: asked
         * without the engine lock, so that a driver call in progress
         * elsewhere (a domain being built, for seconds) keeps only this
         * thread waiting, not every call that needs the engine. */
        if (xcp__hv_event_read(e->hv, ids, XCP__ARRAY_LEN(ids), &n,
                               &herr) < 0)
            continue;
        left = reconcile_ids(e, ids, n);
        if (left && due < 0)
            due = xcp__now_ms() + DEFER_MS;
    }
    return NULL;
}

static void engine_free(xcp__engine *e)
{
    /* First: its thread applies records under the engine lock. */
    xcp__pool_close(e->pool_repl);
    e->pool_repl = NULL;
    if (e->gc_running) {
        /* It finishes a pending pass first. */
        pthread_mutex_lock(&e->lock);
        e->gc_stop = true;
        pthread_cond_signal(&e->gc_cond);
        pthread_mutex_unlock(&e->lock);
        pthread_join(e->gc_thread, NULL);
        xcp__sr_drop_doomed(e); /* none left, unless it could not run */
    }
    if (e->monitor_running) {
        char b = 'q';
        if (write(e->monitor_pipe[1], &b, 1) < 0)
            xcp__log(XCP__LOG_WARN, "cannot stop the domain monitor");
        pthread_join(e->monitor, NULL);
    }
    xcp__metrics_stop(e->metrics);
    e->metrics = NULL;
    if (e->monitor_pipe[0] > 0) {
        close(e->monitor_pipe[0]);
        close(e->monitor_pipe[1]);
    }
    xcp__hv_dirty_free(&e->deferred);
    if (e->hv)
        xcp__hv_close(e->hv);
    xcp__db_close(e->db);
    if (e->lockfd > 0)
        close(e->lockfd);
    if (e->intent_fd >= 0)
        close(e->intent_fd);
    pthread_mutex_destroy(&e->lock);
    pthread_mutex_destroy(&e->sr_lock);
    pthread_cond_destroy(&e->gc_cond);
    pthread_mutex_destroy(&e->gc_run_lock);
    pthread_cond_destroy(&e->gc_run_cond);
    pthread_cond_destroy(&e->changed);
    pthread_cond_destroy(&e->workers_done);
    free(e->state_dir);
    free(e->done);
    free(e);
}

static int fsync_policy_from_env(xcp__db *db)
{
    const char *s = getenv("XCP_DB_FSYNC");

    if (!s || !*s)
        return 0;
    if (!strcmp(s, "always"))
        xcp__db_set_fsync(db, XCP__FSYNC_ALWAYS, 0);
    else if (!strcmp(s, "never"))
        xcp__db_set_fsync(db, XCP__FSYNC_NEVER, 0);
    else if (atoi(s) > 0)
        xcp__db_set_fsync(db, XCP__FSYNC_GROUP, atoi(s));
    else
        return XCP__ERR_INVALID_VALUE("XCP_DB_FSYNC", s);
    return 0;
}

static int engine_open(xcp__engine **out, const char *dir,
                       const xcp_open_options *opts)
{
    xcp__engine *e = xcp__calloc(1, sizeof(*e));
    xcp_hv_error herr;
    int rc;

    if (!e)
        return xcp__oom();
    pthread_condattr_t ca;
    pthread_mutexattr_t ma;

    pthread_mutex_init(&e->lock, NULL);
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&e->sr_lock, &ma);
    pthread_mutexattr_destroy(&ma);
    pthread_cond_init(&e->gc_cond, NULL);
    pthread_mutex_init(&e->gc_run_lock, NULL);
    pthread_cond_init(&e->gc_run_cond, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&e->changed, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&e->workers_done, NULL);
    e->lockfd = -1;
    e->intent_fd = -1;
    e->monitor_pipe[0] = e->monitor_pipe[1] = -1;
    if (!(e->state_dir = xcp__strdup(dir))) {
        rc = xcp__oom();
        goto fail;
    }
    if ((rc = xcp__mkdir_p(dir, 0700)) < 0) {
        rc = xcp__internal("cannot create the state directory %s: %s", dir,
                           strerror(-rc));
        goto fail;
    }
    if ((rc = lock_dir(e, opts ? opts->lock_timeout_ms : 0)) < 0 ||
        (rc = xcp__sr_intents_open(e)) < 0)
        goto fail;
    /* a host restore staged by /host_restore goes in place first */
    if ((rc = xcp__host_restore_apply(dir)) < 0 ||
        (rc = xcp__pool_snapshot_apply(dir)) < 0 ||
        (rc = xcp__db_open(&e->db, dir)) < 0)
        goto fail;
    if ((rc = fsync_policy_from_env(e->db)) < 0 ||
        (rc = xcp__tasks_gc_init(e)) < 0)
        goto fail;
    xcp__db_on_commit(e->db, on_commit, e);
    if (xcp__hv_open(&e->hv, dir, opts ? opts->hv : NULL, &herr) < 0) {
        rc = xcp__internal("cannot open the hypervisor driver: %s",
                           herr.message);
        goto fail;
    }
    xcp__hv_set_image_ops(e->hv, &xcp__hv_image_ops);
    pthread_mutex_lock(&e->lock);
    if (xcp__pool_role_pooled(dir)) {
        /* A pooled host writes nothing before the pool confirms it is the
         * coordinator (the only writer, docs/design-pool.md §2): start-up
         * only learns which rows are the pool, the host and dom0; a
         * confirmed coordinator then makes its start-up writes through
         * the pool (xcp__engine_startup_writes, from pool.c). */
        xcp__db_begin(e->db);
        rc = firstboot_txn(&(xcp__ctx){.e = e, .db = e->db, .mid = -1},
                           NULL);
        xcp__db_abort(e->db);
        pthread_mutex_unlock(&e->lock);
        if (rc < 0 || (rc = xcp__pool_open(&e->pool_repl, e)) < 0)
            goto fail;
        /* a member's own start-up writes go through the coordinator; a
         * coordinator's are made once a round of states confirms it */
        if (xcp__pool_role_member(dir))
            member_boot(e);
        goto started;
    }
    rc = xcp__engine_startup_writes(e);
    pthread_mutex_unlock(&e->lock);
    if (rc < 0 || (rc = xcp__pool_open(&e->pool_repl, e)) < 0)
        goto fail;
started:
    if (pthread_create(&e->gc_thread, NULL, collector_main, e) == 0)
        e->gc_running = true;
    if (pipe2(e->monitor_pipe, O_CLOEXEC) == 0 &&
        pthread_create(&e->monitor, NULL, monitor_main, e) == 0)
        e->monitor_running = true;
    *out = e;
    return 0;
fail:
    engine_free(e);
    return rc;
}

/* The monitor's resolver: the SR of each disk of a running VM, matched
 * by the device name the guest sees (VBD.device, or the one its
 * userdevice gives, PV or HVM). Takes the engine's lock; the monitor
 * calls it without its own. */
static void metrics_srs(void *ctx, const char *vm_uuid, size_t n,
                        const char *const *devs, char (*srs)[XCP_HV_UUID_LEN])
{
    xcp__engine *e = ctx;
    const xcp_value *vbds;
    xcp__obj *vm;
    size_t i, k;

    pthread_mutex_lock(&e->lock);
    vm = e->stopping ? NULL : xcp__db_by_uuid(e->db, C(VM), vm_uuid);
    vbds = vm ? xcp__obj_val(vm, F(VM, VBDs)) : NULL;
    for (i = 0; vbds && vbds->kind == XCP_VAL_ARRAY && i < vbds->u.arr.n;
         i++) {
        xcp__obj *vbd = xcp__db_get_cls(e->db, C(VBD),
                                        vbds->u.arr.items[i].u.s);
        xcp__obj *vdi, *sr;
        char pv[16], hvm[16];
        const char *dev;
        int slot;

        if (!vbd || !(vdi = xcp__db_get_cls(e->db, C(VDI),
                                            xcp__obj_str(vbd, F(VBD, VDI)))) ||
            !(sr = xcp__db_get_cls(e->db, C(SR),
                                   xcp__obj_str(vdi, F(VDI, SR)))))
            continue;
        dev = xcp__obj_str(vbd, F(VBD, device));
        slot = atoi(xcp__obj_str(vbd, F(VBD, userdevice)));
        xcp__vbd_device_name(false, slot, pv);
        xcp__vbd_device_name(true, slot, hvm);
        for (k = 0; k < n; k++)
            if ((*dev && !strcmp(devs[k], dev)) ||
                (!*dev && (!strcmp(devs[k], pv) || !strcmp(devs[k], hvm))))
                snprintf(srs[k], XCP_HV_UUID_LEN, "%s", xcp__obj_uuid(sr));
    }
    pthread_mutex_unlock(&e->lock);
}

struct xcp__metrics *xcp__engine_metrics(xcp__engine *e)
{
    xcp__obj *host, *dom0;

    if (e->metrics || e->stopping)
        return e->metrics;
    host = xcp__db_get(e->db, e->host);
    dom0 = xcp__db_get(e->db, e->dom0);
    e->metrics = xcp__metrics_start(e->hv, e->state_dir,
                                    host ? xcp__obj_uuid(host) : "",
                                    dom0 ? xcp__obj_uuid(dom0) : NULL, true);
    if (e->metrics)
        xcp__metrics_set_sr_resolver(e->metrics, metrics_srs, e);
    return e->metrics;
}

struct xcp__metrics *xcp__engine_metrics_locked(xcp__engine *e)
{
    struct xcp__metrics *m;

    pthread_mutex_lock(&e->lock);
    m = xcp__engine_metrics(e);
    pthread_mutex_unlock(&e->lock);
    return m;
}

/* Why the engine has no metrics monitor, as the thread's error: a cause
 * we can name (a driver without statistics), else the monitor's start
 * failed (memory, or its directory; logged). -ENODEV. */
static int no_monitor(xcp__engine *e)
{
    char why[160];

    if (!xcp__hv_supports(e->hv, XCP_HV_OP_STATS)) {
        snprintf(why, sizeof(why),
                 "metrics: the %s hypervisor driver gives no statistics",
                 xcp__hv_name(e->hv));
        XCP__ERR_NOT_IMPLEMENTED(why);
    } else {
        xcp__internal("the metrics monitor could not start under %s "
                      "(memory, or its rrd directory: see the log)",
                      e->state_dir);
    }
    return -ENODEV;
}

int xcp__engine_metrics_doc(xcp__engine *e, const char *session, int kind,
                            int64_t start,
                            int64_t interval, const char *cf, bool host,
                            const char *const *vm_uuids, size_t n, bool json,
                            const char *uuid, xcp__buf *out)
{
    struct xcp__metrics *m;
    bool live;
    int rc = 0;

    pthread_mutex_lock(&e->lock);
    live = !session || xcp__db_get_cls(e->db, C(session), session);
    m = live ? xcp__engine_metrics(e) : NULL;
    pthread_mutex_unlock(&e->lock);
    if (!live) {
        XCP__ERR_SESSION_INVALID(session);
        return -EACCES;
    }

    if (!m)
        return no_monitor(e);
    switch (kind) {
    case 0:
        /* XAPI: a cf it cannot parse means every one */
        if (xcp__metrics_updates(m, start, interval,
                                 cf ? xcp__cf_parse(cf) : -1, host, vm_uuids,
                                 n, json, out) < 0)
            rc = out->oom ? -ENOMEM : -ERANGE;
        break;
    case 1:
    case 2:
        rc = xcp__metrics_rrd(m, kind == 1 ? NULL : uuid, json, out);
        break;
    default:
        xcp__metrics_openmetrics(m, out);
        break;
    }
    return rc == 0 && out->oom ? -ENOMEM : rc;
}

int xcp__engine_metrics_put(xcp__engine *e, const char *session,
                            const char *uuid, bool archive, const char *body,
                            size_t len)
{
    struct xcp__metrics *m;
    xcp__rrd *rrd;
    xcp__obj *vm, *host;
    bool live, own_host = false;
    char why[256];
    int rc;

    pthread_mutex_lock(&e->lock);
    live = !session || xcp__db_get_cls(e->db, C(session), session);
    vm = live ? xcp__db_by_uuid(e->db, C(VM), uuid) : NULL;
    host = live && !vm ? xcp__db_by_uuid(e->db, C(host), uuid) : NULL;
    if (host)
        own_host = xcp__db_get(e->db, e->host) == host;
    m = live ? xcp__engine_metrics(e) : NULL;
    pthread_mutex_unlock(&e->lock);
    if (!live) {
        XCP__ERR_SESSION_INVALID(session);
        return -EACCES;
    }
    /* as XAPI's put_rrd_forwarder: a VM's, or (not to archive) a host's */
    if (!vm && !host) {
        XCP__ERR_UUID_INVALID("VM", uuid);
        return -ENOENT;
    }
    if (host && (archive || !own_host)) {
        XCP__ERR_INVALID_VALUE("uuid", archive ? "put_rrd: cannot archive "
                                                 "host RRD"
                                               : "put_rrd: not this host");
        return -EINVAL;
    }
    if (!m)
        return no_monitor(e);
    if (!(rrd = xcp__rrd_from_xapi_xml(body, len, why, sizeof(why)))) {
        XCP__ERR_INVALID_VALUE("rrd", why);
        return -EINVAL;
    }
    if ((rc = xcp__metrics_put(m, uuid, rrd)) < 0) {
        char path[PATH_MAX];

        snprintf(path, sizeof(path), "%s/rrd/%s", e->state_dir, uuid);
        xcp__io_fail(path, "write", -rc);
        return -EIO;
    }
    return 0;
}

int xcp__engine_migrate_receive(xcp__engine *e, const char *session,
                                const char *vm, uint64_t seq, int fd)
{
    return xcp__vm_migrate_receive(e, session, vm, seq, fd);
}

int xcp__engine_get(xcp__engine **out, const xcp_open_options *opts)
{
    char *dir = (opts && opts->state_dir) ? xcp__strdup(opts->state_dir)
                                          : xcp__default_state_dir();
    char real[PATH_MAX];
    xcp__engine *e;
    int rc = 0;

    if (!dir)
        return xcp__oom();
    /* Canonical path, so two spellings of one dir share one engine. */
    if (realpath(dir, real)) {
        free(dir);
        if (!(dir = xcp__strdup(real)))
            return xcp__oom();
    }
    pthread_mutex_lock(&engines_lock);
    for (e = engines; e; e = e->next)
        if (strcmp(e->state_dir, dir) == 0)
            break;
    if (e) {
        e->refs++;
    } else if ((rc = engine_open(&e, dir, opts)) == 0) {
        e->refs = 1;
        e->next = engines;
        engines = e;
    }
    pthread_mutex_unlock(&engines_lock);
    free(dir);
    if (rc == 0)
        *out = e;
    return rc;
}

void xcp__engine_put(xcp__engine *e)
{
    xcp__engine **pp;

    pthread_mutex_lock(&engines_lock);
    if (--e->refs > 0) {
        pthread_mutex_unlock(&engines_lock);
        return;
    }
    for (pp = &engines; *pp; pp = &(*pp)->next) {
        if (*pp == e) {
            *pp = e->next;
            break;
        }
    }
    pthread_mutex_unlock(&engines_lock);
    /* Let async workers finish: they hold pointers into the engine. */
    pthread_mutex_lock(&e->lock);
    e->stopping = true;
    while (e->workers > 0)
        pthread_cond_wait(&e->workers_done, &e->lock);
    pthread_mutex_unlock(&e->lock);
    engine_free(e);
}

/* ---- calls ---------------------------------------------------------------- */

int xcp__ctx_commit(xcp__ctx *c)
{
    int rc = xcp__db_commit(c->db);

    xcp__db_begin(c->db);
    return rc;
}

int xcp__ctx_unlock(xcp__ctx *c)
{
    int rc = xcp__db_commit(c->db);

    pthread_mutex_unlock(&c->e->lock);
    return rc;
}

void xcp__ctx_lock(xcp__ctx *c)
{
    int64_t t0;

    if (pthread_mutex_trylock(&c->e->lock) != 0) {
        t0 = xcp__now_ms();
        pthread_mutex_lock(&c->e->lock);
        if (xcp__now_ms() - t0 >= XCP__TRACE_WAIT_MS)
            xcp__trace("waited %" PRId64 " ms for the engine lock",
                       xcp__now_ms() - t0);
    }
    xcp__db_begin(c->db);
}

bool xcp__ctx_wait(xcp__ctx *c, int64_t deadline_ms)
{
    struct timespec ts;
    int64_t now = xcp__now_ms();
    bool woken = true;

    xcp__db_commit(c->db);
    if (deadline_ms < 0) {
        pthread_cond_wait(&c->e->changed, &c->e->lock);
    } else if (deadline_ms <= now) {
        woken = false;
    } else {
        /* The condition uses CLOCK_MONOTONIC (see engine_open). */
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += (deadline_ms - now) / 1000;
        ts.tv_nsec += ((deadline_ms - now) % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        woken = pthread_cond_timedwait(&c->e->changed, &c->e->lock, &ts) == 0;
    }
    xcp__db_begin(c->db);
    return woken;
}

bool xcp__ctx_interrupted(const xcp__ctx *c)
{
    return c->interrupt && __atomic_load_n(c->interrupt, __ATOMIC_SEQ_CST);
}

int xcp__task_new(xcp__ctx *c, const char *label, const char *descr,
                  xcp__obj **out)
{
    xcp__obj *t;
    xcp_value ops;
    int rc;

    if ((rc = xcp__db_create(c->db, C(task), NULL, NULL, &t)) < 0)
        return rc;
    if ((rc = xcp__db_set_str(c->db, t, F(task, name_label), label)) < 0 ||
        (rc = xcp__db_set_str(c->db, t, F(task, name_description),
                              descr ? descr : "")) < 0 ||
        (rc = xcp__db_set_time(c->db, t, F(task, created), xcp__now())) < 0 ||
        (rc = xcp__db_set_str(c->db, t, F(task, resident_on),
                              c->e->host)) < 0)
        return rc;
    if ((rc = xcp_value_set_array(&ops, 2)) < 0)
        return rc;
    xcp_value_set_string(&ops.u.arr.items[0], "cancel");
    xcp_value_set_string(&ops.u.arr.items[1], "destroy");
    rc = xcp__db_set(c->db, t, F(task, allowed_operations), &ops);
    xcp_value_dispose(&ops);
    *out = t;
    return rc;
}

static int check_session(xcp__ctx *c, const char *session)
{
    xcp__obj *s = xcp__db_get_cls(c->db, C(session), session);

    if (!s)
        return XCP__ERR_SESSION_INVALID(session ? session : "");
    snprintf(c->session, sizeof(c->session), "%s", session);
    return 0;
}

/* A client's call on a pool member: its writes are refused (HOST_IS_SLAVE)
 * rather than run on the coordinator, unless its session is a pool one
 * (a coordinator forwarding to this host). */
static bool client_on_member(xcp__ctx *c)
{
    xcp__obj *s;

    if (!c->e->pool_repl || !c->session[0])
        return false;
    s = xcp__db_get_cls(c->db, C(session), c->session);
    return !(s && xcp__obj_bool(s, F(session, pool)));
}

static int run_call(xcp__ctx *c)
{
    xcp__impl_fn fn;
    bool was_client = xcp__pool_set_client(client_on_member(c));
    int rc;

    /* A pooled coordinator runs a VM's domain work on the VM's host
     * (docs/design-pool.md §7): the call goes there whole, and the
     * member's writes come back through this database. */
    if (c->e->pool_repl && c->msg) {
        char addr[256], self[XCP_REF_MAX], placed[XCP_REF_MAX] = "";
        int t = 0;
        /* VM.start without a host is placed, start_on checked, on the
         * coordinator first (api/placement.c). */
        if (!xcp__pool_member_of(c->e->pool_repl, NULL, 0))
            t = xcp__placement_route(c, placed, sizeof(placed));
        if (t == 0)
            t = xcp__pool_fwd_target(c, placed, addr, sizeof(addr));
        if (t < 0) {
            xcp__pool_set_client(was_client);
            return t;
        }
        if (t > 0) {
            uint64_t seq = xcp__db_seq(c->db);
            snprintf(self, sizeof(self), "%s", c->e->host);
            pthread_mutex_unlock(&c->e->lock);
            char task[XCP_REF_MAX];
            snprintf(task, sizeof(task), "%s", c->own_task ? "" : c->task);
            rc = xcp__pool_fwd_call(c->e, addr, self, seq, task,
                                    c->msg->wire, c->nargs, c->args,
                                    c->result);
            pthread_mutex_lock(&c->e->lock);
            xcp__pool_set_client(was_client);
            return rc;
        }
    }
    xcp__db_begin(c->db);
    /* A hand-written implementation wins, also over a generated message
     * (VM.destroy has rules); else the generic one serves it. */
    xcp__trace("engine runs %s", c->msg->wire);
    if ((fn = xcp__impl_find(c->mid))) {
        rc = fn(c);
    } else if (c->msg->kind != XM_EXPLICIT) {
        rc = xcp__generic_call(c);
    } else {
        rc = XCP__ERR_NOT_IMPLEMENTED(c->msg->wire);
    }
    if (rc < 0) {
        /* Images the call made go with it (xcp__db_after_commit). */
        xcp__db_abort(c->db);
    } else {
        int crc = xcp__db_commit(c->db);
        rc = crc < 0 ? crc : rc == XCP__PARKED ? rc : 0;
    }
    if (c->own_task) {
        /* The internal task of a synchronous call goes with the call. */
        xcp__obj *t = xcp__db_get_cls(c->db, C(task), c->task);
        xcp__saved_error saved;
        xcp__error_save(&saved);
        xcp__db_begin(c->db);
        if (t)
            xcp__db_destroy(c->db, t);
        xcp__db_commit(c->db);
        xcp__error_restore(&saved);
        c->own_task = false;
        c->task[0] = '\0';
    }
    xcp__pool_set_client(was_client);
    return rc;
}

struct worker {
    xcp__ctx c;
    xcp_value result;
};

static void task_finish(xcp__ctx *c, int rc, const xcp_value *result)
{
    xcp__obj *t;
    xcp_value err;

    xcp__db_begin(c->db);
    t = xcp__db_get_cls(c->db, C(task), c->task);
    if (!t) {
        xcp__db_abort(c->db);
        return;
    }
    if (rc != 0 && xcp__error_to_value(&err) < 0)
        xcp_value_set_array(&err, 0);
    xcp__task_complete(c, t, result, rc != 0 ? &err : NULL);
    if (rc != 0)
        xcp_value_dispose(&err);
    if (xcp__db_commit(c->db) < 0)
        xcp__log(XCP__LOG_ERR, "cannot record the end of task %s", c->task);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    xcp__engine *e = w->c.e;
    size_t i;
    int rc;

    pthread_mutex_lock(&e->lock);
    rc = run_call(&w->c);
    if (e->pool_repl && rc >= 0) {
        /* A pooled coordinator marks the task done only once a quorum
         * holds its commits (docs/design-pool.md §3): a client that sees
         * it succeed never loses its changes to a failover. */
        int wr;
        pthread_mutex_unlock(&e->lock);
        wr = xcp__pool_wait(e->pool_repl);
        pthread_mutex_lock(&e->lock);
        if (wr < 0) {
            xcp_value_dispose(&w->result);
            rc = wr;
        }
    }
    task_finish(&w->c, rc, &w->result);
    xcp__tasks_gc(e);
    for (i = 0; i < w->c.nargs; i++)
        xcp_value_dispose(&w->c.args[i]);
    free(w->c.args);
    xcp_value_dispose(&w->result);
    free(w);
    if (--e->workers == 0)
        pthread_cond_broadcast(&e->workers_done);
    pthread_mutex_unlock(&e->lock);
    xcp_error_clear();
    return NULL;
}

static int start_async(xcp__ctx *c, size_t nargs, xcp_value *args,
                       xcp_value *result)
{
    struct worker *w;
    xcp__obj *t;
    char *label;
    pthread_t th;
    pthread_attr_t attr;
    size_t i;
    int rc;

    if (!(c->msg->flags & XMF_ASYNC)) {
        char *m = xcp__printf("No async mode for this operation (rpc: %s)",
                              c->msg->wire);
        rc = XCP__ERR_Fault(m ? m : c->msg->wire);
        free(m);
        return rc;
    }
    if (!(w = xcp__calloc(1, sizeof(*w))))
        return xcp__oom();
    label = xcp__printf("Async.%s", c->msg->wire);
    xcp__db_begin(c->db);
    rc = label ? xcp__task_new(c, label, "", &t) : xcp__oom();
    free(label);
    if (rc < 0 || (rc = xcp__db_commit(c->db)) < 0) {
        if (rc != 0 && xcp__db_in_txn(c->db))
            xcp__db_abort(c->db);
        free(w);
        return rc;
    }
    w->c = *c;
    snprintf(w->c.task, sizeof(w->c.task), "%s", t->ref);
    w->c.result = &w->result;
    w->c.nargs = nargs;
    w->c.args = xcp__calloc(nargs, sizeof(xcp_value));
    if (!w->c.args) {
        free(w);
        return xcp__oom();
    }
    for (i = 0; i < nargs; i++)
        xcp__value_move(&w->c.args[i], &args[i]);
    if ((rc = xcp_value_set_string(result, t->ref)) < 0)
        goto fail;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&th, &attr, worker_main, w) != 0) {
        pthread_attr_destroy(&attr);
        xcp_value_dispose(result);
        rc = xcp__internal("cannot start a worker thread");
        goto fail;
    }
    pthread_attr_destroy(&attr);
    c->e->workers++;
    return 0;
fail:
    for (i = 0; i < nargs; i++)
        xcp__value_move(&args[i], &w->c.args[i]);
    free(w->c.args);
    free(w);
    return rc;
}

int xcp__engine_call(xcp__engine *e, const char *session, int mid,
                     bool async, size_t nargs, xcp_value *args,
                     xcp_value *result)
{
    return xcp__engine_call_opts(e, session, mid, async, nargs, args, result,
                                 NULL);
}

bool xcp__engine_session_valid(xcp__engine *e, const char *session)
{
    bool ok;

    pthread_mutex_lock(&e->lock);
    ok = session && xcp__db_get_cls(e->db, C(session), session) != NULL;
    pthread_mutex_unlock(&e->lock);
    return ok;
}

bool xcp__engine_pool_secret_ok(xcp__engine *e, const char *psecret)
{
    return xcp__pool_secret_ok(e->state_dir, psecret);
}

bool xcp__engine_pool_member(xcp__engine *e, char *coord, size_t n)
{
    return xcp__pool_member_of(e->pool_repl, coord, n);
}

void xcp__engine_gc(xcp__engine *e)
{
    pthread_mutex_lock(&e->lock);
    xcp__tasks_gc(e);
    pthread_mutex_unlock(&e->lock);
}

int xcp__engine_call_opts(xcp__engine *e, const char *session, int mid,
                          bool async, size_t nargs, xcp_value *args,
                          xcp_value *result, const xcp__call_opts *o)
{
    xcp__ctx c;
    int rc;

    memset(&c, 0, sizeof(c));
    if (o) {
        c.park = o->park;
        c.deadline_ms = o->deadline_ms;
        c.no_block = o->no_block;
        c.interrupt = o->interrupt;
    }
    c.e = e;
    c.db = e->db;
    c.mid = mid;
    c.msg = &xcp__messages[mid];
    c.nargs = nargs;
    c.args = args;
    c.result = result;
    result->kind = XCP_VAL_NONE;
    pthread_mutex_lock(&e->lock);
    if (!(c.msg->flags & XMF_NOSESSION) &&
        (rc = check_session(&c, session)) < 0)
        goto out;
    if (e->stopping) {
        rc = XCP__ERR_HOST_STILL_BOOTING();
        goto out;
    }
    rc = async ? start_async(&c, nargs, args, result) : run_call(&c);
    xcp__tasks_gc(e);
out:
    pthread_mutex_unlock(&e->lock);
    /* A pooled coordinator answers once a quorum holds the call's
     * commits (docs/design-pool.md §3), waiting outside the lock. */
    if (e->pool_repl && rc >= 0) {
        int w = xcp__pool_wait(e->pool_repl);
        if (w < 0)
            rc = w;
    }
    if (rc < 0)
        xcp_value_dispose(result);
    return rc;
}

/* ---- argument and result helpers ------------------------------------------ */

const xcp_value *xcp__arg(xcp__ctx *c, size_t i)
{
    return i < c->nargs ? &c->args[i] : NULL;
}

const char *xcp__arg_str(xcp__ctx *c, size_t i)
{
    const xcp_value *v = xcp__arg(c, i);

    return (v && v->kind == XCP_VAL_STRING) ? v->u.s : "";
}

int64_t xcp__arg_int(xcp__ctx *c, size_t i)
{
    const xcp_value *v = xcp__arg(c, i);

    return (v && v->kind == XCP_VAL_INT) ? v->u.i : 0;
}

double xcp__arg_float(xcp__ctx *c, size_t i)
{
    const xcp_value *v = xcp__arg(c, i);

    if (v && v->kind == XCP_VAL_FLOAT)
        return v->u.f;
    return (v && v->kind == XCP_VAL_INT) ? (double)v->u.i : 0.0;
}

bool xcp__arg_bool(xcp__ctx *c, size_t i)
{
    const xcp_value *v = xcp__arg(c, i);

    return v && v->kind == XCP_VAL_BOOL && v->u.b;
}

int xcp__handle_invalid(int cls, const char *ref)
{
    return XCP__ERR_HANDLE_INVALID(xcp__classes[cls].name,
                                   ref ? ref : "");
}

int xcp__ref_obj(xcp__ctx *c, const char *ref, int cls, xcp__obj **out)
{
    xcp__obj *o = xcp__db_get_cls(c->db, cls, ref);

    if (!o)
        return xcp__handle_invalid(cls, ref);
    *out = o;
    return 0;
}

int xcp__arg_obj(xcp__ctx *c, size_t i, int cls, xcp__obj **out)
{
    return xcp__ref_obj(c, xcp__arg_str(c, i), cls, out);
}

int xcp__ret_str(xcp__ctx *c, const char *s)
{
    xcp_value_dispose(c->result);
    return xcp_value_set_string(c->result, s);
}

int xcp__ret_ref(xcp__ctx *c, const xcp__obj *o)
{
    return xcp__ret_str(c, o->ref);
}

void xcp__ret_int(xcp__ctx *c, int64_t i)
{
    xcp_value_dispose(c->result);
    xcp_value_set_int(c->result, i);
}
