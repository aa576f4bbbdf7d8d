/*
 * journal.h - the write-ahead journal of `coinhound serve`: every accepted batch of records is
 * appended here, and made durable, before anyone is told it was accepted; the pipeline reads
 * from it; a checkpoint names the journal position it reflects, and segments wholly behind it
 * are removed.
 *
 * The format (docs/SERVE.md has the byte layout) is a directory of segment files named by a
 * 16-hex-digit sequence number, "0000000000000001.jnl", each starting with a 32-byte header
 * (magic "CHJOURNL", format version, the journal's random id, the segment number) followed by
 * entries: a 32-byte entry header (checksum, payload length, entry sequence number, receive
 * time, lengths of the source type and origin texts) then the type, the origin and the
 * payload. The checksum is CRC-32C (ingest/crc32c.h) of the type, the origin and the payload,
 * continued over the header's bytes after the checksum field. All integers are little-endian. One
 * entry is one batch as it arrived (an HTTP body, a Firehose record, a chunk of a spool file), kept
 * compressed if it came compressed: the journal never parses records, which keeps appends at disk
 * speed.
 *
 * Durability: appends from many threads are serialized by one mutex, written with one
 * pwritev each, and then, with fsync "batch", committed as a group: the first waiter runs
 * fdatasync for every entry written so far while the others wait for it, so N concurrent
 * requests cost about one fsync, not N. A failed write (ENOSPC...) is cut off again with
 * ftruncate and reported; nothing of it is ever acknowledged or read. A failed fdatasync cuts
 * the file back to the last durable end and fails every writer waiting on it. "interval"
 * acknowledges after the write and syncs from a background thread every N ms (a power cut may
 * lose the last N ms; a crash of the process loses nothing, the page cache survives it);
 * "none" leaves syncing to the kernel. With "batch" the reader sees only durable entries.
 *
 * Caps: max_bytes over all segments (an append that would pass it fails with CH_ELIMIT and
 * writes nothing: the caller answers 503 or pauses), max_entry per entry, origin and type
 * lengths. Opening scans the newest segment: a torn or damaged tail (the crash happened
 * mid-write, or the disk lied) is reported with its offset and cut off; every entry before it
 * is kept. The reader stops at the first bad entry in any segment and reports its position.
 *
 * Threads: ch_journal_append, ch_journal_end, ch_journal_wait, ch_journal_release and
 * ch_journal_stats may be called from any thread. A reader is one thread's.
 *
 * Ownership: ch_journal_open allocates the journal, ch_journal_close flushes and frees it. A
 * reader is allocated by ch_journal_reader_open and freed by ch_journal_reader_close; the
 * entry it yields borrows from it until the next call.
 */
#ifndef CH_INGEST_JOURNAL_H
#define CH_INGEST_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define CH_JOURNAL_VERSION 1
#define CH_JOURNAL_SEG_HEADER 32
#define CH_JOURNAL_ENTRY_HEADER 32
#define CH_JOURNAL_MAX_TYPE 32
#define CH_JOURNAL_MAX_ORIGIN 4096
#define CH_JOURNAL_DEFAULT_MAX_ENTRY (64u << 20)
#define CH_JOURNAL_DEFAULT_SEGMENT (64u << 20)
#define CH_JOURNAL_POS_MAX 64 /* bytes of a position's text, NUL included */

typedef enum ch_journal_fsync {
    CH_JOURNAL_FSYNC_BATCH = 0, /* fdatasync before acknowledging (group commit) */
    CH_JOURNAL_FSYNC_INTERVAL,  /* acknowledge after write; fdatasync every interval_ms */
    CH_JOURNAL_FSYNC_NONE,      /* leave it to the kernel */
} ch_journal_fsync;

typedef struct ch_journal_opts {
    const char *dir;        /* created if missing */
    uint64_t max_bytes;     /* all segments together; 0 = 10 GiB */
    uint64_t segment_bytes; /* a segment is closed past this; 0 = CH_JOURNAL_DEFAULT_SEGMENT */
    uint64_t max_entry;     /* payload of one entry; 0 = CH_JOURNAL_DEFAULT_MAX_ENTRY */
    ch_journal_fsync fsync;
    unsigned interval_ms; /* for CH_JOURNAL_FSYNC_INTERVAL; 0 = 100 */
} ch_journal_opts;

/* A place in the journal: segment number and byte offset in it. Ordered by (seg, off). The
 * journal id guards against a checkpoint of one journal being applied to another. */
typedef struct ch_journal_pos {
    uint64_t id, seg, off;
} ch_journal_pos;

/* One record batch to append. type: a source type name or NULL (detect); origin: where it came
 * from, for messages and for the spool ledger (NULL = ""). Both are copied. */
typedef struct ch_journal_rec {
    const char *type;
    const char *origin;
    const void *data;
    size_t len;
} ch_journal_rec;

/* An entry as read back. Every pointer borrows from the reader. */
typedef struct ch_journal_entry {
    ch_journal_pos pos;  /* where it starts */
    ch_journal_pos next; /* where the next one starts: the position after this entry */
    uint64_t seq;
    int64_t time_ms;  /* when it was appended (wall clock) */
    const char *type; /* "" when the type is to be detected */
    const char *origin;
    const void *data;
    size_t len;
} ch_journal_entry;

/* What opening found at the newest segment's tail. */
typedef struct ch_journal_recovery {
    bool damaged;       /* a bad entry was found and cut off */
    ch_journal_pos at;  /* where the bad entry started */
    uint64_t cut_bytes; /* bytes removed from there to the end of the segment */
    char reason[512];
} ch_journal_recovery;

typedef struct ch_journal_stats {
    uint64_t bytes, max_bytes; /* on disk, all segments; the cap */
    uint64_t segments;
    uint64_t appended;       /* entries accepted since open */
    uint64_t appended_bytes; /* their size on disk */
    uint64_t fsyncs;
    uint64_t full;      /* appends refused by max_bytes */
    uint64_t io_errors; /* appends refused by a write or fsync failure */
    uint64_t next_seq;  /* the sequence number the next entry gets */
    bool broken;        /* a failure left the journal unusable: restart needed */
} ch_journal_stats;

typedef struct ch_journal ch_journal;
typedef struct ch_journal_reader ch_journal_reader;

/* Open (or create) the journal in o->dir. A damaged tail in the newest segment is cut off and
 * described in *rec (may be NULL). CH_EIO when the directory or a segment cannot be used,
 * CH_EPARSE when a segment is not a journal segment of this version. */
int ch_journal_open(const ch_journal_opts *o, ch_journal **out, ch_journal_recovery *rec,
                    ch_error *err);
/* Flush (fdatasync) and free. NULL is fine. */
void ch_journal_close(ch_journal *j);

/* Append n entries as one unit, then wait as the fsync policy says. On 0 they are durable (per
 * the policy) and *end (may be NULL) is the position after the last. CH_ELIMIT when the cap (or
 * max_entry, or a text length) would be passed: nothing was written. CH_EIO when a write or a
 * sync failed: nothing of these entries will ever be read, nothing is acknowledged. */
int ch_journal_append(ch_journal *j, const ch_journal_rec *recs, size_t n, ch_journal_pos *end,
                      ch_error *err);
/* The readable end: the position after the last entry a reader may read (durable ones only
 * under the batch policy). */
ch_journal_pos ch_journal_end(ch_journal *j);
/* The position of the first entry still kept (the oldest segment's first entry). */
ch_journal_pos ch_journal_begin(ch_journal *j);
/* Block until the readable end is past `after` or timeout_ms pass; returns 1 when it is. */
int ch_journal_wait(ch_journal *j, ch_journal_pos after, int timeout_ms);
/* Wake every ch_journal_wait (for shutdown). */
void ch_journal_wake(ch_journal *j);
/* Remove every segment wholly before `upto` (the checkpoint's position). Returns the number
 * removed, CH_EIO when one could not be (it is retried next time). */
int ch_journal_release(ch_journal *j, ch_journal_pos upto, ch_error *err);
/* Would an append of `bytes` payload bytes be refused by the cap right now? */
bool ch_journal_full(ch_journal *j, uint64_t bytes);
void ch_journal_stats_get(ch_journal *j, ch_journal_stats *s);
/* Bytes of entries between `from` and the readable end (the pipeline's lag). */
uint64_t ch_journal_lag(ch_journal *j, ch_journal_pos from);

/* Positions as text "ID:SEG:OFF" (hex id, decimal numbers), for checkpoints. */
void ch_journal_pos_format(ch_journal_pos p, char buf[CH_JOURNAL_POS_MAX]);
int ch_journal_pos_parse(const char *s, ch_journal_pos *p, ch_error *err);
int ch_journal_pos_cmp(ch_journal_pos a, ch_journal_pos b);

/* A reader over the journal in dir from `from` (as formatted by an earlier reader or append;
 * {0} = the oldest entry). max_entry 0 = CH_JOURNAL_DEFAULT_MAX_ENTRY. */
int ch_journal_reader_open(const char *dir, ch_journal_pos from, uint64_t max_entry,
                           ch_journal_reader **out, ch_error *err);
void ch_journal_reader_close(ch_journal_reader *r);
/* The next entry before `limit` (pass ch_journal_end; a zero limit means "to the end of the
 * files"). 1 with *e, 0 when there is none (yet), CH_EPARSE at a bad entry (err names segment
 * and offset; ch_journal_reader_pos says where), CH_EIO when a segment cannot be read, CH_EPARSE
 * also when `from` names a different journal. */
int ch_journal_reader_next(ch_journal_reader *r, ch_journal_pos limit, ch_journal_entry *e,
                           ch_error *err);
/* Where the reader stands: the start of the next entry it would read. */
ch_journal_pos ch_journal_reader_pos(const ch_journal_reader *r);
/* After a bad entry: go on at the next segment (the rest of this one is lost, and the caller
 * has reported how much). Returns bytes skipped. */
uint64_t ch_journal_reader_skip_segment(ch_journal_reader *r);

#endif
