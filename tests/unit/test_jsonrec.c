/*
 * test_jsonrec.c - the JSON record splitter: every delivery shape, every framing error, records
 * that straddle window refills, and the shared CloudTrail samples (skipped when
 * ../shared/corpora is absent).
 *
 * Inputs are built in memory and read through ch_input_open_mem, so the window, its refills
 * and gzip are the real ones. A tiny max_window forces a refill every few bytes; splitting the
 * same text with every window size from 1 byte up must give the same records.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "corpora.h"

#include "core/diag.h"
#include "core/json.h"
#include "core/mem.h"
#include "ingest/input.h"
#include "parse/jsonrec.h"

#define MAX_RECS 4096

typedef struct split {
    int n;
    char *text[MAX_RECS];
    uint64_t offset[MAX_RECS], line[MAX_RECS];
    bool multiline[MAX_RECS];
    int rc; /* last ch_jsonrec_next result */
    ch_diag diag;
} split;

static void split_free(split *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->text[i]);
    free(s);
}

/* Split len bytes of data through a window of max_window bytes. */
static split *split_mem_ex(const void *data, size_t len, size_t max_window, size_t max_record,
                           uint64_t max_depth)
{
    split *s = calloc(1, sizeof *s);
    assert_non_null(s);
    ch_diag_init(&s->diag, NULL);
    ch_input *in = NULL;
    ch_error err = {0};
    assert_int_equal(ch_input_open_mem(&in, "mem", data, len, max_window, &err), 0);
    ch_jsonrec *r = ch_jsonrec_new(in, max_record);
    assert_non_null(r);
    if (max_depth)
        ch_jsonrec_set_max_depth(r, max_depth);
    ch_jsonrec_rec rec;
    while ((s->rc = ch_jsonrec_next(r, &s->diag, CH_DS_CLOUDTRAIL, &rec)) == 1) {
        assert_true(s->n < MAX_RECS);
        assert_true(rec.n >= 2);
        assert_int_equal(rec.p[0], '{');
        assert_int_equal(rec.p[rec.n - 1], '}');
        /* The padding promise: CH_JSON_PADDING readable bytes after the record. */
        volatile char sink = 0;
        for (size_t i = 0; i < CH_JSON_PADDING; i++)
            sink ^= rec.p[rec.n + i];
        (void)sink;
        s->text[s->n] = strndup(rec.p, rec.n);
        s->offset[s->n] = rec.offset;
        s->line[s->n] = rec.line;
        s->multiline[s->n] = rec.multiline;
        s->n++;
    }
    ch_jsonrec_free(r);
    ch_input_close(in);
    return s;
}

static split *split_str(const char *text) { return split_mem_ex(text, strlen(text), 0, 0, 0); }

static uint64_t reason(const split *s, const char *why) { return ch_diag_count(&s->diag, why); }

/* gzip data into a malloc'd buffer. */
static unsigned char *gzip_mem(const void *data, size_t len, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&z, len);
    unsigned char *out = malloc(cap);
    z.next_in = (unsigned char *)data;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    *out_len = cap - z.avail_out;
    deflateEnd(&z);
    return out;
}

static void test_jsonl_yields_one_record_per_line_with_lines_and_offsets(void **state)
{
    (void)state;
    const char *t = "{\"a\":1}\n{\"b\":\"x\"}\n\n{\"c\":[1,2]}\n";
    split *s = split_str(t);
    assert_int_equal(s->n, 3);
    assert_string_equal(s->text[0], "{\"a\":1}");
    assert_string_equal(s->text[1], "{\"b\":\"x\"}");
    assert_string_equal(s->text[2], "{\"c\":[1,2]}");
    assert_int_equal(s->offset[1], 8);
    assert_int_equal(s->offset[2], 19);
    assert_int_equal(s->line[0], 1);
    assert_int_equal(s->line[1], 2);
    assert_int_equal(s->line[2], 4);
    assert_false(s->multiline[0]);
    assert_int_equal(s->diag.errors_total, 0);
    assert_int_equal(s->rc, 0);
    split_free(s);
}

static void test_jsonl_unbalanced_line_costs_only_that_line(void **state)
{
    (void)state;
    const char *t = "{\"a\":1}\n"
                    "{\"b\":{\"c\":2}\n"       /* one brace short */
                    "{\"d\":\"unterminated}\n" /* string never closed */
                    "{\"e\":3}}\n"             /* one brace too many */
                    "{\"f\":4}\n";
    /* Each line that ends like an object is handed on whole (simdjson then rejects the
     * broken ones with their line number); the rest is dropped here. Either way a bad line
     * costs only itself: the good lines around it all come out, with their line numbers. */
    split *s = split_str(t);
    assert_int_equal(s->n, 5);
    assert_string_equal(s->text[0], "{\"a\":1}");
    assert_string_equal(s->text[1], "{\"b\":{\"c\":2}");
    assert_string_equal(s->text[2], "{\"d\":\"unterminated}");
    assert_string_equal(s->text[3], "{\"e\":3}}");
    assert_string_equal(s->text[4], "{\"f\":4}");
    assert_int_equal(s->line[1], 2);
    assert_int_equal(s->line[4], 5);
    split_free(s);
}

static void test_jsonl_crlf_lines_and_missing_final_newline(void **state)
{
    (void)state;
    split *s = split_str("{\"a\":1}\r\n{\"b\":2}\r\n{\"c\":3}");
    assert_int_equal(s->n, 3);
    assert_string_equal(s->text[2], "{\"c\":3}");
    assert_int_equal(s->line[2], 3);
    assert_false(s->multiline[1]);
    assert_int_equal(s->diag.errors_total, 0);
    split_free(s);
}

static void test_jsonl_line_that_is_not_an_object_is_reported(void **state)
{
    (void)state;
    split *s = split_str("{\"a\":1}\n[1,2]\nhello\n42\n{\"b\":2}\n");
    assert_int_equal(s->n, 2);
    assert_int_equal(reason(s, "not_an_object"), 1);
    assert_int_equal(reason(s, "garbage"), 2);
    assert_int_equal(s->line[1], 5);
    split_free(s);
}

static void test_top_level_array_of_objects(void **state)
{
    (void)state;
    split *s = split_str("[{\"a\":1},{\"b\":[{\"x\":1}]} , {\"c\":\"]}\"}]");
    assert_int_equal(s->n, 3);
    assert_string_equal(s->text[1], "{\"b\":[{\"x\":1}]}");
    assert_string_equal(s->text[2], "{\"c\":\"]}\"}");
    assert_int_equal(s->diag.errors_total, 0);
    split_free(s);
}

static void test_pretty_printed_array_marks_records_multiline(void **state)
{
    (void)state;
    const char *t = "[\n  {\n    \"a\": 1\n  },\n  {\n    \"b\": 2\n  }\n]\n";
    split *s = split_str(t);
    assert_int_equal(s->n, 2);
    assert_true(s->multiline[0]);
    assert_true(s->multiline[1]);
    assert_int_equal(s->line[0], 2);
    assert_int_equal(s->line[1], 5);
    assert_int_equal(s->diag.errors_total, 0);
    split_free(s);
}

static void test_array_missing_comma_is_reported_and_both_records_kept(void **state)
{
    (void)state;
    split *s = split_str("[{\"a\":1}\n{\"b\":2},{\"c\":3}]");
    assert_int_equal(s->n, 3);
    assert_int_equal(reason(s, "json_syntax"), 1);
    assert_int_equal(s->diag.errors_total, 1);
    split_free(s);
    s = split_str("[{\"a\":1},,{\"b\":2}]");
    assert_int_equal(s->n, 2);
    assert_int_equal(reason(s, "json_syntax"), 1);
    split_free(s);
}

static void test_array_non_object_elements_are_reported_and_skipped(void **state)
{
    (void)state;
    split *s = split_str("[{\"a\":1}, 42, \"str{\", [1,{\"x\":2}], null, {\"b\":2}, }, true]");
    assert_int_equal(s->n, 2);
    assert_string_equal(s->text[1], "{\"b\":2}");
    assert_int_equal(reason(s, "not_an_object"), 5);
    assert_int_equal(reason(s, "garbage"), 1);
    split_free(s);
}

static void test_records_envelope_yields_its_elements(void **state)
{
    (void)state;
    split *s = split_str("{\"Records\":[{\"eventName\":\"A\"},{\"eventName\":\"B\"}]}");
    assert_int_equal(s->n, 2);
    assert_string_equal(s->text[0], "{\"eventName\":\"A\"}");
    assert_int_equal(s->offset[0], 12);
    assert_int_equal(s->diag.errors_total, 0);
    split_free(s);
}

static void test_records_not_first_key_other_keys_skipped(void **state)
{
    (void)state;
    const char *t =
        "{\n  \"meta\": {\"Records\": [{\"no\":1}], \"x\": \"Records\"},\n"
        "  \"list\": [{\"no\": 2}],\n"
        "  \"Records\" : [\n    {\"eventName\": \"A\"},\n    {\"eventName\": \"B\"}\n  ],\n"
        "  \"after\": [{\"no\": 3}, \"}\"]\n}\n"
        "{\"next\": 1}\n";
    split *s = split_str(t);
    assert_int_equal(s->n, 3);
    assert_string_equal(s->text[0], "{\"eventName\": \"A\"}");
    assert_string_equal(s->text[1], "{\"eventName\": \"B\"}");
    assert_int_equal(s->line[1], 6);
    assert_string_equal(s->text[2], "{\"next\": 1}");
    assert_int_equal(s->line[2], 10);
    assert_int_equal(s->diag.errors_total, 0);
    split_free(s);
}

static void test_records_key_without_array_is_an_ordinary_record(void **state)
{
    (void)state;
    split *s = split_str("{\"Records\":{\"a\":[1]}}\n{\"a\":\"Records\",\"b\":[{\"c\":1}]}\n");
    assert_int_equal(s->n, 2);
    assert_string_equal(s->text[0], "{\"Records\":{\"a\":[1]}}");
    assert_string_equal(s->text[1], "{\"a\":\"Records\",\"b\":[{\"c\":1}]}");
    split_free(s);
}

static void test_one_envelope_per_line(void **state)
{
    (void)state;
    split *s = split_str("{\"Records\":[{\"a\":1},{\"a\":2}]}\n{\"Records\":[{\"a\":3}]}\n");
    assert_int_equal(s->n, 3);
    assert_string_equal(s->text[2], "{\"a\":3}");
    assert_int_equal(s->diag.errors_total, 0);
    split_free(s);
}

/* Fuzz finding (issue 15): in JSON Lines, a line holding a "Records" envelope whose array is
 * left open (here by a non-object element) let the array run on into the next lines, which
 * were then swallowed as parts of that element; through a window too small for the line, the
 * line was skipped to its newline instead and the next line came out as a record. Where the
 * records around a damaged one are cut must not depend on the window: the line bounds the
 * envelope, and the record on the line after it comes out whatever the window. */
static void test_jsonl_open_envelope_array_ends_with_its_line_whatever_the_window(void **state)
{
    (void)state;
    const char *t = "{\"a\":1}\n"
                    "{\"pad\":\"xxxxxxxxxxxxxxxx\",\"Records\":[[\"never closed\", {\"x\":0}, 7\n"
                    "{\"b\":2}\n"
                    "{\"Records\":[{\"c\":3},\n"
                    "{\"d\":4}\n";
    size_t len = strlen(t);
    split *ref = split_mem_ex(t, len, 0, 0, 0);
    assert_int_equal(ref->n, 4);
    assert_string_equal(ref->text[0], "{\"a\":1}");
    assert_string_equal(ref->text[1], "{\"b\":2}");
    assert_string_equal(ref->text[2], "{\"c\":3}");
    assert_string_equal(ref->text[3], "{\"d\":4}");
    assert_int_equal(ref->line[1], 3);
    assert_int_equal(ref->line[3], 5);
    assert_int_equal(reason(ref, "truncated"), 2);
    /* Windows too small for the damaged lines skip them whole; every record they do yield is
     * one of the large window's, at the same offset. */
    for (size_t w = 8; w <= len + 1; w++) {
        split *s = split_mem_ex(t, len, w, 0, 0);
        for (int i = 0; i < s->n; i++) {
            bool found = false;
            for (int k = 0; k < ref->n && !found; k++)
                found = s->offset[i] == ref->offset[k] && strcmp(s->text[i], ref->text[k]) == 0;
            if (!found)
                fail_msg("window %zu: record at byte %llu (%s) is not the large window's", w,
                         (unsigned long long)s->offset[i], s->text[i]);
        }
        if (w >= 40) /* every record line fits: none is lost */
            assert_int_equal(s->n, ref->n);
        split_free(s);
    }
    split_free(ref);
}

static void test_sequence_of_pretty_printed_objects(void **state)
{
    (void)state;
    const char *t = "{\n  \"a\": 1\n}\n{\n  \"b\": {\n    \"c\": 2\n  }\n}{\"d\":3}\n";
    split *s = split_str(t);
    assert_int_equal(s->n, 3);
    assert_true(s->multiline[0]);
    assert_int_equal(s->line[1], 4);
    assert_string_equal(s->text[2], "{\"d\":3}");
    assert_false(s->multiline[2]);
    assert_int_equal(s->line[2], 8);
    assert_int_equal(s->diag.errors_total, 0);
    split_free(s);
}

static void test_truncated_last_record_reported_after_complete_ones(void **state)
{
    (void)state;
    const char *t = "[{\"a\":1},{\"b\":2},{\"c\":{\"d\":";
    split *s = split_str(t);
    assert_int_equal(s->n, 2);
    assert_int_equal(reason(s, "truncated"), 1);
    assert_int_equal(s->diag.errors_total, 1);
    split_free(s);

    s = split_str("{\n \"a\": 1\n}\n{\n \"b\": \"cut here");
    assert_int_equal(s->n, 1);
    assert_int_equal(reason(s, "truncated"), 1);
    split_free(s);

    /* The array itself not closed after a complete record is damage too. */
    s = split_str("[{\"a\":1},");
    assert_int_equal(s->n, 1);
    assert_int_equal(reason(s, "truncated"), 1);
    split_free(s);
}

static char *nested(size_t depth, char open, char close, bool closed, const char *prefix)
{
    size_t pl = strlen(prefix);
    char *t = malloc(pl + 6 * depth + 16);
    memcpy(t, prefix, pl);
    size_t n = pl;
    for (size_t i = 0; i < depth; i++) {
        if (open == '{') {
            memcpy(t + n, "{\"a\":", 5);
            n += 5;
        } else {
            t[n++] = open;
        }
    }
    t[n++] = '1';
    if (closed)
        for (size_t i = 0; i < depth; i++)
            t[n++] = close;
    t[n] = '\0';
    return t;
}

static void test_nesting_100000_deep_is_too_deep_not_a_crash(void **state)
{
    (void)state;
    /* Closed objects, then a good record: only the deep one is lost. */
    char *deep = nested(100000, '{', '}', true, "{\"ok\":1}\n");
    size_t dl = strlen(deep);
    char *t = malloc(dl + 16);
    memcpy(t, deep, dl);
    memcpy(t + dl, "\n{\"b\":2}\n", 10);
    /* In JSON Lines the deep line is handed on whole: simdjson's depth cap rejects it as
     * too_deep (test_cloudtrail pins that); the splitter must neither recurse nor lose the
     * next line. */
    split *s = split_str(t);
    assert_int_equal(s->n, 3);
    assert_true(strlen(s->text[1]) > 200000);
    assert_string_equal(s->text[2], "{\"b\":2}");
    assert_int_equal(s->diag.errors_total, 0);
    split_free(s);
    free(t);
    free(deep);

    /* Arrays in a top-level array, never closed. */
    deep = nested(100000, '[', ']', false, "[{\"ok\":1},");
    s = split_str(deep);
    assert_int_equal(s->n, 1);
    assert_int_equal(reason(s, "too_deep"), 1);
    split_free(s);
    free(deep);

    /* Pretty-printed mode, unclosed: too_deep rather than truncated. */
    deep = nested(100000, '{', '}', false, "");
    s = split_str(deep);
    assert_int_equal(s->n, 0);
    assert_int_equal(reason(s, "too_deep"), 1);
    assert_int_equal(s->diag.errors_total, 1);
    split_free(s);
    free(deep);

    /* Exactly at the cap is fine. */
    deep = nested(50, '{', '}', true, "");
    s = split_mem_ex(deep, strlen(deep), 0, 0, 50);
    assert_int_equal(s->n, 1);
    split_free(s);
    s = split_mem_ex(deep, strlen(deep), 0, 0, 49);
    assert_int_equal(s->n, 0);
    assert_int_equal(reason(s, "too_deep"), 1);
    split_free(s);
    free(deep);
}

static void test_garbage_between_records_is_reported_once_per_run(void **state)
{
    (void)state;
    split *s = split_str("{\n\"a\":1\n}\nthis is not json\n{\n\"b\":2\n}\n\x01\x02\x03{\"c\":3}");
    assert_int_equal(s->n, 3);
    assert_int_equal(reason(s, "garbage"), 2);
    assert_int_equal(s->line[1], 5);
    split_free(s);

    s = split_str("leading junk {\"a\":1}\n{\"b\":2}\n");
    assert_int_equal(s->n, 2);
    assert_int_equal(reason(s, "garbage"), 1);
    split_free(s);
}

static void test_empty_and_blank_inputs_yield_nothing_silently(void **state)
{
    (void)state;
    split *s = split_str("");
    assert_int_equal(s->n, 0);
    assert_int_equal(s->rc, 0);
    assert_int_equal(s->diag.errors_total, 0);
    split_free(s);
    s = split_str(" \n\r\n\t \n");
    assert_int_equal(s->n, 0);
    assert_int_equal(s->diag.errors_total, 0);
    split_free(s);
    s = split_str("[]");
    assert_int_equal(s->n, 0);
    assert_int_equal(s->diag.errors_total, 0);
    split_free(s);
    s = split_str("{\"Records\":[]}");
    assert_int_equal(s->n, 0);
    assert_int_equal(s->diag.errors_total, 0);
    split_free(s);
}

static void test_utf8_bom_is_skipped(void **state)
{
    (void)state;
    split *s = split_str("\xEF\xBB\xBF{\"a\":1}\n{\"b\":2}\n");
    assert_int_equal(s->n, 2);
    assert_int_equal(s->offset[0], 3);
    assert_int_equal(s->diag.errors_total, 0);
    split_free(s);
}

/* A byte order mark cut across two gzip members: libdeflate delivers the first member (two
 * bytes of the mark) in a refill of its own, zlib both at once; skipped either way. */
static void test_utf8_bom_split_across_gzip_members_is_skipped(void **state)
{
    (void)state;
    static const char rest[] = "\xBF{\"a\":1}\n{\"b\":2}\n";
    size_t l1, l2;
    unsigned char *z1 = gzip_mem("\xEF\xBB", 2, &l1);
    unsigned char *z2 = gzip_mem(rest, strlen(rest), &l2);
    unsigned char *both = malloc(l1 + l2);
    memcpy(both, z1, l1);
    memcpy(both + l1, z2, l2);
    static const char *const inflaters[] = {"zlib", "libdeflate"};
    for (int k = 0; k < 2; k++) {
        setenv("COINHOUND_INFLATE", inflaters[k], 1);
        split *s = split_mem_ex(both, l1 + l2, 0, 0, 0);
        unsetenv("COINHOUND_INFLATE");
        assert_int_equal(s->n, 2);
        assert_int_equal(s->offset[0], 3);
        assert_int_equal(s->diag.errors_total, 0);
        split_free(s);
    }
    free(both);
    free(z2);
    free(z1);
}

static void test_escaped_quotes_and_backslashes_inside_strings(void **state)
{
    (void)state;
    const char *t =
        "[{\"a\":\"x\\\"}\"},{\"b\":\"\\\\\"},{\"c\":\"\\\\\\\"]\"},{\"d\":\"\\\\\\\\\"}]";
    split *s = split_str(t);
    assert_int_equal(s->n, 4);
    assert_string_equal(s->text[0], "{\"a\":\"x\\\"}\"}");
    assert_string_equal(s->text[1], "{\"b\":\"\\\\\"}");
    assert_string_equal(s->text[2], "{\"c\":\"\\\\\\\"]\"}");
    assert_string_equal(s->text[3], "{\"d\":\"\\\\\\\\\"}");
    assert_int_equal(s->diag.errors_total, 0);
    split_free(s);
}

static void test_record_too_large_is_skipped_and_the_next_kept(void **state)
{
    (void)state;
    char big[4096];
    memset(big, 'x', sizeof big);
    char *t = malloc(sizeof big + 256);
    int n = sprintf(t, "[{\"a\":1},{\"big\":\"%.*s\"},{\"b\":2}]", (int)sizeof big, big);
    split *s = split_mem_ex(t, (size_t)n, 1024, 512, 0);
    assert_int_equal(s->n, 2);
    assert_string_equal(s->text[1], "{\"b\":2}");
    assert_int_equal(reason(s, "record_too_large"), 1);
    split_free(s);

    /* JSON Lines: the long line goes, the lines around it stay. */
    n = sprintf(t, "{\"a\":1}\n{\"big\":\"%.*s\"}\n{\"b\":2}\n", (int)sizeof big, big);
    s = split_mem_ex(t, (size_t)n, 1024, 512, 0);
    assert_int_equal(s->n, 2);
    assert_int_equal(s->line[1], 3);
    assert_int_equal(reason(s, "record_too_large"), 1);
    split_free(s);

    /* Same with a window large enough to hold it: the cap is max_record, not the window. */
    s = split_mem_ex(t, (size_t)n, 1 << 20, 512, 0);
    assert_int_equal(s->n, 2);
    assert_int_equal(reason(s, "record_too_large"), 1);
    split_free(s);
    free(t);
}

/* A mix of every shape, with escapes and brackets inside strings. */
static const char *const mixes[] = {
    "{\"a\":\"q\\\"}{[\",\"b\":[1,{\"c\":\"\\\\\"}]}\n{\"d\":\"\\\\\\\"x\"}\n{\"e\":{}}\n"
    "{\"broken\":[\n{\"f\":\"end\"}\n",
    "[\n  {\"a\": \"\\\"]}\"},\n  {\"b\": [\"\\\\\", {\"c\": 1}]},\n  7,\n  {\"d\": 2}\n]\n"
    "{\"Records\": [{\"e\": \"\\\\\\\\\"}, {\"f\": [[]]}], \"z\": {\"y\": \"}\"}}\n",
    "{\"k\":1,\"Records\":[{\"a\":1}\n{\"b\":\"Records\"},\n{\"c\":[\"{\"]}],\"t\":[]}\n"
    "{\n\"g\": 1\n} junk {\"h\": 2}\n",
};

static void test_records_spanning_window_refills_match_a_big_window(void **state)
{
    (void)state;
    for (size_t m = 0; m < sizeof mixes / sizeof mixes[0]; m++) {
        size_t len = strlen(mixes[m]);
        split *ref = split_mem_ex(mixes[m], len, 0, 0, 0);
        assert_true(ref->n >= 3);
        for (size_t w = 64; w <= len + 1; w++) {
            split *s = split_mem_ex(mixes[m], len, w, 0, 0);
            assert_int_equal(s->n, ref->n);
            for (int i = 0; i < s->n; i++) {
                assert_string_equal(s->text[i], ref->text[i]);
                assert_int_equal(s->offset[i], ref->offset[i]);
                assert_int_equal(s->line[i], ref->line[i]);
                assert_int_equal(s->multiline[i], ref->multiline[i]);
            }
            assert_int_equal(s->diag.errors_total, ref->diag.errors_total);
            split_free(s);
        }
        /* Windows smaller than a record: records are lost as too large, never garbled. */
        for (size_t w = 1; w < 64; w++) {
            split *s = split_mem_ex(mixes[m], len, w, 0, 0);
            for (int i = 0; i < s->n; i++) {
                bool found = false;
                for (int k = 0; k < ref->n && !found; k++)
                    found = s->offset[i] == ref->offset[k] && strcmp(s->text[i], ref->text[k]) == 0;
                assert_true(found);
            }
            split_free(s);
        }
        split_free(ref);
    }
}

static void assert_same_split(const split *a, const split *b)
{
    assert_int_equal(a->n, b->n);
    for (int i = 0; i < a->n; i++) {
        assert_string_equal(a->text[i], b->text[i]);
        assert_int_equal(a->offset[i], b->offset[i]);
        assert_int_equal(a->line[i], b->line[i]);
        assert_int_equal(a->multiline[i], b->multiline[i]);
    }
    assert_int_equal(a->diag.errors_total, b->diag.errors_total);
    assert_int_equal(a->rc, b->rc);
}

/* The splitter takes its 64-byte block masks with AVX2 where the CPU has it and with SSE2
 * where COINHOUND_SIMD=sse2 says so (or the CPU lacks it): both must cut an S3 envelope
 * alike, whatever falls on a block boundary (quotes, escapes, brackets inside strings,
 * newlines), and report the damaged record between good ones with its line. */
static void test_avx2_and_sse2_block_masks_split_alike(void **state)
{
    (void)state;
    char *doc = malloc(1 << 16);
    assert_non_null(doc);
    for (size_t shift = 0; shift < 64; shift++) {
        size_t n = 0;
        n += (size_t)sprintf(doc + n, "{\"Records\":[%*s", (int)shift, "");
        for (int i = 0; i < 12; i++) {
            if (i == 5) /* damaged: a closing bracket missing, then the next record's */
                n += (size_t)sprintf(doc + n, "{\"bad\":[{\"x\":1},\n");
            n += (size_t)sprintf(doc + n,
                                 "{\"eventID\":\"e%d\",\"s\":\"q\\\"}]{[\\\\\",\"t\":[1,{\"u\":"
                                 "\"%.*s\\\\\\\"\"}],\n\"v\":{\"w\":\"}\"}}%s",
                                 i, i * 7,
                                 "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQR"
                                 "STUVWXYZabcdefghijklmnopqrstuvwxyz",
                                 i < 11 ? ",\n" : "");
        }
        n += (size_t)sprintf(doc + n, "]}\n");
        unsetenv("COINHOUND_SIMD");
        split *fast = split_mem_ex(doc, n, 0, 0, 0);
        setenv("COINHOUND_SIMD", "sse2", 1);
        split *sse2 = split_mem_ex(doc, n, 0, 0, 0);
        split *small = split_mem_ex(doc, n, 97, 0, 0);
        unsetenv("COINHOUND_SIMD");
        assert_same_split(fast, sse2);
        assert_true(fast->n >= 5);
        assert_true(fast->diag.errors_total >= 1);
        assert_non_null(strstr(fast->text[0], "\"e0\""));
        assert_int_equal(fast->line[1], 3); /* record 0 holds a newline and ends one */
        split *small_fast = split_mem_ex(doc, n, 97, 0, 0);
        assert_same_split(small_fast, small);
        split_free(small_fast);
        split_free(small);
        split_free(fast);
        split_free(sse2);
    }
    free(doc);
}

static void test_gzip_input_is_split_like_plain(void **state)
{
    (void)state;
    size_t len = strlen(mixes[1]), zl;
    unsigned char *z = gzip_mem(mixes[1], len, &zl);
    split *ref = split_mem_ex(mixes[1], len, 0, 0, 0);
    split *s = split_mem_ex(z, zl, 100, 0, 0);
    assert_int_equal(s->n, ref->n);
    for (int i = 0; i < s->n; i++)
        assert_string_equal(s->text[i], ref->text[i]);
    split_free(s);
    split_free(ref);
    free(z);
}

/* A gzip'd JSON Lines file whose last line has no newline, followed by garbage: the last line
 * is a record, then one gzip_error, with zlib and with libdeflate and whatever the window. The
 * failure may come with the member's bytes or one refill later (libdeflate inflates the member
 * whole; zlib, when the member's end fills a refill exactly): the last line was lost then. */
static void test_jsonl_last_line_before_gzip_trailing_garbage_is_kept(void **state)
{
    (void)state;
    static const char text[] = "{\"n\":1}\n{\"n\":2}\n{\"n\":3,\"last\":true}";
    size_t zl;
    unsigned char *z = gzip_mem(text, strlen(text), &zl);
    unsigned char *buf = malloc(zl + 8);
    memcpy(buf, z, zl);
    memcpy(buf + zl, "garbage!", 8);
    static const char *const inflaters[] = {"zlib", "libdeflate"};
    /* 0: the default; then smaller, one of them ending a refill exactly at the member's end */
    static const size_t windows[] = {0, 4096, sizeof text - 1, 64, 40};
    for (size_t k = 0; k < 2; k++) {
        for (size_t w = 0; w < sizeof windows / sizeof windows[0]; w++) {
            setenv("COINHOUND_INFLATE", inflaters[k], 1);
            split *s = split_mem_ex(buf, zl + 8, windows[w], 0, 0);
            unsetenv("COINHOUND_INFLATE");
            assert_int_equal(s->n, 3);
            assert_string_equal(s->text[2], "{\"n\":3,\"last\":true}");
            assert_int_equal(s->offset[2], 16);
            assert_int_equal(s->line[2], 3);
            assert_int_equal(reason(s, "gzip_error"), 1);
            assert_int_equal(s->diag.errors_total, 1);
            assert_true(s->rc < 0);
            split_free(s);
        }
    }
    free(buf);
    free(z);
}

static void test_damaged_gzip_yields_records_before_damage_then_one_gzip_error(void **state)
{
    (void)state;
    char *t = malloc(200000);
    size_t len = 0;
    for (int i = 0; i < 2000; i++)
        len +=
            (size_t)sprintf(t + len, "{\"n\":%d,\"pad\":\"%08x%08x\"}\n", i, i * 7919, i * 104729);
    size_t zl;
    unsigned char *z = gzip_mem(t, len, &zl);
    split *s = split_mem_ex(z, zl / 2, 0, 0, 0);
    assert_true(s->n > 0 && s->n < 2000);
    assert_true(s->rc < 0);
    assert_int_equal(reason(s, "gzip_error"), 1);
    assert_int_equal(s->diag.errors_total, 1);
    for (int i = 0; i < s->n; i++) { /* every one complete and in order */
        char want[64];
        snprintf(want, sizeof want, "{\"n\":%d,", i);
        assert_memory_equal(s->text[i], want, strlen(want));
    }
    split_free(s);
    free(z);
    free(t);
}

/* ---- the shared samples ---- */

static int split_file(const char *path, ch_diag *d)
{
    ch_input *in = NULL;
    ch_error err = {0};
    assert_int_equal(ch_input_open(&in, path, 0, &err), 0);
    ch_jsonrec *r = ch_jsonrec_new(in, 0);
    ch_jsonrec_rec rec;
    int n = 0, rc;
    while ((rc = ch_jsonrec_next(r, d, CH_DS_CLOUDTRAIL, &rec)) == 1)
        n++;
    assert_int_equal(rc, 0);
    ch_jsonrec_free(r);
    ch_input_close(in);
    return n;
}

/* Records in every *.json of dir (which must exist). */
static int split_dir(const char *dir, ch_diag *d, int *files)
{
    DIR *dh = opendir(dir);
    if (dh == NULL)
        fail_msg("%s cannot be opened", dir);
    struct dirent *e;
    int total = 0;
    *files = 0;
    while ((e = readdir(dh)) != NULL) {
        size_t nl = strlen(e->d_name);
        if (nl < 5 || strcmp(e->d_name + nl - 5, ".json") != 0)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        total += split_file(path, d);
        (*files)++;
    }
    closedir(dh);
    return total;
}

static void test_corpus_stratus_detonation_arrays_hold_310_records(void **state)
{
    (void)state;
    ch_diag d;
    ch_diag_init(&d, NULL);
    int files;
    ch_test_need_corpora(CH_CORPORA_DIR "/cloudtrail/stratus_red_team_detonation_logs");
    int n = split_dir(CH_CORPORA_DIR "/cloudtrail/stratus_red_team_detonation_logs", &d, &files);
    assert_int_equal(files, 35);
    assert_int_equal(n, 310);
    assert_int_equal(d.errors_total, 0);
}

static void test_corpus_cloudtrail2sightings_envelopes_hold_15_records(void **state)
{
    (void)state;
    ch_diag d;
    ch_diag_init(&d, NULL);
    int files;
    /* 10 + 1 + 3 + 1 records; ec2-user-data misses the comma between records twice (lines
     * 112 and 201): reported, and every record is still kept. */
    ch_test_need_corpora(CH_CORPORA_DIR "/cloudtrail/cloudtrail2sightings");
    int n = split_dir(CH_CORPORA_DIR "/cloudtrail/cloudtrail2sightings", &d, &files);
    assert_int_equal(files, 4);
    assert_int_equal(n, 15);
    assert_int_equal(ch_diag_count(&d, "json_syntax"), 2);
    assert_int_equal(d.errors_total, 2);
}

static void test_corpus_stratus_jsonl_gzipped_through_small_window_holds_310(void **state)
{
    (void)state;
    const char *path = CH_CORPORA_DIR
        "/cloudtrail/stratus_red_team_detonation_logs/stratus_detonation_logs_all.jsonl";
    ch_test_need_corpora(path);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)n);
    assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    size_t zl;
    unsigned char *z = gzip_mem(text, (size_t)n, &zl);
    /* A window of 64 KiB: many refills, and records crossing them. */
    split *s = split_mem_ex(z, zl, 64 << 10, 0, 0);
    assert_int_equal(s->n, 310);
    assert_int_equal(s->line[309], 310);
    assert_int_equal(s->diag.errors_total, 0);
    split_free(s);
    free(z);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jsonl_yields_one_record_per_line_with_lines_and_offsets),
        cmocka_unit_test(test_jsonl_unbalanced_line_costs_only_that_line),
        cmocka_unit_test(test_jsonl_crlf_lines_and_missing_final_newline),
        cmocka_unit_test(test_jsonl_line_that_is_not_an_object_is_reported),
        cmocka_unit_test(test_top_level_array_of_objects),
        cmocka_unit_test(test_pretty_printed_array_marks_records_multiline),
        cmocka_unit_test(test_array_missing_comma_is_reported_and_both_records_kept),
        cmocka_unit_test(test_array_non_object_elements_are_reported_and_skipped),
        cmocka_unit_test(test_records_envelope_yields_its_elements),
        cmocka_unit_test(test_records_not_first_key_other_keys_skipped),
        cmocka_unit_test(test_records_key_without_array_is_an_ordinary_record),
        cmocka_unit_test(test_one_envelope_per_line),
        cmocka_unit_test(test_jsonl_open_envelope_array_ends_with_its_line_whatever_the_window),
        cmocka_unit_test(test_sequence_of_pretty_printed_objects),
        cmocka_unit_test(test_truncated_last_record_reported_after_complete_ones),
        cmocka_unit_test(test_nesting_100000_deep_is_too_deep_not_a_crash),
        cmocka_unit_test(test_garbage_between_records_is_reported_once_per_run),
        cmocka_unit_test(test_empty_and_blank_inputs_yield_nothing_silently),
        cmocka_unit_test(test_utf8_bom_is_skipped),
        cmocka_unit_test(test_utf8_bom_split_across_gzip_members_is_skipped),
        cmocka_unit_test(test_escaped_quotes_and_backslashes_inside_strings),
        cmocka_unit_test(test_record_too_large_is_skipped_and_the_next_kept),
        cmocka_unit_test(test_records_spanning_window_refills_match_a_big_window),
        cmocka_unit_test(test_avx2_and_sse2_block_masks_split_alike),
        cmocka_unit_test(test_gzip_input_is_split_like_plain),
        cmocka_unit_test(test_damaged_gzip_yields_records_before_damage_then_one_gzip_error),
        cmocka_unit_test(test_jsonl_last_line_before_gzip_trailing_garbage_is_kept),
        cmocka_unit_test(test_corpus_stratus_detonation_arrays_hold_310_records),
        cmocka_unit_test(test_corpus_cloudtrail2sightings_envelopes_hold_15_records),
        cmocka_unit_test(test_corpus_stratus_jsonl_gzipped_through_small_window_holds_310),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
