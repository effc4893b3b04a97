/*
 * xe: pool-dump-database, and the dump itself (xe_db_dump) that xcpd
 * also serves at XAPI's /pool/xmldbdump.
 *
 * The layout is XAPI's database XML (ocaml/database/db_xml.ml, To):
 * <database><manifest> pairs, then one <table name="Class"> per class
 * with one <row ref="..." field="value" .../> per object; values as
 * XAPI's database writes them: sets and maps as S-expressions
 * (('k' 'v') ...), spaces and line ends protected with '%'
 * (Xml_spaces.protect), then XML-escaped. What differs, because
 * libxcp's database is not XAPI's: the columns are the XenAPI field
 * names (XAPI's own are namespaced, "name__label"), rows carry no
 * __ctime/__mtime generations, the manifest's schema version is 0.0
 * (not one of XAPI's) and its generation_count is the event token,
 * and tables that are kept in memory only (session, task) are written
 * empty, as XAPI writes its non-persistent ones.  The dump is read
 * through the public API (one get_all_records per class), so it is as
 * consistent as those reads: each table is one snapshot.
 */
#include "cmds.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xcp/model.h>

/* XML attribute text of s, after Xml_spaces.protect. */
static void put_attr(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case ' ': fputs("%.", f); break;
        case '\t': fputs("%t", f); break;
        case '\n': fputs("%n", f); break;
        case '\r': fputs("%r", f); break;
        case '%': fputs("%%", f); break;
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* A scalar's database text (arena). */
static const char *scalar(xe_ctx *ctx, const xcp_value *v)
{
    char buf[64];

    switch (v->kind) {
    case XCP_VAL_STRING:
        return v->u.s;
    case XCP_VAL_INT:
        return xe_sprintf(&ctx->arena, "%" PRId64, v->u.i);
    case XCP_VAL_FLOAT:
        return xe_sprintf(&ctx->arena, "%.17g", v->u.f);
    case XCP_VAL_BOOL:
        return v->u.b ? "true" : "false";
    case XCP_VAL_DATETIME:
        xcp_datetime_format(buf, sizeof(buf), v->u.t);
        return xe_strdup(&ctx->arena, buf);
    default:
        return "";
    }
}

/* Http.urlencode: RFC 3986's unreserved characters kept. */
const char *xe_url_encode(xe_ctx *ctx, const char *s)
{
    xe_buf b;

    xe_buf_init(&b, &ctx->arena);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9') || strchr("-._~", c) != NULL)
            xe_buf_addc(&b, (char)c);
        else
            xe_buf_printf(&b, "%%%02X", c);
    }
    return xe_buf_str(&b);
}

/* SExpr.string_of of a string: quoted, ' and \ escaped. */
static void sexpr_str(xe_buf *b, const char *s)
{
    xe_buf_addc(b, '\'');
    for (; *s; s++) {
        if (*s == '\'' || *s == '\\')
            xe_buf_addc(b, '\\');
        xe_buf_addc(b, *s);
    }
    xe_buf_addc(b, '\'');
}

/* A field's database text: scalars as they are, sets and maps as
 * S-expressions. */
static const char *db_text(xe_ctx *ctx, const xcp_value *v)
{
    xe_buf b;
    size_t i;

    if (v->kind != XCP_VAL_ARRAY && v->kind != XCP_VAL_STRUCT)
        return scalar(ctx, v);
    xe_buf_init(&b, &ctx->arena);
    xe_buf_addc(&b, '(');
    if (v->kind == XCP_VAL_ARRAY) {
        for (i = 0; i < v->u.arr.n; i++) {
            if (i > 0)
                xe_buf_addc(&b, ' ');
            sexpr_str(&b, scalar(ctx, &v->u.arr.items[i]));
        }
    } else {
        for (i = 0; i < v->u.st.n; i++) {
            if (i > 0)
                xe_buf_addc(&b, ' ');
            xe_buf_addc(&b, '(');
            sexpr_str(&b, v->u.st.keys[i]);
            xe_buf_addc(&b, ' ');
            sexpr_str(&b, db_text(ctx, &v->u.st.vals[i]));
            xe_buf_addc(&b, ')');
        }
    }
    xe_buf_addc(&b, ')');
    return xe_buf_str(&b);
}

static void pair(FILE *f, const char *k, const char *v)
{
    fputs("<pair key=\"", f);
    put_attr(f, k);
    fputs("\" value=\"", f);
    put_attr(f, v);
    fputs("\"/>", f);
}

/* The current event token: the database's generation as the API shows
 * it. */
static const char *generation(xe_ctx *ctx)
{
    xcp_value classes, res;
    const xcp_value *tok;
    const char *g = "0";
    xe_args a;

    xcp_value_set_array(&classes, 0);
    xe_args_init(&a);
    xe_args_value(&a, &classes);
    xe_args_str(&a, "");
    xe_args_float(&a, 0.0);
    if (xe_call(ctx, &res, "event.from", &a) < 0)
        return NULL;
    /* libxcp's token is "<generation>,<...>", zero-padded */
    tok = xcp_value_struct_get(&res, "token");
    if (tok != NULL && tok->kind == XCP_VAL_STRING) {
        const char *t = tok->u.s;
        size_t n;

        while (*t == '0' && t[1] >= '0' && t[1] <= '9')
            t++;
        n = strspn(t, "0123456789");
        if (n > 0)
            g = xe_strndup(&ctx->arena, t, n);
    }
    xcp_value_dispose(&res);
    return g;
}

/* One class's table. */
static int table(xe_ctx *ctx, FILE *f, int cls)
{
    const char *name = xcp_class_name(cls);
    unsigned flags = xcp_class_flags(cls);
    xcp_value all;
    xe_args a;
    size_t i, j;

    fputs("<table name=\"", f);
    put_attr(f, name);
    fputs("\">", f);
    if (!(flags & XCP_CLASS_VOLATILE)) {
        xe_args_init(&a);
        if (xe_call(ctx, &all, xe_sprintf(&ctx->arena, "%s.get_all_records",
                                          name), &a) < 0)
            return -1;
        for (i = 0; all.kind == XCP_VAL_STRUCT && i < all.u.st.n; i++) {
            const xcp_value *rec = &all.u.st.vals[i];

            size_t n = rec->kind == XCP_VAL_STRUCT   ? rec->u.st.n
                       : rec->kind == XCP_VAL_RECORD ? xcp_class_field_count(
                                                           rec->u.rec.cls)
                                                     : 0;

            fputs("<row ref=\"", f);
            put_attr(f, all.u.st.keys[i]);
            fputc('"', f);
            for (j = 0; j < n; j++) {
                bool st = rec->kind == XCP_VAL_STRUCT;

                fputc(' ', f);
                put_attr(f, st ? rec->u.st.keys[j]
                               : xcp_class_field(rec->u.rec.cls, j)->name);
                fputs("=\"", f);
                put_attr(f, db_text(ctx, st ? &rec->u.st.vals[j]
                                            : &rec->u.rec.fields[j]));
                fputc('"', f);
            }
            fputs("/>", f);
        }
        xcp_value_dispose(&all);
    }
    fputs("</table>", f);
    return 0;
}

int xe_db_dump(xe_ctx *ctx, const char *query, int fd)
{
    const char *gen = generation(ctx);
    int dup_fd, cls, rc = 0;
    FILE *f;

    (void)query;
    if (gen == NULL)
        return -1;
    if ((dup_fd = dup(fd)) < 0 || (f = fdopen(dup_fd, "w")) == NULL) {
        if (dup_fd >= 0)
            close(dup_fd);
        return xe_fail(ctx, "%s", strerror(errno));
    }
    fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<database>"
          "<manifest>", f);
    pair(f, "schema_major_vsn", "0");
    pair(f, "schema_minor_vsn", "0");
    pair(f, "generation_count", gen);
    fputs("</manifest>", f);
    for (cls = 0; cls < xcp_class_count() && rc == 0; cls++)
        if (!(xcp_class_flags(cls) & XCP_CLASS_NODB))
            rc = table(ctx, f, cls);
    fputs("</database>", f);
    if (fclose(f) != 0 && rc == 0)
        return xe_fail(ctx, "%s", strerror(errno));
    ctx->content_type = "application/xml";
    return rc;
}

/* XAPI's WLB report and diagnostics handlers (wlb_reports.ml) first
 * check that the pool has a WLB server: libxcp has no WLB client, so
 * its pools have none (pool.initialize_wlb is not there to set one). */
static int wlb_produce(xe_ctx *ctx, const char *query, int fd)
{
    xe_obj *pools;
    const char *url;
    size_t n;

    (void)fd;
    (void)query;
    if (xe_objs_all(ctx, xe_class_find("pool"), &pools, &n) < 0)
        return -1;
    url = n > 0 ? xe_rec_str(pools[0].rec, "wlb_url") : NULL;
    if (url == NULL || *url == '\0')
        return xe_fail_api(ctx, "WLB_NOT_INITIALIZED", 0, NULL);
    {
        const char *what = "pool.initialize_wlb";

        return xe_fail_api(ctx, "MESSAGE_METHOD_UNKNOWN", 1, &what);
    }
}

/* The downloads xe's code makes, by XAPI's handler path. */
static const xe_download downloads[] = {
    {"dump database", "/pool/xmldbdump", "", xe_db_dump, NULL, false},
    {"WLB report", "/wlb_report", "", wlb_produce, NULL, false},
    {"WLB diagnostics download", "/wlb_diagnostics", "", wlb_produce, NULL,
     false},
    /* cmd_blob.c */
    {"Obtaining blob", "/blob", "", xe_blob_produce, NULL, true},
    {"Blob PUT", "/blob", "", NULL, xe_blob_consume, false},
    {"host backup download", "/host_backup", "", xe_host_backup_produce,
     NULL, false},
    {"host backup upload", "/host_restore", "", NULL,
     xe_host_restore_consume, false},
};

const xe_download *xe_download_find(const char *path)
{
    return xe_transfer_find(path, false);
}

const xe_download *xe_transfer_find(const char *path, bool put)
{
    size_t i;

    for (i = 0; i < XE_ARRAY_LEN(downloads); i++)
        if (strcmp(downloads[i].path, path) == 0
            && (downloads[i].consume != NULL) == put)
            return &downloads[i];
    return NULL;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

const char *xe_query_get(xe_ctx *ctx, const char *query, const char *key)
{
    size_t klen = strlen(key), n;
    const char *p = query, *end;
    xe_buf b;

    while (p != NULL && *p) {
        end = strchr(p, '&');
        n = end != NULL ? (size_t)(end - p) : strlen(p);
        if (n > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
            xe_buf_init(&b, &ctx->arena);
            for (p += klen + 1, n -= klen + 1; n > 0; p++, n--)
                if (*p == '%' && n >= 3 && hexval(p[1]) >= 0
                    && hexval(p[2]) >= 0) {
                    xe_buf_addc(&b, (char)(hexval(p[1]) * 16
                                           + hexval(p[2])));
                    p += 2;
                    n -= 2;
                } else
                    xe_buf_addc(&b, *p == '+' ? ' ' : *p);
            return xe_buf_str(&b);
        }
        p = end != NULL ? end + 1 : NULL;
    }
    return NULL;
}

/* download_file_with_task: the file (stdout when ""), "<label>
 * succeeded" after a named file. */
static int download_labelled(xe_ctx *ctx, const char *path,
                             const char *query, const char *label)
{
    xe_download d = *xe_download_find(path);
    const char *file = xe_param(ctx, "filename");

    d.query = query;
    if (file == NULL)
        file = "";
    if (xe_io_download(ctx, file, &d) < 0)
        return -1;
    if (*file != '\0')
        xe_print_line(ctx, xe_sprintf(&ctx->arena, "%s succeeded", label));
    return 0;
}

int xe_pool_retrieve_wlb_report(xe_ctx *ctx)
{
    xe_buf q;
    size_t i;

    xe_buf_init(&q, &ctx->arena);
    xe_buf_printf(&q, "report=%s", xe_url_encode(ctx, xe_param(ctx,
                                                               "report")));
    for (i = 0; i < ctx->params.n; i++) {
        const xe_kv *p = &ctx->params.v[i];

        if (strcmp(p->key, "report") == 0 || strcmp(p->key, "filename") == 0
            || xe_is_stdparam(p->key))
            continue;
        xe_buf_printf(&q, "&%s=%s", xe_url_encode(ctx, p->key),
                      xe_url_encode(ctx, p->val));
    }
    return download_labelled(ctx, "/wlb_report", xe_buf_str(&q),
                             "Report generation");
}

int xe_pool_retrieve_wlb_diagnostics(xe_ctx *ctx)
{
    return download_labelled(ctx, "/wlb_diagnostics", "",
                             "WLB diagnostics download");
}

int xe_pool_dump_database(xe_ctx *ctx)
{
    return xe_io_download(ctx, xe_param(ctx, "file-name"),
                          xe_download_find("/pool/xmldbdump"));
}
