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
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "core/buf.h"
#include "core/diag.h"
#include "core/json.h"
#include "ingest/prefetch.h"
#include "parse/merge.h"
#include "parse/source.h"

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

/* Everything a merge yields, as text: per event its time, id, action, user, addresses, raw
 * columns, raw_json and raw_doc written again (the copy a worker made of the document), then
 * the diag's messages and counters. */
static char *merge_text(const char *const *paths, size_t n, unsigned threads, size_t max_open)
{
    char *msgs = NULL, *out = NULL;
    size_t msgs_len = 0, out_len = 0;
    FILE *sink = open_memstream(&msgs, &msgs_len);
    FILE *o = open_memstream(&out, &out_len);
    assert_non_null(sink);
    assert_non_null(o);
    ch_diag diag;
    ch_diag_init(&diag, sink);
    ch_merge *m = ch_merge_new(&diag, NULL, max_open);
    assert_non_null(m);
    ch_merge_set_threads(m, threads);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ch_merge_add(m, paths[i]), 0);
    ch_event *ev;
    const char *from = NULL;
    ch_buf doc;
    ch_buf_init(&doc, 0);
    while (ch_merge_next(m, &ev, &from) == 1) {
        fprintf(o, "%s %lld %.*s %.*s %.*s %.*s|", from, (long long)ev->ts_ms, (int)ev->id.n,
                ev->id.p, (int)ev->action.n, ev->action.p, (int)ev->user_name.n, ev->user_name.p,
                (int)ev->dns_qname.n, ev->dns_qname.p);
        for (uint32_t i = 0; i < ev->raw_count; i++)
            fprintf(o, "%.*s=%.*s ", (int)ev->raw_names[i].n, ev->raw_names[i].p,
                    (int)ev->raw_values[i].n, ev->raw_values[i].p);
        fprintf(o, "|%.*s|", (int)ev->raw_json.n, ev->raw_json.p);
        if (ev->has_raw_doc) {
            ch_buf_clear(&doc);
            assert_int_equal(ch_json_write(ev->raw_doc, &doc), 0);
            fprintf(o, "%.*s", (int)doc.len, doc.data);
        }
        fputc('\n', o);
    }
    ch_merge_free(m);
    ch_buf_free(&doc);
    fflush(sink);
    for (int d = 0; d < CH_DS__COUNT; d++)
        fprintf(o, "ds %d: %llu %llu %llu %llu %llu %llu\n", d,
                (unsigned long long)diag.by_ds[d].records, (unsigned long long)diag.by_ds[d].events,
                (unsigned long long)diag.by_ds[d].skipped, (unsigned long long)diag.by_ds[d].errors,
                (unsigned long long)diag.by_ds[d].files, (unsigned long long)diag.by_ds[d].bytes);
    fprintf(o, "errors %llu unreadable %llu\n%s", (unsigned long long)diag.errors_total,
            (unsigned long long)diag.unreadable_inputs, msgs);
    fclose(o);
    fclose(sink);
    free(msgs);
    return out;
}

/* ch_merge_set_threads: streams read ahead on workers give what one thread gives, byte for
 * byte: the events (their documents were copied out of the parser that made them, 64 events
 * ahead), the bad-record messages in the same order under the same per-reason limit, and the
 * counters. Interleaved files with more bad records than the limit, a flow log, a newest-first
 * file (sorted, then read ahead from its sorted copy), an empty file and a missing one. */
static void test_threads_give_the_results_of_one_thread(void **state)
{
    (void)state;
    static char text[3][60000];
    for (int f = 0; f < 2; f++) {
        size_t at = 0;
        for (int i = 0; i < 300; i++) {
            at += (size_t)snprintf(text[f] + at, sizeof text[f] - at,
                                   "{\"eventTime\":\"2024-08-02T10:%02d:%02dZ\",\"eventName\":"
                                   "\"Run%d\",\"eventID\":\"e%d-%d\",\"userIdentity\":{\"type\":"
                                   "\"IAMUser\",\"userName\":\"u%d\"},\"requestParameters\":{"
                                   "\"k\":[1,2.5,\"s\",null,true]}}\n",
                                   i / 6, (i % 6) * 10 + f, i % 7, f, i, i % 13);
            if (i % 10 == 3)
                at += (size_t)snprintf(text[f] + at, sizeof text[f] - at,
                                       "{\"eventName\": broken %d}\n", i);
        }
    }
    size_t at = 0;
    at += (size_t)snprintf(text[2] + at, sizeof text[2] - at,
                           "version srcaddr dstaddr srcport dstport protocol start end action "
                           "log-status\n");
    for (int i = 0; i < 200; i++)
        at += (size_t)snprintf(text[2] + at, sizeof text[2] - at,
                               i % 17 == 5 ? "2 bad 10.0.0.2 1 2 6 %d %d ACCEPT OK\n"
                                           : "2 10.0.0.1 10.0.0.2 443 50000 6 %d %d ACCEPT OK\n",
                               1722592800 + i * 9, 1722592860 + i * 9);
    char a[512], b[512], c[512], d[512], e[512], g[512];
    snprintf(a, sizeof a, "%s", write_input("t_a.jsonl", text[0]));
    snprintf(b, sizeof b, "%s", write_input("t_b.jsonl", text[1]));
    snprintf(c, sizeof c, "%s", write_input("t_c.log", text[2]));
    snprintf(d, sizeof d, "%s",
             write_input("t_d.jsonl",
                         "{\"eventTime\":\"2024-08-02T12:00:00Z\",\"eventName\":\"C\"}\n"
                         "{\"eventTime\":\"2024-08-02T11:00:00Z\",\"eventName\":\"B\"}\n"
                         "{\"eventTime\":\"2024-08-02T10:00:00Z\",\"eventName\":\"A\"}\n"));
    snprintf(e, sizeof e, "%s", write_input("t_e.jsonl", ""));
    snprintf(g, sizeof g, "%s/t_missing.jsonl", dir);
    const char *paths[] = {a, b, c, d, e, g};
    for (size_t max_open = 2; max_open <= 8; max_open += 6) {
        char *one = merge_text(paths, 6, 1, max_open);
        assert_non_null(strstr(one, "further 'json_syntax' errors are counted"));
        assert_non_null(strstr(one, "\"requestParameters\":{\"k\":[1,2.5,\"s\",null,true]}"));
        for (unsigned t = 2; t <= 4; t++) {
            char *many = merge_text(paths, 6, t, max_open);
            assert_string_equal(one, many);
            free(many);
        }
        free(one);
    }
}

/* With two workers or more, one large JSON Lines file is read in chunks parsed at once
 * (parse/merge.c "chunks"), and still gives what one thread gives: the events in file order,
 * every report with the file's own line and byte offset, in the same order under the same
 * per-reason limit (more syntax errors than it, spread over every chunk), the counters and the
 * bytes. Lines a chunk must not start at come in runs: arrays, garbage, two objects on a line,
 * a pretty-printed record, an envelope, blank lines, an unclosed string. */
static void test_one_large_file_read_in_chunks_gives_the_results_of_one_thread(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/big.jsonl", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    static const char *const bad[] = {
        "{\"eventName\": broken %d}",
        "[1,2,%d]",
        "not a log %d",
        "{\"eventTime\":\"2024-08-02T10:00:00Z\",\"eventName\":\"X\"} {\"n\":%d}",
        "{\"a\":\n %d\n}",
        "{\"Records\":[{\"eventTime\":\"2024-08-02T10:00:00Z\",\"eventName\":\"E%d\"}]}",
        "",
        "{\"unclosed\": \"%d",
        "{\"eventName\":\"NoTime\",\"eventID\":\"t%d\"}",
    };
    long size = 0;
    for (int i = 0; size < (11L << 20); i++) {
        size +=
            fprintf(f,
                    "{\"eventTime\":\"2024-08-02T%02d:%02d:%02dZ\",\"eventName\":\"Describe%d\","
                    "\"eventID\":\"id-%d\",\"userIdentity\":{\"type\":\"IAMUser\",\"userName\":"
                    "\"u%d\"},\"sourceIPAddress\":\"10.%d.%d.%d\",\"requestParameters\":{"
                    "\"k\":[1,2.5,\"s\",null,true],\"pad\":\"%0*d\"}}\n",
                    (i / 3600) % 24, (i / 60) % 60, i % 60, i % 11, i, i % 97, i % 200, i % 250,
                    i % 199, 40 + i % 200, i);
        if (i % 1000 == 500)
            for (int j = 0; j < 3; j++) {
                size += fprintf(f, bad[(i / 1000 + j) % (sizeof bad / sizeof *bad)], i);
                size += fprintf(f, "\n");
            }
    }
    fclose(f);
    const char *paths[] = {path};
    char *one = merge_text(paths, 1, 1, 4);
    assert_non_null(strstr(one, "further 'json_syntax' errors are counted"));
    for (unsigned t = 3; t <= 5; t += 2) {
        ch_diag diag;
        ch_diag_init(&diag, NULL);
        ch_merge *m = ch_merge_new(&diag, NULL, 4);
        assert_non_null(m);
        ch_merge_set_threads(m, t);
        assert_int_equal(ch_merge_add(m, path), 0);
        ch_event *ev;
        while (ch_merge_next(m, &ev, NULL) == 1)
            ;
        ch_merge_stats st;
        ch_merge_stats_get(m, &st);
        ch_merge_free(m);
        assert_true(st.chunks >= 5); /* 11 MiB in chunks of about 2 MiB */
        char *many = merge_text(paths, 1, t, 4);
        assert_string_equal(one, many);
        free(many);
    }
    free(one);
}

/* ch_merge_set_prep: the per-event work runs on the workers for every event they read (plain
 * files, a file sorted first, the chunks of a large file), with each worker's own state made and
 * freed on that worker; what it stores lives as long as the event. */
typedef struct prep_count {
    atomic_int made, freed, events, light;
} prep_count;

static uint64_t text_hash(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h;
}

static void *prep_new(void *ud)
{
    prep_count *c = ud;
    atomic_fetch_add(&c->made, 1);
    return c;
}

static void prep_free(void *ud, void *tctx)
{
    prep_count *c = ud;
    assert_ptr_equal(tctx, c);
    atomic_fetch_add(&c->freed, 1);
}

static void prep_event(void *tctx, ch_event *ev, ch_arena *arena)
{
    prep_count *c = tctx;
    atomic_fetch_add(&c->events, 1);
    ev->prep.record_id = text_hash(ev->raw_json.p, ev->raw_json.n);
    char *copy = ch_arena_alloc(arena, ev->action.n + 1);
    assert_non_null(copy);
    memcpy(copy, ev->action.p, ev->action.n);
    ev->prep.line = (ch_sv){copy, ev->action.n};
    ev->prep.done |= CH_PREP_ID;
}

/* What a worker behind the consumer does instead (ch_prefetch_prep.event_light): the identity
 * without the line, which the consumer then makes itself. */
static void prep_event_light(void *tctx, ch_event *ev, ch_arena *arena)
{
    (void)arena;
    prep_count *c = tctx;
    atomic_fetch_add(&c->light, 1);
    ev->prep.record_id = text_hash(ev->raw_json.p, ev->raw_json.n);
    ev->prep.done |= CH_PREP_ID;
}

static void test_workers_prepare_every_event_they_read(void **state)
{
    (void)state;
    char big[512], sorted[512];
    snprintf(big, sizeof big, "%s/prep_big.jsonl", dir);
    FILE *f = fopen(big, "w");
    assert_non_null(f);
    long size = 0;
    int nbig = 0;
    for (; size < (5L << 20); nbig++)
        size += fprintf(f,
                        "{\"eventTime\":\"2024-08-02T%02d:%02d:%02dZ\",\"eventName\":\"Get%d\","
                        "\"eventID\":\"p-%d\",\"requestParameters\":{\"pad\":\"%0*d\"}}\n",
                        (nbig / 3600) % 24, (nbig / 60) % 60, nbig % 60, nbig % 13, nbig,
                        60 + nbig % 300, nbig);
    fclose(f);
    snprintf(sorted, sizeof sorted, "%s",
             write_input("prep_newest_first.jsonl",
                         "{\"eventTime\":\"2024-08-02T12:00:00Z\",\"eventName\":\"C\"}\n"
                         "{\"eventTime\":\"2024-08-02T11:00:00Z\",\"eventName\":\"B\"}\n"
                         "{\"eventTime\":\"2024-08-02T10:00:00Z\",\"eventName\":\"A\"}\n"));
    const char *paths[] = {big, sorted};
    for (unsigned t = 2; t <= 4; t += 2) {
        prep_count c;
        atomic_init(&c.made, 0);
        atomic_init(&c.freed, 0);
        atomic_init(&c.events, 0);
        atomic_init(&c.light, 0);
        ch_prefetch_prep prep = {.thread_new = prep_new,
                                 .thread_free = prep_free,
                                 .event = prep_event,
                                 .event_light = prep_event_light,
                                 .ud = &c};
        ch_diag diag;
        ch_diag_init(&diag, NULL);
        ch_merge *m = ch_merge_new(&diag, NULL, 4);
        assert_non_null(m);
        ch_merge_set_threads(m, t);
        ch_merge_set_prep(m, &prep);
        for (size_t i = 0; i < 2; i++)
            assert_int_equal(ch_merge_add(m, paths[i]), 0);
        ch_event *ev;
        int n = 0;
        while (ch_merge_next(m, &ev, NULL) == 1) {
            n++;
            assert_true(ev->prep.done & CH_PREP_ID);
            assert_int_equal(ev->prep.record_id, text_hash(ev->raw_json.p, ev->raw_json.n));
            /* Prepared whole, or lightly (no line): never half of one and half of the other. */
            if (ev->prep.line.p != NULL) {
                assert_int_equal(ev->prep.line.n, ev->action.n);
                assert_memory_equal(ev->prep.line.p, ev->action.p, ev->action.n);
            }
        }
        ch_merge_stats st;
        ch_merge_stats_get(m, &st);
        ch_merge_free(m);
        assert_int_equal(n, nbig + 3);
        assert_true(atomic_load(&c.events) + atomic_load(&c.light) >= n);
        assert_int_equal(st.sorted_files, 1);
        if (t == 4)
            assert_true(st.chunks >= 2);
        assert_int_equal(atomic_load(&c.made), (int)t - 1);
        assert_int_equal(atomic_load(&c.freed), (int)t - 1);
    }
}

/* A gzip'd S3 object ({"Records":[...]}, one member) of n CloudTrail records a minute apart from
 * minute m0, newest first when reversed. */
static void write_s3_object(const char *name, int m0, int n, bool reversed)
{
    ch_buf t;
    ch_buf_init(&t, 0);
    assert_int_equal(ch_buf_adds(&t, "{\"Records\":["), 0);
    for (int i = 0; i < n; i++) {
        int k = m0 + (reversed ? n - 1 - i : i);
        char rec[256];
        int len =
            snprintf(rec, sizeof rec,
                     "%s{\"eventVersion\":\"1.08\",\"eventTime\":\"2024-08-02T%02d:%02d:00Z\","
                     "\"eventSource\":\"ec2.amazonaws.com\",\"eventName\":\"DescribeRegions\"}",
                     i ? "," : "", k / 60, k % 60);
        assert_int_equal(ch_buf_add(&t, rec, (size_t)len), 0);
    }
    assert_int_equal(ch_buf_adds(&t, "]}"), 0);
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    gzFile g = gzopen(path, "wb");
    assert_non_null(g);
    assert_int_equal(gzwrite(g, t.data, (unsigned)t.len), (int)t.len);
    assert_int_equal(gzclose(g), Z_OK);
    ch_buf_free(&t);
}

/* The merge looks at every input's first records before it reads any of them, and a file that
 * is not nearly sorted is sorted first: each of those passes detected the file's type again
 * (every detector over its first 64 KiB: 2.3% of a gzip'd S3 run's instructions, docs/
 * BENCHMARKS.md section 59). The type the peek detected is the one every later pass uses, so two
 * S3 objects and a newest-first one are detected three times, once each, with one thread or
 * three, and give the same events. */
static void test_each_input_type_is_detected_once_however_often_it_is_read(void **state)
{
    (void)state;
    write_s3_object("a.json.gz", 60, 40, false);
    write_s3_object("b.json.gz", 30, 40, false);
    write_s3_object("c.json.gz", 200, 40, true); /* newest first: sorted first */
    for (unsigned threads = 1; threads <= 3; threads += 2) {
        ch_diag diag;
        ch_diag_init(&diag, NULL);
        ch_merge *m = ch_merge_new(&diag, NULL, 4);
        assert_non_null(m);
        ch_merge_set_threads(m, threads);
        const char *names[] = {"a.json.gz", "b.json.gz", "c.json.gz"};
        for (size_t i = 0; i < 3; i++) {
            char path[512];
            snprintf(path, sizeof path, "%s/%s", dir, names[i]);
            assert_int_equal(ch_merge_add(m, path), 0);
        }
        uint64_t before = ch_source_detect_runs();
        ch_event *ev;
        int n = 0;
        int64_t last = INT64_MIN;
        while (ch_merge_next(m, &ev, NULL) == 1) {
            assert_true(ev->ts_ms >= last);
            last = ev->ts_ms;
            n++;
        }
        uint64_t runs = ch_source_detect_runs() - before;
        ch_merge_stats st;
        ch_merge_stats_get(m, &st);
        ch_merge_free(m);
        assert_int_equal(n, 120);
        assert_int_equal(st.sorted_files, 1);
        assert_int_equal(diag.by_ds[CH_DS_CLOUDTRAIL].files, 3);
        assert_int_equal(diag.by_ds[CH_DS_CLOUDTRAIL].events, 120);
        assert_int_equal(diag.errors_total, 0);
        assert_int_equal(runs, 3);
    }
}

/* Streams whose documents the read-ahead slots copy give what one thread gives: CloudTrail
 * records of growing sizes (the slots' copies grow), one of 100 KB among them, EventBridge
 * envelopes and pretty-printed records in an S3 file (raw_json from the stream's own buffer),
 * and Route 53 records, plain and in CloudWatch envelopes (the message's document copied while
 * the envelope's is walked, names lower-cased into the stream's buffer). More records than a
 * ring holds, so that every slot's document goes round more than once. */
static void test_documents_copied_by_the_read_ahead_give_the_results_of_one_thread(void **state)
{
    (void)state;
    char ct[512], r53[512], s3[512];
    snprintf(ct, sizeof ct, "%s/keep_ct.jsonl", dir);
    snprintf(s3, sizeof s3, "%s/keep_s3.json", dir);
    snprintf(r53, sizeof r53, "%s/keep_r53.jsonl", dir);
    FILE *f = fopen(ct, "w");
    assert_non_null(f);
    for (int i = 0; i < 700; i++) {
        int pad = i == 350 ? 100000 : i % 97 * (1 + i / 50);
        if (i % 111 == 5)
            fprintf(f,
                    "{\"version\":\"0\",\"detail-type\":\"AWS API Call via CloudTrail\","
                    "\"detail\":{\"eventTime\":\"2024-08-02T10:%02d:%02dZ\",\"eventName\":"
                    "\"Env%d\",\"eventID\":\"k%d\"}}\n",
                    i / 60, i % 60, i, i);
        else
            fprintf(f,
                    "{\"eventTime\":\"2024-08-02T10:%02d:%02dZ\",\"eventName\":\"Run%d\","
                    "\"eventID\":\"k%d\",\"userIdentity\":{\"type\":\"Root\"},"
                    "\"requestParameters\":{\"pad\":\"%0*d\",\"n\":[1,2.5,null]}}\n",
                    i / 60, i % 60, i, i, pad, i);
    }
    fclose(f);
    f = fopen(r53, "w");
    assert_non_null(f);
    for (int i = 0; i < 400; i++) {
        if (i % 50 == 9) {
            fprintf(f, "{\"messageType\":\"DATA_MESSAGE\",\"logEvents\":[");
            for (int k = 0; k < 3; k++)
                fprintf(f,
                        "%s{\"id\":\"%d\",\"message\":\"{\\\"query_timestamp\\\":\\\"2024-08-02T10:"
                        "%02d:%02dZ\\\",\\\"query_name\\\":\\\"Env%d.Example.COM.\\\",\\\"transport"
                        "\\\":\\\"UDP\\\",\\\"srcaddr\\\":\\\"10.0.0.%d\\\"}\"}",
                        k ? "," : "", k, i / 60, i % 60, k, k + 1);
            fprintf(f, "]}\n");
        } else {
            fprintf(f,
                    "{\"query_timestamp\":\"2024-08-02T10:%02d:%02dZ\",\"query_name\":"
                    "\"Host%d.Pool.Example.\",\"query_type\":\"A\",\"rcode\":\"NOERROR\","
                    "\"transport\":\"%s\",\"srcaddr\":\"10.1.0.%d\",\"answers\":[{\"Rdata\":"
                    "\"192.0.2.%d\"}]}\n",
                    i / 60, i % 60, i, i % 2 ? "TCP" : "udp", i % 250, i % 250);
        }
    }
    fclose(f);
    f = fopen(s3, "w");
    assert_non_null(f);
    fprintf(f, "{\"Records\": [");
    for (int i = 0; i < 300; i++)
        fprintf(f,
                "%s\n  {\n    \"eventTime\": \"2024-08-02T10:%02d:%02dZ\",\n    \"eventName\": "
                "\"Pretty%d\",\n    \"eventID\": \"s%d\"\n  }",
                i ? "," : "", i / 60, i % 60, i, i);
    fprintf(f, "\n]}\n");
    fclose(f);
    const char *paths[] = {ct, r53, s3};
    char *one = merge_text(paths, 3, 1, 4);
    assert_non_null(strstr(one, "env1.example.com"));
    assert_non_null(strstr(one, "host398.pool.example"));
    assert_non_null(
        strstr(one, "|{\"eventTime\":\"2024-08-02T10:00:07Z\",\"eventName\":\"Pretty7\""));
    assert_non_null(strstr(one, "Env5"));
    assert_non_null(strstr(one, "0000000000350\"")); /* the 100 KB record, whole */
    for (unsigned t = 2; t <= 3; t++) {
        char *many = merge_text(paths, 3, t, 4);
        assert_string_equal(one, many);
        free(many);
    }
    free(one);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sorted_copy_is_read_back_with_a_diag_that_outlives_its_open),
        cmocka_unit_test(test_unsorted_flow_log_with_a_header_change_keeps_every_record),
        cmocka_unit_test(test_threads_give_the_results_of_one_thread),
        cmocka_unit_test(test_one_large_file_read_in_chunks_gives_the_results_of_one_thread),
        cmocka_unit_test(test_workers_prepare_every_event_they_read),
        cmocka_unit_test(test_each_input_type_is_detected_once_however_often_it_is_read),
        cmocka_unit_test(test_documents_copied_by_the_read_ahead_give_the_results_of_one_thread),
    };
    return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
