/*
 * obs_store.h - the offense store's tables of observables (offense/observables.h), a component
 * of its own in the database file ("offense_observables" in schema_versions) so that it
 * versions apart from the offense tables. Called by offense/store.c only: after the offense
 * component is migrated (ch__obs_migrate), per loaded offense (ch__obs_load) and per saved
 * dirty offense inside the save's transaction (ch__obs_save).
 */
#ifndef CH_OFFENSE_OBS_STORE_H
#define CH_OFFENSE_OBS_STORE_H

#include "core/error.h"
#include "core/sqlite_util.h"
#include "offense/offense.h"

int ch__obs_migrate(ch_sql *c, ch_error *err);
/* Load the stored observables of o (already created with its final id). */
int ch__obs_load(ch_sql *c, ch_offense *o, ch_error *err);
/* Upsert o's observables when they changed; the caller holds the transaction. st: the two
 * statements of a save, NULL at first, prepared here when first needed and kept by the caller
 * for its next offenses (preparing them per offense was most of a save of few observables); the
 * caller finalizes them (sqlite3_finalize of NULL is a no-op). */
#define CH__OBS_STMTS 2
int ch__obs_save(ch_sql *c, sqlite3_stmt **st, ch_offense *o, ch_error *err);

#endif
