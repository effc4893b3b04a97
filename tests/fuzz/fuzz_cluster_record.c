/*
 * libFuzzer target: the replication record, ack, state, catch-up
 * request and catch-up piece decoders, and the record-stream walker
 * (lib/libxcp/cluster/record.c). Arbitrary bytes are one CPG message:
 * decoding accepts or refuses them, never reads outside them; an accepted
 * message encodes back to exactly the same bytes (decimal numbers are
 * canonical); walking them as a stream of records never reads past them.
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
    uint64_t epoch, seq, le;
    xcp__cluster_chunk ch;
    const char *p;
    size_t k;
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
    if (xcp__cluster_req_decode((const char *)data, size, &epoch, &seq,
                                &le) == 0) {
        char rb[XCP__CLUSTER_REQ_MAX];
        n = xcp__cluster_req_encode(epoch, seq, le, rb, sizeof(rb));
        if (n < 0 || (size_t)n != size || memcmp(rb, data, size) != 0)
            abort();
    }
    {
        uint32_t to;
        char hb[XCP__CLUSTER_HANDOVER_MAX];
        if (xcp__cluster_handover_decode((const char *)data, size, &epoch,
                                         &seq, &le, &to) == 0) {
            n = xcp__cluster_handover_encode(epoch, seq, le, to, hb,
                                             sizeof(hb));
            if (n < 0 || (size_t)n != size || memcmp(hb, data, size) != 0 ||
                to == 0)
                abort();
        }
    }
    if (xcp__cluster_chunk_decode((const char *)data, size, &ch) == 0) {
        char *cb = malloc(XCP__CLUSTER_CHUNK_HDR_MAX + ch.len);
        if (ch.data < (const char *)data ||
            ch.data + ch.len != (const char *)data + size)
            abort();
        if (cb) {
            n = xcp__cluster_chunk_encode(&ch, cb,
                                          XCP__CLUSTER_CHUNK_HDR_MAX + ch.len);
            if (n < 0 || (size_t)n != size || memcmp(cb, data, size) != 0)
                abort();
            free(cb);
        }
    }
    for (p = (const char *)data, k = 0;
         xcp__cluster_record_next(&p, (const char *)data + size, &r) == 0;
         k++)
        if (p > (const char *)data + size || r.body < (const char *)data ||
            r.body + r.len > p)
            abort();
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
