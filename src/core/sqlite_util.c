/*
 * sqlite_util.c - opening, settings, errors and migrations shared by the SQLite stores (see
 * sqlite_util.h for why they are one piece of code).
 *
 * Opening costs a handful of pragmas and, on a new or older file, the migrations; stores open
 * once per command, so none of this is on a per-event path.
 */
#include "core/sqlite_util.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int ch_sql_make_parents(const char *path, ch_error *err)
{
    char dir[PATH_MAX];
    size_t n = strlen(path);
    if (n >= sizeof dir)
        return ch_error_set(err, CH_ELIMIT, "%s: path too long", path);
    memcpy(dir, path, n + 1);
    char *slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0777) != 0 && errno != EEXIST)
            return ch_error_set(err, CH_EIO, "%s: cannot create directory: %s", dir,
                                strerror(errno));
        *p = '/';
    }
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return ch_error_set(err, CH_EIO, "%s: cannot create directory: %s", dir, strerror(errno));
    return 0;
}

int ch_sql_error(sqlite3 *db, const char *path, ch_error *err, const char *what)
{
    ch_error_set(err, CH_EIO, "%s: %s: %s", path, what, sqlite3_errmsg(db));
    return CH_EIO;
}

int ch_sql_exec(sqlite3 *db, const char *path, const char *sql, ch_error *err)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        ch_error_set(err, CH_EIO, "%s: %s", path, msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return CH_EIO;
    }
    return 0;
}

int ch_sql_prepare(sqlite3 *db, const char *path, const char *sql, sqlite3_stmt **st, ch_error *err)
{
    if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK) {
        *st = NULL;
        return ch_sql_error(db, path, err, "preparing a statement");
    }
    return 0;
}

int ch_sql_open(const char *path, bool create, sqlite3 **out, ch_error *err)
{
    sqlite3 *db = NULL;
    int rc;
    *out = NULL;
    if (!create) {
        struct stat sb;
        if (stat(path, &sb) != 0)
            return ch_error_set(err, CH_ENOTFOUND, "%s: no such database", path);
    } else if ((rc = ch_sql_make_parents(path, err)) < 0) {
        return rc;
    }
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
        rc = ch_error_set(err, CH_EIO, "%s: cannot open database: %s", path,
                          db ? sqlite3_errmsg(db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(db, 5000);
    sqlite3_extended_result_codes(db, 1);
    /* journal_mode answers with a row; exec ignores it. A file that is not a database fails
     * here with "file is not a database". */
    if ((rc = ch_sql_exec(db, path, "PRAGMA journal_mode = WAL", err)) < 0 ||
        (rc = ch_sql_exec(db, path, "PRAGMA synchronous = NORMAL", err)) < 0 ||
        (rc = ch_sql_exec(db, path, "PRAGMA foreign_keys = ON", err)) < 0)
        goto fail;
    *out = db;
    return 0;
fail:
    sqlite3_close_v2(db);
    return rc;
}

static int user_version(sqlite3 *db, const char *path, int *v, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = ch_sql_prepare(db, path, "PRAGMA user_version", &st, err);
    if (rc < 0)
        return rc;
    if (sqlite3_step(st) == SQLITE_ROW)
        *v = sqlite3_column_int(st, 0);
    else
        rc = ch_sql_error(db, path, err, "reading the schema version");
    sqlite3_finalize(st);
    return rc;
}

int ch_sql_migrate(sqlite3 *db, const char *path, const char *const *migrations, int n,
                   ch_error *err)
{
    int v = 0, rc = user_version(db, path, &v, err);
    if (rc < 0)
        return rc;
    if (v > n)
        return ch_error_set(err, CH_EUSAGE,
                            "%s: schema version %d is newer than this coinhound's (%d)", path, v,
                            n);
    while (v < n) {
        char bump[64];
        if ((rc = ch_sql_exec(db, path, "BEGIN IMMEDIATE", err)) < 0)
            return rc;
        /* Read again under the write lock: a second process opening a new store at the same
         * time may have migrated it meanwhile. */
        if ((rc = user_version(db, path, &v, err)) < 0) {
            ch_sql_exec(db, path, "ROLLBACK", NULL);
            return rc;
        }
        if (v >= n) {
            ch_sql_exec(db, path, "ROLLBACK", NULL);
            break;
        }
        /* The version is our own integer, not input. */
        snprintf(bump, sizeof bump, "PRAGMA user_version = %d", v + 1);
        if ((rc = ch_sql_exec(db, path, migrations[v], err)) < 0 ||
            (rc = ch_sql_exec(db, path, bump, err)) < 0 ||
            (rc = ch_sql_exec(db, path, "COMMIT", err)) < 0) {
            ch_sql_exec(db, path, "ROLLBACK", NULL);
            return rc;
        }
        v++;
    }
    return 0;
}
