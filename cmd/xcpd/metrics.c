/*
 * cmd/xcpd/metrics.c - XAPI's metrics handlers: GET /rrd_updates,
 * /host_rrd, /vm_rrd and /metrics. The query is read as XAPI's
 * rrdd_http_handler reads it (start, cf, interval, host, every vm_uuid,
 * json present or an Accept that prefers application/json); the
 * document comes from the library (xcp_server_metrics), which also
 * authenticates: session_id in the query or a cookie, Basic
 * credentials, or local root on the unix socket.
 */
#include "xcpd.h"

#include <syslog.h>
#include <xcp/xcp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the path asks for, or -1. */
int xcpd_metrics_kind(const char *url)
{
    if (!strcmp(url, "/rrd_updates"))
        return XCP_SERVER_RRD_UPDATES;
    if (!strcmp(url, "/host_rrd"))
        return XCP_SERVER_HOST_RRD;
    if (!strcmp(url, "/vm_rrd"))
        return XCP_SERVER_VM_RRD;
    if (!strcmp(url, "/metrics"))
        return XCP_SERVER_METRICS;
    return -1;
}

typedef struct uuids {
    const char **v;
    size_t n, cap;
    int oom;
} uuids;

static enum MHD_Result collect(void *cls, enum MHD_ValueKind kind,
                               const char *key, const char *value)
{
    uuids *u = cls;

    (void)kind;
    if (strcmp(key, "vm_uuid") != 0 || value == NULL)
        return MHD_YES;
    if (u->n == u->cap) {
        size_t cap = u->cap ? 2 * u->cap : 8;
        const char **v = realloc(u->v, cap * sizeof(*v));

        if (v == NULL) {
            u->oom = 1;
            return MHD_NO;
        }
        u->v = v;
        u->cap = cap;
    }
    u->v[u->n++] = value;
    return MHD_YES;
}

/* Counts json= in the query, with or without a value. */
static enum MHD_Result has_json(void *cls, enum MHD_ValueKind kind,
                                const char *key, const char *value)
{
    (void)kind;
    (void)value;
    if (strcmp(key, "json") != 0)
        return MHD_YES;
    *(int *)cls = 1;
    return MHD_NO;
}

/* XAPI's client_prefers_json: Accept's first choice between
 * application/json and text/xml, else whether json= is in the query. */
static int prefers_json(struct MHD_Connection *c)
{
    const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept");
    const char *j, *x;
    int json = 0;

    if (a != NULL) {
        j = strstr(a, "application/json");
        x = strstr(a, "text/xml");
        if (j != NULL && (x == NULL || j < x))
            return 1;
        if (x != NULL)
            return 0;
    }
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, has_json, &json);
    return json;
}

static const char *arg(struct MHD_Connection *c, const char *key)
{
    return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, key);
}

/* A request's credentials, as XAPI's handlers look them up: session_id in
 * the query, else its cookie; and Basic credentials (*user and *password
 * from MHD, freed with creds_free). */
typedef struct creds {
    const char *session_id;
    char *user, *password;
} creds;

static void creds_get(struct MHD_Connection *c, creds *k)
{
    k->session_id = arg(c, "session_id");
    if (k->session_id == NULL)
        k->session_id = MHD_lookup_connection_value(c, MHD_COOKIE_KIND,
                                                     "session_id");
    k->password = NULL;
    k->user = MHD_basic_auth_get_username_password(c, &k->password);
    if (k->user == NULL && k->password != NULL) {
        MHD_free(k->password);
        k->password = NULL;
    }
}

static void creds_free(creds *k)
{
    if (k->password != NULL)
        MHD_free(k->password);
    if (k->user != NULL)
        MHD_free(k->user);
}

enum MHD_Result xcpd_metrics_answer(xcpd_listener *l, struct MHD_Connection *c,
                                    int kind, xcp_server_peer peer)
{
    xcp_server_metrics_request mr;
    struct MHD_Response *x;
    uuids u = {0};
    const char *type;
    char *body = NULL;
    creds k;
    size_t len = 0;
    int status, rc;
    enum MHD_Result ret;

    if (l->http->srv == NULL)
        return xcpd_refuse(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                           "Service unavailable\n");
    memset(&mr, 0, sizeof(mr));
    mr.kind = (xcp_server_metrics_kind)kind;
    mr.start = arg(c, "start");
    mr.cf = arg(c, "cf");
    mr.interval = arg(c, "interval");
    mr.host = arg(c, "host");
    mr.uuid = arg(c, "uuid");
    mr.json = prefers_json(c);
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect, &u);
    if (u.oom) {
        free(u.v);
        return xcpd_refuse(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                           "Out of memory\n");
    }
    mr.vm_uuids = u.n ? u.v : NULL;
    mr.n_vm_uuids = u.n;
    creds_get(c, &k);
    mr.session_id = k.session_id;
    mr.basic_user = k.user;
    mr.basic_password = k.password;
    mr.peer = peer;
    rc = xcp_server_metrics(l->http->srv, &mr, &status, &type, &body, &len);
    creds_free(&k);
    free(u.v);
    if (rc < 0) {
        const xcp_error *e = xcp_error_last();
        char text[512];

        snprintf(text, sizeof(text), "%s%s%s\n", e ? e->name : "error",
                 e && e->nparams ? ": " : "",
                 e && e->nparams ? e->params[0] : "");
        if (l->http->verbose)
            xcpd_log(LOG_INFO, "GET metrics from %s: HTTP %d: %s",
                     peer.address, status, text);
        return xcpd_refuse(c, (unsigned)status, text);
    }
    x = MHD_create_response_from_buffer_with_free_callback(len, body,
                                                           xcp_free);
    if (x == NULL) {
        xcp_free(body);
        return MHD_NO;
    }
    MHD_add_response_header(x, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(x, "Access-Control-Allow-Origin", "*");
    ret = MHD_queue_response(c, (unsigned)status, x);
    MHD_destroy_response(x);
    return ret;
}

/* ---- PUT /rrd ------------------------------------------------------------ */

/* The request's parameters are copied when its headers are in: the body
 * of a PUT without a length is read on another thread (http.c), after
 * MHD has handed the connection over. */
struct xcpd_rrd_put {
    char *uuid;
    int archive;
    char *session_id;       /* query, else cookie */
    char *user, *password;  /* Basic credentials */
    char *pool_secret;      /* cookie, as XAPI's hosts send it */
    xcp_server_peer peer;
    char *body;
    size_t len, cap;
    int too_big;
};

static char *dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

static void secret_free(char *s)
{
    if (s == NULL)
        return;
    explicit_bzero(s, strlen(s));
    free(s);
}

void xcpd_rrd_put_free(xcpd_rrd_put *p)
{
    if (p == NULL)
        return;
    free(p->uuid);
    free(p->session_id);
    free(p->user);
    secret_free(p->password);
    secret_free(p->pool_secret);
    free(p->body);
    free(p);
}

xcpd_rrd_put *xcpd_rrd_put_new(struct MHD_Connection *c,
                               xcp_server_peer peer)
{
    xcpd_rrd_put *p = calloc(1, sizeof(*p));
    const char *secret;
    creds k;

    if (p == NULL)
        return NULL;
    creds_get(c, &k);
    secret = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, "pool_secret");
    p->uuid = dup_or_null(arg(c, "uuid"));
    p->archive = arg(c, "archive") != NULL;
    p->session_id = dup_or_null(k.session_id);
    p->user = dup_or_null(k.user);
    p->password = dup_or_null(k.password);
    p->pool_secret = dup_or_null(secret);
    p->peer = peer;
    creds_free(&k);
    if ((arg(c, "uuid") && !p->uuid) || (k.session_id && !p->session_id) ||
        (secret && !p->pool_secret)) {
        xcpd_rrd_put_free(p);
        return NULL;
    }
    return p;
}

void xcpd_rrd_put_add(xcpd_rrd_put *p, const char *data, size_t n)
{
    if (p->too_big || n == 0)
        return;
    if (n > XCPD_RRD_BODY_MAX - p->len) {
        p->too_big = 1;
        return;
    }
    if (p->len + n > p->cap) {
        size_t cap = p->cap ? p->cap : 65536;
        char *b;

        while (cap < p->len + n)
            cap *= 2;
        if ((b = realloc(p->body, cap)) == NULL) {
            p->too_big = 1;
            return;
        }
        p->body = b;
        p->cap = cap;
    }
    memcpy(p->body + p->len, data, n);
    p->len += n;
}

int xcpd_rrd_put_finish(xcpd_listener *l, xcpd_rrd_put *p, char *text,
                        size_t size)
{
    xcp_server_rrd_put_request pr;
    int status, rc;

    text[0] = '\0';
    if (p->too_big) {
        snprintf(text, size, "Request body too large\n");
        return 413;
    }
    memset(&pr, 0, sizeof(pr));
    pr.uuid = p->uuid;
    pr.archive = p->archive;
    pr.session_id = p->session_id;
    pr.basic_user = p->user;
    pr.basic_password = p->user != NULL ? p->password : NULL;
    pr.pool_secret = p->pool_secret;
    pr.peer = p->peer;
    rc = xcp_server_rrd_put(l->http->srv, &pr, p->body, p->len, &status);
    if (rc < 0) {
        const xcp_error *e = xcp_error_last();

        snprintf(text, size, "%s%s%s\n", e ? e->name : "error",
                 e && e->nparams ? ": " : "",
                 e && e->nparams ? e->params[e->nparams - 1] : "");
        if (l->http->verbose)
            xcpd_log(LOG_INFO, "PUT /rrd from %s: HTTP %d: %s",
                     p->peer.address, status, text);
    }
    return status;
}

enum MHD_Result xcpd_rrd_put_step(xcpd_listener *l, struct MHD_Connection *c,
                                  xcp_server_peer peer, xcpd_rrd_put **state,
                                  const char *data, size_t *n)
{
    xcpd_rrd_put *p = *state;
    char text[512];
    int status;

    if (l->http->srv == NULL)
        return xcpd_refuse(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                           "Service unavailable\n");
    if (p == NULL && (p = *state = xcpd_rrd_put_new(c, peer)) == NULL)
        return MHD_NO;
    if (*n > 0) {
        xcpd_rrd_put_add(p, data, *n);
        *n = 0;
        return MHD_YES;
    }
    status = xcpd_rrd_put_finish(l, p, text, sizeof(text));
    return xcpd_refuse(c, (unsigned)status, status == 200 ? "" : text);
}
