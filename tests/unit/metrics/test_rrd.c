/*
 * tests/unit/metrics/test_rrd.c - the RRD maths of lib/libxcp/metrics/rrd.c
 * against XAPI's (ocaml/libs/xapi-rrd): gauges and counters turned into
 * PDPs, consolidated as AVERAGE, MIN and MAX, unknown values and the xff,
 * data sources added and removed, the binary image across a "restart",
 * rrd_updates' choice of archives and its XML/JSON, and the number format.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "api/metrics.h"
#include "metrics/rrd.h"

/* A small RRD: 5 s step; AVERAGE 1 PDP x 10 rows; AVERAGE, MIN, MAX of 3
 * PDPs x 10 rows. t0 is a multiple of 15 s, so that CDPs of 3 PDPs start
 * cleanly at t0. */
static const xcp__rra_def small[] = {
    {XCP__CF_AVERAGE, 10, 1, 0.5},
    {XCP__CF_AVERAGE, 10, 3, 0.5},
    {XCP__CF_MIN, 10, 3, 0.5},
    {XCP__CF_MAX, 10, 3, 0.5},
};
#define T0 1500.0

static xcp__rrd *make(const char *name, xcp__ds_type type, double max)
{
    xcp__rrd *r = xcp__rrd_new(5, small, 4, T0);
    xcp__ds_def d = {name, type, 0.0, max};

    cr_assert_not_null(r);
    cr_assert_eq(xcp__rrd_add_ds(r, &d, T0), 0);
    return r;
}

/* Row i back from the newest of archive k, data source ds. */
static double row(const xcp__rrd *r, size_t k, size_t ds, unsigned i)
{
    const xcp__rra *a = &r->rra[k];

    return a->data[ds * a->rows + (a->head + a->rows - i) % a->rows];
}

static void feed(xcp__rrd *r, const double *v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        xcp__rrd_update(r, T0 + 5.0 * (double)(i + 1), &v[i], 1);
}

Test(rrd, gauge_pdps_and_consolidation_average_min_max)
{
    static const double v[] = {1, 2, 6, 4, 8, 3};
    xcp__rrd *r = make("memory", XCP__DS_GAUGE, INFINITY);

    feed(r, v, 6);
    /* the 5 s archive: every value, newest first */
    cr_expect_float_eq(row(r, 0, 0, 0), 3.0, 1e-6);
    cr_expect_float_eq(row(r, 0, 0, 1), 8.0, 1e-6);
    cr_expect_float_eq(row(r, 0, 0, 5), 1.0, 1e-6);
    /* two CDPs of 3 PDPs: {1,2,6} then {4,8,3} */
    cr_expect_float_eq(row(r, 1, 0, 0), 5.0, 1e-6);
    cr_expect_float_eq(row(r, 1, 0, 1), 3.0, 1e-6);
    cr_expect_float_eq(row(r, 2, 0, 0), 3.0, 1e-6);
    cr_expect_float_eq(row(r, 2, 0, 1), 1.0, 1e-6);
    cr_expect_float_eq(row(r, 3, 0, 0), 8.0, 1e-6);
    cr_expect_float_eq(row(r, 3, 0, 1), 6.0, 1e-6);
    /* older rows are unknown */
    cr_expect(isnan(row(r, 1, 0, 2)));
    /* query_data_source: the newest AVERAGE of the finest archive */
    cr_expect_float_eq(xcp__rrd_latest(r, 0), 3.0, 1e-6);
    xcp__rrd_free(r);
}

Test(rrd, derive_is_a_rate_per_second_and_first_reading_unknown)
{
    /* a counter growing by 50 every 5 s: 10 per second */
    static const double v[] = {100, 150, 200, 250, 300, 350};
    xcp__rrd *r = make("vif_0_rx", XCP__DS_DERIVE, INFINITY);

    feed(r, v, 6);
    /* no rate without a previous reading: an unknown PDP, which XAPI's
     * 1-PDP archive stores as its CDP's starting value, 0 (do_cfs leaves
     * the CDP alone when every PDP is unknown; CA-329043 made it 0) */
    cr_expect_float_eq(row(r, 0, 0, 5), 0.0, 1e-9);
    cr_expect_float_eq(row(r, 0, 0, 0), 10.0, 1e-6);
    cr_expect_float_eq(row(r, 0, 0, 4), 10.0, 1e-6);
    /* the second CDP is whole: 10; the first lacks its first PDP */
    cr_expect_float_eq(row(r, 1, 0, 0), 10.0, 1e-6);
    xcp__rrd_free(r);
}

Test(rrd, derive_between_steps_is_time_weighted)
{
    /* readings 2.5 s into each step: the PDP mixes two intervals */
    xcp__rrd *r = make("cpu0", XCP__DS_DERIVE, 1.0);
    double c = 0, t;
    int i;

    for (i = 0; i < 8; i++) {
        t = T0 + 2.5 + 5.0 * i;
        c += i < 4 ? 1.0 : 4.0; /* 0.2/s, then 0.8/s */
        xcp__rrd_update(r, t, &c, 1);
    }
    /* the last PDP is wholly at 0.8/s, an earlier one at 0.2/s, and the
     * one across the change half and half */
    cr_expect_float_eq(row(r, 0, 0, 0), 0.8, 1e-6);
    cr_expect_float_eq(row(r, 0, 0, 5), 0.2, 1e-6);
    cr_expect_float_eq(row(r, 0, 0, 3), 0.5, 1e-6);
    xcp__rrd_free(r);
}

Test(rrd, out_of_bounds_and_unknown_values)
{
    static const double v[] = {0.5, 7.0, NAN, 0.25, 0.25, 0.25};
    xcp__rrd *r = make("loadavg", XCP__DS_GAUGE, 1.0);

    feed(r, v, 6);
    /* 7 > max 1: an unknown PDP, 0 in the 1-PDP archive (as above) */
    cr_expect_float_eq(row(r, 0, 0, 4), 0.0, 1e-9);
    /* xff 0.5 of 3 PDPs: one unknown is fine, the CDP renormalised */
    cr_expect_float_eq(row(r, 1, 0, 0), 0.25, 1e-6);
    xcp__rrd_free(r);
}

Test(rrd, a_gap_longer_than_the_heartbeat_is_unknown)
{
    xcp__rrd *r = make("memory", XCP__DS_GAUGE, INFINITY);
    double v = 42;

    xcp__rrd_update(r, T0 + 5, &v, 1);
    xcp__rrd_update(r, T0 + 5 + 400, &v, 1); /* > 300 s mrhb */
    cr_expect(isnan(row(r, 0, 0, 0)));
    xcp__rrd_update(r, T0 + 5 + 405, &v, 1);
    cr_expect_float_eq(row(r, 0, 0, 0), 42.0, 1e-6);
    xcp__rrd_free(r);
}

Test(rrd, add_and_remove_data_sources_keep_the_others)
{
    xcp__rrd *r = make("a", XCP__DS_GAUGE, INFINITY);
    xcp__ds_def b = {"b", XCP__DS_GAUGE, 0, INFINITY};
    double v[2] = {1, 2};

    cr_assert_eq(xcp__rrd_add_ds(r, &b, T0), 1);
    cr_assert_eq(xcp__rrd_add_ds(r, &b, T0), 1, "added once");
    xcp__rrd_update(r, T0 + 5, v, 2);
    cr_assert(xcp__rrd_remove_ds(r, "a"));
    cr_assert(!xcp__rrd_remove_ds(r, "a"));
    cr_assert_eq(r->n_ds, 1);
    cr_expect_str_eq(r->ds[0].name, "b");
    cr_expect_float_eq(row(r, 0, 0, 0), 2.0, 1e-6);
    cr_expect_eq(xcp__rrd_find(r, "a"), -1);
    xcp__rrd_free(r);
}

Test(rrd, image_round_trip_is_exact_and_bad_images_are_refused)
{
    static const double v[] = {1, 2, 6, 4, 8, 3};
    xcp__rrd *r = make("memory", XCP__DS_GAUGE, INFINITY), *back;
    xcp__buf a = {0}, b = {0}, x1 = {0}, x2 = {0};
    size_t i;

    feed(r, v, 6);
    xcp__rrd_save(r, &a);
    back = xcp__rrd_load(a.data, a.len);
    cr_assert_not_null(back);
    xcp__rrd_save(back, &b);
    cr_assert_eq(a.len, b.len);
    cr_expect(memcmp(a.data, b.data, a.len) == 0);
    /* the "restarted" RRD goes on where the other was */
    xcp__rrd_xml(r, &x1);
    xcp__rrd_xml(back, &x2);
    cr_expect_str_eq(x1.data, x2.data);
    {
        double w = 10;

        xcp__rrd_update(back, T0 + 35, &w, 1);
        cr_expect_float_eq(row(back, 0, 0, 0), 10.0, 1e-6);
    }
    /* every truncation and a bad magic are refused */
    for (i = 0; i < a.len; i += 7)
        cr_expect_null(xcp__rrd_load(a.data, i), "truncated at %zu", i);
    a.data[0] ^= 1;
    cr_expect_null(xcp__rrd_load(a.data, a.len));
    xcp__buf_free(&a);
    xcp__buf_free(&b);
    xcp__buf_free(&x1);
    xcp__buf_free(&x2);
    xcp__rrd_free(r);
    xcp__rrd_free(back);
}

Test(rrd, xml_is_xapis_shape)
{
    static const double v[] = {1, 2, 6};
    xcp__rrd *r = make("memory", XCP__DS_GAUGE, INFINITY);
    xcp__buf b = {0};

    feed(r, v, 3);
    xcp__rrd_xml(r, &b);
    cr_expect(strstr(b.data, "<rrd><version>0003</version><step>5</step>"
                             "<lastupdate>1515</lastupdate><ds><name>memory"
                             "</name><type>GAUGE</type><minimal_heartbeat>"
                             "300</minimal_heartbeat><min>0.0</min><max>"
                             "Infinity</max>") != NULL, "%s", b.data);
    cr_expect(strstr(b.data, "<rra><cf>AVERAGE</cf><pdp_per_row>3"
                             "</pdp_per_row><params><xff>0.5</xff></params>"
                             "<cdp_prep><ds><primary_value>0.0"
                             "</primary_value>") != NULL);
    /* rows oldest first: the last row of the 5 s archive is the newest */
    cr_expect(strstr(b.data, "<row><v>6</v></row></database></rra>") != NULL);
    xcp__buf_free(&b);
    xcp__rrd_free(r);
}

Test(rrd, updates_pick_the_archive_and_write_xport)
{
    static const double v[] = {1, 2, 6, 4, 8, 3};
    xcp__rrd *h = make("cpu_avg", XCP__DS_GAUGE, INFINITY);
    xcp__rrd *m = make("memory", XCP__DS_GAUGE, INFINITY);
    xcp__rrd_src src[2] = {{"host:H:", h}, {"vm:V:", m}};
    xcp__buf b = {0};

    feed(h, v, 6);
    feed(m, v, 6);
    /* interval 5 since 10 s before the last update: the 5 s archive */
    cr_assert_eq(xcp__rrd_export(src, 2, -10, 5, XCP__CF_AVERAGE, false, &b),
                 0);
    cr_expect(strstr(b.data, "<xport><meta><start>1525</start><step>5</step>"
                             "<end>1530</end><rows>3</rows><columns>2"
                             "</columns><legend><entry>AVERAGE:host:H:"
                             "cpu_avg</entry><entry>AVERAGE:vm:V:memory"
                             "</entry></legend></meta><data><row><t>1530"
                             "</t><v>3</v><v>3</v></row>") != NULL,
              "%s", b.data);
    xcp__buf_free(&b);
    /* interval 15, every cf: the 3-PDP archives AVERAGE, MIN, MAX */
    cr_assert_eq(xcp__rrd_export(src, 1, 1500, 15, -1, true, &b), 0);
    cr_expect(strstr(b.data, "\"step\":\"15\"") != NULL, "%s", b.data);
    cr_expect(strstr(b.data, "\"legend\":[\"AVERAGE:host:H:cpu_avg\","
                             "\"MIN:host:H:cpu_avg\",\"MAX:host:H:cpu_avg\"]")
                  != NULL, "%s", b.data);
    cr_expect(strstr(b.data, "{\"t\":\"1530\",\"values\":[\"5\",\"3\",\"8\"]}")
                  != NULL, "%s", b.data);
    xcp__buf_free(&b);
    /* a cf no archive has: no archive fits */
    cr_expect_eq(xcp__rrd_export(src, 1, 1500, 5, XCP__CF_LAST, false, &b),
                 -1);
    xcp__buf_free(&b);
    xcp__rrd_free(h);
    xcp__rrd_free(m);
}

Test(rrd, number_format_is_xapis_and_printfs)
{
    char a[40], b[40];
    unsigned s = 7, i;
    float f;

    xcp__rrd_fmt(a, NAN);
    cr_expect_str_eq(a, "NaN");
    xcp__rrd_fmt(a, INFINITY);
    cr_expect_str_eq(a, "Infinity");
    xcp__rrd_fmt(a, -INFINITY);
    cr_expect_str_eq(a, "-Infinity");
    xcp__rrd_fmt(a, 0.0);
    cr_expect_str_eq(a, "0.0");
    xcp__rrd_fmt(a, 5.0);
    cr_expect_str_eq(a, "5");
    xcp__rrd_fmt(a, (float)0.1);
    cr_expect_str_eq(a, "0.100000001490116");
    /* the fast path agrees with printf's %.15g */
    for (i = 0; i < 200000; i++) {
        s = s * 1103515245u + 12345u;
        memcpy(&f, &s, sizeof(f));
        if (!isfinite(f))
            continue;
        xcp__rrd_fmt(a, i % 2 ? (double)f : (double)(float)(s % 100000 / 7.0));
        snprintf(b, sizeof(b), "%.15g",
                 i % 2 ? (double)f : (double)(float)(s % 100000 / 7.0));
        if (strcmp(b, "0") != 0)
            cr_assert_str_eq(a, b, "value %u", i);
    }
}

/* The formatter's exact path (decimal exponents -13..27, fixed and
 * exponent forms) gives printf's %.15g digit for digit: random doubles
 * and floats over that range, values exactly half-way between two
 * 15-digit results (rounded to even as printf does), and the edges
 * where rounding carries into one more digit. */
Test(rrd, fmt_exact_as_printf)
{
    static const double cases[] = {
        12345678901234.5, 12345678901235.5, 1234567890123.25,
        1234567890123.75, -12345678901234.5, 999999999999999.5,
        99999999999999.95, 9.999999999999999, 0.99999999999999999,
        0.000099999999999999995, 1e-4, 1e-5, 1.5e-13, 1e15 + 0.5,
        123456789012345678.0, 1e27, 9.9999999999999999e26, 5e-324,
        2.2250738585072014e-308, 1.7976931348623157e308, 1e-14, 3e28,
        0.1, 0.2, 0.3, 1.0 / 3, -2.0 / 3, 100.25, 4503599627370495.5};
    char a[64], b[64];
    uint64_t s = 88172645463325252ull;
    unsigned i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        xcp__rrd_fmt(a, cases[i]);
        snprintf(b, sizeof(b), "%.15g", cases[i]);
        cr_assert_str_eq(a, b, "case %u", i);
    }
    for (i = 0; i < 2000000; i++) {
        double v, scale;
        float f;

        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        /* a mantissa in [1, 10) times 10^(-15..29), both signs */
        scale = pow(10.0, (double)((int)(s % 45) - 15));
        v = (1.0 + (double)(s >> 11) / 9007199254740992.0 * 9.0) * scale;
        if (s & 1)
            v = -v;
        if (i % 3 == 0) {
            f = (float)v;
            v = f;
        } else if (i % 3 == 1) {
            /* few significant bits: more values near half-way */
            v = ldexp(floor(ldexp(v, 20 - ilogb(v))), ilogb(v) - 20);
        }
        if (v == 0.0)
            continue;
        xcp__rrd_fmt(a, v);
        snprintf(b, sizeof(b), "%.15g", v);
        cr_assert_str_eq(a, b, "value %.17g", v);
    }
}

/* XAPI's RRD XML read back (PUT /rrd, api/metrics_xml.c): what GET
 * /vm_rrd wrote loads to an RRD that writes the same XML (the last raw
 * value, which XAPI's reader drops too, aside) and goes on updating. */
Test(rrd, xml_reads_back_to_the_same_rrd)
{
    static const double v[] = {1, 2, 6, 4, 8, 3, 7};
    xcp__rrd *r = make("memory", XCP__DS_GAUGE, INFINITY), *back;
    xcp__ds_def d2 = {"cpu0", XCP__DS_DERIVE, 0.0, 1.0};
    xcp__buf a = {0}, b = {0};
    char why[256] = "";
    size_t i;

    cr_assert_eq(xcp__rrd_add_ds(r, &d2, T0), 1);
    for (i = 0; i < 7; i++) {
        double w[2] = {v[i], 0.25 * 5.0 * (double)i};

        xcp__rrd_update(r, T0 + 5.0 * (double)(i + 1), w, 2);
    }
    for (i = 0; i < r->n_ds; i++)
        r->ds[i].last_known = false;
    xcp__rrd_xml(r, &a);
    back = xcp__rrd_from_xapi_xml(a.data, a.len, why, sizeof(why));
    cr_assert_not_null(back, "%s", why);
    cr_expect_eq(back->n_ds, 2);
    cr_expect_eq(back->n_rra, 4);
    cr_expect_eq(back->rra[1].rows, 10);
    xcp__rrd_xml(back, &b);
    cr_expect_str_eq(b.data, a.data);
    cr_expect_float_eq(row(back, 0, 0, 0), 7.0, 1e-6);
    cr_expect_float_eq(row(back, 0, 1, 0), 0.25, 1e-6);
    {
        double w[2] = {10, 100};
        unsigned k, g;

        /* both go on alike (the original's last reading was cleared
         * above, as a move clears it) */
        xcp__rrd_update(r, T0 + 40, w, 2);
        xcp__rrd_update(back, T0 + 40, w, 2);
        cr_expect_float_eq(row(back, 0, 0, 0), 10.0, 1e-6);
        for (k = 0; k < 4; k++)
            for (g = 0; g < 10; g++)
                for (i = 0; i < 2; i++) {
                    double x = row(r, k, i, g), y = row(back, k, i, g);

                    cr_expect((isnan(x) && isnan(y)) || x == y,
                              "archive %u row %u ds %zu: %g vs %g", k, g, i,
                              x, y);
                }
    }
    xcp__buf_free(&a);
    xcp__buf_free(&b);
    xcp__rrd_free(r);
    xcp__rrd_free(back);
}

static void refused(const char *doc, const char *reason)
{
    char why[256] = "";
    xcp__rrd *r = xcp__rrd_from_xapi_xml(doc, strlen(doc), why, sizeof(why));

    cr_expect_null(r, "accepted: %s", doc);
    xcp__rrd_free(r);
    cr_expect(strstr(why, reason) != NULL, "'%s' does not say '%s'", why,
              reason);
}

#define HEAD "<rrd><version>0003</version><step>5</step>" \
             "<lastupdate>1515</lastupdate>"
#define DS "<ds><name>m</name><type>GAUGE</type>" \
           "<minimal_heartbeat>300</minimal_heartbeat><min>0.0</min>" \
           "<max>10</max><last_ds>0.0</last_ds><value>0.0</value>" \
           "<unknown_sec>0</unknown_sec></ds>"
#define RRA_HEAD "<rra><cf>AVERAGE</cf><pdp_per_row>1</pdp_per_row>" \
                 "<params><xff>0.5</xff></params><cdp_prep><ds>" \
                 "<primary_value>0.0</primary_value><secondary_value>0.0" \
                 "</secondary_value><value>0.0</value>" \
                 "<unknown_datapoints>0</unknown_datapoints></ds>" \
                 "</cdp_prep><database>"

Test(rrd, xml_as_xapi_reads_it_and_bad_documents_refused)
{
    char why[256] = "";
    const char *ok = HEAD DS "<ds><name>m</name><type>GAUGE</type>"
                     "<minimal_heartbeat>1</minimal_heartbeat><min>-5</min>"
                     "<max>1</max><last_ds>0.0</last_ds><value>0.0</value>"
                     "<unknown_sec>0</unknown_sec><extra>x</extra></ds>"
                     "<rra><cf>MAX</cf><pdp_per_row>1</pdp_per_row>"
                     "<params><xff>0.5</xff></params><cdp_prep>"
                     "<ds><value>0.0</value><unknown_datapoints>0"
                     "</unknown_datapoints></ds><ds><value>0.0</value>"
                     "<unknown_datapoints>0</unknown_datapoints></ds>"
                     "</cdp_prep><database><row><v>1</v><v>2</v></row>"
                     "<row><v>11</v><v>0.5</v></row></database></rra></rrd>";
    xcp__rrd *r = xcp__rrd_from_xapi_xml(ok, strlen(ok), why, sizeof(why));

    cr_assert_not_null(r, "%s", why);
    /* a name given twice keeps the first, a value outside [min, max] is
     * unknown, unknown elements are skipped */
    cr_expect_eq(r->n_ds, 1);
    cr_expect_eq(r->rra[0].rows, 2);
    cr_expect_eq(r->rra[0].cf, XCP__CF_MAX);
    cr_expect_float_eq(row(r, 0, 0, 1), 1.0, 1e-6);
    cr_expect(isnan(row(r, 0, 0, 0)));
    xcp__rrd_free(r);

    refused("not xml", "XML");
    refused("<vm/>", "not an <rrd>");
    refused(HEAD DS "</rrd>", "no archive");
    refused("<rrd><lastupdate>1</lastupdate>" DS RRA_HEAD
            "<row><v>1</v></row></database></rra></rrd>", "step");
    refused(HEAD "<ds><name>m</name><type>COUNTER</type></ds></rrd>",
            "GAUGE");
    refused(HEAD DS RRA_HEAD "<row><v>1</v><v>2</v></row></database></rra>"
            "</rrd>", "more values");
    refused(HEAD DS RRA_HEAD "<row></row></database></rra></rrd>",
            "0 values");
    refused(HEAD DS RRA_HEAD "<row><v>x</v></row></database></rra></rrd>",
            "not a number");
    refused(HEAD DS RRA_HEAD "</database></rra></rrd>", "0 rows");
    refused(HEAD DS "<rra><cf>AVERAGE</cf><pdp_per_row>1</pdp_per_row>"
            "<params><xff>0.5</xff></params><cdp_prep></cdp_prep><database>"
            "<row><v>1</v></row></database></rra></rrd>", "cdp_prep");
    refused("<!DOCTYPE rrd [<!ENTITY a \"aaaaaaaa\"><!ENTITY b "
            "\"&a;&a;&a;&a;&a;&a;&a;&a;\">]><rrd><step>&b;</step></rrd>",
            "");
    refused(HEAD DS RRA_HEAD "<row><v>1</v></row></database></rra>"
            "<x><x><x><x><x><x><x><x><x></x></x></x></x></x></x></x></x></x>"
            "</rrd>", "too deep");
    refused(HEAD DS RRA_HEAD "<row><v>1</v></row></database></rra>", "XML");
}
