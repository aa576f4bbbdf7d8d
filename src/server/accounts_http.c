/*
 * accounts_http.c - finding a credential in HTTP headers: the Bearer token of Authorization
 * (RFC 6750 section 2.1), the session cookie of Cookie (RFC 6265 section 4.2), and the
 * Set-Cookie value that hands a session to the browser.
 *
 * These read bytes from any client before it is authenticated, so they are strict about
 * length (CH_AUTH_HEADER_MAX, CH_AUTH_COOKIES_MAX), allocate nothing, never read past n (the
 * input need not be NUL-terminated), and return pointers into the input. One pass each,
 * O(n). tests/fuzz/fuzz_auth_headers.c holds them to that.
 */
#include <stdio.h>
#include <string.h>

#include "server/accounts.h"

static bool is_ows(char c) { return c == ' ' || c == '\t'; }

/* token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
static bool is_token68(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
}

int ch_auth_parse_bearer(const char *hdr, size_t n, const char **tok, size_t *tok_len)
{
    static const char scheme[] = "bearer";
    *tok = NULL;
    *tok_len = 0;
    if (n > CH_AUTH_HEADER_MAX)
        return CH_ELIMIT;
    size_t i = 0;
    while (i < n && is_ows(hdr[i]))
        i++;
    for (size_t k = 0; k < sizeof scheme - 1; k++, i++) {
        if (i >= n)
            return CH_ENOTFOUND;
        char c = hdr[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != scheme[k])
            return CH_ENOTFOUND;
    }
    /* "Bearerx ..." is another scheme; "Bearer" alone is ours without a value. */
    if (i < n && !is_ows(hdr[i]))
        return CH_ENOTFOUND;
    while (i < n && is_ows(hdr[i]))
        i++;
    size_t start = i;
    while (i < n && is_token68(hdr[i]))
        i++;
    if (i == start)
        return CH_EPARSE;
    while (i < n && hdr[i] == '=')
        i++;
    size_t end = i;
    while (i < n && is_ows(hdr[i]))
        i++;
    if (i != n)
        return CH_EPARSE;
    *tok = hdr + start;
    *tok_len = end - start;
    return 0;
}

/* cookie-octet: %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E (no space, DQUOTE, comma,
 * semicolon or backslash). */
static bool is_cookie_octet(unsigned char c)
{
    return c == 0x21 || (c >= 0x23 && c <= 0x2B) || (c >= 0x2D && c <= 0x3A) ||
           (c >= 0x3C && c <= 0x5B) || (c >= 0x5D && c <= 0x7E);
}

/* token (RFC 7230): visible ASCII except separators. */
static bool is_tchar(unsigned char c)
{
    if (c <= 0x20 || c >= 0x7F)
        return false;
    return strchr("()<>@,;:\\\"/[]?={}", c) == NULL;
}

static int cookie_scan(const char *hdr, size_t n, const char *name, const char **val, size_t *len)
{
    if (n > CH_AUTH_HEADER_MAX)
        return CH_ELIMIT;
    size_t name_len = strlen(name), i = 0;
    unsigned pairs = 0;
    bool found = false;
    while (i < n) {
        /* Browsers send "; " between pairs; tolerate any run of spaces and stray ';'. */
        while (i < n && (is_ows(hdr[i]) || hdr[i] == ';'))
            i++;
        if (i >= n)
            break;
        if (++pairs > CH_AUTH_COOKIES_MAX)
            return CH_ELIMIT;
        size_t ns = i;
        while (i < n && is_tchar((unsigned char)hdr[i]))
            i++;
        size_t ne = i;
        if (ne == ns || i >= n || hdr[i] != '=')
            return CH_EPARSE;
        i++;
        size_t vs = i, ve;
        if (i < n && hdr[i] == '"') {
            vs = ++i;
            while (i < n && is_cookie_octet((unsigned char)hdr[i]))
                i++;
            if (i >= n || hdr[i] != '"')
                return CH_EPARSE;
            ve = i++;
        } else {
            while (i < n && is_cookie_octet((unsigned char)hdr[i]))
                i++;
            ve = i;
        }
        while (i < n && is_ows(hdr[i]))
            i++;
        if (i < n && hdr[i] != ';')
            return CH_EPARSE;
        if (ne - ns == name_len && memcmp(hdr + ns, name, name_len) == 0) {
            if (found)
                return CH_EPARSE; /* two cookies of our name: trust neither */
            found = true;
            *val = hdr + vs;
            *len = ve - vs;
        }
    }
    return found ? 0 : CH_ENOTFOUND;
}

int ch_auth_cookie_get(const char *hdr, size_t n, const char *name, const char **val, size_t *len)
{
    *val = NULL;
    *len = 0;
    int rc = cookie_scan(hdr, n, name, val, len);
    if (rc < 0) {
        /* A refusal after our cookie was seen (a second one, junk further on) hands out
         * nothing. */
        *val = NULL;
        *len = 0;
    }
    return rc;
}

int ch_session_cookie(char *buf, size_t cap, const char *id, bool secure, int64_t max_age_ms)
{
    int n;
    if (id == NULL)
        n = snprintf(buf, cap, "%s=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict%s",
                     CH_SESSION_COOKIE, secure ? "; Secure" : "");
    else
        n = snprintf(buf, cap, "%s=%s; Path=/; Max-Age=%lld; HttpOnly; SameSite=Strict%s",
                     CH_SESSION_COOKIE, id, (long long)(max_age_ms / 1000),
                     secure ? "; Secure" : "");
    if (n < 0 || (size_t)n >= cap)
        return CH_ELIMIT;
    return n;
}
