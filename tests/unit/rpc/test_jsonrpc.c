/*
 * test_jsonrpc.c - the JSON-RPC codec (lib/libxcp/rpc/jsonrpc.c).
 *
 * v1.0/v2.0 detection and params/id rules as xapi applies them, requests
 * as Xen Orchestra (JSON.stringify) and Python's json send them, the
 * envelopes byte for byte, the client side, and malformed input of every
 * kind, which must give a clean error.
 */
#include "helpers.c"

#include <jansson.h>
#include <math.h>

static char err[512];

struct req {
    char *method;
    xcp_value params;
    xcp_value id;
    int version;
};

static int dec(const char *body, size_t len, struct req *r)
{
    return xcp__jsonrpc_decode_request(body, len, &r->method, &r->params,
                                       &r->id, &r->version, err,
                                       sizeof(err));
}

static int decs(const char *body, struct req *r)
{
    return dec(body, strlen(body), r);
}

static int dec_fixture(const char *name, struct req *r)
{
    size_t n;
    char *body = fixture(name, &n);
    int rc = dec(body, n, r);

    free(body);
    return rc;
}

static void req_dispose(struct req *r)
{
    free(r->method);
    xcp_value_dispose(&r->params);
    xcp_value_dispose(&r->id);
}

static void assert_fails(const char *body)
{
    struct req r;

    r.method = (char *)1;
    cr_assert_eq(decs(body, &r), XCP_EINVAL, "accepted %s", body);
    cr_assert_null(r.method);
    cr_assert_eq(r.params.kind, XCP_VAL_NONE);
    cr_assert_eq(r.id.kind, XCP_VAL_NONE);
    cr_assert_neq(err[0], '\0', "no reason for %s", body);
}

/* ---- requests ---------------------------------------------------------- */

Test(jsonrpc_request, xo_login_is_v2_with_integer_id_zero)
{
    struct req r;
    xcp_value want;

    cr_assert_eq(dec_fixture("xo_login.json", &r), 0, "%s", err);
    cr_assert_eq(r.version, 2);
    cr_assert_str_eq(r.method, "session.login_with_password");
    cr_assert_eq(r.id.kind, XCP_VAL_INT);
    cr_assert_eq(r.id.u.i, 0);
    want = v_arr(2, v_str("root"), v_str("secret"));
    assert_value_eq(&r.params, &want);
    xcp_value_dispose(&want);
    req_dispose(&r);
}

Test(jsonrpc_request, xo_event_from)
{
    struct req r;
    xcp_value want;

    cr_assert_eq(dec_fixture("xo_event_from.json", &r), 0, "%s", err);
    want = v_arr(4, v_str("OpaqueRef:3a1c6d8e-2b4f-4e1a-9c7d-5f6e7a8b9c0d"),
                 v_arr(1, v_str("*")), v_str(""), v_float(60.1));
    assert_value_eq(&r.params, &want);
    xcp_value_dispose(&want);
    req_dispose(&r);
}

Test(jsonrpc_request, v1_has_no_jsonrpc_member_and_keeps_string_id)
{
    struct req r;

    cr_assert_eq(dec_fixture("v1_get_all.json", &r), 0, "%s", err);
    cr_assert_eq(r.version, 1);
    cr_assert_str_eq(r.method, "VM.get_all");
    cr_assert_eq(r.id.kind, XCP_VAL_STRING);
    cr_assert_str_eq(r.id.u.s, "c0ffee");
    cr_assert_eq(r.params.u.arr.n, 1);
    req_dispose(&r);

    cr_assert_eq(dec_fixture("py_v1_login.json", &r), 0, "%s", err);
    cr_assert_eq(r.version, 1);
    cr_assert_eq(r.id.kind, XCP_VAL_INT);
    cr_assert_eq(r.id.u.i, 1);
    req_dispose(&r);
}

Test(jsonrpc_request, every_json_type)
{
    struct req r;
    xcp_value want;

    cr_assert_eq(dec_fixture("v2_types.json", &r), 0, "%s", err);
    cr_assert_str_eq(r.id.u.s, "x-42");
    want = v_arr(13, v_str("OpaqueRef:s"), v_int(INT64_C(1) << 40),
                 v_int(-5), v_bool(true), v_bool(false), v_float(0.5),
                 v_float(60.1), v_str(""), v_none(),
                 v_str("a \"q\" \\ \n\té"),
                 v_struct(2, "name_label", v_str("vm1"), "other_config",
                          v_struct(1, "k", v_str("v"))),
                 v_arr(2, v_str("vm"), v_str("host")), v_arr(0));
    assert_value_eq(&r.params, &want);
    xcp_value_dispose(&want);
    req_dispose(&r);
}

Test(jsonrpc_request, numbers)
{
    struct req r;

    cr_assert_eq(decs("{\"method\":\"m\",\"params\":[9223372036854775807,"
                      "-9223372036854775808,1.0,1e3,-0,0.1],\"id\":1}", &r),
                 0, "%s", err);
    cr_assert_eq(r.params.u.arr.items[0].u.i, INT64_MAX);
    cr_assert_eq(r.params.u.arr.items[1].u.i, INT64_MIN);
    cr_assert_eq(r.params.u.arr.items[2].kind, XCP_VAL_FLOAT);
    cr_assert_eq(r.params.u.arr.items[3].kind, XCP_VAL_FLOAT);
    cr_assert_float_eq(r.params.u.arr.items[3].u.f, 1000.0, 1e-9);
    cr_assert_eq(r.params.u.arr.items[4].kind, XCP_VAL_INT);
    cr_assert_eq(r.params.u.arr.items[5].kind, XCP_VAL_FLOAT);
    req_dispose(&r);
}

Test(jsonrpc_request, v2_params_absent_null_object)
{
    struct req r;

    cr_assert_eq(decs("{\"jsonrpc\":\"2.0\",\"method\":\"system.listMethods\","
                      "\"id\":3}", &r), 0, "%s", err);
    cr_assert_eq(r.params.kind, XCP_VAL_ARRAY);
    cr_assert_eq(r.params.u.arr.n, 0);
    req_dispose(&r);
    cr_assert_eq(decs("{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":null,"
                      "\"id\":3}", &r), 0);
    cr_assert_eq(r.params.u.arr.n, 0);
    req_dispose(&r);
    cr_assert_eq(decs("{\"jsonrpc\":\"2.0\",\"method\":\"VM.create\","
                      "\"params\":{\"name_label\":\"x\"},\"id\":3}", &r), 0);
    cr_assert_eq(r.params.u.arr.n, 1);
    cr_assert_eq(r.params.u.arr.items[0].kind, XCP_VAL_STRUCT);
    cr_assert_str_eq(r.params.u.arr.items[0].u.st.keys[0], "name_label");
    req_dispose(&r);
}

Test(jsonrpc_request, member_order_does_not_matter_and_extras_are_ignored)
{
    struct req r;

    cr_assert_eq(decs(" {\"id\":\"a\",\"params\":[],\"x\":{},\"method\":\"m\","
                      "\"jsonrpc\":\"2.0\"}\n", &r), 0, "%s", err);
    cr_assert_eq(r.version, 2);
    cr_assert_str_eq(r.method, "m");
    req_dispose(&r);
}

/* ---- invalid UTF-8 ---------------------------------------------------- */

Test(jsonrpc_utf8, bad_strings_are_flagged)
{
    static const char *const bodies[] = {
        "{\"method\":\"m\",\"params\":[\"ok\",\"b\xff\"],\"id\":1}",
        "{\"method\":\"m\",\"params\":[{\"k\xc3\":1}],\"id\":1}",
        "{\"method\":\"m\",\"params\":[[\"\xed\xa0\x80\"]],\"id\":1}",
        "{\"method\":\"m\",\"params\":[\"a\\u0000b\"],\"id\":1}",
        "{\"method\":\"m\",\"params\":[\"\\u0001\"],\"id\":1}",
        "{\"method\":\"m\",\"params\":[\"\\uffff\"],\"id\":1}",
    };
    struct req r;
    size_t i;

    for (i = 0; i < XCP__ARRAY_LEN(bodies); i++) {
        cr_assert_eq(decs(bodies[i], &r), XCP__RPC_BAD_UTF8, "%s: %s",
                     bodies[i], err);
        cr_assert_not_null(xcp__rpc_find_invalid(&r.params));
        req_dispose(&r);
    }
    cr_assert_eq(decs(bodies[0], &r), XCP__RPC_BAD_UTF8);
    cr_assert_str_eq(xcp__rpc_find_invalid(&r.params), "b\xff");
    req_dispose(&r);
}

Test(jsonrpc_utf8, valid_text_passes)
{
    struct req r;

    cr_assert_eq(decs("{\"method\":\"m\",\"params\":[\"é☃😀\\u00e9"
                      "\\ud83d\\ude00\\t\"],\"id\":1}", &r), 0, "%s", err);
    cr_assert_str_eq(r.params.u.arr.items[0].u.s, "é☃😀é😀\t");
    req_dispose(&r);
}

/* ---- malformed --------------------------------------------------------- */

Test(jsonrpc_malformed, every_truncation_is_an_error)
{
    size_t n, i;
    char *body = fixture("v2_types.json", &n);
    struct req r;

    for (i = 0; i < n; i++) {
        cr_assert_eq(dec(body, i, &r), XCP_EINVAL, "prefix %zu accepted", i);
        cr_assert_null(r.method);
    }
    free(body);
}

Test(jsonrpc_malformed, notifications_and_batches_are_refused)
{
    assert_fails("{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":[]}");
    cr_assert(strstr(err, "notification"), "%s", err);
    assert_fails("{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":[],"
                 "\"id\":null}");
    assert_fails("{\"method\":\"m\",\"params\":[]}");
    assert_fails("[{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":[],"
                 "\"id\":1}]");
    cr_assert(strstr(err, "batch"), "%s", err);
    assert_fails("[]");
}

Test(jsonrpc_malformed, version_rules)
{
    assert_fails("{\"jsonrpc\":\"1.0\",\"method\":\"m\",\"params\":[],"
                 "\"id\":1}");
    assert_fails("{\"jsonrpc\":2.0,\"method\":\"m\",\"params\":[],\"id\":1}");
    assert_fails("{\"jsonrpc\":null,\"method\":\"m\",\"params\":[],"
                 "\"id\":1}");
    /* 1.0: params required, and an array */
    assert_fails("{\"method\":\"m\",\"id\":1}");
    assert_fails("{\"method\":\"m\",\"params\":null,\"id\":1}");
    assert_fails("{\"method\":\"m\",\"params\":{\"a\":1},\"id\":1}");
    /* 2.0: not a scalar either */
    assert_fails("{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":\"x\","
                 "\"id\":1}");
    assert_fails("{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":3,"
                 "\"id\":1}");
}

Test(jsonrpc_malformed, wrong_types)
{
    static const char *const bodies[] = {
        "{\"params\":[],\"id\":1}",
        "{\"method\":7,\"params\":[],\"id\":1}",
        "{\"method\":null,\"params\":[],\"id\":1}",
        "{\"method\":[\"m\"],\"params\":[],\"id\":1}",
        "{\"method\":\"m\",\"params\":[],\"id\":1.5}",
        "{\"method\":\"m\",\"params\":[],\"id\":true}",
        "{\"method\":\"m\",\"params\":[],\"id\":[1]}",
        "{\"method\":\"m\",\"params\":[],\"id\":{}}",
        "\"just a string\"",
        "42",
        "null",
    };
    size_t i;

    for (i = 0; i < XCP__ARRAY_LEN(bodies); i++)
        assert_fails(bodies[i]);
}

Test(jsonrpc_malformed, syntax_errors)
{
    static const char *const bodies[] = {
        "",
        " ",
        "<methodCall/>",
        "{",
        "{\"method\":\"m\",\"params\":[],\"id\":1} x",
        "{\"method\":\"m\",\"params\":[],\"id\":1}{}",
        "{'method':'m','params':[],'id':1}",
        "{\"method\":\"m\",\"params\":[01],\"id\":1}",
        /* NaN, Infinity, -Infinity are XAPI's (Yojson's); not these */
        "{\"method\":\"m\",\"params\":[nan],\"id\":1}",
        "{\"method\":\"m\",\"params\":[NaNa],\"id\":1}",
        "{\"method\":\"m\",\"params\":[+Infinity],\"id\":1}",
        "{\"method\":\"m\",\"params\":[\"\\ud800\"],\"id\":1}",
        "{\"method\":\"m\",\"params\":[\"a\nb\"],\"id\":1}",
        "{\"method\":\"m\",\"params\":[1,],\"id\":1}",
        "{\"method\":\"m\xff\",\"params\":[],\"id\":1}\xff",
        "\xef\xbb\xbf{\"method\":\"m\",\"params\":[],\"id\":1}",
    };
    size_t i;

    for (i = 0; i < XCP__ARRAY_LEN(bodies); i++)
        assert_fails(bodies[i]);
}

Test(jsonrpc_malformed, huge_numbers)
{
    assert_fails("{\"method\":\"m\",\"params\":[9223372036854775808],"
                 "\"id\":1}");
    assert_fails("{\"method\":\"m\",\"params\":[-9223372036854775809],"
                 "\"id\":1}");
    assert_fails("{\"method\":\"m\",\"params\":[99999999999999999999999999],"
                 "\"id\":1}");
    assert_fails("{\"method\":\"m\",\"params\":[1e400],\"id\":1}");
    assert_fails("{\"method\":\"m\",\"params\":[],"
                 "\"id\":99999999999999999999}");
}

static char *nested(size_t n)
{
    xcp__buf b = {0};
    size_t i;

    xcp__buf_adds(&b, "{\"method\":\"m\",\"id\":1,\"params\":[");
    for (i = 0; i < n; i++)
        xcp__buf_adds(&b, i % 2 ? "{\"k\":" : "[");
    xcp__buf_adds(&b, "1");
    for (i = n; i > 0; i--)
        xcp__buf_adds(&b, (i - 1) % 2 ? "}" : "]");
    xcp__buf_adds(&b, "]}");
    return buf_str(&b);
}

Test(jsonrpc_malformed, nesting_is_bounded)
{
    struct req r;
    char *s;

    /* params' items are depth 1: n aggregates + the number = n + 1 */
    s = nested(XCP__RPC_MAX_DEPTH - 1);
    cr_assert_eq(decs(s, &r), 0, "%s", err);
    req_dispose(&r);
    free(s);
    s = nested(XCP__RPC_MAX_DEPTH);
    assert_fails(s);
    free(s);
    s = nested(10000);
    assert_fails(s);
    free(s);
}

Test(jsonrpc_malformed, size_and_count_limits)
{
    size_t n = XCP__RPC_MAX_REQUEST_BODY + 1, i;
    char *big = malloc(n), *s;
    xcp__buf b = {0};
    struct req r;

    cr_assert_not_null(big);
    memset(big, ' ', n);
    cr_assert_eq(dec(big, n, &r), XCP_EINVAL);
    cr_assert(strstr(err, "larger"), "%s", err);
    free(big);

    xcp__buf_adds(&b, "{\"method\":\"m\",\"id\":1,\"params\":[[");
    for (i = 0; i < XCP__RPC_MAX_REQUEST_VALUES; i++)
        xcp__buf_adds(&b, i ? ",0" : "0");
    xcp__buf_adds(&b, "]]}");
    s = buf_str(&b);
    assert_fails(s);
    cr_assert(strstr(err, "values"), "%s", err);
    free(s);
}

/* ---- envelopes, byte for byte ------------------------------------------ */

static char *success(int version, const xcp_value *id, const xcp_value *v)
{
    xcp__buf b = {0};

    cr_assert_eq(xcp__jsonrpc_encode_success(&b, version, id, v, 0), 0);
    return buf_str(&b);
}

static char *failure(int version, const xcp_value *id, const char *code,
                     size_t n, const char *const *params)
{
    xcp__buf b = {0};

    cr_assert_eq(xcp__jsonrpc_encode_failure(&b, version, id, code, n,
                                             params), 0);
    return buf_str(&b);
}

/* The output must be JSON that a strict parser takes. */
static void assert_json(const char *s)
{
    json_error_t e;
    json_t *j = json_loads(s, JSON_DECODE_ANY, &e);

    cr_assert_not_null(j, "not JSON (%s): %s", e.text, s);
    json_decref(j);
}

Test(jsonrpc_response, v1_and_v2_envelopes_are_exact)
{
    const char *params[] = {"VM", "OpaqueRef:bad"};
    xcp_value sid = v_str("c0ffee"), iid = v_int(0), v = v_str("Running");
    char *s;

    s = success(1, &sid, &v);
    assert_fixture(s, "resp_v1_success.json");
    free(s);
    s = failure(1, &sid, "HANDLE_INVALID", 2, params);
    assert_fixture(s, "resp_v1_failure.json");
    free(s);
    s = success(2, &iid, &v);
    assert_fixture(s, "resp_v2_success.json");
    free(s);
    s = failure(2, &iid, "HANDLE_INVALID", 2, params);
    assert_fixture(s, "resp_v2_failure.json");
    free(s);
    xcp_value_dispose(&sid);
    xcp_value_dispose(&v);
}

Test(jsonrpc_response, void_id_types_and_no_params)
{
    xcp_value id = v_int(7), none = v_none(), sid = v_str("a\"b");
    char *s;

    s = success(2, &id, &none);
    assert_fixture(s, "resp_v2_void.json");
    free(s);
    s = success(1, &sid, NULL);
    cr_assert_str_eq(s, "{\"result\":\"\",\"error\":null,\"id\":\"a\\\"b\"}");
    free(s);
    s = failure(2, &sid, "MESSAGE_REMOVED", 0, NULL);
    cr_assert_str_eq(s, "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":1,"
                        "\"message\":\"MESSAGE_REMOVED\",\"data\":[]},"
                        "\"id\":\"a\\\"b\"}");
    free(s);
    s = failure(1, NULL, "MESSAGE_REMOVED", 0, NULL);
    cr_assert_str_eq(s, "{\"result\":null,\"error\":[\"MESSAGE_REMOVED\"],"
                        "\"id\":null}");
    free(s);
    xcp_value_dispose(&sid);
}

Test(jsonrpc_response, every_type_ints_as_numbers)
{
    xcp_value id = v_str("x-42");
    xcp_value v = v_struct(
        12, "memory_static_max", v_int(INT64_C(1) << 40), "negative",
        v_int(-42), "ratio", v_float(0.5), "one", v_float(1.0), "tenth",
        v_float(0.1), "is_a_template", v_bool(false), "running", v_bool(true),
        "created", v_time(1742357784), "name_description", v_str(""),
        "a<b>&\"c\"", v_str("x <y> & \"z\""), "tags", v_arr(0),
        "other_config", v_struct(0));
    char *s = success(2, &id, &v);

    assert_fixture(s, "resp_v2_types.json");
    assert_json(s);
    free(s);
    xcp_value_dispose(&v);
    xcp_value_dispose(&id);
}

Test(jsonrpc_response, event_from_ref_counts_are_plain_numbers)
{
    xcp_value id = v_int(0);
    xcp_value v = v_struct(
        3, "events",
        v_arr(1, v_struct(5, "id", v_str("1234"), "timestamp", v_str("0.0"),
                          "class", v_str("vm"), "operation", v_str("del"),
                          "ref", v_str("OpaqueRef:gone"))),
        "valid_ref_counts", v_struct(2, "vm", v_int(3), "task", v_int(0)),
        "token", v_str("00000000000000001234,00000000000000000000"));
    xcp__buf b = {0};
    char *s;

    cr_assert_eq(xcp__jsonrpc_encode_success(&b, 2, &id, &v,
                                             XCP__RPC_I4_REFCOUNTS), 0);
    s = buf_str(&b);
    assert_fixture(s, "resp_v2_event_from.json");
    free(s);
    xcp_value_dispose(&v);
}

static char *jval(const xcp_value *v)
{
    xcp__buf b = {0};

    cr_assert_eq(xcp__jsonrpc_encode_value(&b, v), 0);
    return buf_str(&b);
}

Test(jsonrpc_response, floats_shortest_exact_and_always_float)
{
    static const struct {
        double f;
        const char *want;
    } cases[] = {
        {1.0, "1.0"}, {0.5, "0.5"}, {0.1, "0.1"}, {-2.0, "-2.0"},
        {1e300, "1e+300"}, {1.0 / 3, "0.3333333333333333"},
        {0.1 + 0.2, "0.30000000000000004"}, {1e22, "1e+22"},
        {123456789012345678.0, "1.2345678901234568e+17"}, {0.0, "0.0"},
        /* as XAPI's rpclib/Yojson writes them (a data source's max) */
        {NAN, "NaN"}, {INFINITY, "Infinity"}, {-INFINITY, "-Infinity"},
    };
    xcp_value v;
    size_t i;
    char *s;

    for (i = 0; i < XCP__ARRAY_LEN(cases); i++) {
        v = v_float(cases[i].f);
        s = jval(&v);
        cr_assert_str_eq(s, cases[i].want);
        free(s);
    }
}

Test(jsonrpc_response, string_escapes_and_bad_utf8)
{
    xcp_value v = v_str("q\" b\\ \b\f\n\r\t \x01\x1f\x7f / é ☃ 😀");
    char *s = jval(&v);

    cr_assert_str_eq(s, "\"q\\\" b\\\\ \\b\\f\\n\\r\\t \\u0001\\u001f\\u007f"
                        " / é ☃ 😀\"");
    assert_json(s);
    free(s);
    xcp_value_dispose(&v);
    v = v_str("x\xff\xc3y\xed\xa0\x80");
    s = jval(&v);
    cr_assert_str_eq(s, "\"x\xef\xbf\xbd\xef\xbf\xbdy\xef\xbf\xbd\xef\xbf\xbd"
                        "\xef\xbf\xbd\"");
    assert_json(s);
    free(s);
    xcp_value_dispose(&v);
}

Test(jsonrpc_response, records_have_every_field_and_none_is_null)
{
    xcp_value rec = v_vm_record(), v;
    int cls = xcp_class_by_name("VM");
    char *s, *t, key[128];
    size_t i, n = xcp_class_field_count(cls);

    s = jval(&rec);
    assert_json(s);
    t = s;
    for (i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "\"%s\":", xcp_class_field(cls, i)->name);
        t = strstr(t, key);
        cr_assert_not_null(t, "field %s missing or out of order", key);
    }
    cr_assert(strstr(s, "\"name_label\":\"vm <1>\""));
    cr_assert(strstr(s, "\"memory_static_max\":1099511627776"));
    cr_assert(strstr(s, "\"name_description\":null"), "%s", s);
    free(s);
    xcp_value_dispose(&rec);
    v = v_arr(2, v_none(), v_struct(1, "k", v_none()));
    s = jval(&v);
    cr_assert_str_eq(s, "[null,{\"k\":null}]");
    free(s);
    xcp_value_dispose(&v);
}

/* ---- client side ------------------------------------------------------- */

Test(jsonrpc_client, request_is_v2_and_compact)
{
    xcp_value p = v_arr(4, v_str("OpaqueRef:s"), v_int(INT64_C(1) << 40),
                        v_time(0), v_vm_record());
    xcp__buf b = {0};
    struct req r;
    char *s;

    cr_assert_eq(xcp__jsonrpc_encode_request("VM.create", &p, 17, &b), 0);
    s = buf_str(&b);
    cr_assert_str_eq(s, "{\"jsonrpc\":\"2.0\",\"method\":\"VM.create\","
                        "\"params\":[\"OpaqueRef:s\",1099511627776,"
                        "\"19700101T00:00:00Z\",{\"uuid\":\"5f0a6b2e-1c3d-"
                        "4e5f-8a9b-0c1d2e3f4a5b\",\"name_label\":\"vm <1>\","
                        "\"is_a_template\":false,\"memory_static_max\":"
                        "1099511627776}],\"id\":17}");
    /* and the server side reads it back */
    cr_assert_eq(decs(s, &r), 0, "%s", err);
    cr_assert_eq(r.version, 2);
    cr_assert_eq(r.id.u.i, 17);
    cr_assert_eq(r.params.u.arr.items[1].u.i, INT64_C(1) << 40);
    req_dispose(&r);
    free(s);
    xcp_value_dispose(&p);
    cr_assert_eq(xcp__jsonrpc_encode_request("system.listMethods", NULL, 1,
                                             &b), 0);
    s = buf_str(&b);
    cr_assert_str_eq(s, "{\"jsonrpc\":\"2.0\",\"method\":"
                        "\"system.listMethods\",\"params\":[],\"id\":1}");
    free(s);
}

static int dec_resp(const char *body, xcp_value *r, xcp_value *e,
                    xcp_value *id)
{
    return xcp__jsonrpc_decode_response(body, strlen(body), r, e, id, err,
                                        sizeof(err));
}

static int dec_resp_fixture(const char *name, xcp_value *r, xcp_value *e,
                            xcp_value *id)
{
    size_t n;
    char *body = fixture(name, &n);
    int rc = xcp__jsonrpc_decode_response(body, n, r, e, id, err,
                                          sizeof(err));

    free(body);
    return rc;
}

Test(jsonrpc_client, responses_of_both_versions)
{
    xcp_value r, e, id, want;

    cr_assert_eq(dec_resp_fixture("resp_v1_success.json", &r, &e, &id), 0);
    cr_assert_str_eq(r.u.s, "Running");
    cr_assert_str_eq(id.u.s, "c0ffee");
    xcp_value_dispose(&r);
    xcp_value_dispose(&id);

    want = v_arr(3, v_str("HANDLE_INVALID"), v_str("VM"),
                 v_str("OpaqueRef:bad"));
    cr_assert_eq(dec_resp_fixture("resp_v1_failure.json", &r, &e, &id),
                 XCP__RPC_FAILURE);
    assert_value_eq(&e, &want);
    cr_assert_eq(r.kind, XCP_VAL_NONE);
    xcp_value_dispose(&e);
    xcp_value_dispose(&id);

    cr_assert_eq(dec_resp_fixture("resp_v2_success.json", &r, &e, &id), 0);
    cr_assert_str_eq(r.u.s, "Running");
    cr_assert_eq(id.kind, XCP_VAL_INT);
    xcp_value_dispose(&r);

    cr_assert_eq(dec_resp_fixture("resp_v2_failure.json", &r, &e, NULL),
                 XCP__RPC_FAILURE);
    assert_value_eq(&e, &want);
    xcp_value_dispose(&e);
    xcp_value_dispose(&want);

    cr_assert_eq(dec_resp_fixture("resp_v2_void.json", &r, &e, NULL), 0);
    cr_assert_str_eq(r.u.s, "");
    xcp_value_dispose(&r);
}

Test(jsonrpc_client, error_shapes)
{
    xcp_value r, e;

    /* xapi's pre-dispatch errors: v2 with a plain array and id 0 */
    cr_assert_eq(dec_resp("{\"jsonrpc\":\"2.0\",\"error\":["
                          "\"HOST_IN_EMERGENCY_MODE\"],\"id\":0}", &r, &e,
                          NULL), XCP__RPC_FAILURE, "%s", err);
    cr_assert_str_eq(e.u.arr.items[0].u.s, "HOST_IN_EMERGENCY_MODE");
    xcp_value_dispose(&e);
    /* a generic JSON-RPC server's error: message + scalar data */
    cr_assert_eq(dec_resp("{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32601,"
                          "\"message\":\"Method not found\",\"data\":7},"
                          "\"id\":1}", &r, &e, NULL), XCP__RPC_FAILURE);
    cr_assert_eq(e.u.arr.n, 2);
    cr_assert_str_eq(e.u.arr.items[0].u.s, "Method not found");
    cr_assert_str_eq(e.u.arr.items[1].u.s, "7");
    xcp_value_dispose(&e);
    cr_assert_eq(dec_resp("{\"jsonrpc\":\"2.0\",\"error\":{\"code\":1,"
                          "\"message\":\"X\"},\"id\":1}", &r, &e, NULL),
                 XCP__RPC_FAILURE);
    cr_assert_eq(e.u.arr.n, 1);
    xcp_value_dispose(&e);
}

Test(jsonrpc_client, malformed_responses)
{
    static const char *const bodies[] = {
        "",
        "[]",
        "{\"jsonrpc\":\"2.0\",\"id\":1}",
        "{\"jsonrpc\":\"2.0\",\"result\":1,\"error\":[\"E\"],\"id\":1}",
        "{\"result\":1,\"error\":[\"E\"],\"id\":1}",
        "{\"jsonrpc\":\"1.0\",\"result\":1,\"id\":1}",
        "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":1},\"id\":1}",
        "{\"jsonrpc\":\"2.0\",\"error\":[],\"id\":1}",
        "{\"jsonrpc\":\"2.0\",\"error\":[[\"nested\"]],\"id\":1}",
        "{\"jsonrpc\":\"2.0\",\"error\":42,\"id\":1}",
        "{\"result\":",
    };
    xcp_value r, e, id;
    size_t i;

    for (i = 0; i < XCP__ARRAY_LEN(bodies); i++) {
        cr_assert_eq(dec_resp(bodies[i], &r, &e, &id), XCP_EINVAL,
                     "accepted %s", bodies[i]);
        cr_assert_eq(r.kind, XCP_VAL_NONE);
        cr_assert_eq(e.kind, XCP_VAL_NONE);
        cr_assert_eq(id.kind, XCP_VAL_NONE);
    }
}

Test(jsonrpc_client, lenient_on_v1_shape_and_bad_utf8)
{
    xcp_value r, e;

    cr_assert_eq(dec_resp("{\"result\":[1,2]}", &r, &e, NULL), 0, "%s", err);
    cr_assert_eq(r.u.arr.n, 2);
    xcp_value_dispose(&r);
    cr_assert_eq(dec_resp("{\"result\":\"vm\xff\",\"error\":null,\"id\":1}",
                          &r, &e, NULL), 0, "%s", err);
    cr_assert_str_eq(r.u.s, "vm\xef\xbf\xbd");
    xcp_value_dispose(&r);
}

Test(jsonrpc_client, server_output_round_trips)
{
    xcp_value v = v_everything(), id = v_int(9), r, e, rid, want;
    char *s = success(2, &id, &v);

    cr_assert_eq(dec_resp(s, &r, &e, &rid), 0, "%s", err);
    cr_assert_eq(rid.u.i, 9);
    /* JSON has no datetimes: they come back as the compact string */
    want = v_everything();
    want.u.st.vals[6] = v_str("20250319T04:16:24Z");
    assert_value_eq(&r, &want);
    xcp_value_dispose(&r);
    xcp_value_dispose(&want);
    xcp_value_dispose(&v);
    free(s);
}

/* XAPI writes non-finite floats as bare NaN/Infinity/-Infinity (Yojson,
 * not in std mode): read back as floats, in results and nested values;
 * the same words inside strings stay strings. */
Test(jsonrpc_client, nonfinite_floats_as_xapi_writes_them)
{
    xcp_value r, e, id;
    const char *body =
        "{\"jsonrpc\":\"2.0\",\"result\":{\"max\":Infinity,\"min\":"
        "-Infinity,\"value\":NaN,\"name\":\"NaN Infinity\",\"esc\":"
        "\"a\\\"Infinity\",\"list\":[1.5,Infinity]},\"id\":3}";
    const xcp_value *f;
    size_t i;

    cr_assert_eq(dec_resp(body, &r, &e, &id), 0, "%s", err);
    cr_assert_eq(r.kind, XCP_VAL_STRUCT);
    for (i = 0; i < r.u.st.n; i++) {
        f = &r.u.st.vals[i];
        if (!strcmp(r.u.st.keys[i], "max")) {
            cr_assert_eq(f->kind, XCP_VAL_FLOAT);
            cr_assert(isinf(f->u.f) && f->u.f > 0);
        } else if (!strcmp(r.u.st.keys[i], "min")) {
            cr_assert_eq(f->kind, XCP_VAL_FLOAT);
            cr_assert(isinf(f->u.f) && f->u.f < 0);
        } else if (!strcmp(r.u.st.keys[i], "value")) {
            cr_assert_eq(f->kind, XCP_VAL_FLOAT);
            cr_assert(isnan(f->u.f));
        } else if (!strcmp(r.u.st.keys[i], "name")) {
            cr_assert_str_eq(f->u.s, "NaN Infinity");
        } else if (!strcmp(r.u.st.keys[i], "esc")) {
            cr_assert_str_eq(f->u.s, "a\"Infinity");
        } else {
            cr_assert_eq(f->kind, XCP_VAL_ARRAY);
            cr_assert_eq(f->u.arr.items[1].kind, XCP_VAL_FLOAT);
            cr_assert(isinf(f->u.arr.items[1].u.f));
        }
    }
    xcp_value_dispose(&r);
    xcp_value_dispose(&id);
    /* a body with \u0000 in a string is not rewritten: still refused */
    cr_assert_neq(dec_resp("{\"jsonrpc\":\"2.0\",\"result\":[\"\\u0000\","
                           "Infinity],\"id\":3}", &r, &e, &id), 0);
    /* and a string \u0000NaN without such tokens stays a string */
    cr_assert_eq(dec_resp("{\"jsonrpc\":\"2.0\",\"result\":\"\\u0000NaN\","
                          "\"id\":3}", &r, &e, &id), 0);
    cr_assert_neq(r.kind, XCP_VAL_FLOAT);
    xcp_value_dispose(&r);
    xcp_value_dispose(&id);
}

/* and in requests, as XAPI's reader takes them */
Test(jsonrpc_request, nonfinite_floats_as_xapi_reads_them)
{
    struct req r;

    cr_assert_eq(decs("{\"method\":\"m\",\"params\":[NaN,-Infinity,"
                      "\"NaN\"],\"id\":1}", &r), 0, "%s", err);
    cr_assert_eq(r.params.u.arr.n, 3);
    cr_assert_eq(r.params.u.arr.items[0].kind, XCP_VAL_FLOAT);
    cr_assert(isnan(r.params.u.arr.items[0].u.f));
    cr_assert_eq(r.params.u.arr.items[1].kind, XCP_VAL_FLOAT);
    cr_assert(isinf(r.params.u.arr.items[1].u.f) &&
              r.params.u.arr.items[1].u.f < 0);
    cr_assert_eq(r.params.u.arr.items[2].kind, XCP_VAL_STRING);
    req_dispose(&r);
}
