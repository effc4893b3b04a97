/*
 * image_test.h - what the image library tests (test_qcow2.c, test_vhd.c)
 * share: a temporary directory per test, running qemu-img and friends
 * without a shell, reading QEMU's view of an image, patterns, patching
 * bytes of a file.  Included once per test program.
 */
#ifndef XCP_TEST_IMAGE_TEST_H
#define XCP_TEST_IMAGE_TEST_H

#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define UNUSED __attribute__((unused))

extern char **environ;

#define KiB 1024ull
#define MiB (1024ull * KiB)
#define GiB (1024ull * MiB)

static char dir[64];
static char err[1024];

static UNUSED int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static UNUSED void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/xcp-img-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static UNUSED void teardown(void)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A path in the test directory; four live at a time. */
static UNUSED const char *P(const char *name)
{
    static char buf[4][256];
    static int i;

    i = (i + 1) % 4;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
    return buf[i];
}

/* Run argv (no shell); its stdout goes to *out when out is not NULL.
 * Returns the exit status, or -1 if it could not run or was killed. */
static UNUSED int run(char **out, const char *const *argv)
{
    posix_spawn_file_actions_t fa;
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    int pfd[2], status;
    ssize_t r;
    pid_t pid;

    cr_assert_not_null(buf);
    cr_assert_eq(pipe(pfd), 0);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
    posix_spawn_file_actions_addclose(&fa, pfd[0]);
    posix_spawn_file_actions_addclose(&fa, pfd[1]);
    if (posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv,
                     environ) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        close(pfd[0]);
        close(pfd[1]);
        free(buf);
        return -1;
    }
    posix_spawn_file_actions_destroy(&fa);
    close(pfd[1]);
    while ((r = read(pfd[0], buf + len, cap - len - 1)) > 0) {
        len += (size_t)r;
        if (cap - len < 2) {
            buf = realloc(buf, cap *= 2);
            cr_assert_not_null(buf);
        }
    }
    buf[len] = '\0';
    close(pfd[0]);
    waitpid(pid, &status, 0);
    if (out)
        *out = buf;
    else
        free(buf);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

#define RUN(out, ...) run(out, (const char *const[]){ __VA_ARGS__, NULL })

static UNUSED void assert_qemu_check(const char *path)
{
    char *out = NULL;
    int rc = RUN(&out, "qemu-img", "check", path);

    cr_assert_eq(rc, 0, "qemu-img check %s exited %d:\n%s", path, rc, out);
    free(out);
}

/* The number after "key": in JSON text (qemu-img's output is flat
 * enough for this). */
static UNUSED unsigned long long json_num(const char *json, const char *key)
{
    char pat[128];
    const char *p;

    snprintf(pat, sizeof(pat), "\"%s\": ", key);
    p = strstr(json, pat);
    cr_assert_not_null(p, "no %s in %s", key, json);
    return strtoull(p + strlen(pat), NULL, 10);
}

/* The string after "key": in JSON text, or "" when absent. */
static UNUSED const char *json_str(const char *json, const char *key)
{
    static char val[1024];
    char pat[128];
    const char *p, *e;

    snprintf(pat, sizeof(pat), "\"%s\": \"", key);
    p = strstr(json, pat);
    if (!p)
        return "";
    p += strlen(pat);
    e = strchr(p, '"');
    cr_assert_not_null(e);
    snprintf(val, sizeof(val), "%.*s", (int)(e - p), p);
    return val;
}

static UNUSED char *qemu_info(const char *path)
{
    char *out = NULL;

    cr_assert_eq(RUN(&out, "qemu-img", "info", "--output=json", path), 0,
                 "qemu-img info %s", path);
    return out;
}

/* An image open of path returned ret and left img: it must have failed
 * with code, leaving no image, and err must name path and say needle. */
static UNUSED void assert_open_refused(const char *path, int ret,
                                       const void *img, int code,
                                       const char *needle)
{
    cr_assert_eq(ret, code, "open %s: expected %d (%s), got %d: %s", path,
                 code, strerror(-code), ret, err);
    cr_assert_null(img);
    cr_assert_not_null(strstr(err, needle), "message '%s' lacks '%s'", err,
                       needle);
    cr_assert_not_null(strstr(err, path), "message '%s' lacks the path",
                       err);
}

/* The whole virtual disk as QEMU reads it: as format fmt (a qemu-img -f
 * name, "vpc" for VHD), or as QEMU probes it when fmt is NULL. */
static UNUSED uint8_t *qemu_read_all(const char *fmt, const char *path,
                                     uint64_t size)
{
    const char *raw = P("qemu-view.raw");
    const char *const as_fmt[] = {"qemu-img", "convert", "-f", fmt, "-O",
                                  "raw", path, raw, NULL};
    const char *const probed[] = {"qemu-img", "convert", "-O", "raw", path,
                                  raw, NULL};
    uint8_t *buf = calloc(1, size + 1);
    int fd;

    cr_assert_not_null(buf);
    unlink(raw);
    cr_assert_eq(run(NULL, fmt ? as_fmt : probed), 0, "qemu-img convert %s",
                 path);
    fd = open(raw, O_RDONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pread(fd, buf, size, 0), (ssize_t)size);
    close(fd);
    unlink(raw);
    return buf;
}

static UNUSED void fill(uint8_t *buf, size_t len, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    size_t i;

    for (i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (uint8_t)(x | 1);      /* never zero: zeros mean "hole" */
    }
}

static UNUSED void patch(const char *path, off_t off, const void *bytes, size_t n)
{
    int fd = open(path, O_WRONLY);

    cr_assert_geq(fd, 0);
    cr_assert_eq(pwrite(fd, bytes, n, off), (ssize_t)n);
    close(fd);
}

static UNUSED void patch32(const char *path, off_t off, uint32_t v)
{
    uint8_t b[4] = { v >> 24, v >> 16, v >> 8, v };

    patch(path, off, b, 4);
}

static UNUSED void patch64(const char *path, off_t off, uint64_t v)
{
    patch32(path, off, (uint32_t)(v >> 32));
    patch32(path, off + 4, (uint32_t)v);
}

#endif
