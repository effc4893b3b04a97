/*
 * xe: entry point. Parses the command line (client options, ~/.xe,
 * XE_EXTRA_ARGS), checks the command and its required parameters, opens
 * a session (remote when a server is given, else the local daemon's
 * socket when one listens, else the engine embedded in this process),
 * runs the command and prints its output or error with XAPI's exit codes.
 */
#include "fields.h"
#include "../common/conn.h"

#include <stdlib.h>
#include <string.h>

/* How long xe waits for the state directory while another process holds
 * it (xcmd_open_here): a daemon that is starting holds the directory
 * before it listens, and then xe talks to it. */
#define XE_LOCK_TIMEOUT_MS 60000

static const char *rc_text(xe_arena *a)
{
    const char *home = getenv("HOME");

    return xe_slurp(a, xe_sprintf(a, "%s/.xe", home != NULL ? home : ""));
}

/* -pwf: user name on the first line, password on the second. */
static int read_pwfile(xe_ctx *ctx, xe_conn *c)
{
    char *text = xe_slurp(&ctx->arena, c->pwfile);

    if (text == NULL) {
        fprintf(stderr, "Error opening password file '%s'\n", c->pwfile);
        return -1;
    }
    if (xcmd_pwfile_split(text, &c->user, &c->password) < 0) {
        fputs("Error: password file format: expecting username on the "
              "first line, password on the second line\n",
              stderr);
        return -1;
    }
    return 0;
}

static void remote_failure(xe_ctx *ctx, const xe_conn *c, int rc)
{
    const xcp_error *e = xcp_error_last();

    if (e != NULL && xe_streq(e->name, "SESSION_AUTHENTICATION_FAILED")) {
        ctx->err.kind = XE_E_PARAM;
        ctx->err.prefix = "";
        ctx->err.text = c->user != NULL && *c->user != '\0'
                            ? "Authentication failed"
                            : "Username/password must be specified";
        return;
    }
    if (rc != XCP_EIO && e != NULL) {
        /* The server answered with some other XenAPI error. */
        xe_fail_lib(ctx);
        return;
    }
    ctx->err.kind = XE_E_RAW;
    ctx->err.text = "Unable to contact server. Please check server and port "
                    "settings.\n";
}

static int open_session(xe_ctx *ctx, const xe_conn *c)
{
    xcp_remote_options ro;
    char uri[XCMD_URI_MAX];
    int rc;

    if (!xcmd_is_local(c->server, c->port)) {
        if (xcmd_server_uri(uri, sizeof(uri), c->server, c->port, c->nossl)
            < 0) {
            remote_failure(ctx, c, XCP_EIO);
            return -1;
        }
    } else if ((rc = xcmd_open_here(&ctx->s, "cli", XE_LOCK_TIMEOUT_MS, uri,
                                    sizeof(uri)))
               <= 0) {
        return rc < 0 ? xe_fail_lib(ctx) : 0;
    }
    xcmd_remote_options(&ro, uri, c->user, c->password, "cli");
    rc = xcp_session_open_remote(&ctx->s, &ro);
    if (rc < 0 && !xcmd_is_local(c->server, c->port)) {
        /* A pool member sends clients to its coordinator, HOST_IS_SLAVE
         * [address]: log in there instead, once, as XAPI's clients do. */
        const xcp_error *e = xcp_error_last();
        char master[256];
        if (e && !strcmp(e->name, "HOST_IS_SLAVE") && e->nparams == 1 &&
            snprintf(master, sizeof(master), "%s", e->params[0]) <
                (int)sizeof(master) &&
            xcmd_server_uri(uri, sizeof(uri), master, c->port, c->nossl) ==
                0) {
            xcmd_remote_options(&ro, uri, c->user, c->password, "cli");
            rc = xcp_session_open_remote(&ctx->s, &ro);
        }
    }
    if (rc < 0) {
        ctx->s = NULL;
        remote_failure(ctx, c, rc);
        return -1;
    }
    return 0;
}

/* xe_open_fn: this host's toolstack or the server of the command line. */
static int open_cb(xe_ctx *ctx, void *arg)
{
    return open_session(ctx, arg);
}

int main(int argc, char **argv)
{
    xe_ctx ctx;
    xe_cmdline cl;
    FILE *dbg = NULL;
    int rc = 0;

    if (xe_fields_init() < 0) {
        fputs("xe: out of memory\n", stderr);
        return 1;
    }
    xe_ctx_init(&ctx, xe_io_local());
    xe_cmdline_parse(&ctx.arena, &cl, argc - 1, argv + 1,
                     rc_text(&ctx.arena), getenv("XE_EXTRA_ARGS"));
    fputs(cl.prelude != NULL ? cl.prelude : "", stderr);
    switch (cl.action) {
    case XE_VERSION:
        fputs("ThinCLI protocol: 0.2\n", stdout);
        goto out;
    case XE_USAGE:
        xe_print_usage(stderr);
        goto out;
    case XE_BAD:
        fputs(cl.errtext, stderr);
        rc = 1;
        goto out;
    case XE_RUN:
        break;
    }
    if (cl.conn.pwfile != NULL && read_pwfile(&ctx, &cl.conn) < 0) {
        rc = 1;
        goto out;
    }
    /* newcli: --debug to stderr; --debug-on-fail to a temporary file,
     * shown after "Debug info:" when the command fails. */
    if (cl.conn.debug)
        ctx.io = xe_io_local_debug(stderr);
    else if (cl.conn.debugonfail && (dbg = tmpfile()) != NULL)
        ctx.io = xe_io_local_debug(dbg);
    rc = xe_execute(&ctx, cl.nwords, cl.words, open_cb, &cl.conn);
    if (dbg != NULL) {
        char buf[4096];
        size_t n;

        if (rc != 0) {
            fflush(stdout);
            fputs("\nDebug info:\n\n", stderr);
            rewind(dbg);
            while ((n = fread(buf, 1, sizeof(buf), dbg)) > 0)
                fwrite(buf, 1, n, stderr);
        }
        fclose(dbg);
    }
out:
    xe_ctx_dispose(&ctx);
    fflush(stdout);
    return rc;
}
