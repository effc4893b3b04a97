/*
 * xcpd: XAPI's download handlers whose data xe's own code makes
 * (xe_download_find: GET /pool/xmldbdump, the database XML), so that
 * the stock xe's HttpGet of pool-dump-database gets what libxcp's xe
 * writes itself.
 *
 * GET <path>?session_id=S[&task_id=T]: S must be a live session (as
 * XAPI's handlers check); the data is made on a thread of its own on a
 * session of the daemon's engine, into an anonymous file, while the
 * connection is suspended; then the connection resumes and the file is
 * the 200 response. T, when given, completes with the outcome (the
 * /cli command waits on it); without it the handler makes no task.
 * Failures: 401 for a session that is not one, 500 with the error's
 * text otherwise (T failed with the XenAPI error).
 */
#define _GNU_SOURCE /* memfd_create */
#include "xcpd.h"

#include "../xe/xe.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

struct xcpd_xe_get {
    const xe_download *d;
    char *session;
    char *task;
    const char *state_dir;
    struct MHD_Connection *c;
    int started;
    int done;        /* the thread has finished (atomic) */
    int fd;          /* the data, or -1 */
    unsigned status; /* the answer */
    char *text;      /* error text for a failure */
};

/* Producers running (their connections suspended): shutdown waits. */
static unsigned running;

unsigned xcpd_xe_get_shutdown(unsigned wait_ms)
{
    struct timespec ts = {0, 10 * 1000 * 1000};
    unsigned waited = 0, left;

    while ((left = __atomic_load_n(&running, __ATOMIC_SEQ_CST)) > 0
           && waited < wait_ms) {
        nanosleep(&ts, NULL);
        waited += 10;
    }
    return left;
}

int xcpd_xe_get_route(const char *url)
{
    return xe_download_find(url) != NULL;
}

/* No user's side: a producer prints nothing. */
static void quiet(const xe_io *io, const char *s)
{
    (void)io;
    (void)s;
}

static const xe_io no_io = {quiet, quiet};

static void task_end(xe_ctx *ctx, const char *task, const xe_err *err)
{
    xe_args a;
    xcp_value info;
    size_t i;

    if (task == NULL)
        return;
    if (err != NULL) {
        size_t n = err->kind == XE_E_API ? err->nparams : 0;

        xcp_value_set_array(&info, n + 1);
        xcp_value_set_string(&info.u.arr.items[0],
                             err->kind == XE_E_API ? err->name
                                                   : "INTERNAL_ERROR");
        for (i = 0; i < n; i++)
            xcp_value_set_string(&info.u.arr.items[i + 1], err->params[i]);
        xe_args_init(&a);
        xe_args_str(&a, task);
        xe_args_value(&a, &info);
        xe_call_quiet(ctx, NULL, "task.set_error_info", &a);
    }
    xe_args_init(&a);
    xe_args_str(&a, task);
    xe_args_str(&a, err != NULL ? "failure" : "success");
    xe_call_quiet(ctx, NULL, "task.set_status", &a);
}

static void *produce(void *arg)
{
    xcpd_xe_get *st = arg;
    xcp_open_options o;
    xe_ctx ctx;
    xe_args a;
    struct stat sb;
    int fd = -1;

    xe_ctx_init(&ctx, &no_io);
    memset(&o, 0, sizeof(o));
    o.version = XCP_OPEN_OPTIONS_VERSION;
    o.state_dir = st->state_dir;
    o.originator = "xcpd";
    st->status = 500;
    if (xcp_session_open_local(&ctx.s, &o) < 0) {
        ctx.s = NULL;
        xe_fail_lib(&ctx);
        goto out;
    }
    /* a live session (any: its ref is its secret), as XAPI checks */
    xe_args_init(&a);
    xe_args_str(&a, st->session);
    if (xe_call(&ctx, NULL, "session.get_uuid", &a) < 0) {
        st->status = 401;
        goto out;
    }
    if ((fd = memfd_create("xcpd-download", MFD_CLOEXEC)) < 0) {
        xe_fail(&ctx, "memfd_create: %s", strerror(errno));
        goto out;
    }
    if (st->d->produce(&ctx, fd) < 0)
        goto out;
    if (fstat(fd, &sb) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
        xe_fail(&ctx, "%s", strerror(errno));
        goto out;
    }
    st->status = 200;
    st->fd = fd;
    fd = -1;
out:
    if (st->status != 401)
        task_end(&ctx, st->task, st->status == 200 ? NULL : &ctx.err);
    if (st->status != 200) {
        const char *t = ctx.err.kind == XE_E_API ? ctx.err.name
                        : ctx.err.text != NULL    ? ctx.err.text
                                                  : "failed";

        st->text = malloc(strlen(t) + 2);
        if (st->text != NULL)
            sprintf(st->text, "%s\n", t);
        xcpd_log(LOG_INFO, "GET %s: %s", st->d->path, t);
    }
    if (fd >= 0)
        close(fd);
    xe_ctx_dispose(&ctx);
    __atomic_store_n(&st->done, 1, __ATOMIC_SEQ_CST);
    MHD_resume_connection(st->c);
    __atomic_sub_fetch(&running, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

enum MHD_Result xcpd_xe_get_step(xcpd_listener *l, struct MHD_Connection *c,
                                 const char *url, xcpd_xe_get **state,
                                 size_t *upload_data_size)
{
    xcpd_xe_get *st = *state;
    struct MHD_Response *x;
    const char *s;
    pthread_attr_t a;
    pthread_t th;
    enum MHD_Result rc;
    struct stat sb;

    if (*upload_data_size > 0) { /* a GET with a body: dropped */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (st == NULL) {
        if (l->http->srv == NULL)
            return xcpd_refuse(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                               "Service unavailable\n");
        s = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
                                        "session_id");
        if (s == NULL)
            s = MHD_lookup_connection_value(c, MHD_COOKIE_KIND,
                                            "session_id");
        if (s == NULL)
            return xcpd_refuse(c, MHD_HTTP_UNAUTHORIZED,
                               "Authorisation required\n");
        if ((st = calloc(1, sizeof(*st))) == NULL)
            return MHD_NO;
        *state = st;
        st->fd = -1;
        st->c = c;
        st->d = xe_download_find(url);
        st->state_dir = xcp_server_state_dir(l->http->srv);
        st->session = strdup(s);
        s = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "task_id");
        st->task = s != NULL && *s ? strdup(s) : NULL;
        if (st->d == NULL || st->session == NULL
            || (s != NULL && *s && st->task == NULL))
            return MHD_NO;
    }
    if (!st->started) {
        st->started = 1;
        MHD_suspend_connection(c);
        __atomic_add_fetch(&running, 1, __ATOMIC_SEQ_CST);
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&th, &a, produce, st) != 0) {
            __atomic_sub_fetch(&running, 1, __ATOMIC_SEQ_CST);
            st->done = 1;
            MHD_resume_connection(c);
        }
        pthread_attr_destroy(&a);
        return MHD_YES;
    }
    if (!__atomic_load_n(&st->done, __ATOMIC_SEQ_CST))
        return MHD_YES;
    if (st->status != 200 || st->fd < 0 || fstat(st->fd, &sb) < 0)
        return xcpd_refuse(c, st->status ? st->status : 500,
                           st->text != NULL ? st->text : "failed\n");
    x = MHD_create_response_from_fd((uint64_t)sb.st_size, st->fd);
    if (x == NULL)
        return MHD_NO;
    st->fd = -1; /* the response's now */
    MHD_add_response_header(x, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "application/xml");
    rc = MHD_queue_response(c, MHD_HTTP_OK, x);
    MHD_destroy_response(x);
    return rc;
}

void xcpd_xe_get_free(xcpd_xe_get *st)
{
    if (st == NULL)
        return;
    if (st->fd >= 0)
        close(st->fd);
    free(st->session);
    free(st->task);
    free(st->text);
    free(st);
}
