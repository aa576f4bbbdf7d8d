/*
 * test_intel_match.c - threat-intelligence matching of events (intel/intel_match.h): which
 * values of which datasets are matched, validity at the event's own time, the STIX metadata that
 * travels into the event (fields, JSON Lines, rule evidence), the no-intel fast path, loading
 * bundles, lists and the store for a run, and the `intel:` key of rule tests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/field.h"
#include "core/mem.h"
#include "core/timeparse.h"
#include "intel/intel_match.h"
#include "intel/intel_store.h"
#include "intel/stix.h"
#include "output/output.h"
#include "rules/rule.h"

#define T0 1717405200000LL /* 2024-06-03T09:00:00Z */
#define HOUR 3600000LL

typedef struct fx {
    ch_refsets *sets;
    ch_intel_catalog *cat;
    ch_intel_matcher *m;
} fx;

static void fx_open(fx *f)
{
    ch_error err = {0};
    assert_int_equal(ch_refsets_new(&f->sets), 0);
    assert_int_equal(ch_intel_catalog_new(&f->cat), 0);
    assert_int_equal(ch_intel_matcher_new(&f->m, f->sets, f->cat, &err), 0);
}

static void fx_close(fx *f)
{
    ch_intel_matcher_free(f->m);
    ch_intel_catalog_free(f->cat);
    ch_refsets_free(f->sets);
}

/* A set in the registry, registered with the matcher as an intel set. */
static ch_refset *intel_set(fx *f, const char *name, ch_refset_type type)
{
    ch_refset *s = NULL;
    ch_error err = {0};
    assert_int_equal(ch_refsets_ensure(f->sets, name, type, NULL, &s, &err), 0);
    assert_int_equal(ch_intel_matcher_add_set(f->m, s, &err), 1);
    return s;
}

static void add(ch_refset *s, const char *text, const char *feed, const char *ind, int64_t from,
                int64_t until)
{
    ch_refset_meta meta = {feed, ind, T0, T0, from, until};
    ch_error err = {0};
    int rc = ch_refset_add(s, text, strlen(text), &meta, &err);
    if (rc < 0)
        print_message("add %s: %s\n", text, err.msg);
    assert_true(rc >= 0);
}

static ch_ip ip_of(const char *s)
{
    ch_ip ip;
    assert_true(ch_ip_parse(s, strlen(s), &ip));
    return ip;
}

static ch_sv sv(const char *s) { return (ch_sv){s, (uint32_t)strlen(s)}; }

static void dns_event(ch_event *ev, int64_t ts, const char *qname)
{
    ch_event_reset(ev);
    ev->dataset = CH_DS_ROUTE53;
    ev->ts_ms = ts;
    ev->dns_qname = sv(qname);
    ev->src_ip = ip_of("172.31.0.5");
}

static void flow_event(ch_event *ev, int64_t ts, const char *src, const char *dst)
{
    ch_event_reset(ev);
    ev->dataset = CH_DS_VPCFLOW;
    ev->ts_ms = ts;
    ev->src_ip = ip_of(src);
    ev->dst_ip = ip_of(dst);
}

static void ct_event(ch_event *ev, int64_t ts, const char *src)
{
    ch_event_reset(ev);
    ev->dataset = CH_DS_CLOUDTRAIL;
    ev->ts_ms = ts;
    ev->action = sv("ConsoleLogin");
    ev->src_ip = ip_of(src);
}

static bool sv_is(ch_sv v, const char *s) { return v.n == strlen(s) && memcmp(v.p, s, v.n) == 0; }

static char *atomic_text(const ch_event *ev, char buf[64])
{
    if (ev->threat.atomic.n) {
        snprintf(buf, 64, "%.*s", (int)ev->threat.atomic.n, ev->threat.atomic.p);
    } else {
        size_t n = ch_ip_format(&ev->threat.atomic_ip, buf);
        buf[n] = '\0';
    }
    return buf;
}

/* ---- what is matched ------------------------------------------------------------------------ */

static void test_dns_query_name_matches_listed_domain_on_label_boundaries(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    ch_refset *d = intel_set(&f, "intel_domains", CH_REFSET_DOMAIN);
    add(d, "supportxmr.com", "pool-feed", "ind-1", CH_REFSET_ALWAYS, CH_REFSET_NEVER);
    ch_event ev;
    dns_event(&ev, T0, "gulf.pool.supportxmr.com");
    assert_true(ch_intel_match(f.m, &ev));
    assert_string_equal(ev.threat.set, "intel_domains");
    assert_string_equal(ev.threat.field, "dns.question.name");
    assert_true(sv_is(ev.threat.atomic, "gulf.pool.supportxmr.com"));
    assert_string_equal(ev.threat.feed, "pool-feed");
    assert_string_equal(ev.threat.indicator_id, "ind-1");
    assert_string_equal(ev.threat.indicator_name, ""); /* not in the catalog */
    assert_int_equal(ev.threat.confidence, -1);

    dns_event(&ev, T0, "notsupportxmr.com");
    assert_false(ch_intel_match(f.m, &ev));
    assert_null(ev.threat.set);
    dns_event(&ev, T0, "supportxmr.com.evil.example");
    assert_false(ch_intel_match(f.m, &ev));
    fx_close(&f);
}

static void test_dns_answers_match_addresses_and_cname_targets(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    ch_refset *ips = intel_set(&f, "intel_ips", CH_REFSET_IP);
    ch_refset *doms = intel_set(&f, "intel_domains", CH_REFSET_DOMAIN);
    add(ips, "203.0.113.0/24", "ip-feed", "", CH_REFSET_ALWAYS, CH_REFSET_NEVER);
    add(doms, "hashvault.pro", "dom-feed", "", CH_REFSET_ALWAYS, CH_REFSET_NEVER);
    ch_event ev;
    char buf[64];

    dns_event(&ev, T0, "innocent-looking.example");
    ev.dns_answers[0] = sv("192.0.2.1");
    ev.dns_answers[1] = sv("203.0.113.77");
    ev.dns_nanswers = 2;
    assert_true(ch_intel_match(f.m, &ev));
    assert_string_equal(ev.threat.field, "dns.answers.data");
    assert_string_equal(ev.threat.set, "intel_ips");
    assert_int_equal(ev.threat.atomic.n, 0);
    assert_string_equal(atomic_text(&ev, buf), "203.0.113.77");

    dns_event(&ev, T0, "cdn.innocent-looking.example");
    ev.dns_answers[0] = sv("pool.hashvault.pro.");
    ev.dns_answers[1] = sv("192.0.2.1");
    ev.dns_nanswers = 2;
    assert_true(ch_intel_match(f.m, &ev));
    assert_string_equal(ev.threat.set, "intel_domains");
    assert_string_equal(ev.threat.feed, "dom-feed");
    assert_string_equal(atomic_text(&ev, buf), "pool.hashvault.pro.");

    /* The query name wins over the answers: it is checked first. */
    dns_event(&ev, T0, "gulf.hashvault.pro");
    ev.dns_answers[0] = sv("203.0.113.9");
    ev.dns_nanswers = 1;
    assert_true(ch_intel_match(f.m, &ev));
    assert_string_equal(ev.threat.field, "dns.question.name");
    fx_close(&f);
}

static void test_flow_destination_and_inbound_source_match_address_sets(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    ch_refset *ips = intel_set(&f, "intel_ips", CH_REFSET_IP);
    add(ips, "94.130.12.27", "pools", "", CH_REFSET_ALWAYS, CH_REFSET_NEVER);
    add(ips, "2001:db8:77::/48", "pools", "", CH_REFSET_ALWAYS, CH_REFSET_NEVER);
    add(ips, "172.31.0.99", "odd-feed", "", CH_REFSET_ALWAYS, CH_REFSET_NEVER);
    ch_event ev;
    char buf[64];

    flow_event(&ev, T0, "172.31.0.99", "94.130.12.27");
    assert_true(ch_intel_match(f.m, &ev));
    assert_string_equal(ev.threat.field, "destination.ip");
    assert_string_equal(atomic_text(&ev, buf), "94.130.12.27");

    flow_event(&ev, T0, "94.130.12.27", "172.31.0.10");
    assert_true(ch_intel_match(f.m, &ev));
    assert_string_equal(ev.threat.field, "source.ip");

    flow_event(&ev, T0, "2600:1f18::5", "2001:db8:77::1");
    assert_true(ch_intel_match(f.m, &ev));
    assert_string_equal(atomic_text(&ev, buf), "2001:db8:77::1");

    /* The internal side of a flow is never taken as a threat source. */
    flow_event(&ev, T0, "172.31.0.99", "192.0.2.1");
    assert_false(ch_intel_match(f.m, &ev));
    fx_close(&f);
}

static void test_cloudtrail_source_ip_matches_listed_network(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    ch_refset *ips = intel_set(&f, "proxies", CH_REFSET_IP);
    add(ips, "198.51.100.0/24", "proxy-feed", "", CH_REFSET_ALWAYS, CH_REFSET_NEVER);
    ch_event ev;
    ct_event(&ev, T0, "198.51.100.23");
    assert_true(ch_intel_match(f.m, &ev));
    assert_string_equal(ev.threat.field, "source.ip");
    assert_string_equal(ev.threat.set, "proxies");
    ct_event(&ev, T0, "198.51.101.23");
    assert_false(ch_intel_match(f.m, &ev));
    /* A CloudTrail call made by a service (no address) is not matched. */
    ch_event_reset(&ev);
    ev.dataset = CH_DS_CLOUDTRAIL;
    ev.src_address = sv("ec2.amazonaws.com");
    assert_false(ch_intel_match(f.m, &ev));
    fx_close(&f);
}

/* ---- time ----------------------------------------------------------------------------------- */

static void test_expired_and_not_yet_valid_indicators_stay_silent(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    ch_refset *d = intel_set(&f, "intel_domains", CH_REFSET_DOMAIN);
    ch_refset *ips = intel_set(&f, "intel_ips", CH_REFSET_IP);
    /* Valid for [T0, T0 + 1h): the event's own time decides, not the wall clock. */
    add(d, "xmrpool.eu", "f", "ind-window", T0, T0 + HOUR);
    add(ips, "203.0.113.5", "f", "ind-window", T0, T0 + HOUR);
    ch_event ev;

    dns_event(&ev, T0 - 1, "pool.xmrpool.eu");
    assert_false(ch_intel_match(f.m, &ev)); /* not yet valid */
    dns_event(&ev, T0, "pool.xmrpool.eu");
    assert_true(ch_intel_match(f.m, &ev));
    dns_event(&ev, T0 + HOUR - 1, "pool.xmrpool.eu");
    assert_true(ch_intel_match(f.m, &ev));
    dns_event(&ev, T0 + HOUR, "pool.xmrpool.eu");
    assert_false(ch_intel_match(f.m, &ev)); /* expired: valid_until is exclusive */

    flow_event(&ev, T0 + 2 * HOUR, "172.31.0.9", "203.0.113.5");
    assert_false(ch_intel_match(f.m, &ev));
    flow_event(&ev, T0 - HOUR, "172.31.0.9", "203.0.113.5");
    assert_false(ch_intel_match(f.m, &ev));
    flow_event(&ev, T0 + 30 * 60000, "172.31.0.9", "203.0.113.5");
    assert_true(ch_intel_match(f.m, &ev));
    fx_close(&f);
}

/* ---- metadata ------------------------------------------------------------------------------- */

static const char bundle[] =
    "{\"type\":\"bundle\",\"id\":\"bundle--6c1d5e0a-35b1-4f3c-8a0f-2b2c6a9f1e10\",\"objects\":["
    "{\"type\":\"identity\",\"spec_version\":\"2.1\","
    "\"id\":\"identity--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f\","
    "\"created\":\"2024-01-01T00:00:00Z\",\"modified\":\"2024-01-01T00:00:00Z\","
    "\"name\":\"Example Mining Watch\",\"identity_class\":\"organization\"},"
    "{\"type\":\"indicator\",\"spec_version\":\"2.1\","
    "\"id\":\"indicator--3f1c9a52-6b1e-4d7e-9a55-0d3c1f2b7a01\","
    "\"created\":\"2024-01-01T00:00:00Z\",\"modified\":\"2024-01-01T00:00:00Z\","
    "\"created_by_ref\":\"identity--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f\","
    "\"name\":\"MineXMR Monero pool\",\"indicator_types\":[\"malicious-activity\"],"
    "\"confidence\":85,\"pattern\":\"[domain-name:value = 'minexmr.com'] OR "
    "[ipv4-addr:value = '203.0.113.77']\",\"pattern_type\":\"stix\","
    "\"valid_from\":\"2024-01-01T00:00:00Z\"},"
    "{\"type\":\"indicator\",\"spec_version\":\"2.1\","
    "\"id\":\"indicator--3f1c9a52-6b1e-4d7e-9a55-0d3c1f2b7a03\","
    "\"created\":\"2023-01-01T00:00:00Z\",\"modified\":\"2023-01-01T00:00:00Z\","
    "\"name\":\"Retired pool\",\"pattern\":\"[domain-name:value = 'xmrpool.eu']\","
    "\"pattern_type\":\"stix\",\"valid_from\":\"2023-01-01T00:00:00Z\","
    "\"valid_until\":\"2023-12-31T00:00:00Z\"}]}";

static void test_stix_metadata_travels_into_event_fields_json_and_evidence(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    ch_stix_opts so = {"mining-watch", NULL, NULL, NULL, T0, false};
    ch_stix_ctx *ctx = NULL;
    ch_error err = {0};
    assert_int_equal(ch_stix_ctx_new(&ctx, f.sets, f.cat, NULL, &so, &err), 0);
    assert_int_equal(ch_stix_ingest_mem(ctx, bundle, strlen(bundle), "b", NULL, &err), 0);
    ch_stix_ctx_free(ctx);
    assert_int_equal(ch_intel_matcher_add_named(f.m, CH_STIX_DEFAULT_DOMAIN_SET, &err), 1);
    assert_int_equal(ch_intel_matcher_add_named(f.m, CH_STIX_DEFAULT_IP_SET, &err), 1);
    assert_int_equal(ch_intel_matcher_add_named(f.m, "no_such_set", &err), CH_ENOTFOUND);
    assert_int_equal(ch_intel_matcher_count(f.m), 2);

    ch_event ev;
    dns_event(&ev, T0, "xmr.minexmr.com");
    assert_true(ch_intel_match(f.m, &ev));
    assert_string_equal(ev.threat.indicator_id, "indicator--3f1c9a52-6b1e-4d7e-9a55-0d3c1f2b7a01");
    assert_string_equal(ev.threat.indicator_name, "MineXMR Monero pool");
    assert_string_equal(ev.threat.indicator_types, "malicious-activity");
    assert_string_equal(ev.threat.provider, "Example Mining Watch");
    assert_string_equal(ev.threat.feed, "mining-watch");
    assert_int_equal(ev.threat.confidence, 85);

    /* Rules read the typed fields. */
    static const struct {
        const char *path, *text;
    } want[] = {
        {"threat.enrichments.matched.atomic", "xmr.minexmr.com"},
        {"threat.enrichments.matched.field", "dns.question.name"},
        {"threat.indicator.id", "indicator--3f1c9a52-6b1e-4d7e-9a55-0d3c1f2b7a01"},
        {"threat.indicator.name", "MineXMR Monero pool"},
        {"threat.indicator.confidence", "85"},
        {"threat.indicator.provider", "Example Mining Watch"},
        {"threat.feed.name", "mining-watch"},
        {"threat.set", "intel_domains"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        ch_field_ref *r = NULL;
        ch_value v;
        char tb[CH_VALUE_TEXT_MAX];
        assert_int_equal(ch_field_resolve(want[i].path, strlen(want[i].path), &r, &err), 0);
        assert_non_null(ch_field_ref_info(r)); /* a normalized slot, not a raw path */
        assert_true(ch_field_first(r, &ev, NULL, &v));
        ch_sv t = ch_value_text(&v, tb);
        if (!sv_is(t, want[i].text))
            fail_msg("%s = '%.*s', want '%s'", want[i].path, (int)t.n, t.p, want[i].text);
        ch_event plain;
        dns_event(&plain, T0, "example.com");
        assert_false(ch_field_first(r, &plain, NULL, &v)); /* absent without a match */
        ch_field_ref_free(r);
    }

    /* JSON Lines: one threat object, only when set. */
    ch_buf b;
    ch_buf_init(&b, 1 << 20);
    assert_int_equal(ch_event_to_json(&ev, &b), 0);
    assert_non_null(strstr(b.data, "\"threat\":{\"enrichments\":[{\"matched\":{\"atomic\":"
                                   "\"xmr.minexmr.com\",\"field\":\"dns.question.name\"}}],"
                                   "\"indicator\":{\"id\":\"indicator--3f1c9a52-6b1e-4d7e-9a55-"
                                   "0d3c1f2b7a01\",\"name\":\"MineXMR Monero pool\",\"provider\":"
                                   "\"Example Mining Watch\",\"confidence\":85},\"feed\":{\"name\":"
                                   "\"mining-watch\"},\"set\":\"intel_domains\"}"));
    ch_buf_clear(&b);
    flow_event(&ev, T0, "172.31.0.5", "203.0.113.77");
    assert_true(ch_intel_match(f.m, &ev));
    assert_int_equal(ch_event_to_json(&ev, &b), 0);
    assert_non_null(strstr(b.data, "\"matched\":{\"atomic\":\"203.0.113.77\",\"field\":"
                                   "\"destination.ip\"}"));
    ch_buf_clear(&b);
    flow_event(&ev, T0, "172.31.0.5", "192.0.2.1");
    assert_false(ch_intel_match(f.m, &ev));
    assert_int_equal(ch_event_to_json(&ev, &b), 0);
    assert_null(strstr(b.data, "threat"));

    /* Evidence text for rule hits. */
    ch_buf_clear(&b);
    dns_event(&ev, T0, "xmr.minexmr.com");
    assert_true(ch_intel_match(f.m, &ev));
    assert_int_equal(ch_threat_describe(&ev.threat, &b), 0);
    assert_string_equal(b.data, "intel: xmr.minexmr.com (dns.question.name) in intel_domains "
                                "(feed mining-watch, indicator indicator--3f1c9a52-6b1e-4d7e-"
                                "9a55-0d3c1f2b7a01 'MineXMR Monero pool', types malicious-"
                                "activity, created by Example Mining Watch, confidence 85)");

    /* The expired indicator of the same bundle is silent at the event's time. */
    dns_event(&ev, T0, "pool.xmrpool.eu");
    assert_false(ch_intel_match(f.m, &ev));
    ch_buf_free(&b);
    fx_close(&f);
}

/* ---- the fast path -------------------------------------------------------------------------- */

static void test_no_intel_sets_costs_nothing_and_never_matches(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    ch_event ev;
    dns_event(&ev, T0, "xmr.minexmr.com");
    /* A pack set in the registry is not an intel set until registered. */
    ch_refset *pack = NULL;
    ch_error err = {0};
    assert_int_equal(
        ch_refsets_ensure(f.sets, "mining_domains", CH_REFSET_DOMAIN, NULL, &pack, &err), 0);
    add(pack, "minexmr.com", "pack", "", CH_REFSET_ALWAYS, CH_REFSET_NEVER);
    /* Sets of other types are ignored, not errors. */
    ch_refset *ports = NULL;
    assert_int_equal(
        ch_refsets_ensure(f.sets, "stratum_ports", CH_REFSET_NUMBER, NULL, &ports, &err), 0);
    assert_int_equal(ch_intel_matcher_add_set(f.m, ports, &err), 0);
    assert_int_equal(ch_intel_matcher_count(f.m), 0);

    /* With nothing registered the call returns before touching the event. */
    ev.threat.confidence = 1234;
    assert_false(ch_intel_match(f.m, &ev));
    assert_false(ch_intel_match(NULL, &ev));
    assert_null(ev.threat.set);
    assert_int_equal(ev.threat.confidence, 1234);

    /* The best of 20 rounds, so that a busy machine does not make the test flaky. */
    long hits = 0;
    double best = 1e9;
    for (int round = 0; round < 20; round++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (int i = 0; i < 1000000; i++)
            hits += ch_intel_match(f.m, &ev);
        clock_gettime(CLOCK_MONOTONIC, &b);
        double ns = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / 1e6;
        if (ns < best)
            best = ns;
    }
    print_message("no intel sets: %.2f ns per event\n", best);
    assert_int_equal(hits, 0);
    assert_true(best < 50.0); /* a test and a return (about 2 ns); generous for sanitizers */

    /* Registered twice counts once; then it matches. */
    assert_int_equal(ch_intel_matcher_add_set(f.m, pack, &err), 1);
    assert_int_equal(ch_intel_matcher_add_set(f.m, pack, &err), 0);
    assert_true(ch_intel_match(f.m, &ev));
    assert_int_equal(ev.threat.confidence, -1);
    fx_close(&f);
}

/* ---- loading -------------------------------------------------------------------------------- */

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
}

static void test_matcher_load_reads_bundles_lists_and_the_store(void **state)
{
    (void)state;
    char dir[] = "/tmp/ch_intel_match_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char pb[256], pl[256], pi[256], pdb[256];
    snprintf(pb, sizeof pb, "%s/watch.json", dir);
    snprintf(pl, sizeof pl, "%s/coinlist.txt", dir);
    snprintf(pi, sizeof pi, "%s/pool_addrs.txt", dir);
    snprintf(pdb, sizeof pdb, "%s/intel.db", dir);
    write_file(pb, bundle);
    write_file(pl, "# browser miners\n||coinhive.com^\n0.0.0.0 webmine.example\n"
                   "192.0.2.66\nnot a domain!\n");
    write_file(pi, "94.130.12.0/24\n2001:db8:99::/48 # pool v6\n");

    /* A stored set, as `intel load` or `refset add` leaves it. */
    ch_error err = {0};
    ch_intel_store *st = NULL;
    assert_int_equal(ch_intel_store_open(pdb, &st, &err), 0);
    assert_int_equal(ch_intel_store_set_ensure(st, "taxii_pools", CH_REFSET_DOMAIN, 0, &err), 0);
    ch_refset_meta meta = {
        "taxii:pools", "indicator--00000000-0000-4000-8000-000000000001", T0, T0, CH_REFSET_ALWAYS,
        T0 - HOUR};
    assert_int_equal(ch_intel_store_elem_put(st, "taxii_pools", "gone.example", &meta, T0, &err),
                     0);
    meta.expiry = CH_REFSET_NEVER;
    assert_int_equal(ch_intel_store_elem_put(st, "taxii_pools", "nanopool.org", &meta, T0, &err),
                     0);

    fx f;
    fx_open(&f);
    ch_diag diag;
    ch_diag_init(&diag, NULL);
    const char *files[] = {pb, pl, pi};
    int rc = ch_intel_matcher_load(f.m, f.sets, f.cat, files, 3, st, &diag, &err);
    if (rc < 0)
        print_message("load: %s\n", err.msg);
    assert_int_equal(rc, 0);
    const ch_intel_load_stats *ls = ch_intel_matcher_load_stats(f.m);
    assert_int_equal(ls->files, 3);
    assert_int_equal(ls->bundles, 1);
    assert_int_equal(ls->lists, 2);
    assert_int_equal(ls->indicators, 2);
    assert_int_equal(ls->stored_elements, 2); /* expired ones too: event time decides */
    assert_int_equal(ls->bad, 1);             /* "not a domain!" */
    /* intel_domains, intel_ips, coinlist, coinlist_ips, pool_addrs, taxii_pools */
    assert_int_equal(ch_intel_matcher_count(f.m), 6);
    assert_non_null(ch_refsets_get(f.sets, "coinlist_ips", 12));
    assert_int_equal(ch_refset_type_of(ch_refsets_get(f.sets, "pool_addrs", 10)), CH_REFSET_IP);

    ch_event ev;
    dns_event(&ev, T0, "a.coinhive.com");
    assert_true(ch_intel_match(f.m, &ev));
    assert_string_equal(ev.threat.set, "coinlist");
    assert_string_equal(ev.threat.feed, "coinlist");
    dns_event(&ev, T0, "webmine.example");
    assert_true(ch_intel_match(f.m, &ev));
    flow_event(&ev, T0, "172.31.0.5", "192.0.2.66");
    assert_true(ch_intel_match(f.m, &ev));
    assert_string_equal(ev.threat.set, "coinlist_ips");
    flow_event(&ev, T0, "172.31.0.5", "2001:db8:99::1");
    assert_true(ch_intel_match(f.m, &ev));
    assert_string_equal(ev.threat.set, "pool_addrs");
    dns_event(&ev, T0, "xmr-eu1.nanopool.org");
    assert_true(ch_intel_match(f.m, &ev));
    assert_string_equal(ev.threat.set, "taxii_pools");
    assert_string_equal(ev.threat.feed, "taxii:pools");
    dns_event(&ev, T0 - 2 * HOUR, "gone.example");
    assert_true(ch_intel_match(f.m, &ev)); /* before its expiry */
    dns_event(&ev, T0, "gone.example");
    assert_false(ch_intel_match(f.m, &ev));
    dns_event(&ev, T0, "x.minexmr.com");
    assert_true(ch_intel_match(f.m, &ev));
    assert_string_equal(ev.threat.feed, "watch");
    assert_int_equal(ev.threat.confidence, 85);

    /* A list without stray addresses leaves no empty sibling set behind. */
    assert_null(ch_refsets_get(f.sets, "pool_addrs_ips", 14));
    /* Another registry than the matcher's is refused; a missing file names itself. */
    ch_refsets *other = NULL;
    assert_int_equal(ch_refsets_new(&other), 0);
    assert_int_equal(ch_intel_matcher_load(f.m, other, f.cat, NULL, 0, NULL, NULL, &err),
                     CH_EUSAGE);
    ch_refsets_free(other);
    const char *missing[] = {"/nonexistent/feed.txt"};
    assert_true(ch_intel_matcher_load(f.m, f.sets, f.cat, missing, 1, NULL, NULL, &err) < 0);
    assert_non_null(strstr(err.msg, "/nonexistent/feed.txt"));

    fx_close(&f);
    ch_intel_store_close(st);
    unlink(pb);
    unlink(pl);
    unlink(pi);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* Issue 16 item 3: a URL indicator names one file, not its host. A bundle listing a miner
 * script on raw.githubusercontent.com (and one on a bare address) must not make every query
 * for that host, its subdomains or flows to that address a CJ-MINE-03 hit. */
static void test_url_indicator_never_matches_its_host(void **state)
{
    (void)state;
    char dir[] = "/tmp/ch_intel_url_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char pb[256];
    snprintf(pb, sizeof pb, "%s/urls.json", dir);
    write_file(pb, "{\"type\":\"bundle\",\"id\":\"bundle--1\",\"objects\":[{\"type\":"
                   "\"indicator\",\"spec_version\":\"2.1\",\"id\":\"indicator--"
                   "11111111-1111-4111-8111-111111111111\",\"created\":\"2024-01-01T00:00:00."
                   "000Z\",\"modified\":\"2024-01-01T00:00:00.000Z\",\"valid_from\":\"2024-"
                   "01-01T00:00:00.000Z\",\"pattern_type\":\"stix\",\"pattern\":\"[url:value "
                   "= 'https://raw.githubusercontent.com/evil/miner/main/xmrig.sh'] OR "
                   "[url:value = 'http://203.0.113.77/xmrig']\"}]}");
    fx f;
    fx_open(&f);
    ch_error err = {0};
    const char *files[] = {pb};
    assert_int_equal(ch_intel_matcher_load(f.m, f.sets, f.cat, files, 1, NULL, NULL, &err), 0);
    ch_event ev;
    dns_event(&ev, T0, "raw.githubusercontent.com");
    assert_false(ch_intel_match(f.m, &ev));
    dns_event(&ev, T0, "objects.raw.githubusercontent.com");
    assert_false(ch_intel_match(f.m, &ev));
    flow_event(&ev, T0, "172.31.0.5", "203.0.113.77");
    assert_false(ch_intel_match(f.m, &ev));
    /* The URLs themselves are held, for sources that carry URLs. */
    ch_refset *u = ch_refsets_get(f.sets, "intel_urls", 10);
    assert_non_null(u);
    assert_int_equal(ch_refset_count(u), 2);
    fx_close(&f);
    unlink(pb);
    rmdir(dir);
}

/* ---- rule tests name intel files ------------------------------------------------------------ */

static void test_rule_test_cases_take_optional_intel_files(void **state)
{
    (void)state;
    ch_refsets *sets = NULL;
    ch_expr_env env;
    assert_int_equal(ch_refsets_new(&sets), 0);
    ch_rule_env_init(&env, sets);
    static const char ok[] =
        "id: T-1\ntitle: t\nseverity: 1\ncredibility: 1\nrelevance: 1\nwhere: threat.set exists\n"
        "tests:\n"
        "  - {name: a, events: ../tests/a.jsonl, intel: [../tests/f.json, /abs/l.txt], "
        "expect: fire}\n"
        "  - {name: b, events: ../tests/a.jsonl, intel: ../tests/f.json, expect: silent}\n"
        "  - {name: c, events: ../tests/a.jsonl, expect: silent}\n";
    ch_rule *r = NULL;
    ch_error err = {0};
    int rc = ch_rule_load_mem("pack/rules/t.yml", ok, strlen(ok), &env, sets, &r, &err);
    if (rc < 0)
        print_message("%s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(r->ntests, 3);
    assert_int_equal(r->tests[0].nintel, 2);
    assert_string_equal(r->tests[0].intel[0], "pack/rules/../tests/f.json");
    assert_string_equal(r->tests[0].intel[1], "/abs/l.txt");
    assert_int_equal(r->tests[1].nintel, 1);
    assert_int_equal(r->tests[2].nintel, 0);
    ch_rule_free(r);

    static const char typo[] =
        "id: T-2\ntitle: t\nseverity: 1\ncredibility: 1\nrelevance: 1\nwhere: threat.set exists\n"
        "tests:\n"
        "  - {name: a, events: a.jsonl, intell: f.json, expect: fire}\n";
    assert_int_equal(ch_rule_load_mem("pack/rules/t.yml", typo, strlen(typo), &env, sets, &r, &err),
                     CH_EPARSE);
    assert_non_null(strstr(err.msg, "unknown key 'intell'"));
    static const char empty[] =
        "id: T-3\ntitle: t\nseverity: 1\ncredibility: 1\nrelevance: 1\nwhere: threat.set exists\n"
        "tests:\n"
        "  - {name: a, events: a.jsonl, intel: [], expect: fire}\n";
    assert_int_equal(
        ch_rule_load_mem("pack/rules/t.yml", empty, strlen(empty), &env, sets, &r, &err),
        CH_EPARSE);
    assert_non_null(strstr(err.msg, "'intel'"));
    ch_refsets_free(sets);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dns_query_name_matches_listed_domain_on_label_boundaries),
        cmocka_unit_test(test_dns_answers_match_addresses_and_cname_targets),
        cmocka_unit_test(test_flow_destination_and_inbound_source_match_address_sets),
        cmocka_unit_test(test_cloudtrail_source_ip_matches_listed_network),
        cmocka_unit_test(test_expired_and_not_yet_valid_indicators_stay_silent),
        cmocka_unit_test(test_stix_metadata_travels_into_event_fields_json_and_evidence),
        cmocka_unit_test(test_no_intel_sets_costs_nothing_and_never_matches),
        cmocka_unit_test(test_matcher_load_reads_bundles_lists_and_the_store),
        cmocka_unit_test(test_url_indicator_never_matches_its_host),
        cmocka_unit_test(test_rule_test_cases_take_optional_intel_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
