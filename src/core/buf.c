/*
 * buf.c - growable capped buffer and the JSON string escaper used by every writer.
 * The escaper scans for the bytes that need work and copies runs between them in one memcpy,
 * because most field values need no escaping at all.
 */
#include "core/buf.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "core/error.h"
#include "core/mem.h"

void ch_buf_init(ch_buf *b, size_t max)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->max = max ? max : SIZE_MAX / 2;
}

void ch_buf_free(ch_buf *b)
{
    ch_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int ch_buf_reserve(ch_buf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return 0;
    if (extra > b->max || b->len + extra > b->max)
        return CH_ELIMIT;
    size_t nc = b->cap ? b->cap : 256;
    while (nc < b->len + extra + 1)
        nc *= 2;
    if (nc > b->max + 1)
        nc = b->max + 1;
    char *p = ch_realloc(b->data, nc);
    if (p == NULL)
        return CH_ENOMEM;
    b->data = p;
    b->cap = nc;
    return 0;
}

int ch_buf_add_slow(ch_buf *b, const void *p, size_t n)
{
    int rc = ch_buf_reserve(b, n);
    if (rc < 0)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int ch_buf_adds(ch_buf *b, const char *s) { return ch_buf_add(b, s, strlen(s)); }

int ch_buf_printf(ch_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return CH_ERR;
    int rc = ch_buf_reserve(b, (size_t)n);
    if (rc < 0)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int ch_buf_add_u64(ch_buf *b, uint64_t v)
{
    char tmp[24];
    int i = 24;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return ch_buf_add(b, tmp + i, (size_t)(24 - i));
}

int ch_buf_add_i64(ch_buf *b, int64_t v)
{
    if (v < 0) {
        int rc = ch_buf_addc(b, '-');
        if (rc < 0)
            return rc;
        return ch_buf_add_u64(b, (uint64_t)0 - (uint64_t)v);
    }
    return ch_buf_add_u64(b, (uint64_t)v);
}

/* Length of a valid UTF-8 sequence starting at s (at most n bytes), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return (n >= 2 && (s[1] & 0xC0) == 0x80) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
            return 0;
        if (c == 0xE0 && s[1] < 0xA0)
            return 0;
        if (c == 0xED && s[1] > 0x9F)
            return 0;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && s[1] < 0x90)
            return 0;
        if (c == 0xF4 && s[1] > 0x8F)
            return 0;
        return 4;
    }
    return 0;
}

/* High bit set in every byte of w that needs attention: a control byte, a quote, a backslash
 * or a non-ASCII byte. The lowest flagged byte is exact (borrows only start at a flagged byte);
 * bytes above it may be flagged spuriously, which only sends them down the careful path. */
static inline uint64_t esc_mask(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t ctl = (w - ones * 0x20) & ~w; /* bytes < 0x20 */
    uint64_t q = w ^ (ones * '"'), bs = w ^ (ones * '\\');
    uint64_t zq = (q - ones) & ~q, zb = (bs - ones) & ~bs; /* bytes == '"' or '\\' */
    return (ctl | zq | zb | w) & highs;
}

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
static inline bool esc_plain(unsigned c) { return c >= 0x20 && c != '"' && c != '\\' && c < 0x80; }
#endif

/* The last take (1..7) bytes of p[0..n), starting at p + i, in the low bytes of a word, the
 * rest spaces; built from whole loads inside the string, in registers: a byte-wise memcpy into
 * a stack word read back whole stalls on store forwarding, which cost more than the scan. */
static inline uint64_t load_tail(const unsigned char *p, size_t i, size_t n, size_t take)
{
    uint64_t w;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (n >= 8) {
        memcpy(&w, p + n - 8, 8);
        w >>= 8 * (8 - take);
    } else if (take >= 4) {
        uint32_t lo, hi;
        memcpy(&lo, p + i, 4);
        memcpy(&hi, p + i + take - 4, 4);
        w = (uint64_t)lo | ((uint64_t)hi << (8 * (take - 4)));
    } else if (take >= 2) {
        uint16_t lo, hi;
        memcpy(&lo, p + i, 2);
        memcpy(&hi, p + i + take - 2, 2);
        w = (uint64_t)lo | ((uint64_t)hi << (8 * (take - 2)));
    } else {
        w = p[i];
    }
    return w | (0x2020202020202020ull & (~0ull << (8 * take)));
#else
    w = 0x2020202020202020ull;
    memcpy(&w, p + i, take);
    return w;
#endif
}

char *ch_json_str_put(char *d, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    *d++ = '"';
#ifdef __SSE2__
    /* Sixteen bytes a time while they are all plain: one signed compare finds both the
     * control bytes and the non-ASCII ones (negative as signed bytes), two more the quote and
     * the backslash. A block with work in it falls through to the word loop below. */
    const __m128i ctl = _mm_set1_epi8(0x20), quote = _mm_set1_epi8('"'),
                  bslash = _mm_set1_epi8('\\');
    while (n - i >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(p + i));
        __m128i bad = _mm_or_si128(_mm_cmplt_epi8(x, ctl), _mm_or_si128(_mm_cmpeq_epi8(x, quote),
                                                                        _mm_cmpeq_epi8(x, bslash)));
        if (_mm_movemask_epi8(bad) != 0)
            break;
        _mm_storeu_si128((__m128i *)d, x);
        d += 16;
        i += 16;
    }
    if (n >= 16 && i < n && n - i < 16) {
        /* Every block so far was plain (the loop ran out rather than broke), so the output is
         * the input so far: the last 16 bytes, which overlap what was copied, finish a plain
         * string in one more compare, where the word loop took one or two rounds and a tail
         * load (10 strings a CloudTrail event, most of them 16 to 40 bytes long). */
        __m128i x = _mm_loadu_si128((const __m128i *)(p + n - 16));
        __m128i bad = _mm_or_si128(_mm_cmplt_epi8(x, ctl), _mm_or_si128(_mm_cmpeq_epi8(x, quote),
                                                                        _mm_cmpeq_epi8(x, bslash)));
        if (_mm_movemask_epi8(bad) == 0) {
            _mm_storeu_si128((__m128i *)(d + (n - i) - 16), x);
            d += n - i;
            i = n;
        }
    }
#endif
    while (i < n) {
        /* Eight bytes a time, stored whole: the bytes past the string's end land in the slack
         * CH_JSON_STR_MAX reserves and are overwritten by what follows. A short tail is padded
         * with spaces, which need no escaping, so it takes the same path without reading past
         * the source. */
        uint64_t w;
        size_t take = 8;
        if (n - i >= 8)
            memcpy(&w, p + i, 8);
        else
            w = load_tail(p, i, n, take = n - i);
        uint64_t m = esc_mask(w);
        if (m == 0) {
            memcpy(d, &w, 8);
            d += take;
            i += take;
            continue;
        }
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        size_t k = (size_t)__builtin_ctzll(m) >> 3;
#else
        size_t k = 0;
        while (esc_plain(p[i + k]))
            k++;
#endif
        memcpy(d, &w, 8); /* the clean prefix (k bytes); the rest is scratch */
        d += k;
        i += k;
        unsigned c = p[i];
        if (c >= 0x80) {
            size_t l = utf8_len(p + i, n - i);
            if (l) {
                memcpy(d, p + i, l);
                d += l;
                i += l;
                continue;
            }
            memcpy(d, "\xEF\xBF\xBD", 3); /* invalid UTF-8 byte: U+FFFD */
            d += 3;
            i++;
            continue;
        }
        *d++ = '\\';
        switch (c) {
        case '"':
            *d++ = '"';
            break;
        case '\\':
            *d++ = '\\';
            break;
        case '\n':
            *d++ = 'n';
            break;
        case '\r':
            *d++ = 'r';
            break;
        case '\t':
            *d++ = 't';
            break;
        default:
            memcpy(d, "u00", 3);
            d[3] = hex[c >> 4];
            d[4] = hex[c & 15];
            d += 5;
        }
        i++;
    }
    *d++ = '"';
    return d;
}

/* Strings up to this size reserve their worst case and take ch_json_str_put; longer ones (a
 * whole record re-serialized, say) take the run-copying loop below, which reserves only what
 * it writes, so a capped buffer never refuses a string that fits. */
#define JSON_STR_FAST_MAX 65536

int ch_buf_add_json_str(ch_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (n <= JSON_STR_FAST_MAX && b->len + CH_JSON_STR_MAX(n) <= b->max &&
        ch_buf_reserve(b, CH_JSON_STR_MAX(n)) == 0) {
        char *e = ch_json_str_put(b->data + b->len, s, n);
        b->len = (size_t)(e - b->data);
        b->data[b->len] = '\0';
        return 0;
    }
    const unsigned char *p = (const unsigned char *)s;
    int rc = ch_buf_reserve(b, n + 2);
    if (rc < 0)
        return rc;
    b->data[b->len++] = '"';
    size_t i = 0, run = 0;
    while (i < n) {
        /* Eight bytes at a time while none needs attention (no control byte, quote, backslash
         * or non-ASCII byte): most values are plain ASCII identifiers, names and addresses. */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
            uint64_t ctl = (w - ones * 0x20) & ~w; /* bytes < 0x20 */
            uint64_t q = w ^ (ones * '"'), bs = w ^ (ones * '\\');
            uint64_t zq = (q - ones) & ~q, zb = (bs - ones) & ~bs; /* bytes == '"' or '\\' */
            if (((ctl | zq | zb) & highs) | (w & highs))
                break;
            i += 8;
        }
        if (i >= n)
            break;
        unsigned c = p[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0x80) {
            size_t l = utf8_len(p + i, n - i);
            if (l) {
                i += l;
                continue;
            }
        }
        if ((rc = ch_buf_add(b, s + run, i - run)) < 0)
            return rc;
        char esc[8];
        size_t el = 2;
        esc[0] = '\\';
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            if (c < 0x20) {
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                el = 6;
            } else { /* invalid UTF-8 byte */
                memcpy(esc, "\xEF\xBF\xBD", 3);
                el = 3;
            }
        }
        if ((rc = ch_buf_add(b, esc, el)) < 0)
            return rc;
        i++;
        run = i;
    }
    if ((rc = ch_buf_add(b, s + run, n - run)) < 0)
        return rc;
    return ch_buf_addc(b, '"');
}
