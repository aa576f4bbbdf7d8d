/*
 * store.c - SQLite persistence of offenses and user risk.
 *
 * Statements are prepared per call (or once per save for the per-row ones) and always bound:
 * index values, rule titles, notes and user names come from logs an attacker can write to, so
 * none of them ever touches SQL text. The schema lives in the `migrations` table below: entry i
 * brings the "offenses" component from version i to i + 1 (its row in schema_versions, run by
 * ch_sql_migrate in one transaction with the version's update, so a crash mid-upgrade leaves the
 * old version intact). The connection, its settings and the transactions are core/sqlite_util's,
 * shared with the intel store.
 *
 * Saving writes only what changed in the run (offense rows, their rules, their first event
 * ids, new notes; users and new timeline entries), in one IMMEDIATE transaction: a second process
 * reading the database sees the run's result entirely or not at all. Cost is O(changed rows).
 */
#include "offense/store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "core/sqlite_util.h"
#include "offense/obs_store.h"
#include "offense/observables.h"
#include "offense/offense_int.h"

struct ch_store {
    ch_sql sql; /* the connection, its path and the transaction nesting (core/sqlite_util.h) */
};

static const char *const migrations[] = {
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
     * state, rule-made reference-set values, input positions, the committed length of the
     * ledger of processed records). */
    ("CREATE TABLE pipeline_state ("
     " name TEXT PRIMARY KEY, value BLOB NOT NULL, updated INTEGER NOT NULL) WITHOUT ROWID;"),
    /* 3 -> 4: what analysts change through the API (offense/triage.h), apart from the rows the
     * pipeline upserts, so a checkpoint never overwrites an assignment: assignment, closing
     * reason, follow-up and protection with a version (the ETag), the closing reasons, and the
     * author of a note. */
    ("CREATE TABLE offense_triage ("
     " offense_id INTEGER PRIMARY KEY REFERENCES offenses (id) ON DELETE CASCADE,"
     " version INTEGER NOT NULL, assigned_to TEXT, closing_reason TEXT,"
     " follow_up INTEGER NOT NULL DEFAULT 0, protected INTEGER NOT NULL DEFAULT 0,"
     " updated INTEGER NOT NULL, updated_by TEXT NOT NULL);"
     "CREATE TABLE offense_closing_reasons ("
     " id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE);"
     "INSERT INTO offense_closing_reasons (id, text) VALUES (1, 'False positive'),"
     " (2, 'Non-issue'), (3, 'Policy violation'), (4, 'Confirmed compromise, remediated'),"
     " (5, 'Duplicate');"
     "ALTER TABLE offense_notes ADD COLUMN author TEXT;"),
};

_Static_assert(sizeof migrations / sizeof migrations[0] == CH_STORE_SCHEMA_VERSION,
               "one migration per schema version");

/* Builds before schema_versions kept this component's version in PRAGMA user_version (1 to 3).
 * It is read once, when schema_versions has no row for the offenses, and then set past every
 * such version, so that one of those builds refuses the file ("schema version 100 is newer")
 * instead of writing to tables it does not know. */
static const ch_sql_schema schema = {
    .component = "offenses",
    .migrations = migrations,
    .version = CH_STORE_SCHEMA_VERSION,
    .legacy_sql = "PRAGMA user_version",
    .legacy_done = "PRAGMA user_version = 100",
};

static int db_error(ch_store *s, ch_error *err, const char *what)
{
    ch_sql_error(s->sql.db, s->sql.path, err, what);
    return CH_EIO;
}

static int exec_const(ch_store *s, const char *sql, ch_error *err)
{
    return ch_sql_exec(s->sql.db, s->sql.path, sql, err);
}

static int prepare(ch_store *s, const char *sql, sqlite3_stmt **st, ch_error *err)
{
    return ch_sql_prepare(s->sql.db, s->sql.path, sql, st, err);
}

/* ---- transactions --------------------------------------------------------------------------- */

/* Every save opens a transaction through here: when the caller already holds one
 * (ch_store_begin), the save joins it, so a checkpoint is all or nothing (ch_sql_begin). */
int ch_store_begin(ch_store *s, ch_error *err) { return ch_sql_begin(&s->sql, err); }
int ch_store_commit(ch_store *s, ch_error *err) { return ch_sql_commit(&s->sql, err); }
void ch_store_rollback(ch_store *s) { ch_sql_rollback(&s->sql); }
bool ch_store_in_transaction(const ch_store *s) { return s->sql.tx_depth > 0; }

int ch_store_default_path(char *buf, size_t n) { return ch_sql_default_path(buf, n); }

static int open_store(const char *path, bool one_thread, ch_store **out, ch_error *err)
{
    *out = NULL;
    ch_store *s = ch_calloc(1, sizeof *s);
    if (s == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    int rc = one_thread ? ch_sql_connect_one_thread(&s->sql, path, true, &schema, err)
                        : ch_sql_connect(&s->sql, path, true, &schema, err);
    if (rc >= 0 && (rc = ch__obs_migrate(&s->sql, err)) < 0)
        ch_sql_close(&s->sql);
    if (rc < 0) {
        ch_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int ch_store_open(const char *path, ch_store **out, ch_error *err)
{
    return open_store(path, false, out, err);
}

int ch_store_open_one_thread(const char *path, ch_store **out, ch_error *err)
{
    return open_store(path, true, out, err);
}

void ch_store_close(ch_store *s)
{
    if (s == NULL)
        return;
    ch_sql_close(&s->sql);
    ch_free(s);
}

const char *ch_store_path(const ch_store *s) { return s->sql.path; }
ch_sql *ch_store_sql(ch_store *s) { return &s->sql; }

/* ---- loading ------------------------------------------------------------------------------ */

static ch_offense_status status_of(const char *s)
{
    ch_offense_status st = CH_OFFENSE_OPEN;
    ch_offense_status_parse(s, &st);
    return st;
}

#define OFFENSE_COLS                                                                               \
    "SELECT id, index_field, index_value, status, event_count, first_seen, last_seen,"             \
    " dropped_rules FROM offenses "

/* Rules, events and notes of offense o. */
static int load_children(ch_store *s, ch_offense *o, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(s,
                     "SELECT rule_id, title, evidence, severity, credibility, relevance, count,"
                     " first_seen, last_seen FROM offense_rules WHERE offense_id = ?"
                     " ORDER BY first_seen, rule_id",
                     &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, o->id);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *ev = (const char *)sqlite3_column_text(st, 2);
        rc = ch__offense_put_rule(o, ch_sql_col_text(st, 0), ch_sql_col_text(st, 1), ev,
                                  sqlite3_column_int(st, 3), sqlite3_column_int(st, 4),
                                  sqlite3_column_int(st, 5), (uint64_t)sqlite3_column_int64(st, 6),
                                  ch_sql_col_time(st, 7, INT64_MAX),
                                  ch_sql_col_time(st, 8, INT64_MIN));
        if (rc < 0 && rc != CH_ELIMIT)
            goto cleanup;
    }
    if (step != SQLITE_DONE) {
        rc = db_error(s, err, "loading offense rules");
        goto cleanup;
    }
    sqlite3_finalize(st);
    st = NULL;
    if ((rc = prepare(s, "SELECT event_id FROM offense_events WHERE offense_id = ? ORDER BY seq",
                      &st, err)) < 0)
        goto cleanup;
    sqlite3_bind_int64(st, 1, o->id);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *id = ch_sql_col_text(st, 0);
        if ((rc = ch__offense_put_event_id(o, id, (size_t)sqlite3_column_bytes(st, 0))) < 0)
            goto cleanup;
    }
    if (step != SQLITE_DONE) {
        rc = db_error(s, err, "loading offense events");
        goto cleanup;
    }
    sqlite3_finalize(st);
    st = NULL;
    if ((rc = prepare(s,
                      "SELECT ts, status, text FROM offense_notes WHERE offense_id = ? ORDER BY id",
                      &st, err)) < 0)
        goto cleanup;
    sqlite3_bind_int64(st, 1, o->id);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        rc = ch__offense_put_note(o, sqlite3_column_int64(st, 0), status_of(ch_sql_col_text(st, 1)),
                                  ch_sql_col_text(st, 2), true);
        if (rc < 0 && rc != CH_ELIMIT)
            goto cleanup;
    }
    rc = step == SQLITE_DONE ? 0 : db_error(s, err, "loading offense notes");
cleanup:
    sqlite3_finalize(st);
    if (rc == CH_ENOMEM)
        ch_error_set(err, rc, "out of memory loading offense %lld", (long long)o->id);
    return rc;
}

/* Run a bound offense query and load every row (with children) into m. */
static int load_rows(ch_store *s, sqlite3_stmt *st, ch_offenses *m, ch_error *err)
{
    int n = 0, step, rc = 0;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        ch_offense *o = NULL;
        const char *value = ch_sql_col_text(st, 2);
        rc = ch__offenses_create(m, sqlite3_column_int64(st, 0), ch_sql_col_text(st, 1), value,
                                 (size_t)sqlite3_column_bytes(st, 2),
                                 status_of(ch_sql_col_text(st, 3)), &o);
        if (rc < 0)
            return ch_error_set(err, rc, "%s: cannot load offense %lld (%s)", s->sql.path,
                                (long long)sqlite3_column_int64(st, 0), ch_strerror(rc));
        if ((rc = load_children(s, o, err)) < 0 || (rc = ch__obs_load(&s->sql, o, err)) < 0)
            return rc;
        o->event_count = (uint64_t)sqlite3_column_int64(st, 4);
        o->first_ms = ch_sql_col_time(st, 5, INT64_MAX);
        o->last_ms = ch_sql_col_time(st, 6, INT64_MIN);
        o->dropped_rules = (uint64_t)sqlite3_column_int64(st, 7);
        ch_offense_score(o);
        o->dirty = false;
        o->stored = true;
        n++;
    }
    if (step != SQLITE_DONE)
        return db_error(s, err, "loading offenses");
    return n;
}

static int raise_next_id(ch_store *s, ch_offenses *m, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(s, "SELECT COALESCE(MAX(id), 0) + 1 FROM offenses", &st, err);
    if (rc < 0)
        return rc;
    if (sqlite3_step(st) == SQLITE_ROW)
        ch_offenses_set_next_id(m, sqlite3_column_int64(st, 0));
    else
        rc = db_error(s, err, "reading offense ids");
    sqlite3_finalize(st);
    return rc;
}

int ch_store_load(ch_store *s, unsigned status_mask, ch_offenses *m, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(s, OFFENSE_COLS "WHERE status IN (?1, ?2, ?3) ORDER BY id", &st, err);
    if (rc < 0)
        return rc;
    static const ch_offense_status all[] = {CH_OFFENSE_OPEN, CH_OFFENSE_CLOSED, CH_OFFENSE_HIDDEN};
    for (int i = 0; i < 3; i++) {
        if (status_mask & (1u << all[i]))
            sqlite3_bind_text(st, i + 1, ch_offense_status_name(all[i]), -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, i + 1);
    }
    rc = load_rows(s, st, m, err);
    sqlite3_finalize(st);
    if (rc >= 0) {
        int r2 = raise_next_id(s, m, err);
        if (r2 < 0)
            return r2;
    }
    return rc;
}

int ch_store_load_active(ch_store *s, ch_offenses *m, ch_error *err)
{
    if (ch_offenses_count(m) != 0)
        return ch_error_set(err, CH_EUSAGE, "load the store's offenses before adding hits");
    return ch_store_load(s, CH_OFFENSE_MASK_OPEN | CH_OFFENSE_MASK_HIDDEN, m, err);
}

int ch_store_load_one(ch_store *s, int64_t id, ch_offenses *m, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(s, OFFENSE_COLS "WHERE id = ?", &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    rc = load_rows(s, st, m, err);
    sqlite3_finalize(st);
    if (rc == 0)
        return ch_error_set(err, CH_ENOTFOUND, "no offense %lld in %s", (long long)id, s->sql.path);
    return rc < 0 ? rc : 0;
}

int ch_store_load_users(ch_store *s, ch_risk *r, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(s, "SELECT name, risk, updated FROM users", &st, err);
    if (rc < 0)
        return rc;
    int n = 0, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        rc = ch_risk_put_user(r, ch_sql_col_text(st, 0), (size_t)sqlite3_column_bytes(st, 0),
                              sqlite3_column_double(st, 1), sqlite3_column_int64(st, 2));
        if (rc < 0) {
            ch_error_set(err, rc, "%s: loading users: %s", s->sql.path, ch_strerror(rc));
            goto cleanup;
        }
        n++;
    }
    rc = step == SQLITE_DONE ? n : db_error(s, err, "loading users");
cleanup:
    sqlite3_finalize(st);
    return rc;
}

int ch_store_load_user(ch_store *s, const char *name, size_t name_len, ch_risk *r, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(s, "SELECT risk, updated FROM users WHERE name = ?", &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, name, (int)name_len, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_DONE) {
        rc = ch_error_set(err, CH_ENOTFOUND, "no user '%.*s' in %s", (int)name_len, name,
                          s->sql.path);
        goto cleanup;
    }
    if (step != SQLITE_ROW) {
        rc = db_error(s, err, "loading user");
        goto cleanup;
    }
    if ((rc = ch_risk_put_user(r, name, name_len, sqlite3_column_double(st, 0),
                               sqlite3_column_int64(st, 1))) < 0)
        goto cleanup;
    sqlite3_finalize(st);
    /* The latest CH_RISK_MAX_TIMELINE entries, oldest first. */
    if ((rc = prepare(s,
                      "SELECT ts, rule_id, delta, risk_after FROM (SELECT id, ts, rule_id, delta,"
                      " risk_after FROM user_timeline WHERE user = ? ORDER BY ts DESC, id DESC"
                      " LIMIT ?) ORDER BY ts, id",
                      &st, err)) < 0)
        return rc;
    sqlite3_bind_text(st, 1, name, (int)name_len, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, CH_RISK_MAX_TIMELINE);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if ((rc = ch_risk_put_entry(r, name, name_len, sqlite3_column_int64(st, 0),
                                    ch_sql_col_text(st, 1), sqlite3_column_double(st, 2),
                                    sqlite3_column_double(st, 3))) < 0)
            goto cleanup;
    }
    rc = step == SQLITE_DONE ? 0 : db_error(s, err, "loading user timeline");
cleanup:
    sqlite3_finalize(st);
    return rc;
}

/* ---- saving ------------------------------------------------------------------------------- */

enum { S_OFFENSE, S_RULE, S_EVENT, S_NOTE, S_USER, S_TIMELINE, S__COUNT };

static const char *const save_sql[S__COUNT] = {
    [S_OFFENSE] =
        "INSERT INTO offenses (id, index_field, index_value, status, magnitude, score, severity,"
        " credibility, relevance, event_count, first_seen, last_seen, dropped_rules, created,"
        " updated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14)"
        " ON CONFLICT (id) DO UPDATE SET"
        " status = CASE WHEN offenses.status = 'closed' OR excluded.status = 'closed'"
        "   THEN 'closed' WHEN offenses.status = 'hidden' THEN 'hidden' ELSE excluded.status END,"
        " magnitude = excluded.magnitude, score = excluded.score, severity = excluded.severity,"
        " credibility = excluded.credibility, relevance = excluded.relevance,"
        " event_count = excluded.event_count, first_seen = excluded.first_seen,"
        " last_seen = excluded.last_seen, dropped_rules = excluded.dropped_rules,"
        " updated = excluded.updated",
    [S_RULE] = "INSERT INTO offense_rules (offense_id, rule_id, title, evidence, severity,"
               " credibility, relevance, count, first_seen, last_seen)"
               " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
               " ON CONFLICT (offense_id, rule_id) DO UPDATE SET title = excluded.title,"
               " evidence = excluded.evidence, severity = excluded.severity,"
               " credibility = excluded.credibility, relevance = excluded.relevance,"
               " count = excluded.count, first_seen = excluded.first_seen,"
               " last_seen = excluded.last_seen",
    [S_EVENT] = "INSERT OR IGNORE INTO offense_events (offense_id, seq, event_id)"
                " VALUES (?1, ?2, ?3)",
    [S_NOTE] = "INSERT INTO offense_notes (offense_id, ts, status, text) VALUES (?1, ?2, ?3, ?4)",
    [S_USER] = "INSERT INTO users (name, risk, updated) VALUES (?1, ?2, ?3)"
               " ON CONFLICT (name) DO UPDATE SET risk = excluded.risk,"
               " updated = excluded.updated",
    [S_TIMELINE] = "INSERT INTO user_timeline (user, ts, rule_id, delta, risk_after)"
                   " VALUES (?1, ?2, ?3, ?4, ?5)",
};

static void bind_time(sqlite3_stmt *st, int i, int64_t ms)
{
    if (ms == INT64_MAX || ms == INT64_MIN)
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_int64(st, i, ms);
}

static void bind_str(sqlite3_stmt *st, int i, const char *s)
{
    sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

/* Step a fully bound insert and reset it for the next row. */
static int run(ch_store *s, sqlite3_stmt *st, ch_error *err, const char *what)
{
    int step = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return step == SQLITE_DONE ? 0 : db_error(s, err, what);
}

static int save_offense(ch_store *s, sqlite3_stmt **st, ch_offense *o, int64_t now_ms,
                        ch_error *err)
{
    sqlite3_stmt *q = st[S_OFFENSE];
    sqlite3_bind_int64(q, 1, o->id);
    bind_str(q, 2, o->index_field);
    sqlite3_bind_text(q, 3, o->index_value, (int)o->index_value_len, SQLITE_STATIC);
    bind_str(q, 4, ch_offense_status_name(o->status));
    sqlite3_bind_int(q, 5, o->magnitude);
    sqlite3_bind_double(q, 6, o->score);
    sqlite3_bind_int(q, 7, o->severity);
    sqlite3_bind_int(q, 8, o->credibility);
    sqlite3_bind_int(q, 9, o->relevance);
    sqlite3_bind_int64(q, 10, (sqlite3_int64)o->event_count);
    bind_time(q, 11, o->first_ms);
    bind_time(q, 12, o->last_ms);
    sqlite3_bind_int64(q, 13, (sqlite3_int64)o->dropped_rules);
    sqlite3_bind_int64(q, 14, now_ms);
    int rc = run(s, q, err, "saving an offense");
    for (size_t i = 0; i < o->nrules && rc >= 0; i++) {
        const ch_offense_rule *r = &o->rules[i];
        q = st[S_RULE];
        sqlite3_bind_int64(q, 1, o->id);
        bind_str(q, 2, r->id);
        bind_str(q, 3, r->title);
        if (r->evidence != NULL)
            bind_str(q, 4, r->evidence);
        sqlite3_bind_int(q, 5, r->severity);
        sqlite3_bind_int(q, 6, r->credibility);
        sqlite3_bind_int(q, 7, r->relevance);
        sqlite3_bind_int64(q, 8, (sqlite3_int64)r->count);
        bind_time(q, 9, r->first_ms);
        bind_time(q, 10, r->last_ms);
        rc = run(s, q, err, "saving an offense rule");
    }
    for (size_t i = 0; i < o->nevent_ids && rc >= 0; i++) {
        q = st[S_EVENT];
        sqlite3_bind_int64(q, 1, o->id);
        sqlite3_bind_int64(q, 2, (sqlite3_int64)i);
        bind_str(q, 3, o->event_ids[i]);
        rc = run(s, q, err, "saving an offense event id");
    }
    for (size_t i = 0; i < o->nnotes && rc >= 0; i++) {
        if (o->notes[i].stored)
            continue;
        q = st[S_NOTE];
        sqlite3_bind_int64(q, 1, o->id);
        sqlite3_bind_int64(q, 2, o->notes[i].ts_ms);
        bind_str(q, 3, ch_offense_status_name(o->notes[i].status));
        bind_str(q, 4, o->notes[i].text);
        rc = run(s, q, err, "saving an offense note");
    }
    return rc;
}

static int save_user(ch_store *s, sqlite3_stmt **st, const ch_risk_user *u, ch_error *err)
{
    sqlite3_stmt *q = st[S_USER];
    sqlite3_bind_text(q, 1, u->name, (int)u->name_len, SQLITE_STATIC);
    sqlite3_bind_double(q, 2, u->risk);
    sqlite3_bind_int64(q, 3, u->updated_ms);
    int rc = run(s, q, err, "saving a user");
    for (size_t i = u->nstored; i < u->ntimeline && rc >= 0; i++) {
        const ch_risk_entry *e = &u->timeline[i];
        q = st[S_TIMELINE];
        sqlite3_bind_text(q, 1, u->name, (int)u->name_len, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, e->ts_ms);
        bind_str(q, 3, e->rule_id);
        sqlite3_bind_double(q, 4, e->delta);
        sqlite3_bind_double(q, 5, e->risk_after);
        rc = run(s, q, err, "saving a user timeline entry");
    }
    return rc;
}

/* An offense this process created has no row yet. Its id comes from the database, inside the
 * write transaction, so two processes on one store never hand out the same id. When another
 * writer created an active offense for the same index meanwhile (the unique index on active
 * (field, value) says so), this one joins it: the stored rules, counts and event ids are
 * merged in (counts add up: nothing of either run is lost) and the offense takes the stored id,
 * as if one process had seen both runs' hits. */
/* st: [0] the active-offense lookup, [1] the next id; NULL until first needed, then kept by the
 * caller for its next new offenses (a prepare per new offense was most of a save's cost on a
 * corpus that opens thousands). */
static int assign_id(ch_store *s, sqlite3_stmt **st, ch_offense *o, ch_error *err)
{
    int rc = 0;
    if (st[0] == NULL &&
        (rc = prepare(
             s, OFFENSE_COLS "WHERE index_field = ? AND index_value = ? AND status <> 'closed'",
             &st[0], err)) < 0)
        return rc;
    sqlite3_stmt *q = st[0];
    bind_str(q, 1, o->index_field);
    sqlite3_bind_text(q, 2, o->index_value, (int)o->index_value_len, SQLITE_STATIC);
    int step = sqlite3_step(q);
    if (step == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(q, 0);
        uint64_t count = (uint64_t)sqlite3_column_int64(q, 4);
        int64_t first = ch_sql_col_time(q, 5, INT64_MAX), last = ch_sql_col_time(q, 6, INT64_MIN);
        sqlite3_reset(q);
        sqlite3_clear_bindings(q);
        o->id = id;
        if ((rc = load_children(s, o, err)) < 0)
            return rc;
        o->event_count += count;
        if (first < o->first_ms)
            o->first_ms = first;
        if (last > o->last_ms)
            o->last_ms = last;
        ch_offense_score(o);
        o->stored = true;
        return 0;
    }
    if (step != SQLITE_DONE)
        rc = db_error(s, err, "looking up an active offense");
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    if (rc < 0)
        return rc;
    if (st[1] == NULL &&
        (rc = prepare(s, "SELECT COALESCE(MAX(id), 0) + 1 FROM offenses", &st[1], err)) < 0)
        return rc;
    q = st[1];
    if (sqlite3_step(q) == SQLITE_ROW)
        o->id = sqlite3_column_int64(q, 0);
    else
        rc = db_error(s, err, "reading offense ids");
    sqlite3_reset(q);
    return rc;
}

int ch_store_save(ch_store *s, ch_offenses *m, ch_risk *r, int64_t now_ms, ch_error *err)
{
    sqlite3_stmt *st[S__COUNT] = {0};
    sqlite3_stmt *ids[2] = {NULL, NULL}, *obs[CH__OBS_STMTS] = {NULL, NULL};
    int rc = 0;
    for (int i = 0; i < S__COUNT && rc >= 0; i++)
        rc = prepare(s, save_sql[i], &st[i], err);
    if (rc < 0)
        goto cleanup;
    if ((rc = ch_store_begin(s, err)) < 0)
        goto cleanup;
    size_t n = m != NULL ? ch_offenses_count(m) : 0;
    for (size_t i = 0; i < n && rc >= 0; i++) {
        ch_offense *o = ch_offenses_at(m, i);
        if (!o->dirty)
            continue;
        if (!o->stored && (rc = assign_id(s, ids, o, err)) < 0)
            break;
        rc = save_offense(s, st, o, now_ms, err);
        if (rc >= 0)
            rc = ch__obs_save(&s->sql, obs, o, err);
        if (rc >= 0)
            o->stored = true;
    }
    size_t nu = r != NULL ? ch_risk_count(r) : 0;
    for (size_t i = 0; i < nu && rc >= 0; i++) {
        const ch_risk_user *u = ch_risk_at(r, i);
        if (u->dirty)
            rc = save_user(s, st, u, err);
    }
    if (rc < 0) {
        ch_store_rollback(s);
        goto cleanup;
    }
    if ((rc = ch_store_commit(s, err)) < 0)
        goto cleanup;
    /* Only now is it all on disk (or part of the caller's transaction): mark it so. */
    for (size_t i = 0; i < n; i++) {
        ch_offense *o = ch_offenses_at(m, i);
        o->dirty = false;
        if (o->obs != NULL)
            o->obs->dirty = false;
        for (size_t k = 0; k < o->nnotes; k++)
            o->notes[k].stored = true;
    }
    for (size_t i = 0; i < nu; i++) {
        ch_risk_user *u = ch_risk_at(r, i);
        u->dirty = false;
        u->nstored = u->ntimeline;
    }
cleanup:
    for (int i = 0; i < S__COUNT; i++)
        sqlite3_finalize(st[i]);
    for (int i = 0; i < 2; i++) {
        sqlite3_finalize(ids[i]);
        sqlite3_finalize(obs[i]);
    }
    return rc;
}

/* ---- pipeline state ------------------------------------------------------------------------- */

int ch_store_put_state(ch_store *s, const char *name, const void *value, size_t n, int64_t now_ms,
                       ch_error *err)
{
    sqlite3_stmt *q = NULL;
    int rc = prepare(s,
                     "INSERT INTO pipeline_state (name, value, updated) VALUES (?1, ?2, ?3)"
                     " ON CONFLICT (name) DO UPDATE SET value = excluded.value,"
                     " updated = excluded.updated",
                     &q, err);
    if (rc < 0)
        return rc;
    bind_str(q, 1, name);
    sqlite3_bind_blob64(q, 2, n ? value : "", (sqlite3_uint64)n, SQLITE_STATIC);
    sqlite3_bind_int64(q, 3, now_ms);
    rc = run(s, q, err, "saving pipeline state");
    sqlite3_finalize(q);
    return rc;
}

int ch_store_get_state(ch_store *s, const char *name, void **value, size_t *n, ch_error *err)
{
    sqlite3_stmt *q = NULL;
    *value = NULL;
    *n = 0;
    int rc = prepare(s, "SELECT value FROM pipeline_state WHERE name = ?", &q, err);
    if (rc < 0)
        return rc;
    bind_str(q, 1, name);
    int step = sqlite3_step(q);
    if (step == SQLITE_ROW) {
        size_t len = (size_t)sqlite3_column_bytes(q, 0);
        const void *p = sqlite3_column_blob(q, 0);
        char *copy = ch_malloc(len + 1);
        if (copy == NULL) {
            rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        } else {
            if (len)
                memcpy(copy, p, len);
            copy[len] = '\0';
            *value = copy;
            *n = len;
        }
    } else if (step == SQLITE_DONE) {
        rc = CH_ENOTFOUND;
    } else {
        rc = db_error(s, err, "loading pipeline state");
    }
    sqlite3_finalize(q);
    return rc;
}

int ch_store_set_status(ch_store *s, int64_t id, ch_offense_status stt, const char *note,
                        int64_t now_ms, ch_error *err)
{
    sqlite3_stmt *q = NULL;
    bool in_tx = false;
    int rc = exec_const(s, "BEGIN IMMEDIATE", err);
    if (rc < 0)
        return rc;
    in_tx = true;
    if ((rc = prepare(s, "SELECT status FROM offenses WHERE id = ?", &q, err)) < 0)
        goto cleanup;
    sqlite3_bind_int64(q, 1, id);
    int step = sqlite3_step(q);
    if (step == SQLITE_DONE) {
        rc = ch_error_set(err, CH_ENOTFOUND, "no offense %lld in %s", (long long)id, s->sql.path);
        goto cleanup;
    }
    if (step != SQLITE_ROW) {
        rc = db_error(s, err, "reading an offense");
        goto cleanup;
    }
    if (status_of(ch_sql_col_text(q, 0)) == CH_OFFENSE_CLOSED && stt != CH_OFFENSE_CLOSED) {
        rc = ch_error_set(err, CH_EUSAGE,
                          "offense %lld is closed; closing is final (a new hit opens a new one)",
                          (long long)id);
        goto cleanup;
    }
    sqlite3_finalize(q);
    q = NULL;
    if ((rc = prepare(s, "UPDATE offenses SET status = ?, updated = ? WHERE id = ?", &q, err)) < 0)
        goto cleanup;
    bind_str(q, 1, ch_offense_status_name(stt));
    sqlite3_bind_int64(q, 2, now_ms);
    sqlite3_bind_int64(q, 3, id);
    if ((rc = run(s, q, err, "updating an offense")) < 0)
        goto cleanup;
    if (note != NULL && *note) {
        sqlite3_finalize(q);
        q = NULL;
        if ((rc = prepare(s, save_sql[S_NOTE], &q, err)) < 0)
            goto cleanup;
        size_t len = strlen(note);
        sqlite3_bind_int64(q, 1, id);
        sqlite3_bind_int64(q, 2, now_ms);
        bind_str(q, 3, ch_offense_status_name(stt));
        sqlite3_bind_text(q, 4, note,
                          (int)(len < CH_OFFENSE_MAX_NOTE_LEN ? len : CH_OFFENSE_MAX_NOTE_LEN),
                          SQLITE_STATIC);
        if ((rc = run(s, q, err, "saving a note")) < 0)
            goto cleanup;
    }
    if ((rc = exec_const(s, "COMMIT", err)) < 0)
        goto cleanup;
    in_tx = false;
cleanup:
    sqlite3_finalize(q);
    if (in_tx)
        exec_const(s, "ROLLBACK", NULL);
    return rc;
}

/* ---- entity links ---------------------------------------------------------------------------- */

typedef struct link_save {
    ch_store *s;
    sqlite3_stmt *st;
    ch_error *err;
    int n;
} link_save;

/* An empty view as NULL, so that absent fields stay absent when loaded. */
static void bind_sv(sqlite3_stmt *st, int i, ch_sv v)
{
    if (v.n == 0)
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_text(st, i, v.p, (int)v.n, SQLITE_STATIC);
}

static int save_link(void *ud, const ch_entity_link *l)
{
    link_save *ls = ud;
    char kind[2] = {l->kind, '\0'};
    sqlite3_stmt *st = ls->st;
    sqlite3_bind_text(st, 1, kind, 1, SQLITE_TRANSIENT);
    bind_sv(st, 2, l->key);
    bind_sv(st, 3, l->instance_id);
    bind_sv(st, 4, l->user_name);
    bind_sv(st, 5, l->access_key);
    bind_sv(st, 6, l->image_id);
    bind_sv(st, 7, l->account_id);
    bind_sv(st, 8, l->region);
    bind_sv(st, 9, l->invoked_by);
    sqlite3_bind_int64(st, 10, l->launch_ms);
    sqlite3_bind_int64(st, 11, l->last_used_ms);
    int rc = run(ls->s, st, ls->err, "saving entity links");
    if (rc < 0)
        return rc;
    ls->n++;
    return 0;
}

int ch_store_save_links(ch_store *s, const ch_entity *t, size_t max, ch_error *err)
{
    if (max == 0 || max > CH_STORE_MAX_LINKS)
        max = CH_STORE_MAX_LINKS;
    link_save ls = {.s = s, .err = err};
    sqlite3_stmt *prune = NULL;
    int rc = ch_store_begin(s, err);
    if (rc < 0)
        return rc;
    /* A stored link is replaced only by one used later: a run over older files must not undo
     * what a run over newer ones learned. */
    if ((rc = prepare(s,
                      "INSERT INTO entity_links (kind, key, instance, user, access_key, image,"
                      " account, region, invoked_by, launched_ms, last_used_ms)"
                      " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                      " ON CONFLICT (kind, key) DO UPDATE SET instance = excluded.instance,"
                      " user = excluded.user, access_key = excluded.access_key,"
                      " image = excluded.image, account = excluded.account,"
                      " region = excluded.region, invoked_by = excluded.invoked_by,"
                      " launched_ms = excluded.launched_ms, last_used_ms = excluded.last_used_ms"
                      " WHERE excluded.last_used_ms >= entity_links.last_used_ms",
                      &ls.st, err)) < 0)
        goto fail;
    if ((rc = ch_entity_export(t, max, save_link, &ls)) < 0)
        goto fail;
    /* Bound the table across runs: keep the max most recently used links. */
    if ((rc = prepare(s,
                      "DELETE FROM entity_links WHERE last_used_ms < (SELECT last_used_ms"
                      " FROM entity_links ORDER BY last_used_ms DESC LIMIT 1 OFFSET ?)",
                      &prune, err)) < 0)
        goto fail;
    sqlite3_bind_int64(prune, 1, (sqlite3_int64)max - 1);
    if ((rc = run(s, prune, err, "pruning entity links")) < 0)
        goto fail;
    sqlite3_finalize(ls.st);
    sqlite3_finalize(prune);
    if ((rc = ch_store_commit(s, err)) < 0)
        return rc;
    return ls.n;
fail:
    sqlite3_finalize(ls.st);
    sqlite3_finalize(prune);
    ch_store_rollback(s);
    return rc;
}

static ch_sv col_sv(sqlite3_stmt *st, int i)
{
    const char *p = (const char *)sqlite3_column_text(st, i);
    return p != NULL ? (ch_sv){p, (uint32_t)sqlite3_column_bytes(st, i)} : (ch_sv){NULL, 0};
}

int ch_store_load_links(ch_store *s, ch_entity *t, size_t max, ch_error *err)
{
    if (max == 0 || max > CH_STORE_MAX_LINKS)
        max = CH_STORE_MAX_LINKS;
    sqlite3_stmt *st = NULL;
    int64_t newest = INT64_MIN;
    int n = 0, step;
    int rc = prepare(s, "SELECT MAX(last_used_ms) FROM entity_links", &st, err);
    if (rc < 0)
        return rc;
    if ((step = sqlite3_step(st)) == SQLITE_ROW)
        newest = ch_sql_col_time(st, 0, INT64_MIN);
    else if (step != SQLITE_DONE) {
        rc = db_error(s, err, "loading entity links");
        goto cleanup;
    }
    sqlite3_finalize(st);
    st = NULL;
    /* The newest max links, imported oldest first so that LRU order comes back as it was. */
    if ((rc = prepare(s,
                      "SELECT kind, key, instance, user, access_key, image, account, region,"
                      " invoked_by, launched_ms, last_used_ms FROM (SELECT * FROM entity_links"
                      " ORDER BY last_used_ms DESC LIMIT ?) ORDER BY last_used_ms",
                      &st, err)) < 0)
        goto cleanup;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)max);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        ch_entity_link l = {0};
        l.kind = ch_sql_col_text(st, 0)[0];
        l.key = col_sv(st, 1);
        l.instance_id = col_sv(st, 2);
        l.user_name = col_sv(st, 3);
        l.access_key = col_sv(st, 4);
        l.image_id = col_sv(st, 5);
        l.account_id = col_sv(st, 6);
        l.region = col_sv(st, 7);
        l.invoked_by = col_sv(st, 8);
        l.launch_ms = sqlite3_column_int64(st, 9);
        l.last_used_ms = sqlite3_column_int64(st, 10);
        if ((rc = ch_entity_import(t, &l, newest)) < 0)
            goto cleanup;
        n += rc;
    }
    if (step != SQLITE_DONE) {
        rc = db_error(s, err, "loading entity links");
        goto cleanup;
    }
    rc = n;
cleanup:
    sqlite3_finalize(st);
    if (rc == CH_ENOMEM)
        ch_error_set(err, CH_ENOMEM, "out of memory");
    return rc;
}
