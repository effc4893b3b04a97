/*
 * xcp-top's pieces without a server: folding data-source values into a
 * row (XAPI's names and units), the sort (figures largest first, unknown
 * last, reversal, ties by name), the filter, and the command line.
 */
#include "top.h"

#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

/* An array of data_source structs {name_label, value[, enabled]}. */
typedef struct ds {
    const char *name;
    double value;
    int enabled; /* -1: absent, else the flag */
} ds;

static void sources(xcp_value *out, const ds *d, size_t n)
{
    size_t i;

    cr_assert_eq(xcp_value_set_array(out, n), 0);
    for (i = 0; i < n; i++) {
        xcp_value *st = &out->u.arr.items[i], v;

        xcp_value_set_struct(st);
        cr_assert_eq(xcp_value_set_string(&v, d[i].name), 0);
        cr_assert_eq(xcp_value_struct_add(st, "name_label", &v), 0);
        xcp_value_set_float(&v, d[i].value);
        cr_assert_eq(xcp_value_struct_add(st, "value", &v), 0);
        if (d[i].enabled >= 0) {
            xcp_value_set_bool(&v, d[i].enabled != 0);
            cr_assert_eq(xcp_value_struct_add(st, "enabled", &v), 0);
        }
    }
}

static void blank(top_row *r, bool host)
{
    memset(r, 0, sizeof(*r));
    r->is_host = host;
    r->vcpus = r->mem = r->mempct = r->maxmem = r->cpu = NAN;
    r->rd = r->wr = r->rx = r->tx = NAN;
}

Test(ds, vm_values_summed_by_device_extras_ignored)
{
    static const ds d[] = {
        {"cpu0", 0.25, -1},          {"cpu1", 0.5, 1},
        {"cpu2", 1.0, 0}, /* disabled */
        {"vbd_xvda_read", 1024, -1}, {"vbd_xvdb_read", 2048, -1},
        {"vbd_xvda_read_latency", 7, -1}, {"vbd_xvda_write", 10, -1},
        {"vbd_xvda_iops_read", 99, -1},
        {"vif_0_rx", 100, -1},       {"vif_1_rx", 50, -1},
        {"vif_0_tx", 5, -1},         {"memory", 4096, -1},
        {"memory_internal_free", 1, -1},
    };
    xcp_value v;
    top_row r;

    blank(&r, false);
    sources(&v, d, sizeof(d) / sizeof(d[0]));
    cr_assert_eq(top_row_add_ds(&r, &v), 0);
    cr_assert_float_eq(r.cpu, 75.0, 1e-9);
    cr_assert_float_eq(r.rd, 3072.0, 1e-9);
    cr_assert_float_eq(r.wr, 10.0, 1e-9);
    cr_assert_float_eq(r.rx, 150.0, 1e-9);
    cr_assert_float_eq(r.tx, 5.0, 1e-9);
    cr_assert_float_eq(r.mem, 4096.0, 1e-9); /* no memory_actual: the ds */
    cr_assert(isnan(r.vcpus));
    xcp_value_dispose(&v);
}

Test(ds, vm_memory_actual_kept)
{
    static const ds d[] = {{"memory", 4096, -1}};
    xcp_value v;
    top_row r;

    blank(&r, false);
    r.mem = 1 << 20;
    sources(&v, d, 1);
    cr_assert_eq(top_row_add_ds(&r, &v), 0);
    cr_assert_float_eq(r.mem, 1 << 20, 1e-9);
    xcp_value_dispose(&v);
}

Test(ds, host_aggregate_memory_and_cpus)
{
    static const ds d[] = {
        {"cpu0", 0.5, -1},         {"cpu1", 0.25, -1},
        {"cpu_avg", 0.375, -1},    {"pif_eth0_rx", 10, -1},
        {"pif_eth1_rx", 20, -1},   {"pif_aggr_rx", 30, -1},
        {"pif_eth0_tx", 4, -1},    {"memory_total_kib", 1000, -1},
        {"memory_free_kib", 250, -1}, {"loadavg", 3, -1},
    };
    xcp_value v;
    top_row r;

    blank(&r, true);
    sources(&v, d, sizeof(d) / sizeof(d[0]));
    cr_assert_eq(top_row_add_ds(&r, &v), 0);
    cr_assert_float_eq(r.cpu, 75.0, 1e-9);
    cr_assert_float_eq(r.vcpus, 2, 1e-9);
    cr_assert_float_eq(r.rx, 30.0, 1e-9); /* pif_aggr_rx, not 60 */
    cr_assert_float_eq(r.tx, 4.0, 1e-9);  /* no aggregate: the sum */
    cr_assert_float_eq(r.maxmem, 1000.0 * 1024, 1e-9);
    cr_assert_float_eq(r.mem, 750.0 * 1024, 1e-9);
    cr_assert_float_eq(r.mempct, 75.0, 1e-9);
    cr_assert(isnan(r.rd));
    xcp_value_dispose(&v);
}

Test(ds, host_cpu_avg_without_cpun)
{
    static const ds d[] = {{"cpu_avg", 0.5, -1}};
    xcp_value v;
    top_row r;

    blank(&r, true);
    r.vcpus = 4; /* from host_CPUs */
    sources(&v, d, 1);
    cr_assert_eq(top_row_add_ds(&r, &v), 0);
    cr_assert_float_eq(r.cpu, 200.0, 1e-9);
    xcp_value_dispose(&v);
}

Test(ds, names_only_leave_row_untouched)
{
    xcp_value v;
    top_row r;

    blank(&r, false);
    cr_assert_eq(xcp_value_set_array(&v, 1), 0);
    cr_assert_eq(xcp_value_set_string(&v.u.arr.items[0], "cpu0"), 0);
    cr_assert_eq(top_row_add_ds(&r, &v), 1);
    cr_assert(isnan(r.cpu));
    xcp_value_dispose(&v);
    xcp_value_set_int(&v, 3);
    cr_assert_eq(top_row_add_ds(&r, &v), 1);
}

static void row(top_sample *s, const char *name, double cpu)
{
    top_row *r = &s->rows[s->n++];

    blank(r, false);
    r->name = strdup(name);
    snprintf(r->uuid, sizeof(r->uuid), "uuid-%s", name);
    r->cpu = cpu;
}

static void names(const top_sample *s, char *buf, size_t len)
{
    size_t i, off = 0;

    buf[0] = '\0';
    for (i = s->nhosts; i < s->n; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s ", s->rows[i].name);
}

Test(sort, figures_largest_first_unknown_last_ties_by_name)
{
    top_sample s;
    top_view v;
    char got[128];

    memset(&s, 0, sizeof(s));
    memset(&v, 0, sizeof(v));
    s.rows = calloc(8, sizeof(top_row));
    s.cap = 8;
    row(&s, "host", 1); /* a host row first: never moved */
    s.rows[0].is_host = true;
    s.nhosts = 1;
    row(&s, "b", 5);
    row(&s, "idle", NAN);
    row(&s, "a", 5);
    row(&s, "busy", 90);
    v.sort = COL_CPU;
    top_sample_sort(&s, &v);
    names(&s, got, sizeof(got));
    cr_assert_str_eq(got, "busy a b idle ");
    cr_assert_str_eq(s.rows[0].name, "host");
    v.reverse = true;
    top_sample_sort(&s, &v);
    names(&s, got, sizeof(got));
    cr_assert_str_eq(got, "a b busy idle ");
    v.sort = COL_NAME;
    top_sample_sort(&s, &v);
    names(&s, got, sizeof(got));
    cr_assert_str_eq(got, "idle busy b a ");
    v.reverse = false;
    top_sample_sort(&s, &v);
    names(&s, got, sizeof(got));
    cr_assert_str_eq(got, "a b busy idle ");
    top_sample_clear(&s);
}

Test(filter, name_or_uuid_case_insensitive_hosts_always)
{
    top_view v;
    top_row r;

    memset(&v, 0, sizeof(v));
    cr_assert_eq(regcomp(&v.filter, "^WEB", REG_EXTENDED | REG_ICASE
                                                | REG_NOSUB), 0);
    v.have_filter = true;
    blank(&r, false);
    r.name = "web1";
    snprintf(r.uuid, sizeof(r.uuid), "0000");
    cr_assert(top_view_match(&v, &r));
    r.name = "db1";
    cr_assert_not(top_view_match(&v, &r));
    snprintf(r.uuid, sizeof(r.uuid), "web-uuid");
    cr_assert(top_view_match(&v, &r));
    r.is_host = true;
    snprintf(r.uuid, sizeof(r.uuid), "x");
    cr_assert(top_view_match(&v, &r));
    regfree(&v.filter);
}

static void parse(top_opts *o, const char *const *args)
{
    int n = 0;

    while (args[n])
        n++;
    top_opts_parse(o, n, (char *const *)args);
}

Test(opts, batch_cadence_and_connection)
{
    static const char *const a[] = {
        "-b", "-i", "0.5", "-n", "3", "-s", "h", "-p", "8080", "-u", "me",
        "-pw", "pw", "--nossl", "--sort", "rx", "-r", "-f", "web", NULL};
    top_opts o;

    parse(&o, a);
    cr_assert_eq(o.action, TOP_RUN);
    cr_assert(o.batch && o.nossl && o.reverse);
    cr_assert_float_eq(o.interval, 0.5, 1e-12);
    cr_assert_eq(o.count, 3);
    cr_assert_str_eq(o.server, "h");
    cr_assert_eq(o.port, 8080);
    cr_assert_str_eq(o.user, "me");
    cr_assert_str_eq(o.password, "pw");
    cr_assert_eq(o.sort, COL_RX);
    cr_assert_str_eq(o.filter, "web");
}

Test(opts, defaults_and_long_forms)
{
    static const char *const none[] = {NULL};
    static const char *const l[] = {"--delay", "3", "--iterations", "2",
                                    "--interval", "4", "-S", "MEM(%)", NULL};
    top_opts o;

    parse(&o, none);
    cr_assert_eq(o.action, TOP_RUN);
    cr_assert_not(o.batch);
    cr_assert_float_eq(o.interval, 2, 1e-12);
    cr_assert_eq(o.count, -1);
    cr_assert_eq(o.port, -1);
    cr_assert_eq(o.sort, COL_NAME);
    parse(&o, l);
    cr_assert_eq(o.action, TOP_RUN);
    cr_assert_float_eq(o.interval, 4, 1e-12);
    cr_assert_eq(o.count, 2);
    cr_assert_eq(o.sort, COL_MEMPCT);
}

Test(opts, errors_named)
{
    static const char *const bad[][3] = {
        {"-i", "0", NULL},     {"-i", "-1", NULL}, {"-i", "nan", NULL},
        {"-n", "0", NULL},     {"-n", "x", NULL},  {"-p", "0", NULL},
        {"-p", "65536", NULL}, {"-S", "type", NULL}, {"-S", "zz", NULL},
        {"-i", NULL, NULL},    {"-x", NULL, NULL},
    };
    size_t i;
    top_opts o;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        parse(&o, bad[i]);
        cr_assert_eq(o.action, TOP_BAD, "%s %s accepted", bad[i][0],
                     bad[i][1] ? bad[i][1] : "");
        cr_assert(strncmp(o.errtext, "xcp-top: ", 9) == 0);
    }
    {
        static const char *const h[] = {"-b", "--help", "-x", NULL};
        parse(&o, h);
        cr_assert_eq(o.action, TOP_HELP);
    }
}

/* ---- the event.from cache ---- */

/* Append {class, operation, ref[, snapshot {name_label}]} to events. */
static void event(xcp_value *events, const char *cls, const char *op,
                  const char *ref, const char *name)
{
    xcp_value ev, v, snap;
    size_t n = events->kind == XCP_VAL_ARRAY ? events->u.arr.n : 0;
    xcp_value grown;
    size_t i;

    cr_assert_eq(xcp_value_set_array(&grown, n + 1), 0);
    for (i = 0; i < n; i++) {
        grown.u.arr.items[i] = events->u.arr.items[i];
        memset(&events->u.arr.items[i], 0, sizeof(xcp_value));
    }
    xcp_value_dispose(events);
    *events = grown;
    xcp_value_set_struct(&ev);
    cr_assert_eq(xcp_value_set_string(&v, cls), 0);
    cr_assert_eq(xcp_value_struct_add(&ev, "class", &v), 0);
    cr_assert_eq(xcp_value_set_string(&v, op), 0);
    cr_assert_eq(xcp_value_struct_add(&ev, "operation", &v), 0);
    cr_assert_eq(xcp_value_set_string(&v, ref), 0);
    cr_assert_eq(xcp_value_struct_add(&ev, "ref", &v), 0);
    if (name) {
        xcp_value_set_struct(&snap);
        cr_assert_eq(xcp_value_set_string(&v, name), 0);
        cr_assert_eq(xcp_value_struct_add(&snap, "name_label", &v), 0);
        cr_assert_eq(xcp_value_struct_add(&ev, "snapshot", &snap), 0);
    }
    events->u.arr.items[n] = ev;
}

static const char *name_of(const top_cache *c, int cls, const char *ref)
{
    const xcp_value *r = top_cache_get(c, cls, ref);
    const xcp_value *n = r ? xcp_value_struct_get(r, "name_label") : NULL;

    return n && n->kind == XCP_VAL_STRING ? n->u.s : NULL;
}

Test(cache, add_mod_del_across_and_within_replies)
{
    top_cache c;
    xcp_value ev;
    size_t i;

    memset(&c, 0, sizeof(c));
    memset(&ev, 0, sizeof(ev));
    /* XAPI's lower-case class names; refs out of order; a foreign class. */
    event(&ev, "vm", "add", "OpaqueRef:c", "c");
    event(&ev, "VM", "add", "OpaqueRef:a", "a");
    event(&ev, "host", "add", "OpaqueRef:h", "h");
    event(&ev, "SR", "add", "OpaqueRef:s", "s");
    event(&ev, "VM", "add", "OpaqueRef:b", "b");
    cr_assert_eq(top_cache_merge(&c, &ev), 0);
    xcp_value_dispose(&ev);
    cr_assert_eq(c.t[TOP_VM].n, 3);
    for (i = 1; i < c.t[TOP_VM].n; i++) /* sorted by ref */
        cr_assert(strcmp(c.t[TOP_VM].v[i - 1].ref, c.t[TOP_VM].v[i].ref) < 0);
    cr_assert_str_eq(name_of(&c, TOP_HOST, "OpaqueRef:h"), "h");
    cr_assert_null(top_cache_get(&c, TOP_VM, "OpaqueRef:s"));
    /* Next reply: a change, a deletion, a deletion of the unknown, an
     * object added and deleted within the reply, one added twice. */
    event(&ev, "VM", "mod", "OpaqueRef:b", "b2");
    event(&ev, "VM", "del", "OpaqueRef:a", NULL);
    event(&ev, "VM", "del", "OpaqueRef:zz", NULL);
    event(&ev, "VM", "add", "OpaqueRef:d", "d");
    event(&ev, "VM", "del", "OpaqueRef:d", NULL);
    event(&ev, "VM", "add", "OpaqueRef:0", "zero");
    event(&ev, "VM", "mod", "OpaqueRef:0", "zero2");
    cr_assert_eq(top_cache_merge(&c, &ev), 0);
    xcp_value_dispose(&ev);
    cr_assert_eq(c.t[TOP_VM].n, 3, "%zu VMs", c.t[TOP_VM].n);
    cr_assert_str_eq(name_of(&c, TOP_VM, "OpaqueRef:b"), "b2");
    cr_assert_null(top_cache_get(&c, TOP_VM, "OpaqueRef:a"));
    cr_assert_null(top_cache_get(&c, TOP_VM, "OpaqueRef:d"));
    cr_assert_str_eq(name_of(&c, TOP_VM, "OpaqueRef:0"), "zero2");
    cr_assert_str_eq(name_of(&c, TOP_VM, "OpaqueRef:c"), "c");
    for (i = 1; i < c.t[TOP_VM].n; i++)
        cr_assert(strcmp(c.t[TOP_VM].v[i - 1].ref, c.t[TOP_VM].v[i].ref) < 0);
    cr_assert_null(top_cache_get(&c, TOP_VM, "OpaqueRef:NULL"));
    /* Not an array: refused, nothing changed. */
    xcp_value_set_int(&ev, 1);
    cr_assert_eq(top_cache_merge(&c, &ev), -1);
    cr_assert_eq(c.t[TOP_VM].n, 3);
    top_cache_dispose(&c);
}
