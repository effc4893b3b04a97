/*
 * bench/bench_commit.c - the commit latency of one small write on a
 * single host: N VM.set_name_label calls, one at a time, through the
 * embedded engine (a local session on a fresh state directory, sim
 * hypervisor, the default grouped fsync); prints p50, p99 and the mean in
 * microseconds. For checking that the pool's database hook (pool-role
 * absent) costs a single host nothing:
 *     bench_commit STATE_DIR [N]      (STATE_DIR must not exist)
 * Built by `make bench/bench_commit`; link it with two builds of
 * libxcp.so (LD_LIBRARY_PATH) to compare them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xcp/xcp.h>

static double now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    xcp_open_options o = {.version = XCP_OPEN_OPTIONS_VERSION};
    xcp_session *s;
    xcp_vm vm;
    xcp_vm_set tpl = {0};
    double *lat, sum = 0;
    int n = argc > 2 ? atoi(argv[2]) : 2000, i;
    char name[64];

    if (argc < 2 || n < 1) {
        fprintf(stderr, "usage: bench_commit STATE_DIR [N]\n");
        return 2;
    }
    o.state_dir = argv[1];
    if (xcp_session_open_local(&s, &o) < 0 ||
        xcp_vm_get_by_name_label(s, &tpl, "Other install media") < 0 ||
        tpl.n < 1 || xcp_vm_clone(s, &vm, tpl.items[0], "bench") < 0) {
        fprintf(stderr, "bench_commit: %s\n",
                xcp_error_last() ? xcp_error_last()->name : "?");
        return 1;
    }
    lat = calloc((size_t)n, sizeof(*lat));
    for (i = 0; i < n; i++) {
        double t0 = now_us();
        snprintf(name, sizeof(name), "bench-%d", i);
        if (xcp_vm_set_name_label(s, vm, name) < 0) {
            fprintf(stderr, "bench_commit: %s\n", xcp_error_last()->name);
            return 1;
        }
        lat[i] = now_us() - t0;
        sum += lat[i];
    }
    qsort(lat, (size_t)n, sizeof(*lat), cmp);
    printf("VM.set_name_label x %d: p50 %.1f us, p99 %.1f us, mean %.1f us\n",
           n, lat[n / 2], lat[n * 99 / 100], sum / n);
    xcp_vm_set_dispose(&tpl);
    xcp_session_close(s);
    free(lat);
    return 0;
}
