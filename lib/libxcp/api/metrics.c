/*
 * api/metrics.c - what xcp-rrdd does for XAPI: every 5 s, one reading of
 * the hypervisor driver's counters (stats slot) becomes the values of the
 * host's and each running VM's data sources, under XAPI's names and units,
 * recorded into RRDs of XAPI's archives (metrics/rrd.c). The RRDs live in
 * memory, as XAPI keeps them; they are written to <state dir>/rrd/<uuid>
 * every FLUSH_S seconds, when the monitor stops, and when a VM's domain
 * goes (its RRD then leaves memory and comes back when it runs again, as
 * XAPI archives a halted VM's RRD), always as a new file renamed over the
 * old one. XAPI backs its RRDs up once a day: a kill -9 loses at most
 * FLUSH_S seconds here.
 */
#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STEP 5
#define FLUSH_S 300
#define NAME_MAX_DS 48

/* What XAPI says of a data source: its description, units, type, bounds. */
typedef struct ds_meta {
    const char *fmt;   /* name, with %s for the device */
    const char *descr; /* with %s for the device */
    const char *units;
    xcp__ds_type type;
    double min, max;
    const char *label; /* OpenMetrics label of the %s (NULL: the prefix) */
} ds_meta;

enum {
    H_CPU, H_CPU_AVG, H_LOADAVG, H_MEM_TOTAL, H_MEM_FREE, H_PIF_RX, H_PIF_TX,
    V_CPU, V_CPU_USAGE, V_MEMORY, V_MEMORY_TARGET, V_MEMORY_FREE, V_VBD_READ,
    V_VBD_WRITE, V_VBD_IOPS_READ, V_VBD_IOPS_WRITE, V_VBD_IOPS_TOTAL,
    V_VIF_RX, V_VIF_TX,
    H_SR_TP_READ, H_SR_TP_WRITE, H_SR_TP_TOTAL, H_SR_IOPS_READ,
    H_SR_IOPS_WRITE, H_SR_IOPS_TOTAL,
};

static const ds_meta metas[] = {
    [H_CPU] = {"cpu%s", "Physical cpu usage for cpu %s", "(fraction)",
               XCP__DS_DERIVE, 0, 1},
    [H_CPU_AVG] = {"cpu_avg", "Average physical cpu usage", "(fraction)",
                   XCP__DS_DERIVE, 0, 1},
    [H_LOADAVG] = {"loadavg", "Domain0 loadavg", "(fraction)", XCP__DS_GAUGE,
                   0, INFINITY},
    [H_MEM_TOTAL] = {"memory_total_kib", "Total amount of memory in the host",
                     "KiB", XCP__DS_GAUGE, 0, INFINITY},
    [H_MEM_FREE] = {"memory_free_kib", "Total amount of free memory", "KiB",
                    XCP__DS_GAUGE, 0, INFINITY},
    [H_PIF_RX] = {"pif_%s_rx",
                  "Bytes per second received on physical interface %s", "B/s",
                  XCP__DS_DERIVE, 0, INFINITY},
    [H_PIF_TX] = {"pif_%s_tx", "Bytes per second sent on physical interface %s",
                  "B/s", XCP__DS_DERIVE, 0, INFINITY},
    [V_CPU] = {"cpu%s", "CPU%s usage", "(fraction)", XCP__DS_DERIVE, 0, 1},
    [V_CPU_USAGE] = {"cpu_usage", "Domain CPU usage", "(fraction)",
                     XCP__DS_DERIVE, 0, 1},
    [V_MEMORY] = {"memory", "Memory currently allocated to VM", "B",
                  XCP__DS_GAUGE, 0, INFINITY},
    [V_MEMORY_TARGET] = {"memory_target", "Target of VM balloon driver", "B",
                         XCP__DS_GAUGE, 0, INFINITY},
    [V_MEMORY_FREE] = {"memory_internal_free",
                       "Memory used as reported by the guest agent", "KiB",
                       XCP__DS_GAUGE, 0, INFINITY},
    [V_VBD_READ] = {"vbd_%s_read", "Reads from device %s, in B/s", "B/s",
                    XCP__DS_DERIVE, 0, INFINITY},
    [V_VBD_WRITE] = {"vbd_%s_write", "Writes from device %s, in B/s", "B/s",
                     XCP__DS_DERIVE, 0, INFINITY},
    [V_VBD_IOPS_READ] = {"vbd_%s_iops_read", "Read requests per second",
                         "requests/s", XCP__DS_DERIVE, 0, INFINITY},
    [V_VBD_IOPS_WRITE] = {"vbd_%s_iops_write", "Write requests per second",
                          "requests/s", XCP__DS_DERIVE, 0, INFINITY},
    [V_VBD_IOPS_TOTAL] = {"vbd_%s_iops_total", "I/O Requests per second",
                          "requests/s", XCP__DS_DERIVE, 0, INFINITY},
    [V_VIF_RX] = {"vif_%s_rx",
                  "Bytes per second received on virtual interface number '%s'",
                  "B/s", XCP__DS_DERIVE, 0, INFINITY},
    [V_VIF_TX] = {"vif_%s_tx",
                  "Bytes per second transmitted on virtual interface number "
                  "'%s'", "B/s", XCP__DS_DERIVE, 0, INFINITY},
    /* XAPI's rrdp-iostat, host-owned, per SR (summed over its disks):
     * counts since the last sample, so ABSOLUTE */
    [H_SR_TP_READ] = {"io_throughput_read_%s",
                      "Data read from the SR, in MiB/s", "MiB/s",
                      XCP__DS_ABSOLUTE, 0, INFINITY, "sr"},
    [H_SR_TP_WRITE] = {"io_throughput_write_%s",
                       "Data written to the SR, in MiB/s", "MiB/s",
                       XCP__DS_ABSOLUTE, 0, INFINITY, "sr"},
    [H_SR_TP_TOTAL] = {"io_throughput_total_%s", "All SR I/O, in MiB/s",
                       "MiB/s", XCP__DS_ABSOLUTE, 0, INFINITY, "sr"},
    [H_SR_IOPS_READ] = {"iops_read_%s", "Read requests per second",
                        "requests/s", XCP__DS_ABSOLUTE, 0, INFINITY, "sr"},
    [H_SR_IOPS_WRITE] = {"iops_write_%s", "Write requests per second",
                         "requests/s", XCP__DS_ABSOLUTE, 0, INFINITY, "sr"},
    [H_SR_IOPS_TOTAL] = {"iops_total_%s", "I/O Requests per second",
                         "requests/s", XCP__DS_ABSOLUTE, 0, INFINITY, "sr"},
};

/* The disks of one running VM and the SR of each, with the counters of
 * the last sample (per-SR figures are the sums of their deltas). */
typedef struct vm_disk {
    char dev[16];
    char sr[XCP_HV_UUID_LEN];
    uint64_t rb, wb, rr, wr;
    bool have;
} vm_disk;

typedef struct vm_disks {
    char uuid[XCP_HV_UUID_LEN];
    size_t n;
    uint64_t seen;
    vm_disk d[];
} vm_disks;

/* One SR's sums in a sample. */
typedef struct sr_acc {
    char sr8[9];
    double rb, wb, rr, wr;
    size_t known;
} sr_acc;

/* One live data source: what the last sample read. */
typedef struct live_ds {
    char name[NAME_MAX_DS];
    char dev[16];
    int meta;
    double raw;
} live_ds;

/* One RRD and what feeds it. */
typedef struct mrrd {
    char uuid[XCP_HV_UUID_LEN];
    xcp__rrd *rrd;
    live_ds *live;
    size_t n_live, cap_live;
    uint64_t live_sig;   /* names of live, hashed: map valid while equal */
    int *map;            /* live index -> rrd index */
    size_t n_map;
    double *vals;        /* scratch: one per rrd ds */
    bool dirty, seen, is_host;
} mrrd;

struct xcp__metrics {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    pthread_t thread;
    bool running, stop;
    xcp_hv *hv;
    char *dir;
    char dom0_uuid[XCP_HV_UUID_LEN];
    mrrd *host;
    xcp__hmap vms;       /* uuid -> mrrd*, the running VMs' */
    mrrd **list;         /* the same, in order of arrival */
    size_t n_list, cap_list;
    int64_t last_flush;
    uint64_t samples;
    double cpu_s;
    /* per-SR figures: touched only by the sampling path */
    xcp__metrics_sr_fn sr_fn;
    void *sr_ctx;
    xcp__hmap disks;     /* vm uuid -> vm_disks* */
    vm_disks **dlist;
    size_t n_dlist, cap_dlist;
    sr_acc *accs;
    size_t n_accs, cap_accs;
};

/* ---- RRDs in memory and on disk ------------------------------------------ */

static void mrrd_free(mrrd *r)
{
    if (!r)
        return;
    xcp__rrd_free(r->rrd);
    free(r->live);
    free(r->map);
    free(r->vals);
    free(r);
}

static char *path_of(const xcp__metrics *m, const char *uuid)
{
    return xcp__printf("%s/%s", m->dir, uuid);
}

static xcp__rrd *load_file(const xcp__metrics *m, const char *uuid)
{
    char *path = path_of(m, uuid);
    xcp__rrd *r = NULL;
    struct stat st;
    char *buf = NULL;
    ssize_t got;
    int fd;

    if (!path)
        return NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size > 0 &&
        st.st_size < (64 << 20) && (buf = xcp__malloc((size_t)st.st_size))) {
        got = pread(fd, buf, (size_t)st.st_size, 0);
        if (got == st.st_size && !(r = xcp__rrd_load(buf, (size_t)got)))
            xcp__log(XCP__LOG_WARN, "metrics: %s is not an RRD image: "
                     "starting a new RRD", path);
    }
    if (fd >= 0)
        close(fd);
    free(buf);
    free(path);
    return r;
}

/*
 * RRD images are written in batches: each as <uuid>.new, its writeback
 * started at once (sync_file_range WRITE, which does not wait); then, once
 * all are written, each fdatasync'd (by then mostly a wait for I/O already
 * under way) and renamed over its old file, and the directory synced. A
 * crash leaves the old file or the new. Not syncfs(2): that waits for every
 * dirty page of the filesystem, so a flush behind a big VDI import on the
 * same disk stalled for seconds. Measured on this machine's ext4, 1,000
 * images of 110 KiB: 0.29-0.47 s for both when idle; with 4 GB of another
 * writer's dirty pages, syncfs 2.1-4.3 s, this way 0.31-1.0 s.
 */
typedef struct batch {
    char (*uuids)[XCP_HV_UUID_LEN]; /* written as <uuid>.new */
    size_t n, cap;
    int rc;                         /* 0, or the first negative errno */
} batch;

static void batch_fail(const xcp__metrics *m, batch *bt, const char *uuid,
                       const char *op, int err)
{
    xcp__log(XCP__LOG_WARN, "metrics: cannot %s %s/%s: %s", op, m->dir, uuid,
             strerror(err));
    if (bt->rc == 0)
        bt->rc = -err;
}

/* Writes the image b of uuid as <uuid>.new, to be installed by
 * batch_commit. */
static void batch_add(const xcp__metrics *m, batch *bt, const char *uuid,
                      const xcp__buf *b)
{
    char *tmp = xcp__printf("%s/%s.new", m->dir, uuid);
    int fd = -1, err = 0;

    if (b->oom || !tmp)
        err = ENOMEM;
    else if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                        0600)) < 0 ||
             xcp__write_all(fd, b->data, b->len) < 0)
        err = errno;
    if (fd >= 0 && !err)
        (void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    if (fd >= 0 && close(fd) < 0 && !err)
        err = errno;
    if (!err && bt->n == bt->cap) {
        size_t cap = bt->cap ? 2 * bt->cap : 16;
        char(*u)[XCP_HV_UUID_LEN] = xcp__realloc(bt->uuids,
                                                 cap * sizeof(*u));

        if (u) {
            bt->uuids = u;
            bt->cap = cap;
        } else {
            err = ENOMEM;
        }
    }
    if (err) {
        if (tmp)
            unlink(tmp);
        batch_fail(m, bt, uuid, "write", err);
    } else {
        snprintf(bt->uuids[bt->n++], XCP_HV_UUID_LEN, "%s", uuid);
    }
    free(tmp);
}

/* Makes the batch's images durable and puts them in place: 0 or the
 * first negative errno of the batch. */
static int batch_commit(const xcp__metrics *m, batch *bt)
{
    int fd, err, rc;
    size_t i, moved = 0;

    for (i = 0; i < bt->n; i++) {
        char *path = xcp__printf("%s/%s", m->dir, bt->uuids[i]);
        char *tmp = xcp__printf("%s/%s.new", m->dir, bt->uuids[i]);

        bool ok = false;

        /* a .new never synced is never put in place */
        err = 0;
        if (tmp && ((fd = open(tmp, O_WRONLY | O_CLOEXEC)) < 0 ||
                    fdatasync(fd) < 0)) {
            err = errno;
            if (fd >= 0)
                close(fd);
        } else if (tmp && close(fd) < 0) {
            err = errno;
        }
        if (!path || !tmp)
            batch_fail(m, bt, bt->uuids[i], "install", ENOMEM);
        else if (err)
            batch_fail(m, bt, bt->uuids[i], "sync", err);
        else if (rename(tmp, path) < 0)
            batch_fail(m, bt, bt->uuids[i], "install", errno);
        else
            ok = true, moved++;
        if (tmp && !ok)
            unlink(tmp);
        free(path);
        free(tmp);
    }
    if (moved && (rc = xcp__fsync_dir(m->dir)) < 0)
        batch_fail(m, bt, "", "sync", -rc);
    free(bt->uuids);
    rc = bt->rc;
    memset(bt, 0, sizeof(*bt));
    return rc;
}

/* Under mu: the image of r, for writing after mu is let go (b->oom when
 * out of memory). */
static void snapshot(mrrd *r, xcp__buf *b)
{
    xcp__rrd_save(r->rrd, b);
    r->dirty = false;
}

static mrrd *mrrd_new(xcp__metrics *m, const char *uuid, double t,
                      bool is_host)
{
    mrrd *r = xcp__calloc(1, sizeof(*r));

    if (!r)
        return NULL;
    snprintf(r->uuid, sizeof(r->uuid), "%s", uuid);
    r->is_host = is_host;
    r->rrd = load_file(m, uuid);
    if (!r->rrd)
        r->rrd = xcp__rrd_new(STEP, xcp__rrd_xapi_rras,
                              xcp__rrd_xapi_n_rras, t);
    if (!r->rrd) {
        free(r);
        return NULL;
    }
    return r;
}

/* ---- one sample ------------------------------------------------------------ */

static int live_add(mrrd *r, int meta, const char *dev, double raw)
{
    live_ds *l;

    if (r->n_live == r->cap_live) {
        size_t cap = r->cap_live ? 2 * r->cap_live : 16;

        if (!(l = xcp__realloc(r->live, cap * sizeof(*l))))
            return -ENOMEM;
        r->live = l;
        r->cap_live = cap;
    }
    l = &r->live[r->n_live++];
    snprintf(l->dev, sizeof(l->dev), "%s", dev ? dev : "");
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf(l->name, sizeof(l->name), metas[meta].fmt, l->dev);
#pragma GCC diagnostic pop
    l->meta = meta;
    l->raw = raw;
    return 0;
}

static uint64_t live_sig(const mrrd *r)
{
    uint64_t h = 1469598103934665603ull;
    size_t i;
    const char *p;

    for (i = 0; i < r->n_live; i++) {
        for (p = r->live[i].name; *p; p++)
            h = (h ^ (unsigned char)*p) * 1099511628211ull;
        h = (h ^ 0xff) * 1099511628211ull;
    }
    return h ^ r->rrd->n_ds;
}

/* Feed the live values of r into its RRD at t: standard data sources the
 * RRD lacks are added (xcp-rrdd's merge_new_dss), the ones it records
 * but the sample lacks are unknown. */
static int feed(mrrd *r, double t)
{
    uint64_t sig = live_sig(r);
    size_t i;

    if (sig != r->live_sig || r->n_map != r->n_live) {
        int *map = xcp__realloc(r->map, (r->n_live + 1) * sizeof(int));

        if (!map)
            return -ENOMEM;
        r->map = map;
        for (i = 0; i < r->n_live; i++) {
            const ds_meta *mt = &metas[r->live[i].meta];
            xcp__ds_def d = {r->live[i].name, mt->type, mt->min, mt->max};

            if ((map[i] = xcp__rrd_add_ds(r->rrd, &d, t)) < 0)
                return -ENOMEM;
        }
        r->n_map = r->n_live;
        r->live_sig = live_sig(r);
        free(r->vals);
        if (!(r->vals = xcp__malloc((r->rrd->n_ds + 1) * sizeof(double))))
            return -ENOMEM;
    }
    for (i = 0; i < r->rrd->n_ds; i++)
        r->vals[i] = NAN;
    for (i = 0; i < r->n_live; i++)
        r->vals[r->map[i]] = r->live[i].raw;
    xcp__rrd_update(r->rrd, t, r->vals, r->rrd->n_ds);
    r->dirty = true;
    return 0;
}

static void host_values(mrrd *r, const xcp_hv_stats *st)
{
    char dev[24];
    double sum = 0;
    size_t i;

    r->n_live = 0;
    for (i = 0; i < st->n_pcpus; i++) {
        snprintf(dev, sizeof(dev), "%zu", i);
        live_add(r, H_CPU, dev, st->pcpu_busy_ns[i] / 1e9);
        sum += st->pcpu_busy_ns[i] / 1e9;
    }
    if (st->n_pcpus)
        live_add(r, H_CPU_AVG, NULL, sum / (double)st->n_pcpus);
    live_add(r, H_LOADAVG, NULL, st->loadavg);
    live_add(r, H_MEM_TOTAL, NULL, (double)(st->memory_total / 1024));
    live_add(r, H_MEM_FREE, NULL, (double)(st->memory_free / 1024));
    for (i = 0; i < st->n_devs; i++)
        if (st->devs[i].kind == XCP_HV_DEV_HOST_NIC) {
            live_add(r, H_PIF_RX, st->devs[i].name,
                     (double)st->devs[i].rd_bytes);
            live_add(r, H_PIF_TX, st->devs[i].name,
                     (double)st->devs[i].wr_bytes);
        }
}

/* The values of domain d (its vCPUs at vcpu, its devices from *dev on). */
static void vm_values(mrrd *r, const xcp_hv_stats *st, size_t d,
                      const uint64_t *vcpu, size_t *dev)
{
    const xcp_hv_domain_info *di = &st->doms[d];
    char name[16];
    double total = 0;
    uint32_t v;
    size_t i;

    r->n_live = 0;
    for (v = 0; v < di->vcpus_max; v++) {
        if (v >= di->vcpus_online)
            continue;
        snprintf(name, sizeof(name), "%" PRIu32, v);
        live_add(r, V_CPU, name, vcpu[v] / 1e9);
        total += vcpu[v] / 1e9;
    }
    if (di->vcpus_online)
        live_add(r, V_CPU_USAGE, NULL, total / di->vcpus_online);
    live_add(r, V_MEMORY, NULL, (double)di->memory_actual);
    live_add(r, V_MEMORY_TARGET, NULL, (double)di->memory_target);
    if (st->guest_free_kib && st->guest_free_kib[d] >= 0)
        live_add(r, V_MEMORY_FREE, NULL, (double)st->guest_free_kib[d]);
    for (i = *dev; i < st->n_devs && st->devs[i].domid == di->domid &&
                   st->devs[i].kind != XCP_HV_DEV_HOST_NIC;
         i++) {
        const xcp_hv_dev_stats *x = &st->devs[i];

        if (x->kind == XCP_HV_DEV_DISK) {
            live_add(r, V_VBD_READ, x->name, (double)x->rd_bytes);
            live_add(r, V_VBD_WRITE, x->name, (double)x->wr_bytes);
            live_add(r, V_VBD_IOPS_READ, x->name, (double)x->rd_reqs);
            live_add(r, V_VBD_IOPS_WRITE, x->name, (double)x->wr_reqs);
            live_add(r, V_VBD_IOPS_TOTAL, x->name,
                     (double)(x->rd_reqs + x->wr_reqs));
        } else {
            live_add(r, V_VIF_RX, x->name, (double)x->rd_bytes);
            live_add(r, V_VIF_TX, x->name, (double)x->wr_bytes);
        }
    }
    *dev = i;
}

static int list_add(xcp__metrics *m, mrrd *r)
{
    if (m->n_list == m->cap_list) {
        size_t cap = m->cap_list ? 2 * m->cap_list : 64;
        mrrd **l = xcp__realloc(m->list, cap * sizeof(*l));

        if (!l)
            return -ENOMEM;
        m->list = l;
        m->cap_list = cap;
    }
    if (xcp__hmap_put(&m->vms, r->uuid, r) < 0)
        return -ENOMEM;
    m->list[m->n_list++] = r;
    return 0;
}

static double thread_cpu_s(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0)
        return 0;
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- per-SR figures (XAPI's rrdp-iostat) ---------------------------------- */

void xcp__metrics_set_sr_resolver(xcp__metrics *m, xcp__metrics_sr_fn fn,
                                  void *ctx)
{
    pthread_mutex_lock(&m->mu);
    m->sr_fn = fn;
    m->sr_ctx = ctx;
    pthread_mutex_unlock(&m->mu);
}

static sr_acc *acc_of(xcp__metrics *m, const char *sr)
{
    size_t i;

    for (i = 0; i < m->n_accs; i++)
        if (!strncmp(m->accs[i].sr8, sr, 8))
            return &m->accs[i];
    if (m->n_accs == m->cap_accs) {
        size_t cap = m->cap_accs ? 2 * m->cap_accs : 8;
        sr_acc *a = xcp__realloc(m->accs, cap * sizeof(*a));

        if (!a)
            return NULL;
        m->accs = a;
        m->cap_accs = cap;
    }
    memset(&m->accs[m->n_accs], 0, sizeof(m->accs[0]));
    snprintf(m->accs[m->n_accs].sr8, sizeof(m->accs[0].sr8), "%.8s", sr);
    return &m->accs[m->n_accs++];
}

/* The disks of domain di, devs[first..end) (the domain's devices). */
static vm_disks *disks_of(xcp__metrics *m, xcp__metrics_sr_fn fn, void *ctx,
                          const char *uuid, const xcp_hv_stats *st,
                          size_t first, size_t end)
{
    vm_disks *v = xcp__hmap_get(&m->disks, uuid), *nv;
    const char *devs[64];
    char (*srs)[XCP_HV_UUID_LEN];
    size_t i, n = 0, k;
    bool same;

    for (i = first; i < end; i++)
        if (st->devs[i].kind == XCP_HV_DEV_DISK && n < 64)
            devs[n++] = st->devs[i].name;
    same = v && v->n == n;
    for (k = 0; same && k < n; k++)
        same = !strcmp(v->d[k].dev, devs[k]);
    if (same)
        return v;
    /* new, or its disks changed: ask which SRs hold them */
    if (!(nv = xcp__calloc(1, sizeof(*nv) + n * sizeof(nv->d[0]))) ||
        !(srs = xcp__calloc(n + 1, sizeof(*srs)))) {
        free(nv);
        return v;
    }
    if (fn && n)
        fn(ctx, uuid, n, devs, srs);
    snprintf(nv->uuid, sizeof(nv->uuid), "%s", uuid);
    nv->n = n;
    for (k = 0; k < n; k++) {
        snprintf(nv->d[k].dev, sizeof(nv->d[k].dev), "%s", devs[k]);
        memcpy(nv->d[k].sr, srs[k], sizeof(nv->d[k].sr));
        nv->d[k].sr[XCP_HV_UUID_LEN - 1] = '\0';
        /* the counters of a disk kept from before stay valid */
        for (i = 0; v && i < v->n; i++)
            if (!strcmp(v->d[i].dev, devs[k]) &&
                !strcmp(v->d[i].sr, nv->d[k].sr)) {
                nv->d[k].rb = v->d[i].rb;
                nv->d[k].wb = v->d[i].wb;
                nv->d[k].rr = v->d[i].rr;
                nv->d[k].wr = v->d[i].wr;
                nv->d[k].have = v->d[i].have;
            }
    }
    free(srs);
    if (xcp__hmap_put(&m->disks, nv->uuid, nv) < 0) {
        free(nv);
        return v;
    }
    if (v) {
        for (i = 0; i < m->n_dlist; i++)
            if (m->dlist[i] == v)
                m->dlist[i] = nv;
        free(v);
    } else {
        if (m->n_dlist == m->cap_dlist) {
            size_t cap = m->cap_dlist ? 2 * m->cap_dlist : 64;
            vm_disks **l = xcp__realloc(m->dlist, cap * sizeof(*l));

            if (!l) {
                xcp__hmap_del(&m->disks, nv->uuid);
                free(nv);
                return NULL;
            }
            m->dlist = l;
            m->cap_dlist = cap;
        }
        m->dlist[m->n_dlist++] = nv;
    }
    return nv;
}

static uint64_t delta(uint64_t cur, uint64_t last)
{
    return cur >= last ? cur - last : cur; /* as rrdp-iostat: reset */
}

/* Each SR's bytes and requests since the last sample, summed over the
 * disks of the running VMs on it, into m->accs (sampling thread only;
 * the resolver is called here, without m->mu). */
static void sr_sample(xcp__metrics *m, const xcp_hv_stats *st)
{
    xcp__metrics_sr_fn fn;
    void *ctx;
    size_t d, dev = 0, end, i, k;
    uint64_t gen = m->samples + 1;

    pthread_mutex_lock(&m->mu);
    fn = m->sr_fn;
    ctx = m->sr_ctx;
    pthread_mutex_unlock(&m->mu);
    m->n_accs = 0;
    if (!fn)
        return;
    for (d = 0; d < st->n_doms; d++) {
        const xcp_hv_domain_info *di = &st->doms[d];
        vm_disks *v;

        for (end = dev; end < st->n_devs &&
                        st->devs[end].kind != XCP_HV_DEV_HOST_NIC &&
                        st->devs[end].domid == di->domid;
             end++)
            ;
        if (di->state != XCP_HV_STATE_SHUTDOWN && di->vm_uuid[0] &&
            di->domid != 0 &&
            (v = disks_of(m, fn, ctx, di->vm_uuid, st, dev, end))) {
            v->seen = gen;
            for (i = dev, k = 0; i < end; i++) {
                const xcp_hv_dev_stats *x = &st->devs[i];
                vm_disk *z;
                sr_acc *a;

                if (x->kind != XCP_HV_DEV_DISK || k >= v->n)
                    continue;
                z = &v->d[k++];
                if (!z->sr[0] || !(a = acc_of(m, z->sr)))
                    continue;
                if (z->have) {
                    a->rb += (double)delta(x->rd_bytes, z->rb);
                    a->wb += (double)delta(x->wr_bytes, z->wb);
                    a->rr += (double)delta(x->rd_reqs, z->rr);
                    a->wr += (double)delta(x->wr_reqs, z->wr);
                    a->known++;
                }
                z->rb = x->rd_bytes;
                z->wb = x->wr_bytes;
                z->rr = x->rd_reqs;
                z->wr = x->wr_reqs;
                z->have = true;
            }
        }
        dev = end;
    }
    /* the VMs whose domains went */
    for (i = 0, k = 0; i < m->n_dlist; i++) {
        if (m->dlist[i]->seen == gen) {
            m->dlist[k++] = m->dlist[i];
            continue;
        }
        xcp__hmap_del(&m->disks, m->dlist[i]->uuid);
        free(m->dlist[i]);
    }
    m->n_dlist = k;
}

/* The host's per-SR data sources from m->accs (unknown until a disk on
 * the SR has two samples). */
static void sr_values(xcp__metrics *m, mrrd *h)
{
    size_t i;

    for (i = 0; i < m->n_accs; i++) {
        const sr_acc *a = &m->accs[i];
        double mib = 1048576.0, k = a->known ? 1.0 : NAN;

        live_add(h, H_SR_TP_READ, a->sr8, k * a->rb / mib);
        live_add(h, H_SR_TP_WRITE, a->sr8, k * a->wb / mib);
        live_add(h, H_SR_TP_TOTAL, a->sr8, k * (a->rb + a->wb) / mib);
        live_add(h, H_SR_IOPS_READ, a->sr8, k * a->rr);
        live_add(h, H_SR_IOPS_WRITE, a->sr8, k * a->wr);
        live_add(h, H_SR_IOPS_TOTAL, a->sr8, k * (a->rr + a->wr));
    }
}

int xcp__metrics_sample(xcp__metrics *m, double t)
{
    xcp_hv_stats st;
    xcp_hv_error herr;
    size_t d, dev = 0, vc = 0, i;
    double c0 = thread_cpu_s();
    int rc;
    /* images of the RRDs whose domain went, written after mu */
    mrrd **gone = NULL;
    size_t n_gone = 0;
    batch bt = {0};

    if ((rc = xcp__hv_stats(m->hv, &st, &herr)) < 0)
        return rc;
    sr_sample(m, &st);
    pthread_mutex_lock(&m->mu);
    host_values(m->host, &st);
    sr_values(m, m->host);
    feed(m->host, t);
    for (i = 0; i < m->n_list; i++)
        m->list[i]->seen = false;
    for (d = 0; d < st.n_doms; d++) {
        const xcp_hv_domain_info *di = &st.doms[d];
        const char *uuid = di->domid == 0 && m->dom0_uuid[0] ? m->dom0_uuid
                                                               : di->vm_uuid;
        mrrd *r;

        if (di->state == XCP_HV_STATE_SHUTDOWN || !uuid[0]) {
            /* its devices are skipped with it (grouped by domain) */
            while (dev < st.n_devs &&
                   st.devs[dev].kind != XCP_HV_DEV_HOST_NIC &&
                   st.devs[dev].domid == di->domid)
                dev++;
            vc += di->vcpus_max;
            continue;
        }
        r = xcp__hmap_get(&m->vms, uuid);
        if (!r) {
            if (!(r = mrrd_new(m, uuid, t, false)) || list_add(m, r) < 0) {
                mrrd_free(r);
                while (dev < st.n_devs &&
                       st.devs[dev].kind != XCP_HV_DEV_HOST_NIC &&
                       st.devs[dev].domid == di->domid)
                    dev++;
                vc += di->vcpus_max;
                continue;
            }
        }
        r->seen = true;
        vm_values(r, &st, d, st.vcpu_ns + vc, &dev);
        vc += di->vcpus_max;
        feed(r, t);
    }
    /* the RRDs of domains gone leave memory (written below) */
    for (i = 0, d = 0; i < m->n_list; i++) {
        mrrd *r = m->list[i];

        if (r->seen) {
            m->list[d++] = r;
            continue;
        }
        xcp__hmap_del(&m->vms, r->uuid);
        if (!gone || (n_gone & (n_gone - 1)) == 0) {
            mrrd **g = xcp__realloc(gone, (n_gone ? 2 * n_gone : 1) *
                                              sizeof(*g));
            if (!g) {
                m->list[d++] = r; /* kept: tried again next time */
                xcp__hmap_put(&m->vms, r->uuid, r);
                continue;
            }
            gone = g;
        }
        gone[n_gone++] = r;
    }
    m->n_list = d;
    m->samples++;
    m->cpu_s += thread_cpu_s() - c0;
    pthread_mutex_unlock(&m->mu);
    for (i = 0; i < n_gone; i++) {
        xcp__buf b = {0};

        snapshot(gone[i], &b);
        batch_add(m, &bt, gone[i]->uuid, &b);
        xcp__buf_free(&b);
        mrrd_free(gone[i]);
    }
    batch_commit(m, &bt);
    free(gone);
    xcp__hv_stats_free(&st);
    return 0;
}

int xcp__metrics_flush(xcp__metrics *m)
{
    size_t i, n;
    batch bt = {0};
    int rc;

    pthread_mutex_lock(&m->mu);
    n = m->n_list;
    pthread_mutex_unlock(&m->mu);
    /* one RRD at a time, so that readers wait for one image at most */
    for (i = 0; i <= n; i++) {
        xcp__buf b = {0};
        char uuid[XCP_HV_UUID_LEN] = "";
        mrrd *r;

        pthread_mutex_lock(&m->mu);
        r = i == n ? m->host : i < m->n_list ? m->list[i] : NULL;
        if (r && r->dirty) {
            snapshot(r, &b);
            memcpy(uuid, r->uuid, sizeof(uuid));
        }
        pthread_mutex_unlock(&m->mu);
        if (uuid[0])
            batch_add(m, &bt, uuid, &b);
        xcp__buf_free(&b);
    }
    rc = batch_commit(m, &bt);
    m->last_flush = xcp__now();
    return rc;
}

static void *monitor_main(void *arg)
{
    xcp__metrics *m = arg;
    struct timespec ts;
    double now, next;

    pthread_mutex_lock(&m->mu);
    while (!m->stop) {
        now = xcp__now_real();
        /* just after the next 5 s boundary, as xcp-rrdd's loop */
        next = (floor(now / STEP) + 1) * STEP + 0.05;
        ts.tv_sec = (time_t)next;
        ts.tv_nsec = (long)((next - floor(next)) * 1e9);
        if (pthread_cond_timedwait(&m->cond, &m->mu, &ts) == 0 || m->stop)
            continue;
        if (xcp__now_real() < next)
            continue;
        pthread_mutex_unlock(&m->mu);
        xcp__metrics_sample(m, xcp__now_real());
        if (xcp__now() - m->last_flush >= FLUSH_S)
            xcp__metrics_flush(m);
        pthread_mutex_lock(&m->mu);
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

xcp__metrics *xcp__metrics_start(xcp_hv *hv, const char *state_dir,
                                 const char *host_uuid,
                                 const char *dom0_uuid, bool thread)
{
    xcp__metrics *m;
    pthread_condattr_t ca;

    if (!xcp__hv_supports(hv, XCP_HV_OP_STATS))
        return NULL;
    if (!(m = xcp__calloc(1, sizeof(*m))))
        return NULL;
    pthread_mutex_init(&m->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_cond_init(&m->cond, &ca);
    pthread_condattr_destroy(&ca);
    m->hv = hv;
    m->last_flush = xcp__now();
    snprintf(m->dom0_uuid, sizeof(m->dom0_uuid), "%s",
             dom0_uuid ? dom0_uuid : "");
    if (!(m->dir = xcp__printf("%s/rrd", state_dir)) ||
        xcp__mkdir_p(m->dir, 0700) < 0 ||
        !(m->host = mrrd_new(m, host_uuid, xcp__now_real(), true)))
        goto fail;
    /* the first sample before the first caller looks: the live data
     * sources are known at once (values come with the first PDP) */
    xcp__metrics_sample(m, xcp__now_real());
    if (thread) {
        if (pthread_create(&m->thread, NULL, monitor_main, m) != 0)
            goto fail;
        m->running = true;
    }
    return m;
fail:
    mrrd_free(m->host);
    free(m->dir);
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->cond);
    free(m);
    return NULL;
}

void xcp__metrics_stop(xcp__metrics *m)
{
    size_t i;

    if (!m)
        return;
    if (m->running) {
        pthread_mutex_lock(&m->mu);
        m->stop = true;
        pthread_cond_signal(&m->cond);
        pthread_mutex_unlock(&m->mu);
        pthread_join(m->thread, NULL);
    }
    xcp__metrics_flush(m);
    for (i = 0; i < m->n_list; i++)
        mrrd_free(m->list[i]);
    free(m->list);
    xcp__hmap_free(&m->vms);
    for (i = 0; i < m->n_dlist; i++)
        free(m->dlist[i]);
    free(m->dlist);
    xcp__hmap_free(&m->disks);
    free(m->accs);
    mrrd_free(m->host);
    free(m->dir);
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->cond);
    free(m);
}

/* ---- the messages ---------------------------------------------------------- */

/* Under mu: the RRD of uuid in memory, or NULL. */
static mrrd *find(xcp__metrics *m, const char *uuid)
{
    if (!strcmp(m->host->uuid, uuid))
        return m->host;
    return xcp__hmap_get(&m->vms, uuid);
}

/* XAPI's error text: Rrdd_error (Datasource_missing ...). */
static int missing(const char *what)
{
    char *msg = xcp__printf("Rrd_interface.Rrdd_error(Datasource_missing(%s))",
                            what);
    int rc = msg ? XCP__ERR_INTERNAL_ERROR(msg) : xcp__oom();

    free(msg);
    return rc;
}

static int missing_rrd(mrrd *r, const char *uuid)
{
    char what[64];

    XCP__UNUSED(r);
    snprintf(what, sizeof(what), "VM: %s", uuid);
    return missing(what);
}

static int add_record(xcp_value *out, const char *name, const char *descr,
                      bool enabled, bool standard, const char *units,
                      double min, double max, double value)
{
    xcp_value rec, *items;
    int rc;

    if ((rc = xcp__rec_alloc(&rec, C(data_source))) < 0)
        return rc;
#define FLD(f) (&rec.u.rec.fields[F(data_source, f)])
    xcp_value_set_bool(FLD(enabled), enabled);
    xcp_value_set_bool(FLD(standard), standard);
    xcp_value_set_float(FLD(min), min);
    xcp_value_set_float(FLD(max), max);
    xcp_value_set_float(FLD(value), value);
    if (xcp_value_set_string(FLD(name_label), name) < 0 ||
        xcp_value_set_string(FLD(name_description), descr) < 0 ||
        xcp_value_set_string(FLD(units), units) < 0 ||
        !(items = realloc(out->u.arr.items,
                          (out->u.arr.n + 1) * sizeof(*items)))) {
        xcp_value_dispose(&rec);
        return xcp__oom();
    }
#undef FLD
    items[out->u.arr.n++] = rec;
    out->u.arr.items = items;
    return 0;
}

int xcp__metrics_data_sources(xcp__metrics *m, const char *uuid,
                              xcp_value *out)
{
    mrrd *r;
    size_t i;
    int rc = 0;

    if ((rc = xcp_value_set_array(out, 0)) < 0)
        return rc;
    pthread_mutex_lock(&m->mu);
    r = find(m, uuid);
    /* the live ones, then those only archived (XAPI's union) */
    for (i = 0; r && rc == 0 && i < r->n_live; i++) {
        const live_ds *l = &r->live[i];
        const ds_meta *mt = &metas[l->meta];
        int at = xcp__rrd_find(r->rrd, l->name);
        char descr[128];

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        snprintf(descr, sizeof(descr), mt->descr, l->dev);
#pragma GCC diagnostic pop
        rc = add_record(out, l->name, descr, at >= 0, true, mt->units,
                        mt->min, mt->max,
                        at >= 0 ? xcp__rrd_latest(r->rrd, (size_t)at) : NAN);
    }
    for (i = 0; r && rc == 0 && i < r->rrd->n_ds; i++) {
        const xcp__rrd_ds *ds = &r->rrd->ds[i];
        size_t k;

        for (k = 0; k < r->n_live; k++)
            if (!strcmp(r->live[k].name, ds->name))
                break;
        if (k == r->n_live)
            rc = add_record(out, ds->name, "description not available", false,
                            false, "unknown", ds->min, ds->max,
                            xcp__rrd_latest(r->rrd, i));
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

int xcp__metrics_query(xcp__metrics *m, const char *uuid, const char *name,
                       double *out)
{
    mrrd *r;
    int at, rc = 0;

    pthread_mutex_lock(&m->mu);
    if (!(r = find(m, uuid))) {
        rc = missing_rrd(r, uuid);
    } else if ((at = xcp__rrd_find(r->rrd, name)) < 0) {
        /* XAPI: Rrd.Invalid_data_source, relayed as an internal error */
        char *msg = xcp__printf("Rrd_interface.Rrdd_error(Rrdd_internal_error("
                                "Rrd.Invalid_data_source(\"%s\")))", name);

        rc = msg ? XCP__ERR_INTERNAL_ERROR(msg) : xcp__oom();
        free(msg);
    } else {
        *out = xcp__rrd_latest(r->rrd, (size_t)at);
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

int xcp__metrics_record(xcp__metrics *m, const char *uuid, const char *name)
{
    mrrd *r;
    size_t i;
    int rc = 0;

    pthread_mutex_lock(&m->mu);
    if (!(r = find(m, uuid))) {
        rc = missing_rrd(r, uuid);
        goto out;
    }
    for (i = 0; i < r->n_live; i++)
        if (!strcmp(r->live[i].name, name))
            break;
    if (i == r->n_live) {
        rc = missing(name);
        goto out;
    }
    {
        const ds_meta *mt = &metas[r->live[i].meta];
        xcp__ds_def d = {name, mt->type, mt->min, mt->max};

        if (xcp__rrd_add_ds(r->rrd, &d, xcp__now_real()) < 0)
            rc = xcp__oom();
        r->live_sig = 0; /* remap at the next sample */
        r->dirty = true;
    }
out:
    pthread_mutex_unlock(&m->mu);
    return rc;
}

int xcp__metrics_put(xcp__metrics *m, const char *uuid, xcp__rrd *rrd)
{
    xcp__buf img = {0};
    batch bt = {0};
    mrrd *r;
    int rc;

    pthread_mutex_lock(&m->mu);
    if ((r = find(m, uuid))) {
        /* in use here (a VM that has just come here by migration):
         * replaced in memory, and written at once as below, so that a
         * history handed on is as durable here as it was there */
        xcp__rrd_free(r->rrd);
        r->rrd = rrd;
        r->live_sig = 0; /* remap at the next sample */
        r->n_map = 0;
        xcp__rrd_save(rrd, &img);
        pthread_mutex_unlock(&m->mu);
    } else {
        pthread_mutex_unlock(&m->mu);
        /* not here: the archive this host loads when the VM starts here */
        xcp__rrd_save(rrd, &img);
        xcp__rrd_free(rrd);
    }
    batch_add(m, &bt, uuid, &img);
    rc = batch_commit(m, &bt);
    xcp__buf_free(&img);
    return rc;
}

int xcp__metrics_forget(xcp__metrics *m, const char *uuid, const char *name)
{
    mrrd *r;

    pthread_mutex_lock(&m->mu);
    if ((r = find(m, uuid)) && xcp__rrd_remove_ds(r->rrd, name)) {
        r->live_sig = 0;
        r->dirty = true;
    }
    pthread_mutex_unlock(&m->mu);
    return 0;
}

int xcp__metrics_updates(xcp__metrics *m, int64_t start, int64_t interval,
                         int cf, bool host, const char *const *vm_uuids,
                         size_t n, bool json, xcp__buf *out)
{
    xcp__rrd_src *srcs;
    char **prefixes;
    size_t i, k = 0, cap;
    int rc;

    pthread_mutex_lock(&m->mu);
    cap = 1 + (vm_uuids ? n : m->n_list);
    srcs = xcp__calloc(cap, sizeof(*srcs));
    prefixes = xcp__calloc(cap, sizeof(*prefixes));
    if (!srcs || !prefixes) {
        rc = -ENOMEM;
        goto out;
    }
    if (host) {
        prefixes[k] = xcp__printf("host:%s:", m->host->uuid);
        srcs[k].rrd = m->host->rrd;
        srcs[k].prefix = prefixes[k];
        k++;
    }
    for (i = 0; i < (vm_uuids ? n : m->n_list); i++) {
        mrrd *r = vm_uuids ? xcp__hmap_get(&m->vms, vm_uuids[i]) : m->list[i];

        if (!r)
            continue;
        prefixes[k] = xcp__printf("vm:%s:", r->uuid);
        srcs[k].rrd = r->rrd;
        srcs[k].prefix = prefixes[k] ? prefixes[k] : "";
        k++;
    }
    rc = xcp__rrd_export(srcs, k, start, interval, cf, json, out);
out:
    pthread_mutex_unlock(&m->mu);
    for (i = 0; prefixes && i < k; i++)
        free(prefixes[i]);
    free(prefixes);
    free(srcs);
    return rc;
}

int xcp__metrics_rrd(xcp__metrics *m, const char *uuid, bool json,
                     xcp__buf *out)
{
    xcp__rrd *archived = NULL;
    mrrd *r;

    pthread_mutex_lock(&m->mu);
    if ((r = uuid ? find(m, uuid) : m->host)) {
        if (json)
            xcp__rrd_json(r->rrd, out);
        else
            xcp__rrd_xml(r->rrd, out);
    }
    pthread_mutex_unlock(&m->mu);
    if (r)
        return 0;
    /* a VM not running here: the RRD it left, as XAPI unarchives it */
    if (!(archived = load_file(m, uuid)))
        return -ENOENT;
    if (json)
        xcp__rrd_json(archived, out);
    else
        xcp__rrd_xml(archived, out);
    xcp__rrd_free(archived);
    return 0;
}

/* ---- OpenMetrics --------------------------------------------------------- */

typedef struct sample {
    char family[64];
    char labels[160];
    double v;
} sample;

static int cmp_sample(const void *a, const void *b)
{
    return strcmp(((const sample *)a)->family, ((const sample *)b)->family);
}

/* A data source name as a family and a label: cpu3 -> cpu{cpu="3"},
 * vbd_xvda_read -> vbd_read{vbd="xvda"}, pif_eth0_rx -> pif_rx{pif=..}. */
static void family_of(const live_ds *l, const char *kind, const char *uuid,
                      sample *s)
{
    const char *pat = metas[l->meta].fmt, *p = strstr(pat, "%s"), *post;
    int pre;

    if (!p) {
        snprintf(s->family, sizeof(s->family), "xcp_%s_%s", kind, l->name);
        snprintf(s->labels, sizeof(s->labels), "%s=\"%s\"", kind, uuid);
        return;
    }
    pre = (int)(p - pat);
    if (pre > 0 && pat[pre - 1] == '_')
        pre--;
    post = p + 2;
    if (*post == '_')
        post++;
    snprintf(s->family, sizeof(s->family), "xcp_%s_%.*s%s%s", kind, pre, pat,
             *post ? "_" : "", post);
    if (metas[l->meta].label)
        snprintf(s->labels, sizeof(s->labels), "%s=\"%s\",%s=\"%s\"", kind,
                 uuid, metas[l->meta].label, l->dev);
    else
        snprintf(s->labels, sizeof(s->labels), "%s=\"%s\",%.*s=\"%s\"",
                 kind, uuid, pre, pat, l->dev);
}

static void add_samples(const mrrd *r, const char *kind, sample *out,
                        size_t *n)
{
    size_t i;

    for (i = 0; i < r->n_live; i++) {
        int at = xcp__rrd_find(r->rrd, r->live[i].name);

        if (at < 0)
            continue;
        family_of(&r->live[i], kind, r->uuid, &out[*n]);
        out[*n].v = xcp__rrd_latest(r->rrd, (size_t)at);
        (*n)++;
    }
}

void xcp__metrics_openmetrics(xcp__metrics *m, xcp__buf *out)
{
    sample *s;
    size_t i, n = 0, cap;
    char num[32];

    pthread_mutex_lock(&m->mu);
    cap = m->host->n_live;
    for (i = 0; i < m->n_list; i++)
        cap += m->list[i]->n_live;
    if (!(s = xcp__calloc(cap + 1, sizeof(*s)))) {
        pthread_mutex_unlock(&m->mu);
        out->oom = true;
        return;
    }
    add_samples(m->host, "host", s, &n);
    for (i = 0; i < m->n_list; i++)
        add_samples(m->list[i], "vm", s, &n);
    pthread_mutex_unlock(&m->mu);
    qsort(s, n, sizeof(*s), cmp_sample);
    for (i = 0; i < n; i++) {
        if (i == 0 || strcmp(s[i].family, s[i - 1].family))
            xcp__buf_printf(out, "# TYPE %s gauge\n", s[i].family);
        if (isnan(s[i].v))
            strcpy(num, "NaN");
        else if (isinf(s[i].v))
            strcpy(num, s[i].v > 0 ? "+Inf" : "-Inf");
        else
            xcp__format_double(num, sizeof(num), 17, s[i].v);
        xcp__buf_printf(out, "%s{%s} %s\n", s[i].family, s[i].labels, num);
    }
    free(s);
}

void xcp__metrics_costs(xcp__metrics *m, uint64_t *samples, double *cpu_s,
                        size_t *rrds, size_t *bytes)
{
    size_t i, b;

    pthread_mutex_lock(&m->mu);
    *samples = m->samples;
    *cpu_s = m->cpu_s;
    *rrds = m->n_list + 1;
    b = xcp__rrd_bytes(m->host->rrd);
    for (i = 0; i < m->n_list; i++)
        b += xcp__rrd_bytes(m->list[i]->rrd);
    *bytes = b;
    pthread_mutex_unlock(&m->mu);
}

/* ---- XenAPI messages ---------------------------------------------------- */

/* The uuid of argument 0 (a host or a VM) and the monitor. */
static int target(xcp__ctx *c, int cls, const char **uuid, xcp__metrics **m)
{
    xcp__obj *o;
    int rc;

    if ((rc = xcp__arg_obj(c, 0, cls, &o)) < 0)
        return rc;
    *uuid = xcp__obj_uuid(o);
    *m = xcp__engine_metrics(c->e);
    return 0;
}

static int get_sources(xcp__ctx *c, int cls)
{
    const char *uuid;
    xcp__metrics *m;
    int rc;

    if ((rc = target(c, cls, &uuid, &m)) < 0)
        return rc;
    if (!m)
        return xcp_value_set_array(c->result, 0);
    return xcp__metrics_data_sources(m, uuid, c->result);
}

static int query_source(xcp__ctx *c, int cls)
{
    const char *uuid;
    xcp__metrics *m;
    double v = NAN;
    int rc;

    if ((rc = target(c, cls, &uuid, &m)) < 0)
        return rc;
    if (!m)
        return missing("No host datasource!");
    if ((rc = xcp__metrics_query(m, uuid, xcp__arg_str(c, 1), &v)) < 0)
        return rc;
    xcp_value_set_float(c->result, v);
    return 0;
}

static int record_source(xcp__ctx *c, int cls)
{
    const char *uuid;
    xcp__metrics *m;
    int rc;

    if ((rc = target(c, cls, &uuid, &m)) < 0)
        return rc;
    if (!m)
        return missing(xcp__arg_str(c, 1));
    return xcp__metrics_record(m, uuid, xcp__arg_str(c, 1));
}

static int forget_source(xcp__ctx *c, int cls)
{
    const char *uuid;
    xcp__metrics *m;
    int rc;

    if ((rc = target(c, cls, &uuid, &m)) < 0)
        return rc;
    return m ? xcp__metrics_forget(m, uuid, xcp__arg_str(c, 1)) : 0;
}

static int host_get(xcp__ctx *c) { return get_sources(c, C(host)); }
static int vm_get(xcp__ctx *c) { return get_sources(c, C(VM)); }
static int host_query(xcp__ctx *c) { return query_source(c, C(host)); }
static int vm_query(xcp__ctx *c) { return query_source(c, C(VM)); }
static int host_record(xcp__ctx *c) { return record_source(c, C(host)); }
static int vm_record(xcp__ctx *c) { return record_source(c, C(VM)); }
static int host_forget(xcp__ctx *c) { return forget_source(c, C(host)); }
static int vm_forget(xcp__ctx *c) { return forget_source(c, C(VM)); }

const struct xcp__impl xcp__impl_metrics[] = {
    {"host.get_data_sources", host_get},
    {"host.query_data_source", host_query},
    {"host.record_data_source", host_record},
    {"host.forget_data_source_archives", host_forget},
    {"VM.get_data_sources", vm_get},
    {"VM.query_data_source", vm_query},
    {"VM.record_data_source", vm_record},
    {"VM.forget_data_source_archives", vm_forget},
    {NULL, NULL},
};
