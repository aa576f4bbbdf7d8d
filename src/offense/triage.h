/*
 * triage.h - what analysts change on an offense through the API: status, assignment, closing
 * reason, follow-up flag, protection and notes, each change audited with its before and after.
 *
 * The pipeline owns the offense rows (offense/store.h upserts them at every checkpoint); the
 * analysts' part lives beside them in offense_triage, so that a checkpoint never overwrites an
 * assignment. The one shared column is the status: the pipeline's upsert keeps 'hidden' and
 * 'closed' once they are in the store, and the server applies the same change to its in-memory
 * offense under the pipeline lock (see server/api.c), so a later checkpoint writes it back.
 *
 * Concurrency control: every change bumps the offense's triage version. Its ETag is
 * "\"<version>-<status>\"" (ch_triage_etag): a status changed by the CLI (`offenses close`)
 * changes it too. An update names the version it read; a different one is a conflict (the API
 * answers 412), so two analysts never overwrite each other silently.
 *
 * Each change and its audit entry (server/audit.h) are one IMMEDIATE transaction: both are in
 * the database or neither is. Statements are prepared with bound parameters only.
 *
 * Users by risk are read here too: they are rows of the same component (users, user_timeline).
 *
 * Ownership: every function borrows the store; JSON goes into the caller's ch_buf.
 */
#ifndef CH_OFFENSE_TRIAGE_H
#define CH_OFFENSE_TRIAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"
#include "offense/offense.h"
#include "offense/store.h"
#include "server/audit.h"

#define CH_TRIAGE_NAME_MAX 128 /* assigned_to, closing reason text */
#define CH_TRIAGE_NOTE_MAX CH_OFFENSE_MAX_NOTE_LEN
#define CH_TRIAGE_ETAG_MAX 48

typedef struct ch_offense_triage {
    int64_t offense_id;
    int64_t version; /* 0: never changed through the API */
    ch_offense_status status;
    char assigned_to[CH_TRIAGE_NAME_MAX + 1]; /* "" = nobody */
    char closing_reason[CH_TRIAGE_NAME_MAX + 1];
    bool follow_up, protected_;
    int64_t updated; /* ms; 0 = never */
    char updated_by[CH_AUDIT_FIELD_MAX + 1];
} ch_offense_triage;

/* What an update changes: only the members whose set_ flag is true. */
typedef struct ch_triage_change {
    bool set_status, set_assigned, set_reason, set_follow_up, set_protected;
    ch_offense_status status;
    const char *assigned_to; /* NULL or "" = unassign */
    const char *closing_reason;
    bool follow_up, protected_;
} ch_triage_change;

/* The triage state of offense id (defaults when it was never changed). CH_ENOTFOUND when the
 * store has no such offense. */
int ch_triage_get(ch_store *s, int64_t id, ch_offense_triage *out, ch_error *err);
/* Every offense's triage row, ordered by offense id (only those with a row); *out ch_malloc'd. */
int ch_triage_list(ch_store *s, ch_offense_triage **out, size_t *n, ch_error *err);
/* Look a triage row up in a list from ch_triage_list (binary search), NULL when absent. */
const ch_offense_triage *ch_triage_find(const ch_offense_triage *v, size_t n, int64_t id);

/* The ETag of a triage state, quoted, into buf (cap >= CH_TRIAGE_ETAG_MAX). */
void ch_triage_etag(const ch_offense_triage *t, char *buf, size_t cap);

/* Apply c to offense id if its current ETag equals if_match. *conflict is set (and nothing
 * changed, return 0) when it does not. CH_ENOTFOUND for no such offense; CH_EUSAGE with a
 * message fit to show for a change that is not allowed: reopening a closed offense, closing
 * without a known closing reason, a reason on an offense that is not being closed, a too long
 * name, changing a protected offense's status without unprotecting it in the same request.
 * On success *after (may be NULL) holds the new state. */
int ch_triage_update(ch_store *s, int64_t id, const char *if_match, const ch_triage_change *c,
                     const ch_actor *who, int64_t now_ms, bool *conflict, ch_offense_triage *after,
                     ch_error *err);

/* Add a note by who->name; returns its id (> 0). CH_ENOTFOUND, CH_EUSAGE for an empty text or
 * one over CH_TRIAGE_NOTE_MAX bytes. */
int64_t ch_triage_note_add(ch_store *s, int64_t id, const char *text, const ch_actor *who,
                           int64_t now_ms, ch_error *err);
/* The notes of offense id as a JSON array [{"id","time","author","status","text"}], oldest
 * first. CH_ENOTFOUND when there is no such offense. */
int ch_triage_notes_json(ch_store *s, int64_t id, ch_buf *b, ch_error *err);
/* [{"id","text"}] */
int ch_triage_reasons_json(ch_store *s, ch_buf *b, ch_error *err);

/* Users by risk, highest first: [{"name","risk","updated"}], offset/limit paging; *total is
 * the number of users. */
int ch_triage_users_json(ch_store *s, size_t offset, size_t limit, ch_buf *b, size_t *total,
                         ch_error *err);
/* One user: {"name","risk","updated","recent_hits":[{"time","rule","delta","risk_after"}]},
 * the last `hits` timeline entries, newest first. CH_ENOTFOUND for an unknown user. */
int ch_triage_user_json(ch_store *s, const char *name, size_t hits, ch_buf *b, ch_error *err);

#endif
