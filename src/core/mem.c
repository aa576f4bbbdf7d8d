/*
 * mem.c - allocator wrappers with failure injection, page population, and the bump arena. The
 * failure counter is a plain global: tests that use it run single-threaded.
 */
#include "core/mem.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static long fail_after = -1;

void ch_mem_fail_after(long n) { fail_after = n; }

static int should_fail(void)
{
    if (fail_after < 0)
        return 0;
    if (fail_after == 0)
        return 1;
    fail_after--;
    return 0;
}

void *ch_malloc(size_t n) { return should_fail() ? NULL : malloc(n ? n : 1); }
void *ch_calloc(size_t c, size_t s) { return should_fail() ? NULL : calloc(c ? c : 1, s ? s : 1); }
void *ch_realloc(void *p, size_t n) { return should_fail() ? NULL : realloc(p, n ? n : 1); }
void ch_free(void *p) { free(p); }

char *ch_strndup(const char *s, size_t n)
{
    char *d = ch_malloc(n + 1);
    if (d == NULL)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *ch_strdup(const char *s) { return ch_strndup(s, strlen(s)); }

void *ch_grow(void *p, size_t *cap, size_t first, size_t elem)
{
    size_t ncap = *cap ? *cap : (first ? first : 1);
    if (*cap != 0) {
        if (ncap > SIZE_MAX / 2)
            return NULL;
        ncap *= 2;
    }
    if (elem != 0 && ncap > SIZE_MAX / elem)
        return NULL;
    void *q = ch_realloc(p, ncap * elem);
    if (q != NULL)
        *cap = ncap;
    return q;
}

void ch_mem_populate(void *p, size_t n)
{
#ifdef MADV_POPULATE_WRITE
    long page = sysconf(_SC_PAGESIZE);
    if (p == NULL || page <= 0)
        return;
    uintptr_t from = ((uintptr_t)p + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    uintptr_t to = ((uintptr_t)p + n) & ~((uintptr_t)page - 1);
    if (to > from)
        (void)madvise((void *)from, to - from, MADV_POPULATE_WRITE); /* advice: failure is fine */
#else
    (void)p;
    (void)n;
#endif
}

struct ch_arena_chunk {
    ch_arena_chunk *next;
    size_t size, used;
    _Alignas(8) unsigned char data[];
};

void ch_arena_init(ch_arena *a, size_t chunk_size)
{
    a->head = NULL;
    a->chunk_size = chunk_size ? chunk_size : 64 * 1024;
}

void *ch_arena_alloc(ch_arena *a, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    ch_arena_chunk *c = a->head;
    if (c == NULL || c->size - c->used < n) {
        size_t sz = n > a->chunk_size ? n : a->chunk_size;
        ch_arena_chunk *nc = ch_malloc(sizeof *nc + sz);
        if (nc == NULL)
            return NULL;
        /* Large chunks are written through soon after they are made (the graph facts' arena: 1
         * MiB chunks, seven thousand page faults on the merge thread in a 300k-record run). The
         * read-ahead's smaller chunks are reused batch after batch and fault only once. */
        if (sz >= CH_MEM_POPULATE_MIN)
            ch_mem_populate(nc->data, sz);
        nc->size = sz;
        nc->used = 0;
        nc->next = c;
        a->head = c = nc;
    }
    void *p = c->data + c->used;
    c->used += n;
    return p;
}

char *ch_arena_strndup(ch_arena *a, const char *s, size_t n)
{
    char *d = ch_arena_alloc(a, n + 1);
    if (d == NULL)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

void ch_arena_reset(ch_arena *a)
{
    /* Keep the oldest chunk (the tail): it is the steady-state working set. */
    ch_arena_chunk *c = a->head;
    if (c == NULL)
        return;
    while (c->next != NULL) {
        ch_arena_chunk *n = c->next;
        ch_free(c);
        c = n;
    }
    c->used = 0;
    a->head = c;
}

void ch_arena_free(ch_arena *a)
{
    ch_arena_chunk *c = a->head;
    while (c != NULL) {
        ch_arena_chunk *n = c->next;
        ch_free(c);
        c = n;
    }
    a->head = NULL;
}
