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
 * The file follows the pool: a round of states that decides another
 * coordinator (an election, or a host that rejoins a pool whose
 * coordinator changed while it was away) rewrites it (design §5), and a
 * coordinator takes writes only once a round confirmed it and it sent the
 * first record of its epoch. A member behind the coordinator catches up
 * from it (records from its journal, or a snapshot: design §5.1).
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
/* Whether <state dir>/pool-role makes this host a member. */
bool xcp__pool_role_member(const char *state_dir);
/* Whether it makes this host pooled (a member or a coordinator): it then
 * writes nothing of its own at start-up before the pool confirms it is
 * the coordinator (xcp__engine_startup_writes then runs, replicated). */
bool xcp__pool_role_pooled(const char *state_dir);
/* <state dir>/pool-role := line ("none", "coordinator <nodeid>" or
 * "member <address> <nodeid>", no newline), atomically (a temporary
 * file, fsync, rename, fsync of the directory): a crash leaves the old
 * line or the new one. 0, or INVALID_VALUE / INTERNAL_ERROR (which file,
 * errno) with nothing changed. */
int xcp__pool_role_write(const char *state_dir, const char *line);
/* The generation event.from may serve up to, dbgen being the database's
 * (engine lock held): on a coordinator, one below the generation of the
 * oldest replicated commit a quorum does not hold yet (dbgen when all
 * are held); dbgen on a member or for NULL (a single host). */
uint64_t xcp__pool_visible(xcp__pool *p, uint64_t dbgen);
/* Detach and leave the group (NULL: nothing). */
void xcp__pool_close(xcp__pool *p);
/* After the engine lock is released: wait until the commits this thread
 * made are held by a quorum (0), or fail with POOL_NOT_QUORATE. 0 at once
 * when the thread committed nothing replicated. */
int xcp__pool_wait(xcp__pool *p);

/* ---- membership (pool.c, snapshot.c; docs/design-pool.md §6) ---------- */

struct xcp__db;
struct xcp__obj;
struct xcp__buf;

/* The same as xcp__pool_open with the engine lock held by the caller
 * (the coordinator's first pool.join attaches in the call that commits
 * the joiner, so no commit falls between). */
int xcp__pool_open_locked(xcp__pool **out, struct xcp__engine *e);
/* Write <state dir>/pool-role as line ("none", "coordinator <nodeid>",
 * "member <address> <nodeid>") atomically (tmp, fsync, rename). */
int xcp__pool_role_write(const char *state_dir, const char *line);
/* Write path with data atomically (path.tmp with mode, fsync, rename,
 * fsync of the directory); INTERNAL_ERROR naming the file on failure. */
int xcp__pool_file_write(const char *path, const void *data, size_t len,
                         int mode);
/* Where corosync.conf and authkey live: $XCP_COROSYNC_DIR, else
 * /etc/corosync. */
const char *xcp__pool_corosync_dir(void);
/* A host's corosync node id (host.other_config:corosync-nodeid), 0 when
 * it has none. */
uint32_t xcp__pool_host_nodeid(const struct xcp__obj *host);
/* The coordinator committed a change of the host table: rewrite
 * corosync.conf from it and reload corosync when it changed (engine lock
 * held; p NULL: nothing). Members do the same when they apply such a
 * record. */
void xcp__pool_hosts_changed(xcp__pool *p);
/* Whether the host of corosync node nodeid is in the pool's group now
 * (its daemon runs and reaches this one). */
bool xcp__pool_host_live(xcp__pool *p, uint32_t nodeid);
/* Ask the daemon to restart (xcpd takes SIGHUP for it), so that a staged
 * database or reset takes effect; nothing in an embedded engine (the
 * next opening of the state directory applies it). */
void xcp__pool_request_restart(void);

/* State transfer (snapshot.c). The database as the text of a db.snap at
 * its journal's seq, appended to out (engine lock held). */
int xcp__pool_snapshot_encode(struct xcp__db *db, struct xcp__buf *out);
/* Stage text (a snapshot from xcp__pool_snapshot_encode, len bytes) to
 * replace this host's database at the next opening of state_dir; *seq
 * (when not NULL) gets the seq it holds. INTERNAL_ERROR when the header
 * is not a snapshot's. */
int xcp__pool_snapshot_stage(const char *state_dir, const char *text,
                             size_t len, uint64_t *seq);
/* Stage the reset of an ejected host: at the next opening its replica,
 * pool-role and pool-secret go (it starts afresh unpooled, keeping its
 * uuid from <state>/host-uuid). */
int xcp__pool_reset_stage(const char *state_dir);
/* Put what is staged in place (the engine, before it opens the
 * database): 0 when nothing is staged or it is done. */
int xcp__pool_snapshot_apply(const char *state_dir);
/* ---- the pool secret and the coordinator (forwarding, docs/design-pool.md
 * §7) ---- */

/* Whether psecret is the pool secret, <state dir>/pool-secret (64 hex
 * characters; compared in constant time). False when there is none. */
bool xcp__pool_secret_ok(const char *state_dir, const char *psecret);
/* Read the pool secret into out (65 bytes): 0, or a negative code with
 * the thread's error set (no secret: this host is in no pool). */
int xcp__pool_secret_read(const char *state_dir, char out[65]);
/* A pool session (session.slave_login as host self, with the pool's
 * secret) at the daemon at addr ("host[:port]", plain http as the harness
 * serves). */
struct xcp_session;
int xcp__pool_peer_login(struct xcp__engine *e, const char *addr,
                         const char *self, struct xcp_session **out);
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
/* Coordinator: hand the role over to the host of corosync node nodeid
 * (host_ref, at addr), docs/design-pool.md §5.2: writes that begin from
 * now answer HOST_IS_SLAVE [addr]; once every record sent is held by a
 * quorum and by that host, the hand-over goes to the group, whose round
 * of states makes it the coordinator of the next epoch; returns when that
 * is decided. 0 done; 1 a hand-over is already under way; else the
 * error: HOST_IS_SLAVE on a member, POOL_NOT_QUORATE when this
 * coordinator cannot write, CANNOT_CONTACT_HOST [host_ref] when the host
 * is not in the group, did not catch up within 30 s, or the round chose
 * another (this host again: the pool keeps a coordinator). Engine lock
 * not held. */
int xcp__pool_designate(xcp__pool *p, uint32_t nodeid, const char *host_ref,
                        const char *addr);
/* pool.emergency_transition_to_master on this host (design §5.3): 0 on a
 * coordinator (nothing to do); on a member whose coordinator is not in
 * the group, proposes this host to the group (xcp__repl_emergency) and
 * waits for the round: 0 when it made this host the coordinator of the
 * next epoch. OPERATION_NOT_ALLOWED [why] when the coordinator is in the
 * group, or when the round elected another member (one with a longer
 * log: this host follows it); POOL_NOT_QUORATE when the partition cannot
 * decide. Engine lock not held. */
int xcp__pool_emergency_master(xcp__pool *p);
/* pool.emergency_reset_master(addr) on this host, addr being the host of
 * corosync node nodeid: 0 when it already follows addr (or is addr); on
 * a member whose group has no coordinator, pool-role and HOST_IS_SLAVE
 * name addr from now on. OPERATION_NOT_ALLOWED [why] on a coordinator
 * named otherwise, or a member that follows its group's coordinator.
 * Engine lock not held. */
int xcp__pool_reset_master(xcp__pool *p, const char *addr, uint32_t nodeid);
/* host.shutdown/reboot of this host: when the daemon closes the pool,
 * corosync stops too (a powered-off host's would), instead of outliving
 * it; the next start starts it again. NULL: nothing. */
void xcp__pool_power_off(xcp__pool *p);
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
 * (VM operations on the VM's host, or the host given, or for VM.start
 * placed, the host placement chose (xcp__placement_route, which the
 * engine runs first; NULL or "": here), its affinity to resume; VBD/VIF
 * plugs on their VM's; host.shutdown/reboot/disable/enable on that
 * host): 1 with that host's address in addr (size n), 0 to run here, or
 * HOST_OFFLINE [host] (< 0) for a host whose host_metrics.live is false.
 * Engine lock held. */
int xcp__pool_fwd_target(struct xcp__ctx *c, const char *placed, char *addr,
                         size_t n);
/* Run wire(args...) on the host at addr, on a session opened with
 * slave_login(self, the pool secret), once its replica holds seq. task:
 * the async task the call runs for here (NULL for a synchronous call):
 * then the host runs it as a task of its own, which is cancelled when
 * task is (task.cancel here reaches the host doing the work). Engine lock
 * not held. */
int xcp__pool_fwd_call(struct xcp__engine *e, const char *addr,
                       const char *self, uint64_t seq, const char *task,
                       const char *wire, size_t nargs,
                       const struct xcp_value *args,
                       struct xcp_value *result);

#endif
