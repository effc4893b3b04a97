/*
 * session.*: login and logout. Sessions are database objects of a
 * volatile class (never persisted: a restart ends them, as on XAPI).
 * Authentication: the engine trusts its caller. An embedded engine's
 * caller is the local superuser; the daemon authenticates network
 * clients before it calls login here.
 */
#include "engine.h"
#include "../pool/pool.h"

/* A new session row for user (originator: "" when none), returned to
 * the caller as the call's result. */
static int new_session(xcp__ctx *c, const char *user, bool superuser,
                       bool pool, const char *originator)
{
    xcp__obj *s;
    int rc;

    if ((rc = xcp__db_create(c->db, C(session), NULL, NULL, &s)) < 0)
        return rc;
    if ((rc = xcp__db_set_str(c->db, s, F(session, this_host),
                              c->e->host)) < 0 ||
        (rc = xcp__db_set_time(c->db, s, F(session, last_active),
                               xcp__now())) < 0 ||
        (rc = xcp__db_set_bool(c->db, s, F(session, is_local_superuser),
                               superuser)) < 0 ||
        (pool && (rc = xcp__db_set_bool(c->db, s, F(session, pool),
                                        true)) < 0) ||
        (rc = xcp__db_set_str(c->db, s, F(session, auth_user_name),
                              user)) < 0 ||
        (originator && *originator &&
         (rc = xcp__db_set_str(c->db, s, F(session, originator),
                               originator)) < 0) ||
        (rc = xcp__db_set_time(c->db, s, F(session, validation_time),
                               xcp__now())) < 0)
        return rc;
    return xcp__ret_ref(c, s);
}

static int login(xcp__ctx *c)
{
    return new_session(c, xcp__arg_str(c, 0),
                       !strcmp(xcp__arg_str(c, 0), "root"), false,
                       xcp__arg_str(c, 3));
}

/* slave_login(host, psecret) and slave_local_login(psecret), as XAPI's
 * slave_login_common: the pool secret or SESSION_AUTHENTICATION_FAILED
 * [host, "Pool credentials invalid"]; the session is a pool one. */
static int pool_login(xcp__ctx *c, const char *who, const char *psecret)
{
    if (!xcp__pool_secret_ok(c->e->state_dir, psecret)) {
        xcp__log(XCP__LOG_INFO, "pool login of %s refused: pool "
                 "credentials invalid", who);
        return XCP__ERR_SESSION_AUTHENTICATION_FAILED_USER(
            who, "Pool credentials invalid");
    }
    return new_session(c, who, true, true, "");
}

static int slave_login(xcp__ctx *c)
{
    return pool_login(c, xcp__arg_str(c, 0), xcp__arg_str(c, 1));
}

static int slave_local_login(xcp__ctx *c)
{
    return pool_login(c, "localhost", xcp__arg_str(c, 0));
}

static int logout(xcp__ctx *c)
{
    xcp__obj *s = xcp__db_get_cls(c->db, C(session), c->session);

    if (!s)
        return 0;
    xcp__events_session_gone(c->e, s->ref);
    if (c->e->nbd.session_gone)
        c->e->nbd.session_gone(c->e->nbd.arg, s->ref);
    return xcp__db_destroy(c->db, s);
}

static int change_password(xcp__ctx *c)
{
    return XCP__ERR_NOT_IMPLEMENTED("session.change_password (local "
                                    "users are managed by the host's PAM)");
}

static int subject_ids(xcp__ctx *c)
{
    return xcp_value_set_array(c->result, 0);
}

const struct xcp__impl xcp__impl_session[] = {
    {"session.login_with_password", login},
    {"session.slave_local_login_with_password", login},
    {"session.slave_login", slave_login},
    {"session.slave_local_login", slave_local_login},
    {"session.logout", logout},
    {"session.local_logout", logout},
    {"session.change_password", change_password},
    {"session.get_all_subject_identifiers", subject_ids},
    {NULL, NULL},
};

static int touch(xcp__ctx *c, void *session)
{
    xcp__obj *s = xcp__db_get_cls(c->db, C(session), session);

    /* Sessions are volatile: this commit writes no journal line. */
    return s ? xcp__db_set_time(c->db, s, F(session, last_active),
                                xcp__now())
             : 0;
}

int xcp__session_touch(xcp__engine *e, const char *session)
{
    return xcp__engine_txn(e, touch, (void *)session);
}
