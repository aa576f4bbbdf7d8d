/*
 * sqlite_util.h - what every SQLite-backed store of coinhound does the same way: opening a
 * database file, the connection settings, constant SQL, errors, user_version migrations.
 *
 * The offense store and the intel store share one database file and must open it alike: WAL
 * (a reader never blocks the analyzer's writer), synchronous = NORMAL (durable at checkpoints,
 * enough for data that a rerun rebuilds), foreign keys on (the schemas cascade deletes), a
 * 5 s busy timeout (a second coinhound waits for the first instead of failing), and extended
 * result codes. Keeping that here means a setting changed for one store cannot drift from the
 * other's. Every error message starts with the database path.
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

/* mkdir -p of the directory part of path (mode 0777 before umask). */
int ch_sql_make_parents(const char *path, ch_error *err);

/* Open the database at path with the settings above. With create, the file and its parent
 * directories are made when missing; without, a missing file is CH_ENOTFOUND. On success *out
 * is the connection (the caller closes it with sqlite3_close_v2); on failure it is NULL. A
 * file that is not a database fails here ("file is not a database"), CH_EIO. */
int ch_sql_open(const char *path, bool create, sqlite3 **out, ch_error *err);

/* CH_EIO with "PATH: WHAT: sqlite's message" as the detail. Returns the code spelled out (not
 * ch_error_set's result) so that static analysis of callers sees the failure. */
int ch_sql_error(sqlite3 *db, const char *path, ch_error *err, const char *what);

/* Run constant SQL (pragmas, transactions, schema text): never anything built from input. */
int ch_sql_exec(sqlite3 *db, const char *path, const char *sql, ch_error *err);

/* Prepare constant SQL into *st (NULL on failure). */
int ch_sql_prepare(sqlite3 *db, const char *path, const char *sql, sqlite3_stmt **st,
                   ch_error *err);

/* Bring the database from its PRAGMA user_version up to n: migrations[v] takes version v to
 * v + 1, each in one IMMEDIATE transaction with its version bump, so a crash mid-upgrade
 * leaves the previous version intact. A database newer than n is refused, CH_EUSAGE. */
int ch_sql_migrate(sqlite3 *db, const char *path, const char *const *migrations, int n,
                   ch_error *err);

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
