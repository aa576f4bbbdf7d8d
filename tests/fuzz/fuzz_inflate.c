/*
 * fuzz_inflate.c - differential target: the same gzip bytes read with COINHOUND_INFLATE=zlib
 * (zlib streams every member) and with libdeflate (the default: members inflated whole, zlib
 * streaming what libdeflate refuses) must give the same results a user can see.
 *
 * libFuzzer cannot make a gzip member whose CRC-32 checks out, so most inputs are built here:
 * the first byte picks a shape and the rest is the text, gzip'd into one to three members
 * (cut where the input says), followed by nothing, zero padding, garbage, a truncated or
 * damaged member, or cut short or with one byte flipped. Shape 0 takes the bytes as they are.
 * Each stream is then read three ways with each inflater, through a window larger than any
 * input (so that libdeflate takes whole members) and smaller ones (so that it cannot):
 *  - the raw window (ch_input_more): the same bytes, the same final code and error message;
 *  - the JSON record splitter: the same records (offset, length, line, bytes) and the same
 *    reports (reason, line, offset, message), in the same order;
 *  - the line reader: the same lines, line numbers and errors.
 * Any difference traps. fuzz_input checks the bytes against a one-shot zlib loop, and
 * fuzz_jsonrec the splitter's own invariants; this target checks the two inflaters agree.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/diag.h"
#include "ingest/input.h"
#include "parse/jsonrec.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

/* Streams inflating to more are skipped: a gzip bomb (shape 0) is not the point. */
#define OUT_CAP (512u << 10)

typedef struct bytes {
    unsigned char *p;
    size_t n, cap;
} bytes;

static void put(bytes *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    if (b->p == NULL || b->n + n > b->cap) {
        size_t nc = b->cap ? b->cap : 4096;
        while (nc < b->n + n)
            nc *= 2;
        unsigned char *np = realloc(b->p, nc);
        CHECK(np != NULL);
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

static void put_u64(bytes *b, uint64_t v) { put(b, &v, sizeof v); }

static void put_str(bytes *b, const char *s)
{
    size_t n = strlen(s);
    put_u64(b, n);
    put(b, s, n);
}

static void gzip_member(bytes *out, const uint8_t *data, size_t n, int level)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    CHECK(deflateInit2(&z, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    size_t cap = compressBound((uLong)n) + 64;
    if (out->cap - out->n < cap) {
        unsigned char *np = realloc(out->p, out->n + cap);
        CHECK(np != NULL);
        out->p = np;
        out->cap = out->n + cap;
    }
    z.next_in = (unsigned char *)data;
    z.avail_in = (uInt)n;
    z.next_out = out->p + out->n;
    z.avail_out = (uInt)cap;
    CHECK(deflate(&z, Z_FINISH) == Z_STREAM_END);
    out->n += cap - z.avail_out;
    deflateEnd(&z);
}

/* Bytes zlib inflates from the stream, members one after another, up to a little over cap. */
static size_t inflated_size(const bytes *s, size_t cap)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    CHECK(inflateInit2(&z, 16 + MAX_WBITS) == Z_OK);
    z.next_in = s->p;
    z.avail_in = (uInt)s->n;
    size_t total = 0;
    unsigned char buf[16384];
    while (total <= cap) {
        z.next_out = buf;
        z.avail_out = sizeof buf;
        int zr = inflate(&z, Z_NO_FLUSH);
        total += sizeof buf - z.avail_out;
        if (zr == Z_STREAM_END && z.avail_in > 0 && z.next_in[0] == 0x1f) {
            inflateReset(&z);
            continue;
        }
        if (zr != Z_OK)
            break;
    }
    inflateEnd(&z);
    return total;
}

/* The stream to read, built from the input as the opening comment says. */
static void build(const uint8_t *data, size_t size, bytes *out)
{
    uint8_t shape = data[0];
    if ((shape & 7) == 0) {
        put(out, data + 1, size - 1);
        return;
    }
    /* data[1..2]: where to cut members and what to damage; the text follows. */
    uint8_t a = size > 1 ? data[1] : 0, b = size > 2 ? data[2] : 0;
    const uint8_t *text = size > 3 ? data + 3 : data;
    size_t n = size > 3 ? size - 3 : 0;
    int members = 1 + (shape >> 3) % 3;
    int level = (shape >> 5) & 1 ? 9 : 1;
    size_t cut1 = n ? (size_t)a * n / 256 : 0, cut2 = n ? (size_t)b * n / 256 : 0;
    if (cut2 < cut1) {
        size_t t = cut1;
        cut1 = cut2;
        cut2 = t;
    }
    if (members == 1) {
        gzip_member(out, text, n, level);
    } else if (members == 2) {
        gzip_member(out, text, cut1, level);
        gzip_member(out, text + cut1, n - cut1, level);
    } else {
        gzip_member(out, text, cut1, level);
        gzip_member(out, text + cut1, cut2 - cut1, level);
        gzip_member(out, text + cut2, n - cut2, level);
    }
    static const unsigned char zeros[9];
    switch (shape & 7) {
    case 1: /* nothing after */
        break;
    case 2: /* tape padding */
        put(out, zeros, 1 + b % 9);
        break;
    case 3: /* garbage (not a 0 byte, not the magic) */
        put(out, (const unsigned char[]){(unsigned char)(a == 0 || a == 0x1f ? 'x' : a)}, 1);
        put(out, text, n < 7 ? n : 7);
        break;
    case 4: { /* a member cut short follows */
        bytes m = {0};
        gzip_member(&m, text, n, level);
        CHECK(m.p != NULL && m.n > 1); /* a gzip member is 20 bytes at least */
        put(out, m.p, 1 + b % (m.n - 1));
        free(m.p);
        break;
    }
    case 5: /* the stream cut short */
        if (out->n > 0)
            out->n -= 1 + (size_t)b % (out->n < 24 ? out->n : 24);
        break;
    case 6: /* one byte flipped */
    case 7:
        if (out->p != NULL && out->n > 0)
            out->p[((size_t)a << 8 | b) % out->n] ^= (unsigned char)(1u << (shape >> 6));
        if ((shape & 7) == 7)
            put(out, zeros, 2);
        break;
    }
}

static int read_raw(const bytes *s, size_t window, bytes *log)
{
    ch_input *in = NULL;
    ch_error err = {0};
    if (ch_input_open_mem(&in, "fuzz", s->p, s->n, window, &err) < 0)
        return -1000;
    int rc;
    for (;;) {
        size_t len;
        const char *p = ch_input_data(in, &len);
        put(log, p, len);
        ch_input_consume(in, len);
        rc = ch_input_more(in, &err);
        if (rc <= 0)
            break;
    }
    put_u64(log, (uint64_t)(int64_t)rc);
    if (rc < 0)
        put_str(log, err.msg);
    ch_input_close(in);
    return rc;
}

static void capture(void *ud, ch_dataset ds, const char *file, uint64_t line, uint64_t offset,
                    const char *reason, const char *msg)
{
    bytes *log = ud;
    (void)ds;
    (void)file;
    put_u64(log, line);
    put_u64(log, offset);
    put_str(log, reason);
    put_str(log, msg);
}

static void read_split(const bytes *s, size_t window, size_t max_record, bytes *log)
{
    ch_input *in = NULL;
    ch_error err = {0};
    if (ch_input_open_mem(&in, "fuzz", s->p, s->n, window, &err) < 0)
        return;
    ch_jsonrec *r = ch_jsonrec_new(in, max_record);
    CHECK(r != NULL);
    ch_jsonrec_set_max_depth(r, 64);
    ch_diag diag;
    ch_diag_init(&diag, NULL);
    diag.capture = capture;
    diag.capture_ud = log;
    ch_jsonrec_rec rec;
    int rc;
    while ((rc = ch_jsonrec_next(r, &diag, CH_DS_CLOUDTRAIL, &rec)) == 1) {
        put_u64(log, rec.offset);
        put_u64(log, rec.line);
        put_u64(log, rec.multiline);
        put_u64(log, rec.n);
        put(log, rec.p, rec.n);
    }
    put_u64(log, (uint64_t)(int64_t)rc);
    ch_jsonrec_free(r);
    ch_input_close(in);
}

static void read_lines(const bytes *s, size_t window, size_t max_line, bytes *log)
{
    ch_input *in = NULL;
    ch_error err = {0};
    if (ch_input_open_mem(&in, "fuzz", s->p, s->n, window, &err) < 0)
        return;
    for (;;) {
        const char *p;
        size_t n;
        uint64_t no = 0;
        int rc = ch_input_line(in, max_line, &p, &n, &no, &err);
        put_u64(log, (uint64_t)(int64_t)rc);
        put_u64(log, no);
        if (rc == 1)
            put(log, p, n);
        else if (rc < 0)
            put_str(log, err.msg);
        if ((rc < 0 && rc != CH_ELIMIT) || rc == 0)
            break;
    }
    ch_input_close(in);
}

/* Everything a reading gives, with one inflater. */
static void read_all(const bytes *s, const char *inflater, bytes *log)
{
    setenv("COINHOUND_INFLATE", inflater, 1);
    static const size_t windows[] = {1u << 20, 1u << 17, 4096, 61};
    for (size_t w = 0; w < sizeof windows / sizeof windows[0]; w++) {
        read_raw(s, windows[w], log);
        read_split(s, windows[w], 0, log);
    }
    read_split(s, 1u << 17, 40, log);
    read_lines(s, 1u << 17, 1u << 16, log);
    read_lines(s, 1u << 17, 8, log);
    unsetenv("COINHOUND_INFLATE");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1u << 20))
        return 0;
    bytes s = {0};
    build(data, size, &s);
    if (s.p == NULL || s.n < 2 || s.p[0] != 0x1f || s.p[1] != 0x8b ||
        inflated_size(&s, OUT_CAP) > OUT_CAP) {
        free(s.p);
        return 0; /* plain (no inflater involved), or a bomb */
    }
    bytes a = {0}, b = {0};
    read_all(&s, "zlib", &a);
    read_all(&s, "libdeflate", &b);
    CHECK(a.n == b.n);
    CHECK(a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
    free(a.p);
    free(b.p);
    free(s.p);
    return 0;
}
