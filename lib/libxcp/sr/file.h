/*
 * file.h - the file SR's operations, for SR types whose storage, once
 * attached, is a directory of image files laid out as a file SR's (ext:
 * a filesystem it mounts).  Such a type calls these with a target whose
 * device_config holds only "location", the directory.
 */
#ifndef XCP_SR_FILE_H
#define XCP_SR_FILE_H

#include <xcp/sys/sr.h>

/* The ops table of the `file` type (file.c). */
extern const xcp_sr_ops xcp__sr_file_ops;

/*
 * Fills err (when not NULL) with code, kind and the printf-formatted
 * reason, truncated to its room; returns code. The one way the SR types
 * (file, ext, iso) report a failure.
 */
__attribute__((format(printf, 4, 5)))
int xcp__srt_fail(xcp_sr_error *err, int code, xcp_sr_error_kind kind,
                 const char *fmt, ...);

/* The value of device_config:key of t (borrowed from t), NULL if absent. */
const char *xcp__sr_dev_config(const xcp_sr_target *t, const char *key);

#endif
