/*
 * tests/client/test_transport.c - the remote driver's HTTP side against a
 * scripted server in a thread (no daemon needed): what it sends (path,
 * content type, method names, the session first, Async. names), one
 * connection kept alive for a whole session, and what it makes of replies
 * that are not XenAPI answers (HTTP errors, garbage, a closed connection,
 * no answer within the timeout); the same over a unix socket, where the
 * driver speaks HTTP itself (client/http_unix.c), with chunked replies
 * and a server that closes the connection after each reply.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <xcp/xcp.h>

/* What the server answers to calls other than login and logout. */
enum mode {
    M_OK,        /* success: the string "ok" (or a task for Async.) */
    M_503,       /* HTTP 503, HTML body */
    M_GARBAGE,   /* HTTP 200, not XML-RPC */
    M_FAIL_500,  /* HTTP 500 carrying a XenAPI failure envelope */
    M_EMPTY,     /* HTTP 200, empty body */
    M_CLOSE,     /* close the connection without answering */
    M_SILENT,    /* never answer */
};

static struct server {
    int fd, port;
    int ufd;           /* the unix socket's */
    char upath[108];
    pthread_t th, uth;
    pthread_mutex_t mu;
    enum mode mode;
    bool chunked;      /* replies in chunks, with an extension and trailer */
    bool close_after;  /* each connection closed after one reply */
    int connections;
    char last_path[64];
    char last_type[64];
    char last_body[4096];
    int field_lists;        /* get_all_records_where with a field list */
} SV = {.mu = PTHREAD_MUTEX_INITIALIZER};

static const char *const OK_XML =
    "<?xml version=\"1.0\"?><methodResponse><params><param><value><struct>"
    "<member><name>Status</name><value>Success</value></member>"
    "<member><name>Value</name><value>%s</value></member>"
    "</struct></value></param></params></methodResponse>";
static const char *const FAIL_XML =
    "<?xml version=\"1.0\"?><methodResponse><params><param><value><struct>"
    "<member><name>Status</name><value>Failure</value></member>"
    "<member><name>ErrorDescription</name><value><array><data>"
    "<value>HOST_IS_SLAVE</value><value>10.0.0.1</value>"
    "</data></array></value></member>"
    "</struct></value></param></params></methodResponse>";

/* XAPI's answers to get_all_records(_where): a field list is one argument
 * too many; without one, whole records (here a short one). */
static const char *const COUNT_XML =
    "<?xml version=\"1.0\"?><methodResponse><params><param><value><struct>"
    "<member><name>Status</name><value>Failure</value></member>"
    "<member><name>ErrorDescription</name><value><array><data>"
    "<value>MESSAGE_PARAMETER_COUNT_MISMATCH</value>"
    "<value>VM.get_all_records_where</value><value>2</value>"
    "<value>3</value></data></array></value></member>"
    "</struct></value></param></params></methodResponse>";
static const char *const RECORDS_VALUE =
    "<struct><member><name>OpaqueRef:vm-1</name><value><struct>"
    "<member><name>uuid</name><value>u-1</value></member>"
    "<member><name>name_label</name><value>web</value></member>"
    "<member><name>VCPUs_max</name><value>2</value></member>"
    "</struct></value></member></struct>";

static void reply(int c, int status, const char *type, const char *body)
{
    static const char trailer[] = "0\r\nX-Trailer: 1\r\n\r\n";
    char head[256];
    size_t len = strlen(body), i, k;
    int n;

    if (!SV.chunked) {
        n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d X\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     status, type, len);
        if (write(c, head, (size_t)n) < 0 || write(c, body, len) < 0)
            return;
        return;
    }
    n = snprintf(head, sizeof(head),
                 "HTTP/1.1 %d X\r\nContent-Type: %s\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n", status, type);
    if (write(c, head, (size_t)n) < 0)
        return;
    for (i = 0; i < len; i += k) { /* chunks of 1 to 97 bytes */
        k = 1 + (i * 31) % 97;
        if (k > len - i)
            k = len - i;
        n = snprintf(head, sizeof(head), i ? "%zx\r\n" : "%zX;ext=1\r\n",
                     k);
        if (write(c, head, (size_t)n) < 0 || write(c, body + i, k) < 0 ||
            write(c, "\r\n", 2) < 0)
            return;
    }
    if (write(c, trailer, strlen(trailer)) < 0)
        return;
}

/* Serve one connection, request after request, until the peer closes. */
static void serve(int c)
{
    char buf[8192], out[2048];
    size_t have = 0;

    for (;;) {
        char *end, *cl, *p;
        size_t hlen, blen;
        ssize_t n;
        enum mode mode;

        while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
            if (have == sizeof(buf) ||
                (n = read(c, buf + have, sizeof(buf) - have)) <= 0)
                return;
            have += (size_t)n;
        }
        hlen = (size_t)(end + 4 - buf);
        cl = strcasestr(buf, "Content-Length:");
        blen = cl && cl < end ? strtoul(cl + 15, NULL, 10) : 0;
        while (have < hlen + blen) {
            if (have == sizeof(buf) ||
                (n = read(c, buf + have, sizeof(buf) - have)) <= 0)
                return;
            have += (size_t)n;
        }
        pthread_mutex_lock(&SV.mu);
        sscanf(buf, "POST %63s", SV.last_path);
        SV.last_type[0] = '\0';
        if ((p = strcasestr(buf, "Content-Type: ")) && p < end)
            sscanf(p + 14, "%63[^\r]", SV.last_type);
        snprintf(SV.last_body, sizeof(SV.last_body), "%.*s", (int)blen,
                 buf + hlen);
        mode = SV.mode;
        pthread_mutex_unlock(&SV.mu);

        if (strstr(SV.last_body, "session.login_with_password")) {
            snprintf(out, sizeof(out), OK_XML, "OpaqueRef:sess-1");
            reply(c, 200, "text/xml", out);
        } else if (strstr(SV.last_body, "VM.get_all_records")) {
            if (strstr(SV.last_body, "<array>")) {
                SV.field_lists++;
                snprintf(out, sizeof(out), "%s", COUNT_XML);
            }
            else
                snprintf(out, sizeof(out), OK_XML, RECORDS_VALUE);
            reply(c, 200, "text/xml", out);
        } else if (strstr(SV.last_body, "session.logout")) {
            snprintf(out, sizeof(out), OK_XML, "");
            reply(c, 200, "text/xml", out);
        } else if (mode == M_OK) {
            snprintf(out, sizeof(out), OK_XML,
                     strstr(SV.last_body, "Async.") ? "OpaqueRef:task-1"
                                                    : "ok");
            reply(c, 200, "text/xml", out);
        } else if (mode == M_503) {
            reply(c, 503, "text/html", "<html>busy</html>");
        } else if (mode == M_GARBAGE) {
            reply(c, 200, "text/html", "<html>hello</html>");
        } else if (mode == M_FAIL_500) {
            reply(c, 500, "text/xml", FAIL_XML);
        } else if (mode == M_EMPTY) {
            reply(c, 200, "text/xml", "");
        } else if (mode == M_CLOSE) {
            return;
        } else {
            sleep(5);
            return;
        }
        if (SV.close_after)
            return;
        memmove(buf, buf + hlen + blen, have - hlen - blen);
        have -= hlen + blen;
    }
}

static void *server_main(void *arg)
{
    int fd = *(int *)arg;

    for (;;) {
        int c = accept(fd, NULL, NULL);
        if (c < 0)
            return NULL;
        pthread_mutex_lock(&SV.mu);
        SV.connections++;
        pthread_mutex_unlock(&SV.mu);
        serve(c);
        close(c);
    }
}

static void start(void)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);

    SV.fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(SV.fd, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(SV.fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(listen(SV.fd, 8), 0);
    getsockname(SV.fd, (struct sockaddr *)&sa, &len);
    SV.port = ntohs(sa.sin_port);
    pthread_create(&SV.th, NULL, server_main, &SV.fd);

    struct sockaddr_un su;
    SV.ufd = socket(AF_UNIX, SOCK_STREAM, 0);
    cr_assert_geq(SV.ufd, 0);
    snprintf(SV.upath, sizeof(SV.upath), "%s/xcp-transport-%d.sock",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
    unlink(SV.upath);
    memset(&su, 0, sizeof(su));
    su.sun_family = AF_UNIX;
    memcpy(su.sun_path, SV.upath, strlen(SV.upath));
    cr_assert_eq(bind(SV.ufd, (struct sockaddr *)&su, sizeof(su)), 0);
    cr_assert_eq(listen(SV.ufd, 8), 0);
    pthread_create(&SV.uth, NULL, server_main, &SV.ufd);
}

static void stop(void)
{
    unlink(SV.upath);
}

TestSuite(transport, .init = start, .fini = stop, .timeout = 60);

static const char *errname(void)
{
    const xcp_error *e = xcp_error_last();
    return e ? e->name : "(no error)";
}

/* The server's address: over TCP, or (unix) its socket. */
static bool over_unix;

static xcp_session *open_s(xcp_remote_protocol proto, unsigned timeout_ms)
{
    xcp_remote_options o;
    xcp_session *s = NULL;
    char uri[160];

    if (over_unix)
        snprintf(uri, sizeof(uri), "unix:%s", SV.upath);
    else
        snprintf(uri, sizeof(uri), "http://127.0.0.1:%d", SV.port);
    memset(&o, 0, sizeof(o));
    o.version = XCP_REMOTE_OPTIONS_VERSION;
    o.uri = uri;
    o.user = "root";
    o.password = "pw";
    o.protocol = proto;
    o.timeout_ms = timeout_ms;
    cr_assert_eq(xcp_session_open_remote(&s, &o), 0, "%s", errname());
    return s;
}

static void set_mode(enum mode m)
{
    pthread_mutex_lock(&SV.mu);
    SV.mode = m;
    pthread_mutex_unlock(&SV.mu);
}

static void request_shape_and_keep_alive(void)
{
    xcp_session *s = open_s(XCP_REMOTE_XMLRPC, 0);
    xcp_value arg, res;

    cr_assert_str_eq(xcp_session_ref(s), "OpaqueRef:sess-1");
    cr_assert_str_eq(SV.last_path, "/");
    cr_assert_str_eq(SV.last_type, "text/xml");
    /* login: user, password, version, originator; no session. */
    cr_assert_not_null(strstr(SV.last_body,
                              "<methodName>session.login_with_password"));
    cr_assert_not_null(strstr(SV.last_body, "<string>1.1</string>"));
    cr_assert_not_null(strstr(SV.last_body, "<string>libxcp</string>"));

    xcp_value_set_string(&arg, "OpaqueRef:vm-1");
    cr_assert_eq(xcp_call(s, &res, "VM.get_name_label", 1, &arg), 0, "%s",
                 errname());
    cr_assert_str_eq(res.u.s, "ok");
    xcp_value_dispose(&res);
    /* The session comes first, then the arguments. */
    cr_assert_not_null(strstr(SV.last_body,
                              "<methodName>VM.get_name_label</methodName>"
                              "<params><param><value><string>"
                              "OpaqueRef:sess-1</string></value></param>"
                              "<param><value><string>OpaqueRef:vm-1"));
    cr_assert_eq(xcp_call(s, &res, "Async.VM.clean_shutdown", 1, &arg), 0);
    cr_assert_str_eq(res.u.s, "OpaqueRef:task-1");
    cr_assert_not_null(strstr(SV.last_body,
                              "<methodName>Async.VM.clean_shutdown<"));
    xcp_value_dispose(&res);
    xcp_value_dispose(&arg);
    xcp_session_close(s);
    cr_assert_not_null(strstr(SV.last_body, "session.logout"));
    /* login, two calls and logout on one connection */
    cr_assert_eq(SV.connections, 1);
}

Test(transport, request_shape_and_keep_alive)
{
    request_shape_and_keep_alive();
}

/* xcp_get_records_fields on a server that does not take a field list
 * (XAPI): whole records are asked for and reduced here. */
Test(transport, records_fields_fall_back_on_whole_records)
{
    xcp_session *s = open_s(XCP_REMOTE_XMLRPC, 0);
    static const char *const f[] = {"uuid", "VCPUs_max"};
    const xcp_value *rec, *v;
    xcp_value res;

    cr_assert_eq(xcp_get_records_fields(s, &res, "VM", NULL, 2, f), 0, "%s",
                 errname());
    /* First the field list, then get_all_records without it. */
    cr_assert_eq(SV.field_lists, 1);
    cr_assert_not_null(strstr(SV.last_body,
                              "<methodName>VM.get_all_records</methodName>"));
    cr_assert_eq(res.kind, XCP_VAL_STRUCT);
    cr_assert_eq(res.u.st.n, 1);
    cr_assert_str_eq(res.u.st.keys[0], "OpaqueRef:vm-1");
    rec = &res.u.st.vals[0];
    cr_assert_eq(rec->kind, XCP_VAL_STRUCT);
    cr_assert_eq(rec->u.st.n, 2);
    v = xcp_value_struct_get(rec, "uuid");
    cr_assert(v && v->kind == XCP_VAL_STRING && !strcmp(v->u.s, "u-1"));
    v = xcp_value_struct_get(rec, "VCPUs_max");
    cr_assert(v && v->kind == XCP_VAL_INT && v->u.i == 2);
    xcp_value_dispose(&res);
    xcp_session_close(s);
}

Test(transport, jsonrpc_path_and_type)
{
    xcp_remote_options o;
    xcp_session *s = NULL;
    char uri[64];

    snprintf(uri, sizeof(uri), "http://127.0.0.1:%d/ignored/path", SV.port);
    memset(&o, 0, sizeof(o));
    o.version = XCP_REMOTE_OPTIONS_VERSION;
    o.uri = uri;
    o.protocol = XCP_REMOTE_JSONRPC;
    /* The scripted server answers XML: not a JSON-RPC reply. */
    cr_assert_eq(xcp_session_open_remote(&s, &o), XCP_EIO);
    cr_assert_str_eq(errname(), "TRANSPORT_ERROR");
    cr_assert_str_eq(SV.last_path, "/jsonrpc");
    cr_assert_str_eq(SV.last_type, "application/json");
    cr_assert_not_null(strstr(SV.last_body, "\"jsonrpc\":\"2.0\""));
    cr_assert_not_null(strstr(SV.last_body,
                              "\"method\":\"session.login_with_password\""));
    /* user NULL is root, password NULL empty */
    cr_assert_not_null(strstr(SV.last_body, "[\"root\",\"\",\"1.1\""));
}

static void expect_failure(enum mode m, int code, const char *name,
                           const char *param1)
{
    xcp_session *s = open_s(XCP_REMOTE_XMLRPC, 1000);
    xcp_value arg, res;
    const xcp_error *e;

    set_mode(m);
    xcp_value_set_string(&arg, "OpaqueRef:vm-1");
    cr_assert_eq(xcp_call(s, &res, "VM.get_name_label", 1, &arg), code,
                 "mode %d: %s", m, errname());
    e = xcp_error_last();
    cr_assert_str_eq(e->name, name);
    cr_assert_eq(e->code, code);
    cr_assert_geq(e->nparams, param1 ? 2 : 1);
    if (param1)
        cr_assert(strstr(e->params[1], param1), "param %s", e->params[1]);
    xcp_value_dispose(&arg);
    set_mode(M_OK);
    xcp_session_close(s);
}

Test(transport, http_error_status)
{
    expect_failure(M_503, XCP_EIO, "TRANSPORT_ERROR", "HTTP status 503");
}

Test(transport, garbage_reply)
{
    expect_failure(M_GARBAGE, XCP_EIO, "TRANSPORT_ERROR",
                   "not a XenAPI reply");
}

Test(transport, empty_reply)
{
    expect_failure(M_EMPTY, XCP_EIO, "TRANSPORT_ERROR", "not a XenAPI reply");
}

Test(transport, failure_envelope_on_500)
{
    expect_failure(M_FAIL_500, XCP_EAPI, "HOST_IS_SLAVE", NULL);
    cr_assert_str_eq(xcp_error_last()->params[0], "10.0.0.1");
}

Test(transport, connection_closed)
{
    expect_failure(M_CLOSE, XCP_EIO, "TRANSPORT_ERROR", NULL);
}

Test(transport, reply_timeout)
{
    expect_failure(M_SILENT, XCP_EIO, "TRANSPORT_ERROR", NULL);
}

/* ---- the same over a unix socket (the driver's own HTTP) --------------- */

Test(transport, unix_request_shape_and_keep_alive)
{
    over_unix = true;
    request_shape_and_keep_alive();
}

Test(transport, unix_failures)
{
    over_unix = true;
    expect_failure(M_503, XCP_EIO, "TRANSPORT_ERROR", "HTTP status 503");
    expect_failure(M_GARBAGE, XCP_EIO, "TRANSPORT_ERROR",
                   "not a XenAPI reply");
    expect_failure(M_EMPTY, XCP_EIO, "TRANSPORT_ERROR", "not a XenAPI reply");
    expect_failure(M_FAIL_500, XCP_EAPI, "HOST_IS_SLAVE", NULL);
    cr_assert_str_eq(xcp_error_last()->params[0], "10.0.0.1");
    expect_failure(M_CLOSE, XCP_EIO, "TRANSPORT_ERROR", "Empty reply");
    expect_failure(M_SILENT, XCP_EIO, "TRANSPORT_ERROR", "timed out");
}

/* Replies in chunks (as xcpd streams get_all_records), one with a chunk
 * extension, the last with a trailer, read whole; the connection still
 * serves the next call. */
Test(transport, unix_chunked_replies)
{
    static const char *const f[] = {"uuid", "VCPUs_max"};
    xcp_session *s;
    xcp_value arg, res;

    over_unix = true;
    SV.chunked = true;
    s = open_s(XCP_REMOTE_XMLRPC, 5000);
    cr_assert_str_eq(xcp_session_ref(s), "OpaqueRef:sess-1");
    cr_assert_eq(xcp_get_records_fields(s, &res, "VM", NULL, 2, f), 0, "%s",
                 errname());
    cr_assert_eq(res.kind, XCP_VAL_STRUCT);
    cr_assert_eq(res.u.st.n, 1);
    cr_assert_str_eq(res.u.st.keys[0], "OpaqueRef:vm-1");
    xcp_value_dispose(&res);
    xcp_value_set_string(&arg, "OpaqueRef:vm-1");
    cr_assert_eq(xcp_call(s, &res, "VM.get_name_label", 1, &arg), 0, "%s",
                 errname());
    cr_assert_str_eq(res.u.s, "ok");
    xcp_value_dispose(&res);
    xcp_value_dispose(&arg);
    xcp_session_close(s);
    cr_assert_eq(SV.connections, 1);
}

/* A server that closes the connection after each reply (as one that
 * drops idle connections): every call still gets its answer, each on a
 * connection of its own. */
Test(transport, unix_server_closes_after_each_reply)
{
    xcp_session *s;
    xcp_value arg, res;
    int i;

    over_unix = true;
    SV.close_after = true;
    s = open_s(XCP_REMOTE_XMLRPC, 5000);
    xcp_value_set_string(&arg, "OpaqueRef:vm-1");
    for (i = 0; i < 3; i++) {
        cr_assert_eq(xcp_call(s, &res, "VM.get_name_label", 1, &arg), 0,
                     "call %d: %s", i, errname());
        cr_assert_str_eq(res.u.s, "ok");
        xcp_value_dispose(&res);
    }
    xcp_value_dispose(&arg);
    xcp_session_close(s);
    cr_assert_not_null(strstr(SV.last_body, "session.logout"));
    cr_assert_eq(SV.connections, 5); /* login, 3 calls, logout */
}
