/*
 * test_merge.c - the merge's sorting of inputs that are not nearly sorted (parse/merge.h), for
 * the two defects fuzz_merge found in it (issue 15). The inputs are files under $TMPDIR (or
 * /tmp), removed afterwards.
 *
 * The first defect wrote through a pointer to a dead stack frame: it shows under AddressSanitizer
 * with detect_stack_use_after_return, which this file turns on for itself.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/diag.h"
#include "parse/merge.h"

/* Read by AddressSanitizer at start-up when the test is built with it; unused otherwise. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "detect_stack_use_after_return=1"; }

static char dir[256];

static int setup_dir(void **state)
{
    (void)state;
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/ch_test_merge_XXXXXX", t && *t ? t : "/tmp");
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int remove_dir(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *write_input(const char *name, const char *text)
{
    static char path[4][512];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, 512, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    fclose(f);
    return p;
}

typedef struct got {
    int n;
    int64_t ts[16];
} got;

static got merge_all(const char *path, size_t sort_mem, ch_diag *diag)
{
    got g = {0};
    ch_merge *m = ch_merge_new(diag, NULL, 4);
    assert_non_null(m);
    if (sort_mem)
        ch_merge_set_sort_memory(m, sort_mem);
    assert_int_equal(ch_merge_add(m, path), 0);
    ch_event *ev;
    while (ch_merge_next(m, &ev, NULL) == 1) {
        assert_true(g.n < 16);
        g.ts[g.n++] = ev->ts_ms;
    }
    ch_merge_free(m);
    return g;
}

/* A newest-first CloudTrail file (hours apart: past the merge's slack) is sorted, read back from
 * the sorted copy, and counted once. The copy's stream kept a pointer to a diag on the stack of the
 * function that opened it, and wrote to it on every event after that function had returned. */
static void test_sorted_copy_is_read_back_with_a_diag_that_outlives_its_open(void **state)
{
    (void)state;
    const char *p = write_input(
        "newest_first.jsonl",
        "{\"eventTime\":\"2024-08-02T12:00:00Z\",\"eventName\":\"C\",\"eventSource\":\"ec2\"}\n"
        "{\"eventTime\":\"2024-08-02T11:00:00Z\",\"eventName\":\"B\",\"eventSource\":\"ec2\"}\n"
        "{\"eventTime\":\"2024-08-02T10:00:00Z\",\"eventName\":\"A\",\"eventSource\":\"ec2\"}\n");
    for (size_t mem = 0; mem <= 1; mem++) { /* in memory, then one run per record on disk */
        ch_diag diag;
        ch_diag_init(&diag, NULL);
        got g = merge_all(p, mem, &diag);
        assert_int_equal(g.n, 3);
        assert_true(g.ts[0] < g.ts[1] && g.ts[1] < g.ts[2]);
        assert_int_equal(diag.by_ds[CH_DS_CLOUDTRAIL].events, 3);
        assert_int_equal(diag.by_ds[CH_DS_CLOUDTRAIL].records, 3);
        assert_int_equal(diag.errors_total, 0);
    }
}

/* A flow log that changes its columns mid-file (a second header line) and is not in time
 * order: the sorted copy had one header, the first record's, and every record of the other
 * layout was lost. Each record must come back under its own columns. */
static void test_unsorted_flow_log_with_a_header_change_keeps_every_record(void **state)
{
    (void)state;
    const char *p = write_input("rehead.log",
                                "version srcaddr dstaddr srcport dstport protocol start end "
                                "action log-status\n"
                                "2 10.0.0.1 10.0.0.2 443 50000 6 1722592800 1722592860 ACCEPT OK\n"
                                "srcaddr dstaddr start\n"
                                "10.0.0.3 10.0.0.4 1722589200\n"
                                "10.0.0.5 10.0.0.6 1722585600\n");
    for (size_t mem = 0; mem <= 1; mem++) {
        ch_diag diag;
        ch_diag_init(&diag, NULL);
        got g = merge_all(p, mem, &diag);
        assert_int_equal(g.n, 3);
        assert_int_equal(g.ts[0], 1722585600000LL);
        assert_int_equal(g.ts[1], 1722589200000LL);
        assert_int_equal(g.ts[2], 1722592800000LL);
        assert_int_equal(diag.errors_total, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sorted_copy_is_read_back_with_a_diag_that_outlives_its_open),
        cmocka_unit_test(test_unsorted_flow_log_with_a_header_change_keeps_every_record),
    };
    return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
