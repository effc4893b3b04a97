/*
 * votequorum's view of this node: quorate or not, and the votes behind it
 * (docs/design-pool.md §4: writes are refused while inquorate).
 */
#include "cluster.h"

#include <errno.h>
#include <string.h>

#include <corosync/corotypes.h>
#include <corosync/votequorum.h>

int xcp__cluster_quorum_get(xcp__cluster_quorum *out, xcp__cluster_err *err)
{
    votequorum_handle_t h;
    votequorum_callbacks_t cb;
    struct votequorum_info info;
    cs_error_t e;

    memset(out, 0, sizeof(*out));
    memset(&cb, 0, sizeof(cb));
    e = votequorum_initialize(&h, &cb);
    if (e != CS_OK)
        return xcp__cluster_fail(
            err, -ENOTCONN, "votequorum: cannot connect to corosync (error %d)",
            e);
    /* nodeid 0 is this node (VOTEQUORUM_QDEVICE_NODEID names the device
     * only in the qdevice calls). */
    e = votequorum_getinfo(h, 0, &info);
    votequorum_finalize(h);
    if (e != CS_OK)
        return xcp__cluster_fail(err, -EIO, "votequorum_getinfo: error %d", e);
    out->quorate = (info.flags & VOTEQUORUM_INFO_QUORATE) != 0;
    out->nodeid = info.node_id;
    out->quorum = info.quorum;
    out->total_votes = info.total_votes;
    out->expected_votes = info.node_expected_votes;
    return 0;
}
