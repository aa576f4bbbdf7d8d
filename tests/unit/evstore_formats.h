/*
 * evstore_formats.h - what the segment format tests (test_evstore_format3.c, _format4.c,
 * _format5.c) share: the 700 events they write (three blocks), a segment of them written in a
 * given format, the file read back, where a block's frame (and format 5's index field frame)
 * starts, a byte flipped on disk, and a search over that one segment with what it found,
 * printed, grouped and explained. Each test file includes it once, after defining
 * EVSTORE_TEST_TAG (the segment file's name part).
 */
#ifndef CH_TESTS_EVSTORE_FORMATS_H
#define CH_TESTS_EVSTORE_FORMATS_H

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
#include "core/leb.h"
#include "core/mem.h"
#include "core/readfile.h"
#include "output/output.h"
#include "store/search.h"
#include "store/search_int.h"
#include "store/store_int.h"

#define NEV 700 /* three blocks: 256, 256, 188 */

static void make_event(ch_event *ev, int i, char *idbuf, char *json, size_t jcap)
{
    ch_event_reset(ev);
    ev->ts_ms = 1717372800000LL + i * 1000;
    ev->dataset = CH_DS_CLOUDTRAIL;
    ev->outcome = i % 5 ? CH_OUTCOME_SUCCESS : CH_OUTCOME_FAILURE;
    snprintf(idbuf, 32, "ev-%d", i);
    ev->id = (ch_sv){idbuf, (uint32_t)strlen(idbuf)};
    ev->action = i % 3 ? CH_SV("DescribeInstances") : CH_SV("RunInstances");
    ev->provider = CH_SV("ec2.amazonaws.com");
    ev->user_name = i % 100 == 7 ? CH_SV("alice") : CH_SV("bob");
    ev->region = CH_SV("us-east-1");
    ch_ip_parse("198.51.100.7", 12, &ev->src_ip);
    snprintf(json, jcap,
             "{\"eventName\":\"%s\",\"eventID\":\"%s\",\"requestParameters\":"
             "{\"instanceType\":\"%s\"},\"userAgent\":\"agent/%d\"}",
             i % 3 ? "DescribeInstances" : "RunInstances", idbuf,
             i % 50 == 3 ? "p3.16xlarge" : "t3.micro", i % 11);
    ev->raw_json = (ch_sv){json, (uint32_t)strlen(json)};
}

static char path[64];

/* The NEV events through the builder b (initialised by the caller) into a segment at path, with
 * the checkpoint sequence seq; b is freed. */
static inline void write_events(ch_seg_builder *b, uint32_t seq)
{
    snprintf(path, sizeof path, "/tmp/test_evstore_%s_%d.seg", EVSTORE_TEST_TAG, (int)getpid());
    for (int i = 0; i < NEV; i++) {
        ch_event ev;
        char id[32], json[256];
        make_event(&ev, i, id, json, sizeof json);
        assert_int_equal(ch__segb_add(b, &ev, (uint64_t)i + 1), 0);
    }
    ch_error err = {0};
    assert_int_equal(ch__segb_write(b, path, 5, seq, NULL, NULL, &err), 0);
    ch__segb_free(b);
}

static void write_as(uint32_t format, uint32_t flags)
{
    ch_seg_builder b;
    ch__segb_init(&b, CH_DS_CLOUDTRAIL, 477048);
    b.format = format;
    b.flags = flags;
    write_events(&b, 0);
}

/* A new builder chooses `format` (as COINHOUND_STORE_FORMAT, set by the caller, says), and the
 * segment it writes carries that version while the readers above segment.c see format 3's
 * layout. */
static inline void check_written_format(uint32_t format)
{
    ch_seg_builder b;
    ch__segb_init(&b, CH_DS_CLOUDTRAIL, 477048);
    assert_int_equal(b.format, format);
    ch__segb_free(&b);
    write_as(format, CH_SEG_TYPED_DICT | CH_SEG_ORIG_DICT);
    ch_seg *s = NULL;
    ch_error err = {0};
    assert_int_equal(ch__seg_open(path, &s, &err), 0);
    assert_int_equal(ch__seg_version(s), format);
    assert_int_equal(ch__seg_format(s), CH_SEG_FORMAT_SPLIT);
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

static inline void json_of(const ch_event *ev, ch_buf *b)
{
    ch_buf_clear(b);
    assert_int_equal(ch_event_to_json(ev, b), 0);
}

/* Offset of block k's frame of stream st (0 typed, 1 original) in a format 3 file. */
static uint64_t frame_off(const uint8_t *buf, uint32_t k, int st)
{
    const uint8_t *bt = buf + ch_le_get64(buf + 64) + (size_t)k * 48;
    return st ? ch_le_get64(bt + 40) : ch_le_get64(bt);
}

/* Offset of field f's index frame in a format 5 file: after the field table (12 bytes a field:
 * compressed size, raw size, CRC32C), the frames in field order. */
static inline uint64_t ix_frame_off(const uint8_t *buf, int f)
{
    uint64_t ix = ch_le_get64(buf + 72), off = ix + CH_IX_NFIELDS * 12;
    for (int i = 0; i < f; i++)
        off += ch_le_get32(buf + ix + (size_t)i * 12);
    return off;
}

/* The segment file at path with the byte at off flipped on disk; the damaged bytes (ch_free'd
 * by the caller) and their size. */
static uint8_t *flip_on_disk(uint64_t off, size_t *n)
{
    uint8_t *buf = slurp(path, n);
    buf[off] ^= 0x40;
    FILE *f = fopen(path, "wb");
    assert_int_equal(fwrite(buf, 1, *n, f), *n);
    fclose(f);
    return buf;
}

/* The segment written in `format`, with one byte flipped inside block k's frame of stream st
 * (0 typed, 1 original) on disk; the damaged bytes (ch_free'd by the caller) and their size. */
static inline uint8_t *write_damaged(uint32_t format, uint32_t flags, uint32_t k, int st, size_t *n)
{
    write_as(format, flags);
    size_t m;
    uint8_t *buf = slurp(path, &m);
    uint64_t off = frame_off(buf, k, st) + 9;
    ch_free(buf);
    return flip_on_disk(off, n);
}

/* A one-segment store for the search code (as tests/fuzz/fuzz_segment.c does). */
static int one_search(void *impl, ch_search *s, ch_error *err)
{
    ch_seg *seg = NULL;
    ch_error e = {0};
    ch__search_add_total(s, 1);
    if (ch__seg_open(impl, &seg, &e) < 0) {
        ch__search_damaged(s, impl, e.msg);
        return 0;
    }
    int rc = ch__search_segment(s, seg, impl, err);
    ch__seg_close(seg);
    return rc;
}

static const ch_evstore_ops one_ops = {.name = "one", .search = one_search};

typedef struct outcome {
    uint64_t matched, damaged;
    size_t nres;
    char damaged_text[512];
    char explain[2048];
    ch_buf results; /* every kept result as the writer prints it, one per line */
    char groups[512];
} outcome;

static void run(const char *expr, const char *count_by, bool no_index, outcome *o)
{
    ch_search_opts so = {
        .expr = expr, .count_by = count_by, .limit = 1000, .explain = true, .no_index = no_index};
    ch_search *s = NULL;
    ch_error err = {0};
    assert_int_equal(ch_search_new(&so, &s, &err), 0);
    ch_evstore st = {&one_ops, path};
    assert_int_equal(ch_search_run(s, &st, &err), 0);
    ch_search_progress pr;
    ch_search_progress_get(s, &pr);
    o->matched = pr.events_matched;
    o->damaged = pr.segments_damaged;
    o->nres = ch_search_nresults(s);
    snprintf(o->damaged_text, sizeof o->damaged_text, "%s", ch_search_damaged(s));
    snprintf(o->explain, sizeof o->explain, "%s", ch_search_explain(s));
    ch_buf_init(&o->results, 1 << 24);
    for (size_t i = 0; i < o->nres; i++) {
        const ch_event *ev;
        assert_int_equal(ch_search_result(s, i, &ev, NULL, &err), 0);
        assert_int_equal(ch_event_to_json(ev, &o->results), 0);
        ch_buf_addc(&o->results, '\n');
    }
    size_t k = 0;
    o->groups[0] = '\0';
    for (size_t i = 0; i < ch_search_ngroups(s); i++) {
        const char *key;
        uint64_t c;
        ch_search_group(s, i, &key, &c);
        k += (size_t)snprintf(o->groups + k, sizeof o->groups - k, "%s=%llu;", key,
                              (unsigned long long)c);
    }
    ch_search_free(s);
}

/* Search expr (scanned, nothing grouped) and expect its one segment reported damaged, for a
 * reason that contains text (any reason when text is NULL). */
static inline void expect_damaged(const char *expr, const char *text)
{
    outcome o;
    run(expr, NULL, true, &o);
    assert_int_equal(o.damaged, 1);
    if (text != NULL)
        assert_non_null(strstr(o.damaged_text, text));
    ch_buf_free(&o.results);
}

/* n searches of the same records (other formats, or index and scan) found something and gave
 * the first one's answer, nothing damaged: matches, kept results byte for byte, groups. Frees
 * every outcome's results. */
static inline void expect_same_answers(outcome *o, int n)
{
    assert_true(o[0].matched > 0);
    assert_int_equal(o[0].damaged, 0);
    for (int f = 1; f < n; f++) {
        assert_int_equal(o[0].matched, o[f].matched);
        assert_int_equal(o[0].nres, o[f].nres);
        assert_int_equal(o[f].damaged, 0);
        assert_string_equal(o[0].results.data ? o[0].results.data : "",
                            o[f].results.data ? o[f].results.data : "");
        assert_string_equal(o[0].groups, o[f].groups);
    }
    for (int f = 0; f < n; f++)
        ch_buf_free(&o[f].results);
}

#endif
