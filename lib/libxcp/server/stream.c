/*
 * Streamed replies: get_all_records and get_all_records_where encoded into
 * the connection as the transport asks for bytes, a slice of records at a
 * time, read from the engine in batches (one hold of its lock each) when
 * they are reached, whole or only the fields a listing asked for. A reply
 * then costs its refs and one slice of text, not the whole result as
 * values plus its encoding: 10,000 VMs are ~70 MB of XML.
 */
#include "server.h"
#include "../rpc/rpc.h"

#include <stdio.h>

/* Records are encoded until this much text is pending, read from the
 * engine this many at a time. */
#define STREAM_SLICE ((size_t)64 * 1024)
#define STREAM_BATCH 64

struct xcp_server_stream {
    xcp_server *srv;
    xcp__engine *e;
    char session[XCP_REF_MAX];
    int cls;
    xcp_server_protocol proto;
    int jver;                 /* JSON-RPC version */
    xcp_value id;             /* JSON-RPC id */
    xcp_value refs;           /* ARRAY of the records' refs */
    int *fields;              /* or NULL: whole records */
    size_t nfields;
    size_t next;              /* next ref to encode */
    bool head, tail;          /* written already */
    size_t written;           /* members so far */
    xcp__buf b;               /* pending text, from b.data + off */
    size_t off;
    size_t total;             /* bytes handed out */
};

int xcp__stream_open(xcp_server_stream **out, xcp_server *srv,
                     const char *session, int cls, xcp_value *refs,
                     xcp_server_protocol proto, int jver,
                     const xcp_value *id, const int *fields, size_t nfields)
{
    xcp_server_stream *st;
    size_t i;
    int rc;

    if (refs->kind != XCP_VAL_ARRAY)
        return xcp__internal("get_all gave no array");
    for (i = 0; i < refs->u.arr.n; i++)
        if (refs->u.arr.items[i].kind != XCP_VAL_STRING)
            return xcp__internal("get_all gave a ref that is not a string");
    if (!(st = xcp__calloc(1, sizeof(*st))))
        return xcp__oom();
    st->id.kind = XCP_VAL_NONE;
    st->cls = cls;
    if (fields && !(st->fields = xcp__calloc(nfields + 1, sizeof(int)))) {
        free(st);
        return xcp__oom();
    }
    if (fields)
        memcpy(st->fields, fields, nfields * sizeof(int));
    st->nfields = nfields;
    if (id && (rc = xcp_value_copy(&st->id, id)) < 0) {
        free(st->fields);
        free(st);
        return rc;
    }
    st->srv = srv;
    st->e = xcp__server_engine(srv);
    snprintf(st->session, sizeof(st->session), "%s", session);
    st->proto = proto;
    st->jver = jver;
    xcp__value_move(&st->refs, refs);
    *out = st;
    return 0;
}

/* The next batch of records into st->b (read under one hold of the
 * engine lock); a record destroyed since the refs were read is left out,
 * as if it had gone before. */
static int add_batch(xcp_server_stream *st)
{
    const xcp_value *refs = &st->refs.u.arr.items[st->next];
    xcp_value recs[STREAM_BATCH];
    size_t k = st->refs.u.arr.n - st->next, i;
    int rc;

    if (k > STREAM_BATCH)
        k = STREAM_BATCH;
    if ((rc = xcp__engine_read_slice(st->e, st->session, st->cls, refs, k,
                                     st->fields, st->nfields, recs)) < 0)
        return rc;
    st->next += k;
    for (i = 0; i < k; i++) {
        if (rc == 0 && recs[i].kind != XCP_VAL_NONE) {
            if (st->proto == XCP_SERVER_JSONRPC)
                rc = xcp__jsonrpc_encode_struct_member(
                    &st->b, st->written == 0, refs[i].u.s, &recs[i]);
            else
                rc = xcp__xmlrpc_encode_struct_member(&st->b, refs[i].u.s,
                                                      &recs[i]);
            st->written++;
        }
        xcp_value_dispose(&recs[i]);
    }
    return rc;
}

/* Encode the next slice: the head first, the tail after the last record. */
static int fill(xcp_server_stream *st)
{
    const xcp_value *refs = &st->refs;
    int rc = 0;

    if (!st->head) {
        st->head = true;
        rc = st->proto == XCP_SERVER_JSONRPC
                 ? xcp__jsonrpc_encode_struct_head(&st->b, st->jver)
                 : xcp__xmlrpc_encode_struct_head(&st->b);
    }
    while (rc == 0 && st->b.len < STREAM_SLICE && st->next < refs->u.arr.n)
        rc = add_batch(st);
    if (rc == 0 && st->next == refs->u.arr.n && !st->tail) {
        st->tail = true;
        rc = st->proto == XCP_SERVER_JSONRPC
                 ? xcp__jsonrpc_encode_struct_tail(&st->b, st->jver, &st->id)
                 : xcp__xmlrpc_encode_struct_tail(&st->b);
    }
    return rc;
}

int xcp_server_stream_read(xcp_server_stream *st, void *buf, size_t n,
                           size_t *got)
{
    size_t k;
    int rc;

    *got = 0;
    if (!st || !buf)
        return XCP__ERR_INVALID_VALUE("xcp_server_stream_read", "");
    if (st->off == st->b.len) {
        st->b.len = st->off = 0;
        if ((rc = fill(st)) < 0)
            return rc;
    }
    k = st->b.len - st->off;
    if (k > n)
        k = n;
    memcpy(buf, st->b.data + st->off, k);
    st->off += k;
    st->total += k;
    *got = k;
    return 0;
}

void xcp_server_stream_close(xcp_server_stream *st)
{
    if (!st)
        return;
    xcp_value_dispose(&st->refs);
    xcp_value_dispose(&st->id);
    free(st->fields);
    xcp__buf_free(&st->b);
    xcp__server_stream_closed(st->srv, st->total);
    free(st);
}
