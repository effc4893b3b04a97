/*
 * event.*: event.from over the database generations (cost proportional to
 * the changes since the token, never to the database), event.inject, and
 * the legacy register/next queue. A waiting call parks on the engine's
 * condition and wakes at the commit that concerns it: no polling, no
 * batching delay.
 */
#include "engine.h"
#include "../pool/pool.h"

#include <inttypes.h>
#include <stdio.h>
#include <strings.h>

/* A subscription: one bit per class, plus single objects. */
struct xcp__subs {
    bool all;
    bool cls[XCP__NCLASSES];
    size_t nobjs;
    char (*objs)[XCP_REF_MAX];
};

struct xcp__evq {
    char session[XCP_REF_MAX];
    struct xcp__subs subs;
    uint64_t last_gen;
    struct xcp__evq *next;
};

static int parse_subs(const xcp_value *classes, struct xcp__subs *s)
{
    size_t i;

    memset(s, 0, sizeof(*s));
    for (i = 0; i < classes->u.arr.n; i++) {
        const char *item = classes->u.arr.items[i].u.s;
        const char *slash = strchr(item, '/');
        char name[64];
        int cls;
        if (!strcmp(item, "*")) {
            s->all = true;
            continue;
        }
        if (slash) {
            size_t len = (size_t)(slash - item);
            void *p;
            if (len == 0 || len >= sizeof(name) || !slash[1] ||
                strlen(slash + 1) >= XCP_REF_MAX || strchr(slash + 1, '/'))
                return XCP__ERR_EVENT_SUBSCRIPTION_PARSE_FAILURE(item);
            p = realloc(s->objs, (s->nobjs + 1) * sizeof(*s->objs));
            if (!p)
                return xcp__oom();
            s->objs = p;
            snprintf(s->objs[s->nobjs++], XCP_REF_MAX, "%s", slash + 1);
            continue;
        }
        if (!*item)
            return XCP__ERR_EVENT_SUBSCRIPTION_PARSE_FAILURE(item);
        cls = xcp_class_by_name(item);
        if (cls >= 0) /* unknown classes are ignored */
            s->cls[cls] = true;
    }
    return 0;
}

static bool subscribed(const struct xcp__subs *s, const xcp__obj *o)
{
    size_t i;

    if (xcp__classes[o->cls].flags & (XK_NOEVENTS | XK_NODB))
        return false;
    if (s->all || s->cls[o->cls])
        return true;
    for (i = 0; i < s->nobjs; i++)
        if (!strcmp(s->objs[i], o->ref))
            return true;
    return false;
}

static int event_record(const xcp__obj *o, const char *op, uint64_t id,
                        const char *timestamp, xcp_value *out)
{
    xcp_value v;
    char num[32];
    int rc;

    xcp_value_set_struct(out);
    snprintf(num, sizeof(num), "%" PRIu64, id);
    if ((rc = xcp_value_set_string(&v, num)) < 0 ||
        (rc = xcp_value_struct_add(out, "id", &v)) < 0 ||
        (rc = xcp_value_set_string(&v, timestamp)) < 0 ||
        (rc = xcp_value_struct_add(out, "timestamp", &v)) < 0 ||
        (rc = xcp_value_set_string(&v, xcp__classes[o->cls].lname)) < 0 ||
        (rc = xcp_value_struct_add(out, "class", &v)) < 0 ||
        (rc = xcp_value_set_string(&v, op)) < 0 ||
        (rc = xcp_value_struct_add(out, "operation", &v)) < 0 ||
        (rc = xcp_value_set_string(&v, o->ref)) < 0 ||
        (rc = xcp_value_struct_add(out, "ref", &v)) < 0)
        goto fail;
    if (!o->deleted) {
        if ((rc = xcp__obj_record(o, &v)) < 0 ||
            (rc = xcp_value_struct_add(out, "snapshot", &v)) < 0)
            goto fail;
    }
    return 0;
fail:
    xcp_value_dispose(&v);
    xcp_value_dispose(out);
    return rc;
}

/* The generation event.from may serve up to: on a pooled coordinator,
 * the last one all of whose replicated changes a quorum holds (a change
 * a failover could undo is never shown, docs/design-pool.md §3); else
 * the database's. */
static uint64_t visible(xcp__ctx *c)
{
    return xcp__pool_visible(c->e->pool_repl, xcp__db_generation(c->db));
}

/* Changes after gen up to limit matching s, ordered adds, mods, dels. */
static int collect(xcp__ctx *c, const struct xcp__subs *s, uint64_t gen,
                   uint64_t limit, bool legacy, uint64_t *next_id,
                   xcp_value *events)
{
    xcp__obj *o, *first = xcp__db_changes_after(c->db, gen), *end;
    size_t n = 0, k, pass;
    char ts[40];
    int rc;

    snprintf(ts, sizeof(ts), "%.0f.", xcp__now_real());
    /* generation order: the first object past the limit ends the list */
    for (end = first; end && end->gen <= limit; end = end->gnext)
        ;
    for (o = first; o != end; o = o->gnext)
        if (subscribed(s, o) && !(o->deleted && o->created_gen > gen))
            n++;
    if ((rc = xcp_value_set_array(events, n)) < 0)
        return rc;
    k = 0;
    for (pass = 0; pass < 3; pass++) {
        for (o = first; o != end; o = o->gnext) {
            const char *op;
            if (!subscribed(s, o) || (o->deleted && o->created_gen > gen))
                continue;
            op = o->deleted ? "del" : o->created_gen > gen ? "add" : "mod";
            if ((pass == 0 && strcmp(op, "add")) ||
                (pass == 1 && strcmp(op, "mod")) ||
                (pass == 2 && strcmp(op, "del")))
                continue;
            rc = event_record(o, op, legacy ? (*next_id)++ : o->gen,
                              legacy ? ts : "0.0", &events->u.arr.items[k]);
            if (rc < 0) {
                xcp_value_dispose(events);
                return rc;
            }
            k++;
        }
    }
    return 0;
}

static int parse_token(const char *tok, uint64_t *gen)
{
    char *end;

    *gen = 0;
    if (!*tok)
        return 0;
    *gen = strtoull(tok, &end, 10);
    if (end == tok || (*end && *end != ','))
        return XCP__ERR_EVENT_FROM_TOKEN_PARSE_FAILURE(tok);
    if (*end == ',') {
        const char *m = end + 1;
        strtoull(m, &end, 10);
        if (end == m || *end)
            return XCP__ERR_EVENT_FROM_TOKEN_PARSE_FAILURE(tok);
    }
    return 0;
}

static int ref_counts(xcp__ctx *c, xcp_value *out)
{
    int i, rc;

    xcp_value_set_struct(out);
    for (i = 0; i < xcp__nclasses; i++) {
        xcp_value v;
        if (xcp__classes[i].flags & XK_NODB)
            continue;
        xcp_value_set_int(&v, (int64_t)xcp__db_count(c->db, i));
        if ((rc = xcp_value_struct_add(out, xcp__classes[i].lname, &v)) < 0) {
            xcp_value_dispose(out);
            return rc;
        }
    }
    return 0;
}

static bool session_alive(xcp__ctx *c)
{
    return xcp__db_get_cls(c->db, C(session), c->session) != NULL;
}

/* Park the call's waiter on subscription s (copied). */
static int park(xcp__ctx *c, const struct xcp__subs *s)
{
    xcp__waiter *w = c->park;
    struct xcp__subs *copy = xcp__calloc(1, sizeof(*copy));

    if (!copy)
        return xcp__oom();
    *copy = *s;
    copy->objs = NULL;
    if (s->nobjs) {
        if (!(copy->objs = xcp__calloc(s->nobjs, sizeof(*s->objs)))) {
            free(copy);
            return xcp__oom();
        }
        memcpy(copy->objs, s->objs, s->nobjs * sizeof(*s->objs));
    }
    xcp__waiter_dispose(w);
    w->subs = copy;
    snprintf(w->session, sizeof(w->session), "%s", c->session);
    w->prev = NULL;
    w->next = c->e->waiters;
    if (w->next)
        w->next->prev = w;
    c->e->waiters = w;
    c->e->nwaiters++;
    w->parked = true;
    return XCP__PARKED;
}

void xcp__waiter_dispose(xcp__waiter *w)
{
    if (w->subs) {
        free(w->subs->objs);
        free(w->subs);
        w->subs = NULL;
    }
}

static void unlink_waiter(xcp__engine *e, xcp__waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        e->waiters = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->prev = w->next = NULL;
    w->parked = false;
    e->nwaiters--;
}

bool xcp__engine_unpark(xcp__engine *e, xcp__waiter *w)
{
    bool was;

    pthread_mutex_lock(&e->lock);
    was = w->parked;
    if (was)
        unlink_waiter(e, w);
    pthread_mutex_unlock(&e->lock);
    return was;
}

void xcp__events_committed(xcp__engine *e, uint64_t gen)
{
    xcp__obj *first = gen ? xcp__db_changes_after(e->db, gen - 1) : NULL;
    xcp__waiter *w, *next;
    xcp__obj *o;

    /* Cost: the commit's objects times the parked waiters. */
    for (w = e->waiters; w; w = next) {
        next = w->next;
        for (o = first; o; o = o->gnext) {
            if (subscribed(w->subs, o)) {
                unlink_waiter(e, w);
                w->wake(w);
                break;
            }
        }
    }
}

static int from(xcp__ctx *c)
{
    struct xcp__subs s;
    uint64_t gen, vis = 0;
    double timeout = xcp__arg_float(c, 2);
    int64_t deadline;
    xcp_value events, counts, tok;
    char buf[48];
    int rc;

    if ((rc = parse_token(xcp__arg_str(c, 1), &gen)) < 0)
        return rc;
    if ((rc = parse_subs(xcp__arg(c, 0), &s)) < 0)
        goto out;
    if (gen > 0 && gen < xcp__db_horizon(c->db)) {
        rc = XCP__ERR_EVENTS_LOST();
        goto out;
    }
    if (timeout < 0)
        timeout = 0;
    if (timeout > 86400)
        timeout = 86400;
    deadline = c->deadline_ms ? c->deadline_ms
                              : xcp__now_ms() + (int64_t)(timeout * 1000);
    for (;;) {
        vis = visible(c);
        if ((rc = collect(c, &s, gen, vis, false, NULL, &events)) < 0)
            goto out;
        if (events.u.arr.n > 0 || c->no_block || deadline <= xcp__now_ms())
            break;
        if (xcp__ctx_interrupted(c)) {
            xcp_value_dispose(&events);
            rc = xcp__interrupted();
            goto out;
        }
        if (c->park) {
            /* Nothing subscribed changed up to now: wait from here, so
             * the token the call runs again with stays recent. */
            char tok[48];
            xcp_value_dispose(&events);
            snprintf(tok, sizeof(tok), "%020" PRIu64 ",%020" PRIu64,
                     vis, (uint64_t)0);
            xcp_value_dispose(&c->args[1]);
            if ((rc = xcp_value_set_string(&c->args[1], tok)) < 0)
                goto out;
            rc = park(c, &s);
            goto out;
        }
        if (!xcp__ctx_wait(c, deadline))
            break;
        xcp_value_dispose(&events);
        if (!session_alive(c)) {
            rc = XCP__ERR_SESSION_INVALID(c->session);
            goto out;
        }
    }
    if ((rc = ref_counts(c, &counts)) < 0) {
        xcp_value_dispose(&events);
        goto out;
    }
    snprintf(buf, sizeof(buf), "%020" PRIu64 ",%020" PRIu64,
             vis, (uint64_t)0);
    xcp_value_set_struct(c->result);
    xcp_value_struct_add(c->result, "events", &events);
    xcp_value_struct_add(c->result, "valid_ref_counts", &counts);
    xcp_value_set_string(&tok, buf);
    rc = xcp_value_struct_add(c->result, "token", &tok);
out:
    free(s.objs);
    return rc;
}

static int inject(xcp__ctx *c)
{
    int cls = xcp_class_by_name(xcp__arg_str(c, 0));
    xcp__obj *o = cls >= 0 ? xcp__db_get_cls(c->db, cls,
                                             xcp__arg_str(c, 1)) : NULL;
    char buf[48];
    uint64_t g;
    int rc;

    if (!o)
        return XCP__ERR_HANDLE_INVALID(xcp__arg_str(c, 0),
                                       xcp__arg_str(c, 1));
    if ((rc = xcp__db_touch(c->db, o)) < 0 || (rc = xcp__ctx_commit(c)) < 0)
        return rc;
    g = xcp__db_generation(c->db);
    snprintf(buf, sizeof(buf), "%020" PRIu64 ",%020" PRIu64, g ? g - 1 : 0,
             (uint64_t)0);
    return xcp__ret_str(c, buf);
}

static int current_id(xcp__ctx *c)
{
    xcp__ret_int(c, (int64_t)c->e->evq_next_id);
    return 0;
}

static struct xcp__evq *find_q(xcp__ctx *c)
{
    struct xcp__evq *q;

    for (q = c->e->evqs; q; q = q->next)
        if (!strcmp(q->session, c->session))
            return q;
    return NULL;
}

/* event.register (add) and event.unregister: the session's legacy
 * subscription gains or loses the listed classes ("*": all of them). */
static int edit_subs(xcp__ctx *c, bool add)
{
    struct xcp__evq *q = find_q(c);
    struct xcp__subs s;
    size_t i;
    int rc = parse_subs(xcp__arg(c, 0), &s);

    free(s.objs); /* per-object legacy subscriptions are not supported */
    if (rc < 0)
        return rc;
    if (add && !q) {
        if (!(q = xcp__calloc(1, sizeof(*q))))
            return xcp__oom();
        snprintf(q->session, sizeof(q->session), "%s", c->session);
        q->last_gen = xcp__db_generation(c->db);
        q->next = c->e->evqs;
        c->e->evqs = q;
    }
    if (!q)
        return 0;
    if (add)
        q->subs.all |= s.all;
    else if (s.all)
        memset(&q->subs, 0, sizeof(q->subs));
    for (i = 0; i < XCP__NCLASSES; i++)
        if (s.cls[i])
            q->subs.cls[i] = add;
    return 0;
}

static int reg(xcp__ctx *c) { return edit_subs(c, true); }

static int unreg(xcp__ctx *c) { return edit_subs(c, false); }

static int next(xcp__ctx *c)
{
    struct xcp__evq *q = find_q(c);
    int rc;

    if (!q)
        return XCP__ERR_SESSION_NOT_REGISTERED(c->session);
    for (;;) {
        if (q->last_gen < xcp__db_horizon(c->db)) {
            q->last_gen = xcp__db_generation(c->db);
            return XCP__ERR_EVENTS_LOST();
        }
        uint64_t vis = visible(c);
        if ((rc = collect(c, &q->subs, q->last_gen, vis, true,
                          &c->e->evq_next_id, c->result)) < 0)
            return rc;
        if (vis > q->last_gen)
            q->last_gen = vis;
        if (c->result->u.arr.n > 0 || c->no_block)
            return 0;
        xcp_value_dispose(c->result);
        if (c->park)
            return park(c, &q->subs);
        if (xcp__ctx_interrupted(c))
            return xcp__interrupted();
        xcp__ctx_wait(c, -1);
        if (!session_alive(c) || !(q = find_q(c)))
            return XCP__ERR_SESSION_INVALID(c->session);
    }
}

void xcp__events_session_gone(xcp__engine *e, const char *session)
{
    struct xcp__evq **pp, *q;
    xcp__waiter *w, *wn;

    /* Its parked long polls run again and meet SESSION_INVALID. */
    for (w = e->waiters; w; w = wn) {
        wn = w->next;
        if (!strcmp(w->session, session)) {
            unlink_waiter(e, w);
            w->wake(w);
        }
    }

    for (pp = &e->evqs; (q = *pp); pp = &q->next) {
        if (!strcmp(q->session, session)) {
            *pp = q->next;
            free(q->subs.objs);
            free(q);
            break;
        }
    }
}

const struct xcp__impl xcp__impl_event[] = {
    {"event.from", from},
    {"event.inject", inject},
    {"event.get_current_id", current_id},
    {"event.register", reg},
    {"event.unregister", unreg},
    {"event.next", next},
    {NULL, NULL},
};
