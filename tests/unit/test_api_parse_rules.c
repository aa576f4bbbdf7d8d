/*
 * test_api_parse_rules.c - the request bodies of the rules and intel routes
 * (server/api_parse_rules.c): what a client may send and what it is told when the body is wrong.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "server/api_parse.h"

#define P(s) (s), strlen(s)

static void test_rule_toggle_takes_enabled_only(void **state)
{
    (void)state;
    ch_error err = {0};
    bool on = true;
    assert_int_equal(ch_api_parse_rule_toggle(P("{\"enabled\":false}"), &on, &err), 0);
    assert_false(on);
    assert_int_equal(ch_api_parse_rule_toggle(P("{\"enabled\":true}"), &on, &err), 0);
    assert_true(on);
    assert_int_equal(ch_api_parse_rule_toggle(P("{\"enabled\":1}"), &on, &err), CH_EPARSE);
    assert_non_null(strstr(err.msg, "enabled"));
    assert_int_equal(ch_api_parse_rule_toggle(P("{}"), &on, &err), CH_EPARSE);
    assert_int_equal(ch_api_parse_rule_toggle(P("{\"enabled\":true,\"x\":1}"), &on, &err),
                     CH_EPARSE);
    assert_non_null(strstr(err.msg, "unknown member \"x\""));
    assert_int_equal(ch_api_parse_rule_toggle(P("[true]"), &on, &err), CH_EPARSE);
}

static void test_rule_test_copies_records_as_json_lines(void **state)
{
    (void)state;
    ch_error err = {0};
    ch_api_rule_test t;
    assert_int_equal(
        ch_api_parse_rule_test(P("{\"rule\":\"id: X\\nwhere: a == 1\\n\",\"events\":[{\"a\":1},"
                                 " {\"b\": {\"c\": [1, 2]}}]}"),
                               &t, &err),
        0);
    assert_string_equal(t.rule, "id: X\nwhere: a == 1\n");
    assert_string_equal(t.id, "");
    assert_int_equal(t.nrecords, 2);
    assert_string_equal(t.records, "{\"a\":1}\n{\"b\":{\"c\":[1,2]}}\n");
    assert_int_equal(t.records_len, strlen(t.records));
    ch_api_rule_test_free(&t);
    assert_int_equal(ch_api_parse_rule_test(P("{\"id\":\"CJ-AUTH-05\",\"events\":[{}]}"), &t, &err),
                     0);
    assert_null(t.rule);
    assert_string_equal(t.id, "CJ-AUTH-05");
    ch_api_rule_test_free(&t);
}

static void test_rule_test_refusals_say_why(void **state)
{
    (void)state;
    ch_error err = {0};
    ch_api_rule_test t;
    static const struct {
        const char *body, *why;
    } bad[] = {
        {"{\"events\":[{}]}", "rule (YAML text) or id is required"},
        {"{\"id\":\"a\",\"rule\":\"b\",\"events\":[{}]}", "either rule or id"},
        {"{\"id\":\"a\"}", "events is required"},
        {"{\"id\":\"a\",\"events\":[]}", "at least one record"},
        {"{\"id\":\"a\",\"events\":[{},3]}", "events[1] must be an object"},
        {"{\"id\":\"\",\"events\":[{}]}", "id must not be empty"},
        {"{\"id\":\"a\",\"events\":[{}],\"more\":1}", "unknown member \"more\""},
        {"{\"id\":\"a\",\"events\":[{}]", "not JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = ch_api_parse_rule_test(P(bad[i].body), &t, &err);
        assert_true(rc < 0);
        if (strstr(err.msg, bad[i].why) == NULL)
            fail_msg("%s: '%s' does not say '%s'", bad[i].body, err.msg, bad[i].why);
        assert_null(t.rule);
        assert_null(t.records);
    }
}

static void test_intel_pull_names_a_feed_by_index_or_url(void **state)
{
    (void)state;
    ch_error err = {0};
    long i = 7;
    char url[CH_API_FEED_URL_MAX + 1];
    assert_int_equal(ch_api_parse_intel_pull("", 0, &i, url, &err), 0);
    assert_int_equal(i, -1);
    assert_int_equal(ch_api_parse_intel_pull(P("{}"), &i, url, &err), 0);
    assert_int_equal(i, -1);
    assert_string_equal(url, "");
    assert_int_equal(ch_api_parse_intel_pull(P("{\"feed\":2}"), &i, url, &err), 0);
    assert_int_equal(i, 2);
    assert_int_equal(ch_api_parse_intel_pull(P("{\"feed\":\"https://x/taxii2/\"}"), &i, url, &err),
                     0);
    assert_int_equal(i, -1);
    assert_string_equal(url, "https://x/taxii2/");
    assert_int_equal(ch_api_parse_intel_pull(P("{\"feed\":-1}"), &i, url, &err), CH_EPARSE);
    assert_int_equal(ch_api_parse_intel_pull(P("{\"feed\":\"\"}"), &i, url, &err), CH_EPARSE);
    assert_int_equal(ch_api_parse_intel_pull(P("{\"url\":\"x\"}"), &i, url, &err), CH_EPARSE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rule_toggle_takes_enabled_only),
        cmocka_unit_test(test_rule_test_copies_records_as_json_lines),
        cmocka_unit_test(test_rule_test_refusals_say_why),
        cmocka_unit_test(test_intel_pull_names_a_feed_by_index_or_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
