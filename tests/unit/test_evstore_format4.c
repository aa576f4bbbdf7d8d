/*
 * test_evstore_format4.c - segment format 4, format 3 whose typed frames hold each block's typed
 * parts column by column and whose original-record frames take the block's columns as prefix:
 * COINHOUND_STORE_FORMAT=4 still writes it (format 5 is the default); events round-trip with
 * every dictionary choice, whichever stream and block is read first; damage to either frame is
 * refused by verify with the frame named, and a search reports the segment and goes on; the
 * columns refuse truncated or altered bytes without overrunning; formats 2, 3 and 4 of the same
 * events answer searches alike, and format 4's typed frames are smaller than format 3's.
 */
#define EVSTORE_TEST_TAG "f4"
#include "evstore_formats.h"

static void test_store_format_4_still_writes_format_4(void **state)
{
    (void)state;
    /* format 5 is the default (test_evstore_format5.c); the benchmarks still choose 4 */
    setenv("COINHOUND_STORE_FORMAT", "4", 1);
    check_written_format(CH_SEG_FORMAT_COLS);
}

/* Record i read back whole, typed alone and original alone, against the event written. */
static void check_record(ch_seg *s, int i, ch_ev_decoded *d, ch_ev_decoded *t, ch_buf *a, ch_buf *b,
                         bool orig_first)
{
    const uint8_t *p, *q;
    size_t n, qn;
    ch_error err = {0};
    ch_event ev;
    char id[32], js[256];
    make_event(&ev, i, id, js, sizeof js);
    json_of(&ev, a);
    if (orig_first) {
        /* the original records before the typed part: the reader finds the block's columns */
        assert_int_equal(ch__seg_orig(s, (uint32_t)i, &q, &qn, &err), 0);
        assert_true(qn > 0);
    }
    assert_int_equal(ch__seg_record(s, (uint32_t)i, &p, &n, &err), 0);
    assert_int_equal(ch__ev_decode(p, n, d), 0);
    json_of(&d->ev, b);
    assert_string_equal(a->data, b->data);
    assert_int_equal(d->rid, (uint64_t)i + 1);
    assert_true(d->ev.raw_json.n == ev.raw_json.n &&
                memcmp(d->ev.raw_json.p, ev.raw_json.p, ev.raw_json.n) == 0);
    assert_int_equal(ch__seg_typed(s, (uint32_t)i, &p, &n, &err), 0);
    assert_int_equal(ch__ev_decode_parts(p, n, NULL, 0, t), 0);
    assert_null(t->ev.raw_json.p);
    assert_true(t->ev.user_name.n == ev.user_name.n && t->ev.ts_ms == ev.ts_ms &&
                t->ev.src_ip.family == 4 && t->rid == (uint64_t)i + 1);
    assert_int_equal(ch__seg_orig(s, (uint32_t)i, &q, &qn, &err), 0);
    assert_int_equal(ch__ev_decode_parts(p, n, q, qn, t), 0);
    json_of(&t->ev, b);
    assert_string_equal(a->data, b->data);
}

static void test_every_dictionary_choice_round_trips_in_any_order(void **state)
{
    (void)state;
    ch_ev_decoded *d = malloc(sizeof *d), *t = malloc(sizeof *t);
    ch_buf a, b;
    ch_buf_init(&a, 1 << 20);
    ch_buf_init(&b, 1 << 20);
    for (uint32_t flags = 0; flags < 4; flags++) {
        write_as(CH_SEG_FORMAT_COLS, flags);
        ch_seg *s = NULL;
        ch_error err = {0};
        assert_int_equal(ch__seg_open(path, &s, &err), 0);
        assert_int_equal(ch__seg_verify(s, &err), 0);
        ch__seg_close(s);
        /* Newest first, as a search reads: later blocks before the dictionary block 0. */
        assert_int_equal(ch__seg_open(path, &s, &err), 0);
        for (int i = NEV - 1; i >= 0; i -= 13)
            check_record(s, i, d, t, &a, &b, false);
        ch__seg_close(s);
        /* An original record first, of a later block and then of block 0, on a fresh open;
         * then oldest first. */
        assert_int_equal(ch__seg_open(path, &s, &err), 0);
        check_record(s, NEV - 2, d, t, &a, &b, true);
        check_record(s, 3, d, t, &a, &b, true);
        check_record(s, CH_SEG_BLOCK_RECORDS + 1, d, t, &a, &b, true);
        for (int i = 0; i < NEV; i += 11)
            check_record(s, i, d, t, &a, &b, i % 2 == 0);
        ch__seg_close(s);
        unlink(path);
    }
    ch_buf_free(&a);
    ch_buf_free(&b);
    free(d);
    free(t);
}

static void test_damaged_typed_frame_is_refused_and_reported(void **state)
{
    (void)state;
    size_t n;
    uint8_t *buf = write_damaged(CH_SEG_FORMAT_COLS, CH_SEG_TYPED_DICT | CH_SEG_ORIG_DICT, 1, 0,
                                 &n); /* inside block 1's typed frame */
    ch_seg *s = NULL;
    ch_error err = {0};
    assert_int_equal(ch__seg_open_mem(buf, n, &s, &err), 0);
    const uint8_t *p;
    size_t len;
    assert_int_equal(ch__seg_typed(s, CH_SEG_BLOCK_RECORDS + 5, &p, &len, &err), CH_EPARSE);
    assert_non_null(strstr(err.msg, "block 1 checksum mismatch"));
    /* Blocks 0 and 2 still read. */
    assert_int_equal(ch__seg_record(s, 5, &p, &len, &err), 0);
    assert_int_equal(ch__seg_record(s, 2 * CH_SEG_BLOCK_RECORDS + 5, &p, &len, &err), 0);
    assert_int_equal(ch__seg_verify(s, &err), CH_EPARSE);
    ch__seg_close(s);
    expect_damaged("event.action == \"RunInstances\"", "block 1 checksum mismatch");
    ch_free(buf);
    unlink(path);
}

static void test_damaged_original_frame_is_refused_when_read(void **state)
{
    (void)state;
    size_t n;
    uint8_t *buf = write_damaged(CH_SEG_FORMAT_COLS, CH_SEG_TYPED_DICT | CH_SEG_ORIG_DICT, 2, 1,
                                 &n); /* inside block 2's original-record frame */
    ch_seg *s = NULL;
    ch_error err = {0};
    assert_int_equal(ch__seg_open_mem(buf, n, &s, &err), 0);
    assert_int_equal(ch__seg_verify(s, &err), CH_EPARSE);
    assert_non_null(strstr(err.msg, "original-record block 2 checksum mismatch"));
    ch__seg_close(s);
    outcome o;
    run("event.action exists", "event.action", true, &o);
    assert_int_equal(o.damaged, 0);
    assert_int_equal(o.matched, NEV);
    assert_string_equal(o.groups, "DescribeInstances=466;RunInstances=234;");
    ch_buf_free(&o.results);
    expect_damaged("event.action == \"RunInstances\"", "original-record block 2");
    ch_free(buf);
    unlink(path);
}

/* A block of typed parts as the writer has it: [u32 length][typed part]... */
static void typed_block(ch_buf *rows, uint32_t cnt)
{
    for (uint32_t i = 0; i < cnt; i++) {
        ch_event ev;
        char id[32], js[256];
        make_event(&ev, (int)i, id, js, sizeof js);
        size_t at = rows->len;
        uint8_t l[4] = {0};
        assert_int_equal(ch_buf_add(rows, l, 4), 0);
        assert_int_equal(ch__ev_encode_typed(&ev, i + 1, rows), 0);
        ch_le_put32((uint8_t *)rows->data + at, (uint32_t)(rows->len - at - 4));
    }
}

static void test_columns_rebuild_the_rows_and_refuse_damage(void **state)
{
    (void)state;
    ch_buf rows, cols;
    ch_buf_init(&rows, 1 << 24);
    ch_buf_init(&cols, 1 << 24);
    typed_block(&rows, 200);
    assert_int_equal(ch__evcols_encode((const uint8_t *)rows.data, rows.len, 200, &cols), 0);
    /* repeated fields cost about a byte a record: the columns are well under the rows */
    assert_true(cols.len * 2 < rows.len);
    uint8_t *out = NULL;
    size_t cap = 0, len = 0;
    ch_evcols_scratch *sc = NULL;
    const uint8_t *c = (const uint8_t *)cols.data;
    assert_int_equal(ch__evcols_decode(c, cols.len, 200, &out, &cap, &len, &sc), 0);
    assert_int_equal(len, rows.len);
    assert_memory_equal(out, rows.data, len);
    /* the wrong record count, every truncation: refused */
    assert_int_equal(ch__evcols_decode(c, cols.len, 199, &out, &cap, &len, &sc), CH_EPARSE);
    for (size_t k = 0; k < cols.len; k++)
        assert_int_equal(ch__evcols_decode(c, k, 200, &out, &cap, &len, &sc), CH_EPARSE);
    /* every single altered byte: refused, or rows of the promised length (never an overrun) */
    uint8_t *m = malloc(cols.len + 1);
    size_t refused = 0;
    for (size_t k = 0; k < cols.len; k++) {
        memcpy(m, c, cols.len);
        m[k] ^= 0x5a;
        int rc = ch__evcols_decode(m, cols.len, 200, &out, &cap, &len, &sc);
        assert_true(rc == 0 || rc == CH_EPARSE);
        refused += rc == CH_EPARSE;
    }
    assert_true(refused > 0);
    /* rows that are not typed parts do not split into columns */
    ch_buf_clear(&cols);
    uint8_t junk[12] = {8, 0, 0, 0, 9, 9, 9, 9, 9, 9, 9, 9};
    assert_int_equal(ch__evcols_encode(junk, sizeof junk, 1, &cols), CH_EPARSE);
    free(m);
    ch_free(out);
    ch__evcols_scratch_free(sc);
    ch_buf_free(&rows);
    ch_buf_free(&cols);
}

/* A lookup's single match of a block takes its row alone (ch__evcols_row): every record's row
 * is the bytes the whole rebuild gives it; a truncated block or the wrong record count is
 * refused, and an altered byte gives CH_EPARSE or a row within the columns' bytes (run under
 * ASan, never an overrun). */
static void test_one_row_alone_is_the_row_of_the_whole_rebuild(void **state)
{
    (void)state;
    ch_buf rows, cols;
    ch_buf_init(&rows, 1 << 24);
    ch_buf_init(&cols, 1 << 24);
    typed_block(&rows, 200);
    assert_int_equal(ch__evcols_encode((const uint8_t *)rows.data, rows.len, 200, &cols), 0);
    const uint8_t *c = (const uint8_t *)cols.data;
    uint8_t *row = NULL;
    size_t cap = 0, len = 0, o = 0;
    for (uint32_t i = 0; i < 200; i++) {
        uint32_t want = ch_le_get32((const uint8_t *)rows.data + o);
        assert_int_equal(ch__evcols_row(c, cols.len, 200, i, &row, &cap, &len), 0);
        assert_int_equal(len, want);
        assert_memory_equal(row, (const uint8_t *)rows.data + o + 4, want);
        o += 4 + want;
    }
    assert_int_equal(ch__evcols_row(c, cols.len, 200, 200, &row, &cap, &len), CH_EPARSE);
    assert_int_equal(ch__evcols_row(c, cols.len, 199, 5, &row, &cap, &len), CH_EPARSE);
    for (size_t k = 0; k < cols.len; k++)
        assert_int_equal(ch__evcols_row(c, k, 200, 150, &row, &cap, &len), CH_EPARSE);
    uint8_t *m = malloc(cols.len);
    for (size_t k = 0; k < cols.len; k++) {
        memcpy(m, c, cols.len);
        m[k] ^= 0x5a;
        int rc = ch__evcols_row(m, cols.len, 200, (uint32_t)(k % 200), &row, &cap, &len);
        assert_true(rc == CH_EPARSE || (rc == 0 && len <= cols.len + 24));
    }
    free(m);
    ch_free(row);
    ch_buf_free(&rows);
    ch_buf_free(&cols);
}

/* The writer makes a block's columns from the item offsets the encoder noted rather than by
 * parsing each row again: those offsets must be exactly where the parser finds the items, for
 * every shape of event (DNS answers, a threat match, GeoIP, flow ports), or the columns would
 * cut the rows wrongly. */
static void test_encoder_offsets_are_where_the_split_finds_the_items(void **state)
{
    (void)state;
    ch_buf rows, a, b;
    ch_buf_init(&rows, 1 << 24);
    ch_buf_init(&a, 1 << 24);
    ch_buf_init(&b, 1 << 24);
    uint32_t(*off)[CH_EV_TYPED_ITEMS + 1] = malloc(8 * sizeof *off);
    assert_non_null(off);
    for (uint32_t i = 0; i < 8; i++) {
        ch_event ev;
        char id[32], js[256];
        make_event(&ev, (int)i, id, js, sizeof js);
        if (i & 1) {
            ev.dns_qname = CH_SV("example.test");
            ev.dns_nanswers = (uint8_t)(i == 7 ? 40 : i); /* more than are kept, once */
            for (unsigned k = 0; k < CH_EVENT_MAX_ANSWERS; k++)
                ev.dns_answers[k] = CH_SV("192.0.2.1");
        }
        if (i & 2) {
            ev.threat.set = "bad-hosts";
            ev.threat.field = "source.ip";
            ch_ip_parse("198.51.100.7", 12, &ev.threat.atomic_ip);
            ev.threat.feed = "feed";
            ev.threat.confidence = (int)i * 10 - 1;
        }
        if (i & 4) {
            ev.src_geo.looked_up = true;
            memcpy(ev.src_geo.country, "DE", 3);
            ev.src_geo.asn = 64500 + i;
            ev.src_geo.as_org = CH_SV("Example AS");
            ev.src_port = 40000 + i;
            ev.dst_port = 443;
            ev.flags |= CH_F_SRC_PORT | CH_F_DST_PORT;
        }
        size_t at = rows.len;
        uint8_t l[4] = {0};
        assert_int_equal(ch_buf_add(&rows, l, 4), 0);
        assert_int_equal(ch__ev_encode_typed_at(&ev, i + 1, &rows, off[i]), 0);
        uint32_t n = (uint32_t)(rows.len - at - 4);
        ch_le_put32((uint8_t *)rows.data + at, n);
        uint32_t split[CH_EV_TYPED_ITEMS + 1];
        assert_int_equal(ch__ev_typed_split((const uint8_t *)rows.data + at + 4, n, split), 0);
        assert_memory_equal(off[i], split, sizeof split);
    }
    /* and the columns made from them are the parser's columns, byte for byte */
    assert_int_equal(ch__evcols_encode((const uint8_t *)rows.data, rows.len, 8, &a), 0);
    assert_int_equal(ch__evcols_encode_at((const uint8_t *)rows.data, rows.len, 8,
                                          (const uint32_t(*)[CH_EV_TYPED_ITEMS + 1]) off, &b),
                     0);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    /* offsets that do not fit the rows are refused, never read past them */
    off[3][5] = off[3][CH_EV_TYPED_ITEMS] + 1;
    ch_buf_clear(&b);
    assert_int_equal(ch__evcols_encode_at((const uint8_t *)rows.data, rows.len, 8,
                                          (const uint32_t(*)[CH_EV_TYPED_ITEMS + 1]) off, &b),
                     CH_EPARSE);
    free(off);
    ch_buf_free(&rows);
    ch_buf_free(&a);
    ch_buf_free(&b);
}

/* Bytes of the typed frames of the segment at path. */
static uint64_t typed_bytes(void)
{
    size_t n;
    uint8_t *buf = slurp(path, &n);
    uint32_t nb = ch_le_get32(buf + 56);
    uint64_t t = 0;
    for (uint32_t k = 0; k < nb; k++)
        t += ch_le_get32(buf + ch_le_get64(buf + 64) + (size_t)k * 48 + 8);
    ch_free(buf);
    return t;
}

static void test_formats_2_3_and_4_search_the_same(void **state)
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
        {"event.id == \"ev-300\" or event.id == \"ev-699\"", NULL, true},
    };
    for (size_t i = 0; i < sizeof q / sizeof *q; i++) {
        outcome o[3];
        static const uint32_t fm[3] = {CH_SEG_FORMAT_DICT, CH_SEG_FORMAT_SPLIT, CH_SEG_FORMAT_COLS};
        for (int f = 0; f < 3; f++) {
            write_as(fm[f], f ? CH_SEG_TYPED_DICT | CH_SEG_ORIG_DICT : 0);
            run(q[i].expr, q[i].count_by, q[i].no_index, &o[f]);
        }
        expect_same_answers(o, 3);
    }
    /* format 4 reads original records only of the blocks whose matches it keeps */
    outcome o;
    run("user.name == \"alice\" and event.id == \"ev-7\"", NULL, true, &o);
    assert_int_equal(o.nres, 1);
    assert_non_null(strstr(o.explain, "(original records: 1 blocks)"));
    ch_buf_free(&o.results);
    run("user.name == \"alice\"", "event.action", true, &o);
    assert_non_null(strstr(o.explain, "(original records: 0 blocks)"));
    ch_buf_free(&o.results);
    uint64_t t4 = typed_bytes();
    write_as(CH_SEG_FORMAT_SPLIT, CH_SEG_TYPED_DICT | CH_SEG_ORIG_DICT);
    uint64_t t3 = typed_bytes();
    assert_true(t4 < t3);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_format_4_still_writes_format_4),
        cmocka_unit_test(test_every_dictionary_choice_round_trips_in_any_order),
        cmocka_unit_test(test_damaged_typed_frame_is_refused_and_reported),
        cmocka_unit_test(test_damaged_original_frame_is_refused_when_read),
        cmocka_unit_test(test_columns_rebuild_the_rows_and_refuse_damage),
        cmocka_unit_test(test_one_row_alone_is_the_row_of_the_whole_rebuild),
        cmocka_unit_test(test_encoder_offsets_are_where_the_split_finds_the_items),
        cmocka_unit_test(test_formats_2_3_and_4_search_the_same),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
