/*
 * heap.h - a binary min-heap of items by time, FIFO on ties, over a caller's array.
 *
 * Used wherever something must come out in time order: the engine's key expiry (by expiry
 * time, ties in insertion order) and the merge of several log files (by the next event's time,
 * ties in file order, so that equal times stay stable). Each element carries its key and its
 * tie-break beside the item pointer, so sifting compares without visiting the items (and an
 * item may change after it was pushed: the heap keeps the key it was pushed with; callers that
 * move a deadline push again and check on pop, as the engine does).
 *
 * The caller owns the array and its growth (the engine accounts heap bytes to its memory cap,
 * the merge sizes it once), so only the sifts live here, static inline: they run per event.
 * Push and pop are O(log n); top is O(1).
 */
#ifndef CH_CORE_HEAP_H
#define CH_CORE_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ch_heap_elem {
    int64_t key;    /* smallest first */
    uint64_t order; /* then smallest first: an insertion counter or an index */
    void *item;     /* borrowed */
} ch_heap_elem;

static inline bool ch_heap_less(const ch_heap_elem *a, const ch_heap_elem *b)
{
    return a->key < b->key || (a->key == b->key && a->order < b->order);
}

/* Push x onto h[0..*n); the caller made room for one more element. */
static inline void ch_heap_push(ch_heap_elem *h, size_t *n, ch_heap_elem x)
{
    size_t i = (*n)++;
    h[i] = x;
    while (i > 0 && ch_heap_less(&h[i], &h[(i - 1) / 2])) {
        ch_heap_elem t = h[i];
        h[i] = h[(i - 1) / 2];
        h[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

/* Remove and return the smallest element of h[0..*n), which is not empty. */
static inline ch_heap_elem ch_heap_pop(ch_heap_elem *h, size_t *n)
{
    ch_heap_elem top = h[0];
    size_t len = --*n, i = 0;
    h[0] = h[len];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < len && ch_heap_less(&h[l], &h[m]))
            m = l;
        if (r < len && ch_heap_less(&h[r], &h[m]))
            m = r;
        if (m == i)
            break;
        ch_heap_elem t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
    return top;
}

#endif
