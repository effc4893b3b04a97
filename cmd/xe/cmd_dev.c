/*
 * xe: device, storage and network commands that address objects by uuid:
 * vdi-create/-destroy/-introduce/-forget/-update/-resize/-copy/-clone/
 * -snapshot, vbd-create/-destroy/-plug/-unplug/-insert/-eject,
 * vif-create/-destroy/-plug/-unplug/-move, network-create/-destroy,
 * sr-create/-introduce/-probe/-forget/-destroy/-update/-scan,
 * pbd-create/-destroy/-plug/-unplug and task-cancel (cli_operations.ml).
 */
#include "fields.h"
#include "cmds.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int print_uuid_of(xe_ctx *ctx, const char *cls, const char *ref)
{
    xe_args a;
    const char *uuid;

    xe_args_init(&a);
    xe_args_str(&a, ref);
    if (xe_call_str(ctx, &uuid, xe_sprintf(&ctx->arena, "%s.get_uuid", cls),
                    &a) < 0)
        return -1;
    xe_print_line(ctx, uuid);
    return 0;
}

/* <cls>.<msg> on the object named by uuid= */
static int by_uuid(xe_ctx *ctx, const char *cls, const char *msg)
{
    const char *ref;

    if (xe_get_by_uuid(ctx, cls, xe_param(ctx, "uuid"), &ref) < 0)
        return -1;
    return xe_call1(ctx, xe_sprintf(&ctx->arena, "%s.%s", cls, msg), ref);
}

/* <cls>-unplug uuid= [force=]: unplug, or unplug_force with force=true. */
static int unplug_by_uuid(xe_ctx *ctx, const char *cls)
{
    bool force;

    if (xe_param_bool(ctx, "force", false, &force) < 0)
        return -1;
    return by_uuid(ctx, cls, force ? "unplug_force" : "unplug");
}

/* Create from a struct and print the new object's uuid. */
static int create_and_print(xe_ctx *ctx, const char *cls, xcp_value *st)
{
    xe_args a;
    const char *ref;

    xe_args_init(&a);
    xe_args_value(&a, st);
    if (xe_call_str(ctx, &ref, xe_sprintf(&ctx->arena, "%s.create", cls),
                    &a) < 0)
        return -1;
    return print_uuid_of(ctx, cls, ref);
}

/* read_map_params: "name:key=v" (or "name-key=v") pairs as a struct. */
void xe_map_params(xe_ctx *ctx, const char *name, xcp_value *out)
{
    size_t i, len = strlen(name) + 1;
    xcp_value v;

    xcp_value_set_struct(out);
    for (i = 0; i < ctx->params.n; i++) {
        const xe_kv *p = &ctx->params.v[i];

        if (!xe_prefix(p->key, name) || strlen(p->key) <= len)
            continue;
        xcp_value_set_string(&v, p->val);
        xcp_value_struct_add(out, p->key + len, &v);
        xcp_value_dispose(&v);
    }
}

/* read_set_params: the keys of "name:key=..." as a set. */
static void set_params(xe_ctx *ctx, const char *name, xcp_value *out)
{
    xcp_value m;
    size_t i;

    xe_map_params(ctx, name, &m);
    xcp_value_set_array(out, m.u.st.n);
    for (i = 0; i < m.u.st.n; i++)
        xcp_value_set_string(&out->u.arr.items[i], m.u.st.keys[i]);
    xcp_value_dispose(&m);
}

/* ---- VDI ---- */

static int vdi_type(xe_ctx *ctx, const char **out)
{
    static const char *const ok[] = {"system", "user", "suspend",
                                     "crashdump"};
    const char *t = xe_param(ctx, "type");
    size_t i;

    *out = "user";
    if (t == NULL)
        return 0;
    for (i = 0; i < XE_ARRAY_LEN(ok); i++)
        if (strcmp(t, ok[i]) == 0) {
            *out = ok[i];
            return 0;
        }
    return xe_fail(ctx, "Unknown vdi type: %s", t);
}

int xe_vdi_create(xe_ctx *ctx)
{
    int cls = xe_class_id("VDI");
    const char *sr, *type;
    int64_t size;
    bool sharable;
    xcp_value st, v;

    if (xe_get_by_uuid(ctx, "SR", xe_param(ctx, "sr-uuid"), &sr) < 0
        || xe_param_bytes(ctx, "virtual-size", &size) < 0
        || vdi_type(ctx, &type) < 0
        || xe_param_bool(ctx, "sharable", false, &sharable) < 0)
        return -1;
    xcp_value_set_struct(&st);
    xe_struct_str(&st, cls, "name_label", xe_param(ctx, "name-label"));
    xe_struct_str(&st, cls, "name_description", "");
    xe_struct_str(&st, cls, "SR", sr);
    xe_struct_int(&st, cls, "virtual_size", size);
    xe_struct_str(&st, cls, "type", type);
    xe_struct_bool(&st, cls, "sharable", sharable);
    xe_struct_bool(&st, cls, "read_only", false);
    xe_struct_empty_map(&st, cls, "xenstore_data");
    xe_struct_empty_map(&st, cls, "other_config");
    xe_map_params(ctx, "sm-config", &v);
    xe_struct_value(&st, cls, "sm_config", &v);
    set_params(ctx, "tags", &v);
    xe_struct_value(&st, cls, "tags", &v);
    return create_and_print(ctx, "VDI", &st);
}

int xe_vdi_destroy(xe_ctx *ctx)
{
    return by_uuid(ctx, "VDI", "destroy");
}

/* ---- VBD ---- */

static int vbd_mode(xe_ctx *ctx, const char **out)
{
    const char *m = xe_param(ctx, "mode");

    *out = "RW";
    if (m == NULL)
        return 0;
    if (xe_strcaseeq(m, "ro"))
        *out = "RO";
    else if (!xe_strcaseeq(m, "rw"))
        return xe_fail(ctx, "Unknown mode: %s (should be \"ro\" or \"rw\"",
                       xe_lower(&ctx->arena, m));
    return 0;
}

static int vbd_type(xe_ctx *ctx, const char **out)
{
    const char *t = xe_param(ctx, "type");

    *out = "Disk";
    if (t == NULL)
        return 0;
    if (xe_strcaseeq(t, "cd"))
        *out = "CD";
    else if (xe_strcaseeq(t, "floppy"))
        *out = "Floppy";
    else if (!xe_strcaseeq(t, "disk"))
        return xe_fail(ctx, "\"Unknown type: %s (should be \"cd\", \"disk\" "
                            "or \"floppy\"", xe_lower(&ctx->arena, t));
    return 0;
}

int xe_vbd_create(xe_ctx *ctx)
{
    int cls = xe_class_id("VBD");
    const char *vm, *vdi = XCP_NULL_REF, *mode, *type;
    const char *vdi_uuid = xe_param(ctx, "vdi-uuid");
    bool bootable, unpluggable;
    xcp_value st;

    if (xe_get_by_uuid(ctx, "VM", xe_param(ctx, "vm-uuid"), &vm) < 0
        || (vdi_uuid != NULL
            && xe_get_by_uuid(ctx, "VDI", vdi_uuid, &vdi) < 0)
        || xe_param_bool(ctx, "bootable", false, &bootable) < 0
        || vbd_mode(ctx, &mode) < 0 || vbd_type(ctx, &type) < 0
        || xe_param_bool(ctx, "unpluggable", true, &unpluggable) < 0)
        return -1;
    if (strcmp(type, "Disk") == 0 && vdi_uuid == NULL)
        return xe_fail(ctx, "Empty VBDs can only be made for type=CD");
    xcp_value_set_struct(&st);
    xe_struct_str(&st, cls, "VM", vm);
    xe_struct_str(&st, cls, "VDI", vdi);
    xe_struct_str(&st, cls, "userdevice", xe_param(ctx, "device"));
    xe_struct_bool(&st, cls, "bootable", bootable);
    xe_struct_str(&st, cls, "mode", mode);
    xe_struct_str(&st, cls, "type", type);
    xe_struct_bool(&st, cls, "unpluggable", unpluggable);
    xe_struct_bool(&st, cls, "empty", vdi_uuid == NULL);
    xe_struct_str(&st, cls, "qos_algorithm_type", "");
    xe_struct_empty_map(&st, cls, "qos_algorithm_params");
    xe_struct_empty_map(&st, cls, "other_config");
    xe_struct_str(&st, cls, "device", "");
    xe_struct_bool(&st, cls, "currently_attached", false);
    return create_and_print(ctx, "VBD", &st);
}

int xe_vbd_destroy(xe_ctx *ctx)
{
    return by_uuid(ctx, "VBD", "destroy");
}

int xe_vbd_plug(xe_ctx *ctx)
{
    return by_uuid(ctx, "VBD", "plug");
}

int xe_vbd_unplug(xe_ctx *ctx)
{
    return unplug_by_uuid(ctx, "VBD");
}

/* ---- VIF ---- */

/* A random locally administered unicast MAC (Record_util.random_mac_local
 * uses one random byte for all six). */
static const char *random_mac(xe_ctx *ctx)
{
    unsigned char b = 0;
    FILE *f = fopen("/dev/urandom", "rb");

    if (f != NULL) {
        if (fread(&b, 1, 1, f) != 1)
            b = 0;
        fclose(f);
    }
    return xe_sprintf(&ctx->arena, "%02x:%02x:%02x:%02x:%02x:%02x",
                      (unsigned)((b | 0x2) & ~0x1u) & 0xff, b, b, b, b, b);
}

int xe_vif_create(xe_ctx *ctx)
{
    int cls = xe_class_id("VIF");
    const char *mac = xe_param(ctx, "mac"), *vm, *net;
    xcp_value st, mtu;
    xe_args a;

    if (mac == NULL)
        mac = "";
    else if (strcmp(mac, "random") == 0)
        mac = random_mac(ctx);
    if (xe_get_by_uuid(ctx, "VM", xe_param(ctx, "vm-uuid"), &vm) < 0
        || xe_get_by_uuid(ctx, "network", xe_param(ctx, "network-uuid"),
                          &net) < 0)
        return -1;
    xe_args_init(&a);
    xe_args_str(&a, net);
    if (xe_call(ctx, &mtu, "network.get_MTU", &a) < 0)
        return -1;
    xcp_value_set_struct(&st);
    xe_struct_str(&st, cls, "device", xe_param(ctx, "device"));
    xe_struct_str(&st, cls, "network", net);
    xe_struct_str(&st, cls, "VM", vm);
    xe_struct_str(&st, cls, "MAC", mac);
    xe_struct_value(&st, cls, "MTU", &mtu);
    xe_struct_empty_map(&st, cls, "other_config");
    xe_struct_bool(&st, cls, "currently_attached", false);
    xe_struct_str(&st, cls, "qos_algorithm_type", "");
    xe_struct_empty_map(&st, cls, "qos_algorithm_params");
    xe_struct_str(&st, cls, "locking_mode", "network_default");
    xe_struct_empty_set(&st, cls, "ipv4_allowed");
    xe_struct_empty_set(&st, cls, "ipv6_allowed");
    xe_struct_empty_set(&st, cls, "trunks");
    return create_and_print(ctx, "VIF", &st);
}

int xe_vif_destroy(xe_ctx *ctx)
{
    return by_uuid(ctx, "VIF", "destroy");
}

int xe_vif_plug(xe_ctx *ctx)
{
    return by_uuid(ctx, "VIF", "plug");
}

int xe_vif_unplug(xe_ctx *ctx)
{
    return unplug_by_uuid(ctx, "VIF");
}

/* ---- network ---- */

int xe_network_create(xe_ctx *ctx)
{
    static const char *const why[] = {"Failure: Int64.of_string"};
    int cls = xe_class_id("network");
    const char *desc = xe_param(ctx, "name-description");
    const char *mtu_s = xe_param(ctx, "MTU"), *bridge;
    int64_t mtu = 1500;
    bool managed;
    xcp_value st;

    if (mtu_s != NULL && xe_parse_int(mtu_s, &mtu) < 0)
        return xe_fail_api(ctx, "INTERNAL_ERROR", 1, why);
    bridge = xe_param(ctx, "bridge");
    if (xe_param_bool(ctx, "managed", true, &managed) < 0)
        return -1;
    xcp_value_set_struct(&st);
    xe_struct_str(&st, cls, "name_label", xe_param(ctx, "name-label"));
    xe_struct_str(&st, cls, "name_description", desc != NULL ? desc : "");
    xe_struct_int(&st, cls, "MTU", mtu);
    xe_struct_empty_map(&st, cls, "other_config");
    xe_struct_str(&st, cls, "bridge", bridge != NULL ? bridge : "");
    xe_struct_bool(&st, cls, "managed", managed);
    xe_struct_empty_set(&st, cls, "tags");
    return create_and_print(ctx, "network", &st);
}

int xe_network_destroy(xe_ctx *ctx)
{
    return by_uuid(ctx, "network", "destroy");
}

/* ---- PBD, SR, task ---- */

int xe_pbd_plug(xe_ctx *ctx)
{
    return by_uuid(ctx, "PBD", "plug");
}

int xe_pbd_unplug(xe_ctx *ctx)
{
    return by_uuid(ctx, "PBD", "unplug");
}

int xe_sr_scan(xe_ctx *ctx)
{
    return by_uuid(ctx, "SR", "scan");
}

int xe_task_cancel(xe_ctx *ctx)
{
    return by_uuid(ctx, "task", "cancel");
}

/* ---- SR, PBD and VDI management (cli_operations.ml sr_*, pbd_*, vdi_*) */

/* get_host_from_session: the host this session talks to, the pool's
 * master (the one host of a libxcp pool, or the master xe talks to). */
int xe_this_host(xe_ctx *ctx, const char **ref)
{
    xe_obj *pools;
    size_t n;

    if (xe_objs_all(ctx, xe_class_find("pool"), &pools, &n) < 0)
        return -1;
    if (n == 0)
        return xe_fail(ctx, "No pool found");
    *ref = xe_rec_str(pools[0].rec, "master");
    return 0;
}

/* host-uuid= if given, else this host. */
static int host_param(xe_ctx *ctx, const char **ref)
{
    const char *uuid = xe_param(ctx, "host-uuid");

    return uuid ? xe_get_by_uuid(ctx, "host", uuid, ref)
                : xe_this_host(ctx, ref);
}

/*
 * parse_device_config: device-config:<k>=<v> pairs as a struct; a key
 * <k>-filename=<file> gives <k> the contents of the local file.
 */
static int device_config(xe_ctx *ctx, xcp_value *out)
{
    static const char sfx[] = "-filename";
    const size_t sl = sizeof(sfx) - 1;
    xcp_value all, v;
    size_t i, kl;

    xe_map_params(ctx, "device-config", &all);
    xcp_value_set_struct(out);
    for (i = 0; i < all.u.st.n; i++) {
        const char *k = all.u.st.keys[i], *val = all.u.st.vals[i].u.s;

        kl = strlen(k);
        if (kl > sl && strcmp(k + kl - sl, sfx) == 0) {
            const char *data = xe_io_load(ctx, val);

            if (data == NULL) {
                xe_fail(ctx, "Failed to read file %s", val);
                xcp_value_dispose(&all);
                xcp_value_dispose(out);
                return -1;
            }
            k = xe_sprintf(&ctx->arena, "%.*s", (int)(kl - sl), k);
            val = data;
        }
        xcp_value_set_string(&v, val);
        xcp_value_struct_add(out, k, &v);
        xcp_value_dispose(&v);
    }
    xcp_value_dispose(&all);
    return 0;
}

/* Print the uuid of the object ref of class cls that a call returned. */
static int call_and_print(xe_ctx *ctx, const char *cls, const char *method,
                          xe_args *a)
{
    const char *ref;

    if (xe_call_str(ctx, &ref, method, a) < 0)
        return -1;
    return print_uuid_of(ctx, cls, ref);
}

static const char *param_or(xe_ctx *ctx, const char *key, const char *def)
{
    const char *v = xe_param(ctx, key);

    return v != NULL ? v : def;
}

int xe_sr_create(xe_ctx *ctx)
{
    const char *host;
    int64_t size = 0;
    bool shared;
    xcp_value dc, sm;
    xe_args a;

    if (host_param(ctx, &host) < 0 ||
        xe_param_bool(ctx, "shared", false, &shared) < 0 ||
        (xe_param(ctx, "physical-size") != NULL &&
         xe_param_bytes(ctx, "physical-size", &size) < 0) ||
        device_config(ctx, &dc) < 0)
        return -1;
    xe_map_params(ctx, "sm-config", &sm);
    xe_args_init(&a);
    xe_args_str(&a, host);
    xe_args_value(&a, &dc);
    xe_args_int(&a, size);
    xe_args_str(&a, xe_param(ctx, "name-label"));
    xe_args_str(&a, param_or(ctx, "name-description", ""));
    xe_args_str(&a, xe_param(ctx, "type"));
    xe_args_str(&a, param_or(ctx, "content-type", ""));
    xe_args_bool(&a, shared);
    xe_args_value(&a, &sm);
    return call_and_print(ctx, "SR", "SR.create", &a);
}

int xe_sr_introduce(xe_ctx *ctx)
{
    bool shared;
    xcp_value sm;
    xe_args a;

    if (xe_param_bool(ctx, "shared", false, &shared) < 0)
        return -1;
    xcp_value_set_struct(&sm);
    xe_args_init(&a);
    xe_args_str(&a, xe_param(ctx, "uuid"));
    xe_args_str(&a, xe_param(ctx, "name-label"));
    xe_args_str(&a, param_or(ctx, "name-description", ""));
    xe_args_str(&a, xe_param(ctx, "type"));
    xe_args_str(&a, param_or(ctx, "content-type", ""));
    xe_args_bool(&a, shared);
    xe_args_value(&a, &sm);
    return call_and_print(ctx, "SR", "SR.introduce", &a);
}

int xe_sr_probe(xe_ctx *ctx)
{
    const char *host, *out;
    xcp_value dc, sm;
    xe_args a;

    if (host_param(ctx, &host) < 0 || device_config(ctx, &dc) < 0)
        return -1;
    xe_map_params(ctx, "sm-config", &sm);
    xe_args_init(&a);
    xe_args_str(&a, host);
    xe_args_value(&a, &dc);
    xe_args_str(&a, xe_param(ctx, "type"));
    xe_args_value(&a, &sm);
    if (xe_call_str(ctx, &out, "SR.probe", &a) < 0)
        return -1;
    xe_print_line(ctx, out);
    return 0;
}

int xe_sr_forget(xe_ctx *ctx)
{
    return by_uuid(ctx, "SR", "forget");
}

int xe_sr_destroy(xe_ctx *ctx)
{
    return by_uuid(ctx, "SR", "destroy");
}

int xe_sr_update(xe_ctx *ctx)
{
    return by_uuid(ctx, "SR", "update");
}

int xe_pbd_create(xe_ctx *ctx)
{
    int cls = xe_class_id("PBD");
    const char *host, *sr;
    xcp_value st, dc;

    if (xe_get_by_uuid(ctx, "host", xe_param(ctx, "host-uuid"), &host) < 0 ||
        xe_get_by_uuid(ctx, "SR", xe_param(ctx, "sr-uuid"), &sr) < 0 ||
        device_config(ctx, &dc) < 0)
        return -1;
    xcp_value_set_struct(&st);
    xe_struct_str(&st, cls, "host", host);
    xe_struct_str(&st, cls, "SR", sr);
    xe_struct_value(&st, cls, "device_config", &dc);
    xe_struct_empty_map(&st, cls, "other_config");
    return create_and_print(ctx, "PBD", &st);
}

int xe_pbd_destroy(xe_ctx *ctx)
{
    return by_uuid(ctx, "PBD", "destroy");
}

int xe_vdi_forget(xe_ctx *ctx)
{
    return by_uuid(ctx, "VDI", "forget");
}

int xe_vdi_update(xe_ctx *ctx)
{
    return by_uuid(ctx, "VDI", "update");
}

int xe_vdi_enable_cbt(xe_ctx *ctx)
{
    return by_uuid(ctx, "VDI", "enable_cbt");
}

int xe_vdi_disable_cbt(xe_ctx *ctx)
{
    return by_uuid(ctx, "VDI", "disable_cbt");
}

int xe_vdi_data_destroy(xe_ctx *ctx)
{
    return by_uuid(ctx, "VDI", "data_destroy");
}

int xe_vdi_list_changed_blocks(xe_ctx *ctx)
{
    const char *from, *to, *out;
    xe_args a;

    if (xe_get_by_uuid(ctx, "VDI", xe_param(ctx, "vdi-from-uuid"),
                       &from) < 0 ||
        xe_get_by_uuid(ctx, "VDI", xe_param(ctx, "vdi-to-uuid"), &to) < 0)
        return -1;
    xe_args_init(&a);
    xe_args_str(&a, from);
    xe_args_str(&a, to);
    if (xe_call_str(ctx, &out, "VDI.list_changed_blocks", &a) < 0)
        return -1;
    xe_print_line(ctx, out);
    return 0;
}

int xe_vdi_introduce(xe_ctx *ctx)
{
    const char *sr, *type;
    bool sharable, ro, managed;
    xcp_value oc, xd, sm;
    xe_args a;

    if (xe_get_by_uuid(ctx, "SR", xe_param(ctx, "sr-uuid"), &sr) < 0 ||
        vdi_type(ctx, &type) < 0 ||
        xe_param_bool(ctx, "sharable", false, &sharable) < 0 ||
        xe_param_bool(ctx, "read-only", false, &ro) < 0 ||
        xe_param_bool(ctx, "managed", true, &managed) < 0)
        return -1;
    xe_map_params(ctx, "other-config", &oc);
    xe_map_params(ctx, "xenstore-data", &xd);
    xe_map_params(ctx, "sm-config", &sm);
    xe_args_init(&a);
    xe_args_str(&a, xe_param(ctx, "uuid"));
    xe_args_str(&a, param_or(ctx, "name-label", ""));
    xe_args_str(&a, param_or(ctx, "name-description", ""));
    xe_args_str(&a, sr);
    xe_args_str(&a, type);
    xe_args_bool(&a, sharable);
    xe_args_bool(&a, ro);
    xe_args_value(&a, &oc);
    xe_args_str(&a, xe_param(ctx, "location"));
    xe_args_value(&a, &xd);
    xe_args_value(&a, &sm);
    xe_args_bool(&a, managed);
    return call_and_print(ctx, "VDI", "VDI.introduce", &a);
}

int xe_vdi_resize(xe_ctx *ctx)
{
    const char *vdi;
    int64_t size;
    bool online;
    xe_args a;

    if (xe_get_by_uuid(ctx, "VDI", xe_param(ctx, "uuid"), &vdi) < 0 ||
        xe_param_bytes(ctx, "disk-size", &size) < 0 ||
        xe_param_bool(ctx, "online", false, &online) < 0)
        return -1;
    xe_args_init(&a);
    xe_args_str(&a, vdi);
    xe_args_int(&a, size);
    return xe_call(ctx, NULL, online ? "VDI.resize_online" : "VDI.resize",
                   &a);
}

int xe_vdi_copy(xe_ctx *ctx)
{
    const char *vdi, *sr = "OpaqueRef:NULL", *base = "OpaqueRef:NULL";
    const char *into = "OpaqueRef:NULL";
    const char *sr_uuid = xe_param(ctx, "sr-uuid");
    const char *into_uuid = xe_param(ctx, "into-vdi-uuid");
    const char *base_uuid = xe_param(ctx, "base-vdi-uuid");
    xe_args a;

    if (xe_get_by_uuid(ctx, "VDI", xe_param(ctx, "uuid"), &vdi) < 0)
        return -1;
    if (sr_uuid == NULL && into_uuid == NULL)
        return xe_fail(ctx, "Please specify one of sr-uuid and "
                            "into-vdi-uuid");
    if (sr_uuid != NULL && into_uuid != NULL)
        return xe_fail(ctx, "Please specify one of sr-uuid and "
                            "into-vdi-uuid, but not both");
    if ((sr_uuid && xe_get_by_uuid(ctx, "SR", sr_uuid, &sr) < 0) ||
        (into_uuid && xe_get_by_uuid(ctx, "VDI", into_uuid, &into) < 0) ||
        (base_uuid && xe_get_by_uuid(ctx, "VDI", base_uuid, &base) < 0))
        return -1;
    xe_args_init(&a);
    xe_args_str(&a, vdi);
    xe_args_str(&a, sr);
    xe_args_str(&a, base);
    xe_args_str(&a, into);
    return call_and_print(ctx, "VDI", "VDI.copy", &a);
}

/* vdi-clone and vdi-snapshot: <msg>(vdi, driver-params-*), then the
 * new VDI's name when given (clone); prints its uuid. */
static int vdi_dup(xe_ctx *ctx, const char *msg, bool names)
{
    const char *vdi, *ref, *v;
    xcp_value dp;
    xe_args a;

    if (xe_get_by_uuid(ctx, "VDI", xe_param(ctx, "uuid"), &vdi) < 0)
        return -1;
    xe_map_params(ctx, "driver-params", &dp);
    xe_args_init(&a);
    xe_args_str(&a, vdi);
    xe_args_value(&a, &dp);
    if (xe_call_str(ctx, &ref, msg, &a) < 0)
        return -1;
    if (names && (v = xe_param(ctx, "new-name-label")) != NULL) {
        xe_args_init(&a);
        xe_args_str(&a, ref);
        xe_args_str(&a, v);
        if (xe_call(ctx, NULL, "VDI.set_name_label", &a) < 0)
            return -1;
    }
    if (names && (v = xe_param(ctx, "new-name-description")) != NULL) {
        xe_args_init(&a);
        xe_args_str(&a, ref);
        xe_args_str(&a, v);
        if (xe_call(ctx, NULL, "VDI.set_name_description", &a) < 0)
            return -1;
    }
    return print_uuid_of(ctx, "VDI", ref);
}

int xe_vdi_clone(xe_ctx *ctx)
{
    return vdi_dup(ctx, "VDI.clone", true);
}

int xe_vdi_snapshot(xe_ctx *ctx)
{
    return vdi_dup(ctx, "VDI.snapshot", false);
}

/* ---- CD media and VIF moves ---- */

int xe_vbd_insert(xe_ctx *ctx)
{
    const char *vbd, *vdi;
    xe_args a;

    if (xe_get_by_uuid(ctx, "VBD", xe_param(ctx, "uuid"), &vbd) < 0 ||
        xe_get_by_uuid(ctx, "VDI", xe_param(ctx, "vdi-uuid"), &vdi) < 0)
        return -1;
    xe_args_init(&a);
    xe_args_str(&a, vbd);
    xe_args_str(&a, vdi);
    return xe_call(ctx, NULL, "VBD.insert", &a);
}

int xe_vbd_eject(xe_ctx *ctx)
{
    return by_uuid(ctx, "VBD", "eject");
}

int xe_vif_move(xe_ctx *ctx)
{
    const char *vif, *net;
    xe_args a;

    if (xe_get_by_uuid(ctx, "VIF", xe_param(ctx, "uuid"), &vif) < 0 ||
        xe_get_by_uuid(ctx, "network", xe_param(ctx, "network-uuid"),
                       &net) < 0)
        return -1;
    xe_args_init(&a);
    xe_args_str(&a, vif);
    xe_args_str(&a, net);
    return xe_call(ctx, NULL, "VIF.move", &a);
}
