/*
 * VDI.get_nbd_info: where NBD clients read a VDI, as XAPI answers it
 * (one record per address of this host on a network whose purpose holds
 * nbd or insecure_nbd), and the export made ready for the calling
 * session in the embedder's NBD server (xcp_server_set_nbd; xcpd serves
 * it with qemu-storage-daemon, docs/design-nbd.md).
 */
#include "storage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The NBD networks' mode: 1 TLS (some network has nbd), 0 plain
 * (insecure_nbd only), -1 none. add_purpose keeps the two apart. */
static int nbd_mode(xcp__ctx *c)
{
    xcp__obj *const *nets;
    size_t i, n;
    int mode = -1;

    nets = xcp__db_all(c->db, C(network), &n);
    for (i = 0; i < n; i++) {
        if (xcp__net_has_purpose(nets[i], "nbd"))
            return 1;
        if (xcp__net_has_purpose(nets[i], "insecure_nbd"))
            mode = 0;
    }
    return mode;
}

static bool sr_attached_here(xcp__ctx *c, const char *sr)
{
    xcp__obj *const *pbds;
    size_t i, n;

    pbds = xcp__db_all(c->db, C(PBD), &n);
    for (i = 0; i < n; i++)
        if (!strcmp(xcp__obj_str(pbds[i], F(PBD, SR)), sr) &&
            !strcmp(xcp__obj_str(pbds[i], F(PBD, host)), c->e->host) &&
            xcp__obj_bool(pbds[i], F(PBD, currently_attached)))
            return true;
    return false;
}

static bool nbd_network(xcp__ctx *c, const char *ref)
{
    xcp__obj *net = xcp__db_get_cls(c->db, C(network), ref);

    return net && (xcp__net_has_purpose(net, "nbd") ||
                   xcp__net_has_purpose(net, "insecure_nbd"));
}

/* Append one record for addr to the array out. */
static int add_info(xcp_value *out, const char *addr, const char *name,
                    const xcp_server_nbd *nbd)
{
    xcp_value rec, *items;
    int rc;

    if ((rc = xcp__rec_alloc(&rec, C(vdi_nbd_server_info))) < 0)
        return rc;
    xcp_value_set_int(&rec.u.rec.fields[F(vdi_nbd_server_info, port)],
                      nbd->port);
    if (xcp_value_set_string(&rec.u.rec.fields[F(vdi_nbd_server_info,
                                                 exportname)], name) < 0 ||
        xcp_value_set_string(&rec.u.rec.fields[F(vdi_nbd_server_info,
                                                 address)], addr) < 0 ||
        xcp_value_set_string(&rec.u.rec.fields[F(vdi_nbd_server_info, cert)],
                             nbd->cert_pem ? nbd->cert_pem : "") < 0 ||
        xcp_value_set_string(&rec.u.rec.fields[F(vdi_nbd_server_info,
                                                 subject)],
                             nbd->subject ? nbd->subject : "") < 0 ||
        !(items = realloc(out->u.arr.items,
                          (out->u.arr.n + 1) * sizeof(*items)))) {
        xcp_value_dispose(&rec);
        return xcp__oom();
    }
    items[out->u.arr.n++] = rec;
    out->u.arr.items = items;
    return 0;
}

/* This host's attached PIFs on NBD networks. */
static bool nbd_pif(xcp__ctx *c, const xcp__obj *pif)
{
    return !strcmp(xcp__obj_str(pif, F(PIF, host)), c->e->host) &&
           xcp__obj_bool(pif, F(PIF, currently_attached)) &&
           nbd_network(c, xcp__obj_str(pif, F(PIF, network)));
}

/* The addresses of the NBD PIFs, as XAPI lists them: each PIF's IPv4
 * address, then its IPv6 ones in brackets (without their prefix length);
 * with out NULL, only whether there is one (1) or not (0). */
static int add_addresses(xcp__ctx *c, xcp_value *out, const char *name)
{
    xcp__obj *const *pifs;
    const xcp_value *v6;
    char addr[128];
    size_t i, j, n;
    int rc = 0;

    pifs = xcp__db_all(c->db, C(PIF), &n);
    for (i = 0; i < n && rc == 0; i++) {
        if (!nbd_pif(c, pifs[i]))
            continue;
        if (xcp__obj_str(pifs[i], F(PIF, IP))[0])
            rc = out ? add_info(out, xcp__obj_str(pifs[i], F(PIF, IP)), name,
                                &c->e->nbd)
                     : 1;
        v6 = xcp__obj_val(pifs[i], F(PIF, IPv6));
        for (j = 0; rc == 0 && v6 && v6->kind == XCP_VAL_ARRAY &&
                    j < v6->u.arr.n; j++) {
            const char *a = v6->u.arr.items[j].u.s;

            if (v6->u.arr.items[j].kind != XCP_VAL_STRING || !a[0])
                continue;
            snprintf(addr, sizeof(addr), "[%.*s]", (int)strcspn(a, "/"), a);
            rc = out ? add_info(out, addr, name, &c->e->nbd) : 1;
        }
    }
    return rc;
}

static int vdi_get_nbd_info(xcp__ctx *c)
{
    xcp_server_nbd_export ex;
    xcp_sr_vdi_path path;
    xcp__obj *vdi;
    char name[256] = "", why[512] = "", reason[600];
    int rc, mode;

    if ((rc = xcp__arg_obj(c, 0, C(VDI), &vdi)) < 0)
        return rc;
    if (!strcmp(xcp__obj_str(vdi, F(VDI, type)), "cbt_metadata"))
        return XCP__ERR_VDI_INCOMPATIBLE_TYPE(vdi->ref, "cbt_metadata");
    if ((rc = xcp_value_set_array(c->result, 0)) < 0)
        return rc;
    mode = nbd_mode(c);
    if (!c->e->nbd.export_vdi || mode < 0 ||
        !sr_attached_here(c, xcp__obj_str(vdi, F(VDI, SR))) ||
        !add_addresses(c, NULL, NULL))
        return 0;
    if ((rc = xcp__vdi_path(c, vdi, &path)) < 0)
        return rc;
    /* QEMU's vpc driver reads a differencing VHD as if it had no parent:
     * wrong data, so not served (docs/design-nbd.md). */
    if (!strcmp(path.format, "vhd") &&
        xcp__obj_map_str(vdi, F(VDI, sm_config), "vhd-parent"))
        return XCP__ERR_SR_BACKEND_FAILURE(
            "", "cannot export the VDI over NBD: QEMU does not read "
                "differencing VHDs (the VDI has a parent image)", "");
    memset(&ex, 0, sizeof(ex));
    ex.vdi_uuid = xcp__obj_uuid(vdi);
    ex.session = c->session;
    ex.path = path.path;
    ex.format = path.format;
    ex.tls = mode;
    if (c->e->nbd.export_vdi(c->e->nbd.arg, &ex, name, sizeof(name), why,
                             sizeof(why)) < 0) {
        snprintf(reason, sizeof(reason), "cannot export the VDI over NBD: %s",
                 why[0] ? why : "the NBD server failed");
        return XCP__ERR_SR_BACKEND_FAILURE("", reason, "");
    }
    return add_addresses(c, c->result, name);
}

const struct xcp__impl xcp__impl_vdi_nbd[] = {
    {"VDI.get_nbd_info", vdi_get_nbd_info},
    {NULL, NULL},
};
