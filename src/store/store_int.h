/*
 * store_int.h - the inside of the event store, shared by its files:
 *   evcodec.c   a normalized event <-> its stored bytes (typed slots and the original record)
 *   segment.c   the segment file format: header, compressed blocks, term index, checksums
 *   local.c     the local store: a directory of segments beside the SQLite file
 *   search.c    plans and runs a search over any store through the ops table
 *   summary.c   the per-day term summary: which segments of a day hold which terms
 * Nothing here is part of the public contract (store.h, search.h).
 */
#ifndef CH_STORE_STORE_INT_H
#define CH_STORE_STORE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/event.h"
#include "store/evstore.h"

/* ---- codec ---- */

/* Append ev's stored form to b: the typed part then the original part (evcodec.c).
 * CH_ENOMEM / CH_ELIMIT. */
int ch__ev_encode(const ch_event *ev, uint64_t rid, ch_buf *b);
/* The two parts alone: the typed slots (and rid), and the original record. */
int ch__ev_encode_typed(const ch_event *ev, uint64_t rid, ch_buf *b);
int ch__ev_encode_orig(const ch_event *ev, ch_buf *b);

#define CH_EV_MAX_COLUMNS 128

/* Decoded event: every view points into the record's bytes (which must outlive it). */
typedef struct ch_ev_decoded {
    ch_event ev;
    uint64_t rid;
    ch_sv names[CH_EV_MAX_COLUMNS], values[CH_EV_MAX_COLUMNS];
} ch_ev_decoded;

/* Decode p[0..n) into d. CH_EPARSE when the bytes are not a stored event. */
int ch__ev_decode(const uint8_t *p, size_t n, ch_ev_decoded *d);
/* Decode a typed part t[0..tn) and an original part o[0..on) into d; o NULL decodes the typed
 * part alone (no original record: raw_json NULL, no columns). */
int ch__ev_decode_parts(const uint8_t *t, size_t tn, const uint8_t *o, size_t on, ch_ev_decoded *d);
/* The original part o[0..on) alone into d: an event with nothing but its original record
 * (raw_json or the columns; every normalized slot empty, rid 0). CH_EPARSE when damaged. */
int ch__ev_decode_orig(const uint8_t *o, size_t on, ch_ev_decoded *d);
/* The record's JSON text from its original part alone (the part's first item), without
 * decoding either part: false when the part does not start with one. */
bool ch__ev_orig_text(const uint8_t *o, size_t on, ch_sv *out);

/* Format 4's columns: a typed part cut into CH_EV_TYPED_ITEMS items, item i at
 * p[off[i]..off[i+1]) (off[CH_EV_TYPED_ITEMS] == n). Items 1-3 are the record id, the time and
 * the end time (8 bytes each); items 7 .. 7+CH_EV_TYPED_SVS-1 the event's strings. CH_EPARSE
 * when p is not a typed part. */
#define CH_EV_TYPED_SVS 22
#define CH_EV_TYPED_ITEMS (7 + CH_EV_TYPED_SVS + 12)
int ch__ev_typed_split(const uint8_t *p, size_t n, uint32_t off[CH_EV_TYPED_ITEMS + 1]);
/* ch__ev_encode_typed that also says where each item starts in what it appended (off[i],
 * from the typed part's first byte): exactly what ch__ev_typed_split finds in those bytes. */
int ch__ev_encode_typed_at(const ch_event *ev, uint64_t rid, ch_buf *b,
                           uint32_t off[CH_EV_TYPED_ITEMS + 1]);

/* Format 4's typed frame (evcols.c): the block rows[0..n) of cnt typed parts, each
 * [u32 length][typed part], appended to out column by column. CH_EPARSE when the rows are not
 * typed parts, CH_ENOMEM. */
int ch__evcols_encode(const uint8_t *rows, size_t n, uint32_t cnt, ch_buf *out);
/* The same with each record's item offsets known (off[i]: record i's, from
 * ch__ev_encode_typed_at), so the rows are not parsed again; they are checked against the
 * rows' lengths. */
int ch__evcols_encode_at(const uint8_t *rows, size_t n, uint32_t cnt,
                         const uint32_t (*off)[CH_EV_TYPED_ITEMS + 1], ch_buf *out);
/* The rows back from the columns c[0..n) of a block of cnt records: into *rows (grown as
 * needed, *cap its size), *rows_len bytes. *scratch: NULL at first, kept between calls by the
 * caller and freed with ch__evcols_scratch_free. CH_EPARSE when damaged, CH_ENOMEM. */
typedef struct ch_evcols_scratch ch_evcols_scratch;
int ch__evcols_decode(const uint8_t *c, size_t n, uint32_t cnt, uint8_t **rows, size_t *cap,
                      size_t *rows_len, ch_evcols_scratch **scratch);
void ch__evcols_scratch_free(ch_evcols_scratch *s);
/* Record i alone of the same columns, its typed part (without the length) into *row (grown
 * to *cap; the caller frees it), its length in *row_len: for a lookup that reads one or two
 * records of a block, about a tenth of rebuilding all of them. The columns are checked as far
 * as this record needs (its values, every column's bounds), not the rows' total length.
 * CH_EPARSE when damaged, CH_ENOMEM. */
int ch__evcols_row(const uint8_t *c, size_t n, uint32_t cnt, uint32_t i, uint8_t **row, size_t *cap,
                   size_t *row_len);

/* The indexed fields: index i of a segment's term dictionaries. */
#define CH_IX_NFIELDS 9
extern const char *const ch__ix_fields[CH_IX_NFIELDS];
/* Index of path among the indexed fields, or -1. */
int ch__ix_field(const char *path);
/* Is field i an address (terms are canonical address text)? */
bool ch__ix_is_ip(int i);
/* The values of field i in ev, as text, passed to fn (at most one per field except none). */
size_t ch__ix_terms(const ch_event *ev, int i, char buf[64], ch_sv *out);

/* ---- segments ---- */

#define CH_SEG_MAGIC "CHSEG\x00\x01\x00"
#define CH_SEG_HEADER 128
#define CH_SEG_BLOCK_RECORDS 256

typedef struct ch_seg_meta {
    uint32_t dataset;
    uint64_t gen;
    uint32_t seq;
    uint32_t nrec;
    int64_t min_ts, max_ts;
    uint64_t raw_bytes; /* uncompressed record bytes */
    uint64_t file_bytes;
    uint32_t nblocks;
} ch_seg_meta;

/* Segment formats (segment.c): 1 blocks compressed alone, 2 later blocks compressed with
 * block 0 as dictionary, 3 each block as two streams (typed parts, original records). */
#define CH_SEG_FORMAT_PLAIN 1
#define CH_SEG_FORMAT_DICT 2
#define CH_SEG_FORMAT_SPLIT 3
/* 4: format 3 whose typed frames hold the block's typed parts column by column (evcols.c) */
#define CH_SEG_FORMAT_COLS 4
/* 5: format 4 whose index area starts with a table of its field frames, each with its own
 * CRC32C, so that a lookup checks only the frames it reads (segment.c) */
#define CH_SEG_FORMAT_FIELDS 5
/* 6: format 5 whose field frames are cut into independently compressed and checksummed parts:
 * a directory, the term dictionary (terms and posting counts), posting chunks by term range and
 * a record -> term column in chunks of CH_SEG_FWD_RECORDS records, so that a lookup inflates
 * the dictionary and the one chunk holding its term, and a count from the index reads the
 * grouping field's term of each match from the column (segment.c) */
#define CH_SEG_FORMAT_CHUNKS 6
#define CH_SEG_FWD_RECORDS 1024
/* Format 3 and 4 header flags: which streams' later blocks use block 0 as their dictionary. */
#define CH_SEG_TYPED_DICT 1u
#define CH_SEG_ORIG_DICT 2u

/* One block of a segment being built: its records while it fills, then its zstd frames.
 * A full block is handed to whoever compresses it (the store's writer thread, or
 * ch__segb_write for the blocks still raw) and the builder never touches it again. */
typedef struct ch_seg_block {
    /* [u32 length][record]...: whole stored events (formats 1, 2) or their typed parts
     * (formats 3, 4); freed once compressed, except block 0's */
    ch_buf raw;
    ch_buf orig; /* formats 3, 4: [u32 length][original part]... */
    ch_buf tcol; /* format 4: raw as columns (what the typed frame holds); kept in block 0 */
    /* format 4: per record, where its typed items start (ch__ev_encode_typed_at), so that
     * making the columns does not parse the rows again; freed once compressed */
    uint32_t (*toff)[CH_EV_TYPED_ITEMS + 1];
    uint8_t *z, *oz; /* the compressed frames, NULL until compressed */
    size_t zlen, ozlen;
    uint32_t rawlen, origlen, first, cnt, crc, ocrc;
    uint32_t zrawlen; /* what the typed (or only) frame decompresses to: rawlen, or tcol's */
    uint32_t format, flags;
    int level; /* zstd level of every frame, 0 = the format's own (a hot segment's: 1) */
    /* `store hot raw`: the frames are raw and orig themselves, written as zstd frames of raw
     * blocks (z and oz NULL): kept until ch__segb_write, or written to the spill files at once
     * (sfd below); zlen, ozlen, crc and ocrc are those frames' */
    bool stored;
    /* `store hot raw` in a store that spills (ch__segb_spill): where the block's two frames go
     * in the segment's temporary files (the original frame at soff in sfd, the segment's own,
     * the typed one at sooff in sofd), set by ch__segb_add when the block fills; sfd -1 when
     * the block is kept in memory. ch__segb_compress writes them there and frees the buffers
     * (spilled), so a full raw block holds no memory once a writer thread has had it. */
    int sfd, sofd;
    uint64_t soff, sooff;
    bool spilled;
    /* Blocks after the first may be compressed with the first block's records as their zstd
     * dictionary (segment.c says why): dict is block 0, and block 0's cdict / ocdict is that
     * dictionary prepared once, by whoever compresses block 1. */
    struct ch_seg_block *dict;
    void *cdict, *ocdict;
} ch_seg_block;

/* A segment being built in memory (the open segment of one dataset and hour). Only the block
 * being filled is kept raw: the others are compressed as they fill, so an open segment holds
 * about a seventh of its raw bytes. */
typedef struct ch_seg_builder {
    uint32_t dataset;
    int64_t hour;
    uint32_t format, flags; /* what ch__segb_init chose (COINHOUND_STORE_FORMAT for benches) */
    int level;              /* 0, or a hot segment's zstd level for blocks and index */
    uint32_t nrec;
    int64_t min_ts, max_ts;
    uint64_t raw_bytes; /* record bytes, length prefixes included */
    ch_seg_block **blocks;
    size_t nblocks, capblocks;
    /* per indexed field: (term, ordinal) pairs appended as they come; sorted at seal */
    ch_buf terms[CH_IX_NFIELDS];
    /* ch__segb_spill: the base of the temporary files' names (allocated, NULL when the builder
     * does not spill), their descriptors once the first block fills (-1 before, and after a
     * failure to create them: the blocks then stay in memory, same bytes), and the offsets the
     * next full block's frames take in them */
    char *spath;
    int sfd, sofd;
    uint64_t stoff, sooff;
} ch_seg_builder;

void ch__segb_init(ch_seg_builder *b, uint32_t dataset, int64_t hour);
/* A hot segment's builder: sealed on the ingest path as cheaply as a readable format allows
 * (format 3, no block-0 dictionaries, zstd level 1 for blocks and index), to be rewritten cold
 * (ch__segb_init's format) by compaction. The index is the same: hot data is searched with
 * indexed lookups. local.c marks hot segments by their file name. */
void ch__segb_init_hot(ch_seg_builder *b, uint32_t dataset, int64_t hour);
/* A hot segment whose frames are stored, not compressed (`store hot raw`): zstd frames of raw
 * blocks (ch__seg_raw_frame), which every reader decodes as it decodes the others; 5-6x the
 * bytes of a level-1 hot segment until compaction rewrites it cold. */
void ch__segb_init_raw(ch_seg_builder *b, uint32_t dataset, int64_t hour);
/* Whether b was made by ch__segb_init_raw (its frames are stored, not compressed). */
bool ch__segb_is_raw(const ch_seg_builder *b);
/* A raw builder (ch__segb_init_raw) whose full blocks go to disk as they fill: each block's
 * original-record frame to <base>.seg.tmp at its final offset (a raw segment's original frames
 * come first), its typed frame to <base>-t.seg.tmp, which ch__segb_write appends to the first
 * (a quarter of the bytes the other way round would copy) before renaming it to the
 * segment's name. Until then both are temporary files (removed at the store's next open after
 * a crash, and by ch__segb_free), so a segment still becomes visible only sealed and fsynced.
 * The bytes written are those of an in-memory raw builder. CH_ENOMEM. */
int ch__segb_spill(ch_seg_builder *b, const char *base);
/* src[0..n) as one zstd frame of raw blocks into dst, which holds ch__seg_raw_bound(n) bytes;
 * the frame's size. n < 4 GiB. */
size_t ch__seg_raw_bound(size_t n);
size_t ch__seg_raw_frame(uint8_t *dst, const void *src, size_t n);
void ch__segb_free(ch_seg_builder *b);
int ch__segb_add(ch_seg_builder *b, const ch_event *ev, uint64_t rid);
/* The block the last add filled (CH_SEG_BLOCK_RECORDS records), or NULL: the caller may
 * compress it now, on any thread, with ch__segb_compress; the builder no longer writes it. */
ch_seg_block *ch__segb_full(const ch_seg_builder *b);
/* Compress one block with cctx (a ZSTD_CCtx, not shared between threads at once). */
int ch__segb_compress(ch_seg_block *blk, void *cctx, ch_error *err);
/* Write the sealed segment to path (via path.tmp, fsynced, renamed), compressing the blocks
 * still raw. cctx: a ZSTD_CCtx to reuse, or NULL. */
int ch__segb_write(ch_seg_builder *b, const char *path, uint64_t gen, uint32_t seq, void *cctx,
                   uint64_t *bytes_out, ch_error *err);

/* Feed the records of the segments at inputs[0..n) to b, ordered for lookups (compact.c: by
 * user, domain, interface or address, then time; COINHOUND_STORE_CLUSTER=off: input order),
 * compressing each block as it fills with cctx. Stops with CH_ERR when *abort is set; a
 * damaged input is CH_EPARSE naming its path. */
int ch__compact_merge(const char *const *inputs, size_t n, ch_seg_builder *b, void *cctx,
                      atomic_bool *abort, ch_error *err);

/* An open sealed segment: header and block table checked, index decoded on demand. A file is
 * read with pread (header and block table at open, frames when first asked for); a segment
 * opened from memory reads it in place. */
typedef struct ch_seg ch_seg;

int ch__seg_open(const char *path, ch_seg **out, ch_error *err);
/* From memory (the fuzz target): buf is borrowed and must outlive the segment. */
int ch__seg_open_mem(const uint8_t *buf, size_t n, ch_seg **out, ch_error *err);
void ch__seg_close(ch_seg *s);
/* Close the file of a segment opened by path and keep what was read: a caller that holds many
 * segments open (a day summary's rebuild) uses no descriptor per segment; a later read opens
 * the file again. */
void ch__seg_release(ch_seg *s);
/* Decompress with dctx (a ZSTD_DCtx the caller keeps for many segments) instead of one of
 * the segment's own. */
void ch__seg_use_dctx(ch_seg *s, void *dctx);
const ch_seg_meta *ch__seg_meta(const ch_seg *s);
/* Check every checksum and decode every record. */
int ch__seg_verify(ch_seg *s, ch_error *err);

/* Postings of field i: terms visited in order; fn gets the term and may take its ordinals
 * through ch__seg_postings. Loads the index on first use (CH_EPARSE when damaged). */
typedef struct ch_seg_term {
    ch_sv term;
    const uint8_t *post; /* varint deltas */
    uint32_t npost;
    size_t postlen;
} ch_seg_term;
int ch__seg_terms(ch_seg *s, int field, const ch_seg_term **terms, size_t *n, ch_error *err);
/* Field f's term dictionary alone: every term with its posting count, in order, but a term's
 * post may be NULL until ch__seg_term_post loads it (format 6 keeps postings in chunks by term
 * range; older formats give every term's postings, as ch__seg_terms). */
int ch__seg_dict(ch_seg *s, int field, const ch_seg_term **terms, size_t *n, ch_error *err);
/* Make term i of field f's dictionary (from ch__seg_dict) carry its postings: format 6 reads,
 * checks and inflates the chunk holding it. */
int ch__seg_term_post(ch_seg *s, int field, size_t i, ch_error *err);
/* Does s keep a record -> term column per field (format 6)? */
bool ch__seg_has_fwd(const ch_seg *s);
/* The number of the term of field f (in ch__seg_dict's order) that record ord has, or
 * UINT32_MAX when it has none: format 6's column, read by chunk. CH_EUSAGE for other formats,
 * CH_EPARSE when damaged. */
int ch__seg_fwd(ch_seg *s, int field, uint32_t ord, uint32_t *term, ch_error *err);
/* Format 6's index area of the raw index raw[0..n) (per field: the term count, then per term
 * its bytes, posting count, posting bytes and delta-varint ordinals, as build_index makes it)
 * of a segment of nrec records, appended to area: the field table (whose CRC32C goes in the
 * header), then each field's parts. cctx: a ZSTD_CCtx. bench/seg_format6.c uses it too. */
int ch__seg_index6(void *cctx, const uint8_t *raw, size_t n, uint32_t nrec, ch_buf *area,
                   ch_error *err);
/* Decode a term's ordinals into out (npost entries). */
int ch__seg_postings(const ch_seg_term *t, uint32_t *out, uint32_t nrec);

/* Record ord decoded into d, its typed and original parts (whatever the format); *stored
 * (optional) its stored bytes with their length prefixes, as the header's raw byte count adds
 * them. The views in d are valid until the next read of s. CH_EPARSE with the reason (a block's
 * checksum, or "record N does not decode"). Compaction and `verify` read records this way; a
 * search reads the typed part first and the original only for what it prints. */
int ch__seg_decode(ch_seg *s, uint32_t ord, ch_ev_decoded *d, size_t *stored, ch_error *err);
/* Record ordinal -> its whole stored bytes (decompressing its block on demand; the bytes are
 * valid until the next call on s). Formats 3 and 4 join the two parts in a buffer of s. */
int ch__seg_record(ch_seg *s, uint32_t ord, const uint8_t **p, size_t *n, ch_error *err);
/* The segment's layout (CH_SEG_FORMAT_*): CH_SEG_FORMAT_SPLIT for formats 3 to 6 alike (4
 * differs only inside the typed frame, and its reader rebuilds format 3's typed parts; 5 only in
 * the index area's table). With
 * CH_SEG_FORMAT_SPLIT, ch__seg_typed gives a
 * record's typed part and ch__seg_orig its original part, each from its own stream (a search
 * that needs no original record never decompresses that stream); with the others,
 * ch__seg_typed gives the whole record and ch__seg_orig fails. Bytes valid until the next
 * call on the same stream. */
uint32_t ch__seg_format(const ch_seg *s);
/* The format number in the file's header (1 to 6). */
uint32_t ch__seg_version(const ch_seg *s);
int ch__seg_typed(ch_seg *s, uint32_t ord, const uint8_t **p, size_t *n, ch_error *err);
int ch__seg_orig(ch_seg *s, uint32_t ord, const uint8_t **p, size_t *n, ch_error *err);
/* Blocks decompressed so far (--explain, benchmarks): the typed (or whole-record) stream's,
 * and formats 3 and 4's original-record stream's. */
uint64_t ch__seg_blocks_read(const ch_seg *s);
uint64_t ch__seg_orig_blocks_read(const ch_seg *s);

/* ---- per-day term summary (summary.c) ---- */

typedef struct ch_sum ch_sum;

/* A segment the summary covers, by file name (names are unique: generation and sequence). */
typedef struct ch_sum_seg {
    const char *name;
    uint32_t nrec;
    uint64_t bytes;
    int64_t min_ts, max_ts;
} ch_sum_seg;

/* One segment of a day as the directory lists it: file name and full path. */
typedef struct ch_sum_input {
    const char *name;
    const char *path;
} ch_sum_input;

/* The day (UTC, days since the epoch) of an hour since the epoch. */
int64_t ch__sum_day_of_hour(int64_t hour);
/* "<dir>/day-<day>.sum". CH_ELIMIT when it does not fit. */
int ch__sum_path(const char *dir, int64_t day, char *buf, size_t cap);
/* Open and check the header and segment table (CH_ENOTFOUND: no such file; CH_EPARSE with
 * the reason when damaged). Field frames are checked when first read. */
int ch__sum_open(const char *path, ch_sum **out, ch_error *err);
/* From memory (the fuzz target): buf is borrowed and must outlive the summary. */
int ch__sum_open_mem(const uint8_t *buf, size_t n, ch_sum **out, ch_error *err);
void ch__sum_close(ch_sum *s);
int64_t ch__sum_day(const ch_sum *s);
uint32_t ch__sum_nseg(const ch_sum *s);
const ch_sum_seg *ch__sum_seg(const ch_sum *s, uint32_t i);
/* The number of the covered segment called name, or -1. */
long ch__sum_find(const ch_sum *s, const char *name);
/* Field f's terms, postings are segment numbers (decode with ch__seg_postings, nrec = nseg). */
int ch__sum_terms(ch_sum *s, int f, const ch_seg_term **terms, size_t *n, ch_error *err);
/* Is s current for the day's segments in[0..n)? With slack 0: it covers exactly those. With
 * slack > 0: at most slack of them are not covered (covered segments that are gone cost a
 * search nothing, an uncovered one an open). */
bool ch__sum_current(const ch_sum *s, const ch_sum_input *in, size_t n, size_t slack);
/* The slack a summary of the newest day of a store is allowed before it is rewritten:
 * CH_SUM_SLACK, or COINHOUND_STORE_SUM_SLACK (0: rewrite at every change, for comparisons).
 * `serve` adds segments to that day at every checkpoint, and rewriting a summary that grows
 * all day at every one of them made the day's cost quadratic. Older days have no slack. */
#define CH_SUM_SLACK 32
size_t ch__sum_slack(void);
/* Write the summary of the day's segments in[0..n) to path (via a temporary and rename);
 * the segments old covers are taken from it, the others read from their index. n == 0
 * removes the file. */
int ch__sum_write(const char *path, int64_t day, const ch_sum_input *in, size_t n, ch_sum *old,
                  ch_error *err);
/* Bring dir's summary of day up to date with its segments in[0..n) (nothing when it is
 * current within slack, see ch__sum_current). */
int ch__sum_refresh(const char *dir, int64_t day, const ch_sum_input *in, size_t n, size_t slack,
                    ch_error *err);
/* Check every frame and posting of s, and that each covered segment of in[0..n) that opens
 * has the recorded header facts and exactly the recorded terms. */
int ch__sum_verify(ch_sum *s, const ch_sum_input *in, size_t n, ch_error *err);
/* For a search, the day's listed segments in[0..n) that the summary rules out: skip[i]. A
 * missing or damaged summary, or one not current within slack, is rebuilt when dir is
 * writable; damage is reported through the search and rules nothing out. Negative only for
 * out of memory. */
int ch__sum_plan_day(const char *dir, int64_t day, const ch_sum_input *in, size_t n, size_t slack,
                     ch_search *sr, bool *skip, ch_error *err);

/* ---- term sort (termsort.c) ----
 * An index term (p[0..n), borrowed) with its first 8 bytes as a big-endian key
 * (ch__tsort_key) and a tie-breaker, sorted by bytes (shorter first on a common prefix), then
 * tie. CH_ENOMEM. */
typedef struct ch_tsort {
    uint64_t key;
    const char *p;
    uint32_t n;
    uint32_t tie;
} ch_tsort;
uint64_t ch__tsort_key(const char *p, uint32_t n);
int ch__tsort(ch_tsort *v, size_t n);

#endif
