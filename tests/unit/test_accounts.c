/*
 * test_accounts.c - accounts, tokens, sessions, the login throttle, roles and the audit log
 * (src/server/accounts.h, src/server/audit.h) against a temporary database, with a clock the
 * tests move. Argon2id runs at libsodium's minimum limits here so that the suite stays fast;
 * the parameters are the policy's, the algorithm the same.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/mem.h"
#include "offense/store.h"
#include "server/accounts.h"
#include "server/audit.h"

static char dir[128], db[192];
static int64_t fake_now;
static const ch_actor admin = {"root", "cli"};

static int64_t fake_clock(void *ud)
{
    (void)ud;
    return fake_now;
}

static int setup(void **state)
{
    (void)state;
    static int n;
    snprintf(dir, sizeof dir, "/tmp/ch_accounts_%d_%d", (int)getpid(), n++);
    snprintf(db, sizeof db, "%s/c.db", dir);
    mkdir(dir, 0777);
    fake_now = 1717430400000; /* 2024-06-03T16:00:00Z */
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static ch_accounts *open_store(void)
{
    ch_accounts *a = NULL;
    ch_error err = {0};
    assert_int_equal(ch_accounts_open(db, true, &a, &err), 0);
    ch_auth_policy p;
    ch_auth_policy_default(&p);
    p.pw_opslimit = crypto_pwhash_OPSLIMIT_MIN;
    p.pw_memlimit = crypto_pwhash_MEMLIMIT_MIN;
    p.free_failures = 3;
    p.backoff_base_ms = 1000;
    p.backoff_max_ms = 8000;
    ch_accounts_set_policy(a, &p);
    ch_accounts_set_clock(a, fake_clock, NULL);
    return a;
}

static void add_user(ch_accounts *a, const char *name, ch_role role, char pw[64])
{
    ch_error err = {0};
    assert_int_equal(ch_account_add(a, &admin, name, role, pw, 64, &err), 0);
    assert_int_equal(strlen(pw), 20);
}

static ch_login_status login(ch_accounts *a, const char *name, const char *pw, const char *src,
                             ch_login_result *res)
{
    ch_error err = {0};
    assert_int_equal(ch_login(a, name, pw, src, res, &err), 0);
    return res->status;
}

/* ---- passwords ----------------------------------------------------------------------------- */

static void test_password_hash_round_trip_and_wrong_password(void **state)
{
    (void)state;
    ch_accounts *a = open_store();
    char pw[64];
    ch_login_result r;
    add_user(a, "alice", CH_ROLE_ANALYST, pw);
    assert_int_equal(login(a, "alice", pw, "192.0.2.1", &r), CH_LOGIN_OK);
    assert_true(r.info.must_change);
    assert_int_equal(r.info.role, CH_ROLE_ANALYST);
    assert_int_equal(strlen(r.session.id), CH_SECRET_B64_LEN);
    assert_int_equal(strlen(r.session.csrf), CH_SECRET_B64_LEN);
    assert_int_equal(login(a, "alice", "not the password", "192.0.2.1", &r), CH_LOGIN_DENIED);
    assert_int_equal(login(a, "nobody", pw, "192.0.2.1", &r), CH_LOGIN_DENIED);
    assert_int_equal(login(a, "alice", "", "192.0.2.1", &r), CH_LOGIN_DENIED);

    /* The stored hash is Argon2id, never the password. */
    sqlite3 *raw = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open(db, &raw), SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(raw, "SELECT pwhash FROM accounts WHERE name = 'alice'", -1, &st, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    const char *h = (const char *)sqlite3_column_text(st, 0);
    assert_non_null(strstr(h, "$argon2id$"));
    assert_null(strstr(h, pw));
    sqlite3_finalize(st);
    sqlite3_close(raw);
    ch_accounts_close(a);
}

static void test_password_change_clears_must_change_and_ends_sessions(void **state)
{
    (void)state;
    ch_accounts *a = open_store();
    char pw[64];
    ch_login_result r;
    ch_session_info si;
    ch_error err = {0};
    add_user(a, "bob", CH_ROLE_VIEWER, pw);
    assert_int_equal(login(a, "bob", pw, "192.0.2.2", &r), CH_LOGIN_OK);
    assert_int_equal(ch_account_change_password(a, "bob", pw, "short", "192.0.2.2", &err),
                     CH_EUSAGE);
    assert_int_equal(ch_account_change_password(a, "bob", "wrong old password",
                                                "correct horse battery", "192.0.2.2", &err),
                     CH_EUSAGE);
    assert_int_equal(ch_session_check(a, r.session.id, strlen(r.session.id), &si, &err), 0);
    assert_int_equal(
        ch_account_change_password(a, "bob", pw, "correct horse battery", "192.0.2.2", &err), 0);
    assert_int_equal(ch_session_check(a, r.session.id, strlen(r.session.id), &si, &err),
                     CH_ENOTFOUND);
    assert_int_equal(login(a, "bob", pw, "192.0.2.2", &r), CH_LOGIN_DENIED);
    assert_int_equal(login(a, "bob", "correct horse battery", "192.0.2.2", &r), CH_LOGIN_OK);
    assert_false(r.info.must_change);
    ch_accounts_close(a);
}

static void test_disabled_account_cannot_log_in_and_loses_sessions(void **state)
{
    (void)state;
    ch_accounts *a = open_store();
    char pw[64];
    ch_login_result r;
    ch_session_info si;
    ch_error err = {0};
    add_user(a, "carol", CH_ROLE_ADMIN, pw);
    assert_int_equal(login(a, "carol", pw, "192.0.2.3", &r), CH_LOGIN_OK);
    assert_int_equal(ch_account_set_disabled(a, &admin, "carol", true, &err), 0);
    assert_int_equal(ch_session_check(a, r.session.id, strlen(r.session.id), &si, &err),
                     CH_ENOTFOUND);
    assert_int_equal(login(a, "carol", pw, "192.0.2.3", &r), CH_LOGIN_DENIED);
    assert_int_equal(ch_account_set_disabled(a, &admin, "carol", false, &err), 0);
    assert_int_equal(login(a, "carol", pw, "192.0.2.3", &r), CH_LOGIN_OK);
    assert_int_equal(ch_account_set_disabled(a, &admin, "nobody", true, &err), CH_ENOTFOUND);
    ch_accounts_close(a);
}

static void test_account_names_and_roles_are_checked(void **state)
{
    (void)state;
    ch_accounts *a = open_store();
    char pw[64];
    ch_error err = {0};
    assert_int_equal(ch_account_add(a, &admin, "", CH_ROLE_VIEWER, pw, 64, &err), CH_EUSAGE);
    assert_int_equal(ch_account_add(a, &admin, "-x", CH_ROLE_VIEWER, pw, 64, &err), CH_EUSAGE);
    assert_int_equal(ch_account_add(a, &admin, "a b", CH_ROLE_VIEWER, pw, 64, &err), CH_EUSAGE);
    assert_int_equal(
        ch_account_add(a, &admin, "x'; DROP TABLE accounts; --", CH_ROLE_VIEWER, pw, 64, &err),
        CH_EUSAGE);
    assert_int_equal(ch_account_add(a, &admin, "ok", CH_ROLE_INGEST, pw, 64, &err), CH_EUSAGE);
    assert_int_equal(ch_account_add(a, &admin, "ok", CH_ROLE_NONE, pw, 64, &err), CH_EUSAGE);
    add_user(a, "dave@example.com", CH_ROLE_VIEWER, pw);
    assert_int_equal(ch_account_add(a, &admin, "dave@example.com", CH_ROLE_VIEWER, pw, 64, &err),
                     CH_EUSAGE);
    assert_string_equal(err.msg, "an account 'dave@example.com' exists already");
    ch_account_info *v = NULL;
    size_t n = 0;
    assert_int_equal(ch_account_list(a, &v, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].name, "dave@example.com");
    ch_free(v);
    ch_accounts_close(a);
}

/* ---- tokens -------------------------------------------------------------------------------- */

static bool file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return false;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(buf + i, needle, k) == 0)
            return true;
    return false;
}

static void test_token_create_verify_revoke(void **state)
{
    (void)state;
    ch_accounts *a = open_store();
    ch_error err = {0};
    char tok[CH_TOKEN_LEN + 1];
    ch_token_info ti;
    assert_int_equal(ch_token_create(a, &admin, "ci", CH_ROLE_INGEST, tok, sizeof tok, &err), 0);
    assert_int_equal(strlen(tok), CH_TOKEN_LEN);
    assert_memory_equal(tok, "chk_", 4);
    assert_int_equal(ch_token_create(a, &admin, "ci", CH_ROLE_VIEWER, tok + 0, sizeof tok, &err),
                     CH_EUSAGE);
    assert_string_equal(err.msg, "an active token 'ci' exists already");
    assert_int_equal(ch_token_create(a, &admin, "ci2", CH_ROLE_NONE, tok, sizeof tok, &err),
                     CH_EUSAGE);
    /* tok was wiped by the failed calls above: make the one used below again. */
    char good[CH_TOKEN_LEN + 1];
    assert_int_equal(ch_token_create(a, &admin, "reader", CH_ROLE_VIEWER, good, sizeof good, &err),
                     0);

    uint64_t before = ch_accounts_ct_compares(a);
    assert_int_equal(ch_token_verify(a, good, strlen(good), "198.51.100.7", &ti, &err), 0);
    assert_true(ch_accounts_ct_compares(a) > before);
    assert_string_equal(ti.name, "reader");
    assert_int_equal(ti.role, CH_ROLE_VIEWER);
    assert_int_equal(ti.last_used, fake_now);
    assert_string_equal(ti.last_source, "198.51.100.7");
    assert_memory_equal(ti.shown, good, CH_TOKEN_SHOWN_LEN);

    /* One character off, a prefix, a different prefix, junk: all "not found". */
    char bad[CH_TOKEN_LEN + 1];
    memcpy(bad, good, sizeof bad);
    bad[CH_TOKEN_LEN - 5] = bad[CH_TOKEN_LEN - 5] == 'A' ? 'B' : 'A';
    before = ch_accounts_ct_compares(a);
    assert_int_equal(ch_token_verify(a, bad, strlen(bad), "x", &ti, &err), CH_ENOTFOUND);
    assert_true(ch_accounts_ct_compares(a) > before); /* same shown part: compared, refused */
    assert_int_equal(ch_token_verify(a, good, CH_TOKEN_LEN - 1, "x", &ti, &err), CH_ENOTFOUND);
    assert_int_equal(ch_token_verify(a, "chk_", 4, "x", &ti, &err), CH_ENOTFOUND);
    memcpy(bad, good, sizeof bad);
    bad[0] = 'x';
    assert_int_equal(ch_token_verify(a, bad, strlen(bad), "x", &ti, &err), CH_ENOTFOUND);

    /* The secret is nowhere in the database files. */
    char wal[256];
    snprintf(wal, sizeof wal, "%s-wal", db);
    assert_false(file_contains(db, good + 4));
    assert_false(file_contains(wal, good + 4));

    ch_token_info *v = NULL;
    size_t n = 0;
    assert_int_equal(ch_token_list(a, false, &v, &n, &err), 0);
    assert_int_equal(n, 2);
    ch_free(v);

    /* Revoke by the shown prefix (as listed); the token stops working. */
    char shown[CH_TOKEN_SHOWN_LEN + 1];
    snprintf(shown, sizeof shown, "%.*s", CH_TOKEN_SHOWN_LEN, good);
    assert_int_equal(ch_token_revoke(a, &admin, shown, &err), 0);
    assert_int_equal(ch_token_verify(a, good, strlen(good), "x", &ti, &err), CH_ENOTFOUND);
    assert_int_equal(ch_token_revoke(a, &admin, shown, &err), CH_ENOTFOUND);
    assert_int_equal(ch_token_revoke(a, &admin, "ci", &err), 0);
    assert_int_equal(ch_token_list(a, false, &v, &n, &err), 0);
    assert_int_equal(n, 0);
    ch_free(v);
    assert_int_equal(ch_token_list(a, true, &v, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_true(v[0].revoked != 0 && v[1].revoked != 0);
    ch_free(v);
    /* A revoked name can be reused. */
    assert_int_equal(ch_token_create(a, &admin, "ci", CH_ROLE_INGEST, tok, sizeof tok, &err), 0);
    ch_accounts_close(a);
}

static void test_token_last_use_written_at_most_once_a_minute(void **state)
{
    (void)state;
    ch_accounts *a = open_store();
    ch_error err = {0};
    char tok[CH_TOKEN_LEN + 1];
    ch_token_info ti;
    assert_int_equal(ch_token_create(a, &admin, "t", CH_ROLE_ANALYST, tok, sizeof tok, &err), 0);
    int64_t t0 = fake_now;
    assert_int_equal(ch_token_verify(a, tok, strlen(tok), "a", &ti, &err), 0);
    fake_now += 30000;
    assert_int_equal(ch_token_verify(a, tok, strlen(tok), "b", &ti, &err), 0);
    assert_int_equal(ti.last_used, t0);
    assert_string_equal(ti.last_source, "a");
    fake_now += 31000;
    assert_int_equal(ch_token_verify(a, tok, strlen(tok), "c", &ti, &err), 0);
    assert_int_equal(ti.last_used, fake_now);
    ch_accounts_close(a);
}

/* ---- sessions ------------------------------------------------------------------------------ */

static void test_session_idle_timeout(void **state)
{
    (void)state;
    ch_accounts *a = open_store();
    char pw[64];
    ch_login_result r;
    ch_session_info si;
    ch_error err = {0};
    add_user(a, "erin", CH_ROLE_VIEWER, pw);
    assert_int_equal(login(a, "erin", pw, "192.0.2.5", &r), CH_LOGIN_OK);
    const char *id = r.session.id;
    int64_t idle = ch_accounts_policy(a)->session_idle_ms;
    fake_now += idle - 1;
    assert_int_equal(ch_session_check(a, id, strlen(id), &si, &err), 0);
    assert_string_equal(si.name, "erin");
    assert_int_equal(ch_session_touch(a, id, strlen(id), &err), 0);
    fake_now += idle - 1; /* within idle of the touch */
    assert_int_equal(ch_session_check(a, id, strlen(id), &si, &err), 0);
    fake_now += 1; /* idle since the touch */
    assert_int_equal(ch_session_check(a, id, strlen(id), &si, &err), CH_ENOTFOUND);
    /* Gone for good, even if the clock went back. */
    fake_now -= 10000;
    assert_int_equal(ch_session_check(a, id, strlen(id), &si, &err), CH_ENOTFOUND);
    ch_accounts_close(a);
}

static void test_session_absolute_timeout_despite_activity(void **state)
{
    (void)state;
    ch_accounts *a = open_store();
    char pw[64];
    ch_login_result r;
    ch_session_info si;
    ch_error err = {0};
    add_user(a, "frank", CH_ROLE_VIEWER, pw);
    assert_int_equal(login(a, "frank", pw, "192.0.2.6", &r), CH_LOGIN_OK);
    const char *id = r.session.id;
    int64_t start = fake_now, abs = ch_accounts_policy(a)->session_absolute_ms;
    while (fake_now + 60000 < start + abs) {
        fake_now += 60000;
        assert_int_equal(ch_session_touch(a, id, strlen(id), &err), 0);
    }
    fake_now = start + abs;
    assert_int_equal(ch_session_check(a, id, strlen(id), &si, &err), CH_ENOTFOUND);
    ch_accounts_close(a);
}

static void test_session_csrf_logout_and_bad_ids(void **state)
{
    (void)state;
    ch_accounts *a = open_store();
    char pw[64], csrf[64];
    ch_login_result r;
    ch_session_info si;
    ch_error err = {0};
    add_user(a, "gina", CH_ROLE_ANALYST, pw);
    assert_int_equal(login(a, "gina", pw, "192.0.2.7", &r), CH_LOGIN_OK);
    const char *id = r.session.id;
    uint64_t before = ch_accounts_ct_compares(a);
    assert_true(ch_session_csrf_ok(a, id, strlen(id), r.session.csrf, strlen(r.session.csrf)));
    assert_true(ch_accounts_ct_compares(a) > before);
    assert_false(ch_session_csrf_ok(a, id, strlen(id), id, strlen(id)));
    assert_false(ch_session_csrf_ok(a, id, strlen(id), "", 0));
    assert_false(ch_session_csrf_ok(a, r.session.csrf, strlen(r.session.csrf), r.session.csrf,
                                    strlen(r.session.csrf)));
    assert_int_equal(ch_session_rotate_csrf(a, id, strlen(id), csrf, sizeof csrf, &err), 0);
    assert_false(ch_session_csrf_ok(a, id, strlen(id), r.session.csrf, strlen(r.session.csrf)));
    assert_true(ch_session_csrf_ok(a, id, strlen(id), csrf, strlen(csrf)));
    /* Malformed ids are simply unknown. */
    assert_int_equal(ch_session_check(a, "", 0, &si, &err), CH_ENOTFOUND);
    assert_int_equal(ch_session_check(a, "!!!!", 4, &si, &err), CH_ENOTFOUND);
    assert_int_equal(ch_session_check(a, id, strlen(id) - 1, &si, &err), CH_ENOTFOUND);
    /* Logout. */
    assert_int_equal(ch_session_destroy(a, id, strlen(id), "192.0.2.7", &err), 0);
    assert_int_equal(ch_session_check(a, id, strlen(id), &si, &err), CH_ENOTFOUND);
    assert_int_equal(ch_session_destroy(a, id, strlen(id), "192.0.2.7", &err), CH_ENOTFOUND);
    ch_accounts_close(a);
}

static void test_sessions_per_account_are_capped(void **state)
{
    (void)state;
    ch_accounts *a = open_store();
    char pw[64];
    ch_login_result first, r;
    ch_session_info si;
    ch_error err = {0};
    add_user(a, "hank", CH_ROLE_VIEWER, pw);
    assert_int_equal(login(a, "hank", pw, "192.0.2.8", &first), CH_LOGIN_OK);
    for (int i = 0; i < CH_SESSIONS_PER_ACCOUNT; i++) {
        fake_now += 1000;
        assert_int_equal(login(a, "hank", pw, "192.0.2.8", &r), CH_LOGIN_OK);
    }
    assert_int_equal(ch_session_check(a, first.session.id, strlen(first.session.id), &si, &err),
                     CH_ENOTFOUND);
    assert_int_equal(ch_session_check(a, r.session.id, strlen(r.session.id), &si, &err), 0);
    ch_accounts_close(a);
}

/* ---- throttle ------------------------------------------------------------------------------ */

static void test_backoff_grows_and_locks_the_account(void **state)
{
    (void)state;
    ch_accounts *a = open_store();
    char pw[64];
    ch_login_result r;
    ch_error err = {0};
    add_user(a, "ivan", CH_ROLE_VIEWER, pw);
    /* Each attempt from a fresh address, so that only the account's row counts. */
    char addr[32];
    int k = 0;
#define NEXT_ADDR() (snprintf(addr, sizeof addr, "203.0.113.%d", ++k), addr)
    for (int i = 0; i < 3; i++)
        assert_int_equal(login(a, "ivan", "wrong password!", NEXT_ADDR(), &r), CH_LOGIN_DENIED);
    /* 4th failure: locked 1 s; then 2 s, 4 s, 8 s, 8 s (capped). */
    int64_t want[] = {1000, 2000, 4000, 8000, 8000};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_int_equal(login(a, "ivan", "wrong password!", NEXT_ADDR(), &r), CH_LOGIN_DENIED);
        /* Locked: even the right password is refused, without being checked. */
        assert_int_equal(login(a, "ivan", pw, NEXT_ADDR(), &r), CH_LOGIN_THROTTLED);
        assert_int_equal(r.retry_after_ms, want[i]);
        ch_account_info ai;
        assert_int_equal(ch_account_get(a, "ivan", &ai, &err), 0);
        assert_int_equal(ai.locked_until, fake_now + want[i]);
        assert_int_equal(ai.failures, 4 + i);
        fake_now += want[i];
    }
    /* The lock survives a restart: it is in the database. */
    assert_int_equal(login(a, "ivan", "wrong password!", NEXT_ADDR(), &r), CH_LOGIN_DENIED);
    ch_accounts_close(a);
    a = open_store();
    assert_int_equal(login(a, "ivan", pw, NEXT_ADDR(), &r), CH_LOGIN_THROTTLED);
    /* Admins see it. */
    ch_lockout_info *v = NULL;
    size_t n = 0;
    assert_int_equal(ch_accounts_lockouts(a, &v, &n, &err), 0);
    assert_true(n >= 1);
    assert_true(v[0].is_account);
    assert_string_equal(v[0].key, "ivan");
    assert_true(v[0].locked_until > fake_now);
    assert_true(v[0].refused >= 1);
    ch_free(v);
    /* After the lock, the right password works and clears the account's failures. */
    fake_now += 8000;
    assert_int_equal(login(a, "ivan", pw, NEXT_ADDR(), &r), CH_LOGIN_OK);
    ch_account_info ai;
    assert_int_equal(ch_account_get(a, "ivan", &ai, &err), 0);
    assert_int_equal(ai.failures, 0);
    assert_int_equal(ai.locked_until, 0);
#undef NEXT_ADDR
    ch_accounts_close(a);
}

static void test_failures_are_forgotten_after_the_reset_window(void **state)
{
    (void)state;
    ch_accounts *a = open_store();
    char pw[64];
    ch_login_result r;
    add_user(a, "judy", CH_ROLE_VIEWER, pw);
    for (int i = 0; i < 3; i++)
        assert_int_equal(login(a, "judy", "wrong password!", "192.0.2.10", &r), CH_LOGIN_DENIED);
    fake_now += ch_accounts_policy(a)->failure_reset_ms + 1;
    /* A 4th failure long after: counted as the first, no lock. */
    assert_int_equal(login(a, "judy", "wrong password!", "192.0.2.11", &r), CH_LOGIN_DENIED);
    assert_int_equal(login(a, "judy", pw, "192.0.2.12", &r), CH_LOGIN_OK);
    ch_accounts_close(a);
}

static void test_address_is_throttled_across_accounts(void **state)
{
    (void)state;
    ch_accounts *a = open_store();
    char pw[64];
    ch_login_result r;
    ch_error err = {0};
    add_user(a, "kate", CH_ROLE_VIEWER, pw);
    /* A spray: one guess per name from one address, names that do not exist included. */
    const char *names[] = {"u1", "u2", "u3", "u4"};
    for (int i = 0; i < 4; i++)
        assert_int_equal(login(a, names[i], "Winter2024!!", "198.51.100.9", &r), CH_LOGIN_DENIED);
    assert_int_equal(login(a, "kate", pw, "198.51.100.9", &r), CH_LOGIN_THROTTLED);
    /* kate herself, elsewhere, is not locked. */
    assert_int_equal(login(a, "kate", pw, "192.0.2.13", &r), CH_LOGIN_OK);
    /* An administrator clears the address. */
    assert_int_equal(ch_accounts_unlock(a, &admin, "198.51.100.9", &err), 0);
    assert_int_equal(login(a, "kate", pw, "198.51.100.9", &r), CH_LOGIN_OK);
    assert_int_equal(ch_accounts_unlock(a, &admin, "198.51.100.9", &err), CH_ENOTFOUND);
    ch_accounts_close(a);
}

static void test_ipv6_addresses_are_throttled_by_64(void **state)
{
    (void)state;
    ch_accounts *a = open_store();
    char pw[64], addr[64];
    ch_login_result r;
    add_user(a, "liam", CH_ROLE_VIEWER, pw);
    for (int i = 1; i <= 4; i++) {
        snprintf(addr, sizeof addr, "2001:db8:1:2::%x", i);
        assert_int_equal(login(a, "nobody", "guess guess guess", addr, &r), CH_LOGIN_DENIED);
    }
    assert_int_equal(login(a, "liam", pw, "2001:db8:1:2:ffff::1", &r), CH_LOGIN_THROTTLED);
    assert_int_equal(login(a, "liam", pw, "2001:db8:1:3::1", &r), CH_LOGIN_OK);
    ch_accounts_close(a);
}

/* ---- roles --------------------------------------------------------------------------------- */

static void test_role_matrix(void **state)
{
    (void)state;
    /* rows: have (none, ingest, viewer, analyst, admin); columns: need, same order. */
    static const bool want[5][5] = {
        /* need:      none  ingest viewer analyst admin */
        /* none    */ {true, false, false, false, false},
        /* ingest  */ {true, true, false, false, false},
        /* viewer  */ {true, false, true, false, false},
        /* analyst */ {true, false, true, true, false},
        /* admin   */ {true, true, true, true, true},
    };
    for (int h = 0; h < 5; h++)
        for (int n = 0; n < 5; n++)
            assert_int_equal(ch_role_allows((ch_role)h, (ch_role)n), want[h][n]);
    /* Out of range: a value that is no role admits only public routes, and needs nothing. */
    for (int n = 1; n < 5; n++)
        assert_false(ch_role_allows(CH_ROLE__COUNT, (ch_role)n));
    for (int h = 0; h < 5; h++)
        assert_false(ch_role_allows((ch_role)h, CH_ROLE__COUNT));
    ch_role r;
    assert_true(ch_role_parse("ingest", &r) && r == CH_ROLE_INGEST);
    assert_true(ch_role_parse("admin", &r) && r == CH_ROLE_ADMIN);
    assert_false(ch_role_parse("none", &r));
    assert_false(ch_role_parse("Admin", &r));
    assert_string_equal(ch_role_name(CH_ROLE_ANALYST), "analyst");
}

/* ---- audit --------------------------------------------------------------------------------- */

typedef struct seen {
    int n;
    char actions[32][40];
} seen;

static int collect(void *ud, const ch_audit_entry *e)
{
    seen *s = ud;
    if (s->n < 32)
        snprintf(s->actions[s->n++], 40, "%s", e->action);
    return 0;
}

static bool has_action(const seen *s, const char *a)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->actions[i], a) == 0)
            return true;
    return false;
}

static void test_every_change_is_audited(void **state)
{
    (void)state;
    ch_accounts *a = open_store();
    char pw[64], tok[CH_TOKEN_LEN + 1];
    ch_login_result r;
    ch_error err = {0};
    add_user(a, "mona", CH_ROLE_VIEWER, pw);
    assert_int_equal(ch_account_set_role(a, &admin, "mona", CH_ROLE_ANALYST, &err), 0);
    assert_int_equal(login(a, "mona", "wrong password!", "192.0.2.20", &r), CH_LOGIN_DENIED);
    assert_int_equal(login(a, "mona", pw, "192.0.2.20", &r), CH_LOGIN_OK);
    assert_int_equal(ch_session_destroy(a, r.session.id, strlen(r.session.id), "192.0.2.20", &err),
                     0);
    assert_int_equal(ch_account_set_disabled(a, &admin, "mona", true, &err), 0);
    assert_int_equal(ch_account_set_disabled(a, &admin, "mona", false, &err), 0);
    assert_int_equal(ch_account_reset_password(a, &admin, "mona", NULL, true, pw, sizeof pw, &err),
                     0);
    assert_int_equal(ch_token_create(a, &admin, "t", CH_ROLE_INGEST, tok, sizeof tok, &err), 0);
    assert_int_equal(ch_token_revoke(a, &admin, "t", &err), 0);
    ch_accounts_close(a);

    ch_audit *au = NULL;
    assert_int_equal(ch_audit_open(db, false, &au, &err), 0);
    seen s = {0};
    assert_int_equal(ch_audit_list(au, INT64_MIN, 0, collect, &s, &err), 10);
    const char *want[] = {"user.add",     "user.role",    "login.failed", "login",
                          "logout",       "user.disable", "user.enable",  "user.passwd",
                          "token.create", "token.revoke"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        assert_string_equal(s.actions[i], want[i]);
    /* --since: only what happened from then on. */
    seen later = {0};
    assert_int_equal(ch_audit_list(au, fake_now + 1, 0, collect, &later, &err), 0);
    seen limited = {0};
    assert_int_equal(ch_audit_list(au, INT64_MIN, 3, collect, &limited, &err), 3);
    assert_true(has_action(&limited, "login.failed"));
    ch_audit_close(au);
}

static void test_audit_rows_cannot_be_updated_or_deleted(void **state)
{
    (void)state;
    ch_error err = {0};
    ch_audit *au = NULL;
    assert_int_equal(ch_audit_open(db, true, &au, &err), 0);
    ch_audit_entry e = {.ts = 1,
                        .actor = "root",
                        .source = "cli",
                        .action = "rule.disable",
                        .object = "rule:CJ-1",
                        .before = "{\"enabled\":true}",
                        .after = "{\"enabled\":false}"};
    assert_int_equal(ch_audit_append(au, &e, &err), 0);
    e.after = "not json";
    assert_int_equal(ch_audit_append(au, &e, &err), CH_EUSAGE);
    e.after = NULL;
    e.actor = "";
    assert_int_equal(ch_audit_append(au, &e, &err), CH_EUSAGE);
    ch_audit_close(au);

    sqlite3 *raw = NULL;
    char *msg = NULL;
    assert_int_equal(sqlite3_open(db, &raw), SQLITE_OK);
    assert_int_not_equal(
        sqlite3_exec(raw, "UPDATE audit_log SET actor = 'mallory'", NULL, NULL, &msg), SQLITE_OK);
    assert_non_null(msg);
    assert_non_null(strstr(msg, "append-only"));
    sqlite3_free(msg);
    msg = NULL;
    assert_int_not_equal(sqlite3_exec(raw, "DELETE FROM audit_log", NULL, NULL, &msg), SQLITE_OK);
    assert_non_null(strstr(msg, "append-only"));
    sqlite3_free(msg);
    sqlite3_stmt *st = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(raw, "SELECT count(*), max(actor) FROM audit_log", -1, &st, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 1);
    assert_string_equal((const char *)sqlite3_column_text(st, 1), "root");
    sqlite3_finalize(st);
    sqlite3_close(raw);
}

static void test_audit_and_accounts_share_the_database_with_the_offense_store(void **state)
{
    (void)state;
    /* Opening in either order gives the same file: versions live in auth_meta rows, and
     * PRAGMA user_version stays the offense store's. */
    ch_error err = {0};
    ch_audit *au = NULL;
    assert_int_equal(ch_audit_open(db, true, &au, &err), 0);
    ch_audit_close(au);
    ch_accounts *a = open_store();
    ch_accounts_close(a);
    sqlite3 *raw = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open(db, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(raw, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 0);
    sqlite3_finalize(st);
    /* The offense store migrates the same file around our tables, and we reopen after it. */
    ch_store *os = NULL;
    assert_int_equal(ch_store_open(db, &os, &err), 0);
    ch_store_close(os);
    a = open_store();
    ch_accounts_close(a);
    /* A newer auth schema is refused. */
    assert_int_equal(sqlite3_exec(raw,
                                  "UPDATE auth_meta SET value = '99' WHERE key ="
                                  " 'auth_schema'",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(raw);
    a = NULL;
    assert_int_equal(ch_accounts_open(db, false, &a, &err), CH_EUSAGE);
    assert_null(a);
}

/* ---- header parsers ------------------------------------------------------------------------ */

static void test_bearer_header(void **state)
{
    (void)state;
    const char *t;
    size_t n;
#define BEARER(s) ch_auth_parse_bearer(s, strlen(s), &t, &n)
    assert_int_equal(BEARER("Bearer chk_abc-_DEF"), 0);
    assert_int_equal(n, 12);
    assert_memory_equal(t, "chk_abc-_DEF", n);
    assert_int_equal(BEARER("  bearer   abc==  "), 0);
    assert_int_equal(n, 5);
    assert_int_equal(BEARER("BEARER x"), 0);
    assert_int_equal(BEARER("Basic dXNlcjpwYXNz"), CH_ENOTFOUND);
    assert_int_equal(BEARER("Bearerabc"), CH_ENOTFOUND);
    assert_int_equal(BEARER("Bear"), CH_ENOTFOUND);
    assert_int_equal(BEARER(""), CH_ENOTFOUND);
    assert_int_equal(BEARER("Bearer"), CH_EPARSE);
    assert_int_equal(BEARER("Bearer "), CH_EPARSE);
    assert_int_equal(BEARER("Bearer a b"), CH_EPARSE);
    assert_int_equal(BEARER("Bearer a=b"), CH_EPARSE);
    assert_int_equal(BEARER("Bearer a\"b"), CH_EPARSE);
#undef BEARER
    /* Not NUL-terminated: never read past n. */
    char buf[9] = {'B', 'e', 'a', 'r', 'e', 'r', ' ', 'x', 'y'};
    assert_int_equal(ch_auth_parse_bearer(buf, 8, &t, &n), 0);
    assert_int_equal(n, 1);
    static char big[CH_AUTH_HEADER_MAX + 2];
    memset(big, 'a', sizeof big);
    memcpy(big, "Bearer ", 7);
    assert_int_equal(ch_auth_parse_bearer(big, sizeof big, &t, &n), CH_ELIMIT);
}

static void test_cookie_header(void **state)
{
    (void)state;
    const char *v;
    size_t n;
#define COOKIE(s) ch_auth_cookie_get(s, strlen(s), CH_SESSION_COOKIE, &v, &n)
    assert_int_equal(COOKIE("ch_session=abc"), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(v, "abc", 3);
    assert_int_equal(COOKIE("theme=dark; ch_session=abc-_1; lang=en"), 0);
    assert_memory_equal(v, "abc-_1", n);
    assert_int_equal(COOKIE("theme=dark;ch_session=\"q\""), 0);
    assert_int_equal(n, 1);
    assert_int_equal(COOKIE("ch_session="), 0);
    assert_int_equal(n, 0);
    assert_int_equal(COOKIE("theme=dark"), CH_ENOTFOUND);
    assert_int_equal(COOKIE("xch_session=abc"), CH_ENOTFOUND);
    assert_int_equal(COOKIE(""), CH_ENOTFOUND);
    assert_int_equal(COOKIE("ch_session=a; ch_session=b"), CH_EPARSE);
    assert_int_equal(COOKIE("ch_session=a b"), CH_EPARSE);
    assert_int_equal(COOKIE("ch_session"), CH_EPARSE);
    assert_int_equal(COOKIE("ch_session=\"abc"), CH_EPARSE);
#undef COOKIE
    char sc[256];
    assert_true(ch_session_cookie(sc, sizeof sc, "abc", true, 3600000) > 0);
    assert_non_null(strstr(sc, "ch_session=abc;"));
    assert_non_null(strstr(sc, "HttpOnly"));
    assert_non_null(strstr(sc, "SameSite=Strict"));
    assert_non_null(strstr(sc, "Secure"));
    assert_non_null(strstr(sc, "Max-Age=3600"));
    assert_true(ch_session_cookie(sc, sizeof sc, NULL, false, 0) > 0);
    assert_non_null(strstr(sc, "Max-Age=0"));
    assert_null(strstr(sc, "Secure"));
    assert_int_equal(ch_session_cookie(sc, 10, "abc", true, 1000), CH_ELIMIT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_password_hash_round_trip_and_wrong_password, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_password_change_clears_must_change_and_ends_sessions,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_disabled_account_cannot_log_in_and_loses_sessions,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_account_names_and_roles_are_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_create_verify_revoke, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_last_use_written_at_most_once_a_minute, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_session_idle_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_absolute_timeout_despite_activity, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_session_csrf_logout_and_bad_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sessions_per_account_are_capped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backoff_grows_and_locks_the_account, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failures_are_forgotten_after_the_reset_window, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_address_is_throttled_across_accounts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ipv6_addresses_are_throttled_by_64, setup, teardown),
        cmocka_unit_test(test_role_matrix),
        cmocka_unit_test_setup_teardown(test_every_change_is_audited, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_rows_cannot_be_updated_or_deleted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_audit_and_accounts_share_the_database_with_the_offense_store, setup, teardown),
        cmocka_unit_test(test_bearer_header),
        cmocka_unit_test(test_cookie_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
