/*
 * libFuzzer target: the replication record, ack and state decoders
 * (lib/libxcp/cluster/record.c). Arbitrary bytes are one CPG message:
 * decoding accepts or refuses them, never reads outside them; an accepted
 * record, ack or state encodes back to exactly the same bytes (decimal numbers
 * are canonical).
 */
#include "cluster.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    xcp__cluster_record r;
    xcp__cluster_state st;
    char *buf, ack[XCP__CLUSTER_ACK_MAX], sb[XCP__CLUSTER_STATE_MAX];
    uint64_t epoch, seq;
    ssize_t n;

    if (xcp__cluster_ack_decode((const char *)data, size, &epoch, &seq) == 0) {
        n = xcp__cluster_ack_encode(epoch, seq, ack, sizeof(ack));
        if (n < 0 || (size_t)n != size || memcmp(ack, data, size) != 0)
            abort();
    }
    if (xcp__cluster_state_decode((const char *)data, size, &st) == 0) {
        n = xcp__cluster_state_encode(&st, sb, sizeof(sb));
        if (n < 0 || (size_t)n != size || memcmp(sb, data, size) != 0)
            abort();
    }
    if (xcp__cluster_record_decode((const char *)data, size, &r) < 0)
        return 0;
    if (r.body < (const char *)data ||
        r.body + r.len != (const char *)data + size)
        abort();
    buf = malloc(XCP__CLUSTER_RECORD_HDR_MAX + r.len);
    if (buf == NULL)
        return 0;
    n = xcp__cluster_record_encode(&r, buf, XCP__CLUSTER_RECORD_HDR_MAX + r.len);
    if (n < 0 || (size_t)n != size || memcmp(buf, data, size) != 0)
        abort();
    free(buf);
    return 0;
}
