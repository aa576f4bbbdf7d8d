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
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cmd_rules.h"
#include "core/diag.h"
#include "enrich/context.h"
#include "enrich/refset.h"
#include "pipeline/pipeline.h"
#include "rules/rule.h"

#define PACK CH_SOURCE_DIR "/content/cryptojacking-aws"

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

/* Set name to value (NULL: unset it); returns the old value, strdup'd, for restore_env. */
static char *swap_env(const char *name, const char *value)
{
    const char *old = getenv(name);
    char *saved = old ? strdup(old) : NULL;
    if (value)
        assert_int_equal(setenv(name, value, 1), 0);
    else
        unsetenv(name);
    return saved;
}

static void restore_env(const char *name, char *saved)
{
    if (saved)
        setenv(name, saved, 1);
    else
        unsetenv(name);
    free(saved);
}

/* `coinhound rules test` over the pack (the command function, called directly): it loads the
 * pack's context, and enriches with GeoIP and entity linking as analyze does. The GeoIP answers
 * come from the pack's tests/geoip.csv fixture, so the test needs no installed database: the
 * data directory is pointed at an empty folder to make sure none is used. The fixture's
 * temporary database goes to TMPDIR, an empty folder too, which must be empty again after. */
static void test_rules_check_and_test_pass_on_the_pack(void **st)
{
    (void)st;
    char home[] = "/tmp/ch-pack-home-XXXXXX", tmp[] = "/tmp/ch-pack-tmp-XXXXXX";
    assert_non_null(mkdtemp(home));
    assert_non_null(mkdtemp(tmp));
    char *saved_home = swap_env("COINHOUND_HOME", home);
    char *saved_tmp = swap_env("TMPDIR", tmp);
    char *check[] = {"rules", "check", PACK, NULL};
    int check_rc = ch_cmd_rules(3, check);
    char *test[] = {"rules", "test", PACK, NULL};
    int rc = ch_cmd_rules(3, test);
    restore_env("COINHOUND_HOME", saved_home);
    restore_env("TMPDIR", saved_tmp);
    assert_int_equal(rmdir(home), 0);
    if (rmdir(tmp) != 0)
        fail_msg("%s is not empty: the fixture's temporary database was left behind", tmp);
    assert_int_equal(check_rc, 0);
    assert_int_equal(rc, 0);
}

/* The fixture is what makes the country rules pass: without GeoIP the cases that need a
 * country (CJ-AUTH-01, CJ-AUTH-02, CJ-IAM-01, CJ-CHAIN-01 fire cases) fail. Were the fixture
 * ignored, the test above would pass or fail by whatever database the machine has. */
static void test_pack_country_cases_fail_without_geoip(void **st)
{
    (void)st;
    char *test[] = {"rules", "test", "--no-geoip", PACK, NULL};
    assert_int_equal(ch_cmd_rules(4, test), CH_EXIT_FAIL);
}

/* `rules test` of a pack with no rules and the given tests/geoip.csv. */
static int rules_test_with_fixture(const char *csv)
{
    char pack[] = "/tmp/ch-pack-fixture-XXXXXX";
    assert_non_null(mkdtemp(pack));
    char path[512];
    snprintf(path, sizeof path, "%s/rules", pack);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/tests", pack);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/tests/geoip.csv", pack);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(csv, f);
    assert_int_equal(fclose(f), 0);
    char *test[] = {"rules", "test", pack, NULL};
    int rc = ch_cmd_rules(3, test);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", pack);
    assert_int_equal(system(cmd), 0);
    return rc;
}

/* A broken fixture fails the run loudly instead of testing without countries; the same pack
 * with a good one passes, so the failure is the fixture's. */
static void test_bad_geoip_fixture_fails_rules_test(void **st)
{
    (void)st;
    assert_int_equal(rules_test_with_fixture("network,country\n81.2.69.0/24,GB\n"), CH_EXIT_OK);
    assert_int_equal(rules_test_with_fixture("network,country\n81.2.69.142/24,GB\n"),
                     CH_EXIT_FAIL); /* host bits set */
    assert_int_equal(rules_test_with_fixture("81.2.69.0/24,GB\n"), CH_EXIT_FAIL); /* no header */
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
        cmocka_unit_test(test_pack_country_cases_fail_without_geoip),
        cmocka_unit_test(test_bad_geoip_fixture_fails_rules_test),
        cmocka_unit_test(test_every_rule_has_a_firing_and_a_silent_case),
        cmocka_unit_test(test_image_listed_as_authorised_does_not_fire_ec2_01),
        cmocka_unit_test(test_image_listed_as_kali_fires_ec2_01),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
