/*
 * What the VHD library's files share (vhd_meta.c: footer, header, parent
 * locators, opening and creating; vhd.c: reading, writing, extents,
 * resizing; vhd_chain.c: re-parenting, copying, committing).
 */
#ifndef XCP_VHD_INT_H
#define XCP_VHD_INT_H

#include "vhd.h"
#include "image_io.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SECTOR 512u
#define FOOTER_SIZE 512u
#define HEADER_SIZE 1024u
#define BAT_FREE 0xffffffffu
#define NO_OFFSET 0xffffffffffffffffull
#define N_LOCATORS 8

/* Footer field offsets. */
#define F_COOKIE 0
#define F_FEATURES 8
#define F_VERSION 12
#define F_DATA_OFFSET 16
#define F_TIMESTAMP 24
#define F_CREATOR_APP 28
#define F_CREATOR_VER 32
#define F_CREATOR_OS 36
#define F_ORIG_SIZE 40
#define F_CUR_SIZE 48
#define F_GEOMETRY 56
#define F_TYPE 60
#define F_CHECKSUM 64
#define F_UUID 68
#define F_SAVED 84

/* Dynamic disk header field offsets. */
#define D_COOKIE 0
#define D_DATA_OFFSET 8
#define D_TABLE_OFFSET 16
#define D_VERSION 24
#define D_MAX_ENTRIES 28
#define D_BLOCK_SIZE 32
#define D_CHECKSUM 36
#define D_PARENT_UUID 40
#define D_PARENT_TIME 56
#define D_PARENT_NAME 64
#define D_PARENT_NAME_LEN 512
#define D_LOCATORS 576
#define LOC_SIZE 24

/* Parent locator platform codes. */
#define PLAT_NONE 0
#define PLAT_MACX 0x4d616358u   /* "MacX": file:// URL, UTF-8 */
#define PLAT_W2RU 0x57327275u   /* "W2ru": relative name, UTF-16LE */
#define PLAT_W2KU 0x57326b75u   /* "W2ku": absolute name, UTF-16LE */

#define VHD_VERSION 0x00010000u
/* Bit 1 of the features is reserved and always set. */
#define FEATURES_RESERVED 0x2u
/* Longest locator payload we read or write (UTF-16 of a long name). */
#define LOC_MAX_BYTES (4u * (XCP__VHD_PARENT_MAX + 1) + 16)
#define MIN_BLOCK_SIZE (4u << 10)
#define MAX_BLOCK_SIZE (256u << 20)
/* Largest virtual size we open: the BAT's 32-bit sector offsets cannot
 * address more in any case. */
#define OPEN_MAX_SIZE (2ull << 40)

/* Internal open flag (with XCP__VHD_RDONLY): the header alone, for
 * xcp__vhd_relink while a writer may be appending: the BAT is never
 * read, not even when the footer looks torn (the writer moving it). */
#define VHD_LINK_ONLY (1u << 16)

struct locator {
    uint32_t code;
    uint32_t space;             /* bytes reserved (the field may say
                                 * sectors or bytes; normalised here) */
    uint32_t len;               /* bytes used */
    uint64_t offset;
};

struct xcp__vhd {
    int fd;
    char *path;
    unsigned flags;
    unsigned depth;             /* 0 for the top image */
    bool written;               /* since the last flush */

    uint32_t type;
    uint8_t footer[FOOTER_SIZE];
    uint8_t header[HEADER_SIZE];
    uint64_t size;              /* virtual size */
    uint64_t file_size;
    uint64_t footer_off;        /* the footer at the end of the file */

    /* Dynamic and differencing disks only. */
    uint64_t bat_off;
    uint32_t entries;           /* max table entries */
    uint32_t room;              /* entries the BAT area has room for */
    uint32_t *bat;              /* host order; NULL until first needed
                                 * (xcp__vhd_need_bat) */
    uint32_t block_size;
    uint32_t spb;               /* sectors per block */
    uint32_t bitmap_size;       /* bytes, a multiple of 512 */
    uint8_t *bm;                /* bitmap of block bm_block, or NULL */
    uint32_t bm_block;
    struct locator loc[N_LOCATORS];

    bool has_parent;
    char parent[XCP__VHD_PARENT_MAX + 1];  /* resolved name, when opened */
    xcp__vhd *below;
};

/* Ones' complement of the byte sum, the checksum field counted as 0. */
uint32_t xcp__vhd_checksum(const uint8_t *p, size_t len, size_t field);

/* The CHS geometry of the specification for size bytes, packed as the
 * footer stores it (cylinders 16 bits, heads 8, sectors per track 8). */
uint32_t xcp__vhd_geometry(uint64_t size);

/* Fill a fresh footer of the given type and size (new unique id). */
void xcp__vhd_footer_init(uint8_t *f, uint32_t type, uint64_t size);

/* pwrite len bytes of data (NULL: zeros) at host, keeping file_size;
 * what names them in the message. */
int xcp__vhd_pwrite(xcp__vhd *v, const uint8_t *data, uint64_t len,
                    uint64_t host, const char *what, char *err,
                    size_t errlen);

/* -EFBIG: size is beyond XCP__VHD_MAX_SIZE, with the message. */
int xcp__vhd_too_big(const char *path, uint64_t size, char *err,
                     size_t errlen);

/* Read the BAT of a dynamic or differencing disk if it is not yet (a
 * read-only handle reads it at its first data access): 0, or -EBADMSG
 * for a BAT whose blocks lie outside the file or overlap. */
int xcp__vhd_need_bat(xcp__vhd *v, char *err, size_t errlen);

/* Seal and write the footer at the end (at off) and, for dynamic
 * disks, its copy at offset 0. */
int xcp__vhd_write_footer(xcp__vhd *v, uint64_t off, char *err,
                          size_t errlen);

/* Seal and write the dynamic disk header. */
int xcp__vhd_write_header(xcp__vhd *v, char *err, size_t errlen);

/* Append len bytes of zeros for a new area: the footer moves after it
 * first.  *off is where the area starts. */
int xcp__vhd_append(xcp__vhd *v, uint64_t len, uint64_t *off, char *err,
                    size_t errlen);

/* Fill the header's parent fields and locators (appended) for parent
 * p at name; p NULL clears them (dynamic disk). */
int xcp__vhd_link_parent(xcp__vhd *v, xcp__vhd *p, const char *name,
                         char *err, size_t errlen);

/* Open path with flags; depth counts the images above it, bounded. */
/* The file the parent locators (then the header's name) lead to: the
 * first that names an existing regular file, into path (cap bytes);
 * when none does, -ENOENT and the parent name the header records, as is
 * (the parent's base name).  Nothing is opened. */
int xcp__vhd_find_parent(xcp__vhd *v, char *path, size_t cap);
int xcp__vhd_open_image(xcp__vhd **out, const char *path, unsigned flags,
                        unsigned depth, char *err, size_t errlen);

/* Read guest bytes [off, off+len) through the chain. */
int xcp__vhd_read_at(xcp__vhd *v, uint64_t off, uint8_t *buf, uint64_t len,
                     char *err, size_t errlen);

/* Write guest bytes [off, off+len); data NULL writes zeros. */
int xcp__vhd_write_at(xcp__vhd *v, uint64_t off, const uint8_t *data,
                      uint64_t len, char *err, size_t errlen);

/*
 * How [off, off+max) starts in v alone: *held tells whether the first
 * *len bytes (within one block) are v's own sectors.
 */
int xcp__vhd_own_extent(xcp__vhd *v, uint64_t off, uint64_t max,
                        bool *held, uint64_t *len, char *err, size_t errlen);

/* -EINVAL unless [off, off+len) lies within the virtual size. */
int xcp__vhd_check_range(xcp__vhd *v, uint64_t off, uint64_t len,
                         char *err, size_t errlen);

/* -EROFS when v was opened read-only. */
int xcp__vhd_check_writable(xcp__vhd *v, char *err, size_t errlen);

/* Format a 16-byte unique id as text (37 bytes with the NUL). */
void xcp__vhd_uuid_str(const uint8_t *u, char *out);
/* Encode UTF-8 s as UTF-16 (big- or little-endian, be) into out: the
 * bytes written, or -1 when s is not UTF-8 or out is too small. */
long xcp__vhd_utf16(const char *s, uint8_t *out, size_t cap, bool be);

#endif
