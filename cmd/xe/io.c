/*
 * xe: the user's side of a command (see struct xe_io in xe.h). Commands
 * print, prompt, read small files and move VMs and disks through the
 * xe_io_* functions here; this file also holds the implementation the xe
 * program uses, on this process's terminal and files. xcpd's /cli
 * (cmd/xcpd/cli.c) has the other one, on XAPI's thin-client protocol.
 */
#include "fields.h"
#include "../common/fdio.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <xcp/console.h>
#include <xcp/transfer.h>
#include <xcp/xva.h>

#define ESCAPE 0x1d    /* Ctrl-] */
#define QUIET_MS 1000

/* ---- through ctx->io ---- */

void xe_io_out(xe_ctx *ctx, const char *s)
{
    ctx->io->out(ctx->io, s);
}

void xe_io_err(xe_ctx *ctx, const char *s)
{
    ctx->io->err(ctx->io, s);
}

char *xe_io_prompt(xe_ctx *ctx)
{
    return ctx->io->prompt(ctx->io, ctx);
}

char *xe_io_load(xe_ctx *ctx, const char *path)
{
    return ctx->io->load(ctx->io, ctx, path);
}

int xe_io_vm_export(xe_ctx *ctx, const char *file, const char *vm,
                    const xcp_vm_export_options *o)
{
    return ctx->io->vm_export(ctx->io, ctx, file, vm, o);
}

int xe_io_vm_import(xe_ctx *ctx, const char *file,
                    const xcp_vm_import_options *o, xe_strv *vms)
{
    return ctx->io->vm_import(ctx->io, ctx, file, o, vms);
}

int xe_io_vdi_transfer(xe_ctx *ctx, const char *file, const char *vdi,
                       bool import, const xcp_vdi_transfer_options *o)
{
    return ctx->io->vdi_transfer(ctx->io, ctx, file, vdi, import, o);
}

int xe_io_console(xe_ctx *ctx, const char *con)
{
    return ctx->io->console(ctx->io, ctx, con);
}

int xe_io_download(xe_ctx *ctx, const char *file, const xe_download *d)
{
    return ctx->io->download(ctx->io, ctx, file, d);
}

bool xe_io_debugging(const xe_ctx *ctx)
{
    return ctx->io->debug != NULL;
}

void xe_io_debug(xe_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    char *s;

    if (ctx->io->debug == NULL)
        return;
    va_start(ap, fmt);
    s = xe_vsprintf(&ctx->arena, fmt, ap);
    va_end(ap);
    ctx->io->debug(ctx->io, s);
}

/* ---- this process's terminal and files ---- */

/* stdout and stderr share a terminal or a transcript: keep them ordered */
static void local_out(const xe_io *io, const char *s)
{
    (void)io;
    fputs(s, stdout);
    fflush(stdout);
}

static void local_err(const xe_io *io, const char *s)
{
    (void)io;
    fflush(stdout);
    fputs(s, stderr);
    fflush(stderr);
}

/* EOF is the thin client's lost connection. */
static char *local_prompt(const xe_io *io, xe_ctx *ctx)
{
    char line[4096];
    size_t len;

    (void)io;
    if (fgets(line, sizeof(line), ctx->in) == NULL) {
        ctx->err.kind = XE_E_RAW;
        ctx->err.text = "Lost connection to the server.\n";
        return NULL;
    }
    len = strlen(line);
    if (len > 0 && line[len - 1] == '\n')
        line[--len] = '\0';
    return xe_strndup(&ctx->arena, line, len);
}

static char *local_load(const xe_io *io, xe_ctx *ctx, const char *path)
{
    (void)io;
    return xe_slurp(&ctx->arena, path);
}

static int local_vm_export(const xe_io *io, xe_ctx *ctx, const char *file,
                           const char *vm, const xcp_vm_export_options *o)
{
    xcp_vm_export_options opts = *o;
    xcp_vm ref;
    xe_bar b;
    int fd, rc;

    (void)io;
    xe_bar_start(&b, &opts.progress, &opts.progress_ctx);
    fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return xe_fail(ctx, "%s: %s", file, strerror(errno));
    snprintf(ref.ref, sizeof(ref.ref), "%s", vm);
    rc = xcp_vm_export_xva(ctx->s, ref, fd, &opts);
    xe_bar_end(&b);
    if (close(fd) < 0 && rc == 0) {
        unlink(file);
        return xe_fail(ctx, "%s: %s", file, strerror(errno));
    }
    if (rc < 0) {
        unlink(file); /* no half-written export left behind */
        return xe_fail_lib(ctx);
    }
    return 0;
}

static int local_vm_import(const xe_io *io, xe_ctx *ctx, const char *file,
                           const xcp_vm_import_options *o, xe_strv *vms)
{
    xcp_vm_import_options opts = *o;
    xcp_vm_set set = {0, NULL};
    xe_bar b;
    size_t i;
    int fd, rc;

    (void)io;
    fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return xe_fail(ctx, "%s: %s", file, strerror(errno));
    xe_bar_start(&b, &opts.progress, &opts.progress_ctx);
    rc = xcp_vm_import_xva(ctx->s, &set, fd, &opts);
    xe_bar_end(&b);
    close(fd);
    if (rc < 0)
        return xe_fail_lib(ctx);
    for (i = 0; i < set.n; i++)
        xe_strv_add(vms, xe_strdup(&ctx->arena, set.items[i].ref));
    xcp_vm_set_dispose(&set);
    return 0;
}

static int local_vdi_transfer(const xe_io *io, xe_ctx *ctx, const char *file,
                              const char *vdi, bool import,
                              const xcp_vdi_transfer_options *o)
{
    xcp_vdi_transfer_options opts = *o;
    xcp_vdi ref;
    xe_bar b;
    int fd, rc;

    (void)io;
    xe_bar_start(&b, &opts.progress, &opts.progress_ctx);
    fd = import ? open(file, O_RDONLY | O_CLOEXEC)
                : open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return xe_fail(ctx, "%s: %s", file, strerror(errno));
    snprintf(ref.ref, sizeof(ref.ref), "%s", vdi);
    rc = import ? xcp_vdi_import(ctx->s, ref, fd, &opts)
                : xcp_vdi_export(ctx->s, ref, fd, &opts);
    xe_bar_end(&b);
    if (close(fd) < 0 && rc == 0)
        return xe_fail(ctx, "%s: %s", file, strerror(errno));
    if (rc < 0) {
        if (!import)
            unlink(file); /* no half-written export left behind */
        return xe_fail_lib(ctx);
    }
    return 0;
}

/* Terminal ↔ console until Ctrl-], the console's end, or (from a pipe)
 * quiet after the input's end. */
static void relay(int con)
{
    struct pollfd pf[2] = {{STDIN_FILENO, POLLIN, 0}, {con, POLLIN, 0}};
    char buf[4096], *esc;
    ssize_t n;
    int in_open = 1, r;

    for (;;) {
        pf[0].fd = in_open ? STDIN_FILENO : -1;
        r = poll(pf, 2, in_open ? -1 : QUIET_MS);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return; /* error, or quiet after the input's end */
        if (pf[1].revents) {
            n = read(con, buf, sizeof(buf));
            if (n <= 0
                || xcmd_write_all(STDOUT_FILENO, buf, (size_t)n, -1) < 0)
                return;
        }
        if (in_open && pf[0].revents) {
            n = read(STDIN_FILENO, buf, sizeof(buf));
            if (n <= 0) {
                in_open = 0;
                continue;
            }
            esc = memchr(buf, ESCAPE, (size_t)n);
            if (xcmd_write_all(con, buf, esc ? (size_t)(esc - buf)
                                             : (size_t)n, -1) < 0
                || esc)
                return;
        }
    }
}

/* A terminal on stdin is put in raw mode meanwhile. */
static int local_console(const xe_io *io, xe_ctx *ctx, const char *con)
{
    struct termios saved, raw;
    xcp_console ref;
    int fd, tty;

    (void)io;
    snprintf(ref.ref, sizeof(ref.ref), "%s", con);
    if (xcp_console_open(ctx->s, &fd, ref) < 0)
        return xe_fail_lib(ctx);
    tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0;
    if (tty) {
        raw = saved;
        cfmakeraw(&raw);
        tcsetattr(STDIN_FILENO, TCSANOW, &raw);
    }
    relay(fd);
    if (tty)
        tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    close(fd);
    return 0;
}

/* The data made here, into the file (removed when it fails); an
 * upload's file read here. */
static int local_download(const xe_io *io, xe_ctx *ctx, const char *file,
                          const xe_download *d)
{
    int fd, rc;

    (void)io;
    if (d->consume != NULL) { /* an upload: the file is read */
        if ((fd = open(file, O_RDONLY | O_CLOEXEC)) < 0)
            return xe_fail(ctx, "%s: %s", file, strerror(errno));
        rc = d->consume(ctx, d->query, fd);
        close(fd);
        return rc;
    }
    if (*file == '\0') { /* newcli: no file name, stdout */
        fflush(stdout);
        return d->produce(ctx, d->query, STDOUT_FILENO);
    }
    fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return xe_fail(ctx, "%s: %s", file, strerror(errno));
    rc = d->produce(ctx, d->query, fd);
    if (close(fd) < 0 && rc == 0)
        rc = xe_fail(ctx, "%s: %s", file, strerror(errno));
    if (rc < 0)
        unlink(file);
    return rc;
}

static const xe_io local_io = {
    local_out,       local_err,          local_prompt,
    local_load,      local_vm_export,    local_vm_import,
    local_vdi_transfer, local_console,   NULL, NULL, local_download,
};

const xe_io *xe_io_local(void)
{
    return &local_io;
}

static void local_debug(const xe_io *io, const char *s)
{
    FILE *f = io->arg;

    if (f == stderr)
        fflush(stdout);
    fprintf(f, "debug: %s\n", s);
    fflush(f);
}

const xe_io *xe_io_local_debug(FILE *f)
{
    static xe_io io;

    io = local_io;
    io.arg = f;
    io.debug = local_debug;
    return &io;
}
