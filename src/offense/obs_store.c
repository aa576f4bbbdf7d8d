/*
 * obs_store.c - observables of offenses in SQLite (see obs_store.h).
 *
 * One row per (offense, kind, value) with its count and times, and one per (offense, kind) for
 * the count of values dropped at the cap. A save upserts every value of a changed offense: at
 * most a few hundred short rows, bounded by the caps, so a delta log would not pay for itself.
 * Values come from logs an attacker writes to; they are only ever bound, never put in SQL text.
 */
#include "offense/obs_store.h"

#include <sqlite3.h>
#include <string.h>

#include "core/mem.h"
#include "offense/observables.h"
#include "offense/offense_int.h"

static const char *const migrations[] = {
    /* 0 -> 1 */
    "CREATE TABLE offense_observables ("
    " offense_id INTEGER NOT NULL REFERENCES offenses (id) ON DELETE CASCADE,"
    " kind TEXT NOT NULL, value TEXT NOT NULL, account TEXT NOT NULL, region TEXT NOT NULL,"
    " count INTEGER NOT NULL, first_seen INTEGER, last_seen INTEGER, severity INTEGER NOT NULL,"
    " PRIMARY KEY (offense_id, kind, value)) WITHOUT ROWID;"
    "CREATE TABLE offense_observables_dropped ("
    " offense_id INTEGER NOT NULL REFERENCES offenses (id) ON DELETE CASCADE,"
    " kind TEXT NOT NULL, dropped INTEGER NOT NULL,"
    " PRIMARY KEY (offense_id, kind)) WITHOUT ROWID;",
};

static const ch_sql_schema schema = {
    .component = "offense_observables",
    .migrations = migrations,
    .version = (int)(sizeof migrations / sizeof migrations[0]),
};

int ch__obs_migrate(ch_sql *c, ch_error *err) { return ch_sql_migrate(c, &schema, err); }

int ch__obs_load(ch_sql *c, ch_offense *o, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc =
        ch_sql_prepare(c->db, c->path,
                       "SELECT kind, value, account, region, count, first_seen, last_seen, severity"
                       " FROM offense_observables WHERE offense_id = ?"
                       " ORDER BY kind, first_seen, value",
                       &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, o->id);
    int step;
    ch_offense_obs *obs = NULL;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        ch_obs_kind k = ch_obs_kind_parse(ch_sql_col_text(st, 0));
        if (k == CH_OBS__COUNT)
            continue; /* a kind of a later build: kept in the file, not shown */
        if (obs == NULL && (obs = ch__offense_obs(o)) == NULL) {
            rc = CH_ENOMEM;
            goto cleanup;
        }
        const char *v = ch_sql_col_text(st, 1);
        rc = ch_obs_put(obs, k, v, strlen(v), ch_sql_col_text(st, 2), ch_sql_col_text(st, 3),
                        (uint64_t)sqlite3_column_int64(st, 4), ch_sql_col_time(st, 5, INT64_MAX),
                        ch_sql_col_time(st, 6, INT64_MIN), sqlite3_column_int(st, 7));
        if (rc == CH_ENOMEM)
            goto cleanup;
    }
    if (step != SQLITE_DONE) {
        rc = ch_sql_error(c->db, c->path, err, "loading offense observables");
        goto cleanup;
    }
    sqlite3_finalize(st);
    st = NULL;
    if ((rc = ch_sql_prepare(c->db, c->path,
                             "SELECT kind, dropped FROM offense_observables_dropped"
                             " WHERE offense_id = ?",
                             &st, err)) < 0)
        return rc;
    sqlite3_bind_int64(st, 1, o->id);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        ch_obs_kind k = ch_obs_kind_parse(ch_sql_col_text(st, 0));
        if (k == CH_OBS__COUNT)
            continue;
        if (obs == NULL && (obs = ch__offense_obs(o)) == NULL) {
            rc = CH_ENOMEM;
            goto cleanup;
        }
        obs->dropped[k] = (uint64_t)sqlite3_column_int64(st, 1);
    }
    rc = step == SQLITE_DONE ? 0 : ch_sql_error(c->db, c->path, err, "loading dropped observables");
    if (obs != NULL)
        obs->dirty = false;
cleanup:
    sqlite3_finalize(st);
    if (rc == CH_ENOMEM)
        ch_error_set(err, rc, "out of memory loading the observables of offense %lld",
                     (long long)o->id);
    return rc;
}

int ch__obs_save(ch_sql *c, sqlite3_stmt **st, ch_offense *o, ch_error *err)
{
    ch_offense_obs *obs = o->obs;
    if (obs == NULL || !obs->dirty)
        return 0;
    int rc = 0;
    if (st[0] == NULL &&
        (rc = ch_sql_prepare(
             c->db, c->path,
             "INSERT INTO offense_observables (offense_id, kind, value, account,"
             " region, count, first_seen, last_seen, severity) VALUES (?,?,?,?,?,?,?,?,?)"
             " ON CONFLICT (offense_id, kind, value) DO UPDATE SET"
             " account = excluded.account, region = excluded.region,"
             " count = excluded.count, first_seen = excluded.first_seen,"
             " last_seen = excluded.last_seen, severity = excluded.severity",
             &st[0], err)) < 0)
        return rc;
    if (st[1] == NULL &&
        (rc = ch_sql_prepare(c->db, c->path,
                             "INSERT INTO offense_observables_dropped (offense_id, kind, dropped)"
                             " VALUES (?,?,?) ON CONFLICT (offense_id, kind) DO UPDATE SET"
                             " dropped = excluded.dropped",
                             &st[1], err)) < 0)
        return rc;
    sqlite3_stmt *put = st[0], *drop = st[1];
    for (int k = 0; k < CH_OBS__COUNT; k++) {
        const char *kn = ch_obs_kind_name((ch_obs_kind)k);
        for (size_t i = 0; i < obs->n[k]; i++) {
            const ch_obs *e = &obs->items[k][i];
            sqlite3_reset(put);
            sqlite3_bind_int64(put, 1, o->id);
            sqlite3_bind_text(put, 2, kn, -1, SQLITE_STATIC);
            sqlite3_bind_text(put, 3, e->value, -1, SQLITE_STATIC);
            sqlite3_bind_text(put, 4, e->account, -1, SQLITE_STATIC);
            sqlite3_bind_text(put, 5, e->region, -1, SQLITE_STATIC);
            sqlite3_bind_int64(put, 6, (sqlite3_int64)e->count);
            ch_sql_bind_time(put, 7, e->first_ms, INT64_MAX);
            ch_sql_bind_time(put, 8, e->last_ms, INT64_MIN);
            sqlite3_bind_int(put, 9, e->severity);
            if (sqlite3_step(put) != SQLITE_DONE) {
                rc = ch_sql_error(c->db, c->path, err, "saving an offense observable");
                goto cleanup;
            }
        }
        if (obs->dropped[k] == 0)
            continue;
        sqlite3_reset(drop);
        sqlite3_bind_int64(drop, 1, o->id);
        sqlite3_bind_text(drop, 2, kn, -1, SQLITE_STATIC);
        sqlite3_bind_int64(drop, 3, (sqlite3_int64)obs->dropped[k]);
        if (sqlite3_step(drop) != SQLITE_DONE) {
            rc = ch_sql_error(c->db, c->path, err, "saving dropped observables");
            goto cleanup;
        }
    }
    rc = 0;
cleanup:
    /* Reset, not finalized: the caller's next offense reuses them. Reset also lets go of the
     * bound strings, which are the offense's. */
    sqlite3_reset(put);
    sqlite3_reset(drop);
    sqlite3_clear_bindings(put);
    sqlite3_clear_bindings(drop);
    return rc;
}
