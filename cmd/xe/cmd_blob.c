/*
 * xe: blob-get and blob-put (XAPI's cli_operations.ml blob_get/blob_put)
 * and the data of XAPI's /blob handler, which xcpd serves with the same
 * functions (xe_transfer_find): a blob's bytes through the library
 * (xcp_blob_get_data/xcp_blob_put_data), so the embedded engine, the
 * daemon's socket, -s and the stock xe's HttpGet/HttpPut all reach the
 * same file under the state directory. And host-backup/host-restore
 * (XAPI's /host_backup and /host_restore), the same way over
 * xcp_host_backup/xcp_host_restore.
 */
#include "cmds.h"

#include <string.h>

#include <xcp/transfer.h>

/* The blob of the query's ref= (anonymous: only a public one). */
static int query_blob(xe_ctx *ctx, const char *query, xcp_blob *blob)
{
    const char *ref = xe_query_get(ctx, query, "ref");
    bool pub;

    if (ref == NULL) {
        const char *p[] = {"ref", ""};

        return xe_fail_api(ctx, "INVALID_VALUE", 2, p);
    }
    if (strlen(ref) >= sizeof(blob->ref)) {
        const char *p[] = {"blob", ref};

        return xe_fail_api(ctx, "HANDLE_INVALID", 2, p);
    }
    snprintf(blob->ref, sizeof(blob->ref), "%s", ref);
    if (ctx->anonymous) {
        /* XAPI's handler: a public blob needs no credentials */
        if (xcp_blob_get_public(ctx->s, &pub, *blob) < 0)
            return xe_fail_lib(ctx);
        if (!pub) {
            const char *p[] = {"", "no credentials given"};

            return xe_fail_api(ctx, "SESSION_AUTHENTICATION_FAILED", 2, p);
        }
    }
    return 0;
}

/* XAPI's handler: the blob's bytes, sent as its mime_type. */
int xe_blob_produce(xe_ctx *ctx, const char *query, int fd)
{
    xcp_blob blob;
    char *mime;

    if (query_blob(ctx, query, &blob) < 0)
        return -1;
    if (xcp_blob_get_data(ctx->s, blob, fd) < 0 ||
        xcp_blob_get_mime_type(ctx->s, &mime, blob) < 0)
        return xe_fail_lib(ctx);
    ctx->content_type = xe_strdup(&ctx->arena, mime);
    xcp_free(mime);
    return 0;
}

int xe_blob_consume(xe_ctx *ctx, const char *query, int fd)
{
    xcp_blob blob;

    if (ctx->anonymous) {
        const char *p[] = {"", "no credentials given"};

        return xe_fail_api(ctx, "SESSION_AUTHENTICATION_FAILED", 2, p);
    }
    if (query_blob(ctx, query, &blob) < 0)
        return -1;
    return xcp_blob_put_data(ctx->s, blob, fd) < 0 ? xe_fail_lib(ctx) : 0;
}

/* XAPI's: the blob by uuid, a task "<label>, ref=<ref>", the transfer,
 * "Blob get succeeded" / "Blob put succeeded". */
static int blob_transfer(xe_ctx *ctx, bool put)
{
    xe_download d = *xe_transfer_find("/blob", put);
    const char *ref;

    if (xe_get_by_uuid(ctx, "blob", xe_param(ctx, "uuid"), &ref) < 0)
        return -1;
    d.label = xe_sprintf(&ctx->arena, "%s, ref=%s", d.label, ref);
    d.query = xe_sprintf(&ctx->arena, "ref=%s", ref); /* as XAPI: raw */
    if (xe_io_download(ctx, xe_param(ctx, "filename"), &d) < 0)
        return -1;
    xe_print_line(ctx, put ? "Blob put succeeded" : "Blob get succeeded");
    return 0;
}

int xe_blob_get(xe_ctx *ctx)
{
    return blob_transfer(ctx, false);
}

int xe_blob_put(xe_ctx *ctx)
{
    return blob_transfer(ctx, true);
}

int xe_host_backup_produce(xe_ctx *ctx, const char *query, int fd)
{
    (void)query;
    return xcp_host_backup(ctx->s, fd) < 0 ? xe_fail_lib(ctx) : 0;
}

int xe_host_restore_consume(xe_ctx *ctx, const char *query, int fd)
{
    (void)query;
    if (ctx->anonymous) {
        const char *p[] = {"", "no credentials given"};

        return xe_fail_api(ctx, "SESSION_AUTHENTICATION_FAILED", 2, p);
    }
    return xcp_host_restore(ctx->s, fd) < 0 ? xe_fail_lib(ctx) : 0;
}

/* XAPI's host_backup/host_restore: track_http_operation on the one host
 * selected, nothing printed. */
static int host_transfer_op(xe_ctx *ctx, const xe_obj *h, const void *data,
                            const char **out)
{
    bool put = data != NULL;

    (void)h;
    *out = NULL;
    return xe_io_download(ctx, xe_param(ctx, "file-name"),
                          xe_transfer_find(put ? "/host_restore"
                                               : "/host_backup",
                                           put));
}

int xe_host_backup(xe_ctx *ctx)
{
    static const char *const own[] = {"file-name", NULL};

    return xe_do_host_op(ctx, own, false, host_transfer_op, NULL);
}

int xe_host_restore(xe_ctx *ctx)
{
    static const char *const own[] = {"file-name", NULL};

    return xe_do_host_op(ctx, own, false, host_transfer_op, "put");
}
