/*
 * accounts_int.h - what accounts.c (store, accounts, tokens) and accounts_session.c (sessions,
 * logins, throttling) share inside the module. Not for callers: accounts.h is the contract.
 */
#ifndef CH_SERVER_ACCOUNTS_INT_H
#define CH_SERVER_ACCOUNTS_INT_H

#include <sodium.h>
#include <sqlite3.h>

#include "server/accounts.h"

#define CH__SECRET_BYTES 32
#define CH__HASH_BYTES 32

struct ch_accounts {
    sqlite3 *db;
    char *path;
    ch_auth_policy pol;
    ch_clock_fn clock;
    void *clock_ud;
    uint64_t ct_compares;
    /* An Argon2id string of the current policy that no password matches: an unknown account
     * name is verified against it, so that it costs what a known one does. Made on first use. */
    char dummy_hash[crypto_pwhash_STRBYTES];
};

/* What a stored hash is of: each kind hashes under its own key (domain separation), so a
 * session id presented as a token, or the reverse, can never match. */
typedef enum { CH__SECRET_TOKEN, CH__SECRET_SESSION, CH__SECRET_CSRF } ch__secret_kind;

void ch__auth_hash_secret(ch__secret_kind kind, const uint8_t secret[CH__SECRET_BYTES],
                          uint8_t out[CH__HASH_BYTES]);
/* 32 random bytes into raw and their base64url text (43 characters + NUL) into b64. */
void ch__auth_random_secret(uint8_t raw[CH__SECRET_BYTES], char b64[CH_SECRET_B64_LEN + 1]);
/* Exactly 43 base64url characters in canonical form into 32 bytes; false otherwise. */
bool ch__auth_decode_secret(const char *s, size_t n, uint8_t raw[CH__SECRET_BYTES]);
/* sodium_memcmp, counted (ch_accounts_ct_compares). */
bool ch__auth_ct_eq(ch_accounts *a, const uint8_t *x, const uint8_t *y, size_t n);

int ch__auth_begin(ch_accounts *a, ch_error *err);
int ch__auth_commit(ch_accounts *a, ch_error *err);
void ch__auth_rollback(ch_accounts *a);
int ch__auth_prepare(ch_accounts *a, const char *sql, sqlite3_stmt **st, ch_error *err);
int ch__auth_db_error(ch_accounts *a, ch_error *err, const char *what);

/* Append to the audit log on the store's connection, inside the caller's transaction. */
int ch__auth_audit(ch_accounts *a, const ch_actor *who, const char *action, const char *object,
                   const char *before, const char *after, ch_error *err);
/* Audit state of an account, {"name","role","disabled","must_change"}, into b (cleared). */
int ch__account_state_json(ch_buf *b, const char *name, ch_role role, bool disabled,
                           bool must_change);

/* Argon2id of password under the store's policy into out. */
int ch__auth_hash_password(ch_accounts *a, const char *password, char out[crypto_pwhash_STRBYTES],
                           ch_error *err);
/* CH_EUSAGE with a message fit to show when password is too short or too long. */
int ch__auth_password_ok(const char *password, ch_error *err);

/* Forget the failures and lock of one throttle row (kind 'account' or 'address'). */
int ch__throttle_clear(ch_accounts *a, const char *kind, const char *key, ch_error *err);

#endif
