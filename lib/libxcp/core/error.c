/*
 * The per-thread last error (XenAPI name + parameters). The error table
 * and errors as values are the model's (model/errors.c).
 */
/* the one definition of xcp__fail, which core.h poisons elsewhere */
#define XCP__FAIL_DIRECT
#include "core.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define MAX_PARAMS XCP__ERROR_MAX_PARAMS

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

int xcp__io_fail(const char *path, const char *op, int err)
{
    const char *name = strerrorname_np(err);
    char *why = xcp__printf("%s: %s (%s)", op, strerror(err),
                            name ? name : "?");
    int rc;

    if (!why)
        return xcp__oom();
    if (err == ENOSPC || err == EDQUOT)
        rc = XCP__ERR_OUT_OF_SPACE_WHY(path, why);
    else
        rc = xcp__internal("%s: %s", path, why);
    free(why);
    return rc;
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
