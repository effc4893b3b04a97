/*
 * xe vdi-import / vdi-export: a VDI's contents from or to a file, raw or
 * VHD, through xcp_vdi_import()/xcp_vdi_export() (the embedded engine, a
 * daemon or a remote host alike). On a terminal, stderr shows a progress
 * bar (percent, rate, time left); elsewhere nothing.
 */
#include "fields.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <xcp/transfer.h>

static double since(const struct timespec *t0)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec)
           + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

void xe_bar_start(xe_bar *b, xcp_transfer_progress *fn, void **ctx)
{
    b->shown = 0;
    if (!isatty(STDERR_FILENO))
        return;
    clock_gettime(CLOCK_MONOTONIC, &b->t0);
    *fn = xe_bar_show;
    *ctx = b;
}

void xe_bar_end(xe_bar *b)
{
    if (b->shown)
        fputc('\n', stderr);
}

/* "[#####     ]  42%  118.3 MiB/s  0:12 left" on one line of stderr. */
void xe_bar_show(void *ctx, uint64_t done, uint64_t total)
{
    xe_bar *b = ctx;
    double dt = since(&b->t0), rate = dt > 0 ? (double)done / dt : 0;
    char fill[31];
    int pct = total ? (int)(done * 100 / total) : 0, i;

    for (i = 0; i < 30; i++)
        fill[i] = total && i < pct * 30 / 100 ? '#' : ' ';
    fill[30] = '\0';
    if (total && rate > 0 && done < total) {
        unsigned left = (unsigned)((double)(total - done) / rate);

        fprintf(stderr, "\r[%s] %3d%%  %7.1f MiB/s  %u:%02u left ", fill, pct,
                rate / 1048576.0, left / 60, left % 60);
    } else if (total) {
        fprintf(stderr, "\r[%s] %3d%%  %7.1f MiB/s            ", fill, pct,
                rate / 1048576.0);
    } else {
        fprintf(stderr, "\r%.1f MiB  %7.1f MiB/s ", (double)done / 1048576.0,
                rate / 1048576.0);
    }
    b->shown = 1;
}

static int transfer(xe_ctx *ctx, bool import)
{
    const char *vdi, *file = xe_param(ctx, "filename");
    xcp_vdi_transfer_options o = {XCP_VDI_TRANSFER_OPTIONS_VERSION};

    if (xe_get_by_uuid(ctx, "VDI", xe_param(ctx, "uuid"), &vdi) < 0)
        return -1;
    o.format = xe_param(ctx, "format");
    o.base = import ? NULL : xe_param(ctx, "base");
    return xe_io_vdi_transfer(ctx, file, vdi, import, &o);
}

int xe_vdi_import(xe_ctx *ctx)
{
    return transfer(ctx, true);
}

int xe_vdi_export(xe_ctx *ctx)
{
    return transfer(ctx, false);
}
