/*
 * The remote session driver: XenAPI over HTTP(S) or a unix socket with
 * libcurl, to our xcpd or a real XAPI host. The public entry is
 * xcp_session_open_remote() (session.h); dispatch.c reaches it through
 * xcp__session_open_remote() for xcp_session_open().
 */
#ifndef XCP_CLIENT_H
#define XCP_CLIENT_H

#include "../internal.h"

/*
 * Open a remote session on uri ("https://host[:port]", "http://host[:port]"
 * or "unix:/path") and log in with user/password, with the default options
 * of xcp_session_open_remote() (XML-RPC, certificates verified). 0 or a
 * negative code with the thread's error set (SESSION_AUTHENTICATION_FAILED
 * from the server, or a transport error).
 */
int xcp__session_open_remote(xcp_session **out, const char *uri,
                             const char *user, const char *password);

/*
 * The same with the options of xcp_session_open_remote(), logging in with
 * another message: method(args...) must return a session reference
 * (session.slave_login(host, psecret) for intra-pool calls).
 */
int xcp__session_open_remote_login(xcp_session **out,
                                   const xcp_remote_options *o,
                                   const char *method, size_t nargs,
                                   const xcp_value *args);

/*
 * Give a decoded reply the shape the local engine gives the same message:
 * the wire loses types (XML-RPC ints and JSON datetimes arrive as strings,
 * records as plain structs), so *v is coerced in place to type t (ints,
 * floats and bools from their text, datetimes from either form, records of
 * class t->id from structs with absent fields at their defaults, enums to
 * their canonical spelling; event.from/event.next results have their
 * snapshots made records of the event's class). Enum values this library
 * does not know (a newer server) are kept as sent. 0, or a negative code
 * with the thread's error set when a value cannot have the type.
 */
int xcp__remote_coerce(const struct xcp__type *t, xcp_value *v);

/* The same for the result of message mid (what invoke() hands back). */
int xcp__remote_coerce_result(int mid, xcp_value *v);

#endif
