/*
 * blob.*: named binary objects attached to other objects, and their
 * bytes (XAPI's /blob handler's data), one file each under the state
 * directory's blobs/, destroyed with the blob.
 */
#include "../engine/engine.h"
#include "http_handlers.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static int blob_create(xcp__ctx *c)
{
    xcp__obj *b;
    int rc;

    if ((rc = xcp__db_create(c->db, C(blob), NULL, NULL, &b)) < 0 ||
        (rc = xcp__db_set_str(c->db, b, F(blob, mime_type),
                              *xcp__arg_str(c, 0) ? xcp__arg_str(c, 0)
                                                  : "application/"
                                                    "octet-stream")) < 0 ||
        (rc = xcp__db_set_bool(c->db, b, F(blob, public), xcp__arg_bool(c, 1))) <
            0 ||
        (rc = xcp__db_set_time(c->db, b, F(blob, last_updated), xcp__now())) < 0)
        return rc;
    return xcp__ret_ref(c, b);
}


/* ---- the blob's bytes: <state dir>/blobs/<uuid> ---- */

struct blob_find {
    const char *session; /* NULL: trusted; "": none (public blobs only) */
    const char *ref;
    bool put;
    char uuid[37];
    bool touched;        /* put: size and last_updated set */
    int64_t size;
};

static int blob_find_txn(xcp__ctx *c, void *arg)
{
    struct blob_find *f = arg;
    xcp__obj *b;
    int rc;

    if (f->session && *f->session &&
        !xcp__db_get_cls(c->db, C(session), f->session))
        return XCP__ERR_SESSION_INVALID(f->session);
    if (!(b = xcp__db_get_cls(c->db, C(blob), f->ref)))
        return xcp__handle_invalid(C(blob), f->ref);
    /* XAPI's /blob: a public blob is readable without credentials */
    if (f->session && !*f->session &&
        (f->put || !xcp__obj_bool(b, F(blob, public))))
        return XCP__ERR_SESSION_AUTHENTICATION_FAILED_USER(
            "", "no credentials given");
    snprintf(f->uuid, sizeof(f->uuid), "%s", xcp__obj_uuid(b));
    if (f->touched && (rc = xcp__db_set_int(c->db, b, F(blob, size),
                                            f->size)) < 0)
        return rc;
    if (f->touched)
        return xcp__db_set_time(c->db, b, F(blob, last_updated),
                                xcp__now());
    return 0;
}

static int copy_fd(int in, int out, const char *path, bool put)
{
    char buf[65536];
    ssize_t n, w, k;

    for (;;) {
        n = read(in, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return put ? XCP__ERR_INVALID_VALUE_WHY("fd", "",
                                                    strerror(errno))
                       : xcp__io_fail(path, "read", errno);
        if (n == 0)
            return 0;
        for (k = 0; k < n; k += w) {
            w = write(out, buf + k, (size_t)(n - k));
            if (w < 0 && errno == EINTR) {
                w = 0;
                continue;
            }
            if (w <= 0)
                return put ? xcp__io_fail(path, "write", errno)
                           : XCP__ERR_INVALID_VALUE_WHY(
                                 "fd", "", strerror(w < 0 ? errno : EIO));
        }
    }
}

/* Write fd's bytes to dir/<uuid> as a new file renamed into place, so a
 * crash leaves the old data or the new, never a mix. */
static int blob_store(const char *dir, const char *uuid, int fd,
                      int64_t *size)
{
    struct stat st;
    char *tmp = NULL, *path = NULL;
    int out = -1, rc;

    if ((rc = xcp__mkdir_p(dir, 0700)) < 0)
        return xcp__io_fail(dir, "mkdir", -rc);
    tmp = xcp__printf("%s/.%s.XXXXXX", dir, uuid);
    path = xcp__printf("%s/%s", dir, uuid);
    if (!tmp || !path) {
        rc = xcp__oom();
        goto out;
    }
    if ((out = mkostemp(tmp, O_CLOEXEC)) < 0) {
        rc = xcp__io_fail(tmp, "open", errno);
        goto out;
    }
    if ((rc = copy_fd(fd, out, tmp, true)) < 0)
        goto out;
    if (fstat(out, &st) < 0 || fsync(out) < 0) {
        rc = xcp__io_fail(tmp, "fsync", errno);
        goto out;
    }
    if (close(out) < 0) {
        out = -1;
        rc = xcp__io_fail(tmp, "close", errno);
        goto out;
    }
    out = -1;
    *size = (int64_t)st.st_size;
    if (rename(tmp, path) < 0) {
        rc = xcp__io_fail(path, "rename", errno);
        goto out;
    }
    (void)xcp__fsync_dir(dir);
    rc = 0;
out:
    if (out >= 0)
        close(out);
    if (rc < 0 && tmp)
        unlink(tmp);
    free(tmp);
    free(path);
    return rc;
}

int xcp__blob_data(xcp__engine *e, const char *session, const char *ref,
                   bool put, int fd)
{
    struct blob_find f = {session, ref, put, "", false, 0};
    char *dir, *path;
    int rc, in;

    if ((rc = xcp__engine_txn(e, blob_find_txn, &f)) < 0)
        return rc;
    if (!(dir = xcp__printf("%s/blobs", e->state_dir)))
        return xcp__oom();
    if (put) {
        if ((rc = blob_store(dir, f.uuid, fd, &f.size)) == 0) {
            f.touched = true;
            /* destroyed meanwhile: its file goes too */
            if ((rc = xcp__engine_txn(e, blob_find_txn, &f)) < 0 &&
                (path = xcp__printf("%s/%s", dir, f.uuid))) {
                unlink(path);
                free(path);
            }
        }
        free(dir);
        return rc;
    }
    if (!(path = xcp__printf("%s/%s", dir, f.uuid))) {
        free(dir);
        return xcp__oom();
    }
    /* a blob never written has no bytes to read: XAPI's handler answers
     * 404, as for an unknown blob */
    in = open(path, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        rc = errno == ENOENT ? xcp__handle_invalid(C(blob), ref)
                             : xcp__io_fail(path, "open", errno);
    else {
        rc = copy_fd(in, fd, path, false);
        close(in);
    }
    free(path);
    free(dir);
    return rc;
}

/* After blob.destroy's commit: its bytes go. */
static void blob_unlink(void *arg, bool committed)
{
    if (committed)
        unlink(arg);
    free(arg);
}

static int blob_destroy(xcp__ctx *c)
{
    xcp__obj *b;
    char *path;
    int rc = xcp__arg_obj(c, 0, C(blob), &b);

    if (rc < 0)
        return rc;
    if (!(path = xcp__printf("%s/blobs/%s", c->e->state_dir,
                             xcp__obj_uuid(b))))
        return xcp__oom();
    if ((rc = xcp__db_destroy(c->db, b)) < 0) {
        free(path);
        return rc;
    }
    return xcp__db_after_commit(c->db, blob_unlink, path);
}

const struct xcp__impl xcp__impl_blob[] = {
    {"blob.create", blob_create},
    {"blob.destroy", blob_destroy},
    {NULL, NULL},
};
