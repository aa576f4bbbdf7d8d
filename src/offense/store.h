/*
 * store.h - offenses and user risk in SQLite, so that `coinhound offenses list|show` work after
 * an analysis run and a second run over new files extends the open offenses instead of
 * duplicating them.
 *
 * A run goes: ch_store_open, ch_store_load_active (open and hidden offenses into the run's
 * manager: new hits on their index values chain into them) and ch_store_load_users (risk carries
 * on decaying from where it was), the analysis, then ch_store_save (everything changed, in one
 * transaction). Closed offenses are never loaded for chaining, so they are never reopened.
 *
 * Entity links (instance, interface, address -> launching user, see enrich/entity.h) are kept
 * too, in entity_links: logs arrive over time, and a later run over the DNS queries and flows of
 * instances launched in an earlier run's logs must still name the user. ch_store_load_links
 * after ch_entity_new, ch_store_save_links at the end of the run.
 *
 * Every statement is prepared with bound parameters; no SQL is ever built from input. The schema
 * is the "offenses" component of the file (core/sqlite_util.h: a row in schema_versions, upgraded
 * by a table of migrations; a file from before that scheme, versioned by PRAGMA user_version, is
 * upgraded on open); a database newer than this build is refused rather than guessed at. The
 * journal is WAL, so `offenses list` can read while a run writes.
 *
 * Offense ids come from the database: an offense created in memory gets its id when it is first
 * saved, inside the write transaction (see ch_store_save), so concurrent writers never collide.
 *
 * Ownership: the store owns its connection; ch_store_close releases it. Functions that load
 * fill a caller-owned ch_offenses / ch_risk.
 */
#ifndef CH_OFFENSE_STORE_H
#define CH_OFFENSE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/sqlite_util.h"
#include "enrich/entity.h"
#include "offense/offense.h"
#include "uba/risk.h"

#define CH_STORE_SCHEMA_VERSION 4
#define CH_STORE_DEFAULT_NAME CH_SQL_DEFAULT_NAME

typedef struct ch_store ch_store;

/* The default database path, "<ch_data_dir()>/coinhound.db", into buf. CH_ELIMIT if too long. */
int ch_store_default_path(char *buf, size_t n);

/* Open (creating it and its parent directories) the database at path, or the default path
 * when path is NULL, and bring its schema up to date. CH_EIO when it cannot be opened or is
 * not a coinhound database, CH_EUSAGE when its schema is newer than this build. */
int ch_store_open(const char *path, ch_store **out, ch_error *err);
/* The same for a store that one thread at a time uses (core/sqlite_util.h
 * ch_sql_connect_one_thread: SQLite's multi-thread mode, no lock of the connection's mutex in
 * every bind and step). The caller hands the store from thread to thread only with a
 * happens-before between the uses (a thread's start, a join, a mutex). */
int ch_store_open_one_thread(const char *path, ch_store **out, ch_error *err);
void ch_store_close(ch_store *s);
const char *ch_store_path(const ch_store *s);
/* The connection, for the modules that keep tables of this component (offense/triage.h). */
ch_sql *ch_store_sql(ch_store *s);

/* Load every active (open or hidden) offense into m, which must hold no offenses yet, and raise
 * m's next id past every id in the store. Returns the number loaded. */
int ch_store_load_active(ch_store *s, ch_offenses *m, ch_error *err);
/* Load every user's stored risk into r (timelines stay in the store). Returns the number. */
int ch_store_load_users(ch_store *s, ch_risk *r, ch_error *err);

/* Save every changed offense (with its rules, event ids, new notes) and, when r is not NULL,
 * every changed user (and new timeline entries), in one transaction: all or nothing. A status
 * an analyst set in the store meanwhile wins over the run's when it is further along
 * (open < hidden < closed). now_ms stamps the rows' update time. */
int ch_store_save(ch_store *s, ch_offenses *m, ch_risk *r, int64_t now_ms, ch_error *err);

/* Transactions: everything saved between ch_store_begin and ch_store_commit is one IMMEDIATE
 * transaction (the pipeline's checkpoint: offenses, users, links, engine state, processed
 * record ids and input positions, all or nothing). They nest: the save functions below open
 * their own when none is open and join the caller's otherwise. After a failed step inside an
 * outer transaction, ch_store_rollback marks it so that the outer commit rolls back too. */
int ch_store_begin(ch_store *s, ch_error *err);
int ch_store_commit(ch_store *s, ch_error *err);
void ch_store_rollback(ch_store *s);
bool ch_store_in_transaction(const ch_store *s);

/* Named blobs of pipeline state (engine state, input positions): put replaces. get returns a
 * ch_malloc'd copy (NUL-terminated past *n, for text) the caller frees, or CH_ENOTFOUND. */
int ch_store_put_state(ch_store *s, const char *name, const void *value, size_t n, int64_t now_ms,
                       ch_error *err);
int ch_store_get_state(ch_store *s, const char *name, void **value, size_t *n, ch_error *err);

/* Links saved and loaded at most (the most recently used ones): the table's default cap. */
#define CH_STORE_MAX_LINKS CH_ENTITY_DEFAULT_CAP

/* Upsert the live links of t (at most max, most recently used first; 0 = CH_STORE_MAX_LINKS)
 * and drop stored links beyond the max most recently used, in one transaction. Returns the
 * number saved. */
int ch_store_save_links(ch_store *s, const ch_entity *t, size_t max, ch_error *err);
/* Import the max (0 = CH_STORE_MAX_LINKS) most recently used stored links into t, oldest first,
 * expiry judged against the newest stored use (ch_entity_import). Returns the number restored. */
int ch_store_load_links(ch_store *s, ch_entity *t, size_t max, ch_error *err);

/* Load the offenses whose status is in status_mask (CH_OFFENSE_MASK_*) into m (empty).
 * Returns the number loaded. */
int ch_store_load(ch_store *s, unsigned status_mask, ch_offenses *m, ch_error *err);
/* Load one offense into m (empty); CH_ENOTFOUND when there is none with that id. */
int ch_store_load_one(ch_store *s, int64_t id, ch_offenses *m, ch_error *err);

/* Set an offense's status, with an optional note, in one transaction. CH_ENOTFOUND when there
 * is no such offense; CH_EUSAGE when it is closed and st is not (closing is final). */
int ch_store_set_status(ch_store *s, int64_t id, ch_offense_status st, const char *note,
                        int64_t now_ms, ch_error *err);

/* One user's stored timeline, oldest first, into r (as that user's timeline; the user's stored
 * risk too). CH_ENOTFOUND when the user is unknown. */
int ch_store_load_user(ch_store *s, const char *name, size_t name_len, ch_risk *r, ch_error *err);

#endif
