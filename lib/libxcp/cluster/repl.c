/*
 * The replication commit path (docs/design-pool.md §3) over a CPG group.
 * CPG gives one order but not safe delivery (the sender may deliver its
 * own message before anyone else has it), so durability is counted: every
 * member acks the highest seq it has applied and written, cumulatively,
 * once per dispatch batch; the coordinator holds, per node, the highest
 * seq acked, and a seq is committed when votequorum's quorum of votes
 * (its own included) has acked it or more. When the coordinator leaves
 * the group, every member sends its state; once the states of all the
 * members are in (delivered in the group's order, so every member has the
 * same set at the same point) and all say quorate, each picks the same
 * coordinator (§5): the highest (last epoch, last seq), then the lowest
 * node id, for the next epoch. Catch-up and the database hook are the
 * next steps (§8): a member behind the new coordinator, or that sees a
 * gap, stops (broken) rather than apply out of order.
 */
#include "cluster.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_NODES XCP__CLUSTER_MAX_NODES
#define QUORUM_REFRESH_MS 500

struct xcp__repl {
    xcp__cpg *g;
    xcp__repl_callbacks cb;
    void *arg;
    uint32_t me, coordinator;
    uint64_t epoch;
    uint64_t last;        /* coordinator: last sent; member: last applied */
    uint64_t committed;   /* coordinator */
    uint64_t acked_sent;  /* member: last seq it acked */
    uint64_t last_epoch;  /* epoch of the record at last */
    bool broken;
    /* election: the coordinator is not in the group */
    bool electing, state_due;
    int64_t state_sent_ms;
    struct {
        uint32_t nodeid;
        bool have;
        xcp__cluster_state st;
    } states[MAX_NODES]; /* by position in members[] */
    /* coordinator: the highest ack of each node ever heard (an ack is a
     * record on that node's disk, whether or not it is still here) */
    struct {
        uint32_t nodeid;
        uint64_t seq;
    } acks[MAX_NODES];
    size_t nacks;
    xcp__cpg_member members[MAX_NODES];
    size_t nmembers;
    xcp__cluster_quorum q;
    bool have_q;
    int64_t q_at_ms;
    char *buf;
    size_t cap;
};

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void refresh_quorum(xcp__repl *r)
{
    r->have_q = xcp__cluster_quorum_get(&r->q, NULL) == 0;
    r->q_at_ms = now_ms();
}

static int cmp_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? 1 : x > y ? -1 : 0;
}

/* committed = the quorum-th highest ack (the coordinator's is last). */
static void recount(xcp__repl *r)
{
    uint64_t v[MAX_NODES + 1];
    size_t n = 0, i;

    if (!r->have_q || r->q.quorum == 0)
        return;
    v[n++] = r->last;
    for (i = 0; i < r->nacks; i++)
        if (r->acks[i].nodeid != r->me)
            v[n++] = r->acks[i].seq;
    if (n < r->q.quorum)
        return;
    qsort(v, n, sizeof(v[0]), cmp_desc);
    if (v[r->q.quorum - 1] > r->committed)
        r->committed = v[r->q.quorum - 1];
}

static void on_ack(xcp__repl *r, uint32_t nodeid, uint64_t seq)
{
    size_t i;

    for (i = 0; i < r->nacks && r->acks[i].nodeid != nodeid; i++)
        ;
    if (i == r->nacks) {
        if (r->nacks == MAX_NODES)
            return;
        r->acks[r->nacks].nodeid = nodeid;
        r->acks[r->nacks++].seq = 0;
    }
    if (seq > r->acks[i].seq && seq <= r->last)
        r->acks[i].seq = seq;
    recount(r);
}

static void on_record(xcp__repl *r, const xcp__cluster_record *rec)
{
    if (r->broken || rec->seq <= r->last)
        return; /* a duplicate: already applied (and acked) */
    if (rec->seq != r->last + 1 ||
        (r->cb.apply && r->cb.apply(r->arg, rec) < 0)) {
        fprintf(stderr,
                "xcp repl: node %u stops at seq %llu (got %llu): needs a "
                "catch-up\n",
                r->me, (unsigned long long)r->last,
                (unsigned long long)rec->seq);
        r->broken = true;
        return;
    }
    r->last = rec->seq;
    r->last_epoch = rec->epoch;
}

/* All the members' states are in: pick (every member picks the same). */
static void decide(xcp__repl *r)
{
    size_t i, best = 0;
    uint64_t epoch = r->epoch;

    if (r->nmembers == 0)
        return;
    for (i = 0; i < r->nmembers; i++) {
        const xcp__cluster_state *a = &r->states[i].st, *b;
        if (!r->states[i].have || !a->quorate)
            return; /* not yet, or not here: a minority never elects */
        if (a->epoch > epoch)
            epoch = a->epoch;
        b = &r->states[best].st;
        if (a->last_epoch > b->last_epoch ||
            (a->last_epoch == b->last_epoch &&
             (a->last > b->last ||
              (a->last == b->last &&
               r->states[i].nodeid < r->states[best].nodeid))))
            best = i;
    }
    r->electing = false;
    r->coordinator = r->states[best].nodeid;
    r->epoch = epoch + 1;
    if (r->coordinator == r->me) {
        /* What is committed is what a quorum holds: the members whose
         * state is exactly ours count as having acked our last (one
         * coordinator per epoch: same epoch and seq, same records). A
         * tail that no quorum holds is committed only once a record of
         * the new epoch is (acks are cumulative). */
        r->nacks = 0;
        r->committed = 0;
        for (i = 0; i < r->nmembers; i++) {
            const xcp__cluster_state *a = &r->states[i].st;
            if (r->states[i].nodeid != r->me && a->last == r->last &&
                a->last_epoch == r->last_epoch) {
                r->acks[r->nacks].nodeid = r->states[i].nodeid;
                r->acks[r->nacks++].seq = a->last;
            }
        }
        recount(r);
    } else if (r->last != r->states[best].st.last ||
               r->last_epoch != r->states[best].st.last_epoch) {
        fprintf(stderr,
                "xcp repl: node %u (seq %llu) is behind the new coordinator "
                "%u (seq %llu): needs a catch-up\n",
                r->me, (unsigned long long)r->last, r->coordinator,
                (unsigned long long)r->states[best].st.last);
        r->broken = true;
    }
    if (r->cb.elected)
        r->cb.elected(r->arg, r->coordinator, r->epoch);
}

static void on_state(xcp__repl *r, uint32_t nodeid,
                     const xcp__cluster_state *st)
{
    size_t i;

    if (!r->electing) { /* joined the group during an election */
        r->electing = true;
        r->state_due = true;
    }
    for (i = 0; i < r->nmembers; i++)
        if (r->members[i].nodeid == nodeid) {
            r->states[i].have = true;
            r->states[i].st = *st; /* the latest counts */
        }
    decide(r);
}

static void deliver(void *arg, uint64_t dseq, uint32_t nodeid, uint32_t pid,
                    const void *msg, size_t len)
{
    xcp__repl *r = arg;
    xcp__cluster_record rec;
    xcp__cluster_state st;
    uint64_t epoch, seq;

    (void)dseq;
    (void)pid;
    if (xcp__cluster_state_decode(msg, len, &st) == 0) {
        on_state(r, nodeid, &st);
        return;
    }
    if (xcp__cluster_ack_decode(msg, len, &epoch, &seq) == 0) {
        if (r->me == r->coordinator && epoch == r->epoch)
            on_ack(r, nodeid, seq);
        return;
    }
    if (xcp__cluster_record_decode(msg, len, &rec) < 0 ||
        nodeid != r->coordinator || rec.epoch != r->epoch)
        return; /* not ours, or a deposed coordinator's */
    if (r->me != r->coordinator)
        on_record(r, &rec);
}

static void members(void *arg, const xcp__cpg_member *m, size_t n,
                    const xcp__cpg_member *left, size_t nleft,
                    const xcp__cpg_member *joined, size_t njoined)
{
    xcp__repl *r = arg;

    (void)joined;
    (void)njoined;
    if (n > MAX_NODES)
        n = MAX_NODES;
    size_t i;

    memcpy(r->members, m, n * sizeof(*m));
    r->nmembers = n;
    refresh_quorum(r);
    recount(r);
    /* An election starts when the coordinator leaves; a new round
     * whenever the group changes during one (states from before the
     * change do not count). A member that never saw the coordinator (it
     * may not have joined yet) does not start one: it joins one when a
     * state reaches it (on_state). */
    for (i = 0; i < n; i++) {
        r->states[i].nodeid = m[i].nodeid;
        r->states[i].have = false;
    }
    for (i = 0; i < nleft; i++)
        if (left[i].nodeid == r->coordinator)
            r->electing = true;
    r->state_due = r->electing;
}

int xcp__repl_open(xcp__repl **out, const char *group, uint32_t coordinator,
                   uint64_t epoch, uint64_t last,
                   const xcp__repl_callbacks *cb, void *arg,
                   xcp__cluster_err *err)
{
    xcp__cpg_callbacks ccb = {deliver, members};
    xcp__repl *r;
    int rc;

    *out = NULL;
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return xcp__cluster_fail(err, -ENOMEM, "out of memory");
    r->cb = *cb;
    r->arg = arg;
    r->coordinator = coordinator;
    r->epoch = epoch;
    r->last = r->committed = r->acked_sent = last;
    r->last_epoch = last ? epoch : 0;
    if ((rc = xcp__cpg_open(&r->g, group, &ccb, r, err)) < 0) {
        free(r);
        return rc;
    }
    r->me = xcp__cpg_nodeid(r->g);
    refresh_quorum(r);
    *out = r;
    return 0;
}

/* After a batch: a member acks what it applied, once; and sends its state
 * when an election needs it. */
static int flush_ack(xcp__repl *r, xcp__cluster_err *err)
{
    char buf[XCP__CLUSTER_ACK_MAX];
    ssize_t n;
    int rc;

    /* While electing without quorum, say so again when it comes (the
     * quorum may follow the group's change by a moment). */
    if (r->electing && !r->state_due && r->have_q && r->q.quorate &&
        now_ms() - r->state_sent_ms >= QUORUM_REFRESH_MS)
        r->state_due = true;
    if (r->state_due) {
        char sb[XCP__CLUSTER_STATE_MAX];
        xcp__cluster_state st = {r->epoch, r->last_epoch, r->last,
                                 r->have_q && r->q.quorate};
        n = xcp__cluster_state_encode(&st, sb, sizeof(sb));
        if (n < 0)
            return (int)n;
        if ((rc = xcp__cpg_send(r->g, sb, (size_t)n, err)) < 0)
            return rc;
        r->state_due = false;
        r->state_sent_ms = now_ms();
    }

    if (r->me == r->coordinator || r->last <= r->acked_sent)
        return 0;
    n = xcp__cluster_ack_encode(r->epoch, r->last, buf, sizeof(buf));
    if (n < 0)
        return (int)n;
    if ((rc = xcp__cpg_send(r->g, buf, (size_t)n, err)) < 0)
        return rc;
    r->acked_sent = r->last;
    return 0;
}

int xcp__repl_dispatch(xcp__repl *r, int timeout_ms, xcp__cluster_err *err)
{
    int rc = xcp__cpg_dispatch(r->g, timeout_ms, err);

    if (rc < 0)
        return rc;
    if (now_ms() - r->q_at_ms >= QUORUM_REFRESH_MS) {
        refresh_quorum(r);
        recount(r);
    }
    return flush_ack(r, err);
}

int xcp__repl_submit(xcp__repl *r, uint64_t gen, const char *body,
                     size_t len, uint64_t *seq, xcp__cluster_err *err)
{
    xcp__cluster_record rec = {r->epoch, r->last + 1, gen, body, len};
    size_t need = XCP__CLUSTER_RECORD_HDR_MAX + len;
    ssize_t n;
    int rc;

    if (r->me != r->coordinator || r->electing)
        return xcp__cluster_fail(err, -EPERM,
                                 "node %u is not the coordinator (%u%s)",
                                 r->me, r->coordinator,
                                 r->electing ? ", electing" : "");
    if (!r->have_q || !r->q.quorate) {
        refresh_quorum(r);
        if (!r->have_q || !r->q.quorate)
            return xcp__cluster_fail(err, -EROFS,
                                     "not quorate (%u votes of %u needed)",
                                     r->have_q ? r->q.total_votes : 0,
                                     r->have_q ? r->q.quorum : 0);
    }
    if (need > r->cap) {
        char *b = realloc(r->buf, need);
        if (b == NULL)
            return xcp__cluster_fail(err, -ENOMEM, "out of memory");
        r->buf = b;
        r->cap = need;
    }
    n = xcp__cluster_record_encode(&rec, r->buf, r->cap);
    if (n < 0)
        return (int)n;
    if ((rc = xcp__cpg_send(r->g, r->buf, (size_t)n, err)) < 0)
        return rc;
    r->last = rec.seq;
    r->last_epoch = rec.epoch;
    recount(r);
    *seq = rec.seq;
    return 0;
}

int xcp__repl_wait(xcp__repl *r, uint64_t seq, int timeout_ms,
                   xcp__cluster_err *err)
{
    int64_t until = now_ms() + timeout_ms;
    int rc;

    while (r->committed < seq) {
        int64_t left = until - now_ms();
        if (left <= 0)
            return xcp__cluster_fail(err, -ETIMEDOUT,
                                     "seq %llu not acked by a quorum in %d ms",
                                     (unsigned long long)seq, timeout_ms);
        if ((rc = xcp__repl_dispatch(r, (int)(left > 100 ? 100 : left),
                                     err)) < 0)
            return rc;
    }
    return 0;
}

uint64_t xcp__repl_last(const xcp__repl *r)
{
    return r->last;
}

uint64_t xcp__repl_committed(const xcp__repl *r)
{
    return r->committed;
}

uint64_t xcp__repl_all_acked(const xcp__repl *r)
{
    uint64_t low = r->last;
    size_t i, j;

    for (i = 0; i < r->nmembers; i++) {
        uint32_t id = r->members[i].nodeid;
        uint64_t s = 0;
        if (id == r->me)
            continue;
        for (j = 0; j < r->nacks; j++)
            if (r->acks[j].nodeid == id)
                s = r->acks[j].seq;
        if (s < low)
            low = s;
    }
    return low;
}

size_t xcp__repl_members(const xcp__repl *r)
{
    return r->nmembers;
}

uint32_t xcp__repl_coordinator(const xcp__repl *r)
{
    return r->coordinator;
}

uint64_t xcp__repl_epoch(const xcp__repl *r)
{
    return r->epoch;
}

uint32_t xcp__repl_nodeid(const xcp__repl *r)
{
    return r->me;
}

bool xcp__repl_quorate(const xcp__repl *r)
{
    return r->have_q && r->q.quorate;
}

bool xcp__repl_broken(const xcp__repl *r)
{
    return r->broken;
}

void xcp__repl_close(xcp__repl *r)
{
    if (r == NULL)
        return;
    xcp__cpg_close(r->g);
    free(r->buf);
    free(r);
}

int xcp__repl_fd(const xcp__repl *r)
{
    return xcp__cpg_fd(r->g);
}

bool xcp__repl_has_member(const xcp__repl *r, uint32_t nodeid)
{
    size_t i;

    for (i = 0; i < r->nmembers; i++)
        if (r->members[i].nodeid == nodeid)
            return true;
    return false;
}
