/*
 * libxcp: the umbrella header. Include this one.
 *
 *   #include <xcp/xcp.h>
 *
 * common.h   conventions: errors, ownership, refs, sets, maps
 * errors.h   the thread's last XenAPI error
 * value.h    generic values and datetimes
 * session.h  local and remote sessions, dynamic calls, task waits
 * model.h    introspection of classes, fields, enums and messages
 * classes.h  the typed API: one function per XenAPI message
 * console.h  opening a VM's console stream
 */
#ifndef XCP_XCP_H
#define XCP_XCP_H

#include <xcp/common.h>
#include <xcp/errors.h>
#include <xcp/value.h>
#include <xcp/session.h>
#include <xcp/model.h>
#include <xcp/classes.h>
#include <xcp/console.h>
#include <xcp/transfer.h>
#include <xcp/xva.h>

#endif
