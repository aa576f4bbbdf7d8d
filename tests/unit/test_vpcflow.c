/*
 * test_vpcflow.c - the VPC Flow Logs parser: header resolution, the header-less default
 * formats, typed fields, NODATA/SKIPDATA, and bad lines that must cost only themselves.
 * Inputs are written to temporary files and read through the real input layer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "corpora.h"

#include "core/diag.h"
#include "core/ip.h"
#include "parse/source.h"

extern const ch_source_type ch_source_vpcflow;

#define RUN_SOURCE ch_source_vpcflow
#define RUN_TAG "vpcflow"
#include "source_run.h"

static const ch_ds_stats *stats(const run *r) { return &r->diag.by_ds[CH_DS_VPCFLOW]; }

static void assert_ip(const ch_ip *ip, const char *want)
{
    char buf[64];
    ch_ip_format(ip, buf);
    assert_string_equal(buf, want);
}

static void assert_sv(ch_sv v, const char *want)
{
    char buf[256];
    assert_true(v.n < sizeof buf);
    memcpy(buf, v.p ? v.p : "", v.n);
    buf[v.n] = '\0';
    assert_string_equal(buf, want);
}

/* The raw value of column `name`, or NULL. */
static const ch_sv *raw(const ch_event *ev, const char *name)
{
    for (uint32_t i = 0; i < ev->raw_count; i++)
        if (ch_sv_eq(ev->raw_names[i], name, strlen(name)))
            return &ev->raw_values[i];
    return NULL;
}

static int count_events(run *r)
{
    ch_event ev;
    int n = 0;
    while (ch_source_vpcflow.next(r->st, &ev) == 1)
        n++;
    return n;
}

#define V2_HEADER                                                                                  \
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes "      \
    "start end action log-status\n"

static void test_v2_default_with_header_maps_typed_fields(void **state)
{
    (void)state;
    run r = {0};
    run_open(&r, V2_HEADER "2 123456789010 eni-1235b8ca123456789 172.31.16.139 203.0.113.12 "
                           "49761 3333 6 20 4249 1418530010 1418530070 ACCEPT OK\n");
    ch_event ev;
    assert_int_equal(ch_source_vpcflow.next(r.st, &ev), 1);
    assert_int_equal(ev.dataset, CH_DS_VPCFLOW);
    assert_int_equal(ev.ts_ms, 1418530010000LL);
    assert_true(ev.flags & CH_F_END);
    assert_int_equal(ev.end_ms, 1418530070000LL);
    assert_ip(&ev.src_ip, "172.31.16.139");
    assert_ip(&ev.dst_ip, "203.0.113.12");
    assert_true(ev.flags & CH_F_SRC_PORT);
    assert_true(ev.flags & CH_F_DST_PORT);
    assert_int_equal(ev.src_port, 49761);
    assert_int_equal(ev.dst_port, 3333);
    assert_int_equal(ev.iana_proto, 6);
    assert_sv(ev.transport, "tcp");
    assert_int_equal(ev.packets, 20);
    assert_int_equal(ev.bytes, 4249);
    assert_true(ev.flags & CH_F_BYTES);
    assert_true(ev.flags & CH_F_PACKETS);
    assert_sv(ev.action, "ACCEPT");
    assert_int_equal(ev.outcome, CH_OUTCOME_SUCCESS);
    assert_sv(ev.category, "network");
    assert_sv(ev.type, "connection");
    assert_sv(ev.account_id, "123456789010");
    assert_sv(ev.interface_id, "eni-1235b8ca123456789");
    assert_int_equal(ev.raw_count, 14);
    assert_sv(*raw(&ev, "log-status"), "OK");
    assert_int_equal(ch_source_vpcflow.next(r.st, &ev), 0);
    assert_int_equal(stats(&r)->records, 1);
    assert_int_equal(stats(&r)->events, 1);
    assert_int_equal(r.diag.errors_total, 0);
    run_close(&r);
}

static void test_headerless_v2_read_as_default_format(void **state)
{
    (void)state;
    run r = {0};
    run_open(&r, "2 123456789010 eni-1235b8ca123456789 78.24.182.42 158.109.0.1 49761 3389 6 20 "
                 "4249 1418530010 1418530070 REJECT OK\n");
    ch_event ev;
    assert_int_equal(ch_source_vpcflow.next(r.st, &ev), 1);
    assert_ip(&ev.src_ip, "78.24.182.42");
    assert_int_equal(ev.dst_port, 3389);
    assert_sv(ev.action, "REJECT");
    assert_int_equal(ev.outcome, CH_OUTCOME_FAILURE);
    assert_sv(ev.raw_names[2], "interface-id");
    assert_int_equal(ch_source_vpcflow.next(r.st, &ev), 0);
    run_close(&r);
}

static void test_cloudwatch_export_time_prefix_is_dropped(void **state)
{
    (void)state;
    run r = {0};
    run_open(&r, "2024-08-02T08:53:24.000Z 2 123456789010 eni-1235b8ca123456789 10.0.0.1 "
                 "10.0.0.2 1 2 17 1 80 1722588804 1722588864 ACCEPT OK\n");
    ch_event ev;
    assert_int_equal(ch_source_vpcflow.next(r.st, &ev), 1);
    assert_int_equal(ev.ts_ms, 1722588804000LL);
    assert_sv(ev.transport, "udp");
    assert_int_equal(ev.raw_count, 14);
    assert_sv(ev.raw_values[0], "2");
    run_close(&r);
}

static void test_custom_v5_field_order_resolved_from_header(void **state)
{
    (void)state;
    run r = {0};
    run_open(&r, "region instance-id start end srcaddr srcport dstaddr dstport protocol action "
                 "log-status flow-direction account-id\n"
                 "eu-west-3 i-0123456789abcdef0 1700000000 1700000060 10.1.2.3 40000 "
                 "198.51.100.7 14444 6 ACCEPT OK egress 111122223333\n");
    ch_event ev;
    assert_int_equal(ch_source_vpcflow.next(r.st, &ev), 1);
    assert_sv(ev.region, "eu-west-3");
    assert_sv(ev.instance_id, "i-0123456789abcdef0");
    assert_sv(ev.account_id, "111122223333");
    assert_int_equal(ev.ts_ms, 1700000000000LL);
    assert_ip(&ev.dst_ip, "198.51.100.7");
    assert_int_equal(ev.dst_port, 14444);
    assert_false(ev.flags & CH_F_BYTES); /* not in this format */
    assert_int_equal(ev.interface_id.n, 0);
    assert_sv(*raw(&ev, "flow-direction"), "egress");
    run_close(&r);
}

static void test_ipv6_addresses_parsed(void **state)
{
    (void)state;
    run r = {0};
    run_open(&r, "2 123456789010 eni-1235b8ca123456789 2001:db8:1234:a100:8d6e:3477:df66:f105 "
                 "2001:db8:1234:a102:3304:8879:34cf:4071 34892 22 6 54 8855 1477913708 "
                 "1477913820 ACCEPT OK\n");
    ch_event ev;
    assert_int_equal(ch_source_vpcflow.next(r.st, &ev), 1);
    assert_int_equal(ev.src_ip.family, 6);
    assert_ip(&ev.src_ip, "2001:db8:1234:a100:8d6e:3477:df66:f105");
    assert_ip(&ev.dst_ip, "2001:db8:1234:a102:3304:8879:34cf:4071");
    run_close(&r);
}

static void test_nodata_and_skipdata_are_skipped_not_errors(void **state)
{
    (void)state;
    run r = {0};
    run_open(&r, V2_HEADER
             "2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA\n"
             "2 123456789010 eni-11111111aaaaaaaaa - - - - - - - 1431280876 1431280934 - "
             "SKIPDATA\n"
             "2 123456789010 eni-1235b8ca123456789 10.0.0.1 10.0.0.2 1 2 6 1 40 1431280876 "
             "1431280934 ACCEPT OK\n");
    assert_int_equal(count_events(&r), 1);
    assert_int_equal(stats(&r)->records, 3);
    assert_int_equal(stats(&r)->skipped, 2);
    assert_int_equal(stats(&r)->events, 1);
    assert_int_equal(r.diag.errors_total, 0);
    run_close(&r);
}

static void test_bad_lines_between_good_ones_cost_only_themselves(void **state)
{
    (void)state;
    run r = {0};
    run_open(&r, V2_HEADER
             "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 40 1431280876 1431280934 ACCEPT OK\n"
             "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 40 1431280876 ACCEPT OK\n"              /* 13 */
             "2 1 eni-1 10.0.0.999 10.0.0.2 1 2 6 1 40 1431280876 1431280934 ACCEPT OK\n" /* addr */
             "2 1 eni-1 10.0.0.1 10.0.0.2 1 70000 6 1 40 1431280876 1431280934 ACCEPT OK\n"
             "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 256 1 40 1431280876 1431280934 ACCEPT OK\n"
             "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 x 40 1431280876 1431280934 ACCEPT OK\n"
             "\n"
             "2 1 eni-1 10.0.0.3 10.0.0.4 1 2 6 1 40 1431280876 1431280934 REJECT OK\n");
    ch_event ev;
    assert_int_equal(ch_source_vpcflow.next(r.st, &ev), 1);
    assert_ip(&ev.src_ip, "10.0.0.1");
    assert_int_equal(ch_source_vpcflow.next(r.st, &ev), 1);
    assert_ip(&ev.src_ip, "10.0.0.3");
    assert_int_equal(ch_source_vpcflow.next(r.st, &ev), 0);
    assert_int_equal(ch_diag_count(&r.diag, "bad_field_count"), 1);
    assert_int_equal(ch_diag_count(&r.diag, "bad_address"), 1);
    assert_int_equal(ch_diag_count(&r.diag, "bad_number"), 3);
    assert_int_equal(stats(&r)->records, 7);
    assert_int_equal(stats(&r)->errors, 5);
    assert_int_equal(stats(&r)->events, 2);
    run_close(&r);
}

static void test_invalid_utf8_line_is_reported(void **state)
{
    (void)state;
    run r = {0};
    run_open(&r, "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 40 1431280876 1431280934 ACCEPT OK\n"
                 "2 1 eni-\xff\xfe 10.0.0.1 10.0.0.2 1 2 6 1 40 1431280876 1431280934 ACCEPT OK\n"
                 "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 40 1431280876 1431280934 ACCEPT OK\n");
    assert_int_equal(count_events(&r), 2);
    assert_int_equal(ch_diag_count(&r.diag, "invalid_utf8"), 1);
    run_close(&r);
}

static void test_100mb_line_is_line_too_long_and_neighbours_survive(void **state)
{
    (void)state;
    run r = {0};
    snprintf(r.path, sizeof r.path, "/tmp/ch_test_vpcflow_big_XXXXXX");
    int fd = mkstemp(r.path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    const char *good = "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 40 1431280876 1431280934 ACCEPT OK\n";
    fputs(good, f);
    static char chunk[1 << 20];
    memset(chunk, '7', sizeof chunk);
    for (int i = 0; i < 100; i++)
        assert_int_equal(fwrite(chunk, 1, sizeof chunk, f), sizeof chunk);
    fputc('\n', f);
    fputs(good, f);
    fclose(f);
    run_open_file(&r, r.path);
    assert_int_equal(count_events(&r), 2);
    assert_int_equal(ch_diag_count(&r.diag, "line_too_long"), 1);
    assert_int_equal(stats(&r)->records, 3);
    run_close(&r);
}

static void test_10000_column_line_is_bad_field_count(void **state)
{
    (void)state;
    run r = {0};
    size_t cap = 10000 * 2 + 256;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t n = (size_t)snprintf(text, cap, "%s", V2_HEADER);
    for (int i = 0; i < 10000; i++) {
        text[n++] = '1';
        text[n++] = ' ';
    }
    text[n - 1] = '\n';
    text[n] = '\0';
    run_open(&r, text);
    free(text);
    assert_int_equal(count_events(&r), 0);
    assert_int_equal(ch_diag_count(&r.diag, "bad_field_count"), 1);
    run_close(&r);
}

static void test_10000_column_header_is_refused(void **state)
{
    (void)state;
    run r = {0};
    size_t cap = 10000 * 8 + 256;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t n = 0;
    for (int i = 0; i < 10000; i++)
        n += (size_t)snprintf(text + n, cap - n, "%s ", i % 2 ? "srcaddr" : "dstaddr");
    text[n - 1] = '\n';
    snprintf(text + n, cap - n,
             "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 40 1431280876 1431280934 ACCEPT OK\n");
    run_open(&r, text);
    free(text);
    /* The refused header leaves the file header-less: the v2 line still reads. */
    assert_int_equal(count_events(&r), 1);
    assert_int_equal(ch_diag_count(&r.diag, "bad_field_count"), 1);
    run_close(&r);
}

static void test_tcp_flags_kept_raw_and_packet_addresses_win(void **state)
{
    (void)state;
    run r = {0};
    run_open(&r, "version vpc-id subnet-id instance-id interface-id account-id type srcaddr "
                 "dstaddr srcport dstport pkt-srcaddr pkt-dstaddr protocol bytes packets start "
                 "end action tcp-flags log-status\n"
                 "3 vpc-abcdefab012345678 subnet-aaaaaaaa012345678 i-01234567890123456 "
                 "eni-1235b8ca123456789 123456789010 IPv4 10.0.0.5 10.0.1.9 43416 5001 "
                 "203.0.113.20 10.0.1.9 6 568 8 1566848875 1566848933 ACCEPT 19 OK\n");
    ch_event ev;
    assert_int_equal(ch_source_vpcflow.next(r.st, &ev), 1);
    assert_sv(*raw(&ev, "tcp-flags"), "19");
    assert_sv(*raw(&ev, "srcaddr"), "10.0.0.5");
    assert_ip(&ev.src_ip, "203.0.113.20"); /* pkt-srcaddr: the NAT'd original source */
    assert_ip(&ev.dst_ip, "10.0.1.9");
    assert_sv(ev.instance_id, "i-01234567890123456");
    assert_int_equal(ev.bytes, 568);
    assert_int_equal(ev.packets, 8);
    run_close(&r);
}

static void test_repeated_header_is_reread(void **state)
{
    (void)state;
    run r = {0};
    run_open(&r,
             V2_HEADER "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 40 1431280876 1431280934 ACCEPT OK\n"
                       "srcaddr dstaddr dstport start\n"
                       "10.9.9.9 10.8.8.8 4444 1431280999\n");
    ch_event ev;
    assert_int_equal(ch_source_vpcflow.next(r.st, &ev), 1);
    assert_int_equal(ev.raw_count, 14);
    assert_int_equal(ch_source_vpcflow.next(r.st, &ev), 1);
    assert_int_equal(ev.raw_count, 4);
    assert_ip(&ev.src_ip, "10.9.9.9");
    assert_int_equal(ev.dst_port, 4444);
    assert_int_equal(ev.ts_ms, 1431280999000LL);
    assert_sv(ev.raw_names[2], "dstport");
    assert_int_equal(r.diag.errors_total, 0);
    run_close(&r);
}

static void test_unknown_protocol_number_is_its_own_transport(void **state)
{
    (void)state;
    run r = {0};
    run_open(&r, "2 1 eni-1 10.0.0.1 10.0.0.2 0 0 99 1 40 1431280876 1431280934 ACCEPT OK\n"
                 "2 1 eni-1 10.0.0.1 10.0.0.2 0 0 58 1 40 1431280876 1431280934 ACCEPT OK\n");
    ch_event ev;
    assert_int_equal(ch_source_vpcflow.next(r.st, &ev), 1);
    assert_int_equal(ev.iana_proto, 99);
    assert_sv(ev.transport, "99");
    assert_int_equal(ch_source_vpcflow.next(r.st, &ev), 1);
    assert_sv(ev.transport, "ipv6-icmp");
    run_close(&r);
}

static void test_missing_start_and_end_is_bad_timestamp(void **state)
{
    (void)state;
    run r = {0};
    run_open(&r, "srcaddr dstaddr start end\n10.0.0.1 10.0.0.2 - -\n10.0.0.1 10.0.0.2 - 17\n");
    ch_event ev;
    assert_int_equal(ch_source_vpcflow.next(r.st, &ev), 1);
    assert_int_equal(ev.ts_ms, 17000); /* end stands in for a missing start */
    assert_int_equal(ch_diag_count(&r.diag, "bad_timestamp"), 1);
    run_close(&r);
}

static void test_detect_scores_headers_and_default_records(void **state)
{
    (void)state;
    const char *hdr = V2_HEADER;
    assert_true(ch_source_vpcflow.detect(hdr, strlen(hdr)) >= 90);
    const char *rec = "2 123456789010 eni-1235b8ca123456789 10.0.0.1 10.0.0.2 1 2 6 1 40 "
                      "1431280876 1431280934 ACCEPT OK\n";
    assert_true(ch_source_vpcflow.detect(rec, strlen(rec)) >= 80);
    const char *json = "{\"eventVersion\":\"1.08\",\"eventName\":\"ConsoleLogin\"}\n";
    assert_int_equal(ch_source_vpcflow.detect(json, strlen(json)), 0);
    const char *prose = "This is not a flow log at all, just words\n";
    assert_int_equal(ch_source_vpcflow.detect(prose, strlen(prose)), 0);
    assert_int_equal(ch_source_vpcflow.detect("", 0), 0);
    assert_true(ch_source_detect(hdr, strlen(hdr)) == &ch_source_vpcflow);
}

/* The real samples of elastic/integrations (ELv2, test use only): skips when the corpora
 * folder is absent, fails when the file is missing from it (corpora.h). */
static int corpus_events(const char *file, ch_diag *diag_out)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/vpcflow_route53/elastic_integrations/%s", CH_CORPORA_DIR, file);
    ch_test_need_corpora(path);
    run r = {0};
    run_open_file(&r, path);
    int n = count_events(&r);
    *diag_out = r.diag;
    run_close(&r);
    return n;
}

static void test_corpus_samples_parse_with_expected_counts(void **state)
{
    (void)state;
    struct {
        const char *file;
        int events, skipped;
    } want[] = {
        {"vpcflow-test-extra-samples.log", 5, 2},
        {"vpcflow-test-tcp-flag-sequence.log", 1, 2},
        {"vpcflow-test-v5-all-fields.log", 1, 0},
        {"vpcflow-test-v8-samples.log", 1, 0},   /* NODATA, but it carries a flow */
        {"vpcflow-test-tgw-samples.log", 10, 0}, /* idem for SKIPDATA/NODATA with addresses */
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        ch_diag d;
        int n = corpus_events(want[i].file, &d);
        if (n != want[i].events)
            fail_msg("%s: %d events, want %d", want[i].file, n, want[i].events);
        assert_int_equal(d.by_ds[CH_DS_VPCFLOW].skipped, want[i].skipped);
        assert_int_equal(d.errors_total, 0);
    }
}

static void test_corpus_v5_all_fields_values(void **state)
{
    (void)state;
    char path[1024];
    snprintf(path, sizeof path, "%s/vpcflow_route53/elastic_integrations/%s", CH_CORPORA_DIR,
             "vpcflow-test-v5-all-fields.log");
    ch_test_need_corpora(path);
    run r = {0};
    run_open_file(&r, path);
    ch_event ev;
    assert_int_equal(ch_source_vpcflow.next(r.st, &ev), 1);
    assert_int_equal(ev.raw_count, 29);
    assert_sv(ev.region, "us-east-1");
    assert_sv(ev.instance_id, "i-0axxxxxx1ad77");
    assert_ip(&ev.src_ip, "89.160.20.156");
    assert_ip(&ev.dst_ip, "10.200.0.80"); /* pkt-dstaddr differs from dstaddr 10.200.0.0 */
    assert_sv(ev.transport, "udp");
    assert_sv(*raw(&ev, "pkt-src-aws-service"), "AMAZON");
    assert_sv(*raw(&ev, "flow-direction"), "ingress");
    assert_int_equal(ev.outcome, CH_OUTCOME_FAILURE);
    run_close(&r);
}

static void test_corpus_tgw_values(void **state)
{
    (void)state;
    char path[1024];
    snprintf(path, sizeof path, "%s/vpcflow_route53/elastic_integrations/%s", CH_CORPORA_DIR,
             "vpcflow-test-tgw-samples.log");
    ch_test_need_corpora(path);
    run r = {0};
    run_open_file(&r, path);
    ch_event ev;
    assert_int_equal(ch_source_vpcflow.next(r.st, &ev), 1);
    assert_int_equal(ev.raw_count, 36);
    assert_sv(ev.account_id, "748335378900");
    assert_ip(&ev.src_ip, "1.128.0.0");
    assert_ip(&ev.dst_ip, "2a02:cf40::");
    assert_int_equal(ev.dst_port, 22);
    assert_int_equal(ev.outcome, CH_OUTCOME_NONE); /* TGW logs have no action */
    assert_sv(*raw(&ev, "tgw-id"), "tgw-0a12bc34de56f7890");
    run_close(&r);
}

/* ---- golden inputs: tests/golden/vpcflow (see its README) ------------------------------- */

#define GOLDEN CH_SOURCE_DIR "/tests/golden/vpcflow/"

/* Open a golden file with diag messages captured in memory. */
static void run_open_golden(run *r, const char *name, char **msgs, size_t *msgs_len)
{
    ch_error err = {0};
    FILE *sink = open_memstream(msgs, msgs_len);
    assert_non_null(sink);
    ch_diag_init(&r->diag, sink);
    assert_int_equal(ch_input_open(&r->in, name, CH_INPUT_DEFAULT_MAX_WINDOW, &err), 0);
    r->st = ch_source_vpcflow.open(r->in, &r->diag, &err);
    assert_non_null(r->st);
}

static void run_close_golden(run *r)
{
    fclose(r->diag.sink);
    run_close(r);
}

static void test_golden_v2_default_file(void **state)
{
    (void)state;
    run r = {0};
    char *msgs = NULL;
    size_t msgs_len = 0;
    run_open_golden(&r, GOLDEN "v2_default.log", &msgs, &msgs_len);
    ch_event ev;
    /* The instance talks to a Stratum port, and the pool answers. */
    assert_int_equal(ch_source_vpcflow.next(r.st, &ev), 1);
    assert_int_equal(ev.ts_ms, 1717405200000LL);
    assert_ip(&ev.src_ip, "10.20.1.15");
    assert_ip(&ev.dst_ip, "198.51.100.23");
    assert_int_equal(ev.dst_port, 3333);
    assert_int_equal(ev.bytes, 38211);
    assert_int_equal(ch_source_vpcflow.next(r.st, &ev), 1);
    assert_int_equal(ev.src_port, 3333);
    assert_int_equal(ev.bytes, 912034);
    /* NODATA skipped; the rejected SSH probe. */
    assert_int_equal(ch_source_vpcflow.next(r.st, &ev), 1);
    assert_sv(ev.action, "REJECT");
    assert_int_equal(ev.outcome, CH_OUTCOME_FAILURE);
    assert_int_equal(ev.dst_port, 22);
    /* The truncated NTP line is refused; then IPv6 and ICMP. */
    assert_int_equal(ch_source_vpcflow.next(r.st, &ev), 1);
    assert_ip(&ev.dst_ip, "2606:4700:10::6814:1");
    assert_int_equal(ch_source_vpcflow.next(r.st, &ev), 1);
    assert_sv(ev.transport, "icmp");
    assert_int_equal(ev.iana_proto, 1);
    assert_int_equal(ch_source_vpcflow.next(r.st, &ev), 0);
    assert_int_equal(stats(&r)->records, 8);
    assert_int_equal(stats(&r)->events, 5);
    assert_int_equal(stats(&r)->skipped, 2);
    assert_int_equal(stats(&r)->errors, 1);
    run_close_golden(&r);
    assert_non_null(
        strstr(msgs, "v2_default.log:6: bad_field_count: expected 14 fields, found 11"));
    free(msgs);
}

static void test_golden_custom_gzip_concatenated_file(void **state)
{
    (void)state;
    run r = {0};
    char *msgs = NULL;
    size_t msgs_len = 0;
    run_open_golden(&r, GOLDEN "v5_custom_concatenated.log.gz", &msgs, &msgs_len);
    ch_event ev;
    assert_int_equal(ch_source_vpcflow.next(r.st, &ev), 1);
    assert_ip(&ev.src_ip, "10.20.1.15");
    assert_ip(&ev.dst_ip, "45.9.148.117"); /* through the NAT gateway to the pool */
    assert_sv(*raw(&ev, "dstaddr"), "10.20.9.4");
    assert_int_equal(ev.dst_port, 14444);
    assert_sv(ev.region, "sa-east-1");
    assert_sv(ev.instance_id, "i-0badc0ffee0ddf00d");
    assert_sv(*raw(&ev, "tcp-flags"), "19");
    assert_sv(*raw(&ev, "flow-direction"), "egress");
    assert_int_equal(ev.raw_count, 23);
    assert_int_equal(ch_source_vpcflow.next(r.st, &ev), 1);
    assert_int_equal(ev.packets, 9);
    /* The second part of the file has its own header. */
    assert_int_equal(ch_source_vpcflow.next(r.st, &ev), 1);
    assert_int_equal(ev.raw_count, 15);
    assert_sv(ev.instance_id, "i-0123456789abcdef0");
    assert_sv(ev.action, "REJECT");
    assert_int_equal(ev.region.n, 0);
    assert_int_equal(ch_source_vpcflow.next(r.st, &ev), 1);
    assert_int_equal(ev.instance_id.n, 0); /* "-" */
    assert_int_equal(ch_source_vpcflow.next(r.st, &ev), 0);
    assert_int_equal(stats(&r)->records, 4);
    assert_int_equal(r.diag.errors_total, 0);
    run_close_golden(&r);
    free(msgs);
}

static void test_golden_cloudwatch_headerless_file(void **state)
{
    (void)state;
    run r = {0};
    char *msgs = NULL;
    size_t msgs_len = 0;
    run_open_golden(&r, GOLDEN "cloudwatch_headerless.log", &msgs, &msgs_len);
    assert_int_equal(count_events(&r), 3);
    assert_int_equal(stats(&r)->records, 4);
    assert_int_equal(ch_diag_count(&r.diag, "bad_address"), 1);
    run_close_golden(&r);
    assert_non_null(strstr(msgs, "cloudwatch_headerless.log:3: bad_address: dstaddr "
                                 "'not-an-address' is not an IP address"));
    free(msgs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v2_default_with_header_maps_typed_fields),
        cmocka_unit_test(test_headerless_v2_read_as_default_format),
        cmocka_unit_test(test_cloudwatch_export_time_prefix_is_dropped),
        cmocka_unit_test(test_custom_v5_field_order_resolved_from_header),
        cmocka_unit_test(test_ipv6_addresses_parsed),
        cmocka_unit_test(test_nodata_and_skipdata_are_skipped_not_errors),
        cmocka_unit_test(test_bad_lines_between_good_ones_cost_only_themselves),
        cmocka_unit_test(test_invalid_utf8_line_is_reported),
        cmocka_unit_test(test_100mb_line_is_line_too_long_and_neighbours_survive),
        cmocka_unit_test(test_10000_column_line_is_bad_field_count),
        cmocka_unit_test(test_10000_column_header_is_refused),
        cmocka_unit_test(test_tcp_flags_kept_raw_and_packet_addresses_win),
        cmocka_unit_test(test_repeated_header_is_reread),
        cmocka_unit_test(test_unknown_protocol_number_is_its_own_transport),
        cmocka_unit_test(test_missing_start_and_end_is_bad_timestamp),
        cmocka_unit_test(test_detect_scores_headers_and_default_records),
        cmocka_unit_test(test_corpus_samples_parse_with_expected_counts),
        cmocka_unit_test(test_corpus_v5_all_fields_values),
        cmocka_unit_test(test_corpus_tgw_values),
        cmocka_unit_test(test_golden_v2_default_file),
        cmocka_unit_test(test_golden_custom_gzip_concatenated_file),
        cmocka_unit_test(test_golden_cloudwatch_headerless_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
