/*
 * seg_format5.c - rewrite format 4 segments as format 5, for benchmarks that compare the two
 * formats on the same events without ingesting them twice (docs/BENCHMARKS.md section 38).
 *
 * Format 5 differs from format 4 only in its index area: a table of the nine field frames
 * (compressed size, raw size, CRC32C) before the same frames, with the header's index checksum
 * over the table. Blocks, block table and frames are copied byte for byte, so the file equals
 * what the format 5 writer makes of the same segment. Each output is checked by opening it and
 * reading every field's terms. Day summaries record segment sizes: remove them from the copy
 * (a search rebuilds them).
 *
 * Build: cc -O2 -std=gnu17 -D_GNU_SOURCE -Isrc bench/seg_format5.c build/libcoinhound_core.a \
 *           $(the libraries of build/CMakeFiles/coinhound.dir/link.txt) -o /tmp/seg_format5
 * Usage: seg_format5 IN.seg OUT.seg  (IN format 4; OUT may not be IN)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "core/leb.h"
#include "core/readfile.h"
#include "ingest/crc32c.h"
#include "store/store_int.h"

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: seg_format5 IN.seg OUT.seg\n");
        return 2;
    }
    char *in = NULL;
    size_t n = 0;
    ch_error err = {0};
    if (ch_read_file(argv[1], (size_t)1 << 31, &in, &n, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    uint8_t *b = (uint8_t *)in;
    if (n < CH_SEG_HEADER || ch_le_get32(b + 8) != CH_SEG_FORMAT_COLS) {
        fprintf(stderr, "%s: not a format 4 segment\n", argv[1]);
        return 1;
    }
    uint64_t ix = ch_le_get64(b + 72);
    uint32_t clen = ch_le_get32(b + 80);
    if (ix + clen != n || ch_le_get32(b + 88) != ch_crc32c(0, b + ix, clen)) {
        fprintf(stderr, "%s: index area damaged\n", argv[1]);
        return 1;
    }
    uint8_t tab[CH_IX_NFIELDS * 12];
    size_t off = 0;
    for (int f = 0; f < CH_IX_NFIELDS; f++) {
        size_t fl = ZSTD_findFrameCompressedSize(b + ix + off, clen - off);
        unsigned long long cs =
            ZSTD_isError(fl) ? ZSTD_CONTENTSIZE_ERROR : ZSTD_getFrameContentSize(b + ix + off, fl);
        if (ZSTD_isError(fl) || cs == ZSTD_CONTENTSIZE_ERROR || cs == ZSTD_CONTENTSIZE_UNKNOWN) {
            fprintf(stderr, "%s: index frame %d does not parse\n", argv[1], f);
            return 1;
        }
        ch_le_put32(tab + f * 12, (uint32_t)fl);
        ch_le_put32(tab + f * 12 + 4, (uint32_t)cs);
        ch_le_put32(tab + f * 12 + 8, ch_crc32c(0, b + ix + off, fl));
        off += fl;
    }
    if (off != clen) {
        fprintf(stderr, "%s: not one index frame per field\n", argv[1]);
        return 1;
    }
    uint8_t h[CH_SEG_HEADER];
    memcpy(h, b, sizeof h);
    ch_le_put32(h + 8, CH_SEG_FORMAT_FIELDS);
    ch_le_put32(h + 80, clen + (uint32_t)sizeof tab);
    ch_le_put32(h + 88, ch_crc32c(0, tab, sizeof tab));
    ch_le_put32(h + 124, ch_crc32c(0, h, 124));
    FILE *o = fopen(argv[2], "wb");
    if (o == NULL || fwrite(h, 1, sizeof h, o) != sizeof h ||
        fwrite(b + sizeof h, 1, ix - sizeof h, o) != ix - sizeof h ||
        fwrite(tab, 1, sizeof tab, o) != sizeof tab || fwrite(b + ix, 1, clen, o) != clen ||
        fclose(o) != 0) {
        fprintf(stderr, "%s: write failed\n", argv[2]);
        return 1;
    }
    free(in);
    ch_seg *s = NULL;
    if (ch__seg_open(argv[2], &s, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    for (int f = 0; f < CH_IX_NFIELDS; f++) {
        const ch_seg_term *t;
        size_t nt;
        if (ch__seg_terms(s, f, &t, &nt, &err) < 0) {
            fprintf(stderr, "%s: %s\n", argv[2], err.msg);
            return 1;
        }
    }
    ch__seg_close(s);
    return 0;
}
