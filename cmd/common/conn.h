/*
 * conn: how a front end (xe, xcp-top) reaches the toolstack, as XAPI's xe
 * chooses: a server named on the command line over the network; else this
 * host's daemon (xcpd) through the state directory's socket when one
 * listens; else the engine of the state directory, embedded in the
 * process. Compiled into each front end by its Makefile fragment; uses
 * libc and the public API only.
 */
#ifndef XCP_CMD_CONN_H
#define XCP_CMD_CONN_H

#include <xcp/xcp.h>

#include <stdbool.h>
#include <stddef.h>

/* Room for a URI made by xcmd_server_uri or xcmd_open_here. */
#define XCMD_URI_MAX 4200

/*
 * Whether -s server [-p port] means this host (daemon socket or embedded
 * engine) rather than the network: no server, or localhost/127.0.0.1
 * without a port (port < 0). As XAPI's xe, except that an explicit port
 * asks for that TCP port (how a daemon on another port is reached).
 */
bool xcmd_is_local(const char *server, int port);

/*
 * The engine's default state directory (see xcp_open_options):
 * $XCP_STATE_DIR, else /var/lib/xcp for root, else $XDG_DATA_HOME/xcp or
 * ~/.local/share/xcp. Returns 0, or -1 when it does not fit in len.
 */
int xcmd_state_dir(char *buf, size_t len);

/*
 * "https://server[:port]" ("http://" with nossl; an IPv6 address in
 * brackets; no port when port < 0) into buf. Returns 0, or -1 when it
 * does not fit.
 */
int xcmd_server_uri(char *buf, size_t len, const char *server, int port,
                    bool nossl);

/*
 * A password file's text (-pwf), split in place: the user name on the
 * first line, the password on the second (a third line and what follows
 * are ignored). *user and *password point into text. Returns 0, or -1
 * when there is no second line.
 */
int xcmd_pwfile_split(char *text, const char **user, const char **password);

/*
 * Whether this host's daemon accepts connections on its socket
 * (<state dir>/xapi): a socket left by a daemon that died does not
 * count. When it does, "unix:<path>" goes into uri (len bytes).
 */
bool xcmd_daemon_uri(char *uri, size_t len);

/*
 * This host's toolstack: the daemon's socket if one listens, else the
 * engine embedded (opened with originator). While another process holds
 * the state directory (a daemon that is starting, an embedded xe), waits
 * up to timeout_ms for whichever comes first: the directory, or the
 * daemon's socket. Returns 1 with the daemon's "unix:" URI in uri (to
 * open with xcp_session_open_remote), 0 with *s open on the engine, or
 * -1 with the library's error (xcp_error_last).
 */
int xcmd_open_here(xcp_session **s, const char *originator, int timeout_ms,
                   char *uri, size_t len);

/*
 * ro set for uri with XAPI's xe defaults (newcli.ml): user "root" and
 * password "null" when NULL (local root needs none), the server's
 * certificate not verified (XAPI hosts present self-signed ones), JSON-RPC
 * on this host's socket ("unix:" URIs), XML-RPC elsewhere (every XAPI
 * speaks it). The strings are borrowed.
 */
void xcmd_remote_options(xcp_remote_options *ro, const char *uri,
                         const char *user, const char *password,
                         const char *originator);

#endif
