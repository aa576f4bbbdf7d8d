/*
 * test_entity_links.c - entity links outlive a run: ch_entity_export hands out the live links
 * and ch_entity_import puts them back (LRU order and expiry kept), and the offense store saves
 * and loads them, so a second run names the user who launched an instance in the first run's
 * logs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ip.h"
#include "core/json.h"
#include "core/timeparse.h"
#include "enrich/entity.h"
#include "offense/store.h"
#include "parse/cloudtrail.h"
#include "tmpdir.h"

static const char *run_instances(const char *user, const char *inst, const char *eni,
                                 const char *ip, const char *when, char *buf, size_t cap)
{
    snprintf(buf, cap,
             "{\"eventVersion\":\"1.08\",\"userIdentity\":{\"type\":\"IAMUser\","
             "\"principalId\":\"AIDAEXAMPLE\",\"arn\":\"arn:aws:iam::111122223333:user/%s\","
             "\"accountId\":\"111122223333\",\"accessKeyId\":\"AKIAEXAMPLEKEY%s\","
             "\"userName\":\"%s\"},"
             "\"eventTime\":\"%s\",\"eventSource\":\"ec2.amazonaws.com\","
             "\"eventName\":\"RunInstances\",\"awsRegion\":\"ap-south-1\","
             "\"sourceIPAddress\":\"203.0.113.9\",\"userAgent\":\"aws-cli/2.15\","
             "\"requestParameters\":{\"instanceType\":\"c5.large\"},"
             "\"responseElements\":{\"instancesSet\":{\"items\":[{\"instanceId\":\"%s\","
             "\"imageId\":\"ami-0kali000000000001\",\"privateIpAddress\":\"%s\","
             "\"networkInterfaceSet\":{\"items\":[{\"networkInterfaceId\":\"%s\","
             "\"privateIpAddress\":\"%s\"}]}}]}},"
             "\"eventID\":\"e1\",\"recipientAccountId\":\"111122223333\"}",
             user, user, user, when, inst, ip, eni, ip);
    return buf;
}

/* Parse and observe one record; the record is freed before returning. */
static void observe_text(ch_entity *t, const char *text)
{
    ch_json_parser *p = ch_json_parser_new(1 << 20, 64);
    assert_non_null(p);
    ch_json_val root, rec;
    ch_error err = {0};
    assert_int_equal(ch_json_parse(p, text, strlen(text), strlen(text), &root, &err), 0);
    ch_event ev;
    ch_event_reset(&ev);
    bool env = false;
    const char *why = NULL;
    assert_int_equal(ch__cloudtrail_normalize(root, &ev, &rec, &env, &why), 0);
    ev.has_raw_doc = true;
    ev.raw_doc = rec;
    assert_int_equal(ch_entity_observe(t, &ev), 1);
    ch_json_parser_free(p);
}

static int64_t at(const char *iso)
{
    int64_t ms = 0;
    assert_true(ch_time_parse_iso8601(iso, strlen(iso), &ms));
    return ms;
}

static ch_event flow(const char *eni, const char *src, const char *when)
{
    ch_event ev;
    ch_event_reset(&ev);
    ev.dataset = CH_DS_VPCFLOW;
    ev.ts_ms = at(when);
    ev.account_id = (ch_sv){"111122223333", 12};
    if (eni)
        ev.interface_id = (ch_sv){eni, (uint32_t)strlen(eni)};
    if (src)
        assert_true(ch_ip_parse(src, strlen(src), &ev.src_ip));
    assert_true(ch_ip_parse("198.51.100.7", 12, &ev.dst_ip));
    return ev;
}

static ch_event dns(const char *inst, const char *when)
{
    ch_event ev;
    ch_event_reset(&ev);
    ev.dataset = CH_DS_ROUTE53;
    ev.ts_ms = at(when);
    ev.instance_id = (ch_sv){inst, (uint32_t)strlen(inst)};
    return ev;
}

static void assert_sv(ch_sv v, const char *s)
{
    assert_int_equal(v.n, strlen(s));
    assert_memory_equal(v.p, s, v.n);
}

static ch_sv sv(const char *s) { return (ch_sv){s, (uint32_t)strlen(s)}; }

static ch_entity *table(size_t cap, int64_t ttl)
{
    ch_entity *t = NULL;
    ch_error err = {0};
    assert_int_equal(ch_entity_new(cap, ttl, &t, &err), 0);
    return t;
}

/* Exported links, copied (the callback's views borrow from the table). */
typedef struct saved {
    ch_entity_link l[16];
    char mem[16][8][600];
    size_t n;
} saved;

static ch_sv keep(char *dst, ch_sv v)
{
    if (v.p == NULL)
        return v;
    memcpy(dst, v.p, v.n);
    return (ch_sv){dst, v.n};
}

static int collect(void *ud, const ch_entity_link *l)
{
    saved *s = ud;
    if (s->n == 16)
        return 1;
    size_t i = s->n++;
    ch_entity_link *c = &s->l[i];
    *c = *l;
    c->key = keep(s->mem[i][0], l->key);
    c->instance_id = keep(s->mem[i][1], l->instance_id);
    c->user_name = keep(s->mem[i][2], l->user_name);
    c->access_key = keep(s->mem[i][3], l->access_key);
    c->image_id = keep(s->mem[i][4], l->image_id);
    c->account_id = keep(s->mem[i][5], l->account_id);
    c->region = keep(s->mem[i][6], l->region);
    c->invoked_by = keep(s->mem[i][7], l->invoked_by);
    return 0;
}

static void test_exported_links_imported_into_new_table_name_the_launching_user(void **st)
{
    (void)st;
    char buf[4096];
    ch_entity *t = table(0, 0);
    observe_text(t, run_instances("alice", "i-0aaaaaaaaaaaaaaa1", "eni-0aaa1", "172.31.5.10",
                                  "2024-06-03T10:00:00Z", buf, sizeof buf));
    static saved s;
    memset(&s, 0, sizeof s);
    assert_int_equal(ch_entity_export(t, 0, collect, &s), 0);
    assert_int_equal(s.n, 3); /* instance, interface, address */
    ch_entity_free(t);

    ch_entity *t2 = table(0, 0);
    for (size_t i = s.n; i-- > 0;) /* oldest first */
        assert_int_equal(ch_entity_import(t2, &s.l[i], INT64_MIN), 1);
    ch_entity_instance in;
    assert_true(ch_entity_lookup(t2, "i-0aaaaaaaaaaaaaaa1", 19, INT64_MAX, &in));
    assert_sv(in.user_name, "alice");
    assert_sv(in.access_key, "AKIAEXAMPLEKEYalice");
    assert_sv(in.image_id, "ami-0kali000000000001");
    assert_sv(in.account_id, "111122223333");
    assert_sv(in.region, "ap-south-1");
    assert_null(in.invoked_by.p);
    assert_int_equal(in.launch_ms, at("2024-06-03T10:00:00Z"));
    /* Each kind of link works: instance id, interface only, private address only. */
    ch_event e1 = dns("i-0aaaaaaaaaaaaaaa1", "2024-06-04T09:00:00Z");
    assert_true(ch_entity_enrich(t2, &e1));
    assert_sv(e1.user_name, "alice");
    ch_event e2 = flow("eni-0aaa1", NULL, "2024-06-04T09:00:00Z");
    assert_true(ch_entity_enrich(t2, &e2));
    assert_sv(e2.instance_id, "i-0aaaaaaaaaaaaaaa1");
    ch_event e3 = flow(NULL, "172.31.5.10", "2024-06-04T09:00:00Z");
    assert_true(ch_entity_enrich(t2, &e3));
    assert_sv(e3.user_name, "alice");
    ch_entity_stats stats;
    ch_entity_stats_get(t2, &stats);
    assert_int_equal(stats.restored, 3);
    assert_int_equal(stats.links, 3);
    ch_entity_free(t2);
}

static ch_entity_link instance_link(const char *inst, const char *user, int64_t used)
{
    ch_entity_link l = {.kind = CH_ENTITY_LINK_INSTANCE,
                        .key = sv(inst),
                        .instance_id = sv(inst),
                        .user_name = sv(user),
                        .launch_ms = used,
                        .last_used_ms = used};
    return l;
}

static void test_import_skips_links_older_than_ttl_relative_to_newest_event(void **st)
{
    (void)st;
    int64_t hour = 3600 * 1000;
    ch_entity *t = table(0, hour);
    int64_t t0 = at("2024-06-03T10:00:00Z");
    ch_entity_link old = instance_link("i-old", "bob", t0);
    ch_entity_link fresh = instance_link("i-fresh", "carol", t0 + 2 * hour);
    assert_int_equal(ch_entity_import(t, &old, t0 + 2 * hour), 0);
    assert_int_equal(ch_entity_import(t, &fresh, t0 + 2 * hour), 1);
    /* The table remembers the newest time it has seen: a later import of the old link with no
     * caller time is judged against it too. */
    assert_int_equal(ch_entity_import(t, &old, INT64_MIN), 0);
    ch_entity_instance in;
    assert_false(ch_entity_lookup(t, "i-old", 5, INT64_MAX, &in));
    assert_true(ch_entity_lookup(t, "i-fresh", 7, INT64_MAX, &in));
    ch_entity_free(t);
}

static void test_import_keeps_lru_order_and_cap(void **st)
{
    (void)st;
    ch_entity *t = table(2, 0);
    int64_t t0 = at("2024-06-03T10:00:00Z");
    ch_entity_link a = instance_link("i-a", "u1", t0);
    ch_entity_link b = instance_link("i-b", "u2", t0 + 1000);
    ch_entity_link c = instance_link("i-c", "u3", t0 + 2000);
    assert_int_equal(ch_entity_import(t, &a, INT64_MIN), 1);
    assert_int_equal(ch_entity_import(t, &b, INT64_MIN), 1);
    assert_int_equal(ch_entity_import(t, &c, INT64_MIN), 1);
    ch_entity_instance in;
    assert_false(ch_entity_lookup(t, "i-a", 3, INT64_MAX, &in)); /* least recent, evicted */
    assert_true(ch_entity_lookup(t, "i-c", 3, INT64_MAX, &in));
    assert_true(ch_entity_lookup(t, "i-b", 3, INT64_MAX, &in)); /* now the most recent */
    ch_entity_stats s;
    ch_entity_stats_get(t, &s);
    assert_int_equal(s.evicted, 1);
    assert_int_equal(s.links, 2);
    /* Export is most recently used first, and capped. */
    static saved out;
    memset(&out, 0, sizeof out);
    assert_int_equal(ch_entity_export(t, 1, collect, &out), 0);
    assert_int_equal(out.n, 1);
    assert_sv(out.l[0].key, "i-b");
    ch_entity_free(t);
}

static void test_import_never_replaces_a_newer_link_of_the_run(void **st)
{
    (void)st;
    ch_entity *t = table(0, 0);
    int64_t t0 = at("2024-06-03T10:00:00Z");
    ch_entity_link now = instance_link("i-x", "new-owner", t0 + 1000);
    ch_entity_link stale = instance_link("i-x", "old-owner", t0);
    assert_int_equal(ch_entity_import(t, &now, INT64_MIN), 1);
    assert_int_equal(ch_entity_import(t, &stale, INT64_MIN), 0);
    ch_entity_instance in;
    assert_true(ch_entity_lookup(t, "i-x", 3, INT64_MAX, &in));
    assert_sv(in.user_name, "new-owner");
    ch_entity_free(t);
}

static void test_import_rejects_malformed_links(void **st)
{
    (void)st;
    ch_entity *t = table(0, 0);
    ch_entity_link l = instance_link("i-y", "u", 0);
    l.kind = 'z';
    assert_int_equal(ch_entity_import(t, &l, INT64_MIN), 0);
    l = instance_link("", "u", 0);
    assert_int_equal(ch_entity_import(t, &l, INT64_MIN), 0);
    static char long_user[CH_ENTITY_MAX_STR + 2];
    memset(long_user, 'u', sizeof long_user - 1);
    l = instance_link("i-y", long_user, 0);
    assert_int_equal(ch_entity_import(t, &l, INT64_MIN), 0);
    ch_entity_stats s;
    ch_entity_stats_get(t, &s);
    assert_int_equal(s.links, 0);
    ch_entity_free(t);
}

/* ---- the store ----------------------------------------------------------------------------- */

typedef ch_test_tmpdb tmpdb;

static int setup(void **state) { return ch_test_tmpdb_setup(state, "links", "coinhound.db"); }

static int teardown(void **state) { return ch_test_tmpdb_teardown(state); }

static ch_store *open_ok(const char *path)
{
    ch_store *s = NULL;
    ch_error err = {0};
    int rc = ch_store_open(path, &s, &err);
    if (rc != 0)
        fail_msg("open %s: %s", path, err.msg);
    return s;
}

static int rows(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM entity_links", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static void test_links_saved_by_one_run_name_the_user_in_the_next(void **state)
{
    tmpdb *d = *state;
    char buf[4096];
    ch_error err = {0};
    ch_entity *t = table(0, 0);
    observe_text(t, run_instances("alice", "i-0aaaaaaaaaaaaaaa1", "eni-0aaa1", "172.31.5.10",
                                  "2024-06-03T10:00:00Z", buf, sizeof buf));
    observe_text(t, run_instances("mallory", "i-0bbbbbbbbbbbbbbb2", "eni-0bbb2", "172.31.9.9",
                                  "2024-06-03T10:05:00Z", buf, sizeof buf));
    ch_store *s = open_ok(d->db);
    assert_int_equal(ch_store_save_links(s, t, 0, &err), 6);
    /* Saving again upserts: no duplicates. */
    assert_int_equal(ch_store_save_links(s, t, 0, &err), 6);
    ch_store_close(s);
    ch_entity_free(t);
    assert_int_equal(rows(d->db), 6);

    ch_entity *t2 = table(0, 0);
    s = open_ok(d->db);
    assert_int_equal(ch_store_load_links(s, t2, 0, &err), 6);
    ch_store_close(s);
    ch_event e1 = dns("i-0bbbbbbbbbbbbbbb2", "2024-06-03T12:00:00Z");
    assert_true(ch_entity_enrich(t2, &e1));
    assert_sv(e1.user_name, "mallory");
    assert_sv(e1.access_key, "AKIAEXAMPLEKEYmallory");
    ch_event e2 = flow("eni-0aaa1", NULL, "2024-06-03T12:00:00Z");
    assert_true(ch_entity_enrich(t2, &e2));
    assert_sv(e2.user_name, "alice");
    ch_event e3 = flow(NULL, "172.31.9.9", "2024-06-03T12:00:00Z");
    assert_true(ch_entity_enrich(t2, &e3));
    assert_sv(e3.user_name, "mallory");
    ch_entity_instance in;
    assert_true(ch_entity_lookup(t2, "i-0aaaaaaaaaaaaaaa1", 19, INT64_MAX, &in));
    assert_sv(in.image_id, "ami-0kali000000000001");
    assert_sv(in.region, "ap-south-1");
    assert_null(in.invoked_by.p);
    assert_int_equal(in.launch_ms, at("2024-06-03T10:00:00Z"));
    ch_entity_free(t2);
}

static void test_store_keeps_only_the_most_recently_used_links(void **state)
{
    tmpdb *d = *state;
    ch_error err = {0};
    ch_entity *t = table(0, 0);
    int64_t t0 = at("2024-06-03T10:00:00Z");
    const char *ids[] = {"i-1", "i-2", "i-3", "i-4"};
    for (int i = 0; i < 4; i++) {
        ch_entity_link l = instance_link(ids[i], "u", t0 + i * 1000);
        assert_int_equal(ch_entity_import(t, &l, INT64_MIN), 1);
    }
    ch_store *s = open_ok(d->db);
    assert_int_equal(ch_store_save_links(s, t, 2, &err), 2);
    ch_store_close(s);
    assert_int_equal(rows(d->db), 2);
    ch_entity *t2 = table(0, 0);
    s = open_ok(d->db);
    assert_int_equal(ch_store_load_links(s, t2, 0, &err), 2);
    ch_store_close(s);
    ch_entity_instance in;
    assert_false(ch_entity_lookup(t2, "i-2", 3, INT64_MAX, &in));
    assert_true(ch_entity_lookup(t2, "i-3", 3, INT64_MAX, &in));
    assert_true(ch_entity_lookup(t2, "i-4", 3, INT64_MAX, &in));
    ch_entity_free(t2);
    ch_entity_free(t);
}

static void test_stored_links_past_ttl_are_not_loaded(void **state)
{
    tmpdb *d = *state;
    ch_error err = {0};
    int64_t hour = 3600 * 1000;
    ch_entity *t = table(0, 0);
    int64_t t0 = at("2024-06-03T10:00:00Z");
    ch_entity_link old = instance_link("i-old", "u", t0);
    ch_entity_link fresh = instance_link("i-new", "u", t0 + 5 * hour);
    assert_int_equal(ch_entity_import(t, &old, INT64_MIN), 1);
    assert_int_equal(ch_entity_import(t, &fresh, INT64_MIN), 1);
    ch_store *s = open_ok(d->db);
    assert_int_equal(ch_store_save_links(s, t, 0, &err), 2);
    ch_entity *t2 = table(0, hour);
    assert_int_equal(ch_store_load_links(s, t2, 0, &err), 1);
    ch_store_close(s);
    ch_entity_instance in;
    assert_false(ch_entity_lookup(t2, "i-old", 5, INT64_MAX, &in));
    assert_true(ch_entity_lookup(t2, "i-new", 5, INT64_MAX, &in));
    ch_entity_free(t2);
    ch_entity_free(t);
}

static void test_older_run_does_not_overwrite_newer_stored_link(void **state)
{
    tmpdb *d = *state;
    ch_error err = {0};
    int64_t t0 = at("2024-06-03T10:00:00Z");
    ch_entity *newer = table(0, 0), *older = table(0, 0);
    ch_entity_link n = instance_link("i-x", "new-owner", t0 + 1000);
    ch_entity_link o = instance_link("i-x", "old-owner", t0);
    assert_int_equal(ch_entity_import(newer, &n, INT64_MIN), 1);
    assert_int_equal(ch_entity_import(older, &o, INT64_MIN), 1);
    ch_store *s = open_ok(d->db);
    assert_true(ch_store_save_links(s, newer, 0, &err) >= 0);
    assert_true(ch_store_save_links(s, older, 0, &err) >= 0);
    ch_entity *t = table(0, 0);
    assert_int_equal(ch_store_load_links(s, t, 0, &err), 1);
    ch_store_close(s);
    ch_entity_instance in;
    assert_true(ch_entity_lookup(t, "i-x", 3, INT64_MAX, &in));
    assert_sv(in.user_name, "new-owner");
    ch_entity_free(t);
    ch_entity_free(newer);
    ch_entity_free(older);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exported_links_imported_into_new_table_name_the_launching_user),
        cmocka_unit_test(test_import_skips_links_older_than_ttl_relative_to_newest_event),
        cmocka_unit_test(test_import_keeps_lru_order_and_cap),
        cmocka_unit_test(test_import_never_replaces_a_newer_link_of_the_run),
        cmocka_unit_test(test_import_rejects_malformed_links),
        cmocka_unit_test_setup_teardown(test_links_saved_by_one_run_name_the_user_in_the_next,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_keeps_only_the_most_recently_used_links, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stored_links_past_ttl_are_not_loaded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_older_run_does_not_overwrite_newer_stored_link, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
