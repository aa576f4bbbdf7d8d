/*
 * test_route53.c - the Route 53 Resolver query log parser: DNS fields, firewall records,
 * CloudWatch Logs envelopes, and malformed records that cost only themselves. Inputs are
 * written to temporary files and read through the real input layer.
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

extern const ch_source_type ch_source_route53;

#define RUN_SOURCE ch_source_route53
#define RUN_TAG "route53"
#include "source_run.h"

static void assert_sv(ch_sv v, const char *want)
{
    char buf[512];
    assert_true(v.n < sizeof buf);
    memcpy(buf, v.p ? v.p : "", v.n);
    buf[v.n] = '\0';
    assert_string_equal(buf, want);
}

static void assert_ip(const ch_ip *ip, const char *want)
{
    char buf[64];
    ch_ip_format(ip, buf);
    assert_string_equal(buf, want);
}

#define REC(name, extra)                                                                           \
    "{\"version\":\"1.100000\",\"account_id\":\"111122223333\",\"region\":\"eu-west-1\","          \
    "\"vpc_id\":\"vpc-7example\",\"query_timestamp\":\"2024-03-01T10:00:00Z\","                    \
    "\"query_name\":\"" name "\",\"query_type\":\"A\",\"query_class\":\"IN\","                     \
    "\"rcode\":\"NOERROR\",\"srcaddr\":\"10.1.2.3\",\"srcport\":\"53211\","                        \
    "\"transport\":\"UDP\"" extra "}\n"

static void test_query_name_lowercased_without_trailing_dot(void **state)
{
    (void)state;
    run r = {0};
    run_open(&r, REC("Pool.SupportXMR.COM.", ",\"answers\":[],\"srcids\":{}"));
    ch_event ev;
    assert_int_equal(ch_source_route53.next(r.st, &ev), 1);
    assert_int_equal(ev.dataset, CH_DS_ROUTE53);
    assert_sv(ev.dns_qname, "pool.supportxmr.com");
    assert_sv(ev.dns_qtype, "A");
    assert_sv(ev.dns_rcode, "NOERROR");
    assert_int_equal(ev.ts_ms, 1709287200000LL);
    assert_ip(&ev.src_ip, "10.1.2.3");
    assert_true(ev.flags & CH_F_SRC_PORT);
    assert_int_equal(ev.src_port, 53211);
    assert_sv(ev.transport, "udp");
    assert_int_equal(ev.iana_proto, 17);
    assert_sv(ev.account_id, "111122223333");
    assert_sv(ev.region, "eu-west-1");
    assert_sv(ev.action, "query");
    assert_sv(ev.category, "network");
    assert_sv(ev.type, "protocol");
    assert_int_equal(ev.outcome, CH_OUTCOME_SUCCESS);
    assert_true(ev.has_raw_doc);
    assert_true(ev.raw_json.n > 0 && ev.raw_json.p[0] == '{');
    assert_int_equal(ch_source_route53.next(r.st, &ev), 0);
    assert_int_equal(r.diag.by_ds[CH_DS_ROUTE53].records, 1);
    assert_int_equal(r.diag.by_ds[CH_DS_ROUTE53].events, 1);
    run_close(&r);
}

static void test_srcids_instance_maps_to_cloud_instance_id(void **state)
{
    (void)state;
    run r = {0};
    run_open(&r, REC("example.com.", ",\"srcids\":{\"instance\":\"i-0d15cd0d3example\"}"));
    ch_event ev;
    assert_int_equal(ch_source_route53.next(r.st, &ev), 1);
    assert_sv(ev.instance_id, "i-0d15cd0d3example");
    run_close(&r);
}

static void test_answers_kept_in_order_up_to_sixteen(void **state)
{
    (void)state;
    char text[8192];
    size_t n = (size_t)snprintf(text, sizeof text, "%s",
                                "{\"query_timestamp\":\"2024-03-01T10:00:00Z\","
                                "\"query_name\":\"many.example.\",\"rcode\":\"NOERROR\","
                                "\"answers\":[{\"Rdata\":\"alias.example.\",\"Type\":\"CNAME\","
                                "\"Class\":\"IN\"}");
    for (int i = 0; i < 20; i++)
        n += (size_t)snprintf(text + n, sizeof text - n,
                              ",{\"Rdata\":\"192.0.2.%d\",\"Type\":\"A\",\"Class\":\"IN\"}", i);
    snprintf(text + n, sizeof text - n, "]}\n");
    run r = {0};
    run_open(&r, text);
    ch_event ev;
    assert_int_equal(ch_source_route53.next(r.st, &ev), 1);
    assert_int_equal(ev.dns_nanswers, 16);
    assert_sv(ev.dns_answers[0], "alias.example.");
    assert_sv(ev.dns_answers[1], "192.0.2.0");
    assert_sv(ev.dns_answers[15], "192.0.2.14");
    run_close(&r);
}

static void test_firewall_block_sets_action_and_failure(void **state)
{
    (void)state;
    run r = {0};
    run_open(&r, REC("xmr.pool.minergate.com.", ",\"firewall_rule_action\":\"BLOCK\","
                                                "\"firewall_rule_group_id\":\"rslvr-frg-1\""));
    ch_event ev;
    assert_int_equal(ch_source_route53.next(r.st, &ev), 1);
    assert_sv(ev.action, "BLOCK");
    assert_int_equal(ev.outcome, CH_OUTCOME_FAILURE);
    run_close(&r);
}

static void test_nxdomain_is_failure(void **state)
{
    (void)state;
    run r = {0};
    run_open(&r, "{\"query_timestamp\":\"2024-03-01T10:00:00Z\",\"query_name\":\"nope.\","
                 "\"rcode\":\"NXDOMAIN\",\"srcport\":5353,\"transport\":\"TCP\"}\n");
    ch_event ev;
    assert_int_equal(ch_source_route53.next(r.st, &ev), 1);
    assert_int_equal(ev.outcome, CH_OUTCOME_FAILURE);
    assert_int_equal(ev.src_port, 5353); /* a number is accepted as well as AWS's string */
    assert_int_equal(ev.iana_proto, 6);
    assert_int_equal(ev.src_ip.family, 0);
    run_close(&r);
}

static void test_malformed_records_between_good_ones_cost_only_themselves(void **state)
{
    (void)state;
    run r = {0};
    run_open(&r, REC("one.example.",
                     "") "{\"query_timestamp\":\"2024-03-01T10:00:00Z\",\"query_name\":\"x.\",,}\n"
                         "{\"query_timestamp\":\"2024-03-01T10:00:00Z\",\"qname\":\"x.\"}\n"
                         "{\"query_timestamp\":\"yesterday\",\"query_name\":\"x.\"}\n"
                         "{\"query_timestamp\":\"2024-03-01T10:00:00Z\",\"query_name\":\"x.\","
                         "\"srcaddr\":\"10.0.0.300\"}\n"
                         "{\"query_timestamp\":\"2024-03-01T10:00:00Z\",\"query_name\":\"x.\","
                         "\"srcport\":\"99999\"}\n"
                         "{\"query_timestamp\":\"2024-03-01T10:00:00Z\",\"query_name\":\"\xff\"}\n"
                         "[1,2,3]\n" REC("two.example.", ""));
    ch_event ev;
    assert_int_equal(ch_source_route53.next(r.st, &ev), 1);
    assert_sv(ev.dns_qname, "one.example");
    assert_int_equal(ch_source_route53.next(r.st, &ev), 1);
    assert_sv(ev.dns_qname, "two.example");
    assert_int_equal(ch_source_route53.next(r.st, &ev), 0);
    assert_int_equal(ch_diag_count(&r.diag, "json_syntax"), 1);
    assert_int_equal(ch_diag_count(&r.diag, "not_route53"), 1);
    assert_int_equal(ch_diag_count(&r.diag, "bad_timestamp"), 1);
    assert_int_equal(ch_diag_count(&r.diag, "bad_address"), 1);
    assert_int_equal(ch_diag_count(&r.diag, "bad_number"), 1);
    assert_int_equal(ch_diag_count(&r.diag, "invalid_utf8"), 1);
    assert_true(r.diag.errors_total >= 7); /* the array is refused by the splitter or by us */
    run_close(&r);
}

static void test_pretty_printed_record_is_minified_for_output(void **state)
{
    (void)state;
    run r = {0};
    run_open(&r, "{\n  \"query_timestamp\": \"2024-03-01T10:00:00Z\",\n"
                 "  \"query_name\": \"a.example.\"\n}\n");
    ch_event ev;
    assert_int_equal(ch_source_route53.next(r.st, &ev), 1);
    assert_sv(ev.raw_json, "{\"query_timestamp\":\"2024-03-01T10:00:00Z\","
                           "\"query_name\":\"a.example.\"}");
    run_close(&r);
}

static void test_cloudwatch_envelope_yields_each_message(void **state)
{
    (void)state;
    run r = {0};
    run_open(&r, "{\"messageType\":\"DATA_MESSAGE\",\"owner\":\"111122223333\","
                 "\"logGroup\":\"/r53\",\"logStream\":\"s\",\"subscriptionFilters\":[\"f\"],"
                 "\"logEvents\":["
                 "{\"id\":\"1\",\"timestamp\":1709287200000,\"message\":\"{\\\"query_timestamp"
                 "\\\":\\\"2024-03-01T10:00:00Z\\\",\\\"query_name\\\":\\\"A.example.\\\"}\"},"
                 "{\"id\":\"2\",\"timestamp\":1709287200000,\"message\":\"not json\"},"
                 "{\"id\":\"3\",\"timestamp\":1709287200000,\"message\":\"{\\\"query_timestamp"
                 "\\\":\\\"2024-03-01T10:00:01Z\\\",\\\"query_name\\\":\\\"b.example.\\\"}\"}"
                 "]}\n");
    ch_event ev;
    assert_int_equal(ch_source_route53.next(r.st, &ev), 1);
    assert_sv(ev.dns_qname, "a.example");
    assert_sv(ev.raw_json, "{\"query_timestamp\":\"2024-03-01T10:00:00Z\","
                           "\"query_name\":\"A.example.\"}");
    assert_int_equal(ch_source_route53.next(r.st, &ev), 1);
    assert_sv(ev.dns_qname, "b.example");
    assert_int_equal(ev.ts_ms, 1709287201000LL);
    assert_int_equal(ch_source_route53.next(r.st, &ev), 0);
    assert_int_equal(ch_diag_count(&r.diag, "json_syntax"), 1);
    assert_int_equal(r.diag.by_ds[CH_DS_ROUTE53].records, 3);
    run_close(&r);
}

static void test_detect_needs_route53_keys(void **state)
{
    (void)state;
    const char *rec = REC("example.com.", "");
    assert_true(ch_source_route53.detect(rec, strlen(rec)) >= 90);
    assert_true(ch_source_detect(rec, strlen(rec)) == &ch_source_route53);
    const char *ct = "{\"Records\":[{\"eventVersion\":\"1.08\",\"eventName\":\"RunInstances\"}]}";
    assert_int_equal(ch_source_route53.detect(ct, strlen(ct)), 0);
    const char *flow = "version account-id interface-id srcaddr dstaddr\n";
    assert_int_equal(ch_source_route53.detect(flow, strlen(flow)), 0);
}

/* The corpus sample's path; skips when the corpora folder is absent (corpora.h). */
static const char *corpus_path(char *buf, size_t n)
{
    snprintf(buf, n, "%s/vpcflow_route53/elastic_integrations/route53-resolver-test-route53.log",
             CH_CORPORA_DIR);
    ch_test_need_corpora(buf);
    return buf;
}

static void test_corpus_sample_all_records_and_firewall_block(void **state)
{
    (void)state;
    char path[1024];
    corpus_path(path, sizeof path);
    run r = {0};
    run_open_file(&r, path);
    ch_event ev;
    int n = 0, blocked = 0, with_instance = 0;
    while (ch_source_route53.next(r.st, &ev) == 1) {
        n++;
        assert_true(ev.dns_qname.n == 0 || ev.dns_qname.p[ev.dns_qname.n - 1] != '.');
        if (ev.instance_id.n > 0)
            with_instance++;
        if (ch_sv_eq(ev.action, "BLOCK", 5)) {
            blocked++;
            assert_sv(ev.dns_qname, "15.199.16.175.in-addr.arpa");
            assert_sv(ev.instance_id, "i-0d15cd0d3example");
            assert_ip(&ev.src_ip, "81.2.69.143");
            assert_int_equal(ev.src_port, 56067);
            assert_sv(ev.account_id, "111122223333");
            assert_int_equal(ev.dns_nanswers, 1);
            assert_sv(ev.dns_answers[0], "203.0.113.9");
            assert_int_equal(ev.outcome, CH_OUTCOME_FAILURE);
        }
        if (n == 23) { /* 2.amazon.pool.ntp.org AAAA: four answers */
            assert_sv(ev.dns_qname, "2.amazon.pool.ntp.org");
            assert_int_equal(ev.dns_nanswers, 4);
            assert_sv(ev.dns_answers[1], "2a02:cf40:f1::1");
        }
    }
    assert_int_equal(n, 34);
    assert_int_equal(blocked, 1);
    assert_int_equal(with_instance, 5);
    assert_int_equal(r.diag.errors_total, 0);
    run_close(&r);
}

/* ---- golden inputs: tests/golden/route53 (see its README) ------------------------------- */

#define GOLDEN CH_SOURCE_DIR "/tests/golden/route53/"

static void test_golden_resolver_file(void **state)
{
    (void)state;
    run r = {0};
    char *msgs = NULL;
    size_t msgs_len = 0;
    FILE *sink = open_memstream(&msgs, &msgs_len);
    assert_non_null(sink);
    run_open_file(&r, GOLDEN "resolver.jsonl");
    r.diag.sink = sink;
    ch_event ev;
    assert_int_equal(ch_source_route53.next(r.st, &ev), 1);
    assert_sv(ev.dns_qname, "xmr.pool.minergate.com");
    assert_int_equal(ev.dns_nanswers, 2);
    assert_sv(ev.dns_answers[0], "pool-lb.minergate.com.");
    assert_sv(ev.dns_answers[1], "45.9.148.117");
    assert_sv(ev.instance_id, "i-0badc0ffee0ddf00d");
    assert_sv(ev.region, "sa-east-1");
    assert_sv(ev.action, "query");
    assert_int_equal(ev.outcome, CH_OUTCOME_SUCCESS);
    assert_int_equal(ch_source_route53.next(r.st, &ev), 1);
    assert_sv(ev.dns_qname, "coinhive.com");
    assert_sv(ev.action, "BLOCK");
    assert_int_equal(ev.outcome, CH_OUTCOME_FAILURE);
    assert_int_equal(ch_source_route53.next(r.st, &ev), 1);
    assert_ip(&ev.src_ip, "2001:db8:40:1::15");
    assert_sv(ev.transport, "tcp");
    assert_sv(ev.dns_rcode, "NXDOMAIN");
    assert_int_equal(ev.outcome, CH_OUTCOME_FAILURE);
    assert_int_equal(ev.instance_id.n, 0); /* a resolver endpoint, not an instance */
    assert_int_equal(ch_source_route53.next(r.st, &ev), 1);
    assert_sv(ev.action, "ALERT");
    assert_int_equal(ev.outcome, CH_OUTCOME_SUCCESS);
    assert_int_equal(ch_source_route53.next(r.st, &ev), 0);
    assert_int_equal(r.diag.by_ds[CH_DS_ROUTE53].records, 5);
    assert_int_equal(r.diag.by_ds[CH_DS_ROUTE53].events, 4);
    assert_int_equal(ch_diag_count(&r.diag, "json_syntax"), 1);
    fclose(sink);
    assert_non_null(strstr(msgs, "resolver.jsonl:4: json_syntax"));
    free(msgs);
    run_close(&r);
}

static void test_golden_cloudwatch_envelope_gzip_file(void **state)
{
    (void)state;
    run r = {0};
    run_open_file(&r, GOLDEN "cloudwatch_envelope.json.gz");
    ch_event ev;
    assert_int_equal(ch_source_route53.next(r.st, &ev), 1);
    assert_sv(ev.dns_qname, "pool.supportxmr.com");
    assert_sv(ev.instance_id, "i-0feedfacecafe0001");
    assert_int_equal(ev.ts_ms, 1717408800000LL);
    assert_int_equal(ch_source_route53.next(r.st, &ev), 1);
    assert_sv(ev.dns_qname, "sts.eu-west-1.amazonaws.com");
    assert_int_equal(ch_source_route53.next(r.st, &ev), 0);
    /* The control message is no record and no error. */
    assert_int_equal(r.diag.by_ds[CH_DS_ROUTE53].records, 2);
    assert_int_equal(r.diag.errors_total, 0);
    run_close(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_name_lowercased_without_trailing_dot),
        cmocka_unit_test(test_srcids_instance_maps_to_cloud_instance_id),
        cmocka_unit_test(test_answers_kept_in_order_up_to_sixteen),
        cmocka_unit_test(test_firewall_block_sets_action_and_failure),
        cmocka_unit_test(test_nxdomain_is_failure),
        cmocka_unit_test(test_malformed_records_between_good_ones_cost_only_themselves),
        cmocka_unit_test(test_pretty_printed_record_is_minified_for_output),
        cmocka_unit_test(test_cloudwatch_envelope_yields_each_message),
        cmocka_unit_test(test_detect_needs_route53_keys),
        cmocka_unit_test(test_corpus_sample_all_records_and_firewall_block),
        cmocka_unit_test(test_golden_resolver_file),
        cmocka_unit_test(test_golden_cloudwatch_envelope_gzip_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
