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

#endif
