/*
 * test_evstore_format5.c - segment format 5, format 4 whose index area starts with a table of
 * its field frames, each with its own CRC32C: new segments are written in it; events and terms
 * round-trip from the file (read with pread, also after the file is released) and from memory
 * alike; a lookup reads and checks only the frames of the fields it uses, so a damaged frame of
 * one field is found when that field is read, named by `verify`, and a search that needs it
 * reports it and still answers (the segment's records are evaluated instead); a damaged field
 * table is refused at open; formats 4 and 5 answer searches alike.
 */
#define EVSTORE_TEST_TAG "f5"
#include "evstore_formats.h"
#include "ingest/crc32c.h"

static void test_format_5_is_written_on_request(void **state)
{
    (void)state;
    setenv("COINHOUND_STORE_FORMAT", "5", 1);
    check_written_format(CH_SEG_FORMAT_FIELDS);
}

/* The ordinals of term `want` of field f in s, as text "o1,o2,...". */
static void postings_of(ch_seg *s, int f, const char *want, char *out, size_t cap)
{
    const ch_seg_term *t;
    size_t nt;
    ch_error err = {0};
    assert_int_equal(ch__seg_terms(s, f, &t, &nt, &err), 0);
    out[0] = '\0';
    for (size_t i = 0; i < nt; i++) {
        if (t[i].term.n != strlen(want) || memcmp(t[i].term.p, want, t[i].term.n) != 0)
            continue;
        uint32_t *o = malloc((t[i].npost + 1) * sizeof *o);
        assert_int_equal(ch__seg_postings(&t[i], o, NEV), 0);
        size_t k = 0;
        for (uint32_t j = 0; j < t[i].npost && k + 12 < cap; j++)
            k += (size_t)snprintf(out + k, cap - k, "%u,", o[j]);
        free(o);
    }
}

static void test_file_and_memory_read_the_same(void **state)
{
    (void)state;
    ch_buf a, b;
    ch_buf_init(&a, 1 << 20);
    ch_buf_init(&b, 1 << 20);
    ch_ev_decoded *d = malloc(sizeof *d);
    for (uint32_t flags = 0; flags < 4; flags++) {
        write_as(CH_SEG_FORMAT_FIELDS, flags);
        size_t n;
        uint8_t *buf = slurp(path, &n);
        ch_seg *sf = NULL, *sm = NULL;
        ch_error err = {0};
        assert_int_equal(ch__seg_open(path, &sf, &err), 0);
        assert_int_equal(ch__seg_open_mem(buf, n, &sm, &err), 0);
        assert_int_equal(ch__seg_verify(sf, &err), 0);
        ch__seg_close(sf);
        assert_int_equal(ch__seg_open(path, &sf, &err), 0);
        /* a released segment opens its file again when read (a day summary's rebuild holds
         * many segments without a descriptor each) */
        ch__seg_release(sf);
        /* newest first, as a search reads; every record as written */
        for (int i = NEV - 1; i >= 0; i -= 7) {
            ch_event ev;
            char id[32], js[256];
            make_event(&ev, i, id, js, sizeof js);
            json_of(&ev, &a);
            const uint8_t *p;
            size_t len;
            assert_int_equal(ch__seg_record(sf, (uint32_t)i, &p, &len, &err), 0);
            assert_int_equal(ch__ev_decode(p, len, d), 0);
            json_of(&d->ev, &b);
            assert_string_equal(a.data, b.data);
            assert_int_equal(ch__seg_record(sm, (uint32_t)i, &p, &len, &err), 0);
            assert_int_equal(ch__ev_decode(p, len, d), 0);
            json_of(&d->ev, &b);
            assert_string_equal(a.data, b.data);
        }
        /* alice is every 100th event from the 7th */
        char pf[256], pm[256];
        postings_of(sf, ch__ix_field("user.name"), "alice", pf, sizeof pf);
        postings_of(sm, ch__ix_field("user.name"), "alice", pm, sizeof pm);
        assert_string_equal(pf, "7,107,207,307,407,507,607,");
        assert_string_equal(pf, pm);
        ch__seg_close(sf);
        ch__seg_close(sm);
        ch_free(buf);
        unlink(path);
    }
    free(d);
    ch_buf_free(&a);
    ch_buf_free(&b);
}

static void test_damaged_field_frame_is_found_when_read_and_searched_around(void **state)
{
    (void)state;
    int fu = ch__ix_field("user.name"), fa = ch__ix_field("event.action");
    /* the reference answers: the undamaged segment, scanned */
    write_as(CH_SEG_FORMAT_FIELDS, CH_SEG_TYPED_DICT | CH_SEG_ORIG_DICT);
    outcome ref, refc;
    run("user.name == \"alice\"", NULL, true, &ref);
    run("user.name == \"alice\"", "event.action", true, &refc);
    assert_int_equal(ref.matched, 7);
    assert_string_equal(refc.groups, "DescribeInstances=5;RunInstances=2;");
    size_t n, m;
    uint8_t *clean = slurp(path, &m);
    uint8_t *buf = flip_on_disk(ix_frame_off(clean, fu) + 6, &n);
    ch_free(clean);
    ch_seg *s = NULL;
    ch_error err = {0};
    /* open checks the header, block table and field table, not the frames */
    assert_int_equal(ch__seg_open(path, &s, &err), 0);
    const ch_seg_term *t;
    size_t nt;
    assert_int_equal(ch__seg_terms(s, fa, &t, &nt, &err), 0);
    assert_int_equal(nt, 2);
    assert_int_equal(ch__seg_terms(s, fu, &t, &nt, &err), CH_EPARSE);
    assert_non_null(strstr(err.msg, "index field user.name checksum mismatch"));
    ch__seg_close(s);
    assert_int_equal(ch__seg_open_mem(buf, n, &s, &err), 0);
    assert_int_equal(ch__seg_verify(s, &err), CH_EPARSE);
    assert_non_null(strstr(err.msg, "user.name"));
    ch__seg_close(s);
    /* the lookup reports the frame and answers as the scan does */
    outcome o;
    run("user.name == \"alice\"", NULL, false, &o);
    assert_int_equal(o.matched, ref.matched);
    assert_string_equal(o.results.data, ref.results.data);
    assert_int_equal(o.damaged, 0);
    assert_non_null(strstr(o.damaged_text, "index field user.name checksum mismatch"));
    assert_non_null(strstr(o.damaged_text, "evaluated instead"));
    ch_buf_free(&o.results);
    /* a lookup on another field neither reads nor reports it */
    run("event.action == \"RunInstances\"", NULL, false, &o);
    assert_int_equal(o.matched, 234);
    assert_string_equal(o.damaged_text, "");
    ch_buf_free(&o.results);
    ch_free(buf);
    /* a count from the index whose grouping field's frame is damaged: counted from the records */
    write_as(CH_SEG_FORMAT_FIELDS, CH_SEG_TYPED_DICT | CH_SEG_ORIG_DICT);
    clean = slurp(path, &m);
    buf = flip_on_disk(ix_frame_off(clean, fa) + 6, &n);
    ch_free(clean);
    run("user.name == \"alice\"", "event.action", false, &o);
    assert_string_equal(o.groups, refc.groups);
    assert_int_equal(o.matched, 7);
    assert_non_null(strstr(o.damaged_text, "index field event.action checksum mismatch"));
    ch_buf_free(&o.results);
    ch_buf_free(&ref.results);
    ch_buf_free(&refc.results);
    ch_free(buf);
    unlink(path);
}

static void test_damaged_field_table_is_refused_at_open(void **state)
{
    (void)state;
    write_as(CH_SEG_FORMAT_FIELDS, CH_SEG_TYPED_DICT | CH_SEG_ORIG_DICT);
    size_t n, m;
    uint8_t *clean = slurp(path, &m);
    uint8_t *buf = flip_on_disk(ch_le_get64(clean + 72) + 13, &n); /* field 1's size */
    ch_free(clean);
    ch_seg *s = NULL;
    ch_error err = {0};
    assert_int_equal(ch__seg_open(path, &s, &err), CH_EPARSE);
    assert_non_null(strstr(err.msg, "index field table checksum mismatch"));
    assert_int_equal(ch__seg_open_mem(buf, n, &s, &err), CH_EPARSE);
    /* a table that does not add up to the area is refused even with a matching checksum */
    uint64_t ix = ch_le_get64(buf + 72);
    buf[ix + 13] ^= 0x40; /* undo */
    ch_le_put32(buf + ix, ch_le_get32(buf + ix) + 1);
    ch_le_put32(buf + 88, ch_crc32c(0, buf + ix, CH_IX_NFIELDS * 12));
    ch_le_put32(buf + 124, ch_crc32c(0, buf, 124));
    assert_int_equal(ch__seg_open_mem(buf, n, &s, &err), CH_EPARSE);
    assert_non_null(strstr(err.msg, "does not fit the index area"));
    ch_free(buf);
    unlink(path);
}

static void test_damaged_block_frame_read_from_the_file_is_refused(void **state)
{
    (void)state;
    size_t n;
    uint8_t *buf = write_damaged(CH_SEG_FORMAT_FIELDS, CH_SEG_TYPED_DICT | CH_SEG_ORIG_DICT, 1, 1,
                                 &n); /* inside block 1's original-record frame */
    ch_seg *s = NULL;
    ch_error err = {0};
    assert_int_equal(ch__seg_open(path, &s, &err), 0);
    const uint8_t *p;
    size_t len;
    assert_int_equal(ch__seg_typed(s, CH_SEG_BLOCK_RECORDS + 5, &p, &len, &err), 0);
    assert_int_equal(ch__seg_orig(s, CH_SEG_BLOCK_RECORDS + 5, &p, &len, &err), CH_EPARSE);
    assert_non_null(strstr(err.msg, "original-record block 1 checksum mismatch"));
    assert_int_equal(ch__seg_record(s, 2 * CH_SEG_BLOCK_RECORDS + 5, &p, &len, &err), 0);
    ch__seg_close(s);
    expect_damaged("event.action exists", "original-record block 1 checksum mismatch");
    ch_free(buf);
    unlink(path);
}

static void test_formats_4_and_5_search_the_same(void **state)
{
    (void)state;
    static const struct {
        const char *expr, *count_by;
        bool no_index;
    } q[] = {
        {"user.name == \"alice\"", NULL, false},
        {"user.name == \"alice\"", "event.action", false},
        {"event.action == \"RunInstances\" and source.ip in 198.51.0.0/16", NULL, false},
        {"requestParameters.instanceType == \"p3.16xlarge\"", NULL, true},
        {"event.action exists", "event.outcome", true},
    };
    for (size_t i = 0; i < sizeof q / sizeof *q; i++) {
        outcome o[2];
        static const uint32_t fm[2] = {CH_SEG_FORMAT_COLS, CH_SEG_FORMAT_FIELDS};
        for (int f = 0; f < 2; f++) {
            write_as(fm[f], CH_SEG_TYPED_DICT | CH_SEG_ORIG_DICT);
            run(q[i].expr, q[i].count_by, q[i].no_index, &o[f]);
        }
        expect_same_answers(o, 2);
    }
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_5_is_written_on_request),
        cmocka_unit_test(test_file_and_memory_read_the_same),
        cmocka_unit_test(test_damaged_field_frame_is_found_when_read_and_searched_around),
        cmocka_unit_test(test_damaged_field_table_is_refused_at_open),
        cmocka_unit_test(test_damaged_block_frame_read_from_the_file_is_refused),
        cmocka_unit_test(test_formats_4_and_5_search_the_same),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
