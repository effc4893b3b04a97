/*
 * libFuzzer target: the JSON-RPC codec. Arbitrary bytes are decoded as a
 * request (server side) and as a response (client side). What decodes is
 * encoded again; that encoding must decode, and for requests a second
 * encode must give identical bytes (JSON numbers are written exactly).
 * Nothing may crash, leak, hang or allocate without bound.
 */
#include "internal.h"
#include "rpc/rpc.h"

#include <stdio.h>
#include <stdlib.h>

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_jsonrpc: %s\n", what);
        abort();
    }
}

static void request(const uint8_t *data, size_t size)
{
    char err[256], *m1 = NULL, *m2 = NULL;
    xcp_value p1, p2, id1, id2, r, e;
    xcp__buf b1 = {0}, b2 = {0}, out = {0};
    int v1, v2;

    if (xcp__jsonrpc_decode_request((const char *)data, size, &m1, &p1, &id1,
                                    &v1, err, sizeof(err)) < 0)
        return;
    check(p1.kind == XCP_VAL_ARRAY && m1, "decoded request incomplete");
    check(id1.kind == XCP_VAL_INT || id1.kind == XCP_VAL_STRING, "bad id");
    check(v1 == 1 || v1 == 2, "bad version");
    check(xcp__jsonrpc_encode_request(m1, &p1, 5, &b1) == 0, "encode");
    check(xcp__jsonrpc_decode_request(b1.data, b1.len, &m2, &p2, &id2, &v2,
                                      err, sizeof(err)) >= 0,
          "own request encoding does not decode");
    check(v2 == 2 && id2.kind == XCP_VAL_INT && id2.u.i == 5, "id/version");
    check(xcp__jsonrpc_encode_request(m2, &p2, 5, &b2) == 0, "encode again");
    check(b1.len == b2.len && !memcmp(b1.data, b2.data, b1.len),
          "request encoding is not stable");
    check(xcp__jsonrpc_encode_success(&out, v1, &id1, &p1, 0) == 0,
          "encode response");
    check(xcp__jsonrpc_decode_response(out.data, out.len, &r, &e, NULL, err,
                                       sizeof(err)) == 0,
          "own response encoding does not decode");
    xcp_value_dispose(&r);
    free(m1);
    free(m2);
    xcp_value_dispose(&p1);
    xcp_value_dispose(&p2);
    xcp_value_dispose(&id1);
    xcp_value_dispose(&id2);
    xcp__buf_free(&b1);
    xcp__buf_free(&b2);
    xcp__buf_free(&out);
}

static void response(const uint8_t *data, size_t size)
{
    char err[256];
    const char **params = NULL;
    xcp_value r, e, id, r2, e2;
    xcp__buf b = {0};
    size_t i;
    int rc, version;

    rc = xcp__jsonrpc_decode_response((const char *)data, size, &r, &e, &id,
                                      err, sizeof(err));
    if (rc < 0)
        return;
    for (version = 1; version <= 2; version++) {
        if (rc == XCP__RPC_FAILURE) {
            check(e.kind == XCP_VAL_ARRAY && e.u.arr.n > 0, "empty error");
            params = calloc(e.u.arr.n, sizeof(*params));
            check(params != NULL, "oom");
            for (i = 1; i < e.u.arr.n; i++) {
                check(e.u.arr.items[i].kind == XCP_VAL_STRING, "not text");
                params[i - 1] = e.u.arr.items[i].u.s;
            }
            check(xcp__jsonrpc_encode_failure(&b, version, &id,
                                              e.u.arr.items[0].u.s,
                                              e.u.arr.n - 1, params) == 0,
                  "encode failure");
            free(params);
            check(xcp__jsonrpc_decode_response(b.data, b.len, &r2, &e2, NULL,
                                               err, sizeof(err)) ==
                      XCP__RPC_FAILURE,
                  "own failure encoding does not decode");
            check(e2.u.arr.n == e.u.arr.n, "error length changed");
        } else {
            check(xcp__jsonrpc_encode_success(&b, version, &id, &r, 0) == 0,
                  "encode success");
            check(xcp__jsonrpc_decode_response(b.data, b.len, &r2, &e2, NULL,
                                               err, sizeof(err)) == 0,
                  "own success encoding does not decode");
        }
        xcp_value_dispose(&r2);
        xcp_value_dispose(&e2);
        xcp__buf_free(&b);
    }
    xcp_value_dispose(&r);
    xcp_value_dispose(&e);
    xcp_value_dispose(&id);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    request(data, size);
    response(data, size);
    xcp_error_clear();
    return 0;
}
