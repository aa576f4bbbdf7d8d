/*
 * accounts.c - the accounts store: schema, roles, secrets, accounts and API tokens (sessions
 * and logins are in accounts_session.c, header parsers in accounts_http.c).
 *
 * Schema and versioning: the offense store owns PRAGMA user_version of the shared database
 * file, so these tables are made with CREATE TABLE IF NOT EXISTS and versioned by the
 * 'auth_schema' row of auth_meta (as the intel store does with intel_meta); opening in any
 * order, from any module, gives the same file. A later version adds an entry to `upgrades`
 * (version v -> v + 1), run in the open transaction; a database newer than this build is
 * refused rather than guessed at.
 *
 * Cost: account and token changes are rare operator actions; each prepares its statements per
 * call and runs in one IMMEDIATE transaction with its audit entry. Password hashing is Argon2id
 * at the interactive limits (64 MiB, a fraction of a second), deliberately slow, and done
 * outside any transaction that would hold the write lock while it runs. Token verification is
 * on every API request: one indexed lookup by the token's shown prefix, one BLAKE2b, one
 * constant-time compare, and a write of the last use at most once a minute per token.
 *
 * Every value is bound; nothing from a name, a password or a token is ever SQL text.
 */
#include "server/accounts_int.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/mem.h"
#include "core/sqlite_util.h"
#include "core/timeparse.h"
#include "offense/store.h"

static const char *const schema =
    "CREATE TABLE IF NOT EXISTS auth_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
    " WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS accounts ("
    " id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " role TEXT NOT NULL CHECK (role IN ('viewer', 'analyst', 'admin')),"
    " pwhash TEXT NOT NULL, must_change INTEGER NOT NULL DEFAULT 1,"
    " disabled INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL, updated INTEGER NOT NULL,"
    " last_login INTEGER);"
    "CREATE TABLE IF NOT EXISTS api_tokens ("
    " id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
    " role TEXT NOT NULL CHECK (role IN ('ingest', 'viewer', 'analyst', 'admin')),"
    " shown TEXT NOT NULL, hash BLOB NOT NULL, created INTEGER NOT NULL,"
    " created_by TEXT NOT NULL, revoked INTEGER, last_used INTEGER, last_source TEXT);"
    "CREATE UNIQUE INDEX IF NOT EXISTS api_tokens_active_name ON api_tokens (name)"
    " WHERE revoked IS NULL;"
    "CREATE INDEX IF NOT EXISTS api_tokens_shown ON api_tokens (shown);"
    "CREATE TABLE IF NOT EXISTS sessions ("
    " id_hash BLOB PRIMARY KEY,"
    " account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,"
    " csrf_hash BLOB NOT NULL, created INTEGER NOT NULL, last_seen INTEGER NOT NULL,"
    " source TEXT NOT NULL DEFAULT '') WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS sessions_account ON sessions (account_id, created);"
    "CREATE TABLE IF NOT EXISTS auth_throttle ("
    " kind TEXT NOT NULL CHECK (kind IN ('account', 'address')), key TEXT NOT NULL,"
    " failures INTEGER NOT NULL, last_failure INTEGER NOT NULL,"
    " locked_until INTEGER NOT NULL DEFAULT 0, refused INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (kind, key)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS auth_throttle_last ON auth_throttle (last_failure);";

/* upgrades[v - 1] takes the auth schema from v to v + 1 (none yet). */
static const char *const upgrades[] = {NULL};
_Static_assert(sizeof upgrades / sizeof upgrades[0] == CH_AUTH_SCHEMA_VERSION,
               "one upgrade slot per schema version (the last one unused)");

/* ---- roles --------------------------------------------------------------------------------- */

static const char *const role_names[] = {
    [CH_ROLE_NONE] = "none",       [CH_ROLE_INGEST] = "ingest", [CH_ROLE_VIEWER] = "viewer",
    [CH_ROLE_ANALYST] = "analyst", [CH_ROLE_ADMIN] = "admin",
};

const char *ch_role_name(ch_role r)
{
    return (unsigned)r < sizeof role_names / sizeof role_names[0] ? role_names[r] : "none";
}

bool ch_role_parse(const char *s, ch_role *out)
{
    for (unsigned i = CH_ROLE_INGEST; i <= CH_ROLE_ADMIN; i++)
        if (strcmp(s, role_names[i]) == 0) {
            *out = (ch_role)i;
            return true;
        }
    return false;
}

bool ch_role_allows(ch_role have, ch_role need)
{
    switch (need) {
    case CH_ROLE_NONE:
        return true;
    case CH_ROLE_INGEST:
        return have == CH_ROLE_INGEST || have == CH_ROLE_ADMIN;
    case CH_ROLE_VIEWER:
    case CH_ROLE_ANALYST:
    case CH_ROLE_ADMIN:
        /* The console ladder; ingest is outside it. */
        return have >= CH_ROLE_VIEWER && have <= CH_ROLE_ADMIN && have >= need;
    case CH_ROLE__COUNT:
        break;
    }
    return false;
}

/* ---- policy, clock, secrets ---------------------------------------------------------------- */

void ch_auth_policy_default(ch_auth_policy *p)
{
    p->session_idle_ms = 30 * 60 * 1000LL;
    p->session_absolute_ms = 12 * 3600 * 1000LL;
    p->free_failures = 3;
    p->backoff_base_ms = 1000;
    p->backoff_max_ms = 15 * 60 * 1000LL;
    p->failure_reset_ms = 3600 * 1000LL;
    p->token_touch_ms = 60 * 1000;
    p->pw_opslimit = crypto_pwhash_OPSLIMIT_INTERACTIVE;
    p->pw_memlimit = crypto_pwhash_MEMLIMIT_INTERACTIVE;
}

static int64_t wall_ms(void *ud)
{
    (void)ud;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ch_accounts_set_policy(ch_accounts *a, const ch_auth_policy *p)
{
    a->pol = *p;
    a->dummy_hash[0] = '\0'; /* remade under the new parameters */
}

const ch_auth_policy *ch_accounts_policy(const ch_accounts *a) { return &a->pol; }

void ch_accounts_set_clock(ch_accounts *a, ch_clock_fn fn, void *ud)
{
    a->clock = fn != NULL ? fn : wall_ms;
    a->clock_ud = ud;
}

int64_t ch_accounts_now(const ch_accounts *a) { return a->clock(a->clock_ud); }

uint64_t ch_accounts_ct_compares(const ch_accounts *a) { return a->ct_compares; }

const char *ch_accounts_path(const ch_accounts *a) { return a->path; }

void ch__auth_hash_secret(ch__secret_kind kind, const uint8_t secret[CH__SECRET_BYTES],
                          uint8_t out[CH__HASH_BYTES])
{
    /* BLAKE2b keyed with a per-kind constant: domain separation, not secrecy. */
    static const char *const keys[] = {
        [CH__SECRET_TOKEN] = "coinhound api token v1 .........",
        [CH__SECRET_SESSION] = "coinhound session id v1 ........",
        [CH__SECRET_CSRF] = "coinhound csrf token v1 ........",
    };
    crypto_generichash(out, CH__HASH_BYTES, secret, CH__SECRET_BYTES,
                       (const unsigned char *)keys[kind], strlen(keys[kind]));
}

void ch__auth_random_secret(uint8_t raw[CH__SECRET_BYTES], char b64[CH_SECRET_B64_LEN + 1])
{
    randombytes_buf(raw, CH__SECRET_BYTES);
    sodium_bin2base64(b64, CH_SECRET_B64_LEN + 1, raw, CH__SECRET_BYTES,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

bool ch__auth_decode_secret(const char *s, size_t n, uint8_t raw[CH__SECRET_BYTES])
{
    size_t got = 0;
    if (n != CH_SECRET_B64_LEN)
        return false;
    if (sodium_base642bin(raw, CH__SECRET_BYTES, s, n, NULL, &got, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        got != CH__SECRET_BYTES)
        return false;
    /* One spelling per secret: the last character carries 2 spare bits, which must be 0. */
    char again[CH_SECRET_B64_LEN + 1];
    sodium_bin2base64(again, sizeof again, raw, CH__SECRET_BYTES,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return memcmp(again, s, n) == 0;
}

bool ch__auth_ct_eq(ch_accounts *a, const uint8_t *x, const uint8_t *y, size_t n)
{
    a->ct_compares++;
    return sodium_memcmp(x, y, n) == 0;
}

int ch__auth_password_ok(const char *password, ch_error *err)
{
    size_t n = strlen(password);
    if (n < CH_PASSWORD_MIN)
        return ch_error_set(err, CH_EUSAGE, "a password needs at least %d characters",
                            CH_PASSWORD_MIN);
    if (n > CH_PASSWORD_MAX)
        return ch_error_set(err, CH_EUSAGE, "a password has at most %d characters",
                            CH_PASSWORD_MAX);
    return 0;
}

int ch__auth_hash_password(ch_accounts *a, const char *password, char out[crypto_pwhash_STRBYTES],
                           ch_error *err)
{
    if (crypto_pwhash_str_alg(out, password, strlen(password), a->pol.pw_opslimit,
                              a->pol.pw_memlimit, crypto_pwhash_ALG_ARGON2ID13) != 0)
        return ch_error_set(err, CH_ENOMEM,
                            "hashing a password: out of memory (Argon2id needs"
                            " %zu bytes)",
                            a->pol.pw_memlimit);
    return 0;
}

/* A one-time password: 15 random bytes, 20 base64url characters. */
static int one_time_password(char *out, size_t cap, ch_error *err)
{
    uint8_t raw[15];
    if (cap < 21)
        return ch_error_set(err, CH_EUSAGE, "password buffer too small");
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(out, cap, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    return 0;
}

/* ---- store plumbing ------------------------------------------------------------------------ */

int ch__auth_db_error(ch_accounts *a, ch_error *err, const char *what)
{
    ch_sql_error(a->db, a->path, err, what);
    return CH_EIO;
}

int ch__auth_prepare(ch_accounts *a, const char *sql, sqlite3_stmt **st, ch_error *err)
{
    return ch_sql_prepare(a->db, a->path, sql, st, err) < 0 ? CH_EIO : 0;
}

int ch__auth_begin(ch_accounts *a, ch_error *err)
{
    return ch_sql_exec(a->db, a->path, "BEGIN IMMEDIATE", err) < 0 ? CH_EIO : 0;
}

int ch__auth_commit(ch_accounts *a, ch_error *err)
{
    if (ch_sql_exec(a->db, a->path, "COMMIT", err) < 0) {
        ch__auth_rollback(a);
        return CH_EIO;
    }
    return 0;
}

void ch__auth_rollback(ch_accounts *a)
{
    if (!sqlite3_get_autocommit(a->db))
        ch_sql_exec(a->db, a->path, "ROLLBACK", NULL);
}

int ch__auth_audit(ch_accounts *a, const ch_actor *who, const char *action, const char *object,
                   const char *before, const char *after, ch_error *err)
{
    ch_audit_entry e = {
        .ts = ch_accounts_now(a),
        .actor = who != NULL && who->name != NULL && *who->name ? who->name : "unknown",
        .source = who != NULL && who->source != NULL && *who->source ? who->source : "unknown",
        .action = action,
        .object = object,
        .before = before,
        .after = after,
    };
    return ch_audit_append_db(a->db, a->path, &e, err);
}

int ch__account_state_json(ch_buf *b, const char *name, ch_role role, bool disabled,
                           bool must_change)
{
    ch_buf_clear(b);
    int rc;
    if ((rc = ch_buf_adds(b, "{\"name\":")) < 0 ||
        (rc = ch_buf_add_json_str(b, name, strlen(name))) < 0)
        return rc;
    return ch_buf_printf(b, ",\"role\":\"%s\",\"disabled\":%s,\"must_change\":%s}",
                         ch_role_name(role), disabled ? "true" : "false",
                         must_change ? "true" : "false");
}

static int token_state_json(ch_buf *b, const char *name, ch_role role, const char *shown,
                            bool revoked)
{
    ch_buf_clear(b);
    int rc;
    if ((rc = ch_buf_adds(b, "{\"name\":")) < 0 ||
        (rc = ch_buf_add_json_str(b, name, strlen(name))) < 0)
        return rc;
    return ch_buf_printf(b, ",\"role\":\"%s\",\"shown\":\"%s\",\"revoked\":%s}", ch_role_name(role),
                         shown, revoked ? "true" : "false");
}

static int check_version(ch_accounts *a, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = ch__auth_prepare(a, "SELECT value FROM auth_meta WHERE key = 'auth_schema'", &st, err);
    if (rc < 0)
        return rc;
    int step = sqlite3_step(st), v = -1;
    if (step == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    else if (step != SQLITE_DONE)
        rc = ch__auth_db_error(a, err, "reading the auth schema version");
    sqlite3_finalize(st);
    if (rc < 0)
        return rc;
    if (v > CH_AUTH_SCHEMA_VERSION)
        return ch_error_set(err, CH_EUSAGE,
                            "%s: auth schema version %d is newer than this coinhound's (%d)",
                            a->path, v, CH_AUTH_SCHEMA_VERSION);
    /* Versions are our own integers, not input. A new database has just been given the
     * latest tables: it is at the latest version. */
    char bump[96];
    if (v < 0) {
        snprintf(bump, sizeof bump,
                 "INSERT INTO auth_meta (key, value) VALUES ('auth_schema', '%d')",
                 CH_AUTH_SCHEMA_VERSION);
        return ch_sql_exec(a->db, a->path, bump, err);
    }
    for (int i = v > 0 ? v - 1 : 0; i + 1 < CH_AUTH_SCHEMA_VERSION; i++) {
        if ((rc = ch_sql_exec(a->db, a->path, upgrades[i], err)) < 0)
            return rc;
        snprintf(bump, sizeof bump, "UPDATE auth_meta SET value = '%d' WHERE key = 'auth_schema'",
                 i + 2);
        if ((rc = ch_sql_exec(a->db, a->path, bump, err)) < 0)
            return rc;
    }
    return 0;
}

int ch_accounts_open(const char *path, bool create, ch_accounts **out, ch_error *err)
{
    char def[PATH_MAX];
    *out = NULL;
    if (sodium_init() < 0)
        return ch_error_set(err, CH_ERR, "libsodium cannot initialise");
    if (path == NULL) {
        if (ch_store_default_path(def, sizeof def) < 0)
            return ch_error_set(err, CH_ELIMIT, "data directory path too long");
        path = def;
    }
    sqlite3 *db = NULL;
    int rc = ch_sql_open(path, create, &db, err);
    if (rc < 0)
        return rc;
    ch_accounts *a = ch_calloc(1, sizeof *a);
    if (a == NULL || (a->path = ch_strdup(path)) == NULL) {
        ch_free(a);
        sqlite3_close_v2(db);
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    }
    a->db = db;
    a->clock = wall_ms;
    ch_auth_policy_default(&a->pol);
    if ((rc = ch__auth_begin(a, err)) < 0)
        goto fail;
    if ((rc = ch_sql_exec(db, path, schema, err)) < 0 || (rc = check_version(a, err)) < 0 ||
        (rc = ch_audit_schema_db(db, path, err)) < 0) {
        ch__auth_rollback(a);
        goto fail;
    }
    if ((rc = ch__auth_commit(a, err)) < 0)
        goto fail;
    *out = a;
    return 0;
fail:
    ch_accounts_close(a);
    return rc;
}

void ch_accounts_close(ch_accounts *a)
{
    if (a == NULL)
        return;
    ch__auth_rollback(a);
    sqlite3_close_v2(a->db);
    ch_free(a->path);
    ch_free(a);
}

/* ---- accounts ------------------------------------------------------------------------------ */

bool ch_account_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > CH_ACCOUNT_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '@' && c != '-')))
            return false;
    }
    return true;
}

static int count_rows(ch_accounts *a, const char *sql, int64_t *n, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = ch__auth_prepare(a, sql, &st, err);
    if (rc < 0)
        return rc;
    if (sqlite3_step(st) == SQLITE_ROW)
        *n = sqlite3_column_int64(st, 0);
    else
        rc = ch__auth_db_error(a, err, "counting");
    sqlite3_finalize(st);
    return rc;
}

static const char account_cols[] =
    "SELECT a.id, a.name, a.role, a.disabled, a.must_change, a.created, a.updated,"
    " a.last_login, t.locked_until, t.failures, t.last_failure FROM accounts a"
    " LEFT JOIN auth_throttle t ON t.kind = 'account' AND t.key = a.name";

static void account_row(ch_accounts *a, sqlite3_stmt *st, ch_account_info *o)
{
    memset(o, 0, sizeof *o);
    o->id = sqlite3_column_int64(st, 0);
    snprintf(o->name, sizeof o->name, "%s", ch_sql_col_text(st, 1));
    if (!ch_role_parse(ch_sql_col_text(st, 2), &o->role))
        o->role = CH_ROLE_NONE;
    o->disabled = sqlite3_column_int(st, 3) != 0;
    o->must_change = sqlite3_column_int(st, 4) != 0;
    o->created = sqlite3_column_int64(st, 5);
    o->updated = sqlite3_column_int64(st, 6);
    o->last_login = ch_sql_col_time(st, 7, 0);
    int64_t now = ch_accounts_now(a), locked = ch_sql_col_time(st, 8, 0);
    o->locked_until = locked > now ? locked : 0;
    /* Failures older than the reset window are forgotten at the next failure; show it so. */
    if (now - ch_sql_col_time(st, 10, 0) <= a->pol.failure_reset_ms || o->locked_until)
        o->failures = (unsigned)sqlite3_column_int(st, 9);
}

int ch_account_get(ch_accounts *a, const char *name, ch_account_info *out, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    char sql[sizeof account_cols + 32];
    snprintf(sql, sizeof sql, "%s WHERE a.name = ?1", account_cols);
    int rc = ch__auth_prepare(a, sql, &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        account_row(a, st, out);
    else if (step == SQLITE_DONE)
        rc = ch_error_set(err, CH_ENOTFOUND, "no account '%s'", name);
    else
        rc = ch__auth_db_error(a, err, "reading an account");
    sqlite3_finalize(st);
    return rc;
}

int ch_account_list(ch_accounts *a, ch_account_info **out, size_t *n, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    char sql[sizeof account_cols + 32];
    *out = NULL;
    *n = 0;
    snprintf(sql, sizeof sql, "%s ORDER BY a.name", account_cols);
    int rc = ch__auth_prepare(a, sql, &st, err);
    if (rc < 0)
        return rc;
    size_t cap = 0;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            ch_account_info *p = ch_grow(*out, &cap, 16, sizeof *p);
            if (p == NULL) {
                rc = ch_error_set(err, CH_ENOMEM, "out of memory");
                break;
            }
            *out = p;
        }
        account_row(a, st, &(*out)[(*n)++]);
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = ch__auth_db_error(a, err, "listing accounts");
    sqlite3_finalize(st);
    if (rc < 0) {
        ch_free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

/* Step st, the bound INSERT of a new account or token named name, audit it as action on
 * "<kind>:<name>" with after (its state) and commit the transaction. A name in use is the
 * user's error ("<what> '<name>' exists already"), not the database's. */
static int insert_audited(ch_accounts *a, sqlite3_stmt *st, const ch_actor *who, const char *kind,
                          const char *what, const char *name, const char *action, const char *after,
                          ch_error *err)
{
    int step = sqlite3_step(st);
    if (step == SQLITE_CONSTRAINT_UNIQUE)
        return ch_error_set(err, CH_EUSAGE, "%s '%s' exists already", what, name);
    if (step != SQLITE_DONE) {
        char doing[48];
        snprintf(doing, sizeof doing, "adding %s", what);
        return ch__auth_db_error(a, err, doing);
    }
    char object[CH_ACCOUNT_NAME_MAX + 16];
    snprintf(object, sizeof object, "%s:%s", kind, name);
    int rc = ch__auth_audit(a, who, action, object, NULL, after, err);
    return rc < 0 ? rc : ch__auth_commit(a, err);
}

int ch_account_add(ch_accounts *a, const ch_actor *who, const char *name, ch_role role,
                   char *password, size_t cap, ch_error *err)
{
    char hash[crypto_pwhash_STRBYTES];
    sqlite3_stmt *st = NULL;
    ch_buf after;
    int rc;
    ch_buf_init(&after, 4096);
    if (!ch_account_name_valid(name))
        return ch_error_set(err, CH_EUSAGE,
                            "'%.80s' is not an account name (1-%d of A-Z a-z 0-9 . _ @ -,"
                            " starting with a letter or digit)",
                            name, CH_ACCOUNT_NAME_MAX);
    if (role != CH_ROLE_VIEWER && role != CH_ROLE_ANALYST && role != CH_ROLE_ADMIN)
        return ch_error_set(err, CH_EUSAGE,
                            "an account's role is admin, analyst or viewer (ingest is for tokens)");
    if ((rc = one_time_password(password, cap, err)) < 0 ||
        (rc = ch__auth_hash_password(a, password, hash, err)) < 0)
        goto done;
    int64_t now = ch_accounts_now(a), count = 0;
    if ((rc = ch__auth_begin(a, err)) < 0)
        goto done;
    if ((rc = count_rows(a, "SELECT count(*) FROM accounts", &count, err)) < 0)
        goto done;
    if (count >= CH_ACCOUNTS_MAX) {
        rc = ch_error_set(err, CH_ELIMIT, "%s: already %d accounts", a->path, CH_ACCOUNTS_MAX);
        goto done;
    }
    if ((rc = ch__auth_prepare(a,
                               "INSERT INTO accounts (name, role, pwhash, must_change, disabled,"
                               " created, updated) VALUES (?1, ?2, ?3, 1, 0, ?4, ?4)",
                               &st, err)) < 0)
        goto done;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ch_role_name(role), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now);
    if ((rc = ch__account_state_json(&after, name, role, false, true)) < 0)
        goto done;
    rc = insert_audited(a, st, who, "account", "an account", name, "user.add", after.data, err);
done:
    if (rc < 0) {
        ch__auth_rollback(a);
        if (err != NULL && err->msg[0] == '\0')
            ch_error_set(err, rc, "adding an account: %s", ch_strerror(rc));
        if (cap > 0)
            sodium_memzero(password, cap);
    }
    sqlite3_finalize(st);
    sodium_memzero(hash, sizeof hash);
    ch_buf_free(&after);
    return rc;
}

/* Read the account's state for the audit's "before" inside the open transaction. */
static int load_for_change(ch_accounts *a, const char *name, ch_account_info *info, ch_buf *before,
                           ch_error *err)
{
    int rc = ch_account_get(a, name, info, err);
    if (rc < 0)
        return rc;
    return ch__account_state_json(before, info->name, info->role, info->disabled,
                                  info->must_change);
}

/* Run one UPDATE on an account (?1 the name, ?2 the time, ?3 an integer or text value). */
static int update_account(ch_accounts *a, const char *sql, const char *name, int64_t now,
                          const char *text, int64_t num, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = ch__auth_prepare(a, sql, &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now);
    if (text != NULL)
        sqlite3_bind_text(st, 3, text, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(st, 3, num);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = ch__auth_db_error(a, err, "updating an account");
    sqlite3_finalize(st);
    return rc;
}

/* One audited change of an account's state: disabled or role, the other kept. An account
 * already in the asked state is neither written nor audited. Disabling ends the account's
 * sessions in the same transaction. Sessions carry the role they were opened with only through
 * the account row (checked on every request), so a demotion applies at the next request: no
 * session ends for it. */
static int change_state(ch_accounts *a, const ch_actor *who, const char *name, bool disabled,
                        ch_role role, bool is_role, ch_error *err)
{
    ch_account_info info;
    ch_buf before, after;
    ch_buf_init(&before, 4096);
    ch_buf_init(&after, 4096);
    char object[CH_ACCOUNT_NAME_MAX + 16];
    int rc = ch__auth_begin(a, err);
    if (rc < 0)
        goto done;
    if ((rc = load_for_change(a, name, &info, &before, err)) < 0)
        goto done;
    if (is_role ? info.role == role : info.disabled == disabled) {
        ch__auth_rollback(a);
        goto done;
    }
    if (is_role)
        disabled = info.disabled;
    else
        role = info.role;
    snprintf(object, sizeof object, "account:%s", info.name);
    const char *sql = is_role ? "UPDATE accounts SET role = ?3, updated = ?2 WHERE name = ?1"
                              : "UPDATE accounts SET disabled = ?3, updated = ?2 WHERE name = ?1";
    if ((rc = update_account(a, sql, name, ch_accounts_now(a), is_role ? ch_role_name(role) : NULL,
                             disabled, err)) < 0 ||
        (!is_role && disabled && (rc = ch_session_destroy_all(a, info.id, err)) < 0) ||
        (rc = ch__account_state_json(&after, info.name, role, disabled, info.must_change)) < 0 ||
        (rc = ch__auth_audit(a, who,
                             is_role    ? "user.role"
                             : disabled ? "user.disable"
                                        : "user.enable",
                             object, before.data, after.data, err)) < 0)
        goto done;
    rc = ch__auth_commit(a, err);
done:
    if (rc < 0)
        ch__auth_rollback(a);
    ch_buf_free(&before);
    ch_buf_free(&after);
    return rc < 0 ? rc : 0;
}

int ch_account_set_disabled(ch_accounts *a, const ch_actor *who, const char *name, bool disabled,
                            ch_error *err)
{
    return change_state(a, who, name, disabled, CH_ROLE_VIEWER, false, err);
}

int ch_account_set_role(ch_accounts *a, const ch_actor *who, const char *name, ch_role role,
                        ch_error *err)
{
    if (role != CH_ROLE_VIEWER && role != CH_ROLE_ANALYST && role != CH_ROLE_ADMIN)
        return ch_error_set(err, CH_EUSAGE,
                            "an account's role is admin, analyst or viewer (ingest is for tokens)");
    return change_state(a, who, name, false, role, true, err);
}

int ch_account_reset_password(ch_accounts *a, const ch_actor *who, const char *name,
                              const char *password, bool must_change, char *out, size_t cap,
                              ch_error *err)
{
    char hash[crypto_pwhash_STRBYTES];
    ch_account_info info;
    ch_buf before, after;
    ch_buf_init(&before, 4096);
    ch_buf_init(&after, 4096);
    char object[CH_ACCOUNT_NAME_MAX + 16];
    int rc;
    if (password == NULL) {
        if ((rc = one_time_password(out, cap, err)) < 0)
            goto done;
        password = out;
        must_change = true;
    } else if ((rc = ch__auth_password_ok(password, err)) < 0) {
        goto done;
    }
    /* Existence first, so that a mistyped name does not cost a hash; the hash outside the
     * write transaction; the change inside it. */
    if ((rc = ch_account_get(a, name, &info, err)) < 0 ||
        (rc = ch__auth_hash_password(a, password, hash, err)) < 0 ||
        (rc = ch__auth_begin(a, err)) < 0 ||
        (rc = load_for_change(a, name, &info, &before, err)) < 0)
        goto done;
    snprintf(object, sizeof object, "account:%s", info.name);
    if ((rc = update_account(a, "UPDATE accounts SET pwhash = ?3, updated = ?2 WHERE name = ?1",
                             name, ch_accounts_now(a), hash, 0, err)) < 0 ||
        (rc =
             update_account(a, "UPDATE accounts SET must_change = ?3, updated = ?2 WHERE name = ?1",
                            name, ch_accounts_now(a), NULL, must_change, err)) < 0 ||
        (rc = ch_session_destroy_all(a, info.id, err)) < 0 ||
        (rc = ch__throttle_clear(a, "account", info.name, err)) < 0 ||
        (rc = ch__account_state_json(&after, info.name, info.role, info.disabled, must_change)) <
            0 ||
        (rc = ch__auth_audit(a, who, "user.passwd", object, before.data, after.data, err)) < 0)
        goto done;
    rc = ch__auth_commit(a, err);
done:
    if (rc < 0) {
        ch__auth_rollback(a);
        if (out != NULL && cap > 0)
            sodium_memzero(out, cap);
    }
    sodium_memzero(hash, sizeof hash);
    ch_buf_free(&before);
    ch_buf_free(&after);
    return rc < 0 ? rc : 0;
}

/* ---- tokens -------------------------------------------------------------------------------- */

static const char token_cols[] = "SELECT id, name, role, shown, created_by, created, revoked,"
                                 " last_used, last_source, hash FROM api_tokens";

static void token_row(sqlite3_stmt *st, ch_token_info *o)
{
    memset(o, 0, sizeof *o);
    o->id = sqlite3_column_int64(st, 0);
    snprintf(o->name, sizeof o->name, "%s", ch_sql_col_text(st, 1));
    if (!ch_role_parse(ch_sql_col_text(st, 2), &o->role))
        o->role = CH_ROLE_NONE;
    snprintf(o->shown, sizeof o->shown, "%s", ch_sql_col_text(st, 3));
    snprintf(o->created_by, sizeof o->created_by, "%s", ch_sql_col_text(st, 4));
    o->created = sqlite3_column_int64(st, 5);
    o->revoked = ch_sql_col_time(st, 6, 0);
    o->last_used = ch_sql_col_time(st, 7, 0);
    snprintf(o->last_source, sizeof o->last_source, "%s", ch_sql_col_text(st, 8));
}

int ch_token_create(ch_accounts *a, const ch_actor *who, const char *name, ch_role role,
                    char *token, size_t cap, ch_error *err)
{
    uint8_t raw[CH__SECRET_BYTES], hash[CH__HASH_BYTES];
    char b64[CH_SECRET_B64_LEN + 1], shown[CH_TOKEN_SHOWN_LEN + 1];
    sqlite3_stmt *st = NULL;
    ch_buf after;
    ch_buf_init(&after, 4096);
    int rc = 0;
    if (!ch_account_name_valid(name))
        return ch_error_set(err, CH_EUSAGE,
                            "'%.80s' is not a token name (1-%d of A-Z a-z 0-9 . _ @ -,"
                            " starting with a letter or digit)",
                            name, CH_ACCOUNT_NAME_MAX);
    if (role <= CH_ROLE_NONE || role > CH_ROLE_ADMIN)
        return ch_error_set(err, CH_EUSAGE, "a token's role is admin, analyst, viewer or ingest");
    if (cap <= CH_TOKEN_LEN)
        return ch_error_set(err, CH_EUSAGE, "token buffer too small");
    ch__auth_random_secret(raw, b64);
    snprintf(token, cap, "%s%s", CH_TOKEN_PREFIX, b64);
    snprintf(shown, sizeof shown, "%.*s", CH_TOKEN_SHOWN_LEN, token);
    ch__auth_hash_secret(CH__SECRET_TOKEN, raw, hash);
    int64_t now = ch_accounts_now(a), count = 0;
    if ((rc = ch__auth_begin(a, err)) < 0 ||
        (rc = count_rows(a, "SELECT count(*) FROM api_tokens WHERE revoked IS NULL", &count, err)) <
            0)
        goto done;
    if (count >= CH_ACCOUNTS_MAX) {
        rc = ch_error_set(err, CH_ELIMIT, "%s: already %d active tokens", a->path, CH_ACCOUNTS_MAX);
        goto done;
    }
    if ((rc = ch__auth_prepare(a,
                               "INSERT INTO api_tokens (name, role, shown, hash, created,"
                               " created_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                               &st, err)) < 0)
        goto done;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ch_role_name(role), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, shown, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, hash, sizeof hash, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, now);
    sqlite3_bind_text(st, 6, who != NULL && who->name != NULL ? who->name : "unknown", -1,
                      SQLITE_STATIC);
    if ((rc = token_state_json(&after, name, role, shown, false)) < 0)
        goto done;
    rc = insert_audited(a, st, who, "token", "an active token", name, "token.create", after.data,
                        err);
done:
    if (rc < 0) {
        ch__auth_rollback(a);
        sodium_memzero(token, cap);
    }
    sqlite3_finalize(st);
    sodium_memzero(raw, sizeof raw);
    sodium_memzero(b64, sizeof b64);
    ch_buf_free(&after);
    return rc;
}

int ch_token_verify(ch_accounts *a, const char *token, size_t len, const char *source,
                    ch_token_info *out, ch_error *err)
{
    static const char nope[] = "no such active token";
    uint8_t raw[CH__SECRET_BYTES], hash[CH__HASH_BYTES];
    char shown[CH_TOKEN_SHOWN_LEN + 1];
    size_t plen = strlen(CH_TOKEN_PREFIX);
    if (len != CH_TOKEN_LEN || memcmp(token, CH_TOKEN_PREFIX, plen) != 0 ||
        !ch__auth_decode_secret(token + plen, len - plen, raw))
        return ch_error_set(err, CH_ENOTFOUND, nope);
    memcpy(shown, token, CH_TOKEN_SHOWN_LEN);
    shown[CH_TOKEN_SHOWN_LEN] = '\0';
    ch__auth_hash_secret(CH__SECRET_TOKEN, raw, hash);
    sodium_memzero(raw, sizeof raw);

    sqlite3_stmt *st = NULL;
    char sql[sizeof token_cols + 64];
    snprintf(sql, sizeof sql, "%s WHERE shown = ?1 AND revoked IS NULL", token_cols);
    int rc = ch__auth_prepare(a, sql, &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, shown, -1, SQLITE_STATIC);
    bool found = false;
    int step;
    /* The shown prefix is public, so several rows may share it (2^-48 by chance, or
     * deliberately by nobody who lacks the secret): each is compared, in constant time. */
    while (!found && (step = sqlite3_step(st)) == SQLITE_ROW) {
        const void *h = sqlite3_column_blob(st, 9);
        if (h != NULL && sqlite3_column_bytes(st, 9) == CH__HASH_BYTES &&
            ch__auth_ct_eq(a, h, hash, CH__HASH_BYTES)) {
            token_row(st, out);
            found = true;
        }
    }
    if (!found && step != SQLITE_DONE)
        rc = ch__auth_db_error(a, err, "looking up a token");
    sqlite3_finalize(st);
    if (rc < 0)
        return rc;
    if (!found)
        return ch_error_set(err, CH_ENOTFOUND, nope);
    int64_t now = ch_accounts_now(a);
    if (now - out->last_used < a->pol.token_touch_ms)
        return 0;
    /* Last use: a write, so at most once per token_touch_ms; losing it to a busy database is
     * not worth refusing the request. */
    if (ch__auth_prepare(a, "UPDATE api_tokens SET last_used = ?2, last_source = ?3 WHERE id = ?1",
                         &st, NULL) == 0) {
        sqlite3_bind_int64(st, 1, out->id);
        sqlite3_bind_int64(st, 2, now);
        sqlite3_bind_text(st, 3, source != NULL ? source : "", -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_DONE) {
            out->last_used = now;
            snprintf(out->last_source, sizeof out->last_source, "%s", source ? source : "");
        }
        sqlite3_finalize(st);
    }
    return 0;
}

int ch_token_revoke(ch_accounts *a, const ch_actor *who, const char *name, ch_error *err)
{
    bool by_shown = strncmp(name, CH_TOKEN_PREFIX, strlen(CH_TOKEN_PREFIX)) == 0;
    sqlite3_stmt *st = NULL;
    ch_token_info info;
    ch_buf before, after;
    ch_buf_init(&before, 4096);
    ch_buf_init(&after, 4096);
    char sql[sizeof token_cols + 64];
    snprintf(sql, sizeof sql, "%s WHERE %s = ?1 AND revoked IS NULL", token_cols,
             by_shown ? "shown" : "name");
    int matches = 0, step;
    int rc = ch__auth_begin(a, err);
    if (rc < 0)
        goto done;
    if ((rc = ch__auth_prepare(a, sql, &st, err)) < 0)
        goto done;
    /* A full token pasted in is cut to its shown part: never stored, never echoed. */
    sqlite3_bind_text(st, 1, name, by_shown ? CH_TOKEN_SHOWN_LEN : -1, SQLITE_TRANSIENT);
    while ((step = sqlite3_step(st)) == SQLITE_ROW)
        if (matches++ == 0)
            token_row(st, &info);
    if (step != SQLITE_DONE) {
        rc = ch__auth_db_error(a, err, "looking up a token");
        goto done;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (matches == 0) {
        rc = ch_error_set(err, CH_ENOTFOUND, "no active token '%.*s'",
                          by_shown ? CH_TOKEN_SHOWN_LEN : 80, name);
        goto done;
    }
    if (matches > 1) {
        rc = ch_error_set(err, CH_EUSAGE, "%d active tokens show as '%.*s': revoke by name",
                          matches, CH_TOKEN_SHOWN_LEN, name);
        goto done;
    }
    if ((rc = ch__auth_prepare(a, "UPDATE api_tokens SET revoked = ?2 WHERE id = ?1", &st, err)) <
        0)
        goto done;
    sqlite3_bind_int64(st, 1, info.id);
    sqlite3_bind_int64(st, 2, ch_accounts_now(a));
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = ch__auth_db_error(a, err, "revoking a token");
        goto done;
    }
    char object[CH_ACCOUNT_NAME_MAX + 16];
    snprintf(object, sizeof object, "token:%s", info.name);
    if ((rc = token_state_json(&before, info.name, info.role, info.shown, false)) < 0 ||
        (rc = token_state_json(&after, info.name, info.role, info.shown, true)) < 0 ||
        (rc = ch__auth_audit(a, who, "token.revoke", object, before.data, after.data, err)) < 0)
        goto done;
    rc = ch__auth_commit(a, err);
done:
    if (rc < 0)
        ch__auth_rollback(a);
    sqlite3_finalize(st);
    ch_buf_free(&before);
    ch_buf_free(&after);
    return rc;
}

int ch_token_list(ch_accounts *a, bool with_revoked, ch_token_info **out, size_t *n, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    char sql[sizeof token_cols + 64];
    *out = NULL;
    *n = 0;
    snprintf(sql, sizeof sql, "%s%s ORDER BY name, id", token_cols,
             with_revoked ? "" : " WHERE revoked IS NULL");
    int rc = ch__auth_prepare(a, sql, &st, err);
    if (rc < 0)
        return rc;
    size_t cap = 0;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            ch_token_info *p = ch_grow(*out, &cap, 16, sizeof *p);
            if (p == NULL) {
                rc = ch_error_set(err, CH_ENOMEM, "out of memory");
                break;
            }
            *out = p;
        }
        token_row(st, &(*out)[(*n)++]);
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = ch__auth_db_error(a, err, "listing tokens");
    sqlite3_finalize(st);
    if (rc < 0) {
        ch_free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

/* ---- JSON ---------------------------------------------------------------------------------- */

static int add_time(ch_buf *b, const char *key, int64_t ms)
{
    if (ms == 0)
        return ch_buf_printf(b, ",\"%s\":null", key);
    char t[40];
    ch_time_format(ms, t);
    return ch_buf_printf(b, ",\"%s\":\"%s\"", key, t);
}

static int add_str(ch_buf *b, const char *key, const char *v)
{
    int rc = ch_buf_printf(b, ",\"%s\":", key);
    return rc < 0 ? rc : ch_buf_add_json_str(b, v, strlen(v));
}

int ch_account_info_json(ch_buf *b, const ch_account_info *i)
{
    int rc;
    if ((rc = ch_buf_adds(b, "{\"name\":")) < 0 ||
        (rc = ch_buf_add_json_str(b, i->name, strlen(i->name))) < 0 ||
        (rc = ch_buf_printf(b, ",\"role\":\"%s\",\"disabled\":%s,\"must_change\":%s",
                            ch_role_name(i->role), i->disabled ? "true" : "false",
                            i->must_change ? "true" : "false")) < 0 ||
        (rc = add_time(b, "created", i->created)) < 0 ||
        (rc = add_time(b, "updated", i->updated)) < 0 ||
        (rc = add_time(b, "last_login", i->last_login)) < 0 ||
        (rc = ch_buf_printf(b, ",\"failures\":%u", i->failures)) < 0 ||
        (rc = add_time(b, "locked_until", i->locked_until)) < 0)
        return rc;
    return ch_buf_addc(b, '}');
}

int ch_token_info_json(ch_buf *b, const ch_token_info *i)
{
    int rc;
    if ((rc = ch_buf_adds(b, "{\"name\":")) < 0 ||
        (rc = ch_buf_add_json_str(b, i->name, strlen(i->name))) < 0 ||
        (rc = ch_buf_printf(b, ",\"role\":\"%s\",\"shown\":\"%s\"", ch_role_name(i->role),
                            i->shown)) < 0 ||
        (rc = add_str(b, "created_by", i->created_by)) < 0 ||
        (rc = add_time(b, "created", i->created)) < 0 ||
        (rc = add_time(b, "revoked", i->revoked)) < 0 ||
        (rc = add_time(b, "last_used", i->last_used)) < 0 ||
        (rc = add_str(b, "last_source", i->last_source)) < 0)
        return rc;
    return ch_buf_addc(b, '}');
}

int ch_lockout_info_json(ch_buf *b, const ch_lockout_info *i)
{
    int rc;
    if ((rc = ch_buf_printf(
             b, "{\"kind\":\"%s\",\"key\":", i->is_account ? "account" : "address")) < 0 ||
        (rc = ch_buf_add_json_str(b, i->key, strlen(i->key))) < 0 ||
        (rc = ch_buf_printf(b, ",\"failures\":%u,\"refused\":%llu", i->failures,
                            (unsigned long long)i->refused)) < 0 ||
        (rc = add_time(b, "last_failure", i->last_failure)) < 0 ||
        (rc = add_time(b, "locked_until", i->locked_until)) < 0)
        return rc;
    return ch_buf_addc(b, '}');
}
