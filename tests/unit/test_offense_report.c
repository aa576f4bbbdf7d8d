/*
 * test_offense_report.c - the hit sink that feeds offenses and user risk, and the report
 * sections `analyze --format json` prints: "offenses" then "users", with the contract's keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/buf.h"
#include "offense/report.h"

#define T0 1722588804000LL

static const ch_rule_info R_CHAIN = {"CJ-CHAIN-01", "Kill chain", "cj", 10, 9, 10, 100};
static const ch_rule_info R_MFA = {"CJ-AUTH-05", "Login without MFA", "cj", 4, 6, 5, 10};

static void feed(ch_hit_fn fn, void *ud, const ch_rule_info *r, const char *index, const char *user,
                 int64_t ts)
{
    ch_sv ids[1] = {CH_SV("ev")};
    ch_rule_hit h = {.rule = r,
                     .ts_ms = ts,
                     .index_field = "user.name",
                     .index_value = {index, index ? (uint32_t)strlen(index) : 0},
                     .user = {user, (uint32_t)strlen(user)},
                     .event_ids = ids,
                     .nevent_ids = 1,
                     .event_count = 1};
    fn(&h, ud);
}

static void test_sink_feeds_offenses_and_risk_and_report_has_both_sections(void **state)
{
    (void)state;
    ch_offense_sink sink = {.offenses = ch_offenses_new(), .risk = ch_risk_new(0)};
    feed(ch_offense_sink_hit, &sink, &R_MFA, "bob", "bob", T0);
    feed(ch_offense_sink_hit, &sink, &R_CHAIN, "mallory", "mallory", T0 + 1);
    feed(ch_offense_sink_hit, &sink, &R_MFA, NULL, "carol", T0 + 2); /* no index: risk only */
    assert_int_equal(sink.errors, 0);
    assert_int_equal(ch_offenses_count(sink.offenses), 2);
    assert_int_equal(ch_risk_count(sink.risk), 3);
    ch_buf b;
    ch_buf_init(&b, 0);
    assert_int_equal(ch_offense_report_json(&b, sink.offenses, sink.risk, 0), 0);
    assert_true(strncmp(b.data, "\"offenses\":[{\"id\":2,", 20) == 0);
    const char *users =
        strstr(b.data, "],\"users\":[{\"name\":\"mallory\",\"risk\":63.2,\"risk_raw\":100.0,");
    assert_non_null(users);
    assert_non_null(strstr(users, "{\"name\":\"carol\",\"risk\":9.5,\"risk_raw\":10.0,"));
    ch_buf_clear(&b);
    assert_int_equal(ch_offense_report_json(&b, NULL, NULL, 0), 0);
    assert_string_equal(b.data, "\"offenses\":[],\"users\":[]");
    ch_buf_clear(&b);
    assert_int_equal(ch_offense_report_table(&b, sink.offenses, sink.risk, 10), 0);
    assert_non_null(strstr(b.data, "Offenses\n"));
    assert_non_null(strstr(b.data, "Users by risk\n"));
    assert_non_null(strstr(b.data, "mallory"));
    ch_buf_free(&b);
    ch_offenses_free(sink.offenses);
    ch_risk_free(sink.risk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sink_feeds_offenses_and_risk_and_report_has_both_sections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
