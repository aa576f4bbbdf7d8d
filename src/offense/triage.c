/*
 * triage.c - analysts' changes to offenses (triage.h has the model: a triage row per offense
 * beside the pipeline's row, a version for ETags, every change audited in its transaction).
 *
 * Every statement is constant SQL with bound parameters: assignee names, reasons and note text
 * come from API clients. Each update reads the current state, checks the caller's ETag, writes
 * and appends the audit entry inside one BEGIN IMMEDIATE, so two concurrent updates with the
 * same ETag cannot both pass the check (the second waits for the first's lock, then sees the new
 * version). Cost: a handful of indexed statements per change.
 */
#include "offense/triage.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/sqlite_util.h"
#include "core/timeparse.h"

static int db_err(ch_sql *q, ch_error *err, const char *what)
{
    return ch_sql_error(q->db, q->path, err, what);
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

static int add_time(ch_buf *b, int64_t ms)
{
    char t[40];
    size_t n = ch_time_format(ms, t);
    return ch_buf_add_json_str(b, t, n);
}

static int add_str(ch_buf *b, const char *s) { return ch_buf_add_json_str(b, s, strlen(s)); }

/* The offense's status and triage row into *out; CH_ENOTFOUND when no offense. */
static int read_state(ch_sql *q, int64_t id, ch_offense_triage *out, ch_error *err)
{
    memset(out, 0, sizeof *out);
    out->offense_id = id;
    sqlite3_stmt *st = NULL;
    int rc = ch_sql_prepare(q->db, q->path,
                            "SELECT o.status, t.version, t.assigned_to, t.closing_reason,"
                            " t.follow_up, t.protected, t.updated, t.updated_by"
                            " FROM offenses o LEFT JOIN offense_triage t ON t.offense_id = o.id"
                            " WHERE o.id = ?1",
                            &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        ch_offense_status s = CH_OFFENSE_OPEN;
        ch_offense_status_parse(ch_sql_col_text(st, 0), &s);
        out->status = s;
        out->version = sqlite3_column_int64(st, 1);
        copy_str(out->assigned_to, sizeof out->assigned_to, ch_sql_col_text(st, 2));
        copy_str(out->closing_reason, sizeof out->closing_reason, ch_sql_col_text(st, 3));
        out->follow_up = sqlite3_column_int(st, 4) != 0;
        out->protected_ = sqlite3_column_int(st, 5) != 0;
        out->updated = sqlite3_column_int64(st, 6);
        copy_str(out->updated_by, sizeof out->updated_by, ch_sql_col_text(st, 7));
        rc = 0;
    } else if (step == SQLITE_DONE) {
        rc = ch_error_set(err, CH_ENOTFOUND, "no offense %lld", (long long)id);
    } else {
        rc = db_err(q, err, "reading an offense");
    }
    sqlite3_finalize(st);
    return rc;
}

int ch_triage_get(ch_store *s, int64_t id, ch_offense_triage *out, ch_error *err)
{
    return read_state(ch_store_sql(s), id, out, err);
}

int ch_triage_list(ch_store *s, ch_offense_triage **out, size_t *n, ch_error *err)
{
    ch_sql *q = ch_store_sql(s);
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = NULL;
    int rc = ch_sql_prepare(q->db, q->path,
                            "SELECT t.offense_id, o.status, t.version, t.assigned_to,"
                            " t.closing_reason, t.follow_up, t.protected, t.updated, t.updated_by"
                            " FROM offense_triage t JOIN offenses o ON o.id = t.offense_id"
                            " ORDER BY t.offense_id",
                            &st, err);
    if (rc < 0)
        return rc;
    size_t cap = 0;
    ch_offense_triage *v = NULL;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            ch_offense_triage *nv = ch_realloc(v, nc * sizeof *v);
            if (nv == NULL) {
                rc = ch_error_set(err, CH_ENOMEM, "out of memory");
                goto cleanup;
            }
            v = nv;
            cap = nc;
        }
        ch_offense_triage *t = &v[(*n)++];
        memset(t, 0, sizeof *t);
        t->offense_id = sqlite3_column_int64(st, 0);
        ch_offense_status sv = CH_OFFENSE_OPEN;
        ch_offense_status_parse(ch_sql_col_text(st, 1), &sv);
        t->status = sv;
        t->version = sqlite3_column_int64(st, 2);
        copy_str(t->assigned_to, sizeof t->assigned_to, ch_sql_col_text(st, 3));
        copy_str(t->closing_reason, sizeof t->closing_reason, ch_sql_col_text(st, 4));
        t->follow_up = sqlite3_column_int(st, 5) != 0;
        t->protected_ = sqlite3_column_int(st, 6) != 0;
        t->updated = sqlite3_column_int64(st, 7);
        copy_str(t->updated_by, sizeof t->updated_by, ch_sql_col_text(st, 8));
    }
    if (step != SQLITE_DONE)
        rc = db_err(q, err, "listing offense triage");
cleanup:
    sqlite3_finalize(st);
    if (rc < 0) {
        ch_free(v);
        *n = 0;
        return rc;
    }
    *out = v;
    return 0;
}

const ch_offense_triage *ch_triage_find(const ch_offense_triage *v, size_t n, int64_t id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid].offense_id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && v[lo].offense_id == id ? &v[lo] : NULL;
}

void ch_triage_etag(const ch_offense_triage *t, char *buf, size_t cap)
{
    snprintf(buf, cap, "\"%lld-%s\"", (long long)t->version, ch_offense_status_name(t->status));
}

/* The state as the audit log's before/after JSON. */
static int state_json(ch_buf *b, const ch_offense_triage *t)
{
    int rc;
    if ((rc = ch_buf_adds(b, "{\"status\":")) < 0 ||
        (rc = add_str(b, ch_offense_status_name(t->status))) < 0 ||
        (rc = ch_buf_adds(b, ",\"assigned_to\":")) < 0 ||
        (rc = t->assigned_to[0] ? add_str(b, t->assigned_to) : ch_buf_adds(b, "null")) < 0 ||
        (rc = ch_buf_adds(b, ",\"closing_reason\":")) < 0 ||
        (rc = t->closing_reason[0] ? add_str(b, t->closing_reason) : ch_buf_adds(b, "null")) < 0)
        return rc;
    return ch_buf_printf(b, ",\"follow_up\":%s,\"protected\":%s,\"version\":%lld}",
                         t->follow_up ? "true" : "false", t->protected_ ? "true" : "false",
                         (long long)t->version);
}

static int reason_known(ch_sql *q, const char *text, bool *known, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = ch_sql_prepare(q->db, q->path, "SELECT 1 FROM offense_closing_reasons WHERE text = ?1",
                            &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    *known = step == SQLITE_ROW;
    rc = step == SQLITE_ROW || step == SQLITE_DONE ? 0 : db_err(q, err, "reading closing reasons");
    sqlite3_finalize(st);
    return rc;
}

/* Is the change allowed from state t? Fills *n with the state after it. */
static int check_change(ch_sql *q, const ch_offense_triage *t, const ch_triage_change *c,
                        ch_offense_triage *n, ch_error *err)
{
    *n = *t;
    if (c->set_protected)
        n->protected_ = c->protected_;
    if (c->set_status && c->status != t->status) {
        if (t->status == CH_OFFENSE_CLOSED)
            return ch_error_set(err, CH_EUSAGE,
                                "offense %lld is closed; closing is final (a new hit opens a new "
                                "offense)",
                                (long long)t->offense_id);
        if (n->protected_)
            return ch_error_set(err, CH_EUSAGE,
                                "offense %lld is protected: unprotect it (protected: false) to "
                                "change its status",
                                (long long)t->offense_id);
        n->status = c->status;
    }
    if (c->set_assigned) {
        const char *a = c->assigned_to ? c->assigned_to : "";
        if (strlen(a) > CH_TRIAGE_NAME_MAX)
            return ch_error_set(err, CH_EUSAGE, "assigned_to is longer than %d bytes",
                                CH_TRIAGE_NAME_MAX);
        copy_str(n->assigned_to, sizeof n->assigned_to, a);
    }
    if (c->set_follow_up)
        n->follow_up = c->follow_up;
    bool closing = n->status == CH_OFFENSE_CLOSED && t->status != CH_OFFENSE_CLOSED;
    if (c->set_reason) {
        const char *r = c->closing_reason ? c->closing_reason : "";
        if (!closing)
            return ch_error_set(err, CH_EUSAGE,
                                "closing_reason is given only with status \"closed\", when the "
                                "offense is being closed");
        bool known = false;
        int rc = reason_known(q, r, &known, err);
        if (rc < 0)
            return rc;
        if (!known)
            return ch_error_set(err, CH_EUSAGE,
                                "closing_reason \"%.128s\" is not one of "
                                "GET /api/v1/offense_closing_reasons",
                                r);
        copy_str(n->closing_reason, sizeof n->closing_reason, r);
    }
    if (closing && n->closing_reason[0] == '\0')
        return ch_error_set(err, CH_EUSAGE,
                            "closing an offense needs a closing_reason (GET "
                            "/api/v1/offense_closing_reasons)");
    return 0;
}

int ch_triage_update(ch_store *s, int64_t id, const char *if_match, const ch_triage_change *c,
                     const ch_actor *who, int64_t now_ms, bool *conflict, ch_offense_triage *after,
                     ch_error *err)
{
    ch_sql *q = ch_store_sql(s);
    *conflict = false;
    sqlite3_stmt *st = NULL;
    ch_buf before, aft;
    ch_buf_init(&before, 8192);
    ch_buf_init(&aft, 8192);
    int rc = ch_sql_begin(q, err);
    if (rc < 0)
        goto done;
    ch_offense_triage t, n;
    if ((rc = read_state(q, id, &t, err)) < 0)
        goto rollback;
    char etag[CH_TRIAGE_ETAG_MAX];
    ch_triage_etag(&t, etag, sizeof etag);
    if (if_match == NULL || strcmp(if_match, etag) != 0) {
        *conflict = true;
        if (after)
            *after = t;
        rc = 0;
        goto rollback;
    }
    if ((rc = check_change(q, &t, c, &n, err)) < 0)
        goto rollback;
    n.version = t.version + 1;
    n.updated = now_ms;
    copy_str(n.updated_by, sizeof n.updated_by, who->name);
    if (n.status != t.status) {
        if ((rc = ch_sql_prepare(q->db, q->path,
                                 "UPDATE offenses SET status = ?1, updated = ?2 WHERE id = ?3", &st,
                                 err)) < 0)
            goto rollback;
        sqlite3_bind_text(st, 1, ch_offense_status_name(n.status), -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, now_ms);
        sqlite3_bind_int64(st, 3, id);
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = db_err(q, err, "updating an offense's status");
            goto rollback;
        }
        sqlite3_finalize(st);
        st = NULL;
    }
    if ((rc = ch_sql_prepare(q->db, q->path,
                             "INSERT INTO offense_triage (offense_id, version, assigned_to,"
                             " closing_reason, follow_up, protected, updated, updated_by)"
                             " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                             " ON CONFLICT (offense_id) DO UPDATE SET version = excluded.version,"
                             " assigned_to = excluded.assigned_to,"
                             " closing_reason = excluded.closing_reason,"
                             " follow_up = excluded.follow_up, protected = excluded.protected,"
                             " updated = excluded.updated, updated_by = excluded.updated_by",
                             &st, err)) < 0)
        goto rollback;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, n.version);
    if (n.assigned_to[0])
        sqlite3_bind_text(st, 3, n.assigned_to, -1, SQLITE_STATIC);
    if (n.closing_reason[0])
        sqlite3_bind_text(st, 4, n.closing_reason, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 5, n.follow_up);
    sqlite3_bind_int(st, 6, n.protected_);
    sqlite3_bind_int64(st, 7, now_ms);
    sqlite3_bind_text(st, 8, n.updated_by, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = db_err(q, err, "saving an offense's triage");
        goto rollback;
    }
    char object[64];
    snprintf(object, sizeof object, "offense:%lld", (long long)id);
    if ((rc = state_json(&before, &t)) < 0 || (rc = state_json(&aft, &n)) < 0) {
        rc = ch_error_set(err, rc, "out of memory");
        goto rollback;
    }
    ch_audit_entry e = {0,      now_ms,      who->name, who->source, "offense.update",
                        object, before.data, aft.data};
    if ((rc = ch_audit_schema_db(q->db, q->path, err)) < 0 ||
        (rc = ch_audit_append_db(q->db, q->path, &e, err)) < 0)
        goto rollback;
    sqlite3_finalize(st);
    st = NULL;
    if ((rc = ch_sql_commit(q, err)) < 0)
        goto done;
    if (after)
        *after = n;
    goto done;
rollback:
    ch_sql_rollback(q);
done:
    sqlite3_finalize(st);
    ch_buf_free(&before);
    ch_buf_free(&aft);
    return rc;
}

int64_t ch_triage_note_add(ch_store *s, int64_t id, const char *text, const ch_actor *who,
                           int64_t now_ms, ch_error *err)
{
    ch_sql *q = ch_store_sql(s);
    size_t len = text ? strlen(text) : 0;
    if (len == 0)
        return ch_error_set(err, CH_EUSAGE, "a note needs a non-empty text");
    if (len > CH_TRIAGE_NOTE_MAX)
        return ch_error_set(err, CH_EUSAGE, "a note is at most %d bytes (this one has %zu)",
                            CH_TRIAGE_NOTE_MAX, len);
    sqlite3_stmt *st = NULL;
    ch_buf after;
    ch_buf_init(&after, 3 * CH_TRIAGE_NOTE_MAX);
    int64_t note_id = 0;
    int rc = ch_sql_begin(q, err);
    if (rc < 0)
        goto done;
    ch_offense_triage t;
    if ((rc = read_state(q, id, &t, err)) < 0)
        goto rollback;
    if ((rc = ch_sql_prepare(q->db, q->path,
                             "INSERT INTO offense_notes (offense_id, ts, status, text, author)"
                             " VALUES (?1, ?2, ?3, ?4, ?5)",
                             &st, err)) < 0)
        goto rollback;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, now_ms);
    sqlite3_bind_text(st, 3, ch_offense_status_name(t.status), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, text, (int)len, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, who->name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = db_err(q, err, "saving a note");
        goto rollback;
    }
    note_id = sqlite3_last_insert_rowid(q->db);
    char object[64];
    snprintf(object, sizeof object, "offense:%lld", (long long)id);
    if ((rc = ch_buf_printf(&after, "{\"note\":%lld,\"text\":", (long long)note_id)) < 0 ||
        (rc = ch_buf_add_json_str(&after, text, len)) < 0 || (rc = ch_buf_addc(&after, '}')) < 0) {
        rc = ch_error_set(err, rc, "out of memory");
        goto rollback;
    }
    ch_audit_entry e = {0,      now_ms, who->name, who->source, "offense.note",
                        object, NULL,   after.data};
    if ((rc = ch_audit_schema_db(q->db, q->path, err)) < 0 ||
        (rc = ch_audit_append_db(q->db, q->path, &e, err)) < 0)
        goto rollback;
    sqlite3_finalize(st);
    st = NULL;
    rc = ch_sql_commit(q, err);
    goto done;
rollback:
    ch_sql_rollback(q);
done:
    sqlite3_finalize(st);
    ch_buf_free(&after);
    return rc < 0 ? rc : note_id;
}

int ch_triage_notes_json(ch_store *s, int64_t id, ch_buf *b, ch_error *err)
{
    ch_sql *q = ch_store_sql(s);
    ch_offense_triage t;
    int rc = read_state(q, id, &t, err);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st = NULL;
    if ((rc = ch_sql_prepare(q->db, q->path,
                             "SELECT id, ts, author, status, text FROM offense_notes"
                             " WHERE offense_id = ?1 ORDER BY id",
                             &st, err)) < 0)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    rc = ch_buf_addc(b, '[');
    int step, i = 0;
    while (rc >= 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        if ((i++ > 0 && (rc = ch_buf_addc(b, ',')) < 0) ||
            (rc = ch_buf_printf(
                 b, "{\"id\":%lld,\"time\":", (long long)sqlite3_column_int64(st, 0))) < 0 ||
            (rc = add_time(b, sqlite3_column_int64(st, 1))) < 0 ||
            (rc = ch_buf_adds(b, ",\"author\":")) < 0 ||
            (rc = sqlite3_column_type(st, 2) == SQLITE_NULL
                      ? ch_buf_adds(b, "null")
                      : add_str(b, ch_sql_col_text(st, 2))) < 0 ||
            (rc = ch_buf_adds(b, ",\"status\":")) < 0 ||
            (rc = add_str(b, ch_sql_col_text(st, 3))) < 0 ||
            (rc = ch_buf_adds(b, ",\"text\":")) < 0 ||
            (rc = ch_buf_add_json_str(b, ch_sql_col_text(st, 4),
                                      (size_t)sqlite3_column_bytes(st, 4))) < 0 ||
            (rc = ch_buf_addc(b, '}')) < 0)
            break;
    }
    if (rc >= 0 && step != SQLITE_DONE)
        rc = db_err(q, err, "reading notes");
    else if (rc >= 0)
        rc = ch_buf_addc(b, ']');
    else
        rc = ch_error_set(err, rc, "notes do not fit the answer");
    sqlite3_finalize(st);
    return rc < 0 ? rc : 0;
}

int ch_triage_reasons_json(ch_store *s, ch_buf *b, ch_error *err)
{
    ch_sql *q = ch_store_sql(s);
    sqlite3_stmt *st = NULL;
    int rc = ch_sql_prepare(q->db, q->path,
                            "SELECT id, text FROM offense_closing_reasons ORDER BY id", &st, err);
    if (rc < 0)
        return rc;
    rc = ch_buf_addc(b, '[');
    int step, i = 0;
    while (rc >= 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        if ((i++ > 0 && (rc = ch_buf_addc(b, ',')) < 0) ||
            (rc = ch_buf_printf(
                 b, "{\"id\":%lld,\"text\":", (long long)sqlite3_column_int64(st, 0))) < 0 ||
            (rc = add_str(b, ch_sql_col_text(st, 1))) < 0 || (rc = ch_buf_addc(b, '}')) < 0)
            break;
    }
    if (rc >= 0)
        rc = step == SQLITE_DONE ? ch_buf_addc(b, ']') : db_err(q, err, "reading closing reasons");
    sqlite3_finalize(st);
    return rc < 0 ? rc : 0;
}

int ch_triage_users_json(ch_store *s, size_t offset, size_t limit, ch_buf *b, size_t *total,
                         ch_error *err)
{
    ch_sql *q = ch_store_sql(s);
    sqlite3_stmt *st = NULL;
    *total = 0;
    int rc = ch_sql_prepare(q->db, q->path, "SELECT count(*) FROM users", &st, err);
    if (rc < 0)
        return rc;
    if (sqlite3_step(st) == SQLITE_ROW)
        *total = (size_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    if ((rc = ch_sql_prepare(q->db, q->path,
                             "SELECT name, risk, updated FROM users ORDER BY risk DESC, name"
                             " LIMIT ?1 OFFSET ?2",
                             &st, err)) < 0)
        return rc;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)limit);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)offset);
    rc = ch_buf_addc(b, '[');
    int step, i = 0;
    while (rc >= 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        if ((i++ > 0 && (rc = ch_buf_addc(b, ',')) < 0) ||
            (rc = ch_buf_adds(b, "{\"name\":")) < 0 ||
            (rc = ch_buf_add_json_str(b, ch_sql_col_text(st, 0),
                                      (size_t)sqlite3_column_bytes(st, 0))) < 0 ||
            (rc = ch_buf_printf(b, ",\"risk\":%.3f,\"updated\":", sqlite3_column_double(st, 1))) <
                0 ||
            (rc = add_time(b, sqlite3_column_int64(st, 2))) < 0 || (rc = ch_buf_addc(b, '}')) < 0)
            break;
    }
    if (rc >= 0)
        rc = step == SQLITE_DONE ? ch_buf_addc(b, ']') : db_err(q, err, "reading users");
    sqlite3_finalize(st);
    return rc < 0 ? rc : 0;
}

int ch_triage_user_json(ch_store *s, const char *name, size_t hits, ch_buf *b, ch_error *err)
{
    ch_sql *q = ch_store_sql(s);
    sqlite3_stmt *st = NULL;
    int rc =
        ch_sql_prepare(q->db, q->path, "SELECT risk, updated FROM users WHERE name = ?1", &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step != SQLITE_ROW) {
        rc = step == SQLITE_DONE ? ch_error_set(err, CH_ENOTFOUND, "no user \"%.200s\"", name)
                                 : db_err(q, err, "reading a user");
        sqlite3_finalize(st);
        return rc;
    }
    if ((rc = ch_buf_adds(b, "{\"name\":")) < 0 || (rc = add_str(b, name)) < 0 ||
        (rc = ch_buf_printf(b, ",\"risk\":%.3f,\"updated\":", sqlite3_column_double(st, 0))) < 0 ||
        (rc = add_time(b, sqlite3_column_int64(st, 1))) < 0 ||
        (rc = ch_buf_adds(b, ",\"recent_hits\":[")) < 0) {
        sqlite3_finalize(st);
        return ch_error_set(err, rc, "the user does not fit the answer");
    }
    sqlite3_finalize(st);
    st = NULL;
    if ((rc = ch_sql_prepare(q->db, q->path,
                             "SELECT ts, rule_id, delta, risk_after FROM user_timeline"
                             " WHERE user = ?1 ORDER BY ts DESC, id DESC LIMIT ?2",
                             &st, err)) < 0)
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)hits);
    int i = 0;
    while (rc >= 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        if ((i++ > 0 && (rc = ch_buf_addc(b, ',')) < 0) ||
            (rc = ch_buf_adds(b, "{\"time\":")) < 0 ||
            (rc = add_time(b, sqlite3_column_int64(st, 0))) < 0 ||
            (rc = ch_buf_adds(b, ",\"rule\":")) < 0 ||
            (rc = add_str(b, ch_sql_col_text(st, 1))) < 0 ||
            (rc = ch_buf_printf(b, ",\"delta\":%.3f,\"risk_after\":%.3f}",
                                sqlite3_column_double(st, 2), sqlite3_column_double(st, 3))) < 0)
            break;
    }
    if (rc >= 0)
        rc = step == SQLITE_DONE ? ch_buf_adds(b, "]}") : db_err(q, err, "reading a timeline");
    sqlite3_finalize(st);
    return rc < 0 ? rc : 0;
}
