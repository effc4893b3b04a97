/*
 * xe: XAPI's administrative commands over calls libxcp has, as
 * cli_operations.ml writes them: CPU features of the host and the pool,
 * the licence views (host-license-view, host-all-editions,
 * diagnostic-license-status), vif-configure-ipv4/-ipv6,
 * vm-crashdump-list, pool-ha-compute-hypothetical-max-host-failures-
 * to-tolerate and pool-disable-ssl-legacy.  Where libxcp lacks the
 * feature, the call's XenAPI error is the answer (printed as any).
 */
#include "cmds.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The host of key= (a uuid) when given, else this host. */
static int host_of(xe_ctx *ctx, const char *key, const char **ref)
{
    const char *uuid = xe_param(ctx, key);

    return uuid ? xe_get_by_uuid(ctx, "host", uuid, ref)
                : xe_this_host(ctx, ref);
}

/* get_pool_with_default: uuid= or the (first) pool. */
static int pool_of(xe_ctx *ctx, const char **ref)
{
    const char *uuid = xe_param(ctx, "uuid");
    xe_args a;
    xcp_value v;

    if (uuid != NULL)
        return xe_get_by_uuid(ctx, "pool", uuid, ref);
    xe_args_init(&a);
    if (xe_call(ctx, &v, "pool.get_all", &a) < 0)
        return -1;
    if (v.kind != XCP_VAL_ARRAY || v.u.arr.n == 0) {
        xcp_value_dispose(&v);
        return xe_fail(ctx, "No pool found");
    }
    *ref = xe_strdup(&ctx->arena, v.u.arr.items[0].u.s);
    xcp_value_dispose(&v);
    return 0;
}

/* A string map (struct of strings) as one record: key, value rows, in
 * the map's order; keys in skip[] left out. */
static void print_map(xe_ctx *ctx, const xcp_value *v,
                      const char *const *keys, const char *const *skip)
{
    xe_table_rec rec;
    size_t i, j, n = v->kind == XCP_VAL_STRUCT ? v->u.st.n : 0;

    rec.n = 0;
    rec.rows = xe_alloc(&ctx->arena, (n + 1) * sizeof(xe_row));
    for (i = 0; keys != NULL && keys[i] != NULL; i++)
        for (j = 0; j < n; j++)
            if (strcmp(v->u.st.keys[j], keys[i]) == 0
                && v->u.st.vals[j].kind == XCP_VAL_STRING)
                rec.rows[rec.n++] = (xe_row){
                    xe_strdup(&ctx->arena, keys[i]),
                    xe_strdup(&ctx->arena, v->u.st.vals[j].u.s)};
    for (j = 0; keys == NULL && j < n; j++) {
        bool hide = false;

        for (i = 0; skip != NULL && skip[i] != NULL; i++)
            hide |= strcmp(skip[i], v->u.st.keys[j]) == 0;
        if (!hide && v->u.st.vals[j].kind == XCP_VAL_STRING)
            rec.rows[rec.n++] = (xe_row){
                xe_strdup(&ctx->arena, v->u.st.keys[j]),
                xe_strdup(&ctx->arena, v->u.st.vals[j].u.s)};
    }
    xe_print_table(ctx, &rec, 1);
}

/* cpu_info_features_of: the keys cpu_info has, in XAPI's order. */
static int cpu_features(xe_ctx *ctx, const char *method, const char *self,
                        const char *const *keys)
{
    xcp_value v;

    if (xe_get_value(ctx, method, self, &v) < 0)
        return -1;
    print_map(ctx, &v, keys, NULL);
    xcp_value_dispose(&v);
    return 0;
}

int xe_host_get_cpu_features(xe_ctx *ctx)
{
    static const char *const keys[] = {"features_pv", "features_hvm",
                                       "features_pv_host",
                                       "features_hvm_host", NULL};
    const char *host;

    if (host_of(ctx, "uuid", &host) < 0)
        return -1;
    return cpu_features(ctx, "host.get_cpu_info", host, keys);
}

int xe_pool_get_cpu_features(xe_ctx *ctx)
{
    static const char *const keys[] = {"features_pv_host",
                                       "features_hvm_host", NULL};
    const char *pool;

    if (pool_of(ctx, &pool) < 0)
        return -1;
    return cpu_features(ctx, "pool.get_cpu_info", pool, keys);
}

int xe_host_license_view(xe_ctx *ctx)
{
    static const char *const skip[] = {"sku_type", NULL};
    const char *host;
    xcp_value v;

    if (host_of(ctx, "host-uuid", &host) < 0
        || xe_get_value(ctx, "host.get_license_params", host, &v) < 0)
        return -1;
    print_map(ctx, &v, NULL, skip);
    xcp_value_dispose(&v);
    return 0;
}

int xe_host_all_editions(xe_ctx *ctx)
{
    const char *host;
    xcp_value v;
    xe_strv sv;
    size_t i;

    if (xe_this_host(ctx, &host) < 0
        || xe_get_value(ctx, "host.get_editions", host, &v) < 0)
        return -1;
    xe_strv_init(&sv, &ctx->arena);
    for (i = 0; v.kind == XCP_VAL_ARRAY && i < v.u.arr.n; i++)
        if (v.u.arr.items[i].kind == XCP_VAL_STRING)
            xe_strv_add(&sv, xe_strdup(&ctx->arena, v.u.arr.items[i].u.s));
    xcp_value_dispose(&v);
    xe_print_list(ctx, sv.v, sv.n);
    return 0;
}

/* ---- diagnostic-license-status (XAPI's Features, features.ml) ---- */

/* Every feature in XAPI's order: its licence key, whether "true" enables
 * it (Positive) or restricts it (Negative), and its compact tag. */
static const struct feature {
    const char *key;
    bool positive;
    const char *tag;
    bool when_unknown; /* enabled_when_unknown */
} features[] = {
    {"restrict_vlan", false, "VLAN", false},
    {"restrict_qos", false, "QoS", false},
    {"restrict_pool_attached_storage", false, "SStorage", false},
    {"restrict_netapp", false, "NTAP", false},
    {"restrict_equalogic", false, "EQL", false},
    {"restrict_pooling", false, "Pool", false},
    {"enable_xha", true, "XHA", false},
    {"restrict_marathon", false, "MTC", false},
    {"restrict_email_alerting", false, "email", false},
    {"restrict_historical_performance", false, "perf", false},
    {"restrict_wlb", false, "WLB", false},
    {"restrict_rbac", false, "RBAC", false},
    {"restrict_dmc", false, "DMC", false},
    {"restrict_checkpoint", false, "chpt", false},
    {"restrict_cpu_masking", false, "Mask", false},
    {"restrict_connection", false, "Cnx", false},
    {"platform_filter", false, "Plat", false},
    {"regular_nag_dialog", false, "nonag", false},
    {"restrict_vmpr", false, "VMPR", false},
    {"restrict_vmss", false, "VMSS", false},
    {"restrict_intellicache", false, "IntelliCache", false},
    {"restrict_gpu", false, "GPU", false},
    {"restrict_dr", false, "DR", false},
    {"restrict_vif_locking", false, "VIFLock", false},
    {"restrict_storage_xen_motion", false, "SXM", false},
    {"restrict_vgpu", false, "vGPU", false},
    {"restrict_integrated_gpu_passthrough", false, "iGPU", false},
    {"restrict_vss", false, "VSS", false},
    {"restrict_guest_agent_auto_update", false, "GAAU", false},
    {"restrict_pci_device_for_auto_update", false, "PciAU", false},
    {"restrict_xen_motion", false, "Live_migration", true},
    {"restrict_guest_ip_setting", false, "GuestIP", false},
    {"restrict_ad", false, "AD", true},
    {"restrict_nested_virt", false, "Nested_virt", false},
    {"restrict_live_patching", false, "Live_patching", false},
    {"restrict_set_vcpus_number_live", false, "Live_set_vcpus", false},
    {"restrict_pvs_proxy", false, "PVS_proxy", false},
    {"restrict_igmp_snooping", false, "IGMP_snooping", false},
    {"restrict_rpu", false, "RPU", false},
    {"restrict_pool_size", false, "Pool_size", false},
    {"restrict_cbt", false, "CBT", false},
    {"restrict_usb_passthrough", false, "USB_passthrough", false},
    {"restrict_network_sriov", false, "Network_sriov", false},
    {"restrict_corosync", false, "Corosync", false},
    {"restrict_cluster_address", false, "Cluster_address", false},
    {"restrict_zstd_export", false, "Zstd_export", false},
    {"restrict_pool_secret_rotation", false, "Pool_secret_rotation", false},
    {"restrict_certificate_verification", false, "Certificate_verification",
     false},
    {"restrict_updates", false, "Upd", true},
    {"restrict_internal_repo_access", false, "Internal_repo_access", false},
    {"restrict_vtpm", false, "VTPM", false},
    {"restrict_vm_groups", false, "VM_groups", false},
    {"restrict_vm_start", false, "Start", true},
    {"restrict_vm_appliance_start", false, "Start", true},
};

/* Features.of_assoc_list then to_compact_string: each feature's tag when
 * enabled, as many blanks when not. */
static const char *compact_features(xe_ctx *ctx, const xcp_value *m)
{
    xe_buf b;
    size_t i, j;

    xe_buf_init(&b, &ctx->arena);
    for (i = 0; i < XE_ARRAY_LEN(features); i++) {
        const struct feature *f = &features[i];
        bool on = f->when_unknown, val;

        for (j = 0; m->kind == XCP_VAL_STRUCT && j < m->u.st.n; j++)
            if (strcmp(m->u.st.keys[j], f->key) == 0
                && m->u.st.vals[j].kind == XCP_VAL_STRING) {
                /* OCaml's bool_of_string: "true"/"false" only */
                if (strcmp(m->u.st.vals[j].u.s, "true") == 0)
                    val = true, on = f->positive ? val : !val;
                else if (strcmp(m->u.st.vals[j].u.s, "false") == 0)
                    val = false, on = f->positive ? val : !val;
                else
                    on = f->when_unknown;
            }
        if (i > 0)
            xe_buf_add(&b, " ");
        if (on)
            xe_buf_add(&b, f->tag);
        else
            xe_buf_printf(&b, "%*s", (int)strlen(f->tag), "");
    }
    return xe_buf_str(&b);
}

typedef struct lic_row {
    const char *col[6];
    double expiry;
} lic_row;

static int by_expiry(const void *a, const void *b)
{
    double x = ((const lic_row *)a)->expiry, y = ((const lic_row *)b)->expiry;

    return x < y ? -1 : x > y;
}

int xe_diagnostic_license_status(xe_ctx *ctx)
{
    static const char *const heading[6] = {"Hostname", "UUID", "Features",
                                           "Edition", "Expiry", "Days left"};
    xe_obj *hosts, *pools;
    lic_row *rows;
    size_t nh, np, nrows, i, j, width[6] = {0};
    double now = (double)time(NULL);
    xcp_value restr;

    if (xe_objs_all(ctx, xe_class_find("host"), &hosts, &nh) < 0
        || xe_objs_all(ctx, xe_class_find("pool"), &pools, &np) < 0)
        return -1;
    if (np == 0)
        return xe_fail(ctx, "No pool found");
    nrows = nh + 5;
    rows = xe_alloc(&ctx->arena, nrows * sizeof(*rows));
    memcpy(rows[0].col, heading, sizeof(heading));
    for (j = 0; j < 6; j++)
        rows[1].col[j] = "-";
    /* Hosts whose licence reads, nearest expiry first; XAPI's
     * license_of_host fails on a bad expiry date: those hosts after. */
    {
        size_t nv = 0, ni = 0;
        lic_row *valid = rows + 2, *invalid;

        invalid = xe_alloc(&ctx->arena, (nh + 1) * sizeof(*invalid));
        for (i = 0; i < nh; i++) {
            const xcp_value *lp = xe_rec_field(hosts[i].rec,
                                               "license_params");
            const char *uuid = xe_rec_str(hosts[i].rec, "uuid");
            const char *hn = xe_rec_str(hosts[i].rec, "hostname");
            const char *exp = NULL;
            xcp_datetime t = 0;
            double e = 0;
            lic_row *r;

            for (j = 0; lp && lp->kind == XCP_VAL_STRUCT && j < lp->u.st.n;
                 j++)
                if (strcmp(lp->u.st.keys[j], "expiry") == 0)
                    exp = lp->u.st.vals[j].u.s;
            uuid = xe_strndup(&ctx->arena, uuid ? uuid : "", 8);
            /* Date.of_iso8601 (libxcp's parser takes its forms) */
            if (exp != NULL && xcp_datetime_parse(&t, exp) < 0) {
                r = &invalid[ni++];
                r->col[0] = hn ? hn : "";
                r->col[1] = uuid;
                for (j = 2; j < 6; j++)
                    r->col[j] = "-";
                continue;
            }
            if (exp != NULL)
                e = (double)t;
            r = &valid[nv++];
            r->expiry = e;
            r->col[0] = hn ? hn : "";
            r->col[1] = uuid;
            r->col[2] = compact_features(ctx, lp);
            r->col[3] = xe_rec_str(hosts[i].rec, "edition");
            if (r->col[3] == NULL)
                r->col[3] = "";
            {
                time_t t = (time_t)e;
                struct tm tm;
                char buf[32];

                gmtime_r(&t, &tm);
                strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
                r->col[4] = xe_strdup(&ctx->arena, buf);
            }
            r->col[5] = xe_sprintf(&ctx->arena, "%.1f",
                                   (e - now) / (24. * 60. * 60.));
        }
        qsort(valid, nv, sizeof(*valid), by_expiry);
        memcpy(valid + nv, invalid, ni * sizeof(*invalid));
        nrows = 2 + nv + ni;
    }
    if (xe_get_value(ctx, "pool.get_restrictions", pools[0].ref, &restr) < 0)
        return -1;
    for (j = 0; j < 6; j++)
        rows[nrows].col[j] = "-";
    nrows++;
    for (j = 0; j < 6; j++)
        rows[nrows].col[j] = "-";
    rows[nrows].col[2] = compact_features(ctx, &restr);
    nrows++;
    xcp_value_dispose(&restr);
    for (i = 0; i < nrows; i++)
        for (j = 0; j < 6; j++)
            if (strlen(rows[i].col[j]) > width[j])
                width[j] = strlen(rows[i].col[j]);
    for (i = 0; i < nrows; i++) {
        xe_buf b;

        xe_buf_init(&b, &ctx->arena);
        for (j = 0; j < 6; j++)
            xe_buf_printf(&b, "%s%-*s", j ? " " : "", (int)width[j],
                          rows[i].col[j]);
        xe_print_msg(ctx, xe_buf_str(&b));
    }
    return 0;
}

/* ---- VIF, VM, pool ---- */

/* vif-configure-ipv4/-ipv6: mode is the enum's value in any case. */
static int vif_configure(xe_ctx *ctx, const char *en, const char *msg)
{
    const char *vif, *mode = xe_param(ctx, "mode");
    const char *addr = xe_param(ctx, "address");
    const char *gw = xe_param(ctx, "gateway");
    const char *const *vals;
    const char *val = NULL;
    xe_args a;
    xe_buf b;
    size_t n, i;

    if (xe_get_by_uuid(ctx, "VIF", xe_param(ctx, "uuid"), &vif) < 0)
        return -1;
    vals = xcp_enum_values(&n, en);
    for (i = 0; i < n && val == NULL; i++)
        if (xe_strcaseeq(vals[i], mode))
            val = vals[i];
    if (val == NULL) {
        xe_buf_init(&b, &ctx->arena);
        xe_buf_add(&b, "Expected one of ");
        for (i = 0; i < n; i++)
            xe_buf_printf(&b, "%s'%s'", i > 0 ? ", " : "", vals[i]);
        return xe_fail(ctx, "%s, got %s", xe_buf_str(&b),
                       xe_lower(&ctx->arena, mode));
    }
    if (strcmp(val, "Static") == 0 && (addr == NULL || *addr == '\0'))
        return xe_fail(ctx, "Required parameter not found: address");
    xe_args_init(&a);
    xe_args_str(&a, vif);
    xe_args_str(&a, val);
    xe_args_str(&a, addr ? addr : "");
    xe_args_str(&a, gw ? gw : "");
    return xe_call(ctx, NULL, msg, &a);
}

int xe_vif_configure_ipv4(xe_ctx *ctx)
{
    return vif_configure(ctx, "vif_ipv4_configuration_mode",
                         "VIF.configure_ipv4");
}

int xe_vif_configure_ipv6(xe_ctx *ctx)
{
    return vif_configure(ctx, "vif_ipv6_configuration_mode",
                         "VIF.configure_ipv6");
}

/* The crashdump records of a VM: libxcp's model has no crashdump class,
 * so VM.crash_dumps is always empty and so is the table. */
static int crashdump_op(xe_ctx *ctx, const xe_obj *vm, const void *data,
                        const char **out)
{
    const xcp_value *cds = xe_rec_field(vm->rec, "crash_dumps");

    (void)data;
    *out = NULL;
    if (cds != NULL && cds->kind == XCP_VAL_ARRAY && cds->u.arr.n > 0)
        return xe_fail(ctx, "crashdump records are not in libxcp's model");
    xe_print_table(ctx, NULL, 0);
    return 0;
}

int xe_vm_crashdump_list(xe_ctx *ctx)
{
    static const char *const own[] = {NULL};

    return xe_vm_do(ctx, own, crashdump_op, NULL);
}

/* vm-uuid= and restart-priority= pairs in command-line order, then
 * the call (outside libxcp's model: HA is not there). */
int xe_pool_ha_compute_max_failures(xe_ctx *ctx)
{
    xe_strv vms, pri;
    xcp_value conf, r, val = {0};
    xe_args a;
    size_t i;

    xe_strv_init(&vms, &ctx->arena);
    xe_strv_init(&pri, &ctx->arena);
    for (i = 0; i < ctx->params.n; i++) {
        if (strcmp(ctx->params.v[i].key, "vm-uuid") == 0)
            xe_strv_add(&vms, ctx->params.v[i].val);
        else if (strcmp(ctx->params.v[i].key, "restart-priority") == 0)
            xe_strv_add(&pri, ctx->params.v[i].val);
    }
    if (vms.n != pri.n)
        return xe_fail(ctx, "Call requires an equal number of vm-uuid and "
                            "restart-priority arguments");
    xcp_value_set_struct(&conf);
    for (i = 0; i < vms.n; i++) {
        const char *ref;

        if (xe_get_by_uuid(ctx, "VM", vms.v[i], &ref) < 0) {
            xcp_value_dispose(&conf);
            return -1;
        }
        if (xcp_value_set_string(&val, pri.v[i]) < 0
            || xcp_value_struct_add(&conf, ref, &val) < 0) {
            xcp_value_dispose(&val);
            xcp_value_dispose(&conf);
            return xe_fail_lib(ctx);
        }
    }
    xe_args_init(&a);
    xe_args_value(&a, &conf);
    if (xe_call(ctx, &r, "pool.ha_compute_hypothetical_max_host_failures_"
                         "to_tolerate", &a) < 0)
        return -1;
    xe_print_line(ctx, r.kind == XCP_VAL_INT
                           ? xe_sprintf(&ctx->arena, "%" PRId64, r.u.i)
                           : "");
    xcp_value_dispose(&r);
    return 0;
}

/* Deprecated: XAPI's does nothing (it only logs). */
int xe_pool_disable_ssl_legacy(xe_ctx *ctx)
{
    (void)ctx;
    return 0;
}

/* pool-sync-bundle: XAPI's /bundle handler (put_bundle_handler) fails
 * its task with NO_REPOSITORY_ENABLED before it reads the bundle when
 * the pool has no enabled update repository, which a libxcp pool never
 * has (no repository class in its model). */
int xe_pool_sync_bundle(xe_ctx *ctx)
{
    if (xe_param(ctx, "filename") == NULL)
        return xe_fail(ctx, "Required parameter not found: filename");
    return xe_fail_api(ctx, "NO_REPOSITORY_ENABLED", 0, NULL);
}
