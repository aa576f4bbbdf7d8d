/*
 * fuzz_auth_headers.c - the parsers that read credentials from unauthenticated clients
 * (server/accounts.h): the Bearer value of Authorization, the session cookie of Cookie, and
 * token verification of whatever the Bearer parser let through.
 *
 * The input is copied into a buffer of exactly its size (no NUL), so ASan catches any read past
 * n. Invariants whatever the bytes: a result points inside the input; a Bearer token is only
 * token68 characters; a cookie value holds no separator; refusals leave the outputs empty; and
 * a token that does not come from the store never verifies.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/accounts.h"

static bool inside(const char *p, size_t len, const char *base, size_t n)
{
    return p >= base && len <= n && (size_t)(p - base) <= n - len;
}

static ch_accounts *store(void)
{
    static ch_accounts *a;
    static bool tried;
    if (!tried) {
        tried = true;
        ch_error err;
        /* An in-memory database: a token store with no tokens in it. */
        if (ch_accounts_open(":memory:", true, &a, &err) < 0)
            a = NULL;
    }
    return a;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    if (size)
        memcpy(buf, data, size);

    const char *t = NULL;
    size_t n = 0;
    int rc = ch_auth_parse_bearer(buf, size, &t, &n);
    if (rc == 0) {
        if (n == 0 || !inside(t, n, buf, size))
            abort();
        for (size_t i = 0; i < n; i++)
            if (t[i] == ' ' || t[i] == '\t' || t[i] == '"' || t[i] == ',' || t[i] == ';')
                abort();
        ch_accounts *a = store();
        ch_token_info ti;
        ch_error err;
        if (a != NULL && ch_token_verify(a, t, n, "fuzz", &ti, &err) != CH_ENOTFOUND)
            abort();
    } else if (t != NULL || n != 0 || (rc != CH_ENOTFOUND && rc != CH_EPARSE && rc != CH_ELIMIT)) {
        abort();
    }

    rc = ch_auth_cookie_get(buf, size, CH_SESSION_COOKIE, &t, &n);
    if (rc == 0) {
        if (!inside(t, n, buf, size))
            abort();
        for (size_t i = 0; i < n; i++)
            if (t[i] == ';' || t[i] == ' ' || t[i] == '"' || t[i] == ',' || t[i] == '\\')
                abort();
        ch_accounts *a = store();
        ch_session_info si;
        ch_error err;
        if (a != NULL && ch_session_check(a, t, n, &si, &err) != CH_ENOTFOUND)
            abort();
    } else if (t != NULL || n != 0 || (rc != CH_ENOTFOUND && rc != CH_EPARSE && rc != CH_ELIMIT)) {
        abort();
    }
    free(buf);
    return 0;
}
