/*
 * fuzz_journal.c - libFuzzer target for the journal's reader and its tail recovery
 * (ingest/journal.h): the input is the body of a segment (its entries), put behind a valid
 * segment header in a scratch directory.
 *
 * Oracles, checked with __builtin_trap: the reader yields entries until it ends cleanly or
 * stops at a bad one with CH_EPARSE; every entry lies inside the file and positions only move
 * forward; opening the journal over the same file cuts exactly the bytes after the last good
 * entry, after which a second reading yields the same entries and ends cleanly.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ingest/journal.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

static char dir[256];

static void cleanup(void)
{
    char path[300];
    snprintf(path, sizeof path, "%s/0000000000000001.jnl", dir);
    unlink(path);
    rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int read_entries(uint64_t *end, int *last_rc)
{
    ch_journal_reader *r = NULL;
    ch_error err = {0};
    if (ch_journal_reader_open(dir, (ch_journal_pos){0}, 1u << 20, &r, &err) < 0)
        return -1;
    ch_journal_entry e;
    int n = 0, rc;
    uint64_t prev = 0;
    while ((rc = ch_journal_reader_next(r, (ch_journal_pos){1, 1, UINT64_MAX}, &e, &err)) == 1) {
        CHECK(e.pos.off >= prev && e.next.off > e.pos.off);
        CHECK(e.next.off - e.pos.off >= CH_JOURNAL_ENTRY_HEADER + e.len);
        CHECK(strlen(e.type) <= CH_JOURNAL_MAX_TYPE && strlen(e.origin) <= CH_JOURNAL_MAX_ORIGIN);
        prev = e.next.off;
        n++;
    }
    CHECK(rc == 0 || rc == CH_EPARSE);
    *end = ch_journal_reader_pos(r).off;
    *last_rc = rc;
    ch_journal_reader_close(r);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (dir[0] == '\0') {
        snprintf(dir, sizeof dir, "/tmp/ch_fuzz_journal_%d", (int)getpid());
        mkdir(dir, 0700);
        atexit(cleanup);
    }
    char path[300];
    snprintf(path, sizeof path, "%s/0000000000000001.jnl", dir);
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return 0;
    unsigned char h[CH_JOURNAL_SEG_HEADER] = "CHJOURNL";
    h[8] = CH_JOURNAL_VERSION;
    h[16] = 1; /* journal id 1 */
    h[24] = 1; /* segment 1 */
    int ok = write(fd, h, sizeof h) == (ssize_t)sizeof h &&
             (size == 0 || write(fd, data, size) == (ssize_t)size);
    close(fd);
    if (!ok)
        return 0;
    uint64_t end1 = 0, end2 = 0;
    int rc1 = 0, rc2 = 0;
    int n1 = read_entries(&end1, &rc1);
    ch_journal_opts o = {dir, 0, 0, 1u << 20, CH_JOURNAL_FSYNC_NONE, 0};
    ch_journal *j = NULL;
    ch_journal_recovery rec;
    ch_error err = {0};
    if (ch_journal_open(&o, &j, &rec, &err) == 0) {
        CHECK(rec.damaged == (end1 < CH_JOURNAL_SEG_HEADER + size));
        CHECK(!rec.damaged || rec.at.off == end1);
        ch_journal_close(j);
        int n2 = read_entries(&end2, &rc2);
        CHECK(n2 == n1 && end2 == end1 && rc2 == 0);
    }
    return 0;
}
