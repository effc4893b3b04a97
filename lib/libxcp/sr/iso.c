/*
 * iso.c - the `iso` SR type, as XCP-ng's local ISO SR: a library of ISO
 * files in a directory (device_config:location), each a read-only VDI
 * whose location is its file name, for CD drives (VBD.insert).
 *
 * The driver never writes to the directory: the files are the user's.
 * sr_scan reports every regular file named *.iso or *.img (as the ISO
 * SR's pattern, any case; symlinks are not followed, so nothing outside
 * the directory becomes a VDI); VDIs cannot be created or destroyed
 * (no VDI_CREATE/VDI_DELETE capability); streams are read-only.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <xcp/sys/sr.h>

#include "file.h"
#include "image_stream.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

/* The library directory: device_config:location, an existing directory. */
static int iso_dir(const xcp_sr_target *t, char *dir, xcp_sr_error *err)
{
    const char *loc = xcp__sr_dev_config(t, "location");
    struct stat st;

    if (!loc || !loc[0])
        return xcp__srt_fail(err, -EINVAL, XCP_SR_ERR_BACKEND,
                            "The request is missing the location parameter "
                            "(ConfigLocationMissing) "
                            "[opterr=device_config:location]");
    if (loc[0] != '/' || strlen(loc) >= XCP_SR_PATH_MAX - XCP_SR_LOCATION_MAX)
        return xcp__srt_fail(err, -EINVAL, XCP_SR_ERR_BACKEND,
                            "Invalid local path (ISOLocalPath, 226) "
                            "[opterr=%.512s: not an absolute path]", loc);
    if (stat(loc, &st) < 0)
        return xcp__srt_fail(err, -errno, XCP_SR_ERR_BACKEND,
                            "Invalid local path (ISOLocalPath, 226) "
                            "[opterr=%.512s: %s]", loc, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return xcp__srt_fail(err, -ENOTDIR, XCP_SR_ERR_BACKEND,
                            "Invalid local path (ISOLocalPath, 226) "
                            "[opterr=%.512s: not a directory]", loc);
    snprintf(dir, XCP_SR_PATH_MAX, "%s", loc);
    return 0;
}

/* Whether name is an image of the library: a plain file name (no '/',
 * not hidden) ending in .iso or .img. */
static bool iso_name(const char *name)
{
    size_t len = strlen(name);

    return len > 4 && len < XCP_SR_LOCATION_MAX && name[0] != '.' &&
           !strchr(name, '/') && (strcasecmp(name + len - 4, ".iso") == 0 ||
                                  strcasecmp(name + len - 4, ".img") == 0);
}

/* What the library says of one file. */
static int iso_stat_file(const char *dir, const char *location,
                         xcp_sr_vdi_info *out, char *path,
                         xcp_sr_error *err)
{
    struct stat st;

    memset(out, 0, sizeof(*out));
    if (!iso_name(location))
        return xcp__srt_fail(err, -ENOENT, XCP_SR_ERR_VDI_MISSING,
                            "VDI location invalid [opterr='%.300s' is not an "
                            "ISO file name]", location);
    snprintf(path, XCP_SR_PATH_MAX, "%s/%s", dir, location);
    if (lstat(path, &st) < 0)
        return xcp__srt_fail(err, -errno, XCP_SR_ERR_VDI_MISSING,
                            "VDI not found [opterr=%.512s: %s]", path,
                            strerror(errno));
    if (!S_ISREG(st.st_mode))
        return xcp__srt_fail(err, -ENOENT, XCP_SR_ERR_VDI_MISSING,
                            "VDI not found [opterr=%.512s: not a regular "
                            "file]", path);
    snprintf(out->location, sizeof(out->location), "%s", location);
    snprintf(out->format, sizeof(out->format), "raw");
    out->virtual_size = (uint64_t)st.st_size;
    out->physical_utilisation = (uint64_t)st.st_blocks * 512;
    out->read_only = true;
    return 0;
}

static int iso_sr_attach(const xcp_sr_target *sr, xcp_sr_error *err)
{
    char dir[XCP_SR_PATH_MAX];

    return iso_dir(sr, dir, err);
}

static int iso_sr_stat(const xcp_sr_target *sr, xcp_sr_stat *out,
                       xcp_sr_error *err);

/* Nothing to prepare: the directory must exist and is left as it is. */
static int iso_sr_create(const xcp_sr_target *sr, uint64_t *physical_size,
                         xcp_sr_error *err)
{
    xcp_sr_stat st;
    int ret = iso_sr_stat(sr, &st, err);

    if (ret == 0 && physical_size)
        *physical_size = st.physical_size;
    return ret;
}

static int iso_sr_detach(const xcp_sr_target *sr, xcp_sr_error *err)
{
    /* Nothing was mounted or opened by attach. */
    (void)sr;
    (void)err;
    return 0;
}

/* The files are the user's: destroying the SR leaves them. */
static int iso_sr_destroy(const xcp_sr_target *sr, unsigned int flags,
                          xcp_sr_error *err)
{
    (void)sr;
    (void)flags;
    (void)err;
    return 0;
}

static int iso_sr_scan(const xcp_sr_target *sr, xcp_sr_vdi_cb cb, void *ctx,
                       xcp_sr_error *err)
{
    char dir[XCP_SR_PATH_MAX], path[XCP_SR_PATH_MAX];
    xcp_sr_vdi_info v;
    struct dirent *de;
    DIR *d;
    int ret;

    if ((ret = iso_dir(sr, dir, err)) < 0)
        return ret;
    if (!(d = opendir(dir)))
        return xcp__srt_fail(err, -errno, XCP_SR_ERR_BACKEND,
                            "The SR is not available (SRUnavailable, 47) "
                            "[opterr=%.512s: %s]", dir, strerror(errno));
    while (ret == 0 && (de = readdir(d)))
        if (iso_name(de->d_name) &&
            iso_stat_file(dir, de->d_name, &v, path, NULL) == 0)
            ret = cb(ctx, &v);
    closedir(d);
    return ret;
}

static int iso_sr_stat(const xcp_sr_target *sr, xcp_sr_stat *out,
                       xcp_sr_error *err)
{
    char dir[XCP_SR_PATH_MAX];
    struct statvfs fs;
    int ret;

    if ((ret = iso_dir(sr, dir, err)) < 0)
        return ret;
    if (statvfs(dir, &fs) < 0)
        return xcp__srt_fail(err, -errno, XCP_SR_ERR_BACKEND,
                            "SR stat failed [opterr=%.512s: %s]", dir,
                            strerror(errno));
    out->physical_size = (uint64_t)fs.f_blocks * fs.f_frsize;
    out->free_space = (uint64_t)fs.f_bavail * fs.f_frsize;
    out->physical_utilisation = (uint64_t)(fs.f_blocks - fs.f_bfree) *
                                fs.f_frsize;
    return 0;
}

static int iso_vdi_stat(const xcp_sr_target *sr, const char *location,
                        xcp_sr_vdi_info *out, xcp_sr_error *err)
{
    char dir[XCP_SR_PATH_MAX], path[XCP_SR_PATH_MAX];
    int ret;

    if ((ret = iso_dir(sr, dir, err)) < 0)
        return ret;
    return iso_stat_file(dir, location, out, path, err);
}

static int iso_vdi_path(const xcp_sr_target *sr, const char *location,
                        xcp_sr_vdi_path *out, xcp_sr_error *err)
{
    char dir[XCP_SR_PATH_MAX];
    xcp_sr_vdi_info v;
    int ret;

    if ((ret = iso_dir(sr, dir, err)) < 0 ||
        (ret = iso_stat_file(dir, location, &v, out->path, err)) < 0)
        return ret;
    snprintf(out->format, sizeof(out->format), "raw");
    return 0;
}

/* ISO files are read-only VDIs: a stream only reads them. */
static int iso_vdi_stream_open(const xcp_sr_target *sr,
                               const char *location, unsigned int flags,
                               xcp_sr_stream **out, uint64_t *virtual_size,
                               xcp_sr_error *err)
{
    xcp_sr_vdi_path vp;
    int ret;

    *out = NULL;
    if (flags & XCP_SR_STREAM_WRITE)
        return xcp__srt_fail(err, -EROFS, XCP_SR_ERR_VDI_READONLY,
                            "VDI is read-only [opterr=%.300s is an ISO file]",
                            location);
    if ((ret = iso_vdi_path(sr, location, &vp, err)) < 0)
        return ret;
    return xcp__image_stream_open(vp.path, vp.format, 0, out, virtual_size,
                                  err);
}

static const xcp_sr_config_key iso_config_keys[] = {
    { "location",
      "absolute path of the directory holding the ISO files, below one of "
      "the SR roots (XCP_SR_ROOTS) or the state directory",
      true },
    { NULL, NULL, false },
};

static const xcp_sr_ops iso_ops = {
    .version = XCP_SR_OPS_VERSION,
    .sr_create = iso_sr_create,
    .sr_attach = iso_sr_attach,
    .sr_detach = iso_sr_detach,
    .sr_destroy = iso_sr_destroy,
    .sr_scan = iso_sr_scan,
    .sr_stat = iso_sr_stat,
    .vdi_stat = iso_vdi_stat,
    .vdi_path = iso_vdi_path,
    .vdi_stream_open = iso_vdi_stream_open,
    .stream_read = xcp__image_stream_read,
    .stream_write = xcp__image_stream_write,
    .stream_extents = xcp__image_stream_extents,
    .stream_flush = xcp__image_stream_flush,
    .stream_close = xcp__image_stream_close,
};

const xcp_sr_type xcp__sr_type_iso = {
    .name = "iso",
    .description = "Library of ISO files in a local directory, exposed as "
                   "read-only CD VDIs",
    .vendor = "libxcp",
    .copyright = "libxcp contributors",
    .version = "1.0",
    .capabilities = XCP_SR_CAP_SR_SCAN | XCP_SR_CAP_SR_UPDATE |
                    XCP_SR_CAP_VDI_UPDATE,
    .content_type = "iso",
    .config_keys = iso_config_keys,
    .ops = &iso_ops,
};
