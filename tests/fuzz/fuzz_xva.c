/*
 * libFuzzer target: the XVA reader (sr/xva_stream.c: decompression, tar
 * framing, chunks and their checksums) with ova.xml going through its
 * parser (engine/xva.c: xcp__xva_parse_header), as an import feeds them.
 * Odd first byte: the rest is ova.xml alone. The input is fed in pieces
 * of varying size, as an HTTP upload comes. It must parse or refuse with
 * an error: never crash, hang, or allocate beyond what it was given.
 */
#include "internal.h"
#include "engine/xva.h"

static int on_file(void *ctx, const char *name, const void *data, size_t n)
{
    xcp_value v;

    (void)ctx;
    if (strcmp(name, "ova.xml"))
        return 0;
    if (xcp__xva_parse_header(data, n, &v) < 0)
        return -1;
    xcp_value_dispose(&v);
    return 0;
}

static int on_chunk(void *ctx, const char *prefix, uint64_t no,
                    const void *data, size_t n)
{
    (void)ctx;
    (void)prefix;
    (void)no;
    (void)data;
    (void)n;
    return 0;
}

static const xcp__xva_in_ops ops = {on_file, on_chunk};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    xcp__xva_in *in;
    xcp_value v;
    size_t off = 1, piece;

    if (size == 0)
        return 0;
    if (data[0] & 1) {
        if (xcp__xva_parse_header((const char *)data + 1, size - 1, &v) == 0)
            xcp_value_dispose(&v);
        return 0;
    }
    if (xcp__xva_in_new(&in, &ops, NULL, true) < 0)
        return 0;
    while (off < size) {
        piece = 1 + (data[off] % 97) * 37;
        if (piece > size - off)
            piece = size - off;
        if (xcp__xva_in_feed(in, data + off, piece) < 0)
            break;
        off += piece;
    }
    if (off >= size)
        xcp__xva_in_finish(in);
    xcp__xva_in_free(in);
    xcp_error_clear();
    return 0;
}
