/*
 * xcpd: XAPI's download handlers whose data xe's own code makes
 * (xe_download_find: GET /pool/xmldbdump, the database XML; GET /blob),
 * so that the stock xe's HttpGet of pool-dump-database gets what
 * libxcp's xe writes itself; and the uploads it takes in the same way
 * (xe_transfer_find: PUT /blob).
 *
 * PUT <path>?session_id=S[&task_id=T]&...: the body is read into an
 * unnamed file of the state directory (O_TMPFILE; not memory), then the
 * consume function runs as a producer does; XAPI's thin client (HTTP
 * 1.0) waits for the 200 before it sends the body, so it gets one
 * early and the outcome only through T (as XAPI's handlers do); other
 * clients get the status at the end. A download marked anonymous_ok
 * (/blob) is served without a session too, the function then serving
 * public data only.
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
#include "../common/fdio.h"

#include <errno.h>
#include <fcntl.h>
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
    char *session;   /* NULL: none (d->anonymous_ok) */
    char *query;     /* the other arguments, escaped again */
    int body;        /* PUT: the body, or -1 */
    int early;       /* PUT: the 200 went out before the body */
    int failed_body; /* PUT: the body could not be stored (errno) */
    int no_length;   /* PUT with neither Content-Length nor chunked: its
                      * length is unknown, refused as XAPI's handlers do */
    char *task;
    const char *state_dir;
    struct MHD_Connection *c;
    int started;
    int done;        /* the thread has finished (atomic) */
    int fd;          /* the data, or -1 */
    unsigned status; /* the answer */
    char *text;      /* error text for a failure */
    char *type;      /* the data's Content-Type (produce's), or NULL */
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

int xcpd_xe_put_route(const char *url)
{
    return xe_transfer_find(url, true) != NULL;
}

/* The status of a failure: XAPI's handlers' for what they check. */
static unsigned status_of(const xe_err *err)
{
    if (err->kind != XE_E_API)
        return 500;
    if (strcmp(err->name, "SESSION_INVALID") == 0
        || strcmp(err->name, "SESSION_AUTHENTICATION_FAILED") == 0)
        return 401;
    if (strcmp(err->name, "HANDLE_INVALID") == 0
        || strcmp(err->name, "UUID_INVALID") == 0)
        return 404;
    if (strcmp(err->name, "INVALID_VALUE") == 0)
        return 400;
    return 500;
}

/* "NAME: p1, p2" (what the remote driver reads back as the error). */
static char *error_text(const xe_err *err)
{
    size_t i, len;
    char *t;

    if (err->kind != XE_E_API)
        return strdup(err->text != NULL ? err->text : "failed");
    len = strlen(err->name) + 3;
    for (i = 0; i < err->nparams; i++)
        len += strlen(err->params[i]) + 2;
    if ((t = malloc(len)) == NULL)
        return NULL;
    strcpy(t, err->name);
    for (i = 0; i < err->nparams; i++) {
        strcat(t, i == 0 ? ": " : ", ");
        strcat(t, err->params[i]);
    }
    return t;
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
        size_t n = err->kind == XE_E_API ? err->nparams
                   : err->text != NULL   ? 1
                                         : 0;

        xcp_value_set_array(&info, n + 1);
        xcp_value_set_string(&info.u.arr.items[0],
                             err->kind == XE_E_API ? err->name
                                                   : "INTERNAL_ERROR");
        for (i = 0; i < n; i++)
            xcp_value_set_string(&info.u.arr.items[i + 1],
                                 err->kind == XE_E_API ? err->params[i]
                                                       : err->text);
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
    int fd = -1, checked = 0;

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
    ctx.anonymous = st->session == NULL;
    if (st->session != NULL) {
        xe_args_init(&a);
        xe_args_str(&a, st->session);
        if (xe_call(&ctx, NULL, "session.get_uuid", &a) < 0) {
            st->status = 401;
            goto out;
        }
    }
    checked = st->session != NULL; /* the task is the session's */
    if (st->d->consume != NULL) {
        if (st->no_length) { /* XAPI's blob handler: "Need content length" */
            xe_fail(&ctx, "Need content length");
            st->status = 411;
            goto out;
        }
        if (st->failed_body != 0 || lseek(st->body, 0, SEEK_SET) < 0) {
            xe_fail(&ctx, "request body: %s",
                    strerror(st->failed_body ? st->failed_body : errno));
            goto out;
        }
        if (st->d->consume(&ctx, st->query, st->body) < 0) {
            st->status = status_of(&ctx.err);
            goto out;
        }
        st->status = 200;
        goto out;
    }
    if ((fd = memfd_create("xcpd-download", MFD_CLOEXEC)) < 0) {
        xe_fail(&ctx, "memfd_create: %s", strerror(errno));
        goto out;
    }
    if (st->d->produce(&ctx, st->query, fd) < 0) {
        st->status = status_of(&ctx.err);
        goto out;
    }
    if (fstat(fd, &sb) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
        xe_fail(&ctx, "%s", strerror(errno));
        goto out;
    }
    if (ctx.content_type != NULL &&
        (st->type = strdup(ctx.content_type)) == NULL) {
        xe_fail(&ctx, "out of memory");
        goto out;
    }
    st->status = 200;
    st->fd = fd;
    fd = -1;
out:
    if (checked)
        task_end(&ctx, st->task, st->status == 200 ? NULL : &ctx.err);
    if (st->status != 200) {
        char *t = error_text(&ctx.err);

        st->text = t != NULL ? malloc(strlen(t) + 2) : NULL;
        if (st->text != NULL)
            sprintf(st->text, "%s\n", t);
        xcpd_log(LOG_INFO, "%s %s: %s", st->d->consume ? "PUT" : "GET",
                 st->d->path, t != NULL ? t : "failed");
        free(t);
    }
    if (fd >= 0)
        close(fd);
    xe_ctx_dispose(&ctx);
    __atomic_store_n(&st->done, 1, __ATOMIC_SEQ_CST);
    MHD_resume_connection(st->c);
    __atomic_sub_fetch(&running, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

/* The other arguments than session_id and task_id, escaped again. */
struct query {
    char *s;
    size_t len;
    int oom;
};

/* v onto q, escaped unless raw. */
static void add(struct query *q, const char *v, int raw)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(v), k = 0;
    char *t = realloc(q->s, q->len + 3 * n + 1);

    if (t == NULL) {
        q->oom = 1;
        return;
    }
    q->s = t;
    for (; *v; v++) {
        unsigned char c = (unsigned char)*v;

        if (raw || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9') || strchr("-._~:", c) != NULL)
            t[q->len + k++] = (char)c;
        else {
            t[q->len + k++] = '%';
            t[q->len + k++] = hex[c >> 4];
            t[q->len + k++] = hex[c & 15];
        }
    }
    q->len += k;
    t[q->len] = '\0';
}

static enum MHD_Result query_arg(void *cls, enum MHD_ValueKind kind,
                                 const char *key, const char *value)
{
    struct query *q = cls;

    (void)kind;
    if (strcmp(key, "session_id") == 0 || strcmp(key, "task_id") == 0)
        return MHD_YES;
    if (q->len > 0)
        add(q, "&", 1);
    add(q, key, 0);
    add(q, "=", 1);
    add(q, value != NULL ? value : "", 0);
    return MHD_YES;
}

/* XAPI's thin client PUTs with HTTP/1.0 and waits for the 200 before
 * it sends the body: MHD writes nothing until a response is queued, so
 * the 200 goes out on the socket from here; the outcome is the task's. */
static int early_200(struct MHD_Connection *c)
{
    static const char head[] = "HTTP/1.1 200 OK\r\nConnection: close\r\n"
                               "Cache-Control: no-cache, no-store\r\n\r\n";
    const union MHD_ConnectionInfo *fd, *tls;
    xcpd_io x;
    int rc;

    fd = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    tls = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (fd == NULL)
        return -1;
    memset(&x, 0, sizeof(x));
    x.fd = fd->connect_fd;
    x.tls = tls != NULL ? (gnutls_session_t)tls->tls_session : NULL;
    rc = xcpd_io_write(&x, head, sizeof(head) - 1);
    xcpd_io_release(&x);
    return rc;
}

/* An unnamed file for a PUT's body: the state directory's disk, else
 * memory. */
static int body_file(const char *dir)
{
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

    return fd >= 0 ? fd : memfd_create("xcpd-upload", MFD_CLOEXEC);
}

enum MHD_Result xcpd_xe_get_step(xcpd_listener *l, struct MHD_Connection *c,
                                 const char *url, int put, int http10,
                                 xcpd_xe_get **state, const char *upload_data,
                                 size_t *upload_data_size)
{
    xcpd_xe_get *st = *state;
    struct MHD_Response *x;
    struct query q = {NULL, 0, 0};
    const char *s;
    pthread_attr_t a;
    pthread_t th;
    enum MHD_Result rc;
    struct stat sb;
    const xe_download *d;

    if (st == NULL) {
        if (l->http->srv == NULL)
            return xcpd_refuse(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                               "Service unavailable\n");
        d = xe_transfer_find(url, put);
        s = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
                                        "session_id");
        if (s == NULL)
            s = MHD_lookup_connection_value(c, MHD_COOKIE_KIND,
                                            "session_id");
        if (s == NULL && (d == NULL || !d->anonymous_ok))
            return xcpd_refuse(c, MHD_HTTP_UNAUTHORIZED,
                               "Authorisation required\n");
        if ((st = calloc(1, sizeof(*st))) == NULL)
            return MHD_NO;
        *state = st;
        st->fd = -1;
        st->body = -1;
        st->c = c;
        st->d = d;
        st->state_dir = xcp_server_state_dir(l->http->srv);
        st->session = s != NULL ? strdup(s) : NULL;
        MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, query_arg, &q);
        st->query = q.s != NULL ? q.s : strdup("");
        s = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "task_id");
        st->task = s != NULL && *s ? strdup(s) : NULL;
        if (st->d == NULL || st->query == NULL || q.oom
            || (MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
                                            "session_id") != NULL
                && st->session == NULL)
            || (s != NULL && *s && st->task == NULL))
            return MHD_NO;
        if (put) {
            const char *te = MHD_lookup_connection_value(
                c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);

            st->no_length = MHD_lookup_connection_value(
                                c, MHD_HEADER_KIND,
                                MHD_HTTP_HEADER_CONTENT_LENGTH) == NULL &&
                            (te == NULL || strcasestr(te, "chunked") == NULL);
            if ((st->body = body_file(st->state_dir)) < 0)
                return MHD_NO;
            if (http10 && !st->no_length && early_200(c) == 0)
                st->early = 1;
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) { /* a GET's body is dropped */
        if (st->body >= 0 && st->failed_body == 0 &&
            xcmd_write_all(st->body, upload_data, *upload_data_size, -1) < 0)
            st->failed_body = errno ? errno : EIO;
        *upload_data_size = 0;
        return MHD_YES;
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
    if (st->early) /* the 200 went out before the body: nothing to add */
        return MHD_NO;
    if (st->d->consume != NULL && st->status == 200)
        return xcpd_refuse(c, 200, "");
    if (st->status != 200 || st->fd < 0 || fstat(st->fd, &sb) < 0)
        return xcpd_refuse(c, st->status ? st->status : 500,
                           st->text != NULL ? st->text : "failed\n");
    x = MHD_create_response_from_fd((uint64_t)sb.st_size, st->fd);
    if (x == NULL)
        return MHD_NO;
    st->fd = -1; /* the response's now */
    if (st->type != NULL)
        MHD_add_response_header(x, MHD_HTTP_HEADER_CONTENT_TYPE, st->type);
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
    if (st->body >= 0)
        close(st->body);
    free(st->session);
    free(st->query);
    free(st->task);
    free(st->text);
    free(st->type);
    free(st);
}
