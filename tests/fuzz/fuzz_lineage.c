/*
 * fuzz_lineage.c - the stored text of identity lineage (enrich/lineage.h), which a damaged or
 * hand-edited store can make anything: ch_lineage_load must never crash or loop, must keep its
 * invariants (no link is its own parent, every resolve ends within the depth bound), and what it
 * loaded must save to a text that loads back to the same number of links, byte for byte the
 * same text again (save is a fixed point after one round).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/buf.h"
#include "enrich/lineage.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

static int check_link(void *ud, const ch_lineage_link *k)
{
    ch_lineage *l = ud;
    CHECK(k->child.n > 0 && k->parent.n > 0);
    CHECK(k->child.n != k->parent.n || memcmp(k->child.p, k->parent.p, k->child.n) != 0);
    ch_sv top;
    (void)ch_lineage_resolve(l, k->child.p, k->child.n, NULL, NULL, &top);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ch_lineage *a = NULL, *b = NULL;
    ch_error err = {0};
    if (ch_lineage_new(64, &a, &err) < 0 || ch_lineage_new(64, &b, &err) < 0)
        goto done;
    int n = ch_lineage_load(a, (const char *)data, size);
    if (n < 0)
        goto done;
    CHECK(ch_lineage_count(a) <= 64);
    ch_lineage_each(a, check_link, a);
    ch_buf s1, s2;
    ch_buf_init(&s1, 1 << 24);
    ch_buf_init(&s2, 1 << 24);
    CHECK(ch_lineage_save(a, &s1) == 0);
    CHECK(ch_lineage_load(b, s1.data, s1.len) == (int)ch_lineage_count(a));
    CHECK(ch_lineage_save(b, &s2) == 0);
    CHECK(s1.len == s2.len && (s1.len == 0 || memcmp(s1.data, s2.data, s1.len) == 0));
    ch_buf_free(&s1);
    ch_buf_free(&s2);
done:
    ch_lineage_free(a);
    ch_lineage_free(b);
    return 0;
}
