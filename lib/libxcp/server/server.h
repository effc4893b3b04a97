/*
 * Internals shared by the server's files: authentication (auth.c) and
 * transfers (transfer.c) use the server object of server.c.
 */
#ifndef XCP_SERVER_INTERNAL_H
#define XCP_SERVER_INTERNAL_H

#include "../engine/engine.h"
#include <xcp/server.h>

/* ---- auth.c ---- */
typedef struct xcp__auth xcp__auth;
/* Load the auth file (NULL: PAM with service pam_service). */
int xcp__auth_open(xcp__auth **out, const char *auth_file,
                   const char *pam_service);
void xcp__auth_close(xcp__auth *a);
/* 0 when user/password are right, else SESSION_AUTHENTICATION_FAILED
 * [user, reason] as the thread's error. May block (PAM). */
int xcp__auth_check(xcp__auth *a, const char *user, const char *password);

/* ---- server.c, for transfer.c ---- */
xcp__engine *xcp__server_engine(xcp_server *s);
xcp__auth *xcp__server_auth(xcp_server *s);
/* Check user/password and open a session (HTTP Basic credentials). */
int xcp__server_login(xcp_server *s, const char *user, const char *pw,
                      char out[XCP_REF_MAX]);
void xcp__server_logout(xcp_server *s, const char *ref);

/* ---- transfer.c, for console.c ---- */
/* The session a request's credentials give, first match wins: local root
 * (*session NULL: trusted), session_id, Basic user and password (a
 * session logged in into basic_session: end it with
 * xcp__server_creds_end, which keeps the thread's error).
 * SESSION_AUTHENTICATION_FAILED when there are none, or bad ones. */
int xcp__server_creds(xcp_server *srv, const xcp_server_peer *peer,
                      const char *session_id, const char *user,
                      const char *password, char basic_session[XCP_REF_MAX],
                      const char **session);
void xcp__server_creds_end(xcp_server *srv, char basic_session[XCP_REF_MAX]);
/* A stream has been closed after handing out bytes (xcp_server_close
 * waits for every stream). */
void xcp__server_stream_closed(xcp_server *s, size_t bytes);
/* After a reply of this size, give freed memory back to the system. */
void xcp__server_trim(size_t bytes);

/* ---- stream.c ---- */
/* A stream of the records of cls whose refs (an ARRAY, moved from) were
 * read for session, encoded in proto (jver and id: JSON-RPC); with
 * fields (copied), only those fields of each (xcp__record_project). The
 * caller counts it open on the server. */
int xcp__stream_open(xcp_server_stream **out, xcp_server *srv,
                     const char *session, int cls, xcp_value *refs,
                     xcp_server_protocol proto, int jver,
                     const xcp_value *id, const int *fields, size_t nfields);

#endif
