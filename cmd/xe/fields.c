/*
 * xe: the CLI field tables, one per class, as data. Names, order,
 * writability, set/map nature, hidden/expensive/deprecated flags and the
 * default -list columns follow XAPI's ocaml/xapi-cli-server/records.ml and
 * cli_operations.ml gen_cmds, mapped onto our model's field names. Values
 * XAPI computes with further calls have a getter below; everything else
 * is a path into the object's record (or a record it refers to).
 */
#include "fields.h"

#include <inttypes.h>
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

#define F(n, p, fl) {.name = (n), .path = (p), .flags = (fl)}
#define FM(n, p, fl, m)                                                       \
    {.name = (n), .path = (p), .flags = (fl), .missing = (m)}
#define FG(n, fl, g) {.name = (n), .flags = (fl), .get = (g)}

/* ---- helpers for the getters ---- */

static int text(xe_fval *out, const char *t)
{
    out->text = t;
    return 0;
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

static const xe_field vm_fields[] = {
    F("uuid", "uuid", RO),
    F("name-label", "name_label", RW),
    F("name-description", "name_description", RW),
    F("user-version", "user_version", RW),
    F("is-a-template", "is_a_template", RW),
    F("is-default-template", "is_default_template", RW),
    F("is-a-snapshot", "is_a_snapshot", RO),
    F("snapshot-of", "snapshot_of", RO),
    F("snapshots", "snapshots", RO),
    F("snapshot-time", "snapshot_time", RO),
    F("transportable-snapshot-id", "transportable_snapshot_id", HID),
    F("snapshot-info", "snapshot_info", RO),
    F("parent", "parent", RO),
    F("children", "children", RO),
    F("is-control-domain", "is_control_domain", RO),
    F("power-state", "power_state", RO),
    FM("memory-actual", "metrics>memory_actual", RO, XE_NID),
    FG("memory-target", EXP, vm_memory_target),
    F("memory-overhead", "memory_overhead", RO),
    F("memory-static-max", "memory_static_max", RW | XE_F_BYTES),
    F("memory-dynamic-max", "memory_dynamic_max", RW | XE_F_BYTES),
    F("memory-dynamic-min", "memory_dynamic_min", RW | XE_F_BYTES),
    F("memory-static-min", "memory_static_min", RW | XE_F_BYTES),
    F("suspend-VDI-uuid", "suspend_VDI", RW),
    F("suspend-SR-uuid", "suspend_SR", RW),
    {.name = "VCPUs-params", .path = "VCPUs_params", .flags = MRW,
     .keys = vcpu_keys},
    F("VCPUs-max", "VCPUs_max", RW),
    F("VCPUs-at-startup", "VCPUs_at_startup", RW),
    F("actions-after-shutdown", "actions_after_shutdown", RW),
    F("actions-after-softreboot", "actions_after_softreboot", RW),
    F("actions-after-reboot", "actions_after_reboot", RW),
    F("actions-after-crash", "actions_after_crash", RW),
    F("console-uuids", "consoles", SRO),
    FM("hvm", "metrics>hvm", RO, "false"),
    FM("nomigrate", "metrics>nomigrate", HID, "false"),
    FM("nested-virt", "metrics>nested_virt", HID, "false"),
    F("platform", "platform", MRW),
    FM("numa-optimised", "metrics>numa_optimised", RO, "false"),
    FM("numa-nodes", "metrics>numa_nodes", RO, "0"),
    FM("numa-node-memory", "metrics>numa_node_memory", MRO, "[]"),
    F("allowed-operations", "allowed_operations", SRO),
    F("current-operations", "current_operations", SRO | XE_F_MAPVALUES),
    F("blocked-operations", "blocked_operations", MRW),
    FG("allowed-VBD-devices", SRO | EXP, vm_allowed_vbds),
    FG("allowed-VIF-devices", SRO | EXP, vm_allowed_vifs),
    FG("possible-hosts", EXP, vm_possible_hosts),
    F("domain-type", "domain_type", RW),
    FM("current-domain-type", "metrics>current_domain_type", RO, XE_NID),
    F("HVM-boot-policy", "HVM_boot_policy", RW),
    F("HVM-boot-params", "HVM_boot_params", MRW),
    F("HVM-shadow-multiplier", "HVM_shadow_multiplier", RW),
    F("NVRAM", "NVRAM", MRW | HID),
    F("PV-kernel", "PV_kernel", RW),
    F("PV-ramdisk", "PV_ramdisk", RW),
    F("PV-args", "PV_args", RW),
    F("PV-legacy-args", "PV_legacy_args", RW),
    F("PV-bootloader", "PV_bootloader", RW),
    F("PV-bootloader-args", "PV_bootloader_args", RW),
    F("last-boot-CPU-flags", "last_boot_CPU_flags", RO),
    FG("last-boot-record", EXP, vm_last_boot),
    F("resident-on", "resident_on", RO),
    F("affinity", "affinity", RW | XE_F_NULLREF),
    F("other-config", "other_config", MRW),
    F("dom-id", "domid", RO),
    F("recommendations", "recommendations", RO),
    F("xenstore-data", "xenstore_data", MRW | XE_F_CLEARMAP),
    F("ha-always-run", "ha_always_run", RW | DEP),
    F("ha-restart-priority", "ha_restart_priority", RW),
    F("blobs", "blobs", RO),
    FM("start-time", "metrics>start_time", RO, "<unknown time>"),
    FM("install-time", "metrics>install_time", RO, "<unknown time>"),
    FM("VCPUs-number", "metrics>VCPUs_number", RO, XE_NID),
    FG("VCPUs-utilisation", MRO | EXP, vm_vcpus_util),
    FM("os-version", "guest_metrics>os_version", MRO, XE_NID),
    FM("netbios-name", "guest_metrics>netbios_name", MRO, XE_NID),
    FM("PV-drivers-version", "guest_metrics>PV_drivers_version", MRO,
       XE_NID),
    FM("PV-drivers-up-to-date", "guest_metrics>PV_drivers_up_to_date", DEP,
       XE_NID),
    FM("memory", "guest_metrics>memory", MRO, XE_NID),
    FM("disks", "guest_metrics>disks", MRO, XE_NID),
    F("VBDs", "VBDs", SRO),
    FM("networks", "guest_metrics>networks", MRO, XE_NID),
    FM("services", "guest_metrics>services", MRO, XE_NID),
    FM("PV-drivers-detected", "guest_metrics>PV_drivers_detected", RO,
       XE_NID),
    FM("other", "guest_metrics>other", MRO, XE_NID),
    FM("live", "guest_metrics>live", RO, XE_NID),
    FM("guest-metrics-last-updated", "guest_metrics>last_updated", RO,
       XE_NID),
    FM("can-use-hotplug-vbd", "guest_metrics>can_use_hotplug_vbd", RO,
       XE_NID),
    FM("can-use-hotplug-vif", "guest_metrics>can_use_hotplug_vif", RO,
       XE_NID),
    FG("cooperative", EXP | DEP, always_true),
    F("tags", "tags", SRW | XE_F_COMMA),
    F("appliance", "appliance", RW | XE_F_NULLREF),
    F("groups", "groups", RW),
    F("secureboot-certificates-state", "secureboot_certificates_state", RO),
    F("snapshot-schedule", "snapshot_schedule", RW | XE_F_NULLREF),
    F("is-vmss-snapshot", "is_vmss_snapshot", RO),
    F("start-delay", "start_delay", RW),
    F("shutdown-delay", "shutdown_delay", RW),
    F("order", "order", RW),
    F("version", "version", RO),
    F("generation-id", "generation_id", RO),
    F("hardware-platform-version", "hardware_platform_version", RO),
    F("has-vendor-device", "has_vendor_device", RW),
    F("requires-reboot", "requires_reboot", RO),
    F("reference-label", "reference_label", RO),
    {.name = "bios-strings", .path = "bios_strings",
     .flags = MRO | XE_F_SETMAP, .keys = bios_keys},
    F("pending-guidances", "pending_guidances", RO),
    F("vtpms", "VTPMs", RO),
    F("pending-guidances-recommended", "pending_guidances_recommended", RO),
    F("pending-guidances-full", "pending_guidances_full", RO),
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

static const xe_field host_fields[] = {
    F("uuid", "uuid", RO),
    F("name-label", "name_label", RW),
    F("name-description", "name_description", RW),
    F("allowed-operations", "allowed_operations", SRO),
    F("current-operations", "current_operations", SRO | XE_F_MAPVALUES),
    F("enabled", "enabled", RO),
    F("display", "display", RO),
    F("API-version-major", "API_version_major", RO),
    F("API-version-minor", "API_version_minor", RO),
    F("API-version-vendor", "API_version_vendor", RO),
    F("API-version-vendor-implementation",
      "API_version_vendor_implementation", MRO),
    F("logging", "logging", MRW),
    F("suspend-image-sr-uuid", "suspend_image_sr", RW | XE_F_NULLREF),
    F("crash-dump-sr-uuid", "crash_dump_sr", RW | XE_F_NULLREF),
    F("software-version", "software_version", MRO),
    F("capabilities", "capabilities", SRO),
    F("other-config", "other_config", MRW),
    F("cpu_info", "cpu_info", MRO),
    F("chipset-info", "chipset_info", MRO),
    F("hostname", "hostname", RO),
    F("address", "address", RO),
    F("https-only", "https_only", RW),
    F("supported-bootloaders", "supported_bootloaders", SRO),
    F("blobs", "blobs", RO),
    F("memory-overhead", "memory_overhead", RO),
    FM("memory-total", "metrics>memory_total", RO, XE_NID),
    FM("memory-free", "metrics>memory_free", RO, XE_NID),
    FG("memory-free-computed", EXP, host_free_computed),
    FM("host-metrics-live", "metrics>live", RO, XE_NID),
    F("patches", "patches", SRO | XE_F_COMMA | DEP),
    F("updates", "updates", SRO | XE_F_COMMA),
    F("ha-statefiles", "ha_statefiles", XE_F_STRREFS),
    F("ha-network-peers", "ha_network_peers", RO),
    F("external-auth-type", "external_auth_type", RO),
    F("external-auth-service-name", "external_auth_service_name", RO),
    F("external-auth-configuration", "external_auth_configuration", MRO),
    F("edition", "edition", RO),
    F("license-server", "license_server", MRO),
    F("power-on-mode", "power_on_mode", RO),
    F("power-on-config", "power_on_config", MRO),
    F("local-cache-sr", "local_cache_sr", RO),
    F("tags", "tags", SRW | XE_F_COMMA),
    F("ssl-legacy", "ssl_legacy", RW),
    F("guest_VCPUs_params", "guest_VCPUs_params", MRW),
    F("virtual-hardware-platform-versions",
      "virtual_hardware_platform_versions", SRO),
    F("control-domain-uuid", "control_domain", RO),
    F("resident-vms", "resident_VMs", SRO),
    F("updates-requiring-reboot", "updates_requiring_reboot", SRO),
    F("features", "features", SRO),
    F("iscsi_iqn", "iscsi_iqn", RW),
    F("multipathing", "multipathing", RW),
    F("uefi-certificates", "uefi_certificates", RW | HID),
    F("numa-affinity-policy", "numa_affinity_policy", RW),
    F("pending-guidances", "pending_guidances", RO),
    F("tls-verification-enabled", "tls_verification_enabled", RO),
    F("last-software-update", "last_software_update", RO),
    F("latest-synced-updates-applied", "latest_synced_updates_applied", RO),
    F("pending-guidances-recommended", "pending_guidances_recommended", RO),
    F("pending-guidances-full", "pending_guidances_full", RO),
    F("last-update-hash", "last_update_hash", RO),
    F("ssh-enabled", "ssh_enabled", RO),
    F("ssh-enabled-timeout", "ssh_enabled_timeout", RW),
    F("ssh-expiry", "ssh_expiry", RO),
    F("console-idle-timeout", "console_idle_timeout", RW),
    F("ssh-auto-mode", "ssh_auto_mode", RW),
    F("max-cstate", "max_cstate", RW),
    F("secure-boot", "secure_boot", RO),
    F("ntp-mode", "ntp_mode", RW),
    F("ntp-custom-servers", "ntp_custom_servers", SRO | RW | XE_F_COMMA),
    F("timezone", "timezone", RW),
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

static const xe_field host_cpu_fields[] = {
    F("uuid", "uuid", RO),
    F("host-uuid", "host", RO),
    F("number", "number", RO),
    F("vendor", "vendor", RO),
    F("speed", "speed", RO),
    F("model", "model", RO),
    F("family", "family", RO),
    F("modelname", "modelname", RO),
    F("stepping", "stepping", RO),
    F("flags", "flags", RO),
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
    {.name = (n), .path = (hf), .flags = (fl), .get = pool_host_field,        \
     .vtype = (st), .msg = (m)}

static const xe_field pool_fields[] = {
    F("uuid", "uuid", RO),
    F("name-label", "name_label", RW),
    F("name-description", "name_description", RW),
    F("master", "master", RO),
    F("default-SR", "default_SR", RW | XE_F_NULLREF),
    F("crash-dump-SR", "crash_dump_SR", RW | XE_F_NULLREF),
    F("suspend-image-SR", "suspend_image_SR", RW | XE_F_NULLREF),
    FG("supported-sr-types", EXP, pool_sr_types),
    F("other-config", "other_config", MRW),
    F("allowed-operations", "allowed_operations", SRO),
    F("current-operations", "current_operations", SRO | XE_F_MAPVALUES),
    F("ha-enabled", "ha_enabled", RO),
    F("ha-configuration", "ha_configuration", RO),
    F("ha-statefiles", "ha_statefiles", XE_F_STRREFS),
    F("ha-host-failures-to-tolerate", "ha_host_failures_to_tolerate", RW),
    F("ha-plan-exists-for", "ha_plan_exists_for", RO),
    F("ha-allow-overcommit", "ha_allow_overcommit", RW),
    F("ha-overcommitted", "ha_overcommitted", RO),
    F("ha-reboot-vm-on-internal-shutdown",
      "ha_reboot_vm_on_internal_shutdown", RW),
    F("blobs", "blobs", RO),
    F("wlb-url", "wlb_url", RO),
    F("wlb-username", "wlb_username", RO),
    F("wlb-enabled", "wlb_enabled", RW),
    F("wlb-verify-cert", "wlb_verify_cert", RW),
    F("igmp-snooping-enabled", "igmp_snooping_enabled", RW),
    F("gui-config", "gui_config", MRW),
    F("health-check-config", "health_check_config", MRW),
    FG("vswitch-controller", HID, pool_vswitch),
    F("restrictions", "restrictions", RO),
    F("tags", "tags", SRW | XE_F_COMMA),
    FG("license-state", RO, pool_license_state),
    F("ha-cluster-stack", "ha_cluster_stack", RO),
    F("guest-agent-config", "guest_agent_config", MRW),
    F("cpu_info", "cpu_info", MRO),
    F("policy-no-vendor-device", "policy_no_vendor_device", RW),
    F("live-patching-disabled", "live_patching_disabled", RW),
    F("uefi-certificates", "uefi_certificates", RW | HID),
    F("custom-uefi-certificates", "custom_uefi_certificates", RW | HID),
    F("tls-verification-enabled", "tls_verification_enabled", RO),
    F("client-certificate-auth-enabled", "client_certificate_auth_enabled",
      RO),
    F("client-certificate-auth-name", "client_certificate_auth_name", RO),
    {.name = "repositories", .path = "repositories", .flags = SRW | RW,
     .addmsg = "add_repository", .rmmsg = "remove_repository"},
    F("repository-proxy-url", "repository_proxy_url", RO),
    F("repository-proxy-username", "repository_proxy_username", RO),
    {.name = "https-only", .flags = RW, .get = pool_https_only,
     .vtype = "bool", .msg = "set_https_only"},
    F("migration-compression", "migration_compression", RW),
    F("coordinator-bias", "coordinator_bias", RW),
    F("telemetry-frequency", "telemetry_frequency", RO),
    F("telemetry-next-collection", "telemetry_next_collection", RO),
    F("last-update-sync", "last_update_sync", RO),
    F("update-sync-frequency", "update_sync_frequency", RO),
    F("update-sync-day", "update_sync_day", RO),
    F("update-sync-enabled", "update_sync_enabled", RO),
    F("auto-update-vm-secureboot-certificates",
      "auto_update_vm_secureboot_certificates", RW),
    FM("recommendations", "recommendations", MRO, ""),
    F("ext-auth-cache-enabled", "ext_auth_cache_enabled", RW),
    F("ext-auth-cache-size", "ext_auth_cache_size", RW),
    F("ext-auth-cache-expiry", "ext_auth_cache_expiry", RW),
    FM("license-server", "license_server", MRW, ""),
    FH("ssh-enabled", RO, "ssh_enabled", NULL, NULL),
    FH("ssh-enabled-timeout", RW, "ssh_enabled_timeout", "int",
       "set_ssh_enabled_timeout"),
    FH("ssh-expiry", RO, "ssh_expiry", NULL, NULL),
    FH("console-idle-timeout", RW, "console_idle_timeout", "int",
       "set_console_idle_timeout"),
    FH("ssh-auto-mode", RW, "ssh_auto_mode", "bool", "set_ssh_auto_mode"),
    F("limit-console-sessions", "limit_console_sessions", RW),
    F("vm-console-idle-timeout", "vm_console_idle_timeout", RW),
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

static const xe_field sr_fields[] = {
    F("uuid", "uuid", RO),
    F("name-label", "name_label", RW),
    F("name-description", "name_description", RW),
    FG("host", RO, sr_host),
    F("allowed-operations", "allowed_operations", SRO),
    F("current-operations", "current_operations", SRO | XE_F_MAPVALUES),
    F("VDIs", "VDIs", SRO),
    F("PBDs", "PBDs", SRO),
    F("virtual-allocation", "virtual_allocation", RO),
    F("physical-utilisation", "physical_utilisation", RO),
    F("physical-size", "physical_size", RO),
    F("type", "type", RO),
    F("content-type", "content_type", RO),
    F("shared", "shared", RW),
    F("introduced-by", "introduced_by", RO),
    F("is-tools-sr", "is_tools_sr", RO),
    F("other-config", "other_config", MRW),
    F("sm-config", "sm_config", MRO),
    F("blobs", "blobs", RO),
    F("local-cache-enabled", "local_cache_enabled", RO),
    F("tags", "tags", SRW | XE_F_COMMA),
    F("clustered", "clustered", RO),
};

static const xe_field pbd_fields[] = {
    F("uuid", "uuid", RO),
    F("host", "host", DEP),
    F("host-uuid", "host", RO),
    F("host-name-label", "host>name_label", RO),
    F("sr-uuid", "SR", RO),
    F("sr-name-label", "SR>name_label", RO),
    F("device-config", "device_config", MRO),
    F("currently-attached", "currently_attached", RO),
    F("other-config", "other_config", MRW),
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

static const xe_field vdi_fields[] = {
    F("uuid", "uuid", RO),
    F("name-label", "name_label", RW),
    F("name-description", "name_description", RW),
    F("is-a-snapshot", "is_a_snapshot", RO),
    F("snapshot-of", "snapshot_of", RO),
    F("snapshots", "snapshots", RO),
    F("snapshot-time", "snapshot_time", RO),
    F("allowed-operations", "allowed_operations", SRO),
    F("current-operations", "current_operations", SRO | XE_F_MAPVALUES),
    F("sr-uuid", "SR", RO),
    F("sr-name-label", "SR>name_label", RO),
    F("vbd-uuids", "VBDs", SRO),
    F("crashdump-uuids", "crash_dumps", SRO),
    F("virtual-size", "virtual_size", RO),
    F("physical-utilisation", "physical_utilisation", RO),
    F("location", "location", RO),
    F("type", "type", RO),
    F("sharable", "sharable", RO),
    F("read-only", "read_only", RO),
    F("storage-lock", "storage_lock", RO),
    F("managed", "managed", RO),
    F("parent", "parent", DEP),
    F("missing", "missing", RO),
    F("is-tools-iso", "is_tools_iso", RO),
    F("other-config", "other_config", MRW),
    F("xenstore-data", "xenstore_data", MRO | XE_F_CLEARMAP),
    F("sm-config", "sm_config", MRO),
    F("on-boot", "on_boot", RW),
    F("allow-caching", "allow_caching", RW),
    F("metadata-latest", "metadata_latest", RO),
    FG("metadata-of-pool", RO, vdi_metadata_of_pool),
    F("tags", "tags", SRW | XE_F_COMMA),
    F("cbt-enabled", "cbt_enabled", RO),
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

static const xe_field vbd_fields[] = {
    F("uuid", "uuid", RO),
    F("vm-uuid", "VM", RO),
    F("vm-name-label", "VM>name_label", RO),
    F("vdi-uuid", "VDI", RO),
    FG("vdi-name-label", RO, vbd_vdi_name),
    F("allowed-operations", "allowed_operations", SRO),
    F("current-operations", "current_operations", SRO | XE_F_MAPVALUES),
    F("empty", "empty", RO),
    F("device", "device", RO),
    F("userdevice", "userdevice", RW),
    F("bootable", "bootable", RW),
    F("mode", "mode", RW),
    F("type", "type", RW),
    F("unpluggable", "unpluggable", RW),
    F("currently-attached", "currently_attached", RO),
    FG("attachable", EXP, vbd_attachable),
    F("storage-lock", "storage_lock", RO),
    F("status-code", "status_code", RO),
    F("status-detail", "status_detail", RO),
    F("qos_algorithm_type", "qos_algorithm_type", RW),
    F("qos_algorithm_params", "qos_algorithm_params", MRW),
    F("qos_supported_algorithms", "qos_supported_algorithms", SRO),
    F("other-config", "other_config", MRW),
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

static const xe_field vif_fields[] = {
    F("uuid", "uuid", RO),
    F("vm-uuid", "VM", RO),
    F("vm-name-label", "VM>name_label", RO),
    F("allowed-operations", "allowed_operations", SRO),
    F("current-operations", "current_operations", SRO | XE_F_MAPVALUES),
    F("device", "device", RO),
    F("MAC", "MAC", XE_F_CI),
    F("MAC-autogenerated", "MAC_autogenerated", RO),
    F("MTU", "MTU", RO),
    F("currently-attached", "currently_attached", RO),
    F("qos_algorithm_type", "qos_algorithm_type", RW),
    F("qos_algorithm_params", "qos_algorithm_params", MRW),
    F("qos_supported_algorithms", "qos_supported_algorithms", SRO),
    F("other-config", "other_config", MRW),
    F("network-uuid", "network", RO),
    F("network-name-label", "network>name_label", RO),
    FG("io_read_kbs", EXP, vif_io_read),
    FG("io_write_kbs", EXP, vif_io_write),
    F("locking-mode", "locking_mode", RW),
    F("ipv4-allowed", "ipv4_allowed", SRW | RW),
    F("ipv6-allowed", "ipv6_allowed", SRW | RW),
    F("ipv4-configuration-mode", "ipv4_configuration_mode", RO),
    F("ipv4-addresses", "ipv4_addresses", RO),
    F("ipv4-gateway", "ipv4_gateway", RO),
    F("ipv6-configuration-mode", "ipv6_configuration_mode", RO),
    F("ipv6-addresses", "ipv6_addresses", RO),
    F("ipv6-gateway", "ipv6_gateway", RO),
    F("trunks", "trunks", SRW | RW),
};

static const xe_field network_fields[] = {
    F("uuid", "uuid", RO),
    F("name-label", "name_label", RW),
    F("name-description", "name_description", RW),
    F("VIF-uuids", "VIFs", SRO),
    F("PIF-uuids", "PIFs", SRO),
    F("MTU", "MTU", RW),
    F("bridge", "bridge", RO),
    F("managed", "managed", RO),
    F("other-config", "other_config", MRW),
    F("blobs", "blobs", RO),
    F("tags", "tags", SRW | XE_F_COMMA),
    F("default-locking-mode", "default_locking_mode", RW),
    F("purpose", "purpose", SRW | XE_F_COMMA),
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

static const xe_field pif_fields[] = {
    F("uuid", "uuid", RO),
    F("device", "device", RO),
    F("MAC", "MAC", XE_F_CI),
    F("physical", "physical", RO),
    F("managed", "managed", RO),
    F("currently-attached", "currently_attached", RO),
    F("MTU", "MTU", RO),
    F("VLAN", "VLAN", RO),
    F("vlan-master-of", "VLAN_master_of", RO),
    F("vlan-slave-of", "VLAN_slave_of", RO),
    F("bond-master-of", "bond_master_of", RO),
    F("bond-slave-of", "bond_slave_of", RO),
    F("sriov-physical-PIF-of", "sriov_physical_PIF_of", RO),
    F("sriov-logical-PIF-of", "sriov_logical_PIF_of", RO),
    F("tunnel-access-PIF-of", "tunnel_access_PIF_of", RO),
    F("tunnel-transport-PIF-of", "tunnel_transport_PIF_of", RO),
    F("management", "management", RO),
    F("network-uuid", "network", RO),
    F("network-name-label", "network>name_label", RO),
    F("host-uuid", "host", RO),
    F("host-name-label", "host>name_label", RO),
    F("IP-configuration-mode", "ip_configuration_mode", RO),
    F("IP", "IP", RO),
    F("netmask", "netmask", RO),
    F("gateway", "gateway", RO),
    F("IPv6-configuration-mode", "ipv6_configuration_mode", RO),
    F("IPv6", "IPv6", RO),
    F("IPv6-gateway", "ipv6_gateway", RO),
    F("primary-address-type", "primary_address_type", RO),
    F("DNS", "DNS", RO),
    {.name = "properties", .path = "properties",
     .flags = MRO | XE_F_SETINMAP, .msg = "set_property"},
    F("capabilities", "capabilities", SRO),
    FG("io_read_kbs", EXP, pif_io_read),
    FG("io_write_kbs", EXP, pif_io_write),
    FM("carrier", "metrics>carrier", RO, XE_NID),
    FM("vendor-id", "metrics>vendor_id", RO, XE_NID),
    FM("vendor-name", "metrics>vendor_name", RO, XE_NID),
    FM("device-id", "metrics>device_id", RO, XE_NID),
    FM("device-name", "metrics>device_name", RO, XE_NID),
    FG("speed", RO, pif_speed),
    FG("duplex", RO, pif_duplex),
    F("disallow-unplug", "disallow_unplug", RW),
    FM("pci-bus-path", "metrics>pci_bus_path", RO, XE_NID),
    F("other-config", "other_config", MRW),
    F("igmp-snooping-status", "igmp_snooping_status", RO),
};

static const xe_field bond_fields[] = {
    F("uuid", "uuid", RO),
    F("master", "master", RO),
    F("slaves", "slaves", RO),
    F("mode", "mode", RO),
    {.name = "properties", .path = "properties",
     .flags = MRO | XE_F_SETINMAP, .msg = "set_property"},
    F("primary-slave", "primary_slave", RO),
    F("links-up", "links_up", RO),
    F("auto-update-mac", "auto_update_mac", RO),
};

static const xe_field vlan_fields[] = {
    F("uuid", "uuid", RO),
    F("tagged-PIF", "tagged_PIF", RO),
    F("untagged-PIF", "untagged_PIF", RO),
    F("tag", "tag", RO),
};

/* ---- task, console, message, secret ---- */

static const xe_field task_fields[] = {
    F("uuid", "uuid", RO),
    F("name-label", "name_label", RO),
    F("name-description", "name_description", RO),
    F("subtask_of", "subtask_of", RO),
    F("subtasks", "subtasks", RO),
    F("resident-on", "resident_on", RO),
    F("status", "status", RO),
    F("progress", "progress", RO),
    F("type", "type", RO),
    F("result", "result", RO),
    F("created", "created", RO),
    F("finished", "finished", RO),
    F("error_info", "error_info", RO),
    F("allowed_operations", "allowed_operations", RO),
    F("current_operations", "current_operations", XE_F_MAPVALUES),
    F("other-config", "other_config", MRW),
};

static const xe_field console_fields[] = {
    F("uuid", "uuid", RO),
    F("vm-uuid", "VM", RO),
    F("vm-name-label", "VM>name_label", RO),
    F("protocol", "protocol", RO),
    F("location", "location", RO),
    F("other-config", "other_config", MRW),
};

static const xe_field message_fields[] = {
    F("uuid", "uuid", RO),
    F("name", "name", RO),
    F("priority", "priority", RO),
    F("class", "cls", RO),
    F("obj-uuid", "obj_uuid", RO),
    F("timestamp", "timestamp", RO),
    F("body", "body", RO),
};

static const xe_field secret_fields[] = {
    F("uuid", "uuid", RO),
    F("value", "value", RW),
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
