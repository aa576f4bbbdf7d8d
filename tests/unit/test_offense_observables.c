/*
 * test_offense_observables.c - an offense records the addresses, keys, instances and pools its
 * hits name: de-duplicated with counts, private addresses left out, capped with a count of what
 * was dropped, saved and loaded with the offense, shown by `offenses show`, and published over
 * TAXII when a rule of attributable severity named them (the user's own home address, named
 * only by a severity-4 "login without MFA", is not).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/json.h"
#include "intel/taxii_publish.h"
#include "intel/taxii_server.h"
#include "offense/observables.h"
#include "offense/offense.h"
#include "offense/store.h"

#define T0 1717462800000LL

static ch_rule_info rule_login = {"T-LOGIN", "login without MFA", "t", 4, 5, 5, 0};
static ch_rule_info rule_chain = {"T-CHAIN", "kill chain", "t", 9, 8, 9, 0};

static ch_sv sv(const char *s) { return (ch_sv){s, (uint32_t)strlen(s)}; }

static void hit(ch_offenses *m, const ch_rule_info *r, ch_event *ev)
{
    static char id[32];
    static int seq;
    snprintf(id, sizeof id, "ev-%d", ++seq);
    ev->id = sv(id);
    ch_rule_hit h = {.rule = r,
                     .ts_ms = ev->ts_ms,
                     .index_field = "user.name",
                     .index_value = sv("walter"),
                     .event = ev};
    assert_int_equal(ch_offenses_add_hit(m, &h, NULL), 1);
}

static void trail(ch_event *ev, const char *ip, const char *key, int64_t ts)
{
    ch_event_reset(ev);
    ev->dataset = CH_DS_CLOUDTRAIL;
    ev->outcome = CH_OUTCOME_SUCCESS;
    ev->ts_ms = ts;
    ev->account_id = sv("111122223333");
    ev->region = sv("us-east-1");
    ev->access_key = sv(key);
    assert_true(ch_ip_parse(ip, strlen(ip), &ev->src_ip));
}

/* The attack as hits: a login from home (low severity), the attacker's calls and launch, a
 * DNS query and flows of a launched instance. */
static ch_offenses *attack(ch_json_parser *jp)
{
    ch_offenses *m = ch_offenses_new();
    assert_non_null(m);
    ch_event ev;
    trail(&ev, "86.20.185.231", "", T0);
    hit(m, &rule_login, &ev);
    for (int i = 0; i < 3; i++) {
        trail(&ev, "77.88.8.8", "AKIAATTACKER0000001", T0 + 1000 * i);
        hit(m, &rule_chain, &ev);
    }
    trail(&ev, "10.0.0.9", "AKIAATTACKER0000001", T0 + 5000); /* a private source: not kept */
    hit(m, &rule_chain, &ev);
    static const char launch[] =
        "{\"responseElements\":{\"instancesSet\":{\"items\":[{\"instanceId\":\"i-0aaa\"},"
        "{\"instanceId\":\"i-0bbb\"}]}}}";
    trail(&ev, "77.88.8.8", "AKIAATTACKER0000001", T0 + 6000);
    ev.action = sv("RunInstances");
    ch_error err = {0};
    assert_int_equal(ch_json_parse(jp, launch, strlen(launch), 0, &ev.raw_doc, &err), 0);
    ev.has_raw_doc = true;
    hit(m, &rule_chain, &ev);

    ch_event_reset(&ev);
    ev.dataset = CH_DS_ROUTE53;
    ev.ts_ms = T0 + 7000;
    ev.account_id = sv("111122223333");
    ev.region = sv("ap-south-1");
    ev.instance_id = sv("i-0aaa");
    ev.access_key = sv("AKIAATTACKER0000001");
    ev.dns_qname = sv("pool.supportxmr.com");
    hit(m, &rule_chain, &ev);

    ch_event_reset(&ev);
    ev.dataset = CH_DS_VPCFLOW;
    ev.ts_ms = T0 + 8000;
    ev.instance_id = sv("i-0bbb");
    assert_true(ch_ip_parse("172.30.1.2", 10, &ev.src_ip));
    assert_true(ch_ip_parse("70.129.224.53", 13, &ev.dst_ip));
    hit(m, &rule_chain, &ev);
    return m;
}

static const ch_obs *find(const ch_offense_obs *o, ch_obs_kind k, const char *v)
{
    for (size_t i = 0; i < o->n[k]; i++)
        if (strcmp(o->items[k][i].value, v) == 0)
            return &o->items[k][i];
    return NULL;
}

static void check(const ch_offense *o)
{
    const ch_offense_obs *x = o->obs;
    assert_non_null(x);
    assert_int_equal(x->n[CH_OBS_SOURCE_IP], 2);
    const ch_obs *a = find(x, CH_OBS_SOURCE_IP, "77.88.8.8");
    assert_non_null(a);
    assert_int_equal(a->count, 4);
    assert_int_equal(a->severity, 9);
    assert_int_equal(a->first_ms, T0);
    assert_int_equal(a->last_ms, T0 + 6000);
    assert_int_equal(find(x, CH_OBS_SOURCE_IP, "86.20.185.231")->severity, 4);
    assert_null(find(x, CH_OBS_SOURCE_IP, "10.0.0.9"));
    assert_int_equal(x->n[CH_OBS_ACCESS_KEY], 1);
    assert_int_equal(find(x, CH_OBS_ACCESS_KEY, "AKIAATTACKER0000001")->count, 6);
    assert_int_equal(x->n[CH_OBS_INSTANCE], 2);
    assert_string_equal(find(x, CH_OBS_INSTANCE, "i-0aaa")->region, "us-east-1");
    assert_int_equal(find(x, CH_OBS_INSTANCE, "i-0aaa")->count, 2);
    assert_int_equal(x->n[CH_OBS_POOL_DOMAIN], 1);
    assert_non_null(find(x, CH_OBS_POOL_DOMAIN, "pool.supportxmr.com"));
    assert_int_equal(x->n[CH_OBS_POOL_IP], 1);
    assert_non_null(find(x, CH_OBS_POOL_IP, "70.129.224.53"));
    for (int k = 0; k < CH_OBS__COUNT; k++)
        assert_int_equal(x->dropped[k], 0);
}

static void test_hits_record_deduplicated_public_observables(void **state)
{
    (void)state;
    ch_json_parser *jp = ch_json_parser_new(1 << 16, 64);
    ch_offenses *m = attack(jp);
    assert_int_equal(ch_offenses_count(m), 1);
    check(ch_offenses_at(m, 0));
    ch_offenses_free(m);
    ch_json_parser_free(jp);
}

static void test_cap_counts_what_is_dropped(void **state)
{
    (void)state;
    ch_offense_obs *o = ch_obs_new();
    char v[32];
    for (int i = 0; i < CH_OBS_MAX_VALUES + 10; i++) {
        int n = snprintf(v, sizeof v, "pool%d.example.org", i);
        int rc = ch_obs_put(o, CH_OBS_POOL_DOMAIN, v, (size_t)n, "", "", 1, T0, T0, 8);
        assert_int_equal(rc, i < CH_OBS_MAX_VALUES ? 1 : CH_ELIMIT);
    }
    /* A known value still counts at the cap; a value too long is dropped, not cut. */
    assert_int_equal(
        ch_obs_put(o, CH_OBS_POOL_DOMAIN, "pool0.example.org", 17, "", "", 1, T0, T0, 8), 0);
    char longv[CH_OBS_MAX_VALUE_LEN + 2];
    memset(longv, 'a', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    assert_int_equal(ch_obs_put(o, CH_OBS_SOURCE_IP, longv, strlen(longv), "", "", 1, T0, T0, 8),
                     CH_ELIMIT);
    assert_int_equal(o->n[CH_OBS_POOL_DOMAIN], CH_OBS_MAX_VALUES);
    assert_int_equal(o->dropped[CH_OBS_POOL_DOMAIN], 10);
    assert_int_equal(o->dropped[CH_OBS_SOURCE_IP], 1);
    ch_buf b;
    ch_buf_init(&b, 1 << 20);
    assert_int_equal(ch_obs_json(&b, o), 0);
    ch_buf_addc(&b, '\0');
    assert_non_null(
        strstr(b.data, "\"pool_domains\":{\"values\":[{\"value\":\"pool0.example.org\""));
    assert_non_null(strstr(b.data, "],\"dropped\":10}"));
    ch_buf_free(&b);
    ch_obs_free(o);
}

static void test_observables_survive_the_store_and_reach_taxii(void **state)
{
    (void)state;
    char dir[] = "/tmp/ch_obs_XXXXXX", db[64];
    assert_non_null(mkdtemp(dir));
    snprintf(db, sizeof db, "%s/o.db", dir);
    ch_json_parser *jp = ch_json_parser_new(1 << 16, 64);
    ch_offenses *m = attack(jp);
    ch_store *s = NULL;
    ch_error err = {0};
    assert_int_equal(ch_store_open(db, &s, &err), 0);
    assert_int_equal(ch_store_save(s, m, NULL, T0, &err), 0);
    int64_t id = ch_offenses_at(m, 0)->id;
    ch_offenses_free(m);
    ch_json_parser_free(jp);

    ch_offenses *back = ch_offenses_new();
    assert_int_equal(ch_store_load_one(s, id, back, &err), 0);
    check(ch_offenses_at(back, 0));
    ch_buf b;
    ch_buf_init(&b, 1 << 20);
    assert_int_equal(ch_offense_json(&b, ch_offenses_at(back, 0), CH_OFFENSE_JSON_DETAIL), 0);
    ch_buf_addc(&b, '\0');
    assert_non_null(strstr(b.data, "\"observables\":{\"source_ips\":{\"values\":[{\"value\":"));
    assert_non_null(strstr(b.data, "\"value\":\"i-0bbb\""));

    ch_taxii_catalog *cat = NULL;
    assert_int_equal(ch_taxii_catalog_new(&cat), 0);
    ch_taxii_publish_stats st = {0};
    assert_int_equal(ch_taxii_publish_offenses(cat, back, NULL, T0 + 9000, &st, &err), 0);
    ch_buf_clear(&b);
    ch_taxii_object obj;
    for (size_t i = 0; ch_taxii_catalog_object(cat, 0, i, &obj); i++)
        ch_buf_add(&b, obj.json, obj.len);
    ch_buf_addc(&b, '\0');
    assert_non_null(strstr(b.data, "[ipv4-addr:value = '77.88.8.8']"));
    assert_non_null(strstr(b.data, "[domain-name:value = 'pool.supportxmr.com']"));
    assert_non_null(strstr(b.data, "[ipv4-addr:value = '70.129.224.53']"));
    assert_null(strstr(b.data, "86.20.185.231"));
    assert_null(strstr(b.data, "AKIA"));
    assert_int_equal(ch_taxii_catalog_objects(cat, 0), 3);
    ch_taxii_catalog_free(cat);
    ch_buf_free(&b);
    ch_offenses_free(back);
    ch_store_close(s);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hits_record_deduplicated_public_observables),
        cmocka_unit_test(test_cap_counts_what_is_dropped),
        cmocka_unit_test(test_observables_survive_the_store_and_reach_taxii),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
