/*
 * The qcow2 stream parser (sr/qcow2_stream_in.c) on images qemu-img
 * writes: whatever the pieces the stream comes in (1 byte, 7, 4096, all
 * at once), the disk written is the image's; what it holds stays small
 * for a sequentially written image (runs, not clusters); a stream cut
 * short, an image larger than the disk, a table pointing back into what
 * has gone by fail as documented.
 */
#include "../../../lib/libxcp/sr/qcow2_stream.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MiB ((uint64_t)1 << 20)
#define SIZE (8 * MiB)


struct disk {
    uint8_t *bytes;
    uint64_t size;
};

static int put(void *ctx, uint64_t offset, const void *buf, size_t len)
{
    struct disk *d = ctx;

    cr_assert_leq(offset + len, d->size, "write past the disk");
    memcpy(d->bytes + offset, buf, len);
    return 0;
}

static void run(char *const argv[])
{
    pid_t pid = fork();
    int st;

    cr_assert_geq(pid, 0);
    if (pid == 0) {
        execvp(argv[0], argv);
        _exit(127);
    }
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s failed", argv[0]);
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *b;
    long n;

    cr_assert(f, "%s", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    b = malloc((size_t)n + 1);
    cr_assert(b && fread(b, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* A raw disk of SIZE with data in a few places, and qemu-img's qcow2 of
 * it with opts; returns the raw bytes, the image in *img. */
static uint8_t *make(const char *opts, uint8_t **img, size_t *img_len)
{
    char dir[64], raw[256], q[256];
    uint8_t *data = calloc(1, SIZE);
    FILE *f;
    size_t i;

    snprintf(dir, sizeof(dir), "/tmp/test_qcow2_in.%d", (int)getpid());
    cr_assert(mkdir(dir, 0700) == 0 || errno == EEXIST, "%s", dir);
    snprintf(raw, sizeof(raw), "%s/d.raw", dir);
    snprintf(q, sizeof(q), "%s/d.qcow2", dir);
    for (i = 0; i < MiB; i++) {
        data[i] = (uint8_t)(i * 7 + 1);
        data[3 * MiB + 4096 + i] = (uint8_t)(i * 13 + 5);
    }
    data[SIZE - 1] = 0x42;
    f = fopen(raw, "wb");
    cr_assert(f && fwrite(data, 1, SIZE, f) == SIZE);
    fclose(f);
    {
        char *argv[] = {"qemu-img", "convert", "-q", "-f", "raw", "-O",
                        "qcow2", "-o", (char *)opts, raw, q, NULL};
        run(argv);
    }
    *img = slurp(q, img_len);
    unlink(raw);
    unlink(q);
    rmdir(dir);
    return data;
}

/* Feed img in pieces of step bytes into a disk of disk_size. */
static int feed(const uint8_t *img, size_t len, size_t step,
                uint64_t disk_size, struct disk *d, xcp__qcow2_in **out,
                char *err, size_t errlen)
{
    xcp__qcow2_in *in;
    size_t off, n;
    int rc;

    d->size = disk_size;
    d->bytes = calloc(1, disk_size);
    cr_assert_eq(xcp__qcow2_in_new(&in, disk_size, err, errlen), 0);
    *out = in;
    for (off = 0; off < len; off += n) {
        n = len - off < step ? len - off : step;
        if ((rc = xcp__qcow2_in_feed(in, img + off, n, put, d, err,
                                     errlen)) != 0)
            return rc;
    }
    return xcp__qcow2_in_finish(in, err, errlen);
}

Test(qcow2_stream_in, any_piece_size_gives_the_image_disk)
{
    static const char *opts[] = {"cluster_size=65536",
                                 "compat=0.10,cluster_size=4096",
                                 "cluster_size=2097152"};
    static const size_t steps[] = {1, 7, 4096, (size_t)-1};
    size_t o, s, len;
    uint8_t *img, *data;

    for (o = 0; o < 3; o++) {
        data = make(opts[o], &img, &len);
        for (s = 0; s < 4; s++) {
            struct disk d;
            xcp__qcow2_in *in;
            char err[256] = "";

            if (steps[s] == 1 && o == 2)
                continue;       /* 2 MiB clusters: one byte is slow */
            cr_assert_eq(feed(img, len, steps[s], SIZE, &d, &in, err,
                              sizeof(err)), 0, "%s step %zu: %s", opts[o],
                         steps[s], err);
            cr_assert_eq(memcmp(d.bytes, data, SIZE), 0,
                         "%s step %zu: the disk differs", opts[o],
                         steps[s]);
            cr_assert_eq(xcp__qcow2_in_pending(in), 0);
            cr_assert_not(xcp__qcow2_in_differencing(in));
            xcp__qcow2_in_free(in);
            free(d.bytes);
        }
        free(img);
        free(data);
    }
}

/* What the parser holds for what is still to come: runs of clusters,
 * so a sequential image of thousands of data clusters is a few. */
static int count_put(void *ctx, uint64_t offset, const void *buf,
                     size_t len)
{
    (void)offset;
    (void)buf;
    *(uint64_t *)ctx += len;
    return 0;
}

Test(qcow2_stream_in, holds_runs_not_clusters)
{
    size_t len, off, most = 0, n;
    uint8_t *img, *data = make("cluster_size=4096", &img, &len);
    xcp__qcow2_in *in;
    uint64_t got = 0;
    char err[256] = "";

    cr_assert_eq(xcp__qcow2_in_new(&in, SIZE, err, sizeof(err)), 0);
    for (off = 0; off < len; off += n) {
        n = len - off < 4096 ? len - off : 4096;
        cr_assert_eq(xcp__qcow2_in_feed(in, img + off, n, count_put, &got,
                                        err, sizeof(err)), 0, "%s", err);
        if (xcp__qcow2_in_pending(in) > most)
            most = xcp__qcow2_in_pending(in);
    }
    cr_assert_eq(xcp__qcow2_in_finish(in, err, sizeof(err)), 0, "%s", err);
    /* 2 MiB + a cluster of data in 4 KiB clusters: 513 clusters, held
       as a handful of runs (and the L2 tables before them). */
    cr_assert_geq(got, 2 * MiB);
    cr_assert_leq(most, 8, "held %zu targets", most);
    xcp__qcow2_in_free(in);
    free(img);
    free(data);
}

Test(qcow2_stream_in, failures_say_why)
{
    size_t len;
    uint8_t *img, *data = make("cluster_size=65536", &img, &len);
    struct disk d;
    xcp__qcow2_in *in;
    char err[256] = "";

    /* cut short */
    cr_assert_eq(feed(img, len / 2, 4096, SIZE, &d, &in, err, sizeof(err)),
                 -EBADMSG);
    cr_assert(strstr(err, "ended"), "%s", err);
    xcp__qcow2_in_free(in);
    free(d.bytes);
    /* larger than the disk */
    cr_assert_eq(feed(img, len, 4096, SIZE / 2, &d, &in, err, sizeof(err)),
                 -EFBIG);
    xcp__qcow2_in_free(in);
    free(d.bytes);
    /* the L1 table said to lie in the header's cluster, gone by */
    img[40] = img[41] = img[42] = img[43] = 0;
    img[44] = img[45] = img[46] = img[47] = 0;
    cr_assert_eq(feed(img, len, 4096, SIZE, &d, &in, err, sizeof(err)),
                 -EBADMSG);
    cr_assert(strstr(err, "comes before"), "%s", err);
    xcp__qcow2_in_free(in);
    free(d.bytes);
    /* not a qcow2 */
    memset(img, 0, 8);
    cr_assert_eq(feed(img, len, 4096, SIZE, &d, &in, err, sizeof(err)),
                 -EMEDIUMTYPE);
    xcp__qcow2_in_free(in);
    free(d.bytes);
    free(img);
    free(data);
}
