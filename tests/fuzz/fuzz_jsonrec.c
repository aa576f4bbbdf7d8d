/*
 * fuzz_jsonrec.c - libFuzzer target for the ingest layer: the input window (gzip or not) and,
 * on top of it, the JSON record splitter and the line reader, over arbitrary bytes.
 *
 * Each input is split through several windows, from one larger than any fuzz input down to a
 * few bytes (a refill every few bytes, records dropped as too large). Oracles, checked with
 * __builtin_trap: every record is '{' up to its closing bracket and ends before CH_JSON_PADDING
 * readable bytes; records come in increasing, non-overlapping offsets; for plain input a record's
 * bytes are exactly the input's bytes at its offset; a small window yields a subset of what the
 * large one yields (caps may drop records, never invent or garble them); the SSE2 block masks
 * (COINHOUND_SIMD=sse2) yield exactly the records of the AVX2 ones. The line reader must give
 * back the input line by line, with "\n" / "\r\n" stripped and too-long lines skipped whole.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/diag.h"
#include "core/json.h"
#include "ingest/input.h"
#include "parse/jsonrec.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

typedef struct found {
    uint64_t *off;
    size_t *len;
    size_t n, cap;
} found;

static volatile unsigned sink;

static void split(const uint8_t *data, size_t size, size_t window, size_t max_record, found *out)
{
    ch_input *in = NULL;
    ch_error err = {0};
    ch_diag diag;
    ch_diag_init(&diag, NULL);
    if (ch_input_open_mem(&in, "fuzz", data, size, window, &err) < 0)
        return;
    bool plain = !ch_input_is_gzip(in);
    ch_jsonrec *r = ch_jsonrec_new(in, max_record);
    if (r == NULL) {
        ch_input_close(in);
        return;
    }
    ch_jsonrec_set_max_depth(r, 64);
    ch_jsonrec_rec rec;
    uint64_t next_free = 0;
    size_t cap = max_record ? max_record : window;
    int rc;
    while ((rc = ch_jsonrec_next(r, &diag, CH_DS_CLOUDTRAIL, &rec)) == 1) {
        CHECK(rec.n >= 2 && rec.n <= cap);
        /* Depth is a counter: a malformed record may close with ']' (simdjson rejects it). */
        CHECK(rec.p[0] == '{' && (rec.p[rec.n - 1] == '}' || rec.p[rec.n - 1] == ']'));
        CHECK(rec.offset >= next_free);
        next_free = rec.offset + rec.n;
        unsigned h = 0;
        for (size_t i = 0; i < CH_JSON_PADDING; i++)
            h += (unsigned char)rec.p[rec.n + i];
        sink ^= h;
        if (plain)
            CHECK(rec.offset + rec.n <= size && memcmp(rec.p, data + rec.offset, rec.n) == 0);
        if (out != NULL) {
            if (out->n == out->cap) {
                out->cap = out->cap ? out->cap * 2 : 64;
                uint64_t *no = realloc(out->off, out->cap * sizeof *out->off);
                CHECK(no != NULL);
                out->off = no;
                size_t *nl = realloc(out->len, out->cap * sizeof *out->len);
                CHECK(nl != NULL);
                out->len = nl;
            }
            out->off[out->n] = rec.offset;
            out->len[out->n++] = rec.n;
        }
    }
    CHECK(rc <= 0);
    /* After the end, the end again. */
    CHECK(ch_jsonrec_next(r, &diag, CH_DS_CLOUDTRAIL, &rec) == 0);
    ch_jsonrec_free(r);
    ch_input_close(in);
}

static bool contains(const found *f, uint64_t off, size_t len)
{
    size_t lo = 0, hi = f->n; /* offsets are increasing */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (f->off[mid] < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < f->n && f->off[lo] == off && f->len[lo] == len;
}

static void lines(const uint8_t *data, size_t size, size_t window, size_t max_line)
{
    ch_input *in = NULL;
    ch_error err = {0};
    if (ch_input_open_mem(&in, "fuzz", data, size, window, &err) < 0)
        return;
    bool plain = !ch_input_is_gzip(in);
    size_t pos = 0;
    uint64_t want_no = 0;
    for (;;) {
        const char *p;
        size_t n;
        uint64_t no;
        int rc = ch_input_line(in, max_line, &p, &n, &no, &err);
        if (rc < 0 && rc != CH_ELIMIT) {
            CHECK(!plain);
            break;
        }
        if (rc == 0) {
            CHECK(!plain || pos == size);
            break;
        }
        CHECK(no == ++want_no);
        if (!plain)
            continue;
        if (rc == CH_ELIMIT) {
            const uint8_t *nl = memchr(data + pos, '\n', size - pos);
            pos = nl ? (size_t)(nl - data) + 1 : size;
            continue;
        }
        CHECK(n <= max_line && pos + n <= size && memcmp(p, data + pos, n) == 0);
        pos += n;
        if (pos < size) {
            if (data[pos] == '\r')
                pos++;
            CHECK(pos < size && data[pos] == '\n');
            pos++;
        }
    }
    ch_input_close(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    found big = {0};
    split(data, size, 1 << 17, 0, &big);
    const size_t windows[] = {4096, 97, 13, 3};
    for (size_t i = 0; i < sizeof windows / sizeof windows[0]; i++) {
        found small = {0};
        split(data, size, windows[i], 0, &small);
        for (size_t k = 0; k < small.n; k++)
            CHECK(contains(&big, small.off[k], small.len[k]));
        free(small.off);
        free(small.len);
    }
    split(data, size, 1 << 17, 40, NULL);
    /* The SSE2 block masks (COINHOUND_SIMD=sse2) cut exactly where the AVX2 ones do. */
    found sse2 = {0};
    setenv("COINHOUND_SIMD", "sse2", 1);
    split(data, size, 1 << 17, 0, &sse2);
    unsetenv("COINHOUND_SIMD");
    CHECK(sse2.n == big.n);
    for (size_t k = 0; k < big.n; k++)
        CHECK(sse2.off[k] == big.off[k] && sse2.len[k] == big.len[k]);
    free(sse2.off);
    free(sse2.len);
    free(big.off);
    free(big.len);

    lines(data, size, 1 << 16, 1 << 16);
    lines(data, size, 16, 8);
    lines(data, size, 5, 100);
    return 0;
}
