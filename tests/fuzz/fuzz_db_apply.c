/*
 * libFuzzer target: a member's apply path (xcp__db_apply, db.c and
 * journal.c's xcp__journal_apply_ops). Arbitrary bytes are a replicated
 * journal body applied to a small in-memory database; it must be applied
 * or refused — never crash, hang or allocate without bound — and a refused
 * body must leave the database as it was (generation, sequence and rows).
 */
#include "internal.h"
#include "db/db.h"

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
    uint64_t gen, seq;
    size_t nvm;
    int cls;

    if (!db)
        setup();
    cls = xcp_class_by_name("VM");
    gen = xcp__db_generation(db);
    seq = xcp__db_seq(db);
    nvm = xcp__db_count(db, cls);
    if (xcp__db_apply(db, seq + 1, (const char *)data, size) < 0) {
        if (xcp__db_generation(db) != gen || xcp__db_seq(db) != seq ||
            xcp__db_count(db, cls) != nvm || !xcp__db_get(db, vm_ref))
            abort(); /* a refused body changed the replica */
    } else if (!xcp__db_get(db, vm_ref)) {
        /* keep a row to change: start again next time */
        xcp__db_close(db);
        db = NULL;
    }
    xcp_error_clear();
    return 0;
}
