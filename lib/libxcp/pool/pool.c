/*
 * A pooled host's database on the replication channel (see pool.h and
 * docs/design-pool.md §3). One thread per pooled engine owns the
 * dispatching of the group (the cluster handle is not thread-safe: its
 * lock `mu` guards it); API threads take mu only for the moment of a
 * commit (prepare .. submit, around the journal's one write) and wait on
 * `cv` for their seq outside the engine lock, so commits pipeline.
 *
 * Lock order: the engine lock, then mu. The dispatch thread holds mu
 * while it dispatches; to apply a record or install a snapshot (a member)
 * it lets mu go, takes the engine lock, then mu again (a commit waiting
 * for mu meanwhile finds the host a member and refuses, touching nothing);
 * the coordinator's work that needs the engine lock (the first record of
 * its epoch, its start-up writes, answering a member's catch-up) runs
 * between dispatches, with mu released first.
 *
 * The outcome of a round of states (docs/design-pool.md §5): the winner
 * writes `coordinator <nodeid>` to its pool-role, commits the first record
 * of its epoch (pool.master := its host, the host row whose
 * other_config:corosync-nodeid is its node id, when one is; and the
 * epoch's first seq appended to pool.other_config:xcp_pool_epochs, which
 * is how every replica knows the epoch of each of its records) and then
 * takes writes; the others write `member <address> <nodeid>` and answer
 * HOST_IS_SLAVE with that address. A deposed coordinator becomes a member
 * and catches up; a tail of its own that the pool does not have is
 * replaced by a snapshot of the coordinator's database (state transfer:
 * the logs disagree at its last record).
 */
#include "pool.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../engine/engine.h"

static void role_read(const char *state_dir, char *buf, size_t len)
{
    char path[PATH_MAX];
    FILE *f;

    buf[0] = '\0';
    snprintf(path, sizeof(path), "%s/pool-role", state_dir);
    if (!(f = fopen(path, "r")))
        return;
    if (!fgets(buf, (int)len, f))
        buf[0] = '\0';
    fclose(f);
}

bool xcp__pool_role_member(const char *state_dir)
{
    char buf[16];

    role_read(state_dir, buf, sizeof(buf));
    return strncmp(buf, "member ", 7) == 0;
}

bool xcp__pool_secret_ok(const char *state_dir, const char *psecret)
{
    char want[65];
    size_t i, n = psecret ? strlen(psecret) : 0;
    unsigned char d;

    if (xcp__pool_secret_read(state_dir, want) < 0) {
        xcp_error_clear();
        return false;
    }
    d = n != 64;
    for (i = 0; i < 64; i++)
        d |= (unsigned char)(want[i] ^ (i < n ? psecret[i] : 0));
    return d == 0;
}

int xcp__pool_secret_read(const char *state_dir, char out[65])
{
    char path[PATH_MAX], buf[80] = "";
    size_t i, n;
    FILE *f;

    snprintf(path, sizeof(path), "%s/pool-secret", state_dir);
    if (!(f = fopen(path, "re")))
        return xcp__internal("cannot read the pool secret %s: %s", path,
                             strerror(errno));
    if (!fgets(buf, sizeof(buf), f))
        buf[0] = '\0';
    fclose(f);
    buf[strcspn(buf, "\r\n")] = '\0';
    n = strlen(buf);
    for (i = 0; i < n && strchr("0123456789abcdefABCDEF", buf[i]); i++)
        ;
    if (n != 64 || i != n)
        return xcp__internal("%s is not 64 hexadecimal characters", path);
    memcpy(out, buf, 65);
    return 0;
}

#include <dlfcn.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
bool xcp__pool_role_pooled(const char *state_dir)
{
    char buf[16];

    role_read(state_dir, buf, sizeof(buf));
    return strncmp(buf, "member ", 7) == 0 ||
           strncmp(buf, "coordinator ", 12) == 0;
}

/* name in dir := text, atomically (xcp__file_replace). */
static int write_atomic(const char *dir, const char *name, const char *text)
{
    char path[PATH_MAX];
    int rc;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    rc = xcp__file_replace(dir, path, text, strlen(text), 0644);
    return rc < 0 ? xcp__internal("cannot write %s: %s", path,
                                  strerror(-rc))
                  : 0;
}

int xcp__pool_role_write(const char *state_dir, const char *line)
{
    char text[512];

    if (strchr(line, '\n') || strlen(line) + 2 > sizeof(text))
        return XCP__ERR_INVALID_VALUE("pool-role", line);
    snprintf(text, sizeof(text), "%s\n", line);
    return write_atomic(state_dir, "pool-role", text);
}

#include "../cluster/cluster.h"
#include "../client/client.h"
#include <xcp/session.h>

#define WAIT_MS 30000 /* a commit not held by a quorum by then fails */
#define EPOCHS_KEY "xcp_pool_epochs"
#define EPOCHS_MAX 64     /* entries kept in it */
#define NODEID_KEY "corosync-nodeid"

struct xcp__pool {
    xcp__engine *e;
    bool member;
    char coordinator[256];   /* member: the coordinator's address */
    char self_addr[256];     /* this host's (states, errors) */
    uint32_t coord_nodeid;
    uint32_t me;
    uint64_t epoch;          /* of the last decision (pool-epoch file) */
    xcp__repl *r;
    pthread_mutex_t mu;      /* r and the fields below */
    pthread_cond_t cv;       /* committed moved, or broken, or deposed */
    uint64_t committed;
    bool broken;             /* the journal and the pool disagree */
    bool ready;              /* a round confirmed this coordinator and its
                                first record of the epoch is sent */
    bool first_due;          /* coordinator: that first record is to make */
    bool startup_due;        /* coordinator: its start-up writes */
    bool live_due;           /* coordinator: host_metrics.live to match
                                the group (it changed) */
    bool stop;
    /* coordinator: handing its role over (designate_new_master) to the
     * host at handing_addr: it takes no write until a round decides */
    bool handing;
    char handing_addr[256];
    uint64_t decisions;      /* rounds decided (on_elected calls) */
    pthread_t thr;
    bool running;
    xcp__corosync *coro;     /* supervised corosync (NULL: not ours) */
    char *conf;              /* the corosync.conf text last written */
    bool ejected;            /* this host's row went: reset at close */
    bool power_off;          /* host.shutdown/reboot: corosync stops at
                                close, as the host's would */
    uint64_t applied;        /* member: last seq applied here (mu) */
    pthread_mutex_t rpc_mu;  /* cs: one call to the coordinator at a time */
    xcp_session *cs;         /* member: slave_login session there */
    /* coordinator: (seq, gen) of the commits sent and not yet held by a
     * quorum, oldest first (a ring): event.from stops below the oldest */
    struct pend {
        uint64_t seq, gen;
    } *pend;
    size_t pcap, phead, pn;
};

/* lib/libxcp/cluster, loaded from the module xcp-cluster.so when a host
 * is pooled, so that a single host (and xe) never maps corosync's
 * libraries (tests/meta/lazy_libs.sh). */
static struct {
    int (*quorum_get)(xcp__cluster_quorum *, xcp__cluster_err *);
    int (*open)(xcp__repl **, const char *, uint32_t, uint64_t, uint64_t,
                uint64_t, const xcp__repl_callbacks *, void *,
                xcp__cluster_err *);
    int (*submit)(xcp__repl *, uint64_t, const char *, size_t, uint64_t *,
                  xcp__cluster_err *);
    int (*dispatch)(xcp__repl *, int, xcp__cluster_err *);
    uint64_t (*committed)(const xcp__repl *);
    uint64_t (*last)(const xcp__repl *);
    uint64_t (*acked)(const xcp__repl *, uint32_t);
    int (*handover)(xcp__repl *, uint32_t, xcp__cluster_err *);
    int (*emergency)(xcp__repl *, xcp__cluster_err *);
    bool (*round_open)(const xcp__repl *);
    bool (*writable)(const xcp__repl *);
    bool (*quorate)(const xcp__repl *);
    uint32_t (*nodeid)(const xcp__repl *);
    size_t (*members)(const xcp__repl *);
    int (*fd)(const xcp__repl *);
    void (*close)(xcp__repl *);
    int (*conf_format)(const xcp__cluster_conf *, char **, xcp__cluster_err *);
    int (*coro_start)(xcp__corosync **, const xcp__corosync_opts *,
                      xcp__cluster_err *);
    int (*coro_reload)(xcp__corosync *, xcp__cluster_err *);
    void (*coro_stop)(xcp__corosync *, bool);
    bool (*systemd)(void);
    bool (*has_member)(const xcp__repl *, uint32_t);
    void (*set_address)(xcp__repl *, const char *);
    bool (*ready)(const xcp__repl *);
    int (*next_request)(xcp__repl *, uint32_t *, uint64_t *, uint64_t *);
    int (*answer)(xcp__repl *, uint32_t, char, uint64_t, uint64_t, uint64_t,
                  const char *, size_t, xcp__cluster_err *);
    ssize_t (*record_encode)(const xcp__cluster_record *, char *, size_t);
} cl;
static pthread_mutex_t cl_lock = PTHREAD_MUTEX_INITIALIZER;
static bool cl_loaded;

/* Load the module: from $XCP_POOL_MODULE_DIR when set, else beside the
 * library (the build tree: lib/libxcp/.libs), else XCP_MODULEDIR. */
static int cluster_load(void)
{
    const xcp__dl_sym syms[] = {
        {(void **)&cl.quorum_get, "xcp__cluster_quorum_get"},
        {(void **)&cl.open, "xcp__repl_open"},
        {(void **)&cl.submit, "xcp__repl_submit"},
        {(void **)&cl.dispatch, "xcp__repl_dispatch"},
        {(void **)&cl.committed, "xcp__repl_committed"},
        {(void **)&cl.last, "xcp__repl_last"},
        {(void **)&cl.acked, "xcp__repl_acked"},
        {(void **)&cl.handover, "xcp__repl_handover"},
        {(void **)&cl.emergency, "xcp__repl_emergency"},
        {(void **)&cl.round_open, "xcp__repl_round_open"},
        {(void **)&cl.writable, "xcp__repl_writable"},
        {(void **)&cl.quorate, "xcp__repl_quorate"},
        {(void **)&cl.nodeid, "xcp__repl_nodeid"},
        {(void **)&cl.members, "xcp__repl_members"},
        {(void **)&cl.fd, "xcp__repl_fd"},
        {(void **)&cl.close, "xcp__repl_close"},
        {(void **)&cl.conf_format, "xcp__corosync_conf_format"},
        {(void **)&cl.coro_start, "xcp__corosync_start"},
        {(void **)&cl.coro_reload, "xcp__corosync_reload"},
        {(void **)&cl.coro_stop, "xcp__corosync_stop"},
        {(void **)&cl.systemd, "xcp__cluster_systemd_running"},
        {(void **)&cl.has_member, "xcp__repl_has_member"},
        {(void **)&cl.set_address, "xcp__repl_set_address"},
        {(void **)&cl.ready, "xcp__repl_ready"},
        {(void **)&cl.next_request, "xcp__repl_next_request"},
        {(void **)&cl.answer, "xcp__repl_answer"},
        {(void **)&cl.record_encode, "xcp__cluster_record_encode"},
    };
    const char *env = getenv("XCP_POOL_MODULE_DIR");
    char dirs[2][PATH_MAX], path[PATH_MAX + 32], why[512] = "";
    size_t n = 0, i;
    Dl_info info;
    int rc = 0;

    pthread_mutex_lock(&cl_lock);
    if (cl_loaded)
        goto out;
    if (env && *env) {
        snprintf(dirs[n++], PATH_MAX, "%s", env);
    } else {
        char *slash;
        if (dladdr((void *)cluster_load, &info) && info.dli_fname &&
            (size_t)snprintf(dirs[n], PATH_MAX, "%s", info.dli_fname) <
                PATH_MAX &&
            (slash = strrchr(dirs[n], '/'))) {
            *slash = '\0';
            n++;
        }
        snprintf(dirs[n++], PATH_MAX, "%s", XCP_MODULEDIR);
    }
    for (i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "%s/xcp-cluster.so", dirs[i]);
        if (access(path, F_OK) == 0)
            break;
    }
    if (i == n) {
        /* A nameable cause (an installation without the module): XAPI's
         * error for a cluster stack this host cannot run, naming ours and
         * where it was looked for. */
        char *msg = xcp__printf(
            "corosync: this host is pooled, but the cluster module "
            "xcp-cluster.so is in none of %s%s%s (libxcp built without "
            "corosync's client libraries?)",
            dirs[0], n > 1 ? " " : "", n > 1 ? dirs[1] : "");
        rc = msg ? XCP__ERR_INVALID_CLUSTER_STACK(msg) : xcp__oom();
        free(msg);
        goto out;
    }
    if (xcp__dl_load(path, syms, XCP__ARRAY_LEN(syms), why,
                     sizeof(why)) < 0) {
        char msg[PATH_MAX + 600];
        snprintf(msg, sizeof(msg), "corosync: cannot load %s: %s", path,
                 why);
        rc = XCP__ERR_INVALID_CLUSTER_STACK(msg);
        goto out;
    }
    cl_loaded = true;
out:
    pthread_mutex_unlock(&cl_lock);
    return rc;
}

/* The seq the calling thread's last replicated commit got (0: none), and
 * on which pool. */
static _Thread_local uint64_t tls_seq;
static _Thread_local xcp__pool *tls_pool;

static int not_quorate(xcp__pool *p)
{
    xcp__cluster_quorum q = {0};
    char votes[16], quorum[16];

    cl.quorum_get(&q, NULL);
    snprintf(votes, sizeof(votes), "%u", q.total_votes);
    snprintf(quorum, sizeof(quorum), "%u", q.quorum);
    return XCP__ERR_POOL_NOT_QUORATE(p->self_addr, votes, quorum);
}

/* ---- corosync, configured from the replicated host table (design §6) ---- */

const char *xcp__pool_corosync_dir(void)
{
    const char *d = getenv("XCP_COROSYNC_DIR");

    return d && *d ? d : "/etc/corosync";
}

static int by_nodeid(const void *a, const void *b)
{
    const xcp__cluster_node *x = a, *y = b;

    return x->nodeid < y->nodeid ? -1 : x->nodeid > y->nodeid;
}

uint32_t xcp__pool_host_nodeid(const xcp__obj *host)
{
    const char *s = xcp__obj_map_str(host, F(host, other_config),
                                     "corosync-nodeid");
    char *end;
    unsigned long v;

    if (!s || !*s)
        return 0;
    v = strtoul(s, &end, 10);
    return *end || v == 0 || v > INT32_MAX ? 0 : (uint32_t)v;
}

/* A totem timeout the pool's administrator set in pool.other_config
 * (key, in ms, within [lo, hi]; XAPI's Cluster has token_timeout and
 * token_timeout_coefficient for the same), else 0: the default. Larger
 * ones suit pools of many hosts on slow or loaded machines, at the cost
 * of a slower failover. */
static unsigned token_setting(xcp__obj *pool, const char *key, unsigned lo,
                              unsigned hi)
{
    const char *v = xcp__obj_map_str(pool, F(pool, other_config), key);
    unsigned long n;
    char *end;

    if (!v || !*v)
        return 0;
    errno = 0;
    n = strtoul(v, &end, 10);
    if (errno || *end || n < lo || n > hi) {
        xcp__log(XCP__LOG_WARN, "pool: other_config:%s=%s ignored (a "
                 "number of ms from %u to %u)", key, v, lo, hi);
        return 0;
    }
    return (unsigned)n;
}

/* corosync.conf from the host table (engine lock held): NULL when the
 * table does not describe a pool libxcp configures (fewer than two
 * hosts, or a host without a node id: a pool set up by hand). */
static char *conf_text(xcp__engine *e)
{
    size_t n, i;
    xcp__obj *const *hosts = xcp__db_all(e->db, C(host), &n);
    xcp__obj *pool = xcp__db_get_cls(e->db, C(pool), e->pool), *master;
    xcp__cluster_node *nodes;
    xcp__cluster_conf c;
    xcp__cluster_err err = {""};
    char name[16], key[4096], *text = NULL;

    if (n < 2 || !pool ||
        !(master = xcp__db_get_cls(e->db, C(host),
                                   xcp__obj_str(pool, F(pool, master)))) ||
        !(nodes = calloc(n, sizeof(*nodes))))
        return NULL;
    for (i = 0; i < n; i++) {
        nodes[i].nodeid = xcp__pool_host_nodeid(hosts[i]);
        nodes[i].name = xcp__obj_uuid(hosts[i]);
        nodes[i].addr = xcp__obj_str(hosts[i], F(host, address));
        if (nodes[i].nodeid == 0)
            goto out;
    }
    qsort(nodes, n, sizeof(*nodes), by_nodeid);
    snprintf(name, sizeof(name), "xcp-%.8s", xcp__obj_uuid(pool));
    snprintf(key, sizeof(key), "%s/authkey", xcp__pool_corosync_dir());
    memset(&c, 0, sizeof(c));
    c.cluster_name = name;
    c.nodes = nodes;
    c.nnodes = n;
    c.coordinator = xcp__pool_host_nodeid(master);
    c.crypto = access(key, R_OK) == 0;
    c.log_stderr = !cl.systemd();
    c.token_ms = token_setting(pool, "xcp_corosync_token_ms", 200, 120000);
    c.token_coefficient_ms =
        token_setting(pool, "xcp_corosync_token_coefficient_ms", 1, 10000);
    if (cl.conf_format(&c, &text, &err) < 0) {
        xcp__log(XCP__LOG_ERR, "pool: no corosync.conf from the host "
                 "table: %s", err.msg);
        text = NULL;
    }
out:
    free(nodes);
    return text;
}

/* Write corosync.conf when the host table says something else than the
 * file, and with reload make the running corosync read it (engine lock
 * held). Returns 1 when written, 0 when unchanged or not ours. */
static int conf_refresh(xcp__pool *p, bool reload)
{
    char path[4096], *text = conf_text(p->e), *old = NULL;
    xcp__cluster_err err = {""};
    size_t len = 0;
    FILE *f;
    int rc = 0;

    if (!text)
        return 0;
    snprintf(path, sizeof(path), "%s/corosync.conf", xcp__pool_corosync_dir());
    if (!p->conf && (f = fopen(path, "r"))) {
        char buf[65536];
        len = fread(buf, 1, sizeof(buf) - 1, f);
        buf[len] = '\0';
        fclose(f);
        old = xcp__strdup(buf);
    } else if (p->conf) {
        old = xcp__strdup(p->conf);
    }
    if (old && strcmp(old, text) == 0) {
        free(p->conf);
        p->conf = text;
        free(old);
        return 0;
    }
    free(old);
    if (xcp__pool_file_write(path, text, strlen(text), 0644) < 0) {
        xcp__log(XCP__LOG_ERR, "pool: cannot write %s", path);
        xcp_error_clear();
        free(text);
        return 0;
    }
    free(p->conf);
    p->conf = text;
    rc = 1;
    xcp__log(XCP__LOG_INFO, "pool: %s written from the host table", path);
    if (reload && p->coro && cl.coro_reload(p->coro, &err) < 0)
        xcp__log(XCP__LOG_ERR, "pool: corosync reload: %s", err.msg);
    return rc;
}

/* Whether a journal body may change what corosync.conf says: a host
 * created, any row destroyed, a node id or an address set. */
static bool touches_hosts(const char *body, size_t len)
{
    static const char *const pats[] = {" C host ", " D ",
                                       "corosync-nodeid", " address ",
                                       "xcp_corosync_token"};
    size_t i, k;

    for (i = 0; i < XCP__ARRAY_LEN(pats); i++) {
        size_t m = strlen(pats[i]);
        for (k = 0; k + m <= len; k++)
            if (memcmp(body + k, pats[i], m) == 0)
                return true;
    }
    return false;
}

/* Start (or adopt) this host's corosync when the host table describes a
 * pool libxcp configures (engine lock held). */
static int corosync_up(xcp__pool *p)
{
    char conf[4096], logdir[] = "/var/log/corosync", log[64];
    xcp__corosync_opts o;
    xcp__cluster_err err = {""};
    bool wrote, running;
    struct stat st;

    wrote = conf_refresh(p, false) == 1;
    if (!p->conf)
        return 0;
    snprintf(conf, sizeof(conf), "%s/corosync.conf",
             xcp__pool_corosync_dir());
    snprintf(log, sizeof(log), "%s/corosync.log", logdir);
    memset(&o, 0, sizeof(o));
    o.conf = conf;
    o.log = stat(logdir, &st) == 0 && S_ISDIR(st.st_mode) ? log : NULL;
    o.use_systemd = cl.systemd() && !getenv("XCP_COROSYNC_NO_SYSTEMD");
    /* A corosync that runs already (adopted) reads a new file on reload;
     * one started now reads it anyway. */
    running = access("/run/corosync.pid", F_OK) == 0;
    if (cl.coro_start(&p->coro, &o, &err) < 0)
        return xcp__internal("cannot start corosync: %s", err.msg);
    if (wrote && running && cl.coro_reload(p->coro, &err) < 0)
        xcp__log(XCP__LOG_INFO, "pool: corosync reload after start: %s",
                 err.msg);
    return 0;
}

void xcp__pool_hosts_changed(xcp__pool *p)
{
    if (p)
        conf_refresh(p, true);
}

bool xcp__pool_host_live(xcp__pool *p, uint32_t nodeid)
{
    bool live;

    if (!p || nodeid == 0)
        return false;
    pthread_mutex_lock(&p->mu);
    live = cl.has_member(p->r, nodeid);
    pthread_mutex_unlock(&p->mu);
    return live;
}

void xcp__pool_request_restart(void)
{
    sigset_t cur;

    /* xcpd takes SIGHUP through its signalfd (blocked in every thread)
     * and restarts on it; elsewhere (an embedded engine) the change
     * takes effect when the state directory is next opened. */
    if (pthread_sigmask(SIG_BLOCK, NULL, &cur) == 0 &&
        sigismember(&cur, SIGHUP)) {
        xcp__log(XCP__LOG_INFO, "pool: restarting the daemon");
        kill(getpid(), SIGHUP);
    }
}

static _Thread_local bool tls_client;

bool xcp__pool_set_client(bool client)
{
    bool was = tls_client;

    tls_client = client;
    return was;
}

/* ---- epochs (pool.other_config:xcp_pool_epochs, "E:S E:S ...") ---------- */

/* The epoch of transaction seq by the history hist (engine lock held):
 * that of the last entry starting at or before it; before the first
 * entry, 1 when the history is whole, 0 (unknown) when it was trimmed. */
static uint64_t epoch_at(const char *hist, uint64_t seq)
{
    uint64_t e = 0, s, found = 0;
    size_t n = 0;
    int used;

    while (hist && sscanf(hist, " %" SCNu64 ":%" SCNu64 "%n", &e, &s,
                          &used) == 2) {
        if (s <= seq)
            found = e;
        n++;
        hist += used;
    }
    if (found)
        return found;
    return n >= EPOCHS_MAX ? 0 : 1;
}

static const char *epochs_of(xcp__engine *e)
{
    xcp__obj *pool = xcp__db_get_cls(e->db, C(pool), e->pool);

    return pool ? xcp__obj_map_str(pool, F(pool, other_config), EPOCHS_KEY)
                : NULL;
}

/* The host row of corosync node id (engine lock held), or NULL. */
static xcp__obj *host_of_node(xcp__engine *e, uint32_t nodeid)
{
    size_t i, n;
    xcp__obj *const *hosts = xcp__db_all(e->db, C(host), &n);
    char id[16];

    snprintf(id, sizeof(id), "%u", nodeid);
    for (i = 0; i < n; i++) {
        const char *v = xcp__obj_map_str(hosts[i], F(host, other_config),
                                         NODEID_KEY);
        if (v && strcmp(v, id) == 0)
            return hosts[i];
    }
    return NULL;
}

/* This host's XenAPI address: its row's (by node id) when it has one, else
 * the first IPv4 address of an interface other than lo (a harness host
 * whose database is a copy of another's). */
static void own_address(xcp__pool *p, char *out, size_t len)
{
    xcp__obj *h = host_of_node(p->e, p->me);
    struct ifaddrs *ifa, *i;

    out[0] = '\0';
    if (h && *xcp__obj_str(h, F(host, address))) {
        snprintf(out, len, "%s", xcp__obj_str(h, F(host, address)));
        return;
    }
    if (getifaddrs(&ifa) < 0)
        return;
    for (i = ifa; i && !out[0]; i = i->ifa_next)
        if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
            strcmp(i->ifa_name, "lo") != 0 &&
            !inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr,
                       out, (socklen_t)len))
            out[0] = '\0';
    freeifaddrs(ifa);
}

static uint64_t epoch_file_read(const char *dir)
{
    char path[PATH_MAX], buf[32] = "";
    FILE *f;

    snprintf(path, sizeof(path), "%s/pool-epoch", dir);
    if (!(f = fopen(path, "r")))
        return 0;
    if (!fgets(buf, sizeof(buf), f))
        buf[0] = '\0';
    fclose(f);
    return strtoull(buf, NULL, 10);
}

/* ---- the hook (engine lock held) ---------------------------------------- */

static int hook_prepare(void *arg)
{
    xcp__pool *p = arg;
    xcp__cluster_quorum q;
    char addr[256];

    pthread_mutex_lock(&p->mu);
    /* A member's own writes run on the coordinator (hook_forward); a
     * client's go there themselves (design §7, as XAPI). */
    if (p->member) {
        snprintf(addr, sizeof(addr), "%s", p->coordinator);
        pthread_mutex_unlock(&p->mu);
        return tls_client ? XCP__ERR_HOST_IS_SLAVE(addr)
                          : XCP__DB_REPL_FORWARD;
    }
    if (p->handing) {
        /* Handing over: the next coordinator is the one to write to. */
        snprintf(addr, sizeof(addr), "%s", p->handing_addr);
        pthread_mutex_unlock(&p->mu);
        return XCP__ERR_HOST_IS_SLAVE(addr);
    }
    if (p->broken) {
        pthread_mutex_unlock(&p->mu);
        return xcp__internal("this coordinator's journal is ahead of the "
                             "pool (a record could not be sent): writes "
                             "wait for a restart and catch-up");
    }
    /* Until a round of states confirms this coordinator and its epoch's
     * first record is out (made by the dispatch thread), no write; nor
     * between a change of the group that brought members in and the
     * round that follows it (a coordinator whose partition heals may be
     * deposed by it). */
    if ((!p->ready && !(p->first_due && p->running &&
                        pthread_equal(pthread_self(), p->thr))) ||
        !cl.writable(p->r) ||
        (!cl.quorate(p->r) &&
         (cl.quorum_get(&q, NULL) < 0 || !q.quorate))) {
        pthread_mutex_unlock(&p->mu);
        return not_quorate(p);
    }
    return 0; /* mu stays held until submit or cancel */
}

static void hook_cancel(void *arg)
{
    xcp__pool *p = arg;

    pthread_mutex_unlock(&p->mu);
}

static int hook_submit(void *arg, uint64_t seq, uint64_t gen,
                       const char *body, size_t len)
{
    xcp__pool *p = arg;
    xcp__cluster_err err = {""};
    uint64_t got = 0;
    int rc;

    rc = cl.submit(p->r, gen, body, len, &got, &err);
    if (rc == 0 && got == seq) {
        if (p->pn == p->pcap) {
            /* grow the ring, keeping its order */
            size_t cap = p->pcap ? p->pcap * 2 : 64, i;
            struct pend *n = malloc(cap * sizeof(*n));
            if (n) {
                for (i = 0; i < p->pn; i++)
                    n[i] = p->pend[(p->phead + i) % p->pcap];
                free(p->pend);
                p->pend = n;
                p->pcap = cap;
                p->phead = 0;
            }
        }
        if (p->pn < p->pcap) {
            p->pend[(p->phead + p->pn) % p->pcap] = (struct pend){seq, gen};
            p->pn++;
        }
        tls_seq = seq;
        tls_pool = p;
        pthread_mutex_unlock(&p->mu);
        if (touches_hosts(body, len))
            conf_refresh(p, true);
        return 0;
    }
    /* The line is in our journal but not in the pool's order: later seqs
     * would not line up. Stop writing until a catch-up (design §5.1). */
    p->broken = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    xcp__log(XCP__LOG_ERR, "pool: transaction %" PRIu64 " written but not "
             "replicated (%s): refusing writes until restarted",
             seq, rc < 0 ? err.msg : "sequence numbers disagree");
    if (rc == -EROFS)
        return not_quorate(p);
    return xcp__internal("transaction %" PRIu64 " is written here but could "
                         "not be sent to the pool: %s", seq,
                         rc < 0 ? err.msg : "sequence numbers disagree");
}

/* ---- a member's writes, through the coordinator (design §7) ------------ */

/* Log in to the coordinator with the pool secret (rpc_mu held). */
static int coord_open(xcp__pool *p)
{
    xcp_remote_options o;
    xcp_value args[2];
    char secret[65], uri[300];
    int rc;

    if (p->cs)
        return 0;
    if ((rc = xcp__pool_secret_read(p->e->state_dir, secret)) < 0)
        return rc;
    /* The harness's hosts serve XenAPI over HTTP on port 80. */
    snprintf(uri, sizeof(uri), "http://%s", p->coordinator);
    memset(&o, 0, sizeof(o));
    o.version = XCP_REMOTE_OPTIONS_VERSION;
    o.uri = uri;
    o.connect_timeout_ms = 5000;
    o.timeout_ms = WAIT_MS;
    memset(args, 0, sizeof(args));
    if (xcp_value_set_string(&args[0], p->e->host) < 0 ||
        xcp_value_set_string(&args[1], secret) < 0)
        rc = xcp__oom();
    else
        rc = xcp__session_open_remote_login(&p->cs, &o,
                                            "session.slave_login", 2, args);
    xcp_value_dispose(&args[0]);
    xcp_value_dispose(&args[1]);
    memset(secret, 0, sizeof(secret));
    return rc;
}

int xcp__pool_coord_call(xcp__pool *p, const char *method, size_t nargs,
                         const xcp_value *args, xcp_value *result)
{
    int rc, tries;

    pthread_mutex_lock(&p->rpc_mu);
    for (tries = 0;; tries++) {
        const xcp_error *x;
        if ((rc = coord_open(p)) < 0)
            break;
        rc = xcp_call(p->cs, result, method, nargs, args);
        x = xcp_error_last();
        /* The coordinator restarted (sessions are volatile) or the
         * connection went: log in again, once. Nothing ran there. */
        if (rc == 0 || tries > 0 || !x ||
            (strcmp(x->name, "SESSION_INVALID") != 0 &&
             strcmp(x->name, "CONNECTION_FAILED") != 0))
            break;
        xcp_session_close(p->cs);
        p->cs = NULL;
    }
    pthread_mutex_unlock(&p->rpc_mu);
    return rc;
}

/* Wait until this replica holds seq (mu not held). */
static int wait_applied(xcp__pool *p, uint64_t seq)
{
    struct timespec ts;
    int rc = 0;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&p->mu);
    while (p->applied < seq && rc == 0) {
        if (p->broken)
            rc = -1;
        else if (pthread_cond_timedwait(&p->cv, &p->mu, &ts) == ETIMEDOUT)
            rc = -1;
    }
    pthread_mutex_unlock(&p->mu);
    if (rc < 0) {
        char s[24];
        snprintf(s, sizeof(s), "%" PRIu64, seq);
        /* Committed by the pool, not yet here: the change is made. */
        return XCP__ERR_POOL_NOT_QUORATE(p->coordinator, "?", s);
    }
    return 0;
}

int xcp__pool_wait_applied(xcp__pool *p, uint64_t seq)
{
    return wait_applied(p, seq);
}

/* The hook's forward: engine lock held on entry and on return, dropped
 * for the call (the dispatch thread needs it to apply the record). */
static int hook_forward(void *arg, const char *body, size_t len)
{
    xcp__pool *p = arg;
    xcp_value a, res;
    uint64_t seq = 0;
    int rc;

    a.kind = XCP_VAL_NONE;
    res.kind = XCP_VAL_NONE;
    if (!(a.u.s = xcp__malloc(len + 1)))
        return xcp__oom();
    memcpy(a.u.s, body, len);
    a.u.s[len] = '\0';
    a.kind = XCP_VAL_STRING;
    pthread_mutex_unlock(&p->e->lock);
    rc = xcp__pool_coord_call(p, "pool.member_commit", 1, &a, &res);
    if (rc == 0) {
        if (res.kind == XCP_VAL_INT && res.u.i > 0)
            seq = (uint64_t)res.u.i;
        else
            rc = xcp__internal("pool.member_commit gave no sequence "
                               "number");
    }
    if (rc == 0)
        rc = wait_applied(p, seq);
    xcp_value_dispose(&a);
    xcp_value_dispose(&res);
    pthread_mutex_lock(&p->e->lock);
    return rc;
}

static const xcp__db_repl hook = {hook_prepare, hook_submit, hook_cancel,
                                  hook_forward};

/* ---- the dispatch thread ------------------------------------------------- */

/* From inside a dispatch (mu held): the engine lock, taken in order. */
static void engine_lock(xcp__pool *p)
{
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_lock(&p->e->lock);
    pthread_mutex_lock(&p->mu);
}

/* Member: a record in the pool's order (mu held, engine lock not). */
static int on_apply(void *arg, const xcp__cluster_record *rec)
{
    xcp__pool *p = arg;
    int rc;

    engine_lock(p);
    rc = xcp__db_apply(p->e->db, rec->seq, rec->body, rec->len);
    if (rc == 0 && !p->ejected && touches_hosts(rec->body, rec->len)) {
        if (!xcp__db_get(p->e->db, p->e->host)) {
            /* pool.eject (or host.destroy) of this host: it leaves the
             * pool and starts afresh as a pool of its own. */
            p->ejected = true;
            xcp__log(XCP__LOG_INFO, "pool: this host was ejected from "
                     "the pool");
            if (xcp__pool_reset_stage(p->e->state_dir) < 0)
                xcp_error_clear();
            xcp__pool_request_restart();
        } else {
            conf_refresh(p, true);
        }
    }
    pthread_mutex_unlock(&p->e->lock);
    if (rc == 0) {
        p->applied = rec->seq;
        pthread_cond_broadcast(&p->cv);
    }
    if (rc < 0) {
        const xcp_error *x = xcp_error_last();
        xcp__log(XCP__LOG_ERR, "pool: record %" PRIu64 " not applied: %s",
                 rec->seq, x && x->nparams ? x->params[0] : "?");
        xcp_error_clear();
        p->broken = true;
    }
    return rc;
}

/* Member: the coordinator's database replaces ours (state transfer). */
static int on_install(void *arg, uint64_t seq, uint64_t last_epoch,
                      uint64_t gen, const char *snap, size_t len)
{
    xcp__pool *p = arg;
    int rc;

    engine_lock(p);
    rc = xcp__db_install(p->e->db, p->e->state_dir, snap, len, seq);
    pthread_mutex_unlock(&p->e->lock);
    if (rc < 0) {
        const xcp_error *x = xcp_error_last();
        xcp__log(XCP__LOG_ERR, "pool: snapshot at %" PRIu64 " not "
                 "installed: %s", seq, x && x->nparams ? x->params[0] : "?");
        xcp_error_clear();
        p->broken = true;
        return rc;
    }
    xcp__log(XCP__LOG_INFO, "pool: replica replaced by the coordinator's "
             "database at seq %" PRIu64 " (epoch %" PRIu64 ", generation %"
             PRIu64 ", %zu bytes)", seq, last_epoch, gen, len);
    return 0;
}

/* A round of states decided (mu held, engine lock not): the pool-role
 * file, the epoch file, and what the dispatch thread must do next. */
static void on_elected(void *arg, uint32_t coordinator, uint64_t epoch,
                       const char *address)
{
    xcp__pool *p = arg;
    bool me = coordinator == p->me, was_member = p->member;
    char line[320], num[32];

    if (epoch > p->epoch) {
        /* Before anything of the new epoch is sent: a restart must never
         * reuse it. */
        snprintf(num, sizeof(num), "%" PRIu64 "\n", epoch);
        if (write_atomic(p->e->state_dir, "pool-epoch", num) < 0) {
            xcp__log(XCP__LOG_ERR, "pool: %s", xcp_error_last()->params[0]);
            xcp_error_clear();
        }
    }
    if (me) {
        if (was_member || p->coord_nodeid != coordinator ||
            epoch != p->epoch)
            xcp__log(XCP__LOG_INFO, "pool: this host (node %u) is the "
                     "coordinator of epoch %" PRIu64, p->me, epoch);
        p->first_due = p->first_due || epoch != p->epoch || was_member;
        p->ready = !p->first_due;
        snprintf(line, sizeof(line), "coordinator %u", p->me);
        p->member = false;
        /* A round follows every change of the group: who is live may
         * have changed. */
        p->live_due = true;
    } else {
        if (address && *address)
            snprintf(p->coordinator, sizeof(p->coordinator), "%s", address);
        if (!was_member || p->coord_nodeid != coordinator)
            xcp__log(XCP__LOG_INFO, "pool: node %u (%s) is the coordinator "
                     "of epoch %" PRIu64 "; this host is a member", coordinator,
                     p->coordinator, epoch);
        p->member = true;
        p->ready = false;
        p->first_due = p->startup_due = false;
        snprintf(line, sizeof(line), "member %s %u", p->coordinator,
                 coordinator);
    }
    p->coord_nodeid = coordinator;
    p->epoch = epoch;
    p->handing = false;
    p->decisions++;
    {
        char cur[320];
        role_read(p->e->state_dir, cur, sizeof(cur));
        cur[strcspn(cur, "\n")] = '\0';
        if (strcmp(cur, line) != 0 &&
            xcp__pool_role_write(p->e->state_dir, line) < 0) {
            xcp__log(XCP__LOG_ERR, "pool: %s", xcp_error_last()->params[0]);
            xcp_error_clear();
        }
    }
    /* Calls of a deposed coordinator waiting for acks fail now. */
    pthread_cond_broadcast(&p->cv);
}

/* The first record of this coordinator's epoch (engine lock held, mu
 * not): pool.master := its host when a host row carries its node id,
 * and the epoch's first seq in the history. */
static int first_record(xcp__pool *p)
{
    xcp__engine *e = p->e;
    xcp__obj *pool = xcp__db_get_cls(e->db, C(pool), e->pool);
    xcp__obj *host = host_of_node(e, p->me);
    const char *old = epochs_of(e);
    xcp__buf hist = {0};
    const char *q;
    size_t n = 0;
    int rc;

    if (!pool)
        return xcp__internal("the pool has no pool row");
    /* The last EPOCHS_MAX - 1 entries, then this one. */
    for (q = old; q && *q; q = strchr(q + 1, ' '))
        n++;
    for (q = old; q && *q && n >= EPOCHS_MAX; q = strchr(q + 1, ' '))
        n--;
    if (q && *q == ' ')
        q++;
    if (q && *q)
        xcp__buf_printf(&hist, "%s ", q);
    xcp__buf_printf(&hist, "%" PRIu64 ":%" PRIu64, p->epoch,
                    xcp__db_seq(e->db) + 1);
    if (hist.oom)
        return xcp__oom();
    xcp__db_begin(e->db);
    rc = xcp__db_map_put_str(e->db, pool, F(pool, other_config), EPOCHS_KEY,
                             hist.data);
    if (rc == 0 && host &&
        strcmp(xcp__obj_str(pool, F(pool, master)), host->ref) != 0)
        rc = xcp__db_set_str(e->db, pool, F(pool, master), host->ref);
    if (rc < 0)
        xcp__db_abort(e->db);
    else
        rc = xcp__db_commit(e->db);
    if (rc == 0 && host)
        snprintf(e->host, sizeof(e->host), "%s", host->ref);
    if (rc == 0 && !host)
        xcp__log(XCP__LOG_WARN, "pool: no host row carries other_config:"
                 NODEID_KEY "=%u: pool.master stays %s", p->me,
                 xcp__obj_str(pool, F(pool, master)));
    xcp__buf_free(&hist);
    tls_seq = 0;
    return rc;
}

struct answer {
    xcp__pool *p;
    const char *hist;
    xcp__buf out;
    char *rec;
    size_t cap;
};

static int add_record(void *arg, uint64_t seq, const char *body, size_t len)
{
    struct answer *a = arg;
    xcp__cluster_record r = {epoch_at(a->hist, seq), seq, 0, body, len};
    ssize_t n;

    r.gen = strtoull(body + 2, NULL, 10);
    if (XCP__CLUSTER_RECORD_HDR_MAX + len > a->cap) {
        char *b = realloc(a->rec, XCP__CLUSTER_RECORD_HDR_MAX + len);
        if (!b)
            return xcp__oom();
        a->rec = b;
        a->cap = XCP__CLUSTER_RECORD_HDR_MAX + len;
    }
    if ((n = cl.record_encode(&r, a->rec, a->cap)) < 0)
        return xcp__internal("cannot encode record %" PRIu64, seq);
    xcp__buf_add(&a->out, a->rec, (size_t)n);
    return a->out.oom ? xcp__oom() : 0;
}

/* Coordinator: answer one catch-up request (engine lock held, mu not):
 * the records that follow the member's last when its record there is of
 * the same epoch as ours and our journal still has them; else our whole
 * database. */
static void answer(xcp__pool *p, uint32_t to, uint64_t le, uint64_t last)
{
    xcp__db *db = p->e->db;
    struct answer a = {p, epochs_of(p->e), {0}, NULL, 0};
    uint64_t seq = xcp__db_seq(db), ours = epoch_at(a.hist, last);
    xcp__cluster_err err = {""};
    char kind = 'C';
    int rc = 1;
    int64_t t0 = xcp__now_ms();

    if (last <= seq && (last == 0 || (ours != 0 && ours == le)))
        rc = xcp__db_records_after(db, last, add_record, &a);
    if (rc != 0) {
        if (rc < 0) {
            xcp__log(XCP__LOG_WARN, "pool: node %u's catch-up: %s", to,
                     xcp_error_last()->params[0]);
            xcp_error_clear();
        }
        kind = 'T';
        a.out.len = 0;
        if (xcp__db_snapshot_text(db, &a.out) < 0) {
            xcp__log(XCP__LOG_ERR, "pool: no snapshot for node %u: %s", to,
                     xcp_error_last()->params[0]);
            xcp_error_clear();
            goto out;
        }
    }
    pthread_mutex_lock(&p->mu);
    rc = cl.answer(p->r, to, kind, seq, epoch_at(a.hist, seq),
                   xcp__db_generation(db), a.out.data ? a.out.data : "",
                   a.out.len, &err);
    pthread_mutex_unlock(&p->mu);
    if (rc < 0)
        xcp__log(XCP__LOG_ERR, "pool: cannot answer node %u: %s", to,
                 err.msg);
    else
        xcp__log(XCP__LOG_INFO, "pool: node %u (at seq %" PRIu64 " of epoch %"
                 PRIu64 ") caught up to %" PRIu64 " by %s (%zu bytes, %lld "
                 "ms)", to, last, le, seq, kind == 'C' ? "records" :
                 "snapshot", a.out.len, (long long)(xcp__now_ms() - t0));
out:
    xcp__buf_free(&a.out);
    free(a.rec);
}

/* Coordinator (engine lock held, mu not): host_metrics.live of every
 * host with a node id follows the group: true while its xcpd is in it
 * (this host always), false once it left (XAPI's master marks a host
 * whose heartbeat stopped the same way). Only changes are written, one
 * transaction; a host table without node ids (a pool formed by hand) is
 * left alone. VMs resident on a host that left stay as they are, as XAPI
 * leaves them without HA. Costs the number of hosts, once per change of
 * the group. */
static int live_refresh(xcp__pool *p)
{
    xcp__engine *e = p->e;
    size_t i, n;
    xcp__obj *const *hosts;
    int rc = 0, changed = 0;

    xcp__db_begin(e->db);
    hosts = xcp__db_all(e->db, C(host), &n);
    for (i = 0; rc == 0 && i < n; i++) {
        uint32_t id = xcp__pool_host_nodeid(hosts[i]);
        xcp__obj *m = xcp__db_get_cls(e->db, C(host_metrics),
                                      xcp__obj_str(hosts[i], F(host, metrics)));
        bool live;
        if (id == 0 || !m)
            continue;
        live = id == p->me || xcp__pool_host_live(p, id);
        if (xcp__obj_bool(m, F(host_metrics, live)) == live)
            continue;
        xcp__log(live ? XCP__LOG_INFO : XCP__LOG_WARN, "pool: host %s (node "
                 "%u) is %s", hosts[i]->ref, id,
                 live ? "live again" : "no longer live");
        rc = xcp__db_set_bool(e->db, m, F(host_metrics, live), live);
        if (rc == 0)
            rc = xcp__db_set_time(e->db, m, F(host_metrics, last_updated),
                                  xcp__now());
        changed++;
    }
    if (rc < 0 || changed == 0)
        xcp__db_abort(e->db);
    else
        rc = xcp__db_commit(e->db);
    tls_seq = 0;
    return rc;
}

/* The coordinator's work that needs the engine lock (mu not held). */
static void coordinator_work(xcp__pool *p)
{
    uint32_t to;
    uint64_t le, last;
    int rc;

    pthread_mutex_lock(&p->e->lock);
    pthread_mutex_lock(&p->mu);
    if (p->first_due && !p->member) {
        pthread_mutex_unlock(&p->mu);
        rc = first_record(p);
        pthread_mutex_lock(&p->mu);
        if (rc < 0) {
            xcp__log(XCP__LOG_ERR, "pool: the first record of epoch %" PRIu64
                     " failed: %s", p->epoch, xcp_error_last()->name);
            xcp_error_clear();
        } else if (!p->member) {
            p->first_due = false;
            p->ready = true;
        }
    }
    if (p->startup_due && p->ready && !p->member) {
        p->startup_due = false;
        pthread_mutex_unlock(&p->mu);
        if (xcp__engine_startup_writes(p->e) < 0) {
            xcp__log(XCP__LOG_ERR, "pool: start-up writes failed: %s",
                     xcp_error_last()->name);
            xcp_error_clear();
        }
        tls_seq = 0;
        pthread_mutex_lock(&p->mu);
    }
    if (p->live_due && p->ready && !p->member) {
        p->live_due = false;
        pthread_mutex_unlock(&p->mu);
        if (live_refresh(p) < 0) {
            xcp__log(XCP__LOG_WARN, "pool: host_metrics.live not updated: "
                     "%s", xcp_error_last()->name);
            xcp_error_clear();
        }
        pthread_mutex_lock(&p->mu);
    }
    while (p->ready && !p->member &&
           cl.next_request(p->r, &to, &le, &last) == 1) {
        pthread_mutex_unlock(&p->mu);
        answer(p, to, le, last);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_unlock(&p->e->lock);
}

static void *dispatch_main(void *arg)
{
    xcp__pool *p = arg;
    struct pollfd pfd = {cl.fd(p->r), POLLIN, 0};
    xcp__cluster_err err = {""};
    uint32_t to;
    uint64_t le, last;
    bool work;

    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        pthread_mutex_unlock(&p->mu);
        /* The timeout lets acks go out and quorum be read again. */
        poll(&pfd, 1, 100);
        pthread_mutex_lock(&p->mu);
        if (p->stop)
            break;
        if (cl.dispatch(p->r, 0, &err) < 0) {
            xcp__log(XCP__LOG_ERR, "pool: %s", err.msg);
            p->broken = true;
            pthread_cond_broadcast(&p->cv);
            pthread_mutex_unlock(&p->mu);
            poll(NULL, 0, 1000);
            pthread_mutex_lock(&p->mu);
            continue;
        }
        if (cl.committed(p->r) != p->committed ||
            !cl.quorate(p->r)) {
            p->committed = cl.committed(p->r);
            pthread_cond_broadcast(&p->cv);
        }
        if (p->pn > 0 && (p->member || p->pend[p->phead].seq <= p->committed)) {
            /* Held by a quorum (or moot: deposed): event.from may show
             * them; its waiters wake. */
            uint64_t from = p->pend[p->phead].gen;
            while (p->pn > 0 &&
                   (p->member || p->pend[p->phead].seq <= p->committed)) {
                p->phead = (p->phead + 1) % p->pcap;
                p->pn--;
            }
            pthread_mutex_unlock(&p->mu);
            pthread_mutex_lock(&p->e->lock);
            xcp__events_committed(p->e, from);
            pthread_cond_broadcast(&p->e->changed);
            pthread_mutex_unlock(&p->e->lock);
            pthread_mutex_lock(&p->mu);
        }
        work = !p->member &&
               (p->first_due || (p->startup_due && p->ready) ||
                (p->live_due && p->ready));
        if (!work && !p->member && p->ready &&
            cl.next_request(p->r, &to, &le, &last) == 1) {
            /* Peeked: serve it with the others. */
            pthread_mutex_unlock(&p->mu);
            pthread_mutex_lock(&p->e->lock);
            answer(p, to, le, last);
            pthread_mutex_unlock(&p->e->lock);
            pthread_mutex_lock(&p->mu);
            work = true;
        }
        if (work) {
            pthread_mutex_unlock(&p->mu);
            coordinator_work(p);
            pthread_mutex_lock(&p->mu);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

uint64_t xcp__pool_visible(xcp__pool *p, uint64_t dbgen)
{
    uint64_t v = dbgen;

    if (!p)
        return dbgen;
    pthread_mutex_lock(&p->mu);
    if (!p->member && p->pn > 0 && p->pend[p->phead].gen - 1 < v)
        v = p->pend[p->phead].gen - 1;
    pthread_mutex_unlock(&p->mu);
    return v;
}

/* ---- hand-over (pool.designate_new_master, design §5.2) ----------------- */

/* Wait on p->cv (mu held) for a change, or 100 ms. */
static void wait_tick(xcp__pool *p)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 100 * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&p->cv, &p->mu, &ts);
}

int xcp__pool_designate(xcp__pool *p, uint32_t nodeid, const char *host_ref,
                        const char *addr)
{
    xcp__cluster_err err = {""};
    int64_t t0 = xcp__now_ms(), end = t0 + WAIT_MS;
    uint64_t epoch, last = 0;
    bool sent = false;
    int rc = 0;

    pthread_mutex_lock(&p->mu);
    if (p->member) {
        char coord[256];
        snprintf(coord, sizeof(coord), "%s", p->coordinator);
        pthread_mutex_unlock(&p->mu);
        return XCP__ERR_HOST_IS_SLAVE(coord);
    }
    if (p->handing) {
        pthread_mutex_unlock(&p->mu);
        return 1;
    }
    if (!p->ready || p->broken || !cl.quorate(p->r)) {
        pthread_mutex_unlock(&p->mu);
        return not_quorate(p);
    }
    if (nodeid == p->me || !cl.has_member(p->r, nodeid)) {
        pthread_mutex_unlock(&p->mu);
        return XCP__ERR_CANNOT_CONTACT_HOST(host_ref);
    }
    /* No write begins from here on (hook_prepare answers HOST_IS_SLAVE
     * with the next coordinator's address); the ones sent must be held
     * by a quorum, and the next coordinator must hold them all. */
    p->handing = true;
    snprintf(p->handing_addr, sizeof(p->handing_addr), "%s", addr);
    epoch = p->epoch;
    /* The role file says at once that this host no longer writes (a
     * reader of the files never sees two coordinators; the round's
     * outcome rewrites it either way). */
    {
        char line[320];
        snprintf(line, sizeof(line), "member %s %u", addr, nodeid);
        if (xcp__pool_role_write(p->e->state_dir, line) < 0) {
            xcp__log(XCP__LOG_ERR, "pool: %s", xcp_error_last()->params[0]);
            xcp_error_clear();
        }
    }
    while (!sent) {
        struct timespec ts;
        /* A round decided meanwhile (a host joined or left) clears the
         * flag: no write is under way while mu is held, so set it again;
         * what slipped in is in last. */
        p->handing = true;
        last = cl.last(p->r);
        if (p->member || p->broken || !cl.has_member(p->r, nodeid) ||
            xcp__now_ms() >= end)
            break;
        if (p->committed >= last && cl.acked(p->r, nodeid) >= last &&
            !cl.round_open(p->r)) {
            rc = cl.handover(p->r, nodeid, &err);
            if (rc == 0)
                sent = true;
            else if (rc != -EAGAIN)
                break;
            rc = 0;
            if (sent)
                break;
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&p->cv, &p->mu, &ts);
    }
    if (!sent) {
        uint64_t acked = cl.acked(p->r, nodeid);
        char line[32];
        p->handing = false;
        snprintf(line, sizeof(line), "coordinator %u", p->me);
        if (!p->member && xcp__pool_role_write(p->e->state_dir, line) < 0) {
            xcp__log(XCP__LOG_ERR, "pool: %s", xcp_error_last()->params[0]);
            xcp_error_clear();
        }
        pthread_mutex_unlock(&p->mu);
        xcp__log(XCP__LOG_WARN, "pool: hand-over to node %u not started "
                 "(%s; it acknowledged seq %" PRIu64 " of %" PRIu64 ")",
                 nodeid, err.msg[0] ? err.msg : "not caught up in time",
                 acked, last);
        return XCP__ERR_CANNOT_CONTACT_HOST(host_ref);
    }
    xcp__log(XCP__LOG_INFO, "pool: handing epoch %" PRIu64 " over to node "
             "%u (%s) at seq %" PRIu64, epoch, nodeid, addr, last);
    /* The round the hand-over opens decides (on_elected moves the epoch
     * and clears handing). */
    while (p->handing && xcp__now_ms() < end) {
        wait_tick(p);
    }
    if (p->handing || p->coord_nodeid != nodeid) {
        uint32_t got = p->coord_nodeid;
        bool undecided = p->handing;
        pthread_mutex_unlock(&p->mu);
        if (undecided)
            xcp__log(XCP__LOG_WARN, "pool: hand-over to node %u: no "
                     "decision in %d s", nodeid, WAIT_MS / 1000);
        else
            xcp__log(XCP__LOG_WARN, "pool: hand-over to node %u: the round "
                     "chose node %u (node %u lacked a record)", nodeid, got,
                     nodeid);
        return XCP__ERR_CANNOT_CONTACT_HOST(host_ref);
    }
    pthread_mutex_unlock(&p->mu);
    xcp__log(XCP__LOG_INFO, "pool: node %u is the coordinator of epoch %"
             PRIu64 " (hand-over in %lld ms)", nodeid, p->epoch,
             (long long)(xcp__now_ms() - t0));
    return 0;
}

/* ---- emergencies (design §5.3) -------------------------------------------- */

/* Wait (mu held) until a round decided after decisions d, or 30 s. */
static bool wait_decision(xcp__pool *p, uint64_t d)
{
    int64_t end = xcp__now_ms() + WAIT_MS;

    while (p->decisions == d && xcp__now_ms() < end) {
        wait_tick(p);
    }
    return p->decisions != d;
}

int xcp__pool_emergency_master(xcp__pool *p)
{
    xcp__cluster_err err = {""};
    char why[400], coord[256];
    uint64_t d;
    uint32_t got;
    int rc;

    pthread_mutex_lock(&p->mu);
    if (!p->member) {
        pthread_mutex_unlock(&p->mu);
        return 0;
    }
    d = p->decisions;
    snprintf(coord, sizeof(coord), "%s", p->coordinator);
    rc = cl.emergency(p->r, &err);
    if (rc == -EALREADY) {
        pthread_mutex_unlock(&p->mu);
        return 0;
    }
    if (rc == -EBUSY) {
        pthread_mutex_unlock(&p->mu);
        snprintf(why, sizeof(why), "the coordinator %s is in this host's "
                 "partition of the pool (pool.designate_new_master hands "
                 "its role over)", coord);
        return XCP__ERR_OPERATION_NOT_ALLOWED(why);
    }
    if (rc == -EROFS) {
        pthread_mutex_unlock(&p->mu);
        return not_quorate(p);
    }
    if (rc < 0) {
        pthread_mutex_unlock(&p->mu);
        return xcp__internal("cannot propose this host to the pool: %s",
                             err.msg);
    }
    xcp__log(XCP__LOG_INFO, "pool: emergency: node %u proposes itself as "
             "the coordinator (%s is not in the group)", p->me, coord);
    if (!wait_decision(p, d)) {
        pthread_mutex_unlock(&p->mu);
        return not_quorate(p);
    }
    got = p->coord_nodeid;
    snprintf(coord, sizeof(coord), "%s", p->coordinator);
    pthread_mutex_unlock(&p->mu);
    if (got == p->me)
        return 0;
    snprintf(why, sizeof(why), "node %u (%s) holds a longer log than this "
             "host and was elected the coordinator; this host follows it",
             got, coord);
    return XCP__ERR_OPERATION_NOT_ALLOWED(why);
}

int xcp__pool_reset_master(xcp__pool *p, const char *addr, uint32_t nodeid)
{
    char why[400], line[320];
    int rc = 0;

    pthread_mutex_lock(&p->mu);
    if (!p->member) {
        bool self = strcmp(addr, p->self_addr) == 0;
        pthread_mutex_unlock(&p->mu);
        if (self)
            return 0;
        snprintf(why, sizeof(why), "this host is the coordinator of its "
                 "partition; it follows no other (pool.designate_new_master "
                 "hands its role over)");
        return XCP__ERR_OPERATION_NOT_ALLOWED(why);
    }
    if (strcmp(addr, p->coordinator) == 0) {
        pthread_mutex_unlock(&p->mu);
        return 0;
    }
    if (cl.ready(p->r) && cl.has_member(p->r, p->coord_nodeid)) {
        snprintf(why, sizeof(why), "this host follows %s, the coordinator "
                 "its partition of the pool decided", p->coordinator);
        pthread_mutex_unlock(&p->mu);
        return XCP__ERR_OPERATION_NOT_ALLOWED(why);
    }
    /* No coordinator in the group: clients are sent to addr, and the
     * role file says so; the group's next round decides as ever. */
    snprintf(p->coordinator, sizeof(p->coordinator), "%s", addr);
    p->coord_nodeid = nodeid;
    snprintf(line, sizeof(line), "member %s %u", addr, nodeid);
    rc = xcp__pool_role_write(p->e->state_dir, line);
    pthread_mutex_unlock(&p->mu);
    if (rc == 0)
        xcp__log(XCP__LOG_INFO, "pool: emergency: this host's coordinator "
                 "is %s (node %u)", addr, nodeid);
    return rc;
}

/* ---- open, wait, close --------------------------------------------------- */

static int read_role(xcp__pool *p, const char *path, bool *pooled)
{
    char buf[512] = "", addr[256];
    unsigned nodeid;
    FILE *f = fopen(path, "r");

    *pooled = false;
    if (!f)
        return errno == ENOENT ? 0
                               : xcp__internal("cannot read %s: %s", path,
                                               strerror(errno));
    if (!fgets(buf, sizeof(buf), f))
        buf[0] = '\0';
    fclose(f);
    buf[strcspn(buf, "\n")] = '\0';
    if (buf[0] == '\0' || strcmp(buf, "none") == 0)
        return 0;
    if (sscanf(buf, "coordinator %u", &nodeid) == 1 && nodeid > 0) {
        p->member = false;
    } else if (sscanf(buf, "member %255s %u", addr, &nodeid) == 2 &&
               nodeid > 0) {
        p->member = true;
        snprintf(p->coordinator, sizeof(p->coordinator), "%s", addr);
    } else {
        return xcp__internal("%s: '%s' is not 'none', 'coordinator "
                             "<nodeid>' or 'member <address> <nodeid>'",
                             path, buf);
    }
    p->coord_nodeid = nodeid;
    *pooled = true;
    return 0;
}

static int pool_open(xcp__pool **out, struct xcp__engine *e, bool locked)
{
    xcp__repl_callbacks cb = {on_apply, on_elected, on_install};
    xcp__cluster_err err = {""};
    char path[PATH_MAX], group[128];
    xcp__pool *p;
    xcp__obj *pool;
    uint64_t last_epoch, fe;
    bool pooled;
    int rc, tries;

    *out = NULL;
    if (!(p = xcp__calloc(1, sizeof(*p))))
        return xcp__oom();
    snprintf(path, sizeof(path), "%s/pool-role", e->state_dir);
    if ((rc = read_role(p, path, &pooled)) < 0 || !pooled) {
        free(p);
        return rc;
    }
    if ((rc = cluster_load()) < 0) {
        free(p);
        return rc;
    }
    p->e = e;
    pthread_mutex_init(&p->rpc_mu, NULL);
    /* A coordinator at start-up makes its start-up writes once a round
     * of states confirms it (engine.c made none). */
    p->startup_due = !p->member;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (!locked)
        pthread_mutex_lock(&e->lock);
    pool = xcp__db_get_cls(e->db, C(pool), e->pool);
    snprintf(group, sizeof(group), "xcp-db-%s",
             pool ? xcp__obj_uuid(pool) : "");
    /* (epoch, seq): the journal's seq is the pool's (design §2); the
     * epoch of the last record is in the replica's history, the epoch
     * this host last took part in in its pool-epoch file. */
    last_epoch = epoch_at(epochs_of(e), xcp__db_seq(e->db));
    if (last_epoch == 0)
        last_epoch = 1;
    fe = epoch_file_read(e->state_dir);
    p->epoch = fe > last_epoch ? fe : last_epoch;
    if ((rc = corosync_up(p)) < 0) {
        if (!locked)
            pthread_mutex_unlock(&e->lock);
        goto fail;
    }
    /* A corosync just started takes a moment to take clients. */
    for (tries = p->coro ? 100 : 1; tries > 0; tries--) {
        rc = cl.open(&p->r, group, p->coord_nodeid, p->epoch,
                     xcp__db_seq(e->db), last_epoch, &cb, p, &err);
        if (rc == 0 || tries == 1)
            break;
        poll(NULL, 0, 100);
    }
    if (rc == 0) {
        p->me = cl.nodeid(p->r);
        own_address(p, p->self_addr, sizeof(p->self_addr));
        cl.set_address(p->r, p->self_addr);
        if (!p->member && p->me != p->coord_nodeid) {
            cl.close(p->r);
            rc = xcp__internal("%s says coordinator %u, but this is "
                               "corosync node %u", path, p->coord_nodeid,
                               p->me);
        } else {
            p->committed = cl.committed(p->r);
            p->applied = xcp__db_seq(e->db);
            xcp__db_set_repl(e->db, &hook, p);
        }
    } else {
        rc = xcp__internal("cannot join the pool's group %s: %s", group,
                           err.msg);
    }
    if (!locked)
        pthread_mutex_unlock(&e->lock);
    if (rc < 0)
        goto fail;
    pthread_mutex_lock(&p->mu);
    if (pthread_create(&p->thr, NULL, dispatch_main, p) != 0) {
        pthread_mutex_unlock(&p->mu);
        if (!locked)
            pthread_mutex_lock(&e->lock);
        xcp__db_set_repl(e->db, NULL, NULL);
        if (!locked)
            pthread_mutex_unlock(&e->lock);
        cl.close(p->r);
        rc = xcp__internal("cannot start the pool's dispatch thread");
        goto fail;
    }
    p->running = true;
    pthread_mutex_unlock(&p->mu);
    xcp__log(XCP__LOG_INFO, "pool: %s of group %s (coordinator node %u, "
             "this host node %u at %s), at seq %" PRIu64 " of epoch %" PRIu64,
             p->member ? "member" : "coordinator", group, p->coord_nodeid,
             p->me, p->self_addr, xcp__db_seq(e->db), last_epoch);
    *out = p;
    return 0;
fail:
    if (p->coro)
        cl.coro_stop(p->coro, false);
    free(p->conf);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
    return rc;
}

int xcp__pool_open(xcp__pool **out, struct xcp__engine *e)
{
    return pool_open(out, e, false);
}

int xcp__pool_open_locked(xcp__pool **out, struct xcp__engine *e)
{
    return pool_open(out, e, true);
}

int xcp__pool_wait(xcp__pool *p)
{
    uint64_t seq = tls_seq;
    struct timespec ts;
    int rc = 0;

    if (!p || seq == 0 || tls_pool != p)
        return 0;
    tls_seq = 0;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&p->mu);
    while (p->committed < seq) {
        if (p->broken || p->member || !cl.quorate(p->r) ||
            pthread_cond_timedwait(&p->cv, &p->mu, &ts) == ETIMEDOUT) {
            /* Written here, maybe on others: a failover decides (§3). */
            if (p->committed >= seq && !p->member)
                break;
            pthread_mutex_unlock(&p->mu);
            return not_quorate(p);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

bool xcp__pool_wait_joined(xcp__pool *p, int timeout_ms)
{
    int64_t end = xcp__now_ms() + timeout_ms;
    bool joined = false;

    while (p && !joined) {
        pthread_mutex_lock(&p->mu);
        joined = cl.members(p->r) > 0;
        pthread_mutex_unlock(&p->mu);
        if (joined || xcp__now_ms() >= end)
            break;
        poll(NULL, 0, 20);
    }
    return joined;
}

void xcp__pool_power_off(xcp__pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->power_off = true;
    pthread_mutex_unlock(&p->mu);
}

unsigned xcp__pool_nodeid(xcp__pool *p)
{
    return p ? (unsigned)cl.nodeid(p->r) : 0;
}

bool xcp__pool_member_of(xcp__pool *p, char *coord, size_t n)
{
    bool member;

    /* Not under mu: the dispatch thread of a member holds mu while it
     * waits for the engine lock, which callers of this may hold. The
     * role is set at open. */
    if (!p)
        return false;
    member = p->member;
    if (member && coord && n)
        snprintf(coord, n, "%s", p->coordinator);
    return member;
}

void xcp__pool_close(xcp__pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->e->lock);
    xcp__db_set_repl(p->e->db, NULL, NULL);
    pthread_mutex_unlock(&p->e->lock);
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_mutex_unlock(&p->mu);
    if (p->running)
        pthread_join(p->thr, NULL);
    cl.close(p->r);
    if (p->coro)
        /* corosync outlives the daemon (adopted at its next start),
         * unless this host left the pool or is powered off. */
        cl.coro_stop(p->coro, p->ejected || p->power_off);
    if (p->ejected) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/corosync.conf",
                 xcp__pool_corosync_dir());
        unlink(path);
        snprintf(path, sizeof(path), "%s/authkey", xcp__pool_corosync_dir());
        unlink(path);
    }
    free(p->conf);
    if (p->cs)
        xcp_session_close(p->cs);
    pthread_mutex_destroy(&p->rpc_mu);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->pend);
    free(p);
}
