/*
 * summary.c - the store's per-day term summary: for each indexed field, every term that some
 * segment of the day holds, with the numbers of the segments that hold it.
 *
 *     <db>.events/day-<day>.sum      day = days since the epoch (UTC) of the segments' hours
 *
 *     header (256 bytes, CRC32C over itself): magic, version, segment count, day, and a table
 *         of 1 + CH_IX_NFIELDS sections (offset, compressed and raw length, CRC32C of the frame)
 *     section 0: the covered segments: file name, records, file bytes, time bounds
 *     section 1+f: field f's dictionary, the segment index's format with segment numbers for
 *         record ordinals: sorted terms, each with delta-varint segment numbers
 *
 * Why: an indexed lookup used to open every hourly segment in the time range (mmap, header,
 * block table and index frame checks, index decompression: about 0.7 ms each, docs/
 * BENCHMARKS.md section 15) to learn that most of them lack the term. One summary per day
 * answers that for 24 x sources segments with one small frame per field, so a lookup opens
 * only the segments that hold a matching term. Each field is its own frame so that a lookup
 * on user.name does not decompress the source.ip dictionary.
 *
 * Correctness does not depend on the summary being current: a segment is skipped only when the
 * summary covers it by name (segment files are immutable and their names unique: generation
 * and sequence) and no term of the day that passes the test lists it. A segment the summary does
 * not cover (sealed after it, or a summary that is missing or damaged) is opened as before;
 * one the summary covers but retention removed is simply not listed. The summary is a
 * superset test at segment granularity of what the segment's own index answers at record
 * granularity, so it never skips a segment the segment's index would not rule out.
 *
 * Written by the store's writer after each committed checkpoint for the days it touched
 * (new segments, retention), merging the previous summary with the new segments' indexes; a
 * search that finds a day's summary missing, stale or damaged rebuilds it when it can write
 * the directory. Written via a temporary file and rename, so a reader sees a whole file or
 * the previous one.
 */
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "core/leb.h"
#include "core/mem.h"
#include "ingest/crc32c.h"
#include "store/search_int.h"
#include "store/store_int.h"

#define SUM_MAGIC "CHSUM\x00\x01\x00"
#define SUM_VERSION 1
#define SUM_HEADER 256
#define SUM_NSEC (1 + CH_IX_NFIELDS)
#define SEC_ENTRY 20
#define MAX_SEGS ((uint32_t)1 << 20)
#define MAX_RAW ((size_t)1 << 30)
#define ZLEVEL 3

int64_t ch__sum_day_of_hour(int64_t hour) { return hour >= 0 ? hour / 24 : -((-hour + 23) / 24); }

int ch__sum_path(const char *dir, int64_t day, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s/day-%lld.sum", dir, (long long)day);
    return n < 0 || (size_t)n >= cap ? CH_ELIMIT : 0;
}

/* ---- reader ---- */

typedef struct ch_sum_byname {
    const char *name;
    uint32_t idx;
} ch_sum_byname;

struct ch_sum {
    const uint8_t *map;
    size_t size;
    bool mapped;
    int64_t day;
    uint32_t nseg;
    ZSTD_DCtx *dctx;
    uint8_t *segraw;
    ch_sum_seg *segs;
    ch_sum_byname *by_name; /* the segments in name order */
    uint8_t *fraw[CH_IX_NFIELDS];
    ch_seg_term *terms[CH_IX_NFIELDS];
    size_t nterms[CH_IX_NFIELDS];
    bool loaded[CH_IX_NFIELDS];
};

static int byname_cmp(const void *a, const void *b)
{
    return strcmp(((const ch_sum_byname *)a)->name, ((const ch_sum_byname *)b)->name);
}

/* Section k's frame, checked and decompressed into a new buffer of its raw length. */
static int load_section(ch_sum *s, int k, uint8_t **out, size_t *rawn, ch_error *err)
{
    const uint8_t *e = s->map + 32 + (size_t)k * SEC_ENTRY;
    uint64_t off = ch_le_get64(e);
    uint32_t clen = ch_le_get32(e + 8), rawlen = ch_le_get32(e + 12);
    if (ch_le_get32(e + 16) != ch_crc32c(0, s->map + off, clen))
        return ch_error_set(err, CH_EPARSE, "section %d checksum mismatch at offset %llu", k,
                            (unsigned long long)off);
    uint8_t *raw = ch_malloc(rawlen ? rawlen : 1);
    if (raw == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    if (s->dctx == NULL && (s->dctx = ZSTD_createDCtx()) == NULL) {
        ch_free(raw);
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    }
    size_t d = ZSTD_decompressDCtx(s->dctx, raw, rawlen, s->map + off, clen);
    if (ZSTD_isError(d) || d != rawlen) {
        ch_free(raw);
        return ch_error_set(err, CH_EPARSE, "section %d does not decompress", k);
    }
    *out = raw;
    *rawn = rawlen;
    return 0;
}

static int parse_segs(ch_sum *s, ch_error *err)
{
    size_t n;
    int rc = load_section(s, 0, &s->segraw, &n, err);
    if (rc < 0)
        return rc;
    s->segs = ch_calloc(s->nseg ? s->nseg : 1, sizeof *s->segs);
    s->by_name = ch_malloc((s->nseg ? s->nseg : 1) * sizeof *s->by_name);
    if (s->segs == NULL || s->by_name == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    uint8_t *p = s->segraw, *end = s->segraw + n;
    for (uint32_t i = 0; i < s->nseg; i++) {
        uint64_t nl, nrec, bytes;
        const uint8_t *q = p;
        if (!ch_leb_get(&q, end, &nl) || nl == 0 || nl > 255 || nl >= (uint64_t)(end - q))
            return ch_error_set(err, CH_EPARSE, "segment %u: bad name", i);
        uint8_t *name = (uint8_t *)q;
        q += nl;
        /* The name is kept NUL-terminated in place: its terminator byte in the section is a
         * zero that the writer puts there. */
        if (*q != 0 || memchr(name, 0, nl) != NULL || strchr((const char *)name, '/') != NULL)
            return ch_error_set(err, CH_EPARSE, "segment %u: bad name", i);
        q++;
        if (!ch_leb_get(&q, end, &nrec) || !ch_leb_get(&q, end, &bytes) || nrec > UINT32_MAX ||
            end - q < 16)
            return ch_error_set(err, CH_EPARSE, "segment %u: bad entry", i);
        s->segs[i] = (ch_sum_seg){(const char *)name, (uint32_t)nrec, bytes,
                                  (int64_t)ch_le_get64(q), (int64_t)ch_le_get64(q + 8)};
        q += 16;
        p = (uint8_t *)q;
        s->by_name[i] = (ch_sum_byname){(const char *)name, i};
    }
    if (p != end)
        return ch_error_set(err, CH_EPARSE, "segment table: %zu trailing bytes", (size_t)(end - p));
    if (s->nseg > 1)
        qsort(s->by_name, s->nseg, sizeof *s->by_name, byname_cmp);
    for (uint32_t i = 1; i < s->nseg; i++)
        if (strcmp(s->by_name[i - 1].name, s->by_name[i].name) == 0)
            return ch_error_set(err, CH_EPARSE, "segment %s listed twice", s->by_name[i].name);
    return 0;
}

static int sum_parse(ch_sum *s, ch_error *err)
{
    const uint8_t *h = s->map;
    if (s->size < SUM_HEADER || memcmp(h, SUM_MAGIC, 8) != 0)
        return ch_error_set(err, CH_EPARSE, "not a summary (bad magic at offset 0)");
    if (ch_le_get32(h + 252) != ch_crc32c(0, h, 252))
        return ch_error_set(err, CH_EPARSE, "header checksum mismatch at offset 252");
    if (ch_le_get32(h + 8) != SUM_VERSION)
        return ch_error_set(err, CH_EPARSE, "unsupported summary version %u at offset 8",
                            ch_le_get32(h + 8));
    s->nseg = ch_le_get32(h + 12);
    s->day = (int64_t)ch_le_get64(h + 16);
    if (s->nseg > MAX_SEGS || ch_le_get32(h + 24) != SUM_NSEC)
        return ch_error_set(err, CH_EPARSE, "bad segment or section count at offset 12");
    for (int k = 0; k < SUM_NSEC; k++) {
        const uint8_t *e = h + 32 + (size_t)k * SEC_ENTRY;
        uint64_t off = ch_le_get64(e);
        if (off < SUM_HEADER || off > s->size || ch_le_get32(e + 8) > s->size - off ||
            ch_le_get32(e + 12) > MAX_RAW)
            return ch_error_set(err, CH_EPARSE, "section %d beyond the file (%zu bytes)", k,
                                s->size);
    }
    return parse_segs(s, err);
}

static int sum_new(const uint8_t *map, size_t size, bool mapped, ch_sum **out, ch_error *err)
{
    ch_sum *s = ch_calloc(1, sizeof *s);
    if (s == NULL) {
        if (mapped)
            munmap((void *)map, size);
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    }
    s->map = map;
    s->size = size;
    s->mapped = mapped;
    int rc = sum_parse(s, err);
    if (rc < 0) {
        ch__sum_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

int ch__sum_open(const char *path, ch_sum **out, ch_error *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ch_error_set(err, errno == ENOENT ? CH_ENOTFOUND : CH_EIO, "%s: %s", path,
                            strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size < SUM_HEADER) {
        close(fd);
        return ch_error_set(err, CH_EPARSE, "%s: truncated (%lld bytes)", path,
                            (long long)st.st_size);
    }
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        return ch_error_set(err, CH_EIO, "%s: %s", path, strerror(errno));
    return sum_new(m, (size_t)st.st_size, true, out, err);
}

int ch__sum_open_mem(const uint8_t *buf, size_t n, ch_sum **out, ch_error *err)
{
    *out = NULL;
    return sum_new(buf, n, false, out, err);
}

void ch__sum_close(ch_sum *s)
{
    if (s == NULL)
        return;
    if (s->mapped)
        munmap((void *)s->map, s->size);
    ZSTD_freeDCtx(s->dctx);
    ch_free(s->segraw);
    ch_free(s->segs);
    ch_free(s->by_name);
    for (int f = 0; f < CH_IX_NFIELDS; f++) {
        ch_free(s->fraw[f]);
        ch_free(s->terms[f]);
    }
    ch_free(s);
}

int64_t ch__sum_day(const ch_sum *s) { return s->day; }
uint32_t ch__sum_nseg(const ch_sum *s) { return s->nseg; }
const ch_sum_seg *ch__sum_seg(const ch_sum *s, uint32_t i) { return &s->segs[i]; }

long ch__sum_find(const ch_sum *s, const char *name)
{
    size_t lo = 0, hi = s->nseg;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->by_name[mid].name, name);
        if (c == 0)
            return (long)s->by_name[mid].idx;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static int term_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    if (c)
        return c;
    return an < bn ? -1 : an > bn;
}

int ch__sum_terms(ch_sum *s, int f, const ch_seg_term **terms, size_t *n, ch_error *err)
{
    if (f < 0 || f >= CH_IX_NFIELDS)
        return ch_error_set(err, CH_EUSAGE, "field %d is not indexed", f);
    if (!s->loaded[f]) {
        size_t rawn;
        int rc = load_section(s, 1 + f, &s->fraw[f], &rawn, err);
        if (rc < 0)
            return rc;
        const uint8_t *p = s->fraw[f], *end = p + rawn;
        uint64_t nt;
        if (!ch_leb_get(&p, end, &nt) || nt > (uint64_t)(end - p))
            return ch_error_set(err, CH_EPARSE, "field %s: bad term count", ch__ix_fields[f]);
        s->terms[f] = ch_malloc((nt ? nt : 1) * sizeof(ch_seg_term));
        if (s->terms[f] == NULL)
            return ch_error_set(err, CH_ENOMEM, "out of memory");
        for (uint64_t i = 0; i < nt; i++) {
            uint64_t tl, np, pl;
            if (!ch_leb_get(&p, end, &tl) || tl > (uint64_t)(end - p))
                return ch_error_set(err, CH_EPARSE, "field %s term %llu: bad length",
                                    ch__ix_fields[f], (unsigned long long)i);
            const uint8_t *tp = p;
            p += tl;
            if (!ch_leb_get(&p, end, &np) || !ch_leb_get(&p, end, &pl) ||
                pl > (uint64_t)(end - p) || np == 0 || np > s->nseg || np > pl)
                return ch_error_set(err, CH_EPARSE, "field %s term %llu: bad postings",
                                    ch__ix_fields[f], (unsigned long long)i);
            /* Sorted and distinct, as the writer puts them: verify and the merge rely on it. */
            if (i > 0 && term_cmp((const uint8_t *)s->terms[f][i - 1].term.p,
                                  s->terms[f][i - 1].term.n, tp, tl) >= 0)
                return ch_error_set(err, CH_EPARSE, "field %s term %llu: out of order",
                                    ch__ix_fields[f], (unsigned long long)i);
            s->terms[f][i] = (ch_seg_term){{(const char *)tp, (uint32_t)tl}, p, (uint32_t)np, pl};
            p += pl;
        }
        if (p != end)
            return ch_error_set(err, CH_EPARSE, "field %s: %zu trailing bytes", ch__ix_fields[f],
                                (size_t)(end - p));
        s->nterms[f] = nt;
        s->loaded[f] = true;
    }
    *terms = s->terms[f];
    *n = s->nterms[f];
    return 0;
}

/* ---- writer ---- */

/* An entry: a term (p, n) and the segment that holds it (tie), sorted by termsort.c. */
typedef ch_tsort entry;

typedef struct ents {
    entry *v;
    size_t n, cap;
} ents;

static int ents_add(ents *e, const char *p, uint32_t n, uint32_t seg)
{
    if (e->n == e->cap) {
        entry *nv = ch_grow(e->v, &e->cap, 1024, sizeof *nv);
        if (nv == NULL)
            return CH_ENOMEM;
        e->v = nv;
    }
    e->v[e->n++] = (entry){ch__tsort_key(p, n), p, n, seg};
    return 0;
}

/* Sorted entries -> one field's dictionary. */
static int emit_field(ents *e, ch_buf *out)
{
    /* a run per new segment (its index's terms are sorted), then the old summary's terms */
    if (ch__tsort(e->v, e->n) < 0)
        return CH_ENOMEM;
    size_t nt = 0;
    for (size_t i = 0; i < e->n; i++)
        if (i == 0 || term_cmp((const uint8_t *)e->v[i - 1].p, e->v[i - 1].n,
                               (const uint8_t *)e->v[i].p, e->v[i].n) != 0)
            nt++;
    if (ch_leb_put(out, nt) < 0)
        return CH_ENOMEM;
    ch_buf post;
    ch_buf_init(&post, (size_t)1 << 30);
    size_t i = 0;
    int rc = 0;
    while (i < e->n && rc == 0) {
        size_t j = i;
        uint32_t prev = 0, np = 0;
        post.len = 0;
        while (j < e->n && e->v[j].n == e->v[i].n && memcmp(e->v[j].p, e->v[i].p, e->v[i].n) == 0) {
            /* The same segment twice (cannot come from distinct inputs, but cheap to guard). */
            if (np == 0 || e->v[j].tie != prev) {
                if (ch_leb_put(&post, e->v[j].tie - (np ? prev : 0)) < 0)
                    rc = CH_ENOMEM;
                prev = e->v[j].tie;
                np++;
            }
            j++;
        }
        if (rc == 0 && (ch_leb_put(out, e->v[i].n) < 0 ||
                        ch_buf_add(out, e->v[i].p, e->v[i].n) < 0 || ch_leb_put(out, np) < 0 ||
                        ch_leb_put(out, post.len) < 0 || ch_buf_add(out, post.data, post.len) < 0))
            rc = CH_ENOMEM;
        i = j;
    }
    ch_buf_free(&post);
    return rc;
}

static int write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

static int compress_section(ZSTD_CCtx *cctx, ch_buf *file, const ch_buf *raw, uint8_t *ent,
                            ch_error *err)
{
    size_t bound = ZSTD_compressBound(raw->len);
    if (raw->len > MAX_RAW || ch_buf_reserve(file, bound) < 0)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    size_t c = ZSTD_compressCCtx(cctx, file->data + file->len, bound, raw->data ? raw->data : "",
                                 raw->len, ZLEVEL);
    if (ZSTD_isError(c))
        return ch_error_set(err, CH_ERR, "zstd: %s", ZSTD_getErrorName(c));
    ch_le_put64(ent, file->len);
    ch_le_put32(ent + 8, (uint32_t)c);
    ch_le_put32(ent + 12, (uint32_t)raw->len);
    ch_le_put32(ent + 16, ch_crc32c(0, file->data + file->len, c));
    file->len += c;
    return 0;
}

int ch__sum_write(const char *path, int64_t day, const ch_sum_input *in, size_t n, ch_sum *old,
                  ch_error *err)
{
    if (n > MAX_SEGS)
        return ch_error_set(err, CH_ELIMIT, "%zu segments in one day", n);
    if (n == 0) {
        if (unlink(path) < 0 && errno != ENOENT)
            return ch_error_set(err, CH_EIO, "%s: %s", path, strerror(errno));
        return 0;
    }
    int rc = 0;
    ch_seg **segs = ch_calloc(n, sizeof *segs);
    ch_sum_seg *meta = ch_calloc(n, sizeof *meta);
    int64_t *old_to_new = old ? ch_malloc(((size_t)old->nseg + 1) * sizeof *old_to_new) : NULL;
    ents e[CH_IX_NFIELDS];
    memset(e, 0, sizeof e);
    ch_buf file, raw;
    ch_buf_init(&file, (size_t)1 << 31);
    ch_buf_init(&raw, (size_t)1 << 30);
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    int fd = -1;
    char tmp[4200];
    /* Unique per process and call: searches on several threads may rebuild the same day. */
    static _Atomic unsigned tmp_seq;
    snprintf(tmp, sizeof tmp, "%s.tmp.%d.%u", path, (int)getpid(), atomic_fetch_add(&tmp_seq, 1));
    if (segs == NULL || meta == NULL || (old && old_to_new == NULL) || cctx == NULL) {
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        goto out;
    }
    for (uint32_t k = 0; old && k < old->nseg; k++)
        old_to_new[k] = -1;
    /* Segments the old summary covers come from it; the others from their own index. */
    for (size_t i = 0; i < n && rc == 0; i++) {
        long k = old ? ch__sum_find(old, in[i].name) : -1;
        if (k >= 0) {
            old_to_new[k] = (int64_t)i;
            meta[i] = old->segs[k];
            meta[i].name = in[i].name;
            continue;
        }
        ch_error e2 = {0};
        if ((rc = ch__seg_open(in[i].path, &segs[i], &e2)) < 0) {
            rc = ch_error_set(err, rc, "%s", e2.msg);
            break;
        }
        const ch_seg_meta *m = ch__seg_meta(segs[i]);
        meta[i] = (ch_sum_seg){in[i].name, m->nrec, m->file_bytes, m->min_ts, m->max_ts};
        for (int f = 0; f < CH_IX_NFIELDS && rc == 0; f++) {
            const ch_seg_term *t;
            size_t nt;
            if ((rc = ch__seg_terms(segs[i], f, &t, &nt, &e2)) < 0) {
                rc = ch_error_set(err, rc, "%s: %s", in[i].path, e2.msg);
                break;
            }
            for (size_t j = 0; j < nt && rc == 0; j++)
                if (ents_add(&e[f], t[j].term.p, t[j].term.n, (uint32_t)i) < 0)
                    rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        }
        /* The terms stay in memory; the file is not read again: a day of thousands of
         * segments must not hold a descriptor each (segments are read with pread). */
        ch__seg_release(segs[i]);
    }
    for (int f = 0; f < CH_IX_NFIELDS && old && rc == 0; f++) {
        const ch_seg_term *t;
        size_t nt;
        if ((rc = ch__sum_terms(old, f, &t, &nt, err)) < 0)
            break;
        uint32_t *post = ch_malloc(((size_t)old->nseg + 1) * sizeof *post);
        if (post == NULL) {
            rc = ch_error_set(err, CH_ENOMEM, "out of memory");
            break;
        }
        for (size_t j = 0; j < nt && rc == 0; j++) {
            if (ch__seg_postings(&t[j], post, old->nseg) < 0) {
                rc = ch_error_set(err, CH_EPARSE, "field %s: damaged postings", ch__ix_fields[f]);
                break;
            }
            for (uint32_t q = 0; q < t[j].npost && rc == 0; q++)
                if (old_to_new[post[q]] >= 0 &&
                    ents_add(&e[f], t[j].term.p, t[j].term.n, (uint32_t)old_to_new[post[q]]) < 0)
                    rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        }
        ch_free(post);
    }
    if (rc < 0)
        goto out;
    uint8_t h[SUM_HEADER] = {0};
    if (ch_buf_add(&file, h, SUM_HEADER) < 0) {
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        uint8_t tb[16];
        size_t nl = strlen(meta[i].name);
        ch_le_put64(tb, (uint64_t)meta[i].min_ts);
        ch_le_put64(tb + 8, (uint64_t)meta[i].max_ts);
        if (nl == 0 || nl > 255 || ch_leb_put(&raw, nl) < 0 ||
            ch_buf_add(&raw, meta[i].name, nl + 1) < 0 || ch_leb_put(&raw, meta[i].nrec) < 0 ||
            ch_leb_put(&raw, meta[i].bytes) < 0 || ch_buf_add(&raw, tb, 16) < 0) {
            rc = ch_error_set(err, CH_ELIMIT, "segment name '%s' or memory", meta[i].name);
            goto out;
        }
    }
    uint8_t sec[SUM_NSEC][SEC_ENTRY];
    if ((rc = compress_section(cctx, &file, &raw, sec[0], err)) < 0)
        goto out;
    for (int f = 0; f < CH_IX_NFIELDS; f++) {
        raw.len = 0;
        if (emit_field(&e[f], &raw) < 0) {
            rc = ch_error_set(err, CH_ENOMEM, "out of memory");
            goto out;
        }
        if ((rc = compress_section(cctx, &file, &raw, sec[1 + f], err)) < 0)
            goto out;
    }
    uint8_t *hp = (uint8_t *)file.data;
    memcpy(hp, SUM_MAGIC, 8);
    ch_le_put32(hp + 8, SUM_VERSION);
    ch_le_put32(hp + 12, (uint32_t)n);
    ch_le_put64(hp + 16, (uint64_t)day);
    ch_le_put32(hp + 24, SUM_NSEC);
    for (int k = 0; k < SUM_NSEC; k++)
        memcpy(hp + 32 + (size_t)k * SEC_ENTRY, sec[k], SEC_ENTRY);
    ch_le_put32(hp + 252, ch_crc32c(0, hp, 252));
    /* No fsync: the summary is derived and checked; one lost to a crash is rebuilt. */
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0 || write_all(fd, file.data, file.len) < 0) {
        rc = ch_error_set(err, CH_EIO, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    close(fd);
    fd = -1;
    if (rename(tmp, path) < 0) {
        rc = ch_error_set(err, CH_EIO, "%s: %s", path, strerror(errno));
        unlink(tmp);
    }
out:
    if (fd >= 0) {
        close(fd);
        unlink(tmp);
    }
    for (size_t i = 0; segs && i < n; i++)
        ch__seg_close(segs[i]);
    for (int f = 0; f < CH_IX_NFIELDS; f++)
        ch_free(e[f].v);
    ch_free(segs);
    ch_free(meta);
    ch_free(old_to_new);
    ch_buf_free(&file);
    ch_buf_free(&raw);
    ZSTD_freeCCtx(cctx);
    return rc;
}

bool ch__sum_current(const ch_sum *s, const ch_sum_input *in, size_t n, size_t slack)
{
    if (slack == 0 && s->nseg != n)
        return false;
    size_t missing = 0;
    for (size_t i = 0; i < n && missing <= slack; i++)
        missing += ch__sum_find(s, in[i].name) < 0;
    return missing <= slack;
}

size_t ch__sum_slack(void)
{
    const char *v = getenv("COINHOUND_STORE_SUM_SLACK");
    char *end = NULL;
    unsigned long x = v && *v ? strtoul(v, &end, 10) : 0;
    return v && *v && end && *end == '\0' ? (size_t)x : CH_SUM_SLACK;
}

int ch__sum_refresh(const char *dir, int64_t day, const ch_sum_input *in, size_t n, size_t slack,
                    ch_error *err)
{
    char path[4200];
    if (ch__sum_path(dir, day, path, sizeof path) < 0)
        return ch_error_set(err, CH_ELIMIT, "%s: path too long", dir);
    ch_sum *old = NULL;
    ch_error e = {0};
    /* A damaged previous summary is not merged: the day is rebuilt from its segments. */
    if (ch__sum_open(path, &old, &e) == 0 && old->day == day &&
        ch__sum_current(old, in, n, slack)) {
        ch__sum_close(old);
        return 0;
    }
    if (old && old->day != day) {
        ch__sum_close(old);
        old = NULL;
    }
    int rc = ch__sum_write(path, day, in, n, old, err);
    if (rc < 0 && old) {
        /* The old summary may be damaged past its header (a field frame): rebuild from the
         * segments alone. */
        ch_error e2 = {0};
        if (ch__sum_write(path, day, in, n, NULL, &e2) == 0)
            rc = 0;
    }
    ch__sum_close(old);
    return rc;
}

/* ---- verify ---- */

int ch__sum_verify(ch_sum *s, const ch_sum_input *in, size_t n, ch_error *err)
{
    uint32_t *post = ch_malloc(((size_t)s->nseg + 1) * sizeof *post);
    uint32_t *cnt = ch_calloc(((size_t)s->nseg + 1) * CH_IX_NFIELDS, sizeof *cnt);
    int rc = 0;
    if (post == NULL || cnt == NULL) {
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        goto out;
    }
    for (int f = 0; f < CH_IX_NFIELDS && rc == 0; f++) {
        const ch_seg_term *t;
        size_t nt;
        if ((rc = ch__sum_terms(s, f, &t, &nt, err)) < 0)
            break;
        for (size_t j = 0; j < nt; j++) {
            if (ch__seg_postings(&t[j], post, s->nseg) < 0) {
                rc = ch_error_set(err, CH_EPARSE, "field %s: damaged postings", ch__ix_fields[f]);
                break;
            }
            for (uint32_t q = 0; q < t[j].npost; q++)
                cnt[(size_t)f * s->nseg + post[q]]++;
        }
    }
    /* Each covered segment that exists: the same header facts, and per field exactly the terms
     * of its own index (each found listing it, and as many as list it). */
    for (size_t i = 0; i < n && rc == 0; i++) {
        long k = ch__sum_find(s, in[i].name);
        if (k < 0)
            continue;
        ch_seg *seg = NULL;
        ch_error e = {0};
        if (ch__seg_open(in[i].path, &seg, &e) < 0)
            continue; /* the segment's own check names it */
        const ch_seg_meta *m = ch__seg_meta(seg);
        const ch_sum_seg *ss = &s->segs[k];
        if (m->nrec != ss->nrec || m->file_bytes != ss->bytes || m->min_ts != ss->min_ts ||
            m->max_ts != ss->max_ts)
            rc = ch_error_set(err, CH_EPARSE, "%s: the summary's record of it differs", in[i].name);
        for (int f = 0; f < CH_IX_NFIELDS && rc == 0; f++) {
            const ch_seg_term *t, *st;
            size_t nt, snt;
            if (ch__seg_terms(seg, f, &t, &nt, &e) < 0 || ch__sum_terms(s, f, &st, &snt, &e) < 0)
                break; /* damage named by the segment's own check */
            if (nt != cnt[(size_t)f * s->nseg + (size_t)k]) {
                rc = ch_error_set(err, CH_EPARSE, "%s: field %s: %zu terms, the summary lists %u",
                                  in[i].name, ch__ix_fields[f], nt,
                                  cnt[(size_t)f * s->nseg + (size_t)k]);
                break;
            }
            for (size_t j = 0; j < nt && rc == 0; j++) {
                size_t lo = 0, hi = snt;
                while (lo < hi) {
                    size_t mid = lo + (hi - lo) / 2;
                    int c = term_cmp((const uint8_t *)st[mid].term.p, st[mid].term.n,
                                     (const uint8_t *)t[j].term.p, t[j].term.n);
                    if (c < 0)
                        lo = mid + 1;
                    else
                        hi = mid;
                }
                bool found = false;
                if (lo < snt &&
                    term_cmp((const uint8_t *)st[lo].term.p, st[lo].term.n,
                             (const uint8_t *)t[j].term.p, t[j].term.n) == 0 &&
                    ch__seg_postings(&st[lo], post, s->nseg) == 0)
                    for (uint32_t q = 0; q < st[lo].npost && !found; q++)
                        found = post[q] == (uint32_t)k;
                if (!found)
                    rc = ch_error_set(err, CH_EPARSE,
                                      "%s: field %s: a term is missing from the summary",
                                      in[i].name, ch__ix_fields[f]);
            }
        }
        ch__seg_close(seg);
    }
out:
    ch_free(post);
    ch_free(cnt);
    return rc;
}

/* ---- search ---- */

int ch__sum_plan_day(const char *dir, int64_t day, const ch_sum_input *in, size_t n, size_t slack,
                     ch_search *sr, bool *skip, ch_error *err)
{
    memset(skip, 0, n * sizeof *skip);
    if (n == 0 || !ch__search_indexable(sr))
        return 0;
    char path[4200], note[4900];
    if (ch__sum_path(dir, day, path, sizeof path) < 0)
        return 0;
    ch_sum *sum = NULL;
    ch_error e = {0};
    int rc = ch__sum_open(path, &sum, &e);
    if (rc == 0 && sum->day != day) {
        rc = ch_error_set(&e, CH_EPARSE, "it names day %lld", (long long)sum->day);
        ch__sum_close(sum);
        sum = NULL;
    }
    if (rc < 0 && rc != CH_ENOTFOUND) {
        snprintf(note, sizeof note, "%s: damaged summary, the day's segments are opened: %s", path,
                 e.msg);
        ch__search_note(sr, note, true);
    }
    /* Missing, damaged or behind the directory (beyond slack): rebuild it if this process may
     * write there (a reader without write access keeps opening the uncovered segments). */
    if ((sum == NULL || !ch__sum_current(sum, in, n, slack)) && access(dir, W_OK) == 0) {
        ch_error we = {0};
        int wr = ch__sum_write(path, day, in, n, sum, &we);
        if (wr < 0 && sum)
            wr = ch__sum_write(path, day, in, n, NULL, &we);
        if (wr == CH_ENOMEM) {
            ch__sum_close(sum);
            return ch_error_set(err, wr, "%s", we.msg);
        }
        if (wr == 0) {
            ch__sum_close(sum);
            sum = NULL;
            e = (ch_error){0};
            if (ch__sum_open(path, &sum, &e) < 0)
                sum = NULL;
            snprintf(note, sizeof note, "%s: summary rebuilt over %zu segments", path, n);
            ch__search_note(sr, note, false);
        } else {
            snprintf(note, sizeof note, "%s: summary not rebuilt: %s", path, we.msg);
            ch__search_note(sr, note, false);
        }
    }
    if (sum == NULL)
        return 0;
    uint8_t *maybe = ch_malloc(ch__sum_nseg(sum) + 1);
    if (maybe == NULL) {
        ch__sum_close(sum);
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    }
    e = (ch_error){0};
    rc = ch__search_summary(sr, sum, maybe, &e);
    if (rc == CH_ENOMEM) {
        ch_free(maybe);
        ch__sum_close(sum);
        return ch_error_set(err, rc, "%s", e.msg);
    }
    if (rc < 0) {
        snprintf(note, sizeof note, "%s: damaged summary, the day's segments are opened: %s", path,
                 e.msg);
        ch__search_note(sr, note, true);
    } else {
        size_t nskip = 0, uncovered = 0;
        for (size_t i = 0; i < n; i++) {
            long k = ch__sum_find(sum, in[i].name);
            skip[i] = k >= 0 && !maybe[k];
            nskip += skip[i];
            uncovered += k < 0;
        }
        snprintf(note, sizeof note, "%s: summary rules out %zu of the day's %zu segments%s", path,
                 nskip, n, uncovered ? " (some not covered: opened)" : "");
        ch__search_note(sr, note, false);
    }
    ch_free(maybe);
    ch__sum_close(sum);
    return 0;
}
