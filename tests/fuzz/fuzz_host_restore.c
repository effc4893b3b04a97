/*
 * libFuzzer target: XAPI's /host_restore as libxcp takes it
 * (api/host_backup.c): arbitrary bytes are a host backup handed to
 * xcp_host_restore on an embedded engine (sim). It must stage a
 * well-formed backup or refuse with RESTORE_SCRIPT_FAILED, never crash,
 * hang, write outside the state directory's stage, or leave a partial
 * stage behind.
 */
#define _GNU_SOURCE /* memfd_create */
#include <xcp/xcp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];
static xcp_session *s;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    xcp_open_options o = {XCP_OPEN_OPTIONS_VERSION};
    char path[128];
    struct stat st;
    int fd, rc;

    if (!s) {
        snprintf(dir, sizeof(dir), "/tmp/xcp-fuzz-restore-XXXXXX");
        if (!mkdtemp(dir))
            abort();
        setenv("XCP_HV", "sim", 1);
        o.state_dir = dir;
        if (xcp_session_open_local(&s, &o) < 0)
            abort();
    }
    if ((fd = memfd_create("backup", 0)) < 0)
        abort();
    if (size && write(fd, data, size) != (ssize_t)size)
        abort();
    lseek(fd, 0, SEEK_SET);
    rc = xcp_host_restore(s, fd);
    close(fd);
    snprintf(path, sizeof(path), "%s/host-restore.new", dir);
    if (stat(path, &st) == 0) /* a stage half made */
        abort();
    if (rc < 0 && strcmp(xcp_error_last()->name, "RESTORE_SCRIPT_FAILED")
        && strcmp(xcp_error_last()->name, "INTERNAL_ERROR"))
        abort();
    return 0;
}
