/*
 * vhd.c - the VHD image library behind the SR drivers: reading, writing,
 * extents, resizing and the small public accessors.
 *
 * A block is a sector bitmap (padded to 512 bytes) and block_size bytes of
 * data.  A set bit means this image holds the sector; a clear one means
 * the parent's (differencing disk) or zeros (dynamic disk).  New blocks
 * are appended where the footer was, the footer moving after them first,
 * so a crash leaks space but never leaves the file without a footer or
 * a BAT entry pointing at unwritten data.
 *
 * Everything read from the file is treated as hostile: the BAT and the
 * locators are checked against the file when opened (vhd_meta.c), so
 * what is read here cannot point outside it.
 *
 * This file: I/O.  vhd_meta.c opens and creates images, vhd_chain.c
 * re-parents, copies and commits (shared: vhd_int.h).
 */
#include "vhd_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int xcp__vhd_check_range(xcp__vhd *v, uint64_t off, uint64_t len,
                         char *err, size_t errlen)
{
    if (off > v->size || len > v->size - off)
        return fail(err, errlen, -EINVAL,
                    "%s: range %llu+%llu is beyond the virtual size %llu",
                    v->path, (unsigned long long)off, (unsigned long long)len,
                    (unsigned long long)v->size);
    return 0;
}

int xcp__vhd_check_writable(xcp__vhd *v, char *err, size_t errlen)
{
    if (v->flags & XCP__VHD_RDONLY)
        return fail(err, errlen, -EROFS, "%s: opened read-only", v->path);
    return 0;
}

uint64_t xcp__vhd_virtual_size(const xcp__vhd *v)
{
    return v->size;
}

/* File offset of block b's bitmap. */
static uint64_t block_off(const xcp__vhd *v, uint32_t b)
{
    return (uint64_t)v->bat[b] * SECTOR;
}

static bool bit(const uint8_t *bm, uint32_t i)
{
    return bm[i >> 3] & (0x80 >> (i & 7));
}

/* Load block b's bitmap into v->bm (a one-entry cache). */
static int load_bitmap(xcp__vhd *v, uint32_t b, char *err, size_t errlen)
{
    ssize_t r;

    if (v->bm_block == b)
        return 0;
    v->bm_block = BAT_FREE;
    r = pread_full(v->fd, v->bm, v->bitmap_size, block_off(v, b));
    if (r != (ssize_t)v->bitmap_size)
        return fail(err, errlen, r < 0 ? (int)r : -EBADMSG,
                    "%s: reading the bitmap of block %u failed", v->path, b);
    v->bm_block = b;
    return 0;
}

int xcp__vhd_own_extent(xcp__vhd *v, uint64_t off, uint64_t max,
                        bool *held, uint64_t *len, char *err, size_t errlen)
{
    uint64_t in, end;
    uint32_t b, s;
    int ret;

    if (v->type == XCP__VHD_FIXED) {
        *held = true;
        *len = max;
        return 0;
    }
    if ((ret = xcp__vhd_need_bat(v, err, errlen)) < 0)
        return ret;
    b = (uint32_t)(off / v->block_size);
    in = off % v->block_size;
    max = min64(max, v->block_size - in);
    if (b >= v->entries || v->bat[b] == BAT_FREE) {
        *held = false;
        *len = max;
        return 0;
    }
    ret = load_bitmap(v, b, err, errlen);
    if (ret < 0)
        return ret;
    s = (uint32_t)(in / SECTOR);
    *held = bit(v->bm, s);
    for (s++; s < v->spb && (uint64_t)s * SECTOR < in + max &&
              bit(v->bm, s) == *held; s++)
        ;
    end = (uint64_t)s * SECTOR;
    *len = min64(max, end - in);
    return 0;
}

/* What the parent chain shows at this level; zeros past its end. */
static int read_below(xcp__vhd *v, uint64_t off, uint8_t *buf, uint64_t len,
                      char *err, size_t errlen)
{
    uint64_t m = 0;
    int ret;

    if (v->type != XCP__VHD_DIFFERENCING) {
        memset(buf, 0, len);
        return 0;
    }
    if (!v->below)
        return fail(err, errlen, -ENXIO,
                    "%s: sector %llu comes from the parent, which was not "
                    "opened", v->path, (unsigned long long)(off / SECTOR));
    if (off < v->below->size) {
        m = min64(len, v->below->size - off);
        ret = xcp__vhd_read_at(v->below, off, buf, m, err, errlen);
        if (ret < 0)
            return ret;
    }
    memset(buf + m, 0, len - m);
    return 0;
}

int xcp__vhd_read_at(xcp__vhd *v, uint64_t off, uint8_t *buf, uint64_t len,
                     char *err, size_t errlen)
{
    uint64_t n, host;
    bool held;
    ssize_t r;
    int ret;

    while (len) {
        ret = xcp__vhd_own_extent(v, off, len, &held, &n, err, errlen);
        if (ret < 0)
            return ret;
        if (held) {
            host = v->type == XCP__VHD_FIXED
                       ? off
                       : block_off(v, (uint32_t)(off / v->block_size)) +
                             v->bitmap_size + off % v->block_size;
            r = pread_full(v->fd, buf, n, host);
            if (r < 0)
                return fail(err, errlen, (int)r, "%s: reading at %llu: %s",
                            v->path, (unsigned long long)host,
                            strerror((int)-r));
            memset(buf + r, 0, n - (uint64_t)r);
        } else {
            ret = read_below(v, off, buf, n, err, errlen);
            if (ret < 0)
                return ret;
        }
        off += n;
        buf += n;
        len -= n;
    }
    return 0;
}

int xcp__vhd_read(xcp__vhd *v, uint64_t offset, void *buf, size_t len,
                  char *err, size_t errlen)
{
    int ret = xcp__vhd_check_range(v, offset, len, err, errlen);

    if (ret < 0)
        return ret;
    return xcp__vhd_read_at(v, offset, buf, len, err, errlen);
}

/* Whether [off, ...) is held anywhere in the chain, and for how long. */
static int chain_extent(xcp__vhd *v, uint64_t off, uint64_t max, bool *data,
                        uint64_t *len, char *err, size_t errlen)
{
    int ret = xcp__vhd_own_extent(v, off, max, data, len, err, errlen);

    if (ret < 0 || *data || v->type != XCP__VHD_DIFFERENCING || !v->below ||
        off >= v->below->size)
        return ret;
    return chain_extent(v->below, off, min64(*len, v->below->size - off),
                        data, len, err, errlen);
}

int xcp__vhd_extent(xcp__vhd *v, uint64_t offset, uint64_t max,
                    bool *data, uint64_t *len, char *err, size_t errlen)
{
    int ret = xcp__vhd_check_range(v, offset, max, err, errlen);

    if (ret == 0 && !max)
        ret = fail(err, errlen, -EINVAL, "%s: empty extent query", v->path);
    if (ret < 0)
        return ret;
    return chain_extent(v, offset, max, data, len, err, errlen);
}

int xcp__vhd_held_extent(xcp__vhd *v, uint64_t offset, uint64_t max,
                         bool *held, uint64_t *len, char *err, size_t errlen)
{
    int ret = xcp__vhd_check_range(v, offset, max, err, errlen);

    if (ret == 0 && !max)
        ret = fail(err, errlen, -EINVAL, "%s: empty extent query", v->path);
    if (ret < 0)
        return ret;
    return xcp__vhd_own_extent(v, offset, max, held, len, err, errlen);
}

static int map_at(xcp__vhd *v, uint64_t off, uint64_t max, int *fd,
                  uint64_t *pos, uint64_t *len, char *err, size_t errlen)
{
    uint64_t host;
    bool held;
    int ret;

    *fd = -1;
    *pos = 0;
    if ((ret = xcp__vhd_own_extent(v, off, max, &held, len, err,
                                   errlen)) < 0)
        return ret;
    if (!held) {
        if (v->type == XCP__VHD_DIFFERENCING && v->below &&
            off < v->below->size)
            return map_at(v->below, off, min64(*len, v->below->size - off),
                          fd, pos, len, err, errlen);
        return 0;               /* zeros (or a parent not opened: read) */
    }
    host = v->type == XCP__VHD_FIXED
               ? off
               : block_off(v, (uint32_t)(off / v->block_size)) +
                     v->bitmap_size + off % v->block_size;
    if (host >= v->file_size)
        return 0;               /* what the file lacks reads as zeros */
    *fd = v->fd;
    *pos = host;
    *len = min64(*len, v->file_size - host);
    return 0;
}

int xcp__vhd_map(xcp__vhd *v, uint64_t offset, uint64_t max, int *fd,
                 uint64_t *pos, uint64_t *len, char *err, size_t errlen)
{
    int ret = xcp__vhd_check_range(v, offset, max, err, errlen);

    if (ret == 0 && !max)
        ret = fail(err, errlen, -EINVAL, "%s: empty map query", v->path);
    if (ret < 0)
        return ret;
    return map_at(v, offset, max, fd, pos, len, err, errlen);
}

void xcp__vhd_start_writeback(xcp__vhd *v)
{
    sync_file_range(v->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

/* ------------------------------------------------------------------ */
/* Writing                                                             */

/* Give block b room at the end of the file: footer, bitmap, BAT entry. */
static int alloc_block(xcp__vhd *v, uint32_t b, char *err, size_t errlen)
{
    uint8_t entry[4];
    uint64_t at;
    int ret;

    ret = xcp__vhd_append(v, (uint64_t)v->bitmap_size + v->block_size, &at,
                          err, errlen);
    if (ret < 0)
        return ret;
    /* The old footer lay where the bitmap goes: overwrite it all. */
    memset(v->bm, 0, v->bitmap_size);
    v->bm_block = BAT_FREE;
    ret = xcp__vhd_pwrite(v, v->bm, v->bitmap_size, at, "a bitmap", err,
                      errlen);
    if (ret < 0)
        return ret;
    put32(entry, (uint32_t)(at / SECTOR));
    ret = xcp__vhd_pwrite(v, entry, 4, v->bat_off + 4ull * b, "the BAT", err,
                      errlen);
    if (ret < 0)
        return ret;
    v->bat[b] = (uint32_t)(at / SECTOR);
    v->bm_block = b;
    return 0;
}

/* Write whole sectors [off, off+len) within one block. */
static int write_in_block(xcp__vhd *v, uint64_t off, const uint8_t *data,
                          uint64_t len, char *err, size_t errlen)
{
    uint32_t b = (uint32_t)(off / v->block_size), s, first, last;
    uint64_t in = off % v->block_size;
    bool changed = false;
    int ret;

    if (v->bat[b] == BAT_FREE) {
        /* Zeros over nothing read as zeros already, without a parent. */
        if (!data && v->type == XCP__VHD_DYNAMIC)
            return 0;
        ret = alloc_block(v, b, err, errlen);
    } else {
        ret = load_bitmap(v, b, err, errlen);
    }
    if (ret < 0)
        return ret;
    ret = xcp__vhd_pwrite(v, data, len, block_off(v, b) + v->bitmap_size + in,
                      "data", err, errlen);
    if (ret < 0)
        return ret;
    first = (uint32_t)(in / SECTOR);
    last = (uint32_t)((in + len) / SECTOR);
    for (s = first; s < last; s++) {
        if (!bit(v->bm, s)) {
            v->bm[s >> 3] |= (uint8_t)(0x80 >> (s & 7));
            changed = true;
        }
    }
    /* Data first, then the bits that make it visible. */
    if (changed)
        ret = xcp__vhd_pwrite(v, v->bm + first / 8 / SECTOR * SECTOR,
                          div_up(last, 8 * SECTOR) * SECTOR -
                              first / 8 / SECTOR * SECTOR,
                          block_off(v, b) + first / 8 / SECTOR * SECTOR,
                          "a bitmap", err, errlen);
    return ret;
}

/* Write a part of one sector: read it through the chain, patch, write. */
static int write_partial(xcp__vhd *v, uint64_t off, const uint8_t *data,
                         uint64_t len, char *err, size_t errlen)
{
    uint8_t sec[SECTOR];
    uint64_t base = off / SECTOR * SECTOR;
    int ret = xcp__vhd_read_at(v, base, sec, SECTOR, err, errlen);

    if (ret < 0)
        return ret;
    if (data)
        memcpy(sec + (off - base), data, len);
    else
        memset(sec + (off - base), 0, len);
    return xcp__vhd_write_at(v, base, sec, SECTOR, err, errlen);
}

int xcp__vhd_write_at(xcp__vhd *v, uint64_t off, const uint8_t *data,
                      uint64_t len, char *err, size_t errlen)
{
    uint64_t n;
    int ret;

    if (v->type == XCP__VHD_FIXED)
        return xcp__vhd_pwrite(v, data, len, off, "data", err, errlen);
    while (len) {
        if (off % SECTOR || len < SECTOR) {
            n = min64(len, SECTOR - off % SECTOR);
            ret = write_partial(v, off, data, n, err, errlen);
        } else {
            n = min64(len / SECTOR * SECTOR,
                      v->block_size - off % v->block_size);
            ret = write_in_block(v, off, data, n, err, errlen);
        }
        if (ret < 0)
            return ret;
        off += n;
        len -= n;
        if (data)
            data += n;
    }
    return 0;
}

int xcp__vhd_write(xcp__vhd *v, uint64_t offset, const void *buf,
                   size_t len, char *err, size_t errlen)
{
    int ret = xcp__vhd_check_writable(v, err, errlen);

    if (ret == 0)
        ret = xcp__vhd_check_range(v, offset, len, err, errlen);
    if (ret < 0)
        return ret;
    return xcp__vhd_write_at(v, offset, buf, len, err, errlen);
}

/* ------------------------------------------------------------------ */
/* Resizing                                                            */

/* Copy len bytes from one place of the file to another (fresh, so
 * all-zero chunks past the first sector are left as holes). */
static int move_bytes(xcp__vhd *v, uint64_t from, uint64_t to, uint64_t len,
                      char *err, size_t errlen)
{
    uint8_t *buf = malloc(1u << 20);
    uint64_t done, n;
    ssize_t r;
    int ret = 0;

    if (!buf)
        return fail(err, errlen, -ENOMEM, "%s: out of memory", v->path);
    for (done = 0; done < len && ret == 0; done += n) {
        n = min64(len - done, 1u << 20);
        r = pread_full(v->fd, buf, n, from + done);
        if (r != (ssize_t)n)
            ret = fail(err, errlen, r < 0 ? (int)r : -EBADMSG,
                       "%s: reading at %llu to move it failed", v->path,
                       (unsigned long long)(from + done));
        else if (done == 0 || !all_zero(buf, n))
            ret = xcp__vhd_pwrite(v, buf, n, to + done, "a moved area", err,
                              errlen);
    }
    free(buf);
    return ret;
}

/*
 * Make room for a BAT of need entries, as vhd-util does: the blocks and
 * locators in the way move to the end of the file, each made durable
 * before the BAT entry or the header points at its new place, so a crash
 * at any point leaves a consistent image (and some leaked space).
 */
static int make_bat_room(xcp__vhd *v, uint64_t need, char *err,
                         size_t errlen)
{
    uint64_t hdr_off = be64(v->footer + F_DATA_OFFSET), off, at, stride;
    uint64_t end = div_up(v->bat_off + need * 4, SECTOR) * SECTOR;
    uint8_t entry[4];
    bool moved_loc = false;
    uint32_t b;
    int i, ret = 0;

    if (hdr_off > v->bat_off && hdr_off < end)
        return fail(err, errlen, -ENOSPC, "%s: the BAT cannot grow over the "
                    "dynamic disk header that follows it", v->path);
    stride = (uint64_t)v->bitmap_size + v->block_size;
    for (b = 0; b < v->entries && ret == 0; b++) {
        off = block_off(v, b);
        if (v->bat[b] == BAT_FREE || off < v->bat_off || off >= end)
            continue;
        ret = xcp__vhd_append(v, stride, &at, err, errlen);
        if (ret == 0)
            ret = move_bytes(v, off, at, stride, err, errlen);
        if (ret == 0)
            ret = xcp__vhd_flush(v, err, errlen);
        if (ret == 0) {
            put32(entry, (uint32_t)(at / SECTOR));
            ret = xcp__vhd_pwrite(v, entry, 4, v->bat_off + 4ull * b, "the BAT",
                              err, errlen);
        }
        if (ret == 0)
            v->bat[b] = (uint32_t)(at / SECTOR);
    }
    for (i = 0; i < N_LOCATORS && ret == 0; i++) {
        if (!v->loc[i].code || v->loc[i].offset < v->bat_off ||
            v->loc[i].offset >= end)
            continue;
        ret = xcp__vhd_append(v, v->loc[i].space, &at, err, errlen);
        if (ret == 0)
            ret = move_bytes(v, v->loc[i].offset, at, v->loc[i].space, err,
                             errlen);
        if (ret == 0) {
            v->loc[i].offset = at;
            put64(v->header + D_LOCATORS + i * LOC_SIZE + 16, at);
            moved_loc = true;
        }
    }
    if (ret == 0 && moved_loc)
        ret = xcp__vhd_flush(v, err, errlen);
    if (ret == 0 && moved_loc)
        ret = xcp__vhd_write_header(v, err, errlen);
    if (ret == 0)
        ret = xcp__vhd_flush(v, err, errlen);
    if (ret == 0)
        v->room = (uint32_t)((end - v->bat_off) / 4);
    return ret;
}

int xcp__vhd_resize(xcp__vhd *v, uint64_t new_size, char *err,
                    size_t errlen)
{
    uint64_t need, bat_end;
    uint32_t entries, *bat;
    uint8_t *raw;
    size_t i;
    int ret = xcp__vhd_check_writable(v, err, errlen);

    if (ret < 0)
        return ret;
    new_size = div_up(new_size, SECTOR) * SECTOR;
    if (new_size > XCP__VHD_MAX_SIZE)
        return xcp__vhd_too_big(v->path, new_size, err, errlen);
    if (new_size < v->size)
        return fail(err, errlen, -ENOTSUP, "%s: shrinking from %llu to %llu "
                    "bytes is not supported", v->path,
                    (unsigned long long)v->size,
                    (unsigned long long)new_size);
    if (new_size == v->size)
        return 0;
    if (v->type == XCP__VHD_FIXED)
        return fail(err, errlen, -ENOTSUP,
                    "%s: resizing a fixed disk is not supported", v->path);
    need = div_up(new_size, v->block_size);
    if (need > v->room) {
        ret = make_bat_room(v, need, err, errlen);
        if (ret < 0)
            return ret;
    }
    entries = (uint32_t)need;
    if (entries > v->entries) {
        bat = realloc(v->bat, (size_t)entries * 4);
        raw = malloc((size_t)(entries - v->entries) * 4);
        if (bat)
            v->bat = bat;
        if (!bat || !raw) {
            free(raw);
            return fail(err, errlen, -ENOMEM, "%s: out of memory", v->path);
        }
        memset(raw, 0xff, (size_t)(entries - v->entries) * 4);
        /* A BAT growing over the footer of an empty image moves it. */
        bat_end = div_up(v->bat_off + 4ull * entries, SECTOR) * SECTOR;
        ret = 0;
        if (bat_end > v->footer_off)
            ret = xcp__vhd_write_footer(v, bat_end, err, errlen);
        if (ret == 0)
            ret = xcp__vhd_pwrite(v, raw, (uint64_t)(entries - v->entries) * 4,
                              v->bat_off + 4ull * v->entries, "the BAT",
                              err, errlen);
        free(raw);
        if (ret < 0)
            return ret;
        for (i = v->entries; i < entries; i++)
            v->bat[i] = BAT_FREE;
        v->entries = entries;
        put32(v->header + D_MAX_ENTRIES, entries);
        ret = xcp__vhd_write_header(v, err, errlen);
        if (ret < 0)
            return ret;
    }
    /* Readers size a disk by its geometry unless the creator is one
     * known to use the current size (QEMU's list); the size we set is
     * rarely a whole geometry, so sign as blktap does. */
    memcpy(v->footer + F_CREATOR_APP, "tap", 4);
    put64(v->footer + F_CUR_SIZE, new_size);
    put32(v->footer + F_GEOMETRY, xcp__vhd_geometry(new_size));
    ret = xcp__vhd_write_footer(v, v->footer_off, err, errlen);
    if (ret == 0)
        v->size = new_size;
    return ret;
}

/* ------------------------------------------------------------------ */
/* Information                                                         */

int xcp__vhd_get_info(xcp__vhd *v, xcp__vhd_info *info, char *err,
                      size_t errlen)
{
    struct stat st;

    memset(info, 0, sizeof(*info));
    if (fstat(v->fd, &st) < 0)
        return fail(err, errlen, -errno, "%s: %s", v->path, strerror(errno));
    info->format = "vhd";
    info->disk_type = v->type;
    info->virtual_size = v->size;
    info->block_size = v->block_size;
    info->max_table_entries = v->entries;
    info->max_size = v->type == XCP__VHD_FIXED ? v->size
                     : v->bat ? min64((uint64_t)v->room * v->block_size,
                                      XCP__VHD_MAX_SIZE)
                              : 0;
    info->file_size = (uint64_t)st.st_size;
    info->allocated_bytes = (uint64_t)st.st_blocks * 512;
    xcp__vhd_uuid_str(v->footer + F_UUID, info->uuid);
    info->has_parent = v->has_parent;
    if (v->has_parent) {
        xcp__vhd_uuid_str(v->header + D_PARENT_UUID, info->parent_uuid);
        if (v->parent[0])
            snprintf(info->parent, sizeof(info->parent), "%s", v->parent);
        else
            xcp__vhd_find_parent(v, info->parent, sizeof(info->parent));
    }
    return 0;
}
