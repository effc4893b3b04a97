/*
 * hv/xen/xen_migrate.c - localhost live migration on Xen (the driver's
 * domain_migrate_local slot), as `xl migrate localhost` does it but in one
 * process: libxl's live save stream (LIBXL_SUSPEND_LIVE; see stream_flags()
 * for PV guests on a Xen without shadow paging) goes into one end of a
 * socket pair while a second thread restores a new domain from the
 * other end. The sender is renamed "<name>--migratedaway" and the receiver
 * is built as "<name>--incoming", so that both may exist at once; when the
 * stream is through, the receiver takes the name and runs and the sender is
 * destroyed. Any failure undoes it all: the receiver goes, the sender is
 * resumed (if the stream had suspended it) and renamed back.
 */
#ifdef XCP_HAVE_XEN

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf */
#endif
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libxl.h>
#include <libxl_utils.h>

#include "xen_log.h"
#include "xen_migrate.h"

#define KiB 1024ull

/* The receiving side, run on its own thread. */
struct incoming {
    libxl_ctx *ctx;
    libxl_domain_config dc; /* the sender's, under the "--incoming" name */
    int fd;
    uint32_t domid;         /* INVALID_DOMID until libxl made it */
    int rc;                 /* libxl's result */
    xcp_hv_error err;       /* with the messages libxl logged there */
};

/*
 * libxl writes parts of the stream itself: a peer that went away must be an
 * EPIPE for the caller, not a SIGPIPE that kills the process embedding the
 * library (xcpd ignores it; xe embedded, or any program, may not). SIGPIPE
 * from a write goes to the writing thread, so blocking it there and taking
 * the pending one before unblocking is enough.
 */
static void sigpipe_block(sigset_t *old)
{
    sigset_t pipe;

    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, old);
}

static void sigpipe_restore(const sigset_t *old)
{
    struct timespec now = {0, 0};
    sigset_t pipe, pending;

    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    if (!sigismember(old, SIGPIPE) && sigpending(&pending) == 0 &&
        sigismember(&pending, SIGPIPE))
        sigtimedwait(&pipe, NULL, &now);
    pthread_sigmask(SIG_SETMASK, old, NULL);
}

static void *receive(void *arg)
{
    struct incoming *in = arg;
    libxl_domain_restore_params p;

    xcp__xen_log_reset(); /* this thread's libxl messages */
    libxl_domain_restore_params_init(&p);
    p.stream_version = 2; /* what libxl_domain_suspend writes */
    in->rc = libxl_domain_create_restore(in->ctx, &in->dc, &in->domid,
                                         in->fd, -1, &p, NULL, NULL);
    libxl_domain_restore_params_dispose(&p);
    if (in->rc) {
        xcp__xen_libxl_fail(&in->err, in->rc,
                            "libxl_domain_create_restore (incoming)",
                            in->domid);
        /* the sender must not block writing to a reader that is gone */
        shutdown(in->fd, SHUT_RDWR);
    }
    return NULL;
}

/*
 * The save stream's flags. LIBXL_SUSPEND_LIVE needs Xen to track the pages
 * the guest dirties while they are copied (log-dirty mode): through HAP
 * for PVH and HVM guests, through shadow paging for PV ones. A Xen built
 * without shadow paging (Debian's 4.17) cannot for PV: libxc fails with
 * "Failed to enable logdirty" (EOPNOTSUPP), and so does `xl migrate`.
 * Such a guest is moved suspended for the copy (as `xl save | xl restore`
 * would) rather than not at all.
 */
static int stream_flags(libxl_ctx *ctx, libxl_domain_type type,
                        uint32_t domid)
{
    libxl_physinfo pi;
    bool live = true;

    libxl_physinfo_init(&pi);
    if (type == LIBXL_DOMAIN_TYPE_PV && libxl_get_physinfo(ctx, &pi) == 0 &&
        !pi.cap_shadow) {
        live = false;
        fprintf(stderr, "xen: migrating PV domain %" PRIu32 " suspended "
                "for the copy: this Xen has no shadow paging, which PV "
                "live migration needs\n", domid);
    }
    libxl_physinfo_dispose(&pi);
    return live ? LIBXL_SUSPEND_LIVE : 0;
}

/* -ENOMEM unless the host has room for a second copy of the domain. */
static int check_room(void *self, uint32_t domid, xcp_hv_error *err)
{
    libxl_ctx *ctx = xcp__xen_ctx(self);
    libxl_domain_config dc;
    char uuid[LIBXL_UUID_FMTLEN + 1];
    uint64_t kb = 0;
    int rc;

    libxl_domain_config_init(&dc);
    rc = libxl_retrieve_domain_configuration(ctx, domid, &dc, NULL);
    if (rc) {
        rc = xcp__xen_libxl_fail(err, rc,
                                 "libxl_retrieve_domain_configuration",
                                 domid);
    } else if ((rc = libxl_domain_need_memory(ctx, &dc, domid, &kb)) != 0) {
        rc = xcp__xen_libxl_fail(err, rc, "libxl_domain_need_memory", domid);
    } else {
        snprintf(uuid, sizeof(uuid), LIBXL_UUID_FMT,
                 LIBXL_UUID_BYTES(dc.c_info.uuid));
        rc = xcp__xen_check_fit(self, uuid, kb * KiB, err);
    }
    libxl_domain_config_dispose(&dc);
    return rc;
}

/*
 * Puts the sender back as it was after a failed migration: running (or
 * paused, if it was), under its own name. Returns what could not be done
 * in a few words, "" if all went back.
 */
static const char *roll_back(libxl_ctx *ctx, uint32_t domid,
                             const char *away, const char *name,
                             bool paused)
{
    libxl_dominfo info;
    const char *undone = "";

    libxl_dominfo_init(&info);
    if (libxl_domain_info(ctx, &info, domid) == 0 && info.shutdown &&
        info.shutdown_reason == LIBXL_SHUTDOWN_REASON_SUSPEND &&
        libxl_domain_resume(ctx, domid, 1, NULL) != 0)
        undone = " (and the sender could not be resumed)";
    libxl_dominfo_dispose(&info);
    if (away && libxl_domain_rename(ctx, domid, away, name) != 0 &&
        !*undone)
        undone = " (and the sender could not be renamed back)";
    if (paused)
        libxl_domain_pause(ctx, domid, NULL);
    return undone;
}

/* The receiver is complete: it takes the name and runs, the sender goes. */
static int finish(void *self, struct incoming *in, uint32_t domid,
                  const char *name, bool paused, xcp_hv_error *err)
{
    libxl_ctx *ctx = xcp__xen_ctx(self);
    xcp_hv_error e;
    int rc;

    rc = libxl_domain_rename(ctx, in->domid, in->dc.c_info.name, name);
    if (rc)
        return xcp__xen_libxl_fail(err, rc, "libxl_domain_rename",
                                   in->domid);
    if (!paused && (rc = libxl_domain_unpause(ctx, in->domid, NULL)) != 0) {
        rc = xcp__xen_libxl_fail(err, rc, "libxl_domain_unpause",
                                 in->domid);
        /* the sender is renamed back by the roll-back: free the name */
        libxl_domain_rename(ctx, in->domid, name, in->dc.c_info.name);
        return rc;
    }
    /* the guest runs on in the receiver whatever happens to the sender */
    if (xcp__xen_destroy(self, domid, &e) < 0)
        fprintf(stderr, "xen: migrated domain %" PRIu32 " to %" PRIu32
                ", but the sender stays: %s\n", domid, in->domid,
                e.message);
    return 0;
}

int xcp__xen_domain_migrate_local(void *self, uint32_t domid,
                                  uint32_t *new_domid, xcp_hv_error *err)
{
    libxl_ctx *ctx = xcp__xen_ctx(self);
    struct incoming in;
    libxl_dominfo info;
    char *name = NULL, *away = NULL;
    const char *undone;
    int sv[2] = {-1, -1}, rc, lrc;
    bool paused, renamed = false;
    uint64_t t0 = xcp__xen_now_ns();
    pthread_t thread;
    sigset_t mask;

    if ((rc = xcp__xen_guest(self, domid, "migrate", err)) < 0)
        return rc;
    memset(&in, 0, sizeof(in));
    in.ctx = ctx;
    in.fd = -1;
    in.domid = INVALID_DOMID;
    libxl_domain_config_init(&in.dc);
    libxl_dominfo_init(&info);
    if ((lrc = libxl_domain_info(ctx, &info, domid)) != 0) {
        rc = xcp__xen_libxl_fail(err, lrc, "libxl_domain_info", domid);
        goto out;
    }
    if (info.shutdown || info.dying) {
        rc = xcp__hv_error_set(err, -EINVAL,
                               "xen: cannot migrate domain %" PRIu32
                               ": it has shut down", domid);
        goto out;
    }
    paused = info.paused;
    if ((rc = check_room(self, domid, err)) < 0)
        goto out;
    lrc = libxl_retrieve_domain_configuration(ctx, domid, &in.dc, NULL);
    if (lrc) {
        rc = xcp__xen_libxl_fail(err, lrc,
                                 "libxl_retrieve_domain_configuration",
                                 domid);
        goto out;
    }
    name = in.dc.c_info.name;
    in.dc.c_info.name = NULL;
    if (!name || asprintf(&in.dc.c_info.name, "%s--incoming", name) < 0 ||
        asprintf(&away, "%s--migratedaway", name) < 0) {
        in.dc.c_info.name = NULL;
        away = NULL;
        rc = xcp__hv_error_set(err, -ENOMEM, "xen: out of memory");
        goto out;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        rc = xcp__hv_error_set(err, -errno, "xen: socketpair: %s",
                               strerror(errno));
        goto out;
    }
    in.fd = sv[1];
    /* a paused guest cannot answer the suspend request at the end */
    if (paused && (lrc = libxl_domain_unpause(ctx, domid, NULL)) != 0) {
        rc = xcp__xen_libxl_fail(err, lrc, "libxl_domain_unpause", domid);
        goto out;
    }
    if ((lrc = libxl_domain_rename(ctx, domid, name, away)) != 0) {
        rc = xcp__xen_libxl_fail(err, lrc, "libxl_domain_rename", domid);
        goto undo;
    }
    renamed = true;
    sigpipe_block(&mask); /* the receiving thread inherits the mask */
    if ((rc = pthread_create(&thread, NULL, receive, &in)) != 0) {
        sigpipe_restore(&mask);
        rc = xcp__hv_error_set(err, -rc, "xen: cannot start the receiving "
                               "thread: %s", strerror(rc));
        goto undo;
    }
    lrc = libxl_domain_suspend(ctx, domid, sv[0],
                               stream_flags(ctx, in.dc.c_info.type, domid),
                               NULL);
    if (lrc) {
        rc = xcp__xen_libxl_fail(err, lrc, "libxl_domain_suspend", domid);
        shutdown(sv[0], SHUT_RDWR); /* the receiver reads the end now */
    }
    pthread_join(thread, NULL);
    sigpipe_restore(&mask);
    xcp__xen_timing("libxl live migration stream", domid, t0);
    if (in.rc) { /* with the sender's own failure, if any, after it */
        char sender[XCP_HV_ERROR_MSG_MAX];
        snprintf(sender, sizeof(sender), "%s", rc ? err->message : "");
        *err = in.err;
        rc = err->code;
        if (*sender) {
            size_t len = strlen(err->message);
            snprintf(err->message + len, sizeof(err->message) - len,
                     "; the sender: %s", sender);
        }
    }
    if (rc == 0)
        rc = finish(self, &in, domid, name, paused, err);
    if (rc == 0) {
        *new_domid = in.domid;
        xcp__xen_mark(self, domid);
        xcp__xen_mark(self, in.domid);
        xcp__xen_timing("libxl migrate localhost", domid, t0);
        goto out;
    }
undo:
    if (in.domid != (uint32_t)INVALID_DOMID) {
        xcp_hv_error e;
        xcp__xen_destroy(self, in.domid, &e);
    }
    undone = roll_back(ctx, domid, renamed ? away : NULL, name, paused);
    if (*undone) {
        size_t len = strlen(err->message);
        snprintf(err->message + len, sizeof(err->message) - len, "%s",
                 undone);
    }
    xcp__xen_mark(self, domid);
out:
    if (sv[0] >= 0)
        close(sv[0]);
    if (sv[1] >= 0)
        close(sv[1]);
    libxl_dominfo_dispose(&info);
    libxl_domain_config_dispose(&in.dc);
    free(name);
    free(away);
    return rc;
}

#else
/* ISO C wants something in every translation unit. */
typedef int xcp__hv_xen_migrate_not_built;
#endif /* XCP_HAVE_XEN */
