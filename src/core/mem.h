/*
 * mem.h - allocator wrappers and the per-batch arena.
 *
 * Long-lived state goes through ch_malloc and friends so that tests can make the n-th
 * allocation fail on purpose (ch_mem_fail_after) and check that every caller survives it.
 * Per-record data comes from a ch_arena: bump allocation from chunks, freed all at once by
 * ch_arena_reset, which keeps the first chunk so that steady state allocates nothing.
 * ch_mem_populate faults a large allocation's pages in at once, for memory written at random
 * soon after it is made (large arena chunks, hash tables).
 */
#ifndef CH_CORE_MEM_H
#define CH_CORE_MEM_H

#include <stddef.h>
#include <stdint.h>

void *ch_malloc(size_t n);
void *ch_calloc(size_t count, size_t size);
void *ch_realloc(void *p, size_t n);
void ch_free(void *p);
char *ch_strndup(const char *s, size_t n);
char *ch_strdup(const char *s);

/* A full array of *cap elements of elem bytes, grown: reallocated to twice *cap elements (first
 * when *cap is 0), *cap updated. NULL when out of memory or when the size would overflow size_t;
 * p and *cap are then untouched, so the caller still owns p. One place for the doubling that
 * every growing list repeats, and for its overflow check. */
void *ch_grow(void *p, size_t *cap, size_t first, size_t elem);

/* Fault in the whole pages of [p, p + n) writable, in one system call (MADV_POPULATE_WRITE),
 * for memory about to be written through: a page fault each is dear under virtualisation, and a
 * large table or arena chunk written at random faults page after page on the writing thread. A
 * kernel without it (before 5.14) leaves the pages to fault lazily. */
void ch_mem_populate(void *p, size_t n);
/* The size from which an arena chunk or a hash table's slot array is populated when made. */
#define CH_MEM_POPULATE_MIN ((size_t)256 << 10)

/* Test hook: after `n` more successful allocations, every allocation fails; -1 disables. */
void ch_mem_fail_after(long n);

typedef struct ch_arena_chunk ch_arena_chunk;

/* A bump allocator. Owns its chunks; the memory it hands out lives until reset or free. */
typedef struct ch_arena {
    ch_arena_chunk *head;
    size_t chunk_size;
} ch_arena;

void ch_arena_init(ch_arena *a, size_t chunk_size);
void *ch_arena_alloc(ch_arena *a, size_t n); /* 8-byte aligned; NULL when out of memory */
char *ch_arena_strndup(ch_arena *a, const char *s, size_t n);
void ch_arena_reset(ch_arena *a);
void ch_arena_free(ch_arena *a);

#endif
