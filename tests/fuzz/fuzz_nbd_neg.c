/*
 * fuzz_nbd_neg.c - libFuzzer target: xcpd's NBD negotiation
 * (cmd/xcpd/nbd_neg.c) against arbitrary bytes.
 *
 * The input's first byte picks the mode (TLS required or not) and
 * whether STARTTLS and the backend's connection succeed; the rest is read
 * in turn by the client's and the backend's reads, so both a hostile
 * client and a broken backend are exercised. known() accepts names that
 * start with "/ok". The invariants: no crash, leak or sanitizer report;
 * nothing reaches the backend before TLS when TLS is required; and
 * every option relayed is one we let through, with a known name.
 *
 * Build and run: make fuzz/fuzz_nbd_neg && ./fuzz/fuzz_nbd_neg corpus/
 */
#include "nbd_neg.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct feed {
    const uint8_t *p;
    size_t left;
    int tls, tls_fails, backend_fails, opened;
    /* What went to the backend: its writes are the client's flags, then
     * an option's header and (when it has any) its data, in turn. */
    unsigned writes;
    uint32_t opt, len;
} feed;

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | p[3];
}

/* An option relayed to the backend names an export known() accepts. */
static void check_relayed(feed *f, const uint8_t *p, size_t n)
{
    uint32_t nlen;

    if (f->writes++ == 0) {
        if (n != 4)
            abort();
        return;
    }
    if (f->len == 0) { /* a header */
        if (n != 16)
            abort();
        f->opt = be32(p + 8);
        f->len = be32(p + 12);
        return;
    }
    if (n != f->len)
        abort();
    f->len = 0;
    switch (f->opt) {
    case 1: /* EXPORT_NAME */
        if (n < 3 || memcmp(p, "/ok", 3))
            abort();
        break;
    case 6: case 7: case 9: case 10: /* INFO, GO, the meta contexts */
        nlen = be32(p);
        if (nlen < 3 || nlen > n - 4 || memcmp(p + 4, "/ok", 3))
            abort();
        break;
    case 8: case 11: /* carry no name */
        break;
    default: /* never relayed */
        abort();
    }
}

static int take(feed *f, void *buf, size_t n)
{
    if (n > f->left)
        return -1;
    memcpy(buf, f->p, n);
    f->p += n;
    f->left -= n;
    return 0;
}

static int cl_read(void *arg, void *buf, size_t n)
{
    return take(arg, buf, n);
}

static int cl_write(void *arg, const void *buf, size_t n)
{
    (void)arg;
    (void)buf;
    (void)n;
    return 0;
}

static int be_read(void *arg, void *buf, size_t n)
{
    feed *f = arg;

    if (!f->opened)
        abort(); /* read from a backend never opened */
    return take(f, buf, n);
}

static int be_write(void *arg, const void *buf, size_t n)
{
    feed *f = arg;

    if (!f->opened)
        abort();
    check_relayed(f, buf, n);
    return 0;
}

static int be_open(void *arg)
{
    feed *f = arg;

    if (f->opened)
        abort(); /* opened twice */
    if (f->backend_fails)
        return -1;
    f->opened = 1;
    return 0;
}

static int starttls(void *arg)
{
    feed *f = arg;

    if (f->tls_fails)
        return -1;
    f->tls = 1;
    return 0;
}

static int known(void *arg, const char *name)
{
    feed *f = arg;

    (void)f;
    return strncmp(name, "/ok", 3) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    feed f = {0};
    nbd_neg_io io = {cl_read, cl_write, be_read, be_write, be_open,
                     starttls, known, &f, 0};
    int rc;

    if (size < 1)
        return 0;
    io.tls_required = data[0] & 1;
    f.tls_fails = (data[0] >> 1) & 1;
    f.backend_fails = (data[0] >> 2) & 1;
    f.p = data + 1;
    f.left = size - 1;
    rc = nbd_negotiate(&io);
    if (rc < -1 || rc > 1)
        abort();
    /* TLS first: the backend is never reached in the clear. */
    if (io.tls_required && f.opened && !f.tls)
        abort();
    /* Transmission needs a backend. */
    if (rc == 1 && !f.opened)
        abort();
    return 0;
}
