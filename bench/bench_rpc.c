/*
 * bench_rpc - the C side of bench/bench_rpc.sh: a XenAPI load client for
 * xcpd over HTTP/1.1 keep-alive (raw sockets, one connection per client
 * thread), and the change-to-event latency of event.from.
 *
 *   bench_rpc ADDR USER PW get SECS CLIENTS xml|json
 *           log in, VM.get_all, keep the VMs that are neither templates nor
 *           the control domain, then CLIENTS threads, a connection each,
 *           call VM.get_record on them in turn for SECS seconds (XML-RPC on
 *           "/", or JSON-RPC 2.0 on "/jsonrpc"); prints "vms N", "calls N",
 *           "errors N", "seconds S", "bytes B" (mean response body),
 *           "reconnects N"
 *   bench_rpc ADDR USER PW event SAMPLES
 *           one connection parked in event.from(session, ["vm"], token,
 *           30.0), another sets the name_label of a VM to a fresh marker;
 *           the time from just before the change is sent to the moment the
 *           parked client holds the event carrying that marker; prints
 *           "samples N", "lost N", "errors N", "median_us U", "p99_us U",
 *           "mean_us U"
 *
 * ADDR is HOST:PORT (IPv4) or unix:PATH. Every response is checked: HTTP
 * 200 and a Success envelope holding a VM record; anything else counts as
 * an error, so a run that measured failures says so. Request bodies are
 * encoded once, before the clock starts: what is measured is the server.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "bench_clock.h"

static const char *addr;

static void die(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "bench_rpc: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    exit(1);
}

/* ---- a growing buffer ------------------------------------------------------ */

struct buf {
    char *p;
    size_t len, cap;
};

static void buf_reserve(struct buf *b, size_t more)
{
    if (b->len + more + 1 <= b->cap)
        return;
    while (b->len + more + 1 > b->cap)
        b->cap = b->cap ? b->cap * 2 : 4096;
    b->p = realloc(b->p, b->cap);
    if (!b->p)
        abort();
}

static void buf_add(struct buf *b, const char *s, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* ---- HTTP/1.1 keep-alive client ------------------------------------------- */

struct conn {
    int fd;
    struct buf in;    /* bytes read and not yet consumed */
    size_t body_off;  /* the last response's body: in.p + body_off */
    size_t body_len;
    struct buf dechunked; /* the body, when it came chunked */
    const char *body;
    long reconnects;
};

static int dial(void)
{
    int fd, one = 1;

    if (strncmp(addr, "unix:", 5) == 0) {
        struct sockaddr_un sun;

        memset(&sun, 0, sizeof(sun));
        sun.sun_family = AF_UNIX;
        snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", addr + 5);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
            die("connect %s: %s", addr, strerror(errno));
        return fd;
    }
    {
        struct sockaddr_in sin;
        char host[64];
        const char *colon = strrchr(addr, ':');

        if (!colon || (size_t)(colon - addr) >= sizeof(host))
            die("bad address %s (HOST:PORT or unix:PATH)", addr);
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = '\0';
        memset(&sin, 0, sizeof(sin));
        sin.sin_family = AF_INET;
        sin.sin_port = htons((unsigned short)atoi(colon + 1));
        if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
            die("bad address %s", addr);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
            die("connect %s: %s", addr, strerror(errno));
        /* Requests are written whole; Nagle would only add delay to the
         * next one on a keep-alive connection. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        return fd;
    }
}

static void conn_open(struct conn *c)
{
    memset(c, 0, sizeof(*c));
    c->fd = dial();
}

static void conn_reopen(struct conn *c)
{
    close(c->fd);
    c->fd = dial();
    c->in.len = 0;
    c->reconnects++;
}

static void conn_close(struct conn *c)
{
    close(c->fd);
    free(c->in.p);
    free(c->dechunked.p);
}

/* Read more bytes into c->in; false on EOF or error. */
static bool fill(struct conn *c)
{
    ssize_t n;

    buf_reserve(&c->in, 65536);
    do
        n = read(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len - 1);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return false;
    c->in.len += (size_t)n;
    c->in.p[c->in.len] = '\0';
    return true;
}

/* Position of the first "\r\n" at or after off, reading more as needed;
 * (size_t)-1 on EOF. */
static size_t find_crlf(struct conn *c, size_t off)
{
    for (;;) {
        char *p = c->in.len > off
                      ? memmem(c->in.p + off, c->in.len - off, "\r\n", 2)
                      : NULL;

        if (p)
            return (size_t)(p - c->in.p);
        if (!fill(c))
            return (size_t)-1;
    }
}

static bool need(struct conn *c, size_t upto)
{
    while (c->in.len < upto)
        if (!fill(c))
            return false;
    return true;
}

/*
 * Send one whole request (headers and body pre-encoded in req) and read the
 * response: c->body/c->body_len. Returns the HTTP status, or -1 when the
 * connection failed (the caller reconnects). *close_after is set when the
 * server said it closes the connection.
 */
static int http_call(struct conn *c, const struct buf *req, bool *close_after)
{
    size_t off = 0, hdr_end, pos, eol;
    long clen = -1;
    bool chunked = false;
    int status;

    *close_after = false;
    while (off < req->len) {
        ssize_t n = write(c->fd, req->p + off, req->len - off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        off += (size_t)n;
    }
    c->in.len = 0;
    /* Status line, then headers up to the empty line. */
    eol = find_crlf(c, 0);
    if (eol == (size_t)-1 || eol < 12 || strncmp(c->in.p, "HTTP/1.", 7) != 0)
        return -1;
    status = atoi(c->in.p + 9);
    pos = eol + 2;
    for (;;) {
        char *line;
        size_t n;

        eol = find_crlf(c, pos);
        if (eol == (size_t)-1)
            return -1;
        line = c->in.p + pos;
        n = eol - pos;
        if (n == 0)
            break;
        if (n > 15 && strncasecmp(line, "content-length:", 15) == 0)
            clen = atol(line + 15);
        else if (n > 18 && strncasecmp(line, "transfer-encoding:", 18) == 0 &&
                 memmem(line, n, "chunked", 7))
            chunked = true;
        else if (n > 11 && strncasecmp(line, "connection:", 11) == 0 &&
                 memmem(line, n, "close", 5))
            *close_after = true;
        pos = eol + 2;
    }
    hdr_end = eol + 2;
    if (!chunked) {
        if (clen < 0)
            return -1; /* neither: the body would end at EOF; not expected */
        if (!need(c, hdr_end + (size_t)clen))
            return -1;
        c->body = c->in.p + hdr_end;
        c->body_len = (size_t)clen;
        return status;
    }
    /* Chunked: each chunk's size line, data, CRLF; a zero-size chunk and
     * (no) trailers end it. */
    c->dechunked.len = 0;
    pos = hdr_end;
    for (;;) {
        unsigned long sz;

        eol = find_crlf(c, pos);
        if (eol == (size_t)-1)
            return -1;
        sz = strtoul(c->in.p + pos, NULL, 16);
        pos = eol + 2;
        if (sz == 0) {
            if (find_crlf(c, pos) == (size_t)-1)
                return -1;
            break;
        }
        if (!need(c, pos + sz + 2))
            return -1;
        buf_add(&c->dechunked, c->in.p + pos, sz);
        pos += sz + 2;
    }
    if (!c->dechunked.p)
        buf_add(&c->dechunked, "", 0);
    c->body = c->dechunked.p;
    c->body_len = c->dechunked.len;
    return status;
}

/* A POST with its headers, ready to write as it is. */
static void make_request(struct buf *out, bool json, const char *body)
{
    out->len = 0;
    buf_printf(out,
               "POST %s HTTP/1.1\r\nHost: localhost\r\n"
               "Content-Type: %s\r\nContent-Length: %zu\r\n"
               "Connection: keep-alive\r\n\r\n%s",
               json ? "/jsonrpc" : "/", json ? "application/json" : "text/xml",
               strlen(body), body);
}

/* ---- XML-RPC bodies and the few answers we read ---------------------------- */

/* The refs, session ids and labels we send are plain ASCII without
 * markup characters, so they go in as they are. */
static void xml_call(struct buf *b, const char *method, int n, ...)
{
    va_list ap;
    int i;

    b->len = 0;
    buf_printf(b, "<?xml version=\"1.0\"?><methodCall><methodName>%s"
                  "</methodName><params>", method);
    va_start(ap, n);
    for (i = 0; i < n; i++)
        buf_printf(b, "<param><value><string>%s</string></value></param>",
                   va_arg(ap, const char *));
    va_end(ap);
    buf_printf(b, "</params></methodCall>");
}

static bool xml_success(const char *body, size_t len)
{
    static const char ok[] = "<name>Status</name><value>Success</value>";

    return memmem(body, len < 512 ? len : 512, ok, sizeof(ok) - 1) != NULL;
}

/* The text of the <value> that starts at p (untyped or <string>), as a new
 * string; NULL if p is not such a value. */
static char *value_text(const char *p)
{
    const char *e;
    size_t n;
    char *s;

    if (strncmp(p, "<value>", 7) != 0)
        return NULL;
    p += 7;
    if (strncmp(p, "<string>", 8) == 0)
        p += 8;
    e = strchr(p, '<');
    if (!e)
        return NULL;
    n = (size_t)(e - p);
    s = malloc(n + 1);
    if (!s)
        abort();
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* One call on c; the body of a Success answer (NUL-terminated in c's
 * buffers), or death: set-up calls must work. */
static const char *call_or_die(struct conn *c, const struct buf *body,
                               const char *what)
{
    struct buf req = {0};
    bool close_after;
    int st;

    make_request(&req, false, body->p);
    st = http_call(c, &req, &close_after);
    free(req.p);
    if (st != 200 || !xml_success(c->body, c->body_len))
        die("%s: HTTP %d: %.*s", what, st, st > 0 ? (int)c->body_len : 0,
            st > 0 ? c->body : "");
    if (close_after)
        die("%s: the server closed a keep-alive connection", what);
    /* http_call's bodies end inside a buffer with room after them. */
    ((char *)c->body)[c->body_len] = '\0';
    return c->body;
}

static char *login(struct conn *c, const char *user, const char *pw)
{
    struct buf b = {0};
    const char *r, *v;
    char *s;

    xml_call(&b, "session.login_with_password", 4, user, pw, "1.0",
             "bench_rpc");
    r = call_or_die(c, &b, "session.login_with_password");
    v = strstr(r, "<name>Value</name>");
    s = v ? value_text(v + 18) : NULL;
    if (!s || strncmp(s, "OpaqueRef:", 10) != 0)
        die("login: no session in %s", r);
    free(b.p);
    return s;
}

/* Whether a boolean getter answered true (<boolean>1</boolean>). */
static bool xml_true(const char *body)
{
    const char *v = strstr(body, "<name>Value</name>");

    return v && strncmp(v + 18, "<value><boolean>1</boolean>", 27) == 0;
}

/* The guest VMs' refs: VM.get_all less templates and the control domain,
 * so the set matches the peer's domains. */
static char **guest_vms(struct conn *c, const char *session, size_t *count)
{
    struct buf b = {0}, q = {0};
    const char *r, *p;
    char **all = NULL, **out;
    size_t n = 0, k, m = 0;

    xml_call(&b, "VM.get_all", 1, session);
    r = call_or_die(c, &b, "VM.get_all");
    for (p = strstr(r, "OpaqueRef:"); p; p = strstr(p + 1, "OpaqueRef:")) {
        size_t len = strcspn(p, "<");

        all = realloc(all, (n + 1) * sizeof(*all));
        if (!all || !(all[n] = strndup(p, len)))
            abort();
        n++;
    }
    out = calloc(n ? n : 1, sizeof(*out));
    if (!out)
        abort();
    for (k = 0; k < n; k++) {
        bool skip;

        xml_call(&q, "VM.get_is_a_template", 2, session, all[k]);
        skip = xml_true(call_or_die(c, &q, "VM.get_is_a_template"));
        if (!skip) {
            xml_call(&q, "VM.get_is_control_domain", 2, session, all[k]);
            skip = xml_true(call_or_die(c, &q, "VM.get_is_control_domain"));
        }
        if (skip)
            free(all[k]);
        else
            out[m++] = all[k];
    }
    free(all);
    free(b.p);
    free(q.p);
    *count = m;
    return out;
}

/* ---- get ------------------------------------------------------------------ */

struct get_shared {
    struct buf *reqs; /* a whole HTTP request per VM */
    size_t nreqs;
    bool json;
    double seconds, t_start;
    pthread_barrier_t ready, go;
};

struct get_thread {
    struct get_shared *sh;
    pthread_t tid;
    size_t index;
    long calls, errors, reconnects;
    double bytes;
};

static bool get_ok(const struct get_shared *sh, const struct conn *c, int st)
{
    size_t head = c->body_len < 512 ? c->body_len : 512;

    if (st != 200)
        return false;
    if (sh->json) {
        /* JSON-RPC 2.0: a "result" member and no "error" one; both come
         * before the record's own fields, near the start. */
        size_t lead = c->body_len < 40 ? c->body_len : 40;

        if (!memmem(c->body, lead, "\"result\"", 8) ||
            memmem(c->body, lead, "\"error\"", 7))
            return false;
    } else if (!xml_success(c->body, c->body_len)) {
        return false;
    }
    /* A record, not some other success: its first fields are near the
     * start whichever encoding. */
    return memmem(c->body, head, "uuid", 4) != NULL;
}

static void *get_main(void *arg)
{
    struct get_thread *t = arg;
    struct get_shared *sh = t->sh;
    struct conn c;
    size_t i = t->index % sh->nreqs;
    double deadline;

    conn_open(&c);
    pthread_barrier_wait(&sh->ready);
    pthread_barrier_wait(&sh->go);
    deadline = sh->t_start + sh->seconds;
    /* Each thread walks the VMs from its own offset so that the threads do
     * not all ask for the same one at once. */
    while (now() < deadline) {
        bool close_after;
        int st = http_call(&c, &sh->reqs[i], &close_after);

        if (st > 0 && get_ok(sh, &c, st)) {
            t->calls++;
            t->bytes += (double)c.body_len;
        } else {
            t->errors++;
            if (t->errors <= 1 && st > 0)
                fprintf(stderr, "bench_rpc: error answer (HTTP %d): %.300s\n",
                        st, c.body ? c.body : "");
        }
        if (st < 0 || close_after)
            conn_reopen(&c);
        if (++i == sh->nreqs)
            i = 0;
    }
    t->reconnects = c.reconnects;
    conn_close(&c);
    return NULL;
}

static int cmd_get(const char *user, const char *pw, double seconds,
                   long clients, bool json)
{
    struct get_shared sh;
    struct get_thread *th;
    struct conn c;
    struct buf body = {0};
    char *session, **vms;
    size_t nvms, k;
    long calls = 0, errors = 0, reconnects = 0;
    double bytes = 0, t_end;

    conn_open(&c);
    session = login(&c, user, pw);
    vms = guest_vms(&c, session, &nvms);
    if (nvms == 0)
        die("no guest VMs to get");
    memset(&sh, 0, sizeof(sh));
    sh.reqs = calloc(nvms, sizeof(*sh.reqs));
    th = calloc((size_t)clients, sizeof(*th));
    if (!sh.reqs || !th)
        abort();
    for (k = 0; k < nvms; k++) {
        body.len = 0;
        if (json)
            buf_printf(&body,
                       "{\"jsonrpc\":\"2.0\",\"method\":\"VM.get_record\","
                       "\"params\":[\"%s\",\"%s\"],\"id\":%zu}",
                       session, vms[k], k);
        else
            xml_call(&body, "VM.get_record", 2, session, vms[k]);
        make_request(&sh.reqs[k], json, body.p);
    }
    sh.nreqs = nvms;
    sh.json = json;
    sh.seconds = seconds;
    pthread_barrier_init(&sh.ready, NULL, (unsigned)clients + 1);
    pthread_barrier_init(&sh.go, NULL, (unsigned)clients + 1);
    for (k = 0; k < (size_t)clients; k++) {
        th[k].sh = &sh;
        th[k].index = k * 7;
        if (pthread_create(&th[k].tid, NULL, get_main, &th[k]) != 0)
            die("pthread_create: %s", strerror(errno));
    }
    /* Everyone connected before the clock starts: connection set-up is not
     * what is measured. */
    pthread_barrier_wait(&sh.ready);
    sh.t_start = now();
    pthread_barrier_wait(&sh.go);
    for (k = 0; k < (size_t)clients; k++) {
        pthread_join(th[k].tid, NULL);
        calls += th[k].calls;
        errors += th[k].errors;
        reconnects += th[k].reconnects;
        bytes += th[k].bytes;
    }
    t_end = now();
    printf("vms %zu\ncalls %ld\nerrors %ld\nseconds %.6f\nbytes %.0f\n"
           "reconnects %ld\n",
           nvms, calls, errors, t_end - sh.t_start,
           calls ? bytes / (double)calls : 0.0, reconnects);
    for (k = 0; k < nvms; k++) {
        free(vms[k]);
        free(sh.reqs[k].p);
    }
    free(vms);
    free(sh.reqs);
    free(th);
    free(body.p);
    free(session);
    conn_close(&c);
    return 0;
}

/* ---- event ---------------------------------------------------------------- */

static pthread_mutex_t ev_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ev_cond = PTHREAD_COND_INITIALIZER;
static long ev_parked;   /* event.from requests sent by the watcher */
static long ev_want = -1; /* the sample whose marker the watcher looks for */
static double ev_time;   /* when it saw it */
/* The next change waits for ev_parked to pass this: the count of the
 * request that brought the last marker (1 at first: the initial
 * event.from, with an empty token, returns at once). */
static long ev_ready_after = 1;
static bool ev_seen, ev_stop;
static long ev_errors;

struct watcher {
    const char *user, *pw;
};

static char *event_token(const char *body)
{
    const char *p = NULL, *q;

    /* The result struct's own token member: the last one in the body (VM
     * records have no field of that name, but be safe). */
    for (q = strstr(body, "<name>token</name>"); q;
         q = strstr(q + 1, "<name>token</name>"))
        p = q;
    return p ? value_text(p + 18) : NULL;
}

static void *watch_main(void *arg)
{
    struct watcher *w = arg;
    struct conn c;
    struct buf body = {0}, req = {0};
    char *session, *token = strdup("");

    conn_open(&c);
    session = login(&c, w->user, w->pw);
    for (;;) {
        bool close_after;
        double t;
        int st;
        char *nt;

        body.len = 0;
        buf_printf(&body,
                   "<?xml version=\"1.0\"?><methodCall><methodName>event.from"
                   "</methodName><params><param><value><string>%s</string>"
                   "</value></param><param><value><array><data><value>"
                   "<string>vm</string></value></data></array></value>"
                   "</param><param><value><string>%s</string></value>"
                   "</param><param><value><double>30.0</double></value>"
                   "</param></params></methodCall>",
                   session, token);
        make_request(&req, false, body.p);
        pthread_mutex_lock(&ev_lock);
        if (ev_stop) {
            pthread_mutex_unlock(&ev_lock);
            break;
        }
        ev_parked++;
        pthread_cond_broadcast(&ev_cond);
        pthread_mutex_unlock(&ev_lock);
        st = http_call(&c, &req, &close_after);
        t = now();
        if (st != 200 || !xml_success(c.body, c.body_len)) {
            pthread_mutex_lock(&ev_lock);
            ev_errors++;
            pthread_mutex_unlock(&ev_lock);
            if (st > 0)
                fprintf(stderr, "bench_rpc: event.from: HTTP %d: %.300s\n", st,
                        c.body);
            if (st < 0 || close_after)
                conn_reopen(&c);
            usleep(10000);
            continue;
        }
        ((char *)c.body)[c.body_len] = '\0';
        nt = event_token(c.body);
        if (!nt)
            die("event.from: no token in the answer");
        free(token);
        token = nt;
        pthread_mutex_lock(&ev_lock);
        if (ev_want >= 0 && !ev_seen) {
            char marker[48];

            snprintf(marker, sizeof(marker), ">lat-%ld<", ev_want);
            if (strstr(c.body, marker)) {
                ev_seen = true;
                ev_time = t;
                ev_ready_after = ev_parked;
                pthread_cond_broadcast(&ev_cond);
            }
        }
        pthread_mutex_unlock(&ev_lock);
        if (close_after)
            conn_reopen(&c);
    }
    free(token);
    free(session);
    free(body.p);
    free(req.p);
    conn_close(&c);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static void abs_deadline(struct timespec *ts, double secs)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += (time_t)secs;
    ts->tv_nsec += (long)((secs - (double)(time_t)secs) * 1e9);
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static int cmd_event(const char *user, const char *pw, long samples)
{
    struct watcher w = {user, pw};
    struct conn c;
    struct buf body = {0}, req = {0};
    char *session, **vms;
    size_t nvms, k;
    pthread_t tid;
    double *lat;
    long got = 0, lost = 0, errors = 0, i;

    conn_open(&c);
    session = login(&c, user, pw);
    vms = guest_vms(&c, session, &nvms);
    if (nvms == 0)
        die("no guest VMs to change");
    lat = calloc((size_t)samples, sizeof(*lat));
    if (!lat)
        abort();
    if (pthread_create(&tid, NULL, watch_main, &w) != 0)
        die("pthread_create: %s", strerror(errno));
    for (i = 0; i < samples; i++) {
        struct timespec until;
        char label[32];
        bool close_after;
        double t0;
        long watch_errors;
        int st, rc = 0;

        snprintf(label, sizeof(label), "lat-%ld", i);
        xml_call(&body, "VM.set_name_label", 3, session, vms[0], label);
        make_request(&req, false, body.p);
        /* Wait until the watcher has sent an event.from after the one that
         * brought the previous marker (for the first sample: after the
         * initial one, which returns at once), then give it time to reach
         * the server and park there, so the change meets a parked client
         * (the libvirt peer pauses the same 2 ms). */
        pthread_mutex_lock(&ev_lock);
        ev_want = i;
        ev_seen = false;
        abs_deadline(&until, 35);
        while (ev_parked <= ev_ready_after && rc == 0)
            rc = pthread_cond_timedwait(&ev_cond, &ev_lock, &until);
        watch_errors = ev_errors;
        pthread_mutex_unlock(&ev_lock);
        /* A server that keeps failing event.from or losing events would
         * otherwise cost 5 s a sample: report what there is. */
        if (watch_errors + errors > 10 || lost >= 5) {
            fprintf(stderr, "bench_rpc: event: stopped after %ld samples: "
                            "%ld errors, %ld lost\n",
                    i, watch_errors + errors, lost);
            break;
        }
        usleep(2000);
        t0 = now();
        st = http_call(&c, &req, &close_after);
        if (st != 200 || !xml_success(c.body, c.body_len)) {
            errors++;
            if (st < 0 || close_after)
                conn_reopen(&c);
            continue;
        }
        if (close_after)
            conn_reopen(&c);
        rc = 0;
        abs_deadline(&until, 5);
        pthread_mutex_lock(&ev_lock);
        while (!ev_seen && rc == 0)
            rc = pthread_cond_timedwait(&ev_cond, &ev_lock, &until);
        if (ev_seen)
            lat[got++] = (ev_time - t0) * 1e6;
        else
            lost++;
        ev_want = -1;
        pthread_mutex_unlock(&ev_lock);
    }
    /* Stop the watcher: one more change ends its current event.from. */
    pthread_mutex_lock(&ev_lock);
    ev_stop = true;
    pthread_mutex_unlock(&ev_lock);
    xml_call(&body, "VM.set_name_label", 3, session, vms[0], "bench-end");
    make_request(&req, false, body.p);
    {
        bool close_after;

        http_call(&c, &req, &close_after);
    }
    pthread_join(tid, NULL);
    qsort(lat, (size_t)got, sizeof(*lat), cmp_double);
    printf("samples %ld\nlost %ld\nerrors %ld\n", got, lost,
           errors + ev_errors);
    if (got > 0) {
        double sum = 0;

        for (i = 0; i < got; i++)
            sum += lat[i];
        printf("median_us %.1f\np99_us %.1f\nmean_us %.1f\n", lat[got / 2],
               lat[(long)((double)(got - 1) * 0.99)], sum / (double)got);
    }
    for (k = 0; k < nvms; k++)
        free(vms[k]);
    free(vms);
    free(lat);
    free(session);
    free(body.p);
    free(req.p);
    conn_close(&c);
    return 0;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: bench_rpc ADDR USER PW get SECONDS CLIENTS xml|json\n"
            "       bench_rpc ADDR USER PW event SAMPLES\n"
            "ADDR: HOST:PORT or unix:PATH\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 6)
        return usage();
    addr = argv[1];
    if (strcmp(argv[4], "get") == 0 && argc == 8)
        return cmd_get(argv[2], argv[3], atof(argv[5]), atol(argv[6]),
                       strcmp(argv[7], "json") == 0);
    if (strcmp(argv[4], "event") == 0)
        return cmd_event(argv[2], argv[3], atol(argv[5]));
    return usage();
}
