/*
 * test_evstore_format3.c - segment format 3, where each block is two compressed streams (the
 * records' typed parts and their original records): events round-trip with every dictionary
 * choice; a record's typed part alone decodes to the same normalized fields; damage to either
 * stream is refused by verify with the stream named, and a search reports the segment as
 * damaged only when it reads the damaged stream; a format 2 segment of the same events reads
 * and searches the same; and a search whose expression reads only normalized fields gives the
 * same results while inflating the original records only of the blocks it keeps matches from.
 */
#define EVSTORE_TEST_TAG "f3"
#include "evstore_formats.h"

static void test_every_dictionary_choice_round_trips_both_parts(void **state)
{
    (void)state;
    ch_ev_decoded *d = malloc(sizeof *d), *t = malloc(sizeof *t);
    ch_buf a, b;
    ch_buf_init(&a, 1 << 20);
    ch_buf_init(&b, 1 << 20);
    for (uint32_t flags = 0; flags < 4; flags++) {
        write_as(CH_SEG_FORMAT_SPLIT, flags);
        ch_seg *s = NULL;
        ch_error err = {0};
        assert_int_equal(ch__seg_open(path, &s, &err), 0);
        assert_int_equal(ch__seg_format(s), CH_SEG_FORMAT_SPLIT);
        assert_int_equal(ch__seg_verify(s, &err), 0);
        /* Newest first, as a search reads: later blocks before the dictionary block 0. */
        for (int i = NEV - 1; i >= 0; i -= 13) {
            const uint8_t *p, *q;
            size_t n, qn;
            assert_int_equal(ch__seg_record(s, (uint32_t)i, &p, &n, &err), 0);
            assert_int_equal(ch__ev_decode(p, n, d), 0);
            ch_event ev;
            char id[32], js[256];
            make_event(&ev, i, id, js, sizeof js);
            json_of(&ev, &a);
            json_of(&d->ev, &b);
            assert_string_equal(a.data, b.data);
            assert_int_equal(d->rid, (uint64_t)i + 1);
            assert_true(d->ev.raw_json.n == ev.raw_json.n &&
                        memcmp(d->ev.raw_json.p, ev.raw_json.p, ev.raw_json.n) == 0);
            /* The typed part alone: the same normalized fields, no original record. */
            assert_int_equal(ch__seg_typed(s, (uint32_t)i, &p, &n, &err), 0);
            assert_int_equal(ch__ev_decode_parts(p, n, NULL, 0, t), 0);
            assert_null(t->ev.raw_json.p);
            assert_true(t->ev.user_name.n == ev.user_name.n && t->ev.ts_ms == ev.ts_ms &&
                        t->ev.src_ip.family == 4 && t->rid == (uint64_t)i + 1);
            assert_int_equal(ch__seg_orig(s, (uint32_t)i, &q, &qn, &err), 0);
            assert_int_equal(ch__ev_decode_parts(p, n, q, qn, t), 0);
            json_of(&t->ev, &b);
            assert_string_equal(a.data, b.data);
        }
        ch__seg_close(s);
        unlink(path);
    }
    ch_buf_free(&a);
    ch_buf_free(&b);
    free(d);
    free(t);
}

static void test_damaged_typed_stream_is_refused_and_reported(void **state)
{
    (void)state;
    size_t n;
    uint8_t *buf = write_damaged(CH_SEG_FORMAT_SPLIT, CH_SEG_ORIG_DICT, 1, 0,
                                 &n); /* inside block 1's typed frame */
    ch_seg *s = NULL;
    ch_error err = {0};
    assert_int_equal(ch__seg_open_mem(buf, n, &s, &err), 0);
    const uint8_t *p;
    size_t len;
    assert_int_equal(ch__seg_typed(s, CH_SEG_BLOCK_RECORDS + 5, &p, &len, &err), CH_EPARSE);
    assert_non_null(strstr(err.msg, "block 1 checksum mismatch"));
    /* The other stream of the same block is intact. */
    assert_int_equal(ch__seg_orig(s, CH_SEG_BLOCK_RECORDS + 5, &p, &len, &err), 0);
    assert_int_equal(ch__seg_verify(s, &err), CH_EPARSE);
    ch__seg_close(s);
    /* Every search reads the typed stream: the segment is reported and skipped, no crash. */
    expect_damaged("event.action == \"RunInstances\"", "block 1 checksum mismatch");
    ch_free(buf);
    unlink(path);
}

static void test_damaged_original_stream_is_refused_when_read(void **state)
{
    (void)state;
    size_t n;
    uint8_t *buf = write_damaged(CH_SEG_FORMAT_SPLIT, CH_SEG_ORIG_DICT, 2, 1,
                                 &n); /* inside block 2's original-record frame */
    ch_seg *s = NULL;
    ch_error err = {0};
    assert_int_equal(ch__seg_open_mem(buf, n, &s, &err), 0);
    assert_int_equal(ch__seg_verify(s, &err), CH_EPARSE);
    assert_non_null(strstr(err.msg, "original-record block 2 checksum mismatch"));
    ch__seg_close(s);
    /* A count over normalized fields never reads the original records: full, undamaged. */
    outcome o;
    run("event.action exists", "event.action", true, &o);
    assert_int_equal(o.damaged, 0);
    assert_int_equal(o.matched, NEV);
    assert_string_equal(o.groups, "DescribeInstances=466;RunInstances=234;");
    ch_buf_free(&o.results);
    /* Printing matches of block 2 needs their original records: reported and skipped. */
    expect_damaged("event.action == \"RunInstances\"", "original-record block 2");
    /* So does a raw path. */
    expect_damaged("requestParameters.instanceType == \"p3.16xlarge\"", NULL);
    ch_free(buf);
    unlink(path);
}

/* The same searches over the same events in format 2 (whole records) and format 3 (typed parts
 * apart): the same matches, results and counts; format 3 reads the original records only of
 * the blocks whose matches are kept. */
static void test_format_2_and_3_search_the_same(void **state)
{
    (void)state;
    static const struct {
        const char *expr, *count_by;
        bool no_index;
    } q[] = {
        {"user.name == \"alice\"", NULL, false},
        {"user.name == \"alice\"", NULL, true},
        {"event.action == \"RunInstances\" and source.ip in 198.51.0.0/16", NULL, true},
        {"requestParameters.instanceType == \"p3.16xlarge\"", NULL, true},
        {"user_agent.original exists or event.outcome == \"failure\"", "event.outcome", true},
        {"event.action exists", "requestParameters.instanceType", true},
    };
    for (size_t i = 0; i < sizeof q / sizeof *q; i++) {
        outcome o[2];
        write_as(CH_SEG_FORMAT_DICT, 0);
        run(q[i].expr, q[i].count_by, q[i].no_index, &o[0]);
        write_as(CH_SEG_FORMAT_SPLIT, CH_SEG_ORIG_DICT);
        run(q[i].expr, q[i].count_by, q[i].no_index, &o[1]);
        expect_same_answers(o, 2);
    }
    /* alice's 7 events lie in blocks 0, 1 and 2: three original-record blocks of three. */
    outcome o;
    run("user.name == \"alice\"", NULL, true, &o);
    assert_non_null(strstr(o.explain, "3 of 3 blocks read (original records: 3 blocks)"));
    ch_buf_free(&o.results);
    /* A match only in block 0 (event 7, limit by time): one original-record block. */
    run("user.name == \"alice\" and event.id == \"ev-7\"", NULL, true, &o);
    assert_int_equal(o.nres, 1);
    assert_non_null(strstr(o.explain, "(original records: 1 blocks)"));
    ch_buf_free(&o.results);
    /* A count reads none. */
    run("user.name == \"alice\"", "event.action", true, &o);
    assert_non_null(strstr(o.explain, "(original records: 0 blocks)"));
    ch_buf_free(&o.results);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_dictionary_choice_round_trips_both_parts),
        cmocka_unit_test(test_damaged_typed_stream_is_refused_and_reported),
        cmocka_unit_test(test_damaged_original_stream_is_refused_when_read),
        cmocka_unit_test(test_format_2_and_3_search_the_same),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
