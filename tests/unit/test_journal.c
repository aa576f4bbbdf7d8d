/*
 * test_journal.c - the write-ahead journal: what is appended is read back exactly, a restart
 * goes on where it stopped, a damaged or torn tail is reported and cut with everything before
 * it kept, the size cap refuses without writing, a refused write (the file size limit standing
 * in for a full disk) is never acknowledged nor read, segments behind a checkpoint go away,
 * and concurrent writers share fsyncs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ingest/crc32c.h"
#include "ingest/journal.h"
#include "tmpdir.h"

static char dir[256];

static int mk(void **state)
{
    (void)state;
    return ch_test_tmpdir(dir, sizeof dir, "journal");
}

static int rm(void **state)
{
    (void)state;
    return ch_test_rmdir(dir);
}

static ch_journal *jopen(uint64_t max_bytes, uint64_t seg_bytes, ch_journal_recovery *rec)
{
    ch_journal_opts o = {dir, max_bytes, seg_bytes, 0, CH_JOURNAL_FSYNC_BATCH, 0};
    ch_journal *j = NULL;
    ch_error err = {0};
    int rc = ch_journal_open(&o, &j, rec, &err);
    if (rc < 0)
        fail_msg("open: %s", err.msg);
    return j;
}

static int append1(ch_journal *j, const char *type, const char *origin, const char *data,
                   ch_journal_pos *end)
{
    ch_journal_rec r = {type, origin, data, strlen(data)};
    ch_error err = {0};
    return ch_journal_append(j, &r, 1, end, &err);
}

/* Read every entry from `from` to the end of the files; returns how many, the last payload in
 * last (if not NULL); stops at a bad entry (*bad = 1). */
static int read_all(ch_journal_pos from, char *last, size_t cap, int *bad)
{
    ch_journal_reader *r = NULL;
    ch_error err = {0};
    assert_int_equal(ch_journal_reader_open(dir, from, 0, &r, &err), 0);
    ch_journal_entry e;
    int n = 0, rc;
    ch_journal_pos lim = {0};
    while ((rc = ch_journal_reader_next(r, lim, &e, &err)) == 1) {
        n++;
        if (last)
            snprintf(last, cap, "%.*s", (int)e.len, (const char *)e.data);
    }
    if (bad)
        *bad = rc == CH_EPARSE;
    ch_journal_reader_close(r);
    return n;
}

static void seg_file(uint64_t seg, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%016llx.jnl", dir, (unsigned long long)seg);
}

static void test_appended_entries_read_back_with_type_origin_and_order(void **state)
{
    (void)state;
    ch_journal *j = jopen(0, 0, NULL);
    ch_journal_pos p1, p2;
    assert_int_equal(append1(j, "cloudtrail", "http:127.0.0.1", "{\"Records\":[]}", &p1), 0);
    ch_journal_rec two[2] = {{NULL, "spool:1:2:30:/x", "a\nb\n", 4}, {"vpcflow", "", "", 0}};
    ch_error err = {0};
    assert_int_equal(ch_journal_append(j, two, 2, &p2, &err), 0);
    assert_true(ch_journal_pos_cmp(p1, p2) < 0);
    assert_int_equal(ch_journal_pos_cmp(ch_journal_end(j), p2), 0);

    ch_journal_reader *r = NULL;
    assert_int_equal(ch_journal_reader_open(dir, (ch_journal_pos){0}, 0, &r, &err), 0);
    ch_journal_entry e;
    assert_int_equal(ch_journal_reader_next(r, ch_journal_end(j), &e, &err), 1);
    assert_string_equal(e.type, "cloudtrail");
    assert_string_equal(e.origin, "http:127.0.0.1");
    assert_int_equal(e.len, 14);
    assert_memory_equal(e.data, "{\"Records\":[]}", 14);
    assert_int_equal(ch_journal_pos_cmp(e.next, p1), 0);
    uint64_t seq1 = e.seq;
    assert_int_equal(ch_journal_reader_next(r, ch_journal_end(j), &e, &err), 1);
    assert_string_equal(e.type, "");
    assert_string_equal(e.origin, "spool:1:2:30:/x");
    assert_int_equal(e.seq, seq1 + 1);
    assert_int_equal(ch_journal_reader_next(r, ch_journal_end(j), &e, &err), 1);
    assert_string_equal(e.type, "vpcflow");
    assert_int_equal(e.len, 0);
    assert_int_equal(ch_journal_reader_next(r, ch_journal_end(j), &e, &err), 0);

    /* A reader waiting at the end sees what comes later. */
    assert_int_equal(append1(j, NULL, NULL, "later", NULL), 0);
    assert_int_equal(ch_journal_wait(j, p2, 10), 1);
    assert_int_equal(ch_journal_reader_next(r, ch_journal_end(j), &e, &err), 1);
    assert_memory_equal(e.data, "later", 5);
    ch_journal_reader_close(r);
    ch_journal_close(j);
}

static void test_reopen_goes_on_after_the_last_entry(void **state)
{
    (void)state;
    ch_journal_recovery rec;
    ch_journal *j = jopen(0, 0, &rec);
    ch_journal_pos p;
    assert_int_equal(append1(j, NULL, NULL, "one", &p), 0);
    ch_journal_close(j);
    j = jopen(0, 0, &rec);
    assert_false(rec.damaged);
    assert_int_equal(ch_journal_pos_cmp(ch_journal_end(j), p), 0);
    assert_int_equal(append1(j, NULL, NULL, "two", NULL), 0);
    ch_journal_close(j);
    char last[64];
    assert_int_equal(read_all((ch_journal_pos){0}, last, sizeof last, NULL), 2);
    assert_string_equal(last, "two");
    /* Reading from a checkpointed position yields only what came after it. */
    assert_int_equal(read_all(p, last, sizeof last, NULL), 1);
}

static void test_corrupt_tail_is_reported_cut_and_entries_before_it_kept(void **state)
{
    (void)state;
    ch_journal *j = jopen(0, 0, NULL);
    ch_journal_pos p2;
    assert_int_equal(append1(j, NULL, NULL, "first", NULL), 0);
    assert_int_equal(append1(j, NULL, NULL, "second", &p2), 0);
    assert_int_equal(append1(j, NULL, NULL, "third-damaged", NULL), 0);
    ch_journal_close(j);
    char path[512];
    seg_file(1, path, sizeof path);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    /* Flip one payload byte of the third entry. */
    int fd = open(path, O_RDWR);
    char c;
    assert_int_equal(pread(fd, &c, 1, st.st_size - 3), 1);
    c ^= 0x20;
    assert_int_equal(pwrite(fd, &c, 1, st.st_size - 3), 1);
    close(fd);

    int bad = 0;
    assert_int_equal(read_all((ch_journal_pos){0}, NULL, 0, &bad), 2);
    assert_true(bad);

    ch_journal_recovery rec;
    j = jopen(0, 0, &rec);
    assert_true(rec.damaged);
    assert_int_equal(rec.at.seg, p2.seg);
    assert_int_equal(rec.at.off, p2.off);
    assert_int_equal(rec.cut_bytes, (uint64_t)st.st_size - p2.off);
    assert_non_null(strstr(rec.reason, "checksum"));
    assert_int_equal(append1(j, NULL, NULL, "fourth", NULL), 0);
    ch_journal_close(j);
    char last[64];
    assert_int_equal(read_all((ch_journal_pos){0}, last, sizeof last, &bad), 3);
    assert_false(bad);
    assert_string_equal(last, "fourth");
}

static void test_torn_write_at_the_tail_is_cut(void **state)
{
    (void)state;
    ch_journal *j = jopen(0, 0, NULL);
    ch_journal_pos p1;
    assert_int_equal(append1(j, NULL, NULL, "whole", &p1), 0);
    assert_int_equal(append1(j, NULL, NULL, "torn in the middle of its payload", NULL), 0);
    ch_journal_close(j);
    char path[512];
    seg_file(1, path, sizeof path);
    assert_int_equal(truncate(path, (off_t)p1.off + 40), 0);
    ch_journal_recovery rec;
    j = jopen(0, 0, &rec);
    assert_true(rec.damaged);
    assert_int_equal(rec.at.off, p1.off);
    assert_int_equal(rec.cut_bytes, 40);
    assert_int_equal(ch_journal_pos_cmp(ch_journal_end(j), p1), 0);
    ch_journal_close(j);
    assert_int_equal(read_all((ch_journal_pos){0}, NULL, 0, NULL), 1);
}

static void test_cap_refuses_without_writing_until_segments_are_released(void **state)
{
    (void)state;
    /* Segments of ~300 bytes, cap 1000: a few entries fill it. */
    ch_journal *j = jopen(1000, 300, NULL);
    char payload[200];
    memset(payload, 'x', sizeof payload - 1);
    payload[sizeof payload - 1] = '\0';
    int ok = 0, rc;
    ch_journal_pos last = {0};
    while ((rc = append1(j, NULL, NULL, payload, &last)) == 0)
        ok++;
    assert_int_equal(rc, CH_ELIMIT);
    assert_true(ok >= 3);
    ch_journal_stats st;
    ch_journal_stats_get(j, &st);
    assert_true(st.bytes <= 1000);
    assert_int_equal(st.full, 1);
    assert_true(ch_journal_full(j, sizeof payload));
    assert_int_equal(read_all((ch_journal_pos){0}, NULL, 0, NULL), ok);

    /* A checkpoint at the last entry frees every older segment: appends work again. */
    ch_error err = {0};
    assert_true(ch_journal_release(j, last, &err) >= 1);
    /* The current segment too, since everything in it was consumed: only a header is left. */
    ch_journal_stats_get(j, &st);
    assert_int_equal(st.bytes, CH_JOURNAL_SEG_HEADER);
    assert_int_equal(st.segments, 1);
    assert_int_equal(append1(j, NULL, NULL, payload, NULL), 0);
    /* A reader from the beginning starts at the oldest segment still kept. */
    assert_true(read_all((ch_journal_pos){0}, NULL, 0, NULL) < ok + 1);
    assert_int_equal(read_all(last, NULL, 0, NULL), 1);
    ch_journal_close(j);
}

static void test_refused_write_is_never_acknowledged_nor_read(void **state)
{
    (void)state;
    ch_journal *j = jopen(0, 0, NULL);
    ch_journal_pos p1;
    assert_int_equal(append1(j, NULL, NULL, "kept", &p1), 0);
    /* The file size limit makes write(2) fail (EFBIG) the way a full disk does (ENOSPC). */
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = (rlim_t)p1.off + 10;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    char big[256];
    memset(big, 'y', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ch_journal_rec r = {NULL, NULL, big, strlen(big)};
    ch_error err = {0};
    ch_journal_pos none = {0};
    assert_int_equal(ch_journal_append(j, &r, 1, &none, &err), CH_EIO);
    assert_non_null(strstr(err.msg, "nothing acknowledged"));
    assert_int_equal(none.seg, 0);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    assert_int_equal(ch_journal_pos_cmp(ch_journal_end(j), p1), 0);
    /* Once there is room again, appends go on right after the last good entry. */
    assert_int_equal(append1(j, NULL, NULL, "after", NULL), 0);
    ch_journal_stats st;
    ch_journal_stats_get(j, &st);
    assert_int_equal(st.io_errors, 1);
    ch_journal_close(j);
    int bad = 0;
    char last[64];
    assert_int_equal(read_all((ch_journal_pos){0}, last, sizeof last, &bad), 2);
    assert_false(bad);
    assert_string_equal(last, "after");
}

static void test_damaged_middle_segment_is_reported_and_skipped(void **state)
{
    (void)state;
    ch_journal *j = jopen(0, 200, NULL);
    char payload[150];
    memset(payload, 'z', sizeof payload - 1);
    payload[sizeof payload - 1] = '\0';
    for (int i = 0; i < 4; i++)
        assert_int_equal(append1(j, NULL, NULL, payload, NULL), 0);
    ch_journal_close(j);
    char path[512];
    seg_file(2, path, sizeof path);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "Q", 1, CH_JOURNAL_SEG_HEADER + CH_JOURNAL_ENTRY_HEADER + 5), 1);
    close(fd);
    ch_journal_reader *r = NULL;
    ch_error err = {0};
    assert_int_equal(ch_journal_reader_open(dir, (ch_journal_pos){0}, 0, &r, &err), 0);
    ch_journal_entry e;
    ch_journal_pos lim = {0};
    assert_int_equal(ch_journal_reader_next(r, lim, &e, &err), 1);
    assert_int_equal(ch_journal_reader_next(r, lim, &e, &err), CH_EPARSE);
    assert_non_null(strstr(err.msg, "segment 0000000000000002 offset 32: checksum mismatch"));
    assert_true(ch_journal_reader_skip_segment(r) > 0);
    assert_int_equal(ch_journal_reader_next(r, lim, &e, &err), 1);
    assert_int_equal(e.pos.seg, 3);
    ch_journal_reader_close(r);
}

static void test_positions_round_trip_and_name_their_journal(void **state)
{
    (void)state;
    ch_journal *j = jopen(0, 0, NULL);
    ch_journal_pos p;
    assert_int_equal(append1(j, NULL, NULL, "x", &p), 0);
    ch_journal_close(j);
    char text[CH_JOURNAL_POS_MAX];
    ch_journal_pos_format(p, text);
    ch_journal_pos q;
    ch_error err = {0};
    assert_int_equal(ch_journal_pos_parse(text, &q, &err), 0);
    assert_int_equal(ch_journal_pos_cmp(p, q), 0);
    assert_int_equal(q.id, p.id);
    assert_int_equal(ch_journal_pos_parse("zz:1", &q, &err), CH_EPARSE);
    /* A checkpoint of another journal is refused, not silently applied. */
    ch_journal_pos other = p;
    other.id ^= 1;
    ch_journal_reader *r = NULL;
    assert_int_equal(ch_journal_reader_open(dir, other, 0, &r, &err), 0);
    ch_journal_entry e;
    assert_int_equal(ch_journal_reader_next(r, (ch_journal_pos){0}, &e, &err), CH_EPARSE);
    assert_non_null(strstr(err.msg, "belongs to journal"));
    ch_journal_reader_close(r);
}

typedef struct writer_arg {
    ch_journal *j;
    int id, n;
} writer_arg;

static void *writer(void *p)
{
    writer_arg *a = p;
    char buf[64];
    for (int i = 0; i < a->n; i++) {
        snprintf(buf, sizeof buf, "w%d-%d", a->id, i);
        if (append1(a->j, NULL, NULL, buf, NULL) != 0)
            return (void *)1;
    }
    return NULL;
}

static void test_concurrent_writers_share_fsyncs_and_lose_nothing(void **state)
{
    (void)state;
    ch_journal *j = jopen(0, 4096, NULL);
    pthread_t t[4];
    writer_arg a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (writer_arg){j, i, 200};
        pthread_create(&t[i], NULL, writer, &a[i]);
    }
    for (int i = 0; i < 4; i++) {
        void *rv;
        pthread_join(t[i], &rv);
        assert_null(rv);
    }
    ch_journal_stats st;
    ch_journal_stats_get(j, &st);
    assert_int_equal(st.appended, 800);
    assert_true(st.fsyncs <= 800);
    ch_journal_close(j);
    assert_int_equal(read_all((ch_journal_pos){0}, NULL, 0, NULL), 800);
}

static void test_crc32c_check_value(void **state)
{
    (void)state;
    assert_int_equal(ch_crc32c(0, "123456789", 9), 0xe3069283u);
    /* Continuing over pieces is the CRC of the whole. */
    assert_int_equal(ch_crc32c(ch_crc32c(0, "1234", 4), "56789", 5), 0xe3069283u);
    char big[1000];
    for (int i = 0; i < 1000; i++)
        big[i] = (char)(i * 7);
    assert_int_equal(ch_crc32c(ch_crc32c(0, big, 333), big + 333, 667), ch_crc32c(0, big, 1000));
}

/* The fast path (ISA-L's three streams, or one crc32 instruction) against the byte-wise table, at
 * every length around its block sizes and at every alignment: stored checksums must not depend
 * on the build or the CPU that wrote them. */
static void test_crc32c_fast_path_equals_the_table(void **state)
{
    (void)state;
    enum { N = 70000 };
    unsigned char *b = malloc(N + 64);
    assert_non_null(b);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < N + 64; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        b[i] = (unsigned char)x;
    }
    for (size_t off = 0; off < 16; off++)
        for (size_t n = 0; n < 1100; n++)
            assert_int_equal(ch_crc32c(0, b + off, n), ch__crc32c_bytewise(0, b + off, n));
    static const size_t big[] = {4095, 4096, 4097, 8191, 8192, 8193, 65535, 65536, 65537, N};
    for (size_t i = 0; i < sizeof big / sizeof *big; i++) {
        assert_int_equal(ch_crc32c(0, b + 3, big[i]), ch__crc32c_bytewise(0, b + 3, big[i]));
        assert_int_equal(ch_crc32c(0x9e3779b9u, b, big[i]),
                         ch__crc32c_bytewise(0x9e3779b9u, b, big[i]));
    }
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_check_value),
        cmocka_unit_test(test_crc32c_fast_path_equals_the_table),
        cmocka_unit_test_setup_teardown(test_appended_entries_read_back_with_type_origin_and_order,
                                        mk, rm),
        cmocka_unit_test_setup_teardown(test_reopen_goes_on_after_the_last_entry, mk, rm),
        cmocka_unit_test_setup_teardown(
            test_corrupt_tail_is_reported_cut_and_entries_before_it_kept, mk, rm),
        cmocka_unit_test_setup_teardown(test_torn_write_at_the_tail_is_cut, mk, rm),
        cmocka_unit_test_setup_teardown(
            test_cap_refuses_without_writing_until_segments_are_released, mk, rm),
        cmocka_unit_test_setup_teardown(test_refused_write_is_never_acknowledged_nor_read, mk, rm),
        cmocka_unit_test_setup_teardown(test_damaged_middle_segment_is_reported_and_skipped, mk,
                                        rm),
        cmocka_unit_test_setup_teardown(test_positions_round_trip_and_name_their_journal, mk, rm),
        cmocka_unit_test_setup_teardown(test_concurrent_writers_share_fsyncs_and_lose_nothing, mk,
                                        rm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
