/*
 * bench/bench_clock.h - the clocks every benchmark program reads: wall
 * time (monotonic) and this process's CPU time, in seconds.
 */
#ifndef XCP_BENCH_CLOCK_H
#define XCP_BENCH_CLOCK_H

#include <time.h>

static inline double now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* CPU time of this process (all threads), in seconds. */
static inline double cpu_now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

#endif
