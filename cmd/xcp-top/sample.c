/*
 * One refresh of xcp-top: the records of hosts and VMs in four bulk reads
 * of just the fields shown (xcp_get_records_fields: VM, VM_metrics, host,
 * host_metrics), then the current values of the data sources of the hosts
 * and of the running VMs that are shown, one get_data_sources each (the
 * data_source records carry their value, as XAPI's do); sorting and
 * filtering. A server without data sources (NOT_IMPLEMENTED, or the old
 * set of names) leaves those figures unknown rather than failing.
 */
#include "top.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *fstr(const xcp_value *st, const char *k)
{
    const xcp_value *v = st ? xcp_value_struct_get(st, k) : NULL;

    return v && v->kind == XCP_VAL_STRING && v->u.s ? v->u.s : "";
}

static double fnum(const xcp_value *st, const char *k)
{
    const xcp_value *v = st ? xcp_value_struct_get(st, k) : NULL;

    if (!v)
        return NAN;
    switch (v->kind) {
    case XCP_VAL_INT:
        return (double)v->u.i;
    case XCP_VAL_FLOAT:
        return v->u.f;
    case XCP_VAL_STRING: /* XML-RPC ints of 64 bits travel as strings */
        return v->u.s && *v->u.s ? strtod(v->u.s, NULL) : NAN;
    case XCP_VAL_ARRAY:
        return (double)v->u.arr.n;
    default:
        return NAN;
    }
}

static bool fbool(const xcp_value *st, const char *k)
{
    const xcp_value *v = st ? xcp_value_struct_get(st, k) : NULL;

    return v && v->kind == XCP_VAL_BOOL && v->u.b;
}

void top_sample_clear(top_sample *s)
{
    size_t i;

    for (i = 0; i < s->n; i++)
        free(s->rows[i].name);
    free(s->rows);
    memset(s, 0, sizeof(*s));
}

static top_row *add_row(top_sample *s)
{
    top_row *r;

    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        top_row *n = realloc(s->rows, cap * sizeof(*n));

        if (!n)
            return NULL;
        s->rows = n;
        s->cap = cap;
    }
    r = &s->rows[s->n++];
    memset(r, 0, sizeof(*r));
    r->vcpus = r->mem = r->mempct = r->maxmem = r->cpu = NAN;
    r->rd = r->wr = r->rx = r->tx = NAN;
    return r;
}

static double pct(double part, double total)
{
    return total > 0 && !isnan(part) ? 100 * part / total : NAN;
}

static void copy(char *dst, size_t len, const char *src)
{
    snprintf(dst, len, "%s", src);
}

bool top_view_match(const top_view *v, const top_row *r)
{
    if (r->is_host)
        return true;
    if (!v->have_filter)
        return true;
    return regexec(&v->filter, r->name, 0, NULL, 0) == 0
           || regexec(&v->filter, r->uuid, 0, NULL, 0) == 0;
}

static bool is_live(const top_row *r)
{
    return !r->is_host && (!strcasecmp(r->state, "Running")
                           || !strcasecmp(r->state, "Paused"));
}

/* ---- data sources ---- */

/* Whether name is <prefix><dev><suffix> with a device name of no '_'
 * (vbd_xvda_read, vif_0_rx, pif_eth0_tx; not vbd_xvda_read_latency). */
static bool ds_dev(const char *name, const char *prefix, const char *suffix)
{
    size_t lp = strlen(prefix), ls = strlen(suffix), ln = strlen(name);
    const char *us;

    if (ln <= lp + ls || strncmp(name, prefix, lp) != 0
        || strcmp(name + ln - ls, suffix) != 0)
        return false;
    us = strchr(name + lp, '_');
    return us == name + ln - ls;
}

static bool ds_cpu(const char *name)
{
    size_t i = 3;

    if (strncmp(name, "cpu", 3) != 0 || name[3] == '\0')
        return false;
    for (; name[i]; i++)
        if (name[i] < '0' || name[i] > '9')
            return false;
    return true;
}

static void acc(double *sum, double v)
{
    *sum = isnan(*sum) ? v : *sum + v;
}

/* Fold one data source's current value into its row. */
static void ds_apply(top_row *r, const char *name, double v, double *aggr_rx,
                     double *aggr_tx, double *cpus, double *mem_kib,
                     double *free_kib, double *cpu_avg)
{
    if (ds_cpu(name)) {
        acc(&r->cpu, v * 100);
        acc(cpus, 1);
    } else if (!strcmp(name, "cpu_avg"))
        *cpu_avg = v;
    else if (!strcmp(name, "memory") && !r->is_host && isnan(r->mem))
        r->mem = v;
    else if (!strcmp(name, "memory_total_kib"))
        *mem_kib = v;
    else if (!strcmp(name, "memory_free_kib"))
        *free_kib = v;
    else if (ds_dev(name, "vbd_", "_read"))
        acc(&r->rd, v);
    else if (ds_dev(name, "vbd_", "_write"))
        acc(&r->wr, v);
    else if (!strcmp(name, "pif_aggr_rx"))
        *aggr_rx = v;
    else if (!strcmp(name, "pif_aggr_tx"))
        *aggr_tx = v;
    else if (ds_dev(name, r->is_host ? "pif_" : "vif_", "_rx"))
        acc(&r->rx, v);
    else if (ds_dev(name, r->is_host ? "pif_" : "vif_", "_tx"))
        acc(&r->tx, v);
}

int top_row_add_ds(top_row *r, const xcp_value *sources)
{
    double aggr_rx = NAN, aggr_tx = NAN, cpus = NAN, mem_kib = NAN,
           free_kib = NAN, cpu_avg = NAN;
    size_t i;

    if (sources->kind != XCP_VAL_ARRAY)
        return 1;
    for (i = 0; i < sources->u.arr.n; i++) {
        const xcp_value *d = &sources->u.arr.items[i];
        if (d->kind != XCP_VAL_STRUCT && d->kind != XCP_VAL_RECORD)
            return 1; /* names only: no values to show */
    }
    for (i = 0; i < sources->u.arr.n; i++) {
        const xcp_value *d = &sources->u.arr.items[i];
        const xcp_value *en = xcp_value_struct_get(d, "enabled");
        double v;

        if (en && en->kind == XCP_VAL_BOOL && !en->u.b)
            continue;
        v = fnum(d, "value");
        if (isnan(v))
            continue;
        ds_apply(r, fstr(d, "name_label"), v, &aggr_rx, &aggr_tx, &cpus,
                 &mem_kib, &free_kib, &cpu_avg);
    }
    if (r->is_host) {
        /* pif_aggr_* is the sum XAPI keeps beside the PIFs' own. */
        if (!isnan(aggr_rx))
            r->rx = aggr_rx;
        if (!isnan(aggr_tx))
            r->tx = aggr_tx;
        if (!isnan(cpus))
            r->vcpus = cpus;
        if (isnan(r->cpu) && !isnan(cpu_avg) && !isnan(r->vcpus))
            r->cpu = cpu_avg * 100 * r->vcpus;
        if (!isnan(mem_kib)) {
            r->maxmem = mem_kib * 1024;
            if (!isnan(free_kib))
                r->mem = (mem_kib - free_kib) * 1024;
            r->mempct = pct(r->mem, r->maxmem);
        }
    }
    return 0;
}

/*
 * Read the data sources of one host or VM into its row. Returns 0, 1
 * when the server has none to give (the caller stops asking), or -1 when
 * this object's could not be read (it may have just gone).
 */
static int read_ds(xcp_session *s, top_row *r, top_sample *out)
{
    xcp_value arg, res;
    const xcp_error *e;
    int rc;

    memset(&res, 0, sizeof(res));
    if (xcp_value_set_string(&arg, r->ref) < 0)
        return -1;
    out->stats.calls++;
    out->stats.ds_calls++;
    rc = xcp_call(s, &res,
                  r->is_host ? "host.get_data_sources"
                             : "VM.get_data_sources",
                  1, &arg);
    xcp_value_dispose(&arg);
    if (rc < 0) {
        e = xcp_error_last();
        return e && e->name
                       && (!strcmp(e->name, "NOT_IMPLEMENTED")
                           || !strcmp(e->name, "MESSAGE_METHOD_UNKNOWN"))
                   ? 1
                   : -1;
    }
    rc = top_row_add_ds(r, &res);
    xcp_value_dispose(&res);
    return rc;
}

/* ---- sorting ---- */

static const top_view *sort_view; /* qsort has no context argument */

static bool col_text(int col)
{
    return col == COL_NAME || col == COL_UUID || col == COL_STATE
           || col == COL_TYPE;
}

static double col_num(const top_row *r, int col)
{
    switch (col) {
    case COL_CPU:
        return r->cpu;
    case COL_VCPUS:
        return r->vcpus;
    case COL_MEM:
        return r->mem;
    case COL_MEMPCT:
        return r->mempct;
    case COL_MAXMEM:
        return r->maxmem;
    case COL_RD:
        return r->rd;
    case COL_WR:
        return r->wr;
    case COL_RX:
        return r->rx;
    case COL_TX:
        return r->tx;
    default:
        return NAN;
    }
}

static int cmp_rows(const void *pa, const void *pb)
{
    const top_row *a = pa, *b = pb;
    int col = sort_view->sort, c = 0;

    if (col_text(col)) {
        /* Text: ascending unless reversed. */
        c = col == COL_STATE ? strcasecmp(a->state, b->state)
            : col == COL_UUID ? strcmp(a->uuid, b->uuid)
                              : strcasecmp(a->name, b->name);
        if (sort_view->reverse)
            c = -c;
    } else {
        /* Figures: largest first unless reversed; unknown last. */
        double x = col_num(a, col), y = col_num(b, col);

        if (isnan(x) != isnan(y))
            return isnan(x) ? 1 : -1;
        if (!isnan(x) && x != y)
            c = (x > y ? -1 : 1) * (sort_view->reverse ? -1 : 1);
    }
    if (c == 0)
        c = strcasecmp(a->name, b->name);
    if (c == 0)
        c = strcmp(a->uuid, b->uuid);
    return c;
}

void top_sample_sort(top_sample *s, const top_view *v)
{
    sort_view = v;
    if (s->n > s->nhosts)
        qsort(s->rows + s->nhosts, s->n - s->nhosts, sizeof(top_row),
              cmp_rows);
}

/* Whether sorting by col needs every row's data sources. */
static bool sort_needs_ds(int col)
{
    return col == COL_CPU || col == COL_RD || col == COL_WR || col == COL_RX
           || col == COL_TX;
}

/* ---- the refresh ---- */

static int cmp_hosts(const void *pa, const void *pb)
{
    const top_row *a = pa, *b = pb;
    int c = strcasecmp(a->name, b->name);

    return c ? c : strcmp(a->uuid, b->uuid);
}

static int add_hosts(top_sample *out, const top_cache *c)
{
    const top_table *t = &c->t[TOP_HOST];
    size_t i;

    for (i = 0; i < t->n; i++) {
        const xcp_value *h = &t->v[i].snap;
        const xcp_value *m =
            top_cache_get(c, TOP_HOST_METRICS, fstr(h, "metrics"));
        top_row *r = add_row(out);
        double total = fnum(m, "memory_total"), free = fnum(m, "memory_free");

        if (!r || !(r->name = strdup(fstr(h, "name_label"))))
            return -1;
        r->is_host = true;
        copy(r->ref, sizeof(r->ref), t->v[i].ref);
        copy(r->host, sizeof(r->host), t->v[i].ref);
        copy(r->uuid, sizeof(r->uuid), fstr(h, "uuid"));
        copy(r->state, sizeof(r->state),
             m && !fbool(m, "live") ? "down"
             : fbool(h, "enabled")  ? "up"
                                    : "disabled");
        r->vcpus = fnum(h, "host_CPUs");
        if (r->vcpus == 0)
            r->vcpus = NAN;
        r->maxmem = total;
        if (!isnan(total) && !isnan(free))
            r->mem = total - free;
        r->mempct = pct(r->mem, total);
    }
    out->nhosts = out->n;
    qsort(out->rows, out->nhosts, sizeof(top_row), cmp_hosts);
    return 0;
}

/* Memory of a VM's host, for MEM(%): what xentop divides by. */
static double host_total(const top_sample *out, const char *ref)
{
    size_t i;

    for (i = 0; i < out->nhosts; i++)
        if (!strcmp(out->rows[i].ref, ref))
            return out->rows[i].maxmem;
    return NAN;
}

static int add_vms(top_sample *out, const top_view *v, const top_cache *c)
{
    const top_table *t = &c->t[TOP_VM];
    size_t i;

    for (i = 0; i < t->n; i++) {
        const xcp_value *x = &t->v[i].snap;
        const xcp_value *m;
        top_row *r;

        if (fbool(x, "is_a_template") || fbool(x, "is_a_snapshot"))
            continue;
        out->vms_total++;
        if (v->hosts_only)
            continue;
        r = add_row(out);
        if (!r || !(r->name = strdup(fstr(x, "name_label"))))
            return -1;
        copy(r->ref, sizeof(r->ref), t->v[i].ref);
        copy(r->uuid, sizeof(r->uuid), fstr(x, "uuid"));
        copy(r->state, sizeof(r->state), fstr(x, "power_state"));
        copy(r->host, sizeof(r->host), fstr(x, "resident_on"));
        if (is_live(r))
            out->vms_running++; /* filtered or not, as vms_total */
        if (!top_view_match(v, r)) {
            free(r->name);
            out->n--;
            continue;
        }
        r->maxmem = fnum(x, "memory_static_max");
        if (is_live(r)) {
            m = top_cache_get(c, TOP_VM_METRICS, fstr(x, "metrics"));
            r->mem = fnum(m, "memory_actual");
            r->vcpus = fnum(m, "VCPUs_number");
        } else {
            r->mem = 0;
            r->vcpus = fnum(x, "VCPUs_at_startup");
        }
        r->mempct = pct(r->mem, host_total(out, r->host));
    }
    return 0;
}

/* Read the data sources of the rows that want them. */
static void read_all_ds(xcp_session *s, top_sample *out, top_view *v)
{
    size_t i;

    for (i = 0; i < out->n && !v->ds_unsupported; i++) {
        top_row *r = &out->rows[i];

        if (!r->ds_wanted)
            continue;
        if (read_ds(s, r, out) == 1)
            v->ds_unsupported = true;
    }
    out->ds_missing = v->ds_unsupported;
}

int top_sample_take(xcp_session *s, top_view *v, top_sample *out)
{
    size_t i, end;
    int rc = -1;

    top_sample_clear(out);
    if (top_cache_update(s, &v->cache, &out->stats.calls) < 0)
        return -1;
    if (add_hosts(out, &v->cache) < 0 || add_vms(out, v, &v->cache) < 0)
        goto out;
    for (i = 0; i < out->nhosts; i++)
        out->rows[i].ds_wanted = true;
    /* The VMs' data sources: every live row when all are shown or the
     * sort needs them, else those of the window on screen. */
    if (v->all_ds || sort_needs_ds(v->sort)) {
        for (i = out->nhosts; i < out->n; i++)
            out->rows[i].ds_wanted = is_live(&out->rows[i]);
        read_all_ds(s, out, v);
        top_sample_sort(out, v);
    } else {
        top_sample_sort(out, v);
        end = out->nhosts + v->first + v->visible;
        for (i = out->nhosts + v->first; i < out->n && i < end; i++)
            out->rows[i].ds_wanted = is_live(&out->rows[i]);
        read_all_ds(s, out, v);
    }
    rc = 0;
out:
    return rc;
}

void top_view_dispose(top_view *v)
{
    if (v->have_filter)
        regfree(&v->filter);
    v->have_filter = false;
    top_cache_dispose(&v->cache);
}
