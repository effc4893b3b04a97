/*
 * registry.c - the SR types libxcp knows, found by name.
 *
 * A new type is one line in `types` below plus its driver file.  The
 * table is constant: nothing registers at run time, so there is no state
 * to lock.  xcp__sr_type_check() lets a test prove that what a type says
 * it can do matches the operations it provides, which is what allows the
 * SR layer to refuse an operation from the capability bits alone.
 */
#include <xcp/sys/sr.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

/*
 * Internal interface of this file (to move to an internal SR header when
 * the SR layer lands).
 */
const xcp_sr_type *xcp__sr_type_find(const char *name);
size_t xcp__sr_type_count(void);
const xcp_sr_type *xcp__sr_type_at(size_t i);
const char *xcp__sr_cap_name(uint64_t cap);
int xcp__sr_type_check(const xcp_sr_type *t, char *err, size_t errlen);

extern const xcp_sr_type xcp__sr_type_file;
extern const xcp_sr_type xcp__sr_type_ext;
extern const xcp_sr_type xcp__sr_type_iso;

static const xcp_sr_type *const types[] = {
    &xcp__sr_type_file,
    &xcp__sr_type_ext,
    &xcp__sr_type_iso,
};

/* The type called name (SR.type), or NULL: SR_UNKNOWN_DRIVER. */
const xcp_sr_type *xcp__sr_type_find(const char *name)
{
    size_t i;

    for (i = 0; name && i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(types[i]->name, name) == 0)
            return types[i];
    return NULL;
}

/* Number of supported types, for listing them (SM records). */
size_t xcp__sr_type_count(void)
{
    return sizeof(types) / sizeof(types[0]);
}

/* The i-th supported type, or NULL past the end. */
const xcp_sr_type *xcp__sr_type_at(size_t i)
{
    return i < xcp__sr_type_count() ? types[i] : NULL;
}

/* The SM.capabilities string of one XCP_SR_CAP_* bit, NULL if unknown. */
const char *xcp__sr_cap_name(uint64_t cap)
{
    static const struct {
        uint64_t cap;
        const char *name;
    } names[] = {
        { XCP_SR_CAP_SR_PROBE, "SR_PROBE" },
        { XCP_SR_CAP_SR_SCAN, "SR_SCAN" },
        { XCP_SR_CAP_SR_UPDATE, "SR_UPDATE" },
        { XCP_SR_CAP_SR_GC, "SR_GC" },
        { XCP_SR_CAP_VDI_CREATE, "VDI_CREATE" },
        { XCP_SR_CAP_VDI_DELETE, "VDI_DELETE" },
        { XCP_SR_CAP_VDI_UPDATE, "VDI_UPDATE" },
        { XCP_SR_CAP_VDI_SNAPSHOT, "VDI_SNAPSHOT" },
        { XCP_SR_CAP_VDI_CLONE, "VDI_CLONE" },
        { XCP_SR_CAP_VDI_RESIZE, "VDI_RESIZE" },
        { XCP_SR_CAP_VDI_RESIZE_ONLINE, "VDI_RESIZE_ONLINE" },
        { XCP_SR_CAP_VDI_COPY, "VDI_COPY" },
        { XCP_SR_CAP_THIN_PROVISIONING, "THIN_PROVISIONING" },
        { XCP_SR_CAP_VDI_CONFIG_CBT, "VDI_CONFIG_CBT" },
    };
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (names[i].cap == cap)
            return names[i].name;
    return NULL;
}

/* Capability bits and operation slots must agree both ways. */
static int check_slots(const xcp_sr_type *t, uint64_t *known, char *err,
                       size_t errlen)
{
    const xcp_sr_ops *o = t->ops;
    const struct {
        uint64_t cap;
        bool slot;
        const char *op;
    } map[] = {
        { XCP_SR_CAP_SR_PROBE, o->sr_probe != NULL, "sr_probe" },
        { XCP_SR_CAP_SR_SCAN, o->sr_scan != NULL, "sr_scan" },
        { XCP_SR_CAP_SR_UPDATE, o->sr_stat != NULL, "sr_stat" },
        { XCP_SR_CAP_SR_GC, o->sr_gc != NULL, "sr_gc" },
        { XCP_SR_CAP_VDI_CREATE, o->vdi_create != NULL, "vdi_create" },
        { XCP_SR_CAP_VDI_DELETE, o->vdi_destroy != NULL, "vdi_destroy" },
        { XCP_SR_CAP_VDI_UPDATE, o->vdi_stat != NULL, "vdi_stat" },
        { XCP_SR_CAP_VDI_SNAPSHOT, o->vdi_snapshot != NULL, "vdi_snapshot" },
        { XCP_SR_CAP_VDI_CLONE, o->vdi_clone != NULL, "vdi_clone" },
        { XCP_SR_CAP_VDI_RESIZE, o->vdi_resize != NULL, "vdi_resize" },
        { XCP_SR_CAP_VDI_COPY, o->vdi_copy != NULL, "vdi_copy" },
        /* One bit for the three slots, as XAPI's one SM feature. */
        { XCP_SR_CAP_VDI_CONFIG_CBT,
          o->version >= 5 && o->vdi_cbt_set && o->vdi_cbt_changes &&
              o->vdi_data_destroy,
          "vdi_cbt_set/vdi_cbt_changes/vdi_data_destroy" },
    };
    size_t i;

    for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        *known |= map[i].cap;
        if (!(t->capabilities & map[i].cap) != !map[i].slot) {
            snprintf(err, errlen, "SR type '%s': capability %s and "
                     "operation %s disagree", t->name,
                     xcp__sr_cap_name(map[i].cap), map[i].op);
            return -EINVAL;
        }
    }
    return 0;
}

/*
 * 0 if t is well formed: a name, an ops table of a version we know, the
 * slots every type needs, and capability bits that agree with the slots.
 * Otherwise -EINVAL and a message naming the mismatch.
 */
int xcp__sr_type_check(const xcp_sr_type *t, char *err, size_t errlen)
{
    const xcp_sr_ops *o = t->ops;
    uint64_t known = XCP_SR_CAP_VDI_RESIZE_ONLINE |
                     XCP_SR_CAP_THIN_PROVISIONING;

    if (!t->name || !t->name[0] || !o || !t->content_type ||
        !t->config_keys) {
        snprintf(err, errlen, "SR type '%s': missing name, ops, "
                 "content_type or config_keys", t->name ? t->name : "?");
        return -EINVAL;
    }
    /* Below version 4, drivers fill the old xcp_sr_error (a name). */
    if (o->version < 4 || o->version > XCP_SR_OPS_VERSION ||
        !o->sr_attach || !o->sr_detach || !o->vdi_path) {
        snprintf(err, errlen, "SR type '%s': bad ops version %u or missing "
                 "sr_attach/sr_detach/vdi_path", t->name, o->version);
        return -EINVAL;
    }
    if (check_slots(t, &known, err, errlen) < 0)
        return -EINVAL;
    if (o->version >= 2 && o->vdi_cow &&
        !(t->capabilities & (XCP_SR_CAP_VDI_SNAPSHOT |
                             XCP_SR_CAP_VDI_CLONE))) {
        snprintf(err, errlen, "SR type '%s': vdi_cow without VDI_SNAPSHOT "
                 "or VDI_CLONE", t->name);
        return -EINVAL;
    }
    /* A collector run is sr_gc with hooks. */
    if (o->version >= 5 && o->sr_gc_run && !o->sr_gc) {
        snprintf(err, errlen, "SR type '%s': sr_gc_run without sr_gc",
                 t->name);
        return -EINVAL;
    }
    /* Transfers need VDI streams of every type. */
    if (o->version >= 3 &&
        (!o->vdi_stream_open || !o->stream_read || !o->stream_write ||
         !o->stream_extents || !o->stream_flush || !o->stream_close)) {
        snprintf(err, errlen, "SR type '%s': ops version %u without all "
                 "six VDI stream slots", t->name, o->version);
        return -EINVAL;
    }
    /* Online resize is a promise about vdi_resize. */
    if ((t->capabilities & XCP_SR_CAP_VDI_RESIZE_ONLINE) &&
        !(t->capabilities & XCP_SR_CAP_VDI_RESIZE)) {
        snprintf(err, errlen, "SR type '%s': VDI_RESIZE_ONLINE without "
                 "VDI_RESIZE", t->name);
        return -EINVAL;
    }
    if (t->capabilities & ~known) {
        snprintf(err, errlen, "SR type '%s': unknown capability bits 0x%llx",
                 t->name, (unsigned long long)(t->capabilities & ~known));
        return -EINVAL;
    }
    return 0;
}
