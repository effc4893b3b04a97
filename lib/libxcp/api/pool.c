/*
 * pool.*: the pool's own messages and its membership (docs/design-pool.md
 * §6): pool.join / join_force on the joining host (XAPI's pre_join_checks,
 * then pool.join_member on the coordinator, then the coordinator's
 * database staged as this host's replica and the daemon restarted as a
 * member), pool.join_member on the coordinator (the joiner's own rows as
 * XAPI's update_non_vm_metadata brings them, its corosync node id, the
 * key and the pool secret, the database at a known seq), pool.eject.
 * HA answers NOT_IMPLEMENTED.
 */
#include "../engine/engine.h"
#include "../pool/pool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* The master's edition; libxcp has no licences, so none expires. */
static int license_state(xcp__ctx *c)
{
    xcp__obj *pool, *host;
    xcp_value v;
    int rc;

    if ((rc = xcp__arg_obj(c, 0, C(pool), &pool)) < 0 ||
        (rc = xcp__ref_obj(c, xcp__obj_str(pool, F(pool, master)), C(host),
                           &host)) < 0)
        return rc;
    xcp_value_set_struct(c->result);
    if ((rc = xcp_value_set_string(&v, xcp__obj_str(host, F(host,
                                                           edition)))) < 0 ||
        (rc = xcp_value_struct_add(c->result, "edition", &v)) < 0 ||
        (rc = xcp_value_set_string(&v, "never")) < 0 ||
        (rc = xcp_value_struct_add(c->result, "expiry", &v)) < 0)
        xcp_value_dispose(&v);
    return rc;
}


/* ---- membership ----------------------------------------------------------- */

/* The coordinator's address from <state>/pool-role on a member, or "". */
static void role_coordinator(const char *dir, char *out, size_t len)
{
    char path[4096], buf[512] = "", addr[256] = "";
    unsigned id;
    FILE *f;

    *out = '\0';
    snprintf(path, sizeof(path), "%s/pool-role", dir);
    if (!(f = fopen(path, "r")))
        return;
    if (fgets(buf, sizeof(buf), f) &&
        sscanf(buf, "member %255s %u", addr, &id) == 2)
        snprintf(out, len, "%s", addr);
    fclose(f);
}

static int refuse_on_member(xcp__ctx *c)
{
    char addr[256];

    if (!xcp__pool_role_member(c->e->state_dir))
        return 0;
    role_coordinator(c->e->state_dir, addr, sizeof(addr));
    return XCP__ERR_HOST_IS_SLAVE(addr);
}

static bool is_ref(const char *s)
{
    return s && *s && strcmp(s, "OpaqueRef:NULL") != 0;
}

/* Append o's creation (if it exists) to b. */
static void put_row(xcp__ctx *c, xcp__buf *b, int cls, const char *ref)
{
    xcp__obj *o = is_ref(ref) ? xcp__db_get_cls(c->db, cls, ref) : NULL;

    if (o)
        xcp__db_enc_create(b, o);
}

/* This host's own rows, as XAPI's update_non_vm_metadata brings them to
 * the pool: the host and its metrics and CPUs, its local SRs and PBDs,
 * its networks and PIFs, its control domain (journal creation ops,
 * parents first). */
static int host_metadata(xcp__ctx *c, xcp__obj *host, xcp__buf *b)
{
    xcp__obj *const *all;
    size_t n, i;

    put_row(c, b, C(host_metrics), xcp__obj_str(host, F(host, metrics)));
    all = xcp__db_all(c->db, C(PBD), &n);
    for (i = 0; i < n; i++) {
        xcp__obj *sr;
        if (strcmp(xcp__obj_str(all[i], F(PBD, host)), host->ref) ||
            !(sr = xcp__db_get_cls(c->db, C(SR),
                                   xcp__obj_str(all[i], F(PBD, SR)))) ||
            xcp__obj_bool(sr, F(SR, shared)))
            continue;
        xcp__db_enc_create(b, sr);
    }
    xcp__db_enc_create(b, host);
    all = xcp__db_all(c->db, C(host_cpu), &n);
    for (i = 0; i < n; i++)
        if (!strcmp(xcp__obj_str(all[i], F(host_cpu, host)), host->ref))
            xcp__db_enc_create(b, all[i]);
    all = xcp__db_all(c->db, C(PBD), &n);
    for (i = 0; i < n; i++) {
        xcp__obj *sr = xcp__db_get_cls(c->db, C(SR),
                                       xcp__obj_str(all[i], F(PBD, SR)));
        if (!strcmp(xcp__obj_str(all[i], F(PBD, host)), host->ref) && sr &&
            !xcp__obj_bool(sr, F(SR, shared)))
            xcp__db_enc_create(b, all[i]);
    }
    all = xcp__db_all(c->db, C(PIF), &n);
    for (i = 0; i < n; i++) {
        if (strcmp(xcp__obj_str(all[i], F(PIF, host)), host->ref))
            continue;
        put_row(c, b, C(network), xcp__obj_str(all[i], F(PIF, network)));
        put_row(c, b, C(PIF_metrics), xcp__obj_str(all[i], F(PIF, metrics)));
        xcp__db_enc_create(b, all[i]);
    }
    {
        xcp__obj *dom0 = xcp__db_get_cls(c->db, C(VM), c->e->dom0);
        if (dom0) {
            put_row(c, b, C(VM_metrics), xcp__obj_str(dom0, F(VM, metrics)));
            xcp__db_enc_create(b, dom0);
        }
    }
    return b->oom ? xcp__oom() : 0;
}

static void hex(const unsigned char *p, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = d[p[i] >> 4];
        out[2 * i + 1] = d[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static int unhex(const char *s, unsigned char *out, size_t n)
{
    size_t i;

    if (strlen(s) != 2 * n)
        return -1;
    for (i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (unsigned char)v;
    }
    return 0;
}

static int random_bytes(unsigned char *p, size_t n)
{
    size_t got = 0;

    while (got < n) {
        ssize_t r = getrandom(p + got, n - got, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return xcp__internal("getrandom: %s", strerror(errno));
        }
        got += (size_t)r;
    }
    return 0;
}

#define AUTHKEY_LEN 256
#define SECRET_LEN 32

/* Read file into buf (NUL-terminated, at most len - 1 bytes); -1 when
 * absent. */
static ssize_t slurp_small(const char *path, void *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    size_t n;

    if (!f)
        return -1;
    n = fread(buf, 1, len - 1, f);
    ((char *)buf)[n] = '\0';
    fclose(f);
    return (ssize_t)n;
}

/* The coordinator's corosync key and pool secret, made at the first
 * join: key hex-encoded into key_hex (2 * AUTHKEY_LEN + 1), secret into
 * secret (2 * SECRET_LEN + 1). */
static int pool_keys(xcp__ctx *c, char *key_hex, char *secret)
{
    unsigned char key[AUTHKEY_LEN + 1], sec[SECRET_LEN];
    char path[4096];
    int rc;

    snprintf(path, sizeof(path), "%s/authkey", xcp__pool_corosync_dir());
    if (slurp_small(path, key, sizeof(key)) != AUTHKEY_LEN) {
        if ((rc = random_bytes(key, AUTHKEY_LEN)) < 0 ||
            (rc = xcp__mkdir_p(xcp__pool_corosync_dir(), 0755)) < 0 ||
            (rc = xcp__pool_file_write(path, key, AUTHKEY_LEN, 0400)) < 0)
            return rc < 0 && !xcp_error_last() ? xcp__internal(
                       "cannot make %s", path) : rc;
    }
    hex(key, AUTHKEY_LEN, key_hex);
    snprintf(path, sizeof(path), "%s/pool-secret", c->e->state_dir);
    if (slurp_small(path, secret, 2 * SECRET_LEN + 1) != 2 * SECRET_LEN) {
        if ((rc = random_bytes(sec, SECRET_LEN)) < 0)
            return rc;
        hex(sec, SECRET_LEN, secret);
        if ((rc = xcp__pool_file_write(path, secret, 2 * SECRET_LEN,
                                       0600)) < 0)
            return rc;
    }
    return 0;
}

/* The lowest node id no host has. */
static uint32_t free_nodeid(xcp__ctx *c)
{
    size_t n, i;
    xcp__obj *const *hosts = xcp__db_all(c->db, C(host), &n);
    uint32_t id;

    for (id = 1;; id++) {
        for (i = 0; i < n; i++)
            if (xcp__pool_host_nodeid(hosts[i]) == id)
                break;
        if (i == n)
            return id;
    }
}

static int set_nodeid(xcp__ctx *c, xcp__obj *host, uint32_t id)
{
    char buf[16];

    snprintf(buf, sizeof(buf), "%u", id);
    return xcp__db_map_put_str(c->db, host, F(host, other_config),
                               "corosync-nodeid", buf);
}

/* The joiner's PIFs join the pool's networks of the same bridge (XAPI
 * matches them the same way); its own network rows then go. */
static int merge_networks(xcp__ctx *c, xcp__obj *host)
{
    size_t n, i, k, nn;
    xcp__obj *const *pifs = xcp__db_all(c->db, C(PIF), &n);
    int rc;

    for (i = 0; i < n; i++) {
        xcp__obj *const *nets;
        xcp__obj *mine, *pif = pifs[i];
        if (strcmp(xcp__obj_str(pif, F(PIF, host)), host->ref) ||
            !(mine = xcp__db_get_cls(c->db, C(network),
                                     xcp__obj_str(pif, F(PIF, network)))))
            continue;
        nets = xcp__db_all(c->db, C(network), &nn);
        for (k = 0; k < nn; k++) {
            if (nets[k] == mine ||
                strcmp(xcp__obj_str(nets[k], F(network, bridge)),
                       xcp__obj_str(mine, F(network, bridge))))
                continue;
            if ((rc = xcp__db_set_str(c->db, pif, F(PIF, network),
                                      nets[k]->ref)) < 0 ||
                (rc = xcp__db_destroy(c->db, mine)) < 0)
                return rc;
            break;
        }
    }
    return 0;
}

static int result_add(xcp__ctx *c, const char *k, const char *v)
{
    xcp_value x;
    int rc;

    if ((rc = xcp_value_set_string(&x, v)) < 0)
        return rc;
    if ((rc = xcp_value_struct_add(c->result, k, &x)) < 0)
        xcp_value_dispose(&x);
    return rc;
}

/* pool.join_member (coordinator): see the model. */
static int join_member(xcp__ctx *c)
{
    const char *ops = xcp__arg_str(c, 0);
    xcp__obj *pool, *master, *joiner = NULL;
    xcp__obj *const *hosts;
    char why[256] = "", key_hex[2 * AUTHKEY_LEN + 1],
         secret[2 * SECRET_LEN + 1], num[16], line[64];
    uint32_t mid, jid;
    xcp__buf snap = {0};
    size_t n, i;
    bool first = c->e->pool_repl == NULL;
    int rc;

    if ((rc = refuse_on_member(c)) < 0)
        return rc;
    if (!(pool = xcp__db_get_cls(c->db, C(pool), c->e->pool)) ||
        !(master = xcp__db_get_cls(c->db, C(host),
                                   xcp__obj_str(pool, F(pool, master)))))
        return xcp__internal("the pool has no master host");
    if (first && xcp__db_count(c->db, C(host)) > 1)
        return xcp__internal("this pool has several hosts but no "
                             "replication: not a pool libxcp formed");
    if ((mid = xcp__pool_host_nodeid(master)) == 0) {
        mid = free_nodeid(c);
        if ((rc = set_nodeid(c, master, mid)) < 0)
            return rc;
    }
    /* creation ops as xcp__db_enc_create writes them: " C ..." each */
    if (*ops == ' ')
        ops++;
    if (xcp__journal_apply_ops(c->db, ops, why, sizeof(why)) < 0) {
        if (strstr(why, "exists already"))
            return XCP__ERR_OPERATION_NOT_ALLOWED(
                "Host is already part of a pool");
        /* a peer's argument that does not apply: bad input, not a bug */
        return XCP__ERR_INVALID_VALUE("metadata", why);
    }
    hosts = xcp__db_all(c->db, C(host), &n);
    for (i = 0; i < n; i++)
        if (hosts[i] != master && xcp__pool_host_nodeid(hosts[i]) == 0)
            joiner = hosts[i];
    if (!joiner)
        return XCP__ERR_INVALID_VALUE("metadata",
                                      "it names no joining host");
    jid = free_nodeid(c);
    if ((rc = set_nodeid(c, joiner, jid)) < 0 ||
        (rc = merge_networks(c, joiner)) < 0 ||
        (rc = pool_keys(c, key_hex, secret)) < 0)
        return rc;
    if ((rc = xcp__ctx_commit(c)) < 0)
        return rc;
    if (first) {
        /* This lone host becomes the coordinator: its corosync, its
         * replication group, in this call (no commit falls between). */
        char path[4096];
        snprintf(path, sizeof(path), "%s/host-uuid", c->e->state_dir);
        snprintf(line, sizeof(line), "coordinator %u", mid);
        if ((rc = xcp__pool_file_write(path, xcp__obj_uuid(master),
                                       strlen(xcp__obj_uuid(master)),
                                       0644)) < 0 ||
            (rc = xcp__pool_role_write(c->e->state_dir, line)) < 0)
            return rc;
        if ((rc = xcp__pool_open_locked(&c->e->pool_repl, c->e)) < 0) {
            /* Stay a host of one: the joiner's rows go again, so that
             * the join can be tried anew (the error is pool_open's). */
            xcp__pool_role_write(c->e->state_dir, "none");
            if (xcp__pool_remove_host(c, joiner) < 0 ||
                xcp__ctx_commit(c) < 0)
                xcp__log(XCP__LOG_ERR, "pool: the failed joiner's rows "
                         "stay in the database");
            return rc;
        }
    }
    if ((rc = xcp__pool_snapshot_encode(c->db, &snap)) < 0)
        return rc;
    xcp_value_set_struct(c->result);
    snprintf(num, sizeof(num), "%u", jid);
    if ((rc = result_add(c, "nodeid", num)) == 0) {
        snprintf(num, sizeof(num), "%u", mid);
        rc = result_add(c, "coordinator_nodeid", num);
    }
    if (rc == 0)
        rc = result_add(c, "authkey", key_hex);
    if (rc == 0)
        rc = result_add(c, "secret", secret);
    if (rc == 0) {
        char *text = snap.oom ? NULL : xcp__buf_steal(&snap);
        rc = text ? result_add(c, "database", text) : xcp__oom();
        free(text);
    }
    xcp__buf_free(&snap);
    explicit_bzero(key_hex, sizeof(key_hex));
    return rc;
}

static const char *rstr(const xcp_value *st, const char *k)
{
    const xcp_value *v = st ? xcp_value_struct_get(st, k) : NULL;

    return v && v->kind == XCP_VAL_STRING ? v->u.s : NULL;
}

/* Log in to the coordinator: https (XAPI's), then plain http where
 * nothing answers TLS (the harness serves http only). */
static int remote_login(const char *addr, const char *user, const char *pw,
                        xcp_session **s)
{
    static const char *const schemes[] = {"https", "http"};
    xcp_remote_options o;
    char uri[600];
    size_t i;
    int rc = -1;

    for (i = 0; i < 2; i++) {
        const xcp_error *x;
        memset(&o, 0, sizeof(o));
        o.version = XCP_REMOTE_OPTIONS_VERSION;
        snprintf(uri, sizeof(uri), "%s://%s", schemes[i], addr);
        o.uri = uri;
        o.user = user;
        o.password = pw;
        o.insecure = true;
        o.connect_timeout_ms = 10000;
        o.timeout_ms = 120000;
        if ((rc = xcp_session_open_remote(s, &o)) == 0)
            return 0;
        x = xcp_error_last();
        if (!x || !x->name ||
            (strcmp(x->name, "CONNECTION_FAILED") &&
             strcmp(x->name, "TLS_CONNECTION_FAILED") &&
             strcmp(x->name, "TRANSPORT_ERROR")))
            return rc;
    }
    return XCP__ERR_JOINING_HOST_CONNECTION_FAILED();
}

/* XAPI's pre_join_checks that need the coordinator: the joiner is not the
 * coordinator itself, same product and API versions, (unless force) the
 * same CPU vendor. */
static int remote_checks(xcp_session *s, const char *my_uuid,
                         const char *my_product, const char *my_api,
                         const char *my_vendor, bool force)
{
    xcp_value pools = {0}, master = {0}, rec = {0}, arg;
    const xcp_value *sv, *ci;
    const char *uuid, *prod = NULL, *vendor = NULL;
    char api[64];
    int rc;

    if ((rc = xcp_call(s, &pools, "pool.get_all", 0, NULL)) < 0)
        goto out;
    if (pools.kind != XCP_VAL_ARRAY || pools.u.arr.n != 1) {
        rc = xcp__internal("the remote host does not belong to one pool");
        goto out;
    }
    if ((rc = xcp_call(s, &master, "pool.get_master", 1,
                       &pools.u.arr.items[0])) < 0)
        goto out;
    arg = master;
    if ((rc = xcp_call(s, &rec, "host.get_record", 1, &arg)) < 0)
        goto out;
    uuid = rstr(&rec, "uuid");
    if (uuid && !strcmp(uuid, my_uuid)) {
        rc = XCP__ERR_OPERATION_NOT_ALLOWED(
            "Host cannot become slave of itself");
        goto out;
    }
    if ((sv = xcp_value_struct_get(&rec, "software_version")))
        prod = rstr(sv, "product_version");
    if (!prod || strcmp(prod, my_product)) {
        rc = XCP__ERR_POOL_JOINING_HOST_MUST_HAVE_SAME_PRODUCT_VERSION();
        goto out;
    }
    {
        const xcp_value *ma = xcp_value_struct_get(&rec, "API_version_major");
        const xcp_value *mi = xcp_value_struct_get(&rec, "API_version_minor");
        snprintf(api, sizeof(api), "%lld.%lld",
                 ma && ma->kind == XCP_VAL_INT ? (long long)ma->u.i : -1LL,
                 mi && mi->kind == XCP_VAL_INT ? (long long)mi->u.i : -1LL);
        if (strcmp(api, my_api)) {
            rc = XCP__ERR_POOL_JOINING_HOST_MUST_HAVE_SAME_API_VERSION(my_api,
                                                                      api);
            goto out;
        }
    }
    if ((ci = xcp_value_struct_get(&rec, "cpu_info")))
        vendor = rstr(ci, "vendor");
    if (!force && vendor && strcmp(vendor, my_vendor)) {
        rc = XCP__ERR_HOSTS_NOT_HOMOGENEOUS("CPUs differ");
        goto out;
    }
out:
    xcp_value_dispose(&pools);
    xcp_value_dispose(&master);
    xcp_value_dispose(&rec);
    return rc;
}

/* The joiner's own checks (XAPI's pre_join_checks on the local side). */
static int local_checks(xcp__ctx *c)
{
    xcp__obj *const *all;
    size_t n, i;
    int rc;

    if ((rc = refuse_on_member(c)) < 0)
        return rc;
    if (xcp__db_count(c->db, C(host)) > 1)
        return XCP__ERR_JOINING_HOST_CANNOT_BE_MASTER_OF_OTHER_HOSTS();
    all = xcp__db_all(c->db, C(VM), &n);
    for (i = 0; i < n; i++)
        if (!xcp__obj_bool(all[i], F(VM, is_control_domain)) &&
            !strcmp(xcp__obj_str(all[i], F(VM, power_state)), "Running"))
            return XCP__ERR_JOINING_HOST_CANNOT_HAVE_RUNNING_VMS();
    for (i = 0; i < n; i++) {
        const xcp_value *ops = xcp__obj_val(all[i],
                                            F(VM, current_operations));
        if (ops && ops->kind == XCP_VAL_STRUCT && ops->u.st.n > 0)
            return XCP__ERR_JOINING_HOST_CANNOT_HAVE_VMS_WITH_CURRENT_OPERATIONS();
    }
    all = xcp__db_all(c->db, C(SR), &n);
    for (i = 0; i < n; i++)
        if (xcp__obj_bool(all[i], F(SR, shared)) &&
            !xcp__obj_bool(all[i], F(SR, is_tools_sr)))
            return XCP__ERR_JOINING_HOST_CANNOT_CONTAIN_SHARED_SRS();
    if (xcp__db_count(c->db, C(Bond)) > 0)
        return XCP__ERR_POOL_JOINING_HOST_HAS_BONDS();
    return 0;
}

/* Install what the coordinator handed over; pool-role last (it is what
 * makes the next start a member's). */
static int become_member(xcp__ctx *c, const char *addr, const char *uuid,
                         const xcp_value *res)
{
    const char *nid = rstr(res, "nodeid"), *cid = rstr(res,
                                                      "coordinator_nodeid");
    const char *key = rstr(res, "authkey"), *secret = rstr(res, "secret");
    const char *db = rstr(res, "database");
    unsigned char k[AUTHKEY_LEN];
    char path[4096], line[400];
    int rc;

    if (!nid || !cid || !key || !secret || !db || atoi(cid) <= 0 ||
        unhex(key, k, sizeof(k)) < 0 || strlen(secret) != 2 * SECRET_LEN)
        return xcp__internal("the coordinator's answer to "
                             "pool.join_member is incomplete");
    snprintf(path, sizeof(path), "%s/authkey", xcp__pool_corosync_dir());
    if ((rc = xcp__mkdir_p(xcp__pool_corosync_dir(), 0755)) < 0)
        return xcp__internal("cannot make %s", xcp__pool_corosync_dir());
    rc = xcp__pool_file_write(path, k, sizeof(k), 0400);
    explicit_bzero(k, sizeof(k));
    if (rc < 0)
        return rc;
    snprintf(path, sizeof(path), "%s/pool-secret", c->e->state_dir);
    if ((rc = xcp__pool_file_write(path, secret, strlen(secret), 0600)) < 0)
        return rc;
    snprintf(path, sizeof(path), "%s/host-uuid", c->e->state_dir);
    if ((rc = xcp__pool_file_write(path, uuid, strlen(uuid), 0644)) < 0 ||
        (rc = xcp__pool_snapshot_stage(c->e->state_dir, db, strlen(db),
                                       NULL)) < 0)
        return rc;
    snprintf(line, sizeof(line), "member %s %s", addr, cid);
    return xcp__pool_role_write(c->e->state_dir, line);
}

static int join_(xcp__ctx *c, bool force)
{
    const char *addr = xcp__arg_str(c, 0), *user = xcp__arg_str(c, 1);
    const char *pw = xcp__arg_str(c, 2);
    xcp__obj *host = xcp__db_get_cls(c->db, C(host), c->e->host);
    xcp__buf meta = {0};
    xcp_session *s = NULL;
    xcp_value arg = {0}, res = {0};
    char uuid[64], product[64], api[64], vendor[128], *ops = NULL;
    const char *v;
    int rc;

    if (!host)
        return xcp__internal("this host has no host row");
    if ((rc = local_checks(c)) < 0)
        return rc;
    if ((rc = host_metadata(c, host, &meta)) < 0)
        goto out;
    snprintf(uuid, sizeof(uuid), "%s", xcp__obj_uuid(host));
    v = xcp__obj_map_str(host, F(host, software_version), "product_version");
    snprintf(product, sizeof(product), "%s", v ? v : "");
    snprintf(api, sizeof(api), "%lld.%lld",
             (long long)xcp__obj_int(host, F(host, API_version_major)),
             (long long)xcp__obj_int(host, F(host, API_version_minor)));
    v = xcp__obj_map_str(host, F(host, cpu_info), "vendor");
    snprintf(vendor, sizeof(vendor), "%s", v ? v : "");
    /* No lock across the network. */
    if ((rc = xcp__ctx_unlock(c)) < 0)
        goto relock;
    if ((rc = remote_login(addr, user, pw, &s)) < 0 ||
        (rc = remote_checks(s, uuid, product, api, vendor, force)) < 0)
        goto relock;
    if (!(ops = xcp__buf_steal(&meta))) {
        rc = xcp__oom();
        goto relock;
    }
    if ((rc = xcp_value_set_string(&arg, ops)) < 0 ||
        (rc = xcp_call(s, &res, "pool.join_member", 1, &arg)) < 0)
        goto relock;
    rc = become_member(c, addr, uuid, &res);
relock:
    if (s)
        xcp_session_close(s);
    xcp__ctx_lock(c);
    if (rc == 0) {
        xcp__log(XCP__LOG_INFO, "pool: joined the pool of %s; restarting "
                 "as a member", addr);
        xcp__pool_request_restart();
    }
out:
    xcp_value_dispose(&arg);
    xcp_value_dispose(&res);
    xcp__buf_free(&meta);
    free(ops);
    return rc;
}

static int join(xcp__ctx *c)
{
    return join_(c, false);
}

static int join_force(xcp__ctx *c)
{
    return join_(c, true);
}

/* The refs of host's derived set field (copied: destroying rows changes
 * the set). *out is malloc'ed, NULL when empty. */
static int refs_of(xcp__obj *host, int field, char ***out, size_t *n)
{
    const xcp_value *v = xcp__obj_val(host, field);
    size_t i;

    *out = NULL;
    *n = 0;
    if (!v || v->kind != XCP_VAL_ARRAY || v->u.arr.n == 0)
        return 0;
    if (!(*out = calloc(v->u.arr.n, sizeof(char *))))
        return xcp__oom();
    for (i = 0; i < v->u.arr.n; i++)
        if (v->u.arr.items[i].kind == XCP_VAL_STRING &&
            !((*out)[(*n)++] = xcp__strdup(v->u.arr.items[i].u.s)))
            return xcp__oom();
    return 0;
}

static void refs_free(char **r, size_t n)
{
    while (n > 0)
        free(r[--n]);
    free(r);
}

/* Destroy the row ref of class cls, and the row its field metrics names
 * (field < 0: none). */
static int destroy_with(xcp__ctx *c, int cls, const char *ref, int field,
                        int mcls)
{
    xcp__obj *o = xcp__db_get_cls(c->db, cls, ref), *m;
    int rc;

    if (!o)
        return 0;
    m = field >= 0 ? xcp__db_get_cls(c->db, mcls, xcp__obj_str(o, field))
                   : NULL;
    if (m && (rc = xcp__db_destroy(c->db, m)) < 0)
        return rc;
    return xcp__db_destroy(c->db, o);
}

/* Remove a member and what is its own alone (pool.eject, host.destroy):
 * its control domain, CPUs, metrics, PIFs, PBDs and the SRs only it
 * reached. Its node id goes with its row; every member rewrites
 * corosync.conf as it applies this. Costs what the host has, through its
 * own sets, not the pool's tables. */
int xcp__pool_remove_host(xcp__ctx *c, xcp__obj *host)
{
    char **r = NULL;
    size_t n = 0, i;
    int rc;

    if ((rc = refs_of(host, F(host, resident_VMs), &r, &n)) < 0)
        goto out;
    for (i = 0; i < n; i++) {
        xcp__obj *vm = xcp__db_get_cls(c->db, C(VM), r[i]);
        if (vm && !xcp__obj_bool(vm, F(VM, is_control_domain))) {
            rc = XCP__ERR_HOST_IN_USE(host->ref, "VM", vm->ref);
            goto out;
        }
    }
    for (i = 0; i < n; i++)
        if ((rc = destroy_with(c, C(VM), r[i], F(VM, metrics),
                               C(VM_metrics))) < 0)
            goto out;
    refs_free(r, n);
    if ((rc = refs_of(host, F(host, PBDs), &r, &n)) < 0)
        goto out;
    for (i = 0; i < n; i++) {
        xcp__obj *pbd = xcp__db_get_cls(c->db, C(PBD), r[i]), *sr;
        if (!pbd)
            continue;
        sr = xcp__db_get_cls(c->db, C(SR), xcp__obj_str(pbd, F(PBD, SR)));
        if ((rc = xcp__db_destroy(c->db, pbd)) < 0)
            goto out;
        if (sr && !xcp__obj_bool(sr, F(SR, shared))) {
            const xcp_value *v = xcp__obj_val(sr, F(SR, VDIs));
            while (v && v->kind == XCP_VAL_ARRAY && v->u.arr.n > 0) {
                xcp__obj *vdi = xcp__db_get_cls(c->db, C(VDI),
                                                v->u.arr.items[0].u.s);
                if (!vdi) {
                    rc = xcp__internal("SR %s lists a VDI it lacks",
                                       xcp__obj_uuid(sr));
                    goto out;
                }
                if ((rc = xcp__db_destroy(c->db, vdi)) < 0)
                    goto out;
                v = xcp__obj_val(sr, F(SR, VDIs));
            }
            if ((rc = xcp__db_destroy(c->db, sr)) < 0)
                goto out;
        }
    }
    refs_free(r, n);
    if ((rc = refs_of(host, F(host, PIFs), &r, &n)) < 0)
        goto out;
    for (i = 0; i < n; i++)
        if ((rc = destroy_with(c, C(PIF), r[i], F(PIF, metrics),
                               C(PIF_metrics))) < 0)
            goto out;
    refs_free(r, n);
    if ((rc = refs_of(host, F(host, host_CPUs), &r, &n)) < 0)
        goto out;
    for (i = 0; i < n; i++)
        if ((rc = destroy_with(c, C(host_cpu), r[i], -1, 0)) < 0)
            goto out;
    refs_free(r, n);
    r = NULL;
    n = 0;
    if ((rc = destroy_with(c, C(host_metrics),
                           xcp__obj_str(host, F(host, metrics)), -1, 0)) < 0)
        goto out;
    rc = xcp__db_destroy(c->db, host);
out:
    refs_free(r, n);
    return rc;
}

static int eject(xcp__ctx *c)
{
    xcp__obj *host;
    int rc;

    if ((rc = refuse_on_member(c)) < 0 ||
        (rc = xcp__arg_obj(c, 0, C(host), &host)) < 0)
        return rc;
    if (!strcmp(host->ref, c->e->host))
        return XCP__ERR_HOST_CANNOT_DESTROY_SELF(host->ref);
    if (!c->e->pool_repl)
        return xcp__internal("host %s is in the database but this host "
                             "has no pool to eject it from",
                             xcp__obj_uuid(host));
    return xcp__pool_remove_host(c, host);
}

/* ---- coordinator hand-over (docs/design-pool.md §5.2) --------------------- */

/* pool.designate_new_master(host), on the coordinator: as XAPI, the
 * coordinator itself is a no-op and HA forbids it; the host must be a
 * live member (XAPI's forwarding answers CANNOT_CONTACT_HOST for one it
 * cannot reach); another hand-over under way is the pool's
 * OTHER_OPERATION_IN_PROGRESS, as XAPI's with_pool_operation. */
static int designate(xcp__ctx *c)
{
    xcp__obj *host, *pool;
    char ref[128], addr[256];
    uint32_t id;
    int rc;

    if ((rc = refuse_on_member(c)) < 0 ||
        (rc = xcp__arg_obj(c, 0, C(host), &host)) < 0)
        return rc;
    if (!strcmp(host->ref, c->e->host))
        return 0;
    pool = xcp__db_get_cls(c->db, C(pool), c->e->pool);
    if (pool && xcp__obj_bool(pool, F(pool, ha_enabled)))
        return XCP__ERR_HA_IS_ENABLED();
    id = xcp__pool_host_nodeid(host);
    if (!c->e->pool_repl || id == 0 ||
        !xcp__pool_host_live(c->e->pool_repl, id))
        return XCP__ERR_CANNOT_CONTACT_HOST(host->ref);
    snprintf(ref, sizeof(ref), "%s", host->ref);
    snprintf(addr, sizeof(addr), "%s", xcp__obj_str(host, F(host, address)));
    /* The hand-over waits for acks and a round of states: no engine lock
     * (the dispatch thread takes it to make events visible). */
    if ((rc = xcp__ctx_unlock(c)) < 0) {
        xcp__ctx_lock(c);
        return rc;
    }
    rc = xcp__pool_designate(c->e->pool_repl, id, ref, addr);
    xcp__ctx_lock(c);
    if (rc == 1) {
        pool = xcp__db_get_cls(c->db, C(pool), c->e->pool);
        return XCP__ERR_OTHER_OPERATION_IN_PROGRESS(
            "pool", pool ? pool->ref : c->e->pool, "designate_new_master",
            "");
    }
    return rc;
}

/* ---- emergencies (docs/design-pool.md §5.3) ------------------------------- */

/* pool.emergency_transition_to_master, on the host itself (XAPI's xe uses
 * a local session): nothing on a coordinator or a single host; on a
 * member whose coordinator is gone, the group elects this host if it may
 * (a quorate round, this host holding the longest log). */
static int emergency_transition(xcp__ctx *c)
{
    xcp__obj *pool = xcp__db_get_cls(c->db, C(pool), c->e->pool);
    int rc;

    if (pool && xcp__obj_bool(pool, F(pool, ha_enabled)))
        return XCP__ERR_HA_IS_ENABLED();
    if (!c->e->pool_repl)
        return 0;
    if ((rc = xcp__ctx_unlock(c)) < 0) {
        xcp__ctx_lock(c);
        return rc;
    }
    rc = xcp__pool_emergency_master(c->e->pool_repl);
    xcp__ctx_lock(c);
    return rc;
}

/* The host row whose address is addr (engine lock held), or NULL. A pool
 * has few hosts (64 at most): a scan. */
static xcp__obj *host_by_address(xcp__ctx *c, const char *addr)
{
    size_t i, n;
    xcp__obj *const *hosts = xcp__db_all(c->db, C(host), &n);

    for (i = 0; i < n; i++)
        if (!strcmp(xcp__obj_str(hosts[i], F(host, address)), addr))
            return hosts[i];
    return NULL;
}

/* pool.emergency_reset_master(master_address), on a member: which
 * coordinator to follow while its group has none (its role file and
 * HOST_IS_SLAVE name it). The address must be a host of the pool's. */
static int emergency_reset(xcp__ctx *c)
{
    xcp__obj *pool = xcp__db_get_cls(c->db, C(pool), c->e->pool), *host;
    const char *addr;
    char a[256];
    uint32_t id;
    int rc;

    if (pool && xcp__obj_bool(pool, F(pool, ha_enabled)))
        return XCP__ERR_HA_IS_ENABLED();
    addr = xcp__arg_str(c, 0);
    host = host_by_address(c, addr);
    if (!c->e->pool_repl) {
        if (host && !strcmp(host->ref, c->e->host))
            return 0;
        return XCP__ERR_OPERATION_NOT_ALLOWED(
            "this host is in no pool: it is its own master");
    }
    if (!host || (id = xcp__pool_host_nodeid(host)) == 0)
        return XCP__ERR_INVALID_VALUE("master_address", addr);
    snprintf(a, sizeof(a), "%s", addr);
    if ((rc = xcp__ctx_unlock(c)) < 0) {
        xcp__ctx_lock(c);
        return rc;
    }
    rc = xcp__pool_reset_master(c->e->pool_repl, a, id);
    xcp__ctx_lock(c);
    return rc;
}

/* pool.recover_slaves, on the coordinator: as XAPI, every other host is
 * told pool.emergency_reset_master(this host's address) (intra-pool
 * session); the hosts that accepted are returned. */
static int recover_slaves(xcp__ctx *c)
{
    xcp__obj *self, *const *hosts;
    char **refs = NULL, **addrs = NULL, me[256];
    size_t i, n, m = 0, k = 0;
    int rc;

    if ((rc = refuse_on_member(c)) < 0)
        return rc;
    xcp_value_set_array(c->result, 0);
    self = xcp__db_get_cls(c->db, C(host), c->e->host);
    if (!c->e->pool_repl || !self)
        return 0;
    snprintf(me, sizeof(me), "%s", xcp__obj_str(self, F(host, address)));
    hosts = xcp__db_all(c->db, C(host), &n);
    if (n && (!(refs = xcp__calloc(n, sizeof(*refs))) ||
              !(addrs = xcp__calloc(n, sizeof(*addrs))))) {
        rc = xcp__oom();
        goto out;
    }
    for (i = 0; i < n; i++) {
        if (hosts[i] == self ||
            !*xcp__obj_str(hosts[i], F(host, address)))
            continue;
        refs[m] = xcp__strdup(hosts[i]->ref);
        addrs[m] = xcp__strdup(xcp__obj_str(hosts[i], F(host, address)));
        if (!refs[m] || !addrs[m++]) {
            rc = xcp__oom();
            goto out;
        }
    }
    if ((rc = xcp__ctx_unlock(c)) < 0) {
        xcp__ctx_lock(c);
        goto out;
    }
    for (i = 0; i < m; i++) {
        xcp_value arg, res;
        res.kind = XCP_VAL_NONE;
        if (xcp_value_set_string(&arg, me) < 0) {
            rc = xcp__oom();
            break;
        }
        if (xcp__pool_fwd_call(c->e, addrs[i], c->e->host, 0, NULL,
                               "pool.emergency_reset_master", 1, &arg,
                               &res) == 0) {
            free(addrs[i]);
            addrs[i] = NULL; /* recovered */
        } else {
            const xcp_error *x = xcp_error_last();
            xcp__log(XCP__LOG_INFO, "pool.recover_slaves: %s: %s", refs[i],
                     x ? x->name : "?");
            xcp_error_clear();
        }
        xcp_value_dispose(&arg);
        xcp_value_dispose(&res);
    }
    xcp__ctx_lock(c);
    for (i = 0; i < m; i++)
        k += addrs[i] == NULL;
    if (rc == 0 && (rc = xcp_value_set_array(c->result, k)) == 0)
        for (i = 0, k = 0; rc == 0 && i < m; i++)
            if (!addrs[i])
                rc = xcp_value_set_string(&c->result->u.arr.items[k++],
                                          refs[i]);
out:
    for (i = 0; i < m; i++) {
        free(refs[i]);
        free(addrs[i]);
    }
    free(refs);
    free(addrs);
    return rc;
}

const struct xcp__impl xcp__impl_pool[] = {
    {"pool.emergency_transition_to_master", emergency_transition},
    {"pool.emergency_reset_master", emergency_reset},
    {"pool.recover_slaves", recover_slaves},
    {"pool.designate_new_master", designate},
    {"pool.get_license_state", license_state},
    {"pool.join", join},
    {"pool.join_force", join_force},
    {"pool.join_member", join_member},
    {"pool.eject", eject},
    {NULL, NULL},
};
