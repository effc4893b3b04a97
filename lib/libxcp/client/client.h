/*
 * The remote session driver: XenAPI over HTTP(S) or a unix socket with
 * libcurl, to our xcpd or a real XAPI host.
 */
#ifndef XCP_CLIENT_H
#define XCP_CLIENT_H

#include "../internal.h"

/*
 * Open a remote session on uri ("https://host[:port]", "http://host[:port]"
 * or "unix:/path") and log in with user/password. 0 or a negative code
 * with the thread's error set (SESSION_AUTHENTICATION_FAILED from the
 * server, or a transport error).
 */
int xcp__session_open_remote(xcp_session **out, const char *uri,
                             const char *user, const char *password);

#endif
