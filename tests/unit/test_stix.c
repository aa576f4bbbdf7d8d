/*
 * test_stix.c - STIX 2.1 ingestion: patterns compiled to what sets can hold (and nothing wider),
 * versions (newer replaces, older ignored, revoked removes), validity windows at event time,
 * indicator metadata for evidence, and the OASIS examples as fixtures (skipped when the shared
 * corpora are absent).
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

#include "corpora.h"

#include "core/mem.h"
#include "core/timeparse.h"
#include "intel/stix.h"

#define STIX_DOCS CH_CORPORA_DIR "/stix_taxii/cti-documentation/"

/* Skip when the shared corpora folder is absent, fail when path is missing from it. */
#define NEED_FILE(path) ch_test_need_corpora(path)

typedef struct fx {
    ch_refsets *sets;
    ch_intel_catalog *cat;
    ch_stix_ctx *ctx;
} fx;

static void fx_open(fx *f, const ch_stix_opts *o)
{
    ch_error err = {0};
    assert_int_equal(ch_refsets_new(&f->sets), 0);
    assert_int_equal(ch_intel_catalog_new(&f->cat), 0);
    assert_int_equal(ch_stix_ctx_new(&f->ctx, f->sets, f->cat, NULL, o, &err), 0);
}

static void fx_close(fx *f)
{
    ch_stix_ctx_free(f->ctx);
    ch_intel_catalog_free(f->cat);
    ch_refsets_free(f->sets);
}

static int ingest(fx *f, const char *json)
{
    ch_error err = {0};
    int rc = ch_stix_ingest_mem(f->ctx, json, strlen(json), "test", NULL, &err);
    if (rc < 0)
        print_message("ingest: %s\n", err.msg);
    return rc;
}

static int64_t t(const char *iso)
{
    int64_t ms = 0;
    assert_true(ch_time_parse_iso8601(iso, strlen(iso), &ms));
    return ms;
}

static bool has_domain(fx *f, const char *set, const char *d, int64_t at)
{
    ch_refset *s = ch_refsets_get(f->sets, set, strlen(set));
    return s != NULL && ch_refset_contains_domain(s, d, strlen(d), at, NULL);
}

static bool has(fx *f, const char *set, const char *v, int64_t at)
{
    ch_refset *s = ch_refsets_get(f->sets, set, strlen(set));
    return s != NULL && ch_refset_contains(s, v, strlen(v), at, NULL);
}

#define NOW 1700000000000LL

static uint64_t kind_count(const ch_stix_stats *st, const char *kind)
{
    for (uint32_t i = 0; i < st->nkinds; i++)
        if (strcmp(st->kinds[i].kind, kind) == 0)
            return st->kinds[i].count;
    return 0;
}

/* ---- patterns ---- */

static void compile(const char *pat, ch_stix_pattern *p, ch_arena *a, int want_rc)
{
    ch_error err = {0};
    int rc = ch_stix_pattern_compile(pat, strlen(pat), a, p, &err);
    if (rc != want_rc)
        print_message("%s -> %d %s\n", pat, rc, err.msg);
    assert_int_equal(rc, want_rc);
}

static bool pattern_has_kind(const ch_stix_pattern *p, const char *k)
{
    for (uint32_t i = 0; i < p->nkinds; i++)
        if (strcmp(p->kinds[i], k) == 0)
            return true;
    return false;
}

static void test_pattern_or_inside_and_between_brackets_flattens(void **state)
{
    (void)state;
    ch_arena a;
    ch_arena_init(&a, 4096);
    ch_stix_pattern p;
    compile("[domain-name:value = 'a.example' OR ipv4-addr:value = '10.0.0.0/8'] OR "
            "([ipv6-addr:value = '2001:db8::/32'] OR [url:value = 'http://x.example/p'])",
            &p, &a, 0);
    assert_int_equal(p.ncmps, 4);
    assert_int_equal(p.unsupported, 0);
    assert_int_equal(p.cmps[0].obs, CH_STIX_DOMAIN);
    assert_string_equal(p.cmps[0].value, "a.example");
    assert_int_equal(p.cmps[1].obs, CH_STIX_IPV4);
    assert_int_equal(p.cmps[2].obs, CH_STIX_IPV6);
    assert_int_equal(p.cmps[3].obs, CH_STIX_URL);
    ch_arena_free(&a);
}

static void test_pattern_and_is_never_widened(void **state)
{
    (void)state;
    ch_arena a;
    ch_arena_init(&a, 4096);
    ch_stix_pattern p;
    compile("[domain-name:value = 'a.example' AND ipv4-addr:value = '1.2.3.4']", &p, &a, 0);
    assert_int_equal(p.ncmps, 0);
    assert_true(pattern_has_kind(&p, "AND"));
    compile("[domain-name:value = 'a.example'] AND [ipv4-addr:value = '1.2.3.4'] OR "
            "[domain-name:value = 'b.example']",
            &p, &a, 0);
    assert_int_equal(p.ncmps, 1);
    assert_string_equal(p.cmps[0].value, "b.example");
    compile("[domain-name:value = 'a.example'] FOLLOWEDBY [ipv4-addr:value = '1.2.3.4']", &p, &a,
            0);
    assert_int_equal(p.ncmps, 0);
    assert_true(pattern_has_kind(&p, "FOLLOWEDBY"));
    ch_arena_free(&a);
}

static void test_pattern_unsupported_kinds_are_named(void **state)
{
    (void)state;
    ch_arena a;
    ch_arena_init(&a, 4096);
    ch_stix_pattern p;
    compile(
        "[file:hashes.'SHA-256' = 'ef53'] OR [domain-name:value != 'x.example'] OR "
        "[domain-name:value LIKE '%.example'] OR [email-message:from_ref.value MATCHES '.+'] OR "
        "[x509-certificate:issuer = 'CN=X'] OR [domain-name:value = 'ok.example']",
        &p, &a, 0);
    assert_int_equal(p.ncmps, 1);
    assert_int_equal(p.unsupported, 5);
    assert_true(pattern_has_kind(&p, "file:hashes"));
    assert_true(pattern_has_kind(&p, "!="));
    assert_true(pattern_has_kind(&p, "LIKE"));
    assert_true(pattern_has_kind(&p, "MATCHES"));
    assert_true(pattern_has_kind(&p, "x509-certificate:issuer"));
    compile("[domain-name:value = 'a.example'] REPEATS 5 TIMES", &p, &a, 0);
    assert_int_equal(p.ncmps, 0);
    assert_true(pattern_has_kind(&p, "REPEATS"));
    compile("[ipv4-addr:value = '1.2.3.4'] WITHIN 300 SECONDS", &p, &a, 0);
    assert_int_equal(p.ncmps, 0);
    compile("[ipv4-addr:value = '1.2.3.4'] START t'2016-06-01T00:00:00Z' STOP "
            "t'2016-07-01T00:00:00Z'",
            &p, &a, 0);
    assert_int_equal(p.ncmps, 0);
    ch_arena_free(&a);
}

static void test_pattern_in_and_issubset_are_equalities_and_cidrs(void **state)
{
    (void)state;
    ch_arena a;
    ch_arena_init(&a, 4096);
    ch_stix_pattern p;
    compile("[domain-name:value IN ('a.example', 'b.example')]", &p, &a, 0);
    assert_int_equal(p.ncmps, 2);
    compile("[ipv4-addr:value ISSUBSET '198.51.100.0/24']", &p, &a, 0);
    assert_int_equal(p.ncmps, 1);
    assert_string_equal(p.cmps[0].value, "198.51.100.0/24");
    compile("[domain-name:value NOT IN ('a.example')]", &p, &a, 0);
    assert_int_equal(p.ncmps, 0);
    compile("[url:value = 'http://x/it\\'s']", &p, &a, 0);
    assert_string_equal(p.cmps[0].value, "http://x/it's");
    ch_arena_free(&a);
}

static void test_pattern_syntax_errors_are_rejected(void **state)
{
    (void)state;
    ch_arena a;
    ch_arena_init(&a, 4096);
    ch_stix_pattern p;
    compile("[domain-name:value = 'a.example'", &p, &a, CH_EPARSE);
    compile("domain-name:value = 'a'", &p, &a, CH_EPARSE);
    compile("[domain-name:value = 'unterminated]", &p, &a, CH_EPARSE);
    compile("[domain-name:value = 'a'] junk", &p, &a, CH_EPARSE);
    compile("[domain-name:value ~ 'a']", &p, &a, CH_EPARSE);
    compile("", &p, &a, CH_EPARSE);
    char deep[400];
    memset(deep, '(', 200);
    strcpy(deep + 200, "[domain-name:value = 'a']");
    compile(deep, &p, &a, CH_ELIMIT);
    ch_arena_free(&a);
}

/* ---- ingestion ---- */

#define IND(id, mod, pat, extra)                                                                   \
    "{\"type\":\"indicator\",\"spec_version\":\"2.1\",\"id\":\"indicator--" id "\","               \
    "\"created\":\"2020-01-01T00:00:00Z\",\"modified\":\"" mod "\",\"pattern\":\"" pat "\","       \
    "\"pattern_type\":\"stix\",\"valid_from\":\"2020-01-01T00:00:00Z\"" extra "}"

#define BUNDLE(objs) "{\"type\":\"bundle\",\"id\":\"bundle--1\",\"objects\":[" objs "]}"

#define ID1 "11111111-1111-4111-8111-111111111111"
#define ID2 "22222222-2222-4222-8222-222222222222"

static void test_indicator_metadata_travels_with_the_element(void **state)
{
    (void)state;
    fx f;
    ch_stix_opts o = {.feed = "feedA", .now_ms = NOW};
    fx_open(&f, &o);
    assert_int_equal(
        ingest(&f,
               BUNDLE(IND(
                   ID1, "2020-01-01T00:00:00Z", "[domain-name:value = 'pool.supportxmr.com']",
                   ",\"name\":\"XMR pool\",\"indicator_types\":[\"malicious-activity\","
                   "\"attribution\"],\"labels\":[\"mining\"],\"confidence\":85,"
                   "\"created_by_ref\":\"identity--aaaa\"") ","
                                                            "{\"type\":\"identity\",\"id\":"
                                                            "\"identity--aaaa\",\"name\":\"ACME "
                                                            "CERT\",\"identity_class\":"
                                                            "\"organization\"}")),
        0);
    ch_refset *s = ch_refsets_get(f.sets, "intel_domains", 13);
    assert_non_null(s);
    const ch_refset_elem *e = NULL;
    assert_true(ch_refset_contains_domain(s, "a.pool.supportxmr.com", 21, NOW, &e));
    assert_string_equal(e->source, "feedA");
    assert_string_equal(e->indicator, "indicator--" ID1);
    const ch_intel_indicator *ind =
        ch_intel_indicator_lookup(f.cat, e->indicator, strlen(e->indicator));
    assert_non_null(ind);
    assert_string_equal(ind->name, "XMR pool");
    assert_string_equal(ind->types, "malicious-activity,attribution");
    assert_string_equal(ind->labels, "mining");
    assert_int_equal(ind->confidence, 85);
    assert_string_equal(ind->created_by, "ACME CERT");
    assert_string_equal(ind->feed, "feedA");
    assert_int_equal(ch_stix_ctx_stats(f.ctx)->loaded, 1);
    fx_close(&f);
}

static void test_url_goes_to_url_set_only_never_its_host(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, NULL);
    assert_int_equal(ingest(&f, BUNDLE(IND(ID1, "2020-01-01T00:00:00Z",
                                           "[url:value = 'http://user@Evil.Example:8080/x?y'] OR "
                                           "[url:value = 'https://[2001:db8::1]/a'] OR "
                                           "[url:value = 'http://198.51.100.7/b']",
                                           ""))),
                     0);
    assert_true(has(&f, "intel_urls", "http://user@Evil.Example:8080/x?y", NOW));
    assert_true(has(&f, "intel_urls", "http://198.51.100.7/b", NOW));
    /* The hosts would flag every other resource they serve. */
    assert_false(has_domain(&f, "intel_domains", "evil.example", NOW));
    assert_false(has(&f, "intel_ips", "2001:db8::1", NOW));
    assert_false(has(&f, "intel_ips", "198.51.100.7", NOW));
    assert_int_equal(ch_stix_ctx_stats(f.ctx)->url_only, 3);
    assert_int_equal(ch_stix_ctx_stats(f.ctx)->loaded, 1);
    fx_close(&f);
}

static void test_target_set_names_are_configurable(void **state)
{
    (void)state;
    fx f;
    ch_stix_opts o = {.domain_set = "mine_d", .ip_set = "mine_ip", .url_set = "mine_u"};
    fx_open(&f, &o);
    assert_int_equal(ingest(&f, BUNDLE(IND(ID1, "2020-01-01T00:00:00Z",
                                           "[domain-name:value = 'a.example' OR "
                                           "ipv4-addr:value = '203.0.113.0/24']",
                                           ""))),
                     0);
    assert_true(has_domain(&f, "mine_d", "a.example", NOW));
    assert_true(has(&f, "mine_ip", "203.0.113.9", NOW));
    assert_null(ch_refsets_get(f.sets, "intel_domains", 13));
    fx_close(&f);
}

static void test_validity_window_is_honoured_at_event_time(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, NULL);
    assert_int_equal(
        ingest(&f, BUNDLE(IND(ID1, "2020-01-01T00:00:00Z", "[ipv4-addr:value = '192.0.2.1']",
                              ",\"valid_until\":\"2020-06-01T00:00:00Z\""))),
        0);
    assert_false(has(&f, "intel_ips", "192.0.2.1", t("2019-12-31T23:59:59Z")));
    assert_true(has(&f, "intel_ips", "192.0.2.1", t("2020-01-01T00:00:00Z")));
    assert_true(has(&f, "intel_ips", "192.0.2.1", t("2020-05-31T23:59:59Z")));
    assert_false(has(&f, "intel_ips", "192.0.2.1", t("2020-06-01T00:00:00Z")));
    fx_close(&f);
}

static void test_newer_modified_replaces_and_older_is_ignored(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, NULL);
    assert_int_equal(ingest(&f, BUNDLE(IND(ID1, "2020-02-01T00:00:00Z",
                                           "[domain-name:value = 'old.example']", ""))),
                     0);
    assert_int_equal(ingest(&f, BUNDLE(IND(ID1, "2020-03-01T00:00:00Z",
                                           "[domain-name:value = 'new.example']", ""))),
                     0);
    assert_false(has_domain(&f, "intel_domains", "old.example", NOW));
    assert_true(has_domain(&f, "intel_domains", "new.example", NOW));
    /* an older version arriving late changes nothing */
    assert_int_equal(ingest(&f, BUNDLE(IND(ID1, "2020-02-15T00:00:00Z",
                                           "[domain-name:value = 'stale.example']", ""))),
                     0);
    assert_false(has_domain(&f, "intel_domains", "stale.example", NOW));
    assert_true(has_domain(&f, "intel_domains", "new.example", NOW));
    const ch_stix_stats *st = ch_stix_ctx_stats(f.ctx);
    assert_int_equal(st->replaced, 1);
    assert_int_equal(st->ignored_older, 1);
    fx_close(&f);
}

/* Issue 16 item 9, in memory: 2020-03-01T00:00:00.0001Z is newer than ...00.000Z. */
static void test_newer_by_less_than_a_millisecond_replaces(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, NULL);
    assert_int_equal(ingest(&f, BUNDLE(IND(ID1, "2020-03-01T00:00:00.000Z",
                                           "[domain-name:value = 'old.example']", ""))),
                     0);
    assert_int_equal(ingest(&f, BUNDLE(IND(ID1, "2020-03-01T00:00:00.0001Z",
                                           "[domain-name:value = 'new.example']", ""))),
                     0);
    assert_false(has_domain(&f, "intel_domains", "old.example", NOW));
    assert_true(has_domain(&f, "intel_domains", "new.example", NOW));
    assert_int_equal(ch_stix_ctx_stats(f.ctx)->replaced, 1);
    fx_close(&f);
}

static void test_revoked_removes_every_element_the_indicator_contributed(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, NULL);
    assert_int_equal(ingest(&f, BUNDLE(IND(ID1, "2020-02-01T00:00:00Z",
                                           "[domain-name:value = 'a.example' OR ipv4-addr:value = "
                                           "'192.0.2.1'] OR [url:value = 'http://b.example/x']",
                                           "") "," IND(ID2, "2020-02-01T00:00:00Z",
                                                       "[domain-name:value = 'a.example']", ""))),
                     0);
    assert_int_equal(
        ingest(&f, BUNDLE(IND(ID1, "2020-03-01T00:00:00Z", "[domain-name:value = 'a.example']",
                              ",\"revoked\":true"))),
        0);
    assert_false(has(&f, "intel_ips", "192.0.2.1", NOW));
    assert_false(has(&f, "intel_urls", "http://b.example/x", NOW));
    assert_false(has_domain(&f, "intel_domains", "b.example", NOW));
    /* a.example is still listed by the other indicator */
    const ch_refset_elem *e = NULL;
    ch_refset *s = ch_refsets_get(f.sets, "intel_domains", 13);
    assert_true(ch_refset_contains_domain(s, "a.example", 9, NOW, &e));
    assert_string_equal(e->indicator, "indicator--" ID2);
    /* a revoked indicator stays revoked */
    assert_int_equal(
        ingest(&f, BUNDLE(IND(ID1, "2020-04-01T00:00:00Z", "[ipv4-addr:value = '192.0.2.1']", ""))),
        0);
    assert_false(has(&f, "intel_ips", "192.0.2.1", NOW));
    assert_true(ch_intel_indicator_lookup(f.cat, "indicator--" ID1, 47)->revoked);
    assert_int_equal(ch_stix_ctx_stats(f.ctx)->revoked, 1);
    fx_close(&f);
}

static void test_bad_patterns_and_values_are_counted_and_skipped(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, NULL);
    assert_int_equal(ingest(&f, BUNDLE(IND(ID1, "2020-01-01T00:00:00Z", "[domain-name:value = ",
                                           "") "," IND(ID2, "2020-01-01T00:00:00Z",
                                                       "[domain-name:value = 'bad domain' OR "
                                                       "domain-name:value = 'good.example']",
                                                       "") ",42,"
                                                           "{\"type\":\"indicator\"}")),
                     0);
    const ch_stix_stats *st = ch_stix_ctx_stats(f.ctx);
    assert_true(has_domain(&f, "intel_domains", "good.example", NOW));
    assert_int_equal(st->bad, 4); /* pattern, value, non-object, missing id */
    assert_int_equal(kind_count(st, "bad_value"), 1);
    assert_int_equal(st->loaded, 1);
    fx_close(&f);
}

static void test_not_a_bundle_is_a_parse_error(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, NULL);
    assert_int_equal(ingest(&f, "[1,2]"), CH_EPARSE);
    assert_int_equal(ingest(&f, "{\"type\":\"report\"}"), CH_EPARSE);
    assert_int_equal(ingest(&f, "{not json"), CH_EPARSE);
    assert_true(ch_stix_looks_like_bundle(" {\"type\" : \"bundle\", \"id\":\"x\"}", 32));
    assert_false(ch_stix_looks_like_bundle("||coinhive.com^\n", 16));
    assert_false(ch_stix_looks_like_bundle("0.0.0.0 a.example\n", 18));
    fx_close(&f);
}

/* An indicator object with the given members after type (for objects IND cannot make). */
#define RAW(members) "{\"type\":\"indicator\"," members "}"
#define GOOD_TIMES                                                                                 \
    "\"created\":\"2020-01-01T00:00:00Z\",\"modified\":\"2020-01-01T00:00:00Z\","                  \
    "\"pattern_type\":\"stix\",\"valid_from\":\"2020-01-01T00:00:00Z\""

/* Issue 16 item 8: what is not what it claims is refused, with a reason and a count, instead of
 * being loaded (or widened: an IPv6 address among IPv4 ones, *.example.org as example.org). */
static void test_malformed_indicators_and_values_are_refused_with_reasons(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, NULL);
    assert_int_equal(
        ingest(
            &f,
            BUNDLE(RAW(
                "\"spec_version\":\"2.1\",\"id\":\"indicator--" ID1 "\","
                "\"created\":\"2020-01-01T00:00:00Z\",\"pattern_type\":"
                "\"stix\","
                "\"pattern\":\"[domain-name:value = "
                "'no-valid-from.example']\"") "," RAW("\"id\":\"indicator-"
                                                      "-" ID2 "\"," GOOD_TIMES ","
                                                      "\"pattern\":\"["
                                                      "domain-name:value = "
                                                      "'no-spec.example']"
                                                      "\"") "," RAW("\"spec"
                                                                    "_versi"
                                                                    "on\":"
                                                                    "\"2."
                                                                    "1\","
                                                                    "\"id\""
                                                                    ":\"ind"
                                                                    "icator"
                                                                    "--"
                                                                    "1\""
                                                                    "," GOOD_TIMES ","
                                                                    "\"patt"
                                                                    "ern\":"
                                                                    "\"["
                                                                    "domain"
                                                                    "-name:"
                                                                    "value "
                                                                    "= "
                                                                    "'bad-"
                                                                    "id."
                                                                    "exampl"
                                                                    "e']\"") "," RAW("\"spec_"
                                                                                     "version\":"
                                                                                     "\"2.1\","
                                                                                     "\"id\":"
                                                                                     "\"indicato"
                                                                                     "r--"
                                                                                     "33333333-"
                                                                                     "3333-4333-"
                                                                                     "8333-"
                                                                                     "3333333333"
                                                                                     "33\","
                                                                                     "\"created"
                                                                                     "\":\"2020-"
                                                                                     "01-01T00:"
                                                                                     "00:00Z\","
                                                                                     "\"modified"
                                                                                     "\":"
                                                                                     "\"yesterda"
                                                                                     "y\","
                                                                                     "\"pattern_"
                                                                                     "type\":"
                                                                                     "\"stix\","
                                                                                     "\"valid_"
                                                                                     "from\":"
                                                                                     "\"2020-01-"
                                                                                     "01T00:00:"
                                                                                     "00Z\","
                                                                                     "\"pattern"
                                                                                     "\":\"["
                                                                                     "domain-"
                                                                                     "name:"
                                                                                     "value = "
                                                                                     "'yesterday"
                                                                                     ".example']"
                                                                                     "\"") "," IND("44444444-4444-4444-8444-444444444444",
                                                                                                   "2020-01-01T00:00:00Z",
                                                                                                   "[ipv4-addr:value = '2001:db8::1'] OR "
                                                                                                   "[domain-name:value = '198.51.100.9'] OR "
                                                                                                   "[domain-name:value = '*.example.org'] OR "
                                                                                                   "[ipv4-addr:value = '0.0.0.0/0'] OR [ipv6-addr:value = '::/0'] OR "
                                                                                                   "[domain-name:value = 'kept.example']",
                                                                                                   ""))),
        0);
    const ch_stix_stats *st = ch_stix_ctx_stats(f.ctx);
    assert_int_equal(st->refused[CH_STIX_REFUSE_NO_VALID_FROM], 1);
    assert_int_equal(st->refused[CH_STIX_REFUSE_NO_SPEC_VERSION], 1);
    assert_int_equal(st->refused[CH_STIX_REFUSE_BAD_ID], 1);
    assert_int_equal(st->refused[CH_STIX_REFUSE_BAD_TIME], 1);
    assert_int_equal(st->refused[CH_STIX_REFUSE_ADDR_FAMILY], 1);
    assert_int_equal(st->refused[CH_STIX_REFUSE_ADDR_AS_DOMAIN], 1);
    assert_int_equal(st->refused[CH_STIX_REFUSE_WILDCARD], 1);
    assert_int_equal(st->refused[CH_STIX_REFUSE_CATCH_ALL], 2);
    assert_string_equal(ch_stix_refusal_name(CH_STIX_REFUSE_WILDCARD), "wildcard domain");
    assert_int_equal(st->loaded, 1); /* the last one, with kept.example only */
    assert_true(has_domain(&f, "intel_domains", "kept.example", NOW));
    assert_false(has_domain(&f, "intel_domains", "no-valid-from.example", NOW));
    assert_false(has_domain(&f, "intel_domains", "no-spec.example", NOW));
    assert_false(has_domain(&f, "intel_domains", "bad-id.example", NOW));
    assert_false(has_domain(&f, "intel_domains", "yesterday.example", NOW));
    assert_false(has_domain(&f, "intel_domains", "example.org", NOW));
    assert_false(has(&f, "intel_ips", "2001:db8::1", NOW));
    assert_false(has(&f, "intel_ips", "192.0.2.1", NOW));
    assert_false(has(&f, "intel_ips", "2001:db8::2", NOW));
    fx_close(&f);

    /* A catch-all network only with the explicit flag. */
    ch_stix_opts o = {.allow_catch_all = true};
    fx_open(&f, &o);
    assert_int_equal(
        ingest(&f, BUNDLE(IND(ID1, "2020-01-01T00:00:00Z", "[ipv4-addr:value = '0.0.0.0/0']", ""))),
        0);
    assert_true(has(&f, "intel_ips", "192.0.2.1", NOW));
    assert_int_equal(ch_stix_ctx_stats(f.ctx)->refused[CH_STIX_REFUSE_CATCH_ALL], 0);
    fx_close(&f);
}

/* Issue 16 item 10: a file holding one STIX object is STIX, not a block list. */
static void test_one_stix_object_alone_is_loaded_as_stix(void **state)
{
    (void)state;
    const char *one =
        " \n" IND(ID1, "2020-01-01T00:00:00Z", "[domain-name:value = 'pool.minexmr.com']", "");
    assert_true(ch_stix_looks_like_bundle(one, strlen(one)));
    fx f;
    fx_open(&f, NULL);
    assert_int_equal(ingest(&f, one), 0);
    assert_int_equal(ch_stix_ctx_stats(f.ctx)->loaded, 1);
    assert_true(has_domain(&f, "intel_domains", "pool.minexmr.com", NOW));
    fx_close(&f);
}

static void test_element_written_as_stix_has_a_stable_id_and_round_trips(void **state)
{
    (void)state;
    ch_buf b;
    ch_buf_init(&b, 1 << 20);
    ch_refset_meta m = {"feedA", "indicator--x", NOW, NOW, CH_REFSET_ALWAYS, NOW + 86400000};
    assert_int_equal(ch_stix_write_element(&b, "bl", CH_REFSET_DOMAIN, "it's.example", &m, NOW), 0);
    char id1[48], id2[48];
    ch_stix_element_id("bl", "it's.example", id1);
    ch_stix_element_id("bl", "it's.example", id2);
    assert_string_equal(id1, id2);
    assert_non_null(strstr(b.data, id1));
    assert_int_equal(id1[11 + 14], '5'); /* UUID version 5 */
    assert_int_equal(ch_stix_write_element(&b, "n", CH_REFSET_NUMBER, "3333", &m, NOW), CH_EUSAGE);
    assert_int_equal(ch_stix_write_element(&b, "s", CH_REFSET_STRING, "not a url", &m, NOW),
                     CH_EUSAGE);
    /* the indicator parses back into the same value */
    char bundle[4096];
    snprintf(bundle, sizeof bundle, "{\"type\":\"bundle\",\"objects\":[%s]}", b.data);
    fx f;
    fx_open(&f, NULL);
    assert_int_equal(ingest(&f, bundle), 0);
    assert_int_equal(ch_stix_ctx_stats(f.ctx)->bad, 1); /* "it's.example" is no domain */
    ch_buf_clear(&b);
    assert_int_equal(ch_stix_write_element(&b, "bl", CH_REFSET_IP, "10.0.0.0/8", &m, NOW), 0);
    snprintf(bundle, sizeof bundle, "{\"type\":\"bundle\",\"objects\":[%s]}", b.data);
    assert_int_equal(ingest(&f, bundle), 0);
    assert_true(has(&f, "intel_ips", "10.9.9.9", NOW));
    assert_false(has(&f, "intel_ips", "10.9.9.9", NOW + 86400000));
    fx_close(&f);
    ch_buf_free(&b);
}

/* ---- OASIS fixtures ---- */

static void load_file(fx *f, const char *path)
{
    ch_error err = {0};
    int rc = ch_stix_ingest_path(f->ctx, path, 0, NULL, &err);
    if (rc < 0)
        print_message("%s: %s\n", path, err.msg);
    assert_int_equal(rc, 0);
}

static void test_poisonivy_loads_domains_and_addresses_including_compound_or(void **state)
{
    (void)state;
    NEED_FILE(STIX_DOCS "poisonivy.json");
    fx f;
    fx_open(&f, NULL);
    load_file(&f, STIX_DOCS "poisonivy.json");
    const ch_stix_stats *st = ch_stix_ctx_stats(f.ctx);
    assert_int_equal(st->indicators, 25);
    assert_int_equal(st->loaded, 23);
    assert_int_equal(st->unsupported, 2); /* file:name */
    assert_int_equal(kind_count(st, "file:name"), 2);
    assert_int_equal(kind_count(st, "bad_value"), 1); /* 'domain autuo.xicp.net' */
    assert_true(has_domain(&f, "intel_domains", "www.webserver.dynssl.com", NOW));
    assert_true(has_domain(&f, "intel_domains", "x.microsoftc.byinter.net", NOW));
    assert_true(has(&f, "intel_ips", "219.76.208.163", NOW));
    assert_true(has(&f, "intel_ips", "98.126.148.114", NOW));
    /* valid_from 2015-05-15: not before */
    assert_false(has(&f, "intel_ips", "219.76.208.163", t("2015-01-01T00:00:00Z")));
    assert_int_equal(ch_intel_catalog_count(f.cat), 25);
    fx_close(&f);
}

static void test_apt1_counts_hashes_and_x509_as_unsupported(void **state)
{
    (void)state;
    NEED_FILE(STIX_DOCS "apt1.json");
    fx f;
    fx_open(&f, NULL);
    load_file(&f, STIX_DOCS "apt1.json");
    const ch_stix_stats *st = ch_stix_ctx_stats(f.ctx);
    assert_int_equal(st->indicators, 12);
    assert_int_equal(st->loaded, 7);
    assert_int_equal(st->unsupported, 5);
    assert_int_equal(kind_count(st, "file:hashes"), 3);
    assert_int_equal(kind_count(st, "AND"), 2);
    assert_true(has(&f, "intel_ips", "223.167.1.1", NOW)); /* 223.166.0.0/15 */
    assert_true(has_domain(&f, "intel_domains", "hugesoft.org", NOW));
    fx_close(&f);
}

static void test_malicious_url_and_sighting_bundles(void **state)
{
    (void)state;
    NEED_FILE(STIX_DOCS "indicator-for-malicious-url.json");
    NEED_FILE(STIX_DOCS "sighting-of-an-indicator.json");
    fx f;
    fx_open(&f, NULL);
    load_file(&f, STIX_DOCS "indicator-for-malicious-url.json");
    load_file(&f, STIX_DOCS "sighting-of-an-indicator.json");
    assert_true(has(&f, "intel_urls", "http://x4z9arb.cn/4712/", NOW));
    assert_false(has_domain(&f, "intel_domains", "x4z9arb.cn", NOW)); /* the URL only */
    assert_true(has(&f, "intel_urls", "http://paypa1.banking.com", NOW));
    /* the sighting bundle's creator is resolved by name */
    size_t cur = 0;
    const ch_intel_indicator *ind;
    bool named = false;
    while ((ind = ch_intel_catalog_next(f.cat, &cur)) != NULL)
        if (strstr(ind->pattern, "paypa1") != NULL)
            named = ind->created_by[0] != '\0';
    assert_true(named);
    fx_close(&f);
}

static void test_marking_and_granular_marking_bundles(void **state)
{
    (void)state;
    NEED_FILE(STIX_DOCS "using-marking-definitions.json");
    fx f;
    fx_open(&f, NULL);
    load_file(&f, STIX_DOCS "using-marking-definitions.json");
    load_file(&f, STIX_DOCS "using-granular-markings.json");
    assert_true(has(&f, "intel_ips", "10.0.0.0", NOW));
    assert_int_equal(kind_count(ch_stix_ctx_stats(f.ctx), "MATCHES"), 1);
    fx_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pattern_or_inside_and_between_brackets_flattens),
        cmocka_unit_test(test_pattern_and_is_never_widened),
        cmocka_unit_test(test_pattern_unsupported_kinds_are_named),
        cmocka_unit_test(test_pattern_in_and_issubset_are_equalities_and_cidrs),
        cmocka_unit_test(test_pattern_syntax_errors_are_rejected),
        cmocka_unit_test(test_indicator_metadata_travels_with_the_element),
        cmocka_unit_test(test_url_goes_to_url_set_only_never_its_host),
        cmocka_unit_test(test_target_set_names_are_configurable),
        cmocka_unit_test(test_validity_window_is_honoured_at_event_time),
        cmocka_unit_test(test_newer_modified_replaces_and_older_is_ignored),
        cmocka_unit_test(test_newer_by_less_than_a_millisecond_replaces),
        cmocka_unit_test(test_revoked_removes_every_element_the_indicator_contributed),
        cmocka_unit_test(test_bad_patterns_and_values_are_counted_and_skipped),
        cmocka_unit_test(test_not_a_bundle_is_a_parse_error),
        cmocka_unit_test(test_malformed_indicators_and_values_are_refused_with_reasons),
        cmocka_unit_test(test_one_stix_object_alone_is_loaded_as_stix),
        cmocka_unit_test(test_element_written_as_stix_has_a_stable_id_and_round_trips),
        cmocka_unit_test(test_poisonivy_loads_domains_and_addresses_including_compound_or),
        cmocka_unit_test(test_apt1_counts_hashes_and_x509_as_unsupported),
        cmocka_unit_test(test_malicious_url_and_sighting_bundles),
        cmocka_unit_test(test_marking_and_granular_marking_bundles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
