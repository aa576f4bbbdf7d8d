/*
 * test_rule_state.c - turning a rule off: the rule_state table (rules/rule_state.h) and the
 * pipeline honouring it. A rule disabled in the database does not fire in a pipeline opened on
 * it; turning it on or off in a running pipeline applies from the next event; a reload reads the
 * table again; a rule without a row is enabled; the row remembers who changed it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/sqlite_util.h"
#include "pipeline/pipeline.h"
#include "rules/hit.h"
#include "rules/rule.h"
#include "rules/rule_state.h"
#include "tmpdir.h"

#define PACK CH_SOURCE_DIR "/content/cryptojacking-aws"
#define RULE "CJ-AUTH-05" /* a console login without MFA: fires on one event */

typedef struct fx {
    char dir[64], db[128];
    ch_diag diag;
    int hits; /* of RULE */
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_int_equal(ch_test_tmpdir(f->dir, sizeof f->dir, "rulestate"), 0);
    snprintf(f->db, sizeof f->db, "%s/store.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    assert_int_equal(ch_test_rmdir(f->dir), 0);
    free(f);
    return 0;
}

static void on_hit(const ch_rule_hit *h, void *ud)
{
    fx *f = ud;
    f->hits += strcmp(h->rule->id, RULE) == 0;
}

static ch_pipeline *open_p(fx *f)
{
    ch_diag_init(&f->diag, NULL);
    ch_pipeline_config c = {.db = f->db,
                            .pack = PACK,
                            .no_geoip = true,
                            .diag = &f->diag,
                            .on_hit = on_hit,
                            .hit_ud = f};
    ch_pipeline *p = NULL;
    ch_error err = {0};
    if (ch_pipeline_open(&c, &p, &err) != 0)
        fail_msg("open: %s", err.msg);
    return p;
}

/* A password-only console login by user at minute m; how many RULE hits it made. */
static int login(fx *f, ch_pipeline *p, const char *user, int m)
{
    char rec[1024];
    int n = snprintf(
        rec, sizeof rec,
        "{\"eventVersion\":\"1.09\",\"userIdentity\":{\"type\":\"IAMUser\","
        "\"accountId\":\"111122223333\",\"userName\":\"%s\"},"
        "\"eventTime\":\"2024-06-03T10:%02d:00Z\",\"eventSource\":\"signin.amazonaws.com\","
        "\"eventName\":\"ConsoleLogin\",\"awsRegion\":\"us-east-1\","
        "\"sourceIPAddress\":\"81.2.69.142\",\"responseElements\":{\"ConsoleLogin\":"
        "\"Success\"},\"eventID\":\"evt-%s-%d\",\"recipientAccountId\":\"111122223333\","
        "\"additionalEventData\":{\"MFAUsed\":\"No\"}}\n",
        user, m, user, m);
    int before = f->hits;
    ch_error err = {0};
    if (ch_pipeline_push_buffer(p, NULL, rec, (size_t)n, "test", &err) < 0)
        fail_msg("push: %s", err.msg);
    return f->hits - before;
}

static int rule_index(ch_pipeline *p)
{
    int i = ch_ruleset_find(ch_pipeline_rules(p), RULE);
    assert_true(i >= 0);
    return i;
}

static void set_db(fx *f, bool enabled, bool *was)
{
    ch_sql q;
    ch_error err = {0};
    assert_int_equal(ch_sql_connect(&q, f->db, true, NULL, &err), 0);
    assert_int_equal(ch_rule_state_schema(&q, &err), 0);
    assert_int_equal(ch_rule_state_set(&q, RULE, enabled, 1700000000000, "tester", was, &err), 0);
    ch_sql_close(&q);
}

static int row(void *ud, const char *id, bool enabled, int64_t when_ms, const char *who)
{
    char *out = ud;
    snprintf(out, 256, "%s %d %lld %s", id, enabled, (long long)when_ms, who);
    return 0;
}

static void test_rule_without_a_row_is_enabled_and_fires(void **state)
{
    fx *f = *state;
    ch_pipeline *p = open_p(f);
    assert_true(ch_pipeline_rule_enabled(p, (uint32_t)rule_index(p)));
    assert_int_equal(login(f, p, "alice", 1), 1);
    ch_pipeline_close(p);
}

static void test_rule_disabled_in_the_database_does_not_fire_in_a_new_pipeline(void **state)
{
    fx *f = *state;
    bool was = false;
    set_db(f, false, &was);
    assert_true(was);
    ch_pipeline *p = open_p(f);
    assert_false(ch_pipeline_rule_enabled(p, (uint32_t)rule_index(p)));
    assert_int_equal(login(f, p, "bob", 2), 0);
    ch_pipeline_close(p);
    /* The row says who and when; enabling again reports it was off. */
    ch_sql q;
    ch_error err = {0};
    char line[256] = "";
    assert_int_equal(ch_sql_connect(&q, f->db, false, NULL, &err), 0);
    assert_int_equal(ch_rule_state_each(&q, row, line, &err), 1);
    assert_string_equal(line, RULE " 0 1700000000000 tester");
    ch_sql_close(&q);
    set_db(f, true, &was);
    assert_false(was);
}

static void test_toggle_in_a_running_pipeline_applies_to_the_next_event(void **state)
{
    fx *f = *state;
    ch_pipeline *p = open_p(f);
    ch_error err = {0};
    assert_int_equal(ch_pipeline_set_rule_enabled(p, RULE, false, &err), 0);
    assert_int_equal(login(f, p, "carol", 3), 0);
    assert_int_equal(ch_pipeline_set_rule_enabled(p, RULE, true, &err), 0);
    assert_int_equal(login(f, p, "dave", 4), 1);
    assert_int_equal(ch_pipeline_set_rule_enabled(p, "CJ-NOPE-1", false, &err), CH_ENOTFOUND);
    ch_pipeline_close(p);
}

static void test_reload_reads_the_table_again(void **state)
{
    fx *f = *state;
    ch_pipeline *p = open_p(f);
    ch_error err = {0};
    assert_int_equal(login(f, p, "erin", 5), 1);
    set_db(f, false, NULL); /* as `coinhound rules disable` does beside a running server */
    assert_int_equal(login(f, p, "frank", 6), 1); /* not before the reload */
    assert_int_equal(ch_pipeline_reload(p, &err), 0);
    assert_int_equal(login(f, p, "gina", 7), 0);
    set_db(f, true, NULL);
    assert_int_equal(ch_pipeline_reload(p, &err), 0);
    assert_int_equal(login(f, p, "hank", 8), 1);
    ch_pipeline_close(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rule_without_a_row_is_enabled_and_fires, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_rule_disabled_in_the_database_does_not_fire_in_a_new_pipeline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_toggle_in_a_running_pipeline_applies_to_the_next_event,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_reads_the_table_again, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
