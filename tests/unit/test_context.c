/*
 * test_context.c - the business context: a file is read with every key, the user's file
 * replaces only the keys it sets over the pack's defaults, mistakes are refused with
 * file:line:column, and the lists reach rules as reference sets (also when applied again).
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

#include "core/ip.h"
#include "enrich/context.h"
#include "enrich/refset.h"

#define PACK CH_SOURCE_DIR "/content/cryptojacking-aws"

static const char *full = "business_countries: [GB, us]\n"
                          "networks:\n"
                          "  - {cidr: 172.31.0.0/16, name: vpc}\n"
                          "  - {cidr: 10.20.0.0/16, name: office}\n"
                          "images:\n"
                          "  ami-0123456789abcdef0: {os: \"Ubuntu 24.04 LTS\"}\n"
                          "  ami-0kali00000000000: {os: \"Kali Linux 2024.2\"}\n"
                          "learning: 48h\n"
                          "unauthorized_os: [kali, Parrot]\n";

static void test_full_context_reads_every_key(void **st)
{
    (void)st;
    ch_context *c = NULL;
    ch_error err = {0};
    assert_int_equal(ch_context_new(&c), 0);
    assert_int_equal(ch_context_load_mem(c, "ctx.yaml", full, strlen(full), &err), 0);
    assert_int_equal(ch_context_country_count(c), 2);
    assert_string_equal(ch_context_country(c, 1), "US");
    assert_true(ch_context_is_business_country(c, "gb", 2));
    assert_false(ch_context_is_business_country(c, "RU", 2));
    assert_int_equal(ch_context_network_count(c), 2);
    assert_string_equal(ch_context_image_os(c, "ami-0123456789abcdef0", 21), "Ubuntu 24.04 LTS");
    assert_null(ch_context_image_os(c, "ami-0ffffffffffffffff", 21));
    assert_int_equal(ch_context_learning_ms(c), 48LL * 3600 * 1000);
    assert_true(ch_context_os_unauthorized(c, "Kali Linux 2024.2", 17));
    assert_false(ch_context_os_unauthorized(c, "Ubuntu", 6));
    ch_context_free(c);
}

static void test_user_file_replaces_only_keys_it_sets(void **st)
{
    (void)st;
    ch_context *c = NULL;
    ch_error err = {0};
    assert_int_equal(ch_context_new(&c), 0);
    assert_int_equal(ch_context_load_mem(c, "defaults.yaml", full, strlen(full), &err), 0);
    const char *user = "business_countries: [DE]\n";
    assert_int_equal(ch_context_load_mem(c, "user.yaml", user, strlen(user), &err), 0);
    assert_int_equal(ch_context_country_count(c), 1);
    assert_string_equal(ch_context_country(c, 0), "DE");
    assert_int_equal(ch_context_image_count(c), 2);
    assert_int_equal(ch_context_learning_ms(c), 48LL * 3600 * 1000);
    ch_context_free(c);
}

static void expect_error(const char *text, const char *where, const char *what)
{
    ch_context *c = NULL;
    ch_error err = {0};
    assert_int_equal(ch_context_new(&c), 0);
    assert_int_equal(ch_context_load_mem(c, "ctx.yaml", full, strlen(full), &err), 0);
    int rc = ch_context_load_mem(c, "bad.yaml", text, strlen(text), &err);
    assert_true(rc < 0);
    if (strstr(err.msg, where) == NULL || strstr(err.msg, what) == NULL)
        fail_msg("message '%s' lacks '%s' or '%s'", err.msg, where, what);
    /* A bad file changes nothing. */
    assert_int_equal(ch_context_country_count(c), 2);
    ch_context_free(c);
}

static void test_mistakes_name_file_line_and_column(void **st)
{
    (void)st;
    expect_error("business_countries: [GB, GBR]\n", "bad.yaml:1:26", "ISO 3166-1");
    expect_error("business_countries: [GB]\nnetwork: []\n", "bad.yaml:2:1", "unknown key");
    expect_error("networks:\n  - {cidr: 300.1.0.0/16}\n", "bad.yaml:2:12", "CIDR");
    expect_error("networks:\n  - {cidr: 10.0.0.0/33}\n", "bad.yaml:2:12", "CIDR");
    expect_error("images:\n  ami-1: {osname: x}\n", "bad.yaml:2:11", "unknown key");
    expect_error("images:\n  ami-1: {}\n", "bad.yaml:2:10", "needs an os");
    expect_error("images:\n  ami-1: {os: a}\n  ami-2: {os: b}\n  ami-1: {os: c}\n", "bad.yaml:4:3",
                 "listed twice");
    expect_error("learning: soon\n", "bad.yaml:1:11", "duration");
    expect_error("business_countries: [GB\n", "bad.yaml:", "not valid YAML");
    expect_error("- a\n- b\n", "bad.yaml:1:1", "expected a mapping");
}

static void test_apply_exposes_lists_as_reference_sets(void **st)
{
    (void)st;
    ch_context *c = NULL;
    ch_refsets *sets = NULL;
    ch_error err = {0};
    assert_int_equal(ch_context_new(&c), 0);
    assert_int_equal(ch_refsets_new(&sets), 0);
    assert_int_equal(ch_context_load_mem(c, "ctx.yaml", full, strlen(full), &err), 0);
    assert_int_equal(ch_context_apply(c, sets, &err), 0);
    ch_refset *bc = ch_refsets_get(sets, "business_countries", 18);
    assert_non_null(bc);
    assert_true(ch_refset_contains(bc, "gb", 2, 0, NULL));
    assert_false(ch_refset_contains(bc, "RU", 2, 0, NULL));
    ch_refset *au = ch_refsets_get(sets, "authorized_images", 17);
    ch_refset *un = ch_refsets_get(sets, "unauthorized_images", 19);
    assert_true(ch_refset_contains(au, "ami-0123456789abcdef0", 21, 0, NULL));
    assert_false(ch_refset_contains(au, "ami-0kali00000000000", 20, 0, NULL));
    assert_true(ch_refset_contains(un, "ami-0kali00000000000", 20, 0, NULL));
    ch_refset *nets = ch_refsets_get(sets, "business_networks", 17);
    ch_ip ip;
    assert_true(ch_ip_parse("10.20.3.4", 9, &ip));
    const ch_refset_elem *hit = NULL;
    assert_true(ch_refset_contains_ip(nets, &ip, 0, &hit));
    assert_string_equal(hit->indicator, "office");

    /* Applying another context refills the same set objects (compiled rules hold them). */
    const char *user = "business_countries: [DE]\n";
    assert_int_equal(ch_context_load_mem(c, "user.yaml", user, strlen(user), &err), 0);
    assert_int_equal(ch_context_apply(c, sets, &err), 0);
    assert_ptr_equal(ch_refsets_get(sets, "business_countries", 18), bc);
    assert_false(ch_refset_contains(bc, "GB", 2, 0, NULL));
    assert_true(ch_refset_contains(bc, "DE", 2, 0, NULL));
    assert_int_equal(ch_refset_count(bc), 1);
    ch_refsets_free(sets);
    ch_context_free(c);
}

static void test_pack_defaults_load_with_unauthorized_os_list(void **st)
{
    (void)st;
    if (access(PACK "/context.yaml", R_OK) != 0) /* the pack ships it: a regression, no skip */
        fail_msg("%s/context.yaml cannot be read", PACK);
    ch_context *c = NULL;
    ch_error err = {0};
    assert_int_equal(ch_context_new(&c), 0);
    if (ch_context_load_pack(c, PACK, &err) != 0)
        fail_msg("%s", err.msg);
    assert_true(ch_context_country_count(c) > 0);
    assert_true(ch_context_os_unauthorized(c, "Kali GNU/Linux Rolling", 22));
    assert_true(ch_context_os_unauthorized(c, "Parrot Security 6", 17));
    assert_false(ch_context_os_unauthorized(c, "Amazon Linux 2023", 17));
    ch_context_free(c);
}

/* An image nobody listed is unknown, not unauthorised: only the accounts named by
 * only_listed_images refuse it, and protected resources reach rules as a set. */
static void test_image_allowlist_only_in_named_accounts(void **st)
{
    (void)st;
    ch_context *c = NULL;
    ch_refsets *sets = NULL;
    ch_error err = {0};
    const char *y = "only_listed_images: ['111122223333']\n"
                    "protected_resources: [org-trail, fl-0123456789abcdef0]\n";
    assert_int_equal(ch_context_new(&c), 0);
    assert_int_equal(ch_refsets_new(&sets), 0);
    assert_int_equal(ch_context_load_mem(c, "ctx.yaml", full, strlen(full), &err), 0);
    assert_int_equal(ch_context_apply(c, sets, &err), 0);
    ch_refset *al = ch_refsets_get(sets, "image_allowlist_accounts", 24);
    assert_non_null(al);
    assert_int_equal(ch_refset_count(al), 0); /* not said: no account refuses unknown images */
    assert_int_equal(ch_context_load_mem(c, "user.yaml", y, strlen(y), &err), 0);
    assert_int_equal(ch_context_apply(c, sets, &err), 0);
    assert_true(ch_refset_contains(al, "111122223333", 12, 0, NULL));
    assert_false(ch_refset_contains(al, "444455556666", 12, 0, NULL));
    ch_refset *pr = ch_refsets_get(sets, "protected_resources", 19);
    assert_true(ch_refset_contains(pr, "org-trail", 9, 0, NULL));
    assert_int_equal(ch_context_protected_count(c), 2);
    /* The earlier keys stand (images still decide the OS). */
    assert_true(ch_refset_contains(ch_refsets_get(sets, "unauthorized_images", 19),
                                   "ami-0kali00000000000", 20, 0, NULL));
    const char *bad = "only_listed_images: [prod]\n";
    assert_int_equal(ch_context_load_mem(c, "bad.yaml", bad, strlen(bad), &err), CH_EPARSE);
    assert_non_null(strstr(err.msg, "bad.yaml:1:"));
    assert_non_null(strstr(err.msg, "12 digits"));
    assert_int_equal(ch_context_allowlist_account_count(c), 1);
    ch_refsets_free(sets);
    ch_context_free(c);
}

static void test_missing_file_is_not_found(void **st)
{
    (void)st;
    ch_context *c = NULL;
    ch_error err = {0};
    assert_int_equal(ch_context_new(&c), 0);
    assert_int_equal(ch_context_load_path(c, "/nonexistent/ctx.yaml", &err), CH_ENOTFOUND);
    assert_non_null(strstr(err.msg, "/nonexistent/ctx.yaml"));
    /* A pack folder without defaults is fine. */
    assert_int_equal(ch_context_load_pack(c, "/nonexistent", &err), 0);
    ch_context_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_context_reads_every_key),
        cmocka_unit_test(test_user_file_replaces_only_keys_it_sets),
        cmocka_unit_test(test_mistakes_name_file_line_and_column),
        cmocka_unit_test(test_apply_exposes_lists_as_reference_sets),
        cmocka_unit_test(test_pack_defaults_load_with_unauthorized_os_list),
        cmocka_unit_test(test_missing_file_is_not_found),
        cmocka_unit_test(test_image_allowlist_only_in_named_accounts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
