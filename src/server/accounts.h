/*
 * accounts.h - who may use coinhound: console accounts, API tokens, roles, console sessions,
 * logins with throttling, and the header parsers the HTTP layer needs to find a credential.
 *
 * Nothing exists until an administrator creates it on the command line (`coinhound user add`,
 * `coinhound token create`): there is no default account and no default token.
 *
 * Secrets and how they are kept:
 *   - passwords: Argon2id (libsodium crypto_pwhash_str_alg), the parameters inside the stored
 *     string, rehashed at the next login when the policy's parameters grow;
 *   - API tokens: 256 random bits (randombytes_buf) shown once as "chk_" + base64url (47
 *     characters); stored as BLAKE2b-256 of the 32 bytes. A fast hash is enough for a 256-bit
 *     random secret (nothing to brute-force); the first 8 characters after "chk_" are kept in
 *     clear as a non-secret prefix for listing and for finding the candidate rows, and the hash
 *     is then compared with sodium_memcmp (constant time);
 *   - session ids and CSRF tokens: 256 random bits each, base64url, stored as BLAKE2b-256.
 * A stolen database therefore yields no usable credential.
 *
 * Roles: viewer reads; analyst also changes offenses, notes and reference sets; admin also
 * rules, users, tokens, configuration and responses; ingest only posts records. The router
 * asks ch_role_allows(have, need) with the route's role.
 *
 * Logins are throttled per account and per source address (IPv6 per /64): after a few free
 * failures each further failure locks the key for an exponentially growing delay (capped). The
 * state is in the database, so a restart does not reset it; ch_accounts_lockouts lists it.
 *
 * Every change (accounts, tokens, logins, failed logins, logouts) is written to the audit log
 * (server/audit.h) in the same transaction as the change.
 *
 * Time comes from the store's clock (ch_accounts_set_clock; wall time by default), so tests can
 * move it. Times are ms since the epoch; 0 in an info struct means "never".
 *
 * Tables (auth_meta, accounts, api_tokens, sessions, auth_throttle, audit_log) share the
 * coinhound database file and are versioned by rows of auth_meta ('auth_schema'); see
 * accounts.c.
 *
 * Ownership: ch_accounts owns its connection (ch_accounts_close). Listing functions return
 * arrays the caller frees with ch_free. Strings in info structs are copies inside the struct.
 */
#ifndef CH_SERVER_ACCOUNTS_H
#define CH_SERVER_ACCOUNTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"
#include "server/audit.h"

#define CH_AUTH_SCHEMA_VERSION 1

#define CH_ACCOUNT_NAME_MAX 64 /* [A-Za-z0-9._@-], starting with a letter or digit */
#define CH_PASSWORD_MIN 12
#define CH_PASSWORD_MAX 1024
#define CH_ACCOUNTS_MAX 10000       /* accounts, and active tokens, per database */
#define CH_SESSIONS_PER_ACCOUNT 16  /* the oldest goes when a new one would pass it */
#define CH_THROTTLE_ROWS_MAX 100000 /* per-address rows: the stale ones go first, then oldest */

#define CH_TOKEN_PREFIX "chk_"
#define CH_TOKEN_LEN 47       /* "chk_" + 43 base64url characters */
#define CH_TOKEN_SHOWN_LEN 12 /* "chk_" + 8: the non-secret part shown in listings */
#define CH_SECRET_B64_LEN 43  /* session id, CSRF token: 32 bytes in base64url */
#define CH_SESSION_COOKIE "ch_session"

typedef enum ch_role {
    CH_ROLE_NONE = 0, /* no credential (public routes: login, health) */
    CH_ROLE_INGEST,
    CH_ROLE_VIEWER,
    CH_ROLE_ANALYST,
    CH_ROLE_ADMIN,
    CH_ROLE__COUNT, /* for tables indexed by role */
} ch_role;

/* The names of the first server's token roles (src/server/http.h on the serve branch, written
 * before accounts existed: public, ingest, read), with the same values, so that its route table
 * compiles unchanged once http.h takes ch_role from here instead of defining its own. */
#define CH_ROLE_PUBLIC CH_ROLE_NONE
#define CH_ROLE_READ CH_ROLE_VIEWER

/* "viewer", "analyst", "admin", "ingest" ("none" for CH_ROLE_NONE). */
const char *ch_role_name(ch_role r);
bool ch_role_parse(const char *s, ch_role *out);
/* May a caller holding `have` use a route that needs `need`? CH_ROLE_NONE routes are open to
 * everyone; viewer < analyst < admin; ingest routes admit ingest and admin, and an ingest
 * credential admits nothing else (it is not above viewer). */
bool ch_role_allows(ch_role have, ch_role need);

/* ---- policy and clock ---------------------------------------------------------------------- */

typedef struct ch_auth_policy {
    int64_t session_idle_ms;        /* 30 min: a session unused this long is gone */
    int64_t session_absolute_ms;    /* 12 h: a session this old is gone, used or not */
    unsigned free_failures;         /* 3: failures before the first lock */
    int64_t backoff_base_ms;        /* 1 s: the first lock; each further failure doubles it */
    int64_t backoff_max_ms;         /* 15 min: the longest lock */
    int64_t failure_reset_ms;       /* 1 h: failures older than this are forgotten */
    int64_t token_touch_ms;         /* 60 s: last use of a token is written at most this often */
    unsigned long long pw_opslimit; /* Argon2id: crypto_pwhash_OPSLIMIT_INTERACTIVE */
    size_t pw_memlimit;             /* crypto_pwhash_MEMLIMIT_INTERACTIVE (64 MiB) */
} ch_auth_policy;

void ch_auth_policy_default(ch_auth_policy *p);

typedef int64_t (*ch_clock_fn)(void *ud); /* ms since the epoch */

typedef struct ch_accounts ch_accounts;

/* Open the database at path (NULL: the default path of offense/store.h) and make the tables
 * when missing. Without create, a missing file is CH_ENOTFOUND. CH_EUSAGE when the auth schema
 * is newer than this build; CH_ERR when libsodium cannot initialise. */
int ch_accounts_open(const char *path, bool create, ch_accounts **out, ch_error *err);
void ch_accounts_close(ch_accounts *a);
const char *ch_accounts_path(const ch_accounts *a);
void ch_accounts_set_policy(ch_accounts *a, const ch_auth_policy *p);
const ch_auth_policy *ch_accounts_policy(const ch_accounts *a);
void ch_accounts_set_clock(ch_accounts *a, ch_clock_fn fn, void *ud);
int64_t ch_accounts_now(const ch_accounts *a);
/* Constant-time comparisons (sodium_memcmp) made by this store so far: lets tests pin that
 * every credential check goes through one. */
uint64_t ch_accounts_ct_compares(const ch_accounts *a);

/* ---- accounts ------------------------------------------------------------------------------ */

typedef struct ch_account_info {
    int64_t id;
    char name[CH_ACCOUNT_NAME_MAX + 1];
    ch_role role;
    bool disabled, must_change;
    int64_t created, updated, last_login;
    int64_t locked_until; /* the account's login lock, 0 when none is running */
    unsigned failures;    /* recent failed logins */
} ch_account_info;

/* Is name a valid account or token name? */
bool ch_account_name_valid(const char *name);

/* Create an account with a generated one-time password (20 base64url characters, 120 bits),
 * written NUL-terminated into password (cap >= 21); it must be changed at first login.
 * CH_EUSAGE for a bad name or role NONE/INGEST (ingest is for tokens), or a name in use;
 * CH_ELIMIT past CH_ACCOUNTS_MAX. */
int ch_account_add(ch_accounts *a, const ch_actor *who, const char *name, ch_role role,
                   char *password, size_t cap, ch_error *err);
int ch_account_get(ch_accounts *a, const char *name, ch_account_info *out, ch_error *err);
/* All accounts by name; *out is ch_malloc'd (NULL when there are none). */
int ch_account_list(ch_accounts *a, ch_account_info **out, size_t *n, ch_error *err);
/* Disable (every session ends, logins fail) or enable. CH_ENOTFOUND for an unknown name;
 * changing nothing (already so) is not audited and returns 0. */
int ch_account_set_disabled(ch_accounts *a, const ch_actor *who, const char *name, bool disabled,
                            ch_error *err);
int ch_account_set_role(ch_accounts *a, const ch_actor *who, const char *name, ch_role role,
                        ch_error *err);
/* An administrator's reset: with password NULL a new one-time password is generated into
 * out/cap (must change at next login); otherwise password is set as given (CH_PASSWORD_MIN..
 * CH_PASSWORD_MAX bytes) and must_change as asked. Every session of the account ends and its
 * login lock is cleared. */
int ch_account_reset_password(ch_accounts *a, const ch_actor *who, const char *name,
                              const char *password, bool must_change, char *out, size_t cap,
                              ch_error *err);
/* The account holder's own change (console): old must verify; clears must_change; every
 * session of the account ends (the caller logs in again or makes a new session). Returns 0,
 * or CH_EUSAGE (wrong old password, bad new one) with a message fit to show. */
int ch_account_change_password(ch_accounts *a, const char *name, const char *old_password,
                               const char *new_password, const char *source, ch_error *err);
/* Clear the login lock and failure count of key: an account name or a source address (both
 * kinds of row are looked up under key). CH_ENOTFOUND when there is none. */
int ch_accounts_unlock(ch_accounts *a, const ch_actor *who, const char *key, ch_error *err);

/* ---- tokens -------------------------------------------------------------------------------- */

typedef struct ch_token_info {
    int64_t id;
    char name[CH_ACCOUNT_NAME_MAX + 1];
    ch_role role;
    char shown[CH_TOKEN_SHOWN_LEN + 1]; /* "chk_AbCdEfGh" */
    char created_by[CH_AUDIT_FIELD_MAX + 1];
    int64_t created, revoked, last_used;
    char last_source[64];
} ch_token_info;

/* Create a token; its text (CH_TOKEN_LEN characters) goes NUL-terminated into token
 * (cap > CH_TOKEN_LEN). It is shown once: only its hash is kept. CH_EUSAGE for a bad name or
 * role NONE, or a name held by an active token. */
int ch_token_create(ch_accounts *a, const ch_actor *who, const char *name, ch_role role,
                    char *token, size_t cap, ch_error *err);
/* Verify a token as sent (the Bearer value). 0 with *out filled for an active token (and
 * its last use recorded, see token_touch_ms); CH_ENOTFOUND for anything else (malformed,
 * unknown, revoked) with the same message, so a caller cannot tell them apart. */
int ch_token_verify(ch_accounts *a, const char *token, size_t len, const char *source,
                    ch_token_info *out, ch_error *err);
/* Revoke the active token called name (or, when name starts with "chk_", the one whose shown
 * prefix it is). CH_ENOTFOUND when none. */
int ch_token_revoke(ch_accounts *a, const ch_actor *who, const char *name, ch_error *err);
/* Every token (revoked ones too, with_revoked) by name; *out ch_malloc'd. */
int ch_token_list(ch_accounts *a, bool with_revoked, ch_token_info **out, size_t *n, ch_error *err);

/* ---- sessions and logins ------------------------------------------------------------------- */

/* A new session's secrets, shown once: the cookie value and the CSRF token the console sends
 * back in a header on every state-changing request. */
typedef struct ch_session_new {
    char id[CH_SECRET_B64_LEN + 1];
    char csrf[CH_SECRET_B64_LEN + 1];
} ch_session_new;

typedef struct ch_session_info {
    int64_t account_id;
    char name[CH_ACCOUNT_NAME_MAX + 1];
    ch_role role;
    bool must_change;
    int64_t created, last_seen;
    int64_t expires; /* the earlier of the idle and the absolute end, as of last_seen */
} ch_session_info;

typedef enum ch_login_status {
    CH_LOGIN_OK,
    CH_LOGIN_DENIED,    /* unknown account, wrong password or disabled: one answer for all */
    CH_LOGIN_THROTTLED, /* the account or the address is locked; retry_after_ms says how long */
} ch_login_status;

typedef struct ch_login_result {
    ch_login_status status;
    int64_t retry_after_ms;
    ch_session_new session; /* when OK */
    ch_session_info info;   /* when OK: must_change says the console must ask for a new one */
} ch_login_result;

/* Check name/password from source (the client address) and on success open a session. The
 * verdict is in *res; the return is 0 or a negative code for a store failure. An unknown name
 * costs an Argon2id verification like a known one, so timing does not reveal which names exist.
 * Throttled attempts are refused before any password check and counted in the throttle row,
 * not audited one by one (the lock bounds the audited failures per key). */
int ch_login(ch_accounts *a, const char *name, const char *password, const char *source,
             ch_login_result *res, ch_error *err);

/* Open a session for an account (ch_login does this; also after a password change). */
int ch_session_create(ch_accounts *a, int64_t account_id, const char *source, ch_session_new *out,
                      ch_error *err);
/* Look up the session whose cookie value is id: 0 with *out when it is live; CH_ENOTFOUND
 * when unknown, past the idle or absolute timeout (it is deleted), or its account is disabled.
 * Does not extend it: ch_session_touch does, once the request is authorised. */
int ch_session_check(ch_accounts *a, const char *id, size_t len, ch_session_info *out,
                     ch_error *err);
int ch_session_touch(ch_accounts *a, const char *id, size_t len, ch_error *err);
/* Does csrf match the session's CSRF token? Constant-time; false for anything malformed. */
bool ch_session_csrf_ok(ch_accounts *a, const char *id, size_t len, const char *csrf,
                        size_t csrf_len);
/* A new CSRF token for a live session (the console lost its copy, e.g. on reload). */
int ch_session_rotate_csrf(ch_accounts *a, const char *id, size_t len, char *csrf, size_t cap,
                           ch_error *err);
/* Logout. Audited with the session's account as actor. CH_ENOTFOUND when no such session. */
int ch_session_destroy(ch_accounts *a, const char *id, size_t len, const char *source,
                       ch_error *err);
/* End every session of an account; returns how many. */
int ch_session_destroy_all(ch_accounts *a, int64_t account_id, ch_error *err);

/* ---- lockouts ------------------------------------------------------------------------------ */

typedef struct ch_lockout_info {
    bool is_account; /* else an address (IPv6 as its /64) */
    char key[80];
    unsigned failures;
    int64_t last_failure, locked_until;
    uint64_t refused; /* attempts refused while locked */
} ch_lockout_info;

/* Throttle rows with recent failures or a running lock, locked ones first; *out ch_malloc'd. */
int ch_accounts_lockouts(ch_accounts *a, ch_lockout_info **out, size_t *n, ch_error *err);

/* ---- JSON for the CLI and the routes --------------------------------------------------------- */

int ch_account_info_json(ch_buf *b, const ch_account_info *i);
int ch_token_info_json(ch_buf *b, const ch_token_info *i);
int ch_lockout_info_json(ch_buf *b, const ch_lockout_info *i);

/* ---- HTTP header parsers (outside input; fuzzed by tests/fuzz/fuzz_auth_headers.c) -------- */

#define CH_AUTH_HEADER_MAX 8192 /* longer Authorization or Cookie headers are refused */
#define CH_AUTH_COOKIES_MAX 64  /* cookie pairs looked at */

/* `Authorization: Bearer TOKEN` (RFC 6750): scheme case-insensitive, one or more spaces, a
 * token68 value, optional surrounding whitespace. *tok points into hdr. CH_ENOTFOUND for
 * another scheme, CH_EPARSE for a malformed value, CH_ELIMIT past CH_AUTH_HEADER_MAX. */
int ch_auth_parse_bearer(const char *hdr, size_t n, const char **tok, size_t *tok_len);
/* The value of cookie `name` in a Cookie header (RFC 6265 cookie-string, leniently spaced;
 * a DQUOTE'd value is unquoted). *val points into hdr. CH_ENOTFOUND when absent, CH_EPARSE
 * when the name appears twice (an attacker's sibling-domain cookie must not shadow ours) or
 * the header is malformed around it, CH_ELIMIT past the caps above. */
int ch_auth_cookie_get(const char *hdr, size_t n, const char *name, const char **val, size_t *len);
/* The Set-Cookie value for a session: HttpOnly, SameSite=Strict, Path=/, Secure when the
 * server speaks TLS, Max-Age the absolute timeout; with id NULL, the clearing cookie
 * (logout). Returns the length, or CH_ELIMIT when cap is too small (256 is enough). */
int ch_session_cookie(char *buf, size_t cap, const char *id, bool secure, int64_t max_age_ms);

#endif
