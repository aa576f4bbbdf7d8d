/*
 * test_taxii_roundtrip.c - a shareable reference set and offense observables go from one
 * database through coinhound's TAXII server (in process, 127.0.0.1:0) and `coinhound intel
 * pull` into another database, and come out equal; a second pull after new elements fetches
 * only those. Also: `intel serve` refuses to start without credentials.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cmd_intel_taxii.h"
#include "core/json.h"
#include "core/mem.h"
#include "intel/intel_store.h"
#include "intel/taxii_publish.h"
#include "intel/taxii_server.h"
#include "offense/store.h"

#define T0 1722588804000LL
#define NOW 1730000000000LL

static char dir[64], src_db[128], dst_db[128];

static int setup(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/ch_taxii_rt_XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(src_db, sizeof src_db, "%s/src.db", dir);
    snprintf(dst_db, sizeof dst_db, "%s/dst.db", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void put(ch_intel_store *s, const char *set, const char *value, int64_t first)
{
    ch_refset_meta m = {"local-analysts", "", first, first, CH_REFSET_ALWAYS, CH_REFSET_NEVER};
    ch_error err = {0};
    if (ch_intel_store_elem_put(s, set, value, &m, first, &err) < 0)
        fail_msg("%s", err.msg);
}

/* The sorted element texts of a stored set, joined by '\n'. */
static char *set_texts(const char *db, const char *name)
{
    ch_intel_store *s = NULL;
    ch_refsets *r = NULL;
    ch_error err = {0};
    assert_int_equal(ch_intel_store_open(db, &s, &err), 0);
    assert_int_equal(ch_refsets_new(&r), 0);
    int rc = ch_intel_store_load_refset(s, name, r, INT64_MIN, &err);
    if (rc < 0)
        fail_msg("%s: %s", name, err.msg);
    ch_refset *set = ch_refsets_get(r, name, strlen(name));
    assert_non_null(set);
    char *items[64];
    size_t n = 0, cursor = 0;
    const ch_refset_elem *e;
    while ((e = ch_refset_next(set, &cursor)) != NULL && n < 64) {
        char t[256];
        ch_refset_elem_text(set, e, t, sizeof t);
        bool dup = false;
        for (size_t i = 0; i < n && !dup; i++)
            dup = strcmp(items[i], t) == 0;
        if (!dup)
            items[n++] = strdup(t);
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (strcmp(items[j], items[i]) < 0) {
                char *tmp = items[i];
                items[i] = items[j];
                items[j] = tmp;
            }
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(items[i]) + 1;
    char *out = calloc(1, len);
    for (size_t i = 0; i < n; i++) {
        strcat(out, items[i]);
        strcat(out, "\n");
        free(items[i]);
    }
    ch_refsets_free(r);
    ch_intel_store_close(s);
    return out;
}

static ch_taxii_publish_stats last_build;

/* The catalog `intel serve` builds at time now (its ledger in the same database). */
static ch_taxii_catalog *build_at(const char *db, bool offenses, int64_t now)
{
    ch_intel_store *s = NULL;
    ch_taxii_catalog *cat = NULL;
    ch_error err = {0};
    assert_int_equal(ch_intel_store_open(db, &s, &err), 0);
    assert_int_equal(ch_taxii_catalog_new(&cat), 0);
    ch_taxii_publish_stats st = {0};
    if (ch_taxii_publish_store_sets(cat, s, now, &st, &err) < 0)
        fail_msg("%s", err.msg);
    if (offenses) {
        ch_store *os = NULL;
        ch_offenses *m = ch_offenses_new();
        assert_int_equal(ch_store_open(db, &os, &err), 0);
        assert_true(ch_store_load(os, CH_OFFENSE_MASK_ALL, m, &err) >= 0);
        if (ch_taxii_publish_offenses(cat, m, s, now, &st, &err) < 0)
            fail_msg("%s", err.msg);
        ch_offenses_free(m);
        ch_store_close(os);
    }
    ch_intel_store_close(s);
    last_build = st;
    return cat;
}

static ch_taxii_catalog *build(const char *db, bool offenses)
{
    return build_at(db, offenses, NOW);
}

static ch_taxii_server *serve(const char *db, bool offenses)
{
    ch_taxii_catalog *cat = build(db, offenses);
    ch_error err = {0};
    ch_taxii_server_opts o = {0};
    o.listen = "127.0.0.1:0";
    o.user = "sub";
    o.password = "scribe";
    ch_taxii_server *srv = NULL;
    if (ch_taxii_server_start(&o, cat, &srv, &err) < 0)
        fail_msg("%s", err.msg);
    return srv;
}

static int pull(uint16_t port, const char *collection, const char *extra_set_flag,
                const char *extra_set)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/taxii2/", (unsigned)port);
    char *argv[20];
    int argc = 0;
    argv[argc++] = "pull";
    argv[argc++] = "--url";
    argv[argc++] = url;
    argv[argc++] = "--user";
    argv[argc++] = "sub";
    argv[argc++] = "--password";
    argv[argc++] = "scribe";
    argv[argc++] = "--db";
    argv[argc++] = dst_db;
    argv[argc++] = "--limit";
    argv[argc++] = "2";
    if (collection != NULL) {
        argv[argc++] = "--collection";
        argv[argc++] = (char *)collection;
    }
    if (extra_set_flag != NULL) {
        argv[argc++] = (char *)extra_set_flag;
        argv[argc++] = (char *)extra_set;
    }
    argv[argc] = NULL;
    return ch_cmd_intel_pull(argc, argv);
}

static void test_shareable_set_round_trips_through_server_and_pull(void **state)
{
    (void)state;
    ch_intel_store *s = NULL;
    ch_error err = {0};
    assert_int_equal(ch_intel_store_open(src_db, &s, &err), 0);
    assert_int_equal(ch_intel_store_set_ensure(s, "shared_pools", CH_REFSET_DOMAIN, 0, &err), 0);
    assert_int_equal(ch_intel_store_set_share(s, "shared_pools", true, &err), 0);
    assert_int_equal(ch_intel_store_set_ensure(s, "private_notes", CH_REFSET_DOMAIN, 0, &err), 0);
    put(s, "shared_pools", "supportxmr.com", T0);
    put(s, "shared_pools", "pool.minexmr.com", T0 + 1000);
    put(s, "shared_pools", "xmrpool.eu", T0 + 2000);
    put(s, "private_notes", "internal.example", T0);
    ch_intel_store_close(s);

    ch_taxii_server *srv = serve(src_db, false);
    assert_int_equal(
        pull(ch_taxii_server_port(srv), "shared_pools", "--domain-set", "pulled_pools"), 0);
    char *a = set_texts(src_db, "shared_pools");
    char *b = set_texts(dst_db, "pulled_pools");
    assert_string_equal(a, "pool.minexmr.com\nsupportxmr.com\nxmrpool.eu\n");
    assert_string_equal(b, a);
    free(a);
    free(b);

    /* New elements, republished: the next pull fetches only them (the others would be
     * refreshed, not added, so the server's request count tells: one short page). The server
     * keeps its address (added_after is remembered per API root URL): the catalog is
     * republished, as `intel serve --refresh` does. */
    assert_int_equal(ch_intel_store_open(src_db, &s, &err), 0);
    put(s, "shared_pools", "nanopool.org", T0 + 3000);
    ch_intel_store_close(s);
    ch_taxii_server_publish(srv, build_at(src_db, false, NOW + 60000));
    uint64_t before = ch_taxii_server_requests(srv);
    assert_int_equal(
        pull(ch_taxii_server_port(srv), "shared_pools", "--domain-set", "pulled_pools"), 0);
    /* discovery, collections, one objects page: the object of the first pull's last instant
     * again (its bound is inclusive) and the new one (every object has a date_added of its
     * own). */
    assert_int_equal(ch_taxii_server_requests(srv) - before, 3);
    b = set_texts(dst_db, "pulled_pools");
    assert_string_equal(b, "nanopool.org\npool.minexmr.com\nsupportxmr.com\nxmrpool.eu\n");
    free(b);
    ch_taxii_server_stop(srv);
}

static void test_offense_observables_are_published_without_internal_addresses(void **state)
{
    (void)state;
    ch_store *os = NULL;
    ch_error err = {0};
    assert_int_equal(ch_store_open(src_db, &os, &err), 0);
    ch_offenses *m = ch_offenses_new();
    static const ch_rule_info R = {"CJ-MINE-02", "Flows to a pool", "cj", 8, 7, 9, 50};
    ch_sv ids[1] = {{"ev-1", 4}};
    ch_rule_hit h = {.rule = &R,
                     .ts_ms = T0,
                     .first_ms = T0,
                     .index_field = "source.ip",
                     .index_value = {"198.51.100.23", 13},
                     .event_ids = ids,
                     .nevent_ids = 1,
                     .event_count = 1,
                     .evidence = "5 events within 30m for network.interface.id=eni-1, "
                                 "destination.ip=203.0.113.9"};
    assert_int_equal(ch_offenses_add_hit(m, &h, NULL), 1);
    h.index_value = (ch_sv){"10.1.2.3", 8}; /* internal: never published */
    h.evidence = "1 events for dns.question.name=pool.hashvault.pro";
    assert_int_equal(ch_offenses_add_hit(m, &h, NULL), 1);
    assert_int_equal(ch_store_save(os, m, NULL, NOW, &err), 0);
    ch_offenses_free(m);
    ch_store_close(os);

    ch_taxii_server *srv = serve(src_db, true);
    assert_int_equal(last_build.internal, 1);
    assert_int_equal(
        pull(ch_taxii_server_port(srv), CH_TAXII_OFFENSES_COLLECTION, "--ip-set", "offense_ips"),
        0);
    char *ips = set_texts(dst_db, "offense_ips");
    assert_string_equal(ips, "198.51.100.23\n203.0.113.9\n");
    free(ips);
    char *doms = set_texts(dst_db, "intel_domains");
    assert_string_equal(doms, "pool.hashvault.pro\n");
    free(doms);
    ch_taxii_server_stop(srv);
}

static void save_offense(const char *index_value, const char *evidence, int64_t at)
{
    ch_store *os = NULL;
    ch_error err = {0};
    assert_int_equal(ch_store_open(src_db, &os, &err), 0);
    ch_offenses *m = ch_offenses_new();
    assert_true(ch_store_load_active(os, m, &err) >= 0); /* new ids after the stored ones */
    static const ch_rule_info R = {"CJ-MINE-02", "Flows to a pool", "cj", 8, 7, 9, 50};
    ch_sv ids[1] = {{"ev-9", 4}};
    ch_rule_hit h = {.rule = &R,
                     .ts_ms = at,
                     .first_ms = at,
                     .index_field = "source.ip",
                     .index_value = {index_value, (uint32_t)strlen(index_value)},
                     .event_ids = ids,
                     .nevent_ids = 1,
                     .event_count = 1,
                     .evidence = evidence};
    assert_int_equal(ch_offenses_add_hit(m, &h, NULL), 1);
    assert_int_equal(ch_store_save(os, m, NULL, NOW, &err), 0);
    ch_offenses_free(m);
    ch_store_close(os);
}

/* Issue 16 item 2: an offense found in older logs after a subscriber's last pull reaches it on
 * its next pull (date_added is when the server published it, not the offense's event time). */
static void test_offense_created_after_a_pull_reaches_the_subscriber(void **state)
{
    (void)state;
    save_offense("198.51.100.40", "1 events for destination.ip=203.0.113.40", T0);
    ch_taxii_server *srv = serve(src_db, true);
    assert_int_equal(
        pull(ch_taxii_server_port(srv), CH_TAXII_OFFENSES_COLLECTION, "--ip-set", "offense_ips"),
        0);
    char *ips = set_texts(dst_db, "offense_ips");
    assert_string_equal(ips, "198.51.100.40\n203.0.113.40\n");
    free(ips);
    /* Logs of the day before analysed now: an offense whose events are older than anything the
     * subscriber has seen, published by the next refresh. */
    save_offense("198.51.100.41", "1 events for destination.ip=203.0.113.41", T0 - 86400000);
    ch_taxii_server_publish(srv, build_at(src_db, true, NOW + 60000));
    assert_int_equal(
        pull(ch_taxii_server_port(srv), CH_TAXII_OFFENSES_COLLECTION, "--ip-set", "offense_ips"),
        0);
    ips = set_texts(dst_db, "offense_ips");
    assert_string_equal(ips, "198.51.100.40\n198.51.100.41\n203.0.113.40\n203.0.113.41\n");
    free(ips);
    ch_taxii_server_stop(srv);
}

/* Issue 16 item 4: an element removed from a shared set is published as a revoked version, and
 * the subscriber drops it at its next pull. */
static void test_removed_element_is_revoked_at_the_subscriber(void **state)
{
    (void)state;
    ch_intel_store *s = NULL;
    ch_error err = {0};
    assert_int_equal(ch_intel_store_open(src_db, &s, &err), 0);
    assert_int_equal(ch_intel_store_set_ensure(s, "shared_pools", CH_REFSET_DOMAIN, 0, &err), 0);
    assert_int_equal(ch_intel_store_set_share(s, "shared_pools", true, &err), 0);
    put(s, "shared_pools", "supportxmr.com", T0);
    put(s, "shared_pools", "wrongly-listed.example", T0);
    ch_intel_store_close(s);
    ch_taxii_server *srv = serve(src_db, false);
    assert_int_equal(
        pull(ch_taxii_server_port(srv), "shared_pools", "--domain-set", "pulled_pools"), 0);
    char *b = set_texts(dst_db, "pulled_pools");
    assert_string_equal(b, "supportxmr.com\nwrongly-listed.example\n");
    free(b);

    assert_int_equal(ch_intel_store_open(src_db, &s, &err), 0);
    assert_true(ch_intel_store_elem_remove(s, "shared_pools", "wrongly-listed.example", NULL, NULL,
                                           &err) > 0);
    ch_intel_store_close(s);
    ch_taxii_server_publish(srv, build_at(src_db, false, NOW + 60000));
    assert_int_equal(last_build.revoked, 1);
    assert_int_equal(
        pull(ch_taxii_server_port(srv), "shared_pools", "--domain-set", "pulled_pools"), 0);
    b = set_texts(dst_db, "pulled_pools");
    assert_string_equal(b, "supportxmr.com\n");
    free(b);
    /* The revocation stays served (late subscribers learn of it) and is not re-stamped. */
    ch_taxii_server_publish(srv, build_at(src_db, false, NOW + 120000));
    assert_int_equal(last_build.revoked, 0);
    assert_int_equal(last_build.objects, 2); /* the live one and the revocation */
    ch_taxii_server_stop(srv);
}

/* The STIX 2.1 rules (specification sections 2, 3 and 4.7; the OASIS JSON schemas say the
 * same) that coinhound's indicators are subject to. Returns NULL or what is wrong. */
static bool matches(const char *re, const char *s, size_t n)
{
    regex_t r;
    assert_int_equal(regcomp(&r, re, REG_EXTENDED | REG_NOSUB), 0);
    char *z = strndup(s, n);
    bool ok = regexec(&r, z, 0, NULL, 0) == 0;
    free(z);
    regfree(&r);
    return ok;
}

static const char *stix_violation(ch_json_parser *jp, const char *json, size_t len)
{
    static const char ts_ms[] =
        "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3,}Z$";
    static const char ts[] = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?Z$";
    ch_json_val o, v, r, x;
    ch_error err = {0};
    const char *str;
    size_t n;
    if (ch_json_parse(jp, json, len, len, &o, &err) < 0 || ch_json_typeof(o) != CH_JSON_OBJECT)
        return "not a JSON object";
    if (!ch_json_obj_get(o, "type", 4, &v) || !ch_json_get_str(v, &str, &n) || n != 9 ||
        memcmp(str, "indicator", 9) != 0)
        return "type is not indicator";
    if (!ch_json_obj_get(o, "spec_version", 12, &v) || !ch_json_get_str(v, &str, &n) || n != 3 ||
        memcmp(str, "2.1", 3) != 0)
        return "spec_version is not 2.1";
    if (!ch_json_obj_get(o, "id", 2, &v) || !ch_json_get_str(v, &str, &n) ||
        !matches("^indicator--[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-"
                 "[0-9a-f]{12}$",
                 str, n))
        return "id is no indicator--UUID";
    if (!ch_json_obj_get(o, "created", 7, &v) || !ch_json_get_str(v, &str, &n) ||
        !matches(ts_ms, str, n))
        return "created lacks millisecond precision";
    if (!ch_json_obj_get(o, "modified", 8, &v) || !ch_json_get_str(v, &str, &n) ||
        !matches(ts_ms, str, n))
        return "modified lacks millisecond precision";
    if (!ch_json_obj_get(o, "valid_from", 10, &v) || !ch_json_get_str(v, &str, &n) ||
        !matches(ts, str, n))
        return "valid_from missing or no timestamp";
    if (ch_json_obj_get(o, "valid_until", 11, &v) &&
        (!ch_json_get_str(v, &str, &n) || !matches(ts, str, n)))
        return "valid_until is no timestamp";
    if (!ch_json_obj_get(o, "pattern", 7, &v) || !ch_json_get_str(v, &str, &n) || n == 0)
        return "no pattern";
    if (!ch_json_obj_get(o, "pattern_type", 12, &v) || !ch_json_get_str(v, &str, &n))
        return "no pattern_type";
    bool b;
    if (ch_json_obj_get(o, "revoked", 7, &v) && !ch_json_get_bool(v, &b))
        return "revoked is not a boolean";
    int64_t conf;
    if (ch_json_obj_get(o, "confidence", 10, &v) &&
        (!ch_json_get_i64(v, &conf) || conf < 0 || conf > 100))
        return "confidence is not an integer 0..100";
    if (ch_json_obj_get(o, "external_references", 19, &v)) {
        ch_json_iter it;
        size_t count = 0;
        if (!ch_json_arr_iter(v, &it))
            return "external_references is not a list";
        while (ch_json_arr_next(&it, &r)) {
            count++;
            if (!ch_json_obj_get(r, "source_name", 11, &x) || !ch_json_get_str(x, &str, &n))
                return "external reference without source_name";
            if (!ch_json_obj_get(r, "external_id", 11, &x) &&
                !ch_json_obj_get(r, "description", 11, &x) && !ch_json_obj_get(r, "url", 3, &x))
                return "external reference with only a source_name";
        }
        if (count == 0)
            return "external_references is empty";
    }
    return NULL;
}

/* Issue 16 item 5: every object the server publishes (set elements, offense observables,
 * revoked versions; created on a whole second, where the fraction used to vanish) obeys the
 * STIX 2.1 rules. */
static void test_every_served_object_is_valid_stix(void **state)
{
    (void)state;
    ch_intel_store *s = NULL;
    ch_error err = {0};
    assert_int_equal(ch_intel_store_open(src_db, &s, &err), 0);
    assert_int_equal(ch_intel_store_set_ensure(s, "shared_pools", CH_REFSET_DOMAIN, 0, &err), 0);
    assert_int_equal(ch_intel_store_set_share(s, "shared_pools", true, &err), 0);
    assert_int_equal(ch_intel_store_set_ensure(s, "shared_ips", CH_REFSET_IP, 0, &err), 0);
    assert_int_equal(ch_intel_store_set_share(s, "shared_ips", true, &err), 0);
    assert_int_equal(ch_intel_store_set_ensure(s, "shared_urls", CH_REFSET_STRING, 0, &err), 0);
    assert_int_equal(ch_intel_store_set_share(s, "shared_urls", true, &err), 0);
    put(s, "shared_pools", "supportxmr.com", T0); /* T0 is a whole second */
    put(s, "shared_pools", "gone.example", T0 + 7);
    put(s, "shared_ips", "203.0.113.0/24", T0);
    put(s, "shared_ips", "2001:db8::/32", T0);
    put(s, "shared_urls", "https://raw.githubusercontent.com/evil/miner/main/xmrig.sh", T0);
    /* A second source of one value: one object served (item 11: the count says so too). */
    ch_refset_meta m2 = {"partner-feed", "", T0 + 5, T0 + 5, CH_REFSET_ALWAYS, CH_REFSET_NEVER};
    assert_int_equal(ch_intel_store_elem_put(s, "shared_ips", "203.0.113.0/24", &m2, T0, &err), 0);
    ch_intel_store_close(s);
    save_offense("198.51.100.40", "1 events for dns.question.name=pool.hashvault.pro", T0);
    ch_taxii_catalog_free(build_at(src_db, true, NOW));
    assert_int_equal(ch_intel_store_open(src_db, &s, &err), 0);
    assert_true(ch_intel_store_elem_remove(s, "shared_pools", "gone.example", NULL, NULL, &err) >
                0);
    ch_intel_store_close(s);
    ch_taxii_catalog *cat = build_at(src_db, true, NOW + 60000);
    assert_int_equal(last_build.revoked, 1);
    ch_json_parser *jp = ch_json_parser_new(1u << 20, 64);
    size_t checked = 0, with_confidence = 0;
    for (int c = 0; (size_t)c < ch_taxii_catalog_collections(cat); c++) {
        ch_taxii_object o;
        for (size_t i = 0; ch_taxii_catalog_object(cat, c, i, &o); i++) {
            const char *why = stix_violation(jp, o.json, o.len);
            if (why != NULL)
                fail_msg("%s: %s\n%.*s", o.id, why, (int)o.len, o.json);
            checked++;
            /* item 1, server side: date_added strictly increasing per collection */
            ch_taxii_object prev;
            for (size_t j = 0; j < i && ch_taxii_catalog_object(cat, c, j, &prev); j++)
                if (prev.date_added == o.date_added)
                    fail_msg("%s and %s share date_added %lld", prev.id, o.id,
                             (long long)o.date_added);
            with_confidence += strstr(o.json, "\"confidence\":") != NULL;
        }
    }
    /* 5 set elements (one of them revoked), 2 offense observables */
    assert_int_equal(checked, 7);
    assert_int_equal(last_build.objects, 7);
    assert_int_equal(with_confidence, 2); /* item 7: the offense's, on its observables */
    ch_json_parser_free(jp);
    ch_taxii_catalog_free(cat);
}

static void test_pull_with_wrong_password_exits_1(void **state)
{
    (void)state;
    ch_taxii_server *srv = serve(src_db, false);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", (unsigned)ch_taxii_server_port(srv));
    char *argv[] = {"pull",       "--url", url,    "--user", "sub",
                    "--password", "nope",  "--db", dst_db,   NULL};
    assert_int_equal(ch_cmd_intel_pull(9, argv), 1);
    char *argv2[] = {"pull", "--db", dst_db, NULL};
    assert_int_equal(ch_cmd_intel_pull(3, argv2), 2);
    ch_taxii_server_stop(srv);
}

static void test_serve_refuses_to_start_without_credentials(void **state)
{
    (void)state;
    unsetenv("COINHOUND_TAXII_USER");
    unsetenv("COINHOUND_TAXII_PASSWORD");
    char *argv[] = {"serve", "--listen", "127.0.0.1:0", "--db", src_db, NULL};
    assert_int_equal(ch_cmd_intel_serve(5, argv), 2);
    char *argv2[] = {"serve", "--user", "u", "--listen", "127.0.0.1:0", "--db", src_db, NULL};
    assert_int_equal(ch_cmd_intel_serve(7, argv2), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_shareable_set_round_trips_through_server_and_pull,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_offense_observables_are_published_without_internal_addresses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offense_created_after_a_pull_reaches_the_subscriber,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_removed_element_is_revoked_at_the_subscriber, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_every_served_object_is_valid_stix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pull_with_wrong_password_exits_1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_serve_refuses_to_start_without_credentials, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
