/*
 * segment.c - the segment file: one source type, one hour, sealed once and never changed.
 *
 *     header (128 bytes, CRC32C over itself)
 *     blocks: zstd frames of CH_SEG_BLOCK_RECORDS records, each [u32 length][stored event]
 *             (formats 3, 4: every block's typed-part frame, then every block's
 *             original-record frame)
 *     block table: per block offset, sizes, first record, records, CRC32C of the frame
 *             (formats 3, 4: the same for the original-record frame)
 *     index: one zstd frame per indexed field: sorted term dictionaries with posting lists
 *             (format 5: after a table of the frames' sizes and CRC32Cs; format 6: each field
 *             cut into a directory, a dictionary, posting chunks and a record -> term column)
 *
 * Records are compressed in blocks rather than as one frame so that an indexed lookup
 * decompresses only the blocks its postings name, while blocks stay large enough for zstd
 * to find the repetition between CloudTrail records (the same keys, users and agents).
 * Format 2 compresses every block after the first with the first block's records as its zstd
 * dictionary (raw content): a block then also finds the repetition of the 256 records before
 * it, which took the size from 1.10 to 0.98 of the gzip'd CloudTrail S3 files at level 6
 * (docs/BENCHMARKS.md section 22); reading a later block costs decompressing block 0 once per
 * open segment. Format 3 (written before format 4) keeps each block as two streams: the records'
 * typed parts (the normalized slots every expression on a normalized field reads) and their
 * original parts (the JSON text or flow columns). A search that reads only normalized fields
 * decompresses the typed stream, about a quarter of the bytes, and inflates the original
 * records only of the blocks holding matches it prints (docs/BENCHMARKS.md section 27). Header
 * offset 92 says which of the two streams use block 0 as dictionary. Format 4 is format 3 whose
 * typed frames hold the block's typed parts column by column (evcols.c: 189 raw bytes per event
 * against 406 as rows) and whose original frames take block 0's original records and then the
 * block's own typed columns as their zstd prefix, so the JSON's copies of the typed strings (event
 * id, user, key, agent) cost a match each: 0.95 of the gzip'd S3 files at 0.6 of format 3's
 * compression instructions (docs/BENCHMARKS.md section 30). Its reader rebuilds format 3's typed
 * rows, so nothing above this file tells the two apart. Format 5 is format 4 whose index area
 * starts with a table of its field frames, each with its own CRC32C: formats 1-4 have one
 * checksum over the whole area (about 220 KB in an hour of 28,000 CloudTrail events, all nine
 * fields), which a lookup had to check before using the one field frame it reads (a third of
 * the CPU of a count of a thinly spread value, docs/BENCHMARKS.md sections 32 and 38). Format 6
 * (the one written now) is format 5 whose field frames are cut into independently compressed
 * and checksummed parts, so that a lookup of a thinly spread value inflates a small dictionary
 * and one posting chunk and a count reads its matches' terms from a record -> term column
 * (below, "format 6's index area"; docs/BENCHMARKS.md section 42).
 * Formats 1 (blocks compressed alone), 2, 3, 4 and 5 are still read.
 * A lookup that prints a few records of a block (formats 4-6) inflates its original-record
 * frame only up to the zstd block (128 KB of the frame's ~330 KB) holding the last record asked
 * for, and rebuilds only the asked record's typed row from the columns (docs/BENCHMARKS.md
 * section 48); a scan, which starts at a block's record 0, rebuilds every row at once.
 * Blocks are compressed as they fill (ch__segb_full / ch__segb_compress), by the store's writer
 * threads (local.c), so an open segment keeps only its first block and the one filling raw.
 * A term dictionary is sorted text with delta-varint ordinals (docs/BENCHMARKS.md compares
 * it with a per-segment Bloom filter): one binary search or one pass over the terms answers
 * an equality, a list, a set, a CIDR or a suffix test.
 *
 * Every checksum is verified before its bytes are used, and every length is checked against
 * the file's size, so a damaged segment yields CH_EPARSE with the reason, never a crash (the
 * fuzz target tests/fuzz/fuzz_segment.c feeds damaged ones). The file is read with pread: the
 * header and block table at open, then only the frames a search asks for (a lookup reads a few
 * KB of a 5 MB segment; mapping the whole file cost more in mmap, faults and munmap).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
/* ZSTD_createCDict_advanced: exported by libzstd, declared only under this macro. */
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

#include "core/hash.h"
#include "core/leb.h"
#include "core/mem.h"
#include "ingest/crc32c.h"
#include "store/store_int.h"

#define ZLEVEL 3      /* the index frame */
#define BLOCK_LEVEL 6 /* blocks: docs/BENCHMARKS.md section 22 measured 3 to 6 */
/* format 3's original records: section 27 measured 6 to 19 (the typed stream gains little
 * from a higher level, the JSON does, and a scan never inflates it) */
#define ORIG_LEVEL 12
/* Format 4 (docs/BENCHMARKS.md section 30): the typed columns at 3 (6 saves 3 B per event for
 * twice the CPU); the original records, which take the block's typed columns as prefix, at 6
 * with hash and chain tables of 2^17 entries instead of the level's 2^19 (1.2% more bytes; zstd
 * clears and fills the tables for every frame with a prefix, which took a tenth of the writer's
 * instructions). Level 3 would save half the writer's CPU but come to 1.04 of the gzip'd S3
 * files. */
#define COLS_LEVEL 3
#define COLS_ORIG_LEVEL 6
#define COLS_ORIG_TABLE_LOG 17
/* Hot segments (ch__segb_init_hot): format 3 without block-0 dictionaries, every stream and the
 * index at level 1: of the readable formats and settings measured, the cheapest to write whose
 * bytes stay within 1.5x of the cold ones (docs/BENCHMARKS.md section 53: callgrind of a
 * one-thread analyze of 20k records, 1,379M instructions against format 6's 3,729M and format 6
 * at level 1's 1,563M; level -1 saves 4% more for 26% more bytes, level -90 22% for 3.5x).
 * Format 3 skips the column encoder and format 6's index parts; compaction rewrites them as
 * format 6. */
#define HOT_LEVEL 1
/* `store hot raw` (ch__segb_init_raw): the same format 3 segment whose frames hold their bytes
 * as zstd raw blocks, made here (a block's frames are written from its own buffers,
 * write_stored, in a store as soon as the block fills, to the segment's temporary files,
 * ch__segb_spill: the copy of the original-record file into the segment at the write is the
 * price of not holding the blocks, docs/BENCHMARKS.md section 60; the index's by
 * ch__seg_raw_frame) rather than by libzstd, whose cheapest
 * setting (ZSTD_minCLevel()) still spends 3 instructions per byte looking for matches
 * (docs/BENCHMARKS.md section 57). A level no zstd call ever takes. */
#define RAW_LEVEL INT_MIN

/* COINHOUND_STORE_LEVEL (the typed or only stream) or COINHOUND_STORE_ORIG_LEVEL, for the
 * benchmarks that compare levels: -7 to 19 (zstd's fast negative levels included), read once
 * into *cache; 0 when unset. Any level reads back the same. */
static int env_level(atomic_int *cache, const char *name)
{
    int l = atomic_load_explicit(cache, memory_order_relaxed);
    if (l == 0) {
        const char *v = getenv(name);
        int e = v ? atoi(v) : 0;
        l = e >= -7 && e <= 19 && e != 0 ? e + 100 : 1; /* 1: unset */
        atomic_store_explicit(cache, l, memory_order_relaxed);
    }
    return l == 1 ? 0 : l - 100;
}

static int block_level(uint32_t format)
{
    static atomic_int level; /* the writer thread and a test's own thread may both ask */
    int l = env_level(&level, "COINHOUND_STORE_LEVEL");
    return l ? l : format == CH_SEG_FORMAT_COLS ? COLS_LEVEL : BLOCK_LEVEL;
}

static int orig_level(uint32_t format)
{
    static atomic_int level;
    int l = env_level(&level, "COINHOUND_STORE_ORIG_LEVEL");
    return l ? l : format == CH_SEG_FORMAT_COLS ? COLS_ORIG_LEVEL : ORIG_LEVEL;
}

/* The format a new segment is written in: 6, or COINHOUND_STORE_FORMAT=2, 3, 4 or 5 (the
 * benchmarks compare them on the same binary, the tests write the older ones to read them back).
 * Which streams of formats 3 and 4 take block 0 as dictionary: COINHOUND_STORE_DICT=typed,orig
 * (names, comma separated, or "none"); by default both (docs/BENCHMARKS.md section 27: the
 * typed stream's dictionary saves a quarter of its bytes). */
static void write_format(uint32_t *format, uint32_t *flags)
{
    static atomic_uint fmt, fl; /* fl is set before fmt, both once */
    uint32_t f = atomic_load_explicit(&fmt, memory_order_acquire);
    if (f == 0) {
        const char *v = getenv("COINHOUND_STORE_FORMAT");
        int want = v ? atoi(v) : 0;
        uint32_t nf = want == CH_SEG_FORMAT_DICT     ? CH_SEG_FORMAT_DICT
                      : want == CH_SEG_FORMAT_SPLIT  ? CH_SEG_FORMAT_SPLIT
                      : want == CH_SEG_FORMAT_COLS   ? CH_SEG_FORMAT_COLS
                      : want == CH_SEG_FORMAT_FIELDS ? CH_SEG_FORMAT_FIELDS
                                                     : CH_SEG_FORMAT_CHUNKS;
        const char *d = getenv("COINHOUND_STORE_DICT");
        uint32_t nfl = CH_SEG_TYPED_DICT | CH_SEG_ORIG_DICT;
        if (d != NULL)
            nfl = (strstr(d, "typed") ? CH_SEG_TYPED_DICT : 0) |
                  (strstr(d, "orig") ? CH_SEG_ORIG_DICT : 0);
        atomic_store_explicit(&fl, nfl, memory_order_relaxed);
        atomic_store_explicit(&fmt, nf, memory_order_release);
        f = nf;
    }
    *format = f;
    *flags = f >= CH_SEG_FORMAT_SPLIT ? atomic_load_explicit(&fl, memory_order_relaxed) : 0;
}

#define BT_ENTRY 32  /* formats 1 and 2 */
#define BT_ENTRY3 48 /* formats 3, 4: the typed frame's entry, then the original frame's */
#define MAX_BLOCK_RAW ((size_t)256 << 20)
#define MAX_INDEX_RAW ((size_t)1 << 30)
/* Format 5's field table at the start of the index area: per field its frame's compressed
 * size, raw size and CRC32C (u32 each); the frames follow in field order. */
#define IXTAB_ENTRY 12
#define IXTAB (CH_IX_NFIELDS * IXTAB_ENTRY)

/* ---- builder ---- */

void ch__segb_init(ch_seg_builder *b, uint32_t dataset, int64_t hour)
{
    memset(b, 0, sizeof *b);
    b->dataset = dataset;
    b->hour = hour;
    write_format(&b->format, &b->flags);
    for (int i = 0; i < CH_IX_NFIELDS; i++)
        ch_buf_init(&b->terms[i], (size_t)1 << 31);
    b->min_ts = INT64_MAX;
    b->max_ts = INT64_MIN;
    b->sfd = b->sofd = -1;
}

void ch__segb_init_hot(ch_seg_builder *b, uint32_t dataset, int64_t hour)
{
    ch__segb_init(b, dataset, hour);
    b->format = CH_SEG_FORMAT_SPLIT;
    b->flags = 0;
    b->level = HOT_LEVEL;
}

void ch__segb_init_raw(ch_seg_builder *b, uint32_t dataset, int64_t hour)
{
    ch__segb_init_hot(b, dataset, hour);
    b->level = RAW_LEVEL;
}

bool ch__segb_is_raw(const ch_seg_builder *b) { return b->level == RAW_LEVEL; }

/* A zstd frame (RFC 8878) of raw blocks: magic; a frame header descriptor saying "4-byte
 * content size, a window descriptor, no checksum, no dictionary"; a window of 128 KiB (the
 * largest block, so any decoder, streaming ones included, needs no more); the content size;
 * then the bytes in blocks of at most 128 KiB, each behind a 3-byte header (last-block bit,
 * type 0 = raw, size). Empty input is one empty last block, as libzstd writes it. */
#define RAW_BLOCK ((size_t)128 << 10)
/* The header's page stays cached (every open reads it); advice is taken in whole folios. */
#define CACHE_PAGE 4096u
#define RAW_HEADER 10

size_t ch__seg_raw_bound(size_t n) { return RAW_HEADER + 3 * (n / RAW_BLOCK + 1) + n; }

static void raw_frame_header(uint8_t d[RAW_HEADER], size_t n)
{
    ch_le_put32(d, 0xFD2FB528u);
    d[4] = 0x80; /* content size in 4 bytes; not single-segment; no checksum, no dictionary */
    d[5] = 0x38; /* window: 2^(10 + 7) bytes */
    ch_le_put32(d + 6, (uint32_t)n);
}

/* The header of the raw block of c bytes that ends a frame (last) or not. */
static void raw_block_header(uint8_t d[3], size_t c, bool last)
{
    uint32_t bh = (uint32_t)(c << 3) | (last ? 1u : 0u);
    d[0] = (uint8_t)bh;
    d[1] = (uint8_t)(bh >> 8);
    d[2] = (uint8_t)(bh >> 16);
}

/* The raw blocks of n bytes: at least one (an empty frame has one empty block). */
static size_t raw_blocks(size_t n) { return n == 0 ? 1 : (n + RAW_BLOCK - 1) / RAW_BLOCK; }

/* The size of n bytes' raw frame. */
static size_t raw_frame_len(size_t n) { return RAW_HEADER + 3 * raw_blocks(n) + n; }

size_t ch__seg_raw_frame(uint8_t *dst, const void *src, size_t n)
{
    const uint8_t *s = src;
    uint8_t *d = dst;
    raw_frame_header(d, n);
    d += RAW_HEADER;
    size_t left = n;
    do {
        size_t c = left < RAW_BLOCK ? left : RAW_BLOCK;
        raw_block_header(d, c, c == left);
        memcpy(d + 3, s, c);
        d += 3 + c;
        s += c;
        left -= c;
    } while (left > 0);
    return (size_t)(d - dst);
}

/* The size and CRC32C of src's raw frame, which ch__segb_write writes from src itself
 * (write_stored): a stored block is not copied into a frame buffer (section 57: the copy and
 * the fresh pages it took were a tenth of a raw seal's CPU). */
static void stored_frame(const ch_buf *src, size_t *zlen, uint32_t *crc)
{
    uint8_t h[RAW_HEADER];
    raw_frame_header(h, src->len);
    uint32_t c = ch_crc32c(0, h, sizeof h);
    const uint8_t *p = (const uint8_t *)src->data;
    size_t left = src->len;
    do {
        size_t n = left < RAW_BLOCK ? left : RAW_BLOCK;
        uint8_t bh[3];
        raw_block_header(bh, n, n == left);
        c = ch_crc32c(c, bh, 3);
        c = ch_crc32c(c, p, n);
        p += n;
        left -= n;
    } while (left > 0);
    *zlen = raw_frame_len(src->len);
    *crc = c;
}

/* The temporary files of a spilling builder: <base>.seg.tmp (the segment, renamed at the
 * write, with its original-record frames in place) and <base>-t.seg.tmp (its typed frames,
 * appended at the write). Both end in .seg.tmp, the suffix the store removes at open after a
 * crash. */
static void spill_name(const ch_seg_builder *b, bool typed, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s%s.seg.tmp", b->spath, typed ? "-t" : "");
}

int ch__segb_spill(ch_seg_builder *b, const char *base)
{
    size_t n = strlen(base) + 1;
    if ((b->spath = ch_malloc(n)) == NULL)
        return CH_ENOMEM;
    memcpy(b->spath, base, n);
    return 0;
}

/* Create the spill files when the first block fills. A failure leaves the builder in memory,
 * as an unspilled raw builder (the same bytes; the write reports a full disk, if that was it). */
static bool spill_open(ch_seg_builder *b)
{
    if (b->sfd >= 0)
        return true;
    char p[4400];
    spill_name(b, false, p, sizeof p);
    b->sfd = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    spill_name(b, true, p, sizeof p);
    b->sofd = b->sfd >= 0 ? open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640) : -1;
    if (b->sofd < 0) {
        if (b->sfd >= 0) {
            close(b->sfd);
            spill_name(b, false, p, sizeof p);
            unlink(p);
        }
        b->sfd = -1;
        ch_free(b->spath);
        b->spath = NULL;
        return false;
    }
    b->stoff = CH_SEG_HEADER;
    b->sooff = 0;
    return true;
}

/* Close and remove the typed frames' spill file (or the segment's temporary file) if still
 * open. */
static void spill_drop(ch_seg_builder *b, bool typed)
{
    int *fd = typed ? &b->sofd : &b->sfd;
    if (*fd < 0)
        return;
    close(*fd);
    *fd = -1;
    char p[4400];
    spill_name(b, typed, p, sizeof p);
    unlink(p);
}

static void block_free(ch_seg_block *k)
{
    if (k == NULL)
        return;
    ch_buf_free(&k->raw);
    ch_buf_free(&k->orig);
    ch_buf_free(&k->tcol);
    ch_free(k->toff);
    ch_free(k->z);
    ch_free(k->oz);
    ZSTD_freeCDict(k->cdict);
    ZSTD_freeCDict(k->ocdict);
    ch_free(k);
}

void ch__segb_free(ch_seg_builder *b)
{
    spill_drop(b, false);
    spill_drop(b, true);
    ch_free(b->spath);
    b->spath = NULL;
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
        ch_seg_block **nb = ch_grow(b->blocks, &b->capblocks, 16, sizeof *nb);
        if (nb == NULL)
            return NULL;
        b->blocks = nb;
    }
    ch_seg_block *k = ch_calloc(1, sizeof *k);
    if (k == NULL)
        return NULL;
    k->sfd = k->sofd = -1;
    ch_buf_init(&k->raw, MAX_BLOCK_RAW);
    ch_buf_init(&k->orig, MAX_BLOCK_RAW);
    ch_buf_init(&k->tcol, MAX_BLOCK_RAW);
    if (b->nblocks) {
        /* Room for a block like the last one, taken at once: growing two buffers by doubling
         * cost the pipeline's thread a realloc and copy every few records (callgrind: 2.2k
         * instructions per event, docs/BENCHMARKS.md section 30). */
        const ch_seg_block *prev = b->blocks[b->nblocks - 1];
        if (ch_buf_reserve(&k->raw, prev->rawlen + prev->rawlen / 8) < 0 ||
            ch_buf_reserve(&k->orig, prev->origlen + prev->origlen / 8) < 0) {
            block_free(k);
            return NULL;
        }
    }
    /* Format 5's and 6's blocks are format 4's: only their index area differs. */
    k->format = b->format >= CH_SEG_FORMAT_FIELDS ? CH_SEG_FORMAT_COLS : b->format;
    if (k->format == CH_SEG_FORMAT_COLS &&
        (k->toff = ch_malloc(CH_SEG_BLOCK_RECORDS * sizeof *k->toff)) == NULL) {
        block_free(k);
        return NULL;
    }
    k->flags = b->flags;
    k->level = b->level;
    k->first = b->nrec;
    k->dict = b->nblocks ? b->blocks[0] : NULL;
    b->blocks[b->nblocks++] = k;
    return k;
}

/* The terms of the record being added (ordinal b->nrec). On failure the terms lists are left as
 * they were: the record is not added, and a term of it left behind would point a lookup at the
 * next record. */
static int add_terms(ch_seg_builder *b, const ch_event *ev)
{
    uint32_t ord = b->nrec;
    size_t was[CH_IX_NFIELDS];
    for (int i = 0; i < CH_IX_NFIELDS; i++) {
        was[i] = b->terms[i].len;
        char tb[64];
        ch_sv t;
        if (ch__ix_terms(ev, i, tb, &t) == 0)
            continue;
        uint8_t hdr[8];
        ch_le_put32(hdr, ord);
        ch_le_put32(hdr + 4, t.n);
        if (ch_buf_add(&b->terms[i], hdr, 8) < 0 || ch_buf_add(&b->terms[i], t.p, t.n) < 0) {
            for (int j = 0; j <= i; j++)
                b->terms[j].len = was[j];
            return CH_ENOMEM;
        }
    }
    return 0;
}

int ch__segb_add(ch_seg_builder *b, const ch_event *ev, uint64_t rid)
{
    ch_seg_block *k = filling(b);
    if (k == NULL)
        return CH_ENOMEM;
    size_t start = k->raw.len, ostart = k->orig.len;
    uint8_t lenb[4] = {0};
    bool split = k->format >= CH_SEG_FORMAT_SPLIT;
    int erc = ch_buf_add(&k->raw, lenb, 4) < 0 ? CH_ENOMEM
              : split ? ch__ev_encode_typed_at(ev, rid, &k->raw, k->toff ? k->toff[k->cnt] : NULL)
                      : ch__ev_encode(ev, rid, &k->raw);
    if (erc == 0 && split)
        erc = ch_buf_add(&k->orig, lenb, 4) < 0 ? CH_ENOMEM : ch__ev_encode_orig(ev, &k->orig);
    if (erc == 0)
        erc = add_terms(b, ev);
    if (erc < 0) {
        k->raw.len = start;
        k->orig.len = ostart;
        return CH_ENOMEM;
    }
    ch_le_put32((uint8_t *)k->raw.data + start, (uint32_t)(k->raw.len - start - 4));
    if (split)
        ch_le_put32((uint8_t *)k->orig.data + ostart, (uint32_t)(k->orig.len - ostart - 4));
    k->cnt++;
    k->rawlen = (uint32_t)k->raw.len;
    k->origlen = (uint32_t)k->orig.len;
    b->raw_bytes += k->raw.len - start + k->orig.len - ostart;
    b->nrec++;
    if (k->cnt == CH_SEG_BLOCK_RECORDS && b->spath != NULL && k->level == RAW_LEVEL &&
        k->format == CH_SEG_FORMAT_SPLIT && spill_open(b)) {
        /* Its frames' places, known now: every block before it filled and was placed. A raw
         * segment's original frames come first in the file (ch__segb_write), so they go in
         * place in the segment's temporary file and the typed ones to the other. */
        k->sfd = b->sfd;
        k->sofd = b->sofd;
        k->soff = b->stoff;
        k->sooff = b->sooff;
        b->stoff += raw_frame_len(k->orig.len);
        b->sooff += raw_frame_len(k->raw.len);
    }
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

static int compress_with(ZSTD_CCtx *cctx, int level, const ch_buf *src, const ZSTD_CDict *cdict,
                         const ch_buf *pfx, uint8_t **out, size_t *outlen, uint32_t *crc,
                         ch_error *err);

static pthread_mutex_t cdict_mu = PTHREAD_MUTEX_INITIALIZER;

/* Compress src[0..n) into a fitted frame (*out, *outlen, *crc), with block 0's bytes dsrc as a
 * raw-content dictionary (prepared once into *cdict) when dsrc is not NULL. */
static int compress_frame(ZSTD_CCtx *cctx, int level, const ch_buf *src, const ch_buf *dsrc,
                          void **cdict, uint8_t **out, size_t *outlen, uint32_t *crc, ch_error *err)
{
    const ZSTD_CDict *use = NULL;
    if (dsrc != NULL) {
        /* Made by the first later block that needs it; the store's writer threads may compress
         * two such blocks of one segment at once (local.c), hence the lock. */
        pthread_mutex_lock(&cdict_mu);
        if (*cdict == NULL) {
            /* Tables sized for a block and this dictionary (ZSTD_createCDict would size them
             * for input of unknown size: megabytes more per open segment). Raw content by
             * reference: block 0 outlives the segment's compression. */
            ZSTD_compressionParameters cp = ZSTD_getCParams(level, dsrc->len, dsrc->len);
            *cdict = ZSTD_createCDict_advanced(dsrc->data, dsrc->len, ZSTD_dlm_byRef,
                                               ZSTD_dct_rawContent, cp, ZSTD_defaultCMem);
        }
        use = *cdict;
        pthread_mutex_unlock(&cdict_mu);
        if (use == NULL)
            return ch_error_set(err, CH_ENOMEM, "out of memory");
    }
    return compress_with(cctx, level, src, use, NULL, out, outlen, crc, err);
}

/* Compress src with cdict, or with pfx as a one-time prefix (format 4's original records), or
 * alone, into a fitted frame. */
static int compress_with(ZSTD_CCtx *cctx, int level, const ch_buf *src, const ZSTD_CDict *cdict,
                         const ch_buf *pfx, uint8_t **out, size_t *outlen, uint32_t *crc,
                         ch_error *err)
{
    size_t bound = ZSTD_compressBound(src->len);
    uint8_t *z = ch_malloc(bound);
    if (z == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    size_t c;
    if (pfx != NULL) {
        c = ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
        if (!ZSTD_isError(c) && level == COLS_ORIG_LEVEL) {
            c = ZSTD_CCtx_setParameter(cctx, ZSTD_c_hashLog, COLS_ORIG_TABLE_LOG);
            if (!ZSTD_isError(c))
                c = ZSTD_CCtx_setParameter(cctx, ZSTD_c_chainLog, COLS_ORIG_TABLE_LOG);
        }
        if (!ZSTD_isError(c))
            c = ZSTD_CCtx_refPrefix(cctx, pfx->data, pfx->len);
        if (!ZSTD_isError(c))
            c = ZSTD_compress2(cctx, z, bound, src->data, src->len);
        ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters);
    } else {
        c = cdict ? ZSTD_compress_usingCDict(cctx, z, bound, src->data, src->len, cdict)
                  : ZSTD_compressCCtx(cctx, z, bound, src->data, src->len, level);
    }
    if (ZSTD_isError(c)) {
        ch_free(z);
        return ch_error_set(err, CH_ERR, "zstd: %s", ZSTD_getErrorName(c));
    }
    /* Shrink to fit: a sealed segment's frames wait in memory until the writer gets to them. */
    uint8_t *fit = ch_realloc(z, c ? c : 1);
    *out = fit ? fit : z;
    *outlen = c;
    *crc = ch_crc32c(0, *out, c);
    return 0;
}

/* Format 4: the block's typed parts as columns, once. */
static int block_cols(ch_seg_block *k, ch_error *err)
{
    if (k->tcol.len != 0)
        return 0;
    int rc =
        k->toff ? ch__evcols_encode_at((const uint8_t *)k->raw.data, k->raw.len, k->cnt,
                                       (const uint32_t(*)[CH_EV_TYPED_ITEMS + 1]) k->toff, &k->tcol)
                : ch__evcols_encode((const uint8_t *)k->raw.data, k->raw.len, k->cnt, &k->tcol);
    if (rc == CH_ENOMEM)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    if (rc < 0)
        return ch_error_set(err, CH_ERR, "block %u: typed parts do not split into columns",
                            k->first / CH_SEG_BLOCK_RECORDS);
    return 0;
}

static int write_stored(int fd, const ch_buf *src, int64_t at);

int ch__segb_compress(ch_seg_block *k, void *cctx, ch_error *err)
{
    if (k->z != NULL || k->stored)
        return 0;
    if (k->level == RAW_LEVEL && k->format == CH_SEG_FORMAT_SPLIT) {
        /* `store hot raw`: the frames are the block's own buffers, kept until the write. */
        k->zrawlen = k->rawlen;
        stored_frame(&k->raw, &k->zlen, &k->crc);
        stored_frame(&k->orig, &k->ozlen, &k->ocrc);
        k->stored = true;
        ch_free(k->toff);
        k->toff = NULL;
        if (k->sfd >= 0) {
            /* Spilled: the frames go to their places in the temporary files now and the
             * buffers are freed, so a sealed raw segment waits for its write holding its index
             * terms and its last block only. */
            if (write_stored(k->sfd, &k->orig, (int64_t)k->soff) < 0 ||
                write_stored(k->sofd, &k->raw, (int64_t)k->sooff) < 0)
                return ch_error_set(err, CH_EIO, "block %u of a segment being sealed: %s",
                                    k->first / CH_SEG_BLOCK_RECORDS, strerror(errno));
            ch_buf_free(&k->raw);
            ch_buf_free(&k->orig);
            ch_buf_free(&k->tcol);
            k->spilled = true;
        }
        return 0;
    }
    /* Block 0 is full and never written again once a later block exists, so its bytes can
     * serve as the dictionary of every later block of the segment. */
    ch_seg_block *d = k->dict;
    int rc;
    uint32_t fm = k->format;
    k->zrawlen = k->rawlen;
    if (fm < CH_SEG_FORMAT_SPLIT) {
        rc =
            compress_frame(cctx, k->level ? k->level : block_level(fm), &k->raw, d ? &d->raw : NULL,
                           d ? &d->cdict : NULL, &k->z, &k->zlen, &k->crc, err);
    } else {
        bool td = d && (k->flags & CH_SEG_TYPED_DICT), od = d && (k->flags & CH_SEG_ORIG_DICT);
        const ch_buf *typed = &k->raw, *tdict = td ? &d->raw : NULL;
        rc = 0;
        if (fm == CH_SEG_FORMAT_COLS) {
            /* Block 0's columns are its later blocks' dictionary: the writer compresses block 0
             * first, so they exist by then; made here when a caller skipped it. */
            if ((rc = block_cols(k, err)) == 0 && td)
                rc = block_cols(d, err);
            typed = &k->tcol;
            tdict = td ? &d->tcol : NULL;
            k->zrawlen = (uint32_t)k->tcol.len;
        }
        if (rc == 0)
            rc = compress_frame(cctx, k->level ? k->level : block_level(fm), typed, tdict,
                                td ? &d->cdict : NULL, &k->z, &k->zlen, &k->crc, err);
        if (rc == 0 && fm == CH_SEG_FORMAT_COLS) {
            /* The original records repeat the typed part's strings (event id, user, key, agent,
             * address): their frame takes the block's typed columns as a prefix, after block
             * 0's records when that dictionary is on. A reader of a block's original records
             * has its typed frame in hand (a printed match shows both). */
            ch_buf pfx;
            ch_buf_init(&pfx, MAX_BLOCK_RAW * 2);
            /* Sized once: growing it by doubling copied block 0's records twice per block. */
            if (ch_buf_reserve(&pfx, (od ? d->orig.len : 0) + k->tcol.len) < 0 ||
                (od && ch_buf_add(&pfx, d->orig.data, d->orig.len) < 0) ||
                ch_buf_add(&pfx, k->tcol.data, k->tcol.len) < 0)
                rc = ch_error_set(err, CH_ENOMEM, "out of memory");
            else
                rc = compress_with(cctx, k->level ? k->level : orig_level(fm), &k->orig, NULL, &pfx,
                                   &k->oz, &k->ozlen, &k->ocrc, err);
            ch_buf_free(&pfx);
        } else if (rc == 0)
            rc = compress_frame(cctx, k->level ? k->level : orig_level(fm), &k->orig,
                                od ? &d->orig : NULL, od ? &d->ocdict : NULL, &k->oz, &k->ozlen,
                                &k->ocrc, err);
        if (rc < 0) {
            ch_free(k->z);
            k->z = NULL;
        }
    }
    if (rc < 0)
        return rc;
    ch_free(k->toff);
    k->toff = NULL;
    if (k->first != 0) {
        ch_buf_free(&k->raw);
        ch_buf_free(&k->orig);
        ch_buf_free(&k->tcol);
    }
    return 0;
}

/* One distinct term of a field: its bytes and its chain of entries (in ordinal order). */
typedef struct uterm {
    const char *p;
    uint32_t n;
    uint32_t head, tail; /* entry indexes; next[] links them */
    uint32_t count;
} uterm;

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
        /* the distinct terms in order (termsort.c: a prefix-keyed merge sort, not qsort) */
        ch_tsort *ord = nu ? ch_malloc(nu * sizeof *ord) : NULL;
        for (size_t i = 0; ord && i < nu; i++)
            ord[i] = (ch_tsort){ch__tsort_key(u[i].p, u[i].n), u[i].p, u[i].n, (uint32_t)i};
        if ((nu && ord == NULL) || ch__tsort(ord, nu) < 0)
            rc = CH_ENOMEM;
        if (rc == 0)
            rc |= ch_leb_put(out, nu);
        for (size_t r = 0; r < nu && rc == 0; r++) {
            const uterm *t = &u[ord[r].tie];
            ch_buf_clear(&post);
            uint32_t prev = 0;
            for (uint32_t e = t->head; e != UINT32_MAX; e = next[e]) {
                rc |= ch_leb_put(&post, ords[e] - prev);
                prev = ords[e];
            }
            rc |= ch_leb_put(out, t->n);
            rc |= ch_buf_add(out, t->p, t->n);
            rc |= ch_leb_put(out, t->count);
            rc |= ch_leb_put(out, post.len);
            rc |= ch_buf_add(out, post.data, post.len);
        }
        ch_free(ord);
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
 * whose source.ip dictionary dominates (docs/BENCHMARKS.md section 18). tab (format 5): the
 * field table, IXTAB bytes, filled with each frame's sizes and CRC32C; NULL for formats 1-4,
 * whose one checksum covers the whole area. */
static int compress_index(ZSTD_CCtx *cctx, int level, const ch_buf *idx, ch_buf *file, uint8_t *tab,
                          ch_error *err)
{
    const uint8_t *p = (const uint8_t *)idx->data, *end = p + idx->len;
    for (int f = 0; f < CH_IX_NFIELDS; f++) {
        const uint8_t *e;
        if (!field_end(p, end, &e))
            return ch_error_set(err, CH_ERR, "index field %d does not parse", f);
        bool raw = level == RAW_LEVEL;
        size_t bound =
            raw ? ch__seg_raw_bound((size_t)(e - p)) : ZSTD_compressBound((size_t)(e - p));
        if (ch_buf_reserve(file, bound) < 0)
            return ch_error_set(err, CH_ENOMEM, "out of memory");
        size_t c =
            raw ? ch__seg_raw_frame((uint8_t *)file->data + file->len, p, (size_t)(e - p))
                : ZSTD_compressCCtx(cctx, file->data + file->len, bound, p, (size_t)(e - p), level);
        if (ZSTD_isError(c))
            return ch_error_set(err, CH_ERR, "zstd: %s", ZSTD_getErrorName(c));
        if (tab != NULL) {
            ch_le_put32(tab + f * IXTAB_ENTRY, (uint32_t)c);
            ch_le_put32(tab + f * IXTAB_ENTRY + 4, (uint32_t)(e - p));
            ch_le_put32(tab + f * IXTAB_ENTRY + 8,
                        ch_crc32c(0, (const uint8_t *)file->data + file->len, c));
        }
        file->len += c;
        p = e;
    }
    return p == end ? 0 : ch_error_set(err, CH_ERR, "index: trailing bytes");
}

/* ---- format 6's index area ----
 *
 *     field table: per field u32 region size, u32 directory size, u32 directory CRC32C
 *     per field, its region: the directory (uncompressed), then zstd frames: the dictionary,
 *         the posting chunks in term order, the column chunks in record order
 *     directory: u32 terms, posting chunks, column chunks, column width (bytes per record);
 *         the dictionary's compressed size, raw size and CRC32C; per posting chunk its first
 *         term, compressed size, raw size and CRC32C; per column chunk its compressed size and
 *         CRC32C (its raw size is the width times its records)
 *     dictionary: per term, LEB128 length and bytes, posting count, posting bytes
 *     posting chunk: the delta-varint ordinals of its terms, back to back
 *     column chunk: per record of its CH_SEG_FWD_RECORDS, 1 + the number of its term in the
 *         field (0: none), little-endian in width bytes
 *
 * Why: formats 1-5 keep a field as one frame, terms and postings together, so a lookup of a
 * thinly spread value inflated the whole field (37 KB compressed for user.name in an hour of
 * 28k CloudTrail events) and a count grouped by another field inflated that field too and
 * walked every posting of it up to the last match (docs/BENCHMARKS.md sections 38 and 42).
 * Posting chunks of about IX6_CHUNK raw bytes, cut at term boundaries, let a lookup inflate the
 * small dictionary and one chunk; the column answers "which term does record r have" for the
 * few matches of a count. Postings compress little (their deltas are near random), so cutting
 * them costs little; the column is the part that adds bytes (docs/BENCHMARKS.md section 42). */
#define IX6_CHUNK 4096
#define IX6_DIR 28
#define IX6_PENT 16
#define IX6_FENT 8

static int ix6_frame(ZSTD_CCtx *cctx, const void *p, size_t n, ch_buf *out, uint32_t *clen,
                     uint32_t *crc, ch_error *err)
{
    size_t bound = ZSTD_compressBound(n);
    if (ch_buf_reserve(out, bound) < 0)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    size_t c = ZSTD_compressCCtx(cctx, out->data + out->len, bound, p, n, ZLEVEL);
    if (ZSTD_isError(c))
        return ch_error_set(err, CH_ERR, "zstd: %s", ZSTD_getErrorName(c));
    *clen = (uint32_t)c;
    *crc = ch_crc32c(0, (const uint8_t *)out->data + out->len, c);
    out->len += c;
    return 0;
}

/* Does a term of npost postings in a segment of nrec records keep them in the column only?
 * Above 1/256 of the records (and 64), its postings are most of the field's posting bytes
 * (generated CloudTrail: 64% of user.name's, 92% of event.action's), and a lookup of it reads the
 * field's whole column (about what format 5 inflated for any lookup); a thin term's are in a chunk.
 */
static bool ix6_thick(uint64_t npost, uint64_t nrec) { return npost > 64 && npost * 256 > nrec; }

static uint32_t ix6_width(uint64_t nterms)
{
    return nterms == 0 ? 0 : nterms < 0xff ? 1 : nterms < 0xffff ? 2 : nterms < 0xffffff ? 3 : 4;
}

/* One field's region (directory and frames) from its raw dictionary p[0..end), appended to
 * area; its table entry into tab. */
static int ix6_field(ZSTD_CCtx *cctx, const uint8_t *p, const uint8_t *end, uint32_t nrec, int f,
                     ch_buf *area, uint8_t *tab, ch_error *err)
{
    ch_buf dict, dir, post, frames, chunks;
    ch_buf_init(&chunks, MAX_INDEX_RAW);
    ch_buf_init(&dict, MAX_INDEX_RAW);
    ch_buf_init(&dir, MAX_INDEX_RAW);
    ch_buf_init(&post, MAX_INDEX_RAW);
    ch_buf_init(&frames, MAX_INDEX_RAW);
    uint32_t *fwd = NULL;
    uint8_t *col = NULL;
    int rc = 0;
    uint64_t nt;
    if (!ch_leb_get(&p, end, &nt) || nt > UINT32_MAX) {
        rc = ch_error_set(err, CH_ERR, "index field %d does not parse", f);
        goto cleanup;
    }
    uint32_t width = ix6_width(nt);
    uint32_t nfc = nt ? (nrec + CH_SEG_FWD_RECORDS - 1) / CH_SEG_FWD_RECORDS : 0;
    if (nt && (fwd = ch_calloc(nrec ? nrec : 1, sizeof *fwd)) == NULL) {
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        goto cleanup;
    }
    uint8_t hd[IX6_DIR] = {0};
    if (ch_buf_add(&dir, hd, sizeof hd) < 0) {
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        goto cleanup;
    }
    /* the dictionary, and the posting chunks compressed as they close (into chunks: the
     * dictionary's frame goes before them in the file, and is known only at the end) */
    uint32_t np = 0, first = 0;
    for (uint64_t i = 0; i < nt && rc == 0; i++) {
        uint64_t tl, npost, pl;
        if (!ch_leb_get(&p, end, &tl) || tl > (uint64_t)(end - p)) {
            rc = ch_error_set(err, CH_ERR, "index field %d does not parse", f);
            break;
        }
        const uint8_t *tp = p;
        p += tl;
        if (!ch_leb_get(&p, end, &npost) || !ch_leb_get(&p, end, &pl) || pl > (uint64_t)(end - p)) {
            rc = ch_error_set(err, CH_ERR, "index field %d does not parse", f);
            break;
        }
        /* A frequent term keeps no postings: the column has them (dictionary posting bytes
         * 0). A chunk closes before a term that would take it past IX6_CHUNK. */
        bool thick = ix6_thick(npost, nrec);
        if (!thick && post.len > 0 && post.len + pl > IX6_CHUNK) {
            uint8_t e[IX6_PENT];
            uint32_t cl, cc;
            ch_le_put32(e, first);
            ch_le_put32(e + 8, (uint32_t)post.len);
            if ((rc = ix6_frame(cctx, post.data, post.len, &chunks, &cl, &cc, err)) < 0)
                break;
            ch_le_put32(e + 4, cl);
            ch_le_put32(e + 12, cc);
            if (ch_buf_add(&dir, e, sizeof e) < 0) {
                rc = ch_error_set(err, CH_ENOMEM, "out of memory");
                break;
            }
            np++;
            ch_buf_clear(&post);
        }
        if (post.len == 0 && !thick)
            first = (uint32_t)i;
        if (ch_leb_put(&dict, tl) < 0 || ch_buf_add(&dict, tp, tl) < 0 ||
            ch_leb_put(&dict, npost) < 0 || ch_leb_put(&dict, thick ? 0 : pl) < 0 ||
            (!thick && ch_buf_add(&post, p, pl) < 0)) {
            rc = ch_error_set(err, CH_ENOMEM, "out of memory");
            break;
        }
        /* the column: every ordinal of the term */
        const uint8_t *q = p, *qe = p + pl;
        uint64_t cur = 0;
        for (uint64_t k = 0; k < npost; k++) {
            uint64_t d;
            if (!ch_leb_get(&q, qe, &d) || (cur += d) >= nrec) {
                rc = ch_error_set(err, CH_ERR, "index field %d: bad postings", f);
                break;
            }
            fwd[cur] = (uint32_t)i + 1;
        }
        p += pl;
    }
    if (rc == 0 && post.len > 0) {
        uint8_t e[IX6_PENT];
        uint32_t cl, cc;
        ch_le_put32(e, first);
        ch_le_put32(e + 8, (uint32_t)post.len);
        if ((rc = ix6_frame(cctx, post.data, post.len, &chunks, &cl, &cc, err)) == 0) {
            ch_le_put32(e + 4, cl);
            ch_le_put32(e + 12, cc);
            if (ch_buf_add(&dir, e, sizeof e) < 0)
                rc = ch_error_set(err, CH_ENOMEM, "out of memory");
            np++;
        }
    }
    uint32_t dcl = 0, dcc = 0;
    if (rc == 0)
        rc = ix6_frame(cctx, dict.data, dict.len, &frames, &dcl, &dcc, err);
    if (rc == 0 && chunks.len > 0 && ch_buf_add(&frames, chunks.data, chunks.len) < 0)
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
    if (rc == 0 && nfc && (col = ch_malloc((size_t)CH_SEG_FWD_RECORDS * width)) == NULL)
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
    for (uint32_t c = 0; c < nfc && rc == 0; c++) {
        uint32_t lo = c * CH_SEG_FWD_RECORDS;
        uint32_t cnt = nrec - lo < CH_SEG_FWD_RECORDS ? nrec - lo : CH_SEG_FWD_RECORDS;
        for (uint32_t r = 0; r < cnt; r++)
            for (uint32_t b = 0; b < width; b++)
                col[(size_t)r * width + b] = (uint8_t)(fwd[lo + r] >> (8 * b));
        uint8_t e[IX6_FENT];
        uint32_t cl, cc;
        if ((rc = ix6_frame(cctx, col, (size_t)cnt * width, &frames, &cl, &cc, err)) < 0)
            break;
        ch_le_put32(e, cl);
        ch_le_put32(e + 4, cc);
        if (ch_buf_add(&dir, e, sizeof e) < 0)
            rc = ch_error_set(err, CH_ENOMEM, "out of memory");
    }
    if (rc < 0)
        goto cleanup;
    uint8_t *d = (uint8_t *)dir.data;
    ch_le_put32(d, (uint32_t)nt);
    ch_le_put32(d + 4, np);
    ch_le_put32(d + 8, nfc);
    ch_le_put32(d + 12, width);
    ch_le_put32(d + 16, dcl);
    ch_le_put32(d + 20, (uint32_t)dict.len);
    ch_le_put32(d + 24, dcc);
    ch_le_put32(tab + f * IXTAB_ENTRY, (uint32_t)(dir.len + frames.len));
    ch_le_put32(tab + f * IXTAB_ENTRY + 4, (uint32_t)dir.len);
    ch_le_put32(tab + f * IXTAB_ENTRY + 8, ch_crc32c(0, d, dir.len));
    if (ch_buf_add(area, dir.data, dir.len) < 0 ||
        (frames.len > 0 && ch_buf_add(area, frames.data, frames.len) < 0))
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
cleanup:
    ch_free(fwd);
    ch_free(col);
    ch_buf_free(&dict);
    ch_buf_free(&dir);
    ch_buf_free(&post);
    ch_buf_free(&frames);
    ch_buf_free(&chunks);
    return rc;
}

int ch__seg_index6(void *cctx, const uint8_t *raw, size_t n, uint32_t nrec, ch_buf *area,
                   ch_error *err)
{
    uint8_t tab[IXTAB] = {0};
    size_t at = area->len;
    if (ch_buf_add(area, tab, sizeof tab) < 0)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    const uint8_t *p = raw, *end = raw + n;
    for (int f = 0; f < CH_IX_NFIELDS; f++) {
        const uint8_t *e;
        if (!field_end(p, end, &e))
            return ch_error_set(err, CH_ERR, "index field %d does not parse", f);
        int rc = ix6_field(cctx, p, e, nrec, f, area, tab, err);
        if (rc < 0)
            return rc;
        p = e;
    }
    memcpy(area->data + at, tab, sizeof tab);
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

/* writev (at < 0) or pwritev at *at until every byte of iov[0..n) is written (iov and *at are
 * changed). */
static int writev_all(int fd, struct iovec *iov, int n, int64_t *at)
{
    while (n > 0) {
        ssize_t w = *at < 0 ? writev(fd, iov, n) : pwritev(fd, iov, n, (off_t)*at);
        if (w > 0 && *at >= 0)
            *at += w;
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

/* src as the raw frame stored_frame measured: its header, then each block's header and bytes,
 * up to 32 blocks a writev; at the file's position (at < 0) or at offset at (a spilled block,
 * written by any writer thread). */
static int write_stored(int fd, const ch_buf *src, int64_t at)
{
    uint8_t h[RAW_HEADER], bh[32][3];
    struct iovec iov[1 + 2 * 32];
    raw_frame_header(h, src->len);
    int n = 0;
    iov[n++] = (struct iovec){h, sizeof h};
    const uint8_t *p = (const uint8_t *)src->data;
    size_t left = src->len;
    do {
        for (int k = 0; k < 32; k++) {
            size_t c = left < RAW_BLOCK ? left : RAW_BLOCK;
            raw_block_header(bh[k], c, c == left);
            iov[n++] = (struct iovec){bh[k], 3};
            if (c)
                iov[n++] = (struct iovec){(void *)p, c};
            p += c;
            left -= c;
            if (left == 0)
                break;
        }
        if (writev_all(fd, iov, n, &at) < 0)
            return -1;
        n = 0;
    } while (left > 0);
    return 0;
}

/* Stream st (0 typed, 1 original) of block k: its compressed frame or its stored one. */
static int write_frame(int fd, const ch_seg_block *k, int st)
{
    if (k->spilled)
        return 0; /* in place already (original), or in the appended spill file (typed) */
    if (k->stored)
        return write_stored(fd, st ? &k->orig : &k->raw, -1);
    return write_all(fd, st ? k->oz : k->z, st ? k->ozlen : k->zlen);
}

/* Append in[0..n) to out's position: in the kernel where the file system allows (no copy through
 * this process's memory), else by reads and writes of 1 MiB. */
static int append_file(int out, int in, uint64_t n)
{
    loff_t ioff = 0;
    while (n > 0) {
        ssize_t c = copy_file_range(in, &ioff, out, NULL, n, 0);
        if (c < 0 && errno == EINTR)
            continue;
        if (c <= 0)
            break;
        n -= (uint64_t)c;
    }
    if (n == 0)
        return 0;
    char *buf = ch_malloc((size_t)1 << 20);
    if (buf == NULL)
        return -1;
    int rc = 0;
    while (n > 0 && rc == 0) {
        ssize_t r = pread(in, buf, n < ((uint64_t)1 << 20) ? (size_t)n : (size_t)1 << 20, ioff);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || write_all(out, buf, (size_t)r) < 0) {
            if (r == 0)
                errno = EIO; /* the spill file is shorter than its frames */
            rc = -1;
        }
        ioff += r > 0 ? r : 0;
        n -= r > 0 ? (uint64_t)r : 0;
    }
    ch_free(buf);
    return rc;
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
    bool split = b->format >= CH_SEG_FORMAT_SPLIT;
    size_t bte = split ? BT_ENTRY3 : BT_ENTRY;
    uint8_t *bt = ch_calloc(nblocks ? nblocks : 1, bte);
    uint8_t h[CH_SEG_HEADER] = {0};
    ch_buf iz; /* the index: format 5's field table, then one zstd frame per field */
    ch_buf_init(&iz, (size_t)1 << 31);
    bool tab = b->format >= CH_SEG_FORMAT_FIELDS;
    char tmp[4200];
    int fd = -1, rc = 0;
    if (cctx == NULL || bt == NULL) {
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        goto cleanup;
    }
    /* Formats 3, 4: every frame of one stream, then every frame of the other, so that a
     * typed-only scan reads one contiguous run of the file. The typed frames come first, except
     * in a raw segment (ch__segb_init_raw), whose original frames, three quarters of its bytes,
     * come first: the spilled ones are then in place in the segment's temporary file, and the
     * seal appends only the typed frames' file (docs/BENCHMARKS.md section 65). Readers take
     * every frame at its block table offset, wherever it lies before the table. */
    int first = split && b->level == RAW_LEVEL ? 1 : 0;
    uint64_t off = CH_SEG_HEADER, orig_end = 0;
    for (int pass = 0; pass < (split ? 2 : 1); pass++) {
        int st = pass ? 1 - first : first;
        if (pass == 1 && first == 1)
            orig_end = off;
        for (uint32_t k = 0; k < nblocks; k++) {
            ch_seg_block *blk = b->blocks[k];
            if (pass == 0 && (rc = ch__segb_compress(blk, cctx, err)) < 0)
                goto cleanup;
            if (pass == 0 && blk->spilled && blk->soff != off) {
                rc = ch_error_set(err, CH_ERR, "block %u spilled out of place", k);
                goto cleanup;
            }
            uint8_t *ent = bt + (size_t)k * bte;
            ch_le_put32(ent + 16, blk->first);
            ch_le_put32(ent + 20, blk->cnt);
            if (st == 0) {
                ch_le_put64(ent, off);
                ch_le_put32(ent + 8, (uint32_t)blk->zlen);
                ch_le_put32(ent + 12, blk->zrawlen);
                ch_le_put32(ent + 24, blk->crc);
                off += blk->zlen;
            } else {
                ch_le_put32(ent + 28, (uint32_t)blk->ozlen);
                ch_le_put32(ent + 32, blk->origlen);
                ch_le_put32(ent + 36, blk->ocrc);
                ch_le_put64(ent + 40, off);
                off += blk->ozlen;
            }
        }
    }
    uint64_t bt_off = off;
    if (build_index(b, &idx) < 0) {
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        goto cleanup;
    }
    uint64_t ix_off = bt_off + (uint64_t)nblocks * bte;
    if (tab && ch_buf_reserve(&iz, IXTAB) < 0) {
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        goto cleanup;
    }
    iz.len = tab ? IXTAB : 0;
    uint8_t ixtab[IXTAB] = {0};
    if (b->format >= CH_SEG_FORMAT_CHUNKS) {
        iz.len = 0;
        rc = ch__seg_index6(cctx, (const uint8_t *)idx.data, idx.len, b->nrec, &iz, err);
    } else {
        rc = compress_index(cctx, b->level ? b->level : ZLEVEL, &idx, &iz, tab ? ixtab : NULL, err);
        if (rc == 0 && tab)
            memcpy(iz.data, ixtab, IXTAB);
    }
    if (rc < 0)
        goto cleanup;
    size_t ic = iz.len;
    memcpy(h, CH_SEG_MAGIC, 8);
    ch_le_put32(h + 8, b->format);
    ch_le_put32(h + 12, b->dataset);
    ch_le_put64(h + 16, gen);
    ch_le_put32(h + 24, seq);
    ch_le_put32(h + 28, b->nrec);
    ch_le_put64(h + 32, (uint64_t)b->min_ts);
    ch_le_put64(h + 40, (uint64_t)b->max_ts);
    ch_le_put64(h + 48, b->raw_bytes);
    ch_le_put32(h + 56, nblocks);
    ch_le_put32(h + 60, ch_crc32c(0, bt, (size_t)nblocks * bte));
    ch_le_put64(h + 64, bt_off);
    ch_le_put64(h + 72, ix_off);
    ch_le_put32(h + 80, (uint32_t)ic);
    ch_le_put32(h + 84, (uint32_t)idx.len);
    /* Formats 5, 6: the header's checksum covers the field table, and each frame has its own. */
    ch_le_put32(h + 88, ch_crc32c(0, iz.data, tab ? IXTAB : ic));
    ch_le_put32(h + 92, b->flags);
    ch_le_put32(h + 124, ch_crc32c(0, h, 124));
    bool spill = b->sfd >= 0, ok;
    if (spill) {
        /* The spilled blocks' original frames are in place after the header's room; the rest
         * follows them, then the typed frames: the spill file's, then the others'. The header
         * goes in last (the file is not visible before its rename). */
        spill_name(b, false, tmp, sizeof tmp);
        fd = b->sfd;
        b->sfd = -1;
        ok = lseek(fd, (off_t)b->stoff, SEEK_SET) >= 0;
    } else {
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
        ok = fd >= 0 && write_all(fd, h, sizeof h) == 0;
    }
    for (uint32_t k = 0; k < nblocks && ok; k++)
        ok = write_frame(fd, b->blocks[k], first) == 0;
    if (spill && ok)
        ok = append_file(fd, b->sofd, b->sooff) == 0;
    for (uint32_t k = 0; split && k < nblocks && ok; k++)
        ok = write_frame(fd, b->blocks[k], 1 - first) == 0;
    if (spill && ok)
        ok = pwrite(fd, h, sizeof h, 0) == (ssize_t)sizeof h;
    /* Tests hold a written temporary file here so that a kill -9 lands after a seal and before
     * the segment is durable. */
    const char *delay = getenv("COINHOUND_STORE_WRITE_DELAY_MS");
    if (delay != NULL && atoi(delay) > 0)
        usleep((useconds_t)atoi(delay) * 1000);
    if (!ok || write_all(fd, bt, (size_t)nblocks * bte) < 0 || write_all(fd, iz.data, ic) < 0 ||
        fsync(fd) < 0) {
        rc = ch_error_set(err, CH_EIO, "%s: %s", tmp, strerror(errno));
        goto cleanup;
    }
    /* A raw segment's original frames, three quarters of its bytes, leave the page cache once
     * durable: only printing a match reads them again (a scan or a lookup reads the typed frames
     * and the index, which stay), and on a guest whose host takes back free memory, every fresh
     * page the cache grew by cost the writer a host fault: 0.8 s of system time for 517 MB, 0.07 s
     * when its pages were the just-released ones of the previous segment (docs/BENCHMARKS.md
     * section 73). Advice only: a failure changes nothing but the speed. */
    if (orig_end > CACHE_PAGE)
        (void)posix_fadvise(fd, CACHE_PAGE, (off_t)(orig_end - CACHE_PAGE), POSIX_FADV_DONTNEED);
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
    spill_drop(b, true);
    if (cctx_in == NULL)
        ZSTD_freeCCtx(cctx);
    ch_free(bt);
    ch_buf_free(&iz);
    ch_buf_free(&idx);
    return rc;
}

/* ---- reader ---- */

/* One compressed stream of a segment's blocks, as read: the whole records (formats 1, 2) or the
 * typed parts (formats 3, 4) are stream 0, their original records stream 1. */
typedef struct seg_stream {
    /* the decompressed block last asked for */
    uint8_t *blk;
    size_t blkcap;
    int64_t blk_no;
    uint32_t *rec_off; /* offsets of the block's records */
    uint64_t blocks_read;
    bool dict; /* later blocks were compressed with block 0 as dictionary */
    /* With dict: block 0's records followed by room for one later block, which is
     * decompressed right after them: zstd then sees the dictionary as the output's own prefix
     * and copies matches from it at its normal speed (into a separate buffer, each such match
     * is a memmove call: scans ran at half speed). */
    uint8_t *pfx;
    size_t pfxlen;
    const uint8_t *cur; /* the records of block blk_no: in blk, or in pfx */
    ZSTD_DDict *ddict;  /* over pfx: one per segment, so zstd treats it as warm after the first */
    /* Format 4's typed stream: frames hold columns (evcols.c), which pfx and cbuf receive; the
     * rows rebuilt from them go to blk (cur), ccur is the columns of block blk_no. */
    bool cols;
    uint8_t *cbuf;
    size_t cbufcap;
    const uint8_t *ccur;
    ch_evcols_scratch *scratch;
    /* ... whose rows are rebuilt (rec_off, cur) only when a second record of the block, or its
     * first, is asked for: a lookup's single match of a block takes its row alone (row_i, in
     * row), a scan starts at record 0 and rebuilds them all */
    bool rows;
    uint32_t ccnt;
    size_t clen;
    int32_t row_i;
    uint8_t *row;
    size_t rowcap, rowlen;
    /* a compressed frame as read from the file (not used for a segment in memory) */
    uint8_t *z;
    size_t zcap;
} seg_stream;

struct ch_seg {
    /* The file in memory (ch__seg_open_mem), or NULL and the file read with pread: a lookup
     * reads the header, the block table and the frames it needs. Mapping the file cost a
     * lookup of a thinly spread value more in mmap, page faults and munmap per segment than
     * reading the few KB it uses (docs/BENCHMARKS.md section 38). */
    const uint8_t *map;
    int fd;     /* -1 after ch__seg_release: reopened from path when read again */
    char *path; /* a segment opened from a file */
    size_t size;
    uint8_t hdr[CH_SEG_HEADER];
    ch_seg_meta meta;
    const uint8_t *bt;
    uint8_t *btbuf; /* read from the file: the block table and format 5's field table */
    size_t bte;     /* block table entry size */
    uint32_t version;
    seg_stream st[2];
    uint8_t *joined; /* format 3: a record's two parts back to back (ch__seg_record) */
    size_t joincap;
    ZSTD_DCtx *dctx; /* borrowed (ch__seg_use_dctx) or owned */
    bool own_dctx;
    /* Formats 4-6: the original-record frame of block st[1].blk_no, inflated zstd block by
     * zstd block only as far as the records asked for so far (orig_upto): a lookup that prints
     * one record of a 256-record frame stops at the 128 KB zstd block holding it. Its own
     * DCtx, because the frame's decoding state lives there between two records. */
    struct orig_part {
        bool on;          /* a frame is being inflated: the fields below describe it */
        const uint8_t *z; /* its compressed bytes (stream 1's buffer, or the segment in memory) */
        size_t zlen, zpos;
        uint8_t *out;     /* == st[1].cur */
        size_t cap, have; /* rawlen, and bytes inflated so far */
        size_t next;      /* offset of the first record not yet found */
        uint32_t found, cnt, k;
        ZSTD_DCtx *dctx;
        ZSTD_DDict *ddict; /* the frame's prefix, by reference */
    } op;
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
    uint8_t *ix_area; /* formats 1-4 read from the file: the whole index area */
    size_t ix_areacap;
    const uint8_t *ix_area_p; /* formats 1-4: the index area (in ix_area, or in place) */
    /* format 5: each field frame's offset, sizes and checksum (from the field table) */
    uint64_t ixf_off[CH_IX_NFIELDS];
    uint32_t ixf_clen[CH_IX_NFIELDS], ixf_raw[CH_IX_NFIELDS], ixf_crc[CH_IX_NFIELDS];
    uint8_t *ixz; /* a field frame as read from the file */
    size_t ixzcap;
    /* format 6: each field's region (ixf_off, ixf_clen) and directory (ixf_raw bytes, ixf_crc),
     * and what has been read of it */
    struct x6field {
        bool dir, dict;
        uint32_t nt, np, nf, width;
        uint32_t dclen, draw, dcrc;
        uint8_t *dirbuf;
        uint64_t *off;  /* the dictionary's frame, then each posting chunk's, then each column
                           chunk's: np + nf + 1 offsets in the file */
        uint8_t **praw; /* the inflated posting chunks, NULL until read */
        bool *thick;    /* per term: its postings are in the column only */
        uint8_t *tpost; /* the thick terms' postings, made from the column */
        bool tdone;
        uint8_t *col; /* the column chunk colno, inflated */
        int64_t colno;
    } x6[CH_IX_NFIELDS];
};

static bool grow(uint8_t **b, size_t *cap, size_t want)
{
    if (*cap >= want)
        return true;
    uint8_t *nb = ch_realloc(*b, want ? want : 1);
    if (nb == NULL)
        return false;
    *b = nb;
    *cap = want;
    return true;
}

/* The file's bytes [off, off + n) (within its size, checked by the caller) into *out: in
 * place for a segment in memory, else read into *buf (grown to *cap as needed). */
static int seg_bytes(ch_seg *s, uint64_t off, size_t n, uint8_t **buf, size_t *cap,
                     const uint8_t **out, ch_error *err)
{
    if (s->map != NULL) {
        *out = s->map + off;
        return 0;
    }
    if (!grow(buf, cap, n))
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    if (s->fd < 0 && (s->fd = open(s->path, O_RDONLY | O_CLOEXEC)) < 0)
        return ch_error_set(err, CH_EIO, "%s: %s", s->path, strerror(errno));
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(s->fd, *buf + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return ch_error_set(
                err, r < 0 ? CH_EIO : CH_EPARSE, "read of %zu bytes at offset %llu: %s", n,
                (unsigned long long)(off + got), r < 0 ? strerror(errno) : "file truncated");
        got += (size_t)r;
    }
    *out = *buf;
    return 0;
}

/* Where block k's frame of stream st lies, its sizes and checksum. */
typedef struct seg_frame {
    uint64_t off;
    uint32_t clen, rawlen, crc;
} seg_frame;

static seg_frame frame_of(const ch_seg *s, int st, uint32_t k)
{
    const uint8_t *e = s->bt + (size_t)k * s->bte;
    if (st == 0)
        return (seg_frame){ch_le_get64(e), ch_le_get32(e + 8), ch_le_get32(e + 12),
                           ch_le_get32(e + 24)};
    return (seg_frame){ch_le_get64(e + 40), ch_le_get32(e + 28), ch_le_get32(e + 32),
                       ch_le_get32(e + 36)};
}

static const char *stream_name(int st) { return st ? "original-record block" : "block"; }

/* Block k's compressed frame f of stream st into *p, its checksum verified (read into the
 * stream's buffer: valid until the next read of the same stream). */
static int frame_bytes(ch_seg *s, int st, uint32_t k, seg_frame f, const uint8_t **p, ch_error *err)
{
    int rc = seg_bytes(s, f.off, f.clen, &s->st[st].z, &s->st[st].zcap, p, err);
    if (rc == 0 && f.crc != ch_crc32c(0, *p, f.clen))
        rc = ch_error_set(err, CH_EPARSE, "%s %u checksum mismatch at offset %llu", stream_name(st),
                          k, (unsigned long long)f.off);
    return rc;
}

/* Check the header (copied into s->hdr by the caller), read and check the block table (and
 * format 5's field table). */
static int seg_parse(ch_seg *s, ch_error *err)
{
    const uint8_t *h = s->hdr;
    if (s->size < CH_SEG_HEADER || memcmp(h, CH_SEG_MAGIC, 8) != 0)
        return ch_error_set(err, CH_EPARSE, "not a segment (bad magic at offset 0)");
    if (ch_le_get32(h + 124) != ch_crc32c(0, h, 124))
        return ch_error_set(err, CH_EPARSE, "header checksum mismatch at offset 124");
    s->version = ch_le_get32(h + 8);
    if (s->version < CH_SEG_FORMAT_PLAIN || s->version > CH_SEG_FORMAT_CHUNKS)
        return ch_error_set(err, CH_EPARSE, "unsupported segment version %u at offset 8",
                            ch_le_get32(h + 8));
    uint32_t flags = ch_le_get32(h + 92);
    bool split = s->version >= CH_SEG_FORMAT_SPLIT;
    if (split && (flags & ~(CH_SEG_TYPED_DICT | CH_SEG_ORIG_DICT)))
        return ch_error_set(err, CH_EPARSE, "unknown stream flags %#x at offset 92", flags);
    s->bte = split ? BT_ENTRY3 : BT_ENTRY;
    s->st[0].dict = s->version == CH_SEG_FORMAT_DICT || (split && (flags & CH_SEG_TYPED_DICT));
    s->st[1].dict = split && (flags & CH_SEG_ORIG_DICT);
    s->st[0].cols = s->version >= CH_SEG_FORMAT_COLS;
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
        (uint64_t)m->nblocks * s->bte > s->size - bt_off || ix_off > s->size ||
        ix_len > s->size - ix_off || ix_off != bt_off + (uint64_t)m->nblocks * s->bte)
        return ch_error_set(err, CH_EPARSE, "section offsets beyond the file (%zu bytes)", s->size);
    bool tab = s->version >= CH_SEG_FORMAT_FIELDS;
    if (tab && ix_len < IXTAB)
        return ch_error_set(err, CH_EPARSE, "index area of %llu bytes has no field table",
                            (unsigned long long)ix_len);
    /* one read: the block table and format 5's field table after it */
    size_t btlen = (size_t)m->nblocks * s->bte;
    size_t btsz = btlen + (tab ? IXTAB : 0), btcap = 0;
    int rc = seg_bytes(s, bt_off, btsz, &s->btbuf, &btcap, &s->bt, err);
    if (rc < 0)
        return rc;
    if (ch_le_get32(h + 60) != ch_crc32c(0, s->bt, btlen))
        return ch_error_set(err, CH_EPARSE, "block table checksum mismatch at offset %llu",
                            (unsigned long long)bt_off);
    if (tab) {
        const uint8_t *t = s->bt + btlen;
        if (ch_le_get32(h + 88) != ch_crc32c(0, t, IXTAB))
            return ch_error_set(err, CH_EPARSE,
                                "index field table checksum mismatch at offset %llu",
                                (unsigned long long)ix_off);
        uint64_t off = ix_off + IXTAB, raw = 0;
        bool x6 = s->version >= CH_SEG_FORMAT_CHUNKS, dirs_fit = true;
        for (int f = 0; f < CH_IX_NFIELDS; f++) {
            s->ixf_off[f] = off;
            s->ixf_clen[f] = ch_le_get32(t + f * IXTAB_ENTRY);
            s->ixf_raw[f] = ch_le_get32(t + f * IXTAB_ENTRY + 4);
            s->ixf_crc[f] = ch_le_get32(t + f * IXTAB_ENTRY + 8);
            off += s->ixf_clen[f];
            raw += s->ixf_raw[f];
            /* format 6: a field's region holds its directory */
            dirs_fit =
                dirs_fit && (!x6 || (s->ixf_raw[f] >= IX6_DIR && s->ixf_raw[f] <= s->ixf_clen[f]));
            s->x6[f].colno = -1;
        }
        if (x6)
            raw = ch_le_get32(h + 84);
        if (off != ix_off + ix_len || raw != ch_le_get32(h + 84) || raw > MAX_INDEX_RAW ||
            !dirs_fit)
            return ch_error_set(err, CH_EPARSE,
                                "index field table at offset %llu does not fit the index area",
                                (unsigned long long)ix_off);
    }
    int nst = split ? 2 : 1;
    for (uint32_t k = 0; k < m->nblocks; k++) {
        const uint8_t *e = s->bt + (size_t)k * s->bte;
        uint32_t first = ch_le_get32(e + 16), cnt = ch_le_get32(e + 20);
        if (first != k * CH_SEG_BLOCK_RECORDS || cnt == 0 || cnt > CH_SEG_BLOCK_RECORDS ||
            (uint64_t)first + cnt > m->nrec)
            return ch_error_set(err, CH_EPARSE, "block %u entry out of bounds", k);
        for (int st = 0; st < nst; st++) {
            seg_frame f = frame_of(s, st, k);
            if (f.off < CH_SEG_HEADER || f.off > bt_off || f.clen > bt_off - f.off ||
                f.rawlen > MAX_BLOCK_RAW)
                return ch_error_set(err, CH_EPARSE, "block %u %s frame out of bounds", k,
                                    st ? "original records" : "records");
        }
    }
    for (int st = 0; st < 2; st++)
        s->st[st].blk_no = -1;
    return 0;
}

/* A segment over map[0..size), or over the file fd of size bytes (map NULL; the segment owns
 * fd and closes it, also on failure). */
static int seg_new(const uint8_t *map, int fd, size_t size, ch_seg **out, ch_error *err)
{
    ch_seg *s = ch_calloc(1, sizeof *s);
    if (s == NULL) {
        if (fd >= 0)
            close(fd);
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    }
    s->map = map;
    s->fd = fd;
    s->size = size;
    int rc = 0;
    if (size >= CH_SEG_HEADER) {
        uint8_t *hb = s->hdr;
        size_t hcap = sizeof s->hdr;
        const uint8_t *h;
        if ((rc = seg_bytes(s, 0, CH_SEG_HEADER, &hb, &hcap, &h, err)) == 0 && h != s->hdr)
            memcpy(s->hdr, h, CH_SEG_HEADER);
    }
    if (rc == 0)
        rc = seg_parse(s, err);
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
    char *pc = ch_malloc(strlen(path) + 1);
    if (pc == NULL) {
        close(fd);
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    }
    memcpy(pc, path, strlen(path) + 1);
    int rc = seg_new(NULL, fd, (size_t)st.st_size, out, err);
    if (rc == 0)
        (*out)->path = pc;
    else
        ch_free(pc);
    if (rc < 0) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        ch_error_set(err, rc, "%s: %s", path, msg);
    }
    return rc;
}

int ch__seg_open_mem(const uint8_t *buf, size_t n, ch_seg **out, ch_error *err)
{
    return seg_new(buf, -1, n, out, err);
}

void ch__seg_release(ch_seg *s)
{
    if (s->fd >= 0 && s->path != NULL) {
        close(s->fd);
        s->fd = -1;
    }
}

void ch__seg_close(ch_seg *s)
{
    if (s == NULL)
        return;
    if (s->fd >= 0)
        close(s->fd);
    ch_free(s->path);
    ch_free(s->btbuf);
    ch_free(s->ix_area);
    ch_free(s->ixz);
    if (s->own_dctx)
        ZSTD_freeDCtx(s->dctx);
    ZSTD_freeDCtx(s->op.dctx);
    ZSTD_freeDDict(s->op.ddict);
    for (int st = 0; st < 2; st++) {
        ch_free(s->st[st].blk);
        ZSTD_freeDDict(s->st[st].ddict);
        ch_free(s->st[st].pfx);
        ch_free(s->st[st].rec_off);
        ch_free(s->st[st].cbuf);
        ch_free(s->st[st].row);
        ch__evcols_scratch_free(s->st[st].scratch);
        ch_free(s->st[st].z);
    }
    ch_free(s->joined);
    ch_free(s->ix_raw);
    for (int i = 0; i < CH_IX_NFIELDS; i++) {
        ch_free(s->terms[i]);
        ch_free(s->ix_fraw[i]);
        struct x6field *x = &s->x6[i];
        for (uint32_t c = 0; x->praw != NULL && c < x->np; c++)
            ch_free(x->praw[c]);
        ch_free(x->praw);
        ch_free(x->thick);
        ch_free(x->tpost);
        ch_free(x->off);
        ch_free(x->dirbuf);
        ch_free(x->col);
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
uint64_t ch__seg_blocks_read(const ch_seg *s) { return s->st[0].blocks_read; }
uint64_t ch__seg_orig_blocks_read(const ch_seg *s) { return s->st[1].blocks_read; }
uint32_t ch__seg_format(const ch_seg *s)
{
    return s->version >= CH_SEG_FORMAT_SPLIT ? CH_SEG_FORMAT_SPLIT : s->version;
}
uint32_t ch__seg_version(const ch_seg *s) { return s->version; }

/* A stream with a dictionary: block 0's records, decompressed once per open segment, are the
 * dictionary that every later block was compressed with. An indexed lookup that lands past
 * block 0 pays one more block's decompression per segment for it. */
static int load_prefix(ch_seg *s, int st, ch_error *err)
{
    seg_stream *S = &s->st[st];
    if (S->pfx != NULL)
        return 0;
    seg_frame f = frame_of(s, st, 0);
    size_t room = 0;
    for (uint32_t k = 1; k < s->meta.nblocks; k++) {
        uint32_t r = frame_of(s, st, k).rawlen;
        if (r > room)
            room = r;
    }
    uint8_t *p = ch_malloc((size_t)f.rawlen + room + 1);
    if (p == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    /* A scan in record order has block 0 in hand already. */
    size_t d = f.rawlen;
    const uint8_t *z;
    if (S->blk_no == 0) {
        memcpy(p, S->cols ? S->ccur : S->cur, f.rawlen);
    } else {
        int rc = frame_bytes(s, st, 0, f, &z, err);
        if (rc < 0) {
            ch_free(p);
            return rc;
        }
        d = decompress(s, p, f.rawlen, z, f.clen);
    }
    if (ZSTD_isError(d) || d != f.rawlen) {
        ch_free(p);
        return ch_error_set(err, CH_EPARSE,
                            "%s 0 (the dictionary of the later blocks) does not decompress",
                            stream_name(st));
    }
    /* Raw content, as the writer's dictionary was, and by reference: pfx lives as long. */
    S->ddict = ZSTD_createDDict_advanced(p, f.rawlen, ZSTD_dlm_byRef, ZSTD_dct_rawContent,
                                         ZSTD_defaultCMem);
    if (S->ddict == NULL) {
        ch_free(p);
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    }
    S->pfx = p;
    S->pfxlen = f.rawlen;
    return 0;
}

static int load_block(ch_seg *s, int st, uint32_t k, ch_error *err);

/* The record offsets of block k of stream st, whose rawlen bytes are at S->cur. */
/* Block k's record count, from its block table entry. */
static uint32_t block_cnt(const ch_seg *s, uint32_t k)
{
    return ch_le_get32(s->bt + (size_t)k * s->bte + 20);
}

/* The stream's record offsets, made on first use (a block holds at most CH_SEG_BLOCK_RECORDS). */
static int rec_offsets(seg_stream *S, ch_error *err)
{
    if (S->rec_off == NULL &&
        (S->rec_off = ch_malloc(CH_SEG_BLOCK_RECORDS * sizeof *S->rec_off)) == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    return 0;
}

static int block_records(ch_seg *s, int st, uint32_t k, size_t rawlen, ch_error *err)
{
    seg_stream *S = &s->st[st];
    uint32_t cnt = block_cnt(s, k);
    if (rec_offsets(S, err) < 0)
        return CH_ENOMEM;
    size_t o = 0;
    for (uint32_t i = 0; i < cnt; i++) {
        if (rawlen - o < 4 || ch_le_get32(S->cur + o) > rawlen - o - 4)
            return ch_error_set(err, CH_EPARSE, "%s %u: record %u overruns the block",
                                stream_name(st), k, i);
        S->rec_off[i] = (uint32_t)o;
        o += 4 + ch_le_get32(S->cur + o);
    }
    if (o != rawlen)
        return ch_error_set(err, CH_EPARSE, "%s %u: %zu trailing bytes", stream_name(st), k,
                            rawlen - o);
    S->blk_no = k;
    S->blocks_read++;
    return 0;
}

/* Format 4: block 0's typed columns without disturbing the typed stream's current block (a
 * caller may hold a typed part of another block): the typed dictionary, the current block, or
 * decompressed into the original stream's own buffer. */
static int typed_cols0(ch_seg *s, const uint8_t **p, size_t *n, ch_error *err)
{
    seg_stream *T = &s->st[0], *O = &s->st[1];
    seg_frame f = frame_of(s, 0, 0);
    *n = f.rawlen;
    if (T->pfx != NULL) {
        *p = T->pfx;
        return 0;
    }
    if (T->blk_no == 0) {
        *p = T->ccur;
        return 0;
    }
    const uint8_t *z;
    int rc = frame_bytes(s, 0, 0, f, &z, err);
    if (rc < 0)
        return rc;
    if (!grow(&O->cbuf, &O->cbufcap, f.rawlen))
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    size_t d = decompress(s, O->cbuf, f.rawlen, z, f.clen);
    if (ZSTD_isError(d) || d != f.rawlen)
        return ch_error_set(err, CH_EPARSE, "block 0 does not decompress");
    *p = O->cbuf;
    return 0;
}

/* Decompress the original frame f of format 4 block k (its checksum checked first) into dst,
 * with the plen bytes at pre as its prefix (block 0's, whose prefix is its typed columns, read
 * wherever they are: zstd takes a prefix apart from the output as its external dictionary, so
 * neither is copied to sit beside the other). */
static int orig4_frame(ch_seg *s, uint32_t k, seg_frame f, const uint8_t *pre, size_t plen,
                       uint8_t *dst, ch_error *err)
{
    const uint8_t *z;
    int rc = frame_bytes(s, 1, k, f, &z, err);
    if (rc < 0)
        return rc;
    if (s->dctx == NULL) {
        if ((s->dctx = ZSTD_createDCtx()) == NULL)
            return ch_error_set(err, CH_ENOMEM, "out of memory");
        s->own_dctx = true;
    }
    size_t d = ZSTD_DCtx_refPrefix(s->dctx, pre, plen);
    if (!ZSTD_isError(d))
        d = ZSTD_decompressDCtx(s->dctx, dst, f.rawlen, z, f.clen);
    ZSTD_DCtx_reset(s->dctx, ZSTD_reset_session_only);
    if (ZSTD_isError(d) || d != f.rawlen)
        return ch_error_set(err, CH_EPARSE, "original-record block %u does not decompress", k);
    return 0;
}

/* Start inflating the original frame f of block k into base + plen, the plen bytes before it
 * being its prefix (its checksum checked first); orig_upto inflates it. */
static int orig_begin(ch_seg *s, uint32_t k, seg_frame f, uint8_t *base, size_t plen, ch_error *err)
{
    struct orig_part *op = &s->op;
    seg_stream *S = &s->st[1];
    const uint8_t *z;
    int rc = frame_bytes(s, 1, k, f, &z, err);
    if (rc < 0)
        return rc;
    if (op->dctx == NULL && (op->dctx = ZSTD_createDCtx()) == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    ZSTD_freeDDict(op->ddict);
    op->ddict = ZSTD_createDDict_advanced(base, plen, ZSTD_dlm_byRef, ZSTD_dct_rawContent,
                                          ZSTD_defaultCMem);
    if (op->ddict == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    if (ZSTD_isError(ZSTD_decompressBegin_usingDDict(op->dctx, op->ddict)))
        return ch_error_set(err, CH_EPARSE, "original-record block %u does not decompress", k);
    if (rec_offsets(S, err) < 0)
        return CH_ENOMEM;
    *op = (struct orig_part){.on = true,
                             .z = z,
                             .zlen = f.clen,
                             .out = base + plen,
                             .cap = f.rawlen,
                             .cnt = block_cnt(s, k),
                             .k = k,
                             .dctx = op->dctx,
                             .ddict = op->ddict};
    S->cur = op->out;
    S->blk_no = k;
    S->blocks_read++;
    return 0;
}

/* Inflate the frame being read (s->op) until its record i is whole, or to its end when i is
 * its last record (then checked as a whole frame is: exactly rawlen bytes, no byte after the
 * last record). zstd decodes a block (up to 128 KB) at a time, each written right after the
 * bytes before it, so the prefix and the earlier blocks are its window in place. */
static int orig_upto(ch_seg *s, uint32_t i, ch_error *err)
{
    struct orig_part *op = &s->op;
    seg_stream *S = &s->st[1];
    bool all = i + 1 >= op->cnt;
    for (;;) {
        /* the records that the bytes so far hold whole */
        while (op->found < op->cnt && op->have - op->next >= 4) {
            uint32_t len = ch_le_get32(op->out + op->next);
            if (len > op->cap - op->next - 4) {
                op->on = false;
                S->blk_no = -1;
                return ch_error_set(err, CH_EPARSE, "%s %u: record %u overruns the block",
                                    stream_name(1), op->k, op->found);
            }
            if (len > op->have - op->next - 4)
                break;
            S->rec_off[op->found++] = (uint32_t)op->next;
            op->next += 4 + (size_t)len;
        }
        if (!all && op->found > i)
            return 0;
        size_t need = op->on ? ZSTD_nextSrcSizeToDecompress(op->dctx) : 0;
        if (need == 0)
            break;
        if (need > op->zlen - op->zpos)
            goto broken;
        size_t d = ZSTD_decompressContinue(op->dctx, op->out + op->have, op->cap - op->have,
                                           op->z + op->zpos, need);
        if (ZSTD_isError(d))
            goto broken;
        op->zpos += need;
        op->have += d;
    }
    op->on = false;
    if (op->zpos != op->zlen || op->have != op->cap)
        goto broken;
    if (op->found != op->cnt || op->next != op->cap) {
        S->blk_no = -1;
        return ch_error_set(err, CH_EPARSE, "%s %u: %zu trailing bytes", stream_name(1), op->k,
                            op->cap - op->next);
    }
    return 0;
broken:
    op->on = false;
    S->blk_no = -1;
    return ch_error_set(err, CH_EPARSE, "original-record block %u does not decompress", op->k);
}

/* Format 4's original records of block k: the frame's prefix is block 0's original records
 * (with the dictionary flag, blocks after the first) and then the block's own typed columns. */
static int load_orig4(ch_seg *s, uint32_t k, ch_error *err)
{
    seg_stream *S = &s->st[1];
    seg_frame f = frame_of(s, 1, k);
    const uint8_t *c;
    size_t cn;
    int rc;
    bool dict = S->dict && k > 0;
    if (dict && S->pfx == NULL) {
        /* block 0's records, once per open segment, with room after them for a block's
         * columns and records */
        seg_frame f0 = frame_of(s, 1, 0);
        size_t room = 0;
        for (uint32_t b = 1; b < s->meta.nblocks; b++) {
            size_t r = (size_t)frame_of(s, 0, b).rawlen + frame_of(s, 1, b).rawlen;
            if (r > room)
                room = r;
        }
        if ((rc = typed_cols0(s, &c, &cn, err)) < 0)
            return rc;
        uint8_t *p = ch_malloc(f0.rawlen + room + 1);
        if (p == NULL)
            return ch_error_set(err, CH_ENOMEM, "out of memory");
        if ((rc = orig4_frame(s, 0, f0, c, cn, p, err)) < 0) {
            ch_free(p);
            return rc;
        }
        S->pfx = p;
        S->pfxlen = f0.rawlen;
    }
    /* the block's columns: the typed stream has them when a caller read the typed part first */
    if (k == 0) {
        rc = typed_cols0(s, &c, &cn, err);
    } else {
        rc = load_block(s, 0, k, err);
        c = s->st[0].ccur;
        cn = frame_of(s, 0, k).rawlen;
    }
    if (rc < 0)
        return rc;
    S->blk_no = -1;
    uint8_t *base;
    size_t pre = 0;
    if (dict) {
        base = S->pfx;
        pre = S->pfxlen;
    } else {
        if (!grow(&S->blk, &S->blkcap, cn + f.rawlen + 1))
            return ch_error_set(err, CH_ENOMEM, "out of memory");
        base = S->blk;
    }
    memcpy(base + pre, c, cn);
    return orig_begin(s, k, f, base, pre + cn, err);
}

static int load_block(ch_seg *s, int st, uint32_t k, ch_error *err)
{
    seg_stream *S = &s->st[st];
    if (S->blk_no == (int64_t)k)
        return 0;
    if (st == 1 && s->version >= CH_SEG_FORMAT_COLS)
        return load_orig4(s, k, err);
    seg_frame f = frame_of(s, st, k);
    uint32_t cnt = block_cnt(s, k);
    /* Before the buffer is reused: it may hold block 0, the dictionary. And before this
     * block's frame is read: block 0's goes through the same stream buffer. */
    if (S->dict && k > 0) {
        int rc = load_prefix(s, st, err);
        if (rc < 0)
            return rc;
    }
    const uint8_t *z = NULL;
    bool need_z = !(S->dict && k == 0 && S->pfx != NULL);
    if (need_z) {
        int rc = frame_bytes(s, st, k, f, &z, err);
        if (rc < 0)
            return rc;
    }
    bool into_blk = !S->dict || (k == 0 && S->pfx == NULL);
    /* format 4's typed frames decompress to columns, in cbuf; the rows go to blk */
    uint8_t **dst = S->cols ? &S->cbuf : &S->blk;
    size_t *dcap = S->cols ? &S->cbufcap : &S->blkcap;
    if (into_blk && *dcap < f.rawlen) {
        uint8_t *nb = ch_realloc(*dst, f.rawlen);
        if (nb == NULL)
            return ch_error_set(err, CH_ENOMEM, "out of memory");
        *dst = nb;
        *dcap = f.rawlen;
    }
    S->blk_no = -1;
    size_t d;
    const uint8_t *got;
    if (into_blk) {
        d = decompress(s, *dst, f.rawlen, z, f.clen);
        got = *dst;
    } else if (k == 0) {
        d = f.rawlen; /* checked and decompressed as the dictionary */
        got = S->pfx;
    } else {
        d = ZSTD_decompress_usingDDict(s->dctx, S->pfx + S->pfxlen, f.rawlen, z, f.clen, S->ddict);
        got = S->pfx + S->pfxlen;
    }
    if (ZSTD_isError(d) || d != f.rawlen)
        return ch_error_set(err, CH_EPARSE, "%s %u does not decompress", stream_name(st), k);
    S->cur = got;
    if (S->cols) {
        /* the rows when a record is asked for (typed_rows) */
        S->ccur = got;
        S->clen = f.rawlen;
        S->ccnt = cnt;
        S->rows = false;
        S->row_i = -1;
        S->blk_no = k;
        S->blocks_read++;
        return 0;
    }
    return block_records(s, st, k, f.rawlen, err);
}

/* Format 4's typed record i of the block in hand: its row alone the first time the block is
 * asked for one (unless it is record 0), all rows the next time. */
static int typed_row(ch_seg *s, uint32_t i, const uint8_t **p, size_t *n, ch_error *err)
{
    seg_stream *S = &s->st[0];
    uint32_t k = (uint32_t)S->blk_no;
    if (!S->rows && S->row_i == (int32_t)i) {
        *p = S->row;
        *n = S->rowlen;
        return 0;
    }
    int rc;
    if (!S->rows && S->row_i < 0 && i > 0) {
        rc = ch__evcols_row(S->ccur, S->clen, S->ccnt, i, &S->row, &S->rowcap, &S->rowlen);
        if (rc == 0) {
            S->row_i = (int32_t)i;
            *p = S->row;
            *n = S->rowlen;
            return 0;
        }
    } else if (!S->rows) {
        size_t rawlen;
        rc =
            ch__evcols_decode(S->ccur, S->clen, S->ccnt, &S->blk, &S->blkcap, &rawlen, &S->scratch);
        if (rc == 0) {
            S->cur = S->blk;
            S->blocks_read--; /* counted when the frame was read */
            if ((rc = block_records(s, 0, k, rawlen, err)) < 0) {
                S->blk_no = -1;
                return rc;
            }
            S->rows = true;
        }
    } else {
        rc = 0;
    }
    if (rc == CH_ENOMEM)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    if (rc < 0) {
        S->blk_no = -1;
        return ch_error_set(err, CH_EPARSE, "%s %u: damaged columns", stream_name(0), k);
    }
    uint32_t o = S->rec_off[i];
    *p = S->cur + o + 4;
    *n = ch_le_get32(S->cur + o);
    return 0;
}

static int stream_record(ch_seg *s, int st, uint32_t ord, const uint8_t **p, size_t *n,
                         ch_error *err)
{
    if (ord >= s->meta.nrec)
        return ch_error_set(err, CH_EPARSE, "record %u past the segment's %u", ord, s->meta.nrec);
    uint32_t k = ord / CH_SEG_BLOCK_RECORDS;
    int rc = load_block(s, st, k, err);
    if (rc == 0 && st == 0 && s->st[0].cols)
        return typed_row(s, ord - k * CH_SEG_BLOCK_RECORDS, p, n, err);
    if (rc == 0 && st == 1 && s->version >= CH_SEG_FORMAT_COLS &&
        ord - k * CH_SEG_BLOCK_RECORDS >= s->op.found)
        rc = orig_upto(s, ord - k * CH_SEG_BLOCK_RECORDS, err);
    if (rc < 0)
        return rc;
    const seg_stream *S = &s->st[st];
    uint32_t o = S->rec_off[ord - k * CH_SEG_BLOCK_RECORDS];
    *p = S->cur + o + 4;
    *n = ch_le_get32(S->cur + o);
    return 0;
}

int ch__seg_typed(ch_seg *s, uint32_t ord, const uint8_t **p, size_t *n, ch_error *err)
{
    return stream_record(s, 0, ord, p, n, err);
}

int ch__seg_orig(ch_seg *s, uint32_t ord, const uint8_t **p, size_t *n, ch_error *err)
{
    if (s->version < CH_SEG_FORMAT_SPLIT)
        return ch_error_set(err, CH_EUSAGE, "format %u keeps no separate original records",
                            s->version);
    return stream_record(s, 1, ord, p, n, err);
}

int ch__seg_record(ch_seg *s, uint32_t ord, const uint8_t **p, size_t *n, ch_error *err)
{
    if (s->version < CH_SEG_FORMAT_SPLIT)
        return stream_record(s, 0, ord, p, n, err);
    const uint8_t *t = NULL, *o = NULL;
    size_t tn = 0, on = 0;
    int rc = stream_record(s, 0, ord, &t, &tn, err);
    if (rc == 0)
        rc = stream_record(s, 1, ord, &o, &on, err);
    if (rc != 0)
        return rc;
    if (s->joincap < tn + on) {
        uint8_t *nj = ch_realloc(s->joined, tn + on);
        if (nj == NULL)
            return ch_error_set(err, CH_ENOMEM, "out of memory");
        s->joined = nj;
        s->joincap = tn + on;
    }
    memcpy(s->joined, t, tn);
    memcpy(s->joined + tn, o, on);
    *p = s->joined;
    *n = tn + on;
    return 0;
}

int ch__seg_decode(ch_seg *s, uint32_t ord, ch_ev_decoded *d, size_t *stored, ch_error *err)
{
    const uint8_t *p, *o = NULL;
    size_t n, on = 0;
    bool split = s->version >= CH_SEG_FORMAT_SPLIT;
    int rc = stream_record(s, 0, ord, &p, &n, err);
    if (rc == 0 && split)
        rc = stream_record(s, 1, ord, &o, &on, err);
    if (rc < 0)
        return rc;
    if (stored != NULL)
        *stored = n + 4 + (split ? on + 4 : 0);
    if ((split ? ch__ev_decode_parts(p, n, o, on, d) : ch__ev_decode(p, n, d)) < 0)
        return ch_error_set(err, CH_EPARSE, "record %u does not decode", ord);
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

/* Formats 1-4: read the index area, check its one checksum and find its frames: one per
 * field, or one for all. (Format 5's field table, read at open, has each frame's place.) */
static int check_index(ch_seg *s, ch_error *err)
{
    if (s->ix_checked)
        return 0;
    const uint8_t *h = s->hdr;
    uint64_t ix_off = ch_le_get64(h + 72);
    uint32_t clen = ch_le_get32(h + 80), rawlen = ch_le_get32(h + 84);
    const uint8_t *p;
    int rc = seg_bytes(s, ix_off, clen, &s->ix_area, &s->ix_areacap, &p, err);
    if (rc < 0)
        return rc;
    if (ch_le_get32(h + 88) != ch_crc32c(0, p, clen))
        return ch_error_set(err, CH_EPARSE, "index checksum mismatch at offset %llu",
                            (unsigned long long)ix_off);
    if (rawlen > MAX_INDEX_RAW)
        return ch_error_set(err, CH_EPARSE, "index of %u bytes is too large", rawlen);
    const uint8_t *area = p;
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
    s->ix_area_p = area;
    s->ix_checked = true;
    return 0;
}

/* Format 5: field f's frame read, its own checksum checked (a lookup checks only the frames it
 * reads; `store verify` reads them all), decompressed into s->ix_fraw[f]. */
static int field_frame(ch_seg *s, int f, ch_error *err)
{
    const uint8_t *z;
    int rc = seg_bytes(s, s->ixf_off[f], s->ixf_clen[f], &s->ixz, &s->ixzcap, &z, err);
    if (rc < 0)
        return rc;
    if (s->ixf_crc[f] != ch_crc32c(0, z, s->ixf_clen[f]))
        return ch_error_set(err, CH_EPARSE, "index field %s checksum mismatch at offset %llu",
                            ch__ix_fields[f], (unsigned long long)s->ixf_off[f]);
    uint8_t *raw = ch_malloc(s->ixf_raw[f] ? s->ixf_raw[f] : 1);
    if (raw == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    size_t d = decompress(s, raw, s->ixf_raw[f], z, s->ixf_clen[f]);
    if (ZSTD_isError(d) || d != s->ixf_raw[f]) {
        ch_free(raw);
        return ch_error_set(err, CH_EPARSE, "index field %s does not decompress", ch__ix_fields[f]);
    }
    ch_free(s->ix_fraw[f]);
    s->ix_fraw[f] = raw;
    return 0;
}

/* Format 6: one frame of field f's region at off (clen bytes, inflating to raw, checked
 * against crc) into a new buffer *out; what names it in an error. */
static int x6_inflate(ch_seg *s, int f, uint64_t off, uint32_t clen, uint32_t raw, uint32_t crc,
                      const char *what, uint8_t **out, ch_error *err)
{
    const uint8_t *z;
    int rc = seg_bytes(s, off, clen, &s->ixz, &s->ixzcap, &z, err);
    if (rc < 0)
        return rc;
    if (crc != ch_crc32c(0, z, clen))
        return ch_error_set(err, CH_EPARSE, "index field %s %s checksum mismatch at offset %llu",
                            ch__ix_fields[f], what, (unsigned long long)off);
    uint8_t *b = ch_malloc(raw ? raw : 1);
    if (b == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    size_t d = decompress(s, b, raw, z, clen);
    if (ZSTD_isError(d) || d != raw) {
        ch_free(b);
        return ch_error_set(err, CH_EPARSE, "index field %s %s does not decompress",
                            ch__ix_fields[f], what);
    }
    *out = b;
    return 0;
}

/* Format 6: field f's directory read and checked (its sizes must add up to the region). */
static int x6_dir(ch_seg *s, int f, ch_error *err)
{
    struct x6field *x = &s->x6[f];
    if (x->dir)
        return 0;
    uint32_t dl = s->ixf_raw[f];
    ch_free(x->dirbuf); /* a directory found damaged before is read again */
    ch_free(x->off);
    x->dirbuf = NULL;
    x->off = NULL;
    uint8_t *d = ch_malloc(dl);
    if (d == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    size_t cap = dl;
    const uint8_t *p;
    int rc = seg_bytes(s, s->ixf_off[f], dl, &d, &cap, &p, err);
    if (rc == 0 && p != d)
        memcpy(d, p, dl);
    if (rc == 0 && s->ixf_crc[f] != ch_crc32c(0, d, dl))
        rc = ch_error_set(err, CH_EPARSE,
                          "index field %s directory checksum mismatch at offset %llu",
                          ch__ix_fields[f], (unsigned long long)s->ixf_off[f]);
    if (rc < 0) {
        ch_free(d);
        return rc;
    }
    x->dirbuf = d;
    x->nt = ch_le_get32(d);
    x->np = ch_le_get32(d + 4);
    x->nf = ch_le_get32(d + 8);
    x->width = ch_le_get32(d + 12);
    x->dclen = ch_le_get32(d + 16);
    x->draw = ch_le_get32(d + 20);
    x->dcrc = ch_le_get32(d + 24);
    uint32_t nrec = s->meta.nrec;
    bool ok = x->width == ix6_width(x->nt) && x->np <= x->nt &&
              x->nf == (x->nt ? (nrec + CH_SEG_FWD_RECORDS - 1) / CH_SEG_FWD_RECORDS : 0) &&
              (uint64_t)IX6_DIR + (uint64_t)x->np * IX6_PENT + (uint64_t)x->nf * IX6_FENT == dl &&
              x->draw <= MAX_INDEX_RAW && x->nt <= x->draw;
    uint64_t sum = (uint64_t)dl + x->dclen;
    if (ok && (x->off = ch_malloc(((size_t)x->np + x->nf + 1) * sizeof *x->off)) == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    if (ok)
        x->off[0] = s->ixf_off[f] + dl;
    for (uint32_t c = 0; ok && c < x->np; c++) {
        const uint8_t *e = d + IX6_DIR + (size_t)c * IX6_PENT;
        uint32_t first = ch_le_get32(e);
        ok = (c == 0 || first > ch_le_get32(e - IX6_PENT)) && first < x->nt &&
             ch_le_get32(e + 8) <= MAX_INDEX_RAW;
        x->off[c + 1] = s->ixf_off[f] + sum;
        sum += ch_le_get32(e + 4);
    }
    for (uint32_t c = 0; ok && c < x->nf; c++) {
        x->off[x->np + 1 + c] = s->ixf_off[f] + sum;
        sum += ch_le_get32(d + IX6_DIR + (size_t)x->np * IX6_PENT + (size_t)c * IX6_FENT);
    }
    if (!ok || sum != s->ixf_clen[f])
        return ch_error_set(err, CH_EPARSE,
                            "index field %s directory at offset %llu does not fit its region",
                            ch__ix_fields[f], (unsigned long long)s->ixf_off[f]);
    if (x->np && (x->praw = ch_calloc(x->np, sizeof *x->praw)) == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    x->dir = true;
    return 0;
}

/* Format 6: field f's dictionary: terms and posting counts, postings not yet read (post NULL).
 * Each posting chunk's terms must hold exactly its raw bytes. */
static int x6_dict(ch_seg *s, int f, ch_error *err)
{
    struct x6field *x = &s->x6[f];
    if (x->dict)
        return 0;
    int rc = x6_dir(s, f, err);
    uint8_t *raw = NULL;
    if (rc == 0)
        rc = x6_inflate(s, f, x->off[0], x->dclen, x->draw, x->dcrc, "dictionary", &raw, err);
    if (rc < 0)
        return rc;
    ch_free(s->ix_fraw[f]);
    s->ix_fraw[f] = raw;
    ch_free(s->terms[f]);
    ch_free(x->thick);
    s->terms[f] = x->nt ? ch_malloc((size_t)x->nt * sizeof(ch_seg_term)) : NULL;
    x->thick = x->nt ? ch_calloc(x->nt, sizeof *x->thick) : NULL;
    if (x->nt && (s->terms[f] == NULL || x->thick == NULL))
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    const uint8_t *p = raw, *end = raw + x->draw;
    uint32_t c = 0;
    uint64_t csum = 0, total = 0;
    for (uint32_t i = 0; i < x->nt; i++) {
        uint64_t tl, np, pl;
        if (!ch_leb_get(&p, end, &tl) || tl > (uint64_t)(end - p))
            return ch_error_set(err, CH_EPARSE, "index field %s term %u: bad length",
                                ch__ix_fields[f], i);
        const uint8_t *tp = p;
        p += tl;
        /* a thin term's postings lie in the chunk of the last first term before it */
        bool thick = false;
        if (!ch_leb_get(&p, end, &np) || !ch_leb_get(&p, end, &pl) || np > s->meta.nrec ||
            np == 0 || (pl != 0 && np > pl) || pl > MAX_INDEX_RAW ||
            (pl != 0 && (x->np == 0 || i < ch_le_get32(x->dirbuf + IX6_DIR))) ||
            ((thick = pl == 0) && !ix6_thick(np, s->meta.nrec)))
            return ch_error_set(err, CH_EPARSE, "index field %s term %u: bad postings",
                                ch__ix_fields[f], i);
        x->thick[i] = thick;
        /* a record has at most one term of a field */
        if ((total += np) > s->meta.nrec)
            return ch_error_set(err, CH_EPARSE, "index field %s: more postings than records",
                                ch__ix_fields[f]);
        if (c + 1 < x->np && i == ch_le_get32(x->dirbuf + IX6_DIR + (size_t)(c + 1) * IX6_PENT)) {
            if (csum != ch_le_get32(x->dirbuf + IX6_DIR + (size_t)c * IX6_PENT + 8))
                break;
            c++;
            csum = 0;
        }
        csum += pl;
        s->terms[f][i] = (ch_seg_term){{(const char *)tp, (uint32_t)tl}, NULL, (uint32_t)np, pl};
    }
    if (p != end || (x->np && (c + 1 != x->np || csum != ch_le_get32(x->dirbuf + IX6_DIR +
                                                                     (size_t)c * IX6_PENT + 8))))
        return ch_error_set(err, CH_EPARSE,
                            "index field %s: the dictionary does not fit its posting chunks",
                            ch__ix_fields[f]);
    s->nterms[f] = x->nt;
    x->dict = true;
    return 0;
}

/* Format 6: posting chunk c of field f read and its terms' post set. */
static int x6_chunk(ch_seg *s, int f, uint32_t c, ch_error *err)
{
    struct x6field *x = &s->x6[f];
    if (x->praw[c] != NULL)
        return 0;
    const uint8_t *e = x->dirbuf + IX6_DIR + (size_t)c * IX6_PENT;
    char what[48];
    snprintf(what, sizeof what, "postings chunk %u", c);
    uint8_t *raw;
    int rc = x6_inflate(s, f, x->off[c + 1], ch_le_get32(e + 4), ch_le_get32(e + 8),
                        ch_le_get32(e + 12), what, &raw, err);
    if (rc < 0)
        return rc;
    x->praw[c] = raw;
    uint32_t lo = ch_le_get32(e), hi = c + 1 < x->np ? ch_le_get32(e + IX6_PENT) : x->nt;
    size_t o = 0;
    for (uint32_t i = lo; i < hi; i++) {
        if (x->thick[i])
            continue;
        s->terms[f][i].post = raw + o;
        o += s->terms[f][i].postlen;
    }
    return 0;
}

/* Format 6: column chunk c of field f inflated into x->col (records c * CH_SEG_FWD_RECORDS on). */
static int x6_col(ch_seg *s, int f, uint32_t c, ch_error *err)
{
    struct x6field *x = &s->x6[f];
    if (x->colno == (int64_t)c)
        return 0;
    uint32_t lo = c * CH_SEG_FWD_RECORDS;
    uint32_t cnt = s->meta.nrec - lo < CH_SEG_FWD_RECORDS ? s->meta.nrec - lo : CH_SEG_FWD_RECORDS;
    const uint8_t *e = x->dirbuf + IX6_DIR + (size_t)x->np * IX6_PENT + (size_t)c * IX6_FENT;
    char what[48];
    snprintf(what, sizeof what, "column chunk %u", c);
    uint8_t *raw;
    int rc = x6_inflate(s, f, x->off[x->np + 1 + c], ch_le_get32(e), cnt * x->width,
                        ch_le_get32(e + 4), what, &raw, err);
    if (rc < 0)
        return rc;
    ch_free(x->col);
    x->col = raw;
    x->colno = c;
    return 0;
}

/* Format 6: the postings of field f's thick terms, made from its whole column (each term must
 * hold as many records as the dictionary says). */
static int x6_thick(ch_seg *s, int f, ch_error *err)
{
    struct x6field *x = &s->x6[f];
    if (x->tdone)
        return 0;
    size_t room = 0;
    for (uint32_t i = 0; i < x->nt; i++)
        room += x->thick[i] ? (size_t)s->terms[f][i].npost * 5 : 0;
    size_t *pos = ch_malloc(((size_t)x->nt + 1) * sizeof *pos);
    uint32_t *last = ch_malloc(((size_t)x->nt + 1) * sizeof *last);
    uint32_t *got = ch_calloc((size_t)x->nt + 1, sizeof *got);
    ch_free(x->tpost);
    x->tpost = ch_malloc(room ? room : 1);
    int rc = 0;
    if (pos == NULL || last == NULL || got == NULL || x->tpost == NULL)
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
    for (size_t i = 0, o = 0; rc == 0 && i < x->nt; i++) {
        pos[i] = o;
        last[i] = 0;
        o += x->thick[i] ? s->terms[f][i].npost * 5 : 0;
    }
    for (uint32_t c = 0; rc == 0 && room > 0 && c < x->nf; c++) {
        if ((rc = x6_col(s, f, c, err)) < 0)
            break;
        uint32_t lo = c * CH_SEG_FWD_RECORDS;
        uint32_t cnt =
            s->meta.nrec - lo < CH_SEG_FWD_RECORDS ? s->meta.nrec - lo : CH_SEG_FWD_RECORDS;
        for (uint32_t r = 0; r < cnt; r++) {
            const uint8_t *v = x->col + (size_t)r * x->width;
            uint32_t t = 0;
            for (uint32_t b = 0; b < x->width; b++)
                t |= (uint32_t)v[b] << (8 * b);
            if (t == 0 || t > x->nt || !x->thick[t - 1])
                continue; /* no term, or a thin one (verify checks those against the chunks) */
            t--;
            if (got[t] == s->terms[f][t].npost) {
                got[t]++;
                continue; /* more than the dictionary says: refused below */
            }
            uint32_t ord = lo + r, d = ord - last[t];
            uint8_t *w = x->tpost + pos[t];
            do {
                *w++ = (uint8_t)((d & 0x7f) | (d > 0x7f ? 0x80 : 0));
                d >>= 7;
            } while (d);
            pos[t] = (size_t)(w - x->tpost);
            last[t] = ord;
            got[t]++;
        }
    }
    for (size_t o = 0, i = 0; rc == 0 && i < x->nt; i++) {
        if (!x->thick[i])
            continue;
        if (got[i] != s->terms[f][i].npost) {
            rc = ch_error_set(err, CH_EPARSE,
                              "index field %s: the column holds %u records of term %u, the "
                              "dictionary %u",
                              ch__ix_fields[f], got[i], (uint32_t)i, s->terms[f][i].npost);
            break;
        }
        s->terms[f][i].post = x->tpost + o;
        s->terms[f][i].postlen = pos[i] - o;
        o += s->terms[f][i].npost * 5;
    }
    ch_free(pos);
    ch_free(last);
    ch_free(got);
    x->tdone = rc == 0;
    return rc;
}

/* Format 6: the whole field (dictionary and every chunk), as formats 1-5 load it. */
static int x6_field(ch_seg *s, int f, ch_error *err)
{
    int rc = x6_dict(s, f, err);
    for (uint32_t c = 0; rc == 0 && c < s->x6[f].np; c++)
        rc = x6_chunk(s, f, c, err);
    return rc == 0 ? x6_thick(s, f, err) : rc;
}

static int load_field(ch_seg *s, int f, ch_error *err)
{
    if (s->ix_loaded[f])
        return 0;
    if (s->version >= CH_SEG_FORMAT_CHUNKS) {
        int rc6 = x6_field(s, f, err);
        s->ix_loaded[f] = rc6 == 0;
        return rc6;
    }
    int rc = s->version >= CH_SEG_FORMAT_FIELDS ? 0 : check_index(s, err);
    if (rc < 0)
        return rc;
    if (s->version >= CH_SEG_FORMAT_FIELDS || s->ix_split) {
        unsigned long long cs;
        if (s->version >= CH_SEG_FORMAT_FIELDS) {
            if ((rc = field_frame(s, f, err)) < 0)
                return rc;
            cs = s->ixf_raw[f];
        } else {
            cs = ZSTD_getFrameContentSize(s->ix_frame[f], s->ix_flen[f]);
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
        }
        const uint8_t *raw = s->ix_fraw[f];
        const uint8_t *p = raw;
        if ((rc = parse_field(s, f, &p, raw + cs, err)) < 0)
            return rc;
        if (p != raw + cs)
            return ch_error_set(err, CH_EPARSE, "index field %d: %zu trailing bytes", f,
                                (size_t)(raw + cs - p));
        s->ix_loaded[f] = true;
        return 0;
    }
    uint32_t clen = ch_le_get32(s->hdr + 80), rawlen = ch_le_get32(s->hdr + 84);
    uint8_t *raw = ch_malloc(rawlen ? rawlen : 1);
    if (raw == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    size_t d = decompress(s, raw, rawlen, s->ix_area_p, clen);
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

int ch__seg_dict(ch_seg *s, int field, const ch_seg_term **terms, size_t *n, ch_error *err)
{
    if (field < 0 || field >= CH_IX_NFIELDS)
        return ch_error_set(err, CH_EUSAGE, "field %d is not indexed", field);
    int rc =
        s->version >= CH_SEG_FORMAT_CHUNKS ? x6_dict(s, field, err) : load_field(s, field, err);
    if (rc < 0)
        return rc;
    *terms = s->terms[field];
    *n = s->nterms[field];
    return 0;
}

int ch__seg_term_post(ch_seg *s, int field, size_t i, ch_error *err)
{
    if (s->version < CH_SEG_FORMAT_CHUNKS)
        return 0;
    const struct x6field *x = &s->x6[field];
    if (!x->dict || i >= x->nt)
        return ch_error_set(err, CH_EUSAGE, "term %zu of field %d not in its dictionary", i, field);
    if (s->terms[field][i].post != NULL)
        return 0;
    if (x->thick[i])
        return x6_thick(s, field, err);
    uint32_t lo = 0, hi = x->np; /* the last chunk whose first term is at most i */
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (ch_le_get32(x->dirbuf + IX6_DIR + (size_t)mid * IX6_PENT) <= i)
            lo = mid;
        else
            hi = mid;
    }
    return x6_chunk(s, field, lo, err);
}

bool ch__seg_has_fwd(const ch_seg *s) { return s->version >= CH_SEG_FORMAT_CHUNKS; }

int ch__seg_fwd(ch_seg *s, int field, uint32_t ord, uint32_t *term, ch_error *err)
{
    if (s->version < CH_SEG_FORMAT_CHUNKS || field < 0 || field >= CH_IX_NFIELDS)
        return ch_error_set(err, CH_EUSAGE, "format %u keeps no record -> term column", s->version);
    if (ord >= s->meta.nrec)
        return ch_error_set(err, CH_EPARSE, "record %u past the segment's %u", ord, s->meta.nrec);
    int rc = x6_dir(s, field, err);
    if (rc < 0)
        return rc;
    struct x6field *x = &s->x6[field];
    if (x->nt == 0) {
        *term = UINT32_MAX;
        return 0;
    }
    uint32_t c = ord / CH_SEG_FWD_RECORDS, lo = c * CH_SEG_FWD_RECORDS;
    if ((rc = x6_col(s, field, c, err)) < 0)
        return rc;
    const uint8_t *v = x->col + (size_t)(ord - lo) * x->width;
    uint32_t t = 0;
    for (uint32_t b = 0; b < x->width; b++)
        t |= (uint32_t)v[b] << (8 * b);
    if (t > x->nt)
        return ch_error_set(err, CH_EPARSE, "index field %s: record %u names term %u of %u",
                            ch__ix_fields[field], ord, t, x->nt);
    *term = t ? t - 1 : UINT32_MAX;
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
    /* format 6: each record's term in the column, as the postings say */
    uint32_t *col = NULL;
    if (s->version >= CH_SEG_FORMAT_CHUNKS &&
        (col = ch_malloc(((size_t)s->meta.nrec + 1) * sizeof *col)) == NULL)
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
    for (int f = 0; f < CH_IX_NFIELDS && rc == 0; f++) {
        if (col != NULL)
            memset(col, 0xff, ((size_t)s->meta.nrec + 1) * sizeof *col);
        for (size_t i = 0; i < s->nterms[f] && rc == 0; i++) {
            if (ch__seg_postings(&s->terms[f][i], tmp, s->meta.nrec) < 0) {
                rc = ch_error_set(err, CH_EPARSE, "index field %s: damaged postings",
                                  ch__ix_fields[f]);
                break;
            }
            for (uint32_t k = 0; col != NULL && k < s->terms[f][i].npost && rc == 0; k++) {
                if (col[tmp[k]] != UINT32_MAX)
                    rc = ch_error_set(err, CH_EPARSE, "index field %s: record %u in two terms",
                                      ch__ix_fields[f], tmp[k]);
                col[tmp[k]] = (uint32_t)i;
            }
        }
        for (uint32_t r = 0; col != NULL && r < s->meta.nrec && rc == 0; r++) {
            uint32_t got;
            if ((rc = ch__seg_fwd(s, f, r, &got, err)) == 0 && got != col[r])
                rc = ch_error_set(err, CH_EPARSE,
                                  "index field %s: the column gives record %u another term than "
                                  "the postings",
                                  ch__ix_fields[f], r);
        }
    }
    ch_free(col);
    ch_free(tmp);
    ch_ev_decoded *d = ch_malloc(sizeof *d);
    if (d == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    uint64_t raw = 0;
    for (uint32_t i = 0; i < s->meta.nrec && rc == 0; i++) {
        size_t stored = 0;
        rc = ch__seg_decode(s, i, d, &stored, err);
        raw += stored;
        if (rc == 0 && (d->ev.ts_ms < s->meta.min_ts || d->ev.ts_ms > s->meta.max_ts))
            rc = ch_error_set(err, CH_EPARSE, "record %u lies outside the time bounds", i);
    }
    if (rc == 0 && raw != s->meta.raw_bytes)
        rc = ch_error_set(err, CH_EPARSE, "records hold %llu bytes, header says %llu",
                          (unsigned long long)raw, (unsigned long long)s->meta.raw_bytes);
    ch_free(d);
    return rc;
}
