/*
 * libxcp public API: serving XenAPI to network clients.
 *
 * This is what a daemon (our xcpd) links to serve the engine over HTTP: it
 * owns the transport (listeners, TLS, HTTP parsing), the library owns
 * everything XenAPI: decoding XML-RPC and JSON-RPC bodies, authentication
 * (an auth file of SHA-512 crypt hashes, or PAM), sessions with their
 * limits and inactivity timeout, dispatch, Async tasks, events, and the
 * raw VDI transfers behind /import_raw_vdi and /export_raw_vdi.
 *
 * Replies may be deferred: a long poll (event.from, event.next) or a failed
 * login (answered after a delay) completes later, from a library thread,
 * through the caller's callback. No thread is held while a reply is
 * pending, so thousands of long polls cost memory only.
 */
#ifndef XCP_SERVER_H
#define XCP_SERVER_H

#include <stdint.h>
#include <stddef.h>

#include <xcp/common.h>

XCP_BEGIN_DECLS

/** A XenAPI server on one engine (state directory). Thread-safe. */
typedef struct xcp_server xcp_server;

#define XCP_SERVER_OPTIONS_VERSION 1

/** Options for xcp_server_open(). Zero-initialise, set version. */
typedef struct xcp_server_options {
    unsigned version;        /**< XCP_SERVER_OPTIONS_VERSION */
    const char *state_dir;   /**< as xcp_open_options.state_dir */
    const char *hv;          /**< as xcp_open_options.hv */
    const char *auth_file;   /**< lines "user:HASH" (HASH a crypt(3)
                                  string, e.g. from openssl passwd -6; '#'
                                  comments); NULL: PAM */
    const char *pam_service; /**< PAM service when no auth file; NULL:
                                  "xapi". A path ("/etc/xcp/pam/xcpd")
                                  names a service file outside
                                  /etc/pam.d: its directory becomes PAM's
                                  configuration directory. */
    unsigned session_timeout_s; /**< inactivity before a session is
                                     destroyed; 0: 24 hours */
    unsigned session_limit;  /**< live sessions per originator (or per
                                  user when no originator); the least
                                  recently used beyond it are destroyed;
                                  0: 500 */
    unsigned auth_fail_delay_ms; /**< delay before a failed login is
                                      answered (other clients are served
                                      meanwhile); 0: 5000 */
    unsigned gc_interval_ms; /**< how often expired sessions are looked
                                  for; 0: 60000 */
    unsigned call_threads;   /**< threads running the calls that may take
                                  long (explicit messages such as
                                  VM.start; getters and setters run on the
                                  caller's thread); 0: 8 */
} xcp_server_options;

/**
 * Open the engine of a state directory (holding its lock until
 * xcp_server_close()) and start the server's timer thread.
 */
XCP_EXTERN int xcp_server_open(xcp_server **out,
                               const xcp_server_options *opts);

/**
 * Stop serving: new requests are refused (HTTP 503), pending long polls
 * complete now (their callbacks run before this returns) and running
 * calls finish. Call before stopping the transport; safe to call twice.
 */
XCP_EXTERN void xcp_server_shutdown(xcp_server *srv);

/** Shut down if not yet done, close the engine and free the server. */
XCP_EXTERN void xcp_server_close(xcp_server *srv);

/** An export VDI.get_nbd_info asks the embedder's NBD server for. Every
 * string is borrowed for the duration of the call. */
typedef struct xcp_server_nbd_export {
    const char *vdi_uuid;    /**< the VDI */
    const char *session;     /**< the session it is for */
    const char *path;        /**< the VDI's image file, served read-only */
    const char *format;      /**< its image format ("qcow2", "vhd", "raw") */
    int tls;                 /**< nonzero: clients must use TLS (a network
                                  has purpose nbd; else insecure_nbd) */
} xcp_server_nbd_export;

/**
 * The NBD server of an embedder (xcpd --nbd-listen): VDI.get_nbd_info
 * names it and has it export the VDI for the calling session; the end of
 * a session (logout, expiry) withdraws that session's exports. The
 * callbacks run on a call's thread with the engine's lock held: they must
 * not call the library, and should be quick.
 */
typedef struct xcp_server_nbd {
    unsigned port;           /**< the TCP port clients connect to */
    const char *cert_pem;    /**< the certificate presented with TLS */
    const char *subject;     /**< the host name in it */
    /** Export e (a no-op when it is exported already) under the name
     * written to name, "/<VDI uuid>?session_id=<token>" as XAPI's
     * clients expect, the token standing for the session (see
     * docs/design-nbd.md): 0, or -1 with why (a sentence) in why. */
    int (*export_vdi)(void *arg, const xcp_server_nbd_export *e,
                      char *name, size_t namelen, char *why, size_t whylen);
    /** Withdraw every export of this session. */
    void (*session_gone)(void *arg, const char *session);
    void *arg;               /**< passed to both */
} xcp_server_nbd;

/**
 * Hand the server an NBD server to name in VDI.get_nbd_info (copied; its
 * strings and arg must stay valid until this is called again or the
 * server closed), or NULL to have none (get_nbd_info then answers an
 * empty list). Returns 0.
 */
XCP_EXTERN int xcp_server_set_nbd(xcp_server *srv, const xcp_server_nbd *nbd);

/** The canonical state directory the server runs on. Owned by the
 * server: valid until xcp_server_close(srv). */
XCP_EXTERN const char *xcp_server_state_dir(const xcp_server *srv);

/** RPC encodings. */
typedef enum xcp_server_protocol {
    XCP_SERVER_XMLRPC = 0,  /**< POST / and any unmatched POST path */
    XCP_SERVER_JSONRPC = 1, /**< POST /jsonrpc (JSON-RPC 1.0 and 2.0) */
} xcp_server_protocol;

/** Who sent a request. */
typedef struct xcp_server_peer {
    int local_root;          /**< nonzero: uid 0 on the local unix socket
                                  (no password needed, as on XAPI) */
    const char *address;     /**< "ip:port", "unix:uid=N"; for logs */
} xcp_server_peer;

/** One RPC request: the whole body. Borrowed for the duration of
 * xcp_server_rpc() / xcp_server_rpc_stream() only, even when the reply
 * comes later. */
typedef struct xcp_server_request {
    xcp_server_protocol protocol;
    const char *body;        /**< need not be NUL-terminated */
    size_t len;
    xcp_server_peer peer;
} xcp_server_request;

/** A reply body produced as it is sent; see xcp_server_rpc_stream(). */
typedef struct xcp_server_stream xcp_server_stream;

/** One reply: everything the transport needs to answer. */
typedef struct xcp_server_reply {
    int http_status;         /**< 200 (API results and API errors), 500
                                  (unparsable body), 503 (shutting down) */
    const char *content_type; /**< "text/xml", "application/json" or
                                   "text/html" */
    const char *body;
    size_t len;
    xcp_server_stream *stream; /**< NULL, or (xcp_server_rpc_stream() only)
                                    the body, read with
                                    xcp_server_stream_read(); body is then
                                    NULL. The transport owns it: close it
                                    with xcp_server_stream_close(). */
} xcp_server_reply;

/**
 * Completion callback: called exactly once per request, either before
 * xcp_server_rpc() returns or later from a library thread (long polls,
 * failed logins, and explicit messages, which run on the server's call
 * threads so that a slow VM.start never holds the transport's thread). The reply and
 * its body are valid only during the call (copy them). It must not call
 * back into the server for the same request, nor block for long.
 */
typedef void (*xcp_server_done_fn)(void *arg, const xcp_server_reply *reply);

/**
 * Handle one XML-RPC or JSON-RPC request; see xcp_server_done_fn.
 * Returns nonzero when the request was authenticated: made in a live
 * session, or a login that succeeded. That is known when this returns,
 * even for a request still parked (a long poll), so a transport can give
 * an authenticated peer's connection more room than an anonymous one's.
 */
XCP_EXTERN int xcp_server_rpc(xcp_server *srv, const xcp_server_request *req,
                              xcp_server_done_fn done, void *arg);

/**
 * As xcp_server_rpc(), but a large result may come as a stream
 * (xcp_server_reply.stream): get_all_records and get_all_records_where
 * are encoded a few records at a time, read from the engine as the
 * transport asks for the next bytes, so a reply costs a bounded amount of
 * memory whatever the pool's size (a record changed or destroyed while
 * the reply is being sent is written as it is when it is reached, or left
 * out). Errors found before the first byte (bad session, bad expression)
 * are ordinary replies. Returns as xcp_server_rpc() does.
 */
XCP_EXTERN int xcp_server_rpc_stream(xcp_server *srv,
                                     const xcp_server_request *req,
                                     xcp_server_done_fn done, void *arg);

/**
 * The next bytes of a streamed body: up to n into buf, *got the count (0:
 * the body is complete). A negative return (the body cannot be finished,
 * e.g. the session ended or memory ran out; the thread's error says why)
 * means the transport must abort the response, so that the client sees a
 * truncated reply rather than a wrong one. Takes the engine lock briefly;
 * one thread at a time per stream.
 */
XCP_EXTERN int xcp_server_stream_read(xcp_server_stream *st, void *buf,
                                      size_t n, size_t *got);

/**
 * Free a stream, read to the end or not. Every stream must be closed
 * before xcp_server_close(), which waits for them.
 */
XCP_EXTERN void xcp_server_stream_close(xcp_server_stream *st);

/* ---- raw VDI transfers (/import_raw_vdi, /export_raw_vdi) ------------- */

/** A VDI transfer in progress. One thread at a time. */
typedef struct xcp_server_transfer xcp_server_transfer;

typedef enum xcp_server_direction {
    XCP_SERVER_IMPORT = 0,   /**< client → VDI (PUT /import_raw_vdi) */
    XCP_SERVER_EXPORT = 1,   /**< VDI → client (GET /export_raw_vdi) */
} xcp_server_direction;

/* Version 2 added base. */
#define XCP_SERVER_TRANSFER_REQUEST_VERSION 3

/** What a transfer moves. */
typedef enum xcp_server_transfer_kind {
    XCP_SERVER_VDI = 0,      /**< a VDI's contents (/import_raw_vdi, ...) */
    XCP_SERVER_VM = 1,       /**< a VM as an XVA (/import, /export and
                                  their _metadata forms) */
} xcp_server_transfer_kind;

/** What a transfer handler parsed from its URL (query or cookies).
 * Zero-initialise, set version; the struct only grows at its end, under
 * a new version. Borrowed for the duration of
 * xcp_server_transfer_open() only. */
typedef struct xcp_server_transfer_request {
    unsigned version;        /**< XCP_SERVER_TRANSFER_REQUEST_VERSION */
    xcp_server_direction direction;
    const char *session_id;  /**< NULL when absent */
    const char *task_id;     /**< existing task to report into, or NULL */
    const char *vdi;         /**< VDI ref or uuid */
    const char *format;      /**< "raw" (default when NULL), "vhd" or
                                  "qcow2" or "tar" (XAPI's chunked tar),
                                  any case; others give
                                  INVALID_VALUE ["format", f] → 404.
                                  An import of an image writes what it
                                  holds into the VDI, whatever its own
                                  format; an export produces a dynamic
                                  VHD or a qcow2 v3 image */
    const char *basic_user;  /**< Authorization: Basic credentials, or */
    const char *basic_password; /**< NULL */
    uint64_t content_length; /**< import: declared body size; UINT64_MAX
                                  when not given */
    xcp_server_peer peer;
    int chunked;             /**< import: the body is in XAPI's chunk
                                  frames (raw only, else INVALID_VALUE
                                  ["chunked", format] → 400): 12-byte
                                  headers (offset u64, length u32,
                                  little-endian) each before its data,
                                  the last one all zeros */
    const char *sr_id;       /**< import without vdi: a new VDI ("Imported
                                  VDI", content_length bytes, raw only,
                                  else NOT_IMPLEMENTED → 400) is made in
                                  this SR (ref or uuid) and destroyed
                                  again if the import fails; the task's
                                  result is its ref. A VM import
                                  (XCP_SERVER_VM) goes to this SR. NULL
                                  when absent: the pool's default SR */
    /* XCP_SERVER_VM transfers (XAPI's /export and /import): */
    xcp_server_transfer_kind kind;
    const char *vm;          /**< export: VM ref or uuid */
    const char *compression; /**< export: use_compression (NULL, false,
                                  true, gzip, zstd) */
    int metadata;            /**< ova.xml only (the _metadata forms); an
                                  import then uses the existing VDIs */
    int no_snapshots;        /**< export: export_snapshots=false */
    int preserve_power_state;/**< export: a suspended VM stays so */
    int restore;             /**< import: keep the VMs' uuids */
    int force;               /**< import: despite checksum mismatches */
    /* version 2: */
    const char *base;        /**< VDI export: base= (NULL: none), an
                                  earlier snapshot (ref or uuid) to send
                                  only what differs from: vhd, a
                                  differencing VHD whose parent is base;
                                  qcow2, an image backed by
                                  "<base uuid>.qcow2"; raw, zeros where
                                  nothing changed; not found: 404 */
    /* version 3: */
    int include_vhd_parents; /**< VM metadata export (/export_metadata):
                                  the VDIs the disks' sm_config
                                  "vhd-parent" names, and theirs, go in
                                  too (as XAPI's export.ml); ignored
                                  elsewhere, as XAPI does */
} xcp_server_transfer_request;

/**
 * Start a transfer: check r->version (INVALID_VALUE
 * ["xcp_server_transfer_request.version", v], 500), authenticate (local
 * root, session_id, or Basic
 * credentials), find the VDI, check it can be used (not attached
 * read-write by a running VM), create a task unless task_id names one, and
 * open the disk image. On failure returns a negative code with the XenAPI
 * error as the thread's last error and *http_status set (401, 403, 404,
 * 500); a given task_id is failed with that error. On success
 * *http_status is 200 and, for an export, *size is the byte count that
 * will be sent (the VDI's virtual size for raw, the image's length for
 * vhd).
 */
XCP_EXTERN int xcp_server_transfer_open(xcp_server *srv,
                                        xcp_server_transfer **out,
                                        uint64_t *size, int *http_status,
                                        const xcp_server_transfer_request *r);

/** The transfer's task ref (for the task-id response header). Owned by
 * the transfer: valid until xcp_server_transfer_close(t). */
XCP_EXTERN const char *
xcp_server_transfer_task(const xcp_server_transfer *t);

/** The VDI's uuid (for content-disposition; "" for a VM). Owned by the transfer:
 * valid until xcp_server_transfer_close(t). */
XCP_EXTERN const char *
xcp_server_transfer_vdi_uuid(const xcp_server_transfer *t);

/**
 * Import: write the next n bytes of the body, decoded by its format and
 * framing (a write past the VDI's virtual size, a malformed image or
 * frame fail with VDI_IO_ERROR). Task progress follows the declared
 * content length, else the disk offset reached.
 */
XCP_EXTERN int xcp_server_transfer_write(xcp_server_transfer *t,
                                         const void *buf, size_t n);

/**
 * Export: read up to n bytes at offset into buf; *got receives the count
 * (0 at the end). Task progress follows the offset. (pread(2)'s order.)
 * A VM's XVA, whose size is not known beforehand (open's *size is then
 * UINT64_MAX), is read in order: offset must be where the last read
 * ended.
 */
XCP_EXTERN int xcp_server_transfer_read(xcp_server_transfer *t, void *buf,
                                        size_t n, size_t *got,
                                        uint64_t offset);

/** A piece of an export's body, as xcp_server_transfer_read_piece()
 * hands it out. */
typedef struct xcp_server_piece {
    size_t len;         /**< bytes of the body (0: the end) */
    int fd;             /**< -1: they are in the caller's buffer; else
                             they lie as they are in this file, from pos,
                             to be sent with sendfile(2) (the transfer's
                             own descriptor: valid until
                             xcp_server_transfer_close(), never to be
                             written to or closed) */
    uint64_t pos;       /**< where in fd */
} xcp_server_piece;

/**
 * Export: the body's next piece at offset, as xcp_server_transfer_read()
 * but without reading the disk's data where it lies as it is in an image
 * file (a raw image, a qcow2 image's data clusters, a VHD's data
 * sectors, through its chain):
 * such a piece names the file, and may be longer than n (up to 16 MiB);
 * the bytes the format makes (headers, tables, zeros) come into buf (at
 * most n). A VM's XVA, XAPI's chunked tar and raw deltas always come as
 * bytes. Task progress follows the offset. Errors as
 * xcp_server_transfer_read().
 */
XCP_EXTERN int xcp_server_transfer_read_piece(xcp_server_transfer *t,
                                              void *buf, size_t n,
                                              uint64_t offset,
                                              xcp_server_piece *out);

/**
 * End a transfer. ok nonzero: data flushed, the task succeeds (an import's
 * result is the VDI ref). ok zero (client went away, short body): the task
 * fails with the thread's last error, or VDI_IO_ERROR ["transfer
 * incomplete"] when there is none. An ok import still fails when its body
 * was short of its declared length, of its last chunk frame or of a VHD
 * block. Returns the flush result (ok) or 0.
 * Frees t.
 */
XCP_EXTERN int xcp_server_transfer_close(xcp_server_transfer *t, int ok);

/* ---- consoles (/console) ---------------------------------------------- */

/** What a /console handler parsed from its request. Borrowed for the
 * duration of xcp_server_console_open() only. */
typedef struct xcp_server_console_request {
    const char *id;          /**< ref= or uuid=: a console's, or a VM's
                                  (then its rfb console if it has one,
                                  else its text one) */
    const char *session_id;  /**< query or cookie; NULL when absent */
    const char *basic_user;  /**< Authorization: Basic credentials, or */
    const char *basic_password; /**< NULL */
    xcp_server_peer peer;
} xcp_server_console_request;

/**
 * Open a console for a client: authenticate (local root, session_id, or
 * Basic credentials), find the console (or the VM's), check its VM is
 * running or paused, and open its stream. On success *fd is a connected
 * stream socket the transport owns (it moves the bytes between it and the
 * client, then closes it) and *http_status is 200. On failure a negative
 * code, the XenAPI error as the thread's last error, and *http_status:
 * 401 (no or bad credentials, SESSION_INVALID), 400 (no id), 404
 * (HANDLE_INVALID, UUID_INVALID, VM_BAD_POWER_STATE), 500 (the driver
 * could not open it: INTERNAL_ERROR with its message).
 */
XCP_EXTERN int xcp_server_console_open(xcp_server *srv, int *fd,
                                       int *http_status,
                                       const xcp_server_console_request *r);

/* ---- metrics (/rrd_updates, /host_rrd, /vm_rrd, /metrics) ------------ */

/** Which metrics document a request asks for. */
typedef enum xcp_server_metrics_kind {
    XCP_SERVER_RRD_UPDATES = 0, /**< /rrd_updates: xport rows since start */
    XCP_SERVER_HOST_RRD = 1,    /**< /host_rrd: the host's whole RRD      */
    XCP_SERVER_VM_RRD = 2,      /**< /vm_rrd?uuid=: a VM's whole RRD      */
    XCP_SERVER_METRICS = 3,     /**< /metrics: Prometheus text format     */
} xcp_server_metrics_kind;

/** What a metrics handler parsed from its request, as XAPI's handlers
 * read the query. Borrowed for the duration of xcp_server_metrics(). */
typedef struct xcp_server_metrics_request {
    xcp_server_metrics_kind kind;
    const char *start;       /**< rrd_updates: seconds since the epoch, or
                                  negative: relative to the last update
                                  (required) */
    const char *cf;          /**< AVERAGE, MIN, MAX or NULL: all of them */
    const char *interval;    /**< seconds per row wanted (NULL: finest) */
    const char *host;        /**< "true": include the host's RRD */
    const char *const *vm_uuids; /**< vm_uuid= values (NULL: every VM's) */
    size_t n_vm_uuids;
    int json;                /**< json= given, or Accept prefers JSON */
    const char *uuid;        /**< vm_rrd: the VM's uuid */
    const char *session_id;  /**< query or cookie; NULL when absent */
    const char *basic_user;  /**< Authorization: Basic credentials, or */
    const char *basic_password; /**< NULL */
    xcp_server_peer peer;
} xcp_server_metrics_request;

/**
 * Answer a metrics request: authenticate (local root, session_id, or
 * Basic credentials), then produce the document in XAPI's format (XML,
 * or JSON when r->json; Prometheus text for /metrics). On success
 * *body (free it with xcp_free()), *len, *content_type (static) and
 * *http_status 200. On failure a negative code, the error as the
 * thread's last error, and *http_status: 401 (no or bad credentials),
 * 400 (start or uuid missing or malformed), 404 (no RRD for that uuid),
 * 500 (no archive fits, out of memory).
 */
XCP_EXTERN int xcp_server_metrics(xcp_server *srv,
                                  const xcp_server_metrics_request *r,
                                  int *http_status, const char **content_type,
                                  char **body, size_t *len);

/** What a PUT /rrd handler parsed from its request (XAPI's put_rrd, which
 * hosts use to hand a VM's RRD on when it moves). Borrowed for the
 * duration of xcp_server_rrd_put(). */
typedef struct xcp_server_rrd_put_request {
    const char *uuid;        /**< the VM's (or this host's) uuid */
    int archive;             /**< archive= given: keep it for the VM's next
                                  start here, never for a host */
    const char *session_id;  /**< query or cookie; NULL when absent */
    const char *basic_user;  /**< Authorization: Basic credentials, or */
    const char *basic_password; /**< NULL */
    xcp_server_peer peer;
    const char *pool_secret; /**< the pool_secret cookie (XAPI's hosts
                                  send one instead of a session), or
                                  NULL */
} xcp_server_rrd_put_request;

/**
 * Take an RRD a client PUT to /rrd: authenticate (local root, session_id,
 * the pool secret of this host's pool, or Basic credentials), read body (len bytes of XAPI's RRD XML, as GET
 * /vm_rrd writes it) and make it the RRD of r->uuid: a VM's -- replacing
 * the one in memory when the VM runs here, else written durably for its
 * next start here -- or this host's (not with archive). On success 0 and
 * *http_status 200. On failure a negative code, the error as the thread's
 * last error, and *http_status: 401 (no or bad credentials), 400 (no uuid,
 * a host's RRD to archive, a body that is not an RRD: INVALID_VALUE with
 * the reason), 404 (UUID_INVALID: no such VM or host), 500 (the write
 * failed, no metrics on this host).
 */
XCP_EXTERN int xcp_server_rrd_put(xcp_server *srv,
                                  const xcp_server_rrd_put_request *r,
                                  const char *body, size_t len,
                                  int *http_status);

/** What a CONNECT /migrate_receive handler parsed from its request: the
 * destination's end of VM.pool_migrate between hosts of a pool. Borrowed
 * for the duration of xcp_server_migrate_receive(). */
typedef struct xcp_server_migrate_request {
    const char *vm;          /**< ref= : the VM (ref or uuid) */
    const char *session_id;  /**< a pool session (session.slave_login) */
    const char *seq;         /**< seq= : the source's database position
                                  (decimal), waited for first; NULL: none */
    xcp_server_peer peer;
} xcp_server_migrate_request;

/**
 * Receive a VM that another host of the pool migrates here. fd is the
 * request's connection, already answered "HTTP/1.1 200" and in the
 * caller's hands (blocking or not: it is made blocking); it carries the
 * handshake (one line from here: "accept" or "error <why>"), the
 * hypervisor driver's migration stream, then "domid <n>" from here, "go"
 * from the source once the database says the VM resides here, "done"
 * from here once the guest runs. Blocks for the whole migration (run it
 * on a thread of its own). 0 when the guest runs here; on failure a
 * negative code, the error as the thread's last error, no domain of the
 * VM left here, and the source told when it can still hear: a session
 * that is not a pool one (INTERNAL_ERROR, as XAPI's intra-pool calls) or
 * no session (SESSION_INVALID), no such VM (HANDLE_INVALID), a VM not
 * running (VM_BAD_POWER_STATE), this host disabled or short of memory
 * (HOST_DISABLED, HOST_NOT_ENOUGH_FREE_MEMORY), a broken stream. The
 * caller closes fd afterwards.
 */
XCP_EXTERN int xcp_server_migrate_receive(xcp_server *srv,
                                          const xcp_server_migrate_request *r,
                                          int fd);

XCP_END_DECLS

#endif
