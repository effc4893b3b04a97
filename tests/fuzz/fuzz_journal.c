/*
 * libFuzzer target: the database's recovery path. Arbitrary bytes become
 * the state directory's db.journal (or, when the first byte is odd,
 * db.snap), and the database is opened. It must load or refuse with an
 * error — never crash, hang, or allocate without bound.
 */
#include "internal.h"
#include "db/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char dir[64];

static void write_file(const char *name, const uint8_t *data, size_t n)
{
    char path[128];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (!f)
        abort();
    if (n && fwrite(data, 1, n, f) != n)
        abort();
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    xcp__db *db;
    char path[128];

    if (!dir[0]) {
        snprintf(dir, sizeof(dir), "/tmp/xcp-fuzz-journal-XXXXXX");
        if (!mkdtemp(dir))
            abort();
    }
    snprintf(path, sizeof(path), "%s/db.snap", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/db.journal", dir);
    unlink(path);
    if (size > 0 && (data[0] & 1))
        write_file("db.snap", data + 1, size - 1);
    else
        write_file("db.journal", size ? data + 1 : data, size ? size - 1 : 0);
    if (xcp__db_open(&db, dir) == 0)
        xcp__db_close(db);
    xcp_error_clear();
    return 0;
}
