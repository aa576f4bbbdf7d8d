/*
 * rule_state.c - the rule_state table (rule_state.h). A handful of rows at most, so every
 * function is one prepared statement; ch_rule_state_apply reads every row once and looks each up
 * in the ruleset by id: O(rows x rules), a few thousand comparisons at a reload.
 */
#include "rules/rule_state.h"

#include <string.h>

#include "rules/engine.h"
#include "rules/rule.h"

static const char *const migrations[] = {
    "CREATE TABLE IF NOT EXISTS rule_state ("
    " id TEXT PRIMARY KEY, enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)),"
    " changed_ms INTEGER NOT NULL, changed_by TEXT NOT NULL) WITHOUT ROWID;",
};

_Static_assert(sizeof migrations / sizeof migrations[0] == CH_RULE_STATE_SCHEMA_VERSION,
               "one migration per schema version");

static const ch_sql_schema schema = {
    .component = "rules",
    .migrations = migrations,
    .version = CH_RULE_STATE_SCHEMA_VERSION,
};

int ch_rule_state_schema(ch_sql *c, ch_error *err) { return ch_sql_migrate(c, &schema, err); }

int ch_rule_state_get(ch_sql *c, const char *id, bool *enabled, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    *enabled = true;
    if (ch_sql_prepare(c->db, c->path, "SELECT enabled FROM rule_state WHERE id = ?1", &st, err) <
        0)
        return CH_EIO;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int step = sqlite3_step(st), rc = 0;
    if (step == SQLITE_ROW)
        *enabled = sqlite3_column_int(st, 0) != 0;
    else if (step != SQLITE_DONE)
        rc = ch_sql_error(c->db, c->path, err, "reading a rule's state");
    sqlite3_finalize(st);
    return rc;
}

int ch_rule_state_set(ch_sql *c, const char *id, bool enabled, int64_t when_ms, const char *who,
                      bool *was, ch_error *err)
{
    int rc = ch_sql_begin(c, err);
    if (rc < 0)
        return rc;
    bool before = true;
    sqlite3_stmt *st = NULL;
    if ((rc = ch_rule_state_get(c, id, &before, err)) < 0)
        goto fail;
    if (ch_sql_prepare(c->db, c->path,
                       "INSERT INTO rule_state (id, enabled, changed_ms, changed_by)"
                       " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (id) DO UPDATE SET"
                       " enabled = excluded.enabled, changed_ms = excluded.changed_ms,"
                       " changed_by = excluded.changed_by",
                       &st, err) < 0) {
        rc = CH_EIO;
        goto fail;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, enabled ? 1 : 0);
    sqlite3_bind_int64(st, 3, when_ms);
    sqlite3_bind_text(st, 4, who ? who : "", -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = ch_sql_error(c->db, c->path, err, "recording a rule's state");
        goto fail;
    }
    sqlite3_finalize(st);
    if ((rc = ch_sql_commit(c, err)) < 0)
        return rc;
    if (was != NULL)
        *was = before;
    return 0;
fail:
    sqlite3_finalize(st);
    ch_sql_rollback(c);
    return rc;
}

int ch_rule_state_each(ch_sql *c, ch_rule_state_fn fn, void *ud, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    if (ch_sql_prepare(c->db, c->path,
                       "SELECT id, enabled, changed_ms, changed_by FROM rule_state ORDER BY id",
                       &st, err) < 0)
        return CH_EIO;
    int rc = 0, n = 0, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if ((rc = fn(ud, ch_sql_col_text(st, 0), sqlite3_column_int(st, 1) != 0,
                     sqlite3_column_int64(st, 2), ch_sql_col_text(st, 3))) < 0)
            break;
        n++;
    }
    if (rc >= 0 && step != SQLITE_DONE && step != SQLITE_ROW)
        rc = ch_sql_error(c->db, c->path, err, "reading the rules' state");
    sqlite3_finalize(st);
    return rc < 0 ? rc : n;
}

typedef struct apply_ctx {
    const ch_ruleset *rs;
    ch_engine *e;
    int disabled;
} apply_ctx;

static int apply_one(void *ud, const char *id, bool enabled, int64_t when_ms, const char *who)
{
    (void)when_ms;
    (void)who;
    apply_ctx *a = ud;
    int i = ch_ruleset_find(a->rs, id);
    if (i >= 0) {
        ch_engine_set_enabled(a->e, (uint32_t)i, enabled);
        a->disabled += !enabled;
    }
    return 0;
}

int ch_rule_state_apply(ch_sql *c, const ch_ruleset *rs, ch_engine *e, ch_error *err)
{
    int rc = ch_rule_state_schema(c, err);
    if (rc < 0)
        return rc;
    for (uint32_t i = 0; i < rs->n; i++)
        ch_engine_set_enabled(e, i, true);
    apply_ctx a = {rs, e, 0};
    rc = ch_rule_state_each(c, apply_one, &a, err);
    return rc < 0 ? rc : a.disabled;
}
