/*
 * test_store_upgrade.c - a database written before the one schema scheme (core/sqlite_util.h)
 * opens and upgrades: the offense store kept its version in PRAGMA user_version, the intel store
 * in a row of intel_meta; both are read once, recorded in schema_versions, and the data stays.
 *
 * The fixtures below are the schema text of that build, copied verbatim (offense/store.c's
 * migrations 0 -> 3 and intel/intel_store.c's CREATE IF NOT EXISTS schema): they must never
 * follow later changes to the stores, since they stand for files already on disk.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/mem.h"
#include "intel/intel_store.h"
#include "offense/store.h"
#include "tmpdir.h"

/* ---- the previous build's schema, verbatim ------------------------------------------------- */

static const char *const old_offense_schema[] = {
    /* 0 -> 1: offenses, their rules, events and notes; users and their risk timeline. */
    "CREATE TABLE offenses ("
    " id INTEGER PRIMARY KEY,"
    " index_field TEXT NOT NULL,"
    " index_value TEXT NOT NULL,"
    " status TEXT NOT NULL CHECK (status IN ('open', 'closed', 'hidden')),"
    " magnitude INTEGER NOT NULL, score REAL NOT NULL,"
    " severity INTEGER NOT NULL, credibility INTEGER NOT NULL, relevance INTEGER NOT NULL,"
    " event_count INTEGER NOT NULL, first_seen INTEGER, last_seen INTEGER,"
    " dropped_rules INTEGER NOT NULL DEFAULT 0,"
    " created INTEGER NOT NULL, updated INTEGER NOT NULL);"
    "CREATE UNIQUE INDEX offenses_active ON offenses (index_field, index_value)"
    " WHERE status <> 'closed';"
    "CREATE INDEX offenses_status ON offenses (status, magnitude);"
    "CREATE TABLE offense_rules ("
    " offense_id INTEGER NOT NULL REFERENCES offenses (id) ON DELETE CASCADE,"
    " rule_id TEXT NOT NULL, title TEXT NOT NULL, evidence TEXT,"
    " severity INTEGER NOT NULL, credibility INTEGER NOT NULL, relevance INTEGER NOT NULL,"
    " count INTEGER NOT NULL, first_seen INTEGER, last_seen INTEGER,"
    " PRIMARY KEY (offense_id, rule_id)) WITHOUT ROWID;"
    "CREATE TABLE offense_events ("
    " offense_id INTEGER NOT NULL REFERENCES offenses (id) ON DELETE CASCADE,"
    " seq INTEGER NOT NULL, event_id TEXT NOT NULL,"
    " PRIMARY KEY (offense_id, seq)) WITHOUT ROWID;"
    "CREATE TABLE offense_notes ("
    " id INTEGER PRIMARY KEY,"
    " offense_id INTEGER NOT NULL REFERENCES offenses (id) ON DELETE CASCADE,"
    " ts INTEGER NOT NULL, status TEXT NOT NULL, text TEXT NOT NULL);"
    "CREATE INDEX offense_notes_offense ON offense_notes (offense_id);"
    "CREATE TABLE users ("
    " name TEXT PRIMARY KEY, risk REAL NOT NULL, updated INTEGER NOT NULL);"
    "CREATE TABLE user_timeline ("
    " id INTEGER PRIMARY KEY, user TEXT NOT NULL, ts INTEGER NOT NULL,"
    " rule_id TEXT NOT NULL, delta REAL NOT NULL, risk_after REAL NOT NULL);"
    "CREATE INDEX user_timeline_user ON user_timeline (user, ts);",
    /* 1 -> 2: entity links, so that a later run names the launching user (enrich/entity.h). */
    "CREATE TABLE entity_links ("
    " kind TEXT NOT NULL CHECK (kind IN ('i', 'e', 'a')), key TEXT NOT NULL,"
    " instance TEXT NOT NULL, user TEXT, access_key TEXT, image TEXT, account TEXT,"
    " region TEXT, invoked_by TEXT,"
    " launched_ms INTEGER NOT NULL, last_used_ms INTEGER NOT NULL,"
    " PRIMARY KEY (kind, key)) WITHOUT ROWID;"
    "CREATE INDEX entity_links_used ON entity_links (last_used_ms);",
    /* 2 -> 3: the pipeline's durable state beside the offenses it produced, so that one
     * transaction saves both (pipeline/pipeline.h): named blobs (the correlation engine's
     * state, input positions) and the identities of the records already processed, in chunks
     * of 8-byte hashes (one row per checkpoint, not one per record: a million records cost one
     * 8 MB row, not a million inserts). */
    "CREATE TABLE pipeline_state ("
    " name TEXT PRIMARY KEY, value BLOB NOT NULL, updated INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE seen_records ("
    " id INTEGER PRIMARY KEY, first_ts INTEGER, last_ts INTEGER, n INTEGER NOT NULL,"
    " ids BLOB NOT NULL);",
};

static const char *const old_intel_schema =
    "CREATE TABLE IF NOT EXISTS intel_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
    " WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS refsets ("
    " id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, type TEXT NOT NULL,"
    " flags INTEGER NOT NULL DEFAULT 0, shareable INTEGER NOT NULL DEFAULT 0,"
    " created INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS refset_elements ("
    " id INTEGER PRIMARY KEY,"
    " set_id INTEGER NOT NULL REFERENCES refsets (id) ON DELETE CASCADE,"
    " value TEXT NOT NULL, source TEXT NOT NULL DEFAULT '', indicator TEXT NOT NULL DEFAULT '',"
    " first_seen INTEGER, last_seen INTEGER, valid_from INTEGER, expiry INTEGER,"
    " added INTEGER NOT NULL,"
    " UNIQUE (set_id, value, source, indicator));"
    "CREATE INDEX IF NOT EXISTS refset_elements_indicator ON refset_elements (indicator)"
    " WHERE indicator <> '';"
    "CREATE INDEX IF NOT EXISTS refset_elements_added ON refset_elements (added, id);"
    "CREATE TABLE IF NOT EXISTS indicators ("
    " id TEXT PRIMARY KEY, modified INTEGER, created INTEGER, name TEXT NOT NULL DEFAULT '',"
    " types TEXT NOT NULL DEFAULT '', labels TEXT NOT NULL DEFAULT '', confidence INTEGER,"
    " created_by_ref TEXT NOT NULL DEFAULT '', created_by TEXT NOT NULL DEFAULT '',"
    " feed TEXT NOT NULL DEFAULT '', pattern TEXT NOT NULL DEFAULT '',"
    " valid_from INTEGER, valid_until INTEGER, revoked INTEGER NOT NULL DEFAULT 0,"
    " elements INTEGER NOT NULL DEFAULT 0, unsupported INTEGER NOT NULL DEFAULT 0)"
    " WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS identities (id TEXT PRIMARY KEY, name TEXT NOT NULL)"
    " WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS taxii_state ("
    " url TEXT NOT NULL, collection TEXT NOT NULL, added_after TEXT NOT NULL,"
    " PRIMARY KEY (url, collection)) WITHOUT ROWID;";

/* A little of everything: an open offense with a rule and an event, a user, an entity link, the
 * engine's checkpoint blob, and an intel set with one element from one indicator. */
static const char *const old_rows =
    "INSERT INTO offenses (id, index_field, index_value, status, magnitude, score, severity,"
    " credibility, relevance, event_count, first_seen, last_seen, created, updated)"
    " VALUES (7, 'user.name', 'sybil', 'open', 6, 6.5, 7, 8, 8, 3, 1000, 2000, 1, 1);"
    "INSERT INTO offense_rules (offense_id, rule_id, title, evidence, severity, credibility,"
    " relevance, count, first_seen, last_seen)"
    " VALUES (7, 'CJ-AUTH-01', 'Logins from several countries', 'GB, RU', 7, 8, 8, 3, 1000,"
    " 2000);"
    "INSERT INTO offense_events (offense_id, seq, event_id) VALUES (7, 0, 'ev-1');"
    "INSERT INTO users (name, risk, updated) VALUES ('sybil', 40, 2000);"
    "INSERT INTO entity_links (kind, key, instance, user, launched_ms, last_used_ms)"
    " VALUES ('i', 'i-0abc', 'i-0abc', 'sybil', 1500, 1500);"
    "INSERT INTO pipeline_state (name, value, updated) VALUES ('engine', x'43484547', 2000);"
    "INSERT INTO refsets (id, name, type, flags, shareable, created)"
    " VALUES (1, 'mining_pool_ips', 'ip', 0, 0, 1);"
    "INSERT INTO refset_elements (set_id, value, source, indicator, added)"
    " VALUES (1, '203.0.113.9', 'feed', 'indicator--1', 1);"
    "INSERT INTO indicators (id, modified, name, pattern)"
    " VALUES ('indicator--1', 1, 'pool', '[ipv4-addr:value = ''203.0.113.9'']');";

typedef ch_test_tmpdb tmpdb;

static int setup(void **state) { return ch_test_tmpdb_setup(state, "upgrade", "coinhound.db"); }

static int teardown(void **state) { return ch_test_tmpdb_teardown(state); }

static void exec_ok(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s", msg ? msg : "?");
}

/* A file as the previous build left it: the offense store at version `offense_version` (its
 * migrations run in order, user_version set after each, as that build did) and, with intel,
 * the intel tables with their version row. */
static void write_old_file(const char *path, int offense_version, bool intel, bool rows)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    exec_ok(db, "PRAGMA journal_mode = WAL");
    for (int v = 0; v < offense_version; v++) {
        char bump[48];
        snprintf(bump, sizeof bump, "PRAGMA user_version = %d", v + 1);
        exec_ok(db, old_offense_schema[v]);
        exec_ok(db, bump);
    }
    if (intel) {
        exec_ok(db, old_intel_schema);
        exec_ok(db, "INSERT OR IGNORE INTO intel_meta (key, value) VALUES ('intel_schema', '1')");
    }
    if (rows)
        exec_ok(db, old_rows);
    sqlite3_close(db);
}

static int query_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void assert_upgraded(const char *path)
{
    assert_int_equal(
        query_int(path, "SELECT version FROM schema_versions WHERE component = 'offenses'"),
        CH_STORE_SCHEMA_VERSION);
    assert_int_equal(
        query_int(path, "SELECT version FROM schema_versions WHERE component = 'intel'"),
        CH_INTEL_SCHEMA_VERSION);
    assert_int_equal(
        query_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 'intel_meta'"), 0);
    /* An older build now refuses the file rather than write tables it does not know. */
    assert_true(query_int(path, "PRAGMA user_version") > CH_STORE_SCHEMA_VERSION);
}

static void assert_offense_data(const char *path)
{
    ch_store *s = NULL;
    ch_error err = {0};
    if (ch_store_open(path, &s, &err) != 0)
        fail_msg("%s", err.msg);
    ch_offenses *m = ch_offenses_new();
    assert_non_null(m);
    assert_int_equal(ch_store_load_active(s, m, &err), 1);
    const ch_offense *o = ch_offenses_at(m, 0);
    assert_int_equal(o->id, 7);
    assert_string_equal(o->index_value, "sybil");
    assert_int_equal(o->nrules, 1);
    assert_string_equal(o->rules[0].id, "CJ-AUTH-01");
    assert_string_equal(o->event_ids[0], "ev-1");
    ch_offenses_free(m);
    void *blob = NULL;
    size_t n = 0;
    assert_int_equal(ch_store_get_state(s, "engine", &blob, &n, &err), 0);
    assert_int_equal(n, 4);
    assert_memory_equal(blob, "CHEG", 4);
    ch_free(blob);
    ch_store_close(s);
}

static void assert_intel_data(const char *path)
{
    ch_intel_store *s = NULL;
    ch_error err = {0};
    if (ch_intel_store_open(path, &s, &err) != 0)
        fail_msg("%s", err.msg);
    ch_intel_set_info info;
    assert_int_equal(ch_intel_store_set_get(s, "mining_pool_ips", &info, &err), 0);
    assert_int_equal(info.type, CH_REFSET_IP);
    assert_int_equal(info.count, 1);
    int64_t modified = 0;
    int32_t modified_sub = -1;
    bool revoked = true;
    assert_int_equal(ch_intel_store_indicator_version(s, "indicator--1", &modified, &modified_sub,
                                                      &revoked, &err),
                     0);
    assert_int_equal(modified, 1);
    assert_int_equal(modified_sub, 0); /* the column the upgrade added, at its default */
    assert_false(revoked);
    ch_intel_store_close(s);
}

static void test_previous_build_file_opens_offense_store_first(void **state)
{
    tmpdb *t = *state;
    write_old_file(t->db, 3, true, true);
    assert_offense_data(t->db);
    assert_intel_data(t->db);
    assert_upgraded(t->db);
    /* And again: the recorded versions stand, nothing runs twice. */
    assert_offense_data(t->db);
    assert_intel_data(t->db);
    assert_upgraded(t->db);
}

static void test_previous_build_file_opens_intel_store_first(void **state)
{
    tmpdb *t = *state;
    write_old_file(t->db, 3, true, true);
    assert_intel_data(t->db);
    assert_offense_data(t->db);
    assert_upgraded(t->db);
}

static void test_older_offense_schema_is_migrated_up(void **state)
{
    tmpdb *t = *state;
    write_old_file(t->db, 1, false, false); /* offenses and users only: before links */
    ch_store *s = NULL;
    ch_error err = {0};
    if (ch_store_open(t->db, &s, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(ch_store_put_state(s, "engine", "x", 1, 1, &err), 0); /* v3's table */
    ch_store_close(s);
    assert_int_equal(query_int(t->db, "SELECT count(*) FROM sqlite_master"
                                      " WHERE name IN ('entity_links', 'pipeline_state')"),
                     2);
    ch_intel_store *is = NULL;
    if (ch_intel_store_open(t->db, &is, &err) != 0) /* no intel tables yet: made now */
        fail_msg("%s", err.msg);
    assert_int_equal(ch_intel_store_set_ensure(is, "pools", CH_REFSET_DOMAIN, 0, &err), 0);
    ch_intel_store_close(is);
    assert_upgraded(t->db);
}

static void test_previous_build_file_newer_than_this_build_is_refused(void **state)
{
    tmpdb *t = *state;
    write_old_file(t->db, 3, true, false);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(t->db, &db), SQLITE_OK);
    exec_ok(db, "UPDATE intel_meta SET value = '9' WHERE key = 'intel_schema'");
    sqlite3_close(db);
    ch_intel_store *is = NULL;
    ch_error err = {0};
    assert_int_equal(ch_intel_store_open(t->db, &is, &err), CH_EUSAGE);
    assert_non_null(strstr(err.msg, "newer"));
    /* Refused without a trace: the old record is still there for the newer build. */
    assert_int_equal(query_int(t->db, "SELECT value FROM intel_meta WHERE key = 'intel_schema'"),
                     9);
}

/* ---- two opens of one new file at once ------------------------------------------------------ */

typedef struct racer {
    const char *path;
    pthread_barrier_t *start;
    char msg[sizeof(ch_error){0}.msg]; /* empty when the open succeeded */
} racer;

static void *open_at_once(void *arg)
{
    racer *r = arg;
    ch_store *s = NULL;
    ch_error err = {0};
    pthread_barrier_wait(r->start);
    if (ch_store_open(r->path, &s, &err) != 0)
        snprintf(r->msg, sizeof r->msg, "%s", err.msg);
    else
        ch_store_close(s);
    return NULL;
}

/* Two `analyze` runs started together on a new store: both switch the new file to WAL, and
 * SQLite refuses one of the two switches at once, without waiting, about once in ten. Both
 * opens must succeed, as any other write waits for the other process. */
static void test_two_opens_of_a_new_file_at_once_both_succeed(void **state)
{
    tmpdb *t = *state;
    pthread_barrier_t start;
    assert_int_equal(pthread_barrier_init(&start, NULL, 2), 0);
    for (int i = 0; i < 100; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s.%d", t->db, i);
        racer a = {.path = path, .start = &start}, b = a;
        pthread_t ta, tb;
        assert_int_equal(pthread_create(&ta, NULL, open_at_once, &a), 0);
        assert_int_equal(pthread_create(&tb, NULL, open_at_once, &b), 0);
        pthread_join(ta, NULL);
        pthread_join(tb, NULL);
        if (a.msg[0] || b.msg[0])
            fail_msg("open %d of a new file: %s%s", i, a.msg, b.msg);
    }
    pthread_barrier_destroy(&start);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_previous_build_file_opens_offense_store_first, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_previous_build_file_opens_intel_store_first, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_older_offense_schema_is_migrated_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_previous_build_file_newer_than_this_build_is_refused,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_opens_of_a_new_file_at_once_both_succeed, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
