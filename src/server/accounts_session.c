/*
 * accounts_session.c - console sessions, logins and the login throttle (see accounts.h).
 *
 * Sessions: the cookie carries 256 random bits; the table keeps their BLAKE2b (the primary
 * key) and the CSRF token's, so a copy of the database opens no session. A lookup is one
 * primary-key probe joined to the account row, which is read on every request: disabling an
 * account or changing its role applies at its next request. Expiry is checked at lookup
 * against the idle and absolute timeouts, and expired rows are swept whenever a session is
 * created, so the table holds at most CH_SESSIONS_PER_ACCOUNT live rows per account plus the
 * ones that expired since the last login.
 *
 * Throttle: one row per account name and per source address (IPv6 by /64, since one host
 * holds a whole /64). A failure past `free_failures` locks the key for base * 2^k (capped);
 * failures older than failure_reset_ms are forgotten. A success clears the account's row but
 * not the address's, so that a valid login of the attacker's own does not reset a spray. The
 * rows of unknown names are kept like the others (the lock must not reveal which names exist)
 * and capped: past CH_THROTTLE_ROWS_MAX the stale rows go, then the oldest.
 *
 * Logins verify the password (Argon2id, slow on purpose) outside any write transaction, then
 * record the outcome in one. Two concurrent guesses may both pass the lock check before either
 * failure is recorded; the HTTP layer's connection limit bounds that.
 */
#include "server/accounts_int.h"

#include <stdio.h>
#include <string.h>

#include "core/ip.h"
#include "core/mem.h"
#include "core/sqlite_util.h"

/* ---- throttle ------------------------------------------------------------------------------ */

/* The throttle key of a source: an IPv6 address as its /64, anything else as given. */
static void address_key(const char *source, char key[80])
{
    ch_ip ip;
    const char *s = source != NULL && *source ? source : "unknown";
    if (ch_ip_parse(s, strlen(s), &ip) && ip.family == 6) {
        char txt[64];
        memset(ip.b + 8, 0, 8);
        ch_ip_format(&ip, txt);
        snprintf(key, 80, "%s/64", txt);
        return;
    }
    snprintf(key, 80, "%s", s);
}

typedef struct throttle_row {
    bool exists;
    unsigned failures;
    int64_t last_failure, locked_until;
} throttle_row;

static int throttle_get(ch_accounts *a, const char *kind, const char *key, throttle_row *r,
                        ch_error *err)
{
    sqlite3_stmt *st = NULL;
    memset(r, 0, sizeof *r);
    int rc = ch__auth_prepare(a,
                              "SELECT failures, last_failure, locked_until FROM auth_throttle"
                              " WHERE kind = ?1 AND key = ?2",
                              &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        r->exists = true;
        r->failures = (unsigned)sqlite3_column_int(st, 0);
        r->last_failure = sqlite3_column_int64(st, 1);
        r->locked_until = sqlite3_column_int64(st, 2);
    } else if (step != SQLITE_DONE) {
        rc = ch__auth_db_error(a, err, "reading the login throttle");
    }
    sqlite3_finalize(st);
    return rc;
}

/* How long a key is locked after its n-th recent failure. */
static int64_t backoff_ms(const ch_auth_policy *p, unsigned failures)
{
    if (failures <= p->free_failures)
        return 0;
    unsigned k = failures - p->free_failures - 1;
    int64_t d = p->backoff_base_ms;
    while (k-- > 0 && d < p->backoff_max_ms)
        d *= 2;
    return d < p->backoff_max_ms ? d : p->backoff_max_ms;
}

/* Keep the per-address rows under their cap: the forgotten (stale, unlocked) ones first, then
 * the least recently failed. Runs only when a row is added. */
static int throttle_prune(ch_accounts *a, int64_t now, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = ch__auth_prepare(a, "SELECT count(*) FROM auth_throttle", &st, err);
    if (rc < 0)
        return rc;
    int64_t n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    if (n <= CH_THROTTLE_ROWS_MAX)
        return 0;
    if ((rc = ch__auth_prepare(a,
                               "DELETE FROM auth_throttle WHERE locked_until <= ?1"
                               " AND last_failure < ?2",
                               &st, err)) < 0)
        return rc;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, now - a->pol.failure_reset_ms);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = ch__auth_db_error(a, err, "pruning the login throttle");
    sqlite3_finalize(st);
    if (rc < 0)
        return rc;
    if ((rc = ch__auth_prepare(a,
                               "DELETE FROM auth_throttle WHERE (kind, key) IN (SELECT kind, key"
                               " FROM auth_throttle ORDER BY last_failure LIMIT max(0,"
                               " (SELECT count(*) FROM auth_throttle) - ?1))",
                               &st, err)) < 0)
        return rc;
    sqlite3_bind_int64(st, 1, CH_THROTTLE_ROWS_MAX);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = ch__auth_db_error(a, err, "pruning the login throttle");
    sqlite3_finalize(st);
    return rc;
}

/* Count one failure of key; *locked_until is the lock it now has (0 for none). */
static int throttle_fail(ch_accounts *a, const char *kind, const char *key, int64_t now,
                         unsigned *failures, int64_t *locked_until, ch_error *err)
{
    throttle_row r;
    int rc = throttle_get(a, kind, key, &r, err);
    if (rc < 0)
        return rc;
    unsigned f = r.exists && now - r.last_failure <= a->pol.failure_reset_ms ? r.failures : 0;
    if (f < 1000000)
        f++;
    int64_t d = backoff_ms(&a->pol, f);
    int64_t until = d > 0 ? now + d : 0;
    sqlite3_stmt *st = NULL;
    if ((rc =
             ch__auth_prepare(a,
                              "INSERT INTO auth_throttle (kind, key, failures, last_failure,"
                              " locked_until) VALUES (?1, ?2, ?3, ?4, ?5)"
                              " ON CONFLICT (kind, key) DO UPDATE SET failures = excluded.failures,"
                              " last_failure = excluded.last_failure,"
                              " locked_until = excluded.locked_until",
                              &st, err)) < 0)
        return rc;
    sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, f);
    sqlite3_bind_int64(st, 4, now);
    sqlite3_bind_int64(st, 5, until);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = ch__auth_db_error(a, err, "recording a failed login");
    sqlite3_finalize(st);
    if (rc == 0 && !r.exists)
        rc = throttle_prune(a, now, err);
    *failures = f;
    *locked_until = until;
    return rc;
}

int ch__throttle_clear(ch_accounts *a, const char *kind, const char *key, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc =
        ch__auth_prepare(a, "DELETE FROM auth_throttle WHERE kind = ?1 AND key = ?2", &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = ch__auth_db_error(a, err, "clearing the login throttle");
    sqlite3_finalize(st);
    return rc < 0 ? rc : sqlite3_changes(a->db);
}

static int throttle_refused(ch_accounts *a, const char *kind, const char *key, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = ch__auth_prepare(a,
                              "UPDATE auth_throttle SET refused = refused + 1"
                              " WHERE kind = ?1 AND key = ?2",
                              &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = ch__auth_db_error(a, err, "counting a refused login");
    sqlite3_finalize(st);
    return rc;
}

int ch_accounts_unlock(ch_accounts *a, const ch_actor *who, const char *key, ch_error *err)
{
    char addr[80], object[128];
    address_key(key, addr);
    int rc = ch__auth_begin(a, err), n1 = 0, n2 = 0;
    if (rc < 0)
        return rc;
    if ((n1 = ch__throttle_clear(a, "account", key, err)) < 0 ||
        (n2 = ch__throttle_clear(a, "address", addr, err)) < 0) {
        rc = n1 < 0 ? n1 : n2;
        goto fail;
    }
    if (n1 + n2 == 0) {
        ch__auth_rollback(a);
        return ch_error_set(err, CH_ENOTFOUND, "no login lock or failures for '%.80s'", key);
    }
    snprintf(object, sizeof object, "%s:%.100s", n1 ? "account" : "address", n1 ? key : addr);
    if ((rc = ch__auth_audit(a, who, "user.unlock", object, NULL, NULL, err)) < 0)
        goto fail;
    return ch__auth_commit(a, err);
fail:
    ch__auth_rollback(a);
    return rc;
}

int ch_accounts_lockouts(ch_accounts *a, ch_lockout_info **out, size_t *n, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    *out = NULL;
    *n = 0;
    int64_t now = ch_accounts_now(a);
    int rc = ch__auth_prepare(a,
                              "SELECT kind, key, failures, last_failure, locked_until, refused"
                              " FROM auth_throttle WHERE locked_until > ?1 OR last_failure >= ?2"
                              " ORDER BY locked_until > ?1 DESC, last_failure DESC LIMIT 10000",
                              &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, now - a->pol.failure_reset_ms);
    size_t cap = 0;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            ch_lockout_info *p = ch_grow(*out, &cap, 16, sizeof *p);
            if (p == NULL) {
                rc = ch_error_set(err, CH_ENOMEM, "out of memory");
                break;
            }
            *out = p;
        }
        ch_lockout_info *o = &(*out)[(*n)++];
        memset(o, 0, sizeof *o);
        o->is_account = strcmp(ch_sql_col_text(st, 0), "account") == 0;
        snprintf(o->key, sizeof o->key, "%s", ch_sql_col_text(st, 1));
        o->failures = (unsigned)sqlite3_column_int(st, 2);
        o->last_failure = sqlite3_column_int64(st, 3);
        int64_t until = sqlite3_column_int64(st, 4);
        o->locked_until = until > now ? until : 0;
        o->refused = (uint64_t)sqlite3_column_int64(st, 5);
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = ch__auth_db_error(a, err, "listing login locks");
    sqlite3_finalize(st);
    if (rc < 0) {
        ch_free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

/* ---- sessions ------------------------------------------------------------------------------ */

static bool session_hash(const char *id, size_t len, uint8_t hash[CH__HASH_BYTES])
{
    uint8_t raw[CH__SECRET_BYTES];
    if (id == NULL || !ch__auth_decode_secret(id, len, raw))
        return false;
    ch__auth_hash_secret(CH__SECRET_SESSION, raw, hash);
    sodium_memzero(raw, sizeof raw);
    return true;
}

static int sweep_sessions(ch_accounts *a, int64_t now, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = ch__auth_prepare(a, "DELETE FROM sessions WHERE last_seen <= ?1 OR created <= ?2", &st,
                              err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, now - a->pol.session_idle_ms);
    sqlite3_bind_int64(st, 2, now - a->pol.session_absolute_ms);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = ch__auth_db_error(a, err, "sweeping expired sessions");
    sqlite3_finalize(st);
    return rc;
}

/* Inside the caller's transaction. */
static int session_insert(ch_accounts *a, int64_t account_id, const char *source,
                          ch_session_new *out, ch_error *err)
{
    uint8_t raw[CH__SECRET_BYTES], id_hash[CH__HASH_BYTES], csrf_hash[CH__HASH_BYTES];
    int64_t now = ch_accounts_now(a);
    sqlite3_stmt *st = NULL;
    int rc = sweep_sessions(a, now, err);
    if (rc < 0)
        return rc;
    /* The account's oldest sessions beyond the cap make room for this one. */
    if ((rc = ch__auth_prepare(a,
                               "DELETE FROM sessions WHERE account_id = ?1 AND id_hash NOT IN"
                               " (SELECT id_hash FROM sessions WHERE account_id = ?1"
                               " ORDER BY created DESC LIMIT ?2)",
                               &st, err)) < 0)
        return rc;
    sqlite3_bind_int64(st, 1, account_id);
    sqlite3_bind_int(st, 2, CH_SESSIONS_PER_ACCOUNT - 1);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = ch__auth_db_error(a, err, "ending old sessions");
    sqlite3_finalize(st);
    if (rc < 0)
        return rc;
    ch__auth_random_secret(raw, out->id);
    ch__auth_hash_secret(CH__SECRET_SESSION, raw, id_hash);
    ch__auth_random_secret(raw, out->csrf);
    ch__auth_hash_secret(CH__SECRET_CSRF, raw, csrf_hash);
    sodium_memzero(raw, sizeof raw);
    if ((rc = ch__auth_prepare(a,
                               "INSERT INTO sessions (id_hash, account_id, csrf_hash, created,"
                               " last_seen, source) VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
                               &st, err)) < 0)
        return rc;
    sqlite3_bind_blob(st, 1, id_hash, sizeof id_hash, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, account_id);
    sqlite3_bind_blob(st, 3, csrf_hash, sizeof csrf_hash, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now);
    sqlite3_bind_text(st, 5, source != NULL ? source : "", -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = ch__auth_db_error(a, err, "opening a session");
    sqlite3_finalize(st);
    if (rc < 0)
        sodium_memzero(out, sizeof *out);
    return rc;
}

int ch_session_create(ch_accounts *a, int64_t account_id, const char *source, ch_session_new *out,
                      ch_error *err)
{
    int rc = ch__auth_begin(a, err);
    if (rc < 0)
        return rc;
    if ((rc = session_insert(a, account_id, source, out, err)) < 0) {
        ch__auth_rollback(a);
        return rc;
    }
    return ch__auth_commit(a, err);
}

static int delete_session(ch_accounts *a, const uint8_t hash[CH__HASH_BYTES], ch_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = ch__auth_prepare(a, "DELETE FROM sessions WHERE id_hash = ?1", &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_blob(st, 1, hash, CH__HASH_BYTES, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = ch__auth_db_error(a, err, "ending a session");
    sqlite3_finalize(st);
    return rc < 0 ? rc : sqlite3_changes(a->db);
}

/* The live session with this id hash, or CH_ENOTFOUND (an expired one is deleted). */
static int session_lookup(ch_accounts *a, const uint8_t hash[CH__HASH_BYTES], ch_session_info *out,
                          uint8_t csrf_hash[CH__HASH_BYTES], ch_error *err)
{
    static const char nope[] = "no such session";
    sqlite3_stmt *st = NULL;
    int rc = ch__auth_prepare(a,
                              "SELECT s.id_hash, s.account_id, s.created, s.last_seen,"
                              " s.csrf_hash, a.name, a.role, a.must_change, a.disabled"
                              " FROM sessions s JOIN accounts a ON a.id = s.account_id"
                              " WHERE s.id_hash = ?1",
                              &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_blob(st, 1, hash, CH__HASH_BYTES, SQLITE_STATIC);
    int step = sqlite3_step(st);
    bool found = false, expired = false;
    if (step == SQLITE_ROW) {
        const void *h = sqlite3_column_blob(st, 0);
        const void *c = sqlite3_column_blob(st, 4);
        /* The probe found the row by hash; the constant-time compare is what accepts it, as for
         * every credential. */
        found = h != NULL && sqlite3_column_bytes(st, 0) == CH__HASH_BYTES && c != NULL &&
                sqlite3_column_bytes(st, 4) == CH__HASH_BYTES &&
                ch__auth_ct_eq(a, h, hash, CH__HASH_BYTES) && sqlite3_column_int(st, 8) == 0;
        if (found) {
            memset(out, 0, sizeof *out);
            out->account_id = sqlite3_column_int64(st, 1);
            out->created = sqlite3_column_int64(st, 2);
            out->last_seen = sqlite3_column_int64(st, 3);
            if (csrf_hash != NULL)
                memcpy(csrf_hash, c, CH__HASH_BYTES);
            snprintf(out->name, sizeof out->name, "%s", ch_sql_col_text(st, 5));
            if (!ch_role_parse(ch_sql_col_text(st, 6), &out->role))
                out->role = CH_ROLE_NONE;
            out->must_change = sqlite3_column_int(st, 7) != 0;
            int64_t now = ch_accounts_now(a);
            int64_t idle_end = out->last_seen + a->pol.session_idle_ms;
            int64_t abs_end = out->created + a->pol.session_absolute_ms;
            out->expires = idle_end < abs_end ? idle_end : abs_end;
            expired = now >= out->expires;
        }
    } else if (step != SQLITE_DONE) {
        rc = ch__auth_db_error(a, err, "looking up a session");
    }
    sqlite3_finalize(st);
    if (rc < 0)
        return rc;
    if (expired) {
        delete_session(a, hash, NULL);
        found = false;
    }
    return found ? 0 : ch_error_set(err, CH_ENOTFOUND, nope);
}

int ch_session_check(ch_accounts *a, const char *id, size_t len, ch_session_info *out,
                     ch_error *err)
{
    uint8_t hash[CH__HASH_BYTES];
    if (!session_hash(id, len, hash))
        return ch_error_set(err, CH_ENOTFOUND, "no such session");
    return session_lookup(a, hash, out, NULL, err);
}

int ch_session_touch(ch_accounts *a, const char *id, size_t len, ch_error *err)
{
    uint8_t hash[CH__HASH_BYTES];
    ch_session_info info;
    if (!session_hash(id, len, hash))
        return ch_error_set(err, CH_ENOTFOUND, "no such session");
    int rc = session_lookup(a, hash, &info, NULL, err);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st = NULL;
    if ((rc = ch__auth_prepare(a, "UPDATE sessions SET last_seen = ?2 WHERE id_hash = ?1", &st,
                               err)) < 0)
        return rc;
    sqlite3_bind_blob(st, 1, hash, sizeof hash, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, ch_accounts_now(a));
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = ch__auth_db_error(a, err, "touching a session");
    sqlite3_finalize(st);
    return rc;
}

bool ch_session_csrf_ok(ch_accounts *a, const char *id, size_t len, const char *csrf,
                        size_t csrf_len)
{
    uint8_t hash[CH__HASH_BYTES], want[CH__HASH_BYTES], raw[CH__SECRET_BYTES];
    uint8_t got[CH__HASH_BYTES];
    ch_session_info info;
    if (!session_hash(id, len, hash) || session_lookup(a, hash, &info, want, NULL) < 0)
        return false;
    if (csrf == NULL || !ch__auth_decode_secret(csrf, csrf_len, raw))
        return false;
    ch__auth_hash_secret(CH__SECRET_CSRF, raw, got);
    sodium_memzero(raw, sizeof raw);
    return ch__auth_ct_eq(a, got, want, CH__HASH_BYTES);
}

int ch_session_rotate_csrf(ch_accounts *a, const char *id, size_t len, char *csrf, size_t cap,
                           ch_error *err)
{
    uint8_t hash[CH__HASH_BYTES], raw[CH__SECRET_BYTES], csrf_hash[CH__HASH_BYTES];
    ch_session_info info;
    if (cap <= CH_SECRET_B64_LEN)
        return ch_error_set(err, CH_EUSAGE, "CSRF buffer too small");
    if (!session_hash(id, len, hash))
        return ch_error_set(err, CH_ENOTFOUND, "no such session");
    int rc = session_lookup(a, hash, &info, NULL, err);
    if (rc < 0)
        return rc;
    char b64[CH_SECRET_B64_LEN + 1];
    ch__auth_random_secret(raw, b64);
    ch__auth_hash_secret(CH__SECRET_CSRF, raw, csrf_hash);
    sodium_memzero(raw, sizeof raw);
    sqlite3_stmt *st = NULL;
    if ((rc = ch__auth_prepare(a, "UPDATE sessions SET csrf_hash = ?2 WHERE id_hash = ?1", &st,
                               err)) < 0)
        return rc;
    sqlite3_bind_blob(st, 1, hash, sizeof hash, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, csrf_hash, sizeof csrf_hash, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = ch__auth_db_error(a, err, "rotating a CSRF token");
    sqlite3_finalize(st);
    if (rc == 0)
        snprintf(csrf, cap, "%s", b64);
    sodium_memzero(b64, sizeof b64);
    return rc;
}

int ch_session_destroy(ch_accounts *a, const char *id, size_t len, const char *source,
                       ch_error *err)
{
    uint8_t hash[CH__HASH_BYTES];
    ch_session_info info;
    if (!session_hash(id, len, hash))
        return ch_error_set(err, CH_ENOTFOUND, "no such session");
    int rc = ch__auth_begin(a, err);
    if (rc < 0)
        return rc;
    if ((rc = session_lookup(a, hash, &info, NULL, err)) < 0)
        goto fail;
    if ((rc = delete_session(a, hash, err)) < 0)
        goto fail;
    char object[CH_ACCOUNT_NAME_MAX + 16];
    snprintf(object, sizeof object, "account:%s", info.name);
    ch_actor who = {info.name, source};
    if ((rc = ch__auth_audit(a, &who, "logout", object, NULL, NULL, err)) < 0)
        goto fail;
    return ch__auth_commit(a, err);
fail:
    ch__auth_rollback(a);
    return rc;
}

int ch_session_destroy_all(ch_accounts *a, int64_t account_id, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = ch__auth_prepare(a, "DELETE FROM sessions WHERE account_id = ?1", &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, account_id);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = ch__auth_db_error(a, err, "ending sessions");
    sqlite3_finalize(st);
    return rc < 0 ? rc : sqlite3_changes(a->db);
}

/* ---- logins -------------------------------------------------------------------------------- */

typedef struct login_row {
    bool exists, disabled, must_change;
    int64_t id;
    ch_role role;
    char name[CH_ACCOUNT_NAME_MAX + 1];
    char hash[crypto_pwhash_STRBYTES];
} login_row;

static int login_row_get(ch_accounts *a, const char *name, login_row *r, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    memset(r, 0, sizeof *r);
    int rc = ch__auth_prepare(a,
                              "SELECT id, role, disabled, must_change, pwhash FROM accounts"
                              " WHERE name = ?1",
                              &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        r->exists = true;
        r->id = sqlite3_column_int64(st, 0);
        if (!ch_role_parse(ch_sql_col_text(st, 1), &r->role))
            r->role = CH_ROLE_NONE;
        r->disabled = sqlite3_column_int(st, 2) != 0;
        r->must_change = sqlite3_column_int(st, 3) != 0;
        snprintf(r->name, sizeof r->name, "%s", name);
        snprintf(r->hash, sizeof r->hash, "%s", ch_sql_col_text(st, 4));
    } else if (step != SQLITE_DONE) {
        rc = ch__auth_db_error(a, err, "reading an account");
    }
    sqlite3_finalize(st);
    return rc;
}

/* Argon2id verification of password against hash (or against the dummy when hash is NULL, to
 * spend the same time). */
static int verify_password(ch_accounts *a, const char *hash, const char *password, bool *ok,
                           ch_error *err)
{
    *ok = false;
    /* Made at the first login of any name, known or not, so that the one-off cost of making
     * it does not single out the first unknown name. */
    if (a->dummy_hash[0] == '\0') {
        uint8_t r[16];
        char pw[33];
        randombytes_buf(r, sizeof r);
        sodium_bin2hex(pw, sizeof pw, r, sizeof r);
        int rc = ch__auth_hash_password(a, pw, a->dummy_hash, err);
        if (rc < 0)
            return rc;
    }
    if (hash == NULL)
        hash = a->dummy_hash;
    size_t n = strlen(password);
    *ok = n <= CH_PASSWORD_MAX && crypto_pwhash_str_verify(hash, password, n) == 0;
    return 0;
}

static int record_failure(ch_accounts *a, const char *name, const char *addr, const char *source,
                          const char *action, ch_login_result *res, ch_error *err)
{
    int64_t now = ch_accounts_now(a), acct_until = 0, addr_until = 0;
    unsigned acct_fail = 0, addr_fail = 0;
    char object[CH_ACCOUNT_NAME_MAX + 16], after[160];
    bool named = ch_account_name_valid(name);
    int rc = ch__auth_begin(a, err);
    if (rc < 0)
        return rc;
    if ((named &&
         (rc = throttle_fail(a, "account", name, now, &acct_fail, &acct_until, err)) < 0) ||
        (rc = throttle_fail(a, "address", addr, now, &addr_fail, &addr_until, err)) < 0)
        goto fail;
    snprintf(object, sizeof object, "account:%s", named ? name : "?");
    snprintf(after, sizeof after,
             "{\"account_failures\":%u,\"address_failures\":%u,\"locked_ms\":%lld}", acct_fail,
             addr_fail,
             (long long)((acct_until > addr_until ? acct_until : addr_until) > 0
                             ? (acct_until > addr_until ? acct_until : addr_until) - now
                             : 0));
    ch_actor who = {named ? name : "?", source};
    if ((rc = ch__auth_audit(a, &who, action, object, NULL, after, err)) < 0)
        goto fail;
    if ((rc = ch__auth_commit(a, err)) < 0)
        return rc;
    res->status = CH_LOGIN_DENIED;
    return 0;
fail:
    ch__auth_rollback(a);
    return rc;
}

/* Is the account or the address locked? Refusals are counted on the locked rows. */
static int check_locks(ch_accounts *a, const char *name, const char *addr, ch_login_result *res,
                       ch_error *err)
{
    throttle_row acct = {0}, ad;
    int64_t now = ch_accounts_now(a);
    bool named = ch_account_name_valid(name);
    int rc;
    if ((named && (rc = throttle_get(a, "account", name, &acct, err)) < 0) ||
        (rc = throttle_get(a, "address", addr, &ad, err)) < 0)
        return rc;
    int64_t until = acct.locked_until > ad.locked_until ? acct.locked_until : ad.locked_until;
    if (until <= now)
        return 0;
    res->status = CH_LOGIN_THROTTLED;
    res->retry_after_ms = until - now;
    if ((rc = ch__auth_begin(a, err)) < 0)
        return rc;
    if ((acct.locked_until > now && (rc = throttle_refused(a, "account", name, err)) < 0) ||
        (ad.locked_until > now && (rc = throttle_refused(a, "address", addr, err)) < 0)) {
        ch__auth_rollback(a);
        return rc;
    }
    return ch__auth_commit(a, err);
}

int ch_login(ch_accounts *a, const char *name, const char *password, const char *source,
             ch_login_result *res, ch_error *err)
{
    char addr[80], rehash[crypto_pwhash_STRBYTES];
    login_row row;
    bool ok = false, upgrade = false;
    memset(res, 0, sizeof *res);
    res->status = CH_LOGIN_DENIED;
    name = name != NULL ? name : "";
    password = password != NULL ? password : "";
    address_key(source, addr);
    int rc = check_locks(a, name, addr, res, err);
    if (rc < 0 || res->status == CH_LOGIN_THROTTLED)
        return rc;
    res->status = CH_LOGIN_DENIED;
    /* A name that cannot exist is not looked up, but costs the same verification. */
    memset(&row, 0, sizeof row);
    if (ch_account_name_valid(name) && (rc = login_row_get(a, name, &row, err)) < 0)
        return rc;
    if ((rc = verify_password(a, row.exists ? row.hash : NULL, password, &ok, err)) < 0)
        goto done;
    if (!ok || !row.exists || row.disabled) {
        rc = record_failure(a, name, addr, source, "login.failed", res, err);
        goto done;
    }
    /* The policy's parameters grew since this hash was made: hash again while we hold the
     * password. Best effort: a failure here does not refuse the login. */
    if (crypto_pwhash_str_needs_rehash(row.hash, a->pol.pw_opslimit, a->pol.pw_memlimit) != 0)
        upgrade = ch__auth_hash_password(a, password, rehash, NULL) == 0;
    if ((rc = ch__auth_begin(a, err)) < 0)
        goto done;
    sqlite3_stmt *st = NULL;
    if ((rc = ch__throttle_clear(a, "account", row.name, err)) < 0 ||
        (rc = ch__auth_prepare(a,
                               upgrade ? "UPDATE accounts SET last_login = ?2, pwhash = ?3"
                                         " WHERE id = ?1"
                                       : "UPDATE accounts SET last_login = ?2 WHERE id = ?1",
                               &st, err)) < 0)
        goto fail;
    sqlite3_bind_int64(st, 1, row.id);
    sqlite3_bind_int64(st, 2, ch_accounts_now(a));
    if (upgrade)
        sqlite3_bind_text(st, 3, rehash, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = ch__auth_db_error(a, err, "recording a login");
    sqlite3_finalize(st);
    if (rc < 0 || (rc = session_insert(a, row.id, source, &res->session, err)) < 0)
        goto fail;
    char object[CH_ACCOUNT_NAME_MAX + 16];
    snprintf(object, sizeof object, "account:%s", row.name);
    ch_actor who = {row.name, source};
    if ((rc = ch__auth_audit(a, &who, "login", object, NULL,
                             row.must_change ? "{\"must_change\":true}" : "{\"must_change\":false}",
                             err)) < 0 ||
        (rc = ch__auth_commit(a, err)) < 0)
        goto fail;
    res->status = CH_LOGIN_OK;
    res->info.account_id = row.id;
    snprintf(res->info.name, sizeof res->info.name, "%s", row.name);
    res->info.role = row.role;
    res->info.must_change = row.must_change;
    res->info.created = res->info.last_seen = ch_accounts_now(a);
    res->info.expires = res->info.created + (a->pol.session_idle_ms < a->pol.session_absolute_ms
                                                 ? a->pol.session_idle_ms
                                                 : a->pol.session_absolute_ms);
    goto done;
fail:
    ch__auth_rollback(a);
    sodium_memzero(&res->session, sizeof res->session);
    res->status = CH_LOGIN_DENIED;
done:
    sodium_memzero(&row, sizeof row);
    sodium_memzero(rehash, sizeof rehash);
    return rc < 0 ? rc : 0;
}

int ch_account_change_password(ch_accounts *a, const char *name, const char *old_password,
                               const char *new_password, const char *source, ch_error *err)
{
    char addr[80], hash[crypto_pwhash_STRBYTES];
    login_row row;
    bool ok = false;
    ch_buf before, after;
    ch_buf_init(&before, 4096);
    ch_buf_init(&after, 4096);
    address_key(source, addr);
    int rc;
    memset(&row, 0, sizeof row);
    if ((rc = ch__auth_password_ok(new_password, err)) < 0)
        goto done;
    if (strcmp(old_password, new_password) == 0) {
        rc = ch_error_set(err, CH_EUSAGE, "the new password must differ from the old one");
        goto done;
    }
    if ((rc = login_row_get(a, name, &row, err)) < 0 ||
        (rc = verify_password(a, row.exists ? row.hash : NULL, old_password, &ok, err)) < 0)
        goto done;
    if (!ok || !row.exists || row.disabled) {
        ch_login_result ignored;
        /* A wrong old password is a guess like a failed login, and throttled as one. */
        if ((rc = record_failure(a, name, addr, source, "user.password_change.failed", &ignored,
                                 err)) < 0)
            goto done;
        rc = ch_error_set(err, CH_EUSAGE, "the current password is wrong");
        goto done;
    }
    if ((rc = ch__auth_hash_password(a, new_password, hash, err)) < 0 ||
        (rc = ch__auth_begin(a, err)) < 0)
        goto done;
    sqlite3_stmt *st = NULL;
    if ((rc = ch__auth_prepare(a,
                               "UPDATE accounts SET pwhash = ?2, must_change = 0, updated = ?3"
                               " WHERE id = ?1",
                               &st, err)) < 0)
        goto fail;
    sqlite3_bind_int64(st, 1, row.id);
    sqlite3_bind_text(st, 2, hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, ch_accounts_now(a));
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = ch__auth_db_error(a, err, "changing a password");
    sqlite3_finalize(st);
    char object[CH_ACCOUNT_NAME_MAX + 16];
    snprintf(object, sizeof object, "account:%s", row.name);
    ch_actor who = {row.name, source};
    if (rc < 0 || (rc = ch_session_destroy_all(a, row.id, err)) < 0 ||
        (rc = ch__account_state_json(&before, row.name, row.role, false, row.must_change)) < 0 ||
        (rc = ch__account_state_json(&after, row.name, row.role, false, false)) < 0 ||
        (rc = ch__auth_audit(a, &who, "user.password_change", object, before.data, after.data,
                             err)) < 0 ||
        (rc = ch__auth_commit(a, err)) < 0)
        goto fail;
    goto done;
fail:
    ch__auth_rollback(a);
done:
    sodium_memzero(&row, sizeof row);
    sodium_memzero(hash, sizeof hash);
    ch_buf_free(&before);
    ch_buf_free(&after);
    return rc < 0 ? rc : 0;
}
