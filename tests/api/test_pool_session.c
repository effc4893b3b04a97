/*
 * tests/api/test_pool_session.c - the pool secret's logins on one host
 * (docs/design-pool.md §7): session.slave_login(host, psecret) and
 * session.slave_local_login(psecret) against <state dir>/pool-secret, as
 * XAPI's slave_login_common, and the intra-pool calls refusing a client's
 * session as XAPI's internal calls do. The pool itself (HOST_IS_SLAVE,
 * members' writes, forwarding) is tests/pool/forward.sh's.
 */
#include "helpers.h"

TestSuite(pool_session, .init = api_setup, .fini = api_teardown);

#define SECRET_TAIL "123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define SECRET "0" SECRET_TAIL

static void write_secret(const char *s)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/pool-secret", api_dir);
    cr_assert_not_null(f = fopen(path, "w"));
    fprintf(f, "%s\n", s);
    fclose(f);
}

static int slave_login(const char *host, const char *psecret, xcp_value *out)
{
    xcp_value a[2];
    int rc;

    xcp_value_set_string(&a[0], host);
    xcp_value_set_string(&a[1], psecret);
    rc = xcp_call(S, out, "session.slave_login", 2, a);
    xcp_value_dispose(&a[0]);
    xcp_value_dispose(&a[1]);
    return rc;
}

Test(pool_session, slave_login_without_a_pool_secret_fails)
{
    xcp_host h = api_host();
    xcp_value r;

    assert_error(slave_login(h.ref, SECRET, &r),
                 "SESSION_AUTHENTICATION_FAILED", h.ref,
                 "Pool credentials invalid");
}

Test(pool_session, slave_login_with_the_secret_opens_a_pool_session)
{
    xcp_host h = api_host();
    xcp_session_id sref;
    xcp_value r;
    bool pool = false;

    write_secret(SECRET);
    api_assert_ok_(__FILE__, __LINE__, slave_login(h.ref, SECRET, &r),
                   "slave_login");
    cr_assert_eq(r.kind, XCP_VAL_STRING);
    SET_REF(sref, r.u.s);
    api_assert_ok_(__FILE__, __LINE__,
                   xcp_session_get_pool(S, &pool, sref), "get_pool");
    cr_assert(pool, "a slave_login session has pool set");
    xcp_value_dispose(&r);
    /* The caller's own session is no pool one. */
    SET_REF(sref, xcp_session_ref(S));
    api_assert_ok_(__FILE__, __LINE__,
                   xcp_session_get_pool(S, &pool, sref), "get_pool");
    cr_assert(!pool);
}

Test(pool_session, slave_login_with_another_secret_fails)
{
    xcp_host h = api_host();
    xcp_value r;

    write_secret(SECRET);
    assert_error(slave_login(h.ref, "1" SECRET_TAIL, &r),
                 "SESSION_AUTHENTICATION_FAILED", h.ref,
                 "Pool credentials invalid");
    assert_error(slave_login(h.ref, SECRET "0", &r),
                 "SESSION_AUTHENTICATION_FAILED", h.ref,
                 "Pool credentials invalid");
}

Test(pool_session, slave_local_login_names_localhost)
{
    xcp_value a, r;

    write_secret(SECRET);
    xcp_value_set_string(&a, "bad");
    assert_error(xcp_call(S, &r, "session.slave_local_login", 1, &a),
                 "SESSION_AUTHENTICATION_FAILED", "localhost",
                 "Pool credentials invalid");
    xcp_value_dispose(&a);
    xcp_value_set_string(&a, SECRET);
    api_assert_ok_(__FILE__, __LINE__,
                   xcp_call(S, &r, "session.slave_local_login", 1, &a),
                   "slave_local_login");
    xcp_value_dispose(&a);
    xcp_value_dispose(&r);
}

Test(pool_session, a_damaged_secret_file_lets_nobody_in)
{
    xcp_host h = api_host();
    xcp_value r;

    write_secret("not-hex-" SECRET);
    assert_error(slave_login(h.ref, "not-hex-" SECRET, &r),
                 "SESSION_AUTHENTICATION_FAILED", h.ref,
                 "Pool credentials invalid");
}

Test(pool_session, intra_pool_calls_refuse_a_client_session)
{
    int64_t seq;

    assert_error(xcp_pool_member_commit(S, &seq, "T 1"), "INTERNAL_ERROR",
                 "Internal API \"pool.member_commit\" call attempted with "
                 "non-pool (external) session");
    assert_error(xcp_pool_member_sync(S, 1), "INTERNAL_ERROR",
                 "Internal API \"pool.member_sync\" call attempted with "
                 "non-pool (external) session");
}

/* The coordinator's hand-over and the emergency calls on a host in no
 * pool (docs/design-pool.md §5.2, §5.3; the pool itself is
 * tests/pool/master.sh's): XAPI's no-ops and refusals. */
static int call1(const char *method, const char *arg, xcp_value *out)
{
    xcp_value a;
    int rc;

    xcp_value_set_string(&a, arg);
    rc = xcp_call(S, out, method, 1, &a);
    xcp_value_dispose(&a);
    return rc;
}

Test(pool_session, designate_new_master_of_itself_is_a_no_op)
{
    xcp_host h = api_host();
    xcp_value r;

    api_assert_ok_(__FILE__, __LINE__,
                   call1("pool.designate_new_master", h.ref, &r),
                   "designate_new_master");
    xcp_value_dispose(&r);
    assert_error(call1("pool.designate_new_master", "OpaqueRef:nope", &r),
                 "HANDLE_INVALID", "host", "OpaqueRef:nope");
}

Test(pool_session, emergency_calls_on_a_host_in_no_pool)
{
    xcp_host h = api_host();
    xcp_value r, addr;

    api_assert_ok_(__FILE__, __LINE__,
                   xcp_call(S, &r, "pool.emergency_transition_to_master", 0,
                            NULL),
                   "emergency_transition_to_master");
    xcp_value_dispose(&r);
    assert_error(call1("pool.emergency_reset_master", "192.0.2.9", &r),
                 "OPERATION_NOT_ALLOWED",
                 "this host is in no pool: it is its own master");
    api_assert_ok_(__FILE__, __LINE__,
                   call1("host.get_address", h.ref, &addr), "get_address");
    cr_assert_eq(addr.kind, XCP_VAL_STRING);
    if (*addr.u.s) {
        api_assert_ok_(__FILE__, __LINE__,
                       call1("pool.emergency_reset_master", addr.u.s, &r),
                       "emergency_reset_master to itself");
        xcp_value_dispose(&r);
    }
    xcp_value_dispose(&addr);
    api_assert_ok_(__FILE__, __LINE__,
                   xcp_call(S, &r, "pool.recover_slaves", 0, NULL),
                   "recover_slaves");
    cr_assert_eq(r.kind, XCP_VAL_ARRAY);
    cr_assert_eq(r.u.arr.n, 0);
    xcp_value_dispose(&r);
}
