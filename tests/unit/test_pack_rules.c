/*
 * test_pack_rules.c - the cryptojacking-aws content pack: `coinhound rules check` and `rules test`
 * pass on it (the command function called directly; it runs each case through the pipeline
 * analyze runs), every rule has a case that fires and a near miss, and what only a user's
 * context can show: an image the context lists as authorised does not
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
#include "enrich/refset.h"
#include "pipeline/pipeline.h"
#include "rules/rule.h"

#define PACK CH_SOURCE_DIR "/content/cryptojacking-aws"
#define GEOIP CH_SOURCE_DIR "/data/geoip/country.mmdb"

typedef struct counter {
    const char *rule_id;
    uint64_t fired;
} counter;

static void on_hit(const ch_rule_hit *h, void *ud)
{
    counter *c = ud;
    if (strcmp(h->rule->id, c->rule_id) == 0)
        c->fired++;
}

static void print_msg(void *ud, const char *msg)
{
    (void)ud;
    fprintf(stderr, "%s\n", msg);
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
    ch_refsets *sets = NULL;
    ch_context *ctx = NULL;
    ch_ruleset *rs = NULL;
    ch_error err = {0};
    assert_int_equal(ch_refsets_new(&sets), 0);
    assert_int_equal(ch_context_new(&ctx), 0);
    if (ch_context_load_pack(ctx, PACK, &err) != 0 || ch_context_apply(ctx, sets, &err) != 0)
        fail_msg("%s", err.msg);
    if (ch_ruleset_load(PACK, sets, print_msg, NULL, &rs, &err) != 0)
        fail_msg("%s", err.msg);
    for (uint32_t i = 0; i < rs->n; i++) {
        const ch_rule *r = rs->rules[i];
        bool fire = false, silent = false;
        for (uint32_t t = 0; t < r->ntests; t++) {
            fire |= r->tests[t].expect_fire;
            silent |= !r->tests[t].expect_fire;
        }
        if (!fire || !silent)
            fail_msg("%s: needs at least one fire and one silent case", r->info.id);
    }
    ch_ruleset_free(rs);
    ch_context_free(ctx);
    ch_refsets_free(sets);
}

/* A file through the pipeline `analyze` runs (no store), with a user's context over the
 * pack's: how often the rule fired. */
static uint64_t fire_count(const char *rule, const char *user_ctx, const char *file)
{
    char ctx_path[] = "/tmp/ch-pack-ctx-XXXXXX";
    int fd = mkstemp(ctx_path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, user_ctx, strlen(user_ctx)), (ssize_t)strlen(user_ctx));
    close(fd);
    ch_diag diag;
    ch_diag_init(&diag, stderr);
    counter c = {rule, 0};
    ch_pipeline_config pc = {.no_store = true,
                             .pack = PACK,
                             .context = ctx_path,
                             .no_geoip = true,
                             .diag = &diag,
                             .msg = print_msg,
                             .on_hit = on_hit,
                             .hit_ud = &c};
    ch_pipeline *p = NULL;
    ch_error err = {0};
    if (ch_pipeline_open(&pc, &p, &err) != 0)
        fail_msg("%s", err.msg);
    assert_true(ch_pipeline_push_paths(p, &file, 1, &err) > 0);
    ch_pipeline_close(p);
    unlink(ctx_path);
    return c.fired;
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
