/*
 * lib/libxcp/cluster without a running corosync: corosync.conf from a
 * host list (quorum policy per pool size, refusals), its atomic write, and
 * the replication record codec. The parts that need corosync run in the
 * netns harness (tests/pool/cluster.sh).
 */
#include "cluster.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const xcp__cluster_node three[] = {
    {1, "h1", "10.77.0.1"}, {2, "h2", "10.77.0.2"}, {3, "h3", "10.77.0.3"}};

static char *format(const xcp__cluster_node *n, size_t nn, uint32_t coord,
                    bool two_node, int *rc, xcp__cluster_err *err)
{
    xcp__cluster_conf c = {0};
    char *text = NULL;

    c.cluster_name = "xcp-pool";
    c.nodes = n;
    c.nnodes = nn;
    c.coordinator = coord;
    c.two_node = two_node;
    *rc = xcp__corosync_conf_format(&c, &text, err);
    return text;
}

Test(cluster_conf, three_hosts_lms_wfa_and_coordinator_first_tie_breaker)
{
    xcp__cluster_err err;
    int rc;
    char *t = format(three, 3, 2, false, &rc, &err);

    cr_assert_eq(rc, 0, "%s", err.msg);
    cr_assert(strstr(t, "cluster_name: xcp-pool\n"));
    cr_assert(strstr(t, "transport: knet\n"));
    cr_assert(strstr(t, "token: 1000\n"));
    cr_assert(strstr(t, "token_coefficient: 100\n"));
    cr_assert(strstr(t, "        nodeid: 3\n        name: h3\n"
                        "        ring0_addr: 10.77.0.3\n"));
    cr_assert(strstr(t, "provider: corosync_votequorum\n"));
    cr_assert(strstr(t, "wait_for_all: 1\n"));
    cr_assert(strstr(t, "last_man_standing: 1\n"));
    cr_assert(strstr(t, "auto_tie_breaker_node: 2 1 3\n"), "%s", t);
    cr_assert_null(strstr(t, "two_node"));
    free(t);
}

Test(cluster_conf, two_hosts_tie_breaker_not_two_node_unless_asked)
{
    xcp__cluster_err err;
    int rc;
    char *t = format(three, 2, 1, false, &rc, &err);

    cr_assert_eq(rc, 0, "%s", err.msg);
    cr_assert_null(strstr(t, "two_node"));
    cr_assert_null(strstr(t, "last_man_standing"));
    cr_assert(strstr(t, "auto_tie_breaker: 1\n"));
    cr_assert(strstr(t, "auto_tie_breaker_node: 1 2\n"), "%s", t);
    free(t);
    t = format(three, 2, 1, true, &rc, &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
    cr_assert(strstr(t, "two_node: 1\n"));
    cr_assert_null(strstr(t, "auto_tie_breaker"));
    free(t);
}

Test(cluster_conf, same_hosts_any_order_same_text)
{
    const xcp__cluster_node rev[] = {three[2], three[1], three[0]};
    xcp__cluster_err err;
    int rc;
    char *a = format(three, 3, 1, false, &rc, &err);
    char *b = format(rev, 3, 1, false, &rc, &err);

    /* The tie-breaker order does not depend on the list's order. */
    cr_assert(strstr(a, "auto_tie_breaker_node: 1 2 3\n"));
    cr_assert(strstr(b, "auto_tie_breaker_node: 1 2 3\n"));
    free(a);
    free(b);
}

Test(cluster_conf, refuses_what_corosync_would_misread)
{
    xcp__cluster_node bad[3];
    xcp__cluster_err err;
    char *t;
    int rc;
    size_t i;
    static const struct {
        const char *name, *addr;
        uint32_t id;
        const char *why;
    } cases[] = {
        {"h 1", "10.77.0.1", 1, "bad name"},
        {"h1}", "10.77.0.1", 1, "bad name"},
        {"h1", "10.77.0.1\n}", 1, "bad address"},
        {"h1", "", 1, "bad address"},
        {"h1", "10.77.0.1", 0, "out of range"},
        {"h9", "10.77.0.9", 2, "node id 2 twice"},
        {"h2", "10.77.0.9", 9, "node name h2 twice"},
        {"h9", "10.77.0.2", 9, "address 10.77.0.2 twice"},
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memcpy(bad, three, sizeof(bad));
        bad[0].name = cases[i].name;
        bad[0].addr = cases[i].addr;
        bad[0].nodeid = cases[i].id;
        memset(&err, 0, sizeof(err));
        t = format(bad, 3, 3, false, &rc, &err);
        cr_assert_eq(rc, -EINVAL, "case %zu accepted", i);
        cr_assert_null(t);
        cr_assert(strstr(err.msg, cases[i].why), "case %zu: %s", i, err.msg);
    }
    t = format(three, 1, 1, false, &rc, &err);
    cr_assert_eq(rc, -EINVAL);
    cr_assert(strstr(err.msg, "a pool has 2 to"), "%s", err.msg);
    t = format(three, 3, 7, false, &rc, &err);
    cr_assert_eq(rc, -EINVAL);
    cr_assert(strstr(err.msg, "coordinator 7 is not among"), "%s", err.msg);
    t = format(three, 3, 1, true, &rc, &err);
    cr_assert_eq(rc, -EINVAL);
    cr_assert(strstr(err.msg, "two_node with 3 hosts"), "%s", err.msg);
}

Test(cluster_conf, write_is_atomic_and_readable)
{
    char dir[] = "/tmp/xcp-cluster-conf-XXXXXX", path[64], tmp[80];
    xcp__cluster_conf c = {0};
    xcp__cluster_err err;
    char buf[4096], *text;
    FILE *f;
    size_t n;

    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/corosync.conf", dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    c.cluster_name = "p";
    c.nodes = three;
    c.nnodes = 3;
    c.coordinator = 1;
    cr_assert_eq(xcp__corosync_conf_write(&c, path, &err), 0, "%s", err.msg);
    cr_assert_eq(access(tmp, F_OK), -1);
    f = fopen(path, "r");
    cr_assert_not_null(f);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    cr_assert_eq(xcp__corosync_conf_format(&c, &text, &err), 0);
    cr_assert_str_eq(buf, text);
    free(text);
    /* A refused host list leaves the file as it was. */
    c.coordinator = 9;
    cr_assert_eq(xcp__corosync_conf_write(&c, path, &err), -EINVAL);
    f = fopen(path, "r");
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    cr_assert(strstr(buf, "auto_tie_breaker_node: 1 2 3\n"));
    unlink(path);
    rmdir(dir);
}

Test(cluster_conf, write_failures_are_reported_and_leave_no_tmp)
{
    char dir[] = "/tmp/xcp-cluster-conf-XXXXXX", path[64], tmp[80];
    xcp__cluster_conf c = {0};
    xcp__cluster_err err;

    cr_assert_not_null(mkdtemp(dir));
    c.cluster_name = "p";
    c.nodes = three;
    c.nnodes = 3;
    c.coordinator = 1;
    /* The rename fails (the path is a directory): its errno, and the
     * temporary file removed. */
    snprintf(path, sizeof(path), "%s/corosync.conf", dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    cr_assert_eq(mkdir(path, 0755), 0);
    memset(&err, 0, sizeof(err));
    cr_assert_eq(xcp__corosync_conf_write(&c, path, &err), -EISDIR);
    cr_assert(strstr(err.msg, "rename"), "%s", err.msg);
    cr_assert_eq(access(tmp, F_OK), -1, "%s left behind", tmp);
    cr_assert_eq(rmdir(path), 0);
    /* A directory that does not exist. */
    snprintf(path, sizeof(path), "%s/none/corosync.conf", dir);
    memset(&err, 0, sizeof(err));
    cr_assert_eq(xcp__corosync_conf_write(&c, path, &err), -ENOENT);
    cr_assert(strstr(err.msg, "none/corosync.conf.tmp"), "%s", err.msg);
    /* A file in the current directory (no '/' in the path). */
    cr_assert_eq(chdir(dir), 0);
    cr_assert_eq(xcp__corosync_conf_write(&c, "here.conf", &err), 0, "%s",
                 err.msg);
    cr_assert_eq(unlink("here.conf"), 0);
    cr_assert_eq(rmdir(dir), 0);
}

Test(cluster_record, round_trip)
{
    const char *body = "T 42 S OpaqueRef:x name_label 'web%201";
    xcp__cluster_record r = {7, 1234567890123ull, 42, body, strlen(body)}, d;
    char buf[XCP__CLUSTER_RECORD_HDR_MAX + 64];
    ssize_t n = xcp__cluster_record_encode(&r, buf, sizeof(buf));

    cr_assert_gt(n, 0);
    cr_assert_eq(xcp__cluster_record_decode(buf, (size_t)n, &d), 0);
    cr_assert_eq(d.epoch, 7);
    cr_assert_eq(d.seq, 1234567890123ull);
    cr_assert_eq(d.gen, 42);
    cr_assert_eq(d.len, strlen(body));
    cr_assert_eq(memcmp(d.body, body, d.len), 0);
    cr_assert_eq(xcp__cluster_record_encode(&r, buf, 20), -ENOSPC);
}

Test(cluster_record, refuses_damage_and_trailing_bytes)
{
    const char *body = "T 1 D OpaqueRef:y";
    xcp__cluster_record r = {1, 1, 1, body, strlen(body)}, d;
    char buf[XCP__CLUSTER_RECORD_HDR_MAX + 64], copy[sizeof(buf) + 1];
    ssize_t n = xcp__cluster_record_encode(&r, buf, sizeof(buf));
    size_t i;

    cr_assert_gt(n, 0);
    /* Any single flipped byte is refused (header fields, CRC or body). */
    for (i = 0; i < (size_t)n; i++) {
        memcpy(copy, buf, (size_t)n);
        copy[i] ^= 0x01;
        cr_assert_eq(xcp__cluster_record_decode(copy, (size_t)n, &d),
                     -EBADMSG, "byte %zu flipped was accepted", i);
    }
    /* Truncated or with bytes after the body. */
    cr_assert_eq(xcp__cluster_record_decode(buf, (size_t)n - 1, &d), -EBADMSG);
    memcpy(copy, buf, (size_t)n);
    copy[n] = 'x';
    cr_assert_eq(xcp__cluster_record_decode(copy, (size_t)n + 1, &d),
                 -EBADMSG);
    /* Not canonical: a leading zero. */
    cr_assert_eq(xcp__cluster_record_decode("XCPR 1 01 1 1 0 00000000\n", 25,
                                            &d),
                 -EBADMSG);
    /* An empty body is a record too (its CRC is the header's). */
    r.body = "";
    r.len = 0;
    n = xcp__cluster_record_encode(&r, buf, sizeof(buf));
    cr_assert_gt(n, 0);
    cr_assert_eq(xcp__cluster_record_decode(buf, (size_t)n, &d), 0);
    cr_assert_eq(d.len, 0);
    /* Numbers beyond 64 bits. */
    cr_assert_eq(xcp__cluster_record_decode(
                     "XCPR 1 99999999999999999999 1 1 0 00000000\n", 44, &d),
                 -EBADMSG);
}

Test(cluster_ack, round_trip_and_strictness)
{
    char buf[XCP__CLUSTER_ACK_MAX];
    uint64_t e, q;
    ssize_t n = xcp__cluster_ack_encode(3, 18446744073709551615ull, buf,
                                        sizeof(buf));

    cr_assert_gt(n, 0);
    cr_assert_eq(xcp__cluster_ack_decode(buf, (size_t)n, &e, &q), 0);
    cr_assert_eq(e, 3);
    cr_assert_eq(q, 18446744073709551615ull);
    cr_assert_eq(xcp__cluster_ack_decode(buf, (size_t)n - 1, &e, &q),
                 -EBADMSG); /* no newline */
    cr_assert_eq(xcp__cluster_ack_decode("XCPA 1 3 7\nx", 12, &e, &q),
                 -EBADMSG);
    cr_assert_eq(xcp__cluster_ack_decode("XCPA 1 3 07\n", 12, &e, &q),
                 -EBADMSG);
    cr_assert_eq(xcp__cluster_ack_decode("XCPA 2 3 7\n", 11, &e, &q),
                 -EBADMSG);
    cr_assert_eq(xcp__cluster_ack_decode("XCPA 1 3 -7\n", 12, &e, &q),
                 -EBADMSG);
    cr_assert_eq(xcp__cluster_ack_encode(1, 1, buf, 8), -ENOSPC);
}

Test(cluster_state, round_trip_and_strictness)
{
    xcp__cluster_state st = {4, 3, 1000, true, 2, "10.77.0.2"}, d;
    char buf[XCP__CLUSTER_STATE_MAX];
    ssize_t n = xcp__cluster_state_encode(&st, buf, sizeof(buf));

    cr_assert_gt(n, 0);
    cr_assert_str_eq(buf, "XCPS 2 4 3 1000 1 2 10.77.0.2\n");
    cr_assert_eq(xcp__cluster_state_decode(buf, (size_t)n, &d), 0);
    cr_assert_eq(d.epoch, 4);
    cr_assert_eq(d.last_epoch, 3);
    cr_assert_eq(d.last, 1000);
    cr_assert(d.quorate);
    cr_assert_eq(d.coordinator, 2);
    cr_assert_str_eq(d.addr, "10.77.0.2");
    /* no address: "-" on the wire, "" decoded */
    st.addr[0] = '\0';
    n = xcp__cluster_state_encode(&st, buf, sizeof(buf));
    cr_assert_str_eq(buf, "XCPS 2 4 3 1000 1 2 -\n");
    cr_assert_eq(xcp__cluster_state_decode(buf, (size_t)n, &d), 0);
    cr_assert_str_eq(d.addr, "");
    cr_assert_eq(xcp__cluster_state_decode("XCPS 2 4 3 1000 2 1 a\n", 22, &d),
                 -EBADMSG);
    cr_assert_eq(xcp__cluster_state_decode("XCPS 2 4 3 1000 1 1\n", 20, &d),
                 -EBADMSG);
    cr_assert_eq(xcp__cluster_state_decode("XCPS 2 4 3 1000 1 1 a b\n", 24,
                                           &d), -EBADMSG);
    cr_assert_eq(xcp__cluster_state_decode("XCPS 2 4 3 1000 1 1 a\n ", 23,
                                           &d), -EBADMSG);
    cr_assert_eq(xcp__cluster_state_decode("XCPS 1 4 3 1000 1\n", 18, &d),
                 -EBADMSG);
    cr_assert_eq(xcp__cluster_state_decode("XCPS 2 4 3 1000 1 4294967296 a\n",
                                           31, &d), -EBADMSG);
    cr_assert_eq(xcp__cluster_state_decode("XCPA 1 4 3\n", 11, &d), -EBADMSG);
    /* a NUL inside the address (found by fuzz_cluster_record) */
    cr_assert_eq(xcp__cluster_state_decode("XCPS 2 2 1 100 1 1 10.7\0007.0.1\n",
                                           30, &d), -EBADMSG);
    cr_assert_eq(xcp__cluster_state_encode(&st, buf, 10), -ENOSPC);
    snprintf(st.addr, sizeof(st.addr), "a b");
    cr_assert_eq(xcp__cluster_state_encode(&st, buf, sizeof(buf)), -EINVAL);
}

Test(cluster_req, round_trip_and_strictness)
{
    char buf[XCP__CLUSTER_REQ_MAX];
    uint64_t e, le, l;
    ssize_t n = xcp__cluster_req_encode(3, 2, 77, buf, sizeof(buf));

    cr_assert_str_eq(buf, "XCPQ 1 3 2 77\n");
    cr_assert_eq(xcp__cluster_req_decode(buf, (size_t)n, &e, &le, &l), 0);
    cr_assert_eq(e, 3);
    cr_assert_eq(le, 2);
    cr_assert_eq(l, 77);
    cr_assert_eq(xcp__cluster_req_decode("XCPQ 1 3 2\n", 11, &e, &le, &l),
                 -EBADMSG);
    cr_assert_eq(xcp__cluster_req_decode("XCPQ 1 3 2 077\n", 15, &e, &le, &l),
                 -EBADMSG);
    cr_assert_eq(xcp__cluster_req_encode(3, 2, 77, buf, 8), -ENOSPC);
}

Test(cluster_handover, round_trip_and_strictness)
{
    char buf[XCP__CLUSTER_HANDOVER_MAX];
    uint64_t e, le, l;
    uint32_t to;
    ssize_t n = xcp__cluster_handover_encode(4, 3, 1234, 2, buf, sizeof(buf));

    cr_assert_str_eq(buf, "XCPH 1 4 3 1234 2\n");
    cr_assert_eq(xcp__cluster_handover_decode(buf, (size_t)n, &e, &le, &l,
                                              &to), 0);
    cr_assert_eq(e, 4);
    cr_assert_eq(le, 3);
    cr_assert_eq(l, 1234);
    cr_assert_eq(to, 2);
    /* no target, a target beyond a node id, a missing field, zeros */
    cr_assert_eq(xcp__cluster_handover_decode("XCPH 1 4 3 1234 0\n", 18, &e,
                                              &le, &l, &to), -EBADMSG);
    cr_assert_eq(xcp__cluster_handover_decode("XCPH 1 4 3 1 4294967296\n",
                                              24, &e, &le, &l, &to),
                 -EBADMSG);
    cr_assert_eq(xcp__cluster_handover_decode("XCPH 1 4 3 1234\n", 16, &e,
                                              &le, &l, &to), -EBADMSG);
    cr_assert_eq(xcp__cluster_handover_decode("XCPH 1 4 3 1234 02\n", 19,
                                              &e, &le, &l, &to), -EBADMSG);
    cr_assert_eq(xcp__cluster_handover_encode(4, 3, 1234, 2, buf, 8),
                 -ENOSPC);
}

Test(cluster_chunk, pieces_and_record_streams)
{
    char stream[512], buf[XCP__CLUSTER_CHUNK_HDR_MAX + 512];
    xcp__cluster_record r1 = {2, 5, 9, "T 9 S x", 7}, r2 = {2, 6, 10, "T 10",
                                                           4}, d;
    xcp__cluster_chunk c = {'C', 3, 2, 6, 2, 10, 0, 0, 0, stream, 0}, e;
    const char *p = stream;
    ssize_t n1, n2, n;

    n1 = xcp__cluster_record_encode(&r1, stream, sizeof(stream));
    n2 = xcp__cluster_record_encode(&r2, stream + n1, sizeof(stream) - n1);
    cr_assert(n1 > 0 && n2 > 0);
    c.total = c.len = (size_t)(n1 + n2);
    c.crc = xcp__cluster_crc(0, stream, c.total);
    n = xcp__cluster_chunk_encode(&c, buf, sizeof(buf));
    cr_assert_gt(n, 0);
    cr_assert_eq(xcp__cluster_chunk_decode(buf, (size_t)n, &e), 0);
    cr_assert_eq(e.kind, 'C');
    cr_assert_eq(e.to, 3);
    cr_assert_eq(e.seq, 6);
    cr_assert_eq(e.total, c.total);
    cr_assert_eq(e.crc, c.crc);
    cr_assert_eq(e.len, c.len);
    cr_assert_eq(memcmp(e.data, stream, e.len), 0);
    /* the stream: two records, then the end */
    cr_assert_eq(xcp__cluster_record_next(&p, stream + c.total, &d), 0);
    cr_assert_eq(d.seq, 5);
    cr_assert_eq(xcp__cluster_record_next(&p, stream + c.total, &d), 0);
    cr_assert_eq(d.seq, 6);
    cr_assert_eq(d.len, 4);
    cr_assert_eq(xcp__cluster_record_next(&p, stream + c.total, &d), -ENOENT);
    /* a cut stream is refused */
    p = stream;
    cr_assert_eq(xcp__cluster_record_next(&p, stream + n1 - 1, &d), -EBADMSG);
    /* a piece longer than it says, or past the total, is refused */
    cr_assert_eq(xcp__cluster_chunk_decode(buf, (size_t)n - 1, &e), -EBADMSG);
    c.offset = 1;
    cr_assert_eq(xcp__cluster_chunk_encode(&c, buf, sizeof(buf)), -EINVAL);
    c.offset = 0;
    c.kind = 'X';
    cr_assert_eq(xcp__cluster_chunk_encode(&c, buf, sizeof(buf)), -EINVAL);
    cr_assert_eq(xcp__cluster_chunk_decode("XCPC 1 T 1 1 1 1 1 0 0 "
                                           "00000000 0\n", 34, &e), 0);
    cr_assert_eq(xcp__cluster_chunk_decode("XCPC 1 T 1 1 1 1 1 0 0 "
                                           "0000000G 0\n", 34, &e), -EBADMSG);
}
