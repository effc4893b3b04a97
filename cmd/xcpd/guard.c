/*
 * xcpd: who may hold a TCP connection. A connection is anonymous until a
 * request on it authenticates (a live session, a login, an authorised VDI
 * transfer). Anonymous connections are capped per source address and in
 * all, below the listener's connection limit, and time out early, so
 * idle sockets opened by anyone who can reach the port cannot take the
 * places of logged-in clients; an authenticated connection is no longer
 * counted and gets the normal idle timeout. The counts are exact: one
 * entry per address with anonymous connections, chained in a hash table
 * whose hash is keyed at random so no client can choose collisions.
 */
#define _GNU_SOURCE

#include "xcpd.h"

#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#define BUCKETS 1024u

/* The anonymous connections of one address. */
typedef struct guard_ip {
    struct guard_ip *next;
    unsigned n;
    size_t len;
    unsigned char addr[16];
} guard_ip;

/* One TCP connection (MHD's socket context). */
typedef struct guard_conn {
    xcpd_guard *g;
    guard_ip *ip;           /* NULL once authenticated */
} guard_conn;

struct xcpd_guard {
    pthread_mutex_t mu;
    xcpd_guard_limits lim;
    uint64_t seed;
    unsigned total;         /* anonymous connections */
    guard_ip *buckets[BUCKETS];
};

/* The address bytes that identify a peer (IPv4 or IPv6), or 0 bytes. */
static size_t addr_key(const struct sockaddr *sa, unsigned char out[16])
{
    if (sa == NULL)
        return 0;
    if (sa->sa_family == AF_INET) {
        memcpy(out, &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
               4);
        return 4;
    }
    if (sa->sa_family == AF_INET6) {
        memcpy(out,
               &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
               16);
        return 16;
    }
    return 0;
}

/* FNV-1a over the seed and the address. */
static unsigned bucket_of(const xcpd_guard *g, const unsigned char *a,
                          size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull ^ g->seed;
    size_t i;

    for (i = 0; i < len; i++) {
        h ^= a[i];
        h *= 0x100000001b3ull;
    }
    h ^= h >> 29;
    return (unsigned)(h % BUCKETS);
}

/* The entry of an address (mutex held); NULL when it has none. */
static guard_ip **find(xcpd_guard *g, const unsigned char *a, size_t len)
{
    guard_ip **pp = &g->buckets[bucket_of(g, a, len)];

    for (; *pp != NULL; pp = &(*pp)->next)
        if ((*pp)->len == len && memcmp((*pp)->addr, a, len) == 0)
            return pp;
    return pp;
}

xcpd_guard *xcpd_guard_new(const xcpd_guard_limits *lim)
{
    xcpd_guard *g = calloc(1, sizeof(*g));

    if (g == NULL)
        return NULL;
    g->lim = *lim;
    if (getrandom(&g->seed, sizeof(g->seed), GRND_NONBLOCK)
        != (ssize_t)sizeof(g->seed))
        g->seed = (uint64_t)(uintptr_t)g; /* only spreads the chains */
    pthread_mutex_init(&g->mu, NULL);
    return g;
}

void xcpd_guard_free(xcpd_guard *g)
{
    unsigned i;

    if (g == NULL)
        return;
    for (i = 0; i < BUCKETS; i++)
        while (g->buckets[i] != NULL) {
            guard_ip *x = g->buckets[i];

            g->buckets[i] = x->next;
            free(x);
        }
    pthread_mutex_destroy(&g->mu);
    free(g);
}

enum MHD_Result xcpd_guard_accept(void *cls, const struct sockaddr *addr,
                                  socklen_t addrlen)
{
    xcpd_guard *g = cls;
    unsigned char a[16];
    size_t len = addr_key(addr, a);
    guard_ip **pp;
    enum MHD_Result ok = MHD_YES;

    (void)addrlen;
    pthread_mutex_lock(&g->mu);
    if (g->lim.total != 0 && g->total >= g->lim.total)
        ok = MHD_NO;
    else if (g->lim.per_ip != 0 && (pp = find(g, a, len), *pp != NULL)
             && (*pp)->n >= g->lim.per_ip)
        ok = MHD_NO;
    pthread_mutex_unlock(&g->mu);
    return ok;
}

/* The connection no longer counts as anonymous. */
static void uncount(guard_conn *k)
{
    xcpd_guard *g = k->g;
    guard_ip **pp;

    if (k->ip == NULL)
        return;
    pthread_mutex_lock(&g->mu);
    g->total--;
    if (--k->ip->n == 0) {
        pp = find(g, k->ip->addr, k->ip->len);
        *pp = k->ip->next;
        free(k->ip);
    }
    k->ip = NULL;
    pthread_mutex_unlock(&g->mu);
}

/* Count a new connection as anonymous; its address's entry, or NULL when
   there is no memory for one. */
static guard_ip *count(xcpd_guard *g, struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    unsigned char a[16];
    size_t len = addr_key(ci != NULL ? ci->client_addr : NULL, a);
    guard_ip **pp, *ip;

    pthread_mutex_lock(&g->mu);
    pp = find(g, a, len);
    if (*pp == NULL && (*pp = calloc(1, sizeof(**pp))) != NULL) {
        (*pp)->len = len;
        memcpy((*pp)->addr, a, len);
    }
    ip = *pp;
    if (ip != NULL) {
        ip->n++;
        g->total++;
    }
    pthread_mutex_unlock(&g->mu);
    return ip;
}

void xcpd_guard_notify(void *cls, struct MHD_Connection *c, void **socket_ctx,
                       enum MHD_ConnectionNotificationCode toe)
{
    xcpd_guard *g = cls;
    guard_conn *k = *socket_ctx;

    if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        if (k != NULL) {
            uncount(k);
            free(k);
            *socket_ctx = NULL;
        }
        return;
    }
    /* Started. Unguarded (the unix socket), or a connection we cannot
       count (no memory): MHD's own limits still bound it. */
    if (g == NULL || (k = calloc(1, sizeof(*k))) == NULL)
        return;
    k->g = g;
    k->ip = count(g, c);
    *socket_ctx = k;
}

void xcpd_guard_trust(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    guard_conn *k = ci != NULL ? ci->socket_context : NULL;

    if (k == NULL || k->ip == NULL)
        return; /* not guarded (the unix socket) or already trusted */
    uncount(k);
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT,
                              k->g->lim.trusted_timeout_s);
}
