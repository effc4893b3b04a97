/*
 * bench_sim - the sim hypervisor alone, in one process, for
 * bench/bench_vms.sh's "sim storm" row (libvirt_peer's "storm" is the
 * same against libvirt's test driver).
 *
 *   bench_sim storm N DIR     on a fresh sim host in DIR: create N domains
 *                             (64 MiB, 1 vCPU, paused: built, not running),
 *                             then start (unpause) each, then
 *                             hard_shutdown (destroy) each; every step is
 *                             one driver call, made durable before it
 *                             returns (a kill -9 loses none of it).
 *                             Prints "create S", "start S", "shutdown S",
 *                             "seconds S" (the total, wall clock), "cpu S"
 *                             (this process's CPU time)
 *
 * A sim domain is built and gone in one call each, where libvirt's test
 * driver defines, starts, destroys and undefines: hard_shutdown here is
 * destroy + undefine there (the storm's VMs are destroyed too).
 *
 * Output is "key value" lines for the script, as bench_vms prints.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_clock.h"

#include "hv_internal.h"
#include "sim.h"

static int die(const char *what, long i, const xcp_hv_error *err)
{
    fprintf(stderr, "bench_sim: %s %ld: %d %s\n", what, i, err->code,
            err->message);
    return 1;
}

static int storm(long n, const char *dir)
{
    const xcp_hv_driver *drv = &xcp__hv_sim_driver;
    struct xcp__sim_options opt;
    xcp_hv_domain_config c;
    xcp_hv_error err;
    uint32_t *domids = calloc((size_t)n, sizeof(*domids));
    char uuid[XCP_HV_UUID_LEN], name[32];
    double c0 = cpu_now(), t0, t1, t2, t3;
    void *hv = NULL;
    long i;
    int rc = 1;

    memset(&err, 0, sizeof(err));
    if (!domids || xcp__sim_options_default(&opt, &err) < 0)
        return die("options", 0, &err);
    opt.host_memory = 1024ull << 30;
    opt.host_cpus = 64;
    opt.dom0_memory = 1ull << 30;
    if (xcp__sim_open(&hv, dir, &opt, &err) < 0) {
        die("open", 0, &err);
        goto out;
    }
    memset(&c, 0, sizeof(c));
    c.version = XCP_HV_CONFIG_VERSION;
    c.vm_uuid = uuid;
    c.name = name;
    c.type = XCP_HV_DOMAIN_HVM;
    c.memory_static_max = c.memory_target = 64ull << 20;
    c.vcpus_max = 1;
    t0 = now();
    for (i = 0; i < n; i++) {
        snprintf(uuid, sizeof(uuid), "00000000-0000-4000-8000-%012lx",
                 (unsigned long)i & 0xffffffffffful);
        snprintf(name, sizeof(name), "storm-%ld", i);
        if (drv->domain_create(hv, &c, true, &domids[i], &err) < 0) {
            die("create", i, &err);
            goto out;
        }
    }
    t1 = now();
    for (i = 0; i < n; i++) {
        if (drv->domain_unpause(hv, domids[i], &err) < 0) {
            die("start", i, &err);
            goto out;
        }
    }
    t2 = now();
    for (i = 0; i < n; i++) {
        if (drv->domain_destroy(hv, domids[i], &err) < 0) {
            die("hard_shutdown", i, &err);
            goto out;
        }
    }
    t3 = now();
    printf("create %.6f\nstart %.6f\nshutdown %.6f\nseconds %.6f\n"
           "cpu %.6f\n", t1 - t0, t2 - t1, t3 - t2, t3 - t0,
           cpu_now() - c0);
    rc = 0;
out:
    if (hv)
        drv->close(hv);
    free(domids);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "storm") == 0)
        return storm(atol(argv[2]), argv[3]);
    fprintf(stderr, "usage: bench_sim storm N DIR\n");
    return 2;
}
