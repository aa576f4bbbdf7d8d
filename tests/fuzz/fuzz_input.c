/*
 * fuzz_input.c - the input window (ingest/input.h) on arbitrary bytes, plain and gzip, against
 * slower references.
 *
 * Readings of each input through windows from a few bytes to more than any plain fuzz input,
 * consuming in uneven steps (the first byte picks the step pattern):
 *  - the bytes as they are: if they start with the gzip magic, what the window delivers must
 *    be exactly what a plain zlib loop over the whole buffer inflates (members one after
 *    another, zero padding ignored, anything else after a member an error), and the window
 *    must fail exactly when that loop does, after delivering everything before the damage;
 *    otherwise the window must give back the bytes themselves;
 *  - the bytes gzip'd here (cut into two members at a point the input picks): a round trip,
 *    which must give back the bytes and end cleanly.
 * Both are also read from a file through the 128 KiB window, which reads a file 32 KiB at a
 * time and asks a gzip trailer whether a member fits before reading the file whole (the
 * merge's peek): the same bytes and the same end as from memory.
 * The sniffing (ch_input_fill) and the line reader are fuzzed by fuzz_jsonrec.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "ingest/input.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

/* Output cap of both readings: a gzip bomb is not the point, and a 7-byte window pays a call
 * per 7 bytes. */
#define OUT_CAP (256u << 10)

typedef struct bytes {
    unsigned char *p;
    size_t n, cap;
} bytes;

static void put(bytes *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        size_t nc = b->cap ? b->cap : 4096;
        while (nc < b->n + n)
            nc *= 2;
        unsigned char *np = realloc(b->p, nc);
        CHECK(np != NULL);
        b->p = np;
        b->cap = nc;
    }
    if (n)
        memcpy(b->p + b->n, p, n);
    b->n += n;
}

/* The reference: inflate the whole buffer in one go per member, by the rules input.h states.
 * Returns true when the stream is whole. Output stops past OUT_CAP. */
static bool ref_gunzip(const uint8_t *data, size_t size, bytes *out)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
        abort();
    z.next_in = (unsigned char *)data;
    z.avail_in = (uInt)size;
    bool ok = false;
    unsigned char buf[16384];
    for (;;) {
        z.next_out = buf;
        z.avail_out = sizeof buf;
        int zr = inflate(&z, Z_NO_FLUSH);
        put(out, buf, sizeof buf - z.avail_out);
        if (out->n > OUT_CAP)
            break;
        if (zr == Z_STREAM_END) {
            while (z.avail_in > 0 && z.next_in[0] == 0) {
                z.next_in++;
                z.avail_in--;
            }
            if (z.avail_in == 0) {
                ok = true;
                break;
            }
            if (z.next_in[0] != 0x1f)
                break;
            inflateReset(&z);
            continue;
        }
        if (zr == Z_OK)
            continue;
        break; /* Z_BUF_ERROR with no input left (truncated), or a data error */
    }
    inflateEnd(&z);
    return ok;
}

static int read_input(ch_input *in, uint8_t pat, bytes *out);
static const char *file_path;
static void remove_file(void) { unlink(file_path); }

/* Read everything through a window of `window` bytes, consuming in steps that follow `pat`.
 * Returns the last ch_input_more result (0 at a clean end). */
static int read_all(const void *data, size_t size, size_t window, uint8_t pat, bytes *out)
{
    ch_input *in = NULL;
    ch_error err = {0};
    if (ch_input_open_mem(&in, "fuzz", data, size, window, &err) < 0)
        return -1000;
    return read_input(in, pat, out);
}

/* The same through a file holding the bytes. */
static int read_file(const void *data, size_t size, size_t window, uint8_t pat, bytes *out)
{
    static char path[64];
    if (path[0] == '\0') {
        snprintf(path, sizeof path, "/tmp/fuzz_input_%ld.bin", (long)getpid());
        atexit(remove_file);
        file_path = path;
    }
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    CHECK(fwrite(data, 1, size, f) == size);
    CHECK(fclose(f) == 0);
    ch_input *in = NULL;
    ch_error err = {0};
    CHECK(ch_input_open(&in, path, window, &err) == 0);
    return read_input(in, pat, out);
}

static int read_input(ch_input *in, uint8_t pat, bytes *out)
{
    ch_error err = {0};
    int rc;
    unsigned k = 0;
    for (;;) {
        size_t len;
        const char *p = ch_input_data(in, &len);
        CHECK(ch_input_offset(in) == out->n);
        if (len > 0) {
            /* Consume part of the window or all of it: uneven steps cross every boundary. */
            size_t step = ((pat >> (k++ % 8)) & 1) ? len : (len + 1) / 2;
            put(out, p, step);
            ch_input_consume(in, step);
            if (step < len)
                continue;
        }
        rc = ch_input_more(in, &err);
        if (rc == 0 || (rc < 0 && rc != CH_ELIMIT))
            break;
        CHECK(rc != CH_ELIMIT); /* never with an empty window */
        if (out->n > OUT_CAP)
            break;
    }
    if (rc < 0)
        CHECK(err.msg[0] != '\0' && ch_input_more(in, &err) == rc); /* failures are sticky */
    else
        CHECK(ch_input_eof(in) && ch_input_bytes(in) == out->n);
    ch_input_close(in);
    return rc;
}

static unsigned char *gzip_two_members(const uint8_t *data, size_t size, size_t cut, size_t *n)
{
    size_t cap = compressBound((uLong)size) + 64;
    unsigned char *out = malloc(cap);
    CHECK(out != NULL);
    *n = 0;
    const size_t part[2] = {cut, size - cut};
    const uint8_t *from = data;
    for (int i = 0; i < 2; i++) {
        z_stream z;
        memset(&z, 0, sizeof z);
        CHECK(deflateInit2(&z, 1, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
        z.next_in = (unsigned char *)from;
        z.avail_in = (uInt)part[i];
        z.next_out = out + *n;
        z.avail_out = (uInt)(cap - *n);
        CHECK(deflate(&z, Z_FINISH) == Z_STREAM_END);
        *n = cap - z.avail_out;
        deflateEnd(&z);
        from += part[i];
    }
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1u << 20))
        return 0;
    uint8_t pat = data[0];
    static const size_t windows[] = {1u << 17, 4096, 61, 7};
    bool gz = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
    bytes want = {0};
    bool whole = true;
    if (gz)
        whole = ref_gunzip(data, size, &want);
    else
        put(&want, data, size);
    for (size_t w = 0; w < sizeof windows / sizeof windows[0]; w++) {
        bytes got = {0};
        int rc = read_all(data, size, windows[w], pat, &got);
        if (want.n <= OUT_CAP) {
            CHECK(got.n == want.n && (got.n == 0 || memcmp(got.p, want.p, got.n) == 0));
            CHECK((rc == 0) == whole);
        }
        if (w == 0 && got.n <= OUT_CAP) { /* (a capped reading stops where its refills end) */
            bytes fgot = {0};
            CHECK(read_file(data, size, windows[w], pat, &fgot) == rc);
            CHECK(fgot.n == got.n && (got.n == 0 || memcmp(fgot.p, got.p, got.n) == 0));
            free(fgot.p);
        }
        free(got.p);
    }
    free(want.p);

    size_t zn = 0;
    unsigned char *z = gzip_two_members(data, size, size > 1 ? data[1] % size : 0, &zn);
    for (size_t w = 0; w < sizeof windows / sizeof windows[0]; w++) {
        bytes got = {0};
        CHECK(read_all(z, zn, windows[w], pat, &got) == 0);
        CHECK(got.n == size && memcmp(got.p, data, size) == 0);
        if (w == 0 && size <= OUT_CAP) {
            bytes fgot = {0};
            CHECK(read_file(z, zn, windows[w], pat, &fgot) == 0);
            CHECK(fgot.n == size && memcmp(fgot.p, data, size) == 0);
            free(fgot.p);
        }
        free(got.p);
    }
    free(z);
    return 0;
}
