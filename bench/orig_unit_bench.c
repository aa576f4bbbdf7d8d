/*
 * orig_unit_bench.c - what a smaller random-access unit for the original records would cost in
 * size, and save in decompression per printed match (docs/BENCHMARKS.md section 38).
 *
 * A printed lookup of a thinly spread value decompresses one original-record frame of 256
 * records per match (format 4/5: block 0's original records and the block's typed columns as
 * the frame's prefix, zstd level 6 with 2^17-entry tables). This reads sealed format 4 or 5
 * segments, rebuilds each block's original-record stream and typed columns as the writer had
 * them, and compresses the original records again in units of U records: with the same prefix
 * as the block's frame (U = 256, what the store writes; 64, 32, 16), or with a zstd dictionary
 * trained per segment on every 8th record (U = 16, 4, 1; the dictionary's bytes counted once
 * per segment). Each unit also costs a 12-byte table entry (offset, size, CRC32C). It prints,
 * per variant: the segments' bytes per event with the original records stored that way (the
 * other bytes of each file unchanged), the ratio to the files as written, and the CPU of
 * decompressing one unit (what one printed match costs), best of --rounds passes over every
 * unit.
 *
 * Build: cc -O2 -std=gnu17 -D_GNU_SOURCE -Isrc bench/orig_unit_bench.c build/libcoinhound_core.a \
 *           $(the libraries of build/CMakeFiles/coinhound.dir/link.txt) -o /tmp/orig_unit_bench
 * Usage: orig_unit_bench [--rounds R] [--flush | --dict VARIANTS] SEGMENT...
 *
 * --flush (docs/BENCHMARKS.md section 48): instead, the store's own 256-record frames ended as a
 * zstd block every F records (256: as written; 64, 32, 16), their bytes, the writer's CPU per
 * frame, and the CPU of inflating a frame block by block up to one of its records (as the
 * reader does since section 48) and to its end.
 *
 * --dict "U:MODE:LEVEL:DICT_KB:TYPED_LEVEL:TYPED_DICT_KB,..." (docs/BENCHMARKS.md section 64): the
 * candidates for a format 7 without block 0's prefix, one table row per variant. Units of U
 * records, each an original-record frame at LEVEL and a typed-column frame of the same U rows at
 * TYPED_LEVEL (with a zstd dictionary of TYPED_DICT_KB trained per segment on the typed units,
 * or none for 0). MODE says what the original unit is compressed against: 'p' a dictionary of
 * DICT_KB trained per segment on every 4th record, its bytes as raw content, followed by the
 * unit's own typed columns (one prefix); 'd' the trained dictionary alone (zstd's format); 'c'
 * the first DICT_KB of block 0's records, stored raw, and the unit's columns; 'b' block 0's
 * records and the unit's columns (format 6's prefix, the reference: block 0's own inflation not
 * counted); 'u' one frame per unit, its columns then its records, a zstd block ending after
 * the columns, with a dictionary of DICT_KB trained per segment on units (TYPED_* unused). A
 * dictionary is counted once per segment, stored raw; every unit costs 12 bytes of table (16
 * for 'u'). The CPU columns: inflating one original unit and one typed unit (what a printed
 * match pays; for 'u' the columns' part of the frame and the rest), the dictionaries' preparation
 * once per segment, the compression per event and the training per segment (the writer's).
 */
#define ZSTD_STATIC_LINKING_ONLY
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zdict.h>
#include <zstd.h>

#include "core/buf.h"
#include "core/leb.h"
#include "ingest/crc32c.h"
#include "store/store_int.h"

typedef struct seg_data {
    ch_buf *orig, *cols; /* per block: [u32 length][original part]..., the typed columns */
    ch_buf *typed;       /* per block: [u32 length][typed row]... (--dict) */
    size_t **rec_off;    /* per block: offset of each record in orig (cnt + 1 entries) */
    size_t **trec_off;   /* per block: offset of each record in typed (cnt + 1 entries) */
    uint32_t *cnt;
    uint32_t nblocks, nrec;
    uint64_t file_bytes, orig_z; /* the file, and its original-record frames */
    uint64_t typed_z;            /* its typed frames */
} seg_data;

static double cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void add(ch_buf *b, const void *p, size_t n)
{
    if (ch_buf_add(b, p, n) < 0) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
}

static int load(const char *path, seg_data *out)
{
    ch_seg *s = NULL;
    ch_error err = {0};
    if (ch__seg_open(path, &s, &err) < 0 || ch__seg_version(s) < CH_SEG_FORMAT_COLS) {
        fprintf(stderr, "%s: %s\n", path, err.msg[0] ? err.msg : "not format 4 or 5");
        ch__seg_close(s);
        return -1;
    }
    const ch_seg_meta *m = ch__seg_meta(s);
    out->nblocks = m->nblocks;
    out->nrec = m->nrec;
    out->file_bytes = m->file_bytes;
    out->orig = calloc(m->nblocks, sizeof(ch_buf));
    out->cols = calloc(m->nblocks, sizeof(ch_buf));
    out->rec_off = calloc(m->nblocks, sizeof(size_t *));
    out->trec_off = calloc(m->nblocks, sizeof(size_t *));
    out->typed = calloc(m->nblocks, sizeof(ch_buf));
    out->cnt = calloc(m->nblocks, sizeof(uint32_t));
    for (uint32_t k = 0; k < m->nblocks; k++) {
        ch_buf_init(&out->typed[k], (size_t)1 << 30);
        ch_buf typed = out->typed[k];
        ch_buf_init(&out->orig[k], (size_t)1 << 30);
        ch_buf_init(&out->cols[k], (size_t)1 << 30);
        uint32_t first = k * CH_SEG_BLOCK_RECORDS;
        uint32_t cnt =
            m->nrec - first < CH_SEG_BLOCK_RECORDS ? m->nrec - first : CH_SEG_BLOCK_RECORDS;
        out->cnt[k] = cnt;
        out->rec_off[k] = calloc(cnt + 1, sizeof(size_t));
        out->trec_off[k] = calloc(cnt + 1, sizeof(size_t));
        for (uint32_t i = 0; i < cnt; i++) {
            const uint8_t *p;
            size_t n;
            uint8_t l[4];
            if (ch__seg_typed(s, first + i, &p, &n, &err) < 0)
                return -1;
            out->trec_off[k][i] = typed.len;
            ch_le_put32(l, (uint32_t)n);
            add(&typed, l, 4);
            add(&typed, p, n);
            if (ch__seg_orig(s, first + i, &p, &n, &err) < 0)
                return -1;
            out->rec_off[k][i] = out->orig[k].len;
            ch_le_put32(l, (uint32_t)n);
            add(&out->orig[k], l, 4);
            add(&out->orig[k], p, n);
        }
        out->rec_off[k][cnt] = out->orig[k].len;
        out->trec_off[k][cnt] = typed.len;
        out->typed[k] = typed;
        if (ch__evcols_encode((const uint8_t *)typed.data, typed.len, cnt, &out->cols[k]) < 0)
            return -1;
    }
    ch__seg_close(s);
    /* the original-record frames as written: the block table's sizes */
    FILE *f = fopen(path, "rb");
    uint8_t h[CH_SEG_HEADER];
    if (f == NULL || fread(h, 1, sizeof h, f) != sizeof h)
        return -1;
    uint8_t *bt = malloc((size_t)out->nblocks * 48);
    if (fseek(f, (long)ch_le_get64(h + 64), SEEK_SET) != 0 ||
        fread(bt, 48, out->nblocks, f) != out->nblocks)
        return -1;
    fclose(f);
    for (uint32_t k = 0; k < out->nblocks; k++) {
        out->orig_z += ch_le_get32(bt + (size_t)k * 48 + 28);
        out->typed_z += ch_le_get32(bt + (size_t)k * 48 + 8);
    }
    free(bt);
    return 0;
}

typedef struct result {
    uint64_t zbytes, units;
    double unit_us;
} result;

/* Compress every segment's original records in units of u records; trained: with a dictionary
 * trained per segment instead of the block's prefix. */
static result run(seg_data *v, size_t nseg, uint32_t u, int trained, int rounds)
{
    result r = {0, 0, 1e9};
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    ZSTD_DCtx *dc = ZSTD_createDCtx();
    ch_buf pfx, z;
    ch_buf_init(&pfx, (size_t)1 << 30);
    ch_buf_init(&z, (size_t)1 << 31);
    uint8_t *out = malloc((size_t)64 << 20);
    /* per unit: segment, block, first record, its frame's offset and size in z */
    size_t cap = 1 << 20, nu = 0;
    size_t(*unit)[5] = malloc(cap * sizeof *unit);
    void **dicts = calloc(nseg, sizeof(void *));
    size_t *dlen = calloc(nseg, sizeof(size_t));
    for (size_t i = 0; i < nseg; i++) {
        seg_data *g = &v[i];
        if (trained) {
            /* samples: every 8th record of the segment (as [u32 length][record], as the units
             * hold them): training on all 28,000 took minutes per segment */
            size_t ns = 0;
            for (uint32_t k = 0; k < g->nblocks; k++)
                ns += g->cnt[k];
            size_t *sz = malloc(ns * sizeof *sz), j = 0;
            ch_buf all;
            ch_buf_init(&all, (size_t)1 << 31);
            for (uint32_t k = 0; k < g->nblocks; k++)
                for (uint32_t q = 0; q < g->cnt[k]; q += 8) {
                    sz[j++] = g->rec_off[k][q + 1] - g->rec_off[k][q];
                    add(&all, g->orig[k].data + g->rec_off[k][q], sz[j - 1]);
                }
            ns = j;
            dlen[i] = 112640;
            dicts[i] = malloc(dlen[i]);
            size_t d = ZDICT_trainFromBuffer(dicts[i], dlen[i], all.data, sz, (unsigned)ns);
            if (ZDICT_isError(d)) {
                fprintf(stderr, "zdict: %s\n", ZDICT_getErrorName(d));
                exit(1);
            }
            dlen[i] = d;
            r.zbytes += d;
            free(sz);
            ch_buf_free(&all);
        }
        for (uint32_t k = 0; k < g->nblocks; k++) {
            ch_buf_clear(&pfx);
            if (k > 0)
                add(&pfx, g->orig[0].data, g->orig[0].len);
            add(&pfx, g->cols[k].data, g->cols[k].len);
            for (uint32_t q = 0; q < g->cnt[k]; q += u) {
                uint32_t e = q + u < g->cnt[k] ? q + u : g->cnt[k];
                const char *src = g->orig[k].data + g->rec_off[k][q];
                size_t n = g->rec_off[k][e] - g->rec_off[k][q];
                if (ch_buf_reserve(&z, ZSTD_compressBound(n)) < 0)
                    exit(1);
                ZSTD_CCtx_reset(cc, ZSTD_reset_session_and_parameters);
                ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, 6);
                ZSTD_CCtx_setParameter(cc, ZSTD_c_hashLog, 17);
                ZSTD_CCtx_setParameter(cc, ZSTD_c_chainLog, 17);
                if (trained)
                    ZSTD_CCtx_loadDictionary(cc, dicts[i], dlen[i]);
                else
                    ZSTD_CCtx_refPrefix(cc, pfx.data, pfx.len);
                size_t c = ZSTD_compress2(cc, z.data + z.len, ZSTD_compressBound(n), src, n);
                if (ZSTD_isError(c)) {
                    fprintf(stderr, "zstd: %s\n", ZSTD_getErrorName(c));
                    exit(1);
                }
                if (nu == cap) {
                    cap *= 2;
                    size_t(*nu2)[5] = realloc(unit, cap * sizeof *unit);
                    if (nu2 == NULL) {
                        fprintf(stderr, "out of memory\n");
                        exit(1);
                    }
                    unit = nu2;
                }
                size_t ue[5] = {i, k, q, z.len, c};
                memcpy(unit[nu++], ue, sizeof ue);
                z.len += c;
                r.zbytes += c + 12;
            }
        }
    }
    r.units = nu;
    /* Decompress every unit (as a printed match would its unit), best of rounds. */
    ZSTD_DDict **dd = calloc(nseg, sizeof *dd);
    for (size_t i = 0; trained && i < nseg; i++)
        dd[i] = ZSTD_createDDict(dicts[i], dlen[i]);
    for (int round = 0; round < rounds; round++) {
        double t0 = cpu_s();
        size_t lastblk = (size_t)-1, lastseg = (size_t)-1;
        for (size_t x = 0; x < nu; x++) {
            seg_data *g = &v[unit[x][0]];
            uint32_t k = (uint32_t)unit[x][1], q = (uint32_t)unit[x][2];
            uint32_t e = q + u < g->cnt[k] ? q + u : g->cnt[k];
            size_t n = g->rec_off[k][e] - g->rec_off[k][q], d;
            if (trained) {
                d = ZSTD_decompress_usingDDict(dc, out, n, z.data + unit[x][3], unit[x][4],
                                               dd[unit[x][0]]);
            } else {
                /* the prefix as the reader has it: block 0's records and the block's columns
                 * (rebuilt only when the block changes, as a lookup's reader keeps them) */
                if (lastblk != k || lastseg != unit[x][0]) {
                    ch_buf_clear(&pfx);
                    if (k > 0)
                        add(&pfx, g->orig[0].data, g->orig[0].len);
                    add(&pfx, g->cols[k].data, g->cols[k].len);
                    lastblk = k;
                    lastseg = unit[x][0];
                }
                ZSTD_DCtx_refPrefix(dc, pfx.data, pfx.len);
                d = ZSTD_decompressDCtx(dc, out, n, z.data + unit[x][3], unit[x][4]);
            }
            if (ZSTD_isError(d) || d != n) {
                fprintf(stderr, "unit %zu does not decompress\n", x);
                exit(1);
            }
        }
        double us = (cpu_s() - t0) * 1e6 / (double)nu;
        if (us < r.unit_us)
            r.unit_us = us;
    }
    for (size_t i = 0; i < nseg; i++) {
        free(dicts[i]);
        ZSTD_freeDDict(dd[i]);
    }
    free(dd);
    free(dicts);
    free(dlen);
    free(unit);
    free(out);
    ch_buf_free(&pfx);
    ch_buf_free(&z);
    ZSTD_freeCCtx(cc);
    ZSTD_freeDCtx(dc);
    return r;
}

/* The store's 256-record frames, with the block's prefix, but ended as a zstd block every f
 * records (ZSTD_e_flush: the window is kept, so the records before a flush stay reachable):
 * a reader that inflates block by block (segment.c, orig_upto) then stops nearer the record it
 * prints. Returns the bytes; *c_us the compression CPU per frame, *rec_us the CPU of inflating
 * a frame up to one record of it (record q = a fixed spread over the block), *all_us to its end;
 * best of rounds. */
static result run_flush(seg_data *v, size_t nseg, uint32_t f, int rounds, double *c_us,
                        double *rec_us, double *all_us)
{
    result r = {0, 0, 1e9};
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    ZSTD_DCtx *dc = ZSTD_createDCtx();
    ch_buf pfx, z;
    ch_buf_init(&pfx, (size_t)1 << 30);
    ch_buf_init(&z, (size_t)1 << 31);
    uint8_t *out = malloc((size_t)64 << 20);
    size_t cap = 1 << 16, nf = 0;
    size_t(*fr)[4] = malloc(cap * sizeof *fr); /* segment, block, offset in z, size */
    *c_us = *rec_us = *all_us = 1e9;
    for (int round = 0; round < rounds; round++) {
        double t0 = cpu_s();
        z.len = 0;
        nf = 0;
        for (size_t i = 0; i < nseg; i++) {
            seg_data *g = &v[i];
            for (uint32_t k = 0; k < g->nblocks; k++) {
                ch_buf_clear(&pfx);
                if (k > 0)
                    add(&pfx, g->orig[0].data, g->orig[0].len);
                add(&pfx, g->cols[k].data, g->cols[k].len);
                size_t n = g->orig[k].len;
                if (ch_buf_reserve(&z, ZSTD_compressBound(n) + 4096) < 0)
                    exit(1);
                ZSTD_CCtx_reset(cc, ZSTD_reset_session_and_parameters);
                ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, 6);
                ZSTD_CCtx_setParameter(cc, ZSTD_c_hashLog, 17);
                ZSTD_CCtx_setParameter(cc, ZSTD_c_chainLog, 17);
                ZSTD_CCtx_setPledgedSrcSize(cc, n);
                ZSTD_CCtx_refPrefix(cc, pfx.data, pfx.len);
                ZSTD_outBuffer ob = {z.data + z.len, ZSTD_compressBound(n) + 4096, 0};
                for (uint32_t q = 0; q < g->cnt[k]; q += f) {
                    uint32_t e = q + f < g->cnt[k] ? q + f : g->cnt[k];
                    ZSTD_inBuffer ib = {g->orig[k].data + g->rec_off[k][q],
                                        g->rec_off[k][e] - g->rec_off[k][q], 0};
                    ZSTD_EndDirective m = e == g->cnt[k] ? ZSTD_e_end : ZSTD_e_flush;
                    size_t left;
                    do {
                        left = ZSTD_compressStream2(cc, &ob, &ib, m);
                        if (ZSTD_isError(left)) {
                            fprintf(stderr, "zstd: %s\n", ZSTD_getErrorName(left));
                            exit(1);
                        }
                    } while (left != 0 || ib.pos < ib.size);
                }
                if (nf == cap) {
                    fprintf(stderr, "too many blocks\n");
                    exit(1);
                }
                size_t fe[4] = {i, k, z.len, ob.pos};
                memcpy(fr[nf++], fe, sizeof fe);
                z.len += ob.pos;
            }
        }
        double us = (cpu_s() - t0) * 1e6 / (double)nf;
        if (us < *c_us)
            *c_us = us;
    }
    r.units = nf;
    for (size_t x = 0; x < nf; x++)
        r.zbytes += fr[x][3];
    for (int whole = 0; whole < 2; whole++)
        for (int round = 0; round < rounds; round++) {
            double spent = 0;
            for (size_t x = 0; x < nf; x++) {
                seg_data *g = &v[fr[x][0]];
                uint32_t k = (uint32_t)fr[x][1], cnt = g->cnt[k];
                uint32_t q = whole ? cnt - 1 : (uint32_t)((x * 97 + 13) % cnt);
                ch_buf_clear(&pfx);
                if (k > 0)
                    add(&pfx, g->orig[0].data, g->orig[0].len);
                add(&pfx, g->cols[k].data, g->cols[k].len);
                double t1 = cpu_s();
                ZSTD_DDict *dd = ZSTD_createDDict_advanced(pfx.data, pfx.len, ZSTD_dlm_byRef,
                                                           ZSTD_dct_rawContent, ZSTD_defaultCMem);
                ZSTD_decompressBegin_usingDDict(dc, dd);
                size_t have = 0, zpos = 0, need;
                const uint8_t *src = (const uint8_t *)z.data + fr[x][2];
                while (have < g->rec_off[k][q + 1] && (need = ZSTD_nextSrcSizeToDecompress(dc))) {
                    size_t d = ZSTD_decompressContinue(dc, out + have, ((size_t)64 << 20) - have,
                                                       src + zpos, need);
                    if (ZSTD_isError(d)) {
                        fprintf(stderr, "frame %zu does not decompress\n", x);
                        exit(1);
                    }
                    zpos += need;
                    have += d;
                }
                ZSTD_freeDDict(dd);
                spent += cpu_s() - t1;
                if (have < g->rec_off[k][q + 1] ||
                    memcmp(out, g->orig[k].data, g->rec_off[k][q + 1]) != 0) {
                    fprintf(stderr, "frame %zu differs\n", x);
                    exit(1);
                }
            }
            double us = spent * 1e6 / (double)nf;
            double *dst = whole ? all_us : rec_us;
            if (us < *dst)
                *dst = us;
        }
    free(fr);
    free(out);
    ch_buf_free(&pfx);
    ch_buf_free(&z);
    ZSTD_freeCCtx(cc);
    ZSTD_freeDCtx(dc);
    return r;
}

/* ---- --dict (docs/BENCHMARKS.md section 64): the candidates for a format 7 ---- */

/* The typed columns of records [q, e) of block k, as the writer would encode a unit of them. */
static void unit_cols(const seg_data *g, uint32_t k, uint32_t q, uint32_t e, ch_buf *out)
{
    ch_buf_clear(out);
    const size_t *o = g->trec_off[k];
    if (ch__evcols_encode((const uint8_t *)g->typed[k].data + o[q], o[e] - o[q], e - q, out) < 0) {
        fprintf(stderr, "evcols\n");
        exit(1);
    }
}

/* A zstd dictionary of at most cap bytes trained on samples (ZDICT's default trainer). */
static size_t train(const ch_buf *all, const size_t *sz, size_t ns, size_t cap, void **dict,
                    double *us)
{
    *dict = malloc(cap);
    double t0 = cpu_s();
    size_t d = ZDICT_trainFromBuffer(*dict, cap, all->data, sz, (unsigned)ns);
    *us += (cpu_s() - t0) * 1e6;
    if (ZDICT_isError(d)) {
        fprintf(stderr, "zdict: %s\n", ZDICT_getErrorName(d));
        exit(1);
    }
    return d;
}

static size_t zcompress(ZSTD_CCtx *cc, int level, ch_buf *z, const void *src, size_t n,
                        const void *dict, size_t dlen, bool raw_prefix)
{
    if (ch_buf_reserve(z, ZSTD_compressBound(n)) < 0)
        exit(1);
    ZSTD_CCtx_reset(cc, ZSTD_reset_session_and_parameters);
    ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 1);
    if (dict != NULL && raw_prefix)
        ZSTD_CCtx_refPrefix(cc, dict, dlen);
    else if (dict != NULL)
        ZSTD_CCtx_loadDictionary(cc, dict, dlen);
    size_t c = ZSTD_compress2(cc, z->data + z->len, ZSTD_compressBound(n), src, n);
    if (ZSTD_isError(c)) {
        fprintf(stderr, "zstd: %s\n", ZSTD_getErrorName(c));
        exit(1);
    }
    return c;
}

/* Modes of the original-record units: 'd' a trained dictionary (zstd's format, entropy tables
 * and content); 'p' the trained dictionary's bytes as raw content followed by the unit's own
 * typed columns, as one prefix; 'b' block 0's original records and the unit's typed columns
 * (format 6's prefix for units of U records: the reference); 'c' the first S bytes of block 0's
 * original records, stored raw, and the unit's typed columns. */
static void run_dict(seg_data *v, size_t nseg, int rounds, uint32_t u, int level, size_t dsize,
                     char mode, uint64_t ev, uint64_t file, uint64_t oz, int tlevel, size_t tdsize)
{
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    ZSTD_DCtx *dc = ZSTD_createDCtx();
    ch_buf z, cols, pfx, tz;
    ch_buf_init(&z, (size_t)1 << 31);
    ch_buf_init(&tz, (size_t)1 << 31);
    ch_buf_init(&cols, (size_t)1 << 30);
    ch_buf_init(&pfx, (size_t)1 << 30);
    uint8_t *out = malloc((size_t)64 << 20);
    size_t cap = 1 << 20, nu = 0;
    /* per unit: segment, block, first record, frame offset in z, size, typed offset in tz,
     * size */
    size_t(*unit)[7] = malloc(cap * sizeof *unit);
    void **dicts = calloc(nseg, sizeof(void *)), **tdicts = calloc(nseg, sizeof(void *));
    size_t *dlen = calloc(nseg, sizeof(size_t)), *tdlen = calloc(nseg, sizeof(size_t));
    uint64_t obytes = 0, tbytes = 0, dbytes = 0, tdbytes = 0;
    double train_us = 0, c_us = 0, tc_us = 0;
    for (size_t i = 0; i < nseg; i++) {
        seg_data *g = &v[i];
        if (mode == 'd' || mode == 'p') {
            /* samples: every 4th record of the segment, as [u32 length][record] */
            size_t ns = 0, j = 0;
            for (uint32_t k = 0; k < g->nblocks; k++)
                ns += g->cnt[k] / 4 + 1;
            size_t *sz = malloc(ns * sizeof *sz);
            ch_buf all;
            ch_buf_init(&all, (size_t)1 << 31);
            for (uint32_t k = 0; k < g->nblocks; k++)
                for (uint32_t q = 0; q < g->cnt[k]; q += 4) {
                    sz[j++] = g->rec_off[k][q + 1] - g->rec_off[k][q];
                    add(&all, g->orig[k].data + g->rec_off[k][q], sz[j - 1]);
                }
            dlen[i] = train(&all, sz, j, dsize, &dicts[i], &train_us);
            free(sz);
            ch_buf_free(&all);
        } else if (mode == 'c') {
            dlen[i] = dsize < g->orig[0].len ? dsize : g->orig[0].len;
            dicts[i] = malloc(dlen[i]);
            memcpy(dicts[i], g->orig[0].data, dlen[i]);
        }
        dbytes += dlen[i];
        /* the typed units' dictionary: trained on every typed unit of the segment */
        if (tdsize) {
            size_t ns = 0, j = 0;
            for (uint32_t k = 0; k < g->nblocks; k++)
                ns += (g->cnt[k] + u - 1) / u;
            size_t *sz = malloc(ns * sizeof *sz);
            ch_buf all;
            ch_buf_init(&all, (size_t)1 << 31);
            for (uint32_t k = 0; k < g->nblocks; k++)
                for (uint32_t q = 0; q < g->cnt[k]; q += u) {
                    uint32_t e = q + u < g->cnt[k] ? q + u : g->cnt[k];
                    unit_cols(g, k, q, e, &cols);
                    sz[j++] = cols.len;
                    add(&all, cols.data, cols.len);
                }
            tdlen[i] = train(&all, sz, j, tdsize, &tdicts[i], &train_us);
            tdbytes += tdlen[i];
            free(sz);
            ch_buf_free(&all);
        }
        for (uint32_t k = 0; k < g->nblocks; k++)
            for (uint32_t q = 0; q < g->cnt[k]; q += u) {
                uint32_t e = q + u < g->cnt[k] ? q + u : g->cnt[k];
                unit_cols(g, k, q, e, &cols);
                double t0 = cpu_s();
                size_t tc =
                    zcompress(cc, tlevel, &tz, cols.data, cols.len, tdicts[i], tdlen[i], false);
                tc_us += (cpu_s() - t0) * 1e6;
                ch_buf_clear(&pfx);
                if (mode == 'b' && k > 0)
                    add(&pfx, g->orig[0].data, g->orig[0].len);
                if (mode == 'p' || mode == 'c')
                    add(&pfx, dicts[i], dlen[i]);
                if (mode != 'd')
                    add(&pfx, cols.data, cols.len);
                const char *src = g->orig[k].data + g->rec_off[k][q];
                size_t n = g->rec_off[k][e] - g->rec_off[k][q];
                t0 = cpu_s();
                size_t c = mode == 'd' ? zcompress(cc, level, &z, src, n, dicts[i], dlen[i], false)
                                       : zcompress(cc, level, &z, src, n, pfx.data, pfx.len, true);
                c_us += (cpu_s() - t0) * 1e6;
                if (nu == cap) {
                    cap *= 2;
                    size_t(*nu2)[7] = realloc(unit, cap * sizeof *unit);
                    if (nu2 == NULL) {
                        fprintf(stderr, "out of memory\n");
                        exit(1);
                    }
                    unit = nu2;
                }
                size_t ue[7] = {i, k, q, z.len, c, tz.len, tc};
                memcpy(unit[nu++], ue, sizeof ue);
                z.len += c;
                tz.len += tc;
                obytes += c + 12;
                tbytes += tc + 12;
            }
    }
    /* Inflate every unit as a printed match would: its typed unit (into the prefix buffer,
     * after the dictionary's bytes, where the original unit's prefix wants it), then its
     * original unit; per segment once, the dictionaries' preparation. Best of rounds. */
    double best_t = 1e9, best_o = 1e9, best_seg = 1e9;
    for (int round = 0; round < rounds; round++) {
        double spent_t = 0, spent_o = 0, spent_seg = 0;
        size_t cur = (size_t)-1;
        ZSTD_DDict *dd = NULL, *tdd = NULL;
        for (size_t x = 0; x < nu; x++) {
            size_t i = unit[x][0];
            seg_data *g = &v[i];
            uint32_t k = (uint32_t)unit[x][1], q = (uint32_t)unit[x][2];
            uint32_t e = q + u < g->cnt[k] ? q + u : g->cnt[k];
            if (i != cur) {
                double t0 = cpu_s();
                ZSTD_freeDDict(dd);
                ZSTD_freeDDict(tdd);
                dd = mode == 'd' ? ZSTD_createDDict(dicts[i], dlen[i]) : NULL;
                tdd = tdlen[i] ? ZSTD_createDDict(tdicts[i], tdlen[i]) : NULL;
                ch_buf_clear(&pfx);
                if (mode == 'p' || mode == 'c')
                    add(&pfx, dicts[i], dlen[i]);
                spent_seg += cpu_s() - t0;
                cur = i;
            }
            size_t base = mode == 'p' || mode == 'c' ? dlen[i] : 0;
            if (mode == 'b') {
                /* block 0's records stand before the columns (their inflation once per
                 * segment not counted: what format 6 pays, section 48) */
                ch_buf_clear(&pfx);
                if (k > 0)
                    add(&pfx, g->orig[0].data, g->orig[0].len);
                base = pfx.len;
            }
            if (ch_buf_reserve(&pfx, base + 4 * 65536) < 0)
                exit(1);
            double t0 = cpu_s();
            size_t tn = tdd ? ZSTD_decompress_usingDDict(dc, pfx.data + base, 4 * 65536,
                                                         tz.data + unit[x][5], unit[x][6], tdd)
                            : ZSTD_decompressDCtx(dc, pfx.data + base, 4 * 65536,
                                                  tz.data + unit[x][5], unit[x][6]);
            double t1 = cpu_s();
            if (ZSTD_isError(tn)) {
                fprintf(stderr, "typed unit %zu does not decompress\n", x);
                exit(1);
            }
            size_t n = g->rec_off[k][e] - g->rec_off[k][q], d;
            if (mode == 'd') {
                d = ZSTD_decompress_usingDDict(dc, out, n, z.data + unit[x][3], unit[x][4], dd);
            } else {
                ZSTD_DCtx_refPrefix(dc, pfx.data, base + tn);
                d = ZSTD_decompressDCtx(dc, out, n, z.data + unit[x][3], unit[x][4]);
            }
            double t2 = cpu_s();
            if (ZSTD_isError(d) || d != n ||
                memcmp(out, g->orig[k].data + g->rec_off[k][q], n) != 0) {
                fprintf(stderr, "unit %zu does not decompress\n", x);
                exit(1);
            }
            spent_t += t1 - t0;
            spent_o += t2 - t1;
        }
        ZSTD_freeDDict(dd);
        ZSTD_freeDDict(tdd);
        if (spent_t < best_t)
            best_t = spent_t;
        if (spent_o < best_o)
            best_o = spent_o;
        if (spent_seg < best_seg)
            best_seg = spent_seg;
    }
    uint64_t tz0 = 0;
    for (size_t i = 0; i < nseg; i++)
        tz0 += v[i].typed_z;
    double seg_b = (double)(file - oz - tz0 + obytes + dbytes + tbytes + tdbytes) / (double)ev;
    printf("| %u | %c | %d | %zu | %.1f | %.1f | %d/%zu | %.1f | %.1f | %.3f | %.1f | %.1f | %.1f "
           "| %.1f | %.1f | %.0f |\n",
           u, mode, level, dsize >> 10, (double)(obytes + dbytes) / (double)ev,
           (double)dbytes / (double)ev, tlevel, tdsize >> 10,
           (double)(tbytes + tdbytes) / (double)ev, seg_b, seg_b / ((double)file / (double)ev),
           best_o * 1e6 / (double)nu, best_t * 1e6 / (double)nu, best_seg * 1e6 / (double)nseg,
           c_us / (double)ev, tc_us / (double)ev, train_us / 1e3 / (double)nseg);
    for (size_t i = 0; i < nseg; i++) {
        free(dicts[i]);
        free(tdicts[i]);
    }
    free(dicts);
    free(tdicts);
    free(dlen);
    free(tdlen);
    free(unit);
    free(out);
    ch_buf_free(&z);
    ch_buf_free(&tz);
    ch_buf_free(&cols);
    ch_buf_free(&pfx);
    ZSTD_freeCCtx(cc);
    ZSTD_freeDCtx(dc);
}

/* What reading a segment's dictionaries (n bytes, stored raw) would cost a reader: pread of n
 * bytes after the header of each file (from the page cache, as a warm lookup has it) and their
 * CRC32C, as the reader checks every frame. Best of rounds, per segment. */
static double dict_read_us(char **paths, size_t nseg, size_t n, int rounds)
{
    uint8_t *buf = malloc(n);
    double best = 1e9;
    uint32_t sink = 0;
    for (int round = 0; round <= rounds; round++) { /* round 0 warms the cache, untimed */
        double spent = 0;
        for (size_t i = 0; i < nseg; i++) {
            int fd = open(paths[i], O_RDONLY | O_CLOEXEC);
            if (fd < 0) {
                fprintf(stderr, "%s: cannot open\n", paths[i]);
                exit(1);
            }
            double t0 = cpu_s();
            ssize_t r = pread(fd, buf, n, CH_SEG_HEADER);
            sink ^= ch_crc32c(0, buf, r > 0 ? (size_t)r : 0);
            spent += cpu_s() - t0;
            close(fd);
        }
        if (round > 0 && spent < best)
            best = spent;
    }
    free(buf);
    return sink == 1 ? best : best * 1e6 / (double)nseg; /* sink keeps the CRC computed */
}

/* Mode 'u': one frame per unit of U records, the unit's typed columns and then its original
 * records, ended as a zstd block after the columns (ZSTD_e_flush), compressed with a dictionary
 * trained per segment on such units (prepared once per segment, as a CDict the units attach
 * to). A reader of normalized fields inflates the frame only up to the end of the columns; a
 * printed match inflates it whole; the original records find the columns' strings in the same
 * window, as format 4's prefix gave them. */
static void run_unified(seg_data *v, size_t nseg, int rounds, uint32_t u, int level, size_t dsize,
                        uint64_t ev, uint64_t file, uint64_t oz)
{
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    ZSTD_DCtx *dc = ZSTD_createDCtx();
    ch_buf z, cols, all;
    ch_buf_init(&z, (size_t)1 << 31);
    ch_buf_init(&cols, (size_t)1 << 30);
    ch_buf_init(&all, (size_t)1 << 31);
    uint8_t *out = malloc((size_t)64 << 20);
    size_t cap = 1 << 20, nu = 0;
    size_t(*unit)[6] = malloc(cap * sizeof *unit); /* segment, block, first, offset, size, cols */
    void **dicts = calloc(nseg, sizeof(void *));
    size_t *dlen = calloc(nseg, sizeof(size_t));
    uint64_t bytes = 0, dbytes = 0;
    double train_us = 0, c_us = 0;
    for (size_t i = 0; i < nseg; i++) {
        seg_data *g = &v[i];
        /* samples: every other unit's columns, and every 4th record */
        size_t ns = 0, j = 0;
        for (uint32_t k = 0; k < g->nblocks; k++)
            ns += g->cnt[k] / 4 + g->cnt[k] / u + 2;
        size_t *sz = malloc(ns * sizeof *sz);
        ch_buf_clear(&all);
        for (uint32_t k = 0; k < g->nblocks; k++)
            for (uint32_t q = 0; q < g->cnt[k]; q += u) {
                uint32_t e = q + u < g->cnt[k] ? q + u : g->cnt[k];
                if ((q / u) % 2 == 0) {
                    unit_cols(g, k, q, e, &cols);
                    sz[j++] = cols.len;
                    add(&all, cols.data, cols.len);
                }
                for (uint32_t r = q; r < e; r += 4) {
                    sz[j++] = g->rec_off[k][r + 1] - g->rec_off[k][r];
                    add(&all, g->orig[k].data + g->rec_off[k][r], sz[j - 1]);
                }
            }
        dlen[i] = train(&all, sz, j, dsize, &dicts[i], &train_us);
        dbytes += dlen[i];
        free(sz);
        double t0 = cpu_s();
        ZSTD_CCtx_params *cp = ZSTD_createCCtxParams();
        ZSTD_CCtxParams_init(cp, level);
        ZSTD_CDict *cd = ZSTD_createCDict(dicts[i], dlen[i], level);
        for (uint32_t k = 0; k < g->nblocks; k++)
            for (uint32_t q = 0; q < g->cnt[k]; q += u) {
                uint32_t e = q + u < g->cnt[k] ? q + u : g->cnt[k];
                unit_cols(g, k, q, e, &cols);
                size_t n = g->rec_off[k][e] - g->rec_off[k][q];
                size_t bound = ZSTD_compressBound(n + cols.len) + 4096;
                if (ch_buf_reserve(&z, bound) < 0)
                    exit(1);
                ZSTD_CCtx_reset(cc, ZSTD_reset_session_and_parameters);
                ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, level);
                ZSTD_CCtx_setParameter(cc, ZSTD_c_forceAttachDict, ZSTD_dictForceAttach);
                ZSTD_CCtx_setPledgedSrcSize(cc, n + cols.len);
                ZSTD_CCtx_refCDict(cc, cd);
                ZSTD_outBuffer ob = {z.data + z.len, bound, 0};
                ZSTD_inBuffer ib = {cols.data, cols.len, 0};
                size_t left;
                do
                    left = ZSTD_compressStream2(cc, &ob, &ib, ZSTD_e_flush);
                while (!ZSTD_isError(left) && left != 0);
                ZSTD_inBuffer ib2 = {g->orig[k].data + g->rec_off[k][q], n, 0};
                do
                    left =
                        ZSTD_isError(left) ? left : ZSTD_compressStream2(cc, &ob, &ib2, ZSTD_e_end);
                while (!ZSTD_isError(left) && left != 0);
                if (ZSTD_isError(left)) {
                    fprintf(stderr, "zstd: %s\n", ZSTD_getErrorName(left));
                    exit(1);
                }
                if (nu == cap) {
                    cap *= 2;
                    size_t(*nu2)[6] = realloc(unit, cap * sizeof *unit);
                    if (nu2 == NULL) {
                        fprintf(stderr, "out of memory\n");
                        exit(1);
                    }
                    unit = nu2;
                }
                size_t ue[6] = {i, k, q, z.len, ob.pos, cols.len};
                memcpy(unit[nu++], ue, sizeof ue);
                z.len += ob.pos;
                bytes += ob.pos + 16; /* offset, size, CRC32C, the columns' length */
            }
        ZSTD_freeCDict(cd);
        ZSTD_freeCCtxParams(cp);
        c_us += (cpu_s() - t0) * 1e6;
    }
    double best_t = 1e9, best_o = 1e9, best_seg = 1e9;
    for (int round = 0; round < rounds; round++) {
        double spent_t = 0, spent_o = 0, spent_seg = 0;
        size_t cur = (size_t)-1;
        ZSTD_DDict *dd = NULL;
        for (size_t x = 0; x < nu; x++) {
            size_t i = unit[x][0];
            seg_data *g = &v[i];
            uint32_t k = (uint32_t)unit[x][1], q = (uint32_t)unit[x][2];
            uint32_t e = q + u < g->cnt[k] ? q + u : g->cnt[k];
            if (i != cur) {
                double t0 = cpu_s();
                ZSTD_freeDDict(dd);
                dd = ZSTD_createDDict_advanced(dicts[i], dlen[i], ZSTD_dlm_byRef, ZSTD_dct_auto,
                                               ZSTD_defaultCMem);
                spent_seg += cpu_s() - t0;
                cur = i;
            }
            size_t n = g->rec_off[k][e] - g->rec_off[k][q], cl = unit[x][5];
            const uint8_t *src = (const uint8_t *)z.data + unit[x][3];
            double t0 = cpu_s(), t1 = 0;
            ZSTD_decompressBegin_usingDDict(dc, dd);
            size_t have = 0, zpos = 0, need;
            while ((need = ZSTD_nextSrcSizeToDecompress(dc)) != 0) {
                size_t d = ZSTD_decompressContinue(dc, out + have, ((size_t)64 << 20) - have,
                                                   src + zpos, need);
                if (ZSTD_isError(d)) {
                    fprintf(stderr, "unit %zu does not decompress\n", x);
                    exit(1);
                }
                zpos += need;
                have += d;
                if (t1 == 0 && have >= cl)
                    t1 = cpu_s(); /* the columns are out: a typed-only read stops here */
            }
            double t2 = cpu_s();
            if (have != cl + n || memcmp(out + cl, g->orig[k].data + g->rec_off[k][q], n) != 0) {
                fprintf(stderr, "unit %zu differs\n", x);
                exit(1);
            }
            spent_t += t1 - t0;
            spent_o += t2 - t1;
        }
        ZSTD_freeDDict(dd);
        if (spent_t < best_t)
            best_t = spent_t;
        if (spent_o < best_o)
            best_o = spent_o;
        if (spent_seg < best_seg)
            best_seg = spent_seg;
    }
    uint64_t tz0 = 0;
    for (size_t i = 0; i < nseg; i++)
        tz0 += v[i].typed_z;
    double seg_b = (double)(file - oz - tz0 + bytes + dbytes) / (double)ev;
    printf("| %u | u | %d | %zu | %.1f | %.1f | (in the unit) | - | %.1f | %.3f | %.1f | %.1f | "
           "%.1f | %.1f | - | %.0f |\n",
           u, level, dsize >> 10, (double)(bytes + dbytes) / (double)ev,
           (double)dbytes / (double)ev, seg_b, seg_b / ((double)file / (double)ev),
           best_o * 1e6 / (double)nu, best_t * 1e6 / (double)nu, best_seg * 1e6 / (double)nseg,
           c_us / (double)ev, train_us / 1e3 / (double)nseg);
    for (size_t i = 0; i < nseg; i++)
        free(dicts[i]);
    free(dicts);
    free(dlen);
    free(unit);
    free(out);
    ch_buf_free(&z);
    ch_buf_free(&cols);
    ch_buf_free(&all);
    ZSTD_freeCCtx(cc);
    ZSTD_freeDCtx(dc);
}

int main(int argc, char **argv)
{
    int rounds = 3, a = 1, flush = 0;
    const char *dict = NULL;
    for (;;) {
        if (a + 1 < argc && strcmp(argv[a], "--rounds") == 0) {
            rounds = atoi(argv[a + 1]);
            a += 2;
        } else if (a + 1 < argc && strcmp(argv[a], "--dict") == 0) {
            dict = argv[a + 1];
            a += 2;
        } else if (a < argc && strcmp(argv[a], "--flush") == 0) {
            flush = 1;
            a++;
        } else {
            break;
        }
    }
    size_t nseg = (size_t)(argc - a);
    if (nseg == 0) {
        fprintf(stderr,
                "usage: orig_unit_bench [--rounds R] [--flush | --dict VARIANTS] SEGMENT...\n");
        return 2;
    }
    seg_data *v = calloc(nseg, sizeof *v);
    uint64_t ev = 0, file = 0, oz = 0;
    for (size_t i = 0; i < nseg; i++) {
        if (load(argv[a + i], &v[i]) < 0)
            return 1;
        ev += v[i].nrec;
        file += v[i].file_bytes;
        oz += v[i].orig_z;
    }
    printf("%zu segments, %llu events, %.1f bytes per event as written (original records %.1f)\n",
           nseg, (unsigned long long)ev, (double)file / (double)ev, (double)oz / (double)ev);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (dict != NULL) {
        /* --dict "U:MODE:LEVEL:DICT_KB:TYPED_LEVEL:TYPED_DICT_KB,...": one row per variant */
        uint64_t tz = 0;
        for (size_t i = 0; i < nseg; i++)
            tz += v[i].typed_z;
        printf("typed frames as written %.1f B/event\n", (double)tz / (double)ev);
        printf("reading and checking 176 KB per segment (pread, CRC32C): %.1f us\n",
               dict_read_us(argv + a, nseg, (size_t)176 << 10, rounds));
        printf("| records a unit | mode | level | dictionary KB | original units + dictionary, "
               "B/event | of which dictionary | typed level/dictionary KB | typed units + "
               "dictionary, B/event | segment B/event | against as written | inflate original "
               "unit, us | inflate typed unit, us | dictionaries per segment, us | compression "
               "CPU per event, original, us | compression CPU per event, typed, us | training per "
               "segment, ms |\n"
               "|---:|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (const char *p = dict; *p;) {
            unsigned uu, lv, dk, tl, tk;
            char mode;
            int used = 0;
            if (sscanf(p, "%u:%c:%u:%u:%u:%u%n", &uu, &mode, &lv, &dk, &tl, &tk, &used) != 6) {
                fprintf(stderr, "--dict: bad variant at %s\n", p);
                return 2;
            }
            if (mode == 'u')
                run_unified(v, nseg, rounds, uu, (int)lv, (size_t)dk << 10, ev, file, oz);
            else
                run_dict(v, nseg, rounds, uu, (int)lv, (size_t)dk << 10, mode, ev, file, oz,
                         (int)tl, (size_t)tk << 10);
            p += used;
            if (*p == ',')
                p++;
        }
        return 0;
    }
    if (flush) {
        printf("| zstd block ended every (records) | original records, B/event | segment B/event "
               "| against as written | compression CPU per frame, us | inflate to one record, us "
               "| inflate whole frame, us |\n|---|---:|---:|---:|---:|---:|---:|\n");
        static const uint32_t fl[] = {256, 64, 32, 16};
        for (size_t j = 0; j < 4; j++) {
            double c_us, rec_us, all_us;
            result r = run_flush(v, nseg, fl[j], rounds, &c_us, &rec_us, &all_us);
            double ob = (double)r.zbytes / (double)ev,
                   total = (double)(file - oz) / (double)ev + ob;
            printf("| %u | %.1f | %.1f | %.3f | %.1f | %.1f | %.1f |\n", fl[j], ob, total,
                   total / ((double)file / (double)ev), c_us, rec_us, all_us);
        }
        return 0;
    }
    printf("| unit (records) | original records, B/event | segment B/event | against as written "
           "| CPU per unit decompressed, us |\n|---|---:|---:|---:|---:|\n");
    /* With the block's prefix, a unit of U records makes the writer index the ~400 KB prefix
     * 256 / U times per block: units under 16 records were too slow to measure. */
    static const uint32_t us[] = {256, 64, 32, 16, 16, 4, 1};
    for (int trained = 0; trained < 2; trained++)
        for (size_t j = trained ? 4 : 0; j < (trained ? 7u : 4u); j++) {
            result r = run(v, nseg, us[j], trained, rounds);
            /* the store's own 256-record frames have their entry in the block table already */
            double ob =
                (double)(r.zbytes - (us[j] == 256 && !trained ? 12 * r.units : 0)) / (double)ev;
            double total = (double)(file - oz) / (double)ev + ob;
            printf("| %u%s | %.1f | %.1f | %.3f | %.1f |\n", us[j],
                   trained ? ", trained dictionary per segment" : ", block prefix", ob, total,
                   total / ((double)file / (double)ev), r.unit_us);
        }
    return 0;
}
