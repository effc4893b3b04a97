/*
 * xcpd: the NBD front end's negotiation (the server's side of the fixed
 * newstyle handshake, NetworkBlockDevice/nbd doc/proto.md). We answer
 * what must not reach QEMU (STARTTLS, LIST, names not handed out) and
 * relay the rest, option by option, to QEMU's NBD server with its replies
 * back, so that structured replies and meta contexts are QEMU's own. No
 * I/O here: the caller's functions move the bytes (nbd_front.c, and the
 * fuzzer).
 */
#include "nbd_neg.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NBDMAGIC 0x4e42444d41474943ULL
#define IHAVEOPT 0x49484156454f5054ULL
#define REPLY_MAGIC 0x0003e889045565a9ULL

#define FLAG_FIXED_NEWSTYLE 1u
#define FLAG_NO_ZEROES 2u

enum {
    OPT_EXPORT_NAME = 1,
    OPT_ABORT = 2,
    OPT_LIST = 3,
    OPT_STARTTLS = 5,
    OPT_INFO = 6,
    OPT_GO = 7,
    OPT_STRUCTURED_REPLY = 8,
    OPT_LIST_META_CONTEXT = 9,
    OPT_SET_META_CONTEXT = 10,
    OPT_EXTENDED_HEADERS = 11,
};

#define REP_ACK 1u
#define REP_ERR(n) (0x80000000u + (n))
#define ERR_UNSUP REP_ERR(1)
#define ERR_POLICY REP_ERR(2)
#define ERR_INVALID REP_ERR(3)
#define ERR_TLS_REQD REP_ERR(5)
#define ERR_UNKNOWN REP_ERR(6)
#define ERR_TOO_BIG REP_ERR(9)

/* Replies of the backend to one option before we give up on it. */
#define MAX_REPLIES 1024

typedef struct neg {
    const nbd_neg_io *io;
    uint32_t cflags;           /* the client's flags, for the backend */
    int tls, backend;          /* TLS done; backend connected */
    uint32_t opt, len;         /* the current option */
    unsigned char *data;       /* its data (NBD_NEG_MAX_OPT + 1 bytes) */
    unsigned char *reply;      /* a backend's reply (NBD_NEG_MAX_REPLY) */
} neg;

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void put64(unsigned char *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(const unsigned char *p)
{
    return (uint64_t)get32(p) << 32 | get32(p + 4);
}

/* Our own reply to the current option, without data. */
static int reply(neg *g, uint32_t type)
{
    unsigned char h[20];

    put64(h, REPLY_MAGIC);
    put32(h + 8, g->opt);
    put32(h + 12, type);
    put32(h + 16, 0);
    return g->io->client_write(g->io->arg, h, sizeof(h));
}

/* The backend connected and past its greeting, with the client's flags. */
static int backend(neg *g)
{
    unsigned char h[18], f[4];

    if (g->backend)
        return 0;
    if (g->io->backend_open(g->io->arg) < 0)
        return -1;
    g->backend = 1;
    if (g->io->backend_read(g->io->arg, h, sizeof(h)) < 0 ||
        get64(h) != NBDMAGIC || get64(h + 8) != IHAVEOPT ||
        (g->cflags & ~((uint32_t)h[16] << 8 | h[17])) != 0)
        return -1;
    put32(f, g->cflags);
    return g->io->backend_write(g->io->arg, f, sizeof(f));
}

/* The current option, as the client sent it, to the backend. */
static int forward(neg *g)
{
    unsigned char h[16];

    if (backend(g) < 0)
        return -1;
    put64(h, IHAVEOPT);
    put32(h + 8, g->opt);
    put32(h + 12, g->len);
    if (g->io->backend_write(g->io->arg, h, sizeof(h)) < 0)
        return -1;
    return g->len ? g->io->backend_write(g->io->arg, g->data, g->len) : 0;
}

/* The backend's replies to the current option, relayed up to its last
 * one (an ACK or an error): that one's type, or 0 on failure. */
static uint32_t relay_replies(neg *g)
{
    unsigned char h[20];
    uint32_t type, len;
    int i;

    for (i = 0; i < MAX_REPLIES; i++) {
        if (g->io->backend_read(g->io->arg, h, sizeof(h)) < 0 ||
            get64(h) != REPLY_MAGIC || get32(h + 8) != g->opt)
            return 0;
        type = get32(h + 12);
        len = get32(h + 16);
        if (len > NBD_NEG_MAX_REPLY ||
            (len && g->io->backend_read(g->io->arg, g->reply, len) < 0) ||
            g->io->client_write(g->io->arg, h, sizeof(h)) < 0 ||
            (len && g->io->client_write(g->io->arg, g->reply, len) < 0))
            return 0;
        if (type == REP_ACK || (type & 0x80000000u))
            return type;
    }
    return 0;
}

/*
 * The export name in the current option (INFO, GO, and the meta context
 * options), NUL-terminated in *name (the option's data is kept whole for
 * the backend, so the name is copied into out, NBD_NEG_MAX_OPT + 1
 * bytes): 0, or -1 when the option is malformed.
 */
static int option_name(const neg *g, char *out)
{
    uint32_t nlen, off, n, i;

    if (g->len < 4)
        return -1;
    nlen = get32(g->data);
    if (nlen > g->len - 4 || memchr(g->data + 4, '\0', nlen))
        return -1;
    memcpy(out, g->data + 4, nlen);
    out[nlen] = '\0';
    off = 4 + nlen;
    if (g->opt == OPT_INFO || g->opt == OPT_GO) {
        /* u16 count of information requests, u16 each */
        if (g->len - off < 2)
            return -1;
        n = (uint32_t)g->data[off] << 8 | g->data[off + 1];
        return g->len - off - 2 == 2 * n ? 0 : -1;
    }
    /* u32 count of queries, each a u32 length and a string */
    if (g->len - off < 4)
        return -1;
    n = get32(g->data + off);
    off += 4;
    for (i = 0; i < n; i++) {
        uint32_t qlen;

        if (g->len - off < 4)
            return -1;
        qlen = get32(g->data + off);
        off += 4;
        if (qlen > g->len - off)
            return -1;
        off += qlen;
    }
    return off == g->len ? 0 : -1;
}

/* An option that names an export: refused here unless the name is
 * handed out, else the backend's answer. 1 when GO put the connection in
 * transmission, 0 to go on, -1 on failure. */
static int named_option(neg *g, char *name)
{
    uint32_t last;

    if (option_name(g, name) < 0)
        return reply(g, ERR_INVALID);
    if (!g->io->known(g->io->arg, name))
        return reply(g, ERR_UNKNOWN);
    if (forward(g) < 0 || (last = relay_replies(g)) == 0)
        return -1;
    return g->opt == OPT_GO && last == REP_ACK;
}

/* Read past an option too long to hold. */
static int skip(neg *g)
{
    uint32_t left = g->len, n;

    while (left) {
        n = left < NBD_NEG_MAX_OPT ? left : NBD_NEG_MAX_OPT;
        if (g->io->client_read(g->io->arg, g->data, n) < 0)
            return -1;
        left -= n;
    }
    return 0;
}

/* NBD_OPT_STARTTLS: the handshake, unless TLS is on already or the
 * backend has seen options in the clear (their state would outlive the
 * switch: refused, so the client starts again instead). */
static int start_tls(neg *g)
{
    if (g->len || g->tls || g->backend)
        return reply(g, ERR_INVALID);
    if (reply(g, REP_ACK) < 0 || g->io->starttls(g->io->arg) < 0)
        return -1;
    g->tls = 1;
    return 0;
}

/* One option, read already: 1 transmission, 0 go on, 2 the client
 * aborted, -1 failure. */
static int option(neg *g, char *name)
{
    if (g->opt == OPT_ABORT) {
        reply(g, REP_ACK); /* the client need not wait for it */
        return 2;
    }
    if (g->io->tls_required && !g->tls) {
        if (g->opt == OPT_EXPORT_NAME)
            return -1; /* no way to say no but to hang up */
        if (g->opt != OPT_STARTTLS)
            return reply(g, ERR_TLS_REQD);
    }
    switch (g->opt) {
    case OPT_STARTTLS:
        /* Optional under insecure_nbd: clients given a certificate (Xen
         * Orchestra's) ask for it. */
        return start_tls(g);
    case OPT_LIST:
        /* The names are capabilities: never listed. */
        return reply(g, ERR_POLICY);
    case OPT_EXPORT_NAME:
        if (memchr(g->data, '\0', g->len))
            return -1;
        memcpy(name, g->data, g->len);
        name[g->len] = '\0';
        /* Unknown: hang up, as the protocol has no reply for it here. */
        if (!g->io->known(g->io->arg, name) || forward(g) < 0)
            return -1;
        return 1;
    case OPT_INFO:
    case OPT_GO:
    case OPT_LIST_META_CONTEXT:
    case OPT_SET_META_CONTEXT:
        return named_option(g, name);
    case OPT_STRUCTURED_REPLY:
    case OPT_EXTENDED_HEADERS:
        return forward(g) < 0 || relay_replies(g) == 0 ? -1 : 0;
    default:
        /* Not relayed: an option we do not know might name an export. */
        return reply(g, ERR_UNSUP);
    }
}

int nbd_negotiate(const nbd_neg_io *io)
{
    neg g = {.io = io};
    unsigned char h[18];
    char *name = NULL;
    int rc = -1, i, r;

    g.data = malloc(NBD_NEG_MAX_OPT + 1);
    g.reply = malloc(NBD_NEG_MAX_REPLY);
    name = malloc(NBD_NEG_MAX_OPT + 1);
    if (!g.data || !g.reply || !name)
        goto out;
    put64(h, NBDMAGIC);
    put64(h + 8, IHAVEOPT);
    h[16] = 0;
    h[17] = FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES;
    if (io->client_write(io->arg, h, sizeof(h)) < 0 ||
        io->client_read(io->arg, h, 4) < 0)
        goto out;
    g.cflags = get32(h);
    /* Unknown flags must close; and only fixed newstyle clients. */
    if ((g.cflags & ~(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES)) ||
        !(g.cflags & FLAG_FIXED_NEWSTYLE))
        goto out;
    for (i = 0; i < NBD_NEG_MAX_OPTS; i++) {
        if (io->client_read(io->arg, h, 16) < 0 || get64(h) != IHAVEOPT)
            goto out;
        g.opt = get32(h + 8);
        g.len = get32(h + 12);
        if (g.len > NBD_NEG_MAX_OPT) {
            if (g.opt == OPT_EXPORT_NAME || skip(&g) < 0 ||
                reply(&g, ERR_TOO_BIG) < 0)
                goto out;
            continue;
        }
        if (g.len && io->client_read(io->arg, g.data, g.len) < 0)
            goto out;
        r = option(&g, name);
        if (r != 0) {
            rc = r == 2 ? 0 : r;
            goto out;
        }
    }
out:
    free(g.data);
    free(g.reply);
    free(name);
    return rc;
}
