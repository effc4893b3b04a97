/*
 * xe: output. Records, lists and messages are printed the way XAPI's
 * cli_printer.ml does (label alignment, two blank lines after a record,
 * --minimal buffering with comma escaping), and failures the way
 * xapi_cli.ml and the thin client print them (error descriptions with
 * named parameters, "Error: ...", syntax errors with the usage hint).
 */
#include "xe.h"

#include <string.h>

/* Through the user's side (io.c), which keeps stdout and stderr in
 * order on a terminal or a transcript. */
static void to_stdout(xe_ctx *ctx, const char *s)
{
    xe_io_out(ctx, s);
}

static void to_stderr(xe_ctx *ctx, const char *s)
{
    xe_io_err(ctx, s);
}

static const char *escape_commas(xe_arena *a, const char *s)
{
    xe_buf b;

    xe_buf_init(&b, a);
    xe_buf_add(&b, "");
    for (; *s; s++) {
        if (*s == ',' || *s == '\\')
            xe_buf_addc(&b, '\\');
        xe_buf_addc(&b, *s);
    }
    return xe_buf_str(&b);
}

static void pad(xe_buf *b, size_t n)
{
    while (n-- > 0)
        xe_buf_addc(b, ' ');
}

/* cli_printer.ml multi_line_record, plus the Print newline and the
 * record separator: the text is followed by two empty lines. */
static const char *format_record(xe_arena *a, const xe_table_rec *r)
{
    size_t i, w = 0, len;
    xe_buf b;

    for (i = 0; i < r->n; i++) {
        len = strlen(r->rows[i].label);
        if (len > w)
            w = len;
    }
    w += 4;
    xe_buf_init(&b, a);
    xe_buf_add(&b, "");
    for (i = 0; i < r->n; i++) {
        len = strlen(r->rows[i].label);
        if (i > 0) {
            xe_buf_addc(&b, '\n');
            pad(&b, w > len ? w - len : 0);
        }
        xe_buf_add(&b, r->rows[i].label);
        if (i == 0)
            pad(&b, w > len ? w - len : 0);
        xe_buf_add(&b, ": ");
        xe_buf_add(&b, r->rows[i].value);
    }
    xe_buf_add(&b, "\n\n\n");
    return xe_buf_str(&b);
}

void xe_print_table(xe_ctx *ctx, const xe_table_rec *recs, size_t n)
{
    xe_strv firsts;
    size_t i;

    if (!ctx->out.minimal) {
        for (i = 0; i < n; i++)
            to_stdout(ctx, format_record(&ctx->arena, &recs[i]));
        return;
    }
    if (n == 0)
        return;
    xe_strv_init(&firsts, &ctx->arena);
    for (i = 0; i < n; i++) {
        if (recs[i].n == 0)
            return;
        xe_strv_add(&firsts, escape_commas(&ctx->arena,
                                           recs[i].rows[0].value));
    }
    xe_strv_add(&ctx->out.minbuf, xe_strv_join(&firsts, ","));
}

void xe_print_list(xe_ctx *ctx, const char *const *items, size_t n)
{
    xe_strv esc;
    size_t i;

    if (!ctx->out.minimal) {
        for (i = 0; i < n; i++) {
            to_stdout(ctx, items[i]);
            to_stdout(ctx, "\n");
        }
        return;
    }
    xe_strv_init(&esc, &ctx->arena);
    for (i = 0; i < n; i++)
        xe_strv_add(&esc, escape_commas(&ctx->arena, items[i]));
    xe_strv_add(&ctx->out.minbuf, xe_strv_join(&esc, ","));
}

void xe_print_line(xe_ctx *ctx, const char *s)
{
    xe_print_list(ctx, &s, 1);
}

void xe_print_msg(xe_ctx *ctx, const char *s)
{
    if (ctx->out.minimal)
        return;
    to_stdout(ctx, s);
    to_stdout(ctx, "\n");
}

void xe_print_stderr(xe_ctx *ctx, const char *s)
{
    if (ctx->out.minimal)
        return;
    to_stderr(ctx, s);
    to_stderr(ctx, "\n");
}

void xe_print_direct(xe_ctx *ctx, const char *s)
{
    (void)ctx;
    to_stdout(ctx, s);
    to_stdout(ctx, "\n");
}

void xe_out_flush(xe_ctx *ctx)
{
    xe_buf b;
    size_t i;

    if (!ctx->out.minimal)
        return;
    /* XAPI keeps the printed pieces newest first */
    xe_buf_init(&b, &ctx->arena);
    xe_buf_add(&b, "");
    for (i = ctx->out.minbuf.n; i > 0; i--) {
        xe_buf_add(&b, ctx->out.minbuf.v[i - 1]);
        if (i > 1)
            xe_buf_addc(&b, ',');
    }
    xe_buf_addc(&b, '\n');
    to_stdout(ctx, xe_buf_str(&b));
}

const char *xe_api_error_text(xe_ctx *ctx, const char *name, size_t n,
                              const char *const *params)
{
    const char *desc = xcp_error_description(name);
    const char *const *names;
    size_t nn = 0, i;
    xe_buf b;

    xe_buf_init(&b, &ctx->arena);
    xe_buf_add(&b, "");
    if (desc == NULL || *desc == '\0') {
        xe_buf_printf(&b, "Error code: %s\nError parameters: ", name);
        for (i = 0; i < n; i++) {
            if (i > 0)
                xe_buf_add(&b, ", ");
            xe_buf_add(&b, xe_ref_convert(ctx, params[i]));
        }
        return xe_buf_str(&b);
    }
    names = xcp_error_param_names(&nn, name);
    xe_buf_add(&b, desc);
    for (i = 0; i < n || i < nn; i++) {
        xe_buf_addc(&b, '\n');
        if (i < nn && i < n)
            xe_buf_printf(&b, "%s: %s", names[i],
                          xe_ref_convert(ctx, params[i]));
        else if (i < n)
            xe_buf_printf(&b, "<extra>: %s", xe_ref_convert(ctx, params[i]));
        else
            xe_buf_printf(&b, "%s: <unknown>", names[i]);
    }
    return xe_buf_str(&b);
}

static void print_multi(xe_ctx *ctx)
{
    size_t i;

    for (i = 0; i < ctx->err.nfail; i++)
        to_stdout(ctx, xe_sprintf(&ctx->arena, "operation failed on %s: %s\n",
                             ctx->err.fail[i].uuid, ctx->err.fail[i].msg));
}

int xe_print_error(xe_ctx *ctx)
{
    xe_err *e = &ctx->err;

    switch (e->kind) {
    case XE_E_NONE:
        to_stderr(ctx, "Error: the command failed without a reason (a bug)\n");
        break;
    case XE_E_API:
        to_stderr(ctx, xe_api_error_text(ctx, e->name, e->nparams, e->params));
        to_stderr(ctx, "\n");
        break;
    case XE_E_CLI:
        to_stderr(ctx, xe_sprintf(&ctx->arena, "Error: %s\n", e->text));
        break;
    case XE_E_PARAM:
        if (e->prefix != NULL && *e->prefix != '\0')
            to_stderr(ctx, xe_sprintf(&ctx->arena, "%s: %s\n", e->prefix,
                                 e->text));
        else
            to_stderr(ctx, xe_sprintf(&ctx->arena, "%s\n", e->text));
        to_stderr(ctx, "For usage run: 'xe help'\n");
        break;
    case XE_E_MULTI:
        print_multi(ctx);
        break;
    case XE_E_RAW:
        to_stderr(ctx, e->text);
        break;
    }
    return 1;
}

void xe_print_usage(FILE *f)
{
    fflush(stdout);
    fputs("Usage:\n"
          "  xe <command>\n"
          "    [ -s <server> ]            XenServer host\n"
          "    [ -p <port> ]              XenServer port number\n"
          "    [ -u <username> -pw <password> | -pwf <password file> ]\n"
          "                               User authentication (password or "
          "file)\n"
          "    [ --nossl ]                Disable SSL/TLS\n"
          "    [ --debug ]                Enable debug output\n"
          "    [ --debug-on-fail ]        Enable debug output only on "
          "failure\n"
          "    [ --minimal ]              Output only values in a "
          "comma-separated lists\n"
          "    [ --traceparent <value> ]  Distributed tracing context\n"
          "    [ --trace ]                Show task stacktrace on failure\n"
          "    [ <other arguments> ... ]  Command-specific options\n"
          "\n"
          "A full list of commands can be obtained by running\n"
          "  xe help -s <server> -p <port>\n",
          f);
    fflush(f);
}
