/*
 * xe: the server side of one command, as XAPI's xapi_cli.ml runs it
 * (parse the words, "help", find the command, check its required
 * parameters, log in, run, print the output or the error and give the
 * exit code). The xe program runs it in its own process; xcpd runs it
 * for the thin clients of its /cli handler (cmd/xcpd/cli.c), so the
 * output is the same whichever xe a user types.
 */
#include "xe.h"

#include <string.h>

void xe_ctx_init(xe_ctx *ctx, const xe_io *io)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->io = io;
    ctx->in = stdin;
    xe_strv_init(&ctx->out.minbuf, &ctx->arena);
}

void xe_ctx_dispose(xe_ctx *ctx)
{
    xe_cache_clear(ctx);
    if (ctx->s != NULL)
        xcp_session_close(ctx->s);
    ctx->s = NULL;
    xe_arena_free(&ctx->arena);
}

static int param_error(xe_ctx *ctx, const char *prefix, const char *text)
{
    ctx->err.kind = XE_E_PARAM;
    ctx->err.prefix = prefix;
    ctx->err.text = text;
    return -1;
}

static int check_required(xe_ctx *ctx, const xe_cmd *c)
{
    size_t i;

    for (i = 0; c->reqd[i] != NULL; i++)
        if (!xe_params_has(&ctx->params, c->reqd[i]))
            return param_error(ctx, "Required parameter not found",
                               c->reqd[i]);
    return 0;
}

static int run(xe_ctx *ctx, size_t nwords, const char *const *words,
               xe_open_fn open_fn, void *arg)
{
    xe_command cmd;
    const xe_cmd *c;

    if (xe_command_parse(&ctx->arena, &cmd, nwords, words) < 0)
        return param_error(ctx, "Syntax error", "");
    ctx->cmdname = cmd.name;
    ctx->params = cmd.params;
    ctx->out.minimal = xe_streq(xe_param(ctx, "minimal"), "true");
    if (strcmp(cmd.name, "help") == 0)
        return xe_cmd_help(ctx);
    c = xe_cmd_find(ctx, cmd.name);
    if (c == NULL)
        return param_error(ctx, "Unknown command", cmd.name);
    if (check_required(ctx, c) < 0 || open_fn(ctx, arg) < 0)
        return -1;
    return c->fn(ctx);
}

int xe_execute(xe_ctx *ctx, size_t nwords, const char *const *words,
               xe_open_fn open_fn, void *arg)
{
    if (run(ctx, nwords, words, open_fn, arg) == 0) {
        xe_out_flush(ctx);
        return 0;
    }
    return xe_print_error(ctx);
}
