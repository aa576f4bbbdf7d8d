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
 * Usage: orig_unit_bench [--rounds R] [--flush] SEGMENT...
 *
 * --flush (docs/BENCHMARKS.md section 48): instead, the store's own 256-record frames ended as a
 * zstd block every F records (256: as written; 64, 32, 16), their bytes, the writer's CPU per
 * frame, and the CPU of inflating a frame block by block up to one of its records (as the
 * reader does since section 48) and to its end.
 */
#define ZSTD_STATIC_LINKING_ONLY
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <zdict.h>
#include <zstd.h>

#include "core/buf.h"
#include "core/leb.h"
#include "store/store_int.h"

typedef struct seg_data {
    ch_buf *orig, *cols; /* per block: [u32 length][original part]..., the typed columns */
    size_t **rec_off;    /* per block: offset of each record in orig (cnt + 1 entries) */
    uint32_t *cnt;
    uint32_t nblocks, nrec;
    uint64_t file_bytes, orig_z; /* the file, and its original-record frames */
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
    out->cnt = calloc(m->nblocks, sizeof(uint32_t));
    ch_buf typed;
    ch_buf_init(&typed, (size_t)1 << 30);
    for (uint32_t k = 0; k < m->nblocks; k++) {
        ch_buf_init(&out->orig[k], (size_t)1 << 30);
        ch_buf_init(&out->cols[k], (size_t)1 << 30);
        uint32_t first = k * CH_SEG_BLOCK_RECORDS;
        uint32_t cnt =
            m->nrec - first < CH_SEG_BLOCK_RECORDS ? m->nrec - first : CH_SEG_BLOCK_RECORDS;
        out->cnt[k] = cnt;
        out->rec_off[k] = calloc(cnt + 1, sizeof(size_t));
        ch_buf_clear(&typed);
        for (uint32_t i = 0; i < cnt; i++) {
            const uint8_t *p;
            size_t n;
            uint8_t l[4];
            if (ch__seg_typed(s, first + i, &p, &n, &err) < 0)
                return -1;
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
        if (ch__evcols_encode((const uint8_t *)typed.data, typed.len, cnt, &out->cols[k]) < 0)
            return -1;
    }
    ch_buf_free(&typed);
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
    for (uint32_t k = 0; k < out->nblocks; k++)
        out->orig_z += ch_le_get32(bt + (size_t)k * 48 + 28);
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

int main(int argc, char **argv)
{
    int rounds = 3, a = 1, flush = 0;
    for (;;) {
        if (a + 1 < argc && strcmp(argv[a], "--rounds") == 0) {
            rounds = atoi(argv[a + 1]);
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
        fprintf(stderr, "usage: orig_unit_bench [--rounds R] [--flush] SEGMENT...\n");
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
