/*
 * xcpd's /cli handler: the `xe` that ships with XenServer and XCP-ng
 * (XAPI's ocaml/xe-cli/newcli.ml) sends its command line here, and the
 * command runs in the daemon with the very code of libxcp's own xe
 * (cmd/xe, linked as a library), so the output is the same whichever xe
 * a user runs. As XAPI's xapi_cli.ml:
 *
 *  - the body of `POST /cli` is the command line, one word a line, the
 *    client's "username=" and "password=" last (a first "session_id="
 *    line instead names a session to run in);
 *  - no HTTP response: the connection is taken from MHD (suspended, as
 *    for a CONNECT console) and a thread of this file writes the
 *    protocol's handshake, reads the client's, logs in (through the
 *    server, with the peer's own credentials: failed logins are delayed,
 *    local root needs no password), runs the command and ends with
 *    Exit <code>;
 *  - the command's user side (struct xe_io) is the client: stdout text
 *    goes as Print (one message per run of whole lines: the client adds
 *    the newline), stderr text as PrintStderr, a prompt as Prompt, a file
 *    to read as Load, and the transfers as HttpGet/HttpPut pointing the
 *    client at this daemon's /export, /import, /export_raw_vdi and
 *    /import_raw_vdi with the session and a task, whose outcome is the
 *    command's; a console as HttpConnect to /console.
 *
 * The command runs on a session of the engine the server serves
 * (xcp_session_open_local finds it by its state directory: no HTTP
 * loop back), opened once the login through the server succeeded: the
 * engine trusts its caller, the server checks the credentials.
 */
#include "xcpd.h"
#include "cli_proto.h"
#include "../xe/fields.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define HELLO_TIMEOUT_MS 30000
/* A client answers a transfer when it is over and sends Wait every 300 s
 * meanwhile (newcli's heartbeat); a prompt waits for a person. */
#define REPLY_TIMEOUT_MS (900 * 1000)
#define PROMPT_TIMEOUT_MS (3600 * 1000)
/* Largest file a client may Load (XAPI's max_cli_upload_bytes order). */
#define LOAD_MAX ((uint64_t)64 << 20)
/* How long a transfer the client reports failed may take to be
 * failed by its handler before we decide the handler never had it. */
#define ORPHAN_MS 2000

/* The request's state (http.c holds it). */
struct xcpd_cli {
    char *body;
    size_t len;
    int too_big;
    int started;
    int done;                /* the command is over: close */
};

/* One command in progress: what its thread owns. */
typedef struct xcpd_cli_conn {
    xcpd_http *h;
    struct xcpd_cli_conn *next; /* h->clis, under h->mu */
    struct MHD_Connection *c;
    int *done;
    xcpd_io client;
    xcp_server_peer peer;
    char addr[80];
    char *body;
    size_t len;
    const char *session_id;  /* the request's session_id= line, or NULL */
    xe_io io;
    xcpd_cli_buf pending;    /* stdout text short of a newline */
    int broken;              /* the client is gone */
} conn;

/* ---- the wire ------------------------------------------------------------ */

static void send_buf(conn *k, xcpd_cli_buf *b)
{
    if (b->oom || (!k->broken && xcpd_io_write(&k->client, b->data,
                                               b->len) < 0))
        k->broken = 1;
    xcpd_cli_buf_free(b);
}

static void send_cmd(conn *k, int tag, const char *s1, size_t n1,
                     const char *s2)
{
    xcpd_cli_buf b = {0};

    xcpd_cli_command(&b, tag, s1, n1, s2);
    send_buf(k, &b);
}

/* Exactly n bytes from the client: 0, or -1 (gone, timed out). */
static int read_exact(conn *k, void *buf, size_t n, int timeout_ms)
{
    size_t have = 0;
    ssize_t r;

    while (!k->broken && have < n) {
        r = xcpd_io_read_wait(&k->client, (char *)buf + have, n - have,
                              timeout_ms);
        if (r <= 0)
            k->broken = 1;
        else
            have += (size_t)r;
    }
    return k->broken ? -1 : 0;
}

/* The client's next reply: 0, or -1 (gone, or not the protocol). */
static int read_reply(conn *k, xcpd_cli_reply *reply, uint32_t *chunk,
                      int timeout_ms)
{
    unsigned char head[4], p[XCPD_CLI_REPLY_MAX];
    uint32_t n;

    if (read_exact(k, head, 4, timeout_ms) < 0)
        return -1;
    n = xcpd_cli_length(head);
    if (n > sizeof(p) || read_exact(k, p, n, timeout_ms) < 0
        || xcpd_cli_decode(p, n, reply, chunk) < 0) {
        k->broken = 1;
        return -1;
    }
    return 0;
}

/* The answer to a Load or a transfer: OK or Failed, past heartbeats. */
static int read_outcome(conn *k, xcpd_cli_reply *reply, int timeout_ms)
{
    uint32_t chunk;

    do {
        if (read_reply(k, reply, &chunk, timeout_ms) < 0)
            return -1;
    } while (*reply == XCPD_CLI_WAIT);
    if (*reply != XCPD_CLI_OK && *reply != XCPD_CLI_FAILED) {
        k->broken = 1;
        return -1;
    }
    return 0;
}

/* A blob (Chunk... End) into the arena as a string, up to max bytes. */
static char *read_blob(conn *k, xe_ctx *ctx, uint64_t max, int timeout_ms)
{
    xcpd_cli_reply reply;
    uint32_t n;
    xe_buf b;
    char *part;

    xe_buf_init(&b, &ctx->arena);
    xe_buf_add(&b, "");
    for (;;) {
        if (read_reply(k, &reply, &n, timeout_ms) < 0)
            return NULL;
        if (reply == XCPD_CLI_END)
            return b.s;
        if (reply != XCPD_CLI_CHUNK || b.len + n > max) {
            k->broken = 1;
            return NULL;
        }
        part = xe_alloc(&ctx->arena, n);
        if (read_exact(k, part, n, timeout_ms) < 0)
            return NULL;
        xe_buf_addn(&b, part, n);
    }
}

/* ---- the user's side: struct xe_io on the protocol ----------------------- */

/* stdout's whole lines as one Print (the client ends it with a newline). */
static void flush_lines(conn *k, int all)
{
    xcpd_cli_buf *p = &k->pending;
    size_t n = p->len;
    const unsigned char *nl;

    if (p->oom) {
        k->broken = 1;
        xcpd_cli_buf_free(p);
        return;
    }
    if (n == 0)
        return;
    if (!all) {
        while (n > 0 && p->data[n - 1] != '\n')
            n--;
        if (n == 0)
            return;
    }
    nl = p->data[n - 1] == '\n' ? p->data + n - 1 : NULL;
    send_cmd(k, XCPD_CLI_PRINT, (const char *)p->data,
             nl != NULL ? n - 1 : n, NULL);
    memmove(p->data, p->data + n, p->len - n);
    p->len -= n;
}

static void cli_out(const xe_io *io, const char *s)
{
    conn *k = io->arg;
    xcpd_cli_buf *p = &k->pending;
    size_t n = strlen(s);

    /* the pending text is a buffer of its own: grow it by hand */
    if (!p->oom && p->len + n > p->cap) {
        size_t cap = p->cap ? p->cap : 4096;
        unsigned char *d;

        while (cap < p->len + n)
            cap *= 2;
        if ((d = realloc(p->data, cap)) == NULL) {
            p->oom = 1;
        } else {
            p->data = d;
            p->cap = cap;
        }
    }
    if (!p->oom) {
        memcpy(p->data + p->len, s, n);
        p->len += n;
    }
    /* a few KiB a message: a long listing is not one line a message */
    if (memchr(s, '\n', n) != NULL && p->len >= 4096)
        flush_lines(k, 0);
}

static void cli_err(const xe_io *io, const char *s)
{
    conn *k = io->arg;

    flush_lines(k, 0);
    send_cmd(k, XCPD_CLI_PRINT_STDERR, s, strlen(s), NULL);
}

/* XAPI's Debug message: the stock xe shows it with --debug ("debug from
 * server: ..."), and ignores it otherwise. */
static void cli_debug(const xe_io *io, const char *s)
{
    conn *k = io->arg;

    flush_lines(k, 0);
    send_cmd(k, XCPD_CLI_DEBUG, s, strlen(s), NULL);
}

static int lost(xe_ctx *ctx)
{
    ctx->err.kind = XE_E_RAW;
    ctx->err.text = "Lost connection to the server.\n";
    return -1;
}

static char *cli_prompt(const xe_io *io, xe_ctx *ctx)
{
    conn *k = io->arg;
    char *line;

    flush_lines(k, 0);
    send_cmd(k, XCPD_CLI_PROMPT, NULL, 0, NULL);
    line = read_blob(k, ctx, 4096, PROMPT_TIMEOUT_MS);
    if (line == NULL)
        lost(ctx);
    return line;
}

static char *cli_load(const xe_io *io, xe_ctx *ctx, const char *path)
{
    conn *k = io->arg;
    xcpd_cli_reply reply;

    flush_lines(k, 0);
    send_cmd(k, XCPD_CLI_LOAD, path, strlen(path), NULL);
    if (read_outcome(k, &reply, REPLY_TIMEOUT_MS) < 0
        || reply != XCPD_CLI_OK)
        return NULL;
    return read_blob(k, ctx, LOAD_MAX, REPLY_TIMEOUT_MS);
}

/* A task of the command's session for a transfer: 0 or -1 (ctx->err). */
static int task_create(xe_ctx *ctx, const char *label, const char **task)
{
    xe_args a;

    xe_args_init(&a);
    xe_args_str(&a, label);
    xe_args_str(&a, "");
    return xe_call_str(ctx, task, "task.create", &a);
}

static bool task_pending(xe_ctx *ctx, const char *task)
{
    const char *st = xe_try_str(ctx, "task.get_status", task);

    return st == NULL || strcmp(st, "pending") == 0;
}

/*
 * The client reports the transfer failed: either its handler had the
 * task (it fails it as the connection ends) or the client never reached
 * it (no such file, no connection) and nobody will. Wait a little for
 * the first, on the task's events; true when the task is still pending.
 */
static bool orphaned(xe_ctx *ctx, const char *task)
{
    struct timespec t0, now;
    const char *token = "";
    xcp_value classes, res;
    const xcp_value *tok;
    double left;
    xe_args a;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (task_pending(ctx, task)) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        left = ORPHAN_MS / 1000.0 - (double)(now.tv_sec - t0.tv_sec)
               - (double)(now.tv_nsec - t0.tv_nsec) / 1e9;
        if (left <= 0)
            return true;
        xcp_value_set_array(&classes, 1);
        xcp_value_set_string(&classes.u.arr.items[0],
                             xe_sprintf(&ctx->arena, "task/%s", task));
        xe_args_init(&a);
        xe_args_value(&a, &classes);
        xe_args_str(&a, token);
        xe_args_float(&a, left);
        if (xe_call_quiet(ctx, &res, "event.from", &a) < 0)
            return true;
        tok = res.kind == XCP_VAL_STRUCT ? xcp_value_struct_get(&res, "token")
                                         : NULL;
        if (tok != NULL && tok->kind == XCP_VAL_STRING)
            token = xe_strdup(&ctx->arena, tok->u.s);
        xcp_value_dispose(&res);
    }
    return false;
}

/*
 * Have the client GET or PUT file at the daemon's path (query without
 * session_id and task_id, which are added), tracked by a new task:
 * XAPI's track_http_operation. *result (may be NULL) gets the task's
 * result. 0, or -1 with ctx->err.
 */
static int http_op(conn *k, xe_ctx *ctx, int tag, const char *file,
                   const char *label, const char *path, const char *query,
                   xcp_value *result)
{
    const char *task, *url;
    xcpd_cli_reply reply;
    xcp_value v;
    int rc = -1;

    if (result != NULL)
        memset(result, 0, sizeof(*result));
    if (task_create(ctx, label, &task) < 0)
        return -1;
    url = xe_sprintf(&ctx->arena, "%s?session_id=%s&task_id=%s%s%s", path,
                     xcp_session_ref(ctx->s), task, *query ? "&" : "",
                     query);
    flush_lines(k, 0);
    send_cmd(k, tag, file, strlen(file), url);
    if (read_outcome(k, &reply, REPLY_TIMEOUT_MS) < 0) {
        /* the client is gone: its transfer ends with its connection */
        xe_try_value(ctx, "task.cancel", task, NULL);
        lost(ctx);
        goto out;
    }
    if (reply == XCPD_CLI_FAILED && orphaned(ctx, task)) {
        xe_fail_api(ctx, "CLIENT_ERROR", 0, NULL);
        goto out;
    }
    if (xcp_task_wait(ctx->s, result != NULL ? result : &v, task) < 0) {
        xe_fail_lib(ctx);
        goto out;
    }
    if (result == NULL)
        xcp_value_dispose(&v);
    rc = 0;
out:
    xe_try_value(ctx, "task.destroy", task, NULL);
    return rc;
}

static const char *yes_no(bool b)
{
    return b ? "true" : "false";
}

static int cli_vm_export(const xe_io *io, xe_ctx *ctx, const char *file,
                         const char *vm, const xcp_vm_export_options *o)
{
    const char *q = xe_sprintf(
        &ctx->arena, "ref=%s&preserve_power_state=%s&export_snapshots=%s%s%s",
        vm, yes_no(o->preserve_power_state), yes_no(!o->no_snapshots),
        o->compression != NULL ? "&use_compression=" : "",
        o->compression != NULL ? o->compression : "");

    return http_op(io->arg, ctx, XCPD_CLI_HTTP_GET, file, "Export of VM",
                   o->metadata_only ? "/export_metadata" : "/export", q,
                   NULL);
}

static int cli_vm_import(const xe_io *io, xe_ctx *ctx, const char *file,
                         const xcp_vm_import_options *o, xe_strv *vms)
{
    xcp_value res;
    size_t i;
    const char *q = xe_sprintf(&ctx->arena, "restore=%s&force=%s%s%s",
                               yes_no(o->restore), yes_no(o->force),
                               o->sr.ref[0] ? "&sr_id=" : "", o->sr.ref);

    if (http_op(io->arg, ctx, XCPD_CLI_HTTP_PUT, file, "VM import",
                o->metadata ? "/import_metadata" : "/import", q, &res) < 0)
        return -1;
    if (res.kind == XCP_VAL_ARRAY)
        for (i = 0; i < res.u.arr.n; i++)
            if (res.u.arr.items[i].kind == XCP_VAL_STRING)
                xe_strv_add(vms, xe_strdup(&ctx->arena,
                                           res.u.arr.items[i].u.s));
    xcp_value_dispose(&res);
    return 0;
}

static int cli_vdi_transfer(const xe_io *io, xe_ctx *ctx, const char *file,
                            const char *vdi, bool import,
                            const xcp_vdi_transfer_options *o)
{
    const char *q = xe_sprintf(&ctx->arena, "vdi=%s%s%s%s%s", vdi,
                               o->format ? "&format=" : "",
                               o->format ? o->format : "",
                               o->base ? "&base=" : "", o->base ? o->base : "");

    return http_op(io->arg, ctx,
                   import ? XCPD_CLI_HTTP_PUT : XCPD_CLI_HTTP_GET, file,
                   import ? "VDI import" : "VDI export",
                   import ? "/import_raw_vdi" : "/export_raw_vdi", q, NULL);
}

static int cli_download(const xe_io *io, xe_ctx *ctx, const char *file,
                        const xe_download *d)
{
    return http_op(io->arg, ctx,
                   d->consume != NULL ? XCPD_CLI_HTTP_PUT : XCPD_CLI_HTTP_GET,
                   file, d->label, d->path, d->query, NULL);
}

static int cli_console(const xe_io *io, xe_ctx *ctx, const char *con)
{
    conn *k = io->arg;
    xcpd_cli_reply reply;
    const char *url = xe_sprintf(&ctx->arena, "/console?ref=%s&session_id=%s",
                                 con, xcp_session_ref(ctx->s));

    flush_lines(k, 0);
    send_cmd(k, XCPD_CLI_HTTP_CONNECT, url, strlen(url), NULL);
    /* the client answers when the user leaves the console: no timeout */
    if (read_outcome(k, &reply, -1) < 0)
        return lost(ctx);
    return 0;
}

/* ---- logging in ----------------------------------------------------------- */

/* One RPC through the server, waited for. */
typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    char *body;
    size_t len;
} waiter;

static void rpc_done(void *arg, const xcp_server_reply *rep)
{
    waiter *w = arg;
    char *body = rep->body != NULL ? malloc(rep->len + 1) : NULL;

    if (body != NULL) {
        memcpy(body, rep->body, rep->len);
        body[rep->len] = '\0';
    }
    if (rep->stream != NULL)
        xcp_server_stream_close(rep->stream);
    pthread_mutex_lock(&w->mu);
    w->body = body;
    w->len = body != NULL ? rep->len : 0;
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/*
 * method(params) as JSON-RPC 1.0 through the server, as the client's
 * peer: the result (a string) into the arena, or -1 with the XenAPI error
 * in ctx->err.
 */
static int server_call(conn *k, xe_ctx *ctx, const char *method,
                       json_t *params, const char **result)
{
    json_t *req = json_pack("{s:s,s:o,s:i}", "method", method, "params",
                            params, "id", 1);
    char *text = req != NULL ? json_dumps(req, JSON_COMPACT) : NULL;
    xcp_server_request r;
    json_t *rep = NULL, *err, *res;
    waiter w;
    size_t i;
    int rc = -1;

    json_decref(req);
    if (text == NULL)
        return xe_fail(ctx, "out of memory");
    memset(&w, 0, sizeof(w));
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    memset(&r, 0, sizeof(r));
    r.protocol = XCP_SERVER_JSONRPC;
    r.body = text;
    r.len = strlen(text);
    r.peer = k->peer;
    xcp_server_rpc(k->h->srv, &r, rpc_done, &w);
    pthread_mutex_lock(&w.mu);
    while (!w.done)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    free(text);
    if (w.body != NULL)
        rep = json_loadb(w.body, w.len, 0, NULL);
    err = rep != NULL ? json_object_get(rep, "error") : NULL;
    res = rep != NULL ? json_object_get(rep, "result") : NULL;
    if (json_is_array(err) && json_array_size(err) > 0) {
        const char **ps = xe_alloc(&ctx->arena, json_array_size(err)
                                                    * sizeof(char *));
        for (i = 1; i < json_array_size(err); i++) {
            const char *p = json_string_value(json_array_get(err, i));
            ps[i - 1] = p != NULL ? p : "";
        }
        rc = xe_fail_api(ctx, json_string_value(json_array_get(err, 0))
                                  ? json_string_value(json_array_get(err, 0))
                                  : "INTERNAL_ERROR",
                         json_array_size(err) - 1, ps);
    } else if (json_is_string(res)) {
        *result = xe_strdup(&ctx->arena, json_string_value(res));
        rc = 0;
    } else {
        xe_fail(ctx, "unexpected reply to %s", method);
    }
    json_decref(rep);
    free(w.body);
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    return rc;
}

/* XAPI's exception_handler for a failed login. */
static int login_failed(xe_ctx *ctx)
{
    if (!xe_streq(ctx->err.name, "SESSION_AUTHENTICATION_FAILED"))
        return -1;
    ctx->err.kind = XE_E_PARAM;
    ctx->err.prefix = "";
    ctx->err.text = ctx->err.nparams > 0 && *ctx->err.params[0]
                        ? "Authentication failed"
                        : "Username/password must be specified";
    return -1;
}

/* xe_open_fn: check the credentials (or the session) through the
 * server, then open the command's session on the server's engine. */
static int cli_open(xe_ctx *ctx, void *arg)
{
    conn *k = arg;
    const char *user = xe_param(ctx, "username");
    const char *pw = xe_param(ctx, "password");
    const char *s = NULL, *ignored;
    xcp_open_options o;
    int rc;

    if (k->session_id != NULL) {
        if (server_call(k, ctx, "session.get_uuid",
                        json_pack("[ss]", k->session_id, k->session_id),
                        &ignored) < 0)
            return -1;
    } else if (server_call(k, ctx, "session.login_with_password",
                           json_pack("[ssss]", user != NULL ? user : "",
                                     pw != NULL ? pw : "", "1.1", "cli"),
                           &s) < 0) {
        return login_failed(ctx);
    }
    if (s != NULL)
        server_call(k, ctx, "session.logout", json_pack("[s]", s), &ignored);
    memset(&ctx->err, 0, sizeof(ctx->err));
    memset(&o, 0, sizeof(o));
    o.version = XCP_OPEN_OPTIONS_VERSION;
    o.state_dir = xcp_server_state_dir(k->h->srv);
    o.originator = "cli";
    rc = xcp_session_open_local(&ctx->s, &o);
    if (rc < 0) {
        ctx->s = NULL;
        return xe_fail_lib(ctx);
    }
    return 0;
}

/* ---- the command's thread ------------------------------------------------- */

static pthread_once_t fields_once = PTHREAD_ONCE_INIT;
static int fields_rc;

static void fields_init(void)
{
    fields_rc = xe_fields_init();
}

static int run(conn *k)
{
    unsigned char hello[XCPD_CLI_HELLO_LEN];
    xcpd_cli_request rq;
    xcpd_cli_buf b = {0};
    xe_ctx ctx;
    int rc;

    xcpd_cli_hello(&b);
    send_buf(k, &b);
    if (read_exact(k, hello, sizeof(hello), HELLO_TIMEOUT_MS) < 0
        || xcpd_cli_hello_ok(hello, sizeof(hello)) != 1)
        return -1; /* XAPI: "Version mismatch", the connection closed */
    if (xcpd_cli_parse(k->body, k->len, &rq) < 0)
        return -1;
    k->session_id = rq.session_id;
    xe_ctx_init(&ctx, &k->io);
    ctx.in = NULL;
    pthread_once(&fields_once, fields_init);
    if (fields_rc < 0)
        rc = xe_fail(&ctx, "out of memory") < 0 ? xe_print_error(&ctx) : 1;
    else
        rc = xe_execute(&ctx, rq.nwords, (const char *const *)rq.words,
                        cli_open, k);
    flush_lines(k, 1);
    b.oom = 0;
    xcpd_cli_exit(&b, rc);
    send_buf(k, &b);
    if (k->h->verbose)
        xcpd_log(LOG_INFO, "xe %s from %s: exit %d",
                 ctx.cmdname != NULL ? ctx.cmdname : "?", k->addr, rc);
    xe_ctx_dispose(&ctx);
    xcpd_cli_request_free(&rq);
    return 0;
}

static void unlist(conn *k)
{
    conn **q;

    pthread_mutex_lock(&k->h->mu);
    for (q = &k->h->clis; *q != NULL; q = &(*q)->next)
        if (*q == k) {
            *q = k->next;
            break;
        }
    pthread_mutex_unlock(&k->h->mu);
}

static void *cli_thread(void *arg)
{
    conn *k = arg;

    run(k);
    unlist(k);
    xcpd_cli_buf_free(&k->pending);
    free(k->body);
    xcpd_io_release(&k->client); /* its TLS read-ahead and write buffers */
    /* the handler closes the connection once resumed */
    __atomic_store_n(k->done, 1, __ATOMIC_SEQ_CST);
    MHD_resume_connection(k->c);
    free(k);
    return NULL;
}

unsigned xcpd_cli_shutdown(xcpd_http *h, unsigned wait_ms)
{
    struct timespec ts = {0, 10 * 1000 * 1000};
    unsigned waited = 0, left;
    conn *k;

    for (;;) {
        left = 0;
        pthread_mutex_lock(&h->mu);
        /* the client's end closing makes the command's output fail; a
           command waiting for the client stops waiting */
        for (k = h->clis; k != NULL; k = k->next, left++)
            shutdown(k->client.fd, SHUT_RDWR);
        pthread_mutex_unlock(&h->mu);
        if (left == 0 || waited >= wait_ms)
            return left;
        nanosleep(&ts, NULL);
        waited += 10;
    }
}

/* ---- the handler ----------------------------------------------------------- */

/* Take the connection and start the command's thread. */
static enum MHD_Result start(xcpd_listener *l, struct MHD_Connection *c,
                             xcp_server_peer peer, xcpd_cli *st)
{
    conn *k = calloc(1, sizeof(*k));
    pthread_attr_t a;
    pthread_t th;
    int rc;

    if (k == NULL)
        return MHD_NO;
    k->h = l->http;
    k->c = c;
    k->done = &st->done;
    snprintf(k->addr, sizeof(k->addr), "%s",
             peer.address != NULL ? peer.address : "?");
    k->peer.local_root = peer.local_root;
    k->peer.address = k->addr;
    k->body = st->body;
    k->len = st->len;
    k->io.out = cli_out;
    k->io.err = cli_err;
    k->io.prompt = cli_prompt;
    k->io.load = cli_load;
    k->io.vm_export = cli_vm_export;
    k->io.vm_import = cli_vm_import;
    k->io.vdi_transfer = cli_vdi_transfer;
    k->io.console = cli_console;
    k->io.debug = cli_debug;
    k->io.download = cli_download;
    k->io.arg = k;
    if (xcpd_io_take(c, &k->client) < 0) {
        free(k);
        return MHD_NO;
    }
    st->body = NULL;
    st->started = 1;
    xcpd_guard_trust(c); /* the login is the server's to refuse */
    pthread_mutex_lock(&k->h->mu);
    k->next = k->h->clis;
    k->h->clis = k;
    pthread_mutex_unlock(&k->h->mu);
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&th, &a, cli_thread, k);
    pthread_attr_destroy(&a);
    if (rc != 0) {
        unlist(k);
        free(k->body);
        free(k);
        st->done = 1;
        MHD_resume_connection(c);
        return MHD_NO;
    }
    return MHD_YES;
}

enum MHD_Result xcpd_cli_step(xcpd_listener *l, struct MHD_Connection *c,
                              xcp_server_peer peer, xcpd_cli **state,
                              const char *data, size_t *size)
{
    xcpd_cli *st = *state;
    char *nb;

    if (st == NULL) {
        if ((st = calloc(1, sizeof(*st))) == NULL)
            return MHD_NO;
        *state = st;
    }
    if (st->started) { /* resumed: the command is over */
        *size = 0;
        return __atomic_load_n(&st->done, __ATOMIC_SEQ_CST) ? MHD_NO
                                                            : MHD_YES;
    }
    if (*size > 0) {
        if (st->len + *size > XCPD_RPC_BODY_MAX) {
            st->too_big = 1;
        } else if (!st->too_big) {
            if ((nb = realloc(st->body, st->len + *size + 1)) == NULL)
                return MHD_NO;
            st->body = nb;
            memcpy(st->body + st->len, data, *size);
            st->len += *size;
        }
        *size = 0;
        return MHD_YES;
    }
    if (st->too_big)
        return xcpd_refuse(c, MHD_HTTP_CONTENT_TOO_LARGE,
                      "The command line is too long\n");
    if (l->http->srv == NULL)
        return xcpd_refuse(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                      "Service unavailable\n");
    return start(l, c, peer, st);
}

void xcpd_cli_free(xcpd_cli *st)
{
    if (st == NULL)
        return;
    free(st->body);
    free(st);
}
