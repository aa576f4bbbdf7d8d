/*
 * test_engine.c - the correlation engine: each correlation type fires and its near miss stays
 * silent, windows slide (not fixed buckets), out-of-order events within the lateness, one hit
 * per episode, dispatch by event.action, state caps, expiry, save/restore, responses.
 *
 * Events are real CloudTrail records run through the CloudTrail parser from memory; a tiny
 * "GeoIP" hook maps the first octet of the source address to a country (1 = GB, 2 = RU,
 * 3 = FR) so that country rules can be tested without a database.
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
#include "core/diag.h"
#include "core/mem.h"
#include "core/timeparse.h"
#include "enrich/refset.h"
#include "ingest/input.h"
#include "parse/source.h"
#include "rules/engine.h"
#include "rules/rule.h"

extern const ch_source_type ch_source_cloudtrail;

#define T0 1722588000000LL /* 2024-08-02T08:40:00Z */
#define MIN 60000LL
#define HOUR 3600000LL

/* ---- hits ---------------------------------------------------------------------------------- */

#define MAX_HITS 64
typedef struct hitlog {
    int n;
    char rule[MAX_HITS][32];
    int64_t ts[MAX_HITS], first[MAX_HITS];
    uint64_t count[MAX_HITS];
    uint32_t nids[MAX_HITS];
    char evidence[MAX_HITS][256];
    char index[MAX_HITS][64];
} hitlog;

static void on_hit(const ch_rule_hit *h, void *ud)
{
    hitlog *l = ud;
    if (l->n >= MAX_HITS)
        return;
    int i = l->n++;
    snprintf(l->rule[i], sizeof l->rule[i], "%s", h->rule->id);
    l->ts[i] = h->ts_ms;
    l->first[i] = h->first_ms;
    l->count[i] = h->event_count;
    l->nids[i] = h->nevent_ids;
    snprintf(l->evidence[i], sizeof l->evidence[i], "%s", h->evidence);
    if (h->index_value.p)
        snprintf(l->index[i], sizeof l->index[i], "%.*s", (int)h->index_value.n, h->index_value.p);
}

static int count_rule(const hitlog *l, const char *id)
{
    int n = 0;
    for (int i = 0; i < l->n; i++)
        n += strcmp(l->rule[i], id) == 0;
    return n;
}

/* ---- rules --------------------------------------------------------------------------------- */

typedef struct fixture {
    ch_refsets *sets;
    ch_ruleset *rs;
    ch_engine *eng;
    hitlog hits;
    ch_buf log; /* JSON Lines being built */
    int seq;
} fixture;

static void load(fixture *f, const char *const *yaml, size_t n, const ch_engine_opts *o)
{
    memset(f, 0, sizeof *f);
    assert_int_equal(ch_refsets_new(&f->sets), 0);
    ch_expr_env env;
    ch_rule_env_init(&env, f->sets);
    ch_rule **rules = calloc(n, sizeof *rules);
    assert_non_null(rules);
    for (size_t i = 0; i < n; i++) {
        ch_error err = {0};
        int rc =
            ch_rule_load_mem("test.yml", yaml[i], strlen(yaml[i]), &env, f->sets, &rules[i], &err);
        if (rc != 0)
            fail_msg("rule %zu: %s", i, err.msg);
    }
    /* ch_ruleset_from_rules takes the array (allocated with ch_malloc family expected). */
    ch_rule **own = ch_calloc(n, sizeof *own);
    memcpy(own, rules, n * sizeof *own);
    free(rules);
    ch_error err = {0};
    if (ch_ruleset_from_rules(own, (uint32_t)n, "test", f->sets, &f->rs, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(ch_engine_new(f->rs, o, on_hit, &f->hits, &f->eng, &err), 0);
    ch_buf_init(&f->log, 64u << 20);
}

static void unload(fixture *f)
{
    ch_engine_free(f->eng);
    ch_ruleset_free(f->rs);
    ch_refsets_free(f->sets);
    ch_buf_free(&f->log);
}

/* ---- events -------------------------------------------------------------------------------- */

/* One CloudTrail record appended to f->log. extra: more JSON members (with a leading comma). */
static void rec(fixture *f, int64_t ts, const char *name, const char *user, const char *ip,
                const char *extra)
{
    char t[40];
    ch_time_format(ts, t);
    ch_buf_printf(&f->log,
                  "{\"eventVersion\":\"1.08\",\"eventTime\":\"%s\",\"awsRegion\":\"us-east-1\","
                  "\"eventID\":\"ev-%04d\",\"eventName\":\"%s\",\"eventSource\":\"%s\","
                  "\"eventType\":\"AwsApiCall\",\"recipientAccountId\":\"111122223333\","
                  "\"userIdentity\":{\"type\":\"IAMUser\",\"principalId\":\"AIDA%s\","
                  "\"arn\":\"arn:aws:iam::111122223333:user/%s\",\"accountId\":\"111122223333\","
                  "\"userName\":\"%s\"},\"sourceIPAddress\":\"%s\",\"userAgent\":\"ua\"%s}\n",
                  t, ++f->seq, name,
                  strcmp(name, "ConsoleLogin") == 0 ? "signin.amazonaws.com" : "ec2.amazonaws.com",
                  user, user, user, ip, extra ? extra : "");
}

static void login(fixture *f, int64_t ts, const char *user, const char *ip, bool ok)
{
    rec(f, ts, "ConsoleLogin", user, ip,
        ok ? ",\"responseElements\":{\"ConsoleLogin\":\"Success\"}"
           : ",\"errorMessage\":\"Failed authentication\","
             "\"responseElements\":{\"ConsoleLogin\":\"Failure\"}");
}

static void fake_geo(ch_event *ev)
{
    if (ev->src_ip.b[12] == 1)
        memcpy(ev->src_geo.country, "GB", 3);
    else if (ev->src_ip.b[12] == 2)
        memcpy(ev->src_geo.country, "RU", 3);
    else if (ev->src_ip.b[12] == 3)
        memcpy(ev->src_geo.country, "FR", 3);
    ev->src_geo.looked_up = true;
}

/* Run the accumulated records through the parser and the engine; clears the log. */
static void run(fixture *f)
{
    ch_input *in = NULL;
    ch_error err = {0};
    ch_diag diag;
    ch_diag_init(&diag, stderr);
    assert_int_equal(ch_input_open_mem(&in, "mem", f->log.data, f->log.len, 0, &err), 0);
    ch_stream *s = ch_source_cloudtrail.open(in, &diag, &err);
    assert_non_null(s);
    ch_event ev;
    int n = 0;
    while (ch_source_cloudtrail.next(s, &ev) == 1) {
        fake_geo(&ev);
        assert_true(ch_engine_process(f->eng, &ev) >= 0);
        n++;
    }
    ch_source_cloudtrail.close(s);
    ch_input_close(in);
    assert_int_equal(diag.errors_total, 0);
    ch_buf_clear(&f->log);
}

/* ---- rule texts ---------------------------------------------------------------------------- */

static const char *const R_NONE =
    "id: T-NONE\ntitle: root\nseverity: 5\ncredibility: 5\nrelevance: 5\n"
    "where: event.action == \"ConsoleLogin\" and user.name == \"root\"\n";

static const char *const R_FAIL5 =
    "id: T-FAIL5\ntitle: brute force\nseverity: 6\ncredibility: 6\nrelevance: 6\nrisk: 10\n"
    "where: event.action == \"ConsoleLogin\" and event.outcome == \"failure\"\n"
    "correlate: {type: threshold, by: [user.name], count: 5, within: 15m}\n"
    "offense: {index: user.name}\n";

static const char *const R_PAIR =
    "id: T-PAIR\ntitle: two calls\nseverity: 3\ncredibility: 3\nrelevance: 3\n"
    "where: event.action == \"DescribeInstances\"\n"
    "correlate: {type: threshold, by: user.name, count: 2, within: 1h}\n";

static const char *const R_COUNTRIES =
    "id: T-CTRY\ntitle: countries\nseverity: 7\ncredibility: 8\nrelevance: 8\nrisk: 40\n"
    "where: event.action == \"ConsoleLogin\" and event.outcome == \"success\"\n"
    "correlate: {type: distinct, by: [user.name], field: source.geo.country_iso_code, count: 2,"
    " within: 1h}\n"
    "offense: {index: user.name}\n";

static const char *const R_BURST =
    "id: T-BURST\ntitle: burst\nseverity: 8\ncredibility: 8\nrelevance: 8\n"
    "where: event.action == \"RunInstances\" and not userIdentity.invokedBy exists\n"
    "correlate:\n  type: threshold\n  by: [user.name]\n"
    "  sum: count(responseElements.instancesSet.items.instanceId)\n  count: 20\n  within: 10m\n";

/* ---- tests --------------------------------------------------------------------------------- */

static void test_none_fires_on_every_matching_event(void **st)
{
    (void)st;
    fixture f;
    const char *r[] = {R_NONE};
    load(&f, r, 1, NULL);
    login(&f, T0, "root", "1.0.0.1", true);
    login(&f, T0 + MIN, "alice", "1.0.0.1", true);
    login(&f, T0 + 2 * MIN, "root", "1.0.0.1", false);
    run(&f);
    assert_int_equal(count_rule(&f.hits, "T-NONE"), 2);
    unload(&f);
}

static void test_threshold_five_failures_fire_four_stay_silent(void **st)
{
    (void)st;
    fixture f;
    const char *r[] = {R_FAIL5};
    load(&f, r, 1, NULL);
    for (int i = 0; i < 4; i++)
        login(&f, T0 + i * MIN, "alice", "1.0.0.1", false);
    for (int i = 0; i < 4; i++) /* another user's failures never join alice's key */
        login(&f, T0 + i * MIN, "bob", "1.0.0.1", false);
    run(&f);
    assert_int_equal(f.hits.n, 0);
    login(&f, T0 + 10 * MIN, "alice", "1.0.0.1", false);
    run(&f);
    assert_int_equal(f.hits.n, 1);
    assert_string_equal(f.hits.index[0], "alice");
    assert_int_equal(f.hits.count[0], 5);
    assert_int_equal(f.hits.nids[0], 5);
    assert_int_equal(f.hits.first[0], T0);
    assert_non_null(strstr(f.hits.evidence[0], "5 events for user.name=alice within 15m"));
    unload(&f);
}

static void test_threshold_failures_spread_over_20_minutes_stay_silent(void **st)
{
    (void)st;
    fixture f;
    const char *r[] = {R_FAIL5};
    load(&f, r, 1, NULL);
    for (int i = 0; i < 5; i++) /* every 4 minutes: 16 minutes first to last */
        login(&f, T0 + i * 4 * MIN, "alice", "1.0.0.1", false);
    run(&f);
    assert_int_equal(f.hits.n, 0);
    unload(&f);
}

static void test_threshold_window_slides_across_hour_boundaries(void **st)
{
    (void)st;
    fixture f;
    const char *r[] = {R_PAIR};
    load(&f, r, 1, NULL);
    /* 0:50 and 1:10: different fixed hourly buckets, 20 minutes apart. */
    int64_t h0 = T0 - (T0 % HOUR);
    rec(&f, h0 + 50 * MIN, "DescribeInstances", "alice", "1.0.0.1", NULL);
    rec(&f, h0 + 70 * MIN, "DescribeInstances", "alice", "1.0.0.1", NULL);
    run(&f);
    assert_int_equal(f.hits.n, 1);
    unload(&f);
}

static void test_threshold_fires_once_per_episode_then_rearms_after_within(void **st)
{
    (void)st;
    fixture f;
    const char *r[] = {R_FAIL5};
    load(&f, r, 1, NULL);
    for (int i = 0; i < 12; i++) /* one burst: one hit, not eight */
        login(&f, T0 + i * 30000, "alice", "1.0.0.1", false);
    run(&f);
    assert_int_equal(f.hits.n, 1);
    for (int i = 0; i < 5; i++) /* a second burst after `within` fires again */
        login(&f, T0 + 40 * MIN + i * 30000, "alice", "1.0.0.1", false);
    run(&f);
    assert_int_equal(f.hits.n, 2);
    assert_int_equal(f.hits.count[1], 5);
    unload(&f);
}

static void test_out_of_order_event_within_lateness_counts(void **st)
{
    (void)st;
    fixture f;
    const char *r[] = {R_PAIR};
    ch_engine_opts o = {.lateness_ms = 10 * MIN};
    load(&f, r, 1, &o);
    rec(&f, T0 + 30 * MIN, "DescribeInstances", "alice", "1.0.0.1", NULL);
    rec(&f, T0 + 22 * MIN, "DescribeInstances", "alice", "1.0.0.1", NULL); /* 8 min late */
    run(&f);
    assert_int_equal(f.hits.n, 1);
    assert_int_equal(f.hits.first[0], T0 + 22 * MIN);
    ch_engine_stats s;
    ch_engine_stats_get(f.eng, &s);
    assert_int_equal(s.late, 0);
    unload(&f);
}

static void test_event_later_than_lateness_is_counted_not_correlated(void **st)
{
    (void)st;
    fixture f;
    const char *r[] = {R_PAIR};
    ch_engine_opts o = {.lateness_ms = 5 * MIN};
    load(&f, r, 1, &o);
    rec(&f, T0 + 30 * MIN, "DescribeInstances", "alice", "1.0.0.1", NULL);
    rec(&f, T0 + 10 * MIN, "DescribeInstances", "alice", "1.0.0.1", NULL); /* 20 min late */
    run(&f);
    assert_int_equal(f.hits.n, 0);
    ch_engine_stats s;
    ch_engine_stats_get(f.eng, &s);
    assert_int_equal(s.late, 1);
    unload(&f);
}

static void run_instances(fixture *f, int64_t ts, const char *user, int n, bool invoked)
{
    char extra[8192];
    size_t o = 0;
    if (invoked) {
        /* userIdentity.invokedBy is inside userIdentity: build the record by hand. */
        char t[40];
        ch_time_format(ts, t);
        ch_buf_printf(&f->log,
                      "{\"eventVersion\":\"1.08\",\"eventTime\":\"%s\",\"awsRegion\":\"us-east-1\","
                      "\"eventID\":\"asg-%04d\",\"eventName\":\"RunInstances\","
                      "\"eventSource\":\"ec2.amazonaws.com\",\"eventType\":\"AwsApiCall\","
                      "\"userIdentity\":{\"type\":\"AssumedRole\",\"userName\":\"%s\","
                      "\"invokedBy\":\"autoscaling.amazonaws.com\",\"accountId\":\"1\"},"
                      "\"sourceIPAddress\":\"autoscaling.amazonaws.com\",\"responseElements\":"
                      "{\"instancesSet\":{\"items\":[",
                      t, ++f->seq, user);
        for (int i = 0; i < n; i++)
            ch_buf_printf(&f->log, "%s{\"instanceId\":\"i-%d\"}", i ? "," : "", i);
        ch_buf_adds(&f->log, "]}}}\n");
        return;
    }
    o += (size_t)snprintf(extra + o, sizeof extra - o,
                          ",\"responseElements\":{\"instancesSet\":{\"items\":[");
    for (int i = 0; i < n; i++)
        o += (size_t)snprintf(extra + o, sizeof extra - o, "%s{\"instanceId\":\"i-%d\"}",
                              i ? "," : "", i);
    snprintf(extra + o, sizeof extra - o, "]}}");
    rec(f, ts, "RunInstances", user, "1.0.0.1", extra);
}

static void test_threshold_sum_counts_instances_not_calls(void **st)
{
    (void)st;
    fixture f;
    const char *r[] = {R_BURST};
    load(&f, r, 1, NULL);
    run_instances(&f, T0, "alice", 9, false);
    run_instances(&f, T0 + MIN, "alice", 9, false);
    run_instances(&f, T0, "bob", 10, false);
    run(&f);
    assert_int_equal(f.hits.n, 0); /* 18 instances */
    run_instances(&f, T0 + 2 * MIN, "alice", 2, false);
    run(&f);
    assert_int_equal(f.hits.n, 1); /* 20 instances in 3 calls */
    assert_int_equal(f.hits.count[0], 3);
    assert_non_null(strstr(f.hits.evidence[0], "= 20 over 3 events"));
    unload(&f);
}

static void test_auto_scaling_launches_never_count(void **st)
{
    (void)st;
    fixture f;
    const char *r[] = {R_BURST};
    load(&f, r, 1, NULL);
    run_instances(&f, T0, "alice", 30, true);
    run(&f);
    assert_int_equal(f.hits.n, 0);
    unload(&f);
}

static void test_distinct_two_countries_within_hour_fires(void **st)
{
    (void)st;
    fixture f;
    const char *r[] = {R_COUNTRIES};
    load(&f, r, 1, NULL);
    login(&f, T0, "alice", "1.0.0.1", true);
    login(&f, T0 + 5 * MIN, "alice", "1.0.0.2", true); /* GB again: one country */
    run(&f);
    assert_int_equal(f.hits.n, 0);
    login(&f, T0 + 20 * MIN, "alice", "2.0.0.1", true);
    run(&f);
    assert_int_equal(f.hits.n, 1);
    assert_non_null(strstr(f.hits.evidence[0], "2 distinct source.geo.country_iso_code"));
    assert_non_null(strstr(f.hits.evidence[0], "GB"));
    assert_non_null(strstr(f.hits.evidence[0], "RU"));
    unload(&f);
}

static void test_distinct_traveller_a_day_apart_stays_silent(void **st)
{
    (void)st;
    fixture f;
    const char *r[] = {R_COUNTRIES};
    load(&f, r, 1, NULL);
    login(&f, T0, "alice", "1.0.0.1", true);
    login(&f, T0 + 24 * HOUR, "alice", "3.0.0.1", true);
    login(&f, T0 + 30 * MIN, "bob", "2.0.0.1", true); /* another user */
    run(&f);
    assert_int_equal(f.hits.n, 0);
    unload(&f);
}

static const char *const R_SEQ =
    "id: T-SEQ\ntitle: brute force then success\nseverity: 8\ncredibility: 8\nrelevance: 8\n"
    "correlate:\n  type: sequence\n  by: [user.name]\n  within: 1h\n  steps:\n"
    "    - rule: T-FAIL5\n"
    "    - where: event.action == \"ConsoleLogin\" and event.outcome == \"success\"\n";

static void test_sequence_rule_hit_then_success_fires(void **st)
{
    (void)st;
    fixture f;
    const char *r[] = {R_FAIL5, R_SEQ};
    load(&f, r, 2, NULL);
    login(&f, T0, "alice", "1.0.0.1", true); /* success before: not a sequence */
    for (int i = 0; i < 5; i++)
        login(&f, T0 + (i + 1) * MIN, "alice", "1.0.0.1", false);
    login(&f, T0 + 10 * MIN, "bob", "1.0.0.1", true); /* other key */
    run(&f);
    assert_int_equal(count_rule(&f.hits, "T-FAIL5"), 1);
    assert_int_equal(count_rule(&f.hits, "T-SEQ"), 0);
    login(&f, T0 + 30 * MIN, "alice", "1.0.0.1", true);
    run(&f);
    assert_int_equal(count_rule(&f.hits, "T-SEQ"), 1);
    assert_int_equal(f.hits.count[f.hits.n - 1], 2);
    unload(&f);
}

static void test_sequence_success_too_late_stays_silent(void **st)
{
    (void)st;
    fixture f;
    const char *r[] = {R_FAIL5, R_SEQ};
    load(&f, r, 2, NULL);
    for (int i = 0; i < 5; i++)
        login(&f, T0 + i * MIN, "alice", "1.0.0.1", false);
    login(&f, T0 + 2 * HOUR, "alice", "1.0.0.1", true);
    run(&f);
    assert_int_equal(count_rule(&f.hits, "T-FAIL5"), 1);
    assert_int_equal(count_rule(&f.hits, "T-SEQ"), 0);
    unload(&f);
}

static const char *const R_SEQBY =
    "id: T-SEQBY\ntitle: login then key for that user\nseverity: 8\ncredibility: 8\n"
    "relevance: 8\n"
    "correlate:\n  type: sequence\n  by: user.name\n  within: 2h\n  steps:\n"
    "    - where: event.action == \"ConsoleLogin\" and event.outcome == \"success\"\n"
    "    - {where: event.action == \"CreateAccessKey\", by: requestParameters.userName}\n";

static void test_sequence_step_by_maps_its_own_key_field(void **st)
{
    (void)st;
    fixture f;
    const char *r[] = {R_SEQBY};
    load(&f, r, 1, NULL);
    login(&f, T0, "alice", "1.0.0.1", true);
    /* admin creates a key for carol: carol never logged in */
    rec(&f, T0 + MIN, "CreateAccessKey", "admin", "1.0.0.1",
        ",\"requestParameters\":{\"userName\":\"carol\"}");
    run(&f);
    assert_int_equal(f.hits.n, 0);
    /* someone (the attacker as alice) creates a key for alice */
    rec(&f, T0 + 2 * MIN, "CreateAccessKey", "alice", "1.0.0.1",
        ",\"requestParameters\":{\"userName\":\"alice\"}");
    run(&f);
    assert_int_equal(f.hits.n, 1);
    unload(&f);
}

static const char *const R_FIRST =
    "id: T-FIRST\ntitle: new region\nseverity: 5\ncredibility: 5\nrelevance: 5\n"
    "where: event.action == \"RunInstances\"\n"
    "correlate: {type: first_seen, by: [cloud.account.id], field: cloud.region, learning: 1h}\n";

static void region_rec(fixture *f, int64_t ts, const char *region)
{
    char t[40];
    ch_time_format(ts, t);
    ch_buf_printf(&f->log,
                  "{\"eventVersion\":\"1.08\",\"eventTime\":\"%s\",\"awsRegion\":\"%s\","
                  "\"eventID\":\"r-%04d\",\"eventName\":\"RunInstances\","
                  "\"eventSource\":\"ec2.amazonaws.com\",\"recipientAccountId\":\"111122223333\","
                  "\"userIdentity\":{\"type\":\"IAMUser\",\"userName\":\"alice\","
                  "\"accountId\":\"111122223333\"},\"sourceIPAddress\":\"1.0.0.1\"}\n",
                  t, region, ++f->seq);
}

static void test_first_seen_fires_for_new_region_after_learning_only(void **st)
{
    (void)st;
    fixture f;
    const char *r[] = {R_FIRST};
    load(&f, r, 1, NULL);
    region_rec(&f, T0, "us-east-1");
    region_rec(&f, T0 + 30 * MIN, "eu-west-1"); /* new, but still learning */
    region_rec(&f, T0 + 2 * HOUR, "us-east-1"); /* known */
    region_rec(&f, T0 + 3 * HOUR, "eu-west-1"); /* learned */
    run(&f);
    assert_int_equal(f.hits.n, 0);
    region_rec(&f, T0 + 4 * HOUR, "ap-south-1");
    region_rec(&f, T0 + 5 * HOUR, "ap-south-1"); /* second time: seen */
    run(&f);
    assert_int_equal(f.hits.n, 1);
    assert_non_null(strstr(f.hits.evidence[0], "ap-south-1"));
    unload(&f);
}

static void test_dispatch_console_login_rule_never_meets_describe_instances(void **st)
{
    (void)st;
    fixture f;
    const char *r[] = {R_FAIL5, R_PAIR};
    load(&f, r, 2, NULL);
    for (int i = 0; i < 50; i++)
        rec(&f, T0 + i * 1000, "DescribeInstances", "alice", "1.0.0.1", NULL);
    run(&f);
    assert_int_equal(ch_engine_rule_evals(f.eng, 0), 0);
    assert_int_equal(ch_engine_rule_evals(f.eng, 1), 50);
    login(&f, T0 + HOUR, "alice", "1.0.0.1", false);
    run(&f);
    assert_int_equal(ch_engine_rule_evals(f.eng, 0), 1);
    assert_int_equal(ch_engine_rule_evals(f.eng, 1), 50);
    unload(&f);
}

static const char *const R_FLOW =
    "id: T-FLOW\ntitle: flows\nseverity: 1\ncredibility: 1\nrelevance: 1\n"
    "where: event.dataset == \"vpcflow\" and destination.port == 3333\n";
static const char *const R_ANY =
    "id: T-ANY\ntitle: anything by mallory\nseverity: 1\ncredibility: 1\nrelevance: 1\n"
    "where: user.name == \"mallory\"\n";

static void test_dispatch_by_dataset_and_catch_all(void **st)
{
    (void)st;
    fixture f;
    const char *r[] = {R_FLOW, R_ANY};
    load(&f, r, 2, NULL);
    for (int i = 0; i < 10; i++)
        rec(&f, T0 + i * 1000, "DescribeInstances", "alice", "1.0.0.1", NULL);
    run(&f);
    assert_int_equal(ch_engine_rule_evals(f.eng, 0), 0);  /* flows only */
    assert_int_equal(ch_engine_rule_evals(f.eng, 1), 10); /* no hints: every event */
    unload(&f);
}

static void test_state_cap_refuses_keys_and_counts(void **st)
{
    (void)st;
    fixture f;
    const char *r[] = {R_FAIL5};
    ch_engine_opts o = {.max_keys = 3};
    load(&f, r, 1, &o);
    for (int i = 0; i < 10; i++) {
        char u[16];
        snprintf(u, sizeof u, "user%d", i);
        login(&f, T0 + i * 1000, u, "1.0.0.1", false);
    }
    run(&f);
    ch_engine_stats s;
    ch_engine_stats_get(f.eng, &s);
    assert_int_equal(s.keys, 3);
    assert_int_equal(s.cap_hits, 7);
    unload(&f);
}

static void test_entries_cap_per_key_keeps_the_newest_and_counts(void **st)
{
    (void)st;
    fixture f;
    const char *r[] = {R_PAIR};
    ch_engine_opts o = {.max_entries = 4};
    load(&f, r, 1, &o);
    /* DescribeInstances pairs fire at the 2nd event, then stay quiet for 1h: the window keeps
     * filling and the 4-entry cap makes room by dropping the oldest. */
    for (int i = 0; i < 10; i++)
        rec(&f, T0 + i * 1000, "DescribeInstances", "alice", "1.0.0.1", NULL);
    run(&f);
    ch_engine_stats s;
    ch_engine_stats_get(f.eng, &s);
    assert_int_equal(f.hits.n, 1);
    assert_true(s.cap_hits >= 4);
    unload(&f);
}

static void test_memory_cap_refuses_new_keys(void **st)
{
    (void)st;
    fixture f;
    const char *r[] = {R_FAIL5};
    ch_engine_opts o = {.max_bytes = 64 * 1024};
    load(&f, r, 1, &o);
    for (int i = 0; i < 2000; i++) {
        char u[16];
        snprintf(u, sizeof u, "user%d", i);
        login(&f, T0 + i * 100, u, "1.0.0.1", false);
    }
    run(&f);
    ch_engine_stats s;
    ch_engine_stats_get(f.eng, &s);
    assert_true(s.keys < 2000);
    assert_true(s.cap_hits > 0);
    assert_true(s.bytes_peak <= 64 * 1024 + 4096);
    unload(&f);
}

static void test_idle_keys_expire_as_event_time_moves_on(void **st)
{
    (void)st;
    fixture f;
    const char *r[] = {R_FAIL5};
    load(&f, r, 1, NULL);
    for (int i = 0; i < 100; i++) {
        char u[16];
        snprintf(u, sizeof u, "user%d", i);
        login(&f, T0 + i * 1000, u, "1.0.0.1", false);
    }
    run(&f);
    ch_engine_stats s;
    ch_engine_stats_get(f.eng, &s);
    assert_int_equal(s.keys, 100);
    assert_true(s.bytes > 0);
    ch_engine_advance(f.eng, T0 + HOUR);
    ch_engine_stats_get(f.eng, &s);
    assert_int_equal(s.keys, 0);
    assert_int_equal(s.expired, 100);
    unload(&f);
}

static const char *const R_SEQFIELD =
    "id: T-SEQFIELD\ntitle: made by one, removed by another\nseverity: 5\ncredibility: 5\n"
    "relevance: 5\n"
    "correlate:\n  type: sequence\n  by: [requestParameters.name]\n  within: 1h\n"
    "  field: user.name\n  steps:\n"
    "    - where: event.action == \"CreateTrail\"\n"
    "    - where: event.action == \"DeleteTrail\"\n";

static void trail(fixture *f, int64_t ts, const char *action, const char *user, const char *name)
{
    char extra[128];
    snprintf(extra, sizeof extra, ",\"requestParameters\":{\"name\":\"%s\"}", name);
    rec(f, ts, action, user, "1.0.0.1", extra);
}

/* The sequence's field: the creator removing its own trail is used up silently; another
 * principal removing one fires, also when the engine was saved and restored in between. */
static void test_sequence_field_fires_only_when_the_last_step_is_someone_else(void **st)
{
    (void)st;
    fixture f;
    const char *r[] = {R_SEQFIELD};
    load(&f, r, 1, NULL);
    trail(&f, T0, "CreateTrail", "terraform", "t1");
    trail(&f, T0 + MIN, "DeleteTrail", "terraform", "t1");
    trail(&f, T0 + 2 * MIN, "DeleteTrail", "mallory", "t1"); /* used up: nothing in progress */
    trail(&f, T0 + 3 * MIN, "CreateTrail", "terraform", "t2");
    run(&f);
    assert_int_equal(f.hits.n, 0);
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    ch_error err = {0};
    assert_int_equal(ch_engine_save(f.eng, tmp, &err), 0);
    ch_engine_free(f.eng);
    assert_int_equal(ch_engine_new(f.rs, NULL, on_hit, &f.hits, &f.eng, &err), 0);
    rewind(tmp);
    if (ch_engine_load(f.eng, tmp, &err) != 0)
        fail_msg("%s", err.msg);
    fclose(tmp);
    trail(&f, T0 + 4 * MIN, "DeleteTrail", "mallory", "t2");
    run(&f);
    assert_int_equal(f.hits.n, 1);
    unload(&f);
}

/* The same events through one engine, and through two with a save/load between them. */
static void feed_story(fixture *f, int part)
{
    if (part == 0) {
        for (int i = 0; i < 3; i++)
            login(f, T0 + i * MIN, "alice", "1.0.0.1", false);
        login(f, T0 + 4 * MIN, "alice", "1.0.0.1", true);
        region_rec(f, T0, "us-east-1");
    } else {
        for (int i = 0; i < 2; i++)
            login(f, T0 + (5 + i) * MIN, "alice", "1.0.0.1", false);
        login(f, T0 + 20 * MIN, "alice", "2.0.0.1", true);
        login(f, T0 + 25 * MIN, "alice", "1.0.0.1", true);
        region_rec(f, T0 + 2 * HOUR, "us-east-1");
        region_rec(f, T0 + 3 * HOUR, "sa-east-1");
    }
}

static void test_save_restore_gives_the_same_hits(void **st)
{
    (void)st;
    const char *r[] = {R_FAIL5, R_SEQ, R_COUNTRIES, R_FIRST};
    fixture a, b;
    load(&a, r, 4, NULL);
    feed_story(&a, 0);
    feed_story(&a, 1);
    run(&a);

    load(&b, r, 4, NULL);
    feed_story(&b, 0);
    run(&b);
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    ch_error err = {0};
    assert_int_equal(ch_engine_save(b.eng, tmp, &err), 0);
    ch_engine_free(b.eng);
    assert_int_equal(ch_engine_new(b.rs, NULL, on_hit, &b.hits, &b.eng, &err), 0);
    rewind(tmp);
    if (ch_engine_load(b.eng, tmp, &err) != 0)
        fail_msg("%s", err.msg);
    fclose(tmp);
    feed_story(&b, 1);
    run(&b);

    assert_true(a.hits.n >= 4); /* FAIL5, SEQ, CTRY, FIRST */
    assert_int_equal(a.hits.n, b.hits.n);
    for (int i = 0; i < a.hits.n; i++) {
        assert_string_equal(a.hits.rule[i], b.hits.rule[i]);
        assert_int_equal(a.hits.ts[i], b.hits.ts[i]);
        assert_int_equal(a.hits.count[i], b.hits.count[i]);
        assert_string_equal(a.hits.evidence[i], b.hits.evidence[i]);
    }
    unload(&a);
    unload(&b);
}

static void test_load_skips_state_of_rules_no_longer_loaded(void **st)
{
    (void)st;
    fixture a, b;
    const char *ra[] = {R_PAIR, R_FAIL5};
    const char *rb[] = {R_FAIL5};
    load(&a, ra, 2, NULL);
    rec(&a, T0, "DescribeInstances", "alice", "1.0.0.1", NULL);
    for (int i = 0; i < 4; i++)
        login(&a, T0 + i * MIN, "alice", "1.0.0.1", false);
    run(&a);
    FILE *tmp = tmpfile();
    ch_error err = {0};
    assert_int_equal(ch_engine_save(a.eng, tmp, &err), 0);
    rewind(tmp);
    load(&b, rb, 1, NULL);
    if (ch_engine_load(b.eng, tmp, &err) != 0)
        fail_msg("%s", err.msg);
    fclose(tmp);
    ch_engine_stats s;
    ch_engine_stats_get(b.eng, &s);
    assert_int_equal(s.keys, 1); /* T-FAIL5's alice; T-PAIR is gone */
    login(&b, T0 + 5 * MIN, "alice", "1.0.0.1", false);
    run(&b);
    assert_int_equal(count_rule(&b.hits, "T-FAIL5"), 1);
    unload(&a);
    unload(&b);
}

static void test_load_refuses_damaged_state(void **st)
{
    (void)st;
    const char *r[] = {R_FAIL5};
    fixture f;
    load(&f, r, 1, NULL);
    FILE *tmp = tmpfile();
    fputs("CHENGST\0garbage", tmp);
    rewind(tmp);
    ch_error err = {0};
    assert_int_equal(ch_engine_load(f.eng, tmp, &err), CH_EPARSE);
    fclose(tmp);
    unload(&f);
}

static const char *const R_DERIVE =
    "id: T-DERIVE\ntitle: derive\nseverity: 1\ncredibility: 1\nrelevance: 1\n"
    "where: event.action == \"ConsoleLogin\" and event.outcome == \"success\"\n"
    "responses:\n  - derived: {action: SuspiciousLogin}\n"
    "  - refset: {name: seen_users, field: user.name, ttl: 1h}\n";
static const char *const R_ON_DERIVED =
    "id: T-ONDERIVED\ntitle: on derived\nseverity: 1\ncredibility: 1\nrelevance: 1\n"
    "where: event.provider == \"coinhound\" and event.action == \"SuspiciousLogin\"\n";
static const char *const R_IN_SET =
    "id: T-INSET\ntitle: user in set\nseverity: 1\ncredibility: 1\nrelevance: 1\n"
    "where: event.action == \"DescribeInstances\" and user.name in $seen_users\n";

static void test_responses_derive_events_and_fill_refsets_with_ttl(void **st)
{
    (void)st;
    const char *r[] = {R_DERIVE, R_ON_DERIVED, R_IN_SET};
    fixture f;
    load(&f, r, 3, NULL);
    rec(&f, T0, "DescribeInstances", "alice", "1.0.0.1", NULL); /* not yet in the set */
    login(&f, T0 + MIN, "alice", "1.0.0.1", true);
    rec(&f, T0 + 2 * MIN, "DescribeInstances", "alice", "1.0.0.1", NULL);
    rec(&f, T0 + 3 * HOUR, "DescribeInstances", "alice", "1.0.0.1", NULL); /* ttl passed */
    run(&f);
    assert_int_equal(count_rule(&f.hits, "T-DERIVE"), 1);
    assert_int_equal(count_rule(&f.hits, "T-ONDERIVED"), 1);
    assert_int_equal(count_rule(&f.hits, "T-INSET"), 1);
    unload(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_none_fires_on_every_matching_event),
        cmocka_unit_test(test_threshold_five_failures_fire_four_stay_silent),
        cmocka_unit_test(test_threshold_failures_spread_over_20_minutes_stay_silent),
        cmocka_unit_test(test_threshold_window_slides_across_hour_boundaries),
        cmocka_unit_test(test_threshold_fires_once_per_episode_then_rearms_after_within),
        cmocka_unit_test(test_out_of_order_event_within_lateness_counts),
        cmocka_unit_test(test_event_later_than_lateness_is_counted_not_correlated),
        cmocka_unit_test(test_threshold_sum_counts_instances_not_calls),
        cmocka_unit_test(test_auto_scaling_launches_never_count),
        cmocka_unit_test(test_distinct_two_countries_within_hour_fires),
        cmocka_unit_test(test_distinct_traveller_a_day_apart_stays_silent),
        cmocka_unit_test(test_sequence_rule_hit_then_success_fires),
        cmocka_unit_test(test_sequence_success_too_late_stays_silent),
        cmocka_unit_test(test_sequence_step_by_maps_its_own_key_field),
        cmocka_unit_test(test_first_seen_fires_for_new_region_after_learning_only),
        cmocka_unit_test(test_dispatch_console_login_rule_never_meets_describe_instances),
        cmocka_unit_test(test_dispatch_by_dataset_and_catch_all),
        cmocka_unit_test(test_state_cap_refuses_keys_and_counts),
        cmocka_unit_test(test_entries_cap_per_key_keeps_the_newest_and_counts),
        cmocka_unit_test(test_memory_cap_refuses_new_keys),
        cmocka_unit_test(test_idle_keys_expire_as_event_time_moves_on),
        cmocka_unit_test(test_sequence_field_fires_only_when_the_last_step_is_someone_else),
        cmocka_unit_test(test_save_restore_gives_the_same_hits),
        cmocka_unit_test(test_load_skips_state_of_rules_no_longer_loaded),
        cmocka_unit_test(test_load_refuses_damaged_state),
        cmocka_unit_test(test_responses_derive_events_and_fill_refsets_with_ttl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
