/*
 * libFuzzer target: the coordinator's side of a member's write
 * (pool.member_commit, lib/libxcp/pool/fwd.c's xcp__pool_member_ops).
 * Arbitrary bytes are a member's journal body run in a transaction of a
 * small in-memory database, then rolled back: it must be run or refused
 * (a missing row named) — never crash, hang or allocate without bound —
 * and the rollback must leave the database as it was.
 */
#include "internal.h"
#include "db/db.h"
#include "pool/pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static xcp__db *db;
static char vm_ref[XCP_REF_MAX];

static void setup(void)
{
    xcp__obj *o;
    int cls = xcp_class_by_name("VM");

    if (xcp__db_open(&db, NULL) < 0 || cls < 0)
        abort();
    xcp__db_begin(db);
    if (xcp__db_create(db, cls, "OpaqueRef:fuzz-vm", NULL, &o) < 0)
        abort();
    snprintf(vm_ref, sizeof(vm_ref), "%s", o->ref);
    if (xcp__db_commit(db) < 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *body, why[200], missing[XCP_REF_MAX];
    uint64_t gen;
    size_t nvm;
    int cls, rc;

    if (!db)
        setup();
    if (!(body = malloc(size + 1)))
        return 0;
    memcpy(body, data, size);
    body[size] = '\0'; /* an XML-RPC string ends at its first NUL */
    cls = xcp_class_by_name("VM");
    gen = xcp__db_generation(db);
    nvm = xcp__db_count(db, cls);
    xcp__db_begin(db);
    rc = xcp__pool_member_ops(db, body, why, sizeof(why), missing);
    if (rc == -2 && !missing[0])
        abort(); /* a missing row without its ref */
    xcp__db_abort(db);
    if (xcp__db_generation(db) != gen || xcp__db_count(db, cls) != nvm ||
        !xcp__db_get(db, vm_ref))
        abort(); /* the rollback left a change */
    free(body);
    xcp_error_clear();
    return 0;
}
