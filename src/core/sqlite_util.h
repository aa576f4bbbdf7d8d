/*
 * sqlite_util.h - what every SQLite-backed store of coinhound does the same way: opening a
 * database file, the connection settings, schema versions and migrations, transactions,
 * constant SQL and errors. The offense store (offense/store.h) and the intel store
 * (intel/intel_store.h) are two components of one file, each a ch_sql and a migration list.
 *
 * The offense store and the intel store share one database file and must open it alike: WAL
 * (a reader never blocks the analyzer's writer), synchronous = NORMAL (durable at checkpoints,
 * enough for data that a rerun rebuilds), foreign keys on (the schemas cascade deletes), a
 * 5 s busy timeout (a second coinhound waits for the first instead of failing), and extended
 * result codes. Keeping that here means a setting changed for one store cannot drift from the
 * other's, and both version their tables the same way (ch_sql_schema). Every error message
 * starts with the database path.
 *
 * Nothing here builds SQL from input: ch_sql_exec runs constant text only (pragmas,
 * transactions, schemas); values are bound by the callers' prepared statements.
 */
#ifndef CH_CORE_SQLITE_UTIL_H
#define CH_CORE_SQLITE_UTIL_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* The database file every store shares by default: "<ch_data_dir()>/coinhound.db". */
#define CH_SQL_DEFAULT_NAME "coinhound.db"
/* That path into buf; CH_ELIMIT when it does not fit in n bytes. */
int ch_sql_default_path(char *buf, size_t n);

/* mkdir -p of the directory part of path (mode 0777 before umask). */
int ch_sql_make_parents(const char *path, ch_error *err);

/* ---- schemas ------------------------------------------------------------------------------ */

/* One scheme for every table in the file: each component (the offense store, the intel store)
 * has a list of migrations, and its version is its row in
 *     schema_versions(component TEXT PRIMARY KEY, version INTEGER NOT NULL)
 * Components share the file, so none may own PRAGMA user_version or a table of versions of its
 * own, and opening in either order, from either store, gives the same file.
 *
 * Databases written before this scheme kept each component's version its own way (the offense
 * store in PRAGMA user_version, the intel store in a row of intel_meta). When schema_versions has
 * no row for a component, its version is read once the old way (legacy_sql), the migrations from
 * there run, and legacy_done clears the old record, all in the upgrade's transaction. */
typedef struct ch_sql_schema {
    const char *component;         /* its row in schema_versions: "offenses", "intel" */
    const char *const *migrations; /* migrations[v] takes the component from version v to v+1 */
    int version;                   /* what this build writes: the number of migrations */
    /* Constant SQL answering one integer, the version before schema_versions (no row, NULL, or
     * no legacy_sql: 0), run only when the table legacy_table exists (NULL: always). */
    const char *legacy_table;
    const char *legacy_sql;
    /* Constant SQL run when the component had no row (a file from before, or a new one: it
     * must hold for both, e.g. DROP TABLE IF EXISTS), or NULL. */
    const char *legacy_done;
} ch_sql_schema;

/* ---- a store's connection ----------------------------------------------------------------- */

/* What each store holds of its database. Ownership: ch_sql_open fills it, ch_sql_close releases
 * it (the connection and the copy of the path). */
typedef struct ch_sql {
    sqlite3 *db;
    char *path;     /* for messages */
    int tx_depth;   /* ch_sql_begin nesting */
    bool tx_failed; /* an inner step rolled back: the outer commit must roll back too */
} ch_sql;

/* Open the database at path (NULL: ch_sql_default_path) with ch_sql_open and bring the
 * schema's component up to date (ch_sql_migrate; schema may be NULL). With create, the file and
 * its parent directories are made when missing; without, a missing file is CH_ENOTFOUND. A file
 * that is not a database is CH_EIO ("file is not a database"), a component newer than this
 * build CH_EUSAGE. On failure *c is zeroed. */
int ch_sql_connect(ch_sql *c, const char *path, bool create, const ch_sql_schema *schema,
                   ch_error *err);
/* ch_sql_connect for a connection that one thread at a time uses (SQLITE_OPEN_NOMUTEX: no lock
 * of the connection's mutex in every bind, step and reset; about 4% of an upsert's time, see
 * docs/BENCHMARKS.md section 50). The caller hands it from thread to thread only with a
 * happens-before between the uses (a thread's start, a join). */
int ch_sql_connect_one_thread(ch_sql *c, const char *path, bool create, const ch_sql_schema *schema,
                              ch_error *err);
/* Close the connection (a transaction still open is rolled back); NULL-safe, and safe on a
 * zeroed ch_sql. */
void ch_sql_close(ch_sql *c);

/* Bring the component of schema from its recorded version up to schema->version (see above).
 * Reading is done first without a lock, so an up-to-date database costs two small queries and
 * never waits for a writer; an upgrade runs in one IMMEDIATE transaction that reads the version
 * again (another process may have upgraded meanwhile), runs every step and records the version:
 * a crash mid-upgrade leaves the previous version intact. CH_EUSAGE when the recorded version
 * is newer than this build's. */
int ch_sql_migrate(ch_sql *c, const ch_sql_schema *schema, ch_error *err);

/* The version recorded for component (0 when none), for tests and `--version`-style reports. */
int ch_sql_schema_version(ch_sql *c, const char *component, int *version, ch_error *err);

/* Transactions nest: ch_sql_begin opens an IMMEDIATE transaction at depth 0 (the write lock at
 * once: a second writer waits for it through the busy timeout instead of failing late) and
 * joins the open one otherwise; the outermost ch_sql_commit commits. ch_sql_rollback at depth
 * > 1 marks the transaction failed, so that the outer commit rolls back and reports it rather
 * than keep half of it. */
int ch_sql_begin(ch_sql *c, ch_error *err);
int ch_sql_commit(ch_sql *c, ch_error *err);
void ch_sql_rollback(ch_sql *c);

/* ---- a bare connection and statements ------------------------------------------------------ */

/* Open the database at path with the settings above, without a schema (the server's accounts
 * and audit tables still version themselves: see their files). With create, the file and its
 * parent directories are made when missing; without, a missing file is CH_ENOTFOUND. On
 * success *out is the connection (closed with sqlite3_close_v2); on failure NULL. */
int ch_sql_open(const char *path, bool create, sqlite3 **out, ch_error *err);

/* CH_EIO with "PATH: WHAT: sqlite's message" as the detail. Returns the code spelled out (not
 * ch_error_set's result) so that static analysis of callers sees the failure. */
int ch_sql_error(sqlite3 *db, const char *path, ch_error *err, const char *what);

/* Run constant SQL (pragmas, transactions, schema text): never anything built from input. */
int ch_sql_exec(sqlite3 *db, const char *path, const char *sql, ch_error *err);

/* Prepare constant SQL into *st (NULL on failure). */
int ch_sql_prepare(sqlite3 *db, const char *path, const char *sql, sqlite3_stmt **st,
                   ch_error *err);

/* One statement run once: prepare the constant sql, bind one argument per letter of fmt ('i'
 * an int64_t, 't' a string or NULL for SQL NULL, 'b' a bool as 0/1), step once. Returns 1 when
 * the step gave a row (*st is left on it for the caller's column reads), 0 when done, or the
 * error "PATH: WHAT: sqlite's message". The caller finalizes *st in every case (it is NULL when
 * preparing failed). Strings are bound SQLITE_STATIC: they must outlive the step. */
int ch_sql_once(sqlite3 *db, const char *path, ch_error *err, sqlite3_stmt **st, const char *what,
                const char *sql, const char *fmt, ...);

/* Bind a time that may be an open end: NULL when v == none. */
static inline void ch_sql_bind_time(sqlite3_stmt *st, int i, int64_t v, int64_t none)
{
    if (v == none)
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_int64(st, i, v);
}

/* A time column that may be NULL (an open end), as `none` when it is. */
static inline int64_t ch_sql_col_time(sqlite3_stmt *st, int i, int64_t none)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? none : sqlite3_column_int64(st, i);
}

/* A text column, "" for NULL; borrowed until the next step, reset or finalize of st. */
static inline const char *ch_sql_col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t != NULL ? (const char *)t : "";
}

#endif
