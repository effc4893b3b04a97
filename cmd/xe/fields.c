/*
 * xe: the CLI field tables, one per class, as data. Names, order,
 * hidden/expensive flags and the default -list columns follow XAPI's
 * ocaml/xapi-cli-server/records.ml and cli_operations.ml gen_cmds, mapped
 * onto our model's field names; writability, set/map nature and
 * deprecation come from the model (xe_fields_init, at the end), except
 * where XAPI's CLI differs. Values XAPI computes with further calls have
 * a getter below; everything else is a path into the object's record (or
 * a record it refers to).
 */
#include "fields.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RO 0u
#define RW XE_F_RW
#define SRO XE_F_SET
#define SRW (XE_F_SET | XE_F_SETRW)
#define MRO XE_F_MAP
#define MRW (XE_F_MAP | XE_F_MAPRW)
#define HID XE_F_HIDDEN
#define EXP XE_F_EXPENSIVE
#define DEP XE_F_DEPRECATED
#define PLAIN XE_F_PLAIN

/*
 * Entries.  A model field states no flag the model knows (writability,
 * set or map and its add/remove, deprecation: xe_fields_init asks the
 * model), only what is the CLI's own (hidden, expensive, rendering ...):
 * M("name_label") is "name-label"; N names it otherwise ("dom-id" for
 * "domid", or a path through a ref).  Where XAPI's CLI differs from the
 * model, X/XN give every flag by hand and a comment says why; a test
 * (tests/xe/test_fields.c) fails if they only restate the model.
 */
#define M(p) {.path = (p)}
#define MF(p, fl) {.path = (p), .given = (fl)}
#define N(n, p) {.name = (n), .path = (p)}
#define NF(n, p, fl) {.name = (n), .path = (p), .given = (fl)}
/* Through a ref; m is the text when the ref is null. */
#define FM(n, p, m) {.name = (n), .path = (p), .missing = (m)}
#define FMF(n, p, fl, m)                                                      \
    {.name = (n), .path = (p), .given = (fl), .missing = (m)}
#define X(p, fl) {.path = (p), .given = XE_F_OWN | (fl)}
#define XN(n, p, fl) {.name = (n), .path = (p), .given = XE_F_OWN | (fl)}
/* Computed by a getter: flags by hand. */
#define FG(n, fl, g) {.name = (n), .given = XE_F_OWN | (fl), .get = (g)}
/* A field of XAPI's record (p) the model lacks: always the text t. */
#define FA(n, p, fl, t)                                                       \
    {.name = (n), .path = (p), .given = XE_F_OWN | (fl), .get = absent,       \
     .missing = (t)}

/* ---- helpers for the getters ---- */

static int text(xe_fval *out, const char *t)
{
    out->text = t;
    return 0;
}

static int absent(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                  xe_fval *out)
{
    (void)ctx;
    (void)o;
    return text(out, f->missing);
}

/* A float data source of a VM or host; NULL when it cannot be read. */
static const char *query_ds(xe_ctx *ctx, const char *msg, const char *self,
                            const char *ds, double div)
{
    xe_args a;
    xcp_value v;
    const char *r = NULL;

    xe_args_init(&a);
    xe_args_str(&a, self);
    xe_args_str(&a, ds);
    if (xe_call_quiet(ctx, &v, msg, &a) < 0)
        return NULL;
    if (v.kind == XCP_VAL_FLOAT)
        r = xe_sprintf(&ctx->arena, "%.3f", v.u.f / div);
    xcp_value_dispose(&v);
    return r;
}

static const char *rec_text(xe_ctx *ctx, const xe_obj *o, const char *f)
{
    const xcp_value *v;
    const char *type;

    if (xe_path_value(ctx, o->cls, o->rec, f, &v, &type) != 0)
        return NULL;
    return xe_render_scalar(ctx, type, v);
}

/* Strings of an array result (errors give an empty list). */
static void strings_of(xe_ctx *ctx, const xcp_value *v, xe_strv *out)
{
    size_t i;

    if (v->kind != XCP_VAL_ARRAY)
        return;
    for (i = 0; i < v->u.arr.n; i++)
        if (v->u.arr.items[i].kind == XCP_VAL_STRING)
            xe_strv_add(out, xe_strdup(&ctx->arena,
                                       v->u.arr.items[i].u.s));
}

static int vm_string_set(xe_ctx *ctx, const xe_obj *o, const char *msg,
                         xe_fval *out)
{
    xcp_value v;

    if (xe_try_value(ctx, msg, o->ref, &v) == 0)
        strings_of(ctx, &v, &out->keys);
    xcp_value_dispose(&v);
    return text(out, xe_strv_join(&out->keys, "; "));
}

/* ---- VM ---- */

static int vm_memory_target(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                            xe_fval *out)
{
    xe_args a;
    xcp_value v;
    const xcp_error *e;
    int rc;

    (void)f;
    xe_args_init(&a);
    xe_args_str(&a, o->ref);
    xe_args_str(&a, "memory_target");
    rc = xe_call_quiet(ctx, &v, "VM.query_data_source", &a);
    if (rc < 0) {
        e = xcp_error_last();
        return text(out, e != NULL && xe_streq(e->name, "VM_BAD_POWER_STATE")
                             ? "0" : "<unknown>");
    }
    if (v.kind == XCP_VAL_FLOAT)
        out->text = xe_sprintf(&ctx->arena, "%" PRId64, (int64_t)v.u.f);
    else
        out->text = "<unknown>";
    xcp_value_dispose(&v);
    return 0;
}

static int vm_allowed_vbds(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                           xe_fval *out)
{
    (void)f;
    return vm_string_set(ctx, o, "VM.get_allowed_VBD_devices", out);
}

static int vm_allowed_vifs(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                           xe_fval *out)
{
    (void)f;
    return vm_string_set(ctx, o, "VM.get_allowed_VIF_devices", out);
}

static int vm_possible_hosts(xe_ctx *ctx, const xe_obj *o,
                             const xe_field *f, xe_fval *out)
{
    xcp_value v;

    (void)f;
    if (xe_get_value(ctx, "VM.get_possible_hosts", o->ref, &v) < 0)
        return -1;
    xe_render(ctx, "set:ref:host", &v, 0, out);
    xcp_value_dispose(&v);
    return 0;
}

static int vm_vcpus_util(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                         xe_fval *out)
{
    const xcp_value *nv;
    const char *type, *val;
    xe_strv pairs;
    int64_t i, n = 0;

    (void)f;
    xe_strv_init(&pairs, &ctx->arena);
    if (xe_path_value(ctx, o->cls, o->rec, "metrics>VCPUs_number", &nv,
                      &type) == 0
        && nv->kind == XCP_VAL_INT)
        n = nv->u.i;
    for (i = 0; i < n; i++) {
        val = query_ds(ctx, "VM.query_data_source", o->ref,
                       xe_sprintf(&ctx->arena, "cpu%" PRId64, i), 1.0);
        if (val == NULL) {
            xe_fval_init(out, &ctx->arena);
            return text(out, "");
        }
        xe_strv_add(&out->keys, xe_sprintf(&ctx->arena, "%" PRId64, i));
        xe_strv_add(&out->vals, val);
        xe_strv_add(&pairs, xe_sprintf(&ctx->arena, "%" PRId64 ": %s", i,
                                       val));
    }
    return text(out, xe_strv_join(&pairs, "; "));
}

static int always_true(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                       xe_fval *out)
{
    (void)ctx;
    (void)o;
    (void)f;
    return text(out, "true");
}

static int vm_last_boot(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                        xe_fval *out)
{
    const char *r = xe_rec_str(o->rec, "last_booted_record");

    (void)f;
    return text(out, xe_sprintf(&ctx->arena, "'%s'", r != NULL ? r : ""));
}

static const char *const vcpu_keys[] = {"weight", "cap", "mask", NULL};

static const char *const bios_keys[] = {
    "bios-vendor",
    "bios-version",
    "system-manufacturer",
    "system-product-name",
    "system-version",
    "system-serial-number",
    "baseboard-manufacturer",
    "baseboard-product-name",
    "baseboard-version",
    "baseboard-serial-number",
    "baseboard-asset-tag",
    "baseboard-location-in-chassis",
    "enclosure-asset-tag",
    NULL,
};

static xe_field vm_fields[] = {
    M("uuid"),
    M("name_label"),
    M("name_description"),
    M("user_version"),
    M("is_a_template"),
    X("is_default_template", RW), /* RW in XAPI's CLI; no setter in the model */
    M("is_a_snapshot"),
    M("snapshot_of"),
    MF("snapshots", PLAIN),
    M("snapshot_time"),
    MF("transportable_snapshot_id", HID),
    MF("snapshot_info", PLAIN),
    M("parent"),
    MF("children", PLAIN),
    M("is_control_domain"),
    M("power_state"),
    FM("memory-actual", "metrics>memory_actual", XE_NID),
    FG("memory-target", EXP, vm_memory_target),
    M("memory_overhead"),
    MF("memory_static_max", XE_F_BYTES),
    MF("memory_dynamic_max", XE_F_BYTES),
    MF("memory_dynamic_min", XE_F_BYTES),
    MF("memory_static_min", XE_F_BYTES),
    N("suspend-VDI-uuid", "suspend_VDI"),
    N("suspend-SR-uuid", "suspend_SR"),
    {.path = "VCPUs_params", .keys = vcpu_keys},
    M("VCPUs_max"),
    M("VCPUs_at_startup"),
    M("actions_after_shutdown"),
    M("actions_after_softreboot"),
    M("actions_after_reboot"),
    M("actions_after_crash"),
    N("console-uuids", "consoles"),
    FM("hvm", "metrics>hvm", "false"),
    FMF("nomigrate", "metrics>nomigrate", HID, "false"),
    FMF("nested-virt", "metrics>nested_virt", HID, "false"),
    M("platform"),
    FM("numa-optimised", "metrics>numa_optimised", "false"),
    FM("numa-nodes", "metrics>numa_nodes", "0"),
    FM("numa-node-memory", "metrics>numa_node_memory", "[]"),
    M("allowed_operations"),
    MF("current_operations", XE_F_MAPVALUES),
    M("blocked_operations"),
    FG("allowed-VBD-devices", SRO | EXP, vm_allowed_vbds),
    FG("allowed-VIF-devices", SRO | EXP, vm_allowed_vifs),
    FG("possible-hosts", EXP, vm_possible_hosts),
    M("domain_type"),
    FM("current-domain-type", "metrics>current_domain_type", XE_NID),
    X("HVM_boot_policy", RW), /* XAPI's CLI does not mark it deprecated */
    M("HVM_boot_params"),
    M("HVM_shadow_multiplier"),
    MF("NVRAM", HID),
    M("PV_kernel"),
    M("PV_ramdisk"),
    M("PV_args"),
    M("PV_legacy_args"),
    M("PV_bootloader"),
    M("PV_bootloader_args"),
    MF("last_boot_CPU_flags", PLAIN),
    FG("last-boot-record", EXP, vm_last_boot),
    M("resident_on"),
    MF("affinity", XE_F_NULLREF),
    M("other_config"),
    N("dom-id", "domid"),
    X("recommendations", RO), /* RO in XAPI's CLI (no set) */
    MF("xenstore_data", XE_F_CLEARMAP),
    M("ha_always_run"),
    M("ha_restart_priority"),
    MF("blobs", PLAIN),
    FM("start-time", "metrics>start_time", "<unknown time>"),
    FM("install-time", "metrics>install_time", "<unknown time>"),
    FM("VCPUs-number", "metrics>VCPUs_number", XE_NID),
    FG("VCPUs-utilisation", MRO | EXP, vm_vcpus_util),
    FM("os-version", "guest_metrics>os_version", XE_NID),
    FA("netbios-name", "guest_metrics>netbios_name", MRO, XE_NID),
    FM("PV-drivers-version", "guest_metrics>PV_drivers_version", XE_NID),
    FM("PV-drivers-up-to-date", "guest_metrics>PV_drivers_up_to_date", XE_NID),
    FM("memory", "guest_metrics>memory", XE_NID),
    FM("disks", "guest_metrics>disks", XE_NID),
    M("VBDs"),
    FM("networks", "guest_metrics>networks", XE_NID),
    FA("services", "guest_metrics>services", MRO, XE_NID),
    FM("PV-drivers-detected", "guest_metrics>PV_drivers_detected", XE_NID),
    FM("other", "guest_metrics>other", XE_NID),
    FM("live", "guest_metrics>live", XE_NID),
    FM("guest-metrics-last-updated", "guest_metrics>last_updated", XE_NID),
    FM("can-use-hotplug-vbd", "guest_metrics>can_use_hotplug_vbd", XE_NID),
    FM("can-use-hotplug-vif", "guest_metrics>can_use_hotplug_vif", XE_NID),
    FG("cooperative", EXP | DEP, always_true),
    MF("tags", XE_F_COMMA),
    /* XAPI's CLI: VM.set_appliance, not in the model */
    X("appliance", RW | XE_F_NULLREF),
    X("groups", RW), /* XAPI's CLI: set only, no get_set */
    M("secureboot_certificates_state"),
    /* XAPI: VM.set_snapshot_schedule, not in the model */
    X("snapshot_schedule", RW | XE_F_NULLREF),
    M("is_vmss_snapshot"),
    M("start_delay"),
    M("shutdown_delay"),
    M("order"),
    M("version"),
    M("generation_id"),
    X("hardware_platform_version", RO), /* RO in XAPI's CLI (no set) */
    M("has_vendor_device"),
    M("requires_reboot"),
    M("reference_label"),
    {.path = "bios_strings", .given = XE_F_SETMAP, .keys = bios_keys},
    MF("pending_guidances", PLAIN),
    NF("vtpms", "VTPMs", PLAIN),
    MF("pending_guidances_recommended", PLAIN),
    MF("pending_guidances_full", PLAIN),
};

/* ---- host ---- */

static int host_free_computed(xe_ctx *ctx, const xe_obj *o,
                              const xe_field *f, xe_fval *out)
{
    xcp_value v;

    (void)f;
    if (xe_get_value(ctx, "host.compute_free_memory", o->ref, &v) < 0)
        return -1;
    out->text = xe_render_scalar(ctx, "int", &v);
    xcp_value_dispose(&v);
    return 0;
}

static xe_field host_fields[] = {
    M("uuid"),
    M("name_label"),
    M("name_description"),
    M("allowed_operations"),
    MF("current_operations", XE_F_MAPVALUES),
    M("enabled"),
    X("display", RO), /* RO in XAPI's CLI (no set) */
    M("API_version_major"),
    M("API_version_minor"),
    M("API_version_vendor"),
    M("API_version_vendor_implementation"),
    M("logging"),
    NF("suspend-image-sr-uuid", "suspend_image_sr", XE_F_NULLREF),
    NF("crash-dump-sr-uuid", "crash_dump_sr", XE_F_NULLREF),
    M("software_version"),
    M("capabilities"),
    M("other_config"),
    N("cpu_info", "cpu_info"),
    M("chipset_info"),
    X("hostname", RO), /* RO in XAPI's CLI: set_hostname_live */
    X("address", RO), /* RO in XAPI's CLI (no set) */
    X("https_only", RW), /* XAPI: host.set_https_only, not in the model */
    M("supported_bootloaders"),
    MF("blobs", PLAIN),
    M("memory_overhead"),
    FM("memory-total", "metrics>memory_total", XE_NID),
    FM("memory-free", "metrics>memory_free", XE_NID),
    FG("memory-free-computed", EXP, host_free_computed),
    FM("host-metrics-live", "metrics>live", XE_NID),
    MF("patches", XE_F_COMMA),
    MF("updates", XE_F_COMMA),
    MF("ha_statefiles", XE_F_STRREFS | PLAIN),
    MF("ha_network_peers", PLAIN),
    M("external_auth_type"),
    M("external_auth_service_name"),
    M("external_auth_configuration"),
    M("edition"),
    X("license_server", MRO), /* XAPI's CLI: get_map only */
    M("power_on_mode"),
    M("power_on_config"),
    M("local_cache_sr"),
    MF("tags", XE_F_COMMA),
    X("ssl_legacy", RW), /* XAPI's CLI: RW, not marked deprecated */
    N("guest_VCPUs_params", "guest_VCPUs_params"),
    M("virtual_hardware_platform_versions"),
    N("control-domain-uuid", "control_domain"),
    N("resident-vms", "resident_VMs"),
    M("updates_requiring_reboot"),
    M("features"),
    /* XAPI: host.set_iscsi_iqn, not in the model */
    XN("iscsi_iqn", "iscsi_iqn", RW),
    X("multipathing", RW), /* XAPI: host.set_multipathing, not in the model */
    X("uefi_certificates", RW | HID), /* XAPI: RW, not marked deprecated */
    /* XAPI: set_numa_affinity_policy, not in model */
    X("numa_affinity_policy", RW),
    MF("pending_guidances", PLAIN),
    M("tls_verification_enabled"),
    M("last_software_update"),
    M("latest_synced_updates_applied"),
    MF("pending_guidances_recommended", PLAIN),
    MF("pending_guidances_full", PLAIN),
    M("last_update_hash"),
    M("ssh_enabled"),
    /* XAPI: host.set_ssh_enabled_timeout, not in model */
    X("ssh_enabled_timeout", RW),
    M("ssh_expiry"),
    /* XAPI: host.set_console_idle_timeout, not in model */
    X("console_idle_timeout", RW),
    X("ssh_auto_mode", RW), /* XAPI: host.set_ssh_auto_mode, not in the model */
    X("max_cstate", RW), /* XAPI: host.set_max_cstate, not in the model */
    M("secure_boot"),
    X("ntp_mode", RW), /* XAPI: host.set_ntp_mode, not in the model */
    /* XAPI: set_ntp_custom_servers; no add/remove */
    X("ntp_custom_servers", SRO | RW | XE_F_COMMA),
    X("timezone", RW), /* XAPI: host.set_timezone, not in the model */
};

/* ---- host_cpu ---- */

static int host_cpu_util(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                         xe_fval *out)
{
    const char *host = xe_rec_str(o->rec, "host");
    const char *num = rec_text(ctx, o, "number");
    const char *v = NULL;

    (void)f;
    if (host != NULL && num != NULL)
        v = query_ds(ctx, "host.query_data_source", host,
                     xe_sprintf(&ctx->arena, "cpu%s", num), 1.0);
    return text(out, v != NULL ? v : "<unknown>");
}

static xe_field host_cpu_fields[] = {
    M("uuid"),
    N("host-uuid", "host"),
    M("number"),
    M("vendor"),
    M("speed"),
    M("model"),
    M("family"),
    M("modelname"),
    M("stepping"),
    M("flags"),
    FG("utilisation", EXP, host_cpu_util),
};

/* ---- pool ---- */

static int pool_sr_types(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                         xe_fval *out)
{
    xe_args a;
    xcp_value v;

    (void)o;
    (void)f;
    xe_args_init(&a);
    if (xe_call(ctx, &v, "SR.get_supported_types", &a) < 0)
        return -1;
    strings_of(ctx, &v, &out->keys);
    xcp_value_dispose(&v);
    return text(out, xe_strv_join(&out->keys, "; "));
}

static int pool_license_state(xe_ctx *ctx, const xe_obj *o,
                              const xe_field *f, xe_fval *out)
{
    xcp_value v;

    (void)f;
    if (xe_get_value(ctx, "pool.get_license_state", o->ref, &v) < 0)
        return -1;
    xe_render(ctx, "map:string:string", &v, 0, out);
    xcp_value_dispose(&v);
    return 0;
}

static int pool_vswitch(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                        xe_fval *out)
{
    const char *r = xe_rec_str(o->rec, "vswitch_controller");

    (void)ctx;
    (void)f;
    return text(out, r == NULL || *r == '\0' ? "<not set>" : r);
}

/* The same host field on every host, or "<inconsistent>". */
static int hosts_consistent(xe_ctx *ctx, const char *field, xe_fval *out,
                            bool all_and)
{
    xe_strv refs;
    const char *v = NULL, *cur, *type;
    const xcp_value *val;
    int cls = xcp_class_by_name("host");
    size_t i;

    xe_strv_init(&refs, &ctx->arena);
    if (xe_all_records(ctx, cls, &refs) < 0)
        return -1;
    for (i = 0; i < refs.n; i++) {
        if (xe_path_value(ctx, cls, xe_record(ctx, cls, refs.v[i]), field,
                          &val, &type) != 0)
            return text(out, "<inconsistent>");
        cur = xe_render_scalar(ctx, type, val);
        if (all_and)
            v = (v == NULL || strcmp(v, "true") == 0) ? cur : v;
        else if (v != NULL && strcmp(v, cur) != 0)
            return text(out, "<inconsistent>");
        else
            v = cur;
    }
    if (all_and)
        return text(out, v == NULL ? "true" : v);
    return text(out, v == NULL ? "<inconsistent>" : v);
}

static int pool_https_only(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                           xe_fval *out)
{
    (void)o;
    (void)f;
    return hosts_consistent(ctx, "https_only", out, true);
}

static int pool_host_field(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                           xe_fval *out)
{
    (void)o;
    return hosts_consistent(ctx, f->path, out, false);
}

/* Pool fields showing a host field (.path) when all hosts agree. */
#define FH(n, fl, hf, st, m)                                                  \
    {.name = (n), .path = (hf), .given = XE_F_OWN | (fl),                     \
     .get = pool_host_field, .vtype = (st), .msg = (m)}

static xe_field pool_fields[] = {
    M("uuid"),
    M("name_label"),
    M("name_description"),
    M("master"),
    MF("default_SR", XE_F_NULLREF),
    MF("crash_dump_SR", XE_F_NULLREF),
    MF("suspend_image_SR", XE_F_NULLREF),
    FG("supported-sr-types", EXP, pool_sr_types),
    M("other_config"),
    M("allowed_operations"),
    MF("current_operations", XE_F_MAPVALUES),
    M("ha_enabled"),
    MF("ha_configuration", PLAIN),
    MF("ha_statefiles", XE_F_STRREFS | PLAIN),
    M("ha_host_failures_to_tolerate"),
    M("ha_plan_exists_for"),
    M("ha_allow_overcommit"),
    M("ha_overcommitted"),
    M("ha_reboot_vm_on_internal_shutdown"),
    MF("blobs", PLAIN),
    M("wlb_url"),
    M("wlb_username"),
    M("wlb_enabled"),
    X("wlb_verify_cert", RW), /* XAPI's CLI: RW, not marked deprecated */
    /* XAPI: pool.set_igmp_snooping_enabled, not in model */
    X("igmp_snooping_enabled", RW),
    M("gui_config"),
    M("health_check_config"),
    FG("vswitch-controller", HID, pool_vswitch),
    MF("restrictions", PLAIN),
    MF("tags", XE_F_COMMA),
    FG("license-state", RO, pool_license_state),
    M("ha_cluster_stack"),
    /* XAPI: add_to/remove_from, not in the model */
    X("guest_agent_config", MRW),
    N("cpu_info", "cpu_info"),
    M("policy_no_vendor_device"),
    M("live_patching_disabled"),
    /* XAPI: pool.set_uefi_certificates, not in model */
    X("uefi_certificates", RW | HID),
    /* XAPI: set_custom_uefi_certificates, not in model */
    X("custom_uefi_certificates", RW | HID),
    M("tls_verification_enabled"),
    M("client_certificate_auth_enabled"),
    M("client_certificate_auth_name"),
    /* XAPI's CLI: set, and add/remove_repository; the model: RO */
    {.path = "repositories", .given = XE_F_OWN | SRW | RW,
     .addmsg = "add_repository", .rmmsg = "remove_repository"},
    M("repository_proxy_url"),
    M("repository_proxy_username"),
    {.name = "https-only", .given = XE_F_OWN | RW, .get = pool_https_only,
     .vtype = "bool", .msg = "set_https_only"},
    M("migration_compression"),
    M("coordinator_bias"),
    M("telemetry_frequency"),
    M("telemetry_next_collection"),
    M("last_update_sync"),
    M("update_sync_frequency"),
    M("update_sync_day"),
    M("update_sync_enabled"),
    M("auto_update_vm_secureboot_certificates"),
    FA("recommendations", "recommendations", MRO, ""),
    /* XAPI: pool.set_ext_auth_cache_enabled, not in model */
    X("ext_auth_cache_enabled", RW),
    /* XAPI: pool.set_ext_auth_cache_size, not in model */
    X("ext_auth_cache_size", RW),
    /* XAPI: pool.set_ext_auth_cache_expiry, not in model */
    X("ext_auth_cache_expiry", RW),
    FA("license-server", "license_server", MRW, ""),
    FH("ssh-enabled", RO, "ssh_enabled", NULL, NULL),
    FH("ssh-enabled-timeout", RW, "ssh_enabled_timeout", "int",
       "set_ssh_enabled_timeout"),
    FH("ssh-expiry", RO, "ssh_expiry", NULL, NULL),
    FH("console-idle-timeout", RW, "console_idle_timeout", "int",
       "set_console_idle_timeout"),
    FH("ssh-auto-mode", RW, "ssh_auto_mode", "bool", "set_ssh_auto_mode"),
    M("limit_console_sessions"),
    M("vm_console_idle_timeout"),
};

/* ---- SR and PBD ---- */

static int sr_host(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                   xe_fval *out)
{
    const xcp_value *pbds = xe_rec_field(o->rec, "PBDs");
    const xcp_value *pbd;
    const char *host = NULL, *name;

    (void)f;
    if (pbds != NULL && pbds->kind == XCP_VAL_ARRAY && pbds->u.arr.n > 1)
        return text(out, "<shared>");
    if (pbds != NULL && pbds->kind == XCP_VAL_ARRAY && pbds->u.arr.n == 1
        && pbds->u.arr.items[0].kind == XCP_VAL_STRING) {
        pbd = xe_record(ctx, xcp_class_by_name("PBD"),
                        pbds->u.arr.items[0].u.s);
        host = xe_rec_str(pbd, "host");
    }
    name = host != NULL ? xe_ref_name(ctx, xcp_class_by_name("host"), host)
                        : NULL;
    return text(out, name != NULL ? name : XE_NID);
}

static xe_field sr_fields[] = {
    M("uuid"),
    M("name_label"),
    M("name_description"),
    FG("host", RO, sr_host),
    M("allowed_operations"),
    MF("current_operations", XE_F_MAPVALUES),
    M("VDIs"),
    M("PBDs"),
    M("virtual_allocation"),
    M("physical_utilisation"),
    /* RO in XAPI's CLI: SR.set_physical_size is internal */
    X("physical_size", RO),
    M("type"),
    M("content_type"),
    M("shared"),
    M("introduced_by"),
    M("is_tools_sr"),
    M("other_config"),
    X("sm_config", MRO), /* XAPI's CLI: get_map only */
    MF("blobs", PLAIN),
    M("local_cache_enabled"),
    MF("tags", XE_F_COMMA),
    M("clustered"),
};

static xe_field pbd_fields[] = {
    M("uuid"),
    X("host", DEP), /* XAPI's CLI: the old name, deprecated */
    N("host-uuid", "host"),
    N("host-name-label", "host>name_label"),
    N("sr-uuid", "SR"),
    N("sr-name-label", "SR>name_label"),
    M("device_config"),
    M("currently_attached"),
    M("other_config"),
};

/* ---- VDI and VBD ---- */

static int vdi_metadata_of_pool(xe_ctx *ctx, const xe_obj *o,
                                const xe_field *f, xe_fval *out)
{
    xe_strv pools;
    const char *mine = xe_rec_str(o->rec, "metadata_of_pool");
    int cls = xcp_class_by_name("pool");
    const char *uuid;

    (void)f;
    xe_strv_init(&pools, &ctx->arena);
    if (xe_all_records(ctx, cls, &pools) < 0)
        return -1;
    if (pools.n > 0 && xe_streq(mine, pools.v[0])) {
        uuid = xe_ref_uuid(ctx, cls, pools.v[0]);
        return text(out, uuid != NULL ? uuid : XE_NID);
    }
    return text(out, XE_NID);
}

static xe_field vdi_fields[] = {
    M("uuid"),
    M("name_label"),
    M("name_description"),
    M("is_a_snapshot"),
    M("snapshot_of"),
    MF("snapshots", PLAIN),
    M("snapshot_time"),
    M("allowed_operations"),
    MF("current_operations", XE_F_MAPVALUES),
    N("sr-uuid", "SR"),
    N("sr-name-label", "SR>name_label"),
    N("vbd-uuids", "VBDs"),
    N("crashdump-uuids", "crash_dumps"),
    M("virtual_size"),
    M("physical_utilisation"),
    M("location"),
    M("type"),
    X("sharable", RO), /* RO in XAPI's CLI: VDI.set_sharable is internal */
    X("read_only", RO), /* RO in XAPI's CLI: VDI.set_read_only is internal */
    M("storage_lock"),
    M("managed"),
    M("parent"),
    M("missing"),
    M("is_tools_iso"),
    M("other_config"),
    /* XAPI's CLI: get_map only, cleared with set */
    X("xenstore_data", MRO | XE_F_CLEARMAP),
    X("sm_config", MRO), /* XAPI's CLI: get_map only */
    M("on_boot"),
    M("allow_caching"),
    M("metadata_latest"),
    FG("metadata-of-pool", RO, vdi_metadata_of_pool),
    MF("tags", XE_F_COMMA),
    M("cbt_enabled"),
};

static int vbd_vdi_name(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                        xe_fval *out)
{
    const char *name = NULL, *vdi = xe_rec_str(o->rec, "VDI");

    (void)f;
    if (xe_rec_bool(o->rec, "empty"))
        return text(out, "<EMPTY>");
    if (vdi != NULL)
        name = xe_ref_name(ctx, xcp_class_by_name("VDI"), vdi);
    return text(out, name != NULL ? name : XE_NID);
}

/* Printexc.to_string of a Server_error, as XAPI shows it */
static const char *server_error_text(xe_ctx *ctx)
{
    const xcp_error *e = xcp_error_last();
    xe_buf b;
    size_t i;

    xe_buf_init(&b, &ctx->arena);
    xe_buf_printf(&b, "Server_error(%s, [ ", e != NULL ? e->name : "");
    for (i = 0; e != NULL && i < e->nparams; i++)
        xe_buf_printf(&b, "%s%s", i > 0 ? "; " : "", e->params[i]);
    xe_buf_add(&b, " ])");
    return xe_buf_str(&b);
}

static int vbd_attachable(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                          xe_fval *out)
{

    (void)f;
    if (xe_try_value(ctx, "VBD.assert_attachable", o->ref, NULL) == 0)
        return text(out, "true");
    return text(out, xe_sprintf(&ctx->arena, "false (error: %s)",
                                server_error_text(ctx)));
}

/* io_read_kbs / io_write_kbs of a VBD, VIF or PIF. */
static int device_io(xe_ctx *ctx, const xe_obj *o, const char *owner_field,
                     const char *msg, const char *fmt, xe_fval *out)
{
    const char *owner = xe_rec_str(o->rec, owner_field);
    const char *dev = xe_rec_str(o->rec, "device");
    const char *v = NULL;

    if (owner != NULL && dev != NULL)
        v = query_ds(ctx, msg, owner, xe_sprintf(&ctx->arena, fmt, dev),
                     1024.0);
    return text(out, v != NULL ? v : "<unknown>");
}

static int vbd_io_read(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                       xe_fval *out)
{
    (void)f;
    return device_io(ctx, o, "VM", "VM.query_data_source", "vbd_%s_read",
                     out);
}

static int vbd_io_write(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                        xe_fval *out)
{
    (void)f;
    return device_io(ctx, o, "VM", "VM.query_data_source", "vbd_%s_write",
                     out);
}

static xe_field vbd_fields[] = {
    M("uuid"),
    N("vm-uuid", "VM"),
    N("vm-name-label", "VM>name_label"),
    N("vdi-uuid", "VDI"),
    FG("vdi-name-label", RO, vbd_vdi_name),
    M("allowed_operations"),
    MF("current_operations", XE_F_MAPVALUES),
    M("empty"),
    M("device"),
    M("userdevice"),
    M("bootable"),
    M("mode"),
    M("type"),
    M("unpluggable"),
    M("currently_attached"),
    FG("attachable", EXP, vbd_attachable),
    M("storage_lock"),
    M("status_code"),
    M("status_detail"),
    N("qos_algorithm_type", "qos_algorithm_type"),
    N("qos_algorithm_params", "qos_algorithm_params"),
    N("qos_supported_algorithms", "qos_supported_algorithms"),
    M("other_config"),
    FG("io_read_kbs", EXP, vbd_io_read),
    FG("io_write_kbs", EXP, vbd_io_write),
};

/* ---- VIF and network ---- */

static int vif_io_read(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                       xe_fval *out)
{
    (void)f;
    return device_io(ctx, o, "VM", "VM.query_data_source", "vif_%s_rx", out);
}

static int vif_io_write(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                        xe_fval *out)
{
    (void)f;
    return device_io(ctx, o, "VM", "VM.query_data_source", "vif_%s_tx", out);
}

static xe_field vif_fields[] = {
    M("uuid"),
    N("vm-uuid", "VM"),
    N("vm-name-label", "VM>name_label"),
    M("allowed_operations"),
    MF("current_operations", XE_F_MAPVALUES),
    M("device"),
    MF("MAC", XE_F_CI),
    M("MAC_autogenerated"),
    M("MTU"),
    M("currently_attached"),
    N("qos_algorithm_type", "qos_algorithm_type"),
    N("qos_algorithm_params", "qos_algorithm_params"),
    N("qos_supported_algorithms", "qos_supported_algorithms"),
    M("other_config"),
    N("network-uuid", "network"),
    N("network-name-label", "network>name_label"),
    FG("io_read_kbs", EXP, vif_io_read),
    FG("io_write_kbs", EXP, vif_io_write),
    M("locking_mode"),
    X("ipv4_allowed", SRW | RW), /* XAPI's CLI: set too */
    X("ipv6_allowed", SRW | RW), /* XAPI's CLI: set too */
    M("ipv4_configuration_mode"),
    MF("ipv4_addresses", PLAIN),
    M("ipv4_gateway"),
    M("ipv6_configuration_mode"),
    MF("ipv6_addresses", PLAIN),
    M("ipv6_gateway"),
    X("trunks", SRW | RW), /* XAPI's CLI: set, add, remove; the model: RO */
};

static xe_field network_fields[] = {
    M("uuid"),
    M("name_label"),
    M("name_description"),
    N("VIF-uuids", "VIFs"),
    N("PIF-uuids", "PIFs"),
    M("MTU"),
    M("bridge"),
    M("managed"),
    M("other_config"),
    MF("blobs", PLAIN),
    MF("tags", XE_F_COMMA),
    M("default_locking_mode"),
    MF("purpose", XE_F_COMMA),
};

/* ---- PIF, Bond, VLAN ---- */

static int pif_io_read(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                       xe_fval *out)
{
    (void)f;
    return device_io(ctx, o, "host", "host.query_data_source", "pif_%s_rx",
                     out);
}

static int pif_io_write(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                        xe_fval *out)
{
    (void)f;
    return device_io(ctx, o, "host", "host.query_data_source", "pif_%s_tx",
                     out);
}

static int pif_speed(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                     xe_fval *out)
{
    const char *s = rec_text(ctx, o, "metrics>speed");

    (void)f;
    return text(out, s != NULL ? xe_sprintf(&ctx->arena, "%s Mbit/s", s)
                               : XE_NID);
}

static int pif_duplex(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                      xe_fval *out)
{
    const char *d = rec_text(ctx, o, "metrics>duplex");
    const char *c = rec_text(ctx, o, "metrics>carrier");

    (void)f;
    if (d == NULL)
        return text(out, XE_NID);
    if (strcmp(d, "true") == 0)
        return text(out, "full");
    return text(out, xe_streq(c, "true") ? "half" : "unknown");
}

static xe_field pif_fields[] = {
    M("uuid"),
    M("device"),
    MF("MAC", XE_F_CI),
    M("physical"),
    M("managed"),
    M("currently_attached"),
    M("MTU"),
    M("VLAN"),
    N("vlan-master-of", "VLAN_master_of"),
    NF("vlan-slave-of", "VLAN_slave_of", PLAIN),
    MF("bond_master_of", PLAIN),
    M("bond_slave_of"),
    MF("sriov_physical_PIF_of", PLAIN),
    MF("sriov_logical_PIF_of", PLAIN),
    MF("tunnel_access_PIF_of", PLAIN),
    MF("tunnel_transport_PIF_of", PLAIN),
    M("management"),
    N("network-uuid", "network"),
    N("network-name-label", "network>name_label"),
    N("host-uuid", "host"),
    N("host-name-label", "host>name_label"),
    N("IP-configuration-mode", "ip_configuration_mode"),
    M("IP"),
    M("netmask"),
    M("gateway"),
    N("IPv6-configuration-mode", "ipv6_configuration_mode"),
    MF("IPv6", PLAIN),
    N("IPv6-gateway", "ipv6_gateway"),
    /* RO in XAPI's CLI: set_primary_address_type */
    X("primary_address_type", RO),
    M("DNS"),
    {.path = "properties", .given = XE_F_SETINMAP, .msg = "set_property"},
    M("capabilities"),
    FG("io_read_kbs", EXP, pif_io_read),
    FG("io_write_kbs", EXP, pif_io_write),
    FM("carrier", "metrics>carrier", XE_NID),
    FM("vendor-id", "metrics>vendor_id", XE_NID),
    FM("vendor-name", "metrics>vendor_name", XE_NID),
    FM("device-id", "metrics>device_id", XE_NID),
    FM("device-name", "metrics>device_name", XE_NID),
    FG("speed", RO, pif_speed),
    FG("duplex", RO, pif_duplex),
    M("disallow_unplug"),
    FM("pci-bus-path", "metrics>pci_bus_path", XE_NID),
    M("other_config"),
    M("igmp_snooping_status"),
};

static xe_field bond_fields[] = {
    M("uuid"),
    M("master"),
    MF("slaves", PLAIN),
    X("mode", RO), /* RO in XAPI's CLI: Bond.set_mode is a message */
    {.path = "properties", .given = XE_F_SETINMAP, .msg = "set_property"},
    M("primary_slave"),
    M("links_up"),
    M("auto_update_mac"),
};

static xe_field vlan_fields[] = {
    M("uuid"),
    M("tagged_PIF"),
    M("untagged_PIF"),
    M("tag"),
};

/* ---- task, console, message, secret ---- */

static xe_field task_fields[] = {
    M("uuid"),
    M("name_label"),
    M("name_description"),
    N("subtask_of", "subtask_of"),
    MF("subtasks", PLAIN),
    /* RO in XAPI's CLI: the task setters below are internal */
    X("resident_on", RO),
    X("status", RO),   /* internal setter */
    X("progress", RO), /* internal setter */
    M("type"),
    X("result", RO),   /* internal setter */
    M("created"),
    M("finished"),
    NF("error_info", "error_info", PLAIN),
    NF("allowed_operations", "allowed_operations", PLAIN),
    NF("current_operations", "current_operations", XE_F_MAPVALUES | PLAIN),
    M("other_config"),
};

static xe_field console_fields[] = {
    M("uuid"),
    N("vm-uuid", "VM"),
    N("vm-name-label", "VM>name_label"),
    M("protocol"),
    M("location"),
    M("other_config"),
};

static xe_field message_fields[] = {
    M("uuid"),
    M("name"),
    M("priority"),
    N("class", "cls"),
    M("obj_uuid"),
    M("timestamp"),
    M("body"),
};

static xe_field secret_fields[] = {
    M("uuid"),
    M("value"),
};

/* XAPI's records.ml has no blob record (its gen_cmds line is commented
 * out, with the columns uuid and mime-type): the model's fields, all RO,
 * as XAPI's list has no blob-param-set. */
static xe_field blob_fields[] = {
    M("uuid"),
    X("name_label", RO),
    X("name_description", RO),
    M("size"),
    X("public", RO),
    M("mime_type"),
    M("last_updated"),
};

/* pool_update_record: no other_config, every field RO. */
static xe_field update_fields[] = {
    M("uuid"),
    M("name_label"),
    M("name_description"),
    M("version"),
    M("installation_size"),
    M("hosts"),
    M("after_apply_guidance"),
    M("enforce_homogeneity"),
};

/* ---- classes ---- */

static const char *const vm_defaults[] = {"name-label", "uuid",
                                          "power-state", NULL};
static const char *const template_defaults[] = {
    "name-label", "name-description", "uuid", NULL};
/* XAPI asks for "snapshot_of"/"snapshot_time", which match no field. */
static const char *const snapshot_defaults[] = {
    "name-label",    "name-description", "uuid",
    "snapshot_of",   "snapshot_time",    "is-vmss-snapshot",
    NULL};
static const char *const uuid_name_desc[] = {"uuid", "name-label",
                                             "name-description", NULL};
static const char *const host_cpu_defaults[] = {
    "uuid", "number", "vendor", "speed", "utilisation", NULL};
static const char *const pool_defaults[] = {
    "uuid", "name-label", "name-description", "master", "default-SR", NULL};
static const char *const sr_defaults[] = {
    "uuid", "name-label", "name-description", "host", "type",
    "content-type", NULL};
static const char *const pbd_defaults[] = {
    "uuid", "host-uuid", "sr-uuid", "device-config", "currently-attached",
    NULL};
static const char *const vdi_defaults[] = {
    "uuid",      "name-label", "name-description", "virtual-size",
    "read-only", "sharable",   "sr-uuid",          NULL};
static const char *const vbd_defaults[] = {
    "uuid", "vm-uuid", "vm-name-label", "vdi-uuid", "device", "empty", NULL};
static const char *const vif_defaults[] = {"uuid", "device", "vm-uuid",
                                           "network-uuid", NULL};
static const char *const network_defaults[] = {
    "uuid", "name-label", "name-description", "bridge", NULL};
static const char *const pif_defaults[] = {
    "uuid",         "device",             "VLAN",      "MAC",
    "network-uuid", "currently-attached", "host-uuid", NULL};
static const char *const bond_defaults[] = {"uuid", "master", "slaves", NULL};
static const char *const vlan_defaults[] = {"uuid", "tagged-PIF",
                                            "untagged-PIF", "tag", NULL};
static const char *const console_defaults[] = {
    "uuid", "vm-uuid", "vm-name-label", "protocol", "location", NULL};
static const char *const task_defaults[] = {
    "uuid", "name-label", "name-description", "status", "progress", NULL};
static const char *const no_defaults[] = {NULL};
static const char *const blob_defaults[] = {"uuid", "mime-type", NULL};
static const char *const update_defaults[] = {
    "uuid", "name-label", "name-description", "version", "installation-size",
    "hosts", "after-apply-guidance", NULL};

static const char *const vm_filters[] = {"is-a-template", "false", NULL};
static const char *const template_filters[] = {
    "is-a-template", "true", "is-a-snapshot", "false", NULL};
static const char *const snapshot_filters[] = {"is-a-snapshot", "true",
                                               NULL};
static const char *const no_filters[] = {NULL};

#define CLASS(n, api, fields, defs, filt, std)                                \
    {n, api, n "s", fields, XE_ARRAY_LEN(fields), defs, filt, std}

/* In XAPI's gen_cmds order. */
const xe_class xe_classes[] = {
    CLASS("pool", "pool", pool_fields, pool_defaults, no_filters, false),
    CLASS("pif", "PIF", pif_fields, pif_defaults, no_filters, false),
    CLASS("bond", "Bond", bond_fields, bond_defaults, no_filters, false),
    CLASS("vlan", "VLAN", vlan_fields, vlan_defaults, no_filters, false),
    CLASS("vif", "VIF", vif_fields, vif_defaults, no_filters, false),
    CLASS("network", "network", network_fields, network_defaults,
          no_filters, true),
    CLASS("console", "console", console_fields, console_defaults,
          no_filters, false),
    CLASS("vm", "VM", vm_fields, vm_defaults, vm_filters, true),
    CLASS("template", "VM", vm_fields, template_defaults, template_filters,
          false),
    CLASS("snapshot", "VM", vm_fields, snapshot_defaults, snapshot_filters,
          false),
    CLASS("host", "host", host_fields, uuid_name_desc, no_filters, false),
    CLASS("host-cpu", "host_cpu", host_cpu_fields, host_cpu_defaults,
          no_filters, false),
    CLASS("vdi", "VDI", vdi_fields, vdi_defaults, no_filters, false),
    CLASS("vbd", "VBD", vbd_fields, vbd_defaults, no_filters, false),
    CLASS("sr", "SR", sr_fields, sr_defaults, no_filters, true),
    CLASS("pbd", "PBD", pbd_fields, pbd_defaults, no_filters, false),
    CLASS("task", "task", task_fields, task_defaults, no_filters, false),
    CLASS("message", "message", message_fields, no_defaults, no_filters,
          false),
    CLASS("secret", "secret", secret_fields, no_defaults, no_filters,
          false),
    CLASS("update", "pool_update", update_fields, update_defaults,
          no_filters, false),
    CLASS("blob", "blob", blob_fields, blob_defaults, no_filters, false),
};

const size_t xe_nclasses = XE_ARRAY_LEN(xe_classes);

const xe_class *xe_class_find(const char *name)
{
    size_t i;

    for (i = 0; i < xe_nclasses; i++)
        if (strcmp(xe_classes[i].name, name) == 0)
            return &xe_classes[i];
    return NULL;
}

/* ---- completing the tables from the model ---- */

/* Whether the model has the message <class of cls>.<verb><field>. Built
 * with memcpy, not snprintf: xe asks this for every field of every class
 * at each start-up (xe_fields_init), where snprintf was a sixth of all the
 * instructions an `xe vm-start` ran. */
static bool has_message(int cls, const char *verb, const char *field)
{
    const char *parts[] = {xcp_class_name(cls), ".", verb, field};
    char wire[160];
    size_t i, n = 0, len;

    for (i = 0; i < XE_ARRAY_LEN(parts); i++) {
        len = strlen(parts[i]);
        if (n + len >= sizeof(wire))
            return false; /* longer than any message name */
        memcpy(wire + n, parts[i], len);
        n += len;
    }
    wire[n] = '\0';
    return xcp_model_message_by_name(wire) != NULL;
}

int xe_field_model_flags(int cls, const char *path, unsigned given)
{
    const xcp_field_info *fi = NULL;
    const char *p = path, *gt;
    char name[128];
    bool own = strchr(path, '>') == NULL;
    unsigned fl = 0;
    size_t len;
    int idx;

    for (;;) {
        gt = strchr(p, '>');
        len = gt != NULL ? (size_t)(gt - p) : strlen(p);
        if (cls < 0 || len >= sizeof(name))
            return -1;
        memcpy(name, p, len);
        name[len] = '\0';
        idx = xcp_class_field_index(cls, name);
        if (idx < 0 || (fi = xcp_class_field(cls, (size_t)idx)) == NULL)
            return -1;
        if (gt == NULL)
            break;
        if (strncmp(fi->type, "ref:", 4) != 0)
            return -1;
        cls = xcp_class_by_name(fi->type + 4);
        p = gt + 1;
    }
    if (strncmp(fi->type, "set:", 4) == 0) {
        fl = XE_F_SET;
        if (own && has_message(cls, "add_", name)
            && has_message(cls, "remove_", name))
            fl |= XE_F_SETRW;
    } else if (strncmp(fi->type, "map:", 4) == 0) {
        if (given & XE_F_MAPVALUES)
            fl = XE_F_SET;
        else if (own && has_message(cls, "add_to_", name)
                 && has_message(cls, "remove_from_", name))
            fl = XE_F_MAP | XE_F_MAPRW;
        else
            fl = XE_F_MAP;
    } else if (own && has_message(cls, "set_", name)) {
        fl = XE_F_RW;
    }
    if ((given & XE_F_PLAIN) && (fl & (XE_F_SET | XE_F_MAP)))
        fl = 0;
    if (fi->flags & XCP_FIELD_DEPRECATED)
        fl |= XE_F_DEPRECATED;
    return (int)fl;
}

/* "name_label" -> "name-label" */
static const char *cli_name(const char *path)
{
    char *n = strdup(path), *c;

    for (c = n; c != NULL && *c != '\0'; c++)
        if (*c == '_')
            *c = '-';
    return n;
}

int xe_fields_init(void)
{
    size_t i, j;
    xe_field *f;
    int cls, mf;

    for (i = 0; i < xe_nclasses; i++) {
        cls = xcp_class_by_name(xe_classes[i].api);
        for (j = 0; j < xe_classes[i].nfields; j++) {
            f = &xe_classes[i].fields[j];
            if (f->name == NULL && (f->name = cli_name(f->path)) == NULL)
                return -1;
            f->flags = f->given;
            if (!(f->given & XE_F_OWN)
                && (mf = xe_field_model_flags(cls, f->path, f->given)) > 0)
                f->flags |= (unsigned)mf;
        }
    }
    return 0;
}
