/*
 * resp_store.h - response plans in the coinhound database, and the entity links a plan reads.
 *
 * Plans are the "response" component of the file (core/sqlite_util.h): response_plans holds
 * each plan's JSON as it was proposed, its offense, who proposed it and when, and its status
 * (proposed, approved, running, done, failed, rolled back). A plan is never rewritten: its
 * steps are what was proposed and approved.
 *
 * Entity links are the offense store's table (offense/store.h); reading them here, by access
 * key, keeps the plan builder free of SQL and the offense store free of response code.
 *
 * Ownership: the store owns its connection; strings handed to callbacks are borrowed for the
 * call. ch_resp_store_get returns a ch_malloc'd JSON text the caller frees.
 */
#ifndef CH_RESPONSE_RESP_STORE_H
#define CH_RESPONSE_RESP_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"
#include "response/plan.h"

typedef struct ch_resp_store ch_resp_store;

/* Open the database at path (it must exist: plans are made from stored offenses). */
int ch_resp_store_open(const char *path, ch_resp_store **out, ch_error *err);
void ch_resp_store_close(ch_resp_store *s);

/* Instance links of a user made with one of its keys, for the plan (at most CH_RESP_MAX_LINKED
 * in all). *out is a ch_malloc'd array, each entry's strings in the same allocation. */
int ch_resp_store_linked(ch_resp_store *s, const ch_offense *o, ch_resp_linked **out, size_t *n,
                         ch_error *err);

/* Store a plan as proposed by actor at now_ms; sets p->id. */
int ch_resp_store_put(ch_resp_store *s, ch_resp_plan *p, const char *actor, int64_t now_ms,
                      ch_error *err);

/* A stored plan: its JSON (ch_malloc'd), offense and status. CH_ENOTFOUND when unknown. */
int ch_resp_store_get(ch_resp_store *s, int64_t id, char **json, int64_t *offense_id,
                      char status[32], ch_error *err);

/* Set a plan's status (proposed, approved, running, done, failed, rolled back). */
int ch_resp_store_status(ch_resp_store *s, int64_t id, const char *status, ch_error *err);

/* ---- execution state (response_steps, response_values) ----------------------------------- */

/* A step's state in a phase ("run" or "rollback"): 1 with state ("running", "done", "failed")
 * and the attempts so far, 0 when it never started. */
int ch_resp_step_get(ch_resp_store *s, int64_t plan, const char *step, const char *phase,
                     char state[16], int *attempts, ch_error *err);
/* Record a step's state (committed at once); "running" counts one more attempt. */
int ch_resp_step_set(ch_resp_store *s, int64_t plan, const char *step, const char *phase,
                     const char *state, const char *actor, int64_t now_ms, const char *error,
                     ch_error *err);
/* [{"step","phase","state","attempts","updated","actor","error"?}, ...] */
int ch_resp_steps_json(ch_resp_store *s, int64_t plan, ch_buf *b, ch_error *err);

/* A value the runner learnt for (account, region): 1 found (out NUL-terminated), 0 not. */
int ch_resp_value_get(ch_resp_store *s, int64_t plan, const char *account, const char *region,
                      const char *name, char *out, size_t cap, ch_error *err);
/* Record it; the first value recorded for a name stays. */
int ch_resp_value_put(ch_resp_store *s, int64_t plan, const char *account, const char *region,
                      const char *name, const char *value, ch_error *err);

/* Take (or renew, or with lease_ms 0 release) the lock of a plan's runs for holder
 * ("pid@host"): 1 taken, 0 held by another (named in other). A lock expires at its time, and
 * alive (may be NULL) says whether another holder still runs. */
int ch_resp_lock(ch_resp_store *s, int64_t plan, const char *holder, int64_t now_ms,
                 int64_t lease_ms, bool (*alive)(const char *holder), char *other, size_t cap,
                 ch_error *err);

/* ---- automatic response (response_auto) ---------------------------------------------------- */

/* 1 when automatic response already acted on (offense, rule), 0 not. */
int ch_resp_auto_seen(ch_resp_store *s, int64_t offense, const char *rule, ch_error *err);
/* Record (or update) what it did: the plan, whether it ran steps, and the outcome in words. */
int ch_resp_auto_put(ch_resp_store *s, int64_t offense, const char *rule, int64_t plan,
                     int64_t now_ms, bool ran, const char *outcome, ch_error *err);
/* Automatic runs started at or after since_ms (the rate limit counts them). */
int ch_resp_auto_runs_since(ch_resp_store *s, int64_t since_ms, ch_error *err);

#endif
