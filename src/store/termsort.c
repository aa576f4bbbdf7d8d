/*
 * termsort.c - sorting index terms (byte strings, shorter first on a common prefix) for the
 * store's writers: a segment's distinct terms per field at seal (segment.c) and a day's
 * (term, segment) entries in the summary (summary.c).
 *
 * Both used qsort, whose comparator call, memcmp call and generic element copies came to
 * 18M and 25M instructions per 20k CloudTrail records (callgrind, docs/BENCHMARKS.md section
 * 49). Here each item carries its first 8 bytes as a big-endian integer, so most comparisons
 * are one integer compare; equal prefixes fall back to the full comparison. The sort is a
 * natural merge sort: it first finds the runs already in order and merges neighbours, so a
 * summary's entries, which arrive as one sorted run per segment, cost n log(runs) rather
 * than n log n, and random input (a segment's terms in first-seen order) costs an ordinary
 * merge sort. Stable, O(n) extra memory (one copy of the array), O(n log n) time.
 *
 * Why a prefix key orders correctly: if two keys differ, they differ first at some byte j < 8;
 * either both terms have a byte at j, which then decides, or one term ended before j (its key
 * is zero-padded) and the other's byte there is not zero, so the shorter is a prefix of the
 * longer and comes first, as the full comparison says. Equal keys decide nothing.
 */
#include <string.h>

#include "core/mem.h"
#include "store/store_int.h"

uint64_t ch__tsort_key(const char *p, uint32_t n)
{
    uint64_t k = 0;
    uint32_t m = n < 8 ? n : 8;
    for (uint32_t i = 0; i < m; i++)
        k |= (uint64_t)(uint8_t)p[i] << (56 - 8 * i);
    return k;
}

static inline int item_cmp(const ch_tsort *a, const ch_tsort *b)
{
    if (a->key != b->key)
        return a->key < b->key ? -1 : 1;
    uint32_t m = a->n < b->n ? a->n : b->n;
    int c = m > 8 ? memcmp(a->p + 8, b->p + 8, m - 8) : 0;
    if (c)
        return c;
    if (a->n != b->n)
        return a->n < b->n ? -1 : 1;
    return a->tie < b->tie ? -1 : a->tie > b->tie;
}

/* Merge src[lo..mid) and src[mid..hi) into dst[lo..hi). */
static void merge(const ch_tsort *src, ch_tsort *dst, size_t lo, size_t mid, size_t hi)
{
    size_t i = lo, j = mid, o = lo;
    while (i < mid && j < hi)
        dst[o++] = item_cmp(&src[j], &src[i]) < 0 ? src[j++] : src[i++];
    while (i < mid)
        dst[o++] = src[i++];
    while (j < hi)
        dst[o++] = src[j++];
}

int ch__tsort(ch_tsort *v, size_t n)
{
    if (n < 2)
        return 0;
    /* run starts: at most n + 1 of them */
    size_t *run = ch_malloc((n + 1) * sizeof *run);
    ch_tsort *tmp = ch_malloc(n * sizeof *tmp);
    if (run == NULL || tmp == NULL) {
        ch_free(run);
        ch_free(tmp);
        return CH_ENOMEM;
    }
    size_t nr = 0;
    run[nr++] = 0;
    for (size_t i = 1; i < n; i++)
        if (item_cmp(&v[i - 1], &v[i]) > 0)
            run[nr++] = i;
    run[nr] = n;
    ch_tsort *src = v, *dst = tmp;
    while (nr > 1) {
        size_t k = 0, w = 0;
        for (; k + 1 < nr; k += 2) {
            merge(src, dst, run[k], run[k + 1], run[k + 2]);
            run[w++] = run[k];
        }
        if (k < nr) { /* an odd run out: copied as it is */
            memcpy(dst + run[k], src + run[k], (run[k + 1] - run[k]) * sizeof *src);
            run[w++] = run[k];
        }
        run[w] = n;
        nr = w;
        ch_tsort *t = src;
        src = dst;
        dst = t;
    }
    if (src != v)
        memcpy(v, src, n * sizeof *v);
    ch_free(run);
    ch_free(tmp);
    return 0;
}
