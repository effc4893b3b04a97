/*
 * HTTP/1.1 over a unix socket for the remote driver's "unix:" sessions
 * (xe talking to the host's own xcpd: every local command), without
 * libcurl: a process that only talks to its local daemon never maps
 * libcurl and the TLS, DNS and authentication libraries it pulls in.
 * Enough HTTP for a server on the same host: a POST and its reply
 * (Content-Length, chunked, or up to the close), the connection kept alive
 * from call to call, and a bare connection for CONNECT /console.
 */
#ifndef XCP_CLIENT_HTTP_UNIX_H
#define XCP_CLIENT_HTTP_UNIX_H

#include "../internal.h"

/* What became of a request (xcp__uhttp_post). */
typedef enum {
    XCP__UH_OK = 0,
    XCP__UH_CONNECT, /* no connection to the socket: err is the errno */
    XCP__UH_TIMEOUT, /* no whole reply in time; sent says if the request
                      * went out */
    XCP__UH_TOO_BIG, /* the reply's body is over the caller's limit */
    XCP__UH_CLOSED,  /* the server closed before a whole reply */
    XCP__UH_IO,      /* send or receive failed: err is the errno */
    XCP__UH_BAD,     /* the answer is not HTTP */
    XCP__UH_NOMEM,
    XCP__UH_INTERRUPTED, /* wake_fd became readable (the connection is
                          * dropped) */
} xcp__uh_status;

/* A connection to the server at a socket path; zeroed, then
 * xcp__uhttp_init. Not thread-safe (one per session, as a curl handle). */
typedef struct xcp__uhttp {
    char *path;  /* the socket's path */
    int fd;      /* -1 while not connected */
    xcp__buf in; /* what was read and not yet taken */
    size_t pos;  /* how much of in was taken */
    int err;     /* the errno of the last XCP__UH_CONNECT or _IO */
    bool sent;   /* the last request went out whole */
    int wake_fd; /* -1, or a descriptor (the caller's) that interrupts
                  * a request while readable: XCP__UH_INTERRUPTED */
} xcp__uhttp;

/* Set c up for the socket at path (copied; nothing is connected yet).
 * 0, or XCP_ENOMEM with the thread's error set. */
int xcp__uhttp_init(xcp__uhttp *c, const char *path);

/* Close c's connection and free what it holds (c may be zeroed). */
void xcp__uhttp_dispose(xcp__uhttp *c);

/*
 * POST body[0, len) to target (a path) with the header lines in headers
 * (each ending "\r\n", Content-Length and Host added here), waiting at
 * most timeout_ms (0: no limit) for the whole reply, whose body is
 * appended to reply (at most max bytes) and whose status goes to *status.
 * The connection is opened when there is none and kept open unless the
 * server closes it; a kept connection that the server closed while idle
 * is opened again once, as curl does. Sets no thread error: the caller
 * says what a failure means (c->err, c->sent).
 */
xcp__uh_status xcp__uhttp_post(xcp__uhttp *c, const char *target,
                               const char *headers, const void *body,
                               size_t len, long timeout_ms, int *status,
                               xcp__buf *reply, size_t max);

/* A new blocking connection to the socket at path, close-on-exec, in
 * *fd; 0, or the errno when none. */
int xcp__uhttp_connect(const char *path, int *fd);

#endif
