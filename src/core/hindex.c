/*
 * hindex.c - growth and clearing of the pointer index of hindex.h; lookups are inline there.
 *
 * Growing allocates the new slot array first and moves the slots by their stored hashes, so a
 * failed allocation leaves the index as it was and growth never calls back into the owner.
 * Every stored item is distinct, so a move needs no key comparison: the first empty slot from
 * the home slot is its place. O(capacity) per doubling, amortized O(1) per item.
 */
#include "core/hindex.h"

#include <string.h>

#include "core/error.h"
#include "core/mem.h"

int ch_hindex_reserve(ch_hindex *ix, size_t want, size_t first_cap)
{
    size_t nc = ix->cap ? ix->cap : (first_cap ? first_cap : 16);
    while (want * 4 > nc * 3)
        nc *= 2;
    if (nc == ix->cap)
        return 0;
    ch_hindex_slot *ns = ch_calloc(nc, sizeof *ns);
    if (ns == NULL)
        return CH_ENOMEM;
    /* The slots are written at random below and after: their pages faulted in at once. */
    if (nc * sizeof *ns >= CH_MEM_POPULATE_MIN)
        ch_mem_populate(ns, nc * sizeof *ns);
    for (size_t i = 0; i < ix->cap; i++) {
        const ch_hindex_slot *sl = &ix->slots[i];
        if (sl->item == NULL)
            continue;
        size_t j = sl->h & (nc - 1);
        while (ns[j].item != NULL)
            j = (j + 1) & (nc - 1);
        ns[j] = *sl;
    }
    ch_free(ix->slots);
    ix->slots = ns;
    ix->cap = nc;
    return 0;
}

void ch_hindex_clear(ch_hindex *ix)
{
    if (ix->cap != 0)
        memset(ix->slots, 0, ix->cap * sizeof *ix->slots);
    ix->n = 0;
}

void ch_hindex_free(ch_hindex *ix)
{
    ch_free(ix->slots);
    *ix = (ch_hindex){0};
}
