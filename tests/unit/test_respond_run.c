/*
 * test_respond_run.c - the runner's state and readers (response/run.h, response/resp_store.h):
 * a step's state counts the attempts that may have reached AWS and survives reopening the file;
 * the first value learnt for a name stays (a rerun after the instances moved keeps the groups
 * they had); automatic responses are one per (offense, rule) and counted for the rate limit; a
 * run without respond.execute or without approval is refused and audited, and touches no step;
 * the DescribeInstances and JSON readers take what real answers hold and refuse what is not an
 * id. The end-to-end runs against a recording AWS stand-in are tests/integration/
 * test_respond_run.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/mem.h"
#include "response/plan.h"
#include "response/resp_store.h"
#include "response/run.h"
#include "server/audit.h"

static char dir[64], db[128];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/ch_respond_run_XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(db, sizeof db, "%s/t.db", dir);
    ch_audit *a = NULL;
    ch_error err = {0};
    if (ch_audit_open(db, true, &a, &err) < 0)
        return -1;
    ch_audit_close(a);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int64_t store_plan(void)
{
    ch_resp_store *s = NULL;
    ch_error err = {0};
    assert_int_equal(ch_resp_store_open(db, &s, &err), 0);
    ch_resp_step st = {.id = "1",
                       .kind = "principal",
                       .service = "iam",
                       .action = "UpdateAccessKey",
                       .region = "us-east-1",
                       .account = "111122223333",
                       .parameters = "{\"UserName\":\"u\",\"AccessKeyId\":\"AKIAEXAMPLE\","
                                     "\"Status\":\"Inactive\"}",
                       .cli = "aws iam update-access-key",
                       .reversible = false,
                       .why = "test"};
    ch_resp_plan p = {.offense_id = 7, .steps = &st, .nsteps = 1, .cap = 1};
    assert_int_equal(ch_resp_store_put(s, &p, "tester", 1000, &err), 0);
    ch_resp_store_close(s);
    return p.id;
}

static void test_step_state_counts_attempts_and_survives_reopening(void **state)
{
    (void)state;
    int64_t plan = store_plan();
    ch_resp_store *s = NULL;
    ch_error err = {0};
    char st[16];
    int attempts;
    assert_int_equal(ch_resp_store_open(db, &s, &err), 0);
    assert_int_equal(ch_resp_step_get(s, plan, "1", "run", st, &attempts, &err), 0);
    assert_int_equal(ch_resp_step_set(s, plan, "1", "run", "running", "a", 1, NULL, &err), 0);
    assert_int_equal(ch_resp_step_set(s, plan, "1", "run", "failed", "a", 2, "boom", &err), 0);
    assert_int_equal(ch_resp_step_set(s, plan, "1", "run", "running", "b", 3, NULL, &err), 0);
    ch_resp_store_close(s);
    /* What a kill -9 leaves: the second attempt in flight. */
    assert_int_equal(ch_resp_store_open(db, &s, &err), 0);
    assert_int_equal(ch_resp_step_get(s, plan, "1", "run", st, &attempts, &err), 1);
    assert_string_equal(st, "running");
    assert_int_equal(attempts, 2);
    assert_int_equal(ch_resp_step_set(s, plan, "1", "run", "done", "b", 4, NULL, &err), 0);
    assert_int_equal(ch_resp_step_get(s, plan, "1", "run", st, &attempts, &err), 1);
    assert_string_equal(st, "done");
    assert_int_equal(attempts, 2);
    /* The rollback phase is its own state. */
    assert_int_equal(ch_resp_step_get(s, plan, "1", "rollback", st, &attempts, &err), 0);
    ch_buf b;
    ch_buf_init(&b, 1 << 20);
    assert_int_equal(ch_resp_steps_json(s, plan, &b, &err), 0);
    assert_non_null(strstr(b.data, "\"state\":\"done\",\"attempts\":2"));
    ch_buf_free(&b);
    ch_resp_store_close(s);
}

static void test_first_value_learnt_stays(void **state)
{
    (void)state;
    int64_t plan = store_plan();
    ch_resp_store *s = NULL;
    ch_error err = {0};
    char v[64];
    assert_int_equal(ch_resp_store_open(db, &s, &err), 0);
    assert_int_equal(ch_resp_value_get(s, plan, "1", "r", "groups-before:i-1", v, sizeof v, &err),
                     0);
    assert_int_equal(ch_resp_value_put(s, plan, "1", "r", "groups-before:i-1", "sg-a,sg-b", &err),
                     0);
    /* A rerun describes the instance again, now in quarantine: the original stays. */
    assert_int_equal(ch_resp_value_put(s, plan, "1", "r", "groups-before:i-1", "sg-q", &err), 0);
    assert_int_equal(ch_resp_value_get(s, plan, "1", "r", "groups-before:i-1", v, sizeof v, &err),
                     1);
    assert_string_equal(v, "sg-a,sg-b");
    /* Scoped by account and region. */
    assert_int_equal(ch_resp_value_get(s, plan, "1", "r2", "groups-before:i-1", v, sizeof v, &err),
                     0);
    ch_resp_store_close(s);
}

static void test_automatic_response_once_per_offense_and_rule(void **state)
{
    (void)state;
    ch_resp_store *s = NULL;
    ch_error err = {0};
    assert_int_equal(ch_resp_store_open(db, &s, &err), 0);
    assert_int_equal(ch_resp_auto_seen(s, 5, "CJ-CHAIN-01", &err), 0);
    assert_int_equal(ch_resp_auto_put(s, 5, "CJ-CHAIN-01", 1, 10000, true, "running", &err), 0);
    assert_int_equal(ch_resp_auto_seen(s, 5, "CJ-CHAIN-01", &err), 1);
    assert_int_equal(ch_resp_auto_seen(s, 5, "CJ-MINE-01", &err), 0);
    assert_int_equal(ch_resp_auto_put(s, 6, "CJ-CHAIN-01", 2, 20000, false, "held", &err), 0);
    assert_int_equal(ch_resp_auto_runs_since(s, 0, &err), 1);     /* only runs count */
    assert_int_equal(ch_resp_auto_runs_since(s, 10001, &err), 0); /* outside the period */
    ch_resp_store_close(s);
}

static int count_action(void *ud, const ch_audit_entry *e)
{
    if (strcmp(e->action, "response.plan.refused") == 0)
        ++*(int *)ud;
    return 0;
}

static void test_run_refused_without_execute_or_approval(void **state)
{
    (void)state;
    int64_t plan = store_plan();
    ch_resp_config off = {0}, on = {.execute = true, .endpoint = "http://127.0.0.1:1"};
    ch_resp_run_opts o = {.db = db,
                          .plan_id = plan,
                          .cfg = &off,
                          .actor = "alice",
                          .source = "test",
                          .approved = true};
    ch_resp_run_result res;
    ch_error err = {0};
    assert_int_equal(ch_resp_run(&o, &res, &err), CH_RESP_REFUSED);
    assert_non_null(strstr(err.msg, "respond.execute"));
    o.cfg = &on;
    o.approved = false;
    assert_int_equal(ch_resp_run(&o, &res, &err), CH_RESP_REFUSED);
    assert_non_null(strstr(err.msg, "approve"));
    o.cfg = NULL;
    assert_int_equal(ch_resp_run(&o, &res, &err), CH_RESP_REFUSED);
    ch_audit *a = NULL;
    int n = 0;
    assert_int_equal(ch_audit_open(db, false, &a, &err), 0);
    assert_true(ch_audit_list(a, 0, 0, count_action, &n, &err) >= 0);
    ch_audit_close(a);
    assert_int_equal(n, 3);
    /* Nothing was recorded for the step: it never started. */
    ch_resp_store *s = NULL;
    char st[16];
    int attempts;
    assert_int_equal(ch_resp_store_open(db, &s, &err), 0);
    assert_int_equal(ch_resp_step_get(s, plan, "1", "run", st, &attempts, &err), 0);
    ch_resp_store_close(s);
    /* An unknown plan is not found, before anything else. */
    o.plan_id = 999;
    o.cfg = &on;
    o.approved = true;
    assert_int_equal(ch_resp_run(&o, &res, &err), CH_ENOTFOUND);
}

static bool dead(const char *holder) { return strncmp(holder, "dead", 4) != 0; }

static void test_one_run_of_a_plan_at_a_time(void **state)
{
    (void)state;
    int64_t plan = store_plan();
    ch_resp_store *s = NULL;
    ch_error err = {0};
    char other[64];
    assert_int_equal(ch_resp_store_open(db, &s, &err), 0);
    assert_int_equal(ch_resp_lock(s, plan, "1.1@h", 1000, 600000, dead, other, sizeof other, &err),
                     1);
    /* Another run (another thread too) waits while the first holds it... */
    assert_int_equal(ch_resp_lock(s, plan, "1.2@h", 2000, 600000, dead, other, sizeof other, &err),
                     0);
    assert_string_equal(other, "1.1@h");
    /* ... the holder renews it ... */
    assert_int_equal(ch_resp_lock(s, plan, "1.1@h", 3000, 600000, dead, other, sizeof other, &err),
                     1);
    /* ... and releases it (lease 0). */
    assert_int_equal(ch_resp_lock(s, plan, "1.1@h", 4000, 0, dead, other, sizeof other, &err), 1);
    assert_int_equal(
        ch_resp_lock(s, plan, "dead.7@h", 5000, 600000, dead, other, sizeof other, &err), 1);
    /* A holder whose process is gone (kill -9) holds nothing; a lease that ran out neither. */
    assert_int_equal(ch_resp_lock(s, plan, "1.3@h", 6000, 600000, dead, other, sizeof other, &err),
                     1);
    assert_int_equal(
        ch_resp_lock(s, plan, "1.4@h", 700000, 600000, NULL, other, sizeof other, &err), 1);
    ch_resp_store_close(s);
}

typedef struct seen {
    char ids[4][32], vpcs[4][32], subnets[4][32], groups[4][64];
    int n;
} seen;

static int on_instance(void *ud, const char *id, const char *vpc, const char *subnet,
                       const char *groups)
{
    seen *s = ud;
    if (s->n < 4) {
        snprintf(s->ids[s->n], 32, "%s", id);
        snprintf(s->vpcs[s->n], 32, "%s", vpc);
        snprintf(s->subnets[s->n], 32, "%s", subnet);
        snprintf(s->groups[s->n], 64, "%s", groups);
    }
    s->n++;
    return 0;
}

static void test_describe_instances_reader(void **state)
{
    (void)state;
    /* Two reservations, the first instance with two groups and an interface whose own groupSet
     * must not be mistaken for the instance's. */
    const char *xml =
        "<DescribeInstancesResponse><reservationSet><item><groupSet/><instancesSet><item>"
        "<instanceId>i-1</instanceId><subnetId>subnet-1</subnetId><vpcId>vpc-1</vpcId>"
        "<groupSet><item><groupId>sg-a</groupId></item><item><groupId>sg-b</groupId></item>"
        "</groupSet><networkInterfaceSet><item><groupSet><item><groupId>sg-z</groupId></item>"
        "</groupSet></item></networkInterfaceSet></item></instancesSet></item><item>"
        "<instancesSet><item><instanceId>i-2</instanceId><subnetId>subnet-2</subnetId>"
        "<vpcId>vpc-1</vpcId><groupSet><item><groupId>sg;rm</groupId></item></groupSet></item>"
        "</instancesSet></item></reservationSet></DescribeInstancesResponse>";
    seen s = {0};
    assert_int_equal(ch_resp_parse_instances(xml, strlen(xml), on_instance, &s), 2);
    assert_string_equal(s.ids[0], "i-1");
    assert_string_equal(s.vpcs[0], "vpc-1");
    assert_string_equal(s.subnets[0], "subnet-1");
    assert_string_equal(s.groups[0], "sg-a,sg-b");
    assert_string_equal(s.ids[1], "i-2");
    assert_string_equal(s.groups[1], ""); /* not an id: left out */
    assert_int_equal(ch_resp_parse_instances("<Response/>", 11, on_instance, &s), CH_EPARSE);
}

static void test_json_path_reader(void **state)
{
    (void)state;
    char out[64];
    const char *ok = "{\"FirewallRuleGroup\":{\"Id\":\"rslvr-frg-0123\",\"Name\":\"x\"}}";
    assert_int_equal(ch_resp_json_path(ok, strlen(ok), "FirewallRuleGroup", "Id", out, sizeof out),
                     1);
    assert_string_equal(out, "rslvr-frg-0123");
    const char *bad = "{\"FirewallRuleGroup\":{\"Id\":\"../x\"}}";
    assert_int_equal(
        ch_resp_json_path(bad, strlen(bad), "FirewallRuleGroup", "Id", out, sizeof out), 0);
    assert_true(ch_resp_json_path("{", 1, "a", "b", out, sizeof out) < 0);
    assert_true(ch_resp_step_kind_ok("stop_instances"));
    assert_false(ch_resp_step_kind_ok("reboot_everything"));
}

typedef struct acls_seen {
    char ids[4][32], vpcs[4][32], subnets[4][128];
    ch_resp_nacl_entry e[4][8];
    size_t ne[4];
    int n;
} acls_seen;

static int on_acl(void *ud, const char *acl, const char *vpc, const char *subnets,
                  const ch_resp_nacl_entry *e, size_t n)
{
    acls_seen *s = ud;
    if (s->n == 4 || n > 8)
        return -1;
    snprintf(s->ids[s->n], sizeof s->ids[0], "%s", acl);
    snprintf(s->vpcs[s->n], sizeof s->vpcs[0], "%s", vpc);
    snprintf(s->subnets[s->n], sizeof s->subnets[0], "%s", subnets);
    memcpy(s->e[s->n], e, n * sizeof *e);
    s->ne[s->n++] = n;
    return 0;
}

/* The shape AWS documents for DescribeNetworkAcls: two ACLs, the association items repeating
 * the ACL's id, entries of both directions and families. */
static void test_network_acl_reader(void **state)
{
    (void)state;
    const char *xml =
        "<DescribeNetworkAclsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"
        "<requestId>59dbff89</requestId><networkAclSet><item><networkAclId>acl-1</networkAclId>"
        "<vpcId>vpc-1</vpcId><default>true</default><entrySet>"
        "<item><ruleNumber>100</ruleNumber><protocol>-1</protocol><ruleAction>allow</ruleAction>"
        "<egress>true</egress><cidrBlock>0.0.0.0/0</cidrBlock></item>"
        "<item><ruleNumber>50</ruleNumber><protocol>6</protocol><ruleAction>deny</ruleAction>"
        "<egress>false</egress><ipv6CidrBlock>2001:db8::/32</ipv6CidrBlock>"
        "<portRange><from>22</from><to>22</to></portRange></item>"
        "</entrySet><associationSet><item><networkAclAssociationId>aclassoc-1"
        "</networkAclAssociationId><networkAclId>acl-1</networkAclId><subnetId>subnet-1"
        "</subnetId></item><item><networkAclAssociationId>aclassoc-2</networkAclAssociationId>"
        "<networkAclId>acl-1</networkAclId><subnetId>subnet-2</subnetId></item>"
        "</associationSet><tagSet/><ownerId>111122223333</ownerId></item>"
        "<item><networkAclId>acl-2</networkAclId><vpcId>vpc-2</vpcId><entrySet/>"
        "<associationSet/></item></networkAclSet></DescribeNetworkAclsResponse>";
    acls_seen s;
    memset(&s, 0, sizeof s);
    assert_int_equal(ch_resp_parse_nacls(xml, strlen(xml), on_acl, &s), 2);
    assert_string_equal(s.ids[0], "acl-1");
    assert_string_equal(s.vpcs[0], "vpc-1");
    assert_string_equal(s.subnets[0], "subnet-1,subnet-2");
    assert_int_equal(s.ne[0], 2);
    assert_int_equal(s.e[0][0].number, 100);
    assert_true(s.e[0][0].egress && !s.e[0][0].deny);
    assert_string_equal(s.e[0][0].cidr, "0.0.0.0/0");
    assert_true(!s.e[0][1].egress && s.e[0][1].deny);
    assert_string_equal(s.e[0][1].cidr, "2001:db8::/32");
    assert_string_equal(s.ids[1], "acl-2");
    assert_int_equal(s.ne[1], 0);
    /* A value of the wrong shape refuses the answer: it would go into later requests. */
    const char *bad = "<networkAclSet><item><networkAclId>acl-1;rm</networkAclId></item>"
                      "</networkAclSet>";
    memset(&s, 0, sizeof s);
    assert_int_equal(ch_resp_parse_nacls(bad, strlen(bad), on_acl, &s), CH_EPARSE);
    const char *num = "<networkAclSet><item><networkAclId>acl-1</networkAclId><entrySet><item>"
                      "<ruleNumber>99999</ruleNumber><egress>true</egress><ruleAction>allow"
                      "</ruleAction></item></entrySet></item></networkAclSet>";
    assert_int_equal(ch_resp_parse_nacls(num, strlen(num), on_acl, &s), CH_EPARSE);
    assert_int_equal(ch_resp_parse_nacls("<Response/>", 11, on_acl, &s), CH_EPARSE);
    assert_int_equal(ch_resp_parse_nacls("<networkAclSet/>", 16, on_acl, &s), 0);
}

/* Deny entries take free egress numbers before the first egress allow that matches the address
 * (an allow of another network does not matter); ingress numbers are another space; numbers
 * chosen already are avoided; no number before the allow is an error. */
static void test_network_acl_rule_numbers(void **state)
{
    (void)state;
    ch_resp_nacl_entry e[] = {{.number = 50, .egress = true, .deny = true, .cidr = "0.0.0.0/0"},
                              {.number = 51, .egress = true, .cidr = "10.0.0.0/8"},
                              {.number = 52, .egress = false, .cidr = "0.0.0.0/0"},
                              {.number = 100, .egress = true, .cidr = "0.0.0.0/0"},
                              {.number = 32767, .egress = true, .deny = true, .cidr = "0.0.0.0/0"}};
    const char *pool = "198.51.100.7/32";
    assert_int_equal(ch_resp_nacl_pick(e, 5, pool, NULL, 0), 52);
    int taken[] = {52, 53};
    assert_int_equal(ch_resp_nacl_pick(e, 5, pool, taken, 2), 54);
    /* 10.1.2.3 is allowed at 51: its deny must come before, downwards from 49. */
    assert_int_equal(ch_resp_nacl_pick(e, 5, "10.1.2.3/32", NULL, 0), 49);
    ch_resp_nacl_entry v6[] = {{.number = 40, .egress = true, .cidr = "2001:db8::/32"}};
    assert_int_equal(ch_resp_nacl_pick(v6, 1, "2001:db8::1/128", NULL, 0), 39);
    assert_int_equal(ch_resp_nacl_pick(v6, 1, "2001:db9::1/128", NULL, 0), 50);
    assert_int_equal(ch_resp_nacl_pick(v6, 1, pool, NULL, 0), 50);
    ch_resp_nacl_entry first[] = {{.number = 1, .egress = true, .cidr = "0.0.0.0/0"}};
    assert_int_equal(ch_resp_nacl_pick(first, 1, pool, NULL, 0), CH_ELIMIT);
    assert_int_equal(ch_resp_nacl_pick(NULL, 0, pool, NULL, 0), 50);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_step_state_counts_attempts_and_survives_reopening),
        cmocka_unit_test(test_first_value_learnt_stays),
        cmocka_unit_test(test_automatic_response_once_per_offense_and_rule),
        cmocka_unit_test(test_run_refused_without_execute_or_approval),
        cmocka_unit_test(test_one_run_of_a_plan_at_a_time),
        cmocka_unit_test(test_describe_instances_reader),
        cmocka_unit_test(test_json_path_reader),
        cmocka_unit_test(test_network_acl_reader),
        cmocka_unit_test(test_network_acl_rule_numbers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
