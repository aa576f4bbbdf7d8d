/*
 * test_store.c - offenses and user risk in SQLite: round trip, a second run extending the open
 * offenses, closed offenses staying closed, hostile strings stored verbatim, schema versioning.
 * Each test works in its own temporary directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "offense/store.h"
#include "tmpdir.h"

#define T0 1722588804000LL
#define MIN (60LL * 1000)

static const ch_rule_info R_A = {"CJ-AUTH-01", "Logins from several countries", "cj", 7, 8, 8, 40};
static const ch_rule_info R_B = {"CJ-EC2-01", "Unauthorised OS image", "cj", 8, 8, 8, 40};
static const ch_rule_info R_C = {"CJ-MINE-01", "Mining pool DNS", "cj", 9, 9, 9, 50};

typedef ch_test_tmpdb tmpdb;

static int setup(void **state)
{
    return ch_test_tmpdb_setup(state, "store", "sub/dir/coinhound.db");
}

static int teardown(void **state) { return ch_test_tmpdb_teardown(state); }

static void hit(ch_offenses *m, ch_risk *r, const ch_rule_info *rule, const char *user, int64_t ts,
                const char *id)
{
    ch_sv ids[1] = {{id, (uint32_t)strlen(id)}};
    ch_rule_hit h = {.rule = rule,
                     .ts_ms = ts,
                     .first_ms = ts,
                     .index_field = "user.name",
                     .index_value = {user, (uint32_t)strlen(user)},
                     .user = {user, (uint32_t)strlen(user)},
                     .event_ids = ids,
                     .nevent_ids = 1,
                     .event_count = 1,
                     .evidence = "seen"};
    assert_int_equal(ch_offenses_add_hit(m, &h, NULL), 1);
    if (r != NULL)
        assert_int_equal(ch_risk_add_hit(r, &h), 1);
}

static ch_store *open_ok(const char *path)
{
    ch_store *s = NULL;
    ch_error err = {0};
    int rc = ch_store_open(path, &s, &err);
    if (rc != 0)
        fail_msg("open %s: %s", path, err.msg);
    return s;
}

static char *json_of(const ch_offenses *m)
{
    ch_buf b;
    ch_buf_init(&b, 0);
    assert_int_equal(ch_offenses_json(&b, m, CH_OFFENSE_MASK_ALL, CH_OFFENSE_JSON_DETAIL), 0);
    return b.data;
}

static void test_store_round_trip_gives_the_same_offenses(void **state)
{
    tmpdb *t = *state;
    ch_store *s = open_ok(t->db);
    ch_error err = {0};
    ch_offenses *m = ch_offenses_new();
    hit(m, NULL, &R_A, "alice", T0, "e1");
    hit(m, NULL, &R_B, "alice", T0 + MIN, "e2");
    hit(m, NULL, &R_C, "bob", T0 + 2 * MIN, "e3");
    ch_offense *bob = ch_offenses_find(m, 2);
    assert_int_equal(ch_offense_set_status(m, bob, CH_OFFENSE_HIDDEN, "known miner test", T0), 0);
    assert_int_equal(ch_store_save(s, m, NULL, T0, &err), 0);
    assert_false(ch_offenses_at(m, 0)->dirty);
    char *before = json_of(m);
    ch_store_close(s);

    s = open_ok(t->db);
    ch_offenses *m2 = ch_offenses_new();
    assert_int_equal(ch_store_load(s, CH_OFFENSE_MASK_ALL, m2, &err), 2);
    char *after = json_of(m2);
    assert_string_equal(before, after);
    assert_int_equal(ch_offenses_next_id(m2), 3);
    ch_offenses *one = ch_offenses_new();
    assert_int_equal(ch_store_load_one(s, 2, one, &err), 0);
    assert_int_equal(ch_offenses_count(one), 1);
    assert_string_equal(ch_offenses_at(one, 0)->notes[0].text, "known miner test");
    ch_offenses *none = ch_offenses_new();
    assert_int_equal(ch_store_load_one(s, 99, none, &err), CH_ENOTFOUND);
    ch_offenses *open = ch_offenses_new();
    assert_int_equal(ch_store_load(s, CH_OFFENSE_MASK_OPEN, open, &err), 1);
    free(before);
    free(after);
    ch_offenses_free(open);
    ch_offenses_free(none);
    ch_offenses_free(one);
    ch_offenses_free(m2);
    ch_offenses_free(m);
    ch_store_close(s);
}

static void test_second_run_extends_open_offense_instead_of_duplicating(void **state)
{
    tmpdb *t = *state;
    ch_error err = {0};
    /* run 1 */
    ch_store *s = open_ok(t->db);
    ch_offenses *m = ch_offenses_new();
    ch_risk *r = ch_risk_new(0);
    assert_int_equal(ch_store_load_active(s, m, &err), 0);
    assert_int_equal(ch_store_load_users(s, r, &err), 0);
    hit(m, r, &R_A, "alice", T0, "e1");
    hit(m, r, &R_A, "alice", T0 + MIN, "e2");
    assert_int_equal(ch_store_save(s, m, r, T0, &err), 0);
    ch_offenses_free(m);
    ch_risk_free(r);
    ch_store_close(s);
    /* run 2, over new files */
    s = open_ok(t->db);
    m = ch_offenses_new();
    r = ch_risk_new(0);
    assert_int_equal(ch_store_load_active(s, m, &err), 1);
    assert_int_equal(ch_store_load_users(s, r, &err), 1);
    hit(m, r, &R_B, "alice", T0 + 60 * MIN, "e3");
    hit(m, r, &R_A, "alice", T0 + 61 * MIN, "e4");
    hit(m, r, &R_A, "alice", T0 + 62 * MIN, "e2"); /* an event the first run already counted */
    hit(m, r, &R_C, "bob", T0 + 62 * MIN, "e5");
    assert_int_equal(ch_offenses_count(m), 2);
    assert_int_equal(ch_store_save(s, m, r, T0 + 100 * MIN, &err), 0);
    ch_offenses_free(m);
    ch_risk_free(r);
    ch_store_close(s);
    /* what is stored */
    s = open_ok(t->db);
    m = ch_offenses_new();
    assert_int_equal(ch_store_load(s, CH_OFFENSE_MASK_ALL, m, &err), 2);
    ch_offense *a = ch_offenses_find(m, 1);
    assert_non_null(a);
    assert_string_equal(a->index_value, "alice");
    assert_int_equal(a->nrules, 2);
    assert_string_equal(a->rules[0].id, "CJ-AUTH-01");
    assert_int_equal(a->rules[0].count, 4);
    assert_int_equal(a->rules[0].first_ms, T0);
    assert_int_equal(a->rules[0].last_ms, T0 + 62 * MIN);
    assert_int_equal(a->event_count, 4);
    assert_int_equal(a->nevent_ids, 4);
    assert_int_equal(a->first_ms, T0);
    assert_int_equal(a->last_ms, T0 + 62 * MIN);
    ch_offense *b = ch_offenses_find(m, 2);
    assert_non_null(b);
    assert_string_equal(b->index_value, "bob");
    /* risk carried over and decayed across the runs */
    r = ch_risk_new(0);
    assert_int_equal(ch_store_load_user(s, "alice", 5, r, &err), 0);
    ch_risk_user *u = ch_risk_find(r, "alice", 5);
    assert_int_equal(u->ntimeline, 5);
    assert_string_equal(u->timeline[2].rule_id, "CJ-EC2-01");
    double want = 40 * exp2(-62.0 / (24 * 60)) + 40 * exp2(-61.0 / (24 * 60)) +
                  40 * exp2(-2.0 / (24 * 60)) + 40 * exp2(-1.0 / (24 * 60)) + 40;
    assert_true(fabs(u->risk - want) < 1e-6);
    assert_int_equal(ch_store_load_user(s, "nobody", 6, r, &err), CH_ENOTFOUND);
    ch_risk_free(r);
    ch_offenses_free(m);
    ch_store_close(s);
}

static void test_closed_offense_is_not_reopened_by_a_later_run(void **state)
{
    tmpdb *t = *state;
    ch_error err = {0};
    ch_store *s = open_ok(t->db);
    ch_offenses *m = ch_offenses_new();
    hit(m, NULL, &R_A, "alice", T0, "e1");
    assert_int_equal(ch_store_save(s, m, NULL, T0, &err), 0);
    ch_offenses_free(m);
    assert_int_equal(ch_store_set_status(s, 1, CH_OFFENSE_CLOSED, "reset password", T0, &err), 0);
    assert_int_equal(ch_store_set_status(s, 1, CH_OFFENSE_OPEN, NULL, T0, &err), CH_EUSAGE);
    assert_int_equal(ch_store_set_status(s, 1, CH_OFFENSE_HIDDEN, NULL, T0, &err), CH_EUSAGE);
    assert_int_equal(ch_store_set_status(s, 7, CH_OFFENSE_CLOSED, NULL, T0, &err), CH_ENOTFOUND);
    ch_store_close(s);

    s = open_ok(t->db);
    m = ch_offenses_new();
    assert_int_equal(ch_store_load_active(s, m, &err), 0);
    hit(m, NULL, &R_A, "alice", T0 + MIN, "e2");
    assert_int_equal(ch_offenses_at(m, 0)->id, 2);
    assert_int_equal(ch_store_save(s, m, NULL, T0, &err), 0);
    ch_offenses_free(m);
    m = ch_offenses_new();
    assert_int_equal(ch_store_load(s, CH_OFFENSE_MASK_ALL, m, &err), 2);
    ch_offense *old = ch_offenses_find(m, 1), *fresh = ch_offenses_find(m, 2);
    assert_int_equal(old->status, CH_OFFENSE_CLOSED);
    assert_int_equal(old->nnotes, 1);
    assert_string_equal(old->notes[0].text, "reset password");
    assert_int_equal(old->event_count, 1);
    assert_int_equal(fresh->status, CH_OFFENSE_OPEN);
    assert_int_equal(fresh->event_count, 1);
    ch_offenses_free(m);
    ch_store_close(s);
}

static void test_analyst_close_during_a_run_is_not_undone_by_its_save(void **state)
{
    tmpdb *t = *state;
    ch_error err = {0};
    ch_store *s = open_ok(t->db);
    ch_offenses *m = ch_offenses_new();
    hit(m, NULL, &R_A, "alice", T0, "e1");
    assert_int_equal(ch_store_save(s, m, NULL, T0, &err), 0);
    ch_offenses_free(m);
    m = ch_offenses_new();
    assert_int_equal(ch_store_load_active(s, m, &err), 1);
    /* meanwhile, from another terminal */
    ch_store *cli = open_ok(t->db);
    assert_int_equal(ch_store_set_status(cli, 1, CH_OFFENSE_CLOSED, NULL, T0, &err), 0);
    ch_store_close(cli);
    hit(m, NULL, &R_B, "alice", T0 + MIN, "e2");
    assert_int_equal(ch_store_save(s, m, NULL, T0, &err), 0);
    ch_offenses_free(m);
    m = ch_offenses_new();
    assert_int_equal(ch_store_load(s, CH_OFFENSE_MASK_ALL, m, &err), 1);
    assert_int_equal(ch_offenses_at(m, 0)->status, CH_OFFENSE_CLOSED);
    ch_offenses_free(m);
    ch_store_close(s);
}

static void test_sql_injection_looking_values_are_stored_verbatim(void **state)
{
    tmpdb *t = *state;
    ch_error err = {0};
    const char *evil = "alice'); DROP TABLE offenses; --";
    const char *evil_note = "x'; DELETE FROM offense_notes WHERE '1'='1";
    static const ch_rule_info R_EVIL = {
        "CJ-X' OR 1=1 --", "title \"; DROP TABLE users; --", "cj", 5, 5, 5, 10};
    ch_store *s = open_ok(t->db);
    ch_offenses *m = ch_offenses_new();
    ch_risk *r = ch_risk_new(0);
    hit(m, r, &R_EVIL, evil, T0, "id'); --");
    assert_int_equal(ch_store_save(s, m, r, T0, &err), 0);
    assert_int_equal(ch_store_set_status(s, 1, CH_OFFENSE_HIDDEN, evil_note, T0, &err), 0);
    ch_offenses_free(m);
    ch_risk_free(r);
    ch_store_close(s);

    s = open_ok(t->db);
    m = ch_offenses_new();
    assert_int_equal(ch_store_load(s, CH_OFFENSE_MASK_ALL, m, &err), 1);
    ch_offense *o = ch_offenses_at(m, 0);
    assert_string_equal(o->index_value, evil);
    assert_string_equal(o->rules[0].id, R_EVIL.id);
    assert_string_equal(o->rules[0].title, R_EVIL.title);
    assert_string_equal(o->event_ids[0], "id'); --");
    assert_string_equal(o->notes[0].text, evil_note);
    r = ch_risk_new(0);
    assert_int_equal(ch_store_load_users(s, r, &err), 1);
    assert_non_null(ch_risk_find(r, evil, strlen(evil)));
    ch_risk_free(r);
    ch_offenses_free(m);
    ch_store_close(s);
}

static void test_store_is_wal_and_versioned(void **state)
{
    tmpdb *t = *state;
    ch_store_close(open_ok(t->db));
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(t->db, &db), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT version FROM schema_versions"
                                        " WHERE component = 'offenses'",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), CH_STORE_SCHEMA_VERSION);
    sqlite3_finalize(st);
    /* Builds from before schema_versions read PRAGMA user_version: past theirs, they refuse. */
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_true(sqlite3_column_int(st, 0) > CH_STORE_SCHEMA_VERSION);
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_exec(db,
                                  "UPDATE schema_versions SET version = 99"
                                  " WHERE component = 'offenses'",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    ch_store *s = NULL;
    ch_error err = {0};
    assert_int_equal(ch_store_open(t->db, &s, &err), CH_EUSAGE);
    assert_null(s);
    assert_non_null(strstr(err.msg, "newer"));
}

static void test_file_that_is_not_a_database_is_refused(void **state)
{
    tmpdb *t = *state;
    char path[320];
    snprintf(path, sizeof path, "%s/junk.db", t->dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 200; i++)
        fputs("this is not an sqlite database at all\n", f);
    fclose(f);
    ch_store *s = NULL;
    ch_error err = {0};
    assert_int_equal(ch_store_open(path, &s, &err), CH_EIO);
    assert_null(s);
    assert_non_null(strstr(err.msg, path));
}

static void test_default_path_is_under_the_data_directory(void **state)
{
    tmpdb *t = *state;
    setenv("COINHOUND_HOME", t->dir, 1);
    char path[4096], want[320];
    assert_int_equal(ch_store_default_path(path, sizeof path), 0);
    snprintf(want, sizeof want, "%s/coinhound.db", t->dir);
    assert_string_equal(path, want);
    ch_store *s = open_ok(NULL);
    assert_string_equal(ch_store_path(s), want);
    ch_store_close(s);
    assert_int_equal(access(want, F_OK), 0);
    unsetenv("COINHOUND_HOME");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_round_trip_gives_the_same_offenses, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_second_run_extends_open_offense_instead_of_duplicating,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_closed_offense_is_not_reopened_by_a_later_run, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_analyst_close_during_a_run_is_not_undone_by_its_save,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_sql_injection_looking_values_are_stored_verbatim,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_is_wal_and_versioned, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_that_is_not_a_database_is_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_default_path_is_under_the_data_directory, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
