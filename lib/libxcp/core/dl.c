/*
 * core/dl.c - load a system library at first use (dlopen) and resolve the
 * functions a caller needs from it, so that a process which never uses
 * the feature does not map the library (and what it pulls in) at start-up.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <stdio.h>

#include "core.h"

int xcp__dl_load(const char *lib, const xcp__dl_sym *syms, size_t n,
                 char *why, size_t why_len)
{
    void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    size_t i;

    if (!h) {
        const char *e = dlerror();

        snprintf(why, why_len, "%s", e != NULL ? e : lib);
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (!(*syms[i].fn = dlsym(h, syms[i].name))) {
            snprintf(why, why_len, "%s has no %s", lib, syms[i].name);
            for (i = 0; i < n; i++)
                *syms[i].fn = NULL;
            dlclose(h);
            return -1;
        }
    }
    return 0;
}
