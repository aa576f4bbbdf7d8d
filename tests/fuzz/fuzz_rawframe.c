/*
 * fuzz_rawframe.c - libFuzzer target for the zstd frames of raw blocks that `store hot raw`
 * writes (ch__seg_raw_frame in store/segment.c): the frame is made by hand, not by libzstd, so
 * libzstd must read back every one of them. The first input byte stretches the rest (repeated
 * up to 4 x 128 KiB + 1031 bytes) so that frames of several blocks and every block boundary are
 * reached from small inputs. Checked: the frame fits ch__seg_raw_bound; libzstd finds its end
 * and content size; a one-shot decompression and a streaming one limited to a 128 KiB window
 * give the input back, byte for byte; two frames back to back decompress as their
 * concatenation (the index area is read that way).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

#include "store/store_int.h"

#define MAX_SRC ((size_t)4 * 131072 + 1031)

static void check(const uint8_t *src, size_t n)
{
    size_t bound = ch__seg_raw_bound(n);
    uint8_t *z = malloc(2 * bound);
    uint8_t *back = malloc(2 * n + 1);
    if (z == NULL || back == NULL)
        abort();
    size_t zl = ch__seg_raw_frame(z, src, n);
    if (zl > bound || ZSTD_findFrameCompressedSize(z, zl) != zl ||
        ZSTD_getFrameContentSize(z, zl) != n)
        abort();
    if (ZSTD_decompress(back, n + 1, z, zl) != n || (n && memcmp(back, src, n) != 0))
        abort();
    ZSTD_DCtx *d = ZSTD_createDCtx();
    if (d == NULL || ZSTD_isError(ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, 17)))
        abort();
    ZSTD_inBuffer in = {z, zl, 0};
    ZSTD_outBuffer out = {back, n + 1, 0};
    size_t r;
    do
        r = ZSTD_decompressStream(d, &out, &in);
    while (!ZSTD_isError(r) && r != 0 && in.pos < in.size);
    if (r != 0 || out.pos != n || (n && memcmp(back, src, n) != 0))
        abort();
    ZSTD_freeDCtx(d);
    size_t zl2 = ch__seg_raw_frame(z + zl, src, n);
    if (ZSTD_decompress(back, 2 * n + 1, z, zl + zl2) != 2 * n ||
        (n && (memcmp(back, src, n) != 0 || memcmp(back + n, src, n) != 0)))
        abort();
    free(z);
    free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        check(data, 0);
        return 0;
    }
    size_t rest = size - 1, want = rest * ((size_t)data[0] * 37 + 1);
    if (want > MAX_SRC)
        want = MAX_SRC;
    if (rest == 0)
        want = (size_t)data[0] * 2053; /* a run of zero bytes */
    uint8_t *src = malloc(want ? want : 1);
    if (src == NULL)
        return 0;
    for (size_t i = 0; i < want; i++)
        src[i] = rest ? data[1 + i % rest] : 0;
    check(src, want);
    free(src);
    return 0;
}
