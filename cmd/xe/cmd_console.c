/*
 * xe console: attach the user's terminal to a VM's text (vt100) console,
 * as XAPI's xe does with HttpConnect: xe_io_console() (io.c) relays this
 * process's terminal to xcp_console_open()'s stream; xcpd's /cli has the
 * thin client CONNECT to /console. Ctrl-] ends it; so does the console's
 * end (the VM halts).
 */
#include "fields.h"

#include <stdio.h>

#include <xcp/console.h>

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

/* The console session of the one VM the selectors choose (xe_vm_do_one). */
static int console_op(xe_ctx *ctx, const xe_obj *vmp, const void *data,
                      const char **out)
{
    const xe_obj vm = *vmp;
    xcp_console con;

    (void)data;
    (void)out;
    if (text_console(ctx, &vm, &con) < 0)
        return -1;
    xe_io_out(ctx, xe_sprintf(&ctx->arena, "Connecting to console on VM %s. "
                              "Press Ctrl + ']' to quit.\n",
                              xe_rec_str(vm.rec, "name_label")));
    if (xe_io_console(ctx, con.ref) < 0)
        return -1;
    xe_io_out(ctx, "\n");
    return 0;
}

int xe_console(xe_ctx *ctx)
{
    static const char *const own[] = {NULL};

    return xe_vm_do_one(ctx, own, console_op, NULL);
}
