/*
 * xcp-top's batch output (-b), for scripts, like xentop -b: per refresh
 * one header line, then one line per host and per VM. Fields are
 * separated by blanks; memory in KiB, rates in KiB/s, n/a when unknown;
 * the name comes last and may hold blanks.
 */
#include "top.h"

#include <ctype.h>
#include <math.h>
#include <string.h>

void top_fmt_bytes(char *buf, size_t len, double v)
{
    static const char units[] = "KMGTP";
    int u = 0;

    if (isnan(v)) {
        snprintf(buf, len, "-");
        return;
    }
    v /= 1024;
    while (v >= 10000 && u < 4) {
        v /= 1024;
        u++;
    }
    snprintf(buf, len, v < 100 && u > 0 ? "%.1f%c" : "%.0f%c", v, units[u]);
}

/* A figure scaled by div, with prec decimals, or n/a. */
static void num(FILE *f, int width, double v, double div, int prec)
{
    if (isnan(v) || isinf(v))
        fprintf(f, " %*s", width, "n/a");
    else
        fprintf(f, " %*.*f", width, prec, v / div);
}

static void state(char *buf, size_t len, const char *s)
{
    size_t i;

    snprintf(buf, len, "%s", *s ? s : "unknown");
    for (i = 0; buf[i]; i++)
        buf[i] = (char)tolower((unsigned char)buf[i]);
}

/* The name, on one line whatever it holds. */
static void put_name(FILE *f, const char *name)
{
    for (; *name; name++)
        fputc(iscntrl((unsigned char)*name) ? '?' : *name, f);
    fputc('\n', f);
}

void top_batch_print(FILE *f, const top_sample *s)
{
    char st[16];
    size_t i;

    fprintf(f, "%-4s %-9s %7s %5s %10s %6s %10s %9s %9s %9s %9s %-36s %s\n",
            top_col_names[COL_TYPE], top_col_names[COL_STATE],
            top_col_names[COL_CPU], top_col_names[COL_VCPUS],
            top_col_names[COL_MEM], top_col_names[COL_MEMPCT],
            top_col_names[COL_MAXMEM], top_col_names[COL_RD],
            top_col_names[COL_WR], top_col_names[COL_RX],
            top_col_names[COL_TX], top_col_names[COL_UUID],
            top_col_names[COL_NAME]);
    for (i = 0; i < s->n; i++) {
        const top_row *r = &s->rows[i];

        state(st, sizeof(st), r->state);
        fprintf(f, "%-4s %-9s", r->is_host ? "host" : "vm", st);
        num(f, 7, r->cpu, 1, 1);
        num(f, 5, r->vcpus, 1, 0);
        num(f, 10, r->mem, 1024, 0);
        num(f, 6, r->mempct, 1, 1);
        num(f, 10, r->maxmem, 1024, 0);
        num(f, 9, r->rd, 1024, 1);
        num(f, 9, r->wr, 1024, 1);
        num(f, 9, r->rx, 1024, 1);
        num(f, 9, r->tx, 1024, 1);
        fprintf(f, " %-36s ", r->uuid);
        put_name(f, r->name);
    }
    fflush(f);
}
