/*
 * index_bench.c - the event store's posting lists (sorted term dictionaries with delta-varint
 * ordinals, src/store/segment.c) against CRoaring bitmaps (Debian libroaring-dev) on the terms
 * of real segments: bytes on disk, and the CPU time of the two things a lookup does with them,
 * decoding one term's ordinals and intersecting two terms (user.name AND event.action, as
 * `search 'user.name == "x" and event.action == "RunInstances"'` does). Issue 10 asks for the
 * index structure to be chosen by measurement; docs/BENCHMARKS.md records the figures.
 *
 * Both sides get the same input: the ordinals of every term of every indexed field of every
 * segment named on the command line. Roaring bitmaps are built from them once, run-optimized and
 * serialized in the portable format (what a segment would store); the timed loops start from
 * the stored bytes on both sides (varints to decode; a portable bitmap to deserialize), so a
 * lookup's real work is compared, and both end with the matching ordinals in an array.
 *
 * Not built by CMake. From the repository root, after scripts/build build:
 *
 *   cc -O2 -std=gnu17 -D_GNU_SOURCE -Isrc bench/index_bench.c build/libcoinhound_core.a \
 *      -lroaring -lzstd -lsqlite3 -lyaml -lz -lm -lpthread -o /tmp/index_bench
 *   /tmp/index_bench [--seconds S] DB.events/*.seg
 *
 * Times are the process's CPU time (CLOCK_PROCESS_CPUTIME_ID), each row repeated until it has
 * run S seconds (default 2), so a 10 ms tick is under 1% of a row.
 */
#include <inttypes.h>
#include <roaring/roaring.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "core/mem.h"
#include "store/store_int.h"

typedef struct term {
    uint8_t *var; /* our bytes (copied: segments are closed after loading) */
    size_t varlen;
    uint32_t npost, nrec;
    char *roar; /* portable roaring bytes */
    size_t roarlen;
    int field;
} term;

static term *terms;
static size_t nterms, capterms;
/* pairs to intersect: (user.name term, event.action term) of the same segment */
static size_t (*pairs)[2];
static size_t npairs, cappairs;

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *grow(void *p, size_t *cap, size_t n, size_t sz)
{
    if (n < *cap)
        return p;
    *cap = *cap ? *cap * 2 : 1024;
    void *q = realloc(p, *cap * sz);
    if (q == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return q;
}

static void load(const char *path)
{
    ch_seg *s = NULL;
    ch_error err = {0};
    if (ch__seg_open(path, &s, &err) < 0) {
        fprintf(stderr, "%s: %s (skipped)\n", path, err.msg);
        return;
    }
    uint32_t nrec = ch__seg_meta(s)->nrec;
    uint32_t *ords = malloc((size_t)nrec * sizeof *ords + 4);
    int fu = ch__ix_field("user.name"), fa = ch__ix_field("event.action");
    size_t first_user = SIZE_MAX, nuser = 0, first_act = SIZE_MAX, nact = 0;
    for (int f = 0; f < CH_IX_NFIELDS; f++) {
        const ch_seg_term *t;
        size_t n;
        if (ch__seg_terms(s, f, &t, &n, &err) < 0) {
            fprintf(stderr, "%s: %s\n", path, err.msg);
            break;
        }
        for (size_t i = 0; i < n; i++) {
            if (t[i].npost == 0 || ch__seg_postings(&t[i], ords, nrec) < 0)
                continue;
            terms = grow(terms, &capterms, nterms, sizeof *terms);
            term *x = &terms[nterms];
            x->field = f;
            x->npost = t[i].npost;
            x->nrec = nrec;
            x->varlen = t[i].postlen;
            x->var = malloc(x->varlen + 1);
            memcpy(x->var, t[i].post, x->varlen);
            roaring_bitmap_t *r = roaring_bitmap_of_ptr(t[i].npost, ords);
            roaring_bitmap_run_optimize(r);
            x->roarlen = roaring_bitmap_portable_size_in_bytes(r);
            x->roar = malloc(x->roarlen);
            roaring_bitmap_portable_serialize(r, x->roar);
            roaring_bitmap_free(r);
            if (f == fu) {
                if (first_user == SIZE_MAX)
                    first_user = nterms;
                nuser++;
            } else if (f == fa) {
                if (first_act == SIZE_MAX)
                    first_act = nterms;
                nact++;
            }
            nterms++;
        }
    }
    /* Up to 64 (user, action) pairs per segment, spread over both dictionaries. */
    for (size_t k = 0; k < 64 && nuser && nact; k++) {
        pairs = grow(pairs, &cappairs, npairs, sizeof *pairs);
        pairs[npairs][0] = first_user + (k * 7919) % nuser;
        pairs[npairs][1] = first_act + (k * 104729) % nact;
        npairs++;
    }
    free(ords);
    ch__seg_close(s);
}

static uint32_t *buf_a, *buf_b, *buf_c;
static volatile uint64_t sink;

/* Decode every term once: ours. */
static void decode_ours(void)
{
    for (size_t i = 0; i < nterms; i++) {
        ch_seg_term t = {.post = terms[i].var, .npost = terms[i].npost, .postlen = terms[i].varlen};
        if (ch__seg_postings(&t, buf_a, terms[i].nrec) == 0)
            sink += buf_a[terms[i].npost - 1];
    }
}

static void decode_roaring(void)
{
    for (size_t i = 0; i < nterms; i++) {
        roaring_bitmap_t *r =
            roaring_bitmap_portable_deserialize_safe(terms[i].roar, terms[i].roarlen);
        roaring_bitmap_to_uint32_array(r, buf_a);
        sink += buf_a[terms[i].npost - 1];
        roaring_bitmap_free(r);
    }
}

static void intersect_ours(void)
{
    for (size_t k = 0; k < npairs; k++) {
        const term *x = &terms[pairs[k][0]], *y = &terms[pairs[k][1]];
        ch_seg_term tx = {.post = x->var, .npost = x->npost, .postlen = x->varlen};
        ch_seg_term ty = {.post = y->var, .npost = y->npost, .postlen = y->varlen};
        ch__seg_postings(&tx, buf_a, x->nrec);
        ch__seg_postings(&ty, buf_b, y->nrec);
        size_t i = 0, j = 0, n = 0;
        while (i < x->npost && j < y->npost) {
            if (buf_a[i] < buf_b[j])
                i++;
            else if (buf_a[i] > buf_b[j])
                j++;
            else {
                buf_c[n++] = buf_a[i];
                i++;
                j++;
            }
        }
        sink += n;
    }
}

static void intersect_roaring(void)
{
    for (size_t k = 0; k < npairs; k++) {
        const term *x = &terms[pairs[k][0]], *y = &terms[pairs[k][1]];
        roaring_bitmap_t *rx = roaring_bitmap_portable_deserialize_safe(x->roar, x->roarlen);
        roaring_bitmap_t *ry = roaring_bitmap_portable_deserialize_safe(y->roar, y->roarlen);
        roaring_bitmap_t *rz = roaring_bitmap_and(rx, ry);
        roaring_bitmap_to_uint32_array(rz, buf_c);
        sink += roaring_bitmap_get_cardinality(rz);
        roaring_bitmap_free(rx);
        roaring_bitmap_free(ry);
        roaring_bitmap_free(rz);
    }
}

/* Run fn until it has taken `seconds` of CPU; returns CPU seconds per call. */
static double timed(void (*fn)(void), double seconds, unsigned *reps)
{
    fn(); /* warm */
    double t0 = cpu_s(), t;
    unsigned n = 0;
    do {
        fn();
        n++;
        t = cpu_s() - t0;
    } while (t < seconds);
    *reps = n;
    return t / n;
}

int main(int argc, char **argv)
{
    double seconds = 2;
    int a = 1;
    if (a + 1 < argc && strcmp(argv[a], "--seconds") == 0) {
        seconds = atof(argv[a + 1]);
        a += 2;
    }
    if (a >= argc) {
        fprintf(stderr, "usage: index_bench [--seconds S] SEGMENT...\n");
        return 2;
    }
    uint32_t maxrec = 0;
    for (; a < argc; a++)
        load(argv[a]);
    for (size_t i = 0; i < nterms; i++)
        maxrec = terms[i].nrec > maxrec ? terms[i].nrec : maxrec;
    if (nterms == 0) {
        fprintf(stderr, "no terms in the segments given\n");
        return 1;
    }
    buf_a = malloc(((size_t)maxrec + 1) * 4);
    buf_b = malloc(((size_t)maxrec + 1) * 4);
    buf_c = malloc(((size_t)maxrec + 1) * 4);
    uint64_t ours[CH_IX_NFIELDS] = {0}, roar[CH_IX_NFIELDS] = {0}, nt[CH_IX_NFIELDS] = {0},
             posts[CH_IX_NFIELDS] = {0};
    for (size_t i = 0; i < nterms; i++) {
        ours[terms[i].field] += terms[i].varlen;
        roar[terms[i].field] += terms[i].roarlen;
        nt[terms[i].field]++;
        posts[terms[i].field] += terms[i].npost;
    }
    printf("| field | terms | postings | delta-varint bytes | roaring bytes | roaring / ours |\n");
    printf("|---|---|---|---|---|---|\n");
    uint64_t to = 0, tr = 0;
    for (int f = 0; f < CH_IX_NFIELDS; f++) {
        if (!nt[f])
            continue;
        printf("| %s | %" PRIu64 " | %" PRIu64 " | %" PRIu64 " | %" PRIu64 " | %.2f |\n",
               ch__ix_fields[f], nt[f], posts[f], ours[f], roar[f], (double)roar[f] / ours[f]);
        to += ours[f];
        tr += roar[f];
    }
    printf("| all | %zu | | %" PRIu64 " | %" PRIu64 " | **%.2f** |\n\n", nterms, to, tr,
           (double)tr / to);
    unsigned r1, r2, r3, r4;
    double d1 = timed(decode_ours, seconds, &r1);
    double d2 = timed(decode_roaring, seconds, &r2);
    double i1 = npairs ? timed(intersect_ours, seconds, &r3) : 0;
    double i2 = npairs ? timed(intersect_roaring, seconds, &r4) : 0;
    printf("| operation (CPU time per pass) | delta-varint | roaring | roaring / ours |\n");
    printf("|---|---|---|---|\n");
    printf(
        "| decode all %zu terms to ordinals (%u and %u passes) | %.3f ms | %.3f ms | **%.2f** |\n",
        nterms, r1, r2, d1 * 1e3, d2 * 1e3, d2 / d1);
    if (npairs)
        printf("| %zu intersections user.name AND event.action (%u and %u passes) | %.3f ms | %.3f "
               "ms | **%.2f** |\n",
               npairs, r3, r4, i1 * 1e3, i2 * 1e3, i2 / i1);
    return 0;
}
