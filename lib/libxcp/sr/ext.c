/*
 * ext.c - the `ext` SR type, as XCP-ng's EXT SR: a local block device
 * (device_config:device) formatted with ext4 and mounted; the VDIs are
 * image files in the mount, exactly as in a file SR, whose operations
 * (file.h) do the work on the mounted directory.
 *
 * The mount point is the directory the SR layer chose for the SR
 * (xcp_sr_target.default_location).  sr_create formats the device
 * (mkfs.ext4, spawned with an argument vector) and writes the file SR's
 * marker in the new filesystem; sr_attach mounts it and checks the marker
 * names this SR; sr_detach unmounts; sr_destroy removes the SR's files,
 * unmounts and wipes the filesystem's signature from the device; sr_probe
 * mounts the device read-only on a temporary directory and reports the
 * SR whose marker it finds.
 *
 * Errors read as the EXT SR's (XE_SR_ERRORCODES): what failed, its SM
 * error code, then [opterr=...] with the device or path and the cause.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <xcp/sys/sr.h>

#include "../core/core.h"
#include "file.h"
#include "image_stream.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Bytes zeroed at the start of the device by sr_destroy: the ext4
 * superblock (at 1 KiB) and what blkid looks at. */
#define WIPE_BYTES (1024 * 1024)

/* ext's own failures are all of the backend. */
#define ext_fail(err, code, ...) \
    xcp__srt_fail(err, code, XCP_SR_ERR_BACKEND, __VA_ARGS__)

/* device_config:device, which must be a block device; its st_rdev. */
static int block_device(const xcp_sr_target *t, const char **dev,
                        dev_t *rdev, xcp_sr_error *err)
{
    struct stat st;

    *dev = xcp__sr_dev_config(t, "device");
    if (!*dev || !(*dev)[0])
        return ext_fail(err, -EINVAL, "The request is missing the device "
                        "parameter (ConfigDeviceMissing, 90) "
                        "[opterr=device_config:device]");
    if ((*dev)[0] != '/' || stat(*dev, &st) < 0)
        return ext_fail(err, (*dev)[0] != '/' ? -EINVAL : -errno,
                        "The device is not a valid path "
                        "(ConfigDeviceInvalid, 91) [opterr=%.512s: %s]", *dev,
                        (*dev)[0] != '/' ? "not an absolute path"
                                         : strerror(errno));
    if (!S_ISBLK(st.st_mode))
        return ext_fail(err, -ENOTBLK, "The device is not a valid path "
                        "(ConfigDeviceInvalid, 91) [opterr=%.512s is not a "
                        "block device]", *dev);
    *rdev = st.st_rdev;
    return 0;
}

/* The mount point: the SR layer's directory for the SR. */
static int mount_point(const xcp_sr_target *t, char *mnt, xcp_sr_error *err)
{
    const char *loc = t->default_location;

    if (!loc || loc[0] != '/' ||
        (size_t)snprintf(mnt, XCP_SR_PATH_MAX - XCP_SR_LOCATION_MAX, "%s",
                         loc) >= XCP_SR_PATH_MAX - XCP_SR_LOCATION_MAX)
        return ext_fail(err, -EINVAL, "The SR is not available "
                        "(SRUnavailable, 47) [opterr=no mount point given "
                        "for SR %s]", t->sr_uuid ? t->sr_uuid : "?");
    return 0;
}

/* Whether a filesystem is mounted at mnt; *from: the device it is on. */
static bool mounted(const char *mnt, dev_t *from)
{
    char parent[XCP_SR_PATH_MAX + 4];
    struct stat a, b;

    snprintf(parent, sizeof(parent), "%s/..", mnt);
    if (stat(mnt, &a) < 0 || stat(parent, &b) < 0)
        return false;
    if (from)
        *from = a.st_dev;
    return a.st_dev != b.st_dev || a.st_ino == b.st_ino;
}

/* The file SR target for the mounted directory (kv: its storage). */
static xcp_sr_target file_target(const xcp_sr_target *sr, const char *mnt,
                                 xcp_sr_kv *kv)
{
    xcp_sr_target t = *sr;

    kv->key = "location";
    kv->value = mnt;
    t.device_config = kv;
    t.n_device_config = 1;
    t.default_location = mnt;
    return t;
}

/* Spawn argv; argv[0] is looked up in PATH, then in /usr/sbin and /sbin
 * (where e2fsprogs installs, and which a daemon's PATH may lack). */
static int spawn_tool(pid_t *pid, const posix_spawn_file_actions_t *fa,
                      char *const argv[])
{
    static const char *const dirs[] = { "/usr/sbin", "/sbin" };
    char path[256];
    size_t i;
    int ret = posix_spawnp(pid, argv[0], fa, NULL, argv, environ);

    for (i = 0; ret == ENOENT && i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dirs[i], argv[0]);
        ret = posix_spawn(pid, path, fa, NULL, argv, environ);
    }
    return ret;
}

/*
 * Run argv (see spawn_tool), no shell; stdout and stderr go to
 * a pipe, whose first bytes are kept in out for the error message.
 * Returns 0 if the program exited 0, else -EIO (out says why).
 */
static int run(char *const argv[], char *out, size_t outlen)
{
    posix_spawn_file_actions_t fa;
    size_t used = 0;
    int fds[2], status, ret;
    ssize_t r;
    pid_t pid;
    char sink[512];

    out[0] = '\0';
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
    ret = spawn_tool(&pid, &fa, argv);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (ret != 0) {
        close(fds[0]);
        snprintf(out, outlen, "cannot run %s: %s", argv[0], strerror(ret));
        return -ret;
    }
    while ((r = read(fds[0], sink, sizeof(sink))) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            break;
        if (used + 1 < outlen) {
            size_t n = (size_t)r < outlen - 1 - used ? (size_t)r
                                                      : outlen - 1 - used;
            memcpy(out + used, sink, n);
            used += n;
            out[used] = '\0';
        }
    }
    close(fds[0]);
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -errno;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    /* Keep the message on one line. */
    for (used = 0; out[used]; used++)
        if (out[used] == '\n')
            out[used] = ' ';
    if (!out[0])
        snprintf(out, outlen, "%s exited with status %d", argv[0],
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return -EIO;
}

/* Mount dev (ext4) at mnt, creating mnt if needed. */
static int do_mount(const char *dev, const char *mnt, unsigned long flags,
                    xcp_sr_error *err)
{
    int ret = xcp__mkdir_p(mnt, 0755);

    if (ret == 0 && mount(dev, mnt, "ext4", flags, NULL) < 0)
        ret = -errno;
    if (ret < 0)
        return ext_fail(err, ret, "Logical Volume mount/activate error "
                        "(LVMMount, 52) [opterr=mount %.512s on %.512s: %s]",
                        dev, mnt, strerror(-ret));
    return 0;
}

static int do_umount(const char *mnt, xcp_sr_error *err)
{
    if (umount2(mnt, 0) < 0 && errno != EINVAL)
        return ext_fail(err, -errno, "Logical Volume unmount/deactivate "
                        "error (LVMUnMount, 53) [opterr=umount %.512s: %s]",
                        mnt, strerror(errno));
    rmdir(mnt);
    return 0;
}

/* Mount the SR's device unless it is mounted there already.  *done:
 * whether this call mounted it (to undo).  A different filesystem at the
 * mount point is an error. */
static int ensure_mounted(const xcp_sr_target *sr, const char *mnt,
                          bool *done, xcp_sr_error *err)
{
    const char *dev;
    dev_t rdev, on;
    int ret;

    *done = false;
    if ((ret = block_device(sr, &dev, &rdev, err)) < 0)
        return ret;
    if (mounted(mnt, &on)) {
        if (on == rdev)
            return 0;
        return ext_fail(err, -EBUSY, "The SR is not available "
                        "(SRUnavailable, 47) [opterr=%.512s: another "
                        "filesystem is mounted there, not %.512s]", mnt, dev);
    }
    if ((ret = do_mount(dev, mnt, 0, err)) < 0)
        return ret;
    *done = true;
    return 0;
}

/* Report the SR the file SR's probe found (ctx: where its uuid goes). */
static int found_sr(void *ctx, const xcp_sr_probe_info *info)
{
    snprintf(ctx, XCP_SR_UUID_BUFLEN, "%s", info->sr_uuid);
    return 0;
}

/* Whether dev holds a filesystem with an SR in it, mounted at mnt for a
 * look (read-only unless it is mounted elsewhere already); uuid gets the
 * SR's uuid. */
static bool holds_sr(const xcp_sr_target *sr, const char *dev,
                     const char *mnt, char *uuid)
{
    xcp_sr_target ft;
    xcp_sr_error e;
    xcp_sr_kv kv;
    int ret;

    uuid[0] = '\0';
    /* A filesystem mounted read-write elsewhere (an attached SR) can only
     * be mounted again read-write: the kernel shares it. */
    ret = do_mount(dev, mnt, MS_RDONLY, NULL);
    if (ret == -EBUSY)
        ret = do_mount(dev, mnt, 0, NULL);
    if (ret < 0)
        return false;
    ft = file_target(sr, mnt, &kv);
    xcp__sr_file_ops.sr_probe(&ft, found_sr, uuid, &e);
    do_umount(mnt, NULL);
    return uuid[0] != '\0';
}

/* The SR on device_config:device, if any: its filesystem is mounted
 * read-only on a temporary directory for a look. */
static int ext_sr_probe(const xcp_sr_target *sr, xcp_sr_probe_cb cb,
                        void *ctx, xcp_sr_error *err)
{
    char tmp[] = "/tmp/xcp-ext-probe.XXXXXX";
    xcp_sr_probe_info info;
    const char *dev;
    dev_t rdev;
    bool found;
    int ret;

    if ((ret = block_device(sr, &dev, &rdev, err)) < 0)
        return ret;
    if (!mkdtemp(tmp))
        return ext_fail(err, -errno, "SR probe failed [opterr=mkdtemp %s: "
                        "%s]", tmp, strerror(errno));
    memset(&info, 0, sizeof(info));
    found = holds_sr(sr, dev, tmp, info.sr_uuid);
    rmdir(tmp);
    if (!found)
        return 0;
    snprintf(info.type, sizeof(info.type), "ext");
    snprintf(info.path, sizeof(info.path), "%s", dev);
    return cb(ctx, &info);
}

static int ext_sr_create(const xcp_sr_target *sr, uint64_t *physical_size,
                         xcp_sr_error *err)
{
    char mnt[XCP_SR_PATH_MAX], out[512], other[XCP_SR_UUID_BUFLEN];
    char *argv[] = { "mkfs.ext4", "-F", "-q", "-m", "0", NULL, NULL };
    xcp_sr_target ft;
    xcp_sr_kv kv;
    const char *dev;
    dev_t rdev;
    int ret;

    if ((ret = block_device(sr, &dev, &rdev, err)) < 0 ||
        (ret = mount_point(sr, mnt, err)) < 0)
        return ret;
    if (mounted(mnt, NULL))
        return ext_fail(err, -EEXIST, "The SR already exists (SRExists, 42) "
                        "[opterr=%.512s is mounted]", mnt);
    if (holds_sr(sr, dev, mnt, other))
        return ext_fail(err, -EEXIST, "The SR already exists (SRExists, 42) "
                        "[opterr=%.512s holds SR %s]", dev, other);
    argv[5] = (char *)dev;
    if ((ret = run(argv, out, sizeof(out))) < 0)
        return ext_fail(err, ret, "Logical Volume filesystem creation error "
                        "(LVMFilesystem, 57) [opterr=mkfs.ext4 %.512s: "
                        "%.400s]", dev, out);
    if ((ret = do_mount(dev, mnt, 0, err)) < 0)
        return ret;
    ft = file_target(sr, mnt, &kv);
    ret = xcp__sr_file_ops.sr_create(&ft, physical_size, err);
    if (ret < 0)
        do_umount(mnt, NULL);
    return ret;
}

static int ext_sr_attach(const xcp_sr_target *sr, xcp_sr_error *err)
{
    char mnt[XCP_SR_PATH_MAX];
    xcp_sr_target ft;
    xcp_sr_kv kv;
    bool done;
    int ret;

    if ((ret = mount_point(sr, mnt, err)) < 0 ||
        (ret = ensure_mounted(sr, mnt, &done, err)) < 0)
        return ret;
    ft = file_target(sr, mnt, &kv);
    ret = xcp__sr_file_ops.sr_attach(&ft, err);
    if (ret < 0 && done)
        do_umount(mnt, NULL);
    return ret;
}

static int ext_sr_detach(const xcp_sr_target *sr, xcp_sr_error *err)
{
    char mnt[XCP_SR_PATH_MAX];
    int ret;

    if ((ret = mount_point(sr, mnt, err)) < 0)
        return ret;
    return mounted(mnt, NULL) ? do_umount(mnt, err) : 0;
}

/* Zero the start of the device, so that it no longer reads as ext4. */
static int wipe(const char *dev, xcp_sr_error *err)
{
    static const char zeros[64 * 1024];
    int fd = open(dev, O_WRONLY | O_CLOEXEC), ret = 0;
    off_t off;

    if (fd < 0)
        ret = -errno;
    for (off = 0; ret == 0 && off < WIPE_BYTES; off += sizeof(zeros)) {
        errno = EIO;            /* for a short write, which sets none */
        if (pwrite(fd, zeros, sizeof(zeros), off) != (ssize_t)sizeof(zeros))
            ret = -errno;
    }
    if (ret == 0 && fsync(fd) < 0)
        ret = -errno;
    if (fd >= 0)
        close(fd);
    if (ret < 0)
        return ext_fail(err, ret, "Logical Volume removal error (LVMDelete, "
                        "55) [opterr=wiping %.512s: %s]", dev, strerror(-ret));
    return 0;
}

static int ext_sr_destroy(const xcp_sr_target *sr, unsigned int flags,
                          xcp_sr_error *err)
{
    char mnt[XCP_SR_PATH_MAX];
    xcp_sr_target ft;
    xcp_sr_kv kv;
    const char *dev;
    dev_t rdev;
    bool done;
    int ret;

    if ((ret = mount_point(sr, mnt, err)) < 0 ||
        (ret = block_device(sr, &dev, &rdev, err)) < 0 ||
        (ret = ensure_mounted(sr, mnt, &done, err)) < 0)
        return ret;
    ft = file_target(sr, mnt, &kv);
    ret = xcp__sr_file_ops.sr_destroy(&ft, flags, err);
    if (ret < 0) {
        if (done)
            do_umount(mnt, NULL);
        return ret;
    }
    if ((ret = do_umount(mnt, err)) < 0)
        return ret;
    return wipe(dev, err);
}

/*
 * The other operations are the file SR's on the mounted directory: one
 * forwarding function each, made by these macros (the file SR checks the
 * marker, so an unmounted SR answers "The SR is not available").
 */
#define FILE_TARGET(sr, ft, kv, err)                                        \
    char mnt_[XCP_SR_PATH_MAX];                                             \
    xcp_sr_kv kv;                                                           \
    xcp_sr_target ft;                                                       \
    int r_ = mount_point(sr, mnt_, err);                                    \
    if (r_ < 0)                                                             \
        return r_;                                                          \
    ft = file_target(sr, mnt_, &kv)

#define FORWARD(slot, params, args)                                         \
    static int ext_##slot params                                            \
    {                                                                       \
        FILE_TARGET(sr, ft, kv, err);                                       \
        return xcp__sr_file_ops.slot args;                                  \
    }

FORWARD(sr_scan, (const xcp_sr_target *sr, xcp_sr_vdi_cb cb, void *ctx,
                  xcp_sr_error *err), (&ft, cb, ctx, err))
FORWARD(sr_stat, (const xcp_sr_target *sr, xcp_sr_stat *out,
                  xcp_sr_error *err), (&ft, out, err))
FORWARD(sr_gc, (const xcp_sr_target *sr, unsigned int flags,
                xcp_sr_gc_result *out, xcp_sr_error *err),
        (&ft, flags, out, err))
FORWARD(sr_gc_run, (const xcp_sr_target *sr, unsigned int flags,
                    const xcp_sr_gc_hooks *hooks, xcp_sr_gc_result *out,
                    xcp_sr_error *err), (&ft, flags, hooks, out, err))
FORWARD(vdi_create, (const xcp_sr_target *sr,
                     const xcp_sr_vdi_create_params *params,
                     xcp_sr_vdi_info *out, xcp_sr_error *err),
        (&ft, params, out, err))
FORWARD(vdi_destroy, (const xcp_sr_target *sr, const char *location,
                      xcp_sr_error *err), (&ft, location, err))
FORWARD(vdi_resize, (const xcp_sr_target *sr, const char *location,
                     uint64_t new_size, xcp_sr_vdi_info *out,
                     xcp_sr_error *err), (&ft, location, new_size, out, err))
FORWARD(vdi_stat, (const xcp_sr_target *sr, const char *location,
                   xcp_sr_vdi_info *out, xcp_sr_error *err),
        (&ft, location, out, err))
FORWARD(vdi_snapshot, (const xcp_sr_target *sr, const char *location,
                       xcp_sr_cow_result *out, xcp_sr_error *err),
        (&ft, location, out, err))
FORWARD(vdi_clone, (const xcp_sr_target *sr, const char *location,
                    xcp_sr_cow_result *out, xcp_sr_error *err),
        (&ft, location, out, err))
FORWARD(vdi_path, (const xcp_sr_target *sr, const char *location,
                   xcp_sr_vdi_path *out, xcp_sr_error *err),
        (&ft, location, out, err))
FORWARD(vdi_cow, (const xcp_sr_target *sr, const char *location,
                  bool read_only, const char *uuid, xcp_sr_cow_result *out,
                  xcp_sr_error *err), (&ft, location, read_only, uuid, out,
                                       err))
FORWARD(vdi_cow_live, (const xcp_sr_target *sr, const char *location,
                       bool read_only, const char *uuid,
                       const xcp_sr_cow_hooks *hooks, xcp_sr_cow_result *out,
                       xcp_sr_error *err), (&ft, location, read_only, uuid,
                                            hooks, out, err))
FORWARD(vdi_stream_open, (const xcp_sr_target *sr, const char *location,
                          unsigned int flags, xcp_sr_stream **out,
                          uint64_t *virtual_size, xcp_sr_error *err),
        (&ft, location, flags, out, virtual_size, err))
FORWARD(vdi_cbt_set, (const xcp_sr_target *sr, const char *location,
                      bool enabled, xcp_sr_error *err),
        (&ft, location, enabled, err))
FORWARD(vdi_cbt_changes, (const xcp_sr_target *sr, const char *location,
                          uint8_t *bits, uint64_t nblocks,
                          char prev[XCP_SR_UUID_BUFLEN], xcp_sr_error *err),
        (&ft, location, bits, nblocks, prev, err))
FORWARD(vdi_data_destroy, (const xcp_sr_target *sr, const char *location,
                           xcp_sr_error *err), (&ft, location, err))
FORWARD(vdi_changes, (const xcp_sr_target *sr, const char *location,
                      const char *base, uint64_t length, bool *related,
                      xcp_sr_extent_cb cb, void *ctx, xcp_sr_error *err),
        (&ft, location, base, length, related, cb, ctx, err))

/* Both SRs are ext SRs, each mounted at its own directory. */
static int ext_vdi_copy(const xcp_sr_target *src, const char *location,
                        const xcp_sr_target *dst, const char *uuid,
                        xcp_sr_vdi_info *out, xcp_sr_error *err)
{
    char dmnt[XCP_SR_PATH_MAX];
    xcp_sr_target fd;
    xcp_sr_kv dkv;
    int ret;

    FILE_TARGET(src, fs, skv, err);
    if ((ret = mount_point(dst, dmnt, err)) < 0)
        return ret;
    fd = file_target(dst, dmnt, &dkv);
    return xcp__sr_file_ops.vdi_copy(&fs, location, &fd, uuid, out, err);
}

static const xcp_sr_config_key ext_config_keys[] = {
    { "device",
      "block device to format with ext4 and mount (e.g. /dev/sdb3); "
      "SR.create erases it",
      true },
    { NULL, NULL, false },
};

static const xcp_sr_ops ext_ops = {
    .version = XCP_SR_OPS_VERSION,
    .sr_create = ext_sr_create,
    .sr_probe = ext_sr_probe,
    .sr_attach = ext_sr_attach,
    .sr_detach = ext_sr_detach,
    .sr_destroy = ext_sr_destroy,
    .sr_scan = ext_sr_scan,
    .sr_stat = ext_sr_stat,
    .sr_gc = ext_sr_gc,
    .vdi_create = ext_vdi_create,
    .vdi_destroy = ext_vdi_destroy,
    .vdi_resize = ext_vdi_resize,
    .vdi_stat = ext_vdi_stat,
    .vdi_snapshot = ext_vdi_snapshot,
    .vdi_clone = ext_vdi_clone,
    .vdi_copy = ext_vdi_copy,
    .vdi_path = ext_vdi_path,
    .vdi_cow = ext_vdi_cow,
    .vdi_stream_open = ext_vdi_stream_open,
    /* A stream holds its open image, as the file SR's. */
    .stream_read = xcp__image_stream_read,
    .stream_write = xcp__image_stream_write,
    .stream_extents = xcp__image_stream_extents,
    .stream_flush = xcp__image_stream_flush,
    .stream_close = xcp__image_stream_close,
    .vdi_cbt_set = ext_vdi_cbt_set,
    .vdi_cbt_changes = ext_vdi_cbt_changes,
    .vdi_data_destroy = ext_vdi_data_destroy,
    .sr_gc_run = ext_sr_gc_run,
    .vdi_cow_live = ext_vdi_cow_live,
    .vdi_changes = ext_vdi_changes,
    .stream_map = xcp__image_stream_map,
};

const xcp_sr_type xcp__sr_type_ext = {
    .name = "ext",
    .description = "Local ext4 filesystem on a block device, holding qcow2 "
                   "images (thin provisioned)",
    .vendor = "libxcp",
    .copyright = "libxcp contributors",
    .version = "1.0",
    .capabilities = XCP_SR_CAP_SR_PROBE | XCP_SR_CAP_SR_SCAN |
                    XCP_SR_CAP_SR_UPDATE | XCP_SR_CAP_SR_GC |
                    XCP_SR_CAP_VDI_CREATE |
                    XCP_SR_CAP_VDI_DELETE | XCP_SR_CAP_VDI_UPDATE |
                    XCP_SR_CAP_VDI_SNAPSHOT | XCP_SR_CAP_VDI_CLONE |
                    XCP_SR_CAP_VDI_RESIZE | XCP_SR_CAP_VDI_RESIZE_ONLINE |
                    XCP_SR_CAP_VDI_COPY |
                    XCP_SR_CAP_THIN_PROVISIONING |
                    XCP_SR_CAP_VDI_CONFIG_CBT,
    .content_type = "user",
    .config_keys = ext_config_keys,
    .ops = &ext_ops,
};
