/*
 * libxcp public API: sessions and dynamic calls.
 *
 * A session is what every call goes through. A local session runs the
 * engine in this process on a state directory (no daemon needed); a remote
 * session speaks XenAPI to a server (our xcpd or a real XAPI host). Both
 * accept exactly the same calls.
 */
#ifndef XCP_SESSION_H
#define XCP_SESSION_H

#include <xcp/common.h>
#include <xcp/value.h>

XCP_BEGIN_DECLS

/** An open session. Opaque; one thread at a time. */
typedef struct xcp_session xcp_session;

#define XCP_OPEN_OPTIONS_VERSION 1

/** Options for xcp_session_open_local(). Zero-initialise, set version. */
typedef struct xcp_open_options {
    unsigned version;      /**< XCP_OPEN_OPTIONS_VERSION */
    const char *state_dir; /**< NULL: $XCP_STATE_DIR, else /var/lib/xcp for
                                root, else $XDG_DATA_HOME/xcp or
                                ~/.local/share/xcp */
    const char *hv;        /**< hypervisor driver name ("sim", "xen"), or
                                NULL: $XCP_HV, else xen when usable, else
                                sim */
    const char *originator; /**< client tag recorded in the session */
    unsigned lock_timeout_ms; /**< how long to wait for another process
                                   holding the state dir; 0 = forever */
} xcp_open_options;

/**
 * Open a session on an engine embedded in this process. The engine owns
 * the state directory while at least one local session is open (other
 * processes wait for it). The session is logged in as the local superuser.
 */
XCP_EXTERN int xcp_session_open_local(xcp_session **out,
                                      const xcp_open_options *opts);

/**
 * Open a session on a XenAPI server and log in. uri is "https://host[:port]",
 * "http://host[:port]" or "unix:/path/to/socket"; uri NULL opens a local
 * session with default options (user and password are then ignored).
 * Remote sessions opened here speak XML-RPC and verify the server's
 * certificate with the system's CAs: see xcp_session_open_remote() for
 * other choices and for the transport errors.
 */
XCP_EXTERN int xcp_session_open(xcp_session **out, const char *uri,
                                const char *user, const char *password);

#define XCP_REMOTE_OPTIONS_VERSION 1

/** Wire encodings of a remote session. */
typedef enum xcp_remote_protocol {
    XCP_REMOTE_XMLRPC = 0,  /**< XML-RPC, POST / (what every XAPI serves) */
    XCP_REMOTE_JSONRPC = 1, /**< JSON-RPC 2.0, POST /jsonrpc */
} xcp_remote_protocol;

/** Options for xcp_session_open_remote(). Zero-initialise, set version. */
typedef struct xcp_remote_options {
    unsigned version;       /**< XCP_REMOTE_OPTIONS_VERSION */
    const char *uri;        /**< "https://host[:port]", "http://host[:port]"
                                 (default ports 443 and 80; IPv6 hosts in
                                 brackets) or "unix:/path/to/socket" */
    const char *user;       /**< NULL: "root" */
    const char *password;   /**< NULL: "" */
    const char *originator; /**< client tag sent at login; NULL: "libxcp" */
    xcp_remote_protocol protocol; /**< XCP_REMOTE_XMLRPC by default */
    const char *ca_file;    /**< PEM file of CA certificates to verify the
                                 server with; NULL: the system's CAs */
    bool insecure;          /**< do not verify the server's certificate nor
                                 its name (XAPI hosts use self-signed
                                 certificates; xe does this) */
    unsigned connect_timeout_ms; /**< to establish a connection; 0: 30 s */
    unsigned timeout_ms;    /**< longest wait for any one call's reply;
                                 0: no limit (calls such as VM.start may
                                 take minutes). event.from always gets at
                                 least its own timeout plus a margin. */
} xcp_remote_options;

/**
 * Open a session on a XenAPI server (our xcpd or a XAPI host) and log in
 * with session.login_with_password(user, password, "1.1", originator).
 * The session keeps one connection open (HTTP keep-alive) and may be used
 * by one thread at a time. Failures: the server's error (e.g.
 * SESSION_AUTHENTICATION_FAILED, XCP_EAPI), or a transport error returning
 * XCP_EIO with one of CONNECTION_FAILED [uri, reason] (nothing listens,
 * unknown host, unreachable), SSL_VERIFY_ERROR [reason] (certificate not
 * trusted), TLS_CONNECTION_FAILED [host, port] (TLS handshake failed) or
 * TRANSPORT_ERROR [uri, reason] (timeout, connection lost, HTTP error,
 * a reply that is not XenAPI). Later calls on the session report transport
 * failures the same way.
 */
XCP_EXTERN int xcp_session_open_remote(xcp_session **out,
                                       const xcp_remote_options *opts);

/** Log out (remote) or release the engine (local), and free the session. */
XCP_EXTERN void xcp_session_close(xcp_session *s);

/** The session's XenAPI reference ("OpaqueRef:..."). Owned by the
 * session: valid until xcp_session_close(s). */
XCP_EXTERN const char *xcp_session_ref(const xcp_session *s);

/** The state directory of a local session, or NULL for a remote one.
 * Owned by the session: valid until xcp_session_close(s). */
XCP_EXTERN const char *xcp_session_state_dir(const xcp_session *s);

/**
 * Call a XenAPI message by its wire name ("VM.start", "Async.VM.clone",
 * "VM.get_all_records"). args excludes the session, which is added.
 * Omitted trailing arguments with defaults take them. *result receives the
 * return value (XCP_VAL_NONE for void; a task ref for Async.). result may
 * be NULL when the caller does not want it.
 */
XCP_EXTERN int xcp_call(xcp_session *s, xcp_value *result,
                        const char *method, size_t nargs,
                        const xcp_value *args);

/**
 * Some fields of the records of a class: what a listing needs without the
 * whole of every record. *result is a STRUCT mapping the ref of each
 * record that matches where (get_all_records_where's expression; NULL:
 * every record) to a STRUCT of the named fields (model names, e.g.
 * "name_label"; a name given twice comes once). A remote session asks the
 * server for just those fields (xcpd takes the list as a further argument
 * of <Class>.get_all_records_where, and streams its reply); a server that
 * does not (XAPI) is asked for whole records, reduced here. Errors:
 * INVALID_VALUE ["class", name] or ["fields", name] for a name that is not
 * a class or one of its fields, and those of get_all_records_where.
 */
XCP_EXTERN int xcp_get_records_fields(xcp_session *s, xcp_value *result,
                                      const char *cls, const char *where,
                                      size_t nfields,
                                      const char *const *fields);

/**
 * Wait until a task (ref string) completes; on success its result value
 * is decoded into *result (may be NULL), on failure the task's error
 * becomes the thread's last error and a negative code is returned. The task
 * is destroyed either way.
 */
XCP_EXTERN int xcp_task_wait(xcp_session *s, xcp_value *result,
                             const char *task_ref);

/**
 * Interrupt what a session is waiting for, from another thread: the one
 * function that may be called on a session while another thread uses it
 * (a language binding's cancellation: Go's context, Python's
 * KeyboardInterrupt). The call blocked on s now returns at once with XCP_EINTR
 * and the error INTERRUPTED [] when it is waiting: a long poll
 * (event.from, event.next, so xcp_task_wait too) on a local session, or
 * any call waiting for its reply on a remote one (whose connection is then
 * dropped; the next call opens another, and what the server was doing goes
 * on there). A local call that is working rather than waiting (VM.start
 * under way) runs to its end. s stays interrupted: every later call on it
 * fails the same way, at once, until xcp_session_resume(s), so an
 * interrupt that comes just after a call returned stops the next one
 * instead of being lost. xcp_task_wait() interrupted leaves its task
 * (still running, not destroyed) to the caller, and xcp_session_close()
 * of a remote session still interrupted does not log out (the server ends
 * the session when it expires). Thread-safe; allocates nothing.
 */
XCP_EXTERN void xcp_session_interrupt(xcp_session *s);

/**
 * End the interruption of s (xcp_session_interrupt): calls on it work
 * again. Call it from the thread using s, between calls. Nothing happens
 * when s is not interrupted.
 */
XCP_EXTERN void xcp_session_resume(xcp_session *s);

/** Whether s is interrupted (xcp_session_interrupt, not yet resumed). */
XCP_EXTERN bool xcp_session_interrupted(const xcp_session *s);

XCP_END_DECLS

#endif
