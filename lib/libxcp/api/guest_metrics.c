/*
 * VM_guest_metrics: what a running VM's guest agent reports, read from the
 * hypervisor driver (xenstore on Xen, the modelled agent on the sim) and
 * mapped as XAPI's Xapi_guest_agent does: data/os_* into os_version,
 * attr/PVAddons/ into PV_drivers_version, attr/vif/N/ipv4/I (and the
 * older attr/ethN/ip) into networks "N/ip", "N/ipv4/I", data/meminfo_ into
 * memory. The domain monitor calls it on every event of the domain, so the
 * record appears, and changes, through events (a script waiting for a
 * VM's IP sees it come); a new boot drops the old record, as XAPI's
 * VM.start does (a clone's addresses are not its own).
 */
#include "vm_int.h"

#include <stdio.h>
#include <stdlib.h>

struct key_map {
    const char *path, *key;
};

static const struct key_map os_version[] = {
    {"data/os_name", "name"},       {"data/os_uname", "uname"},
    {"data/os_distro", "distro"},   {"data/os_majorver", "major"},
    {"data/os_minorver", "minor"},  {"attr/os/spmajor", "spmajor"},
    {"attr/os/spminor", "spminor"},
};

static const struct key_map pv_drivers_version[] = {
    {"attr/PVAddons/MajorVersion", "major"},
    {"attr/PVAddons/MinorVersion", "minor"},
    {"attr/PVAddons/MicroVersion", "micro"},
    {"attr/PVAddons/BuildVersion", "build"},
    {"attr/PVAddons/Application", "application"},
};

static const struct key_map memory[] = {
    {"data/meminfo_free", "free"},
    {"data/meminfo_total", "total"},
};

static int add(xcp_value *st, const char *key, const char *value)
{
    xcp_value v;
    int rc;

    if ((rc = xcp_value_set_string(&v, value)) < 0)
        return rc;
    return xcp_value_struct_add(st, key, &v);
}

/* The entries of data that table names, under their XAPI keys. */
static int fixed_keys(xcp_value *st, const struct key_map *t, size_t nt,
                      const xcp_hv_guest_datum *data, size_t n)
{
    size_t i, k;
    int rc;

    xcp_value_set_struct(st);
    for (k = 0; k < nt; k++)
        for (i = 0; i < n; i++)
            if (!strcmp(data[i].path, t[k].path) &&
                (rc = add(st, t[k].key, data[i].value)) < 0)
                return rc;
    return 0;
}

/* networks: attr/vif/N/ipv4/I -> N/ipv4/I (and N/ip for I = 0),
 * attr/vif/N/ipv6/I -> N/ipv6/I, attr/ethN/ip -> N/ip and N/ipv4/0. */
static int networks(xcp_value *st, const xcp_hv_guest_datum *data, size_t n)
{
    char key[64];
    unsigned dev, idx;
    int used, rc;
    size_t i;

    xcp_value_set_struct(st);
    for (i = 0; i < n; i++) {
        const char *p = data[i].path, *v = data[i].value;
        char fam[8];
        used = 0;
        if (sscanf(p, "attr/vif/%u/%4[ipv46]/%u%n", &dev, fam, &idx,
                   &used) == 3 && p[used] == '\0' &&
            (!strcmp(fam, "ipv4") || !strcmp(fam, "ipv6"))) {
            if (!strcmp(fam, "ipv4") && idx == 0) {
                snprintf(key, sizeof(key), "%u/ip", dev);
                if ((rc = add(st, key, v)) < 0)
                    return rc;
            }
            snprintf(key, sizeof(key), "%u/%s/%u", dev, fam, idx);
            if ((rc = add(st, key, v)) < 0)
                return rc;
        } else if (sscanf(p, "attr/eth%u/ip%n", &dev, &used) == 1 &&
                   p[used] == '\0') {
            snprintf(key, sizeof(key), "%u/ip", dev);
            if ((rc = add(st, key, v)) < 0)
                return rc;
            snprintf(key, sizeof(key), "%u/ipv4/0", dev);
            if ((rc = add(st, key, v)) < 0)
                return rc;
        }
    }
    return 0;
}

/* Set field f of o to *v (consumed) if it differs; *chg records it. */
static int set_if(xcp__ctx *c, xcp__obj *o, int f, xcp_value *v, bool *chg)
{
    int rc = 0;

    if (!xcp__value_equal(xcp__obj_val(o, f), v)) {
        *chg = true;
        rc = xcp__db_set(c->db, o, f, v);
    }
    xcp_value_dispose(v);
    return rc;
}

int xcp__vm_drop_guest_metrics(xcp__ctx *c, xcp__obj *vm)
{
    xcp__obj *gm = xcp__db_get_cls(c->db, C(VM_guest_metrics),
                                   xcp__obj_str(vm, F(VM, guest_metrics)));
    int rc;

    if (!gm)
        return 0;
    if ((rc = xcp__db_set_str(c->db, vm, F(VM, guest_metrics),
                              XCP_NULL_REF)) < 0)
        return rc;
    return xcp__db_destroy(c->db, gm);
}

static int guest_record(xcp__ctx *c, xcp__obj *vm, xcp__obj **out)
{
    int rc;

    *out = xcp__db_get_cls(c->db, C(VM_guest_metrics),
                           xcp__obj_str(vm, F(VM, guest_metrics)));
    if (*out)
        return 0;
    if ((rc = xcp__db_create(c->db, C(VM_guest_metrics), NULL, NULL,
                             out)) < 0)
        return rc;
    return xcp__db_set_str(c->db, vm, F(VM, guest_metrics), (*out)->ref);
}

int xcp__vm_apply_guest_data(xcp__ctx *c, xcp__obj *vm,
                             const xcp_hv_guest_datum *data, size_t n)
{
    xcp__obj *gm;
    xcp_value v;
    bool chg = false;
    int rc;

    if ((rc = guest_record(c, vm, &gm)) < 0)
        return rc;
    if ((rc = fixed_keys(&v, os_version, XCP__ARRAY_LEN(os_version), data,
                         n)) < 0 ||
        (rc = set_if(c, gm, F(VM_guest_metrics, os_version), &v, &chg)) < 0)
        goto fail;
    if ((rc = fixed_keys(&v, pv_drivers_version,
                         XCP__ARRAY_LEN(pv_drivers_version), data, n)) < 0)
        goto fail;
    {
        bool pv = v.u.st.n > 0;
        if ((rc = set_if(c, gm, F(VM_guest_metrics, PV_drivers_version), &v,
                         &chg)) < 0)
            goto fail;
        xcp_value_set_bool(&v, pv);
        if ((rc = set_if(c, gm, F(VM_guest_metrics, PV_drivers_detected), &v,
                         &chg)) < 0)
            goto fail;
        xcp_value_set_bool(&v, pv);
        if ((rc = set_if(c, gm, F(VM_guest_metrics, PV_drivers_up_to_date),
                         &v, &chg)) < 0)
            goto fail;
    }
    if ((rc = fixed_keys(&v, memory, XCP__ARRAY_LEN(memory), data, n)) < 0 ||
        (rc = set_if(c, gm, F(VM_guest_metrics, memory), &v, &chg)) < 0 ||
        (rc = networks(&v, data, n)) < 0 ||
        (rc = set_if(c, gm, F(VM_guest_metrics, networks), &v, &chg)) < 0)
        goto fail;
    xcp_value_set_bool(&v, true);
    if ((rc = set_if(c, gm, F(VM_guest_metrics, live), &v, &chg)) < 0)
        return rc;
    if (chg)
        rc = xcp__db_set_time(c->db, gm, F(VM_guest_metrics, last_updated),
                              xcp__now());
    return rc;
fail:
    xcp_value_dispose(&v);
    return rc;
}

int xcp__vm_update_guest_metrics(xcp__ctx *c, xcp__obj *vm)
{
    xcp_hv_guest_datum *data = NULL;
    xcp_hv_error e;
    size_t n = 0;
    int64_t domid = xcp__obj_int(vm, F(VM, domid));
    int rc;

    /* A driver without an agent channel, or a domain gone meanwhile: no
     * news. The monitor reconciles a vanished domain on its own event. */
    if (domid < 0 ||
        xcp__hv_domain_guest_data(c->e->hv, (uint32_t)domid, &data, &n,
                                  &e) < 0 ||
        n == 0) {
        free(data);
        return 0;
    }
    rc = xcp__vm_apply_guest_data(c, vm, data, n);
    free(data);
    return rc;
}
