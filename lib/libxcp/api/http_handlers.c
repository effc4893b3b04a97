/*
 * The engine's side of XAPI's HTTP handlers that move the engine's own
 * data (http_handlers.h), and the public calls over them
 * (<xcp/transfer.h>): a local session runs them here, a remote one asks
 * its server's handler of the same path (the session driver's handler
 * slot).
 */
#include "http_handlers.h"

#include <string.h>

#include <xcp/transfer.h>

static const char *kv_get(const char *const *kv, size_t n, const char *k)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (kv[2 * i] && kv[2 * i + 1] && strcmp(kv[2 * i], k) == 0)
            return kv[2 * i + 1];
    return NULL;
}

int xcp__http_handler(xcp__engine *e, const char *session, const char *path,
                      const char *const *kv, size_t n, bool put, int fd)
{
    const char *ref;

    if (strcmp(path, "/blob") == 0) {
        if (!(ref = kv_get(kv, n, "ref")))
            return XCP__ERR_INVALID_VALUE("ref", "");
        return xcp__blob_data(e, session, ref, put, fd);
    }
    if (strcmp(path, "/host_backup") == 0 && !put)
        return xcp__host_backup(e, session, fd);
    if (strcmp(path, "/host_restore") == 0 && put)
        return xcp__host_restore(e, session, fd);
    return XCP__ERR_NOT_IMPLEMENTED(path);
}

/* The session's handler at path: checks, then its driver. */
static int handler(xcp_session *s, const char *what, const char *path,
                   const char *const *kv, size_t n, bool put, int fd)
{
    xcp_error_clear();
    if (!s)
        return XCP__ERR_INVALID_VALUE("session", "");
    if (fd < 0)
        return XCP__ERR_INVALID_VALUE("fd", "");
    if (!s->ops->handler)
        return XCP__ERR_NOT_IMPLEMENTED(what);
    return s->ops->handler(s, path, kv, n, put, fd);
}

int xcp_blob_get_data(xcp_session *s, xcp_blob blob, int fd)
{
    const char *kv[] = {"ref", blob.ref};

    return handler(s, "xcp_blob_get_data", "/blob", kv, 1, false, fd);
}

int xcp_blob_put_data(xcp_session *s, xcp_blob blob, int fd)
{
    const char *kv[] = {"ref", blob.ref};

    return handler(s, "xcp_blob_put_data", "/blob", kv, 1, true, fd);
}

int xcp_host_backup(xcp_session *s, int fd)
{
    return handler(s, "xcp_host_backup", "/host_backup", NULL, 0, false, fd);
}

int xcp_host_restore(xcp_session *s, int fd)
{
    return handler(s, "xcp_host_restore", "/host_restore", NULL, 0, true,
                   fd);
}
