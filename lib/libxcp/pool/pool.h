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

#endif
