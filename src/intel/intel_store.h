/*
 * intel_store.h - reference sets, STIX indicators and TAXII polling state in SQLite, in the same
 * database file as the offense store (offense/store.h) but through a connection and tables of
 * its own, so that `intel load`, `intel pull`, `refset ...` and `analyze --db` all meet one file.
 *
 * Tables (the "intel" component of the file: its version is a row of schema_versions and its
 * migrations are run on open, as the offense store's are, core/sqlite_util.h):
 *   refsets(name, type, flags, shareable, created)
 *   refset_elements(set_id, value, source, indicator, first_seen, last_seen, valid_from, expiry,
 *                   added)     one row per element, unique on (set_id, value, source, indicator);
 *                              value is the set's normalized entry text (ch_refset_elem_text);
 *                              added is when the row was last written (TAXII date_added order)
 *   indicators(id, modified, created, name, types, labels, confidence, created_by_ref,
 *              created_by, feed, pattern, valid_from, valid_until, revoked, elements, unsupported,
 *              modified_sub)   modified_sub: microseconds past modified's millisecond
 *   identities(id, name)
 *   taxii_state(url, collection, added_after)
 *   taxii_published(collection, id, version, date_added, revoked, json)
 *                              what `intel serve` last published per object: date_added is when
 *                              that version was first served (TAXII's date_added), and the json
 *                              lets an object that left its collection be served as revoked
 * Times are ms since the epoch; CH_REFSET_ALWAYS / CH_REFSET_NEVER are stored as NULL.
 * Every statement is prepared with bound parameters; values from feeds never touch SQL text.
 *
 * Ownership: ch_intel_store_open allocates the store (and its connection), ch_intel_store_close
 * frees it. Callbacks receive strings that borrow from SQLite and are valid only during the call.
 * Threads: one thread at a time per store; other processes may use the file concurrently (WAL,
 * busy timeout 5 s).
 */
#ifndef CH_INTEL_INTEL_STORE_H
#define CH_INTEL_INTEL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"
#include "enrich/refset.h"
#include "intel/stix.h"

#define CH_INTEL_SCHEMA_VERSION 3

typedef struct ch_intel_store ch_intel_store;

/* Open (creating it and its parent directory) the database at path, or the default one
 * (<ch_data_dir()>/coinhound.db) when path is NULL, and create the intel tables if missing.
 * CH_EIO when it cannot be opened or is not a database; CH_EUSAGE when its intel schema is
 * newer than this build. */
int ch_intel_store_open(const char *path, ch_intel_store **out, ch_error *err);
/* Same, but never creates the file: CH_ENOTFOUND when it does not exist (read-only commands
 * must not turn a mistyped --db into a new empty database). */
int ch_intel_store_open_existing(const char *path, ch_intel_store **out, ch_error *err);
void ch_intel_store_close(ch_intel_store *s);
const char *ch_intel_store_path(const ch_intel_store *s);

/* Transactions nest (ch_sql_begin, core/sqlite_util.h): begin opens an IMMEDIATE transaction
 * or joins the open one, and the outermost commit commits; a rollback inside another
 * transaction makes its outer commit roll back too. Functions called inside one join it;
 * outside one, each writing function runs in its own. */
int ch_intel_store_begin(ch_intel_store *s, ch_error *err);
int ch_intel_store_commit(ch_intel_store *s, ch_error *err);
void ch_intel_store_rollback(ch_intel_store *s);
bool ch_intel_store_in_transaction(const ch_intel_store *s);

/* ---- sets --------------------------------------------------------------------------------- */

typedef struct ch_intel_set_info {
    char name[CH_REFSET_NAME_MAX + 1];
    ch_refset_type type;
    uint32_t flags; /* CH_REFSET_NOCASE, CH_REFSET_EXACT */
    bool shareable; /* published by the TAXII server */
    int64_t count;  /* stored elements (expired ones included until purged) */
} ch_intel_set_info;

/* Make the set if absent. CH_EUSAGE when it exists with another type (err says which). */
int ch_intel_store_set_ensure(ch_intel_store *s, const char *name, ch_refset_type type,
                              uint32_t flags, ch_error *err);
/* CH_ENOTFOUND when there is no such set. */
int ch_intel_store_set_get(ch_intel_store *s, const char *name, ch_intel_set_info *out,
                           ch_error *err);
/* Every set, by name, into *out (caller frees with ch_free); *n their number. */
int ch_intel_store_set_list(ch_intel_store *s, ch_intel_set_info **out, size_t *n, ch_error *err);
int ch_intel_store_set_share(ch_intel_store *s, const char *name, bool shareable, ch_error *err);
/* Delete a set with its elements. CH_ENOTFOUND when absent. */
int ch_intel_store_set_drop(ch_intel_store *s, const char *name, ch_error *err);

/* ---- elements ----------------------------------------------------------------------------- */

/* Insert or refresh one element (value: the normalized entry text). A refresh of the same
 * (set, value, source, indicator) keeps the earliest first_seen and the latest last_seen and
 * takes the new validity window. now_ms stamps `added`. The set must exist (CH_ENOTFOUND). */
int ch_intel_store_elem_put(ch_intel_store *s, const char *set, const char *value,
                            const ch_refset_meta *meta, int64_t now_ms, ch_error *err);
/* Remove the elements of (set, value) from source and indicator (NULL = any). Returns how many
 * (> 0) or CH_ENOTFOUND. */
int ch_intel_store_elem_remove(ch_intel_store *s, const char *set, const char *value,
                               const char *source, const char *indicator, ch_error *err);
/* Delete the elements whose expiry <= now_ms; returns how many. */
int ch_intel_store_purge_expired(ch_intel_store *s, int64_t now_ms, ch_error *err);

/* Visit elements, by set then value, or (by_added) in `added` order for TAXII paging.
 * set NULL = every set; only_shareable limits to shareable sets; added_after (ms, exclusive;
 * INT64_MIN = all); limit 0 = all. The callback returns 0 to go on, > 0 to stop (returned
 * as is), < 0 an error (returned as is). */
typedef struct ch_intel_elem_row {
    const char *set;
    ch_refset_type type;
    const char *value;
    ch_refset_meta meta; /* source, indicator, times */
    int64_t added;
} ch_intel_elem_row;
typedef int (*ch_intel_elem_cb)(void *arg, const ch_intel_elem_row *row);
typedef struct ch_intel_elem_query {
    const char *set;
    bool only_shareable;
    bool by_added;
    int64_t added_after;
    size_t limit;
} ch_intel_elem_query;
int ch_intel_store_each_elem(ch_intel_store *s, const ch_intel_elem_query *q, ch_intel_elem_cb cb,
                             void *arg, ch_error *err);

/* Load every stored set into r (ch_refsets_ensure by name and type, then each element that has
 * not expired at now_ms; pass INT64_MIN to load all). Returns the number of elements loaded
 * (bad stored values are skipped). The lead calls this from `analyze --db`. */
int ch_intel_store_load_refsets(ch_intel_store *s, ch_refsets *r, int64_t now_ms, ch_error *err);
/* Same for one set (made in r if absent). CH_ENOTFOUND when the store has no such set. */
int ch_intel_store_load_refset(ch_intel_store *s, const char *name, ch_refsets *r, int64_t now_ms,
                               ch_error *err);

/* ---- indicators --------------------------------------------------------------------------- */

/* Insert or replace the indicator row of ind->id. */
int ch_intel_store_indicator_put(ch_intel_store *s, const ch_intel_indicator *ind, ch_error *err);
/* The stored version of id: its modified time (ms, and the microseconds past it in
 * *modified_sub unless NULL) and revoked flag. CH_ENOTFOUND when absent. */
int ch_intel_store_indicator_version(ch_intel_store *s, const char *id, int64_t *modified,
                                     int32_t *modified_sub, bool *revoked, ch_error *err);
/* Delete every element that indicator contributed; calls cb (may be NULL) with each first, so
 * that in-memory sets can drop them too. Returns how many were deleted. */
int ch_intel_store_indicator_elems_remove(ch_intel_store *s, const char *id, ch_intel_elem_cb cb,
                                          void *arg, ch_error *err);
/* Load every stored indicator and identity into c (for evidence: ch_intel_indicator_lookup).
 * Returns the number of indicators. */
int ch_intel_store_load_catalog(ch_intel_store *s, ch_intel_catalog *c, ch_error *err);
int ch_intel_store_identity_put(ch_intel_store *s, const char *id, const char *name, ch_error *err);

/* The name of a stored identity into buf; CH_ENOTFOUND when unknown. */
int ch_intel_store_identity_get(ch_intel_store *s, const char *id, char *buf, size_t cap,
                                ch_error *err);

/* ---- values ------------------------------------------------------------------------------- */

/* The normalized entry text of a value for a set of that type, exactly as the set itself would
 * write it (ch_refset_elem_text): "10.0.0.0/8" for "10.1.2.3/8", "example.com" for
 * "*.Example.COM.". CH_EPARSE when the text is no value of that type; CH_ELIMIT when cap is too
 * small. The _in form reuses an empty scratch set of that type (one allocation less per value). */
int ch_intel_normalize_value(ch_refset_type type, const char *text, size_t len, char *out,
                             size_t cap, ch_error *err);
int ch_intel_normalize_in(ch_refset *scratch, const char *text, size_t len, char *out, size_t cap,
                          ch_error *err);

/* ---- TAXII polling state ------------------------------------------------------------------ */

/* The added_after remembered for (api root url, collection id), copied into buf (NUL-terminated;
 * CH_ELIMIT if cap is too small). CH_ENOTFOUND when the collection was never polled. */
int ch_intel_store_taxii_get(ch_intel_store *s, const char *url, const char *collection, char *buf,
                             size_t cap, ch_error *err);
int ch_intel_store_taxii_set(ch_intel_store *s, const char *url, const char *collection,
                             const char *added_after, ch_error *err);

/* ---- the TAXII publication ledger (taxii_publish.c) ---------------------------------------- */

/* One published object. Strings borrow (from the caller, or from SQLite during a callback). */
typedef struct ch_intel_pub_row {
    const char *collection; /* the collection id */
    const char *id;         /* the STIX id */
    int64_t version;        /* its `modified`, ms */
    int64_t date_added;     /* ms: when this version was first served */
    bool revoked;
    const char *json; /* the object as served */
    size_t json_len;
} ch_intel_pub_row;
typedef int (*ch_intel_pub_cb)(void *arg, const ch_intel_pub_row *row);

/* version, date_added and revoked of (collection, id) into out (strings left NULL), and its
 * JSON appended to json unless NULL; CH_ENOTFOUND when it was never published. */
int ch_intel_store_pub_get(ch_intel_store *s, const char *collection, const char *id,
                           ch_intel_pub_row *out, ch_buf *json, ch_error *err);
int ch_intel_store_pub_put(ch_intel_store *s, const ch_intel_pub_row *row, ch_error *err);
/* Every row of a collection, by id; the callback returns 0 to go on, anything else stops
 * (and is returned). */
int ch_intel_store_pub_each(ch_intel_store *s, const char *collection, ch_intel_pub_cb cb,
                            void *arg, ch_error *err);
/* The latest date_added of a collection (INT64_MIN when it has none). */
int ch_intel_store_pub_last_added(ch_intel_store *s, const char *collection, int64_t *out,
                                  ch_error *err);
/* Forget revocations served before revoked_before (ms): the ledger would otherwise grow with
 * every value ever removed. Returns how many rows were deleted. */
int ch_intel_store_pub_purge(ch_intel_store *s, int64_t revoked_before, ch_error *err);

/* Retro-hunts waiting (serve): values an API call added to an ip or domain set, queued in the
 * transaction that adds them; the server reads them in the order queued (at most max), hunts,
 * and clears them up to the last id it hunted once the hunt's results are committed. A crash in
 * between runs the hunt again, which raises nothing twice (store/retro.h). */
typedef struct ch_intel_retro_row {
    int64_t id;
    const char *set;
    ch_refset_type type;
    const char *value;
} ch_intel_retro_row;
typedef int (*ch_intel_retro_cb)(void *arg, const ch_intel_retro_row *row);
int ch_intel_store_retro_queue(ch_intel_store *s, const char *set, ch_refset_type type,
                               const char *value, int64_t now_ms, ch_error *err);
int ch_intel_store_retro_each(ch_intel_store *s, size_t max, ch_intel_retro_cb cb, void *arg,
                              ch_error *err);
int ch_intel_store_retro_done(ch_intel_store *s, int64_t upto_id, ch_error *err);

#endif
