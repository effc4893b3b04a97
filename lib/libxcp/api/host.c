/*
 * host.*, pool.* and the small classes (console, blob, secret, message):
 * what a single-host pool answers. Pool membership (join, eject, HA) is a
 * later piece of work and answers NOT_IMPLEMENTED until then.
 */
#include "../engine/engine.h"

#include <stdio.h>
#include <time.h>

static int host_arg(xcp__ctx *c, xcp__obj **h)
{
    return xcp__arg_obj(c, 0, C(host), h);
}

static int host_enable(xcp__ctx *c, bool en)
{
    xcp__obj *h;
    int rc;

    if ((rc = host_arg(c, &h)) < 0 ||
        (rc = xcp__db_set_bool(c->db, h, F(host, enabled), en)) < 0)
        return rc;
    if (!en && !xcp__arg_bool(c, 1) &&
        (rc = xcp__db_set_str(c->db, h, F(host, display), "disabled")) < 0)
        return rc;
    return xcp__update_allowed(c, h);
}

static int host_disable(xcp__ctx *c) { return host_enable(c, false); }
static int host_enable_(xcp__ctx *c) { return host_enable(c, true); }

static int servertime(xcp__ctx *c)
{
    xcp__obj *h;
    int rc = host_arg(c, &h);

    if (rc < 0)
        return rc;
    xcp_value_set_datetime(c->result, xcp__now());
    return 0;
}

static int free_memory(xcp__ctx *c)
{
    xcp__obj *h;
    xcp_hv_host_info hi;
    xcp_hv_error e;
    int rc = host_arg(c, &h);

    if (rc < 0)
        return rc;
    if (xcp__hv_host_info(c->e->hv, &hi, &e) < 0)
        return XCP__ERR_INTERNAL_ERROR(e.message);
    xcp__ret_int(c, (int64_t)hi.memory_free);
    return 0;
}

static int memory_overhead(xcp__ctx *c)
{
    xcp__obj *h;
    int rc = host_arg(c, &h);

    if (rc < 0)
        return rc;
    xcp__ret_int(c, xcp__obj_int(h, F(host, memory_overhead)));
    return 0;
}

static int management_interface(xcp__ctx *c)
{
    xcp__obj *h;
    const xcp_value *pifs;
    size_t i;
    int rc = host_arg(c, &h);

    if (rc < 0)
        return rc;
    pifs = xcp__obj_val(h, F(host, PIFs));
    for (i = 0; pifs->kind == XCP_VAL_ARRAY && i < pifs->u.arr.n; i++) {
        xcp__obj *p = xcp__db_get_cls(c->db, C(PIF), pifs->u.arr.items[i].u.s);
        if (p && xcp__obj_bool(p, F(PIF, management)))
            return xcp__ret_ref(c, p);
    }
    return XCP__ERR_PIF_IS_NOT_MANAGEMENT_INTERFACE(XCP_NULL_REF);
}

/* Running guests block evacuation: there is no other host to go to. */
static int prevent_evacuation(xcp__ctx *c)
{
    xcp__obj *h;
    const xcp_value *vms;
    size_t i;
    int rc = host_arg(c, &h);

    if (rc < 0)
        return rc;
    xcp_value_set_struct(c->result);
    vms = xcp__obj_val(h, F(host, resident_VMs));
    for (i = 0; vms->kind == XCP_VAL_ARRAY && i < vms->u.arr.n; i++) {
        xcp__obj *vm = xcp__db_get_cls(c->db, C(VM), vms->u.arr.items[i].u.s);
        xcp_value why;
        if (!vm || xcp__obj_bool(vm, F(VM, is_control_domain)))
            continue;
        if ((rc = xcp_value_set_array(&why, 1)) < 0 ||
            (rc = xcp_value_set_string(&why.u.arr.items[0],
                                       "NO_HOSTS_AVAILABLE")) < 0 ||
            (rc = xcp_value_struct_add(c->result, vm->ref, &why)) < 0) {
            xcp_value_dispose(&why);
            return rc;
        }
    }
    return 0;
}

static int assert_can_evacuate(xcp__ctx *c)
{
    xcp_value m;
    int rc;

    c->result = &m;
    rc = prevent_evacuation(c);
    if (rc == 0 && m.u.st.n > 0)
        rc = XCP__ERR_CANNOT_EVACUATE_HOST("NO_HOSTS_AVAILABLE");
    xcp_value_dispose(&m);
    return rc;
}

static int set_hostname_live(xcp__ctx *c)
{
    xcp__obj *h;
    const char *name = xcp__arg_str(c, 1);
    size_t i;
    int rc = host_arg(c, &h);

    if (rc < 0)
        return rc;
    for (i = 0; name[i]; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '-' || ch == '.'))
            break;
    }
    if (!*name || name[i] || i > 253)
        return XCP__ERR_HOST_NAME_INVALID("hostname contains invalid "
                                          "characters");
    return xcp__db_set_str(c->db, h, F(host, hostname), name);
}

static int host_destroy(xcp__ctx *c)
{
    xcp__obj *h;
    int rc = host_arg(c, &h);

    if (rc < 0)
        return rc;
    if (!strcmp(h->ref, c->e->host))
        return XCP__ERR_HOST_CANNOT_DESTROY_SELF(h->ref);
    return XCP__ERR_HOST_IS_LIVE(h->ref);
}

/* ---- pool ------------------------------------------------------------------- */

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

/* ---- console, blob, secret, message -------------------------------------------- */

static int not_impl(xcp__ctx *c)
{
    return XCP__ERR_NOT_IMPLEMENTED(c->msg->wire);
}

static int blob_create(xcp__ctx *c)
{
    xcp__obj *b;
    int rc;

    if ((rc = xcp__db_create(c->db, C(blob), NULL, NULL, &b)) < 0 ||
        (rc = xcp__db_set_str(c->db, b, F(blob, mime_type),
                              *xcp__arg_str(c, 0) ? xcp__arg_str(c, 0)
                                                  : "application/"
                                                    "octet-stream")) < 0 ||
        (rc = xcp__db_set_bool(c->db, b, F(blob, public), xcp__arg_bool(c, 1))) <
            0 ||
        (rc = xcp__db_set_time(c->db, b, F(blob, last_updated), xcp__now())) < 0)
        return rc;
    return xcp__ret_ref(c, b);
}

static int blob_destroy(xcp__ctx *c)
{
    xcp__obj *b;
    int rc = xcp__arg_obj(c, 0, C(blob), &b);

    return rc < 0 ? rc : xcp__db_destroy(c->db, b);
}

static int secret_introduce(xcp__ctx *c)
{
    xcp__obj *s;
    xcp_value v;
    const char *uuid = xcp__arg_str(c, 0);
    int rc;

    if (*uuid && xcp__db_by_uuid(c->db, C(secret), uuid))
        return XCP__ERR_UUID_INVALID("secret", uuid);
    if ((rc = xcp__db_create(c->db, C(secret), NULL, *uuid ? uuid : NULL,
                             &s)) < 0 ||
        (rc = xcp__db_set_str(c->db, s, F(secret, value),
                              xcp__arg_str(c, 1))) < 0 ||
        (rc = xcp_value_copy(&v, xcp__arg(c, 2))) < 0)
        return rc;
    rc = xcp__db_set(c->db, s, F(secret, other_config), &v);
    xcp_value_dispose(&v);
    return rc < 0 ? rc : xcp__ret_ref(c, s);
}

static int message_create(xcp__ctx *c)
{
    xcp__obj *m;
    int64_t prio = xcp__arg_int(c, 1);
    int rc;

    if (prio < 1 || prio > 5) {
        char n[32];
        snprintf(n, sizeof(n), "%lld", (long long)prio);
        return XCP__ERR_INVALID_VALUE("priority", n);
    }
    if ((rc = xcp__db_create(c->db, C(message), NULL, NULL, &m)) < 0 ||
        (rc = xcp__db_set_str(c->db, m, F(message, name),
                              xcp__arg_str(c, 0))) < 0 ||
        (rc = xcp__db_set_int(c->db, m, F(message, priority), prio)) < 0 ||
        (rc = xcp__db_set_str(c->db, m, F(message, cls), xcp__arg_str(c, 2))) < 0 ||
        (rc = xcp__db_set_str(c->db, m, F(message, obj_uuid),
                              xcp__arg_str(c, 3))) < 0 ||
        (rc = xcp__db_set_time(c->db, m, F(message, timestamp),
                               xcp__now())) < 0 ||
        (rc = xcp__db_set_str(c->db, m, F(message, body),
                              xcp__arg_str(c, 4))) < 0)
        return rc;
    return xcp__ret_ref(c, m);
}

static int message_destroy(xcp__ctx *c)
{
    xcp__obj *m;
    int rc = xcp__arg_obj(c, 0, C(message), &m);

    return rc < 0 ? rc : xcp__db_destroy(c->db, m);
}

static int message_destroy_many(xcp__ctx *c)
{
    const xcp_value *set = xcp__arg(c, 0);
    size_t i;
    int rc;

    for (i = 0; i < set->u.arr.n; i++) {
        xcp__obj *m;
        if ((rc = xcp__ref_obj(c, set->u.arr.items[i].u.s, C(message),
                               &m)) < 0 ||
            (rc = xcp__db_destroy(c->db, m)) < 0)
            return rc;
    }
    return 0;
}

/* Messages since a time, optionally about one object. */
static int messages_since(xcp__ctx *c, const char *cls, const char *uuid,
                          xcp_datetime since)
{
    size_t n, i, k = 0;
    xcp__obj *const *all = xcp__db_all(c->db, C(message), &n);
    xcp__obj **hits = xcp__calloc(n, sizeof(*hits));
    int rc;

    if (!hits)
        return xcp__oom();
    for (i = 0; i < n; i++) {
        xcp__obj *m = all[i];
        if (xcp__obj_int(m, F(message, timestamp)) < since)
            continue;
        if (cls && (strcmp(xcp__obj_str(m, F(message, cls)), cls) ||
                    strcmp(xcp__obj_str(m, F(message, obj_uuid)), uuid)))
            continue;
        hits[k++] = m;
    }
    rc = xcp__records_of(hits, k, c->result);
    free(hits);
    return rc;
}

static int message_get(xcp__ctx *c)
{
    const xcp_value *t = xcp__arg(c, 2);

    return messages_since(c, xcp__arg_str(c, 0), xcp__arg_str(c, 1),
                          t->kind == XCP_VAL_DATETIME ? t->u.t : 0);
}

static int message_get_since(xcp__ctx *c)
{
    const xcp_value *t = xcp__arg(c, 0);

    return messages_since(c, NULL, NULL,
                          t->kind == XCP_VAL_DATETIME ? t->u.t : 0);
}

const struct xcp__impl xcp__impl_host[] = {
    {"host.disable", host_disable},
    {"host.enable", host_enable_},
    {"host.get_servertime", servertime},
    {"host.get_server_localtime", servertime},
    {"host.compute_free_memory", free_memory},
    {"host.compute_memory_overhead", memory_overhead},
    {"host.get_management_interface", management_interface},
    {"host.get_vms_which_prevent_evacuation", prevent_evacuation},
    {"host.assert_can_evacuate", assert_can_evacuate},
    {"host.set_hostname_live", set_hostname_live},
    {"host.destroy", host_destroy},
    {NULL, NULL},
};

const struct xcp__impl xcp__impl_pool[] = {
    {"pool.get_license_state", license_state},
    {NULL, NULL},
};

const struct xcp__impl xcp__impl_misc[] = {
    {"console.create", not_impl},
    {"console.destroy", not_impl},
    {"blob.create", blob_create},
    {"blob.destroy", blob_destroy},
    {"secret.introduce", secret_introduce},
    {"message.create", message_create},
    {"message.destroy", message_destroy},
    {"message.destroy_many", message_destroy_many},
    {"message.get", message_get},
    {"message.get_since", message_get_since},
    {NULL, NULL},
};
