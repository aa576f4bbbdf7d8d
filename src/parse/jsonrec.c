/*
 * jsonrec.c - split JSON text into records by tracking only strings and bracket depth.
 *
 * The scanner takes the input 64 bytes at a time, as bit masks of its quotes, backslashes,
 * brackets and newlines (AVX2 compares where the CPU has them, else SSE2: the same masks).
 * Inside a record, a block without a backslash is settled from its quotes alone: a prefix XOR
 * of the quote mask marks the bytes inside strings, and only the brackets and newlines outside
 * them are visited, a few per block of CloudTrail against six or seven quotes (this took the
 * splitter from 24% to 17% of a gzip'd S3 run's instructions: docs/BENCHMARKS.md section 37;
 * AVX2 took it to 13%, section 44). A block with a backslash, and a top-level
 * object (which may be the S3 envelope, whose "Records" key is looked for), are walked one
 * quote, bracket or newline at a time, a backslash skipping the byte after it. Depth is
 * a counter, not a stack: `{]` is not noticed (simdjson rejects the record later), but nesting
 * a million deep costs nothing, and the cap (CH_JSONREC_MAX_DEPTH) is a report, not a crash.
 * Records are never copied: they are returned in place in the input window, and the scanner
 * keeps its state (position, depth, inside a string) across refills, so no byte is scanned
 * twice except the few of a refill boundary. A record larger than max_record is dropped
 * chunk by chunk as it streams by, so memory is bounded by max_record, whatever the input (a
 * JSON Lines line by the window: it is kept until its newline is in view, see S_TOP).
 *
 * Shapes, decided as the input goes:
 *  - a top-level '[' opens an array whose object elements are records;
 *  - a top-level '{' is a record, unless a "Records" key at its depth 1 holds an array: then
 *    it is the CloudTrail S3 envelope, its other keys are skipped and the array's elements
 *    are records (the key is found wherever it sits in the object);
 *  - JSON Lines: when the first top-level record sits on one line and a newline follows it,
 *    every later top-level record is looked for within its line only (memchr finds the line
 *    end first), so an unbalanced line costs that line and nothing else. The line bounds
 *    everything found on it, a per-line S3 envelope's Records array included: an array left
 *    open at the line's end is reported there, and the next line starts afresh;
 *  - otherwise top-level objects follow one another, pretty-printed or not, and a damaged one
 *    can only be reported when the input ends inside it.
 * Lines are counted as the scanner meets newlines (outside strings, where JSON allows them),
 * so every record and every report carries its line at no extra pass.
 *
 * Where a record is cut never depends on where a read window ends: the window only decides
 * which records are too large to keep (dropped, and reported), never where the splitter picks
 * up again after damage. That is why a JSON Lines line too long for the window, which is
 * skipped to its newline unread, must not hold anything that would have reached past that
 * newline had the line fitted: an envelope's array that escaped its line would swallow the
 * lines after it with a large window and leave them as records with a small one (a fuzz
 * finding, issue 15; tests/fuzz/fuzz_jsonrec.c checks the invariance).
 */
#include "parse/jsonrec.h"

#include <string.h>
#include <stdlib.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define JSONREC_AVX2 1
#endif

#include "core/json.h"
#include "core/mem.h"

#define NONE SIZE_MAX

typedef enum state {
    S_TOP,      /* between top-level values */
    S_ARRAY,    /* between elements of an array (top-level or the envelope's Records) */
    S_VALUE,    /* inside a value being scanned */
    S_SCALAR,   /* inside a non-object scalar element being skipped */
    S_GARBAGE,  /* skipping bytes that are not JSON up to the next '{' or '[' */
    S_SKIPLINE, /* JSON Lines: dropping the rest of a line too long to be a record */
    S_DONE,
} state;

typedef enum kind {
    K_TOP,      /* top-level object: a record, or the envelope */
    K_ELEM,     /* object element of an array: a record */
    K_NONOBJ,   /* array element that is not an object: skipped and reported */
    K_ENV_TAIL, /* the rest of the envelope after its Records array */
} kind;

typedef enum mode { M_UNKNOWN, M_JSONL, M_SEQ } mode;

enum { SCAN_MORE, SCAN_DONE, SCAN_ENVELOPE };

struct ch_jsonrec {
    ch_input *in;
    ch_diag *diag;
    ch_dataset ds;
    size_t max_record;
    uint64_t max_depth;
    state st;
    mode mode;
    bool first_seen;   /* the first top-level record was seen */
    bool detect_jsonl; /* it was on one line: a newline before anything else means JSON Lines */
    bool track_lines;
    uint64_t line;  /* line of the byte at `pos` */
    size_t pos;     /* scan position, relative to the window start */
    size_t pending; /* bytes to consume at the next call (the record returned last) */

    /* the array being walked */
    bool in_env;
    bool need_sep; /* an array element ended: a ',' must come before the next one */
    uint64_t arr_off, arr_line;

    /* the value being scanned */
    kind kind;
    size_t vstart; /* window-relative start, NONE once dropped (skipping) */
    uint64_t voff, vline;
    size_t lim;      /* JSON Lines: window-relative end of the line being scanned (value,
                      * envelope array, its elements and tail), else NONE. While it is set the
                      * whole line is in the window: nothing on it needs a refill. */
    size_t eol_scan; /* JSON Lines: bytes from pos already searched for '\n' */
    uint64_t depth;
    size_t str_start; /* window-relative start of the string being scanned, or NONE */
    bool in_str;
    bool esc; /* the byte at pos is escaped (a backslash ended the last scan) */
    bool multiline, records_key, too_deep, too_large, skipping;
    bool at_failure; /* JSON Lines: the input failed inside the last line (line_ended) */
    bool bom_seen;   /* the input's first bytes were looked at for a byte order mark */
    bool avx2;       /* block masks with AVX2 (ch_jsonrec_new: the CPU has it) */
    bool key_ok;     /* the string's dropped part matched the start of "Records" */
    size_t key_have; /* ... that many bytes of it */
    char scalar_first;
};

ch_jsonrec *ch_jsonrec_new(ch_input *in, size_t max_record)
{
    ch_jsonrec *r = ch_calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    size_t w = ch_input_max_window(in);
    r->in = in;
    r->max_record = max_record == 0 || max_record > w ? w : max_record;
    r->max_depth = CH_JSONREC_MAX_DEPTH;
    r->st = S_TOP;
    r->mode = M_UNKNOWN;
    /* Lines count from the start of the input (for a chunk of a file, from the chunk's start:
     * its reader adds the lines before it); a window already moved cannot know its line. */
    r->track_lines = ch_input_offset(in) == ch_input_origin(in);
    r->line = 1;
    r->lim = NONE;
    r->vstart = NONE;
    r->str_start = NONE;
#ifdef JSONREC_AVX2
    /* COINHOUND_SIMD=sse2 takes the SSE2 masks on any CPU: the tests and the fuzz target
     * compare the two, which must split every input alike. */
    const char *simd = getenv("COINHOUND_SIMD");
    r->avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("pclmul") &&
              !(simd != NULL && strcmp(simd, "sse2") == 0);
#endif
    return r;
}

void ch_jsonrec_free(ch_jsonrec *r) { ch_free(r); }

void ch_jsonrec_set_max_depth(ch_jsonrec *r, uint64_t max_depth)
{
    r->max_depth = max_depth ? max_depth : CH_JSONREC_MAX_DEPTH;
}

static uint64_t line_of(const ch_jsonrec *r, uint64_t line) { return r->track_lines ? line : 0; }

#define REPORT(r, line, off, reason, ...)                                                          \
    ch_diag_report((r)->diag, (r)->ds, ch_input_name((r)->in), line_of((r), (line)), (off),        \
                   (reason), __VA_ARGS__)

/* Drop n bytes from the window front, keeping every window-relative position right. */
static void drop(ch_jsonrec *r, size_t n)
{
    if (n == 0)
        return;
    if (r->st == S_VALUE && r->in_str && n == r->pos) {
        /* Skipping through a string: remember how much of "Records" it matched so far, so
         * the envelope is found even when its key straddles a refill. */
        size_t len;
        const char *b = ch_input_data(r->in, &len);
        size_t from = r->str_start != NONE ? r->str_start : 0, seg = n - from;
        if (r->key_ok && r->key_have + seg <= 7 &&
            memcmp(b + from, &"Records"[r->key_have], seg) == 0)
            r->key_have += seg;
        else
            r->key_ok = false;
    }
    ch_input_consume(r->in, n);
    r->pos -= n;
    if (r->vstart != NONE)
        r->vstart = r->vstart >= n ? r->vstart - n : NONE;
    if (r->str_start != NONE)
        r->str_start = r->str_start >= n ? r->str_start - n : NONE;
    if (r->lim != NONE)
        r->lim -= n;
}

/* Refill after dropping everything before `keep`. */
static int refill(ch_jsonrec *r, size_t keep, ch_error *err)
{
    drop(r, keep);
    return ch_input_more(r->in, err);
}

/* The input failed: report once and stop. */
static int input_failed(ch_jsonrec *r, int rc, const ch_error *err)
{
    REPORT(r, 0, UINT64_MAX, rc == CH_EPARSE ? "gzip_error" : "read_error",
           "%s (after %llu decompressed bytes)", err->msg,
           (unsigned long long)ch_input_bytes(r->in));
    r->st = S_DONE;
    return rc;
}

/* Where the bytes that matter are in a block of 64: bit i of q is set where p[i] is a quote,
 * of in where it is a quote or a backslash (what matters inside a string), of out where it is
 * a bracket, '\n' or '\r' (what matters outside, besides quotes). 64 bytes are read. */
typedef struct masks {
    uint64_t q, in, out;
    uint64_t px; /* prefix_xor(q) where block_masks_avx2 made it (one carry-less multiply) */
} masks;

static inline void block_masks(const unsigned char *p, masks *m)
{
#if defined(__SSE2__)
    const __m128i q = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\'), x20 = _mm_set1_epi8(0x20);
    const __m128i op = _mm_set1_epi8('{'), cl = _mm_set1_epi8('}');
    const __m128i lf = _mm_set1_epi8('\n'), cr = _mm_set1_epi8('\r');
    masks r = {0, 0, 0, 0};
    for (int k = 0; k < 4; k++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * k));
        __m128i vq = _mm_cmpeq_epi8(v, q);
        /* c | 0x20 folds '[' onto '{' and ']' onto '}', and nothing else onto them. */
        __m128i v20 = _mm_or_si128(v, x20);
        __m128i br = _mm_or_si128(_mm_cmpeq_epi8(v20, op), _mm_cmpeq_epi8(v20, cl));
        __m128i nl = _mm_or_si128(_mm_cmpeq_epi8(v, lf), _mm_cmpeq_epi8(v, cr));
        unsigned sh = 16 * (unsigned)k;
        r.q |= (uint64_t)(uint16_t)_mm_movemask_epi8(vq) << sh;
        r.in |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_or_si128(vq, _mm_cmpeq_epi8(v, bs)))
                << sh;
        r.out |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_or_si128(br, nl)) << sh;
    }
    *m = r;
#else
    /* Portable fallback: a 256-entry class table, one byte at a time. */
    static const unsigned char cls[256] = {
        ['"'] = 5, ['\\'] = 1, ['{'] = 2, ['['] = 2, ['}'] = 2, [']'] = 2, ['\n'] = 2, ['\r'] = 2,
    };
    masks r = {0, 0, 0, 0};
    for (unsigned i = 0; i < 64; i++) {
        r.in |= (uint64_t)(cls[p[i]] & 1) << i;
        r.out |= (uint64_t)(cls[p[i]] >> 1 & 1) << i;
        r.q |= (uint64_t)(cls[p[i]] >> 2) << i;
    }
    *m = r;
#endif
}

#ifdef JSONREC_AVX2
/* block_masks 32 bytes a compare instead of 16, with the block's prefix_xor by one carry-less
 * multiply: on 30 gzip'd S3 files (docs/BENCHMARKS.md section 44) the SSE2 masks took about 87M
 * instructions (135 a block: four rounds of seven compares and three movemasks), these 40M, and
 * the run 853M -> 806M. Not inlined (scan is compiled for any x86-64): one call per block,
 * chosen once per splitter. The compared bytes, 32 of each, are read from memory by the
 * compares: built with set1 inside the function, they cost more instructions than the
 * compares. */
static const unsigned char avx2_k[7][32] __attribute__((aligned(32))) = {
#define K32(c)                                                                                     \
    {                                                                                              \
        c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c,  \
            c, c                                                                                   \
    }
    K32('"'), K32('\\'), K32(0x20), K32('{'), K32('}'), K32('\n'), K32('\r'),
#undef K32
};

__attribute__((target("avx2"))) static inline uint64_t avx2_half(const unsigned char *p,
                                                                 uint64_t *in, uint64_t *out)
{
#define K(i) _mm256_load_si256((const __m256i *)(const void *)avx2_k[i])
    __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)p);
    __m256i vq = _mm256_cmpeq_epi8(v, K(0));
    __m256i v20 = _mm256_or_si256(v, K(2)); /* as block_masks: '[' -> '{', ']' -> '}' */
    __m256i br = _mm256_or_si256(_mm256_cmpeq_epi8(v20, K(3)), _mm256_cmpeq_epi8(v20, K(4)));
    __m256i nl = _mm256_or_si256(_mm256_cmpeq_epi8(v, K(5)), _mm256_cmpeq_epi8(v, K(6)));
    *in = (uint32_t)_mm256_movemask_epi8(_mm256_or_si256(vq, _mm256_cmpeq_epi8(v, K(1))));
    *out = (uint32_t)_mm256_movemask_epi8(_mm256_or_si256(br, nl));
    return (uint32_t)_mm256_movemask_epi8(vq);
#undef K
}

__attribute__((target("avx2,pclmul"), noinline)) static void
block_masks_avx2(const unsigned char *p, masks *m)
{
    uint64_t in0, out0, in1, out1;
    uint64_t q0 = avx2_half(p, &in0, &out0), q1 = avx2_half(p + 32, &in1, &out1);
    m->q = q0 | q1 << 32;
    /* prefix_xor(q) as the low half of q times all ones, carry-less. */
    m->px = (uint64_t)_mm_cvtsi128_si64(
        _mm_clmulepi64_si128(_mm_cvtsi64_si128((long long)m->q), _mm_set1_epi8((char)0xFF), 0));
    m->in = in0 | in1 << 32;
    m->out = out0 | out1 << 32;
}
#endif

/* Bit i set where an odd number of the bits 0..i of x are: with x the quotes of a block, the
 * bytes from an opening quote up to (not including) its closing one. */
static inline uint64_t prefix_xor(uint64_t x)
{
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    return x;
}

/*
 * Scan the current value from r->pos up to lim. Returns SCAN_DONE with r->pos just past the
 * value, SCAN_ENVELOPE with r->pos just past the '[' of a top-level object's "Records" array,
 * or SCAN_MORE with r->pos == lim and the state saved for the next call.
 *
 * The input is taken 64 bytes at a time: bit masks say where the bytes that matter are
 * (inside a string: quote and backslash; outside: quote, brackets, newlines), and only those
 * bytes are visited; in a record's block without a backslash, not even the quotes (the file's
 * opening comment). A backslash in a string skips the byte after it, even across blocks and
 * refills (r->esc), so escapes need no look-back. Reading 64 bytes from any position before
 * lim is safe: lim is at most the window's end, which CH_JSON_PADDING bytes follow.
 */
static int scan(ch_jsonrec *r, const char *base, size_t lim)
{
    const unsigned char *b = (const unsigned char *)base;
    size_t pos = r->pos;
    uint64_t depth = r->depth, line = r->line;
    const bool check_env = r->kind == K_TOP;
    bool in_str = r->in_str, esc = r->esc, multiline = r->multiline;
    bool records_key = r->records_key;
    int res = SCAN_MORE;

    if (esc && pos < lim) {
        pos++;
        esc = false;
    }
    while (pos < lim) {
        const unsigned char *blk = b + pos;
        size_t avail = lim - pos;
        masks m;
        bool have_px = false;
#ifdef JSONREC_AVX2
        if (r->avx2) {
            block_masks_avx2(blk, &m);
            have_px = true;
        } else
#endif
            block_masks(blk, &m);
        if (avail < 64) {
            uint64_t valid = (1ull << avail) - 1;
            m.q &= valid;
            m.in &= valid;
            m.out &= valid;
            have_px = false; /* it counted the quotes past the end */
        }
        if (!check_env && !esc && depth > 0 && m.in == m.q) {
            /* The common block, inside a record and without a backslash: which bytes are in
             * strings follows from the quotes alone (prefix_xor), so only the brackets and
             * newlines outside strings are visited, not every quote. Same result as the walk
             * below, which takes the blocks with a backslash and the envelope's. */
            uint64_t px = have_px ? m.px : prefix_xor(m.q);
            uint64_t outside = m.out & ~(px ^ (in_str ? ~0ull : 0));
            for (; outside != 0; outside &= outside - 1) {
                unsigned j = (unsigned)__builtin_ctzll(outside);
                unsigned char c = blk[j];
                if ((c | 0x20) == '{') {
                    if (++depth > r->max_depth)
                        r->too_deep = true;
                } else if ((c | 0x20) == '}') {
                    if (--depth == 0) {
                        in_str = false;
                        pos += j + 1;
                        res = SCAN_DONE;
                        goto out;
                    }
                } else {
                    line += c == '\n';
                    multiline = true;
                }
            }
            in_str = in_str != (px >> 63 != 0); /* an odd number of quotes flips it */
            if (in_str && m.q != 0) { /* the block's last quote opened a string: as the walk */
                r->str_start = pos + 64 - (unsigned)__builtin_clzll(m.q);
                r->key_have = 0;
                r->key_ok = true;
            }
            pos = avail > 64 ? pos + 64 : lim;
            continue;
        }
        uint64_t m_in = m.in, m_out = m.q | m.out;
        unsigned i = 0; /* next bit of the block to look at; up to 65 after an escape */
        while (i < 64) {
            uint64_t m = (in_str ? m_in : m_out) & (~0ull << i);
            if (m == 0)
                break;
            unsigned j = (unsigned)__builtin_ctzll(m);
            unsigned char c = blk[j];
            i = j + 1;
            if (in_str) {
                if (c == '\\') {
                    i = j + 2;
                    continue;
                }
                in_str = false;
                if (depth == 1 && check_env) {
                    size_t end = pos + j;
                    if (r->str_start != NONE)
                        records_key =
                            end - r->str_start == 7 && memcmp(b + r->str_start, "Records", 7) == 0;
                    else /* its start was dropped: drop() kept count */
                        records_key = r->key_ok && r->key_have + end == 7 &&
                                      memcmp(b, &"Records"[r->key_have], end) == 0;
                }
                if (depth == 0) { /* a string element (K_NONOBJ) ends here */
                    pos += i;
                    res = SCAN_DONE;
                    goto out;
                }
                continue;
            }
            switch (c) {
            case '"':
                in_str = true;
                r->str_start = pos + i;
                r->key_have = 0;
                r->key_ok = true;
                break;
            case '{':
            case '[':
                if (depth == 1 && records_key && c == '[') {
                    pos += i;
                    res = SCAN_ENVELOPE;
                    goto out;
                }
                records_key = false;
                if (++depth > r->max_depth)
                    r->too_deep = true;
                break;
            case '}':
            case ']':
                if (--depth == 0) {
                    pos += i;
                    res = SCAN_DONE;
                    goto out;
                }
                break;
            default: /* '\n' or '\r' */
                line += c == '\n';
                multiline = true;
                break;
            }
        }
        size_t adv = i > 64 ? i : 64;
        if (adv > avail) {
            esc = i > avail; /* a backslash was the last byte: the next one is escaped */
            pos = lim;
        } else {
            pos += adv;
        }
    }
out:
    r->pos = pos;
    r->depth = depth;
    r->line = line;
    r->in_str = in_str;
    r->esc = esc;
    r->multiline = multiline;
    r->records_key = records_key;
    return res;
}

static void start_value(ch_jsonrec *r, size_t p, kind k, uint64_t off)
{
    r->st = S_VALUE;
    r->kind = k;
    r->pos = p;
    r->vstart = p;
    r->voff = off + p;
    r->vline = r->line;
    r->depth = 0;
    r->in_str = false;
    r->esc = false;
    r->str_start = NONE;
    r->multiline = r->records_key = r->too_deep = r->too_large = false;
    r->skipping = k == K_NONOBJ || k == K_ENV_TAIL;
}

static bool is_ws(unsigned char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

/* A value ended (or the input ended inside it): report what was wrong with it. Returns true
 * when it is a good record. */
static bool judge_value(ch_jsonrec *r, bool at_eof)
{
    if (r->too_deep) {
        REPORT(r, r->vline, r->voff, "too_deep", "value at byte %llu nests deeper than %llu",
               (unsigned long long)r->voff, (unsigned long long)r->max_depth);
        return false;
    }
    if (r->too_large) {
        REPORT(r, r->vline, r->voff, "record_too_large", "record at byte %llu exceeds %zu bytes",
               (unsigned long long)r->voff, r->max_record);
        return false;
    }
    if (at_eof) {
        if (r->kind == K_ENV_TAIL)
            REPORT(r, r->arr_line, r->arr_off, "truncated",
                   "input ends inside the object starting at byte %llu",
                   (unsigned long long)r->arr_off);
        else
            REPORT(r, r->vline, r->voff, "truncated",
                   "input ends inside the %s starting at byte %llu",
                   r->kind == K_NONOBJ ? "value" : "record", (unsigned long long)r->voff);
        return false;
    }
    if (r->kind == K_NONOBJ) {
        REPORT(r, r->vline, r->voff, "not_an_object", "array element at byte %llu is not an object",
               (unsigned long long)r->voff);
        return false;
    }
    return r->kind != K_ENV_TAIL;
}

/* Back between top-level values; a JSON Lines line being scanned is finished with. */
static void to_top(ch_jsonrec *r)
{
    r->st = S_TOP;
    r->lim = NONE;
    r->vstart = NONE;
}

/* After a value: back to where it was found. An array element keeps its line's limit (the
 * array goes on, within the line); a top-level value or an envelope's tail ends it. */
static void after_value(ch_jsonrec *r)
{
    r->vstart = NONE;
    if (r->kind == K_ELEM || r->kind == K_NONOBJ) {
        r->st = S_ARRAY;
        r->need_sep = true;
    } else {
        to_top(r);
        r->need_sep = false;
    }
}

/* JSON Lines: the line ended inside what was being scanned on it. Reported once, for the
 * outermost thing left open (the envelope when it is its array or tail), and the next line
 * starts afresh: the rest of a damaged line never reaches into the lines after it. The last
 * line of a failed input is the failure's to report (at_failure). */
static void line_ended(ch_jsonrec *r, bool in_array)
{
    if (r->at_failure) {
        /* cut by the input's failure, which is reported once for it */
    } else if (in_array || (r->st == S_VALUE && r->kind == K_ENV_TAIL)) {
        REPORT(r, r->arr_line, r->arr_off, "truncated",
               "line ends inside the object starting at byte %llu", (unsigned long long)r->arr_off);
    } else if (r->too_deep || r->too_large) {
        judge_value(r, false);
    } else {
        REPORT(r, r->vline, r->voff, "truncated", "line ends inside the %s starting at byte %llu",
               r->kind == K_NONOBJ ? "value" : "record", (unsigned long long)r->voff);
    }
    r->pos = r->lim;
    to_top(r);
}

int ch_jsonrec_next(ch_jsonrec *r, ch_diag *diag, ch_dataset ds, ch_jsonrec_rec *rec)
{
    ch_error err;
    ch_error_clear(&err);
    int rc;
    r->diag = diag;
    r->ds = ds;
    if (r->pending > 0) {
        drop(r, r->pending);
        r->pending = 0;
    }
    for (;;) {
        size_t len;
        const char *b = ch_input_data(r->in, &len);
        const unsigned char *u = (const unsigned char *)b;
        uint64_t off = ch_input_offset(r->in);
        size_t p = r->pos;

        switch (r->st) {
        case S_DONE:
            return 0;

        case S_TOP:
            if (off == 0 && p == 0 && len > 0 && !r->bom_seen) {
                /* A UTF-8 byte order mark, as some editors write. A first refill may bring
                 * only part of it (a gzip member of one or two bytes): wait for the rest, so
                 * that it is not garbage with one inflater and skipped with another
                 * (fuzz_inflate, seed regress-bom-split-across-members). */
                if (len < 3 && memcmp(b, "\xEF\xBB\xBF", len) == 0 && !ch_input_eof(r->in)) {
                    rc = refill(r, 0, &err);
                    if (rc > 0)
                        continue;
                    if (rc < 0 && rc != CH_ELIMIT && !ch_input_eof(r->in))
                        return input_failed(r, rc, &err);
                    r->bom_seen = true; /* the end, a failure or a window of 2 bytes */
                    continue;
                }
                r->bom_seen = true;
                if (len >= 3 && memcmp(b, "\xEF\xBB\xBF", 3) == 0)
                    p = 3;
            }
            while (p < len && is_ws(u[p])) {
                if (u[p] == '\n') {
                    r->line++;
                    if (r->detect_jsonl) {
                        r->mode = M_JSONL;
                        r->detect_jsonl = false;
                    }
                }
                p++;
            }
            r->pos = p;
            if (p == len) {
                rc = refill(r, p, &err);
                if (rc > 0)
                    continue;
                if (rc < 0)
                    return input_failed(r, rc, &err);
                r->st = S_DONE;
                return 0;
            }
            if (r->detect_jsonl) { /* something other than a newline after the first record */
                r->mode = M_SEQ;
                r->detect_jsonl = false;
            }
            if (r->mode == M_JSONL) {
                /* The value is looked for within its line: find the line's end first. */
                size_t from = r->eol_scan > p && r->eol_scan <= len ? r->eol_scan : p;
                const char *nl = memchr(b + from, '\n', len - from);
                if (nl == NULL && !ch_input_eof(r->in)) {
                    /* The line is kept until its end is in view, even past max_record, and
                     * dropped unread only when it fills the window: what is made of a line
                     * (an envelope's records, or one record too large) must not depend on
                     * how much of it the last refill brought (the inflaters refill in
                     * different steps: fuzz_inflate). */
                    r->eol_scan = len - p; /* relative to p, which becomes the window start */
                    rc = refill(r, p, &err);
                    if (rc == CH_ELIMIT) {
                        REPORT(r, r->line, off + p, "record_too_large",
                               "record at byte %llu exceeds %zu bytes",
                               (unsigned long long)(off + p), r->max_record);
                        r->st = S_SKIPLINE;
                        r->eol_scan = 0;
                        continue;
                    }
                    /* A failed input has ended too (its failure is sticky, ch_input_eof says
                     * so): the line ends where the good bytes do, as the last line of an input
                     * (at_failure below), the failure reported at the next refill. Whether the
                     * failure came with the line's bytes or one refill later is the inflater's
                     * and the window's business, and must not decide what is made of the line
                     * (fuzz_jsonrec, seed regress-libdeflate-member-then-garbage). */
                    if (rc < 0 && !ch_input_eof(r->in))
                        return input_failed(r, rc, &err);
                    continue; /* at the end of input the line ends where the input does */
                }
                /* The input's last line, cut short by a failure: what is whole on it is kept,
                 * what the failure cut is its report's (one damage, one error). */
                r->at_failure = nl == NULL && ch_input_failed(r->in);
                r->eol_scan = 0;
                size_t eol = nl ? (size_t)(nl - b) : len;
                if (u[p] == '{') {
                    /* Fast path: the line is the record, and simdjson validates all of it, so
                     * an unbalanced line still costs only itself. A line that opens with a
                     * "Records" key (an S3 envelope per line) takes the scanning path, which
                     * unpacks it; searching every line for the key anywhere cost more than
                     * the rest of the split (glibc memmem), and envelopes put it first. */
                    size_t end = eol;
                    while (end > p && is_ws(u[end - 1]))
                        end--;
                    size_t k = p + 1;
                    while (k < end && is_ws(u[k]))
                        k++;
                    bool envelope = end - k >= 9 && memcmp(b + k, "\"Records\"", 9) == 0;
                    if (u[end - 1] == '}' && end - p <= r->max_record && !envelope) {
                        rec->p = b + p;
                        rec->n = end - p;
                        rec->offset = off + p;
                        rec->line = line_of(r, r->line);
                        rec->multiline = false;
                        r->pos = eol;
                        r->pending = eol;
                        return 1;
                    }
                    start_value(r, p, K_TOP, off);
                    r->lim = eol;
                    continue;
                }
                REPORT(r, r->line, off + p, u[p] == '[' ? "not_an_object" : "garbage",
                       "line does not hold a JSON object (byte %llu)",
                       (unsigned long long)(off + p));
                r->pos = eol;
                continue;
            }
            if (u[p] == '{') {
                start_value(r, p, K_TOP, off);
                continue;
            }
            if (u[p] == '[') {
                r->st = S_ARRAY;
                r->need_sep = false;
                r->in_env = false;
                r->arr_off = off + p;
                r->arr_line = r->line;
                r->pos = p + 1;
                continue;
            }
            REPORT(r, r->line, off + p, "garbage", "bytes that are not JSON at byte %llu",
                   (unsigned long long)(off + p));
            r->st = S_GARBAGE;
            r->pos = p + 1;
            continue;

        case S_GARBAGE:
            while (p < len && u[p] != '{' && u[p] != '[') {
                r->line += u[p] == '\n';
                p++;
            }
            r->pos = p;
            if (p < len) {
                r->st = S_TOP;
                continue;
            }
            rc = refill(r, p, &err);
            if (rc > 0)
                continue;
            if (rc < 0)
                return input_failed(r, rc, &err);
            r->st = S_DONE;
            return 0;

        case S_SKIPLINE: {
            const char *nl = memchr(b + p, '\n', len - p);
            if (nl != NULL) {
                r->pos = (size_t)(nl - b); /* S_TOP counts the newline */
                r->st = S_TOP;
                continue;
            }
            r->pos = len;
            rc = refill(r, len, &err);
            if (rc > 0)
                continue;
            if (rc < 0)
                return input_failed(r, rc, &err);
            r->st = S_DONE;
            return 0;
        }

        case S_ARRAY: {
            /* In JSON Lines (a per-line envelope) the array ends with its line at the latest. */
            size_t end = r->lim != NONE ? r->lim : len;
            while (p < end && (is_ws(u[p]) || u[p] == ',')) {
                if (u[p] == ',') {
                    if (!r->need_sep)
                        REPORT(r, r->line, off + p, "json_syntax",
                               "unexpected ',' in an array at byte %llu",
                               (unsigned long long)(off + p));
                    r->need_sep = false;
                }
                r->line += u[p] == '\n';
                p++;
            }
            r->pos = p;
            if (r->lim != NONE && p == r->lim) {
                line_ended(r, true);
                continue;
            }
            if (p == len) {
                rc = refill(r, p, &err);
                if (rc > 0)
                    continue;
                if (rc < 0)
                    return input_failed(r, rc, &err);
                REPORT(r, r->arr_line, r->arr_off, "truncated",
                       "input ends inside the %s starting at byte %llu",
                       r->in_env ? "Records array" : "array", (unsigned long long)r->arr_off);
                r->st = S_DONE;
                return 0;
            }
            if (u[p] != ']' && r->need_sep) {
                /* Damage between two records: say so, and keep both records. */
                REPORT(r, r->line, off + p, "json_syntax",
                       "missing ',' before the array element at byte %llu",
                       (unsigned long long)(off + p));
                r->need_sep = false;
            }
            if (u[p] == '{') {
                start_value(r, p, K_ELEM, off);
            } else if (u[p] == ']') {
                if (r->in_env) {
                    /* The rest of the envelope: skipped up to its closing brace. */
                    start_value(r, p + 1, K_ENV_TAIL, off);
                    r->depth = 1;
                } else {
                    to_top(r);
                    r->pos = p + 1;
                }
            } else if (u[p] == '[') {
                start_value(r, p, K_NONOBJ, off);
            } else if (u[p] == '"') {
                start_value(r, p, K_NONOBJ, off);
                r->in_str = true;
                r->str_start = p + 1;
                r->pos = p + 1;
            } else {
                r->st = S_SCALAR;
                r->scalar_first = (char)u[p];
                r->voff = off + p;
                r->vline = r->line;
                r->pos = p + 1;
            }
            continue;
        }

        case S_SCALAR: {
            size_t end = r->lim != NONE ? r->lim : len;
            while (p < end && !is_ws(u[p]) && u[p] != ',' && u[p] != ']' && u[p] != '[' &&
                   u[p] != '{' && u[p] != '"')
                p++;
            r->pos = p;
            if (p == len && r->lim == NONE) {
                rc = refill(r, p, &err);
                if (rc > 0)
                    continue;
                if (rc < 0)
                    return input_failed(r, rc, &err);
            }
            if (strchr("-0123456789tfn", r->scalar_first) != NULL && r->scalar_first != '\0')
                REPORT(r, r->vline, r->voff, "not_an_object",
                       "array element at byte %llu is not an object", (unsigned long long)r->voff);
            else
                REPORT(r, r->vline, r->voff, "garbage", "bytes that are not JSON at byte %llu",
                       (unsigned long long)r->voff);
            r->st = S_ARRAY;
            r->need_sep = true;
            continue;
        }

        case S_VALUE: {
            size_t lim = r->lim != NONE ? r->lim : len;
            int sr = scan(r, b, lim);
            bool is_rec = r->kind == K_TOP || r->kind == K_ELEM;
            if (is_rec && !r->skipping && r->pos - r->vstart > r->max_record)
                r->too_large = true;
            if (sr == SCAN_ENVELOPE) {
                r->st = S_ARRAY;
                r->need_sep = false;
                r->in_env = true;
                r->arr_off = r->voff;
                r->arr_line = r->vline;
                r->vstart = NONE; /* r->lim stays: in JSON Lines the array ends with its line */
                continue;
            }
            if (sr == SCAN_DONE) {
                bool good = judge_value(r, false);
                /* The first top-level record decides JSON Lines, even one dropped as too
                 * large or too deep: how the input is framed should not depend on the caps. */
                if (r->kind == K_TOP && !r->first_seen) {
                    r->first_seen = true;
                    if (r->mode == M_UNKNOWN) {
                        if (r->multiline)
                            r->mode = M_SEQ;
                        else
                            r->detect_jsonl = true;
                    }
                }
                size_t vs = r->vstart;
                after_value(r);
                if (!good)
                    continue;
                rec->p = b + vs;
                rec->n = r->pos - vs;
                rec->offset = r->voff;
                rec->line = line_of(r, r->vline);
                rec->multiline = r->multiline;
                r->pending = r->pos;
                return 1;
            }
            /* SCAN_MORE */
            if (r->lim != NONE) {
                line_ended(r, false);
                continue;
            }
            if (!r->skipping && (r->too_large || r->too_deep))
                r->skipping = true;
            rc = refill(r, r->skipping ? r->pos : r->vstart, &err);
            if (r->skipping)
                r->vstart = NONE;
            if (rc > 0)
                continue;
            if (rc == CH_ELIMIT) {
                /* The window is full of this one record. */
                r->too_large = is_rec;
                r->skipping = true;
                continue;
            }
            if (rc < 0)
                return input_failed(r, rc, &err);
            judge_value(r, true);
            r->st = S_DONE;
            return 0;
        }
        }
    }
}
