/*
 * xcpd: the HTTP side of every listener. Routes a request (method and
 * longest path prefix, as XAPI does), collects RPC bodies and parks the
 * connection while the engine's reply is pending, and streams raw VDI
 * transfers through the library's transfer API. The fuzzer drives these
 * same callbacks, so everything reachable from a request lives here.
 *
 * An import whose body runs until the client closes (no Content-Length
 * and no Transfer-Encoding, as XenServer's samples send it, or Xen
 * Orchestra's made-up length) is answered `200 OK` at once, as XAPI
 * does, and its body read by a thread of this file on the connection
 * taken from MHD (sockio.c; docs/notes-mhd.md §10 says why).
 *
 * Parking follows docs/notes-mhd.md §1: the completion may run on any
 * thread, even before xcp_server_rpc() returns, so it only stores a copy
 * of the reply and resumes the connection; MHD then calls the handler
 * again, which queues the reply. A large reply (get_all_records) comes
 * as a stream that MHD reads as it sends, so it is never held whole.
 */
#define _GNU_SOURCE /* struct ucred */

#include "xcpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <syslog.h>
#include <time.h>

#include <xcp/xcp.h>

/* Streamed RPC replies are asked for in blocks of this size. */
#define RPC_STREAM_BLOCK ((size_t)64 * 1024)
/* Export responses are produced and sent in blocks of this size. */
#define EXPORT_BLOCK ((size_t)1024 * 1024)
/* XO declares this length (2^50) when it does not know the size and just
   closes the socket at the end; MHD 0.9.75 only notices that close when
   the connection times out, so such imports get a short timeout. */
#define FAKE_LENGTH ((uint64_t)1 << 50)
/* An import with XO's made-up length gets its 200 after this long
   without body bytes (XO's empty probe waits for it), and MHD's idle
   timeout until its first body byte, after which the upload thread's
   own timeout counts. */
#define EARLY_MS 200
#define FAKE_LENGTH_TIMEOUT_S 5u
/* An import read until close is read in pieces of this size. */
#define UPLOAD_BLOCK ((size_t)1024 * 1024)
/* 413 under a name every libmicrohttpd since 0.9.71 accepts (the macro
   was renamed in 0.9.74). */
#define HTTP_TOO_LARGE 413u

typedef enum route {
    ROUTE_RPC,
    ROUTE_OPTIONS,
    ROUTE_IMPORT,
    ROUTE_EXPORT,
    ROUTE_CONSOLE,
    ROUTE_CLI,
    ROUTE_METRICS, /* GET /rrd_updates, /host_rrd, /vm_rrd, /metrics */
    ROUTE_RRD_PUT, /* PUT /rrd (metrics.c) */
    ROUTE_MIGRATE, /* CONNECT /migrate_receive (migrate.c) */
    ROUTE_NOT_FOUND,
    ROUTE_BAD_METHOD,
    ROUTE_REFUSED, /* answered before its body, which is dropped */
    ROUTE_XE_GET,  /* a download xe's code makes (xe_get.c) */
} route;

/* Where an RPC stands; changed under xcpd_http.mu once dispatched. */
typedef enum rpc_state {
    ST_BODY,   /* receiving the body */
    ST_PARKED, /* handed to the engine, reply pending */
    ST_DONE,   /* reply stored, to be queued by the handler */
} rpc_state;

typedef struct req {
    xcpd_listener *l;
    struct MHD_Connection *c;
    route route;
    const char *method;
    char path[64];          /* for log lines, truncated */
    char addr[80];          /* peer: "ip:port" or "unix:uid=N" */
    int local_root;

    /* RPC */
    xcp_server_protocol protocol;
    char *body;
    size_t len, cap;
    int too_big;
    rpc_state state;
    int suspended;
    int counted;            /* included in xcpd_http.dispatched */
    unsigned status;        /* the stored reply */
    char *content_type;
    char *reply;
    size_t reply_len;
    xcp_server_stream *stream; /* or the reply, read as it is sent */

    /* VDI transfers */
    xcp_server_transfer *t;
    char *task;             /* the transfer's task ref */
    char *vdi_uuid;
    const char *ext;        /* format: file extension ("raw", "vhd",
                               "qcow2") */
    uint64_t size;          /* export: bytes to send */
    unsigned fail_status;   /* nonzero: answer this with fail_text */
    char *fail_text;
    int until_close;        /* import: the body is whatever arrives
                               before the client closes */
    int no_length;          /* ... and MHD sees no body at all */
    uint64_t declared;      /* import: Content-Length, else UINT64_MAX */
    uint64_t received;      /* import: body bytes MHD passed on */
    int taken;              /* the connection is an upload thread's */
    int taken_done;         /* ... which has handed it back: close it */
    int body_seen;          /* import: a body byte came (under mu) */
    int early_sent;         /* the 200 went out already (under mu) */
    int watched;            /* early_thread holds r (under mu) */
    int ending;             /* the request is ending (under mu) */
    int gone;               /* ... ended while watched: early_thread
                               frees r (under mu) */

    xcpd_console *console;  /* /console (console.c) */
    xcpd_cli *cli;          /* /cli (cli.c) */
    xcpd_xe_get *xe_get;    /* xe_get.c */
    xcpd_rrd_put *rrd_put;  /* PUT /rrd (metrics.c) */
    xcpd_migrate *migrate;  /* CONNECT /migrate_receive (migrate.c) */
    int http10;             /* an HTTP/1.0 request */
} req;

void xcpd_http_init(xcpd_http *h, xcp_server *srv, int verbose)
{
    memset(h, 0, sizeof(*h));
    h->srv = srv;
    h->verbose = verbose;
    h->transfer_timeout_s = 120;
    pthread_mutex_init(&h->mu, NULL);
}

void xcpd_http_destroy(xcpd_http *h)
{
    pthread_mutex_destroy(&h->mu);
}

unsigned long xcpd_http_dispatched(xcpd_http *h)
{
    return __atomic_load_n(&h->dispatched, __ATOMIC_SEQ_CST);
}

/* ---- requests ----------------------------------------------------------- */

static int has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Whether url is path, or path and a slash (XO's "/import/"). */
static int is_path(const char *url, const char *path)
{
    size_t n = strlen(path);

    return strncmp(url, path, n) == 0
           && (url[n] == '\0' || (url[n] == '/' && url[n + 1] == '\0'));
}

/* XAPI's VM transfers (XVA): /import, /export and their _metadata
   forms; 2 for the latter. */
static int vm_path(const char *url)
{
    if (is_path(url, "/import") || is_path(url, "/export"))
        return 1;
    if (is_path(url, "/import_metadata") || is_path(url, "/export_metadata"))
        return 2;
    return 0;
}

/* Handlers are chosen by method and longest path prefix, as in XAPI's
   table: every POST that is not JSON-RPC is XML-RPC, OPTIONS is
   registered on "/" and so answers everywhere. */
static route route_of(const char *method, const char *url,
                      xcp_server_protocol *protocol)
{
    if (strcmp(method, MHD_HTTP_METHOD_POST) == 0 && is_path(url, "/cli"))
        return ROUTE_CLI;
    if (strcmp(method, MHD_HTTP_METHOD_POST) == 0) {
        *protocol = has_prefix(url, "/jsonrpc") ? XCP_SERVER_JSONRPC
                                                : XCP_SERVER_XMLRPC;
        return ROUTE_RPC;
    }
    if (strcmp(method, MHD_HTTP_METHOD_OPTIONS) == 0)
        return ROUTE_OPTIONS;
    if ((strcmp(method, MHD_HTTP_METHOD_CONNECT) == 0
         || strcmp(method, MHD_HTTP_METHOD_GET) == 0)
        && strcmp(url, "/console") == 0)
        return ROUTE_CONSOLE;
    if (strcmp(method, MHD_HTTP_METHOD_CONNECT) == 0
        && strcmp(url, "/migrate_receive") == 0)
        return ROUTE_MIGRATE;
    if (strcmp(method, MHD_HTTP_METHOD_PUT) == 0 && xcpd_xe_put_route(url))
        return ROUTE_XE_GET;
    if (strcmp(method, MHD_HTTP_METHOD_PUT) == 0 && is_path(url, "/rrd"))
        return ROUTE_RRD_PUT;
    if (strcmp(method, MHD_HTTP_METHOD_PUT) == 0)
        return has_prefix(url, "/import_raw_vdi") || vm_path(url)
                   ? ROUTE_IMPORT : ROUTE_NOT_FOUND;
    if (strcmp(method, MHD_HTTP_METHOD_GET) == 0 && xcpd_xe_get_route(url))
        return ROUTE_XE_GET;
    if (strcmp(method, MHD_HTTP_METHOD_GET) == 0 && xcpd_metrics_kind(url) >= 0)
        return ROUTE_METRICS;
    if (strcmp(method, MHD_HTTP_METHOD_GET) == 0)
        return has_prefix(url, "/export_raw_vdi") || vm_path(url)
                   ? ROUTE_EXPORT : ROUTE_NOT_FOUND;
    return ROUTE_BAD_METHOD;
}

/* Who is on the other end: the unix socket's peer uid decides local
   root; a TCP peer is only an address for the logs. */
static void peer_of(req *r)
{
    const union MHD_ConnectionInfo *ci;

    if (r->l->local) {
        struct ucred uc;
        socklen_t sl = sizeof(uc);

        ci = MHD_get_connection_info(r->c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci != NULL
            && getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &uc, &sl)
                   == 0) {
            r->local_root = uc.uid == 0;
            snprintf(r->addr, sizeof(r->addr), "unix:uid=%u",
                     (unsigned)uc.uid);
        } else {
            snprintf(r->addr, sizeof(r->addr), "unix:uid=?");
        }
        return;
    }
    ci = MHD_get_connection_info(r->c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(r->addr, sizeof(r->addr), "?");
    if (ci == NULL || ci->client_addr == NULL)
        return;
    if (ci->client_addr->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const void *)ci->client_addr;
        char ip[INET_ADDRSTRLEN];

        if (inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip)))
            snprintf(r->addr, sizeof(r->addr), "%s:%u", ip,
                     (unsigned)ntohs(sin->sin_port));
    } else if (ci->client_addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const void *)ci->client_addr;
        char ip[INET6_ADDRSTRLEN];

        if (inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip)))
            snprintf(r->addr, sizeof(r->addr), "[%s]:%u", ip,
                     (unsigned)ntohs(sin6->sin6_port));
    }
}

static xcp_server_peer peer(const req *r)
{
    xcp_server_peer p = {r->local_root, r->addr};

    return p;
}

static void req_free(req *r)
{
    if (r == NULL)
        return;
    free(r->body);
    free(r->content_type);
    free(r->reply);
    xcp_server_stream_close(r->stream);
    free(r->task);
    free(r->vdi_uuid);
    free(r->fail_text);
    xcpd_console_free(r->console);
    xcpd_cli_free(r->cli);
    xcpd_xe_get_free(r->xe_get);
    xcpd_rrd_put_free(r->rrd_put);
    xcpd_migrate_free(r->migrate);
    free(r);
}

/* ---- responses ---------------------------------------------------------- */

static struct MHD_Response *response(const char *body, size_t len,
                                     const char *content_type)
{
    struct MHD_Response *x = MHD_create_response_from_buffer(
        len, (void *)(body != NULL ? body : ""), MHD_RESPMEM_MUST_COPY);

    if (x != NULL && content_type != NULL)
        MHD_add_response_header(x, MHD_HTTP_HEADER_CONTENT_TYPE,
                                content_type);
    return x;
}

/* XenAPI clients in browsers (Xen Orchestra) need these on every RPC
   answer and on the pre-flight. */
static void add_cors(struct MHD_Response *x)
{
    MHD_add_response_header(x, "Access-Control-Allow-Origin", "*");
    MHD_add_response_header(x, "Access-Control-Allow-Headers",
                            "X-Requested-With");
}

static enum MHD_Result queue(req *r, unsigned status, struct MHD_Response *x)
{
    enum MHD_Result ret;

    if (x == NULL)
        return MHD_NO;
    ret = MHD_queue_response(r->c, status, x);
    MHD_destroy_response(x);
    return ret;
}

static enum MHD_Result answer_text(req *r, unsigned status, const char *text,
                                   int cors)
{
    struct MHD_Response *x = response(text, strlen(text), "text/plain");

    if (x != NULL && cors)
        add_cors(x);
    if (x != NULL && status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(x, MHD_HTTP_HEADER_ALLOW,
                                "GET, PUT, POST, OPTIONS");
    return queue(r, status, x);
}

/* "NAME: param, param" of the thread's last error, for transfer bodies
   and logs. */
static char *error_text(const char *fallback)
{
    const xcp_error *e = xcp_error_last();
    char buf[1024];
    size_t i, n;

    if (e == NULL || e->name == NULL)
        return strdup(fallback);
    n = (size_t)snprintf(buf, sizeof(buf), "%s", e->name);
    for (i = 0; i < e->nparams && n < sizeof(buf); i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s",
                              i == 0 ? ": " : ", ",
                              e->params[i] != NULL ? e->params[i] : "");
    return strdup(buf);
}

/* ---- RPC ---------------------------------------------------------------- */

/* The XenAPI error name in a failure envelope, for --verbose logs only:
   both encodings put it right after a fixed prefix. */
static void failure_name(const char *body, size_t len, char *out,
                         size_t outsz)
{
    static const char *const marks[] = {
        "<name>ErrorDescription</name><value><array><data><value>",
        "\"error\":{\"code\":1,\"message\":\"",
        "\"error\":[\"",
    };
    size_t i, k;

    out[0] = '\0';
    for (i = 0; i < sizeof(marks) / sizeof(marks[0]); i++) {
        const char *p = memmem(body, len, marks[i], strlen(marks[i]));

        if (p == NULL)
            continue;
        p += strlen(marks[i]);
        for (k = 0; k + 1 < outsz && p + k < body + len && p[k] != '<'
                    && p[k] != '"';
             k++)
            out[k] = p[k];
        out[k] = '\0';
        return;
    }
}

static void log_rpc(const req *r)
{
    char name[64];

    if (r->status != MHD_HTTP_OK) {
        xcpd_log(LOG_INFO, "%s %s from %s: HTTP %u", r->method, r->path,
                 r->addr, r->status);
        return;
    }
    if (r->reply == NULL)
        return; /* a stream: always a success */
    failure_name(r->reply, r->reply_len, name, sizeof(name));
    if (name[0] != '\0')
        xcpd_log(LOG_INFO, "%s %s from %s: %s", r->method, r->path, r->addr,
                 name);
}

/* The engine's completion: any thread, possibly before xcp_server_rpc()
   has returned. Copy the reply, publish it, wake the connection. */
static void rpc_done(void *arg, const xcp_server_reply *rep)
{
    req *r = arg;
    xcpd_http *h = r->l->http;
    char *ct = strdup(rep->content_type != NULL ? rep->content_type
                      : r->protocol == XCP_SERVER_JSONRPC ? "application/json"
                                                          : "text/xml");
    char *body = rep->stream == NULL ? malloc(rep->len + 1) : NULL;

    if (body != NULL && rep->len > 0)
        memcpy(body, rep->body, rep->len);
    pthread_mutex_lock(&h->mu);
    if (ct == NULL || (body == NULL && rep->stream == NULL)) {
        free(ct);
        free(body);
        xcp_server_stream_close(rep->stream);
        r->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
    } else {
        /* A status MHD would refuse to send becomes a plain 500. */
        r->status = rep->http_status >= 100 && rep->http_status <= 599
                        ? (unsigned)rep->http_status
                        : MHD_HTTP_INTERNAL_SERVER_ERROR;
        r->content_type = ct;
        r->reply = body;
        r->reply_len = rep->len;
        r->stream = rep->stream;
    }
    r->state = ST_DONE;
    if (r->suspended) {
        r->suspended = 0;
        MHD_resume_connection(r->c);
    }
    pthread_mutex_unlock(&h->mu);
}

static void rpc_dispatch(req *r)
{
    xcpd_http *h = r->l->http;
    xcp_server_request q;

    if (h->srv == NULL) {
        xcp_server_reply rep = {503, "text/html", "", 0};

        rpc_done(r, &rep);
        return;
    }
    q.protocol = r->protocol;
    q.body = r->body != NULL ? r->body : "";
    q.len = r->len;
    q.peer = peer(r);
    /* Known now even for a parked long poll, which must keep its place. */
    if (xcp_server_rpc_stream(h->srv, &q, rpc_done, r))
        xcpd_guard_trust(r->c);
}

/* Drop the body and read (and drop) the rest, so the 413 goes out on a
   connection that is still in sync. */
static void rpc_drop_body(req *r)
{
    r->too_big = 1;
    free(r->body);
    r->body = NULL;
    r->len = r->cap = 0;
}

static void rpc_append(req *r, const char *data, size_t n)
{
    size_t cap;
    char *p;

    if (r->too_big)
        return;
    if (n > XCPD_RPC_BODY_MAX - r->len) {
        rpc_drop_body(r);
        return;
    }
    if (r->len + n > r->cap) {
        cap = r->cap != 0 ? r->cap : 4096;
        while (cap < r->len + n)
            cap *= 2;
        if (cap > XCPD_RPC_BODY_MAX)
            cap = XCPD_RPC_BODY_MAX;
        p = realloc(r->body, cap);
        if (p == NULL) {
            /* Answered like an oversized body: there is no good reply to
               a request we cannot hold. */
            rpc_drop_body(r);
            return;
        }
        r->body = p;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
}

static enum MHD_Result rpc_too_big(req *r, const char *what)
{
    r->too_big = 1;
    if (r->l->http->verbose)
        xcpd_log(LOG_INFO, "%s %s from %s: %s over %zu bytes", r->method,
                 r->path, r->addr, what, XCPD_RPC_BODY_MAX);
    return answer_text(r, HTTP_TOO_LARGE, "Request body too large\n", 1);
}

/* MHD asks for the next bytes of a streamed reply. */
static ssize_t rpc_stream_read(void *cls, uint64_t pos, char *buf,
                               size_t max)
{
    size_t got;

    (void)pos;
    if (xcp_server_stream_read(cls, buf, max, &got) < 0) {
        const xcp_error *e = xcp_error_last();

        xcpd_log(LOG_ERR, "streamed reply aborted: %s",
                 e != NULL && e->name != NULL ? e->name : "?");
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    return got > 0 ? (ssize_t)got : MHD_CONTENT_READER_END_OF_STREAM;
}

static void rpc_stream_free(void *cls)
{
    xcp_server_stream_close(cls);
}

static struct MHD_Response *rpc_response(req *r)
{
    struct MHD_Response *x;

    if (r->stream == NULL) {
        /* Handed over, not copied again: MHD frees it. */
        x = MHD_create_response_from_buffer(r->reply_len, r->reply,
                                            MHD_RESPMEM_MUST_FREE);
        if (x == NULL)
            return NULL;
        r->reply = NULL;
        MHD_add_response_header(x, MHD_HTTP_HEADER_CONTENT_TYPE,
                                r->content_type);
        return x;
    }
    /* Unknown size: chunked for HTTP/1.1, until close for 1.0. */
    x = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, RPC_STREAM_BLOCK,
                                          rpc_stream_read, r->stream,
                                          rpc_stream_free);
    if (x == NULL)
        return NULL; /* req_free closes the stream */
    r->stream = NULL;
    MHD_add_response_header(x, MHD_HTTP_HEADER_CONTENT_TYPE,
                            r->content_type);
    return x;
}

static enum MHD_Result rpc_reply(req *r)
{
    struct MHD_Response *x;

    if (r->l->http->verbose)
        log_rpc(r);
    if (r->reply == NULL && r->stream == NULL)
        return answer_text(r, r->status, "Internal error\n", 1);
    x = rpc_response(r);
    if (x != NULL)
        add_cors(x);
    /* The copies are no longer needed while the answer is written. */
    free(r->body);
    r->body = NULL;
    return queue(r, r->status, x);
}

static enum MHD_Result rpc_step(req *r, const char *data, size_t *n)
{
    xcpd_http *h = r->l->http;
    int start;

    if (*n > 0) {
        rpc_append(r, data, *n);
        *n = 0;
        return MHD_YES;
    }
    if (r->too_big)
        return rpc_too_big(r, "body");

    /* The engine may block (a synchronous call runs here), so the lock
       is not held across it. */
    pthread_mutex_lock(&h->mu);
    start = r->state == ST_BODY;
    if (start) {
        r->state = ST_PARKED;
        r->counted = 1;
        __atomic_add_fetch(&h->dispatched, 1, __ATOMIC_SEQ_CST);
    }
    pthread_mutex_unlock(&h->mu);
    if (start)
        rpc_dispatch(r);

    pthread_mutex_lock(&h->mu);
    if (r->state == ST_DONE) {
        pthread_mutex_unlock(&h->mu);
        return rpc_reply(r);
    }
    /* Pending: park until rpc_done() resumes us; the handler is then
       called again and takes the branch above. */
    r->suspended = 1;
    MHD_suspend_connection(r->c);
    pthread_mutex_unlock(&h->mu);
    return MHD_YES;
}

/* The declared Content-Length, UINT64_MAX when there is none. MHD has
   already answered a malformed or unrepresentable one (400 or 413)
   before calling the handler, so what is left is a plain number. */
static uint64_t declared_length(struct MHD_Connection *c)
{
    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                    MHD_HTTP_HEADER_CONTENT_LENGTH);

    return cl != NULL ? (uint64_t)strtoull(cl, NULL, 10) : UINT64_MAX;
}

/* ---- VDI transfers ------------------------------------------------------ */

/* Query argument first, cookie second, as XAPI's handlers look them up. */
static const char *arg_or_cookie(struct MHD_Connection *c, const char *name)
{
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
                                                name);

    return v != NULL ? v
                     : MHD_lookup_connection_value(c, MHD_COOKIE_KIND, name);
}

static void transfer_failed(req *r, unsigned status, char *text)
{
    r->fail_status = status;
    r->fail_text = text;
    if (r->l->http->verbose)
        xcpd_log(LOG_INFO, "%s %s from %s: HTTP %u: %s", r->method, r->path,
                 r->addr, status, text != NULL ? text : "");
}

/* A boolean query argument: "true" (any case) or "1". */
static int arg_true(struct MHD_Connection *c, const char *name, int def)
{
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
                                                name);

    if (v == NULL)
        return def;
    return strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0;
}

/* The arguments of XAPI's /export and /import (export.ml, import.ml). */
static void vm_request(req *r, xcp_server_transfer_request *tr)
{
    tr->kind = XCP_SERVER_VM;
    tr->metadata = vm_path(r->path) == 2;
    r->ext = "xva";
    tr->vm = MHD_lookup_connection_value(r->c, MHD_GET_ARGUMENT_KIND,
                                         "uuid");
    if (tr->vm == NULL)
        tr->vm = MHD_lookup_connection_value(r->c, MHD_GET_ARGUMENT_KIND,
                                             "ref");
    if (tr->sr_id == NULL)
        tr->sr_id = arg_or_cookie(r->c, "sr_uuid");
    tr->compression = MHD_lookup_connection_value(r->c, MHD_GET_ARGUMENT_KIND,
                                                  "use_compression");
    tr->no_snapshots = !arg_true(r->c, "export_snapshots", 1);
    tr->preserve_power_state = arg_true(r->c, "preserve_power_state", 0);
    tr->include_vhd_parents = arg_true(r->c, "include_vhd_parents", 0);
    tr->restore = arg_true(r->c, "restore", 0);
    tr->force = arg_true(r->c, "force", 0);
    tr->chunked = 0;
}

/* Authenticate and open the transfer as soon as the headers are known, so
   a refused upload is answered before its body is read. */
static void transfer_open(req *r)
{
    xcpd_http *h = r->l->http;
    xcp_server_transfer_request tr;
    xcp_server_transfer *t = NULL;
    char *user, *password = NULL;
    int status = 0, rc, fake;
    const char *s;

    if (h->srv == NULL) {
        transfer_failed(r, MHD_HTTP_SERVICE_UNAVAILABLE,
                        strdup("Service unavailable"));
        return;
    }
    memset(&tr, 0, sizeof(tr));
    tr.version = XCP_SERVER_TRANSFER_REQUEST_VERSION;
    /* XAPI's own chunk framing: a flag argument (?chunked) or a cookie. */
    tr.chunked = r->route == ROUTE_IMPORT
                 && (MHD_lookup_connection_value_n(r->c, MHD_GET_ARGUMENT_KIND,
                                                   "chunked", 7, NULL, NULL)
                         == MHD_YES
                     || MHD_lookup_connection_value(r->c, MHD_COOKIE_KIND,
                                                    "chunked") != NULL);
    tr.direction = r->route == ROUTE_IMPORT ? XCP_SERVER_IMPORT
                                            : XCP_SERVER_EXPORT;
    tr.session_id = arg_or_cookie(r->c, "session_id");
    tr.task_id = arg_or_cookie(r->c, "task_id");
    tr.vdi = MHD_lookup_connection_value(r->c, MHD_GET_ARGUMENT_KIND, "vdi");
    tr.sr_id = arg_or_cookie(r->c, "sr_id");
    tr.format = MHD_lookup_connection_value(r->c, MHD_GET_ARGUMENT_KIND,
                                            "format");
    tr.base = MHD_lookup_connection_value(r->c, MHD_GET_ARGUMENT_KIND,
                                          "base");
    r->ext = tr.format == NULL || strcasecmp(tr.format, "vhd") != 0
                 ? (tr.format != NULL && strcasecmp(tr.format, "qcow2") == 0
                        ? "qcow2"
                        : tr.format != NULL && strcasecmp(tr.format, "tar") == 0
                              ? "tar" : "raw")
                 : "vhd";
    if (vm_path(r->path))
        vm_request(r, &tr);
    user = MHD_basic_auth_get_username_password(r->c, &password);
    tr.basic_user = user;
    tr.basic_password = user != NULL ? password : NULL;
    tr.content_length = r->route == ROUTE_IMPORT ? declared_length(r->c)
                                                 : UINT64_MAX;
    /* XO's made-up length means "unknown", and so does no length at all
       (MHD would take that as an empty body): the body ends when the
       client closes. */
    fake = tr.content_length != UINT64_MAX && tr.content_length >= FAKE_LENGTH;
    r->no_length = r->route == ROUTE_IMPORT
                   && tr.content_length == UINT64_MAX
                   && MHD_lookup_connection_value(
                          r->c, MHD_HEADER_KIND,
                          MHD_HTTP_HEADER_TRANSFER_ENCODING) == NULL;
    if (fake)
        tr.content_length = UINT64_MAX;
    r->until_close = fake || r->no_length;
    r->declared = tr.content_length;
    tr.peer = peer(r);

    xcp_error_clear();
    rc = xcp_server_transfer_open(h->srv, &t, &r->size, &status, &tr);
    if (password != NULL)
        MHD_free(password);
    if (user != NULL)
        MHD_free(user);
    if (rc < 0) {
        transfer_failed(r, status >= 400 && status < 600
                               ? (unsigned)status
                               : MHD_HTTP_INTERNAL_SERVER_ERROR,
                        error_text("transfer refused"));
        return;
    }
    r->t = t;
    s = xcp_server_transfer_task(t);
    r->task = strdup(s != NULL ? s : "");
    s = xcp_server_transfer_vdi_uuid(t);
    r->vdi_uuid = strdup(s != NULL ? s : "");
    xcpd_guard_trust(r->c); /* then the transfer's own timeout */
    MHD_set_connection_option(r->c, MHD_CONNECTION_OPTION_TIMEOUT,
                              h->transfer_timeout_s);
}

static enum MHD_Result transfer_refusal(req *r)
{
    const char *text = r->fail_text != NULL ? r->fail_text : "error";
    struct MHD_Response *x;
    char *body = malloc(strlen(text) + 2);

    if (body == NULL)
        return MHD_NO;
    sprintf(body, "%s\n", text);
    x = response(body, strlen(body), "text/plain");
    free(body);
    if (x != NULL && r->fail_status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(x, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Basic realm=\"xapi\"");
    /* A transfer that failed once open names its (failed) task. */
    if (x != NULL && r->task != NULL)
        MHD_add_response_header(x, "task-id", r->task);
    return queue(r, r->fail_status, x);
}

/* The status of an import that failed once its body began: XAPI's
   /import (import.ml) sends its 200 and the task before it reads the
   body, so a failure then is the task's alone; the disk handlers answer
   500 with the error. */
static unsigned failed_import_status(const req *r)
{
    return vm_path(r->path) ? MHD_HTTP_OK : MHD_HTTP_INTERNAL_SERVER_ERROR;
}

static void add_transfer_headers(req *r, struct MHD_Response *x)
{
    MHD_add_response_header(x, "task-id", r->task != NULL ? r->task : "");
    MHD_add_response_header(x, MHD_HTTP_HEADER_CACHE_CONTROL,
                            "no-cache, no-store");
}

/* ---- transfers on connections taken from MHD ------------------------------ */

/* An import read until the client closes or past MHD's first buffer, or
   an export: its request and the connection taken from MHD. */
typedef struct xcpd_upload {
    xcpd_http *h;
    struct xcpd_upload *next;   /* h->uploads, under h->mu */
    req *r;
    xcpd_io client;
    uint64_t left;              /* import: body bytes still to come;
                                   UINT64_MAX: until the client closes */
    int stopping;               /* shutdown: the end is not the client's */
} upload;

static void upload_unlist(upload *u)
{
    upload **q;

    pthread_mutex_lock(&u->h->mu);
    for (q = &u->h->uploads; *q != NULL; q = &(*q)->next)
        if (*q == u) {
            *q = u->next;
            break;
        }
    pthread_mutex_unlock(&u->h->mu);
}

/* The answer on the taken connection: the 200 XAPI sends before it
   reads a body of unknown length (text NULL), or, after a body of known
   length, its outcome (a failure's text as the body). */
static int upload_answer(upload *u, unsigned status, const char *text)
{
    char head[1536];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %u %s\r\n"
                     "Connection: close\r\n"
                     "Cache-Control: no-cache, no-store\r\n"
                     "Content-Type: %s\r\n"
                     "task-id: %s\r\n",
                     status, status == 200 ? "OK" : "Error",
                     text != NULL ? "text/plain" : "application/octet-stream",
                     u->r->task != NULL ? u->r->task : "");

    if (n > 0 && text != NULL && (size_t)n < sizeof(head))
        n += snprintf(head + n, sizeof(head) - (size_t)n,
                      "Content-Length: %zu\r\n\r\n%s\n",
                      strlen(text) + 1, text);
    else if (n > 0 && (size_t)n < sizeof(head))
        n += snprintf(head + n, sizeof(head) - (size_t)n, "\r\n");
    return n > 0 && (size_t)n < sizeof(head)
               ? xcpd_io_write(&u->client, head, (size_t)n)
               : -1;
}

/* Read the body: until the client closes, or its declared length. 1
   when it all came, 0 when the transfer or the connection failed (the
   thread's error says why when the transfer did; a client gone before
   the end of its length is VDI_IO_ERROR "transfer incomplete"). */
static int upload_body(upload *u, char *buf)
{
    req *r = u->r;
    int timeout_ms = (int)r->l->http->transfer_timeout_s * 1000;
    size_t want;
    ssize_t n, end = 1;

    while (u->left > 0) {
        want = u->left < UPLOAD_BLOCK ? (size_t)u->left : UPLOAD_BLOCK;
        n = xcpd_io_read_fill(&u->client, buf, want,
                              timeout_ms > 0 ? timeout_ms : -1, &end);
        if (n > 0) {
            if (xcp_server_transfer_write(r->t, buf, (size_t)n) < 0)
                return 0;
            if (u->left != UINT64_MAX)
                u->left -= (uint64_t)n;
            continue;
        }
        xcp_error_clear();
        if (r->l->http->verbose && (n != 0 || u->left != UINT64_MAX))
            xcpd_log(LOG_INFO, "%s %s from %s: upload %s", r->method,
                     r->path, r->addr, n == -3 ? "idle too long"
                                      : n == 0 ? "cut short"
                                               : "connection failed");
        return n == 0 && u->left == UINT64_MAX
               && !__atomic_load_n(&u->stopping, __ATOMIC_SEQ_CST);
    }
    return 1;
}

static int download_head(upload *u);
static int download_body(upload *u, char *buf);

/* PUT /rrd without a length, as XAPI's hosts send a VM's RRD
   (rrdd_shared.ml's send_rrd): they wait for the 200 before they write
   the body, then close. So the 200 goes first, the body is read until
   the close, and its outcome can only be logged (as XAPI's handler, which
   answers before it reads too). */
static void rrd_until_close(upload *u)
{
    req *r = u->r;
    int timeout_ms = (int)r->l->http->transfer_timeout_s * 1000;
    char *buf = malloc(UPLOAD_BLOCK), text[512];
    ssize_t n, end = 1;
    int status;

    if (buf == NULL || upload_answer(u, 200, NULL) < 0) {
        free(buf);
        return;
    }
    for (;;) {
        n = xcpd_io_read_fill(&u->client, buf, UPLOAD_BLOCK,
                              timeout_ms > 0 ? timeout_ms : -1, &end);
        if (n > 0) {
            xcpd_rrd_put_add(r->rrd_put, buf, (size_t)n);
            continue;
        }
        break;
    }
    free(buf);
    if (n == 0 && __atomic_load_n(&u->stopping, __ATOMIC_SEQ_CST))
        n = -1; /* the daemon's shutdown, not the client's close */
    if (n != 0) { /* not the client's close: the RRD may be cut short */
        xcpd_log(LOG_WARNING, "PUT /rrd from %s: %s; the RRD is dropped",
                 r->addr, n == -3 ? "idle too long" : "connection failed");
        return;
    }
    status = xcpd_rrd_put_finish(r->l, r->rrd_put, text, sizeof(text));
    if (status != 200)
        xcpd_log(LOG_WARNING, "PUT /rrd from %s (answered 200 before its "
                 "body): HTTP %d: %s", r->addr, status, text);
}

/* An export on its taken connection: the head, the body, the task's
   outcome; the client learns of a failure by the connection closing
   short of Content-Length. */
static void download(upload *u)
{
    req *r = u->r;
    char *buf = malloc(EXPORT_BLOCK);
    int ok;

    xcp_error_clear();
    ok = buf != NULL && download_head(u) == 0 && download_body(u, buf);
    free(buf);
    if (!ok && r->l->http->verbose)
        xcpd_log(LOG_INFO, "%s %s from %s: transfer incomplete", r->method,
                 r->path, r->addr);
    xcp_server_transfer_close(r->t, ok);
    r->t = NULL;
}

/* Hand a taken connection back to MHD, which closes it. */
static void upload_end(upload *u)
{
    req *r = u->r;

    upload_unlist(u);
    /* the handler closes the connection once resumed */
    __atomic_store_n(&r->taken_done, 1, __ATOMIC_SEQ_CST);
    MHD_resume_connection(r->c);
    xcpd_io_release(&u->client);
    free(u);
}

static void *upload_thread(void *arg)
{
    upload *u = arg;
    req *r = u->r;
    char *buf, *text = NULL;
    int ok = 0, early = u->left == UINT64_MAX, sent;

    if (r->route == ROUTE_EXPORT) {
        download(u);
        upload_end(u);
        return NULL;
    }
    if (r->route == ROUTE_RRD_PUT) {
        rrd_until_close(u);
        upload_end(u);
        return NULL;
    }
    buf = malloc(UPLOAD_BLOCK);
    pthread_mutex_lock(&u->h->mu);
    sent = r->early_sent;
    pthread_mutex_unlock(&u->h->mu);
    xcp_error_clear();
    if (buf != NULL && (!early || sent || upload_answer(u, 200, NULL) == 0))
        ok = upload_body(u, buf);
    free(buf);
    if (xcp_server_transfer_close(r->t, ok) < 0 || !ok) {
        ok = 0;
        text = error_text("VDI_IO_ERROR: transfer incomplete");
        if (r->l->http->verbose)
            xcpd_log(LOG_INFO, "%s %s from %s: %s", r->method, r->path,
                     r->addr, text != NULL ? text : "");
    }
    r->t = NULL;
    if (!early && !sent) /* an early 200 was the answer */
        upload_answer(u, ok ? 200 : failed_import_status(r),
                      ok ? "" : text ? text : "error");
    free(text);
    upload_end(u);
    return NULL;
}

/* Take r's connection and, on a thread, read the rest of its body (left
   bytes, or UINT64_MAX: until the client closes) or, for an export, send
   the response; MHD_NO when that cannot start (the transfer then
   fails). */
static enum MHD_Result upload_take(req *r, uint64_t left)
{
    xcpd_http *h = r->l->http;
    upload *u = calloc(1, sizeof(*u));
    pthread_attr_t a;
    pthread_t th;
    int rc = -1;

    if (u != NULL && xcpd_io_take(r->c, &u->client) == 0) {
        u->h = h;
        u->r = r;
        u->left = left;
        r->taken = 1;
        pthread_mutex_lock(&h->mu);
        u->next = h->uploads;
        h->uploads = u;
        pthread_mutex_unlock(&h->mu);
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        rc = pthread_create(&th, &a, upload_thread, u);
        pthread_attr_destroy(&a);
        if (rc != 0) {
            upload_unlist(u);
            r->taken_done = 1;
            MHD_resume_connection(r->c);
        }
    }
    if (rc != 0) {
        free(u);
        xcp_server_transfer_close(r->t, 0);
        r->t = NULL;
        return MHD_NO;
    }
    return MHD_YES;
}

unsigned xcpd_upload_shutdown(xcpd_http *h, unsigned wait_ms)
{
    struct timespec ts = {0, 10 * 1000 * 1000};
    unsigned waited = 0, left;
    upload *u;

    for (;;) {
        left = 0;
        pthread_mutex_lock(&h->mu);
        for (u = h->uploads; u != NULL; u = u->next, left++) {
            __atomic_store_n(&u->stopping, 1, __ATOMIC_SEQ_CST);
            shutdown(u->client.fd, SHUT_RDWR);
        }
        pthread_mutex_unlock(&h->mu);
        if (left == 0 || waited >= wait_ms)
            return left;
        nanosleep(&ts, NULL);
        waited += 10;
    }
}

/* XO's made-up length: XAPI answers 200 before the body, and XO's probe
   (that length, no body) waits for it. Body bytes MHD had buffered with
   the head reach the handler at once; when none came in EARLY_MS, MHD's
   buffer is empty, and since MHD writes nothing while no response is
   queued, the 200 goes out on the socket from here (GnuTLS sends and
   receives on one session from two threads). The body, if any, then
   comes as usual, without a second 200. */
static void *early_thread(void *arg)
{
    req *r = arg;
    xcpd_http *h = r->l->http;
    struct timespec ts = {0, EARLY_MS * 1000L * 1000L};
    const union MHD_ConnectionInfo *fd, *tls;
    upload u;
    int free_it;

    nanosleep(&ts, NULL);
    pthread_mutex_lock(&h->mu);
    if (!r->ending && !r->body_seen && !r->taken && r->t != NULL) {
        fd = MHD_get_connection_info(r->c, MHD_CONNECTION_INFO_CONNECTION_FD);
        tls = MHD_get_connection_info(r->c,
                                      MHD_CONNECTION_INFO_GNUTLS_SESSION);
        memset(&u, 0, sizeof(u));
        u.r = r;
        if (fd != NULL) {
            u.client.fd = fd->connect_fd;
            u.client.tls = tls != NULL ? (gnutls_session_t)tls->tls_session
                                       : NULL;
            r->early_sent = upload_answer(&u, 200, NULL) == 0;
        }
    }
    r->watched = 0;
    free_it = r->gone;
    pthread_mutex_unlock(&h->mu);
    if (free_it)
        req_free(r);
    return NULL;
}

static void early_watch(req *r)
{
    pthread_attr_t a;
    pthread_t th;

    r->watched = 1;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&th, &a, early_thread, r) != 0)
        r->watched = 0;
    pthread_attr_destroy(&a);
}

static enum MHD_Result import_step(req *r, const char *data, size_t *n)
{
    struct MHD_Response *x;
    int early;

    if (r->taken) {
        /* Resumed once the upload thread is done: close. */
        *n = 0;
        return __atomic_load_n(&r->taken_done, __ATOMIC_SEQ_CST) ? MHD_NO
                                                                 : MHD_YES;
    }
    if (*n > 0) {
        pthread_mutex_lock(&r->l->http->mu);
        r->body_seen = 1;
        pthread_mutex_unlock(&r->l->http->mu);
        if (r->t != NULL
            && xcp_server_transfer_write(r->t, data, *n) < 0) {
            char *text = error_text("VDI_IO_ERROR");

            /* The task takes this error; the rest of the body is read
               and dropped so the 500 can still be sent. */
            xcp_server_transfer_close(r->t, 0);
            r->t = NULL;
            transfer_failed(r, failed_import_status(r), text);
        }
        r->received += *n;
        *n = 0;
        /* What MHD had read is written; the rest is read on the
           connection itself, which sees the client go at once (MHD
           0.9.75 only sees it at the idle timeout): until the client
           closes for XO's made-up length, else the declared length.
           (A chunked encoding MHD decodes to the end.) */
        if (r->t != NULL && r->until_close)
            return upload_take(r, UINT64_MAX);
        if (r->t != NULL && r->declared != UINT64_MAX
            && r->received < r->declared)
            return upload_take(r, r->declared - r->received);
        return MHD_YES;
    }
    if (r->fail_status != 0)
        return transfer_refusal(r);
    if (r->no_length && r->t != NULL)
        return upload_take(r, UINT64_MAX); /* the client waits for the 200 */
    xcp_error_clear();
    if (xcp_server_transfer_close(r->t, 1) < 0) {
        r->t = NULL;
        transfer_failed(r, failed_import_status(r),
                        error_text("VDI_IO_ERROR"));
        return transfer_refusal(r);
    }
    r->t = NULL;
    pthread_mutex_lock(&r->l->http->mu);
    early = r->early_sent;
    pthread_mutex_unlock(&r->l->http->mu);
    if (early) /* the 200 went out before the body: nothing to add */
        return MHD_NO;
    x = response("", 0, NULL);
    if (x != NULL)
        add_transfer_headers(r, x);
    return queue(r, MHD_HTTP_OK, x);
}

/* The content type XAPI gives each format (export_raw_vdi.ml). */
static const char *export_type(const req *r)
{
    return r->ext[0] == 'v'   ? "application/vhd"
           : r->ext[0] == 'q' ? "application/x-qemu-disk"
           : r->ext[0] == 'x' || r->ext[0] == 't' ? "application/x-tar"
                              : "application/octet-stream";
}

/* The export's head, as MHD would have sent it: the length is known, so
   no chunking; the closing matches XAPI's transfer replies. */
static int download_head(upload *u)
{
    req *r = u->r;
    char head[1024], length[48] = "", disposition[160] = "";
    int n;

    /* An XVA's or a chunked tar's length is known only once it is sent:
       no Content-Length then, the end is the close (as XAPI's /export). */
    if (r->size != UINT64_MAX)
        snprintf(length, sizeof(length), "Content-Length: %" PRIu64 "\r\n",
                 r->size);
    if (r->vdi_uuid != NULL && r->vdi_uuid[0])
        snprintf(disposition, sizeof(disposition),
                 "Content-Disposition: attachment; filename=\"%s.%s\"\r\n",
                 r->vdi_uuid, r->ext);
    n = snprintf(head, sizeof(head),
                 "HTTP/1.1 200 OK\r\n"
                 "Connection: close\r\n"
                 "%s"
                 "Content-Type: %s\r\n"
                 "%s"
                 "task-id: %s\r\n"
                 "Cache-Control: no-cache, no-store\r\n\r\n",
                 length, export_type(r), disposition,
                 r->task != NULL ? r->task : "");

    return n > 0 && (size_t)n < sizeof(head)
               ? xcpd_io_write(&u->client, head, (size_t)n)
               : -1;
}

/* The body in pieces: the format's bytes through buf, the disk's data,
   where it lies as it is in an image file, straight from that file to the
   socket (sendfile on plain connections). */
static int download_body(upload *u, char *buf)
{
    req *r = u->r;
    uint64_t pos = 0;
    xcp_server_piece p;
    int rc;

    while (pos < r->size) {
        if (__atomic_load_n(&u->stopping, __ATOMIC_SEQ_CST))
            return 0;
        if (xcp_server_transfer_read_piece(r->t, buf, EXPORT_BLOCK, pos, &p)
            < 0)
            return 0;
        if (p.len == 0) {
            if (r->size == UINT64_MAX)
                return 1;       /* the end of a body of unknown length */
            /* The end before the announced size. */
            if (r->l->http->verbose)
                xcpd_log(LOG_INFO, "%s %s from %s: data ends at %" PRIu64
                         " of %" PRIu64, r->method, r->path, r->addr, pos,
                         r->size);
            return 0;
        }
        rc = p.fd >= 0 ? xcpd_io_send_file(&u->client, p.fd, p.pos, p.len,
                                           buf, EXPORT_BLOCK)
                       : xcpd_io_write(&u->client, buf, p.len);
        if (rc < 0) {
            xcp_error_clear();
            if (r->l->http->verbose)
                xcpd_log(LOG_INFO, "%s %s from %s: %s at %" PRIu64 ": %s",
                         r->method, r->path, r->addr,
                         errno == EIO ? "image file short" : "client gone",
                         pos, strerror(errno));
            return 0;
        }
        pos += p.len;
    }
    return 1;
}

static enum MHD_Result export_step(req *r, const char *data, size_t *n)
{
    (void)data;
    if (r->taken) {
        /* Resumed once the export thread is done: close. */
        *n = 0;
        return __atomic_load_n(&r->taken_done, __ATOMIC_SEQ_CST) ? MHD_NO
                                                                 : MHD_YES;
    }
    if (*n > 0) {
        *n = 0; /* a GET body means nothing here */
        return MHD_YES;
    }
    if (r->fail_status != 0)
        return transfer_refusal(r);
    /* Sent by a thread of its own on the connection taken from MHD: big
       blocks straight from the transfer to the socket (or TLS records
       back to back), where MHD's loop would take one event-loop turn per
       TLS record (16 KiB). */
    return upload_take(r, 0);
}

/* ---- request framing ---------------------------------------------------- */

/* What the headers say about where the body ends. */
typedef struct framing {
    const char *length;     /* the first Content-Length */
    int conflict;           /* another Content-Length with another value */
    unsigned encodings;     /* Transfer-Encoding lines */
    const char *encoding;   /* the last one */
    unsigned chunked;       /* "chunked" codings in all of them */
    int chunked_last;       /* the last coding is "chunked" */
} framing;

/* Count the codings of one Transfer-Encoding line. */
static void codings(framing *f, const char *v)
{
    for (;;) {
        size_t n;

        v += strspn(v, " \t");
        n = strcspn(v, ",");
        while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
            n--;
        f->chunked_last = n == 7 && strncasecmp(v, "chunked", 7) == 0;
        f->chunked += (unsigned)f->chunked_last;
        v = strchr(v, ',');
        if (v == NULL)
            return;
        v++;
    }
}

static enum MHD_Result framing_header(void *cls, enum MHD_ValueKind kind,
                                      const char *key, const char *value)
{
    framing *f = cls;

    (void)kind;
    if (value == NULL)
        value = "";
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        if (f->length == NULL)
            f->length = value;
        else if (strcmp(f->length, value) != 0)
            f->conflict = 1;
    } else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        f->encodings++;
        f->encoding = value;
        codings(f, value);
    }
    return MHD_YES;
}

/* 0 when the body's end is unambiguous, else the status to answer and
   *why. libmicrohttpd 0.9.75 frames the body by the first Content-Length
   and lets chunked encoding override it, and waits for the peer to close
   a body in any other coding; anything in front of us (a proxy, a load
   balancer) may read the other way and see another request where we see
   a body: request smuggling. RFC 9112 §6.1 and §6.3 make these errors
   (501 for a coding we do not implement); repeats of one Content-Length
   value are allowed (RFC 9110 §8.6). MHD takes exactly "chunked" (any
   case) as chunked, so that is the only Transfer-Encoding passed on. */
static unsigned framing_error(struct MHD_Connection *c, const char **why)
{
    framing f = {NULL, 0, 0, NULL, 0, 0};

    MHD_get_connection_values(c, MHD_HEADER_KIND, framing_header, &f);
    if (f.conflict) {
        *why = "Conflicting Content-Length headers\n";
        return MHD_HTTP_BAD_REQUEST;
    }
    if (f.encodings == 0)
        return 0;
    if (f.length != NULL) {
        *why = "Content-Length with Transfer-Encoding\n";
        return MHD_HTTP_BAD_REQUEST;
    }
    if (f.encodings == 1 && strcasecmp(f.encoding, "chunked") == 0)
        return 0;
    if (f.chunked_last && f.chunked == 1) {
        *why = "Transfer-Encoding other than chunked\n";
        return MHD_HTTP_NOT_IMPLEMENTED;
    }
    *why = "Transfer-Encoding does not end with one chunked\n";
    return MHD_HTTP_BAD_REQUEST;
}

/* Refused before the body is read; the connection is then closed, since
   where its next request would start is exactly what is in doubt. */
static enum MHD_Result bad_framing(req *r, unsigned status, const char *why)
{
    struct MHD_Response *x = response(why, strlen(why), "text/plain");

    if (r->l->http->verbose)
        xcpd_log(LOG_INFO, "%s %s from %s: HTTP %u: %.*s", r->method,
                 r->path, r->addr, status, (int)strlen(why) - 1, why);
    if (x != NULL)
        MHD_add_response_header(x, MHD_HTTP_HEADER_CONNECTION, "close");
    r->route = ROUTE_REFUSED;
    return queue(r, status, x);
}

/* ---- the MHD callbacks -------------------------------------------------- */

static enum MHD_Result first_call(req *r)
{
    switch (r->route) {
    case ROUTE_RPC: {
        /* Refuse a declared body over the cap before reading it (MHD
           then closes the connection, which is what an abusive client
           deserves). */
        uint64_t declared = declared_length(r->c);

        if (declared != UINT64_MAX && declared > XCPD_RPC_BODY_MAX)
            return rpc_too_big(r, "declared body");
        return MHD_YES;
    }
    case ROUTE_IMPORT:
        transfer_open(r);
        /* Refused: answer before the body (the connection then closes,
           the body is never read). */
        if (r->fail_status != 0)
            return transfer_refusal(r);
        /* XAPI's thin client (HttpPut) and XenServer's samples PUT with
           HTTP/1.0 and wait for the 200 before the body, length or not */
        if ((r->until_close && !r->no_length)
            || (r->http10 && !r->until_close && r->declared > 0
                && r->declared != UINT64_MAX)) {
            MHD_set_connection_option(r->c, MHD_CONNECTION_OPTION_TIMEOUT,
                                      FAKE_LENGTH_TIMEOUT_S);
            early_watch(r);
        }
        return MHD_YES;
    case ROUTE_EXPORT:
        transfer_open(r);
        return MHD_YES;
    case ROUTE_RRD_PUT:
        /* neither a length nor chunks: the body runs until the close */
        r->no_length = declared_length(r->c) == UINT64_MAX
                       && MHD_lookup_connection_value(
                              r->c, MHD_HEADER_KIND,
                              MHD_HTTP_HEADER_TRANSFER_ENCODING) == NULL;
        return MHD_YES;
    case ROUTE_XE_GET: { /* its checks (and a PUT's early 200) now */
        size_t none = 0;

        return xcpd_xe_get_step(r->l, r->c, r->path,
                                strcmp(r->method, MHD_HTTP_METHOD_PUT) == 0,
                                r->http10, &r->xe_get, NULL, &none);
    }
    default:
        return MHD_YES;
    }
}

enum MHD_Result xcpd_access(void *cls, struct MHD_Connection *c,
                            const char *url, const char *method,
                            const char *version, const char *upload_data,
                            size_t *upload_data_size, void **con_cls)
{
    xcpd_listener *l = cls;
    req *r = *con_cls;
    const char *why;
    unsigned status;

    if (r == NULL) {
        /* Headers only: set up, and answer later (a reply queued now
           would close a keep-alive connection). */
        r = calloc(1, sizeof(*r));
        if (r == NULL)
            return MHD_NO;
        r->l = l;
        r->c = c;
        r->method = method;
        snprintf(r->path, sizeof(r->path), "%s", url);
        r->route = route_of(method, url, &r->protocol);
        r->http10 = version != NULL && strcmp(version, "HTTP/1.0") == 0;
        peer_of(r);
        *con_cls = r;
        status = framing_error(c, &why);
        if (status != 0)
            return bad_framing(r, status, why);
        return first_call(r);
    }
    switch (r->route) {
    case ROUTE_RPC:
        return rpc_step(r, upload_data, upload_data_size);
    case ROUTE_IMPORT:
        return import_step(r, upload_data, upload_data_size);
    case ROUTE_EXPORT:
        return export_step(r, upload_data, upload_data_size);
    case ROUTE_CONSOLE:
        return xcpd_console_step(r->l, c, method, peer(r), &r->console,
                                 upload_data_size);
    case ROUTE_CLI:
        return xcpd_cli_step(r->l, c, peer(r), &r->cli, upload_data,
                             upload_data_size);
    case ROUTE_MIGRATE:
        return xcpd_migrate_step(r->l, c, peer(r), &r->migrate,
                                 upload_data_size);
    case ROUTE_RRD_PUT:
        if (r->taken) { /* resumed once the body was read: close */
            *upload_data_size = 0;
            return __atomic_load_n(&r->taken_done, __ATOMIC_SEQ_CST)
                       ? MHD_NO : MHD_YES;
        }
        if (r->no_length && *upload_data_size == 0 && r->l->http->srv &&
            (r->rrd_put != NULL ||
             (r->rrd_put = xcpd_rrd_put_new(c, peer(r))) != NULL))
            return upload_take(r, UINT64_MAX);
        return xcpd_rrd_put_step(r->l, c, peer(r), &r->rrd_put, upload_data,
                                 upload_data_size);
    case ROUTE_XE_GET:
        return xcpd_xe_get_step(r->l, c, url,
                                strcmp(method, MHD_HTTP_METHOD_PUT) == 0,
                                r->http10, &r->xe_get, upload_data,
                                upload_data_size);
    default:
        break;
    }
    if (*upload_data_size > 0) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->route == ROUTE_REFUSED)
        return MHD_YES;
    if (r->route == ROUTE_OPTIONS) {
        struct MHD_Response *x = response("", 0, NULL);

        if (x != NULL)
            add_cors(x);
        return queue(r, MHD_HTTP_OK, x);
    }
    if (r->route == ROUTE_METRICS)
        return xcpd_metrics_answer(r->l, c, xcpd_metrics_kind(r->path),
                                   peer(r));
    if (r->route == ROUTE_NOT_FOUND)
        return answer_text(r, MHD_HTTP_NOT_FOUND, "Not found\n", 0);
    return answer_text(r, MHD_HTTP_METHOD_NOT_ALLOWED,
                       "Method not allowed\n", 0);
}

void xcpd_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
    req *r = *con_cls;
    xcpd_http *h;

    if (r == NULL)
        return;
    h = r->l->http;
    /* From here early_thread leaves the connection alone (it writes
       under mu, so a write in progress ends first). */
    pthread_mutex_lock(&h->mu);
    r->ending = 1;
    pthread_mutex_unlock(&h->mu);
    if (r->t != NULL) {
        /* An import that never saw its end or an export that never got
           its thread (the client went first): the task fails, with the
           error recorded on this thread when there is one. (A transfer
           on a taken connection is its thread's, which ends it.) */
        int ok = r->route != ROUTE_EXPORT && r->until_close
                 && toe != MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN;

        xcp_error_clear();
        if (!ok && h->verbose)
            xcpd_log(LOG_INFO, "%s %s from %s: transfer incomplete "
                     "(termination %d)", r->method, r->path, r->addr,
                     (int)toe);
        xcp_server_transfer_close(r->t, ok);
        r->t = NULL;
    }
    if (r->counted)
        __atomic_sub_fetch(&h->dispatched, 1, __ATOMIC_SEQ_CST);
    *con_cls = NULL;
    pthread_mutex_lock(&h->mu);
    if (r->watched) {
        r->gone = 1;
        r = NULL; /* early_thread frees it */
    }
    pthread_mutex_unlock(&h->mu);
    req_free(r);
}
