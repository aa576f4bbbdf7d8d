/*
 * test_core.c - the core utilities every stage relies on: JSON string escaping (output must
 * always be valid JSON, whatever bytes the logs carried), addresses, times, capped buffers,
 * error counting by reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/diag.h"
#include "core/ip.h"
#include "core/timeparse.h"

static char *esc(const char *s, size_t n, ch_buf *b)
{
    ch_buf_clear(b);
    assert_int_equal(ch_buf_add_json_str(b, s, n), 0);
    return b->data;
}

static void test_json_escaping_keeps_output_valid(void **state)
{
    (void)state;
    ch_buf b;
    ch_buf_init(&b, 0);
    assert_string_equal(esc("plain ascii value 123", 21, &b), "\"plain ascii value 123\"");
    assert_string_equal(esc("a\"b\\c", 5, &b), "\"a\\\"b\\\\c\"");
    assert_string_equal(esc("tab\there\nnl", 11, &b), "\"tab\\there\\nnl\"");
    assert_string_equal(esc("\x01\x1f", 2, &b), "\"\\u0001\\u001f\"");
    /* Valid UTF-8 passes through; invalid bytes become U+FFFD. */
    assert_string_equal(esc("K\xc3\xb6ln", 5, &b), "\"K\xc3\xb6ln\"");
    assert_string_equal(esc("bad\xff\xfe!", 6, &b), "\"bad\xef\xbf\xbd\xef\xbf\xbd!\"");
    /* A quote after the first 8 plain bytes is still escaped (the 8-byte fast path). */
    assert_string_equal(esc("12345678\"9", 10, &b), "\"12345678\\\"9\"");
    assert_string_equal(esc("1234567812345678\n", 17, &b), "\"1234567812345678\\n\"");
    /* Embedded NUL is data, not the end. */
    assert_string_equal(esc("a\0b", 3, &b), "\"a\\u0000b\"");
    ch_buf_free(&b);
}

static void test_buffer_refuses_to_grow_past_its_cap(void **state)
{
    (void)state;
    ch_buf b;
    ch_buf_init(&b, 16);
    assert_int_equal(ch_buf_add(&b, "0123456789", 10), 0);
    assert_int_equal(ch_buf_add(&b, "0123456789", 10), CH_ELIMIT);
    assert_int_equal(b.len, 10);
    ch_buf_free(&b);
}

static void test_ipv4_strict_parse_and_format(void **state)
{
    (void)state;
    ch_ip ip;
    char out[48];
    assert_true(ch_ip_parse("81.2.69.142", 11, &ip));
    assert_int_equal(ip.family, 4);
    ch_ip_format(&ip, out);
    assert_string_equal(out, "81.2.69.142");
    assert_true(ch_ip_parse("0.0.0.0", 7, &ip));
    ch_ip_format(&ip, out);
    assert_string_equal(out, "0.0.0.0");
    assert_true(ch_ip_parse("255.255.255.255", 15, &ip));
    /* Leading zeros (anonymised CloudTrail such as 06.237.252.245), ranges, junk: rejected. */
    assert_false(ch_ip_parse("06.237.252.245", 14, &ip));
    assert_false(ch_ip_parse("256.1.1.1", 9, &ip));
    assert_false(ch_ip_parse("1.2.3", 5, &ip));
    assert_false(ch_ip_parse("1.2.3.4.5", 9, &ip));
    assert_false(ch_ip_parse("ec2.amazonaws.com", 17, &ip));
    assert_false(ch_ip_parse("", 0, &ip));
}

static void test_ipv6_and_mapped_ipv4(void **state)
{
    (void)state;
    ch_ip ip, net;
    char out[48];
    assert_true(ch_ip_parse("2001:db8::1", 11, &ip));
    assert_int_equal(ip.family, 6);
    ch_ip_format(&ip, out);
    assert_string_equal(out, "2001:db8::1");
    assert_true(ch_ip_parse("::ffff:10.1.2.3", 15, &ip));
    assert_int_equal(ip.family, 4);
    assert_true(ch_ip_parse("10.0.0.0", 8, &net));
    assert_true(ch_ip_in_prefix(&ip, &net, 8));
    assert_true(ch_ip_parse("10.2.0.0", 8, &net));
    assert_false(ch_ip_in_prefix(&ip, &net, 16));
}

static void test_internal_ranges_are_not_geolocated(void **state)
{
    (void)state;
    const char *internal[] = {"10.1.2.3",  "172.16.0.1",      "172.31.255.255", "192.168.1.1",
                              "127.0.0.1", "169.254.169.254", "100.64.0.1",     "100.127.255.255",
                              "::1",       "fe80::1",         "fd00::1",        NULL};
    const char *external[] = {"8.8.8.8",     "172.32.0.1",   "100.128.0.1",
                              "81.2.69.142", "2a00:1450::1", NULL};
    ch_ip ip;
    for (int i = 0; internal[i]; i++) {
        assert_true(ch_ip_parse(internal[i], strlen(internal[i]), &ip));
        assert_true(ch_ip_is_internal(&ip));
    }
    for (int i = 0; external[i]; i++) {
        assert_true(ch_ip_parse(external[i], strlen(external[i]), &ip));
        assert_false(ch_ip_is_internal(&ip));
    }
}

static void test_iso8601_round_trip_and_offsets(void **state)
{
    (void)state;
    int64_t ms;
    char out[32];
    assert_true(ch_time_parse_iso8601("2024-08-02T08:53:24Z", 20, &ms));
    assert_int_equal(ms, 1722588804000LL);
    ch_time_format(ms, out);
    assert_string_equal(out, "2024-08-02T08:53:24Z");
    assert_true(ch_time_parse_iso8601("2024-08-02T10:53:24.250+02:00", 29, &ms));
    assert_int_equal(ms, 1722588804250LL);
    ch_time_format(ms, out);
    assert_string_equal(out, "2024-08-02T08:53:24.250Z");
    assert_true(ch_time_parse_iso8601("2024-02-29T00:00:00Z", 20, &ms));
    assert_false(ch_time_parse_iso8601("2023-02-29T00:00:00Z", 20, &ms));
    assert_false(ch_time_parse_iso8601("2024-13-01T00:00:00Z", 20, &ms));
    assert_false(ch_time_parse_iso8601("2024-08-02 junk", 15, &ms));
    assert_false(ch_time_parse_iso8601("2024-08-02T08:53:24Zx", 21, &ms));
    ch_time_format(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00Z");
}

static void test_errors_counted_by_reason_and_messages_capped(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *sink = open_memstream(&text, &len);
    ch_diag d;
    ch_diag_init(&d, sink);
    for (int i = 0; i < 50; i++)
        ch_diag_report(&d, CH_DS_CLOUDTRAIL, "f.json", (uint64_t)i + 1, UINT64_MAX, "json_syntax",
                       "bad %d", i);
    ch_diag_report(&d, CH_DS_VPCFLOW, "g.log", 0, 77, "bad_address", "x");
    fclose(sink);
    assert_int_equal(ch_diag_count(&d, "json_syntax"), 50);
    assert_int_equal(ch_diag_count(&d, "bad_address"), 1);
    assert_int_equal(d.errors_total, 51);
    assert_int_equal(d.by_ds[CH_DS_CLOUDTRAIL].errors, 50);
    assert_non_null(strstr(text, "f.json:1: json_syntax: bad 0"));
    assert_null(strstr(text, "bad 30"));
    assert_non_null(strstr(text, "further 'json_syntax' errors are counted"));
    assert_non_null(strstr(text, "g.log: offset 77: bad_address: x"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_escaping_keeps_output_valid),
        cmocka_unit_test(test_buffer_refuses_to_grow_past_its_cap),
        cmocka_unit_test(test_ipv4_strict_parse_and_format),
        cmocka_unit_test(test_ipv6_and_mapped_ipv4),
        cmocka_unit_test(test_internal_ranges_are_not_geolocated),
        cmocka_unit_test(test_iso8601_round_trip_and_offsets),
        cmocka_unit_test(test_errors_counted_by_reason_and_messages_capped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
