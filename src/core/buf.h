/*
 * buf.h - a growable byte buffer with a hard maximum (curl's dynbuf idea): input can never
 * make it grow past `max`, and hitting the cap is an error the caller counts.
 * The buffer owns its bytes; ch_buf_free releases them. Data is always NUL-terminated.
 */
#ifndef CH_CORE_BUF_H
#define CH_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ch_buf {
    char *data;
    size_t len, cap, max;
} ch_buf;

void ch_buf_init(ch_buf *b, size_t max);
void ch_buf_free(ch_buf *b);
static inline void ch_buf_clear(ch_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}
int ch_buf_reserve(ch_buf *b, size_t extra); /* CH_ELIMIT past max, CH_ENOMEM */
int ch_buf_add_slow(ch_buf *b, const void *p, size_t n);
/* Appends are on every event's output path: the common case (room left) stays inline. */
static inline int ch_buf_add(ch_buf *b, const void *p, size_t n)
{
    if (b->len + n + 1 <= b->cap) {
        __builtin_memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = '\0';
        return 0;
    }
    return ch_buf_add_slow(b, p, n);
}
static inline int ch_buf_addc(ch_buf *b, char c)
{
    if (b->len + 2 <= b->cap) {
        b->data[b->len++] = c;
        b->data[b->len] = '\0';
        return 0;
    }
    return ch_buf_add_slow(b, &c, 1);
}
int ch_buf_adds(ch_buf *b, const char *s);
int ch_buf_printf(ch_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int ch_buf_add_u64(ch_buf *b, uint64_t v);
int ch_buf_add_i64(ch_buf *b, int64_t v);
/* Append s as a JSON string literal (quotes included), escaping as RFC 8259 requires.
 * Invalid UTF-8 is replaced by U+FFFD so that output is always valid JSON. */
int ch_buf_add_json_str(ch_buf *b, const char *s, size_t n);
/* Writers that reserve once per record and then write without per-call checks: the most
 * ch_json_str_put can write for n input bytes (every byte as \u00XX, plus quotes), plus the 16
 * bytes of slack past its result that it may overwrite with scratch. */
#define CH_JSON_STR_MAX(n) (6 * (size_t)(n) + 2 + 16)
/* The escaper of ch_buf_add_json_str writing at dst, which must have CH_JSON_STR_MAX(n)
 * writable bytes; returns the end of the literal (no NUL is written). Same output, byte for
 * byte, as ch_buf_add_json_str. */
char *ch_json_str_put(char *dst, const char *s, size_t n);

#ifdef __cplusplus
}
#endif

#endif
