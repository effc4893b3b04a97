/*
 * hv/xen/xen_blk.c - the disks of running domains on Xen (driver slots
 * disk_resize, disk_cbt, disk_size, disk_snapshot, disk_stream). A qcow2
 * or VHD disk is served by QEMU's qdisk back end in dom0 (xen-block),
 * which keeps its image open: it cannot be paused while the library
 * rewrites the image (no disk_pause), so QEMU itself changes it, asked
 * over the QMP socket libxl gives each device model
 * (/var/run/xen/qmp-libxl-<domid>): block_resize (xen-block
 * then writes the new "sectors" to xenstore and blkfront sees it),
 * block-dirty-bitmap-add/-remove of a persistent bitmap (stored in the
 * qcow2 image when QEMU closes it), and blockdev-snapshot-sync onto an
 * existing overlay (the writes move onto it; the old image becomes its
 * backing node), and block-stream for the leaf coalesce of a running disk
 * (QEMU copies the chain below into the image it writes, then records a
 * new backing file in it: only the file QEMU holds read-write is written,
 * where block-commit would reopen a backing image by its name, which a
 * live snapshot gave to the leaf).
 *
 * The node: xen-block names the format node it opens "<vdev>-<driver>"
 * (hw/block/xen-block.c: the drive id is the backend's "dev"); each
 * overlay of disk_snapshot is named "<vdev>-<driver>-<n>" here, and the
 * one serving the guest is the root of the device's block backend, which
 * query-block lists. (Image paths do not tell: the library renames the
 * overlay into the disk's name, and the old node keeps that name.)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <libxl.h>
#include <libxl_utils.h>
#include <xenstore.h>

#include "xen_blk.h"
#include "xen_migrate.h"

#define QMP_DIR "/var/run/xen"
#define QMP_TIMEOUT_MS 30000
#define REPLY_MAX (1u << 20)

/* One QMP session: the socket and what was read past the last line. */
struct qmp {
    int fd;
    char *buf;
    size_t len;
};

static void qmp_close(struct qmp *q)
{
    if (q->fd >= 0)
        close(q->fd);
    free(q->buf);
    q->fd = -1;
    q->buf = NULL;
}

/* The next line QEMU sends (malloc()ed into *line), waiting at most the
 * QMP timeout. */
static int qmp_line(struct qmp *q, char **line, xcp_hv_error *err)
{
    struct pollfd p = {q->fd, POLLIN, 0};
    char *nl, *nb;
    ssize_t n;

    for (;;) {
        if (q->buf && (nl = memchr(q->buf, '\n', q->len))) {
            size_t l = (size_t)(nl - q->buf);
            if (!(*line = strndup(q->buf, l)))
                return xcp__hv_error_set(err, -ENOMEM, "xen: out of memory");
            memmove(q->buf, nl + 1, q->len - l - 1);
            q->len -= l + 1;
            return 0;
        }
        if (q->len >= REPLY_MAX)
            return xcp__hv_error_set(err, -EPROTO, "xen: QMP reply too long");
        if (poll(&p, 1, QMP_TIMEOUT_MS) <= 0)
            return xcp__hv_error_set(err, -ETIMEDOUT, "xen: QMP: no reply "
                                     "from QEMU in %d ms", QMP_TIMEOUT_MS);
        if (!(nb = realloc(q->buf, q->len + 65536 + 1)))
            return xcp__hv_error_set(err, -ENOMEM, "xen: out of memory");
        q->buf = nb;
        n = read(q->fd, q->buf + q->len, 65536);
        if (n <= 0)
            return xcp__hv_error_set(err, -EPIPE, "xen: QMP: QEMU closed "
                                     "the socket");
        q->len += (size_t)n;
    }
}

/*
 * Sends one command (a JSON object) and returns QEMU's reply line in
 * *reply (malloc()ed), events skipped. An error reply fails with -EIO and
 * QEMU's "desc" in the message.
 */
static int qmp_exec(struct qmp *q, const char *cmd, char **reply,
                    xcp_hv_error *err)
{
    size_t len = strlen(cmd), off = 0;
    char *line = NULL, *d;
    ssize_t n;
    int rc;

    while (off < len) {
        n = write(q->fd, cmd + off, len - off);
        if (n <= 0)
            return xcp__hv_error_set(err, -EPIPE, "xen: QMP: write: %s",
                                     strerror(errno));
        off += (size_t)n;
    }
    for (;;) {
        if ((rc = qmp_line(q, &line, err)) < 0)
            return rc;
        if (strstr(line, "\"return\"")) {
            *reply = line;
            return 0;
        }
        if (strstr(line, "\"error\"")) {
            d = strstr(line, "\"desc\": \"");
            rc = xcp__hv_error_set(err, -EIO, "xen: QEMU refused %.60s: "
                                   "%.300s", cmd, d ? d + 9 : line);
            free(line);
            return rc;
        }
        free(line);             /* an event */
    }
}

/* Connects to domain domid's device model and leaves command mode on. */
static int qmp_open(struct qmp *q, uint32_t domid, xcp_hv_error *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char *line = NULL;
    int rc;

    q->buf = NULL;
    q->len = 0;
    snprintf(sa.sun_path, sizeof(sa.sun_path), QMP_DIR "/qmp-libxl-%" PRIu32,
             domid);
    q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (q->fd < 0 || connect(q->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        rc = xcp__hv_error_set(err, errno == ENOENT ? -ENOTSUP : -errno,
                               "xen: domain %" PRIu32 ": no QEMU back end "
                               "to ask (%s: %s)", domid, sa.sun_path,
                               strerror(errno));
        qmp_close(q);
        return rc;
    }
    if ((rc = qmp_line(q, &line, err)) < 0 || !strstr(line, "\"QMP\"") ||
        (free(line), line = NULL,
         rc = qmp_exec(q, "{\"execute\": \"qmp_capabilities\"}\n", &line,
                       err)) < 0) {
        if (rc == 0)
            rc = xcp__hv_error_set(err, -EPROTO, "xen: %s: no QMP greeting",
                                   sa.sun_path);
        free(line);
        qmp_close(q);
        return rc;
    }
    free(line);
    return 0;
}

/* The image path of disk vdev, as libxl handed it to qdisk. */
static int disk_image(void *self, uint32_t domid, const char *vdev,
                      char *path, size_t plen, xcp_hv_error *err)
{
    libxl_device_disk d;
    int rc = 0;

    libxl_device_disk_init(&d);
    if (libxl_vdev_to_device_disk(xcp__xen_ctx(self), domid, vdev, &d) != 0)
        rc = xcp__hv_error_set(err, -ENODEV, "xen: domain %" PRIu32
                               " has no disk %s", domid, vdev);
    else if (d.backend != LIBXL_DISK_BACKEND_QDISK &&
             d.format != LIBXL_DISK_FORMAT_QCOW2 &&
             d.format != LIBXL_DISK_FORMAT_VHD)
        rc = xcp__hv_error_set(err, -ENOTSUP, "xen: domain %" PRIu32
                               ": disk %s is not served by QEMU", domid,
                               vdev);
    else
        snprintf(path, plen, "%s", d.pdev_path ? d.pdev_path : "");
    libxl_device_disk_dispose(&d);
    return rc;
}

/* The object of reply that contains position at (a top-level node). */
static void enclosing(const char *reply, const char *at, const char **b,
                      const char **e)
{
    int depth = 0;

    for (*b = at; *b > reply; (*b)--) {
        if (**b == '}')
            depth++;
        else if (**b == '{' && depth-- == 0)
            break;
    }
    depth = 0;
    for (*e = at; **e; (*e)++) {
        if (**e == '{')
            depth++;
        else if (**e == '}' && depth-- == 0)
            break;
    }
}

/*
 * The node of disk vdev that serves the guest ("<vdev>-<driver>", or an
 * overlay of it, "<vdev>-<driver>-<n>": see the head of this file): its
 * name in node, and its object in *obj, *obj_len (inside *reply, which
 * the caller frees).
 */
static int find_node(struct qmp *q, const char *vdev, char *node,
                     size_t nlen, char **reply, const char **obj,
                     size_t *obj_len, xcp_hv_error *err)
{
    const char *at, *b, *e, *nn;
    size_t vl = strlen(vdev), l, sl = 0;
    char seen[160] = "";
    int rc;

    if ((rc = qmp_exec(q, "{\"execute\": \"query-block\"}\n", reply,
                       err)) < 0)
        return rc;
    for (at = *reply; (at = strstr(at, "\"node-name\": \"")); at++) {
        nn = at + 14;
        l = strcspn(nn, "\"");
        if (l <= vl + 1 || strncmp(nn, vdev, vl) != 0 || nn[vl] != '-') {
            if (sl < sizeof(seen))  /* for the error below */
                sl += (size_t)snprintf(seen + sl, sizeof(seen) - sl, " %.*s",
                                       (int)l, nn);
            continue;
        }
        enclosing(*reply, at, &b, &e);
        snprintf(node, nlen, "%.*s", (int)l, nn);
        *obj = b;
        *obj_len = (size_t)(e - b);
        return 0;
    }
    free(*reply);
    *reply = NULL;
    return xcp__hv_error_set(err, -ENODEV, "xen: QEMU serves no block node "
                             "of disk %s (it serves:%s)", vdev,
                             seen[0] ? seen : " none");
}

/* Opens QMP to domain domid and finds the node of its disk vdev; the
 * image libxl gave QEMU in path (NULL: not wanted). */
static int open_node(void *self, uint32_t domid, const char *vdev,
                     struct qmp *q, char *node, size_t nlen, char **reply,
                     const char **obj, size_t *obj_len, char *path,
                     xcp_hv_error *err)
{
    char own[512];
    int rc;

    if (!path)
        path = own;
    if ((rc = xcp__xen_guest(self, domid, "change a disk of", err)) < 0 ||
        (rc = disk_image(self, domid, vdev, path, sizeof(own), err)) < 0 ||
        (rc = qmp_open(q, domid, err)) < 0)
        return rc;
    if ((rc = find_node(q, vdev, node, nlen, reply, obj, obj_len, err)) < 0)
        qmp_close(q);
    return rc;
}

int xcp__xen_disk_resize(void *self, uint32_t domid, const char *vdev,
                         uint64_t bytes, xcp_hv_error *err)
{
    struct qmp q;
    char node[128], cmd[320], *reply = NULL, *r2 = NULL;
    const char *obj;
    size_t olen;
    int rc = open_node(self, domid, vdev, &q, node, sizeof(node), &reply,
                       &obj, &olen, NULL, err);

    if (rc < 0)
        return rc;
    snprintf(cmd, sizeof(cmd), "{\"execute\": \"block_resize\", "
             "\"arguments\": {\"node-name\": \"%s\", \"size\": %" PRIu64
             "}}\n", node, bytes);
    rc = qmp_exec(&q, cmd, &r2, err);
    free(r2);
    free(reply);
    qmp_close(&q);
    return rc;
}

int xcp__xen_disk_cbt(void *self, uint32_t domid, const char *vdev,
                      const char *bitmap, bool on, xcp_hv_error *err)
{
    struct qmp q;
    char node[128], cmd[512], want[160], name[160], *reply = NULL, *r2;
    const char *obj, *at;
    size_t olen, wl;
    int rc = open_node(self, domid, vdev, &q, node, sizeof(node), &reply,
                       &obj, &olen, NULL, err);

    if (rc < 0)
        return rc;
    if (!memmem(obj, olen, "\"drv\": \"qcow2\"", 14)) {
        rc = xcp__hv_error_set(err, -ENOTSUP, "xen: domain %" PRIu32
                               ": disk %s is no qcow2 image: no bitmaps",
                               domid, vdev);
    } else if (on) {
        snprintf(cmd, sizeof(cmd), "{\"execute\": \"block-dirty-bitmap-add\","
                 " \"arguments\": {\"node\": \"%s\", \"name\": \"%s\", "
                 "\"granularity\": 65536, \"persistent\": true}}\n", node,
                 bitmap);
        r2 = NULL;
        rc = qmp_exec(&q, cmd, &r2, err);
        free(r2);
    } else {
        /* "bitmap" and "bitmap:<suffix>", wherever the node lists them */
        wl = (size_t)snprintf(want, sizeof(want), "\"name\": \"%s", bitmap);
        for (at = obj; rc == 0 && (at = memmem(at, olen - (size_t)(at - obj),
                                               want, wl)); at += wl) {
            if (at[wl] != '"' && at[wl] != ':')
                continue;
            snprintf(name, sizeof(name), "%.*s",
                     (int)strcspn(at + 9, "\""), at + 9);
            snprintf(cmd, sizeof(cmd), "{\"execute\": "
                     "\"block-dirty-bitmap-remove\", \"arguments\": "
                     "{\"node\": \"%s\", \"name\": \"%s\"}}\n", node, name);
            r2 = NULL;
            rc = qmp_exec(&q, cmd, &r2, err);
            free(r2);
        }
    }
    free(reply);
    qmp_close(&q);
    return rc;
}

int xcp__xen_disk_size(void *self, uint32_t domid, const char *vdev,
                       uint64_t *bytes, xcp_hv_error *err)
{
    struct xs_handle *xs;
    char dir[96], p[320], **ids;
    char *be, *dev, *sec;
    unsigned n = 0, i;
    int rc;

    if ((rc = xcp__xen_guest(self, domid, "read a disk of", err)) < 0)
        return rc;
    if (!(xs = xs_open(0)))
        return xcp__hv_error_set(err, -errno, "xen: xenstore: %s",
                                 strerror(errno));
    rc = xcp__hv_error_set(err, -ENODEV, "xen: domain %" PRIu32 " has no "
                           "disk %s", domid, vdev);
    snprintf(dir, sizeof(dir), "/local/domain/%" PRIu32 "/device/vbd",
             domid);
    ids = xs_directory(xs, XBT_NULL, dir, &n);
    for (i = 0; ids && i < n && rc < 0; i++) {
        snprintf(p, sizeof(p), "%s/%s/backend", dir, ids[i]);
        if (!(be = xs_read(xs, XBT_NULL, p, NULL)))
            continue;
        snprintf(p, sizeof(p), "%s/dev", be);
        dev = xs_read(xs, XBT_NULL, p, NULL);
        if (dev && !strcmp(dev, vdev)) {
            /* in 512-byte units whatever "sector-size" says (blkif.h) */
            snprintf(p, sizeof(p), "%s/sectors", be);
            sec = xs_read(xs, XBT_NULL, p, NULL);
            if (sec) {
                *bytes = strtoull(sec, NULL, 10) * 512;
                rc = 0;
                xcp__hv_error_clear(err);
            }
            free(sec);
        }
        free(dev);
        free(be);
    }
    free(ids);
    xs_close(xs);
    return rc;
}

/* The length of "<vdev>-<driver>" at the start of a node's name. */
static int base_len(const char *node)
{
    size_t v = strcspn(node, "-");

    return node[v] ? (int)(v + 1 + strcspn(node + v + 1, "-")) : (int)v;
}

int xcp__xen_disk_snapshot(void *self, uint32_t domid, const char *vdev,
                           const char *overlay, const char *format,
                           xcp_hv_error *err)
{
    struct qmp q;
    struct timespec ts;
    char node[128], path[512], cmd[1536], *reply = NULL, *r2 = NULL;
    const char *obj;
    size_t olen;
    int rc;

    if (!format || strcmp(format, "qcow2") != 0)
        return xcp__hv_error_set(err, -ENOTSUP, "xen: domain %" PRIu32
                                 ": QEMU cannot move disk %s onto a %s "
                                 "overlay (qcow2 only)", domid, vdev,
                                 format ? format : "raw");
    if (strlen(overlay) > 1024 || strpbrk(overlay, "\"\\"))
        return xcp__hv_error_set(err, -EINVAL, "xen: overlay path %.64s... "
                                 "cannot be given to QEMU", overlay);
    rc = open_node(self, domid, vdev, &q, node, sizeof(node), &reply, &obj,
                   &olen, path, err);
    if (rc < 0)
        return rc;
    if (!memmem(obj, olen, "\"drv\": \"qcow2\"", 14))
        rc = xcp__hv_error_set(err, -ENOTSUP, "xen: domain %" PRIu32
                               ": disk %s is no qcow2 image: it cannot "
                               "have an overlay", domid, vdev);
    else
        rc = xcp__hv_overlay_check(overlay, path, err);
    if (rc == 0) {
        /* a name no node of this QEMU had: the nanoseconds now */
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(cmd, sizeof(cmd), "{\"execute\": \"blockdev-snapshot-sync\","
                 " \"arguments\": {\"node-name\": \"%s\", "
                 "\"snapshot-file\": \"%s\", \"snapshot-node-name\": "
                 "\"%.*s-%" PRIx64 "\", \"format\": \"qcow2\", \"mode\": "
                 "\"existing\"}}\n", node, overlay, base_len(node), node,
                 ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) &
                     0xffffffffffffu);
        rc = qmp_exec(&q, cmd, &r2, err);
        free(r2);
    }
    free(reply);
    qmp_close(&q);
    return rc;
}

/* ---- leaf coalesce by QEMU: block-stream (disk_stream) ------------------ */

/* The value of "key" in the JSON object [b, e) of a QMP reply, as text up
 * to its end (a number's digits, a string's characters), into out; false
 * when the object has no such key. */
static bool obj_field(const char *b, const char *e, const char *key,
                      char *out, size_t len)
{
    char want[64];
    size_t wl = (size_t)snprintf(want, sizeof(want), "\"%s\": ", key);
    const char *at = memmem(b, (size_t)(e - b), want, wl);
    size_t l;

    if (!at)
        return false;
    at += wl;
    if (*at == '"')
        at++;
    l = strcspn(at, "\",}");
    snprintf(out, len, "%.*s", (int)l, at);
    return true;
}

/* The object of reply in which "key": value (a number: no quotes, as
 * text) stands, and another field it must have (NULL: none), or false. */
static bool find_obj(const char *reply, const char *key, const char *value,
                     bool quoted, const char *also, const char **b,
                     const char **e)
{
    char want[200];
    size_t wl = (size_t)snprintf(want, sizeof(want), quoted ? "\"%s\": \"%s\""
                                                            : "\"%s\": %s",
                                 key, value);
    const char *at;

    for (at = reply; (at = strstr(at, want)); at += wl) {
        if (!quoted && (at[wl] >= '0' && at[wl] <= '9'))
            continue;           /* "id": 4 is not "id": 42 */
        enclosing(reply, at, b, e);
        if (!also || memmem(*b, (size_t)(*e - *b), also, strlen(also)))
            return true;
    }
    return false;
}

#define MAX_CHAIN_NODES 64

/*
 * The format nodes below node top in QEMU's block graph (the reply of
 * x-debug-query-block-graph), following "backing" edges: their names into
 * below[], top first, their count in *n. (Image names do not tell: see
 * the head of this file.)
 */
static int chain_below(const char *graph, const char *top,
                       char below[][128], size_t *n, xcp_hv_error *err)
{
    const char *b, *e;
    char id[32], child[32];

    *n = 0;
    if (!find_obj(graph, "name", top, true, "\"type\": \"block-driver\"",
                  &b, &e) || !obj_field(b, e, "id", id, sizeof(id)))
        return xcp__hv_error_set(err, -ENODEV, "xen: node %s is not in "
                                 "QEMU's block graph", top);
    while (find_obj(graph, "parent", id, false, "\"name\": \"backing\"", &b,
                    &e) && obj_field(b, e, "child", child, sizeof(child))) {
        if (*n == MAX_CHAIN_NODES ||
            !find_obj(graph, "id", child, false,
                      "\"type\": \"block-driver\"", &b, &e) ||
            !obj_field(b, e, "name", below[*n], sizeof(below[0])))
            return xcp__hv_error_set(err, -EPROTO, "xen: QEMU's block graph "
                                     "of %s cannot be followed", top);
        (*n)++;
        snprintf(id, sizeof(id), "%s", child);
    }
    return 0;
}

/*
 * Our job on disk vdev in the reply of query-jobs: 1 while it runs (its
 * progress in *done, *total); 0 when none is there, or it was over and is
 * dismissed now (the chain then says what it did); -EIO with QEMU's
 * reason when it failed (dismissed too).
 */
static int stream_job(struct qmp *q, const char *jobs, const char *job,
                      uint64_t *done, uint64_t *total, xcp_hv_error *err)
{
    const char *b, *e;
    char status[32], num[32], why[400], cmd[200], *r = NULL;
    bool failed;
    int rc;

    if (!find_obj(jobs, "id", job, true, NULL, &b, &e) ||
        !obj_field(b, e, "status", status, sizeof(status)))
        return 0;
    if (obj_field(b, e, "current-progress", num, sizeof(num)))
        *done = strtoull(num, NULL, 10);
    if (obj_field(b, e, "total-progress", num, sizeof(num)))
        *total = strtoull(num, NULL, 10);
    if (strcmp(status, "concluded") != 0)
        return 1;
    failed = obj_field(b, e, "error", why, sizeof(why));
    snprintf(cmd, sizeof(cmd), "{\"execute\": \"job-dismiss\", "
             "\"arguments\": {\"id\": \"%s\"}}\n", job);
    if ((rc = qmp_exec(q, cmd, &r, err)) < 0)
        return rc;
    free(r);
    return failed ? xcp__hv_error_set(err, -EIO, "xen: QEMU's block-stream "
                                      "of %s failed: %s", job, why)
                  : 0;
}

int xcp__xen_disk_stream(void *self, uint32_t domid, const char *vdev,
                         unsigned keep, const char *backing, uint64_t *done,
                         uint64_t *total, xcp_hv_error *err)
{
    char below[MAX_CHAIN_NODES][128];
    struct qmp q;
    char node[128], path[512], job[96], cmd[1024], base[200];
    char *reply = NULL, *r2 = NULL;
    const char *obj;
    size_t olen, n = 0;
    int rc;

    *done = *total = 0;
    if (keep && (!backing || !backing[0] || strlen(backing) > 255 ||
                 strpbrk(backing, "\"\\/")))
        return xcp__hv_error_set(err, -EINVAL, "xen: disk %s: no backing "
                                 "file to record for QEMU", vdev);
    snprintf(job, sizeof(job), "xcp-stream-%s", vdev);
    if ((rc = xcp__xen_guest(self, domid, "coalesce a disk of", err)) < 0 ||
        (rc = disk_image(self, domid, vdev, path, sizeof(path), err)) < 0 ||
        (rc = qmp_open(&q, domid, err)) < 0)
        return rc;
    /* a copy under way is followed (one over is dismissed: the chain
     * below tells whether it is what is asked now) */
    rc = qmp_exec(&q, "{\"execute\": \"query-jobs\"}\n", &reply, err);
    if (rc == 0)
        rc = stream_job(&q, reply, job, done, total, err);
    free(reply);
    reply = NULL;
    if (rc != 0) {
        qmp_close(&q);
        return rc;
    }
    if ((rc = find_node(&q, vdev, node, sizeof(node), &reply, &obj, &olen,
                        err)) < 0) {
        qmp_close(&q);
        return rc;
    }
    if (!memmem(obj, olen, "\"drv\": \"qcow2\"", 14))
        rc = xcp__hv_error_set(err, -ENOTSUP, "xen: domain %" PRIu32
                               ": disk %s is no qcow2 image: QEMU cannot "
                               "stream into it", domid, vdev);
    free(reply);
    reply = NULL;
    if (rc == 0)
        rc = qmp_exec(&q, "{\"execute\": \"x-debug-query-block-graph\"}\n",
                      &reply, err);
    if (rc == 0)
        rc = chain_below(reply, node, below, &n, err);
    if (rc == 0 && n < keep)
        rc = xcp__hv_error_set(err, -EINVAL, "xen: disk %s: QEMU's chain "
                               "below %s is %zu images deep, not %u or more",
                               vdev, node, n, keep);
    if (rc == 0 && n > keep) {
        /* the last `keep` nodes stay: the copy stops at the first */
        base[0] = '\0';
        if (keep)
            snprintf(base, sizeof(base), ", \"base-node\": \"%s\", "
                     "\"backing-file\": \"%s\"", below[n - keep], backing);
        snprintf(cmd, sizeof(cmd), "{\"execute\": \"block-stream\", "
                 "\"arguments\": {\"job-id\": \"%s\", \"device\": \"%s\"%s, "
                 "\"auto-dismiss\": false, \"filter-node-name\": "
                 "\"xcp-cor-%s\"}}\n", job, node, base, vdev);
        rc = qmp_exec(&q, cmd, &r2, err);
        free(r2);
        if (rc == 0)
            rc = 1;
    }
    free(reply);
    qmp_close(&q);
    return rc;
}
