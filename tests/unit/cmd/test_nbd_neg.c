/*
 * cmd/xcpd/nbd_neg.c: xcpd's side of the NBD negotiation, against a
 * scripted client and a scripted backend (QEMU) in memory: what is
 * answered here, what is relayed, and what never reaches the backend.
 */
#include "nbd_neg.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define IHAVEOPT 0x49484156454f5054ULL
#define REPLY_MAGIC 0x0003e889045565a9ULL
#define ERR(n) (0x80000000u + (n))

typedef struct buf {
    unsigned char b[65536];
    size_t len, off;
} buf;

typedef struct script {
    buf cin, cout;      /* what the client sends, what it gets */
    buf bin, bout;      /* what the backend sends, what it gets */
    int opened, tls;
} script;

static void put(buf *b, const void *p, size_t n)
{
    cr_assert_leq(b->len + n, sizeof(b->b));
    if (n)
        memcpy(b->b + b->len, p, n);
    b->len += n;
}

static void put32(buf *b, uint32_t v)
{
    unsigned char p[4] = {v >> 24, v >> 16, v >> 8, v};

    put(b, p, 4);
}

static void put64(buf *b, uint64_t v)
{
    put32(b, (uint32_t)(v >> 32));
    put32(b, (uint32_t)v);
}

static uint32_t get32(buf *b)
{
    const unsigned char *p = b->b + b->off;

    cr_assert_leq(b->off + 4, b->len, "short output");
    b->off += 4;
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(buf *b)
{
    uint64_t hi = get32(b);

    return hi << 32 | get32(b);
}

static int take(buf *b, void *p, size_t n)
{
    if (b->off + n > b->len)
        return -1;
    memcpy(p, b->b + b->off, n);
    b->off += n;
    return 0;
}

static int cl_read(void *a, void *p, size_t n)
{
    return take(&((script *)a)->cin, p, n);
}

static int cl_write(void *a, const void *p, size_t n)
{
    put(&((script *)a)->cout, p, n);
    return 0;
}

static int be_read(void *a, void *p, size_t n)
{
    cr_assert(((script *)a)->opened);
    return take(&((script *)a)->bin, p, n);
}

static int be_write(void *a, const void *p, size_t n)
{
    cr_assert(((script *)a)->opened);
    put(&((script *)a)->bout, p, n);
    return 0;
}

static int be_open(void *a)
{
    ((script *)a)->opened = 1;
    return 0;
}

static int starttls(void *a)
{
    ((script *)a)->tls = 1;
    return 0;
}

static int known(void *a, const char *name)
{
    (void)a;
    return strcmp(name, "/vdi?session_id=t") == 0;
}

/* The client's flags (fixed newstyle, no zeroes), then options. */
static void hello(script *s)
{
    put32(&s->cin, 3);
}

static void option(buf *b, uint32_t opt, const void *data, uint32_t len)
{
    put64(b, IHAVEOPT);
    put32(b, opt);
    put32(b, len);
    put(b, data, len);
}

/* GO or INFO data: the name, no information requests. */
static void go(script *s, uint32_t opt, const char *name)
{
    buf d = {0};

    put32(&d, (uint32_t)strlen(name));
    put(&d, name, strlen(name));
    put(&d, "\0\0", 2);
    option(&s->cin, opt, d.b, (uint32_t)d.len);
}

static void reply(buf *b, uint32_t opt, uint32_t type, const void *data,
                  uint32_t len)
{
    put64(b, REPLY_MAGIC);
    put32(b, opt);
    put32(b, type);
    put32(b, len);
    put(b, data, len);
}

static int run(script *s, int tls_required)
{
    nbd_neg_io io = {cl_read, cl_write, be_read, be_write, be_open,
                     starttls, known, s, tls_required};
    int rc = nbd_negotiate(&io);

    /* Our greeting first, always. */
    cr_assert_eq(get64(&s->cout), 0x4e42444d41474943ULL);
    cr_assert_eq(get64(&s->cout), IHAVEOPT);
    s->cout.off += 2;
    return rc;
}

/* The next reply the client got: its option and type, no data. */
static void expect(script *s, uint32_t opt, uint32_t type)
{
    cr_assert_eq(get64(&s->cout), REPLY_MAGIC);
    cr_assert_eq(get32(&s->cout), opt);
    cr_assert_eq(get32(&s->cout), type, "option %u: reply %#x, not %#x",
                 opt, s->cout.b[s->cout.off - 1], type);
    cr_assert_eq(get32(&s->cout), 0);
}

Test(nbd_neg, list_refused_with_policy_and_backend_untouched)
{
    static script s;

    hello(&s);
    option(&s.cin, 3, NULL, 0);
    option(&s.cin, 2, NULL, 0);
    cr_assert_eq(run(&s, 0), 0);
    expect(&s, 3, ERR(2));
    expect(&s, 2, 1);
    cr_assert_not(s.opened);
}

Test(nbd_neg, tls_required_refuses_everything_before_starttls)
{
    static script s;

    hello(&s);
    go(&s, 7, "/vdi?session_id=t");
    option(&s.cin, 3, NULL, 0);
    option(&s.cin, 5, NULL, 0);
    option(&s.cin, 5, NULL, 0);
    option(&s.cin, 3, NULL, 0);
    option(&s.cin, 2, NULL, 0);
    cr_assert_eq(run(&s, 1), 0);
    expect(&s, 7, ERR(5));
    expect(&s, 3, ERR(5));
    expect(&s, 5, 1);
    cr_assert(s.tls);
    expect(&s, 5, ERR(3));      /* STARTTLS twice: invalid */
    expect(&s, 3, ERR(2));      /* and still no listing */
    expect(&s, 2, 1);
    cr_assert_not(s.opened);
}

Test(nbd_neg, export_name_before_tls_hangs_up)
{
    static script s;

    hello(&s);
    option(&s.cin, 1, "/vdi?session_id=t", 17);
    cr_assert_eq(run(&s, 1), -1);
    cr_assert_not(s.opened);
}

Test(nbd_neg, starttls_optional_under_insecure_nbd_not_after_backend)
{
    static script s, late;

    hello(&s);
    option(&s.cin, 5, NULL, 0);
    option(&s.cin, 2, NULL, 0);
    cr_assert_eq(run(&s, 0), 0);
    expect(&s, 5, 1);
    cr_assert(s.tls);
    /* After an option QEMU saw in the clear: too late. */
    hello(&late);
    option(&late.cin, 8, NULL, 0);
    option(&late.cin, 5, NULL, 0);
    option(&late.cin, 2, NULL, 0);
    put(&late.bin, "NBDMAGICIHAVEOPT\0\3", 18);
    reply(&late.bin, 8, 1, NULL, 0);
    cr_assert_eq(run(&late, 0), 0);
    expect(&late, 8, 1);
    expect(&late, 5, ERR(3));
    cr_assert_not(late.tls);
}

Test(nbd_neg, unknown_and_malformed_names_never_reach_the_backend)
{
    static script s;
    buf meta = {0};

    hello(&s);
    go(&s, 7, "/vdi?session_id=other");
    go(&s, 6, "");
    put32(&meta, 4);
    put(&meta, "/vdi", 4);
    put32(&meta, 1);
    put32(&meta, 15);
    put(&meta, "base:allocation", 15);
    option(&s.cin, 10, meta.b, (uint32_t)meta.len);
    option(&s.cin, 9, meta.b, (uint32_t)meta.len - 3); /* cut short */
    option(&s.cin, 7, "\0\0\0\xff", 4);                  /* name too long */
    option(&s.cin, 1, "/nope", 5);
    cr_assert_eq(run(&s, 0), -1);
    expect(&s, 7, ERR(6));
    expect(&s, 6, ERR(6));
    expect(&s, 10, ERR(6));
    expect(&s, 9, ERR(3));
    expect(&s, 7, ERR(3));
    cr_assert_eq(s.cout.off, s.cout.len, "EXPORT_NAME answered");
    cr_assert_not(s.opened);
}

Test(nbd_neg, unknown_option_unsupported_and_too_big_read_past)
{
    static script s;
    static unsigned char big[NBD_NEG_MAX_OPT + 1];

    hello(&s);
    option(&s.cin, 4, "x", 1);      /* PEEK_EXPORT: withdrawn, not ours */
    option(&s.cin, 6, big, sizeof(big));
    option(&s.cin, 2, NULL, 0);
    cr_assert_eq(run(&s, 0), 0);
    expect(&s, 4, ERR(1));
    expect(&s, 6, ERR(9));
    expect(&s, 2, 1);
    cr_assert_not(s.opened);
}

Test(nbd_neg, known_name_relayed_with_the_backends_replies)
{
    static script s;
    const char *name = "/vdi?session_id=t";
    unsigned char info[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 3};
    size_t sent;

    hello(&s);
    option(&s.cin, 8, NULL, 0);
    go(&s, 7, name);
    sent = s.cin.len - 4;
    /* The backend: its greeting, then its replies to both options. */
    put(&s.bin, "NBDMAGICIHAVEOPT\0\3", 18);
    reply(&s.bin, 8, 1, NULL, 0);
    reply(&s.bin, 7, 3, info, sizeof(info));
    reply(&s.bin, 7, 1, NULL, 0);
    cr_assert_eq(run(&s, 0), 1);
    /* The client got the backend's replies as they were. */
    cr_assert_eq(s.cout.len - s.cout.off, s.bin.len - 18);
    cr_assert_arr_eq(s.cout.b + s.cout.off, s.bin.b + 18, s.bin.len - 18);
    /* The backend got the client's flags and options as they were. */
    cr_assert_eq(s.bout.len, 4 + sent);
    cr_assert_arr_eq(s.bout.b, s.cin.b, s.bout.len);
}

Test(nbd_neg, unknown_client_flags_hang_up)
{
    static script s;

    put32(&s.cin, 3 | 4);
    cr_assert_eq(run(&s, 0), -1);
    cr_assert_eq(s.cout.off, s.cout.len);
}
