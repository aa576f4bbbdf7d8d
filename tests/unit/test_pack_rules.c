/*
 * test_pack_rules.c - the cryptojacking-aws content pack: `coinhound rules check` and `rules test`
 * pass on it (the command function called directly; it applies the pack's business context,
 * GeoIP and entity linking as analyze does), every rule has a case that fires and a near miss,
 * and what only a user's context can show: an image the context lists as authorised does not
 * fire CJ-EC2-01, one it lists as Kali does.
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

#include "cli/cmd_rules.h"
#include "core/diag.h"
#include "enrich/context.h"
#include "enrich/entity.h"
#include "enrich/geoip.h"
#include "enrich/refset.h"
#include "rules/engine.h"
#include "rules/rule.h"

#define PACK CH_SOURCE_DIR "/content/cryptojacking-aws"
#define GEOIP CH_SOURCE_DIR "/data/geoip/country.mmdb"

typedef struct pipeline {
    ch_context *ctx;
    ch_refsets *sets;
    ch_ruleset *rs;
    ch_engine *eng;
    ch_entity *ent;
    ch_geoip *geo;
    const char *rule_id;
    uint64_t fired;
} pipeline;

static void on_hit(const ch_rule_hit *h, void *ud)
{
    pipeline *p = ud;
    if (strcmp(h->rule->id, p->rule_id) == 0)
        p->fired++;
}

static void enrich(void *ud, ch_event *ev)
{
    pipeline *p = ud;
    if (p->geo)
        ch_geoip_enrich(p->geo, ev);
    ch_entity_process(p->ent, ev);
}

static void print_msg(void *ud, const char *msg)
{
    (void)ud;
    fprintf(stderr, "%s\n", msg);
}

/* The order analyze must follow: pack defaults, then the user's context, into the registry,
 * then the rules (which resolve $business_countries etc. against it). */
static void open_pipeline(pipeline *p, const char *user_ctx, ch_geoip *geo)
{
    ch_error err = {0};
    memset(p, 0, sizeof *p);
    p->geo = geo;
    assert_int_equal(ch_context_new(&p->ctx), 0);
    if (ch_context_load_pack(p->ctx, PACK, &err) != 0)
        fail_msg("%s", err.msg);
    if (user_ctx && ch_context_load_mem(p->ctx, "user.yaml", user_ctx, strlen(user_ctx), &err))
        fail_msg("%s", err.msg);
    assert_int_equal(ch_refsets_new(&p->sets), 0);
    if (ch_context_apply(p->ctx, p->sets, &err) != 0)
        fail_msg("%s", err.msg);
    if (ch_ruleset_load(PACK, p->sets, print_msg, NULL, &p->rs, &err) != 0)
        fail_msg("%s", err.msg);
    ch_engine_opts eo = {0};
    eo.learning_ms = ch_context_learning_ms(p->ctx);
    assert_int_equal(ch_engine_new(p->rs, &eo, on_hit, p, &p->eng, &err), 0);
    assert_int_equal(ch_entity_new(0, 0, &p->ent, &err), 0);
}

static void close_pipeline(pipeline *p)
{
    ch_engine_free(p->eng);
    ch_ruleset_free(p->rs);
    ch_refsets_free(p->sets);
    ch_entity_free(p->ent);
    ch_context_free(p->ctx);
}

/* `coinhound rules test` over the pack (the command function, called directly): it loads the
 * pack's context, and enriches with GeoIP and entity linking as analyze does. */
static void test_rules_check_and_test_pass_on_the_pack(void **st)
{
    (void)st;
    if (access(GEOIP, R_OK) != 0)
        skip(); /* the country rules need GeoIP */
    char *check[] = {"rules", "check", PACK, NULL};
    assert_int_equal(ch_cmd_rules(3, check), 0);
    char *test[] = {"rules", "test", "--geoip", GEOIP, PACK, NULL};
    assert_int_equal(ch_cmd_rules(5, test), 0);
}

/* Every rule carries a case that fires and a near miss that stays silent. */
static void test_every_rule_has_a_firing_and_a_silent_case(void **st)
{
    (void)st;
    pipeline p;
    open_pipeline(&p, NULL, NULL);
    for (uint32_t i = 0; i < p.rs->n; i++) {
        const ch_rule *r = p.rs->rules[i];
        bool fire = false, silent = false;
        for (uint32_t t = 0; t < r->ntests; t++) {
            fire |= r->tests[t].expect_fire;
            silent |= !r->tests[t].expect_fire;
        }
        if (!fire || !silent)
            fail_msg("%s: needs at least one fire and one silent case", r->info.id);
    }
    close_pipeline(&p);
}

static uint64_t fire_count(const char *rule, const char *user_ctx, const char *file)
{
    pipeline p;
    open_pipeline(&p, user_ctx, NULL);
    p.rule_id = rule;
    ch_error err = {0};
    ch_diag diag;
    ch_diag_init(&diag, stderr);
    assert_true(ch_engine_feed_path(p.eng, file, enrich, &p, &diag, &err) > 0);
    uint64_t n = p.fired;
    close_pipeline(&p);
    return n;
}

static void test_image_listed_as_authorised_does_not_fire_ec2_01(void **st)
{
    (void)st;
    const char *ctx = "images:\n  ami-0f4b5c6d7e8f90a1b: {os: \"Amazon Linux 2023\"}\n";
    assert_int_equal(fire_count("CJ-EC2-01", ctx, PACK "/tests/ec2-01-kali.jsonl"), 0);
}

static void test_image_listed_as_kali_fires_ec2_01(void **st)
{
    (void)st;
    const char *ctx = "images:\n  ami-0f4b5c6d7e8f90a1b: {os: \"Kali GNU/Linux Rolling\"}\n";
    assert_int_equal(fire_count("CJ-EC2-01", ctx, PACK "/tests/ec2-01-kali.jsonl"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules_check_and_test_pass_on_the_pack),
        cmocka_unit_test(test_every_rule_has_a_firing_and_a_silent_case),
        cmocka_unit_test(test_image_listed_as_authorised_does_not_fire_ec2_01),
        cmocka_unit_test(test_image_listed_as_kali_fires_ec2_01),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
