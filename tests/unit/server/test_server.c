/*
 * The library's XenAPI server (include/xcp/server.h) without a transport:
 * requests go straight to xcp_server_rpc() and replies are caught by the
 * done callback, so deferred replies (long polls, delayed login failures)
 * and their timing are checked exactly.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <xcp/server.h>
#include <xcp/xcp.h>

static char dir[256], authfile[300];
static xcp_server *srv;

/* A reply slot: filled by the done callback from any thread. */
typedef struct slot {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    int status;
    char ctype[64];
    char *body;
    xcp_server_stream *stream; /* a streamed reply (body then NULL) */
    double at; /* seconds, monotonic */
} slot;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void on_done(void *arg, const xcp_server_reply *r)
{
    slot *s = arg;

    pthread_mutex_lock(&s->mu);
    s->status = r->http_status;
    snprintf(s->ctype, sizeof(s->ctype), "%s", r->content_type);
    s->body = r->stream ? NULL : strndup(r->body ? r->body : "", r->len);
    s->stream = r->stream;
    s->at = now_s();
    s->done++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void slot_init(slot *s)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
}

static void slot_free(slot *s)
{
    free(s->body);
    xcp_server_stream_close(s->stream);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
}

/* Wait up to secs for the reply; true when it came. */
static int slot_wait(slot *s, double secs)
{
    struct timespec ts;
    int ok;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)secs;
    ts.tv_nsec += (long)((secs - (time_t)secs) * 1e9);
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&s->mu);
    while (!s->done)
        if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) != 0)
            break;
    ok = s->done;
    pthread_mutex_unlock(&s->mu);
    return ok;
}

/* Returns what xcp_server_rpc() says: nonzero when authenticated. */
static int send_req(slot *s, xcp_server_protocol proto, const char *body,
                    int local_root)
{
    xcp_server_request r;

    memset(&r, 0, sizeof(r));
    r.protocol = proto;
    r.body = body;
    r.len = strlen(body);
    r.peer.local_root = local_root;
    r.peer.address = local_root ? "unix:uid=0" : "127.0.0.1:1";
    return xcp_server_rpc(srv, &r, on_done, s);
}

/* Synchronous XML-RPC call; returns the body (caller frees). */
static char *xml(const char *body)
{
    slot s;
    char *b;

    slot_init(&s);
    send_req(&s, XCP_SERVER_XMLRPC, body, 0);
    cr_assert(slot_wait(&s, 10), "no reply to %s", body);
    cr_assert_eq(s.status, 200, "status %d for %s", s.status, body);
    cr_assert_str_eq(s.ctype, "text/xml");
    b = s.body;
    s.body = NULL;
    slot_free(&s);
    return b;
}

static char *call_body(const char *method, const char *params_xml)
{
    char *b = NULL;
    cr_assert(asprintf(&b,
                       "<?xml version=\"1.0\"?><methodCall><methodName>%s"
                       "</methodName><params>%s</params></methodCall>",
                       method, params_xml) > 0);
    return b;
}

static char *callx(const char *method, const char *params_xml)
{
    char *b = call_body(method, params_xml), *r = xml(b);
    free(b);
    return r;
}

/* The text of the first <value>..</value> after "Value" in a reply. */
static char *value_of(const char *reply)
{
    const char *p = strstr(reply, "<name>Value</name><value>");
    const char *e;

    cr_assert(p, "not a success: %s", reply);
    p += strlen("<name>Value</name><value>");
    e = strstr(p, "</value>");
    cr_assert(e);
    return strndup(p, (size_t)(e - p));
}

static char *login_as(const char *user, const char *pw, const char *orig)
{
    char params[512];
    char *r, *v;

    snprintf(params, sizeof(params),
             "<param><value>%s</value></param><param><value>%s</value>"
             "</param>%s%s%s",
             user, pw, orig ? "<param><value>1.1</value></param><param>"
                              "<value>" : "",
             orig ? orig : "", orig ? "</value></param>" : "");
    r = callx("session.login_with_password", params);
    v = value_of(r);
    free(r);
    return v;
}

static char *login(const char *user, const char *pw)
{
    return login_as(user, pw, NULL);
}

static const char *pam_service; /* NULL: the auth file */

static void setup_opts(unsigned limit, unsigned timeout_s)
{
    char *tmp = getenv("TMPDIR");
    FILE *f;
    xcp_server_options o;

    if (!getenv("XCP_HV"))
        setenv("XCP_HV", "sim", 1);
    if (!getenv("XCP_DB_FSYNC"))
        setenv("XCP_DB_FSYNC", "never", 1);
    snprintf(dir, sizeof(dir), "%s/xcp-srv-XXXXXX", tmp ? tmp : "/tmp");
    cr_assert(mkdtemp(dir));
    snprintf(authfile, sizeof(authfile), "%s/auth", dir);
    f = fopen(authfile, "w");
    cr_assert(f);
    /* openssl passwd -6 -salt testsalt secret */
    fprintf(f, "# test users\nroot:%s\n",
            "$6$testsalt$51yaaBMXXXt5vK522YOlIMZ267vqHtMIzc2klcsu3EEv/bkRDU9g3UmkypXf.NvlpPpIPK1nX5zdbCeJBiQbB/");
    fclose(f);
    memset(&o, 0, sizeof(o));
    o.version = XCP_SERVER_OPTIONS_VERSION;
    o.state_dir = dir;
    o.auth_file = pam_service ? NULL : authfile;
    o.pam_service = pam_service;
    o.auth_fail_delay_ms = 400;
    o.session_limit = limit;
    o.session_timeout_s = timeout_s;
    o.gc_interval_ms = 100;
    cr_assert_eq(xcp_server_open(&srv, &o), 0, "open: %s",
                 xcp_error_last() ? xcp_error_last()->name : "?");
}

static void setup(void)
{
    setup_opts(0, 0);
}

static void teardown(void)
{
    char cmd[600];

    xcp_server_close(srv);
    srv = NULL;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        cr_log_warn("cannot remove %s", dir);
}

TestSuite(server, .init = setup, .fini = teardown, .timeout = 60);

Test(server, login_and_call)
{
    char *s = login("root", "secret"), params[256], *r;

    cr_assert(!strncmp(s, "OpaqueRef:", 10), "%s", s);
    snprintf(params, sizeof(params), "<param><value>%s</value></param>", s);
    r = callx("VM.get_all", params);
    cr_assert(strstr(r, "<name>Status</name><value>Success</value>"), "%s",
              r);
    free(r);
    /* The underscore spelling of a name works too. */
    r = callx("VM_get_all", params);
    cr_assert(strstr(r, "Success"), "%s", r);
    free(r);
    free(s);
}

Test(server, bad_password_is_delayed_without_blocking_others)
{
    slot bad, good;
    double t0 = now_s();
    char *b = call_body("session.login_with_password",
                        "<param><value>root</value></param>"
                        "<param><value>wrong</value></param>");

    slot_init(&bad);
    send_req(&bad, XCP_SERVER_XMLRPC, b, 0);
    free(b);
    /* Meanwhile another client is answered at once. */
    slot_init(&good);
    b = call_body("system.listMethods", "");
    send_req(&good, XCP_SERVER_XMLRPC, b, 0);
    free(b);
    cr_assert(slot_wait(&good, 5));
    cr_assert_lt(good.at - t0, 0.3, "listMethods took %.3f s",
                 good.at - t0);
    cr_assert(!bad.done, "failed login answered before its delay");
    cr_assert(slot_wait(&bad, 5));
    cr_assert_geq(bad.at - t0, 0.38, "failure after %.3f s", bad.at - t0);
    cr_assert(strstr(bad.body, "<value>SESSION_AUTHENTICATION_FAILED</value>"
                               "<value>root</value>"),
              "%s", bad.body);
    slot_free(&bad);
    slot_free(&good);
}

Test(server, local_root_needs_no_password)
{
    slot s;
    char *b = call_body("session.login_with_password",
                        "<param><value>root</value></param>"
                        "<param><value></value></param>");

    slot_init(&s);
    send_req(&s, XCP_SERVER_XMLRPC, b, 1);
    free(b);
    cr_assert(slot_wait(&s, 5));
    cr_assert(strstr(s.body, "OpaqueRef:"), "%s", s.body);
    slot_free(&s);
}

Test(server, dispatch_errors)
{
    char *s = login("root", "secret"), params[512], *r;

    r = callx("system.listMethods", "");
    /* Bare: the array is the param itself, no Status/Value struct. */
    cr_assert(strstr(r, "<methodResponse><params><param><value><array>"
                        "<data><value>"),
              "%.300s", r);
    cr_assert(strstr(r, "<value>VM.get_all_records</value>") &&
                  strstr(r, "<value>session.login_with_password</value>"),
              "%.300s", r);
    cr_assert(!strstr(r, "Status"), "listMethods is wrapped");
    free(r);
    r = callx("VM.no_such_message", "");
    cr_assert(strstr(r, "<value>MESSAGE_METHOD_UNKNOWN</value><value>"
                        "VM.no_such_message</value>"),
              "%s", r);
    free(r);
    /* With an argument, a dead session is reported first. */
    r = callx("VM.no_such_message",
              "<param><value>OpaqueRef:dead</value></param>");
    cr_assert(strstr(r, "<value>SESSION_INVALID</value><value>"
                        "OpaqueRef:dead</value>"),
              "%s", r);
    free(r);
    snprintf(params, sizeof(params),
             "<param><value>%s</value></param>"
             "<param><value>a</value></param>",
             s);
    r = callx("VM.get_all", params);
    cr_assert(strstr(r, "<value>MESSAGE_PARAMETER_COUNT_MISMATCH</value>"
                        "<value>VM.get_all</value><value>0</value>"
                        "<value>1</value>"),
              "%s", r);
    free(r);
    r = callx("VM.get_all", "<param><value>OpaqueRef:nope</value></param>");
    cr_assert(strstr(r, "<value>SESSION_INVALID</value>"), "%s", r);
    free(r);
    /* Invalid UTF-8 in a parameter. */
    snprintf(params, sizeof(params),
             "<param><value>%s</value></param>"
             "<param><value>\xff\xfe</value></param>",
             s);
    r = callx("VM.get_by_name_label", params);
    cr_assert(strstr(r, "<value>INVALID_VALUE</value><value>Invalid UTF-8 "
                        "string in parameter</value>"),
              "%s", r);
    free(r);
    free(s);
}

Test(server, unparsable_is_http_500)
{
    slot s;

    slot_init(&s);
    send_req(&s, XCP_SERVER_XMLRPC, "<methodCall><methodName>x", 0);
    cr_assert(slot_wait(&s, 5));
    cr_assert_eq(s.status, 500);
    cr_assert_str_eq(s.ctype, "text/html");
    slot_free(&s);
    slot_init(&s);
    send_req(&s, XCP_SERVER_JSONRPC, "{\"method\":\"system.listMethods\"}", 0);
    cr_assert(slot_wait(&s, 5));
    cr_assert_eq(s.status, 500, "notification without id: %d", s.status);
    slot_free(&s);
}

Test(server, jsonrpc_v1_and_v2)
{
    slot s;
    char body[512];

    slot_init(&s);
    send_req(&s, XCP_SERVER_JSONRPC,
             "{\"jsonrpc\":\"2.0\",\"method\":\"session.login_with_password\","
             "\"params\":[\"root\",\"secret\"],\"id\":7}",
             0);
    cr_assert(slot_wait(&s, 5));
    cr_assert_str_eq(s.ctype, "application/json");
    cr_assert(strstr(s.body, "\"jsonrpc\":\"2.0\"") &&
                  strstr(s.body, "\"result\":\"OpaqueRef:") &&
                  strstr(s.body, "\"id\":7"),
              "%s", s.body);
    slot_free(&s);
    slot_init(&s);
    snprintf(body, sizeof(body),
             "{\"method\":\"VM.get_all\",\"params\":[\"OpaqueRef:x\"],"
             "\"id\":\"a\"}");
    send_req(&s, XCP_SERVER_JSONRPC, body, 0);
    cr_assert(slot_wait(&s, 5));
    cr_assert(strstr(s.body, "\"error\":[\"SESSION_INVALID\","
                             "\"OpaqueRef:x\"]") &&
                  strstr(s.body, "\"id\":\"a\""),
              "%s", s.body);
    slot_free(&s);
}

/* The whole of a request's reply, through xcp_server_rpc_stream when
 * stream is set (read in small pieces, across many slices); *streamed
 * says whether a stream came. */
static char *reply_of(xcp_server_protocol proto, const char *body,
                      bool stream, bool *streamed)
{
    xcp_server_request r;
    slot s;
    char *out = NULL, buf[1000];
    size_t len = 0, got;

    memset(&r, 0, sizeof(r));
    r.protocol = proto;
    r.body = body;
    r.len = strlen(body);
    r.peer.address = "127.0.0.1:1";
    slot_init(&s);
    if (stream)
        xcp_server_rpc_stream(srv, &r, on_done, &s);
    else
        xcp_server_rpc(srv, &r, on_done, &s);
    cr_assert(slot_wait(&s, 10), "no reply to %s", body);
    cr_assert_eq(s.status, 200);
    *streamed = s.stream != NULL;
    if (!s.stream) {
        out = s.body;
        s.body = NULL;
        slot_free(&s);
        return out;
    }
    do {
        cr_assert_eq(xcp_server_stream_read(s.stream, buf, sizeof(buf), &got),
                     0);
        cr_assert(got <= sizeof(buf));
        out = realloc(out, len + got + 1);
        cr_assert(out);
        memcpy(out + len, buf, got);
        len += got;
    } while (got > 0);
    out[len] = '\0';
    slot_free(&s);
    return out;
}

/* Enough VMs for several 64 KiB slices of get_all_records: n clones of
 * a template. */
static void clone_vms(const char *sess, size_t n)
{
    char body[1024], *a, *b;
    size_t i;

    snprintf(body, sizeof(body), "<param><value>%s</value></param><param>"
             "<value>field \"is_a_template\" = \"true\"</value></param>",
             sess);
    a = callx("VM.get_all_where", body);
    cr_assert((b = strstr(a, "OpaqueRef:")), "%s", a);
    b = strndup(b, strcspn(b, "<"));
    for (i = 0; i < n; i++) {
        char *r;
        snprintf(body, sizeof(body), "<param><value>%s</value></param>"
                 "<param><value>%s</value></param><param><value>c%zu"
                 "</value></param>", sess, b, i);
        r = callx("VM.clone", body);
        cr_assert(strstr(r, "Success"), "%s", r);
        free(r);
    }
    free(a);
    free(b);
}

/* Start a streamed VM.get_all_records on sess. */
static xcp_server_stream *start_stream(const char *sess, slot *s)
{
    xcp_server_request r;
    char *body;

    cr_assert(asprintf(&body, "<?xml version=\"1.0\"?><methodCall>"
                       "<methodName>VM.get_all_records</methodName><params>"
                       "<param><value>%s</value></param></params>"
                       "</methodCall>", sess) > 0);
    memset(&r, 0, sizeof(r));
    r.protocol = XCP_SERVER_XMLRPC;
    r.body = body;
    r.len = strlen(body);
    r.peer.address = "127.0.0.1:1";
    slot_init(s);
    xcp_server_rpc_stream(srv, &r, on_done, s);
    free(body);
    cr_assert(slot_wait(s, 10));
    cr_assert_not_null(s->stream);
    return s->stream;
}

/* A record destroyed while its reply streams is left out (the reply stays
 * well-formed); a session that ends mid-stream fails the read, so the
 * transport aborts rather than send a wrong reply. */
Test(server, streamed_records_change_midway)
{
    char *sess = login("root", "secret"), params[512], *r, *ref, *last;
    char buf[1000], *out = NULL;
    size_t len = 0, got;
    xcp_server_stream *st;
    slot s;

    /* More than the first slice: the last VMs are read after it. */
    clone_vms(sess, 150);
    snprintf(params, sizeof(params), "<param><value>%s</value></param>",
             sess);
    r = callx("VM.get_all", params);
    last = strrchr(r, ':'); /* the last ref: the last clone */
    while (last[-1] != '>')
        last--;
    ref = strndup(last, strcspn(last, "<"));
    free(r);
    st = start_stream(sess, &s);
    cr_assert_eq(xcp_server_stream_read(st, buf, sizeof(buf), &got), 0);
    cr_assert_gt(got, 0);
    snprintf(params, sizeof(params), "<param><value>%s</value></param>"
             "<param><value>%s</value></param>", sess, ref);
    r = callx("VM.destroy", params);
    cr_assert(strstr(r, "Success"), "%s", r);
    free(r);
    do {
        cr_assert_eq(xcp_server_stream_read(st, buf, sizeof(buf), &got), 0);
        out = realloc(out, len + got + 1);
        memcpy(out + len, buf, got);
        len += got;
    } while (got > 0);
    out[len] = '\0';
    snprintf(params, sizeof(params), "<member><name>%s</name>", ref);
    cr_assert(!strstr(out, params), "%s still sent", ref);
    cr_assert(strstr(out, "<member><name>OpaqueRef:"));
    cr_assert(strstr(out, "</struct></value></member></struct></value>"
                          "</param></params></methodResponse>"),
              "truncated");
    free(out);
    slot_free(&s);

    st = start_stream(sess, &s);
    cr_assert_eq(xcp_server_stream_read(st, buf, sizeof(buf), &got), 0);
    snprintf(params, sizeof(params), "<param><value>%s</value></param>",
             sess);
    r = callx("session.logout", params);
    free(r);
    while (xcp_server_stream_read(st, buf, sizeof(buf), &got) == 0)
        cr_assert_gt(got, 0, "the stream ended after its session did");
    cr_assert_str_eq(xcp_error_last()->name, "SESSION_INVALID");
    slot_free(&s);
    free(ref);
    free(sess);
}

/* Streamed get_all_records(_where) replies are byte for byte the
 * buffered ones, in both encodings; errors found first are plain
 * replies. */
Test(server, streamed_records_equal_buffered)
{
    char *sess = login("root", "secret"), body[1024], *a, *b;
    bool st;
    size_t i;
    const char *const fmt[] = {
        "<?xml version=\"1.0\"?><methodCall><methodName>VM.get_all_records"
        "</methodName><params><param><value>%s</value></param></params>"
        "</methodCall>",
        "<?xml version=\"1.0\"?><methodCall><methodName>"
        "VM.get_all_records_where</methodName><params><param><value>%s"
        "</value></param><param><value>field \"is_a_template\" = \"true\""
        "</value></param></params></methodCall>",
        "{\"jsonrpc\":\"2.0\",\"method\":\"VM.get_all_records\","
        "\"params\":[\"%s\"],\"id\":\"x\"}",
        "{\"method\":\"VM.get_all_records_where\",\"params\":[\"%s\","
        "\"field \\\"is_a_template\\\" = \\\"false\\\"\"],\"id\":3}",
        /* libxcp's field list: only those fields of each record */
        "<?xml version=\"1.0\"?><methodCall><methodName>"
        "VM.get_all_records_where</methodName><params><param><value>%s"
        "</value></param><param><value>true</value></param><param><value>"
        "<array><data><value>uuid</value><value>power_state</value>"
        "</data></array></value></param></params></methodCall>",
        "{\"jsonrpc\":\"2.0\",\"method\":\"VM.get_all_records_where\","
        "\"params\":[\"%s\",\"true\",[\"name_label\",\"VBDs\"]],"
        "\"id\":4}",
    };

    clone_vms(sess, 40);
    for (i = 0; i < 6; i++) {
        xcp_server_protocol p = i < 2 || i == 4 ? XCP_SERVER_XMLRPC
                                                : XCP_SERVER_JSONRPC;
        snprintf(body, sizeof(body), fmt[i], sess);
        a = reply_of(p, body, false, &st);
        cr_assert(!st);
        b = reply_of(p, body, true, &st);
        cr_assert(st, "no stream for %s", body);
        if (i == 0)
            cr_assert(strlen(a) > 4 * 65536, "too small to cross slices: "
                      "%zu", strlen(a));
        cr_assert_str_eq(a, b, "%s", body);
        cr_assert(!strstr(a, "Failure") && !strstr(a, "error\":["), "%s",
                  a);
        if (i == 4) /* only the fields asked for */
            cr_assert(strstr(a, "<name>power_state</name>") &&
                          !strstr(a, "<name>name_label</name>"),
                      "%.2000s", a);
        if (i == 5)
            cr_assert(strstr(a, "\"VBDs\":[") &&
                          !strstr(a, "\"uuid\":"),
                      "%.2000s", a);
        free(a);
        free(b);
    }
    /* A field list naming no field of the class: INVALID_VALUE. */
    snprintf(body, sizeof(body), fmt[4], sess);
    memcpy(strstr(body, "power_state"), "power_stat_", 11);
    a = reply_of(XCP_SERVER_XMLRPC, body, true, &st);
    cr_assert(!st);
    cr_assert(strstr(a, "<value>INVALID_VALUE</value><value>fields</value>"
                        "<value>power_stat_</value>"), "%s", a);
    free(a);
    /* A bad session or expression: an ordinary failure, no stream. */
    a = reply_of(XCP_SERVER_XMLRPC,
                 "<?xml version=\"1.0\"?><methodCall><methodName>"
                 "VM.get_all_records</methodName><params><param><value>"
                 "OpaqueRef:nope</value></param></params></methodCall>",
                 true, &st);
    cr_assert(!st);
    cr_assert(strstr(a, "SESSION_INVALID"), "%s", a);
    free(a);
    free(sess);
}

/* event.from parks without a thread and is answered by the change. */
Test(server, event_from_parks_and_wakes_on_change)
{
    char *s = login("root", "secret"), params[1024], *r, *vm, *tok;
    slot ev;
    double t0;

    snprintf(params, sizeof(params), "<param><value>%s</value></param>", s);
    r = callx("VM.get_all", params);
    cr_assert(strstr(r, "<array><data><value>OpaqueRef:"), "%s", r);
    vm = strndup(strstr(r, "<array><data><value>") + 20, 46);
    free(r);
    /* A token from now. */
    snprintf(params, sizeof(params),
             "<param><value>%s</value></param><param><value><array><data>"
             "<value>vm</value></data></array></value></param><param><value>"
             "</value></param><param><value><double>0</double></value>"
             "</param>",
             s);
    r = callx("event.from", params);
    cr_assert(strstr(r, "<name>valid_ref_counts</name>"), "%.400s", r);
    cr_assert(strstr(r, "<i4>"), "valid_ref_counts not <i4>");
    tok = strstr(r, "<name>token</name><value>");
    cr_assert(tok);
    tok = strndup(tok + 25, 41);
    free(r);
    snprintf(params, sizeof(params),
             "<param><value>%s</value></param><param><value><array><data>"
             "<value>vm</value></data></array></value></param><param><value>"
             "%s</value></param><param><value><double>30</double></value>"
             "</param>",
             s, tok);
    {
        char *b = call_body("event.from", params);
        slot_init(&ev);
        send_req(&ev, XCP_SERVER_XMLRPC, b, 0);
        free(b);
    }
    usleep(200000);
    cr_assert(!ev.done, "event.from answered with nothing changed: %s",
              ev.body);
    t0 = now_s();
    snprintf(params, sizeof(params),
             "<param><value>%s</value></param><param><value>%s</value>"
             "</param><param><value>renamed-by-test</value></param>",
             s, vm);
    r = callx("VM.set_name_label", params);
    cr_assert(strstr(r, "Success"), "%s", r);
    free(r);
    cr_assert(slot_wait(&ev, 5), "event not delivered");
    cr_assert_lt(ev.at - t0, 0.5, "delivered after %.3f s", ev.at - t0);
    cr_assert(strstr(ev.body, "renamed-by-test") &&
                  strstr(ev.body, "<name>operation</name><value>mod</value>"),
              "%.600s", ev.body);
    slot_free(&ev);
    free(tok);
    free(vm);
    free(s);
}

/* Send method(params) and wait for the reply; returns whether the server
   called the request authenticated. */
static int authed(const char *method, const char *params, int local_root)
{
    slot s;
    char *b = call_body(method, params);
    int a;

    slot_init(&s);
    a = send_req(&s, XCP_SERVER_XMLRPC, b, local_root);
    free(b);
    cr_assert(slot_wait(&s, 10), "no reply to %s", method);
    slot_free(&s);
    return a;
}

/* xcpd gives authenticated connections room that anonymous ones do not
   get: the answer must be right, and known while a long poll is still
   parked. */
Test(server, rpc_tells_whether_authenticated)
{
    char *s = login("root", "secret"), params[1024];
    slot ev;
    char *b;
    int a;

    cr_assert(authed("session.login_with_password",
                     "<param><value>root</value></param>"
                     "<param><value>secret</value></param>", 0));
    cr_assert(authed("session.login_with_password",
                     "<param><value>root</value></param>"
                     "<param><value></value></param>", 1),
              "local root");
    cr_assert(!authed("session.login_with_password",
                      "<param><value>root</value></param>"
                      "<param><value>wrong</value></param>", 0));
    cr_assert(!authed("system.listMethods", "", 0));
    cr_assert(!authed("VM.get_all",
                      "<param><value>OpaqueRef:nope</value></param>", 0));
    cr_assert(!authed("VM.no_such_call",
                      "<param><value>OpaqueRef:nope</value></param>", 0));
    snprintf(params, sizeof(params), "<param><value>%s</value></param>", s);
    cr_assert(authed("VM.get_all", params, 0));
    /* A long poll: authenticated before it is answered. */
    snprintf(params, sizeof(params),
             "<param><value>%s</value></param><param><value><array><data>"
             "<value>vm</value></data></array></value></param><param><value>"
             "</value></param><param><value><double>0</double></value>"
             "</param>",
             s);
    b = callx("event.from", params);
    {
        char *tok = strstr(b, "<name>token</name><value>");

        cr_assert(tok);
        tok = strndup(tok + 25, 41);
        snprintf(params, sizeof(params),
                 "<param><value>%s</value></param><param><value><array>"
                 "<data><value>vm</value></data></array></value></param>"
                 "<param><value>%s</value></param><param><value><double>1"
                 "</double></value></param>",
                 s, tok);
        free(tok);
    }
    free(b);
    b = call_body("event.from", params);
    slot_init(&ev);
    a = send_req(&ev, XCP_SERVER_XMLRPC, b, 0);
    free(b);
    cr_assert(a, "parked event.from not called authenticated");
    cr_assert(!ev.done, "event.from answered at once: %s", ev.body);
    cr_assert(slot_wait(&ev, 10));
    slot_free(&ev);
    free(s);
}

Test(server, event_from_timeout_and_logout)
{
    char *s = login("root", "secret"), params[1024], *b, *r;
    slot ev, ev2;
    double t0 = now_s();

    snprintf(params, sizeof(params),
             "<param><value>%s</value></param><param><value><array><data>"
             "<value>vm</value></data></array></value></param><param><value>"
             "99999999999999999999,00000000000000000000</value></param>"
             "<param><value><double>0.5</double></value></param>",
             s);
    b = call_body("event.from", params);
    slot_init(&ev);
    send_req(&ev, XCP_SERVER_XMLRPC, b, 0);
    free(b);
    cr_assert(slot_wait(&ev, 5));
    cr_assert_geq(ev.at - t0, 0.45, "timed out after %.3f s", ev.at - t0);
    cr_assert(strstr(ev.body, "<name>events</name><value><array><data>"
                              "</data></array>"),
              "%.300s", ev.body);
    slot_free(&ev);
    /* A parked poll of a session that logs out fails at once. */
    snprintf(params, sizeof(params),
             "<param><value>%s</value></param><param><value><array><data>"
             "<value>vm</value></data></array></value></param><param><value>"
             "99999999999999999999,00000000000000000000</value></param>"
             "<param><value><double>30</double></value></param>",
             s);
    b = call_body("event.from", params);
    slot_init(&ev2);
    send_req(&ev2, XCP_SERVER_XMLRPC, b, 0);
    free(b);
    usleep(100000);
    cr_assert(!ev2.done);
    snprintf(params, sizeof(params), "<param><value>%s</value></param>", s);
    r = callx("session.logout", params);
    free(r);
    cr_assert(slot_wait(&ev2, 5));
    cr_assert(strstr(ev2.body, "SESSION_INVALID"), "%s", ev2.body);
    slot_free(&ev2);
    free(s);
}

/* Many parked polls hold no thread and all wake on one change. */
Test(server, thousand_parked_polls)
{
    enum { N = 1000 };
    char *s = login("root", "secret"), params[1024], *b, *r, *pool;
    static slot ev[N];
    int i;

    snprintf(params, sizeof(params), "<param><value>%s</value></param>", s);
    r = callx("pool.get_all", params);
    pool = strndup(strstr(r, "<array><data><value>") + 20, 46);
    free(r);
    snprintf(params, sizeof(params),
             "<param><value>%s</value></param><param><value><array><data>"
             "<value>pool</value></data></array></value></param><param>"
             "<value>99999999999999999999,00000000000000000000</value>"
             "</param><param><value><double>30</double></value></param>",
             s);
    b = call_body("event.from", params);
    for (i = 0; i < N; i++) {
        slot_init(&ev[i]);
        send_req(&ev[i], XCP_SERVER_XMLRPC, b, 0);
    }
    free(b);
    usleep(100000);
    for (i = 0; i < N; i++)
        cr_assert(!ev[i].done);
    snprintf(params, sizeof(params),
             "<param><value>%s</value></param><param><value>%s</value>"
             "</param><param><value>k</value></param><param><value>v"
             "</value></param>",
             s, pool);
    r = callx("pool.add_to_other_config", params);
    cr_assert(strstr(r, "Success"), "%s", r);
    free(r);
    for (i = 0; i < N; i++) {
        cr_assert(slot_wait(&ev[i], 10), "poll %d not woken", i);
        cr_assert(strstr(ev[i].body, "<name>k</name><value>v</value>"));
        slot_free(&ev[i]);
    }
    free(pool);
    free(s);
}

Test(server, shutdown_completes_parked_polls)
{
    char *s = login("root", "secret"), params[1024], *b;
    slot ev;

    snprintf(params, sizeof(params),
             "<param><value>%s</value></param><param><value><array><data>"
             "<value>*</value></data></array></value></param><param><value>"
             "99999999999999999999,00000000000000000000</value></param>"
             "<param><value><double>60</double></value></param>",
             s);
    b = call_body("event.from", params);
    slot_init(&ev);
    send_req(&ev, XCP_SERVER_XMLRPC, b, 0);
    free(b);
    usleep(100000);
    cr_assert(!ev.done);
    xcp_server_shutdown(srv);
    cr_assert(ev.done, "shutdown returned with a poll pending");
    cr_assert(strstr(ev.body, "<name>events</name>"), "%s", ev.body);
    slot_free(&ev);
    /* New requests are refused now. */
    slot_init(&ev);
    send_req(&ev, XCP_SERVER_XMLRPC, "x", 0);
    cr_assert(ev.done);
    cr_assert_eq(ev.status, 503);
    slot_free(&ev);
    free(s);
}

static void limit_setup(void)
{
    setup_opts(3, 1);
}

TestSuite(server_sessions, .init = limit_setup, .fini = teardown,
          .timeout = 60);

static int session_valid(const char *s)
{
    char params[256], *r;
    int ok;

    snprintf(params, sizeof(params), "<param><value>%s</value></param>", s);
    r = callx("pool.get_all", params);
    ok = strstr(r, "Success") != NULL;
    cr_assert(ok || strstr(r, "SESSION_INVALID"), "%s", r);
    free(r);
    return ok;
}

Test(server_sessions, limit_evicts_least_recently_used)
{
    char *s[4];
    int i;

    for (i = 0; i < 3; i++)
        s[i] = login_as("root", "secret", "test-client");
    cr_assert(session_valid(s[0])); /* s[0] used: s[1] is the oldest now */
    s[3] = login_as("root", "secret", "test-client");
    cr_assert(session_valid(s[0]));
    cr_assert(!session_valid(s[1]), "the least recently used survived");
    cr_assert(session_valid(s[2]));
    cr_assert(session_valid(s[3]));
    for (i = 0; i < 4; i++)
        free(s[i]);
}

/* Root sessions opened without an originator have a smaller quota (4/5
 * of the limit, as XAPI's 400 of 500). */
Test(server_sessions, root_without_originator)
{
    char *a = login("root", "secret"), *b = login("root", "secret");
    char *c = login("root", "secret");

    cr_assert(!session_valid(a));
    cr_assert(session_valid(b));
    cr_assert(session_valid(c));
    free(a);
    free(b);
    free(c);
}

Test(server_sessions, idle_sessions_expire)
{
    char *a = login("root", "secret"), *b = login("root", "secret");
    int i;

    /* Keep b busy for 1.6 s; a stays idle past the 1 s timeout. */
    for (i = 0; i < 8; i++) {
        usleep(200000);
        cr_assert(session_valid(b));
    }
    cr_assert(!session_valid(a), "an idle session outlived the timeout");
    free(a);
    free(b);
}

static void task_timeout_setup(void)
{
    setenv("XCP_TASK_TIMEOUT", "1", 1);
    setup_opts(0, 0);
}

TestSuite(server_tasks, .init = task_timeout_setup, .fini = teardown,
          .timeout = 60);

/* A pending task made with task.create (label), as a client would. */
static char *new_task(const char *s, const char *label)
{
    char params[512], *r, *t;

    snprintf(params, sizeof(params),
             "<param><value>%s</value></param><param><value>%s</value>"
             "</param><param><value></value></param>", s, label);
    r = callx("task.create", params);
    t = value_of(r);
    cr_assert(!strncmp(t, "OpaqueRef:", 10), "%s", r);
    free(r);
    return t;
}

/* With no call coming in, the server's GC tick still collects completed
 * tasks past XCP_TASK_TIMEOUT (a call runs the collector only after it
 * has answered, so the get_status below cannot be what collected it). */
Test(server_tasks, idle_server_collects_completed_tasks)
{
    char *s = login("root", "secret"), params[512], *r, *t, *p;

    t = new_task(s, "upload");
    p = new_task(s, "stays"); /* a pending one, to stay */
    snprintf(params, sizeof(params),
             "<param><value>%s</value></param><param><value>%s</value>"
             "</param><param><value>success</value></param>", s, t);
    r = callx("task.set_status", params);
    cr_assert(strstr(r, "Success"), "%s", r);
    free(r);
    usleep(2600000); /* finished at T (whole seconds): due after T+1 */
    snprintf(params, sizeof(params),
             "<param><value>%s</value></param><param><value>%s</value>"
             "</param>", s, t);
    r = callx("task.get_status", params);
    cr_assert(strstr(r, "HANDLE_INVALID"), "not collected while idle: %s",
              r);
    free(r);
    snprintf(params, sizeof(params),
             "<param><value>%s</value></param><param><value>%s</value>"
             "</param>", s, p);
    r = callx("task.get_status", params);
    cr_assert(strstr(r, "pending"), "the pending task: %s", r);
    free(r);
    free(p);
    free(t);
    free(s);
}

/* A new 4 MiB VDI in the default SR (malloc()ed ref). */
static char *new_vdi(const char *s, bool read_only)
{
    char params[1024], *r, *sr, *vdi;

    snprintf(params, sizeof(params), "<param><value>%s</value></param>", s);
    r = callx("pool.get_all_records", params);
    sr = strstr(r, "<name>default_SR</name><value>");
    cr_assert(sr, "%.300s", r);
    sr = strndup(sr + 30, 46);
    free(r);
    snprintf(params, sizeof(params),
             "<param><value>%s</value></param><param><value><struct>"
             "<member><name>name_label</name><value>d</value></member>"
             "<member><name>SR</name><value>%s</value></member>"
             "<member><name>virtual_size</name><value>4194304</value>"
             "</member><member><name>type</name><value>user</value>"
             "</member><member><name>sharable</name><value><boolean>0"
             "</boolean></value></member><member><name>read_only</name>"
             "<value><boolean>%d</boolean></value></member><member><name>"
             "other_config</name><value><struct></struct></value></member>"
             "</struct></value></param>",
             s, sr, read_only);
    r = callx("VDI.create", params);
    vdi = value_of(r);
    cr_assert(!strncmp(vdi, "OpaqueRef:", 10), "%s", r);
    free(r);
    free(sr);
    return vdi;
}

/* A VDI's contents go in and come back out through the transfer API. */
Test(server, raw_vdi_import_export_round_trip)
{
    char *s = login("root", "secret"), params[1024], *r, *vdi;
    xcp_server_transfer_request q;
    xcp_server_transfer *t;
    uint64_t size = 0;
    int http = 0;
    size_t i, got;
    static unsigned char buf[1 << 20], back[1 << 20];

    vdi = new_vdi(s, false);
    for (i = 0; i < sizeof(buf); i++)
        buf[i] = (unsigned char)(i * 7 + 3);
    memset(&q, 0, sizeof(q));
    q.version = XCP_SERVER_TRANSFER_REQUEST_VERSION;
    q.direction = XCP_SERVER_IMPORT;
    q.session_id = "OpaqueRef:bad";
    q.vdi = vdi;
    q.content_length = sizeof(buf);
    cr_assert_lt(xcp_server_transfer_open(srv, &t, NULL, &http, &q), 0);
    cr_assert_eq(http, 401);
    q.session_id = s;
    q.format = "vmdk"; /* vhd and qcow2 are formats of ours now */
    cr_assert_lt(xcp_server_transfer_open(srv, &t, NULL, &http, &q), 0);
    cr_assert_eq(http, 404);
    q.format = "raw";
    cr_assert_eq(xcp_server_transfer_open(srv, &t, NULL, &http, &q), 0,
                 "%s", xcp_error_last() ? xcp_error_last()->name : "");
    cr_assert_eq(http, 200);
    /* In uneven pieces, as HTTP delivers them. */
    for (i = 0; i < sizeof(buf);) {
        size_t n = sizeof(buf) - i < 32621 ? sizeof(buf) - i : 32621;
        cr_assert_eq(xcp_server_transfer_write(t, buf + i, n), 0);
        i += n;
    }
    {
        char task[64];
        snprintf(task, sizeof(task), "%s", xcp_server_transfer_task(t));
        cr_assert_eq(xcp_server_transfer_close(t, 1), 0);
        snprintf(params, sizeof(params),
                 "<param><value>%s</value></param><param><value>%s</value>"
                 "</param>",
                 s, task);
        r = callx("task.get_record", params);
        cr_assert(strstr(r, "<name>status</name><value>success</value>"),
                  "%s", r);
        cr_assert(strstr(r, vdi), "task result lacks the VDI: %s", r);
        free(r);
    }
    q.direction = XCP_SERVER_EXPORT;
    q.content_length = UINT64_MAX;
    cr_assert_eq(xcp_server_transfer_open(srv, &t, &size, &http, &q), 0);
    cr_assert_eq(size, 4194304u);
    for (i = 0; i < sizeof(back); i += got) {
        cr_assert_eq(xcp_server_transfer_read(t, back + i,
                                              sizeof(back) - i > 65536
                                                  ? 65536
                                                  : sizeof(back) - i,
                                              &got, i),
                     0);
        cr_assert_gt(got, 0);
    }
    cr_assert_eq(memcmp(buf, back, sizeof(buf)), 0, "contents differ");
    /* Past what was written the disk reads as zeros. */
    cr_assert_eq(xcp_server_transfer_read(t, back, 64, &got, 4194304 - 16),
                 0);
    cr_assert_eq(got, 16);
    for (i = 0; i < 16; i++)
        cr_assert_eq(back[i], 0);
    cr_assert_eq(xcp_server_transfer_close(t, 1), 0);
    /* A body that stops short of its declared length fails its task,
     * also when it declared exactly the disk's size. */
    q.direction = XCP_SERVER_IMPORT;
    q.content_length = 4194304;
    cr_assert_eq(xcp_server_transfer_open(srv, &t, NULL, &http, &q), 0);
    cr_assert_eq(xcp_server_transfer_write(t, buf, 1000), 0);
    {
        char task[64];
        snprintf(task, sizeof(task), "%s", xcp_server_transfer_task(t));
        cr_assert_lt(xcp_server_transfer_close(t, 1), 0,
                     "a short body was accepted");
        snprintf(params, sizeof(params),
                 "<param><value>%s</value></param><param><value>%s</value>"
                 "</param>",
                 s, task);
        r = callx("task.get_record", params);
        cr_assert(strstr(r, "<name>status</name><value>failure</value>") &&
                      strstr(r, "VDI_IO_ERROR"),
                  "%s", r);
        free(r);
    }
    /* A body larger than the disk is refused before any byte is written. */
    q.direction = XCP_SERVER_IMPORT;
    q.content_length = 4194305;
    cr_assert_lt(xcp_server_transfer_open(srv, &t, NULL, &http, &q), 0);
    cr_assert_eq(http, 400);
    free(vdi);
    free(s);
}

/* A read-only VDI can be exported but not imported into: 403 and
 * VDI_READONLY, also in the client's task. */
Test(server, transfer_into_read_only_vdi_is_refused)
{
    char *s = login("root", "secret"), params[1024], *r, *vdi, *task;
    xcp_server_transfer_request q;
    xcp_server_transfer *t;
    uint64_t size = 0;
    int http = 0;

    vdi = new_vdi(s, true);
    task = new_task(s, "import");
    memset(&q, 0, sizeof(q));
    q.version = XCP_SERVER_TRANSFER_REQUEST_VERSION;
    q.direction = XCP_SERVER_IMPORT;
    q.session_id = s;
    q.task_id = task;
    q.vdi = vdi;
    q.content_length = 4096;
    cr_assert_lt(xcp_server_transfer_open(srv, &t, NULL, &http, &q), 0);
    cr_assert_eq(http, 403);
    cr_assert_str_eq(xcp_error_last()->name, "VDI_READONLY");
    snprintf(params, sizeof(params),
             "<param><value>%s</value></param><param><value>%s</value>"
             "</param>", s, task);
    r = callx("task.get_record", params);
    cr_assert(strstr(r, "<name>status</name><value>failure</value>") &&
                  strstr(r, "VDI_READONLY"), "%s", r);
    free(r);
    q.direction = XCP_SERVER_EXPORT;
    q.task_id = NULL;
    q.content_length = UINT64_MAX;
    cr_assert_eq(xcp_server_transfer_open(srv, &t, &size, &http, &q), 0);
    cr_assert_eq(size, 4194304u);
    cr_assert_eq(xcp_server_transfer_close(t, 1), 0);
    free(task);
    free(vdi);
    free(s);
}

/* An export read spanning written data and never-written space returns
 * both, the latter as zeros (it is not read: only extents are). */
Test(server, export_read_across_data_and_hole)
{
    char *s = login("root", "secret"), *vdi;
    xcp_server_transfer_request q;
    xcp_server_transfer *t;
    int http = 0;
    size_t i, got;
    static unsigned char buf[70000], back[200000];

    vdi = new_vdi(s, false);
    for (i = 0; i < sizeof(buf); i++)
        buf[i] = (unsigned char)(i % 251 + 1);
    memset(&q, 0, sizeof(q));
    q.version = XCP_SERVER_TRANSFER_REQUEST_VERSION;
    q.direction = XCP_SERVER_IMPORT;
    q.session_id = s;
    q.vdi = vdi;
    q.content_length = sizeof(buf);
    cr_assert_eq(xcp_server_transfer_open(srv, &t, NULL, &http, &q), 0);
    cr_assert_eq(xcp_server_transfer_write(t, buf, sizeof(buf)), 0);
    cr_assert_eq(xcp_server_transfer_close(t, 1), 0);
    q.direction = XCP_SERVER_EXPORT;
    q.content_length = UINT64_MAX;
    cr_assert_eq(xcp_server_transfer_open(srv, &t, NULL, &http, &q), 0);
    memset(back, 0xee, sizeof(back));
    cr_assert_eq(xcp_server_transfer_read(t, back, sizeof(back), &got, 0),
                 0);
    cr_assert_eq(got, sizeof(back));
    cr_assert_eq(memcmp(back, buf, sizeof(buf)), 0, "data differs");
    for (i = sizeof(buf); i < sizeof(back); i++)
        cr_assert_eq(back[i], 0, "byte %zu is %d", i, back[i]);
    cr_assert_eq(xcp_server_transfer_close(t, 1), 0);
    free(vdi);
    free(s);
}

/* A VDI attached to a running VM cannot be imported into (409,
 * VDI_IN_USE) but can be exported. */
Test(server, transfer_into_attached_vdi_is_refused)
{
    char *s = login("root", "secret"), body[2048], *r, *vdi, *vm, *p;
    xcp_server_transfer_request q;
    xcp_server_transfer *t;
    int http = 0;

    vdi = new_vdi(s, false);
    clone_vms(s, 1);
    snprintf(body, sizeof(body), "<param><value>%s</value></param>"
             "<param><value>c0</value></param>", s);
    r = callx("VM.get_by_name_label", body);
    cr_assert((p = strstr(r, "OpaqueRef:")), "%s", r);
    vm = strndup(p, strcspn(p, "<"));
    free(r);
    snprintf(body, sizeof(body),
             "<param><value>%s</value></param><param><value><struct>"
             "<member><name>VM</name><value>%s</value></member>"
             "<member><name>VDI</name><value>%s</value></member>"
             "<member><name>userdevice</name><value>0</value></member>"
             "<member><name>bootable</name><value><boolean>1</boolean>"
             "</value></member><member><name>mode</name><value>RW</value>"
             "</member><member><name>type</name><value>Disk</value>"
             "</member><member><name>unpluggable</name><value><boolean>1"
             "</boolean></value></member><member><name>empty</name><value>"
             "<boolean>0</boolean></value></member><member><name>"
             "other_config</name><value><struct></struct></value></member>"
             "<member><name>qos_algorithm_type</name><value></value>"
             "</member><member><name>qos_algorithm_params</name><value>"
             "<struct></struct></value></member></struct></value></param>",
             s, vm, vdi);
    r = callx("VBD.create", body);
    cr_assert(strstr(r, "Success"), "%s", r);
    free(r);
    snprintf(body, sizeof(body), "<param><value>%s</value></param>"
             "<param><value>%s</value></param><param><value><boolean>0"
             "</boolean></value></param>", s, vm);
    r = callx("VM.set_is_a_template", body);
    cr_assert(strstr(r, "Success"), "%s", r);
    free(r);
    snprintf(body, sizeof(body), "<param><value>%s</value></param>"
             "<param><value>%s</value></param><param><value><boolean>0"
             "</boolean></value></param><param><value><boolean>0</boolean>"
             "</value></param>", s, vm);
    r = callx("VM.start", body);
    cr_assert(strstr(r, "Success"), "%s", r);
    free(r);
    memset(&q, 0, sizeof(q));
    q.version = XCP_SERVER_TRANSFER_REQUEST_VERSION;
    q.direction = XCP_SERVER_IMPORT;
    q.session_id = s;
    q.vdi = vdi;
    q.content_length = UINT64_MAX;
    cr_assert_lt(xcp_server_transfer_open(srv, &t, NULL, &http, &q), 0);
    cr_assert_eq(http, 409);
    cr_assert_str_eq(xcp_error_last()->name, "VDI_IN_USE");
    q.direction = XCP_SERVER_EXPORT;
    cr_assert_eq(xcp_server_transfer_open(srv, &t, NULL, &http, &q), 0);
    cr_assert_eq(xcp_server_transfer_close(t, 1), 0);
    free(vm);
    free(vdi);
    free(s);
}

/* The request struct carries its version: one without (an embedder built
 * against another layout) or from the future is refused, naming it. */
Test(server, transfer_request_without_its_version_is_refused)
{
    char *s = login("root", "secret"), *vdi;
    xcp_server_transfer_request q;
    xcp_server_transfer *t = NULL;
    const xcp_error *err;
    unsigned v[] = {0, XCP_SERVER_TRANSFER_REQUEST_VERSION + 1};
    size_t i;
    int http = 0;

    vdi = new_vdi(s, false);
    for (i = 0; i < 2; i++) {
        memset(&q, 0, sizeof(q));
        q.version = v[i];
        q.direction = XCP_SERVER_EXPORT;
        q.session_id = s;
        q.vdi = vdi;
        cr_assert_lt(xcp_server_transfer_open(srv, &t, NULL, &http, &q), 0);
        cr_assert_eq(http, 500);
        err = xcp_error_last();
        cr_assert_str_eq(err->name, "INVALID_VALUE");
        cr_assert_str_eq(err->params[0],
                         "xcp_server_transfer_request.version");
    }
    q.version = XCP_SERVER_TRANSFER_REQUEST_VERSION;
    cr_assert_eq(xcp_server_transfer_open(srv, &t, NULL, &http, &q), 0);
    cr_assert_eq(xcp_server_transfer_close(t, 1), 0);
    free(vdi);
    free(s);
}

/* One writer at a time: a second import into a VDI that an import is
 * writing is refused (409, VDI_IN_USE [vdi, "import_raw_vdi"]) and its
 * task fails; an export may read alongside; once the first import ends,
 * the VDI takes a new one. */
Test(server, second_concurrent_import_is_refused_vdi_in_use)
{
    char *s = login("root", "secret"), *vdi;
    xcp_server_transfer_request q;
    xcp_server_transfer *t, *t2;
    const xcp_error *err;
    int http = 0;

    vdi = new_vdi(s, false);
    memset(&q, 0, sizeof(q));
    q.version = XCP_SERVER_TRANSFER_REQUEST_VERSION;
    q.direction = XCP_SERVER_IMPORT;
    q.session_id = s;
    q.vdi = vdi;
    q.content_length = UINT64_MAX;
    cr_assert_eq(xcp_server_transfer_open(srv, &t, NULL, &http, &q), 0);
    cr_assert_lt(xcp_server_transfer_open(srv, &t2, NULL, &http, &q), 0);
    cr_assert_eq(http, 409);
    err = xcp_error_last();
    cr_assert_str_eq(err->name, "VDI_IN_USE");
    cr_assert_eq(err->nparams, 2);
    cr_assert_str_eq(err->params[0], vdi);
    cr_assert_str_eq(err->params[1], "import_raw_vdi");
    q.direction = XCP_SERVER_EXPORT;
    cr_assert_eq(xcp_server_transfer_open(srv, &t2, NULL, &http, &q), 0);
    cr_assert_eq(xcp_server_transfer_close(t2, 1), 0);
    cr_assert_eq(xcp_server_transfer_close(t, 1), 0);
    q.direction = XCP_SERVER_IMPORT;
    cr_assert_eq(xcp_server_transfer_open(srv, &t, NULL, &http, &q), 0,
                 "%s", xcp_error_last() ? xcp_error_last()->name : "");
    cr_assert_eq(xcp_server_transfer_close(t, 1), 0);
    free(vdi);
    free(s);
}

/* The client's task, destroyed while its transfer runs, goes when the
 * transfer ends, as an Async. call's task does. */
Test(server, transfer_task_destroyed_while_pending_goes_at_the_end)
{
    char *s = login("root", "secret"), params[1024], *r, *vdi, *task;
    xcp_server_transfer_request q;
    xcp_server_transfer *t;
    int http = 0;
    static unsigned char buf[4096];

    vdi = new_vdi(s, false);
    task = new_task(s, "import");
    memset(&q, 0, sizeof(q));
    q.version = XCP_SERVER_TRANSFER_REQUEST_VERSION;
    q.direction = XCP_SERVER_IMPORT;
    q.session_id = s;
    q.task_id = task;
    q.vdi = vdi;
    q.content_length = UINT64_MAX;
    cr_assert_eq(xcp_server_transfer_open(srv, &t, NULL, &http, &q), 0);
    cr_assert_str_eq(xcp_server_transfer_task(t), task);
    snprintf(params, sizeof(params),
             "<param><value>%s</value></param><param><value>%s</value>"
             "</param>", s, task);
    r = callx("task.destroy", params);
    cr_assert(strstr(r, "Success"), "%s", r);
    free(r);
    /* Still there while the transfer runs. */
    r = callx("task.get_status", params);
    cr_assert(strstr(r, "pending"), "%s", r);
    free(r);
    memset(buf, 0x5a, sizeof(buf));
    cr_assert_eq(xcp_server_transfer_write(t, buf, sizeof(buf)), 0);
    cr_assert_eq(xcp_server_transfer_close(t, 1), 0);
    r = callx("task.get_status", params);
    cr_assert(strstr(r, "HANDLE_INVALID"), "task kept: %s", r);
    free(r);
    free(task);
    free(vdi);
    free(s);
}

/* PAM: the conversation hands PAM the password; a service that permits
 * logs in, one that denies fails (modules from libpam-modules). */
static char pamdir[300];

static void pam_setup(void)
{
    char path[400];
    FILE *f;

    snprintf(pamdir, sizeof(pamdir), "%s/xcp-pam-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    cr_assert(mkdtemp(pamdir));
    snprintf(path, sizeof(path), "%s/permit", pamdir);
    f = fopen(path, "w");
    fputs("auth required pam_permit.so\naccount required pam_permit.so\n",
          f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/deny", pamdir);
    f = fopen(path, "w");
    fputs("auth required pam_deny.so\naccount required pam_permit.so\n", f);
    fclose(f);
}

static void pam_teardown(void)
{
    char cmd[400];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pamdir);
    if (system(cmd) != 0)
        cr_log_warn("cannot remove %s", pamdir);
}

Test(pam, permit_and_deny, .timeout = 60)
{
    char svc[400], *s, *r;

    pam_setup();
    snprintf(svc, sizeof(svc), "%s/permit", pamdir);
    pam_service = svc;
    setup_opts(0, 0);
    s = login("someone", "anything");
    cr_assert(!strncmp(s, "OpaqueRef:", 10), "%s", s);
    free(s);
    teardown();
    snprintf(svc, sizeof(svc), "%s/deny", pamdir);
    setup_opts(0, 0);
    r = callx("session.login_with_password",
              "<param><value>someone</value></param>"
              "<param><value>anything</value></param>");
    cr_assert(strstr(r, "<value>SESSION_AUTHENTICATION_FAILED</value>"
                        "<value>someone</value>"),
              "%s", r);
    free(r);
    teardown();
    pam_service = NULL;
    pam_teardown();
}

/* ---- NBD: the embedder's server behind VDI.get_nbd_info ---------------- */

/* What the fake NBD server was asked. */
static struct {
    int exports, gone;
    char session[128], vdi_uuid[64], format[16], gone_session[128];
    int tls, path_exists;
} nbd_seen;

static int fake_export(void *arg, const xcp_server_nbd_export *e, char *name,
                       size_t namelen, char *why, size_t whylen)
{
    (void)arg;
    (void)why;
    (void)whylen;
    nbd_seen.exports++;
    snprintf(nbd_seen.session, sizeof(nbd_seen.session), "%s", e->session);
    snprintf(nbd_seen.vdi_uuid, sizeof(nbd_seen.vdi_uuid), "%s",
             e->vdi_uuid);
    snprintf(nbd_seen.format, sizeof(nbd_seen.format), "%s", e->format);
    nbd_seen.tls = e->tls;
    nbd_seen.path_exists = access(e->path, R_OK) == 0;
    snprintf(name, namelen, "/%s?session_id=OpaqueRef:token", e->vdi_uuid);
    return 0;
}

static void fake_gone(void *arg, const char *session)
{
    (void)arg;
    nbd_seen.gone++;
    snprintf(nbd_seen.gone_session, sizeof(nbd_seen.gone_session), "%s",
             session);
}

/* Call method(session, ref, value) on every ref the call list(session)
 * returns. */
static void for_each_ref(const char *s, const char *list, const char *method,
                         const char *value)
{
    char params[512], *r, *p, ref[64];

    snprintf(params, sizeof(params), "<param><value>%s</value></param>", s);
    r = callx(list, params);
    for (p = strstr(r, "OpaqueRef:"); p; p = strstr(p + 1, "OpaqueRef:")) {
        char *one;

        snprintf(ref, sizeof(ref), "%.46s", p);
        snprintf(params, sizeof(params),
                 "<param><value>%s</value></param><param><value>%s</value>"
                 "</param><param><value>%s</value></param>",
                 s, ref, value);
        one = callx(method, params);
        free(value_of(one));
        free(one);
    }
    free(r);
}

Test(server, get_nbd_info_exports_through_the_hook_until_logout)
{
    xcp_server_nbd h = {.port = 10809,
                        .cert_pem = "-----BEGIN CERTIFICATE-----\n",
                        .subject = "host.example",
                        .export_vdi = fake_export,
                        .session_gone = fake_gone};
    char *s = login("root", "secret"), *vdi = new_vdi(s, false);
    char params[512], want[256], *r;

    memset(&nbd_seen, 0, sizeof(nbd_seen));
    snprintf(params, sizeof(params),
             "<param><value>%s</value></param><param><value>%s</value>"
             "</param>", s, vdi);
    /* No NBD server yet, then no network allowing NBD: nothing. */
    r = callx("VDI.get_nbd_info", params);
    cr_assert(strstr(r, "<array><data/></array>") ||
                  strstr(r, "<array><data></data></array>"), "%s", r);
    free(r);
    cr_assert_eq(xcp_server_set_nbd(srv, &h), 0);
    r = callx("VDI.get_nbd_info", params);
    cr_assert(!strstr(r, "exportname"), "%s", r);
    free(r);
    cr_assert_eq(nbd_seen.exports, 0);
    for_each_ref(s, "network.get_all", "network.add_purpose",
                 "insecure_nbd");
    r = callx("VDI.get_nbd_info", params);
    cr_assert_eq(nbd_seen.exports, 1, "%s", r);
    snprintf(want, sizeof(want),
             "<name>exportname</name><value>/%s?session_id=OpaqueRef:token"
             "</value>", nbd_seen.vdi_uuid);
    cr_assert(strstr(r, want), "%s", r);
    cr_assert(strstr(r, "<name>port</name><value>10809</value>"), "%s", r);
    cr_assert(strstr(r, "<name>subject</name><value>host.example</value>"),
              "%s", r);
    cr_assert(strstr(r, "<name>address</name><value>"), "%s", r);
    free(r);
    cr_assert_str_eq(nbd_seen.session, s);
    cr_assert_str_eq(nbd_seen.format, "qcow2");
    cr_assert_eq(nbd_seen.tls, 0);
    cr_assert(nbd_seen.path_exists);
    /* nbd instead: TLS */
    for_each_ref(s, "network.get_all", "network.remove_purpose",
                 "insecure_nbd");
    for_each_ref(s, "network.get_all", "network.add_purpose", "nbd");
    r = callx("VDI.get_nbd_info", params);
    cr_assert_eq(nbd_seen.exports, 2, "%s", r);
    cr_assert_eq(nbd_seen.tls, 1);
    free(r);
    /* The session's end reaches the NBD server. */
    cr_assert_eq(nbd_seen.gone, 0);
    snprintf(params, sizeof(params), "<param><value>%s</value></param>", s);
    r = callx("session.logout", params);
    free(r);
    cr_assert_eq(nbd_seen.gone, 1);
    cr_assert_str_eq(nbd_seen.gone_session, s);
    cr_assert_eq(xcp_server_set_nbd(srv, NULL), 0);
    free(vdi);
    free(s);
}
