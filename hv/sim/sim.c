/*
 * hv/sim/sim.c - the simulated hypervisor: a deterministic model of a Xen
 * host that the library and its tests drive exactly as they would drive
 * real Xen, with no hypervisor underneath.
 *
 * Model
 *  - Host: memory and CPU count from this machine or the environment (see
 *    sim.h). Xen keeps host/256 + 16 MiB for itself (frame table, heap);
 *    dom0 is always there, with the dom0 memory of sim.h, uuid all zeros,
 *    and idles at 2% of each of its vCPUs.
 *  - Memory is accounted in 4 KiB pages. A domain holds
 *    max(target, actual) + overhead pages, so a balloon that is still
 *    deflating keeps its memory and one that grows has it reserved.
 *    Overhead (pages), a model of what Xen allocates on a domain's behalf:
 *        256                          struct domain, grant/event tables
 *      + 4 * vcpus_max                vCPU structures and stacks
 *      + ceil(max_pages / 512)        p2m, 8 bytes per guest page
 *      + (HVM, PVH) 256 * vcpus_max + 2 * ceil(max_pages / 256)
 *                                     HAP pool: libxl's default of 1 MiB
 *                                     per vCPU + 8 KiB per MiB of memory
 *      + (HVM) 2048                   8 MiB of emulated video RAM
 *    domain_create needs target + overhead free, else -ENOMEM.
 *  - Time: CLOCK_REALTIME, never allowed to go backwards. Guests make
 *    progress only while RUNNING: vCPU time, the countdown to acknowledge a
 *    shutdown request, ballooning. The host's CPUs are shared fairly: with
 *    R online vCPUs running on N physical CPUs each vCPU gets min(1, N/R)
 *    of the wall clock. State is a function of time, so it is settled
 *    lazily (sim_settle) to "now" by stepping from event to event.
 *  - Domain ids count up from 1 and are never reused, as on Xen (up to
 *    0x7fef, then -ENOSPC).
 *  - Persistence: state_dir/sim/state, a checksummed text file rewritten
 *    whole (temp + fsync + rename + fsync of the directory) after every
 *    change, so domains outlive the process; another process opening the
 *    same state dir finds them, with time having moved on meanwhile.
 *  - Suspend images: a text header (uuid, memory, vCPUs, checksums) and a
 *    compact body of one 8-byte digest per MiB of guest memory, derived
 *    from the uuid; restore verifies all of it: -EBADMSG if corrupt,
 *    -EINVAL if it does not fit the config (another VM's image may be
 *    restored: clones of suspended VMs resume from a copy).
 *  - Events: a timerfd armed at the next time-driven change, or at once
 *    when changes are waiting to be read.
 *
 * Faults (xcp_hv_fault, or XCP_SIM_FAULTS at open): items separated by
 * commas, semicolons or spaces:
 *    <op>=<errno>[*<count>]  the next count (default 1, "inf" = always)
 *                            calls of op (e.g. domain_create) in this
 *                            process fail with errno (EIO or 5)
 *    hang=<domid>            that guest ignores shutdown/suspend requests
 *                            (persistent, like a real hung guest)
 *    hang=*                  every guest this process sends a request to
 *                            hangs
 *    crash=<domid>           that domain crashes now (ignored if absent)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf */
#endif
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "hv_internal.h"
#include "sim.h"

#define SIM_SUBDIR "sim"
#define STATE_NAME "state"
#define STATE_MAGIC "xcp-sim-state"
#define IMAGE_MAGIC "xcp-sim-image"
#define FORMAT_VERSION 1

#define PAGE ((uint64_t)XCP_HV_PAGE_SIZE)
#define MiB (1024ull * 1024)
#define GiB (1024ull * MiB)
#define NS_PER_MS 1000000ull
#define NS_PER_S 1000000000ull
#define NEVER UINT64_MAX

#define DOMID_LIMIT 0x7ff0u /* Xen's DOMID_FIRST_RESERVED */
#define PV_MAX_VCPUS 512
#define HVM_MAX_VCPUS 128
#define MIN_TARGET (16 * MiB)
#define DOM0_UUID "00000000-0000-0000-0000-000000000000"
#define DOM0_LOAD_PERMILLE 20
#define PAGES_PER_DIGEST 256 /* one digest per MiB */
#define MAX_IMAGE_SIZE (64 * MiB)

struct disk {
    char *path, *format, *vdev;
    bool ro, cdrom;
};

struct nic {
    uint8_t mac[6];
    char *bridge;
    uint32_t devid, mtu;
};

struct kv {
    char *key, *value;
};

struct dom {
    uint32_t domid;
    char uuid[XCP_HV_UUID_LEN];
    char name[XCP_HV_NAME_MAX];
    xcp_hv_domain_type type;
    xcp_hv_domain_state state;
    xcp_hv_shutdown_reason reason;
    uint64_t max_pages, target_pages, actual_pages, overhead_pages;
    /* ballooning progress not yet worth a whole page, in byte-ns units
     * (bytes * 1e9): keeps frequent settling from starving the balloon */
    uint64_t balloon_carry;
    uint32_t vcpus_max, vcpus_online;
    uint64_t *vcpu_ns;
    int64_t start_ns;
    xcp_hv_shutdown_reason request; /* pending request, NONE if none */
    uint64_t ack_left_ns;           /* running time until the guest acks */
    bool hung;
    char *kernel, *ramdisk, *cmdline, *bootloader;
    struct disk *disks;
    size_t n_disks;
    struct nic *nics;
    size_t n_nics;
    struct kv *platform;
    size_t n_platform;
};

struct sim {
    char *dir, *path;
    struct xcp__sim_options opt;
    uint64_t host_pages, xen_pages, dom0_pages;
    uint32_t dom0_vcpus;
    /* persisted */
    uint32_t next_domid;
    uint64_t clock; /* the time the model is settled to */
    uint64_t boot;  /* when this simulated host first came up */
    struct dom **doms; /* by increasing domid */
    size_t n_doms;
    /* this instance only */
    struct {
        int error;
        unsigned count;
    } fail[XCP_HV_OP__COUNT];
    bool hang_all;
    int tfd;
    uint32_t *dirty;
    size_t n_dirty;
    uint64_t *busy, *busy_prev; /* per physical CPU, ns */
    uint64_t usage_prev_clock;
};

/* ---- small helpers ------------------------------------------------------- */

static uint64_t div_up(uint64_t a, uint64_t b)
{
    return a / b + (a % b != 0);
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

/* a * b / c without overflow (c != 0), saturating. */
static uint64_t muldiv(uint64_t a, uint64_t b, uint64_t c)
{
    unsigned __int128 r = (unsigned __int128)a * b / c;

    return r > UINT64_MAX ? UINT64_MAX : (uint64_t)r;
}

static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    size_t i;

    for (i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

#define FNV_INIT 0xcbf29ce484222325ull

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Duplicates s into *out; false on allocation failure. NULL stays NULL. */
static bool dup_into(char **out, const char *s)
{
    *out = xstrdup(s);
    return *out || !s;
}

static int oom(xcp_hv_error *err)
{
    return xcp__hv_error_set(err, -ENOMEM, "sim: out of memory");
}

static uint64_t wall_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* Growable text buffer; a failed allocation is remembered, not fatal. */
struct buf {
    char *p;
    size_t len, cap;
    bool failed;
};

static void buf_add(struct buf *b, const void *data, size_t len)
{
    size_t cap;
    char *p;

    if (b->failed)
        return;
    if (b->len + len + 1 > b->cap) {
        cap = max_u64(b->cap * 2, b->len + len + 1024);
        p = realloc(b->p, cap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0';
}

static void buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void buf_printf(struct buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
    } else if ((size_t)n < sizeof(small)) {
        buf_add(b, small, (size_t)n);
    } else {
        char *big = malloc((size_t)n + 1);

        if (!big) {
            b->failed = true;
            return;
        }
        va_start(ap, fmt);
        vsnprintf(big, (size_t)n + 1, fmt, ap);
        va_end(ap);
        buf_add(b, big, (size_t)n);
        free(big);
    }
}

/*
 * A string as one space-free token: "-" for NULL, else "=" followed by the
 * string with %, controls, space and DEL as %XX.
 */
static void buf_str(struct buf *b, const char *s)
{
    const unsigned char *p;

    buf_add(b, " ", 1);
    if (!s) {
        buf_add(b, "-", 1);
        return;
    }
    buf_add(b, "=", 1);
    for (p = (const unsigned char *)s; *p; p++) {
        if (*p <= ' ' || *p == '%' || *p == 0x7f)
            buf_printf(b, "%%%02X", *p);
        else
            buf_add(b, p, 1);
    }
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Inverse of buf_str. 0, or -1 if malformed; *out NULL for "-". */
static int token_str(const char *tok, char **out)
{
    char *s, *q;
    int hi, lo;

    *out = NULL;
    if (strcmp(tok, "-") == 0)
        return 0;
    if (tok[0] != '=')
        return -1;
    s = malloc(strlen(tok));
    if (!s)
        return -1;
    for (q = s, tok++; *tok; tok++) {
        if (*tok != '%') {
            *q++ = *tok;
            continue;
        }
        hi = hexval(tok[1]);
        lo = hi < 0 ? -1 : hexval(tok[2]);
        if (lo < 0 || (hi == 0 && lo == 0)) {
            free(s);
            return -1;
        }
        *q++ = (char)(hi * 16 + lo);
        tok += 2;
    }
    *q = '\0';
    *out = s;
    return 0;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;

    if (!s || !isdigit((unsigned char)*s))
        return false;
    errno = 0;
    *out = strtoull(s, &end, 10);
    return errno == 0 && *end == '\0';
}

static bool parse_u32(const char *s, uint32_t *out)
{
    uint64_t v;

    if (!parse_u64(s, &v) || v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

int xcp__sim_parse_size(const char *s, uint64_t *bytes)
{
    static const struct {
        const char *suffix;
        uint64_t mult;
    } units[] = {
        {"", 1},          {"b", 1},         {"k", 1024},
        {"kib", 1024},    {"m", MiB},       {"mib", MiB},
        {"g", GiB},       {"gib", GiB},     {"t", 1024 * GiB},
        {"tib", 1024 * GiB},
    };
    unsigned __int128 v;
    uint64_t n;
    char *end;
    size_t i;

    if (!s || !isdigit((unsigned char)*s))
        return -EINVAL;
    errno = 0;
    n = strtoull(s, &end, 10);
    if (errno)
        return -EINVAL;
    for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(end, units[i].suffix) == 0) {
            v = (unsigned __int128)n * units[i].mult;
            if (v > UINT64_MAX)
                return -EINVAL;
            *bytes = (uint64_t)v;
            return 0;
        }
    }
    return -EINVAL;
}

static bool uuid_valid(const char *u)
{
    int i;

    if (!u || strlen(u) != 36)
        return false;
    for (i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (u[i] != '-')
                return false;
        } else if (!isxdigit((unsigned char)u[i])) {
            return false;
        }
    }
    return true;
}

/* ---- errno names (for XCP_SIM_FAULTS) ------------------------------------ */

static const struct {
    const char *name;
    int value;
} errno_names[] = {
    {"EPERM", EPERM},   {"ENOENT", ENOENT},       {"ESRCH", ESRCH},
    {"EINTR", EINTR},   {"EIO", EIO},             {"ENXIO", ENXIO},
    {"E2BIG", E2BIG},   {"EAGAIN", EAGAIN},       {"ENOMEM", ENOMEM},
    {"EACCES", EACCES}, {"EFAULT", EFAULT},       {"EBUSY", EBUSY},
    {"EEXIST", EEXIST}, {"ENODEV", ENODEV},       {"EINVAL", EINVAL},
    {"ENOSPC", ENOSPC}, {"EROFS", EROFS},         {"ERANGE", ERANGE},
    {"ENOSYS", ENOSYS}, {"ENOTSUP", ENOTSUP},     {"EBADMSG", EBADMSG},
    {"ETIMEDOUT", ETIMEDOUT}, {"ECONNREFUSED", ECONNREFUSED},
    {"EOVERFLOW", EOVERFLOW}, {"EDQUOT", EDQUOT},
};

static int errno_from_name(const char *s)
{
    uint32_t v;
    size_t i;

    if (parse_u32(s, &v))
        return v > 0 && v < 4096 ? (int)v : -1;
    for (i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]); i++)
        if (strcasecmp(s, errno_names[i].name) == 0)
            return errno_names[i].value;
    return -1;
}

/* ---- domains ------------------------------------------------------------- */

static void dom_free(struct dom *d)
{
    size_t i;

    if (!d)
        return;
    for (i = 0; i < d->n_disks; i++) {
        free(d->disks[i].path);
        free(d->disks[i].format);
        free(d->disks[i].vdev);
    }
    for (i = 0; i < d->n_nics; i++)
        free(d->nics[i].bridge);
    for (i = 0; i < d->n_platform; i++) {
        free(d->platform[i].key);
        free(d->platform[i].value);
    }
    free(d->disks);
    free(d->nics);
    free(d->platform);
    free(d->kernel);
    free(d->ramdisk);
    free(d->cmdline);
    free(d->bootloader);
    free(d->vcpu_ns);
    free(d);
}

static struct dom *dom_find(const struct sim *s, uint32_t domid)
{
    size_t lo = 0, hi = s->n_doms, mid;

    while (lo < hi) {
        mid = (lo + hi) / 2;
        if (s->doms[mid]->domid == domid)
            return s->doms[mid];
        if (s->doms[mid]->domid < domid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Appends d (whose domid is above all others); false if out of memory. */
static bool dom_append(struct sim *s, struct dom *d)
{
    struct dom **v = realloc(s->doms, (s->n_doms + 1) * sizeof(*v));

    if (!v)
        return false;
    s->doms = v;
    s->doms[s->n_doms++] = d;
    return true;
}

static void dom_remove(struct sim *s, struct dom *d)
{
    size_t i;

    for (i = 0; i < s->n_doms; i++) {
        if (s->doms[i] == d) {
            memmove(&s->doms[i], &s->doms[i + 1],
                    (s->n_doms - i - 1) * sizeof(s->doms[0]));
            s->n_doms--;
            break;
        }
    }
    dom_free(d);
}

static void doms_clear(struct sim *s)
{
    size_t i;

    for (i = 0; i < s->n_doms; i++)
        dom_free(s->doms[i]);
    free(s->doms);
    s->doms = NULL;
    s->n_doms = 0;
}

static uint64_t dom_claim_pages(const struct dom *d)
{
    return max_u64(d->target_pages, d->actual_pages) + d->overhead_pages;
}

uint64_t xcp__sim_overhead_pages(xcp_hv_domain_type type, uint64_t max_pages,
                                 uint32_t vcpus_max)
{
    uint64_t pages = 256 + 4ull * vcpus_max + div_up(max_pages, 512);

    if (type == XCP_HV_DOMAIN_HVM || type == XCP_HV_DOMAIN_PVH)
        pages += 256ull * vcpus_max + 2 * div_up(max_pages, 256);
    if (type == XCP_HV_DOMAIN_HVM)
        pages += 2048;
    return pages;
}

static uint64_t free_pages(const struct sim *s)
{
    uint64_t used = s->xen_pages + s->dom0_pages;
    size_t i;

    for (i = 0; i < s->n_doms; i++)
        used += dom_claim_pages(s->doms[i]);
    return used >= s->host_pages ? 0 : s->host_pages - used;
}

static void mark_dirty(struct sim *s, uint32_t domid)
{
    uint32_t *v;
    size_t i;

    for (i = 0; i < s->n_dirty; i++)
        if (s->dirty[i] == domid)
            return;
    v = realloc(s->dirty, (s->n_dirty + 1) * sizeof(*v));
    if (!v)
        return; /* the next change of the domain will try again */
    s->dirty = v;
    s->dirty[s->n_dirty++] = domid;
}

/* ---- the clock and the settle engine ------------------------------------- */

static uint32_t running_vcpus(const struct sim *s)
{
    uint32_t r = 0;
    size_t i;

    for (i = 0; i < s->n_doms; i++)
        if (s->doms[i]->state == XCP_HV_STATE_RUNNING)
            r += s->doms[i]->vcpus_online;
    return r;
}

static bool acks_pending(const struct dom *d)
{
    return d->state == XCP_HV_STATE_RUNNING &&
           d->request != XCP_HV_SHUTDOWN_NONE && !d->hung;
}

static bool balloon_moving(const struct dom *d)
{
    return d->state == XCP_HV_STATE_RUNNING &&
           d->actual_pages != d->target_pages;
}

static uint64_t balloon_gap(const struct dom *d)
{
    return d->actual_pages > d->target_pages
               ? d->actual_pages - d->target_pages
               : d->target_pages - d->actual_pages;
}

/* Running time d still needs to finish ballooning (0 = at once). */
static uint64_t balloon_time(const struct sim *s, const struct dom *d)
{
    unsigned __int128 units, r = s->opt.balloon_rate, t;

    if (r == 0)
        return 0;
    units = (unsigned __int128)balloon_gap(d) * PAGE * NS_PER_S;
    units -= units > d->balloon_carry ? d->balloon_carry : units;
    t = (units + r - 1) / r;
    return t > UINT64_MAX ? UINT64_MAX : (uint64_t)t;
}

/* Moves d's balloon for dt of running time at the configured rate. */
static void balloon_move(struct sim *s, struct dom *d, uint64_t dt)
{
    const unsigned __int128 unit = (unsigned __int128)PAGE * NS_PER_S;
    unsigned __int128 units;
    uint64_t pages;

    units = (unsigned __int128)dt * s->opt.balloon_rate + d->balloon_carry;
    pages = (uint64_t)min_u64(units / unit > UINT64_MAX ? UINT64_MAX
                                                        : (uint64_t)(units /
                                                                     unit),
                              balloon_gap(d));
    d->balloon_carry = (uint64_t)(units % unit);
    if (d->actual_pages > d->target_pages)
        d->actual_pages -= pages;
    else
        d->actual_pages += pages;
    if (d->actual_pages == d->target_pages) {
        d->balloon_carry = 0;
        mark_dirty(s, d->domid);
    }
}

/* When the next time-driven change happens, or NEVER. */
static uint64_t next_event(const struct sim *s)
{
    uint64_t t = NEVER, when;
    size_t i;

    for (i = 0; i < s->n_doms; i++) {
        const struct dom *d = s->doms[i];

        if (acks_pending(d)) {
            when = d->ack_left_ns > NEVER - s->clock ? NEVER
                                                      : s->clock +
                                                            d->ack_left_ns;
            t = min_u64(t, when);
        }
        if (balloon_moving(d)) {
            when = balloon_time(s, d);
            t = min_u64(t, when > NEVER - s->clock ? NEVER : s->clock + when);
        }
    }
    return t;
}

/* Lets dt of wall time pass with the current set of running domains. */
static void advance(struct sim *s, uint64_t dt)
{
    uint32_t r = running_vcpus(s), n = s->opt.host_cpus, v, busy_cpus;
    uint64_t share;
    size_t i;

    if (dt == 0)
        return;
    share = r <= n ? dt : muldiv(dt, n, r);
    busy_cpus = r < n ? r : n;
    for (v = 0; v < busy_cpus; v++)
        s->busy[v] += dt;
    for (i = 0; i < s->n_doms; i++) {
        struct dom *d = s->doms[i];

        if (d->state != XCP_HV_STATE_RUNNING)
            continue;
        for (v = 0; v < d->vcpus_online; v++)
            d->vcpu_ns[v] += share;
        if (acks_pending(d))
            d->ack_left_ns -= min_u64(dt, d->ack_left_ns);
        if (d->actual_pages != d->target_pages && s->opt.balloon_rate)
            balloon_move(s, d, dt);
    }
    s->clock += dt;
}

/* Applies what is due at s->clock. */
static void apply_due(struct sim *s)
{
    size_t i;

    for (i = 0; i < s->n_doms; i++) {
        struct dom *d = s->doms[i];

        if (acks_pending(d) && d->ack_left_ns == 0) {
            d->state = XCP_HV_STATE_SHUTDOWN;
            d->reason = d->request;
            d->request = XCP_HV_SHUTDOWN_NONE;
            mark_dirty(s, d->domid);
        }
        if (balloon_moving(d) && balloon_time(s, d) == 0) {
            d->actual_pages = d->target_pages;
            d->balloon_carry = 0;
            mark_dirty(s, d->domid);
        }
    }
}

/* Brings the model to time `to`, change by change. */
static void sim_settle(struct sim *s, uint64_t to)
{
    uint64_t t;

    for (;;) {
        apply_due(s);
        t = next_event(s);
        if (t > to)
            break;
        advance(s, t - s->clock);
    }
    if (to > s->clock)
        advance(s, to - s->clock);
}

/* The wall clock, but never before what the model has already seen. */
static uint64_t sim_now(const struct sim *s)
{
    return max_u64(wall_ns(), s->clock);
}

static void settle_now(struct sim *s)
{
    sim_settle(s, sim_now(s));
}

/* Arms the timerfd for the next change the caller should hear about. */
static void rearm(struct sim *s)
{
    struct itimerspec its;
    uint64_t t = s->n_dirty ? 1 : next_event(s);

    memset(&its, 0, sizeof(its));
    if (t != NEVER) {
        its.it_value.tv_sec = (time_t)(t / NS_PER_S);
        its.it_value.tv_nsec = (long)(t % NS_PER_S);
    }
    if (s->tfd >= 0)
        timerfd_settime(s->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* ---- files --------------------------------------------------------------- */

static int fsync_dir_of(const char *path)
{
    char *dir = strdup(path), *slash;
    int fd, rc = 0;

    if (!dir)
        return -ENOMEM;
    slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        strcpy(dir, ".");
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) < 0)
        rc = -errno;
    if (fd >= 0)
        close(fd);
    free(dir);
    return rc;
}

/* Replaces path with data so that a reader sees the old or the new file. */
static int write_atomic(const char *path, const void *data, size_t len,
                        const char *what, xcp_hv_error *err)
{
    const char *p = data;
    char *tmp = NULL;
    size_t done = 0;
    ssize_t n;
    int fd = -1, rc;

    if (asprintf(&tmp, "%s.tmp", path) < 0) {
        tmp = NULL;
        rc = oom(err);
        goto out;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = xcp__hv_error_set(err, -errno, "sim: cannot create %s %s: %s",
                               what, tmp, strerror(errno));
        goto out;
    }
    while (done < len) {
        n = write(fd, p + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = xcp__hv_error_set(err, -errno, "sim: cannot write %s %s: %s",
                                   what, tmp, strerror(errno));
            goto out;
        }
        done += (size_t)n;
    }
    if (fsync(fd) < 0 || close(fd) < 0) {
        fd = -1;
        rc = xcp__hv_error_set(err, -errno, "sim: cannot sync %s %s: %s",
                               what, tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) < 0) {
        rc = xcp__hv_error_set(err, -errno, "sim: cannot rename %s to %s: %s",
                               tmp, path, strerror(errno));
        goto out;
    }
    free(tmp);
    tmp = NULL;
    rc = fsync_dir_of(path);
    if (rc < 0)
        xcp__hv_error_set(err, rc, "sim: cannot sync the directory of %s: %s",
                          path, strerror(-rc));
out:
    if (fd >= 0)
        close(fd);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    return rc;
}

/* Reads a whole file (at most max bytes) into a NUL-terminated buffer. */
static int read_all(const char *path, size_t max, char **out, size_t *len,
                    const char *what, xcp_hv_error *err)
{
    struct buf b = {0};
    char chunk[65536];
    ssize_t n;
    int fd, rc = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return xcp__hv_error_set(err, -errno, "sim: cannot open %s %s: %s",
                                 what, path, strerror(errno));
    for (;;) {
        n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = xcp__hv_error_set(err, -errno, "sim: cannot read %s %s: %s",
                                   what, path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        if (b.len + (size_t)n > max) {
            rc = xcp__hv_error_set(err, -EFBIG,
                                   "sim: %s %s is larger than %zu bytes", what,
                                   path, max);
            goto out;
        }
        buf_add(&b, chunk, (size_t)n);
    }
    if (!b.p)
        buf_add(&b, "", 0);
    if (b.failed) {
        rc = oom(err);
        goto out;
    }
    *out = b.p;
    *len = b.len;
    b.p = NULL;
out:
    close(fd);
    free(b.p);
    return rc;
}

/* ---- the state file ------------------------------------------------------ */

static void emit_dom(struct buf *b, const struct dom *d)
{
    size_t i;
    uint32_t v;

    buf_printf(b, "domain %" PRIu32 "\nuuid %s\nname", d->domid, d->uuid);
    buf_str(b, d->name);
    buf_printf(b, "\ntype %s\nstate %s\nreason %s\n",
               xcp__hv_domain_type_name(d->type),
               xcp__hv_state_name(d->state),
               xcp__hv_shutdown_reason_name(d->reason));
    buf_printf(b, "pages %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
               d->max_pages, d->target_pages, d->actual_pages,
               d->balloon_carry);
    buf_printf(b, "vcpus %" PRIu32 " %" PRIu32 "\nvcpu-ns", d->vcpus_max,
               d->vcpus_online);
    for (v = 0; v < d->vcpus_max; v++)
        buf_printf(b, " %" PRIu64, d->vcpu_ns[v]);
    buf_printf(b, "\nstart %" PRId64 "\nrequest %s %" PRIu64 "\nhung %d\n",
               d->start_ns, xcp__hv_shutdown_reason_name(d->request),
               d->ack_left_ns, d->hung);
    buf_add(b, "boot", 4);
    buf_str(b, d->kernel);
    buf_str(b, d->ramdisk);
    buf_str(b, d->cmdline);
    buf_str(b, d->bootloader);
    buf_add(b, "\n", 1);
    for (i = 0; i < d->n_disks; i++) {
        const struct disk *k = &d->disks[i];

        buf_add(b, "disk", 4);
        buf_str(b, k->path);
        buf_str(b, k->format);
        buf_str(b, k->vdev);
        buf_printf(b, " %d %d\n", k->ro, k->cdrom);
    }
    for (i = 0; i < d->n_nics; i++) {
        const struct nic *n = &d->nics[i];

        buf_printf(b, "nic %02x:%02x:%02x:%02x:%02x:%02x", n->mac[0],
                   n->mac[1], n->mac[2], n->mac[3], n->mac[4], n->mac[5]);
        buf_str(b, n->bridge);
        buf_printf(b, " %" PRIu32 " %" PRIu32 "\n", n->devid, n->mtu);
    }
    for (i = 0; i < d->n_platform; i++) {
        buf_add(b, "platform", 8);
        buf_str(b, d->platform[i].key);
        buf_str(b, d->platform[i].value);
        buf_add(b, "\n", 1);
    }
    buf_add(b, "end\n", 4);
}

static int state_save(struct sim *s, xcp_hv_error *err)
{
    struct buf b = {0};
    size_t i;
    int rc;

    buf_printf(&b, "%s %d\nnext-domid %" PRIu32 "\nclock %" PRIu64
                   "\nboot %" PRIu64 "\n",
               STATE_MAGIC, FORMAT_VERSION, s->next_domid, s->clock, s->boot);
    for (i = 0; i < s->n_doms; i++)
        emit_dom(&b, s->doms[i]);
    if (!b.failed)
        buf_printf(&b, "checksum %016" PRIx64 "\n",
                   fnv1a(FNV_INIT, b.p, b.len));
    if (b.failed) {
        rc = oom(err);
        goto out;
    }
    rc = write_atomic(s->path, b.p, b.len, "state file", err);
out:
    free(b.p);
    return rc;
}

#define MAX_TOKENS 8

/* Splits a line in place into space-separated tokens. */
static int tokenize(char *line, char **tok)
{
    int n = 0;
    char *p = line;

    while (*p && n < MAX_TOKENS) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        tok[n++] = p;
        while (*p && *p != ' ')
            p++;
        if (*p)
            *p++ = '\0';
    }
    return *p ? -1 : n;
}

static bool parse_mac(const char *s, uint8_t mac[6])
{
    unsigned v[6];
    char tail;
    int i;

    if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3],
               &v[4], &v[5], &tail) != 6)
        return false;
    for (i = 0; i < 6; i++)
        mac[i] = (uint8_t)v[i];
    return true;
}

/*
 * Parses one line of a domain block into d. 1 at "end", 0 if consumed,
 * -1 if malformed.
 */
static int parse_dom_line(struct dom *d, char **t, int n)
{
    int e;

    if (n == 1 && strcmp(t[0], "end") == 0)
        return 1;
    if (n == 2 && strcmp(t[0], "uuid") == 0 && uuid_valid(t[1])) {
        memcpy(d->uuid, t[1], XCP_HV_UUID_LEN);
        return 0;
    }
    if (n == 2 && strcmp(t[0], "name") == 0) {
        char *name;

        if (token_str(t[1], &name) < 0 || !name)
            return -1;
        snprintf(d->name, sizeof(d->name), "%s", name);
        free(name);
        return 0;
    }
    if (n == 2 && strcmp(t[0], "type") == 0) {
        e = xcp__hv_domain_type_from_name(t[1]);
        d->type = (xcp_hv_domain_type)e;
        return e < 0 ? -1 : 0;
    }
    if (n == 2 && strcmp(t[0], "state") == 0) {
        e = xcp__hv_state_from_name(t[1]);
        d->state = (xcp_hv_domain_state)e;
        return e < 0 ? -1 : 0;
    }
    if (n == 2 && strcmp(t[0], "reason") == 0) {
        e = xcp__hv_shutdown_reason_from_name(t[1]);
        d->reason = (xcp_hv_shutdown_reason)e;
        return e < 0 ? -1 : 0;
    }
    if (n == 5 && strcmp(t[0], "pages") == 0)
        return parse_u64(t[1], &d->max_pages) &&
                       parse_u64(t[2], &d->target_pages) &&
                       parse_u64(t[3], &d->actual_pages) &&
                       parse_u64(t[4], &d->balloon_carry)
                   ? 0
                   : -1;
    if (n == 3 && strcmp(t[0], "vcpus") == 0 && !d->vcpu_ns) {
        if (!parse_u32(t[1], &d->vcpus_max) ||
            !parse_u32(t[2], &d->vcpus_online) || d->vcpus_max == 0 ||
            d->vcpus_max > PV_MAX_VCPUS || d->vcpus_online > d->vcpus_max)
            return -1;
        d->vcpu_ns = calloc(d->vcpus_max, sizeof(*d->vcpu_ns));
        return d->vcpu_ns ? 0 : -1;
    }
    if (n == 2 && strcmp(t[0], "start") == 0) {
        uint64_t v;

        if (!parse_u64(t[1], &v) || v > INT64_MAX)
            return -1;
        d->start_ns = (int64_t)v;
        return 0;
    }
    if (n == 3 && strcmp(t[0], "request") == 0) {
        e = xcp__hv_shutdown_reason_from_name(t[1]);
        d->request = (xcp_hv_shutdown_reason)e;
        return e < 0 || !parse_u64(t[2], &d->ack_left_ns) ? -1 : 0;
    }
    if (n == 2 && strcmp(t[0], "hung") == 0) {
        d->hung = strcmp(t[1], "1") == 0;
        return d->hung || strcmp(t[1], "0") == 0 ? 0 : -1;
    }
    if (n == 5 && strcmp(t[0], "boot") == 0)
        return token_str(t[1], &d->kernel) || token_str(t[2], &d->ramdisk) ||
                       token_str(t[3], &d->cmdline) ||
                       token_str(t[4], &d->bootloader)
                   ? -1
                   : 0;
    if (n == 6 && strcmp(t[0], "disk") == 0) {
        struct disk *v = realloc(d->disks, (d->n_disks + 1) * sizeof(*v)), *k;

        if (!v)
            return -1;
        d->disks = v;
        k = memset(&v[d->n_disks++], 0, sizeof(*k));
        k->ro = strcmp(t[4], "1") == 0;
        k->cdrom = strcmp(t[5], "1") == 0;
        return token_str(t[1], &k->path) || token_str(t[2], &k->format) ||
                       token_str(t[3], &k->vdev) || !k->vdev || !k->format
                   ? -1
                   : 0;
    }
    if (n == 5 && strcmp(t[0], "nic") == 0) {
        struct nic *v = realloc(d->nics, (d->n_nics + 1) * sizeof(*v)), *k;

        if (!v)
            return -1;
        d->nics = v;
        k = memset(&v[d->n_nics++], 0, sizeof(*k));
        return !parse_mac(t[1], k->mac) || token_str(t[2], &k->bridge) ||
                       !parse_u32(t[3], &k->devid) || !parse_u32(t[4], &k->mtu)
                   ? -1
                   : 0;
    }
    if (n == 3 && strcmp(t[0], "platform") == 0) {
        struct kv *v = realloc(d->platform, (d->n_platform + 1) * sizeof(*v));
        struct kv *k;

        if (!v)
            return -1;
        d->platform = v;
        k = memset(&v[d->n_platform++], 0, sizeof(*k));
        return token_str(t[1], &k->key) || token_str(t[2], &k->value) ||
                       !k->key || !k->value
                   ? -1
                   : 0;
    }
    return -1;
}

/* "vcpu-ns a b c": one number per vCPU, as many as vcpus_max. */
static int parse_vcpu_ns(struct dom *d, char *line)
{
    char *p = line + strlen("vcpu-ns"), *end;
    uint32_t v;

    for (v = 0; v < d->vcpus_max; v++) {
        if (*p != ' ' || !isdigit((unsigned char)p[1]))
            return -1;
        errno = 0;
        d->vcpu_ns[v] = strtoull(p + 1, &end, 10);
        if (errno)
            return -1;
        p = end;
    }
    return *p ? -1 : 0;
}

static bool dom_complete(const struct dom *d)
{
    return d->uuid[0] && d->name[0] && d->vcpu_ns && d->max_pages &&
           d->target_pages <= d->max_pages && d->actual_pages <= d->max_pages;
}

/* Loads the state file into s (which holds no domains yet). */
static int state_parse(struct sim *s, char *text, size_t len,
                       xcp_hv_error *err)
{
    char *line, *next, *last, *tok[MAX_TOKENS];
    struct dom *d = NULL;
    uint64_t sum, want;
    uint32_t prev = 0;
    int n, lineno = 0, rc;
    bool header = false;

    /* the checksum line covers everything before it */
    if (len == 0 || text[len - 1] != '\n')
        goto corrupt;
    text[len - 1] = '\0';
    last = strrchr(text, '\n');
    if (!last || sscanf(last + 1, "checksum %16" SCNx64, &want) != 1)
        goto corrupt;
    sum = fnv1a(FNV_INIT, text, (size_t)(last + 1 - text));
    if (sum != want)
        goto corrupt;
    *last = '\0';

    for (line = text; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        lineno++;
        if (d && strncmp(line, "vcpu-ns", 7) == 0 && d->vcpu_ns) {
            if (parse_vcpu_ns(d, line) < 0)
                goto bad_line;
            continue;
        }
        n = tokenize(line, tok);
        if (n <= 0)
            goto bad_line;
        if (!header) {
            if (n != 2 || strcmp(tok[0], STATE_MAGIC) != 0)
                goto bad_line;
            if (strcmp(tok[1], "1") != 0) {
                rc = xcp__hv_error_set(err, -EPROTO,
                                       "sim: state file %s has format "
                                       "version %s, this build reads %d",
                                       s->path, tok[1], FORMAT_VERSION);
                goto out;
            }
            header = true;
        } else if (d) {
            rc = parse_dom_line(d, tok, n);
            if (rc < 0)
                goto bad_line;
            if (rc == 1) {
                if (!dom_complete(d) || d->domid <= prev ||
                    d->domid >= s->next_domid)
                    goto bad_line;
                d->overhead_pages = xcp__sim_overhead_pages(
                    d->type, d->max_pages, d->vcpus_max);
                prev = d->domid;
                if (!dom_append(s, d)) {
                    rc = oom(err);
                    goto out;
                }
                d = NULL;
            }
        } else if (n == 2 && strcmp(tok[0], "next-domid") == 0) {
            if (!parse_u32(tok[1], &s->next_domid) || s->next_domid == 0)
                goto bad_line;
        } else if (n == 2 && strcmp(tok[0], "clock") == 0) {
            if (!parse_u64(tok[1], &s->clock))
                goto bad_line;
        } else if (n == 2 && strcmp(tok[0], "boot") == 0) {
            if (!parse_u64(tok[1], &s->boot))
                goto bad_line;
        } else if (n == 2 && strcmp(tok[0], "domain") == 0) {
            d = calloc(1, sizeof(*d));
            if (!d) {
                rc = oom(err);
                goto out;
            }
            if (!parse_u32(tok[1], &d->domid) || d->domid == 0)
                goto bad_line;
        } else {
            goto bad_line;
        }
    }
    if (d || !header)
        goto corrupt;
    rc = 0;
    goto out;

bad_line:
    rc = xcp__hv_error_set(err, -EBADMSG,
                           "sim: state file %s is malformed at line %d",
                           s->path, lineno);
    goto out;
corrupt:
    rc = xcp__hv_error_set(err, -EBADMSG,
                           "sim: state file %s is corrupt (truncated or "
                           "checksum mismatch)", s->path);
out:
    dom_free(d);
    return rc;
}

static int state_load(struct sim *s, xcp_hv_error *err)
{
    char *text = NULL;
    size_t len;
    int rc;

    rc = read_all(s->path, SIZE_MAX / 2, &text, &len, "state file", err);
    if (rc == -ENOENT) {
        /* a new simulated host */
        xcp__hv_error_clear(err);
        s->next_domid = 1;
        s->clock = s->boot = wall_ns();
        rc = state_save(s, err);
        goto out;
    }
    if (rc < 0)
        goto out;
    rc = state_parse(s, text, len, err);
    if (rc < 0)
        doms_clear(s);
out:
    free(text);
    return rc;
}

/*
 * Makes the change just done in memory durable. If the write fails, the
 * change is undone by reloading the last durable state, so that memory
 * and disk never disagree about which domains exist.
 */
static int commit(struct sim *s, xcp_hv_error *err)
{
    xcp_hv_error ignored;
    int rc = state_save(s, err);

    if (rc < 0) {
        doms_clear(s);
        s->n_dirty = 0;
        state_load(s, &ignored);
        settle_now(s);
    }
    rearm(s);
    return rc;
}

/* ---- faults -------------------------------------------------------------- */

static int check_fault(struct sim *s, xcp_hv_op op, xcp_hv_error *err)
{
    int e = s->fail[op].error;

    if (s->fail[op].count == 0)
        return 0;
    if (s->fail[op].count != UINT_MAX)
        s->fail[op].count--;
    return xcp__hv_error_set(err, -e, "sim: injected fault: %s fails: %s",
                             xcp__hv_op_name(op), strerror(e));
}

static int crash_dom(struct sim *s, struct dom *d)
{
    if (d->state == XCP_HV_STATE_SHUTDOWN)
        return 0;
    d->state = XCP_HV_STATE_SHUTDOWN;
    d->reason = XCP_HV_SHUTDOWN_CRASH;
    d->request = XCP_HV_SHUTDOWN_NONE;
    mark_dirty(s, d->domid);
    return 1;
}

static int parse_faults(struct sim *s, const char *spec, xcp_hv_error *err)
{
    char *copy = strdup(spec ? spec : ""), *item, *save = NULL, *val, *star;
    char whole[128];
    uint32_t domid, count;
    struct dom *d;
    bool changed = false;
    int op, e, rc = 0;

    if (!copy)
        return oom(err);
    for (item = strtok_r(copy, ",; \t\n", &save); item;
         item = strtok_r(NULL, ",; \t\n", &save)) {
        snprintf(whole, sizeof(whole), "%s", item);
        val = strchr(item, '=');
        if (!val)
            goto bad;
        *val++ = '\0';
        if (strcmp(item, "hang") == 0 && strcmp(val, "*") == 0) {
            s->hang_all = true;
        } else if (strcmp(item, "hang") == 0 || strcmp(item, "crash") == 0) {
            if (!parse_u32(val, &domid))
                goto bad;
            d = dom_find(s, domid);
            if (d && item[0] == 'h') {
                changed |= !d->hung;
                d->hung = true;
            } else if (d) {
                changed |= crash_dom(s, d) > 0;
            }
        } else {
            op = xcp__hv_op_from_name(item);
            star = strchr(val, '*');
            count = 1;
            if (star) {
                *star++ = '\0';
                if (strcmp(star, "inf") == 0)
                    count = UINT_MAX;
                else if (!parse_u32(star, &count))
                    goto bad;
            }
            e = errno_from_name(val);
            if (op < 0 || e < 0)
                goto bad;
            s->fail[op].error = e;
            s->fail[op].count = count;
        }
    }
    if (changed)
        rc = commit(s, err);
    goto out;
bad:
    rc = xcp__hv_error_set(err, -EINVAL,
                           "sim: XCP_SIM_FAULTS: cannot parse '%s' (expected "
                           "op=ERRNO[*count], hang=domid|*, crash=domid)",
                           whole);
out:
    free(copy);
    return rc;
}

/* ---- host ---------------------------------------------------------------- */

static uint64_t machine_memory(void)
{
    char line[256];
    unsigned long long kib = 0;
    FILE *f = fopen("/proc/meminfo", "re");

    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "MemTotal: %llu kB", &kib) == 1)
            break;
    fclose(f);
    return (uint64_t)kib * 1024;
}

static int env_size(const char *name, uint64_t *out, xcp_hv_error *err)
{
    const char *v = getenv(name);

    if (!v || !*v)
        return 0;
    if (xcp__sim_parse_size(v, out) < 0)
        return xcp__hv_error_set(err, -EINVAL,
                                 "sim: %s='%s' is not a size (bytes, or "
                                 "with a suffix such as MiB or GiB)", name, v);
    return 0;
}

static int env_u64(const char *name, uint64_t *out, xcp_hv_error *err)
{
    const char *v = getenv(name);

    if (!v || !*v)
        return 0;
    if (!parse_u64(v, out))
        return xcp__hv_error_set(err, -EINVAL,
                                 "sim: %s='%s' is not a number", name, v);
    return 0;
}

static uint64_t dom0_default(uint64_t host)
{
    return min_u64(min_u64(GiB + host / 20, 8 * GiB), host / 4);
}

int xcp__sim_options_default(struct xcp__sim_options *opt, xcp_hv_error *err)
{
    uint64_t cpus = 0, delay_ms = 20;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int rc;

    memset(opt, 0, sizeof(*opt));
    opt->host_memory = machine_memory();
    rc = env_size("XCP_SIM_HOST_MEMORY", &opt->host_memory, err);
    if (rc < 0)
        return rc;
    rc = env_u64("XCP_SIM_HOST_CPUS", &cpus, err);
    if (rc < 0)
        return rc;
    if (cpus == 0)
        cpus = online > 0 ? (uint64_t)online : 1;
    if (cpus > 4096)
        return xcp__hv_error_set(err, -EINVAL,
                                 "sim: XCP_SIM_HOST_CPUS=%" PRIu64
                                 " is more than 4096", cpus);
    opt->host_cpus = (uint32_t)cpus;
    opt->dom0_memory = dom0_default(opt->host_memory);
    rc = env_size("XCP_SIM_DOM0_MEMORY", &opt->dom0_memory, err);
    if (rc < 0)
        return rc;
    rc = env_u64("XCP_SIM_SHUTDOWN_DELAY_MS", &delay_ms, err);
    if (rc < 0)
        return rc;
    opt->shutdown_delay_ns = muldiv(delay_ms, NS_PER_MS, 1);
    rc = env_size("XCP_SIM_BALLOON_RATE", &opt->balloon_rate, err);
    if (rc < 0)
        return rc;
    opt->faults = getenv("XCP_SIM_FAULTS");
    return 0;
}

static int sim_host_info(void *self, xcp_hv_host_info *out, xcp_hv_error *err)
{
    struct sim *s = self;
    int rc = check_fault(s, XCP_HV_OP_HOST_INFO, err);

    if (rc < 0)
        return rc;
    settle_now(s);
    memset(out, 0, sizeof(*out));
    if (gethostname(out->hostname, sizeof(out->hostname) - 1) < 0)
        snprintf(out->hostname, sizeof(out->hostname), "localhost");
    out->memory_total = s->host_pages * PAGE;
    out->memory_free = free_pages(s) * PAGE;
    out->memory_hypervisor = s->xen_pages * PAGE;
    out->nr_cpus = s->opt.host_cpus;
    xcp__hv_host_cpuinfo(out, s->opt.host_cpus);
    snprintf(out->hv_version, sizeof(out->hv_version), "4.17.0-sim");
    /* offered whatever this machine's CPU is: the sim runs no guest code */
    snprintf(out->capabilities, sizeof(out->capabilities),
             "xen-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p hvm-3.0-x86_64");
    rearm(s);
    return 0;
}

static int sim_host_cpu_usage(void *self, double **util, size_t *n,
                              xcp_hv_error *err)
{
    struct sim *s = self;
    uint32_t i, r, ncpu = s->opt.host_cpus;
    uint64_t dt;
    double *u;
    int rc = check_fault(s, XCP_HV_OP_HOST_CPU_USAGE, err);

    if (rc < 0)
        return rc;
    settle_now(s);
    u = calloc(ncpu, sizeof(*u));
    if (!u)
        return oom(err);
    dt = s->clock - s->usage_prev_clock;
    r = running_vcpus(s);
    for (i = 0; i < ncpu; i++) {
        if (dt)
            u[i] = (double)(s->busy[i] - s->busy_prev[i]) / (double)dt;
        else
            u[i] = i < r ? 1.0 : 0.0;
        s->busy_prev[i] = s->busy[i];
    }
    s->usage_prev_clock = s->clock;
    *util = u;
    *n = ncpu;
    rearm(s);
    return 0;
}

/* ---- domain info --------------------------------------------------------- */

static uint64_t dom0_cpu_ns(const struct sim *s)
{
    return muldiv(s->clock - min_u64(s->boot, s->clock),
                  (uint64_t)s->dom0_vcpus * DOM0_LOAD_PERMILLE, 1000);
}

static void fill_dom0(const struct sim *s, xcp_hv_domain_info *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->vm_uuid, sizeof(out->vm_uuid), "%s", DOM0_UUID);
    snprintf(out->name, sizeof(out->name), "Domain-0");
    out->type = XCP_HV_DOMAIN_PV;
    out->state = XCP_HV_STATE_RUNNING;
    out->memory_actual = out->memory_target = out->memory_max =
        s->dom0_pages * PAGE;
    out->vcpus_online = out->vcpus_max = s->dom0_vcpus;
    out->cpu_time_ns = dom0_cpu_ns(s);
    out->start_time_ns = (int64_t)s->boot;
}

static void fill_info(const struct dom *d, xcp_hv_domain_info *out)
{
    uint32_t v;

    memset(out, 0, sizeof(*out));
    out->domid = d->domid;
    memcpy(out->vm_uuid, d->uuid, sizeof(out->vm_uuid));
    memcpy(out->name, d->name, sizeof(out->name));
    out->type = d->type;
    out->state = d->state;
    out->shutdown_reason = d->reason;
    out->memory_actual = d->actual_pages * PAGE;
    out->memory_target = d->target_pages * PAGE;
    out->memory_max = d->max_pages * PAGE;
    out->memory_overhead = d->overhead_pages * PAGE;
    out->vcpus_online = d->vcpus_online;
    out->vcpus_max = d->vcpus_max;
    for (v = 0; v < d->vcpus_max; v++)
        out->cpu_time_ns += d->vcpu_ns[v];
    out->start_time_ns = d->start_ns;
}

/*
 * Looks up a domain for an operation. dom0 (domid 0) exists but is not a
 * struct dom: the operations that take *out refuse it with -EPERM.
 */
static int get_dom(struct sim *s, uint32_t domid, const char *what,
                   struct dom **out, xcp_hv_error *err)
{
    if (domid == 0)
        return xcp__hv_error_set(err, -EPERM,
                                 "sim: refusing to %s domain 0, the control "
                                 "domain", what);
    *out = dom_find(s, domid);
    if (!*out)
        return xcp__hv_error_set(err, -ESRCH,
                                 "sim: cannot %s domain %" PRIu32
                                 ": no such domain", what, domid);
    return 0;
}

/* Refuses to act on a domain that has shut down, naming why. */
static int need_live(const struct dom *d, const char *what, xcp_hv_error *err)
{
    if (d->state != XCP_HV_STATE_SHUTDOWN)
        return 0;
    return xcp__hv_error_set(err, -EINVAL,
                             "sim: cannot %s domain %" PRIu32 " (VM %s): it "
                             "has shut down (%s)", what, d->domid, d->uuid,
                             xcp__hv_shutdown_reason_name(d->reason));
}

static int sim_domain_info(void *self, uint32_t domid,
                           xcp_hv_domain_info *out, xcp_hv_error *err)
{
    struct sim *s = self;
    struct dom *d;
    int rc = check_fault(s, XCP_HV_OP_DOMAIN_INFO, err);

    if (rc < 0)
        return rc;
    settle_now(s);
    rearm(s);
    if (domid == 0) {
        fill_dom0(s, out);
        return 0;
    }
    rc = get_dom(s, domid, "query", &d, err);
    if (rc < 0)
        return rc;
    fill_info(d, out);
    return 0;
}

static int sim_domain_list(void *self, xcp_hv_domain_info **out, size_t *n,
                           xcp_hv_error *err)
{
    struct sim *s = self;
    xcp_hv_domain_info *v;
    size_t i;
    int rc = check_fault(s, XCP_HV_OP_DOMAIN_LIST, err);

    if (rc < 0)
        return rc;
    settle_now(s);
    rearm(s);
    v = calloc(s->n_doms + 1, sizeof(*v));
    if (!v)
        return oom(err);
    fill_dom0(s, &v[0]);
    for (i = 0; i < s->n_doms; i++)
        fill_info(s->doms[i], &v[i + 1]);
    *out = v;
    *n = s->n_doms + 1;
    return 0;
}

static int sim_domain_vcpu_info(void *self, uint32_t domid,
                                xcp_hv_vcpu_info **out, size_t *n,
                                xcp_hv_error *err)
{
    struct sim *s = self;
    xcp_hv_vcpu_info *v;
    struct dom *d = NULL;
    uint32_t i, count;
    int rc = check_fault(s, XCP_HV_OP_DOMAIN_VCPU_INFO, err);

    if (rc < 0)
        return rc;
    settle_now(s);
    rearm(s);
    if (domid != 0) {
        rc = get_dom(s, domid, "query", &d, err);
        if (rc < 0)
            return rc;
    }
    count = d ? d->vcpus_max : s->dom0_vcpus;
    v = calloc(count, sizeof(*v));
    if (!v)
        return oom(err);
    for (i = 0; i < count; i++) {
        v[i].id = i;
        v[i].online = d ? i < d->vcpus_online : true;
        v[i].running = d && v[i].online && d->state == XCP_HV_STATE_RUNNING;
        v[i].pcpu = (domid + i) % s->opt.host_cpus;
        v[i].cpu_time_ns = d ? d->vcpu_ns[i] : dom0_cpu_ns(s) / count;
    }
    *out = v;
    *n = count;
    return 0;
}

/* ---- configuration checks ------------------------------------------------ */

static bool vdev_valid(const char *v)
{
    size_t skip;

    if (!v)
        return false;
    if (strncmp(v, "xvd", 3) == 0)
        skip = 3;
    else if (strncmp(v, "hd", 2) == 0 || strncmp(v, "sd", 2) == 0)
        skip = 2;
    else
        return false;
    v += skip;
    if (!*v)
        return false;
    while (*v >= 'a' && *v <= 'z')
        v++;
    return *v == '\0';
}

static bool format_valid(const char *f)
{
    return !f || strcmp(f, "raw") == 0 || strcmp(f, "qcow2") == 0 ||
           strcmp(f, "vhd") == 0;
}

/* A file the domain will use must exist, as the backends would open it. */
static int need_file(const char *uuid, const char *what, const char *path,
                     xcp_hv_error *err)
{
    struct stat st;

    if (stat(path, &st) < 0)
        return xcp__hv_error_set(err, -errno, "sim: VM %s: %s %s: %s", uuid,
                                 what, path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return xcp__hv_error_set(err, -EISDIR, "sim: VM %s: %s %s: %s", uuid,
                                 what, path, strerror(EISDIR));
    return 0;
}

static int check_disk(const char *uuid, const xcp_hv_disk *k,
                      xcp_hv_error *err)
{
    bool empty = !k->path || !*k->path;

    if (!vdev_valid(k->vdev))
        return xcp__hv_error_set(err, -EINVAL,
                                 "sim: VM %s: invalid virtual device name "
                                 "'%s' (want xvdX, hdX or sdX)", uuid,
                                 k->vdev ? k->vdev : "(null)");
    if (!format_valid(k->format))
        return xcp__hv_error_set(err, -EINVAL,
                                 "sim: VM %s: disk %s: unsupported format "
                                 "'%s' (raw, qcow2, vhd)", uuid, k->vdev,
                                 k->format);
    if (empty && !k->cdrom)
        return xcp__hv_error_set(err, -EINVAL,
                                 "sim: VM %s: disk %s has no image path",
                                 uuid, k->vdev);
    return empty ? 0 : need_file(uuid, "disk image", k->path, err);
}

static int check_nic(const char *uuid, const xcp_hv_nic *n, xcp_hv_error *err)
{
    if (n->mac[0] & 1)
        return xcp__hv_error_set(err, -EINVAL,
                                 "sim: VM %s: NIC %" PRIu32 ": "
                                 "%02x:%02x:%02x:%02x:%02x:%02x is a "
                                 "multicast MAC address", uuid, n->devid,
                                 n->mac[0], n->mac[1], n->mac[2], n->mac[3],
                                 n->mac[4], n->mac[5]);
    if (!n->bridge || !*n->bridge)
        return xcp__hv_error_set(err, -EINVAL,
                                 "sim: VM %s: NIC %" PRIu32 " has no bridge",
                                 uuid, n->devid);
    if (n->mtu && (n->mtu < 68 || n->mtu > 65535))
        return xcp__hv_error_set(err, -EINVAL,
                                 "sim: VM %s: NIC %" PRIu32 ": MTU %" PRIu32
                                 " out of range 68..65535", uuid, n->devid,
                                 n->mtu);
    return 0;
}

static int disk_clash(const char *uuid, const struct disk *have, size_t n,
                      const char *vdev, xcp_hv_error *err)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (strcmp(have[i].vdev, vdev) == 0)
            return xcp__hv_error_set(err, -EEXIST,
                                     "sim: VM %s: virtual device %s is "
                                     "already in use", uuid, vdev);
    return 0;
}

static int nic_clash(const char *uuid, const struct nic *have, size_t n,
                     const xcp_hv_nic *nic, xcp_hv_error *err)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (have[i].devid == nic->devid)
            return xcp__hv_error_set(err, -EEXIST,
                                     "sim: VM %s: NIC device %" PRIu32
                                     " is already in use", uuid, nic->devid);
        if (memcmp(have[i].mac, nic->mac, 6) == 0)
            return xcp__hv_error_set(err, -EEXIST,
                                     "sim: VM %s: NIC %" PRIu32 " has the "
                                     "MAC address of NIC %" PRIu32, uuid,
                                     nic->devid, have[i].devid);
    }
    return 0;
}

static bool disk_copy(struct disk *k, const xcp_hv_disk *src)
{
    memset(k, 0, sizeof(*k));
    k->ro = src->readonly || src->cdrom;
    k->cdrom = src->cdrom;
    return dup_into(&k->path, src->path && *src->path ? src->path : NULL) &&
           dup_into(&k->format, src->format ? src->format : "raw") &&
           dup_into(&k->vdev, src->vdev);
}

static bool nic_copy(struct nic *k, const xcp_hv_nic *src)
{
    memset(k, 0, sizeof(*k));
    memcpy(k->mac, src->mac, 6);
    k->devid = src->devid;
    k->mtu = src->mtu ? src->mtu : 1500;
    return dup_into(&k->bridge, src->bridge);
}

/*
 * Checks a config as libxl would before building, and turns it into a
 * (not yet registered) domain. Memory fit is checked by the caller.
 */
static int dom_from_config(struct sim *s, const xcp_hv_domain_config *c,
                           struct dom **out, xcp_hv_error *err)
{
    const char *u = c && c->vm_uuid ? c->vm_uuid : "(none)";
    uint32_t limit, online;
    struct dom *d = NULL;
    size_t i;
    int rc;

    if (!c || c->version < 1)
        return xcp__hv_error_set(err, -EINVAL,
                                 "sim: domain config missing or of unknown "
                                 "version");
    if (!uuid_valid(c->vm_uuid))
        return xcp__hv_error_set(err, -EINVAL,
                                 "sim: '%s' is not a VM uuid", u);
    if (!c->name || !*c->name || strlen(c->name) >= XCP_HV_NAME_MAX)
        return xcp__hv_error_set(err, -EINVAL,
                                 "sim: VM %s: domain name empty or longer "
                                 "than %d bytes", u, XCP_HV_NAME_MAX - 1);
    for (i = 0; i < s->n_doms; i++)
        if (strcmp(s->doms[i]->name, c->name) == 0)
            return xcp__hv_error_set(err, -EEXIST,
                                     "sim: VM %s: domain %" PRIu32
                                     " already has the name '%s'", u,
                                     s->doms[i]->domid, c->name);
    if (c->type != XCP_HV_DOMAIN_PV && c->type != XCP_HV_DOMAIN_HVM &&
        c->type != XCP_HV_DOMAIN_PVH)
        return xcp__hv_error_set(err, -EINVAL,
                                 "sim: VM %s: unknown domain type %d", u,
                                 (int)c->type);
    if (c->memory_target < MIN_TARGET ||
        c->memory_target > c->memory_static_max ||
        c->memory_static_max > s->host_pages * PAGE)
        return xcp__hv_error_set(err, -EINVAL,
                                 "sim: VM %s: memory target %" PRIu64
                                 " must be between %llu and static max %"
                                 PRIu64 ", itself at most the host's %"
                                 PRIu64 " bytes", u, c->memory_target,
                                 MIN_TARGET, c->memory_static_max,
                                 s->host_pages * PAGE);
    limit = c->type == XCP_HV_DOMAIN_PV ? PV_MAX_VCPUS : HVM_MAX_VCPUS;
    online = c->vcpus_online ? c->vcpus_online : c->vcpus_max;
    if (c->vcpus_max < 1 || c->vcpus_max > limit || online > c->vcpus_max)
        return xcp__hv_error_set(err, -EINVAL,
                                 "sim: VM %s: %" PRIu32 " of %" PRIu32
                                 " vCPUs online: need 1..%" PRIu32
                                 " vCPUs for a %s domain", u, online,
                                 c->vcpus_max, limit,
                                 xcp__hv_domain_type_name(c->type));
    if (c->type == XCP_HV_DOMAIN_PV && !c->kernel && !c->bootloader)
        return xcp__hv_error_set(err, -EINVAL,
                                 "sim: VM %s: a PV domain needs a kernel or "
                                 "a bootloader", u);
    if (c->type == XCP_HV_DOMAIN_PVH && !c->kernel)
        return xcp__hv_error_set(err, -EINVAL,
                                 "sim: VM %s: a PVH domain needs a kernel", u);
    if (c->kernel && (rc = need_file(u, "kernel", c->kernel, err)) < 0)
        return rc;
    if (c->ramdisk && (rc = need_file(u, "ramdisk", c->ramdisk, err)) < 0)
        return rc;
    for (i = 0; i < c->n_platform; i++)
        if (!c->platform[i].key || !*c->platform[i].key ||
            !c->platform[i].value)
            return xcp__hv_error_set(err, -EINVAL,
                                     "sim: VM %s: platform entry %zu has no "
                                     "key or no value", u, i);

    d = calloc(1, sizeof(*d));
    if (!d)
        return oom(err);
    memcpy(d->uuid, c->vm_uuid, XCP_HV_UUID_LEN);
    snprintf(d->name, sizeof(d->name), "%s", c->name);
    d->type = c->type;
    d->max_pages = div_up(c->memory_static_max, PAGE);
    d->target_pages = d->actual_pages = div_up(c->memory_target, PAGE);
    d->vcpus_max = c->vcpus_max;
    d->vcpus_online = online;
    d->overhead_pages =
        xcp__sim_overhead_pages(d->type, d->max_pages, d->vcpus_max);
    d->vcpu_ns = calloc(d->vcpus_max, sizeof(*d->vcpu_ns));
    d->disks = calloc(c->n_disks + 1, sizeof(*d->disks));
    d->nics = calloc(c->n_nics + 1, sizeof(*d->nics));
    d->platform = calloc(c->n_platform + 1, sizeof(*d->platform));
    if (!d->vcpu_ns || !d->disks || !d->nics || !d->platform ||
        !dup_into(&d->kernel, c->kernel) ||
        !dup_into(&d->ramdisk, c->ramdisk) ||
        !dup_into(&d->cmdline, c->cmdline) ||
        !dup_into(&d->bootloader, c->bootloader))
        goto nomem;
    for (i = 0; i < c->n_disks; i++) {
        rc = check_disk(u, &c->disks[i], err);
        if (rc == 0)
            rc = disk_clash(u, d->disks, d->n_disks, c->disks[i].vdev, err);
        if (rc < 0)
            goto fail;
        if (!disk_copy(&d->disks[d->n_disks++], &c->disks[i]))
            goto nomem;
    }
    for (i = 0; i < c->n_nics; i++) {
        rc = check_nic(u, &c->nics[i], err);
        if (rc == 0)
            rc = nic_clash(u, d->nics, d->n_nics, &c->nics[i], err);
        if (rc < 0)
            goto fail;
        if (!nic_copy(&d->nics[d->n_nics++], &c->nics[i]))
            goto nomem;
    }
    for (i = 0; i < c->n_platform; i++) {
        struct kv *k = &d->platform[d->n_platform++];

        if (!dup_into(&k->key, c->platform[i].key) ||
            !dup_into(&k->value, c->platform[i].value))
            goto nomem;
    }
    *out = d;
    return 0;
nomem:
    rc = oom(err);
fail:
    dom_free(d);
    return rc;
}

static int check_fit(struct sim *s, const struct dom *d, xcp_hv_error *err)
{
    uint64_t need = dom_claim_pages(d), have = free_pages(s);

    if (need <= have)
        return 0;
    return xcp__hv_error_set(err, -ENOMEM,
                             "sim: VM %s: not enough free memory: needs %"
                             PRIu64 " bytes (%" PRIu64 " memory + %" PRIu64
                             " overhead), %" PRIu64 " bytes available",
                             d->uuid, need * PAGE,
                             max_u64(d->target_pages, d->actual_pages) * PAGE,
                             d->overhead_pages * PAGE, have * PAGE);
}

/* Gives d the next domid and makes it live; takes ownership of d. */
static int dom_start(struct sim *s, struct dom *d, bool paused,
                     uint32_t *domid, xcp_hv_error *err)
{
    int rc;

    if (s->next_domid >= DOMID_LIMIT) {
        rc = xcp__hv_error_set(err, -ENOSPC,
                               "sim: VM %s: no domain ids left (all ids "
                               "below %u were used)", d->uuid, DOMID_LIMIT);
        goto fail;
    }
    d->domid = s->next_domid;
    d->state = paused ? XCP_HV_STATE_PAUSED : XCP_HV_STATE_RUNNING;
    d->start_ns = (int64_t)s->clock;
    if (!dom_append(s, d)) {
        rc = oom(err);
        goto fail;
    }
    s->next_domid++;
    mark_dirty(s, d->domid);
    rc = commit(s, err);
    if (rc == 0)
        *domid = d->domid;
    return rc;
fail:
    dom_free(d);
    return rc;
}

static int sim_memory_overhead(void *self, const xcp_hv_domain_config *cfg,
                               uint64_t *bytes, xcp_hv_error *err)
{
    struct sim *s = self;
    int rc = check_fault(s, XCP_HV_OP_MEMORY_OVERHEAD, err);

    if (rc < 0)
        return rc;
    if (!cfg || cfg->vcpus_max == 0)
        return xcp__hv_error_set(err, -EINVAL,
                                 "sim: memory_overhead needs a config with "
                                 "vcpus_max");
    *bytes = xcp__sim_overhead_pages(cfg->type,
                                     div_up(cfg->memory_static_max, PAGE),
                                     cfg->vcpus_max) *
             PAGE;
    return 0;
}

static int sim_domain_create(void *self, const xcp_hv_domain_config *cfg,
                             bool paused, uint32_t *domid, xcp_hv_error *err)
{
    struct sim *s = self;
    struct dom *d = NULL;
    int rc = check_fault(s, XCP_HV_OP_DOMAIN_CREATE, err);

    if (rc < 0)
        return rc;
    settle_now(s);
    rc = dom_from_config(s, cfg, &d, err);
    if (rc == 0)
        rc = check_fit(s, d, err);
    if (rc < 0) {
        dom_free(d);
        return rc;
    }
    return dom_start(s, d, paused, domid, err);
}

/* ---- lifecycle ----------------------------------------------------------- */

static int sim_domain_destroy(void *self, uint32_t domid, xcp_hv_error *err)
{
    struct sim *s = self;
    struct dom *d;
    int rc = check_fault(s, XCP_HV_OP_DOMAIN_DESTROY, err);

    if (rc < 0)
        return rc;
    settle_now(s);
    rc = get_dom(s, domid, "destroy", &d, err);
    if (rc < 0)
        return rc;
    dom_remove(s, d);
    mark_dirty(s, domid);
    return commit(s, err);
}

/* Pause and unpause: the toolstack's pause flag, idempotent. */
static int set_paused(struct sim *s, xcp_hv_op op, uint32_t domid, bool pause,
                      xcp_hv_error *err)
{
    const char *what = pause ? "pause" : "unpause";
    xcp_hv_domain_state want =
        pause ? XCP_HV_STATE_PAUSED : XCP_HV_STATE_RUNNING;
    struct dom *d;
    int rc = check_fault(s, op, err);

    if (rc < 0)
        return rc;
    settle_now(s);
    rc = get_dom(s, domid, what, &d, err);
    if (rc == 0)
        rc = need_live(d, what, err);
    if (rc < 0 || d->state == want)
        return rc;
    d->state = want;
    mark_dirty(s, domid);
    rc = commit(s, err);
    return rc;
}

static int sim_domain_pause(void *self, uint32_t domid, xcp_hv_error *err)
{
    return set_paused(self, XCP_HV_OP_DOMAIN_PAUSE, domid, true, err);
}

static int sim_domain_unpause(void *self, uint32_t domid, xcp_hv_error *err)
{
    return set_paused(self, XCP_HV_OP_DOMAIN_UNPAUSE, domid, false, err);
}

static int sim_domain_shutdown(void *self, uint32_t domid,
                               xcp_hv_shutdown_reason request,
                               xcp_hv_error *err)
{
    struct sim *s = self;
    struct dom *d;
    int rc = check_fault(s, XCP_HV_OP_DOMAIN_SHUTDOWN, err);

    if (rc < 0)
        return rc;
    settle_now(s);
    if (request != XCP_HV_SHUTDOWN_POWEROFF &&
        request != XCP_HV_SHUTDOWN_REBOOT)
        return xcp__hv_error_set(err, -EINVAL,
                                 "sim: domain %" PRIu32 ": can only request "
                                 "poweroff or reboot, not %s", domid,
                                 xcp__hv_shutdown_reason_name(request));
    rc = get_dom(s, domid, "shut down", &d, err);
    if (rc == 0)
        rc = need_live(d, "shut down", err);
    if (rc < 0)
        return rc;
    if (s->hang_all)
        d->hung = true;
    /* a second request changes what the guest will do, not when */
    if (d->request == XCP_HV_SHUTDOWN_NONE)
        d->ack_left_ns = s->opt.shutdown_delay_ns;
    d->request = request;
    return commit(s, err);
}

static void sleep_until(uint64_t t)
{
    struct timespec ts;

    ts.tv_sec = (time_t)(t / NS_PER_S);
    ts.tv_nsec = (long)(t % NS_PER_S);
    while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

static int sim_domain_wait(void *self, uint32_t domid, int timeout_ms,
                           xcp_hv_domain_info *out, xcp_hv_error *err)
{
    struct sim *s = self;
    uint64_t now = sim_now(s), deadline;
    struct dom *d;
    int rc = check_fault(s, XCP_HV_OP_DOMAIN_WAIT, err);

    if (rc < 0)
        return rc;
    deadline = timeout_ms < 0 ? NEVER : now + (uint64_t)timeout_ms * NS_PER_MS;
    for (;;) {
        sim_settle(s, now);
        rearm(s);
        rc = get_dom(s, domid, "wait for", &d, err);
        if (rc < 0)
            return rc;
        if (d->state == XCP_HV_STATE_SHUTDOWN) {
            fill_info(d, out);
            return 0;
        }
        if (now >= deadline)
            return xcp__hv_error_set(err, -ETIMEDOUT,
                                     "sim: domain %" PRIu32 " (VM %s) did "
                                     "not shut down within %d ms%s", domid,
                                     d->uuid, timeout_ms,
                                     d->hung ? " (the guest is hung)" : "");
        sleep_until(min_u64(next_event(s), deadline));
        now = sim_now(s);
    }
}

/* ---- suspend images ------------------------------------------------------ */

static uint64_t image_digest(const char *uuid, uint64_t pages, uint64_t i)
{
    uint64_t seed = fnv1a(FNV_INIT, uuid, strlen(uuid));

    return mix64(seed ^ mix64(i + 1) ^ (pages << 1));
}

static void put_le64(unsigned char *p, uint64_t v)
{
    int i;

    for (i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le64(const unsigned char *p)
{
    uint64_t v = 0;
    int i;

    for (i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static int image_write(const struct dom *d, const char *path,
                       xcp_hv_error *err)
{
    uint64_t k = div_up(d->actual_pages, PAGES_PER_DIGEST), i;
    unsigned char *body = malloc(k * 8);
    struct buf b = {0};
    int rc;

    if (!body)
        return oom(err);
    for (i = 0; i < k; i++)
        put_le64(body + 8 * i, image_digest(d->uuid, d->actual_pages, i));
    buf_printf(&b, "%s %d\nuuid %s\ndomid %" PRIu32 "\nname", IMAGE_MAGIC,
               FORMAT_VERSION, d->uuid, d->domid);
    buf_str(&b, d->name);
    buf_printf(&b, "\ntype %s\npages %" PRIu64 " %" PRIu64
                   "\nvcpus %" PRIu32 " %" PRIu32 "\ndigests %" PRIu64
                   "\nbody-checksum %016" PRIx64 "\n",
               xcp__hv_domain_type_name(d->type), d->max_pages,
               d->actual_pages, d->vcpus_max, d->vcpus_online, k,
               fnv1a(FNV_INIT, body, k * 8));
    if (!b.failed)
        buf_printf(&b, "header-checksum %016" PRIx64 "\n",
                   fnv1a(FNV_INIT, b.p, b.len));
    buf_add(&b, body, k * 8);
    if (b.failed) {
        rc = oom(err);
        goto out;
    }
    rc = write_atomic(path, b.p, b.len, "suspend image", err);
out:
    free(body);
    free(b.p);
    return rc;
}

struct image {
    char uuid[XCP_HV_UUID_LEN];
    xcp_hv_domain_type type;
    uint64_t max_pages, pages;
    uint32_t vcpus_max, vcpus_online;
};

/* Parses and verifies an image completely; -EBADMSG if anything is off. */
static int image_read(const char *path, struct image *img, xcp_hv_error *err)
{
    char *data = NULL, *hdr_end, *line, *next, *tok[MAX_TOKENS];
    const unsigned char *body;
    uint64_t want_hdr, want_body, k = 0, i;
    size_t len, hlen;
    int n, rc, fields = 0;
    const char *why = "bad header";

    rc = read_all(path, MAX_IMAGE_SIZE, &data, &len, "suspend image", err);
    if (rc < 0)
        return rc;
    memset(img, 0, sizeof(*img));
    hdr_end = strstr(data, "\nheader-checksum ");
    if (!hdr_end || memchr(data, '\0', (size_t)(hdr_end - data)))
        goto corrupt;
    hlen = (size_t)(hdr_end + 1 - data);
    if (sscanf(hdr_end + 1, "header-checksum %16" SCNx64, &want_hdr) != 1 ||
        fnv1a(FNV_INIT, data, hlen) != want_hdr) {
        why = "header checksum mismatch";
        goto corrupt;
    }
    body = (const unsigned char *)strchr(hdr_end + 1, '\n');
    if (!body)
        goto corrupt;
    body++;
    *hdr_end = '\0';
    for (line = data; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        n = tokenize(line, tok);
        if (n < 2)
            goto corrupt;
        if (line == data) {
            if (strcmp(tok[0], IMAGE_MAGIC) != 0 || strcmp(tok[1], "1") != 0)
                goto corrupt;
        } else if (n == 2 && strcmp(tok[0], "uuid") == 0 &&
                   uuid_valid(tok[1])) {
            memcpy(img->uuid, tok[1], XCP_HV_UUID_LEN);
            fields |= 1;
        } else if (n == 2 && strcmp(tok[0], "type") == 0 &&
                   xcp__hv_domain_type_from_name(tok[1]) >= 0) {
            img->type = (xcp_hv_domain_type)xcp__hv_domain_type_from_name(
                tok[1]);
            fields |= 2;
        } else if (n == 3 && strcmp(tok[0], "pages") == 0 &&
                   parse_u64(tok[1], &img->max_pages) &&
                   parse_u64(tok[2], &img->pages)) {
            fields |= 4;
        } else if (n == 3 && strcmp(tok[0], "vcpus") == 0 &&
                   parse_u32(tok[1], &img->vcpus_max) &&
                   parse_u32(tok[2], &img->vcpus_online)) {
            fields |= 8;
        } else if (n == 2 && strcmp(tok[0], "digests") == 0 &&
                   parse_u64(tok[1], &k)) {
            fields |= 16;
        } else if (n == 2 && strcmp(tok[0], "body-checksum") == 0 &&
                   sscanf(tok[1], "%16" SCNx64, &want_body) == 1) {
            fields |= 32;
        } else if (strcmp(tok[0], "domid") != 0 &&
                   strcmp(tok[0], "name") != 0) {
            goto corrupt;
        }
    }
    if (fields != 63 || img->pages > img->max_pages || !img->vcpus_max ||
        img->vcpus_online > img->vcpus_max ||
        k != div_up(img->pages, PAGES_PER_DIGEST))
        goto corrupt;
    if ((size_t)((const char *)body - data) + k * 8 != len) {
        why = "truncated or trailing data";
        goto corrupt;
    }
    if (fnv1a(FNV_INIT, body, k * 8) != want_body) {
        why = "memory checksum mismatch";
        goto corrupt;
    }
    for (i = 0; i < k; i++) {
        if (get_le64(body + 8 * i) !=
            image_digest(img->uuid, img->pages, i)) {
            why = "memory contents do not match the header";
            goto corrupt;
        }
    }
    rc = 0;
    goto out;
corrupt:
    rc = xcp__hv_error_set(err, -EBADMSG, "sim: suspend image %s is corrupt: "
                           "%s", path, why);
out:
    free(data);
    return rc;
}

static int sim_domain_suspend(void *self, uint32_t domid,
                              const char *image_path, xcp_hv_error *err)
{
    struct sim *s = self;
    struct dom *d;
    int rc = check_fault(s, XCP_HV_OP_DOMAIN_SUSPEND, err);

    if (rc < 0)
        return rc;
    settle_now(s);
    rc = get_dom(s, domid, "suspend", &d, err);
    if (rc == 0)
        rc = need_live(d, "suspend", err);
    if (rc < 0)
        return rc;
    if (!image_path || !*image_path)
        return xcp__hv_error_set(err, -EINVAL,
                                 "sim: suspend of domain %" PRIu32
                                 " needs an image path", domid);
    if (d->hung || s->hang_all)
        return xcp__hv_error_set(err, -ETIMEDOUT,
                                 "sim: domain %" PRIu32 " (VM %s) did not "
                                 "acknowledge the suspend request (the "
                                 "guest is hung)", domid, d->uuid);
    /* a running guest takes its time to acknowledge; a paused one cannot
     * interfere and is saved as is */
    if (d->state == XCP_HV_STATE_RUNNING) {
        sleep_until(sim_now(s) + s->opt.shutdown_delay_ns);
        settle_now(s);
        d = dom_find(s, domid);
        if (!d || d->state == XCP_HV_STATE_SHUTDOWN)
            return xcp__hv_error_set(err, -EINTR,
                                     "sim: domain %" PRIu32 " shut down "
                                     "while being suspended", domid);
    }
    rc = image_write(d, image_path, err);
    if (rc < 0)
        return rc;
    dom_remove(s, d);
    mark_dirty(s, domid);
    rc = commit(s, err);
    if (rc < 0)
        unlink(image_path);
    return rc;
}

static int sim_domain_restore(void *self, const xcp_hv_domain_config *cfg,
                              const char *image_path, bool paused,
                              uint32_t *domid, xcp_hv_error *err)
{
    struct sim *s = self;
    struct image img;
    struct dom *d = NULL;
    int rc = check_fault(s, XCP_HV_OP_DOMAIN_RESTORE, err);

    if (rc < 0)
        return rc;
    settle_now(s);
    if (!image_path || !*image_path)
        return xcp__hv_error_set(err, -EINVAL,
                                 "sim: restore needs an image path");
    rc = image_read(image_path, &img, err);
    if (rc == 0)
        rc = dom_from_config(s, cfg, &d, err);
    if (rc < 0)
        goto fail;
    /* Another VM's image is fine (a clone of a suspended VM resumes from
     * its copy, as Xen restores a save image into a new domain); it must
     * fit the config. */
    if (img.type != d->type || img.vcpus_max != d->vcpus_max ||
        img.pages > d->max_pages) {
        rc = xcp__hv_error_set(err, -EINVAL,
                               "sim: suspend image %s (VM %s, %s, %" PRIu64
                               " bytes, %" PRIu32 " vCPUs) does not fit VM "
                               "%s (%s, max %" PRIu64 " bytes, %" PRIu32
                               " vCPUs)", image_path, img.uuid,
                               xcp__hv_domain_type_name(img.type),
                               img.pages * PAGE, img.vcpus_max, d->uuid,
                               xcp__hv_domain_type_name(d->type),
                               d->max_pages * PAGE, d->vcpus_max);
        goto fail;
    }
    /* the guest comes back with the memory and vCPUs it was saved with */
    d->target_pages = d->actual_pages = img.pages;
    d->vcpus_online = img.vcpus_online;
    rc = check_fit(s, d, err);
    if (rc < 0)
        goto fail;
    return dom_start(s, d, paused, domid, err);
fail:
    dom_free(d);
    return rc;
}

/* ---- memory and vCPUs ---------------------------------------------------- */

static int sim_domain_set_memory_target(void *self, uint32_t domid,
                                        uint64_t bytes, xcp_hv_error *err)
{
    struct sim *s = self;
    uint64_t pages = div_up(bytes, PAGE), grow, have;
    struct dom *d;
    int rc = check_fault(s, XCP_HV_OP_DOMAIN_SET_MEMORY_TARGET, err);

    if (rc < 0)
        return rc;
    settle_now(s);
    rc = get_dom(s, domid, "set the memory target of", &d, err);
    if (rc == 0)
        rc = need_live(d, "set the memory target of", err);
    if (rc < 0)
        return rc;
    if (bytes < MIN_TARGET || pages > d->max_pages)
        return xcp__hv_error_set(err, -EINVAL,
                                 "sim: domain %" PRIu32 ": memory target %"
                                 PRIu64 " out of range %llu..%" PRIu64, domid,
                                 bytes, MIN_TARGET, d->max_pages * PAGE);
    grow = pages > max_u64(d->target_pages, d->actual_pages)
               ? pages - max_u64(d->target_pages, d->actual_pages)
               : 0;
    have = free_pages(s);
    if (grow > have)
        return xcp__hv_error_set(err, -ENOMEM,
                                 "sim: domain %" PRIu32 " (VM %s): raising "
                                 "the memory target to %" PRIu64 " bytes "
                                 "needs %" PRIu64 " more bytes, %" PRIu64
                                 " available", domid, d->uuid, bytes,
                                 grow * PAGE, have * PAGE);
    d->target_pages = pages;
    d->balloon_carry = 0;
    mark_dirty(s, domid);
    apply_due(s);
    return commit(s, err);
}

static int sim_domain_set_vcpus(void *self, uint32_t domid, uint32_t online,
                                xcp_hv_error *err)
{
    struct sim *s = self;
    struct dom *d;
    int rc = check_fault(s, XCP_HV_OP_DOMAIN_SET_VCPUS, err);

    if (rc < 0)
        return rc;
    settle_now(s);
    rc = get_dom(s, domid, "set the vCPUs of", &d, err);
    if (rc == 0)
        rc = need_live(d, "set the vCPUs of", err);
    if (rc < 0)
        return rc;
    if (online < 1 || online > d->vcpus_max)
        return xcp__hv_error_set(err, -EINVAL,
                                 "sim: domain %" PRIu32 ": %" PRIu32
                                 " vCPUs online is out of range 1..%" PRIu32,
                                 domid, online, d->vcpus_max);
    d->vcpus_online = online;
    mark_dirty(s, domid);
    return commit(s, err);
}

/* ---- devices ------------------------------------------------------------- */

static int device_dom(struct sim *s, xcp_hv_op op, uint32_t domid,
                      const char *what, struct dom **d, xcp_hv_error *err)
{
    int rc = check_fault(s, op, err);

    if (rc < 0)
        return rc;
    settle_now(s);
    rc = get_dom(s, domid, what, d, err);
    if (rc == 0)
        rc = need_live(*d, what, err);
    return rc;
}

static int sim_disk_plug(void *self, uint32_t domid, const xcp_hv_disk *disk,
                         xcp_hv_error *err)
{
    struct sim *s = self;
    struct disk *v;
    struct dom *d;
    int rc = device_dom(s, XCP_HV_OP_DISK_PLUG, domid, "plug a disk into", &d,
                        err);

    if (rc == 0)
        rc = check_disk(d->uuid, disk, err);
    if (rc == 0)
        rc = disk_clash(d->uuid, d->disks, d->n_disks, disk->vdev, err);
    if (rc < 0)
        return rc;
    v = realloc(d->disks, (d->n_disks + 1) * sizeof(*v));
    if (!v)
        return oom(err);
    d->disks = v;
    if (!disk_copy(&v[d->n_disks], disk)) {
        free(v[d->n_disks].path);
        free(v[d->n_disks].format);
        free(v[d->n_disks].vdev);
        return oom(err);
    }
    d->n_disks++;
    mark_dirty(s, domid);
    return commit(s, err);
}

static struct disk *disk_find(struct dom *d, const char *vdev)
{
    size_t i;

    for (i = 0; vdev && i < d->n_disks; i++)
        if (strcmp(d->disks[i].vdev, vdev) == 0)
            return &d->disks[i];
    return NULL;
}

static int no_disk(const struct dom *d, const char *vdev, xcp_hv_error *err)
{
    return xcp__hv_error_set(err, -ENOENT,
                             "sim: domain %" PRIu32 " (VM %s) has no disk "
                             "%s", d->domid, d->uuid, vdev ? vdev : "(null)");
}

static int sim_disk_unplug(void *self, uint32_t domid, const char *vdev,
                           bool force, xcp_hv_error *err)
{
    struct sim *s = self;
    struct disk *k;
    struct dom *d;
    int rc = device_dom(s, XCP_HV_OP_DISK_UNPLUG, domid, "unplug a disk from",
                        &d, err);

    (void)force; /* sim guests always release their devices */
    if (rc < 0)
        return rc;
    k = disk_find(d, vdev);
    if (!k)
        return no_disk(d, vdev, err);
    free(k->path);
    free(k->format);
    free(k->vdev);
    memmove(k, k + 1, (size_t)(d->disks + d->n_disks - k - 1) * sizeof(*k));
    d->n_disks--;
    mark_dirty(s, domid);
    return commit(s, err);
}

static int sim_cdrom_insert(void *self, uint32_t domid, const char *vdev,
                            const char *path, const char *format,
                            xcp_hv_error *err)
{
    struct sim *s = self;
    xcp_hv_disk want;
    struct disk *k;
    struct dom *d;
    char *p = NULL, *f = NULL;
    int rc = device_dom(s, XCP_HV_OP_CDROM_INSERT, domid,
                        "change the CD of", &d, err);

    if (rc < 0)
        return rc;
    k = disk_find(d, vdev);
    if (!k)
        return no_disk(d, vdev, err);
    if (!k->cdrom)
        return xcp__hv_error_set(err, -EINVAL,
                                 "sim: domain %" PRIu32 ": %s is not a CD "
                                 "drive", domid, vdev);
    memset(&want, 0, sizeof(want));
    want.path = path;
    want.format = format;
    want.vdev = vdev;
    want.cdrom = true;
    rc = check_disk(d->uuid, &want, err);
    if (rc < 0)
        return rc;
    if (!dup_into(&p, path && *path ? path : NULL) ||
        !dup_into(&f, format ? format : "raw")) {
        free(p);
        return oom(err);
    }
    free(k->path);
    free(k->format);
    k->path = p;
    k->format = f;
    mark_dirty(s, domid);
    return commit(s, err);
}

static int sim_nic_plug(void *self, uint32_t domid, const xcp_hv_nic *nic,
                        xcp_hv_error *err)
{
    struct sim *s = self;
    struct nic *v;
    struct dom *d;
    int rc = device_dom(s, XCP_HV_OP_NIC_PLUG, domid, "plug a NIC into", &d,
                        err);

    if (rc == 0)
        rc = check_nic(d->uuid, nic, err);
    if (rc == 0)
        rc = nic_clash(d->uuid, d->nics, d->n_nics, nic, err);
    if (rc < 0)
        return rc;
    v = realloc(d->nics, (d->n_nics + 1) * sizeof(*v));
    if (!v)
        return oom(err);
    d->nics = v;
    if (!nic_copy(&v[d->n_nics], nic))
        return oom(err);
    d->n_nics++;
    mark_dirty(s, domid);
    return commit(s, err);
}

static int sim_nic_unplug(void *self, uint32_t domid, uint32_t devid,
                          bool force, xcp_hv_error *err)
{
    struct sim *s = self;
    struct dom *d;
    size_t i;
    int rc = device_dom(s, XCP_HV_OP_NIC_UNPLUG, domid, "unplug a NIC from",
                        &d, err);

    (void)force;
    if (rc < 0)
        return rc;
    for (i = 0; i < d->n_nics && d->nics[i].devid != devid; i++)
        ;
    if (i == d->n_nics)
        return xcp__hv_error_set(err, -ENOENT,
                                 "sim: domain %" PRIu32 " (VM %s) has no "
                                 "NIC %" PRIu32, domid, d->uuid, devid);
    free(d->nics[i].bridge);
    memmove(&d->nics[i], &d->nics[i + 1],
            (d->n_nics - i - 1) * sizeof(d->nics[0]));
    d->n_nics--;
    mark_dirty(s, domid);
    return commit(s, err);
}

/* ---- events and faults --------------------------------------------------- */

static int sim_event_fd(void *self, int *fd, xcp_hv_error *err)
{
    struct sim *s = self;
    int rc = check_fault(s, XCP_HV_OP_EVENT_FD, err);

    if (rc < 0)
        return rc;
    *fd = s->tfd;
    return 0;
}

static int sim_event_read(void *self, uint32_t *domids, size_t cap,
                          size_t *n, xcp_hv_error *err)
{
    struct sim *s = self;
    uint64_t expirations;
    size_t take;
    int rc = check_fault(s, XCP_HV_OP_EVENT_READ, err);

    if (rc < 0)
        return rc;
    /* only draining: EAGAIN when it had not fired is fine */
    if (read(s->tfd, &expirations, sizeof(expirations)) < 0 &&
        errno != EAGAIN && errno != EINTR)
        return xcp__hv_error_set(err, -errno, "sim: reading the event timer: "
                                 "%s", strerror(errno));
    settle_now(s);
    take = s->n_dirty < cap ? s->n_dirty : cap;
    if (take)
        memcpy(domids, s->dirty, take * sizeof(*domids));
    memmove(s->dirty, s->dirty + take, (s->n_dirty - take) * sizeof(*domids));
    s->n_dirty -= take;
    *n = take;
    rearm(s);
    return 0;
}

static int sim_fault(void *self, const xcp_hv_fault *f, xcp_hv_error *err)
{
    struct sim *s = self;
    struct dom *d;
    const char *what;
    int rc;

    if (!f || f->version < 1)
        return xcp__hv_error_set(err, -EINVAL, "sim: fault missing or of "
                                 "unknown version");
    switch (f->kind) {
    case XCP_HV_FAULT_FAIL_OP:
        if ((unsigned)f->op >= XCP_HV_OP__COUNT || f->op == XCP_HV_OP_FAULT ||
            (f->count && f->error <= 0))
            return xcp__hv_error_set(err, -EINVAL,
                                     "sim: cannot inject a failure of "
                                     "operation %d with errno %d", f->op,
                                     f->error);
        s->fail[f->op].error = f->error;
        s->fail[f->op].count = f->count;
        return 0;
    case XCP_HV_FAULT_CLEAR:
        memset(s->fail, 0, sizeof(s->fail));
        s->hang_all = false;
        return 0;
    case XCP_HV_FAULT_CRASH:
    case XCP_HV_FAULT_HANG:
        what = f->kind == XCP_HV_FAULT_CRASH ? "crash" : "hang";
        settle_now(s);
        rc = get_dom(s, f->domid, what, &d, err);
        if (rc < 0)
            return rc;
        if (f->kind == XCP_HV_FAULT_CRASH)
            crash_dom(s, d);
        else
            d->hung = f->on;
        return commit(s, err);
    }
    return xcp__hv_error_set(err, -EINVAL, "sim: unknown fault kind %d",
                             (int)f->kind);
}

/* ---- open and close ------------------------------------------------------ */

static void sim_close(void *self)
{
    struct sim *s = self;

    if (!s)
        return;
    doms_clear(s);
    if (s->tfd >= 0)
        close(s->tfd);
    free(s->dirty);
    free(s->busy);
    free(s->busy_prev);
    free(s->dir);
    free(s->path);
    free(s);
}

int xcp__sim_open(void **self, const char *state_dir,
                  const struct xcp__sim_options *opt, xcp_hv_error *err)
{
    struct sim *s = NULL;
    uint64_t reserved;
    int rc;

    *self = NULL;
    if (!state_dir || !*state_dir) {
        rc = xcp__hv_error_set(err, -EINVAL, "sim: no state directory");
        goto fail;
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        rc = oom(err);
        goto fail;
    }
    s->tfd = -1;
    s->opt = *opt;
    s->opt.faults = NULL;
    s->host_pages = opt->host_memory / PAGE;
    s->xen_pages = s->host_pages / 256 + 16 * MiB / PAGE;
    s->dom0_pages = div_up(opt->dom0_memory, PAGE);
    s->dom0_vcpus = opt->host_cpus < 16 ? opt->host_cpus : 16;
    reserved = s->xen_pages + s->dom0_pages;
    if (opt->host_cpus < 1 || reserved >= s->host_pages) {
        rc = xcp__hv_error_set(err, -EINVAL,
                               "sim: a host of %" PRIu64 " bytes and %" PRIu32
                               " CPUs cannot hold Xen (%" PRIu64 " bytes) and "
                               "dom0 (%" PRIu64 " bytes)", opt->host_memory,
                               opt->host_cpus, s->xen_pages * PAGE,
                               s->dom0_pages * PAGE);
        goto fail;
    }
    if (asprintf(&s->dir, "%s/%s", state_dir, SIM_SUBDIR) < 0 ||
        asprintf(&s->path, "%s/%s", s->dir, STATE_NAME) < 0) {
        s->dir = s->path = NULL;
        rc = oom(err);
        goto fail;
    }
    if (mkdir(s->dir, 0700) < 0 && errno != EEXIST) {
        rc = xcp__hv_error_set(err, -errno, "sim: cannot create %s: %s",
                               s->dir, strerror(errno));
        goto fail;
    }
    s->busy = calloc(opt->host_cpus, sizeof(*s->busy));
    s->busy_prev = calloc(opt->host_cpus, sizeof(*s->busy_prev));
    if (!s->busy || !s->busy_prev) {
        rc = oom(err);
        goto fail;
    }
    s->tfd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
    if (s->tfd < 0) {
        rc = xcp__hv_error_set(err, -errno, "sim: timerfd_create: %s",
                               strerror(errno));
        goto fail;
    }
    rc = state_load(s, err);
    if (rc < 0)
        goto fail;
    /* time went on while no process had the host open */
    settle_now(s);
    s->usage_prev_clock = s->clock;
    rc = parse_faults(s, opt->faults, err);
    if (rc < 0)
        goto fail;
    rearm(s);
    *self = s;
    return 0;
fail:
    sim_close(s);
    return rc;
}

static int sim_open(void **self, const char *state_dir, xcp_hv_error *err)
{
    struct xcp__sim_options opt;
    int rc = xcp__sim_options_default(&opt, err);

    if (rc < 0)
        return rc;
    return xcp__sim_open(self, state_dir, &opt, err);
}

const xcp_hv_driver xcp__hv_sim_driver = {
    .version = XCP_HV_DRIVER_VERSION,
    .name = "sim",
    .description = "simulated Xen host: deterministic, persistent, with "
                   "fault injection",
    .open = sim_open,
    .close = sim_close,
    .host_info = sim_host_info,
    .host_cpu_usage = sim_host_cpu_usage,
    .memory_overhead = sim_memory_overhead,
    .domain_create = sim_domain_create,
    .domain_destroy = sim_domain_destroy,
    .domain_pause = sim_domain_pause,
    .domain_unpause = sim_domain_unpause,
    .domain_shutdown = sim_domain_shutdown,
    .domain_wait = sim_domain_wait,
    .domain_suspend = sim_domain_suspend,
    .domain_restore = sim_domain_restore,
    .domain_set_memory_target = sim_domain_set_memory_target,
    .domain_set_vcpus = sim_domain_set_vcpus,
    .domain_list = sim_domain_list,
    .domain_info = sim_domain_info,
    .domain_vcpu_info = sim_domain_vcpu_info,
    .disk_plug = sim_disk_plug,
    .disk_unplug = sim_disk_unplug,
    .cdrom_insert = sim_cdrom_insert,
    .nic_plug = sim_nic_plug,
    .nic_unplug = sim_nic_unplug,
    .event_fd = sim_event_fd,
    .event_read = sim_event_read,
    .fault = sim_fault,
};
