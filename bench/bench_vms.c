/*
 * bench_vms - the C side of bench/bench_vms.sh: VM lifecycle through the
 * public API in one process, populating a state dir fast, memory per VM
 * record, and timing commands (median of several runs).
 *
 *   bench_vms lifecycle N DIR     VM.create (64 MiB, 1 vCPU) N VMs, then
 *                                 VM.start each, then VM.clean_shutdown
 *                                 each; prints "create S", "start S",
 *                                 "shutdown S" (seconds per phase)
 *   bench_vms populate N DIR      VM.create N VMs (no disks) in one
 *                                 process; prints "seconds S",
 *                                 "rss_before B", "rss_after B" (VmRSS of
 *                                 this process with the engine open),
 *                                 "heap_before B", "heap_after B"
 *                                 (mallinfo2 in-use bytes)
 *   bench_vms time REPS OUT CMD [ARG...]
 *                                 run CMD REPS times (posix_spawn, stdout
 *                                 to OUT); prints "median S", "min S",
 *                                 "bytes B" (OUT's size); fails if CMD does
 *
 * Output is "key value" lines for the script to format. The environment
 * (XCP_HV, XCP_TEMPLATES, XCP_SIM_*) comes from the script.
 */
#define _GNU_SOURCE
#include <xcp/xcp.h>

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_clock.h"
#define BENCH_NAME "bench_vms"
#include "bench_session.h"

extern char **environ;

#define MEM (64ll << 20)

/* VM.create of a small VM: 64 MiB, 1 vCPU, no disks. */
static int create_small(xcp_session *s, xcp_vm *vm, long i)
{
    xcp_vm_record r;
    char label[32];
    int rc;

    xcp_vm_record_init(&r);
    snprintf(label, sizeof(label), "bench-%ld", i);
    r.name_label = label;
    r.memory_static_min = r.memory_dynamic_min = MEM;
    r.memory_static_max = r.memory_dynamic_max = MEM;
    r.VCPUs_max = r.VCPUs_at_startup = 1;
    rc = xcp_vm_create(s, vm, &r);
    r.name_label = NULL;
    xcp_vm_record_dispose(&r);
    return rc;
}

static int lifecycle(long n, const char *dir)
{
    xcp_session *s;
    xcp_vm *vms = calloc((size_t)n, sizeof(*vms));
    double t;
    long i;

    if (!vms || open_dir(&s, dir) < 0)
        return die_api("open");
    t = now();
    for (i = 0; i < n; i++)
        if (create_small(s, &vms[i], i) < 0)
            return die_api("VM.create");
    printf("create %.6f\n", now() - t);
    t = now();
    for (i = 0; i < n; i++)
        if (xcp_vm_start(s, vms[i], false, false) < 0)
            return die_api("VM.start");
    printf("start %.6f\n", now() - t);
    t = now();
    for (i = 0; i < n; i++)
        if (xcp_vm_clean_shutdown(s, vms[i]) < 0)
            return die_api("VM.clean_shutdown");
    printf("shutdown %.6f\n", now() - t);
    xcp_session_close(s);
    free(vms);
    return 0;
}

/* VmRSS of this process, bytes. */
static long long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "re");
    char line[256];
    long long kb = -1;

    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %lld kB", &kb) == 1)
            break;
    fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}

static long long heap_bytes(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
    struct mallinfo2 m = mallinfo2();

    return (long long)(m.uordblks + m.hblkhd);
#else
    return -1;
#endif
}

static int populate(long n, const char *dir)
{
    xcp_session *s;
    xcp_vm vm;
    long long rss0, heap0;
    double t;
    long i;

    if (open_dir(&s, dir) < 0)
        return die_api("open");
    rss0 = rss_bytes();
    heap0 = heap_bytes();
    t = now();
    for (i = 0; i < n; i++)
        if (create_small(s, &vm, i) < 0)
            return die_api("VM.create");
    printf("seconds %.6f\n", now() - t);
    printf("rss_before %lld\nrss_after %lld\n", rss0, rss_bytes());
    printf("heap_before %lld\nheap_after %lld\n", heap0, heap_bytes());
    fflush(stdout);
    xcp_session_close(s);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* Run argv once with stdout to out; returns its exit status or -1. */
static int run_once(char **argv, const char *out)
{
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int st, rc;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out,
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        fprintf(stderr, "bench_vms: cannot run %s: %s\n", argv[0],
                strerror(rc));
        return -1;
    }
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int time_cmd(int reps, const char *out, char **argv)
{
    double *t = calloc((size_t)reps, sizeof(*t));
    struct stat st;
    int i, rc;

    if (!t || reps < 1)
        return 1;
    for (i = 0; i < reps; i++) {
        double t0 = now();
        if ((rc = run_once(argv, out)) != 0) {
            fprintf(stderr, "bench_vms: %s exited with %d\n", argv[0], rc);
            return 1;
        }
        t[i] = now() - t0;
    }
    qsort(t, (size_t)reps, sizeof(*t), cmp_double);
    printf("median %.6f\nmin %.6f\n", t[reps / 2], t[0]);
    printf("bytes %lld\n",
           stat(out, &st) == 0 ? (long long)st.st_size : -1LL);
    free(t);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && !strcmp(argv[1], "lifecycle"))
        return lifecycle(atol(argv[2]), argv[3]);
    if (argc >= 4 && !strcmp(argv[1], "populate"))
        return populate(atol(argv[2]), argv[3]);
    if (argc >= 5 && !strcmp(argv[1], "time"))
        return time_cmd(atoi(argv[2]), argv[3], argv + 4);
    fprintf(stderr, "usage: bench_vms lifecycle N DIR | populate N DIR | "
                    "time REPS OUT CMD [ARG...]\n");
    return 2;
}
