/*
 * A pooled host's database on the replication channel (docs/design-pool.md
 * §2, §3): the engine's side of lib/libxcp/cluster's commit path.
 *
 * <state dir>/pool-role says what this host is (design §1):
 *   absent or "none"                 a single host: nothing here runs, its
 *                                    commit path is today's
 *   "coordinator <nodeid>"           the writer: every commit's journal
 *                                    body goes to the pool, and the API
 *                                    call waits, outside the engine lock,
 *                                    until a quorum of hosts has it
 *   "member <address> <nodeid>"      a replica of the coordinator (corosync
 *                                    node <nodeid>, at <address>): it
 *                                    applies the records the coordinator
 *                                    sends (xcp__db_apply) and refuses its
 *                                    own writes with HOST_IS_SLAVE
 * A write refused for want of quorum answers POOL_NOT_QUORATE
 * [coordinator address, live votes, quorum] (libxcp's own error: XAPI has
 * none for it, design §4). The cluster library is the module
 * xcp-cluster.so, loaded only here, for a pooled host; without it
 * (configure found no corosync) a pool-role other than none makes the
 * engine refuse to open, saying so.
 */
#ifndef XCP_POOL_H
#define XCP_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct xcp__engine;
typedef struct xcp__pool xcp__pool;

/* Read <state dir>/pool-role; for a pooled host, join the replication
 * group (xcp-db-<pool uuid>) and attach the hook to e's database. *out is
 * NULL for a single host. Engine lock not held; the database is open and
 * e->pool set. */
int xcp__pool_open(xcp__pool **out, struct xcp__engine *e);
/* Whether <state dir>/pool-role makes this host a member (it then writes
 * nothing of its own, not even at start-up). */
bool xcp__pool_role_member(const char *state_dir);
/* Detach and leave the group (NULL: nothing). */
void xcp__pool_close(xcp__pool *p);
/* After the engine lock is released: wait until the commits this thread
 * made are held by a quorum (0), or fail with POOL_NOT_QUORATE. 0 at once
 * when the thread committed nothing replicated. */
int xcp__pool_wait(xcp__pool *p);

/* ---- the pool secret and the coordinator (forwarding, docs/design-pool.md
 * §7) ---- */

/* Whether psecret is the pool secret, <state dir>/pool-secret (64 hex
 * characters; compared in constant time). False when there is none. */
bool xcp__pool_secret_ok(const char *state_dir, const char *psecret);
/* Read the pool secret into out (65 bytes): 0, or a negative code with
 * the thread's error set (no secret: this host is in no pool). */
int xcp__pool_secret_read(const char *state_dir, char out[65]);
/* Whether p (NULL: a single host) is a member; if so, the coordinator's
 * address goes into coord (size n) for HOST_IS_SLAVE. */
bool xcp__pool_member_of(xcp__pool *p, char *coord, size_t n);

/* Mark the calling thread as running a client's call (true) or the
 * host's own work (false); returns the previous mark. On a member a
 * client's writes answer HOST_IS_SLAVE, the host's own go through the
 * coordinator. */
bool xcp__pool_set_client(bool client);
/* Wait until the pool's group has delivered this host's own joining
 * (records sent before that never reach it: a member that wrote at once
 * would miss its own). False after timeout_ms. Engine lock not held. */
bool xcp__pool_wait_joined(xcp__pool *p, int timeout_ms);
/* This host's corosync node id. */
unsigned xcp__pool_nodeid(xcp__pool *p);
/* Member: call method(args...) on the coordinator, on a session opened
 * with session.slave_login and the pool secret (kept, and opened again
 * once when the coordinator no longer knows it). Engine lock not held. */
struct xcp_value;
int xcp__pool_coord_call(xcp__pool *p, const char *method, size_t nargs,
                         const struct xcp_value *args,
                         struct xcp_value *result);
/* Member: wait until this replica has applied seq (0), or fail with
 * POOL_NOT_QUORATE after 30 s. Engine lock not held. */
int xcp__pool_wait_applied(xcp__pool *p, uint64_t seq);

/* ---- a member's transaction on the coordinator (fwd.c) ---- */
struct xcp__db;
/* Run the operations of a member's journal body ("T <gen> <ops>") in
 * db's open transaction: 0; -1 with why (size whylen) for a body that is
 * no transaction or is refused; -2 for a row it sets or destroys that is
 * not there, its ref in missing (XCP_REF_MAX bytes). On failure the
 * caller aborts the transaction. */
int xcp__pool_member_ops(struct xcp__db *db, const char *body, char *why,
                         size_t whylen, char *missing);

/* ---- forwarding (fwd.c) ---- */
struct xcp__ctx;
/* Coordinator: whether the call of c runs on another host of the pool
 * (VM operations on the VM's host, or the host given, or its affinity to
 * start; VBD/VIF plugs on their VM's): 1 with that host's address in
 * addr (size n), 0 to run here. Engine lock held. */
int xcp__pool_fwd_target(struct xcp__ctx *c, char *addr, size_t n);
/* Run wire(args...) on the host at addr, on a session opened with
 * slave_login(self, the pool secret), once its replica holds seq.
 * Engine lock not held. */
int xcp__pool_fwd_call(struct xcp__engine *e, const char *addr,
                       const char *self, uint64_t seq, const char *wire,
                       size_t nargs, const struct xcp_value *args,
                       struct xcp_value *result);

#endif
