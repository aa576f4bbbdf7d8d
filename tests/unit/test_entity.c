/*
 * test_entity.c - entity linking: a RunInstances response links its instances, interfaces and
 * private addresses to the launching principal, DNS queries and flows from those instances get
 * that user, the links outlive the RunInstances record, and the table stays bounded (LRU
 * eviction and expiry are counted).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/timeparse.h"
#include "enrich/entity.h"
#include "parse/cloudtrail.h"

static const char *run_instances(const char *user, const char *inst, const char *eni,
                                 const char *ip, const char *invoked_by, char *buf, size_t cap)
{
    snprintf(buf, cap,
             "{\"eventVersion\":\"1.08\",\"userIdentity\":{\"type\":\"IAMUser\","
             "\"principalId\":\"AIDAEXAMPLE\",\"arn\":\"arn:aws:iam::111122223333:user/%s\","
             "\"accountId\":\"111122223333\",\"accessKeyId\":\"AKIAEXAMPLEKEY%s\","
             "\"userName\":\"%s\"%s%s%s},"
             "\"eventTime\":\"2024-06-03T10:00:00Z\",\"eventSource\":\"ec2.amazonaws.com\","
             "\"eventName\":\"RunInstances\",\"awsRegion\":\"ap-south-1\","
             "\"sourceIPAddress\":\"203.0.113.9\",\"userAgent\":\"aws-cli/2.15\","
             "\"requestParameters\":{\"instanceType\":\"c5.large\"},"
             "\"responseElements\":{\"instancesSet\":{\"items\":[{\"instanceId\":\"%s\","
             "\"imageId\":\"ami-0kali000000000001\",\"privateIpAddress\":\"%s\","
             "\"networkInterfaceSet\":{\"items\":[{\"networkInterfaceId\":\"%s\","
             "\"privateIpAddress\":\"%s\"}]}}]}},"
             "\"eventID\":\"e1\",\"recipientAccountId\":\"111122223333\"}",
             user, user, user, invoked_by ? ",\"invokedBy\":\"" : "", invoked_by ? invoked_by : "",
             invoked_by ? "\"" : "", inst, ip, eni, ip);
    return buf;
}

/* Parse and observe one record; the parser (and so the record) is freed before returning, so
 * any link that survives proves the strings were copied. */
static int observe_text(ch_entity *t, const char *text)
{
    ch_json_parser *p = ch_json_parser_new(1 << 20, 64);
    assert_non_null(p);
    ch_json_val root, rec;
    ch_error err = {0};
    assert_int_equal(ch_json_parse(p, text, strlen(text), strlen(text), &root, &err), 0);
    ch_event ev;
    ch_event_reset(&ev);
    bool env = false;
    const char *why = NULL;
    assert_int_equal(ch__cloudtrail_normalize(root, &ev, &rec, &env, &why), 0);
    ev.has_raw_doc = true;
    ev.raw_doc = rec;
    int n = ch_entity_observe(t, &ev);
    ch_json_parser_free(p);
    return n;
}

static int64_t at(const char *iso)
{
    int64_t ms = 0;
    assert_true(ch_time_parse_iso8601(iso, strlen(iso), &ms));
    return ms;
}

static ch_event flow(const char *inst, const char *eni, const char *src, const char *when)
{
    ch_event ev;
    ch_event_reset(&ev);
    ev.dataset = CH_DS_VPCFLOW;
    ev.ts_ms = at(when);
    ev.account_id = (ch_sv){"111122223333", 12};
    if (inst)
        ev.instance_id = (ch_sv){inst, (uint32_t)strlen(inst)};
    if (eni)
        ev.interface_id = (ch_sv){eni, (uint32_t)strlen(eni)};
    if (src)
        assert_true(ch_ip_parse(src, strlen(src), &ev.src_ip));
    assert_true(ch_ip_parse("198.51.100.7", 12, &ev.dst_ip));
    return ev;
}

static void assert_sv(ch_sv v, const char *s)
{
    assert_int_equal(v.n, strlen(s));
    assert_memory_equal(v.p, s, v.n);
}

static void test_dns_query_from_launched_instance_carries_launching_user(void **st)
{
    (void)st;
    ch_entity *t = NULL;
    ch_error err = {0};
    char buf[4096];
    assert_int_equal(ch_entity_new(0, 0, &t, &err), 0);
    assert_int_equal(observe_text(t, run_instances("alice", "i-0aaaaaaaaaaaaaaa1", "eni-0aaa1",
                                                   "172.31.5.10", NULL, buf, sizeof buf)),
                     1);
    ch_event ev;
    ch_event_reset(&ev);
    ev.dataset = CH_DS_ROUTE53;
    ev.ts_ms = at("2024-06-03T10:20:00Z");
    ev.instance_id = (ch_sv){"i-0aaaaaaaaaaaaaaa1", 19};
    assert_true(ch_entity_enrich(t, &ev));
    assert_sv(ev.user_name, "alice");
    assert_sv(ev.access_key, "AKIAEXAMPLEKEYalice");
    ch_entity_instance in;
    assert_true(ch_entity_lookup(t, "i-0aaaaaaaaaaaaaaa1", 19, INT64_MAX, &in));
    assert_sv(in.image_id, "ami-0kali000000000001");
    assert_sv(in.region, "ap-south-1");
    assert_int_equal(in.launch_ms, at("2024-06-03T10:00:00Z"));
    ch_entity_free(t);
}

static void test_v2_flow_with_only_interface_id_links_through_eni(void **st)
{
    (void)st;
    ch_entity *t = NULL;
    ch_error err = {0};
    char buf[4096];
    assert_int_equal(ch_entity_new(0, 0, &t, &err), 0);
    observe_text(t, run_instances("mallory", "i-0bbbbbbbbbbbbbbb2", "eni-0bbb2", "172.31.9.9", NULL,
                                  buf, sizeof buf));
    ch_event ev = flow(NULL, "eni-0bbb2", "10.9.9.9", "2024-06-03T11:00:00Z");
    assert_true(ch_entity_enrich(t, &ev));
    assert_sv(ev.user_name, "mallory");
    assert_sv(ev.instance_id, "i-0bbbbbbbbbbbbbbb2");
    /* No interface either: the private source address finds the instance. */
    ch_event ev2 = flow(NULL, NULL, "172.31.9.9", "2024-06-03T11:00:00Z");
    assert_true(ch_entity_enrich(t, &ev2));
    assert_sv(ev2.user_name, "mallory");
    ch_entity_stats s;
    ch_entity_stats_get(t, &s);
    assert_int_equal(s.by_interface, 1);
    assert_int_equal(s.by_address, 1);
    ch_entity_free(t);
}

static void test_flow_from_unknown_instance_is_a_counted_miss(void **st)
{
    (void)st;
    ch_entity *t = NULL;
    ch_error err = {0};
    assert_int_equal(ch_entity_new(0, 0, &t, &err), 0);
    ch_event ev = flow("i-0ccccccccccccccc3", "eni-0ccc3", "172.31.1.1", "2024-06-03T11:00:00Z");
    assert_false(ch_entity_enrich(t, &ev));
    assert_int_equal(ev.user_name.n, 0);
    ch_entity_stats s;
    ch_entity_stats_get(t, &s);
    assert_int_equal(s.misses, 1);
    ch_entity_free(t);
}

static void test_event_with_user_is_left_alone(void **st)
{
    (void)st;
    ch_entity *t = NULL;
    ch_error err = {0};
    char buf[4096];
    assert_int_equal(ch_entity_new(0, 0, &t, &err), 0);
    observe_text(t, run_instances("alice", "i-0aaaaaaaaaaaaaaa1", "eni-0aaa1", "172.31.5.10", NULL,
                                  buf, sizeof buf));
    ch_event ev = flow("i-0aaaaaaaaaaaaaaa1", NULL, NULL, "2024-06-03T11:00:00Z");
    ev.user_name = (ch_sv){"bob", 3};
    assert_false(ch_entity_enrich(t, &ev));
    assert_sv(ev.user_name, "bob");
    ch_entity_free(t);
}

static void test_autoscaling_launch_links_service_role_with_invoked_by(void **st)
{
    (void)st;
    ch_entity *t = NULL;
    ch_error err = {0};
    char buf[4096];
    assert_int_equal(ch_entity_new(0, 0, &t, &err), 0);
    observe_text(t,
                 run_instances("AWSServiceRoleForAutoScaling", "i-0ddddddddddddddd4", "eni-0ddd4",
                               "172.31.2.2", "autoscaling.amazonaws.com", buf, sizeof buf));
    ch_event ev = flow("i-0ddddddddddddddd4", NULL, NULL, "2024-06-03T11:00:00Z");
    assert_true(ch_entity_enrich(t, &ev));
    assert_sv(ev.invoked_by, "autoscaling.amazonaws.com");
    ch_entity_free(t);
}

static void test_full_table_evicts_least_recently_used_and_counts(void **st)
{
    (void)st;
    ch_entity *t = NULL;
    ch_error err = {0};
    char buf[4096];
    /* Each launch makes 3 links (instance, interface, address): cap 6 holds two launches. */
    assert_int_equal(ch_entity_new(6, 0, &t, &err), 0);
    observe_text(t, run_instances("u1", "i-01111111111111111", "eni-1", "172.31.0.1", NULL, buf,
                                  sizeof buf));
    observe_text(t, run_instances("u2", "i-02222222222222222", "eni-2", "172.31.0.2", NULL, buf,
                                  sizeof buf));
    ch_entity_instance in;
    /* Touch u1's instance so that u2's links are the oldest. */
    assert_true(ch_entity_lookup(t, "i-01111111111111111", 19, at("2024-06-03T10:00:01Z"), &in));
    observe_text(t, run_instances("u3", "i-03333333333333333", "eni-3", "172.31.0.3", NULL, buf,
                                  sizeof buf));
    ch_entity_stats s;
    ch_entity_stats_get(t, &s);
    assert_int_equal(s.links, 6);
    assert_int_equal(s.evicted, 3);
    assert_true(ch_entity_lookup(t, "i-01111111111111111", 19, INT64_MAX, &in));
    assert_true(ch_entity_lookup(t, "i-03333333333333333", 19, INT64_MAX, &in));
    assert_false(ch_entity_lookup(t, "i-02222222222222222", 19, INT64_MAX, &in));
    ch_entity_free(t);
}

static void test_link_unused_past_ttl_expires(void **st)
{
    (void)st;
    ch_entity *t = NULL;
    ch_error err = {0};
    char buf[4096];
    assert_int_equal(ch_entity_new(0, 3600 * 1000, &t, &err), 0);
    observe_text(t, run_instances("alice", "i-0aaaaaaaaaaaaaaa1", "eni-0aaa1", "172.31.5.10", NULL,
                                  buf, sizeof buf));
    ch_event ev = flow("i-0aaaaaaaaaaaaaaa1", NULL, NULL, "2024-06-03T12:00:01Z");
    assert_false(ch_entity_enrich(t, &ev));
    ch_entity_stats s;
    ch_entity_stats_get(t, &s);
    assert_int_equal(s.expired, 1);
    ch_entity_free(t);
}

static void test_non_launch_events_teach_nothing(void **st)
{
    (void)st;
    ch_entity *t = NULL;
    ch_error err = {0};
    assert_int_equal(ch_entity_new(0, 0, &t, &err), 0);
    ch_event ev;
    ch_event_reset(&ev);
    ev.dataset = CH_DS_CLOUDTRAIL;
    ev.action = (ch_sv){"RunInstances", 12};
    ev.outcome = CH_OUTCOME_FAILURE;
    assert_int_equal(ch_entity_observe(t, &ev), 0);
    ch_entity_stats s;
    ch_entity_stats_get(t, &s);
    assert_int_equal(s.launches, 0);
    assert_true(ch_entity_memory(t) > 0);
    ch_entity_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dns_query_from_launched_instance_carries_launching_user),
        cmocka_unit_test(test_v2_flow_with_only_interface_id_links_through_eni),
        cmocka_unit_test(test_flow_from_unknown_instance_is_a_counted_miss),
        cmocka_unit_test(test_event_with_user_is_left_alone),
        cmocka_unit_test(test_autoscaling_launch_links_service_role_with_invoked_by),
        cmocka_unit_test(test_full_table_evicts_least_recently_used_and_counts),
        cmocka_unit_test(test_link_unused_past_ttl_expires),
        cmocka_unit_test(test_non_launch_events_teach_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
