/*
 * sigv4.c - AWS Signature Version 4 (see sigv4.h).
 *
 * The path is normalized as RFC 3986 section 5.2.4 says (dot segments removed) and empty
 * segments are collapsed, as AWS does for every service but S3 (which the responder never
 * calls); each segment is then percent-encoded again, as the reference asks of non-S3 services,
 * so an already encoded "%20" is signed as "%2520". Query names and values are decoded and
 * encoded again so that equivalent spellings sign alike, then sorted by name and value. Cost:
 * O(request size) plus sorting the headers and query parameters.
 */
#include "response/sigv4.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

#define PART_MAX (1u << 20)

void ch_sigv4_out_init(ch_sigv4_out *o)
{
    ch_buf_init(&o->creq, 8u << 20);
    ch_buf_init(&o->sts, 4096);
    ch_buf_init(&o->authorization, 8192);
}

void ch_sigv4_out_free(ch_sigv4_out *o)
{
    ch_buf_free(&o->creq);
    ch_buf_free(&o->sts);
    ch_buf_free(&o->authorization);
}

static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static int encode(ch_buf *b, const char *s, size_t n, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = 0;
    for (size_t i = 0; i < n && rc >= 0; i++) {
        unsigned char c = (unsigned char)s[i];
        if (unreserved(c) || (keep_slash && c == '/')) {
            rc = ch_buf_addc(b, (char)c);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            rc = ch_buf_add(b, e, 3);
        }
    }
    return rc;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Percent-decode s[0..n) into b ('+' is kept: SigV4 treats it as itself). */
static int decode(ch_buf *b, const char *s, size_t n)
{
    int rc = 0;
    for (size_t i = 0; i < n && rc >= 0; i++) {
        if (s[i] == '%') {
            int h, l;
            if (i + 2 >= n || (h = hexval(s[i + 1])) < 0 || (l = hexval(s[i + 2])) < 0)
                return CH_EUSAGE;
            rc = ch_buf_addc(b, (char)(h << 4 | l));
            i += 2;
        } else {
            rc = ch_buf_addc(b, s[i]);
        }
    }
    return rc;
}

/* ---- path -------------------------------------------------------------------------------------
 */

static int canonical_path(ch_buf *b, const char *path)
{
    size_t n = strlen(path);
    /* Segments kept, as (offset, length) into path. */
    size_t *seg = ch_malloc((n / 2 + 2) * 2 * sizeof *seg);
    if (seg == NULL)
        return CH_ENOMEM;
    size_t ns = 0;
    for (size_t i = 0; i < n;) {
        while (i < n && path[i] == '/')
            i++;
        size_t s = i;
        while (i < n && path[i] != '/')
            i++;
        size_t len = i - s;
        if (len == 0 || (len == 1 && path[s] == '.'))
            continue;
        if (len == 2 && path[s] == '.' && path[s + 1] == '.') {
            if (ns > 0)
                ns--;
            continue;
        }
        seg[2 * ns] = s;
        seg[2 * ns + 1] = len;
        ns++;
    }
    /* A path that ends in "/" (or "/." / "/..") keeps its trailing slash. */
    bool trailing =
        n > 0 && (path[n - 1] == '/' || (n >= 2 && path[n - 1] == '.' && path[n - 2] == '/') ||
                  (n >= 3 && path[n - 1] == '.' && path[n - 2] == '.' && path[n - 3] == '/'));
    int rc = 0;
    for (size_t i = 0; i < ns && rc >= 0; i++) {
        rc = ch_buf_addc(b, '/');
        if (rc >= 0)
            rc = encode(b, path + seg[2 * i], seg[2 * i + 1], false);
    }
    if (rc >= 0 && (ns == 0 || trailing))
        rc = ch_buf_addc(b, '/');
    ch_free(seg);
    return rc;
}

/* ---- query ------------------------------------------------------------------------------------
 */

typedef struct param {
    char *s; /* "encoded-name\0encoded-value" */
    size_t name_len;
} param;

static int cmp_param(const void *a, const void *b)
{
    const param *x = a, *y = b;
    int c = strcmp(x->s, y->s);
    return c != 0 ? c : strcmp(x->s + x->name_len + 1, y->s + y->name_len + 1);
}

static int encode_part(ch_buf *out, const char *s, size_t n)
{
    ch_buf raw;
    ch_buf_init(&raw, PART_MAX);
    int rc = decode(&raw, s, n);
    if (rc >= 0)
        rc = encode(out, raw.data != NULL ? raw.data : "", raw.len, false);
    ch_buf_free(&raw);
    return rc;
}

static int canonical_query(ch_buf *b, const char *q)
{
    if (q == NULL || *q == '\0')
        return 0;
    size_t n = strlen(q), np = 1;
    for (size_t i = 0; i < n; i++)
        np += q[i] == '&';
    param *v = ch_calloc(np, sizeof *v);
    if (v == NULL)
        return CH_ENOMEM;
    size_t k = 0;
    int rc = 0;
    ch_buf t;
    ch_buf_init(&t, PART_MAX);
    for (size_t i = 0; i <= n && rc >= 0;) {
        size_t e = i;
        while (e < n && q[e] != '&')
            e++;
        if (e > i) {
            const char *eq = memchr(q + i, '=', e - i);
            size_t nl = eq != NULL ? (size_t)(eq - (q + i)) : e - i;
            ch_buf_clear(&t);
            rc = encode_part(&t, q + i, nl);
            size_t enl = t.len;
            if (rc >= 0)
                rc = ch_buf_addc(&t, '\0');
            if (rc >= 0 && eq != NULL)
                rc = encode_part(&t, eq + 1, e - i - nl - 1);
            if (rc >= 0 && (v[k].s = ch_strndup(t.data, t.len)) == NULL)
                rc = CH_ENOMEM;
            if (rc >= 0)
                v[k++].name_len = enl;
        }
        i = e + 1;
    }
    if (rc >= 0) {
        qsort(v, k, sizeof *v, cmp_param);
        for (size_t i = 0; i < k && rc >= 0; i++)
            rc = ch_buf_printf(b, "%s%s=%s", i ? "&" : "", v[i].s, v[i].s + v[i].name_len + 1);
    }
    for (size_t i = 0; i < k; i++)
        ch_free(v[i].s);
    ch_free(v);
    ch_buf_free(&t);
    return rc;
}

/* ---- headers ----------------------------------------------------------------------------------
 */

typedef struct hdr {
    char name[128];
    size_t order;
    const char *value;
} hdr;

static int cmp_hdr(const void *a, const void *b)
{
    const hdr *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c != 0 ? c : (x->order > y->order) - (x->order < y->order);
}

/* The value trimmed, inner runs of spaces (and tabs, and folded lines) as one space. */
static int add_trimmed(ch_buf *b, const char *v)
{
    while (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r')
        v++;
    int rc = 0;
    bool space = false;
    for (; *v && rc >= 0; v++) {
        if (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r') {
            space = true;
            continue;
        }
        if (space)
            rc = ch_buf_addc(b, ' ');
        space = false;
        if (rc >= 0)
            rc = ch_buf_addc(b, *v);
    }
    return rc;
}

static int canonical_headers(ch_buf *b, ch_buf *signed_hdrs, const ch_sigv4_request *r)
{
    if (r->nheaders > CH_SIGV4_MAX_HEADERS)
        return CH_EUSAGE;
    hdr h[CH_SIGV4_MAX_HEADERS] = {{{0}, 0, NULL}};
    for (size_t i = 0; i < r->nheaders; i++) {
        size_t n = strlen(r->headers[i].name);
        if (n == 0 || n >= sizeof h[i].name)
            return CH_EUSAGE;
        for (size_t c = 0; c <= n; c++) {
            char ch = r->headers[i].name[c];
            h[i].name[c] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
        }
        h[i].order = i;
        h[i].value = r->headers[i].value != NULL ? r->headers[i].value : "";
    }
    qsort(h, r->nheaders, sizeof h[0], cmp_hdr);
    int rc = 0;
    for (size_t i = 0; i < r->nheaders && rc >= 0; i++) {
        bool cont = i > 0 && strcmp(h[i].name, h[i - 1].name) == 0;
        if (cont) {
            rc = ch_buf_addc(b, ',');
        } else {
            if (i > 0 && (rc = ch_buf_addc(b, '\n')) < 0)
                break;
            rc = ch_buf_printf(b, "%s:", h[i].name);
            if (rc >= 0)
                rc = ch_buf_printf(signed_hdrs, "%s%s", signed_hdrs->len ? ";" : "", h[i].name);
        }
        if (rc >= 0)
            rc = add_trimmed(b, h[i].value);
    }
    if (rc >= 0 && r->nheaders > 0)
        rc = ch_buf_addc(b, '\n');
    return rc;
}

/* ---- signing ----------------------------------------------------------------------------------
 */

static void hex(const unsigned char *d, size_t n, char *out)
{
    static const char x[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = x[d[i] >> 4];
        out[2 * i + 1] = x[d[i] & 15];
    }
    out[2 * n] = '\0';
}

static void hmac(const unsigned char *key, size_t klen, const char *msg, size_t mlen,
                 unsigned char out[crypto_auth_hmacsha256_BYTES])
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, klen);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, mlen);
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof st);
}

static bool date_ok(const char *d)
{
    if (d == NULL || strlen(d) != 16 || d[8] != 'T' || d[15] != 'Z')
        return false;
    for (int i = 0; i < 15; i++)
        if (i != 8 && (d[i] < '0' || d[i] > '9'))
            return false;
    return true;
}

int ch_sigv4_signature(const ch_sigv4_key *k, const char *sts, size_t n, char out[65])
{
    /* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, day), region), service), "aws4_request") */
    if (!date_ok(k->amz_date))
        return CH_EUSAGE;
    if (sodium_init() < 0)
        return CH_EIO;
    size_t sl = strlen(k->secret_key);
    unsigned char *secret = ch_malloc(sl + 4);
    unsigned char kd[32], kr[32], ks[32], kg[32], sig[32];
    if (secret == NULL)
        return CH_ENOMEM;
    memcpy(secret, "AWS4", 4);
    memcpy(secret + 4, k->secret_key, sl);
    hmac(secret, sl + 4, k->amz_date, 8, kd);
    hmac(kd, 32, k->region, strlen(k->region), kr);
    hmac(kr, 32, k->service, strlen(k->service), ks);
    hmac(ks, 32, "aws4_request", 12, kg);
    hmac(kg, 32, sts, n, sig);
    sodium_memzero(secret, sl + 4);
    sodium_memzero(kd, 32);
    sodium_memzero(kr, 32);
    sodium_memzero(ks, 32);
    sodium_memzero(kg, 32);
    ch_free(secret);
    hex(sig, 32, out);
    return 0;
}

int ch_sigv4_sign(const ch_sigv4_request *r, const ch_sigv4_key *k, ch_sigv4_out *out,
                  ch_error *err)
{
    if (!date_ok(k->amz_date))
        return ch_error_set(err, CH_EUSAGE, "SigV4: the date must look like 20150830T123600Z");
    if (sodium_init() < 0)
        return ch_error_set(err, CH_EIO, "SigV4: libsodium could not start");
    ch_buf_clear(&out->creq);
    ch_buf_clear(&out->sts);
    ch_buf_clear(&out->authorization);
    ch_buf sh;
    ch_buf_init(&sh, 8192);
    unsigned char digest[crypto_hash_sha256_BYTES];
    char hx[2 * crypto_hash_sha256_BYTES + 1];
    int rc = ch_buf_printf(&out->creq, "%s\n", r->method);
    if (rc >= 0)
        rc = canonical_path(&out->creq, r->path != NULL && *r->path ? r->path : "/");
    if (rc >= 0)
        rc = ch_buf_addc(&out->creq, '\n');
    if (rc >= 0)
        rc = canonical_query(&out->creq, r->query);
    if (rc >= 0)
        rc = ch_buf_addc(&out->creq, '\n');
    if (rc >= 0)
        rc = canonical_headers(&out->creq, &sh, r);
    if (rc >= 0)
        rc = ch_buf_addc(&out->creq, '\n');
    if (rc >= 0)
        rc = ch_buf_add(&out->creq, sh.data != NULL ? sh.data : "", sh.len);
    if (rc >= 0) {
        crypto_hash_sha256(digest, r->body != NULL ? r->body : (const void *)"", r->body_len);
        hex(digest, sizeof digest, hx);
        rc = ch_buf_printf(&out->creq, "\n%s", hx);
    }
    if (rc < 0) {
        ch_buf_free(&sh);
        return ch_error_set(err, rc,
                            rc == CH_EUSAGE ? "SigV4: a bad percent escape or header"
                                            : "SigV4: the request is too large (%s)",
                            ch_strerror(rc));
    }
    char day[9];
    memcpy(day, k->amz_date, 8);
    day[8] = '\0';
    crypto_hash_sha256(digest, (const unsigned char *)out->creq.data, out->creq.len);
    hex(digest, sizeof digest, hx);
    rc = ch_buf_printf(&out->sts, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", k->amz_date,
                       day, k->region, k->service, hx);
    if (rc >= 0)
        rc = ch_sigv4_signature(k, out->sts.data, out->sts.len, hx);
    if (rc >= 0)
        rc = ch_buf_printf(&out->authorization,
                           "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, "
                           "SignedHeaders=%.*s, Signature=%s",
                           k->access_key, day, k->region, k->service, (int)sh.len,
                           sh.data != NULL ? sh.data : "", hx);
    ch_buf_free(&sh);
    return rc < 0 ? ch_error_set(err, rc, "SigV4: %s", ch_strerror(rc)) : 0;
}
