/*
 * libFuzzer target: the XML-RPC codec. Arbitrary bytes are decoded as a
 * methodCall (server side) and as a methodResponse (client side). What
 * decodes is encoded again and the encoding must decode too; for requests
 * a second encode must give the same bytes (floats aside, whose %.16g text
 * need not survive two conversions). Nothing may crash, leak, hang or
 * allocate without bound.
 */
#include "internal.h"
#include "rpc/rpc.h"

#include <stdio.h>
#include <stdlib.h>

static bool has_float(const xcp_value *v)
{
    size_t i;

    if (v->kind == XCP_VAL_FLOAT)
        return true;
    if (v->kind == XCP_VAL_ARRAY)
        for (i = 0; i < v->u.arr.n; i++)
            if (has_float(&v->u.arr.items[i]))
                return true;
    if (v->kind == XCP_VAL_STRUCT)
        for (i = 0; i < v->u.st.n; i++)
            if (has_float(&v->u.st.vals[i]))
                return true;
    return false;
}

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_xmlrpc: %s\n", what);
        abort();
    }
}

static void request(const uint8_t *data, size_t size)
{
    char err[256], *m1 = NULL, *m2 = NULL;
    xcp_value p1, p2, r, e;
    xcp__buf b1 = {0}, b2 = {0}, out = {0};

    if (xcp__xmlrpc_decode_request((const char *)data, size, &m1, &p1, err,
                                   sizeof(err)) < 0)
        return;
    check(p1.kind == XCP_VAL_ARRAY && m1, "decoded request incomplete");
    check(xcp__xmlrpc_encode_request(m1, &p1, &b1) == 0, "encode request");
    check(xcp__xmlrpc_decode_request(b1.data, b1.len, &m2, &p2, err,
                                     sizeof(err)) >= 0,
          "own request encoding does not decode");
    check(xcp__xmlrpc_encode_request(m2, &p2, &b2) == 0, "encode again");
    if (!has_float(&p1))
        check(b1.len == b2.len && !memcmp(b1.data, b2.data, b1.len),
              "request encoding is not stable");
    check(xcp__xmlrpc_encode_success(&out, &p1, XCP__RPC_I4_REFCOUNTS) == 0,
          "encode response");
    check(xcp__xmlrpc_decode_response(out.data, out.len, &r, &e, err,
                                      sizeof(err)) == 0,
          "own response encoding does not decode");
    xcp_value_dispose(&r);
    free(m1);
    free(m2);
    xcp_value_dispose(&p1);
    xcp_value_dispose(&p2);
    xcp__buf_free(&b1);
    xcp__buf_free(&b2);
    xcp__buf_free(&out);
}

static void response(const uint8_t *data, size_t size)
{
    char err[256];
    const char **params = NULL;
    xcp_value r, e, r2, e2;
    xcp__buf b = {0};
    size_t i;
    int rc;

    rc = xcp__xmlrpc_decode_response((const char *)data, size, &r, &e, err,
                                     sizeof(err));
    if (rc < 0)
        return;
    if (rc == XCP__RPC_FAILURE) {
        check(e.kind == XCP_VAL_ARRAY && e.u.arr.n > 0, "empty error");
        params = calloc(e.u.arr.n, sizeof(*params));
        check(params != NULL, "oom");
        for (i = 1; i < e.u.arr.n; i++) {
            check(e.u.arr.items[i].kind == XCP_VAL_STRING, "error not text");
            params[i - 1] = e.u.arr.items[i].u.s;
        }
        check(xcp__xmlrpc_encode_failure(&b, e.u.arr.items[0].u.s,
                                         e.u.arr.n - 1, params) == 0,
              "encode failure");
        check(xcp__xmlrpc_decode_response(b.data, b.len, &r2, &e2, err,
                                          sizeof(err)) == XCP__RPC_FAILURE,
              "own failure encoding does not decode");
        check(e2.u.arr.n == e.u.arr.n, "error length changed");
        free(params);
    } else {
        check(xcp__xmlrpc_encode_success(&b, &r, 0) == 0, "encode success");
        check(xcp__xmlrpc_decode_response(b.data, b.len, &r2, &e2, err,
                                          sizeof(err)) == 0,
              "own success encoding does not decode");
        xcp__buf_free(&b);
        check(xcp__xmlrpc_encode_bare(&b, &r) == 0, "encode bare");
    }
    xcp_value_dispose(&r);
    xcp_value_dispose(&e);
    xcp_value_dispose(&r2);
    xcp_value_dispose(&e2);
    xcp__buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    request(data, size);
    response(data, size);
    xcp_error_clear();
    return 0;
}
