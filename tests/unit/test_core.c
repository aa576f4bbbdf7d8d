/*
 * test_core.c - the core utilities every stage relies on: JSON string escaping (output must
 * always be valid JSON, whatever bytes the logs carried), addresses, times, capped buffers,
 * the arena and the pages populated ahead of writes, error counting by reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/diag.h"
#include "core/ip.h"
#include "core/mem.h"
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

/* A growing list keeps what it held when it grows, and a failed or overflowing growth leaves the
 * caller's array and capacity as they were, so the caller can free it and report. */
static void test_growing_list_keeps_its_elements_and_survives_failure(void **state)
{
    (void)state;
    size_t cap = 0, n = 0;
    uint32_t *v = NULL;
    for (uint32_t i = 0; i < 1000; i++) {
        if (n == cap) {
            uint32_t *g = ch_grow(v, &cap, 16, sizeof *g);
            assert_non_null(g);
            v = g;
        }
        v[n++] = i * 7u;
    }
    assert_int_equal(cap, 1024); /* 16 doubled six times */
    for (uint32_t i = 0; i < 1000; i++)
        assert_int_equal(v[i], i * 7u);
    ch_mem_fail_after(0);
    assert_null(ch_grow(v, &cap, 16, sizeof *v));
    ch_mem_fail_after(-1);
    assert_int_equal(cap, 1024);
    assert_int_equal(v[999], 999u * 7u);
    /* Sizes past SIZE_MAX are refused before any allocation, not wrapped into a small one. */
    size_t huge = SIZE_MAX / 2 + 1;
    assert_null(ch_grow(v, &huge, 16, 1));
    assert_int_equal(huge, SIZE_MAX / 2 + 1);
    size_t big = SIZE_MAX / 16;
    assert_null(ch_grow(v, &big, 16, 16));
    assert_int_equal(big, SIZE_MAX / 16);
    ch_free(v);
}

/* Pages of p..p+n that are resident. */
static size_t resident(void *p, size_t n, size_t page)
{
    unsigned char vec[64];
    size_t np = n / page, r = 0;
    assert_true(np <= sizeof vec);
    assert_int_equal(mincore(p, n, vec), 0);
    for (size_t i = 0; i < np; i++)
        r += vec[i] & 1;
    return r;
}

/* ch_mem_populate faults the whole pages in, in one call, and never changes what they hold; the
 * arena's large chunks, populated when made, keep every allocation's bytes. */
static void test_populated_pages_are_resident_and_keep_their_bytes(void **state)
{
    (void)state;
    size_t page = (size_t)sysconf(_SC_PAGESIZE), n = 16 * page;
    char *m = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(m != MAP_FAILED);
    assert_int_equal(resident(m, n, page), 0);
    memset(m + 3 * page, 'x', 100);  /* a page written before */
    ch_mem_populate(m + 10, n - 20); /* the partial first and last pages are left alone */
    assert_int_equal(resident(m, n, page), 14); /* pages 1 to 14 */
    assert_int_equal(resident(m, page, page), 0);
    assert_int_equal(resident(m + 15 * page, page, page), 0);
    for (size_t i = 0; i < 100; i++)
        assert_int_equal(m[3 * page + i], 'x');
    assert_int_equal(m[4 * page], 0);
    ch_mem_populate(NULL, 1 << 20); /* nothing to do */
    ch_mem_populate(m, 1);
    munmap(m, n);

    ch_arena a;
    ch_arena_init(&a, 1 << 20);
    char *blocks[3000];
    for (int i = 0; i < 3000; i++) { /* about three chunks */
        blocks[i] = ch_arena_alloc(&a, 1000);
        assert_non_null(blocks[i]);
        memset(blocks[i], 'a' + i % 26, 1000);
    }
    for (int i = 0; i < 3000; i++)
        for (int j = 0; j < 1000; j += 111)
            assert_int_equal(blocks[i][j], 'a' + i % 26);
    ch_arena_free(&a);
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

/* A civil-calendar reference, independent of timeparse.c: days from 1970-01-01 by counting. */
static int64_t ref_days(int y, int m, int d)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int64_t days = 0;
    for (int yy = 1970; yy < y; yy++)
        days += 365 + ((yy % 4 == 0 && yy % 100 != 0) || yy % 400 == 0);
    for (int mm = 1; mm < m; mm++)
        days += mdays[mm - 1] + (mm == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
    return days + d - 1;
}

/* Parse and format remember the last date they saw (events come in time order): answers must
 * not depend on it. A valid date followed by an invalid time on that date, or by an invalid
 * date, is still refused; dates alternate and come back; out-of-range years are formatted as
 * before. */
static void test_iso8601_answers_do_not_depend_on_the_date_before(void **state)
{
    (void)state;
    int64_t ms;
    char out[40], text[40];
    const char *bad_after_good[] = {
        "2024-06-03T24:00:00Z", "2024-06-03T23:60:00Z", "2024-06-03T23:59:61Z",
        "2024-06-03X00:00:00Z", "2024-06-03T0a:00:00Z", "2024-06-03T00:00:00+",
        "2024-06-03T00:00:00Q", "2024-06-03T00-00:00Z", "2024-06-03"};
    for (size_t i = 0; i < sizeof bad_after_good / sizeof *bad_after_good; i++) {
        assert_true(ch_time_parse_iso8601("2024-06-03T12:00:00Z", 20, &ms));
        assert_int_equal(ms, (ref_days(2024, 6, 3) * 86400 + 12 * 3600) * 1000);
        assert_false(ch_time_parse_iso8601(bad_after_good[i], strlen(bad_after_good[i]), &ms));
    }
    assert_true(ch_time_parse_iso8601("2024-02-29T00:00:00Z", 20, &ms));
    assert_false(ch_time_parse_iso8601("2023-02-29T00:00:00Z", 20, &ms));
    assert_false(ch_time_parse_iso8601("2023-02-29T00:00:00Z", 20, &ms));
    assert_true(ch_time_parse_iso8601("2024-02-29 23:59:60.5+01:30", 27, &ms));
    assert_int_equal(
        ms,
        ((ref_days(2024, 2, 29) * 86400 + 23 * 3600 + 59 * 60 + 60) - (3600 + 1800)) * 1000 + 500);
    /* Dates in turn, each second of a few hours around midnight, parsed and formatted. */
    const int dates[][3] = {{2024, 6, 3}, {1999, 12, 31}, {2024, 6, 3}, {2000, 2, 29},
                            {2024, 6, 4}, {1970, 1, 1},   {2024, 6, 3}, {9999, 12, 31}};
    for (size_t k = 0; k < sizeof dates / sizeof *dates; k++) {
        for (int sod = 0; sod < 86400; sod += 997) {
            snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", dates[k][0],
                     dates[k][1], dates[k][2], sod / 3600, sod / 60 % 60, sod % 60, sod % 1000);
            assert_true(ch_time_parse_iso8601(text, strlen(text), &ms));
            int64_t want =
                (ref_days(dates[k][0], dates[k][1], dates[k][2]) * 86400 + sod) * 1000 + sod % 1000;
            assert_int_equal(ms, want);
            ch_time_format(ms, out);
            if (sod % 1000 == 0)
                text[19] = 'Z', text[20] = '\0';
            assert_string_equal(out, text);
        }
    }
    /* A year past 9999 and one before year 0 between days of the remembered one. */
    ch_time_format((ref_days(2024, 6, 3) * 86400 + 5) * 1000, out);
    assert_string_equal(out, "2024-06-03T00:00:05Z");
    ch_time_format(253402300800000LL, out); /* 10000-01-01 */
    assert_string_equal(out, "10000-01-01T00:00:00Z");
    ch_time_format(-62167219201000LL, out); /* one second before 0000-01-01 */
    assert_string_equal(out, "-001-12-31T23:59:59Z");
    ch_time_format((ref_days(2024, 6, 3) * 86400 + 6) * 1000, out);
    assert_string_equal(out, "2024-06-03T00:00:06Z");
    ch_time_format(-1, out);
    assert_string_equal(out, "1969-12-31T23:59:59.999Z");
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
        cmocka_unit_test(test_growing_list_keeps_its_elements_and_survives_failure),
        cmocka_unit_test(test_populated_pages_are_resident_and_keep_their_bytes),
        cmocka_unit_test(test_ipv4_strict_parse_and_format),
        cmocka_unit_test(test_ipv6_and_mapped_ipv4),
        cmocka_unit_test(test_internal_ranges_are_not_geolocated),
        cmocka_unit_test(test_iso8601_round_trip_and_offsets),
        cmocka_unit_test(test_iso8601_answers_do_not_depend_on_the_date_before),
        cmocka_unit_test(test_errors_counted_by_reason_and_messages_capped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
