/*
 * State transfer (docs/design-pool.md §5.1, §6): a replica replaced by
 * the coordinator's database at a known seq. The coordinator encodes its
 * database as the text of a db.snap (journal.c's format: the header names
 * the generation and the seq); the receiving host stages it in
 * <state>/pool-db.snap, and the next opening of the state directory puts
 * it in place before the database is read (the journal goes first, then
 * the snapshot is renamed over db.snap: a crash in between leaves the
 * stage, applied again at the next open; the old journal is never
 * replayed over the new snapshot). An ejected host stages a reset
 * (<state>/pool-reset): its replica and pool files go, and it starts
 * afresh as a host of its own (with its uuid: <state>/host-uuid stays).
 */
#include "pool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../engine/engine.h"

#define STAGE "pool-db.snap"
#define RESET "pool-reset"

int xcp__pool_file_write(const char *path, const void *data, size_t len,
                         int mode)
{
    char *tmp = xcp__printf("%s.tmp", path), *dir = NULL, *slash;
    int fd = -1, rc = 0;

    if (!tmp)
        return xcp__oom();
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0 || fchmod(fd, (mode_t)mode) < 0 ||
        xcp__write_all(fd, data, len) < 0 || fsync(fd) < 0) {
        rc = xcp__io_fail(tmp, "write", errno);
        goto out;
    }
    close(fd);
    fd = -1;
    if (rename(tmp, path) < 0) {
        rc = xcp__io_fail(path, "rename", errno);
        goto out;
    }
    if ((dir = xcp__strdup(path)) && (slash = strrchr(dir, '/'))) {
        *slash = '\0';
        xcp__fsync_dir(*dir ? dir : "/");
    }
out:
    if (fd >= 0)
        close(fd);
    if (rc < 0)
        unlink(tmp);
    free(tmp);
    free(dir);
    return rc;
}

int xcp__pool_snapshot_encode(xcp__db *db, xcp__buf *out)
{
    return xcp__journal_snapshot_encode(db, xcp__db_seq(db), out);
}

int xcp__pool_snapshot_stage(const char *state_dir, const char *text,
                             size_t len, uint64_t *seq)
{
    char path[4096];
    uint64_t at = UINT64_MAX;
    int rc;

    /* Loaded apart first, as catch-up's install checks it: a damaged
     * snapshot staged would cost the host its database at the next
     * open (the journal goes before the rename). */
    if ((rc = xcp__db_snapshot_check(state_dir, text, len, &at)) < 0)
        return rc;
    if (seq)
        *seq = at;
    snprintf(path, sizeof(path), "%s/" STAGE, state_dir);
    return xcp__pool_file_write(path, text, len, 0600);
}

int xcp__pool_reset_stage(const char *state_dir)
{
    char path[4096];

    snprintf(path, sizeof(path), "%s/" RESET, state_dir);
    return xcp__pool_file_write(path, "reset\n", 6, 0600);
}

static int unlink_in(const char *dir, const char *name)
{
    char path[4096];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (unlink(path) < 0 && errno != ENOENT)
        return xcp__io_fail(path, "unlink", errno);
    return 0;
}

int xcp__pool_snapshot_apply(const char *state_dir)
{
    /* host-uuid stays: the host keeps its uuid (firstboot makes its new
     * row with it), as XAPI's inventory keeps it. */
    static const char *const reset[] = {"db.journal", "db.snap",
                                        "pool-secret", "pool-role", STAGE};
    char from[4096], to[4096];
    size_t i;
    int rc;

    snprintf(from, sizeof(from), "%s/" RESET, state_dir);
    if (access(from, F_OK) == 0) {
        for (i = 0; i < XCP__ARRAY_LEN(reset); i++)
            if ((rc = unlink_in(state_dir, reset[i])) < 0)
                return rc;
        xcp__fsync_dir(state_dir);
        if ((rc = unlink_in(state_dir, RESET)) < 0)
            return rc;
        xcp__log(XCP__LOG_INFO, "pool: ejected: this host starts afresh "
                 "as a pool of its own");
        return 0;
    }
    snprintf(from, sizeof(from), "%s/" STAGE, state_dir);
    if (access(from, F_OK) != 0)
        return 0;
    snprintf(to, sizeof(to), "%s/db.snap", state_dir);
    if ((rc = unlink_in(state_dir, "db.journal")) < 0)
        return rc;
    xcp__fsync_dir(state_dir);
    if (rename(from, to) < 0)
        return xcp__io_fail(to, "rename", errno);
    xcp__fsync_dir(state_dir);
    xcp__log(XCP__LOG_INFO, "pool: this host's database is now the "
             "pool's (state transfer)");
    return 0;
}
