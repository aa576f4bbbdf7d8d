/*
 * test_lineage.c - identity lineage (enrich/lineage.h): which records make a link, which do not,
 * how the nearest creator with an offense is found, that cycles and the cap hold, and that the
 * saved text comes back (damaged lines counted, not fatal), and that the store keeps one row
 * per link, writes only the links that changed, and converts the text form of older stores.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>
#include <unistd.h>

#include "core/json.h"
#include "core/mem.h"
#include "enrich/lineage.h"
#include "offense/lineage_store.h"
#include "parse/cloudtrail.h"

/* Parse one CloudTrail record and observe it; returns observe's result. */
static int observe(ch_lineage *l, const char *type, const char *user, const char *session,
                   const char *action, const char *req, const char *error)
{
    char ident[512], text[4096];
    if (strcmp(type, "Root") == 0)
        snprintf(ident, sizeof ident,
                 "{\"type\":\"Root\",\"principalId\":\"111122223333\",\"arn\":\"arn:aws:iam::"
                 "111122223333:root\",\"accountId\":\"111122223333\"}");
    else if (strcmp(type, "AssumedRole") == 0)
        snprintf(ident, sizeof ident,
                 "{\"type\":\"AssumedRole\",\"principalId\":\"AROA:%s\",\"arn\":\"arn:aws:sts::"
                 "111122223333:assumed-role/%s/%s\",\"accountId\":\"111122223333\","
                 "\"sessionContext\":{\"sessionIssuer\":{\"type\":\"Role\",\"userName\":\"%s\"}}}",
                 session, user, session, user);
    else
        snprintf(ident, sizeof ident,
                 "{\"type\":\"IAMUser\",\"principalId\":\"AIDA%s\",\"arn\":\"arn:aws:iam::"
                 "111122223333:user/%s\",\"accountId\":\"111122223333\",\"userName\":\"%s\"}",
                 user, user, user);
    snprintf(
        text, sizeof text,
        "{\"eventVersion\":\"1.09\",\"userIdentity\":%s,\"eventTime\":\"2024-06-04T10:00:00Z\","
        "\"eventSource\":\"iam.amazonaws.com\",\"eventName\":\"%s\",\"awsRegion\":\"us-east-1\","
        "\"sourceIPAddress\":\"5.255.255.5\",\"requestParameters\":%s,%s"
        "\"eventID\":\"e1\",\"recipientAccountId\":\"111122223333\"}",
        ident, action, req, error ? error : "");
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
    int rc = ch_lineage_observe(l, &ev);
    ch_json_parser_free(p);
    return rc;
}

static bool parent_is(ch_lineage *l, const char *child, const char *parent)
{
    ch_lineage_link k;
    return ch_lineage_get(l, child, strlen(child), &k) && k.parent.n == strlen(parent) &&
           memcmp(k.parent.p, parent, k.parent.n) == 0;
}

static void test_root_creates_user_and_user_creates_another(void **state)
{
    (void)state;
    ch_lineage *l = NULL;
    ch_error err = {0};
    assert_int_equal(ch_lineage_new(0, &l, &err), 0);
    assert_int_equal(observe(l, "Root", "", NULL, "CreateUser", "{\"userName\":\"svc\"}", NULL), 1);
    assert_true(parent_is(l, "svc", "root"));
    /* Key and admin policy for the same user: the link is confirmed, not replaced. */
    assert_int_equal(
        observe(l, "Root", "", NULL, "CreateAccessKey", "{\"userName\":\"svc\"}", NULL), 0);
    assert_int_equal(
        observe(l, "IAMUser", "svc", NULL, "CreateLoginProfile", "{\"userName\":\"svc2\"}", NULL),
        1);
    ch_lineage_link k;
    assert_true(ch_lineage_get(l, "svc", 3, &k));
    assert_int_equal(k.count, 2);
    assert_int_equal(k.relation.n, 10);
    assert_memory_equal(k.relation.p, "CreateUser", 10);
    /* The topmost ancestor of svc2 is root. */
    ch_sv top;
    assert_true(ch_lineage_resolve(l, "svc2", 4, NULL, NULL, &top));
    assert_int_equal(top.n, 4);
    assert_memory_equal(top.p, "root", 4);
    ch_lineage_free(l);
}

static void test_self_refused_and_other_actions_teach_nothing(void **state)
{
    (void)state;
    ch_lineage *l = NULL;
    ch_error err = {0};
    assert_int_equal(ch_lineage_new(0, &l, &err), 0);
    /* Own key (no userName), own name, a failed call, an unrelated action. */
    assert_int_equal(observe(l, "IAMUser", "bob", NULL, "CreateAccessKey", "{}", NULL), 0);
    assert_int_equal(
        observe(l, "IAMUser", "bob", NULL, "CreateAccessKey", "{\"userName\":\"bob\"}", NULL), 0);
    assert_int_equal(observe(l, "IAMUser", "bob", NULL, "CreateUser", "{\"userName\":\"eve\"}",
                             "\"errorCode\":\"AccessDenied\",\"errorMessage\":\"no\","),
                     0);
    assert_int_equal(
        observe(l, "IAMUser", "bob", NULL, "DeleteUser", "{\"userName\":\"eve\"}", NULL), 0);
    assert_int_equal(ch_lineage_count(l), 0);
    ch_lineage_free(l);
}

static void test_first_creator_stays_and_cycles_refused(void **state)
{
    (void)state;
    ch_lineage *l = NULL;
    ch_error err = {0};
    assert_int_equal(ch_lineage_new(0, &l, &err), 0);
    assert_int_equal(
        observe(l, "IAMUser", "mallory", NULL, "CreateUser", "{\"userName\":\"x\"}", NULL), 1);
    /* An admin resetting x's password later does not take x over. */
    assert_int_equal(
        observe(l, "IAMUser", "admin", NULL, "UpdateLoginProfile", "{\"userName\":\"x\"}", NULL),
        0);
    assert_true(parent_is(l, "x", "mallory"));
    /* x giving mallory a key would make mallory x's child and x mallory's: refused. */
    assert_int_equal(
        observe(l, "IAMUser", "x", NULL, "CreateAccessKey", "{\"userName\":\"mallory\"}", NULL), 0);
    ch_lineage_stats st;
    ch_lineage_stats_get(l, &st);
    assert_int_equal(st.cycles, 1);
    ch_lineage_free(l);
}

static void test_role_session_links_to_its_caller(void **state)
{
    (void)state;
    ch_lineage *l = NULL;
    ch_error err = {0};
    assert_int_equal(ch_lineage_new(0, &l, &err), 0);
    assert_int_equal(observe(l, "IAMUser", "carol", NULL, "AssumeRole",
                             "{\"roleArn\":\"arn:aws:iam::111122223333:role/ops/Deployer\","
                             "\"roleSessionName\":\"s1\"}",
                             NULL),
                     1);
    assert_true(parent_is(l, "Deployer/s1", "carol"));
    /* The session creates a user: the user's parent is the session, whose parent is carol. */
    assert_int_equal(
        observe(l, "AssumedRole", "Deployer", "s1", "CreateUser", "{\"userName\":\"ghost\"}", NULL),
        1);
    assert_true(parent_is(l, "ghost", "Deployer/s1"));
    ch_sv top;
    assert_true(ch_lineage_resolve(l, "ghost", 5, NULL, NULL, &top));
    assert_int_equal(top.n, 5);
    assert_memory_equal(top.p, "carol", 5);
    ch_lineage_free(l);
}

static bool is_bob(void *ud, const char *n, size_t len)
{
    (void)ud;
    return len == 3 && memcmp(n, "bob", 3) == 0;
}

static void test_resolve_stops_at_the_first_match(void **state)
{
    (void)state;
    ch_lineage *l = NULL;
    ch_error err = {0};
    assert_int_equal(ch_lineage_new(0, &l, &err), 0);
    observe(l, "Root", "", NULL, "CreateUser", "{\"userName\":\"alice\"}", NULL);
    observe(l, "IAMUser", "alice", NULL, "CreateUser", "{\"userName\":\"bob\"}", NULL);
    observe(l, "IAMUser", "bob", NULL, "CreateUser", "{\"userName\":\"carl\"}", NULL);
    ch_sv out = {0};
    assert_true(ch_lineage_resolve(l, "carl", 4, is_bob, NULL, &out));
    assert_int_equal(out.n, 3);
    /* No ancestor matches: not found, and a principal without a parent resolves to nothing. */
    assert_false(ch_lineage_resolve(l, "bob", 3, is_bob, NULL, &out));
    assert_false(ch_lineage_resolve(l, "root", 4, NULL, NULL, &out));
    ch_lineage_free(l);
}

static void test_save_load_roundtrip_and_damaged_lines(void **state)
{
    (void)state;
    ch_lineage *l = NULL, *m = NULL;
    ch_error err = {0};
    assert_int_equal(ch_lineage_new(0, &l, &err), 0);
    observe(l, "Root", "", NULL, "CreateUser", "{\"userName\":\"svc tab\"}", NULL);
    observe(l, "IAMUser", "svc tab", NULL, "PutUserPolicy", "{\"userName\":\"z\"}", NULL);
    assert_true(ch_lineage_dirty(l));
    ch_buf b;
    ch_buf_init(&b, 1 << 20);
    assert_int_equal(ch_lineage_save(l, &b), 0);
    assert_int_equal(ch_buf_adds(&b, "zz not hex\n6162 63\n"), 0);
    assert_int_equal(ch_lineage_new(0, &m, &err), 0);
    assert_int_equal(ch_lineage_load(m, b.data, b.len), 2);
    assert_true(parent_is(m, "svc tab", "root"));
    assert_true(parent_is(m, "z", "svc tab"));
    ch_lineage_stats st;
    ch_lineage_stats_get(m, &st);
    assert_int_equal(st.bad, 2);
    ch_buf_free(&b);
    ch_lineage_free(l);
    ch_lineage_free(m);
}

static void test_cap_keeps_the_oldest_links(void **state)
{
    (void)state;
    ch_lineage *l = NULL;
    ch_error err = {0};
    assert_int_equal(ch_lineage_new(3, &l, &err), 0);
    char req[64];
    for (int i = 0; i < 5; i++) {
        snprintf(req, sizeof req, "{\"userName\":\"u%d\"}", i);
        observe(l, "Root", "", NULL, "CreateUser", req, NULL);
    }
    assert_int_equal(ch_lineage_count(l), 3);
    assert_true(parent_is(l, "u0", "root"));
    ch_lineage_stats st;
    ch_lineage_stats_get(l, &st);
    assert_int_equal(st.dropped, 2);
    ch_lineage_free(l);
}

static int count_link(void *ud, const ch_lineage_link *k)
{
    (void)k;
    ++*(int *)ud;
    return 0;
}

static int changed(const ch_lineage *l)
{
    int n = 0;
    ch_lineage_each_dirty(l, count_link, &n);
    return n;
}

static int first_child(void *ud, const ch_lineage_link *k)
{
    snprintf(ud, 64, "%.*s", (int)k->child.n, k->child.p);
    return 1;
}

/* A checkpoint writes the links that changed, not the table: a store from before the table
 * (its text form in the pipeline state) is read, written whole once and its text dropped; then
 * one refreshed link is one row written, and a reread gives the links in learning order. */
static void test_store_keeps_rows_and_writes_only_changed_links(void **state)
{
    (void)state;
    ch_lineage *l = NULL, *m = NULL, *n = NULL;
    ch_error err = {0};
    assert_int_equal(ch_lineage_new(0, &l, &err), 0);
    observe(l, "Root", "", NULL, "CreateUser", "{\"userName\":\"svc tab\"}", NULL);
    observe(l, "IAMUser", "svc tab", NULL, "PutUserPolicy", "{\"userName\":\"z\"}", NULL);
    assert_int_equal(changed(l), 2);
    ch_lineage_clear_dirty(l);
    assert_false(ch_lineage_dirty(l));
    assert_int_equal(changed(l), 0);
    observe(l, "Root", "", NULL, "CreateUser", "{\"userName\":\"svc tab\"}", NULL);
    assert_int_equal(changed(l), 1);

    char path[] = "/tmp/ch-lineage-XXXXXX.db";
    int fd = mkstemps(path, 3);
    assert_true(fd >= 0);
    close(fd);
    unlink(path);
    ch_store *st = NULL;
    assert_int_equal(ch_store_open(path, &st, &err), 0);
    assert_int_equal(ch_lineage_schema(ch_store_sql(st), &err), 0);
    ch_buf b;
    ch_buf_init(&b, 1 << 20);
    assert_int_equal(ch_lineage_save(l, &b), 0);
    assert_int_equal(ch_store_put_state(st, CH_LINEAGE_STATE, b.data, b.len, 1, &err), 0);
    ch_buf_free(&b);

    bool legacy = false;
    assert_int_equal(ch_lineage_new(0, &m, &err), 0);
    assert_int_equal(ch_lineage_read(st, m, &legacy, &err), 2);
    assert_true(legacy);
    assert_int_equal(changed(m), 2);
    assert_int_equal(ch_store_begin(st, &err), 0);
    assert_int_equal(ch_lineage_persist(st, m, legacy, &err), 0);
    assert_int_equal(ch_store_commit(st, &err), 0);
    ch_lineage_clear_dirty(m);
    void *v = NULL;
    size_t vn = 0;
    assert_int_equal(ch_store_get_state(st, CH_LINEAGE_STATE, &v, &vn, &err), CH_ENOTFOUND);

    /* One refreshed link: one row changed. */
    observe(m, "IAMUser", "svc tab", NULL, "PutUserPolicy", "{\"userName\":\"z\"}", NULL);
    sqlite3 *db = ch_store_sql(st)->db;
    int before = sqlite3_total_changes(db);
    assert_int_equal(ch_store_begin(st, &err), 0);
    assert_int_equal(ch_lineage_persist(st, m, false, &err), 0);
    assert_int_equal(ch_store_commit(st, &err), 0);
    assert_int_equal(sqlite3_total_changes(db) - before, 1);
    ch_lineage_clear_dirty(m);

    assert_int_equal(ch_lineage_new(0, &n, &err), 0);
    assert_int_equal(ch_lineage_read(st, n, &legacy, &err), 2);
    assert_false(legacy);
    assert_false(ch_lineage_dirty(n));
    assert_true(parent_is(n, "svc tab", "root"));
    assert_true(parent_is(n, "z", "svc tab"));
    ch_lineage_link k;
    assert_true(ch_lineage_get(n, "z", 1, &k));
    assert_int_equal(k.count, 2);
    assert_true(ch_lineage_get(n, "svc tab", 7, &k));
    assert_int_equal(k.count, 2);
    char first[64] = "";
    ch_lineage_each(n, first_child, first);
    assert_string_equal(first, "svc tab");
    ch_store_close(st);
    unlink(path);
    ch_lineage_free(l);
    ch_lineage_free(m);
    ch_lineage_free(n);
}

static void put_link(ch_lineage *l, int i, int64_t t)
{
    char child[32], parent[32];
    snprintf(child, sizeof child, "user-%03d", i);
    snprintf(parent, sizeof parent, "admin-%d", i % 3);
    ch_lineage_link k = {{child, (uint32_t)strlen(child)},
                         {parent, (uint32_t)strlen(parent)},
                         CH_SV("CreateUser"),
                         CH_SV("111122223333"),
                         t,
                         t,
                         1};
    assert_true(ch_lineage_put(l, &k) >= 0);
}

/* Many changed links are written many rows to a statement (lineage_store.c): every row of a
 * full batch and of the rest lands, new links take rowids in learning order, and a save that
 * mixes refreshed and new links updates the ones and appends the others. */
static void test_store_writes_many_links_in_learning_order(void **state)
{
    (void)state;
    ch_lineage *l = NULL, *n = NULL;
    ch_error err = {0};
    assert_int_equal(ch_lineage_new(0, &l, &err), 0);
    for (int i = 0; i < 70; i++) /* two batches of 32 and 6 more */
        put_link(l, 69 - i, 1000 + i);
    char path[] = "/tmp/ch-lineage-XXXXXX.db";
    int fd = mkstemps(path, 3);
    assert_true(fd >= 0);
    close(fd);
    unlink(path);
    ch_store *st = NULL;
    assert_int_equal(ch_store_open(path, &st, &err), 0);
    assert_int_equal(ch_lineage_schema(ch_store_sql(st), &err), 0);
    assert_int_equal(ch_store_begin(st, &err), 0);
    assert_int_equal(ch_lineage_persist(st, l, false, &err), 0);
    assert_int_equal(ch_store_commit(st, &err), 0);
    ch_lineage_clear_dirty(l);
    /* 35 refreshed (every other link) and 5 new, in one save. */
    for (int i = 0; i < 70; i += 2)
        put_link(l, i, 5000 + i);
    for (int i = 70; i < 75; i++)
        put_link(l, i, 6000 + i);
    assert_int_equal(changed(l), 40);
    assert_int_equal(ch_store_begin(st, &err), 0);
    assert_int_equal(ch_lineage_persist(st, l, false, &err), 0);
    assert_int_equal(ch_store_commit(st, &err), 0);

    sqlite3 *db = ch_store_sql(st)->db;
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT id, child, count, last_ms FROM lineage_links"
                                        " ORDER BY id",
                                        -1, &q, NULL),
                     SQLITE_OK);
    int rows = 0;
    while (sqlite3_step(q) == SQLITE_ROW) {
        int id = sqlite3_column_int(q, 0);
        int i = rows < 70 ? 69 - rows : rows; /* the learning order */
        char want[32];
        snprintf(want, sizeof want, "user-%03d", i);
        assert_int_equal(id, rows + 1);
        assert_int_equal(sqlite3_column_bytes(q, 1), (int)strlen(want));
        assert_memory_equal(sqlite3_column_blob(q, 1), want, strlen(want));
        bool again = i < 70 && i % 2 == 0;
        assert_int_equal(sqlite3_column_int64(q, 2), again ? 2 : 1);
        assert_int_equal(sqlite3_column_int64(q, 3),
                         again ? 5000 + i : (i < 70 ? 1000 + (69 - i) : 6000 + i));
        rows++;
    }
    sqlite3_finalize(q);
    assert_int_equal(rows, 75);

    bool legacy = true;
    assert_int_equal(ch_lineage_new(0, &n, &err), 0);
    assert_int_equal(ch_lineage_read(st, n, &legacy, &err), 75);
    assert_false(legacy);
    char first[64] = "";
    ch_lineage_each(n, first_child, first);
    assert_string_equal(first, "user-069");
    ch_store_close(st);
    unlink(path);
    ch_lineage_free(l);
    ch_lineage_free(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_root_creates_user_and_user_creates_another),
        cmocka_unit_test(test_self_refused_and_other_actions_teach_nothing),
        cmocka_unit_test(test_first_creator_stays_and_cycles_refused),
        cmocka_unit_test(test_role_session_links_to_its_caller),
        cmocka_unit_test(test_resolve_stops_at_the_first_match),
        cmocka_unit_test(test_save_load_roundtrip_and_damaged_lines),
        cmocka_unit_test(test_cap_keeps_the_oldest_links),
        cmocka_unit_test(test_store_keeps_rows_and_writes_only_changed_links),
        cmocka_unit_test(test_store_writes_many_links_in_learning_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
