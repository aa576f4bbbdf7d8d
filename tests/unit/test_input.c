/*
 * test_input.c - the input window: gzip sniffed by content, concatenated members, damaged
 * streams that deliver what came before the damage, open failures, the window cap and its
 * padding, and the line reader (CRLF, last line, too-long lines including one of 100 MB read
 * with flat memory).
 *
 * Files are written to a fresh directory under $TMPDIR (or /tmp) and removed afterwards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core/json.h"
#include "ingest/input.h"

static char tmpdir[256];

static int setup_dir(void **state)
{
    (void)state;
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/ch_input_XXXXXX", base && *base ? base : "/tmp");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_dir(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *tmp_path(const char *name)
{
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    return p;
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

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

/* Some text that does not compress to nothing: numbered lines with pseudo-random hex. */
static char *sample_text(size_t lines, size_t *len)
{
    char *t = malloc(lines * 48 + 1);
    size_t n = 0;
    uint32_t x = 12345;
    for (size_t i = 0; i < lines; i++) {
        x = x * 1103515245u + 12345u;
        n += (size_t)sprintf(t + n, "line %06zu %08x %08x\n", i, x, x ^ 0x5bd1e995u);
    }
    *len = n;
    return t;
}

/* Read an input to its end (or failure) into a malloc'd buffer; returns the final code. */
static int drain(ch_input *in, char **out, size_t *out_len, ch_error *err)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    int rc;
    for (;;) {
        size_t len;
        const char *d = ch_input_data(in, &len);
        if (n + len > cap) {
            while (n + len > cap)
                cap *= 2;
            char *nb = realloc(buf, cap);
            assert_non_null(nb);
            buf = nb;
        }
        memcpy(buf + n, d, len);
        n += len;
        ch_input_consume(in, len);
        rc = ch_input_more(in, err);
        if (rc <= 0)
            break;
    }
    *out = buf;
    *out_len = n;
    return rc;
}

static void test_gzip_detected_by_magic_not_by_name(void **state)
{
    (void)state;
    size_t len, zl;
    char *text = sample_text(5000, &len);
    unsigned char *z = gzip_mem(text, len, &zl);
    write_file(tmp_path("really_gzip.json"), z, zl);
    write_file(tmp_path("really_plain.gz"), text, len);

    const char *names[] = {"really_gzip.json", "really_plain.gz"};
    for (int i = 0; i < 2; i++) {
        ch_input *in = NULL;
        ch_error err = {0};
        assert_int_equal(ch_input_open(&in, tmp_path(names[i]), 0, &err), 0);
        assert_int_equal(ch_input_is_gzip(in), i == 0);
        char *got;
        size_t gl;
        assert_int_equal(drain(in, &got, &gl, &err), 0);
        assert_int_equal(gl, len);
        assert_memory_equal(got, text, len);
        assert_int_equal(ch_input_bytes(in), len);
        assert_int_equal(ch_input_raw_bytes(in), i == 0 ? zl : len);
        assert_true(ch_input_eof(in));
        free(got);
        ch_input_close(in);
    }
    free(z);
    free(text);
}

static void test_concatenated_gzip_members_read_as_one_stream(void **state)
{
    (void)state;
    size_t la, lb, za, zb;
    char *a = sample_text(3000, &la), *b = sample_text(7, &lb);
    unsigned char *ga = gzip_mem(a, la, &za), *gb = gzip_mem(b, lb, &zb);
    unsigned char *cat = malloc(za + zb + za);
    memcpy(cat, ga, za);
    memcpy(cat + za, gb, zb);
    memcpy(cat + za + zb, ga, za);
    write_file(tmp_path("members.gz"), cat, za + zb + za);

    for (int from_mem = 0; from_mem < 2; from_mem++) {
        ch_input *in = NULL;
        ch_error err = {0};
        if (from_mem)
            assert_int_equal(ch_input_open_mem(&in, "m", cat, za + zb + za, 4096, &err), 0);
        else
            assert_int_equal(ch_input_open(&in, tmp_path("members.gz"), 4096, &err), 0);
        char *got;
        size_t gl;
        assert_int_equal(drain(in, &got, &gl, &err), 0);
        assert_int_equal(gl, la + lb + la);
        assert_memory_equal(got, a, la);
        assert_memory_equal(got + la, b, lb);
        assert_memory_equal(got + la + lb, a, la);
        free(got);
        ch_input_close(in);
    }
    free(cat);
    free(ga);
    free(gb);
    free(a);
    free(b);
}

static void test_truncated_gzip_delivers_prefix_then_error_naming_offset(void **state)
{
    (void)state;
    size_t len, zl;
    char *text = sample_text(20000, &len);
    unsigned char *z = gzip_mem(text, len, &zl);
    size_t cut = zl / 2;
    write_file(tmp_path("cut.json.gz"), z, cut);

    ch_input *in = NULL;
    ch_error err = {0};
    assert_int_equal(ch_input_open(&in, tmp_path("cut.json.gz"), 0, &err), 0);
    char *got;
    size_t gl;
    assert_int_equal(drain(in, &got, &gl, &err), CH_EPARSE);
    /* Roughly half the text, and exactly a prefix of it. */
    assert_true(gl > len / 4 && gl < len);
    assert_memory_equal(got, text, gl);
    char want[128];
    snprintf(want, sizeof want, "gzip stream truncated at compressed offset %zu", cut);
    assert_non_null(strstr(err.msg, want));
    /* Sticky. */
    ch_error again = {0};
    assert_int_equal(ch_input_more(in, &again), CH_EPARSE);
    assert_string_equal(again.msg, err.msg);
    assert_true(ch_input_eof(in));
    free(got);
    ch_input_close(in);
    free(z);
    free(text);
}

/* Fuzz finding (issue 15, fuzz_input): when a call filled the window exactly as the last
 * compressed byte went in, zlib still held output (the rest of a match, or the member's end)
 * and the next refill called the stream truncated without asking zlib for it: a byte or more
 * before the damage was lost, depending on the window. Every window must deliver the same
 * bytes before the damage, and a whole stream must end cleanly through any window. */
static void test_gzip_output_before_the_end_does_not_depend_on_the_window(void **state)
{
    (void)state;
    size_t len, zl;
    char *text = sample_text(40, &len);
    unsigned char *z = gzip_mem(text, len, &zl);
    for (size_t cut = zl / 2; cut <= zl; cut++) {
        char *ref = NULL;
        size_t rl = 0;
        int ref_rc = 0;
        for (size_t w = 1; w <= 64; w++) {
            ch_input *in = NULL;
            ch_error err = {0};
            assert_int_equal(ch_input_open_mem(&in, "mem", z, cut, w, &err), 0);
            char *got;
            size_t gl;
            int rc = drain(in, &got, &gl, &err);
            ch_input_close(in);
            if (cut == zl) {
                assert_int_equal(rc, 0);
                assert_int_equal(gl, len);
            } else {
                assert_int_equal(rc, CH_EPARSE);
            }
            assert_memory_equal(got, text, gl);
            if (ref == NULL) {
                ref = got;
                rl = gl;
                ref_rc = rc;
                continue;
            }
            if (gl != rl || rc != ref_rc)
                fail_msg("cut at %zu of %zu: window %zu delivers %zu bytes (%d), window 1 %zu (%d)",
                         cut, zl, w, gl, rc, rl, ref_rc);
            free(got);
        }
        free(ref);
    }
    free(z);
    free(text);
}

static void test_corrupt_gzip_data_reports_zlib_reason_and_offset(void **state)
{
    (void)state;
    size_t len, zl;
    char *text = sample_text(20000, &len);
    unsigned char *z = gzip_mem(text, len, &zl);
    for (size_t i = zl / 2; i < zl / 2 + 64; i++)
        z[i] ^= 0xA5;
    ch_input *in = NULL;
    ch_error err = {0};
    assert_int_equal(ch_input_open_mem(&in, "bad", z, zl, 0, &err), 0);
    char *got;
    size_t gl;
    assert_int_equal(drain(in, &got, &gl, &err), CH_EPARSE);
    assert_true(gl < len);
    assert_non_null(strstr(err.msg, "at compressed offset"));
    free(got);
    ch_input_close(in);

    /* The CRC of an otherwise good stream: everything delivered, then the error. */
    unsigned char *z2 = gzip_mem(text, len, &zl);
    z2[zl - 6] ^= 1;
    assert_int_equal(ch_input_open_mem(&in, "crc", z2, zl, 0, &err), 0);
    assert_int_equal(drain(in, &got, &gl, &err), CH_EPARSE);
    assert_int_equal(gl, len);
    assert_non_null(strstr(err.msg, "incorrect data check"));
    free(got);
    ch_input_close(in);
    free(z2);
    free(z);
    free(text);
}

static void test_bytes_after_last_gzip_member_zeros_ignored_garbage_reported(void **state)
{
    (void)state;
    size_t len, zl;
    char *text = sample_text(100, &len);
    unsigned char *z = gzip_mem(text, len, &zl);
    unsigned char *padded = calloc(1, zl + 512);
    memcpy(padded, z, zl);
    ch_input *in = NULL;
    ch_error err = {0};
    char *got;
    size_t gl;
    assert_int_equal(ch_input_open_mem(&in, "zeros", padded, zl + 512, 0, &err), 0);
    assert_int_equal(drain(in, &got, &gl, &err), 0);
    assert_int_equal(gl, len);
    free(got);
    ch_input_close(in);

    memcpy(padded + zl, "junk", 4);
    assert_int_equal(ch_input_open_mem(&in, "junk", padded, zl + 4, 0, &err), 0);
    assert_int_equal(drain(in, &got, &gl, &err), CH_EPARSE);
    assert_int_equal(gl, len);
    assert_non_null(strstr(err.msg, "trailing garbage"));
    free(got);
    ch_input_close(in);
    free(padded);
    free(z);
    free(text);
}

static void test_open_of_unreadable_paths_fails_with_eio_and_reason(void **state)
{
    (void)state;
    ch_input *in = (ch_input *)1;
    ch_error err = {0};
    assert_int_equal(ch_input_open(&in, tmp_path("does-not-exist.json"), 0, &err), CH_EIO);
    assert_null(in);
    assert_non_null(strstr(err.msg, strerror(ENOENT)));
    assert_non_null(strstr(err.msg, "does-not-exist.json"));

    assert_int_equal(ch_input_open(&in, tmpdir, 0, &err), CH_EIO);
    assert_non_null(strstr(err.msg, strerror(EISDIR)));

    if (geteuid() != 0) { /* root reads anything */
        write_file(tmp_path("secret.json"), "{}", 2);
        chmod(tmp_path("secret.json"), 0);
        assert_int_equal(ch_input_open(&in, tmp_path("secret.json"), 0, &err), CH_EIO);
        assert_non_null(strstr(err.msg, strerror(EACCES)));
    }
}

static void test_empty_file_is_eof_at_once(void **state)
{
    (void)state;
    write_file(tmp_path("empty.json"), "", 0);
    ch_input *in = NULL;
    ch_error err = {0};
    assert_int_equal(ch_input_open(&in, tmp_path("empty.json"), 0, &err), 0);
    assert_false(ch_input_is_gzip(in));
    assert_int_equal(ch_input_fill(in, 100, &err), 0);
    assert_int_equal(ch_input_more(in, &err), 0);
    assert_true(ch_input_eof(in));
    ch_input_close(in);
}

static void test_window_never_holds_more_than_max_window(void **state)
{
    (void)state;
    size_t len;
    char *text = sample_text(1000, &len);
    ch_input *in = NULL;
    ch_error err = {0};
    assert_int_equal(ch_input_open_mem(&in, "w", text, len, 100, &err), 0);
    int rc;
    while ((rc = ch_input_more(in, &err)) > 0)
        ;
    assert_int_equal(rc, CH_ELIMIT);
    size_t n;
    const char *d = ch_input_data(in, &n);
    assert_int_equal(n, 100);
    assert_memory_equal(d, text, 100);
    /* Consuming makes room again; offsets follow. */
    ch_input_consume(in, 30);
    assert_int_equal(ch_input_offset(in), 30);
    assert_int_equal(ch_input_more(in, &err), 30);
    d = ch_input_data(in, &n);
    assert_memory_equal(d, text + 30, 100);
    assert_int_equal(ch_input_bytes(in), 130);
    ch_input_close(in);
    free(text);
}

static void test_padding_after_window_data_is_readable_and_zero(void **state)
{
    (void)state;
    size_t len;
    char *text = sample_text(50000, &len);
    ch_input *in = NULL;
    ch_error err = {0};
    assert_int_equal(ch_input_open_mem(&in, "p", text, len, 1 << 20, &err), 0);
    for (;;) {
        size_t n;
        const char *d = ch_input_data(in, &n);
        for (size_t i = 0; i < CH_JSON_PADDING; i++)
            assert_int_equal(d[n + i], 0);
        ch_input_consume(in, n / 2 + 1);
        if (ch_input_more(in, &err) <= 0 && ch_input_eof(in)) {
            (void)ch_input_data(in, &n);
            if (n == 0)
                break;
        }
    }
    ch_input_close(in);
    free(text);
}

static void test_fill_sniffs_without_consuming(void **state)
{
    (void)state;
    size_t len, zl;
    char *text = sample_text(10000, &len);
    unsigned char *z = gzip_mem(text, len, &zl);
    ch_input *in = NULL;
    ch_error err = {0};
    assert_int_equal(ch_input_open_mem(&in, "f", z, zl, 0, &err), 0);
    assert_true(ch_input_is_gzip(in));
    assert_true(ch_input_fill(in, 4096, &err) >= 4096);
    size_t n;
    const char *d = ch_input_data(in, &n);
    assert_memory_equal(d, text, 4096);
    assert_int_equal(ch_input_offset(in), 0);
    /* Asking for more than there is returns all there is. */
    assert_int_equal(ch_input_fill(in, len * 2, &err), (long)len);
    ch_input_close(in);
    free(z);
    free(text);
}

typedef struct lines {
    int n, too_long;
    char *text[64];
    uint64_t no[64], long_no[64];
    int rc;
} lines;

static lines *read_lines(const char *data, size_t len, size_t max_window, size_t max_line)
{
    lines *l = calloc(1, sizeof *l);
    ch_input *in = NULL;
    ch_error err = {0};
    assert_int_equal(ch_input_open_mem(&in, "l", data, len, max_window, &err), 0);
    for (;;) {
        const char *p;
        size_t n;
        uint64_t no;
        int rc = ch_input_line(in, max_line, &p, &n, &no, &err);
        if (rc == CH_ELIMIT) {
            l->long_no[l->too_long++] = no;
            continue;
        }
        l->rc = rc;
        if (rc != 1)
            break;
        assert_true(l->n < 64);
        l->text[l->n] = strndup(p, n);
        l->no[l->n++] = no;
    }
    ch_input_close(in);
    return l;
}

static void lines_free(lines *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->text[i]);
    free(l);
}

static void test_lines_strip_crlf_and_keep_last_line_without_newline(void **state)
{
    (void)state;
    const char *t = "one\r\ntwo\n\nfour\r\nfive";
    for (size_t w = 1; w < 32; w++) {
        lines *l = read_lines(t, strlen(t), w < 8 ? 8 : w, 100);
        assert_int_equal(l->n, 5);
        assert_string_equal(l->text[0], "one");
        assert_string_equal(l->text[1], "two");
        assert_string_equal(l->text[2], "");
        assert_string_equal(l->text[3], "four");
        assert_string_equal(l->text[4], "five");
        assert_int_equal(l->no[4], 5);
        assert_int_equal(l->too_long, 0);
        assert_int_equal(l->rc, 0);
        lines_free(l);
    }
}

static void test_long_lines_reported_once_with_their_number_neighbours_kept(void **state)
{
    (void)state;
    const char *t = "short\n0123456789abcdef0123456789\nok\nexactly10c\n"
                    "0123456789abcdef0123456789abcdef0123456789abcdef\nlast-but-too-long";
    for (size_t w = 8; w < 80; w++) {
        lines *l = read_lines(t, strlen(t), w, 10);
        /* A 10-byte line needs 11 bytes of window to show its newline; below that it is
         * too long for the window, and reported as such. */
        bool fits = w >= 11;
        assert_int_equal(l->n, fits ? 3 : 2);
        assert_string_equal(l->text[0], "short");
        assert_string_equal(l->text[1], "ok");
        assert_int_equal(l->no[1], 3);
        if (fits) {
            assert_string_equal(l->text[2], "exactly10c");
            assert_int_equal(l->no[2], 4);
        }
        assert_int_equal(l->too_long, fits ? 3 : 4);
        assert_int_equal(l->long_no[0], 2);
        assert_int_equal(l->long_no[fits ? 1 : 2], 5);
        assert_int_equal(l->long_no[fits ? 2 : 3], 6);
        lines_free(l);
    }
}

static long max_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static void test_100mb_line_is_skipped_with_flat_memory(void **state)
{
    (void)state;
    const char *path = tmp_path("huge_line.log");
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    char *chunk = malloc(1 << 20);
    memset(chunk, 'x', 1 << 20);
    fputs("first\n", f);
    for (int i = 0; i < 100; i++)
        assert_int_equal(fwrite(chunk, 1, 1 << 20, f), 1 << 20);
    fputs("\nsecond\r\n", f);
    for (int i = 0; i < 100; i++) /* and one without a final newline */
        assert_int_equal(fwrite(chunk, 1, 1 << 20, f), 1 << 20);
    assert_int_equal(fclose(f), 0);
    free(chunk);

    long before = max_rss_kb();
    ch_input *in = NULL;
    ch_error err = {0};
    assert_int_equal(ch_input_open(&in, path, 0, &err), 0);
    const char *p;
    size_t n;
    uint64_t no;
    assert_int_equal(ch_input_line(in, 1 << 20, &p, &n, &no, &err), 1);
    assert_int_equal(n, 5);
    assert_memory_equal(p, "first", 5);
    assert_int_equal(ch_input_line(in, 1 << 20, &p, &n, &no, &err), CH_ELIMIT);
    assert_int_equal(no, 2);
    assert_non_null(strstr(err.msg, ":2: line longer than"));
    assert_int_equal(ch_input_line(in, 1 << 20, &p, &n, &no, &err), 1);
    assert_int_equal(n, 6);
    assert_memory_equal(p, "second", 6);
    assert_int_equal(no, 3);
    assert_int_equal(ch_input_line(in, 1 << 20, &p, &n, &no, &err), CH_ELIMIT);
    assert_int_equal(no, 4);
    assert_int_equal(ch_input_line(in, 1 << 20, &p, &n, &no, &err), 0);
    assert_int_equal(ch_input_bytes(in), 6 + 2 * (100u << 20) + 9);
    ch_input_close(in);
    long grown = max_rss_kb() - before;
    print_message("max RSS grew by %ld KiB reading 200 MiB of long lines\n", grown);
    assert_true(grown < 16 * 1024);
    unlink(path);
}

static void test_mem_input_over_nothing_is_empty(void **state)
{
    (void)state;
    ch_input *in = NULL;
    ch_error err = {0};
    assert_int_equal(ch_input_open_mem(&in, NULL, NULL, 0, 0, &err), 0);
    assert_string_equal(ch_input_name(in), "<memory>");
    assert_int_equal(ch_input_more(in, &err), 0);
    const char *p;
    size_t n;
    uint64_t no;
    assert_int_equal(ch_input_line(in, 10, &p, &n, &no, &err), 0);
    ch_input_close(in);
    ch_input_close(NULL);
}

/* Damage in a gzip'd file: igzip (when built in and asked for, COINHOUND_INFLATE=igzip) meets
 * it at its own point of the block, and the member is inflated again with zlib; libdeflate
 * (COINHOUND_INFLATE=libdeflate) delivers nothing of a member it refuses, which zlib streams. So
 * a file and the same bytes in memory, read by each inflater, deliver the same bytes and the
 * same reason as zlib alone. Damaged second members (the re-read starts at that member, not the
 * file) too. */
static void test_damaged_gzip_file_reads_the_same_with_either_inflater(void **state)
{
    (void)state;
    size_t len, zl, zl2;
    char *text = sample_text(20000, &len);
    unsigned char *z1 = gzip_mem(text, len, &zl);
    unsigned char *z2 = gzip_mem(text, len, &zl2);
    unsigned char *two = malloc(zl + zl2);
    memcpy(two, z1, zl);
    memcpy(two + zl, z2, zl2);
    /* zlib alone (the reference), then igzip and libdeflate, each from a file and memory */
    static const char *const env[] = {"zlib", "igzip", "igzip", "libdeflate", "libdeflate"};
    enum { K = 5 };
    for (int member = 0; member < 2; member++) {
        unsigned char *z = member ? two : z1;
        size_t n = member ? zl + zl2 : zl;
        size_t at = member ? zl + zl2 / 2 : zl / 2;
        for (size_t i = at; i < at + 48; i++)
            z[i] ^= 0x5A;
        write_file(tmp_path("damaged.json.gz"), z, n);
        char *got[K];
        size_t gl[K];
        ch_error err[K] = {{0}};
        for (int k = 0; k < K; k++) {
            ch_input *in = NULL;
            if (env[k] != NULL)
                setenv("COINHOUND_INFLATE", env[k], 1);
            if (k == 2 || k == 4)
                assert_int_equal(ch_input_open_mem(&in, "damaged.json.gz", z, n, 0, &err[k]), 0);
            else
                assert_int_equal(ch_input_open(&in, tmp_path("damaged.json.gz"), 0, &err[k]), 0);
            assert_int_equal(drain(in, &got[k], &gl[k], &err[k]), CH_EPARSE);
#ifdef COINHOUND_HAVE_LIBDEFLATE
            /* the first member of the two is whole and goes through libdeflate */
            assert_int_equal(ch_input_whole_members(in), k >= 3 && member ? 1 : 0);
#endif
            ch_input_close(in);
            unsetenv("COINHOUND_INFLATE");
        }
        /* Bytes decoded from damage before it shows are not the text: only the first
         * member, whole, can be checked against it. */
        assert_true(gl[0] < (member ? 2 * len : len));
        if (member) {
            assert_true(gl[0] >= len);
            assert_memory_equal(got[0], text, len);
        }
        for (int k = 1; k < K; k++) {
            assert_int_equal(gl[k], gl[0]);
            assert_memory_equal(got[k], got[0], gl[0]);
            assert_string_equal(strstr(err[k].msg, "gzip"), strstr(err[0].msg, "gzip"));
        }
        for (int k = 0; k < K; k++)
            free(got[k]);
    }
#ifdef COINHOUND_HAVE_LIBDEFLATE
    assert_string_equal(ch_input_inflater(), "libdeflate"); /* the default */
#else
    assert_string_equal(ch_input_inflater(), "zlib");
#endif
    setenv("COINHOUND_INFLATE", "zlib", 1);
    assert_string_equal(ch_input_inflater(), "zlib");
    setenv("COINHOUND_INFLATE", "libdeflate", 1);
#ifdef COINHOUND_HAVE_LIBDEFLATE
    assert_string_equal(ch_input_inflater(), "libdeflate");
#else
    assert_string_equal(ch_input_inflater(), "zlib");
#endif
    setenv("COINHOUND_INFLATE", "igzip", 1);
#ifdef COINHOUND_HAVE_ISAL
    assert_string_equal(ch_input_inflater(), "igzip");
#else
    assert_string_equal(ch_input_inflater(), "zlib");
#endif
    unsetenv("COINHOUND_INFLATE");
    free(two);
    free(z2);
    free(z1);
    free(text);
}

/* What follows a member inflated whole is known when zlib knows it: garbage fails the input
 * with the member's bytes, the end comes with the next refill (readers decide on ch_input_eof),
 * and the failure gives zlib's code and message. Each refill's size, end flag, code and message
 * are compared with zlib's, file and memory; after two members, what was read and how it ended. */
static void test_end_after_a_whole_member_is_known_as_zlib_knows_it(void **state)
{
    (void)state;
    size_t len, zl;
    char *text = sample_text(2000, &len); /* under one refill: zlib delivers it in one too */
    unsigned char *z = gzip_mem(text, len, &zl);
    unsigned char *buf = calloc(1, 2 * zl + 64);
    enum { T_NONE, T_ZEROS, T_GARBAGE, T_CUT_MEMBER, T_MEMBER, T_N };
    for (int tail = 0; tail < T_N; tail++) {
        memcpy(buf, z, zl);
        size_t n = zl;
        size_t add = 0;
        if (tail == T_ZEROS) {
            add = 37; /* calloc'd */
        } else if (tail == T_GARBAGE) {
            /* ending in what reads as a gzip trailer of a size larger than the member's, so
             * that libdeflate inflates the member whole (it sizes its output by it) */
            uint32_t big = (uint32_t)len + 100;
            unsigned char junk[8] = {'j',
                                     'u',
                                     'n',
                                     'k',
                                     (unsigned char)big,
                                     (unsigned char)(big >> 8),
                                     (unsigned char)(big >> 16),
                                     0};
            add = sizeof junk;
            memcpy(buf + n, junk, add);
        } else if (tail == T_CUT_MEMBER || tail == T_MEMBER) {
            add = tail == T_MEMBER ? zl : zl / 3;
            memcpy(buf + n, z, add);
        }
        n += add;
        write_file(tmp_path("tail.json.gz"), buf, n);
        /* A second member may come in the first refill (zlib) or the next (libdeflate): for
         * those, what counts is everything read and how it ended. */
        bool per_refill = tail < T_CUT_MEMBER;
        for (int src = 0; src < 2; src++) {
            char log[2][4][160];
            size_t total[2] = {0, 0};
            for (int k = 0; k < 2; k++) {
                setenv("COINHOUND_INFLATE", k ? "libdeflate" : "zlib", 1);
                ch_input *in = NULL;
                ch_error err = {0};
                if (src)
                    assert_int_equal(ch_input_open_mem(&in, "tail", buf, n, 0, &err), 0);
                else
                    assert_int_equal(ch_input_open(&in, tmp_path("tail.json.gz"), 0, &err), 0);
                int rc = 1;
                for (int step = 0; step < 4; step++) {
                    if (rc > 0 || per_refill)
                        rc = ch_input_more(in, &err);
                    size_t have;
                    (void)ch_input_data(in, &have);
                    ch_input_consume(in, have);
                    total[k] += have;
                    snprintf(log[k][step], sizeof log[k][step], "%d eof=%d %s",
                             per_refill ? rc : rc > 0, (int)ch_input_eof(in),
                             rc < 0 ? strstr(err.msg, "gzip") : "");
                }
#ifdef COINHOUND_HAVE_LIBDEFLATE
                /* zero padding and a cut member hide the last trailer: those stream */
                if (tail != T_ZEROS && tail != T_CUT_MEMBER)
                    assert_int_equal(ch_input_whole_members(in) > 0, k);
#endif
                ch_input_close(in);
                unsetenv("COINHOUND_INFLATE");
            }
            assert_int_equal(total[1], total[0]);
            if (tail == T_CUT_MEMBER)
                assert_true(total[0] >= len && total[0] < 2 * len);
            else
                assert_int_equal(total[0], tail == T_MEMBER ? 2 * len : len);
            for (int step = per_refill ? 0 : 3; step < 4; step++)
                assert_string_equal(log[1][step], log[0][step]);
            if (tail == T_GARBAGE) /* known with the member's bytes */
                assert_non_null(strstr(log[0][0], "eof=1"));
        }
    }
    free(buf);
    free(z);
    free(text);
}

/* Whole gzip'd files, one member (an S3 object) and several, read with libdeflate give zlib's
 * bytes, from a file and from memory, and each member that fits is inflated whole. */
static void test_whole_members_read_as_zlib_streams_them(void **state)
{
    (void)state;
    size_t len, zl;
    char *text = sample_text(30000, &len);
    unsigned char *z = gzip_mem(text, len, &zl);
    unsigned char *three = malloc(3 * zl);
    for (int i = 0; i < 3; i++)
        memcpy(three + i * zl, z, zl);
    for (int members = 1; members <= 3; members += 2) {
        size_t n = members * zl;
        write_file(tmp_path("whole.json.gz"), three, n);
        char *ref, *got;
        size_t rl, gl;
        ch_error err = {0};
        ch_input *in = NULL;
        setenv("COINHOUND_INFLATE", "zlib", 1);
        assert_int_equal(ch_input_open(&in, tmp_path("whole.json.gz"), 0, &err), 0);
        assert_int_equal(drain(in, &ref, &rl, &err), 0);
        assert_int_equal(ch_input_whole_members(in), 0);
        ch_input_close(in);
        unsetenv("COINHOUND_INFLATE");
        assert_int_equal(rl, members * len);
        for (int mem = 0; mem < 2; mem++) {
            setenv("COINHOUND_INFLATE", "libdeflate", 1);
            if (mem)
                assert_int_equal(ch_input_open_mem(&in, "whole", three, n, 0, &err), 0);
            else
                assert_int_equal(ch_input_open(&in, tmp_path("whole.json.gz"), 0, &err), 0);
            assert_int_equal(drain(in, &got, &gl, &err), 0);
            assert_int_equal(gl, rl);
            assert_memory_equal(got, ref, rl);
#ifdef COINHOUND_HAVE_LIBDEFLATE
            assert_int_equal(ch_input_whole_members(in), (uint64_t)members);
#endif
            assert_int_equal(ch_input_raw_bytes(in), n);
            ch_input_close(in);
            unsetenv("COINHOUND_INFLATE");
            free(got);
        }
        free(ref);
    }
    free(three);
    free(z);
    free(text);
}

/* The merge peeks at each file's first records through a 256 KiB window before reading it for
 * real. A gzip'd file whose member cannot fit such a window streams, and reads only the
 * compressed bytes its first refills need, not the whole object a second time; one whose
 * member fits is still inflated whole. Either way the bytes are those of the file, and a
 * damaged or cut file gives the bytes before the damage and the error (reason and compressed
 * offset) that zlib gives reading it whole from memory. A member larger than the window streams
 * without its CRC-32 (the peek stops long before the trailer); read to its end all the same, a
 * wrong CRC or length in its trailer, also in a trailer cut short, is reported as zlib reports
 * it. */
static void test_small_window_reads_only_the_compressed_bytes_it_inflates(void **state)
{
    (void)state;
    const size_t window = 256 * 1024;
    /* 30000 lines: about 1 MB inflated, 460 KB compressed (the member cannot fit the window);
     * 5000: 170 KB inflated, 80 KB compressed (it fits, but is not in the first read). */
    const size_t lines[] = {30000, 5000};
    for (int c = 0; c < 2; c++) {
        size_t len, zl;
        char *text = sample_text(lines[c], &len);
        unsigned char *z = gzip_mem(text, len, &zl);
        unsigned char *intact = malloc(zl);
        memcpy(intact, z, zl);
        /* intact, 48 bytes changed, cut, the trailer's CRC-32 changed, its length changed, the
         * CRC-32 changed and the last byte cut (zlib fails the check before it misses a byte) */
        for (int damage = 0; damage < 6; damage++) {
            size_t n = damage == 2 ? zl * 2 / 3 : damage == 5 ? zl - 1 : zl;
            if (damage == 1)
                for (size_t i = zl / 2; i < zl / 2 + 48; i++)
                    z[i] ^= 0x5A;
            if (damage >= 3) {
                memcpy(z, intact, zl);
                z[zl - (damage == 4 ? 3 : 8)] ^= 0x01; /* ISIZE's second byte: still > window */
            }
            write_file(tmp_path("peek.json.gz"), z, n);
            ch_error err = {0}, ref_err = {0};
            ch_input *in = NULL;
            assert_int_equal(ch_input_open(&in, tmp_path("peek.json.gz"), window, &err), 0);
            assert_true(ch_input_fill(in, 64 * 1024, &err) >= 64 * 1024);
            if (c == 0) {
                assert_true(ch_input_raw_bytes(in) <= 64 * 1024);
                assert_int_equal(ch_input_whole_members(in), 0);
            } else if (damage == 0) {
#ifdef COINHOUND_HAVE_LIBDEFLATE
                assert_int_equal(ch_input_whole_members(in), 1);
#endif
            }
            char *got, *ref;
            size_t gl, rl;
            int rc = drain(in, &got, &gl, &err);
            ch_input_close(in);
            setenv("COINHOUND_INFLATE", "zlib", 1);
            assert_int_equal(ch_input_open_mem(&in, "peek.json.gz", z, n, 0, &ref_err), 0);
            assert_int_equal(drain(in, &ref, &rl, &ref_err), rc);
            ch_input_close(in);
            unsetenv("COINHOUND_INFLATE");
            assert_int_equal(gl, rl);
            assert_memory_equal(got, ref, rl);
            if (damage == 0) {
                assert_int_equal(rc, 0);
                assert_int_equal(gl, len);
                assert_memory_equal(got, text, len);
            } else {
                assert_int_equal(rc, CH_EPARSE);
                if (damage == 2)
                    assert_true(gl < len);
                assert_non_null(strstr(err.msg, "compressed offset"));
                assert_string_equal(strstr(err.msg, "gzip"), strstr(ref_err.msg, "gzip"));
                if (damage >= 3) {
                    assert_int_equal(gl, len); /* every byte, then the trailer's verdict */
                    assert_non_null(strstr(err.msg, damage == 4 ? "incorrect length check"
                                                                : "incorrect data check"));
                }
            }
            free(got);
            free(ref);
        }
        free(intact);
        free(z);
        free(text);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gzip_detected_by_magic_not_by_name),
        cmocka_unit_test(test_concatenated_gzip_members_read_as_one_stream),
        cmocka_unit_test(test_truncated_gzip_delivers_prefix_then_error_naming_offset),
        cmocka_unit_test(test_gzip_output_before_the_end_does_not_depend_on_the_window),
        cmocka_unit_test(test_corrupt_gzip_data_reports_zlib_reason_and_offset),
        cmocka_unit_test(test_bytes_after_last_gzip_member_zeros_ignored_garbage_reported),
        cmocka_unit_test(test_damaged_gzip_file_reads_the_same_with_either_inflater),
        cmocka_unit_test(test_whole_members_read_as_zlib_streams_them),
        cmocka_unit_test(test_end_after_a_whole_member_is_known_as_zlib_knows_it),
        cmocka_unit_test(test_small_window_reads_only_the_compressed_bytes_it_inflates),
        cmocka_unit_test(test_open_of_unreadable_paths_fails_with_eio_and_reason),
        cmocka_unit_test(test_empty_file_is_eof_at_once),
        cmocka_unit_test(test_window_never_holds_more_than_max_window),
        cmocka_unit_test(test_padding_after_window_data_is_readable_and_zero),
        cmocka_unit_test(test_fill_sniffs_without_consuming),
        cmocka_unit_test(test_lines_strip_crlf_and_keep_last_line_without_newline),
        cmocka_unit_test(test_long_lines_reported_once_with_their_number_neighbours_kept),
        cmocka_unit_test(test_100mb_line_is_skipped_with_flat_memory),
        cmocka_unit_test(test_mem_input_over_nothing_is_empty),
    };
    return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
