/*
 * bench_go_peer - the C side of bench/bench_go.sh: the same VM.get_record
 * loop and 512-VM lifecycle as bench/bench_go/main.go runs through the Go
 * binding, through the C API, so the script prints Go/C ratios.
 *
 *   bench_go_peer URI N GETS   URI "local:DIR", or a server's
 *                              ("unix:/path", "http://host:port", logged
 *                              in as root / $BENCH_PASSWORD)
 *
 * VM.create (64 MiB, 1 vCPU, no disks) N VMs, VM.start each,
 * VM.clean_shutdown each, VM.destroy each; then VM.get_record of one VM
 * GETS times. Prints "create S", "start S", "shutdown S", "destroy S",
 * "get_record S" (seconds per phase).
 */
#include <xcp/xcp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MEM (64ll << 20)

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int die(const char *what)
{
    const xcp_error *e = xcp_error_last();

    fprintf(stderr, "bench_go_peer: %s: %s %s\n", what, e ? e->name : "?",
            e && e->nparams ? e->params[0] : "");
    return 1;
}

int main(int argc, char **argv)
{
    xcp_session *s;
    xcp_vm *vms;
    xcp_vm_record r;
    const char *pw = getenv("BENCH_PASSWORD");
    long n, gets, i;
    double t;
    int rc;

    if (argc != 4) {
        fprintf(stderr, "usage: bench_go_peer URI N GETS\n");
        return 2;
    }
    n = atol(argv[2]);
    gets = atol(argv[3]);
    if (!strncmp(argv[1], "local:", 6)) {
        xcp_open_options o = {XCP_OPEN_OPTIONS_VERSION};
        o.state_dir = argv[1] + 6;
        rc = xcp_session_open_local(&s, &o);
    } else {
        rc = xcp_session_open(&s, argv[1], "root", pw ? pw : "");
    }
    if (rc < 0 || !(vms = calloc((size_t)n + 1, sizeof(*vms))))
        return die("open");
    t = now();
    for (i = 0; i < n; i++) {
        char label[32];
        xcp_vm_record_init(&r);
        snprintf(label, sizeof(label), "bench-%ld", i);
        r.name_label = label;
        r.memory_static_min = r.memory_dynamic_min = MEM;
        r.memory_static_max = r.memory_dynamic_max = MEM;
        r.VCPUs_max = r.VCPUs_at_startup = 1;
        rc = xcp_vm_create(s, &vms[i], &r);
        r.name_label = NULL;
        xcp_vm_record_dispose(&r);
        if (rc < 0)
            return die("VM.create");
    }
    printf("create %.6f\n", now() - t);
    t = now();
    for (i = 0; i < n; i++)
        if (xcp_vm_start(s, vms[i], false, false) < 0)
            return die("VM.start");
    printf("start %.6f\n", now() - t);
    t = now();
    for (i = 0; i < n; i++)
        if (xcp_vm_clean_shutdown(s, vms[i]) < 0)
            return die("VM.clean_shutdown");
    printf("shutdown %.6f\n", now() - t);
    /* the last one stays for the get_record loop */
    t = now();
    for (i = 0; i + 1 < n; i++)
        if (xcp_vm_destroy(s, vms[i]) < 0)
            return die("VM.destroy");
    printf("destroy %.6f\n", now() - t);
    t = now();
    for (i = 0; i < gets; i++) {
        xcp_vm_record_init(&r);
        if (xcp_vm_get_record(s, &r, vms[n - 1]) < 0)
            return die("VM.get_record");
        xcp_vm_record_dispose(&r);
    }
    printf("get_record %.6f\n", now() - t);
    xcp_vm_destroy(s, vms[n - 1]);
    xcp_session_close(s);
    free(vms);
    return 0;
}
