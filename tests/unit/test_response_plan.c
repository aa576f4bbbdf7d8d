/*
 * test_response_plan.c - response plans and exports from crafted offenses: only attributed
 * values become steps (the user's own low-severity key stays active), temporary keys are not
 * "deactivated", linked instances count only when launched with the attacker's key after the
 * attacker first used it, a root or role offense gets no IAM user steps, and values shaped to
 * escape a command line, a Suricata rule or a zone file are left out and counted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "offense/observables.h"
#include "offense/offense_int.h"
#include "response/export.h"
#include "response/plan.h"

#define T0 1717462800000LL

static ch_offense *make(ch_offenses *m, const char *user)
{
    ch_offense *o = NULL;
    assert_int_equal(
        ch__offenses_create(m, 7, "user.name", user, strlen(user), CH_OFFENSE_OPEN, &o), 0);
    ch_offense_obs *x = ch__offense_obs(o);
    assert_non_null(x);
#define PUT(k, v, acct, reg, ts, sev)                                                              \
    assert_true(ch_obs_put(x, k, v, strlen(v), acct, reg, 1, ts, ts, sev) >= 0)
    PUT(CH_OBS_ACCESS_KEY, "AKIAATTACK", "111122223333", "us-east-1", T0 + 1000, 8);
    PUT(CH_OBS_ACCESS_KEY, "AKIAHOMEKEY", "111122223333", "us-east-1", T0, 4);
    PUT(CH_OBS_ACCESS_KEY, "ASIATEMPORARY", "111122223333", "us-east-1", T0, 8);
    PUT(CH_OBS_SOURCE_IP, "77.88.8.8", "111122223333", "us-east-1", T0, 8);
    PUT(CH_OBS_INSTANCE, "i-0aaa", "111122223333", "ap-south-1", T0 + 2000, 7);
    PUT(CH_OBS_INSTANCE, "i-0evil", "111122223333", "x'; rm -rf /; '", T0 + 2000, 7);
    PUT(CH_OBS_POOL_DOMAIN, "pool.supportxmr.com", "111122223333", "ap-south-1", T0, 8);
    PUT(CH_OBS_POOL_DOMAIN, "evil.com\"; sid:1; x", "111122223333", "ap-south-1", T0, 8);
    PUT(CH_OBS_POOL_IP, "70.129.224.53", "111122223333", "ap-south-1", T0, 8);
    PUT(CH_OBS_POOL_IP, "2a01:4f8::5", "111122223333", "ap-south-1", T0, 8);
#undef PUT
    return o;
}

static ch_buf render(const ch_resp_plan *p)
{
    ch_buf b;
    ch_buf_init(&b, 1 << 22);
    assert_int_equal(ch_resp_plan_json(&b, p), 0);
    ch_buf_addc(&b, '\0');
    return b;
}

static void test_plan_takes_only_attributed_well_shaped_values(void **state)
{
    (void)state;
    ch_offenses *m = ch_offenses_new();
    ch_offense *o = make(m, "walter");
    ch_resp_linked linked[] = {
        {"i-0before", "111122223333", "ap-south-1", "AKIAATTACK", T0}, /* before first use */
        {"i-0after", "111122223333", "eu-north-1", "AKIAATTACK", T0 + 5000},
        {"i-0home", "111122223333", "eu-north-1", "AKIAHOMEKEY", T0 + 5000}, /* user's key */
    };
    ch_resp_opts opt = {false, NULL, T0 + 10000, linked, 3};
    ch_resp_plan *p = NULL;
    ch_error err = {0};
    assert_int_equal(ch_resp_plan_build(o, &opt, &p, &err), 0);
    ch_buf b = render(p);
    const char *j = b.data;
    assert_non_null(strstr(j, "\"AccessKeyId\":\"AKIAATTACK\",\"Status\":\"Inactive\""));
    assert_null(strstr(j, "AKIAHOMEKEY"));
    assert_null(strstr(j, "\"AccessKeyId\":\"ASIATEMPORARY\""));
    assert_non_null(strstr(j, "\"action\":\"DeleteLoginProfile\""));
    assert_non_null(strstr(j, "aws:TokenIssueTime"));
    assert_non_null(strstr(j, "\"InstanceIds\":[\"i-0aaa\"]"));
    assert_non_null(strstr(j, "\"InstanceIds\":[\"i-0after\"]"));
    assert_null(strstr(j, "i-0before"));
    assert_null(strstr(j, "i-0home"));
    assert_null(strstr(j, "i-0evil"));
    assert_null(strstr(j, "rm -rf"));
    assert_non_null(strstr(j, "\"Domains\":[\"pool.supportxmr.com\"]"));
    assert_null(strstr(j, "evil.com"));
    assert_non_null(strstr(j, "\"CidrBlock\":\"70.129.224.53/32\""));
    assert_non_null(strstr(j, "\"Ipv6CidrBlock\":\"2a01:4f8::5/128\""));
    /* Stopping is undone by starting the same instances. */
    assert_non_null(strstr(j, "\"rollback\":{\"action\":\"StartInstances\",\"parameters\":"
                              "{\"InstanceIds\":[\"i-0aaa\"]}"));
    ch_buf_free(&b);
    ch_resp_plan_free(p);

    /* --terminate: irreversible, no rollback. */
    opt.terminate = true;
    assert_int_equal(ch_resp_plan_build(o, &opt, &p, &err), 0);
    b = render(p);
    assert_non_null(strstr(b.data, "\"action\":\"TerminateInstances\",\"region\":\"ap-south-1\""));
    assert_null(strstr(b.data, "StartInstances"));
    ch_buf_free(&b);
    ch_resp_plan_free(p);
    ch_offenses_free(m);
}

static void test_root_offense_gets_no_user_steps(void **state)
{
    (void)state;
    ch_offenses *m = ch_offenses_new();
    ch_offense *o = make(m, "root");
    ch_resp_opts opt = {false, NULL, T0, NULL, 0};
    ch_resp_plan *p = NULL;
    ch_error err = {0};
    assert_int_equal(ch_resp_plan_build(o, &opt, &p, &err), 0);
    ch_buf b = render(p);
    assert_null(strstr(b.data, "\"service\":\"iam\""));
    assert_non_null(strstr(b.data, "StopInstances"));
    ch_buf_free(&b);
    ch_resp_plan_free(p);
    ch_offenses_free(m);
}

static void test_user_name_is_one_shell_word(void **state)
{
    (void)state;
    ch_buf b;
    ch_buf_init(&b, 256);
    assert_int_equal(ch_resp_shell_word(&b, "a'b; rm"), 0);
    ch_buf_addc(&b, '\0');
    assert_string_equal(b.data, "'a'\\''b; rm'");
    ch_buf_free(&b);
}

static void test_exports_leave_out_and_count_bad_values(void **state)
{
    (void)state;
    ch_offenses *m = ch_offenses_new();
    ch_offense *o = make(m, "walter");
    ch_error err = {0};
    ch_buf b;
    ch_buf_init(&b, 1 << 20);
    assert_int_equal(ch_resp_export(&b, "suricata", o, T0, &err), 0);
    ch_buf_addc(&b, '\0');
    if (strstr(b.data, "# 1 value(s) left out") == NULL)
        fail_msg("%s", b.data);
    assert_null(strstr(b.data, "evil.com"));
    assert_non_null(strstr(b.data, "content:\".pool.supportxmr.com\""));
    assert_non_null(strstr(b.data, "-> [70.129.224.53,2a01:4f8::5] any"));
    ch_buf_clear(&b);
    assert_int_equal(ch_resp_export(&b, "rpz", o, T0, &err), 0);
    ch_buf_addc(&b, '\0');
    assert_non_null(strstr(b.data, "128.5.0.0.0.0.0.4f8.2a01.rpz-ip\tCNAME\t."));
    assert_non_null(strstr(b.data, "32.53.224.129.70.rpz-ip\tCNAME\t."));
    ch_buf_clear(&b);
    assert_int_equal(ch_resp_export(&b, "nft", o, T0, &err), 0);
    ch_buf_addc(&b, '\0');
    assert_non_null(strstr(b.data, "type ipv6_addr\n\t\telements = { 2a01:4f8::5 }"));
    ch_buf_clear(&b);
    assert_int_equal(ch_resp_export(&b, "pf", o, T0, &err), CH_EUSAGE);
    ch_buf_free(&b);
    ch_offenses_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_takes_only_attributed_well_shaped_values),
        cmocka_unit_test(test_root_offense_gets_no_user_steps),
        cmocka_unit_test(test_user_name_is_one_shell_word),
        cmocka_unit_test(test_exports_leave_out_and_count_bad_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
