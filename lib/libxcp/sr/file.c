/*
 * file.c - the `file` SR type: VDIs are image files in a local directory.
 *
 * Layout of an SR directory:
 *   xcp-sr.conf        marker: the SR's uuid, so probe/attach recognise it
 *   <uuid>.qcow2       a VDI (or <uuid>.vhd for a VHD one, <uuid>.raw for
 *                      plain files, e.g. suspend images); the file name is
 *                      the VDI's location and says the image format
 *   <uuid>.meta        optional sidecar, "hidden=1" / "read_only=1" lines,
 *                      absent for an ordinary writable qcow2 VDI; "raw=1"
 *                      for a raw image we created (a raw file has no header
 *                      to tell it from any other file: scan adopts only
 *                      raw images so marked, and qcow2/VHD images whose
 *                      header checks and whose parent is an image of the
 *                      SR, of the same format)
 *   .xcp-tmp-*         debris of an interrupted operation (removed by gc)
 *
 * Snapshots and clones work as XAPI's file/VHD SRs do: the VDI's data
 * moves to a new hidden parent and the VDI's location becomes an empty
 * leaf on top of it, next to the new snapshot or clone, all of the VDI's
 * format (a VHD VDI gets VHD differencing children, as vhd-util makes
 * them).  Parents are named relative ("<uuid>.qcow2", a VHD's relative
 * locators), so an SR directory can be moved or mounted elsewhere.  The
 * image formats are reached through image.h only.
 *
 * The driver keeps no state: everything is found again on disk, so each
 * step of a multi-file operation is ordered so that a crash leaves a
 * consistent SR, at worst with an orphan that gc removes.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <xcp/sys/sr.h>

#include "../core/core.h"
#include "file.h"
#include "image.h"
#include "image_stream.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define MARKER "xcp-sr.conf"
#define TMP_PREFIX ".xcp-tmp-"
/* The new leaf of a live snapshot (vdi_cow_live) before it takes the
 * VDI's name: LIVE_PREFIX "<location>.<new parent's uuid>" (a name never
 * used twice: the writer may still know the file by it). */
#define LIVE_PREFIX ".xcp-live-"
/* Longest chain we build, as XAPI's VHD SRs ("snapshot chain too long"). */
#define MAX_CHAIN 30
#define UUID_LEN 36
/*
 * The collector's files in the SR directory (not debris: remove_debris
 * keeps them; SR.destroy removes them):
 *   GC_LOCK     flock()ed by the run that may merge, so that two runs
 *               (the background one and a synchronous one, or two
 *               processes) never write into one parent together
 *   GC_JOURNAL  the merge under way, written ahead of it:
 *               "merge <node> <parent> copy|reparent"
 */
#define GC_LOCK "xcp-gc.lock"
#define GC_JOURNAL "xcp-gc.journal"

/* The file SR's short name for the SR types' one failure filler. */
#define sr_fail xcp__srt_fail

/* All VDIs of an SR, as scan reports them. */
struct vdi_list {
    xcp_sr_vdi_info *v;
    size_t n;
    size_t cap;
};

int xcp__srt_fail(xcp_sr_error *err, int code, xcp_sr_error_kind kind,
                 const char *fmt, ...)
{
    va_list ap;

    if (err) {
        err->code = code;
        err->kind = kind;
        va_start(ap, fmt);
        vsnprintf(err->reason, sizeof(err->reason), fmt, ap);
        va_end(ap);
    }
    return code;
}

/* The kind of failure an errno from storage is. */
static xcp_sr_error_kind errno_kind(int code)
{
    return code == -ENOSPC || code == -EDQUOT ? XCP_SR_ERR_FULL
                                              : XCP_SR_ERR_BACKEND;
}

/* Wrap a message from the image layer. */
static int img_fail(xcp_sr_error *err, int code, const char *what,
                    const char *msg)
{
    return sr_fail(err, code, errno_kind(code), "%s failed [opterr=%s]",
                   what, msg);
}

/* A virtual size past fmt's limit: sm's VDISize error ("VDI Invalid
 * size", code 79), naming the sizes. */
static int size_fail(xcp_sr_error *err, const char *fmt, uint64_t size)
{
    return sr_fail(err, -EFBIG, XCP_SR_ERR_VDI_SIZE,
                   "VDI Invalid size [opterr=%llu bytes is beyond the %s "
                   "limit of %llu bytes]", (unsigned long long)size, fmt,
                   (unsigned long long)xcp__image_max_size(fmt));
}

static int join(char *out, size_t len, const char *dir, const char *name,
                xcp_sr_error *err)
{
    if ((size_t)snprintf(out, len, "%s/%s", dir, name) >= len)
        return sr_fail(err, -ENAMETOOLONG, XCP_SR_ERR_BACKEND,
                       "path too long [opterr=%s/%s]", dir, name);
    return 0;
}

const char *xcp__sr_dev_config(const xcp_sr_target *t, const char *key)
{
    size_t i;

    for (i = 0; i < t->n_device_config; i++)
        if (t->device_config[i].key &&
            strcmp(t->device_config[i].key, key) == 0)
            return t->device_config[i].value;
    return NULL;
}

/* The SR directory: device_config:location, else the caller's default. */
static int sr_dir(const xcp_sr_target *t, char *dir, xcp_sr_error *err)
{
    const char *loc = xcp__sr_dev_config(t, "location");
    size_t len;

    if (!loc || !loc[0])
        loc = t->default_location;
    if (!loc || loc[0] != '/')
        return sr_fail(err, -EINVAL, XCP_SR_ERR_BACKEND,
                       "SR location invalid [opterr=device_config:location "
                       "%s]", loc ? "must be an absolute path" : "missing");
    len = strlen(loc);
    while (len > 1 && loc[len - 1] == '/')
        len--;
    if (len >= XCP_SR_PATH_MAX - XCP_SR_LOCATION_MAX)
        return sr_fail(err, -ENAMETOOLONG, XCP_SR_ERR_BACKEND,
                       "SR location invalid [opterr=path too long]");
    memcpy(dir, loc, len);
    dir[len] = '\0';
    return 0;
}

/* ------------------------------------------------------------------ */
/* Names                                                               */

/* Our names hold lower-case uuids, as xcp__uuid_gen makes them. */
static bool valid_uuid(const char *s)
{
    return xcp__uuid_lower_prefix(s) && s[UUID_LEN] == '\0';
}

/* The image formats of a file SR, each the extension of its files. */
static const char *const formats[] = { "qcow2", "vhd", "raw" };

/* Our static name of format name, NULL when a file SR has no such. */
static const char *known_format(const char *name)
{
    size_t i;

    for (i = 0; name && i < sizeof(formats) / sizeof(formats[0]); i++)
        if (strcmp(name, formats[i]) == 0)
            return formats[i];
    return NULL;
}

/* "<uuid>.<format>": the uuid and the format, else false. */
static bool parse_location(const char *loc, char *uuid, const char **fmt)
{
    if (!xcp__uuid_lower_prefix(loc) || loc[UUID_LEN] != '.' ||
        !(*fmt = known_format(loc + UUID_LEN + 1)))
        return false;
    if (uuid) {
        memcpy(uuid, loc, UUID_LEN);
        uuid[UUID_LEN] = '\0';
    }
    return true;
}

/* The image path for a location, refusing anything but our own names
 * (a location comes from the database: no "../" or "/" gets through). */
static int vdi_file(const char *dir, const char *location, char *path,
                    const char **fmt, xcp_sr_error *err)
{
    const char *f;

    if (!parse_location(location, NULL, &f))
        return sr_fail(err, -ENOENT, XCP_SR_ERR_VDI_MISSING,
                       "VDI location invalid [opterr='%.300s' is not "
                       "<uuid>.qcow2, <uuid>.vhd or <uuid>.raw]", location);
    if (fmt)
        *fmt = f;
    return join(path, XCP_SR_PATH_MAX, dir, location, err);
}

/* ------------------------------------------------------------------ */
/* Small text files: the SR marker and the VDI sidecars                */

/* Write a file atomically: temporary name, fsync, rename. */
static int write_small(const char *dir, const char *name, const char *text,
                       xcp_sr_error *err)
{
    char tmp[XCP_SR_PATH_MAX], path[XCP_SR_PATH_MAX], tname[128];
    size_t len = strlen(text);
    int fd, ret;

    snprintf(tname, sizeof(tname), TMP_PREFIX "%.64s", name);
    if ((ret = join(tmp, sizeof(tmp), dir, tname, err)) < 0 ||
        (ret = join(path, sizeof(path), dir, name, err)) < 0)
        return ret;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return sr_fail(err, -errno, errno_kind(-errno),
                       "writing metadata failed [opterr=%s: %s]", tmp,
                       strerror(errno));
    errno = EIO;                /* for a short write, which sets none */
    if (write(fd, text, len) != (ssize_t)len || fsync(fd) < 0)
        ret = -errno;
    close(fd);
    if (ret == 0 && rename(tmp, path) < 0)
        ret = -errno;
    if (ret < 0) {
        unlink(tmp);
        return sr_fail(err, ret, errno_kind(ret),
                       "writing metadata failed [opterr=%s: %s]", path,
                       strerror(-ret));
    }
    return 0;
}

/* Read up to len-1 bytes of a small file; -ENOENT when absent. */
static int read_small(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    ssize_t r;

    if (fd < 0)
        return -errno;
    r = read(fd, buf, len - 1);
    close(fd);
    if (r < 0)
        return -errno;
    buf[r] = '\0';
    return 0;
}

/* Whether a "key=1" line is present in text. */
static bool flag_set(const char *text, const char *key)
{
    size_t klen = strlen(key);
    const char *line = text;

    while (line) {
        if (strncmp(line, key, klen) == 0 && line[klen] == '=' &&
            line[klen + 1] == '1')
            return true;
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return false;
}

static int meta_name(char *out, size_t len, const char *uuid)
{
    return snprintf(out, len, "%s.meta", uuid) >= (int)len ? -ENAMETOOLONG
                                                           : 0;
}

static int read_meta(const char *dir, const char *uuid, bool *hidden,
                     bool *read_only)
{
    char name[64], path[XCP_SR_PATH_MAX], text[256];
    int ret;

    *hidden = *read_only = false;
    meta_name(name, sizeof(name), uuid);
    if (join(path, sizeof(path), dir, name, NULL) < 0)
        return -ENAMETOOLONG;
    ret = read_small(path, text, sizeof(text));
    if (ret == -ENOENT)
        return 0;
    if (ret < 0)
        return ret;
    *hidden = flag_set(text, "hidden");
    *read_only = flag_set(text, "read_only");
    return 0;
}

/* Whether the sidecar of uuid says we created its raw image. */
static bool raw_marked(const char *dir, const char *uuid)
{
    char name[64], path[XCP_SR_PATH_MAX], text[256];

    meta_name(name, sizeof(name), uuid);
    return join(path, sizeof(path), dir, name, NULL) == 0 &&
           read_small(path, text, sizeof(text)) == 0 &&
           flag_set(text, "raw");
}

/* Whether uuid's raw image is present (as itself, not a symlink). */
static bool raw_present(const char *dir, const char *uuid)
{
    char name[64], path[XCP_SR_PATH_MAX];
    struct stat st;

    snprintf(name, sizeof(name), "%s.raw", uuid);
    return join(path, sizeof(path), dir, name, NULL) == 0 &&
           lstat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int put_meta(const char *dir, const char *uuid, bool hidden,
                    bool read_only, bool raw, xcp_sr_error *err)
{
    char name[64], path[XCP_SR_PATH_MAX], text[64];
    int ret;

    meta_name(name, sizeof(name), uuid);
    if (hidden || read_only || raw) {
        snprintf(text, sizeof(text), "hidden=%d\nread_only=%d\n%s", hidden,
                 read_only, raw ? "raw=1\n" : "");
        return write_small(dir, name, text, err);
    }
    ret = join(path, sizeof(path), dir, name, err);
    if (ret == 0 && unlink(path) < 0 && errno != ENOENT)
        ret = sr_fail(err, -errno, XCP_SR_ERR_BACKEND,
                      "removing metadata failed [opterr=%s: %s]", path,
                      strerror(errno));
    return ret;
}

/* Record the flags; an ordinary qcow2 VDI has no sidecar at all. The raw
 * mark stays while its image does. */
static int write_meta(const char *dir, const char *uuid, bool hidden,
                      bool read_only, xcp_sr_error *err)
{
    return put_meta(dir, uuid, hidden, read_only,
                    raw_marked(dir, uuid) && raw_present(dir, uuid), err);
}

/* Mark uuid's raw image as ours, before it is made (a crash leaves an
 * orphan sidecar, which gc removes). */
static int mark_raw(const char *dir, const char *uuid, xcp_sr_error *err)
{
    return put_meta(dir, uuid, false, false, true, err);
}

/* The uuid in the marker of dir; -ENOENT when there is none. */
static int read_marker(const char *dir, char *uuid)
{
    char path[XCP_SR_PATH_MAX], text[512], *p;
    int ret;

    if (join(path, sizeof(path), dir, MARKER, NULL) < 0)
        return -ENAMETOOLONG;
    ret = read_small(path, text, sizeof(text));
    if (ret < 0)
        return ret;
    p = strstr(text, "uuid=");
    if (!p || !xcp__uuid_lower_prefix(p + 5) || (p[5 + UUID_LEN] != '\n' &&
                                      p[5 + UUID_LEN] != '\0'))
        return -EBADMSG;
    memcpy(uuid, p + 5, UUID_LEN);
    uuid[UUID_LEN] = '\0';
    return 0;
}

/* ------------------------------------------------------------------ */
/* Looking at VDIs                                                     */

static int stat_vdi(const char *dir, const char *location,
                    xcp_sr_vdi_info *out, xcp_sr_error *err)
{
    char path[XCP_SR_PATH_MAX], msg[1024];
    xcp__image_info info;
    xcp__image *q;
    const char *fmt;
    bool hidden, ro;
    int ret;

    memset(out, 0, sizeof(*out));
    ret = vdi_file(dir, location, path, &fmt, err);
    if (ret < 0)
        return ret;
    ret = xcp__image_open(&q, path, fmt,
                          XCP__IMAGE_RDONLY | XCP__IMAGE_NO_PARENT, msg,
                          sizeof(msg));
    if (ret == -ENOENT)
        return sr_fail(err, ret, XCP_SR_ERR_VDI_MISSING,
                       "VDI not found [opterr=%s]", msg);
    if (ret < 0)
        return img_fail(err, ret, "VDI inspection", msg);
    ret = xcp__image_get_info(q, &info, msg, sizeof(msg));
    if (ret == 0)
        ret = xcp__image_cbt_get(q, &out->cbt_enabled, NULL, msg,
                                 sizeof(msg));
    xcp__image_close(q);
    if (ret < 0)
        return img_fail(err, ret, "VDI inspection", msg);
    if (strlen(info.parent) >= sizeof(out->parent_location))
        return sr_fail(err, -ENAMETOOLONG, XCP_SR_ERR_BACKEND,
                       "VDI inspection failed [opterr=%s: backing file name "
                       "too long for a location]", path);
    parse_location(location, out->uuid, &fmt);
    ret = read_meta(dir, out->uuid, &hidden, &ro);
    if (ret < 0)
        return sr_fail(err, ret, XCP_SR_ERR_BACKEND,
                       "VDI inspection failed [opterr=%s: metadata: %s]",
                       location, strerror(-ret));
    snprintf(out->location, sizeof(out->location), "%s", location);
    memcpy(out->parent_location, info.parent, strlen(info.parent) + 1);
    snprintf(out->format, sizeof(out->format), "%s", fmt);
    out->virtual_size = info.virtual_size;
    out->physical_utilisation = info.allocated_bytes;
    out->hidden = hidden;
    out->read_only = ro;
    return 0;
}

static void list_free(struct vdi_list *l)
{
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

static int list_add(struct vdi_list *l, const xcp_sr_vdi_info *v)
{
    xcp_sr_vdi_info *nv;

    if (l->n == l->cap) {
        nv = realloc(l->v, (l->cap ? l->cap * 2 : 16) * sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        l->v = nv;
        l->cap = l->cap ? l->cap * 2 : 16;
    }
    l->v[l->n++] = *v;
    return 0;
}

/* What can be said of an image that cannot be opened: its name. */
static void damaged_vdi(const char *dir, const char *location,
                        xcp_sr_vdi_info *v)
{
    const char *fmt;

    memset(v, 0, sizeof(*v));
    parse_location(location, v->uuid, &fmt);
    snprintf(v->location, sizeof(v->location), "%s", location);
    snprintf(v->format, sizeof(v->format), "%s", fmt);
    read_meta(dir, v->uuid, &v->hidden, &v->read_only);
}

static xcp_sr_vdi_info *list_find(struct vdi_list *l, const char *location)
{
    size_t i;

    for (i = 0; i < l->n; i++)
        if (strcmp(l->v[i].location, location) == 0)
            return &l->v[i];
    return NULL;
}

/*
 * Is the file name in dir an image we may adopt?  Only a regular file
 * (never a symlink to elsewhere), and a raw one only when we made it.
 * A qcow2 or VHD image's header is checked by stat_vdi.
 */
static bool adoptable(const char *dir, const char *name, const char *fmt)
{
    char path[XCP_SR_PATH_MAX], uuid[XCP_SR_UUID_BUFLEN];
    struct stat st;

    if (join(path, sizeof(path), dir, name, NULL) < 0 ||
        lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
        return false;
    if (strcmp(fmt, "raw") != 0)
        return true;
    parse_location(name, uuid, &fmt);
    return raw_marked(dir, uuid);
}

/* Forget the images that build on one that was refused (its data would
 * show through them), until none is left. */
static void drop_refused_chains(struct vdi_list *l, struct vdi_list *refused)
{
    bool again = true;
    size_t i;

    while (again) {
        again = false;
        for (i = 0; i < l->n; i++) {
            if (!l->v[i].parent_location[0] ||
                !list_find(refused, l->v[i].parent_location))
                continue;
            if (list_add(refused, &l->v[i]) < 0)
                return;
            l->v[i] = l->v[--l->n];
            again = true;
            break;
        }
    }
}

/*
 * Every image in dir that we can tell is ours (adoptable, and a parent
 * that is an image name of this SR of the same format, not a path: chains
 * are never mixed).  strict: a damaged
 * image fails the whole listing, naming the file, since leaving it out of
 * a scan would make its VDI look deleted.  Otherwise it is listed by name
 * only, so that it can still be destroyed.
 */
static int list_vdis(const char *dir, struct vdi_list *l, bool strict,
                     xcp_sr_error *err)
{
    struct vdi_list refused = { 0 };
    xcp_sr_vdi_info v;
    struct dirent *de;
    const char *fmt, *pfmt;
    DIR *d;
    int ret = 0;

    d = opendir(dir);
    if (!d)
        return sr_fail(err, -errno, XCP_SR_ERR_BACKEND,
                       "SR scan failed [opterr=%s: %s]", dir, strerror(errno));
    while ((de = readdir(d))) {
        if (!parse_location(de->d_name, NULL, &fmt))
            continue;
        if (!adoptable(dir, de->d_name, fmt)) {
            memset(&v, 0, sizeof(v));
            snprintf(v.location, sizeof(v.location), "%s", de->d_name);
            if (list_add(&refused, &v) < 0)
                ret = sr_fail(err, -ENOMEM, XCP_SR_ERR_BACKEND,
                              "SR scan failed [opterr=%s]", "out of memory");
            if (ret < 0)
                break;
            continue;
        }
        ret = stat_vdi(dir, de->d_name, &v, err);
        if (ret == -ENOENT)     /* removed under us */
            continue;
        if (ret < 0 && !strict) {
            damaged_vdi(dir, de->d_name, &v);
            ret = 0;
        }
        if (ret == 0 && v.parent_location[0] &&
            (!parse_location(v.parent_location, NULL, &pfmt) ||
             strcmp(pfmt, v.format) != 0)) {
            ret = list_add(&refused, &v) < 0 ? -ENOMEM : 0;
        } else if (ret == 0) {
            ret = list_add(l, &v) < 0 ? -ENOMEM : 0;
        }
        if (ret == -ENOMEM)
            ret = sr_fail(err, -ENOMEM, XCP_SR_ERR_BACKEND,
                          "SR scan failed [opterr=%s]",
                          "out of memory");
        if (ret < 0)
            break;
    }
    closedir(d);
    if (ret == 0)
        drop_refused_chains(l, &refused);
    list_free(&refused);
    if (ret < 0)
        list_free(l);
    return ret;
}

static size_t count_children(const struct vdi_list *l, const char *location)
{
    size_t i, n = 0;

    for (i = 0; i < l->n; i++)
        if (l->v[i].location[0] &&
            strcmp(l->v[i].parent_location, location) == 0)
            n++;
    return n;
}

/* Delete an image and its sidecar, and forget it in l. */
static int remove_vdi(const char *dir, xcp_sr_vdi_info *v, xcp_sr_error *err)
{
    char path[XCP_SR_PATH_MAX], log[XCP_SR_PATH_MAX];
    int ret;

    ret = join(path, sizeof(path), dir, v->location, err);
    if (ret < 0)
        return ret;
    if (unlink(path) < 0 && errno != ENOENT)
        return sr_fail(err, -errno, XCP_SR_ERR_BACKEND,
                       "VDI delete failed [opterr=%s: %s]", path,
                       strerror(errno));
    /* A VHD's CBT log goes with it (an orphan log is harmless). */
    if (xcp__image_cbt_log_path(path, log, sizeof(log)) == 0)
        unlink(log);
    ret = write_meta(dir, v->uuid, false, false, err);
    v->location[0] = '\0';
    return ret;
}

/* Hidden parents nobody depends on any more go, walking up from
 * `location`.  Returns how many were removed, or a negative code. */
static int gc_up(const char *dir, struct vdi_list *l, const char *location,
                 xcp_sr_error *err)
{
    char next[XCP_SR_LOCATION_MAX];
    xcp_sr_vdi_info *p;
    int removed = 0, ret;

    snprintf(next, sizeof(next), "%s", location);
    while (next[0] && (p = list_find(l, next)) && p->hidden &&
           count_children(l, next) == 0) {
        snprintf(next, sizeof(next), "%s", p->parent_location);
        ret = remove_vdi(dir, p, err);
        if (ret < 0)
            return ret;
        removed++;
    }
    return removed;
}

/* ------------------------------------------------------------------ */
/* SR operations                                                       */

static int sr_space(const char *dir, xcp_sr_stat *out, xcp_sr_error *err)
{
    struct statvfs fs;

    if (statvfs(dir, &fs) < 0)
        return sr_fail(err, -errno, XCP_SR_ERR_BACKEND,
                       "SR stat failed [opterr=%s: %s]", dir, strerror(errno));
    out->physical_size = (uint64_t)fs.f_blocks * fs.f_frsize;
    out->free_space = (uint64_t)fs.f_bavail * fs.f_frsize;
    out->physical_utilisation = (uint64_t)(fs.f_blocks - fs.f_bfree) *
                                fs.f_frsize;
    return 0;
}

static int file_sr_create(const xcp_sr_target *sr, uint64_t *physical_size,
                          xcp_sr_error *err)
{
    char dir[XCP_SR_PATH_MAX], found[XCP_SR_UUID_BUFLEN], text[160];
    xcp_sr_stat st = { 0 };
    struct stat s;
    int ret;

    ret = sr_dir(sr, dir, err);
    if (ret < 0)
        return ret;
    if (!sr->sr_uuid || strlen(sr->sr_uuid) != UUID_LEN ||
        !valid_uuid(sr->sr_uuid))
        return sr_fail(err, -EINVAL, XCP_SR_ERR_BACKEND,
                       "SR create failed [opterr=bad SR uuid]");
    ret = xcp__mkdir_p(dir, 0755);
    if (ret == 0 && stat(dir, &s) < 0)
        ret = -errno;
    else if (ret == 0 && !S_ISDIR(s.st_mode))
        ret = -ENOTDIR;
    if (ret < 0)
        return sr_fail(err, ret, XCP_SR_ERR_BACKEND,
                       "SR create failed [opterr=%s: %s]", dir, strerror(-ret));
    if (read_marker(dir, found) != -ENOENT)
        return sr_fail(err, -EEXIST, XCP_SR_ERR_BACKEND,
                       "SR create failed [opterr=%s already holds an SR "
                       "(marker " MARKER ")]", dir);
    snprintf(text, sizeof(text),
             "# libxcp file SR\nuuid=%s\ntype=file\nversion=1\n",
             sr->sr_uuid);
    ret = write_small(dir, MARKER, text, err);
    if (ret < 0)
        return ret;
    ret = xcp__fsync_dir(dir);
    if (ret < 0)
        return sr_fail(err, ret, XCP_SR_ERR_BACKEND,
                       "SR create failed [opterr=%s: %s]", dir, strerror(-ret));
    ret = sr_space(dir, &st, err);
    if (ret == 0 && physical_size)
        *physical_size = st.physical_size;
    return ret;
}

static int file_sr_probe(const xcp_sr_target *sr, xcp_sr_probe_cb cb,
                         void *ctx, xcp_sr_error *err)
{
    xcp_sr_probe_info info;
    char dir[XCP_SR_PATH_MAX];
    int ret;

    ret = sr_dir(sr, dir, err);
    if (ret < 0)
        return ret;
    memset(&info, 0, sizeof(info));
    ret = read_marker(dir, info.sr_uuid);
    if (ret == -ENOENT || ret == -ENOTDIR)
        return 0;
    if (ret < 0)
        return sr_fail(err, ret, XCP_SR_ERR_BACKEND,
                       "SR probe failed [opterr=%s/" MARKER
                       ": %s]", dir, strerror(-ret));
    snprintf(info.type, sizeof(info.type), "file");
    snprintf(info.path, sizeof(info.path), "%s", dir);
    return cb(ctx, &info);
}

/* The directory of an existing SR whose marker matches sr->sr_uuid. */
static int attached_dir(const xcp_sr_target *sr, char *dir, xcp_sr_error *err)
{
    char found[XCP_SR_UUID_BUFLEN];
    int ret;

    ret = sr_dir(sr, dir, err);
    if (ret < 0)
        return ret;
    ret = read_marker(dir, found);
    if (ret < 0)
        return sr_fail(err, ret, XCP_SR_ERR_BACKEND,
                       "The SR is not available [opterr=%s: no usable "
                       MARKER ": %s]", dir, strerror(-ret));
    if (!sr->sr_uuid || strcmp(found, sr->sr_uuid) != 0)
        return sr_fail(err, -EINVAL, XCP_SR_ERR_BACKEND,
                       "The SR is not available [opterr=%s holds SR %s, "
                       "not %s]", dir, found,
                       sr->sr_uuid ? sr->sr_uuid : "(none)");
    return 0;
}

/*
 * A live snapshot stopped between its writer's switch onto the new leaf
 * and the leaf's rename (insert_parent): the writer may be writing the
 * new leaf already, which shows all the VDI shows (its backing file is
 * the VDI's old image), so the rename is done now.  (Stopped before the
 * switch, the rename gives the VDI an empty leaf on the same data.)
 */
static void finish_live_cow(const char *dir)
{
    char from[XCP_SR_PATH_MAX], to[XCP_SR_PATH_MAX];
    char loc[XCP_SR_LOCATION_MAX];
    const char *name, *dot, *fmt;
    struct dirent *de;
    DIR *d = opendir(dir);

    while (d && (de = readdir(d))) {
        if (strncmp(de->d_name, LIVE_PREFIX, strlen(LIVE_PREFIX)) != 0)
            continue;
        name = de->d_name + strlen(LIVE_PREFIX);
        if (!(dot = strrchr(name, '.')) ||
            (size_t)(dot - name) >= sizeof(loc))
            continue;
        snprintf(loc, sizeof(loc), "%.*s", (int)(dot - name), name);
        if (parse_location(loc, NULL, &fmt) &&
            join(from, sizeof(from), dir, de->d_name, NULL) == 0 &&
            join(to, sizeof(to), dir, loc, NULL) == 0 &&
            rename(from, to) == 0)
            xcp__fsync_dir(dir);
    }
    if (d)
        closedir(d);
}

/* Images a writer left in the middle of a change (a qcow2 image's leaks
 * behind its dirty bit, a live snapshot's leaf not yet in place) are made
 * clean at attach, before any VDI of the SR is used. */
static int recover_images(const char *dir, xcp_sr_error *err)
{
    char path[XCP_SR_PATH_MAX], msg[1024];
    const char *fmt;
    struct dirent *de;
    DIR *d;
    int ret = 0;

    finish_live_cow(dir);
    if (!(d = opendir(dir)))
        return sr_fail(err, -errno, XCP_SR_ERR_BACKEND,
                       "SR attach failed [opterr=%s: %s]", dir,
                       strerror(errno));
    while (ret == 0 && (de = readdir(d)))
        if (parse_location(de->d_name, NULL, &fmt) &&
            join(path, sizeof(path), dir, de->d_name, err) == 0 &&
            xcp__image_recover(path, fmt, msg, sizeof(msg)) < 0)
            ret = sr_fail(err, -EIO, XCP_SR_ERR_BACKEND,
                          "SR attach failed [opterr=recovering %s: %s]",
                          de->d_name, msg);
    closedir(d);
    return ret;
}

static int file_sr_attach(const xcp_sr_target *sr, xcp_sr_error *err)
{
    char dir[XCP_SR_PATH_MAX];
    int ret = attached_dir(sr, dir, err);

    return ret < 0 ? ret : recover_images(dir, err);
}

static int file_sr_detach(const xcp_sr_target *sr, xcp_sr_error *err)
{
    /* Nothing was mounted or opened by attach. */
    (void)sr;
    (void)err;
    return 0;
}

/* Remove our leftovers: temporary files and sidecars of missing images. */
static int remove_debris(const char *dir, unsigned *removed,
                         xcp_sr_error *err)
{
    char path[XCP_SR_PATH_MAX], img[XCP_SR_PATH_MAX];
    struct dirent *de;
    struct stat st;
    size_t len, i;
    DIR *d;
    bool orphan;

    d = opendir(dir);
    if (!d)
        return sr_fail(err, -errno, XCP_SR_ERR_BACKEND,
                       "SR gc failed [opterr=%s: %s]", dir, strerror(errno));
    while ((de = readdir(d))) {
        len = strlen(de->d_name);
        orphan = false;
        /* Sidecars (.meta, a VHD's .cbtlog) of an image that is gone. */
        if (len > UUID_LEN && xcp__uuid_lower_prefix(de->d_name) &&
            (strcmp(de->d_name + UUID_LEN, ".meta") == 0 ||
             strcmp(de->d_name + UUID_LEN, ".cbtlog") == 0 ||
             strcmp(de->d_name + UUID_LEN, ".cbtlog.tmp") == 0)) {
            orphan = true;
            for (i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
                snprintf(img, sizeof(img), "%s/%.36s.%s", dir, de->d_name,
                         formats[i]);
                orphan = orphan && stat(img, &st) < 0;
            }
        }
        if (!orphan && strncmp(de->d_name, TMP_PREFIX,
                               strlen(TMP_PREFIX)) != 0)
            continue;
        if (join(path, sizeof(path), dir, de->d_name, NULL) == 0 &&
            unlink(path) == 0 && removed)
            (*removed)++;
    }
    closedir(d);
    return 0;
}

static int file_sr_destroy(const xcp_sr_target *sr, unsigned int flags,
                           xcp_sr_error *err)
{
    char dir[XCP_SR_PATH_MAX], path[XCP_SR_PATH_MAX];
    struct vdi_list l = { 0 };
    size_t i, visible = 0;
    int ret;

    ret = attached_dir(sr, dir, err);
    if (ret < 0)
        return ret;
    ret = list_vdis(dir, &l, false, err);
    if (ret < 0)
        return ret;
    for (i = 0; i < l.n; i++)
        visible += !l.v[i].hidden;
    if (visible && !(flags & XCP_SR_DESTROY_FORCE)) {
        ret = sr_fail(err, -ENOTEMPTY, XCP_SR_ERR_NOT_EMPTY,
                      "SR destroy failed [opterr=%s still holds %zu VDIs]",
                      dir, visible);
        goto out;
    }
    for (i = 0; i < l.n && ret == 0; i++)
        ret = remove_vdi(dir, &l.v[i], err);
    if (ret == 0)
        ret = remove_debris(dir, NULL, err);
    if (ret < 0)
        goto out;
    if (join(path, sizeof(path), dir, GC_JOURNAL, NULL) == 0)
        unlink(path);
    if (join(path, sizeof(path), dir, GC_LOCK, NULL) == 0)
        unlink(path);
    ret = join(path, sizeof(path), dir, MARKER, err);
    if (ret == 0 && unlink(path) < 0)
        ret = sr_fail(err, -errno, XCP_SR_ERR_BACKEND,
                      "SR destroy failed [opterr=%s: %s]", path,
                      strerror(errno));
    /* The directory goes too unless someone else keeps files in it. */
    if (ret == 0)
        rmdir(dir);
out:
    list_free(&l);
    return ret;
}

static int file_sr_scan(const xcp_sr_target *sr, xcp_sr_vdi_cb cb, void *ctx,
                        xcp_sr_error *err)
{
    char dir[XCP_SR_PATH_MAX];
    struct vdi_list l = { 0 };
    size_t i;
    int ret;

    ret = attached_dir(sr, dir, err);
    if (ret == 0)
        ret = list_vdis(dir, &l, true, err);
    for (i = 0; ret == 0 && i < l.n; i++)
        ret = cb(ctx, &l.v[i]);
    list_free(&l);
    return ret;
}

static int file_sr_stat(const xcp_sr_target *sr, xcp_sr_stat *out,
                        xcp_sr_error *err)
{
    char dir[XCP_SR_PATH_MAX];
    int ret;

    ret = attached_dir(sr, dir, err);
    if (ret < 0)
        return ret;
    return sr_space(dir, out, err);
}

/* ------------------------------------------------------------------ */
/* The collector: removals, merges of hidden nodes, leaf coalesce      */

/* A writable leaf holding at most this much of its own is merged into
 * its parent with its writer paused; a larger one first has its data
 * moved under a new hidden node, which is merged online. */
#define LEAF_PAUSE_MAX (16ull << 20)
/* Such moves before the paused step is taken whatever the leaf holds. */
#define LEAF_ROUNDS 3

static int insert_parent(const char *dir, const xcp_sr_vdi_info *src,
                         const char *puuid, const char *ploc,
                         const xcp__image_cbt *cbt,
                         const xcp_sr_cow_hooks *live, const char *what,
                         xcp_sr_error *err);
static int cbt_load(const char *dir, const char *location,
                    xcp__image_cbt *c, xcp_sr_error *err);
static int cbt_store(const char *dir, const char *location,
                     const xcp__image_cbt *c, xcp_sr_error *err);

/* One collector run over one SR. */
struct gc_run {
    char dir[XCP_SR_PATH_MAX];
    unsigned int flags;
    const xcp_sr_gc_hooks *h;   /* NULL: plain sr_gc */
    const char *what;           /* the image being merged (progress) */
    bool stop;                  /* the progress hook asked to stop */
    xcp_sr_gc_result res;
};

static void run_unlock(struct gc_run *r)
{
    if (r->h && r->h->unlock)
        r->h->unlock(r->h->ctx);
}

static void run_lock(struct gc_run *r)
{
    if (r->h && r->h->lock)
        r->h->lock(r->h->ctx);
}

static int run_progress(void *ctx, uint64_t done, uint64_t total)
{
    struct gc_run *r = ctx;

    if (!r->h || !r->h->progress ||
        r->h->progress(r->h->ctx, r->what, done, total) == 0)
        return 0;
    r->stop = true;
    return -ECANCELED;
}

/* Record the merge of node into parent, at phase ("copy", "reparent"). */
static int journal_put(const char *dir, const char *node,
                       const char *parent, const char *phase,
                       xcp_sr_error *err)
{
    char text[2 * XCP_SR_LOCATION_MAX + 32];

    snprintf(text, sizeof(text), "merge %s %s %s\n", node, parent, phase);
    return write_small(dir, GC_JOURNAL, text, err);
}

/* The merge a run left: 0 and its node, parent and whether its copy was
 * done, or whether it was a leaf's stream (node the leaf); -ENOENT when
 * there is none. */
static int journal_get(const char *dir, char *node, char *parent,
                       bool *copied, bool *stream)
{
    char path[XCP_SR_PATH_MAX], text[2 * XCP_SR_LOCATION_MAX + 32];
    char phase[16];
    const char *fmt;
    int ret;

    if (join(path, sizeof(path), dir, GC_JOURNAL, NULL) < 0)
        return -ENAMETOOLONG;
    if ((ret = read_small(path, text, sizeof(text))) < 0)
        return ret;
    if (sscanf(text, "merge %255s %255s %15s", node, parent, phase) != 3 ||
        !parse_location(node, NULL, &fmt) ||
        !parse_location(parent, NULL, &fmt))
        return -EBADMSG;
    *copied = strcmp(phase, "reparent") == 0;
    *stream = strcmp(phase, "stream") == 0;
    return 0;
}

static void journal_clear(const char *dir)
{
    char path[XCP_SR_PATH_MAX];

    if (join(path, sizeof(path), dir, GC_JOURNAL, NULL) == 0 &&
        unlink(path) == 0)
        xcp__fsync_dir(dir);
}

/* Whether node is a hidden image whose parent is hidden, of its format
 * (not raw), with node its only child: what merge_node takes. */
static bool merge_pair(struct vdi_list *l, const char *node,
                       xcp_sr_vdi_info **n, xcp_sr_vdi_info **p)
{
    *n = list_find(l, node);
    if (!*n || !(*n)->hidden || !(*n)->parent_location[0])
        return false;
    *p = list_find(l, (*n)->parent_location);
    return *p && (*p)->hidden && strcmp((*p)->format, (*n)->format) == 0 &&
           strcmp((*n)->format, "raw") != 0 &&
           count_children(l, (*p)->location) == 1;
}

/* Write what the image of c itself holds into p's; take_cbt: p is to
 * take c's name, and its changed block tracking with it. */
static int commit_into(const char *dir, const xcp_sr_vdi_info *c,
                       const xcp_sr_vdi_info *p, const xcp__progress *pr,
                       bool take_cbt, xcp_sr_error *err)
{
    char ppath[XCP_SR_PATH_MAX], cpath[XCP_SR_PATH_MAX], msg[1024];
    xcp__image *parent = NULL, *child = NULL;
    int ret;

    if ((ret = join(ppath, sizeof(ppath), dir, p->location, err)) < 0 ||
        (ret = join(cpath, sizeof(cpath), dir, c->location, err)) < 0)
        return ret;
    ret = xcp__image_open(&parent, ppath, p->format, 0, msg, sizeof(msg));
    if (ret == 0)
        ret = xcp__image_open(&child, cpath, c->format,
                              XCP__IMAGE_RDONLY | XCP__IMAGE_NO_PARENT, msg,
                              sizeof(msg));
    if (ret == 0)
        ret = xcp__image_commit_progress(child, parent, pr, msg,
                                         sizeof(msg));
    /* The merged image takes c's name (coalesce), so c's tracking state
     * too; a node merged up leaves its parent's name as it was. */
    if (ret == 0 && take_cbt)
        ret = xcp__image_cbt_merge(parent, child, msg, sizeof(msg));
    xcp__image_close(child);
    xcp__image_close(parent);   /* commit flushed it */
    if (ret == -ECANCELED)
        return ret;
    return ret < 0 ? img_fail(err, ret, "VDI coalesce", msg) : 0;
}

static int run_pause(struct gc_run *r, const char *location);
static void run_unpause(struct gc_run *r, const char *location);

/* Rewrite c's parent link as a handle of ours would (the writer paused). */
static int set_parent_paused(const char *path, const xcp_sr_vdi_info *c,
                             const char *parent, char *msg, size_t len)
{
    xcp__image *im;
    int ret;

    ret = xcp__image_open(&im, path, c->format, XCP__IMAGE_NO_PARENT, msg,
                          len);
    if (ret == 0) {
        ret = xcp__image_set_parent(im, parent, msg, len);
        if (ret == 0)
            ret = xcp__image_flush(im, msg, len);
        xcp__image_close(im);
    }
    return ret;
}

/*
 * Point the image c at parent instead (parent shows what its old one
 * does) under whoever writes it (a running guest: the link is rewritten
 * in place, atomic against a kill; a second writable handle would repair
 * the writer's allocations in flight as leaks, and clear its dirty bit).
 * When the link does not fit in place, c's writer is paused (paused:
 * already) for a full rewrite.  1 when that pause is refused (the merge
 * waits for a later run), else 0 or a negative code.
 */
static int reparent(struct gc_run *r, const xcp_sr_vdi_info *c,
                    const char *parent, bool paused, xcp_sr_error *err)
{
    char path[XCP_SR_PATH_MAX], msg[1024];
    int ret;

    if ((ret = join(path, sizeof(path), r->dir, c->location, err)) < 0)
        return ret;
    ret = xcp__image_relink(path, c->format, parent, msg, sizeof(msg));
    if (ret == -ENOSPC) {
        if (!paused && run_pause(r, c->location) < 0)
            return 1;
        ret = set_parent_paused(path, c, parent, msg, sizeof(msg));
        if (!paused)
            run_unpause(r, c->location);
    }
    return ret < 0 ? img_fail(err, ret, "VDI coalesce", msg) : 0;
}

/*
 * The merge step: hidden node into its hidden parent, whose only child
 * it is (qemu-img commit semantics), then node's children point at the
 * parent and node goes.  Entered and left with the SR's lock held:
 *   1. journal "copy"              (ahead of any write)
 *   2. unlocked: node's own clusters written into parent (what reads
 *      through node sees no change: node overrides each cluster written,
 *      and parent has no other reader)
 *   3. locked again: node and parent checked again (a node deleted
 *      meanwhile ends it: nothing to undo)
 *   4. journal "reparent"; each child of node pointed at parent (parent
 *      now shows what node shows); node deleted; journal cleared.
 * A kill anywhere leaves every image reading as before; the next run
 * resumes from the journal (copied: from step 4).  Returns 1 when node
 * was merged, 0 when it was left (gone, changed, or the run stopped).
 */
/*
 * Whether l.v[i] is a child of nloc whose writer must be paused while its
 * parent link changes: a VDI with changed block tracking.  Its writer
 * rewrites the image's header from memory when it stores its bitmaps
 * (QEMU at close, as our library does), which would bring back the link
 * to the deleted node.  Other writers never touch the link, so a relink
 * under them (the link's bytes alone: reparent) is safe, and is what lets
 * a running VM's chain shorten.
 */
static bool visible_child(const struct vdi_list *l, size_t i,
                          const char *nloc)
{
    return l->v[i].location[0] && !l->v[i].hidden &&
           (l->v[i].cbt_enabled || strcmp(l->v[i].format, "vhd") == 0) &&
           strcmp(l->v[i].parent_location, nloc) == 0;
}

/*
 * Pause the writers of node's children that need it (visible_child), as
 * XAPI's collector pauses a tapdisk before relinking its image.  0 with
 * all paused, or -1 with none left paused when one cannot be (a running
 * VM's disk: the merge waits for a later run, its copy being
 * data-neutral meanwhile).
 */
static int pause_children(struct gc_run *r, const struct vdi_list *l,
                          const char *nloc)
{
    size_t i, j;

    for (i = 0; i < l->n; i++) {
        if (!visible_child(l, i, nloc) ||
            run_pause(r, l->v[i].location) == 0)
            continue;
        for (j = 0; j < i; j++)
            if (visible_child(l, j, nloc))
                run_unpause(r, l->v[j].location);
        return -1;
    }
    return 0;
}

static void unpause_children(struct gc_run *r, const struct vdi_list *l,
                             const char *nloc)
{
    size_t i;

    for (i = 0; i < l->n; i++)
        if (visible_child(l, i, nloc))
            run_unpause(r, l->v[i].location);
}

static int merge_node(struct gc_run *r, const char *node, bool copied,
                      xcp_sr_error *err)
{
    char nloc[XCP_SR_LOCATION_MAX], ploc[XCP_SR_LOCATION_MAX];
    xcp__progress pr = { run_progress, r };
    struct vdi_list l = { 0 };
    xcp_sr_vdi_info *n, *p, nv, pv;
    size_t i;
    int ret;

    snprintf(nloc, sizeof(nloc), "%s", node);
    if ((ret = list_vdis(r->dir, &l, false, err)) < 0)
        return ret;
    if (!copied && !merge_pair(&l, nloc, &n, &p)) {
        list_free(&l);
        journal_clear(r->dir);
        return 0;
    }
    if (copied) {
        n = list_find(&l, nloc);
        if (!n || !n->parent_location[0]) {
            list_free(&l);
            journal_clear(r->dir);
            return 0;
        }
    }
    snprintf(ploc, sizeof(ploc), "%s", n->parent_location);
    nv = *n;
    /* No copy for a node whose children could not be relinked now. */
    if (!copied && pause_children(r, &l, nloc) < 0) {
        list_free(&l);
        return 0;
    }
    if (!copied)
        unpause_children(r, &l, nloc);
    list_free(&l);
    if (!copied) {
        if ((ret = journal_put(r->dir, nloc, ploc, "copy", err)) < 0)
            return ret;
        pv = nv;
        snprintf(pv.location, sizeof(pv.location), "%s", ploc);
        r->what = nloc;
        run_unlock(r);
        ret = commit_into(r->dir, &nv, &pv, &pr, false, err);
        run_lock(r);
        if (ret == -ECANCELED)
            return 0;           /* the journal resumes it */
        if (ret < 0)
            return ret;
        if ((ret = list_vdis(r->dir, &l, false, err)) < 0)
            return ret;
        if (!merge_pair(&l, nloc, &n, &p) ||
            strcmp(n->parent_location, ploc) != 0) {
            list_free(&l);
            journal_clear(r->dir);
            return 0;
        }
        list_free(&l);
        if ((ret = journal_put(r->dir, nloc, ploc, "reparent", err)) < 0)
            return ret;
    }
    if ((ret = list_vdis(r->dir, &l, false, err)) < 0)
        return ret;
    if (pause_children(r, &l, nloc) < 0) {
        list_free(&l);
        return 0;               /* the journal resumes it */
    }
    for (i = 0; i < l.n && ret == 0; i++)
        if (l.v[i].location[0] &&
            strcmp(l.v[i].parent_location, nloc) == 0)
            ret = reparent(r, &l.v[i], ploc, visible_child(&l, i, nloc),
                           err);
    unpause_children(r, &l, nloc);
    if (ret > 0) {
        list_free(&l);
        return 0;               /* the journal resumes it */
    }
    if (ret == 0 && (n = list_find(&l, nloc)))
        ret = remove_vdi(r->dir, n, err);
    list_free(&l);
    if (ret < 0)
        return ret;
    journal_clear(r->dir);
    r->res.coalesced++;
    return 1;
}

/*
 * Merge the image c into its hidden parent p, whose only child it is,
 * and give p c's name: c's own clusters written into p, then the rename
 * (atomic).  c shows the same data all along; a kill before the rename
 * leaves p with some of c's clusters, which c overrides, and one after it
 * leaves p's sidecar, which remove_debris removes.
 */
static int coalesce(const char *dir, xcp_sr_vdi_info *p, xcp_sr_vdi_info *c,
                    xcp_sr_error *err)
{
    char ppath[XCP_SR_PATH_MAX], cpath[XCP_SR_PATH_MAX];
    int ret;

    if ((ret = join(ppath, sizeof(ppath), dir, p->location, err)) < 0 ||
        (ret = join(cpath, sizeof(cpath), dir, c->location, err)) < 0 ||
        (ret = commit_into(dir, c, p, NULL, true, err)) < 0)
        return ret;
    if (rename(ppath, cpath) < 0)
        return sr_fail(err, -errno, XCP_SR_ERR_BACKEND,
                       "VDI coalesce failed [opterr=rename %s: %s]", ppath,
                       strerror(errno));
    snprintf(c->parent_location, sizeof(c->parent_location), "%s",
             p->parent_location);
    p->location[0] = '\0';
    return write_meta(dir, p->uuid, false, false, err);
}

static xcp_sr_vdi_info *only_child(struct vdi_list *l, const char *location)
{
    size_t i;

    for (i = 0; i < l->n; i++)
        if (l->v[i].location[0] &&
            strcmp(l->v[i].parent_location, location) == 0)
            return &l->v[i];
    return NULL;
}

/*
 * The visible VDI that hidden parent v may be leaf-coalesced with, or
 * NULL: v's only child, of its format, not hidden.  A VHD child names its
 * parent by unique id: the merged image, which keeps the parent's id
 * under the child's name, would not be the parent the child's own
 * children name, so a VHD child is merged only when it has none.
 */
static xcp_sr_vdi_info *leaf_child(struct vdi_list *l,
                                   const xcp_sr_vdi_info *v)
{
    xcp_sr_vdi_info *c;

    if (!v->hidden || strcmp(v->format, "raw") == 0 ||
        count_children(l, v->location) != 1)
        return NULL;
    c = only_child(l, v->location);
    if (c->hidden || strcmp(c->format, v->format) != 0 ||
        (strcmp(c->format, "vhd") == 0 && count_children(l, c->location)))
        return NULL;
    return c;
}

/* Move the data of the writable leaf c under a new hidden node (paused by
 * the caller), as a snapshot does: the node is then merged online.  The
 * leaf keeps its changed block tracking (its epoch goes on) at every
 * instant (insert_parent); the node, the old file, gives its copy up
 * after. */
static int leaf_to_node(struct gc_run *r, const xcp_sr_vdi_info *c,
                        char *nloc, xcp_sr_error *err)
{
    char nuuid[XCP_SR_UUID_BUFLEN];
    xcp__image_cbt cbt = { { 0 }, 0, NULL };
    int ret;

    xcp__uuid_gen(nuuid);
    snprintf(nloc, XCP_SR_LOCATION_MAX, "%s.%s", nuuid, c->format);
    if (c->cbt_enabled &&
        (ret = cbt_load(r->dir, c->location, &cbt, err)) < 0)
        return ret;
    ret = insert_parent(r->dir, c, nuuid, nloc, &cbt, NULL, "VDI coalesce",
                        err);
    if (ret == 0 && cbt.bits)
        ret = cbt_store(r->dir, nloc, NULL, err);
    xcp__image_cbt_dispose(&cbt);
    return ret;
}

static int run_pause(struct gc_run *r, const char *location)
{
    return r->h && r->h->pause ? r->h->pause(r->h->ctx, location) : 0;
}

/* Images below v in l, v not counted. */
static unsigned depth_below(struct vdi_list *l, const xcp_sr_vdi_info *v)
{
    unsigned n = 0;

    while (v && v->parent_location[0] && n <= MAX_CHAIN) {
        v = list_find(l, v->parent_location);
        n++;
    }
    return n;
}

/*
 * Leaf coalesce of the writable leaf c, whose writer cannot be paused,
 * by that writer (hooks->stream): it copies what p shows over p's own
 * parent into c, then points c at p's parent; p, unreferenced, is then
 * gc_up's.  Only the file the writer holds is written, and at every
 * instant c reads as before (a copied cluster holds what the chain held
 * there; the new link is written once all is copied, by the writer, in
 * one write), so a kill of either side leaves a consistent chain.  The
 * journal says a stream may be under way: the next run, finding it,
 * plans again (the writer's copy, still running, is followed).  Returns
 * 1 when done, 0 when left, or a negative code.  (A leaf with changed
 * block tracking is left: its writer keeps the bitmap, which the copy
 * must not mark.)
 */
static int leaf_stream(struct gc_run *r, struct vdi_list *l,
                       const xcp_sr_vdi_info *c, const xcp_sr_vdi_info *p,
                       xcp_sr_error *err)
{
    char cloc[XCP_SR_LOCATION_MAX], backing[XCP_SR_LOCATION_MAX];
    char ploc[XCP_SR_LOCATION_MAX];
    unsigned keep = depth_below(l, p);
    xcp_sr_vdi_info now;
    int ret;

    if (!r->h || r->h->version < 2 || !r->h->stream || c->cbt_enabled)
        return 0;
    snprintf(cloc, sizeof(cloc), "%s", c->location);
    snprintf(ploc, sizeof(ploc), "%s", p->location);
    snprintf(backing, sizeof(backing), "%s", p->parent_location);
    if ((ret = journal_put(r->dir, cloc, ploc, "stream", err)) < 0)
        return ret;
    r->what = cloc;
    run_unlock(r);
    ret = r->h->stream(r->h->ctx, cloc, keep, backing);
    run_lock(r);
    if (ret >= 0)
        journal_clear(r->dir);
    /* left as it was, or its copy goes on in the writer (the journal
     * keeps it for the next run); done only once the link moved, which
     * the writer wrote (else the run would ask again and again) */
    if (ret != 0 || stat_vdi(r->dir, cloc, &now, NULL) < 0 ||
        strcmp(now.parent_location, ploc) == 0)
        return 0;
    r->res.coalesced++;
    return 1;
}

static void run_unpause(struct gc_run *r, const char *location)
{
    if (r->h && r->h->unpause)
        r->h->unpause(r->h->ctx, location);
}

/*
 * Leaf coalesce of the VDI at cloc into its hidden parent.  A read-only
 * VDI is never written: its image is replaced under its readers (who keep
 * the old file, of the same content).  A writable one is paused for the
 * final step only: while it holds more than LEAF_PAUSE_MAX of its own, its
 * data first moves under a hidden node (a short pause) that merge_node
 * merges online, as XAPI's snapshot-coalesce does.  Returns 1 when done,
 * 0 when left for another run, or a negative code.
 */
static int leaf_coalesce(struct gc_run *r, const char *cloc,
                         xcp_sr_error *err)
{
    char loc[XCP_SR_LOCATION_MAX], nloc[XCP_SR_LOCATION_MAX];
    struct vdi_list l = { 0 };
    xcp_sr_vdi_info *c, *p;
    unsigned round;
    int ret = 0;

    snprintf(loc, sizeof(loc), "%s", cloc);
    for (round = 0;; round++) {
        if ((ret = list_vdis(r->dir, &l, false, err)) < 0)
            return ret;
        c = list_find(&l, loc);
        p = c && c->parent_location[0] ? list_find(&l, c->parent_location)
                                       : NULL;
        if (!p || leaf_child(&l, p) != c) {
            list_free(&l);
            return 0;
        }
        if (c->read_only) {
            ret = coalesce(r->dir, p, c, err);
            break;
        }
        if (run_pause(r, loc) < 0) {
            ret = leaf_stream(r, &l, c, p, err);
            list_free(&l);
            return ret;
        }
        if (r->h && round < LEAF_ROUNDS &&
            c->physical_utilisation > LEAF_PAUSE_MAX) {
            ret = leaf_to_node(r, c, nloc, err);
            run_unpause(r, loc);
            list_free(&l);
            if (ret < 0 || (ret = merge_node(r, nloc, false, err)) <= 0)
                return ret;
            continue;
        }
        ret = coalesce(r->dir, p, c, err);
        run_unpause(r, loc);
        break;
    }
    list_free(&l);
    if (ret < 0)
        return ret;
    r->res.coalesced++;
    return 1;
}

/*
 * The next merge a run may do, into what (a node's or a leaf's
 * location): 'n' merge_node, 'l' leaf_coalesce, 0 none.  Removals of
 * hidden images nothing depends on come first, counted in r.
 */
static int plan_step(struct gc_run *r, char *what, xcp_sr_error *err)
{
    struct vdi_list l = { 0 };
    xcp_sr_vdi_info *n, *p, *c;
    char kind = 0;
    bool again = true;
    size_t i;
    int ret;

    if ((ret = list_vdis(r->dir, &l, false, err)) < 0)
        return ret;
    while (again) {
        again = false;
        for (i = 0; i < l.n; i++) {
            if (!l.v[i].location[0] || !l.v[i].hidden)
                continue;
            if ((ret = gc_up(r->dir, &l, l.v[i].location, err)) < 0)
                goto out;
            r->res.removed += (unsigned)ret;
            again = again || ret > 0;
        }
    }
    r->res.leaf_left = 0;
    for (i = 0; i < l.n; i++) {
        if (!l.v[i].location[0])
            continue;
        if (!kind &&
            (r->flags & (XCP_SR_GC_COALESCE | XCP_SR_GC_COALESCE_HIDDEN)) &&
            merge_pair(&l, l.v[i].location, &n, &p))
            kind = 'n';
        else if (!(c = leaf_child(&l, &l.v[i])))
            continue;
        else if (!kind && (r->flags & XCP_SR_GC_COALESCE))
            kind = 'l';
        else {
            r->res.leaf_left++; /* one not taken in this step */
            continue;
        }
        snprintf(what, XCP_SR_LOCATION_MAX, "%s",
                 kind == 'n' ? l.v[i].location : c->location);
    }
    ret = kind;
out:
    list_free(&l);
    return ret;
}

/* The run's right to merge: the GC_LOCK file, flock()ed; -1 when another
 * run has it (this one then only removes). */
static int merge_lock(const char *dir)
{
    char path[XCP_SR_PATH_MAX];
    int fd;

    if (join(path, sizeof(path), dir, GC_LOCK, NULL) < 0)
        return -1;
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static int gc_run(const xcp_sr_target *sr, unsigned int flags,
                  const xcp_sr_gc_hooks *hooks, xcp_sr_gc_result *out,
                  xcp_sr_error *err)
{
    char node[XCP_SR_LOCATION_MAX], parent[XCP_SR_LOCATION_MAX];
    struct gc_run r;
    bool copied, streamed;
    int ret, lockfd = -1, step = 0;

    memset(&r, 0, sizeof(r));
    r.flags = flags;
    r.h = hooks;
    ret = attached_dir(sr, r.dir, err);
    if (ret == 0)
        ret = remove_debris(r.dir, &r.res.removed, err);
    if (ret < 0)
        goto out;
    if (!(flags & (XCP_SR_GC_COALESCE | XCP_SR_GC_COALESCE_HIDDEN)) ||
        (lockfd = merge_lock(r.dir)) < 0)
        r.flags &= ~(XCP_SR_GC_COALESCE | XCP_SR_GC_COALESCE_HIDDEN);
    /* A merge a killed run left: finished first, whatever flags say (a
     * leaf's stream is planned again, as anything else). */
    if (lockfd >= 0 &&
        journal_get(r.dir, node, parent, &copied, &streamed) == 0) {
        if (streamed)
            journal_clear(r.dir);
        else if ((ret = merge_node(&r, node, copied, err)) < 0)
            goto out;
    }
    while (!r.stop && (step = plan_step(&r, node, err)) > 0) {
        ret = step == 'n' ? merge_node(&r, node, false, err)
                          : leaf_coalesce(&r, node, err);
        if (ret <= 0) {
            if (step == 'l')
                r.res.leaf_left++;
            break;              /* left for the next run, or failed */
        }
    }
    if (ret >= 0 && step < 0)
        ret = step;
    if (ret > 0)
        ret = 0;
    /* Removals are idempotent: one lost in a crash is redone next time. */
    xcp__fsync_dir(r.dir);
out:
    if (lockfd >= 0)
        close(lockfd);
    if (out)
        *out = r.res;
    return ret;
}

static int file_sr_gc(const xcp_sr_target *sr, unsigned int flags,
                      xcp_sr_gc_result *out, xcp_sr_error *err)
{
    return gc_run(sr, flags, NULL, out, err);
}

static int file_sr_gc_run(const xcp_sr_target *sr, unsigned int flags,
                          const xcp_sr_gc_hooks *hooks,
                          xcp_sr_gc_result *out, xcp_sr_error *err)
{
    return gc_run(sr, flags, hooks, out, err);
}

/* ------------------------------------------------------------------ */
/* VDI operations                                                      */

/*
 * A new image called name, which appears whole or not at all: it is
 * written under a temporary name (debris for gc if we are killed) and
 * then linked into place, which also refuses to replace an existing file.
 */
static int create_image(const char *dir, const char *name, const char *fmt,
                        uint64_t size, const char *parent, const char *what,
                        xcp_sr_error *err)
{
    char path[XCP_SR_PATH_MAX], tpath[XCP_SR_PATH_MAX], msg[1024];
    char tname[XCP_SR_LOCATION_MAX + sizeof(TMP_PREFIX)];
    bool tmp = strncmp(name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0;
    int ret;

    snprintf(tname, sizeof(tname), "%s%s", tmp ? "" : TMP_PREFIX, name);
    if ((ret = join(path, sizeof(path), dir, name, err)) < 0 ||
        (ret = join(tpath, sizeof(tpath), dir, tname, err)) < 0)
        return ret;
    ret = xcp__image_create(tpath, fmt, size, parent, msg, sizeof(msg));
    if (ret == -EFBIG)
        return size_fail(err, fmt, size);
    if (ret < 0)
        return img_fail(err, ret, what, msg);
    if (tmp)
        return 0;
    if (link(tpath, path) < 0)
        ret = sr_fail(err, -errno, errno_kind(-errno),
                      "%s failed [opterr=link %s: %s]", what, path,
                      strerror(errno));
    unlink(tpath);
    return ret;
}

/* One uuid, one image, whatever its format, and no sidecar of another
 * image: else -EEXIST. */
static int uuid_free(const char *dir, const char *uuid, const char *what,
                     xcp_sr_error *err)
{
    static const char *const ext[] = { "qcow2", "vhd", "raw", "meta" };
    char name[XCP_SR_LOCATION_MAX], path[XCP_SR_PATH_MAX];
    struct stat st;
    size_t i;
    int ret;

    for (i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
        snprintf(name, sizeof(name), "%s.%s", uuid, ext[i]);
        if ((ret = join(path, sizeof(path), dir, name, err)) < 0)
            return ret;
        if (lstat(path, &st) == 0)
            return sr_fail(err, -EEXIST, XCP_SR_ERR_BACKEND,
                           "%s failed [opterr=%s "
                           "exists]", what, path);
    }
    return 0;
}

static int file_vdi_create(const xcp_sr_target *sr,
                           const xcp_sr_vdi_create_params *params,
                           xcp_sr_vdi_info *out, xcp_sr_error *err)
{
    char dir[XCP_SR_PATH_MAX], uuid[XCP_SR_UUID_BUFLEN];
    char loc[XCP_SR_LOCATION_MAX];
    const char *fmt = params->format ? params->format : "qcow2";
    int ret;

    ret = attached_dir(sr, dir, err);
    if (ret < 0)
        return ret;
    if (!(fmt = known_format(fmt)))
        return sr_fail(err, -ENOTSUP, XCP_SR_ERR_NOT_SUPPORTED,
                       "VDI create failed [opterr=format '%.32s' is not "
                       "supported by file SRs]", params->format);
    if (params->uuid) {
        if (strlen(params->uuid) != UUID_LEN || !valid_uuid(params->uuid))
            return sr_fail(err, -EINVAL, XCP_SR_ERR_BACKEND,
                           "VDI create failed [opterr=bad uuid '%.64s']",
                           params->uuid);
        memcpy(uuid, params->uuid, sizeof(uuid));
    } else {
        xcp__uuid_gen(uuid);
    }
    if ((ret = uuid_free(dir, uuid, "VDI create", err)) < 0)
        return ret;
    snprintf(loc, sizeof(loc), "%s.%s", uuid, fmt);
    if (strcmp(fmt, "raw") == 0 && (ret = mark_raw(dir, uuid, err)) < 0)
        return ret;
    ret = create_image(dir, loc, fmt, params->virtual_size, NULL,
                       "VDI create", err);
    if (ret < 0) {
        write_meta(dir, uuid, false, false, NULL);
        return ret;
    }
    ret = xcp__fsync_dir(dir);
    if (ret < 0)
        return sr_fail(err, ret, XCP_SR_ERR_BACKEND,
                       "VDI create failed [opterr=%s: %s]",
                       dir, strerror(-ret));
    return stat_vdi(dir, loc, out, err);
}

static int file_vdi_destroy(const xcp_sr_target *sr, const char *location,
                            xcp_sr_error *err)
{
    char dir[XCP_SR_PATH_MAX];
    char parent[XCP_SR_LOCATION_MAX];
    struct vdi_list l = { 0 };
    xcp_sr_vdi_info *v;
    int ret;

    ret = attached_dir(sr, dir, err);
    if (ret == 0)
        ret = list_vdis(dir, &l, false, err);
    if (ret < 0)
        return ret;
    v = list_find(&l, location);
    if (!v) {
        ret = sr_fail(err, -ENOENT, XCP_SR_ERR_VDI_MISSING,
                      "VDI not found [opterr=%s/%.300s]", dir, location);
        goto out;
    }
    if (count_children(&l, location)) {
        /* Others read through it: it only stops being a VDI. */
        ret = write_meta(dir, v->uuid, true, v->read_only, err);
        goto out;
    }
    snprintf(parent, sizeof(parent), "%s", v->parent_location);
    ret = remove_vdi(dir, v, err);
    if (ret == 0 && parent[0])
        ret = gc_up(dir, &l, parent, err);
    if (ret > 0)
        ret = 0;
    /* Removals are idempotent: one lost in a crash is redone by gc. */
    if (ret == 0)
        xcp__fsync_dir(dir);
out:
    list_free(&l);
    return ret;
}

static int file_vdi_stat(const xcp_sr_target *sr, const char *location,
                         xcp_sr_vdi_info *out, xcp_sr_error *err)
{
    char dir[XCP_SR_PATH_MAX];
    int ret;

    ret = attached_dir(sr, dir, err);
    if (ret < 0)
        return ret;
    return stat_vdi(dir, location, out, err);
}

static int file_vdi_resize(const xcp_sr_target *sr, const char *location,
                           uint64_t new_size, xcp_sr_vdi_info *out,
                           xcp_sr_error *err)
{
    char dir[XCP_SR_PATH_MAX], path[XCP_SR_PATH_MAX], msg[1024];
    xcp_sr_vdi_info v;
    xcp__image *q;
    int ret;

    ret = attached_dir(sr, dir, err);
    if (ret == 0)
        ret = stat_vdi(dir, location, &v, err);
    if (ret < 0)
        return ret;
    if (v.read_only || v.hidden)
        return sr_fail(err, -EROFS, XCP_SR_ERR_VDI_READONLY,
                       "VDI resize failed [opterr=%s is %s]", location,
                       v.hidden ? "a hidden parent" : "read-only");
    ret = join(path, sizeof(path), dir, location, err);
    if (ret < 0)
        return ret;
    ret = xcp__image_open(&q, path, v.format, 0, msg, sizeof(msg));
    if (ret == 0) {
        ret = xcp__image_resize(q, new_size, msg, sizeof(msg));
        if (ret == 0)
            ret = xcp__image_flush(q, msg, sizeof(msg));
        xcp__image_close(q);
    }
    if (ret == -EFBIG)
        return size_fail(err, v.format, new_size);
    if (ret < 0)
        return img_fail(err, ret, "VDI resize", msg);
    return stat_vdi(dir, location, out, err);
}

/* Ancestors of v, counting v: refuse to build chains XAPI would refuse. */
static int chain_length(const char *dir, const xcp_sr_vdi_info *v,
                        unsigned *len, xcp_sr_error *err)
{
    xcp_sr_vdi_info cur = *v, next;
    int ret;

    for (*len = 1; cur.parent_location[0]; (*len)++, cur = next) {
        if (*len > MAX_CHAIN)
            return 0;
        ret = stat_vdi(dir, cur.parent_location, &next, err);
        if (ret < 0)
            return ret;
    }
    return 0;
}

/* The new snapshot/clone leaf: sidecar first, so that it is never seen
 * writable, even for a moment, when it is a snapshot. */
static int make_child(const char *dir, const char *uuid, const char *loc,
                      bool read_only, const xcp_sr_vdi_info *src,
                      const char *parent, const char *what, xcp_sr_error *err)
{
    int ret;

    if (read_only && (ret = write_meta(dir, uuid, false, true, err)) < 0)
        return ret;
    ret = create_image(dir, loc, src->format, src->virtual_size, parent,
                       what, err);
    if (ret < 0)
        write_meta(dir, uuid, false, false, NULL);
    return ret;
}

/* The writer of a live VDI moves onto the new leaf at tpath. */
static int switch_writer(const xcp_sr_cow_hooks *live, const char *tpath,
                         const char *format, const char *what,
                         xcp_sr_error *err)
{
    char reason[512] = "";
    int ret = live->switch_to(live->ctx, tpath, format, reason,
                              sizeof(reason));

    if (ret >= 0)
        return 0;
    return sr_fail(err, ret, XCP_SR_ERR_BACKEND, "%s failed [opterr=the "
                   "disk's writer cannot move onto the new leaf: %s]", what,
                   reason[0] ? reason : strerror(-ret));
}

/*
 * The new image at path (format fmt), about to take a VDI's name by
 * rename, takes that VDI's tracking state c (xcp__image_cbt_carry).
 */
static int carry_cbt(const char *path, const char *fmt,
                     const xcp__image_cbt *c, const char *what,
                     xcp_sr_error *err)
{
    char msg[1024] = "";
    xcp__image *im;
    int ret;

    ret = xcp__image_open(&im, path, fmt, XCP__IMAGE_NO_PARENT, msg,
                          sizeof(msg));
    if (ret == 0) {
        ret = xcp__image_cbt_carry(im, c, msg, sizeof(msg));
        if (xcp__image_close(im) < 0 && ret == 0)
            ret = -EIO;
    }
    return ret < 0 ? img_fail(err, ret, what, msg) : 0;
}

/*
 * Move the data of the writable VDI src under a new hidden parent ploc:
 *   1. sidecar P.meta: hidden        (harmless orphan if we stop here)
 *   2. link A -> P                   (A unchanged; P, a hidden parent
 *                                     without children, is gc's to remove)
 *   3. temporary leaf on P           (made once P exists: a VHD child
 *                                     records its parent's unique id),
 *      given A's tracking state cbt  (when src has CBT on: a qcow2
 *                                     bitmap lives in the file, which P
 *                                     takes; a VHD log stays beside A)
 *   4. rename the leaf over A        (A is now an empty leaf on P)
 * Hard links keep A present at every instant, and with its changed block
 * tracking: the caller changes A's epoch, if it must, only after this.
 * Crash points (xcp__crash_point): "file:parent-linked" (2),
 * "file:leaf-made" (3), "file:leaf-renamed" (4).  With a live writer that
 * keeps A's file open (live), the leaf of step 3 has a name of its own
 * and the writer moves onto it before step 4 (it writes P's file until
 * then, and the leaf after); from that switch on, the leaf is never
 * removed: a failed rename is finished at the next attach
 * (finish_live_cow).
 */
static int insert_parent(const char *dir, const xcp_sr_vdi_info *src,
                         const char *puuid, const char *ploc,
                         const xcp__image_cbt *cbt,
                         const xcp_sr_cow_hooks *live, const char *what,
                         xcp_sr_error *err)
{
    char apath[XCP_SR_PATH_MAX], ppath[XCP_SR_PATH_MAX];
    char tpath[XCP_SR_PATH_MAX], tname[XCP_SR_LOCATION_MAX];
    bool linked = false, switched = false;
    int ret;

    if (live)
        snprintf(tname, sizeof(tname), LIVE_PREFIX "%.64s.%s",
                 src->location, puuid);
    else
        snprintf(tname, sizeof(tname), TMP_PREFIX "%.64s", src->location);
    if ((ret = join(apath, sizeof(apath), dir, src->location, err)) < 0 ||
        (ret = join(ppath, sizeof(ppath), dir, ploc, err)) < 0 ||
        (ret = join(tpath, sizeof(tpath), dir, tname, err)) < 0)
        return ret;
    ret = write_meta(dir, puuid, true, false, err);
    if (ret < 0)
        return ret;
    if (link(apath, ppath) < 0) {
        ret = sr_fail(err, -errno, errno_kind(-errno),
                      "%s failed [opterr=link %s: %s]", what, ppath,
                      strerror(errno));
        goto out;
    }
    linked = true;
    xcp__crash_point("file:parent-linked");
    ret = create_image(dir, tname, src->format, src->virtual_size, ploc,
                       what, err);
    if (ret == 0 && cbt && cbt->bits)
        ret = carry_cbt(tpath, src->format, cbt, what, err);
    if (ret == 0)
        xcp__crash_point("file:leaf-made");
    if (ret == 0 && live) {
        /* durable before the writer relies on it */
        if ((ret = xcp__fsync_dir(dir)) < 0)
            ret = sr_fail(err, ret, XCP_SR_ERR_BACKEND, "%s failed "
                          "[opterr=%s: %s]", what, dir, strerror(-ret));
        else
            ret = switch_writer(live, tpath, src->format, what, err);
        switched = ret == 0;
    }
    if (ret == 0 && rename(tpath, apath) < 0)
        ret = sr_fail(err, -errno, XCP_SR_ERR_BACKEND,
                      "%s failed [opterr=rename %s: %s]",
                      what, apath, strerror(errno));
    if (ret == 0)
        xcp__crash_point("file:leaf-renamed");
out:
    if (ret < 0 && !switched) {
        unlink(tpath);
        if (linked)
            unlink(ppath);
        write_meta(dir, puuid, false, false, NULL);
    }
    return ret;
}

/* ------------------------------------------------------------------ */
/* Changed block tracking                                              */

/* Open the image of the VDI at location (flags as xcp__image_open's,
 * the parent chain never opened). */
static int open_vdi(const char *dir, const char *location, unsigned flags,
                    xcp__image **im, const char *what, xcp_sr_error *err)
{
    char path[XCP_SR_PATH_MAX], msg[1024];
    const char *fmt;
    int ret;

    if ((ret = vdi_file(dir, location, path, &fmt, err)) < 0)
        return ret;
    ret = xcp__image_open(im, path, fmt, flags | XCP__IMAGE_NO_PARENT, msg,
                          sizeof(msg));
    if (ret == -ENOENT)
        return sr_fail(err, ret, XCP_SR_ERR_VDI_MISSING,
                       "VDI not found [opterr=%s]", msg);
    return ret < 0 ? img_fail(err, ret, what, msg) : 0;
}

/* The CBT state of the VDI at location into *c (no CBT: c->bits NULL). */
static int cbt_load(const char *dir, const char *location,
                    xcp__image_cbt *c, xcp_sr_error *err)
{
    char msg[1024];
    xcp__image *im;
    bool on;
    int ret = open_vdi(dir, location, XCP__IMAGE_RDONLY, &im,
                       "CBT read", err);

    if (ret < 0)
        return ret;
    memset(c, 0, sizeof(*c));
    ret = xcp__image_cbt_get(im, &on, c, msg, sizeof(msg));
    xcp__image_close(im);
    return ret < 0 ? img_fail(err, ret, "CBT read", msg) : 0;
}

/* Set (c) or drop (c NULL) the CBT state of the VDI at location. */
static int cbt_store(const char *dir, const char *location,
                     const xcp__image_cbt *c, xcp_sr_error *err)
{
    char msg[1024];
    xcp__image *im;
    int ret = open_vdi(dir, location, 0, &im, "CBT update", err);

    if (ret < 0)
        return ret;
    ret = xcp__image_cbt_set(im, c, msg, sizeof(msg));
    if (xcp__image_close(im) < 0 && ret == 0)
        ret = -EIO;
    return ret < 0 ? img_fail(err, ret, "CBT update", msg) : 0;
}

/*
 * After a snapshot (child_ro) or clone of the tracked VDI at location,
 * whose epoch so far, *c, its new leaf kept (insert_parent): a snapshot
 * takes that epoch and the VDI starts a new one after it; a clone leaves
 * the VDI's epoch going and starts untracked.  The hidden parent keeps
 * none (a qcow2 parent is the old file, bitmap included).  A kill midway
 * leaves the VDI tracked all along: with its epoch so far (the new
 * image, its record never committed, goes at the next open), or with a
 * new one after a snapshot that never committed, which the next open
 * switches off, visibly (api/storage.c); never with fewer blocks marked
 * than changed.  Crash points: "file:cbt-child", "file:cbt-source" (a
 * snapshot's), "file:cbt-parent".
 */
static int cbt_cow(const char *dir, const char *location, const char *cloc,
                   const char *ploc, const char *cuuid, bool child_ro,
                   const xcp__image_cbt *c, xcp_sr_error *err)
{
    xcp__image_cbt fresh = { { 0 }, 0, NULL };
    int ret = 0;

    snprintf(fresh.prev, sizeof(fresh.prev), "%s", cuuid);
    if (child_ro) {
        ret = cbt_store(dir, cloc, c, err);
        if (ret == 0) {
            xcp__crash_point("file:cbt-child");
            ret = cbt_store(dir, location, &fresh, err);
        }
        if (ret == 0)
            xcp__crash_point("file:cbt-source");
    }
    if (ret == 0)
        ret = cbt_store(dir, ploc, NULL, err);
    if (ret == 0)
        xcp__crash_point("file:cbt-parent");
    return ret;
}

static int file_vdi_cbt_set(const xcp_sr_target *sr, const char *location,
                            bool enabled, xcp_sr_error *err)
{
    xcp__image_cbt fresh = { { 0 }, 0, NULL };
    char dir[XCP_SR_PATH_MAX];
    xcp_sr_vdi_info v;
    int ret;

    if ((ret = attached_dir(sr, dir, err)) < 0 ||
        (ret = stat_vdi(dir, location, &v, err)) < 0)
        return ret;
    if (v.cbt_enabled == enabled)
        return 0;
    if (strcmp(v.format, "raw") == 0)
        return sr_fail(err, -ENOTSUP, XCP_SR_ERR_NOT_SUPPORTED,
                       "CBT update failed [opterr=%s: raw images have no "
                       "changed block tracking]", location);
    return cbt_store(dir, location, enabled ? &fresh : NULL, err);
}

static int file_vdi_cbt_changes(const xcp_sr_target *sr,
                                const char *location, uint8_t *bits,
                                uint64_t nblocks,
                                char prev[XCP_SR_UUID_BUFLEN],
                                xcp_sr_error *err)
{
    char dir[XCP_SR_PATH_MAX];
    xcp__image_cbt c;
    uint64_t i, n;
    int ret;

    if ((ret = attached_dir(sr, dir, err)) < 0 ||
        (ret = cbt_load(dir, location, &c, err)) < 0)
        return ret;
    if (!c.bits)
        return sr_fail(err, -ENODATA, XCP_SR_ERR_NO_CBT_METADATA,
                       "No CBT metadata [opterr=%s]", location);
    n = ((nblocks < c.nblocks ? nblocks : c.nblocks) + 7) / 8;
    for (i = 0; i < n; i++)
        bits[i] |= c.bits[i];
    /* A last partial byte of ours must not mark blocks past nblocks. */
    if (nblocks < c.nblocks && nblocks % 8)
        bits[nblocks / 8] &= (uint8_t)(0xff00u >> (nblocks % 8));
    snprintf(prev, XCP_SR_UUID_BUFLEN, "%s", c.prev);
    xcp__image_cbt_dispose(&c);
    return 0;
}

/*
 * data_destroy: a new empty standalone image of the snapshot's size
 * (with its CBT state, for qcow2; a VHD's log stays beside the name)
 * replaces the snapshot's image by rename, then the parents it held go
 * if nobody else reads through them.  Run again after a kill, it does
 * the same (the engine's 'X' intent).  Crash points "file:dd-made"
 * (before the rename), "file:dd-renamed" (after).
 */
static int file_vdi_data_destroy(const xcp_sr_target *sr,
                                 const char *location, xcp_sr_error *err)
{
    char dir[XCP_SR_PATH_MAX], tname[XCP_SR_LOCATION_MAX];
    char tpath[XCP_SR_PATH_MAX], path[XCP_SR_PATH_MAX];
    const char *what = "VDI data destroy";
    xcp__image_cbt c = { { 0 }, 0, NULL };
    struct vdi_list l = { 0 };
    xcp_sr_vdi_info v;
    size_t n;
    int ret;

    snprintf(tname, sizeof(tname), TMP_PREFIX "%.64s", location);
    if ((ret = attached_dir(sr, dir, err)) < 0 ||
        (ret = stat_vdi(dir, location, &v, err)) < 0 ||
        (ret = join(path, sizeof(path), dir, location, err)) < 0 ||
        (ret = join(tpath, sizeof(tpath), dir, tname, err)) < 0)
        return ret;
    if (!v.read_only || v.hidden || !v.cbt_enabled)
        return sr_fail(err, -EINVAL, v.cbt_enabled
                                         ? XCP_SR_ERR_BACKEND
                                         : XCP_SR_ERR_NO_CBT_METADATA,
                       "%s failed [opterr=%s is not a tracked snapshot]",
                       what, location);
    /* A clone of the snapshot reads through its image: replaced by an
     * empty one, the clone's data would go with it. */
    if ((ret = list_vdis(dir, &l, false, err)) < 0)
        return ret;
    n = count_children(&l, location);
    list_free(&l);
    if (n)
        return sr_fail(err, -EBUSY, XCP_SR_ERR_BACKEND,
                       "%s failed [opterr=%s is the parent of %zu other "
                       "image(s), the clones of the snapshot]", what,
                       location, n);
    if ((ret = cbt_load(dir, location, &c, err)) < 0)
        return ret;
    unlink(tpath);
    ret = create_image(dir, tname, v.format, v.virtual_size, NULL, what,
                       err);
    if (ret == 0)
        ret = carry_cbt(tpath, v.format, &c, what, err);
    if (ret == 0)
        xcp__crash_point("file:dd-made");
    if (ret == 0 && rename(tpath, path) < 0)
        ret = sr_fail(err, -errno, XCP_SR_ERR_BACKEND,
                      "%s failed [opterr=rename %s: %s]", what, path,
                      strerror(errno));
    xcp__image_cbt_dispose(&c);
    if (ret < 0) {
        unlink(tpath);
        return ret;
    }
    xcp__fsync_dir(dir);
    xcp__crash_point("file:dd-renamed");
    /* The parents it read through may be garbage now. */
    if (v.parent_location[0] && list_vdis(dir, &l, false, err) == 0)
        gc_up(dir, &l, v.parent_location, err);
    list_free(&l);
    xcp__fsync_dir(dir);
    return 0;
}

/*
 * Snapshot (child_ro) or clone.  A writable source first gets a hidden
 * parent holding its data (insert_parent); a read-only source is never
 * written again, so it serves as the children's parent itself.
 */
static int cow(const xcp_sr_target *sr, const char *location, bool child_ro,
               const char *uuid, const xcp_sr_cow_hooks *live,
               xcp_sr_cow_result *out, xcp_sr_error *err)
{
    const char *what = child_ro ? "VDI snapshot" : "VDI clone";
    char dir[XCP_SR_PATH_MAX], puuid[XCP_SR_UUID_BUFLEN];
    char cuuid[XCP_SR_UUID_BUFLEN], ploc[XCP_SR_LOCATION_MAX];
    char cloc[XCP_SR_LOCATION_MAX];
    xcp_sr_vdi_info src;
    xcp__image_cbt cbt = { { 0 }, 0, NULL };
    unsigned len = 0;
    int ret;

    memset(out, 0, sizeof(*out));
    if (uuid && (strlen(uuid) != UUID_LEN || !valid_uuid(uuid)))
        return sr_fail(err, -EINVAL, XCP_SR_ERR_BACKEND,
                       "%s failed [opterr=bad uuid "
                       "'%.64s']", what, uuid);
    ret = attached_dir(sr, dir, err);
    if (ret == 0)
        ret = stat_vdi(dir, location, &src, err);
    if (ret == 0)
        ret = chain_length(dir, &src, &len, err);
    if (ret < 0)
        return ret;
    if (src.hidden)
        return sr_fail(err, -EINVAL, XCP_SR_ERR_BACKEND,
                       "%s failed [opterr=%s is a hidden parent]", what,
                       location);
    if (strcmp(src.format, "raw") == 0)
        return sr_fail(err, -ENOTSUP, XCP_SR_ERR_NOT_SUPPORTED,
                       "%s failed [opterr=%s: %s VDIs cannot be "
                       "snapshotted or cloned]", what, location, src.format);
    if (len >= MAX_CHAIN)
        return sr_fail(err, -EMLINK, XCP_SR_ERR_CHAIN_TOO_LONG,
                       "The snapshot chain is too long [opterr=%s: %u "
                       "images, at most %d]", location, len, MAX_CHAIN);
    if (uuid && (ret = uuid_free(dir, uuid, what, err)) < 0)
        return ret;
    if (uuid)
        memcpy(cuuid, uuid, sizeof(cuuid));
    else
        xcp__uuid_gen(cuuid);
    xcp__uuid_gen(puuid);
    snprintf(cloc, sizeof(cloc), "%s.%s", cuuid, src.format);
    snprintf(ploc, sizeof(ploc), "%s.%s", puuid, src.format);
    if (!src.read_only && src.cbt_enabled &&
        (ret = cbt_load(dir, location, &cbt, err)) < 0)
        return ret;
    if (!src.read_only &&
        (ret = insert_parent(dir, &src, puuid, ploc, &cbt, live, what,
                             err)) < 0)
        goto out;
    /* From here the SR is consistent whatever happens: a failure only
     * means there is no snapshot. */
    ret = make_child(dir, cuuid, cloc, child_ro, &src,
                     src.read_only ? location : ploc, what, err);
    if (ret == 0)
        xcp__crash_point("file:child-made");
    if (ret == 0 && cbt.bits)
        ret = cbt_cow(dir, location, cloc, ploc, cuuid, child_ro, &cbt,
                      err);
    if (ret < 0)
        goto out;
    ret = xcp__fsync_dir(dir);
    if (ret < 0) {
        ret = sr_fail(err, ret, XCP_SR_ERR_BACKEND,
                      "%s failed [opterr=%s: %s]", what,
                      dir, strerror(-ret));
        goto out;
    }
    if ((ret = stat_vdi(dir, location, &out->source, err)) < 0 ||
        (ret = stat_vdi(dir, cloc, &out->child, err)) < 0)
        goto out;
    if (!src.read_only)
        ret = stat_vdi(dir, ploc, &out->parent, err);
    if (ret == 0)
        xcp__crash_point("file:cow-done");
out:
    xcp__image_cbt_dispose(&cbt);
    return ret;
}

static int file_vdi_snapshot(const xcp_sr_target *sr, const char *location,
                             xcp_sr_cow_result *out, xcp_sr_error *err)
{
    return cow(sr, location, true, NULL, NULL, out, err);
}

static int file_vdi_clone(const xcp_sr_target *sr, const char *location,
                          xcp_sr_cow_result *out, xcp_sr_error *err)
{
    return cow(sr, location, false, NULL, NULL, out, err);
}

static int file_vdi_cow(const xcp_sr_target *sr, const char *location,
                        bool read_only, const char *uuid,
                        xcp_sr_cow_result *out, xcp_sr_error *err)
{
    return cow(sr, location, read_only, uuid, NULL, out, err);
}

static int file_vdi_cow_live(const xcp_sr_target *sr, const char *location,
                             bool read_only, const char *uuid,
                             const xcp_sr_cow_hooks *hooks,
                             xcp_sr_cow_result *out, xcp_sr_error *err)
{
    if (!hooks || hooks->version < 1 || !hooks->switch_to)
        return sr_fail(err, -EINVAL, XCP_SR_ERR_BACKEND, "VDI snapshot "
                       "failed [opterr=no writer to move]");
    return cow(sr, location, read_only, uuid, hooks, out, err);
}

static int file_vdi_copy(const xcp_sr_target *src, const char *location,
                         const xcp_sr_target *dst, const char *uuid,
                         xcp_sr_vdi_info *out, xcp_sr_error *err)
{
    char sdir[XCP_SR_PATH_MAX], ddir[XCP_SR_PATH_MAX];
    char spath[XCP_SR_PATH_MAX], tpath[XCP_SR_PATH_MAX];
    char dpath[XCP_SR_PATH_MAX], nuuid[XCP_SR_UUID_BUFLEN];
    char loc[XCP_SR_LOCATION_MAX], tname[XCP_SR_LOCATION_MAX], msg[1024];
    xcp__image *q;
    const char *fmt;
    int ret;

    if ((ret = attached_dir(src, sdir, err)) < 0 ||
        (ret = attached_dir(dst, ddir, err)) < 0 ||
        (ret = vdi_file(sdir, location, spath, &fmt, err)) < 0)
        return ret;
    if (uuid) {
        if (strlen(uuid) != UUID_LEN || !valid_uuid(uuid))
            return sr_fail(err, -EINVAL, XCP_SR_ERR_BACKEND,
                           "VDI copy failed [opterr=bad uuid '%.64s']", uuid);
        memcpy(nuuid, uuid, sizeof(nuuid));
    } else {
        xcp__uuid_gen(nuuid);
    }
    snprintf(loc, sizeof(loc), "%s.%s", nuuid, fmt);
    snprintf(tname, sizeof(tname), TMP_PREFIX "%.64s", loc);
    if ((ret = join(tpath, sizeof(tpath), ddir, tname, err)) < 0 ||
        (ret = join(dpath, sizeof(dpath), ddir, loc, err)) < 0)
        return ret;
    if (access(dpath, F_OK) == 0)
        return sr_fail(err, -EEXIST, XCP_SR_ERR_BACKEND,
                       "VDI copy failed [opterr=%s exists]", dpath);
    ret = xcp__image_open(&q, spath, fmt, XCP__IMAGE_RDONLY, msg,
                          sizeof(msg));
    if (ret == -ENOENT)
        return sr_fail(err, ret, XCP_SR_ERR_VDI_MISSING,
                       "VDI not found [opterr=%s]", msg);
    if (ret < 0)
        return img_fail(err, ret, "VDI copy", msg);
    ret = xcp__image_copy(q, tpath, fmt, msg, sizeof(msg));
    xcp__image_close(q);
    if (ret < 0)
        return img_fail(err, ret, "VDI copy", msg);
    if (strcmp(fmt, "raw") == 0 && (ret = mark_raw(ddir, nuuid, err)) < 0) {
        unlink(tpath);
        return ret;
    }
    if (rename(tpath, dpath) < 0) {
        ret = sr_fail(err, -errno, XCP_SR_ERR_BACKEND,
                      "VDI copy failed [opterr=%s: %s]",
                      dpath, strerror(errno));
        unlink(tpath);
        write_meta(ddir, nuuid, false, false, NULL);
        return ret;
    }
    ret = xcp__fsync_dir(ddir);
    if (ret < 0)
        return sr_fail(err, ret, XCP_SR_ERR_BACKEND,
                       "VDI copy failed [opterr=%s: %s]", ddir, strerror(-ret));
    return stat_vdi(ddir, loc, out, err);
}

static int file_vdi_path(const xcp_sr_target *sr, const char *location,
                         xcp_sr_vdi_path *out, xcp_sr_error *err)
{
    char dir[XCP_SR_PATH_MAX];
    struct stat st;
    const char *fmt;
    int ret;

    ret = attached_dir(sr, dir, err);
    if (ret == 0)
        ret = vdi_file(dir, location, out->path, &fmt, err);
    if (ret < 0)
        return ret;
    if (stat(out->path, &st) < 0)
        return sr_fail(err, -errno,
                       errno == ENOENT ? XCP_SR_ERR_VDI_MISSING
                                       : XCP_SR_ERR_BACKEND,
                       "VDI not available [opterr=%s: %s]", out->path,
                       strerror(errno));
    snprintf(out->format, sizeof(out->format), "%s", fmt);
    return 0;
}

/* A VDI stream: the image library's, on the VDI's file. */
static int file_vdi_stream_open(const xcp_sr_target *sr,
                                const char *location, unsigned int flags,
                                xcp_sr_stream **out, uint64_t *virtual_size,
                                xcp_sr_error *err)
{
    xcp_sr_vdi_path vp;
    int ret;

    *out = NULL;
    if ((ret = file_vdi_path(sr, location, &vp, err)) < 0)
        return ret;
    return xcp__image_stream_open(vp.path, vp.format, flags, out,
                                  virtual_size, err);
}

/* ------------------------------------------------------------------ */
/* Changes between two VDIs (delta exports)                            */

/* The locations of the chain of the VDI at location, itself first. */
struct chain {
    char loc[MAX_CHAIN + 1][XCP_SR_LOCATION_MAX];
    unsigned n;
};

static int chain_of(const char *dir, const char *location, struct chain *c,
                    xcp_sr_error *err)
{
    xcp_sr_vdi_info v;
    int ret;

    c->n = 0;
    snprintf(v.parent_location, sizeof(v.parent_location), "%s", location);
    while (v.parent_location[0]) {
        if (c->n > MAX_CHAIN)
            return sr_fail(err, -ELOOP, XCP_SR_ERR_CHAIN_TOO_LONG,
                           "The VDI chain is too long [opterr=%s]",
                           location);
        snprintf(c->loc[c->n], XCP_SR_LOCATION_MAX, "%s",
                 v.parent_location);
        if ((ret = stat_vdi(dir, c->loc[c->n], &v, err)) < 0)
            return ret;
        c->n++;
    }
    return 0;
}

/* Where of c's chain c first reaches an image of o's: *i (c->n: never). */
static unsigned first_shared(const struct chain *c, const struct chain *o)
{
    unsigned i, j;

    for (i = 0; i < c->n; i++)
        for (j = 0; j < o->n; j++)
            if (!strcmp(c->loc[i], o->loc[j]))
                return i;
    return c->n;
}

/* What the image at location sets itself within [0, length), into r. */
static int own_ranges(const char *dir, const char *location, uint64_t length,
                      xcp__ranges *r, xcp_sr_error *err)
{
    char msg[1024];
    xcp__image *im;
    uint64_t off = 0, len, size;
    bool held;
    int ret;

    if ((ret = open_vdi(dir, location, XCP__IMAGE_RDONLY, &im,
                        "VDI changes", err)) < 0)
        return ret;
    size = xcp__image_virtual_size(im);
    if (size > length)
        size = length;
    for (ret = 0; off < size && ret == 0; off += len) {
        ret = xcp__image_own_extent(im, off, size - off, &held, &len, msg,
                                    sizeof(msg));
        if (ret == 0 && held && xcp__ranges_add(r, off, len) < 0)
            ret = -ENOMEM;
    }
    xcp__image_close(im);
    if (ret == -ENOMEM)
        return sr_fail(err, ret, XCP_SR_ERR_BACKEND,
                       "VDI changes failed [opterr=out of memory]");
    return ret < 0 ? img_fail(err, ret, "VDI changes", msg) : 0;
}

/* Only the images above the one both chains share can differ; what they
 * set is all that may. */
static int file_vdi_changes(const xcp_sr_target *sr, const char *location,
                            const char *base, uint64_t length, bool *related,
                            xcp_sr_extent_cb cb, void *ctx,
                            xcp_sr_error *err)
{
    char dir[XCP_SR_PATH_MAX];
    struct chain *a = NULL, *b = NULL;
    xcp__ranges r = {0};
    unsigned na, nb, i;
    size_t k;
    int ret;

    *related = false;
    if ((ret = attached_dir(sr, dir, err)) < 0)
        return ret;
    a = malloc(sizeof(*a));
    b = malloc(sizeof(*b));
    if (!a || !b) {
        ret = sr_fail(err, -ENOMEM, XCP_SR_ERR_BACKEND,
                      "VDI changes failed [opterr=out of memory]");
        goto out;
    }
    if ((ret = chain_of(dir, location, a, err)) < 0 ||
        (ret = chain_of(dir, base, b, err)) < 0)
        goto out;
    na = first_shared(a, b);
    nb = first_shared(b, a);
    if (na == a->n)
        goto out;               /* unrelated */
    *related = true;
    for (i = 0; i < na + nb && ret == 0; i++)
        ret = own_ranges(dir, i < na ? a->loc[i] : b->loc[i - na], length,
                         &r, err);
    if (ret < 0)
        goto out;
    xcp__ranges_merge(&r);
    for (k = 0; k < r.n && ret == 0; k++)
        ret = cb(ctx, r.v[k].off, r.v[k].len);
out:
    xcp__ranges_dispose(&r);
    free(a);
    free(b);
    return ret;
}

static const xcp_sr_config_key file_config_keys[] = {
    { "location",
      "absolute path of the directory holding the images, below one of "
      "the SR roots (XCP_SR_ROOTS) or the state directory; created if "
      "missing (default: a directory chosen by the toolstack)",
      false },
    { NULL, NULL, false },
};

const xcp_sr_ops xcp__sr_file_ops = {
    .version = XCP_SR_OPS_VERSION,
    .sr_create = file_sr_create,
    .sr_probe = file_sr_probe,
    .sr_attach = file_sr_attach,
    .sr_detach = file_sr_detach,
    .sr_destroy = file_sr_destroy,
    .sr_scan = file_sr_scan,
    .sr_stat = file_sr_stat,
    .sr_gc = file_sr_gc,
    .vdi_create = file_vdi_create,
    .vdi_destroy = file_vdi_destroy,
    .vdi_resize = file_vdi_resize,
    .vdi_stat = file_vdi_stat,
    .vdi_snapshot = file_vdi_snapshot,
    .vdi_clone = file_vdi_clone,
    .vdi_copy = file_vdi_copy,
    .vdi_path = file_vdi_path,
    .vdi_cow = file_vdi_cow,
    .vdi_stream_open = file_vdi_stream_open,
    .stream_read = xcp__image_stream_read,
    .stream_write = xcp__image_stream_write,
    .stream_extents = xcp__image_stream_extents,
    .stream_flush = xcp__image_stream_flush,
    .stream_close = xcp__image_stream_close,
    .vdi_cbt_set = file_vdi_cbt_set,
    .vdi_cbt_changes = file_vdi_cbt_changes,
    .vdi_data_destroy = file_vdi_data_destroy,
    .sr_gc_run = file_sr_gc_run,
    .vdi_cow_live = file_vdi_cow_live,
    .vdi_changes = file_vdi_changes,
    .stream_map = xcp__image_stream_map,
};

const xcp_sr_type xcp__sr_type_file = {
    .name = "file",
    .description = "Local directory of qcow2 or VHD images (thin "
                   "provisioned)",
    .vendor = "libxcp",
    .copyright = "libxcp contributors",
    .version = "1.0",
    .capabilities = XCP_SR_CAP_SR_PROBE | XCP_SR_CAP_SR_SCAN |
                    XCP_SR_CAP_SR_UPDATE | XCP_SR_CAP_SR_GC |
                    XCP_SR_CAP_VDI_CREATE | XCP_SR_CAP_VDI_DELETE |
                    XCP_SR_CAP_VDI_UPDATE | XCP_SR_CAP_VDI_SNAPSHOT |
                    XCP_SR_CAP_VDI_CLONE | XCP_SR_CAP_VDI_RESIZE |
                    XCP_SR_CAP_VDI_RESIZE_ONLINE |
                    XCP_SR_CAP_VDI_COPY | XCP_SR_CAP_THIN_PROVISIONING |
                    XCP_SR_CAP_VDI_CONFIG_CBT,
    .content_type = "user",
    .config_keys = file_config_keys,
    .ops = &xcp__sr_file_ops,
};
