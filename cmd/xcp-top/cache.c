/*
 * The records xcp-top shows (host, host_metrics, VM, VM_metrics), kept
 * current with event.from: the first refresh takes a token (event.from
 * on the pool alone: tokens are global generations, on XAPI as here),
 * then reads each class's records with only the fields shown (four
 * xcp_get_records_fields: at 1,000 VMs a tenth of the bytes of whole
 * records); the next refreshes ask event.from for what changed since the
 * token, so a refresh costs one request whose reply holds the changes,
 * whatever the number of VMs. Changes come as whole records, which
 * replace the partial ones (the same field names). Each
 * class is an array sorted by ref (lookups by bsearch); a refresh's events
 * are merged in O((n + k) log n). EVENTS_LOST (a token too old) starts
 * again from an empty token.
 */
#include "top.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const cls_names[TOP_NCLS] = {"host", "host_metrics", "VM",
                                                "VM_metrics"};

static const char *const host_fields[] = {"uuid", "name_label", "metrics",
                                          "enabled", "host_CPUs"};
static const char *const hm_fields[] = {"memory_total", "memory_free",
                                        "live"};
static const char *const vm_fields[] = {
    "uuid",          "name_label",        "power_state", "is_a_template",
    "is_a_snapshot", "is_control_domain", "resident_on", "metrics",
    "VCPUs_at_startup", "memory_static_max",
};
static const char *const vmm_fields[] = {"memory_actual", "VCPUs_number"};

static const struct {
    const char *const *names;
    size_t n;
} cls_fields[TOP_NCLS] = {
    {host_fields, sizeof(host_fields) / sizeof(host_fields[0])},
    {hm_fields, sizeof(hm_fields) / sizeof(hm_fields[0])},
    {vm_fields, sizeof(vm_fields) / sizeof(vm_fields[0])},
    {vmm_fields, sizeof(vmm_fields) / sizeof(vmm_fields[0])},
};

static int cmp_obj(const void *a, const void *b)
{
    return strcmp(((const top_obj *)a)->ref, ((const top_obj *)b)->ref);
}

static top_obj *find(const top_table *t, const char *ref)
{
    top_obj key;

    if (t->n == 0 || strlen(ref) >= sizeof(key.ref))
        return NULL;
    memcpy(key.ref, ref, strlen(ref) + 1);
    return bsearch(&key, t->v, t->n, sizeof(top_obj), cmp_obj);
}

const xcp_value *top_cache_get(const top_cache *c, int cls, const char *ref)
{
    top_obj *o;

    if (xcp_ref_is_null(ref))
        return NULL;
    o = find(&c->t[cls], ref);
    return o && !o->gone ? &o->snap : NULL;
}

static void table_clear(top_table *t)
{
    size_t i;

    for (i = 0; i < t->n; i++)
        xcp_value_dispose(&t->v[i].snap);
    free(t->v);
    memset(t, 0, sizeof(*t));
}

void top_cache_dispose(top_cache *c)
{
    int i;

    for (i = 0; i < TOP_NCLS; i++)
        table_clear(&c->t[i]);
    free(c->token);
    memset(c, 0, sizeof(*c));
}

static int class_of(const char *name)
{
    int i;

    for (i = 0; i < TOP_NCLS; i++)
        if (!strcasecmp(name, cls_names[i])) /* XAPI says "vm" */
            return i;
    return -1;
}

/* Make room for one more object at the end of t. */
static top_obj *append(top_table *t)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 64;
        top_obj *v = realloc(t->v, cap * sizeof(*v));

        if (!v)
            return NULL;
        t->v = v;
        t->cap = cap;
    }
    memset(&t->v[t->n], 0, sizeof(top_obj));
    return &t->v[t->n++];
}

/*
 * Merge one event into its table. Known objects are changed in place (a
 * deletion marks them gone); new ones are appended after the sorted part,
 * which *sorted keeps the length of, and merged by the caller.
 */
static int apply(top_cache *c, xcp_value *ev, size_t *sorted)
{
    const xcp_value *cv = xcp_value_struct_get(ev, "class");
    const xcp_value *ov = xcp_value_struct_get(ev, "operation");
    const xcp_value *rv = xcp_value_struct_get(ev, "ref");
    xcp_value *snap = (xcp_value *)xcp_value_struct_get(ev, "snapshot");
    top_table *t;
    top_obj *o, key;
    int cls;
    bool del;

    if (!cv || cv->kind != XCP_VAL_STRING || !ov || ov->kind != XCP_VAL_STRING
        || !rv || rv->kind != XCP_VAL_STRING
        || strlen(rv->u.s) >= sizeof(key.ref)
        || (cls = class_of(cv->u.s)) < 0)
        return 0; /* not one of ours */
    t = &c->t[cls];
    del = !strcmp(ov->u.s, "del");
    if (!del && !snap)
        return 0;
    memcpy(key.ref, rv->u.s, strlen(rv->u.s) + 1);
    o = sorted[cls] ? bsearch(&key, t->v, sorted[cls], sizeof(top_obj),
                              cmp_obj)
                    : NULL;
    if (!o) { /* maybe added earlier in this same reply */
        size_t i;

        for (i = sorted[cls]; i < t->n && !o; i++)
            if (!strcmp(t->v[i].ref, key.ref))
                o = &t->v[i];
    }
    if (!o) {
        if (del)
            return 0;
        if (!(o = append(t)))
            return -1;
        memcpy(o->ref, key.ref, sizeof(key.ref));
    }
    xcp_value_dispose(&o->snap);
    o->gone = del;
    if (!del) {
        o->snap = *snap; /* moved out of the reply */
        memset(snap, 0, sizeof(*snap));
    }
    return 0;
}

/* Drop the objects marked gone and sort what was appended. */
static void settle(top_table *t, size_t sorted)
{
    bool appended = t->n > sorted;
    size_t i, j = 0;

    for (i = 0; i < t->n; i++) {
        if (t->v[i].gone) {
            xcp_value_dispose(&t->v[i].snap);
            continue;
        }
        if (j != i)
            t->v[j] = t->v[i];
        j++;
    }
    t->n = j;
    if (appended)
        qsort(t->v, t->n, sizeof(top_obj), cmp_obj);
}

/* The token of now: event.from on the pool alone (one small record). */
static int take_token(xcp_session *s, char **token, unsigned long *calls)
{
    static const char *const pool[] = {"pool"};
    xcp_string_set classes = {1, (char **)pool};
    const xcp_value *tok;
    xcp_value res;
    int rc;

    memset(&res, 0, sizeof(res));
    (*calls)++;
    if ((rc = xcp_event_from(s, &res, &classes, "", 0.0)) < 0)
        return rc;
    tok = xcp_value_struct_get(&res, "token");
    *token = tok && tok->kind == XCP_VAL_STRING ? strdup(tok->u.s) : NULL;
    xcp_value_dispose(&res);
    return *token ? 0 : -1;
}

/* The first refresh: a token, then each class's records (fields shown). */
static int prime(xcp_session *s, top_cache *c, unsigned long *calls)
{
    char *token = NULL;
    xcp_value res;
    size_t i;
    int cls, rc;

    if ((rc = take_token(s, &token, calls)) < 0)
        return rc;
    for (cls = 0; cls < TOP_NCLS; cls++) {
        top_table *t = &c->t[cls];

        memset(&res, 0, sizeof(res));
        (*calls)++;
        rc = xcp_get_records_fields(s, &res, cls_names[cls], NULL,
                                    cls_fields[cls].n, cls_fields[cls].names);
        if (rc == 0 && res.kind != XCP_VAL_STRUCT)
            rc = -1;
        for (i = 0; rc == 0 && i < res.u.st.n; i++) {
            top_obj *o;

            if (strlen(res.u.st.keys[i]) >= sizeof(o->ref))
                continue;
            if (!(o = append(t))) {
                rc = -1;
                break;
            }
            memcpy(o->ref, res.u.st.keys[i], strlen(res.u.st.keys[i]) + 1);
            o->snap = res.u.st.vals[i]; /* moved out of the reply */
            memset(&res.u.st.vals[i], 0, sizeof(res.u.st.vals[i]));
        }
        xcp_value_dispose(&res);
        if (rc < 0) {
            free(token);
            top_cache_dispose(c);
            return rc;
        }
        qsort(t->v, t->n, sizeof(top_obj), cmp_obj);
    }
    c->token = token;
    c->events = 0;
    return 0;
}

int top_cache_merge(top_cache *c, xcp_value *events)
{
    size_t sorted[TOP_NCLS], i;
    int rc = 0;

    if (events->kind != XCP_VAL_ARRAY)
        return -1;
    for (i = 0; i < TOP_NCLS; i++)
        sorted[i] = c->t[i].n;
    for (i = 0; i < events->u.arr.n && rc == 0; i++)
        if (events->u.arr.items[i].kind == XCP_VAL_STRUCT)
            rc = apply(c, &events->u.arr.items[i], sorted);
    for (i = 0; i < TOP_NCLS; i++)
        settle(&c->t[i], sorted[i]);
    c->events = events->u.arr.n;
    return rc;
}

static int from(xcp_session *s, top_cache *c, unsigned long *calls)
{
    xcp_string_set classes = {TOP_NCLS, (char **)cls_names};
    const xcp_value *tok;
    xcp_value res, *evs;
    char *token;
    int rc;

    if (!c->token)
        return prime(s, c, calls);
    memset(&res, 0, sizeof(res));
    (*calls)++;
    rc = xcp_event_from(s, &res, &classes, c->token, 0.0);
    if (rc < 0)
        return rc;
    evs = (xcp_value *)xcp_value_struct_get(&res, "events");
    tok = xcp_value_struct_get(&res, "token");
    if (!evs || evs->kind != XCP_VAL_ARRAY || !tok
        || tok->kind != XCP_VAL_STRING || !(token = strdup(tok->u.s))) {
        xcp_value_dispose(&res);
        return -1;
    }
    rc = top_cache_merge(c, evs);
    xcp_value_dispose(&res);
    if (rc < 0) {
        free(token);
        return rc;
    }
    free(c->token);
    c->token = token;
    return 0;
}

int top_cache_update(xcp_session *s, top_cache *c, unsigned long *calls)
{
    const xcp_error *e;
    int rc = from(s, c, calls);

    if (rc < 0 && c->token && (e = xcp_error_last()) && e->name
        && !strcmp(e->name, "EVENTS_LOST")) {
        /* Too long since the last refresh: everything again. */
        top_cache_dispose(c);
        rc = from(s, c, calls);
    }
    return rc;
}
