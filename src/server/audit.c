/*
 * audit.c - the append-only audit table (see audit.h for what goes in and why it cannot be
 * rewritten).
 *
 * An append is one bound INSERT (nothing from the entry is ever SQL text); a listing is one
 * indexed range scan on (ts, id), streamed to the caller's function, so reading a month of
 * entries never holds more than one row. The table is not capped: the audit trail is meant to
 * be kept, and what writes to it is bounded elsewhere (failed logins by the login throttle of
 * accounts.c, everything else by authenticated operators).
 */
#include "server/audit.h"

#include <limits.h>
#include <string.h>

#include "core/mem.h"
#include "core/sqlite_util.h"
#include "core/timeparse.h"
#include "offense/store.h"

struct ch_audit {
    sqlite3 *db;
    char *path;
};

/* AUTOINCREMENT: ids are never reused, so "entry 41 then 43" shows that something is missing
 * even after a restore from a backup. The triggers are what make the table append-only. */
static const char *const schema =
    "CREATE TABLE IF NOT EXISTS auth_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
    " WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS audit_log ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL,"
    " actor TEXT NOT NULL, source TEXT NOT NULL, action TEXT NOT NULL,"
    " object TEXT NOT NULL DEFAULT '',"
    " before TEXT CHECK (before IS NULL OR json_valid(before)),"
    " after TEXT CHECK (after IS NULL OR json_valid(after)));"
    "CREATE INDEX IF NOT EXISTS audit_log_ts ON audit_log (ts, id);"
    "CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log"
    " BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;"
    "CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log"
    " BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;";

static int check_version(sqlite3 *db, const char *path, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = ch_sql_prepare(db, path, "SELECT value FROM auth_meta WHERE key = 'audit_schema'", &st,
                            err);
    if (rc < 0)
        return CH_EIO;
    int step = sqlite3_step(st);
    int v = -1;
    if (step == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    else if (step != SQLITE_DONE)
        rc = ch_sql_error(db, path, err, "reading the audit schema version");
    sqlite3_finalize(st);
    if (rc < 0)
        return CH_EIO;
    if (v > CH_AUDIT_SCHEMA_VERSION)
        return ch_error_set(err, CH_EUSAGE,
                            "%s: audit schema version %d is newer than this coinhound's (%d)", path,
                            v, CH_AUDIT_SCHEMA_VERSION);
    if (v < 0)
        return ch_sql_exec(db, path,
                           "INSERT OR IGNORE INTO auth_meta (key, value)"
                           " VALUES ('audit_schema', '1')",
                           err);
    return 0;
}

int ch_audit_schema_db(sqlite3 *db, const char *path, ch_error *err)
{
    int rc = ch_sql_exec(db, path, schema, err);
    return rc < 0 ? rc : check_version(db, path, err);
}

static int check_field(const char *what, const char *s, bool required, size_t max, ch_error *err)
{
    if (s == NULL || *s == '\0')
        return required ? ch_error_set(err, CH_EUSAGE, "audit entry without %s", what) : 0;
    if (strlen(s) > max)
        return ch_error_set(err, CH_ELIMIT, "audit entry: %s longer than %zu bytes", what, max);
    return 0;
}

int ch_audit_append_db(sqlite3 *db, const char *path, const ch_audit_entry *e, ch_error *err)
{
    int rc;
    if ((rc = check_field("actor", e->actor, true, CH_AUDIT_FIELD_MAX, err)) < 0 ||
        (rc = check_field("source", e->source, true, CH_AUDIT_FIELD_MAX, err)) < 0 ||
        (rc = check_field("action", e->action, true, CH_AUDIT_FIELD_MAX, err)) < 0 ||
        (rc = check_field("object", e->object, false, CH_AUDIT_FIELD_MAX, err)) < 0 ||
        (rc = check_field("before", e->before, false, CH_AUDIT_JSON_MAX, err)) < 0 ||
        (rc = check_field("after", e->after, false, CH_AUDIT_JSON_MAX, err)) < 0)
        return rc;
    sqlite3_stmt *st = NULL;
    if (ch_sql_prepare(db, path,
                       "INSERT INTO audit_log (ts, actor, source, action, object, before, after)"
                       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                       &st, err) < 0)
        return CH_EIO;
    sqlite3_bind_int64(st, 1, e->ts);
    sqlite3_bind_text(st, 2, e->actor, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, e->source, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, e->action, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, e->object != NULL ? e->object : "", -1, SQLITE_STATIC);
    if (e->before != NULL && *e->before)
        sqlite3_bind_text(st, 6, e->before, -1, SQLITE_STATIC);
    if (e->after != NULL && *e->after)
        sqlite3_bind_text(st, 7, e->after, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_CONSTRAINT_CHECK)
        rc = ch_error_set(err, CH_EUSAGE, "%s: audit entry '%s': before/after is not JSON", path,
                          e->action);
    else if (step != SQLITE_DONE)
        rc = ch_sql_error(db, path, err, "appending to the audit log");
    sqlite3_finalize(st);
    return rc < 0 ? rc : 0;
}

int ch_audit_list_db(sqlite3 *db, const char *path, int64_t since_ms, size_t limit, ch_audit_fn fn,
                     void *ud, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    if (ch_sql_prepare(db, path,
                       "SELECT id, ts, actor, source, action, object, before, after"
                       " FROM audit_log WHERE ts >= ?1 ORDER BY ts, id LIMIT ?2",
                       &st, err) < 0)
        return CH_EIO;
    sqlite3_bind_int64(st, 1, since_ms);
    sqlite3_bind_int64(st, 2, limit == 0 || limit > INT64_MAX ? -1 : (sqlite3_int64)limit);
    int rc = 0, n = 0, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        ch_audit_entry e = {
            .id = sqlite3_column_int64(st, 0),
            .ts = sqlite3_column_int64(st, 1),
            .actor = ch_sql_col_text(st, 2),
            .source = ch_sql_col_text(st, 3),
            .action = ch_sql_col_text(st, 4),
            .object = ch_sql_col_text(st, 5),
            .before = (const char *)sqlite3_column_text(st, 6),
            .after = (const char *)sqlite3_column_text(st, 7),
        };
        if ((rc = fn(ud, &e)) < 0)
            break;
        if (n < INT_MAX)
            n++;
    }
    if (rc >= 0 && step != SQLITE_DONE)
        rc = ch_sql_error(db, path, err, "reading the audit log");
    else if (rc < 0 && err != NULL && err->msg[0] == '\0')
        ch_error_set(err, rc, "%s: listing the audit log stopped (%s)", path, ch_strerror(rc));
    sqlite3_finalize(st);
    return rc < 0 ? rc : n;
}

int ch_audit_open(const char *path, bool create, ch_audit **out, ch_error *err)
{
    char def[PATH_MAX];
    *out = NULL;
    if (path == NULL) {
        if (ch_store_default_path(def, sizeof def) < 0)
            return ch_error_set(err, CH_ELIMIT, "data directory path too long");
        path = def;
    }
    sqlite3 *db = NULL;
    int rc = ch_sql_open(path, create, &db, err);
    if (rc < 0)
        return rc;
    ch_audit *a = ch_calloc(1, sizeof *a);
    if (a == NULL || (a->path = ch_strdup(path)) == NULL) {
        ch_free(a);
        sqlite3_close_v2(db);
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    }
    a->db = db;
    if ((rc = ch_sql_exec(db, path, "BEGIN IMMEDIATE", err)) < 0)
        goto fail;
    if ((rc = ch_audit_schema_db(db, path, err)) < 0) {
        ch_sql_exec(db, path, "ROLLBACK", NULL);
        goto fail;
    }
    if ((rc = ch_sql_exec(db, path, "COMMIT", err)) < 0)
        goto fail;
    *out = a;
    return 0;
fail:
    ch_audit_close(a);
    return rc;
}

void ch_audit_close(ch_audit *a)
{
    if (a == NULL)
        return;
    sqlite3_close_v2(a->db);
    ch_free(a->path);
    ch_free(a);
}

int ch_audit_append(ch_audit *a, const ch_audit_entry *e, ch_error *err)
{
    return ch_audit_append_db(a->db, a->path, e, err);
}

int ch_audit_list(ch_audit *a, int64_t since_ms, size_t limit, ch_audit_fn fn, void *ud,
                  ch_error *err)
{
    return ch_audit_list_db(a->db, a->path, since_ms, limit, fn, ud, err);
}

static int add_str_field(ch_buf *b, const char *key, const char *v)
{
    int rc = ch_buf_printf(b, ",\"%s\":", key);
    return rc < 0 ? rc : ch_buf_add_json_str(b, v, strlen(v));
}

int ch_audit_entry_json(ch_buf *b, const ch_audit_entry *e)
{
    char t[40];
    ch_time_format(e->ts, t);
    int rc;
    if ((rc = ch_buf_printf(b, "{\"id\":%lld,\"time\":\"%s\"", (long long)e->id, t)) < 0 ||
        (rc = add_str_field(b, "actor", e->actor)) < 0 ||
        (rc = add_str_field(b, "source", e->source)) < 0 ||
        (rc = add_str_field(b, "action", e->action)) < 0 ||
        (rc = add_str_field(b, "object", e->object != NULL ? e->object : "")) < 0)
        return rc;
    /* before/after passed json_valid on the way in: embedded as they are. */
    if ((rc = ch_buf_adds(b, ",\"before\":")) < 0 ||
        (rc = ch_buf_adds(b, e->before != NULL ? e->before : "null")) < 0 ||
        (rc = ch_buf_adds(b, ",\"after\":")) < 0 ||
        (rc = ch_buf_adds(b, e->after != NULL ? e->after : "null")) < 0)
        return rc;
    return ch_buf_addc(b, '}');
}
