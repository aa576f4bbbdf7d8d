/*
 * test_evstore_format6.c - segment format 6, format 5 whose field frames are cut into a
 * directory, a term dictionary, posting chunks by term range and a record -> term column in
 * chunks: new segments are written in it (COINHOUND_STORE_FORMAT=5 still writes 5); the
 * dictionary with one chunk's postings gives what the whole field gives, and the column gives
 * every record's term; a damaged chunk is found only by a search that reads it, which reports it
 * and answers as the scan does (a lookup whose term lies in another chunk reads nothing
 * damaged), and `verify` names it; a count from the index reads the grouping field's column and
 * falls back to the records when a column chunk is damaged; formats 5 and 6 answer alike.
 */
#define EVSTORE_TEST_TAG "f6"
#include "evstore_formats.h"
#include "ingest/crc32c.h"

#define NUSERS 500
#define NMANY 6000 /* 24 blocks, 6 column chunks, several posting chunks of user.name */

static void test_new_segments_are_written_in_format_6(void **state)
{
    (void)state;
    unsetenv("COINHOUND_STORE_FORMAT");
    check_written_format(CH_SEG_FORMAT_CHUNKS);
}

/* A segment of NMANY events in `format` whose users are u0 .. u499 (event i: u(i % 500)), so
 * that user.name's postings fill several chunks, and whose source address is 10.0.0.1 but for
 * every 50th event (four addresses of 30 events each after it in the dictionary: a frequent
 * term before the first chunk's). */
static void write_many(uint32_t format)
{
    snprintf(path, sizeof path, "/tmp/test_evstore_%s_%d.seg", EVSTORE_TEST_TAG, (int)getpid());
    ch_seg_builder b;
    ch__segb_init(&b, CH_DS_CLOUDTRAIL, 477048);
    b.format = format;
    for (int i = 0; i < NMANY; i++) {
        ch_event ev;
        char id[32], json[256], user[16], ip[32];
        make_event(&ev, i, id, json, sizeof json);
        snprintf(user, sizeof user, "u%d", i % NUSERS);
        ev.user_name = (ch_sv){user, (uint32_t)strlen(user)};
        snprintf(ip, sizeof ip, i % 50 ? "10.0.0.1" : "198.51.100.%d", i % 200);
        ch_ip_parse(ip, strlen(ip), &ev.src_ip);
        assert_int_equal(ch__segb_add(&b, &ev, (uint64_t)i + 1), 0);
    }
    ch_error err = {0};
    assert_int_equal(ch__segb_write(&b, path, 5, 0, NULL, NULL, &err), 0);
    ch__segb_free(&b);
}

/* Format 6's layout, read from the file for the damage tests: field f's region, its directory
 * entries. part: 0 the directory, 1 the dictionary, 2 + c posting chunk c, -1 - c column chunk
 * c. */
static uint64_t part_off(const uint8_t *buf, int f, int part)
{
    uint64_t ix = ch_le_get64(buf + 72), off = ix + CH_IX_NFIELDS * 12;
    for (int i = 0; i < f; i++)
        off += ch_le_get32(buf + ix + (size_t)i * 12);
    if (part == 0)
        return off;
    const uint8_t *d = buf + off;
    uint32_t np = ch_le_get32(d + 4);
    uint64_t o = off + ch_le_get32(buf + ix + (size_t)f * 12 + 4); /* the dictionary */
    if (part == 1)
        return o;
    o += ch_le_get32(d + 16);
    int c = part >= 2 ? part - 2 : (int)np + (-1 - part);
    for (int k = 0; k < c; k++)
        o += k < (int)np ? ch_le_get32(d + 28 + (size_t)k * 16 + 4)
                         : ch_le_get32(d + 28 + (size_t)np * 16 + (size_t)(k - (int)np) * 8);
    return o;
}

/* The posting chunk of field f that holds term `want` (by the directory's first terms and the
 * dictionary read through the reader). */
static int chunk_of(const uint8_t *buf, ch_seg *s, int f, const char *want)
{
    const ch_seg_term *t;
    size_t nt;
    ch_error err = {0};
    assert_int_equal(ch__seg_dict(s, f, &t, &nt, &err), 0);
    size_t i = 0;
    while (i < nt && (t[i].term.n != strlen(want) || memcmp(t[i].term.p, want, t[i].term.n) != 0))
        i++;
    assert_true(i < nt);
    const uint8_t *d = buf + part_off(buf, f, 0);
    int c = 0;
    for (uint32_t k = 1; k < ch_le_get32(d + 4); k++)
        if (ch_le_get32(d + 28 + (size_t)k * 16) <= i)
            c = (int)k;
    return c;
}

static void test_dictionary_chunks_and_column_give_the_whole_field(void **state)
{
    (void)state;
    write_many(CH_SEG_FORMAT_FIELDS); /* the reference: format 5's whole field frames */
    size_t n5;
    uint8_t *buf5 = slurp(path, &n5);
    write_many(CH_SEG_FORMAT_CHUNKS);
    size_t n;
    uint8_t *buf = slurp(path, &n);
    int fu = ch__ix_field("user.name"), fa = ch__ix_field("event.action");
    assert_true(ch_le_get32(buf + part_off(buf, fu, 0) + 4) >= 3); /* posting chunks */
    /* event.action's two terms are frequent: their postings are in the column only */
    assert_int_equal(ch_le_get32(buf + part_off(buf, fa, 0) + 4), 0);
    ch_seg *whole = NULL, *lazy = NULL, *f5 = NULL;
    ch_error err = {0};
    assert_int_equal(ch__seg_open_mem(buf5, n5, &f5, &err), 0);
    assert_int_equal(ch__seg_open(path, &whole, &err), 0);
    assert_int_equal(ch__seg_open_mem(buf, n, &lazy, &err), 0);
    assert_true(ch__seg_has_fwd(lazy));
    assert_int_equal(ch__seg_verify(whole, &err), 0);
    uint32_t *a = malloc(NMANY * sizeof *a), *b = malloc(NMANY * sizeof *b);
    for (int f = 0; f < CH_IX_NFIELDS; f++) {
        const ch_seg_term *tw, *tl, *t5;
        size_t nw, nl, n5t;
        assert_int_equal(ch__seg_terms(f5, f, &t5, &n5t, &err), 0);
        assert_int_equal(ch__seg_terms(whole, f, &tw, &nw, &err), 0);
        assert_int_equal(ch__seg_dict(lazy, f, &tl, &nl, &err), 0);
        assert_int_equal(nw, nl);
        assert_int_equal(nw, n5t);
        /* backwards: each term's chunk read when first asked for */
        for (size_t i = nl; i-- > 0;) {
            assert_int_equal(ch__seg_term_post(lazy, f, i, &err), 0);
            assert_int_equal(tw[i].npost, tl[i].npost);
            assert_int_equal(tw[i].npost, t5[i].npost);
            assert_int_equal(ch__seg_postings(&t5[i], a, NMANY), 0);
            assert_int_equal(ch__seg_postings(&tw[i], b, NMANY), 0);
            assert_memory_equal(a, b, tw[i].npost * sizeof *a);
            assert_int_equal(ch__seg_postings(&tl[i], b, NMANY), 0);
            assert_memory_equal(a, b, tw[i].npost * sizeof *a);
            for (uint32_t k = 0; k < tw[i].npost; k++) {
                uint32_t j;
                assert_int_equal(ch__seg_fwd(lazy, f, a[k], &j, &err), 0);
                assert_int_equal(j, i);
            }
        }
    }
    /* every record's user and action through the column */
    const ch_seg_term *tu, *ta;
    size_t nu, na;
    assert_int_equal(ch__seg_dict(lazy, fu, &tu, &nu, &err), 0);
    assert_int_equal(ch__seg_dict(lazy, fa, &ta, &na, &err), 0);
    assert_int_equal(nu, NUSERS);
    for (uint32_t r = 0; r < NMANY; r += 7) {
        uint32_t j;
        char want[16];
        snprintf(want, sizeof want, "u%u", r % NUSERS);
        assert_int_equal(ch__seg_fwd(lazy, fu, r, &j, &err), 0);
        assert_int_equal(tu[j].term.n, strlen(want));
        assert_memory_equal(tu[j].term.p, want, strlen(want));
        assert_int_equal(ch__seg_fwd(lazy, fa, r, &j, &err), 0);
        const char *act = r % 3 ? "DescribeInstances" : "RunInstances";
        assert_int_equal(ta[j].term.n, strlen(act));
        assert_memory_equal(ta[j].term.p, act, strlen(act));
    }
    /* a field no event has: no term, no column */
    uint32_t j;
    assert_int_equal(ch__seg_fwd(lazy, ch__ix_field("dns.question.name"), 5, &j, &err), 0);
    assert_int_equal(j, UINT32_MAX);
    assert_int_equal(ch__seg_fwd(lazy, fu, NMANY, &j, &err), CH_EPARSE);
    free(a);
    free(b);
    ch__seg_close(whole);
    ch__seg_close(lazy);
    ch__seg_close(f5);
    ch_free(buf5);
    ch_free(buf);
    unlink(path);
}

static void test_damaged_posting_chunk_is_found_by_the_lookup_that_reads_it(void **state)
{
    (void)state;
    int fu = ch__ix_field("user.name");
    write_many(CH_SEG_FORMAT_CHUNKS);
    outcome ref, other;
    run("user.name == \"u7\"", NULL, true, &ref);
    run("user.name == \"u7\"", "event.action", true, &other);
    ch_buf_free(&other.results);
    assert_int_equal(ref.matched, NMANY / NUSERS);
    size_t n, m;
    uint8_t *clean = slurp(path, &m);
    ch_seg *s = NULL;
    ch_error err = {0};
    assert_int_equal(ch__seg_open_mem(clean, m, &s, &err), 0);
    int c7 = chunk_of(clean, s, fu, "u7"), cl = chunk_of(clean, s, fu, "u10");
    ch__seg_close(s);
    assert_int_not_equal(c7, cl);
    uint8_t *buf = flip_on_disk(part_off(clean, fu, 2 + c7) + 6, &n);
    ch_free(clean);
    outcome o;
    run("user.name == \"u7\"", NULL, false, &o);
    assert_int_equal(o.matched, ref.matched);
    assert_string_equal(o.results.data, ref.results.data);
    assert_int_equal(o.damaged, 0);
    char want[64];
    snprintf(want, sizeof want, "index field user.name postings chunk %d checksum mismatch", c7);
    assert_non_null(strstr(o.damaged_text, want));
    assert_non_null(strstr(o.damaged_text, "evaluated instead"));
    ch_buf_free(&o.results);
    /* a user whose postings lie in another chunk: nothing damaged read */
    run("user.name == \"u10\"", NULL, false, &o);
    assert_int_equal(o.matched, NMANY / NUSERS);
    assert_string_equal(o.damaged_text, "");
    assert_non_null(strstr(o.explain, "index: 12 of 6000 events evaluated"));
    ch_buf_free(&o.results);
    /* `verify` reads every chunk */
    assert_int_equal(ch__seg_open_mem(buf, n, &s, &err), 0);
    assert_int_equal(ch__seg_verify(s, &err), CH_EPARSE);
    assert_non_null(strstr(err.msg, want));
    ch__seg_close(s);
    ch_buf_free(&ref.results);
    ch_free(buf);
    unlink(path);
}

static void test_count_from_the_index_reads_the_column(void **state)
{
    (void)state;
    int fu = ch__ix_field("user.name"), fa = ch__ix_field("event.action");
    write_many(CH_SEG_FORMAT_CHUNKS);
    outcome ref;
    run("user.name == \"u7\"", "event.action", true, &ref);
    assert_string_equal(ref.groups, "DescribeInstances=8;RunInstances=4;");
    outcome o;
    run("user.name == \"u7\"", "event.action", false, &o);
    assert_string_equal(o.groups, ref.groups);
    assert_non_null(strstr(o.explain, "12 of 6000 events counted from the index alone"));
    ch_buf_free(&o.results);
    /* a damaged column chunk of the grouping field: reported, counted from the records */
    size_t n, m;
    uint8_t *clean = slurp(path, &m);
    uint8_t *buf = flip_on_disk(part_off(clean, fa, -1 - 2) + 6, &n); /* records 2048..3071 */
    run("user.name == \"u7\"", "event.action", false, &o);
    assert_string_equal(o.groups, ref.groups);
    assert_int_equal(o.damaged, 0);
    assert_non_null(
        strstr(o.damaged_text, "index field event.action column chunk 2 checksum mismatch"));
    assert_non_null(strstr(o.damaged_text, "evaluated instead"));
    ch_buf_free(&o.results);
    /* a lookup of a frequent action reads the whole column: reported, answered by the scan */
    outcome scan;
    run("event.action == \"RunInstances\" and user.name =~ \"U1\"", NULL, true, &scan);
    run("event.action == \"RunInstances\" and user.name =~ \"U1\"", NULL, false, &o);
    assert_int_equal(o.matched, 4);
    assert_int_equal(o.matched, scan.matched);
    assert_string_equal(o.results.data, scan.results.data);
    assert_non_null(
        strstr(o.damaged_text, "index field event.action column chunk 2 checksum mismatch"));
    ch_buf_free(&o.results);
    ch_buf_free(&scan.results);
    ch_seg *s = NULL;
    ch_error err = {0};
    assert_int_equal(ch__seg_open_mem(buf, n, &s, &err), 0);
    assert_int_equal(ch__seg_verify(s, &err), CH_EPARSE);
    assert_non_null(strstr(err.msg, "column chunk 2"));
    ch__seg_close(s);
    ch_free(buf);
    /* a damaged dictionary: the lookup reports it and the segment is scanned */
    FILE *f = fopen(path, "wb");
    assert_int_equal(fwrite(clean, 1, m, f), m);
    fclose(f);
    buf = flip_on_disk(part_off(clean, fu, 1) + 6, &n);
    run("user.name == \"u7\"", "event.action", false, &o);
    assert_string_equal(o.groups, ref.groups);
    assert_non_null(strstr(o.damaged_text, "index field user.name dictionary checksum mismatch"));
    ch_buf_free(&o.results);
    ch_buf_free(&ref.results);
    ch_free(buf);
    ch_free(clean);
    unlink(path);
}

static void test_directory_that_does_not_fit_its_region_is_refused(void **state)
{
    (void)state;
    write_many(CH_SEG_FORMAT_CHUNKS);
    size_t n;
    uint8_t *buf = slurp(path, &n);
    int fu = ch__ix_field("user.name");
    uint64_t d = part_off(buf, fu, 0), ix = ch_le_get64(buf + 72);
    /* one more posting chunk than the directory holds, its checksum made to match */
    ch_le_put32(buf + d + 4, ch_le_get32(buf + d + 4) + 1);
    ch_le_put32(buf + ix + (size_t)fu * 12 + 8,
                ch_crc32c(0, buf + d, ch_le_get32(buf + ix + (size_t)fu * 12 + 4)));
    ch_le_put32(buf + 88, ch_crc32c(0, buf + ix, CH_IX_NFIELDS * 12)); /* the field table's */
    ch_le_put32(buf + 124, ch_crc32c(0, buf, 124));
    ch_seg *s = NULL;
    ch_error err = {0};
    assert_int_equal(ch__seg_open_mem(buf, n, &s, &err), 0);
    const ch_seg_term *t;
    size_t nt;
    assert_int_equal(ch__seg_dict(s, fu, &t, &nt, &err), CH_EPARSE);
    assert_non_null(strstr(err.msg, "does not fit its region"));
    uint32_t j;
    assert_int_equal(ch__seg_fwd(s, fu, 3, &j, &err), CH_EPARSE);
    ch__seg_close(s);
    ch_free(buf);
    unlink(path);
}

static void test_formats_5_and_6_search_the_same(void **state)
{
    (void)state;
    static const struct {
        const char *expr, *count_by;
        bool no_index;
    } q[] = {
        {"user.name == \"alice\"", NULL, false},
        {"user.name == \"alice\"", "event.action", false},
        {"user.name == \"alice\" or event.action == \"RunInstances\"", "user.name,event.action",
         false},
        {"event.action == \"RunInstances\" and source.ip in 198.51.0.0/16", NULL, false},
        {"user.name =~ \"ALICE\"", "event.action", false},
        {"requestParameters.instanceType == \"p3.16xlarge\"", NULL, true},
    };
    for (size_t i = 0; i < sizeof q / sizeof *q; i++) {
        outcome o[2];
        static const uint32_t fm[2] = {CH_SEG_FORMAT_FIELDS, CH_SEG_FORMAT_CHUNKS};
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
        cmocka_unit_test(test_new_segments_are_written_in_format_6),
        cmocka_unit_test(test_dictionary_chunks_and_column_give_the_whole_field),
        cmocka_unit_test(test_damaged_posting_chunk_is_found_by_the_lookup_that_reads_it),
        cmocka_unit_test(test_count_from_the_index_reads_the_column),
        cmocka_unit_test(test_directory_that_does_not_fit_its_region_is_refused),
        cmocka_unit_test(test_formats_5_and_6_search_the_same),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
