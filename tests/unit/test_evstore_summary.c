/*
 * test_evstore_summary.c - the event store's per-day term summaries (store/summary.c): a
 * summary lists for each term exactly the segments whose index holds it, so a search skips
 * only segments that cannot match; the summary the writer merges from the previous one and
 * the new segments is the one a fresh build gives, also after segments are removed; a day of
 * more segments than the process may hold descriptors is summarized (segments are read with
 * pread, and the rebuild releases each file once its index is read); and a damaged summary,
 * or one that no longer describes its segments, is refused with a reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "store/search.h"
#include "store/search_int.h"
#include "store/store_int.h"
#include "tmpdir.h"

static char dir[512];
static char paths[3][600];
static const char *const names[3] = {"cloudtrail-480000-0000000000000001-00000000.seg",
                                     "cloudtrail-480001-0000000000000001-00000001.seg",
                                     "cloudtrail-480002-0000000000000002-00000000.seg"};
/* Users per segment: a and c share alice. */
static const char *const users[3][2] = {{"alice", "bob"}, {"carol", "carol"}, {"alice", "dave"}};

static void write_seg(int k)
{
    ch_seg_builder b;
    ch__segb_init(&b, CH_DS_CLOUDTRAIL, 480000 + k);
    for (int i = 0; i < 300; i++) {
        ch_event ev;
        ch_event_reset(&ev);
        ev.ts_ms = (480000LL + k) * 3600000 + i * 1000;
        ev.dataset = CH_DS_CLOUDTRAIL;
        ev.outcome = CH_OUTCOME_SUCCESS;
        ev.action = CH_SV("DescribeInstances");
        const char *u = users[k][i % 2];
        ev.user_name = (ch_sv){u, (uint32_t)strlen(u)};
        assert_int_equal(ch__segb_add(&b, &ev, (uint64_t)(k * 1000 + i + 1)), 0);
    }
    ch_error err = {0};
    snprintf(paths[k], sizeof paths[k], "%s/%s", dir, names[k]);
    assert_int_equal(ch__segb_write(&b, paths[k], 1, (uint32_t)k, NULL, NULL, &err), 0);
    ch__segb_free(&b);
}

static int setup(void **state)
{
    (void)state;
    if (ch_test_tmpdir(dir, sizeof dir, "sum") < 0)
        return -1;
    for (int k = 0; k < 3; k++)
        write_seg(k);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return ch_test_rmdir(dir);
}

static void inputs(ch_sum_input *in, const int *which, size_t n)
{
    for (size_t i = 0; i < n; i++)
        in[i] = (ch_sum_input){names[which[i]], paths[which[i]]};
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*n);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

/* Which of the summary's segments a search of expr may need. */
static void plan(const char *path, const char *expr, const char *want)
{
    ch_sum *s = NULL;
    ch_error err = {0};
    assert_int_equal(ch__sum_open(path, &s, &err), 0);
    ch_search_opts so = {.expr = expr};
    ch_search *sr = NULL;
    assert_int_equal(ch_search_new(&so, &sr, &err), 0);
    uint8_t maybe[8];
    assert_int_equal(ch__search_summary(sr, s, maybe, &err), 0);
    char got[8] = {0};
    for (uint32_t i = 0; i < ch__sum_nseg(s); i++)
        got[i] = maybe[i] ? '1' : '0';
    assert_string_equal(got, want);
    ch_search_free(sr);
    ch__sum_close(s);
}

static void test_summary_lists_exactly_the_segments_holding_a_term(void **state)
{
    (void)state;
    char p[700];
    snprintf(p, sizeof p, "%s/day-20000.sum", dir);
    ch_sum_input in[3];
    const int all[3] = {0, 1, 2};
    inputs(in, all, 3);
    ch_error err = {0};
    assert_int_equal(ch__sum_write(p, 20000, in, 3, NULL, &err), 0);
    plan(p, "user.name == \"carol\"", "010");
    plan(p, "user.name == \"alice\"", "101");
    plan(p, "user.name == \"nobody\"", "000");
    plan(p, "user.name == \"bob\" or user.name == \"dave\"", "101");
    plan(p, "user.name == \"alice\" and user.name == \"bob\"", "100");
    plan(p, "user.name endswith \"ol\"", "010");
    /* Tests an index cannot answer keep every segment. */
    plan(p, "not user.name == \"alice\"", "111");
    plan(p, "event.outcome == \"success\"", "111");
    ch_sum *s = NULL;
    assert_int_equal(ch__sum_open(p, &s, &err), 0);
    assert_int_equal(ch__sum_day(s), 20000);
    assert_int_equal(ch__sum_seg(s, 1)->nrec, 300);
    assert_int_equal(ch__sum_find(s, names[2]), 2);
    assert_int_equal(ch__sum_find(s, "other.seg"), -1);
    assert_int_equal(ch__sum_verify(s, in, 3, &err), 0);
    ch__sum_close(s);
}

/* 80 segments of one day, each with one user of its own, under a limit of 40 descriptors. */
static void test_a_day_of_more_segments_than_descriptors_is_summarized(void **state)
{
    (void)state;
    enum { NSEG = 80 };
    static char mp[NSEG][700], mn[NSEG][64];
    ch_sum_input in[NSEG];
    for (int k = 0; k < NSEG; k++) {
        ch_seg_builder b;
        ch__segb_init(&b, CH_DS_CLOUDTRAIL, 480000);
        char u[16];
        snprintf(u, sizeof u, "user-%d", k);
        for (int i = 0; i < 10; i++) {
            ch_event ev;
            ch_event_reset(&ev);
            ev.ts_ms = 480000LL * 3600000 + k * 1000 + i;
            ev.dataset = CH_DS_CLOUDTRAIL;
            ev.action = CH_SV("DescribeInstances");
            ev.user_name = (ch_sv){u, (uint32_t)strlen(u)};
            assert_int_equal(ch__segb_add(&b, &ev, (uint64_t)(k * 100 + i + 1)), 0);
        }
        snprintf(mn[k], sizeof mn[k], "cloudtrail-480000-0000000000000003-%08x.seg", k);
        snprintf(mp[k], sizeof mp[k], "%s/%s", dir, mn[k]);
        ch_error err = {0};
        assert_int_equal(ch__segb_write(&b, mp[k], 3, (uint32_t)k, NULL, NULL, &err), 0);
        ch__segb_free(&b);
        in[k] = (ch_sum_input){mn[k], mp[k]};
    }
    struct rlimit old, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = 40;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    char p[700];
    snprintf(p, sizeof p, "%s/day-many.sum", dir);
    ch_error err = {0};
    int rc = ch__sum_write(p, 20000, in, NSEG, NULL, &err);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_int_equal(rc, 0);
    ch_sum *s = NULL;
    assert_int_equal(ch__sum_open(p, &s, &err), 0);
    assert_int_equal(ch__sum_nseg(s), NSEG);
    assert_int_equal(ch__sum_verify(s, in, NSEG, &err), 0);
    ch__sum_close(s);
    for (int k = 0; k < NSEG; k++)
        unlink(mp[k]);
    unlink(p);
}

static void test_merged_summary_equals_a_fresh_build_also_after_removal(void **state)
{
    (void)state;
    char p1[700], p2[700], p3[700];
    snprintf(p1, sizeof p1, "%s/day-1.sum", dir);
    snprintf(p2, sizeof p2, "%s/day-2.sum", dir);
    snprintf(p3, sizeof p3, "%s/day-3.sum", dir);
    ch_error err = {0};
    ch_sum_input in[3];
    const int ab[2] = {0, 1}, abc[3] = {0, 1, 2}, ac[2] = {0, 2};
    inputs(in, ab, 2);
    assert_int_equal(ch__sum_write(p1, 7, in, 2, NULL, &err), 0);
    /* A new segment: merged from the old summary, and fresh. */
    ch_sum *old = NULL;
    assert_int_equal(ch__sum_open(p1, &old, &err), 0);
    inputs(in, abc, 3);
    assert_int_equal(ch__sum_write(p2, 7, in, 3, old, &err), 0);
    ch__sum_close(old);
    assert_int_equal(ch__sum_write(p3, 7, in, 3, NULL, &err), 0);
    size_t n2, n3;
    uint8_t *b2 = slurp(p2, &n2), *b3 = slurp(p3, &n3);
    assert_int_equal(n2, n3);
    assert_memory_equal(b2, b3, n2);
    free(b2);
    free(b3);
    /* Retention removed the middle one. */
    assert_int_equal(ch__sum_open(p2, &old, &err), 0);
    assert_false(
        ch__sum_current(old, (ch_sum_input[]){{names[0], paths[0]}, {names[2], paths[2]}}, 2, 0));
    /* With slack (the newest day of a store): a covered segment that is gone is no reason to
     * rewrite it, an uncovered one is once more than the slack. */
    assert_true(
        ch__sum_current(old, (ch_sum_input[]){{names[0], paths[0]}, {names[2], paths[2]}}, 2, 1));
    assert_true(ch__sum_current(
        old, (ch_sum_input[]){{names[0], paths[0]}, {"x-1-1-1.seg", paths[2]}}, 2, 1));
    assert_false(ch__sum_current(
        old, (ch_sum_input[]){{"y-1-1-1.seg", paths[0]}, {"x-1-1-1.seg", paths[2]}}, 2, 1));
    inputs(in, ac, 2);
    assert_int_equal(ch__sum_write(p1, 7, in, 2, old, &err), 0);
    ch__sum_close(old);
    assert_int_equal(ch__sum_write(p3, 7, in, 2, NULL, &err), 0);
    b2 = slurp(p1, &n2);
    b3 = slurp(p3, &n3);
    assert_int_equal(n2, n3);
    assert_memory_equal(b2, b3, n2);
    free(b2);
    free(b3);
    plan(p1, "user.name == \"carol\"", "00");
    plan(p1, "user.name == \"dave\"", "01");
    /* No segment left: no summary. */
    assert_int_equal(ch__sum_write(p1, 7, in, 0, NULL, &err), 0);
    struct stat st;
    assert_int_not_equal(stat(p1, &st), 0);
}

static void test_damaged_or_wrong_summary_is_refused(void **state)
{
    (void)state;
    char p[700];
    snprintf(p, sizeof p, "%s/day-9.sum", dir);
    ch_error err = {0};
    ch_sum_input in[3];
    const int abc[3] = {0, 1, 2};
    inputs(in, abc, 3);
    assert_int_equal(ch__sum_write(p, 9, in, 3, NULL, &err), 0);
    size_t n;
    uint8_t *b = slurp(p, &n);
    ch_sum *s = NULL;
    /* The header. */
    b[20] ^= 1;
    assert_int_equal(ch__sum_open_mem(b, n, &s, &err), CH_EPARSE);
    assert_non_null(strstr(err.msg, "header checksum"));
    b[20] ^= 1;
    /* The last field's frame: open works, that field and verify do not. */
    b[n - 3] ^= 0x40;
    assert_int_equal(ch__sum_open_mem(b, n, &s, &err), 0);
    const ch_seg_term *t;
    size_t nt;
    assert_int_equal(ch__sum_terms(s, 0, &t, &nt, &err), 0);
    assert_int_equal(ch__sum_terms(s, CH_IX_NFIELDS - 1, &t, &nt, &err), CH_EPARSE);
    assert_int_equal(ch__sum_verify(s, in, 3, &err), CH_EPARSE);
    ch__sum_close(s);
    /* Truncated. */
    assert_int_equal(ch__sum_open_mem(b, 100, &s, &err), CH_EPARSE);
    free(b);
    /* Intact, but the file under a covered name now holds other terms. */
    assert_int_equal(ch__sum_open(p, &s, &err), 0);
    ch_sum_input wrong[3] = {in[0], {names[1], paths[2]}, in[2]};
    assert_int_equal(ch__sum_verify(s, wrong, 3, &err), CH_EPARSE);
    assert_non_null(strstr(err.msg, names[1]));
    ch__sum_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_summary_lists_exactly_the_segments_holding_a_term),
        cmocka_unit_test(test_a_day_of_more_segments_than_descriptors_is_summarized),
        cmocka_unit_test(test_merged_summary_equals_a_fresh_build_also_after_removal),
        cmocka_unit_test(test_damaged_or_wrong_summary_is_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
