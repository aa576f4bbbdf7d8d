/*
 * sqlite_util.c - opening, settings, schema versions, transactions and errors shared by the
 * SQLite stores (see sqlite_util.h for why they are one piece of code).
 *
 * Opening costs a handful of pragmas and two small queries for the schema version; on a new or
 * older file, the migrations. Stores open once per command, so none of this is on a per-event
 * path.
 */
#include "core/sqlite_util.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/mem.h"
#include "core/paths.h"

int ch_sql_default_path(char *buf, size_t n)
{
    int k = snprintf(buf, n, "%s/%s", ch_data_dir(), CH_SQL_DEFAULT_NAME);
    return k < 0 || (size_t)k >= n ? CH_ELIMIT : 0;
}

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
        /* The statement's opening words say which step failed ("BEGIN IMMEDIATE", a PRAGMA):
         * "database is locked" alone does not tell a wait for a writer from a schema change. */
        ch_error_set(err, CH_EIO, "%s: %.40s: %s", path, sql, msg ? msg : sqlite3_errmsg(db));
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

int ch_sql_once(sqlite3 *db, const char *path, ch_error *err, sqlite3_stmt **st, const char *what,
                const char *sql, const char *fmt, ...)
{
    int rc = ch_sql_prepare(db, path, sql, st, err);
    if (rc < 0)
        return rc;
    va_list ap;
    va_start(ap, fmt);
    for (int i = 0; fmt[i] != '\0'; i++) {
        if (fmt[i] == 'i') {
            sqlite3_bind_int64(*st, i + 1, va_arg(ap, int64_t));
        } else if (fmt[i] == 'b') {
            sqlite3_bind_int(*st, i + 1, va_arg(ap, int) ? 1 : 0);
        } else {
            const char *t = va_arg(ap, const char *);
            if (t != NULL)
                sqlite3_bind_text(*st, i + 1, t, -1, SQLITE_STATIC);
        }
    }
    va_end(ap);
    int r = sqlite3_step(*st);
    return r == SQLITE_ROW ? 1 : r == SQLITE_DONE ? 0 : ch_sql_error(db, path, err, what);
}

/* ---- transactions -------------------------------------------------------------------------- */

int ch_sql_begin(ch_sql *c, ch_error *err)
{
    if (c->tx_depth++ > 0)
        return 0;
    c->tx_failed = false;
    int rc = ch_sql_exec(c->db, c->path, "BEGIN IMMEDIATE", err);
    if (rc < 0)
        c->tx_depth = 0;
    return rc;
}

int ch_sql_commit(ch_sql *c, ch_error *err)
{
    if (c->tx_depth == 0)
        return ch_error_set(err, CH_EUSAGE, "commit without a transaction");
    if (--c->tx_depth > 0)
        return 0;
    if (c->tx_failed) {
        ch_sql_exec(c->db, c->path, "ROLLBACK", NULL);
        return ch_error_set(err, CH_EIO, "%s: an earlier step of the transaction failed", c->path);
    }
    int rc = ch_sql_exec(c->db, c->path, "COMMIT", err);
    if (rc < 0)
        ch_sql_exec(c->db, c->path, "ROLLBACK", NULL);
    return rc;
}

void ch_sql_rollback(ch_sql *c)
{
    if (c->tx_depth == 0)
        return;
    if (--c->tx_depth > 0) {
        c->tx_failed = true; /* the outer commit must not keep half of it */
        return;
    }
    ch_sql_exec(c->db, c->path, "ROLLBACK", NULL);
}

/* ---- schema versions ----------------------------------------------------------------------- */

#define VERSIONS_TABLE                                                                             \
    "CREATE TABLE IF NOT EXISTS schema_versions ("                                                 \
    " component TEXT PRIMARY KEY, version INTEGER NOT NULL) WITHOUT ROWID"

/* One integer from constant SQL with an optional text parameter: *found false when no row (or a
 * NULL). */
static int query_int(const ch_sql *c, const char *sql, const char *param, int *v, bool *found,
                     ch_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = ch_sql_prepare(c->db, c->path, sql, &st, err);
    if (rc < 0)
        return rc;
    if (param != NULL)
        sqlite3_bind_text(st, 1, param, -1, SQLITE_STATIC);
    *found = false;
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        *v = sqlite3_column_int(st, 0);
        *found = true;
    } else if (step != SQLITE_ROW && step != SQLITE_DONE) {
        rc = ch_sql_error(c->db, c->path, err, "reading the schema version");
    }
    sqlite3_finalize(st);
    return rc;
}

static int table_exists(const ch_sql *c, const char *name, bool *yes, ch_error *err)
{
    int one = 0;
    return query_int(c, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1", name,
                     &one, yes, err);
}

/* The component's version: its row, or (*legacy) the old way's answer when it has none. */
static int component_version(const ch_sql *c, const ch_sql_schema *s, int *v, bool *legacy,
                             ch_error *err)
{
    bool have = false;
    int rc = table_exists(c, "schema_versions", &have, err);
    *v = 0;
    *legacy = false;
    if (rc < 0)
        return rc;
    if (have) {
        rc = query_int(c, "SELECT version FROM schema_versions WHERE component = ?1", s->component,
                       v, &have, err);
        if (rc < 0 || have)
            return rc;
    }
    *legacy = true;
    *v = 0;
    if (s->legacy_sql == NULL)
        return 0;
    if (s->legacy_table != NULL &&
        ((rc = table_exists(c, s->legacy_table, &have, err)) < 0 || !have))
        return rc;
    rc = query_int(c, s->legacy_sql, NULL, v, &have, err);
    if (rc == 0 && !have)
        *v = 0;
    return rc;
}

static int newer(const ch_sql *c, const ch_sql_schema *s, int v, ch_error *err)
{
    return ch_error_set(err, CH_EUSAGE,
                        "%s: %s schema version %d is newer than this coinhound's (%d)", c->path,
                        s->component, v, s->version);
}

int ch_sql_schema_version(ch_sql *c, const char *component, int *version, ch_error *err)
{
    bool have = false;
    *version = 0;
    int rc = table_exists(c, "schema_versions", &have, err);
    if (rc == 0 && have)
        rc = query_int(c, "SELECT version FROM schema_versions WHERE component = ?1", component,
                       version, &have, err);
    return rc;
}

/* component_version's reads as one snapshot. They are several statements, and another process
 * may be migrating the same new file meanwhile: read one by one, they saw no schema_versions
 * table, then its commit's legacy mark (user_version 100, "newer than this build") and refused
 * a file that was up to date. Inside a caller's transaction they already are one snapshot. */
static int version_snapshot(ch_sql *c, const ch_sql_schema *s, int *v, bool *legacy, ch_error *err)
{
    if (c->tx_depth > 0)
        return component_version(c, s, v, legacy, err);
    int rc = ch_sql_exec(c->db, c->path, "BEGIN", err);
    if (rc < 0)
        return rc;
    rc = component_version(c, s, v, legacy, err);
    ch_sql_exec(c->db, c->path, rc < 0 ? "ROLLBACK" : "COMMIT", NULL); /* read only */
    return rc;
}

int ch_sql_migrate(ch_sql *c, const ch_sql_schema *s, ch_error *err)
{
    int v = 0;
    bool legacy = false;
    int rc = version_snapshot(c, s, &v, &legacy, err);
    if (rc < 0)
        return rc;
    if (v > s->version)
        return newer(c, s, v, err);
    if (v == s->version && !legacy)
        return 0;
    if ((rc = ch_sql_begin(c, err)) < 0)
        return rc;
    if ((rc = ch_sql_exec(c->db, c->path, VERSIONS_TABLE, err)) < 0 ||
        (rc = component_version(c, s, &v, &legacy, err)) < 0)
        goto fail;
    if (v > s->version) {
        rc = newer(c, s, v, err);
        goto fail;
    }
    for (; v < s->version; v++)
        if ((rc = ch_sql_exec(c->db, c->path, s->migrations[v], err)) < 0)
            goto fail;
    if (legacy && s->legacy_done != NULL &&
        (rc = ch_sql_exec(c->db, c->path, s->legacy_done, err)) < 0)
        goto fail;
    sqlite3_stmt *st = NULL;
    if ((rc = ch_sql_prepare(c->db, c->path,
                             "INSERT INTO schema_versions (component, version) VALUES (?1, ?2)"
                             " ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                             &st, err)) < 0)
        goto fail;
    sqlite3_bind_text(st, 1, s->component, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, s->version);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = ch_sql_error(c->db, c->path, err, "recording the schema version");
    sqlite3_finalize(st);
    if (rc < 0)
        goto fail;
    return ch_sql_commit(c, err);
fail:
    ch_sql_rollback(c);
    return rc;
}

/* ---- opening ------------------------------------------------------------------------------- */

/* How long a connection waits for another one's lock before it reports "database is locked". */
#define BUSY_MS 5000

/* Two processes (or threads) opening one new file at once both switch it to WAL; the switch
 * needs an exclusive lock, and SQLite answers SQLITE_BUSY at once when the other connection is
 * in the middle of its own switch, without calling the busy handler (two `analyze` runs on a
 * new store failed this way about once in ten). The mode is kept in the file, so only the
 * first opens race: retry for as long as the busy handler would have waited. */
static int set_wal(sqlite3 *db, const char *path, ch_error *err)
{
    const char *sql = "PRAGMA journal_mode = WAL";
    for (int waited = 0;; waited += 2) {
        int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            return 0;
        if ((rc & 0xff) != SQLITE_BUSY || waited >= BUSY_MS)
            return ch_error_set(err, CH_EIO, "%s: %s: %s", path, sql, sqlite3_errmsg(db));
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* SQLite's default page is 4 KiB. A 300k-record analyze's checkpoint touches 24 MB of pages,
 * and each page costs two pwrite calls into the WAL (frame header and page), one pread and one
 * pwrite when the WAL is copied into the file, and a pread when a spilled page is read back:
 * 39,800 calls against 15,600 with 16 KiB pages, for 3% more bytes on disk (docs/BENCHMARKS.md
 * section 69). On a virtual machine each call is dear. The size can only be chosen before the
 * file's first page is written, so an existing database keeps its own (SQLite ignores the
 * pragma there). */
#define NEW_PAGE_SIZE "16384"

/* A statement that may write several rows (the lineage's and the graph facts' 32-row upserts)
 * keeps a statement journal: the pages it changes, to undo it alone if it fails halfway. SQLite
 * spills that journal to a temporary file past 64 KiB, and a 32-row upsert into a table with two
 * indexes changes more: a 300k-record analyze wrote 185,000 extra pages to temporary files
 * (212,857 pwrite calls against 27,541, 0.2 s of system time, all in the checkpoint). Held in
 * memory up to 4 MiB, which bounds what one such statement costs. The setting is global and must
 * precede SQLite's initialisation; where something initialised it first, the default stays. */
#define STMT_JOURNAL_SPILL (4 << 20)

/* SQLite also counts every allocation it makes (sqlite3_memory_used, sqlite3_status), under a
 * process-wide mutex taken in each sqlite3_malloc and sqlite3_free. Nothing here reads those
 * counts; with the pipeline's connection out of serialized mode that mutex was most of the
 * locking left in a checkpoint (docs/BENCHMARKS.md section 63). Off, as global as the above. */
static void sqlite_setup(void)
{
    (void)sqlite3_config(SQLITE_CONFIG_STMTJRNL_SPILL, STMT_JOURNAL_SPILL);
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static int open_flags(const char *path, bool create, int extra, sqlite3 **out, ch_error *err)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    sqlite3 *db = NULL;
    int rc;
    *out = NULL;
    (void)pthread_once(&once, sqlite_setup);
    if (!create) {
        struct stat sb;
        if (stat(path, &sb) != 0)
            return ch_error_set(err, CH_ENOTFOUND, "%s: no such database", path);
    } else if ((rc = ch_sql_make_parents(path, err)) < 0) {
        return rc;
    }
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | extra;
    if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
        rc = ch_error_set(err, CH_EIO, "%s: cannot open database: %s", path,
                          db ? sqlite3_errmsg(db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(db, BUSY_MS);
    sqlite3_extended_result_codes(db, 1);
    /* journal_mode answers with a row; exec ignores it. A file that is not a database fails
     * here with "file is not a database". */
    if ((rc = ch_sql_exec(db, path, "PRAGMA page_size = " NEW_PAGE_SIZE, err)) < 0 ||
        (rc = set_wal(db, path, err)) < 0 ||
        (rc = ch_sql_exec(db, path, "PRAGMA synchronous = NORMAL", err)) < 0 ||
        (rc = ch_sql_exec(db, path, "PRAGMA foreign_keys = ON", err)) < 0)
        goto fail;
    *out = db;
    return 0;
fail:
    sqlite3_close_v2(db);
    return rc;
}

int ch_sql_open(const char *path, bool create, sqlite3 **out, ch_error *err)
{
    return open_flags(path, create, 0, out, err);
}

static int connect_flags(ch_sql *c, const char *path, bool create, int extra,
                         const ch_sql_schema *schema, ch_error *err)
{
    char def[PATH_MAX];
    int rc;
    memset(c, 0, sizeof *c);
    if (path == NULL) {
        if (ch_sql_default_path(def, sizeof def) < 0)
            return ch_error_set(err, CH_ELIMIT, "data directory path too long");
        path = def;
    }
    if ((rc = open_flags(path, create, extra, &c->db, err)) < 0)
        return rc;
    if ((c->path = ch_strdup(path)) == NULL) {
        ch_sql_close(c);
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    }
    if (schema != NULL && (rc = ch_sql_migrate(c, schema, err)) < 0) {
        ch_sql_close(c);
        return rc;
    }
    return 0;
}

int ch_sql_connect(ch_sql *c, const char *path, bool create, const ch_sql_schema *schema,
                   ch_error *err)
{
    return connect_flags(c, path, create, 0, schema, err);
}

int ch_sql_connect_one_thread(ch_sql *c, const char *path, bool create, const ch_sql_schema *schema,
                              ch_error *err)
{
    return connect_flags(c, path, create, SQLITE_OPEN_NOMUTEX, schema, err);
}

void ch_sql_close(ch_sql *c)
{
    if (c == NULL)
        return;
    if (c->tx_depth > 0 && c->db != NULL)
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close_v2(c->db);
    ch_free(c->path);
    memset(c, 0, sizeof *c);
}
