/*
 * image_int.h - what image.c and image_cbt.c share: the per-format
 * operations table and the image handle.
 */
#ifndef XCP_SR_IMAGE_INT_H
#define XCP_SR_IMAGE_INT_H

#include "image.h"

struct xcp__cbt_log;

struct fmt_ops {
    const char *name;
    uint64_t max_size;
    /* parent: as image.h's create; ppath: the same file as a path. */
    int (*create)(const char *path, const char *fmt, uint64_t size,
                  const char *parent, const char *ppath, char *err,
                  size_t errlen);
    int (*open)(void **h, const char *path, const char *fmt, unsigned flags,
                char *err, size_t errlen);
    int (*close)(void *h);
    int (*flush)(void *h, char *err, size_t errlen);
    int (*info)(void *h, xcp__image_info *info, char *err, size_t errlen);
    uint64_t (*size)(const void *h);
    int (*read)(void *h, uint64_t off, void *buf, size_t len, char *err,
                size_t errlen);
    int (*write)(void *h, uint64_t off, const void *buf, size_t len,
                 char *err, size_t errlen);
    int (*extent)(void *h, uint64_t off, uint64_t max, bool *data,
                  uint64_t *len, char *err, size_t errlen);
    int (*resize)(void *h, uint64_t size, char *err, size_t errlen);
    int (*set_parent)(void *h, const char *parent, const char *ppath,
                      char *err, size_t errlen);
    /* image.h's xcp__image_relink, ppath the parent as a path. */
    int (*relink)(const char *path, const char *parent, const char *ppath,
                  char *err, size_t errlen);
    /* The library's own copy, within the format. */
    int (*copy)(void *src, const char *dst, const char *fmt, char *err,
                size_t errlen);
    int (*commit)(void *child, void *parent, const xcp__progress *p,
                  char *err, size_t errlen);
    /* As extent, in the image alone (image.h's xcp__image_own_extent). */
    int (*own_extent)(void *h, uint64_t off, uint64_t max, bool *held,
                      uint64_t *len, char *err, size_t errlen);
    /* image.h's xcp__image_map and xcp__image_start_writeback; NULL: the
     * format cannot tell (bytes are read) or has nothing to start. */
    int (*map)(void *h, uint64_t off, uint64_t max, int *fd, uint64_t *pos,
               uint64_t *len, char *err, size_t errlen);
    void (*writeback)(void *h);
};

struct xcp__image {
    const struct fmt_ops *ops;
    const char *format;
    void *h;
    char *path;
    char *dir;                  /* the image's directory */
    /* VHD: the CBT log, when one is beside the image and the handle
     * writes (image_cbt.c); NULL otherwise. */
    struct xcp__cbt_log *log;
};

/* Open the CBT log beside a writable VHD image (none: im->log stays
 * NULL), and free it. */
int xcp__image_cbt_open_log(xcp__image *im, char *err, size_t errlen);
void xcp__image_cbt_close_log(xcp__image *im);

/* Mark [off, off + len) in the CBT log, durably, before a write. */
int xcp__image_cbt_mark_log(xcp__image *im, uint64_t off, uint64_t len,
                            char *err, size_t errlen);

#endif
