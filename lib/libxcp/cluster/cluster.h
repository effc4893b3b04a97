/*
 * The corosync side of pools (docs/design-pool.md): a member's
 * corosync.conf from the pool's hosts, corosync started and supervised
 * (or left to systemd), a closed process group that delivers messages in
 * one total order with a sequence number, votequorum's view, and the
 * replication record that travels in that group.
 *
 * Self-contained: libc and corosync's client libraries only (so that the
 * daemon can load it when its host is pooled and not before). Every
 * function returns 0 (or a count) on success and a negative errno on
 * failure, with a sentence for the log in the caller's xcp__cluster_err
 * when one is given. Handles are not thread-safe: one thread uses each.
 */
#ifndef XCP_CLUSTER_H
#define XCP_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Why the last call failed, for the log. */
typedef struct xcp__cluster_err {
    char msg[256];
} xcp__cluster_err;

/* Write the sentence (printf format) into err when err is not NULL;
 * returns rc, so that a failure is `return xcp__cluster_fail(err, -E..,
 * ...)`. (err.c: the library's callers and its files share it.) */
int xcp__cluster_fail(xcp__cluster_err *err, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- corosync.conf (conf.c) ---------------------------------------------- */

/* One host of the pool, as corosync names it. */
typedef struct xcp__cluster_node {
    uint32_t nodeid;   /* 1.., stable for the host's life in the pool */
    const char *name;  /* the host's uuid (letters, digits, - _ .) */
    const char *addr;  /* ring0_addr: the host's address */
} xcp__cluster_node;

typedef struct xcp__cluster_conf {
    const char *cluster_name;     /* 1-32 characters of [A-Za-z0-9_.-] */
    const xcp__cluster_node *nodes;
    size_t nnodes;                /* 2..XCP__CLUSTER_MAX_NODES */
    uint32_t coordinator;         /* nodeid: first in the tie-breaker list */
    /* totem token: token_ms + (hosts - 2) * token_coefficient_ms;
     * 0: 1000 and 100 (64 hosts: 7.2 s; corosync's own 650 ms per host
     * would make 41 s, too slow a failover). */
    unsigned token_ms;
    unsigned token_coefficient_ms;
    bool crypto;                  /* aes256+sha256 with the authkey file */
    /* two_node instead of the tie-breaker for 2 hosts: both halves of a
     * split stay quorate, so only for hosts that fence each other. */
    bool two_node;
    bool log_stderr;              /* corosync logs to stderr, not syslog */
} xcp__cluster_conf;

#define XCP__CLUSTER_MAX_NODES 256

/* The text of corosync.conf for c (docs/design-pool.md §4, §6): knet,
 * the nodelist, and votequorum with the quorum policy for the number of
 * hosts (2: auto_tie_breaker on the coordinator, or two_node if asked;
 * 3 and more: last_man_standing + wait_for_all + auto_tie_breaker with
 * the coordinator first). *out is malloc'ed (free it). -EINVAL with err
 * set when c is not a valid pool (a duplicate node id, name or address,
 * a name or address corosync would misread, the coordinator not among
 * the nodes, fewer than 2 or more than XCP__CLUSTER_MAX_NODES nodes). */
int xcp__corosync_conf_format(const xcp__cluster_conf *c, char **out,
                              xcp__cluster_err *err);

/* Write that text to path atomically (path.tmp, fsync, rename, fsync of
 * the directory): a crash leaves the old file or the new one, a failure
 * (-errno, err set) the old one and no path.tmp. */
int xcp__corosync_conf_write(const xcp__cluster_conf *c, const char *path,
                             xcp__cluster_err *err);

/* ---- corosync's process (corosync.c) ------------------------------------- */

typedef struct xcp__corosync xcp__corosync;

typedef struct xcp__corosync_opts {
    const char *conf;      /* corosync.conf (NULL: /etc/corosync/...) */
    const char *binary;    /* NULL: "corosync" from PATH */
    const char *log;       /* file for corosync's stdout and stderr
                              (NULL: inherit) */
    /* Use systemd (systemctl start/reload-or-restart corosync) where it
     * runs. Tests in namespaces turn it off. */
    bool use_systemd;
} xcp__corosync_opts;

/* True when systemd is the init system (/run/systemd/system exists). */
bool xcp__cluster_systemd_running(void);

/* Start corosync and keep it running: with systemd (when asked and
 * running) through systemctl; else a corosync already running for this
 * host (its /run/corosync.pid names a live corosync) is adopted, or
 * `corosync -f -c CONF` is spawned; a supervisor thread restarts it
 * whenever it dies (backoff 0.1 s doubling to 5 s, reset after 30 s up)
 * until xcp__corosync_stop. */
int xcp__corosync_start(xcp__corosync **out, const xcp__corosync_opts *o,
                        xcp__cluster_err *err);

/* Make the running corosync read its configuration again (corosync-cfgtool
 * -R; systemctl reload-or-restart under systemd). */
int xcp__corosync_reload(xcp__corosync *c, xcp__cluster_err *err);

/* The pid of the corosync being supervised (0 between a death and its
 * restart, or under systemd), and how many times it was (re)started. */
pid_t xcp__corosync_pid(xcp__corosync *c);
unsigned xcp__corosync_starts(xcp__corosync *c);

/* Stop supervising; with kill, also stop corosync (SIGTERM, then SIGKILL
 * after 10 s). Frees c. */
void xcp__corosync_stop(xcp__corosync *c, bool kill);

/* ---- votequorum (quorum.c) ----------------------------------------------- */

typedef struct xcp__cluster_quorum {
    bool quorate;
    uint32_t nodeid;         /* this node */
    uint32_t quorum;         /* votes needed */
    uint32_t total_votes;    /* votes present in this partition */
    uint32_t expected_votes;
} xcp__cluster_quorum;

/* This node's view of quorum now (-ENOTCONN: corosync is not running). */
int xcp__cluster_quorum_get(xcp__cluster_quorum *out, xcp__cluster_err *err);

/* ---- the process group (cpg.c) ------------------------------------------- */

typedef struct xcp__cpg xcp__cpg;

typedef struct xcp__cpg_member {
    uint32_t nodeid;
    uint32_t pid;
} xcp__cpg_member;

typedef struct xcp__cpg_callbacks {
    /* A message, in the group's total order: seq counts the messages this
     * handle has delivered (1, 2, ...), so two members that joined before
     * the first message see the same seq for the same message. */
    void (*deliver)(void *arg, uint64_t seq, uint32_t nodeid, uint32_t pid,
                    const void *msg, size_t len);
    /* The group's members changed (also delivered in the total order). */
    void (*members)(void *arg, const xcp__cpg_member *m, size_t n,
                    const xcp__cpg_member *left, size_t nleft,
                    const xcp__cpg_member *joined, size_t njoined);
} xcp__cpg_callbacks;

/* Join the group (at most 127 bytes of name). The callbacks run from
 * xcp__cpg_dispatch, in the caller's thread. */
int xcp__cpg_open(xcp__cpg **out, const char *group,
                  const xcp__cpg_callbacks *cb, void *arg,
                  xcp__cluster_err *err);
/* A descriptor that becomes readable when dispatch has work. */
int xcp__cpg_fd(xcp__cpg *g);
/* Run the callbacks for everything received; timeout_ms < 0 waits. */
int xcp__cpg_dispatch(xcp__cpg *g, int timeout_ms, xcp__cluster_err *err);
/* Multicast len bytes (agreed order) to the group, this handle included;
 * waits while corosync's queue is full. */
int xcp__cpg_send(xcp__cpg *g, const void *msg, size_t len,
                  xcp__cluster_err *err);
uint32_t xcp__cpg_nodeid(xcp__cpg *g);
void xcp__cpg_close(xcp__cpg *g);

/* ---- replication records (record.c) -------------------------------------- */

/* "XCPR 1 <epoch> <seq> <gen> <len> <crc32 hex>\n" then len bytes of
 * journal body (docs/design-pool.md §2). */
typedef struct xcp__cluster_record {
    uint64_t epoch, seq, gen;
    const char *body;        /* decode: points into the buffer */
    size_t len;
} xcp__cluster_record;

#define XCP__CLUSTER_RECORD_HDR_MAX 96

/* Encode r into buf (size: XCP__CLUSTER_RECORD_HDR_MAX + r->len);
 * returns the bytes written or -ENOSPC. */
ssize_t xcp__cluster_record_encode(const xcp__cluster_record *r, char *buf,
                                   size_t size);
/* Decode a whole message; r->body points into buf. -EBADMSG when it is
 * not exactly one well-formed record with a matching CRC. */
int xcp__cluster_record_decode(const char *buf, size_t len,
                               xcp__cluster_record *r);

/* "XCPA 1 <epoch> <seq>\n": a member has applied and written every
 * record of the epoch up to seq (cumulative). */
#define XCP__CLUSTER_ACK_MAX 64
ssize_t xcp__cluster_ack_encode(uint64_t epoch, uint64_t seq, char *buf,
                                size_t size);
/* -EBADMSG unless buf is exactly one canonical ack. */
int xcp__cluster_ack_decode(const char *buf, size_t len, uint64_t *epoch,
                            uint64_t *seq);

/* "XCPS 2 <epoch> <last epoch> <last seq> <quorate 0|1> <coordinator>
 * <address>\n": a member's state, sent to the group at every change of
 * its membership (election and confirmation of the coordinator,
 * docs/design-pool.md §5): the epoch it is in, the (epoch, seq) of the
 * last record it holds, whether its partition is quorate, the node id of
 * the coordinator it follows (itself when it is the coordinator; 0: it
 * saw the coordinator leave and elects)
 * and its own XenAPI address ("-" on the wire when unknown). */
typedef struct xcp__cluster_state {
    uint64_t epoch, last_epoch, last;
    bool quorate;
    uint32_t coordinator;
    char addr[64];           /* 1..63 of [A-Za-z0-9.:_[]-], or "" */
} xcp__cluster_state;
#define XCP__CLUSTER_STATE_MAX 192
/* -EINVAL for an address outside the alphabet above, -ENOSPC. */
ssize_t xcp__cluster_state_encode(const xcp__cluster_state *s, char *buf,
                                  size_t size);
/* -EBADMSG unless buf is exactly one canonical state message. */
int xcp__cluster_state_decode(const char *buf, size_t len,
                              xcp__cluster_state *s);

/* "XCPQ 1 <epoch> <last epoch> <last seq>\n": a member asks the
 * coordinator of epoch for what follows its last record (catch-up,
 * docs/design-pool.md §5.1). */
#define XCP__CLUSTER_REQ_MAX 80
ssize_t xcp__cluster_req_encode(uint64_t epoch, uint64_t last_epoch,
                                uint64_t last, char *buf, size_t size);
/* -EBADMSG unless buf is exactly one canonical request. */
int xcp__cluster_req_decode(const char *buf, size_t len, uint64_t *epoch,
                            uint64_t *last_epoch, uint64_t *last);

/* "XCPH 1 <epoch> <last epoch> <last seq> <to>\n": the coordinator of
 * epoch hands its role over to node to (pool.designate_new_master,
 * docs/design-pool.md §5.2: it has sent its last record, (last epoch,
 * last seq), and takes no more writes), or, sent by node to itself, a
 * member proposes itself while its coordinator is away (§5.3,
 * pool.emergency_transition_to_master). Every member, on delivery, starts
 * a round of states in which node to is preferred if it holds the
 * longest log of the round. */
#define XCP__CLUSTER_HANDOVER_MAX 96
ssize_t xcp__cluster_handover_encode(uint64_t epoch, uint64_t last_epoch,
                                     uint64_t last, uint32_t to, char *buf,
                                     size_t size);
/* -EBADMSG unless buf is exactly one canonical hand-over (to > 0). */
int xcp__cluster_handover_decode(const char *buf, size_t len,
                                 uint64_t *epoch, uint64_t *last_epoch,
                                 uint64_t *last, uint32_t *to);

/* "XCPC 1 <kind> <to> <epoch> <seq> <last epoch> <gen> <offset> <total>
 * <crc32 hex> <len>\n" then len bytes: one piece of the coordinator's
 * answer to node to's request. The answer is one stream of total bytes
 * (its CRC crc), cut into pieces sent in order: kind 'C', records (XCPR,
 * one after the other) up to seq; kind 'T', a database snapshot (db.snap
 * format) at seq, whose record there is of epoch last_epoch, generation
 * gen. */
typedef struct xcp__cluster_chunk {
    char kind;
    uint32_t to;
    uint64_t epoch, seq, last_epoch, gen, offset, total;
    uint32_t crc;
    const char *data;        /* decode: points into the buffer */
    size_t len;
} xcp__cluster_chunk;
#define XCP__CLUSTER_CHUNK_HDR_MAX 192
/* Encode c into buf (size: XCP__CLUSTER_CHUNK_HDR_MAX + c->len); -EINVAL
 * for a kind other than C or T or a piece outside total, -ENOSPC. */
ssize_t xcp__cluster_chunk_encode(const xcp__cluster_chunk *c, char *buf,
                                  size_t size);
/* -EBADMSG unless buf is exactly one canonical piece; c->data points
 * into buf. */
int xcp__cluster_chunk_decode(const char *buf, size_t len,
                              xcp__cluster_chunk *c);
/* The next record of a stream of records at *p (before end): 0 and *p
 * moved past it, -ENOENT at the end, -EBADMSG for anything else. */
int xcp__cluster_record_next(const char **p, const char *end,
                             xcp__cluster_record *r);
/* zlib's CRC-32 of n bytes, continuing c (0 to start). */
uint32_t xcp__cluster_crc(uint32_t c, const void *p, size_t n);

/* ---- replication (repl.c) ------------------------------------------------ */

/* The commit path of docs/design-pool.md §3 on top of a CPG group: the
 * coordinator multicasts records numbered seq = last + 1; members apply
 * them in order and multicast cumulative acks (one per dispatch batch);
 * a seq is committed once acked by votequorum's quorum of votes, the
 * coordinator's own included (its journal holds the record before it
 * sends it). When the coordinator leaves the group, the members of a
 * quorate partition exchange their state and all pick the same new one:
 * the highest (last epoch, last seq), then the lowest node id; the epoch
 * goes up by one. */
typedef struct xcp__repl xcp__repl;

typedef struct xcp__repl_callbacks {
    /* Member: apply and persist r (its seq is the next one); 0 acks it,
     * < 0 stops this member (broken). */
    int (*apply)(void *arg, const xcp__cluster_record *r);
    /* A round of states decided that coordinator (at address, "" when it
     * sent none) is the coordinator of epoch: every member of the
     * partition decides the same, at the same point of the group's order,
     * after every change of the group (so often with nothing new). May
     * be NULL. */
    void (*elected)(void *arg, uint32_t coordinator, uint64_t epoch,
                    const char *address);
    /* Member: replace the replica by the snapshot (db.snap format) of the
     * coordinator's database at seq, whose record there is of last_epoch
     * and generation gen; 0 or < 0 (this member stops: broken). May be
     * NULL (an answer by snapshot then stops the member). */
    int (*install)(void *arg, uint64_t seq, uint64_t last_epoch,
                   uint64_t gen, const char *snap, size_t len);
} xcp__repl_callbacks;

/* Join group as nodeid-of-this-host, the coordinator being coordinator
 * (a claim until a round of states confirms it: until then nothing is
 * sent or acked), in epoch, with last the seq of the last record this
 * replica holds and last_epoch the epoch of that record (0: epoch). */
int xcp__repl_open(xcp__repl **out, const char *group, uint32_t coordinator,
                   uint64_t epoch, uint64_t last, uint64_t last_epoch,
                   const xcp__repl_callbacks *cb, void *arg,
                   xcp__cluster_err *err);
/* This host's XenAPI address, sent in its states (NULL or "": none). */
void xcp__repl_set_address(xcp__repl *r, const char *addr);
/* The coordinator's address from its last state ("" if none yet). */
const char *xcp__repl_coordinator_address(const xcp__repl *r);
/* The coordinator is confirmed for this configuration and, on a member,
 * this replica is caught up with it. */
bool xcp__repl_ready(const xcp__repl *r);
/* The epoch of the record at xcp__repl_last. */
uint64_t xcp__repl_last_epoch(const xcp__repl *r);
/* Coordinator: the next catch-up request to serve (1, its sender and
 * last record's epoch and seq), or 0 when none waits. Requests are
 * dropped when a round of states decides (their senders ask again). */
int xcp__repl_next_request(xcp__repl *r, uint32_t *nodeid,
                           uint64_t *last_epoch, uint64_t *last);
/* Coordinator: answer node to with len bytes of data, in pieces of at
 * most 256 KiB: kind 'C', a stream of encoded records ending with seq
 * (len 0: nothing follows the member's last, which is seq); kind 'T', a
 * snapshot at seq (of last_epoch and gen). Records the coordinator
 * submits after it reach the member after it. */
int xcp__repl_answer(xcp__repl *r, uint32_t to, char kind, uint64_t seq,
                     uint64_t last_epoch, uint64_t gen, const char *data,
                     size_t len, xcp__cluster_err *err);
/* Coordinator: send one record (its seq in *seq). -EPERM on a member,
 * -EROFS while this partition is not quorate, -EPERM (quorate) before a
 * round of states confirmed this coordinator; nothing sent on failure. */
int xcp__repl_submit(xcp__repl *r, uint64_t gen, const char *body,
                     size_t len, uint64_t *seq, xcp__cluster_err *err);
/* Dispatch until seq is committed: 0, or -ETIMEDOUT after timeout_ms. */
int xcp__repl_wait(xcp__repl *r, uint64_t seq, int timeout_ms,
                   xcp__cluster_err *err);
/* Run callbacks for what arrived (timeout_ms < 0: wait for something). */
int xcp__repl_dispatch(xcp__repl *r, int timeout_ms, xcp__cluster_err *err);
uint64_t xcp__repl_last(const xcp__repl *r);      /* sent / applied */
uint64_t xcp__repl_committed(const xcp__repl *r); /* coordinator */
/* The lowest seq every current member has acked (coordinator). */
uint64_t xcp__repl_all_acked(const xcp__repl *r);
size_t xcp__repl_members(const xcp__repl *r);
uint32_t xcp__repl_nodeid(const xcp__repl *r);      /* this host's */
bool xcp__repl_quorate(const xcp__repl *r);
uint32_t xcp__repl_coordinator(const xcp__repl *r);
uint64_t xcp__repl_epoch(const xcp__repl *r);
/* Member: true once a failed apply stopped it. */
bool xcp__repl_broken(const xcp__repl *r);
void xcp__repl_close(xcp__repl *r);
/* A descriptor that becomes readable when xcp__repl_dispatch has work
 * (for a thread that polls it without holding the handle's lock). */
int xcp__repl_fd(const xcp__repl *r);
/* Whether corosync node nodeid is in the group now (a live host). */
bool xcp__repl_has_member(const xcp__repl *r, uint32_t nodeid);
/* Coordinator: the highest seq node nodeid acknowledged (its own last for
 * this node; 0 when it acknowledged none of this epoch). */
uint64_t xcp__repl_acked(const xcp__repl *r, uint32_t nodeid);
/* Coordinator: hand the role over to node to, another member of the group
 * (docs/design-pool.md §5.2): multicasts XCPH with this node's last record,
 * then submits nothing more; every member, on delivery, starts a round of
 * states whose decision prefers node to for the next epoch if it holds
 * the longest log of the round. The outcome comes through the elected
 * callback. -EPERM unless the confirmed coordinator, -EAGAIN while a round
 * is open, -ENOENT for a node not in the group (or this one), -EROFS when
 * inquorate. */
int xcp__repl_handover(xcp__repl *r, uint32_t to, xcp__cluster_err *err);
/* Member whose coordinator is not in the group (a cold start without it,
 * pool.emergency_transition_to_master): multicasts XCPH naming this node,
 * which starts a round of states that elects a coordinator for the next
 * epoch, this node if it holds the longest log of the round (else the
 * rule of §5 picks one that does). Only a quorate round decides.
 * -EALREADY on the coordinator, -EBUSY while the coordinator is in the
 * group, -EROFS when inquorate. */
int xcp__repl_emergency(xcp__repl *r, xcp__cluster_err *err);
/* Coordinator: whether a write may begin now: confirmed by the last
 * round, no election or hand-over under way, and no member joined the
 * group since that round (a coordinator whose partition just healed may
 * be deposed by the round that follows). */
bool xcp__repl_writable(const xcp__repl *r);
/* Whether a round of states, an election or a hand-over is under way. */
bool xcp__repl_round_open(const xcp__repl *r);

#endif
