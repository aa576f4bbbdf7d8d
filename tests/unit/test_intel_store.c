/*
 * test_intel_store.c - reference sets, indicators and TAXII state persisted in SQLite beside the
 * offense store, and STIX versions honoured across runs through the store.
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

#include "intel/intel_store.h"
#include "intel/stix.h"
#include "offense/store.h"

#define NOW 1700000000000LL

static char dbpath[256];

static int setup(void **state)
{
    (void)state;
    snprintf(dbpath, sizeof dbpath, "/tmp/ch_intel_store_%d/x/coinhound.db", (int)getpid());
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf /tmp/ch_intel_store_%d", (int)getpid());
    return system(cmd) == 0 ? 0 : -1;
}

static ch_intel_store *open_db(void)
{
    ch_error err = {0};
    ch_intel_store *s = NULL;
    int rc = ch_intel_store_open(dbpath, &s, &err);
    if (rc < 0)
        print_message("%s\n", err.msg);
    assert_int_equal(rc, 0);
    return s;
}

static void test_sets_and_elements_round_trip_through_the_database(void **state)
{
    (void)state;
    ch_error err = {0};
    ch_intel_store *s = open_db();
    assert_int_equal(ch_intel_store_set_ensure(s, "pools", CH_REFSET_DOMAIN, 0, &err), 0);
    assert_int_equal(ch_intel_store_set_ensure(s, "pools", CH_REFSET_IP, 0, &err), CH_EUSAGE);
    assert_int_equal(ch_intel_store_set_ensure(s, "bad name!", CH_REFSET_IP, 0, &err), CH_EUSAGE);
    ch_refset_meta m = {"feedA", "indicator--1", NOW, NOW, CH_REFSET_ALWAYS, NOW + 1000};
    assert_int_equal(ch_intel_store_elem_put(s, "pools", "supportxmr.com", &m, NOW, &err), 0);
    /* refresh: same key, source and indicator */
    m.last_seen = NOW + 50;
    m.first_seen = NOW + 50;
    assert_int_equal(ch_intel_store_elem_put(s, "pools", "supportxmr.com", &m, NOW, &err), 0);
    ch_refset_meta m2 = ch_refset_meta_make("cli", NOW);
    assert_int_equal(ch_intel_store_elem_put(s, "pools", "minexmr.com", &m2, NOW, &err), 0);
    assert_int_equal(ch_intel_store_elem_put(s, "nosuch", "x.com", &m2, NOW, &err), CH_ENOTFOUND);
    ch_intel_set_info info;
    assert_int_equal(ch_intel_store_set_get(s, "pools", &info, &err), 0);
    assert_int_equal(info.count, 2);
    assert_int_equal(info.type, CH_REFSET_DOMAIN);
    assert_false(info.shareable);
    assert_int_equal(ch_intel_store_set_share(s, "pools", true, &err), 0);
    assert_int_equal(ch_intel_store_set_share(s, "nosuch", true, &err), CH_ENOTFOUND);
    ch_intel_store_close(s);

    s = open_db();
    ch_refsets *r;
    assert_int_equal(ch_refsets_new(&r), 0);
    assert_int_equal(ch_intel_store_load_refsets(s, r, INT64_MIN, &err), 2);
    ch_refset *set = ch_refsets_get(r, "pools", 5);
    assert_non_null(set);
    const ch_refset_elem *e = NULL;
    assert_true(ch_refset_contains_domain(set, "a.pool.supportxmr.com", 21, NOW + 10, &e));
    assert_string_equal(e->source, "feedA");
    assert_string_equal(e->indicator, "indicator--1");
    assert_int_equal(e->first_seen, NOW);
    assert_int_equal(e->last_seen, NOW + 50);
    assert_false(ch_refset_contains_domain(set, "supportxmr.com", 14, NOW + 1000, NULL));
    ch_refsets_free(r);
    /* loading at a time after the expiry leaves the expired element out */
    assert_int_equal(ch_refsets_new(&r), 0);
    assert_int_equal(ch_intel_store_load_refsets(s, r, NOW + 2000, &err), 1);
    ch_refsets_free(r);

    assert_int_equal(ch_intel_store_elem_remove(s, "pools", "minexmr.com", NULL, NULL, &err), 1);
    assert_int_equal(ch_intel_store_elem_remove(s, "pools", "minexmr.com", NULL, NULL, &err),
                     CH_ENOTFOUND);
    assert_int_equal(ch_intel_store_purge_expired(s, NOW + 2000, &err), 1);
    ch_intel_set_info *list = NULL;
    size_t n = 0;
    assert_int_equal(ch_intel_store_set_list(s, &list, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].count, 0);
    assert_true(list[0].shareable);
    free(list);
    assert_int_equal(ch_intel_store_set_drop(s, "pools", &err), 0);
    assert_int_equal(ch_intel_store_set_drop(s, "pools", &err), CH_ENOTFOUND);
    ch_intel_store_close(s);
}

static int count_cb(void *arg, const ch_intel_elem_row *row)
{
    (void)row;
    (*(int *)arg)++;
    return 0;
}

static void test_shareable_elements_page_in_added_order(void **state)
{
    (void)state;
    ch_error err = {0};
    ch_intel_store *s = open_db();
    assert_int_equal(ch_intel_store_set_ensure(s, "pub", CH_REFSET_IP, 0, &err), 0);
    assert_int_equal(ch_intel_store_set_ensure(s, "priv", CH_REFSET_IP, 0, &err), 0);
    assert_int_equal(ch_intel_store_set_share(s, "pub", true, &err), 0);
    ch_refset_meta m = ch_refset_meta_make("x", NOW);
    for (int i = 0; i < 5; i++) {
        char v[32];
        snprintf(v, sizeof v, "192.0.2.%d", i);
        assert_int_equal(ch_intel_store_elem_put(s, "pub", v, &m, NOW + i, &err), 0);
        assert_int_equal(ch_intel_store_elem_put(s, "priv", v, &m, NOW + i, &err), 0);
    }
    int n = 0;
    ch_intel_elem_query q = {NULL, true, true, NOW + 1, 2};
    assert_int_equal(ch_intel_store_each_elem(s, &q, count_cb, &n, &err), 0);
    assert_int_equal(n, 2);
    n = 0;
    q.limit = 0;
    assert_int_equal(ch_intel_store_each_elem(s, &q, count_cb, &n, &err), 0);
    assert_int_equal(n, 3);
    ch_intel_store_close(s);
}

static void test_taxii_state_is_remembered_per_collection(void **state)
{
    (void)state;
    ch_error err = {0};
    ch_intel_store *s = open_db();
    char buf[64];
    assert_int_equal(ch_intel_store_taxii_get(s, "https://t/api1/", "c1", buf, sizeof buf, &err),
                     CH_ENOTFOUND);
    assert_int_equal(
        ch_intel_store_taxii_set(s, "https://t/api1/", "c1", "2024-01-01T00:00:00.123456Z", &err),
        0);
    assert_int_equal(ch_intel_store_taxii_set(s, "https://t/api1/", "c2", "x", &err), 0);
    ch_intel_store_close(s);
    s = open_db();
    assert_int_equal(ch_intel_store_taxii_get(s, "https://t/api1/", "c1", buf, sizeof buf, &err),
                     0);
    assert_string_equal(buf, "2024-01-01T00:00:00.123456Z");
    assert_int_equal(ch_intel_store_taxii_get(s, "https://t/api1/", "c1", buf, 4, &err), CH_ELIMIT);
    ch_intel_store_close(s);
}

static void test_offense_store_and_intel_store_share_one_file(void **state)
{
    (void)state;
    ch_error err = {0};
    ch_intel_store *s = open_db();
    ch_intel_store_close(s);
    ch_store *os = NULL;
    assert_int_equal(ch_store_open(dbpath, &os, &err), 0);
    ch_store_close(os);
    s = open_db();
    ch_intel_store_close(s);
    ch_intel_store *missing = NULL;
    assert_int_equal(ch_intel_store_open_existing("/tmp/does/not/exist.db", &missing, &err),
                     CH_ENOTFOUND);
}

#define IND(id, mod, pat, extra)                                                                   \
    "{\"type\":\"indicator\",\"spec_version\":\"2.1\",\"id\":\"indicator--" id                     \
    "\",\"created\":\"2020-01-01T00:00:00Z\","                                                     \
    "\"modified\":\"" mod "\",\"pattern\":\"" pat "\",\"pattern_type\":\"stix\","                  \
    "\"valid_from\":\"2020-01-01T00:00:00Z\"" extra "}"
#define BUNDLE(objs) "{\"type\":\"bundle\",\"id\":\"bundle--1\",\"objects\":[" objs "]}"
#define ID1 "11111111-1111-4111-8111-111111111111"

/* One "run": a fresh registry and catalog over the same store, as `intel load` does. */
static const ch_stix_stats *run_ingest(ch_intel_store *s, const char *json, ch_stix_stats *out)
{
    ch_error err = {0};
    ch_refsets *r;
    ch_intel_catalog *c;
    ch_stix_ctx *ctx;
    assert_int_equal(ch_refsets_new(&r), 0);
    assert_int_equal(ch_intel_catalog_new(&c), 0);
    ch_stix_opts o = {.feed = "f", .now_ms = NOW};
    assert_int_equal(ch_stix_ctx_new(&ctx, r, c, s, &o, &err), 0);
    int rc = ch_stix_ingest_mem(ctx, json, strlen(json), "t", NULL, &err);
    if (rc < 0)
        print_message("%s\n", err.msg);
    assert_int_equal(rc, 0);
    *out = *ch_stix_ctx_stats(ctx);
    ch_stix_ctx_free(ctx);
    ch_intel_catalog_free(c);
    ch_refsets_free(r);
    return out;
}

static bool stored_has(ch_intel_store *s, const char *set, const char *v)
{
    ch_error err = {0};
    ch_refsets *r;
    assert_int_equal(ch_refsets_new(&r), 0);
    assert_true(ch_intel_store_load_refsets(s, r, INT64_MIN, &err) >= 0);
    ch_refset *x = ch_refsets_get(r, set, strlen(set));
    bool yes = x != NULL && ch_refset_contains(x, v, strlen(v), NOW, NULL);
    ch_refsets_free(r);
    return yes;
}

/* Issue 16 item 9: a version newer by less than a millisecond is a newer version, also when the
 * version held comes from the store (a later run). */
static void
test_versions_differing_below_the_millisecond_are_ordered_through_the_store(void **state)
{
    (void)state;
    ch_intel_store *s = open_db();
    ch_stix_stats st;
    run_ingest(
        s, BUNDLE(IND(ID1, "2020-02-01T00:00:00.123400Z", "[domain-name:value = 'a.example']", "")),
        &st);
    assert_int_equal(st.loaded, 1);
    run_ingest(
        s, BUNDLE(IND(ID1, "2020-02-01T00:00:00.123450Z", "[domain-name:value = 'b.example']", "")),
        &st);
    assert_int_equal(st.replaced, 1);
    assert_true(stored_has(s, "intel_domains", "b.example"));
    assert_false(stored_has(s, "intel_domains", "a.example"));
    /* The same version again, or one older below the millisecond, is ignored. */
    run_ingest(
        s, BUNDLE(IND(ID1, "2020-02-01T00:00:00.12345Z", "[domain-name:value = 'c.example']", "")),
        &st);
    assert_int_equal(st.ignored_older, 1);
    run_ingest(
        s, BUNDLE(IND(ID1, "2020-02-01T00:00:00.1234Z", "[domain-name:value = 'd.example']", "")),
        &st);
    assert_int_equal(st.ignored_older, 1);
    assert_true(stored_has(s, "intel_domains", "b.example"));
    ch_intel_store_close(s);
}

static void test_stix_versions_are_honoured_across_runs_through_the_store(void **state)
{
    (void)state;
    ch_error err = {0};
    ch_intel_store *s = open_db();
    ch_stix_stats st;
    run_ingest(
        s,
        BUNDLE(IND(
            ID1, "2020-02-01T00:00:00Z", "[domain-name:value = 'old.example']",
            ",\"name\":\"n1\",\"confidence\":70,\"created_by_ref\":\"identity--i\"") ","
                                                                                     "{\"type\":"
                                                                                     "\"identity\","
                                                                                     "\"id\":"
                                                                                     "\"identity--"
                                                                                     "i\",\"name\":"
                                                                                     "\"Feed "
                                                                                     "Org\"}"),
        &st);
    assert_int_equal(st.loaded, 1);
    assert_true(stored_has(s, "intel_domains", "old.example"));
    /* the same bundle again changes nothing */
    run_ingest(s,
               BUNDLE(IND(ID1, "2020-02-01T00:00:00Z", "[domain-name:value = 'old.example']", "")),
               &st);
    assert_int_equal(st.ignored_older, 1);
    /* a newer version replaces the stored elements */
    run_ingest(s,
               BUNDLE(IND(ID1, "2020-03-01T00:00:00Z", "[domain-name:value = 'new.example']",
                          ",\"created_by_ref\":\"identity--i\"")),
               &st);
    assert_int_equal(st.replaced, 1);
    assert_false(stored_has(s, "intel_domains", "old.example"));
    assert_true(stored_has(s, "intel_domains", "new.example"));
    /* the catalog reloads with metadata; the creator resolved from an earlier run */
    ch_intel_catalog *c;
    assert_int_equal(ch_intel_catalog_new(&c), 0);
    assert_int_equal(ch_intel_store_load_catalog(s, c, &err), 1);
    const ch_intel_indicator *ind = ch_intel_indicator_lookup(c, "indicator--" ID1, 47);
    assert_non_null(ind);
    assert_string_equal(ind->created_by, "Feed Org");
    assert_string_equal(ind->feed, "f");
    assert_int_equal(ind->elements, 1);
    ch_intel_catalog_free(c);
    /* revocation removes them */
    run_ingest(s,
               BUNDLE(IND(ID1, "2020-04-01T00:00:00Z", "[domain-name:value = 'new.example']",
                          ",\"revoked\":true")),
               &st);
    assert_int_equal(st.revoked, 1);
    assert_false(stored_has(s, "intel_domains", "new.example"));
    int64_t mod;
    bool rev;
    assert_int_equal(ch_intel_store_indicator_version(s, "indicator--" ID1, &mod, NULL, &rev, &err),
                     0);
    assert_true(rev);
    ch_intel_store_close(s);
}

static void test_normalized_values_match_what_sets_store(void **state)
{
    (void)state;
    ch_error err = {0};
    char out[300];
    assert_int_equal(
        ch_intel_normalize_value(CH_REFSET_DOMAIN, "*.Example.COM.", 14, out, sizeof out, &err), 0);
    assert_string_equal(out, "example.com");
    assert_int_equal(
        ch_intel_normalize_value(CH_REFSET_IP, "10.1.2.3/8", 10, out, sizeof out, &err), 0);
    assert_string_equal(out, "10.0.0.0/8");
    assert_int_equal(ch_intel_normalize_value(CH_REFSET_IP, "nope", 4, out, sizeof out, &err),
                     CH_EPARSE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sets_and_elements_round_trip_through_the_database,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_shareable_elements_page_in_added_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_taxii_state_is_remembered_per_collection, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_offense_store_and_intel_store_share_one_file, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_stix_versions_are_honoured_across_runs_through_the_store, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_versions_differing_below_the_millisecond_are_ordered_through_the_store, setup,
            teardown),
        cmocka_unit_test(test_normalized_values_match_what_sets_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
