/*
 * hindex.h - an open-addressing index of borrowed pointers by 64-bit hash.
 *
 * For a manager that owns its items in an array and needs to find one by key in one probe:
 * the offense manager (active offenses by index field and value) and the risk table (users by
 * name). Each slot holds the hash beside the pointer, so a probe that misses costs no visit to
 * the item; keys are compared in full only when the hashes agree, through a callback that the
 * compiler inlines (everything here but growth is static inline). Linear probing in a
 * power-of-two array kept at most 3/4 full.
 *
 * There is no removal: an item leaves by the owner clearing the index and putting back what
 * remains (O(items)), which suits owners whose removals are rare (closing an offense is an
 * analyst's action). Growth rehashes from the stored hashes, without visiting the items.
 *
 * Ownership: the index owns its slot array only; the items are borrowed from the caller, who
 * keeps them alive while they are in the index. A zeroed ch_hindex is a valid empty index.
 */
#ifndef CH_CORE_HINDEX_H
#define CH_CORE_HINDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ch_hindex_slot {
    uint64_t h;
    void *item; /* NULL: empty slot */
} ch_hindex_slot;

typedef struct ch_hindex {
    ch_hindex_slot *slots;
    size_t cap; /* 0 or a power of two */
    size_t n;   /* slots in use */
} ch_hindex;

/* Does `item` have the key `key` (whatever the caller means by a key)? */
typedef bool (*ch_hindex_eq)(const void *item, const void *key);

/* Make room for `want` items at most 3/4 full, doubling from the current capacity (or from
 * `first_cap`, a power of two, when empty). 0 or CH_ENOMEM, the index unchanged on failure. */
int ch_hindex_reserve(ch_hindex *ix, size_t want, size_t first_cap);

/* Empty the index, keeping its capacity. */
void ch_hindex_clear(ch_hindex *ix);

/* Free the slot array (not the items); the index is empty and valid afterwards. */
void ch_hindex_free(ch_hindex *ix);

/* The slot holding the item of hash h for which eq(item, key), or the empty slot where it
 * would go. Requires a non-empty capacity (ch_hindex_reserve). */
static inline size_t ch_hindex_probe(const ch_hindex *ix, uint64_t h, ch_hindex_eq eq,
                                     const void *key)
{
    size_t mask = ix->cap - 1, j = h & mask;
    for (;;) {
        const ch_hindex_slot *sl = &ix->slots[j];
        if (sl->item == NULL || (sl->h == h && eq(sl->item, key)))
            return j;
        j = (j + 1) & mask;
    }
}

/* The item of hash h and key `key`, or NULL. */
static inline void *ch_hindex_find(const ch_hindex *ix, uint64_t h, ch_hindex_eq eq,
                                   const void *key)
{
    if (ix->cap == 0)
        return NULL;
    return ix->slots[ch_hindex_probe(ix, h, eq, key)].item;
}

/* Put item (hash h) into the slot ch_hindex_probe returned for it. The caller reserved room
 * for it first; putting over an occupied slot replaces that item. */
static inline void ch_hindex_set(ch_hindex *ix, size_t slot, uint64_t h, void *item)
{
    if (ix->slots[slot].item == NULL)
        ix->n++;
    ix->slots[slot] = (ch_hindex_slot){h, item};
}

#endif
