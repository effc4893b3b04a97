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
 * node id, for the next epoch. Every change of the group starts such a
 * round of states, so that a host that joins (or a partition that heals)
 * learns who the coordinator is: a member that says it is the coordinator
 * of the highest epoch in the round stays, with no new epoch; the others
 * follow it. A deposed coordinator becomes a member. Without one, a new
 * one is elected only if a member saw the coordinator leave (members
 * that have not seen it yet wait for it).
 *
 * Catch-up (§5.1): a member that follows a coordinator whose log it is not
 * known to continue (a new one, a gap, a start-up) buffers the records
 * that arrive and asks the coordinator for what follows its last record
 * (XCPQ); the coordinator's owner (pool.c) answers with the records from
 * its journal or, when they are gone or the logs disagree, a snapshot of
 * its database, in pieces over the group (XCPC); the member applies them,
 * then the buffered records, and only then acks (so it counts in the
 * commit quorum only once caught up).
 */
#include "cluster.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_NODES XCP__CLUSTER_MAX_NODES
#define QUORUM_REFRESH_MS 500

#define REQ_RETRY_MS 3000
#define CHUNK_MAX (256 * 1024)
#define HELD_MAX ((size_t)256 << 20) /* bytes of records held while behind */

/* A record that arrived while this member was behind. */
struct held {
    uint32_t nodeid;
    uint64_t epoch, seq;
    char *msg;
    size_t len;
};

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
    char addr[64];        /* this host's XenAPI address */
    char coord_addr[64];  /* the coordinator's, from its state */
    /* the coordinator of this configuration is decided (a round of
     * states settled it); electing: it left the group */
    bool confirmed;
    /* member: its log is known to be the coordinator's up to last, and it
     * applies the records as they come (else it holds them and asks) */
    bool synced;
    int64_t req_ms;       /* when the last catch-up request went out */
    struct held *held;
    size_t nheld, capheld, heldbytes;
    /* the answer being received (member) */
    struct {
        bool on;
        xcp__cluster_chunk h; /* the first piece's header */
        char *buf;
        uint64_t got;
    } in;
    /* coordinator: catch-up requests waiting for the owner to serve */
    struct {
        uint32_t nodeid;
        uint64_t last_epoch, last;
    } reqs[MAX_NODES];
    size_t nreqs;
    /* a round of states: the group changed since the last decision */
    bool round, electing, state_due;
    /* hand-over (designate_new_master): handing, this coordinator sent
     * one and takes no write; prefer, the node named by the last one
     * delivered, which the next decision picks if it holds the last
     * record of any state in the round */
    bool handing;
    uint32_t prefer;
    /* the group gained members since the last decision: a coordinator
     * writes again only once a round confirms it (a deposed one whose
     * partition healed would else write until the round deposes it) */
    bool gained;
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

static int send_request(xcp__repl *r, xcp__cluster_err *err);

/* r->buf holds at least need bytes. */
static int reserve(xcp__repl *r, size_t need, xcp__cluster_err *err)
{
    char *b;

    if (need <= r->cap)
        return 0;
    if ((b = realloc(r->buf, need)) == NULL)
        return xcp__cluster_fail(err, -ENOMEM, "out of memory");
    r->buf = b;
    r->cap = need;
    return 0;
}

static void held_clear(xcp__repl *r)
{
    size_t i;

    for (i = 0; i < r->nheld; i++)
        free(r->held[i].msg);
    r->nheld = 0;
    r->heldbytes = 0;
}

/* Keep a record that arrived while behind (its sender and epoch are
 * checked once the coordinator is known). Too many: drop them all; the
 * catch-up answer then leaves a gap, and the member asks again. */
static void hold(xcp__repl *r, uint32_t nodeid, const xcp__cluster_record *rec,
                 const void *msg, size_t len)
{
    struct held *h;

    if (r->heldbytes + len > HELD_MAX) {
        held_clear(r);
        return;
    }
    if (r->nheld == r->capheld) {
        size_t cap = r->capheld ? r->capheld * 2 : 64;
        if (!(h = realloc(r->held, cap * sizeof(*h))))
            return;
        r->held = h;
        r->capheld = cap;
    }
    h = &r->held[r->nheld];
    if (!(h->msg = malloc(len)))
        return;
    memcpy(h->msg, msg, len);
    h->len = len;
    h->nodeid = nodeid;
    h->epoch = rec->epoch;
    h->seq = rec->seq;
    r->nheld++;
    r->heldbytes += len;
}

/* Apply one record in order: 1 applied, 0 already held, -1 a gap, -2 the
 * apply failed (this member stops: broken). */
static int apply_one(xcp__repl *r, const xcp__cluster_record *rec)
{
    if (rec->seq <= r->last)
        return 0; /* a duplicate: already applied (and acked) */
    if (rec->seq != r->last + 1)
        return -1;
    if (r->cb.apply && r->cb.apply(r->arg, rec) < 0) {
        fprintf(stderr, "xcp repl: node %u cannot apply seq %llu: stops\n",
                r->me, (unsigned long long)rec->seq);
        r->broken = true;
        return -2;
    }
    r->last = rec->seq;
    r->last_epoch = rec->epoch;
    return 1;
}

/* Behind: ask (again), holding what comes meanwhile. */
static void fall_behind(xcp__repl *r)
{
    r->synced = false;
    r->req_ms = 0; /* flush_ack sends the request */
}

/* The log is the coordinator's up to last: apply the held records of the
 * coordinator's epoch that follow, in order; a gap asks again. */
static void drain(xcp__repl *r)
{
    size_t i;
    int rc = 0;

    r->synced = true;
    for (i = 0; i < r->nheld && !r->broken; i++) {
        struct held *h = &r->held[i];
        xcp__cluster_record rec;
        if (h->nodeid != r->coordinator || h->epoch != r->epoch ||
            xcp__cluster_record_decode(h->msg, h->len, &rec) < 0)
            continue;
        if ((rc = apply_one(r, &rec)) == -1) {
            fprintf(stderr, "xcp repl: node %u at seq %llu holds seq %llu: "
                    "asks again\n", r->me, (unsigned long long)r->last,
                    (unsigned long long)rec.seq);
            fall_behind(r);
            break;
        }
    }
    held_clear(r);
}

static void on_record(xcp__repl *r, uint32_t nodeid,
                      const xcp__cluster_record *rec, const void *msg,
                      size_t len)
{
    if (r->broken || (r->me == r->coordinator && r->confirmed))
        return;
    if (!r->synced || !r->confirmed) {
        if (rec->seq > r->last)
            hold(r, nodeid, rec, msg, len);
        return;
    }
    if (nodeid != r->coordinator || rec->epoch != r->epoch)
        return; /* not ours, or a deposed coordinator's */
    if (apply_one(r, rec) == -1) {
        fprintf(stderr, "xcp repl: node %u at seq %llu got seq %llu: "
                "catches up\n", r->me, (unsigned long long)r->last,
                (unsigned long long)rec->seq);
        fall_behind(r);
        hold(r, nodeid, rec, msg, len);
    }
}

/* All the members' states are in: decide (every member decides the same,
 * at the same point of the group's order). A member that says it is the
 * coordinator of the highest epoch stays; else the highest (last epoch,
 * last seq), then the lowest node id, is the coordinator of the next
 * epoch. Only when every state says quorate: a minority never decides. */
static void decide(xcp__repl *r)
{
    size_t i, best = 0;
    long keep = -1;
    uint64_t epoch = 0;
    uint32_t prev = r->coordinator;
    uint64_t prev_epoch = r->epoch;
    bool was = r->confirmed && prev == r->me, same;
    const xcp__cluster_state *cs;

    if (r->nmembers == 0)
        return;
    for (i = 0; i < r->nmembers; i++) {
        const xcp__cluster_state *a = &r->states[i].st;
        if (!r->states[i].have || !a->quorate)
            return; /* not yet, or not here */
        if (a->epoch > epoch)
            epoch = a->epoch;
    }
    for (i = 0; i < r->nmembers; i++) {
        const xcp__cluster_state *a = &r->states[i].st, *b;
        if (a->coordinator == r->states[i].nodeid && a->epoch == epoch &&
            (keep < 0 ||
             a->last_epoch > r->states[keep].st.last_epoch ||
             (a->last_epoch == r->states[keep].st.last_epoch &&
              a->last > r->states[keep].st.last)))
            keep = (long)i;
        b = &r->states[best].st;
        if (a->last_epoch > b->last_epoch ||
            (a->last_epoch == b->last_epoch &&
             (a->last > b->last ||
              (a->last == b->last &&
               r->states[i].nodeid < r->states[best].nodeid))))
            best = i;
    }
    if (keep >= 0) {
        best = (size_t)keep;
    } else {
        /* Nobody here is the coordinator. Elect only if a member saw it
         * leave (its state names none): members that merely have not seen
         * it yet (a cold start, where it may join a moment later) wait
         * for it; a coordinator that never comes needs a person
         * (pool.emergency_transition_to_master), as on XAPI. */
        for (i = 0; i < r->nmembers && r->states[i].st.coordinator != 0; i++)
            ;
        if (i == r->nmembers)
            return;
        epoch++;
        /* A hand-over names the next coordinator: it is chosen if its
         * log is as long as the longest here (it holds every record the
         * old coordinator sent, acknowledged or not), else the rule
         * above stands (the old coordinator, most likely, again). */
        for (i = 0; r->prefer && i < r->nmembers; i++)
            if (r->states[i].nodeid == r->prefer &&
                r->states[i].st.last_epoch ==
                    r->states[best].st.last_epoch &&
                r->states[i].st.last == r->states[best].st.last)
                best = i;
    }
    r->prefer = 0;
    r->handing = false;
    r->gained = false;
    cs = &r->states[best].st;
    /* The same coordinator and epoch as before: a round after a member
     * joined or left (or a late state), which changes nothing here. */
    same = r->confirmed && !r->electing && prev == r->states[best].nodeid &&
           prev_epoch == epoch;
    r->round = r->electing = false;
    r->confirmed = true;
    r->coordinator = r->states[best].nodeid;
    r->epoch = epoch;
    snprintf(r->coord_addr, sizeof(r->coord_addr), "%s", cs->addr);
    if (!same)
        r->nreqs = 0; /* asked of a coordinator that is no longer */
    if (r->coordinator == r->me) {
        held_clear(r);
        r->in.on = false;
        r->synced = true;
        if (!(was && prev_epoch == epoch)) {
            /* What is committed is what a quorum holds: the members whose
             * state is exactly ours count as having acked our last (one
             * coordinator per epoch: same epoch and seq, same records).
             * A tail that no quorum holds is committed only once a record
             * of the new epoch is (acks are cumulative). */
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
        }
    } else if (!same) {
        /* A new coordinator, or this member was behind: its log continues
         * the coordinator's only if it is the one in its state (the
         * records sent since came after it in the order, and are held). */
        r->acked_sent = 0;
        if (r->last == cs->last && r->last_epoch == cs->last_epoch) {
            drain(r);
        } else {
            fprintf(stderr,
                    "xcp repl: node %u (seq %llu of epoch %llu) follows "
                    "coordinator %u (seq %llu of epoch %llu): catches up\n",
                    r->me, (unsigned long long)r->last,
                    (unsigned long long)r->last_epoch, r->coordinator,
                    (unsigned long long)cs->last,
                    (unsigned long long)cs->last_epoch);
            r->in.on = false;
            fall_behind(r);
        }
    }
    if (r->cb.elected)
        r->cb.elected(r->arg, r->coordinator, r->epoch, r->coord_addr);
}

static void on_state(xcp__repl *r, uint32_t nodeid,
                     const xcp__cluster_state *st)
{
    size_t i;

    if (!r->round) { /* a state after the decision: a new round */
        r->round = true;
        r->state_due = true;
        for (i = 0; i < r->nmembers; i++)
            r->states[i].have = false;
    }
    for (i = 0; i < r->nmembers; i++)
        if (r->members[i].nodeid == nodeid) {
            r->states[i].have = true;
            r->states[i].st = *st; /* the latest counts */
        }
    decide(r);
}

/* A hand-over (the coordinator names the next one) or an emergency (a
 * member names itself while its coordinator is away), delivered in the
 * group's order: every member of the configuration starts a round at the
 * same point and prefers node to in its decision, whatever its own view,
 * so that every member decides the same (the preference goes at the next
 * change of the group, which every member sees at the same point too).
 * A member whose coordinator is the sender, or is not in the group, says
 * in its state that it saw it go (so the round elects). */
static void on_handover(xcp__repl *r, uint32_t nodeid, uint64_t epoch,
                        uint32_t to)
{
    size_t i;

    fprintf(stderr, "xcp repl: node %u: node %u %s node %u (epoch %llu)\n",
            r->me, nodeid, nodeid == to ? "proposes (emergency)"
                                        : "hands its role over to",
            to, (unsigned long long)epoch);
    r->prefer = to;
    if (nodeid == r->coordinator ||
        !xcp__repl_has_member(r, r->coordinator))
        r->electing = true;
    r->round = true;
    r->state_due = true;
    r->nreqs = 0;
    for (i = 0; i < r->nmembers; i++)
        r->states[i].have = false;
}

/* Coordinator: a member asks for what follows its last record. */
static void on_request(xcp__repl *r, uint32_t nodeid, uint64_t last_epoch,
                       uint64_t last)
{
    size_t i;

    for (i = 0; i < r->nreqs && r->reqs[i].nodeid != nodeid; i++)
        ;
    if (i == r->nreqs) {
        if (r->nreqs == MAX_NODES)
            return;
        r->nreqs++;
    }
    r->reqs[i].nodeid = nodeid;
    r->reqs[i].last_epoch = last_epoch;
    r->reqs[i].last = last;
}

/* Member: the whole answer is in. */
static void on_answer(xcp__repl *r)
{
    const xcp__cluster_chunk *h = &r->in.h;
    const char *p = r->in.buf, *end = r->in.buf + h->total;
    xcp__cluster_record rec;
    int rc = 0;

    r->in.on = false;
    if (xcp__cluster_crc(0, r->in.buf, h->total) != h->crc) {
        fprintf(stderr, "xcp repl: node %u: catch-up answer damaged\n",
                r->me);
        goto again;
    }
    if (h->kind == 'T') {
        if (!r->cb.install ||
            r->cb.install(r->arg, h->seq, h->last_epoch, h->gen, r->in.buf,
                          h->total) < 0) {
            fprintf(stderr, "xcp repl: node %u cannot install the snapshot "
                    "at seq %llu: stops\n", r->me,
                    (unsigned long long)h->seq);
            r->broken = true;
            goto out;
        }
        r->last = h->seq;
        r->last_epoch = h->last_epoch;
    } else {
        while ((rc = xcp__cluster_record_next(&p, end, &rec)) == 0)
            if (apply_one(r, &rec) < 0)
                break;
        if (r->broken)
            goto out;
    }
    if (r->last != h->seq) {
        fprintf(stderr, "xcp repl: node %u at seq %llu after an answer up "
                "to %llu: asks again\n", r->me, (unsigned long long)r->last,
                (unsigned long long)h->seq);
        goto again;
    }
    fprintf(stderr, "xcp repl: node %u caught up to seq %llu by %s (%llu "
            "bytes) %lld ms after asking\n", r->me,
            (unsigned long long)r->last,
            h->kind == 'T' ? "snapshot" : "records",
            (unsigned long long)h->total, (long long)(now_ms() - r->req_ms));
    drain(r);
    goto out;
again:
    fall_behind(r);
out:
    free(r->in.buf);
    r->in.buf = NULL;
}

static void on_chunk(xcp__repl *r, uint32_t nodeid,
                     const xcp__cluster_chunk *c)
{
    if (c->to != r->me || nodeid != r->coordinator || c->epoch != r->epoch ||
        r->synced || r->broken)
        return;
    if (c->offset == 0) {
        free(r->in.buf);
        r->in.buf = malloc(c->total ? c->total : 1);
        r->in.on = r->in.buf != NULL;
        r->in.h = *c;
        r->in.got = 0;
    }
    if (!r->in.on || c->offset != r->in.got || c->total != r->in.h.total ||
        c->kind != r->in.h.kind || c->seq != r->in.h.seq)
        return; /* a piece of an answer we do not follow */
    memcpy(r->in.buf + c->offset, c->data, c->len);
    r->in.got += c->len;
    if (r->in.got == r->in.h.total)
        on_answer(r);
}

static void deliver(void *arg, uint64_t dseq, uint32_t nodeid, uint32_t pid,
                    const void *msg, size_t len)
{
    xcp__repl *r = arg;
    xcp__cluster_record rec;
    xcp__cluster_state st;
    xcp__cluster_chunk ch;
    uint64_t epoch, seq, le;
    uint32_t to;

    (void)dseq;
    (void)pid;
    if (xcp__cluster_record_decode(msg, len, &rec) == 0) {
        on_record(r, nodeid, &rec, msg, len);
        return;
    }
    if (xcp__cluster_ack_decode(msg, len, &epoch, &seq) == 0) {
        if (r->me == r->coordinator && epoch == r->epoch)
            on_ack(r, nodeid, seq);
        return;
    }
    if (xcp__cluster_state_decode(msg, len, &st) == 0) {
        on_state(r, nodeid, &st);
        return;
    }
    if (xcp__cluster_req_decode(msg, len, &epoch, &le, &seq) == 0) {
        if (r->me == r->coordinator && r->confirmed && epoch == r->epoch &&
            nodeid != r->me)
            on_request(r, nodeid, le, seq);
        return;
    }
    if (xcp__cluster_chunk_decode(msg, len, &ch) == 0) {
        on_chunk(r, nodeid, &ch);
        return;
    }
    if (xcp__cluster_handover_decode(msg, len, &epoch, &le, &seq, &to) == 0)
        on_handover(r, nodeid, epoch, to);
}

static void members(void *arg, const xcp__cpg_member *m, size_t n,
                    const xcp__cpg_member *left, size_t nleft,
                    const xcp__cpg_member *joined, size_t njoined)
{
    xcp__repl *r = arg;
    size_t i;

    (void)joined;
    if (n > MAX_NODES)
        n = MAX_NODES;
    memcpy(r->members, m, n * sizeof(*m));
    r->nmembers = n;
    refresh_quorum(r);
    recount(r);
    /* Every change starts a round of states (those from before it do not
     * count): a coordinator that left is replaced, one that stays is
     * confirmed to whoever joined. Records keep flowing meanwhile, unless
     * the coordinator is the one that left. */
    for (i = 0; i < n; i++) {
        r->states[i].nodeid = m[i].nodeid;
        r->states[i].have = false;
    }
    for (i = 0; i < nleft; i++)
        if (left[i].nodeid == r->coordinator)
            r->electing = true;
    r->prefer = 0; /* a hand-over's preference holds within one configuration */
    if (njoined > 0)
        r->gained = true;
    r->round = true;
    r->state_due = true;
}

int xcp__repl_open(xcp__repl **out, const char *group, uint32_t coordinator,
                   uint64_t epoch, uint64_t last, uint64_t last_epoch,
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
    r->last_epoch = last ? (last_epoch ? last_epoch : epoch) : 0;
    if ((rc = xcp__cpg_open(&r->g, group, &ccb, r, err)) < 0) {
        free(r);
        return rc;
    }
    r->me = xcp__cpg_nodeid(r->g);
    refresh_quorum(r);
    *out = r;
    return 0;
}

static int send_request(xcp__repl *r, xcp__cluster_err *err)
{
    char buf[XCP__CLUSTER_REQ_MAX];
    ssize_t n = xcp__cluster_req_encode(r->epoch, r->last_epoch, r->last, buf,
                                        sizeof(buf));
    int rc;

    if (n < 0)
        return (int)n;
    if ((rc = xcp__cpg_send(r->g, buf, (size_t)n, err)) < 0)
        return rc;
    r->req_ms = now_ms();
    return 0;
}

/* After a batch: a member acks what it applied, once; sends its state
 * when a round needs it; and asks for a catch-up when behind. */
static int flush_ack(xcp__repl *r, xcp__cluster_err *err)
{
    char buf[XCP__CLUSTER_ACK_MAX];
    ssize_t n;
    int rc;

    /* While a round is open, say so again now and then (the quorum may
     * follow the group's change by a moment). */
    if (r->round && !r->state_due && r->have_q && r->q.quorate &&
        now_ms() - r->state_sent_ms >= QUORUM_REFRESH_MS)
        r->state_due = true;
    if (r->state_due) {
        char sb[XCP__CLUSTER_STATE_MAX];
        /* The coordinator it follows (itself for a coordinator, confirmed
         * or not), or none once it saw it leave. */
        xcp__cluster_state st = {r->epoch, r->last_epoch, r->last,
                                 r->have_q && r->q.quorate,
                                 r->electing || r->handing ? 0
                                                           : r->coordinator,
                                 ""};
        snprintf(st.addr, sizeof(st.addr), "%s", r->addr);
        n = xcp__cluster_state_encode(&st, sb, sizeof(sb));
        if (n < 0)
            return (int)n;
        if ((rc = xcp__cpg_send(r->g, sb, (size_t)n, err)) < 0)
            return rc;
        r->state_due = false;
        r->state_sent_ms = now_ms();
    }
    if (r->me == r->coordinator || r->broken || !r->confirmed || r->electing)
        return 0;
    if (!r->synced) {
        if (!r->in.on && now_ms() - r->req_ms >= REQ_RETRY_MS)
            return send_request(r, err);
        return 0;
    }
    if (r->last <= r->acked_sent)
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

    if (r->me != r->coordinator)
        return xcp__cluster_fail(err, -EPERM,
                                 "node %u is not the coordinator (%u)",
                                 r->me, r->coordinator);
    if (!r->have_q || !r->q.quorate) {
        refresh_quorum(r);
        if (!r->have_q || !r->q.quorate)
            return xcp__cluster_fail(err, -EROFS,
                                     "not quorate (%u votes of %u needed)",
                                     r->have_q ? r->q.total_votes : 0,
                                     r->have_q ? r->q.quorum : 0);
    }
    if (r->electing || !r->confirmed || r->handing)
        return xcp__cluster_fail(err, -EPERM,
                                 "node %u is not confirmed as the "
                                 "coordinator (electing or handing over)",
                                 r->me);
    if ((rc = reserve(r, need, err)) < 0)
        return rc;
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
    held_clear(r);
    free(r->held);
    free(r->in.buf);
    free(r->buf);
    free(r);
}

void xcp__repl_set_address(xcp__repl *r, const char *addr)
{
    snprintf(r->addr, sizeof(r->addr), "%s", addr ? addr : "");
}

const char *xcp__repl_coordinator_address(const xcp__repl *r)
{
    return r->coord_addr;
}

bool xcp__repl_ready(const xcp__repl *r)
{
    return r->confirmed && !r->electing &&
           (r->me == r->coordinator || r->synced);
}

uint64_t xcp__repl_last_epoch(const xcp__repl *r)
{
    return r->last_epoch;
}

int xcp__repl_next_request(xcp__repl *r, uint32_t *nodeid,
                           uint64_t *last_epoch, uint64_t *last)
{
    if (r->nreqs == 0 || r->me != r->coordinator)
        return 0;
    *nodeid = r->reqs[0].nodeid;
    *last_epoch = r->reqs[0].last_epoch;
    *last = r->reqs[0].last;
    memmove(&r->reqs[0], &r->reqs[1], --r->nreqs * sizeof(r->reqs[0]));
    return 1;
}

int xcp__repl_answer(xcp__repl *r, uint32_t to, char kind, uint64_t seq,
                     uint64_t last_epoch, uint64_t gen, const char *data,
                     size_t len, xcp__cluster_err *err)
{
    xcp__cluster_chunk c = {kind, to, r->epoch, seq, last_epoch, gen, 0, len,
                            xcp__cluster_crc(0, data, len), NULL, 0};
    size_t need = XCP__CLUSTER_CHUNK_HDR_MAX + CHUNK_MAX;
    ssize_t n;
    int rc;

    if (r->me != r->coordinator || !r->confirmed)
        return xcp__cluster_fail(err, -EPERM, "node %u is not the "
                                 "coordinator", r->me);
    if ((rc = reserve(r, need, err)) < 0)
        return rc;
    do {
        c.data = data + c.offset;
        c.len = len - c.offset > CHUNK_MAX ? CHUNK_MAX : len - c.offset;
        if ((n = xcp__cluster_chunk_encode(&c, r->buf, r->cap)) < 0)
            return xcp__cluster_fail(err, (int)n, "cannot encode a piece");
        if ((rc = xcp__cpg_send(r->g, r->buf, (size_t)n, err)) < 0)
            return rc;
        c.offset += c.len;
    } while (c.offset < len);
    return 0;
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

uint64_t xcp__repl_acked(const xcp__repl *r, uint32_t nodeid)
{
    size_t i;

    if (nodeid == r->me)
        return r->last;
    for (i = 0; i < r->nacks; i++)
        if (r->acks[i].nodeid == nodeid)
            return r->acks[i].seq;
    return 0;
}

int xcp__repl_handover(xcp__repl *r, uint32_t to, xcp__cluster_err *err)
{
    char buf[XCP__CLUSTER_HANDOVER_MAX];
    ssize_t n;
    int rc;

    if (r->me != r->coordinator || !r->confirmed || r->electing ||
        r->handing)
        return xcp__cluster_fail(err, -EPERM, "node %u is not the confirmed "
                                 "coordinator", r->me);
    if (r->round)
        return xcp__cluster_fail(err, -EAGAIN, "a round of states is open");
    if (to == r->me || !xcp__repl_has_member(r, to))
        return xcp__cluster_fail(err, -ENOENT, "node %u is not another "
                                 "member of the group", to);
    if (!r->have_q || !r->q.quorate)
        return xcp__cluster_fail(err, -EROFS, "not quorate");
    n = xcp__cluster_handover_encode(r->epoch, r->last_epoch, r->last, to,
                                     buf, sizeof(buf));
    if (n < 0)
        return xcp__cluster_fail(err, (int)n, "cannot encode a hand-over");
    /* From here on this node sends no record, and its states name no
     * coordinator (they follow the hand-over in the group's order). */
    r->handing = true;
    if ((rc = xcp__cpg_send(r->g, buf, (size_t)n, err)) < 0) {
        r->handing = false;
        return rc;
    }
    return 0;
}

bool xcp__repl_round_open(const xcp__repl *r)
{
    return r->round || r->electing || r->handing;
}

int xcp__repl_emergency(xcp__repl *r, xcp__cluster_err *err)
{
    char buf[XCP__CLUSTER_HANDOVER_MAX];
    ssize_t n;

    if (r->me == r->coordinator)
        return xcp__cluster_fail(err, -EALREADY, "node %u is the "
                                 "coordinator", r->me);
    if (xcp__repl_has_member(r, r->coordinator) && !r->electing)
        return xcp__cluster_fail(err, -EBUSY, "the coordinator (node %u) is "
                                 "in the group", r->coordinator);
    if (!r->have_q || !r->q.quorate) {
        refresh_quorum(r);
        if (!r->have_q || !r->q.quorate)
            return xcp__cluster_fail(err, -EROFS, "not quorate");
    }
    n = xcp__cluster_handover_encode(r->epoch, r->last_epoch, r->last, r->me,
                                     buf, sizeof(buf));
    if (n < 0)
        return xcp__cluster_fail(err, (int)n, "cannot encode a proposal");
    return xcp__cpg_send(r->g, buf, (size_t)n, err);
}

bool xcp__repl_writable(const xcp__repl *r)
{
    return r->me == r->coordinator && r->confirmed && !r->electing &&
           !r->handing && !r->gained;
}
