/*
 * leb.h - the integer encodings of coinhound's own binary files (event-store segments, day
 * summaries, stored events): fixed-width little-endian integers and LEB128 varints.
 *
 * Little-endian whatever the host, so a store copied to another machine still reads. The
 * readers of varints take the end of their input and say false rather than read past it, as
 * every reader of bytes from disk must (the fuzz targets feed damaged files).
 */
#ifndef CH_CORE_LEB_H
#define CH_CORE_LEB_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"

static inline void ch_le_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void ch_le_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t ch_le_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t ch_le_get64(const uint8_t *p)
{
    return (uint64_t)ch_le_get32(p) | (uint64_t)ch_le_get32(p + 4) << 32;
}

/* Write v as a LEB128 varint (1 to 10 bytes) at d, which has room; the end of what it wrote. */
static inline uint8_t *ch_leb_write(uint8_t *d, uint64_t v)
{
    while (v >= 0x80) {
        *d++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *d++ = (uint8_t)v;
    return d;
}

/* Append v as a LEB128 varint. 0 or ch_buf_add's error. */
static inline int ch_leb_put(ch_buf *b, uint64_t v)
{
    uint8_t t[10];
    return ch_buf_add(b, t, (size_t)(ch_leb_write(t, v) - t));
}

/* Read a varint at *p (before end) into *out and move *p past it; false when the input ends
 * first or the varint is longer than 64 bits. */
static inline bool ch_leb_get(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (*p >= end)
            return false;
        uint8_t c = *(*p)++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

#endif
