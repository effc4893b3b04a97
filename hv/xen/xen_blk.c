/*
 * hv/xen/xen_blk.c - the disks of running domains on Xen (driver slots
 * disk_resize, disk_cbt, disk_size, disk_snapshot, disk_stream,
 * disk_stream_cancel). A qcow2 or VHD disk is served by QEMU's qdisk back
 * end in dom0 (xen-block), which keeps its image open: it cannot be
 * paused while the library rewrites the image (no disk_pause), so QEMU
 * itself changes it, asked over the QMP socket libxl gives each device
 * model (/var/run/xen/qmp-libxl-<domid>): block_resize (xen-block then
 * writes the new "sectors" to xenstore and blkfront sees it),
 * block-dirty-bitmap-add/-remove of a persistent bitmap (stored in the
 * qcow2 image when QEMU closes it), and blockdev-snapshot-sync onto an
 * existing overlay (the writes move onto it; the old image becomes its
 * backing node), and block-stream for the leaf coalesce of a running disk
 * (QEMU copies the chain below into the image it writes, then records a
 * new backing file in it: only the file QEMU holds read-write is written,
 * where block-commit would reopen a backing image by its name, which a
 * live snapshot gave to the leaf); block-job-cancel stops it. QMP's
 * replies are JSON documents, decoded with jansson; an error QEMU gives
 * comes back with its class and description.
 *
 * The node: xen-block names the format node it opens "<vdev>-<driver>"
 * (hw/block/xen-block.c: the drive id is the backend's "dev"); each
 * overlay of disk_snapshot is named "<vdev>-<driver>-<n>" here, and the
 * one serving the guest is the root of the device's block backend, which
 * query-block lists. (Image paths do not tell: the library renames the
 * overlay into the disk's name, and the old node keeps that name.) While
 * block-stream runs, that root is its copy-on-read filter,
 * "xcp-cor-<vdev>": the disk is busy until the job is over or cancelled.
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

#include <jansson.h>
#include <libxl.h>
#include <libxl_utils.h>
#include <xenstore.h>

#include "xen_blk.h"
#include "xen_migrate.h"

#define QMP_DIR "/var/run/xen"
#define QMP_TIMEOUT_MS 30000
#define REPLY_MAX (1u << 20)
/* How long a cancelled block job may take to be over, and how often it
 * is asked after. */
#define CANCEL_TIMEOUT_MS 60000
#define CANCEL_POLL_MS 100

/* One QMP session: the socket and what was read past the last line. */
struct qmp {
    int fd;
    char *buf;
    size_t len;
};

static int oom(xcp_hv_error *err)
{
    return xcp__hv_error_set(err, -ENOMEM, "xen: out of memory");
}

static void qmp_close(struct qmp *q)
{
    if (q->fd >= 0)
        close(q->fd);
    free(q->buf);
    q->fd = -1;
    q->buf = NULL;
}

/* The next message QEMU sends (a JSON object, into *msg), waiting at most
 * the QMP timeout. */
static int qmp_message(struct qmp *q, json_t **msg, xcp_hv_error *err)
{
    struct pollfd p = {q->fd, POLLIN, 0};
    json_error_t je;
    char *nl, *nb;
    ssize_t n;
    size_t l;

    for (;;) {
        if (q->buf && (nl = memchr(q->buf, '\n', q->len))) {
            l = (size_t)(nl - q->buf);
            *msg = json_loadb(q->buf, l, 0, &je);
            if (*msg && !json_is_object(*msg)) {
                json_decref(*msg);
                *msg = NULL;
            }
            if (!*msg)
                xcp__hv_error_set(err, -EPROTO, "xen: QMP: QEMU sent no "
                                  "JSON object: %.80s", q->buf);
            memmove(q->buf, nl + 1, q->len - l - 1);
            q->len -= l + 1;
            return *msg ? 0 : err->code;
        }
        if (q->len >= REPLY_MAX)
            return xcp__hv_error_set(err, -EPROTO, "xen: QMP reply too long");
        if (poll(&p, 1, QMP_TIMEOUT_MS) <= 0)
            return xcp__hv_error_set(err, -ETIMEDOUT, "xen: QMP: no reply "
                                     "from QEMU in %d ms", QMP_TIMEOUT_MS);
        if (!(nb = realloc(q->buf, q->len + 65536 + 1)))
            return oom(err);
        q->buf = nb;
        n = read(q->fd, q->buf + q->len, 65536);
        if (n <= 0)
            return xcp__hv_error_set(err, -EPIPE, "xen: QMP: QEMU closed "
                                     "the socket");
        q->len += (size_t)n;
    }
}

/* The string member key of object o, or NULL. */
static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* An error reply: QEMU's class and description; its class says the
 * code (a device QEMU does not know: -ENODEV, else -EIO). */
static int qmp_error(const char *execute, const json_t *e, xcp_hv_error *err)
{
    const char *cls = jstr(e, "class"), *desc = jstr(e, "desc");

    return xcp__hv_error_set(err, cls && !strcmp(cls, "DeviceNotFound")
                                      ? -ENODEV
                                      : -EIO,
                             "xen: QEMU refused %s: %s: %s", execute,
                             cls ? cls : "error", desc ? desc : "(no reason)");
}

/*
 * Runs QMP command execute, with args (a JSON object, taken) when
 * has_args (args NULL then: no memory), and returns QEMU's "return"
 * value in *ret (a reference the caller drops; ret NULL: not wanted),
 * events skipped. An error reply fails with QEMU's class and description
 * (qmp_error).
 */
static int qmp_exec(struct qmp *q, const char *execute, json_t *args,
                    bool has_args, json_t **ret, xcp_hv_error *err)
{
    json_t *cmd = json_pack("{s:s}", "execute", execute), *m, *v;
    char *text = NULL;
    size_t len, off = 0;
    ssize_t n;
    int rc;

    if (ret)
        *ret = NULL;
    if (cmd && has_args &&
        (!args || json_object_set_new(cmd, "arguments", args) < 0)) {
        json_decref(cmd); /* args is freed */
        cmd = NULL;
    } else if (!cmd) {
        json_decref(args);
    }
    text = cmd ? json_dumps(cmd, JSON_COMPACT) : NULL;
    json_decref(cmd);
    if (!text)
        return oom(err);
    len = strlen(text);
    text[len++] = '\n'; /* over the NUL: written by length */
    while (off < len) {
        n = write(q->fd, text + off, len - off);
        if (n <= 0) {
            free(text);
            return xcp__hv_error_set(err, -EPIPE, "xen: QMP: write: %s",
                                     strerror(errno));
        }
        off += (size_t)n;
    }
    free(text);
    for (;;) {
        if ((rc = qmp_message(q, &m, err)) < 0)
            return rc;
        if ((v = json_object_get(m, "return"))) {
            if (ret)
                *ret = json_incref(v);
            json_decref(m);
            return 0;
        }
        if ((v = json_object_get(m, "error"))) {
            rc = qmp_error(execute, v, err);
            json_decref(m);
            return rc;
        }
        json_decref(m); /* an event */
    }
}

/* qmp_exec of a command with arguments (args NULL: no memory). */
static int qmp_call(struct qmp *q, const char *execute, json_t *args,
                    json_t **ret, xcp_hv_error *err)
{
    return qmp_exec(q, execute, args, true, ret, err);
}

/* qmp_exec of a command without arguments. */
static int qmp_query(struct qmp *q, const char *execute, json_t **ret,
                     xcp_hv_error *err)
{
    return qmp_exec(q, execute, NULL, false, ret, err);
}

/* Connects to domain domid's device model and leaves command mode on. */
static int qmp_open(struct qmp *q, uint32_t domid, xcp_hv_error *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    json_t *hello = NULL;
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
    if ((rc = qmp_message(q, &hello, err)) == 0 &&
        !json_object_get(hello, "QMP"))
        rc = xcp__hv_error_set(err, -EPROTO, "xen: %s: no QMP greeting",
                               sa.sun_path);
    json_decref(hello);
    if (rc == 0)
        rc = qmp_query(q, "qmp_capabilities", NULL, err);
    if (rc < 0)
        qmp_close(q);
    return rc;
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

/* The job id of our block-stream of disk vdev, and its filter node. */
static void stream_names(const char *vdev, char *job, size_t jlen, char *cor,
                         size_t clen)
{
    snprintf(job, jlen, "xcp-stream-%s", vdev);
    snprintf(cor, clen, "xcp-cor-%s", vdev);
}

/*
 * The node of disk vdev that serves the guest ("<vdev>-<driver>", or an
 * overlay of it, "<vdev>-<driver>-<n>": see the head of this file): its
 * name in node, and its device's entry of query-block in *blk (inside
 * *reply, which the caller drops). -EBUSY while our block-stream's
 * filter serves it.
 */
static int find_node(struct qmp *q, const char *vdev, char *node,
                     size_t nlen, json_t **reply, json_t **blk,
                     xcp_hv_error *err)
{
    size_t vl = strlen(vdev), sl = 0, i;
    char seen[160] = "", job[64], cor[64];
    const char *nn;
    json_t *b;
    int rc;

    if ((rc = qmp_query(q, "query-block", reply, err)) < 0)
        return rc;
    stream_names(vdev, job, sizeof(job), cor, sizeof(cor));
    json_array_foreach(*reply, i, b) {
        nn = jstr(json_object_get(b, "inserted"), "node-name");
        if (!nn)
            continue;
        if (!strcmp(nn, cor)) {
            rc = xcp__hv_error_set(err, -EBUSY, "xen: disk %s is busy: "
                                   "QEMU streams its chain into it (block "
                                   "job %s)", vdev, job);
            goto fail;
        }
        if (!strncmp(nn, vdev, vl) && nn[vl] == '-' && nn[vl + 1]) {
            snprintf(node, nlen, "%s", nn);
            *blk = b;
            return 0;
        }
        if (sl < sizeof(seen)) /* for the error below */
            sl += (size_t)snprintf(seen + sl, sizeof(seen) - sl, " %s", nn);
    }
    rc = xcp__hv_error_set(err, -ENODEV, "xen: QEMU serves no block node "
                           "of disk %s (it serves:%s)", vdev,
                           seen[0] ? seen : " none");
fail:
    json_decref(*reply);
    *reply = NULL;
    return rc;
}

/* Whether the node of a query-block entry is a qcow2 image. */
static bool is_qcow2(const json_t *blk)
{
    const char *drv = jstr(json_object_get(blk, "inserted"), "drv");

    return drv && !strcmp(drv, "qcow2");
}

/* Opens QMP to domain domid and finds the node of its disk vdev; the
 * image libxl gave QEMU in path (NULL: not wanted). */
static int open_node(void *self, uint32_t domid, const char *vdev,
                     struct qmp *q, char *node, size_t nlen, json_t **reply,
                     json_t **blk, char *path, xcp_hv_error *err)
{
    char own[512];
    int rc;

    if (!path)
        path = own;
    if ((rc = xcp__xen_guest(self, domid, "change a disk of", err)) < 0 ||
        (rc = disk_image(self, domid, vdev, path, sizeof(own), err)) < 0 ||
        (rc = qmp_open(q, domid, err)) < 0)
        return rc;
    if ((rc = find_node(q, vdev, node, nlen, reply, blk, err)) < 0)
        qmp_close(q);
    return rc;
}

int xcp__xen_disk_resize(void *self, uint32_t domid, const char *vdev,
                         uint64_t bytes, xcp_hv_error *err)
{
    struct qmp q;
    char node[128];
    json_t *reply = NULL, *blk;
    int rc = open_node(self, domid, vdev, &q, node, sizeof(node), &reply,
                       &blk, NULL, err);

    if (rc < 0)
        return rc;
    rc = qmp_call(&q, "block_resize", json_pack("{s:s, s:I}", "node-name",
                                                node, "size",
                                                (json_int_t)bytes),
                  NULL, err);
    json_decref(reply);
    qmp_close(&q);
    return rc;
}

/* Removes bitmap `bitmap` and every "<bitmap>:<suffix>" that the list
 * bitmaps (query-block's, NULL: none) names on node. */
static int remove_bitmaps(struct qmp *q, const char *node, const json_t *list,
                          const char *bitmap, xcp_hv_error *err)
{
    size_t bl = strlen(bitmap), i;
    const char *name;
    json_t *b;
    int rc = 0;

    json_array_foreach(list, i, b) {
        name = jstr(b, "name");
        if (!name || strncmp(name, bitmap, bl) != 0 ||
            (name[bl] != '\0' && name[bl] != ':'))
            continue;
        if ((rc = qmp_call(q, "block-dirty-bitmap-remove",
                           json_pack("{s:s, s:s}", "node", node, "name",
                                     name),
                           NULL, err)) < 0)
            break;
    }
    return rc;
}

int xcp__xen_disk_cbt(void *self, uint32_t domid, const char *vdev,
                      const char *bitmap, bool on, xcp_hv_error *err)
{
    struct qmp q;
    char node[128];
    json_t *reply = NULL, *blk, *list;
    int rc = open_node(self, domid, vdev, &q, node, sizeof(node), &reply,
                       &blk, NULL, err);

    if (rc < 0)
        return rc;
    if (!is_qcow2(blk)) {
        rc = xcp__hv_error_set(err, -ENOTSUP, "xen: domain %" PRIu32
                               ": disk %s is no qcow2 image: no bitmaps",
                               domid, vdev);
    } else if (on) {
        rc = qmp_call(&q, "block-dirty-bitmap-add",
                      json_pack("{s:s, s:s, s:i, s:b}", "node", node, "name",
                                bitmap, "granularity", 65536, "persistent",
                                1),
                      NULL, err);
    } else {
        /* QEMU lists a node's bitmaps with its node (7.x), or, before,
         * with its device */
        list = json_object_get(json_object_get(blk, "inserted"),
                               "dirty-bitmaps");
        if (!list)
            list = json_object_get(blk, "dirty-bitmaps");
        rc = remove_bitmaps(&q, node, list, bitmap, err);
    }
    json_decref(reply);
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
    char node[128], path[512], name[160];
    json_t *reply = NULL, *blk;
    int rc;

    if (!format || strcmp(format, "qcow2") != 0)
        return xcp__hv_error_set(err, -ENOTSUP, "xen: domain %" PRIu32
                                 ": QEMU cannot move disk %s onto a %s "
                                 "overlay (qcow2 only)", domid, vdev,
                                 format ? format : "raw");
    rc = open_node(self, domid, vdev, &q, node, sizeof(node), &reply, &blk,
                   path, err);
    if (rc < 0)
        return rc;
    if (!is_qcow2(blk))
        rc = xcp__hv_error_set(err, -ENOTSUP, "xen: domain %" PRIu32
                               ": disk %s is no qcow2 image: it cannot "
                               "have an overlay", domid, vdev);
    else
        rc = xcp__hv_overlay_check(overlay, path, err);
    if (rc == 0) {
        /* a name no node of this QEMU had: the nanoseconds now */
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(name, sizeof(name), "%.*s-%" PRIx64, base_len(node), node,
                 ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) &
                     0xffffffffffffu);
        rc = qmp_call(&q, "blockdev-snapshot-sync",
                      json_pack("{s:s, s:s, s:s, s:s, s:s}", "node-name",
                                node, "snapshot-file", overlay,
                                "snapshot-node-name", name, "format",
                                "qcow2", "mode", "existing"),
                      NULL, err);
    }
    json_decref(reply);
    qmp_close(&q);
    return rc;
}

/* ---- leaf coalesce by QEMU: block-stream (disk_stream) ------------------ */
/* (XCP_XEN_STREAM_SPEED, bytes per second: QEMU's limit on the copy's
 * pace, "speed"; unset or 0: none. The lab slows the copy with it to
 * change a disk while it runs.) */

/* The member of array list (of objects) whose key is the string value,
 * or NULL. */
static json_t *member_with(const json_t *list, const char *key,
                           const char *value)
{
    const char *v;
    size_t i;
    json_t *o;

    json_array_foreach(list, i, o) {
        v = jstr(o, key);
        if (v && !strcmp(v, value))
            return o;
    }
    return NULL;
}

#define MAX_CHAIN_NODES 64

/*
 * The format nodes below node top in QEMU's block graph (the reply of
 * x-debug-query-block-graph: nodes {id, type, name}, edges {parent,
 * child, name}), following "backing" edges: their names into below[],
 * top first, their count in *n. (Image names do not tell: see the head
 * of this file.)
 */
static int chain_below(const json_t *graph, const char *top,
                       char below[][128], size_t *n, xcp_hv_error *err)
{
    const json_t *nodes = json_object_get(graph, "nodes");
    const json_t *edges = json_object_get(graph, "edges");
    json_t *o, *e;
    json_int_t id;
    const char *type, *name;
    size_t i, j;

    *n = 0;
    o = member_with(nodes, "name", top);
    type = jstr(o, "type");
    if (!o || !type || strcmp(type, "block-driver") != 0 ||
        !json_is_integer(json_object_get(o, "id")))
        return xcp__hv_error_set(err, -ENODEV, "xen: node %s is not in "
                                 "QEMU's block graph", top);
    id = json_integer_value(json_object_get(o, "id"));
    for (;;) {
        e = NULL;
        json_array_foreach(edges, i, o) {
            name = jstr(o, "name");
            if (name && !strcmp(name, "backing") &&
                json_integer_value(json_object_get(o, "parent")) == id) {
                e = o;
                break;
            }
        }
        if (!e)
            return 0;
        id = json_integer_value(json_object_get(e, "child"));
        name = NULL;
        json_array_foreach(nodes, j, o) {
            if (json_integer_value(json_object_get(o, "id")) == id) {
                type = jstr(o, "type");
                name = type && !strcmp(type, "block-driver")
                           ? jstr(o, "name")
                           : NULL;
                break;
            }
        }
        if (*n == MAX_CHAIN_NODES || !name)
            return xcp__hv_error_set(err, -EPROTO, "xen: QEMU's block graph "
                                     "of %s cannot be followed", top);
        snprintf(below[(*n)++], sizeof(below[0]), "%s", name);
    }
}

/* Our job on disk vdev in QEMU's jobs (query-jobs), into *job (a
 * reference, NULL: none). */
static int query_job(struct qmp *q, const char *id, json_t **job,
                     xcp_hv_error *err)
{
    json_t *jobs = NULL;
    int rc = qmp_query(q, "query-jobs", &jobs, err);

    *job = NULL;
    if (rc == 0 && (*job = member_with(jobs, "id", id)))
        json_incref(*job);
    json_decref(jobs);
    return rc;
}

/* Dismisses concluded job id. */
static int dismiss(struct qmp *q, const char *id, xcp_hv_error *err)
{
    return qmp_call(q, "job-dismiss", json_pack("{s:s}", "id", id), NULL,
                    err);
}

/* Whether job (of query-jobs) is concluded. */
static bool concluded(const json_t *job)
{
    const char *st = jstr(job, "status");

    return st && !strcmp(st, "concluded");
}

/*
 * Our job on disk vdev: 1 while it runs (its progress in *done, *total);
 * 0 when none is there, or it was over and is dismissed now (the chain
 * then says what it did); -EIO with QEMU's reason when it failed
 * (dismissed too).
 */
static int stream_job(struct qmp *q, const char *id, uint64_t *done,
                      uint64_t *total, xcp_hv_error *err)
{
    json_t *job;
    const char *why;
    int rc = query_job(q, id, &job, err);

    if (rc < 0 || !job)
        return rc;
    *done = (uint64_t)json_integer_value(json_object_get(job,
                                                         "current-progress"));
    *total = (uint64_t)json_integer_value(json_object_get(job,
                                                          "total-progress"));
    if (!concluded(job)) {
        json_decref(job);
        return 1;
    }
    why = jstr(job, "error");
    rc = dismiss(q, id, err);
    if (rc == 0 && why)
        rc = xcp__hv_error_set(err, -EIO, "xen: QEMU's block-stream of %s "
                               "failed: %s", id, why);
    json_decref(job);
    return rc;
}

int xcp__xen_disk_stream(void *self, uint32_t domid, const char *vdev,
                         unsigned keep, const char *backing, uint64_t *done,
                         uint64_t *total, xcp_hv_error *err)
{
    char below[MAX_CHAIN_NODES][128];
    struct qmp q;
    char node[128], path[512], job[64], cor[64];
    json_t *reply = NULL, *blk, *args;
    const char *env = getenv("XCP_XEN_STREAM_SPEED");
    json_int_t speed = env ? strtoll(env, NULL, 10) : 0;
    size_t n = 0;
    int rc;

    *done = *total = 0;
    if (keep && (!backing || !backing[0] || strlen(backing) > 255 ||
                 strchr(backing, '/')))
        return xcp__hv_error_set(err, -EINVAL, "xen: disk %s: no backing "
                                 "file to record for QEMU", vdev);
    stream_names(vdev, job, sizeof(job), cor, sizeof(cor));
    if ((rc = xcp__xen_guest(self, domid, "coalesce a disk of", err)) < 0 ||
        (rc = disk_image(self, domid, vdev, path, sizeof(path), err)) < 0 ||
        (rc = qmp_open(&q, domid, err)) < 0)
        return rc;
    /* a copy under way is followed (one over is dismissed: the chain
     * below tells whether it is what is asked now) */
    if ((rc = stream_job(&q, job, done, total, err)) != 0) {
        qmp_close(&q);
        return rc;
    }
    if ((rc = find_node(&q, vdev, node, sizeof(node), &reply, &blk,
                        err)) < 0) {
        qmp_close(&q);
        return rc;
    }
    if (!is_qcow2(blk))
        rc = xcp__hv_error_set(err, -ENOTSUP, "xen: domain %" PRIu32
                               ": disk %s is no qcow2 image: QEMU cannot "
                               "stream into it", domid, vdev);
    json_decref(reply);
    reply = NULL;
    if (rc == 0)
        rc = qmp_query(&q, "x-debug-query-block-graph", &reply, err);
    if (rc == 0)
        rc = chain_below(reply, node, below, &n, err);
    if (rc == 0 && n < keep)
        rc = xcp__hv_error_set(err, -EINVAL, "xen: disk %s: QEMU's chain "
                               "below %s is %zu images deep, not %u or more",
                               vdev, node, n, keep);
    if (rc == 0 && n > keep) {
        /* the last `keep` nodes stay: the copy stops at the first */
        args = keep ? json_pack("{s:s, s:s, s:b, s:s, s:s, s:s}", "job-id",
                                job, "device", node, "auto-dismiss", 0,
                                "filter-node-name", cor, "base-node",
                                below[n - keep], "backing-file", backing)
                    : json_pack("{s:s, s:s, s:b, s:s}", "job-id", job,
                                "device", node, "auto-dismiss", 0,
                                "filter-node-name", cor);
        if (args && speed > 0 &&
            json_object_set_new(args, "speed", json_integer(speed)) < 0) {
            json_decref(args);
            args = NULL;
        }
        rc = qmp_call(&q, "block-stream", args, NULL, err);
        if (rc == 0)
            rc = 1;
    }
    json_decref(reply);
    qmp_close(&q);
    return rc;
}

int xcp__xen_disk_stream_cancel(void *self, uint32_t domid, const char *vdev,
                                xcp_hv_error *err)
{
    struct qmp q;
    char job[64], cor[64], path[512];
    json_t *j = NULL;
    int rc, waited = 0;
    bool ran;

    stream_names(vdev, job, sizeof(job), cor, sizeof(cor));
    if ((rc = xcp__xen_guest(self, domid, "cancel a coalesce of", err)) < 0 ||
        (rc = disk_image(self, domid, vdev, path, sizeof(path), err)) < 0 ||
        (rc = qmp_open(&q, domid, err)) < 0)
        return rc;
    if ((rc = query_job(&q, job, &j, err)) < 0 || !j)
        goto out;
    ran = !concluded(j);
    if (ran && (rc = qmp_call(&q, "block-job-cancel",
                              json_pack("{s:s}", "device", job), NULL,
                              err)) < 0)
        goto out;
    /* the copy stops at its next cluster; the job is then concluded
     * (never dismissed by itself: auto-dismiss is off) */
    while (!concluded(j)) {
        if (waited >= CANCEL_TIMEOUT_MS) {
            rc = xcp__hv_error_set(err, -ETIMEDOUT, "xen: QEMU's job %s is "
                                   "not over %d ms after its cancel", job,
                                   CANCEL_TIMEOUT_MS);
            goto out;
        }
        usleep(CANCEL_POLL_MS * 1000);
        waited += CANCEL_POLL_MS;
        json_decref(j);
        if ((rc = query_job(&q, job, &j, err)) < 0)
            goto out;
        if (!j) /* dismissed by someone else */
            break;
    }
    if (j && (rc = dismiss(&q, job, err)) < 0)
        goto out;
    rc = ran ? 1 : 0;
out:
    json_decref(j);
    qmp_close(&q);
    return rc;
}
