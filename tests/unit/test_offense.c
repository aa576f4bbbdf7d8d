/*
 * test_offense.c - the offense manager: chaining by index value, contributing rules and events,
 * magnitude properties (docs/OFFENSES.md), status changes, and JSON/table rendering.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/mem.h"
#include "offense/offense.h"

#define T0 1722588804000LL /* 2024-08-02T08:53:24Z */
#define MIN (60LL * 1000)

/* Roughly the pack's ranks: attacker stages and benign traps. */
static const ch_rule_info R_AUTH01 = {
    "CJ-AUTH-01", "Logins from several countries", "cj", 7, 8, 8, 40};
static const ch_rule_info R_AUTH02 = {
    "CJ-AUTH-02", "Login outside business countries", "cj", 6, 6, 6, 20};
static const ch_rule_info R_AUTH03 = {"CJ-AUTH-03", "Failed logins burst", "cj", 4, 6, 5, 10};
static const ch_rule_info R_AUTH04 = {"CJ-AUTH-04", "Success after failures", "cj", 7, 7, 7, 30};
static const ch_rule_info R_AUTH05 = {"CJ-AUTH-05", "Login without MFA", "cj", 4, 6, 5, 10};
static const ch_rule_info R_IAM01 = {"CJ-IAM-01", "Access key after anomalous login", "cj", 7, 7, 8,
                                     30};
static const ch_rule_info R_RECON01 = {"CJ-RECON-01", "Pentest OS user agent", "cj", 6, 8, 7, 30};
static const ch_rule_info R_EC201 = {"CJ-EC2-01", "Unauthorised OS image", "cj", 8, 8, 8, 40};
static const ch_rule_info R_EC202 = {"CJ-EC2-02", "Launch burst", "cj", 8, 8, 8, 40};
static const ch_rule_info R_EC203 = {"CJ-EC2-03", "New region", "cj", 6, 6, 7, 20};
static const ch_rule_info R_MINE01 = {"CJ-MINE-01", "Mining pool DNS", "cj", 9, 9, 9, 50};
static const ch_rule_info R_CHAIN01 = {"CJ-CHAIN-01", "Kill chain", "cj", 10, 9, 10, 100};
static const ch_rule_info R_LOW = {"X-LOW-01", "Something minor", "cj", 2, 5, 3, 5};
static const ch_rule_info R_NOINDEX = {"X-NOINDEX", "No index", "cj", 5, 5, 5, 5};

typedef struct {
    ch_sv ids[8];
    ch_rule_hit hit;
} hitbuf;

static ch_rule_hit *mkhit(hitbuf *h, const ch_rule_info *r, const char *user, int64_t ts,
                          const char *const *ids, uint32_t nids)
{
    memset(h, 0, sizeof *h);
    for (uint32_t i = 0; i < nids; i++)
        h->ids[i] = (ch_sv){ids[i], (uint32_t)strlen(ids[i])};
    h->hit.rule = r;
    h->hit.ts_ms = ts;
    h->hit.first_ms = ts;
    h->hit.index_field = "user.name";
    h->hit.index_value = user ? (ch_sv){user, (uint32_t)strlen(user)} : (ch_sv){NULL, 0};
    h->hit.user = user ? (ch_sv){user, (uint32_t)strlen(user)} : (ch_sv){NULL, 0};
    h->hit.event_ids = h->ids;
    h->hit.nevent_ids = nids;
    h->hit.event_count = nids ? nids : 1;
    h->hit.evidence = "evidence line";
    return &h->hit;
}

static ch_offense *add1(ch_offenses *m, const ch_rule_info *r, const char *user, int64_t ts,
                        const char *id)
{
    hitbuf h;
    const char *ids[1] = {id};
    ch_offense *o = NULL;
    assert_int_equal(ch_offenses_add_hit(m, mkhit(&h, r, user, ts, ids, id ? 1 : 0), &o), 1);
    return o;
}

static void test_fifteen_hits_of_eight_rules_on_one_user_make_one_offense(void **state)
{
    (void)state;
    ch_offenses *m = ch_offenses_new();
    assert_non_null(m);
    const ch_rule_info *rules[8] = {&R_AUTH01,  &R_AUTH02, &R_AUTH05, &R_IAM01,
                                    &R_RECON01, &R_EC201,  &R_EC202,  &R_MINE01};
    ch_offense *first = NULL;
    char id[32];
    for (int i = 0; i < 15; i++) {
        snprintf(id, sizeof id, "ev-%d", i);
        ch_offense *o = add1(m, rules[i % 8], "alice", T0 + i * MIN, id);
        if (first == NULL)
            first = o;
        assert_ptr_equal(o, first);
    }
    assert_int_equal(ch_offenses_count(m), 1);
    ch_offense *o = ch_offenses_at(m, 0);
    assert_int_equal(o->id, 1);
    assert_string_equal(o->index_field, "user.name");
    assert_string_equal(o->index_value, "alice");
    assert_int_equal(o->nrules, 8);
    assert_int_equal(o->event_count, 15);
    assert_int_equal(o->nevent_ids, 15);
    assert_int_equal(o->first_ms, T0);
    assert_int_equal(o->last_ms, T0 + 14 * MIN);
    /* rule 0 (CJ-AUTH-01) hit at i = 0 and 8 */
    assert_string_equal(o->rules[0].id, "CJ-AUTH-01");
    assert_int_equal(o->rules[0].count, 2);
    assert_int_equal(o->rules[0].first_ms, T0);
    assert_int_equal(o->rules[0].last_ms, T0 + 8 * MIN);
    assert_int_equal(o->status, CH_OFFENSE_OPEN);
    const ch_offenses_stats *st = ch_offenses_stats_get(m);
    assert_int_equal(st->created, 1);
    assert_int_equal(st->hits_chained, 14);
    ch_offenses_free(m);
}

static void test_hit_without_index_value_creates_no_offense(void **state)
{
    (void)state;
    ch_offenses *m = ch_offenses_new();
    hitbuf h;
    const char *ids[1] = {"e1"};
    ch_rule_hit *hit = mkhit(&h, &R_NOINDEX, NULL, T0, ids, 1);
    assert_int_equal(ch_offenses_add_hit(m, hit, NULL), 0);
    hit->index_field = NULL; /* the rule names no index at all */
    hit->index_value = CH_SV("alice");
    assert_int_equal(ch_offenses_add_hit(m, hit, NULL), 0);
    assert_int_equal(ch_offenses_count(m), 0);
    assert_int_equal(ch_offenses_stats_get(m)->hits_no_index, 2);
    ch_offenses_free(m);
}

static void test_empty_index_value_is_a_value(void **state)
{
    /* Present but empty (""), unlike absent: the engine decides; we chain on it verbatim. */
    (void)state;
    ch_offenses *m = ch_offenses_new();
    add1(m, &R_LOW, "", T0, "e1");
    assert_int_equal(ch_offenses_count(m), 1);
    ch_offenses_free(m);
}

static void test_different_users_and_fields_make_separate_offenses(void **state)
{
    (void)state;
    ch_offenses *m = ch_offenses_new();
    ch_offense *a = add1(m, &R_AUTH01, "alice", T0, "e1");
    ch_offense *b = add1(m, &R_AUTH01, "bob", T0, "e2");
    hitbuf h;
    const char *ids[1] = {"e3"};
    ch_rule_hit *hit = mkhit(&h, &R_AUTH01, "alice", T0, ids, 1);
    hit->index_field = "source.ip";
    ch_offense *c = NULL;
    assert_int_equal(ch_offenses_add_hit(m, hit, &c), 1);
    assert_ptr_not_equal(a, b);
    assert_ptr_not_equal(a, c);
    assert_int_equal(ch_offenses_count(m), 3);
    assert_int_equal(c->id, 3);
    assert_ptr_equal(ch_offenses_find(m, 2), b);
    assert_ptr_equal(ch_offenses_find_active(m, "source.ip", "alice", 5), c);
    ch_offenses_free(m);
}

static void test_repeated_event_ids_count_once(void **state)
{
    (void)state;
    ch_offenses *m = ch_offenses_new();
    hitbuf h;
    const char *w1[3] = {"a", "b", "c"}, *w2[3] = {"b", "c", "d"};
    ch_offense *o = NULL;
    assert_int_equal(ch_offenses_add_hit(m, mkhit(&h, &R_EC202, "eve", T0, w1, 3), &o), 1);
    assert_int_equal(ch_offenses_add_hit(m, mkhit(&h, &R_EC202, "eve", T0 + 1, w2, 3), &o), 1);
    assert_int_equal(o->event_count, 4);
    assert_int_equal(o->nevent_ids, 4);
    assert_int_equal(o->rules[0].count, 2);
    /* events the engine counted but did not list are added as they come */
    ch_rule_hit *hit = mkhit(&h, &R_EC202, "eve", T0 + 2, w2, 3);
    hit->event_count = 103;
    assert_int_equal(ch_offenses_add_hit(m, hit, &o), 1);
    assert_int_equal(o->event_count, 104);
    ch_offenses_free(m);
}

static void test_event_id_list_is_bounded_but_total_is_kept(void **state)
{
    (void)state;
    ch_offenses *m = ch_offenses_new();
    char id[32];
    ch_offense *o = NULL;
    for (int i = 0; i < 250; i++) {
        snprintf(id, sizeof id, "flow-%d", i);
        o = add1(m, &R_MINE01, "eve", T0 + i, id);
    }
    assert_int_equal(o->nevent_ids, CH_OFFENSE_MAX_EVENT_IDS);
    assert_int_equal(o->event_count, 250);
    assert_string_equal(o->event_ids[0], "flow-0");
    /* an id seen before the list filled up still counts once */
    add1(m, &R_MINE01, "eve", T0 + 300, "flow-7");
    add1(m, &R_MINE01, "eve", T0 + 301, "flow-200");
    assert_int_equal(o->event_count, 250);
    ch_offenses_free(m);
}

static void test_single_low_severity_hit_has_low_magnitude(void **state)
{
    (void)state;
    ch_offenses *m = ch_offenses_new();
    ch_offense *o = add1(m, &R_LOW, "carol", T0, "e1");
    assert_in_range(o->magnitude, 1, 2);
    assert_int_equal(o->severity, 2);
    assert_int_equal(o->credibility, 5);
    assert_int_equal(o->relevance, 3);
    ch_offenses_free(m);
}

static void test_benign_user_with_one_or_two_medium_rules_stays_at_most_five(void **state)
{
    (void)state;
    ch_offenses *m = ch_offenses_new();
    /* the traveller: one login outside business countries */
    ch_offense *t = add1(m, &R_AUTH02, "traveller", T0, "e1");
    assert_true(t->magnitude <= 5);
    /* mistyped passwords and no MFA, repeated for a week */
    char id[32];
    ch_offense *u = NULL;
    for (int i = 0; i < 400; i++) {
        snprintf(id, sizeof id, "m-%d", i);
        u = add1(m, (i % 2) ? &R_AUTH03 : &R_AUTH05, "typo", T0 + i * 20 * MIN, id);
    }
    assert_int_equal(u->nrules, 2);
    assert_true(u->magnitude <= 5);
    /* the worst medium pair: both rules at 6/6/6 and many events */
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof id, "x-%d", i);
        u = add1(m, (i % 2) ? &R_AUTH02 : &R_EC203, "worst", T0 + i * MIN, id);
    }
    assert_true(u->magnitude <= 5);
    ch_offenses_free(m);
}

static void test_attacker_with_kill_chain_reaches_nine_or_ten(void **state)
{
    (void)state;
    ch_offenses *m = ch_offenses_new();
    const ch_rule_info *stages[] = {&R_AUTH03,  &R_AUTH04, &R_AUTH01, &R_AUTH02, &R_IAM01,
                                    &R_RECON01, &R_EC201,  &R_EC202,  &R_EC203,  &R_MINE01};
    char id[32];
    ch_offense *o = NULL;
    for (size_t i = 0; i < sizeof stages / sizeof stages[0]; i++) {
        snprintf(id, sizeof id, "s-%zu", i);
        o = add1(m, stages[i], "mallory", T0 + (int64_t)i * MIN, id);
    }
    int before_chain = o->magnitude;
    o = add1(m, &R_CHAIN01, "mallory", T0 + 60 * MIN, "chain");
    assert_int_equal(o->nrules, 11);
    assert_in_range(o->magnitude, 9, 10);
    assert_true(o->magnitude >= before_chain);
    assert_int_equal(o->severity, 10);
    /* fewer stages, same chain: still on top */
    ch_offenses *m2 = ch_offenses_new();
    for (size_t i = 4; i < sizeof stages / sizeof stages[0]; i++)
        add1(m2, stages[i], "m2", T0 + (int64_t)i, NULL);
    o = add1(m2, &R_CHAIN01, "m2", T0 + 99, NULL);
    assert_in_range(o->magnitude, 9, 10);
    ch_offenses_free(m2);
    ch_offenses_free(m);
}

static void test_more_rules_and_events_never_lower_magnitude(void **state)
{
    (void)state;
    ch_offenses *m = ch_offenses_new();
    const ch_rule_info *rules[] = {&R_LOW,    &R_AUTH05, &R_AUTH03, &R_AUTH02, &R_EC203,
                                   &R_AUTH04, &R_IAM01,  &R_EC201,  &R_MINE01, &R_CHAIN01};
    double last = 0;
    char id[32];
    for (size_t i = 0; i < 10; i++) {
        for (int k = 0; k < 30; k++) {
            snprintf(id, sizeof id, "%zu-%d", i, k);
            ch_offense *o = add1(m, rules[i], "u", T0 + (int64_t)(i * 100 + k), id);
            assert_true(o->score >= last - 1e-9);
            assert_in_range(o->magnitude, 1, 10);
            last = o->score;
        }
    }
    ch_offenses_free(m);
}

static void test_closed_offense_is_not_reopened_by_a_new_hit(void **state)
{
    (void)state;
    ch_offenses *m = ch_offenses_new();
    ch_offense *o = add1(m, &R_AUTH01, "alice", T0, "e1");
    assert_int_equal(ch_offense_set_status(m, o, CH_OFFENSE_CLOSED, "false positive", T0), 0);
    assert_int_equal(o->nnotes, 1);
    assert_string_equal(o->notes[0].text, "false positive");
    assert_int_equal(ch_offense_set_status(m, o, CH_OFFENSE_OPEN, NULL, T0), CH_EUSAGE);
    ch_offense *n = add1(m, &R_AUTH01, "alice", T0 + MIN, "e2");
    assert_ptr_not_equal(o, n);
    assert_int_equal(n->id, 2);
    assert_int_equal(o->event_count, 1);
    assert_int_equal(o->status, CH_OFFENSE_CLOSED);
    ch_offenses_free(m);
}

static void test_hidden_offense_keeps_chaining(void **state)
{
    (void)state;
    ch_offenses *m = ch_offenses_new();
    ch_offense *o = add1(m, &R_AUTH05, "svc", T0, "e1");
    assert_int_equal(ch_offense_set_status(m, o, CH_OFFENSE_HIDDEN, "noisy", T0), 0);
    assert_ptr_equal(add1(m, &R_AUTH05, "svc", T0 + 1, "e2"), o);
    assert_int_equal(ch_offenses_count(m), 1);
    ch_offenses_free(m);
}

static void test_json_lists_offenses_by_magnitude_with_contract_keys(void **state)
{
    (void)state;
    ch_offenses *m = ch_offenses_new();
    add1(m, &R_LOW, "low\"user", T0, "e1");
    add1(m, &R_CHAIN01, "mallory", T0 + 1000, "e2");
    add1(m, &R_MINE01, "mallory", T0 + 2000, "e3");
    ch_buf b;
    ch_buf_init(&b, 0);
    assert_int_equal(ch_offenses_json(&b, m, CH_OFFENSE_MASK_ALL, 0), 0);
    const char *mal = strstr(b.data, "\"value\":\"mallory\"");
    const char *low = strstr(b.data, "\"value\":\"low\\\"user\"");
    assert_non_null(mal);
    assert_non_null(low);
    assert_true(mal < low);
    assert_true(strncmp(b.data, "\"offenses\":[{\"id\":2,\"index\":{\"field\":\"user.name\"", 48) ==
                0);
    const char *keys[] = {"\"magnitude\":",
                          "\"severity\":10",
                          "\"credibility\":",
                          "\"relevance\":",
                          "\"rules\":[{\"id\":\"CJ-CHAIN-01\",\"title\":\"Kill chain\",\"count\":1,"
                          "\"first_seen\":\"2024-08-02T08:53:25Z\",\"last_seen\":"
                          "\"2024-08-02T08:53:25Z\"",
                          "\"event_count\":2",
                          "\"first_seen\":\"2024-08-02T08:53:25Z\"",
                          "\"last_seen\":\"2024-08-02T08:53:26Z\"",
                          "\"status\":\"open\""};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        if (strstr(b.data, keys[i]) == NULL)
            fail_msg("missing %s in %s", keys[i], b.data);
    }
    assert_null(strstr(b.data, "\"event_ids\""));
    ch_buf_clear(&b);
    assert_int_equal(ch_offenses_json(&b, m, CH_OFFENSE_MASK_ALL, CH_OFFENSE_JSON_DETAIL), 0);
    assert_non_null(strstr(b.data, "\"event_ids\":[\"e2\",\"e3\"]"));
    assert_non_null(strstr(b.data, "\"evidence\":\"evidence line\""));
    ch_buf_free(&b);
    ch_offenses_free(m);
}

static void test_table_neutralises_control_bytes_in_index_values(void **state)
{
    (void)state;
    ch_offenses *m = ch_offenses_new();
    add1(m, &R_AUTH01, "evil\x1b[2Jname", T0, "e1");
    ch_buf b;
    ch_buf_init(&b, 0);
    assert_int_equal(ch_offenses_table(&b, m, CH_OFFENSE_MASK_ALL, 0), 0);
    assert_null(strchr(b.data, '\x1b'));
    assert_non_null(strstr(b.data, "user.name=evil?[2Jname"));
    assert_non_null(strstr(b.data, "CJ-AUTH-01"));
    ch_buf_clear(&b);
    assert_int_equal(ch_offense_detail_text(&b, ch_offenses_at(m, 0)), 0);
    assert_null(strchr(b.data, '\x1b'));
    assert_non_null(strstr(b.data, "evidence: evidence line"));
    ch_buf_free(&b);
    ch_offenses_free(m);
}

static void test_allocation_failures_are_reported_not_crashed(void **state)
{
    (void)state;
    for (long k = 0; k < 40; k++) {
        ch_offenses *m = ch_offenses_new();
        if (m == NULL)
            continue;
        ch_mem_fail_after(k);
        hitbuf h;
        const char *ids[2] = {"a", "b"};
        for (int i = 0; i < 3; i++) {
            int rc =
                ch_offenses_add_hit(m, mkhit(&h, i ? &R_AUTH01 : &R_AUTH02, "u", T0, ids, 2), NULL);
            assert_true(rc == 1 || rc == CH_ENOMEM);
        }
        ch_mem_fail_after(-1);
        ch_offenses_free(m);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifteen_hits_of_eight_rules_on_one_user_make_one_offense),
        cmocka_unit_test(test_hit_without_index_value_creates_no_offense),
        cmocka_unit_test(test_empty_index_value_is_a_value),
        cmocka_unit_test(test_different_users_and_fields_make_separate_offenses),
        cmocka_unit_test(test_repeated_event_ids_count_once),
        cmocka_unit_test(test_event_id_list_is_bounded_but_total_is_kept),
        cmocka_unit_test(test_single_low_severity_hit_has_low_magnitude),
        cmocka_unit_test(test_benign_user_with_one_or_two_medium_rules_stays_at_most_five),
        cmocka_unit_test(test_attacker_with_kill_chain_reaches_nine_or_ten),
        cmocka_unit_test(test_more_rules_and_events_never_lower_magnitude),
        cmocka_unit_test(test_closed_offense_is_not_reopened_by_a_new_hit),
        cmocka_unit_test(test_hidden_offense_keeps_chaining),
        cmocka_unit_test(test_json_lists_offenses_by_magnitude_with_contract_keys),
        cmocka_unit_test(test_table_neutralises_control_bytes_in_index_values),
        cmocka_unit_test(test_allocation_failures_are_reported_not_crashed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
