/*
 * test_stream_data.c - the export encoders' map of their output
 * (xcp__vhd_out_data, xcp__qcow2_out_data): a transfer sends the bytes
 * they call the disk's straight from the image file, so those must be,
 * byte for byte, what xcp__*_out_read would have put there, and the walk
 * must cover the whole stream.
 */
#include <criterion/criterion.h>

#include "../../../lib/libxcp/sr/qcow2_stream.h"
#include "../../../lib/libxcp/sr/vhd_stream.h"

#include <stdlib.h>
#include <string.h>

#define MiB (1024ull * 1024)
/* Sectors, but not a multiple of any block or cluster: the last one runs
 * past it. */
#define SIZE (9 * MiB + 3072)

static uint8_t *disk;

static int read_disk(void *ctx, uint64_t offset, void *buf, size_t n)
{
    (void)ctx;
    cr_assert_leq(offset + n, SIZE, "read past the disk");
    memcpy(buf, disk + offset, n);
    return 0;
}

typedef struct enc {
    void *o;
    void (*mark)(void *o, uint64_t off, uint64_t len);
    uint64_t (*length)(void *o);
    bool (*data)(void *o, uint64_t pos, uint64_t *guest, uint64_t *len);
    int (*read)(void *o, uint64_t pos, void *buf, size_t n, size_t *got,
                xcp__vhd_stream_read_cb read, void *ctx, char *err,
                size_t errlen);
} enc;

static void vhd_mark(void *o, uint64_t off, uint64_t len)
{
    xcp__vhd_out_mark(o, off, len);
}
static uint64_t vhd_length(void *o) { return xcp__vhd_out_length(o); }
static bool vhd_data(void *o, uint64_t p, uint64_t *g, uint64_t *l)
{
    return xcp__vhd_out_data(o, p, g, l);
}
static int vhd_read(void *o, uint64_t pos, void *buf, size_t n, size_t *got,
                    xcp__vhd_stream_read_cb r, void *c, char *err,
                    size_t errlen)
{
    return xcp__vhd_out_read(o, pos, buf, n, got, r, c, err, errlen);
}
static void q_mark(void *o, uint64_t off, uint64_t len)
{
    xcp__qcow2_out_mark(o, off, len);
}
static uint64_t q_length(void *o) { return xcp__qcow2_out_length(o); }
static bool q_data(void *o, uint64_t p, uint64_t *g, uint64_t *l)
{
    return xcp__qcow2_out_data(o, p, g, l);
}
static int q_read(void *o, uint64_t pos, void *buf, size_t n, size_t *got,
                  xcp__vhd_stream_read_cb r, void *c, char *err,
                  size_t errlen)
{
    return xcp__qcow2_out_read(o, pos, buf, n, got, r, c, err, errlen);
}

/* Walk the stream as a transfer does; every data run must read (through
 * the encoder) as the disk's bytes it names; returns the bytes of data
 * runs. */
static uint64_t walk(enc *x)
{
    uint64_t total, pos = 0, g, len, data = 0;
    uint8_t *buf;
    size_t got;
    char err[256];

    for (g = 0; g < SIZE; g++)
        disk[g] = (uint8_t)(g * 13 + (g >> 12));
    x->mark(x->o, 0, 100);                  /* the first block */
    x->mark(x->o, 3 * MiB + 5, 2 * MiB);    /* across blocks */
    x->mark(x->o, SIZE - 10, 10);           /* the last, partial one */
    total = x->length(x->o);
    cr_assert_gt(total, 0);
    buf = malloc(16 * MiB);
    cr_assert_not_null(buf);
    while (pos < total) {
        bool is = x->data(x->o, pos, &g, &len);

        cr_assert_gt(len, 0, "no progress at %llu of %llu",
                     (unsigned long long)pos, (unsigned long long)total);
        cr_assert_leq(pos + len, total);
        if (is) {
            cr_assert_leq(len, 16 * MiB);
            cr_assert_leq(g + len, SIZE, "a run past the disk");
            cr_assert_eq(x->read(x->o, pos, buf, len, &got, read_disk, NULL,
                                 err, sizeof(err)), 0, "%s", err);
            cr_assert_eq(got, len);
            cr_assert_arr_eq(buf, disk + g, len,
                             "the run at %llu is not the disk's %llu",
                             (unsigned long long)pos, (unsigned long long)g);
            data += len;
        }
        pos += len;
    }
    cr_assert_eq(pos, total);
    cr_assert_not(x->data(x->o, total, &g, &len));
    cr_assert_eq(len, 0, "past the end: nothing");
    free(buf);
    return data;
}

TestSuite(stream_data, .init = NULL);

Test(stream_data, vhd_data_runs_are_the_disk_bytes)
{
    xcp__vhd_out *o = NULL;
    enc x = {NULL, vhd_mark, vhd_length, vhd_data, vhd_read};
    uint64_t data;

    disk = malloc(SIZE);
    cr_assert_eq(xcp__vhd_out_new(&o, SIZE, NULL, 0), 0);
    x.o = o;
    data = walk(&x);
    /* three 2 MiB blocks of data and the last block's part within the
       disk: 0, 2-4 and 4-6 MiB, 8 MiB to the end */
    cr_assert_eq(data, 6 * MiB + (SIZE - 8 * MiB), "%llu bytes of data",
                 (unsigned long long)data);
    xcp__vhd_out_free(o);
    free(disk);
}

Test(stream_data, qcow2_data_runs_are_the_disk_bytes)
{
    xcp__qcow2_out *o = NULL;
    enc x = {NULL, q_mark, q_length, q_data, q_read};
    uint64_t data;

    disk = malloc(SIZE);
    cr_assert_eq(xcp__qcow2_out_new(&o, SIZE, NULL, 0), 0);
    x.o = o;
    data = walk(&x);
    /* clusters of 64 KiB: 1 at 0, 33 from 3 MiB, the last one's part */
    cr_assert_eq(data, 65536 + 33 * 65536 + (SIZE % 65536),
                 "%llu bytes of data", (unsigned long long)data);
    xcp__qcow2_out_free(o);
    free(disk);
}
