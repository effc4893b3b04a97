/*
 * hv/sim/sim_live.c - the disks of running domains: the back end paused
 * and reopened around a change of its image (as XAPI pauses tapdisk), and
 * the virtual size the guest sees, read from the image when the back end
 * opens it; and its writes moved onto an overlay at a snapshot
 * (disk_snapshot, as QEMU does on Xen).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sim_int.h"

#define QCOW2_MAGIC "QFI\xfb"
#define VHD_COOKIE "conectix"
#define VHD_FOOTER 512

static uint64_t be64(const unsigned char *p)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static int bad_image(const char *path, const char *format, xcp_hv_error *err)
{
    return xcp__hv_error_set(err, -EINVAL, "sim: %s is no %s image", path,
                             format);
}

int xcp__sim_image_size(const char *path, const char *format, uint64_t *out,
                        xcp_hv_error *err)
{
    unsigned char b[VHD_FOOTER];
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
    ssize_t n = 0;

    if (fd < 0 || fstat(fd, &st) < 0) {
        rc = xcp__hv_error_set(err, -errno, "sim: %s: %s", path,
                               strerror(errno));
        goto out;
    }
    if (!format || !strcmp(format, "raw")) {
        *out = (uint64_t)st.st_size;
    } else if (!strcmp(format, "qcow2")) {
        /* header: magic, version, backing offset/size, cluster bits, size */
        n = pread(fd, b, 32, 0);
        if (n != 32 || memcmp(b, QCOW2_MAGIC, 4) != 0)
            rc = bad_image(path, format, err);
        else
            *out = be64(b + 24);
    } else if (!strcmp(format, "vhd")) {
        /* footer at the end: cookie, ..., current size at 48 */
        if (st.st_size >= VHD_FOOTER)
            n = pread(fd, b, VHD_FOOTER, st.st_size - VHD_FOOTER);
        if (n != VHD_FOOTER || memcmp(b, VHD_COOKIE, 8) != 0)
            rc = bad_image(path, format, err);
        else
            *out = be64(b + 48);
    } else {
        rc = bad_image(path, format, err);
    }
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

/*
 * The virtual size of the image at path as the back end sees it when it
 * opens it: through the library's image operations; a sim driven
 * without them (its own unit tests) reads the header's size field.
 */
static int back_end_size(struct sim *s, const char *path,
                         const char *format, uint64_t *out,
                         xcp_hv_error *err)
{
    xcp_hv_image *im;
    int rc;

    if (!s->img)
        return xcp__sim_image_size(path, format, out, err);
    if ((rc = s->img->open(&im, path, format, true, err)) < 0)
        return rc;
    *out = s->img->size(im);
    return s->img->close(im, err);
}

int xcp__sim_live_disk(struct sim *s, xcp_hv_op op, uint32_t domid,
                      const char *vdev, const char *what, struct dom **d,
                      struct disk **k, xcp_hv_error *err)
{
    int rc = xcp__sim_live_dom(s, op, domid, what, d, err);

    if (rc < 0)
        return rc;
    if (!(*k = xcp__sim_disk_find(*d, vdev)))
        return xcp__hv_error_set(err, -ENODEV,
                                 "sim: domain %" PRIu32 " (VM %s) has no "
                                 "disk %s", domid, (*d)->uuid,
                                 vdev ? vdev : "(null)");
    if ((*k)->cdrom || !(*k)->path)
        return xcp__hv_error_set(err, -ENOTSUP,
                                 "sim: domain %" PRIu32 ": %s is a CD drive",
                                 domid, vdev);
    return xcp__sim_disk_follow(s, domid, *k, err);
}

int xcp__sim_disk_follow(struct sim *s, uint32_t domid, struct disk *k,
                         xcp_hv_error *err)
{
    char dir[PATH_MAX], *slash, *p = NULL;
    struct dirent *de;
    struct stat st;
    DIR *dd;

    if (!k->ino ||
        (stat(k->path, &st) == 0 && (uint64_t)st.st_dev == k->dev &&
         (uint64_t)st.st_ino == k->ino))
        return 0;
    snprintf(dir, sizeof(dir), "%s", k->path);
    if ((slash = strrchr(dir, '/')))
        *(slash == dir ? slash + 1 : slash) = '\0';
    else
        snprintf(dir, sizeof(dir), ".");
    if (!(dd = opendir(dir)))
        return xcp__hv_error_set(err, -errno, "sim: domain %" PRIu32 ": %s: "
                                 "%s", domid, dir, strerror(errno));
    while (!p && (de = readdir(dd)))
        if (fstatat(dirfd(dd), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            (uint64_t)st.st_dev == k->dev && (uint64_t)st.st_ino == k->ino &&
            asprintf(&p, "%s/%s", strcmp(dir, "/") ? dir : "", de->d_name) < 0)
            p = NULL;
    closedir(dd);
    if (!p)
        return xcp__hv_error_set(err, -ENOENT, "sim: domain %" PRIu32 ": the "
                                 "file its back end held as %s is gone",
                                 domid, k->path);
    free(k->path);
    k->path = p;
    xcp__sim_mark_dirty(s, domid);
    return 0;
}

int xcp__sim_disk_pause(void *self, uint32_t domid, const char *vdev,
                        xcp_hv_error *err)
{
    struct sim *s = self;
    struct disk *k;
    struct dom *d;
    int rc = xcp__sim_live_disk(s, XCP_HV_OP_DISK_PAUSE, domid, vdev,
                       "pause a disk of", &d, &k, err);

    if (rc < 0)
        return rc;
    if (k->paused)
        return xcp__hv_error_set(err, -EBUSY,
                                 "sim: domain %" PRIu32 ": disk %s is "
                                 "paused already", domid, vdev);
    k->paused = true;
    return xcp__sim_commit(s, domid, err);
}

int xcp__sim_disk_reopen(void *self, uint32_t domid, const char *vdev,
                         const char *path, const char *format,
                         xcp_hv_error *err)
{
    struct sim *s = self;
    struct disk *k;
    struct dom *d;
    uint64_t size;
    char *p, *f;
    int rc = xcp__sim_live_disk(s, XCP_HV_OP_DISK_REOPEN, domid, vdev,
                       "reopen a disk of", &d, &k, err);

    if (rc < 0)
        return rc;
    if (!k->paused)
        return xcp__hv_error_set(err, -EINVAL,
                                 "sim: domain %" PRIu32 ": disk %s is not "
                                 "paused", domid, vdev);
    if (!format)
        format = "raw";
    /* As the back end opens it: the image must be there and readable. */
    if ((rc = xcp__sim_need_file(d->uuid, "disk image", path, err)) < 0 ||
        (rc = back_end_size(s, path, format, &size, err)) < 0)
        return rc;
    p = strdup(path);
    f = strdup(format);
    if (!p || !f) {
        free(p);
        free(f);
        return oom(err);
    }
    free(k->path);
    free(k->format);
    k->path = p;
    k->format = f;
    k->size = size;
    k->paused = false;
    k->dev = k->ino = 0;        /* opened by its name */
    xcp__sim_mark_dirty(s, domid);
    return xcp__sim_commit(s, domid, err);
}

int xcp__sim_disk_size(void *self, uint32_t domid, const char *vdev,
                       uint64_t *bytes, xcp_hv_error *err)
{
    struct sim *s = self;
    struct disk *k;
    struct dom *d;
    int rc = xcp__sim_live_disk(s, XCP_HV_OP_DISK_SIZE, domid, vdev,
                       "read the size of a disk of", &d, &k, err);

    if (rc < 0)
        return rc;
    /* A state kept before sizes were: read now, once. */
    if (!k->size &&
        (rc = back_end_size(s, k->path, k->format, &k->size, err)) < 0)
        return rc;
    *bytes = k->size;
    return 0;
}

/* -EBUSY while a disk_stream copy of disk k runs, as QEMU refuses a
 * node its block job holds (the caller cancels it first). */
static int stream_busy(uint32_t domid, const struct disk *k,
                       xcp_hv_error *err)
{
    if (!k->stream_start)
        return 0;
    return xcp__hv_error_set(err, -EBUSY, "sim: domain %" PRIu32 ": disk "
                             "%s is busy: it is in use by block job "
                             "stream", domid, k->vdev);
}

/*
 * Opens the image of disk k as its back end holds it, runs the change
 * (resize, cbt) through the library's image operations, and closes it:
 * any format the library has (raw, qcow2, VHD).
 */
static int back_end_change(struct sim *s, uint32_t domid, struct disk *k,
                           uint64_t bytes, int cbt, xcp_hv_error *err)
{
    xcp_hv_image *im;
    xcp_hv_error e;
    int rc, c;

    if (k->paused)
        return xcp__hv_error_set(err, -EBUSY, "sim: domain %" PRIu32
                                 ": disk %s is paused", domid, k->vdev);
    if ((rc = stream_busy(domid, k, err)) < 0)
        return rc;
    if (!s->img)
        return xcp__hv_error_set(err, -ENOTSUP, "sim: %s: no image library "
                                 "was handed to the driver", k->path);
    if ((rc = s->img->open(&im, k->path, k->format, false, err)) < 0)
        return rc;
    rc = cbt < 0 ? s->img->resize(im, bytes, err)
                 : s->img->cbt(im, cbt > 0, err);
    c = s->img->close(im, rc < 0 ? &e : err);
    return rc < 0 ? rc : c;
}

int xcp__sim_disk_resize(void *self, uint32_t domid, const char *vdev,
                         uint64_t bytes, xcp_hv_error *err)
{
    struct sim *s = self;
    struct disk *k;
    struct dom *d;
    int rc = xcp__sim_live_disk(s, XCP_HV_OP_DISK_RESIZE, domid, vdev,
                                "resize a disk of", &d, &k, err);

    if (rc < 0)
        return rc;
    if (bytes < k->size || bytes % 512)
        return xcp__hv_error_set(err, -EINVAL, "sim: domain %" PRIu32
                                 ": disk %s: %" PRIu64 " bytes is below its "
                                 "%" PRIu64 " or no whole sectors", domid,
                                 vdev, bytes, k->size);
    if ((rc = back_end_change(s, domid, k, bytes, -1, err)) < 0)
        return rc;
    k->size = bytes;
    xcp__sim_mark_dirty(s, domid);
    return xcp__sim_commit(s, domid, err);
}

int xcp__sim_disk_cbt(void *self, uint32_t domid, const char *vdev,
                      const char *bitmap, bool on, xcp_hv_error *err)
{
    struct sim *s = self;
    struct disk *k;
    struct dom *d;
    int rc = xcp__sim_live_disk(s, XCP_HV_OP_DISK_CBT, domid, vdev,
                                "switch the tracking of a disk of", &d, &k,
                                err);

    if (rc < 0)
        return rc;
    if (!strcmp(k->format, "raw"))
        return xcp__hv_error_set(err, -ENOTSUP, "sim: domain %" PRIu32
                                 ": disk %s is raw: no tracking", domid,
                                 vdev);
    /* the library's image operations keep one tracking, its own */
    if (!bitmap || strcmp(bitmap, XCP_HV_CBT_BITMAP) != 0)
        return xcp__hv_error_set(err, -EINVAL, "sim: bitmap %s is not "
                                 "the library's (%s)", bitmap ? bitmap : "",
                                 XCP_HV_CBT_BITMAP);
    if (on && k->cbt)
        return xcp__hv_error_set(err, -EEXIST, "sim: domain %" PRIu32
                                 ": disk %s has bitmap %s already", domid,
                                 vdev, bitmap);
    if ((rc = back_end_change(s, domid, k, 0, on, err)) < 0)
        return rc;
    k->cbt = on;
    return xcp__sim_commit(s, domid, err);
}

int xcp__sim_disk_snapshot(void *self, uint32_t domid, const char *vdev,
                           const char *overlay, const char *format,
                           xcp_hv_error *err)
{
    struct sim *s = self;
    struct disk *k;
    struct dom *d;
    struct stat st;
    char *p;
    int rc = xcp__sim_live_disk(s, XCP_HV_OP_DISK_SNAPSHOT, domid, vdev,
                                "snapshot a disk of", &d, &k, err);

    if (rc < 0)
        return rc;
    if (k->paused)
        return xcp__hv_error_set(err, -EBUSY,
                                 "sim: domain %" PRIu32 ": disk %s is "
                                 "paused", domid, vdev);
    if ((rc = stream_busy(domid, k, err)) < 0)
        return rc;
    /* what Xen's QEMU can: a qcow2 overlay on a qcow2 image */
    if (!format || strcmp(format, "qcow2") != 0 || !k->format ||
        strcmp(k->format, "qcow2") != 0)
        return xcp__hv_error_set(err, -ENOTSUP,
                                 "sim: domain %" PRIu32 ": disk %s (%s) "
                                 "cannot move onto a %s overlay (qcow2 "
                                 "only)", domid, vdev,
                                 k->format ? k->format : "raw",
                                 format ? format : "raw");
    if ((rc = xcp__sim_need_file(d->uuid, "overlay", overlay, err)) < 0 ||
        (rc = xcp__hv_overlay_check(overlay, k->path, err)) < 0)
        return rc;
    if (!(p = strdup(overlay)))
        return oom(err);
    /* the back end holds the overlay's file from now on, whatever name
     * the caller gives it (the next pause/reopen names the image again) */
    free(k->path);
    k->path = p;
    /* QEMU holds the overlay's descriptor: renamed, it is the same file,
     * which the back end goes on writing (xcp__sim_disk_follow) */
    if (stat(p, &st) < 0)
        return xcp__hv_error_set(err, -errno, "sim: %s: %s", p,
                                 strerror(errno));
    k->dev = (uint64_t)st.st_dev;
    k->ino = (uint64_t)st.st_ino;
    /* (settled by xcp__sim_live_disk) */
    k->switch_vcpu_ns = max_u64(d->vcpu_ns[0], 1);
    xcp__sim_mark_dirty(s, domid);
    return xcp__sim_commit(s, domid, err);
}

/* The copy of disk k: the chain streamed into its image, keeping keep
 * images, through the library's image operations, under the host's lock
 * (the guest's writes wait, as QEMU's copy and its guest's requests never
 * touch a cluster at once). */
static int stream_copy(struct sim *s, struct disk *k, unsigned keep,
                       const char *backing, uint64_t *done, uint64_t *total,
                       xcp_hv_error *err)
{
    xcp_hv_image *im;
    xcp_hv_error e;
    int c, rc;

    if ((rc = s->img->open(&im, k->path, k->format, false, err)) < 0)
        return rc;
    rc = s->img->stream(im, keep ? backing : NULL, err);
    *done = *total = s->img->size(im);
    c = s->img->close(im, rc < 0 ? &e : err);
    return rc < 0 ? rc : c;
}

/* Follows the copy under way on disk k (1 while it runs), and does it
 * when its time is over (its result). */
static int stream_follow(struct sim *s, uint32_t domid, struct disk *k,
                         uint64_t *done, uint64_t *total, xcp_hv_error *err)
{
    uint64_t now = xcp__sim_now(s), end = k->stream_start + s->opt.stream_ns;
    xcp_hv_error e;
    int rc, c;

    *total = k->size ? k->size : 1;
    if (now < end) {
        *done = (uint64_t)((double)*total *
                           (double)(now - min_u64(now, k->stream_start)) /
                           (double)s->opt.stream_ns);
        return 1;
    }
    rc = stream_copy(s, k, k->stream_keep, k->stream_backing, done, total,
                     err);
    /* over, done or failed: QEMU's concluded job is dismissed */
    k->stream_start = 0;
    xcp__sim_mark_dirty(s, domid);
    c = xcp__sim_commit(s, domid, rc < 0 ? &e : err);
    return rc < 0 ? rc : c;
}

int xcp__sim_disk_stream(void *self, uint32_t domid, const char *vdev,
                         unsigned keep, const char *backing, uint64_t *done,
                         uint64_t *total, xcp_hv_error *err)
{
    struct sim *s = self;
    struct disk *k;
    struct dom *d;
    int rc = xcp__sim_live_disk(s, XCP_HV_OP_DISK_STREAM, domid, vdev,
                                "coalesce a disk of", &d, &k, err);

    *done = *total = 0;
    if (rc < 0)
        return rc;
    /* a copy under way (of any instance: it is in the host's state) */
    if (k->stream_start)
        return stream_follow(s, domid, k, done, total, err);
    if (k->paused)
        return xcp__hv_error_set(err, -EBUSY, "sim: domain %" PRIu32
                                 ": disk %s is paused", domid, vdev);
    if (!k->format || strcmp(k->format, "qcow2") != 0)
        return xcp__hv_error_set(err, -ENOTSUP, "sim: domain %" PRIu32
                                 ": disk %s (%s) cannot be streamed into "
                                 "(qcow2 only)", domid, vdev,
                                 k->format ? k->format : "raw");
    if (keep && (!backing || !backing[0]))
        return xcp__hv_error_set(err, -EINVAL, "sim: domain %" PRIu32
                                 ": disk %s: no backing file to keep",
                                 domid, vdev);
    if (!s->img || s->img->version < 2 || !s->img->stream)
        return xcp__hv_error_set(err, -ENOTSUP, "sim: no image library "
                                 "that streams was handed to the driver");
    if (!s->opt.stream_ns)
        return stream_copy(s, k, keep, backing, done, total, err);
    if (keep && strlen(backing) >= sizeof(k->stream_backing))
        return xcp__hv_error_set(err, -EINVAL, "sim: backing file name "
                                 "%.64s... too long", backing);
    /* a job that runs for opt.stream_ns, followed by the next calls */
    k->stream_start = max_u64(xcp__sim_now(s), 1);
    k->stream_keep = keep;
    snprintf(k->stream_backing, sizeof(k->stream_backing), "%s",
             keep ? backing : "");
    *total = k->size ? k->size : 1;
    xcp__sim_mark_dirty(s, domid);
    if ((rc = xcp__sim_commit(s, domid, err)) < 0)
        return rc;
    return 1;
}

int xcp__sim_disk_stream_cancel(void *self, uint32_t domid, const char *vdev,
                                xcp_hv_error *err)
{
    struct sim *s = self;
    struct disk *k;
    struct dom *d;
    int rc = xcp__sim_live_disk(s, XCP_HV_OP_DISK_STREAM_CANCEL, domid, vdev,
                                "cancel the coalesce of a disk of", &d, &k,
                                err);

    if (rc < 0)
        return rc;
    if (!k->stream_start)
        return 0;
    /* nothing was written yet: the sim copies at the end */
    k->stream_start = 0;
    xcp__sim_mark_dirty(s, domid);
    if ((rc = xcp__sim_commit(s, domid, err)) < 0)
        return rc;
    return 1;
}

int xcp__sim_disk_switched(void *self, uint32_t domid, const char *vdev,
                           uint64_t *vcpu_ns, xcp_hv_error *err)
{
    return xcp__sim_disk_u64(self, domid, vdev,
                             offsetof(struct disk, switch_vcpu_ns),
                             "read the snapshot instant of", vcpu_ns, err);
}
