/*
 * XAPI's /host_backup and /host_restore for libxcp: a host's backup is
 * a tar (ustar, sr/xva_stream.c's writer and reader) of what its state
 * directory needs to come back as it was: the database (db.snap and
 * db.journal copied under the engine lock, so the pair is one commit's
 * state), the blobs' bytes (blobs/), each SR's xcp-sr.conf and xcpd's
 * certificate and key; not the disk images, as XAPI's holds dom0's
 * state and not the guests' disks. The first member, MANIFEST, says what
 * the tar is and lists every member.
 *
 * A restore checks the tar (the manifest first, only those names, each
 * once, the database there) and stages it in <state dir>/host-restore
 * (written as host-restore.new, renamed when whole); the engine puts it
 * in place the next time it opens the directory
 * (xcp__host_restore_apply), as XAPI's restore waits for a reboot.
 * Applying only renames (each staged file over its place, then the
 * blobs the backup did not have go, then the stage), so a crash midway
 * applies the rest at the next open.
 */
#include "http_handlers.h"
#include "../sr/xva_stream.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MANIFEST "xcp-host-backup"
#define MAGIC "libxcp host backup 1\n"
#define STAGE "host-restore"

/* ---- names ---- */

static bool plain_name(const char *s, size_t n)
{
    size_t i;

    if (n == 0 || s[0] == '.' || n > 255)
        return false;
    for (i = 0; i < n; i++)
        if (s[i] == '/' || s[i] == '\0')
            return false;
    return true;
}

/* The members a backup may hold (MANIFEST apart). */
static bool member_ok(const char *name)
{
    const char *p;

    if (!strcmp(name, "db.snap") || !strcmp(name, "db.journal") ||
        !strcmp(name, "xcpd-cert.pem") || !strcmp(name, "xcpd-key.pem"))
        return true;
    if (!strncmp(name, "blobs/", 6))
        return plain_name(name + 6, strlen(name + 6));
    if (!strncmp(name, "sr/", 3) && (p = strchr(name + 3, '/')))
        return plain_name(name + 3, (size_t)(p - name - 3)) &&
               !strcmp(p, "/xcp-sr.conf");
    return false;
}

/* ---- files ---- */

/* The whole of path (*data NULL when it does not exist). */
static int slurp(const char *path, char **data, size_t *n)
{
    struct stat st;
    ssize_t r;
    size_t got = 0;
    int fd;

    *data = NULL;
    *n = 0;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return errno == ENOENT ? 0 : xcp__io_fail(path, "open", errno);
    if (fstat(fd, &st) < 0) {
        close(fd);
        return xcp__io_fail(path, "stat", errno);
    }
    if (!(*data = malloc((size_t)st.st_size + 1))) {
        close(fd);
        return xcp__oom();
    }
    while (got < (size_t)st.st_size) {
        r = read(fd, *data + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    *n = got;
    return 0;
}

static int write_file(const char *path, const void *data, size_t n)
{
    const char *p = data;
    ssize_t w;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

    if (fd < 0)
        return xcp__io_fail(path, "open", errno);
    while (n > 0) {
        w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            close(fd);
            return xcp__io_fail(path, "write", w < 0 ? errno : EIO);
        }
        p += w;
        n -= (size_t)w;
    }
    if (fsync(fd) < 0) {
        close(fd);
        return xcp__io_fail(path, "fsync", errno);
    }
    return close(fd) < 0 ? xcp__io_fail(path, "close", errno) : 0;
}

/* rm -r path (what is not there is fine). */
static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    char *sub;

    if (!d) {
        unlink(path);
        return;
    }
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if ((sub = xcp__printf("%s/%s", path, e->d_name))) {
            remove_tree(sub);
            free(sub);
        }
    }
    closedir(d);
    rmdir(path);
}

/* ---- backup ---- */

struct out {
    int fd;
    xcp__xva_out *o;
    xcp__buf list;  /* the manifest's member lines */
};

static int sink(void *ctx, const void *buf, size_t n)
{
    return xcp__write_all(*(int *)ctx, buf, n) < 0
               ? XCP__ERR_INVALID_VALUE_WHY("fd", "", strerror(errno))
               : 0;
}

/* The members, name and bytes, gathered before the tar is written (the
 * manifest, first, lists them). */
struct member {
    char *name;
    char *data;
    size_t n;
};

struct members {
    struct member *v;
    size_t n, cap;
};

static int add(struct members *m, const char *name, char *data, size_t n)
{
    struct member *v;

    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 16;
        if (!(v = realloc(m->v, m->cap * sizeof(*v)))) {
            free(data);
            return xcp__oom();
        }
        m->v = v;
    }
    if (!(m->v[m->n].name = xcp__strdup(name))) {
        free(data);
        return xcp__oom();
    }
    m->v[m->n].data = data;
    m->v[m->n++].n = n;
    return 0;
}

/* dir/name as member name, when it exists. */
static int add_file(struct members *m, const char *dir, const char *name)
{
    char *path = xcp__printf("%s/%s", dir, name), *data;
    size_t n;
    int rc;

    if (!path)
        return xcp__oom();
    rc = slurp(path, &data, &n);
    free(path);
    if (rc < 0 || !data)
        return rc;
    return add(m, name, data, n);
}

/* Each plain file of dir/sub (sub/<name>), or each SR's conf. */
static int add_dir(struct members *m, const char *dir, const char *sub,
                   bool srs)
{
    char *path = xcp__printf("%s/%s", dir, sub), *name;
    struct dirent *e;
    DIR *d;
    int rc = 0;

    if (!path)
        return xcp__oom();
    d = opendir(path);
    free(path);
    if (!d)
        return 0;
    while (rc == 0 && (e = readdir(d))) {
        if (!plain_name(e->d_name, strlen(e->d_name)))
            continue;
        name = srs ? xcp__printf("%s/%s/xcp-sr.conf", sub, e->d_name)
                   : xcp__printf("%s/%s", sub, e->d_name);
        rc = !name ? xcp__oom() : member_ok(name) ? add_file(m, dir, name) : 0;
        free(name);
    }
    closedir(d);
    return rc;
}

static void members_free(struct members *m)
{
    size_t i;

    for (i = 0; i < m->n; i++) {
        free(m->v[i].name);
        free(m->v[i].data);
    }
    free(m->v);
}

int xcp__host_backup(xcp__engine *e, const char *session, int fd)
{
    struct members m = {0};
    xcp__xva_out *o = NULL;
    xcp__buf man = {0};
    size_t i;
    int rc;

    if (session && !xcp__engine_session_valid(e, session))
        return XCP__ERR_SESSION_INVALID(session);
    /* the database as one commit left it: no commit while it is read */
    pthread_mutex_lock(&e->lock);
    rc = add_file(&m, e->state_dir, "db.snap");
    if (rc == 0)
        rc = add_file(&m, e->state_dir, "db.journal");
    pthread_mutex_unlock(&e->lock);
    if (rc == 0)
        rc = add_dir(&m, e->state_dir, "blobs", false);
    if (rc == 0)
        rc = add_dir(&m, e->state_dir, "sr", true);
    if (rc == 0)
        rc = add_file(&m, e->state_dir, "xcpd-cert.pem");
    if (rc == 0)
        rc = add_file(&m, e->state_dir, "xcpd-key.pem");
    if (rc < 0)
        goto out;
    xcp__buf_printf(&man, "%s", MAGIC);
    for (i = 0; i < m.n; i++)
        xcp__buf_printf(&man, "%s\n", m.v[i].name);
    if (man.oom) {
        rc = xcp__oom();
        goto out;
    }
    if ((rc = xcp__xva_out_new(&o, XCP__XVA_PLAIN, sink, &fd)) < 0 ||
        (rc = xcp__xva_out_file(o, MANIFEST, man.data, man.len)) < 0)
        goto out;
    for (i = 0; i < m.n && rc == 0; i++)
        rc = xcp__xva_out_file(o, m.v[i].name, m.v[i].data, m.v[i].n);
    if (rc == 0)
        rc = xcp__xva_out_finish(o);
out:
    xcp__xva_out_free(o);
    xcp__buf_free(&man);
    members_free(&m);
    return rc;
}

/* ---- restore ---- */

struct in {
    const char *stage;  /* host-restore.new */
    char *manifest;     /* its text, once read */
    size_t seen;        /* members after it */
    bool db;
};

static int bad(const char *why)
{
    return XCP__ERR_RESTORE_SCRIPT_FAILED(why);
}

/* Whether name is a line of the manifest's list. */
static bool listed(const char *manifest, const char *name)
{
    size_t n = strlen(name);
    const char *p = manifest + strlen(MAGIC);

    for (; (p = strstr(p, name)); p++)
        if (p[-1] == '\n' && p[n] == '\n')
            return true;
    return false;
}

static int in_file(void *ctx, const char *name, const void *data, size_t n)
{
    struct in *in = ctx;
    char *path, *slash;
    int rc;

    if (!in->manifest) {
        if (strcmp(name, MANIFEST) || n < strlen(MAGIC) ||
            memcmp(data, MAGIC, strlen(MAGIC)) ||
            memchr(data, '\0', n) || ((const char *)data)[n - 1] != '\n')
            return bad("not a libxcp host backup (no " MANIFEST
                       " first)");
        if (!(in->manifest = malloc(n + 1)))
            return xcp__oom();
        memcpy(in->manifest, data, n);
        in->manifest[n] = '\0';
        if (!(path = xcp__printf("%s/" MANIFEST, in->stage)))
            return xcp__oom();
        rc = write_file(path, data, n);
        free(path);
        return rc;
    }
    if (!member_ok(name) || !listed(in->manifest, name))
        return bad("unexpected member in the backup");
    if (!(path = xcp__printf("%s/%s", in->stage, name)))
        return xcp__oom();
    if ((slash = strrchr(path, '/')) && slash > path + strlen(in->stage)) {
        *slash = '\0';
        rc = xcp__mkdir_p(path, 0700);
        *slash = '/';
        if (rc < 0) {
            rc = xcp__io_fail(path, "mkdir", -rc);
            free(path);
            return rc;
        }
    }
    /* O_EXCL: a member twice is refused */
    rc = access(path, F_OK) == 0 ? bad("a member twice in the backup")
                                 : write_file(path, data, n);
    free(path);
    in->seen++;
    in->db |= !strcmp(name, "db.snap") || !strcmp(name, "db.journal");
    return rc;
}

static int in_chunk(void *ctx, const char *prefix, uint64_t no,
                    const void *data, size_t n)
{
    (void)ctx, (void)prefix, (void)no, (void)data, (void)n;
    return bad("unexpected member in the backup");
}

static const xcp__xva_in_ops in_ops = {in_file, in_chunk};

/* The tar reader's refusal (IMPORT_ERROR...) as the restore's; other
 * errors (the disk's) kept. */
static int not_a_tar(int rc)
{
    const xcp_error *e = xcp_error_last();

    if (e && e->name && !strncmp(e->name, "IMPORT_ERROR", 12))
        return bad("the backup is cut short or not a tar");
    return rc;
}

/* Every member the manifest lists came. */
static bool complete(const struct in *in)
{
    const char *p = in->manifest + strlen(MAGIC);
    size_t lines = 0;

    for (; *p; p++)
        lines += *p == '\n';
    return lines == in->seen;
}

int xcp__host_restore(xcp__engine *e, const char *session, int fd)
{
    struct in in = {0};
    xcp__xva_in *r = NULL;
    char *stage = NULL, *final = NULL, *buf = NULL;
    ssize_t n;
    int rc;

    if (session && !xcp__engine_session_valid(e, session))
        return XCP__ERR_SESSION_INVALID(session);
    stage = xcp__printf("%s/" STAGE ".new", e->state_dir);
    final = xcp__printf("%s/" STAGE, e->state_dir);
    buf = malloc(1 << 16);
    if (!stage || !final || !buf) {
        rc = xcp__oom();
        goto out;
    }
    remove_tree(stage);
    if (mkdir(stage, 0700) < 0) {
        rc = xcp__io_fail(stage, "mkdir", errno);
        goto out;
    }
    in.stage = stage;
    if ((rc = xcp__xva_in_new(&r, &in_ops, &in, false)) < 0)
        goto out;
    for (;;) {
        n = read(fd, buf, 1 << 16);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = XCP__ERR_INVALID_VALUE_WHY("fd", "", strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        if ((rc = xcp__xva_in_feed(r, buf, (size_t)n)) < 0) {
            rc = not_a_tar(rc);
            goto out;
        }
    }
    if ((rc = xcp__xva_in_finish(r)) < 0) {
        rc = not_a_tar(rc);
        goto out;
    }
    if (!in.manifest || !in.db || !complete(&in)) {
        rc = bad(!in.manifest ? "not a libxcp host backup (empty)"
                 : !in.db     ? "no database in the backup"
                              : "members missing from the backup");
        goto out;
    }
    /* a journal of the old database must not follow the new snapshot */
    {
        char *j = xcp__printf("%s/db.journal", stage);

        rc = !j ? xcp__oom()
             : access(j, F_OK) == 0 ? 0
                                    : write_file(j, "", 0);
        free(j);
        if (rc < 0)
            goto out;
    }
    remove_tree(final);
    if (rename(stage, final) < 0 || xcp__fsync_dir(e->state_dir) < 0) {
        rc = xcp__io_fail(final, "rename", errno);
        goto out;
    }
    rc = 0;
out:
    if (rc < 0 && stage)
        remove_tree(stage);
    xcp__xva_in_free(r);
    free(in.manifest);
    free(buf);
    free(stage);
    free(final);
    return rc;
}

/* Rename stage/name over dir/name (its parent made). */
static int put_in_place(const char *stage, const char *dir, const char *name)
{
    char *from = xcp__printf("%s/%s", stage, name);
    char *to = xcp__printf("%s/%s", dir, name), *slash;
    int rc = 0;

    if (!from || !to) {
        rc = xcp__oom();
    } else if (access(from, F_OK) == 0) { /* else moved already */
        if ((slash = strrchr(to, '/'))) {
            *slash = '\0';
            xcp__mkdir_p(to, 0700);
            *slash = '/';
        }
        if (rename(from, to) < 0)
            rc = xcp__io_fail(to, "rename", errno);
    }
    free(from);
    free(to);
    return rc;
}

int xcp__host_restore_apply(const char *dir)
{
    char *stage = xcp__printf("%s/" STAGE, dir), *man = NULL, *p, *nl;
    char *blobs = NULL, *name;
    struct dirent *e;
    size_t n;
    DIR *d;
    int rc;

    if (!stage)
        return xcp__oom();
    if (access(stage, F_OK) != 0) {
        free(stage);
        return 0;
    }
    {
        char *mp = xcp__printf("%s/" MANIFEST, stage);

        rc = mp ? slurp(mp, &man, &n) : xcp__oom();
        free(mp);
    }
    if (rc < 0)
        goto out;
    if (!man) {
        rc = bad("a staged host restore without its manifest");
        goto out;
    }
    man[n] = '\0';
    /* the journal and the snapshot, then the rest; a database that had
     * no snapshot yet (its journal holds it all) must not get ours */
    if (!listed(man, "db.snap")) {
        char *snap = xcp__printf("%s/db.snap", dir);

        if (snap)
            unlink(snap);
        free(snap);
    }
    if ((rc = put_in_place(stage, dir, "db.journal")) < 0 ||
        (rc = put_in_place(stage, dir, "db.snap")) < 0)
        goto out;
    for (p = man + strlen(MAGIC); *p && (nl = strchr(p, '\n')); p = nl + 1) {
        *nl = '\0';
        rc = member_ok(p) ? put_in_place(stage, dir, p) : 0;
        *nl = '\n';
        if (rc < 0)
            goto out;
    }
    /* blobs the backup did not have */
    if ((blobs = xcp__printf("%s/blobs", dir)) && (d = opendir(blobs))) {
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            if (!(name = xcp__printf("blobs/%s", e->d_name)))
                continue;
            if (!listed(man, name)) {
                char *path = xcp__printf("%s/%s", dir, name);

                if (path)
                    unlink(path);
                free(path);
            }
            free(name);
        }
        closedir(d);
    }
    remove_tree(stage);
    xcp__fsync_dir(dir);
    rc = 0;
out:
    free(blobs);
    free(man);
    free(stage);
    return rc;
}
