/*
 * hv/xen/xen_qdisk.c - starts the qdisk back end (QEMU, machine "xenpv")
 * of a domain built without one when a disk that needs it is hot-plugged
 * (xen_qdisk.h), as libxl does for a domain it builds with such a disk.
 */
#ifdef XCP_HAVE_XEN

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2 */
#endif
#include "xen_qdisk.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libxl_utils.h>

#define START_MS 60000 /* libxl's LIBXL_DEVICE_MODEL_START_TIMEOUT */
#define POLL_MS 20

/* Where distributions put qemu-xen (libxl's QEMU_XEN_PATH). */
static const char *const qemu_paths[] = {
    "/usr/libexec/xen-qemu-system-i386",   /* Debian, Ubuntu */
    "/usr/lib/xen/bin/qemu-system-i386",   /* Xen's own install, XCP-ng */
    "/usr/libexec/xen/bin/qemu-system-i386", /* Fedora, CentOS */
};

static const char *qemu_path(void)
{
    const char *env = getenv("XCP_XEN_QEMU");
    size_t i;

    if (env && *env)
        return env;
    for (i = 0; i < sizeof(qemu_paths) / sizeof(qemu_paths[0]); i++)
        if (access(qemu_paths[i], X_OK) == 0)
            return qemu_paths[i];
    return NULL;
}

/* Does a device model (or a stub domain) serve domain domid already? */
static bool dm_active(struct xs_handle *xs, uint32_t domid)
{
    static const char *const keys[] = {"device-model-pid",
                                       "device-model-domid"};
    char path[96];
    unsigned int len;
    size_t i;
    void *v;

    for (i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "/local/domain/%" PRIu32 "/image/%s",
                 domid, keys[i]);
        if ((v = xs_read(xs, XBT_NULL, path, &len))) {
            free(v);
            return true;
        }
    }
    return false;
}

/* Does libxl give disk vdev of domain domid to a qdisk back end in dom0? */
static bool needs_qdisk(libxl_ctx *ctx, uint32_t domid, const char *vdev)
{
    libxl_device_disk d;
    bool yes;

    if (libxl_vdev_to_device_disk(ctx, domid, vdev, &d) != 0) {
        libxl_device_disk_dispose(&d);
        return false;
    }
    yes = d.backend == LIBXL_DISK_BACKEND_QDISK && d.backend_domid == 0;
    libxl_device_disk_dispose(&d);
    return yes;
}

/*
 * The child's side of spawn(): only async-signal-safe calls from here on
 * (the process may have other threads). Its stdio goes to log, all other
 * descriptors are closed, and signals are as a new program expects them.
 */
static void exec_qemu(const char *path, char *const argv[], int null,
                      int log, long max_fd)
{
    struct sigaction dfl;
    sigset_t none;
    long fd;

    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGPIPE, &dfl, NULL);
    sigaction(SIGHUP, &dfl, NULL);
    sigaction(SIGTERM, &dfl, NULL);
    sigaction(SIGINT, &dfl, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (dup2(null, 0) < 0 || dup2(log, 1) < 0 || dup2(log, 2) < 0)
        _exit(127);
    for (fd = 3; fd < max_fd; fd++)
        close((int)fd);
    execv(path, argv);
    _exit(127);
}

/*
 * Starts path argv detached (its own session, reparented to init through
 * a middle process, so it is nobody's zombie when libxl kills it): its
 * pid in *pid.
 */
static int spawn(const char *path, char *const argv[], const char *logpath,
                 pid_t *pid, xcp_hv_error *err)
{
    long max_fd = sysconf(_SC_OPEN_MAX);
    int p[2] = {-1, -1}, null, log, st, rc = 0;
    pid_t mid, q = -1;
    ssize_t n;

    null = open("/dev/null", O_RDWR | O_CLOEXEC);
    log = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log < 0)
        log = null;
    if (null < 0 || pipe2(p, O_CLOEXEC) < 0) {
        rc = xcp__hv_error_set(err, -errno, "xen: cannot start %s: %s",
                               path, strerror(errno));
        goto out;
    }
    if (max_fd < 0 || max_fd > 65536)
        max_fd = 65536;
    mid = fork();
    if (mid == 0) {
        setsid();
        q = fork();
        if (q == 0)
            exec_qemu(path, argv, null, log, max_fd);
        n = write(p[1], &q, sizeof(q));
        _exit(n == (ssize_t)sizeof(q) ? 0 : 1);
    }
    if (mid < 0) {
        rc = xcp__hv_error_set(err, -errno, "xen: cannot start %s: fork: "
                               "%s", path, strerror(errno));
        goto out;
    }
    close(p[1]);
    p[1] = -1;
    do
        n = read(p[0], &q, sizeof(q));
    while (n < 0 && errno == EINTR);
    /* (libxl, owning SIGCHLD while it works, may have reaped it: ECHILD) */
    while (waitpid(mid, &st, 0) < 0 && errno == EINTR)
        ;
    if (n != (ssize_t)sizeof(q) || q <= 0)
        rc = xcp__hv_error_set(err, -EIO, "xen: cannot start %s: fork "
                               "failed", path);
    else
        *pid = q;
out:
    if (p[0] >= 0)
        close(p[0]);
    if (p[1] >= 0)
        close(p[1]);
    if (log >= 0 && log != null)
        close(log);
    if (null >= 0)
        close(null);
    return rc;
}

static char *xs_get(struct xs_handle *xs, const char *path)
{
    unsigned int len;

    return xs_read(xs, XBT_NULL, path, &len);
}

/* Waits until QEMU pid says in xenstore that it runs (state_path). */
static int wait_running(struct xs_handle *xs, pid_t pid,
                        const char *state_path, const char *what,
                        const char *logpath, xcp_hv_error *err)
{
    struct timespec tick = {0, POLL_MS * 1000000L};
    char *s;
    int ms, up;

    for (ms = 0; ms < START_MS; ms += POLL_MS) {
        s = xs_get(xs, state_path);
        up = s && strcmp(s, "running") == 0;
        free(s);
        if (up)
            return 0;
        if (kill(pid, 0) < 0 && errno == ESRCH)
            return xcp__hv_error_set(err, -EIO, "xen: %s exited at start "
                                     "(its output: %s)", what, logpath);
        nanosleep(&tick, NULL);
    }
    return xcp__hv_error_set(err, -ETIMEDOUT, "xen: %s did not start "
                             "within %d s (its output: %s)", what,
                             START_MS / 1000, logpath);
}

int xcp__xen_qdisk_can_serve(const libxl_device_disk *d, xcp_hv_error *err)
{
    const char *fmt = d->format == LIBXL_DISK_FORMAT_QCOW2 ? "qcow2"
                      : d->format == LIBXL_DISK_FORMAT_VHD ? "VHD" : NULL;

    if (d->readwrite || d->is_cdrom || !fmt)
        return 0;
    return xcp__hv_error_set(err, -ENOTSUP,
                             "xen: disk %s: a read-only %s image (%s) "
                             "cannot be attached: QEMU's qdisk back end "
                             "opens it under a writable %s layer and "
                             "fails (\"Block node is read-only\"); attach "
                             "it read-write, or a raw image read-only",
                             d->vdev, fmt, d->pdev_path ? d->pdev_path : "",
                             fmt);
}

int xcp__xen_qdisk_ensure(libxl_ctx *ctx, struct xs_handle *xs,
                          uint32_t domid, const char *vdev,
                          xcp_hv_error *err)
{
    char id[16], name[80], logpath[160], qmp[96], what[96], dm[64],
        state[80], pidpath[80], pidstr[24], *dn;
    const char *path;
    pid_t pid = -1;
    int rc;

    if (dm_active(xs, domid) || (vdev && !needs_qdisk(ctx, domid, vdev)))
        return 0;
    snprintf(what, sizeof(what), "the qdisk back end (QEMU) of domain %"
             PRIu32, domid);
    if (!(path = qemu_path()))
        return xcp__hv_error_set(err, -ENOENT, "xen: cannot start %s for "
                                 "disk %s: no qemu-xen (%s or %s; "
                                 "XCP_XEN_QEMU)", what, vdev ? vdev : "",
                                 qemu_paths[0],
                                 qemu_paths[1]);
    snprintf(id, sizeof(id), "%" PRIu32, domid);
    snprintf(pidpath, sizeof(pidpath), "/local/domain/%s/name", id);
    if ((dn = xs_get(xs, pidpath)))
        snprintf(name, sizeof(name), "%s", dn);
    else
        snprintf(name, sizeof(name), "domain-%s", id);
    free(dn);
    snprintf(logpath, sizeof(logpath), "/var/log/xen/qemu-dm-%s.log", name);
    snprintf(qmp, sizeof(qmp), "socket,id=libxl-cmd,path=/var/run/xen/"
             "qmp-libxl-%s,server=on,wait=off", id);
    snprintf(dm, sizeof(dm), "/local/domain/0/device-model/%s", id);
    snprintf(state, sizeof(state), "%s/state", dm);
    snprintf(pidpath, sizeof(pidpath), "/local/domain/%s/image/"
             "device-model-pid", id);
    {
        /* what libxl runs as a PV domain's device model */
        char *const argv[] = {
            (char *)path, "-xen-domid", id, "-xen-attach", "-name", name,
            "-machine", "xenpv", "-nodefaults", "-no-user-config",
            "-display", "none", "-vnc", "none", "-chardev", qmp,
            "-mon", "chardev=libxl-cmd,mode=control", NULL};

        xs_rm(xs, XBT_NULL, dm); /* an earlier domain's, if any */
        if ((rc = spawn(path, argv, logpath, &pid, err)) < 0)
            return rc;
    }
    snprintf(pidstr, sizeof(pidstr), "%ld", (long)pid);
    if (!xs_write(xs, XBT_NULL, pidpath, pidstr, strlen(pidstr))) {
        rc = xcp__hv_error_set(err, -EIO, "xen: cannot record %s in "
                               "xenstore (%s): %s", what, pidpath,
                               strerror(errno));
        goto fail;
    }
    if ((rc = wait_running(xs, pid, state, what, logpath, err)) == 0)
        return 0;
    xs_rm(xs, XBT_NULL, pidpath);
fail:
    kill(pid, SIGKILL);
    return rc;
}

#else
/* ISO C wants something in every translation unit. */
typedef int xcp__hv_xen_qdisk_not_built;
#endif /* XCP_HAVE_XEN */
