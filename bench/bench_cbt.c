/*
 * bench_cbt - the C side of bench/bench_cbt.sh: changed block tracking
 * through the public API on the embedded engine.
 *
 *   bench_cbt create DIR GIB    a VDI of GIB GiB in the default SR with
 *                               tracking on; prints "vdi UUID", "file P"
 *   bench_cbt snapshot DIR VDI  VDI.snapshot; prints "snap UUID",
 *                               "file P" (its image)
 *   bench_cbt list DIR FROM TO REPS
 *                               VDI.list_changed_blocks REPS times (the
 *                               engine opened once); prints "median S",
 *                               "min S", "b64 N" (characters), "set N"
 *                               (blocks marked), "bitmap F" (a file
 *                               holding the decoded bitmap bytes)
 *
 * Output is "key value" lines for the script.
 */
#define _GNU_SOURCE
#include <xcp/xcp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_clock.h"
#define BENCH_NAME "bench_cbt"
#include "bench_session.h"

/* The image file of vdi: its SR's directory (the PBD's location, else
 * <dir>/sr/<sr uuid>) and its location. */
static void print_file(xcp_session *s, const char *dir, xcp_vdi vdi)
{
    char *loc = NULL, *sru = NULL;
    xcp_string_map dc = {0};
    xcp_pbd_set pbds = {0};
    const char *where;
    xcp_sr sr;

    if (xcp_vdi_get_location(s, &loc, vdi) == 0 &&
        xcp_vdi_get_SR(s, &sr, vdi) == 0 &&
        xcp_sr_get_uuid(s, &sru, sr) == 0 &&
        xcp_sr_get_PBDs(s, &pbds, sr) == 0 && pbds.n > 0 &&
        xcp_pbd_get_device_config(s, &dc, pbds.items[0]) == 0) {
        where = xcp_string_map_get(&dc, "location");
        if (where)
            printf("file %s/%s\n", where, loc);
        else
            printf("file %s/sr/%s/%s\n", dir, sru, loc);
    }
    xcp_string_map_dispose(&dc);
    xcp_pbd_set_dispose(&pbds);
    xcp_free(loc);
    xcp_free(sru);
}

static int create(const char *dir, long gib)
{
    xcp_session *s;
    xcp_vdi_record r;
    xcp_pool_set pools;
    xcp_sr sr;
    xcp_vdi vdi;
    char *uuid = NULL;

    if (open_dir(&s, dir) < 0)
        return die_api("open");
    if (xcp_pool_get_all(s, &pools) < 0 || pools.n < 1 ||
        xcp_pool_get_default_SR(s, &sr, pools.items[0]) < 0)
        return die_api("default SR");
    xcp_pool_set_dispose(&pools);
    xcp_vdi_record_init(&r);
    r.name_label = (char *)"bench";
    r.name_description = (char *)"";
    r.SR = sr;
    r.virtual_size = (int64_t)gib << 30;
    r.type = XCP_VDI_TYPE_USER;
    if (xcp_vdi_create(s, &vdi, &r) < 0)
        return die_api("VDI.create");
    if (xcp_vdi_enable_cbt(s, vdi) < 0)
        return die_api("VDI.enable_cbt");
    if (xcp_vdi_get_uuid(s, &uuid, vdi) < 0)
        return die_api("uuid");
    printf("vdi %s\n", uuid);
    print_file(s, dir, vdi);
    xcp_free(uuid);
    xcp_session_close(s);
    return 0;
}

static int snapshot(const char *dir, const char *vdi_uuid)
{
    xcp_session *s;
    xcp_vdi vdi, snap;
    char *uuid = NULL;

    if (open_dir(&s, dir) < 0)
        return die_api("open");
    if (xcp_vdi_get_by_uuid(s, &vdi, vdi_uuid) < 0 ||
        xcp_vdi_snapshot(s, &snap, vdi, NULL) < 0 ||
        xcp_vdi_get_uuid(s, &uuid, snap) < 0)
        return die_api("VDI.snapshot");
    printf("snap %s\n", uuid);
    print_file(s, dir, snap);
    xcp_free(uuid);
    xcp_session_close(s);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static int unb64(int c)
{
    return c >= 'A' && c <= 'Z'   ? c - 'A'
           : c >= 'a' && c <= 'z' ? c - 'a' + 26
           : c >= '0' && c <= '9' ? c - '0' + 52
           : c == '+'             ? 62
           : c == '/'             ? 63
                                  : -1;
}

/* Decode b64 into path; the number of bits set. */
static long long dump_bits(const char *b64, const char *path)
{
    FILE *f = fopen(path, "wb");
    long long set = 0;
    uint32_t v = 0;
    int bits = 0, d;

    for (; f && *b64 && (d = unb64((unsigned char)*b64)) >= 0; b64++) {
        v = v << 6 | (uint32_t)d;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            set += __builtin_popcount((v >> bits) & 0xff);
            fputc((int)(v >> bits) & 0xff, f);
        }
    }
    if (f)
        fclose(f);
    return set;
}

static int list(const char *dir, const char *from_uuid, const char *to_uuid,
                int reps)
{
    xcp_session *s;
    xcp_vdi from, to;
    char *b64 = NULL, path[512];
    double *t = calloc((size_t)reps, sizeof(double)), t0;
    int i;

    if (!t || open_dir(&s, dir) < 0)
        return die_api("open");
    if (xcp_vdi_get_by_uuid(s, &from, from_uuid) < 0 ||
        xcp_vdi_get_by_uuid(s, &to, to_uuid) < 0)
        return die_api("VDI.get_by_uuid");
    for (i = 0; i < reps; i++) {
        xcp_free(b64);
        b64 = NULL;
        t0 = now();
        if (xcp_vdi_list_changed_blocks(s, &b64, from, to) < 0)
            return die_api("VDI.list_changed_blocks");
        t[i] = now() - t0;
    }
    qsort(t, (size_t)reps, sizeof(double), cmp_double);
    snprintf(path, sizeof(path), "%s/bitmap.bin", dir);
    printf("median %.6f\nmin %.6f\nb64 %zu\nset %lld\nbitmap %s\n",
           t[reps / 2], t[0], strlen(b64), dump_bits(b64, path), path);
    xcp_free(b64);
    free(t);
    xcp_session_close(s);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "create"))
        return create(argv[2], atol(argv[3]));
    if (argc == 4 && !strcmp(argv[1], "snapshot"))
        return snapshot(argv[2], argv[3]);
    if (argc == 6 && !strcmp(argv[1], "list"))
        return list(argv[2], argv[3], argv[4], atoi(argv[5]));
    fprintf(stderr, "usage: bench_cbt create DIR GIB | snapshot DIR VDI | "
                    "list DIR FROM TO REPS\n");
    return 2;
}
