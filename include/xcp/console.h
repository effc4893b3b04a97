/*
 * libxcp public API: opening a VM's console.
 *
 * A running VM has console records (console.protocol "vt100": its text
 * console; "rfb": its framebuffer, for HVM guests), made when its domain
 * is built and gone when it stops. xcp_console_open() gives the caller a
 * connected stream to one: text both ways for vt100, the RFB (VNC)
 * protocol for rfb, as XAPI's `CONNECT /console` does once its 200 OK
 * is read.
 */
#ifndef XCP_CONSOLE_H
#define XCP_CONSOLE_H

#include <xcp/common.h>
#include <xcp/session.h>
#include <xcp/classes.h>

XCP_BEGIN_DECLS

/**
 * Open a console's stream. On success *fd is a connected stream socket
 * (close-on-exec) that the caller owns and closes: the console speaks
 * on it at once (an RFB server sends its ProtocolVersion first) until
 * the caller closes it or the VM's domain goes away (then reads see end
 * of file). Several streams of one console may be open at once.
 *
 * A local session asks the hypervisor driver for the stream; a remote
 * one opens `CONNECT /console?ref=<console>&session_id=<session>` to
 * the server of the session's URI (http, https or unix socket) and hands
 * over the connection once the server answers 200 (for https the bytes
 * pass through TLS in a thread of the library until either side closes).
 *
 * Errors: SESSION_INVALID [session]; HANDLE_INVALID ["console", ref] for
 * a console that does not exist (any more: a VM's consoles go when it
 * halts); VM_BAD_POWER_STATE [vm, "running", actual] when its VM is not
 * running or paused; INTERNAL_ERROR [message] when the hypervisor driver
 * cannot open it (the message says why; e.g. a driver without consoles);
 * for a remote session, the transport errors of xcp_session_open_remote()
 * and, for a refusal without a XenAPI error, TRANSPORT_ERROR [uri,
 * "HTTP <status>"].
 */
XCP_EXTERN int xcp_console_open(xcp_session *s, int *fd, xcp_console console);

XCP_END_DECLS

#endif
