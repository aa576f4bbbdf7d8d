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
    if ((rc = ch_sql_prepare(s->sql.db, s->sql.path,
                             "INSERT INTO response_plans (offense_id, created, actor, status, plan)"
                             " VALUES (?, ?, ?, 'proposed', ?)",
                             &st, err)) < 0)
        goto cleanup;
    sqlite3_bind_int64(st, 1, p->offense_id);
    sqlite3_bind_int64(st, 2, now_ms);
    sqlite3_bind_text(st, 3, actor, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, b.data, (int)b.len, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = ch_sql_error(s->sql.db, s->sql.path, err, "storing the plan");
        goto cleanup;
    }
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
    int rc = ch_sql_prepare(s->sql.db, s->sql.path,
                            "SELECT plan, offense_id, status FROM response_plans WHERE id = ?", &st,
                            err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        *json = ch_strdup(ch_sql_col_text(st, 0));
        *offense_id = sqlite3_column_int64(st, 1);
        snprintf(status, 32, "%s", ch_sql_col_text(st, 2));
        rc = *json != NULL ? 0 : ch_error_set(err, CH_ENOMEM, "out of memory");
    } else if (step == SQLITE_DONE) {
        rc = ch_error_set(err, CH_ENOTFOUND, "%s: no response plan %lld", s->sql.path,
                          (long long)id);
    } else {
        rc = ch_sql_error(s->sql.db, s->sql.path, err, "reading the plan");
    }
    sqlite3_finalize(st);
    return rc;
}
