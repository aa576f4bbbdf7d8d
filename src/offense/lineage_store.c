/*
 * lineage_store.c - the principal lineage's rows in the store (see lineage_store.h).
 *
 * The rowid keeps the learning order (a new link is appended, a changed one updated in place),
 * so a restart rebuilds the table in the order the links were learnt, which ch_lineage_each and
 * the graphs rely on for stable output. Names are bound as blobs: they come from logs and are
 * kept byte for byte.
 */
#include "offense/lineage_store.h"

#include <sqlite3.h>
#include <string.h>

#include "core/buf.h"
#include "core/mem.h"

static const char *const migrations[] = {
    /* 0 -> 1: one row per link (enrich/lineage.h). */
    "CREATE TABLE lineage_links ("
    " id INTEGER PRIMARY KEY, child BLOB NOT NULL UNIQUE, parent BLOB NOT NULL,"
    " relation BLOB NOT NULL, account BLOB NOT NULL, first_ms INTEGER NOT NULL,"
    " last_ms INTEGER NOT NULL, count INTEGER NOT NULL)",
    /* 1 -> 2: a user's timeline asks for the links the user made (its children) without
     * reading the whole table. */
    "CREATE INDEX lineage_links_parent ON lineage_links (parent)",
};

static const ch_sql_schema schema = {
    .component = "lineage",
    .migrations = migrations,
    .version = (int)(sizeof migrations / sizeof migrations[0]),
};

int ch_lineage_schema(ch_sql *c, ch_error *err) { return ch_sql_migrate(c, &schema, err); }

static ch_sv col_sv(sqlite3_stmt *st, int i)
{
    const void *p = sqlite3_column_blob(st, i);
    int n = sqlite3_column_bytes(st, i);
    return (ch_sv){p != NULL ? (const char *)p : "", (uint32_t)(n > 0 ? n : 0)};
}

static ch_lineage_link row_link(sqlite3_stmt *st)
{
    return (ch_lineage_link){col_sv(st, 0),
                             col_sv(st, 1),
                             col_sv(st, 2),
                             col_sv(st, 3),
                             sqlite3_column_int64(st, 4),
                             sqlite3_column_int64(st, 5),
                             (uint64_t)sqlite3_column_int64(st, 6)};
}

static int read_rows(ch_sql *c, ch_lineage *l, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = ch_sql_prepare(c->db, c->path,
                            "SELECT child, parent, relation, account, first_ms, last_ms, count"
                            " FROM lineage_links ORDER BY id",
                            &st, err);
    if (rc < 0)
        return rc;
    int n = 0, s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        ch_lineage_link k = row_link(st);
        if ((rc = ch_lineage_put(l, &k)) < 0) {
            rc = ch_error_set(err, rc, "out of memory");
            break;
        }
        n++;
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = ch_sql_error(c->db, c->path, err, "reading the lineage");
    sqlite3_finalize(st);
    return rc < 0 ? rc : n;
}

static bool has_table(ch_sql *c)
{
    sqlite3_stmt *st = NULL;
    ch_error e = {0};
    if (ch_sql_prepare(
            c->db, c->path,
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'lineage_links'", &st,
            &e) < 0)
        return false;
    bool yes = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return yes;
}

int ch_lineage_read(ch_store *st, ch_lineage *l, bool *legacy, ch_error *err)
{
    ch_sql *c = ch_store_sql(st);
    if (legacy != NULL)
        *legacy = false;
    int n = has_table(c) ? read_rows(c, l, err) : 0;
    if (n != 0) {
        ch_lineage_clear_dirty(l);
        return n;
    }
    void *blob = NULL;
    size_t bn = 0;
    int rc = ch_store_get_state(st, CH_LINEAGE_STATE, &blob, &bn, err);
    if (rc == CH_ENOTFOUND) {
        ch_lineage_clear_dirty(l);
        return 0;
    }
    if (rc < 0)
        return rc;
    n = ch_lineage_load(l, blob, bn);
    ch_free(blob);
    if (n < 0)
        return ch_error_set(err, n, "out of memory");
    ch_lineage_mark_all_dirty(l);
    if (legacy != NULL)
        *legacy = true;
    return n;
}

/* Dirty links are written PUT_BATCH rows per statement: one multi-row INSERT runs SQLite's
 * statement machinery (the statement journal a table with two indexes needs, the program's
 * start and halt) once for many rows, where one statement a row cost about 17,000
 * instructions a link (docs/BENCHMARKS.md section 55). Rows go in the dirty list's order, so
 * new links get the same rowids as one by one. The links' strings are borrowed from the
 * lineage, which does not change while it is persisted. */
#define PUT_BATCH 32
#define PUT_COLS 7

typedef struct upsert {
    sqlite3_stmt *many; /* PUT_BATCH rows */
    sqlite3_stmt *one;  /* one row, for the tail */
    ch_sql *c;
    ch_error *err;
    ch_lineage_link rows[PUT_BATCH];
    int n;
} upsert;

static int prepare_put(upsert *u, int rows, sqlite3_stmt **st)
{
    ch_buf sql;
    ch_buf_init(&sql, 64 * 1024);
    int rc = ch_buf_adds(&sql, "INSERT INTO lineage_links (child, parent, relation, account,"
                               " first_ms, last_ms, count) VALUES ");
    for (int i = 0; i < rows && rc == 0; i++)
        rc = ch_buf_adds(&sql, i ? ",(?,?,?,?,?,?,?)" : "(?,?,?,?,?,?,?)");
    /* The link's parent, relation and account never change once made (lineage.h): only
     * its times and count are updated. */
    if (rc == 0)
        rc = ch_buf_adds(&sql, " ON CONFLICT (child) DO UPDATE SET first_ms = excluded.first_ms,"
                               " last_ms = excluded.last_ms, count = excluded.count");
    rc = rc < 0 ? ch_error_set(u->err, CH_ENOMEM, "out of memory")
                : ch_sql_prepare(u->c->db, u->c->path, sql.data, st, u->err);
    ch_buf_free(&sql);
    return rc;
}

static void bind_row(sqlite3_stmt *st, int at, const ch_lineage_link *k)
{
    const ch_sv v[4] = {k->child, k->parent, k->relation, k->account};
    for (int i = 0; i < 4; i++)
        sqlite3_bind_blob(st, at + i + 1, v[i].n ? v[i].p : "", (int)v[i].n, SQLITE_STATIC);
    sqlite3_bind_int64(st, at + 5, k->first_ms);
    sqlite3_bind_int64(st, at + 6, k->last_ms);
    sqlite3_bind_int64(st, at + 7, (int64_t)k->count);
}

/* Writes the rows held in u: all at once when the batch is full, else one statement each. */
static int flush_rows(upsert *u)
{
    int rc = 0;
    if (u->n == PUT_BATCH) {
        if (u->many == NULL && (rc = prepare_put(u, PUT_BATCH, &u->many)) < 0)
            return rc;
        for (int r = 0; r < u->n; r++)
            bind_row(u->many, r * PUT_COLS, &u->rows[r]);
        int s = sqlite3_step(u->many);
        sqlite3_reset(u->many);
        rc =
            s == SQLITE_DONE ? 0 : ch_sql_error(u->c->db, u->c->path, u->err, "saving the lineage");
    } else {
        if (u->n > 0 && u->one == NULL && (rc = prepare_put(u, 1, &u->one)) < 0)
            return rc;
        for (int r = 0; r < u->n && rc == 0; r++) {
            bind_row(u->one, 0, &u->rows[r]);
            int s = sqlite3_step(u->one);
            sqlite3_reset(u->one);
            if (s != SQLITE_DONE)
                rc = ch_sql_error(u->c->db, u->c->path, u->err, "saving the lineage");
        }
    }
    u->n = 0;
    return rc;
}

static int put_row(void *ud, const ch_lineage_link *k)
{
    upsert *u = ud;
    u->rows[u->n++] = *k;
    return u->n == PUT_BATCH ? flush_rows(u) : 0;
}

int ch_lineage_persist(ch_store *st, const ch_lineage *l, bool legacy, ch_error *err)
{
    ch_sql *c = ch_store_sql(st);
    upsert u = {.c = c, .err = err};
    int rc = 0;
    if (ch_lineage_dirty(l)) {
        rc = ch_lineage_each_dirty(l, put_row, &u);
        if (rc == 0)
            rc = flush_rows(&u);
        sqlite3_finalize(u.many);
        sqlite3_finalize(u.one);
    }
    if (rc == 0 && legacy) {
        sqlite3_stmt *d = NULL;
        rc = ch_sql_once(c->db, c->path, err, &d, "dropping the lineage's text form",
                         "DELETE FROM pipeline_state WHERE name = ?1", "t", CH_LINEAGE_STATE);
        sqlite3_finalize(d);
        rc = rc < 0 ? rc : 0;
    }
    return rc;
}

/* ---- one principal's links ------------------------------------------------------------------ */

typedef struct filter {
    const char *name;
    size_t n;
    unsigned kids;
    ch_lineage_user_fn fn;
    void *ud;
} filter;

static int kid_of(void *ud, const ch_lineage_link *k)
{
    filter *f = ud;
    if (f->kids >= CH_LINEAGE_USER_CHILDREN || k->parent.n != f->n ||
        memcmp(k->parent.p, f->name, f->n) != 0)
        return 0;
    f->kids++;
    return f->fn(f->ud, k, false);
}

/* A store whose links are still in the text form: read it whole, as before the table. */
static int user_links_legacy(ch_store *st, filter *f, ch_error *err)
{
    ch_lineage *l = NULL;
    int rc = ch_lineage_new(0, &l, err);
    if (rc == 0 && (rc = ch_lineage_read(st, l, NULL, err)) >= 0) {
        ch_lineage_link k;
        rc = ch_lineage_get(l, f->name, f->n, &k) ? f->fn(f->ud, &k, true) : 0;
        if (rc == 0)
            rc = ch_lineage_each(l, kid_of, f);
    }
    ch_lineage_free(l);
    return rc < 0 ? rc : 0;
}

static int user_rows(ch_sql *c, const char *sql, filter *f, bool own, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = ch_sql_prepare(c->db, c->path, sql, &st, err), s;
    if (rc < 0)
        return rc;
    sqlite3_bind_blob(st, 1, f->n ? f->name : "", (int)f->n, SQLITE_STATIC);
    if (sqlite3_bind_parameter_count(st) >= 2)
        sqlite3_bind_int(st, 2, CH_LINEAGE_USER_CHILDREN);
    while (rc == 0 && (s = sqlite3_step(st)) == SQLITE_ROW) {
        ch_lineage_link k = row_link(st);
        rc = f->fn(f->ud, &k, own);
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = ch_sql_error(c->db, c->path, err, "reading the lineage");
    sqlite3_finalize(st);
    return rc;
}

int ch_lineage_read_user(ch_store *st, const char *name, size_t n, ch_lineage_user_fn fn, void *ud,
                         ch_error *err)
{
    ch_sql *c = ch_store_sql(st);
    filter f = {name, n, 0, fn, ud};
    sqlite3_stmt *any = NULL;
    bool rows = false;
    if (has_table(c)) {
        int rc = ch_sql_prepare(c->db, c->path, "SELECT 1 FROM lineage_links LIMIT 1", &any, err);
        if (rc < 0)
            return rc;
        rows = sqlite3_step(any) == SQLITE_ROW;
        sqlite3_finalize(any);
    }
    if (!rows)
        return user_links_legacy(st, &f, err);
    const char *own = "SELECT child, parent, relation, account, first_ms, last_ms, count"
                      " FROM lineage_links WHERE child = ?1";
    const char *kids = "SELECT child, parent, relation, account, first_ms, last_ms, count"
                       " FROM lineage_links WHERE parent = ?1 ORDER BY id LIMIT ?2";
    int rc = user_rows(c, own, &f, true, err);
    return rc < 0 ? rc : user_rows(c, kids, &f, false, err);
}
