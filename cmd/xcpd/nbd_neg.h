/*
 * xcpd: the NBD front end's side of the newstyle negotiation (nbd_neg.c),
 * apart from sockets and TLS so that it can be fuzzed alone
 * (tests/fuzz/fuzz_nbd_neg.c). Uses libc only.
 */
#ifndef XCPD_NBD_NEG_H
#define XCPD_NBD_NEG_H

#include <stddef.h>

/* The longest option we read (an export name is at most 4096 bytes, with
 * its information or meta context queries); longer ones are read past
 * and refused (NBD_REP_ERR_TOO_BIG). */
#define NBD_NEG_MAX_OPT 16384
/* The longest reply of the backend we relay. */
#define NBD_NEG_MAX_REPLY 65536
/* Options a client may send before we give up on it. */
#define NBD_NEG_MAX_OPTS 64

/*
 * What the negotiation needs from its caller. The read and write
 * functions move exactly n bytes or fail (-1), each within the caller's
 * own deadline; "client" is the NBD client (through TLS once starttls
 * succeeded), "backend" the NBD server the connection is handed to.
 */
typedef struct nbd_neg_io {
    int (*client_read)(void *arg, void *buf, size_t n);
    int (*client_write)(void *arg, const void *buf, size_t n);
    int (*backend_read)(void *arg, void *buf, size_t n);
    int (*backend_write)(void *arg, const void *buf, size_t n);
    /* Connect to the backend: 0 or -1. Called at most once, after TLS
     * when TLS is required, at the first option the backend must see. */
    int (*backend_open)(void *arg);
    /* The TLS handshake on the client's connection, after our reply to
     * NBD_OPT_STARTTLS has gone out: 0 or -1 (the connection is then
     * unusable). */
    int (*starttls)(void *arg);
    /* Whether an export of that name (NUL-terminated) is handed out. */
    int (*known)(void *arg, const char *name);
    void *arg;
    int tls_required;          /* 1: nbd purpose; 0: insecure_nbd, TLS
                                  optional */
} nbd_neg_io;

/*
 * The server's side of the fixed newstyle handshake, up to transmission:
 * our greeting, the client's options with STARTTLS done here (required
 * when tls_required, else optional, before any option the backend sees),
 * NBD_OPT_LIST
 * refused (NBD_REP_ERR_POLICY), every option that names an export checked
 * with known() (an unknown name is refused, NBD_REP_ERR_UNKNOWN, and never
 * reaches the backend), and the options that pass relayed to the backend
 * with its replies relayed back, so that the client and the backend agree
 * on structured replies and meta contexts. Returns 1 when the connection
 * entered transmission (the caller then moves bytes both ways), 0 when the
 * client ended the negotiation (NBD_OPT_ABORT), -1 on a protocol error or
 * a failed read or write (the caller closes both sides).
 */
int nbd_negotiate(const nbd_neg_io *io);

#endif
