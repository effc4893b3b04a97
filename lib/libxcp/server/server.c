/*
 * The XenAPI server: from an HTTP body to a reply, for a transport that
 * knows nothing of XenAPI (xcpd).
 *
 * A request becomes a "pend" that lives until its reply is sent. Most run
 * to completion on the transport's thread. A long poll that finds nothing
 * (event.from, event.next) parks its pend on the engine (xcp__waiter):
 * no thread waits for it. A commit that concerns it, or its session's
 * end, wakes it; its deadline (a heap watched by one timer thread)
 * expires it; either way it goes on the queue of the server's call
 * threads, which run the call again and reply (in parallel: a change that
 * wakes a thousand polls is encoded on every core). Explicit calls, which
 * may take long, use the same threads. Failed logins wait on the heap
 * before their reply, so the 5 s delay holds no thread either.
 *
 * One owner at a time: a pend is being run (RUNNING), parked on the
 * engine and in the heap (PARKED), queued to run again (READY), being
 * expired (EXPIRING) or waiting to send a delayed reply (DELAYED); the
 * server mutex guards the state. Lock order: engine lock, then server
 * mutex (wake() runs under the engine lock); never the other way.
 *
 * Sessions: the server remembers the sessions it opened, in two LRU
 * lists (per group: originator, or user; and global by last activity),
 * so the per-group limit and the inactivity timeout cost O(1) per call
 * and O(expired) per collection, never a scan of every session.
 */
#include "server.h"
#include "../rpc/rpc.h"

#include <inttypes.h>
#include <stdio.h>
#include <time.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

/* A reply at least this big leaves freed memory worth giving back. */
#define TRIM_THRESHOLD ((size_t)1 << 20)

enum pstate { P_RUNNING, P_PARKED, P_READY, P_EXPIRING, P_DELAYED };

struct pend {
    xcp__waiter w;            /* first member: wake() finds the pend */
    xcp_server *srv;
    enum pstate state;
    bool woken;               /* woken while RUNNING: run again */
    xcp_server_protocol proto;
    int jver;                 /* JSON-RPC version */
    xcp_value id;             /* JSON-RPC id */
    int mid;
    bool async;
    bool stream_ok;           /* the transport takes streamed replies */
    int *fields;              /* get_all_records_where's field list */
    size_t nfields;
    char session[XCP_REF_MAX];
    xcp_value *args;
    size_t nargs, cap;
    int64_t deadline;         /* monotonic ms; INT64_MAX: none */
    size_t hidx;              /* heap position, or NOHEAP */
    struct pend *rnext;       /* call threads' queue */
    xcp_server_done_fn done;
    void *arg;
    char *body;               /* DELAYED: the reply */
    size_t len;
};

#define NOHEAP ((size_t)-1)

/* A session is on two lists, least recently used first: its group's
 * (link[ON_GROUP]) and the server's (link[ON_ALL]). */
enum { ON_GROUP, ON_ALL };
struct sess;
struct sess_link {
    struct sess *prev, *next;
};
struct sess_list {
    struct sess *head, *tail;
};

struct group;
struct sess {
    char ref[XCP_REF_MAX];
    struct group *g;
    struct sess_link link[2];
    int64_t last_ms;
    int64_t db_touched_ms;
    bool member_ok;           /* served on a pool member (not HOST_IS_SLAVE) */
};

struct group {
    struct group *all;        /* every group, for freeing */
    char *key;
    size_t n, limit;
    struct sess_list lru; /* ON_GROUP */
};

struct xcp_server {
    xcp__engine *e;
    xcp__auth *auth;
    unsigned timeout_s, limit, fail_delay_ms, gc_ms;
    pthread_mutex_t mu;
    pthread_cond_t cond;      /* timer thread: work or a nearer deadline */
    pthread_cond_t drained;   /* npend reached 0 */
    pthread_t timer;
    bool timer_running, stopping, quit, closed_engine;
    struct pend **heap;
    size_t hn, hcap;
    /* call threads: explicit messages queue here */
    pthread_t *workers;
    unsigned nworkers;
    struct pend *work, *work_tail;
    pthread_cond_t work_cond;
    size_t npend;             /* pends not yet replied */
    size_t nstreams;          /* streamed replies not yet closed */
    xcp__hmap sessions, groups;
    struct group *all_groups;
    xcp_value methods;        /* system.listMethods, built once */
    struct sess_list lru;     /* every session, ON_ALL */
    int64_t next_gc;
    int mid_login, mid_slave_login, mid_logout, mid_local_logout,
        mid_from, mid_next, mid_pool_login, mid_pool_local_login,
        mid_member_commit;
};

/* Append p to a queue (server mutex held). */
static void queue_push(struct pend **head, struct pend **tail,
                       struct pend *p)
{
    p->rnext = NULL;
    if (*tail)
        (*tail)->rnext = p;
    else
        *head = p;
    *tail = p;
}

/* ---- deadline heap (server mutex held) --------------------------------- */

static void heap_swap(xcp_server *s, size_t a, size_t b)
{
    struct pend *t = s->heap[a];

    s->heap[a] = s->heap[b];
    s->heap[b] = t;
    s->heap[a]->hidx = a;
    s->heap[b]->hidx = b;
}

static void heap_up(xcp_server *s, size_t i)
{
    while (i > 0 && s->heap[(i - 1) / 2]->deadline > s->heap[i]->deadline) {
        heap_swap(s, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(xcp_server *s, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < s->hn && s->heap[l]->deadline < s->heap[m]->deadline)
            m = l;
        if (r < s->hn && s->heap[r]->deadline < s->heap[m]->deadline)
            m = r;
        if (m == i)
            return;
        heap_swap(s, i, m);
        i = m;
    }
}

static int heap_push(xcp_server *s, struct pend *p)
{
    if (s->hn == s->hcap) {
        size_t cap = s->hcap ? s->hcap * 2 : 64;
        void *h = realloc(s->heap, cap * sizeof(*s->heap));
        if (!h)
            return -1;
        s->heap = h;
        s->hcap = cap;
    }
    s->heap[s->hn] = p;
    p->hidx = s->hn++;
    heap_up(s, p->hidx);
    return 0;
}

static void heap_remove(xcp_server *s, struct pend *p)
{
    size_t i = p->hidx;

    if (i == NOHEAP)
        return;
    p->hidx = NOHEAP;
    if (i == --s->hn)
        return;
    s->heap[i] = s->heap[s->hn];
    s->heap[i]->hidx = i;
    heap_down(s, i);
    heap_up(s, i);
}

/* ---- replies ----------------------------------------------------------- */

static void pend_free(struct pend *p)
{
    size_t i;

    for (i = 0; i < p->cap; i++)
        xcp_value_dispose(&p->args[i]);
    free(p->args);
    xcp_value_dispose(&p->id);
    xcp__waiter_dispose(&p->w);
    free(p->body);
    free(p->fields);
    free(p);
}

static void finish(struct pend *p)
{
    xcp_server *s = p->srv;

    pend_free(p);
    pthread_mutex_lock(&s->mu);
    if (--s->npend == 0)
        pthread_cond_broadcast(&s->drained);
    pthread_mutex_unlock(&s->mu);
}

static void send_raw(xcp_server_done_fn done, void *arg, int status,
                     const char *ctype, const char *body, size_t len)
{
    xcp_server_reply r = {status, ctype, body, len, NULL};

    done(arg, &r);
}

static const char *ctype_of(const struct pend *p)
{
    return p->proto == XCP_SERVER_JSONRPC ? "application/json" : "text/xml";
}

/* Encode the thread's last error as a Failure envelope. */
static void encode_failure(const struct pend *p, xcp__buf *b)
{
    const xcp_error *e = xcp_error_last();
    const char *code = e ? e->name : "INTERNAL_ERROR";
    const char *const *params = e ? e->params : NULL;
    size_t n = e ? e->nparams : 0;
    static const char *const oom[] = {"out of memory"};

    if (!e) {
        params = oom;
        n = 1;
    }
    if (p->proto == XCP_SERVER_JSONRPC)
        xcp__jsonrpc_encode_failure(b, p->jver, &p->id, code, n, params);
    else
        xcp__xmlrpc_encode_failure(b, code, n, params);
}

/* Encode the reply to p (rc < 0: the thread's error). */
static void encode(const struct pend *p, int rc, const xcp_value *result,
                   xcp__buf *b)
{
    if (rc < 0) {
        encode_failure(p, b);
    } else if (p->proto == XCP_SERVER_JSONRPC) {
        xcp__jsonrpc_encode_success(b, p->jver, &p->id, result, 0);
    } else {
        unsigned q = (!p->async && p->mid == p->srv->mid_from)
                         ? XCP__RPC_I4_REFCOUNTS : 0;
        xcp__xmlrpc_encode_success(b, result, q);
    }
}

static void reply(struct pend *p, int rc, const xcp_value *result)
{
    xcp__buf b = {0};
    size_t size;

    encode(p, rc, result, &b);
    if (b.oom)
        send_raw(p->done, p->arg, 500, "text/html", "", 0);
    else
        send_raw(p->done, p->arg, 200, ctype_of(p), b.data, b.len);
    size = b.cap;
    xcp__buf_free(&b);
    finish(p);
    xcp__server_trim(size);
}

static void reply_error(struct pend *p)
{
    reply(p, -1, NULL);
}

/* ---- sessions ---------------------------------------------------------- */

static void list_unlink(struct sess_list *l, struct sess *x, int on)
{
    struct sess_link *k = &x->link[on];

    if (k->prev)
        k->prev->link[on].next = k->next;
    else
        l->head = k->next;
    if (k->next)
        k->next->link[on].prev = k->prev;
    else
        l->tail = k->prev;
    k->prev = k->next = NULL;
}

static void list_append(struct sess_list *l, struct sess *x, int on)
{
    struct sess_link *k = &x->link[on];

    k->prev = l->tail;
    k->next = NULL;
    if (l->tail)
        l->tail->link[on].next = x;
    else
        l->head = x;
    l->tail = x;
}

static void sess_unlink(xcp_server *s, struct sess *x)
{
    list_unlink(&x->g->lru, x, ON_GROUP);
    list_unlink(&s->lru, x, ON_ALL);
}

static void sess_append(xcp_server *s, struct sess *x)
{
    list_append(&x->g->lru, x, ON_GROUP);
    list_append(&s->lru, x, ON_ALL);
}

static void sess_drop(xcp_server *s, struct sess *x)
{
    sess_unlink(s, x);
    xcp__hmap_del(&s->sessions, x->ref);
    x->g->n--;
    free(x);
}

/* Log a session out in the engine (its long polls wake and fail). */
static void engine_logout(xcp_server *s, const char *ref)
{
    xcp_value res;
    xcp__saved_error saved;

    xcp__error_save(&saved);
    if (xcp__engine_call(s->e, ref, s->mid_logout, false, 0, NULL, &res) == 0)
        xcp_value_dispose(&res);
    xcp__error_restore(&saved);
}

/* Remember a new session; log out the least recently used of its group
 * beyond the limit. */
static int sess_add(xcp_server *s, const char *ref, const char *user,
                    const char *originator, bool member_ok)
{
    char *key = *originator ? xcp__printf("o:%s", originator)
                : !strcmp(user, "root") ? xcp__strdup("r:")
                                        : xcp__printf("u:%s", user);
    struct sess *x = xcp__calloc(1, sizeof(*x));
    char (*victims)[XCP_REF_MAX] = NULL;
    size_t nv = 0, i;
    struct group *g;

    if (!key || !x) {
        free(key);
        free(x);
        return xcp__oom();
    }
    snprintf(x->ref, sizeof(x->ref), "%s", ref);
    x->last_ms = x->db_touched_ms = xcp__now_ms();
    x->member_ok = member_ok;
    pthread_mutex_lock(&s->mu);
    if (!(g = xcp__hmap_get(&s->groups, key))) {
        if (!(g = xcp__calloc(1, sizeof(*g))) ||
            xcp__hmap_put(&s->groups, key, g) < 0) {
            pthread_mutex_unlock(&s->mu);
            free(g);
            free(key);
            free(x);
            return xcp__oom();
        }
        g->key = key;
        key = NULL;
        g->all = s->all_groups;
        s->all_groups = g;
        /* XAPI keeps fewer root sessions opened without an originator. */
        g->limit = g->key[0] == 'r' ? s->limit * 4 / 5 : s->limit;
        if (!g->limit)
            g->limit = 1;
    }
    free(key);
    x->g = g;
    if (xcp__hmap_put(&s->sessions, x->ref, x) < 0) {
        pthread_mutex_unlock(&s->mu);
        free(x);
        return xcp__oom();
    }
    g->n++;
    sess_append(s, x);
    if (g->n > g->limit &&
        (victims = xcp__calloc(g->n - g->limit, sizeof(*victims)))) {
        while (g->n > g->limit) {
            struct sess *old = g->lru.head;
            snprintf(victims[nv++], XCP_REF_MAX, "%s", old->ref);
            sess_drop(s, old);
        }
    }
    pthread_mutex_unlock(&s->mu);
    for (i = 0; i < nv; i++)
        engine_logout(s, victims[i]);
    free(victims);
    return 0;
}

/* A call on session ref: bump its activity (and, at most every 10 min,
 * the record's last_active, as XAPI does). */
static void sess_touch(xcp_server *s, const char *ref)
{
    struct sess *x;
    bool db = false;
    int64_t now = xcp__now_ms();

    pthread_mutex_lock(&s->mu);
    if ((x = xcp__hmap_get(&s->sessions, ref))) {
        x->last_ms = now;
        sess_unlink(s, x);
        sess_append(s, x);
        if (now - x->db_touched_ms >= 600000) {
            x->db_touched_ms = now;
            db = true;
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (db)
        xcp__session_touch(s->e, ref);
}

/* Whether a pool member serves calls on session ref: those opened with
 * slave_local_login_with_password, slave_login, slave_local_login or by
 * local root (XAPI's local and pool sessions); others answer
 * HOST_IS_SLAVE, as XAPI's session_check. */
static bool sess_member_ok(xcp_server *s, const char *ref)
{
    struct sess *x;
    bool ok;

    pthread_mutex_lock(&s->mu);
    ok = (x = xcp__hmap_get(&s->sessions, ref)) && x->member_ok;
    pthread_mutex_unlock(&s->mu);
    return ok;
}

static void sess_forget(xcp_server *s, const char *ref)
{
    struct sess *x;

    pthread_mutex_lock(&s->mu);
    if ((x = xcp__hmap_get(&s->sessions, ref)))
        sess_drop(s, x);
    pthread_mutex_unlock(&s->mu);
}

/* Log out sessions idle for longer than the timeout (mutex held on entry
 * and exit; dropped around the engine calls). */
static void sess_gc(xcp_server *s)
{
    int64_t limit = xcp__now_ms() - (int64_t)s->timeout_s * 1000;

    while (s->lru.head && s->lru.head->last_ms <= limit) {
        char ref[XCP_REF_MAX];
        snprintf(ref, sizeof(ref), "%s", s->lru.head->ref);
        sess_drop(s, s->lru.head);
        pthread_mutex_unlock(&s->mu);
        xcp__log(XCP__LOG_INFO, "session %.20s... expired", ref);
        engine_logout(s, ref);
        pthread_mutex_lock(&s->mu);
    }
}

/* ---- running calls ----------------------------------------------------- */

static void wake(xcp__waiter *w)
{
    struct pend *p = (struct pend *)w;
    xcp_server *s = p->srv;

    pthread_mutex_lock(&s->mu);
    if (p->state == P_RUNNING) {
        p->woken = true;
    } else {
        heap_remove(s, p);
        p->state = P_READY;
        queue_push(&s->work, &s->work_tail, p);
        pthread_cond_signal(&s->work_cond);
    }
    pthread_mutex_unlock(&s->mu);
}

/* Run p's call (again); reply, or park it. */
static void run(struct pend *p)
{
    xcp_server *s = p->srv;
    xcp_value result;
    xcp__call_opts o;
    int rc;

    for (;;) {
        pthread_mutex_lock(&s->mu);
        p->state = P_RUNNING;
        p->woken = false;
        memset(&o, 0, sizeof(o));
        o.no_block = s->stopping;
        pthread_mutex_unlock(&s->mu);
        if (!p->async && (p->mid == s->mid_from || p->mid == s->mid_next)) {
            o.park = &p->w;
            o.deadline_ms = p->mid == s->mid_from ? p->deadline : 0;
        }
        rc = xcp__engine_call_opts(s->e, p->session, p->mid, p->async,
                                   p->nargs, p->args, &result, &o);
        if (rc != XCP__PARKED)
            break;
        pthread_mutex_lock(&s->mu);
        if (p->woken) { /* a commit came before we got here */
            pthread_mutex_unlock(&s->mu);
            continue;
        }
        p->state = P_PARKED;
        if (heap_push(s, p) < 0) {
            pthread_mutex_unlock(&s->mu);
            if (xcp__engine_unpark(s->e, &p->w)) {
                xcp__oom();
                reply_error(p);
            } /* else: woken meanwhile, it is queued to run again */
            return;
        }
        pthread_cond_signal(&s->cond);
        pthread_mutex_unlock(&s->mu);
        return;
    }
    if (rc == 0) {
        if (p->mid == s->mid_logout || p->mid == s->mid_local_logout)
            sess_forget(s, p->session);
        if (p->fields && (rc = xcp__records_project(&result, p->fields,
                                                    p->nfields)) < 0)
            xcp_value_dispose(&result);
    }
    reply(p, rc, &result);
    xcp_value_dispose(&result);
}

static void *timer_main(void *arg)
{
    xcp_server *s = arg;

    pthread_mutex_lock(&s->mu);
    while (!s->quit) {
        int64_t now = xcp__now_ms(), until;
        struct pend *p;

        if (s->hn && (s->stopping || s->heap[0]->deadline <= now)) {
            p = s->heap[0];
            heap_remove(s, p);
            if (p->state == P_DELAYED) {
                pthread_mutex_unlock(&s->mu);
                send_raw(p->done, p->arg, 200, ctype_of(p), p->body, p->len);
                finish(p);
            } else {
                p->state = P_EXPIRING;
                pthread_mutex_unlock(&s->mu);
                /* Not parked any more: wake() has queued it. */
                if (xcp__engine_unpark(s->e, &p->w)) {
                    pthread_mutex_lock(&s->mu);
                    p->state = P_READY;
                    queue_push(&s->work, &s->work_tail, p);
                    pthread_cond_signal(&s->work_cond);
                    continue;
                }
            }
            pthread_mutex_lock(&s->mu);
            continue;
        }
        if (now >= s->next_gc) {
            s->next_gc = now + s->gc_ms;
            sess_gc(s);
            /* Completed tasks time out even when no call comes (the
             * engine's lock is taken before s->mu, never after). */
            pthread_mutex_unlock(&s->mu);
            xcp__engine_gc(s->e);
            pthread_mutex_lock(&s->mu);
            continue;
        }
        until = s->next_gc;
        if (s->hn && s->heap[0]->deadline < until)
            until = s->heap[0]->deadline;
        {
            struct timespec ts;
            int64_t d = until - now;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += d / 1000;
            ts.tv_nsec += (d % 1000) * 1000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&s->cond, &s->mu, &ts);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Call threads: explicit synchronous messages (VM.start, VDI.copy...)
 * may take seconds; they run here so the transport's threads keep
 * serving everyone else. */
static void *worker_main(void *arg)
{
    xcp_server *s = arg;
    struct pend *p;

    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->work && !s->quit)
            pthread_cond_wait(&s->work_cond, &s->mu);
        if (!s->work)
            break;
        p = s->work;
        s->work = p->rnext;
        if (!s->work)
            s->work_tail = NULL;
        pthread_mutex_unlock(&s->mu);
        run(p);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void enqueue_work(xcp_server *s, struct pend *p)
{
    pthread_mutex_lock(&s->mu);
    queue_push(&s->work, &s->work_tail, p);
    pthread_cond_signal(&s->work_cond);
    pthread_mutex_unlock(&s->mu);
}

/* ---- dispatch ---------------------------------------------------------- */

/* "VM.get_record", or the "VM_get_record" spelling. */
static int lookup(const char *name)
{
    int mid = xcp__message_lookup(name);
    char buf[256];
    size_t i, n = strlen(name);

    if (mid >= 0 || strchr(name, '.') || n >= sizeof(buf))
        return mid;
    for (i = 1; i + 1 < n; i++) {
        if (name[i] != '_')
            continue;
        memcpy(buf, name, n + 1);
        buf[i] = '.';
        if ((mid = xcp__message_lookup(buf)) >= 0)
            return mid;
    }
    return -1;
}

static int list_methods(xcp_value *out)
{
    size_t i, k = 0;
    int rc;

    if ((rc = xcp_value_set_array(out, XCP__NMESSAGES + 1)) < 0)
        return rc;
    for (i = 0; i < XCP__NMESSAGES; i++)
        if ((rc = xcp_value_set_string(&out->u.arr.items[k++],
                                       xcp__messages[i].wire)) < 0)
            goto fail;
    if ((rc = xcp_value_set_string(&out->u.arr.items[k++],
                                   "system.listMethods")) < 0)
        goto fail;
    return 0;
fail:
    xcp_value_dispose(out);
    return rc;
}

static void count_mismatch(const char *wire, unsigned expected, size_t got)
{
    char e[16], g[24];

    snprintf(e, sizeof(e), "%u", expected);
    snprintf(g, sizeof(g), "%zu", got);
    XCP__ERR_MESSAGE_PARAMETER_COUNT_MISMATCH(wire, e, g);
}

/* Authenticate and open a session; *authed tells whether it did. */
static void login(struct pend *p, const xcp_server_peer *peer, bool *authed)
{
    xcp_server *s = p->srv;
    bool pool_login = p->mid == s->mid_pool_login ||
                      p->mid == s->mid_pool_local_login;
    const char *user = p->mid == s->mid_pool_local_login ? "localhost"
                                                         : p->args[0].u.s;
    const char *pw = pool_login ? "" : p->args[1].u.s;
    const char *orig = p->mid == s->mid_login && p->nargs > 3
                           ? p->args[3].u.s : "";
    bool local_root = peer && peer->local_root;
    char coord[256];
    xcp_value result;
    int rc;

    /* A member sends clients to its coordinator before it checks their
     * password, as XAPI's login_with_password (local root excepted). */
    if (p->mid == s->mid_login && !local_root &&
        xcp__engine_pool_member(s->e, coord, sizeof(coord))) {
        XCP__ERR_HOST_IS_SLAVE(coord);
        reply_error(p);
        return;
    }
    /* Local root on the unix socket needs no password (as XAPI); the
     * pool logins are checked by the engine, with the pool secret. */
    if (!local_root && !pool_login &&
        (rc = xcp__auth_check(s->auth, user, pw)) < 0) {
        xcp__buf b = {0};
        xcp__log(XCP__LOG_INFO, "login failed for %s from %s", user,
                 peer && peer->address ? peer->address : "?");
        encode(p, rc, NULL, &b);
        if (b.oom) {
            xcp__buf_free(&b);
            reply_error(p);
            return;
        }
        p->body = b.data;
        p->len = b.len;
        pthread_mutex_lock(&s->mu);
        p->state = P_DELAYED;
        p->deadline = xcp__now_ms() + s->fail_delay_ms;
        if (s->stopping || heap_push(s, p) < 0) {
            pthread_mutex_unlock(&s->mu);
            send_raw(p->done, p->arg, 200, ctype_of(p), p->body, p->len);
            finish(p);
            return;
        }
        pthread_cond_signal(&s->cond);
        pthread_mutex_unlock(&s->mu);
        return;
    }
    rc = xcp__engine_call(s->e, NULL, p->mid, false, p->nargs, p->args,
                          &result);
    if (rc == 0 &&
        (rc = sess_add(s, result.u.s, user, orig,
                       local_root || pool_login ||
                           p->mid == s->mid_slave_login)) < 0) {
        xcp__saved_error saved;
        xcp__error_save(&saved);
        engine_logout(s, result.u.s);
        xcp__error_restore(&saved);
        xcp_value_dispose(&result);
    }
    *authed = rc == 0;
    reply(p, rc, &result);
    xcp_value_dispose(&result);
}

/* get_all_records(_where) as a stream: read the refs now (errors are
 * ordinary replies), the records as the transport reads the body. */
static void stream_reply(struct pend *p, const struct xcp__message *m)
{
    xcp_server *s = p->srv;
    xcp_server_stream *st = NULL;
    char wire[128];
    xcp_value refs;
    int mid, rc;

    snprintf(wire, sizeof(wire), "%s.get_all%s", xcp__classes[m->cls].name,
             m->kind == XM_GET_ALL_RECORDS_WHERE ? "_where" : "");
    if ((mid = xcp__message_lookup(wire)) < 0) {
        xcp__internal("no message %s", wire);
        reply_error(p);
        return;
    }
    if ((rc = xcp__engine_call(s->e, p->session, mid, false, p->nargs,
                               p->args, &refs)) < 0) {
        reply_error(p);
        return;
    }
    rc = xcp__stream_open(&st, s, p->session, m->cls, &refs, p->proto,
                          p->jver, &p->id, p->fields, p->nfields);
    xcp_value_dispose(&refs);
    if (rc < 0) {
        reply_error(p);
        return;
    }
    pthread_mutex_lock(&s->mu);
    s->nstreams++;
    pthread_mutex_unlock(&s->mu);
    {
        xcp_server_reply r = {200, ctype_of(p), NULL, 0, st};
        p->done(p->arg, &r);
    }
    finish(p);
}

/* Run or park one decoded request; *authed is set when it comes from a
 * live session or logs one in. */
static void dispatch(struct pend *p, const char *method, xcp_value *params,
                     const xcp_server_peer *peer, bool *authed)
{
    xcp_server *s = p->srv;
    const struct xcp__message *m;
    const char *name = method;
    size_t n = params->u.arr.n, skip, i;
    int rc;

    if (!strcmp(method, "system.listMethods")) {
        xcp__buf b = {0};
        if (p->proto == XCP_SERVER_JSONRPC)
            xcp__jsonrpc_encode_success(&b, p->jver, &p->id, &s->methods, 0);
        else
            xcp__xmlrpc_encode_bare(&b, &s->methods);
        send_raw(p->done, p->arg, b.oom ? 500 : 200,
                 b.oom ? "text/html" : ctype_of(p), b.data, b.len);
        xcp__buf_free(&b);
        finish(p);
        return;
    }
    if (!strncmp(method, "system.isAlive:", 15)) {
        xcp_value none = {0};
        reply(p, 0, n ? &params->u.arr.items[0] : &none);
        return;
    }
    if (!strncmp(name, "Async.", 6)) {
        p->async = true;
        name += 6;
    }
    p->mid = lookup(name);
    if (p->mid < 0) {
        /* With arguments, XAPI checks the first as a session first. */
        if (n >= 1 && params->u.arr.items[0].kind == XCP_VAL_STRING &&
            !xcp__engine_session_valid(s->e, params->u.arr.items[0].u.s))
            XCP__ERR_SESSION_INVALID(params->u.arr.items[0].u.s);
        else
            XCP__ERR_MESSAGE_METHOD_UNKNOWN(name);
        reply_error(p);
        return;
    }
    m = &xcp__messages[p->mid];
    skip = (m->flags & XMF_NOSESSION) ? 0 : 1;
    if (n < skip) {
        count_mismatch(m->wire, m->nrequired, 0);
        reply_error(p);
        return;
    }
    if (skip) {
        const xcp_value *sv = &params->u.arr.items[0];
        if (sv->kind != XCP_VAL_STRING) {
            XCP__ERR_SESSION_INVALID("");
            reply_error(p);
            return;
        }
        snprintf(p->session, sizeof(p->session), "%s", sv->u.s);
    }
    /* libxcp's extension: get_all_records_where(session, expr, fields)
     * gives only those fields of each record (xcp_get_records_fields).
     * Not for Async, whose result is a task. */
    if (m->kind == XM_GET_ALL_RECORDS_WHERE && !p->async && n == skip + 2) {
        if (xcp__fields_parse(m->cls, &params->u.arr.items[n - 1],
                              &p->fields, &p->nfields) < 0) {
            reply_error(p);
            return;
        }
        n--;
    }
    p->nargs = n - skip;
    p->cap = p->nargs > m->nparams ? p->nargs : m->nparams;
    if (p->cap && !(p->args = xcp__calloc(p->cap, sizeof(xcp_value)))) {
        xcp__oom();
        reply_error(p);
        return;
    }
    for (i = skip; i < n; i++)
        xcp__value_move(&p->args[i - skip], &params->u.arr.items[i]);
    if ((rc = xcp__prepare_args(m, p->args, &p->nargs)) < 0) {
        reply_error(p);
        return;
    }
    if (p->mid == s->mid_login || p->mid == s->mid_slave_login ||
        p->mid == s->mid_pool_login || p->mid == s->mid_pool_local_login) {
        login(p, peer, authed);
        return;
    }
    if (skip) {
        char coord[256];
        sess_touch(s, p->session);
        *authed = xcp__engine_session_valid(s->e, p->session);
        if (*authed && !sess_member_ok(s, p->session) &&
            xcp__engine_pool_member(s->e, coord, sizeof(coord))) {
            XCP__ERR_HOST_IS_SLAVE(coord);
            reply_error(p);
            return;
        }
    }
    p->deadline = INT64_MAX;
    if (p->mid == s->mid_from && !p->async) {
        double t = p->args[2].kind == XCP_VAL_FLOAT ? p->args[2].u.f : 0;
        if (!(t > 0)) /* also NaN */
            t = 0;
        if (t > 86400)
            t = 86400;
        p->deadline = xcp__now_ms() + (int64_t)(t * 1000);
        if (p->deadline == 0)
            p->deadline = 1; /* 0 means "from the argument" below */
    }
    if (p->stream_ok && !p->async && (m->kind == XM_GET_ALL_RECORDS ||
                                      m->kind == XM_GET_ALL_RECORDS_WHERE)) {
        stream_reply(p, m);
        return;
    }
    /* Generated messages (getters, setters, records) are quick; so are
     * Async (a task and a thread) and the event calls (they park). */
    /* A member's write runs on the transport's thread, not a call
     * thread: the call threads may all be forwarded calls waiting for
     * those very writes (design-pool.md §7). */
    if (s->nworkers && m->kind == XM_EXPLICIT && !p->async &&
        m->cls != C(event) && p->mid != s->mid_member_commit)
        enqueue_work(s, p);
    else
        run(p);
}

static const char html500[] =
    "<html><body><h1>HTTP 500 internal server error</h1>An unexpected "
    "error occurred; please wait a while and try again. If the problem "
    "persists, please contact your support representative.<h1> Additional "
    "information </h1>The request could not be parsed.</body></html>";

static int rpc(xcp_server *srv, const xcp_server_request *req,
               xcp_server_done_fn done, void *arg, bool stream_ok)
{
    struct pend *p;
    char *method = NULL, err[160];
    xcp_value params;
    bool authed = false;
    int rc;

    params.kind = XCP_VAL_NONE;
    pthread_mutex_lock(&srv->mu);
    if (srv->stopping) {
        pthread_mutex_unlock(&srv->mu);
        send_raw(done, arg, 503, "text/html", "", 0);
        return 0;
    }
    srv->npend++;
    pthread_mutex_unlock(&srv->mu);
    if (!(p = xcp__calloc(1, sizeof(*p)))) {
        send_raw(done, arg, 500, "text/html", "", 0);
        pthread_mutex_lock(&srv->mu);
        if (--srv->npend == 0)
            pthread_cond_broadcast(&srv->drained);
        pthread_mutex_unlock(&srv->mu);
        return 0;
    }
    p->srv = srv;
    p->proto = req->protocol;
    p->stream_ok = stream_ok;
    p->done = done;
    p->arg = arg;
    p->hidx = NOHEAP;
    p->w.wake = wake;
    p->id.kind = XCP_VAL_NONE;
    xcp_error_clear();
    err[0] = '\0';
    if (req->protocol == XCP_SERVER_JSONRPC)
        rc = xcp__jsonrpc_decode_request(req->body, req->len, &method,
                                         &params, &p->id, &p->jver, err,
                                         sizeof(err));
    else
        rc = xcp__xmlrpc_decode_request(req->body, req->len, &method,
                                        &params, err, sizeof(err));
    if (rc < 0 || !method || params.kind != XCP_VAL_ARRAY) {
        xcp__log(XCP__LOG_DEBUG, "unparsable request from %s: %s",
                 req->peer.address ? req->peer.address : "?", err);
        send_raw(done, arg, 500, "text/html", html500, sizeof(html500) - 1);
        free(method);
        xcp_value_dispose(&params);
        finish(p);
        return 0;
    }
    if (rc == XCP__RPC_BAD_UTF8) {
        const char *bad = xcp__rpc_find_invalid(&params);
        XCP__ERR_INVALID_VALUE("Invalid UTF-8 string in parameter",
                               bad ? bad : "");
        reply_error(p);
    } else {
        dispatch(p, method, &params, &req->peer, &authed);
    }
    free(method);
    xcp_value_dispose(&params);
    return authed;
}

int xcp_server_rpc(xcp_server *srv, const xcp_server_request *req,
                   xcp_server_done_fn done, void *arg)
{
    return rpc(srv, req, done, arg, false);
}

int xcp_server_rpc_stream(xcp_server *srv, const xcp_server_request *req,
                          xcp_server_done_fn done, void *arg)
{
    return rpc(srv, req, done, arg, true);
}

void xcp__server_trim(size_t bytes)
{
#ifdef __GLIBC__
    /* glibc keeps what a big reply freed in its arenas (and a busy
     * server's threads each have one); hand it back now, or an idle
     * server stays at its peak. */
    if (bytes >= TRIM_THRESHOLD)
        malloc_trim(0);
#else
    XCP__UNUSED(bytes);
#endif
}

void xcp__server_stream_closed(xcp_server *s, size_t bytes)
{
    pthread_mutex_lock(&s->mu);
    if (--s->nstreams == 0)
        pthread_cond_broadcast(&s->drained);
    pthread_mutex_unlock(&s->mu);
    xcp__server_trim(bytes);
}

/* ---- life -------------------------------------------------------------- */

/* Stops the timer and the call threads (those running). */
static void stop_threads(xcp_server *s)
{
    pthread_mutex_lock(&s->mu);
    s->quit = true;
    pthread_cond_broadcast(&s->cond);
    pthread_cond_broadcast(&s->work_cond);
    pthread_mutex_unlock(&s->mu);
    if (s->timer_running)
        pthread_join(s->timer, NULL);
    while (s->nworkers > 0)
        pthread_join(s->workers[--s->nworkers], NULL);
}

/* Frees s, its threads stopped: the end of xcp_server_close, and of an
 * xcp_server_open that failed half way (what it had not made is zero). */
static void server_free(xcp_server *s)
{
    free(s->workers);
    while (s->all_groups) {
        struct group *g = s->all_groups;
        s->all_groups = g->all;
        free(g->key);
        free(g);
    }
    xcp__hmap_free(&s->groups);
    xcp__hmap_free(&s->sessions);
    xcp_value_dispose(&s->methods);
    free(s->heap);
    if (s->e)
        xcp__engine_put(s->e);
    xcp__auth_close(s->auth);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cond);
    pthread_cond_destroy(&s->drained);
    pthread_cond_destroy(&s->work_cond);
    free(s);
}

int xcp_server_open(xcp_server **out, const xcp_server_options *o)
{
    xcp_server *s;
    xcp_open_options eo;
    pthread_condattr_t ca;
    int rc;

    xcp_error_clear();
    if (!out || !o || o->version != XCP_SERVER_OPTIONS_VERSION)
        return XCP__ERR_INVALID_VALUE("xcp_server_options.version", "");
    if (!(s = xcp__calloc(1, sizeof(*s))))
        return xcp__oom();
    s->timeout_s = o->session_timeout_s ? o->session_timeout_s : 86400;
    s->limit = o->session_limit ? o->session_limit : 500;
    s->fail_delay_ms = o->auth_fail_delay_ms ? o->auth_fail_delay_ms : 5000;
    s->gc_ms = o->gc_interval_ms ? o->gc_interval_ms : 60000;
    if (s->gc_ms > s->timeout_s * 1000u)
        s->gc_ms = s->timeout_s * 1000u; /* expire within one timeout */
    s->mid_login = xcp__message_lookup("session.login_with_password");
    s->mid_slave_login =
        xcp__message_lookup("session.slave_local_login_with_password");
    s->mid_pool_login = xcp__message_lookup("session.slave_login");
    s->mid_member_commit = xcp__message_lookup("pool.member_commit");
    s->mid_pool_local_login = xcp__message_lookup("session.slave_local_login");
    s->mid_logout = xcp__message_lookup("session.logout");
    s->mid_local_logout = xcp__message_lookup("session.local_logout");
    s->mid_from = xcp__message_lookup("event.from");
    s->mid_next = xcp__message_lookup("event.next");
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&s->drained, NULL);
    pthread_cond_init(&s->work_cond, NULL);
    if ((rc = xcp__auth_open(&s->auth, o->auth_file, o->pam_service)) < 0 ||
        (rc = list_methods(&s->methods)) < 0)
        goto fail;
    memset(&eo, 0, sizeof(eo));
    eo.version = XCP_OPEN_OPTIONS_VERSION;
    eo.state_dir = o->state_dir;
    eo.hv = o->hv;
    eo.originator = "xcpd";
    eo.lock_timeout_ms = 30000;
    if ((rc = xcp__engine_get(&s->e, &eo)) < 0)
        goto fail;
    /* a server samples its host's metrics from the start (api/metrics.c) */
    xcp__engine_metrics_locked(s->e);
    s->next_gc = xcp__now_ms() + s->gc_ms;
    if (pthread_create(&s->timer, NULL, timer_main, s) != 0) {
        rc = xcp__internal("cannot start the server's timer thread");
        goto fail;
    }
    s->timer_running = true;
    {
        unsigned want = o->call_threads ? o->call_threads : 8, i;
        if (!(s->workers = xcp__calloc(want, sizeof(*s->workers)))) {
            rc = xcp__oom();
            goto fail;
        }
        for (i = 0; i < want; i++) {
            if (pthread_create(&s->workers[i], NULL, worker_main, s) != 0)
                break;
            s->nworkers++;
        }
        if (!s->nworkers) {
            rc = xcp__internal("cannot start the server's call threads");
            goto fail;
        }
    }
    *out = s;
    return 0;
fail:
    stop_threads(s);
    server_free(s);
    return rc;
}

void xcp_server_shutdown(xcp_server *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    /* The timer thread now expires every parked pend at once, and each
     * runs without blocking; running calls finish on their threads. */
    pthread_cond_signal(&s->cond);
    while (s->npend > 0)
        pthread_cond_wait(&s->drained, &s->mu);
    pthread_mutex_unlock(&s->mu);
}

void xcp_server_close(xcp_server *s)
{
    if (!s)
        return;
    xcp_server_shutdown(s);
    pthread_mutex_lock(&s->mu);
    while (s->nstreams > 0) /* the transport closes them */
        pthread_cond_wait(&s->drained, &s->mu);
    s->quit = true; /* with the streams seen closed */
    pthread_mutex_unlock(&s->mu);
    stop_threads(s);
    /* Log out the sessions we opened, as a restart of XAPI ends them. */
    while (s->lru.head) {
        char ref[XCP_REF_MAX];
        snprintf(ref, sizeof(ref), "%s", s->lru.head->ref);
        sess_drop(s, s->lru.head);
        engine_logout(s, ref);
    }
    server_free(s);
}

int xcp_server_set_nbd(xcp_server *s, const xcp_server_nbd *nbd)
{
    pthread_mutex_lock(&s->e->lock);
    if (nbd)
        s->e->nbd = *nbd;
    else
        memset(&s->e->nbd, 0, sizeof(s->e->nbd));
    pthread_mutex_unlock(&s->e->lock);
    return 0;
}

const char *xcp_server_state_dir(const xcp_server *s)
{
    return s ? s->e->state_dir : NULL;
}

/* For transfer.c. */
xcp__engine *xcp__server_engine(xcp_server *s)
{
    return s->e;
}

xcp__auth *xcp__server_auth(xcp_server *s)
{
    return s->auth;
}

int xcp__server_login(xcp_server *s, const char *user, const char *pw,
                      char out[XCP_REF_MAX])
{
    xcp_value args[4], res;
    size_t n = 4, i;
    int rc;

    if ((rc = xcp__auth_check(s->auth, user, pw)) < 0)
        return rc;
    memset(args, 0, sizeof(args));
    xcp_value_set_string(&args[0], user);
    xcp_value_set_string(&args[1], "");
    xcp_value_set_string(&args[2], "1.1");
    xcp_value_set_string(&args[3], "xcpd-http");
    rc = xcp__prepare_args(&xcp__messages[s->mid_login], args, &n);
    if (rc == 0)
        rc = xcp__engine_call(s->e, NULL, s->mid_login, false, n, args, &res);
    for (i = 0; i < 4; i++)
        xcp_value_dispose(&args[i]);
    if (rc < 0)
        return rc;
    snprintf(out, XCP_REF_MAX, "%s", res.u.s);
    xcp_value_dispose(&res);
    return 0;
}

void xcp__server_logout(xcp_server *s, const char *ref)
{
    engine_logout(s, ref);
}
