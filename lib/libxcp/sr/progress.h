/*
 * progress.h - how a long image operation (a commit) reports how far it
 * got and learns that it should stop: one callback the caller gives.
 */
#ifndef XCP_SR_PROGRESS_H
#define XCP_SR_PROGRESS_H

#include <stddef.h>
#include <stdint.h>

typedef struct xcp__progress {
    /* done of total bytes of the virtual size walked so far; a nonzero
     * return stops the operation, which returns that value. */
    int (*fn)(void *ctx, uint64_t done, uint64_t total);
    void *ctx;
} xcp__progress;

/* Report to p (NULL: nobody listens). */
static inline int xcp__progress_at(const xcp__progress *p, uint64_t done,
                                   uint64_t total)
{
    return p && p->fn ? p->fn(p->ctx, done, total) : 0;
}

#endif
