/*
 * intel_store.c - SQLite persistence of reference sets, STIX indicators, identities and TAXII
 * polling state, beside the offense store in the same database file.
 *
 * The tables are the "intel" component of the file: a list of migrations run by ch_sql_migrate
 * and a row in schema_versions, as the offense store's (core/sqlite_util.h), so that opening in
 * either order, from either store, gives the same file. A file from before that scheme kept the
 * version in a row of intel_meta: it is read once and the table dropped. A database whose intel
 * schema is newer than this build is refused rather than guessed at.
 *
 * Feeds write many rows at once (a 100k-indicator bundle is 100k+ element rows), so statements
 * are prepared once per connection and kept (stmt[]), and the set name -> id mapping is cached
 * for the few sets a load touches; a bulk load costs one step per row inside one transaction.
 * Every value is bound; nothing from a feed is ever part of SQL text. Times are ms, and the
 * open ends of a validity window (CH_REFSET_ALWAYS / CH_REFSET_NEVER) are NULL.
 */
#include "intel/intel_store.h"

#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "core/sqlite_util.h"

enum {
    S_SET_GET,
    S_SET_INSERT,
    S_ELEM_PUT,
    S_IND_VERSION,
    S_IND_PUT,
    S_IND_ELEMS,
    S_IND_ELEMS_DEL,
    S_IDENT_PUT,
    S_IDENT_GET,
    S__COUNT
};

static const char *const stmt_sql[S__COUNT] = {
    [S_SET_GET] = "SELECT id, type, flags, shareable,"
                  " (SELECT count(*) FROM refset_elements WHERE set_id = refsets.id)"
                  " FROM refsets WHERE name = ?1",
    [S_SET_INSERT] = "INSERT INTO refsets (name, type, flags, shareable, created)"
                     " VALUES (?1, ?2, ?3, 0, strftime('%s', 'now') * 1000)",
    [S_ELEM_PUT] =
        "INSERT INTO refset_elements (set_id, value, source, indicator, first_seen, last_seen,"
        " valid_from, expiry, added) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
        " ON CONFLICT (set_id, value, source, indicator) DO UPDATE SET"
        " first_seen = min(first_seen, excluded.first_seen),"
        " last_seen = max(last_seen, excluded.last_seen),"
        " valid_from = excluded.valid_from, expiry = excluded.expiry, added = excluded.added",
    [S_IND_VERSION] = "SELECT modified, revoked, modified_sub FROM indicators WHERE id = ?1",
    [S_IND_PUT] = "INSERT OR REPLACE INTO indicators (id, modified, created, name, types, labels,"
                  " confidence, created_by_ref, created_by, feed, pattern, valid_from,"
                  " valid_until, revoked, elements, unsupported, modified_sub)"
                  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,"
                  " ?17)",
    [S_IND_ELEMS] = "SELECT r.name, r.type, e.value, e.source, e.indicator, e.first_seen,"
                    " e.last_seen, e.valid_from, e.expiry, e.added"
                    " FROM refset_elements e JOIN refsets r ON r.id = e.set_id"
                    " WHERE e.indicator = ?1",
    [S_IND_ELEMS_DEL] = "DELETE FROM refset_elements WHERE indicator = ?1",
    [S_IDENT_PUT] = "INSERT OR REPLACE INTO identities (id, name) VALUES (?1, ?2)",
    [S_IDENT_GET] = "SELECT name FROM identities WHERE id = ?1",
};

#define SET_CACHE 8

struct ch_intel_store {
    ch_sql sql; /* the connection, its path and the transaction nesting (core/sqlite_util.h) */
    sqlite3_stmt *stmt[S__COUNT];
    struct {
        char name[CH_REFSET_NAME_MAX + 1];
        int64_t id;
    } cache[SET_CACHE];
    unsigned ncache, next_cache;
};

static const char *const migrations[] = {
    /* 0 -> 1: sets, elements, indicators, identities, TAXII polling state. */
    "CREATE TABLE refsets ("
    " id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, type TEXT NOT NULL,"
    " flags INTEGER NOT NULL DEFAULT 0, shareable INTEGER NOT NULL DEFAULT 0,"
    " created INTEGER NOT NULL);"
    "CREATE TABLE refset_elements ("
    " id INTEGER PRIMARY KEY,"
    " set_id INTEGER NOT NULL REFERENCES refsets (id) ON DELETE CASCADE,"
    " value TEXT NOT NULL, source TEXT NOT NULL DEFAULT '', indicator TEXT NOT NULL DEFAULT '',"
    " first_seen INTEGER, last_seen INTEGER, valid_from INTEGER, expiry INTEGER,"
    " added INTEGER NOT NULL,"
    " UNIQUE (set_id, value, source, indicator));"
    "CREATE INDEX refset_elements_indicator ON refset_elements (indicator)"
    " WHERE indicator <> '';"
    "CREATE INDEX refset_elements_added ON refset_elements (added, id);"
    "CREATE TABLE indicators ("
    " id TEXT PRIMARY KEY, modified INTEGER, created INTEGER, name TEXT NOT NULL DEFAULT '',"
    " types TEXT NOT NULL DEFAULT '', labels TEXT NOT NULL DEFAULT '', confidence INTEGER,"
    " created_by_ref TEXT NOT NULL DEFAULT '', created_by TEXT NOT NULL DEFAULT '',"
    " feed TEXT NOT NULL DEFAULT '', pattern TEXT NOT NULL DEFAULT '',"
    " valid_from INTEGER, valid_until INTEGER, revoked INTEGER NOT NULL DEFAULT 0,"
    " elements INTEGER NOT NULL DEFAULT 0, unsupported INTEGER NOT NULL DEFAULT 0)"
    " WITHOUT ROWID;"
    "CREATE TABLE identities (id TEXT PRIMARY KEY, name TEXT NOT NULL)"
    " WITHOUT ROWID;"
    "CREATE TABLE taxii_state ("
    " url TEXT NOT NULL, collection TEXT NOT NULL, added_after TEXT NOT NULL,"
    " PRIMARY KEY (url, collection)) WITHOUT ROWID;",
    /* 1 -> 2: versions ordered below the millisecond (modified_sub), and what the TAXII
     * server published, so that date_added is when it was added and revocations are served. */
    "ALTER TABLE indicators ADD COLUMN modified_sub INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE taxii_published ("
    " collection TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,"
    " date_added INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0, json TEXT NOT NULL,"
    " PRIMARY KEY (collection, id)) WITHOUT ROWID;",
    /* 2 -> 3: values added through the API that `serve` has still to retro-hunt, written in the
     * transaction that adds them, so a hunt waiting at a crash is run after the restart. */
    "CREATE TABLE retro_pending ("
    " id INTEGER PRIMARY KEY, set_name TEXT NOT NULL, type TEXT NOT NULL, value TEXT NOT NULL,"
    " added INTEGER NOT NULL);",
};

_Static_assert(sizeof migrations / sizeof migrations[0] == CH_INTEL_SCHEMA_VERSION,
               "one migration per schema version");

static const ch_sql_schema schema = {
    .component = "intel",
    .migrations = migrations,
    .version = CH_INTEL_SCHEMA_VERSION,
    .legacy_table = "intel_meta",
    .legacy_sql = "SELECT CAST(value AS INTEGER) FROM intel_meta WHERE key = 'intel_schema'",
    .legacy_done = "DROP TABLE IF EXISTS intel_meta",
};

/* These return CH_EIO spelled out rather than the shared helper's result (the same value): the
 * static analyzer cannot see into sqlite_util.c, and would follow a "successful" failure with
 * its outputs unset. set_id and ch_intel_store_set_get do the same for CH_ENOTFOUND. */
static int db_error(ch_intel_store *s, ch_error *err, const char *what)
{
    ch_sql_error(s->sql.db, s->sql.path, err, what);
    return CH_EIO;
}

static int prepare(ch_intel_store *s, const char *sql, sqlite3_stmt **st, ch_error *err)
{
    return ch_sql_prepare(s->sql.db, s->sql.path, sql, st, err) < 0 ? CH_EIO : 0;
}

/* A kept statement, reset and unbound, ready to bind. */
static int kept(ch_intel_store *s, int which, sqlite3_stmt **st, ch_error *err)
{
    if (s->stmt[which] == NULL) {
        int rc = prepare(s, stmt_sql[which], &s->stmt[which], err);
        if (rc < 0)
            return rc;
    }
    sqlite3_reset(s->stmt[which]);
    sqlite3_clear_bindings(s->stmt[which]);
    *st = s->stmt[which];
    return 0;
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    sqlite3_bind_text(st, i, v != NULL ? v : "", -1, SQLITE_TRANSIENT);
}

/* ---- open / close -------------------------------------------------------------------------- */

static int open_store(const char *path, bool create, ch_intel_store **out, ch_error *err)
{
    *out = NULL;
    ch_intel_store *s = ch_calloc(1, sizeof *s);
    if (s == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    int rc = ch_sql_connect(&s->sql, path, create, &schema, err);
    if (rc < 0) {
        ch_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int ch_intel_store_open(const char *path, ch_intel_store **out, ch_error *err)
{
    return open_store(path, true, out, err);
}

int ch_intel_store_open_existing(const char *path, ch_intel_store **out, ch_error *err)
{
    return open_store(path, false, out, err);
}

void ch_intel_store_close(ch_intel_store *s)
{
    if (s == NULL)
        return;
    for (int i = 0; i < S__COUNT; i++)
        sqlite3_finalize(s->stmt[i]);
    ch_sql_close(&s->sql);
    ch_free(s);
}

const char *ch_intel_store_path(const ch_intel_store *s) { return s->sql.path; }

/* ---- transactions ------------------------------------------------------------------------ */

/* Nested as the offense store's are (ch_sql_begin): the writing functions below open their own
 * when none is open and join the caller's otherwise. A rollback forgets the cached set ids,
 * since sets made in the transaction are gone. */
int ch_intel_store_begin(ch_intel_store *s, ch_error *err) { return ch_sql_begin(&s->sql, err); }

int ch_intel_store_commit(ch_intel_store *s, ch_error *err)
{
    int rc = ch_sql_commit(&s->sql, err);
    if (rc < 0)
        s->ncache = 0;
    return rc;
}

void ch_intel_store_rollback(ch_intel_store *s)
{
    ch_sql_rollback(&s->sql);
    s->ncache = 0;
}

bool ch_intel_store_in_transaction(const ch_intel_store *s) { return s->sql.tx_depth > 0; }

/* ---- sets ---------------------------------------------------------------------------------- */

static int set_row(ch_intel_store *s, const char *name, int64_t *id, ch_intel_set_info *info,
                   ch_error *err)
{
    sqlite3_stmt *st;
    int rc = kept(s, S_SET_GET, &st, err);
    if (rc < 0)
        return rc;
    bind_text(st, 1, name);
    int step = sqlite3_step(st);
    if (step == SQLITE_DONE) {
        sqlite3_reset(st);
        return CH_ENOTFOUND;
    }
    if (step != SQLITE_ROW) {
        rc = db_error(s, err, "reading a set");
        sqlite3_reset(st);
        return rc;
    }
    if (id != NULL)
        *id = sqlite3_column_int64(st, 0);
    if (info != NULL) {
        memset(info, 0, sizeof *info);
        snprintf(info->name, sizeof info->name, "%s", name);
        const char *t = ch_sql_col_text(st, 1);
        ch_refset_type ty = CH_REFSET_STRING;
        ch_refset_type_from_name(t, strlen(t), &ty);
        info->type = ty;
        info->flags = (uint32_t)sqlite3_column_int(st, 2);
        info->shareable = sqlite3_column_int(st, 3) != 0;
        info->count = sqlite3_column_int64(st, 4);
    }
    sqlite3_reset(st);
    return 0;
}

static int set_id(ch_intel_store *s, const char *name, int64_t *id, ch_error *err)
{
    for (unsigned i = 0; i < s->ncache; i++)
        if (strcmp(s->cache[i].name, name) == 0) {
            *id = s->cache[i].id;
            return 0;
        }
    int rc = set_row(s, name, id, NULL, err);
    if (rc == CH_ENOTFOUND) {
        ch_error_set(err, CH_ENOTFOUND, "no reference set '%s'", name);
        return CH_ENOTFOUND;
    }
    if (rc < 0 || strlen(name) > CH_REFSET_NAME_MAX)
        return rc;
    unsigned slot = s->ncache < SET_CACHE ? s->ncache++ : (s->next_cache++ % SET_CACHE);
    snprintf(s->cache[slot].name, sizeof s->cache[slot].name, "%s", name);
    s->cache[slot].id = *id;
    return 0;
}

static bool valid_name(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > CH_REFSET_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = n[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '-'))
            return false;
    }
    return true;
}

int ch_intel_store_set_ensure(ch_intel_store *s, const char *name, ch_refset_type type,
                              uint32_t flags, ch_error *err)
{
    if (!valid_name(name))
        return ch_error_set(err, CH_EUSAGE, "bad reference set name '%.*s'", 64, name);
    ch_intel_set_info info;
    int rc = set_row(s, name, NULL, &info, err);
    if (rc == 0) {
        if (info.type != type)
            return ch_error_set(err, CH_EUSAGE, "reference set '%s' is of type %s, not %s", name,
                                ch_refset_type_name(info.type), ch_refset_type_name(type));
        return 0;
    }
    if (rc != CH_ENOTFOUND)
        return rc;
    sqlite3_stmt *st;
    if ((rc = kept(s, S_SET_INSERT, &st, err)) < 0)
        return rc;
    bind_text(st, 1, name);
    bind_text(st, 2, ch_refset_type_name(type));
    sqlite3_bind_int64(st, 3, flags);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_error(s, err, "creating a set");
    sqlite3_reset(st);
    return rc;
}

int ch_intel_store_set_get(ch_intel_store *s, const char *name, ch_intel_set_info *out,
                           ch_error *err)
{
    int rc = set_row(s, name, NULL, out, err);
    if (rc == CH_ENOTFOUND) {
        ch_error_set(err, CH_ENOTFOUND, "no reference set '%s'", name);
        return CH_ENOTFOUND;
    }
    return rc;
}

int ch_intel_store_set_list(ch_intel_store *s, ch_intel_set_info **out, size_t *n, ch_error *err)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = NULL;
    ch_intel_set_info *v = NULL;
    size_t cnt = 0, cap = 0;
    int rc = prepare(s,
                     "SELECT name, type, flags, shareable,"
                     " (SELECT count(*) FROM refset_elements WHERE set_id = refsets.id)"
                     " FROM refsets ORDER BY name",
                     &st, err);
    if (rc < 0)
        return rc;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == cap) {
            cap = cap ? cap * 2 : 16;
            ch_intel_set_info *nv = ch_realloc(v, cap * sizeof *nv);
            if (nv == NULL) {
                rc = ch_error_set(err, CH_ENOMEM, "out of memory");
                goto cleanup;
            }
            v = nv;
        }
        ch_intel_set_info *i = &v[cnt++];
        memset(i, 0, sizeof *i);
        snprintf(i->name, sizeof i->name, "%s", ch_sql_col_text(st, 0));
        const char *t = ch_sql_col_text(st, 1);
        ch_refset_type ty = CH_REFSET_STRING;
        ch_refset_type_from_name(t, strlen(t), &ty);
        i->type = ty;
        i->flags = (uint32_t)sqlite3_column_int(st, 2);
        i->shareable = sqlite3_column_int(st, 3) != 0;
        i->count = sqlite3_column_int64(st, 4);
    }
    if (step != SQLITE_DONE) {
        rc = db_error(s, err, "listing sets");
        goto cleanup;
    }
    *out = v;
    *n = cnt;
    v = NULL;
cleanup:
    ch_free(v);
    sqlite3_finalize(st);
    return rc;
}

int ch_intel_store_set_share(ch_intel_store *s, const char *name, bool shareable, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(s, "UPDATE refsets SET shareable = ?2 WHERE name = ?1", &st, err);
    if (rc < 0)
        return rc;
    bind_text(st, 1, name);
    sqlite3_bind_int(st, 2, shareable ? 1 : 0);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = db_error(s, err, "sharing a set");
    else if (sqlite3_changes(s->sql.db) == 0)
        rc = ch_error_set(err, CH_ENOTFOUND, "no reference set '%s'", name);
    sqlite3_finalize(st);
    return rc;
}

int ch_intel_store_set_drop(ch_intel_store *s, const char *name, ch_error *err)
{
    int64_t id;
    int rc = set_id(s, name, &id, err);
    if (rc < 0)
        return rc;
    if ((rc = ch_intel_store_begin(s, err)) < 0)
        return rc;
    sqlite3_stmt *st = NULL;
    if ((rc = prepare(s, "DELETE FROM refset_elements WHERE set_id = ?1", &st, err)) == 0) {
        sqlite3_bind_int64(st, 1, id);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = db_error(s, err, "dropping a set");
        sqlite3_finalize(st);
        st = NULL;
    }
    if (rc == 0 && (rc = prepare(s, "DELETE FROM refsets WHERE id = ?1", &st, err)) == 0) {
        sqlite3_bind_int64(st, 1, id);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = db_error(s, err, "dropping a set");
        sqlite3_finalize(st);
    }
    s->ncache = 0;
    if (rc < 0) {
        ch_intel_store_rollback(s);
        return rc;
    }
    return ch_intel_store_commit(s, err);
}

/* ---- elements ------------------------------------------------------------------------------ */

int ch_intel_store_elem_put(ch_intel_store *s, const char *set, const char *value,
                            const ch_refset_meta *meta, int64_t now_ms, ch_error *err)
{
    ch_refset_meta m = CH_REFSET_META_INIT;
    if (meta != NULL)
        m = *meta;
    int64_t id;
    int rc = set_id(s, set, &id, err);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st;
    if ((rc = kept(s, S_ELEM_PUT, &st, err)) < 0)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    bind_text(st, 2, value);
    bind_text(st, 3, m.source);
    bind_text(st, 4, m.indicator);
    sqlite3_bind_int64(st, 5, m.first_seen);
    sqlite3_bind_int64(st, 6, m.last_seen);
    ch_sql_bind_time(st, 7, m.valid_from, CH_REFSET_ALWAYS);
    ch_sql_bind_time(st, 8, m.expiry, CH_REFSET_NEVER);
    sqlite3_bind_int64(st, 9, now_ms);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_error(s, err, "writing an element");
    sqlite3_reset(st);
    return rc;
}

int ch_intel_store_elem_remove(ch_intel_store *s, const char *set, const char *value,
                               const char *source, const char *indicator, ch_error *err)
{
    int64_t id;
    int rc = set_id(s, set, &id, err);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st = NULL;
    if ((rc = prepare(s,
                      "DELETE FROM refset_elements WHERE set_id = ?1 AND value = ?2"
                      " AND (?3 IS NULL OR source = ?3) AND (?4 IS NULL OR indicator = ?4)",
                      &st, err)) < 0)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    bind_text(st, 2, value);
    if (source != NULL)
        bind_text(st, 3, source);
    if (indicator != NULL)
        bind_text(st, 4, indicator);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = db_error(s, err, "removing an element");
    else if ((rc = sqlite3_changes(s->sql.db)) == 0)
        rc = ch_error_set(err, CH_ENOTFOUND, "'%s' is not in '%s'", value, set);
    sqlite3_finalize(st);
    return rc;
}

int ch_intel_store_purge_expired(ch_intel_store *s, int64_t now_ms, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(s, "DELETE FROM refset_elements WHERE expiry IS NOT NULL AND expiry <= ?1",
                     &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, now_ms);
    rc = sqlite3_step(st) == SQLITE_DONE ? sqlite3_changes(s->sql.db)
                                         : db_error(s, err, "purging expired elements");
    sqlite3_finalize(st);
    return rc;
}

static void row_from(sqlite3_stmt *st, ch_intel_elem_row *r)
{
    /* columns: set name, type, value, source, indicator, first, last, valid_from, expiry, added */
    r->set = ch_sql_col_text(st, 0);
    const char *t = ch_sql_col_text(st, 1);
    ch_refset_type ty = CH_REFSET_STRING;
    ch_refset_type_from_name(t, strlen(t), &ty);
    r->type = ty;
    r->value = ch_sql_col_text(st, 2);
    r->meta.source = ch_sql_col_text(st, 3);
    r->meta.indicator = ch_sql_col_text(st, 4);
    r->meta.first_seen = sqlite3_column_int64(st, 5);
    r->meta.last_seen = sqlite3_column_int64(st, 6);
    r->meta.valid_from = ch_sql_col_time(st, 7, CH_REFSET_ALWAYS);
    r->meta.expiry = ch_sql_col_time(st, 8, CH_REFSET_NEVER);
    r->added = sqlite3_column_int64(st, 9);
}

#define ELEM_COLS                                                                                  \
    "SELECT r.name, r.type, e.value, e.source, e.indicator, e.first_seen, e.last_seen,"            \
    " e.valid_from, e.expiry, e.added FROM refset_elements e JOIN refsets r ON r.id = e.set_id"    \
    " WHERE (?1 IS NULL OR r.name = ?1) AND (?2 = 0 OR r.shareable = 1) AND e.added > ?3"

int ch_intel_store_each_elem(ch_intel_store *s, const ch_intel_elem_query *q, ch_intel_elem_cb cb,
                             void *arg, ch_error *err)
{
    ch_intel_elem_query d = {NULL, false, false, INT64_MIN, 0};
    if (q == NULL)
        q = &d;
    sqlite3_stmt *st = NULL;
    int rc = prepare(s,
                     q->by_added ? ELEM_COLS " ORDER BY e.added, e.id LIMIT ?4"
                                 : ELEM_COLS " ORDER BY r.name, e.value, e.id LIMIT ?4",
                     &st, err);
    if (rc < 0)
        return rc;
    if (q->set != NULL)
        bind_text(st, 1, q->set);
    sqlite3_bind_int(st, 2, q->only_shareable ? 1 : 0);
    sqlite3_bind_int64(st, 3, q->added_after);
    sqlite3_bind_int64(st, 4,
                       q->limit > 0 && q->limit < (size_t)INT64_MAX ? (int64_t)q->limit : -1);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        ch_intel_elem_row r;
        row_from(st, &r);
        if ((rc = cb(arg, &r)) != 0)
            goto cleanup;
    }
    if (step != SQLITE_DONE)
        rc = db_error(s, err, "reading elements");
cleanup:
    sqlite3_finalize(st);
    return rc;
}

typedef struct load_arg {
    ch_refsets *r;
    int64_t now_ms;
    int loaded;
    ch_error *err;
} load_arg;

static int load_cb(void *arg, const ch_intel_elem_row *row)
{
    load_arg *a = arg;
    if (a->now_ms != INT64_MIN && row->meta.expiry <= a->now_ms)
        return 0;
    ch_refset *set = ch_refsets_get(a->r, row->set, strlen(row->set));
    if (set == NULL)
        return 0;
    int rc = ch_refset_add(set, row->value, strlen(row->value), &row->meta, NULL);
    if (rc == CH_ENOMEM)
        return ch_error_set(a->err, rc, "out of memory");
    if (rc >= 0)
        a->loaded++;
    return 0;
}

static int ensure_mem(ch_refsets *r, const ch_intel_set_info *i, ch_error *err)
{
    ch_refset *set;
    ch_refset_opts o = {0};
    o.flags = i->flags;
    return ch_refsets_ensure(r, i->name, i->type, &o, &set, err);
}

int ch_intel_store_load_refsets(ch_intel_store *s, ch_refsets *r, int64_t now_ms, ch_error *err)
{
    ch_intel_set_info *sets = NULL;
    size_t n = 0;
    int rc = ch_intel_store_set_list(s, &sets, &n, err);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = ensure_mem(r, &sets[i], err);
    ch_free(sets);
    if (rc < 0)
        return rc;
    load_arg a = {r, now_ms, 0, err};
    ch_intel_elem_query q = {NULL, false, false, INT64_MIN, 0};
    if ((rc = ch_intel_store_each_elem(s, &q, load_cb, &a, err)) < 0)
        return rc;
    return a.loaded;
}

int ch_intel_store_load_refset(ch_intel_store *s, const char *name, ch_refsets *r, int64_t now_ms,
                               ch_error *err)
{
    ch_intel_set_info info;
    int rc = ch_intel_store_set_get(s, name, &info, err);
    if (rc < 0 || (rc = ensure_mem(r, &info, err)) < 0)
        return rc;
    load_arg a = {r, now_ms, 0, err};
    ch_intel_elem_query q = {name, false, false, INT64_MIN, 0};
    if ((rc = ch_intel_store_each_elem(s, &q, load_cb, &a, err)) < 0)
        return rc;
    return a.loaded;
}

/* ---- indicators ---------------------------------------------------------------------------- */

int ch_intel_store_indicator_put(ch_intel_store *s, const ch_intel_indicator *ind, ch_error *err)
{
    sqlite3_stmt *st;
    int rc = kept(s, S_IND_PUT, &st, err);
    if (rc < 0)
        return rc;
    bind_text(st, 1, ind->id);
    sqlite3_bind_int64(st, 2, ind->modified);
    sqlite3_bind_int64(st, 3, ind->created);
    bind_text(st, 4, ind->name);
    bind_text(st, 5, ind->types);
    bind_text(st, 6, ind->labels);
    if (ind->confidence >= 0)
        sqlite3_bind_int(st, 7, ind->confidence);
    bind_text(st, 8, ind->created_by_ref);
    bind_text(st, 9, ind->created_by);
    bind_text(st, 10, ind->feed);
    bind_text(st, 11, ind->pattern);
    ch_sql_bind_time(st, 12, ind->valid_from, CH_REFSET_ALWAYS);
    ch_sql_bind_time(st, 13, ind->valid_until, CH_REFSET_NEVER);
    sqlite3_bind_int(st, 14, ind->revoked ? 1 : 0);
    sqlite3_bind_int64(st, 15, ind->elements);
    sqlite3_bind_int64(st, 16, ind->unsupported);
    sqlite3_bind_int(st, 17, ind->modified_sub);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_error(s, err, "writing an indicator");
    sqlite3_reset(st);
    return rc;
}

int ch_intel_store_indicator_version(ch_intel_store *s, const char *id, int64_t *modified,
                                     int32_t *modified_sub, bool *revoked, ch_error *err)
{
    sqlite3_stmt *st;
    int rc = kept(s, S_IND_VERSION, &st, err);
    if (rc < 0)
        return rc;
    bind_text(st, 1, id);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        *modified = sqlite3_column_int64(st, 0);
        *revoked = sqlite3_column_int(st, 1) != 0;
        if (modified_sub != NULL)
            *modified_sub = sqlite3_column_int(st, 2);
    } else if (step == SQLITE_DONE) {
        rc = CH_ENOTFOUND;
    } else {
        rc = db_error(s, err, "reading an indicator");
    }
    sqlite3_reset(st);
    return rc;
}

int ch_intel_store_indicator_elems_remove(ch_intel_store *s, const char *id, ch_intel_elem_cb cb,
                                          void *arg, ch_error *err)
{
    sqlite3_stmt *st;
    int rc;
    if (cb != NULL) {
        if ((rc = kept(s, S_IND_ELEMS, &st, err)) < 0)
            return rc;
        bind_text(st, 1, id);
        int step;
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            ch_intel_elem_row r;
            row_from(st, &r);
            if ((rc = cb(arg, &r)) < 0) {
                sqlite3_reset(st);
                return rc;
            }
        }
        rc = step == SQLITE_DONE ? 0 : db_error(s, err, "reading an indicator's elements");
        sqlite3_reset(st);
        if (rc < 0)
            return rc;
    }
    if ((rc = kept(s, S_IND_ELEMS_DEL, &st, err)) < 0)
        return rc;
    bind_text(st, 1, id);
    rc = sqlite3_step(st) == SQLITE_DONE ? sqlite3_changes(s->sql.db)
                                         : db_error(s, err, "removing an indicator's elements");
    sqlite3_reset(st);
    return rc;
}

int ch_intel_store_load_catalog(ch_intel_store *s, ch_intel_catalog *c, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(s, "SELECT id, name FROM identities", &st, err);
    if (rc < 0)
        return rc;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW)
        if ((rc = ch_intel_catalog_put_identity(c, ch_sql_col_text(st, 0), ch_sql_col_text(st, 1),
                                                err)) < 0)
            goto cleanup;
    if (step != SQLITE_DONE) {
        rc = db_error(s, err, "reading identities");
        goto cleanup;
    }
    sqlite3_finalize(st);
    st = NULL;
    if ((rc = prepare(s,
                      "SELECT id, modified, created, name, types, labels, confidence,"
                      " created_by_ref, created_by, feed, pattern, valid_from, valid_until,"
                      " revoked, elements, unsupported, modified_sub FROM indicators",
                      &st, err)) < 0)
        return rc;
    int n = 0;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        ch_intel_indicator ind;
        memset(&ind, 0, sizeof ind);
        ind.id = ch_sql_col_text(st, 0);
        ind.modified = sqlite3_column_int64(st, 1);
        ind.modified_sub = sqlite3_column_int(st, 16);
        ind.created = sqlite3_column_int64(st, 2);
        ind.name = ch_sql_col_text(st, 3);
        ind.types = ch_sql_col_text(st, 4);
        ind.labels = ch_sql_col_text(st, 5);
        ind.confidence = sqlite3_column_type(st, 6) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 6);
        ind.created_by_ref = ch_sql_col_text(st, 7);
        ind.created_by = ch_sql_col_text(st, 8);
        ind.feed = ch_sql_col_text(st, 9);
        ind.pattern = ch_sql_col_text(st, 10);
        ind.valid_from = ch_sql_col_time(st, 11, CH_REFSET_ALWAYS);
        ind.valid_until = ch_sql_col_time(st, 12, CH_REFSET_NEVER);
        ind.revoked = sqlite3_column_int(st, 13) != 0;
        ind.elements = (uint32_t)sqlite3_column_int64(st, 14);
        ind.unsupported = (uint32_t)sqlite3_column_int64(st, 15);
        if ((rc = ch_intel_catalog_put(c, &ind, err)) < 0)
            goto cleanup;
        n++;
    }
    rc = step == SQLITE_DONE ? n : db_error(s, err, "reading indicators");
cleanup:
    sqlite3_finalize(st);
    return rc;
}

int ch_intel_store_identity_put(ch_intel_store *s, const char *id, const char *name, ch_error *err)
{
    sqlite3_stmt *st;
    int rc = kept(s, S_IDENT_PUT, &st, err);
    if (rc < 0)
        return rc;
    bind_text(st, 1, id);
    bind_text(st, 2, name);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_error(s, err, "writing an identity");
    sqlite3_reset(st);
    return rc;
}

int ch_intel_store_identity_get(ch_intel_store *s, const char *id, char *buf, size_t cap,
                                ch_error *err)
{
    sqlite3_stmt *st;
    int rc = kept(s, S_IDENT_GET, &st, err);
    if (rc < 0)
        return rc;
    bind_text(st, 1, id);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        if (cap > 0)
            snprintf(buf, cap, "%s", ch_sql_col_text(st, 0));
    } else if (step == SQLITE_DONE) {
        rc = CH_ENOTFOUND;
    } else {
        rc = db_error(s, err, "reading an identity");
    }
    sqlite3_reset(st);
    return rc;
}

/* ---- values -------------------------------------------------------------------------------- */

int ch_intel_normalize_value(ch_refset_type type, const char *text, size_t len, char *out,
                             size_t cap, ch_error *err)
{
    ch_refset *scratch;
    int rc = ch_refset_new(&scratch, "scratch", type, NULL, err);
    if (rc < 0)
        return rc;
    rc = ch_intel_normalize_in(scratch, text, len, out, cap, err);
    ch_refset_free(scratch);
    return rc;
}

/* ---- TAXII state --------------------------------------------------------------------------- */

int ch_intel_store_taxii_get(ch_intel_store *s, const char *url, const char *collection, char *buf,
                             size_t cap, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(s, "SELECT added_after FROM taxii_state WHERE url = ?1 AND collection = ?2",
                     &st, err);
    if (rc < 0)
        return rc;
    bind_text(st, 1, url);
    bind_text(st, 2, collection);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        const char *v = ch_sql_col_text(st, 0);
        if (strlen(v) >= cap)
            rc = ch_error_set(err, CH_ELIMIT, "added_after longer than the buffer");
        else
            memcpy(buf, v, strlen(v) + 1);
    } else if (step == SQLITE_DONE) {
        rc = CH_ENOTFOUND;
    } else {
        rc = db_error(s, err, "reading TAXII state");
    }
    sqlite3_finalize(st);
    return rc;
}

int ch_intel_store_taxii_set(ch_intel_store *s, const char *url, const char *collection,
                             const char *added_after, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(s,
                     "INSERT OR REPLACE INTO taxii_state (url, collection, added_after)"
                     " VALUES (?1, ?2, ?3)",
                     &st, err);
    if (rc < 0)
        return rc;
    bind_text(st, 1, url);
    bind_text(st, 2, collection);
    bind_text(st, 3, added_after);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_error(s, err, "writing TAXII state");
    sqlite3_finalize(st);
    return rc;
}

/* ---- what the TAXII server published ------------------------------------------------------- */

int ch_intel_store_pub_get(ch_intel_store *s, const char *collection, const char *id,
                           ch_intel_pub_row *out, ch_buf *json, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    memset(out, 0, sizeof *out);
    int rc = prepare(s,
                     "SELECT version, date_added, revoked, json FROM taxii_published"
                     " WHERE collection = ?1 AND id = ?2",
                     &st, err);
    if (rc < 0)
        return rc;
    bind_text(st, 1, collection);
    bind_text(st, 2, id);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        out->version = sqlite3_column_int64(st, 0);
        out->date_added = sqlite3_column_int64(st, 1);
        out->revoked = sqlite3_column_int(st, 2) != 0;
        if (json != NULL &&
            ch_buf_add(json, ch_sql_col_text(st, 3), (size_t)sqlite3_column_bytes(st, 3)) < 0)
            rc = ch_error_set(err, CH_ELIMIT, "a published object is larger than the buffer");
    } else if (step == SQLITE_DONE) {
        rc = CH_ENOTFOUND;
    } else {
        rc = db_error(s, err, "reading the TAXII publication ledger");
    }
    sqlite3_finalize(st);
    return rc;
}

int ch_intel_store_pub_put(ch_intel_store *s, const ch_intel_pub_row *row, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(s,
                     "INSERT OR REPLACE INTO taxii_published"
                     " (collection, id, version, date_added, revoked, json)"
                     " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                     &st, err);
    if (rc < 0)
        return rc;
    bind_text(st, 1, row->collection);
    bind_text(st, 2, row->id);
    sqlite3_bind_int64(st, 3, row->version);
    sqlite3_bind_int64(st, 4, row->date_added);
    sqlite3_bind_int(st, 5, row->revoked ? 1 : 0);
    sqlite3_bind_text(st, 6, row->json != NULL ? row->json : "", (int)row->json_len,
                      SQLITE_TRANSIENT);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0
                                         : db_error(s, err, "writing the TAXII publication ledger");
    sqlite3_finalize(st);
    return rc;
}

int ch_intel_store_pub_each(ch_intel_store *s, const char *collection, ch_intel_pub_cb cb,
                            void *arg, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(s,
                     "SELECT id, version, date_added, revoked, json FROM taxii_published"
                     " WHERE collection = ?1 ORDER BY id",
                     &st, err);
    if (rc < 0)
        return rc;
    bind_text(st, 1, collection);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        ch_intel_pub_row row = {collection,
                                ch_sql_col_text(st, 0),
                                sqlite3_column_int64(st, 1),
                                sqlite3_column_int64(st, 2),
                                sqlite3_column_int(st, 3) != 0,
                                ch_sql_col_text(st, 4),
                                (size_t)sqlite3_column_bytes(st, 4)};
        if ((rc = cb(arg, &row)) != 0)
            break;
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = db_error(s, err, "reading the TAXII publication ledger");
    sqlite3_finalize(st);
    return rc;
}

int ch_intel_store_pub_purge(ch_intel_store *s, int64_t revoked_before, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc =
        prepare(s, "DELETE FROM taxii_published WHERE revoked = 1 AND date_added < ?1", &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, revoked_before);
    rc = sqlite3_step(st) == SQLITE_DONE ? sqlite3_changes(s->sql.db)
                                         : db_error(s, err, "purging the TAXII publication ledger");
    sqlite3_finalize(st);
    return rc;
}

int ch_intel_store_pub_last_added(ch_intel_store *s, const char *collection, int64_t *out,
                                  ch_error *err)
{
    sqlite3_stmt *st = NULL;
    *out = INT64_MIN;
    int rc =
        prepare(s, "SELECT max(date_added) FROM taxii_published WHERE collection = ?1", &st, err);
    if (rc < 0)
        return rc;
    bind_text(st, 1, collection);
    if (sqlite3_step(st) == SQLITE_ROW) {
        if (sqlite3_column_type(st, 0) != SQLITE_NULL)
            *out = sqlite3_column_int64(st, 0);
    } else {
        rc = db_error(s, err, "reading the TAXII publication ledger");
    }
    sqlite3_finalize(st);
    return rc;
}

/* ---- retro-hunts waiting (serve) ----------------------------------------------------------- */

int ch_intel_store_retro_queue(ch_intel_store *s, const char *set, ch_refset_type type,
                               const char *value, int64_t now_ms, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(s,
                     "INSERT INTO retro_pending (set_name, type, value, added)"
                     " VALUES (?1, ?2, ?3, ?4)",
                     &st, err);
    if (rc < 0)
        return rc;
    bind_text(st, 1, set);
    bind_text(st, 2, ch_refset_type_name(type));
    bind_text(st, 3, value);
    sqlite3_bind_int64(st, 4, now_ms);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_error(s, err, "queueing a retro-hunt");
    sqlite3_finalize(st);
    return rc;
}

int ch_intel_store_retro_each(ch_intel_store *s, size_t max, ch_intel_retro_cb cb, void *arg,
                              ch_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(s, "SELECT id, set_name, type, value FROM retro_pending ORDER BY id LIMIT ?1",
                     &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)max);
    int step;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *tn = (const char *)sqlite3_column_text(st, 2);
        ch_refset_type type;
        if (tn == NULL || ch_refset_type_from_name(tn, strlen(tn), &type) < 0)
            continue; /* not written by this code: nothing to hunt with */
        ch_intel_retro_row row = {sqlite3_column_int64(st, 0),
                                  (const char *)sqlite3_column_text(st, 1), type,
                                  (const char *)sqlite3_column_text(st, 3)};
        if (row.set != NULL && row.value != NULL)
            rc = cb(arg, &row);
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = db_error(s, err, "reading the retro-hunts waiting");
    sqlite3_finalize(st);
    return rc;
}

int ch_intel_store_retro_done(ch_intel_store *s, int64_t upto_id, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(s, "DELETE FROM retro_pending WHERE id <= ?1", &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, upto_id);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_error(s, err, "clearing the retro-hunts run");
    sqlite3_finalize(st);
    return rc;
}
