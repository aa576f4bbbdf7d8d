/*
 * resp_store.c - response plans in SQLite and the entity-link query (see resp_store.h). Every
 * statement is constant text with bound parameters.
 */
#include "response/resp_store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/mem.h"
#include "core/sqlite_util.h"
#include "offense/observables.h"

struct ch_resp_store {
    ch_sql sql;
};

static const char *const migrations[] = {
    /* 0 -> 1 */
    "CREATE TABLE response_plans ("
    " id INTEGER PRIMARY KEY, offense_id INTEGER NOT NULL, created INTEGER NOT NULL,"
    " actor TEXT NOT NULL, status TEXT NOT NULL CHECK (status IN ('proposed', 'approved',"
    " 'running', 'done', 'failed', 'rolled back')), plan TEXT NOT NULL CHECK (json_valid(plan)));"
    "CREATE INDEX response_plans_offense ON response_plans (offense_id);",
    /* 1 -> 2: execution. A step's state is written before its call is sent ('running') and
     * after its answer ('done', 'failed'), each in its own commit, so a run stopped anywhere
     * resumes without repeating a done step or losing one. Values are what the runner learnt
     * from the account (the VPC of the instances, the ids earlier steps made): the first one
     * recorded for a name wins, so a rerun after the instances moved to the quarantine group
     * keeps the groups they had before. */
    "CREATE TABLE response_steps ("
    " plan_id INTEGER NOT NULL, step TEXT NOT NULL,"
    " phase TEXT NOT NULL CHECK (phase IN ('run', 'rollback')),"
    " state TEXT NOT NULL CHECK (state IN ('running', 'done', 'failed')),"
    " attempts INTEGER NOT NULL, updated INTEGER NOT NULL, actor TEXT NOT NULL, error TEXT,"
    " PRIMARY KEY (plan_id, step, phase));"
    "CREATE TABLE response_values ("
    " plan_id INTEGER NOT NULL, account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL,"
    " value TEXT NOT NULL, PRIMARY KEY (plan_id, account, region, name));"
    /* Automatic response: one row per (offense, rule) it acted on, so a restart neither acts
     * twice nor forgets the runs the rate limit counts. */
    "CREATE TABLE response_auto ("
    " offense_id INTEGER NOT NULL, rule TEXT NOT NULL, plan_id INTEGER NOT NULL,"
    " created INTEGER NOT NULL, ran INTEGER NOT NULL, outcome TEXT NOT NULL,"
    " PRIMARY KEY (offense_id, rule));"
    /* One run of a plan at a time: who holds it (pid@host) and until when. */
    "CREATE TABLE response_locks ("
    " plan_id INTEGER PRIMARY KEY, holder TEXT NOT NULL, until INTEGER NOT NULL);",
};

static const ch_sql_schema schema = {
    .component = "response",
    .migrations = migrations,
    .version = (int)(sizeof migrations / sizeof migrations[0]),
};

int ch_resp_store_open(const char *path, ch_resp_store **out, ch_error *err)
{
    *out = NULL;
    ch_resp_store *s = ch_calloc(1, sizeof *s);
    if (s == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    int rc = ch_sql_connect(&s->sql, path, false, &schema, err);
    if (rc < 0) {
        ch_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void ch_resp_store_close(ch_resp_store *s)
{
    if (s == NULL)
        return;
    ch_sql_close(&s->sql);
    ch_free(s);
}

int ch_resp_store_linked(ch_resp_store *s, const ch_offense *o, ch_resp_linked **out, size_t *n,
                         ch_error *err)
{
    *out = NULL;
    *n = 0;
    if (o->obs == NULL || strcmp(o->index_field, "user.name") != 0 ||
        o->obs->n[CH_OBS_ACCESS_KEY] == 0)
        return 0;
    sqlite3_stmt *st = NULL;
    /* Launches by a service for the principal (Auto Scaling...) are the service's, not the
     * attacker's: invoked_by must be empty. */
    int rc = ch_sql_prepare(s->sql.db, s->sql.path,
                            "SELECT instance, COALESCE(account, ''), COALESCE(region, ''),"
                            " access_key, launched_ms FROM entity_links WHERE kind = 'i'"
                            " AND user = ?1 AND access_key = ?2"
                            " AND COALESCE(invoked_by, '') = '' ORDER BY launched_ms, instance",
                            &st, err);
    if (rc < 0)
        return rc;
    ch_buf strs;
    ch_buf_init(&strs, 64u << 20);
    typedef struct raw {
        size_t off[4];
        int64_t launch;
    } raw;
    raw *rows = ch_calloc(CH_RESP_MAX_LINKED, sizeof *rows);
    size_t k = 0;
    if (rows == NULL) {
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < o->obs->n[CH_OBS_ACCESS_KEY] && k < CH_RESP_MAX_LINKED; i++) {
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, o->index_value, (int)o->index_value_len, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, o->obs->items[CH_OBS_ACCESS_KEY][i].value, -1, SQLITE_STATIC);
        int step;
        while (k < CH_RESP_MAX_LINKED && (step = sqlite3_step(st)) == SQLITE_ROW) {
            for (int c = 0; c < 4; c++) {
                rows[k].off[c] = strs.len;
                const char *t = ch_sql_col_text(st, c);
                if (ch_buf_add(&strs, t, strlen(t) + 1) < 0) {
                    rc = ch_error_set(err, CH_ENOMEM, "out of memory");
                    goto cleanup;
                }
            }
            rows[k++].launch = sqlite3_column_int64(st, 4);
        }
        if (k < CH_RESP_MAX_LINKED && step != SQLITE_DONE) {
            rc = ch_sql_error(s->sql.db, s->sql.path, err, "reading entity links");
            goto cleanup;
        }
    }
    /* One allocation: the array, then the strings it points into. */
    ch_resp_linked *v = ch_malloc(k * sizeof *v + strs.len + 1);
    if (v == NULL) {
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        goto cleanup;
    }
    char *base = (char *)(v + k);
    if (strs.len > 0)
        memcpy(base, strs.data, strs.len);
    for (size_t i = 0; i < k; i++)
        v[i] = (ch_resp_linked){base + rows[i].off[0], base + rows[i].off[1], base + rows[i].off[2],
                                base + rows[i].off[3], rows[i].launch};
    *out = v;
    *n = k;
    rc = 0;
cleanup:
    sqlite3_finalize(st);
    ch_buf_free(&strs);
    ch_free(rows);
    return rc;
}

int ch_resp_store_put(ch_resp_store *s, ch_resp_plan *p, const char *actor, int64_t now_ms,
                      ch_error *err)
{
    ch_buf b;
    ch_buf_init(&b, 256u << 20);
    int rc = ch_resp_plan_json(&b, p);
    sqlite3_stmt *st = NULL;
    if (rc < 0) {
        rc = ch_error_set(err, rc, "rendering the plan (%s)", ch_strerror(rc));
        goto cleanup;
    }
    /* ch_resp_plan_json NUL-terminates what it renders (ch_buf keeps a terminator). */
    if ((rc = ch_sql_once(s->sql.db, s->sql.path, err, &st, "storing the plan",
                          "INSERT INTO response_plans (offense_id, created, actor, status, plan)"
                          " VALUES (?, ?, ?, 'proposed', ?)",
                          "iitt", p->offense_id, now_ms, actor, b.data)) < 0)
        goto cleanup;
    p->id = sqlite3_last_insert_rowid(s->sql.db);
    rc = 0;
cleanup:
    sqlite3_finalize(st);
    ch_buf_free(&b);
    return rc;
}

int ch_resp_store_get(ch_resp_store *s, int64_t id, char **json, int64_t *offense_id,
                      char status[32], ch_error *err)
{
    *json = NULL;
    sqlite3_stmt *st = NULL;
    int rc =
        ch_sql_once(s->sql.db, s->sql.path, err, &st, "reading the plan",
                    "SELECT plan, offense_id, status FROM response_plans WHERE id = ?", "i", id);
    if (rc == 1) {
        *json = ch_strdup(ch_sql_col_text(st, 0));
        *offense_id = sqlite3_column_int64(st, 1);
        snprintf(status, 32, "%s", ch_sql_col_text(st, 2));
        rc = *json != NULL ? 0 : ch_error_set(err, CH_ENOMEM, "out of memory");
    } else if (rc == 0) {
        rc = ch_error_set(err, CH_ENOTFOUND, "%s: no response plan %lld", s->sql.path,
                          (long long)id);
    }
    sqlite3_finalize(st);
    return rc;
}

int ch_resp_store_status(ch_resp_store *s, int64_t id, const char *status, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = ch_sql_once(s->sql.db, s->sql.path, err, &st, "setting the plan's status",
                         "UPDATE response_plans SET status = ?2 WHERE id = ?1", "it", id, status);
    sqlite3_finalize(st);
    return rc < 0 ? rc : 0;
}

int ch_resp_step_get(ch_resp_store *s, int64_t plan, const char *step, const char *phase,
                     char state[16], int *attempts, ch_error *err)
{
    state[0] = '\0';
    *attempts = 0;
    sqlite3_stmt *st = NULL;
    int rc = ch_sql_once(s->sql.db, s->sql.path, err, &st, "reading a step's state",
                         "SELECT state, attempts FROM response_steps"
                         " WHERE plan_id = ?1 AND step = ?2 AND phase = ?3",
                         "itt", plan, step, phase);
    if (rc == 1) {
        snprintf(state, 16, "%s", ch_sql_col_text(st, 0));
        *attempts = sqlite3_column_int(st, 1);
    }
    sqlite3_finalize(st);
    return rc;
}

int ch_resp_step_set(ch_resp_store *s, int64_t plan, const char *step, const char *phase,
                     const char *state, const char *actor, int64_t now_ms, const char *error,
                     ch_error *err)
{
    sqlite3_stmt *st = NULL;
    /* 'running' counts an attempt: the number of times the call may have reached AWS. */
    int rc = ch_sql_once(
        s->sql.db, s->sql.path, err, &st, "recording a step's state",
        "INSERT INTO response_steps (plan_id, step, phase, state, attempts, updated, actor, error)"
        " VALUES (?1, ?2, ?3, ?4, ?4 = 'running', ?5, ?6, ?7)"
        " ON CONFLICT (plan_id, step, phase) DO UPDATE SET state = excluded.state,"
        " attempts = attempts + (excluded.state = 'running'), updated = excluded.updated,"
        " actor = excluded.actor, error = excluded.error",
        "itttitt", plan, step, phase, state, now_ms, actor, error);
    sqlite3_finalize(st);
    return rc < 0 ? rc : 0;
}

int ch_resp_steps_json(ch_resp_store *s, int64_t plan, ch_buf *b, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = ch_sql_prepare(s->sql.db, s->sql.path,
                            "SELECT step, phase, state, attempts, updated, actor, error"
                            " FROM response_steps WHERE plan_id = ?1"
                            " ORDER BY phase DESC, CAST(step AS INTEGER)",
                            &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, plan);
    rc = ch_buf_addc(b, '[');
    int r = SQLITE_DONE, n = 0;
    while (rc >= 0 && (r = sqlite3_step(st)) == SQLITE_ROW) {
        const char *names[] = {"step", "phase", "state"};
        rc = ch_buf_adds(b, n++ ? ",{" : "{");
        for (int c = 0; c < 3 && rc >= 0; c++) {
            const char *v = ch_sql_col_text(st, c);
            rc = ch_buf_printf(b, "\"%s\":", names[c]);
            if (rc >= 0)
                rc = ch_buf_add_json_str(b, v, strlen(v));
            if (rc >= 0)
                rc = ch_buf_addc(b, ',');
        }
        if (rc >= 0)
            rc = ch_buf_printf(b, "\"attempts\":%d,\"updated\":%lld,\"actor\":",
                               sqlite3_column_int(st, 3), (long long)sqlite3_column_int64(st, 4));
        const char *a = ch_sql_col_text(st, 5);
        if (rc >= 0)
            rc = ch_buf_add_json_str(b, a, strlen(a));
        if (rc >= 0 && sqlite3_column_type(st, 6) != SQLITE_NULL) {
            const char *e = ch_sql_col_text(st, 6);
            rc = ch_buf_adds(b, ",\"error\":");
            if (rc >= 0)
                rc = ch_buf_add_json_str(b, e, strlen(e));
        }
        if (rc >= 0)
            rc = ch_buf_addc(b, '}');
    }
    if (rc >= 0 && r != SQLITE_DONE) {
        rc = ch_sql_error(s->sql.db, s->sql.path, err, "listing the steps' states");
        sqlite3_finalize(st);
        return rc;
    }
    if (rc >= 0)
        rc = ch_buf_addc(b, ']');
    if (rc < 0)
        rc = ch_error_set(err, rc, "listing the steps' states (%s)", ch_strerror(rc));
    sqlite3_finalize(st);
    return rc;
}

int ch_resp_value_get(ch_resp_store *s, int64_t plan, const char *account, const char *region,
                      const char *name, char *out, size_t cap, ch_error *err)
{
    out[0] = '\0';
    sqlite3_stmt *st = NULL;
    int rc = ch_sql_once(s->sql.db, s->sql.path, err, &st, "reading a value",
                         "SELECT value FROM response_values WHERE plan_id = ?1"
                         " AND account = ?2 AND region = ?3 AND name = ?4",
                         "ittt", plan, account, region, name);
    if (rc == 1) {
        const char *v = ch_sql_col_text(st, 0);
        rc = strlen(v) < cap ? 1 : ch_error_set(err, CH_ELIMIT, "value %s too long", name);
        if (rc == 1)
            memcpy(out, v, strlen(v) + 1);
    }
    sqlite3_finalize(st);
    return rc;
}

int ch_resp_value_put(ch_resp_store *s, int64_t plan, const char *account, const char *region,
                      const char *name, const char *value, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = ch_sql_once(s->sql.db, s->sql.path, err, &st, "recording a value",
                         "INSERT OR IGNORE INTO response_values"
                         " (plan_id, account, region, name, value) VALUES (?1, ?2, ?3, ?4, ?5)",
                         "itttt", plan, account, region, name, value);
    sqlite3_finalize(st);
    return rc < 0 ? rc : 0;
}

int ch_resp_auto_seen(ch_resp_store *s, int64_t offense, const char *rule, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = ch_sql_once(s->sql.db, s->sql.path, err, &st, "reading response_auto",
                         "SELECT 1 FROM response_auto WHERE offense_id = ?1 AND rule = ?2", "it",
                         offense, rule);
    sqlite3_finalize(st);
    return rc;
}

int ch_resp_auto_put(ch_resp_store *s, int64_t offense, const char *rule, int64_t plan,
                     int64_t now_ms, bool ran, const char *outcome, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = ch_sql_once(s->sql.db, s->sql.path, err, &st, "recording an automatic response",
                         "INSERT OR REPLACE INTO response_auto"
                         " (offense_id, rule, plan_id, created, ran, outcome)"
                         " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                         "itiibt", offense, rule, plan, now_ms, (int)ran, outcome);
    sqlite3_finalize(st);
    return rc < 0 ? rc : 0;
}

int ch_resp_auto_runs_since(ch_resp_store *s, int64_t since_ms, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = ch_sql_once(s->sql.db, s->sql.path, err, &st, "counting automatic runs",
                         "SELECT count(*) FROM response_auto WHERE ran = 1 AND created >= ?1", "i",
                         since_ms);
    if (rc == 1)
        rc = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return rc;
}

int ch_resp_lock(ch_resp_store *s, int64_t plan, const char *holder, int64_t now_ms,
                 int64_t lease_ms, bool (*alive)(const char *holder), char *other, size_t cap,
                 ch_error *err)
{
    other[0] = '\0';
    int rc = ch_sql_begin(&s->sql, err);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st = NULL;
    rc = ch_sql_once(s->sql.db, s->sql.path, err, &st, "reading the plan's lock",
                     "SELECT holder, until FROM response_locks WHERE plan_id = ?1", "i", plan);
    bool free_ = true;
    if (rc == 1) {
        const char *h = ch_sql_col_text(st, 0);
        int64_t until = sqlite3_column_int64(st, 1);
        /* Free when released, expired, ours, or its process is gone. */
        free_ = until < now_ms || strcmp(h, holder) == 0 || (alive != NULL && !alive(h));
        if (!free_)
            snprintf(other, cap, "%s", h);
    }
    sqlite3_finalize(st);
    st = NULL;
    if (rc >= 0 && free_) {
        int64_t until = lease_ms > 0 ? now_ms + lease_ms : 0;
        rc = ch_sql_once(s->sql.db, s->sql.path, err, &st, "taking the plan's lock",
                         "INSERT OR REPLACE INTO response_locks (plan_id, holder, until)"
                         " VALUES (?1, ?2, ?3)",
                         "iti", plan, holder, until);
        sqlite3_finalize(st);
    }
    if (rc < 0) {
        ch_sql_rollback(&s->sql);
        return rc;
    }
    rc = ch_sql_commit(&s->sql, err);
    return rc < 0 ? rc : free_ ? 1 : 0;
}
