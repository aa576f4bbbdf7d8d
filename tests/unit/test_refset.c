/*
 * test_refset.c - reference sets: domain suffix matching on label boundaries, address and CIDR
 * longest-prefix matching with IPv4 and IPv6 kept apart, validity at event time, expiry, removal,
 * string and number sets, the registry, and the block-list loader on hand-written lines and on
 * the real mining lists of ../shared/corpora/mining_lists (skipped when absent).
 *
 * Randomised cases compare the hash tables against a brute-force scan, with a fixed seed.
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

#include "corpora.h"

#include "core/mem.h"
#include "enrich/refset.h"

#define LISTS CH_CORPORA_DIR "/mining_lists/"
#define NOW 1700000000000LL

/* Skip when the shared corpora folder is absent, fail when path is missing from it. */
#define REQUIRE(path) ch_test_need_corpora(path)

static ch_refset *new_set(ch_refset_type type, uint32_t flags)
{
    ch_refset *s = NULL;
    ch_error err = {0};
    ch_refset_opts o = {.flags = flags};
    assert_int_equal(ch_refset_new(&s, "test_set", type, &o, &err), CH_OK);
    return s;
}

static int add(ch_refset *s, const char *text, const char *source)
{
    ch_refset_meta m = ch_refset_meta_make(source, NOW);
    ch_error err = {0};
    return ch_refset_add(s, text, strlen(text), &m, &err);
}

static int add_window(ch_refset *s, const char *text, const char *source, int64_t from,
                      int64_t until)
{
    ch_refset_meta m = ch_refset_meta_make(source, NOW);
    m.valid_from = from;
    m.expiry = until;
    ch_error err = {0};
    return ch_refset_add(s, text, strlen(text), &m, &err);
}

static bool dom(const ch_refset *s, const char *q)
{
    return ch_refset_contains_domain(s, q, strlen(q), NOW, NULL);
}

static ch_ip ip(const char *s)
{
    ch_ip a;
    assert_true(ch_ip_parse(s, strlen(s), &a));
    return a;
}

static bool has_ip(const ch_refset *s, const char *q)
{
    ch_ip a = ip(q);
    return ch_refset_contains_ip(s, &a, NOW, NULL);
}

/* The entry text of the element an address hits, or "" on a miss. */
static const char *ip_hit(const ch_refset *s, const char *q, int64_t at, char *buf, size_t cap)
{
    ch_ip a = ip(q);
    const ch_refset_elem *e = NULL;
    buf[0] = '\0';
    if (ch_refset_contains_ip(s, &a, at, &e))
        ch_refset_elem_text(s, e, buf, cap);
    return buf;
}

/* ---- domains ---------------------------------------------------------------------------- */

static void test_domain_suffix_matches_only_on_label_boundaries(void **state)
{
    (void)state;
    ch_refset *s = new_set(CH_REFSET_DOMAIN, 0);
    assert_int_equal(add(s, "supportxmr.com", "feed"), 1);
    assert_true(dom(s, "supportxmr.com"));
    assert_true(dom(s, "a.pool.supportxmr.com"));
    assert_true(dom(s, "pool.supportxmr.com"));
    assert_false(dom(s, "notsupportxmr.com"));
    assert_false(dom(s, "xmr.com"));
    assert_false(dom(s, "com"));
    assert_false(dom(s, "supportxmr.com.evil.net"));
    assert_false(dom(s, "supportxmr.co"));
    assert_false(dom(s, "upportxmr.com"));
    assert_false(dom(s, ""));
    ch_refset_free(s);
}

static void test_domain_entries_are_lower_cased_and_trailing_dot_dropped(void **state)
{
    (void)state;
    ch_refset *s = new_set(CH_REFSET_DOMAIN, 0);
    assert_int_equal(add(s, "SupportXMR.COM.", "feed"), 1);
    assert_true(dom(s, "A.Pool.SUPPORTXMR.com."));
    assert_true(dom(s, "supportxmr.com"));
    const ch_refset_elem *e = NULL;
    assert_true(ch_refset_contains_domain(s, "x.supportxmr.com", 16, NOW, &e));
    assert_string_equal(e->key.str, "supportxmr.com");
    assert_string_equal(e->source, "feed");
    ch_refset_free(s);
}

static void test_domain_wildcard_and_leading_dot_mean_the_bare_domain(void **state)
{
    (void)state;
    ch_refset *s = new_set(CH_REFSET_DOMAIN, 0);
    assert_int_equal(add(s, "*.coinhive.com", "feed"), 1);
    assert_int_equal(add(s, ".minexmr.com", "feed"), 1);
    assert_true(dom(s, "coinhive.com"));
    assert_true(dom(s, "ws001.coinhive.com"));
    assert_true(dom(s, "minexmr.com"));
    assert_true(dom(s, "pool.minexmr.com"));
    /* The same domain written plainly is the same key: refreshed, not added. */
    assert_int_equal(add(s, "coinhive.com", "feed"), 0);
    assert_int_equal(ch_refset_count(s), 2);
    ch_refset_free(s);
}

static void test_domain_most_specific_listed_suffix_wins(void **state)
{
    (void)state;
    ch_refset *s = new_set(CH_REFSET_DOMAIN, 0);
    assert_int_equal(add(s, "supportxmr.com", "broad"), 1);
    assert_int_equal(add(s, "pool.supportxmr.com", "narrow"), 1);
    const ch_refset_elem *e = NULL;
    assert_true(ch_refset_contains_domain(s, "a.pool.supportxmr.com", 21, NOW, &e));
    assert_string_equal(e->source, "narrow");
    assert_true(ch_refset_contains_domain(s, "web.supportxmr.com", 18, NOW, &e));
    assert_string_equal(e->source, "broad");
    ch_refset_free(s);
}

static void test_exact_domain_set_does_not_match_subdomains(void **state)
{
    (void)state;
    ch_refset *s = new_set(CH_REFSET_DOMAIN, CH_REFSET_EXACT);
    assert_int_equal(add(s, "supportxmr.com", "feed"), 1);
    assert_true(dom(s, "supportxmr.com"));
    assert_true(dom(s, "SUPPORTXMR.com."));
    assert_false(dom(s, "pool.supportxmr.com"));
    assert_false(dom(s, "notsupportxmr.com"));
    ch_refset_free(s);
}

static void test_domain_entries_that_are_not_names_are_refused_with_a_reason(void **state)
{
    (void)state;
    ch_refset *s = new_set(CH_REFSET_DOMAIN, 0);
    const char *bad[] = {"",
                         ".",
                         "*.",
                         "a..b.com",
                         "exa mple.com",
                         "ex!ample.com",
                         "a.com..",
                         "http://a.com",
                         "a.com/x",
                         "m\303\277ethere.com"}; /* UTF-8 in a label (octal: no hex run-on) */
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ch_error err = {0};
        assert_int_equal(ch_refset_add(s, bad[i], strlen(bad[i]), NULL, &err), CH_EPARSE);
        assert_true(err.msg[0] != '\0');
    }
    char label[80];
    memset(label, 'a', 64);
    memcpy(label + 64, ".com", 5);
    ch_error err = {0};
    assert_int_equal(ch_refset_add(s, label, strlen(label), NULL, &err), CH_EPARSE);
    assert_non_null(strstr(err.msg, "63"));
    char longname[300];
    for (int i = 0; i < 254; i++)
        longname[i] = (i % 2) ? '.' : 'a';
    longname[253] = 'a';
    longname[254] = '\0';
    assert_int_equal(ch_refset_add(s, longname, 254, NULL, &err), CH_EPARSE);
    assert_int_equal(ch_refset_count(s), 0);
    ch_refset_free(s);
}

static void test_domain_query_longer_than_253_bytes_still_matches_its_suffix(void **state)
{
    (void)state;
    ch_refset *s = new_set(CH_REFSET_DOMAIN, 0);
    assert_int_equal(add(s, "supportxmr.com", "feed"), 1);
    char q[600];
    size_t n = 0;
    while (n < 500) {
        memcpy(q + n, "abcdefg.", 8);
        n += 8;
    }
    memcpy(q + n, "supportxmr.com", 15);
    assert_true(dom(s, q));
    memcpy(q + n, "notsupportxmr.com", 18);
    assert_false(dom(s, q));
    /* 300 empty labels: more labels than any entry can have. */
    memset(q, '.', 300);
    memcpy(q + 300, "supportxmr.com", 15);
    assert_true(dom(s, q));
    ch_refset_free(s);
}

static void test_prepared_query_is_probed_against_several_sets(void **state)
{
    (void)state;
    ch_refset *a = new_set(CH_REFSET_DOMAIN, 0), *b = new_set(CH_REFSET_DOMAIN, 0);
    assert_int_equal(add(a, "minexmr.com", "a"), 1);
    assert_int_equal(add(b, "nanopool.org", "b"), 1);
    ch_refset_dq q;
    ch_refset_dq_prepare(&q, "XMR.NanoPool.org.", 17);
    assert_false(ch_refset_contains_dq(a, &q, NOW, NULL));
    const ch_refset_elem *e = NULL;
    assert_true(ch_refset_contains_dq(b, &q, NOW, &e));
    assert_string_equal(e->source, "b");
    ch_refset_free(a);
    ch_refset_free(b);
}

/* ---- addresses -------------------------------------------------------------------------- */

static void test_ipv4_single_address_is_a_slash_32(void **state)
{
    (void)state;
    ch_refset *s = new_set(CH_REFSET_IP, 0);
    assert_int_equal(add(s, "198.51.100.7", "feed"), 1);
    assert_int_equal(add(s, "198.51.100.7/32", "feed"), 0);
    assert_true(has_ip(s, "198.51.100.7"));
    assert_false(has_ip(s, "198.51.100.6"));
    assert_false(has_ip(s, "198.51.100.8"));
    char buf[64];
    assert_string_equal(ip_hit(s, "198.51.100.7", NOW, buf, sizeof buf), "198.51.100.7");
    ch_refset_free(s);
}

static void test_ipv4_slash_8_and_slash_0(void **state)
{
    (void)state;
    ch_refset *s = new_set(CH_REFSET_IP, 0);
    assert_int_equal(add(s, "10.0.0.0/8", "feed"), 1);
    assert_true(has_ip(s, "10.0.0.0"));
    assert_true(has_ip(s, "10.255.255.255"));
    assert_false(has_ip(s, "11.0.0.0"));
    assert_false(has_ip(s, "9.255.255.255"));
    assert_int_equal(add(s, "0.0.0.0/0", "all"), 1);
    assert_true(has_ip(s, "11.0.0.0"));
    assert_true(has_ip(s, "255.255.255.255"));
    assert_false(has_ip(s, "2001:db8::1"));
    assert_false(has_ip(s, "::"));
    ch_refset_free(s);
}

static void test_ipv6_slash_48_matches_inside_only(void **state)
{
    (void)state;
    ch_refset *s = new_set(CH_REFSET_IP, 0);
    assert_int_equal(add(s, "2001:db8:abcd::/48", "feed"), 1);
    assert_true(has_ip(s, "2001:db8:abcd::1"));
    assert_true(has_ip(s, "2001:db8:abcd:ffff:ffff:ffff:ffff:ffff"));
    assert_false(has_ip(s, "2001:db8:abce::1"));
    assert_false(has_ip(s, "2001:db8:abcc:ffff::1"));
    assert_int_equal(add(s, "2001:db8:abcd:12::5", "feed"), 1);
    char buf[64];
    assert_string_equal(ip_hit(s, "2001:db8:abcd:12::5", NOW, buf, sizeof buf),
                        "2001:db8:abcd:12::5");
    assert_string_equal(ip_hit(s, "2001:db8:abcd:12::6", NOW, buf, sizeof buf),
                        "2001:db8:abcd::/48");
    ch_refset_free(s);
}

static void test_ipv4_and_ipv6_never_match_each_other(void **state)
{
    (void)state;
    ch_refset *s = new_set(CH_REFSET_IP, 0);
    assert_int_equal(add(s, "::/0", "v6all"), 1);
    assert_true(has_ip(s, "2001:db8::1"));
    /* ::/0 covers ::ffff:0:0/96 as bits, but an IPv6 CIDR never claims an IPv4 address. */
    assert_false(has_ip(s, "10.1.2.3"));
    assert_false(has_ip(s, "::ffff:10.1.2.3"));
    ch_refset *v4 = new_set(CH_REFSET_IP, 0);
    assert_int_equal(add(v4, "0.0.0.0/0", "v4all"), 1);
    assert_int_equal(add(v4, "10.1.2.3", "one"), 1);
    assert_true(has_ip(v4, "10.1.2.3"));
    assert_true(has_ip(v4, "::ffff:10.1.2.3")); /* the same IPv4 address in mapped form */
    assert_false(has_ip(v4, "::a01:203"));      /* IPv4-compatible form is an IPv6 address */
    assert_false(has_ip(v4, "2001:db8::1"));
    assert_false(has_ip(v4, "::"));
    ch_refset_free(s);
    ch_refset_free(v4);
}

static void test_mapped_ipv6_text_with_prefix_from_96_is_an_ipv4_network(void **state)
{
    (void)state;
    ch_refset *s = new_set(CH_REFSET_IP, 0);
    assert_int_equal(add(s, "::ffff:10.0.0.0/104", "feed"), 1);
    assert_int_equal(add(s, "10.0.0.0/8", "feed"), 0); /* the same key */
    char buf[64];
    assert_string_equal(ip_hit(s, "10.9.9.9", NOW, buf, sizeof buf), "10.0.0.0/8");
    /* A mapped prefix shorter than 96 is an IPv6 network and meets no IPv4 address. */
    assert_int_equal(add(s, "::ffff:0:0/95", "feed"), 1);
    assert_false(has_ip(s, "192.0.2.1"));
    ch_refset_free(s);
}

static void test_longest_prefix_hit_is_returned(void **state)
{
    (void)state;
    ch_refset *s = new_set(CH_REFSET_IP, 0);
    assert_int_equal(add(s, "10.0.0.0/8", "a"), 1);
    assert_int_equal(add(s, "10.1.0.0/16", "b"), 1);
    assert_int_equal(add(s, "10.1.2.0/24", "c"), 1);
    assert_int_equal(add(s, "10.1.2.3", "d"), 1);
    char buf[64];
    assert_string_equal(ip_hit(s, "10.1.2.3", NOW, buf, sizeof buf), "10.1.2.3");
    assert_string_equal(ip_hit(s, "10.1.2.4", NOW, buf, sizeof buf), "10.1.2.0/24");
    assert_string_equal(ip_hit(s, "10.1.3.4", NOW, buf, sizeof buf), "10.1.0.0/16");
    assert_string_equal(ip_hit(s, "10.2.3.4", NOW, buf, sizeof buf), "10.0.0.0/8");
    assert_string_equal(ip_hit(s, "11.2.3.4", NOW, buf, sizeof buf), "");
    ch_refset_free(s);
}

static void test_expired_longer_prefix_falls_back_to_shorter_one(void **state)
{
    (void)state;
    ch_refset *s = new_set(CH_REFSET_IP, 0);
    assert_int_equal(add_window(s, "10.1.2.0/24", "c", CH_REFSET_ALWAYS, 1000), 1);
    assert_int_equal(add(s, "10.0.0.0/8", "a"), 1);
    char buf[64];
    assert_string_equal(ip_hit(s, "10.1.2.9", 999, buf, sizeof buf), "10.1.2.0/24");
    assert_string_equal(ip_hit(s, "10.1.2.9", 1000, buf, sizeof buf), "10.0.0.0/8");
    ch_refset_free(s);
}

static void test_host_bits_of_a_cidr_are_masked(void **state)
{
    (void)state;
    ch_refset *s = new_set(CH_REFSET_IP, 0);
    assert_int_equal(add(s, "10.1.2.3/8", "feed"), 1);
    assert_int_equal(add(s, "2001:db8::1/32", "feed"), 1);
    size_t cur = 0;
    const ch_refset_elem *e;
    char buf[64];
    int n = 0;
    while ((e = ch_refset_next(s, &cur)) != NULL) {
        ch_refset_elem_text(s, e, buf, sizeof buf);
        assert_true(strcmp(buf, "10.0.0.0/8") == 0 || strcmp(buf, "2001:db8::/32") == 0);
        n++;
    }
    assert_int_equal(n, 2);
    ch_refset_free(s);
}

static void test_bad_addresses_and_prefixes_are_refused(void **state)
{
    (void)state;
    ch_refset *s = new_set(CH_REFSET_IP, 0);
    const char *bad[] = {"10.0.0.0/33",  "1.2.3", "10.0.0.0/", "::/129",     "10.0.0.0/8x",
                         "abc",          "",      "/8",        "1.2.3.4/-1", "01.2.3.4",
                         "10.0.0.0/0008"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ch_error err = {0};
        assert_int_equal(ch_refset_add(s, bad[i], strlen(bad[i]), NULL, &err), CH_EPARSE);
    }
    assert_int_equal(ch_refset_count(s), 0);
    ch_refset_free(s);
}

/* Random networks against a brute-force longest-prefix scan. */
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void test_random_networks_agree_with_brute_force_longest_prefix(void **state)
{
    (void)state;
    enum { N = 600, Q = 20000 };
    static ch_ip nets[N];
    static unsigned lens[N];
    static bool gone[N];
    ch_refset *s = new_set(CH_REFSET_IP, 0);
    for (int i = 0; i < N; i++) {
        ch_ip n = {0};
        uint64_t r = next_rand();
        if (i % 3 == 0) {
            for (int b = 0; b < 16; b++)
                n.b[b] = (uint8_t)(next_rand() & 0x3); /* crowded: many overlaps */
            n.b[0] = 0x20;
            n.family = 6;
            lens[i] = (unsigned)(r % 129);
        } else {
            ch_ip_parse("0.0.0.0", 7, &n);
            n.b[12] = (uint8_t)(10 + (r & 1));
            n.b[13] = (uint8_t)((r >> 8) & 3);
            n.b[14] = (uint8_t)((r >> 16) & 3);
            n.b[15] = (uint8_t)((r >> 24) & 3);
            lens[i] = (unsigned)((r >> 32) % 33);
        }
        nets[i] = n;
        ch_error err = {0};
        int rc = ch_refset_add_ip(s, &n, lens[i], NULL, &err);
        assert_true(rc == 0 || rc == 1);
    }
    /* Remove a third, to exercise backward-shift deletion. */
    for (int i = 0; i < N; i += 3) {
        char txt[64];
        size_t l = ch_ip_format(&nets[i], txt);
        snprintf(txt + l, sizeof txt - l, "/%u", lens[i]);
        int rc = ch_refset_remove(s, txt, strlen(txt), NULL, NULL, NULL);
        for (int j = 0; j < N; j++)
            if (nets[j].family == nets[i].family && lens[j] == lens[i] &&
                ch_ip_in_prefix(&nets[j], &nets[i], lens[i]))
                gone[j] = true;
        assert_true(rc > 0 || rc == CH_ENOTFOUND);
    }
    for (int q = 0; q < Q; q++) {
        ch_ip a = nets[next_rand() % N];
        uint64_t r = next_rand();
        a.b[15] ^= (uint8_t)(r & 3);
        a.b[14] ^= (uint8_t)((r >> 2) & 1);
        int best = -1;
        for (int i = 0; i < N; i++)
            if (!gone[i] && ch_ip_in_prefix(&a, &nets[i], lens[i]) &&
                (best < 0 || lens[i] > lens[best]))
                best = i;
        const ch_refset_elem *e = NULL;
        bool hit = ch_refset_contains_ip(s, &a, NOW, &e);
        assert_int_equal(hit, best >= 0);
        if (hit) {
            assert_int_equal(e->len, lens[best]);
            assert_int_equal(e->family, nets[best].family);
        }
    }
    ch_refset_free(s);
}

static void test_validity_is_right_as_elements_of_one_key_come_and_go(void **state)
{
    (void)state;
    /* The set caches "one element, valid always" per key: every change must keep answers right. */
    ch_refset *d = new_set(CH_REFSET_DOMAIN, 0), *n = new_set(CH_REFSET_IP, 0);
    ch_refset *sets[2] = {d, n};
    const char *key[2] = {"pool.example", "192.0.2.0/24"};
    const char *query[2] = {"x.pool.example", "192.0.2.9"};
    for (int i = 0; i < 2; i++) {
        ch_refset *s = sets[i];
        size_t ql = strlen(query[i]);
        assert_int_equal(add_window(s, key[i], "A", 0, 100), 1);
        assert_false(ch_refset_contains(s, query[i], ql, 200, NULL));
        assert_int_equal(add(s, key[i], "A"), 0); /* refreshed: now valid always */
        assert_true(ch_refset_contains(s, query[i], ql, 200, NULL));
        assert_int_equal(add_window(s, key[i], "B", 0, 100), 1);
        const ch_refset_elem *e = NULL;
        assert_true(ch_refset_contains(s, query[i], ql, 200, &e));
        assert_string_equal(e->source, "A");
        assert_int_equal(ch_refset_remove(s, key[i], strlen(key[i]), "A", NULL, NULL), 1);
        assert_false(ch_refset_contains(s, query[i], ql, 200, NULL));
        assert_true(ch_refset_contains(s, query[i], ql, 50, &e));
        assert_string_equal(e->source, "B");
        assert_int_equal(add(s, key[i], "B"), 0);
        assert_true(ch_refset_contains(s, query[i], ql, 200, NULL));
        ch_refset_free(s);
    }
}

static void test_long_domain_keys_and_empty_labels(void **state)
{
    (void)state;
    ch_refset *s = new_set(CH_REFSET_DOMAIN, 0);
    const char *longkey = "a-rather-long-subdomain-label.mining-pool-example.org"; /* > 31 */
    assert_int_equal(add(s, longkey, "f"), 1);
    assert_int_equal(add(s, "tld", "f"), 1);
    assert_int_equal(add(s, "exactly-thirty-one-bytes.abc.de", "f"), 1);
    assert_int_equal(add(s, "exactly-thirty-two-bytes.abcd.de", "f"), 1);
    assert_true(dom(s, longkey));
    assert_true(dom(s, "ws.a-rather-long-subdomain-label.mining-pool-example.org"));
    assert_false(dom(s, "mining-pool-example.org"));
    assert_true(dom(s, "x.exactly-thirty-one-bytes.abc.de"));
    assert_true(dom(s, "x.exactly-thirty-two-bytes.abcd.de"));
    assert_false(dom(s, "exactly-thirty-two-bytes.abcd.d"));
    /* Every label length, across the 8- and 16-byte steps of the label hash, and a 63-byte one:
     * entries and queries must hash alike. */
    for (int n = 1; n <= 63; n++) {
        char entry[96], query[128];
        memset(entry, 'k', (size_t)n);
        memcpy(entry + n, ".Example.NET", 13);
        snprintf(query, sizeof query, "a.b.%s", entry);
        assert_int_equal(add(s, entry, "len"), 1);
        assert_true(dom(s, query));
        query[4] = 'j'; /* another first byte of the label */
        assert_false(dom(s, query));
    }
    assert_true(dom(s, "anything.tld"));
    assert_true(dom(s, "a..tld"));
    assert_false(dom(s, "a.."));
    assert_false(dom(s, "."));
    assert_false(dom(s, ".."));
    assert_false(dom(s, "tld.."));
    ch_refset_free(s);
}

/* A set big enough for the Bloom filter (over 64k keys), with nested entries of many label
 * counts, some valid only for a while: batches (whose later stages only see the suffixes the
 * filter let through, in flat lists that can fill up) answer as single lookups do, including
 * queries of 64 labels and more and queries with dozens of suffixes to probe. */
static void test_batched_domain_lookups_on_a_filtered_set_answer_as_single_lookups_do(void **state)
{
    (void)state;
    enum { N = 90000, Q = 6000, DEEP = 70 };
    ch_refset *d = new_set(CH_REFSET_DOMAIN, 0);
    char name[260];
    for (int i = 0; i < N; i++) {
        uint64_t r = next_rand();
        snprintf(name, sizeof name, "%sh%x.z%u.example", (r >> 60) % 4 ? "" : "sub.",
                 (unsigned)(r & 0xfffff), (unsigned)(r >> 40) % 50);
        int64_t from = (r >> 20) % 5 == 0 ? 100 : CH_REFSET_ALWAYS;
        int64_t until = (r >> 22) % 6 == 0 ? 200 : CH_REFSET_NEVER;
        int rc = add_window(d, name, (r >> 24) & 1 ? "A" : "B", from, until);
        assert_true(rc == 0 || rc == 1);
    }
    /* a.example, a.a.example, ... DEEP labels of "a": every suffix of a deep query is listed. */
    size_t l = 0;
    for (int i = 0; i < DEEP; i++) {
        memcpy(name + l, "a.", 2);
        l += 2;
        memcpy(name + l, "example", 8);
        int rc = add_window(d, name, "deep", i % 3 == 0 ? 100 : CH_REFSET_ALWAYS, CH_REFSET_NEVER);
        assert_true(rc == 1);
    }
    assert_true(ch_refset_keys(d) > (1u << 16));
    static ch_refset_dq dq[Q];
    static const ch_refset_dq *dqp[Q];
    static int64_t at[Q];
    static const ch_refset_elem *hits[Q];
    for (int i = 0; i < Q; i++) {
        uint64_t r = next_rand();
        char q[260];
        if (r % 4 == 0) {
            /* 1 to 120 labels of "a" then "Example": deep, and past 64 labels */
            size_t n = 1 + (r >> 8) % 120, ql = 0;
            for (size_t j = 0; j < n && ql + 10 < sizeof q; j++) {
                memcpy(q + ql, "A.", 2);
                ql += 2;
            }
            memcpy(q + ql, "Example", 8);
        } else {
            snprintf(q, sizeof q, "%sh%x.z%u.EXAMPLE", r & 1 ? "www." : "",
                     (unsigned)((r >> 4) & (r & 2 ? 0xfffff : 0x3ff)), (unsigned)(r >> 40) % 50);
        }
        ch_refset_dq_prepare(&dq[i], q, strlen(q));
        dqp[i] = &dq[i];
        at[i] = (int64_t)((r >> 30) % 300);
    }
    size_t nh = ch_refset_contains_dq_batch(d, dqp, at, Q, hits), single = 0;
    for (int i = 0; i < Q; i++) {
        const ch_refset_elem *e = NULL;
        single += ch_refset_contains_dq(d, dqp[i], at[i], &e);
        assert_ptr_equal(hits[i], e);
    }
    assert_int_equal(nh, single);
    assert_true(nh > Q / 20);
    assert_true(nh < Q);
    ch_refset_free(d);
}

static void test_batched_lookups_answer_as_single_lookups_do(void **state)
{
    (void)state;
    enum { N = 3000, Q = 4000 };
    ch_refset *d = new_set(CH_REFSET_DOMAIN, 0), *n = new_set(CH_REFSET_IP, 0);
    static char names[N][48];
    static ch_ip nets[N];
    for (int i = 0; i < N; i++) {
        uint64_t r = next_rand();
        snprintf(names[i], sizeof names[i], "%s%x.d%u.example",
                 i % 5 ? "" : "a-long-label-over-31-bytes-", (unsigned)(r & 0xfff),
                 (unsigned)(r >> 40) % 7);
        /* Some keys hold elements valid only for a while, some several elements. */
        int64_t from = (r >> 20) % 3 == 0 ? 100 : CH_REFSET_ALWAYS;
        int64_t until = (r >> 22) % 4 == 0 ? 200 : CH_REFSET_NEVER;
        int rc = add_window(d, names[i], (r >> 24) & 1 ? "A" : "B", from, until);
        assert_true(rc == 0 || rc == 1);
        ch_ip ip = {0};
        ch_ip_parse("0.0.0.0", 7, &ip);
        memcpy(ip.b + 12, &r, 2);
        ip.b[14] = (uint8_t)(r >> 50);
        unsigned len = 16 + (unsigned)((r >> 32) % 17);
        nets[i] = ip;
        ch_refset_meta m = ch_refset_meta_make((r >> 24) & 1 ? "A" : "B", 0);
        m.valid_from = from;
        m.expiry = until;
        rc = ch_refset_add_ip(n, &ip, len, &m, NULL);
        assert_true(rc == 0 || rc == 1);
    }
    static ch_refset_dq dq[Q];
    static const ch_refset_dq *dqp[Q];
    static ch_ip ips[Q];
    static int64_t at[Q];
    static const ch_refset_elem *hits[Q];
    for (int i = 0; i < Q; i++) {
        uint64_t r = next_rand();
        char q[96];
        snprintf(q, sizeof q, "%s%s", r & 1 ? "www." : "", r & 2 ? names[r % N] : "nope.example");
        ch_refset_dq_prepare(&dq[i], q, strlen(q));
        dqp[i] = &dq[i];
        ips[i] = nets[(r >> 8) % N];
        ips[i].b[15] ^= (uint8_t)(r >> 30);
        if (r & 4)
            ips[i].b[13] ^= 0x55;
        if ((r & 0x78) == 0)
            ch_ip_parse("2001:db8::1", 11, &ips[i]);
        at[i] = (int64_t)((r >> 40) % 300);
    }
    size_t nh = ch_refset_contains_dq_batch(d, dqp, at, Q, hits), single = 0;
    for (int i = 0; i < Q; i++) {
        const ch_refset_elem *e = NULL;
        single += ch_refset_contains_dq(d, dqp[i], at[i], &e);
        assert_ptr_equal(hits[i], e);
    }
    assert_int_equal(nh, single);
    assert_true(nh > Q / 10);
    nh = ch_refset_contains_ip_batch(n, ips, at, Q, hits);
    single = 0;
    for (int i = 0; i < Q; i++) {
        const ch_refset_elem *e = NULL;
        single += ch_refset_contains_ip(n, &ips[i], at[i], &e);
        assert_ptr_equal(hits[i], e);
    }
    assert_int_equal(nh, single);
    assert_true(nh > Q / 10);
    /* A set of another type answers nothing, in batches too. */
    assert_int_equal(ch_refset_contains_ip_batch(d, ips, at, Q, hits), 0);
    assert_null(hits[0]);
    ch_refset_free(d);
    ch_refset_free(n);
}

/* ---- time --------------------------------------------------------------------------------- */

static void test_validity_window_is_checked_at_event_time(void **state)
{
    (void)state;
    ch_refset *s = new_set(CH_REFSET_DOMAIN, 0);
    assert_int_equal(add_window(s, "minexmr.com", "stix", 1000, 2000), 1);
    assert_false(ch_refset_contains_domain(s, "minexmr.com", 11, 999, NULL));
    assert_true(ch_refset_contains_domain(s, "minexmr.com", 11, 1000, NULL));
    assert_true(ch_refset_contains_domain(s, "minexmr.com", 11, 1999, NULL));
    assert_false(ch_refset_contains_domain(s, "minexmr.com", 11, 2000, NULL));
    ch_error err = {0};
    ch_refset_meta m = ch_refset_meta_make("x", 0);
    m.valid_from = 5;
    m.expiry = 5;
    assert_int_equal(ch_refset_add(s, "a.com", 5, &m, &err), CH_EUSAGE);
    ch_refset_free(s);
}

static void test_expire_drops_only_expired_elements(void **state)
{
    (void)state;
    ch_refset *s = new_set(CH_REFSET_IP, 0);
    assert_int_equal(add_window(s, "192.0.2.1", "f", CH_REFSET_ALWAYS, 100), 1);
    assert_int_equal(add_window(s, "192.0.2.0/24", "f", CH_REFSET_ALWAYS, 200), 1);
    assert_int_equal(add(s, "198.51.100.0/24", "f"), 1);
    assert_int_equal(ch_refset_expire(s, 99), 0);
    assert_int_equal(ch_refset_expire(s, 150), 1);
    assert_int_equal(ch_refset_count(s), 2);
    assert_int_equal(ch_refset_expire(s, 150), 0);
    char buf[64];
    /* The /32 is gone from memory; the /24 still answers events before its expiry. */
    assert_string_equal(ip_hit(s, "192.0.2.1", 50, buf, sizeof buf), "192.0.2.0/24");
    assert_int_equal(ch_refset_expire(s, INT64_MAX - 1), 1);
    assert_int_equal(ch_refset_count(s), 1);
    assert_true(has_ip(s, "198.51.100.9"));
    ch_refset_free(s);
}

static void test_refresh_by_same_source_replaces_window_and_widens_seen_times(void **state)
{
    (void)state;
    ch_refset *s = new_set(CH_REFSET_DOMAIN, 0);
    ch_refset_meta m = {"feed", "indicator--1", 10, 10, 0, 100};
    ch_error err = {0};
    assert_int_equal(ch_refset_add(s, "a.com", 5, &m, &err), 1);
    ch_refset_meta m2 = {"feed", "indicator--1", 5, 20, 50, 200};
    assert_int_equal(ch_refset_add(s, "a.com", 5, &m2, &err), 0);
    const ch_refset_elem *e = NULL;
    assert_true(ch_refset_contains_domain(s, "a.com", 5, 150, &e));
    assert_int_equal(e->first_seen, 5);
    assert_int_equal(e->last_seen, 20);
    assert_int_equal(e->valid_from, 50);
    assert_int_equal(e->expiry, 200);
    assert_string_equal(e->indicator, "indicator--1");
    assert_false(ch_refset_contains_domain(s, "a.com", 5, 40, NULL));
    assert_int_equal(ch_refset_count(s), 1);
    ch_refset_free(s);
}

static void test_other_source_adds_a_second_element_for_the_same_key(void **state)
{
    (void)state;
    ch_refset *s = new_set(CH_REFSET_DOMAIN, 0);
    assert_int_equal(add_window(s, "pool.example", "feedA", 0, 100), 1);
    assert_int_equal(add_window(s, "pool.example", "feedB", 200, 300), 1);
    assert_int_equal(ch_refset_count(s), 2);
    assert_int_equal(ch_refset_keys(s), 1);
    const ch_refset_elem *e = NULL;
    assert_true(ch_refset_contains_domain(s, "x.pool.example", 14, 50, &e));
    assert_string_equal(e->source, "feedA");
    assert_true(ch_refset_contains_domain(s, "x.pool.example", 14, 250, &e));
    assert_string_equal(e->source, "feedB");
    assert_false(ch_refset_contains_domain(s, "x.pool.example", 14, 150, &e));
    assert_null(e);
    /* Removing one source's element leaves the other. */
    assert_int_equal(ch_refset_remove(s, "pool.example", 12, "feedA", NULL, NULL), 1);
    assert_false(ch_refset_contains_domain(s, "pool.example", 12, 50, NULL));
    assert_true(ch_refset_contains_domain(s, "pool.example", 12, 250, NULL));
    assert_int_equal(ch_refset_remove(s, "pool.example", 12, "feedA", NULL, NULL), CH_ENOTFOUND);
    assert_int_equal(ch_refset_remove(s, "pool.example", 12, "nobody", NULL, NULL), CH_ENOTFOUND);
    assert_int_equal(ch_refset_remove(s, "pool.example", 12, NULL, NULL, NULL), 1);
    assert_int_equal(ch_refset_count(s), 0);
    assert_int_equal(ch_refset_keys(s), 0);
    ch_refset_free(s);
}

static void test_remove_and_remove_during_iteration(void **state)
{
    (void)state;
    ch_refset *s = new_set(CH_REFSET_DOMAIN, 0);
    char name[64];
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof name, "host%d.example%d.net", i, i % 7);
        assert_int_equal(add(s, name, i % 2 ? "odd" : "even"), 1);
    }
    assert_int_equal(ch_refset_remove(s, "host5.example5.net", 18, NULL, NULL, NULL), 1);
    assert_false(dom(s, "host5.example5.net"));
    assert_int_equal(ch_refset_remove(s, "absent.net", 10, NULL, NULL, NULL), CH_ENOTFOUND);
    assert_int_equal(ch_refset_remove(s, "bad..name", 9, NULL, NULL, NULL), CH_EPARSE);
    /* Drop every "odd" element while iterating. */
    size_t cur = 0;
    const ch_refset_elem *e;
    while ((e = ch_refset_next(s, &cur)) != NULL)
        if (strcmp(e->source, "odd") == 0)
            ch_refset_remove_elem(s, e);
    assert_int_equal(ch_refset_count(s), 500);
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof name, "www.host%d.example%d.net", i, i % 7);
        assert_int_equal(dom(s, name), i % 2 == 0);
    }
    /* Freed elements are reused before the set grows. */
    size_t mem = ch_refset_memory(s);
    for (int i = 1; i < 1000; i += 2) {
        snprintf(name, sizeof name, "again%d.example.org", i);
        assert_int_equal(add(s, name, "again"), 1);
    }
    assert_int_equal(ch_refset_count(s), 1000);
    assert_true(ch_refset_memory(s) < mem + 500 * 32);
    ch_refset_free(s);
}

/* ---- strings and numbers -------------------------------------------------------------------- */

static void test_string_set_is_exact_and_optionally_case_insensitive(void **state)
{
    (void)state;
    ch_refset *s = new_set(CH_REFSET_STRING, 0);
    assert_int_equal(add(s, "Kali Linux", "pack"), 1);
    assert_true(ch_refset_contains_str(s, "Kali Linux", 10, NOW, NULL));
    assert_false(ch_refset_contains_str(s, "kali linux", 10, NOW, NULL));
    assert_false(ch_refset_contains_str(s, "Kali Linu", 9, NOW, NULL));
    assert_false(ch_refset_contains_str(s, "a.Kali Linux", 12, NOW, NULL));
    ch_refset *ci = new_set(CH_REFSET_STRING, CH_REFSET_NOCASE);
    assert_int_equal(add(ci, "Kali Linux", "pack"), 1);
    assert_int_equal(add(ci, "KALI LINUX", "pack"), 0);
    assert_true(ch_refset_contains_str(ci, "kali linux", 10, NOW, NULL));
    assert_true(ch_refset_contains_str(ci, "kALI lINUX", 10, NOW, NULL));
    assert_true(ch_refset_contains(ci, "KALI linux", 10, NOW, NULL));
    ch_refset_free(s);
    ch_refset_free(ci);
}

static void test_number_set_holds_ports(void **state)
{
    (void)state;
    ch_refset *s = new_set(CH_REFSET_NUMBER, 0);
    assert_int_equal(add(s, "3333", "pack"), 1);
    assert_int_equal(add(s, "-7", "pack"), 1);
    ch_error err = {0};
    assert_int_equal(ch_refset_add_num(s, 14444, NULL, &err), 1);
    assert_int_equal(ch_refset_add(s, "9223372036854775808", 19, NULL, &err), CH_EPARSE);
    assert_int_equal(ch_refset_add(s, "-9223372036854775808", 20, NULL, &err), 1);
    assert_int_equal(ch_refset_add(s, "33x", 3, NULL, &err), CH_EPARSE);
    assert_true(ch_refset_contains_num(s, 3333, NOW, NULL));
    assert_true(ch_refset_contains_num(s, -7, NOW, NULL));
    assert_true(ch_refset_contains_num(s, INT64_MIN, 0, NULL));
    assert_true(ch_refset_contains(s, "14444", 5, 0, NULL));
    assert_false(ch_refset_contains_num(s, 3334, NOW, NULL));
    assert_false(ch_refset_contains(s, "port", 4, NOW, NULL));
    ch_refset_free(s);
}

static void test_lookups_of_another_type_miss(void **state)
{
    (void)state;
    ch_refset *s = new_set(CH_REFSET_NUMBER, 0);
    assert_int_equal(add(s, "3333", "pack"), 1);
    const ch_refset_elem *e = (const ch_refset_elem *)1;
    assert_false(ch_refset_contains_domain(s, "3333", 4, NOW, &e));
    assert_null(e);
    assert_false(ch_refset_contains_str(s, "3333", 4, NOW, NULL));
    assert_false(has_ip(s, "1.2.3.4"));
    ch_error err = {0};
    ch_ip a = ip("1.2.3.4");
    assert_int_equal(ch_refset_add_ip(s, &a, 32, NULL, &err), CH_EUSAGE);
    ch_refset_free(s);
}

/* ---- caps, options, registry ---------------------------------------------------------------- */

static void test_element_cap_refuses_and_counts(void **state)
{
    (void)state;
    ch_refset *s = NULL;
    ch_refset_opts o = {.max_elems = 3};
    ch_error err = {0};
    assert_int_equal(ch_refset_new(&s, "capped", CH_REFSET_NUMBER, &o, &err), CH_OK);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ch_refset_add_num(s, i, NULL, &err), 1);
    assert_int_equal(ch_refset_add_num(s, 99, NULL, &err), CH_ELIMIT);
    assert_int_equal(ch_refset_add_num(s, 100, NULL, &err), CH_ELIMIT);
    assert_int_equal(ch_refset_add_num(s, 1, NULL, &err), 0); /* refresh still works */
    assert_int_equal(ch_refset_dropped(s), 2);
    assert_int_equal(ch_refset_count(s), 3);
    ch_refset_free(s);
}

static void test_string_entry_longer_than_max_is_refused(void **state)
{
    (void)state;
    ch_refset *s = NULL;
    ch_refset_opts o = {.max_entry_len = 8};
    ch_error err = {0};
    assert_int_equal(ch_refset_new(&s, "short", CH_REFSET_STRING, &o, &err), CH_OK);
    assert_int_equal(ch_refset_add(s, "12345678", 8, NULL, &err), 1);
    assert_int_equal(ch_refset_add(s, "123456789", 9, NULL, &err), CH_ELIMIT);
    assert_false(ch_refset_contains_str(s, "123456789", 9, 0, NULL));
    assert_int_equal(ch_refset_dropped(s), 0);
    ch_refset_free(s);
}

static void test_bad_names_types_and_flags_are_refused(void **state)
{
    (void)state;
    ch_refset *s = NULL;
    ch_error err = {0};
    assert_int_equal(ch_refset_new(&s, "", CH_REFSET_IP, NULL, &err), CH_EUSAGE);
    assert_int_equal(ch_refset_new(&s, "has space", CH_REFSET_IP, NULL, &err), CH_EUSAGE);
    assert_int_equal(ch_refset_new(&s, "ok", (ch_refset_type)9, NULL, &err), CH_EUSAGE);
    ch_refset_opts o = {.flags = CH_REFSET_NOCASE};
    assert_int_equal(ch_refset_new(&s, "ok", CH_REFSET_DOMAIN, &o, &err), CH_EUSAGE);
    o.flags = CH_REFSET_EXACT;
    assert_int_equal(ch_refset_new(&s, "ok", CH_REFSET_IP, &o, &err), CH_EUSAGE);
    assert_null(s);
    ch_refset_type t;
    assert_int_equal(ch_refset_type_from_name("cidr", 4, &t), CH_OK);
    assert_int_equal(t, CH_REFSET_IP);
    assert_int_equal(ch_refset_type_from_name("port", 4, &t), CH_OK);
    assert_int_equal(t, CH_REFSET_NUMBER);
    assert_int_equal(ch_refset_type_from_name("bogus", 5, &t), CH_EPARSE);
    assert_string_equal(ch_refset_type_name(CH_REFSET_DOMAIN), "domain");
}

static void test_registry_resolves_names_and_owns_sets(void **state)
{
    (void)state;
    ch_refsets *r = NULL;
    ch_error err = {0};
    assert_int_equal(ch_refsets_new(&r), CH_OK);
    ch_refset *pools = NULL, *again = NULL, *ports = NULL;
    assert_int_equal(ch_refsets_ensure(r, "mining_pools", CH_REFSET_DOMAIN, NULL, &pools, &err),
                     CH_OK);
    assert_int_equal(ch_refsets_ensure(r, "mining_pools", CH_REFSET_DOMAIN, NULL, &again, &err),
                     CH_OK);
    assert_ptr_equal(pools, again);
    assert_int_equal(ch_refsets_ensure(r, "mining_pools", CH_REFSET_IP, NULL, &again, &err),
                     CH_EUSAGE);
    assert_int_equal(ch_refsets_ensure(r, "stratum_ports", CH_REFSET_NUMBER, NULL, &ports, &err),
                     CH_OK);
    assert_int_equal(add(pools, "supportxmr.com", "pack"), 1);
    const char *expr_name = "mining_pools and more";
    ch_refset *got = ch_refsets_get(r, expr_name, 12);
    assert_ptr_equal(got, pools);
    assert_null(ch_refsets_get(r, "mining_pool", 11));
    assert_null(ch_refsets_get(r, "absent", 6));
    assert_int_equal(ch_refsets_count(r), 2);
    assert_ptr_equal(ch_refsets_at(r, 1), ports);
    ch_refset *dup = new_set(CH_REFSET_IP, 0);
    ch_refset *dup2 = NULL;
    assert_int_equal(ch_refset_new(&dup2, "stratum_ports", CH_REFSET_IP, NULL, &err), CH_OK);
    assert_int_equal(ch_refsets_put(r, dup2, &err), CH_EUSAGE);
    ch_refset_free(dup2);
    assert_int_equal(ch_refsets_put(r, dup, &err), CH_OK);
    ch_refset *taken = ch_refsets_take(r, "stratum_ports", 13);
    assert_ptr_equal(taken, ports);
    assert_int_equal(ch_refsets_count(r), 2);
    ch_refset_free(taken);
    ch_refsets_free(r);
}

static void test_many_domains_survive_growth_and_deletion(void **state)
{
    (void)state;
    enum { N = 50000 };
    ch_refset *s = new_set(CH_REFSET_DOMAIN, 0);
    char name[64];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "h%x.d%d.example", i * 2654435761u, i % 97);
        assert_int_equal(add(s, name, "bulk"), 1);
    }
    for (int i = 0; i < N; i += 2) {
        snprintf(name, sizeof name, "h%x.d%d.example", i * 2654435761u, i % 97);
        assert_int_equal(ch_refset_remove(s, name, strlen(name), NULL, NULL, NULL), 1);
    }
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "sub.h%x.d%d.example", i * 2654435761u, i % 97);
        assert_int_equal(dom(s, name), i % 2 == 1);
    }
    assert_int_equal(ch_refset_count(s), N / 2);
    ch_refset_free(s);
}

static void test_large_ip_set_survives_growth_filter_and_deletion(void **state)
{
    (void)state;
    /* Big enough for the tables' filters and the full /16 length map. */
    enum { N = 150000 };
    static uint32_t addr[N];
    static unsigned len[N];
    ch_refset *s = new_set(CH_REFSET_IP, 0);
    for (int i = 0; i < N; i++) {
        uint64_t r = next_rand();
        len[i] = i % 5 == 0 ? 24 : i % 97 == 0 ? 12 : 32;
        addr[i] = (uint32_t)r & (0xffffffffu << (32 - len[i]));
        ch_ip ip;
        char txt[32];
        snprintf(txt, sizeof txt, "%u.%u.%u.%u", addr[i] >> 24, (addr[i] >> 16) & 255,
                 (addr[i] >> 8) & 255, addr[i] & 255);
        assert_true(ch_ip_parse(txt, strlen(txt), &ip));
        int rc = ch_refset_add_ip(s, &ip, len[i], NULL, NULL);
        assert_true(rc == 0 || rc == 1);
    }
    /* Remove the /32s of odd index (and their duplicates). */
    for (int i = 1; i < N; i += 2) {
        if (len[i] != 32)
            continue;
        char txt[32];
        snprintf(txt, sizeof txt, "%u.%u.%u.%u", addr[i] >> 24, (addr[i] >> 16) & 255,
                 (addr[i] >> 8) & 255, addr[i] & 255);
        int rc = ch_refset_remove(s, txt, strlen(txt), NULL, NULL, NULL);
        assert_true(rc == 1 || rc == CH_ENOTFOUND);
    }
    for (int i = 0; i < N; i++) {
        ch_ip ip;
        char txt[32];
        uint32_t a = addr[i] | (len[i] < 32 ? (uint32_t)next_rand() & (0xffffffffu >> len[i]) : 0);
        snprintf(txt, sizeof txt, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
        assert_true(ch_ip_parse(txt, strlen(txt), &ip));
        const ch_refset_elem *e = NULL;
        bool hit = ch_refset_contains_ip(s, &ip, NOW, &e);
        if (len[i] != 32 || i % 2 == 0) {
            assert_true(hit); /* a kept /32, or inside a /24 or /12 never removed */
            assert_true(e->len >= (len[i] == 32 ? 12u : len[i]));
        } else if (hit && e->len == 32) {
            /* A removed /32 answers as a /32 only if a kept index listed it too. */
            bool again = false;
            for (int j = 0; j < N && !again; j += 2)
                again = len[j] == 32 && addr[j] == addr[i];
            assert_true(again);
        }
    }
    ch_refset_free(s);
}

static void test_allocation_failures_leave_a_usable_set(void **state)
{
    (void)state;
    for (long fail = 0; fail < 60; fail++) {
        ch_refset *s = new_set(CH_REFSET_DOMAIN, 0);
        ch_mem_fail_after(fail);
        int ok = 0;
        char name[64];
        for (int i = 0; i < 40; i++) {
            snprintf(name, sizeof name, "n%d.example.org", i);
            ch_refset_meta m = ch_refset_meta_make(i % 3 ? "feedA" : "feedB", NOW);
            m.indicator = i % 2 ? "ind" : NULL;
            int rc = ch_refset_add(s, name, strlen(name), &m, NULL);
            assert_true(rc == 1 || rc == CH_ENOMEM || rc == CH_ELIMIT);
            ok += rc == 1;
        }
        ch_mem_fail_after(-1);
        assert_int_equal(ch_refset_count(s), (size_t)ok);
        size_t cur = 0, n = 0;
        const ch_refset_elem *e;
        while ((e = ch_refset_next(s, &cur)) != NULL) {
            assert_true(dom(s, e->key.str));
            n++;
        }
        assert_int_equal(n, (size_t)ok);
        ch_refset_free(s);
    }
}

/* ---- block lists ---------------------------------------------------------------------------- */

typedef struct loaded {
    ch_refset *dom, *ip;
    ch_refset_load_stats st;
    ch_diag diag;
    char *msgs;
    size_t msgs_len;
    FILE *sink;
} loaded;

static void load_text(loaded *l, const char *text, bool with_ip_set)
{
    memset(l, 0, sizeof *l);
    l->dom = new_set(CH_REFSET_DOMAIN, 0);
    l->ip = with_ip_set ? new_set(CH_REFSET_IP, 0) : NULL;
    l->sink = open_memstream(&l->msgs, &l->msgs_len);
    ch_diag_init(&l->diag, l->sink);
    ch_refset_load_opts o = {.meta = ch_refset_meta_make("testlist", NOW), .ip_set = l->ip};
    ch_error err = {0};
    assert_int_equal(
        ch_refset_load_mem(l->dom, text, strlen(text), "list.txt", &o, &l->diag, &l->st, &err),
        CH_OK);
    fflush(l->sink);
}

static void loaded_free(loaded *l)
{
    fclose(l->sink);
    free(l->msgs);
    ch_refset_free(l->dom);
    ch_refset_free(l->ip);
}

static void test_list_loader_reads_hosts_adblock_and_cidr_lines(void **state)
{
    (void)state;
    loaded l;
    load_text(&l,
              "# a comment\n"                                /* 1 */
              "! adblock comment\n"                          /* 2 */
              "\n"                                           /* 3 */
              "0.0.0.0 coinhive.com\r\n"                     /* 4 */
              "127.0.0.1 localhost\n"                        /* 5 */
              "0.0.0.0 a.minero.cc b.minero.cc # two\n"      /* 6 */
              "||supportxmr.com^\n"                          /* 7 */
              "||authedmine.com^$third-party,domain=~x.cz\n" /* 8 */
              "||coinimp.com$third-party\n"                  /* 9 */
              "||cryptoloot.pro/lib/crlt.js\n"               /* 10 */
              "||dekoder.ws^*?proxy=\n"                      /* 11 */
              "@@||allowed.example^\n"                       /* 12 */
              "example.org##.miner-banner\n"                 /* 13 */
              "/coinhive.min.js\n"                           /* 14 */
              "||23.83.114.131^\n"                           /* 15 */
              "203.0.113.0/24\n"                             /* 16 */
              "2001:db8::/32   # v6 net\n"                   /* 17 */
              "pool.minexmr.com:4444\n"                      /* 18 */
              "bad..domain\n"                                /* 19 */
              "two words here\n"                             /* 20 */
              "  ||XMRPOOL.net^  \n"                         /* 21 */
              "||coinhive.com^\n"                            /* 22: same source, refreshed */
              "||x.example^$csp=script-src 'none'\n"         /* 23 */
              "plain.example.net",                           /* 24, no newline */
              true);
    assert_true(dom(l.dom, "coinhive.com"));
    assert_true(dom(l.dom, "ws.a.minero.cc"));
    assert_true(dom(l.dom, "b.minero.cc"));
    assert_true(dom(l.dom, "pool.supportxmr.com"));
    assert_true(dom(l.dom, "authedmine.com"));
    assert_true(dom(l.dom, "coinimp.com"));
    assert_true(dom(l.dom, "xmrpool.net"));
    assert_true(dom(l.dom, "plain.example.net"));
    assert_false(dom(l.dom, "localhost"));
    assert_false(dom(l.dom, "cryptoloot.pro"));
    assert_false(dom(l.dom, "dekoder.ws"));
    assert_false(dom(l.dom, "allowed.example"));
    assert_false(dom(l.dom, "minexmr.com"));
    assert_false(dom(l.dom, "x.example"));
    assert_true(has_ip(l.ip, "23.83.114.131"));
    assert_true(has_ip(l.ip, "203.0.113.77"));
    assert_true(has_ip(l.ip, "2001:db8:1::1"));
    assert_int_equal(l.st.lines, 24);
    assert_int_equal(l.st.skipped, 4);
    assert_int_equal(l.st.added, 11); /* 8 domains, 3 networks */
    assert_int_equal(l.st.refreshed, 1);
    assert_int_equal(l.st.bad, 2);
    assert_int_equal(l.st.unsupported, 7);
    assert_int_equal(l.st.wrong_type, 0);
    assert_int_equal(ch_diag_count(&l.diag, "bad_entry"), 2);
    assert_int_equal(ch_diag_count(&l.diag, "unsupported_entry"), 7);
    assert_non_null(strstr(l.msgs, "list.txt:19: bad_entry"));
    assert_non_null(strstr(l.msgs, "list.txt:20: bad_entry"));
    assert_non_null(strstr(l.msgs, "list.txt:10: unsupported_entry"));
    assert_non_null(strstr(l.msgs, "list.txt:18: unsupported_entry"));
    const ch_refset_elem *e = NULL;
    assert_true(ch_refset_contains_domain(l.dom, "coinhive.com", 12, NOW, &e));
    assert_string_equal(e->source, "testlist");
    loaded_free(&l);
}

static void test_adblock_header_makes_plain_lines_substring_rules(void **state)
{
    (void)state;
    loaded l;
    load_text(&l,
              "[Adblock Plus 2.0]\n"
              "||a.example^\n"
              "-coin-hive.js\n"
              "b.example\n"
              "0.0.0.0 c.example\n",
              true);
    assert_true(dom(l.dom, "a.example"));
    assert_false(dom(l.dom, "b.example"));
    assert_true(dom(l.dom, "c.example"));
    assert_int_equal(l.st.added, 2);
    assert_int_equal(l.st.unsupported, 2);
    assert_non_null(strstr(l.msgs, "list.txt:3: unsupported_entry"));
    loaded_free(&l);
}

static void test_list_loader_counts_addresses_without_an_ip_set_as_wrong_type(void **state)
{
    (void)state;
    loaded l;
    load_text(&l, "198.51.100.1\nminer.example\n10.0.0.0/8\n", false);
    assert_int_equal(l.st.added, 1);
    assert_int_equal(l.st.wrong_type, 2);
    assert_int_equal(ch_diag_count(&l.diag, "wrong_type"), 2);
    loaded_free(&l);
    /* And an ip set given a domain list counts the domains. */
    ch_refset *s = new_set(CH_REFSET_IP, 0);
    ch_refset_load_stats st = {0};
    const char *t = "0.0.0.0 miner.example\n192.0.2.1\n";
    assert_int_equal(ch_refset_load_mem(s, t, strlen(t), "x", NULL, NULL, &st, NULL), CH_OK);
    assert_int_equal(st.added, 1);
    assert_int_equal(st.wrong_type, 1);
    ch_refset_free(s);
}

static void test_list_loader_counts_lines_too_long_and_full_sets(void **state)
{
    (void)state;
    ch_refset *s = NULL;
    ch_refset_opts so = {.max_elems = 2};
    ch_error err = {0};
    assert_int_equal(ch_refset_new(&s, "small", CH_REFSET_DOMAIN, &so, &err), CH_OK);
    char text[400];
    memset(text, 'a', 300);
    memcpy(text + 300, "\na.com\nb.com\nc.com\n", 20);
    ch_refset_load_opts o = {.meta = ch_refset_meta_make("f", 0), .max_line = 256};
    ch_refset_load_stats st = {0};
    ch_diag d;
    ch_diag_init(&d, NULL);
    assert_int_equal(ch_refset_load_mem(s, text, strlen(text), "x", &o, &d, &st, &err), CH_OK);
    assert_int_equal(st.lines, 4);
    assert_int_equal(st.bad, 1);
    assert_int_equal(st.added, 2);
    assert_int_equal(st.dropped, 1);
    assert_int_equal(ch_diag_count(&d, "line_too_long"), 1);
    assert_int_equal(ch_diag_count(&d, "set_full"), 1);
    ch_refset_free(s);
}

static void test_list_loader_reads_string_and_number_lists(void **state)
{
    (void)state;
    ch_refset *ports = new_set(CH_REFSET_NUMBER, 0);
    ch_refset *oses = new_set(CH_REFSET_STRING, CH_REFSET_NOCASE);
    ch_refset_load_stats st = {0};
    const char *p = "# stratum\n3333\n4444 # common\n\nnot-a-port\n45700\n";
    assert_int_equal(ch_refset_load_mem(ports, p, strlen(p), "ports", NULL, NULL, &st, NULL),
                     CH_OK);
    assert_int_equal(st.added, 3);
    assert_int_equal(st.bad, 1);
    assert_true(ch_refset_contains_num(ports, 4444, 0, NULL));
    const char *o = "Kali GNU/Linux\nParrot OS # with a hash\n";
    assert_int_equal(ch_refset_load_mem(oses, o, strlen(o), "oses", NULL, NULL, NULL, NULL), CH_OK);
    assert_true(ch_refset_contains_str(oses, "kali gnu/linux", 14, 0, NULL));
    assert_true(ch_refset_contains_str(oses, "parrot os # with a hash", 23, 0, NULL));
    ch_refset_free(ports);
    ch_refset_free(oses);
}

static void test_list_loader_reads_a_file_through_the_input_layer(void **state)
{
    (void)state;
    char path[] = "/tmp/test_refset_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *t = "# list\nminexmr.com\n||nanopool.org^\nbad!entry\n";
    assert_int_equal(write(fd, t, strlen(t)), (ssize_t)strlen(t));
    close(fd);
    ch_refset *s = new_set(CH_REFSET_DOMAIN, 0);
    ch_refset_load_stats st = {0};
    ch_diag d;
    ch_diag_init(&d, NULL);
    ch_error err = {0};
    assert_int_equal(ch_refset_load_path(s, path, NULL, &d, &st, &err), CH_OK);
    unlink(path);
    assert_int_equal(st.lines, 4);
    assert_int_equal(st.added, 2);
    assert_int_equal(ch_diag_count(&d, "bad_entry"), 1);
    assert_true(dom(s, "xmr.nanopool.org"));
    assert_int_equal(ch_refset_load_path(s, "/nonexistent/list", NULL, &d, &st, &err), CH_EIO);
    ch_refset_free(s);
}

/* ---- real lists ----------------------------------------------------------------------------- */

static void load_file(ch_refset *s, ch_refset *ip_set, const char *path, const char *source,
                      ch_refset_load_stats *st, ch_diag *d)
{
    ch_refset_load_opts o = {.meta = ch_refset_meta_make(source, NOW), .ip_set = ip_set};
    ch_error err = {0};
    memset(st, 0, sizeof *st);
    ch_diag_init(d, NULL);
    assert_int_equal(ch_refset_load_path(s, path, &o, d, st, &err), CH_OK);
}

static void test_coinblockerlists_hosts_file_loads_and_hits_coinhive(void **state)
{
    (void)state;
    REQUIRE(LISTS "coinblockerlists_2018/hosts");
    ch_refset *s = new_set(CH_REFSET_DOMAIN, 0);
    ch_refset_load_stats st;
    ch_diag d;
    load_file(s, NULL, LISTS "coinblockerlists_2018/hosts", "coinblocker", &st, &d);
    /* 5,843 lines: 6 comments, 5,837 hosts lines; two name a port (hashbag.cc:8688,
     * server.com:1234) and two are raw UTF-8 look-alikes of myetherwallet.com. */
    assert_int_equal(st.lines, 5843);
    assert_int_equal(st.skipped, 6);
    assert_int_equal(st.added, 5833);
    assert_int_equal(st.unsupported, 2);
    assert_int_equal(st.bad, 2);
    assert_int_equal(ch_diag_count(&d, "bad_entry"), 2);
    assert_int_equal(ch_refset_count(s), 5833);
    assert_true(dom(s, "coinhive.com"));
    assert_true(dom(s, "ws012.coinhive.com"));
    assert_true(dom(s, "coin-hive.com"));
    assert_true(dom(s, "pool.hashbag.cc"));
    assert_false(dom(s, "hashbag.cc"));
    assert_false(dom(s, "example.com"));
    assert_false(dom(s, "notcoinhive.com"));
    ch_refset_free(s);
}

static void test_coinblockerlists_domain_and_ip_lists_load(void **state)
{
    (void)state;
    REQUIRE(LISTS "coinblockerlists_2018/list.txt");
    REQUIRE(LISTS "coinblockerlists_2018/MiningServerIPList.txt");
    ch_refset *s = new_set(CH_REFSET_DOMAIN, 0), *ips = new_set(CH_REFSET_IP, 0);
    ch_refset_load_stats st;
    ch_diag d;
    load_file(s, NULL, LISTS "coinblockerlists_2018/list.txt", "coinblocker", &st, &d);
    assert_int_equal(st.lines, 5837);
    assert_int_equal(st.added, 5833);
    assert_int_equal(st.unsupported + st.bad, 4);
    assert_true(dom(s, "coinhive.com"));
    load_file(ips, NULL, LISTS "coinblockerlists_2018/MiningServerIPList.txt", "coinblocker", &st,
              &d);
    assert_int_equal(st.lines, 1033);
    assert_int_equal(st.skipped, 7);
    assert_int_equal(st.added, 1026);
    assert_int_equal(st.bad, 0);
    assert_true(has_ip(ips, "1.31.173.33"));
    assert_true(has_ip(ips, "103.1.221.39"));
    assert_false(has_ip(ips, "1.31.173.34"));
    ch_refset_free(s);
    ch_refset_free(ips);
}

static void test_nocoin_adblock_list_loads_hosts_and_counts_url_rules(void **state)
{
    (void)state;
    REQUIRE(LISTS "nocoin_hoshsadiq/nocoin.txt");
    ch_refset *s = new_set(CH_REFSET_DOMAIN, 0), *ips = new_set(CH_REFSET_IP, 0);
    ch_refset_load_stats st;
    ch_diag d;
    load_file(s, ips, LISTS "nocoin_hoshsadiq/nocoin.txt", "nocoin", &st, &d);
    /* 358 lines: 41 comments, blanks and the header; 212 "||" rules, of which 14 name a path,
     * a wildcard or a query (unsupported), 7 are addresses, and go.megabanners.cf comes twice;
     * the other 105 lines are URL patterns, exceptions and cosmetic filters. */
    assert_int_equal(st.lines, 358);
    assert_int_equal(st.skipped, 41);
    assert_int_equal(st.added, 197);
    assert_int_equal(st.refreshed, 1);
    assert_int_equal(st.unsupported, 119);
    assert_int_equal(st.bad, 0);
    assert_int_equal(ch_refset_count(s), 190);
    assert_int_equal(ch_refset_count(ips), 7);
    assert_true(dom(s, "2miners.com"));
    assert_true(dom(s, "xmr.2miners.com"));
    assert_true(dom(s, "cashbeet.com"));
    assert_true(has_ip(ips, "23.83.114.131"));
    assert_true(dom(s, "cryptobara.com"));     /* line 77 lists it whole */
    assert_false(dom(s, "shrink-service.it")); /* only a script path on it is listed */
    ch_refset_free(s);
    ch_refset_free(ips);
}

static void test_nocoin_hosts_file_loads_all_313_hosts(void **state)
{
    (void)state;
    REQUIRE(LISTS "nocoin_hoshsadiq/hosts.txt");
    ch_refset *s = new_set(CH_REFSET_DOMAIN, 0);
    ch_refset_load_stats st;
    ch_diag d;
    load_file(s, NULL, LISTS "nocoin_hoshsadiq/hosts.txt", "nocoin", &st, &d);
    assert_int_equal(st.lines, 324);
    assert_int_equal(st.added, 313);
    assert_int_equal(st.bad + st.unsupported + st.wrong_type, 0);
    assert_true(dom(s, "coinhiveproxy.com"));
    assert_true(dom(s, "1q2w3.fun"));
    assert_true(dom(s, "abc.pema.cl"));
    assert_false(dom(s, "pema.cl"));
    ch_refset_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_domain_suffix_matches_only_on_label_boundaries),
        cmocka_unit_test(test_domain_entries_are_lower_cased_and_trailing_dot_dropped),
        cmocka_unit_test(test_domain_wildcard_and_leading_dot_mean_the_bare_domain),
        cmocka_unit_test(test_domain_most_specific_listed_suffix_wins),
        cmocka_unit_test(test_exact_domain_set_does_not_match_subdomains),
        cmocka_unit_test(test_domain_entries_that_are_not_names_are_refused_with_a_reason),
        cmocka_unit_test(test_domain_query_longer_than_253_bytes_still_matches_its_suffix),
        cmocka_unit_test(test_prepared_query_is_probed_against_several_sets),
        cmocka_unit_test(test_ipv4_single_address_is_a_slash_32),
        cmocka_unit_test(test_ipv4_slash_8_and_slash_0),
        cmocka_unit_test(test_ipv6_slash_48_matches_inside_only),
        cmocka_unit_test(test_ipv4_and_ipv6_never_match_each_other),
        cmocka_unit_test(test_mapped_ipv6_text_with_prefix_from_96_is_an_ipv4_network),
        cmocka_unit_test(test_longest_prefix_hit_is_returned),
        cmocka_unit_test(test_expired_longer_prefix_falls_back_to_shorter_one),
        cmocka_unit_test(test_host_bits_of_a_cidr_are_masked),
        cmocka_unit_test(test_bad_addresses_and_prefixes_are_refused),
        cmocka_unit_test(test_random_networks_agree_with_brute_force_longest_prefix),
        cmocka_unit_test(test_validity_is_right_as_elements_of_one_key_come_and_go),
        cmocka_unit_test(test_long_domain_keys_and_empty_labels),
        cmocka_unit_test(test_batched_lookups_answer_as_single_lookups_do),
        cmocka_unit_test(test_batched_domain_lookups_on_a_filtered_set_answer_as_single_lookups_do),
        cmocka_unit_test(test_validity_window_is_checked_at_event_time),
        cmocka_unit_test(test_expire_drops_only_expired_elements),
        cmocka_unit_test(test_refresh_by_same_source_replaces_window_and_widens_seen_times),
        cmocka_unit_test(test_other_source_adds_a_second_element_for_the_same_key),
        cmocka_unit_test(test_remove_and_remove_during_iteration),
        cmocka_unit_test(test_string_set_is_exact_and_optionally_case_insensitive),
        cmocka_unit_test(test_number_set_holds_ports),
        cmocka_unit_test(test_lookups_of_another_type_miss),
        cmocka_unit_test(test_element_cap_refuses_and_counts),
        cmocka_unit_test(test_string_entry_longer_than_max_is_refused),
        cmocka_unit_test(test_bad_names_types_and_flags_are_refused),
        cmocka_unit_test(test_registry_resolves_names_and_owns_sets),
        cmocka_unit_test(test_many_domains_survive_growth_and_deletion),
        cmocka_unit_test(test_large_ip_set_survives_growth_filter_and_deletion),
        cmocka_unit_test(test_allocation_failures_leave_a_usable_set),
        cmocka_unit_test(test_list_loader_reads_hosts_adblock_and_cidr_lines),
        cmocka_unit_test(test_adblock_header_makes_plain_lines_substring_rules),
        cmocka_unit_test(test_list_loader_counts_addresses_without_an_ip_set_as_wrong_type),
        cmocka_unit_test(test_list_loader_counts_lines_too_long_and_full_sets),
        cmocka_unit_test(test_list_loader_reads_string_and_number_lists),
        cmocka_unit_test(test_list_loader_reads_a_file_through_the_input_layer),
        cmocka_unit_test(test_coinblockerlists_hosts_file_loads_and_hits_coinhive),
        cmocka_unit_test(test_coinblockerlists_domain_and_ip_lists_load),
        cmocka_unit_test(test_nocoin_adblock_list_loads_hosts_and_counts_url_rules),
        cmocka_unit_test(test_nocoin_hosts_file_loads_all_313_hosts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
