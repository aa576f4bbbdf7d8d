/*
 * audit.h - the append-only audit trail: who changed what, when, from where, and the object's
 * state before and after.
 *
 * Every change an operator or the product makes on someone's behalf is one entry: offense
 * updates, notes, reference set changes, rule toggles, accounts and tokens, logins and failed
 * logins, configuration reloads. Entries live in the audit_log table of the coinhound database.
 * SQLite triggers refuse UPDATE and DELETE on it (RAISE(ABORT)), so no statement of this
 * program, a route or a mistaken maintenance script can rewrite history; someone holding the
 * file can still drop the table, which is what file permissions and backups are for.
 *
 * Two ways to write:
 *   - ch_audit_open + ch_audit_append: an audit handle with its own connection, for code that
 *     has no SQLite connection of its own to that file;
 *   - ch_audit_append_db: on a connection the caller already holds, so that the entry commits
 *     in the same transaction as the change it describes (src/server/accounts.c does this: an
 *     account change and its audit entry are both there or both absent).
 * before/after are JSON texts (a CHECK constraint with json_valid refuses anything else) or
 * NULL; they describe state, never secrets (no password hashes, tokens or session ids).
 *
 * Versioning: the table is created with CREATE TABLE IF NOT EXISTS and its version kept as a
 * row ('audit_schema') of auth_meta, the small key-value table the accounts module shares; the
 * offense store owns PRAGMA user_version.
 *
 * Ownership: ch_audit owns its connection (ch_audit_close). Entry strings handed to a
 * ch_audit_fn are borrowed for the duration of the call.
 */
#ifndef CH_SERVER_AUDIT_H
#define CH_SERVER_AUDIT_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"

#define CH_AUDIT_SCHEMA_VERSION 1
/* Caps on what one entry may hold: the writer refuses (CH_ELIMIT) longer fields. */
#define CH_AUDIT_FIELD_MAX 256       /* actor, source, action, object */
#define CH_AUDIT_JSON_MAX (64 << 10) /* before, after */

/* Who did it and from where: the console or API account and the client address, or the local
 * OS user and "cli" for the command line, or "system" for the product itself. */
typedef struct ch_actor {
    const char *name;
    const char *source;
} ch_actor;

/* One entry. Strings are borrowed; before/after may be NULL. id is set by the store. */
typedef struct ch_audit_entry {
    int64_t id;
    int64_t ts; /* ms since the epoch, UTC */
    const char *actor, *source, *action, *object;
    const char *before, *after;
} ch_audit_entry;

typedef struct ch_audit ch_audit;

/* Open the database at path (NULL: the default path of offense/store.h) and make the audit
 * table when missing. Without create, a missing file is CH_ENOTFOUND. */
int ch_audit_open(const char *path, bool create, ch_audit **out, ch_error *err);
void ch_audit_close(ch_audit *a);

/* Append e (e->id is ignored). CH_EUSAGE for a missing actor, source or action, or before /
 * after that is not JSON; CH_ELIMIT past the caps above. */
int ch_audit_append(ch_audit *a, const ch_audit_entry *e, ch_error *err);

/* Entries with ts >= since_ms, oldest first, at most limit (0 = all), each handed to fn; a
 * negative return from fn stops the walk and is returned. Returns the number handed over. */
typedef int (*ch_audit_fn)(void *ud, const ch_audit_entry *e);
int ch_audit_list(ch_audit *a, int64_t since_ms, size_t limit, ch_audit_fn fn, void *ud,
                  ch_error *err);

/* The same on a connection the caller holds (path is for messages). ch_audit_schema_db makes
 * the table, its index and triggers (idempotent; run it inside the caller's schema
 * transaction). */
int ch_audit_schema_db(sqlite3 *db, const char *path, ch_error *err);
int ch_audit_append_db(sqlite3 *db, const char *path, const ch_audit_entry *e, ch_error *err);
int ch_audit_list_db(sqlite3 *db, const char *path, int64_t since_ms, size_t limit, ch_audit_fn fn,
                     void *ud, ch_error *err);

/* One entry as a JSON object: {"id","time","actor","source","action","object","before",
 * "after"}, before/after embedded as JSON (null when absent). */
int ch_audit_entry_json(ch_buf *b, const ch_audit_entry *e);

#endif
