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
 *  - Persistence (sim_state.c): under state_dir/sim/, a checksummed
 *    snapshot ("state") and an append-only log ("log") of one record per
 *    change, written before the operation returns, so domains outlive the
 *    process (kill -9 included); another process opening the same state
 *    dir finds them, with time having moved on meanwhile. An operation
 *    costs its own change, not the host's size: the log is folded into a
 *    new snapshot only once it has outgrown the last one. Several
 *    processes may have the host open at once, as toolstack processes
 *    share a Xen host: each slot runs under a lock on the log, after
 *    catching up with the others' records (the SHARED wrappers below).
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
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "sim_int.h"

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

    if (xcp__sim_parse_u32(s, &v))
        return v > 0 && v < 4096 ? (int)v : -1;
    for (i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]); i++)
        if (strcasecmp(s, errno_names[i].name) == 0)
            return errno_names[i].value;
    return -1;
}

/* ---- domains ------------------------------------------------------------- */

void xcp__sim_dom_free(struct dom *d)
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
    free(d->guest_os);
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

struct dom *xcp__sim_dom_find(const struct sim *s, uint32_t domid)
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
bool xcp__sim_dom_append(struct sim *s, struct dom *d)
{
    struct dom **v = realloc(s->doms, (s->n_doms + 1) * sizeof(*v));

    if (!v)
        return false;
    s->doms = v;
    s->doms[s->n_doms++] = d;
    return true;
}

void xcp__sim_dom_remove(struct sim *s, struct dom *d)
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
    xcp__sim_dom_free(d);
}

void xcp__sim_doms_clear(struct sim *s)
{
    size_t i;

    for (i = 0; i < s->n_doms; i++)
        xcp__sim_dom_free(s->doms[i]);
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

void xcp__sim_mark_dirty(struct sim *s, uint32_t domid)
{
    xcp__sim_console_changed(s, domid);
    xcp__hv_dirty_mark(&s->dirty, domid);
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
        xcp__sim_mark_dirty(s, d->domid);
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
        when = xcp__sim_agent_time(s, d, running_vcpus(s));
        t = min_u64(t, when > NEVER - s->clock ? NEVER : s->clock + when);
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

        bool agent;

        if (d->state != XCP_HV_STATE_RUNNING)
            continue;
        agent = xcp__sim_agent_running(s, d);
        for (v = 0; v < d->vcpus_online; v++)
            d->vcpu_ns[v] += share;
        if (!agent && xcp__sim_agent_running(s, d))
            xcp__sim_mark_dirty(s, d->domid); /* the agent reports */
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
            xcp__sim_mark_dirty(s, d->domid);
        }
        if (balloon_moving(d) && balloon_time(s, d) == 0) {
            d->actual_pages = d->target_pages;
            d->balloon_carry = 0;
            xcp__sim_mark_dirty(s, d->domid);
        }
    }
}

/* Brings the model to time `to`, change by change. */
void xcp__sim_settle(struct sim *s, uint64_t to)
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
uint64_t xcp__sim_now(const struct sim *s)
{
    return max_u64(wall_ns(), s->clock);
}

void xcp__sim_settle_now(struct sim *s)
{
    xcp__sim_settle(s, xcp__sim_now(s));
}

/* Arms the timerfd for the next change the caller should hear about. */
void xcp__sim_rearm(struct sim *s)
{
    struct itimerspec its;
    uint64_t t = s->dirty.n ? 1 : next_event(s);

    memset(&its, 0, sizeof(its));
    if (t != NEVER) {
        its.it_value.tv_sec = (time_t)(t / NS_PER_S);
        its.it_value.tv_nsec = (long)(t % NS_PER_S);
    }
    if (s->tfd >= 0)
        timerfd_settime(s->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* ---- faults -------------------------------------------------------------- */

int xcp__sim_check_fault(struct sim *s, xcp_hv_op op, xcp_hv_error *err)
{
    int e;

    if (op >= XCP_HV_OP__COUNT) /* no slot's: nothing injected */
        return 0;
    e = s->fail[op].error;
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
    xcp__sim_mark_dirty(s, d->domid);
    return 1;
}

static int parse_faults(struct sim *s, const char *spec, xcp_hv_error *err)
{
    char *copy = strdup(spec ? spec : ""), *item, *save = NULL, *val, *star;
    char whole[128];
    uint32_t domid, count;
    struct dom *d;
    bool changed;
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
            if (!xcp__sim_parse_u32(val, &domid))
                goto bad;
            d = xcp__sim_dom_find(s, domid);
            changed = false;
            if (d && item[0] == 'h') {
                changed = !d->hung;
                d->hung = true;
            } else if (d) {
                changed = crash_dom(s, d) > 0;
            }
            /* each change its own record, as a fault injected later is */
            if (changed && (rc = xcp__sim_commit(s, domid, err)) < 0)
                goto out;
        } else {
            op = xcp__hv_op_from_name(item);
            star = strchr(val, '*');
            count = 1;
            if (star) {
                *star++ = '\0';
                if (strcmp(star, "inf") == 0)
                    count = UINT_MAX;
                else if (!xcp__sim_parse_u32(star, &count))
                    goto bad;
            }
            e = errno_from_name(val);
            if (op < 0 || e < 0)
                goto bad;
            s->fail[op].error = e;
            s->fail[op].count = count;
        }
    }
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
                                 "with a suffix such as MiB or GiB)",
                                 name, v);
    return 0;
}

static int env_u64(const char *name, uint64_t *out, xcp_hv_error *err)
{
    const char *v = getenv(name);

    if (!v || !*v)
        return 0;
    if (!xcp__sim_parse_u64(v, out))
        return xcp__hv_error_set(err, -EINVAL, "sim: %s='%s' is not a number",
                                 name, v);
    return 0;
}

static uint64_t dom0_default(uint64_t host)
{
    return min_u64(min_u64(GiB + host / 20, 8 * GiB), host / 4);
}

int xcp__sim_options_default(struct xcp__sim_options *opt, xcp_hv_error *err)
{
    uint64_t cpus = 0, delay_ms = 20, hvm = 1;
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
    rc = env_u64("XCP_SIM_HOST_HVM", &hvm, err);
    if (rc < 0)
        return rc;
    opt->no_hvm = hvm == 0;
    opt->dom0_memory = dom0_default(opt->host_memory);
    rc = env_size("XCP_SIM_DOM0_MEMORY", &opt->dom0_memory, err);
    if (rc < 0)
        return rc;
    rc = env_u64("XCP_SIM_SHUTDOWN_DELAY_MS", &delay_ms, err);
    if (rc < 0)
        return rc;
    opt->shutdown_delay_ns = muldiv(delay_ms, NS_PER_MS, 1);
    delay_ms = 50;
    rc = env_u64("XCP_SIM_AGENT_DELAY_MS", &delay_ms, err);
    if (rc < 0)
        return rc;
    opt->agent_delay_ns = muldiv(delay_ms, NS_PER_MS, 1);
    rc = env_size("XCP_SIM_BALLOON_RATE", &opt->balloon_rate, err);
    if (rc < 0)
        return rc;
    opt->faults = getenv("XCP_SIM_FAULTS");
    delay_ms = 0;
    rc = env_u64("XCP_SIM_GUEST_WRITE_MS", &delay_ms, err);
    if (rc < 0)
        return rc;
    opt->guest_write_ns = muldiv(delay_ms, NS_PER_MS, 1);
    delay_ms = 0;
    rc = env_u64("XCP_SIM_STREAM_MS", &delay_ms, err);
    if (rc < 0)
        return rc;
    opt->stream_ns = muldiv(delay_ms, NS_PER_MS, 1);
    opt->migrate_bandwidth = 4 * GiB;
    rc = env_size("XCP_SIM_MIGRATE_BANDWIDTH", &opt->migrate_bandwidth, err);
    if (rc < 0)
        return rc;
    if (opt->migrate_bandwidth == 0)
        return xcp__hv_error_set(err, -EINVAL, "sim: "
                                 "XCP_SIM_MIGRATE_BANDWIDTH must be more "
                                 "than 0");
    opt->migrate_dirty = 64 * MiB;
    rc = env_size("XCP_SIM_MIGRATE_DIRTY", &opt->migrate_dirty, err);
    if (rc < 0)
        return rc;
    return 0;
}

static int sim_host_info(void *self, xcp_hv_host_info *out, xcp_hv_error *err)
{
    struct sim *s = self;
    int rc = xcp__sim_check_fault(s, XCP_HV_OP_HOST_INFO, err);

    if (rc < 0)
        return rc;
    xcp__sim_settle_now(s);
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
    snprintf(out->capabilities, sizeof(out->capabilities), "%s",
             s->opt.no_hvm ? "xen-3.0-x86_64"
                           : "xen-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p "
                             "hvm-3.0-x86_64");
    xcp__sim_rearm(s);
    return 0;
}

static int sim_host_cpu_usage(void *self, double **util, size_t *n,
                              xcp_hv_error *err)
{
    struct sim *s = self;
    uint32_t i, r, ncpu = s->opt.host_cpus;
    uint64_t dt;
    double *u;
    int rc = xcp__sim_check_fault(s, XCP_HV_OP_HOST_CPU_USAGE, err);

    if (rc < 0)
        return rc;
    xcp__sim_settle_now(s);
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
    xcp__sim_rearm(s);
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
int xcp__sim_get_dom(struct sim *s, uint32_t domid, const char *what,
                     struct dom **out, xcp_hv_error *err)
{
    if (domid == 0)
        return xcp__hv_error_set(err, -EPERM,
                                 "sim: refusing to %s domain 0, the control "
                                 "domain", what);
    *out = xcp__sim_dom_find(s, domid);
    if (!*out)
        return xcp__hv_error_set(err, -ESRCH,
                                 "sim: cannot %s domain %" PRIu32
                                 ": no such domain", what, domid);
    return 0;
}

/* Refuses to act on a domain that has shut down, naming why. */
int xcp__sim_need_live(const struct dom *d, const char *what, xcp_hv_error *err)
{
    if (d->state != XCP_HV_STATE_SHUTDOWN)
        return 0;
    return xcp__hv_error_set(err, -EINVAL,
                             "sim: cannot %s domain %" PRIu32 " (VM %s): it "
                             "has shut down (%s)", what, d->domid, d->uuid,
                             xcp__hv_shutdown_reason_name(d->reason));
}

int xcp__sim_live_dom(struct sim *s, xcp_hv_op op, uint32_t domid,
                      const char *what, struct dom **d, xcp_hv_error *err)
{
    int rc = xcp__sim_check_fault(s, op, err);

    if (rc < 0)
        return rc;
    xcp__sim_settle_now(s);
    rc = xcp__sim_get_dom(s, domid, what, d, err);
    if (rc == 0)
        rc = xcp__sim_need_live(*d, what, err);
    return rc;
}

static int sim_domain_info(void *self, uint32_t domid,
                           xcp_hv_domain_info *out, xcp_hv_error *err)
{
    struct sim *s = self;
    struct dom *d;
    int rc = xcp__sim_check_fault(s, XCP_HV_OP_DOMAIN_INFO, err);

    if (rc < 0)
        return rc;
    xcp__sim_settle_now(s);
    xcp__sim_rearm(s);
    if (domid == 0) {
        fill_dom0(s, out);
        return 0;
    }
    rc = xcp__sim_get_dom(s, domid, "query", &d, err);
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
    int rc = xcp__sim_check_fault(s, XCP_HV_OP_DOMAIN_LIST, err);

    if (rc < 0)
        return rc;
    xcp__sim_settle_now(s);
    xcp__sim_rearm(s);
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

/*
 * stats: the modelled guests' I/O follows their running time (vCPU 0's):
 * a running guest reads SIM_RD_BPS and writes SIM_WR_BPS (writable disks)
 * per second of CPU in 4 KiB requests, plus the records it writes
 * (sim_guest.c); each NIC receives SIM_RX_BPS and sends SIM_TX_BPS in
 * 1000-byte packets. The host's eth0 carries all the guests' traffic.
 * Counters are thus deterministic, persistent and stand still while a
 * guest is paused, as real ones do.
 */
#define SIM_RD_BPS (2ull * MiB)
#define SIM_WR_BPS (1ull * MiB)
#define SIM_RX_BPS (100ull * 1000)
#define SIM_TX_BPS (50ull * 1000)

static void dev_name(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s", name);
}

static int sim_stats(void *self, xcp_hv_stats *out, xcp_hv_error *err)
{
    struct sim *s = self;
    size_t i, j, nv = s->dom0_vcpus, nd = 0, at = 0, dv = 0;
    uint64_t rx = 0, tx = 0, rxp = 0, txp = 0;
    uint32_t v;
    int rc = xcp__sim_check_fault(s, XCP_HV_OP_STATS, err);

    memset(out, 0, sizeof(*out));
    if (rc < 0)
        return rc;
    xcp__sim_settle_now(s);
    xcp__sim_rearm(s);
    for (i = 0; i < s->n_doms; i++) {
        nv += s->doms[i]->vcpus_max;
        nd += s->doms[i]->n_disks + s->doms[i]->n_nics;
    }
    out->n_pcpus = s->opt.host_cpus;
    out->n_doms = s->n_doms + 1;
    out->pcpu_busy_ns = calloc(out->n_pcpus ? out->n_pcpus : 1,
                               sizeof(uint64_t));
    out->doms = calloc(out->n_doms, sizeof(*out->doms));
    out->vcpu_ns = calloc(nv ? nv : 1, sizeof(uint64_t));
    out->devs = calloc(nd + 1, sizeof(*out->devs));
    out->guest_free_kib = calloc(out->n_doms, sizeof(int64_t));
    if (!out->pcpu_busy_ns || !out->doms || !out->vcpu_ns || !out->devs ||
        !out->guest_free_kib) {
        free(out->guest_free_kib);
        free(out->pcpu_busy_ns);
        free(out->doms);
        free(out->vcpu_ns);
        free(out->devs);
        memset(out, 0, sizeof(*out));
        return oom(err);
    }
    out->memory_total = s->host_pages * PAGE;
    out->memory_free = free_pages(s) * PAGE;
    for (i = 0; i < out->n_pcpus; i++)
        out->pcpu_busy_ns[i] = s->busy[i];
    out->loadavg = (double)running_vcpus(s) / (s->opt.host_cpus ? s->opt.host_cpus : 1);
    fill_dom0(s, &out->doms[0]);
    out->guest_free_kib[0] = (int64_t)(s->dom0_pages * PAGE / 1024 / 2);
    for (v = 0; v < s->dom0_vcpus; v++)
        out->vcpu_ns[at++] = dom0_cpu_ns(s) / s->dom0_vcpus;
    for (i = 0; i < s->n_doms; i++) {
        const struct dom *d = s->doms[i];
        uint64_t cpu_s1000 = d->vcpus_max ? d->vcpu_ns[0] / NS_PER_MS : 0;

        fill_info(d, &out->doms[i + 1]);
        /* as the modelled agent reports data/meminfo_free (sim_agent.c) */
        out->guest_free_kib[i + 1] =
            xcp__sim_agent_running(s, d)
                ? (int64_t)(d->actual_pages * PAGE / 1024 / 4 * 3)
                : -1;
        for (v = 0; v < d->vcpus_max; v++)
            out->vcpu_ns[at++] = d->vcpu_ns[v];
        for (j = 0; j < d->n_disks; j++) {
            const struct disk *k = &d->disks[j];
            xcp_hv_dev_stats *x = &out->devs[dv];

            if (k->cdrom && !(k->path && k->path[0]))
                continue;
            x->domid = d->domid;
            x->kind = XCP_HV_DEV_DISK;
            dev_name(x->name, sizeof(x->name), k->vdev);
            x->rd_bytes = muldiv(cpu_s1000, SIM_RD_BPS, 1000);
            x->wr_bytes = k->ro ? 0 : muldiv(cpu_s1000, SIM_WR_BPS, 1000) +
                                          k->written * XCP__SIM_RECORD_SIZE;
            x->rd_reqs = x->rd_bytes / 4096;
            x->wr_reqs = x->wr_bytes / 4096 + k->written;
            dv++;
        }
        for (j = 0; j < d->n_nics; j++) {
            xcp_hv_dev_stats *x = &out->devs[dv++];

            x->domid = d->domid;
            x->kind = XCP_HV_DEV_NIC;
            snprintf(x->name, sizeof(x->name), "%" PRIu32, d->nics[j].devid);
            x->rd_bytes = muldiv(cpu_s1000, SIM_RX_BPS, 1000);
            x->wr_bytes = muldiv(cpu_s1000, SIM_TX_BPS, 1000);
            x->rd_reqs = x->rd_bytes / 1000;
            x->wr_reqs = x->wr_bytes / 1000;
            rx += x->wr_bytes;
            tx += x->rd_bytes;
            rxp += x->wr_reqs;
            txp += x->rd_reqs;
        }
    }
    out->devs[dv].kind = XCP_HV_DEV_HOST_NIC;
    dev_name(out->devs[dv].name, sizeof(out->devs[dv].name), "eth0");
    out->devs[dv].rd_bytes = rx;
    out->devs[dv].wr_bytes = tx;
    out->devs[dv].rd_reqs = rxp;
    out->devs[dv].wr_reqs = txp;
    out->n_devs = dv + 1;
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
    int rc = xcp__sim_check_fault(s, XCP_HV_OP_DOMAIN_VCPU_INFO, err);

    if (rc < 0)
        return rc;
    xcp__sim_settle_now(s);
    xcp__sim_rearm(s);
    if (domid != 0) {
        rc = xcp__sim_get_dom(s, domid, "query", &d, err);
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

/*
 * Checks a config as libxl would before building, and turns it into a
 * (not yet registered) domain. Memory fit is checked by the caller.
 */
int xcp__sim_dom_from_config(struct sim *s, const xcp_hv_domain_config *c,
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
    if (!xcp__sim_uuid_valid(c->vm_uuid))
        return xcp__hv_error_set(err, -EINVAL, "sim: '%s' is not a VM uuid", u);
    if (s->opt.no_hvm && c->type != XCP_HV_DOMAIN_PV)
        return xcp__hv_error_set(err, -ENOTSUP,
                                 "sim: VM %s: this host has no HVM support "
                                 "for a %s guest", u,
                                 xcp__hv_domain_type_name(c->type));
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
    if (c->kernel && (rc = xcp__sim_need_file(u, "kernel", c->kernel, err)) < 0)
        return rc;
    if (c->ramdisk &&
        (rc = xcp__sim_need_file(u, "ramdisk", c->ramdisk, err)) < 0)
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
        !dup_into(&d->bootloader, c->bootloader) ||
        !dup_into(&d->guest_os, c->guest_os))
        goto nomem;
    for (i = 0; i < c->n_disks; i++) {
        rc = xcp__sim_check_disk(u, &c->disks[i], err);
        if (rc == 0)
            rc = xcp__sim_disk_clash(u, d->disks, d->n_disks, c->disks[i].vdev,
                                     err);
        if (rc < 0)
            goto fail;
        if (!xcp__sim_disk_copy(&d->disks[d->n_disks++], &c->disks[i]))
            goto nomem;
    }
    for (i = 0; i < c->n_nics; i++) {
        rc = xcp__sim_check_nic(u, &c->nics[i], err);
        if (rc == 0)
            rc = xcp__sim_nic_clash(u, d->nics, d->n_nics, &c->nics[i], err);
        if (rc < 0)
            goto fail;
        if (!xcp__sim_nic_copy(&d->nics[d->n_nics++], &c->nics[i]))
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
    xcp__sim_dom_free(d);
    return rc;
}

int xcp__sim_check_fit(struct sim *s, const struct dom *d, xcp_hv_error *err)
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
int xcp__sim_dom_start(struct sim *s, struct dom *d, bool paused,
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
    if (!xcp__sim_dom_append(s, d)) {
        rc = oom(err);
        goto fail;
    }
    s->next_domid++;
    xcp__sim_mark_dirty(s, d->domid);
    rc = xcp__sim_commit(s, d->domid, err);
    if (rc == 0)
        *domid = d->domid;
    return rc;
fail:
    xcp__sim_dom_free(d);
    return rc;
}

static int sim_memory_overhead(void *self, const xcp_hv_domain_config *cfg,
                               uint64_t *bytes, xcp_hv_error *err)
{
    struct sim *s = self;
    int rc = xcp__sim_check_fault(s, XCP_HV_OP_MEMORY_OVERHEAD, err);

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
    int rc = xcp__sim_check_fault(s, XCP_HV_OP_DOMAIN_CREATE, err);

    if (rc < 0)
        return rc;
    xcp__sim_settle_now(s);
    rc = xcp__sim_dom_from_config(s, cfg, &d, err);
    if (rc == 0)
        rc = xcp__sim_check_fit(s, d, err);
    if (rc < 0) {
        xcp__sim_dom_free(d);
        return rc;
    }
    return xcp__sim_dom_start(s, d, paused, domid, err);
}

/* ---- lifecycle ----------------------------------------------------------- */

static int sim_domain_destroy(void *self, uint32_t domid, xcp_hv_error *err)
{
    struct sim *s = self;
    struct dom *d;
    int rc = xcp__sim_check_fault(s, XCP_HV_OP_DOMAIN_DESTROY, err);

    if (rc < 0)
        return rc;
    xcp__sim_settle_now(s);
    rc = xcp__sim_get_dom(s, domid, "destroy", &d, err);
    if (rc < 0)
        return rc;
    xcp__sim_dom_remove(s, d);
    xcp__sim_mark_dirty(s, domid);
    return xcp__sim_commit(s, domid, err);
}

/* Pause and unpause: the toolstack's pause flag, idempotent. */
static int set_paused(struct sim *s, xcp_hv_op op, uint32_t domid, bool pause,
                      xcp_hv_error *err)
{
    const char *what = pause ? "pause" : "unpause";
    xcp_hv_domain_state want =
        pause ? XCP_HV_STATE_PAUSED : XCP_HV_STATE_RUNNING;
    struct dom *d;
    int rc = xcp__sim_live_dom(s, op, domid, what, &d, err);

    if (rc < 0 || d->state == want)
        return rc;
    d->state = want;
    xcp__sim_mark_dirty(s, domid);
    rc = xcp__sim_commit(s, domid, err);
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
    int rc = xcp__sim_check_fault(s, XCP_HV_OP_DOMAIN_SHUTDOWN, err);

    if (rc < 0)
        return rc;
    xcp__sim_settle_now(s);
    if (request != XCP_HV_SHUTDOWN_POWEROFF &&
        request != XCP_HV_SHUTDOWN_REBOOT)
        return xcp__hv_error_set(err, -EINVAL,
                                 "sim: domain %" PRIu32 ": can only request "
                                 "poweroff or reboot, not %s", domid,
                                 xcp__hv_shutdown_reason_name(request));
    rc = xcp__sim_get_dom(s, domid, "shut down", &d, err);
    if (rc == 0)
        rc = xcp__sim_need_live(d, "shut down", err);
    if (rc < 0)
        return rc;
    if (s->hang_all)
        d->hung = true;
    /* a second request changes what the guest will do, not when */
    if (d->request == XCP_HV_SHUTDOWN_NONE)
        d->ack_left_ns = s->opt.shutdown_delay_ns;
    d->request = request;
    return xcp__sim_commit(s, domid, err);
}

int xcp__sim_sleep_until(struct sim *s, uint64_t t, xcp_hv_error *err)
{
    struct timespec ts;

    ts.tv_sec = (time_t)(t / NS_PER_S);
    ts.tv_nsec = (long)(t % NS_PER_S);
    xcp__sim_leave(s); /* the host is the other processes' meanwhile */
    while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
    return xcp__sim_enter(s, err);
}

static int sim_domain_wait(void *self, uint32_t domid, int timeout_ms,
                           xcp_hv_domain_info *out, xcp_hv_error *err)
{
    struct sim *s = self;
    uint64_t now = xcp__sim_now(s), deadline;
    struct dom *d;
    int rc = xcp__sim_check_fault(s, XCP_HV_OP_DOMAIN_WAIT, err);

    if (rc < 0)
        return rc;
    deadline = timeout_ms < 0 ? NEVER : now + (uint64_t)timeout_ms * NS_PER_MS;
    for (;;) {
        xcp__sim_settle(s, now);
        xcp__sim_rearm(s);
        rc = xcp__sim_get_dom(s, domid, "wait for", &d, err);
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
        rc = xcp__sim_sleep_until(s, min_u64(next_event(s), deadline), err);
        if (rc < 0)
            return rc;
        now = xcp__sim_now(s);
    }
}

/* ---- memory and vCPUs ---------------------------------------------------- */

static int sim_domain_set_memory_target(void *self, uint32_t domid,
                                        uint64_t bytes, xcp_hv_error *err)
{
    struct sim *s = self;
    uint64_t pages = div_up(bytes, PAGE), grow, have;
    struct dom *d;
    int rc = xcp__sim_live_dom(s, XCP_HV_OP_DOMAIN_SET_MEMORY_TARGET, domid,
                               "set the memory target of", &d, err);

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
    xcp__sim_mark_dirty(s, domid);
    apply_due(s);
    return xcp__sim_commit(s, domid, err);
}

static int sim_domain_set_vcpus(void *self, uint32_t domid, uint32_t online,
                                xcp_hv_error *err)
{
    struct sim *s = self;
    struct dom *d;
    int rc = xcp__sim_live_dom(s, XCP_HV_OP_DOMAIN_SET_VCPUS, domid,
                               "set the vCPUs of", &d, err);

    if (rc < 0)
        return rc;
    if (online < 1 || online > d->vcpus_max)
        return xcp__hv_error_set(err, -EINVAL,
                                 "sim: domain %" PRIu32 ": %" PRIu32
                                 " vCPUs online is out of range 1..%" PRIu32,
                                 domid, online, d->vcpus_max);
    d->vcpus_online = online;
    xcp__sim_mark_dirty(s, domid);
    return xcp__sim_commit(s, domid, err);
}

/*
 * Localhost live migration, as libxl's: the receiving domain is built
 * beside the sender (room for both is needed), the guest runs on while
 * its memory moves, then the sender goes. The model keeps the domain's
 * whole state (memory, vCPU time, devices, agent) under the next id.
 */
/*
 * The simulated host's bridges are names only (nothing is made on the
 * real host): removing one succeeds, bar an injected fault.
 */
static int sim_bridge_remove(void *self, const char *bridge,
                             xcp_hv_error *err)
{
    (void)bridge;
    return xcp__sim_check_fault(self, XCP_HV_OP_BRIDGE_REMOVE, err);
}

/* Making one succeeds for any name Linux takes (xcp__sim_check_nic). */
static int sim_bridge_ensure(void *self, const char *bridge,
                             xcp_hv_error *err)
{
    int rc = xcp__sim_check_fault(self, XCP_HV_OP_BRIDGE_ENSURE, err);

    return rc < 0 ? rc : xcp__sim_check_bridge(bridge, err);
}

static int sim_domain_migrate_local(void *self, uint32_t domid,
                                    uint32_t *new_domid, xcp_hv_error *err)
{
    struct sim *s = self;
    struct dom *d;
    size_t i;
    int rc = xcp__sim_check_fault(s, XCP_HV_OP_DOMAIN_MIGRATE_LOCAL, err);

    if (rc < 0)
        return rc;
    xcp__sim_settle_now(s);
    rc = xcp__sim_get_dom(s, domid, "migrate", &d, err);
    if (rc == 0)
        rc = xcp__sim_need_live(d, "migrate", err);
    if (rc == 0)
        rc = xcp__sim_check_fit(s, d, err);
    if (rc < 0)
        return rc;
    if (s->next_domid >= DOMID_LIMIT)
        return xcp__hv_error_set(err, -ENOSPC,
                                 "sim: VM %s: no domain ids left to migrate "
                                 "domain %" PRIu32 " to", d->uuid, domid);
    /* d moves to the end of the array under the next (largest) id: the
     * array keeps its size, so nothing is allocated. */
    for (i = 0; s->doms[i] != d; i++)
        ;
    memmove(&s->doms[i], &s->doms[i + 1],
            (s->n_doms - i - 1) * sizeof(s->doms[0]));
    s->doms[s->n_doms - 1] = d;
    d->domid = s->next_domid++;
    xcp__sim_mark_dirty(s, domid);
    xcp__sim_mark_dirty(s, d->domid);
    /* one record: a restart finds the domain under one id, never two */
    if ((rc = xcp__sim_commit_many(s, (uint32_t[]){d->domid, domid}, 2,
                                   err)) < 0)
        return rc;
    *new_domid = d->domid;
    return 0;
}

/* ---- events and faults --------------------------------------------------- */

static int sim_event_fd(void *self, int *fd, xcp_hv_error *err)
{
    struct sim *s = self;
    int rc = xcp__sim_check_fault(s, XCP_HV_OP_EVENT_FD, err);

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
    int rc = xcp__sim_check_fault(s, XCP_HV_OP_EVENT_READ, err);

    if (rc < 0)
        return rc;
    /* only draining: EAGAIN when it had not fired is fine */
    if (read(s->tfd, &expirations, sizeof(expirations)) < 0 &&
        errno != EAGAIN && errno != EINTR)
        return xcp__hv_error_set(err, -errno, "sim: reading the event timer: "
                                 "%s", strerror(errno));
    xcp__sim_settle_now(s);
    *n = xcp__hv_dirty_take(&s->dirty, domids, cap);
    xcp__sim_rearm(s);
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
        xcp__sim_settle_now(s);
        rc = xcp__sim_get_dom(s, f->domid, what, &d, err);
        if (rc < 0)
            return rc;
        if (f->kind == XCP_HV_FAULT_CRASH)
            crash_dom(s, d);
        else
            d->hung = f->on;
        return xcp__sim_commit(s, f->domid, err);
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
    xcp__sim_guest_stop(s);
    xcp__sim_consoles_free(s);
    xcp__sim_doms_clear(s);
    if (s->tfd >= 0)
        close(s->tfd);
    xcp__hv_dirty_free(&s->dirty);
    free(s->busy);
    free(s->busy_prev);
    if (s->log_fd >= 0)
        close(s->log_fd);
    free(s->dir);
    free(s->path);
    free(s->log_path);
    pthread_cond_destroy(&s->guest_cond);
    pthread_mutex_destroy(&s->mu);
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
    s->log_fd = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->guest_cond, NULL);
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
        asprintf(&s->path, "%s/%s", s->dir, STATE_NAME) < 0 ||
        asprintf(&s->log_path, "%s/%s", s->dir, LOG_NAME) < 0) {
        s->dir = s->path = s->log_path = NULL;
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
    /* the first catching up loads the state (xcp__sim_enter) */
    rc = xcp__sim_enter(s, err);
    if (rc < 0)
        goto fail;
    xcp__hv_dirty_clear(&s->dirty); /* what exists at open is no change */
    /* time went on while no process had the host open */
    xcp__sim_settle_now(s);
    s->usage_prev_clock = s->clock;
    memcpy(s->busy_prev, s->busy, opt->host_cpus * sizeof(*s->busy));
    rc = parse_faults(s, opt->faults, err);
    xcp__sim_leave(s);
    if (rc < 0)
        goto fail;
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

/* ---- one host, several processes ---------------------------------------- */

/*
 * shared_<slot>: the slot fn run between xcp__sim_enter and xcp__sim_leave
 * (sim_int.h), so that processes sharing the host see each other's changes
 * and never interleave theirs.
 */
#define SHARED(slot, fn, params, args)                                     \
    static int shared_##slot params                                        \
    {                                                                      \
        struct sim *s = self;                                              \
        int rc = xcp__sim_enter(s, err);                                   \
                                                                           \
        if (rc == 0) {                                                     \
            rc = fn args;                                                  \
            xcp__sim_leave(s);                                             \
        }                                                                  \
        return rc;                                                         \
    }

SHARED(host_info, sim_host_info,
       (void *self, xcp_hv_host_info *out, xcp_hv_error *err),
       (self, out, err))
SHARED(host_cpu_usage, sim_host_cpu_usage,
       (void *self, double **util, size_t *n, xcp_hv_error *err),
       (self, util, n, err))
SHARED(domain_create, sim_domain_create,
       (void *self, const xcp_hv_domain_config *cfg, bool paused,
        uint32_t *domid, xcp_hv_error *err),
       (self, cfg, paused, domid, err))
SHARED(domain_destroy, sim_domain_destroy,
       (void *self, uint32_t domid, xcp_hv_error *err), (self, domid, err))
SHARED(domain_pause, sim_domain_pause,
       (void *self, uint32_t domid, xcp_hv_error *err), (self, domid, err))
SHARED(domain_unpause, sim_domain_unpause,
       (void *self, uint32_t domid, xcp_hv_error *err), (self, domid, err))
SHARED(domain_shutdown, sim_domain_shutdown,
       (void *self, uint32_t domid, xcp_hv_shutdown_reason request,
        xcp_hv_error *err),
       (self, domid, request, err))
SHARED(domain_wait, sim_domain_wait,
       (void *self, uint32_t domid, int timeout_ms, xcp_hv_domain_info *out,
        xcp_hv_error *err),
       (self, domid, timeout_ms, out, err))
SHARED(domain_suspend, xcp__sim_domain_suspend,
       (void *self, uint32_t domid, const char *image_path,
        xcp_hv_error *err),
       (self, domid, image_path, err))
SHARED(domain_restore, xcp__sim_domain_restore,
       (void *self, const xcp_hv_domain_config *cfg, const char *image_path,
        bool paused, uint32_t *domid, xcp_hv_error *err),
       (self, cfg, image_path, paused, domid, err))
SHARED(domain_set_memory_target, sim_domain_set_memory_target,
       (void *self, uint32_t domid, uint64_t bytes, xcp_hv_error *err),
       (self, domid, bytes, err))
SHARED(domain_set_vcpus, sim_domain_set_vcpus,
       (void *self, uint32_t domid, uint32_t online, xcp_hv_error *err),
       (self, domid, online, err))
SHARED(domain_list, sim_domain_list,
       (void *self, xcp_hv_domain_info **out, size_t *n, xcp_hv_error *err),
       (self, out, n, err))
SHARED(domain_info, sim_domain_info,
       (void *self, uint32_t domid, xcp_hv_domain_info *out,
        xcp_hv_error *err),
       (self, domid, out, err))
SHARED(domain_vcpu_info, sim_domain_vcpu_info,
       (void *self, uint32_t domid, xcp_hv_vcpu_info **out, size_t *n,
        xcp_hv_error *err),
       (self, domid, out, n, err))
SHARED(disk_plug, xcp__sim_disk_plug,
       (void *self, uint32_t domid, const xcp_hv_disk *disk,
        xcp_hv_error *err),
       (self, domid, disk, err))
SHARED(disk_unplug, xcp__sim_disk_unplug,
       (void *self, uint32_t domid, const char *vdev, bool force,
        xcp_hv_error *err),
       (self, domid, vdev, force, err))
SHARED(cdrom_insert, xcp__sim_cdrom_insert,
       (void *self, uint32_t domid, const char *vdev, const char *path,
        const char *format, xcp_hv_error *err),
       (self, domid, vdev, path, format, err))
SHARED(nic_plug, xcp__sim_nic_plug,
       (void *self, uint32_t domid, const xcp_hv_nic *nic, xcp_hv_error *err),
       (self, domid, nic, err))
SHARED(nic_unplug, xcp__sim_nic_unplug,
       (void *self, uint32_t domid, uint32_t devid, bool force,
        xcp_hv_error *err),
       (self, domid, devid, force, err))
SHARED(event_read, sim_event_read,
       (void *self, uint32_t *domids, size_t cap, size_t *n,
        xcp_hv_error *err),
       (self, domids, cap, n, err))
SHARED(fault, sim_fault, (void *self, const xcp_hv_fault *f,
                          xcp_hv_error *err), (self, f, err))
SHARED(console_open, xcp__sim_console_open,
       (void *self, uint32_t domid, xcp_hv_console_protocol proto, int *fd,
        xcp_hv_error *err),
       (self, domid, proto, fd, err))
SHARED(domain_guest_data, xcp__sim_guest_data,
       (void *self, uint32_t domid, xcp_hv_guest_datum **out, size_t *n,
        xcp_hv_error *err),
       (self, domid, out, n, err))
SHARED(domain_migrate_local, sim_domain_migrate_local,
       (void *self, uint32_t domid, uint32_t *new_domid, xcp_hv_error *err),
       (self, domid, new_domid, err))
SHARED(disk_pause, xcp__sim_disk_pause,
       (void *self, uint32_t domid, const char *vdev, xcp_hv_error *err),
       (self, domid, vdev, err))
SHARED(disk_reopen, xcp__sim_disk_reopen,
       (void *self, uint32_t domid, const char *vdev, const char *path,
        const char *format, xcp_hv_error *err),
       (self, domid, vdev, path, format, err))
SHARED(disk_resize, xcp__sim_disk_resize,
       (void *self, uint32_t domid, const char *vdev, uint64_t bytes,
        xcp_hv_error *err),
       (self, domid, vdev, bytes, err))
SHARED(disk_cbt, xcp__sim_disk_cbt,
       (void *self, uint32_t domid, const char *vdev, const char *bitmap,
        bool on, xcp_hv_error *err),
       (self, domid, vdev, bitmap, on, err))
SHARED(disk_size, xcp__sim_disk_size,
       (void *self, uint32_t domid, const char *vdev, uint64_t *bytes,
        xcp_hv_error *err),
       (self, domid, vdev, bytes, err))
SHARED(disk_snapshot, xcp__sim_disk_snapshot,
       (void *self, uint32_t domid, const char *vdev, const char *overlay,
        const char *format, xcp_hv_error *err),
       (self, domid, vdev, overlay, format, err))

SHARED(disk_stream, xcp__sim_disk_stream,
       (void *self, uint32_t domid, const char *vdev, unsigned keep,
        const char *backing, uint64_t *done, uint64_t *total,
        xcp_hv_error *err),
       (self, domid, vdev, keep, backing, done, total, err))
SHARED(disk_stream_cancel, xcp__sim_disk_stream_cancel,
       (void *self, uint32_t domid, const char *vdev, xcp_hv_error *err),
       (self, domid, vdev, err))
SHARED(stats, sim_stats, (void *self, xcp_hv_stats *out, xcp_hv_error *err),
       (self, out, err))

/* The slots of both tables below: all but the pause of a disk. */
#define SIM_SLOTS                                                           \
    .version = XCP_HV_DRIVER_VERSION,                                       \
    .open = sim_open,                                                       \
    .close = sim_close,                                                     \
    .host_info = shared_host_info,                                          \
    .host_cpu_usage = shared_host_cpu_usage,                                \
    .memory_overhead = sim_memory_overhead,                                 \
    .domain_create = shared_domain_create,                                  \
    .domain_destroy = shared_domain_destroy,                                \
    .domain_pause = shared_domain_pause,                                    \
    .domain_unpause = shared_domain_unpause,                                \
    .domain_shutdown = shared_domain_shutdown,                              \
    .domain_wait = shared_domain_wait,                                      \
    .domain_suspend = shared_domain_suspend,                                \
    .domain_restore = shared_domain_restore,                                \
    .domain_set_memory_target = shared_domain_set_memory_target,            \
    .domain_set_vcpus = shared_domain_set_vcpus,                            \
    .domain_list = shared_domain_list,                                      \
    .domain_info = shared_domain_info,                                      \
    .domain_vcpu_info = shared_domain_vcpu_info,                            \
    .disk_plug = shared_disk_plug,                                          \
    .disk_unplug = shared_disk_unplug,                                      \
    .cdrom_insert = shared_cdrom_insert,                                    \
    .nic_plug = shared_nic_plug,                                            \
    .nic_unplug = shared_nic_unplug,                                        \
    .event_fd = sim_event_fd,                                               \
    .event_read = shared_event_read,                                        \
    .fault = shared_fault,                                                  \
    .console_open = shared_console_open,                                    \
    .domain_guest_data = shared_domain_guest_data,                          \
    .domain_migrate_local = shared_domain_migrate_local,                    \
    .bridge_remove = sim_bridge_remove,                                     \
    .bridge_ensure = sim_bridge_ensure,                                     \
    .disk_resize = shared_disk_resize,                                      \
    .disk_cbt = shared_disk_cbt,                                            \
    .disk_size = shared_disk_size,                                          \
    .image_ops = xcp__sim_image_ops,                                        \
    .disk_snapshot = shared_disk_snapshot,                                  \
    .disk_stream = shared_disk_stream,                                      \
    .disk_stream_cancel = shared_disk_stream_cancel,                        \
    .stats = shared_stats,                                                  \
    .domain_migrate_send = xcp__sim_migrate_send,                           \
    .domain_migrate_receive = xcp__sim_migrate_receive

const xcp_hv_driver xcp__hv_sim_driver = {
    SIM_SLOTS,
    .name = "sim",
    .description = "simulated Xen host: deterministic, persistent, with "
                   "fault injection",
    /* its back ends pause and reopen, which the library takes first */
    .disk_pause = shared_disk_pause,
    .disk_reopen = shared_disk_reopen,
};

/*
 * The same host, its disks served as Xen's QEMU serves them: a back end
 * never lets go of its image (no disk_pause, disk_reopen), so the library
 * changes a running disk through the back end (disk_resize, disk_cbt,
 * disk_snapshot, disk_stream), as on Xen: what the Xen driver declares,
 * for the tests of that path.
 */
const xcp_hv_driver xcp__hv_sim_qemu_driver = {
    SIM_SLOTS,
    .name = "sim-qemu",
    .description = "simulated Xen host whose disk back ends behave as "
                   "QEMU's: never paused",
};
