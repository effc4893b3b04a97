/*
 * tests/unit/common/engine_fixture.c - an engine on a fresh state
 * directory, opened and removed again (see engine_fixture.h).
 */
#define _XOPEN_SOURCE 700
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine_fixture.h"

xcp__engine *fixture_engine_open(char *dir, size_t size, const char *tag)
{
    xcp_open_options o = {.version = XCP_OPEN_OPTIONS_VERSION};
    const char *tmp = getenv("TMPDIR");
    xcp__engine *e = NULL;

    setenv("XCP_HV", "sim", 0);
    setenv("XCP_DB_FSYNC", "never", 1);
    snprintf(dir, size, "%s/xcp-%s-XXXXXX", tmp ? tmp : "/tmp", tag);
    cr_assert(mkdtemp(dir), "mkdtemp %s", dir);
    o.state_dir = dir;
    cr_assert_eq(xcp__engine_get(&e, &o), 0, "engine open on %s", dir);
    return e;
}

static int remove_one(const char *path, const struct stat *st, int flag,
                      struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void fixture_engine_close(xcp__engine *e, const char *dir)
{
    xcp__engine_put(e);
    if (nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
        cr_log_warn("cannot remove %s", dir);
}
