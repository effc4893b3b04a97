/*
 * hv/sim/sim_agent.c - the modelled guest agent of a simulated guest: once
 * the guest has run a little (opt.agent_delay_ns of vCPU 0 time, as a
 * real guest boots to its tools' service), it reports what XCP-ng's guest
 * tools write into xenstore: the OS (from the config's guest_os, the
 * template the VM came from), the tools' version, an IPv4 address on each
 * NIC's network and the memory the guest sees. The domain's event fires
 * when the agent starts (sim.c, advance), so the toolstack learns of it
 * without polling, as from a xenstore watch on Xen.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "sim_int.h"

/* XCP-ng guest tools 8.4.0-1 */
#define TOOLS_MAJOR "8"
#define TOOLS_MINOR "4"
#define TOOLS_MICRO "0"
#define TOOLS_BUILD "1"

bool xcp__sim_agent_running(const struct sim *s, const struct dom *d)
{
    return d->vcpus_max > 0 && d->vcpu_ns[0] >= s->opt.agent_delay_ns;
}

uint64_t xcp__sim_agent_time(const struct sim *s, const struct dom *d,
                             uint32_t running_vcpus)
{
    uint64_t left;

    if (d->state != XCP_HV_STATE_RUNNING || xcp__sim_agent_running(s, d))
        return NEVER;
    left = s->opt.agent_delay_ns - d->vcpu_ns[0];
    /* each running vCPU gets min(1, cpus / running) of the wall clock */
    if (running_vcpus <= s->opt.host_cpus)
        return left;
    return div_up(left * (uint64_t)running_vcpus, s->opt.host_cpus);
}

struct data {
    xcp_hv_guest_datum *v;
    size_t n, cap;
    bool failed;
};

static void put(struct data *g, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void put(struct data *g, const char *path, const char *fmt, ...)
{
    va_list ap;

    if (g->failed)
        return;
    if (g->n == g->cap) {
        size_t cap = g->cap ? 2 * g->cap : 16;
        xcp_hv_guest_datum *v = realloc(g->v, cap * sizeof(*v));
        if (!v) {
            g->failed = true;
            return;
        }
        g->v = v;
        g->cap = cap;
    }
    snprintf(g->v[g->n].path, sizeof(g->v[g->n].path), "%s", path);
    va_start(ap, fmt);
    vsnprintf(g->v[g->n].value, sizeof(g->v[g->n].value), fmt, ap);
    va_end(ap);
    g->n++;
}

/* "Debian Bookworm 12" -> distro "debian", major "12", minor "0";
 * "Ubuntu Noble Numbat 24.04" -> "ubuntu", "24", "04". */
static void os_data(struct data *g, const char *os)
{
    char distro[32], major[16] = "0", minor[16] = "0";
    const char *p, *ver = NULL;
    size_t i;

    for (i = 0; os[i] && !isspace((unsigned char)os[i]) &&
                i + 1 < sizeof(distro); i++)
        distro[i] = (char)tolower((unsigned char)os[i]);
    distro[i] = '\0';
    for (p = os; *p; p++)
        if (isdigit((unsigned char)*p) &&
            (p == os || isspace((unsigned char)p[-1])))
            ver = p; /* the last word that starts with a digit */
    if (ver)
        sscanf(ver, "%15[0-9].%15[0-9]", major, minor);
    put(g, "data/os_name", "%s", os);
    put(g, "data/os_distro", "%s", distro);
    put(g, "data/os_majorver", "%s", major);
    put(g, "data/os_minorver", "%s", minor);
    put(g, "data/os_uname", "6.1.0-sim");
}

/* An address on the NIC's network: the bridge picks a 10.x/16 network
 * (the same for every guest on that bridge), the MAC the host in it. */
static void nic_data(struct data *g, const struct nic *n)
{
    uint32_t h = 2166136261u;
    const char *b = n->bridge ? n->bridge : "";
    char path[XCP_HV_GUEST_PATH_MAX];

    for (; *b; b++)
        h = (h ^ (unsigned char)*b) * 16777619u;
    snprintf(path, sizeof(path), "attr/vif/%" PRIu32 "/ipv4/0", n->devid);
    put(g, path, "10.%u.%u.%u", (unsigned)(h % 256), (unsigned)n->mac[4],
        1u + n->mac[5] % 254u);
}

int xcp__sim_guest_data(void *self, uint32_t domid, xcp_hv_guest_datum **out,
                        size_t *n, xcp_hv_error *err)
{
    struct sim *s = self;
    struct data g = {NULL, 0, 0, false};
    struct dom *d;
    size_t i;
    int rc = xcp__sim_check_fault(s, XCP_HV_OP_DOMAIN_GUEST_DATA, err);

    *out = NULL;
    *n = 0;
    if (rc < 0)
        return rc;
    xcp__sim_settle_now(s);
    rc = xcp__sim_get_dom(s, domid, "read the guest agent data of", &d, err);
    if (rc < 0)
        return rc;
    if (d->state == XCP_HV_STATE_SHUTDOWN || !xcp__sim_agent_running(s, d))
        return 0;
    os_data(&g, d->guest_os && *d->guest_os ? d->guest_os : "Linux");
    put(&g, "attr/PVAddons/MajorVersion", TOOLS_MAJOR);
    put(&g, "attr/PVAddons/MinorVersion", TOOLS_MINOR);
    put(&g, "attr/PVAddons/MicroVersion", TOOLS_MICRO);
    put(&g, "attr/PVAddons/BuildVersion", TOOLS_BUILD);
    for (i = 0; i < d->n_nics; i++)
        nic_data(&g, &d->nics[i]);
    /* KiB, as /proc/meminfo: the guest uses a quarter of what it has */
    put(&g, "data/meminfo_total", "%" PRIu64, d->actual_pages * PAGE / 1024);
    put(&g, "data/meminfo_free", "%" PRIu64,
        d->actual_pages * PAGE / 1024 / 4 * 3);
    if (g.failed) {
        free(g.v);
        return xcp__hv_error_set(err, -ENOMEM, "sim: out of memory");
    }
    *out = g.v;
    *n = g.n;
    return 0;
}
