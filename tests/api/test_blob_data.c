/*
 * tests/api/test_blob_data.c - a blob's bytes (xcp_blob_put_data,
 * xcp_blob_get_data) on the embedded engine: put then get gives the same
 * bytes, a second put replaces them whole, size and last_updated follow,
 * the bytes outlive a reopening of the engine, blob.destroy removes
 * them, and the refusals (a stale blob ref, a blob never written, a bad
 * fd, no session).
 */
#include "helpers.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

TestSuite(blob_data, .init = api_setup, .fini = api_teardown);

/* A file holding n bytes of a pattern seeded by seed, open for reading. */
static int pattern_fd(size_t n, unsigned seed, unsigned char **copy)
{
    FILE *f = tmpfile();
    unsigned char *b = malloc(n + 1);
    size_t i;

    cr_assert(f && b);
    for (i = 0; i < n; i++)
        b[i] = (unsigned char)((i * 31 + seed + i / 977) & 0xff);
    cr_assert_eq(fwrite(b, 1, n, f), n);
    fflush(f);
    rewind(f);
    *copy = b;
    return dup(fileno(f)); /* f stays open (leaked, as the test ends) */
}

/* What get_data writes, read back: *n bytes (malloc'ed). */
static unsigned char *get_bytes(xcp_blob b, size_t *n)
{
    FILE *f = tmpfile();
    unsigned char *buf;
    long len;

    cr_assert(f);
    OK(xcp_blob_get_data(S, b, fileno(f)));
    len = ftell(f) >= 0 ? lseek(fileno(f), 0, SEEK_END) : -1;
    cr_assert(len >= 0);
    buf = malloc((size_t)len + 1);
    lseek(fileno(f), 0, SEEK_SET);
    cr_assert_eq(read(fileno(f), buf, (size_t)len), len);
    fclose(f);
    *n = (size_t)len;
    return buf;
}

static size_t blob_files(void)
{
    char path[512];
    DIR *d;
    struct dirent *e;
    size_t n = 0;

    snprintf(path, sizeof(path), "%s/blobs", api_dir);
    if (!(d = opendir(path)))
        return 0;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

Test(blob_data, put_then_get_gives_the_same_bytes)
{
    xcp_blob b;
    unsigned char *want, *got;
    size_t n;
    int64_t size;
    int fd;

    OK(xcp_blob_create(S, &b, "application/octet-stream", false));
    /* never written: no bytes to read (XAPI's handler: 404) */
    assert_error(xcp_blob_get_data(S, b, 1), "HANDLE_INVALID", "blob", b.ref);
    fd = pattern_fd(300000, 1, &want);
    OK(xcp_blob_put_data(S, b, fd));
    close(fd);
    got = get_bytes(b, &n);
    cr_assert_eq(n, 300000);
    cr_assert(memcmp(got, want, n) == 0, "bytes differ");
    OK(xcp_blob_get_size(S, &size, b));
    cr_assert_eq(size, 300000);
    free(got);
    free(want);
    /* a smaller put replaces the whole */
    fd = pattern_fd(10, 7, &want);
    OK(xcp_blob_put_data(S, b, fd));
    close(fd);
    got = get_bytes(b, &n);
    cr_assert_eq(n, 10);
    cr_assert(memcmp(got, want, n) == 0, "second put's bytes differ");
    free(got);
    /* kept across a reopening of the engine */
    api_reopen();
    got = get_bytes(b, &n);
    cr_assert(n == 10 && memcmp(got, want, n) == 0, "lost on reopen");
    free(got);
    free(want);
}

Test(blob_data, destroy_removes_the_bytes)
{
    xcp_blob b;
    unsigned char *want;
    int fd;

    OK(xcp_blob_create(S, &b, "text/plain", true));
    fd = pattern_fd(1000, 3, &want);
    OK(xcp_blob_put_data(S, b, fd));
    close(fd);
    free(want);
    cr_assert_eq(blob_files(), 1);
    OK(xcp_blob_destroy(S, b));
    cr_assert_eq(blob_files(), 0, "the blob's file is still there");
    assert_error(xcp_blob_get_data(S, b, 1), "HANDLE_INVALID", "blob",
                 b.ref);
}

Test(blob_data, refusals)
{
    xcp_blob b, stale;
    int p[2];

    SET_REF(stale, "OpaqueRef:00000000-0000-0000-0000-000000000000");
    assert_error(xcp_blob_get_data(S, stale, 1), "HANDLE_INVALID", "blob",
                 stale.ref);
    assert_error(xcp_blob_put_data(S, stale, 0), "HANDLE_INVALID", "blob",
                 stale.ref);
    OK(xcp_blob_create(S, &b, "", false));
    assert_error(xcp_blob_get_data(S, b, -1), "INVALID_VALUE", "fd", "");
    assert_error(xcp_blob_get_data(NULL, b, 1), "INVALID_VALUE", "session",
                 "");
    /* an fd that cannot be read: nothing stored, the old bytes stay */
    cr_assert(pipe(p) == 0);
    close(p[0]);
    assert_error_name(xcp_blob_put_data(S, b, p[1]), "INVALID_VALUE");
    close(p[1]);
    cr_assert_eq(blob_files(), 0, "a failed put left a file");
}
