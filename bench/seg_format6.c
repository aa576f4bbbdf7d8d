/*
 * seg_format6.c - rewrite format 5 segments as format 6, for benchmarks that compare the two
 * formats on the same events without ingesting them again (docs/BENCHMARKS.md section 42).
 *
 * Format 6 differs from format 5 only in its index area (segment.c, "format 6's index area"):
 * the field frames are inflated back to the raw index the writer builds, and ch__seg_index6,
 * the writer's own function, makes the new area from it. Blocks and block table are copied byte
 * for byte, so the file is what the format 6 writer makes of the same records. Each output is
 * opened and checked: every field's terms and postings equal the input's, and with --verify
 * the whole segment passes ch__seg_verify (every record decoded, every column chunk against
 * the postings). Day summaries record segment sizes: remove them from the copy (a search
 * rebuilds them).
 *
 * Build: cc -O2 -std=gnu17 -D_GNU_SOURCE -Isrc bench/seg_format6.c build/libcoinhound_core.a \
 *           $(the libraries of build/CMakeFiles/coinhound.dir/link.txt) -o /tmp/seg_format6
 * Usage: seg_format6 [--verify] IN.seg OUT.seg  (IN format 5; OUT may not be IN)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "core/leb.h"
#include "core/mem.h"
#include "core/readfile.h"
#include "ingest/crc32c.h"
#include "store/store_int.h"

#define IXTAB (CH_IX_NFIELDS * 12)

static int fail(const char *file, const char *why)
{
    fprintf(stderr, "%s: %s\n", file, why);
    return 1;
}

/* Every field's terms and postings of a and b alike? */
static int same_index(ch_seg *a, ch_seg *b, uint32_t nrec)
{
    uint32_t *pa = malloc(((size_t)nrec + 1) * sizeof *pa),
             *pb = malloc(((size_t)nrec + 1) * sizeof *pb);
    int ok = pa && pb;
    ch_error err = {0};
    for (int f = 0; f < CH_IX_NFIELDS && ok; f++) {
        const ch_seg_term *ta, *tb;
        size_t na, nb;
        ok = ch__seg_terms(a, f, &ta, &na, &err) == 0 && ch__seg_terms(b, f, &tb, &nb, &err) == 0 &&
             na == nb;
        for (size_t i = 0; i < na && ok; i++)
            ok = ta[i].term.n == tb[i].term.n &&
                 memcmp(ta[i].term.p, tb[i].term.p, ta[i].term.n) == 0 &&
                 ta[i].npost == tb[i].npost && ch__seg_postings(&ta[i], pa, nrec) == 0 &&
                 ch__seg_postings(&tb[i], pb, nrec) == 0 &&
                 memcmp(pa, pb, ta[i].npost * sizeof *pa) == 0;
    }
    free(pa);
    free(pb);
    return ok;
}

int main(int argc, char **argv)
{
    int verify = argc == 4 && strcmp(argv[1], "--verify") == 0;
    if (argc != 3 + verify) {
        fprintf(stderr, "usage: seg_format6 [--verify] IN.seg OUT.seg\n");
        return 2;
    }
    const char *inp = argv[1 + verify], *outp = argv[2 + verify];
    char *in = NULL;
    size_t n = 0;
    ch_error err = {0};
    if (ch_read_file(inp, (size_t)1 << 31, &in, &n, &err) < 0)
        return fail(inp, err.msg);
    uint8_t *b = (uint8_t *)in;
    if (n < CH_SEG_HEADER || ch_le_get32(b + 8) != CH_SEG_FORMAT_FIELDS)
        return fail(inp, "not a format 5 segment");
    uint64_t ix = ch_le_get64(b + 72);
    uint32_t clen = ch_le_get32(b + 80), rawlen = ch_le_get32(b + 84), nrec = ch_le_get32(b + 28);
    if (ix + clen != n || clen < IXTAB || ch_le_get32(b + 88) != ch_crc32c(0, b + ix, IXTAB))
        return fail(inp, "index area damaged");
    /* the raw index: the field frames inflated back to back */
    uint8_t *raw = malloc(rawlen ? rawlen : 1);
    size_t off = IXTAB, r = 0;
    for (int f = 0; f < CH_IX_NFIELDS && raw; f++) {
        uint32_t fc = ch_le_get32(b + ix + f * 12), fr = ch_le_get32(b + ix + f * 12 + 4);
        if (off + fc > clen || r + fr > rawlen ||
            ch_le_get32(b + ix + f * 12 + 8) != ch_crc32c(0, b + ix + off, fc))
            return fail(inp, "index field frame damaged");
        size_t d = ZSTD_decompress(raw + r, fr, b + ix + off, fc);
        if (ZSTD_isError(d) || d != fr)
            return fail(inp, "index field frame does not decompress");
        off += fc;
        r += fr;
    }
    if (raw == NULL || r != rawlen)
        return fail(inp, "index sizes do not add up");
    ch_buf area;
    ch_buf_init(&area, (size_t)1 << 31);
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    if (ch__seg_index6(cctx, raw, rawlen, nrec, &area, &err) < 0)
        return fail(inp, err.msg);
    uint8_t h[CH_SEG_HEADER];
    memcpy(h, b, sizeof h);
    ch_le_put32(h + 8, CH_SEG_FORMAT_CHUNKS);
    ch_le_put32(h + 80, (uint32_t)area.len);
    ch_le_put32(h + 88, ch_crc32c(0, (const uint8_t *)area.data, IXTAB));
    ch_le_put32(h + 124, ch_crc32c(0, h, 124));
    FILE *o = fopen(outp, "wb");
    if (o == NULL || fwrite(h, 1, sizeof h, o) != sizeof h ||
        fwrite(b + sizeof h, 1, ix - sizeof h, o) != ix - sizeof h ||
        fwrite(area.data, 1, area.len, o) != area.len || fclose(o) != 0)
        return fail(outp, "write failed");
    ch_seg *s5 = NULL, *s6 = NULL;
    if (ch__seg_open(inp, &s5, &err) < 0 || ch__seg_open(outp, &s6, &err) < 0)
        return fail(outp, err.msg);
    if (!same_index(s5, s6, nrec))
        return fail(outp, "the index does not read back as the input's");
    if (verify && ch__seg_verify(s6, &err) < 0)
        return fail(outp, err.msg);
    printf("%s: index %u -> %zu bytes\n", outp, clen, area.len);
    ch__seg_close(s5);
    ch__seg_close(s6);
    ZSTD_freeCCtx(cctx);
    ch_buf_free(&area);
    free(raw);
    ch_free(in);
    return 0;
}
