/*
 * test_geoip.c - GeoIP enrichment against MaxMind's test databases (../shared/corpora/maxmind)
 * and, when `scripts/install-geoip` has run, the installed country database.
 *
 * Expected answers come from the databases' source JSON (maxmind/source-data); tests that need
 * a corpora database skip when the corpora folder is absent and fail when it is there without
 * the database (corpora.h); the installed database is a prerequisite and its absence fails. Corrupt
 * databases from maxmind/bad-data must fail at open with a message naming the file, or, for the
 * ones libmaxminddb only notices later, answer lookups with an empty, counted result: never crash
 * (the suite also runs under ASan+UBSan).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "corpora.h"

#include "core/mem.h"
#include "enrich/geoip.h"
#include "enrich/mmdb_write.h"

#define TEST_DATA CH_CORPORA_DIR "/maxmind/test-data/"
#define BAD_DATA CH_CORPORA_DIR "/maxmind/bad-data/"
#define CITY TEST_DATA "GeoIP2-City-Test.mmdb"
#define COUNTRY TEST_DATA "GeoLite2-Country-Test.mmdb"
#define ASN TEST_DATA "GeoLite2-ASN-Test.mmdb"
#define IPV4_ONLY TEST_DATA "MaxMind-DB-test-ipv4-24.mmdb"
#define INSTALLED CH_SOURCE_DIR "/data/geoip/country.mmdb"

/* Corpora databases: skip the calling test when the shared corpora folder is absent, fail
 * when one of them is missing from it (corpora.h). */
#define REQUIRE(...)                                                                               \
    do {                                                                                           \
        const char *const req_[] = {__VA_ARGS__};                                                  \
        for (size_t i_ = 0; i_ < sizeof req_ / sizeof req_[0]; i_++)                               \
            ch_test_need_corpora(req_[i_]);                                                        \
    } while (0)

static ch_ip ip(const char *s)
{
    ch_ip a;
    assert_true(ch_ip_parse(s, strlen(s), &a));
    return a;
}

static ch_geoip *open_dbs(const char *const *paths, size_t n, size_t cache_entries)
{
    ch_geoip *g = NULL;
    ch_error err = {0};
    ch_geoip_opts opts = {.cache_entries = cache_entries};
    int rc = ch_geoip_open_ex(&g, paths, n, &opts, &err);
    if (rc != 0)
        fail_msg("open failed: %s", err.msg);
    assert_non_null(g);
    return g;
}

static ch_geoip *open1(const char *path)
{
    const char *paths[] = {path};
    return open_dbs(paths, 1, CH_GEOIP_CACHE_DEFAULT);
}

static ch_geo look(ch_geoip *g, const char *addr)
{
    ch_geo geo;
    ch_ip a = ip(addr);
    ch_geoip_lookup(g, &a, &geo);
    return geo;
}

static void assert_sv(ch_sv sv, const char *want)
{
    size_t n = strlen(want);
    if (!ch_sv_eq(sv, want, n))
        fail_msg("got \"%.*s\", want \"%s\"", (int)sv.n, sv.p ? sv.p : "", want);
}

/* Same answer, compared by content: two handles map the same file at different addresses. */
static void assert_geo_equal(const ch_geo *a, const ch_geo *b)
{
    assert_int_equal(a->looked_up, b->looked_up);
    assert_int_equal(a->internal, b->internal);
    assert_string_equal(a->country, b->country);
    assert_int_equal(a->asn, b->asn);
    const ch_sv *sa[] = {&a->as_org, &a->city, &a->country_name};
    const ch_sv *sb[] = {&b->as_org, &b->city, &b->country_name};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(sa[i]->n, sb[i]->n);
        if (sa[i]->n)
            assert_memory_equal(sa[i]->p, sb[i]->p, sa[i]->n);
    }
}

static void test_city_db_maps_81_2_69_142_to_gb_london(void **state)
{
    (void)state;
    REQUIRE(CITY);
    ch_geoip *g = open1(CITY);
    ch_geo geo = look(g, "81.2.69.142");
    assert_true(geo.looked_up);
    assert_false(geo.internal);
    assert_string_equal(geo.country, "GB");
    assert_sv(geo.city, "London");
    assert_sv(geo.country_name, "United Kingdom");
    assert_int_equal(geo.asn, 0);
    assert_int_equal(geo.as_org.n, 0);
    ch_geoip_close(g);
}

static void test_city_db_maps_whole_175_16_199_0_24_to_cn(void **state)
{
    (void)state;
    REQUIRE(CITY);
    ch_geoip *g = open1(CITY);
    const char *addrs[] = {"175.16.199.0", "175.16.199.1", "175.16.199.128", "175.16.199.255"};
    for (size_t i = 0; i < 4; i++) {
        ch_geo geo = look(g, addrs[i]);
        assert_string_equal(geo.country, "CN");
        assert_sv(geo.city, "Changchun");
    }
    /* Just outside the /24: not in the test database. */
    ch_geo out = look(g, "175.16.200.0");
    assert_true(out.looked_up);
    assert_string_equal(out.country, "");
    ch_geoip_close(g);
}

static void test_city_db_maps_216_160_83_56_to_us(void **state)
{
    (void)state;
    REQUIRE(CITY);
    ch_geoip *g = open1(CITY);
    ch_geo geo = look(g, "216.160.83.56");
    assert_string_equal(geo.country, "US");
    assert_sv(geo.city, "Milton");
    assert_sv(geo.country_name, "United States");
    ch_geoip_close(g);
}

static void test_asn_db_gives_number_and_organisation(void **state)
{
    (void)state;
    REQUIRE(ASN);
    ch_geoip *g = open1(ASN);
    ch_geo geo = look(g, "1.128.0.1");
    assert_int_equal(geo.asn, 1221);
    assert_sv(geo.as_org, "Telstra Pty Ltd");
    assert_string_equal(geo.country, "");
    geo = look(g, "89.160.20.112");
    assert_int_equal(geo.asn, 29518);
    assert_sv(geo.as_org, "Bredband2 AB");
    /* 12.81.96.0/19 has a number and no organisation in the source data. */
    geo = look(g, "12.81.96.1");
    assert_int_equal(geo.asn, 7018);
    assert_int_equal(geo.as_org.n, 0);
    ch_geoip_close(g);
}

static void test_three_dbs_merge_country_city_and_asn(void **state)
{
    (void)state;
    REQUIRE(COUNTRY, ASN, CITY);
    const char *paths[] = {COUNTRY, ASN, CITY};
    ch_geoip *g = open_dbs(paths, 3, CH_GEOIP_CACHE_DEFAULT);
    assert_int_equal(ch_geoip_db_count(g), 3);
    assert_string_equal(ch_geoip_db_type(g, 0), "GeoLite2-Country");
    assert_string_equal(ch_geoip_db_type(g, 2), "GeoIP2-City");

    ch_geo geo = look(g, "89.160.20.112");
    assert_string_equal(geo.country, "SE");  /* GeoLite2-Country */
    assert_sv(geo.country_name, "Sweden");   /* same database as the country */
    assert_sv(geo.city, "Link\xc3\xb6ping"); /* GeoIP2-City */
    assert_int_equal(geo.asn, 29518);        /* GeoLite2-ASN */
    assert_sv(geo.as_org, "Bredband2 AB");

    /* Country only in the City database: still found, from the third database. */
    geo = look(g, "175.16.199.7");
    assert_string_equal(geo.country, "CN");
    assert_sv(geo.city, "Changchun");
    assert_int_equal(geo.asn, 0);

    /* ASN only: the other fields stay empty. */
    geo = look(g, "1.128.0.1");
    assert_string_equal(geo.country, "");
    assert_int_equal(geo.city.n, 0);
    assert_int_equal(geo.asn, 1221);

    ch_geoip_stats st;
    ch_geoip_stats_get(g, &st);
    assert_int_equal(st.errors, 0);
    assert_int_equal(st.unknown, 0);
    ch_geoip_close(g);
}

static void test_internal_addresses_are_marked_and_not_looked_up(void **state)
{
    (void)state;
    REQUIRE(CITY);
    ch_geoip *g = open1(CITY);
    const char *addrs[] = {"10.1.2.3", "100.64.0.1",     "fe80::1",    "127.0.0.1",
                           "::1",      "192.168.1.1",    "172.16.0.9", "169.254.169.254",
                           "fd00::1",  "100.127.255.255"};
    size_t n = sizeof addrs / sizeof addrs[0];
    for (size_t i = 0; i < n; i++) {
        ch_geo geo = look(g, addrs[i]);
        if (!geo.internal)
            fail_msg("%s not marked internal", addrs[i]);
        assert_false(geo.looked_up);
        assert_string_equal(geo.country, "");
    }
    ch_geoip_stats st;
    ch_geoip_stats_get(g, &st);
    assert_int_equal(st.lookups, n);
    assert_int_equal(st.internal, n);
    assert_int_equal(st.cache_hits + st.cache_misses, 0);
    ch_geoip_close(g);
}

static void test_absent_address_gives_empty_result_and_is_not_counted(void **state)
{
    (void)state;
    REQUIRE(CITY);
    ch_geoip *g = open1(CITY);
    ch_ip none = {.family = 0};
    ch_geo geo;
    memset(&geo, 0x5a, sizeof geo);
    ch_geoip_lookup(g, &none, &geo);
    assert_false(geo.looked_up);
    assert_false(geo.internal);
    assert_string_equal(geo.country, "");
    assert_int_equal(geo.city.n, 0);
    ch_geoip_stats st;
    ch_geoip_stats_get(g, &st);
    assert_int_equal(st.lookups, 0);
    ch_geoip_close(g);
}

static void test_ipv6_addresses_are_looked_up_as_ipv6(void **state)
{
    (void)state;
    REQUIRE(CITY, ASN);
    const char *paths[] = {CITY, ASN};
    ch_geoip *g = open_dbs(paths, 2, CH_GEOIP_CACHE_DEFAULT);
    ch_geo geo = look(g, "2001:480:10::1");
    assert_true(geo.looked_up);
    assert_string_equal(geo.country, "US");
    assert_sv(geo.city, "San Diego");
    geo = look(g, "2001:1700::1");
    assert_int_equal(geo.asn, 6730);
    assert_sv(geo.as_org, "Sunrise Communications AG");
    geo = look(g, "2001:218::5");
    assert_string_equal(geo.country, "JP");
    ch_geoip_close(g);
}

static void test_ipv6_on_ipv4_only_db_is_a_clean_miss(void **state)
{
    (void)state;
    REQUIRE(IPV4_ONLY);
    ch_geoip *g = open1(IPV4_ONLY);
    ch_geo geo = look(g, "2001:1700::1");
    assert_true(geo.looked_up);
    assert_string_equal(geo.country, "");
    ch_geoip_stats st;
    ch_geoip_stats_get(g, &st);
    assert_int_equal(st.errors, 0);
    assert_int_equal(st.unknown, 1);
    ch_geoip_close(g);
}

static void test_repeat_lookups_hit_cache_with_identical_results(void **state)
{
    (void)state;
    REQUIRE(COUNTRY, ASN, CITY);
    const char *paths[] = {COUNTRY, ASN, CITY};
    ch_geoip *g = open_dbs(paths, 3, CH_GEOIP_CACHE_DEFAULT);
    ch_geo first = look(g, "89.160.20.112");
    for (int i = 0; i < 5; i++) {
        ch_geo again = look(g, "89.160.20.112");
        assert_geo_equal(&first, &again);
        assert_ptr_equal(first.city.p, again.city.p); /* the very same bytes */
    }
    look(g, "203.0.113.9"); /* unknown everywhere: cached as unknown */
    look(g, "203.0.113.9");
    ch_geoip_stats st;
    ch_geoip_stats_get(g, &st);
    assert_int_equal(st.lookups, 8);
    assert_int_equal(st.cache_misses, 2);
    assert_int_equal(st.cache_hits, 6);
    assert_int_equal(st.unknown, 2);
    ch_geoip_close(g);
}

static void test_evicted_entries_are_looked_up_again_and_old_strings_stay_valid(void **state)
{
    (void)state;
    REQUIRE(CITY);
    const char *paths[] = {CITY};
    /* 4 entries: one set, so the fifth distinct address evicts the least recently used. */
    ch_geoip *g = open_dbs(paths, 1, 4);
    ch_geo london = look(g, "81.2.69.142");
    const char *addrs[] = {"216.160.83.56",  "175.16.199.1",  "89.160.20.112",
                           "2001:480:10::1", "2.125.160.216", "81.2.69.160"};
    for (size_t i = 0; i < 6; i++)
        look(g, addrs[i]);
    /* The strings borrow the database mapping, not the cache entry. */
    assert_sv(london.city, "London");
    ch_geo again = look(g, "81.2.69.142");
    assert_geo_equal(&london, &again);
    ch_geoip_stats st;
    ch_geoip_stats_get(g, &st);
    assert_int_equal(st.cache_hits, 0);
    assert_int_equal(st.cache_misses, 8);
    /* Most recently used stays: 81.2.69.142 again is a hit now. */
    look(g, "81.2.69.142");
    ch_geoip_stats_get(g, &st);
    assert_int_equal(st.cache_hits, 1);
    ch_geoip_close(g);
}

static void test_cache_disabled_gives_the_same_answers(void **state)
{
    (void)state;
    REQUIRE(COUNTRY, ASN, CITY);
    const char *paths[] = {COUNTRY, ASN, CITY};
    ch_geoip *cached = open_dbs(paths, 3, CH_GEOIP_CACHE_DEFAULT);
    ch_geoip *direct = open_dbs(paths, 3, 0);
    const char *addrs[] = {"89.160.20.112", "81.2.69.142", "2001:480:10::1",
                           "1.128.0.1",     "203.0.113.1", "89.160.20.112"};
    for (size_t i = 0; i < 6; i++) {
        ch_geo a = look(cached, addrs[i]), b = look(direct, addrs[i]);
        assert_geo_equal(&a, &b);
    }
    ch_geoip_stats st;
    ch_geoip_stats_get(direct, &st);
    assert_int_equal(st.cache_hits, 0);
    assert_int_equal(st.cache_misses, 6);
    ch_geoip_close(cached);
    ch_geoip_close(direct);
}

/* Lookups of distinct addresses through a handle with the cache (and its memo of database
 * records, read once each) and one without: the same answers and the same counts, errors
 * included. Many addresses share a record (one per country); the cache sees each address once,
 * so every answer comes from the databases, the memo's or the records' own. */
static void compare_distinct(const char *const *paths, size_t n, const char *const *prefixes,
                             size_t nprefixes, uint64_t *errors)
{
    ch_geoip *cached = open_dbs(paths, n, CH_GEOIP_CACHE_DEFAULT);
    ch_geoip *direct = open_dbs(paths, n, 0);
    for (size_t k = 0; k < nprefixes; k++) {
        for (unsigned last = 0; last < 256; last += 5) {
            char addr[64];
            snprintf(addr, sizeof addr, prefixes[k], last);
            ch_geo a = look(cached, addr), b = look(direct, addr);
            assert_geo_equal(&a, &b);
        }
    }
    ch_geoip_stats sa, sb;
    ch_geoip_stats_get(cached, &sa);
    ch_geoip_stats_get(direct, &sb);
    assert_int_equal(sa.errors, sb.errors);
    assert_int_equal(sa.unknown, sb.unknown);
    assert_int_equal(sa.cache_hits, 0);
    *errors += sa.errors;
    ch_geoip_close(cached);
    ch_geoip_close(direct);
}

static const char *const memo_prefixes[] = {
    "89.160.20.%u",  "81.2.69.%u",        "175.16.199.%u",  "1.128.0.%u",      "2.125.160.%u",
    "216.160.83.%u", "67.43.156.%u",      "202.196.224.%u", "2001:480:10::%x", "2a02:d000::%x",
    "1.1.1.%u",      "2001:218:85a3::%x", "223.1.1.%u",     "8.8.8.%u",        "::1.1.1.%u"};

static void test_record_memo_gives_the_answers_of_no_cache(void **state)
{
    (void)state;
    REQUIRE(COUNTRY, ASN, CITY);
    uint64_t errors = 0;
    const char *three[] = {COUNTRY, ASN, CITY};
    compare_distinct(three, 3, memo_prefixes, sizeof memo_prefixes / sizeof *memo_prefixes,
                     &errors);
    const char *reversed[] = {CITY, ASN, COUNTRY};
    compare_distinct(reversed, 3, memo_prefixes, sizeof memo_prefixes / sizeof *memo_prefixes,
                     &errors);
    const char *city[] = {CITY};
    compare_distinct(city, 1, memo_prefixes, sizeof memo_prefixes / sizeof *memo_prefixes, &errors);
    assert_int_equal(errors, 0);
}

/* Corrupt databases: a record whose data is damaged is counted as an error at every lookup
 * that reads it, memo or not. */
static void test_record_memo_counts_corrupt_records_as_reading_them_does(void **state)
{
    (void)state;
    const char *subdirs[] = {"libmaxminddb", "maxminddb-golang", "maxminddb-python"};
    REQUIRE(BAD_DATA);
    uint64_t errors = 0;
    for (size_t s = 0; s < 3; s++) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s%s", BAD_DATA, subdirs[s]);
        DIR *d = opendir(dir);
        if (d == NULL)
            fail_msg("%s cannot be opened", dir);
        struct dirent *de;
        while (d != NULL && (de = readdir(d)) != NULL) {
            size_t len = strlen(de->d_name);
            if (len < 6 || strcmp(de->d_name + len - 5, ".mmdb") != 0)
                continue;
            char path[2048];
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
            const char *paths[] = {path};
            ch_geoip *g = NULL;
            ch_error err = {0};
            if (ch_geoip_open(&g, paths, 1, &err) != 0)
                continue;
            ch_geoip_close(g);
            compare_distinct(paths, 1, memo_prefixes, sizeof memo_prefixes / sizeof *memo_prefixes,
                             &errors);
        }
        if (d != NULL)
            closedir(d);
    }
    assert_true(errors > 0);
}

static void write_db(char *path, const char *const *nets, const char *const *codes,
                     const char *const *names, size_t n)
{
    int fd = mkstemps(path, 5);
    assert_true(fd >= 0);
    close(fd);
    ch_mmdb_writer *w = NULL;
    ch_error err = {0};
    assert_int_equal(ch_mmdb_writer_new(&w, "Test-Country", &err), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ch_mmdb_writer_add(w, nets[i], codes[i], names[i], &err), 0);
    assert_int_equal(ch_mmdb_writer_write(w, path, &err), 0);
    ch_mmdb_writer_free(w);
}

/* Two databases whose records sit at the same offsets of their data: the memo must tell
 * them apart (a record is known by its database and offset), and a second database answers
 * for what the first does not know. Written here, so it runs without the corpora. */
static void test_record_memo_tells_databases_apart(void **state)
{
    (void)state;
    char p1[] = "/tmp/ch-geoip-XXXXXX.mmdb", p2[] = "/tmp/ch-geoip-XXXXXX.mmdb";
    const char *n1[] = {"81.2.69.0/24", "2a01:4f8::/32"}, *c1[] = {"GB", "DE"},
               *m1[] = {"United Kingdom", NULL};
    const char *n2[] = {"203.0.113.0/24", "2a01:4f9::/32", "81.2.69.0/25"},
               *c2[] = {"FR", "NL", "IE"}, *m2[] = {"France", "Netherlands", "Ireland"};
    write_db(p1, n1, c1, m1, 2);
    write_db(p2, n2, c2, m2, 3);
    const char *paths[] = {p1, p2};
    const char *prefixes[] = {"81.2.69.%u", "203.0.113.%u", "2a01:4f8::%x", "2a01:4f9::%x",
                              "198.51.100.%u"};
    uint64_t errors = 0;
    compare_distinct(paths, 2, prefixes, 5, &errors);
    ch_geoip *g = open_dbs(paths, 2, CH_GEOIP_CACHE_DEFAULT);
    unlink(p1);
    unlink(p2);
    ch_geo a = look(g, "81.2.69.7"), b = look(g, "203.0.113.7"), c = look(g, "2a01:4f9::1");
    assert_string_equal(a.country, "GB");
    assert_sv(a.country_name, "United Kingdom");
    assert_string_equal(b.country, "FR");
    assert_sv(b.country_name, "France");
    assert_string_equal(c.country, "NL");
    ch_geoip_close(g);
    assert_int_equal(errors, 0);
}

static void test_enrich_fills_source_and_destination(void **state)
{
    (void)state;
    REQUIRE(CITY);
    ch_geoip *g = open1(CITY);
    ch_event ev;
    ch_event_reset(&ev);
    ev.src_ip = ip("81.2.69.142");
    ev.dst_ip = ip("10.0.0.5");
    ch_geoip_enrich(g, &ev);
    assert_string_equal(ev.src_geo.country, "GB");
    assert_true(ev.src_geo.looked_up);
    assert_true(ev.dst_geo.internal);
    assert_false(ev.dst_geo.looked_up);
    ch_geoip_close(g);
}

static void test_clone_shares_databases_with_its_own_cache(void **state)
{
    (void)state;
    REQUIRE(CITY);
    ch_geoip *g = open1(CITY);
    ch_geoip *c = NULL;
    ch_error err = {0};
    assert_int_equal(ch_geoip_clone(g, &c, &err), 0);
    look(g, "81.2.69.142");
    ch_geo geo = look(c, "81.2.69.142");
    assert_string_equal(geo.country, "GB");
    ch_geoip_stats st;
    ch_geoip_stats_get(c, &st);
    assert_int_equal(st.cache_misses, 1); /* its own cache: not filled by g's lookup */
    ch_geoip_close(c);
    ch_geoip_close(g);
}

/* analyze --threads: workers look addresses up on clones, the merge thread notes their answers
 * on its own handle (ch_geoip_note). The noting handle must end with the counters of a handle
 * that looked every address up itself, in the same order, through a cache small enough to
 * evict (4 entries: one set), and hold the same answers. */
static void test_noted_answers_count_and_cache_as_own_lookups(void **state)
{
    (void)state;
    char path[] = "/tmp/ch-geoip-XXXXXX.mmdb";
    const char *nets[] = {"81.2.69.0/24", "2a01:4f8::/32", "203.0.113.0/24"};
    const char *codes[] = {"GB", "DE", "FR"}, *names[] = {"United Kingdom", NULL, "France"};
    write_db(path, nets, codes, names, 3);
    ch_error err = {0};
    const char *paths[] = {path};
    ch_geoip_opts small = {.cache_entries = 4};
    ch_geoip *own = NULL, *noter = NULL, *worker = NULL;
    assert_int_equal(ch_geoip_open_ex(&own, paths, 1, &small, &err), 0);
    assert_int_equal(ch_geoip_open_ex(&noter, paths, 1, &small, &err), 0);
    assert_int_equal(ch_geoip_clone(noter, &worker, &err), 0);
    unlink(path);
    const char *seq[] = {"81.2.69.142",   "10.0.0.5",    "81.2.69.142",        "8.8.8.8",
                         "2a01:4f8:1::1", "203.0.113.9", "203.0.113.10",       "198.51.100.1",
                         "81.2.69.142",   "8.8.8.8",     "::ffff:81.2.69.142", "192.168.1.1",
                         "2a01:4f8:1::1", "81.2.69.1"};
    size_t n = sizeof seq / sizeof *seq;
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < n; i++) {
            ch_geo a = look(own, seq[i]);
            ch_geo b = look(worker, seq[i]);
            assert_geo_equal(&a, &b);
            ch_ip x = ip(seq[i]);
            ch_geoip_note(noter, &x, &b);
        }
    }
    ch_ip none = {0};
    ch_geo empty = {0};
    ch_geoip_note(noter, &none, &empty); /* an absent address is not a lookup */
    ch_geoip_stats so, sn;
    ch_geoip_stats_get(own, &so);
    ch_geoip_stats_get(noter, &sn);
    assert_int_equal(sn.lookups, so.lookups);
    assert_int_equal(sn.lookups, 2 * n);
    assert_int_equal(sn.internal, so.internal);
    assert_int_equal(sn.cache_hits, so.cache_hits);
    assert_int_equal(sn.cache_misses, so.cache_misses);
    assert_int_equal(sn.unknown, so.unknown);
    assert_true(so.cache_hits > 0 && so.cache_misses > so.cache_hits); /* evictions happened */
    /* What the noting handle cached answers its own lookups, as the databases would. */
    for (size_t i = 0; i < n; i++) {
        ch_geo a = look(own, seq[i]);
        ch_geo b = look(noter, seq[i]);
        assert_geo_equal(&a, &b);
    }
    ch_geoip_stats_get(own, &so);
    ch_geoip_stats_get(noter, &sn);
    assert_int_equal(sn.cache_hits, so.cache_hits);
    assert_int_equal(sn.cache_misses, so.cache_misses);
    ch_geoip_close(worker);
    ch_geoip_close(noter);
    ch_geoip_close(own);
}

static void assert_open_fails(const char *const *paths, size_t n, int code, const char *named)
{
    ch_geoip *g = (ch_geoip *)&g; /* must be reset to NULL */
    ch_error err = {0};
    int rc = ch_geoip_open(&g, paths, n, &err);
    assert_int_equal(rc, code);
    assert_int_equal(err.code, code);
    assert_null(g);
    if (named && strstr(err.msg, named) == NULL)
        fail_msg("message does not name %s: %s", named, err.msg);
}

/* The enricher's own mechanics (MaxMind layout, names, internal addresses, the cache, clones)
 * on a database the test writes itself (enrich/mmdb_write.h): they run without the corpora. */
static void test_written_db_lookups_cache_internal_and_clone(void **state)
{
    (void)state;
    char path[] = "/tmp/ch-geoip-XXXXXX.mmdb";
    const char *nets[] = {"81.2.69.0/24", "2a01:4f8::/32"};
    const char *codes[] = {"GB", "DE"}, *names[] = {"United Kingdom", NULL};
    write_db(path, nets, codes, names, 2);
    ch_geoip *g = open1(path);
    unlink(path); /* the mapping stays readable */
    assert_string_equal(ch_geoip_db_type(g, 0), "Test-Country");

    ch_event ev;
    ch_event_reset(&ev);
    ev.src_ip = ip("81.2.69.142");
    ev.dst_ip = ip("10.0.0.5");
    ch_geoip_enrich(g, &ev);
    assert_string_equal(ev.src_geo.country, "GB");
    assert_sv(ev.src_geo.country_name, "United Kingdom");
    assert_true(ev.dst_geo.internal);
    assert_false(ev.dst_geo.looked_up);

    ch_geo geo = look(g, "2a01:4f8:1::1");
    assert_string_equal(geo.country, "DE");
    assert_int_equal(geo.country_name.n, 0);
    geo = look(g, "8.8.8.8");
    assert_true(geo.looked_up);
    assert_string_equal(geo.country, "");
    ch_geo again = look(g, "81.2.69.142");
    assert_geo_equal(&ev.src_geo, &again);
    ch_geoip_stats st;
    ch_geoip_stats_get(g, &st);
    assert_int_equal(st.lookups, 5);
    assert_int_equal(st.internal, 1);
    assert_int_equal(st.cache_misses, 3);
    assert_int_equal(st.cache_hits, 1);
    assert_int_equal(st.unknown, 1);
    assert_int_equal(st.errors, 0);

    ch_geoip *c = NULL;
    ch_error err = {0};
    assert_int_equal(ch_geoip_clone(g, &c, &err), 0);
    geo = look(c, "81.2.69.142");
    assert_string_equal(geo.country, "GB");
    ch_geoip_stats_get(c, &st);
    assert_int_equal(st.cache_misses, 1); /* its own cache */
    ch_geoip_close(c);
    ch_geoip_close(g);
}

static void test_missing_file_fails_open_naming_the_file(void **state)
{
    (void)state;
    const char *paths[] = {"/nonexistent/dir/GeoLite2-City.mmdb"};
    assert_open_fails(paths, 1, CH_EIO, paths[0]);
}

static void test_corrupt_db_fails_open_naming_the_file(void **state)
{
    (void)state;
    const char *bad[] = {BAD_DATA "maxminddb-golang/invalid-data-record-offset.mmdb",
                         BAD_DATA "libmaxminddb/libmaxminddb-metadata-marker-only.mmdb",
                         BAD_DATA "maxminddb-golang/cyclic-data-structure.mmdb",
                         TEST_DATA "GeoIP2-City-Test-Invalid-Node-Count.mmdb"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        REQUIRE(bad[i]);
        assert_open_fails(&bad[i], 1, CH_EPARSE, bad[i]);
    }
    /* A file that is no database at all. */
    const char *notdb[] = {CH_SOURCE_DIR "/CMakeLists.txt"};
    assert_open_fails(notdb, 1, CH_EPARSE, notdb[0]);
}

static void test_bad_second_db_fails_open_and_closes_the_first(void **state)
{
    (void)state;
    REQUIRE(CITY);
    const char *paths[] = {CITY, "/nonexistent/asn.mmdb"};
    assert_open_fails(paths, 2, CH_EIO, "/nonexistent/asn.mmdb"); /* ASan would see a leak */
}

static void test_bad_arguments_are_usage_errors(void **state)
{
    (void)state;
    const char *paths[CH_GEOIP_MAX_DBS + 1] = {0};
    assert_open_fails(paths, 0, CH_EUSAGE, NULL);
    assert_open_fails(paths, CH_GEOIP_MAX_DBS + 1, CH_EUSAGE, NULL);
    assert_open_fails(paths, 1, CH_EUSAGE, NULL); /* NULL path */
    assert_open_fails(NULL, 1, CH_EUSAGE, NULL);
    const char *empty[] = {""};
    assert_open_fails(empty, 1, CH_EUSAGE, NULL);
}

/* Every database in bad-data either fails to open with a message naming it, or opens and
 * survives lookups (errors counted, results empty where the data is broken). */
static void test_every_corrupt_db_fails_open_or_survives_lookups(void **state)
{
    (void)state;
    const char *subdirs[] = {"libmaxminddb", "maxminddb-golang", "maxminddb-python"};
    const char *addrs[] = {"1.1.1.1",     "1.1.1.3",      "1.1.1.32",  "2.2.2.2",
                           "81.2.69.142", "8.8.8.8",      "223.1.1.1", "2001:db9::1",
                           "::1.1.1.1",   "2a02:d000::1", "223.1.2.3", "128.0.0.1"};
    REQUIRE(BAD_DATA);
    size_t seen = 0, failed_open = 0;
    uint64_t errors = 0;
    for (size_t s = 0; s < 3; s++) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s%s", BAD_DATA, subdirs[s]);
        DIR *d = opendir(dir);
        if (d == NULL)
            fail_msg("%s cannot be opened", dir);
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            size_t len = strlen(de->d_name);
            if (len < 6 || strcmp(de->d_name + len - 5, ".mmdb") != 0)
                continue;
            char path[2048];
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
            const char *paths[] = {path};
            ch_geoip *g = NULL;
            ch_error err = {0};
            seen++;
            if (ch_geoip_open(&g, paths, 1, &err) != 0) {
                failed_open++;
                assert_null(g);
                if (strstr(err.msg, path) == NULL)
                    fail_msg("message does not name %s: %s", path, err.msg);
                continue;
            }
            for (size_t i = 0; i < sizeof addrs / sizeof addrs[0]; i++) {
                ch_geo geo = look(g, addrs[i]);
                assert_true(geo.looked_up);
            }
            ch_geoip_stats st;
            ch_geoip_stats_get(g, &st);
            errors += st.errors;
            ch_geoip_close(g);
        }
        closedir(d);
    }
    assert_true(seen >= 10);
    assert_true(failed_open >= 5);
    assert_true(errors > 0); /* the ones that open fail later, and that is counted */
}

static void test_allocation_failure_during_open_is_reported_not_fatal(void **state)
{
    (void)state;
    REQUIRE(CITY, ASN);
    const char *paths[] = {CITY, ASN};
    int failures = 0;
    for (long n = 0; n < 3; n++) {
        ch_geoip *g = NULL;
        ch_error err = {0};
        ch_mem_fail_after(n);
        int rc = ch_geoip_open(&g, paths, 2, &err);
        ch_mem_fail_after(-1);
        if (rc == 0) {
            ch_geoip_close(g);
            continue;
        }
        failures++;
        assert_int_equal(rc, CH_ENOMEM);
        assert_null(g);
    }
    assert_true(failures >= 3);
}

/* The database analyze uses by default, installed by scripts/deps (scripts/install-geoip): a
 * prerequisite, so its absence fails. Its flat ip-location-db layout (country_code) is the one
 * this test alone covers. */
static void test_installed_country_db_maps_8_8_8_8_to_us(void **state)
{
    (void)state;
    struct stat sb;
    if (stat(INSTALLED, &sb) != 0)
        fail_msg("%s is not installed: run scripts/install-geoip (scripts/deps does)", INSTALLED);
    ch_geoip *g = open1(INSTALLED);
    ch_geo geo = look(g, "8.8.8.8");
    assert_string_equal(geo.country, "US");
    geo = look(g, "2001:4860:4860::8888");
    assert_string_equal(geo.country, "US");
    geo = look(g, "192.168.0.1");
    assert_true(geo.internal);
    ch_geoip_stats st;
    ch_geoip_stats_get(g, &st);
    assert_int_equal(st.errors, 0);
    ch_geoip_close(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_city_db_maps_81_2_69_142_to_gb_london),
        cmocka_unit_test(test_city_db_maps_whole_175_16_199_0_24_to_cn),
        cmocka_unit_test(test_city_db_maps_216_160_83_56_to_us),
        cmocka_unit_test(test_asn_db_gives_number_and_organisation),
        cmocka_unit_test(test_three_dbs_merge_country_city_and_asn),
        cmocka_unit_test(test_internal_addresses_are_marked_and_not_looked_up),
        cmocka_unit_test(test_absent_address_gives_empty_result_and_is_not_counted),
        cmocka_unit_test(test_ipv6_addresses_are_looked_up_as_ipv6),
        cmocka_unit_test(test_ipv6_on_ipv4_only_db_is_a_clean_miss),
        cmocka_unit_test(test_repeat_lookups_hit_cache_with_identical_results),
        cmocka_unit_test(test_evicted_entries_are_looked_up_again_and_old_strings_stay_valid),
        cmocka_unit_test(test_cache_disabled_gives_the_same_answers),
        cmocka_unit_test(test_record_memo_gives_the_answers_of_no_cache),
        cmocka_unit_test(test_record_memo_tells_databases_apart),
        cmocka_unit_test(test_record_memo_counts_corrupt_records_as_reading_them_does),
        cmocka_unit_test(test_enrich_fills_source_and_destination),
        cmocka_unit_test(test_clone_shares_databases_with_its_own_cache),
        cmocka_unit_test(test_written_db_lookups_cache_internal_and_clone),
        cmocka_unit_test(test_missing_file_fails_open_naming_the_file),
        cmocka_unit_test(test_corrupt_db_fails_open_naming_the_file),
        cmocka_unit_test(test_bad_second_db_fails_open_and_closes_the_first),
        cmocka_unit_test(test_bad_arguments_are_usage_errors),
        cmocka_unit_test(test_every_corrupt_db_fails_open_or_survives_lookups),
        cmocka_unit_test(test_allocation_failure_during_open_is_reported_not_fatal),
        cmocka_unit_test(test_installed_country_db_maps_8_8_8_8_to_us),
        cmocka_unit_test(test_noted_answers_count_and_cache_as_own_lookups),
    };
    return cmocka_run_group_tests_name("geoip", tests, NULL, NULL);
}
