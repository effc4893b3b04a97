/*
 * XAPI's HTTP handlers whose data is the engine's (not a VDI's or a
 * VM's): /blob, /host_backup, /host_restore. A local session reaches them through
 * xcp__http_handler(), a remote one through its server's handler of
 * the same path (client/remote.c), xcpd serves them with the same
 * calls (cmd/xcpd/xe_get.c).
 */
#ifndef XCP_API_HTTP_HANDLERS_H
#define XCP_API_HTTP_HANDLERS_H

#include "../engine/engine.h"

/*
 * The bytes of blob ref: put, fd read to its end replaces them (a new
 * file renamed into place; last_updated set); else they are written to
 * fd (HANDLE_INVALID for a blob never written: XAPI's 404). session
 * NULL: a trusted caller;
 * "": none (GET of a public blob only, else
 * SESSION_AUTHENTICATION_FAILED); else it must be live
 * (SESSION_INVALID). HANDLE_INVALID ["blob", ref]; the storage's errors
 * (OUT_OF_SPACE, INTERNAL_ERROR naming the file); INVALID_VALUE ["fd"]
 * for fd's.
 */
int xcp__blob_data(xcp__engine *e, const char *session, const char *ref,
                   bool put, int fd);

/*
 * XAPI's /host_backup: a tar of what the state directory needs to come
 * back (host_backup.c says what) written to fd. session as above (NULL
 * trusted, else live: SESSION_INVALID). The storage's errors;
 * INVALID_VALUE ["fd", "", why] when fd cannot be written.
 */
int xcp__host_backup(xcp__engine *e, const char *session, int fd);

/*
 * XAPI's /host_restore: fd's tar (one xcp__host_backup made), checked
 * and staged for the next opening of the state directory. A tar that is
 * not such a backup: RESTORE_SCRIPT_FAILED [why], nothing staged.
 */
int xcp__host_restore(xcp__engine *e, const char *session, int fd);

/*
 * Put a staged restore of state directory dir in place (the engine, as
 * it opens dir, before its database): 0 when there is none or it is
 * done; else the error (the stage stays, for the next try).
 */
int xcp__host_restore_apply(const char *dir);

/*
 * The handler at path ("/blob", "/host_backup", "/host_restore") for session, with the query's n pairs
 * kv[2i] = kv[2i + 1]: GET (fd written) or put (fd read). 0, or a
 * negative code with the thread's error; an unknown path is
 * NOT_IMPLEMENTED [path].
 */
int xcp__http_handler(xcp__engine *e, const char *session, const char *path,
                      const char *const *kv, size_t n, bool put, int fd);

#endif
