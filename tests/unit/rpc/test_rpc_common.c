/*
 * test_rpc_common.c - the helpers both wire codecs share (rpc.h): xapi's
 * UTF-8 rules for parameters, the marking of bytes that are not UTF-8,
 * error-description normalisation, locale-proof numbers, and the same
 * values going through both codecs.
 */
#include "helpers.c"

#include <locale.h>
#include <math.h>

Test(rpc_utf8, string_valid_follows_xapi_utf8_xml)
{
    static const struct {
        const char *s;
        bool ok;
    } cases[] = {
        {"", true},
        {"plain ASCII", true},
        {"tab\tlf\ncr\r", true},
        {"del\x7f", true},
        {"é ☃ 😀", true},
        {"\xef\xbf\xbd", true},           /* U+FFFD */
        {"\xf4\x8f\xbf\xbd", true},       /* U+10FFFD */
        {"\xee\x80\x80", true},           /* U+E000 */
        {"\x01", false},
        {"\x1f", false},
        {"\xc0\x80", false},              /* overlong NUL */
        {"\xc1\xbf", false},              /* overlong */
        {"\xe0\x80\xaf", false},          /* overlong '/' */
        {"\xed\xa0\x80", false},          /* surrogate */
        {"\xf4\x90\x80\x80", false},      /* above U+10FFFF */
        {"\xf8\x88\x80\x80\x80", false},
        {"\xef\xbf\xbe", false},          /* U+FFFE */
        {"\xef\xbf\xbf", false},          /* U+FFFF */
        {"\xef\xb7\x90", false},          /* U+FDD0 */
        {"\xef\xb7\xaf", false},          /* U+FDEF */
        {"\xf4\x8f\xbf\xbf", false},      /* U+10FFFF */
        {"\xf0\x9f\xbf\xbe", false},      /* U+1FFFE */
        {"\xc3", false},                  /* truncated */
        {"\xe2\x98", false},
        {"\x80", false},
        {"ok\xff", false},
    };
    size_t i;

    for (i = 0; i < XCP__ARRAY_LEN(cases); i++)
        cr_assert_eq(xcp__rpc_string_valid(cases[i].s, strlen(cases[i].s)),
                     cases[i].ok, "case %zu", i);
}

Test(rpc_utf8, find_invalid_searches_deep_and_keys)
{
    xcp_value v = v_arr(2, v_str("ok"),
                        v_struct(1, "k", v_arr(1, v_str("b\xff"))));

    cr_assert_str_eq(xcp__rpc_find_invalid(&v), "b\xff");
    xcp_value_dispose(&v);
    v = v_struct(1, "k\x01", v_str("v"));
    cr_assert_str_eq(xcp__rpc_find_invalid(&v), "k\x01");
    xcp_value_dispose(&v);
    v = v_struct(2, "a", v_int(1), "b", v_arr(0));
    cr_assert_null(xcp__rpc_find_invalid(&v));
    xcp_value_dispose(&v);
    v = v_vm_record();
    cr_assert_null(xcp__rpc_find_invalid(&v));
    xcp_value_dispose(&v);
}

Test(rpc_wire, valid_bodies_are_left_alone)
{
    size_t n = 7;

    cr_assert_null(xcp__rpc_wire_body("abc é", 6, true, &n));
    cr_assert_eq(n, 0);
}

Test(rpc_wire, bad_bytes_are_marked_and_restored)
{
    const char body[] = "<v>a\xff\x80z</v>";
    size_t n;
    char *w = xcp__rpc_wire_body(body, sizeof(body) - 1, true, &n), *s;

    cr_assert_not_null(w);
    cr_assert_eq(n, strlen(w));
    cr_assert(xcp__rpc_string_valid(w, n), "marked body is valid UTF-8");
    s = xcp__rpc_wire_string(w, n, XCP__RPC_UNMARK);
    cr_assert_str_eq(s, body);
    free(s);
    /* without UNMARK the marks stay (valid private-use characters) */
    s = xcp__rpc_wire_string(w, n, 0);
    cr_assert_str_eq(s, w);
    free(s);
    free(w);
}

Test(rpc_wire, response_bodies_get_replacement_characters)
{
    const char body[] = "x\xc3(y";
    size_t n;
    char *w = xcp__rpc_wire_body(body, sizeof(body) - 1, false, &n);

    cr_assert_str_eq(w, "x\xef\xbf\xbd(y");
    free(w);
}

Test(rpc_wire, declared_encodings_are_not_touched)
{
    static const char latin1[] = "<?xml version=\"1.0\" encoding=\"ISO-8859-1"
                                 "\"?><a>\xe9</a>";
    static const char cp1252[] = "<?xml version='1.0' encoding='windows-1252'"
                                 "?><a>\xe9</a>";
    static const char utf16[] = "\xff\xfe<\0a\0>\0\xe9\0";
    static const char utf8[] = "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
                               "<a>\xe9</a>";
    size_t n;
    char *w;

    cr_assert_null(xcp__rpc_wire_body(latin1, sizeof(latin1) - 1, true, &n));
    cr_assert_null(xcp__rpc_wire_body(cp1252, sizeof(cp1252) - 1, true, &n));
    cr_assert_null(xcp__rpc_wire_body(utf16, sizeof(utf16) - 1, true, &n));
    /* but a declared UTF-8 is */
    w = xcp__rpc_wire_body(utf8, sizeof(utf8) - 1, true, &n);
    cr_assert_not_null(w);
    free(w);
}

Test(rpc_wire, nul_handling)
{
    const char in[] = {'a', 0, 'b'};
    char *s;

    s = xcp__rpc_wire_string(in, 3, XCP__RPC_NUL_BAD);
    cr_assert_str_eq(s, "a\xc0\x80" "b");
    cr_assert_not(xcp__rpc_string_valid(s, strlen(s)));
    free(s);
    s = xcp__rpc_wire_string(in, 3, 0);
    cr_assert_str_eq(s, "a\xef\xbf\xbd" "b");
    free(s);
}

Test(rpc_errors, error_list_makes_strings)
{
    char err[128];
    xcp_value v = v_arr(6, v_str("CODE"), v_int(-3), v_bool(true), v_none(),
                        v_float(0.5), v_time(0)),
              want = v_arr(6, v_str("CODE"), v_str("-3"), v_str("true"),
                           v_str(""), v_str("0.5"),
                           v_str("19700101T00:00:00Z"));

    cr_assert_eq(xcp__rpc_error_list(&v, err, sizeof(err)), 0);
    assert_value_eq(&v, &want);
    xcp_value_dispose(&v);
    xcp_value_dispose(&want);
    v = v_arr(0);
    cr_assert_eq(xcp__rpc_error_list(&v, err, sizeof(err)), XCP_EINVAL);
    xcp_value_dispose(&v);
    v = v_arr(2, v_str("E"), v_arr(0));
    cr_assert_eq(xcp__rpc_error_list(&v, err, sizeof(err)), XCP_EINVAL);
    xcp_value_dispose(&v);
    v = v_str("E");
    cr_assert_eq(xcp__rpc_error_list(&v, NULL, 0), XCP_EINVAL);
    xcp_value_dispose(&v);
}

Test(rpc_numbers, doubles_ignore_the_locale)
{
    char buf[40];
    double d;

    /* Use a comma locale when the system has one; C otherwise. */
    if (!setlocale(LC_NUMERIC, "de_DE.UTF-8") &&
        !setlocale(LC_NUMERIC, "fr_FR.UTF-8"))
        cr_log_info("no comma locale installed: checking C only");
    xcp__format_double(buf, sizeof(buf), 16, 0.5);
    cr_assert_str_eq(buf, "0.5");
    cr_assert_eq(xcp__parse_double("2.25", &d), 0);
    cr_assert_float_eq(d, 2.25, 1e-12);
    cr_assert_eq(xcp__parse_double("2,25", &d), XCP_EINVAL);
    cr_assert_eq(xcp__parse_double("", &d), XCP_EINVAL);
    cr_assert_eq(xcp__parse_double("1e5 ", &d), XCP_EINVAL);
    setlocale(LC_NUMERIC, "C");
}

/* The same value through both codecs, as a client would see it. */
Test(rpc_both, one_value_two_wires)
{
    xcp_value v = v_everything(), id = v_int(1), xr, xe, jr, je;
    xcp__buf b = {0};
    char *s;

    cr_assert_eq(xcp__xmlrpc_encode_success(&b, &v, 0), 0);
    s = buf_str(&b);
    cr_assert_eq(xcp__xmlrpc_decode_response(s, strlen(s), &xr, &xe, NULL, 0),
                 0);
    free(s);
    cr_assert_eq(xcp__jsonrpc_encode_success(&b, 2, &id, &v, 0), 0);
    s = buf_str(&b);
    cr_assert_eq(xcp__jsonrpc_decode_response(s, strlen(s), &jr, &je, NULL,
                                              NULL, 0), 0);
    free(s);
    /* strings, floats, bools and shapes agree; ints differ in type only */
    cr_assert_str_eq(xcp_value_struct_get(&xr, "s")->u.s,
                     xcp_value_struct_get(&jr, "s")->u.s);
    cr_assert_str_eq(xcp_value_struct_get(&xr, "big")->u.s, "1099511627776");
    cr_assert_eq(xcp_value_struct_get(&jr, "big")->u.i, INT64_C(1) << 40);
    cr_assert(xcp__value_equal(xcp_value_struct_get(&xr, "list"),
                               xcp_value_struct_get(&jr, "list")));
    cr_assert(xcp__value_equal(xcp_value_struct_get(&xr, "map"),
                               xcp_value_struct_get(&jr, "map")));
    xcp_value_dispose(&xr);
    xcp_value_dispose(&jr);
    xcp_value_dispose(&v);
}
