/*
 * rule_state.h - which rules an operator turned off, kept in the coinhound database so that the
 * choice outlives the process: `coinhound rules disable ID --db FILE`, `POST /api/v1/rules/{id}`
 * and every pipeline opened on that database (analyze --db, serve, and serve's reloads) read the
 * same rows.
 *
 * A rule without a row is enabled: a pack's new rule runs the day it ships, and a row naming a
 * rule the pack no longer has is kept (the rule may come back) and ignored. The table is the
 * "rules" component of the file's schema_versions (core/sqlite_util.h), one migration so far:
 *     rule_state(id TEXT PRIMARY KEY, enabled INTEGER, changed_ms INTEGER, changed_by TEXT)
 *
 * The flag is applied to the running engine (rules/engine.h ch_engine_set_enabled), never to
 * the compiled ruleset, which stays read-only.
 *
 * Ownership: every function borrows the connection; strings handed to a callback are borrowed
 * for the call.
 */
#ifndef CH_RULES_RULE_STATE_H
#define CH_RULES_RULE_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"
#include "core/sqlite_util.h"

#define CH_RULE_STATE_SCHEMA_VERSION 1

struct ch_ruleset;
struct ch_engine;

/* Bring the table up to date on c (idempotent; ch_sql_migrate). */
int ch_rule_state_schema(ch_sql *c, ch_error *err);
/* Whether rule id is enabled (true when it has no row). */
int ch_rule_state_get(ch_sql *c, const char *id, bool *enabled, ch_error *err);
/* Record id's state, who changed it and when (ms since the epoch). *was (may be NULL) gets the
 * state before. */
int ch_rule_state_set(ch_sql *c, const char *id, bool enabled, int64_t when_ms, const char *who,
                      bool *was, ch_error *err);
/* Every row, handed to fn; a negative return from fn stops and is returned. Returns the rows. */
typedef int (*ch_rule_state_fn)(void *ud, const char *id, bool enabled, int64_t when_ms,
                                const char *who);
int ch_rule_state_each(ch_sql *c, ch_rule_state_fn fn, void *ud, ch_error *err);
/* Apply the stored state to engine e running ruleset rs: every rule of rs is set enabled or
 * disabled as the table says. Returns the number of rules disabled. */
int ch_rule_state_apply(ch_sql *c, const struct ch_ruleset *rs, struct ch_engine *e, ch_error *err);

#endif
