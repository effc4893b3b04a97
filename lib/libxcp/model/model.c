/*
 * Public introspection of the model (model.h) and name lookups over the
 * generated tables. Class and field names are looked up through hash
 * indexes built once, on first use (decoders and the journal look fields
 * up by name for every member of every record).
 */
#include "model.h"

#include <pthread.h>
#include <strings.h>

/* ---- the name index ---- */

/* Exact class name -> id + 1; per class, field name -> index + 1. Keys are
 * the tables' own strings. Without memory for it, lookups scan. */
static xcp__hmap class_index;
static xcp__hmap *field_index;
static bool index_ok;
static pthread_once_t index_once = PTHREAD_ONCE_INIT;

static void index_free(void)
{
    int c;

    if (field_index)
        for (c = 0; c < xcp__nclasses; c++)
            xcp__hmap_free(&field_index[c]);
    free(field_index);
    field_index = NULL;
    xcp__hmap_free(&class_index);
}

static void index_build(void)
{
    int c;
    size_t i;

    field_index = calloc((size_t)xcp__nclasses, sizeof(*field_index));
    if (!field_index)
        return;
    for (c = 0; c < xcp__nclasses; c++) {
        const struct xcp__class *k = &xcp__classes[c];
        if (xcp__hmap_put(&class_index, k->name,
                          (void *)(uintptr_t)(c + 1)) < 0)
            goto fail;
        for (i = 0; i < k->nfields; i++)
            if (xcp__hmap_put(&field_index[c], k->fields[i].name,
                              (void *)(uintptr_t)(i + 1)) < 0)
                goto fail;
    }
    index_ok = true;
    return;
fail:
    index_free();
}

static bool index_ready(void)
{
    pthread_once(&index_once, index_build);
    return index_ok;
}

int xcp__enum_index(const struct xcp__enum *e, const char *s)
{
    size_t i;

    if (!s)
        return -1;
    for (i = 0; i < e->n; i++)
        if (strcmp(e->values[i], s) == 0)
            return (int)i;
    for (i = 0; i < e->n; i++)
        if (strcasecmp(e->values[i], s) == 0)
            return (int)i;
    return -1;
}

static int index_lookup(const char *wire)
{
    size_t lo = 0, hi = (size_t)xcp__nmessages;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(wire, xcp__msg_index[mid].wire);
        if (c == 0)
            return xcp__msg_index[mid].id;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return -1;
}

int xcp__message_lookup(const char *wire)
{
    char buf[256];
    size_t len, i;
    int id;

    if (!wire)
        return -1;
    id = index_lookup(wire);
    if (id >= 0 || strchr(wire, '.'))
        return id;
    /* The alternative spelling Class_message: try each underscore as the
     * separator (class names contain underscores too). */
    len = strlen(wire);
    if (len >= sizeof(buf))
        return -1;
    for (i = 1; i + 1 < len; i++) {
        if (wire[i] != '_')
            continue;
        memcpy(buf, wire, len + 1);
        buf[i] = '.';
        if ((id = index_lookup(buf)) >= 0)
            return id;
    }
    return -1;
}

int xcp_class_count(void)
{
    return xcp__nclasses;
}

int xcp_class_by_name(const char *name)
{
    int i;

    if (!name)
        return -1;
    if (index_ready()) {
        uintptr_t v = (uintptr_t)xcp__hmap_get(&class_index, name);
        if (v)
            return (int)v - 1;
    } else {
        for (i = 0; i < xcp__nclasses; i++)
            if (strcmp(xcp__classes[i].name, name) == 0)
                return i;
    }
    for (i = 0; i < xcp__nclasses; i++)
        if (strcasecmp(xcp__classes[i].name, name) == 0)
            return i;
    return -1;
}

const char *xcp_class_name(int cls)
{
    return (cls >= 0 && cls < xcp__nclasses) ? xcp__classes[cls].name : NULL;
}

unsigned xcp_class_flags(int cls)
{
    return (cls >= 0 && cls < xcp__nclasses) ? xcp__classes[cls].flags : 0;
}

size_t xcp_class_field_count(int cls)
{
    return (cls >= 0 && cls < xcp__nclasses) ? xcp__classes[cls].nfields : 0;
}

const xcp_field_info *xcp_class_field(int cls, size_t i)
{
    if (cls < 0 || cls >= xcp__nclasses || i >= xcp__classes[cls].nfields)
        return NULL;
    return &xcp__classes[cls].info[i];
}

int xcp_class_field_index(int cls, const char *name)
{
    size_t i;

    if (cls < 0 || cls >= xcp__nclasses || !name)
        return -1;
    if (index_ready())
        return (int)(uintptr_t)xcp__hmap_get(&field_index[cls], name) - 1;
    for (i = 0; i < xcp__classes[cls].nfields; i++)
        if (strcmp(xcp__classes[cls].fields[i].name, name) == 0)
            return (int)i;
    return -1;
}

const char *const *xcp_enum_values(size_t *n, const char *name)
{
    int i;

    for (i = 0; name && i < xcp__nenums; i++) {
        if (strcmp(xcp__enums[i].name, name) == 0) {
            if (n)
                *n = xcp__enums[i].n;
            return xcp__enums[i].values;
        }
    }
    if (n)
        *n = 0;
    return NULL;
}

size_t xcp_model_message_count(void)
{
    return (size_t)xcp__nmessages;
}

const xcp_message_info *xcp_model_message(size_t i)
{
    return i < (size_t)xcp__nmessages ? &xcp__message_infos[i] : NULL;
}

const xcp_message_info *xcp_model_message_by_name(const char *wire)
{
    int id = xcp__message_lookup(wire);

    return id < 0 ? NULL : &xcp__message_infos[id];
}
