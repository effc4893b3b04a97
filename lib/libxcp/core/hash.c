/*
 * A string-keyed open-addressing hash map (keys are borrowed from the
 * stored objects). The database indexes refs and uuids with it, so lookups
 * cost the same at 10 objects or 100,000.
 */
#include "core.h"

#define TOMB ((const char *)&xcp__hash)

uint32_t xcp__hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    while (*s) {
        h ^= (unsigned char)*s++;
        h *= 16777619u;
    }
    return h ? h : 1;
}

static struct xcp__hent *find(const xcp__hmap *m, const char *key,
                              uint32_t h)
{
    size_t mask, i;

    if (!m->cap)
        return NULL;
    mask = m->cap - 1;
    for (i = h & mask;; i = (i + 1) & mask) {
        struct xcp__hent *e = &m->ents[i];
        if (!e->key)
            return NULL;
        if (e->key != TOMB && e->hash == h && strcmp(e->key, key) == 0)
            return e;
    }
}

void *xcp__hmap_get(const xcp__hmap *m, const char *key)
{
    struct xcp__hent *e = find(m, key, xcp__hash(key));

    return e ? e->val : NULL;
}

static int rehash(xcp__hmap *m, size_t cap)
{
    struct xcp__hent *old = m->ents;
    size_t oldcap = m->cap, i;

    m->ents = calloc(cap, sizeof(*m->ents));
    if (!m->ents) {
        m->ents = old;
        return -1;
    }
    m->cap = cap;
    m->used = m->n;
    for (i = 0; i < oldcap; i++) {
        struct xcp__hent *e = &old[i];
        size_t j;
        if (!e->key || e->key == TOMB)
            continue;
        for (j = e->hash & (cap - 1); m->ents[j].key; j = (j + 1) & (cap - 1))
            ;
        m->ents[j] = *e;
    }
    free(old);
    return 0;
}

int xcp__hmap_put(xcp__hmap *m, const char *key, void *val)
{
    uint32_t h = xcp__hash(key);
    struct xcp__hent *e = find(m, key, h);
    size_t j;

    if (e) {
        e->key = key;
        e->val = val;
        return 0;
    }
    if ((m->used + 1) * 4 >= m->cap * 3) {
        size_t cap = m->cap ? m->cap : 16;
        while ((m->n + 1) * 2 >= cap)
            cap *= 2;
        if (rehash(m, cap) < 0)
            return -1;
    }
    for (j = h & (m->cap - 1);
         m->ents[j].key && m->ents[j].key != TOMB; j = (j + 1) & (m->cap - 1))
        ;
    if (!m->ents[j].key)
        m->used++;
    m->ents[j].key = key;
    m->ents[j].val = val;
    m->ents[j].hash = h;
    m->n++;
    return 0;
}

void *xcp__hmap_del(xcp__hmap *m, const char *key)
{
    struct xcp__hent *e = find(m, key, xcp__hash(key));
    void *v;

    if (!e)
        return NULL;
    v = e->val;
    e->key = TOMB;
    e->val = NULL;
    m->n--;
    return v;
}

void xcp__hmap_free(xcp__hmap *m)
{
    free(m->ents);
    memset(m, 0, sizeof(*m));
}
