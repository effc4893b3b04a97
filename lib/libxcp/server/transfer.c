/* transfer: being written. */
#include "server.h"

int xcp_server_transfer_open(xcp_server *srv,
                             const xcp_server_transfer_request *r,
                             xcp_server_transfer **out, uint64_t *size,
                             int *http_status)
{
    XCP__UNUSED(srv); XCP__UNUSED(r); XCP__UNUSED(out); XCP__UNUSED(size);
    *http_status = 500;
    return xcp__fail("NOT_IMPLEMENTED", "transfers", NULL);
}
const char *xcp_server_transfer_task(const xcp_server_transfer *t) { XCP__UNUSED(t); return ""; }
const char *xcp_server_transfer_vdi_uuid(const xcp_server_transfer *t) { XCP__UNUSED(t); return ""; }
int xcp_server_transfer_write(xcp_server_transfer *t, const void *buf, size_t n) { XCP__UNUSED(t); XCP__UNUSED(buf); XCP__UNUSED(n); return -1; }
int xcp_server_transfer_read(xcp_server_transfer *t, uint64_t offset, void *buf, size_t n, size_t *got) { XCP__UNUSED(t); XCP__UNUSED(offset); XCP__UNUSED(buf); XCP__UNUSED(n); *got = 0; return -1; }
int xcp_server_transfer_close(xcp_server_transfer *t, int ok) { XCP__UNUSED(t); XCP__UNUSED(ok); return 0; }
