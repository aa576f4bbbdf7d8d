/*
 * test_evstore_hot.c - hot segments (ch__segb_init_hot), which `analyze` and `serve` seal on the
 * ingest path and compaction rewrites cold: one is a format 3 segment without block-0
 * dictionaries that every reader accepts, verifies like a cold one, returns every event as
 * written, and answers every search (indexed lookups, counts from the index, scans of the
 * original records) exactly as the cold format 6 segment of the same events does; a damaged
 * hot segment is refused with the stream named.
 */
#define EVSTORE_TEST_TAG "hot"
#include "evstore_formats.h"

/* The NEV events as a hot segment at path. */
static void write_hot(void)
{
    ch_seg_builder b;
    ch__segb_init_hot(&b, CH_DS_CLOUDTRAIL, 477048);
    write_events(&b, 0x40000000u);
}

static void test_hot_segment_is_format_3_without_dictionaries_and_reads_back(void **state)
{
    (void)state;
    write_hot();
    size_t n;
    uint8_t *buf = slurp(path, &n);
    assert_int_equal(ch_le_get32(buf + 8), CH_SEG_FORMAT_SPLIT); /* an older, readable format */
    assert_int_equal(ch_le_get32(buf + 92), 0);                  /* no block-0 dictionary */
    ch_free(buf);
    ch_seg *s = NULL;
    ch_error err = {0};
    assert_int_equal(ch__seg_open(path, &s, &err), 0);
    assert_int_equal(ch__seg_verify(s, &err), 0);
    assert_int_equal(ch__seg_meta(s)->nrec, NEV);
    ch_ev_decoded *d = malloc(sizeof *d);
    ch_buf a, b;
    ch_buf_init(&a, 1 << 20);
    ch_buf_init(&b, 1 << 20);
    for (int i = NEV - 1; i >= 0; i -= 7) {
        assert_int_equal(ch__seg_decode(s, (uint32_t)i, d, NULL, &err), 0);
        ch_event ev;
        char id[32], js[256];
        make_event(&ev, i, id, js, sizeof js);
        json_of(&ev, &a);
        json_of(&d->ev, &b);
        assert_string_equal(a.data, b.data);
        assert_true(d->ev.raw_json.n == ev.raw_json.n &&
                    memcmp(d->ev.raw_json.p, ev.raw_json.p, ev.raw_json.n) == 0);
    }
    /* The index is kept: alice's postings are exactly her records. */
    const ch_seg_term *t;
    size_t nt;
    assert_int_equal(ch__seg_terms(s, ch__ix_field("user.name"), &t, &nt, &err), 0);
    assert_int_equal(nt, 2);
    assert_true(t[0].term.n == 5 && memcmp(t[0].term.p, "alice", 5) == 0);
    assert_int_equal(t[0].npost, NEV / 100);
    ch_buf_free(&a);
    ch_buf_free(&b);
    free(d);
    ch__seg_close(s);
    unlink(path);
}

static void test_hot_and_cold_segments_answer_every_search_alike(void **state)
{
    (void)state;
    static const struct {
        const char *expr, *count_by;
        bool no_index;
    } q[] = {
        {"user.name == \"alice\"", NULL, false},
        {"user.name == \"alice\"", NULL, true},
        {"user.name == \"alice\"", "event.action", false},
        {"user.name == \"alice\" or event.action == \"RunInstances\"", "user.name,event.action",
         false},
        {"event.action == \"RunInstances\" and source.ip in 198.51.0.0/16", NULL, false},
        {"user.name =~ \"ALICE\"", "event.action", false},
        {"requestParameters.instanceType == \"p3.16xlarge\"", NULL, true},
        {"event.outcome == \"failure\"", "user.name", true},
    };
    for (size_t i = 0; i < sizeof q / sizeof *q; i++) {
        outcome o[2];
        write_as(CH_SEG_FORMAT_CHUNKS, CH_SEG_TYPED_DICT | CH_SEG_ORIG_DICT); /* cold */
        run(q[i].expr, q[i].count_by, q[i].no_index, &o[0]);
        write_hot();
        run(q[i].expr, q[i].count_by, q[i].no_index, &o[1]);
        /* An indexed lookup of the hot segment reads the blocks its postings name, not all. */
        if (!q[i].no_index && q[i].count_by == NULL && strstr(q[i].expr, "alice"))
            assert_non_null(strstr(o[1].explain, "index"));
        expect_same_answers(o, 2);
    }
    unlink(path);
}

static void test_damaged_hot_segment_is_refused_with_the_stream_named(void **state)
{
    (void)state;
    write_hot();
    size_t m, n;
    uint8_t *buf = slurp(path, &m);
    uint64_t off = frame_off(buf, 1, 1) + 9; /* inside block 1's original-record frame */
    ch_free(buf);
    buf = flip_on_disk(off, &n);
    ch_seg *s = NULL;
    ch_error err = {0};
    assert_int_equal(ch__seg_open_mem(buf, n, &s, &err), 0);
    assert_int_equal(ch__seg_verify(s, &err), CH_EPARSE);
    assert_non_null(strstr(err.msg, "original-record block 1"));
    ch__seg_close(s);
    ch_free(buf);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hot_segment_is_format_3_without_dictionaries_and_reads_back),
        cmocka_unit_test(test_hot_and_cold_segments_answer_every_search_alike),
        cmocka_unit_test(test_damaged_hot_segment_is_refused_with_the_stream_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
