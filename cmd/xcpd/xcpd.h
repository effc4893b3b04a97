/*
 * xcpd: declarations shared by the daemon's files and by the HTTP fuzzer
 * (tests/fuzz/fuzz_http.c), which drives the same handler as the daemon.
 */
#ifndef XCPD_H
#define XCPD_H

#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/socket.h>

#include <xcp/server.h>

/* Largest RPC body accepted (XAPI's limit). */
#define XCPD_RPC_BODY_MAX ((size_t)300 * 1024)

/* State shared by every listener of one daemon. */
typedef struct xcpd_http {
    xcp_server *srv;        /* NULL only in the fuzzer when no engine
                               could be opened: RPCs then answer 503 */
    int verbose;            /* log one line per failed RPC or transfer */
    unsigned transfer_timeout_s; /* idle timeout of VDI transfers */
    /* One lock orders a parked request against its completion; it is
       held only for a few instructions, never across a call into the
       engine. */
    pthread_mutex_t mu;
    unsigned long dispatched; /* RPCs handed to the engine whose HTTP
                                 request has not ended yet (atomic: MHD's
                                 completion callback takes no lock of
                                 ours) */
    struct xcpd_pump *pumps;  /* open consoles (console.c), under mu */
    struct xcpd_upload *uploads; /* imports read until the client
                                    closes (http.c), under mu */
    struct xcpd_cli_conn *clis; /* /cli commands running (cli.c), under mu */
} xcpd_http;

/* One listener: the handler's cls. */
typedef struct xcpd_listener {
    xcpd_http *http;
    int local;              /* the unix socket: peers by SO_PEERCRED */
} xcpd_listener;

void xcpd_http_init(xcpd_http *h, xcp_server *srv, int verbose);
void xcpd_http_destroy(xcpd_http *h);

/* RPCs still in flight (for the shutdown drain). */
unsigned long xcpd_http_dispatched(xcpd_http *h);

/* MHD callbacks: cls is an xcpd_listener for both. */
enum MHD_Result xcpd_access(void *cls, struct MHD_Connection *c,
                            const char *url, const char *method,
                            const char *version, const char *upload_data,
                            size_t *upload_data_size, void **con_cls);
void xcpd_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode toe);

/* ---- connections taken from MHD (sockio.c) ------------------------------ */

/* The client's side of a connection taken from MHD. */
typedef struct xcpd_io {
    int fd;                  /* the client's socket */
    gnutls_session_t tls;    /* or NULL for plain */
    char *wbuf;              /* TLS records of a large write, gathered */
    size_t wlen;
    char *rbuf;              /* TLS: bytes read ahead from the socket */
    size_t rpos, rlen;       /* rbuf[rpos, rlen) not yet handed out */
    int no_read_ahead;       /* the session's transport is not fd */
    int no_sendfile;         /* file runs go as bytes (xcpd_io_send_file) */
} xcpd_io;

/* Take c's connection (in its handler): suspend it and fill x with its
 * socket and TLS session. MHD then leaves it alone until resumed. -1
 * (nothing done) when MHD does not say its socket. */
int xcpd_io_take(struct MHD_Connection *c, xcpd_io *x);
/* > 0 bytes, 0 end of stream, -1 error, -2 nothing now. */
ssize_t xcpd_io_read(xcpd_io *x, void *buf, size_t n);
/* The same, waiting up to timeout_ms (-1: forever) for bytes: -3 when
 * none came. */
ssize_t xcpd_io_read_wait(xcpd_io *x, void *buf, size_t n, int timeout_ms);
/* As xcpd_io_read_wait, then reading on while bytes are already there
 * (without waiting), up to n: > 0 bytes, or its 0, -1 or -3. *end (1
 * before the first call) keeps an end or error met after some bytes,
 * which the next call returns. */
ssize_t xcpd_io_read_fill(xcpd_io *x, void *buf, size_t n, int timeout_ms,
                          ssize_t *end);
/* Bytes the TLS layer holds already decrypted or read ahead (poll cannot
 * see them). */
int xcpd_io_pending(xcpd_io *x);
/* All of buf to the client: 0, or -1 when it is gone (or stalled 30 s).
 * Over TLS, a buffer of 64 KiB or more has its records gathered and sent
 * together (a buffer of about its size is then kept in x until
 * xcpd_io_release). */
int xcpd_io_write(xcpd_io *x, const void *buf, size_t n);
/* len bytes of file fd from pos to the client: with sendfile(2) on a
 * plain connection (the kernel moves the file's pages to the socket:
 * nothing is copied through xcpd), else, or where sendfile cannot (over
 * TLS; a file or socket it refuses; when x->no_sendfile is set), read
 * into buf (cap bytes) a piece at a time and written as xcpd_io_write.
 * 0, or -1 when the client is gone (or stalled 30 s) or the file cannot
 * be read (errno says which: EIO for a file shorter than announced). */
int xcpd_io_send_file(xcpd_io *x, int fd, uint64_t pos, size_t len,
                      char *buf, size_t cap);
/* Free what xcpd_io_write and xcpd_io_read (its TLS read-ahead buffer:
 * bytes it holds are dropped) kept in x (the connection itself stays). */
void xcpd_io_release(xcpd_io *x);

/* End every import read until its client closes (shutdown: they fail),
 * waiting up to wait_ms for their connections to be handed back; the
 * count still open. */
unsigned xcpd_upload_shutdown(xcpd_http *h, unsigned wait_ms);

/* ---- /console (console.c) ------------------------------------------------ */

/* Answer the request with a short text/plain body (a 401 also carries
 * XAPI's WWW-Authenticate "Basic realm=\"xapi\""); the handlers of
 * /console and /cli share it. */
enum MHD_Result xcpd_refuse(struct MHD_Connection *c, unsigned status,
                            const char *text);

/* A console request's state, owned by the request (xcpd_console_free). */
typedef struct xcpd_console xcpd_console;

/*
 * The handler of CONNECT /console and of GET /console with a WebSocket
 * upgrade, for every call after the first (headers) one: authenticates,
 * opens the console and hands the connection over to a thread that moves
 * its bytes; *state starts NULL.
 */
enum MHD_Result xcpd_console_step(xcpd_listener *l, struct MHD_Connection *c,
                                  const char *method, xcp_server_peer peer,
                                  xcpd_console **state,
                                  size_t *upload_data_size);
void xcpd_console_free(xcpd_console *st);

/* End every open console (shutdown: MHD must not be stopped with their
 * connections suspended or upgraded) and wait up to wait_ms for them to
 * be handed back; the count still open. */
unsigned xcpd_console_shutdown(xcpd_http *h, unsigned wait_ms);

/* ---- metrics (metrics.c) ------------------------------------------------- */

/* The xcp_server_metrics_kind of a GET path (/rrd_updates, /host_rrd,
 * /vm_rrd, /metrics), or -1. */
int xcpd_metrics_kind(const char *url);
/* Answer a metrics GET once its headers are in (it has no body). */
enum MHD_Result xcpd_metrics_answer(xcpd_listener *l, struct MHD_Connection *c,
                                    int kind, xcp_server_peer peer);
/* PUT /rrd (XAPI's put_rrd: a VM's RRD handed on when it moves): gathers
 * the body (at most XCPD_RRD_BODY_MAX, else 413), then answers with
 * xcp_server_rrd_put. *state is the request's, freed with
 * xcpd_rrd_put_free. A PUT without a length (XAPI's hosts send it so)
 * is http.c's: 200 at once, body read until the client closes, then
 * xcpd_rrd_put_finish. */
#define XCPD_RRD_BODY_MAX ((size_t)64 << 20)
typedef struct xcpd_rrd_put xcpd_rrd_put;
/* The request's parameters (uuid, archive, credentials, the pool_secret
 * cookie), copied from its headers; NULL when out of memory. */
xcpd_rrd_put *xcpd_rrd_put_new(struct MHD_Connection *c,
                               xcp_server_peer peer);
/* Append n body bytes (past XCPD_RRD_BODY_MAX the request is marked too
 * large and the rest dropped). */
void xcpd_rrd_put_add(xcpd_rrd_put *p, const char *data, size_t n);
/* Hand the body to xcp_server_rrd_put; returns the HTTP status, with the
 * error's text in text ("" for 200). */
int xcpd_rrd_put_finish(xcpd_listener *l, xcpd_rrd_put *p, char *text,
                        size_t size);
enum MHD_Result xcpd_rrd_put_step(xcpd_listener *l, struct MHD_Connection *c,
                                  xcp_server_peer peer, xcpd_rrd_put **state,
                                  const char *data, size_t *n);
void xcpd_rrd_put_free(xcpd_rrd_put *p);

/* ---- CONNECT /migrate_receive (migrate.c) ------------------------------- */

/* The destination's end of VM.pool_migrate: the connection is taken from
 * MHD, answered 200 and handed to a thread running
 * xcp_server_migrate_receive; the request closes it when that ends.
 * *state is the request's, freed with xcpd_migrate_free. */
typedef struct xcpd_migrate xcpd_migrate;
enum MHD_Result xcpd_migrate_step(xcpd_listener *l, struct MHD_Connection *c,
                                  xcp_server_peer peer, xcpd_migrate **state,
                                  size_t *upload_data_size);
void xcpd_migrate_free(xcpd_migrate *st);

/* ---- /cli (cli.c) -------------------------------------------------------- */

/* A /cli request's state, owned by the request (xcpd_cli_free). */
typedef struct xcpd_cli xcpd_cli;

/*
 * The handler of POST /cli (XAPI's thin CLI protocol, for the stock xe),
 * for every call after the first (headers) one: gathers the body, then
 * takes the connection and runs the command on a thread (cli.c says
 * how); *state starts NULL.
 */
enum MHD_Result xcpd_cli_step(xcpd_listener *l, struct MHD_Connection *c,
                              xcp_server_peer peer, xcpd_cli **state,
                              const char *data, size_t *size);
void xcpd_cli_free(xcpd_cli *st);

/* End every running command's client connection (shutdown) and wait up
 * to wait_ms for their threads; the count still running. */
unsigned xcpd_cli_shutdown(xcpd_http *h, unsigned wait_ms);

/* ---- downloads made by xe's code (xe_get.c) ------------------------------ */

/* A GET of such a download's state, owned by the request. */
typedef struct xcpd_xe_get xcpd_xe_get;

/* Whether url is one of them (XAPI's /pool/xmldbdump, /blob). */
int xcpd_xe_get_route(const char *url);
/* The same for the uploads (PUT /blob). */
int xcpd_xe_put_route(const char *url);
/* The handler, for every call after the first (headers) one; *state
 * starts NULL (xe_get.c says how it answers); put: the request is a
 * PUT, http10: of HTTP/1.0 (XAPI's thin client). */
enum MHD_Result xcpd_xe_get_step(xcpd_listener *l, struct MHD_Connection *c,
                                 const char *url, int put, int http10,
                                 xcpd_xe_get **state, const char *upload_data,
                                 size_t *upload_data_size);
void xcpd_xe_get_free(xcpd_xe_get *st);
/* Wait up to wait_ms for the running ones (shutdown: their connections
 * are suspended); the count still running. */
unsigned xcpd_xe_get_shutdown(unsigned wait_ms);

/* ---- anonymous connections (guard.c) ------------------------------------ */

/* The accounting of one TCP listener's anonymous connections. */
typedef struct xcpd_guard xcpd_guard;

typedef struct xcpd_guard_limits {
    unsigned per_ip;        /* anonymous connections per address; 0: any */
    unsigned total;         /* anonymous connections in all; 0: any */
    unsigned trusted_timeout_s; /* idle timeout once authenticated */
} xcpd_guard_limits;

/* A guard with these limits, or NULL (no memory). */
xcpd_guard *xcpd_guard_new(const xcpd_guard_limits *lim);
/* Free it, after its daemon has stopped. NULL is fine. */
void xcpd_guard_free(xcpd_guard *g);
/* MHD's accept policy (cls: the guard): refuses a connection that would
   take its address or the listener over the anonymous limits. */
enum MHD_Result xcpd_guard_accept(void *cls, const struct sockaddr *addr,
                                  socklen_t addrlen);
/* MHD_OPTION_NOTIFY_CONNECTION (cls: the guard, or NULL for none):
   counts every new connection as anonymous, and uncounts it when it
   closes. */
void xcpd_guard_notify(void *cls, struct MHD_Connection *c, void **socket_ctx,
                       enum MHD_ConnectionNotificationCode toe);
/* A request on c authenticated: c stops counting as anonymous and gets
   the trusted idle timeout. From the connection's handler only; a no-op
   on connections without a guard (the unix socket) or already trusted. */
void xcpd_guard_trust(struct MHD_Connection *c);

/* ---- logging (log.c) ---------------------------------------------------- */

/* Send log lines to syslog instead of stderr. */
void xcpd_log_use_syslog(void);
/* One line, "xcpd: " prefixed on stderr; prio as syslog's LOG_*. */
void xcpd_log(int prio, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Make a crash say why on stderr: MHD's panics are logged with their
   reason and place, and a fatal signal (SIGABRT, SIGSEGV, ...) prints the
   stack before the default action. Call once, early, before threads. */
void xcpd_log_fatal(void);

/* ---- TLS material (tls.c) ----------------------------------------------- */

/*
 * The PEM certificate and key for the TLS listeners: read from cert_file
 * and key_file when given, else from <state_dir>/xcpd-{cert,key}.pem,
 * which are generated (self-signed) when absent. Returns 0 or -1 after
 * logging why. The strings are malloc'd and NUL-terminated.
 */
int xcpd_tls_material(const char *state_dir, const char *cert_file,
                      const char *key_file, char **cert_pem, char **key_pem);

/* ---- NBD (nbd.c) ---------------------------------------------------------- */

/* The NBD server behind VDI.get_nbd_info: our front end (nbd_front.c)
 * before a qemu-storage-daemon. */
typedef struct xcpd_nbd xcpd_nbd;

/*
 * Start it (from the main thread: it dies with the thread that started
 * it) to listen on listen ("ADDR:PORT" or "[IPv6]:PORT", checked
 * already), with the host's certificate and key for TLS; its files go
 * in <state_dir>/nbd; a negotiated client on which no byte moves for
 * idle_s seconds is closed (0: never). NULL after logging why.
 */
xcpd_nbd *xcpd_nbd_start(const char *state_dir, const char *listen,
                         const char *cert_pem, const char *key_pem,
                         unsigned idle_s);
/* The hook to hand to xcp_server_set_nbd(); valid until xcpd_nbd_stop. */
void xcpd_nbd_hook(xcpd_nbd *n, xcp_server_nbd *out);
/* Stop the server (its clients are cut off) and free n. NULL is fine. */
void xcpd_nbd_stop(xcpd_nbd *n);

/* ---- the NBD front end (nbd_front.c) ------------------------------------ */

/* xcpd's NBD listener: negotiation and TLS here, then QEMU's NBD server. */
typedef struct xcpd_nbd_front xcpd_nbd_front;

/* What the front end asks of its owner; called from its threads. */
typedef struct xcpd_nbd_front_hooks {
    /* Whether an export of that name is handed out now. */
    int (*known)(void *arg, const char *name);
    /* Whether a new client must do TLS first (the nbd purpose). */
    int (*tls_required)(void *arg);
    void *arg;
} xcpd_nbd_front_hooks;

/*
 * Listen on host:port (numeric; host "" for any) and serve NBD clients:
 * TLS with cert_pem and key_pem, the names checked with the hooks, each
 * accepted connection then handed to the NBD server on the unix socket
 * backend; one on which no byte moved either way for idle_s seconds once
 * negotiated is closed (0: never). NULL with why said in why.
 */
xcpd_nbd_front *xcpd_nbd_front_start(const char *host, const char *port,
                                     const char *cert_pem,
                                     const char *key_pem,
                                     const char *backend,
                                     const xcpd_nbd_front_hooks *hooks,
                                     unsigned idle_s,
                                     char *why, size_t whylen);
/* Stop listening, cut every client off, wait for them and free f. NULL
 * is fine. */
void xcpd_nbd_front_stop(xcpd_nbd_front *f);

#endif
