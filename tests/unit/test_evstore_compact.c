/*
 * test_evstore_compact.c - compaction's merge of an hour's segments (src/store/compact.c): the
 * merged segment holds every input record once, ordered by user and then time (so that a
 * user's events share blocks); ordered in ranges smaller than the hour it writes the same
 * bytes; COINHOUND_STORE_CLUSTER=off keeps input order; a damaged input stops the merge with
 * an error naming its file, and a merge asked to stop stops.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include <cmocka.h>

#include "core/readfile.h"
#include "store/store_int.h"

#define PER_INPUT 700 /* three blocks each, the last one partly filled */

static const char *const users[] = {"carol", "alice", "bob"};

/* Input k's record i: the inputs interleave in time (k = 0 even seconds, 1 odd), the users
 * take turns, and the rid says where the record came from. */
static void make_event(ch_event *ev, int k, int i, char *idbuf)
{
    ch_event_reset(ev);
    ev->ts_ms = 1717372800000LL + (int64_t)(2 * i + k) * 1000;
    ev->dataset = CH_DS_CLOUDTRAIL;
    ev->outcome = CH_OUTCOME_SUCCESS;
    snprintf(idbuf, 32, "ev-%d-%d", k, i);
    ev->id = (ch_sv){idbuf, (uint32_t)strlen(idbuf)};
    ev->action = i % 2 ? CH_SV("RunInstances") : CH_SV("DescribeInstances");
    const char *u = users[(size_t)(i + k) % 3];
    ev->user_name = (ch_sv){u, (uint32_t)strlen(u)};
}

static uint64_t rid_of(int k, int i) { return ((uint64_t)k << 32) | (uint64_t)(i + 1); }

static void path_of(char *buf, size_t n, const char *what)
{
    snprintf(buf, n, "/tmp/test_evstore_compact_%d_%s.seg", (int)getpid(), what);
}

static void write_input(const char *path, int k)
{
    ch_seg_builder b;
    ch__segb_init_hot(&b, CH_DS_CLOUDTRAIL, 477048);
    for (int i = 0; i < PER_INPUT; i++) {
        ch_event ev;
        char id[32];
        make_event(&ev, k, i, id);
        assert_int_equal(ch__segb_add(&b, &ev, rid_of(k, i)), 0);
    }
    ch_error err = {0};
    assert_int_equal(ch__segb_write(&b, path, (uint64_t)k + 1, 0x40000000u, NULL, NULL, &err), 0);
    ch__segb_free(&b);
}

typedef struct fixture {
    char in[2][96];
    char out[96];
    ZSTD_CCtx *cctx;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    path_of(f->in[0], sizeof f->in[0], "a");
    path_of(f->in[1], sizeof f->in[1], "b");
    path_of(f->out, sizeof f->out, "out");
    write_input(f->in[0], 0);
    write_input(f->in[1], 1);
    f->cctx = ZSTD_createCCtx();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    unlink(f->in[0]);
    unlink(f->in[1]);
    unlink(f->out);
    ZSTD_freeCCtx(f->cctx);
    free(f);
    unsetenv("COINHOUND_STORE_CLUSTER");
    unsetenv("COINHOUND_STORE_CLUSTER_BUDGET");
    return 0;
}

/* Merge both inputs into f->out; the merge's return code (err filled). */
static int merge_to(fixture *f, atomic_bool *stop, ch_error *err)
{
    const char *in[2] = {f->in[0], f->in[1]};
    atomic_bool go = false;
    ch_seg_builder b;
    ch__segb_init(&b, CH_DS_CLOUDTRAIL, 477048);
    int rc = ch__compact_merge(in, 2, &b, f->cctx, stop ? stop : &go, err);
    if (rc == 0)
        rc = ch__segb_write(&b, f->out, 3, 0x80000000u, f->cctx, NULL, err);
    ch__segb_free(&b);
    return rc;
}

static void merge_ok(fixture *f)
{
    ch_error err = {0};
    assert_int_equal(merge_to(f, NULL, &err), 0);
}

static void test_merged_records_are_ordered_by_user_then_time(void **state)
{
    fixture *f = *state;
    merge_ok(f);
    ch_error err = {0};
    ch_seg *s = NULL;
    assert_int_equal(ch__seg_open(f->out, &s, &err), 0);
    assert_int_equal(ch__seg_meta(s)->nrec, 2 * PER_INPUT);
    ch_ev_decoded *d = malloc(sizeof *d);
    char last_user[16] = "";
    int64_t last_ts = INT64_MIN;
    int seen[2][PER_INPUT] = {{0}};
    uint32_t firsts[3] = {0}; /* each user's first ordinal */
    int nusers = 0;
    for (uint32_t o = 0; o < 2 * PER_INPUT; o++) {
        assert_int_equal(ch__seg_decode(s, o, d, NULL, &err), 0);
        char u[16];
        snprintf(u, sizeof u, "%.*s", (int)d->ev.user_name.n, d->ev.user_name.p);
        int c = strcmp(u, last_user);
        assert_true(c >= 0); /* users in order */
        if (c > 0) {
            firsts[nusers++] = o;
            last_ts = INT64_MIN;
            snprintf(last_user, sizeof last_user, "%s", u);
        }
        assert_true(d->ev.ts_ms >= last_ts); /* then time */
        last_ts = d->ev.ts_ms;
        int k = (int)(d->rid >> 32), i = (int)(d->rid & 0xffffffffu) - 1;
        assert_true(k == 0 || k == 1);
        assert_true(i >= 0 && i < PER_INPUT);
        seen[k][i]++;
        /* the record is the one written with that rid */
        ch_event want;
        char id[32];
        make_event(&want, k, i, id);
        assert_int_equal(d->ev.ts_ms, want.ts_ms);
        assert_int_equal(d->ev.id.n, want.id.n);
        assert_memory_equal(d->ev.id.p, want.id.p, want.id.n);
    }
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < PER_INPUT; i++)
            assert_int_equal(seen[k][i], 1);
    assert_int_equal(nusers, 3);
    assert_int_equal(firsts[0], 0);
    assert_int_equal(strcmp(last_user, "carol"), 0);
    free(d);
    ch__seg_close(s);
}

static void test_ranges_smaller_than_the_hour_write_the_same_bytes(void **state)
{
    fixture *f = *state;
    merge_ok(f);
    ch_error err = {0};
    char *one = NULL, *ranged = NULL;
    size_t none = 0, nranged = 0;
    assert_int_equal(ch_read_file(f->out, (size_t)64 << 20, &one, &none, &err), 0);
    setenv("COINHOUND_STORE_CLUSTER_BUDGET", "20000", 1); /* the records are 160 KB: 8 ranges */
    merge_ok(f);
    unsetenv("COINHOUND_STORE_CLUSTER_BUDGET");
    assert_int_equal(ch_read_file(f->out, (size_t)64 << 20, &ranged, &nranged, &err), 0);
    assert_int_equal(none, nranged);
    assert_memory_equal(one, ranged, none);
    free(one);
    free(ranged);
}

static void test_cluster_off_keeps_input_order(void **state)
{
    fixture *f = *state;
    setenv("COINHOUND_STORE_CLUSTER", "off", 1);
    merge_ok(f);
    unsetenv("COINHOUND_STORE_CLUSTER");
    ch_error err = {0};
    ch_seg *s = NULL;
    assert_int_equal(ch__seg_open(f->out, &s, &err), 0);
    ch_ev_decoded *d = malloc(sizeof *d);
    for (uint32_t o = 0; o < 2 * PER_INPUT; o++) {
        assert_int_equal(ch__seg_decode(s, o, d, NULL, &err), 0);
        int k = o < PER_INPUT ? 0 : 1, i = (int)(o % PER_INPUT);
        assert_int_equal(d->rid, rid_of(k, i));
    }
    free(d);
    ch__seg_close(s);
}

/* Flip one byte of input b's second block: the merge fails naming b, in either order. */
static void test_a_damaged_input_is_named(void **state)
{
    fixture *f = *state;
    char *buf = NULL;
    size_t n = 0;
    ch_error err = {0};
    assert_int_equal(ch_read_file(f->in[1], (size_t)64 << 20, &buf, &n, &err), 0);
    ch_seg *s = NULL;
    assert_int_equal(ch__seg_open(f->in[1], &s, &err), 0);
    ch__seg_close(s);
    assert_true(n > 4096);
    buf[n / 3] ^= 0x5a;
    FILE *fp = fopen(f->in[1], "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(buf, 1, n, fp), n);
    fclose(fp);
    free(buf);
    for (int off = 0; off < 2; off++) {
        if (off)
            setenv("COINHOUND_STORE_CLUSTER", "off", 1);
        ch_error e = {0};
        assert_int_equal(merge_to(f, NULL, &e), CH_EPARSE);
        assert_non_null(strstr(e.msg, f->in[1]));
        unsetenv("COINHOUND_STORE_CLUSTER");
    }
}

static void test_a_merge_asked_to_stop_stops(void **state)
{
    fixture *f = *state;
    atomic_bool stop = true;
    for (int off = 0; off < 2; off++) {
        if (off)
            setenv("COINHOUND_STORE_CLUSTER", "off", 1);
        ch_error e = {0};
        assert_int_equal(merge_to(f, &stop, &e), CH_ERR);
        assert_non_null(strstr(e.msg, "closing"));
        unsetenv("COINHOUND_STORE_CLUSTER");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_merged_records_are_ordered_by_user_then_time, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ranges_smaller_than_the_hour_write_the_same_bytes,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_cluster_off_keeps_input_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_damaged_input_is_named, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_merge_asked_to_stop_stops, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
