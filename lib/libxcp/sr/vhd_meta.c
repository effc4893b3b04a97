/*
 * vhd_meta.c - VHD metadata: footer, dynamic disk header, parent
 * locators; opening (strict validation of hostile images), creating,
 * closing.
 *
 * Written from Microsoft's "Virtual Hard Disk Image Format Specification"
 * (v1.0), with the conventions of blktap's vhd-util that XAPI relies on
 * (creator "tap", locator data space counted in sectors or bytes).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "vhd_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Seconds from the Unix epoch to VHD's (2000-01-01 00:00:00 UTC). */
#define VHD_EPOCH 946684800ll

/* ------------------------------------------------------------------ */
/* Checksums, geometry, identifiers                                    */

uint32_t xcp__vhd_checksum(const uint8_t *p, size_t len, size_t field)
{
    uint32_t sum = 0;
    size_t i;

    for (i = 0; i < len; i++)
        if (i < field || i >= field + 4)
            sum += p[i];
    return ~sum;
}

uint32_t xcp__vhd_geometry(uint64_t size)
{
    uint64_t total = size / SECTOR, cth;
    uint32_t heads, spt, cyl;

    if (total > 65535ull * 16 * 255)
        total = 65535ull * 16 * 255;
    if (total >= 65535ull * 16 * 63) {
        spt = 255;
        heads = 16;
        cth = total / spt;
    } else {
        spt = 17;
        cth = total / spt;
        heads = (uint32_t)((cth + 1023) / 1024);
        if (heads < 4)
            heads = 4;
        if (cth >= heads * 1024ull || heads > 16) {
            spt = 31;
            heads = 16;
            cth = total / spt;
        }
        if (cth >= heads * 1024ull) {
            spt = 63;
            heads = 16;
            cth = total / spt;
        }
    }
    cyl = (uint32_t)(cth / heads);
    return cyl << 16 | heads << 8 | spt;
}

void xcp__vhd_uuid_str(const uint8_t *u, char *out)
{
    static const char hex[] = "0123456789abcdef";
    size_t i, o = 0;

    for (i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[u[i] >> 4];
        out[o++] = hex[u[i] & 15];
    }
    out[o] = '\0';
}

static uint32_t vhd_now(void)
{
    time_t t = time(NULL);

    return t > VHD_EPOCH ? (uint32_t)(t - VHD_EPOCH) : 0;
}

void xcp__vhd_footer_init(uint8_t *f, uint32_t type, uint64_t size)
{
    uint8_t *u = f + F_UUID;
    size_t got = 0;
    ssize_t r;

    memset(f, 0, FOOTER_SIZE);
    memcpy(f + F_COOKIE, "conectix", 8);
    put32(f + F_FEATURES, FEATURES_RESERVED);
    put32(f + F_VERSION, VHD_VERSION);
    put64(f + F_DATA_OFFSET, type == XCP__VHD_FIXED ? NO_OFFSET
                                                    : FOOTER_SIZE);
    put32(f + F_TIMESTAMP, vhd_now());
    memcpy(f + F_CREATOR_APP, "tap", 4);        /* with its NUL, as blktap */
    put32(f + F_CREATOR_VER, 0x00010003u);
    memcpy(f + F_CREATOR_OS, "Lnx ", 4);
    put64(f + F_ORIG_SIZE, size);
    put64(f + F_CUR_SIZE, size);
    put32(f + F_GEOMETRY, xcp__vhd_geometry(size));
    put32(f + F_TYPE, type);
    while (got < 16) {
        r = getrandom(u + got, 16 - got, 0);
        if (r <= 0 && errno != EINTR)
            break;
        if (r > 0)
            got += (size_t)r;
    }
    if (got < 16) {             /* no entropy: still unique enough here */
        put64(u, (uint64_t)time(NULL));
        put64(u + 8, (uint64_t)getpid() << 32 ^ (uint64_t)clock());
    }
    u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);
    u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
}

/* ------------------------------------------------------------------ */
/* Writing metadata                                                    */

/* Source of zeros for writes of zeros (read-only). */
static const uint8_t zero_buf[64 * 1024];

int xcp__vhd_pwrite(xcp__vhd *v, const uint8_t *data, uint64_t len,
                    uint64_t host, const char *what, char *err,
                    size_t errlen)
{
    uint64_t n;
    int ret;

    while (len) {
        n = data ? len : min64(len, sizeof(zero_buf));
        ret = pwrite_full(v->fd, data ? data : zero_buf, n, host);
        if (ret < 0)
            return fail(err, errlen, ret, "%s: writing %s at %llu: %s",
                        v->path, what, (unsigned long long)host,
                        strerror(-ret));
        if (host + n > v->file_size)
            v->file_size = host + n;
        v->written = true;
        host += n;
        len -= n;
        if (data)
            data += n;
    }
    return 0;
}

int xcp__vhd_too_big(const char *path, uint64_t size, char *err,
                     size_t errlen)
{
    return fail(err, errlen, -EFBIG, "%s: virtual size %llu is beyond the "
                "VHD limit of 2040 GiB (%llu bytes)", path,
                (unsigned long long)size, XCP__VHD_MAX_SIZE);
}

int xcp__vhd_write_footer(xcp__vhd *v, uint64_t off, char *err,
                          size_t errlen)
{
    int ret;

    put32(v->footer + F_CHECKSUM, 0);
    put32(v->footer + F_CHECKSUM,
          xcp__vhd_checksum(v->footer, FOOTER_SIZE, F_CHECKSUM));
    ret = xcp__vhd_pwrite(v, v->footer, FOOTER_SIZE, off, "the footer", err,
                          errlen);
    if (ret == 0 && v->type != XCP__VHD_FIXED)
        ret = xcp__vhd_pwrite(v, v->footer, FOOTER_SIZE, 0,
                              "the footer copy", err, errlen);
    if (ret == 0)
        v->footer_off = off;
    return ret;
}

int xcp__vhd_write_header(xcp__vhd *v, char *err, size_t errlen)
{
    put32(v->header + D_CHECKSUM, 0);
    put32(v->header + D_CHECKSUM,
          xcp__vhd_checksum(v->header, HEADER_SIZE, D_CHECKSUM));
    return xcp__vhd_pwrite(v, v->header, HEADER_SIZE,
                           be64(v->footer + F_DATA_OFFSET),
                           "the dynamic disk header", err, errlen);
}

int xcp__vhd_append(xcp__vhd *v, uint64_t len, uint64_t *off, char *err,
                    size_t errlen)
{
    uint64_t at = v->footer_off;
    int ret;

    len = div_up(len, SECTOR) * SECTOR;
    /* BAT entries are 32-bit sector numbers. */
    if ((at + len) / SECTOR > BAT_FREE - 1)
        return fail(err, errlen, -EFBIG, "%s: the file cannot grow past "
                    "2 TiB (VHD's 32-bit sector offsets)", v->path);
    ret = xcp__vhd_write_footer(v, at + len, err, errlen);
    if (ret < 0)
        return ret;
    /* What follows the BAT bounds how far it can grow in place. */
    if (v->bat && at > v->bat_off && (at - v->bat_off) / 4 < v->room)
        v->room = (uint32_t)((at - v->bat_off) / 4);
    if (v->room < v->entries)
        v->room = v->entries;
    *off = at;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Names: UTF-8 <-> UTF-16, relative paths                             */

/* Encode s as UTF-16 (big- or little-endian) into out; returns the
 * bytes written, or -1 when s is not UTF-8 or out is too small. */
static long to_utf16(const char *s, uint8_t *out, size_t cap, bool be)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t o = 0;
    uint32_t c, u[2];
    int n, i, k;

    while (*p) {
        if (*p < 0x80) {
            c = *p;
            n = 0;
        } else if ((*p & 0xe0) == 0xc0) {
            c = *p & 0x1f;
            n = 1;
        } else if ((*p & 0xf0) == 0xe0) {
            c = *p & 0x0f;
            n = 2;
        } else if ((*p & 0xf8) == 0xf0) {
            c = *p & 0x07;
            n = 3;
        } else {
            return -1;
        }
        p++;
        for (i = 0; i < n; i++, p++) {
            if ((*p & 0xc0) != 0x80)
                return -1;
            c = c << 6 | (*p & 0x3f);
        }
        if (c > 0x10ffff || (c >= 0xd800 && c < 0xe000))
            return -1;
        k = 1;
        u[0] = c;
        if (c >= 0x10000) {
            c -= 0x10000;
            u[0] = 0xd800 | c >> 10;
            u[1] = 0xdc00 | (c & 0x3ff);
            k = 2;
        }
        for (i = 0; i < k; i++) {
            if (o + 2 > cap)
                return -1;
            out[o + !be] = (uint8_t)(u[i] >> 8);
            out[o + be] = (uint8_t)u[i];
            o += 2;
        }
    }
    return (long)o;
}

/* Decode UTF-16 in[0, len) (up to a NUL unit) into out as UTF-8; -1 when
 * malformed or out is too small. */
long xcp__vhd_utf16(const char *s, uint8_t *out, size_t cap, bool be)
{
    return to_utf16(s, out, cap, be);
}

static int from_utf16(const uint8_t *in, size_t len, bool be, char *out,
                      size_t cap)
{
    size_t i, o = 0;
    uint32_t c, d;

    for (i = 0; i + 1 < len; i += 2) {
        c = be ? (uint32_t)in[i] << 8 | in[i + 1]
               : (uint32_t)in[i + 1] << 8 | in[i];
        if (c == 0)
            break;
        if (c >= 0xd800 && c < 0xdc00) {
            if (i + 3 >= len)
                return -1;
            i += 2;
            d = be ? (uint32_t)in[i] << 8 | in[i + 1]
                   : (uint32_t)in[i + 1] << 8 | in[i];
            if (d < 0xdc00 || d >= 0xe000)
                return -1;
            c = 0x10000 + ((c - 0xd800) << 10 | (d - 0xdc00));
        } else if (c >= 0xdc00 && c < 0xe000) {
            return -1;
        }
        if (o + 5 > cap)
            return -1;
        if (c < 0x80) {
            out[o++] = (char)c;
        } else if (c < 0x800) {
            out[o++] = (char)(0xc0 | c >> 6);
            out[o++] = (char)(0x80 | (c & 0x3f));
        } else if (c < 0x10000) {
            out[o++] = (char)(0xe0 | c >> 12);
            out[o++] = (char)(0x80 | (c >> 6 & 0x3f));
            out[o++] = (char)(0x80 | (c & 0x3f));
        } else {
            out[o++] = (char)(0xf0 | c >> 18);
            out[o++] = (char)(0x80 | (c >> 12 & 0x3f));
            out[o++] = (char)(0x80 | (c >> 6 & 0x3f));
            out[o++] = (char)(0x80 | (c & 0x3f));
        }
    }
    if (o >= cap)
        return -1;
    out[o] = '\0';
    return 0;
}

/* The directory part of path (".", when it has none) into out. */
static void dir_of(const char *path, char *out, size_t cap)
{
    const char *slash = strrchr(path, '/');

    if (!slash)
        snprintf(out, cap, ".");
    else if (slash == path)
        snprintf(out, cap, "/");
    else
        snprintf(out, cap, "%.*s", (int)(slash - path), path);
}

/* The real path to as seen from the real directory from: "./x",
 * "../a/x" ...; -1 when it does not fit out. */
static int relative_to(const char *from, const char *to, char *out,
                       size_t cap)
{
    size_t i, common = 0, o = 0;
    int n;

    /* from[common] is '/' or the end of from; to[common] is '/'. */
    for (i = 0; from[i] && from[i] == to[i]; i++)
        if (from[i] == '/')
            common = i;
    if (!from[i] && to[i] == '/')
        common = i;
    out[0] = '\0';
    for (i = common; from[i]; i++) {
        if (from[i] == '/' && from[i + 1]) {
            if (o + 4 > cap)
                return -1;
            memcpy(out + o, "../", 4);
            o += 3;
        }
    }
    n = snprintf(out + o, cap - o, "%s%s", o ? "" : "./", to + common + 1);
    return n < 0 || (size_t)n >= cap - o ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* Parent locators                                                     */

static void locator_put(uint8_t *e, const struct locator *l)
{
    memset(e, 0, LOC_SIZE);
    put32(e, l->code);
    put32(e + 4, l->space / SECTOR);    /* sectors, as the spec says */
    put32(e + 8, l->len);
    put64(e + 16, l->offset);
}

static const uint32_t link_codes[3] = { PLAT_MACX, PLAT_W2RU, PLAT_W2KU };

/*
 * The parent fields of header h for parent p at name: its unique id,
 * time and base name, and the payloads of the three locators (file://
 * URL, relative and absolute name) one after another in data (3 *
 * LOC_MAX_BYTES, zeroed), each sector-rounded, l[i].offset relative to
 * data; *total the bytes they take.  h's locator entries are cleared.
 */
static int parent_fields(xcp__vhd *v, xcp__vhd *p, const char *name,
                         uint8_t *h, uint8_t *data, struct locator *l,
                         uint64_t *total, char *err, size_t errlen)
{
    char abs[PATH_MAX], dir[PATH_MAX], rdir[PATH_MAX], rel[PATH_MAX + 8];
    char text[PATH_MAX + 16];
    const char *base;
    struct stat st;
    long n;
    int i;
    size_t j;

    memset(h + D_PARENT_UUID, 0, 16);
    put32(h + D_PARENT_TIME, 0);
    memset(h + D_PARENT_NAME, 0, D_PARENT_NAME_LEN);
    memset(h + D_LOCATORS, 0, N_LOCATORS * LOC_SIZE);
    dir_of(v->path, dir, sizeof(dir));
    if (!realpath(name, abs) || !realpath(dir, rdir))
        return fail(err, errlen, -errno, "%s: resolving parent %s: %s",
                    v->path, name, strerror(errno));
    if (relative_to(rdir, abs, rel, sizeof(rel)) < 0)
        return fail(err, errlen, -ENAMETOOLONG, "%s: parent name too long",
                    v->path);
    base = strrchr(abs, '/') ? strrchr(abs, '/') + 1 : abs;
    if (strlen(abs) > XCP__VHD_PARENT_MAX ||
        to_utf16(base, h + D_PARENT_NAME, D_PARENT_NAME_LEN, true) < 0)
        return fail(err, errlen, -ENAMETOOLONG,
                    "%s: parent name %s is too long for a VHD header or "
                    "not UTF-8", v->path, abs);
    *total = 0;
    for (i = 0; i < 3; i++) {
        if (link_codes[i] == PLAT_MACX)
            snprintf(text, sizeof(text), "file://%s", rel);
        else
            snprintf(text, sizeof(text), "%s",
                     link_codes[i] == PLAT_W2RU ? rel : abs);
        if (link_codes[i] == PLAT_MACX) {
            n = (long)strlen(text);
            memcpy(data + *total, text, (size_t)n);
        } else {
            for (j = 0; text[j]; j++)
                if (text[j] == '/')
                    text[j] = '\\';
            n = to_utf16(text, data + *total, LOC_MAX_BYTES, false);
        }
        if (n <= 0 || n > (long)LOC_MAX_BYTES)
            return fail(err, errlen, -ENAMETOOLONG,
                        "%s: parent name %s does not fit a locator",
                        v->path, abs);
        l[i].code = link_codes[i];
        l[i].len = (uint32_t)n;
        l[i].space = (uint32_t)div_up((uint64_t)n, SECTOR) * SECTOR;
        l[i].offset = *total;
        *total += l[i].space;
    }
    memcpy(h + D_PARENT_UUID, p->footer + F_UUID, 16);
    if (fstat(p->fd, &st) == 0 && st.st_mtime > VHD_EPOCH)
        put32(h + D_PARENT_TIME, (uint32_t)(st.st_mtime - VHD_EPOCH));
    return 0;
}

int xcp__vhd_link_parent(xcp__vhd *v, xcp__vhd *p, const char *name,
                         char *err, size_t errlen)
{
    struct locator l[3];
    uint8_t *data = NULL;
    uint64_t at, total;
    int ret, i;

    memset(v->loc, 0, sizeof(v->loc));
    if (!p) {
        memset(v->header + D_PARENT_UUID, 0, 16);
        put32(v->header + D_PARENT_TIME, 0);
        memset(v->header + D_PARENT_NAME, 0, D_PARENT_NAME_LEN);
        memset(v->header + D_LOCATORS, 0, N_LOCATORS * LOC_SIZE);
        v->type = XCP__VHD_DYNAMIC;
        put32(v->footer + F_TYPE, v->type);
        return 0;
    }
    data = calloc(3, LOC_MAX_BYTES);
    if (!data)
        return fail(err, errlen, -ENOMEM, "%s: out of memory", v->path);
    ret = parent_fields(v, p, name, v->header, data, l, &total, err, errlen);
    if (ret == 0)
        ret = xcp__vhd_append(v, total, &at, err, errlen);
    if (ret == 0)
        ret = xcp__vhd_pwrite(v, data, total, at, "the parent locators",
                              err, errlen);
    if (ret < 0)
        goto out;
    for (i = 0; i < 3; i++) {
        l[i].offset += at;
        v->loc[i] = l[i];
        locator_put(v->header + D_LOCATORS + i * LOC_SIZE, &l[i]);
    }
    v->type = XCP__VHD_DIFFERENCING;
    put32(v->footer + F_TYPE, v->type);
out:
    free(data);
    return ret;
}

/* Give each new locator l[i] the place of an old one of v of its kind
 * with room for it (l[i].offset then the file offset, .space the old
 * room); -ENOSPC when one has none. */
static int reuse_locators(xcp__vhd *v, struct locator *l, char *err,
                          size_t errlen)
{
    bool taken[N_LOCATORS] = { false };
    int i, j;

    for (i = 0; i < 3; i++) {
        for (j = 0; j < N_LOCATORS; j++)
            if (!taken[j] && v->loc[j].code == l[i].code &&
                v->loc[j].space >= l[i].space)
                break;
        if (j == N_LOCATORS)
            return fail(err, errlen, -ENOSPC,
                        "%s: the new parent's locators do not fit where the "
                        "old ones lie", v->path);
        taken[j] = true;
        l[i].space = v->loc[j].space;
        l[i].offset = v->loc[j].offset;
    }
    return 0;
}

/* Write the payloads (from data at the offsets src gives) where l puts
 * them, then header h, through fd, and sync. */
static int write_relink(xcp__vhd *v, int fd, const uint8_t *data,
                        const struct locator *src, const struct locator *l,
                        uint8_t *h, char *err, size_t errlen)
{
    int ret = 0, i;

    for (i = 0; i < 3 && ret == 0; i++)
        ret = pwrite_full(fd, data + src[i].offset,
                          div_up(l[i].len, SECTOR) * SECTOR, l[i].offset);
    for (i = 0; i < 3; i++)
        locator_put(h + D_LOCATORS + i * LOC_SIZE, &l[i]);
    put32(h + D_CHECKSUM, 0);
    put32(h + D_CHECKSUM, xcp__vhd_checksum(h, HEADER_SIZE, D_CHECKSUM));
    if (ret == 0)
        ret = pwrite_full(fd, h, HEADER_SIZE, be64(v->footer + F_DATA_OFFSET));
    if (ret == 0 && fdatasync(fd) < 0)
        ret = -errno;
    return ret < 0 ? fail(err, errlen, ret, "%s: writing the parent link: "
                          "%s", v->path, strerror(-ret))
                   : 0;
}

int xcp__vhd_relink(const char *path, const char *parent_path, char *err,
                    size_t errlen)
{
    const unsigned ro = XCP__VHD_RDONLY | XCP__VHD_NO_PARENT;
    struct locator src[3], l[3];
    uint8_t h[HEADER_SIZE], *data = NULL;
    xcp__vhd *v = NULL, *p = NULL;
    uint64_t total;
    int fd = -1, ret;

    /* Read-only: a writable open would repair a footer the writer is
     * moving; and the BAT, which the writer changes, is never read. */
    ret = xcp__vhd_open(&v, path, ro | VHD_LINK_ONLY, err, errlen);
    if (ret == 0 && v->type != XCP__VHD_DIFFERENCING)
        ret = fail(err, errlen, -EINVAL, "%s: not a differencing disk",
                   path);
    if (ret == 0)
        ret = xcp__vhd_open(&p, parent_path, ro, err, errlen);
    if (ret == 0 && !(data = calloc(3, LOC_MAX_BYTES)))
        ret = fail(err, errlen, -ENOMEM, "%s: out of memory", path);
    if (ret == 0) {
        memcpy(h, v->header, HEADER_SIZE);
        ret = parent_fields(v, p, parent_path, h, data, src, &total, err,
                            errlen);
    }
    if (ret == 0) {
        memcpy(l, src, sizeof(l));
        ret = reuse_locators(v, l, err, errlen);
    }
    if (ret == 0 && (fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY)) < 0)
        ret = fail(err, errlen, -errno, "%s: %s", path, strerror(errno));
    if (ret == 0)
        ret = write_relink(v, fd, data, src, l, h, err, errlen);
    if (fd >= 0)
        close(fd);
    free(data);
    xcp__vhd_close(p);
    xcp__vhd_close(v);
    return ret;
}

/* The name locator l gives, as a path ("" when it gives none usable). */
static void locator_name(xcp__vhd *v, const struct locator *l, char *out,
                         size_t cap)
{
    uint8_t raw[LOC_MAX_BYTES];
    char *s;
    size_t i;

    out[0] = '\0';
    if (pread_full(v->fd, raw, l->len, l->offset) != (ssize_t)l->len)
        return;
    if (l->code == PLAT_MACX) {
        if (l->len >= cap || memchr(raw, 0, l->len))
            return;
        memcpy(out, raw, l->len);
        out[l->len] = '\0';
        if (strncmp(out, "file://", 7) == 0)
            memmove(out, out + 7, l->len - 7 + 1);
        return;
    }
    if (from_utf16(raw, l->len, false, out, cap) < 0) {
        out[0] = '\0';
        return;
    }
    for (s = out, i = 0; s[i]; i++)
        if (s[i] == '\\')
            s[i] = '/';
}

/* The nth existing file the locators (then the header's name) lead to,
 * as xcp__vhd_find_parent's first. */
static int find_candidate(xcp__vhd *v, unsigned nth, char *path, size_t cap)
{
    static const uint32_t order[3] = { PLAT_MACX, PLAT_W2RU, PLAT_W2KU };
    char name[XCP__VHD_PARENT_MAX + 1], dir[PATH_MAX], full[2 * PATH_MAX];
    struct stat st;
    int i, k;

    dir_of(v->path, dir, sizeof(dir));
    for (k = 0; k <= 3; k++) {
        for (i = 0; i < N_LOCATORS; i++) {
            name[0] = '\0';
            if (k < 3 && v->loc[i].code == order[k] && v->loc[i].len)
                locator_name(v, &v->loc[i], name, sizeof(name));
            else if (k == 3 && i == 0)
                from_utf16(v->header + D_PARENT_NAME, D_PARENT_NAME_LEN,
                           true, name, sizeof(name));
            while (name[0] == '.' && name[1] == '/')
                memmove(name, name + 2, strlen(name + 2) + 1);
            if (!name[0])
                continue;
            if (name[0] == '/')
                snprintf(full, sizeof(full), "%s", name);
            else
                snprintf(full, sizeof(full), "%s/%s", dir, name);
            if (strlen(full) > XCP__VHD_PARENT_MAX || strlen(full) >= cap ||
                stat(full, &st) < 0 || !S_ISREG(st.st_mode) || nth--)
                continue;
            memcpy(path, full, strlen(full) + 1);
            return 0;
        }
    }
    /* None found: the name the header records, unresolved. */
    from_utf16(v->header + D_PARENT_NAME, D_PARENT_NAME_LEN, true, name,
               sizeof(name));
    snprintf(path, cap, "%s", strlen(name) < cap ? name : "");
    return -ENOENT;
}

int xcp__vhd_find_parent(xcp__vhd *v, char *path, size_t cap)
{
    return find_candidate(v, 0, path, cap);
}

/*
 * Open the parent: the first file the locators (then the header's name)
 * lead to whose unique id is the one the header names.  A relink killed
 * between its locator and header writes leaves locators naming the new
 * parent and a header naming the old one, still there: the header's name
 * finds it.  When no candidate has the id, the first one's mismatch is
 * the error.
 */
static int open_parent(xcp__vhd *v, char *err, size_t errlen)
{
    char path[2 * PATH_MAX], first[2 * PATH_MAX], want[37], got[37];
    uint8_t got_id[16];
    unsigned nth;
    int ret;

    for (nth = 0; find_candidate(v, nth, path, sizeof(path)) == 0; nth++) {
        if (nth == 0)
            memcpy(first, path, strlen(path) + 1);
        ret = xcp__vhd_open_image(&v->below, path, XCP__VHD_RDONLY,
                                  v->depth + 1, err, errlen);
        /* Only the top names itself: a long chain would push the cause
         * out of the message. */
        if (ret < 0)
            return v->depth ? ret : prefix_err(err, errlen, ret, v->path);
        if (!memcmp(v->below->footer + F_UUID, v->header + D_PARENT_UUID,
                    16)) {
            memcpy(v->parent, path, strlen(path) + 1);  /* length checked */
            return 0;
        }
        if (nth == 0)
            memcpy(got_id, v->below->footer + F_UUID, 16);
        xcp__vhd_close(v->below);
        v->below = NULL;
    }
    if (nth == 0)
        return fail(err, errlen, -ENOENT,
                    "%s: no parent locator names an existing image", v->path);
    xcp__vhd_uuid_str(v->header + D_PARENT_UUID, want);
    xcp__vhd_uuid_str(got_id, got);
    return fail(err, errlen, -EBADMSG,
                "%s: parent %s has unique id %s, the image expects %s",
                v->path, first, got, want);
}

/* ------------------------------------------------------------------ */
/* Opening                                                             */

/* Whether f is a footer: -EMEDIUMTYPE without the cookie, -EBADMSG when
 * it is damaged. */
static int check_footer(const uint8_t *f, const char *path, char *err,
                        size_t errlen)
{
    uint32_t type = be32(f + F_TYPE);
    uint64_t size = be64(f + F_CUR_SIZE);

    if (memcmp(f + F_COOKIE, "conectix", 8))
        return fail(err, errlen, -EMEDIUMTYPE, "%s: not a VHD image", path);
    if (be32(f + F_CHECKSUM) != xcp__vhd_checksum(f, FOOTER_SIZE, F_CHECKSUM))
        return fail(err, errlen, -EBADMSG, "%s: bad footer checksum", path);
    if (be32(f + F_VERSION) >> 16 != 1)
        return fail(err, errlen, -EBADMSG, "%s: footer version %#x",
                    path, be32(f + F_VERSION));
    if (type != XCP__VHD_FIXED && type != XCP__VHD_DYNAMIC &&
        type != XCP__VHD_DIFFERENCING)
        return fail(err, errlen, -EBADMSG, "%s: unknown disk type %u", path,
                    type);
    if (size % SECTOR || size > OPEN_MAX_SIZE)
        return fail(err, errlen, -EBADMSG, "%s: bad virtual size %llu", path,
                    (unsigned long long)size);
    return 0;
}

/* Read the footer: the end of the file, or the copy at 0 when the end is
 * torn (*torn set). */
static int read_footer(xcp__vhd *v, bool *torn, char *err, size_t errlen)
{
    uint8_t head[FOOTER_SIZE];
    int ret, ret0;

    *torn = false;
    if (v->file_size < FOOTER_SIZE)
        return fail(err, errlen, -EMEDIUMTYPE,
                    "%s: not a VHD image (%llu bytes)", v->path,
                    (unsigned long long)v->file_size);
    v->footer_off = (v->file_size - FOOTER_SIZE) / SECTOR * SECTOR;
    if (pread_full(v->fd, v->footer, FOOTER_SIZE, v->file_size - FOOTER_SIZE)
        != FOOTER_SIZE ||
        pread_full(v->fd, head, FOOTER_SIZE, 0) != FOOTER_SIZE)
        return fail(err, errlen, -EIO, "%s: reading the footer failed",
                    v->path);
    ret = check_footer(v->footer, v->path, err, errlen);
    if (ret == 0)
        return v->file_size % SECTOR
                   ? fail(err, errlen, -EBADMSG,
                          "%s: file size %llu is not a multiple of 512",
                          v->path, (unsigned long long)v->file_size)
                   : 0;
    ret0 = check_footer(head, v->path, NULL, 0);
    if (ret0 < 0 || be32(head + F_TYPE) == XCP__VHD_FIXED)
        return ret == -EMEDIUMTYPE && ret0 == 0
                   ? fail(err, errlen, -EBADMSG, "%s: footer missing at the "
                          "end of the file", v->path)
                   : ret;
    memcpy(v->footer, head, FOOTER_SIZE);
    *torn = true;
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

/* Where a locator's area ends, bounding its fields. */
static int read_locators(xcp__vhd *v, uint64_t limit, uint64_t *end,
                         char *err, size_t errlen)
{
    struct locator *l;
    uint32_t space;
    int i;

    for (i = 0; i < N_LOCATORS; i++) {
        l = &v->loc[i];
        l->code = be32(v->header + D_LOCATORS + i * LOC_SIZE);
        space = be32(v->header + D_LOCATORS + i * LOC_SIZE + 4);
        l->len = be32(v->header + D_LOCATORS + i * LOC_SIZE + 8);
        l->offset = be64(v->header + D_LOCATORS + i * LOC_SIZE + 16);
        if (l->code == PLAT_NONE)
            continue;
        /* The field is in sectors by the spec, in bytes for some tools. */
        l->space = space < SECTOR ? space * SECTOR : space;
        if (l->len > l->space || l->len > LOC_MAX_BYTES ||
            l->offset > limit || l->space > limit - l->offset)
            return fail(err, errlen, -EBADMSG,
                        "%s: parent locator %d is out of bounds", v->path, i);
        if (l->offset + l->space > *end)
            *end = l->offset + l->space;
    }
    return 0;
}

/* Validate the BAT's blocks: inside [meta_end, limit), apart. */
static int check_blocks(xcp__vhd *v, uint64_t meta_end, uint64_t limit,
                        uint64_t *end, char *err, size_t errlen)
{
    uint64_t stride = (uint64_t)v->bitmap_size + v->block_size, off;
    uint32_t *sorted, n = 0, i;
    int ret = 0;

    sorted = malloc((size_t)v->entries * 4 + 4);
    if (!sorted)
        return fail(err, errlen, -ENOMEM, "%s: out of memory", v->path);
    for (i = 0; i < v->entries; i++)
        if (v->bat[i] != BAT_FREE)
            sorted[n++] = v->bat[i];
    qsort(sorted, n, 4, cmp_u32);
    for (i = 0; i < n; i++) {
        off = (uint64_t)sorted[i] * SECTOR;
        if (off < meta_end || off > limit || stride > limit - off ||
            (i + 1 < n && off + stride > (uint64_t)sorted[i + 1] * SECTOR)) {
            ret = fail(err, errlen, -EBADMSG,
                       "%s: block at sector %u overlaps %s", v->path,
                       sorted[i], off < meta_end ? "the metadata"
                       : i + 1 < n && off + stride <= limit
                           ? "another block" : "the end of the file");
            break;
        }
        if (off + stride > *end)
            *end = off + stride;
    }
    free(sorted);
    return ret;
}

/* The first thing after the BAT bounds how far it can grow. */
static void bat_room(xcp__vhd *v, uint64_t hdr_off)
{
    uint64_t limit = UINT64_MAX, off, max_entries;
    uint32_t i;

    for (i = 0; i < v->entries; i++) {
        off = (uint64_t)v->bat[i] * SECTOR;
        if (v->bat[i] != BAT_FREE && off > v->bat_off && off < limit)
            limit = off;
    }
    for (i = 0; i < N_LOCATORS; i++)
        if (v->loc[i].code && v->loc[i].offset >= v->bat_off &&
            v->loc[i].offset < limit)
            limit = v->loc[i].offset;
    if (hdr_off > v->bat_off && hdr_off < limit)
        limit = hdr_off;
    max_entries = div_up(XCP__VHD_MAX_SIZE, v->block_size);
    v->room = (uint32_t)min64((limit - v->bat_off) / 4, max_entries);
    if (v->room < v->entries)
        v->room = v->entries;
}

/* Read the BAT, check its blocks (inside [the metadata's end, limit),
 * apart; *end: past the last) and find how far it may grow. */
static int load_bat(xcp__vhd *v, uint64_t limit, uint64_t *end, char *err,
                    size_t errlen)
{
    uint64_t hdr_off = be64(v->footer + F_DATA_OFFSET);
    uint64_t bat_bytes = (uint64_t)v->entries * 4, meta_end;
    uint8_t *raw = malloc(bat_bytes + 4);
    uint32_t i;
    int ret = 0;

    v->bat = malloc(bat_bytes + 4);
    if (!raw || !v->bat)
        ret = fail(err, errlen, -ENOMEM, "%s: out of memory", v->path);
    else if (pread_full(v->fd, raw, bat_bytes, v->bat_off) !=
             (ssize_t)bat_bytes)
        ret = fail(err, errlen, -EIO, "%s: reading the BAT failed", v->path);
    for (i = 0; ret == 0 && i < v->entries; i++)
        v->bat[i] = be32(raw + 4 * (size_t)i);
    free(raw);
    meta_end = hdr_off + HEADER_SIZE;
    if (v->bat_off + bat_bytes > meta_end)
        meta_end = v->bat_off + bat_bytes;
    if (ret == 0)
        ret = check_blocks(v, meta_end, limit, end, err, errlen);
    if (ret < 0) {
        free(v->bat);
        v->bat = NULL;
        return ret;
    }
    bat_room(v, hdr_off);
    return 0;
}

int xcp__vhd_need_bat(xcp__vhd *v, char *err, size_t errlen)
{
    uint64_t end = 0;

    if (v->bat || v->type == XCP__VHD_FIXED)
        return 0;
    return load_bat(v, v->footer_off, &end, err, errlen);
}

static int open_dynamic(xcp__vhd *v, bool torn, char *err, size_t errlen)
{
    uint64_t hdr_off = be64(v->footer + F_DATA_OFFSET);
    uint64_t limit = torn ? v->file_size : v->footer_off;
    uint64_t bat_bytes, end;
    uint8_t *h = v->header;
    int ret;

    if (hdr_off > limit || HEADER_SIZE > limit - hdr_off ||
        hdr_off < FOOTER_SIZE)
        return fail(err, errlen, -EBADMSG,
                    "%s: dynamic disk header offset %llu is out of bounds",
                    v->path, (unsigned long long)hdr_off);
    if (pread_full(v->fd, h, HEADER_SIZE, hdr_off) != HEADER_SIZE)
        return fail(err, errlen, -EIO, "%s: reading the header failed",
                    v->path);
    if (memcmp(h + D_COOKIE, "cxsparse", 8))
        return fail(err, errlen, -EBADMSG, "%s: no dynamic disk header",
                    v->path);
    if (be32(h + D_CHECKSUM) != xcp__vhd_checksum(h, HEADER_SIZE, D_CHECKSUM))
        return fail(err, errlen, -EBADMSG, "%s: bad header checksum",
                    v->path);
    if (be32(h + D_VERSION) >> 16 != 1)
        return fail(err, errlen, -EBADMSG, "%s: header version %#x", v->path,
                    be32(h + D_VERSION));
    v->block_size = be32(h + D_BLOCK_SIZE);
    if (v->block_size < MIN_BLOCK_SIZE || v->block_size > MAX_BLOCK_SIZE ||
        (v->block_size & (v->block_size - 1)))
        return fail(err, errlen, -EBADMSG, "%s: bad block size %u", v->path,
                    v->block_size);
    v->spb = v->block_size / SECTOR;
    v->bitmap_size = (uint32_t)div_up(v->spb / 8, SECTOR) * SECTOR;
    v->entries = be32(h + D_MAX_ENTRIES);
    v->bat_off = be64(h + D_TABLE_OFFSET);
    bat_bytes = (uint64_t)v->entries * 4;
    if ((uint64_t)v->entries * v->block_size < v->size)
        return fail(err, errlen, -EBADMSG,
                    "%s: BAT of %u entries is too small for %llu bytes",
                    v->path, v->entries, (unsigned long long)v->size);
    if (v->bat_off > limit || bat_bytes > limit - v->bat_off ||
        v->bat_off < FOOTER_SIZE ||
        (v->bat_off < hdr_off + HEADER_SIZE &&
         v->bat_off + bat_bytes > hdr_off))
        return fail(err, errlen, -EBADMSG, "%s: BAT is out of bounds",
                    v->path);
    v->bm = malloc(v->bitmap_size);
    if (!v->bm)
        return fail(err, errlen, -ENOMEM, "%s: out of memory", v->path);
    v->bm_block = BAT_FREE;
    end = hdr_off + HEADER_SIZE;
    if (v->bat_off + bat_bytes > end)
        end = v->bat_off + bat_bytes;
    ret = read_locators(v, limit, &end, err, errlen);
    /* The BAT (4 MiB at 2 TiB) is read when first needed: by a writer
     * now, by a reader at its first data access, and now when the
     * footer is torn (the blocks tell where it goes). */
    if (ret == 0 && !(v->flags & VHD_LINK_ONLY) &&
        (torn || !(v->flags & XCP__VHD_RDONLY)))
        ret = load_bat(v, limit, &end, err, errlen);
    if (ret < 0)
        return ret;
    if (torn)
        v->footer_off = div_up(end, SECTOR) * SECTOR;
    if (torn && !(v->flags & XCP__VHD_RDONLY)) {
        /* Repair: the footer again at the end, what lies past it cut. */
        ret = xcp__vhd_write_footer(v, v->footer_off, err, errlen);
        if (ret == 0 && ftruncate(v->fd, (off_t)(v->footer_off +
                                                 FOOTER_SIZE)) < 0)
            ret = fail(err, errlen, -errno, "%s: truncating: %s", v->path,
                       strerror(errno));
        v->file_size = v->footer_off + FOOTER_SIZE;
        if (ret < 0)
            return ret;
    }
    if (v->type == XCP__VHD_DIFFERENCING) {
        v->has_parent = true;
        if (!(v->flags & XCP__VHD_NO_PARENT))
            ret = open_parent(v, err, errlen);
    }
    return ret;
}

int xcp__vhd_open_image(xcp__vhd **out, const char *path, unsigned flags,
                        unsigned depth, char *err, size_t errlen)
{
    xcp__vhd *v;
    struct stat st;
    bool torn;
    int ret;

    *out = NULL;
    if (depth > XCP__VHD_MAX_CHAIN)
        return fail(err, errlen, -ELOOP,
                    "%s: parent chain deeper than %d (a loop?)", path,
                    XCP__VHD_MAX_CHAIN);
    v = calloc(1, sizeof(*v));
    if (!v || !(v->path = strdup(path))) {
        free(v);
        return fail(err, errlen, -ENOMEM, "%s: out of memory", path);
    }
    v->flags = flags;
    v->depth = depth;
    /* O_NONBLOCK: a FIFO named by a locator must not hang us. */
    v->fd = open(path, ((flags & XCP__VHD_RDONLY) ? O_RDONLY : O_RDWR) |
                           O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (v->fd < 0) {
        ret = fail(err, errlen, -errno, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (fstat(v->fd, &st) < 0) {
        ret = fail(err, errlen, -errno, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        ret = fail(err, errlen, -EINVAL, "%s: not a regular file", path);
        goto out;
    }
    v->file_size = (uint64_t)st.st_size;
    ret = read_footer(v, &torn, err, errlen);
    if (ret < 0)
        goto out;
    v->type = be32(v->footer + F_TYPE);
    v->size = be64(v->footer + F_CUR_SIZE);
    if (v->type != XCP__VHD_FIXED)
        ret = open_dynamic(v, torn, err, errlen);
    else if (v->size > v->footer_off)
        ret = fail(err, errlen, -EBADMSG,
                   "%s: fixed disk of %llu bytes in a file of %llu", path,
                   (unsigned long long)v->size,
                   (unsigned long long)v->file_size);
out:
    if (ret < 0) {
        xcp__vhd_close(v);
        return ret;
    }
    *out = v;
    return 0;
}

int xcp__vhd_open(xcp__vhd **out, const char *path, unsigned flags,
                  char *err, size_t errlen)
{
    return xcp__vhd_open_image(out, path, flags, 0, err, errlen);
}

int xcp__vhd_flush(xcp__vhd *v, char *err, size_t errlen)
{
    if (!v->written)
        return 0;
    if (fdatasync(v->fd) < 0)
        return fail(err, errlen, -errno, "%s: fdatasync: %s", v->path,
                    strerror(errno));
    v->written = false;
    return 0;
}

int xcp__vhd_close(xcp__vhd *v)
{
    int ret = 0;

    if (!v)
        return 0;
    if (v->fd >= 0) {
        ret = xcp__vhd_flush(v, NULL, 0);
        close(v->fd);
    }
    xcp__vhd_close(v->below);
    free(v->bat);
    free(v->bm);
    free(v->path);
    free(v);
    return ret;
}

/* ------------------------------------------------------------------ */
/* Creating                                                            */

int xcp__vhd_create(const char *path, uint64_t virtual_size,
                    const xcp__vhd_create_opts *opts,
                    char *err, size_t errlen)
{
    xcp__vhd_create_opts o = { 0 };
    xcp__vhd *v = NULL, *p = NULL;
    uint64_t room, bat_bytes;
    uint8_t *bat = NULL;
    int ret;

    if (opts)
        o = *opts;
    if (!o.block_size)
        o.block_size = XCP__VHD_DEFAULT_BLOCK_SIZE;
    if (o.block_size < MIN_BLOCK_SIZE || o.block_size > MAX_BLOCK_SIZE ||
        (o.block_size & (o.block_size - 1)))
        return fail(err, errlen, -EINVAL, "%s: bad block size %u", path,
                    o.block_size);
    if (o.parent) {
        ret = xcp__vhd_open_image(&p, o.parent,
                                  XCP__VHD_RDONLY | XCP__VHD_NO_PARENT, 1,
                                  err, errlen);
        if (ret < 0)
            return prefix_err(err, errlen, ret, path);
        if (!virtual_size)
            virtual_size = p->size;
    }
    virtual_size = div_up(virtual_size, SECTOR) * SECTOR;
    if (virtual_size > XCP__VHD_MAX_SIZE || o.max_size > XCP__VHD_MAX_SIZE) {
        ret = xcp__vhd_too_big(path, virtual_size > XCP__VHD_MAX_SIZE
                                         ? virtual_size : o.max_size,
                               err, errlen);
        goto out;
    }
    v = calloc(1, sizeof(*v));
    if (v)
        v->fd = -1;
    if (!v || !(v->path = strdup(path))) {
        ret = fail(err, errlen, -ENOMEM, "%s: out of memory", path);
        goto out;
    }
    v->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY,
                 0644);
    if (v->fd < 0) {
        ret = fail(err, errlen, -errno, "%s: %s", path, strerror(errno));
        goto out;
    }
    v->type = XCP__VHD_DYNAMIC;
    v->size = virtual_size;
    v->block_size = o.block_size;
    v->entries = (uint32_t)div_up(virtual_size, o.block_size);
    room = div_up(o.max_size > virtual_size ? o.max_size : virtual_size,
                  o.block_size);
    bat_bytes = div_up(room * 4 + (room == 0), SECTOR) * SECTOR;
    v->bat_off = FOOTER_SIZE + HEADER_SIZE;
    xcp__vhd_footer_init(v->footer, v->type, virtual_size);
    memcpy(v->header + D_COOKIE, "cxsparse", 8);
    put64(v->header + D_DATA_OFFSET, NO_OFFSET);
    put64(v->header + D_TABLE_OFFSET, v->bat_off);
    put32(v->header + D_VERSION, VHD_VERSION);
    put32(v->header + D_MAX_ENTRIES, v->entries);
    put32(v->header + D_BLOCK_SIZE, v->block_size);
    bat = malloc(bat_bytes);
    if (!bat) {
        ret = fail(err, errlen, -ENOMEM, "%s: out of memory", path);
        goto out;
    }
    /* Every entry of the room is free, so growing only rewrites the
     * header. */
    memset(bat, 0xff, bat_bytes);
    v->footer_off = v->bat_off + bat_bytes;
    ret = xcp__vhd_pwrite(v, bat, bat_bytes, v->bat_off, "the BAT", err,
                          errlen);
    if (ret == 0 && p)
        ret = xcp__vhd_link_parent(v, p, o.parent, err, errlen);
    if (ret == 0)
        ret = xcp__vhd_write_header(v, err, errlen);
    if (ret == 0)
        ret = xcp__vhd_write_footer(v, v->footer_off, err, errlen);
    if (ret == 0)
        ret = xcp__vhd_flush(v, err, errlen);
    if (ret < 0)
        unlink(path);
out:
    free(bat);
    xcp__vhd_close(v);
    xcp__vhd_close(p);
    return ret;
}
