/*
 * xcpd's /console handler: a VM's console for network clients, as XAPI
 * serves it.
 *
 *  - `CONNECT /console?ref=..|uuid=..&session_id=..` (session_id also as
 *    a cookie, or HTTP Basic credentials): answered `HTTP/1.1 200 OK`,
 *    then the connection carries the console's raw bytes both ways (RFB or
 *    vt100 text). libmicrohttpd 0.9.75 hands a connection over only with
 *    101 Switching Protocols (MHD_create_response_for_upgrade), so a
 *    CONNECT is suspended instead (MHD then neither reads, writes nor
 *    times it out) and a thread of this file writes the 200 and moves the
 *    bytes itself, on the socket or, on a TLS listener, on the
 *    connection's own GnuTLS session (MHD_CONNECTION_INFO_GNUTLS_SESSION);
 *    at the end it resumes the connection, which the handler then closes.
 *    docs/notes-mhd.md §9 has the reasoning and what was tried.
 *  - `GET /console` with `Upgrade: websocket` (Xen Orchestra, noVNC): the
 *    101 upgrade of MHD, then RFC 6455 frames both ways (binary out, any
 *    data frame in, ping answered with pong, close answered and ended);
 *    `Sec-WebSocket-Protocol: binary` when the client offers it.
 */
#include "xcpd.h"
#include "../common/fdio.h"

#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <xcp/xcp.h>

#define BUF 16384
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_MAX_PAYLOAD ((uint64_t)BUF) /* per client frame (RFB's are
                                          small) */

/* One console connection in progress: what a pump thread moves. */
typedef struct xcpd_pump {
    xcpd_http *h;
    struct xcpd_pump *next;  /* h->pumps, under h->mu */
    xcpd_io client;
    int con;                 /* the console's stream */
    int ws;                  /* WebSocket framing on the client side */
    struct MHD_Connection *c;            /* CONNECT: resumed at the end */
    struct MHD_UpgradeResponseHandle *urh; /* WebSocket: closed at the end */
    int *done;               /* CONNECT: set before the resume */
    unsigned char in[BUF + 14]; /* WebSocket: client bytes not yet parsed */
    size_t in_len;
    struct xcpd_console *st; /* WebSocket: the request, until upgraded */
} pump;

struct xcpd_console {
    int done;                /* the pump ended: close the connection */
    int started;
    /* WebSocket: the pump whose 101 is queued, until MHD's upgrade
       callback takes it; if the client goes before that, MHD never calls
       it and the request's end frees the pump. Both run in the
       connection's MHD thread, the callback first. */
    pump *ws_pending;
};

/* ---- WebSocket framing (RFC 6455) --------------------------------------- */

/* One unmasked server frame (FIN set) carrying payload (at most BUF
 * bytes), written at once: a header apart would wait on Nagle. */
static int ws_send(xcpd_io *x, int opcode, const void *payload, size_t n)
{
    unsigned char f[BUF + 4];
    size_t hl = 2;

    if (n > BUF)
        return -1;
    f[0] = (unsigned char)(0x80 | opcode);
    if (n < 126) {
        f[1] = (unsigned char)n;
    } else {
        f[1] = 126;
        f[2] = (unsigned char)(n >> 8);
        f[3] = (unsigned char)n;
        hl = 4;
    }
    memcpy(f + hl, payload, n);
    return xcpd_io_write(x, f, hl + n);
}

/*
 * Handles the complete frames at the head of p->in: data to the console,
 * pings answered. 1 while the connection goes on, 0 at a close, -1 on a
 * protocol error or a side gone.
 */
static int ws_frames(pump *p)
{
    for (;;) {
        unsigned char *h = p->in, *mask, *data, *f;
        size_t avail = p->in_len, hl = 2, i;
        uint64_t n;
        int opcode, fin;

        if (avail < 2)
            return 1;
        fin = h[0] & 0x80;
        opcode = h[0] & 0x0f;
        if (!(h[1] & 0x80))
            return -1; /* client frames must be masked */
        n = h[1] & 0x7f;
        if (n == 126) {
            hl = 4;
            if (avail < hl)
                return 1;
            n = ((uint64_t)h[2] << 8) | h[3];
        } else if (n == 127) {
            hl = 10;
            if (avail < hl)
                return 1;
            for (n = 0, i = 0; i < 8; i++)
                n = (n << 8) | h[2 + i];
        }
        if (n > WS_MAX_PAYLOAD || (opcode >= 8 && n > 125))
            return -1;
        if (avail < hl + 4 + n) {
            return 1;
        }
        mask = h + hl;
        data = mask + 4;
        for (i = 0; i < n; i++)
            data[i] ^= mask[i % 4];
        switch (opcode) {
        case 0x0: /* continuation */
        case 0x1: /* text */
        case 0x2: /* binary */
            if (n && xcmd_write_all(p->con, data, (size_t)n, -1) < 0)
                return -1;
            break;
        case 0x8: /* close: echo its status, end */
            ws_send(&p->client, 0x8, data, n >= 2 ? 2 : 0);
            return 0;
        case 0x9: /* ping */
            if (ws_send(&p->client, 0xa, data, (size_t)n) < 0)
                return -1;
            break;
        case 0xa: /* pong */
            break;
        default:
            return -1;
        }
        (void)fin; /* fragments are passed on as they come */
        f = data + n;
        p->in_len = (size_t)(p->in + p->in_len - f);
        memmove(p->in, f, p->in_len);
    }
}

/* ---- the pump ------------------------------------------------------------ */

/* Client → console; 1 go on, 0/-1 end. */
static int from_client(pump *p)
{
    ssize_t n;

    if (!p->ws) {
        unsigned char buf[BUF];

        n = xcpd_io_read(&p->client, buf, sizeof(buf));
        if (n == -2)
            return 1;
        if (n <= 0)
            return 0;
        return xcmd_write_all(p->con, buf, (size_t)n, -1) < 0 ? -1 : 1;
    }
    n = xcpd_io_read(&p->client, p->in + p->in_len, sizeof(p->in) - p->in_len);
    if (n == -2)
        return 1;
    if (n <= 0)
        return 0;
    p->in_len += (size_t)n;
    return ws_frames(p);
}

/* Console → client; 1 go on, 0/-1 end. */
static int to_client(pump *p)
{
    unsigned char buf[BUF];
    ssize_t n = recv(p->con, buf, sizeof(buf), 0);

    if (n < 0 && errno == EINTR)
        return 1;
    if (n <= 0) {
        if (p->ws)
            ws_send(&p->client, 0x8, "\x03\xe8", 2); /* 1000: normal */
        return 0;
    }
    if (p->ws)
        return ws_send(&p->client, 0x2, buf, (size_t)n) < 0 ? -1 : 1;
    return xcpd_io_write(&p->client, buf, (size_t)n) < 0 ? -1 : 1;
}

static void pump_run(pump *p)
{
    struct pollfd pf[2];
    int go = 1;

    pf[0].fd = p->client.fd;
    pf[0].events = POLLIN;
    pf[1].fd = p->con;
    pf[1].events = POLLIN;
    while (go > 0) {
        if (xcpd_io_pending(&p->client)) {
            go = from_client(p);
            continue;
        }
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pf[0].revents)
            go = from_client(p);
        if (go > 0 && pf[1].revents)
            go = to_client(p);
    }
}

/* Takes p off its daemon's list of open consoles. */
static void pump_unlist(pump *p)
{
    pump **q;

    pthread_mutex_lock(&p->h->mu);
    for (q = &p->h->pumps; *q != NULL; q = &(*q)->next)
        if (*q == p) {
            *q = p->next;
            break;
        }
    pthread_mutex_unlock(&p->h->mu);
}

static void *pump_thread(void *arg)
{
    pump *p = arg;

    pump_run(p);
    pump_unlist(p);
    close(p->con);
    if (p->urh != NULL) {
        MHD_upgrade_action(p->urh, MHD_UPGRADE_ACTION_CLOSE);
    } else {
        /* the handler closes the connection once resumed */
        __atomic_store_n(p->done, 1, __ATOMIC_SEQ_CST);
        MHD_resume_connection(p->c);
    }
    xcpd_io_release(&p->client);
    free(p);
    return NULL;
}

static int pump_start(pump *p)
{
    pthread_t th;
    pthread_attr_t a;
    int rc;

    pthread_mutex_lock(&p->h->mu);
    p->next = p->h->pumps;
    p->h->pumps = p;
    pthread_mutex_unlock(&p->h->mu);
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&th, &a, pump_thread, p);
    pthread_attr_destroy(&a);
    if (rc != 0)
        pump_unlist(p);
    return rc == 0 ? 0 : -1;
}

unsigned xcpd_console_shutdown(xcpd_http *h, unsigned wait_ms)
{
    struct timespec ts = {0, 10 * 1000 * 1000};
    unsigned waited = 0, left;
    pump *p;

    for (;;) {
        left = 0;
        pthread_mutex_lock(&h->mu);
        /* the console's end closing makes its pump finish */
        for (p = h->pumps; p != NULL; p = p->next, left++)
            shutdown(p->con, SHUT_RDWR);
        pthread_mutex_unlock(&h->mu);
        if (left == 0 || waited >= wait_ms)
            return left;
        nanosleep(&ts, NULL);
        waited += 10;
    }
}

/* ---- the handler --------------------------------------------------------- */

/* (xcpd.h) */
enum MHD_Result xcpd_refuse(struct MHD_Connection *c, unsigned status,
                            const char *text)
{
    struct MHD_Response *x = MHD_create_response_from_buffer(
        strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret;

    if (x == NULL)
        return MHD_NO;
    MHD_add_response_header(x, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(x, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Basic realm=\"xapi\"");
    ret = MHD_queue_response(c, status, x);
    MHD_destroy_response(x);
    return ret;
}

/* "NAME: p1, p2\n" of the thread's error. */
static void error_line(char *out, size_t size)
{
    const xcp_error *e = xcp_error_last();
    size_t i, n;

    if (e == NULL || e->name == NULL) {
        snprintf(out, size, "console refused\n");
        return;
    }
    n = (size_t)snprintf(out, size, "%s", e->name);
    for (i = 0; i < e->nparams && n < size; i++)
        n += (size_t)snprintf(out + n, size - n, "%s%s", i ? ", " : ": ",
                              e->params[i]);
    if (n < size)
        snprintf(out + n, size - n, "\n");
}

/* Whether a comma-separated header value has token (case-insensitive). */
static int has_token(const char *v, const char *token)
{
    size_t tl = strlen(token);

    while (v != NULL && *v) {
        while (*v == ' ' || *v == ',' || *v == '\t')
            v++;
        if (strncasecmp(v, token, tl) == 0
            && (v[tl] == '\0' || v[tl] == ',' || v[tl] == ' '))
            return 1;
        v = strchr(v, ',');
    }
    return 0;
}

/* Sec-WebSocket-Accept for key: base64(SHA-1(key GUID)). */
static int ws_accept(const char *key, char *out, size_t size)
{
    unsigned char md[20];
    char cat[128];
    gnutls_datum_t in, b64;
    int n;

    n = snprintf(cat, sizeof(cat), "%s%s", key, WS_GUID);
    if (n < 0 || (size_t)n >= sizeof(cat)
        || gnutls_hash_fast(GNUTLS_DIG_SHA1, cat, (size_t)n, md) < 0)
        return -1;
    in.data = md;
    in.size = sizeof(md);
    if (gnutls_base64_encode2(&in, &b64) < 0)
        return -1;
    n = snprintf(out, size, "%.*s", (int)b64.size, (const char *)b64.data);
    gnutls_free(b64.data);
    return n > 0 && (size_t)n < size ? 0 : -1;
}

static void ws_upgraded(void *cls, struct MHD_Connection *c, void *con_cls,
                        const char *extra, size_t extra_len, MHD_socket sock,
                        struct MHD_UpgradeResponseHandle *urh)
{
    pump *p = cls;

    (void)c;
    (void)con_cls;
    p->st->ws_pending = NULL; /* ours now */
    p->st = NULL;
    p->client.fd = sock;
    p->urh = urh;
    if (extra_len > sizeof(p->in))
        extra_len = 0; /* a client that cannot wait for the 101 */
    memcpy(p->in, extra, extra_len);
    p->in_len = extra_len;
    if ((p->in_len && ws_frames(p) <= 0) || pump_start(p) < 0) {
        close(p->con);
        MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
        free(p);
    }
}

/* The 101 answer to a WebSocket request (acc: its Sec-WebSocket-Accept),
 * the pump to start on upgrade. */
static enum MHD_Result ws_answer(struct MHD_Connection *c, pump *p,
                                 const char *acc)
{
    const char *proto = MHD_lookup_connection_value(
        c, MHD_HEADER_KIND, "Sec-WebSocket-Protocol");
    struct MHD_Response *x = MHD_create_response_for_upgrade(ws_upgraded, p);
    enum MHD_Result ret;

    if (x == NULL)
        return MHD_NO;
    MHD_add_response_header(x, MHD_HTTP_HEADER_UPGRADE, "websocket");
    MHD_add_response_header(x, "Sec-WebSocket-Accept", acc);
    if (has_token(proto, "binary"))
        MHD_add_response_header(x, "Sec-WebSocket-Protocol", "binary");
    ret = MHD_queue_response(c, MHD_HTTP_SWITCHING_PROTOCOLS, x);
    MHD_destroy_response(x);
    return ret;
}

/* CONNECT: suspend the connection, write the 200 and pump on it. */
static enum MHD_Result connect_answer(struct MHD_Connection *c,
                                      xcpd_console *st, pump *p)
{
    static const char ok[] = "HTTP/1.1 200 OK\r\n"
                             "Connection: keep-alive\r\n"
                             "Cache-Control: no-cache, no-store\r\n\r\n";
    p->c = c;
    p->done = &st->done;
    if (xcpd_io_take(c, &p->client) < 0)
        return MHD_NO;
    if (xcpd_io_write(&p->client, ok, sizeof(ok) - 1) < 0 || pump_start(p) < 0) {
        close(p->con);
        free(p);
        st->done = 1;
        MHD_resume_connection(c);
        return MHD_NO;
    }
    return MHD_YES;
}

enum MHD_Result xcpd_console_step(xcpd_listener *l, struct MHD_Connection *c,
                                  const char *method, xcp_server_peer peer,
                                  xcpd_console **state,
                                  size_t *upload_data_size)
{
    xcpd_console *st = *state;
    xcp_server_console_request cr;
    char *user, *password = NULL, text[512], acc[64];
    const char *up, *key;
    int ws, status = 500, fd = -1, rc;
    pump *p;
    enum MHD_Result ret;

    if (*upload_data_size > 0) { /* a CONNECT has no body: ignore one */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (st != NULL) /* resumed: the pump is over */
        return __atomic_load_n(&st->done, __ATOMIC_SEQ_CST) ? MHD_NO
                                                            : MHD_YES;
    up = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                     MHD_HTTP_HEADER_UPGRADE);
    ws = strcmp(method, MHD_HTTP_METHOD_GET) == 0;
    if (ws && (up == NULL || strcasecmp(up, "websocket") != 0))
        return xcpd_refuse(c, MHD_HTTP_BAD_REQUEST,
                      "GET /console needs Upgrade: websocket (or use "
                      "CONNECT)\n");
    key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Sec-WebSocket-Key");
    if (ws && (key == NULL || ws_accept(key, acc, sizeof(acc)) < 0))
        return xcpd_refuse(c, MHD_HTTP_BAD_REQUEST,
                      "WebSocket request without a valid "
                      "Sec-WebSocket-Key\n");
    if (l->http->srv == NULL)
        return xcpd_refuse(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                      "Service unavailable\n");
    memset(&cr, 0, sizeof(cr));
    cr.id = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "ref");
    if (cr.id == NULL)
        cr.id = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "uuid");
    cr.session_id = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
                                                "session_id");
    if (cr.session_id == NULL)
        cr.session_id = MHD_lookup_connection_value(c, MHD_COOKIE_KIND,
                                                    "session_id");
    user = MHD_basic_auth_get_username_password(c, &password);
    cr.basic_user = user;
    cr.basic_password = user != NULL ? password : NULL;
    cr.peer = peer;
    rc = xcp_server_console_open(l->http->srv, &fd, &status, &cr);
    if (password != NULL)
        MHD_free(password);
    if (user != NULL)
        MHD_free(user);
    if (rc < 0) {
        error_line(text, sizeof(text));
        if (l->http->verbose)
            xcpd_log(LOG_INFO, "%s /console from %s: HTTP %d: %s", method,
                     peer.address, status, text);
        return xcpd_refuse(c, status >= 400 && status < 600 ? (unsigned)status
                                                       : 500u,
                      text);
    }
    xcpd_guard_trust(c);
    st = calloc(1, sizeof(*st));
    p = calloc(1, sizeof(*p));
    if (st == NULL || p == NULL) {
        free(st);
        free(p);
        close(fd);
        return MHD_NO;
    }
    *state = st;
    p->h = l->http;
    p->con = fd;
    p->ws = ws;
    p->client.fd = -1;
    if (ws) {
        /* Queued, the upgrade callback takes p; until then the request
           holds it (xcpd_console_free). */
        p->st = st;
        ret = ws_answer(c, p, acc);
        if (ret != MHD_YES) {
            close(fd);
            free(p);
        } else {
            st->ws_pending = p;
        }
        return ret;
    }
    return connect_answer(c, st, p);
}

void xcpd_console_free(xcpd_console *st)
{
    if (st != NULL && st->ws_pending != NULL) {
        /* the client went before the upgrade: the console is let go */
        close(st->ws_pending->con);
        free(st->ws_pending);
    }
    free(st);
}
