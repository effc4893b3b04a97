/*
 * The per-thread last error (XenAPI name + parameters) and the lookups in
 * the generated error table.
 */
#include "../internal.h"

#include <pthread.h>
#include <stdio.h>

#define MAX_PARAMS 16

struct tls_error {
    xcp_error pub;
    char *name;
    char *params[MAX_PARAMS];
    const char *cparams[MAX_PARAMS];
    bool set;
};

static _Thread_local struct tls_error tls_err;
static _Thread_local bool tls_registered;
static pthread_key_t exit_key;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;

static void clear(struct tls_error *e);

/* A thread that ends with an error set (a daemon's worker threads) frees
 * it: the key's destructor runs at thread exit. */
static void on_thread_exit(void *p)
{
    XCP__UNUSED(p);
    clear(&tls_err);
}

static void exit_key_init(void)
{
    if (pthread_key_create(&exit_key, on_thread_exit) != 0)
        exit_key = (pthread_key_t)-1;
}

static void register_thread(void)
{
    pthread_once(&exit_once, exit_key_init);
    if (exit_key != (pthread_key_t)-1)
        pthread_setspecific(exit_key, &tls_err);
    tls_registered = true;
}

static void clear(struct tls_error *e)
{
    size_t i;

    free(e->name);
    e->name = NULL;
    for (i = 0; i < MAX_PARAMS; i++) {
        free(e->params[i]);
        e->params[i] = NULL;
    }
    memset(&e->pub, 0, sizeof(e->pub));
    e->set = false;
}

const xcp_error *xcp_error_last(void)
{
    return tls_err.set ? &tls_err.pub : NULL;
}

void xcp_error_clear(void)
{
    clear(&tls_err);
}

static int set_error(int code, const char *name, size_t n,
                     const char *const *params)
{
    struct tls_error *e = &tls_err;
    size_t i;
    char *nname = xcp__strdup(name);
    char *np[MAX_PARAMS] = {0};

    if (!tls_registered)
        register_thread();
    if (n > MAX_PARAMS)
        n = MAX_PARAMS;
    /* Copy before clearing: params may point into the old error. */
    for (i = 0; i < n; i++)
        np[i] = xcp__strdup(params[i] ? params[i] : "");
    clear(e);
    e->name = nname;
    for (i = 0; i < n; i++) {
        e->params[i] = np[i];
        e->cparams[i] = np[i] ? np[i] : "";
    }
    e->pub.code = code;
    e->pub.name = nname ? nname : "INTERNAL_ERROR";
    e->pub.nparams = n;
    e->pub.params = e->cparams;
    e->set = true;
    return code;
}

int xcp_error_set(const char *name, size_t nparams, const char *const *params)
{
    return set_error(XCP_EAPI, name, nparams, params);
}

int xcp__failv(const char *name, size_t n, const char *const *params)
{
    return set_error(XCP_EAPI, name, n, params);
}

int xcp__fail_code(int code, const char *name, size_t n,
                   const char *const *params)
{
    return set_error(code, name, n, params);
}

int xcp__fail(const char *name, ...)
{
    const char *p[MAX_PARAMS];
    size_t n = 0;
    va_list ap;
    const char *s;

    va_start(ap, name);
    while (n < MAX_PARAMS && (s = va_arg(ap, const char *)) != NULL)
        p[n++] = s;
    va_end(ap);
    return set_error(XCP_EAPI, name, n, p);
}

int xcp__internal(const char *fmt, ...)
{
    va_list ap;
    char *msg = NULL;
    const char *p[1];
    int rc;

    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    p[0] = msg ? msg : "internal error";
    rc = set_error(XCP_EINTERNAL, "INTERNAL_ERROR", 1, p);
    free(msg);
    return rc;
}

int xcp__oom(void)
{
    const char *p[] = {"out of memory"};

    return set_error(XCP_ENOMEM, "INTERNAL_ERROR", 1, p);
}

int xcp__error_to_value(xcp_value *out)
{
    const struct tls_error *e = &tls_err;
    size_t i;
    int rc;

    if (!e->set)
        return xcp_value_set_array(out, 0);
    rc = xcp_value_set_array(out, 1 + e->pub.nparams);
    if (rc < 0)
        return rc;
    if (xcp_value_set_string(&out->u.arr.items[0], e->pub.name) < 0)
        goto oom;
    for (i = 0; i < e->pub.nparams; i++)
        if (xcp_value_set_string(&out->u.arr.items[1 + i],
                                 e->pub.params[i]) < 0)
            goto oom;
    return 0;
oom:
    xcp_value_dispose(out);
    return XCP_ENOMEM;
}

int xcp__error_from_value(const xcp_value *v)
{
    const char *p[MAX_PARAMS];
    size_t i, n;

    if (v->kind != XCP_VAL_ARRAY || v->u.arr.n == 0 ||
        v->u.arr.items[0].kind != XCP_VAL_STRING)
        return xcp__internal("task failed without error information");
    n = v->u.arr.n - 1;
    if (n > MAX_PARAMS)
        n = MAX_PARAMS;
    for (i = 0; i < n; i++) {
        const xcp_value *it = &v->u.arr.items[1 + i];
        p[i] = it->kind == XCP_VAL_STRING ? it->u.s : "";
    }
    return set_error(XCP_EAPI, v->u.arr.items[0].u.s, n, p);
}

void xcp__error_save(xcp__saved_error *s)
{
    s->set = tls_err.set && xcp__error_to_value(&s->v) == 0;
}

void xcp__error_restore(xcp__saved_error *s)
{
    if (!s->set) {
        xcp_error_clear();
        return;
    }
    xcp__error_from_value(&s->v);
    xcp_value_dispose(&s->v);
    s->set = false;
}

static const struct xcp__errdesc *lookup(const char *name)
{
    size_t lo = 0, hi = xcp__nerrors;

    while (name && lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(name, xcp__errors[mid].name);
        if (c == 0)
            return &xcp__errors[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const char *xcp_error_description(const char *name)
{
    const struct xcp__errdesc *d = lookup(name);

    return d ? d->desc : NULL;
}

const char *const *xcp_error_param_names(const char *name, size_t *n)
{
    const struct xcp__errdesc *d = lookup(name);

    if (n)
        *n = d ? d->nparams : 0;
    return d ? d->params : NULL;
}
