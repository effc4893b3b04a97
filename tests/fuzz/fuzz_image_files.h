/*
 * fuzz_image_files.h - the image fuzzers' (qcow2, vhd) input as files:
 * two in-memory files, made once per process, each refilled with the
 * whole input, one to open read-only and one to write to.
 * Header-only; the includer defines _GNU_SOURCE (memfd_create).
 */
#ifndef XCP_FUZZ_IMAGE_FILES_H
#define XCP_FUZZ_IMAGE_FILES_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static int fuzz_ro_fd = -1, fuzz_rw_fd = -1;
static char fuzz_ro_path[64], fuzz_rw_path[64];

static void fuzz_refill(int fd, const uint8_t *data, size_t size)
{
    if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
}

/*
 * Puts data into both files (made on the first call, named
 * "fuzz-ro.<ext>" and "fuzz-rw.<ext>"); *ro and *rw: their paths, valid
 * for the process's life. Aborts when the files cannot be made or filled.
 */
static void fuzz_image_files(const char *ext, const uint8_t *data,
                             size_t size, const char **ro, const char **rw)
{
    char name[64];

    if (fuzz_ro_fd < 0) {
        snprintf(name, sizeof(name), "fuzz-ro.%s", ext);
        fuzz_ro_fd = memfd_create(name, MFD_CLOEXEC);
        snprintf(name, sizeof(name), "fuzz-rw.%s", ext);
        fuzz_rw_fd = memfd_create(name, MFD_CLOEXEC);
        if (fuzz_ro_fd < 0 || fuzz_rw_fd < 0)
            abort();
        snprintf(fuzz_ro_path, sizeof(fuzz_ro_path), "/proc/self/fd/%d",
                 fuzz_ro_fd);
        snprintf(fuzz_rw_path, sizeof(fuzz_rw_path), "/proc/self/fd/%d",
                 fuzz_rw_fd);
    }
    fuzz_refill(fuzz_ro_fd, data, size);
    fuzz_refill(fuzz_rw_fd, data, size);
    *ro = fuzz_ro_path;
    *rw = fuzz_rw_path;
}

#endif
