/*
 * stream_bench.c - how to compress formats 3 and 4's two streams (store/segment.c): bytes per event
 * and decompression CPU per event of a segment's typed-part blocks and original-record blocks under
 * each zstd level and dictionary choice, over the same records, in one invocation.
 *
 * It reads sealed format 3 segments, rebuilds each block's raw streams exactly as the writer
 * had them ([u32 length][part]... per record), and compresses every block after the first with:
 * no dictionary, block 0 of the same stream as raw-content dictionary (what the store can do),
 * or, for the typed stream, block 0's typed and original records together (the typed parts
 * repeat strings of the JSON, which the one-stream format 2 found inside the same block).
 * Decompression is timed per variant (process CPU time, best of --rounds, each round a pass
 * over every block), since that is what a typed-only scan pays per block.
 *
 * Build: cc -O2 -std=gnu17 -D_GNU_SOURCE -Isrc bench/stream_bench.c build/libcoinhound_core.a \
 *           -lzstd -lsqlite3 -lyaml -lz -lm -lpthread -o /tmp/stream_bench
 *        (the link line of build/CMakeFiles/coinhound.dir/link.txt works too)
 * Usage: stream_bench [--rounds R] DB.events/*.seg
 */
#define ZSTD_STATIC_LINKING_ONLY
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zstd.h>

#include "core/buf.h"
#include "core/leb.h"
#include "store/store_int.h"

typedef struct seg_streams {
    ch_buf *typed, *orig, *cols; /* per block; cols: typed as format 4's columns */
    uint32_t nblocks, nrec;
} seg_streams;

static double cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void add_rec(ch_buf *b, const uint8_t *p, size_t n)
{
    uint8_t l[4];
    ch_le_put32(l, (uint32_t)n);
    if (ch_buf_add(b, l, 4) < 0 || ch_buf_add(b, p, n) < 0) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
}

static int load(const char *path, seg_streams *out)
{
    ch_seg *s = NULL;
    ch_error err = {0};
    if (ch__seg_open(path, &s, &err) < 0 || ch__seg_format(s) != CH_SEG_FORMAT_SPLIT) {
        fprintf(stderr, "%s: %s\n", path, err.msg[0] ? err.msg : "not format 3");
        ch__seg_close(s);
        return -1;
    }
    const ch_seg_meta *m = ch__seg_meta(s);
    out->nblocks = m->nblocks;
    out->nrec = m->nrec;
    out->typed = calloc(m->nblocks, sizeof(ch_buf));
    out->orig = calloc(m->nblocks, sizeof(ch_buf));
    out->cols = calloc(m->nblocks, sizeof(ch_buf));
    for (uint32_t k = 0; k < m->nblocks; k++) {
        ch_buf_init(&out->typed[k], (size_t)1 << 30);
        ch_buf_init(&out->orig[k], (size_t)1 << 30);
        ch_buf_init(&out->cols[k], (size_t)1 << 30);
    }
    for (uint32_t i = 0; i < m->nrec; i++) {
        const uint8_t *p;
        size_t n;
        uint32_t k = i / CH_SEG_BLOCK_RECORDS;
        if (ch__seg_typed(s, i, &p, &n, &err) < 0)
            return -1;
        add_rec(&out->typed[k], p, n);
        if (ch__seg_orig(s, i, &p, &n, &err) < 0)
            return -1;
        add_rec(&out->orig[k], p, n);
    }
    ch__seg_close(s);
    for (uint32_t k = 0; k < m->nblocks; k++) {
        uint32_t cnt =
            k + 1 < m->nblocks ? CH_SEG_BLOCK_RECORDS : m->nrec - k * CH_SEG_BLOCK_RECORDS;
        if (ch__evcols_encode((const uint8_t *)out->typed[k].data, out->typed[k].len, cnt,
                              &out->cols[k]) < 0)
            return -1;
    }
    return 0;
}

/* DICT_COLS, DICT_SAME_COLS (original records only): the block's own typed columns as a prefix,
 * after block 0's original records for the second; a reader of original records has the typed
 * frame of the same block in hand (a match prints both). */
enum { DICT_NONE, DICT_SAME, DICT_BOTH, DICT_COLS, DICT_SAME_COLS };

typedef struct result {
    size_t zbytes;
    double dcpu, ccpu;
} result;

/* Compress every block of one stream of every segment, then time decompressing them all.
 * typed: 0 the original records, 1 the typed rows, 2 the typed columns (format 4). */
static result run(seg_streams *v, size_t nseg, int typed, int dict, int level, int rounds)
{
    result r = {0, 1e9, 0};
    double c0 = cpu_s();
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    ZSTD_DCtx *dc = ZSTD_createDCtx();
    size_t cap = 0;
    for (size_t i = 0; i < nseg; i++)
        for (uint32_t k = 0; k < v[i].nblocks; k++)
            cap += ZSTD_compressBound((typed == 2 ? v[i].cols
                                       : typed    ? v[i].typed
                                                  : v[i].orig)[k]
                                          .len);
    uint8_t *z = malloc(cap + 1), *out = malloc((size_t)64 << 20);
    size_t *zl = calloc(1, sizeof(size_t) * 1000000);
    /* the dictionary bytes per segment: block 0 of the stream, or typed block 0 + orig block 0 */
    ch_buf dbuf;
    ch_buf_init(&dbuf, (size_t)1 << 30);
    size_t off = 0, nb = 0;
    for (size_t i = 0; i < nseg; i++) {
        ch_buf *st = typed == 2 ? v[i].cols : typed ? v[i].typed : v[i].orig;
        ch_buf_clear(&dbuf);
        if (dict == DICT_BOTH)
            ch_buf_add(&dbuf, v[i].orig[0].data, v[i].orig[0].len);
        ch_buf_add(&dbuf, st[0].data, st[0].len);
        ZSTD_CDict *cd = NULL;
        if (dict == DICT_SAME || dict == DICT_BOTH) {
            ZSTD_compressionParameters cp = ZSTD_getCParams(level, st[0].len, dbuf.len);
            cd = ZSTD_createCDict_advanced(dbuf.data, dbuf.len, ZSTD_dlm_byRef, ZSTD_dct_rawContent,
                                           cp, ZSTD_defaultCMem);
        }
        for (uint32_t k = 0; k < v[i].nblocks; k++) {
            size_t c;
            if (dict >= DICT_COLS) {
                ch_buf_clear(&dbuf);
                if (dict == DICT_SAME_COLS && k > 0) {
                    /* STREAM_BENCH_B0TAIL=N: only the last N bytes of block 0 */
                    const char *tl = getenv("STREAM_BENCH_B0TAIL");
                    size_t t0 = tl ? (size_t)atol(tl) : st[0].len;
                    if (t0 > st[0].len)
                        t0 = st[0].len;
                    ch_buf_add(&dbuf, st[0].data + st[0].len - t0, t0);
                }
                ch_buf_add(&dbuf, v[i].cols[k].data, v[i].cols[k].len);
                ZSTD_CCtx_reset(cc, ZSTD_reset_session_and_parameters);
                ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, level);
                /* STREAM_BENCH_PARAMS=strategy,hashLog,chainLog,searchLog,minMatch (0: the
                 * level's) for the prefix variants */
                const char *pp = getenv("STREAM_BENCH_PARAMS");
                if (pp != NULL) {
                    static const ZSTD_cParameter cpn[] = {ZSTD_c_strategy, ZSTD_c_hashLog,
                                                          ZSTD_c_chainLog, ZSTD_c_searchLog,
                                                          ZSTD_c_minMatch};
                    char *e;
                    for (int q = 0; q < 5 && *pp; q++, pp = *e ? e + 1 : e) {
                        long x = strtol(pp, &e, 10);
                        if (x)
                            ZSTD_CCtx_setParameter(cc, cpn[q], (int)x);
                    }
                }
                ZSTD_CCtx_refPrefix(cc, dbuf.data, dbuf.len);
                c = ZSTD_compress2(cc, z + off, cap - off, st[k].data, st[k].len);
            } else
                c = k > 0 && cd
                        ? ZSTD_compress_usingCDict(cc, z + off, cap - off, st[k].data, st[k].len,
                                                   cd)
                        : ZSTD_compressCCtx(cc, z + off, cap - off, st[k].data, st[k].len, level);
            if (ZSTD_isError(c)) {
                fprintf(stderr, "zstd: %s\n", ZSTD_getErrorName(c));
                exit(1);
            }
            zl[nb++] = c;
            off += c;
            r.zbytes += c;
        }
        ZSTD_freeCDict(cd);
    }
    r.ccpu = cpu_s() - c0;
    for (int round = 0; round < rounds; round++) {
        double t0 = cpu_s();
        size_t o = 0, b = 0;
        for (size_t i = 0; i < nseg; i++) {
            ch_buf *st = typed == 2 ? v[i].cols : typed ? v[i].typed : v[i].orig;
            ch_buf_clear(&dbuf);
            if (dict == DICT_BOTH)
                ch_buf_add(&dbuf, v[i].orig[0].data, v[i].orig[0].len);
            ch_buf_add(&dbuf, st[0].data, st[0].len);
            /* as the reader does: the dictionary is decompressed once (block 0) and later
             * blocks land right after it */
            ZSTD_DDict *dd = dict == DICT_SAME || dict == DICT_BOTH
                                 ? ZSTD_createDDict_advanced(dbuf.data, dbuf.len, ZSTD_dlm_byRef,
                                                             ZSTD_dct_rawContent, ZSTD_defaultCMem)
                                 : NULL;
            for (uint32_t k = 0; k < v[i].nblocks; k++) {
                if (dict >= DICT_COLS) {
                    ch_buf_clear(&dbuf);
                    if (dict == DICT_SAME_COLS && k > 0) {
                        const char *tl = getenv("STREAM_BENCH_B0TAIL");
                        size_t t0 = tl ? (size_t)atol(tl) : st[0].len;
                        if (t0 > st[0].len)
                            t0 = st[0].len;
                        ch_buf_add(&dbuf, st[0].data + st[0].len - t0, t0);
                    }
                    ch_buf_add(&dbuf, v[i].cols[k].data, v[i].cols[k].len);
                    ch_buf_reserve(&dbuf, st[k].len);
                    ZSTD_DCtx_reset(dc, ZSTD_reset_session_only);
                    ZSTD_DCtx_refPrefix(dc, dbuf.data, dbuf.len);
                    size_t d =
                        ZSTD_decompressDCtx(dc, dbuf.data + dbuf.len, st[k].len + 1, z + o, zl[b]);
                    if (ZSTD_isError(d) || d != st[k].len) {
                        fprintf(stderr, "round trip failed\n");
                        exit(1);
                    }
                    o += zl[b++];
                    continue;
                }
                size_t d =
                    k > 0 && dd
                        ? ZSTD_decompress_usingDDict(dc, out, (size_t)64 << 20, z + o, zl[b], dd)
                        : ZSTD_decompressDCtx(dc, out, (size_t)64 << 20, z + o, zl[b]);
                if (ZSTD_isError(d) || d != st[k].len) {
                    fprintf(stderr, "round trip failed\n");
                    exit(1);
                }
                o += zl[b++];
            }
            ZSTD_freeDDict(dd);
        }
        double t = cpu_s() - t0;
        if (t < r.dcpu)
            r.dcpu = t;
    }
    ch_buf_free(&dbuf);
    free(z);
    free(out);
    free(zl);
    ZSTD_freeCCtx(cc);
    ZSTD_freeDCtx(dc);
    return r;
}

int main(int argc, char **argv)
{
    int rounds = 3, a = 1;
    if (argc > 2 && strcmp(argv[1], "--rounds") == 0) {
        rounds = atoi(argv[2]);
        a = 3;
    }
    size_t nseg = 0;
    seg_streams *v = calloc((size_t)argc, sizeof *v);
    uint64_t nrec = 0, traw = 0, oraw = 0;
    for (int i = a; i < argc; i++)
        if (load(argv[i], &v[nseg]) == 0) {
            nrec += v[nseg].nrec;
            for (uint32_t k = 0; k < v[nseg].nblocks; k++) {
                traw += v[nseg].typed[k].len;
                oraw += v[nseg].orig[k].len;
            }
            nseg++;
        }
    if (nrec == 0) {
        free(v);
        return 1;
    }
    uint64_t craw = 0;
    for (size_t i = 0; i < nseg; i++)
        for (uint32_t k = 0; k < v[i].nblocks; k++)
            craw += v[i].cols[k].len;
    printf("%zu segments, %llu events; raw bytes per event: typed rows %.1f, typed columns %.1f, "
           "original %.1f\n\n",
           nseg, (unsigned long long)nrec, (double)traw / nrec, (double)craw / nrec,
           (double)oraw / nrec);
    printf("| stream | dictionary | level | bytes per event | compress ns per event | "
           "decompress ns per event |\n");
    printf("|---|---|---:|---:|---:|---:|\n");
    static const char *const dn[] = {"none", "block 0 of the stream", "block 0, typed and original",
                                     "the block's typed columns",
                                     "block 0 + the block's typed columns"};
    static const char *const tn[] = {"original", "typed rows (format 3)",
                                     "typed columns (format 4)"};
    int levels[16] = {-5, -1, 1, 2, 3, 6, 9, 12}, nlev = 8;
    const char *lv = getenv("STREAM_BENCH_LEVELS"); /* e.g. "4,5": only those levels */
    if (lv != NULL) {
        nlev = 0;
        for (char *e; *lv && nlev < 16; lv = *e ? e + 1 : e)
            levels[nlev++] = (int)strtol(lv, &e, 10);
    }
    const char *only = getenv("STREAM_BENCH_ONLY"); /* "orig": the original stream's rows */
    for (int t = 2; t >= 0; t--)
        for (int d = 0; d < (t ? 2 : 5); d++) {
            if (d == DICT_BOTH || (only && t != 0))
                continue;
            for (int l = 0; l < nlev; l++) {
                result r = run(v, nseg, t, d, levels[l], rounds);
                printf("| %s | %s | %d | %.1f | %.0f | %.0f |\n", tn[t], dn[d], levels[l],
                       (double)r.zbytes / nrec, r.ccpu * 1e9 / nrec, r.dcpu * 1e9 / nrec);
                fflush(stdout);
            }
        }
    return 0;
}
