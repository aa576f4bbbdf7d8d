/*
 * test_evstore.c - the event store's segment format: an event survives encode, seal, open and
 * decode with every slot the writer prints; the term index finds what the scan finds; and a
 * segment damaged anywhere (header, block, index, truncation) is refused with a reason
 * instead of being read; a segment of the previous format (blocks compressed alone) reads the
 * same records as format 2 (later blocks compressed with block 0 as their dictionary), and
 * damage to block 0 is named when a later block needs it. tests/unit/test_evstore_format3.c
 * covers format 3's two streams.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/ip.h"
#include "core/mem.h"
#include "core/readfile.h"
#include "output/output.h"
#include "store/store_int.h"

#define NEV 600 /* three blocks */

static void make_event(ch_event *ev, int i, char *idbuf, ch_sv *names, ch_sv *values)
{
    ch_event_reset(ev);
    ev->ts_ms = 1717372800000LL + i * 1000;
    ev->dataset = CH_DS_VPCFLOW;
    ev->outcome = CH_OUTCOME_SUCCESS;
    snprintf(idbuf, 32, "id-%d", i);
    ev->id = (ch_sv){idbuf, (uint32_t)strlen(idbuf)};
    ev->action = i % 2 ? CH_SV("ACCEPT") : CH_SV("REJECT");
    ev->user_name = i % 100 == 7 ? CH_SV("alice") : CH_SV("bob");
    ev->instance_id = CH_SV("i-0abc");
    ch_ip_parse("10.0.0.5", 8, &ev->src_ip);
    ch_ip_parse(i % 3 ? "198.51.100.7" : "203.0.113.9", i % 3 ? 12 : 11, &ev->dst_ip);
    ev->src_port = 443;
    ev->flags = CH_F_SRC_PORT | CH_F_BYTES;
    ev->bytes = (uint64_t)i * 10;
    ev->iana_proto = 6;
    ev->transport = CH_SV("tcp");
    names[0] = CH_SV("version");
    values[0] = CH_SV("2");
    names[1] = CH_SV("srcaddr");
    values[1] = CH_SV("10.0.0.5");
    ev->raw_names = names;
    ev->raw_values = values;
    ev->raw_count = 2;
}

/* format 0: the one ch__segb_init chooses (3); 2: the previous one, block 0 as dictionary. */
static char *write_segment_as(uint32_t format)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/test_evstore_%d.seg", (int)getpid());
    ch_seg_builder b;
    ch__segb_init(&b, CH_DS_VPCFLOW, 477048);
    if (format) {
        b.format = format;
        b.flags = 0;
    }
    for (int i = 0; i < NEV; i++) {
        ch_event ev;
        char id[32];
        ch_sv n[2], v[2];
        make_event(&ev, i, id, n, v);
        assert_int_equal(ch__segb_add(&b, &ev, (uint64_t)i + 1), 0);
    }
    ch_error err = {0};
    assert_int_equal(ch__segb_write(&b, path, 3, 0, NULL, NULL, &err), 0);
    ch__segb_free(&b);
    return path;
}

static char *write_segment(void) { return write_segment_as(0); }

static void test_event_survives_the_segment_as_the_writer_prints_it(void **state)
{
    (void)state;
    char *path = write_segment();
    ch_seg *s = NULL;
    ch_error err = {0};
    assert_int_equal(ch__seg_open(path, &s, &err), 0);
    assert_int_equal(ch__seg_verify(s, &err), 0);
    const ch_seg_meta *m = ch__seg_meta(s);
    assert_int_equal(m->nrec, NEV);
    assert_int_equal(m->gen, 3);
    assert_true(m->min_ts == 1717372800000LL && m->max_ts == 1717372800000LL + (NEV - 1) * 1000);
    ch_ev_decoded *d = malloc(sizeof *d);
    ch_buf a, b;
    ch_buf_init(&a, 1 << 20);
    ch_buf_init(&b, 1 << 20);
    for (int i = 0; i < NEV; i += 37) {
        const uint8_t *p;
        size_t n;
        assert_int_equal(ch__seg_record(s, (uint32_t)i, &p, &n, &err), 0);
        assert_int_equal(ch__ev_decode(p, n, d), 0);
        assert_int_equal(d->rid, (uint64_t)i + 1);
        ch_event ev;
        char id[32];
        ch_sv nm[2], v[2];
        make_event(&ev, i, id, nm, v);
        ch_buf_clear(&a);
        ch_buf_clear(&b);
        assert_int_equal(ch_event_to_json(&ev, &a), 0);
        assert_int_equal(ch_event_to_json(&d->ev, &b), 0);
        assert_string_equal(a.data, b.data);
    }
    ch_buf_free(&a);
    ch_buf_free(&b);
    free(d);
    ch__seg_close(s);
    unlink(path);
}

static void test_index_postings_name_exactly_the_matching_records(void **state)
{
    (void)state;
    char *path = write_segment();
    ch_seg *s = NULL;
    ch_error err = {0};
    assert_int_equal(ch__seg_open(path, &s, &err), 0);
    const ch_seg_term *t;
    size_t nt;
    assert_int_equal(ch__seg_terms(s, ch__ix_field("user.name"), &t, &nt, &err), 0);
    assert_int_equal(nt, 2);
    assert_true(t[0].term.n == 5 && memcmp(t[0].term.p, "alice", 5) == 0);
    uint32_t post[NEV];
    assert_int_equal(t[0].npost, NEV / 100);
    assert_int_equal(ch__seg_postings(&t[0], post, NEV), 0);
    for (uint32_t i = 0; i < t[0].npost; i++)
        assert_int_equal(post[i], i * 100 + 7);
    assert_int_equal(ch__seg_terms(s, ch__ix_field("destination.ip"), &t, &nt, &err), 0);
    assert_int_equal(nt, 2);
    assert_int_equal(t[0].npost + t[1].npost, NEV);
    ch__seg_close(s);
    unlink(path);
}

/* An add that runs out of memory leaves the segment as it was, terms included: the record
 * added again afterwards is indexed once, and no term of the failed attempt points at the
 * record that takes its place. */
static void test_an_add_out_of_memory_leaves_no_term_behind(void **state)
{
    (void)state;
    char path[64];
    snprintf(path, sizeof path, "/tmp/test_evstore_oom_%d.seg", (int)getpid());
    ch_seg_builder b;
    ch__segb_init(&b, CH_DS_VPCFLOW, 477048);
    int failed = 0;
    for (int i = 0; i < NEV; i++) {
        ch_event ev;
        char id[32];
        ch_sv n[2], v[2];
        make_event(&ev, i, id, n, v);
        if (i >= 3) {
            assert_int_equal(ch__segb_add(&b, &ev, (uint64_t)i + 1), 0);
            continue;
        }
        /* The first records grow every buffer: fail each of their allocations in turn. */
        for (long k = 0;; k++) {
            ch_mem_fail_after(k);
            int rc = ch__segb_add(&b, &ev, (uint64_t)i + 1);
            ch_mem_fail_after(-1);
            if (rc == 0)
                break;
            assert_int_equal(rc, CH_ENOMEM);
            failed++;
        }
    }
    assert_true(failed > 3); /* beyond the block and its two buffers: the terms lists too */
    ch_error err = {0};
    assert_int_equal(ch__segb_write(&b, path, 3, 0, NULL, NULL, &err), 0);
    ch__segb_free(&b);
    ch_seg *s = NULL;
    assert_int_equal(ch__seg_open(path, &s, &err), 0);
    assert_int_equal(ch__seg_verify(s, &err), 0);
    assert_int_equal(ch__seg_meta(s)->nrec, NEV);
    const ch_seg_term *t;
    size_t nt;
    assert_int_equal(ch__seg_terms(s, ch__ix_field("user.name"), &t, &nt, &err), 0);
    assert_int_equal(nt, 2);
    assert_true(t[1].term.n == 3 && memcmp(t[1].term.p, "bob", 3) == 0);
    assert_int_equal(t[0].npost, NEV / 100);
    assert_int_equal(t[1].npost, NEV - NEV / 100);
    uint32_t *post = malloc(NEV * sizeof *post);
    assert_int_equal(ch__seg_postings(&t[1], post, NEV), 0);
    for (uint32_t i = 0, want = 0; i < t[1].npost; i++, want++) {
        if (want % 100 == 7)
            want++;
        assert_int_equal(post[i], want);
    }
    free(post);
    ch__seg_close(s);
    unlink(path);
}

/* The whole segment file (ch_free'd by the caller). */
static uint8_t *slurp(const char *file, size_t *n)
{
    char *p = NULL;
    ch_error err = {0};
    assert_int_equal(ch_read_file(file, (size_t)16 << 20, &p, n, &err), 0);
    return (uint8_t *)p;
}

/* Open and verify: the first failure's code (0 when the segment is whole). */
static int check(const uint8_t *buf, size_t n, ch_error *err)
{
    ch_seg *s = NULL;
    int rc = ch__seg_open_mem(buf, n, &s, err);
    if (rc == 0)
        rc = ch__seg_verify(s, err);
    ch__seg_close(s);
    return rc;
}

static void test_damage_anywhere_is_refused_with_a_reason(void **state)
{
    (void)state;
    char *path = write_segment();
    uint8_t *buf = NULL;
    size_t n = 0;
    buf = slurp(path, &n);
    ch_error err = {0};
    assert_int_equal(check(buf, n, &err), 0);
    /* Every 97th byte flipped in turn: header, blocks, block table, index. */
    size_t refused = 0, tried = 0;
    for (size_t off = 0; off < n; off += 97) {
        buf[off] ^= 0x5a;
        memset(&err, 0, sizeof err);
        int rc = check(buf, n, &err);
        buf[off] ^= 0x5a;
        tried++;
        if (rc == CH_EPARSE) {
            refused++;
            assert_true(err.msg[0] != '\0');
        } else {
            /* The reserved header bytes are the only ones a flip may leave unnoticed. */
            assert_true(off >= 92 && off < 124);
        }
    }
    assert_true(refused + 1 >= tried);
    for (size_t cut = 0; cut < n; cut += n / 7 + 1) {
        memset(&err, 0, sizeof err);
        assert_int_equal(check(buf, cut, &err), CH_EPARSE);
    }
    ch_free(buf);
    unlink(path);
}

/* The three seeds hold the same 298 flow records, written by format 1 (the store of an earlier
 * build), by format 2 and by format 3 (two streams per block): a store written before a change
 * reads exactly as before. */
static void test_old_and_new_block_formats_read_the_same_records(void **state)
{
    (void)state;
    const char *dir = CH_DATADIR_DEFAULT "/tests/fuzz/seeds/fuzz_segment/";
    char p1[512], p2[512], p3[512];
    snprintf(p1, sizeof p1, "%svpcflow-2blocks-v1.seg", dir);
    snprintf(p2, sizeof p2, "%svpcflow-2blocks.seg", dir);
    snprintf(p3, sizeof p3, "%svpcflow-2blocks-v3.seg", dir);
    ch_seg *a = NULL, *b = NULL, *c = NULL;
    ch_error err = {0};
    assert_int_equal(ch__seg_open(p1, &a, &err), 0);
    assert_int_equal(ch__seg_open(p2, &b, &err), 0);
    assert_int_equal(ch__seg_open(p3, &c, &err), 0);
    assert_int_equal(ch__seg_format(a), CH_SEG_FORMAT_PLAIN);
    assert_int_equal(ch__seg_format(b), CH_SEG_FORMAT_DICT);
    assert_int_equal(ch__seg_format(c), CH_SEG_FORMAT_SPLIT);
    assert_int_equal(ch__seg_verify(a, &err), 0);
    assert_int_equal(ch__seg_verify(b, &err), 0);
    assert_int_equal(ch__seg_verify(c, &err), 0);
    uint32_t n = ch__seg_meta(a)->nrec;
    assert_int_equal(ch__seg_meta(b)->nrec, n);
    assert_int_equal(ch__seg_meta(c)->nrec, n);
    assert_true(n > CH_SEG_BLOCK_RECORDS);
    assert_true(ch__seg_meta(b)->file_bytes < ch__seg_meta(a)->file_bytes);
    ch_ev_decoded *da = malloc(sizeof *da), *db = malloc(sizeof *db);
    ch_buf ja, jb;
    ch_buf_init(&ja, 1 << 20);
    ch_buf_init(&jb, 1 << 20);
    /* Newest first, as a search reads: block 1 before block 0 of the new format. */
    for (uint32_t i = n; i-- > 0;) {
        const uint8_t *p;
        size_t len;
        assert_int_equal(ch__seg_record(a, i, &p, &len, &err), 0);
        assert_int_equal(ch__ev_decode(p, len, da), 0);
        assert_int_equal(ch__seg_record(b, i, &p, &len, &err), 0);
        assert_int_equal(ch__ev_decode(p, len, db), 0);
        ch_buf_clear(&ja);
        ch_buf_clear(&jb);
        assert_int_equal(ch_event_to_json(&da->ev, &ja), 0);
        assert_int_equal(ch_event_to_json(&db->ev, &jb), 0);
        assert_string_equal(ja.data, jb.data);
        assert_int_equal(ch__seg_record(c, i, &p, &len, &err), 0);
        assert_int_equal(ch__ev_decode(p, len, db), 0);
        ch_buf_clear(&jb);
        assert_int_equal(ch_event_to_json(&db->ev, &jb), 0);
        assert_string_equal(ja.data, jb.data);
    }
    ch_buf_free(&ja);
    ch_buf_free(&jb);
    free(da);
    free(db);
    ch__seg_close(a);
    ch__seg_close(b);
    ch__seg_close(c);
}

static void test_a_damaged_first_block_is_named_by_the_later_blocks(void **state)
{
    (void)state;
    char *path = write_segment_as(CH_SEG_FORMAT_DICT); /* test_evstore_format3 does format 3 */
    size_t n;
    uint8_t *buf = slurp(path, &n);
    unlink(path);
    buf[CH_SEG_HEADER + 20] ^= 0x40; /* inside block 0's frame */
    ch_seg *s = NULL;
    ch_error err = {0};
    assert_int_equal(ch__seg_open_mem(buf, n, &s, &err), 0);
    const uint8_t *p;
    size_t len;
    assert_int_equal(ch__seg_record(s, CH_SEG_BLOCK_RECORDS + 3, &p, &len, &err), CH_EPARSE);
    assert_non_null(strstr(err.msg, "block 0"));
    assert_int_equal(ch__seg_verify(s, &err), CH_EPARSE);
    ch__seg_close(s);
    ch_free(buf);
}

static void test_retention_and_time_arguments_parse_or_say_why(void **state)
{
    (void)state;
    ch_evstore_retention r;
    ch_error err = {0};
    assert_int_equal(ch_evstore_retention_parse("30d,10GB", &r, &err), 0);
    assert_true(r.max_age_ms == 30LL * 86400000 && r.max_bytes == 10000000000ULL);
    assert_int_equal(ch_evstore_retention_parse("500MiB", &r, &err), 0);
    assert_true(r.max_bytes == 500ULL << 20 && r.max_age_ms == 0);
    assert_int_equal(ch_evstore_retention_parse("30x", &r, &err), CH_EPARSE);
    assert_non_null(strstr(err.msg, "30x"));
    assert_int_equal(ch_evstore_retention_parse("", &r, &err), CH_EPARSE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_survives_the_segment_as_the_writer_prints_it),
        cmocka_unit_test(test_index_postings_name_exactly_the_matching_records),
        cmocka_unit_test(test_an_add_out_of_memory_leaves_no_term_behind),
        cmocka_unit_test(test_damage_anywhere_is_refused_with_a_reason),
        cmocka_unit_test(test_retention_and_time_arguments_parse_or_say_why),
        cmocka_unit_test(test_old_and_new_block_formats_read_the_same_records),
        cmocka_unit_test(test_a_damaged_first_block_is_named_by_the_later_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
