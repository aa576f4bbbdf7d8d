/*
 * test_rule_load.c - the YAML rule loader and `coinhound rules check|test`: a good rule
 * compiles with every field, every kind of mistake is refused with file:line:column, the rule
 * id and what was expected, and the golden packs in tests/golden/rules check and test as they
 * should (the command functions are called directly).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd_rules.h"
#include "core/mem.h"
#include "enrich/refset.h"
#include "rules/rule.h"

#define GOLDEN CH_SOURCE_DIR "/tests/golden/rules/"

static ch_refsets *sets;
static ch_expr_env env;

static int setup(void **st)
{
    (void)st;
    if (ch_refsets_new(&sets) != 0)
        return -1;
    ch_refset *s = NULL;
    ch_error err;
    if (ch_refsets_ensure(sets, "business_countries", CH_REFSET_STRING, NULL, &s, &err) != 0)
        return -1;
    ch_rule_env_init(&env, sets);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    ch_refsets_free(sets);
    return 0;
}

static int load(const char *yaml, ch_rule **r, ch_error *err)
{
    memset(err, 0, sizeof *err);
    return ch_rule_load_mem("pack/rules/x.yml", yaml, strlen(yaml), &env, sets, r, err);
}

/* The load must fail and the message must contain every needle. */
static void refused(const char *yaml, const char *n1, const char *n2)
{
    ch_rule *r = NULL;
    ch_error err;
    int rc = load(yaml, &r, &err);
    if (rc == 0)
        fail_msg("accepted: %s", yaml);
    assert_null(r);
    if (n1 && !strstr(err.msg, n1))
        fail_msg("'%s' not in: %s", n1, err.msg);
    if (n2 && !strstr(err.msg, n2))
        fail_msg("'%s' not in: %s", n2, err.msg);
}

#define HEAD "id: CJ-X-01\ntitle: t\nseverity: 7\ncredibility: 8\nrelevance: 8\n"

static void test_full_rule_compiles_with_every_field(void **st)
{
    (void)st;
    const char *y =
        HEAD "risk: 40\n"
             "where: event.action == \"ConsoleLogin\" and source.geo.country_iso_code"
             " not in $business_countries\n"
             "correlate: {type: distinct, by: [user.name], field: "
             "source.geo.country_iso_code, count: 2, within: 1h}\n"
             "offense: {index: user.name}\n"
             "responses:\n"
             "  - refset: {name: suspects, field: user.name, ttl: 7d}\n"
             "  - derived: {action: ForeignLogin}\n"
             "tests:\n"
             "  - {name: two countries, events: tests/two.jsonl, expect: fire}\n"
             "  - {name: traveller, events: [tests/trav.jsonl, tests/dns.log], expect: silent}\n";
    ch_rule *r = NULL;
    ch_error err;
    if (load(y, &r, &err) != 0)
        fail_msg("%s", err.msg);
    assert_string_equal(r->info.id, "CJ-X-01");
    assert_int_equal(r->info.severity, 7);
    assert_int_equal(r->info.risk, 40);
    assert_int_equal(r->type, CH_CORR_DISTINCT);
    assert_int_equal(r->nby, 1);
    assert_int_equal(r->count, 2);
    assert_int_equal(r->within_ms, 3600000);
    assert_string_equal(ch_field_ref_path(r->index), "user.name");
    assert_int_equal(r->nresponses, 2);
    assert_int_equal(r->responses[0].ttl_ms, 7 * 86400000LL);
    assert_int_equal(r->responses[1].kind, CH_RESP_DERIVED);
    assert_int_equal(r->ntests, 2);
    assert_string_equal(r->tests[0].events[0], "pack/rules/tests/two.jsonl");
    assert_int_equal(r->tests[1].nevents, 2);
    assert_string_equal(r->tests[1].events[1], "pack/rules/tests/dns.log");
    assert_true(r->tests[0].expect_fire);
    assert_false(r->tests[1].expect_fire);
    assert_non_null(ch_refsets_get(sets, "suspects", 8)); /* made for the response */
    ch_rule_free(r);
}

static void test_sum_count_form_is_understood(void **st)
{
    (void)st;
    ch_rule *r = NULL;
    ch_error err;
    const char *y = HEAD "where: event.action == \"RunInstances\"\n"
                         "correlate: {type: threshold, by: user.name, count: 20, within: 10m,"
                         " sum: count(responseElements.instancesSet.items.instanceId)}\n";
    if (load(y, &r, &err) != 0)
        fail_msg("%s", err.msg);
    assert_true(r->sum_count);
    assert_string_equal(ch_field_ref_path(r->sum),
                        "responseElements.instancesSet.items.instanceId");
    ch_rule_free(r);
}

static void test_unknown_key_names_file_line_column_and_rule(void **st)
{
    (void)st;
    refused(HEAD "where: event.action == \"X\"\nwithin: 1h\n",
            "pack/rules/x.yml:7:1: CJ-X-01: unknown key 'within' in a rule", "expected one of");
    refused(HEAD "where: event.action == \"X\"\n"
                 "correlate: {type: threshold, count: 3, withn: 10m}\n",
            ":7:", "unknown key 'withn' in 'correlate'");
}

static void test_bad_expression_is_refused_with_its_position(void **st)
{
    (void)st;
    refused(HEAD "where: event.action == \n", "pack/rules/x.yml:6:", "CJ-X-01: in 'where'");
    /* the error's own column, counted in the file: `)` is column 24 of line 6 */
    refused(HEAD "where: event.action == )\n", "pack/rules/x.yml:6:24: CJ-X-01", "at 1:17");
    refused(HEAD "where: \"event.action == )\"\n", "pack/rules/x.yml:6:25: CJ-X-01", NULL);
    refused(HEAD "where: user.name in $nosuchset\n", "CJ-X-01", "nosuchset");
}

static void test_missing_and_out_of_range_values_are_refused(void **st)
{
    (void)st;
    refused("title: t\nseverity: 1\ncredibility: 1\nrelevance: 1\nwhere: a exists\n",
            "expected a non-empty string for 'id'", NULL);
    refused("id: X\ntitle: t\nseverity: 11\ncredibility: 1\nrelevance: 1\nwhere: a exists\n",
            "X: expected an integer 0..10 for 'severity'", ":3:11");
    refused(HEAD "correlate: {type: none}\n", "needs 'where'", NULL);
    refused(HEAD "where: a exists\ncorrelate: {type: threshold, count: 3}\n",
            "correlation type threshold needs 'within'", NULL);
    refused(HEAD "where: a exists\ncorrelate: {type: threshold, count: 3, within: 10}\n",
            "expected a positive duration", NULL);
    refused(HEAD "where: a exists\ncorrelate: {type: threshold, count: 0, within: 1m}\n",
            "expected a number 1..1e9 for 'count'", NULL);
    refused(HEAD "where: a exists\ncorrelate: {type: distinct, count: 2, within: 1m}\n",
            "needs 'field'", NULL);
    refused(HEAD "where: a exists\ncorrelate: {type: none, within: 1m}\n",
            "'within' does not apply to correlation type none", NULL);
    refused(HEAD "where: a exists\ncorrelate: {type: sometimes}\n", "unknown correlation type",
            NULL);
    refused(HEAD "where: a exists\ntests:\n  - {name: a, events: b.jsonl, expect: maybe}\n",
            "expected 'fire' or 'silent'", NULL);
    refused(HEAD "where: a exists\nwhere: b exists\n", "duplicate key 'where'", NULL);
    refused(HEAD "where: a exists\n---\nid: second\n", "one rule a file", NULL);
    refused("id: [unclosed\n", "not valid YAML", "x.yml:");
    refused("", "empty rule file", NULL);
}

static void test_sequence_steps_are_checked(void **st)
{
    (void)st;
    refused(HEAD "correlate: {type: sequence, within: 1h, steps: [{where: a exists}]}\n",
            "2 to 16 steps", NULL);
    refused(HEAD "correlate: {type: sequence, within: 1h, steps: [{where: a exists, rule: B},"
                 " {rule: C}]}\n",
            "exactly one of 'where' or 'rule'", NULL);
    refused(HEAD "correlate: {type: sequence, by: [a, b], within: 1h, steps: [{rule: B},"
                 " {where: a exists, by: c}]}\n",
            "as many paths as the rule's 'by'", NULL);
}

static void test_ruleset_refuses_unknown_step_rules_and_duplicate_ids(void **st)
{
    (void)st;
    ch_error err;
    ch_rule **rules = calloc(2, sizeof *rules);
    const char *a = HEAD "correlate: {type: sequence, within: 1h, steps: [{rule: NOPE},"
                         " {where: a exists}]}\n";
    assert_int_equal(load(a, &rules[0], &err), 0);
    ch_rule **own = NULL;
    ch_ruleset *rs = NULL;
    /* ch_ruleset_from_rules frees with ch_free: move into an array it may own. */
    own = ch_calloc(1, sizeof *own);
    own[0] = rules[0];
    assert_int_equal(ch_ruleset_from_rules(own, 1, "p", sets, &rs, &err), CH_EPARSE);
    assert_non_null(strstr(err.msg, "unknown rule 'NOPE'"));
    own = ch_calloc(2, sizeof *own);
    assert_int_equal(load(HEAD "where: a exists\n", &own[0], &err), 0);
    assert_int_equal(load(HEAD "where: b exists\n", &own[1], &err), 0);
    assert_int_equal(ch_ruleset_from_rules(own, 2, "p", sets, &rs, &err), CH_EPARSE);
    assert_non_null(strstr(err.msg, "also used"));
    free(rules);
}

static void test_golden_pack_loads_with_its_reference_sets(void **st)
{
    (void)st;
    ch_refsets *s = NULL;
    ch_ruleset *rs = NULL;
    ch_error err = {0};
    assert_int_equal(ch_refsets_new(&s), 0);
    if (ch_ruleset_load(GOLDEN "pack", s, NULL, NULL, &rs, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(rs->n, 3);
    assert_string_equal(rs->pack, "pack");
    assert_true(ch_ruleset_find(rs, "T-BRUTE-OK") >= 0);
    ch_refset *w = ch_refsets_get(s, "watch_users", 11);
    assert_non_null(w);
    assert_int_equal(ch_refset_count(w), 1);
    ch_ruleset_free(rs);
    ch_refsets_free(s);
}

static int run_cmd(const char *sub, const char *dir)
{
    char a0[] = "rules", a2[] = "--no-geoip";
    char a1[16], a3[512];
    snprintf(a1, sizeof a1, "%s", sub);
    snprintf(a3, sizeof a3, "%s", dir);
    char *argv[] = {a0, a1, a2, a3, NULL};
    char *argv_check[] = {a0, a1, a3, NULL};
    fflush(stdout);
    return strcmp(sub, "check") == 0 ? ch_cmd_rules(3, argv_check) : ch_cmd_rules(4, argv);
}

static void test_rules_check_accepts_good_pack_and_refuses_typo(void **st)
{
    (void)st;
    assert_int_equal(run_cmd("check", GOLDEN "pack"), 0);
    assert_int_equal(run_cmd("check", GOLDEN "bad"), 1);
    assert_int_equal(run_cmd("check", GOLDEN "no-such-pack"), 1);
}

static void test_rules_test_runs_every_case_of_the_golden_pack(void **st)
{
    (void)st;
    assert_int_equal(run_cmd("test", GOLDEN "pack"), 0);
}

static void test_rules_usage_errors_exit_2(void **st)
{
    (void)st;
    char a0[] = "rules", a1[] = "frobnicate";
    char *argv[] = {a0, a1, NULL};
    assert_int_equal(ch_cmd_rules(2, argv), 2);
    assert_int_equal(ch_cmd_rules(1, argv), 2);
}

/* ATT&CK techniques come from Sigma-style tags; other tags pass, a malformed technique does
 * not (it would silently drop the rule from the pack's coverage matrix). A test case may name a
 * context file. */
static void test_attack_tags_kept_and_malformed_refused(void **st)
{
    (void)st;
    ch_rule *r = NULL;
    ch_error err;
    const char *ok = "id: T-1\ntitle: t\nseverity: 1\ncredibility: 1\nrelevance: 1\n"
                     "tags: [attack.execution, attack.t1496.001, attack.T1078, cve.2021-1]\n"
                     "where: event.action == \"X\"\n"
                     "tests:\n  - {name: a, events: a.jsonl, context: ctx.yaml, expect: fire}\n";
    if (load(ok, &r, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(r->nmitre, 2);
    assert_string_equal(r->mitre[0], "T1496.001");
    assert_string_equal(r->mitre[1], "T1078");
    assert_string_equal(r->tests[0].context, "pack/rules/ctx.yaml");
    ch_rule_free(r);
    refused("id: T-2\ntitle: t\nseverity: 1\ncredibility: 1\nrelevance: 1\n"
            "tags: [attack.t149]\nwhere: event.action == \"X\"\n",
            "x.yml:6:", "attack.t1496.001");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_rule_compiles_with_every_field),
        cmocka_unit_test(test_sum_count_form_is_understood),
        cmocka_unit_test(test_unknown_key_names_file_line_column_and_rule),
        cmocka_unit_test(test_bad_expression_is_refused_with_its_position),
        cmocka_unit_test(test_missing_and_out_of_range_values_are_refused),
        cmocka_unit_test(test_sequence_steps_are_checked),
        cmocka_unit_test(test_ruleset_refuses_unknown_step_rules_and_duplicate_ids),
        cmocka_unit_test(test_golden_pack_loads_with_its_reference_sets),
        cmocka_unit_test(test_rules_check_accepts_good_pack_and_refuses_typo),
        cmocka_unit_test(test_rules_test_runs_every_case_of_the_golden_pack),
        cmocka_unit_test(test_rules_usage_errors_exit_2),
        cmocka_unit_test(test_attack_tags_kept_and_malformed_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
