/*
 * xe console: attach the terminal to a VM's text (vt100) console, as
 * XAPI's xe does with HttpConnect. The stream comes from
 * xcp_console_open(): the hypervisor's own for the embedded engine,
 * `CONNECT /console` for a daemon or a remote host. Ctrl-] ends it; so
 * does the console's end (the VM halts). A terminal on stdin is put in raw
 * mode meanwhile; from a pipe, the input is sent and the command ends once
 * the console has been quiet for QUIET_MS after the input's end.
 */
#include "fields.h"
#include "../common/fdio.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <xcp/console.h>

#define ESCAPE 0x1d    /* Ctrl-] */
#define QUIET_MS 1000

/* The VM's vt100 console's ref. */
static int text_console(xe_ctx *ctx, const xe_obj *vm, xcp_console *out)
{
    xcp_vm ref;
    xcp_console_set cs = {0};
    enum xcp_console_protocol p;
    size_t i;
    int rc = -1;

    snprintf(ref.ref, sizeof(ref.ref), "%s", vm->ref);
    if (xcp_vm_get_consoles(ctx->s, &cs, ref) < 0)
        return xe_fail_lib(ctx);
    for (i = 0; i < cs.n && rc < 0; i++) {
        if (xcp_console_get_protocol(ctx->s, &p, cs.items[i]) < 0) {
            xcp_console_set_dispose(&cs);
            return xe_fail_lib(ctx);
        }
        if (p == XCP_CONSOLE_PROTOCOL_VT100) {
            *out = cs.items[i];
            rc = 0;
        }
    }
    xcp_console_set_dispose(&cs);
    if (rc < 0)
        return xe_fail(ctx, "No text console available");
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

/* The console session of the one VM the selectors choose (xe_vm_do_one). */
static int console_op(xe_ctx *ctx, const xe_obj *vmp, const void *data,
                      const char **out)
{
    const xe_obj vm = *vmp;
    xcp_console con;
    struct termios saved, raw;
    int fd, tty;

    (void)data;
    (void)out;
    if (text_console(ctx, &vm, &con) < 0)
        return -1;
    if (xcp_console_open(ctx->s, &fd, con) < 0)
        return xe_fail_lib(ctx);
    printf("Connecting to console on VM %s. Press Ctrl + ']' to quit.\n",
           xe_rec_str(vm.rec, "name_label"));
    fflush(stdout);
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
    printf("\n");
    return 0;
}

int xe_console(xe_ctx *ctx)
{
    static const char *const own[] = {NULL};

    return xe_vm_do_one(ctx, own, console_op, NULL);
}
