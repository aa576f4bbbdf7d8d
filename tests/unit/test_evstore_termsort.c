/* test_evstore_termsort.c - the store's term sort (termsort.c) puts index terms in the order
 * every reader of a dictionary relies on (binary search, merges, verify): bytes compared as
 * unsigned, a prefix before the longer term, then the tie-breaker. Checked against a plain
 * comparison sort on terms built to stress the 8-byte prefix key: shared prefixes, lengths
 * around 8, NUL and 0xff bytes, duplicates, sorted runs and random order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store/store_int.h"

static int ref_cmp(const void *a, const void *b)
{
    const ch_tsort *x = a, *y = b;
    uint32_t m = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->p, y->p, m);
    if (c)
        return c;
    if (x->n != y->n)
        return x->n < y->n ? -1 : 1;
    return x->tie < y->tie ? -1 : x->tie > y->tie;
}

static uint32_t rnd(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

static void check(ch_tsort *v, size_t n)
{
    ch_tsort *want = malloc((n ? n : 1) * sizeof *want);
    assert_non_null(want);
    memcpy(want, v, n * sizeof *v);
    qsort(want, n, sizeof *want, ref_cmp);
    assert_int_equal(ch__tsort(v, n), 0);
    for (size_t i = 0; i < n; i++) {
        /* equal items may come in either order: compare what they hold */
        assert_int_equal(v[i].n, want[i].n);
        assert_memory_equal(v[i].p, want[i].p, v[i].n);
        assert_int_equal(v[i].tie, want[i].tie);
        assert_int_equal(v[i].key, ch__tsort_key(v[i].p, v[i].n));
    }
    free(want);
}

static void test_terms_sort_as_bytes_with_prefixes_first(void **state)
{
    (void)state;
    enum { N = 5000 };
    static char pool[N][24];
    static ch_tsort v[N];
    const char *stems[] = {"", "a", "10.0.0.", "arn:aws:iam::1234", "\xff\xff", "ab\0"};
    uint32_t s = 7;
    for (int round = 0; round < 4; round++) {
        for (uint32_t i = 0; i < N; i++) {
            const char *st = stems[rnd(&s) % 6];
            uint32_t sl = st[0] == 'a' && st[1] == 'b' ? 3 : (uint32_t)strlen(st);
            if (sl > 16)
                sl = 16;
            memcpy(pool[i], st, sl);
            uint32_t extra = rnd(&s) % 8;
            for (uint32_t k = 0; k < extra; k++) {
                uint32_t r = rnd(&s) % 4;
                pool[i][sl + k] = r == 0 ? '\0' : r == 1 ? '\xff' : (char)('0' + rnd(&s) % 3);
            }
            uint32_t n = sl + extra;
            /* round 1: sorted runs (how a summary's entries arrive); 3: all one tie */
            v[i] = (ch_tsort){ch__tsort_key(pool[i], n), pool[i], n,
                              round == 3 ? 0 : (uint32_t)(i % 97)};
        }
        if (round == 1)
            for (size_t a = 0; a < N; a += 500)
                qsort(v + a, 500, sizeof *v, ref_cmp);
        if (round == 2)
            qsort(v, N, sizeof *v, ref_cmp); /* already in order */
        check(v, N);
    }
    check(v, 0);
    check(v, 1);
}

static void test_prefix_key_never_contradicts_the_bytes(void **state)
{
    (void)state;
    /* "ab" vs "ab\0": equal keys, the shorter first; "ab\0\x01" after both */
    ch_tsort v[] = {{0, "ab\0\x01", 4, 0}, {0, "ab\0", 3, 1}, {0, "ab", 2, 2}, {0, "", 0, 3}};
    for (size_t i = 0; i < 4; i++)
        v[i].key = ch__tsort_key(v[i].p, v[i].n);
    assert_int_equal(ch__tsort(v, 4), 0);
    assert_int_equal(v[0].tie, 3);
    assert_int_equal(v[1].tie, 2);
    assert_int_equal(v[2].tie, 1);
    assert_int_equal(v[3].tie, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_terms_sort_as_bytes_with_prefixes_first),
        cmocka_unit_test(test_prefix_key_never_contradicts_the_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
