/*
 * tests/api/test_vdi_format.c - image format per SR and VDI, as XCP-ng
 * 8.3: sm-config:image-format=vhd|qcow2 at SR.create (the SR's default,
 * kept in its sm_config) and VDI.create (the VDI's, over the SR's), qcow2
 * when neither says; VDI.sm_config shows image-format; an unknown value
 * is INVALID_VALUE; a VHD past 2040 GiB is SR_BACKEND_FAILURE_79 at
 * creation ("VDI Invalid size", sm's VDISize) and VDI_TOO_LARGE at
 * resize, qcow2 goes to 16 TiB; VDI.copy gives a VDI in the destination
 * SR's format, converting both ways with the data identical (qemu-img
 * compare) and the copy sparse; snapshot and clone of a VHD VDI stay VHD.
 */
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define VHD_MAX (2040LL * GiB)

TestSuite(vdi_format, .init = api_setup, .fini = api_teardown);

/* VDI.create in sr, with sm_config:image-format=fmt unless NULL. */
static int vdi_create(xcp_vdi *out, xcp_sr sr, int64_t size, const char *fmt)
{
    xcp_vdi_record r;
    int rc;

    xcp_vdi_record_init(&r);
    r.name_label = (char *)"disk";
    r.name_description = (char *)"";
    r.SR = sr;
    r.virtual_size = size;
    r.type = XCP_VDI_TYPE_USER;
    if (fmt)
        xcp_string_map_set(&r.sm_config, "image-format", fmt);
    rc = xcp_vdi_create(S, out, &r);
    if (fmt)
        xcp_string_map_dispose(&r.sm_config);
    return rc;
}

/* The VDI's sm_config:image-format (a static copy). */
static const char *format_of(xcp_vdi vdi)
{
    static char buf[32];
    xcp_string_map m = {0};
    const char *f;

    OK(xcp_vdi_get_sm_config(S, &m, vdi));
    f = xcp_string_map_get(&m, "image-format");
    snprintf(buf, sizeof(buf), "%s", f ? f : "(none)");
    xcp_string_map_dispose(&m);
    return buf;
}

/* The image file of a VDI of an SR made by api_file_sr(name). */
static const char *file_of(const char *sr_name, xcp_vdi vdi)
{
    static char path[2][640];
    static int i;
    char *loc = NULL;

    OK(xcp_vdi_get_location(S, &loc, vdi));
    i = !i;
    snprintf(path[i], sizeof(path[i]), "%s/%s/%s", api_dir, sr_name, loc);
    xcp_free(loc);
    return path[i];
}

static int run(const char *const *argv)
{
    posix_spawn_file_actions_t fa;
    int status;
    pid_t pid;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    if (posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv,
                     environ) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return -1;
    }
    posix_spawn_file_actions_destroy(&fa);
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
#define RUN(...) run((const char *const[]){__VA_ARGS__, NULL})

/* qemu-img's name of our format. */
static const char *qfmt(const char *fmt)
{
    return strcmp(fmt, "vhd") == 0 ? "vpc" : fmt;
}

/* Write a pattern into an image with QEMU, independently of us. */
static void qemu_write(const char *fmt, const char *path, const char *what)
{
    cr_assert_eq(RUN("qemu-io", "-f", qfmt(fmt), "-c", what, path), 0,
                 "qemu-io %s '%s'", path, what);
}

/* Data in the VDI at three places, one across a 2 MiB block boundary. */
static void fill(const char *fmt, const char *path)
{
    qemu_write(fmt, path, "write -P 0x5a 0 64k");
    qemu_write(fmt, path, "write -P 0xa5 2047k 2k");
    qemu_write(fmt, path, "write -P 0x33 30M 4k");
}

static void assert_same(const char *f1, const char *a, const char *f2,
                        const char *b)
{
    cr_assert_eq(RUN("qemu-img", "compare", "-f", qfmt(f1), "-F", qfmt(f2),
                     a, b), 0, "qemu-img compare %s %s", a, b);
    if (!strcmp(f2, "qcow2"))
        cr_assert_eq(RUN("qemu-img", "check", "-q", "-f", "qcow2", b), 0,
                     "qemu-img check %s", b);
}

Test(vdi_format, default_is_qcow2)
{
    xcp_sr sr = api_file_sr("plain", NULL);
    xcp_string_map m = {0};
    xcp_vdi v;

    OK(vdi_create(&v, sr, 8 * MiB, NULL));
    cr_assert_str_eq(format_of(v), "qcow2");
    OK(xcp_sr_get_sm_config(S, &m, sr));
    cr_assert_null(xcp_string_map_get(&m, "image-format"));
    xcp_string_map_dispose(&m);
}

Test(vdi_format, sr_image_format_is_recorded_and_the_vdis_default)
{
    xcp_sr sr = api_file_sr("vhdsr", "vhd");
    xcp_string_map m = {0};
    xcp_vdi v;

    OK(xcp_sr_get_sm_config(S, &m, sr));
    cr_assert_str_eq(xcp_string_map_get(&m, "image-format"), "vhd");
    xcp_string_map_dispose(&m);
    OK(vdi_create(&v, sr, 8 * MiB, NULL));
    cr_assert_str_eq(format_of(v), "vhd");
    cr_assert(strstr(file_of("vhdsr", v), ".vhd"));
    cr_assert_eq(access(file_of("vhdsr", v), F_OK), 0);
}

Test(vdi_format, vdi_image_format_overrides_the_srs)
{
    xcp_sr vhd = api_file_sr("vhdsr", "vhd"), q = api_file_sr("qsr", "qcow2");
    xcp_vdi a, b;

    OK(vdi_create(&a, vhd, 8 * MiB, "qcow2"));
    cr_assert_str_eq(format_of(a), "qcow2");
    OK(vdi_create(&b, q, 8 * MiB, "vhd"));
    cr_assert_str_eq(format_of(b), "vhd");
    cr_assert(strstr(file_of("qsr", b), ".vhd"));
}

Test(vdi_format, unknown_image_format_is_invalid_value)
{
    xcp_string_map dc = {0}, smc = {0};
    char loc[320];
    xcp_sr sr;
    xcp_vdi v;
    size_t n = api_sr_vdi_count(api_default_sr());

    snprintf(loc, sizeof(loc), "%s/bad", api_dir);
    xcp_string_map_set(&dc, "location", loc);
    xcp_string_map_set(&smc, "image-format", "vmdk");
    assert_error(xcp_sr_create(S, &sr, api_host(), &dc, 0, "bad", "", "file",
                               "user", false, &smc),
                 "INVALID_VALUE", "sm_config:image-format", "vmdk");
    /* Nothing was made. */
    cr_assert_eq(access(loc, F_OK), -1);
    xcp_string_map_dispose(&dc);
    xcp_string_map_dispose(&smc);
    assert_error(vdi_create(&v, api_default_sr(), MiB, "raw"),
                 "INVALID_VALUE", "sm_config:image-format", "raw");
    cr_assert_eq(api_sr_vdi_count(api_default_sr()), n);
}

Test(vdi_format, vhd_past_2040_gib_is_sr_backend_failure_79)
{
    xcp_sr sr = api_file_sr("vhdsr", "vhd");
    const xcp_error *e;
    xcp_vdi v;

    cr_assert_lt(vdi_create(&v, sr, VHD_MAX + MiB, NULL), 0);
    e = xcp_error_last();
    cr_assert_str_eq(e->name, "SR_BACKEND_FAILURE_79");
    cr_assert_eq(e->nparams, 3);
    cr_assert_str_eq(e->params[0], "");
    cr_assert(strstr(e->params[1], "VDI Invalid size"), "%s", e->params[1]);
    cr_assert_eq(api_sr_vdi_count(sr), 0);
    OK(vdi_create(&v, sr, VHD_MAX, NULL));
}

Test(vdi_format, vhd_resize_past_2040_gib_is_vdi_too_large)
{
    xcp_sr sr = api_file_sr("vhdsr", "vhd");
    char max[32];
    xcp_vdi v;
    int64_t size;

    OK(vdi_create(&v, sr, 8 * MiB, NULL));
    OK(xcp_vdi_resize(S, v, GiB));
    OK(xcp_vdi_get_virtual_size(S, &size, v));
    cr_assert_eq(size, GiB);
    snprintf(max, sizeof(max), "%lld", VHD_MAX);
    assert_error(xcp_vdi_resize(S, v, VHD_MAX + MiB), "VDI_TOO_LARGE", v.ref,
                 max);
}

Test(vdi_format, qcow2_goes_to_16_tib)
{
    xcp_sr sr = api_file_sr("qsr", NULL);
    const xcp_error *e;
    xcp_vdi v;

    OK(vdi_create(&v, sr, 16 * 1024 * GiB, NULL));
    cr_assert_lt(vdi_create(&v, sr, 16 * 1024 * GiB + MiB, NULL), 0);
    e = xcp_error_last();
    cr_assert_str_eq(e->name, "SR_BACKEND_FAILURE_79");
}

/* Copy a VDI of format from, with data, into an SR of format to. */
static void copy_case(const char *from, const char *to)
{
    xcp_sr src = api_file_sr("src", from), dst = api_file_sr("dst", to);
    xcp_vdi v, c, null_vdi;
    int64_t used, size;

    SET_REF(null_vdi, XCP_NULL_REF);
    OK(vdi_create(&v, src, 64 * MiB, from));
    fill(from, file_of("src", v));
    OK(xcp_vdi_copy(S, &c, v, dst, null_vdi, null_vdi));
    cr_assert_str_eq(format_of(c), to);
    assert_same(from, file_of("src", v), to, file_of("dst", c));
    OK(xcp_vdi_get_virtual_size(S, &size, c));
    cr_assert_eq(size, 64 * MiB);
    /* Sparse: three small writes, at most a few blocks, on the record. */
    OK(xcp_vdi_get_physical_utilisation(S, &used, c));
    cr_assert_lt(used, 10 * MiB, "copy uses %lld bytes", (long long)used);
}

Test(vdi_format, copy_qcow2_to_a_vhd_sr_converts)
{
    copy_case("qcow2", "vhd");
}

Test(vdi_format, copy_vhd_to_a_qcow2_sr_converts)
{
    copy_case("vhd", "qcow2");
}

Test(vdi_format, copy_vhd_to_an_sr_without_format_gives_qcow2)
{
    xcp_sr src = api_file_sr("src", "vhd"), dst = api_file_sr("dst", NULL);
    xcp_vdi v, c, null_vdi;

    SET_REF(null_vdi, XCP_NULL_REF);
    OK(vdi_create(&v, src, 64 * MiB, NULL));
    fill("vhd", file_of("src", v));
    OK(xcp_vdi_copy(S, &c, v, dst, null_vdi, null_vdi));
    cr_assert_str_eq(format_of(c), "qcow2");
    assert_same("vhd", file_of("src", v), "qcow2", file_of("dst", c));
}

Test(vdi_format, copy_within_an_sr_takes_its_format)
{
    xcp_sr sr = api_file_sr("src", "qcow2");
    xcp_vdi v, c, null_vdi;

    SET_REF(null_vdi, XCP_NULL_REF);
    OK(vdi_create(&v, sr, 64 * MiB, "vhd"));
    fill("vhd", file_of("src", v));
    OK(xcp_vdi_copy(S, &c, v, sr, null_vdi, null_vdi));
    cr_assert_str_eq(format_of(c), "qcow2");
    assert_same("vhd", file_of("src", v), "qcow2", file_of("src", c));
}

Test(vdi_format, copy_into_vhd_of_a_too_large_disk_fails_leaving_nothing)
{
    xcp_sr src = api_file_sr("src", NULL), dst = api_file_sr("dst", "vhd");
    xcp_vdi v, c, null_vdi;
    const xcp_error *e;

    SET_REF(null_vdi, XCP_NULL_REF);
    OK(vdi_create(&v, src, 3 * 1024 * GiB, NULL));
    cr_assert_lt(xcp_vdi_copy(S, &c, v, dst, null_vdi, null_vdi), 0);
    e = xcp_error_last();
    cr_assert_str_eq(e->name, "SR_BACKEND_FAILURE_79");
    cr_assert_eq(api_sr_vdi_count(dst), 0);
}

Test(vdi_format, snapshot_and_clone_of_a_vhd_vdi_stay_vhd)
{
    xcp_sr sr = api_file_sr("vhdsr", "vhd");
    xcp_string_map none = {0}, m = {0};
    xcp_vdi v, s, c;

    OK(vdi_create(&v, sr, 64 * MiB, NULL));
    fill("vhd", file_of("vhdsr", v));
    OK(xcp_vdi_snapshot(S, &s, v, &none));
    OK(xcp_vdi_clone(S, &c, s, &none));
    cr_assert_str_eq(format_of(s), "vhd");
    cr_assert_str_eq(format_of(c), "vhd");
    cr_assert_str_eq(format_of(v), "vhd");
    OK(xcp_vdi_get_sm_config(S, &m, v));
    cr_assert_not_null(xcp_string_map_get(&m, "vhd-parent"));
    xcp_string_map_dispose(&m);
    OK(xcp_vdi_destroy(S, c));
    OK(xcp_vdi_destroy(S, s));
}

/* A VHD image placed in the SR (here made by qemu-img) is found by
 * SR.scan with its format, and its size as the image says. */
Test(vdi_format, scan_registers_a_vhd_made_outside)
{
    xcp_sr sr = api_file_sr("scansr", NULL);
    const char *uuid = "2c3d4e5f-6a7b-4c8d-9e0f-a1b2c3d4e5f6";
    char path[640];
    xcp_vdi v;
    int64_t size;

    snprintf(path, sizeof(path), "%s/scansr/%s.vhd", api_dir, uuid);
    cr_assert_eq(RUN("qemu-img", "create", "-q", "-f", "vpc", path, "32M"),
                 0);
    qemu_write("vhd", path, "write -P 0x7e 1M 4k");
    OK(xcp_sr_scan(S, sr));
    OK(xcp_vdi_get_by_uuid(S, &v, uuid));
    cr_assert_str_eq(format_of(v), "vhd");
    OK(xcp_vdi_get_virtual_size(S, &size, v));
    cr_assert_geq(size, 32 * MiB);
    /* And it can be copied out of VHD like any other. */
    {
        xcp_sr dst = api_file_sr("dst", "qcow2");
        xcp_vdi c, null_vdi;

        SET_REF(null_vdi, XCP_NULL_REF);
        OK(xcp_vdi_copy(S, &c, v, dst, null_vdi, null_vdi));
        assert_same("vhd", path, "qcow2", file_of("dst", c));
    }
}

/* A VM installed on an SR whose format is VHD gets VHD disks, which the
 * hypervisor is given as VHD, and runs. */
Test(vdi_format, vm_on_a_vhd_sr_gets_vhd_disks_and_starts)
{
    xcp_sr sr = api_file_sr("vhdsr", "vhd");
    xcp_vbd_set vbds = {0};
    xcp_vm vm;
    xcp_vdi d;
    size_t i, disks = 0;

    OK(xcp_pool_set_default_SR(S, api_pool(), sr));
    vm = api_install("vhdvm");
    OK(xcp_vm_get_VBDs(S, &vbds, vm));
    for (i = 0; i < vbds.n; i++) {
        if (xcp_vbd_get_VDI(S, &d, vbds.items[i]) < 0 || api_is_null(d.ref))
            continue;
        cr_assert_str_eq(format_of(d), "vhd");
        disks++;
    }
    xcp_vbd_set_dispose(&vbds);
    cr_assert_geq(disks, 1);
    OK(xcp_vm_start(S, vm, false, false));
    OK(xcp_vm_hard_shutdown(S, vm));
}
