/*
 * server/migrate.c - the destination's end of VM.pool_migrate: a stream
 * another host of the pool opened (CONNECT /migrate_receive), handed to
 * the engine (api/vm_migrate.c). The transport (xcpd) parses the query,
 * answers 200 and gives the connection's socket.
 */
#include "server.h"

#include <errno.h>
#include <stdlib.h>

int xcp_server_migrate_receive(xcp_server *srv,
                               const xcp_server_migrate_request *r, int fd)
{
    uint64_t seq = 0;
    char *end;

    xcp_error_clear();
    if (!r->session_id || !*r->session_id)
        return XCP__ERR_SESSION_INVALID("");
    if (!r->vm || !*r->vm)
        return XCP__ERR_INVALID_VALUE("ref", "migrate_receive: missing the "
                                             "'ref' parameter");
    if (r->seq && *r->seq) {
        errno = 0;
        seq = strtoull(r->seq, &end, 10);
        if (errno || *end)
            return XCP__ERR_INVALID_VALUE("seq", r->seq);
    }
    return xcp__engine_migrate_receive(xcp__server_engine(srv), r->session_id,
                                       r->vm, seq, fd);
}
