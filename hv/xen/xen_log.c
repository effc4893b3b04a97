/*
 * hv/xen/xen_log.c - the xen driver's xentoollog logger (see xen_log.h).
 * The kept messages are thread-local: libxl logs a synchronous call's
 * failure on the thread that made it, and the driver is called from
 * several threads at once, so one shared buffer would mix their errors.
 */
#ifdef XCP_HAVE_XEN

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xen_log.h"

#define KEPT_MAX 1024

struct xen_log {
    xentoollog_logger vtable; /* first: libxl sees only this */
    xentoollog_logger *out; /* the stdio stream logger */
};

static _Thread_local char kept[KEPT_MAX];

/* Appends text to the thread's kept messages, "; "-separated. */
static void keep(const char *text)
{
    size_t have = strlen(kept);

    if (have + 3 >= sizeof(kept))
        return;
    if (have) {
        memcpy(kept + have, "; ", 2);
        have += 2;
    }
    snprintf(kept + have, sizeof(kept) - have, "%s", text);
}

static void vmessage(xentoollog_logger *l, xentoollog_level level,
                     int errnoval, const char *context, const char *fmt,
                     va_list ap)
{
    struct xen_log *x = (struct xen_log *)l;
    char msg[512];
    va_list copy;

    va_copy(copy, ap);
    if (x->out)
        xtl_logv(x->out, level, errnoval, context, fmt,
                 copy);
    va_end(copy);
    if (level < XTL_ERROR)
        return;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (errnoval >= 0) {
        size_t n = strlen(msg);
        snprintf(msg + n, sizeof(msg) - n, ": %s", strerror(errnoval));
    }
    keep(msg);
}

static void progress(xentoollog_logger *l, const char *context,
                     const char *doing, int percent, unsigned long done,
                     unsigned long total)
{
    struct xen_log *x = (struct xen_log *)l;

    if (x->out)
        x->out->progress(x->out, context, doing, percent, done, total);
}

static void destroy(xentoollog_logger *l)
{
    struct xen_log *x = (struct xen_log *)l;

    if (x->out)
        xtl_logger_destroy(x->out);
    free(x);
}

/*
 * The least level of libxl's messages that go to the stream:
 * XCP_XEN_LOG_LEVEL names one of xentoollog's levels ("debug", "verbose",
 * "detail", "progress", "info", "notice", "warning", "error",
 * "critical"); error when unset or unknown.
 */
static xentoollog_level stream_level(FILE *stream)
{
    const char *v = getenv("XCP_XEN_LOG_LEVEL");
    int l;

    if (!v || !*v)
        return XTL_ERROR;
    for (l = XTL_DEBUG; l < XTL_NUM_LEVELS; l++)
        if (strcasecmp(v, xtl_level_to_string((xentoollog_level)l)) == 0)
            return (xentoollog_level)l;
    fprintf(stream, "xen: XCP_XEN_LOG_LEVEL=%s is no xentoollog level "
            "(debug ... critical): error used\n", v);
    return XTL_ERROR;
}

xentoollog_logger *xcp__xen_log_new(FILE *stream)
{
    struct xen_log *x = calloc(1, sizeof(*x));
    xentoollog_level level = stream_level(stream);

    if (!x)
        return NULL;
    x->vtable.vmessage = vmessage;
    x->vtable.progress = progress;
    x->vtable.destroy = destroy;
    /* below error, the messages tell a story in time: date them */
    x->out = (xentoollog_logger *)xtl_createlogger_stdiostream(
        stream, level, level < XTL_ERROR ? XTL_STDIOSTREAM_SHOW_DATE : 0);
    if (!x->out) {
        free(x);
        return NULL;
    }
    return &x->vtable;
}

void xcp__xen_log_reset(void)
{
    kept[0] = '\0';
}

const char *xcp__xen_log_errors(void)
{
    return kept;
}

#else
/* ISO C wants something in every translation unit. */
typedef int xcp__xen_log_not_built;
#endif /* XCP_HAVE_XEN */
