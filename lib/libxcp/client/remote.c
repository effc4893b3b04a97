/*
 * The remote session driver: every message of the public API sent as a
 * XenAPI call to a server (our xcpd or a XAPI host), over https:// or
 * http:// with libcurl, or over a unix socket with http_unix.c, in XML-RPC
 * (default) or JSON-RPC. libcurl is loaded (dlopen) at the first http(s)
 * session: xe talking to the local xcpd, the common case, does not map it
 * nor the TLS, DNS and authentication libraries it links.
 *
 * The driver sits below xcp_call() like the local one: it receives checked
 * arguments, prepends the session, encodes with the rpc/ codecs, and gives
 * the decoded reply the shape the local engine gives it (xcp__remote_coerce)
 * so that the typed API and xe cannot tell the two apart.
 */
#include "client.h"
#include "http_unix.h"
#include "../rpc/rpc.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* Slack on top of event.from's own timeout before the reply counts as
 * lost: the server answers at its deadline, the network adds the rest. */
#define EVENT_FROM_MARGIN_MS 60000
#define DEFAULT_CONNECT_TIMEOUT_MS 30000

/* ---- libcurl, loaded at the first http(s) session ---------------------- */

static struct {
    CURLcode (*global_init)(long);
    const char *(*strerror)(CURLcode);
    CURL *(*init)(void);
    CURL *(*duphandle)(CURL *);
    void (*cleanup)(CURL *);
    CURLcode (*setopt)(CURL *, CURLoption, ...);
    CURLcode (*getinfo)(CURL *, CURLINFO, ...);
    CURLcode (*perform)(CURL *);
    CURLcode (*send)(CURL *, const void *, size_t, size_t *);
    CURLcode (*recv)(CURL *, void *, size_t, size_t *);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
    char *(*version)(void);
    char *(*escape)(CURL *, const char *, int);
    void (*free)(void *);
    bool ready;
    char why[256]; /* why it is not */
} cu;
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

/* Loads libcurl and runs curl_global_init, which is not thread-safe and
 * must run once per process. */
static void curl_init(void)
{
    static const char lib[] = "libcurl.so.4";
    const xcp__dl_sym syms[] = {
        {(void **)&cu.global_init, "curl_global_init"},
        {(void **)&cu.strerror, "curl_easy_strerror"},
        {(void **)&cu.init, "curl_easy_init"},
        {(void **)&cu.duphandle, "curl_easy_duphandle"},
        {(void **)&cu.cleanup, "curl_easy_cleanup"},
        {(void **)&cu.setopt, "curl_easy_setopt"},
        {(void **)&cu.getinfo, "curl_easy_getinfo"},
        {(void **)&cu.perform, "curl_easy_perform"},
        {(void **)&cu.send, "curl_easy_send"},
        {(void **)&cu.recv, "curl_easy_recv"},
        {(void **)&cu.slist_append, "curl_slist_append"},
        {(void **)&cu.slist_free_all, "curl_slist_free_all"},
        {(void **)&cu.version, "curl_version"},
        {(void **)&cu.escape, "curl_easy_escape"},
        {(void **)&cu.free, "curl_free"},
    };
    CURLcode cc;

    if (xcp__dl_load(lib, syms, XCP__ARRAY_LEN(syms), cu.why,
                     sizeof(cu.why)) < 0)
        return;
    if ((cc = cu.global_init(CURL_GLOBAL_DEFAULT)) != CURLE_OK) {
        snprintf(cu.why, sizeof(cu.why), "curl_global_init: %s",
                 cu.strerror(cc));
        return;
    }
    cu.ready = true;
}

/* ---- the session's connection ---------------------------------------- */

struct remote {
    CURL *curl;                 /* http(s) */
    struct curl_slist *headers;
    xcp__uhttp uh;              /* unix */
    char *uh_headers;           /* its header lines */
    xcp_remote_protocol protocol;
    char *uri;       /* as given: named in errors */
    char *host;      /* for TLS_CONNECTION_FAILED */
    char *port;
    char *url;       /* what curl fetches */
    bool is_unix;
    unsigned timeout_ms;
    int64_t next_id; /* JSON-RPC request ids */
    xcp__buf request; /* reused from call to call, as reply */
    xcp__buf reply;
    bool reply_too_big;
    char errbuf[CURL_ERROR_SIZE];
    /* xcp_session_interrupt: the session's flag; an eventfd readable while
     * it is set (the unix transport polls it); and curl's socket, shut
     * down by the interrupt (under sock_lock, which curl's close callback
     * takes too, so the descriptor is never another one by then). */
    const int *interrupted;
    int wake;
    pthread_mutex_t sock_lock;
    curl_socket_t sock;
};

static int curl_unusable(const struct remote *r, const char *why);

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    struct remote *r = arg;
    size_t len = size * n;

    if (r->reply.len + len > XCP__RPC_MAX_RESPONSE_BODY) {
        r->reply_too_big = true;
        return 0; /* aborts the transfer */
    }
    xcp__buf_add(&r->reply, p, len);
    return r->reply.oom ? 0 : len;
}

/* curl's sockets: the session's is tracked for remote_interrupt. */
static curl_socket_t on_open_socket(void *arg, curlsocktype purpose,
                                    struct curl_sockaddr *a)
{
    struct remote *r = arg;
    curl_socket_t fd;

    XCP__UNUSED(purpose);
    fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    if (fd < 0)
        return CURL_SOCKET_BAD;
    pthread_mutex_lock(&r->sock_lock);
    r->sock = fd;
    pthread_mutex_unlock(&r->sock_lock);
    return fd;
}

static int on_close_socket(void *arg, curl_socket_t fd)
{
    struct remote *r = arg;
    int rc;

    pthread_mutex_lock(&r->sock_lock);
    if (r->sock == fd)
        r->sock = CURL_SOCKET_BAD;
    rc = close(fd);
    pthread_mutex_unlock(&r->sock_lock);
    return rc;
}

/* Stops a transfer that has not reached its socket's wait yet (DNS,
 * connect): curl calls it at least once a second. */
static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut,
                       curl_off_t un)
{
    const struct remote *r = arg;

    XCP__UNUSED(dt);
    XCP__UNUSED(dn);
    XCP__UNUSED(ut);
    XCP__UNUSED(un);
    return __atomic_load_n(r->interrupted, __ATOMIC_SEQ_CST) ? 1 : 0;
}

/* A copy of the session's handle (transfers, consoles) without its
 * socket tracking: it may outlive the session (a console's relay). */
static CURL *dup_handle(struct remote *r)
{
    CURL *c = cu.duphandle(r->curl);

    if (c) {
        cu.setopt(c, CURLOPT_OPENSOCKETFUNCTION, NULL);
        cu.setopt(c, CURLOPT_CLOSESOCKETFUNCTION, NULL);
        cu.setopt(c, CURLOPT_XFERINFOFUNCTION, NULL);
        cu.setopt(c, CURLOPT_NOPROGRESS, 1L);
    }
    return c;
}

/*
 * Split uri into what curl needs. https/http: url = scheme://authority +
 * the RPC path; host and port kept for errors. unix: the socket path, and
 * a URL whose host is only there to satisfy HTTP.
 */
static int parse_uri(struct remote *r, const char *uri)
{
    const char *auth, *end, *colon;
    bool tls;
    size_t alen;

    if (strncmp(uri, "unix:", 5) == 0) {
        const char *path = uri + 5;
        /* unix:///path is what some clients write */
        if (strncmp(path, "//", 2) == 0)
            path += 2;
        if (*path != '/')
            return XCP__ERR_INVALID_VALUE("uri", uri);
        r->is_unix = true;
        r->host = xcp__strdup(path);
        r->port = xcp__strdup("");
        r->url = xcp__strdup("http://localhost");
        return (r->host && r->port && r->url) ? 0 : xcp__oom();
    }
    if (strncasecmp(uri, "https://", 8) == 0) {
        tls = true;
        auth = uri + 8;
    } else if (strncasecmp(uri, "http://", 7) == 0) {
        tls = false;
        auth = uri + 7;
    } else {
        return XCP__ERR_INVALID_VALUE("uri", uri);
    }
    /* A path after the authority is ignored: XenAPI lives at / (and
     * /jsonrpc), which is where we post. */
    alen = strcspn(auth, "/?#");
    if (alen == 0 || memchr(auth, '@', alen))
        return XCP__ERR_INVALID_VALUE("uri", uri);
    end = auth + alen;
    if (*auth == '[') { /* [v6]:port */
        const char *rb = memchr(auth, ']', alen);
        if (!rb)
            return XCP__ERR_INVALID_VALUE("uri", uri);
        r->host = xcp__strndup(auth + 1, (size_t)(rb - auth - 1));
        colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
        if (!colon && rb + 1 != end)
            return XCP__ERR_INVALID_VALUE("uri", uri);
    } else {
        colon = memchr(auth, ':', alen);
        r->host = xcp__strndup(auth, colon ? (size_t)(colon - auth) : alen);
    }
    if (colon) {
        const char *p;
        if (colon + 1 == end || end - colon > 6)
            return XCP__ERR_INVALID_VALUE("uri", uri);
        for (p = colon + 1; p < end; p++)
            if (*p < '0' || *p > '9')
                return XCP__ERR_INVALID_VALUE("uri", uri);
        r->port = xcp__strndup(colon + 1, (size_t)(end - colon - 1));
    } else {
        r->port = xcp__strdup(tls ? "443" : "80");
    }
    r->url = xcp__printf("%s://%.*s", tls ? "https" : "http", (int)alen,
                         auth);
    return (r->host && r->port && r->url) ? 0 : xcp__oom();
}

static void remote_free(struct remote *r)
{
    if (!r)
        return;
    if (r->curl)
        cu.cleanup(r->curl);
    if (r->interrupted) { /* set up */
        if (r->wake >= 0)
            close(r->wake);
        pthread_mutex_destroy(&r->sock_lock);
    }
    if (r->headers)
        cu.slist_free_all(r->headers);
    if (r->uh.path) /* set up */
        xcp__uhttp_dispose(&r->uh);
    free(r->uh_headers);
    xcp__buf_free(&r->request);
    xcp__buf_free(&r->reply);
    free(r->uri);
    free(r->host);
    free(r->port);
    free(r->url);
    free(r);
}

static int remote_setup(struct remote *r, const xcp_remote_options *o)
{
    const char *ctype = r->protocol == XCP_REMOTE_JSONRPC
                            ? "Content-Type: application/json"
                            : "Content-Type: text/xml";
    CURL *c;
    char *path, *ua;
    struct curl_slist *h;
    bool ok;

    path = xcp__printf("%s%s", r->url,
                       r->protocol == XCP_REMOTE_JSONRPC ? "/jsonrpc" : "/");
    ua = xcp__printf("User-Agent: libxcp/%s", xcp_version());
    if (!path || !ua) {
        free(path);
        free(ua);
        return xcp__oom();
    }
    free(r->url);
    r->url = path;
    if (r->is_unix) {
        r->uh_headers = xcp__printf("%s\r\n%s\r\n", ctype, ua);
        free(ua);
        if (!r->uh_headers)
            return xcp__oom();
        if (xcp__uhttp_init(&r->uh, r->host) < 0)
            return XCP_ENOMEM;
        r->uh.wake_fd = r->wake;
        return 0;
    }
    pthread_once(&curl_once, curl_init);
    if (!cu.ready) {
        free(ua);
        return curl_unusable(r, cu.why);
    }
    if (!(r->curl = c = cu.init())) {
        free(ua);
        return xcp__oom();
    }
    h = cu.slist_append(NULL, ctype);
    r->headers = h;
    /* No "Expect: 100-continue" round trip before bodies over 1 KiB. */
    h = h ? cu.slist_append(r->headers, "Expect:") : NULL;
    h = h ? cu.slist_append(r->headers, ua) : NULL;
    free(ua);
    if (!h)
        return xcp__oom();

    ok = cu.setopt(c, CURLOPT_URL, r->url) == CURLE_OK &&
         cu.setopt(c, CURLOPT_HTTPHEADER, r->headers) == CURLE_OK &&
         /* Sessions may live in threads: no SIGALRM for DNS timeouts. */
         cu.setopt(c, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
         cu.setopt(c, CURLOPT_ERRORBUFFER, r->errbuf) == CURLE_OK &&
         cu.setopt(c, CURLOPT_WRITEFUNCTION, on_data) == CURLE_OK &&
         cu.setopt(c, CURLOPT_WRITEDATA, r) == CURLE_OK &&
         cu.setopt(c, CURLOPT_OPENSOCKETFUNCTION, on_open_socket) ==
             CURLE_OK &&
         cu.setopt(c, CURLOPT_OPENSOCKETDATA, r) == CURLE_OK &&
         cu.setopt(c, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket) ==
             CURLE_OK &&
         cu.setopt(c, CURLOPT_CLOSESOCKETDATA, r) == CURLE_OK &&
         cu.setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress) == CURLE_OK &&
         cu.setopt(c, CURLOPT_XFERINFODATA, r) == CURLE_OK &&
         cu.setopt(c, CURLOPT_NOPROGRESS, 0L) == CURLE_OK &&
         cu.setopt(c, CURLOPT_POST, 1L) == CURLE_OK &&
         cu.setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                          (long)(o->connect_timeout_ms
                                     ? o->connect_timeout_ms
                                     : DEFAULT_CONNECT_TIMEOUT_MS)) ==
             CURLE_OK &&
         /* A call may legitimately take minutes (VM.start) and long polls
          * send nothing until they answer, so no low-speed limit: dead
          * peers are found by TCP keep-alive instead. */
         cu.setopt(c, CURLOPT_TCP_KEEPALIVE, 1L) == CURLE_OK &&
         cu.setopt(c, CURLOPT_TCP_KEEPIDLE, 60L) == CURLE_OK &&
         cu.setopt(c, CURLOPT_TCP_KEEPINTVL, 15L) == CURLE_OK &&
         cu.setopt(c, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
         cu.setopt(c, CURLOPT_SSL_VERIFYPEER,
                          o->insecure ? 0L : 1L) == CURLE_OK &&
         cu.setopt(c, CURLOPT_SSL_VERIFYHOST,
                          o->insecure ? 0L : 2L) == CURLE_OK;
    if (ok && o->ca_file)
        ok = cu.setopt(c, CURLOPT_CAINFO, o->ca_file) == CURLE_OK;
    if (!ok)
        return curl_unusable(r, "an option is not supported by this "
                                "build of it");
    return 0;
}

/*
 * Set a transport error: name and NULL-terminated parameters, with the
 * error's code XCP_EIO (xcp__fail records XCP_EAPI, which would tell the
 * caller the server answered). Returns XCP_EIO.
 */
static int fail_io(const char *name, ...)
{
    const char *p[4];
    size_t n = 0;
    const char *a;
    va_list ap;

    va_start(ap, name);
    while (n < XCP__ARRAY_LEN(p) && (a = va_arg(ap, const char *)) != NULL)
        p[n++] = a;
    va_end(ap);
    return xcp__fail_code(XCP_EIO, name, n, p);
}

/* A transport failure as a XenAPI-style error; returns XCP_EIO. */
/* libcurl missing, or refusing an option this build of it lacks: a
 * cause the host can mend, TRANSPORT_ERROR [uri, why]. */
static int curl_unusable(const struct remote *r, const char *why)
{
    char msg[320];

    snprintf(msg, sizeof(msg), "libcurl: %s", why);
    return fail_io("TRANSPORT_ERROR", r->uri, msg, NULL);
}

static int transport_error(struct remote *r, CURLcode cc)
{
    const char *why = r->errbuf[0] ? r->errbuf : cu.strerror(cc);
    long sent = 0;

    switch (cc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
        fail_io("CONNECTION_FAILED", r->uri, why, NULL);
        break;
    case CURLE_OPERATION_TIMEDOUT:
        /* Timed out before the request could be sent: nothing answered
         * (a reused connection has no connect time, so ask about the
         * request instead). */
        cu.getinfo(r->curl, CURLINFO_REQUEST_SIZE, &sent);
        fail_io(sent == 0 ? "CONNECTION_FAILED" : "TRANSPORT_ERROR", r->uri,
                why, NULL);
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
        fail_io("SSL_VERIFY_ERROR", why, NULL);
        break;
    case CURLE_SSL_CONNECT_ERROR:
        fail_io("TLS_CONNECTION_FAILED", r->host, r->port, NULL);
        break;
    case CURLE_WRITE_ERROR:
        if (r->reply.oom)
            return xcp__oom();
        if (r->reply_too_big) {
            fail_io("TRANSPORT_ERROR", r->uri, "reply too large", NULL);
            break;
        }
        /* fall through */
    default:
        fail_io("TRANSPORT_ERROR", r->uri, why, NULL);
        break;
    }
    return XCP_EIO;
}

/* The request in r->request sent with libcurl: 0 with *status and the
 * reply's body in r->reply, or a transport error. */
static int post_curl(struct remote *r, long timeout_ms, long *status)
{
    xcp__buf *body = &r->request;
    CURLcode cc;

    r->reply_too_big = false;
    r->errbuf[0] = '\0';
    if (cu.setopt(r->curl, CURLOPT_POSTFIELDS, body->data) != CURLE_OK ||
        cu.setopt(r->curl, CURLOPT_POSTFIELDSIZE_LARGE,
                  (curl_off_t)body->len) != CURLE_OK ||
        cu.setopt(r->curl, CURLOPT_TIMEOUT_MS, timeout_ms) != CURLE_OK)
        return curl_unusable(r, "a request option is not supported by "
                                "this build of it");
    cc = cu.perform(r->curl);
    /* curl keeps the pointer, not a copy: forget it before the buffer
     * changes. */
    cu.setopt(r->curl, CURLOPT_POSTFIELDS, NULL);
    if (cc != CURLE_OK && __atomic_load_n(r->interrupted, __ATOMIC_SEQ_CST))
        return xcp__interrupted();
    if (cc != CURLE_OK)
        return transport_error(r, cc);
    cu.getinfo(r->curl, CURLINFO_RESPONSE_CODE, status);
    return 0;
}

/* The same over the unix socket, with the errors curl gave there. */
static int post_unix(struct remote *r, long timeout_ms, long *status)
{
    const char *target = strchr(r->url + 7, '/'); /* after http:// */
    char what[80];
    int st;

    switch (xcp__uhttp_post(&r->uh, target, r->uh_headers, r->request.data,
                            r->request.len, timeout_ms, &st, &r->reply,
                            XCP__RPC_MAX_RESPONSE_BODY)) {
    case XCP__UH_OK:
        *status = st;
        return 0;
    case XCP__UH_CONNECT:
        return fail_io("CONNECTION_FAILED", r->uri, strerror(r->uh.err),
                       NULL);
    case XCP__UH_TIMEOUT:
        snprintf(what, sizeof(what),
                 "Operation timed out after %ld milliseconds", timeout_ms);
        return fail_io(r->uh.sent ? "TRANSPORT_ERROR" : "CONNECTION_FAILED",
                       r->uri, what, NULL);
    case XCP__UH_TOO_BIG:
        return fail_io("TRANSPORT_ERROR", r->uri, "reply too large", NULL);
    case XCP__UH_CLOSED:
        return fail_io("TRANSPORT_ERROR", r->uri,
                       st ? "the server closed the connection mid-reply"
                          : "Empty reply from server",
                       NULL);
    case XCP__UH_IO:
        return fail_io("TRANSPORT_ERROR", r->uri, strerror(r->uh.err),
                       NULL);
    case XCP__UH_BAD:
        return fail_io("TRANSPORT_ERROR", r->uri, "not an HTTP answer",
                       NULL);
    case XCP__UH_INTERRUPTED:
        return xcp__interrupted();
    case XCP__UH_NOMEM:
    default:
        return xcp__oom();
    }
}

/*
 * One XenAPI call: method with params (an ARRAY, borrowed), waiting at
 * most timeout_ms (0: no limit). 0 with *result the decoded value (not yet
 * coerced), or a negative code with the thread's error: the server's
 * [CODE, params...] (XCP_EAPI) or a transport error (XCP_EIO).
 */
static int rpc(struct remote *r, const char *method, const xcp_value *params,
               long timeout_ms, xcp_value *result)
{
    xcp__buf *body = &r->request;
    xcp_value error;
    const char *reply;
    long status = 0;
    char err[200];
    int rc;

    result->kind = XCP_VAL_NONE;
    error.kind = XCP_VAL_NONE;
    body->len = 0;
    body->oom = false;
    rc = r->protocol == XCP_REMOTE_JSONRPC
             ? xcp__jsonrpc_encode_request(method, params, ++r->next_id, body)
             : xcp__xmlrpc_encode_request(method, params, body);
    if (rc < 0 || body->oom) {
        xcp__buf_free(body);
        return xcp__oom();
    }
    r->reply.len = 0;
    r->reply.oom = false;
    rc = r->is_unix ? post_unix(r, timeout_ms, &status)
                    : post_curl(r, timeout_ms, &status);
    /* Keep a large buffer from lingering after a big request. */
    if (body->cap > (1u << 20))
        xcp__buf_free(body);
    if (rc < 0)
        return rc;

    err[0] = '\0';
    reply = r->reply.data ? r->reply.data : ""; /* an empty body */
    rc = r->protocol == XCP_REMOTE_JSONRPC
             ? xcp__jsonrpc_decode_response(reply, r->reply.len, result,
                                            &error, NULL, err, sizeof(err))
             : xcp__xmlrpc_decode_response(reply, r->reply.len, result,
                                           &error, err, sizeof(err));
    /* Keep a large buffer from lingering after a big reply. */
    if (r->reply.cap > (1u << 20))
        xcp__buf_free(&r->reply);
    if (rc == XCP__RPC_FAILURE) {
        rc = xcp__error_from_value(&error);
        xcp_value_dispose(&error);
        return rc < 0 ? rc : XCP_EAPI;
    }
    if (rc == XCP_ENOMEM)
        return rc;
    if (status != 200) {
        /* Whatever the body decoded to, a non-200 is not a reply. */
        char what[48];
        xcp_value_dispose(result);
        snprintf(what, sizeof(what), "HTTP status %ld", status);
        fail_io("TRANSPORT_ERROR", r->uri, what, NULL);
        return XCP_EIO;
    }
    if (rc < 0) {
        char *what = xcp__printf("not a XenAPI reply: %s", err);
        fail_io("TRANSPORT_ERROR", r->uri, what ? what : err, NULL);
        free(what);
        return XCP_EIO;
    }
    return 0;
}

/* ---- coercion of replies to the local engine's shapes ----------------- */

static int type_error(const struct xcp__type *t, const xcp_value *v)
{
    static const char *const kinds[] = {"nothing", "string", "int", "float",
                                        "bool", "datetime", "array",
                                        "struct", "record"};
    char *msg = xcp__printf("the server sent %s where %s was expected",
                            kinds[v->kind], t->spell ? t->spell : "?");
    int rc = XCP__ERR_INTERNAL_ERROR(msg ? msg : "type error");

    free(msg);
    return rc;
}

/* Replace string *v by a scalar parsed from it: the project's parser, plus
 * what servers write that the typed API does not take ("" for a field
 * with no value, booleans as 1/0). */
static int from_text(const struct xcp__type *t, xcp_value *v)
{
    const char *s = v->u.s;
    xcp_value n;
    int rc;

    if (!*s) /* a field the server had no value for: the type's zero */
        rc = xcp__value_default(t, NULL, &n);
    else if (t->kind == XT_BOOL && (!strcmp(s, "1") || !strcmp(s, "0"))) {
        xcp_value_set_bool(&n, s[0] == '1');
        rc = 0;
    } else if ((rc = xcp__scalar_parse(t, s, &n)) == XCP_EINVAL)
        return type_error(t, v);
    if (rc < 0)
        return rc;
    xcp_value_dispose(v);
    *v = n;
    return 0;
}

/* Numbers and bools where a string is wanted (a JSON server may send
 * them): their text, as the local engine would hold it. */
static int to_text(const struct xcp__type *t, xcp_value *v)
{
    char *s;

    if (v->kind == XCP_VAL_NONE)
        return xcp__value_default(t, NULL, v);
    if (v->kind == XCP_VAL_ARRAY || v->kind == XCP_VAL_STRUCT ||
        v->kind == XCP_VAL_RECORD)
        return type_error(t, v);
    if (!(s = xcp_value_to_text(v)))
        return xcp__oom();
    if (v->kind == XCP_VAL_FLOAT) { /* xe's %.3f is lossy: full form */
        char buf[40];
        xcp__format_double(buf, sizeof(buf), 17, v->u.f);
        free(s);
        if (!(s = xcp__strdup(buf)))
            return xcp__oom();
    }
    v->kind = XCP_VAL_STRING;
    v->u.s = s;
    return 0;
}

/* A record's field from the server: coerced as its type; absent or null
 * (an older server), the model's default. */
static int coerce_field(const struct xcp__field *f, xcp_value *fv, bool sent,
                        void *arg)
{
    (void)sent;
    (void)arg;
    if (fv->kind == XCP_VAL_NONE)
        return xcp__value_default(f->type, f->def, fv);
    return xcp__remote_coerce(f->type, fv);
}

static int coerce_record(const struct xcp__type *t, xcp_value *v)
{
    if (v->kind == XCP_VAL_RECORD && v->u.rec.cls == t->id)
        return 0;
    if (v->kind != XCP_VAL_STRUCT)
        return type_error(t, v);
    return xcp__rec_from_struct(v, t->id, coerce_field, NULL);
}

int xcp__remote_coerce(const struct xcp__type *t, xcp_value *v)
{
    size_t i;
    int rc;

    switch (t->kind) {
    case XT_VOID:
        /* Void replies come as "" (or null in JSON): no value. */
        xcp_value_dispose(v);
        return 0;
    case XT_STRING:
    case XT_REF:
        return v->kind == XCP_VAL_STRING ? 0 : to_text(t, v);
    case XT_INT:
        if (v->kind == XCP_VAL_INT)
            return 0;
        /* JSON has one number type: 3.0 may stand for an int. */
        if (v->kind == XCP_VAL_FLOAT && v->u.f >= -9.2e18 &&
            v->u.f <= 9.2e18 && v->u.f == (double)(int64_t)v->u.f) {
            xcp_value_set_int(v, (int64_t)v->u.f);
            return 0;
        }
        break;
    case XT_FLOAT:
        if (xcp__value_as_float(v))
            return 0;
        break;
    case XT_BOOL:
        if (v->kind == XCP_VAL_BOOL)
            return 0;
        if (v->kind == XCP_VAL_INT) {
            xcp_value_set_bool(v, v->u.i != 0);
            return 0;
        }
        break;
    case XT_DATETIME:
        if (v->kind == XCP_VAL_DATETIME)
            return 0;
        break;
    case XT_ENUM:
        if (v->kind != XCP_VAL_STRING)
            return type_error(t, v);
        /* Canonical spelling; values from a newer server kept as sent. */
        rc = xcp__enum_canon(&xcp__enums[t->id], &v->u.s);
        return rc == XCP_ENOMEM ? rc : 0;
    case XT_SET:
        if (v->kind == XCP_VAL_NONE)
            return xcp_value_set_array(v, 0);
        if (v->kind != XCP_VAL_ARRAY)
            return type_error(t, v);
        for (i = 0; i < v->u.arr.n; i++)
            if ((rc = xcp__remote_coerce(t->a, &v->u.arr.items[i])) < 0)
                return rc;
        return 0;
    case XT_MAP:
        if (v->kind == XCP_VAL_NONE) {
            xcp_value_set_struct(v);
            return 0;
        }
        if (v->kind != XCP_VAL_STRUCT)
            return type_error(t, v);
        for (i = 0; i < v->u.st.n; i++) {
            /* Enum keys in their canonical spelling, as stored locally. */
            if (t->a->kind == XT_ENUM &&
                xcp__enum_canon(&xcp__enums[t->a->id], &v->u.st.keys[i]) ==
                    XCP_ENOMEM)
                return XCP_ENOMEM;
            if ((rc = xcp__remote_coerce(t->b, &v->u.st.vals[i])) < 0)
                return rc;
        }
        return 0;
    case XT_RECORD:
        return coerce_record(t, v);
    default: /* XT_ANY: as sent */
        return 0;
    }
    /* Scalars that came as text (XML-RPC ints, JSON datetimes). */
    if (v->kind == XCP_VAL_STRING)
        return from_text(t, v);
    if (v->kind == XCP_VAL_NONE)
        return xcp__value_default(t, NULL, v);
    return type_error(t, v);
}

/* One event (event.from's or event.next's): the snapshot becomes a record
 * of the event's class and the id a string, as the local engine has them. */
static int coerce_event(xcp_value *ev)
{
    xcp_value *cls = NULL, *snap = NULL;
    size_t i;
    int rc, c;

    if (ev->kind != XCP_VAL_STRUCT)
        return 0;
    for (i = 0; i < ev->u.st.n; i++) {
        const char *k = ev->u.st.keys[i];
        xcp_value *val = &ev->u.st.vals[i];
        if (!strcmp(k, "class"))
            cls = val;
        else if (!strcmp(k, "snapshot"))
            snap = val;
        else if ((!strcmp(k, "id") || !strcmp(k, "timestamp")) &&
                 val->kind != XCP_VAL_STRING &&
                 (rc = to_text(&xcp__T_string, val)) < 0)
            return rc;
    }
    if (!cls || cls->kind != XCP_VAL_STRING || !snap ||
        snap->kind != XCP_VAL_STRUCT)
        return 0;
    c = xcp_class_by_name(cls->u.s);
    if (c < 0) /* a class we do not model: leave its snapshot a struct */
        return 0;
    {
        struct xcp__type rt = {XT_RECORD, XC_RECORD, (int16_t)c, NULL, NULL,
                               "record", xcp__classes[c].rec_size};
        return coerce_record(&rt, snap);
    }
}

static int coerce_events(xcp_value *events)
{
    size_t i;
    int rc;

    if (events->kind != XCP_VAL_ARRAY)
        return 0;
    for (i = 0; i < events->u.arr.n; i++)
        if ((rc = coerce_event(&events->u.arr.items[i])) < 0)
            return rc;
    return 0;
}

int xcp__remote_coerce_result(int mid, xcp_value *v)
{
    const struct xcp__message *m = &xcp__messages[mid];

    if (m->ret->kind == XT_ANY && m->cls == XCP__C_event) {
        if (!strcmp(m->wire, "event.next"))
            return coerce_events(v);
        if (!strcmp(m->wire, "event.from") && v->kind == XCP_VAL_STRUCT) {
            static const struct xcp__type counts = {
                XT_MAP, XC_STRMAP, -1, &xcp__T_string, &xcp__T_int,
                "map:string:int", sizeof(xcp_string_map)};
            xcp_value *evs = (xcp_value *)xcp_value_struct_get(v, "events");
            xcp_value *vrc =
                (xcp_value *)xcp_value_struct_get(v, "valid_ref_counts");
            int rc = evs ? coerce_events(evs) : 0;
            /* Counts are <i4> from XAPI; a server writing them as plain
             * XML-RPC strings still gives ints. */
            if (rc == 0 && vrc && vrc->kind == XCP_VAL_STRUCT)
                rc = xcp__remote_coerce(&counts, vrc);
            return rc;
        }
        return 0;
    }
    return xcp__remote_coerce(m->ret, v);
}

/* ---- the session driver ------------------------------------------------ */

/* How long a call may take: event.from at least its own timeout. */
static long call_timeout(const struct remote *r, int mid, size_t nargs,
                         const xcp_value *args)
{
    const struct xcp__message *m = &xcp__messages[mid];
    long t = (long)r->timeout_ms;

    if (!strcmp(m->wire, "event.from") && nargs >= 3 &&
        args[2].kind == XCP_VAL_FLOAT && args[2].u.f >= 0 &&
        args[2].u.f < 1e7) {
        long need = (long)(args[2].u.f * 1000) + EVENT_FROM_MARGIN_MS;
        if (t && t < need)
            t = need;
    } else if (!strcmp(m->wire, "event.next")) {
        t = 0; /* blocks until something happens */
    }
    return t;
}

static int remote_invoke(xcp_session *s, int mid, bool async, size_t nargs,
                         xcp_value *args, xcp_value *result)
{
    const struct xcp__message *m = &xcp__messages[mid];
    struct remote *r = s->priv;
    bool with_session = !(m->flags & XMF_NOSESSION);
    xcp_value params;
    char *method = NULL;
    size_t i, n = nargs + (with_session ? 1 : 0);
    int rc;

    result->kind = XCP_VAL_NONE;
    /* The params array borrows the caller's arguments (no deep copy of
     * possibly large values); only the session string is ours. */
    params.kind = XCP_VAL_ARRAY;
    params.u.arr.n = n;
    params.u.arr.items = xcp__calloc(n ? n : 1, sizeof(xcp_value));
    if (!params.u.arr.items)
        return xcp__oom();
    if (with_session) {
        params.u.arr.items[0].kind = XCP_VAL_STRING;
        params.u.arr.items[0].u.s = s->ref;
    }
    for (i = 0; i < nargs; i++)
        params.u.arr.items[n - nargs + i] = args[i];
    if (async && !(method = xcp__printf("Async.%s", m->wire))) {
        rc = xcp__oom();
        goto out;
    }
    rc = rpc(r, async ? method : m->wire, &params,
             call_timeout(r, mid, nargs, args), result);
    if (rc < 0)
        goto out;
    if (async) {
        if (result->kind != XCP_VAL_STRING) {
            xcp_value_dispose(result);
            rc = XCP__ERR_INTERNAL_ERROR(
                "the server did not answer an Async call with "
                "a task");
        }
    } else if ((rc = xcp__remote_coerce_result(mid, result)) < 0) {
        xcp_value_dispose(result);
    }
out:
    free(method);
    free(params.u.arr.items);
    return rc;
}

/* xcp_session_interrupt: the unix transport's poll wakes on r->wake;
 * curl's wait ends with its socket shut down (the connection is lost
 * either way: the next call opens another). Resuming empties r->wake. */
static void remote_interrupt(xcp_session *s, bool on)
{
    struct remote *r = s->priv;
    uint64_t one = 1;

    ssize_t n;

    if (!on) {
        n = read(r->wake, &one, sizeof(one)); /* EAGAIN: it was empty */
        XCP__UNUSED(n);
        return;
    }
    n = write(r->wake, &one, sizeof(one)); /* EAGAIN: full, so readable */
    XCP__UNUSED(n);
    pthread_mutex_lock(&r->sock_lock);
    if (r->sock != CURL_SOCKET_BAD)
        shutdown(r->sock, SHUT_RDWR);
    pthread_mutex_unlock(&r->sock_lock);
}

static void remote_close(xcp_session *s)
{
    struct remote *r = s->priv;
    xcp__saved_error saved;
    xcp_value params, res;

    /* Closing must not replace the error the caller may still read. */
    xcp__error_save(&saved);
    if (s->ref[0]) {
        params.kind = XCP_VAL_ARRAY;
        params.u.arr.n = 1;
        params.u.arr.items = &(xcp_value){.kind = XCP_VAL_STRING,
                                          .u.s = s->ref};
        if (rpc(r, "session.logout", &params, (long)r->timeout_ms, &res) ==
            0)
            xcp_value_dispose(&res);
    }
    xcp__error_restore(&saved);
    remote_free(r);
    s->priv = NULL;
}

/* xcp_get_records_fields in one call: xcpd takes the field list as a
 * further argument of get_all_records_where (and sends only those
 * fields); 1 when the server does not (XAPI counts the arguments). */
static int remote_records_fields(xcp_session *s, int cls, const char *where,
                                 const int *fields, size_t n,
                                 const xcp_value *names, xcp_value *result)
{
    struct remote *r = s->priv;
    const struct xcp__class *c = &xcp__classes[cls];
    xcp_value items[3], params;
    const xcp_error *e;
    char wire[128];
    size_t i, j;
    int rc = 0;

    result->kind = XCP_VAL_NONE;
    /* Borrowed, as in remote_invoke: nothing here is freed. */
    items[0].kind = items[1].kind = XCP_VAL_STRING;
    items[0].u.s = s->ref;
    items[1].u.s = (char *)(where ? where : "true");
    items[2] = *names;
    params.kind = XCP_VAL_ARRAY;
    params.u.arr.n = 3;
    params.u.arr.items = items;
    snprintf(wire, sizeof(wire), "%s.get_all_records_where", c->name);
    if ((rc = rpc(r, wire, &params, (long)r->timeout_ms, result)) < 0) {
        e = xcp_error_last();
        if (e && !strcmp(e->name, "MESSAGE_PARAMETER_COUNT_MISMATCH"))
            return 1;
        return rc;
    }
    if (result->kind != XCP_VAL_STRUCT)
        rc = XCP__ERR_INTERNAL_ERROR("the server did not answer "
                                     "get_all_records_where with a map");
    for (i = 0; rc == 0 && i < result->u.st.n; i++) {
        xcp_value *rec = &result->u.st.vals[i];
        if (rec->kind != XCP_VAL_STRUCT) {
            rc = XCP__ERR_INTERNAL_ERROR("the server sent a record "
                                         "that is not a struct");
            break;
        }
        for (j = 0; rc == 0 && j < rec->u.st.n; j++) {
            /* Among the few fields asked for, not the whole class. */
            size_t k;
            for (k = 0; k < n; k++)
                if (!strcmp(c->fields[fields[k]].name, rec->u.st.keys[j]))
                    break;
            if (k < n)
                rc = xcp__remote_coerce(c->fields[fields[k]].type,
                                        &rec->u.st.vals[j]);
        }
    }
    if (rc < 0)
        xcp_value_dispose(result);
    return rc;
}

/* ---- consoles: CONNECT /console ----------------------------------------- */

/* A console's connection: libcurl's (http, https), or a unix socket's
 * own (c NULL). */
struct conn {
    CURL *c;
    int fd;
};

/* Waits until the socket can do what `events` asks (30 s at most). */
static bool console_wait(const struct conn *k, short events)
{
    curl_socket_t fd = k->fd;
    struct pollfd pf;

    if (k->c && (cu.getinfo(k->c, CURLINFO_ACTIVESOCKET, &fd) != CURLE_OK ||
                 fd == CURL_SOCKET_BAD))
        return false;
    pf.fd = fd;
    pf.events = events;
    return poll(&pf, 1, 30000) > 0;
}

/* Sends or receives up to n bytes without waiting: curl_easy_send/recv's
 * contract for either kind of connection. */
static CURLcode console_io(const struct conn *k, bool out, char *p, size_t n,
                           size_t *done)
{
    ssize_t got;

    if (k->c)
        return out ? cu.send(k->c, p, n, done) : cu.recv(k->c, p, n, done);
    got = out ? send(k->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT)
              : recv(k->fd, p, n, MSG_DONTWAIT);
    if (got >= 0) {
        *done = (size_t)got;
        return CURLE_OK;
    }
    if (errno == EAGAIN || errno == EINTR)
        return CURLE_AGAIN;
    return out ? CURLE_SEND_ERROR : CURLE_RECV_ERROR;
}

static CURLcode console_send(const struct conn *k, const char *p, size_t n)
{
    size_t sent;
    CURLcode cc;

    while (n > 0) {
        cc = console_io(k, true, (char *)p, n, &sent);
        if (cc == CURLE_AGAIN) {
            if (!console_wait(k, POLLOUT))
                return CURLE_OPERATION_TIMEDOUT;
            continue;
        }
        if (cc != CURLE_OK)
            return cc;
        p += sent;
        n -= sent;
    }
    return CURLE_OK;
}

/* One byte (nothing read past the response head); CURLE_GOT_NOTHING at
 * the end. */
static CURLcode console_byte(const struct conn *k, char *ch)
{
    size_t got;
    CURLcode cc;

    for (;;) {
        cc = console_io(k, false, ch, 1, &got);
        if (cc == CURLE_AGAIN) {
            if (!console_wait(k, POLLIN))
                return CURLE_OPERATION_TIMEDOUT;
            continue;
        }
        if (cc == CURLE_OK && got == 0)
            return CURLE_GOT_NOTHING;
        return cc;
    }
}

/* A console connection's failure cc as a transport error. */
static int console_fail(struct remote *r, CURLcode cc)
{
    if (!r->is_unix)
        return transport_error(r, cc);
    return fail_io("TRANSPORT_ERROR", r->uri,
                   cc == CURLE_GOT_NOTHING ? "Empty reply from server"
                   : cc == CURLE_OPERATION_TIMEDOUT ? "Operation timed out"
                                                    : strerror(errno),
                   NULL);
}

/* A refusal's body, "NAME: p1, p2" (xcpd's; body is changed), as the
 * thread's error; any other as TRANSPORT_ERROR [uri, "HTTP <status>"]. */
static int refusal(struct remote *r, char *body, int status)
{
    char *p, *params[XCP__ERROR_MAX_PARAMS], *colon, *nl;
    const char *cp[XCP__ERROR_MAX_PARAMS];
    size_t n = 0;
    char what[32];

    if ((nl = strchr(body, '\n')))
        *nl = '\0';
    colon = strstr(body, ": ");
    if (colon)
        *colon = '\0';
    for (p = body; *p && (isupper((unsigned char)*p) || *p == '_'); p++)
        ;
    if (*p || !*body) {
        snprintf(what, sizeof(what), "HTTP %d", status);
        return fail_io("TRANSPORT_ERROR", r->uri, what, NULL);
    }
    for (p = colon ? colon + 2 : NULL; p && n < XCP__ERROR_MAX_PARAMS;) {
        params[n++] = p;
        if ((p = strstr(p, ", ")))
            *p = '\0', p += 2;
    }
    memcpy(cp, params, n * sizeof(cp[0]));
    return xcp__failv(body, n, cp);
}

static int console_refused(struct remote *r, const struct conn *c,
                           int status)
{
    char body[2048];
    size_t len = 0;

    while (len + 1 < sizeof(body) && console_byte(c, &body[len]) == CURLE_OK)
        len++;
    body[len] = '\0';
    return refusal(r, body, status);
}

/* CONNECT on c (connected) and the status of the answer's head. */
static int console_request(struct remote *r, const struct conn *c,
                           const char *session, const char *ref, int *status)
{
    char *req, line[256], ch;
    size_t len = 0, nl = 0;
    CURLcode cc;

    req = xcp__printf("CONNECT /console?ref=%s&session_id=%s HTTP/1.0\r\n"
                      "Host: %s\r\ncontent-length: 0\r\n\r\n",
                      ref, session, r->is_unix ? "localhost" : r->host);
    if (!req)
        return xcp__oom();
    cc = console_send(c, req, strlen(req));
    free(req);
    *status = 0;
    /* the head, a byte at a time: what follows is the console's */
    while (cc == CURLE_OK && nl < 2 && (cc = console_byte(c, &ch)) ==
                                           CURLE_OK) {
        if (*status == 0 && len + 1 < sizeof(line) && ch != '\n')
            line[len++] = ch;
        if (*status == 0 && ch == '\n') {
            line[len] = '\0';
            if (sscanf(line, "HTTP/%*d.%*d %d", status) != 1)
                *status = -1;
        }
        nl = ch == '\n' ? nl + 1 : ch == '\r' ? nl : 0;
    }
    if (cc != CURLE_OK)
        return console_fail(r, cc);
    if (*status <= 0)
        return fail_io("TRANSPORT_ERROR", r->uri, "not an HTTP answer",
                       NULL);
    return 0;
}

/* https: the stream's bytes go through TLS here, a thread per console. */
struct console_relay {
    CURL *c;
    int fd; /* our end of the caller's socketpair */
};

static void *console_relay_run(void *arg)
{
    struct console_relay *cr = arg;
    curl_socket_t net;
    struct pollfd pf[2];
    char buf[16384];
    size_t got;
    ssize_t n;
    CURLcode cc;
    bool go = cu.getinfo(cr->c, CURLINFO_ACTIVESOCKET, &net) ==
              CURLE_OK;

    pf[0].fd = net;
    pf[0].events = POLLIN;
    pf[1].fd = cr->fd;
    pf[1].events = POLLIN;
    while (go) {
        /* TLS may hold decrypted bytes poll cannot see: drain first */
        while (go && (cc = cu.recv(cr->c, buf, sizeof(buf), &got)) ==
                         CURLE_OK) {
            go = got > 0 && send(cr->fd, buf, got, MSG_NOSIGNAL) ==
                                (ssize_t)got;
        }
        if (!go || (cc != CURLE_AGAIN && cc != CURLE_OK) ||
            poll(pf, 2, -1) < 0)
            break;
        if (pf[1].revents) {
            n = recv(cr->fd, buf, sizeof(buf), 0);
            go = n > 0 && console_send(&(struct conn){cr->c, -1}, buf,
                                       (size_t)n) == CURLE_OK;
        }
    }
    close(cr->fd);
    cu.cleanup(cr->c);
    free(cr);
    return NULL;
}

/* The connected stream as a plain socket the caller owns. */
static int console_handover(CURL *c, bool tls, int *fd)
{
    curl_socket_t net;
    struct console_relay *cr;
    pthread_attr_t a;
    pthread_t th;
    int sv[2], rc;

    if (!tls) {
        if (cu.getinfo(c, CURLINFO_ACTIVESOCKET, &net) != CURLE_OK ||
            (*fd = fcntl(net, F_DUPFD_CLOEXEC, 0)) < 0)
            return xcp__internal("console: no socket to hand over");
        cu.cleanup(c);
        return 0;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return xcp__internal("console: socketpair: %s", strerror(errno));
    if (!(cr = xcp__calloc(1, sizeof(*cr)))) {
        close(sv[0]);
        close(sv[1]);
        return xcp__oom();
    }
    cr->c = c;
    cr->fd = sv[1];
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&th, &a, console_relay_run, cr);
    pthread_attr_destroy(&a);
    if (rc != 0) {
        close(sv[0]);
        close(sv[1]);
        free(cr);
        return xcp__internal("console: no thread: %s", strerror(rc));
    }
    *fd = sv[0];
    return 0;
}

static int remote_console_open(xcp_session *s, const char *ref, int *fd)
{
    struct remote *r = s->priv;
    bool tls = !r->is_unix && strncasecmp(r->url, "https", 5) == 0;
    struct conn k = {NULL, -1};
    CURL *c;
    CURLcode cc;
    int rc, status;

    if (r->is_unix) {
        if ((rc = xcp__uhttp_connect(r->host, &k.fd)) != 0)
            return fail_io("CONNECTION_FAILED", r->uri, strerror(rc), NULL);
        if ((rc = console_request(r, &k, s->ref, ref, &status)) == 0 &&
            status != 200)
            rc = console_refused(r, &k, status);
        if (rc == 0) {
            *fd = k.fd; /* the stream, as it is */
            return 0;
        }
        close(k.fd);
        return rc;
    }
    if (!(k.c = c = dup_handle(r)))
        return xcp__oom();
    r->errbuf[0] = '\0';
    if (cu.setopt(c, CURLOPT_CONNECT_ONLY, 1L) != CURLE_OK ||
        cu.setopt(c, CURLOPT_TIMEOUT_MS, 0L) != CURLE_OK) {
        cu.cleanup(c);
        return xcp__internal("console: libcurl refused CONNECT_ONLY");
    }
    if ((cc = cu.perform(c)) != CURLE_OK) {
        rc = transport_error(r, cc);
    } else if ((rc = console_request(r, &k, s->ref, ref, &status)) == 0 &&
               status != 200) {
        rc = console_refused(r, &k, status);
    } else if (rc == 0) {
        return console_handover(c, tls, fd); /* c is taken */
    }
    cu.cleanup(c);
    return rc;
}

/* ---- VDI transfers: /import_raw_vdi, /export_raw_vdi ------------------ */

struct xfer {
    int fd;
    bool import;
    int err;                 /* errno of the file */
    uint64_t total;
    uint64_t done;
    char body[2048];         /* a refusal's (non-200) body */
    size_t body_len;
    long status;
    xcp_transfer_progress progress;
    void *progress_ctx;
    int64_t last_ms;
};

static size_t xfer_read(char *p, size_t size, size_t n, void *arg)
{
    struct xfer *x = arg;
    ssize_t got;

    do
        got = read(x->fd, p, size * n);
    while (got < 0 && errno == EINTR);
    if (got < 0) {
        x->err = errno;
        return CURL_READFUNC_ABORT;
    }
    return (size_t)got;
}

static size_t xfer_write(char *p, size_t size, size_t n, void *arg)
{
    struct xfer *x = arg;
    size_t len = size * n, k;
    ssize_t w;

    if (x->import || x->status != 200) {
        /* an answer's body: kept for the error */
        k = len < sizeof(x->body) - 1 - x->body_len
                ? len : sizeof(x->body) - 1 - x->body_len;
        memcpy(x->body + x->body_len, p, k);
        x->body_len += k;
        return len;
    }
    for (k = 0; k < len; k += (size_t)w) {
        w = write(x->fd, p + k, len - k);
        if (w < 0 && errno == EINTR) {
            w = 0;
            continue;
        }
        if (w <= 0) {
            x->err = w < 0 ? errno : EIO;
            return 0;
        }
    }
    return len;
}

static int xfer_info(void *arg, curl_off_t dltotal, curl_off_t dlnow,
                     curl_off_t ultotal, curl_off_t ulnow)
{
    struct xfer *x = arg;
    int64_t now = xcp__now_ms();
    uint64_t total = (uint64_t)(x->import ? ultotal : dltotal);

    x->done = (uint64_t)(x->import ? ulnow : dlnow);
    if (total)
        x->total = total;
    if (x->progress && now - x->last_ms >= 250) {
        x->last_ms = now;
        x->progress(x->progress_ctx, x->done, x->total);
    }
    return 0;
}

/* Where the body must go: only 200 answers carry an export's data. */
static size_t xfer_header(char *p, size_t size, size_t n, void *arg)
{
    struct xfer *x = arg;

    if (size * n > 9 && strncmp(p, "HTTP/", 5) == 0) {
        const char *sp = memchr(p, ' ', size * n);

        x->status = sp ? strtol(sp + 1, NULL, 10) : 0;
    }
    return size * n;
}

/* A libcurl handle for a transfer on r's connection: a copy of an
 * http(s) session's, or (a unix: session, which speaks its RPCs without
 * libcurl) one on the session's socket, libcurl loaded now. */
static int xfer_handle(struct remote *r, CURL **out)
{
    CURL *c;

    *out = NULL;
    if (r->curl) {
        if (!(*out = dup_handle(r)))
            return xcp__oom();
        return 0;
    }
    pthread_once(&curl_once, curl_init);
    if (!cu.ready)
        return curl_unusable(r, cu.why);
    if (!(c = cu.init()))
        return xcp__oom();
    if (cu.setopt(c, CURLOPT_UNIX_SOCKET_PATH, r->host) != CURLE_OK ||
        cu.setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        cu.setopt(c, CURLOPT_ERRORBUFFER, r->errbuf) != CURLE_OK) {
        cu.cleanup(c);
        return curl_unusable(r, "this build of it has no unix sockets");
    }
    *out = c;
    return 0;
}

/* PUT (import: fd read to its end) or GET (fd written) the server's
 * handler at path with query (escaped; the session is added) on c,
 * which is consumed: XAPI's transfer handlers. */
static int http_transfer(xcp_session *s, CURL *c, const char *path,
                         const char *query, bool import, int fd,
                         xcp_transfer_progress progress, void *pctx)
{
    struct remote *r = s->priv;
    struct xfer x;
    struct curl_slist *h = NULL;
    struct stat st;
    char *url, *es;
    const char *auth;
    CURLcode cc;
    int rc = 0;

    memset(&x, 0, sizeof(x));
    x.fd = fd;
    x.import = import;
    x.progress = progress;
    x.progress_ctx = pctx;
    es = cu.escape(c, s->ref, 0);
    /* r->url is the RPC's: scheme://authority + its path */
    auth = strstr(r->url, "://");
    auth = auth ? auth + 3 : r->url;
    url = es ? xcp__printf("%.*s/%s?%s&session_id=%s",
                           (int)(auth - r->url + strcspn(auth, "/")),
                           r->url, path, query, es)
             : NULL;
    cu.free(es);
    h = cu.slist_append(NULL, "Expect:");
    if (!url || !h) {
        cu.slist_free_all(h);
        free(url);
        cu.cleanup(c);
        return xcp__oom();
    }
    r->errbuf[0] = '\0';
    cu.setopt(c, CURLOPT_URL, url);
    cu.setopt(c, CURLOPT_HTTPHEADER, h);
    cu.setopt(c, CURLOPT_TIMEOUT_MS, 0L);
    cu.setopt(c, CURLOPT_WRITEFUNCTION, xfer_write);
    cu.setopt(c, CURLOPT_WRITEDATA, &x);
    cu.setopt(c, CURLOPT_HEADERFUNCTION, xfer_header);
    cu.setopt(c, CURLOPT_HEADERDATA, &x);
    cu.setopt(c, CURLOPT_NOPROGRESS, 0L);
    cu.setopt(c, CURLOPT_XFERINFOFUNCTION, xfer_info);
    cu.setopt(c, CURLOPT_XFERINFODATA, &x);
    /* A stalled peer fails the transfer rather than hang it. */
    cu.setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    cu.setopt(c, CURLOPT_LOW_SPEED_TIME, 120L);
    if (import) {
        cu.setopt(c, CURLOPT_UPLOAD, 1L);
        cu.setopt(c, CURLOPT_READFUNCTION, xfer_read);
        cu.setopt(c, CURLOPT_READDATA, &x);
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
            x.total = (uint64_t)st.st_size;
            cu.setopt(c, CURLOPT_INFILESIZE_LARGE,
                             (curl_off_t)st.st_size);
        }
    } else {
        cu.setopt(c, CURLOPT_HTTPGET, 1L);
    }
    cc = cu.perform(c);
    if (x.err) {
        rc = XCP__ERR_VDI_IO_ERROR(strerror(x.err));
    } else if (cc != CURLE_OK && x.status == 200) {
        rc = transport_error(r, cc);
    } else if (x.status != 200 && x.status != 0) {
        x.body[x.body_len] = '\0';
        rc = refusal(r, x.body, (int)x.status);
    } else if (cc != CURLE_OK) {
        rc = transport_error(r, cc);
    } else if (progress) {
        progress(pctx, x.done, x.total ? x.total : x.done);
    }
    cu.slist_free_all(h);
    free(url);
    cu.cleanup(c);
    return rc;
}

/* "k1=v1&k2=v2..." of n pairs, values escaped for c (NULL ones left
 * out); free() it. */
static char *query_of(CURL *c, const char *const *kv, size_t n)
{
    xcp__buf b = {0};
    size_t i;
    char *e;

    for (i = 0; i + 1 < 2 * n; i += 2) {
        if (!kv[i + 1])
            continue;
        if (!(e = cu.escape(c, kv[i + 1], 0))) {
            xcp__buf_free(&b);
            return NULL;
        }
        xcp__buf_printf(&b, "%s%s=%s", b.len ? "&" : "", kv[i], e);
        cu.free(e);
    }
    if (b.oom) {
        xcp__buf_free(&b);
        return NULL;
    }
    return b.len ? xcp__buf_steal(&b) : xcp__strdup("");
}

/* Make a handle, the query of the pairs, and transfer. */
static int http_transfer_kv(xcp_session *s, const char *path,
                            const char *const *kv, size_t n, bool import,
                            int fd, xcp_transfer_progress progress,
                            void *pctx)
{
    CURL *c;
    char *q;
    int rc;

    if ((rc = xfer_handle(s->priv, &c)) < 0)
        return rc;
    if (!(q = query_of(c, kv, n))) {
        cu.cleanup(c);
        return xcp__oom();
    }
    rc = http_transfer(s, c, path, q, import, fd, progress, pctx);
    free(q);
    return rc;
}

/* Destroy a task of ours, keeping the thread's error. */
static void drop_task(xcp_session *s, xcp_task task)
{
    xcp__saved_error saved;

    xcp__error_save(&saved);
    xcp_task_destroy(s, task);
    xcp__error_restore(&saved);
}

/* A transfer through a task of ours (task_id=, kv[0..1]), destroyed when
 * it ends as XAPI's xe does (track_http_operation): a handler given no
 * task makes one that outlives the transfer. */
static int tasked_transfer(xcp_session *s, const char *label,
                           const char *path, const char **kv, size_t n,
                           bool import, int fd,
                           xcp_transfer_progress progress, void *pctx)
{
    xcp_task task;
    int rc;

    if ((rc = xcp_task_create(s, &task, label, "")) < 0)
        return rc;
    kv[1] = task.ref;
    rc = http_transfer_kv(s, path, kv, n, import, fd, progress, pctx);
    drop_task(s, task);
    return rc;
}

static int remote_vdi_transfer(xcp_session *s, const char *vdi, bool import,
                               int fd, const xcp_vdi_transfer_options *o)
{
    const char *kv[] = {
        "task_id", NULL,
        "vdi", vdi,
        "format", o->format && *o->format ? o->format : "raw",
        "base", !import && o->version >= 2 ? o->base : NULL};

    return tasked_transfer(s, import ? "VDI import" : "VDI export",
                           import ? "import_raw_vdi" : "export_raw_vdi",
                           kv, 4, import, fd, o->progress, o->progress_ctx);
}

/* XAPI's /export (or /export_metadata), as its xe does. */
static int remote_vm_export(xcp_session *s, const char *vm, int fd,
                            const xcp_vm_export_options *o)
{
    const char *kv[] = {
        "task_id", NULL,
        "ref", vm,
        "use_compression", o->compression && *o->compression
                               ? o->compression : NULL,
        "export_snapshots", o->no_snapshots ? "false" : NULL,
        "preserve_power_state", o->preserve_power_state ? "true" : NULL};

    return tasked_transfer(s, "VM export",
                           o->metadata_only ? "export_metadata" : "export",
                           kv, 5, false, fd, o->progress, o->progress_ctx);
}

/* XAPI's /import (or /import_metadata) into a task of ours, whose
 * result names the VMs made. */
static int remote_vm_import(xcp_session *s, int fd,
                            const xcp_vm_import_options *o, xcp_value *vms)
{
    const char *kv[] = {
        "task_id", NULL,
        "sr_id", o->sr.ref[0] ? o->sr.ref : NULL,
        "restore", o->restore ? "true" : NULL,
        "force", o->force ? "true" : NULL};
    xcp_task task;
    int rc;

    vms->kind = XCP_VAL_NONE;
    if ((rc = xcp_task_create(s, &task, "VM import", "")) < 0)
        return rc;
    kv[1] = task.ref;
    rc = http_transfer_kv(s, o->metadata ? "import_metadata" : "import",
                          kv, 4, true, fd, o->progress, o->progress_ctx);
    /* XAPI's /import answers 200 before it reads the body: the outcome
     * is the task's alone (its error, or the VMs in its result). */
    if (rc == 0 && (rc = xcp_task_wait(s, vms, task.ref)) == 0 &&
        vms->kind != XCP_VAL_ARRAY) {
        xcp_value_dispose(vms);
        rc = XCP__ERR_IMPORT_ERROR("no VMs in the task's result");
    }
    drop_task(s, task);
    return rc;
}

/* XAPI's other handlers (/blob...): no task, as XAPI's xe has none. */
static int remote_handler(xcp_session *s, const char *path,
                          const char *const *kv, size_t n, bool put, int fd)
{
    return http_transfer_kv(s, path + (*path == '/'), kv, n, put, fd, NULL,
                            NULL);
}

static const struct xcp__session_ops remote_ops = {
    remote_invoke, remote_close, remote_records_fields, remote_console_open,
    remote_vdi_transfer, remote_vm_export, remote_vm_import,
    remote_interrupt, remote_handler};

/* Open a remote session logging in with method(args...); args NULL:
 * login_with_password from the options. */
static int open_remote(xcp_session **out, const xcp_remote_options *o,
                       const char *method, size_t nlogin,
                       const xcp_value *login)
{
    struct remote *r = NULL;
    xcp_session *s = NULL;
    xcp_value args[4], params, res;
    int rc;

    xcp_error_clear();
    if (!out)
        return XCP__ERR_INVALID_VALUE("out", "");
    *out = NULL;
    if (!o || o->version != XCP_REMOTE_OPTIONS_VERSION)
        return XCP__ERR_INVALID_VALUE("xcp_remote_options.version", "");
    if (!o->uri)
        return XCP__ERR_INVALID_VALUE("uri", "");
    if (o->protocol != XCP_REMOTE_XMLRPC && o->protocol != XCP_REMOTE_JSONRPC)
        return XCP__ERR_INVALID_VALUE("xcp_remote_options.protocol", "");
    if (!(r = xcp__calloc(1, sizeof(*r))) || !(s = xcp__calloc(1, sizeof(*s)))
        || !(r->uri = xcp__strdup(o->uri))) {
        rc = xcp__oom();
        goto fail;
    }
    r->protocol = o->protocol;
    r->timeout_ms = o->timeout_ms;
    r->interrupted = &s->interrupted;
    r->sock = CURL_SOCKET_BAD;
    pthread_mutex_init(&r->sock_lock, NULL);
    if ((r->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        rc = xcp__internal("eventfd: %s", strerror(errno));
        goto fail;
    }
    if ((rc = parse_uri(r, o->uri)) < 0 || (rc = remote_setup(r, o)) < 0)
        goto fail;

    if (login) {
        params.kind = XCP_VAL_ARRAY;
        params.u.arr.n = nlogin;
        params.u.arr.items = (xcp_value *)login;
        rc = rpc(r, method, &params, (long)r->timeout_ms, &res);
        if (rc < 0)
            goto fail;
        goto got;
    }
    memset(args, 0, sizeof(args));
    if (xcp_value_set_string(&args[0], o->user ? o->user : "root") < 0 ||
        xcp_value_set_string(&args[1], o->password ? o->password : "") < 0 ||
        xcp_value_set_string(&args[2], "1.1") < 0 ||
        xcp_value_set_string(&args[3],
                             o->originator ? o->originator : "libxcp") < 0) {
        for (size_t i = 0; i < 4; i++)
            xcp_value_dispose(&args[i]);
        rc = xcp__oom();
        goto fail;
    }
    params.kind = XCP_VAL_ARRAY;
    params.u.arr.n = 4;
    params.u.arr.items = args;
    rc = rpc(r, "session.login_with_password", &params, (long)r->timeout_ms,
             &res);
    for (size_t i = 0; i < 4; i++)
        xcp_value_dispose(&args[i]);
    if (rc < 0)
        goto fail;
got:
    if (res.kind != XCP_VAL_STRING || strlen(res.u.s) >= sizeof(s->ref)) {
        xcp_value_dispose(&res);
        rc = fail_io("TRANSPORT_ERROR", o->uri,
                     "not a XenAPI reply: login gave no session reference",
                     NULL);
        goto fail;
    }
    snprintf(s->ref, sizeof(s->ref), "%s", res.u.s);
    xcp_value_dispose(&res);
    s->ops = &remote_ops;
    s->priv = r;
    *out = s;
    return 0;
fail:
    remote_free(r);
    free(s);
    return rc;
}

int xcp_session_open_remote(xcp_session **out, const xcp_remote_options *o)
{
    return open_remote(out, o, NULL, 0, NULL);
}

int xcp__session_open_remote_login(xcp_session **out,
                                   const xcp_remote_options *o,
                                   const char *method, size_t nargs,
                                   const xcp_value *args)
{
    return open_remote(out, o, method, nargs, args);
}

int xcp__session_open_remote(xcp_session **out, const char *uri,
                             const char *user, const char *password)
{
    xcp_remote_options o;

    memset(&o, 0, sizeof(o));
    o.version = XCP_REMOTE_OPTIONS_VERSION;
    o.uri = uri;
    o.user = user;
    o.password = password;
    return xcp_session_open_remote(out, &o);
}
