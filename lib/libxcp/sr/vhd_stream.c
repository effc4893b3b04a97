/*
 * VHD images as streams (vhd_stream.h): the producer lays a dynamic VHD
 * out in the order it is sent (metadata first, blocks in the disk's
 * order, the footer last, as vhd-tool streams one), so any byte of it is
 * computed from the block map alone; the consumer is a state machine
 * fed with the bytes as they arrive, which reads the footer copy, the
 * header and the block table, then the blocks in the order the table
 * puts them in the file.  Footers and headers are the VHD library's
 * (vhd_int.h).
 */
#include "vhd_stream.h"
#include "vhd_int.h"

#include <stdlib.h>

/* Bytes of one block's sector bitmap for block_size. */
static uint32_t bitmap_bytes(uint32_t block_size)
{
    return (uint32_t)(div_up(div_up(block_size / SECTOR, 8), SECTOR) *
                      SECTOR);
}

static bool bit(const uint8_t *map, uint64_t i)
{
    return map[i / 8] & (0x80u >> (i % 8));
}

/* ---- producing -------------------------------------------------------------- */

struct xcp__vhd_out {
    uint64_t size;
    uint32_t block_size;
    uint32_t nblocks;
    uint8_t *map;               /* bit per block: sent */
    uint32_t nsent;
    bool counted;
    uint64_t bat_bytes;
    uint8_t *loc;               /* a delta's parent locator payloads,
                                 * after the BAT (NULL: none) */
    uint64_t loc_bytes;
    uint64_t data_off;          /* the first sent block's bitmap */
    uint64_t stride;            /* bitmap + block */
    uint8_t footer[FOOTER_SIZE];
    uint8_t header[HEADER_SIZE];
    /* Cursors for reading front to back: rank = sent blocks before
     * block. */
    uint32_t c_block, c_rank;
};

int xcp__vhd_out_new(xcp__vhd_out **out, uint64_t virtual_size, char *err,
                     size_t errlen)
{
    xcp__vhd_out *o;

    *out = NULL;
    virtual_size = div_up(virtual_size, SECTOR) * SECTOR;
    if (virtual_size > XCP__VHD_MAX_SIZE)
        return xcp__vhd_too_big("VHD stream", virtual_size, err, errlen);
    if (!(o = calloc(1, sizeof(*o))))
        return fail(err, errlen, -ENOMEM, "VHD stream: out of memory");
    o->size = virtual_size;
    o->block_size = XCP__VHD_DEFAULT_BLOCK_SIZE;
    o->nblocks = (uint32_t)div_up(virtual_size, o->block_size);
    o->map = calloc(div_up(o->nblocks, 8) + 1, 1);
    if (!o->map) {
        free(o);
        return fail(err, errlen, -ENOMEM, "VHD stream: out of memory");
    }
    o->bat_bytes = div_up((uint64_t)o->nblocks * 4 + (o->nblocks == 0),
                          SECTOR) * SECTOR;
    o->data_off = FOOTER_SIZE + HEADER_SIZE + o->bat_bytes;
    o->stride = bitmap_bytes(o->block_size) + (uint64_t)o->block_size;
    xcp__vhd_footer_init(o->footer, XCP__VHD_DYNAMIC, virtual_size);
    put32(o->footer + F_CHECKSUM,
          xcp__vhd_checksum(o->footer, FOOTER_SIZE, F_CHECKSUM));
    memcpy(o->header + D_COOKIE, "cxsparse", 8);
    put64(o->header + D_DATA_OFFSET, NO_OFFSET);
    put64(o->header + D_TABLE_OFFSET, FOOTER_SIZE + HEADER_SIZE);
    put32(o->header + D_VERSION, VHD_VERSION);
    put32(o->header + D_MAX_ENTRIES, o->nblocks);
    put32(o->header + D_BLOCK_SIZE, o->block_size);
    put32(o->header + D_CHECKSUM,
          xcp__vhd_checksum(o->header, HEADER_SIZE, D_CHECKSUM));
    *out = o;
    return 0;
}

/* The 16 bytes of uuid text u (8-4-4-4-12 hex digits); -1 if not one. */
static int uuid_bytes(const char *u, uint8_t *out)
{
    static const char hex[] = "0123456789abcdef";
    const char *d;
    int i, n = 0;

    for (i = 0; u[i] && n < 32; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (u[i] != '-')
                return -1;
            continue;
        }
        if (!(d = strchr(hex, u[i] | 0x20)) || !*d)
            return -1;
        if (n % 2)
            out[n / 2] |= (uint8_t)(d - hex);
        else
            out[n / 2] = (uint8_t)((d - hex) << 4);
        n++;
    }
    return n == 32 && i == 36 && !u[i] ? 0 : -1;
}

/* The three locators vhd-util writes for a parent beside the child
 * (libvhd's vhd_write_parent_locators: MacX, W2ku, W2ru, in that order,
 * each a relative name, Microsoft's ".\" form for the Windows ones), as
 * a stream's parent lies beside it where the reader puts both. */
static const uint32_t loc_codes[3] = { PLAT_MACX, PLAT_W2KU, PLAT_W2RU };

/* Lay out the locators for parent file name into o->loc (after the BAT)
 * and their entries into header h. */
static int out_locators(xcp__vhd_out *o, const char *name, uint8_t *h,
                        char *err, size_t errlen)
{
    uint8_t pay[3][LOC_MAX_BYTES];
    char text[XCP__VHD_PARENT_MAX + 16];
    long len[3];
    uint64_t at, total = 0;
    uint8_t *buf, *e;
    int i;

    if (strlen(name) > XCP__VHD_PARENT_MAX)
        return fail(err, errlen, -ENAMETOOLONG, "VHD stream: parent name "
                    "%s is too long for a locator", name);
    for (i = 0; i < 3; i++) {
        if (loc_codes[i] == PLAT_MACX) {
            len[i] = snprintf(text, sizeof(text), "file://./%s", name);
            memcpy(pay[i], text, (size_t)len[i]);
        } else {
            snprintf(text, sizeof(text), ".\\%s", name);
            len[i] = xcp__vhd_utf16(text, pay[i], LOC_MAX_BYTES, false);
        }
        if (len[i] <= 0)
            return fail(err, errlen, -ENAMETOOLONG, "VHD stream: parent "
                        "name %s does not fit a locator or is not UTF-8",
                        name);
        total += div_up((uint64_t)len[i], SECTOR) * SECTOR;
    }
    if (!(buf = calloc(1, total)))
        return fail(err, errlen, -ENOMEM, "VHD stream: out of memory");
    at = FOOTER_SIZE + HEADER_SIZE + o->bat_bytes;
    memset(h + D_LOCATORS, 0, N_LOCATORS * LOC_SIZE);
    for (i = 0, total = 0; i < 3; i++) {
        uint64_t space = div_up((uint64_t)len[i], SECTOR) * SECTOR;

        memcpy(buf + total, pay[i], (size_t)len[i]);
        e = h + D_LOCATORS + i * LOC_SIZE;
        put32(e, loc_codes[i]);
        put32(e + 4, (uint32_t)(space / SECTOR));   /* sectors: the spec */
        put32(e + 8, (uint32_t)len[i]);
        put64(e + 16, at + total);
        total += space;
    }
    free(o->loc);
    o->loc = buf;
    o->loc_bytes = total;
    return 0;
}

int xcp__vhd_out_parent(xcp__vhd_out *o, const char *parent_uuid,
                        const char *name, char *err, size_t errlen)
{
    uint8_t h[HEADER_SIZE];
    int rc;

    memcpy(h, o->header, HEADER_SIZE);
    if (uuid_bytes(parent_uuid, h + D_PARENT_UUID) < 0)
        return fail(err, errlen, -EINVAL, "VHD stream: parent uuid %s is "
                    "not a uuid", parent_uuid);
    memset(h + D_PARENT_NAME, 0, D_PARENT_NAME_LEN);
    if (xcp__vhd_utf16(name, h + D_PARENT_NAME, D_PARENT_NAME_LEN, true) < 0)
        return fail(err, errlen, -ENAMETOOLONG, "VHD stream: parent name "
                    "%s is too long for a VHD header or not UTF-8", name);
    if ((rc = out_locators(o, name, h, err, errlen)) < 0)
        return rc;
    put32(h + D_CHECKSUM, xcp__vhd_checksum(h, HEADER_SIZE, D_CHECKSUM));
    memcpy(o->header, h, HEADER_SIZE);
    o->data_off = FOOTER_SIZE + HEADER_SIZE + o->bat_bytes + o->loc_bytes;
    o->counted = false;
    put32(o->footer + F_TYPE, XCP__VHD_DIFFERENCING);
    put32(o->footer + F_CHECKSUM,
          xcp__vhd_checksum(o->footer, FOOTER_SIZE, F_CHECKSUM));
    return 0;
}

uint32_t xcp__vhd_out_block_size(const xcp__vhd_out *o)
{
    return o->block_size;
}

void xcp__vhd_out_mark(xcp__vhd_out *o, uint64_t offset, uint64_t len)
{
    uint64_t b, end;

    if (!len || offset >= o->size)
        return;
    end = div_up(min64(offset + len, o->size), o->block_size);
    for (b = offset / o->block_size; b < end; b++)
        o->map[b / 8] |= (uint8_t)(0x80u >> (b % 8));
    o->counted = false;
}

uint64_t xcp__vhd_out_length(xcp__vhd_out *o)
{
    uint32_t b;

    if (!o->counted) {
        o->nsent = 0;
        for (b = 0; b < o->nblocks; b++)
            o->nsent += bit(o->map, b);
        o->counted = true;
        o->c_block = o->c_rank = 0;
    }
    return o->data_off + (uint64_t)o->nsent * o->stride + FOOTER_SIZE;
}

/* Move the cursor to block b (its rank follows). */
static void seek_block(xcp__vhd_out *o, uint32_t b)
{
    if (b < o->c_block)
        o->c_block = o->c_rank = 0;
    for (; o->c_block < b; o->c_block++)
        o->c_rank += bit(o->map, o->c_block);
}

/* Move the cursor to the sent block of rank k. */
static void seek_rank(xcp__vhd_out *o, uint32_t k)
{
    if (k < o->c_rank || (k == o->c_rank && o->c_block > 0 &&
                          !bit(o->map, o->c_block)))
        o->c_block = o->c_rank = 0;
    for (;;) {
        if (bit(o->map, o->c_block)) {
            if (o->c_rank == k)
                return;
            o->c_rank++;
        }
        o->c_block++;
    }
}

/* BAT bytes [rel, rel + n) of the table. */
static void bat_bytes_at(xcp__vhd_out *o, uint64_t rel, uint8_t *p,
                         size_t n)
{
    uint8_t e[4];
    uint32_t i, v;
    size_t k;

    for (k = 0; k < n;) {
        i = (uint32_t)((rel + k) / 4);
        v = BAT_FREE;
        if (i < o->nblocks) {
            seek_block(o, i);
            if (bit(o->map, i))
                v = (uint32_t)((o->data_off + (uint64_t)o->c_rank *
                                o->stride) / SECTOR);
        }
        put32(e, v);
        for (; k < n && (rel + k) / 4 == i; k++)
            p[k] = e[(rel + k) % 4];
    }
}

int xcp__vhd_out_read(xcp__vhd_out *o, uint64_t pos, void *buf, size_t n,
                      size_t *got, xcp__vhd_stream_read_cb read, void *ctx,
                      char *err, size_t errlen)
{
    uint64_t total = xcp__vhd_out_length(o), end_blocks, rel, g, take;
    uint32_t bm = bitmap_bytes(o->block_size);
    uint8_t *p = buf;
    int rc;

    *got = 0;
    if (pos >= total)
        return 0;
    n = (size_t)min64(n, total - pos);
    end_blocks = o->data_off + (uint64_t)o->nsent * o->stride;
    while (*got < n) {
        uint64_t at = pos + *got;
        size_t left = n - *got;

        if (at < FOOTER_SIZE) {
            take = min64(left, FOOTER_SIZE - at);
            memcpy(p + *got, o->footer + at, take);
        } else if (at < FOOTER_SIZE + HEADER_SIZE) {
            rel = at - FOOTER_SIZE;
            take = min64(left, HEADER_SIZE - rel);
            memcpy(p + *got, o->header + rel, take);
        } else if (at < FOOTER_SIZE + HEADER_SIZE + o->bat_bytes) {
            rel = at - FOOTER_SIZE - HEADER_SIZE;
            take = min64(left, o->bat_bytes - rel);
            bat_bytes_at(o, rel, p + *got, take);
        } else if (at < o->data_off) {
            rel = at - FOOTER_SIZE - HEADER_SIZE - o->bat_bytes;
            take = min64(left, o->loc_bytes - rel);
            memcpy(p + *got, o->loc + rel, take);
        } else if (at < end_blocks) {
            rel = (at - o->data_off) % o->stride;
            seek_rank(o, (uint32_t)((at - o->data_off) / o->stride));
            if (rel < bm) {
                take = min64(left, bm - rel);
                memset(p + *got, 0xff, take);
            } else {
                rel -= bm;
                take = min64(left, o->block_size - rel);
                g = (uint64_t)o->c_block * o->block_size + rel;
                /* The last block may run past the disk: zeros there. */
                memset(p + *got, 0, take);
                if (g < o->size &&
                    (rc = read(ctx, g, p + *got,
                               (size_t)min64(take, o->size - g))) != 0)
                    return fail(err, errlen, rc < 0 ? rc : -EIO,
                                "VHD stream: reading the disk at %llu",
                                (unsigned long long)g);
            }
        } else {
            rel = at - end_blocks;
            take = min64(left, FOOTER_SIZE - rel);
            memcpy(p + *got, o->footer + rel, take);
        }
        *got += (size_t)take;
    }
    return 0;
}

bool xcp__vhd_out_data(xcp__vhd_out *o, uint64_t pos, uint64_t *guest,
                       uint64_t *len)
{
    uint64_t total = xcp__vhd_out_length(o), end_blocks, rel, g;
    uint32_t bm = bitmap_bytes(o->block_size);

    *guest = 0;
    *len = 0;
    if (pos >= total)
        return false;
    end_blocks = o->data_off + (uint64_t)o->nsent * o->stride;
    if (pos < o->data_off) {
        *len = o->data_off - pos;
        return false;
    }
    if (pos >= end_blocks) {
        *len = total - pos;
        return false;
    }
    rel = (pos - o->data_off) % o->stride;
    if (rel < bm) {
        *len = bm - rel;
        return false;
    }
    rel -= bm;
    seek_rank(o, (uint32_t)((pos - o->data_off) / o->stride));
    g = (uint64_t)o->c_block * o->block_size + rel;
    if (g >= o->size) {                 /* the last block's zeros */
        *len = o->block_size - rel;
        return false;
    }
    *guest = g;
    *len = min64(o->block_size - rel, o->size - g);
    return true;
}

void xcp__vhd_out_free(xcp__vhd_out *o)
{
    if (!o)
        return;
    free(o->map);
    free(o->loc);
    free(o);
}

/* ---- consuming ---------------------------------------------------------- */

enum in_state {
    IN_FOOTER,      /* the copy of the footer at 0 */
    IN_HEADER,      /* skipping to it, then reading it */
    IN_BAT,         /* skipping to the table, then reading it */
    IN_BITMAP,      /* skipping to the next block, then its bitmap */
    IN_DATA,        /* the block's sectors */
    IN_TAIL,        /* after the last block: ignored */
};

struct xcp__vhd_in {
    uint64_t max_size;
    enum in_state state;
    uint64_t pos;               /* stream bytes consumed */
    uint8_t meta[HEADER_SIZE];  /* footer or header being read */
    size_t have;
    uint32_t type;
    uint64_t size;
    uint64_t header_off, bat_off;
    uint32_t entries, block_size, bm_size;
    uint8_t *bat_raw;           /* the table as read (big-endian) */
    uint64_t bat_len;
    uint64_t *order;            /* allocated blocks by file offset:
                                 * sector << 32 | block */
    uint32_t norder, next;
    uint8_t *bm;                /* the current block's bitmap */
    uint64_t block_start;       /* stream offset of its data */
};

int xcp__vhd_in_new(xcp__vhd_in **out, uint64_t max_size, char *err,
                    size_t errlen)
{
    if (!(*out = calloc(1, sizeof(**out))))
        return fail(err, errlen, -ENOMEM, "VHD stream: out of memory");
    (*out)->max_size = max_size;
    return 0;
}

uint64_t xcp__vhd_in_virtual_size(const xcp__vhd_in *in)
{
    return in->state > IN_FOOTER ? in->size : 0;
}

bool xcp__vhd_in_differencing(const xcp__vhd_in *in)
{
    return in->type == XCP__VHD_DIFFERENCING;
}

static uint32_t bat_entry(const xcp__vhd_in *in, uint32_t i)
{
    return be32(in->bat_raw + (uint64_t)i * 4);
}

bool xcp__vhd_in_covered(const xcp__vhd_in *in, uint64_t offset,
                         uint32_t *block_size)
{
    uint64_t b;

    *block_size = in->block_size;
    if (in->state <= IN_BAT || !in->block_size)
        return false;
    b = offset / in->block_size;
    return b < in->entries && bat_entry(in, (uint32_t)b) != BAT_FREE;
}

static int check_footer(xcp__vhd_in *in, char *err, size_t errlen)
{
    const uint8_t *f = in->meta;

    if (memcmp(f + F_COOKIE, "conectix", 8))
        return fail(err, errlen, -EMEDIUMTYPE,
                    "VHD stream: no footer copy at its start (not a "
                    "dynamic VHD)");
    if (be32(f + F_CHECKSUM) != xcp__vhd_checksum(f, FOOTER_SIZE, F_CHECKSUM))
        return fail(err, errlen, -EBADMSG, "VHD stream: bad footer checksum");
    in->type = be32(f + F_TYPE);
    in->size = be64(f + F_CUR_SIZE);
    in->header_off = be64(f + F_DATA_OFFSET);
    if (in->type != XCP__VHD_DYNAMIC && in->type != XCP__VHD_DIFFERENCING)
        return fail(err, errlen, -EMEDIUMTYPE,
                    "VHD stream: disk type %u cannot be streamed", in->type);
    if (in->size % SECTOR)
        return fail(err, errlen, -EBADMSG, "VHD stream: bad virtual size");
    if (in->size > in->max_size)
        return fail(err, errlen, -EFBIG,
                    "VHD stream: virtual size %llu is larger than the disk "
                    "(%llu)", (unsigned long long)in->size,
                    (unsigned long long)in->max_size);
    if (in->header_off < FOOTER_SIZE || in->header_off == NO_OFFSET)
        return fail(err, errlen, -EBADMSG, "VHD stream: bad header offset");
    return 0;
}

static int check_header(xcp__vhd_in *in, char *err, size_t errlen)
{
    const uint8_t *h = in->meta;

    if (memcmp(h + D_COOKIE, "cxsparse", 8))
        return fail(err, errlen, -EBADMSG, "VHD stream: no dynamic header");
    if (be32(h + D_CHECKSUM) != xcp__vhd_checksum(h, HEADER_SIZE, D_CHECKSUM))
        return fail(err, errlen, -EBADMSG, "VHD stream: bad header checksum");
    in->bat_off = be64(h + D_TABLE_OFFSET);
    in->entries = be32(h + D_MAX_ENTRIES);
    in->block_size = be32(h + D_BLOCK_SIZE);
    if (in->block_size < MIN_BLOCK_SIZE || in->block_size > MAX_BLOCK_SIZE ||
        (in->block_size & (in->block_size - 1)))
        return fail(err, errlen, -EBADMSG, "VHD stream: bad block size %u",
                    in->block_size);
    if ((uint64_t)in->entries * in->block_size < in->size ||
        (uint64_t)in->entries > div_up(in->size, in->block_size) + 1)
        return fail(err, errlen, -EBADMSG,
                    "VHD stream: %u table entries for %llu bytes",
                    in->entries, (unsigned long long)in->size);
    if (in->bat_off < in->header_off + HEADER_SIZE)
        return fail(err, errlen, -EBADMSG,
                    "VHD stream: the block table lies before the header's "
                    "end");
    in->bm_size = bitmap_bytes(in->block_size);
    in->bat_len = (uint64_t)in->entries * 4;
    if (!(in->bat_raw = malloc(in->bat_len + 1)) ||
        !(in->bm = malloc(in->bm_size)))
        return fail(err, errlen, -ENOMEM, "VHD stream: out of memory");
    return 0;
}

static int by_key(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* The allocated blocks in file order; they must lie after the table and
 * not overlap. */
static int plan_blocks(xcp__vhd_in *in, char *err, size_t errlen)
{
    uint64_t end = in->bat_off + in->bat_len, off;
    uint32_t i;

    for (i = 0; i < in->entries; i++)
        in->norder += bat_entry(in, i) != BAT_FREE;
    if (!(in->order = malloc(((size_t)in->norder + 1) * sizeof(uint64_t))))
        return fail(err, errlen, -ENOMEM, "VHD stream: out of memory");
    in->norder = 0;
    for (i = 0; i < in->entries; i++)
        if (bat_entry(in, i) != BAT_FREE)
            in->order[in->norder++] = (uint64_t)bat_entry(in, i) << 32 | i;
    qsort(in->order, in->norder, sizeof(uint64_t), by_key);
    for (i = 0; i < in->norder; i++) {
        off = (in->order[i] >> 32) * SECTOR;
        if (off < end)
            return fail(err, errlen, -EBADMSG,
                        "VHD stream: block %u at %llu overlaps what comes "
                        "before it", (uint32_t)in->order[i],
                        (unsigned long long)off);
        end = off + in->bm_size + in->block_size;
    }
    return 0;
}

/* Skip stream bytes up to target; *used grows by what was skipped. */
static bool skip_to(xcp__vhd_in *in, uint64_t target, size_t n,
                    size_t *used)
{
    uint64_t gap = target > in->pos ? target - in->pos : 0;
    uint64_t take = min64(gap, n - *used);

    in->pos += take;
    *used += (size_t)take;
    return in->pos >= target;
}

/* Gather want bytes into dst (have counts them). */
static bool gather(xcp__vhd_in *in, uint8_t *dst, size_t want,
                   const uint8_t *p, size_t n, size_t *used)
{
    size_t take = (size_t)min64(want - in->have, n - *used);

    memcpy(dst + in->have, p + *used, take);
    in->have += take;
    in->pos += take;
    *used += take;
    if (in->have < want)
        return false;
    in->have = 0;
    return true;
}

/* The next block to read: bitmap state, or the tail. */
static void next_block(xcp__vhd_in *in)
{
    in->state = in->next < in->norder ? IN_BITMAP : IN_TAIL;
}

/* Block data bytes p[0, n) at block-relative rel: the runs of sectors
 * the bitmap holds go to write. */
static int block_data(xcp__vhd_in *in, uint64_t rel, const uint8_t *p,
                      size_t n, xcp__vhd_stream_write_cb write, void *ctx)
{
    uint64_t blk = (uint32_t)in->order[in->next];
    uint64_t base = blk * in->block_size;
    size_t k = 0, start;
    int rc;

    while (k < n) {
        uint64_t s = (rel + k) / SECTOR;
        size_t run = (size_t)min64(n - k, SECTOR - (rel + k) % SECTOR);
        bool held = bit(in->bm, s);

        start = k;
        k += run;
        while (k < n && bit(in->bm, (rel + k) / SECTOR) == held) {
            run = (size_t)min64(n - k, SECTOR);
            k += run;
        }
        if (!held || base + rel + start >= in->size)
            continue;
        run = (size_t)min64(k - start, in->size - (base + rel + start));
        if ((rc = write(ctx, base + rel + start, p + start, run)) != 0)
            return rc;
    }
    return 0;
}

int xcp__vhd_in_feed(xcp__vhd_in *in, const void *buf, size_t n,
                     xcp__vhd_stream_write_cb write, void *ctx, char *err,
                     size_t errlen)
{
    const uint8_t *p = buf;
    size_t used = 0;
    uint64_t rel, take;
    int rc;

    while (used < n) {
        switch (in->state) {
        case IN_FOOTER:
            if (!gather(in, in->meta, FOOTER_SIZE, p, n, &used))
                break;
            if ((rc = check_footer(in, err, errlen)) < 0)
                return rc;
            in->state = IN_HEADER;
            break;
        case IN_HEADER:
            if (in->have == 0 && !skip_to(in, in->header_off, n, &used))
                break;
            if (in->pos != in->header_off + in->have)
                return fail(err, errlen, -EBADMSG,
                            "VHD stream: the header lies before the footer "
                            "copy's end");
            if (!gather(in, in->meta, HEADER_SIZE, p, n, &used))
                break;
            if ((rc = check_header(in, err, errlen)) < 0)
                return rc;
            in->state = IN_BAT;
            break;
        case IN_BAT:
            if (in->have == 0 && !skip_to(in, in->bat_off, n, &used))
                break;
            take = min64(in->bat_len - in->have, n - used);
            memcpy(in->bat_raw + in->have, p + used, take);
            in->have += take;
            in->pos += take;
            used += take;
            if (in->have < in->bat_len)
                break;
            in->have = 0;
            if ((rc = plan_blocks(in, err, errlen)) < 0)
                return rc;
            next_block(in);
            break;
        case IN_BITMAP:
            if (in->have == 0 &&
                !skip_to(in, (in->order[in->next] >> 32) * SECTOR, n,
                         &used))
                break;
            if (!gather(in, in->bm, in->bm_size, p, n, &used))
                break;
            in->block_start = in->pos;
            in->state = IN_DATA;
            break;
        case IN_DATA:
            rel = in->pos - in->block_start;
            take = min64(in->block_size - rel, n - used);
            if ((rc = block_data(in, rel, p + used, (size_t)take, write,
                                 ctx)) != 0)
                return rc;
            in->pos += take;
            used += (size_t)take;
            if (in->pos - in->block_start == in->block_size) {
                in->next++;
                next_block(in);
            }
            break;
        case IN_TAIL:
            in->pos += n - used;
            used = n;
            break;
        }
    }
    return 0;
}

int xcp__vhd_in_finish(xcp__vhd_in *in, char *err, size_t errlen)
{
    static const char *const what[] = {
        "the footer copy", "the header", "the block table", "a block",
        "a block", "",
    };

    if (in->state == IN_TAIL)
        return 0;
    return fail(err, errlen, -EBADMSG,
                "VHD stream: it ends at byte %llu, in %s",
                (unsigned long long)in->pos, what[in->state]);
}

void xcp__vhd_in_free(xcp__vhd_in *in)
{
    if (!in)
        return;
    free(in->bat_raw);
    free(in->order);
    free(in->bm);
    free(in);
}
