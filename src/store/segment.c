/*
 * segment.c - the segment file: one source type, one hour, sealed once and never changed.
 *
 *     header (128 bytes, CRC32C over itself)
 *     blocks: zstd frames of CH_SEG_BLOCK_RECORDS records, each [u32 length][stored event]
 *     block table: per block offset, sizes, first record, records, CRC32C of the frame
 *     index: one zstd frame of CH_IX_NFIELDS sorted term dictionaries with posting lists
 *
 * Records are compressed in blocks rather than as one frame so that an indexed lookup
 * decompresses only the blocks its postings name, while blocks stay large enough for zstd
 * to find the repetition between CloudTrail records (the same keys, users and agents).
 * Format 2 (SEG_VERSION) compresses every block after the first with the first block's records
 * as its zstd dictionary (raw content): a block then also finds the repetition of the 256
 * records before it, which took the size from 1.10 to 0.98 of the gzip'd CloudTrail S3 files at
 * level 6 (docs/BENCHMARKS.md section 21); reading a later block costs decompressing block 0
 * once per open segment. Format 1 (blocks compressed alone) is still read.
 * Blocks are compressed as they fill (ch__segb_full / ch__segb_compress), by the store's writer
 * thread (local.c), so an open segment keeps only its first block and the one filling raw.
 * A term dictionary is sorted text with delta-varint ordinals (docs/BENCHMARKS.md compares
 * it with a per-segment Bloom filter): one binary search or one pass over the terms answers
 * an equality, a list, a set, a CIDR or a suffix test.
 *
 * Every checksum is verified before its bytes are used, and every length is checked against
 * the file's size, so a damaged segment yields CH_EPARSE with the reason, never a crash (the
 * fuzz target tests/fuzz/fuzz_segment.c feeds damaged ones). The file is read through mmap:
 * a lookup touches the header, the index and a few blocks, not the whole file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
/* ZSTD_createCDict_advanced: exported by libzstd, declared only under this macro. */
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

#include "core/hash.h"
#include "core/leb.h"
#include "core/mem.h"
#include "ingest/crc32c.h"
#include "store/store_int.h"

#define SEG_VERSION 2
#define SEG_VERSION_PLAIN 1 /* blocks compressed alone; still read */
#define ZLEVEL 3            /* the index frame */
#define BLOCK_LEVEL 6       /* blocks: docs/BENCHMARKS.md section 21 measured 3 to 6 */

/* The blocks' zstd level: BLOCK_LEVEL, or COINHOUND_STORE_LEVEL (1-19) for the benchmarks
 * that compare levels. Any level reads back the same. */
static int block_level(void)
{
    static atomic_int level; /* the writer thread and a test's own thread may both ask */
    int l = atomic_load_explicit(&level, memory_order_relaxed);
    if (l == 0) {
        const char *v = getenv("COINHOUND_STORE_LEVEL");
        l = v ? atoi(v) : 0;
        l = l >= 1 && l <= 19 ? l : BLOCK_LEVEL;
        atomic_store_explicit(&level, l, memory_order_relaxed);
    }
    return l;
}
#define BT_ENTRY 32
#define MAX_BLOCK_RAW ((size_t)256 << 20)
#define MAX_INDEX_RAW ((size_t)1 << 30)

/* ---- builder ---- */

void ch__segb_init(ch_seg_builder *b, uint32_t dataset, int64_t hour)
{
    memset(b, 0, sizeof *b);
    b->dataset = dataset;
    b->hour = hour;
    for (int i = 0; i < CH_IX_NFIELDS; i++)
        ch_buf_init(&b->terms[i], (size_t)1 << 31);
    b->min_ts = INT64_MAX;
    b->max_ts = INT64_MIN;
}

static void block_free(ch_seg_block *k)
{
    if (k == NULL)
        return;
    ch_buf_free(&k->raw);
    ch_free(k->z);
    ZSTD_freeCDict(k->cdict);
    ch_free(k);
}

void ch__segb_free(ch_seg_builder *b)
{
    for (size_t k = 0; k < b->nblocks; k++)
        block_free(b->blocks[k]);
    ch_free(b->blocks);
    b->blocks = NULL;
    b->nblocks = b->capblocks = 0;
    for (int i = 0; i < CH_IX_NFIELDS; i++)
        ch_buf_free(&b->terms[i]);
    b->nrec = 0;
    b->raw_bytes = 0;
}

/* The block that takes the next record: a new one when the last is full. */
static ch_seg_block *filling(ch_seg_builder *b)
{
    if (b->nblocks && b->blocks[b->nblocks - 1]->cnt < CH_SEG_BLOCK_RECORDS)
        return b->blocks[b->nblocks - 1];
    if (b->nblocks == b->capblocks) {
        size_t nc = b->capblocks ? b->capblocks * 2 : 16;
        ch_seg_block **nb = ch_realloc(b->blocks, nc * sizeof *nb);
        if (nb == NULL)
            return NULL;
        b->blocks = nb;
        b->capblocks = nc;
    }
    ch_seg_block *k = ch_calloc(1, sizeof *k);
    if (k == NULL)
        return NULL;
    ch_buf_init(&k->raw, MAX_BLOCK_RAW);
    k->first = b->nrec;
    k->dict = b->nblocks ? b->blocks[0] : NULL;
    b->blocks[b->nblocks++] = k;
    return k;
}

int ch__segb_add(ch_seg_builder *b, const ch_event *ev, uint64_t rid)
{
    ch_seg_block *k = filling(b);
    if (k == NULL)
        return CH_ENOMEM;
    size_t start = k->raw.len;
    uint8_t lenb[4] = {0};
    if (ch_buf_add(&k->raw, lenb, 4) < 0 || ch__ev_encode(ev, rid, &k->raw) < 0) {
        k->raw.len = start;
        return CH_ENOMEM;
    }
    ch_le_put32((uint8_t *)k->raw.data + start, (uint32_t)(k->raw.len - start - 4));
    uint32_t ord = b->nrec;
    for (int i = 0; i < CH_IX_NFIELDS; i++) {
        char tb[64];
        ch_sv t;
        if (ch__ix_terms(ev, i, tb, &t) == 0)
            continue;
        uint8_t hdr[8];
        ch_le_put32(hdr, ord);
        ch_le_put32(hdr + 4, t.n);
        if (ch_buf_add(&b->terms[i], hdr, 8) < 0 || ch_buf_add(&b->terms[i], t.p, t.n) < 0) {
            k->raw.len = start;
            return CH_ENOMEM;
        }
    }
    k->cnt++;
    k->rawlen = (uint32_t)k->raw.len;
    b->raw_bytes += k->raw.len - start;
    b->nrec++;
    if (ev->ts_ms < b->min_ts)
        b->min_ts = ev->ts_ms;
    if (ev->ts_ms > b->max_ts)
        b->max_ts = ev->ts_ms;
    return 0;
}

ch_seg_block *ch__segb_full(const ch_seg_builder *b)
{
    if (b->nblocks == 0 || b->blocks[b->nblocks - 1]->cnt != CH_SEG_BLOCK_RECORDS)
        return NULL;
    return b->blocks[b->nblocks - 1];
}

int ch__segb_compress(ch_seg_block *k, void *cctx, ch_error *err)
{
    if (k->z != NULL)
        return 0;
    /* Block 0 is full and never written again once a later block exists, so its bytes can
     * serve as the dictionary of every later block of the segment. */
    ch_seg_block *d = k->dict;
    if (d != NULL && d->cdict == NULL) {
        /* Tables sized for a block and this dictionary (ZSTD_createCDict would size them for
         * input of unknown size: megabytes more per open segment). Raw content by reference:
         * block 0 outlives the segment's compression. */
        ZSTD_compressionParameters cp = ZSTD_getCParams(block_level(), d->raw.len, d->raw.len);
        d->cdict = ZSTD_createCDict_advanced(d->raw.data, d->raw.len, ZSTD_dlm_byRef,
                                             ZSTD_dct_rawContent, cp, ZSTD_defaultCMem);
        if (d->cdict == NULL)
            return ch_error_set(err, CH_ENOMEM, "out of memory");
    }
    size_t bound = ZSTD_compressBound(k->raw.len);
    uint8_t *z = ch_malloc(bound);
    if (z == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    size_t c = d ? ZSTD_compress_usingCDict(cctx, z, bound, k->raw.data, k->raw.len, d->cdict)
                 : ZSTD_compressCCtx(cctx, z, bound, k->raw.data, k->raw.len, block_level());
    if (ZSTD_isError(c)) {
        ch_free(z);
        return ch_error_set(err, CH_ERR, "zstd: %s", ZSTD_getErrorName(c));
    }
    /* Shrink to fit: a sealed segment's frames wait in memory until the writer gets to them. */
    uint8_t *fit = ch_realloc(z, c ? c : 1);
    k->z = fit ? fit : z;
    k->zlen = c;
    k->crc = ch_crc32c(0, k->z, c);
    if (k->first != 0)
        ch_buf_free(&k->raw);
    return 0;
}

/* One distinct term of a field: its bytes and its chain of entries (in ordinal order). */
typedef struct uterm {
    const char *p;
    uint32_t n;
    uint32_t head, tail; /* entry indexes; next[] links them */
    uint32_t count;
} uterm;

static int uterm_cmp(const void *a, const void *b)
{
    const uterm *x = a, *y = b;
    size_t m = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->p, y->p, m);
    if (c)
        return c;
    return x->n < y->n ? -1 : x->n > y->n;
}

/* The raw index: per field, nterms then (term, npost, postlen, deltas).
 * Entries are grouped by term in a hash table first and only the distinct terms are sorted:
 * a field such as event.action has thousands of terms for hundreds of thousands of entries, and
 * sorting every (term, ordinal) pair was a quarter of an ingest's instructions. Ordinals come in
 * increasing order (records are added in order), so each term's chain is already sorted. */
static int build_index(ch_seg_builder *b, ch_buf *out)
{
    ch_buf post;
    ch_buf_init(&post, (size_t)1 << 31);
    int rc = 0;
    for (int f = 0; f < CH_IX_NFIELDS && rc == 0; f++) {
        ch_buf *tb = &b->terms[f];
        size_t n = 0;
        for (size_t o = 0; o + 8 <= tb->len; o += 8 + ch_le_get32((uint8_t *)tb->data + o + 4))
            n++;
        size_t cap = 16;
        while (cap < 2 * n)
            cap *= 2;
        uint32_t *ords = n ? ch_malloc(n * sizeof *ords) : NULL;
        uint32_t *next = n ? ch_malloc(n * sizeof *next) : NULL;
        uterm *u = n ? ch_malloc(n * sizeof *u) : NULL;
        uint32_t *slot = n ? ch_malloc(cap * sizeof *slot) : NULL; /* uterm index + 1, 0 = empty */
        if (n && (ords == NULL || next == NULL || u == NULL || slot == NULL)) {
            ch_free(ords);
            ch_free(next);
            ch_free(u);
            ch_free(slot);
            rc = CH_ENOMEM;
            break;
        }
        if (n)
            memset(slot, 0, cap * sizeof *slot);
        size_t nu = 0, k = 0;
        for (size_t o = 0; o + 8 <= tb->len; k++) {
            const uint8_t *h = (const uint8_t *)tb->data + o;
            uint32_t tn = ch_le_get32(h + 4);
            const char *tp = tb->data + o + 8;
            o += 8 + tn;
            ords[k] = ch_le_get32(h);
            next[k] = UINT32_MAX;
            size_t i = (size_t)ch_hash_words(CH_HASH_SEED, tp, tn) & (cap - 1);
            while (slot[i] != 0 &&
                   (u[slot[i] - 1].n != tn || memcmp(u[slot[i] - 1].p, tp, tn) != 0))
                i = (i + 1) & (cap - 1);
            if (slot[i] == 0) {
                u[nu] = (uterm){tp, tn, (uint32_t)k, (uint32_t)k, 1};
                slot[i] = (uint32_t)++nu;
            } else {
                uterm *t = &u[slot[i] - 1];
                next[t->tail] = (uint32_t)k;
                t->tail = (uint32_t)k;
                t->count++;
            }
        }
        ch_free(slot);
        if (nu)
            qsort(u, nu, sizeof *u, uterm_cmp);
        rc |= ch_leb_put(out, nu);
        for (size_t i = 0; i < nu && rc == 0; i++) {
            ch_buf_clear(&post);
            uint32_t prev = 0;
            for (uint32_t e = u[i].head; e != UINT32_MAX; e = next[e]) {
                rc |= ch_leb_put(&post, ords[e] - prev);
                prev = ords[e];
            }
            rc |= ch_leb_put(out, u[i].n);
            rc |= ch_buf_add(out, u[i].p, u[i].n);
            rc |= ch_leb_put(out, u[i].count);
            rc |= ch_leb_put(out, post.len);
            rc |= ch_buf_add(out, post.data, post.len);
        }
        ch_free(ords);
        ch_free(next);
        ch_free(u);
    }
    ch_buf_free(&post);
    return rc < 0 ? CH_ENOMEM : 0;
}

/* End of field f's dictionary in the raw index p[0..n), parsed from its start. */
static bool field_end(const uint8_t *p, const uint8_t *end, const uint8_t **out)
{
    uint64_t nt;
    if (!ch_leb_get(&p, end, &nt))
        return false;
    for (uint64_t i = 0; i < nt; i++) {
        uint64_t tl, np, pl;
        if (!ch_leb_get(&p, end, &tl) || tl > (uint64_t)(end - p))
            return false;
        p += tl;
        if (!ch_leb_get(&p, end, &np) || !ch_leb_get(&p, end, &pl) || pl > (uint64_t)(end - p))
            return false;
        p += pl;
    }
    *out = p;
    return true;
}

/* The raw index as one zstd frame per field, back to back. Concatenated frames decompress as
 * one (so a reader that takes the whole area as one frame still gets the same bytes), and a
 * lookup on one field decompresses only that field's frame: user.name is a tenth of an index
 * whose source.ip dictionary dominates (docs/BENCHMARKS.md section 18). */
static int compress_index(ZSTD_CCtx *cctx, const ch_buf *idx, ch_buf *file, ch_error *err)
{
    const uint8_t *p = (const uint8_t *)idx->data, *end = p + idx->len;
    for (int f = 0; f < CH_IX_NFIELDS; f++) {
        const uint8_t *e;
        if (!field_end(p, end, &e))
            return ch_error_set(err, CH_ERR, "index field %d does not parse", f);
        size_t bound = ZSTD_compressBound((size_t)(e - p));
        if (ch_buf_reserve(file, bound) < 0)
            return ch_error_set(err, CH_ENOMEM, "out of memory");
        size_t c =
            ZSTD_compressCCtx(cctx, file->data + file->len, bound, p, (size_t)(e - p), ZLEVEL);
        if (ZSTD_isError(c))
            return ch_error_set(err, CH_ERR, "zstd: %s", ZSTD_getErrorName(c));
        file->len += c;
        p = e;
    }
    return p == end ? 0 : ch_error_set(err, CH_ERR, "index: trailing bytes");
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

int ch__segb_write(ch_seg_builder *b, const char *path, uint64_t gen, uint32_t seq, void *cctx_in,
                   uint64_t *bytes_out, ch_error *err)
{
    /* A compression context costs megabytes to set up: one per store, reused (zstd's
     * one-shot ZSTD_compress builds and frees one per call). */
    ZSTD_CCtx *cctx = cctx_in ? cctx_in : ZSTD_createCCtx();
    ch_buf idx;
    ch_buf_init(&idx, (size_t)1 << 31);
    uint32_t nblocks = (uint32_t)b->nblocks;
    uint8_t *bt = ch_calloc(nblocks ? nblocks : 1, BT_ENTRY);
    uint8_t h[CH_SEG_HEADER] = {0};
    ch_buf iz; /* the index: one zstd frame per field */
    ch_buf_init(&iz, (size_t)1 << 31);
    char tmp[4200];
    int fd = -1, rc = 0;
    if (cctx == NULL || bt == NULL) {
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        goto cleanup;
    }
    uint64_t off = CH_SEG_HEADER;
    for (uint32_t k = 0; k < nblocks; k++) {
        ch_seg_block *blk = b->blocks[k];
        if ((rc = ch__segb_compress(blk, cctx, err)) < 0)
            goto cleanup;
        uint8_t *ent = bt + (size_t)k * BT_ENTRY;
        ch_le_put64(ent, off);
        ch_le_put32(ent + 8, (uint32_t)blk->zlen);
        ch_le_put32(ent + 12, blk->rawlen);
        ch_le_put32(ent + 16, blk->first);
        ch_le_put32(ent + 20, blk->cnt);
        ch_le_put32(ent + 24, blk->crc);
        off += blk->zlen;
    }
    uint64_t bt_off = off;
    if (build_index(b, &idx) < 0) {
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        goto cleanup;
    }
    uint64_t ix_off = bt_off + (uint64_t)nblocks * BT_ENTRY;
    if ((rc = compress_index(cctx, &idx, &iz, err)) < 0)
        goto cleanup;
    size_t ic = iz.len;
    memcpy(h, CH_SEG_MAGIC, 8);
    ch_le_put32(h + 8, SEG_VERSION);
    ch_le_put32(h + 12, b->dataset);
    ch_le_put64(h + 16, gen);
    ch_le_put32(h + 24, seq);
    ch_le_put32(h + 28, b->nrec);
    ch_le_put64(h + 32, (uint64_t)b->min_ts);
    ch_le_put64(h + 40, (uint64_t)b->max_ts);
    ch_le_put64(h + 48, b->raw_bytes);
    ch_le_put32(h + 56, nblocks);
    ch_le_put32(h + 60, ch_crc32c(0, bt, (size_t)nblocks * BT_ENTRY));
    ch_le_put64(h + 64, bt_off);
    ch_le_put64(h + 72, ix_off);
    ch_le_put32(h + 80, (uint32_t)ic);
    ch_le_put32(h + 84, (uint32_t)idx.len);
    ch_le_put32(h + 88, ch_crc32c(0, iz.data, ic));
    ch_le_put32(h + 124, ch_crc32c(0, h, 124));
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    bool ok = fd >= 0 && write_all(fd, h, sizeof h) == 0;
    for (uint32_t k = 0; k < nblocks && ok; k++)
        ok = write_all(fd, b->blocks[k]->z, b->blocks[k]->zlen) == 0;
    /* Tests hold a written temporary file here so that a kill -9 lands after a seal and before
     * the segment is durable. */
    const char *delay = getenv("COINHOUND_STORE_WRITE_DELAY_MS");
    if (delay != NULL && atoi(delay) > 0)
        usleep((useconds_t)atoi(delay) * 1000);
    if (!ok || write_all(fd, bt, (size_t)nblocks * BT_ENTRY) < 0 ||
        write_all(fd, iz.data, ic) < 0 || fsync(fd) < 0) {
        rc = ch_error_set(err, CH_EIO, "%s: %s", tmp, strerror(errno));
        goto cleanup;
    }
    close(fd);
    fd = -1;
    if (rename(tmp, path) < 0) {
        rc = ch_error_set(err, CH_EIO, "%s: %s", path, strerror(errno));
        goto cleanup;
    }
    if (bytes_out)
        *bytes_out = ix_off + ic;
cleanup:
    if (fd >= 0) {
        close(fd);
        unlink(tmp);
    }
    if (cctx_in == NULL)
        ZSTD_freeCCtx(cctx);
    ch_free(bt);
    ch_buf_free(&iz);
    ch_buf_free(&idx);
    return rc;
}

/* ---- reader ---- */

struct ch_seg {
    const uint8_t *map;
    size_t size;
    bool mapped;
    ch_seg_meta meta;
    const uint8_t *bt;
    /* the decompressed block last asked for */
    uint8_t *blk;
    size_t blkcap;
    int64_t blk_no;
    uint32_t *rec_off; /* offsets of the block's records */
    size_t rec_cap;
    uint64_t blocks_read;
    uint32_t version;
    /* Version 2: block 0's records (the dictionary of the later blocks) followed by room for
     * one later block, which is decompressed right after them: zstd then sees the dictionary
     * as the output's own prefix and copies matches from it at its normal speed (into a
     * separate buffer, each such match is a memmove call: scans ran at half speed). */
    uint8_t *pfx;
    size_t pfxlen;
    const uint8_t *cur; /* the records of block blk_no: in blk, or in pfx */
    ZSTD_DDict *ddict;  /* over pfx: one per segment, so zstd treats it as warm after the first */
    ZSTD_DCtx *dctx;    /* borrowed (ch__seg_use_dctx) or owned */
    bool own_dctx;
    /* the index, decoded on first use: checked once, then each field's frame when first asked
     * for (segments written with one frame for all fields decode all at once) */
    bool ix_checked, ix_split;
    const uint8_t *ix_frame[CH_IX_NFIELDS];
    size_t ix_flen[CH_IX_NFIELDS];
    bool ix_loaded[CH_IX_NFIELDS];
    uint8_t *ix_raw;
    uint8_t *ix_fraw[CH_IX_NFIELDS];
    ch_seg_term *terms[CH_IX_NFIELDS];
    size_t nterms[CH_IX_NFIELDS];
};

static int seg_parse(ch_seg *s, ch_error *err)
{
    const uint8_t *h = s->map;
    if (s->size < CH_SEG_HEADER || memcmp(h, CH_SEG_MAGIC, 8) != 0)
        return ch_error_set(err, CH_EPARSE, "not a segment (bad magic at offset 0)");
    if (ch_le_get32(h + 124) != ch_crc32c(0, h, 124))
        return ch_error_set(err, CH_EPARSE, "header checksum mismatch at offset 124");
    s->version = ch_le_get32(h + 8);
    if (s->version != SEG_VERSION && s->version != SEG_VERSION_PLAIN)
        return ch_error_set(err, CH_EPARSE, "unsupported segment version %u at offset 8",
                            ch_le_get32(h + 8));
    ch_seg_meta *m = &s->meta;
    m->dataset = ch_le_get32(h + 12);
    m->gen = ch_le_get64(h + 16);
    m->seq = ch_le_get32(h + 24);
    m->nrec = ch_le_get32(h + 28);
    m->min_ts = (int64_t)ch_le_get64(h + 32);
    m->max_ts = (int64_t)ch_le_get64(h + 40);
    m->raw_bytes = ch_le_get64(h + 48);
    m->nblocks = ch_le_get32(h + 56);
    m->file_bytes = s->size;
    uint64_t bt_off = ch_le_get64(h + 64), ix_off = ch_le_get64(h + 72);
    uint64_t ix_len = ch_le_get32(h + 80);
    if (m->dataset >= CH_DS__COUNT)
        return ch_error_set(err, CH_EPARSE, "bad dataset %u at offset 12", m->dataset);
    if (m->nblocks != (m->nrec + CH_SEG_BLOCK_RECORDS - 1) / CH_SEG_BLOCK_RECORDS)
        return ch_error_set(err, CH_EPARSE, "block count %u does not fit %u records", m->nblocks,
                            m->nrec);
    if (bt_off < CH_SEG_HEADER || bt_off > s->size ||
        (uint64_t)m->nblocks * BT_ENTRY > s->size - bt_off || ix_off > s->size ||
        ix_len > s->size - ix_off || ix_off != bt_off + (uint64_t)m->nblocks * BT_ENTRY)
        return ch_error_set(err, CH_EPARSE, "section offsets beyond the file (%zu bytes)", s->size);
    s->bt = s->map + bt_off;
    if (ch_le_get32(h + 60) != ch_crc32c(0, s->bt, (size_t)m->nblocks * BT_ENTRY))
        return ch_error_set(err, CH_EPARSE, "block table checksum mismatch at offset %llu",
                            (unsigned long long)bt_off);
    for (uint32_t k = 0; k < m->nblocks; k++) {
        const uint8_t *e = s->bt + (size_t)k * BT_ENTRY;
        uint64_t off = ch_le_get64(e);
        uint32_t clen = ch_le_get32(e + 8), first = ch_le_get32(e + 16), cnt = ch_le_get32(e + 20);
        if (off < CH_SEG_HEADER || off > bt_off || clen > bt_off - off ||
            first != k * CH_SEG_BLOCK_RECORDS || cnt == 0 || cnt > CH_SEG_BLOCK_RECORDS ||
            (uint64_t)first + cnt > m->nrec || ch_le_get32(e + 12) > MAX_BLOCK_RAW)
            return ch_error_set(err, CH_EPARSE, "block %u entry out of bounds", k);
    }
    return 0;
}

static int seg_new(const uint8_t *map, size_t size, bool mapped, ch_seg **out, ch_error *err)
{
    ch_seg *s = ch_calloc(1, sizeof *s);
    if (s == NULL) {
        if (mapped)
            munmap((void *)map, size);
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    }
    s->map = map;
    s->size = size;
    s->mapped = mapped;
    s->blk_no = -1;
    int rc = seg_parse(s, err);
    if (rc < 0) {
        ch__seg_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

int ch__seg_open(const char *path, ch_seg **out, ch_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ch_error_set(err, CH_EIO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size < CH_SEG_HEADER) {
        close(fd);
        return ch_error_set(err, CH_EPARSE, "%s: truncated (%lld bytes)", path,
                            (long long)st.st_size);
    }
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        return ch_error_set(err, CH_EIO, "%s: %s", path, strerror(errno));
    int rc = seg_new(m, (size_t)st.st_size, true, out, err);
    if (rc < 0) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        ch_error_set(err, rc, "%s: %s", path, msg);
    }
    return rc;
}

int ch__seg_open_mem(const uint8_t *buf, size_t n, ch_seg **out, ch_error *err)
{
    return seg_new(buf, n, false, out, err);
}

void ch__seg_close(ch_seg *s)
{
    if (s == NULL)
        return;
    if (s->mapped)
        munmap((void *)s->map, s->size);
    if (s->own_dctx)
        ZSTD_freeDCtx(s->dctx);
    ch_free(s->blk);
    ZSTD_freeDDict(s->ddict);
    ch_free(s->pfx);
    ch_free(s->rec_off);
    ch_free(s->ix_raw);
    for (int i = 0; i < CH_IX_NFIELDS; i++) {
        ch_free(s->terms[i]);
        ch_free(s->ix_fraw[i]);
    }
    ch_free(s);
}

const ch_seg_meta *ch__seg_meta(const ch_seg *s) { return &s->meta; }

void ch__seg_use_dctx(ch_seg *s, void *dctx)
{
    if (s->own_dctx)
        ZSTD_freeDCtx(s->dctx);
    s->dctx = dctx;
    s->own_dctx = false;
}

static size_t decompress(ch_seg *s, void *dst, size_t cap, const void *src, size_t n)
{
    if (s->dctx == NULL) {
        if ((s->dctx = ZSTD_createDCtx()) == NULL)
            return (size_t)-1;
        s->own_dctx = true;
    }
    return ZSTD_decompressDCtx(s->dctx, dst, cap, src, n);
}
uint64_t ch__seg_blocks_read(const ch_seg *s) { return s->blocks_read; }

/* Version 2: block 0's records, decompressed once per open segment, are the dictionary that
 * every later block was compressed with. An indexed lookup that lands past block 0 pays one
 * more block's decompression per segment for it. */
static int load_prefix(ch_seg *s, ch_error *err)
{
    if (s->pfx != NULL)
        return 0;
    uint64_t off = ch_le_get64(s->bt);
    uint32_t clen = ch_le_get32(s->bt + 8), rawlen = ch_le_get32(s->bt + 12);
    if (ch_le_get32(s->bt + 24) != ch_crc32c(0, s->map + off, clen))
        return ch_error_set(err, CH_EPARSE, "block 0 checksum mismatch at offset %llu",
                            (unsigned long long)off);
    size_t room = 0;
    for (uint32_t k = 1; k < s->meta.nblocks; k++)
        if (ch_le_get32(s->bt + (size_t)k * BT_ENTRY + 12) > room)
            room = ch_le_get32(s->bt + (size_t)k * BT_ENTRY + 12);
    uint8_t *p = ch_malloc((size_t)rawlen + room + 1);
    if (p == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    /* A scan in record order has block 0 in hand already. */
    size_t d = rawlen;
    if (s->blk_no == 0)
        memcpy(p, s->cur, rawlen);
    else
        d = decompress(s, p, rawlen, s->map + off, clen);
    if (ZSTD_isError(d) || d != rawlen) {
        ch_free(p);
        return ch_error_set(err, CH_EPARSE,
                            "block 0 (the dictionary of the later blocks) does not decompress");
    }
    /* Raw content, as the writer's dictionary was, and by reference: pfx lives as long. */
    s->ddict =
        ZSTD_createDDict_advanced(p, rawlen, ZSTD_dlm_byRef, ZSTD_dct_rawContent, ZSTD_defaultCMem);
    if (s->ddict == NULL) {
        ch_free(p);
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    }
    s->pfx = p;
    s->pfxlen = rawlen;
    return 0;
}

static int load_block(ch_seg *s, uint32_t k, ch_error *err)
{
    if (s->blk_no == (int64_t)k)
        return 0;
    const uint8_t *e = s->bt + (size_t)k * BT_ENTRY;
    uint64_t off = ch_le_get64(e);
    uint32_t clen = ch_le_get32(e + 8), rawlen = ch_le_get32(e + 12), cnt = ch_le_get32(e + 20);
    if (ch_le_get32(e + 24) != ch_crc32c(0, s->map + off, clen))
        return ch_error_set(err, CH_EPARSE, "block %u checksum mismatch at offset %llu", k,
                            (unsigned long long)off);
    /* Before the buffer is reused: it may hold block 0, the dictionary. */
    if (s->version != SEG_VERSION_PLAIN && k > 0) {
        int rc = load_prefix(s, err);
        if (rc < 0)
            return rc;
    }
    bool into_blk = s->version == SEG_VERSION_PLAIN || (k == 0 && s->pfx == NULL);
    if (into_blk && s->blkcap < rawlen) {
        uint8_t *nb = ch_realloc(s->blk, rawlen);
        if (nb == NULL)
            return ch_error_set(err, CH_ENOMEM, "out of memory");
        s->blk = nb;
        s->blkcap = rawlen;
    }
    s->blk_no = -1;
    size_t d;
    if (into_blk) {
        d = decompress(s, s->blk, rawlen, s->map + off, clen);
        s->cur = s->blk;
    } else if (k == 0) {
        d = rawlen; /* checked and decompressed as the dictionary */
        s->cur = s->pfx;
    } else {
        d = ZSTD_decompress_usingDDict(s->dctx, s->pfx + s->pfxlen, rawlen, s->map + off, clen,
                                       s->ddict);
        s->cur = s->pfx + s->pfxlen;
    }
    if (ZSTD_isError(d) || d != rawlen)
        return ch_error_set(err, CH_EPARSE, "block %u does not decompress", k);
    if (s->rec_cap < cnt) {
        uint32_t *no = ch_realloc(s->rec_off, CH_SEG_BLOCK_RECORDS * sizeof *no);
        if (no == NULL)
            return ch_error_set(err, CH_ENOMEM, "out of memory");
        s->rec_off = no;
        s->rec_cap = CH_SEG_BLOCK_RECORDS;
    }
    size_t o = 0;
    for (uint32_t i = 0; i < cnt; i++) {
        if (rawlen - o < 4 || ch_le_get32(s->cur + o) > rawlen - o - 4)
            return ch_error_set(err, CH_EPARSE, "block %u: record %u overruns the block", k, i);
        s->rec_off[i] = (uint32_t)o;
        o += 4 + ch_le_get32(s->cur + o);
    }
    if (o != rawlen)
        return ch_error_set(err, CH_EPARSE, "block %u: %zu trailing bytes", k, rawlen - o);
    s->blk_no = k;
    s->blocks_read++;
    return 0;
}

int ch__seg_record(ch_seg *s, uint32_t ord, const uint8_t **p, size_t *n, ch_error *err)
{
    if (ord >= s->meta.nrec)
        return ch_error_set(err, CH_EPARSE, "record %u past the segment's %u", ord, s->meta.nrec);
    uint32_t k = ord / CH_SEG_BLOCK_RECORDS;
    int rc = load_block(s, k, err);
    if (rc < 0)
        return rc;
    uint32_t o = s->rec_off[ord - k * CH_SEG_BLOCK_RECORDS];
    *p = s->cur + o + 4;
    *n = ch_le_get32(s->cur + o);
    return 0;
}

/* Parse field f's dictionary from *pp (advanced past it). */
static int parse_field(ch_seg *s, int f, const uint8_t **pp, const uint8_t *end, ch_error *err)
{
    const uint8_t *p = *pp;
    uint64_t nt;
    if (!ch_leb_get(&p, end, &nt) || nt > (uint64_t)(end - p))
        return ch_error_set(err, CH_EPARSE, "index field %d: bad term count", f);
    ch_free(s->terms[f]);
    s->terms[f] = nt ? ch_malloc(nt * sizeof(ch_seg_term)) : NULL;
    if (nt && s->terms[f] == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    for (uint64_t i = 0; i < nt; i++) {
        uint64_t tl, np, pl;
        if (!ch_leb_get(&p, end, &tl) || tl > (uint64_t)(end - p))
            return ch_error_set(err, CH_EPARSE, "index field %d term %llu: bad length", f,
                                (unsigned long long)i);
        const uint8_t *tp = p;
        p += tl;
        if (!ch_leb_get(&p, end, &np) || !ch_leb_get(&p, end, &pl) || pl > (uint64_t)(end - p) ||
            np > s->meta.nrec || np > pl)
            return ch_error_set(err, CH_EPARSE, "index field %d term %llu: bad postings", f,
                                (unsigned long long)i);
        s->terms[f][i] = (ch_seg_term){{(const char *)tp, (uint32_t)tl}, p, (uint32_t)np, pl};
        p += pl;
    }
    s->nterms[f] = nt;
    *pp = p;
    return 0;
}

/* Check the index area's checksum and find its frames: one per field, or one for all. */
static int check_index(ch_seg *s, ch_error *err)
{
    if (s->ix_checked)
        return 0;
    const uint8_t *h = s->map;
    uint64_t ix_off = ch_le_get64(h + 72);
    uint32_t clen = ch_le_get32(h + 80), rawlen = ch_le_get32(h + 84);
    if (ch_le_get32(h + 88) != ch_crc32c(0, s->map + ix_off, clen))
        return ch_error_set(err, CH_EPARSE, "index checksum mismatch at offset %llu",
                            (unsigned long long)ix_off);
    if (rawlen > MAX_INDEX_RAW)
        return ch_error_set(err, CH_EPARSE, "index of %u bytes is too large", rawlen);
    const uint8_t *p = s->map + ix_off;
    size_t left = clen;
    int nf = 0;
    unsigned long long sum = 0;
    while (left > 0 && nf < CH_IX_NFIELDS) {
        size_t fl = ZSTD_findFrameCompressedSize(p, left);
        unsigned long long cs =
            ZSTD_isError(fl) ? ZSTD_CONTENTSIZE_ERROR : ZSTD_getFrameContentSize(p, fl);
        if (ZSTD_isError(fl) || cs == ZSTD_CONTENTSIZE_ERROR || cs == ZSTD_CONTENTSIZE_UNKNOWN)
            break;
        s->ix_frame[nf] = p;
        s->ix_flen[nf++] = fl;
        sum += cs;
        p += fl;
        left -= fl;
    }
    s->ix_split = nf == CH_IX_NFIELDS && left == 0 && sum == rawlen;
    s->ix_checked = true;
    return 0;
}

static int load_field(ch_seg *s, int f, ch_error *err)
{
    if (s->ix_loaded[f])
        return 0;
    int rc = check_index(s, err);
    if (rc < 0)
        return rc;
    if (s->ix_split) {
        unsigned long long cs = ZSTD_getFrameContentSize(s->ix_frame[f], s->ix_flen[f]);
        uint8_t *raw = ch_malloc(cs ? (size_t)cs : 1);
        if (raw == NULL)
            return ch_error_set(err, CH_ENOMEM, "out of memory");
        size_t d = decompress(s, raw, (size_t)cs, s->ix_frame[f], s->ix_flen[f]);
        if (ZSTD_isError(d) || d != cs) {
            ch_free(raw);
            return ch_error_set(err, CH_EPARSE, "index field %d does not decompress", f);
        }
        ch_free(s->ix_fraw[f]);
        s->ix_fraw[f] = raw;
        const uint8_t *p = raw;
        if ((rc = parse_field(s, f, &p, raw + cs, err)) < 0)
            return rc;
        if (p != raw + cs)
            return ch_error_set(err, CH_EPARSE, "index field %d: %zu trailing bytes", f,
                                (size_t)(raw + cs - p));
        s->ix_loaded[f] = true;
        return 0;
    }
    const uint8_t *h = s->map;
    uint64_t ix_off = ch_le_get64(h + 72);
    uint32_t clen = ch_le_get32(h + 80), rawlen = ch_le_get32(h + 84);
    uint8_t *raw = ch_malloc(rawlen ? rawlen : 1);
    if (raw == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    size_t d = decompress(s, raw, rawlen, s->map + ix_off, clen);
    if (ZSTD_isError(d) || d != rawlen) {
        ch_free(raw);
        return ch_error_set(err, CH_EPARSE, "index does not decompress");
    }
    ch_free(s->ix_raw);
    s->ix_raw = raw;
    const uint8_t *p = raw, *end = raw + rawlen;
    for (int k = 0; k < CH_IX_NFIELDS; k++)
        if ((rc = parse_field(s, k, &p, end, err)) < 0)
            return rc;
    if (p != end)
        return ch_error_set(err, CH_EPARSE, "index: %zu trailing bytes", (size_t)(end - p));
    for (int k = 0; k < CH_IX_NFIELDS; k++)
        s->ix_loaded[k] = true;
    return 0;
}

static int load_index(ch_seg *s, ch_error *err)
{
    for (int f = 0; f < CH_IX_NFIELDS; f++) {
        int rc = load_field(s, f, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int ch__seg_terms(ch_seg *s, int field, const ch_seg_term **terms, size_t *n, ch_error *err)
{
    if (field < 0 || field >= CH_IX_NFIELDS)
        return ch_error_set(err, CH_EUSAGE, "field %d is not indexed", field);
    int rc = load_field(s, field, err);
    if (rc < 0)
        return rc;
    *terms = s->terms[field];
    *n = s->nterms[field];
    return 0;
}

int ch__seg_postings(const ch_seg_term *t, uint32_t *out, uint32_t nrec)
{
    const uint8_t *p = t->post, *end = t->post + t->postlen;
    uint64_t cur = 0;
    for (uint32_t i = 0; i < t->npost; i++) {
        uint64_t d;
        if (!ch_leb_get(&p, end, &d))
            return CH_EPARSE;
        cur += d;
        if (cur >= nrec || (i > 0 && d == 0))
            return CH_EPARSE;
        out[i] = (uint32_t)cur;
    }
    return 0;
}

int ch__seg_verify(ch_seg *s, ch_error *err)
{
    int rc = load_index(s, err);
    if (rc < 0)
        return rc;
    uint32_t *tmp = ch_malloc(((size_t)s->meta.nrec + 1) * sizeof *tmp);
    if (tmp == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    for (int f = 0; f < CH_IX_NFIELDS && rc == 0; f++)
        for (size_t i = 0; i < s->nterms[f] && rc == 0; i++)
            if (ch__seg_postings(&s->terms[f][i], tmp, s->meta.nrec) < 0)
                rc = ch_error_set(err, CH_EPARSE, "index field %s: damaged postings",
                                  ch__ix_fields[f]);
    ch_free(tmp);
    ch_ev_decoded *d = ch_malloc(sizeof *d);
    if (d == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    uint64_t raw = 0;
    for (uint32_t i = 0; i < s->meta.nrec && rc == 0; i++) {
        const uint8_t *p;
        size_t n;
        if ((rc = ch__seg_record(s, i, &p, &n, err)) < 0)
            break;
        raw += n + 4;
        if (ch__ev_decode(p, n, d) < 0)
            rc = ch_error_set(err, CH_EPARSE, "record %u does not decode", i);
        else if (d->ev.ts_ms < s->meta.min_ts || d->ev.ts_ms > s->meta.max_ts)
            rc = ch_error_set(err, CH_EPARSE, "record %u lies outside the time bounds", i);
    }
    if (rc == 0 && raw != s->meta.raw_bytes)
        rc = ch_error_set(err, CH_EPARSE, "records hold %llu bytes, header says %llu",
                          (unsigned long long)raw, (unsigned long long)s->meta.raw_bytes);
    ch_free(d);
    return rc;
}
