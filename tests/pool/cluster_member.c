/*
 * tests/pool/cluster_member: one pool member's corosync side, driven by
 * tests/pool/cluster.sh inside a tools/netns-pool host, over
 * lib/libxcp/cluster only.
 *
 *   conf PATH NAME COORD ID:NAME:ADDR...   write corosync.conf for the hosts
 *   supervise CONF LOG                     start corosync (or adopt the
 *                                          one running), keep it running
 *                                          until SIGTERM (then stop it);
 *                                          SIGHUP: reload its configuration
 *   quorum                                 print this node's quorum; exit
 *                                          0 quorate, 1 not, 2 no corosync
 *   wait-quorate SECONDS                   wait for quorum; print the ms
 *   chat GROUP MEMBERS COUNT OUT SECONDS   join GROUP, wait for MEMBERS
 *                                          members, send COUNT records,
 *                                          write every delivery to OUT as
 *                                          "seq nodeid epoch recseq body"
 *   repl COORD MEMBERS N OUT SECONDS       replication: the coordinator
 *                                          (node COORD) commits N records
 *                                          one at a time (latency) then N
 *                                          at once (throughput); members
 *                                          apply them; every host writes
 *                                          "seq gen body" lines to OUT.
 *                                          Exit 3: not quorate (nothing
 *                                          sent)
 *   failover COORD MEMBERS N M OUT SECONDS the coordinator commits N
 *                                          records and waits to be killed;
 *                                          the others elect a new one when
 *                                          it is gone, which commits M
 *                                          more; OUT as for repl
 */
#define _GNU_SOURCE
#include "cluster.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int usage(void)
{
    fprintf(stderr, "usage: cluster_member conf|supervise|quorum|"
                    "wait-quorate|chat ...\n");
    return 2;
}

static int cmd_conf(int argc, char **argv)
{
    xcp__cluster_node nodes[XCP__CLUSTER_MAX_NODES];
    xcp__cluster_conf c = {0};
    xcp__cluster_err err;
    int i, n = 0;

    if (argc < 5)
        return usage();
    c.cluster_name = argv[1];
    c.coordinator = (uint32_t)strtoul(argv[2], NULL, 10);
    c.log_stderr = true;
    for (i = 3; i < argc && n < XCP__CLUSTER_MAX_NODES; i++, n++) {
        char *a = argv[i], *b = strchr(a, ':'), *d = b ? strchr(b + 1, ':')
                                                       : NULL;
        if (d == NULL)
            return usage();
        *b = *d = '\0';
        nodes[n].nodeid = (uint32_t)strtoul(a, NULL, 10);
        nodes[n].name = b + 1;
        nodes[n].addr = d + 1;
    }
    c.nodes = nodes;
    c.nnodes = (size_t)n;
    if (xcp__corosync_conf_write(&c, argv[0], &err) < 0) {
        fprintf(stderr, "conf: %s\n", err.msg);
        return 1;
    }
    return 0;
}

static int cmd_supervise(int argc, char **argv)
{
    xcp__corosync_opts o = {0};
    xcp__corosync *c;
    xcp__cluster_err err;
    sigset_t set;
    pid_t last = -1;
    int sig;

    if (argc != 2)
        return usage();
    o.conf = argv[0];
    o.log = argv[1];
    o.use_systemd = false;
    /* SIGTERM is taken with sigtimedwait; the supervisor thread and
     * corosync inherit nothing of it (the spawn resets the mask). */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (xcp__corosync_start(&c, &o, &err) < 0) {
        fprintf(stderr, "supervise: %s\n", err.msg);
        return 1;
    }
    for (;;) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        pid_t pid = xcp__corosync_pid(c);
        if (pid != last && pid > 0) {
            printf("corosync pid %d start %u\n", (int)pid,
                   xcp__corosync_starts(c));
            fflush(stdout);
        }
        last = pid;
        sig = sigtimedwait(&set, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT)
            break;
        if (sig == SIGHUP) {
            if (xcp__corosync_reload(c, &err) < 0)
                printf("reload failed: %s\n", err.msg);
            else
                printf("reloaded\n");
            fflush(stdout);
        }
    }
    xcp__corosync_stop(c, true);
    printf("stopped\n");
    return 0;
}

static int cmd_quorum(void)
{
    xcp__cluster_quorum q;
    xcp__cluster_err err;

    if (xcp__cluster_quorum_get(&q, &err) < 0) {
        printf("no corosync: %s\n", err.msg);
        return 2;
    }
    printf("quorate=%d nodeid=%u votes=%u expected=%u quorum=%u\n",
           q.quorate, q.nodeid, q.total_votes, q.expected_votes, q.quorum);
    return q.quorate ? 0 : 1;
}

static int cmd_wait_quorate(int argc, char **argv)
{
    int64_t t0 = now_ms(), limit;
    xcp__cluster_quorum q;

    if (argc != 1)
        return usage();
    limit = atoi(argv[0]) * 1000;
    while (now_ms() - t0 < limit) {
        if (xcp__cluster_quorum_get(&q, NULL) == 0 && q.quorate) {
            printf("%" PRId64 "\n", now_ms() - t0);
            return 0;
        }
        usleep(50 * 1000);
    }
    printf("not quorate after %s s\n", argv[0]);
    return 1;
}

struct chat {
    FILE *out;
    size_t members;      /* in the group now */
    uint64_t delivered;
    int bad;
};

static void on_deliver(void *arg, uint64_t seq, uint32_t nodeid,
                       uint32_t pid, const void *msg, size_t len)
{
    struct chat *ch = arg;
    xcp__cluster_record r;

    (void)pid;
    ch->delivered++;
    if (xcp__cluster_record_decode(msg, len, &r) < 0 || r.epoch != nodeid) {
        ch->bad++;
        return;
    }
    fprintf(ch->out, "%" PRIu64 " %u %" PRIu64 " %" PRIu64 " %.*s\n", seq,
            nodeid, r.epoch, r.seq, (int)r.len, r.body);
}

static void on_members(void *arg, const xcp__cpg_member *m, size_t n,
                       const xcp__cpg_member *left, size_t nleft,
                       const xcp__cpg_member *joined, size_t njoined)
{
    struct chat *ch = arg;

    (void)m;
    (void)left;
    (void)nleft;
    (void)joined;
    (void)njoined;
    ch->members = n;
}

static int cmd_chat(int argc, char **argv)
{
    xcp__cpg_callbacks cb = {on_deliver, on_members};
    struct chat ch = {0};
    xcp__cluster_err err = {{0}};
    xcp__cpg *g;
    size_t want, count, i;
    int64_t t0 = now_ms(), limit;
    int rc = 1;

    if (argc != 5)
        return usage();
    want = strtoul(argv[1], NULL, 10);
    count = strtoul(argv[2], NULL, 10);
    limit = atoi(argv[4]) * 1000;
    ch.out = fopen(argv[3], "w");
    if (ch.out == NULL) {
        perror(argv[3]);
        return 1;
    }
    if (xcp__cpg_open(&g, argv[0], &cb, &ch, &err) < 0) {
        fprintf(stderr, "chat: %s\n", err.msg);
        fclose(ch.out);
        return 1;
    }
    while (ch.members < want && now_ms() - t0 < limit)
        if (xcp__cpg_dispatch(g, 100, &err) < 0)
            goto out;
    if (ch.members < want) {
        fprintf(stderr, "chat: %zu members of %zu\n", ch.members, want);
        goto out;
    }
    for (i = 1; i <= count; i++) {
        char body[64], buf[XCP__CLUSTER_RECORD_HDR_MAX + 64];
        xcp__cluster_record r = {0};
        ssize_t n;

        r.epoch = xcp__cpg_nodeid(g);
        r.seq = i;
        r.len = (size_t)snprintf(body, sizeof(body), "from-%u-%zu",
                                 xcp__cpg_nodeid(g), i);
        r.body = body;
        n = xcp__cluster_record_encode(&r, buf, sizeof(buf));
        if (n < 0 || xcp__cpg_send(g, buf, (size_t)n, &err) < 0) {
            fprintf(stderr, "chat: send: %s\n", n < 0 ? "encode" : err.msg);
            goto out;
        }
    }
    while (ch.delivered < want * count && now_ms() - t0 < limit)
        if (xcp__cpg_dispatch(g, 100, &err) < 0)
            goto out;
    if (ch.delivered != want * count || ch.bad) {
        fprintf(stderr, "chat: %" PRIu64 " delivered of %zu, %d bad\n",
                ch.delivered, want * count, ch.bad);
        goto out;
    }
    rc = 0;
out:
    if (rc && err.msg[0])
        fprintf(stderr, "chat: %s\n", err.msg);
    xcp__cpg_close(g);
    fclose(ch.out);
    return rc;
}

static int apply(void *arg, const xcp__cluster_record *r)
{
    FILE *f = arg;

    fprintf(f, "%" PRIu64 " %" PRIu64 " %.*s\n", r->seq, r->gen, (int)r->len,
            r->body);
    return fflush(f) == 0 ? 0 : -EIO;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

static int64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int cmd_repl(int argc, char **argv)
{
    xcp__repl_callbacks cb = {apply};
    xcp__cluster_err err = {{0}};
    xcp__repl *r;
    uint32_t coord;
    size_t want, n, i;
    int64_t t0 = now_ms(), limit, *lat = NULL;
    FILE *out;
    int rc = 1;

    if (argc != 5)
        return usage();
    coord = (uint32_t)strtoul(argv[0], NULL, 10);
    want = strtoul(argv[1], NULL, 10);
    n = strtoul(argv[2], NULL, 10);
    limit = atoi(argv[4]) * 1000;
    out = fopen(argv[3], "w");
    if (out == NULL || (lat = calloc(n ? n : 1, sizeof(*lat))) == NULL) {
        perror(argv[3]);
        return 1;
    }
    if (xcp__repl_open(&r, "xcp-repl", coord, 1, 0, 0, &cb, out, &err) < 0) {
        fprintf(stderr, "repl: %s\n", err.msg);
        goto out_file;
    }
    /* Every member in, and the round of states that follows decided. */
    while ((xcp__repl_members(r) < want || !xcp__repl_ready(r)) &&
           now_ms() - t0 < limit)
        if (xcp__repl_dispatch(r, 100, &err) < 0)
            goto out;
    if (xcp__repl_members(r) < want) {
        fprintf(stderr, "repl: %zu members of %zu\n", xcp__repl_members(r),
                want);
        goto out;
    }
    if (xcp__repl_nodeid(r) == coord) {
        char body[96];
        uint64_t seq = 0;
        int64_t t, burst0 = now_us();

        for (i = 0; i < 2 * n; i++) {
            int len = snprintf(body, sizeof(body),
                               "T %zu S OpaqueRef:vm-%zu name_label 'v%zu",
                               i + 1, i % 7, i);
            int s = xcp__repl_submit(r, i + 1, body, (size_t)len, &seq, &err);
            if (s == -EROFS) {
                printf("not quorate: %s\n", err.msg);
                rc = 3;
                goto out;
            }
            if (s < 0) {
                fprintf(stderr, "repl: submit: %s\n", err.msg);
                goto out;
            }
            apply(out, &(xcp__cluster_record){1, seq, i + 1, body,
                                               (size_t)len});
            if (i < n) { /* one at a time: the commit latency */
                t = now_us();
                if (xcp__repl_wait(r, seq, (int)limit, &err) < 0)
                    goto fail;
                lat[i] = now_us() - t;
            }
            if (i + 1 == n && n > 0) { /* the latencies, then the burst */
                qsort(lat, n, sizeof(*lat), cmp_i64);
                printf("commit latency: p50 %" PRId64 " us, p99 %" PRId64
                       " us, max %" PRId64 " us (%zu records)\n",
                       lat[n / 2], lat[(n * 99) / 100], lat[n - 1], n);
                burst0 = now_us();
                t0 = now_ms();
            }
        }
        if (xcp__repl_wait(r, seq, (int)limit, &err) < 0)
            goto fail;
        printf("burst: %zu records committed in %" PRId64 " us\n", n,
               now_us() - burst0);
        fflush(stdout);
        /* every member has them too, before the coordinator leaves */
        while (xcp__repl_all_acked(r) < seq && now_ms() - t0 < limit)
            if (xcp__repl_dispatch(r, 100, &err) < 0)
                goto out;
        if (xcp__repl_all_acked(r) < seq) {
            fprintf(stderr, "repl: members acked %llu of %llu\n",
                    (unsigned long long)xcp__repl_all_acked(r),
                    (unsigned long long)seq);
            goto out;
        }
        rc = 0;
    } else {
        while (xcp__repl_last(r) < 2 * n && !xcp__repl_broken(r) &&
               now_ms() - t0 < limit)
            if (xcp__repl_dispatch(r, 100, &err) < 0)
                goto out;
        /* the last ack goes out in the dispatch that applied it */
        rc = xcp__repl_last(r) == 2 * n && !xcp__repl_broken(r) ? 0 : 1;
        if (rc)
            fprintf(stderr, "repl: applied %llu of %zu\n",
                    (unsigned long long)xcp__repl_last(r), 2 * n);
    }
    goto out;
fail:
    fprintf(stderr, "repl: %s\n", err.msg);
out:
    xcp__repl_close(r);
out_file:
    fclose(out);
    free(lat);
    return rc;
}

struct failover {
    FILE *out;
    uint32_t elected;
    uint64_t epoch;
};

static int fo_apply(void *arg, const xcp__cluster_record *r)
{
    return apply(((struct failover *)arg)->out, r);
}

static void fo_elected(void *arg, uint32_t coordinator, uint64_t epoch,
                       const char *address)
{
    struct failover *f = arg;

    (void)address;
    if (f->elected == coordinator && f->epoch == epoch)
        return; /* confirmed again after a change of the group */
    f->elected = coordinator;
    f->epoch = epoch;
    printf("elected %u epoch %llu\n", coordinator, (unsigned long long)epoch);
    fflush(stdout);
}

/* Commit n records (numbered from the current last + 1), each waited for,
 * then wait until every member has them. */
static int commit_n(xcp__repl *r, FILE *out, size_t n, int64_t limit_ms,
                    xcp__cluster_err *err)
{
    char body[96];
    uint64_t seq = xcp__repl_last(r);
    int64_t t0 = now_ms();
    size_t i;

    for (i = 0; i < n; i++) {
        uint64_t next = xcp__repl_last(r) + 1;
        int len = snprintf(body, sizeof(body), "T %llu S OpaqueRef:vm-1 "
                           "name_label 'epoch%llu",
                           (unsigned long long)next,
                           (unsigned long long)xcp__repl_epoch(r));
        if (xcp__repl_submit(r, next, body, (size_t)len, &seq, err) < 0 ||
            xcp__repl_wait(r, seq, (int)limit_ms, err) < 0)
            return -1;
        apply(out, &(xcp__cluster_record){xcp__repl_epoch(r), seq, next,
                                           body, (size_t)len});
    }
    while (xcp__repl_all_acked(r) < seq && now_ms() - t0 < limit_ms)
        if (xcp__repl_dispatch(r, 100, err) < 0)
            return -1;
    return xcp__repl_all_acked(r) >= seq ? 0 : -1;
}

static int cmd_failover(int argc, char **argv)
{
    struct failover f = {0};
    xcp__repl_callbacks cb = {fo_apply, fo_elected};
    xcp__cluster_err err = {{0}};
    xcp__repl *r;
    uint32_t coord;
    size_t want, n, m;
    int64_t t0 = now_ms(), limit;
    int rc = 1;

    if (argc != 6)
        return usage();
    coord = (uint32_t)strtoul(argv[0], NULL, 10);
    want = strtoul(argv[1], NULL, 10);
    n = strtoul(argv[2], NULL, 10);
    m = strtoul(argv[3], NULL, 10);
    limit = atoi(argv[5]) * 1000;
    f.out = fopen(argv[4], "w");
    if (f.out == NULL) {
        perror(argv[4]);
        return 1;
    }
    if (xcp__repl_open(&r, "xcp-failover", coord, 1, 0, 0, &cb, &f, &err) < 0) {
        fprintf(stderr, "failover: %s\n", err.msg);
        fclose(f.out);
        return 1;
    }
    /* Every member in, and the round of states that follows decided. */
    while ((xcp__repl_members(r) < want || !xcp__repl_ready(r)) &&
           now_ms() - t0 < limit)
        if (xcp__repl_dispatch(r, 100, &err) < 0)
            goto out;
    if (xcp__repl_members(r) < want)
        goto out;
    if (xcp__repl_nodeid(r) == coord) {
        if (commit_n(r, f.out, n, limit, &err) < 0)
            goto out;
        printf("committed %zu\n", n);
        fflush(stdout);
        for (;;) /* until killed with its host */
            if (xcp__repl_dispatch(r, 1000, &err) < 0)
                goto out;
    }
    while (now_ms() - t0 < limit && !xcp__repl_broken(r)) {
        if (xcp__repl_dispatch(r, 100, &err) < 0)
            goto out;
        if (f.elected == xcp__repl_nodeid(r)) {
            rc = commit_n(r, f.out, m, limit, &err) < 0 ? 1 : 0;
            printf("committed %zu more as coordinator\n", m);
            goto out;
        }
        if (f.elected && xcp__repl_last(r) == n + m) {
            rc = 0;
            goto out;
        }
    }
out:
    if (rc && err.msg[0])
        fprintf(stderr, "failover: %s\n", err.msg);
    xcp__repl_close(r);
    fclose(f.out);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    if (strcmp(argv[1], "conf") == 0)
        return cmd_conf(argc - 2, argv + 2);
    if (strcmp(argv[1], "supervise") == 0)
        return cmd_supervise(argc - 2, argv + 2);
    if (strcmp(argv[1], "quorum") == 0)
        return cmd_quorum();
    if (strcmp(argv[1], "wait-quorate") == 0)
        return cmd_wait_quorate(argc - 2, argv + 2);
    if (strcmp(argv[1], "chat") == 0)
        return cmd_chat(argc - 2, argv + 2);
    if (strcmp(argv[1], "repl") == 0)
        return cmd_repl(argc - 2, argv + 2);
    if (strcmp(argv[1], "failover") == 0)
        return cmd_failover(argc - 2, argv + 2);
    return usage();
}
