/*
 * hv/sim/sim_dev.c - a domain's devices: disks (and CD drives) and NICs,
 * checked as the backends would, and plugged, unplugged and changed live.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf */
#endif
#include <errno.h>
#include <sys/stat.h>

#include "sim_int.h"

/* A file the domain will use must exist, as the backends would open it. */
int xcp__sim_need_file(const char *uuid, const char *what, const char *path,
                       xcp_hv_error *err)
{
    struct stat st;

    if (stat(path, &st) < 0)
        return xcp__hv_error_set(err, -errno, "sim: VM %s: %s %s: %s", uuid,
                                 what, path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return xcp__hv_error_set(err, -EISDIR, "sim: VM %s: %s %s: %s", uuid,
                                 what, path, strerror(EISDIR));
    return 0;
}

/* ---- configuration checks ------------------------------------------------ */

static bool vdev_valid(const char *v)
{
    size_t skip;

    if (!v)
        return false;
    if (strncmp(v, "xvd", 3) == 0)
        skip = 3;
    else if (strncmp(v, "hd", 2) == 0 || strncmp(v, "sd", 2) == 0)
        skip = 2;
    else
        return false;
    v += skip;
    if (!*v)
        return false;
    while (*v >= 'a' && *v <= 'z')
        v++;
    return *v == '\0';
}

static bool format_valid(const char *f)
{
    return !f || strcmp(f, "raw") == 0 || strcmp(f, "qcow2") == 0 ||
           strcmp(f, "vhd") == 0;
}

int xcp__sim_check_disk(const char *uuid, const xcp_hv_disk *k,
                        xcp_hv_error *err)
{
    bool empty = !k->path || !*k->path;

    if (!vdev_valid(k->vdev))
        return xcp__hv_error_set(err, -EINVAL,
                                 "sim: VM %s: invalid virtual device name "
                                 "'%s' (want xvdX, hdX or sdX)", uuid,
                                 k->vdev ? k->vdev : "(null)");
    if (!format_valid(k->format))
        return xcp__hv_error_set(err, -EINVAL,
                                 "sim: VM %s: disk %s: unsupported format "
                                 "'%s' (raw, qcow2, vhd)", uuid, k->vdev,
                                 k->format);
    if (empty && !k->cdrom)
        return xcp__hv_error_set(err, -EINVAL,
                                 "sim: VM %s: disk %s has no image path",
                                 uuid, k->vdev);
    return empty ? 0 : xcp__sim_need_file(uuid, "disk image", k->path, err);
}

int xcp__sim_check_bridge(const char *bridge, xcp_hv_error *err)
{
    if (xcp__hv_bridge_name_valid(bridge))
        return 0;
    return xcp__hv_error_set(err, -ENODEV,
                             "sim: no bridge '%s' can be made (Linux takes "
                             "1 to 15 characters, no '/', ':' or blank)",
                             bridge ? bridge : "");
}

int xcp__sim_check_nic(const char *uuid, const xcp_hv_nic *n, xcp_hv_error *err)
{
    if (n->mac[0] & 1)
        return xcp__hv_error_set(err, -EINVAL,
                                 "sim: VM %s: NIC %" PRIu32 ": "
                                 "%02x:%02x:%02x:%02x:%02x:%02x is a "
                                 "multicast MAC address", uuid, n->devid,
                                 n->mac[0], n->mac[1], n->mac[2], n->mac[3],
                                 n->mac[4], n->mac[5]);
    if (!n->bridge || !*n->bridge)
        return xcp__hv_error_set(err, -EINVAL,
                                 "sim: VM %s: NIC %" PRIu32 " has no bridge",
                                 uuid, n->devid);
    if (!xcp__hv_bridge_name_valid(n->bridge))
        return xcp__sim_check_bridge(n->bridge, err);
    if (n->mtu && (n->mtu < 68 || n->mtu > 65535))
        return xcp__hv_error_set(err, -EINVAL,
                                 "sim: VM %s: NIC %" PRIu32 ": MTU %" PRIu32
                                 " out of range 68..65535", uuid, n->devid,
                                 n->mtu);
    return 0;
}

int xcp__sim_disk_clash(const char *uuid, const struct disk *have, size_t n,
                        const char *vdev, xcp_hv_error *err)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (strcmp(have[i].vdev, vdev) == 0)
            return xcp__hv_error_set(err, -EEXIST,
                                     "sim: VM %s: virtual device %s is "
                                     "already in use", uuid, vdev);
    return 0;
}

int xcp__sim_nic_clash(const char *uuid, const struct nic *have, size_t n,
                       const xcp_hv_nic *nic, xcp_hv_error *err)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (have[i].devid == nic->devid)
            return xcp__hv_error_set(err, -EEXIST,
                                     "sim: VM %s: NIC device %" PRIu32
                                     " is already in use", uuid, nic->devid);
        if (memcmp(have[i].mac, nic->mac, 6) == 0)
            return xcp__hv_error_set(err, -EEXIST,
                                     "sim: VM %s: NIC %" PRIu32 " has the "
                                     "MAC address of NIC %" PRIu32, uuid,
                                     nic->devid, have[i].devid);
    }
    return 0;
}

bool xcp__sim_disk_copy(struct disk *k, const xcp_hv_disk *src)
{
    memset(k, 0, sizeof(*k));
    k->ro = src->readonly || src->cdrom;
    k->cdrom = src->cdrom;
    /* What the guest sees at once; 0 (asked again later) if unreadable. */
    if (!k->cdrom && src->path && *src->path &&
        xcp__sim_image_size(src->path, src->format ? src->format : "raw",
                            &k->size, NULL) < 0)
        k->size = 0;
    return dup_into(&k->path, src->path && *src->path ? src->path : NULL) &&
           dup_into(&k->format, src->format ? src->format : "raw") &&
           dup_into(&k->vdev, src->vdev);
}

bool xcp__sim_nic_copy(struct nic *k, const xcp_hv_nic *src)
{
    memset(k, 0, sizeof(*k));
    memcpy(k->mac, src->mac, 6);
    k->devid = src->devid;
    k->mtu = src->mtu ? src->mtu : 1500;
    return dup_into(&k->bridge, src->bridge);
}

/* ---- devices ------------------------------------------------------------- */

int xcp__sim_disk_plug(void *self, uint32_t domid, const xcp_hv_disk *disk,
                       xcp_hv_error *err)
{
    struct sim *s = self;
    struct disk *v;
    struct dom *d;
    int rc = xcp__sim_live_dom(s, XCP_HV_OP_DISK_PLUG, domid,
                               "plug a disk into", &d, err);

    if (rc == 0)
        rc = xcp__sim_check_disk(d->uuid, disk, err);
    if (rc == 0)
        rc =
            xcp__sim_disk_clash(d->uuid, d->disks, d->n_disks, disk->vdev, err);
    if (rc < 0)
        return rc;
    v = realloc(d->disks, (d->n_disks + 1) * sizeof(*v));
    if (!v)
        return oom(err);
    d->disks = v;
    if (!xcp__sim_disk_copy(&v[d->n_disks], disk)) {
        free(v[d->n_disks].path);
        free(v[d->n_disks].format);
        free(v[d->n_disks].vdev);
        return oom(err);
    }
    d->n_disks++;
    xcp__sim_mark_dirty(s, domid);
    return xcp__sim_commit(s, domid, err);
}

struct disk *xcp__sim_disk_find(struct dom *d, const char *vdev)
{
    size_t i;

    for (i = 0; vdev && i < d->n_disks; i++)
        if (strcmp(d->disks[i].vdev, vdev) == 0)
            return &d->disks[i];
    return NULL;
}

static int no_disk(const struct dom *d, const char *vdev, xcp_hv_error *err)
{
    return xcp__hv_error_set(err, -ENOENT,
                             "sim: domain %" PRIu32 " (VM %s) has no disk "
                             "%s", d->domid, d->uuid, vdev ? vdev : "(null)");
}

int xcp__sim_disk_unplug(void *self, uint32_t domid, const char *vdev,
                         bool force, xcp_hv_error *err)
{
    struct sim *s = self;
    struct disk *k;
    struct dom *d;
    int rc = xcp__sim_live_dom(s, XCP_HV_OP_DISK_UNPLUG, domid,
                               "unplug a disk from", &d, err);

    (void)force; /* sim guests always release their devices */
    if (rc < 0)
        return rc;
    k = xcp__sim_disk_find(d, vdev);
    if (!k)
        return no_disk(d, vdev, err);
    free(k->path);
    free(k->format);
    free(k->vdev);
    memmove(k, k + 1, (size_t)(d->disks + d->n_disks - k - 1) * sizeof(*k));
    d->n_disks--;
    xcp__sim_mark_dirty(s, domid);
    return xcp__sim_commit(s, domid, err);
}

int xcp__sim_cdrom_insert(void *self, uint32_t domid, const char *vdev,
                          const char *path, const char *format,
                          xcp_hv_error *err)
{
    struct sim *s = self;
    xcp_hv_disk want;
    struct disk *k;
    struct dom *d;
    char *p = NULL, *f = NULL;
    int rc = xcp__sim_live_dom(s, XCP_HV_OP_CDROM_INSERT, domid,
                               "change the CD of", &d, err);

    if (rc < 0)
        return rc;
    k = xcp__sim_disk_find(d, vdev);
    if (!k)
        return no_disk(d, vdev, err);
    if (!k->cdrom)
        return xcp__hv_error_set(err, -EINVAL,
                                 "sim: domain %" PRIu32 ": %s is not a CD "
                                 "drive", domid, vdev);
    memset(&want, 0, sizeof(want));
    want.path = path;
    want.format = format;
    want.vdev = vdev;
    want.cdrom = true;
    rc = xcp__sim_check_disk(d->uuid, &want, err);
    if (rc < 0)
        return rc;
    if (!dup_into(&p, path && *path ? path : NULL) ||
        !dup_into(&f, format ? format : "raw")) {
        free(p);
        return oom(err);
    }
    free(k->path);
    free(k->format);
    k->path = p;
    k->format = f;
    xcp__sim_mark_dirty(s, domid);
    return xcp__sim_commit(s, domid, err);
}

int xcp__sim_nic_plug(void *self, uint32_t domid, const xcp_hv_nic *nic,
                      xcp_hv_error *err)
{
    struct sim *s = self;
    struct nic *v;
    struct dom *d;
    int rc = xcp__sim_live_dom(s, XCP_HV_OP_NIC_PLUG, domid,
                               "plug a NIC into", &d, err);

    if (rc == 0)
        rc = xcp__sim_check_nic(d->uuid, nic, err);
    if (rc == 0)
        rc = xcp__sim_nic_clash(d->uuid, d->nics, d->n_nics, nic, err);
    if (rc < 0)
        return rc;
    v = realloc(d->nics, (d->n_nics + 1) * sizeof(*v));
    if (!v)
        return oom(err);
    d->nics = v;
    if (!xcp__sim_nic_copy(&v[d->n_nics], nic))
        return oom(err);
    d->n_nics++;
    xcp__sim_mark_dirty(s, domid);
    return xcp__sim_commit(s, domid, err);
}

int xcp__sim_nic_unplug(void *self, uint32_t domid, uint32_t devid, bool force,
                        xcp_hv_error *err)
{
    struct sim *s = self;
    struct dom *d;
    size_t i;
    int rc = xcp__sim_live_dom(s, XCP_HV_OP_NIC_UNPLUG, domid,
                               "unplug a NIC from", &d, err);

    (void)force;
    if (rc < 0)
        return rc;
    for (i = 0; i < d->n_nics && d->nics[i].devid != devid; i++)
        ;
    if (i == d->n_nics)
        return xcp__hv_error_set(err, -ENOENT,
                                 "sim: domain %" PRIu32 " (VM %s) has no "
                                 "NIC %" PRIu32, domid, d->uuid, devid);
    free(d->nics[i].bridge);
    memmove(&d->nics[i], &d->nics[i + 1],
            (d->n_nics - i - 1) * sizeof(d->nics[0]));
    d->n_nics--;
    xcp__sim_mark_dirty(s, domid);
    return xcp__sim_commit(s, domid, err);
}
