/*
 * test_spool.c - spool directories: a new file is picked up within a poll of a second, a
 * growing file is read on in whole lines from where it stopped, a half-written gzip waits for
 * its end, a flow log chunk carries its header, the ledger (saved, or rebuilt from journaled
 * origins) means a restart reads nothing twice, a full journal pauses without skipping, a file
 * truncated in place is read again, an inode reused by another file is not mistaken for the
 * old one, and rescans alone find files in new sub-directories.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "ingest/spool.h"
#include "tmpdir.h"

static char dir[256];

static int mk(void **state)
{
    (void)state;
    return ch_test_tmpdir(dir, sizeof dir, "spool");
}

static int rm(void **state)
{
    (void)state;
    return ch_test_rmdir(dir);
}

typedef struct sink {
    int n;
    char data[16][4096];
    char origin[16][512];
    int refuse; /* answer CH_ELIMIT this many times */
} sink;

static int take(void *ud, const ch_spool_chunk *c)
{
    sink *k = ud;
    if (k->refuse > 0) {
        k->refuse--;
        return CH_ELIMIT;
    }
    if (k->n < 16) {
        snprintf(k->data[k->n], sizeof k->data[0], "%.*s", (int)c->len, (const char *)c->data);
        snprintf(k->origin[k->n], sizeof k->origin[0], "%s", c->origin);
    }
    k->n++;
    return 0;
}

static void put(const char *rel, const char *mode, const void *data, size_t n)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    FILE *f = fopen(p, mode);
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

static void puts_(const char *rel, const char *mode, const char *s)
{
    put(rel, mode, s, strlen(s));
}

static ch_spool *spool(bool no_inotify)
{
    const char *dirs[1] = {dir};
    ch_spool_opts o = {dirs, 1, no_inotify ? 1 : 60000, 300, 0, 0, no_inotify};
    ch_spool *s = NULL;
    ch_error err = {0};
    assert_int_equal(ch_spool_new(&o, &s, &err), 0);
    assert_int_equal(ch_spool_start(s, &err), 0);
    return s;
}

static int poll_(ch_spool *s, sink *k, int ms)
{
    ch_error err = {0};
    int rc = ch_spool_poll(s, ms, take, k, &err);
    assert_true(rc >= 0);
    return rc;
}

static void test_new_file_is_picked_up_within_a_second(void **state)
{
    (void)state;
    ch_spool *s = spool(false);
    sink k = {0};
    poll_(s, &k, 0); /* the first scan: nothing there */
    assert_int_equal(k.n, 0);
    puts_("a.jsonl", "w", "{\"eventID\":\"1\"}\n{\"eventID\":\"2\"}\n");
    for (int i = 0; i < 5 && k.n == 0; i++)
        poll_(s, &k, 200);
    assert_int_equal(k.n, 1);
    assert_string_equal(k.data[0], "{\"eventID\":\"1\"}\n{\"eventID\":\"2\"}\n");
    assert_non_null(strstr(k.origin[0], ":32:"));
    assert_non_null(strstr(k.origin[0], "/a.jsonl"));
    ch_spool_free(s);
}

static void test_growing_file_is_read_on_in_whole_lines(void **state)
{
    (void)state;
    ch_spool *s = spool(false);
    sink k = {0};
    puts_("g.jsonl", "w", "{\"n\":1}\n{\"n\":");
    poll_(s, &k, 0);
    assert_int_equal(k.n, 1);
    assert_string_equal(k.data[0], "{\"n\":1}\n");
    puts_("g.jsonl", "a", "2}\n{\"n\":3}\n");
    for (int i = 0; i < 5 && k.n == 1; i++)
        poll_(s, &k, 200);
    assert_int_equal(k.n, 2);
    assert_string_equal(k.data[1], "{\"n\":2}\n{\"n\":3}\n");
    ch_spool_free(s);
}

static void test_half_written_gzip_waits_for_its_end(void **state)
{
    (void)state;
    const char *doc = "{\"Records\":[{\"eventID\":\"x\"}]}";
    unsigned char z[256];
    uLongf zn = sizeof z;
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    deflateInit2(&zs, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
    zs.next_in = (Bytef *)doc;
    zs.avail_in = (uInt)strlen(doc);
    zs.next_out = z;
    zs.avail_out = sizeof z;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    zn = zs.total_out;
    deflateEnd(&zs);
    ch_spool *s = spool(false);
    sink k = {0};
    put("c.json.gz", "w", z, zn / 2);
    poll_(s, &k, 0);
    assert_int_equal(k.n, 0);
    put("c.json.gz", "a", z + zn / 2, zn - zn / 2);
    for (int i = 0; i < 5 && k.n == 0; i++)
        poll_(s, &k, 200);
    assert_int_equal(k.n, 1);
    assert_int_equal(memcmp(k.data[0], "\x1f\x8b", 2), 0);
    ch_spool_free(s);
}

static void test_later_flow_log_chunk_carries_the_header(void **state)
{
    (void)state;
    ch_spool *s = spool(false);
    sink k = {0};
    const char *hdr = "version account-id interface-id srcaddr dstaddr srcport dstport protocol "
                      "packets bytes start end action log-status\n";
    const char *l1 = "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 1717405200 1717405260 ACCEPT OK\n";
    char first[512];
    snprintf(first, sizeof first, "%s%s", hdr, l1);
    puts_("f.log", "w", first);
    poll_(s, &k, 0);
    assert_int_equal(k.n, 1);
    assert_string_equal(k.data[0], first);
    puts_("f.log", "a", l1);
    for (int i = 0; i < 5 && k.n == 1; i++)
        poll_(s, &k, 200);
    assert_int_equal(k.n, 2);
    assert_string_equal(k.data[1], first); /* the header, then only the new line */
    ch_spool_free(s);
}

static void test_restart_with_saved_ledger_reads_only_what_is_new(void **state)
{
    (void)state;
    char ledger[512], pos[128];
    /* The ledger lives outside the spool tree (serve keeps it in the journal directory). */
    snprintf(ledger, sizeof ledger, "%s.ledger", dir);
    ch_error err = {0};
    ch_spool *s = spool(true);
    sink k = {0};
    puts_("r.jsonl", "w", "{\"n\":1}\n");
    poll_(s, &k, 0);
    assert_int_equal(k.n, 1);
    assert_int_equal(ch_spool_ledger_save(s, ledger, "00ab:1:99", &err), 0);
    ch_spool_free(s);

    puts_("r.jsonl", "a", "{\"n\":2}\n");
    s = spool(true);
    assert_int_equal(ch_spool_ledger_load(s, ledger, pos, sizeof pos, &err), 0);
    assert_string_equal(pos, "00ab:1:99");
    sink k2 = {0};
    poll_(s, &k2, 0);
    assert_int_equal(k2.n, 1);
    assert_string_equal(k2.data[0], "{\"n\":2}\n");
    ch_spool_free(s);
    unlink(ledger);
}

static void test_journaled_origins_rebuild_the_ledger_after_a_crash(void **state)
{
    (void)state;
    ch_spool *s = spool(true);
    sink k = {0};
    puts_("x.jsonl", "w", "{\"n\":1}\n{\"n\":2}\n");
    poll_(s, &k, 0);
    assert_int_equal(k.n, 1);
    ch_spool_free(s); /* killed before any ledger save: the journal has the origin */

    s = spool(true);
    ch_spool_ledger_note(s, k.origin[0]);
    ch_spool_ledger_note(s, "http:127.0.0.1"); /* not a spool origin: ignored */
    sink k2 = {0};
    poll_(s, &k2, 0);
    assert_int_equal(k2.n, 0);
    ch_spool_free(s);
}

static void test_full_journal_pauses_without_skipping(void **state)
{
    (void)state;
    ch_spool *s = spool(true);
    sink k = {0};
    k.refuse = 1;
    puts_("p.jsonl", "w", "{\"n\":1}\n");
    assert_int_equal(poll_(s, &k, 0), 0);
    assert_int_equal(k.n, 0);
    usleep(250 * 1000);
    poll_(s, &k, 0);
    assert_int_equal(k.n, 1);
    assert_string_equal(k.data[0], "{\"n\":1}\n");
    ch_spool_stats st;
    ch_spool_stats_get(s, &st);
    assert_int_equal(st.paused, 1);
    ch_spool_free(s);
}

static int logged;
static void count_log(void *ud, const char *msg)
{
    (void)ud;
    if (strstr(msg, "shrank") != NULL)
        logged++;
}

static void test_truncated_file_is_read_again_and_said_so(void **state)
{
    (void)state;
    ch_spool *s = spool(true);
    ch_spool_set_log(s, count_log, NULL);
    sink k = {0};
    puts_("t.jsonl", "w", "{\"n\":1}\n{\"n\":2}\n");
    poll_(s, &k, 0);
    puts_("t.jsonl", "w", "{\"n\":3}\n");
    usleep(5000);
    poll_(s, &k, 0);
    assert_int_equal(k.n, 2);
    assert_string_equal(k.data[1], "{\"n\":3}\n");
    assert_int_equal(logged, 1);
    ch_spool_free(s);
}

static void test_reused_inode_with_other_content_is_a_new_file(void **state)
{
    (void)state;
    puts_("i.jsonl", "w", "{\"n\":1}\n");
    char p[512];
    snprintf(p, sizeof p, "%s/i.jsonl", dir);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    /* The ledger says this inode was read to byte 8, but of a file with other first bytes. */
    char origin[256];
    snprintf(origin, sizeof origin, "spool:%llu:%llu:8:deadbeef:8:/old",
             (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
    ch_spool *s = spool(true);
    ch_spool_ledger_note(s, origin);
    sink k = {0};
    poll_(s, &k, 0);
    assert_int_equal(k.n, 1);
    assert_string_equal(k.data[0], "{\"n\":1}\n");
    ch_spool_free(s);
}

static void test_rescan_alone_finds_files_in_new_subdirectories(void **state)
{
    (void)state;
    ch_spool *s = spool(true);
    sink k = {0};
    poll_(s, &k, 0);
    char p[512];
    snprintf(p, sizeof p, "%s/AWSLogs", dir);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/AWSLogs/2024", dir);
    assert_int_equal(mkdir(p, 0755), 0);
    puts_("AWSLogs/2024/d.jsonl", "w", "{\"n\":1}\n");
    puts_("AWSLogs/2024/.tmp-partial", "w", "{\"n\":9}\n");
    usleep(5000);
    poll_(s, &k, 0);
    assert_int_equal(k.n, 1);
    assert_string_equal(k.data[0], "{\"n\":1}\n");
    ch_spool_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_new_file_is_picked_up_within_a_second, mk, rm),
        cmocka_unit_test_setup_teardown(test_growing_file_is_read_on_in_whole_lines, mk, rm),
        cmocka_unit_test_setup_teardown(test_half_written_gzip_waits_for_its_end, mk, rm),
        cmocka_unit_test_setup_teardown(test_later_flow_log_chunk_carries_the_header, mk, rm),
        cmocka_unit_test_setup_teardown(test_restart_with_saved_ledger_reads_only_what_is_new, mk,
                                        rm),
        cmocka_unit_test_setup_teardown(test_journaled_origins_rebuild_the_ledger_after_a_crash, mk,
                                        rm),
        cmocka_unit_test_setup_teardown(test_full_journal_pauses_without_skipping, mk, rm),
        cmocka_unit_test_setup_teardown(test_truncated_file_is_read_again_and_said_so, mk, rm),
        cmocka_unit_test_setup_teardown(test_reused_inode_with_other_content_is_a_new_file, mk, rm),
        cmocka_unit_test_setup_teardown(test_rescan_alone_finds_files_in_new_subdirectories, mk,
                                        rm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
